"""Two AMI facts the ACD needs that the call tracker does not model, as typed events.

* ``OriginateResponse`` (the outcome of an async Originate, matched by the
  ActionID the sender chose): ``OriginateOutcome``.  On failure Asterisk gives
  ``Uniqueid: <unknown>`` and a ``Reason`` (``AST_CONTROL_*``: 3 ring timeout,
  5 busy, 8 congestion, 1 hung up, 0 could not dial), see the transcripts in
  ``more/ami_click2dial_fail.txt``.
* ``VarSet`` of the few variables the dialplan sets for the daemon
  (``CC_CALLBACK_RESULT``: the DIALSTATUS of a callback's customer leg):
  ``VariableSet``.

No raw AMI message leaves this module; ``ListenerFanout`` hands one AMI link's
events to several listeners (the call tracker and this watch).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from callcenter.asterisk.ami_codec import AMIMessage
from callcenter.asterisk.call_model import int_or_none

logger = logging.getLogger(__name__)

#: Originate ``Reason`` -> why the originated channel did not answer.
ORIGINATE_REASONS = {3: "noanswer", 5: "busy", 8: "unavailable", 1: "unavailable", 0: "unavailable"}


@dataclass(frozen=True, slots=True)
class OriginateOutcome:
    action_id: str
    answered: bool
    reason: str | None          # noanswer, busy, unavailable; None when answered
    uniqueid: str | None


@dataclass(frozen=True, slots=True)
class VariableSet:
    linkedid: str | None
    channel: str | None
    variable: str
    value: str


class OriginateWatch:
    """An AMI listener: Originate outcomes and the daemon's own channel variables, as typed events."""

    def __init__(self, consumer: Callable[[Any], None], variables: Iterable[str] = ("CC_CALLBACK_RESULT",)):
        self._consumer = consumer
        self._variables = frozenset(variables)

    def ami_snapshot(self, snapshot: Any) -> None:
        return None

    def ami_link_down(self) -> None:
        return None

    def ami_event(self, event: AMIMessage) -> None:
        if event.name == "OriginateResponse":
            answered = (event.get("Response") or "").lower() == "success"
            reason = int_or_none(event.get("Reason"))
            uniqueid = event.get("Uniqueid")
            self._consumer(OriginateOutcome(event.get("ActionID") or "", answered,
                                            None if answered else ORIGINATE_REASONS.get(reason or 0, "unavailable"),
                                            None if uniqueid in (None, "", "<unknown>") else uniqueid))
        elif event.name == "VarSet" and event.get("Variable") in self._variables:
            self._consumer(VariableSet(event.get("Linkedid"), event.get("Channel"), event.get("Variable") or "",
                                       event.get("Value") or ""))


class ListenerFanout:
    """One AMI link, several listeners; a listener that raises does not stop the others."""

    def __init__(self, *listeners: Any) -> None:
        self.listeners = listeners

    def _each(self, method: str, *args: Any) -> None:
        for listener in self.listeners:
            try:
                getattr(listener, method)(*args)
            except Exception:
                logger.exception("AMI listener %s failed in %s", type(listener).__name__, method)

    def ami_snapshot(self, snapshot: Any) -> None:
        self._each("ami_snapshot", snapshot)

    def ami_event(self, event: AMIMessage) -> None:
        self._each("ami_event", event)

    def ami_link_down(self) -> None:
        self._each("ami_link_down")
