"""The daemon's service tree on the asyncio reactor: starts, listens, retries AMI, stops clean."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from callcenter.app import build_root
from callcenter.config import build_config
from callcenter.service import StartupError
from tests.servers import free_port
from tests.util import copy_flows


def daemon_config(tmp_path, **over):
    doc = {
        "asterisk": {"ami_secret": "s", "ami_port": free_port(), "agi_port": free_port()},
        "crm": {"url": f"sqlite:///{tmp_path / 'cc.db'}", "journal": str(tmp_path / "j")},
        "desktop": {"port": free_port()},
        "ivr": {"flows_dir": copy_flows(tmp_path), "routes": str(tmp_path / "flows" / "routes.yaml")},
    }
    for section, values in over.items():
        doc.setdefault(section, {}).update(values)
    return build_config(doc, environ={})


def sockets_open():
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                fds.add(fd)
        except OSError:
            pass
    return fds


def refuses(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def sleep(seconds):
    return deferLater(reactor, seconds)


def test_runs_on_the_asyncio_reactor():
    """pytest-twisted and the daemon share Twisted's asyncio reactor."""
    assert type(reactor).__name__ == "AsyncioSelectorReactor"
    from callcenter.aio import install_asyncio_reactor, loop_of

    assert install_asyncio_reactor() is reactor
    assert isinstance(loop_of(reactor), asyncio.AbstractEventLoop)


@pytest_twisted.ensureDeferred
async def test_tree_starts_listens_retries_ami_and_stops_clean(tmp_path, caplog):
    """Ports listen while AMI retries with backoff; after stop no socket, timer or task is left."""
    caplog.set_level(logging.INFO)
    cfg = daemon_config(tmp_path)
    calls_before = set(reactor.getDelayedCalls())
    sockets_before = sockets_open()
    tasks_before = asyncio.all_tasks(asyncio.get_event_loop())

    root = build_root(cfg, reactor)
    await root.startService()
    assert not refuses(cfg.asterisk.agi_port)
    assert not refuses(cfg.desktop.port)
    await sleep(1.2)
    assert f"connecting to AMI at 127.0.0.1:{cfg.asterisk.ami_port}" in caplog.text
    assert "unreachable" in caplog.text and "retrying in" in caplog.text
    assert caplog.text.count("connecting to AMI") >= 2

    await root.stopService()
    await sleep(0)
    assert refuses(cfg.asterisk.agi_port) and refuses(cfg.desktop.port)
    leftover_calls = [c for c in reactor.getDelayedCalls() if c not in calls_before and c.active()]
    assert leftover_calls == []
    assert sockets_open() <= sockets_before
    leftover_tasks = [t for t in asyncio.all_tasks(asyncio.get_event_loop()) - tasks_before if not t.done()]
    assert leftover_tasks == []


@pytest_twisted.ensureDeferred
async def test_port_in_use_fails_the_start_and_releases_the_rest(tmp_path):
    """If the FastAGI port is taken the start fails naming it, and the desktop port is released."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        cfg = daemon_config(tmp_path, asterisk={"agi_port": busy.getsockname()[1]})
        root = build_root(cfg, reactor)
        with pytest.raises(StartupError) as info:
            await root.startService()
        assert info.value.service_name == "fastagi"
        assert refuses(cfg.desktop.port)
    finally:
        busy.close()


@pytest_twisted.ensureDeferred
async def test_unreachable_redis_fails_the_start(tmp_path):
    """A configured Redis that does not answer stops the start with a clear reason."""
    cfg = daemon_config(tmp_path, redis={"url": f"redis://127.0.0.1:{free_port()}/0"})
    root = build_root(cfg, reactor)
    with pytest.raises(StartupError) as info:
        await root.startService()
    assert info.value.service_name == "live-state"
    assert "does not answer" in str(info.value)


@pytest_twisted.ensureDeferred
async def test_tree_with_real_redis_and_postgres(tmp_path, redis_url, postgres_url):
    """The same tree runs on Redis and PostgreSQL with no code path change."""
    cfg = daemon_config(tmp_path, redis={"url": redis_url}, crm={"url": postgres_url})
    root = build_root(cfg, reactor)
    await root.startService()
    state = root.live_state.state
    from callcenter.aio import as_deferred

    assert await as_deferred(state.reserve_agent("9001", "call-1", 1000))
    await root.stopService()
