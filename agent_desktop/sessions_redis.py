"""Desktop sessions shared by the daemons of a center through Redis.

A session is the key ``<prefix>session:<sha256 of the token, hex>`` (the token itself is never a key
and never logged) holding JSON ``{"agent", "role", "groups", "expires_at"}``, expiring with the
session.  A login writes it, a logout deletes it.  Each daemon keeps the sessions it has seen in its
``auth.SessionStore``, the cache: a token it does not know is looked up in Redis once, then served
from memory until it expires.

Logouts on other daemons reach the cache through ``recheck()``: the desktop server calls it every
``session_recheck_seconds``; it drops the cached sessions whose key is gone and returns them, and the
server closes their websockets.

Redis down: ``open`` raises ``SessionsUnavailable`` (the login answers 503), and so does a lookup of a
token not cached; cached sessions keep working.  A logout ends the session here at once and deletes
its key at the first recheck that reaches Redis again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from typing import Any

from agent_desktop.auth import Session, SessionStore

logger = logging.getLogger(__name__)

PREFIX = "cc:desktop:"
ROLES = ("agent", "supervisor", "admin")
#: Seconds a Redis command may take (connecting included) before sessions count as unavailable.
TIMEOUT = 2.0


class SessionsUnavailable(ConnectionError):
    """Redis did not answer: sessions cannot be opened or looked up."""


class BadSession(ValueError):
    """What Redis holds for a token is not a session."""


# -- pure parts ------------------------------------------------------------------------------------------


def key_of(prefix: str, token: str) -> str:
    """The Redis key of ``token``'s session: a hash, so the key never gives the token away."""
    return f"{prefix}session:{hashlib.sha256(token.encode('utf-8')).hexdigest()}"


def encode(session: Session) -> str:
    return json.dumps({"agent": session.agent, "role": session.role, "groups": sorted(session.groups),
                       "expires_at": session.expires_at}, ensure_ascii=False)


def decode(token: str, raw: bytes | str) -> Session:
    """The session ``raw`` (a key's value) describes; ``BadSession`` with the reason if it does not."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        doc = json.loads(text)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadSession(f"not UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadSession(f"not a JSON object but {type(doc).__name__}")
    agent, role, groups, expires_at = (doc.get(k) for k in ("agent", "role", "groups", "expires_at"))
    if not isinstance(agent, str) or not agent:
        raise BadSession("agent: expected a login")
    if role not in ROLES:
        raise BadSession(f"role: expected one of {', '.join(ROLES)}")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise BadSession("groups: expected a list of names")
    if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)) or not math.isfinite(expires_at):
        raise BadSession("expires_at: expected seconds since the epoch")
    return Session(token, agent, role, float(expires_at), frozenset(groups))


def ttl_ms(session: Session, now: float) -> int:
    """The key's time to live: until the session expires (rounded up, at least 1 ms)."""
    return max(1, math.ceil((session.expires_at - now) * 1000))


def _short(key: str) -> str:
    """A key for a log line: the prefix and the start of the hash."""
    return key[:-52] + "…" if len(key) > 52 else key


# -- the store -------------------------------------------------------------------------------------------


class RedisSessions:
    """Sessions in Redis (``redis.asyncio`` on the daemon's loop), cached in ``local``."""

    def __init__(self, url: str, local: SessionStore, *, prefix: str = PREFIX, timeout: float = TIMEOUT,
                 client: Any = None) -> None:
        if client is None:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # one quick retry (a connection dropped by a Redis restart), then the caller answers 503
            client = aioredis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                             retry=Retry(NoBackoff(), 1))
        self.local = local
        self._prefix = prefix
        self._redis = client
        #: Tokens of sessions logged out here whose key may still be in Redis -> when they expire anyway.
        self._ending: dict[str, float] = {}
        self._failing = False

    def key(self, token: str) -> str:
        return key_of(self._prefix, token)

    async def open(self, agent: str, role: str, groups: frozenset[str] = frozenset()) -> Session:
        """A new session, written to Redis and cached; ``SessionsUnavailable`` when Redis does not answer."""
        session = self.local.new(agent, role, groups)
        try:
            await self._redis.set(self.key(session.token), encode(session),
                                  px=ttl_ms(session, self.local.clock.seconds()))
        except Exception as exc:
            self._failed(f"the login of {agent} could not be shared", exc)
            raise SessionsUnavailable("the shared sessions (Redis) are not available") from exc
        self._answered()
        return self.local.keep(session)

    async def find(self, token: str | None) -> Session | None:
        """The live session of ``token``: from the cache, else from Redis (then cached)."""
        if not token:
            return None
        return self.local.get(token) or await self.fetch(token)

    async def fetch(self, token: str) -> Session | None:
        """``token``'s session as Redis has it (cached when live); None when unknown, expired or garbled."""
        if token in self._ending:
            return None
        key = self.key(token)
        try:
            raw = await self._redis.get(key)
        except Exception as exc:
            if _wrong_type(exc):
                logger.warning("desktop session %s is not a string key: refused (%s)", _short(key), exc)
                return None
            self._failed("a desktop session could not be looked up", exc)
            raise SessionsUnavailable("the shared sessions (Redis) are not available") from exc
        self._answered()
        if raw is None or token in self._ending:
            return None
        try:
            session = decode(token, raw)
        except BadSession as exc:
            logger.warning("desktop session %s in Redis is garbled: refused (%s)", _short(key), exc)
            return None
        if self.local.clock.seconds() >= session.expires_at:
            return None
        return self.local.keep(session)

    async def close(self, token: str) -> Session | None:
        """End ``token``'s session here and in Redis; the session that ended, if one did.

        Redis down: a session cached here ends here now and is deleted from Redis by a later ``recheck``;
        for a token not cached, ``SessionsUnavailable`` (nothing could be ended)."""
        cached = self.local.close(token)
        if cached is not None:
            self._ending[token] = cached.expires_at
        key = self.key(token)
        try:
            raw = await self._redis.getdel(key)
        except Exception as exc:
            if _wrong_type(exc):  # not a session: nothing to end in Redis
                self._ending.pop(token, None)
                return cached
            self._failed("a logout could not reach the other daemons yet", exc)
            if cached is None:
                raise SessionsUnavailable("the shared sessions (Redis) are not available") from exc
            return cached
        self._answered()
        self._ending.pop(token, None)
        if cached is not None or raw is None:
            return cached
        try:
            return decode(token, raw)
        except BadSession:
            return None

    async def recheck(self) -> list[Session]:
        """Delete the keys of logouts Redis missed, then drop the cached sessions whose key is gone
        (ended on another daemon); those sessions.  Redis down: nothing is dropped."""
        now = self.local.clock.seconds()
        for token in [t for t, until in self._ending.items() if now >= until]:
            del self._ending[token]
        tokens, ending = self.local.tokens(), list(self._ending)
        if not tokens and not ending:
            return []
        try:
            if ending:
                await self._redis.delete(*(self.key(t) for t in ending))
                for token in ending:
                    self._ending.pop(token, None)
            found = []
            if tokens:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for token in tokens:
                        pipe.exists(self.key(token))
                    found = await pipe.execute()
        except Exception as exc:
            self._failed("desktop sessions could not be checked against the other daemons", exc)
            return []
        self._answered()
        gone = []
        for token, exists in zip(tokens, found):
            if not exists:
                session = self.local.close(token)
                if session is not None:
                    gone.append(session)
        return gone

    async def stop(self) -> None:
        await self._redis.aclose()

    def _failed(self, what: str, exc: BaseException) -> None:
        if not self._failing:
            logger.error("Redis unreachable (%s: %s): %s; logins answer 503, cached sessions keep working",
                         type(exc).__name__, exc, what)
        else:
            logger.debug("Redis still unreachable: %s: %s", what, exc)
        self._failing = True

    def _answered(self) -> None:
        if self._failing:
            logger.info("Redis answers again: desktop sessions are shared again")
        self._failing = False


def _wrong_type(exc: BaseException) -> bool:
    """Whether ``exc`` is Redis saying the key holds another type (someone else's data, not an outage)."""
    from redis.exceptions import ResponseError

    return isinstance(exc, ResponseError) and str(exc).startswith("WRONGTYPE")
