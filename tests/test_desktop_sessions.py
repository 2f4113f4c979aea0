"""Desktop sessions, the parts without I/O: the session cache and the Redis encoding of a session.

The shared store itself runs against a real Redis in tests/test_desktop_sessions_redis.py.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from twisted.internet import task

from agent_desktop.auth import Session, SessionStore
from agent_desktop.sessions_redis import BadSession, decode, encode, key_of, ttl_ms
from callcenter.config import ConfigError, build_config

TOKEN = "A-token_of-43-characters-xxxxxxxxxxxxxxxxxx"


def clock_at(t: float) -> task.Clock:
    clock = task.Clock()
    clock.advance(t)
    return clock


def test_a_new_session_is_not_kept_until_it_is_kept():
    """``new`` makes a session (fresh token, expiry a lifetime away) without keeping it; ``keep`` keeps it."""
    store = SessionStore(clock_at(1000), 60)
    session = store.new("1001", "agent", frozenset({"east"}))
    assert (session.agent, session.role, session.groups, session.expires_at) == ("1001", "agent",
                                                                                  frozenset({"east"}), 1060)
    assert store.get(session.token) is None and store.tokens() == []
    assert store.keep(session) is session and store.get(session.token) == session
    assert store.new("1001", "agent").token != session.token


def test_tokens_lists_the_live_sessions_only():
    """A session kept from another daemon expires at its own ``expires_at``, like one opened here."""
    clock = clock_at(1000)
    store = SessionStore(clock, 60)
    mine = store.open("1001", "agent")
    theirs = store.keep(Session("elsewhere", "1002", "agent", 1010))
    assert sorted(store.tokens()) == sorted([mine.token, theirs.token])
    clock.advance(10)
    assert store.tokens() == [mine.token] and store.get("elsewhere") is None


def test_the_redis_key_is_the_tokens_sha256_never_the_token():
    key = key_of("cc:desktop:", TOKEN)
    assert key == "cc:desktop:session:" + hashlib.sha256(TOKEN.encode()).hexdigest()
    assert TOKEN not in key and key_of("cc:desktop:", TOKEN + "x") != key


def test_a_session_comes_back_from_its_json_with_the_token_it_was_looked_up_by():
    session = Session(TOKEN, "王芳", "supervisor", 1_700_000_480.5, frozenset({"west", "east"}))
    text = encode(session)
    assert json.loads(text) == {"agent": "王芳", "role": "supervisor", "groups": ["east", "west"],
                                "expires_at": 1_700_000_480.5}
    assert TOKEN not in text
    assert decode(TOKEN, text.encode()) == session == decode(TOKEN, text)


@pytest.mark.parametrize("raw, reason", [
    (b"\xff\xfe{}", "not UTF-8 JSON"),
    (b"", "not UTF-8 JSON"),
    (b"agent=1001", "not UTF-8 JSON"),
    (b"[1, 2]", "not a JSON object but list"),
    (b'{"role": "agent", "groups": [], "expires_at": 2e9}', "agent: expected a login"),
    (b'{"agent": 1001, "role": "agent", "groups": [], "expires_at": 2e9}', "agent: expected a login"),
    (b'{"agent": "1001", "role": "root", "groups": [], "expires_at": 2e9}', "role: expected one of"),
    (b'{"agent": "1001", "role": "agent", "groups": "east", "expires_at": 2e9}', "groups: expected a list"),
    (b'{"agent": "1001", "role": "agent", "groups": [7], "expires_at": 2e9}', "groups: expected a list"),
    (b'{"agent": "1001", "role": "agent", "groups": [], "expires_at": "soon"}', "expires_at: expected"),
    (b'{"agent": "1001", "role": "agent", "groups": [], "expires_at": true}', "expires_at: expected"),
    (b'{"agent": "1001", "role": "agent", "groups": [], "expires_at": NaN}', "expires_at: expected"),
    (b'{"agent": "1001", "role": "agent", "groups": []}', "expires_at: expected"),
])
def test_anything_but_a_whole_session_is_refused_with_a_reason(raw, reason):
    with pytest.raises(BadSession, match=reason):
        decode(TOKEN, raw)


def test_the_key_lives_until_the_session_expires_rounded_up():
    session = Session(TOKEN, "1001", "agent", 1000.0)
    assert ttl_ms(session, 940.0) == 60_000
    assert ttl_ms(session, 999.9995) == 1
    assert ttl_ms(session, 1000.0) == 1 and ttl_ms(session, 2000.0) == 1


def test_the_recheck_period_is_15_seconds_unless_configured_and_must_be_positive():
    base = {"asterisk": {"ami_secret": "x"}}
    assert build_config(base, environ={}).desktop.session_recheck_seconds == 15
    assert build_config({**base, "desktop": {"session_recheck_seconds": 2.5}},
                        environ={}).desktop.session_recheck_seconds == 2.5
    for bad, reason in ((0, "less than or equal to the minimum of 0"), (-1, "less than or equal to the minimum"),
                        ("15", "expected a number")):
        with pytest.raises(ConfigError) as info:
            build_config({**base, "desktop": {"session_recheck_seconds": bad}}, environ={})
        [problem] = info.value.problems
        assert problem.key == "desktop.session_recheck_seconds" and reason in problem.reason, problem
