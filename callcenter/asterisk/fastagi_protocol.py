"""FastAGI wire format, without I/O.

Bytes from Asterisk go into :class:`AGIStreamDecoder`; typed messages come
out: one :class:`AGIEnvironment`, then :class:`AGIResult` /
:class:`AGIErrorReply` replies, :class:`AGIHangupLine` notices and
:class:`AGIUnparsedLine` for anything else (logged and skipped by the caller).
Commands go the other way through :func:`encode_command`.

What the captures of Asterisk 22 (tests/fixtures/asterisk-22) and res_agi.c
fix here:

* The environment is ``agi_key: value`` lines ended by LF, closed by an empty
  line.  Values are kept raw (only the one space after the colon is
  removed), so ``agi_accountcode: `` is ``""``.  Bytes that are not UTF-8
  (ISO-8859-1 caller names) are decoded with ``surrogateescape`` and
  round-trip exactly through ``.encode("utf-8", "surrogateescape")``.
* Replies: ``200 result=N [(value)] [extra]``, an empty result in
  ``200 result= (timeout)``, ``1xx`` interim lines (GOSUB's
  ``100 result=0 Trying...``), ``5xx text`` errors and the multi-line
  ``520-...`` usage block closed by ``520 End of proper usage.``.  A value
  holding a line feed (``${SHELL(...)}`` output) continues on the next lines
  until its closing parenthesis.
* ``HANGUP`` is not a reply: it can come right after a result, while idle,
  at the end of every session and twice with ``AGIEXITONHANGUP=yes``.
* Commands are split by res_agi.c ``parse_args``: blanks and tabs separate
  words, ``"`` toggles quoting, ``\\`` makes the next character literal.
  Asterisk reads at most ``AGI_BUF_LEN - 1`` (2047) bytes per command line
  (a longer line is cut and the rest run as a second command) and keeps at
  most ``MAX_ARGS - 1`` (127) words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Union
from urllib.parse import parse_qsl, urlsplit

#: Limits on the environment block (bytes include the empty closing line).
MAX_ENV_BYTES = 8 * 1024
MAX_ENV_LINES = 128
#: Limits on replies: one line, and one multi-line reply.
MAX_REPLY_LINE_BYTES = 64 * 1024
MAX_REPLY_LINES = 256
#: res_agi.c: ``char buf[AGI_BUF_LEN]`` (2048) read with fgets, ``MAX_ARGS`` 128.
MAX_COMMAND_BYTES = 2047
MAX_COMMAND_WORDS = 127

HANGUP_LINE = "HANGUP"
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"
#: What bytes.strip() removes.
_ASCII_BLANKS = " \t\n\r\x0b\x0c"


class AGIProtocolError(ValueError):
    """The byte stream from Asterisk breaks a framing rule or a limit."""

    def __init__(self, message: str, offending: bytes = b"") -> None:
        super().__init__(message)
        #: The first bytes of the offending input, for a log line.
        self.offending = offending[:200]


class EnvironmentLimitError(AGIProtocolError):
    """The environment block is larger than MAX_ENV_BYTES or MAX_ENV_LINES."""


def _decode(raw: bytes) -> str:
    return raw.decode(_ENCODING, _ERRORS)


# --------------------------------------------------------------------------
# Environment


class _computed_once:
    """A property of an immutable object, computed at its first use and kept
    in the instance (``functools.cached_property`` without its lock)."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self._func = func
        self._name = func.__name__
        self.__doc__ = func.__doc__

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self._name] = self._func(instance)
        return value


@dataclass(frozen=True)
class AGIEnvironment:
    """The ``agi_*`` block Asterisk sends when a FastAGI session starts."""

    values: Mapping[str, str]
    #: Lines without a colon, kept for a log line (Asterisk never sends them).
    malformed: tuple[str, ...] = ()

    def get(self, key: str, default: str = "") -> str:
        """``env.get("callerid")`` or ``env.get("agi_callerid")``."""
        if not key.startswith("agi_"):
            key = "agi_" + key
        return self.values.get(key, default)

    # The values never change: what every command or log line reads is computed once.
    @_computed_once
    def uniqueid(self) -> str:
        return self.get("uniqueid")

    @property
    def channel(self) -> str:
        return self.get("channel")

    @property
    def callerid(self) -> str:
        return self.get("callerid")

    @property
    def calleridname(self) -> str:
        return self.get("calleridname")

    @property
    def request(self) -> str:
        return self.get("request")

    @_computed_once
    def script_path(self) -> str:
        """``agi_network_script`` (``ivr?dnis=4000``), else the request URL path."""
        script = self.values.get("agi_network_script")
        if script is None:
            parts = urlsplit(self.request)
            script = parts.path + ("?" + parts.query if parts.query else "")
        return script

    @_computed_once
    def script(self) -> str:
        """The script name without query string and leading slashes: ``ivr``."""
        return self.script_path.partition("?")[0].lstrip("/")

    @_computed_once
    def params(self) -> Mapping[str, str]:
        """Query parameters of the script (``?dnis=4000``); last one wins."""
        query = self.script_path.partition("?")[2]
        if not query:
            return MappingProxyType({})
        pairs = parse_qsl(query, keep_blank_values=True, encoding=_ENCODING, errors=_ERRORS)
        return MappingProxyType(dict(pairs))

    @property
    def args(self) -> tuple[str, ...]:
        """``agi_arg_1`` .. ``agi_arg_N`` in order (the AGI() arguments)."""
        numbered = []
        for key, value in self.values.items():
            suffix = key[len("agi_arg_"):]
            if key.startswith("agi_arg_") and suffix.isdigit():
                numbered.append((int(suffix), value))
        return tuple(value for _, value in sorted(numbered))


def parse_environment(lines: Iterable[bytes]) -> AGIEnvironment:
    """Parse the lines of a complete environment block (without LF, without
    the closing empty line)."""
    values: dict[str, str] = {}
    malformed: list[str] = []
    lines = list(lines)
    # One decode for the block: LF and ':' are ASCII, so no character spans them.
    for line in _decode(b"\n".join(lines)).split("\n") if lines else ():
        key, sep, value = line.partition(":")
        key = key.strip(_ASCII_BLANKS)
        if not sep or not key:
            malformed.append(line)
            continue
        values[key] = value[1:] if value[:1] == " " else value
    return AGIEnvironment(MappingProxyType(values), tuple(malformed))


# --------------------------------------------------------------------------
# Replies


@dataclass(frozen=True)
class AGIResult:
    """A ``1xx``/``2xx`` reply: ``200 result=1 (value) endpos=3404``."""

    code: int
    #: The text after ``result=``; ``""`` for ``200 result= (timeout)``.
    result: str
    #: The text inside the parentheses, or None when there are none.
    value: str | None
    #: What follows the result and the value (``endpos=3404``, ``Gosub complete``).
    extra: str
    raw: str

    @property
    def provisional(self) -> bool:
        """An interim line (``100 result=0 Trying...``); the real reply follows."""
        return self.code < 200

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None

    @property
    def extras(self) -> Mapping[str, str]:
        """``key=value`` words of :attr:`extra`: ``{"endpos": "3404"}``."""
        pairs = (word.partition("=") for word in self.extra.split())
        return MappingProxyType({k: v for k, sep, v in pairs if sep and k})

    @property
    def endpos(self) -> int | None:
        value = self.extras.get("endpos")
        return int(value) if value is not None and value.lstrip("-").isdigit() else None


@dataclass(frozen=True)
class AGIErrorReply:
    """A ``5xx`` reply: 510 unknown command, 511 dead channel, 520 usage."""

    code: int
    #: First line's text (``Invalid command syntax.  Proper usage follows:``).
    message: str
    #: Usage text lines of a multi-line ``520-`` reply.
    usage: tuple[str, ...] = ()
    raw: str = ""


@dataclass(frozen=True)
class AGIHangupLine:
    """Asterisk's ``HANGUP`` notice: never the reply to a command."""

    raw: str = HANGUP_LINE


@dataclass(frozen=True)
class AGIUnparsedLine:
    """A line that is neither a reply nor ``HANGUP``; skipped."""

    raw: str


AGIReply = Union[AGIResult, AGIErrorReply]
AGIEvent = Union[AGIEnvironment, AGIResult, AGIErrorReply, AGIHangupLine, AGIUnparsedLine]

_STATUS = re.compile(r"(\d{3})([ -])(.*)\Z", re.DOTALL)
_RESULT = re.compile(r"result=(\S*)(?: (.*))?\Z", re.DOTALL)
# Greedy: the value runs to the last ')' that only a paren-free tail follows.
_VALUE = re.compile(r"\((.*)\)((?: [^()]*)?)\Z", re.DOTALL)
_USAGE_END = "End of proper usage."
#: ``_STATUS`` and ``_RESULT`` at once, for a line with a space after the code.
_RESULT_LINE = re.compile(r"(\d{3}) result=(\S*)(?: (.*))?\Z", re.DOTALL)
_HANGUP_EVENT = AGIHangupLine()


def _value_incomplete(text: str) -> bool:
    """True for ``200 result=1 (abc`` whose value goes on on the next line."""
    match = _STATUS.match(text)
    return match is not None and _opens_value(match)


def _opens_value(status: re.Match[str]) -> bool:
    """A ``1xx``/``2xx`` status line whose ``(value`` is not closed on it."""
    if status.group(2) != " " or int(status.group(1)) >= 300:
        return False
    rest = status.group(3)
    if "(" not in rest:
        return False
    result = _RESULT.match(rest)
    tail = result.group(2) if result else None
    return bool(tail and tail.startswith("(") and not _VALUE.match(tail))


def parse_reply(text: str) -> AGIResult | AGIErrorReply | AGIHangupLine | AGIUnparsedLine:
    """Parse one complete reply: a single line, or a whole multi-line reply
    joined with LF (as :class:`AGIStreamDecoder` assembles it)."""
    if text == HANGUP_LINE:
        return _HANGUP_EVENT
    match = _STATUS.match(text)
    if not match:
        return AGIUnparsedLine(text)
    return _parse_status(text, match)


def _parse_status(text: str, match: re.Match[str]) -> AGIResult | AGIErrorReply | AGIUnparsedLine:
    code, sep, rest = int(match.group(1)), match.group(2), match.group(3)
    if sep == "-":
        if code < 300:
            return AGIUnparsedLine(text)
        first, _, tail = rest.partition("\n")
        body = tail.split("\n") if tail else []
        closing = body.pop() if body else ""
        prefix = f"{code} "
        if closing.startswith(prefix):
            pass
        elif closing.endswith(prefix + _USAGE_END):
            # Old usage texts had no final LF: "...text520 End of proper usage."
            body.append(closing[: -len(prefix + _USAGE_END)])
        elif closing:
            body.append(closing)
        return AGIErrorReply(code, first, tuple(body), text)
    if code >= 300:
        return AGIErrorReply(code, rest, (), text)
    result = _RESULT.match(rest)
    if not result:
        return AGIResult(code, "", None, rest, text)
    value_text = result.group(2)
    if not value_text:
        return AGIResult(code, result.group(1), None, "", text)
    value, extra = None, value_text
    if value_text[0] == "(":
        enclosed = _VALUE.match(value_text)
        if enclosed:
            value, extra = enclosed.group(1), enclosed.group(2)
    return AGIResult(code, result.group(1), value, extra.strip(" "), text)


class AGIStreamDecoder:
    """Incremental decoder of what Asterisk sends on a FastAGI socket.

    ``feed(data)`` returns the messages completed by ``data``; partial input
    stays buffered.  Raises :class:`EnvironmentLimitError` or
    :class:`AGIProtocolError` when a limit is broken; the stream is then
    unusable.

    The environment is taken as one block once its empty line is in; after
    it a chunk is split into lines at once.  An unfinished line is kept and
    searched for its end only in the bytes that follow, so input trickling
    in one byte at a time costs no more than input arriving whole.
    """

    def __init__(
        self,
        max_env_bytes: int = MAX_ENV_BYTES,
        max_env_lines: int = MAX_ENV_LINES,
        max_line_bytes: int = MAX_REPLY_LINE_BYTES,
        max_reply_lines: int = MAX_REPLY_LINES,
    ) -> None:
        self._max_env_bytes = max_env_bytes
        self._max_env_lines = max_env_lines
        self._max_line_bytes = max_line_bytes
        self._max_reply_lines = max_reply_lines
        #: The environment so far, then the unfinished last line.
        self._buffer = bytearray()
        self._env_done = False
        #: Line feeds in the environment so far.
        self._env_lf = 0
        #: Lines of a reply spanning several lines, and its closing test.
        self._pending: list[str] = []
        self._pending_bytes = 0

    @property
    def environment_received(self) -> bool:
        return self._env_done

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete line or reply."""
        return len(self._buffer) + self._pending_bytes

    def feed(self, data: bytes) -> list[AGIEvent]:
        if not self._env_done:
            return self._feed_environment(data)
        if data and data.find(b"\n") == len(data) - 1 and not self._buffer and not self._pending:
            # The usual chunk: one whole reply line.
            line = data[:-1]
            event = _plain_replies.get(line) or self._reply_line(line)
            return [event] if event is not None else []
        events: list[AGIEvent] = []
        if self._buffer:
            end = data.find(b"\n")
            if end < 0:
                self._buffer += data
                self._check_line()
                return events
            self._buffer += data[:end]
            lines = [bytes(self._buffer)]
            self._buffer.clear()
            lines += data[end + 1:].split(b"\n")
        else:
            lines = data.split(b"\n")
        tail = lines.pop()
        for line in lines:
            event = None if self._pending else _plain_replies.get(line)
            if event is None:
                event = self._reply_line(line)
                if event is None:
                    continue
            events.append(event)
        if tail:
            self._buffer += tail
            self._check_line()
        return events

    # -- the environment block ----------------------------------------------

    def _feed_environment(self, data: bytes) -> list[AGIEvent]:
        buffer = self._buffer
        # The block ends at an empty line: a LF right after a LF, or first.
        search_from = max(len(buffer) - 1, 0)
        buffer += data
        if buffer[:1] == b"\n":
            end = -1
        else:
            end = buffer.find(b"\n\n", search_from)
            if end < 0:
                self._env_lf += data.count(b"\n")
                self._check_environment(len(buffer), self._env_lf)
                return []
        size = end + 2
        block = bytes(buffer[:end + 1])
        rest = bytes(buffer[size:])
        self._check_environment(size, block.count(b"\n"))
        buffer.clear()
        self._env_done = True
        events: list[AGIEvent] = [parse_environment(block.split(b"\n")[:-1])]
        if rest:
            events += self.feed(rest)
        return events

    def _check_environment(self, size: int, lines: int) -> None:
        """``size`` bytes and ``lines`` complete lines of environment so far."""
        buffer = self._buffer
        if size > self._max_env_bytes:
            start = buffer.rfind(b"\n", 0, self._max_env_bytes) + 1
            raise EnvironmentLimitError(
                f"environment block larger than {self._max_env_bytes} bytes",
                bytes(buffer[start:start + 200]),
            )
        if lines > self._max_env_lines:
            start = 0
            for _ in range(self._max_env_lines):
                start = buffer.index(b"\n", start) + 1
            raise EnvironmentLimitError(
                f"environment block has more than {self._max_env_lines} lines",
                bytes(buffer[start:buffer.index(b"\n", start)]),
            )

    # -- replies --------------------------------------------------------------

    def _check_line(self) -> None:
        if len(self._buffer) > self._max_line_bytes:
            raise AGIProtocolError(
                f"reply line longer than {self._max_line_bytes} bytes", bytes(self._buffer)
            )

    def _reply_line(self, line: bytes) -> AGIEvent | None:
        if self._pending:
            if line.endswith(b"\r"):
                line = line[:-1]
            return self._continue(line.decode(_ENCODING, _ERRORS), len(line))
        plain = len(line) <= _PLAIN_REPLY_BYTES and b"(" not in line
        if plain:
            known = _plain_replies.get(line)
            if known is not None:
                return known
        event = self._first_line(line)
        if plain and isinstance(event, _SHAREABLE) and len(_plain_replies) < _PLAIN_REPLIES_KEPT:
            _plain_replies[line] = event
        return event

    def _first_line(self, line: bytes) -> AGIEvent | None:
        if line.endswith(b"\r"):
            line = line[:-1]
        text = line.decode(_ENCODING, _ERRORS)
        result = _RESULT_LINE.match(text)
        if result is not None:
            # The usual reply, in one match: 200 result=1 [(value)] [extra].
            code_text, value_code, rest = result.groups()
            code = int(code_text)
            if code < 300:
                if rest is None:
                    return AGIResult(code, value_code, None, "", text)
                if rest[:1] != "(":
                    return AGIResult(code, value_code, None, rest.strip(" "), text)
                enclosed = _VALUE.match(rest)
                if enclosed is not None:
                    return AGIResult(code, value_code, enclosed.group(1), enclosed.group(2).strip(" "), text)
        match = _STATUS.match(text)
        if match is None:
            return _HANGUP_EVENT if text == HANGUP_LINE else AGIUnparsedLine(text)
        if (match.group(2) == "-" and int(match.group(1)) >= 300) or _opens_value(match):
            self._pending = [text]
            self._pending_bytes = len(line)
            return None
        return _parse_status(text, match)

    def _continue(self, text: str, size: int) -> AGIEvent | None:
        self._pending.append(text)
        self._pending_bytes += size + 1
        if len(self._pending) > self._max_reply_lines or self._pending_bytes > self._max_line_bytes:
            head = self._pending[0].encode(_ENCODING, _ERRORS)
            raise AGIProtocolError(
                f"multi-line reply longer than {self._max_reply_lines} lines "
                f"or {self._max_line_bytes} bytes",
                head,
            )
        first = self._pending[0]
        joined = "\n".join(self._pending)
        if first[3] == "-":
            prefix = first[:3] + " "
            if not (text.startswith(prefix) or text.endswith(prefix + _USAGE_END)):
                return None
        elif _value_incomplete(joined):
            return None
        self._pending = []
        self._pending_bytes = 0
        return parse_reply(joined)


#: Short reply lines without a value (so nothing of the caller's), such as
#: ``200 result=0 endpos=1600``, are parsed once per process and shared: the
#: events are frozen.
_PLAIN_REPLY_BYTES = 64
_PLAIN_REPLIES_KEPT = 256
_SHAREABLE = (AGIResult, AGIErrorReply, AGIHangupLine)
_plain_replies: dict[bytes, AGIEvent] = {}


def truncated(data: bytes | str, limit: int = 120) -> str:
    """A bounded repr of untrusted input, for log lines."""
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}...(+{len(data) - limit})"


# --------------------------------------------------------------------------
# Commands

_FORBIDDEN = {"\r": "a carriage return (\\r)", "\n": "a line feed (\\n)", "\x00": "a NUL byte"}
_NEEDS_QUOTES = re.compile(r'[\s"\\]')
#: A word sent as it is: not empty, no blank (CR and LF are blanks), quote, backslash or NUL.
_BARE_WORD = re.compile(r'[^\s"\\\x00]+')
#: A word put in quotes as it is: no quote, backslash, CR, LF or NUL to escape or refuse.
_QUOTABLE = re.compile(r'[^"\\\r\n\x00]*')


class QuotedArg(str):
    """An argument that :func:`encode_command` always puts in double quotes."""


def quote_arg(arg: str, *, always: bool = False) -> str:
    """Quote one argument so that res_agi.c ``parse_args`` gives it back.

    Plain words stay as they are (``beep``, ``CALLERID(name)``); an empty
    argument, or one holding a blank, a tab, ``"`` or ``\\``, is put in double
    quotes with ``"`` and ``\\`` escaped by a backslash.
    """
    for char, name in _FORBIDDEN.items():
        if char in arg:
            raise ValueError(f"AGI argument {arg[:40]!r} contains {name}; refused")
    if not always and arg and not _NEEDS_QUOTES.search(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_command(*words: str | int) -> bytes:
    """One AGI command line, LF-terminated: ``encode_command("STREAM", "FILE",
    "beep", "")`` -> ``b'STREAM FILE beep ""\\n'``.

    Raises ValueError for CR, LF or NUL in a word, for more than 127 words
    or for a line longer than Asterisk reads in one go (2047 bytes).
    """
    parts = []
    for word in words:
        # The usual words take one regular expression each; anything else
        # (and every error) goes the long way.
        kind = word.__class__
        if kind is str:
            if _BARE_WORD.fullmatch(word):  # type: ignore[arg-type]
                parts.append(word)
            elif not word and parts:
                parts.append('""')
            else:
                return _encode_words(words)
        elif kind is int:
            parts.append(str(word))
        elif kind is QuotedArg and _QUOTABLE.fullmatch(word) and parts:  # type: ignore[arg-type]
            parts.append('"' + word + '"')  # type: ignore[operator]
        else:
            return _encode_words(words)
    if not parts or len(parts) > MAX_COMMAND_WORDS:
        return _encode_words(words)
    line = (" ".join(parts) + "\n").encode(_ENCODING, _ERRORS)
    if len(line) > MAX_COMMAND_BYTES:
        return _encode_words(words)
    return line


def _encode_words(words: tuple[str | int, ...]) -> bytes:
    if not words:
        raise ValueError("empty AGI command")
    parts = []
    for index, word in enumerate(words):
        if isinstance(word, bool) or not isinstance(word, (str, int)):
            raise TypeError(f"AGI command word {index} must be str or int, not {type(word).__name__}")
        text = str(word)
        try:
            parts.append(quote_arg(text, always=isinstance(word, QuotedArg)))
        except ValueError as exc:
            raise ValueError(f"AGI command word {index}: {exc}") from None
    if not parts[0] or parts[0].startswith('"'):
        raise ValueError(f"AGI command verb {words[0]!r} must be a plain word")
    if len(parts) > MAX_COMMAND_WORDS:
        raise ValueError(f"AGI command has {len(parts)} words; Asterisk keeps {MAX_COMMAND_WORDS}")
    line = (" ".join(parts) + "\n").encode(_ENCODING, _ERRORS)
    if len(line) > MAX_COMMAND_BYTES:
        raise ValueError(
            f"AGI command line is {len(line)} bytes; Asterisk reads at most {MAX_COMMAND_BYTES}"
        )
    return line


def decode_command(line: bytes) -> list[str]:
    """Split a command line the way res_agi.c ``parse_args`` does (for the
    simulator and for tests)."""
    text = _decode(line[:-1] if line.endswith(b"\n") else line)
    words: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    in_word = False
    for char in text:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and not in_word:
                in_word = True
            continue
        if char in " \t" and not quoted and not escaped:
            if in_word:
                words.append("".join(current))
                current = []
                in_word = False
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        in_word = True
        current.append(char)
        escaped = False
    if in_word:
        words.append("".join(current))
    return words


__all__ = [
    "AGIEnvironment",
    "AGIErrorReply",
    "AGIEvent",
    "AGIHangupLine",
    "AGIProtocolError",
    "AGIReply",
    "AGIResult",
    "AGIStreamDecoder",
    "AGIUnparsedLine",
    "EnvironmentLimitError",
    "MAX_COMMAND_BYTES",
    "MAX_COMMAND_WORDS",
    "MAX_ENV_BYTES",
    "MAX_ENV_LINES",
    "QuotedArg",
    "decode_command",
    "encode_command",
    "parse_environment",
    "parse_reply",
    "quote_arg",
    "truncated",
]
