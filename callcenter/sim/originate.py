"""Originate (AMI action, and how the scenario API places calls, as the lab did).

``Originate Channel=Local/<exten>@<context>[/n]``: the ``;2`` half runs the
destination; when it answers, ``;1`` runs Context/Exten/Priority (or the
Application).  Recorded shapes (README.txt, more/README.txt):

* the first Newchannel shows ``CallerIDNum: <unknown>``; the CallerID comes
  with NewCallerid; Variable headers become VarSet on ;1 in REVERSE order and
  on ;2 in order; DialBegin/DialState/DialEnd have only Dest* fields;
* OriginateResponse: ``Response: Success``/``Reason: 4`` when the FIRST leg
  answers; on failure ``Channel:`` is the dial string and ``Uniqueid:
  <unknown>``: Reason 0 (no such extension), 3 (no answer within Timeout: the
  legs hang up with Cause 19 and there is NO DialEnd), 5 (busy), 1 (hung up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from callcenter.sim import events as ev
from callcenter.sim.channels import Channel
from callcenter.sim.outgoing import Outgoing, dialstring, discard, parse_local
from callcenter.sim.pbx import Engine


@dataclass
class OriginateRequest:
    channel: str
    context: str | None = None
    exten: str | None = None
    priority: int = 1
    application: str | None = None
    data: str = ""
    cid_num: str | None = None
    cid_name: str | None = None
    variables: list[tuple[str, str]] = field(default_factory=list)
    timeout: float = 30.0
    action_id: str | None = None
    #: ``ChannelId`` / ``OtherChannelId``: the Uniqueids of ``;1`` (so also the Linkedid) and ``;2``.
    channel_id: str | None = None
    other_channel_id: str | None = None
    asynchronous: bool = True  # only an Async originate publishes OriginateResponse


Done = Callable[[bool, Channel | None], None]


class Originate(Outgoing):
    """Owns the ;1 half until it is answered, then lets it run its own dialplan."""

    def __init__(self, engine: Engine, request: OriginateRequest, on_done: Done | None = None) -> None:
        super().__init__(engine, None)
        self.request = request
        self.on_done = on_done
        self.one: Channel | None = None
        self._timer = None
        self._finished = False

    def start(self) -> Channel | None:
        req, engine = self.request, self.engine
        if not req.channel.startswith("Local/"):
            self._fail(0)
            return None
        exten, context, optimize = parse_local(req.channel)
        one, two = engine.local_pair(exten, context, ids=(req.channel_id, req.other_channel_id))
        self.one = one
        one.app, one.appdata = "AppDial2", "(Outgoing Line)"
        engine.newexten(one)
        if not engine.dialplan.exists(context, exten):
            self._fail(0)
            discard(engine, one, two)
            return None
        for name, value in reversed(req.variables):
            engine.set_var(one, name, value)
        if req.cid_num is not None or req.cid_name is not None:
            engine.set_callerid(one, req.cid_num, req.cid_name)
            engine.set_connected(one, req.cid_num, req.cid_name)
        for name, value in req.variables:
            engine.set_var(two, name, value)
        if req.cid_num is not None or req.cid_name is not None:
            two.conn_num, two.conn_name = req.cid_num, req.cid_name
            engine.set_callerid(two, req.cid_num, req.cid_name)
            engine.emit(ev.newconnectedline(two))
        engine.emit(ev.local_bridge(one, two, context, exten, optimize))
        engine.emit(ev.dial_begin(None, one, dialstring(req.channel)))
        one.owner = self
        self._timer = engine.scheduler.call_later(req.timeout, self._timeout)
        engine.run_dialplan(two)
        return one

    def leg_event(self, kind: str, leg: Channel) -> None:
        self.engine.scheduler.soon(self._handle, kind, leg)

    def _handle(self, kind: str, leg: Channel) -> None:
        if self._finished:
            return
        engine = self.engine
        if kind == "ringing":
            engine.emit(ev.dial_state(None, leg, "RINGING"))
        elif kind == "answer":
            self._stop_timer()
            engine.emit(ev.dial_end(None, leg, "ANSWER"))
            leg.owner = None
            self._run_target(leg)
            self._succeed(leg)
        elif kind == "busy":
            self._stop_timer()
            engine.emit(ev.dial_end(None, leg, "BUSY"))
            engine.hangup(leg, 0)
            self._fail(5)
        elif kind == "hangup":
            self._stop_timer()
            engine.hangup(leg)
            self._fail(1)

    def _run_target(self, leg: Channel) -> None:
        req = self.request
        if req.application:
            leg.context, leg.exten, leg.priority = "", "", 1
            leg.task = None
            self.engine.run_application(leg, req.application, req.data)
        else:
            self.engine.goto(leg, req.context or "default", req.exten or "s", req.priority)
            self.engine.run_dialplan(leg)

    def cancel(self) -> None:
        """The originating side gives up before the answer (Reason 1)."""
        if self._finished or self.one is None:
            return
        self._stop_timer()
        self.engine.hangup(self.one, 16)
        self._fail(1)

    def _timeout(self) -> None:
        if self._finished or self.one is None:
            return
        self.engine.hangup(self.one, 19)
        self._fail(3)

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _target(self) -> ev.Headers:
        req = self.request
        if req.application:
            return [("Application", req.application), ("Data", req.data)]
        return [("Context", req.context or ""), ("Exten", req.exten or "")]

    def _succeed(self, leg: Channel) -> None:
        self._finished = True
        req = self.request
        if req.asynchronous:
            self.engine.emit(ev.originate_response(req.action_id, True, leg.name, self._target(), 4,
                                                   leg.uniqueid, req.cid_num, req.cid_name))
        if self.on_done is not None:
            self.on_done(True, leg)

    def _fail(self, reason: int) -> None:
        self._finished = True
        req = self.request
        if req.asynchronous:
            self.engine.emit(ev.originate_response(req.action_id, False, req.channel, self._target(), reason,
                                                   "<unknown>", req.cid_num, req.cid_name))
        if self.on_done is not None:
            self.on_done(False, None)


def parse_callerid(value: str) -> tuple[str | None, str | None]:
    """ast_callerid_parse as recorded: ``"Say \\"Hi\\" \\\\ Bob" <5551012>`` -> name ``Say "Hi" \\ Bob``."""
    value = value.strip()
    if not value:
        return None, None
    start, end = value.rfind("<"), value.rfind(">")
    if 0 <= start < end:
        number = value[start + 1:end].strip() or None
        name = value[:start].strip()
    elif value.replace("+", "").isdigit():
        return value, None
    else:
        number, name = None, value
    if len(name) >= 2 and name[0] == '"' and name[-1] == '"':
        name = name[1:-1]
    return number, (_unescape_quoted(name) or None)


def _unescape_quoted(text: str) -> str:
    out, escaped = [], False
    for char in text:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)
