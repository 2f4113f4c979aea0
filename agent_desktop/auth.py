"""Desktop sessions: tokens kept in memory, login attempt limits, frame rate limits.

Nothing here does I/O; time comes from an injected clock (``seconds()``, the
reactor or ``twisted.internet.task.Clock`` in tests).  With several daemons the
``SessionStore`` is each daemon's cache of the sessions shared in Redis
(``sessions_redis.py``).  See README.md in this package for how the server uses it.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections import deque
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Protocol

#: Name of the session cookie set by ``POST /api/login``.
COOKIE = "cc_session"


class Clock(Protocol):
    def seconds(self) -> float: ...


@dataclass(frozen=True)
class Session:
    token: str
    agent: str
    role: str  # agent | supervisor | admin
    expires_at: float  # clock seconds (epoch seconds with the reactor)
    #: The person's groups (supervisors see the queues and agents of their groups).
    groups: frozenset[str] = frozenset()


class SessionStore:
    """Sessions by token; an expired one is forgotten the first time it is asked for."""

    def __init__(self, clock: Clock, lifetime_seconds: float):
        self.clock = clock
        self.lifetime = lifetime_seconds
        self._sessions: dict[str, Session] = {}

    def new(self, agent: str, role: str, groups: frozenset[str] = frozenset()) -> Session:
        """A fresh session (a new token, expiring ``lifetime_seconds`` from now), not kept yet."""
        return Session(secrets.token_urlsafe(32), agent, role, self.clock.seconds() + self.lifetime,
                       frozenset(groups))

    def open(self, agent: str, role: str, groups: frozenset[str] = frozenset()) -> Session:
        return self.keep(self.new(agent, role, groups))

    def keep(self, session: Session) -> Session:
        """Remember ``session`` (opened here, or by another daemon) until it expires."""
        self._reap()
        self._sessions[session.token] = session
        return session

    def tokens(self) -> list[str]:
        """The tokens of the live sessions kept."""
        self._reap()
        return list(self._sessions)

    def get(self, token: str | None) -> Session | None:
        """The live session of ``token``, or None (unknown, ended or expired)."""
        session = self._sessions.get(token) if token else None
        if session is not None and self.clock.seconds() >= session.expires_at:
            del self._sessions[session.token]
            return None
        return session

    def close(self, token: str) -> Session | None:
        return self._sessions.pop(token, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _reap(self) -> None:
        now = self.clock.seconds()
        for token in [t for t, s in self._sessions.items() if now >= s.expires_at]:
            del self._sessions[token]


class FailureLimiter:
    """At most ``limit`` failures per key in a sliding ``window`` (seconds)."""

    def __init__(self, clock: Clock, limit: int, window: float = 60.0):
        self._clock = clock
        self._limit = limit
        self._window = window
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, *keys: str) -> float:
        """Seconds until every key may try again; 0 when none is blocked."""
        now = self._clock.seconds()
        wait = 0.0
        for key in keys:
            times = self._prune(key, now)
            if len(times) >= self._limit:
                wait = max(wait, times[0] + self._window - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = self._clock.seconds()
        for key in keys:
            self._prune(key, now).append(now)

    def _prune(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
            times = self._failures.setdefault(key, deque())
        return times


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; ``take()`` spends one if there is one."""

    def __init__(self, clock: Clock, rate: float, burst: int):
        self._clock = clock
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at = clock.seconds()

    def take(self) -> bool:
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(username, password)`` from ``Authorization: Basic <base64 of utf-8 user:password>``."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep and user else None


def bearer_token(header: str | None) -> str | None:
    scheme, _, value = (header or "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def cookie_token(header: str | None) -> str | None:
    """The session token in a ``Cookie`` header, if any."""
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def set_cookie(token: str, max_age: int) -> str:
    """The ``Set-Cookie`` value for a session (``max_age`` 0 removes it)."""
    return f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}"
