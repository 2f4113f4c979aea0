"""The AMI client: panoramisk's correlation with our framing, guards, reconnects, pings and resync."""

from __future__ import annotations

import asyncio
import logging

import pytest

from callcenter.asterisk.ami_client import (AMIActionFailed, AMIActionTimeout, AMIClient, AMILinkDown)
from callcenter.backoff import Backoff
from tests.ami_peer import AMIPeer, msg
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
    peer, client, _ = await connected(action_timeout=0.3)
    try:
        await ready(client)
        with pytest.raises(AMIActionFailed) as info:
            await client.action("Hangup", {"Channel": "PJSIP/none"})
        assert info.value.message == "No such channel"
        with pytest.raises(AMIActionTimeout, match="Silent got no answer from Asterisk within 0.3 s"):
            await client.action("Silent")
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
    peer, client, listener = await connected()
    try:
        await ready(client)
        pending = asyncio.ensure_future(client.action("Silent", timeout=5))
        await eventually(lambda: any(a == "Silent" for a, _ in peer.actions))
        await peer.drop_clients()
        with pytest.raises(AMILinkDown):
            await pending
        assert "down" in listener.log
        await eventually(lambda: peer.logins() == 2 and client.logged_in.is_set(), what="relogin")
        assert sum(1 for a, _ in peer.actions if a == "Silent") == 1
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
