"""Shared builders for the ACD tests, and a timeline runner that behaves like the binding.

``Run.at(t, *inputs)`` first fires every timer due by ``t`` at its own time
(the binding calls ``advance`` at ``next_deadline()``), then handles the
inputs at ``t``.  Timelines read ``label@seconds detail``:
``offer@0 c1 1001``, ``1001@15 not-ready missed``, ``fallback@60 c1 max-wait voicemail``.
"""

from __future__ import annotations

from acd.distributor import Distributor
from acd.effects import AgentChanged, Effect, Fallback, Offer, Overflowed, Relaxed
from acd.inputs import Input, Login
from acd.model import AcdSetup, AgentProfile, AgentState, QueueRules


def agent(name: str, *queues: str | tuple[str, int], skills: dict[str, int] | None = None,
          interface: str | None = "default") -> AgentProfile:
    """A profile: queues as names (penalty 0) or (name, penalty); phone PJSIP/<name> by default."""
    members = tuple((q, 0) if isinstance(q, str) else q for q in queues)
    phone = f"PJSIP/{name}" if interface == "default" else interface
    return AgentProfile(name, phone, tuple(sorted((skills or {}).items())), members)


def setup(queues: list[QueueRules], agents: list[AgentProfile]) -> AcdSetup:
    return AcdSetup(tuple(queues), tuple(agents))


def describe(effect: Effect, t: float) -> str:
    """One timeline line; ``t`` is the time of the step for effects that carry none."""
    if isinstance(effect, Offer):
        return f"offer@{t:g} {effect.call_id} {effect.agent}"
    if isinstance(effect, AgentChanged):
        reason = f" {effect.reason}" if effect.reason else ""
        return f"{effect.agent}@{effect.at:g} {effect.state.value}{reason}"
    if isinstance(effect, Fallback):
        return f"fallback@{t:g} {effect.call_id} {effect.reason} {effect.action}"
    if isinstance(effect, Overflowed):
        return f"overflow@{t:g} {effect.call_id} {effect.to_queue}"
    if isinstance(effect, Relaxed):
        return f"relaxed@{t:g} {effect.call_id}"
    raise AssertionError(f"unexpected effect {effect!r}")


class Run:
    """A distributor driven on a timeline, recording every effect with its time."""

    def __init__(self, acd_setup: AcdSetup, now: float = 0.0,
                 distributor: Distributor | None = None) -> None:
        self.distributor = distributor or Distributor(acd_setup, now)
        self.now = now
        self.log: list[tuple[float, Effect]] = []

    def until(self, t: float) -> list[Effect]:
        """Fire the timers due by ``t``, each at its deadline."""
        out: list[Effect] = []
        while (deadline := self.distributor.next_deadline()) is not None and deadline <= t:
            self.now = max(self.now, deadline)
            out += self._record(self.distributor.advance(deadline), self.now)
        self.now = max(self.now, t)
        return out

    def at(self, t: float, *inputs: Input) -> list[Effect]:
        out = self.until(t)
        for inp in inputs:
            out += self._record(self.distributor.handle(inp, t), t)
        return out

    def login(self, t: float, *names: str, ready: bool = True) -> list[Effect]:
        return self.at(t, *(Login(name, ready=ready) for name in names))

    def _record(self, effects: list[Effect], t: float) -> list[Effect]:
        self.log += [(t, e) for e in effects]
        return effects

    def timeline(self, since: float = float("-inf"), agents: bool = True) -> list[str]:
        """The recorded effects from ``since`` on; ``agents=False`` leaves out agent changes."""
        return [describe(e, t) for t, e in self.log
                if t >= since and (agents or not isinstance(e, AgentChanged))]

    def offers(self) -> list[str]:
        return [describe(e, t) for t, e in self.log if isinstance(e, Offer)]

    def state(self, name: str) -> AgentState:
        view = self.distributor.agent(name)
        assert view is not None
        return view.state


def test_describe_names_every_effect_kind():
    """The timeline helper renders each effect as label@time detail."""
    changed = AgentChanged("1001", AgentState.NOT_READY, "missed", AgentState.RESERVED, None, 15.0, 15.0)
    assert [describe(e, 15.0) for e in (
        Offer("c1", "1001", "PJSIP/1001", "sales", 15.0), changed,
        Fallback("c1", "sales", "max-wait", "voicemail", 60.0),
        Overflowed("c1", "sales", "support", 30.0), Relaxed("c1", "sales", 20.0))] == [
        "offer@15 c1 1001", "1001@15 not-ready missed", "fallback@15 c1 max-wait voicemail",
        "overflow@15 c1 support", "relaxed@15 c1"]


def test_run_fires_timers_at_their_own_time():
    """A step at t=100 first fires a wrap-up end due at 12 at 12, not at 100."""
    from acd.inputs import Answered, Enqueue, Released
    run = Run(setup([QueueRules("sales", wrap_up_seconds=10)], [agent("1001", "sales")]))
    run.login(0, "1001")
    run.at(1, Enqueue("c1", "sales"))
    run.at(2, Answered("c1", "1001"), Released("c1", "1001"))
    run.at(100)
    assert run.timeline(since=2) == ["1001@2 on-call", "1001@2 wrap-up", "1001@12 ready"]
