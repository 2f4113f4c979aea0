"""The ACD's setup from the CRM configuration (``crm_core.records.AcdConfig``)."""

from __future__ import annotations

import logging
from typing import Any

from acd.model import AcdSetup, AgentProfile, QueueRules

logger = logging.getLogger(__name__)

#: QueueRules fields read from the CRM's queue record when it has them (same names).
_RULE_FIELDS = ("strategy", "engine", "ring_seconds", "wrap_up_seconds", "relax_after", "relaxed_proficiency",
                "overflow_after", "overflow_to", "max_wait", "on_max_wait", "no_agents", "callback_priority",
                "callback_retries", "callback_spacing", "sticky_days")
_FLOATS = {"ring_seconds", "wrap_up_seconds", "relax_after", "overflow_after", "max_wait", "callback_spacing"}


def setup_from_config(config: Any) -> AcdSetup:
    """Active agents and supervisors, every queue with its rules; both with their groups (for the
    supervisors' scope, ``agent_desktop.scope``; routing ignores them)."""
    queues = []
    for q in config.queues:
        values: dict[str, Any] = {"name": q.name, "skills": tuple(sorted(q.required_skills)),
                                  "service_level_seconds": float(q.service_level_seconds),
                                  "groups": frozenset(getattr(q, "groups", ()))}
        for name in _RULE_FIELDS:
            value = getattr(q, name, None)
            if value is not None:
                values[name] = float(value) if name in _FLOATS else value
        queues.append(QueueRules(**values))
    agents = tuple(AgentProfile(a.login, a.interface, tuple(sorted(a.skills)), tuple(a.queues),
                                frozenset(getattr(a, "groups", ())))
                   for a in config.agents if a.active and a.role in ("agent", "supervisor"))
    return AcdSetup(tuple(queues), agents)


def hours_from_config(config: Any) -> dict[str, Any]:
    """Queue -> its opening hours (``OpeningHours``; None: always open)."""
    return {q.name: getattr(q, "hours", None) for q in config.queues}
