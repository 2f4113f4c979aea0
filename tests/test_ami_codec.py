"""The AMI codec against the recorded Asterisk 22.10.1 transcripts and its own edge cases."""

from __future__ import annotations

import functools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import transcripts
from callcenter.asterisk.ami_codec import (
    MAX_ACTION_LINES,
    MAX_LINE_BYTES,
    AMIDecoder,
    AMIMessage,
    DecodeError,
    FrameTooLarge,
    encode_action,
    originate_variable,
    unescape_c,
)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
RAW_STREAMS = transcripts.raw_ami_streams()
RAW_IDS = [transcripts.name_of(path) for path in RAW_STREAMS]
SESSIONS = transcripts.session_files()
SESSION_IDS = [transcripts.name_of(path) for path in SESSIONS]
CHUNK_SIZES = list(range(1, 18)) + [19, 23, 31, 61, 127, 257, 509, 1021, 1460, 4093]


def decode_all(data: bytes, chunk: int | None = None) -> tuple[AMIDecoder, list[AMIMessage]]:
    decoder = AMIDecoder()
    size = chunk or max(len(data), 1)
    messages = []
    for start in range(0, len(data), size):
        messages += decoder.feed(data[start:start + size])
    return decoder, messages


@functools.cache
def reference(name: str) -> tuple[tuple[str | None, tuple[AMIMessage, ...]], ...]:
    """(banner, messages) of each connection of a raw fixture, fed in one piece."""
    result = []
    for data in transcripts.raw_connections(transcripts.fixture(name)):
        decoder, messages = decode_all(data)
        result.append((decoder.banner, tuple(messages)))
    return tuple(result)


def messages_of(name: str, connection: int = 0) -> tuple[AMIMessage, ...]:
    return reference(name)[connection][1]


def frames_of(data: bytes) -> list[bytes]:
    """The raw bytes of each message of a CRLF stream, banner left out."""
    body = data[len(BANNER):] if data.startswith(BANNER) else data
    return [frame + b"\r\n\r\n" for frame in body.split(b"\r\n\r\n")[:-1]]


# --- every recorded stream -------------------------------------------------


@pytest.mark.parametrize("path", RAW_STREAMS, ids=RAW_IDS)
def test_every_raw_stream_parses_completely_without_errors(path):
    """Each connection yields its banner, one message per blank line, no error, no leftover."""
    for data in transcripts.raw_connections(path):
        assert data.count(b"\n") == data.count(b"\r\n"), "count below assumes CRLF-only captures"
        decoder, messages = decode_all(data)
        assert decoder.pop_errors() == []
        assert decoder.banner == "Asterisk Call Manager/11.0.0"
        assert decoder.protocol_version == "11.0.0"
        assert len(messages) == data.count(b"\r\n\r\n")
        unterminated = len(data) - (data.rindex(b"\r\n\r\n") + 4)
        assert decoder.buffered == unterminated == 0
        assert decoder.close() is None
        assert all(m.kind in ("event", "response") and not m.body for m in messages)


@pytest.mark.parametrize(
    "path", [p for p in RAW_STREAMS if transcripts.sequence_file(p)],
    ids=[n for p, n in zip(RAW_STREAMS, RAW_IDS) if transcripts.sequence_file(p)],
)
def test_messages_match_the_sequence_file_one_for_one(path):
    """Kind and name of every message equal the condensed .sequence.txt line for line."""
    entries = transcripts.sequence_entries(transcripts.sequence_file(path))
    ((banner, messages),) = reference(transcripts.name_of(path))
    assert entries[0] == ("BANNER", banner)
    assert [(m.kind.upper(), m.name) for m in messages] == entries[1:]


@pytest.mark.parametrize("path", SESSIONS, ids=SESSION_IDS)
def test_visible_sessions_rebuild_the_raw_captures_byte_for_byte(path):
    """The A->C text of each *.session.txt connection equals the raw file Asterisk sent."""
    connections = transcripts.session_connections(path)
    assert [c.received_bytes for c in connections] == transcripts.raw_for_session(path)


@pytest.mark.parametrize("path", SESSIONS, ids=SESSION_IDS)
def test_sessions_decode_the_same_when_fed_with_their_recorded_reads(path):
    """Feeding the TCP reads as recorded gives the same messages as one big read, no errors."""
    for connection in transcripts.session_connections(path):
        decoder = AMIDecoder()
        messages = [m for read in connection.received for m in decoder.feed(read)]
        assert decoder.pop_errors() == []
        assert decoder.buffered == 0
        assert messages == decode_all(connection.received_bytes)[1]


@pytest.mark.parametrize("path", SESSIONS, ids=SESSION_IDS)
def test_encode_action_reproduces_every_well_formed_action_the_client_sent(path):
    """Re-encoding each recorded client write gives back exactly the bytes on the wire."""
    checked = 0
    for connection in transcripts.session_connections(path):
        for write in connection.sent:
            if not re.fullmatch(rb"(Action: [^\r\n]*\r\n)([A-Za-z-]+: [^\r\n]*\r\n)*\r\n", write):
                continue  # the deliberately malformed robustness probes
            decoder = AMIDecoder()
            (action,) = decoder.feed(write)
            if any(len(f"{k}: {v}".encode()) > MAX_LINE_BYTES for k, v in action.headers):
                continue  # the over-long probes Asterisk refused
            if len(action.headers) > MAX_ACTION_LINES:
                continue
            assert encode_action(action.headers[0][1], action.headers[1:]) == write
            checked += 1
    assert checked > 0


# --- chunking --------------------------------------------------------------


@pytest.mark.parametrize("path", RAW_STREAMS, ids=RAW_IDS)
def test_every_chunk_size_yields_the_identical_message_list(path):
    """Chunks of 1..17 bytes and assorted primes decode exactly like one read."""
    expected = reference(transcripts.name_of(path))
    for size in CHUNK_SIZES:
        got = []
        for data in transcripts.raw_connections(path):
            decoder, messages = decode_all(data, size)
            assert decoder.errors == [] and decoder.buffered == 0
            got.append((decoder.banner, tuple(messages)))
        assert tuple(got) == expected, f"chunk size {size}"


@pytest.mark.parametrize("needle", ["CallerIDName: 张伟", "CallerIDName: Zoë Müller"])
def test_multibyte_caller_names_survive_every_split_position(needle):
    """A UTF-8 name split anywhere, even inside a character, decodes to the same message."""
    raw = transcripts.fixture("more/ami_utf8_callerid.txt").read_bytes()
    frame = next(f for f in frames_of(raw) if needle.encode() in f)
    (expected,) = AMIDecoder().feed(frame)
    assert needle.split(": ")[1] in expected.getall("CallerIDName")
    inside = frame.index(needle.encode()) + len("CallerIDName: ")
    for cut in range(len(frame) + 1):
        decoder = AMIDecoder()
        assert decoder.feed(frame[:cut]) + decoder.feed(frame[cut:]) == [expected]
    for cut in range(inside, inside + len(needle.split(": ")[1].encode())):
        decoder = AMIDecoder()
        parts = [frame[:cut], frame[cut:cut + 1], frame[cut + 1:]]
        assert [m for part in parts for m in decoder.feed(part)] == [expected]


# --- spot checks on real traffic ---------------------------------------------


def test_banner_is_one_line_and_login_response_and_fullybooted_follow():
    """Banner without blank line, then Login response, FullyBooted and SuccessfulAuth."""
    login, booted, auth = messages_of("ami_full_call.txt")[:3]
    assert (login.kind, login.name, login.action_id) == ("response", "Success", "full-1")
    assert login["Message"] == "Authentication accepted"
    assert (booted.kind, booted.name, booted["Status"]) == ("event", "FullyBooted", "Fully Booted")
    assert booted.get("privilege") == "system,all"
    assert auth.name == "SuccessfulAuth"


def test_originate_response_is_an_event_with_reason_4_and_the_action_id():
    """OriginateResponse carries Response: Success later on but is still an event."""
    (resp,) = [m for m in messages_of("ami_full_call.txt") if m.name == "OriginateResponse"]
    assert resp.kind == "event"
    assert (resp.action_id, resp["Response"], resp["Reason"]) == ("full-3", "Success", "4")


def test_queue_status_list_runs_from_eventlist_start_to_complete():
    """QueueStatus: 'EventList: start', the items with the ActionID, then Complete with ListItems."""
    messages = messages_of("ami_actions.raw_recv.txt", 1)
    first = next(i for i, m in enumerate(messages) if m.action_id == "act-36")
    start = messages[first]
    assert (start.kind, start["EventList"], start["Message"]) == (
        "response", "start", "Queue status will follow")
    end = next(i for i in range(first, len(messages)) if messages[i].name == "QueueStatusComplete")
    items = messages[first + 1:end]
    assert [m.name for m in items] == ["QueueParams", "QueueMember"]
    assert all(m.action_id == "act-36" for m in items)
    complete = messages[end]
    assert (complete["EventList"], complete["ListItems"]) == ("Complete", str(len(items)))
    assert items[1]["PausedReason"] == "lunch"


def test_command_output_keeps_every_repeated_output_header_verbatim():
    """Command: one Output: per CLI line, leading spaces kept, trailing empty line as ''."""
    (reply,) = [m for m in messages_of("ami_actions.raw_recv.txt", 1) if m.action_id == "act-26"]
    output = reply.getall("output")
    assert output[0].startswith("support has 0 calls")
    assert output[1:] == ["   No Members", "   No Callers", ""]
    assert reply["Output"] == output[0]


def test_status_variables_parse_name_value_and_null():
    """'Variable: NAME=(null)' is an unset variable; Privilege is 'Call' in Status events."""
    (status,) = [m for m in messages_of("ami_actions.raw_recv.txt", 1)
                 if m.name == "Status" and m.action_id == "act-46"]
    assert status.variables() == {"CC_QUEUE": "sales", "QUEUENAME": None}
    assert status["Privilege"] == "Call"
    assert status["AccountCode"] == ""


def test_utf8_and_latin1_caller_names_round_trip_exactly():
    """张伟 and Zoë Müller decode as text; ISO-8859-1 bytes come back byte for byte."""
    messages = messages_of("more/ami_utf8_callerid.txt")
    names = {m.get("CallerIDName") for m in messages}
    assert {"张伟", "Zoë Müller", "王芳 (VIP)"} <= names
    latin1 = [m for m in messages if m.name == "OriginateResponse" and m.action_id == "utf8-5551014"]
    name = latin1[0]["CallerIDName"]
    assert name.encode("utf-8", "surrogateescape") == b"Zo\xeb L\xe4tin1"
    assert b"Zo\xeb L\xe4tin1" in encode_action("Setvar", [("Value", name)])
    assert any(m.get("MemberName") == "Агент 6001" for m in messages)


def test_c_escaped_caller_names_unescape_and_raw_ones_stay_raw():
    """Channel-state CallerIDName is ast_escape_c'd; OriginateResponse's is not."""
    messages = messages_of("more/ami_utf8_callerid.txt")
    escaped = {m["CallerIDName"] for m in messages if m.name == "Newchannel" or m.name == "NewCallerid"}
    assert 'Say \\"Hi\\" \\\\ Bob' in escaped and "Dan O\\'Neil\\?" in escaped
    assert unescape_c('Say \\"Hi\\" \\\\ Bob') == 'Say "Hi" \\ Bob'
    assert unescape_c("Dan O\\'Neil\\?") == "Dan O'Neil?"
    (originated,) = [m for m in messages if m.name == "OriginateResponse" and m.action_id == "utf8-5551012"]
    assert originated["CallerIDName"] == 'Say "Hi" \\ Bob'


def test_robustness_echoes_keep_a_bare_cr_and_utf8_in_the_action_id():
    """'ActionID: rob-18a\\rrob-18b' keeps its CR; the UTF-8 ActionID comes back intact."""
    ids = {m.action_id for m in messages_of("more/ami_robustness.txt")}
    assert "rob-18a\rrob-18b" in ids
    assert "rob-22-Grüße-你好" in ids


def test_restart_ends_with_shutdown_event_and_nothing_pending():
    """'core restart now' leaves a complete Shutdown event as the last message."""
    last = messages_of("more/ami_restart_core.before.txt")[-1]
    assert (last.name, last["Shutdown"], last["Restart"]) == ("Shutdown", "Cleanly", "True")


# --- framing edge cases ------------------------------------------------------


CRLF_STREAM = BANNER + b"Response: Success\r\nActionID: 1\r\nMessage: ok\r\n\r\nEvent: A\r\nKey: v\r\n\r\n"


def test_bare_lf_and_crlf_lf_line_ends_decode_like_crlf():
    """LF-only lines and CRLF lines closed by a bare LF blank line give the same messages."""
    _, expected = decode_all(CRLF_STREAM)
    assert len(expected) == 2
    for variant in (CRLF_STREAM.replace(b"\r\n", b"\n"), CRLF_STREAM.replace(b"\r\n\r\n", b"\r\n\n")):
        for size in (1, 2, 3, len(variant)):
            decoder, got = decode_all(variant, size)
            assert got == expected and decoder.errors == [] and decoder.banner


def test_banner_glued_to_the_first_response_in_one_read():
    """Banner and Login response in one read: the banner is not part of the response."""
    decoder = AMIDecoder()
    (login, event) = decoder.feed(CRLF_STREAM)
    assert decoder.banner == "Asterisk Call Manager/11.0.0"
    assert login.headers == (("Response", "Success"), ("ActionID", "1"), ("Message", "ok"))
    assert event.name == "A"


def test_stream_without_banner_still_decodes():
    """A decoder fed mid-stream (no banner) decodes messages and reports no banner."""
    decoder, messages = decode_all(CRLF_STREAM[len(BANNER):], 1)
    assert decoder.banner is None and [m.name for m in messages] == ["Success", "A"]


def test_stray_blank_lines_between_messages_are_skipped_silently():
    """Empty lines before or between messages are not messages and not errors."""
    decoder, messages = decode_all(b"\r\n\r\nEvent: A\r\n\r\n\r\n\n\r\nEvent: B\r\n\r\n")
    assert [m.name for m in messages] == ["A", "B"] and decoder.errors == []


def test_header_lines_keep_raw_values():
    """'Key: ' is '', 'key:value' is 'value', only one space after ':' is dropped."""
    raw = (b"Event: X\r\nAccountCode: \r\nOutput:    indented\r\nURL: a:b: c\r\n\r\n"
           b"Event: Y\r\nTight:a: b\r\n\r\n"
           b"Event: Z\r\n: no key\r\n\r\n"
           b"Event: W\r\nlower:value\r\nOdd:\r\n\r\n")
    decoder = AMIDecoder()
    x, y, z, w = decoder.feed(raw)
    assert x.headers == (("Event", "X"), ("AccountCode", ""), ("Output", "   indented"), ("URL", "a:b: c"))
    assert y.headers == (("Event", "Y"), ("Tight", "a: b"))
    assert (z.headers, z.body) == ((("Event", "Z"),), (": no key",))
    assert w.headers == (("Event", "W"), ("lower", "value"), ("Odd", ""))
    assert decoder.errors == []


_header_key = st.from_regex(r"[A-Za-z][A-Za-z0-9()/-]{0,20}", fullmatch=True)
_header_value = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30
)


@given(st.lists(st.tuples(_header_key, _header_value), min_size=1, max_size=8), st.booleans())
def test_any_header_values_decode_exactly_with_or_without_a_body_line(headers, with_body):
    """Values with colons, leading blanks or any Unicode come back verbatim, body line or not."""
    raw = b"".join(f"{k}: {v}\r\n".encode() for k, v in [("Event", "X")] + headers)
    if with_body:
        raw += b"a line without colon\r\n"
    decoder = AMIDecoder()
    (message,) = decoder.feed(raw + b"\r\n")
    assert message.headers == (("Event", "X"), *headers)
    assert message.body == (("a line without colon",) if with_body else ())
    assert decoder.errors == []


def test_lookup_is_case_insensitive_first_match_and_getall_keeps_order():
    """get/[]/in ignore case; repeated keys: get gives the first, getall all in order."""
    message = AMIMessage([("Event", "E"), ("Variable", "A=1"), ("variable", "B=x=y"), ("ActionID", "7")])
    assert message.get("VARIABLE") == "A=1" and message["variable"] == "A=1"
    assert message.getall("Variable") == ["A=1", "B=x=y"]
    assert "actionid" in message and "Nope" not in message and 3 not in message
    assert message.get("Nope", "d") == "d"
    with pytest.raises(KeyError):
        message["Nope"]
    assert (message.kind, message.name, message.action_id) == ("event", "E", "7")
    assert message.variables() == {"A": "1", "B": "x=y"}


def test_message_kinds_and_immutability():
    """Event/Response come from the first header; anything else is 'unknown'; no new attributes."""
    assert AMIMessage([("Response", "Error")]).name == "Error"
    unknown = AMIMessage([("Foo", "bar"), ("Event", "X")])
    assert (unknown.kind, unknown.name, unknown.action_id) == ("unknown", "", None)
    assert AMIMessage([]).kind == "unknown"
    with pytest.raises(AttributeError):
        unknown.extra = 1
    assert isinstance(unknown.headers, tuple)
    assert hash(unknown) == hash(AMIMessage([("Foo", "bar"), ("Event", "X")]))


def test_variables_reads_chanvariable_and_prefixed_keys_and_skips_varset_shape():
    """ChanVariable is read by default, DestChanVariable on request; 'Variable: NAME' alone is not."""
    message = AMIMessage([
        ("Event", "VarSet"), ("ChanVariable", "CC_ID=42"), ("DestChanVariable", "CC_ID=43"),
        ("Variable", "CC_NL"), ("Value", "line1"),
    ])
    assert message.variables() == {"CC_ID": "42"}
    assert message.variables("DestChanVariable") == {"CC_ID": "43"}


def test_garbage_line_before_a_frame_is_reported_and_the_frame_survives():
    """A line without 'Key:' glued before a message is reported, skipped, and the message kept."""
    decoder = AMIDecoder()
    messages = decoder.feed(b"Event: A\r\n\r\ngarbage line\r\nEvent: B\r\nKey: v\r\n\r\n")
    assert [m.headers for m in messages] == [(("Event", "A"),), (("Event", "B"), ("Key", "v"))]
    (error,) = decoder.pop_errors()
    assert "garbage line" in str(error) and decoder.errors == []


def test_garbage_frame_is_reported_and_skipped_between_valid_frames():
    """A block with no header at all is one error; the frames around it come out."""
    decoder = AMIDecoder()
    messages = decoder.feed(b"Event: A\r\n\r\n%%% noise\r\n\xff\xfe\r\n\r\nEvent: B\r\n\r\n")
    assert [m.name for m in messages] == ["A", "B"]
    (error,) = decoder.pop_errors()
    assert "no 'Key: value' header" in str(error) and error.data.startswith(b"%%% noise")


def test_colonless_line_inside_a_message_is_body_and_headers_continue():
    """A value continued on a bare line (VarSet of a multi-line value) lands in body."""
    (message,) = AMIDecoder().feed(b"Event: VarSet\r\nValue: line1\nline2\r\nUniqueid: 1\r\n\r\n")
    assert message.headers == (("Event", "VarSet"), ("Value", "line1"), ("Uniqueid", "1"))
    assert message.body == ("line2",)


def test_error_data_is_truncated_to_200_bytes():
    """A huge garbage block is reported with its size and only its first 200 bytes."""
    decoder = AMIDecoder()
    decoder.feed(b"x" * 5000 + b"\r\n\r\n")
    (error,) = decoder.pop_errors()
    assert (error.size, len(error.data)) == (5000, 200)
    assert str(error).endswith("...") and len(str(error)) < 400


def test_legacy_response_follows_body_spans_blank_lines_up_to_end_command():
    """'Response: Follows' output (pre-14 Command) is body until --END COMMAND--, in any chunking."""
    stream = (b"Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\n"
              b"Name: not a header\nline two\n\nafter blank\n--END COMMAND--\r\n\r\n"
              b"Event: Next\r\n\r\n")
    for size in (1, 2, 7, len(stream)):
        decoder, (follows, after) = decode_all(stream, size)
        assert (follows.kind, follows.name, follows.action_id) == ("response", "Follows", "c1")
        assert follows.headers[1] == ("Privilege", "Command")
        assert follows.body == ("Name: not a header", "line two", "", "after blank")
        assert after.name == "Next" and decoder.errors == []


def test_partial_message_at_eof_is_reported_by_close():
    """Asterisk drops a slow reader mid-event: close() reports the dropped tail."""
    decoder = AMIDecoder()
    assert decoder.feed(BANNER + b"Event: UserEvent\r\nUserEvent: flood\r\nPad: xxx") == []
    assert decoder.buffered > 0
    error = decoder.close()
    assert isinstance(error, DecodeError) and b"Pad: xxx" in error.data
    assert decoder.buffered == 0 and decoder.close() is None


def test_feed_accepts_bytearray_and_memoryview():
    """Transports may hand over bytearray or memoryview chunks."""
    decoder = AMIDecoder()
    messages = decoder.feed(bytearray(BANNER)) + decoder.feed(memoryview(b"Event: A\r\n\r\n"))
    assert [m.name for m in messages] == ["A"]


# --- memory bound ----------------------------------------------------------


def test_message_without_end_raises_frame_too_large_and_memory_stays_bounded():
    """1 MiB with no blank line: FrameTooLarge just past 64 KiB; the buffer never holds more."""
    decoder = AMIDecoder()
    decoder.feed(BANNER + b"Event: UserEvent\r\nPad: ")
    fed, peak = 0, 0
    with pytest.raises(FrameTooLarge) as raised:
        while fed < 1 << 20:
            decoder.feed(b"x" * 1024)
            fed += 1024
            peak = max(peak, decoder.buffered)
    assert peak <= 64 * 1024 + 3 and fed <= 64 * 1024
    assert decoder.buffered == 0 and raised.value.size > 64 * 1024 and len(raised.value.data) == 200
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"Event: A\r\n\r\n")


@pytest.mark.parametrize("size", [1, 2, 3, 5, 1000])
def test_the_limit_is_exact_and_independent_of_chunking(size):
    """A message of exactly max_message_bytes passes, one byte more fails, in any chunking."""
    def message(length):
        head = b"Event: X\r\nPad: "
        return head + b"y" * (length - len(head)) + b"\r\n\r\n"  # length = bytes before the last LF minus CR

    fits, too_big = message(99), message(100)
    assert len(fits) - 3 == 100
    decoder, messages = AMIDecoder(max_message_bytes=100), []
    for start in range(0, len(fits), size):
        messages += decoder.feed(fits[start:start + size])
    assert len(messages) == 1
    decoder = AMIDecoder(max_message_bytes=100)
    with pytest.raises(FrameTooLarge):
        for start in range(0, len(too_big), size):
            decoder.feed(too_big[start:start + size])


def test_frame_too_large_carries_the_messages_decoded_before_it():
    """Messages completed earlier in the same read are handed over on the exception."""
    decoder = AMIDecoder(max_message_bytes=50)
    with pytest.raises(FrameTooLarge) as raised:
        decoder.feed(b"Event: A\r\n\r\nEvent: B\r\nPad: " + b"z" * 100 + b"\r\n\r\n")
    assert [m.name for m in raised.value.messages] == ["A"]


# --- property: random splits plus garbage blocks -------------------------------

VALID_STREAM = transcripts.fixture("more/ami_acd_e_caller_hangup_moh.txt").read_bytes()
VALID_FRAMES = frames_of(VALID_STREAM)
VALID_MESSAGES = list(messages_of("more/ami_acd_e_caller_hangup_moh.txt"))
_garbage_line = st.binary(min_size=1, max_size=40).filter(
    lambda b: not set(b) & set(b"\r\n:")
)
_line_end = st.sampled_from([b"\r\n", b"\n"])


@st.composite
def garbage_block(draw, prefix=b""):
    lines = draw(st.lists(_garbage_line, min_size=1, max_size=4))
    ends = [draw(_line_end) for _ in lines]
    return b"".join(prefix + line + end for line, end in zip(lines, ends)) + draw(_line_end)


@st.composite
def noisy_stream(draw, block=garbage_block()):
    """The frames of a real capture with garbage blocks between some, cut into random chunks."""
    inserts = draw(st.lists(st.tuples(st.integers(0, len(VALID_FRAMES)), block), max_size=8))
    parts = [[frame] for frame in VALID_FRAMES] + [[]]
    for index, garbage in inserts:
        parts[index].insert(0, garbage)
    data = BANNER + b"".join(b"".join(part) for part in parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=40)))
    chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    return chunks, len(inserts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noisy_stream())
def test_valid_frames_survive_random_splits_and_garbage_blocks(case):
    """Whatever the splits and bogus frames in between, every real message comes out intact."""
    chunks, blocks = case
    decoder = AMIDecoder()
    messages = [m for chunk in chunks for m in decoder.feed(chunk)]
    assert messages == VALID_MESSAGES
    assert len(decoder.pop_errors()) == blocks
    assert decoder.buffered == 0 and decoder.banner


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noisy_stream(block=garbage_block(prefix=b"X-Junk: ")))
def test_bogus_header_blocks_come_out_as_unknown_and_never_touch_real_ones(case):
    """Blocks of headers that are neither Event nor Response are 'unknown' messages, nothing else."""
    chunks, blocks = case
    decoder = AMIDecoder()
    messages = [m for chunk in chunks for m in decoder.feed(chunk)]
    assert [m for m in messages if m.kind != "unknown"] == VALID_MESSAGES
    assert sum(m.kind == "unknown" for m in messages) == blocks
    assert decoder.errors == []


# --- C escapes -------------------------------------------------------------

_AST_ESCAPES = {"\a": "a", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t",
                "\v": "v", "\\": "\\", "'": "'", '"': '"', "?": "?"}


def ast_escape_c(text: str) -> str:
    """Port of main/utils.c ast_escape_c()."""
    return "".join("\\" + _AST_ESCAPES[c] if c in _AST_ESCAPES else c for c in text)


@given(st.text())
def test_unescape_c_inverts_asterisks_ast_escape_c(text):
    """unescape_c(ast_escape_c(s)) == s for any text."""
    assert unescape_c(ast_escape_c(text)) == text


def test_unescape_c_leaves_unknown_sequences_and_plain_text_alone():
    """No backslash: same object back; unknown or dangling escapes are kept."""
    plain = "张伟"
    assert unescape_c(plain) is plain
    assert unescape_c("a\\xb\\") == "a\\xb\\"
    assert unescape_c("\\a\\b\\f\\n\\r\\t\\v") == "\a\b\f\n\r\t\v"


# --- encoding actions ------------------------------------------------------


def test_encode_action_exact_bytes_with_action_id_and_dict_headers():
    """Action, ActionID, then headers in order, CRLF everywhere, blank line at the end."""
    assert encode_action("Login", {"Username": "cti", "Secret": "cti-secret", "Events": "on"},
                         action_id="full-1") == (
        b"Action: Login\r\nActionID: full-1\r\nUsername: cti\r\nSecret: cti-secret\r\n"
        b"Events: on\r\n\r\n")
    assert encode_action("Ping") == b"Action: Ping\r\n\r\n"


def test_encode_action_repeats_keys_given_as_pairs():
    """Several Variable: headers stay several lines, in order."""
    assert encode_action("Originate", [("Channel", "Local/4000@from-pstn"),
                                       ("Variable", "A=1"), ("Variable", "B=2")]) == (
        b"Action: Originate\r\nChannel: Local/4000@from-pstn\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n")


@pytest.mark.parametrize("bad", ["\r", "\n", "\0"])
@pytest.mark.parametrize("where", ["key", "value", "action_id", "name"])
def test_encode_action_refuses_cr_lf_nul_and_names_the_header(bad, where):
    """Header injection: CR, LF or NUL anywhere raises ValueError naming the header."""
    key, value, action_id, name = "Channel", "Local/1@x", "id", "Hangup"
    if where == "key":
        key = "Chan" + bad + "nel"
    elif where == "value":
        value = "x" + bad + "Action: Originate"
    elif where == "action_id":
        action_id = "id" + bad
    else:
        name = "Hangup" + bad
    with pytest.raises(ValueError, match="header injection") as raised:
        encode_action(name, [(key, value)], action_id=action_id)
    expected = {"key": key, "value": "Channel", "action_id": "ActionID", "name": "Action"}[where]
    assert repr(expected) in str(raised.value)


@pytest.mark.parametrize("key", ["", "Bad:Key", " Lead", "Trail "])
def test_encode_action_refuses_keys_asterisk_would_misread(key):
    """Empty keys, keys with ':' or edge blanks are refused."""
    with pytest.raises(ValueError, match="key"):
        encode_action("Ping", [(key, "v")])


def test_encode_action_enforces_the_1022_byte_line_limit_in_bytes():
    """1022 bytes (+CRLF) is the longest line Asterisk reads; one byte more is refused."""
    pad = "X-Pad: "
    assert encode_action("Ping", [("X-Pad", "A" * (MAX_LINE_BYTES - len(pad)))])
    with pytest.raises(ValueError, match="'X-Pad' is 1023 bytes"):
        encode_action("Ping", [("X-Pad", "A" * (MAX_LINE_BYTES - len(pad) + 1))])
    with pytest.raises(ValueError, match="1024 bytes"):  # 339 x 3-byte UTF-8 characters
        encode_action("Ping", [("X-Pad", "张" * 339)])


def test_encode_action_enforces_the_128_line_limit():
    """128 lines including Action: are kept by Asterisk; 129 are refused here."""
    headers = [(f"X-Hdr-{i}", "v") for i in range(MAX_ACTION_LINES - 2)]
    assert encode_action("Ping", headers, action_id="a").count(b"\r\n") == MAX_ACTION_LINES + 1
    with pytest.raises(ValueError, match="129 lines"):
        encode_action("Ping", headers + [("X-One-More", "v")], action_id="a")


def test_encode_action_sends_surrogate_escaped_bytes_back_unchanged():
    """A Latin-1 value received from Asterisk goes back as the same bytes."""
    value = b"Zo\xeb".decode("utf-8", "surrogateescape")
    assert encode_action("Setvar", [("Value", value)]) == b"Action: Setvar\r\nValue: Zo\xeb\r\n\r\n"


# --- Originate variables ---------------------------------------------------


def ast_separate_args(text: str) -> list[str]:
    """Port of main/app.c __ast_app_separate_args(buf, ',', remove_chars=1)."""
    args, current, paren, bracket, quote, i = [], [], 0, 0, False, 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 1
            current.append(text[i])
        elif c == '"':
            quote = not quote
        elif c == "," and not (paren or bracket or quote):
            args.append("".join(current))
            current = []
        else:
            paren += (c == "(") - (c == ")" and paren > 0)
            bracket += (c == "[") - (c == "]" and bracket > 0)
            current.append(c)
        i += 1
    return args + ["".join(current)]


def asterisk_variables(header_value: str) -> list[tuple[str, str]]:
    """What manager.c man_do_variable_value makes of one Variable: header."""
    pairs = []
    for item in ast_separate_args(header_value.lstrip(" \t")):
        name, sep, value = item.partition("=")
        if sep and name:
            pairs.append((name, value))
    return pairs


def test_separate_args_port_matches_the_recorded_asterisk_behaviour():
    """The port reproduces more/README.txt: commas split, quotes and backslashes are consumed."""
    assert asterisk_variables("CC_A=1,CC_B=2") == [("CC_A", "1"), ("CC_B", "2")]
    assert asterisk_variables("CC_NOTE=hello, world") == [("CC_NOTE", "hello")]
    assert asterisk_variables('CC_Q="x,y"') == [("CC_Q", "x,y")]
    assert asterisk_variables("CC_E=a\\,b") == [("CC_E", "a,b")]
    assert asterisk_variables("CC_EQ=k=v") == [("CC_EQ", "k=v")]


@given(st.text(alphabet=st.characters(blacklist_characters="\r\n\0"), max_size=60))
def test_originate_variable_value_reaches_asterisk_unchanged(value):
    """originate_variable escapes commas, quotes, backslashes and brackets so Asterisk sees the value."""
    key, header = originate_variable("CC_NOTE", value)
    assert key == "Variable"
    assert asterisk_variables(header) == [("CC_NOTE", value)]


def test_originate_variable_refuses_names_with_equals():
    """A name holding '=' would be split differently by Asterisk."""
    with pytest.raises(ValueError):
        originate_variable("A=B", "1")
    assert originate_variable("CC_NOTE", "hello, world") == ("Variable", "CC_NOTE=hello\\, world")
