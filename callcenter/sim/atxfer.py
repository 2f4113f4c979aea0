"""AMI Atxfer and the attended transfer it starts, as Asterisk 22 does them (features.c, bridge_basic.c).

Atxfer queues the ``atxfer`` code of features.conf [featuremap] (the
engine's ``featuremap``, or the channel's own ``FEATUREMAP(atxfer)``) and
then the Exten digits as DTMF on the channel, after ``VarSet
TRANSFER_CONTEXT`` when the action has a Context.  What the digits do
depends on the bridge the channel is in (more/README.txt "Attended transfer"):

* the channel may not transfer (its Dial had no ``t``): they pass through,
  nothing is transferred (more/ami_atxfer_no_t_option.txt).  Per digit,
  160 ms apart: DTMFEnd ``DurationMs: 0`` on the channel, DTMFBegin
  ``Sent`` on the bridged party and ``Received`` on its Local partner, and
  their DTMFEnd (100 ms) 100 ms later;
* it may (``Dial(...,t)``, in its caller's Dial bridge or, after a hold,
  in the one AMI Bridge made: ami_bridge.py): the feature runs (more/ami_atxfer.txt).  The
  code's digits (DTMFEnd, 160 ms apart), 100 ms later ``Hold`` on the
  transferer and MusicOnHoldStart on the parties it leaves; the extension's
  digits from 161 ms after the code, 60 ms apart, collected until no longer
  extension of the transfer context could match (ast_app_dtget), else
  until the digit timeout (3 s).  Only a Local transferer gets them all:
  on another channel (a PJSIP phone) only the first digit after the code
  arrives (tests/test_real_asterisk_actions.py), so ``6002`` becomes
  ``6``, which does not exist: after three attempts (features.conf
  transferdialattempts, each waiting the digit timeout) ``Unhold`` and
  MusicOnHoldStop, nothing transferred.  The lost digits have no DTMFEnd.

A valid extension starts the consultation (:class:`AttendedTransfer`): a
``Local/<exten>@<context>`` pair with the transferer's Linkedid and
inherited variables (TRANSFERERNAME, ATTENDEDTRANSFER), ``;1`` in a new
bridge, ``;2`` running the dialplan; the transferer then moves to that
bridge.  Its outcome, as bridge_basic.c's state machine decides it
(:data:`MOVES`, each transition logged):

* the transferer goes (hangs up, or is redirected) while consulting:
  complete.  BridgeMerge (the consultation bridge INTO the caller's),
  MusicOnHoldStop, ``AttendedTransfer`` Result Success / DestType Bridge,
  then the transferer's Hangup; no Unhold.  TransferTarget* is left out
  for a transferer that is not a Local channel, as Asterisk 22 did with a
  PJSIP one.  The caller's Dial goes on with the target as its callee;
* the transferer goes while the target still rings: blond, the same
  merge (the caller hears the target ring);
* the target hangs up, or does not answer within atxfernoanswertimeout
  (15 s, the shipped features.conf), or the transferer aborts (AMI
  CancelAtxfer, :func:`queue_abort`): rebridge.  The transferer goes back
  to the caller's bridge, MusicOnHoldStop on the caller, the two
  BRIDGEPEERs, ``Unhold`` on the transferer, then the consultation bridge
  is destroyed and a target still in it hung up; no AttendedTransfer
  (tests/test_real_asterisk_actions.py, an abort while the target rang and
  one while consulting, both recorded on Asterisk 22.10.1);
* the caller hangs up while the target rings: ``AttendedTransfer``
  Result Fail, the consultation bridge is destroyed (both hung up); while
  consulting: no event, the consultation carries on as an ordinary call.

AMI CancelAtxfer queues the ``atxferabort`` code (features.conf [general],
:data:`ATXFER_ABORT`) on the channel, answering "CancelAtxfer
successfully queued" whether or not a transfer runs.  A transferer in its
consultation bridge reads it (DTMFEnd per digit) and aborts; on a channel of
a bridge with the transfer feature and no transfer running, the digits are
read and dropped (two DTMFEnd, nothing else, as recorded); elsewhere they
pass through like Atxfer's.

Not simulated (not needed by the daemon, not recorded): an abort while the
extension is being collected, the complete, three-way and swap DTMF codes, the recall of the transferer after a blond
transfer nobody answers (atxferdropcall=no: the sim drops the caller when
the target's Dial gives up), Dial option ``T`` (the caller transferring),
an Atxfer in a Queue() bridge (its digits pass through), MusicOnHoldStop
for a caller hung up while on hold, and the prompts' exact lengths.
The events the call tracker reads (Hold, MusicOnHoldStart/Stop, the
consultation's DialBegin/DialEnd, BridgeEnter, AttendedTransfer, Hangup)
come in the recorded order.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING

from callcenter.sim import ami_bridge
from callcenter.sim import events as ev
from callcenter.sim.outgoing import inherit
from callcenter.sim.tasks import Sleep, Task

if TYPE_CHECKING:
    from callcenter.sim.channels import Bridge, Channel
    from callcenter.sim.pbx import Engine

logger = logging.getLogger(__name__)

#: asterisk_conf/features.conf [featuremap] (``Simulator(featuremap=SHIPPED_FEATUREMAP)``)
SHIPPED_FEATUREMAP = {"blindxfer": "#1", "atxfer": "*2"}
#: asterisk_conf/features.conf [general] atxferabort (Asterisk's own default is ``*1``)
ATXFER_ABORT = "*0"

PASS_GAP = 0.16            # between two digits the bridge reads (passed through, or the feature code)
PASS_TONE = 0.1            # a passed-through digit's tone on the far side
HOLD_AFTER_CODE = 0.1      # the feature's Hold after the code's last digit
FIRST_EXTEN_DIGIT = 0.161  # the extension's first digit after the code's last
EXTEN_GAP = 0.06           # between the extension's digits
# features.conf [general]: the shipped atxfernoanswertimeout, and Asterisk's defaults for the rest
NO_ANSWER_TIMEOUT = 15.0
DIGIT_TIMEOUT = 3.0        # transferdigittimeout
DIAL_ATTEMPTS = 3          # transferdialattempts
RETRY_PROMPT = 0.3         # transferretrysound (beep); not recorded
INVALID_PROMPT = 1.5       # transferinvalidsound (privacy-incorrect); not recorded


def feature_code(engine: Engine, chan: Channel) -> str:
    """The atxfer code for ``chan``: its own FEATUREMAP(atxfer), else features.conf's."""
    return chan.get_var("FEATUREMAP(atxfer)") or engine.featuremap.get("atxfer", "")


def abort_code(chan: Channel) -> str:
    """The atxferabort code for ``chan``: its own FEATURE(atxferabort), else features.conf's."""
    return chan.get_var("FEATURE(atxferabort)") or ATXFER_ABORT


def queue_abort(engine: Engine, chan: Channel, code: str) -> None:
    """What AMI CancelAtxfer does: the abort code's digits on ``chan``, read by its bridge."""
    xfer = chan.owner if isinstance(chan.owner, AttendedTransfer) else None
    if xfer is not None and xfer.consulting(chan):
        body = _abort(engine, xfer, code)
    elif may_transfer(chan):
        body = _swallowed(engine, chan, code)
    else:
        body = _pass_through(engine, chan, code)
    Task(engine.scheduler, body, f"cancel atxfer {chan.name}").start()


def _abort(engine: Engine, xfer: AttendedTransfer, code: str):
    yield from _swallowed(engine, xfer.transferer, code)
    if xfer.consulting(xfer.transferer):
        xfer.stimulus("abort")


def _swallowed(engine: Engine, chan: Channel, digits: str):
    """Digits a bridge with DTMF features reads itself: DTMFEnd on ``chan``, none on the far side."""
    for index, digit in enumerate(digits):
        if index:
            yield Sleep(PASS_GAP)
        if chan.hungup:
            return
        engine.emit(ev.dtmf_end(chan, digit, 0))


def queue_digits(engine: Engine, chan: Channel, code: str, exten: str, context: str) -> None:
    """What AMI Atxfer does once answered: TRANSFER_CONTEXT, then the digits on ``chan``."""
    if context:
        engine.set_var(chan, "TRANSFER_CONTEXT", context)
    if may_transfer(chan):
        body = _feature(engine, chan, code, exten)
    else:
        body = _pass_through(engine, chan, code + exten)
    Task(engine.scheduler, body, f"atxfer {chan.name}").start()


def may_transfer(chan: Channel) -> bool:
    """Its bridge runs the transfer feature: a Dial(...,t) callee in the caller's Dial bridge, or in the
    bridge an AMI Bridge made of it after a hold (it keeps its Dial's flags there, ami_bridge.py)."""
    return (chan.may_transfer and chan.bridge is not None and not chan.hungup
            and (chan.owner is not None or chan.bridge.ami))


def _pass_through(engine: Engine, chan: Channel, digits: str):
    for index, digit in enumerate(digits):
        if index:
            yield Sleep(PASS_GAP - PASS_TONE)
        if chan.hungup:
            return
        engine.emit(ev.dtmf_end(chan, digit, 0))
        far = [other for other in chan.bridge.channels if other is not chan] if chan.bridge is not None else []
        if not far:
            engine.deliver_dtmf(chan, digit)
        for other in far:
            engine.emit(ev.dtmf_begin(other, digit, "Sent"))
            if other.peer is not None and not other.peer.hungup:
                engine.emit(ev.dtmf_begin(other.peer, digit))
        yield Sleep(PASS_TONE)
        for other in far:
            if other.hungup:
                continue
            engine.emit(ev.dtmf_end(other, digit, int(PASS_TONE * 1000), "Sent"))
            if other.peer is not None and not other.peer.hungup:
                engine.emit(ev.dtmf_end(other.peer, digit, int(PASS_TONE * 1000)))
                engine.deliver_dtmf(other.peer, digit)


def _feature(engine: Engine, chan: Channel, code: str, exten: str):
    """The transferer's bridge reads the code, then the feature collects the extension (grab_transfer)."""
    bridge = chan.bridge
    for index, digit in enumerate(code):
        if index:
            yield Sleep(PASS_GAP)
        if chan.hungup or chan.bridge is not bridge:
            return
        engine.emit(ev.dtmf_end(chan, digit, 0))
    if bridge.transfer is not None:   # a transfer already runs there: "does not permit merging"
        logger.info("%s: attended transfer refused, one already runs in its bridge", chan.name)
        return
    context = engine.get_var(chan, "TRANSFER_CONTEXT") or chan.context or "default"
    xfer = AttendedTransfer(engine, chan, context)
    yield Sleep(HOLD_AFTER_CODE)
    if not xfer.still_there():
        return xfer.drop()
    xfer.hold()
    arriving = exten if chan.tech == "Local" else exten[:1]   # a PJSIP leg keeps only the first digit
    yield Sleep(FIRST_EXTEN_DIGIT - HOLD_AFTER_CODE)
    typed = ""
    for index, digit in enumerate(arriving):
        if index:
            yield Sleep(EXTEN_GAP)
        if not xfer.still_there():
            return xfer.drop()
        engine.emit(ev.dtmf_end(chan, digit, 0))
        typed += digit
        if not engine.dialplan.matches_more(context, typed):
            break
    for attempt in range(DIAL_ATTEMPTS):
        if attempt:
            yield Sleep(RETRY_PROMPT)
            typed = ""                      # nothing more is queued: the new attempt gets no digit
        if not typed or engine.dialplan.matches_more(context, typed):
            yield Sleep(DIGIT_TIMEOUT)
        if not xfer.still_there():
            return xfer.drop()
        if typed and engine.dialplan.exists(context, typed):
            return xfer.call(typed)
        logger.info("%s dialed '%s@%s' does not exist", chan.name, typed, context)
    yield Sleep(INVALID_PROMPT)
    if xfer.still_there():
        xfer.give_up()
    else:
        xfer.drop()


class State(enum.Enum):
    COLLECTING = "collecting the extension"
    CALLING_TARGET = "calling target"
    CONSULTING = "consulting"
    CONSULTATION_ONLY = "consultation without the transferee"
    COMPLETE = "complete"
    BLOND = "blond"
    REBRIDGE = "rebridge"
    FAIL = "fail"
    ENDED = "ended"


#: (state, stimulus) -> next state; any other stimulus is logged and ignored, as bridge_basic.c does.
MOVES: dict[tuple[State, str], State] = {
    (State.CALLING_TARGET, "target answers"): State.CONSULTING,
    (State.CALLING_TARGET, "transferer goes"): State.BLOND,
    (State.CALLING_TARGET, "target hangs up"): State.REBRIDGE,
    (State.CALLING_TARGET, "timeout"): State.REBRIDGE,
    (State.CALLING_TARGET, "transferee hangs up"): State.FAIL,
    (State.CALLING_TARGET, "abort"): State.REBRIDGE,
    (State.CONSULTING, "transferer goes"): State.COMPLETE,
    (State.CONSULTING, "target hangs up"): State.REBRIDGE,
    (State.CONSULTING, "abort"): State.REBRIDGE,
    (State.CONSULTING, "transferee hangs up"): State.CONSULTATION_ONLY,
    (State.CONSULTATION_ONLY, "transferer goes"): State.ENDED,
    (State.CONSULTATION_ONLY, "target hangs up"): State.ENDED,
}


class AttendedTransfer:
    """One attended transfer from the moment its feature code was read.

    It owns the transferer (instead of the caller's Dial) and the target's
    ``;1`` while they are in the consultation bridge, so their hangups and
    answers come here as ``leg_event`` (outgoing.Outgoing's interface).
    """

    def __init__(self, engine: Engine, transferer: Channel, context: str) -> None:
        self.engine = engine
        self.transferer = transferer
        self.context = context
        self.orig: Bridge = transferer.bridge
        self.dial = transferer.owner           # the caller's Dial(): it gets the target on success (None
        #                                        in an AMI Bridge's bridge: the target's ;1 stays there)
        self.held: list[Channel] = [c for c in self.orig.channels if c is not transferer]
        self.on_hold = False
        self.state = State.COLLECTING
        self.target: Channel | None = None
        self.consult: Bridge | None = None
        self.gone: Channel | None = None       # the leg whose departure is the current stimulus
        self.redirected = False
        self._timer = None
        self.orig.transfer = self

    # --- the feature ---------------------------------------------------------------

    def still_there(self) -> bool:
        return not self.transferer.hungup and self.transferer.bridge is self.orig

    def consulting(self, chan: Channel) -> bool:
        """``chan`` is this transfer's transferer, in the consultation bridge (calling or talking to the target)."""
        return (chan is self.transferer and self.state in (State.CALLING_TARGET, State.CONSULTING)
                and chan.bridge is self.consult and not chan.hungup)

    def hold(self) -> None:
        """ast_bridge_channel_write_hold: Hold on the transferer, music for the others."""
        self.engine.emit(ev.hold(self.transferer))
        for party in self.held:
            if not party.hungup:
                self.engine.emit(ev.moh_start(party, "default"))
        self.on_hold = True

    def _unhold_parties(self) -> None:
        if self.on_hold:
            self.on_hold = False
            for party in self.held:
                if not party.hungup:
                    self.engine.emit(ev.moh_stop(party))

    def give_up(self) -> None:
        """grab_transfer failed: Unhold, the call goes on as before."""
        self.engine.emit(ev.unhold(self.transferer))
        self._unhold_parties()
        self.drop()

    def drop(self) -> None:
        """The feature ends without a consultation (or the transferer left meanwhile)."""
        self.state = State.ENDED
        self.orig.transfer = None

    def call(self, exten: str) -> None:
        """dial_transfer + ast_bridge_impart: the target's Local pair, its ``;1`` in a new bridge."""
        engine, transferer = self.engine, self.transferer
        one, two = engine.local_pair(exten, self.context, linkedid=transferer.linkedid)
        self.target = one
        one.owner = self
        ami_bridge.detach(transferer)          # in an AMI Bridge's bridge: its thread waits for the transfer
        transferer.owner = self
        engine.set_var(one, "TRANSFERERNAME", transferer.name)
        engine.set_var(one, "ATTENDEDTRANSFER", transferer.name)
        inherit(engine, transferer, one)
        self.consult = engine.bridge_create_only()
        engine.set_var(two, "ATTENDEDTRANSFER", transferer.name)
        engine.set_var(two, "TRANSFERERNAME", transferer.name)
        inherit(engine, transferer, two)
        engine.set_callerid(two, transferer.cid_num, transferer.cid_name)
        engine.emit(ev.local_bridge(one, two, self.context, exten, True))
        engine.set_connected(one, transferer.cid_num, transferer.cid_name)
        engine.enter(self.consult, one)
        engine.watchers.append(self._watch)
        self._move(State.CALLING_TARGET, f"calls {exten}@{self.context}")
        engine.run_dialplan(two)
        engine.scheduler.soon(self._calling_target)

    def _calling_target(self) -> None:
        """The monitor thread's first state: the transferer moves into the consultation bridge."""
        if self.state is not State.CALLING_TARGET:
            return
        engine, transferer, target = self.engine, self.transferer, self.target
        engine.leave(transferer)
        engine.enter(self.consult, transferer)
        self._peers(target, transferer)
        engine.connected_line(transferer, target.cid_num, target.cid_name)
        self._timer = engine.scheduler.call_later(NO_ANSWER_TIMEOUT, self.stimulus, "timeout")

    # --- stimuli ------------------------------------------------------------------

    def leg_event(self, kind: str, leg: Channel) -> None:
        if kind == "ringing" and leg is self.target:
            self.engine.emit(ev.dial_state(None, leg, "RINGING"))
            return
        if leg is self.transferer and kind in ("hangup", "redirect"):
            self.redirected = kind == "redirect"
            stimulus = "transferer goes"
        elif leg is self.target and kind == "answer":
            stimulus = "target answers"
        elif leg is self.target and kind in ("hangup", "busy"):
            stimulus = "target hangs up"
        else:
            return
        self.engine.scheduler.soon(self.stimulus, stimulus, leg)

    def _watch(self, what: str, chan: Channel) -> None:
        if what == "hangup" and chan in self.held:
            self.engine.scheduler.soon(self.stimulus, "transferee hangs up", chan)

    def stimulus(self, name: str, leg: Channel | None = None) -> None:
        after = MOVES.get((self.state, name))
        if after is None:
            logger.info("attended transfer by %s: %s ignored in state %s", self.transferer.name, name,
                        self.state.value)
            return
        self.gone = leg
        self._move(after, name)
        getattr(self, f"_enter_{after.name.lower()}")()

    def _move(self, after: State, why: str) -> None:
        logger.info("attended transfer by %s: %s -> %s (%s)", self.transferer.name, self.state.value,
                    after.value, why)
        self.state = after

    def _stop(self) -> None:
        """A terminal state: no more stimuli from the timer or the transferee."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._watch in self.engine.watchers:
            self.engine.watchers.remove(self._watch)
        self.orig.transfer = None

    # --- states -----------------------------------------------------------------

    def _enter_consulting(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self.engine.emit(ev.dial_end(None, self.target, "ANSWER"))
        if self.transferer.bridge is self.consult:
            self._peers(self.target, self.transferer)

    def _enter_complete(self) -> None:
        self._merge()

    def _enter_blond(self) -> None:
        self._merge()

    def _merge(self) -> None:
        """bridge_merge of the consultation INTO the caller's bridge, the transferer kicked out."""
        self._stop()
        engine, transferer, target = self.engine, self.transferer, self.target
        if transferer.bridge is not None:
            self._clear_peer(transferer)
            engine.leave(transferer)
        if self.orig.ami:     # recorded twice so: the caller's music stops before the merge
            self._unhold_parties()
        engine.emit(ev.bridge_merge(self.orig, self.consult))
        for chan in list(self.consult.channels):
            engine.leave(chan)
            engine.enter(self.orig, chan)
        self._unhold_parties()
        transferee = self._transferee()
        if transferee is not None:
            self._peers(transferee, target)
        engine.emit(ev.attended_transfer(True, transferer, self.orig, self.consult, transferee,
                                         target if transferer.tech == "Local" else None))
        if transferee is not None:
            self._connect(target, transferee)
            self._connect(transferee, target)
        engine.emit(ev.bridge_destroy(self.consult))
        target.owner = self.dial
        if self.orig.ami and not target.hungup:
            ami_bridge.adopt(engine, target, self.orig)
        if self.redirected:
            engine.release_leg(transferer)
        else:
            engine.hangup(transferer, transferer.hangupcause or 16)
        if transferee is not None:
            self._connect_far(target, transferee)

    def _enter_rebridge(self) -> None:
        """The target is gone (or never answered): the transferer goes back to the caller."""
        self._stop()
        engine, transferer, target = self.engine, self.transferer, self.target
        if self.gone is target:
            self._drop_target()
        if transferer.bridge is self.consult:   # moved back: its BRIDGEPEER is overwritten, not cleared
            engine.leave(transferer)
        if transferer.bridge is None and not transferer.hungup:
            engine.enter(self.orig, transferer)
            if self.orig.ami:
                ami_bridge.rejoin(engine, transferer, self.orig)
        self._unhold_parties()
        transferee = self._transferee()
        if transferee is not None:
            self._peers(transferee, transferer)
        engine.emit(ev.unhold(transferer))
        transferer.owner = self.dial
        target_left = bool(self.consult.channels)   # timeout, abort: the target is still in the bridge
        if target_left:
            self._clear_peer(target)
            engine.leave(target)
        engine.emit(ev.bridge_destroy(self.consult))
        if target_left and not target.hungup:
            engine.hangup(target, 16)
        if transferee is not None:
            self._connect(transferer, transferee)

    def _enter_fail(self) -> None:
        """The caller hung up while the target rang: a failed transfer, the consultation is torn down."""
        self._stop()
        engine = self.engine
        engine.emit(ev.attended_transfer(False, self.transferer, self.orig, self.consult, None, self.target))
        members = list(self.consult.channels)
        for chan in members:
            self._clear_peer(chan)
            engine.leave(chan)
        engine.emit(ev.bridge_destroy(self.consult))
        for chan in members:
            engine.hangup(chan, 16)

    def _enter_consultation_only(self) -> None:
        """The caller hung up while consulting: the transferer and the target carry on."""
        self._stop()

    def _enter_ended(self) -> None:
        """One of the two left after the caller: the other is hung up with it (a basic bridge)."""
        engine, gone = self.engine, self.gone
        members = [chan for chan in self.consult.channels]
        for chan in members:
            self._clear_peer(chan)
        if gone is not None and gone in members:
            engine.leave(gone)
            engine.hangup(gone, gone.hangupcause or 16)
        rest = [chan for chan in self.consult.channels]
        for chan in rest:
            engine.leave(chan)
        engine.emit(ev.bridge_destroy(self.consult))
        for chan in rest:
            engine.hangup(chan, 16)

    # --- helpers -----------------------------------------------------------------

    def _transferee(self) -> Channel | None:
        parties = [chan for chan in self.held if not chan.hungup and chan.bridge is self.orig]
        return parties[0] if len(parties) == 1 else None

    def _clear_peer(self, chan: Channel) -> None:
        if chan.get_var("BRIDGEPEER"):
            self.engine.set_var(chan, "BRIDGEPEER", "")

    def _peers(self, first: Channel, second: Channel) -> None:
        self.engine.set_var(first, "BRIDGEPEER", second.name)
        self.engine.set_var(second, "BRIDGEPEER", first.name)

    def _connect(self, chan: Channel, other: Channel) -> None:
        """``chan`` now talks to ``other``: NewConnectedLine if that changed (and its Local partner's
        caller id, Engine.connected_line)."""
        if (chan.conn_num, chan.conn_name) != (other.cid_num, other.cid_name):
            self.engine.connected_line(chan, other.cid_num, other.cid_name)

    def _connect_far(self, chan: Channel, other: Channel) -> None:
        """The update goes on through ``chan``'s Local partner to whoever that one is bridged with."""
        partner = chan.peer
        if partner is not None and partner.bridge is not None:
            for far in partner.bridge.channels:
                if far is not partner and not far.hungup:
                    self._connect(far, other)

    def _drop_target(self) -> None:
        engine, target = self.engine, self.target
        if target.bridge is not None:
            for chan in target.bridge.channels:
                self._clear_peer(chan)
            engine.leave(target)
        if not target.hungup:
            engine.hangup(target, target.hangupcause or 16)
