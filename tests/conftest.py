"""Shared fixtures: real Redis and PostgreSQL servers, started by the test run."""

from __future__ import annotations

import pytest

from tests import servers


@pytest.fixture(scope="session")
def redis_url():
    """URL of a real Redis server on a free loopback port (whole session)."""
    try:
        server = servers.start_redis()
    except servers.ServerUnavailable as exc:
        pytest.fail(f"Redis is needed for this test: {exc}", pytrace=False)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a real PostgreSQL server on a free loopback port (whole session)."""
    try:
        server = servers.start_postgres()
    except servers.ServerUnavailable as exc:
        pytest.fail(f"PostgreSQL is needed for this test: {exc}", pytrace=False)
    yield server.url
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The same test against SQLite (a temporary file) and real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.db'}"
    return request.getfixturevalue("postgres_url")
