"""What a desktop may ask the daemon, and the answer it gets (a ``result`` frame with the request's ``id``).

Agents act on themselves: their ACD state (``ready``, ``not_ready``,
``login``, ``logout``), their wrap-up (``wrap_up``: a disposition code and
notes saved on the call's contact record, then ready or more time), their
call (``hold``, ``unhold``, ``hangup``, ``transfer``, ``cancel_transfer``,
``dial``), tickets
(``ticket``: open one linked to the call, or change one) and customers
(``search``, ``history``).  Supervisors and admins also ``spy`` (listen,
whisper, barge) and ``force_state`` (an agent not ready or logged out), on
the agents of their scope only (``agent_desktop.scope``: a supervisor's
groups; admins everyone).

A ``result`` says whether the daemon sent the request on (``ok``) or why
not (``error``); what then happens to a call arrives as ``call`` frames and
to an agent as ``agent`` frames (``agent_desktop.call_feed``): the UI never
assumes success.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable

from acd import inputs as inp
from agent_desktop.scope import Scope
from callcenter.aio import resolved
from callcenter.routing.call_actions import ActionRefused
from crm_core.errors import CrmError

logger = logging.getLogger(__name__)

CODE = re.compile(r"[-_0-9A-Za-z]{1,32}")
MAX_NOTES = 4000
SUPERVISOR_ROLES = frozenset({"supervisor", "admin"})
AGENT_ACTIONS = frozenset({"ready", "not_ready", "login", "logout", "wrap_up", "hold", "unhold", "hangup",
                           "transfer", "cancel_transfer", "dial", "ticket", "search", "history"})
SUPERVISOR_ACTIONS = frozenset({"spy", "force_state"})
ACTIONS = AGENT_ACTIONS | SUPERVISOR_ACTIONS


class Refused(Exception):
    """The request is refused; ``str()`` is the reason shown to the person."""


def _text(body: dict[str, Any], name: str, limit: int = 64, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Refused(f"'{name}' must be a text of 1 to {limit} characters")
    return value.strip()


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


class DesktopActions:
    def __init__(self, acd: Callable[[], Any], calls: Callable[[], Any], store: Callable[[], Any],
                 wrap_up_record: Callable[..., Any]) -> None:
        self._acd = acd
        self._calls = calls
        self._store = store
        self._wrap_up_record = wrap_up_record

    async def handle(self, agent: str, role: str, kind: str, body: dict[str, Any], scope: Scope) -> dict[str, Any]:
        """The ``result`` body for one request of ``agent`` (with ``role``, seeing ``scope``)."""
        try:
            if kind not in ACTIONS:
                raise Refused(f"unknown request {kind!r}")
            if kind in SUPERVISOR_ACTIONS:
                if role not in SUPERVISOR_ROLES:
                    raise Refused(f"{kind} is for supervisors")
                target = _text(body, "agent")
                if not scope.sees_agent(target):
                    logger.info("%s by %s refused: agent %s is outside their groups", kind, agent, target)
                    raise Refused(f"agent {target} is not in your groups")
            return {"ok": True, **(await getattr(self, f"_{kind}")(agent, body) or {})}
        except (Refused, ActionRefused, CrmError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:   # a failing port (CRM down): the desktop is told, the connection stays
            logger.exception("desktop request %s of %s failed", kind, agent)
            return {"ok": False, "error": f"{kind} failed: {type(exc).__name__}"}

    async def _acd_command(self, command: inp.Input) -> dict[str, Any]:
        acd = self._acd()
        if acd is None:
            raise Refused("the ACD is not running")
        answer = await acd.command(command)
        if not answer.get("ok"):
            raise Refused(answer.get("error", "refused"))
        return {"agent": answer.get("agent")}

    # -- the agent's state -----------------------------------------------------------------------------
    async def _ready(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._acd_command(inp.SetReady(agent))

    async def _not_ready(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        reason = _text(body, "reason", 32, required=False) or "break"
        if not CODE.fullmatch(reason):
            raise Refused("'reason' is a code of letters, digits, '-' and '_'")
        return await self._acd_command(inp.SetNotReady(agent, reason))

    async def _login(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        queues = body.get("queues")
        if queues is not None and (not isinstance(queues, list) or not all(isinstance(q, str) for q in queues)):
            raise Refused("'queues' is a list of queue names")
        return await self._acd_command(inp.Login(agent, None, tuple(queues) if queues is not None else None,
                                                 body.get("ready") is True))

    async def _logout(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._acd_command(inp.Logout(agent))

    async def _wrap_up(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        """Save the disposition and notes on the call's record; then end wrap-up (``done``) or ``extend`` it."""
        call_id = _text(body, "call_id")
        disposition = _text(body, "disposition", 32, required=False)
        if disposition is not None and not CODE.fullmatch(disposition):
            raise Refused("'disposition' is a code of letters, digits, '-' and '_'")
        notes = body.get("notes")
        if notes is not None and (not isinstance(notes, str) or len(notes) > MAX_NOTES):
            raise Refused(f"'notes' is a text of at most {MAX_NOTES} characters")
        if disposition is not None or notes is not None:
            contact = await resolved(self._store().contact(call_id))
            if contact is None:
                raise Refused(f"no call {call_id} in the contact log")
            if contact.agent not in (None, agent):
                raise Refused(f"call {call_id} is not yours")
            self._wrap_up_record(call_id, agent, disposition, notes, contact.started_at)
        extend = body.get("extend")
        if extend is not None:
            if isinstance(extend, bool) or not isinstance(extend, (int, float)) or not 0 < extend <= 3600:
                raise Refused("'extend' is a number of seconds from 1 to 3600")
            return await self._acd_command(inp.ExtendWrapUp(agent, float(extend)))
        if body.get("done", True):
            return await self._acd_command(inp.EndWrapUp(agent))
        return {}

    # -- the agent's call ----------------------------------------------------------------------------
    async def _hold(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"call_id": await resolved(self._calls().hold(agent))}

    async def _unhold(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"call_id": await resolved(self._calls().unhold(agent))}

    async def _hangup(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"call_id": await resolved(self._calls().hangup(agent))}

    async def _transfer(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        target = _text(body, "target")
        kind = _text(body, "kind", 16, required=False) or "blind"
        return {"call_id": await resolved(self._calls().transfer(agent, target, kind))}

    async def _cancel_transfer(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"call_id": await resolved(self._calls().cancel_transfer(agent))}

    async def _dial(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        await resolved(self._calls().dial(agent, _text(body, "number", 32)))
        return {}

    # -- CRM -----------------------------------------------------------------------------------------
    async def _ticket(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        from crm_core.tickets import NewTicket

        store = self._store()
        if body.get("ticket_id") is not None:
            ticket_id = body["ticket_id"]
            if isinstance(ticket_id, bool) or not isinstance(ticket_id, int):
                raise Refused("'ticket_id' is a number")
            unknown = sorted(set(body) - {"type", "v", "id", "ticket_id", "call_id", "status", "priority", "owner",
                                          "note"})
            if unknown:
                raise Refused(f"a ticket change takes status, priority, owner and note, not {', '.join(unknown)}")
            changes = {k: body[k] for k in ("status", "priority", "owner", "note") if k in body}
            for name, value in changes.items():
                limit = MAX_NOTES if name == "note" else 64
                if not isinstance(value, str) or len(value) > limit:
                    raise Refused(f"'{name}' must be a text of at most {limit} characters")
            summary = await resolved(store.change_ticket(ticket_id, agent, **changes))
            if isinstance(body.get("call_id"), str):
                await resolved(store.link_contact(ticket_id, body["call_id"], agent))
            return {"ticket": _plain(summary)}
        customer_id = body.get("customer_id")
        if customer_id is not None and (isinstance(customer_id, bool) or not isinstance(customer_id, int)):
            raise Refused("'customer_id' is a number")
        description = body.get("description")
        if description is not None and (not isinstance(description, str) or len(description) > MAX_NOTES):
            raise Refused(f"'description' is a text of at most {MAX_NOTES} characters")
        call_id = body.get("call_id") if isinstance(body.get("call_id"), str) else None
        summary = await resolved(store.open_ticket(NewTicket(
            kind=_text(body, "kind", 32, required=False) or "consultation", subject=_text(body, "subject", 200),
            created_by=agent, customer_id=customer_id, description=description,
            linkedids=(call_id,) if call_id else (),
            idempotency_key=_text(body, "key", 64, required=False))))
        return {"ticket": _plain(summary)}

    async def _search(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        found = await resolved(self._store().search(_text(body, "query", 100)))
        return {"customers": _plain(list(found))}

    async def _history(self, agent: str, body: dict[str, Any]) -> dict[str, Any]:
        customer_id = body.get("customer_id")
        if isinstance(customer_id, bool) or not isinstance(customer_id, int):
            raise Refused("'customer_id' is a number")
        return {"history": _plain(await resolved(self._store().history(customer_id)))}

    # -- supervisors ---------------------------------------------------------------------------------
    async def _spy(self, supervisor: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"call_id": await resolved(self._calls().spy(supervisor, _text(body, "agent"),
                                                               _text(body, "mode", 16)))}

    async def _force_state(self, supervisor: str, body: dict[str, Any]) -> dict[str, Any]:
        agent = _text(body, "agent")
        state = body.get("state")
        logger.info("supervisor %s forces agent %s to %s", supervisor, agent, state)
        if state == "logged-out":
            return await self._acd_command(inp.Logout(agent))
        if state == "not-ready":
            return await self._acd_command(inp.SetNotReady(agent, "forced"))
        raise Refused("'state' is not-ready or logged-out")
