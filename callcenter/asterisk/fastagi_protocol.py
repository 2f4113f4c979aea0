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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Union
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

    @property
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

    @property
    def script_path(self) -> str:
        """``agi_network_script`` (``ivr?dnis=4000``), else the request URL path."""
        script = self.values.get("agi_network_script")
        if script is None:
            parts = urlsplit(self.request)
            script = parts.path + ("?" + parts.query if parts.query else "")
        return script

    @property
    def script(self) -> str:
        """The script name without query string and leading slashes: ``ivr``."""
        return self.script_path.partition("?")[0].lstrip("/")

    @property
    def params(self) -> Mapping[str, str]:
        """Query parameters of the script (``?dnis=4000``); last one wins."""
        query = self.script_path.partition("?")[2]
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
    for raw in lines:
        key, sep, value = raw.partition(b":")
        if not sep or not key.strip():
            malformed.append(_decode(raw))
            continue
        if value.startswith(b" "):
            value = value[1:]
        values[_decode(key.strip())] = _decode(value)
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


def _value_incomplete(text: str) -> bool:
    """True for ``200 result=1 (abc`` whose value goes on on the next line."""
    match = _STATUS.match(text)
    if not match or match.group(2) != " " or int(match.group(1)) >= 300:
        return False
    result = _RESULT.match(match.group(3))
    rest = result.group(2) if result else None
    return bool(rest and rest.startswith("(") and not _VALUE.match(rest))


def parse_reply(text: str) -> AGIResult | AGIErrorReply | AGIHangupLine | AGIUnparsedLine:
    """Parse one complete reply: a single line, or a whole multi-line reply
    joined with LF (as :class:`AGIStreamDecoder` assembles it)."""
    if text == HANGUP_LINE:
        return AGIHangupLine()
    match = _STATUS.match(text)
    if not match:
        return AGIUnparsedLine(text)
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
    value_text = result.group(2) or ""
    value, extra = None, value_text
    if value_text.startswith("("):
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
        self._buffer = bytearray()
        self._scanned = 0
        self._env_lines: list[bytes] | None = []
        self._env_bytes = 0
        #: Lines of a reply spanning several lines, and its closing test.
        self._pending: list[str] = []
        self._pending_bytes = 0

    @property
    def environment_received(self) -> bool:
        return self._env_lines is None

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete line or reply."""
        return len(self._buffer) + self._pending_bytes

    def feed(self, data: bytes) -> list[AGIEvent]:
        self._buffer += data
        events: list[AGIEvent] = []
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end < 0:
                self._scanned = len(self._buffer)
                self._check_partial()
                return events
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            self._scanned = 0
            event = self._env_line(line) if self._env_lines is not None else self._reply_line(line)
            if event is not None:
                events.append(event)

    def _check_partial(self) -> None:
        size = len(self._buffer)
        if self._env_lines is not None:
            if self._env_bytes + size > self._max_env_bytes:
                raise EnvironmentLimitError(
                    f"environment block larger than {self._max_env_bytes} bytes",
                    bytes(self._buffer),
                )
        elif size > self._max_line_bytes:
            raise AGIProtocolError(
                f"reply line longer than {self._max_line_bytes} bytes", bytes(self._buffer)
            )

    def _env_line(self, line: bytes) -> AGIEnvironment | None:
        assert self._env_lines is not None
        self._env_bytes += len(line) + 1
        if self._env_bytes > self._max_env_bytes:
            raise EnvironmentLimitError(
                f"environment block larger than {self._max_env_bytes} bytes", line
            )
        if not line:
            env = parse_environment(self._env_lines)
            self._env_lines = None
            return env
        if len(self._env_lines) >= self._max_env_lines:
            raise EnvironmentLimitError(
                f"environment block has more than {self._max_env_lines} lines", line
            )
        self._env_lines.append(line)
        return None

    def _reply_line(self, line: bytes) -> AGIEvent | None:
        if line.endswith(b"\r"):
            line = line[:-1]
        text = _decode(line)
        if self._pending:
            return self._continue(text, len(line))
        match = _STATUS.match(text)
        if match and match.group(2) == "-" and int(match.group(1)) >= 300:
            self._start_pending(text, len(line))
            return None
        if _value_incomplete(text):
            self._start_pending(text, len(line))
            return None
        return parse_reply(text)

    def _start_pending(self, text: str, size: int) -> None:
        self._pending = [text]
        self._pending_bytes = size

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


def truncated(data: bytes | str, limit: int = 120) -> str:
    """A bounded repr of untrusted input, for log lines."""
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}...(+{len(data) - limit})"


# --------------------------------------------------------------------------
# Commands

_FORBIDDEN = {"\r": "a carriage return (\\r)", "\n": "a line feed (\\n)", "\x00": "a NUL byte"}
_NEEDS_QUOTES = re.compile(r'[\s"\\]')


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
