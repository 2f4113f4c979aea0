"""Who routes, and the state that outlives the router.

One daemon routes at a time: the **leader**.  Every daemon of a center sees
the same AMI events (each has its own AMI link), runs FastAGI sessions and
serves desktops, but only the leader feeds the distributor and sends the
ACD's AMI actions.  Two safeguards, so that no agent gets two calls and no
call rings twice even when two daemons briefly both believe they lead (a
paused process whose lease ran out):

1. **A leader lease** in Redis: ``SET cc:acd:leader <daemon> NX PX <lease>``,
   renewed every ``tick`` by a compare-and-expire script.  The lease is 3 s
   and ticks come every second, so when the leader dies another daemon holds
   the lease within 4 s and restores the distributor from the snapshot the
   old leader saved (at most ``SNAPSHOT_EVERY`` old) and from its own call
   tracker (see ``AcdService._take_over``).
2. **Atomic offer reservations**: before ringing, the leader reserves the
   agent *and* the call in one Lua script (``SET`` both only if neither key
   exists).  A second brain loses the race and does not ring.

Agent commands given to a daemon that does not lead (a desktop or the CLI
connected to it) are relayed through a Redis list to the leader, which
answers on a per-command reply list.  What the leader's desktops see (offers,
agents' states, the wallboard's figures) it broadcasts to every daemon on the
Redis channel ``<prefix>events`` (``publish``), so that a desktop connected to
any daemon gets its screen pop; each message carries the sender's id, and a
daemon never hears its own.  Hand-offs from the IVR (which queue,
skills, priority; the caller is not in ``cc-wait`` yet) are kept in Redis
for the leader to pick up when the caller arrives there.

``InProcessCoordinator`` is the same interface for a single daemon: always
the leader, state in memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from typing import Any, Awaitable, Callable, Protocol

logger = logging.getLogger(__name__)

LEASE_MS = 3000
HANDOFF_TTL_S = 3600

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""

RELEASE = """
local n = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then n = n + redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) == ARGV[2] then n = n + redis.call('DEL', KEYS[2]) end
return n
"""

#: After a failed subscription, wait this long before subscribing again (doubling up to the cap).
LISTEN_BACKOFF_S = (0.5, 5.0)
#: Broadcasts waiting to be sent while Redis is slow or down; the oldest are dropped beyond it.
OUTBOX_MAX = 1000

CommandHandler = Callable[[str], Awaitable[str]]
#: ``on_broadcast(text)``: a message another daemon published (never this daemon's own).
BroadcastHandler = Callable[[str], None]


class Coordinator(Protocol):
    daemon_id: str
    leader: bool
    #: Whether other daemons may hear ``publish`` (False: a single daemon, publishing is pointless).
    broadcasts: bool

    async def start(self, on_command: CommandHandler, on_broadcast: BroadcastHandler | None = None) -> None: ...
    async def stop(self) -> None: ...
    def publish(self, text: str) -> None: ...
    async def tick(self) -> bool: ...
    async def save_snapshot(self, text: str) -> None: ...
    async def load_snapshot(self) -> str | None: ...
    async def put_handoff(self, call_id: str, text: str) -> None: ...
    async def get_handoff(self, call_id: str) -> str | None: ...
    async def drop_handoff(self, call_id: str) -> None: ...
    async def relay(self, command: str, timeout: float) -> str: ...
    async def reserve(self, agent: str, call_id: str, ttl_ms: int) -> bool: ...
    async def release(self, agent: str, call_id: str) -> None: ...


class NotLeader(RuntimeError):
    """No daemon answered a relayed command in time (no leader right now)."""


class InProcessCoordinator:
    """A single daemon: always the leader; nothing is shared.

    With ``snapshot_path`` the distributor's snapshot is also kept in that file
    (written in a thread, replaced atomically), so agents stay logged in with
    their states across a daemon restart.
    """

    broadcasts = False

    def __init__(self, daemon_id: str = "local", snapshot_path: str | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.daemon_id = daemon_id
        self._path = snapshot_path
        self._clock = clock
        self.leader = True
        self._snapshot: str | None = None
        self._handoffs: dict[str, str] = {}
        self._on_command: CommandHandler | None = None
        self._reserved: dict[str, tuple[str, float]] = {}   # key -> (holder, expiry on the clock)

    async def start(self, on_command: CommandHandler, on_broadcast: BroadcastHandler | None = None) -> None:
        self._on_command = on_command

    async def stop(self) -> None:
        return None

    def publish(self, text: str) -> None:
        """Nobody else to tell: a single daemon's own listeners already had it."""

    async def tick(self) -> bool:
        return True

    async def save_snapshot(self, text: str) -> None:
        self._snapshot = text
        if self._path:
            await asyncio.to_thread(_write_atomically, self._path, text)

    async def load_snapshot(self) -> str | None:
        if self._snapshot is None and self._path:
            self._snapshot = await asyncio.to_thread(_read_or_none, self._path)
        return self._snapshot

    async def put_handoff(self, call_id: str, text: str) -> None:
        self._handoffs[call_id] = text

    async def get_handoff(self, call_id: str) -> str | None:
        return self._handoffs.get(call_id)

    async def drop_handoff(self, call_id: str) -> None:
        self._handoffs.pop(call_id, None)

    async def relay(self, command: str, timeout: float) -> str:
        assert self._on_command is not None
        return await self._on_command(command)

    async def reserve(self, agent: str, call_id: str, ttl_ms: int) -> bool:
        now = self._clock()
        for key in [k for k, (_, until) in self._reserved.items() if until <= now]:
            del self._reserved[key]      # expired, as a Redis key with PX would be
        key = f"call:{call_id}"
        if agent in self._reserved or key in self._reserved:
            return False
        until = now + ttl_ms / 1000.0
        self._reserved[agent] = (call_id, until)
        self._reserved[key] = (agent, until)
        return True

    async def release(self, agent: str, call_id: str) -> None:
        if self._reserved.get(agent, ("", 0.0))[0] == call_id:
            del self._reserved[agent]
        if self._reserved.get(f"call:{call_id}", ("", 0.0))[0] == agent:
            del self._reserved[f"call:{call_id}"]


def _write_atomically(path: str, text: str) -> None:
    import os

    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _read_or_none(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.error("cannot read the saved ACD state %s: %s", path, exc)
        return None


class RedisCoordinator:
    """Several daemons against one Redis (``redis.asyncio`` on the daemon's loop)."""

    broadcasts = True

    def __init__(self, url: str, *, prefix: str = "cc:acd:", daemon_id: str | None = None,
                 lease_ms: int = LEASE_MS):
        import redis.asyncio as aioredis

        self.daemon_id = daemon_id or f"{uuid.uuid4().hex[:12]}"
        self.leader = False
        self._prefix = prefix
        self._lease_ms = lease_ms
        self._redis = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5,
                                              socket_timeout=5)
        # BLPOP holds its connection: commands get their own client, so ticks never wait behind it
        self._blocking = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5,
                                                 socket_timeout=None)
        self._renew = self._redis.register_script(RENEW)
        self._reserve = self._redis.register_script(RESERVE)
        self._release = self._redis.register_script(RELEASE)
        # a subscribed connection only reads: its own client; a PING every 10 s finds a dead link
        self._subscriber = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5,
                                                   socket_timeout=None, health_check_interval=10)
        self._channel = f"{prefix}events"
        self._on_command: CommandHandler | None = None
        self._on_broadcast: BroadcastHandler | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._outbox: deque[str] = deque()
        self._outbox_filled = asyncio.Event()
        self._publish_failing = False
        #: Broadcasts not sent (Redis unreachable, or too many waiting), since the start.
        self.broadcasts_dropped = 0
        if "\n" in self.daemon_id:
            raise ValueError(f"a daemon id is one line, not {self.daemon_id!r}")

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def start(self, on_command: CommandHandler, on_broadcast: BroadcastHandler | None = None) -> None:
        """Check Redis answers; with ``on_broadcast``, subscribe to the other daemons' broadcasts before
        returning (then kept subscribed, across dropped connections, until ``stop``)."""
        self._on_command = on_command
        await self._redis.ping()
        if on_broadcast is not None:
            self._on_broadcast = on_broadcast
            pubsub = await self._subscribe()
            self._listener = asyncio.ensure_future(self._listen(pubsub))
        self._sender = asyncio.ensure_future(self._send())

    async def stop(self) -> None:
        was_leader, self.leader = self.leader, False    # the consumer loop ends on its next turn
        tasks = {t for t in (self._consumer, self._listener, self._sender) if t is not None and not t.done()}
        for task in tasks:
            task.cancel()
        if tasks:
            # a cancellation can be lost inside redis-py's wait_for on Python 3.11 (CPython gh-86296):
            # wait a bounded time, never forever
            await asyncio.wait(tasks, timeout=2)
        if was_leader:
            try:  # hand routing over at once rather than after the lease runs out
                await self._redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                       "return redis.call('DEL', KEYS[1]) end return 0",
                                       1, self._key("leader"), self.daemon_id)
            except Exception:
                logger.warning("could not give up the ACD leader lease; it expires in %d ms", self._lease_ms)
        await self._redis.aclose()
        await self._blocking.aclose()
        await self._subscriber.aclose()

    async def tick(self) -> bool:
        """Renew the lease, or take it if nobody holds it; whether this daemon leads now."""
        key = self._key("leader")
        try:
            if self.leader:
                self.leader = bool(await self._renew(keys=[key], args=[self.daemon_id, self._lease_ms]))
                if not self.leader:
                    logger.warning("ACD leader lease lost by %s", self.daemon_id)
            if not self.leader:
                self.leader = bool(await self._redis.set(key, self.daemon_id, nx=True, px=self._lease_ms))
        except Exception as exc:
            if self.leader:
                logger.error("Redis unreachable (%s): %s stops routing", exc, self.daemon_id)
            self.leader = False
        self._consume_while_leading()
        return self.leader

    def _consume_while_leading(self) -> None:
        running = self._consumer is not None and not self._consumer.done()
        if self.leader and not running:
            self._consumer = asyncio.ensure_future(self._consume())
        elif not self.leader and running:
            assert self._consumer is not None
            self._consumer.cancel()

    async def leader_id(self) -> str | None:
        return await self._redis.get(self._key("leader"))

    async def save_snapshot(self, text: str) -> None:
        await self._redis.set(self._key("snapshot"), text)

    async def load_snapshot(self) -> str | None:
        return await self._redis.get(self._key("snapshot"))

    async def put_handoff(self, call_id: str, text: str) -> None:
        await self._redis.set(self._key("handoff", call_id), text, ex=HANDOFF_TTL_S)

    async def get_handoff(self, call_id: str) -> str | None:
        return await self._redis.get(self._key("handoff", call_id))

    async def drop_handoff(self, call_id: str) -> None:
        await self._redis.delete(self._key("handoff", call_id))

    async def reserve(self, agent: str, call_id: str, ttl_ms: int) -> bool:
        return bool(await self._reserve(keys=[self._key("resv", "agent", agent), self._key("resv", "call", call_id)],
                                        args=[call_id, agent, ttl_ms]))

    async def release(self, agent: str, call_id: str) -> None:
        await self._release(keys=[self._key("resv", "agent", agent), self._key("resv", "call", call_id)],
                            args=[call_id, agent])

    async def relay(self, command: str, timeout: float) -> str:
        """Hand ``command`` to whichever daemon leads; its JSON answer."""
        if self.leader and self._on_command is not None:
            return await self._on_command(command)
        ident = uuid.uuid4().hex
        reply_key = self._key("reply", ident)
        await self._redis.rpush(self._key("commands"), json.dumps({"id": ident, "command": command,
                                                                   "expires": time.time() + timeout}))
        got = await self._blocking.blpop([reply_key], timeout=max(1, int(timeout + 0.999)))
        if got is None:
            raise NotLeader(f"no ACD leader answered within {timeout:g} s")
        return got[1]

    async def _consume(self) -> None:
        """While leading: take relayed commands one by one and answer each."""
        while self.leader:
            try:
                got = await self._blocking.blpop([self._key("commands")], timeout=1)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("reading relayed ACD commands failed: %s", exc)
                return  # the next tick starts a new consumer
            if got is None:
                continue
            if not self.leader:
                # taken while the lease was lost (or the daemon stops): hand it back for the next leader
                await self._redis.lpush(self._key("commands"), got[1])
                return
            try:
                envelope = json.loads(got[1])
                ident, command, expires = envelope["id"], envelope["command"], float(envelope["expires"])
            except (ValueError, KeyError, TypeError):
                logger.error("dropped a malformed relayed ACD command: %.200r", got[1])
                continue
            if time.time() > expires:
                logger.warning("dropped a relayed ACD command that waited too long: %.200s", command)
                continue
            assert self._on_command is not None
            answer = await self._on_command(command)
            await self._redis.rpush(self._key("reply", ident), answer)
            await self._redis.expire(self._key("reply", ident), 30)

    # -- broadcasts ------------------------------------------------------------------------------------
    def publish(self, text: str) -> None:
        """Broadcast ``text`` to the other daemons (``PUBLISH <prefix>events``), in the order published.

        Returns at once: one task sends the messages one after the other.  A message is not kept for a
        daemon that is not listening; while Redis is unreachable, messages are dropped (counted in
        ``broadcasts_dropped``), never sent late."""
        if self._sender is None or self._sender.done():
            self.broadcasts_dropped += 1
            return
        if len(self._outbox) >= OUTBOX_MAX:
            self._outbox.popleft()
            self.broadcasts_dropped += 1
        self._outbox.append(f"{self.daemon_id}\n{text}")
        self._outbox_filled.set()

    async def _send(self) -> None:
        while True:
            await self._outbox_filled.wait()
            self._outbox_filled.clear()
            while self._outbox:
                try:
                    await self._redis.publish(self._channel, self._outbox[0])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.broadcasts_dropped += len(self._outbox)
                    self._outbox.clear()
                    if not self._publish_failing:
                        logger.warning("ACD broadcasts to the other daemons dropped: %s", exc)
                    self._publish_failing = True
                    break
                self._outbox.popleft()
                if self._publish_failing:
                    self._publish_failing = False
                    logger.info("ACD broadcasts reach the other daemons again")

    async def _subscribe(self) -> Any:
        pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._channel)
        except BaseException:
            await _close_quietly(pubsub)
            raise
        return pubsub

    async def _listen(self, pubsub: Any) -> None:
        """Hand each broadcast of another daemon to ``on_broadcast``; subscribe again after a failure.

        redis-py reconnects and resubscribes by itself after a dropped connection; when that fails too,
        this loop starts a new subscription, waiting longer after each failure (``LISTEN_BACKOFF_S``).
        Messages published while no connection is subscribed are lost."""
        delay = LISTEN_BACKOFF_S[0]
        try:
            while True:
                try:
                    if pubsub is None:
                        pubsub = await self._subscribe()
                        logger.info("listening to the ACD broadcasts again")
                        delay = LISTEN_BACKOFF_S[0]
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.warning("ACD broadcasts not received (%s); subscribing again in %.1f s", exc, delay)
                    if pubsub is not None:
                        await _close_quietly(pubsub)
                        pubsub = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, LISTEN_BACKOFF_S[1])
                    continue
                if message is not None and message.get("type") == "message":
                    self._heard(message["data"])
        finally:
            if pubsub is not None:
                await _close_quietly(pubsub)

    def _heard(self, data: Any) -> None:
        sender, newline, text = str(data).partition("\n")
        if not newline:
            logger.error("dropped an ACD broadcast without its sender: %.200r", data)
            return
        if sender == self.daemon_id:
            return
        assert self._on_broadcast is not None
        try:
            self._on_broadcast(text)
        except Exception:
            logger.exception("an ACD broadcast from %s could not be handled", sender)


async def _close_quietly(pubsub: Any) -> None:
    try:
        await pubsub.aclose()
    except Exception as exc:
        logger.debug("closing an ACD broadcast subscription: %s", exc)
