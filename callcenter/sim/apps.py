"""The simple dialplan applications of the lab dialplan.

Each app is a generator ``app(engine, chan, data)`` that yields
:class:`~callcenter.sim.tasks.Sleep`/``Wait`` and returns CONTINUE, JUMPED
or HANGUP (pbx.py).  A hangup or Redirect arrives as an exception at a yield;
``try/finally`` blocks emit what Asterisk emits on the way out
(MusicOnHoldStop).  Timings are the recorded ones: Answer() on a channel that
was not up takes 0.5 s before the next priority; SendDTMF waits 100 ms, then
per digit sends DTMFBegin, 100 ms, DTMFEnd (DurationMs 100) and pauses 250 ms.
"""

from __future__ import annotations

from callcenter.sim import events as ev
from callcenter.sim.expressions import is_true
from callcenter.sim.pbx import CONTINUE, HANGUP, JUMPED, Engine
from callcenter.sim.channels import Channel
from callcenter.sim.tasks import Sleep, Wait, instant

ANSWER_DELAY = 0.502  # Answer() to the next priority: 0.501-0.502 s in every recording
DTMF_QUIET, DTMF_DURATION, DTMF_BETWEEN = 0.1, 0.1, 0.25


@instant
def app_noop(engine: Engine, chan: Channel, data: str):
    return CONTINUE


def app_answer(engine: Engine, chan: Channel, data: str):
    if chan.state != 6:
        answer(engine, chan)
        yield Sleep(ANSWER_DELAY)
    return CONTINUE


def answer(engine: Engine, chan: Channel) -> None:
    """Answer ``chan``; answering a Local ``;2`` answers its ``;1`` and tells whoever dialled it."""
    if chan.state == 6:
        return
    engine.set_state(chan, 6)
    if chan.half == 2 and chan.peer is not None:
        answer_partner(engine, chan.peer)
    engine.notify("answer", chan)


def answer_partner(engine: Engine, one: Channel) -> None:
    """A Local ``;1`` goes up with its answered ``;2``, and tells whoever dialled it."""
    if not one.hungup and one.state != 6:
        engine.set_state(one, 6)
        if one.owner is not None:
            one.owner.leg_event("answer", one)


@instant
def app_ringing(engine: Engine, chan: Channel, data: str):
    peer = chan.peer
    if chan.half == 2 and peer is not None and not peer.hungup and peer.state not in (5, 6):
        engine.set_state(peer, 5)
        if peer.owner is not None:
            peer.owner.leg_event("ringing", peer)
    return CONTINUE


def app_busy(engine: Engine, chan: Channel, data: str):
    chan.hangupcause = 17
    engine.set_state(chan, 7)
    peer = chan.peer
    if chan.half == 2 and peer is not None and not peer.hungup and peer.owner is not None:
        peer.owner.leg_event("busy", peer)
    yield Sleep(float(data or 0) or 3600)
    return HANGUP


def app_wait(engine: Engine, chan: Channel, data: str):
    yield Sleep(float(data or 0))
    return CONTINUE


@instant
def app_hangup(engine: Engine, chan: Channel, data: str):
    if not chan.hangupcause:
        chan.hangupcause = int(data) if data.isdigit() else 16
    return HANGUP


@instant
def app_goto(engine: Engine, chan: Channel, data: str):
    goto_target(engine, chan, data)
    return JUMPED


def goto_target(engine: Engine, chan: Channel, target: str) -> None:
    """``[[context,]exten,]priority-or-label``."""
    parts = [part.strip() for part in target.split(",")]
    context, exten = chan.context, chan.exten
    if len(parts) == 3:
        context, exten, where = parts
    elif len(parts) == 2:
        exten, where = parts
    else:
        where = parts[0]
    priority = int(where) if where.isdigit() else engine.label(chan, context, exten, where)
    if priority is None:
        raise ValueError(f"no label {where!r} in {context},{exten}")
    engine.goto(chan, context, exten, priority)


@instant
def app_gotoif(engine: Engine, chan: Channel, data: str):
    condition, _, branches = data.partition("?")
    when_true, _, when_false = branches.partition(":")
    target = when_true if is_true(condition) else when_false
    if not target:
        return CONTINUE
    goto_target(engine, chan, target)
    return JUMPED


def app_execif(engine: Engine, chan: Channel, data: str):
    condition, _, call = data.partition("?")
    if not is_true(condition):
        return CONTINUE
    name, _, rest = call.partition("(")
    result = yield from engine.apps[name](engine, chan, rest[:-1] if rest.endswith(")") else rest)
    return HANGUP if result == HANGUP else CONTINUE


def app_senddtmf(engine: Engine, chan: Channel, data: str):
    digits = data.split(",")[0]
    yield Sleep(DTMF_QUIET)
    for digit in digits:
        target = chan.peer if chan.peer is not None else chan
        if target.hungup:
            break
        engine.emit(ev.dtmf_begin(target, digit))
        yield Sleep(DTMF_DURATION)
        if target.hungup:
            break
        engine.emit(ev.dtmf_end(target, digit, int(DTMF_DURATION * 1000)))
        engine.deliver_dtmf(target, digit)
        yield Sleep(DTMF_BETWEEN)
    return CONTINUE


def app_musiconhold(engine: Engine, chan: Channel, data: str):
    moh_class, _, duration = data.partition(",")
    engine.emit(ev.moh_start(chan, moh_class or "default"))
    try:
        yield Sleep(float(duration)) if duration else Wait()
    finally:
        engine.emit(ev.moh_stop(chan))
    return CONTINUE


def app_playback(engine: Engine, chan: Channel, data: str):
    """Playback(file[&file...][,options]): each file that exists plays its length; PLAYBACKSTATUS."""
    failed = False
    for name in data.split(",")[0].split("&"):
        sounds = engine.sounds
        if sounds is None or not sounds.exists(name):
            failed = True
            continue
        yield Sleep(sounds.duration(name))
    engine.set_var(chan, "PLAYBACKSTATUS", "FAILED" if failed else "SUCCESS")
    return CONTINUE


#: How long a simulated caller talks to the mailbox before hanging up by itself.
VOICEMAIL_MESSAGE_SECS = 30.0


def app_voicemail(engine: Engine, chan: Channel, data: str):
    """VoiceMail(mailbox[,options]): the greeting and beep, then a message until the caller
    hangs up (or VOICEMAIL_MESSAGE_SECS); VMSTATUS."""
    sounds = engine.sounds
    greeting = sum(sounds.duration(name) for name in ("vm-intro", "beep")) if sounds is not None else 1.0
    yield Sleep(greeting)
    yield Sleep(VOICEMAIL_MESSAGE_SECS)
    engine.set_var(chan, "VMSTATUS", "SUCCESS")
    return CONTINUE


@instant
def app_set(engine: Engine, chan: Channel, data: str):
    name, _, value = data.partition("=")
    engine.set_var(chan, name.strip(), value)
    return CONTINUE


def install(engine: Engine) -> None:
    engine.apps.update({
        "NoOp": app_noop, "Answer": app_answer, "Ringing": app_ringing, "Busy": app_busy,
        "Wait": app_wait, "Hangup": app_hangup, "Goto": app_goto, "GotoIf": app_gotoif,
        "ExecIf": app_execif, "SendDTMF": app_senddtmf, "MusicOnHold": app_musiconhold, "Set": app_set,
        "Playback": app_playback, "VoiceMail": app_voicemail,
    })
