"""The basic bridge AMI Bridge makes of two channels that run their own dialplan.

Asterisk stops the apps both run (MusicOnHoldStop), puts them in a new
basic bridge and, when one party hangs up or is redirected, the other
leaves too and goes on at the priority after the one it was in
(more/README.txt).  Only channels running their own dialplan are
simulated, not ones in Dial's or Queue's bridge (that is reported in the
scheduler's errors).

The channels keep the feature flags their Dial gave them (Asterisk keeps
them on the channel, and the basic bridge applies them), so a ``Dial(...,t)``
callee put on hold and taken back by the daemon can still make an attended
transfer there (atxfer.py; tests/test_real_asterisk_actions.py::
test_an_attended_transfer_after_a_hold_from_the_desktop, Asterisk 22.10.1).
While the transferer consults, the transfer owns it (:func:`detach`); the
caller stays in this bridge, hearing music.  A cancelled transfer brings the
transferer back (:func:`rejoin`); a completed one merges the target's
``;1`` into this bridge (:func:`adopt`) and hangs up the transferer (only
its ``Hangup``: it does not go on in its dialplan); the caller talks to the
target.  That ``;1`` has no dialplan of its own: when the bridge lets it go
it is hung up (the caller hanging up: BridgeLeave of both, BridgeDestroy,
then the ``;1``'s Hangup, as recorded).
"""

from __future__ import annotations

from callcenter.sim import events as ev
from callcenter.sim.tasks import HangupSignal, RedirectSignal, Task, Wait


def bridge(engine, first, second) -> None:
    """BridgeCreate, the running apps stop (MusicOnHoldStop), BridgeEnter x2, BRIDGEPEER both ways.

    (The real one sometimes sends no MusicOnHoldStop at all: the yanked channel
    is a new one; tests/test_real_asterisk_hold.py.  The simulator always does.)
    """
    for chan in (first, second):
        if chan.hungup or chan.bridge is not None or chan.task is None or chan.task.done:
            engine.scheduler.errors.append(f"AMI Bridge of {chan.name}: the sim only bridges channels that run "
                                           "their own dialplan")
            return
    made = engine.bridge_create_only()
    made.ami = True
    for chan in (first, second):
        chan.task.cancel()   # the app stops where it is (MusicOnHold's own end sends MusicOnHoldStop)
    for chan in (first, second):
        engine.enter(made, chan)
    engine.set_var(first, "BRIDGEPEER", second.name)
    engine.set_var(second, "BRIDGEPEER", first.name)
    for chan, other in ((first, second), (second, first)):
        _exchange_connected_line(engine, chan, other)
    for chan in (first, second):
        rejoin(engine, chan, made)


def _exchange_connected_line(engine, chan, other) -> None:
    """The bridge tells ``chan`` who it talks to (NewConnectedLine when that changed).

    On a Local ``;2`` the update reaches its ``;1`` as a caller id, published
    only when ``;1`` goes (NewCallerid after its Hangup, more/ami_hold_extrachannel_bridge.txt).
    """
    if (chan.conn_num, chan.conn_name) == (other.cid_num, other.cid_name):
        return
    engine.set_connected(chan, other.cid_num, other.cid_name)
    peer = chan.peer
    if chan.half == 2 and peer is not None and not peer.hungup:
        peer.cid_num, peer.cid_name = other.cid_num, other.cid_name
        peer.callerid_on_hangup = True


def rejoin(engine, chan, made) -> None:
    """``chan`` (in ``made``) waits there with its dialplan to go on at the next priority."""
    chan.task = Task(engine.scheduler, _bridged(engine, chan, made, False), chan.name)
    chan.task.start()


def adopt(engine, chan, made) -> None:
    """``chan`` (a transfer target's ``;1``, in ``made``) stays until the bridge lets it go, then is hung up."""
    chan.owner = None
    chan.task = Task(engine.scheduler, _bridged(engine, chan, made, True), chan.name)
    chan.task.start()


def detach(chan) -> None:
    """An attended transfer takes ``chan`` over: its hangup or redirect goes to the transfer (its owner)."""
    if chan.task is not None and not chan.task.done:
        chan.task.cancel()


def _bridged(engine, chan, made, imparted: bool):
    """A channel in an AMI bridge: it waits there until it, or the other party, goes."""
    target = None
    try:
        yield Wait()
    except HangupSignal:
        _leave(engine, chan, made)
        if imparted or (chan.peer is not None and chan.peer.hungup):
            engine.hangup(chan)          # its Local half hung up: no SoftHangupRequest of its own
        else:
            engine.end_dialplan(chan)
        return
    except RedirectSignal as redirect:
        target = redirect.target
    _leave(engine, chan, made)
    if target is not None:
        engine.goto(chan, *target)
    elif imparted:
        engine.hangup(chan, 16)
        return
    else:
        chan.priority += 1
    engine.run_dialplan(chan)


def _leave(engine, chan, made) -> None:
    others = [c for c in made.channels if c is not chan]
    for member in [chan] + others:
        if member.get_var("BRIDGEPEER"):
            engine.set_var(member, "BRIDGEPEER", "")
    engine.leave(chan)
    for other in others:
        if other.task is not None and not other.task.done:
            engine.scheduler.soon(other.task.wake)
    if not made.channels:
        engine.emit(ev.bridge_destroy(made))
