"""Sans-I/O codec for the Asterisk Manager Interface (AMI) wire format.

Bytes go in, :class:`AMIMessage` objects come out; actions go the other way
through :func:`encode_action`.  Nothing here touches a socket, a clock or a
reactor, so the client protocol, the simulator and the tests share it.

What Asterisk 22 actually sends (see tests/fixtures/asterisk-22/README.txt and
more/README.txt, captured from a real 22.10.1):

* ``Asterisk Call Manager/11.0.0\\r\\n`` first: ONE line, no blank line after
  it, often in the same TCP read as the Login response.
* then messages of ``Key: Value\\r\\n`` lines, each ended by an empty line.
  Keys repeat (``Output:``, ``Variable:``, ``ChanVariable:``), empty values
  keep their space (``AccountCode: ``), a value may hold a bare ``\\r``
  (echoed ActionID), and invalid UTF-8 (ISO-8859-1 caller names) is passed
  through byte for byte.
* channel-state blocks C-escape ``CallerIDName``/``ConnectedLineName`` and
  their prefixed copies with ``ast_escape_c`` (main/utils.c); other fields are
  raw.  :func:`unescape_c` undoes it; the decoder itself never alters values.

Limits.  Asterisk bounds only its *input* (main/manager.c): ``get_input``
reads lines into ``inbuf[1025]`` so a line may hold 1022 bytes plus CRLF, and
``do_message`` keeps ``AST_MAX_MANHEADERS`` = 128 lines per action.  Those
bind :func:`encode_action`.  Its *output* has no such limits (one ``Output:``
line per CLI line, 76-line AttendedTransfer events in the fixtures), so the
decoder bounds memory by bytes only: a message larger than
``max_message_bytes`` (64 KiB by default, 25 times the largest message in
the fixtures, a 2.6 KB AttendedTransfer) raises :class:`FrameTooLarge` and the caller must drop the
connection and reconnect.  Raise the limit if you run CLI commands with long
output through the ``Command`` action.

Asterisk before 14 answered ``Command`` with ``Response: Follows``, raw CLI
output (blank lines included) and ``--END COMMAND--``; such a message is read
up to that marker and its output kept in ``AMIMessage.body``.  Asterisk 22
never sends it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from itertools import repeat

__all__ = [
    "AMIDecoder",
    "AMIMessage",
    "DecodeError",
    "FrameTooLarge",
    "MAX_ACTION_LINES",
    "MAX_LINE_BYTES",
    "encode_action",
    "originate_variable",
    "unescape_c",
]

#: Longest action line Asterisk accepts, CRLF not included (inbuf[1025]).
MAX_LINE_BYTES = 1022
#: Most lines Asterisk keeps in one action, the Action: line included.
MAX_ACTION_LINES = 128
#: Default bound on one received message (and on buffered bytes).
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024

_BANNER_PREFIX = b"Asterisk Call Manager/"
_FOLLOWS = b"Response: Follows"
_END_COMMAND = "--END COMMAND--"
_FOLLOWS_HEADERS = ("response", "privilege", "actionid")
_SHOWN_BYTES = 200

# A message ends at an empty line; a line ends at LF with an optional CR
# before it, as in manager.c get_input().
_END_OF_MESSAGE = re.compile(rb"\n\r?\n")
_END_OF_FOLLOWS = re.compile(rb"--END COMMAND--\r?\n\r?\n")
_COLON_SPACE = repeat(": ")  # endless, shared by every map() below


class DecodeError(Exception):
    """A part of the stream that is not a message; ``data`` holds its first 200 bytes."""

    def __init__(self, reason: str, data: bytes = b"") -> None:
        self.reason = reason
        self.size = len(data)
        self.data = bytes(data[:_SHOWN_BYTES])
        shown = repr(self.data) + ("..." if self.size > _SHOWN_BYTES else "")
        super().__init__(f"{reason} ({self.size} bytes): {shown}" if data else reason)


class FrameTooLarge(DecodeError):
    """A message outgrew ``max_message_bytes``: drop the connection and reconnect.

    ``messages`` holds the complete messages decoded by the same ``feed`` call
    before the oversized one, so none is lost.
    """

    def __init__(self, reason: str, data: bytes = b"", messages: Iterable[AMIMessage] = ()) -> None:
        super().__init__(reason, data)
        self.messages = list(messages)


class AMIMessage:
    """One AMI message: ordered ``(key, value)`` tuples, exactly as received.

    Lookups ignore case and return the FIRST header of a repeated key, as
    Asterisk's own ``astman_get_header`` does.  ``body`` holds lines that are
    not ``Key: value`` (the output of a legacy ``Response: Follows``).
    Values are ``str`` decoded with ``surrogateescape``: invalid UTF-8 bytes
    come back with ``value.encode("utf-8", "surrogateescape")``.
    """

    __slots__ = ("headers", "body", "_index")

    def __init__(self, headers: Iterable[tuple[str, str]], body: Iterable[str] = ()) -> None:
        self.headers: tuple[tuple[str, str], ...] = tuple(headers)
        self.body: tuple[str, ...] = tuple(body)
        self._index: dict[str, str] | None = None

    def _lookup(self) -> dict[str, str]:
        if self._index is None:
            self._index = {key.lower(): value for key, value in reversed(self.headers)}
        return self._index

    def get(self, key: str, default: str | None = None) -> str | None:
        """Return the first value of ``key`` (any case), or ``default``."""
        return self._lookup().get(key.lower(), default)

    def getall(self, key: str) -> list[str]:
        """Return every value of ``key`` (any case), in order."""
        wanted = key.lower()
        return [value for name, value in self.headers if name.lower() == wanted]

    def __getitem__(self, key: str) -> str:
        return self._lookup()[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lookup()

    @property
    def kind(self) -> str:
        """'event' or 'response' from the FIRST header, where Asterisk puts it; else 'unknown'.

        (OriginateResponse carries a later ``Response:`` header and is an event.)
        """
        first = self.headers[0][0].lower() if self.headers else ""
        return first if first in ("event", "response") else "unknown"

    @property
    def name(self) -> str:
        """The event name or the response status ('Success', 'Error', ...); '' if unknown."""
        return self.headers[0][1] if self.kind != "unknown" else ""

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def variables(self, key: str | None = None) -> dict[str, str | None]:
        """Parse ``Variable: NAME=value`` and ``ChanVariable: NAME=value`` headers.

        The value may contain '='; Asterisk prints an unset variable as
        ``(null)``, returned as None.  Pass ``key`` for another header (e.g.
        ``"DestChanVariable"``).  Headers without '=' (VarSet and Getvar send
        ``Variable: NAME`` plus ``Value: ...``) are skipped.
        """
        wanted = (key.lower(),) if key else ("variable", "chanvariable")
        found: dict[str, str | None] = {}
        for name, value in self.headers:
            if name.lower() in wanted:
                var, sep, val = value.partition("=")
                if sep:
                    found[var] = None if val == "(null)" else val
        return found

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AMIMessage):
            return NotImplemented
        return self.headers == other.headers and self.body == other.body

    def __hash__(self) -> int:
        return hash((self.headers, self.body))

    def __repr__(self) -> str:
        return f"AMIMessage({self.kind} {self.name!r}, {list(self.headers)!r})"


class AMIDecoder:
    """Incremental AMI decoder for ONE connection: feed it every byte received.

    ``feed()`` returns the complete messages, in order.  Recoverable problems
    (lines that are not headers, garbage frames) are collected as
    :class:`DecodeError` in ``errors`` (take them with ``pop_errors()``) and
    the stream carries on.  :class:`FrameTooLarge` is raised instead; after it
    the decoder refuses more input.  At EOF call ``close()``.
    """

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_message_bytes = max_message_bytes
        self.banner: str | None = None
        self.protocol_version: str | None = None
        self.errors: list[DecodeError] = []
        self._buf = b""
        self._at_start = True
        self._failure: FrameTooLarge | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for a message that has not ended yet."""
        return len(self._buf)

    def pop_errors(self) -> list[DecodeError]:
        """Return the recoverable errors seen so far and forget them."""
        errors, self.errors = self.errors, []
        return errors

    def feed(self, data: bytes) -> list[AMIMessage]:
        """Add received bytes; return the messages they complete (maybe none)."""
        if self._failure is not None:
            raise FrameTooLarge(f"decoder failed earlier: {self._failure.reason}")
        old = len(self._buf)
        buf = self._buf + data if old else bytes(data)
        pos = 0
        if self._at_start:
            pos = self._take_banner(buf)
            if pos < 0:
                return self._keep([], buf, 0)
        messages: list[AMIMessage] = []
        search = _END_OF_MESSAGE.search
        limit = self.max_message_bytes
        # The end of a message may straddle the previous chunk (3 bytes at most).
        scan = max(pos, old - 2)
        while True:
            match = search(buf, scan)
            if match is None:
                break
            end, after = match.start(), match.end()
            if buf.startswith(_FOLLOWS, pos):
                match = _END_OF_FOLLOWS.search(buf, pos)
                if match is None:
                    break
                end, after = match.start() + len(_END_COMMAND), match.end()
            if end - pos > limit:
                self._fail("message longer than max_message_bytes", buf[pos:end], messages)
            if end > pos:
                message = self._parse(buf[pos:end])
                if message is not None:
                    messages.append(message)
            pos = scan = after
        return self._keep(messages, buf, pos)

    def close(self) -> DecodeError | None:
        """At EOF: forget a message cut short (Asterisk drops slow readers mid-event)."""
        rest, self._buf = self._buf, b""
        if rest.strip(b"\r\n"):
            return DecodeError("connection closed inside a message; dropped", rest)
        return None

    def _take_banner(self, buf: bytes) -> int:
        """Consume the banner line; -1 while the first line is incomplete."""
        newline = buf.find(b"\n")
        if newline < 0:
            return -1
        self._at_start = False
        if not buf.startswith(_BANNER_PREFIX):
            return 0
        line = buf[:newline].rstrip(b"\r").decode("utf-8", "surrogateescape")
        self.banner = line
        self.protocol_version = line[len(_BANNER_PREFIX):]
        return newline + 1

    def _keep(self, messages: list[AMIMessage], buf: bytes, pos: int) -> list[AMIMessage]:
        rest = buf[pos:]
        # An unfinished message will be at least len(rest) - 3 bytes long (its
        # end may already be here but for its last byte), so this never
        # refuses a message that would have fitted: any chunking decides alike.
        if len(rest) - 3 > self.max_message_bytes:
            self._fail("no end of message within max_message_bytes", rest, messages)
        self._buf = rest
        return messages

    def _fail(self, reason: str, data: bytes, messages: list[AMIMessage]) -> None:
        self._buf = b""
        self._failure = FrameTooLarge(f"{reason} ({self.max_message_bytes})", data, messages)
        raise self._failure

    def _parse(self, raw: bytes) -> AMIMessage | None:
        """Turn one message (without its final line end) into an AMIMessage."""
        text = raw.decode("utf-8", "surrogateescape")
        follows = raw.startswith(_FOLLOWS)
        if not follows:
            # Fast path: CRLF lines that are all "Key: value" with a plain key.
            lines = (text[:-1] if text.endswith("\r") else text).split("\r\n")
            if text.count("\n") == len(lines) - 1:
                headers = [
                    (key, value)
                    for key, sep, value in map(str.partition, lines, _COLON_SPACE)
                    if sep and key and ":" not in key
                ]
                if len(headers) == len(lines):
                    return AMIMessage(headers)
        return self._parse_slowly(raw, text, follows)

    def _parse_slowly(self, raw: bytes, text: str, follows: bool) -> AMIMessage | None:
        """Lines without 'Key:' go to ``body`` after a header, are garbage before one.

        In a legacy ``Response: Follows`` only Response/Privilege/ActionID are
        headers: the CLI output after them is body, up to ``--END COMMAND--``.
        """
        headers: list[tuple[str, str]] = []
        body: list[str] = []
        garbage: list[str] = []
        for line in text.split("\n"):
            if line.endswith("\r"):
                line = line[:-1]
            key, colon, value = line.partition(":")
            if colon and key and not (follows and (body or key.lower() not in _FOLLOWS_HEADERS)):
                headers.append((key, value[1:] if value.startswith(" ") else value))
            elif headers:
                body.append(line)
            elif line:
                garbage.append(line)
        if follows and body and body[-1].endswith(_END_COMMAND):
            body[-1] = body[-1][: -len(_END_COMMAND)]
            if not body[-1]:
                body.pop()
        if garbage:
            shown = "\n".join(garbage).encode("utf-8", "surrogateescape")
            reason = "lines without 'Key:' before the first header; skipped"
            if not headers:
                reason = "no 'Key: value' header in message; skipped"
                shown = raw[:-1] if raw.endswith(b"\r") else raw
            self.errors.append(DecodeError(reason, shown))
        return AMIMessage(headers, body) if headers else None


_C_UNESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "'": "'", '"': '"', "?": "?",
}
_C_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def unescape_c(value: str) -> str:
    """Undo Asterisk's ``ast_escape_c`` (main/utils.c).

    It escapes exactly BEL BS FF LF CR TAB VT, backslash, single and double
    quote and '?' (as \\a \\b \\f \\n \\r \\t \\v \\\\ \\' \\" \\?).  Use it on
    CallerIDName / ConnectedLineName and their prefixed copies (DestCallerIDName,
    LocalOneCallerIDName, ...), never on OriginateResponse CallerIDName, VarSet
    Value or Newexten AppData, which Asterisk sends raw.  Any other backslash
    sequence is left as it is.
    """
    if "\\" not in value:
        return value
    return _C_ESCAPE.sub(lambda m: _C_UNESCAPES.get(m.group(1), m.group(0)), value)


_SEPARATE_ARGS_SPECIALS = re.compile(r'([\\,"()\[\]])')


def originate_variable(name: str, value: str) -> tuple[str, str]:
    """Build one ``("Variable", "NAME=value")`` header for Originate and friends.

    Asterisk splits every Variable: header at commas with its dialplan
    argument parser (manager.c man_do_variable_value, AST_STANDARD_APP_ARGS):
    "CC_NOTE=hello, world" sets CC_NOTE=hello and silently drops " world";
    quotes and backslashes are consumed, parentheses and brackets nest.  So
    pass SEVERAL variables as SEVERAL headers, one per variable, each built
    here; the value is backslash-escaped so it arrives unchanged::

        encode_action("Originate", [("Channel", "Local/4000@from-pstn"),
                                    originate_variable("CC_A", "1"),
                                    originate_variable("CC_NOTE", "hello, world")])

    (Setvar's Value: is not split and must NOT be escaped.)
    """
    if not name or "=" in name:
        raise ValueError(f"invalid channel variable name {name!r}")
    return "Variable", name + "=" + _SEPARATE_ARGS_SPECIALS.sub(r"\\\1", value)


def encode_action(
    name: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    action_id: str | None = None,
) -> bytes:
    """Encode ``Action: name``, ``ActionID`` (if given), then ``headers``, then a blank line.

    ``headers`` is a mapping or a list of pairs (repeat a key by repeating
    the pair).  Text is UTF-8 (``surrogateescape`` lets raw bytes received
    from Asterisk go back unchanged).  Raises ValueError, naming the header,
    for a CR, LF or NUL anywhere (header injection), a key that is empty or
    holds ':', a line over MAX_LINE_BYTES, or more than MAX_ACTION_LINES lines:
    Asterisk would answer such an action with an error or act on a mangled one.
    Note that Asterisk strips leading blanks from every value.
    """
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
    lines = [("Action", name)]
    if action_id is not None:
        lines.append(("ActionID", action_id))
    lines.extend(pairs)
    if len(lines) > MAX_ACTION_LINES:
        raise ValueError(
            f"action {name!r} has {len(lines)} lines; Asterisk keeps only {MAX_ACTION_LINES}"
        )
    out = []
    for key, value in lines:
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"header {key!r}: key and value must be str, got {value!r}")
        for part in (key, value):
            for bad, label in (("\r", "CR"), ("\n", "LF"), ("\0", "NUL")):
                if bad in part:
                    raise ValueError(f"header {key!r} contains {label}: {value!r} (header injection)")
        if not key or ":" in key or key != key.strip():
            raise ValueError(f"header {key!r}: a key must be non-empty, without ':' or edge blanks")
        line = f"{key}: {value}".encode("utf-8", "surrogateescape")
        if len(line) > MAX_LINE_BYTES:
            raise ValueError(
                f"header {key!r} is {len(line)} bytes; Asterisk accepts {MAX_LINE_BYTES} per line"
            )
        out.append(line)
    out.append(b"")
    out.append(b"")
    return b"\r\n".join(out)
