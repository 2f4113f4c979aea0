"""Who routes, and the state that outlives the router: one contract, two implementations.

Each contract test runs against ``InProcessCoordinator`` (a single daemon) and
``RedisCoordinator`` on a real Redis (a unique key prefix per test).  The
Redis-only tests pin what only several daemons have: the leader lease passing
from one daemon to another, and commands relayed to whichever daemon leads.

The coordinators are asyncio code; each test body is one asyncio coroutine
run through ``callcenter.aio.as_deferred`` on the asyncio reactor.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid

import pytest
import pytest_twisted

from callcenter.aio import as_deferred
from callcenter.routing.coordinator import InProcessCoordinator, NotLeader, RedisCoordinator


class Coordinators:
    """Makes coordinators of one kind sharing one center (one Redis prefix); stops them all at the end."""

    def __init__(self, kind: str, redis_url: str | None) -> None:
        self.kind = kind
        self.url = redis_url
        self.prefix = f"test-acd-{uuid.uuid4().hex}:"
        self.made: list = []

    def new(self, daemon_id: str | None = None, **options):
        if self.kind == "in-process":
            made = InProcessCoordinator(daemon_id or "local", **options)
        else:
            made = RedisCoordinator(self.url, prefix=self.prefix, daemon_id=daemon_id, **options)
        self.made.append(made)
        return made

    async def stop_all(self) -> None:
        for made in self.made:
            await stop_within(made, 3.0)
        if self.url is not None:    # leave the session's Redis as it was
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(self.url)
            try:
                async for key in client.scan_iter(f"{self.prefix}*"):
                    await client.delete(key)
            finally:
                await client.aclose()


async def stop_within(coordinator, seconds: float) -> bool:
    """Stop ``coordinator``; whether it stopped within ``seconds``.  If not, it is made to stop
    (its consumer loop ends once ``leader`` is false) so that no test leaves a task behind."""
    stopping = asyncio.ensure_future(coordinator.stop())
    done, _ = await asyncio.wait({stopping}, timeout=seconds)
    if not done:
        coordinator.leader = False
        await stopping
    return bool(done)


@pytest.fixture(params=["in-process", "redis"])
def kind(request):
    return request.param


@pytest.fixture
def coordinators(kind, request):
    made = Coordinators(kind, request.getfixturevalue("redis_url") if kind == "redis" else None)
    yield made
    pytest_twisted.blockon(as_deferred(made.stop_all()))


@pytest.fixture
def redis_coordinators(redis_url):
    made = Coordinators("redis", redis_url)
    yield made
    pytest_twisted.blockon(as_deferred(made.stop_all()))


def echo(name: str):
    """A leader's command handler: answers which daemon handled which command."""
    async def on_command(command: str) -> str:
        return json.dumps({"handled_by": name, "command": command})

    return on_command


def in_asyncio(test):
    """Run an ``async def test(...)`` as an asyncio coroutine (the coordinators' own loop)."""
    @functools.wraps(test)
    @pytest_twisted.ensureDeferred
    async def run(*args, **kwargs):
        return await as_deferred(test(*args, **kwargs))

    return run


# -- leadership -------------------------------------------------------------------------------------------

@in_asyncio
async def test_the_first_coordinator_to_tick_leads(coordinators):
    """In process: always the leader.  Redis: the first tick takes the free lease."""
    one = coordinators.new("one")
    await one.start(echo("one"))
    assert one.leader is (coordinators.kind == "in-process")
    assert await one.tick() is True
    assert one.leader
    assert await one.tick() is True    # renewing keeps it


@in_asyncio
async def test_a_second_daemon_does_not_take_a_held_lease(redis_coordinators):
    """Two daemons of one center: the one that ticked first leads; the other's ticks do not take over."""
    one, two = redis_coordinators.new("one"), redis_coordinators.new("two")
    await one.start(echo("one"))
    await two.start(echo("two"))
    assert await one.tick() is True
    for _ in range(3):
        assert await two.tick() is False
        assert await one.tick() is True
    assert not two.leader
    assert await two.leader_id() == "one"


@in_asyncio
async def test_centers_with_other_prefixes_do_not_share_a_leader(redis_url):
    """The lease is per prefix: a daemon of another center leads its own."""
    here, there = Coordinators("redis", redis_url), Coordinators("redis", redis_url)
    try:
        one, other = here.new("one"), there.new("other")
        await one.start(echo("one"))
        await other.start(echo("other"))
        assert await one.tick() is True
        assert await other.tick() is True
    finally:
        await here.stop_all()
        await there.stop_all()


@in_asyncio
async def test_a_stopping_leader_gives_the_lease_up_at_once(redis_coordinators):
    """The leader stops: the other daemon's next tick leads, long before the lease would expire."""
    one, two = redis_coordinators.new("one", lease_ms=60_000), redis_coordinators.new("two", lease_ms=60_000)
    await one.start(echo("one"))
    await two.start(echo("two"))
    assert await one.tick() is True
    assert await two.tick() is False
    await one.stop()
    assert not one.leader
    assert await two.tick() is True
    assert await two.leader_id() == "two"


@in_asyncio
async def test_a_leader_that_stops_ticking_loses_the_lease_when_it_expires(redis_coordinators):
    """A leader that no longer renews (hung, killed): after ``lease_ms`` the other daemon's tick leads,
    and the old leader's next tick learns that it no longer leads."""
    one, two = redis_coordinators.new("one", lease_ms=300), redis_coordinators.new("two", lease_ms=300)
    await one.start(echo("one"))
    await two.start(echo("two"))
    assert await one.tick() is True
    await asyncio.sleep(0.1)
    assert await two.tick() is False         # not yet expired
    await asyncio.sleep(0.35)
    assert await two.tick() is True
    assert await one.tick() is False
    assert not one.leader
    assert await two.tick() is True


@in_asyncio
async def test_ticks_renew_the_lease(redis_coordinators):
    """A leader ticking more often than its lease keeps it for many lease lengths."""
    one, two = redis_coordinators.new("one", lease_ms=300), redis_coordinators.new("two", lease_ms=300)
    await one.start(echo("one"))
    await two.start(echo("two"))
    assert await one.tick() is True
    for _ in range(8):                       # 1.2 s: four lease lengths
        await asyncio.sleep(0.15)
        assert await one.tick() is True
        assert await two.tick() is False


# -- offer reservations -------------------------------------------------------------------------------------

@in_asyncio
async def test_an_agent_or_a_call_already_reserved_cannot_be_reserved_again(coordinators):
    """Reserving (agent, call) holds both: another call for the agent, or another agent for the call, fails."""
    c = coordinators.new()
    await c.start(echo("c"))
    await c.tick()
    assert await c.reserve("1001", "call-a", 10_000) is True
    assert await c.reserve("1001", "call-b", 10_000) is False     # the agent is ringing for call-a
    assert await c.reserve("1002", "call-a", 10_000) is False     # call-a rings at 1001
    assert await c.reserve("1001", "call-a", 10_000) is False     # not twice either
    assert await c.reserve("1002", "call-b", 10_000) is True      # others are free


@in_asyncio
async def test_a_failed_reservation_holds_nothing(coordinators):
    """A reservation refused because the call is held does not hold the agent it named."""
    c = coordinators.new()
    await c.start(echo("c"))
    assert await c.reserve("1001", "call-a", 10_000) is True
    assert await c.reserve("1002", "call-a", 10_000) is False
    assert await c.reserve("1002", "call-b", 10_000) is True


@in_asyncio
async def test_only_the_matching_pair_releases_a_reservation(coordinators):
    """Releasing (agent, other call) or (other agent, call) frees neither side; the pair frees both."""
    c = coordinators.new()
    await c.start(echo("c"))
    assert await c.reserve("1001", "call-a", 10_000)
    await c.release("1001", "call-x")
    await c.release("1009", "call-a")
    assert await c.reserve("1001", "call-b", 10_000) is False
    assert await c.reserve("1002", "call-a", 10_000) is False
    await c.release("1001", "call-a")
    assert await c.reserve("1001", "call-b", 10_000) is True
    assert await c.reserve("1002", "call-a", 10_000) is True


@in_asyncio
async def test_a_late_release_does_not_free_a_newer_reservation(coordinators):
    """A release of an old offer, arriving after the agent was reserved for another call, frees nothing."""
    c = coordinators.new()
    await c.start(echo("c"))
    assert await c.reserve("1001", "call-a", 10_000)
    await c.release("1001", "call-a")
    assert await c.reserve("1001", "call-b", 10_000)
    await c.release("1001", "call-a")              # the old offer's release, late
    assert await c.reserve("1001", "call-c", 10_000) is False


@in_asyncio
async def test_a_reservation_never_released_expires_after_its_ttl(coordinators, request):
    """A reservation whose release is lost (a crashed daemon, a lost task) lapses after ``ttl_ms``."""
    c = coordinators.new()
    await c.start(echo("c"))
    assert await c.reserve("1001", "call-a", 300)
    assert await c.reserve("1001", "call-b", 300) is False
    await asyncio.sleep(0.45)
    assert await c.reserve("1001", "call-b", 10_000) is True
    assert await c.reserve("1002", "call-a", 10_000) is True


@in_asyncio
async def test_reservations_race_between_daemons_and_exactly_one_wins(redis_coordinators):
    """Two daemons (a paused leader and the new one) reserving the same agent at once: one wins each time."""
    one, two = redis_coordinators.new("one"), redis_coordinators.new("two")
    await one.start(echo("one"))
    await two.start(echo("two"))
    for n in range(30):
        wins = await asyncio.gather(one.reserve(f"a{n}", f"call-{n}-x", 5000),
                                    two.reserve(f"a{n}", f"call-{n}-y", 5000))
        assert sorted(wins) == [False, True]
        wins = await asyncio.gather(one.reserve(f"b{n}", f"call-{n}", 5000),
                                    two.reserve(f"c{n}", f"call-{n}", 5000))
        assert sorted(wins) == [False, True]


# -- hand-offs and snapshots ---------------------------------------------------------------------------------

@in_asyncio
async def test_a_handoff_is_kept_until_dropped(coordinators):
    """put, get (as often as asked), drop; unknown calls have none; another put replaces."""
    c = coordinators.new()
    await c.start(echo("c"))
    assert await c.get_handoff("call-a") is None
    await c.put_handoff("call-a", '{"queue": "support", "note": "张伟"}')
    await c.put_handoff("call-b", '{"queue": "sales"}')
    assert await c.get_handoff("call-a") == '{"queue": "support", "note": "张伟"}'
    assert await c.get_handoff("call-a") == '{"queue": "support", "note": "张伟"}'
    await c.put_handoff("call-a", '{"queue": "vip"}')
    assert await c.get_handoff("call-a") == '{"queue": "vip"}'
    await c.drop_handoff("call-a")
    await c.drop_handoff("call-a")                 # dropping twice is harmless
    await c.drop_handoff("never-handed-off")
    assert await c.get_handoff("call-a") is None
    assert await c.get_handoff("call-b") == '{"queue": "sales"}'


@in_asyncio
async def test_a_handoff_made_by_one_daemon_is_read_by_the_leader(redis_coordinators):
    """The IVR's daemon stores the hand-off; the leader (another process) picks it up and drops it."""
    ivr, leader = redis_coordinators.new("ivr"), redis_coordinators.new("leader")
    await ivr.start(echo("ivr"))
    await leader.start(echo("leader"))
    await ivr.put_handoff("call-a", '{"queue": "support"}')
    assert await leader.get_handoff("call-a") == '{"queue": "support"}'
    await leader.drop_handoff("call-a")
    assert await ivr.get_handoff("call-a") is None


@in_asyncio
async def test_the_last_saved_snapshot_is_loaded(coordinators):
    """No snapshot at first; then the latest one saved, unchanged (non-ASCII too)."""
    c = coordinators.new()
    await c.start(echo("c"))
    assert await c.load_snapshot() is None
    await c.save_snapshot('{"agents": ["first"]}')
    await c.save_snapshot('{"agents": ["王芳"], "at": 1.5}')
    assert await c.load_snapshot() == '{"agents": ["王芳"], "at": 1.5}'


@in_asyncio
async def test_a_new_leader_loads_the_snapshot_the_old_one_saved(redis_coordinators):
    """The snapshot is shared: what the old leader saved is what the next one restores from."""
    old, new = redis_coordinators.new("old"), redis_coordinators.new("new")
    await old.start(echo("old"))
    await new.start(echo("new"))
    await old.tick()
    await old.save_snapshot('{"at": 42.0}')
    await old.stop()
    assert await new.tick() is True
    assert await new.load_snapshot() == '{"at": 42.0}'


@in_asyncio
async def test_an_in_process_snapshot_file_outlives_the_daemon(tmp_path):
    """With ``snapshot_path``, a new coordinator (the daemon restarted) loads what the old one saved."""
    path = str(tmp_path / "acd-state.json")
    first = InProcessCoordinator(snapshot_path=path)
    await first.start(echo("first"))
    assert await first.load_snapshot() is None
    await first.save_snapshot('{"agents": ["李娜"]}')
    await first.stop()
    second = InProcessCoordinator(snapshot_path=path)
    await second.start(echo("second"))
    assert await second.load_snapshot() == '{"agents": ["李娜"]}'
    await second.save_snapshot('{"agents": []}')
    assert await InProcessCoordinator(snapshot_path=path).load_snapshot() == '{"agents": []}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acd-state.json"]    # no temporary file left


@in_asyncio
async def test_an_in_process_snapshot_without_a_file_is_lost_with_the_daemon():
    """Without ``snapshot_path`` nothing outlives the coordinator."""
    first = InProcessCoordinator()
    await first.save_snapshot('{"at": 1.0}')
    assert await InProcessCoordinator().load_snapshot() is None


# -- relayed commands -------------------------------------------------------------------------------------------

@in_asyncio
async def test_the_leader_answers_a_relayed_command_itself(coordinators):
    """Relayed on the leader, a command goes straight to its own handler."""
    c = coordinators.new("boss")
    await c.start(echo("boss"))
    assert await c.tick() is True
    answer = json.loads(await c.relay('{"type": "SetReady", "data": {"agent": "1001"}}', 2.0))
    assert answer == {"handled_by": "boss", "command": '{"type": "SetReady", "data": {"agent": "1001"}}'}


@in_asyncio
async def test_a_command_relayed_by_a_non_leader_is_answered_by_the_leader(redis_coordinators):
    """A desktop's daemon does not lead: its relay reaches the leader's handler and returns its answer."""
    leader, other = redis_coordinators.new("leader"), redis_coordinators.new("other")
    await leader.start(echo("leader"))
    await other.start(echo("other"))
    assert await leader.tick() is True
    assert await other.tick() is False
    answers = await asyncio.gather(*(other.relay(f"command {n} 请", 5.0) for n in range(5)))
    assert [json.loads(a) for a in answers] == [{"handled_by": "leader", "command": f"command {n} 请"}
                                                for n in range(5)]


@in_asyncio
async def test_a_relayed_command_reaches_the_new_leader_after_a_hand_over(redis_coordinators):
    """The leader stops; the other daemon takes over and answers a third daemon's relay."""
    one, two, desk = (redis_coordinators.new("one"), redis_coordinators.new("two"), redis_coordinators.new("desk"))
    for c in (one, two, desk):
        await c.start(echo(c.daemon_id))
    assert await one.tick() is True
    assert json.loads(await desk.relay("x", 5.0))["handled_by"] == "one"
    await asyncio.sleep(0.1)    # let "one" finish answering (see the test just below)
    await one.stop()
    assert await two.tick() is True
    assert json.loads(await desk.relay("y", 5.0))["handled_by"] == "two"


@in_asyncio
async def test_a_leader_stops_promptly_right_after_answering_a_relayed_command(redis_coordinators, request):
    """A daemon told to stop just as it answers a relayed command stops (and gives the lease up) at once."""
    for attempt in range(5):
        one, desk = redis_coordinators.new(f"one-{attempt}"), redis_coordinators.new(f"desk-{attempt}")
        await one.start(echo("one"))
        await desk.start(echo("desk"))
        assert await one.tick() is True
        assert json.loads(await desk.relay("x", 5.0))["handled_by"] == "one"
        assert await stop_within(one, 3.0), f"attempt {attempt}: stop() still running after 3 s"
        assert await desk.leader_id() is None


@in_asyncio
async def test_a_relay_with_no_leader_times_out_with_not_leader(redis_coordinators):
    """Nobody leads: the relay raises NotLeader after about its timeout, not sooner, not much later."""
    lonely = redis_coordinators.new("lonely")
    await lonely.start(echo("lonely"))
    started = time.monotonic()
    with pytest.raises(NotLeader):
        await lonely.relay("anyone?", 1.0)
    took = time.monotonic() - started
    assert 0.9 <= took < 2.5, took


@in_asyncio
async def test_a_relayed_command_that_waited_too_long_is_not_run_by_a_later_leader(redis_coordinators):
    """A command whose sender gave up (NotLeader) is dropped by the daemon that leads afterwards, not run late."""
    handled: list[str] = []

    async def record(command: str) -> str:
        handled.append(command)
        return "{}"

    lonely, late = redis_coordinators.new("lonely"), redis_coordinators.new("late")
    await lonely.start(echo("lonely"))
    await late.start(record)
    with pytest.raises(NotLeader):
        await lonely.relay("stale", 1.0)
    assert await late.tick() is True
    assert json.loads(await lonely.relay("fresh", 5.0)) == {}
    assert handled == ["fresh"]


# -- broadcasts from the leader to every daemon ---------------------------------------------------------------------

class Heard:
    """An ``on_broadcast`` handler that keeps what it hears."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, text: str) -> None:
        self.texts.append(text)

    async def until(self, predicate, timeout: float = 5.0, what: str = "a broadcast") -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.texts):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; heard {self.texts}")
            await asyncio.sleep(0.02)


@in_asyncio
async def test_a_daemon_never_hears_its_own_broadcast(coordinators):
    """In process there is nobody else (publish does nothing); with Redis the sender's own subscription skips
    what it published itself, while a witness daemon does hear it."""
    own = Heard()
    one = coordinators.new("one")
    await one.start(echo("one"), own)
    assert await one.tick() is True
    witness = Heard()
    if coordinators.kind == "redis":
        other = coordinators.new("other")
        await other.start(echo("other"), witness)
    one.publish("mine")
    one.publish("mine too")
    if coordinators.kind == "redis":
        await witness.until(lambda texts: len(texts) == 2)
        assert witness.texts == ["mine", "mine too"]
    await asyncio.sleep(0.2)
    assert own.texts == []


@in_asyncio
async def test_a_broadcast_reaches_every_other_daemon_in_the_order_published(redis_coordinators):
    """The leader publishes 200 messages (non-ASCII, with newlines): both followers hear all of them, in order,
    unchanged."""
    leader = redis_coordinators.new("leader")
    await leader.start(echo("leader"), Heard())
    heard = {name: Heard() for name in ("f1", "f2")}
    for name, handler in heard.items():
        await redis_coordinators.new(name).start(echo(name), handler)
    assert await leader.tick() is True
    sent = [json.dumps({"n": n, "who": "王芳"}, ensure_ascii=False) + ("\nsecond line" if n % 7 == 0 else "")
            for n in range(200)]
    for text in sent:
        leader.publish(text)
    for handler in heard.values():
        await handler.until(lambda texts: len(texts) >= 200, what="200 broadcasts")
        assert handler.texts == sent
    assert leader.broadcasts_dropped == 0


@in_asyncio
async def test_a_coordinator_started_without_a_handler_does_not_subscribe(redis_url):
    """``start(on_command)`` alone (the CLI's way): no subscription is made, and publishing still works."""
    made = Coordinators("redis", redis_url)
    try:
        quiet, loud = made.new("quiet"), made.new("loud")
        heard = Heard()
        await quiet.start(echo("quiet"))
        await loud.start(echo("loud"), heard)
        quiet.publish("hello")
        await heard.until(lambda texts: texts == ["hello"])
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            assert (await client.pubsub_numsub(f"{made.prefix}events")) == [(f"{made.prefix}events", 1)]
        finally:
            await client.aclose()
    finally:
        await made.stop_all()


@in_asyncio
async def test_other_centers_broadcasts_are_not_heard(redis_url):
    """The channel is per prefix: a daemon of another center hears nothing of this one's leader."""
    here, there = Coordinators("redis", redis_url), Coordinators("redis", redis_url)
    try:
        leader, follower, stranger = here.new("leader"), here.new("follower"), there.new("stranger")
        ours, theirs = Heard(), Heard()
        await leader.start(echo("leader"))
        await follower.start(echo("follower"), ours)
        await stranger.start(echo("stranger"), theirs)
        leader.publish("for us")
        await ours.until(lambda texts: texts == ["for us"])
        await asyncio.sleep(0.2)
        assert theirs.texts == []
    finally:
        await here.stop_all()
        await there.stop_all()


@in_asyncio
async def test_a_followers_subscription_survives_a_dropped_connection(redis_coordinators, redis_url):
    """Redis drops every subscribed connection (CLIENT KILL TYPE pubsub): the follower subscribes again by
    itself and hears the leader's next broadcasts (those published while it was not subscribed are lost)."""
    import redis.asyncio as aioredis

    leader, follower = redis_coordinators.new("leader"), redis_coordinators.new("follower")
    heard = Heard()
    await leader.start(echo("leader"))
    await follower.start(echo("follower"), heard)
    leader.publish("before")
    await heard.until(lambda texts: texts == ["before"])
    admin = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        killed = await admin.client_kill_filter(_type="pubsub")
        assert killed >= 1
    finally:
        await admin.aclose()
    deadline = time.monotonic() + 10
    n = 0
    while not any(t.startswith("after") for t in heard.texts):     # resubscribing takes a moment
        assert time.monotonic() < deadline, f"no broadcast heard after the drop: {heard.texts}"
        leader.publish(f"after {n}")
        n += 1
        await asyncio.sleep(0.1)
    leader.publish("last")
    await heard.until(lambda texts: texts[-1:] == ["last"])
    afters = [t for t in heard.texts if t.startswith("after")]
    assert afters == sorted(afters, key=lambda t: int(t.split()[1]))      # still in order


@in_asyncio
async def test_a_broadcast_handler_that_raises_does_not_stop_the_subscription(redis_coordinators):
    """A handler failing on one message (logged) still gets the next ones."""
    leader, follower = redis_coordinators.new("leader"), redis_coordinators.new("follower")
    heard = Heard()

    def fussy(text: str) -> None:
        heard(text)
        if text == "bad":
            raise ValueError("cannot read that")

    await leader.start(echo("leader"))
    await follower.start(echo("follower"), fussy)
    for text in ("bad", "good"):
        leader.publish(text)
    await heard.until(lambda texts: texts == ["bad", "good"])


@in_asyncio
async def test_broadcasts_while_redis_is_unreachable_are_dropped_not_sent_late(redis_coordinators):
    """With the publishing connection broken, messages are counted as dropped; the publisher carries on
    and later messages are delivered."""
    leader, follower = redis_coordinators.new("leader"), redis_coordinators.new("follower")
    heard = Heard()
    await leader.start(echo("leader"))
    await follower.start(echo("follower"), heard)
    real = leader._redis.publish

    async def broken(*args, **kwargs):
        raise ConnectionError("Redis is down")

    leader._redis.publish = broken
    try:
        leader.publish("lost 1")
        leader.publish("lost 2")
        deadline = time.monotonic() + 5
        while leader.broadcasts_dropped < 2:
            assert time.monotonic() < deadline, leader.broadcasts_dropped
            await asyncio.sleep(0.02)
    finally:
        leader._redis.publish = real
    leader.publish("found")
    await heard.until(lambda texts: texts == ["found"])


@in_asyncio
async def test_a_stopped_coordinator_publishes_nothing_and_hears_nothing(redis_coordinators):
    """After ``stop`` a coordinator's publish is dropped and its handler is no longer called."""
    one, two = redis_coordinators.new("one"), redis_coordinators.new("two")
    heard_one, heard_two = Heard(), Heard()
    await one.start(echo("one"), heard_one)
    await two.start(echo("two"), heard_two)
    await stop_within(one, 3.0)
    one.publish("from the grave")
    two.publish("anyone?")
    await asyncio.sleep(0.3)
    assert heard_one.texts == [] and heard_two.texts == []
    assert one.broadcasts_dropped == 1
