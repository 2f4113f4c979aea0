"""Dial(): one Local interface (or a simulated PJSIP phone, pjsip.py), a ring timeout, a basic bridge once answered.

Recorded outcomes (more/README.txt "Dial / DialEnd statuses seen"):

* ANSWER: DialEnd ANSWER, BridgeCreate, Newexten ;1 (Exten now empty),
  BridgeEnter agent leg then caller, BRIDGEPEER both ways.  When the agent
  hangs up the caller's Dial returns -1 (no ``g`` option): the caller is
  hung up.  ANSWEREDTIME and DIALEDTIME count from the caller channel's
  creation (that is what Asterisk 22.10.1 reported).
* NOANSWER after the timeout, BUSY, CANCEL (caller hung up, legs get Cause
  16; or Redirect of the caller while ringing), CHANUNAVAIL (no such
  extension: no DialBegin and no DialEnd at all).
* Redirect of the bridged caller (blind transfer): the agent leg is hung up
  (BridgeLeave, HangupRequest/Hangup Cause 16) by the bridge's thread, the
  caller's next Newexten carries the old application.  Likewise when the
  caller hangs up (AMI Hangup): it leaves the bridge and ends its dialplan,
  the agent leg goes after it (ami_actions.event_stream_during.txt).
* Dual Redirect (hold: ExtraChannel = the agent leg, more/ami_hold_extrachannel_bridge.txt
  and tests/test_real_asterisk_hold.py): nobody hangs up.  Both first
  Newexten at the targets carry the old applications (Dial / AppDial), the
  caller leaves (DIALSTATUS stays ANSWER, no DialEnd), then the agent leg
  leaves and runs its own dialplan at its target.
* Options ``t``/``T``: the callee/the caller may transfer by DTMF (AMI
  Atxfer, atxfer.py).  An attended transfer can replace the callee in the
  bridge by the transfer target: the bridge's members, not the channel Dial
  rang, are who the caller talks to.
* A caller that is not up yet (an attended transfer's Local ``;2``) hears
  the ringing (its ``;1`` goes Ringing) and is answered by Dial when the
  callee answers (``;2`` Up at once, its ``;1`` when that thread reads it;
  more/ami_atxfer.txt).
"""

from __future__ import annotations

from callcenter.sim import events as ev
from callcenter.sim import pjsip
from callcenter.sim.apps import answer_partner
from callcenter.sim.channels import Channel
from callcenter.sim.outgoing import Outgoing, dial_leg, dialstring
from callcenter.sim.pbx import CONTINUE, HANGUP, Engine
from callcenter.sim.tasks import HangupSignal, RedirectSignal

DIAL_VARS = ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME", "ANSWEREDTIME", "ANSWEREDTIME_MS",
             "DIALEDTIME", "DIALEDTIME_MS", "RINGTIME", "RINGTIME_MS", "PROGRESSTIME", "PROGRESSTIME_MS")


def _set_since(engine: Engine, chan: Channel, name: str, since: float) -> None:
    elapsed = max(0.0, engine.now() - since)
    engine.set_var(chan, name, str(int(elapsed)))
    engine.set_var(chan, name + "_MS", str(int(elapsed * 1000)))


def app_dial(engine: Engine, chan: Channel, data: str):
    args = data.split(",")
    target = args[0].strip()
    timeout = float(args[1]) if len(args) > 1 and args[1].strip() else None
    options = args[2] if len(args) > 2 else ""
    for name in DIAL_VARS:
        engine.set_var(chan, name, "")
    if not target.startswith(("Local/", "PJSIP/")):
        engine.set_var(chan, "DIALSTATUS", "CHANUNAVAIL")
        return CONTINUE
    started = engine.now()
    dial = Outgoing(engine, chan.task)
    leg = (dial_leg if target.startswith("Local/") else pjsip.dial_phone)(engine, chan, target, dial)
    if leg is None:
        engine.set_var(chan, "DIALSTATUS", "CHANUNAVAIL")
        return CONTINUE
    deadline = None if timeout is None else started + timeout
    try:
        status = yield from _ring(engine, chan, dial, leg, deadline, started)
    except HangupSignal:
        _cancel(engine, chan, leg, chan.hangupcause or 16)
        raise
    except RedirectSignal:
        _cancel(engine, chan, leg, 16)
        raise
    if status != "ANSWER":
        engine.emit(ev.dial_end(chan, leg, status))
        engine.hangup(leg, 0)
        engine.set_var(chan, "DIALSTATUS", status)
        return CONTINUE
    engine.set_var(chan, "DIALSTATUS", "ANSWER")
    engine.set_var(chan, "DIALEDPEERNAME", leg.name)
    engine.set_var(chan, "DIALEDPEERNUMBER", dialstring(target))
    engine.emit(ev.dial_end(chan, leg, "ANSWER"))
    _answer_caller(engine, chan)
    leg.may_transfer, chan.may_transfer = "t" in options, "T" in options
    return (yield from _talk(engine, chan, dial, leg))


def _ringing_to_caller(engine: Engine, chan: Channel) -> Channel | None:
    """A caller not up yet hears the ringing: a Local ``;2``'s ``;1`` goes Ringing (returned: its owner
    is told after RINGTIME, more/ami_atxfer.txt)."""
    peer = chan.peer
    if chan.state != 6 and chan.half == 2 and peer is not None and not peer.hungup and peer.state not in (5, 6):
        engine.set_state(peer, 5)
        return peer
    return None


def _answer_caller(engine: Engine, chan: Channel) -> None:
    """Dial answers a caller that was not up: at once, and a Local ``;2``'s ``;1`` when its thread reads it."""
    if chan.state == 6:
        return
    engine.set_state(chan, 6)
    peer = chan.peer
    if chan.half == 2 and peer is not None:
        engine.scheduler.soon(answer_partner, engine, peer)


def _ring(engine: Engine, chan: Channel, dial: Outgoing, leg: Channel, deadline: float | None, started: float):
    while True:
        item = yield from dial.next_event(deadline)
        if item is None:
            return "NOANSWER"
        kind, _ = item
        if kind == "ringing":
            caller_half = _ringing_to_caller(engine, chan)
            _set_since(engine, chan, "RINGTIME", started)
            if caller_half is not None and caller_half.owner is not None:
                caller_half.owner.leg_event("ringing", caller_half)
            engine.emit(ev.dial_state(chan, leg, "RINGING"))
        elif kind == "answer":
            return "ANSWER"
        elif kind == "busy":
            return "BUSY"
        elif kind == "hangup":
            return "CHANUNAVAIL"


def _cancel(engine: Engine, chan: Channel, leg: Channel, cause: int) -> None:
    engine.emit(ev.dial_end(chan, leg, "CANCEL"))
    engine.hangup(leg, cause)
    engine.set_var(chan, "DIALSTATUS", "CANCEL")


def _talk(engine: Engine, chan: Channel, dial: Outgoing, leg: Channel):
    bridge = engine.bridge_create_only()
    leg.exten = ""
    engine.newexten(leg)
    engine.enter(bridge, leg)
    engine.enter(bridge, chan)
    engine.set_var(leg, "BRIDGEPEER", chan.name)
    engine.set_var(chan, "BRIDGEPEER", leg.name)
    try:
        while True:
            item = yield from dial.next_event(None)
            if item is not None and item[0] in ("hangup", "redirect") and item[1].bridge is bridge:
                break
    except HangupSignal:  # the caller hung up: it leaves first, the bridge then lets the others go
        others = _others(bridge, chan)
        engine.set_var(chan, "BRIDGEPEER", "")
        for other in others:
            engine.set_var(other, "BRIDGEPEER", "")
        engine.leave(chan)
        _end_times(engine, chan)
        engine.scheduler.soon(_dissolve, engine, others, bridge)
        raise
    except RedirectSignal as redirect:
        others = _others(bridge, chan)
        engine.set_var(chan, "BRIDGEPEER", "")
        engine.early_goto(chan, redirect.target)
        for other in others:
            engine.set_var(other, "BRIDGEPEER", "")
        engine.leave(chan)
        engine.set_var(chan, "DIALSTATUS", "ANSWER")
        engine.scheduler.soon(_release, engine, others, bridge)
        raise
    kind, leg = item
    for member in [leg] + _others(bridge, leg):   # the one leaving first
        engine.set_var(member, "BRIDGEPEER", "")
    engine.publish_callerid(chan)
    if kind == "redirect":   # the agent leg alone was redirected: it goes on, the caller's Dial ends
        engine.release_leg(leg)
    else:
        _drop_leg(engine, leg, 16)
    engine.leave(chan)
    engine.emit(ev.bridge_destroy(bridge))
    _end_times(engine, chan)
    if not chan.hangupcause:  # Dial returns -1: the caller goes down with its peer's cause
        chan.hangupcause = leg.hangupcause or 16
    return HANGUP


def _others(bridge, chan: Channel) -> list[Channel]:
    """Who ``chan`` talks to in its Dial bridge (the callee, or whoever a transfer put there)."""
    return [other for other in bridge.channels if other is not chan]


def _drop_leg(engine: Engine, leg: Channel, cause: int) -> None:
    engine.leave(leg)
    engine.hangup(leg, cause)


def _dissolve(engine: Engine, legs: list[Channel], bridge) -> None:
    """The bridge's thread: the legs left alone are pushed out and hung up."""
    legs = [leg for leg in legs if leg.bridge is bridge]
    for leg in legs:
        engine.leave(leg)
    engine.emit(ev.bridge_destroy(bridge))
    for leg in legs:
        engine.hangup(leg, 16)


def _release(engine: Engine, legs: list[Channel], bridge) -> None:
    """The bridge thread lets the legs the caller left behind go: to their Redirect target, else hung up."""
    for leg in legs:
        if leg.bridge is bridge:
            engine.release_leg(leg)
    engine.emit(ev.bridge_destroy(bridge))


def _end_times(engine: Engine, chan: Channel) -> None:
    _set_since(engine, chan, "ANSWEREDTIME", chan.created)
    _set_since(engine, chan, "DIALEDTIME", chan.created)
    engine.set_var(chan, "DIALSTATUS", "ANSWER")


def install(engine: Engine) -> None:
    engine.apps["Dial"] = app_dial
