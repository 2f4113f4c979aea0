"""FastAGI: wire format, session reply matching, server routing and fallback.

Driven by the byte-exact Asterisk 22.10.1 captures in tests/fixtures/asterisk-22
(agi_session.txt, the *.raw files, more/agi_utf8_callerid.*), fed in every
chunk size through StringTransport with a task.Clock.
"""

from __future__ import annotations

import logging
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import error, task
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from callcenter.asterisk.channel_vars import CC_QUEUE, CC_RESULT, RESULT_FALLBACK
from callcenter.asterisk.fastagi_protocol import (
    MAX_COMMAND_BYTES,
    MAX_COMMAND_WORDS,
    AGIEnvironment,
    AGIErrorReply,
    AGIHangupLine,
    AGIProtocolError,
    AGIResult,
    AGIStreamDecoder,
    AGIUnparsedLine,
    EnvironmentLimitError,
    QuotedArg,
    decode_command,
    encode_command,
    parse_reply,
)
from callcenter.asterisk.fastagi_server import FastAGIServerFactory
from callcenter.asterisk.fastagi_session import (
    AGICommandError,
    AGICommandFailed,
    AGIConnectionLost,
    AGIDeadChannel,
    AGIHangup,
    AGIPlaybackFailed,
    AGISession,
    AGITimeout,
    Deadlines,
    FastAGIProtocol,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "asterisk-22"
SESSION1_RAW = (FIXTURES / "agi_session1_full_call.from_asterisk.raw").read_bytes()
SESSION3_RAW = (FIXTURES / "agi_session3_hangup.from_asterisk.raw").read_bytes()
UTF8_RAW = (FIXTURES / "more" / "agi_utf8_callerid.from_asterisk.raw").read_bytes()
DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"


# ---------------------------------------------------------------------------
# Transcript loading


@dataclass
class Command:
    line: bytes
    #: "" | "hungup" (Asterisk said HANGUP before it) | "closed" (sent after EOF)
    gate: str
    #: Raw text of the reply it got, or None when the connection was gone.
    reply: str | None


@dataclass
class Transcript:
    name: str
    from_asterisk: bytes
    commands: list[Command] = field(default_factory=list)

    @property
    def written(self) -> bytes:
        return b"".join(c.line for c in self.commands if c.gate != "closed")


_STEP = re.compile(r"^\s+\+\d+\.\d+s (A->S|S->A) (.*)$")
_TITLE = re.compile(r"^=+\n(.+)\n=+\n", re.MULTILINE)


def _steps(body: str) -> list[tuple[str, bytes | None]]:
    steps = []
    for line in body.splitlines():
        match = _STEP.match(line)
        if not match:
            continue
        payload = match.group(2)
        if payload == "<EOF>":
            steps.append((match.group(1), None))
        else:
            assert payload.endswith("\\n"), line
            steps.append((match.group(1), payload[:-2].encode("utf-8") + b"\n"))
    return steps


def _replies(lines: list[bytes]) -> list[str]:
    """Group reply lines: ``520-`` blocks run to their ``520 `` line."""
    replies, block = [], []
    for raw in lines:
        text = raw[:-1].decode("utf-8", "surrogateescape")
        if block:
            block.append(text)
            if text.startswith(block[0][:3] + " "):
                replies.append("\n".join(block))
                block = []
        elif re.match(r"\d{3}-", text):
            block = [text]
        elif text != "HANGUP":
            replies.append(text)
    return replies


def _transcript(name: str, steps: list[tuple[str, bytes | None]], replies: list[str] | None = None) -> Transcript:
    a_to_s = [payload for direction, payload in steps if direction == "A->S" and payload is not None]
    env_end = a_to_s.index(b"\n") + 1
    script = Transcript(name, b"".join(a_to_s))
    # Walk the steps after the environment block, tracking what Asterisk sent
    # between two commands.
    reply_lines: list[list[bytes]] = []
    seen_since: list[bytes | None] = []
    started = False
    for direction, payload in steps:
        if direction == "A->S" and payload == b"\n" and not started:
            started = True
            continue
        if not started:
            continue
        if direction == "S->A":
            gate = "closed" if None in seen_since else ("hungup" if b"HANGUP\n" in seen_since else "")
            script.commands.append(Command(payload, gate, None))
            reply_lines.append([])
            seen_since = []
        else:
            seen_since.append(payload)
            if reply_lines and payload is not None:
                reply_lines[-1].append(payload)
    if replies is None:
        for command, lines in zip(script.commands, reply_lines):
            grouped = _replies(lines)
            command.reply = grouped[0] if grouped and command.gate != "closed" else None
    else:
        for command, reply in zip(script.commands, replies):
            command.reply = reply
    assert env_end > 1
    return script


def load_agi_sessions() -> list[Transcript]:
    """Sessions 1-5 and EXTRA of agi_session.txt."""
    text = (FIXTURES / "agi_session.txt").read_text("utf-8")
    parts = _TITLE.split(text)
    return [
        _transcript(title.split(":")[0].split(" (")[0].strip(), _steps(body))
        for title, body in zip(parts[1::2], parts[2::2])
    ]


def load_utf8_sessions() -> list[Transcript]:
    """The 7 caller-name sessions: commands from the .txt, bytes from the .raw."""
    text = (FIXTURES / "more" / "agi_utf8_callerid.txt").read_text("utf-8")
    parts = _TITLE.split(text)
    raws = [part + b"HANGUP\n" for part in UTF8_RAW.split(b"HANGUP\n")[:-1]]
    sessions = []
    for index, (body, raw) in enumerate(zip(parts[2::2], raws)):
        env_end = raw.index(b"\n\n") + 2
        replies = _replies([line + b"\n" for line in raw[env_end:].split(b"\n")[:-1]])
        script = _transcript(f"utf8-{index + 1}", _steps(body), replies)
        script.from_asterisk = raw
        sessions.append(script)
    return sessions


AGI_SESSIONS = load_agi_sessions()
UTF8_SESSIONS = load_utf8_sessions()
ALL_SESSIONS = AGI_SESSIONS + UTF8_SESSIONS


# ---------------------------------------------------------------------------
# Harness


class HalfCloseTransport(StringTransport):
    """StringTransport that also records a TCP half-close."""

    write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True


def env_block(script: str = "ivr?dnis=4000", uniqueid: str = "1795535416.1", **extra: str) -> bytes:
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1:4573/{script}",
        "agi_channel: Local/4000@from-pstn-00000000;2",
        f"agi_uniqueid: {uniqueid}",
        "agi_callerid: 5551001",
        "agi_calleridname: Jane Doe",
        "agi_dnid: unknown",
        "agi_extension: 4000",
        "agi_accountcode: ",
    ] + [f"agi_{key}: {value}" for key, value in extra.items()]
    return ("\n".join(lines) + "\n\n").encode()


class Harness:
    """A FastAGIProtocol on a StringTransport with a Clock."""

    def __init__(self, *, half_close: bool = True, **options) -> None:
        self.clock = task.Clock()
        self.sessions: list[AGISession] = []
        self.proto = FastAGIProtocol(self.clock, self.sessions.append, **options)
        self.transport = HalfCloseTransport() if half_close else StringTransport()
        self.proto.makeConnection(self.transport)

    @property
    def session(self) -> AGISession:
        return self.sessions[0]

    def feed(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def start(self, **extra: str) -> AGISession:
        self.feed(env_block(**extra))
        return self.session

    def written(self) -> bytes:
        value = self.transport.value()
        self.transport.clear()
        return value

    def eof(self) -> None:
        self.proto.connectionLost(Failure(error.ConnectionDone()))


class ServerHarness:
    """FastAGIServerFactory + one connection on a StringTransport."""

    def __init__(self, handlers, *, half_close: bool = True, **options) -> None:
        self.clock = task.Clock()
        self.factory = FastAGIServerFactory(handlers, self.clock, **options)
        self.factory.doStart()
        self.proto = self.factory.buildProtocol(None)
        self.transport = HalfCloseTransport() if half_close else StringTransport()
        self.proto.makeConnection(self.transport)

    def feed(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def eof(self) -> None:
        self.proto.connectionLost(Failure(error.ConnectionDone()))


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def result_of(d: Deferred):
    """The value of a fired Deferred (raises its failure)."""
    box = []
    d.addBoth(box.append)
    assert box, "Deferred has not fired"
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def failure_of(d: Deferred) -> Failure:
    box = []
    d.addBoth(box.append)
    assert box and isinstance(box[0], Failure), f"expected a failure, got {box}"
    return box[0]


def pending(d: Deferred) -> bool:
    """True while ``d`` has no result (also while it waits on a chained Deferred)."""
    box: list = []
    d.addBoth(lambda result: box.append(result) or result)
    return not box


# ---------------------------------------------------------------------------
# Transcripts end to end, every chunk size


def test_transcript_loader_sees_every_session():
    """agi_session.txt gives sessions 1-5 + EXTRA; the utf8 capture 7 sessions."""
    assert [s.name for s in AGI_SESSIONS] == [
        "SESSION 1", "SESSION 2", "SESSION 3", "SESSION 4", "SESSION 5", "EXTRA SESSION 1",
    ]
    assert len(UTF8_SESSIONS) == 7
    assert [c.gate for c in AGI_SESSIONS[4].commands] == ["", "", "closed"]
    assert AGI_SESSIONS[3].commands[1].gate == "hungup"


def test_raw_captures_equal_the_visible_transcripts():
    """The .raw files hold exactly the A->S bytes of sessions 1 and 3."""
    assert AGI_SESSIONS[0].from_asterisk == SESSION1_RAW
    assert AGI_SESSIONS[2].from_asterisk == SESSION3_RAW


def test_every_captured_command_is_reproduced_byte_for_byte_by_the_encoder():
    """decode_command then encode_command gives back each S->A line unchanged."""
    lines = [c.line for s in ALL_SESSIONS for c in s.commands]
    assert len(lines) > 50
    for line in lines:
        assert encode_command(*decode_command(line)) == line


def _replay(script: Transcript, log: list):
    async def handler(session: AGISession) -> None:
        for command in script.commands:
            if command.gate == "hungup":
                await session.when_hungup()
            elif command.gate == "closed":
                await session.when_closed()
            try:
                reply = await session.send(*decode_command(command.line))
            except AGIConnectionLost:
                log.append(None)
            else:
                log.append(reply.raw)
    return handler


@pytest.mark.parametrize("script", ALL_SESSIONS, ids=lambda s: s.name)
def test_captured_session_replays_in_every_chunk_size(script):
    """Each command gets exactly its captured reply and the exact bytes are
    written, whatever the TCP segmentation."""
    stream = script.from_asterisk
    expected_replies = [c.reply for c in script.commands]
    for size in range(1, len(stream) + 1):
        log: list = []
        server = ServerHarness({"ivr": _replay(script, log)})
        for chunk in chunks(stream, size):
            server.feed(chunk)
        server.eof()
        assert server.transport.value() == script.written, size
        assert log == expected_replies, size
        assert server.proto.hungup
        assert server.clock.getDelayedCalls() == []
        assert server.factory.active_sessions == 0
    if script.commands[-1].gate != "closed":
        assert server.transport.write_closed


# ---------------------------------------------------------------------------
# Environment block


def test_environment_of_the_full_call_capture():
    """Keys kept raw, empty accountcode, script and query params split."""
    events = AGIStreamDecoder().feed(SESSION1_RAW)
    env = events[0]
    assert isinstance(env, AGIEnvironment)
    assert env.values["agi_network"] == "yes"
    assert env.values["agi_accountcode"] == ""
    assert env.get("accountcode") == ""
    assert env.uniqueid == "1795535416.1"
    assert env.channel == "Local/4000@from-pstn-00000000;2"
    assert env.calleridname == "Jane Doe"
    assert env.script == "ivr"
    assert dict(env.params) == {"dnis": "4000"}
    assert env.args == ()
    assert len(env.values) == 22


def test_agi_arg_lines_become_ordered_args():
    """agi_arg_N values come back in numeric order."""
    env = AGIStreamDecoder().feed(env_block(arg_10="ten", arg_2="two", arg_1="one words"))[0]
    assert env.args == ("one words", "two", "ten")


def test_script_taken_from_request_url_without_network_script():
    """Without agi_network_script the request URL path and query are used."""
    data = b"agi_request: agi://h:4573/sales/main?dnis=5000&lang=fr&empty=\n\n"
    env = AGIStreamDecoder().feed(data)[0]
    assert env.script == "sales/main"
    assert dict(env.params) == {"dnis": "5000", "lang": "fr", "empty": ""}


def test_utf8_caller_names_decoded_from_capture():
    """UTF-8 names are str; quotes and backslashes are kept raw."""
    names = [AGIStreamDecoder().feed(s.from_asterisk)[0].calleridname for s in UTF8_SESSIONS]
    assert names[:6] == ["张伟", "Zoë Müller", 'Say "Hi" \\ Bob', 'O"Brien  Co', "Dan O'Neil?", "Smith, John"]


def test_invalid_utf8_caller_name_kept_with_surrogateescape():
    """ISO-8859-1 bytes survive as surrogates and encode back to the same bytes."""
    env = AGIStreamDecoder().feed(UTF8_SESSIONS[6].from_asterisk)[0]
    name = env.calleridname
    assert isinstance(name, str)
    assert name.encode("utf-8", "surrogateescape") == b"Zo\xeb L\xe4tin1"


def test_environment_line_without_colon_is_kept_aside():
    """A line with no colon is reported as malformed, the rest parsed."""
    env = AGIStreamDecoder().feed(b"agi_uniqueid: 1.2\ngarbage\n\n")[0]
    assert env.uniqueid == "1.2"
    assert env.malformed == ("garbage",)


def test_environment_of_exactly_128_lines_is_accepted():
    """128 lines (8 KiB or less) is within the limit."""
    data = b"".join(b"agi_arg_%d: x\n" % i for i in range(128)) + b"\n"
    assert isinstance(AGIStreamDecoder().feed(data)[0], AGIEnvironment)


def test_environment_of_129_lines_is_refused():
    """The 129th line raises EnvironmentLimitError naming the limit."""
    data = b"".join(b"agi_arg_%d: x\n" % i for i in range(129)) + b"\n"
    with pytest.raises(EnvironmentLimitError, match="more than 128 lines"):
        AGIStreamDecoder().feed(data)


def test_environment_over_8_kib_is_refused_even_without_line_end():
    """A 9000-byte line with no LF is refused as soon as it passes 8 KiB."""
    decoder = AGIStreamDecoder()
    decoder.feed(b"agi_calleridname: " + b"x" * 8000)
    with pytest.raises(EnvironmentLimitError, match="8192 bytes") as info:
        decoder.feed(b"x" * 1000)
    assert info.value.offending.startswith(b"agi_calleridname: xxx")
    assert len(info.value.offending) <= 200


def test_environment_over_8_kib_in_complete_lines_is_refused():
    """Complete lines adding up to more than 8 KiB are refused."""
    data = b"".join(b"agi_arg_%d: %s\n" % (i, b"y" * 200) for i in range(60)) + b"\n"
    with pytest.raises(EnvironmentLimitError):
        AGIStreamDecoder().feed(data)


# ---------------------------------------------------------------------------
# Replies


@pytest.mark.parametrize(
    "line, expected",
    [
        ("200 result=1", AGIResult(200, "1", None, "", "200 result=1")),
        ("200 result=1 (5551002)", AGIResult(200, "1", "5551002", "", "200 result=1 (5551002)")),
        ("200 result= (timeout)", AGIResult(200, "", "timeout", "", "200 result= (timeout)")),
        ("200 result=-1", AGIResult(200, "-1", None, "", "200 result=-1")),
        ("200 result=0 endpos=3404", AGIResult(200, "0", None, "endpos=3404", "200 result=0 endpos=3404")),
        ("200 result=-1 endpos=0", AGIResult(200, "-1", None, "endpos=0", "200 result=-1 endpos=0")),
        ("200 result=-2", AGIResult(200, "-2", None, "", "200 result=-2")),
        ("200 result=6", AGIResult(200, "6", None, "", "200 result=6")),
        ("200 result=1 (王芳 (VIP))", AGIResult(200, "1", "王芳 (VIP)", "", "200 result=1 (王芳 (VIP))")),
        ('200 result=1 ("Say "Hi" \\ Bob" <5551012>)',
         AGIResult(200, "1", '"Say "Hi" \\ Bob" <5551012>', "", '200 result=1 ("Say "Hi" \\ Bob" <5551012>)')),
        ("200 result=49 (dtmf) endpos=1600",
         AGIResult(200, "49", "dtmf", "endpos=1600", "200 result=49 (dtmf) endpos=1600")),
        ("100 result=0 Trying...", AGIResult(100, "0", None, "Trying...", "100 result=0 Trying...")),
        ("510 Invalid or unknown command", AGIErrorReply(510, "Invalid or unknown command", (), "510 Invalid or unknown command")),
        ("511 Command Not Permitted on a dead channel or intercept routine",
         AGIErrorReply(511, "Command Not Permitted on a dead channel or intercept routine", (),
                       "511 Command Not Permitted on a dead channel or intercept routine")),
        ("520 Invalid command syntax.  Proper usage not available.",
         AGIErrorReply(520, "Invalid command syntax.  Proper usage not available.", (),
                       "520 Invalid command syntax.  Proper usage not available.")),
        ("HANGUP", AGIHangupLine()),
        ("hello", AGIUnparsedLine("hello")),
    ],
)
def test_reply_line_parses_to_typed_reply(line, expected):
    """Every reply kind seen from Asterisk 22 parses to its typed value."""
    assert parse_reply(line) == expected


def test_result_helpers_expose_number_endpos_and_provisional():
    """result_int, endpos and provisional read the parsed fields."""
    reply = parse_reply("200 result=0 endpos=3404")
    assert (reply.result_int, reply.endpos, reply.provisional) == (0, 3404, False)
    assert parse_reply("200 result= (timeout)").result_int is None
    assert parse_reply("100 result=0 Trying...").provisional


def test_multiline_usage_reply_from_capture():
    """520- ... 520 End of proper usage. becomes one reply with the usage lines."""
    data = (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
        b"Returns the digits received from the channel at the other end.\n"
        b"520 End of proper usage.\n"
    )
    decoder = AGIStreamDecoder()
    decoder.feed(b"\n")
    (reply,) = decoder.feed(data)
    assert reply.code == 520
    assert reply.message == "Invalid command syntax.  Proper usage follows:"
    assert reply.usage == (
        "Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
        "Returns the digits received from the channel at the other end.",
    )


def test_old_usage_text_without_final_line_feed_still_ends_the_block():
    """'...text520 End of proper usage.' closes a 520- block too."""
    decoder = AGIStreamDecoder()
    decoder.feed(b"\n")
    (reply,) = decoder.feed(b"520-Invalid command syntax.  Proper usage follows:\nUsage text.520 End of proper usage.\n")
    assert reply.usage == ("Usage text.",)


def test_value_with_line_feed_continues_to_its_closing_parenthesis():
    """A value holding LF (SHELL output) is one reply, not two."""
    decoder = AGIStreamDecoder()
    decoder.feed(b"\n")
    events = decoder.feed(b"200 result=1 (line1\nHANGUP\n200 result=0)\n200 result=0\n")
    assert events == [
        AGIResult(200, "1", "line1\nHANGUP\n200 result=0", "", "200 result=1 (line1\nHANGUP\n200 result=0)"),
        AGIResult(200, "0", None, "", "200 result=0"),
    ]


def test_overlong_reply_line_is_a_protocol_error():
    """A reply line over 64 KiB without LF breaks the stream."""
    decoder = AGIStreamDecoder()
    decoder.feed(b"\n")
    with pytest.raises(AGIProtocolError, match="reply line longer"):
        decoder.feed(b"200 result=1 (" + b"z" * 70000)


@pytest.mark.parametrize("raw", [SESSION1_RAW, SESSION3_RAW, UTF8_RAW.split(b"HANGUP\n")[6] + b"HANGUP\n"])
def test_decoder_gives_the_same_events_in_every_chunk_size(raw):
    """Segmentation never changes what the decoder produces."""
    whole = AGIStreamDecoder().feed(raw)
    for size in range(1, len(raw) + 1):
        decoder = AGIStreamDecoder()
        events = []
        for chunk in chunks(raw, size):
            events += decoder.feed(chunk)
        assert events == whole, size
        assert decoder.buffered == 0


# ---------------------------------------------------------------------------
# Command encoding


@pytest.mark.parametrize(
    "words, line",
    [
        (("EXEC", "Playback", "beep"), b"EXEC Playback beep\n"),
        (("GET", "DATA", "beep", 3000, 1), b"GET DATA beep 3000 1\n"),
        (("STREAM", "FILE", "beep", ""), b'STREAM FILE beep ""\n'),
        (("SET", "VARIABLE", "CC_NOTE", "hello world"), b'SET VARIABLE CC_NOTE "hello world"\n'),
        (("SET", "VARIABLE", "X", 'say "hi"'), b'SET VARIABLE X "say \\"hi\\""\n'),
        (("SET", "VARIABLE", "X", "back\\slash"), b'SET VARIABLE X "back\\\\slash"\n'),
        (("SET", "VARIABLE", "X", "tab\there"), b'SET VARIABLE X "tab\there"\n'),
        (("SET", "VARIABLE", "X", QuotedArg("fallback")), b'SET VARIABLE X "fallback"\n'),
        (("SET", "VARIABLE", "CALLERID(name)", "王芳 (VIP)"),
         'SET VARIABLE CALLERID(name) "王芳 (VIP)"\n'.encode()),
        (("GET", "FULL", "VARIABLE", "${CALLERID(name)}-${EXTEN}"),
         b"GET FULL VARIABLE ${CALLERID(name)}-${EXTEN}\n"),
    ],
)
def test_command_encoding_quotes_only_what_parse_args_needs(words, line):
    """Plain words stay bare; empty, blank, quote and backslash are quoted."""
    assert encode_command(*words) == line
    assert decode_command(line) == [str(w) for w in words]


def test_surrogate_escaped_text_goes_back_out_as_the_original_bytes():
    """A caller name with invalid UTF-8 is sent as the bytes it came in as."""
    name = b"Zo\xeb L\xe4tin1".decode("utf-8", "surrogateescape")
    assert encode_command("SET", "VARIABLE", "N", name) == b'SET VARIABLE N "Zo\xeb L\xe4tin1"\n'


@pytest.mark.parametrize(
    "bad, name",
    [("a\nb", "line feed"), ("a\rb", "carriage return"), ("a\x00b", "NUL")],
)
def test_command_encoding_refuses_line_breaks_and_nul(bad, name):
    """CR, LF and NUL would inject a second command: ValueError names it."""
    with pytest.raises(ValueError, match=name):
        encode_command("SET", "VARIABLE", "X", bad)


def test_command_encoding_refuses_what_asterisk_would_truncate():
    """More than 127 words or 2047 bytes is refused, a plain verb required."""
    with pytest.raises(ValueError, match="127"):
        encode_command("VERBOSE", *["w"] * MAX_COMMAND_WORDS)
    with pytest.raises(ValueError, match=str(MAX_COMMAND_BYTES)):
        encode_command("VERBOSE", "x" * 2040, 1)
    with pytest.raises(ValueError, match="verb"):
        encode_command("GET DATA", "beep")
    with pytest.raises(ValueError, match="empty"):
        encode_command()
    with pytest.raises(TypeError):
        encode_command("VERBOSE", 1.5)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n\x00",
                                               blacklist_categories=("Cs",))), min_size=1, max_size=8))
def test_encoded_arguments_survive_asterisk_parse_args(args):
    """Any argument list comes back unchanged through parse_args rules."""
    assert decode_command(encode_command("VERBOSE", *args)) == ["VERBOSE", *args]


# ---------------------------------------------------------------------------
# Session: reply matching


def test_one_command_on_the_wire_at_a_time_in_fifo_order():
    """Later commands wait; each reply goes to the oldest command in flight."""
    h = Harness()
    s = h.start()
    first, second, third = s.send("NOOP"), s.send("GET", "VARIABLE", "A"), s.send("GET", "VARIABLE", "B")
    assert h.written() == b"NOOP\n"
    h.feed(b"200 result=0\n")
    assert result_of(first).raw == "200 result=0"
    assert h.written() == b"GET VARIABLE A\n"
    h.feed(b"200 result=1 (a)\n200 result=1 (b)\n")
    assert result_of(second).value == "a"
    assert result_of(third).value == "b"
    assert h.written() == b"GET VARIABLE B\n"


def test_hangup_right_after_a_result_is_not_the_next_reply():
    """GET DATA -1 then HANGUP: a hang-up at the HANGUP line; the CHANNEL STATUS
    asked meanwhile keeps its place, its 511 is dropped, the NOOP gets its own reply."""
    h = Harness()
    s = h.start()
    d = s.get_data("beep", 10000, 1)
    h.feed(b"200 result=-1\nHANGUP\n")
    assert failure_of(d).check(AGIHangup)
    assert s.hungup
    noop = s.send("NOOP")
    assert h.written() == b"GET DATA beep 10000 1\nCHANNEL STATUS\n"
    h.feed(DEAD)
    assert pending(noop)
    assert h.written() == b"NOOP\n"
    h.feed(b"200 result=0\n")
    assert result_of(noop).raw == "200 result=0"


def test_hangup_between_command_and_reply_is_not_taken_as_the_reply():
    """HANGUP while a command is in flight leaves it waiting for its reply."""
    h = Harness()
    s = h.start()
    d = s.send("NOOP")
    h.feed(b"HANGUP\n")
    assert pending(d) and s.hungup
    h.feed(b"200 result=0\n")
    assert result_of(d).raw == "200 result=0"


def test_hangup_while_idle_only_marks_the_session():
    """An unsolicited HANGUP fires when_hungup; dead-AGI commands still go out."""
    h = Harness()
    s = h.start()
    hungup = s.when_hungup()
    h.feed(b"HANGUP\n")
    assert result_of(hungup) is None and s.hungup
    var, stream, setvar = s.get_variable("CALLERID(num)"), s.stream_file("beep"), s.set_variable(CC_QUEUE, "support")
    h.feed(b"200 result=1 (5551005)\n" + DEAD + b"200 result=1\n")
    assert result_of(var) == "5551005"
    assert failure_of(stream).check(AGIDeadChannel, AGIHangup)
    assert result_of(setvar) is None
    assert h.written() == b'GET VARIABLE CALLERID(num)\nSTREAM FILE beep ""\nSET VARIABLE CC_QUEUE "support"\n'


def test_two_hangups_back_to_back_then_eof():
    """AGIEXITONHANGUP=yes: HANGUP twice, EOF; later commands fail at once."""
    h = Harness()
    s = h.start()
    d = s.get_data("beep", 10000, 1)
    h.feed(b"200 result=-1\nHANGUP\nHANGUP\n")
    assert failure_of(d).check(AGIHangup)
    h.eof()
    late = failure_of(s.send("NOOP"))
    assert "closed" in str(late.value)
    assert late.check(AGIConnectionLost) and late.check(error.ConnectionClosed)
    assert h.written() == b"GET DATA beep 10000 1\nCHANNEL STATUS\n"
    assert h.clock.getDelayedCalls() == []


def test_hangup_at_session_end_after_half_close():
    """close() half-closes; Asterisk's HANGUP and EOF finish it."""
    h = Harness()
    s = h.start()
    closed = s.close()
    assert h.transport.write_closed and pending(closed)
    h.feed(b"HANGUP\n")
    assert s.hungup
    h.eof()
    assert result_of(closed) is None
    assert h.clock.getDelayedCalls() == []


def test_close_aborts_when_asterisk_does_not_close_within_a_second():
    """After the half-close the connection is aborted at 1 s."""
    h = Harness()
    s = h.start()
    s.close()
    h.clock.advance(0.999)
    assert not h.transport.disconnected
    h.clock.advance(0.001)
    assert h.transport.disconnected


def test_close_without_half_close_support_loses_the_connection():
    """On a transport without loseWriteConnection, close() closes at once."""
    h = Harness(half_close=False)
    s = h.start()
    s.close()
    assert h.transport.disconnecting
    assert h.clock.getDelayedCalls() == []


def test_cancelled_command_in_flight_keeps_its_reply():
    """The reply to a cancelled command is dropped, not given to the next one."""
    h = Harness()
    s = h.start()
    first = s.send("GET", "DATA", "beep", 3000, 1)
    second = s.send("NOOP")
    first.cancel()
    assert failure_of(first).check(CancelledError)
    assert h.written() == b"GET DATA beep 3000 1\n"
    h.feed(b"200 result=5\n")
    assert pending(second)
    assert h.written() == b"NOOP\n"
    h.feed(b"200 result=0\n")
    assert result_of(second).raw == "200 result=0"


def test_cancelled_queued_command_is_never_sent():
    """Cancelling a queued command removes it from the queue."""
    h = Harness()
    s = h.start()
    first, second, third = s.send("NOOP"), s.send("ANSWER"), s.send("CHANNEL", "STATUS")
    second.cancel()
    failure_of(second)
    h.feed(b"200 result=0\n200 result=6\n")
    assert h.written() == b"NOOP\nCHANNEL STATUS\n"
    assert result_of(first).raw == "200 result=0"
    assert result_of(third).result == "6"


def test_interim_100_line_does_not_complete_the_command():
    """GOSUB's '100 result=0 Trying...' is skipped; the 200 line completes it."""
    h = Harness()
    s = h.start()
    d = s.command("GOSUB", "sub", "s", 1)
    h.feed(b"100 result=0 Trying...\n")
    assert pending(d)
    h.feed(b"200 result=0 Gosub complete\n")
    assert result_of(d).extra == "Gosub complete"


def test_unsolicited_reply_is_dropped_and_logged(caplog):
    """A reply with no command in flight is logged and does not linger."""
    h = Harness()
    s = h.start()
    with caplog.at_level(logging.WARNING):
        h.feed(b"200 result=0\n")
    assert "no command in flight" in caplog.text
    d = s.send("NOOP")
    h.feed(b"200 result=1\n")
    assert result_of(d).raw == "200 result=1"


def test_watchdog_fails_the_command_and_aborts_the_session():
    """No reply within 10 s: AGITimeout, abort, queued commands fail too."""
    h = Harness()
    s = h.start()
    first, second = s.send("NOOP"), s.send("ANSWER")
    h.clock.advance(9.9)
    assert pending(first)
    h.clock.advance(0.1)
    assert failure_of(first).check(AGITimeout)
    assert failure_of(second).check(AGIConnectionLost)
    assert h.transport.disconnected
    assert h.clock.getDelayedCalls() == []
    h.feed(b"200 result=0\n")  # too late: ignored
    assert failure_of(s.send("NOOP")).check(AGIConnectionLost)
    h.eof()


def test_watchdog_runs_per_command_from_the_moment_it_is_sent():
    """A queued command's watchdog starts when it goes on the wire."""
    h = Harness(command_timeout=5)
    s = h.start()
    first, second = s.send("NOOP"), s.send("NOOP")
    h.clock.advance(4)
    h.feed(b"200 result=0\n")
    h.clock.advance(4)
    assert pending(second)
    h.clock.advance(1)
    assert failure_of(second).check(AGITimeout)
    result_of(first)


def test_get_data_watchdog_includes_the_digit_timeout():
    """GET DATA with 10000 ms is allowed 10 s + the default watchdog."""
    h = Harness()
    s = h.start()
    d = s.get_data("beep", 10000, 1)
    h.clock.advance(19.9)
    assert pending(d)
    h.clock.advance(0.1)
    assert failure_of(d).check(AGITimeout)


def test_eof_fails_the_command_in_flight_with_connection_done_style_error():
    """EOF with a command pending: AGIConnectionLost (a ConnectionClosed)."""
    h = Harness()
    s = h.start()
    d = s.send("GET", "DATA", "beep")
    h.eof()
    failure = failure_of(d)
    assert failure.check(AGIConnectionLost) and failure.check(error.ConnectionClosed)
    assert h.clock.getDelayedCalls() == []


def test_eof_while_idle_cleans_up():
    """EOF between commands: closed, when_closed fires, no timers left."""
    h = Harness()
    s = h.start()
    closed, hungup = s.when_closed(), s.when_hungup()
    h.eof()
    assert result_of(closed) is None
    assert failure_of(hungup).check(AGIConnectionLost)
    assert s.closed and not s.connected
    assert h.clock.getDelayedCalls() == []


def test_client_closing_mid_environment_leaves_nothing_behind():
    """Half an environment then EOF: no session, no timer, no spin."""
    h = Harness()
    h.feed(SESSION1_RAW[:100])
    assert h.sessions == []
    h.eof()
    assert h.clock.getDelayedCalls() == []
    h.clock.advance(1)
    h.feed(SESSION1_RAW[100:])  # data after close is ignored
    assert h.sessions == [] and h.transport.value() == b""


def test_broken_reply_stream_aborts_the_session(caplog):
    """A reply line over 64 KiB aborts the session and fails the command in flight."""
    h = Harness()
    s = h.start()
    d = s.send("GET", "FULL", "VARIABLE", "${X}")
    with caplog.at_level(logging.WARNING):
        h.feed(b"200 result=1 (" + b"v" * 70000)
    assert failure_of(d).check(AGIConnectionLost)
    assert h.transport.disconnected and "reply line longer" in caplog.text
    assert h.clock.getDelayedCalls() == []
    h.eof()


def test_silent_half_environment_is_aborted_after_the_environment_timeout(caplog):
    """A connection that stalls mid-environment is aborted after 5 s."""
    h = Harness()
    h.feed(SESSION1_RAW[:100])
    with caplog.at_level(logging.WARNING):
        h.clock.advance(5)
    assert h.transport.disconnected
    assert "no complete environment" in caplog.text
    assert h.clock.getDelayedCalls() == []


def test_environment_over_the_limit_closes_the_connection_with_a_log_line(caplog):
    """An oversized environment closes the connection; the log shows a bounded excerpt."""
    h = Harness()
    with caplog.at_level(logging.WARNING):
        h.feed(b"agi_calleridname: " + b"A" * 9000 + b"\n\n")
    assert h.transport.disconnecting and h.sessions == []
    assert "larger than 8192 bytes" in caplog.text
    assert "AAAA" in caplog.text and "A" * 200 not in caplog.text
    assert h.clock.getDelayedCalls() == []
    h.eof()


def test_environment_with_too_many_lines_closes_the_connection(caplog):
    """129 environment lines are refused the same way."""
    h = Harness()
    with caplog.at_level(logging.WARNING):
        h.feed(b"".join(b"agi_arg_%d: x\n" % i for i in range(129)))
    assert h.transport.disconnecting and "more than 128 lines" in caplog.text


# ---------------------------------------------------------------------------
# Session: helpers and typed errors


def test_session_exposes_call_details():
    """env, script, params, ani, dnis and uniqueid come from the environment."""
    h = Harness()
    s = h.start()
    assert (s.script, dict(s.params), s.ani, s.dnis, s.uniqueid) == ("ivr", {"dnis": "4000"}, "5551001", "4000", "1795535416.1")
    assert s.env.get("extension") == "4000"


def test_dnis_and_ani_fall_back_sensibly():
    """No ?dnis: agi_dnid unless 'unknown', else the extension; ANI 'unknown' is ''."""
    env = AGIStreamDecoder().feed(b"agi_network_script: ivr\nagi_callerid: unknown\nagi_dnid: unknown\nagi_extension: 4001\n\n")[0]
    session = AGISession(FastAGIProtocol(task.Clock()), env)
    assert (session.dnis, session.ani) == ("4001", "")


def test_get_data_returns_digits_or_empty_on_timeout():
    """'200 result=1' gives '1'; '200 result= (timeout)' gives ''."""
    h = Harness()
    s = h.start()
    one, none = s.get_data("beep", 3000, 1), s.get_data("beep", 1500, 1)
    h.feed(b"200 result=1\n200 result= (timeout)\n")
    assert result_of(one) == "1" and result_of(none) == ""
    assert h.written() == b"GET DATA beep 3000 1\nGET DATA beep 1500 1\n"


def test_get_data_without_timeout_sends_only_the_prompt():
    """get_data(prompt) sends just the prompt; max_digits alone sends timeout 0."""
    h = Harness()
    s = h.start()
    s.get_data("menu")
    s.get_data("menu", max_digits=4)
    h.feed(b"200 result=12\n200 result=3\n")
    assert h.written() == b"GET DATA menu\nGET DATA menu 0 4\n"


def test_stream_file_results():
    """endpos=3404: ''; digit 49: '1'; -1 endpos=0 and CHANNEL STATUS 6: missing file."""
    h = Harness()
    s = h.start()
    ok, digit, missing = s.stream_file("beep"), s.stream_file("menu", "12"), s.stream_file("no-such-file")
    h.feed(b"200 result=0 endpos=3404\n200 result=49 endpos=800\n200 result=-1 endpos=0\n")
    assert result_of(ok) == "" and result_of(digit) == "1"
    assert pending(missing)
    h.feed(b"200 result=6\n")
    exc = failure_of(missing).value
    assert isinstance(exc, AGIPlaybackFailed) and isinstance(exc, AGICommandFailed)
    assert not isinstance(exc, AGIHangup) and exc.command == "STREAM FILE"
    assert h.written() == b'STREAM FILE beep ""\nSTREAM FILE menu 12\nSTREAM FILE no-such-file ""\nCHANNEL STATUS\n'


@pytest.mark.parametrize("endpos", [0, 1200])
def test_stream_file_interrupted_by_hangup_raises_agihangup(endpos):
    """-1 then HANGUP is a hang-up during playback, whatever the endpos (0 when
    the caller left before the first frame)."""
    h = Harness()
    s = h.start()
    d = s.stream_file("beep")
    h.feed(f"200 result=-1 endpos={endpos}\n".encode())
    assert pending(d)
    h.feed(b"HANGUP\n")
    assert failure_of(d).check(AGIHangup)
    assert h.written() == b'STREAM FILE beep ""\nCHANNEL STATUS\n'


# -- result=-1 of the commands that play sound or read keys ------------------
# res_agi.c answers -1 both for a sound file it cannot open (channel still up)
# and for a hang-up; the session asks CHANNEL STATUS unless HANGUP came first.


def test_get_data_minus_one_on_a_live_channel_is_a_missing_prompt():
    """GET DATA -1, CHANNEL STATUS 6 (up): AGIPlaybackFailed, not a hang-up."""
    h = Harness()
    s = h.start()
    d = s.get_data("custom/no-such-menu", 5000, 1)
    h.feed(b"200 result=-1\n")
    assert pending(d) and h.written() == b"GET DATA custom/no-such-menu 5000 1\nCHANNEL STATUS\n"
    h.feed(b"200 result=6\n")
    exc = failure_of(d).value
    assert isinstance(exc, AGIPlaybackFailed) and not isinstance(exc, AGIHangup)
    assert exc.command == "GET DATA" and exc.reply.raw == "200 result=-1"
    assert not s.hungup and h.clock.getDelayedCalls() == []


@pytest.mark.parametrize("size", [1, 2, 5, 7, 100])
def test_minus_one_then_inline_hangup_is_a_hangup_at_the_hangup_line(size):
    """GET DATA -1 then HANGUP (session 3): AGIHangup as soon as the HANGUP line
    is in, in every chunk size, without waiting for the CHANNEL STATUS reply or
    any timer; the 511 that answers CHANNEL STATUS later is dropped."""
    h = Harness()
    s = h.start()
    d = s.get_data("beep", 10000, 1)
    data = b"200 result=-1\nHANGUP\n"
    for chunk in chunks(data, size):
        assert pending(d)
        h.feed(chunk)
    failure = failure_of(d)
    assert failure.check(AGIHangup) and not failure.check(AGIPlaybackFailed)
    assert h.written() == b"GET DATA beep 10000 1\nCHANNEL STATUS\n"
    h.feed(DEAD)
    assert h.clock.getDelayedCalls() == []
    noop = s.send("NOOP")
    h.feed(b"200 result=0\n")
    assert result_of(noop).raw == "200 result=0"


def test_minus_one_after_hangup_was_seen_asks_nothing():
    """HANGUP already in: the -1 is a hang-up at once, no CHANNEL STATUS."""
    h = Harness()
    s = h.start()
    d = s.get_data("beep", 10000, 1)
    h.feed(b"HANGUP\n200 result=-1\n")
    assert failure_of(d).check(AGIHangup)
    assert h.written() == b"GET DATA beep 10000 1\n"


@pytest.mark.parametrize("status", [DEAD, b"200 result=-1\n"])
def test_minus_one_then_511_or_minus_one_channel_status_is_a_hangup(status):
    """No HANGUP line (AGISIGHUP=no): CHANNEL STATUS answered 511 (dead-AGI
    mode) or -1 says the channel is gone."""
    h = Harness()
    s = h.start()
    d = s.stream_file("custom/cc-welcome")
    h.feed(b"200 result=-1 endpos=0\n" + status)
    assert failure_of(d).check(AGIHangup)
    assert h.written() == b'STREAM FILE custom/cc-welcome ""\nCHANNEL STATUS\n'
    assert h.clock.getDelayedCalls() == []


def test_channel_up_reports_the_channel_state():
    """channel_up: True for CHANNEL STATUS 6, False at once after HANGUP (nothing sent)."""
    h = Harness()
    s = h.start()
    up = s.channel_up()
    h.feed(b"200 result=6\n")
    assert result_of(up) is True
    h.feed(b"HANGUP\n")
    assert result_of(s.channel_up()) is False
    assert h.written() == b"CHANNEL STATUS\n"


def test_connection_lost_while_asking_channel_status_fails_the_command():
    """EOF instead of an answer: AGIConnectionLost, nothing left pending."""
    h = Harness()
    s = h.start()
    d = s.get_data("beep", 10000, 1)
    h.feed(b"200 result=-1\n")
    h.eof()
    assert failure_of(d).check(AGIConnectionLost)
    assert h.clock.getDelayedCalls() == []


def test_cancelling_a_command_while_channel_status_is_asked():
    """Shutdown cancels the handler mid-probe: CancelledError; the probe's reply is still matched."""
    h = Harness()
    s = h.start()
    d = s.get_data("beep", 10000, 1)
    h.feed(b"200 result=-1\n")
    d.cancel()
    assert failure_of(d).check(CancelledError)
    noop = s.send("NOOP")
    h.feed(b"200 result=6\n200 result=0\n")
    assert result_of(noop).raw == "200 result=0"
    assert h.written() == b"GET DATA beep 10000 1\nCHANNEL STATUS\nNOOP\n"


def test_wait_for_digit_results():
    """WAIT FOR DIGIT: 49 -> '1', 0 -> '' (timeout), -1 with the channel up -> AGIPlaybackFailed,
    -1 then HANGUP -> AGIHangup."""
    h = Harness()
    s = h.start()
    one, silence = s.wait_for_digit(5000), s.wait_for_digit(300)
    h.feed(b"200 result=49\n200 result=0\n")
    assert result_of(one) == "1" and result_of(silence) == ""
    failed = s.wait_for_digit(5000)
    h.feed(b"200 result=-1\n200 result=6\n")
    assert failure_of(failed).check(AGIPlaybackFailed)
    gone = s.wait_for_digit(5000)
    h.feed(b"200 result=-1\nHANGUP\n")
    assert failure_of(gone).check(AGIHangup)
    assert h.written() == (b"WAIT FOR DIGIT 5000\nWAIT FOR DIGIT 300\nWAIT FOR DIGIT 5000\nCHANNEL STATUS\n"
                           b"WAIT FOR DIGIT 5000\nCHANNEL STATUS\n")


def test_wait_for_digit_watchdog_includes_its_timeout():
    """The watchdog is command_timeout plus the digit timeout."""
    h = Harness(command_timeout=2.0)
    s = h.start()
    d = s.wait_for_digit(5000)
    h.clock.advance(6.9)
    assert pending(d)
    h.clock.advance(0.2)
    assert failure_of(d).check(AGITimeout)


@pytest.mark.parametrize("call, line", [
    (lambda s: s.say_digits("12"), b'SAY DIGITS 12 ""\n'),
    (lambda s: s.say_number(42), b'SAY NUMBER 42 ""\n'),
    (lambda s: s.control_stream_file("custom/cc-hold-music"), b'CONTROL STREAM FILE custom/cc-hold-music ""\n'),
])
def test_say_and_control_stream_minus_one_is_told_apart_too(call, line):
    """SAY and CONTROL STREAM FILE answer -1 for missing sound files: playback failure
    on a live channel, hang-up after HANGUP."""
    h = Harness()
    s = h.start()
    missing = call(s)
    h.feed(b"200 result=-1\n200 result=6\n")
    assert failure_of(missing).check(AGIPlaybackFailed)
    gone = call(s)
    h.feed(b"200 result=-1\nHANGUP\n")
    assert failure_of(gone).check(AGIHangup)
    assert h.written() == line + b"CHANNEL STATUS\n" + line + b"CHANNEL STATUS\n"


def test_exec_playback_result_is_returned_without_a_hangup_check():
    """EXEC Playback answers 0 for a missing file (app_playback sets PLAYBACKSTATUS=FAILED);
    a -1 (empty argument, failed answer) is returned, never taken for a hang-up."""
    h = Harness()
    s = h.start()
    missing, failed = s.exec_("Playback", "no-such-file"), s.exec_("Playback", "")
    h.feed(b"200 result=0\n200 result=-1\n")
    assert result_of(missing) == 0 and result_of(failed) == -1
    assert h.written() == b'EXEC Playback no-such-file\nEXEC Playback ""\n'


def test_error_replies_raise_typed_command_errors():
    """510 and 520 raise AGICommandError with code, text and usage."""
    h = Harness()
    s = h.start()
    unknown, usage = s.command("FOO", "BAR"), s.command("SET", "VARIABLE")
    h.feed(b"510 Invalid or unknown command\n"
           b"520-Invalid command syntax.  Proper usage follows:\nSets a variable to the current channel.\n"
           b"520 End of proper usage.\n")
    exc = failure_of(unknown).value
    assert isinstance(exc, AGICommandError) and not isinstance(exc, AGIHangup)
    assert (exc.code, exc.message) == (510, "Invalid or unknown command")
    exc = failure_of(usage).value
    assert exc.code == 520 and exc.usage == ("Sets a variable to the current channel.",)
    assert "Sets a variable" in str(exc)


def test_dead_channel_reply_is_both_command_error_and_hangup():
    """511 raises AGIDeadChannel: an AGICommandError and an AGIHangup."""
    h = Harness()
    s = h.start()
    d = s.answer()
    h.feed(DEAD)
    exc = failure_of(d).value
    assert isinstance(exc, AGIDeadChannel) and isinstance(exc, AGIHangup) and exc.code == 511


def test_variables_exec_verbose_say_and_hangup():
    """Each helper writes the captured command form and reads its result."""
    h = Harness()
    s = h.start()
    calls = [
        s.get_variable("NO_SUCH_VAR"), s.get_variable("CC_NOTE"), s.set_variable("CC_NOTE", "hello world"),
        s.exec_("NoSuchApp", "foo"), s.exec_("Set", "CC_X=1"), s.exec_("Dial", "Local/6001@agents", 15),
        s.verbose("IVR menu reached"), s.say_digits("12"), s.say_number(42, "#"), s.answer(), s.hangup(), s.hangup(),
    ]
    h.feed(b"200 result=0\n200 result=1 (hello world)\n200 result=1\n200 result=-2\n200 result=0\n200 result=0\n"
           b"200 result=1\n200 result=0\n200 result=35\n200 result=0\n200 result=1\n" + DEAD)
    assert h.written() == (
        b"GET VARIABLE NO_SUCH_VAR\nGET VARIABLE CC_NOTE\nSET VARIABLE CC_NOTE \"hello world\"\n"
        b"EXEC NoSuchApp foo\nEXEC Set CC_X=1\nEXEC Dial Local/6001@agents,15\n"
        b'VERBOSE "IVR menu reached" 1\nSAY DIGITS 12 ""\nSAY NUMBER 42 #\nANSWER\nHANGUP\nHANGUP\n'
    )
    assert result_of(calls[0]) is None and result_of(calls[1]) == "hello world"
    assert result_of(calls[2]) is None
    assert failure_of(calls[3]).check(AGICommandFailed)
    assert result_of(calls[4]) == 0 and result_of(calls[5]) == 0
    assert result_of(calls[6]) is None and result_of(calls[7]) == "" and result_of(calls[8]) == "#"
    assert result_of(calls[9]) is None and result_of(calls[10]) is None and result_of(calls[11]) is None


def test_helper_refuses_line_feed_before_anything_is_sent():
    """set_variable with LF raises ValueError and writes nothing."""
    h = Harness()
    s = h.start()
    with pytest.raises(ValueError, match="line feed"):
        s.set_variable("X", "a\nHANGUP")
    assert h.written() == b""


# ---------------------------------------------------------------------------
# Server: routing, fallback, shutdown


FALLBACK = f'SET VARIABLE {CC_RESULT} "{RESULT_FALLBACK}"\n'.encode()


def test_handler_raising_sends_fallback_and_closes(caplog):
    """A crashing handler: CC_RESULT fallback, close, error logged with the Uniqueid."""
    async def ivr(session):
        await session.answer()
        raise RuntimeError("CRM down")

    server = ServerHarness({"ivr": ivr})
    with caplog.at_level(logging.INFO):
        server.feed(env_block(uniqueid="1795535416.1"))
        server.feed(b"200 result=0\n")
    assert server.transport.value() == b"ANSWER\n" + FALLBACK
    assert not server.transport.write_closed
    server.feed(b"200 result=1\n")
    assert server.transport.write_closed
    error_lines = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error_lines and "1795535416.1" in error_lines[0].getMessage()
    assert "CRM down" in caplog.text
    server.feed(b"HANGUP\n")
    server.eof()
    assert server.factory.active_sessions == 0 and server.clock.getDelayedCalls() == []


def test_log_lines_of_a_call_carry_its_call_id(caplog):
    """Handler log lines and the server's error line carry the Uniqueid as call_id."""
    from callcenter.logging import CallIdFilter

    async def ivr(session):
        logging.getLogger("ivr.test").info("menu for %s", session.ani)
        await session.answer()
        raise RuntimeError("flow bug")

    caplog.handler.addFilter(CallIdFilter())
    server = ServerHarness({"ivr": ivr})
    with caplog.at_level(logging.INFO):
        server.feed(env_block(uniqueid="1795535457.13"))
        server.feed(b"200 result=0\n")
    records = {r.getMessage().split(";")[0]: r.call_id for r in caplog.records}
    assert records["menu for 5551001"] == "1795535457.13"
    assert records["call 1795535457.13: FastAGI script 'ivr' failed"] == "1795535457.13"
    server.eof()


def test_handler_raising_synchronously_or_failing_deferred_sends_fallback():
    """Plain functions that raise or return a failed Deferred take the fallback path too."""
    def sync_crash(session):
        raise KeyError("x")

    def failed_deferred(session):
        d = Deferred()
        session.when_hungup().addErrback(lambda _: None)
        d.errback(ValueError("bad flow"))
        return d

    for handler in (sync_crash, failed_deferred):
        server = ServerHarness({"ivr": handler})
        server.feed(env_block())
        assert server.transport.value() == FALLBACK
        server.feed(b"200 result=1\n")
        assert server.transport.write_closed
        server.eof()


def test_unknown_script_goes_to_fallback(caplog):
    """agi://.../nosuch: logged, CC_RESULT fallback, closed."""
    server = ServerHarness({"ivr": lambda s: None})
    with caplog.at_level(logging.WARNING):
        server.feed(env_block(script="nosuch?x=1", uniqueid="42.7"))
    assert server.transport.value() == FALLBACK
    assert "nosuch" in caplog.text and "42.7" in caplog.text
    server.feed(b"200 result=1\nHANGUP\n")
    assert server.transport.write_closed
    server.eof()


def test_handler_returning_none_just_closes():
    """A plain handler that returns None ends the session with a half-close."""
    seen = []
    server = ServerHarness({"ivr": seen.append})
    server.feed(env_block())
    assert len(seen) == 1 and server.transport.value() == b""
    assert server.transport.write_closed
    server.eof()


def test_no_fallback_when_the_channel_already_hung_up():
    """A handler failing after HANGUP sends nothing more and closes."""
    async def ivr(session):
        await session.when_hungup()
        raise RuntimeError("late failure")

    server = ServerHarness({"ivr": ivr})
    server.feed(env_block() + b"HANGUP\n")
    assert server.transport.value() == b""
    assert server.transport.write_closed
    server.eof()


def test_caller_hangup_during_the_ivr_is_not_an_error(caplog):
    """get_data -1 ends the handler with AGIHangup: info log, no fallback."""
    async def ivr(session):
        await session.get_data("beep", 10000, 1)

    server = ServerHarness({"ivr": ivr})
    with caplog.at_level(logging.INFO):
        server.feed(env_block() + b"200 result=-1\nHANGUP\n")
    assert server.transport.value() == b"GET DATA beep 10000 1\nCHANNEL STATUS\n"
    assert server.transport.write_closed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "hung up" in caplog.text
    server.eof()


def test_shutdown_cancels_handlers_sends_fallback_and_aborts_after_grace():
    """shutdown(): the running IVR is cancelled, sent to fallback, aborted at the grace limit."""
    async def ivr(session):
        await session.get_data("beep", 10000, 1)

    server = ServerHarness({"ivr": ivr})
    server.feed(env_block())
    done = server.factory.shutdown(grace=2)
    assert server.factory.buildProtocol(None) is None
    # The cancelled GET DATA still owns the wire; the fallback waits behind it.
    assert server.transport.value() == b"GET DATA beep 10000 1\n"
    server.feed(b"200 result=5\n")
    assert server.transport.value() == b"GET DATA beep 10000 1\n" + FALLBACK
    server.clock.advance(2)
    assert server.transport.disconnected and pending(done)
    server.proto.connectionLost(Failure(error.ConnectionAborted()))
    assert result_of(done) is None
    assert server.clock.getDelayedCalls() == []


def test_session_starting_during_shutdown_goes_straight_to_fallback():
    """A connection mid-environment when shutdown starts gets the fallback, not the IVR."""
    started = []
    server = ServerHarness({"ivr": started.append})
    server.feed(SESSION1_RAW[:50])
    done = server.factory.shutdown(grace=2)
    server.feed(SESSION1_RAW[50:SESSION1_RAW.index(b"\n\n") + 2])
    assert started == [] and server.transport.value() == FALLBACK
    server.feed(b"200 result=1\nHANGUP\n")
    assert server.transport.write_closed
    server.eof()
    assert result_of(done) is None and server.clock.getDelayedCalls() == []


def test_shutdown_finishes_quickly_when_sessions_end_in_time():
    """Sessions that end within the grace period cancel the grace timer."""
    async def ivr(session):
        await session.answer()

    server = ServerHarness({"ivr": ivr})
    server.feed(env_block())
    done = server.factory.shutdown(grace=2)
    server.feed(b"200 result=0\n")  # reply to the cancelled ANSWER, dropped
    server.feed(b"200 result=1\n")  # reply to the fallback SET VARIABLE
    assert server.transport.write_closed
    server.feed(b"HANGUP\n")
    server.eof()
    assert result_of(done) is None
    assert server.clock.getDelayedCalls() == []


def test_stop_factory_aborts_every_session_at_once():
    """stopFactory (the port stopped) aborts what is open; nothing is left scheduled."""
    async def ivr(session):
        await session.answer()

    server = ServerHarness({"ivr": ivr})
    idle = server.factory.buildProtocol(None)
    idle_transport = StringTransport()
    idle.makeConnection(idle_transport)
    server.feed(env_block())
    server.factory.doStop()
    assert server.transport.disconnected and idle_transport.disconnected
    assert server.clock.getDelayedCalls() == []
    server.eof()
    idle.connectionLost(Failure(error.ConnectionAborted()))
    assert server.factory.active_sessions == 0
    assert result_of(server.factory.shutdown()) is None


# ---------------------------------------------------------------------------
# Real TCP


@implementer(IHalfCloseableProtocol)
class FakeAsterisk(Protocol):
    """Plays Asterisk: sends the environment, answers commands, and on the
    server's half-close sends HANGUP and closes, as res_agi.c does."""

    def __init__(self, env: bytes, replies: dict[bytes, bytes]) -> None:
        self.env, self.replies = env, replies
        self.received = b""
        self.done: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.env)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        while b"\n" in data:
            line, _, data = data.partition(b"\n")
            self.transport.write(self.replies.get(line + b"\n", b"510 Invalid or unknown command\n"))

    def readConnectionLost(self) -> None:
        self.transport.write(b"HANGUP\n")
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason=None) -> None:
        self.done.callback(None)


@pytest.fixture
def reactor():
    """The reactor pytest-twisted installed (tests are a composition root)."""
    from twisted.internet import reactor as installed

    return installed


@pytest_twisted.ensureDeferred
async def test_end_to_end_over_tcp_and_nothing_left_listening(reactor):
    """A real TCP session runs the IVR, half-closes, and the port is gone afterwards."""
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    seen = {}

    async def ivr(session):
        seen["ani"], seen["dnis"] = session.ani, session.dnis
        digits = await session.get_data("beep", 3000, 1)
        await session.set_variable(CC_QUEUE, "support" if digits == "1" else "sales")

    async def crashing(session):
        raise RuntimeError("boom")

    factory = FastAGIServerFactory({"ivr": ivr, "crash": crashing}, reactor)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    host = port.getHost()
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", host.port, timeout=5)

    call = FakeAsterisk(SESSION1_RAW[: SESSION1_RAW.index(b"\n\n") + 2], {
        b"GET DATA beep 3000 1\n": b"200 result=1\n",
        b'SET VARIABLE CC_QUEUE "support"\n': b"200 result=1\n",
    })
    await connectProtocol(endpoint, call)
    await call.done
    assert call.received == b'GET DATA beep 3000 1\nSET VARIABLE CC_QUEUE "support"\n'
    assert seen == {"ani": "5551001", "dnis": "4000"}

    failing = FakeAsterisk(env_block(script="crash"), {FALLBACK: b"200 result=1\n"})
    await connectProtocol(endpoint, failing)
    await failing.done
    assert failing.received == FALLBACK

    await factory.shutdown()
    await port.stopListening()
    assert factory.active_sessions == 0
    ours = [c for c in reactor.getDelayedCalls()
            if c.active() and isinstance(getattr(c.func, "__self__", None),
                                         (FastAGIProtocol, FastAGIServerFactory, Deadlines))]
    assert ours == []
    with pytest.raises(error.ConnectionRefusedError):
        await connectProtocol(endpoint, Protocol())


# ---------------------------------------------------------------------------
# Timeouts on shared deadlines (one DelayedCall for every connection)


def shared(n: int, clock: task.Clock | None = None, **options) -> tuple[task.Clock, Deadlines, list[Harness]]:
    """``n`` connections whose timeouts share one Deadlines, each with its session started."""
    clock = clock or task.Clock()
    deadlines = Deadlines(clock)
    harnesses = []
    for _ in range(n):
        h = Harness.__new__(Harness)
        h.clock, h.sessions = clock, []
        h.proto = FastAGIProtocol(clock, h.sessions.append, deadlines=deadlines, **options)
        h.transport = HalfCloseTransport()
        h.proto.makeConnection(h.transport)
        harnesses.append(h)
    return clock, deadlines, harnesses


def test_silent_peer_times_out_on_time_while_other_calls_keep_moving_their_deadlines():
    """The watchdog of a silent peer fires at exactly command_timeout, though the shared timer
    is rescheduled by busy calls; the busy calls are not disturbed."""
    clock, deadlines, (silent, busy) = shared(2)
    s1, s2 = silent.start(), busy.start(uniqueid="2.2")
    stuck = s1.send("GET", "DATA", "beep")
    timeline = []
    for _ in range(100):
        clock.advance(0.125)
        d = s2.send("NOOP")
        busy.feed(b"200 result=0\n")
        assert result_of(d).result == "0"
        if not pending(stuck):
            timeline.append(clock.seconds())
            break
    assert timeline == [10.0]
    assert failure_of(stuck).check(AGITimeout) and silent.transport.disconnected
    assert not busy.transport.disconnected and busy.written().count(b"NOOP\n") == 80


def test_all_connections_share_one_delayed_call_that_goes_when_none_is_waiting():
    """Three calls with commands in flight: one DelayedCall; none left once they are idle or gone."""
    clock, deadlines, harnesses = shared(3)
    sessions = [h.start(uniqueid=f"1.{i}") for i, h in enumerate(harnesses)]
    commands = [s.send("NOOP") for s in sessions]
    assert len(clock.getDelayedCalls()) == 1 and deadlines.watched == 3
    for h in harnesses:
        h.feed(b"200 result=0\n")
    assert all(result_of(d).result == "0" for d in commands)
    assert clock.getDelayedCalls() == [] and deadlines.watched == 0
    harnesses[0].proto.send_command(b"NOOP\n")
    assert len(clock.getDelayedCalls()) == 1
    harnesses[0].eof()
    assert clock.getDelayedCalls() == []


def test_a_deadline_moved_with_each_command_keeps_one_entry_per_connection():
    """A hundred commands in a row do not add a hundred timers: the entry waits and re-queues."""
    clock, deadlines, (h,) = shared(1)
    s = h.start()
    for _ in range(100):
        d = s.send("NOOP")
        h.feed(b"200 result=0\n")
        clock.advance(0.01)
    last = s.send("NOOP")
    assert len(deadlines._heap) == 1
    clock.advance(9.999)
    assert pending(last)
    clock.advance(0.001)
    assert failure_of(last).check(AGITimeout)
    result_of(d)


def test_environment_and_close_timeouts_on_shared_deadlines():
    """A silent connection is aborted at env_timeout, a call that does not close at close_timeout."""
    clock, _, (quiet, ending) = shared(2)
    s = ending.start()
    clock.advance(4)
    s.close()
    clock.advance(0.999)
    assert not ending.transport.disconnected and not quiet.transport.disconnected
    clock.advance(0.001)
    assert quiet.transport.disconnected and ending.transport.disconnected
    assert clock.getDelayedCalls() == []


def test_deadlines_close_together_are_handled_in_one_wake_up_at_most_granularity_late():
    """After the timer fires, deadlines in the next 50 ms wait for one wake-up: never early, at most 50 ms late."""
    clock = task.Clock()
    deadlines = Deadlines(clock, granularity=0.05)
    fired = []

    class Conn:
        _due = None
        _entry = None

        def __init__(self, name):
            self.name = name

        def _deadline_passed(self, now):
            fired.append((self.name, round(now, 3)))

    a, b, c = Conn("a"), Conn("b"), Conn("c")
    deadlines.watch(a, 1.0)
    deadlines.watch(b, 1.01)
    deadlines.watch(c, 1.2)
    clock.advance(1.0)
    assert fired == [("a", 1.0)]
    clock.advance(0.03)
    assert fired == [("a", 1.0)]
    clock.advance(0.02)
    assert fired == [("a", 1.0), ("b", 1.05)]
    clock.advance(0.15)
    assert fired[-1] == ("c", 1.2) and clock.getDelayedCalls() == []


def test_a_deadline_moved_earlier_is_honoured():
    """GET DATA with a long timeout, then a plain command: the plain command's watchdog applies."""
    h = Harness(command_timeout=2)
    s = h.start()
    long = s.get_data("beep", 30000, 1)
    h.clock.advance(1)
    h.feed(b"200 result=1\n")
    result_of(long)
    short = s.send("NOOP")
    h.clock.advance(1.999)
    assert pending(short)
    h.clock.advance(0.001)
    assert failure_of(short).check(AGITimeout)


# ---------------------------------------------------------------------------
# Sending straight to the socket


class FakeSocket:
    """Takes ``takes`` bytes of each send (all when None), or raises ``error``."""

    def __init__(self, takes=None, error=None):
        self.takes, self.error = takes, error
        self.sent = b""
        self.shut = []

    def send(self, data):
        if self.error is not None:
            raise self.error
        taken = data if self.takes is None else data[: self.takes]
        self.sent += taken
        return len(taken)

    def shutdown(self, how):
        self.shut.append(how)


def test_a_command_the_socket_takes_only_in_part_goes_out_whole_and_in_order():
    """The rest of a partly sent line, and every later line, go through the transport."""
    h = Harness()
    s = h.start()
    h.proto._socket = sock = FakeSocket(takes=5)
    first = s.send("GET", "VARIABLE", "A")
    assert sock.sent == b"GET V" and h.written() == b"ARIABLE A\n"
    h.feed(b"200 result=1 (a)\n")
    s.send("NOOP")
    assert sock.sent == b"GET V" and h.written() == b"NOOP\n"
    assert result_of(first).value == "a"
    s.close()
    assert sock.shut == [] and h.transport.write_closed


@pytest.mark.parametrize("exc", [BlockingIOError(11, "busy"), BrokenPipeError(32, "gone")])
def test_a_socket_that_cannot_take_a_command_leaves_it_to_the_transport(exc):
    """EAGAIN or EPIPE: the whole line goes to the transport (which sends it later or finds the loss)."""
    h = Harness()
    s = h.start()
    h.proto._socket = FakeSocket(error=exc)
    s.send("NOOP")
    assert h.written() == b"NOOP\n" and h.proto._socket is None


def test_close_shuts_the_sending_side_of_the_socket_at_once():
    """Nothing buffered: finish() shuts the socket for writing itself, not a loop turn later."""
    h = Harness()
    s = h.start()
    h.proto._socket = sock = FakeSocket()
    s.close()
    assert sock.shut == [socket.SHUT_WR] and not h.transport.write_closed


@pytest_twisted.ensureDeferred
async def test_over_tcp_commands_do_not_wait_for_the_reactor_to_report_the_socket_writable(reactor):
    """On a TCP connection each command is sent within the call that sends it."""
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    writers = []

    async def ivr(session):
        d = session.set_variable("CC_X", "1")
        writers.append(list(reactor.getWriters()))
        await d

    factory = FastAGIServerFactory({"ivr": ivr}, reactor)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    call = FakeAsterisk(env_block(), {b'SET VARIABLE CC_X "1"\n': b"200 result=1\n"})
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port, timeout=5), call)
    await call.done
    await factory.shutdown()
    await port.stopListening()
    assert call.received == b'SET VARIABLE CC_X "1"\n'
    assert writers == [[]]


# ---------------------------------------------------------------------------
# Encoding and decoding shortcuts


@given(st.lists(st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",))),
    st.text(alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",))).map(QuotedArg),
    st.integers(min_value=-10**6, max_value=10**6),
), min_size=1, max_size=6))
def test_encoding_shortcut_gives_the_bytes_of_word_by_word_quoting(args):
    """Whatever the words, encode_command writes what quoting each word with quote_arg gives."""
    from callcenter.asterisk.fastagi_protocol import quote_arg

    expected = " ".join(["VERBOSE"] + [quote_arg(str(a), always=isinstance(a, QuotedArg)) for a in args])
    assert encode_command("VERBOSE", *args) == (expected + "\n").encode("utf-8", "surrogateescape")


def test_only_replies_without_a_value_are_remembered_across_calls():
    """'200 result=0 endpos=1600' is parsed once per process; a reply carrying a caller's value never is kept."""
    from callcenter.asterisk import fastagi_protocol

    decoder = AGIStreamDecoder()
    decoder.feed(b"\n")
    first = decoder.feed(b"200 result=0 endpos=1600\n200 result=1 (5551001 Jane)\n")
    again = AGIStreamDecoder()
    again.feed(b"\n")
    second = again.feed(b"200 result=0 endpos=1600\n")
    assert first[0] is second[0] and first[0].endpos == 1600
    kept = fastagi_protocol._plain_replies
    assert b"200 result=0 endpos=1600" in kept
    assert not any(b"(" in line for line in kept)


@pytest.mark.parametrize("data, message", [
    (b"".join(b"agi_arg_%d: x\n" % i for i in range(129)), "more than 128 lines"),
    (b"agi_calleridname: " + b"x" * 8200, "larger than 8192 bytes"),
])
def test_environment_limits_hold_when_it_trickles_in_byte_by_byte(data, message):
    """Fed one byte at a time, an oversized environment is refused as soon as it passes the limit."""
    decoder = AGIStreamDecoder()
    with pytest.raises(EnvironmentLimitError, match=message):
        for i in range(len(data)):
            decoder.feed(data[i:i + 1])
    assert i < len(data) - 1 or message.startswith("more")


# ---------------------------------------------------------------------------
# After the connection


def test_a_finished_call_is_freed_without_the_garbage_collector():
    """Protocol and session do not keep each other alive: reference counting frees them."""
    import gc
    import weakref

    server = ServerHarness({"ivr": lambda s: None})
    server.feed(env_block() + b"HANGUP\n")
    proto, session = weakref.ref(server.proto), weakref.ref(server.proto.session)
    gc.disable()
    try:
        server.eof()
        del server
        assert proto() is None and session() is None
    finally:
        gc.enable()


def test_a_session_kept_after_its_connection_is_gone_still_answers():
    """After the connection: closed, not connected, hungup as it was, commands fail at once."""
    h = Harness()
    s = h.start()
    h.feed(b"HANGUP\n")
    h.eof()
    assert s.closed and not s.connected and s.hungup
    assert failure_of(s.send("NOOP")).check(AGIConnectionLost)
    assert failure_of(s.answer()).check(AGIConnectionLost)
    assert result_of(s.when_hungup()) is None and result_of(s.when_closed()) is None
    assert result_of(s.close()) is None
    s.abort("late")
