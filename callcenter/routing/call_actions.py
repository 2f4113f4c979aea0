"""What an agent or a supervisor does to a call, as AMI actions; the result comes back as call events.

Each method checks what it can (the agent is on that call, the target is an
allowed extension or a configured queue, the number is dialable), sends the
actions and returns at once: success here means Asterisk accepted the
action, not that the call moved.  What really happened reaches the desktops
and the contact record through the call tracker's events (``CallHeld``,
``CallResumed``, ``CallTransferred``, ``CallDialedOut``, ``CallConnected``,
...), so a UI never assumes success.  Refusals raise ``ActionRefused`` with a
message for the person who asked.

The dialplan contract (``asterisk_conf/README.md``), as verified on the real
Asterisk 22 (``tests/test_real_asterisk_hold.py``, ``test_real_asterisk_ami.py``):

* hold: one dual ``Redirect``: the caller to ``cc-hold`` and the agent leg
  (``ExtraChannel``) to ``cc-agent-hold``; un-hold: ``Bridge`` of the two
  (a Redirect of the caller alone would hang the agent up);
* blind transfer to an agent: ``Redirect`` of the caller to
  ``cc-transfer,<ext>``; to a queue: a new ACD hand-off, then ``Redirect`` to
  ``cc-wait``;
* attended transfer: ``Setvar __CC_CONSULT_TO`` then ``Atxfer`` (exten ``0``) on the agent leg into
  ``cc-consult``, which dials the target; the agent completes it by hanging up, or aborts it with
  ``CancelAtxfer`` on the agent leg (features.conf ``atxferabort``), which Asterisk answers with success
  whether or not a transfer runs, so the daemon refuses it unless the tracker sees a consultation;
* click-to-dial: ``Originate`` of the agent's phone into ``cc-outbound``;
* listen, whisper, barge: ``Originate`` of the supervisor's phone into
  ``cc-spy,<mode>`` with ``CC_SPY_TARGET`` = the agent leg.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from acd import events as ev
from callcenter.aio import resolved
from callcenter.asterisk import channel_vars as cv

logger = logging.getLogger(__name__)

AGENT_EXTEN = re.compile(r"6\d{3}")           # cc-transfer / cc-consult allow _6XXX
DIAL_NUMBER = re.compile(r"\+?\d{3,20}")        # cc-outbound allows _XXX. and _+XXX.
SPY_MODES = ("listen", "whisper", "barge")


class ActionRefused(Exception):
    """The action was not sent; ``str()`` says why, for the person who asked."""


class CallActions:
    def __init__(self, acd: Any, tracker: Any) -> None:
        self._acd = acd
        self._tracker = tracker

    # -- finding the call ------------------------------------------------------------------------
    def call_of(self, agent: str) -> Any:
        """The connected call of ``agent`` (the tracker's record), or ActionRefused."""
        for record in self._tracker.calls.values():
            if record.agent_id == agent and record.state is ev.CallState.CONNECTED and record.agent_channel:
                return record
        raise ActionRefused(f"agent {agent} has no call in conversation")

    def _interface(self, login: str) -> str:
        view = self._acd.distributor.agent(login)
        if view is not None and view.interface:
            return view.interface
        profile = next((a for a in self._acd.distributor.setup.agents if a.agent == login), None)
        if profile is None or not profile.interface:
            raise ActionRefused(f"{login} has no phone configured")
        return profile.interface

    async def _send(self, name: str, headers: list[tuple[str, str]]) -> None:
        try:
            await self._acd._action(name, headers)
        except Exception as exc:
            raise ActionRefused(f"Asterisk refused {name}: {exc}") from None

    # -- the agent's call ----------------------------------------------------------------------------
    async def hold(self, agent: str) -> str:
        call = self.call_of(agent)
        if any(h.ended_at is None for h in call.holds):
            raise ActionRefused("the call is on hold already")
        await self._send("Redirect", [
            ("Channel", call.caller_channel), ("Context", cv.CONTEXT_HOLD), ("Exten", "s"), ("Priority", "1"),
            ("ExtraChannel", call.agent_channel), ("ExtraContext", cv.CONTEXT_AGENT_HOLD), ("ExtraExten", "s"),
            ("ExtraPriority", "1")])
        logger.info("call %s: agent %s puts the caller on hold", call.call_id, agent)
        return call.call_id

    async def unhold(self, agent: str) -> str:
        call = self._held_call(agent)
        await self._send("Bridge", [("Channel1", call.caller_channel), ("Channel2", call.agent_channel),
                                    ("Tone", "no")])
        logger.info("call %s: agent %s takes the caller back", call.call_id, agent)
        return call.call_id

    def _held_call(self, agent: str) -> Any:
        for record in self._tracker.calls.values():
            if record.agent_id == agent and record.agent_channel and any(h.ended_at is None for h in record.holds):
                return record
        raise ActionRefused(f"agent {agent} has no call on hold")

    async def hangup(self, agent: str) -> str:
        call = self.call_of(agent)
        await self._send("Hangup", [("Channel", call.agent_channel), ("Cause", "16")])
        return call.call_id

    async def transfer(self, agent: str, target: str, kind: str = "blind") -> str:
        """``target``: an agent's extension (6XXX) or, blind only, ``queue:<name>`` of the ACD."""
        call = self.call_of(agent)
        if kind not in ("blind", "attended"):
            raise ActionRefused(f"unknown transfer kind {kind!r}: blind or attended")
        if target.startswith("queue:"):
            queue = target[len("queue:"):]
            if kind != "blind":
                raise ActionRefused("a transfer to a queue is blind")
            if not await resolved(self._acd.prepare_handoff(call.call_id, queue, (), 0, None)):
                raise ActionRefused(f"{queue!r} is not a queue the daemon routes")
            await self._send("Redirect", [("Channel", call.caller_channel), ("Context", cv.CONTEXT_WAIT),
                                          ("Exten", "s"), ("Priority", "1")])
        elif not AGENT_EXTEN.fullmatch(target):
            raise ActionRefused(f"{target!r} is not an agent extension (6XXX) or queue:<name>")
        elif kind == "blind":
            await self._send("Redirect", [("Channel", call.caller_channel), ("Context", cv.CONTEXT_TRANSFER),
                                          ("Exten", target), ("Priority", "1")])
        else:
            # one digit after the feature code: Asterisk keeps only the first on a PJSIP leg (cc-consult)
            await self._send("Setvar", [("Channel", call.agent_channel), ("Variable", f"__{cv.CC_CONSULT_TO}"),
                                        ("Value", target)])
            await self._send("Atxfer", [("Channel", call.agent_channel), ("Exten", cv.CONSULT_EXTEN),
                                        ("Context", cv.CONTEXT_CONSULT)])
        logger.info("call %s: agent %s transfers (%s) to %s", call.call_id, agent, kind, target)
        return call.call_id

    async def cancel_transfer(self, agent: str) -> str:
        """Abort the agent's attended transfer: the consulted leg is hung up, the agent has the caller again."""
        call = self.call_of(agent)
        if not call.consulting:
            raise ActionRefused("no attended transfer in progress on the call")
        await self._send("CancelAtxfer", [("Channel", call.agent_channel)])
        logger.info("call %s: agent %s cancels the attended transfer", call.call_id, agent)
        return call.call_id

    # -- new calls -----------------------------------------------------------------------------------
    async def dial(self, agent: str, number: str) -> None:
        """Click-to-dial: the agent's phone rings first, then ``number`` is dialled."""
        digits = re.sub(r"[\s().-]", "", number)
        if not DIAL_NUMBER.fullmatch(digits):
            raise ActionRefused(f"{number!r} is not a number that can be dialled")
        await self._send("Originate", [("Channel", self._interface(agent)), ("Context", cv.CONTEXT_OUTBOUND),
                                       ("Exten", digits), ("Priority", "1"), ("CallerID", f'"{digits}" <{digits}>'),
                                       ("Timeout", "30000")])
        logger.info("agent %s dials %s", agent, digits)

    async def spy(self, supervisor: str, agent: str, mode: str) -> str:
        """Listen, whisper or barge: the supervisor's phone rings, then joins the agent's call."""
        if mode not in SPY_MODES:
            raise ActionRefused(f"unknown mode {mode!r}: {', '.join(SPY_MODES)}")
        call = self.call_of(agent)
        await self._send("Originate", [("Channel", self._interface(supervisor)), ("Context", cv.CONTEXT_SPY),
                                       ("Exten", mode), ("Priority", "1"), ("Timeout", "30000"),
                                       ("CallerID", f'"{mode} {agent}" <{agent}>'),
                                       ("Variable", f"{cv.CC_SPY_TARGET}={call.agent_channel}")])
        logger.info("call %s: supervisor %s %ss to agent %s", call.call_id, supervisor, mode, agent)
        return call.call_id
