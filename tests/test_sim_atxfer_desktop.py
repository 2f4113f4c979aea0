"""An attended transfer asked from an agent's desktop, the daemon routing a simulator call through its ACD:
the fast twin of tests/test_real_asterisk_actions.py::test_an_attended_transfer_from_the_desktop.

The simulator runs the shipped dialplan contract and features.conf (atxfer ``*2``); its agent phones are
``Local/<exten>@sim-agents/n``, or their PJSIP endpoints as in the real lab.
"""

from __future__ import annotations

import pytest
import pytest_twisted

from callcenter.aio import as_deferred
from callcenter.sim import SHIPPED_FEATUREMAP
from crm_core.acd_config import thd_change_agent
from tests.test_acd_sim import contact, ready_lab, sleep, until
from tests.test_acd_sim import lab as sim_lab  # noqa: F401
from tests.test_desktop_feed import asked, desk


@pytest.fixture
def lab(sim_lab):  # noqa: F811
    sim, _, _ = sim_lab
    sim.featuremap.update(SHIPPED_FEATUREMAP)
    return sim_lab


def _events(sim, name, **where):
    return [m for _, m in sim.events if m.name == name
            and all((m.get(k) or "").startswith(v) for k, v in where.items())]


async def given_pjsip_phones(root, agents=("6001", "6002")):
    """The agents' interfaces are their PJSIP endpoints in the CRM (as in the real lab), and the ACD has them."""
    def put(engine):
        for agent in agents:
            thd_change_agent(engine, agent, interface=f"PJSIP/{agent}")

    await root.crm.pool.run(put, root.crm.engine)
    await until(lambda: {p.agent for p in root.acd.distributor.setup.agents
                         if p.interface == f"PJSIP/{p.agent}"} >= set(agents), 10, "the ACD to load the interfaces")


async def given_6001_on_a_call(lab, phones, ani, target_talk):
    """6001 logged in from the desktop and connected to a caller of ``ani``; 6002 answers when rung."""
    sim, root = await ready_lab(lab)
    if phones == "pjsip":
        await given_pjsip_phones(root)
    sim.agent("6001", ring=0.3, talk=120)
    sim.agent("6002", ring=0.5, talk=target_talk)
    me = await desk(root, "6001")
    assert (await asked(me, "login", ready=True))["ok"]
    call = sim.call(ani, "Attended Caller", dnis="4060")
    await until(lambda: any(f.get("state") == "connected" for f in me.of("call")), 10, "the call to connect")
    return sim, root, me, call


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("phones", ["local", "pjsip"])
async def test_an_attended_transfer_from_the_desktop(lab, phones):
    """transfer kind attended to 6002: Atxfer on 6001's leg; the caller hears music while 6001 consults 6002
    (cc-consult dials CC_CONSULT_TO, 6002 answers); 6001 hangs up from the desktop, which completes the
    transfer: AttendedTransfer succeeds, the caller talks to 6002, the desktop gets ``held`` then
    ``transferred``, and the contact record lists an attended transfer to 6002.  With the agents on
    PJSIP phones only the first digit after the feature code reaches the transfer, as on Asterisk 22:
    the daemon's one digit is enough, and AttendedTransfer names no target."""
    sim, root, me, call = await given_6001_on_a_call(lab, phones, "5551020", target_talk=4)
    answer = await asked(me, "transfer", target="6002", kind="attended")
    assert answer["ok"] and answer["call_id"] == call.linkedid, answer
    await until(lambda: any(f.get("state") == "held" for f in me.of("call")), 5, "held")
    assert _events(sim, "MusicOnHoldStart", Channel=call.line.name)
    await until(lambda: _events(sim, "DialEnd", DialStatus="ANSWER", DestChannel="Local/6002@sim-agents-"), 5,
                "6002 to answer the consultation")
    (consult,) = _events(sim, "DialEnd", DialStatus="ANSWER", DestChannel="Local/6002@sim-agents-")
    assert consult.get("Channel").startswith("Local/0@cc-consult-")       # cc-consult dials CC_CONSULT_TO
    assert (await asked(me, "hangup"))["ok"]
    await until(lambda: any(f.get("state") == "transferred" for f in me.of("call")), 5, "transferred")
    (done,) = _events(sim, "AttendedTransfer")
    assert done.get("Result") == "Success" and done.get("TransfereeChannel") == call.line.name
    transferer = done.get("OrigTransfererChannel")
    assert transferer.startswith("PJSIP/6001-" if phones == "pjsip" else "Local/6001@sim-agents-")
    assert (done.get("TransferTargetChannel") is None) is (phones == "pjsip")
    states = [f["state"] for f in me.of("call") if f["call_id"] == call.linkedid]
    assert states == ["connected", "held", "consulting", "resumed", "transferred"]   # music stops as bridges merge
    assert [f.get("to") for f in me.of("call") if f["state"] == "transferred"] == ["Local/6002@sim-agents/n"]
    await until(lambda: call.hungup, 10, "6002 to end the call")
    await until(lambda: root.acd.distributor.agent("6001").state.value != "on-call", 5, "6001 off the call")

    for _ in range(100):        # the contact record is written through the CRM's thread pool
        record = await contact(root, call.linkedid)
        if record is not None and record.transfers and record.agent is not None:
            break
        await sleep(0.05)
    assert [(t.kind, t.to) for t in record.transfers or ()] == [("attended", "6002")], record
    assert record.agent in ("6001", "6002")
    assert sim.errors == []
    await as_deferred(me.close())


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("phones", ["local", "pjsip"])
async def test_an_attended_transfer_cancelled_from_the_desktop(lab, phones):
    """cancel_transfer while 6001 consults 6002: refused before the transfer (nothing to cancel), then
    CancelAtxfer on 6001's leg; the consultation is hung up, 6001 has the caller again; the desktop gets
    ``consulting`` then ``transfer-cancelled`` and ``resumed``; the call stays 6001's, with no transfer."""
    sim, root, me, call = await given_6001_on_a_call(lab, phones, "5551021", target_talk=120)
    refused = await asked(me, "cancel_transfer")
    assert not refused["ok"] and refused["error"] == "no attended transfer in progress on the call"
    assert (await asked(me, "transfer", target="6002", kind="attended"))["ok"]
    await until(lambda: _events(sim, "DialEnd", DialStatus="ANSWER", DestChannel="Local/6002@sim-agents-"), 5,
                "6002 to answer the consultation")
    await until(lambda: any(f.get("state") == "consulting" for f in me.of("call")), 5, "consulting")
    answer = await asked(me, "cancel_transfer")
    assert answer["ok"] and answer["call_id"] == call.linkedid, answer
    await until(lambda: any(f.get("state") == "resumed" for f in me.of("call")), 5, "resumed")
    states = [f["state"] for f in me.of("call") if f["call_id"] == call.linkedid]
    assert states == ["connected", "held", "consulting", "transfer-cancelled", "resumed"]
    assert not _events(sim, "AttendedTransfer")
    assert not [c for c in sim.engine.channels if "cc-consult" in c or "6002" in c]
    leg = next(c for c in sim.engine.channels.values() if c.name.startswith(
        "PJSIP/6001-" if phones == "pjsip" else "Local/6001@sim-agents-") and c.half in (0, 1, None))
    assert leg.bridge is call.line.bridge and root.acd.distributor.agent("6001").state.value == "on-call"
    again = await asked(me, "cancel_transfer")
    assert not again["ok"] and "no attended transfer" in again["error"]
    sim.engine.hangup(call.line, 16)
    await until(lambda: root.acd.distributor.agent("6001").state.value != "on-call", 5, "6001 off the call")
    for _ in range(100):        # the contact record is written through the CRM's thread pool
        record = await contact(root, call.linkedid)
        if record is not None and record.ended_at is not None:
            break
        await sleep(0.05)
    assert record.agent == "6001" and not record.transfers and record.hold_seconds, record
    assert sim.errors == []
    await as_deferred(me.close())


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("phones", ["local", "pjsip"])
async def test_an_attended_transfer_after_a_hold_from_the_desktop(lab, phones):
    """hold, unhold, then an attended transfer to 6002, cancelled, and another one completed: the agent leg
    keeps its transfer feature in the bridge the AMI Bridge made, so the Atxfer consults 6002, the cancel
    brings 6001 back into that bridge, and 6001's hangup during the second consultation merges 6002 into it:
    AttendedTransfer's OrigBridgeUniqueid is that bridge, the caller talks to 6002, the record lists one
    attended transfer and the hold time (tests/test_real_asterisk_actions.py, the same on Asterisk 22)."""
    sim, root, me, call = await given_6001_on_a_call(lab, phones, "5551022", target_talk=120)
    since = len(me.of("call"))
    assert (await asked(me, "hold"))["ok"]
    await until(lambda: any(f.get("state") == "held" for f in me.of("call")[since:]), 5, "held")
    assert (await asked(me, "unhold"))["ok"]
    await until(lambda: any(f.get("state") == "resumed" for f in me.of("call")[since:]), 5, "resumed")
    rejoined = call.line.bridge
    assert rejoined is not None and rejoined.ami
    assert (await asked(me, "transfer", target="6002", kind="attended"))["ok"]
    await until(lambda: len(_answered(sim)) == 1, 5, "6002 to answer the consultation")
    await until(lambda: any(f.get("state") == "consulting" for f in me.of("call")[since:]), 5, "consulting")
    assert (await asked(me, "cancel_transfer"))["ok"]
    await until(lambda: [f["state"] for f in me.of("call")[since:]][-1:] == ["resumed"]
                and len(me.of("call")) - since >= 6, 5, "resumed again")
    states = [f["state"] for f in me.of("call")[since:] if f["call_id"] == call.linkedid]
    assert states == ["held", "resumed", "held", "consulting", "transfer-cancelled", "resumed"], states
    assert not [c for c in sim.engine.channels if "cc-consult" in c or "6002" in c]
    assert call.line.bridge is rejoined and len(rejoined.channels) == 2
    mark = len(me.of("call"))
    assert (await asked(me, "transfer", target="6002", kind="attended"))["ok"]
    await until(lambda: len(_answered(sim)) == 2, 5, "6002 to answer the second consultation")
    await until(lambda: any(f.get("state") == "consulting" for f in me.of("call")[mark:]), 5, "consulting again")
    assert (await asked(me, "hangup"))["ok"]
    await until(lambda: any(f.get("state") == "transferred" for f in me.of("call")[mark:]), 5, "transferred")
    (done,) = _events(sim, "AttendedTransfer")
    assert done.get("Result") == "Success" and done.get("OrigBridgeUniqueid") == rejoined.uniqueid
    assert [f["state"] for f in me.of("call")[mark:]][:1] == ["held"]
    assert "transferred" in [f["state"] for f in me.of("call")[mark:]]
    assert call.line.bridge is rejoined                               # the caller talks to 6002 in that bridge
    (target,) = [c for c in rejoined.channels if c is not call.line]
    assert target.name.startswith("Local/0@cc-consult-")
    assert not [c for c in sim.engine.channels if c.startswith(("PJSIP/6001-", "Local/6001@"))]
    assert [c for c in sim.engine.channels if c.startswith(("PJSIP/6002-", "Local/6002@"))]
    sim.engine.hangup(call.line, 16)
    await until(lambda: root.acd.distributor.agent("6001").state.value != "on-call", 5, "6001 off the call")
    for _ in range(100):        # the contact record is written through the CRM's thread pool
        record = await contact(root, call.linkedid)
        if record is not None and record.ended_at is not None and record.transfers:
            break
        await sleep(0.05)
    assert [(t.kind, t.to) for t in record.transfers or ()] == [("attended", "6002")], record
    assert record.hold_seconds, record
    assert sim.errors == []
    await as_deferred(me.close())


def _answered(sim):
    return _events(sim, "DialEnd", DialStatus="ANSWER", DestChannel="Local/6002@sim-agents-")
