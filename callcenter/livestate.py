"""Live state shared by the daemons of a center.

Two implementations with the same async API and the same contract tests:

* ``InProcessLiveState``: one daemon, nothing to install (the default);
* ``RedisLiveState``: several daemons; reservation is atomic in Redis, so two
  daemons can never hand the same agent two calls.

``reserve_agent`` is the primitive the ACD builds on: it succeeds for exactly
one caller until the reservation is released by its holder or expires.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class LiveState(Protocol):
    async def ping(self) -> None: ...
    async def reserve_agent(self, agent_id: str, call_id: str, ttl_ms: int) -> bool: ...
    async def release_agent(self, agent_id: str, call_id: str) -> bool: ...
    async def reservation_of(self, agent_id: str) -> str | None: ...
    async def set_agent_state(self, agent_id: str, fields: dict[str, str]) -> None: ...
    async def agent_state(self, agent_id: str) -> dict[str, str]: ...
    async def close(self) -> None: ...


class InProcessLiveState:
    """Single-daemon live state; expiry follows the injected clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._reservations: dict[str, tuple[str, float]] = {}
        self._agents: dict[str, dict[str, str]] = {}

    async def ping(self) -> None:
        return None

    def _current(self, agent_id: str) -> str | None:
        held = self._reservations.get(agent_id)
        if held is None:
            return None
        call_id, expires = held
        if self._clock() >= expires:
            del self._reservations[agent_id]
            return None
        return call_id

    async def reserve_agent(self, agent_id: str, call_id: str, ttl_ms: int) -> bool:
        if self._current(agent_id) is not None:
            return False
        self._reservations[agent_id] = (call_id, self._clock() + ttl_ms / 1000.0)
        return True

    async def release_agent(self, agent_id: str, call_id: str) -> bool:
        if self._current(agent_id) == call_id:
            del self._reservations[agent_id]
            return True
        return False

    async def reservation_of(self, agent_id: str) -> str | None:
        return self._current(agent_id)

    async def set_agent_state(self, agent_id: str, fields: dict[str, str]) -> None:
        self._agents.setdefault(agent_id, {}).update(fields)

    async def agent_state(self, agent_id: str) -> dict[str, str]:
        return dict(self._agents.get(agent_id, {}))

    async def close(self) -> None:
        return None


class RedisLiveState:
    """Live state in Redis (redis.asyncio on the daemon's loop)."""

    def __init__(self, url: str, *, prefix: str = "cc:", client: Any = None):
        import redis.asyncio as aioredis

        self._redis = client or aioredis.Redis.from_url(url, decode_responses=True,
                                                        socket_connect_timeout=5, socket_timeout=5)
        self._prefix = prefix
        self._release = self._redis.register_script(RELEASE_SCRIPT)

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def ping(self) -> None:
        await self._redis.ping()

    async def reserve_agent(self, agent_id: str, call_id: str, ttl_ms: int) -> bool:
        return bool(await self._redis.set(self._key("resv", agent_id), call_id, nx=True, px=ttl_ms))

    async def release_agent(self, agent_id: str, call_id: str) -> bool:
        return bool(await self._release(keys=[self._key("resv", agent_id)], args=[call_id]))

    async def reservation_of(self, agent_id: str) -> str | None:
        return await self._redis.get(self._key("resv", agent_id))

    async def set_agent_state(self, agent_id: str, fields: dict[str, str]) -> None:
        if fields:
            await self._redis.hset(self._key("agent", agent_id), mapping=fields)

    async def agent_state(self, agent_id: str) -> dict[str, str]:
        return await self._redis.hgetall(self._key("agent", agent_id))

    async def close(self) -> None:
        await self._redis.aclose()
