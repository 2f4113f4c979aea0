"""Agents, queues and disposition codes: the configuration the ACD and desktop read.

``thd_acd_config`` reads it all at once as frozen records, so the ACD can
validate it and swap it in atomically.  Writes replace an agent's skills
and queues as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from crm_core import validate as v
from crm_core.db import read_conn, write_tx
from crm_core.errors import InvalidInput
from crm_core.models import ROLES, agent_queues, agent_skills, agents, disposition_codes, queues
from crm_core.passwords import hash_password, verify_password
from crm_core.records import AcdConfig, AgentConfig, DispositionCode, QueueConfig


@dataclass(frozen=True)
class NewAgent:
    login: str
    display_name: str
    password: str | None = None  # stored as a scrypt hash; None keeps the current one
    interface: str | None = None  # e.g. PJSIP/1001
    role: str = "agent"
    active: bool = True
    skills: tuple[tuple[str, int], ...] = ()  # (skill, proficiency 1-5)
    queues: tuple[tuple[str, int], ...] = ()  # (queue name, penalty)


def _upsert_row(conn: Connection, table: object, key: dict[str, object], values: dict[str, object]) -> int | None:
    """Update the row matching ``key`` or insert it; return its id (if the table has one)."""
    cols = table.c  # type: ignore[attr-defined]
    where = [cols[k] == x for k, x in key.items()]
    has_id = "id" in cols
    found = conn.execute(select(cols["id"] if has_id else cols[next(iter(key))]).where(*where)).first()
    if found is None:
        result = conn.execute(insert(table).values(**key, **values))  # type: ignore[arg-type]
        return result.inserted_primary_key[0] if has_id else None
    if values:
        conn.execute(update(table).where(*where).values(**values))  # type: ignore[arg-type]
    return found[0] if has_id else None


def thd_save_queue(engine: Engine, queue: QueueConfig) -> None:
    v.text("name", queue.name, 64, required=True)
    v.text("display_name", queue.display_name, 100, required=True)
    for skill, level in queue.required_skills:
        v.text("required_skills", skill, 64, required=True)
        v.integer(f"required_skills {skill}", level, 1, 5, required=True)
    with write_tx(engine) as conn:
        _upsert_row(conn, queues, {"name": queue.name}, {
            "display_name": queue.display_name, "required_skills": dict(queue.required_skills),
            "priority": queue.priority, "service_level_seconds": queue.service_level_seconds})


def thd_save_disposition(engine: Engine, code: DispositionCode) -> None:
    v.text("code", code.code, 32, required=True)
    v.text("label", code.label, 100, required=True)
    v.text("category", code.category, 32, required=True)
    with write_tx(engine) as conn:
        _upsert_row(conn, disposition_codes, {"code": code.code}, {
            "label": code.label, "category": code.category, "needs_ticket": code.needs_ticket,
            "active": code.active})


def thd_save_agent(engine: Engine, agent: NewAgent) -> int:
    """Create or update an agent (by login); skills and queues are replaced."""
    v.text("login", agent.login, 64, required=True)
    v.text("display_name", agent.display_name, 100, required=True)
    v.text("interface", agent.interface, 100)
    v.choice("role", agent.role, ROLES)
    for skill, level in agent.skills:
        v.text("skills", skill, 64, required=True)
        v.integer(f"skills {skill}", level, 1, 5, required=True)
    values: dict[str, object] = {"display_name": agent.display_name, "interface": agent.interface,
                                 "role": agent.role, "active": agent.active}
    if agent.password is not None:
        values["password_hash"] = hash_password(agent.password)
    with write_tx(engine) as conn:
        queue_ids = dict(conn.execute(select(queues.c.name, queues.c.id)).all())
        missing = [name for name, _ in agent.queues if name not in queue_ids]
        if missing:
            raise InvalidInput("queues", f"no such queue: {', '.join(missing)}")
        agent_id = _upsert_row(conn, agents, {"login": agent.login}, values)
        conn.execute(delete(agent_skills).where(agent_skills.c.agent_id == agent_id))
        conn.execute(delete(agent_queues).where(agent_queues.c.agent_id == agent_id))
        if agent.skills:
            conn.execute(insert(agent_skills), [{"agent_id": agent_id, "skill": s, "proficiency": p}
                                                for s, p in agent.skills])
        if agent.queues:
            conn.execute(insert(agent_queues), [{"agent_id": agent_id, "queue_id": queue_ids[q], "penalty": p}
                                                for q, p in agent.queues])
    assert agent_id is not None
    return agent_id


def _agents(conn: Connection, *where: Any) -> tuple[AgentConfig, ...]:
    """Agents (matching ``where``) with their skills and queues, by login."""
    rows = conn.execute(select(agents).where(*where).order_by(agents.c.login)).all()
    ids = [a.id for a in rows]
    skills: dict[int, list[tuple[str, int]]] = {}
    member: dict[int, list[tuple[str, int]]] = {}
    if ids:
        for row in conn.execute(select(agent_skills).where(agent_skills.c.agent_id.in_(ids))
                                .order_by(agent_skills.c.skill)):
            skills.setdefault(row.agent_id, []).append((row.skill, row.proficiency))
        for row in conn.execute(select(agent_queues.c.agent_id, queues.c.name, agent_queues.c.penalty)
                                .join(queues, queues.c.id == agent_queues.c.queue_id)
                                .where(agent_queues.c.agent_id.in_(ids)).order_by(queues.c.name)):
            member.setdefault(row.agent_id, []).append((row.name, row.penalty))
    return tuple(AgentConfig(a.login, a.display_name, a.interface, a.role, a.active,
                             tuple(skills.get(a.id, ())), tuple(member.get(a.id, ()))) for a in rows)


def thd_acd_config(engine: Engine) -> AcdConfig:
    with read_conn(engine) as conn:
        agent_configs = _agents(conn)
        queue_rows = conn.execute(select(queues).order_by(queues.c.name)).all()
        code_rows = conn.execute(select(disposition_codes).order_by(disposition_codes.c.code)).all()
    return AcdConfig(
        agents=agent_configs,
        queues=tuple(QueueConfig(q.name, q.display_name, tuple(sorted((q.required_skills or {}).items())),
                                 q.priority, q.service_level_seconds) for q in queue_rows),
        dispositions=tuple(DispositionCode(c.code, c.label, c.category, c.needs_ticket, c.active)
                           for c in code_rows))


def thd_check_password(engine: Engine, login: str, password: str) -> AgentConfig | None:
    """The agent, if ``login`` is an active agent and ``password`` is theirs; else None."""
    with read_conn(engine) as conn:
        stored = conn.execute(select(agents.c.password_hash)
                              .where(agents.c.login == login, agents.c.active.is_(True))).scalar()
        if not verify_password(password, stored):
            return None
        found = _agents(conn, agents.c.login == login)
    return found[0] if found else None
