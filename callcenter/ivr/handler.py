"""The FastAGI script ``ivr``: route the call, run its flow, record the path.

``IvrHandler.handle(session)`` is registered as the ``ivr`` handler of the
FastAGI server.  For one call it:

1. takes the current flow set (a hot reload later does not change this call);
2. reads ANI and DNIS from the AGI environment (sanitised) and the call id
   (the channel's linkedid);
3. picks the flow from the routes at the current time (business hours);
   the route says whether its trunk's caller ID can be trusted
   (``route.trusted_callerid`` in the flows);
4. runs the engine: the ANI lookup first, then the flow's nodes, each engine
   command executed as AGI commands (:class:`~callcenter.ivr.agi.AgiChannel`)
   or through a port (CRM, queue figures), with a timeout on each port call;
5. ends with the dialplan contract variables (queue / done / transfer /
   fallback) and hands the path to the contact-record sink.

A caller who hangs up mid-flow ends the session cleanly: the record says
``abandoned`` and the node they left at.  Any other error is recorded and
re-raised, and the FastAGI server sends the caller to the fallback queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from twisted.internet.defer import CancelledError, maybeDeferred
from twisted.internet.interfaces import IReactorTime

from callcenter.asterisk.fastagi_session import AGIConnectionLost, AGIHangup, AGISession
from callcenter.ivr import sanitize
from callcenter.ivr.agi import AgiChannel
from ivr_flows import commands as cmd
from ivr_flows import dialpatterns, engine
from ivr_flows.flowset import FlowSet
from ivr_flows.ports import ContactRecordSink, CustomerPort, QueueStatsPort
from ivr_flows.state import CallState

logger = logging.getLogger(__name__)

DEFAULT_PORT_TIMEOUT = 3.0


class IvrHandler:
    def __init__(self, flows: Callable[[], FlowSet], customers: CustomerPort, records: ContactRecordSink,
                 queue_stats: QueueStatsPort, clock: IReactorTime, *,
                 port_timeout: float = DEFAULT_PORT_TIMEOUT, acd: Any = None) -> None:
        self._flows = flows
        self._customers = customers
        self.records = records
        self._queue_stats = queue_stats
        self._clock = clock
        self._port_timeout = port_timeout
        #: The daemon's ACD (``prepare_handoff``); None: every hand-off goes to Asterisk's Queue().
        self._acd = acd

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), timezone.utc)

    async def handle(self, session: AGISession) -> None:
        flow_set = self._flows()  # this call keeps this snapshot to its end
        call = _Call(self, session, AgiChannel(session))
        call.ani, call.dnis = sanitize.caller_number(session.ani), sanitize.dialed_number(session.dnis)
        try:
            call.call_id = sanitize.call_id(await session.get_variable("CHANNEL(linkedid)")) or session.uniqueid
        except (AGIHangup, AGIConnectionLost):
            await call.record(cmd.ABANDONED, "")
            return
        call.channel.call_id = call.call_id
        decision = flow_set.routes.resolve(call.dnis, self.now())
        if decision is None:
            logger.warning("call %s: no route for DNIS %r; caller sent to the fallback queue", call.call_id, call.dnis)
            await call.channel.fallback()
            await call.record(cmd.FALLBACK, f"no route for DNIS {call.dnis!r}")
            return
        flow = flow_set.flows[decision.flow]
        logger.info("call %s: flow %s (version %d) for DNIS %s%s, caller %s", call.call_id, flow.name, flow.version,
                    call.dnis, {True: " (open)", False: " (closed)", None: ""}[decision.open], call.ani or "withheld")
        await call.run(flow_set, flow, decision.route.trusted_callerid)

    def flow_script(self, flow_name: str) -> Callable[[AGISession], Any]:
        """An AGI script that runs the flow ``flow_name`` whatever the DNIS, for a caller the IVR already
        recorded: the ACD's callback offer at a queue's max wait (``cc-acd-exit,callback``).  Its path is
        not written to the contact record, which keeps the first IVR's path; a callback it takes is
        stored with the call's id."""
        async def handle(session: AGISession) -> None:
            flow_set = self._flows()
            call = _Call(self, session, AgiChannel(session), recorded=False)
            call.ani, call.dnis = sanitize.caller_number(session.ani), ""
            try:
                call.call_id = sanitize.call_id(await session.get_variable("CHANNEL(linkedid)")) or session.uniqueid
            except (AGIHangup, AGIConnectionLost):
                return
            call.channel.call_id = call.call_id
            flow = flow_set.flows.get(flow_name)
            if flow is None:
                logger.error("call %s: no flow %r for the %s script; caller sent to the fallback queue",
                             call.call_id, flow_name, session.script or "AGI")
                await call.channel.fallback()
                return
            logger.info("call %s: flow %s (version %d), caller %s", call.call_id, flow.name, flow.version,
                        call.ani or "withheld")
            await call.run(flow_set, flow)

        return handle

    # -- ports --------------------------------------------------------------------

    async def ask(self, call_id: str, what: str, method: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call a port (its result may be a Deferred) with a timeout; None on failure."""
        d = maybeDeferred(method, *args, **kwargs)
        d.addTimeout(self._port_timeout, self._clock)
        try:
            return await d
        except CancelledError:
            raise
        except Exception as exc:
            logger.warning("call %s: %s failed: %s", call_id, what, exc)
            return None

    async def answer(self, call: "_Call", request: Any) -> Any:
        if isinstance(request, cmd.GetDigits):
            return await call.channel.get_digits(request)
        if isinstance(request, cmd.Lookup):
            method = self._customers.lookup_by_ani if request.kind == "ani" else self._customers.lookup_by_account
            return await self.ask(call.call_id, f"CRM lookup by {request.kind}", method, request.key)
        if isinstance(request, cmd.QueueStats):
            counts = {}
            for queue in request.queues:
                count = await self.ask(call.call_id, f"waiting calls of {queue}", self._queue_stats.waiting_calls, queue)
                counts[queue] = count if isinstance(count, int) else 0
            return counts
        if isinstance(request, cmd.OpenTicketDraft):
            return await self.ask(call.call_id, "ticket draft", self._customers.open_ticket_draft,
                                  call_id=call.call_id, customer_id=request.customer_id, ani=request.ani,
                                  category=request.category, summary=request.summary, key=request.key)
        if isinstance(request, cmd.RecordCallback):
            return await self.ask(call.call_id, "callback request", self._customers.record_callback,
                                  call_id=call.call_id, customer_id=request.customer_id, number=request.number,
                                  flow=request.flow, queue=request.queue, key=request.key)
        if isinstance(request, cmd.VerifySecret):  # the answer only: the secret is never logged
            return await self.ask(call.call_id, "caller verification", self._customers.verify_secret,
                                  call_id=call.call_id, customer_id=request.customer_id, secret=request.secret)
        raise TypeError(f"unknown engine request {request!r}")


    async def routed_by_acd(self, call: "_Call", handoff: cmd.HandOff) -> bool:
        """Whether the daemon's ACD takes this hand-off (it then keeps it until the caller waits)."""
        if self._acd is None:
            return False
        customer = call.state.variables.get("customer.id") if call.state is not None else None
        taken = await self.ask(call.call_id, "ACD hand-off", self._acd.prepare_handoff, call.call_id, handoff.queue,
                               tuple(handoff.skills), handoff.priority,
                               str(customer) if customer not in (None, "") else None)
        return taken is True


class _Call:
    """One call through the handler: the engine loop and its record."""

    def __init__(self, handler: IvrHandler, session: AGISession, channel: AgiChannel, *,
                 recorded: bool = True) -> None:
        self.handler, self.session, self.channel = handler, session, channel
        self.recorded = recorded
        self.call_id, self.ani, self.dnis = session.uniqueid, "", ""
        self.state: CallState | None = None
        self.outcome, self.detail = "", ""

    async def run(self, flow_set: FlowSet, flow: Any, trusted_callerid: bool = False) -> None:
        try:
            context = flow_set.context(self.call_id, self.ani, self.dnis, trusted_callerid=trusted_callerid)
            state, commands = engine.start(flow, context, self.handler.now())
            self.state = state
            while True:
                result = await self.execute(commands)
                if self.state.finished:
                    break
                self.state, commands = engine.resume(self.state, result, self.handler.now())
        except (AGIHangup, AGIConnectionLost) as exc:
            logger.info("call %s: caller hung up at %s (%s)", self.call_id, self.left_at, exc)
            await self.record(cmd.ABANDONED, "")
            return
        except Exception as exc:  # CancelledError included: the server is stopping
            await self.record(cmd.FALLBACK, f"IVR error: {type(exc).__name__}: {exc}")
            raise
        if self.outcome in (cmd.QUEUE, cmd.TRANSFER) and self.session.hungup:
            logger.info("call %s: caller hung up during the hand-off at %s", self.call_id, self.left_at)
            self.outcome = cmd.ABANDONED
        await self.record(self.outcome, self.detail)

    @property
    def left_at(self) -> str:
        return self.state.left_at if self.state is not None else ""

    async def execute(self, commands: list[Any]) -> Any:
        """Run the commands of one engine step; the result of its final request."""
        channel = self.channel
        for command in commands:
            if cmd.is_request(command):
                return await self.handler.answer(self, command)
            if isinstance(command, cmd.Play):
                await channel.play(command.prompt)
            elif isinstance(command, cmd.SayDigits):
                await channel.say_digits(command.digits)
            elif isinstance(command, cmd.SayNumber):
                await channel.say_number(command.number)
            elif isinstance(command, cmd.SayCurrency):
                await channel.say_currency(command)
            elif isinstance(command, cmd.SetLanguage):
                await channel.set_language(command.language)
            elif isinstance(command, cmd.HandOff):
                await channel.hand_off(command, self.call_id, acd=await self.handler.routed_by_acd(self, command))
                self.outcome = cmd.QUEUE
            elif isinstance(command, cmd.Transfer):
                await self.transfer(command.target)
            elif isinstance(command, cmd.Voicemail):
                await self.voicemail(command.mailbox)
            elif isinstance(command, cmd.Hangup):
                await channel.done()
                await channel.hangup()
                self.outcome = cmd.DONE
            elif isinstance(command, cmd.Finished):
                await self.finished(command)
            else:
                raise TypeError(f"unknown engine command {command!r}")
        return None

    async def transfer(self, target: str) -> None:
        assert self.state is not None
        if not dialpatterns.allowed(self.state.context.transfer_allow, target):
            raise sanitize.UnsafeValue(f"transfer target {target!r} is not allow-listed")
        await self.channel.transfer(target, self.call_id)
        self.outcome, self.detail = cmd.TRANSFER, target

    async def voicemail(self, mailbox: str) -> None:
        if await self.channel.voicemail(mailbox):
            await self.channel.done()
            self.outcome, self.detail = cmd.VOICEMAIL, mailbox
        else:
            logger.error("call %s: Asterisk has no VoiceMail application; caller sent to the fallback queue",
                         self.call_id)
            await self.channel.fallback()
            self.outcome, self.detail = cmd.FALLBACK, "no VoiceMail application"

    async def finished(self, command: cmd.Finished) -> None:
        if self.outcome:
            return  # a hand-off, transfer, voicemail or hang-up already answered the dialplan
        if command.outcome == cmd.FALLBACK:
            logger.warning("call %s: flow fell back to the fallback queue: %s", self.call_id, command.reason)
            await self.channel.fallback()
        else:
            await self.channel.done()
        self.outcome, self.detail = command.outcome, command.reason

    async def record(self, outcome: str, detail: str) -> None:
        if not self.recorded:
            logger.info("call %s: %s ended: %s %s", self.call_id, self.left_at or "flow", outcome, detail)
            return
        path = self.state.path if self.state is not None else ()
        handoff = self.state.handoff if self.state is not None and outcome in (cmd.QUEUE, cmd.ABANDONED) else None
        customer = self.state.variables.get("customer.id") if self.state is not None else None
        await self.handler.ask(self.call_id, "contact record", self.handler.records.ivr_finished,
                               self.call_id, self.ani, self.dnis, path, outcome, handoff, self.left_at, detail,
                               customer_id=str(customer) if customer not in (None, "") else None)
