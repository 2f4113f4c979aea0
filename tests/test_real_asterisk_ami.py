"""Every AMI action the daemon sends, through the daemon's own client, against a real Asterisk 22.

The client logs in as the shipped least-privilege ``cti`` user, as the daemon
does.  Each test sends an action and checks the reply Asterisk really gives
(recorded in the comments and in the assertions): that it comes back well
under the action timeout, with the right success or error and, for a list,
every item up to the completing event.  Channels are Local channels the
client originates itself (``Local/s@cc-wait`` answers and plays music on
hold; its ``;1`` half runs ``Wait``) or SIPp phones.

Replies seen on Asterisk 22.10.1 (``callcenter/asterisk/ami_actions.py``
holds the same table):

==================  ======  ============================  =============================================
action              shape   completed by                  failure (Response: Error, Message: ...)
==================  ======  ============================  =============================================
Login               single  Authentication accepted       Authentication failed (~1 s late, then closed)
Logoff              single  Response: Goodbye             -
Ping                single  Ping: Pong, Timestamp         -
CoreStatus          single  CoreStartupDate/Time ...      -
QueueAdd            single  Added interface to queue      Unable to add interface: Already there /
                                                          Unable to add interface to queue: No such queue
QueueRemove         single  Removed interface from queue  Unable to remove interface: Not there
QueuePause          single  Interface (un)paused          Interface not found
                            successfully
QueuePenalty        single  Interface penalty set         Invalid interface, queuename or penalty
                            successfully
QueueLog            single  Event added successfully      -
Originate (Async)   single  Originate successfully        Originate Access Forbidden: app or data
                            queued; the outcome is the    blacklisted (cti has no 'system' class)
                            OriginateResponse EVENT
Redirect            single  Redirect successful           Channel does not exist: <name>
Setvar              single  Variable Set                  No such channel
Getvar              single  Variable, Value               No such channel
Hangup              single  Channel Hungup                No such channel  (Channel: /regex/ makes it
                                                          a list: ChannelsHungupListComplete)
Bridge              single  Channels have been bridged    Channel1 does not exist: <name>
Atxfer              single  Atxfer successfully queued    No attended transfer feature code found /
                                                          Channel specified does not exist
BlindTransfer       single  Transfer succeeded            Channel specified does not exist /
                                                          Transfer invalid (the channel is in no bridge)
PlayDTMF            single  DTMF successfully queued      Channel not found
CoreShowChannels    list    CoreShowChannelsComplete      -
QueueStatus         list    QueueStatusComplete           - (an unknown queue is an empty list)
QueueSummary        list    QueueSummaryComplete          - (an unknown queue is an empty list)
Status              list    StatusComplete                No such channel (Response: Error, no list)
==================  ======  ============================  =============================================
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any, Callable

import pytest

from callcenter.asterisk.ami_client import AMIActionFailed, AMIClient
from callcenter.asterisk.ami_codec import AMIMessage, originate_variable
from callcenter.backoff import Backoff
from tests.real_asterisk import AMI_SECRET
from tests.util import asyncio_test, eventually

pytestmark = pytest.mark.real_asterisk

#: "Promptly": every reply must come well under the client's 10 s action timeout.
PROMPT = 2.0
ACTION_TIMEOUT = 10.0
TEST_MEMBER = "Local/6990@agents/n"   # an interface no shipped queue has


class Events:
    """The daemon's listener, reduced to a list of what arrived."""

    def __init__(self) -> None:
        self.events: list[AMIMessage] = []
        self.snapshots: list[Any] = []

    def ami_snapshot(self, snapshot: Any) -> None:
        self.snapshots.append(snapshot)

    def ami_event(self, event: AMIMessage) -> None:
        self.events.append(event)

    def ami_link_down(self) -> None:
        pass

    def find(self, predicate: Callable[[AMIMessage], bool]) -> AMIMessage | None:
        return next((e for e in self.events if predicate(e)), None)

    async def wait(self, predicate: Callable[[AMIMessage], bool], what: str, timeout: float = 10.0) -> AMIMessage:
        await eventually(lambda: self.find(predicate) is not None, timeout, what)
        return self.find(predicate)


@asynccontextmanager
async def cti_client(pbx, secret: str = AMI_SECRET, ready: bool = True):
    """The daemon's AMI client, logged in as ``cti`` (or trying to), with a recording listener."""
    events = Events()
    client = AMIClient(host="127.0.0.1", port=pbx.asterisk.ports.ami, username="cti", secret=secret,
                       loop=asyncio.get_running_loop(), listener=events, action_timeout=ACTION_TIMEOUT,
                       backoff=Backoff(initial=0.2, cap=1.0))
    client.start()
    try:
        if ready:
            await asyncio.wait_for(client.logged_in.wait(), 15)
        yield client, events
    finally:
        await client.close_and_wait()


async def send(client: AMIClient, name: str, headers: Any = ()) -> Any:
    """The reply (or AMIActionFailed) to one action, which must come well under the action timeout."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        result = await client.action(name, headers)
    except AMIActionFailed as exc:
        result = exc
    except Exception as exc:  # AMIActionTimeout and friends: reported with the time it took
        result = exc
    took = loop.time() - start
    assert took < PROMPT, f"{name} took {took:.1f} s (action timeout {ACTION_TIMEOUT:g} s): {result!r}"
    assert not isinstance(result, Exception) or isinstance(result, AMIActionFailed), repr(result)
    return result


async def ok(client: AMIClient, name: str, headers: Any = (), message: str | None = None) -> AMIMessage:
    reply = await send(client, name, headers)
    assert isinstance(reply, AMIMessage), f"{name}: expected one response, got {reply!r}"
    assert reply.get("Response") == "Success", reply
    if message is not None:
        assert reply.get("Message") == message, reply
    return reply


async def fails(client: AMIClient, name: str, headers: Any, message: str) -> None:
    reply = await send(client, name, headers)
    assert isinstance(reply, AMIActionFailed), f"{name} should have failed: {reply!r}"
    assert reply.message == message
    assert reply.response.get("Response") == "Error"


async def listing(client: AMIClient, name: str, headers: Any = (), complete: str = "") -> list[AMIMessage]:
    """A list action's items; asserts the start response and that the completing event counts them all."""
    reply = await send(client, name, headers)
    assert isinstance(reply, list), f"{name}: expected a list, got {reply!r}"
    start, *items, end = reply
    assert (start.get("Response"), start.get("EventList")) == ("Success", "start"), start
    assert (end.name, end.get("EventList")) == (complete, "Complete"), end
    assert len(items) == int(end["ListItems"]), (len(items), end)
    assert all(m.action_id == start.action_id for m in reply)
    return items


async def originate(client: AMIClient, events: Events, headers: list[tuple[str, str]]) -> tuple[AMIMessage, AMIMessage]:
    """Originate; return its prompt reply and the OriginateResponse event that reports the outcome later."""
    reply = await ok(client, "Originate", headers, "Originate successfully queued")
    outcome = await events.wait(lambda e: e.name == "OriginateResponse" and e.action_id == reply.action_id,
                                f"the OriginateResponse of {reply.action_id}", timeout=20)
    return reply, outcome


async def local_call(client: AMIClient, events: Events, number: str) -> str:
    """An answered Local channel pair parked in cc-wait's music on hold; returns the ``;1`` half (runs Wait)."""
    _, outcome = await originate(client, events, [
        ("Channel", "Local/s@cc-wait"), ("Application", "Wait"), ("Data", "120"),
        ("CallerID", f'"AMI test" <{number}>'), originate_variable("CC_WAIT_SECS", "300")])
    assert (outcome.get("Response"), outcome.get("Reason")) == ("Success", "4"), outcome
    return outcome["Channel"]


def gone(events: Events, channel: str) -> Callable[[], bool]:
    return lambda: events.find(lambda e: e.name == "Hangup" and e.get("Channel") == channel) is not None


# -- log in, ping, status, log off ---------------------------------------------------------------------------

@asyncio_test
async def test_login_ping_corestatus_and_logoff(pbx, caplog):
    """Login answers at once, Ping and CoreStatus are single replies, Logoff says Goodbye (and Asterisk closes)."""
    caplog.set_level(logging.INFO)
    async with cti_client(pbx) as (client, events):
        assert events.snapshots, "the resync snapshot after login"
        pong = await ok(client, "Ping")
        assert pong.get("Ping") == "Pong" and float(pong["Timestamp"]) > 0
        core = await ok(client, "CoreStatus")
        assert core.get("CoreStartupDate") and core.get("CoreStartupTime") and core.get("CoreCurrentCalls") is not None
        bye = await send(client, "Logoff")
        assert (bye.get("Response"), bye.get("Message")) == ("Goodbye", "Thanks for all the fish.")
        await eventually(lambda: "AMI connection lost" in caplog.text, 5, "Asterisk to close the connection")


@asyncio_test
async def test_a_wrong_secret_is_refused_promptly_and_retried(pbx, caplog):
    """Asterisk answers a wrong secret ~1 s late with 'Authentication failed' and closes; the client retries."""
    async with cti_client(pbx, secret="wrong", ready=False) as (client, events):
        await eventually(lambda: caplog.text.count("refused: Authentication failed") >= 2, 8,
                         "two refused logins")
        assert not client.logged_in.is_set() and not events.snapshots


# -- queue members -------------------------------------------------------------------------------------------

@asyncio_test
async def test_queue_member_actions(pbx):
    """QueueAdd / QueuePause / QueuePenalty / QueueLog / QueueRemove: one reply each, at once."""
    async with cti_client(pbx) as (client, events):
        member = [("Queue", "sales"), ("Interface", TEST_MEMBER)]
        try:
            await ok(client, "QueueAdd", member + [("MemberName", "AMI test"), ("Paused", "true")],
                     "Added interface to queue")
            await events.wait(lambda e: e.name == "QueueMemberAdded" and e.get("Interface") == TEST_MEMBER,
                              "QueueMemberAdded")
            await fails(client, "QueueAdd", member, "Unable to add interface: Already there")
            await fails(client, "QueueAdd", [("Queue", "no-such-queue"), ("Interface", TEST_MEMBER)],
                        "Unable to add interface to queue: No such queue")
            await ok(client, "QueuePause", member + [("Paused", "false")], "Interface unpaused successfully")
            await ok(client, "QueuePause", member + [("Paused", "true"), ("Reason", "lunch")],
                     "Interface paused successfully")
            await fails(client, "QueuePause", [("Interface", "Local/6991@agents/n"), ("Paused", "true")],
                        "Interface not found")
            await ok(client, "QueuePenalty", member + [("Penalty", "2")], "Interface penalty set successfully")
            await fails(client, "QueuePenalty", [("Interface", "Local/6991@agents/n"), ("Penalty", "1")],
                        "Invalid interface, queuename or penalty")
            await ok(client, "QueueLog", [("Queue", "sales"), ("Event", "CCTEST"), ("Message", "hello")],
                     "Event added successfully")
            items = await listing(client, "QueueStatus", [("Queue", "sales")], "QueueStatusComplete")
            (mine,) = [m for m in items if m.name == "QueueMember"]
            assert (mine["Location"], mine["Name"], mine["Paused"], mine["PausedReason"], mine["Penalty"]) == \
                (TEST_MEMBER, "AMI test", "1", "lunch", "2")
            await ok(client, "QueueRemove", member, "Removed interface from queue")
            await fails(client, "QueueRemove", member, "Unable to remove interface: Not there")
        finally:
            pbx.asterisk.cli(f"queue remove member {TEST_MEMBER} from sales")


# -- lists ---------------------------------------------------------------------------------------------------

@asyncio_test
async def test_list_actions_return_every_item_up_to_their_completing_event(pbx):
    """CoreShowChannels, Status, QueueStatus, QueueSummary: all items, counted by ListItems; errors at once."""
    async with cti_client(pbx) as (client, events):
        first = await local_call(client, events, "5550101")
        second = await local_call(client, events, "5550102")
        try:
            channels = await listing(client, "CoreShowChannels", (), "CoreShowChannelsComplete")
            names = {m["Channel"] for m in channels}
            assert {first, second, first[:-1] + "2", second[:-1] + "2"} <= names
            assert all(m.name == "CoreShowChannel" for m in channels)
            every = await listing(client, "Status", (), "StatusComplete")
            assert {m["Channel"] for m in every} == names
            (one,) = await listing(client, "Status", [("Channel", first), ("Variables", "CC_WAIT_SECS,CC_NOPE")],
                                   "StatusComplete")
            assert one["Channel"] == first and one.variables() == {"CC_WAIT_SECS": "300", "CC_NOPE": None}
            queues = await listing(client, "QueueStatus", (), "QueueStatusComplete")
            assert {m["Queue"] for m in queues if m.name == "QueueParams"} == \
                {"support", "sales", "vip", "billing", "complaints"}
            assert await listing(client, "QueueStatus", [("Queue", "no-such-queue")], "QueueStatusComplete") == []
            summary = await listing(client, "QueueSummary", (), "QueueSummaryComplete")
            assert {m["Queue"] for m in summary} == {"support", "sales", "vip", "billing", "complaints"}
            assert await listing(client, "QueueSummary", [("Queue", "no-such-queue")], "QueueSummaryComplete") == []
            items = await client.list_action("CoreShowChannels")
            assert {m["Channel"] for m in items} == names
        finally:
            for channel in (first, second):
                await send(client, "Hangup", [("Channel", channel)])


@asyncio_test
async def test_a_list_action_answered_with_an_error_fails_at_once(pbx):
    """Status of a channel that does not exist: 'Response: Error / No such channel', no list follows."""
    async with cti_client(pbx) as (client, _):
        await fails(client, "Status", [("Channel", "PJSIP/nobody-00000001")], "No such channel")
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(AMIActionFailed, match="No such channel"):
            await client.list_action("Status", [("Channel", "PJSIP/nobody-00000001")])
        assert loop.time() - start < PROMPT
        assert (await ok(client, "Ping")).get("Ping") == "Pong"   # nothing left behind on the link


# -- calls ---------------------------------------------------------------------------------------------------

@asyncio_test
async def test_originate_answers_at_once_and_reports_the_outcome_as_an_event(pbx, lab):
    """Originate is 'successfully queued' at once; OriginateResponse reaches the listener, one dial each."""
    lab.phone("6001", "answer")
    lab.phone("6002", "noanswer")
    async with cti_client(pbx) as (client, events):
        reply, outcome = await originate(client, events, [
            ("Channel", "Local/6001@agents/n"), ("Context", "cc-agent-hold"), ("Exten", "s"), ("Priority", "1"),
            ("CallerID", '"Hotline" <4000>'), ("Timeout", "10000")])
        assert (outcome["Response"], outcome["Reason"]) == ("Success", "4")
        assert outcome["Channel"].startswith("Local/6001@agents-") and outcome["Channel"].endswith(";1")
        dialled = [e for e in events.events if e.name == "Newchannel" and e.get("Channel", "").startswith("PJSIP/6001-")]
        assert len(dialled) == 1
        await ok(client, "Hangup", [("Channel", outcome["Channel"])], "Channel Hungup")

        # a phone that rings on: the reply still comes at once, the failure (Reason 3, no answer) later
        reply, outcome = await originate(client, events, [
            ("Channel", "Local/6002@agents/n"), ("Context", "cc-agent-hold"), ("Exten", "s"), ("Priority", "1"),
            ("Timeout", "4000")])
        assert (outcome["Response"], outcome["Reason"]) == ("Failure", "3")
        # a dial string that leads nowhere: Channel is the dial string, Reason 0
        reply, outcome = await originate(client, events, [
            ("Channel", "Local/9999@agents/n"), ("Context", "cc-agent-hold"), ("Exten", "s"), ("Priority", "1")])
        assert (outcome["Response"], outcome["Reason"], outcome["Channel"]) == \
            ("Failure", "0", "Local/9999@agents/n")
        # cti has no 'system' write class: Asterisk refuses System() & co. before queueing anything
        await fails(client, "Originate", [("Channel", "Local/s@cc-wait"), ("Application", "System"),
                                          ("Data", "true")], "Originate Access Forbidden: app or data blacklisted")


@asyncio_test
async def test_channel_actions(pbx):
    """Setvar, Getvar, Redirect, Bridge, Atxfer, BlindTransfer, PlayDTMF, Hangup: one reply each, at once."""
    async with cti_client(pbx) as (client, events):
        first = await local_call(client, events, "5550201")
        second = await local_call(client, events, "5550202")
        try:
            await ok(client, "Setvar", [("Channel", first), ("Variable", "CC_NOTE"), ("Value", "hello, world")],
                     "Variable Set")
            got = await ok(client, "Getvar", [("Channel", first), ("Variable", "CC_NOTE")])
            assert (got["Variable"], got["Value"]) == ("CC_NOTE", "hello, world")
            got = await ok(client, "Getvar", [("Channel", first), ("Variable", "CALLERID(num)")])
            assert got["Value"] == "5550201"
            got = await ok(client, "Getvar", [("Variable", "CTI_FALLBACK_QUEUE")])
            assert got["Value"] == "support"
            await ok(client, "PlayDTMF", [("Channel", first), ("Digit", "5")], "DTMF successfully queued")

            await ok(client, "Bridge", [("Channel1", first), ("Channel2", second)], "Channels have been bridged")
            await eventually(lambda: len([e for e in events.events if e.name == "BridgeEnter"
                                          and e.get("Channel") in (first, second)]) == 2, 5, "both in the bridge")
            # the shipped features.conf has the attended-transfer code Atxfer sends
            await ok(client, "Atxfer", [("Channel", first), ("Exten", "6001"), ("Context", "cc-consult")],
                     "Atxfer successfully queued")

            # a blind transfer by one party sends the other one (first) to the target; second leaves the bridge
            await ok(client, "BlindTransfer", [("Channel", second), ("Context", "cc-agent-hold"), ("Exten", "s")],
                     "Transfer succeeded")
            await events.wait(lambda e: e.name == "Newexten" and e.get("Channel") == first
                              and e.get("Context") == "cc-agent-hold", "the transferred channel in cc-agent-hold")
            await eventually(lambda: events.find(lambda e: e.name == "BridgeLeave" and e.get("Channel") == second)
                             is not None, 5, f"{second} to leave the bridge")
            await fails(client, "BlindTransfer", [("Channel", second), ("Context", "cc-agent-hold"), ("Exten", "s")],
                        "Transfer invalid")   # no longer bridged to anyone

            await ok(client, "Redirect", [("Channel", first), ("Context", "cc-hold"), ("Exten", "s"),
                                          ("Priority", "1")], "Redirect successful")
            await events.wait(lambda e: e.name == "Newexten" and e.get("Channel") == first
                              and e.get("Context") == "cc-hold", "the redirected channel in cc-hold")
            await ok(client, "Hangup", [("Channel", first)], "Channel Hungup")
            await eventually(gone(events, first), 5, f"{first} to hang up")
        finally:
            for channel in (first, second):
                if not gone(events, channel)():
                    await send(client, "Hangup", [("Channel", channel)])


@asyncio_test
async def test_channel_actions_on_a_channel_that_does_not_exist(pbx):
    """Each names the missing channel in its own words, at once."""
    nobody = "PJSIP/nobody-00000001"
    async with cti_client(pbx) as (client, _):
        await fails(client, "Setvar", [("Channel", nobody), ("Variable", "A"), ("Value", "1")], "No such channel")
        await fails(client, "Getvar", [("Channel", nobody), ("Variable", "A")], "No such channel")
        await fails(client, "Hangup", [("Channel", nobody)], "No such channel")
        await fails(client, "Redirect", [("Channel", nobody), ("Context", "cc-hold"), ("Exten", "s"),
                                         ("Priority", "1")], f"Channel does not exist: {nobody}")
        await fails(client, "Bridge", [("Channel1", nobody), ("Channel2", nobody)],
                    f"Channel1 does not exist: {nobody}")
        await fails(client, "Atxfer", [("Channel", nobody), ("Exten", "6001")], "Channel specified does not exist")
        await fails(client, "BlindTransfer", [("Channel", nobody), ("Exten", "6001"), ("Context", "cc-transfer")],
                    "Channel specified does not exist")
        await fails(client, "PlayDTMF", [("Channel", nobody), ("Digit", "1")], "Channel not found")
