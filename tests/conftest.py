"""Shared fixtures: real Redis and PostgreSQL servers, started by the test run."""

from __future__ import annotations

import os

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


# -- a real Asterisk 22 (tests/real_asterisk.py) ---------------------------------------------------------

_real_asterisk_outcomes = {"passed": 0, "skipped": 0, "failed": 0}


def pytest_configure(config):
    config.addinivalue_line("markers", "real_asterisk: runs against a real Asterisk 22 with SIPp (started by the run)")


def pytest_runtest_logreport(report):
    if "real_asterisk" in report.keywords:
        if report.when == "call" and report.passed:
            _real_asterisk_outcomes["passed"] += 1
        elif report.skipped:
            _real_asterisk_outcomes["skipped"] += 1
        elif report.failed:
            _real_asterisk_outcomes["failed"] += 1


def pytest_sessionfinish(session, exitstatus):
    """With CALLCENTER_REQUIRE_ASTERISK=1 (CI), a run where no real-Asterisk test passed fails."""
    from tests.real_asterisk import ENV_REQUIRE

    if os.environ.get(ENV_REQUIRE) == "1" and exitstatus == 0 and session.testscollected:
        marked = [item for item in session.items if item.get_closest_marker("real_asterisk")]
        did_not_run = _real_asterisk_outcomes["passed"] == 0 or _real_asterisk_outcomes["skipped"] > 0
        if marked and did_not_run:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"{ENV_REQUIRE}=1 but the real-Asterisk tests did not all run: "
                                    f"{_real_asterisk_outcomes}", red=True)


@pytest.fixture(scope="session")
def pbx(tmp_path_factory):
    """A real Asterisk 22 with the project's asterisk_conf/ and the test overlay, for the whole session.

    Skipped, with the reason, when no Asterisk (or SIPp, or the core sounds) is on this machine;
    with CALLCENTER_REQUIRE_ASTERISK=1 that is a failure instead.
    """
    import shutil

    from tests import real_asterisk as ra

    try:
        install = ra.find_install()
    except ra.Unavailable as exc:
        if os.environ.get(ra.ENV_REQUIRE) == "1":
            pytest.fail(f"real Asterisk required: {exc}", pytrace=False)
        pytest.skip(f"real Asterisk: {exc}")
    workdir = ra.make_workdir()
    asterisk = ra.RealAsterisk(install, workdir)
    try:
        asterisk.prepare()
        ra.install_prompts(asterisk)
        asterisk.start()
        observer = ra.Observer(asterisk.ports.ami)
        observer.connect()
    except BaseException:
        asterisk.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    yield ra.Lab(install, asterisk, observer, workdir)
    observer.close()
    asterisk.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    leftovers = ra.leftovers(asterisk)
    assert not leftovers, f"the real Asterisk left things behind: {leftovers}"


@pytest.fixture
def lab(pbx):
    """The session's real Asterisk, cleaned after the test: phones and callers stopped, channels hung up,
    agents unpaused."""
    yield pbx
    pbx.cleanup()
