"""The AMI client: panoramisk's correlation with our framing, guards, reconnects, pings and resync."""

from __future__ import annotations

import asyncio
import logging

import pytest

from callcenter.asterisk.ami_actions import ACTIONS, spec_for
from callcenter.asterisk.ami_client import (AMIActionFailed, AMIActionTimeout, AMIClient, AMILinkDown,
                                            AMIUnexpectedReply, UnknownAMIAction)
from callcenter.backoff import Backoff
from tests.ami_peer import BANNER, AMIPeer, msg
from tests.util import asyncio_test, eventually

FAST = Backoff(initial=0.05, factor=2.0, cap=0.2, jitter=0.0)


class Listener:
    def __init__(self):
        self.log = []
        self.snapshots = []
        self.fail_on = None

    def ami_snapshot(self, snapshot):
        self.snapshots.append(snapshot)
        self.log.append("snapshot")

    def ami_event(self, event):
        if event.name == self.fail_on:
            raise RuntimeError("handler bug")
        self.log.append(event.name)

    def ami_link_down(self):
        self.log.append("down")


async def connected(peer=None, **kw):
    peer = peer or AMIPeer()
    if peer.server is None:
        await peer.start()
    listener = Listener()
    client = AMIClient(host="127.0.0.1", port=peer.port, username="cti", secret=peer.secret,
                       loop=asyncio.get_running_loop(), listener=listener, backoff=FAST, **kw)
    client.start()
    return peer, client, listener


async def ready(client):
    await asyncio.wait_for(client.logged_in.wait(), 5)


def chan(uniqueid, name="张伟"):
    return [("Channel", f"Local/4000@from-pstn-0000000{uniqueid[-1]};2"), ("CallerIDNum", "5551001"),
            ("CallerIDName", name), ("Uniqueid", uniqueid), ("Linkedid", uniqueid)]


@asyncio_test
async def test_login_resync_then_events_in_order():
    """After login the listener gets a snapshot first, then events, including those sent meanwhile."""
    peer = AMIPeer()
    peer.channels = [chan("1795535416.0")]
    peer.after_login = [msg(("Event", "Newchannel"), ("Privilege", "call,all"), ("Uniqueid", "1795535416.1"))]
    await peer.start()
    _, client, listener = await connected(peer)
    try:
        await ready(client)
        peer.push(msg(("Event", "Hangup"), ("Privilege", "call,all"), ("Uniqueid", "1795535416.1")))
        await eventually(lambda: "Hangup" in listener.log)
        assert listener.log == ["snapshot", "FullyBooted", "Newchannel", "Hangup"]
        (snap,) = listener.snapshots
        assert [c["CallerIDName"] for c in snap.channels] == ["张伟"]
        assert not snap.restarted
        assert [a for a, _ in peer.actions[:5]] == ["Login", "CoreStatus", "CoreShowChannels", "QueueStatus",
                                                    "Status"]
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_a_failing_handler_does_not_kill_the_link(caplog):
    """A listener that raises is logged with the event name and the call id; the link stays up."""
    peer, client, listener = await connected()
    listener.fail_on = "Newstate"
    try:
        await ready(client)
        peer.push(msg(("Event", "Newstate"), ("Linkedid", "1795535416.0"), ("Uniqueid", "1795535416.0"))
                  + msg(("Event", "Hangup"), ("Uniqueid", "1795535416.0")))
        await eventually(lambda: "Hangup" in listener.log)
        assert "failed on Newstate event" in caplog.text
        record = next(r for r in caplog.records if "failed on Newstate" in r.getMessage())
        assert record.call_id == "1795535416.0"
        assert (await client.action("Ping"))["Ping"] == "Pong"
        assert peer.logins() == 1
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_utf8_split_across_reads_survives():
    """A Chinese caller name split byte by byte across TCP reads arrives whole."""
    peer, client, listener = await connected()
    seen = []
    listener.ami_event = lambda e: e.name == "NewCallerid" and seen.append(e.get("CallerIDName"))
    try:
        await ready(client)
        data = msg(("Event", "NewCallerid"), ("CallerIDName", "张伟 Zoë"), ("Uniqueid", "1.1"))
        for i in range(len(data)):
            peer.push(data[i:i + 1])
            await asyncio.sleep(0)
            await asyncio.sleep(0.001)
        await eventually(lambda: seen)
        assert seen == ["张伟 Zoë"]
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_action_errors_timeouts_and_injection():
    """Response: Error raises AMIActionFailed; silence raises AMIActionTimeout; CR/LF is refused unsent."""
    peer, client, _ = await connected(action_timeout=0.3, ping_interval=60)
    try:
        await ready(client)
        with pytest.raises(AMIActionFailed) as info:
            await client.action("Hangup", {"Channel": "PJSIP/none"})
        assert info.value.message == "No such channel"
        peer.answer_pings = False
        with pytest.raises(AMIActionTimeout, match="Ping got no answer from Asterisk within 0.3 s"):
            await client.action("Ping")
        peer.answer_pings = True
        before = len(peer.actions)
        with pytest.raises(ValueError, match="header injection"):
            await client.action("Setvar", {"Channel": "x", "Variable": "A", "Value": "1\r\nAction: Originate"})
        await client.action("Ping")
        assert len(peer.actions) == before + 1
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_originate_is_always_async():
    """Originate goes out with Async: true even if the caller asked otherwise."""
    peer, client, _ = await connected()
    try:
        await ready(client)
        task = asyncio.ensure_future(client.action("Originate", [("Channel", "Local/6001@agents"),
                                                                 ("Async", "false")], timeout=0.5))
        await eventually(lambda: any(a == "Originate" for a, _ in peer.actions))
        fields = next(f for a, f in peer.actions if a == "Originate")
        assert fields["Async"] == "true"
        task.cancel()
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_pending_actions_fail_on_disconnect_and_are_not_resent():
    """An action waiting when the link drops fails with AMILinkDown and never reaches the next connection."""
    peer, client, listener = await connected(ping_interval=60)
    try:
        await ready(client)
        peer.answer_pings = False
        pending = asyncio.ensure_future(client.action("Ping", timeout=5))
        await eventually(lambda: any(a == "Ping" for a, _ in peer.actions))
        await peer.drop_clients()
        with pytest.raises(AMILinkDown):
            await pending
        assert "down" in listener.log
        await eventually(lambda: peer.logins() == 2 and client.logged_in.is_set(), what="relogin")
        assert sum(1 for a, _ in peer.actions if a == "Ping") == 1
        with pytest.raises(AMILinkDown):
            client.authenticated = False
            await client.action("Ping")
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_reconnects_with_backoff_while_asterisk_is_down(caplog):
    """Refused connections are retried with growing delays; the link comes up when Asterisk does."""
    caplog.set_level(logging.INFO)
    peer = AMIPeer()
    await peer.start()
    port = peer.port
    await peer.stop()
    peer.port = port
    _, client, listener = await connected(peer=_Unstarted(peer))
    try:
        await eventually(lambda: caplog.text.count("unreachable") >= 3, what="three refused attempts")
        await peer.start(port)
        await ready(client)
        assert listener.snapshots
        assert "retrying in 0.1 s" in caplog.text and "retrying in 0.2 s" in caplog.text
    finally:
        await client.close_and_wait()
        await peer.stop()


class _Unstarted:
    """Wraps a stopped peer so that ``connected`` does not start it."""

    def __init__(self, peer):
        self.__dict__.update(peer.__dict__)
        self.server = object()


@asyncio_test
async def test_half_open_link_is_declared_dead_and_reopened(caplog):
    """When Pings go unanswered the link is declared dead within interval + timeout and reopened."""
    peer, client, listener = await connected(ping_interval=0.2, ping_timeout=0.2)
    try:
        await ready(client)
        peer.answer_pings = False
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await eventually(lambda: "down" in listener.log, what="link declared dead")
        assert loop.time() - t0 < 0.2 + 0.2 + 0.3
        assert "no Ping answer within 0.2 s" in caplog.text
        peer.answer_pings = True
        await eventually(lambda: peer.logins() == 2 and client.logged_in.is_set(), what="relogin")
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_restart_detected_from_shutdown_and_startup_time():
    """A Shutdown event, or a new CoreStartupTime after reconnect, marks the next snapshot restarted."""
    peer, client, listener = await connected()
    try:
        await ready(client)
        peer.push(msg(("Event", "Shutdown"), ("Privilege", "system,all"), ("Shutdown", "Cleanly"),
                      ("Restart", "True")))
        await eventually(lambda: "Shutdown" in listener.log)
        await peer.drop_clients()
        await eventually(lambda: len(listener.snapshots) == 2, what="second snapshot")
        assert listener.snapshots[1].restarted
        await peer.drop_clients()
        await eventually(lambda: len(listener.snapshots) == 3, what="third snapshot")
        assert not listener.snapshots[2].restarted
        peer.startup_time = "17:00:00"
        await peer.drop_clients()
        await eventually(lambda: len(listener.snapshots) == 4, what="fourth snapshot")
        assert listener.snapshots[3].restarted
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_oversized_message_drops_and_reopens(caplog):
    """A message with no end within 64 KiB closes the connection (logged) and the client logs in again."""
    peer, client, listener = await connected()
    try:
        await ready(client)
        peer.push(b"Event: Flood\r\nData: " + b"x" * (70 * 1024))
        await eventually(lambda: peer.logins() == 2 and client.logged_in.is_set(), what="relogin")
        assert "reopening the connection" in caplog.text
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_wrong_secret_is_logged_and_retried(caplog):
    """A refused login is logged with Asterisk's reason and retried with backoff."""
    peer = AMIPeer(secret="right")
    await peer.start()
    listener = Listener()
    client = AMIClient(host="127.0.0.1", port=peer.port, username="cti", secret="wrong",
                       loop=asyncio.get_running_loop(), listener=listener, backoff=FAST)
    client.start()
    try:
        await eventually(lambda: caplog.text.count("refused: Authentication failed") >= 1)
        await peer.drop_clients()
        await eventually(lambda: peer.logins() >= 2, what="a second login attempt")
        assert not listener.snapshots
    finally:
        await client.close_and_wait()
        await peer.stop()


# -- every action's declared reply shape (callcenter/asterisk/ami_actions.py) ---------------------------------

#: What Asterisk 22.10.1 answers (tests/test_real_asterisk_ami.py checks these against the real thing).
SINGLE_REPLIES = {
    "QueueAdd": [("Message", "Added interface to queue")],
    "QueueRemove": [("Message", "Removed interface from queue")],
    "QueuePause": [("Message", "Interface paused successfully")],
    "QueuePenalty": [("Message", "Interface penalty set successfully")],
    "QueueLog": [("Message", "Event added successfully")],
    "Originate": [("Message", "Originate successfully queued")],
    "Redirect": [("Message", "Redirect successful")],
    "Setvar": [("Message", "Variable Set")],
    "Getvar": [("Variable", "CC_QUEUE"), ("Value", "support")],
    "Hangup": [("Message", "Channel Hungup")],
    "Bridge": [("Message", "Channels have been bridged")],
    "Atxfer": [("Message", "Atxfer successfully queued")],
    "CancelAtxfer": [("Message", "CancelAtxfer successfully queued")],
    "BlindTransfer": [("Message", "Transfer succeeded")],
    "PlayDTMF": [("Message", "DTMF successfully queued")],
}


class RecordedPeer(AMIPeer):
    """The scripted peer, answering the call and queue actions as Asterisk 22 does; ``replies`` overrides."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.replies = {}

    def _answer(self, f):
        name, aid = f.get("Action", ""), f.get("ActionID", "")
        if name in self.replies:
            return self.replies[name](f, aid)
        if name in SINGLE_REPLIES:
            return msg(("Response", "Success"), ("ActionID", aid), *SINGLE_REPLIES[name])
        if name == "QueueStatus" and f.get("Queue") == "sales":
            return (msg(("Response", "Success"), ("ActionID", aid), ("EventList", "start"),
                        ("Message", "Queue status will follow"))
                    + msg(("Event", "QueueParams"), ("Queue", "sales"), ("Calls", "1"), ("ActionID", aid))
                    + msg(("Event", "QueueMember"), ("Queue", "sales"), ("Location", "Local/6001@agents/n"),
                          ("Status", "1"), ("Paused", "0"), ("PausedReason", ""), ("ActionID", aid))
                    + msg(("Event", "QueueEntry"), ("Queue", "sales"), ("Position", "1"),
                          ("Channel", "PJSIP/trunk-00000001"), ("ActionID", aid))
                    + msg(("Event", "QueueStatusComplete"), ("ActionID", aid), ("EventList", "Complete"),
                          ("ListItems", "3")))
        if name == "Status" and f.get("Channel"):
            return msg(("Response", "Error"), ("ActionID", aid), ("Message", "No such channel"))
        return super()._answer(f)


async def answered_promptly(client, name, headers=(), limit=0.5):
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await client.action(name, headers)
    assert loop.time() - start < limit, f"{name} took {loop.time() - start:.1f} s"
    return result


@asyncio_test
async def test_single_replies_complete_at_once_whatever_their_message_says():
    """'Added interface to queue', 'Originate successfully queued', 'Atxfer successfully queued' ... are answers.

    panoramisk took those messages for the start of a list and waited for its end until the timeout.
    """
    peer, client, _ = await connected(RecordedPeer(), action_timeout=5)
    try:
        await ready(client)
        for name, expected in SINGLE_REPLIES.items():
            reply = await answered_promptly(client, name, [("Channel", "Local/s@cc-wait-00000000;1")])
            assert reply.headers[2:] == tuple(expected), name
        assert not client.protocol.responses   # nothing left waiting
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_originate_answers_once_and_its_outcome_event_reaches_the_listener():
    """The OriginateResponse event, carrying the Originate's ActionID, is an event for the listener."""
    peer, client, listener = await connected(RecordedPeer(), action_timeout=5)
    try:
        await ready(client)
        reply = await answered_promptly(client, "Originate", [("Channel", "Local/6001@agents/n"),
                                                              ("Context", "cc-agent-hold"), ("Exten", "s")])
        peer.push(msg(("Event", "OriginateResponse"), ("Privilege", "call,all"), ("ActionID", reply.action_id),
                      ("Response", "Success"), ("Channel", "Local/6001@agents-00000000;1"), ("Reason", "4"),
                      ("Uniqueid", "1795535416.0")))
        await eventually(lambda: "OriginateResponse" in listener.log, what="the OriginateResponse event")
        assert sum(1 for a, _ in peer.actions if a == "Originate") == 1
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_list_replies_collect_every_item_up_to_their_declared_completing_event():
    peer, client, _ = await connected(RecordedPeer(), action_timeout=5)
    try:
        await ready(client)
        messages = await answered_promptly(client, "QueueStatus", [("Queue", "sales")])
        assert [m.name for m in messages] == ["Success", "QueueParams", "QueueMember", "QueueEntry",
                                              "QueueStatusComplete"]
        items = await client.list_action("QueueStatus", [("Queue", "sales")])
        assert [m.name for m in items] == ["QueueParams", "QueueMember", "QueueEntry"]
        assert await client.list_action("CoreShowChannels") == []
        with pytest.raises(ValueError, match="not a list"):
            await client.list_action("Ping")
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_a_list_action_answered_with_an_error_fails_at_once():
    """Status of an unknown channel: 'Response: Error / No such channel' and no list; panoramisk waited 10 s."""
    peer, client, _ = await connected(RecordedPeer(), action_timeout=5)
    try:
        await ready(client)
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(AMIActionFailed, match="No such channel") as info:
            await client.list_action("Status", [("Channel", "PJSIP/nobody-00000001")])
        assert loop.time() - start < 0.5
        assert info.value.action == "Status" and info.value.response.get("Response") == "Error"
        peer.replies["QueueSummary"] = lambda f, aid: msg(("Response", "Success"), ("ActionID", aid),
                                                          ("Message", "Queue summary will follow"))
        with pytest.raises(AMIUnexpectedReply, match="QueueSummary answered without starting a list"):
            await client.list_action("QueueSummary")
        assert loop.time() - start < 0.5
        assert not client.protocol.responses
        assert (await client.action("Ping"))["Ping"] == "Pong"
    finally:
        await client.close_and_wait()
        await peer.stop()


@asyncio_test
async def test_undeclared_actions_and_hangup_by_regex_are_refused_unsent():
    peer, client, _ = await connected(RecordedPeer())
    try:
        await ready(client)
        before = len(peer.actions)
        with pytest.raises(UnknownAMIAction, match="'Command' has no declared reply shape"):
            await client.action("Command", {"Command": "core show channels"})
        with pytest.raises(UnknownAMIAction):
            await client.list_action("SIPpeers")
        with pytest.raises(ValueError, match="regex"):
            await client.action("Hangup", {"Channel": "/^PJSIP/"})
        assert len(peer.actions) == before
        with pytest.raises(UnknownAMIAction):
            await client.protocol.send({"Action": "Command", "Command": "core stop now"})
        assert len(peer.actions) == before
    finally:
        await client.close_and_wait()
        await peer.stop()


def test_the_declared_table():
    """Names are looked up case-insensitively; every list ends with its own ...Complete event."""
    assert spec_for("queueadd").name == "QueueAdd" and not spec_for("QUEUEADD").is_list
    lists = {spec.name: spec.complete for spec in ACTIONS.values() if spec.is_list}
    assert lists == {"CoreShowChannels": "CoreShowChannelsComplete", "QueueStatus": "QueueStatusComplete",
                     "QueueSummary": "QueueSummaryComplete", "Status": "StatusComplete"}
    assert {"Login", "Logoff", "Ping", "CoreStatus"} | set(SINGLE_REPLIES) == \
        {spec.name for spec in ACTIONS.values() if not spec.is_list}


# -- a peer that accepts TCP and then says nothing ------------------------------------------------------------

class SilentPeer:
    """Accepts connections and never answers Login (with ``banner``: sends the banner first)."""

    def __init__(self, banner: bool):
        self.banner = banner
        self.server = None
        self.port = 0
        self.connections = []   # [accepted at, closed by the client at, bytes received]

    async def start(self, port=0):
        self.server = await asyncio.start_server(self._client, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()

    async def _client(self, reader, writer):
        loop = asyncio.get_running_loop()
        record = [loop.time(), None, b""]
        self.connections.append(record)
        if self.banner:
            writer.write(BANNER)
        try:
            while data := await reader.read(65536):
                record[2] += data
        except ConnectionError:
            pass
        record[1] = loop.time()
        writer.close()


@pytest.mark.parametrize("banner, logged", [
    (False, "sent no AMI banner and did not answer Login within 0.3 s"),
    (True, "did not answer Login within 0.3 s"),
])
@asyncio_test
async def test_a_peer_that_never_answers_login_is_dropped_and_retried_with_backoff(caplog, banner, logged):
    """Login gets login_timeout; the socket is closed, retried with backoff, and a real peer is logged in to."""
    silent = SilentPeer(banner)
    await silent.start()
    client = AMIClient(host="127.0.0.1", port=silent.port, username="cti", secret="s",
                       loop=asyncio.get_running_loop(), listener=Listener(), backoff=FAST, login_timeout=0.3)
    client.start()
    peer = AMIPeer()
    try:
        await eventually(lambda: sum(1 for c in silent.connections if c[1] is not None) >= 3,
                         what="three connections closed by the client")
        assert caplog.text.count(logged) >= 3
        for accepted, closed, received in silent.connections[:3]:
            assert b"Action: Login\r\n" in received
            assert 0.3 <= closed - accepted < 0.3 + 0.3
        retries = [r.args[1] for r in caplog.records if r.getMessage().startswith("AMI login timed out")]
        assert retries[:3] == [0.05, 0.1, 0.2]   # FAST's growing delays
        assert not client.logged_in.is_set()
        port = silent.port
        await silent.stop()
        await peer.start(port)
        await ready(client)
        assert peer.logins() == 1 and client.attempts == 0
    finally:
        await client.close_and_wait()
        await peer.stop()
