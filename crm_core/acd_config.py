"""Agents, queues and disposition codes: the configuration the ACD and desktop read.

``thd_acd_config`` reads it all at once as frozen records, so the ACD can
validate it and swap it in atomically; ``thd_acd_config_stamp`` is the
cheap question "did anything change?" to ask before that.  Writes replace
an agent's skills, queues and groups (a queue's groups) as a whole, and
stamp the agent or queue row with ``updated_at`` to the microsecond (the
server's clock on SQLite has whole seconds), so the stamp sees every write
made through these functions.

Groups are names (checked like skills and queue names: 1 to 64 characters,
no control characters, each once) on agents and queues; a supervisor sees
the queues and agents sharing a group with them (``agent_desktop.scope``).

What the ACD reads back from the contact log after a restart is here too:
``thd_contact_figures`` (its statistics) and ``thd_last_agent`` (sticky
routing).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row

from crm_core import validate as v
from crm_core.db import read_conn, write_tx
from crm_core.errors import InvalidInput, NotFound
from crm_core.models import (
    ENGINES,
    FALLBACK_ACTIONS,
    NO_AGENTS_RULES,
    ROLES,
    STRATEGIES,
    agent_groups,
    agent_queues,
    agent_skills,
    agents,
    contacts,
    disposition_codes,
    queue_groups,
    queues,
)
from crm_core.passwords import hash_password, verify_password
from crm_core.records import AcdConfig, AgentConfig, ContactFigure, DispositionCode, OpeningHours, QueueConfig

#: Leave a field as it is (``thd_change_agent``, ``thd_change_queue``).
UNSET: Any = object()
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d|24:00")
_INTERFACE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*/[^\s/][^\s]*")
_DAY = 86400


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
    groups: tuple[str, ...] = ()  # group names


def _now() -> datetime:
    return datetime.now(timezone.utc)


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


# -- opening hours ---------------------------------------------------------------------------------------------


def hours_from_json(doc: Any, field: str = "hours") -> OpeningHours | None:
    """``{"tz": ..., "days": {"mon": [["08:00", "18:00"]], ...}}`` checked, as ``OpeningHours``
    (days in week order, spans sorted, closed days left out); None stays None (always open)."""
    if doc is None:
        return None
    if not isinstance(doc, Mapping):
        raise InvalidInput(field, f"expected an object with tz and days, got {type(doc).__name__}")
    unknown = sorted(set(doc) - {"tz", "days"})
    if unknown:
        raise InvalidInput(field, f"unknown key {unknown[0]!r} (expected tz and days)")
    tz = doc.get("tz")
    if not isinstance(tz, str) or not tz:
        raise InvalidInput(field, "tz: expected a time zone name like Asia/Shanghai")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(field, f"tz: unknown time zone {tz!r}") from None
    days = doc.get("days")
    if not isinstance(days, Mapping):
        raise InvalidInput(field, 'days: expected an object like {"mon": [["08:00", "18:00"]]}')
    week = []
    for day, spans in days.items():
        if day not in DAYS:
            raise InvalidInput(field, f"days: {day!r} is not one of {', '.join(DAYS)}")
        if not isinstance(spans, (list, tuple)):
            raise InvalidInput(field, f"{day}: expected a list of [open, close] pairs")
        parsed = []
        for span in spans:
            if not (isinstance(span, (list, tuple)) and len(span) == 2
                    and all(isinstance(t, str) and _TIME.fullmatch(t) for t in span)):
                raise InvalidInput(field, f"{day}: expected [\"HH:MM\", \"HH:MM\"], got {span!r}")
            start, end = span
            if start == "24:00" or start >= end:
                raise InvalidInput(field, f"{day}: {start}-{end} does not end after it starts "
                                          f"(split a span past midnight over two days)")
            parsed.append((start, end))
        parsed.sort()
        for (_, end), (start, _) in zip(parsed, parsed[1:]):
            if start < end:
                raise InvalidInput(field, f"{day}: spans overlap at {start}")
        if parsed:
            week.append((day, tuple(parsed)))
    week.sort(key=lambda item: DAYS.index(item[0]))
    return OpeningHours(tz, tuple(week))


def hours_to_json(hours: OpeningHours | None) -> dict[str, Any] | None:
    if hours is None:
        return None
    return {"tz": hours.tz, "days": {day: [list(span) for span in spans] for day, spans in hours.days}}


# -- queues -----------------------------------------------------------------------------------------------------


def _skills(field: str, skills: Any) -> None:
    seen = set()
    for skill, level in skills:
        v.text(field, skill, 64, required=True)
        v.integer(f"{field} {skill}", level, 1, 5, required=True)
        if skill in seen:
            raise InvalidInput(field, f"{skill} is given twice")
        seen.add(skill)


def _groups(field: str, groups: Any) -> tuple[str, ...]:
    """Group names checked (text of 1 to 64 characters, each once), sorted."""
    if isinstance(groups, str) or not isinstance(groups, (tuple, list, set, frozenset)):
        raise InvalidInput(field, f"expected a list of group names, got {type(groups).__name__}")
    seen: set[str] = set()
    for name in groups:
        v.text(field, name, 64, required=True)
        if name in seen:
            raise InvalidInput(field, f"{name} is given twice")
        seen.add(name)
    return tuple(sorted(seen))


def _replace_groups(conn: Connection, table: Any, owner: str, owner_id: int, groups: tuple[str, ...]) -> None:
    conn.execute(delete(table).where(table.c[owner] == owner_id))
    if groups:
        conn.execute(insert(table), [{owner: owner_id, "name": name} for name in groups])


def _groups_of(conn: Connection, table: Any, owner: str, ids: list[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    if ids:
        for row in conn.execute(select(table.c[owner], table.c.name).where(table.c[owner].in_(ids))
                                .order_by(table.c.name)):
            found.setdefault(row[0], []).append(row[1])
    return {owner_id: tuple(names) for owner_id, names in found.items()}


def check_queue(queue: QueueConfig) -> QueueConfig:
    """Check a queue on its own (not against the others); return it with its hours in canonical form and
    its groups sorted."""
    v.text("name", queue.name, 64, required=True)
    v.text("display_name", queue.display_name, 100, required=True)
    _skills("required_skills", queue.required_skills)
    v.integer("priority", queue.priority, -1000, 1000, required=True)
    v.integer("service_level_seconds", queue.service_level_seconds, 1, 3600, required=True)
    v.choice("strategy", queue.strategy, STRATEGIES)
    v.choice("engine", queue.engine, ENGINES)
    v.integer("ring_seconds", queue.ring_seconds, 1, 600, required=True)
    v.integer("wrap_up_seconds", queue.wrap_up_seconds, 0, 3600, required=True)
    v.integer("relax_after", queue.relax_after, 0, _DAY)
    v.integer("relaxed_proficiency", queue.relaxed_proficiency, 1, 5, required=True)
    v.integer("overflow_after", queue.overflow_after, 0, _DAY)
    v.text("overflow_to", queue.overflow_to, 64)
    v.integer("max_wait", queue.max_wait, 1, _DAY)
    v.choice("on_max_wait", queue.on_max_wait, FALLBACK_ACTIONS)
    v.choice("no_agents", queue.no_agents, NO_AGENTS_RULES)
    v.integer("callback_priority", queue.callback_priority, -1000, 1000, required=True)
    v.integer("callback_retries", queue.callback_retries, 1, 20, required=True)
    v.integer("callback_spacing", queue.callback_spacing, 0, 7 * _DAY, required=True)
    v.integer("sticky_days", queue.sticky_days, 0, 3650, required=True)
    if queue.hours is not None and not isinstance(queue.hours, OpeningHours):
        raise InvalidInput("hours", f"expected OpeningHours, got {type(queue.hours).__name__}")
    if queue.hours is not None and len({day for day, _ in queue.hours.days}) != len(queue.hours.days):
        raise InvalidInput("hours", "a day is given twice")
    hours = hours_from_json(hours_to_json(queue.hours))
    groups = _groups("groups", queue.groups)
    if queue.overflow_to == queue.name:
        raise InvalidInput("overflow_to", "a queue cannot overflow to itself")
    if queue.overflow_to is None and queue.overflow_after is not None:
        raise InvalidInput("overflow_to", "is required with overflow_after")
    if queue.overflow_to is None and queue.no_agents == "overflow":
        raise InvalidInput("overflow_to", "is required when no_agents is overflow")
    return replace(queue, hours=hours, groups=groups)


def _queue_values(queue: QueueConfig) -> dict[str, object]:
    return {"display_name": queue.display_name, "required_skills": dict(queue.required_skills),
            "priority": queue.priority, "service_level_seconds": queue.service_level_seconds,
            "strategy": queue.strategy, "engine": queue.engine, "ring_seconds": queue.ring_seconds,
            "wrap_up_seconds": queue.wrap_up_seconds, "relax_after": queue.relax_after,
            "relaxed_proficiency": queue.relaxed_proficiency, "overflow_after": queue.overflow_after,
            "overflow_to": queue.overflow_to, "max_wait": queue.max_wait, "on_max_wait": queue.on_max_wait,
            "no_agents": queue.no_agents, "callback_priority": queue.callback_priority,
            "callback_retries": queue.callback_retries, "callback_spacing": queue.callback_spacing,
            "sticky_days": queue.sticky_days, "hours": hours_to_json(queue.hours), "updated_at": _now()}


def _queue_of(row: Row[Any], groups: tuple[str, ...] = ()) -> QueueConfig:
    return QueueConfig(
        row.name, row.display_name, tuple(sorted((row.required_skills or {}).items())), row.priority,
        row.service_level_seconds, strategy=row.strategy, engine=row.engine, ring_seconds=row.ring_seconds,
        wrap_up_seconds=row.wrap_up_seconds, relax_after=row.relax_after,
        relaxed_proficiency=row.relaxed_proficiency, overflow_after=row.overflow_after,
        overflow_to=row.overflow_to, max_wait=row.max_wait, on_max_wait=row.on_max_wait, no_agents=row.no_agents,
        callback_priority=row.callback_priority, callback_retries=row.callback_retries,
        callback_spacing=row.callback_spacing, sticky_days=row.sticky_days, hours=hours_from_json(row.hours),
        groups=groups)


def _queues(conn: Connection, *where: Any) -> tuple[QueueConfig, ...]:
    """Queues (matching ``where``) with their groups, by name."""
    rows = conn.execute(select(queues).where(*where).order_by(queues.c.name)).all()
    groups = _groups_of(conn, queue_groups, "queue_id", [q.id for q in rows])
    return tuple(_queue_of(q, groups.get(q.id, ())) for q in rows)


def _save_queue(conn: Connection, queue: QueueConfig) -> None:
    queue = check_queue(queue)
    if queue.overflow_to is not None and conn.execute(
            select(queues.c.id).where(queues.c.name == queue.overflow_to)).first() is None:
        raise InvalidInput("overflow_to", f"no such queue: {queue.overflow_to}")
    queue_id = _upsert_row(conn, queues, {"name": queue.name}, _queue_values(queue))
    assert queue_id is not None
    _replace_groups(conn, queue_groups, "queue_id", queue_id, queue.groups)


def thd_save_queue(engine: Engine, queue: QueueConfig) -> None:
    """Create or update a queue (by name); ``overflow_to`` must name another queue already saved."""
    check_queue(queue)
    with write_tx(engine) as conn:
        _save_queue(conn, queue)


def thd_change_queue(engine: Engine, name: str, /, **changes: Any) -> tuple[QueueConfig, bool]:
    """Change the given fields of queue ``name``, creating it (display name = name) if there is none;
    return the queue as saved and whether it was created."""
    v.text("name", name, 64, required=True)
    unknown = sorted(set(changes) - (set(QueueConfig.__dataclass_fields__) - {"name"}))
    if unknown:
        raise TypeError(f"thd_change_queue: unknown field {unknown[0]!r}")
    with write_tx(engine) as conn:
        row = conn.execute(select(queues.c.id).where(queues.c.name == name).with_for_update()).first()
        current = _queues(conn, queues.c.name == name)[0] if row is not None else QueueConfig(name, name, (), 0, 20)
        wanted = replace(current, **{k: x for k, x in changes.items() if x is not UNSET})
        _save_queue(conn, wanted)
        saved = _queues(conn, queues.c.name == name)[0]
    return saved, row is None


def thd_remove_queue(engine: Engine, name: str) -> int:
    """Remove a queue and its memberships; return how many agents were members.
    A queue another one overflows to is kept (``InvalidInput``)."""
    with write_tx(engine) as conn:
        queue_id = conn.execute(select(queues.c.id).where(queues.c.name == name)).scalar()
        if queue_id is None:
            raise NotFound(f"no queue {name}")
        feeding = conn.execute(select(queues.c.name).where(queues.c.overflow_to == name)
                               .order_by(queues.c.name)).scalars().all()
        if feeding:
            raise InvalidInput("name", f"{', '.join(feeding)} overflow{'s' if len(feeding) == 1 else ''} "
                                       f"to {name}: change {'it' if len(feeding) == 1 else 'them'} first")
        members = conn.execute(select(agent_queues.c.agent_id).where(agent_queues.c.queue_id == queue_id)
                               ).scalars().all()
        if members:  # their configuration changes: the config stamp must see it
            conn.execute(update(agents).where(agents.c.id.in_(members)).values(updated_at=_now()))
        conn.execute(delete(queues).where(queues.c.id == queue_id))
    return len(members)


def thd_queue(engine: Engine, name: str) -> QueueConfig | None:
    with read_conn(engine) as conn:
        found = _queues(conn, queues.c.name == name)
    return found[0] if found else None


def thd_save_disposition(engine: Engine, code: DispositionCode) -> None:
    v.text("code", code.code, 32, required=True)
    v.text("label", code.label, 100, required=True)
    v.text("category", code.category, 32, required=True)
    with write_tx(engine) as conn:
        _upsert_row(conn, disposition_codes, {"code": code.code}, {
            "label": code.label, "category": code.category, "needs_ticket": code.needs_ticket,
            "active": code.active})


# -- agents -----------------------------------------------------------------------------------------------------


def _check_agent(agent: NewAgent) -> None:
    v.text("login", agent.login, 64, required=True)
    v.text("display_name", agent.display_name, 100, required=True)
    if v.text("interface", agent.interface, 100) is not None and not _INTERFACE.fullmatch(agent.interface or ""):
        raise InvalidInput("interface", f"expected TECH/RESOURCE like PJSIP/6001, got {agent.interface!r}")
    v.choice("role", agent.role, ROLES)
    if not isinstance(agent.active, bool):
        raise InvalidInput("active", f"expected true or false, got {agent.active!r}")
    if agent.password is not None:
        v.text("password", agent.password, 200, required=True, controls="keep")
    _skills("skills", agent.skills)
    _groups("groups", agent.groups)
    seen = set()
    for name, penalty in agent.queues:
        v.text("queues", name, 64, required=True)
        v.integer(f"queues {name}", penalty, 0, 1000, required=True)
        if name in seen:
            raise InvalidInput("queues", f"{name} is given twice")
        seen.add(name)


def _save_agent(conn: Connection, agent: NewAgent, password_hash: str | None) -> int:
    """Save an agent checked by ``_check_agent``; ``password_hash`` None keeps the current one."""
    values: dict[str, object] = {"display_name": agent.display_name, "interface": agent.interface,
                                 "role": agent.role, "active": agent.active, "updated_at": _now()}
    if password_hash is not None:
        values["password_hash"] = password_hash
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
    _replace_groups(conn, agent_groups, "agent_id", agent_id, _groups("groups", agent.groups))
    return agent_id


def thd_save_agent(engine: Engine, agent: NewAgent) -> int:
    """Create or update an agent (by login); skills, queues and groups are replaced."""
    _check_agent(agent)
    password_hash = hash_password(agent.password) if agent.password is not None else None  # slow: not in the tx
    with write_tx(engine) as conn:
        return _save_agent(conn, agent, password_hash)


def thd_change_agent(engine: Engine, login: str, /, **changes: Any) -> tuple[AgentConfig, bool]:
    """Change the given fields of agent ``login`` (``NewAgent``'s), creating it (display name = login) if
    there is none; ``password`` None or left out keeps the current one.  Return the agent and whether it
    was created."""
    v.text("login", login, 64, required=True)
    unknown = sorted(set(changes) - (set(NewAgent.__dataclass_fields__) - {"login"}))
    if unknown:
        raise TypeError(f"thd_change_agent: unknown field {unknown[0]!r}")
    password = changes.get("password", UNSET)
    if password is not UNSET and password is not None:
        v.text("password", password, 200, required=True, controls="keep")
    password_hash = hash_password(password) if password not in (UNSET, None) else None  # slow: not in the tx
    with write_tx(engine) as conn:
        conn.execute(select(agents.c.id).where(agents.c.login == login).with_for_update())  # read, change, write
        found = _agents(conn, agents.c.login == login)
        if found:
            c = found[0]
            current = NewAgent(c.login, c.display_name, None, c.interface, c.role, c.active, c.skills, c.queues,
                               c.groups)
        else:
            current = NewAgent(login, login)
        wanted = replace(current, **{k: x for k, x in changes.items() if x is not UNSET})
        _check_agent(wanted)
        _save_agent(conn, wanted, password_hash)
        return _agents(conn, agents.c.login == login)[0], not found


def thd_remove_agent(engine: Engine, login: str) -> None:
    """Remove an agent with their skills and queues (customers who preferred them keep no preference;
    the contact log keeps their login)."""
    with write_tx(engine) as conn:
        if conn.execute(delete(agents).where(agents.c.login == login)).rowcount == 0:
            raise NotFound(f"no agent {login}")


def _agents(conn: Connection, *where: Any) -> tuple[AgentConfig, ...]:
    """Agents (matching ``where``) with their skills, queues and groups, by login."""
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
    groups = _groups_of(conn, agent_groups, "agent_id", ids)
    return tuple(AgentConfig(a.login, a.display_name, a.interface, a.role, a.active,
                             tuple(skills.get(a.id, ())), tuple(member.get(a.id, ())), groups.get(a.id, ()))
                 for a in rows)


def thd_agent(engine: Engine, login: str) -> AgentConfig | None:
    with read_conn(engine) as conn:
        found = _agents(conn, agents.c.login == login)
    return found[0] if found else None


# -- the whole configuration ------------------------------------------------------------------------------------


def thd_acd_config(engine: Engine) -> AcdConfig:
    with read_conn(engine) as conn:
        agent_configs = _agents(conn)
        queue_configs = _queues(conn)
        code_rows = conn.execute(select(disposition_codes).order_by(disposition_codes.c.code)).all()
    return AcdConfig(
        agents=agent_configs,
        queues=queue_configs,
        dispositions=tuple(DispositionCode(c.code, c.label, c.category, c.needs_ticket, c.active)
                           for c in code_rows))


def thd_acd_config_stamp(engine: Engine) -> tuple[int, int, int, str]:
    """(agents, queues, disposition codes, digest): changes whenever ``thd_acd_config`` would answer
    differently after a write made through this module (agents and queues by their ``updated_at``,
    which every save sets, disposition codes and group memberships by their content, so a group
    changed by hand in SQL is seen too).  Cheap enough to poll."""
    with read_conn(engine) as conn:
        agent_rows = conn.execute(select(agents.c.id, agents.c.updated_at).order_by(agents.c.id)).all()
        queue_rows = conn.execute(select(queues.c.id, queues.c.updated_at).order_by(queues.c.id)).all()
        code_rows = conn.execute(select(disposition_codes).order_by(disposition_codes.c.code)).all()
        group_rows = [conn.execute(select(t).order_by(*t.primary_key.columns)).all()
                      for t in (agent_groups, queue_groups)]
    digest = hashlib.blake2b(digest_size=12)
    for rows in (agent_rows, queue_rows, code_rows, *group_rows):
        digest.update(repr([tuple(r) for r in rows]).encode())
        digest.update(b"|")
    return len(agent_rows), len(queue_rows), len(code_rows), digest.hexdigest()


def thd_check_password(engine: Engine, login: str, password: str) -> AgentConfig | None:
    """The agent, if ``login`` is an active agent and ``password`` is theirs; else None."""
    with read_conn(engine) as conn:
        stored = conn.execute(select(agents.c.password_hash)
                              .where(agents.c.login == login, agents.c.active.is_(True))).scalar()
        if not verify_password(password, stored):
            return None
        found = _agents(conn, agents.c.login == login)
    return found[0] if found else None


# -- what the ACD reads back from the contact log ---------------------------------------------------------------


def thd_contact_figures(engine: Engine, since: datetime) -> tuple[ContactFigure, ...]:
    """Every call that reached a queue and started at or after ``since``, oldest first."""
    since = v.moment("since", since, required=True)  # type: ignore[assignment]
    c = contacts.c
    query = (select(c.queue, c.agent, c.enqueued_at, c.answered_at, c.ended_at, c.wait_seconds, c.talk_seconds,
                    c.hold_seconds, c.wrapup_seconds, c.abandoned, c.linkedid, c.started_at)
             .where(c.started_at >= since, c.queue.is_not(None), c.queue != "")
             .order_by(c.started_at, c.id))
    with read_conn(engine) as conn:
        return tuple(ContactFigure(*row) for row in conn.execute(query))


def thd_last_agent(engine: Engine, customer_id: int, since: datetime) -> str | None:
    """The agent (login) of the customer's newest call with an agent since ``since``, or None."""
    since = v.moment("since", since, required=True)  # type: ignore[assignment]
    c = contacts.c
    query = (select(c.agent).where(c.customer_id == customer_id, c.started_at >= since, c.agent.is_not(None),
                                   c.agent != "")
             .order_by(c.started_at.desc(), c.id.desc()).limit(1))
    with read_conn(engine) as conn:
        return conn.execute(query).scalar()
