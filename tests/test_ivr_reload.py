"""Hot reload of the flow set: valid swap, invalid refused, in-flight calls untouched,
versions kept, rollback; and the watcher service on an injected clock."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from callcenter.dbpool import DbPool
from callcenter.ivr.reload import FlowService, FlowsInvalid
from ivr_flows import commands as cmd
from ivr_flows.engine import resume, start
from ivr_flows.registry import FlowRegistry, NoFlows

SHIPPED = Path(__file__).resolve().parent.parent / "ivr_flows" / "flows"
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(SHIPPED, target, ignore=shutil.ignore_patterns(".history"))
    return target


def write(path: Path, text: str) -> None:
    """Write and move the mtime forward (file systems with coarse timestamps)."""
    stat = path.stat() if path.exists() else None
    path.write_text(text, encoding="utf-8")
    if stat is not None:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    write(path, text.replace(old, new, 1))


def call_to_main_menu(flow_set, flow_name: str = "hotline", ani: str = ""):
    """A call that pressed 1 for English and now waits in the main menu."""
    flow = flow_set.flows[flow_name]
    state, out = start(flow, flow_set.context("c1", ani, "4000"), NOW)
    if ani:
        state, out = resume(state, None, NOW)
    state, out = resume(state, "1", NOW)
    assert out == [cmd.GetDigits(("custom/cc-main-menu",), 5000, 1)]
    return state


def test_nothing_loaded_yet_is_an_error(flows_dir):
    """Before the first successful load there is no flow set to answer with."""
    with pytest.raises(NoFlows):
        FlowRegistry(flows_dir).current


def test_a_valid_edit_is_swapped_in_and_versioned(flows_dir):
    """The edited flow gets version 2; the set is replaced by a new object."""
    registry = FlowRegistry(flows_dir)
    first = registry.reload()
    assert first.ok and first.versions == {"acd_callback_offer": 1, "after_hours": 1, "hotline": 1, "vip": 1}
    old = registry.current
    edit(flows_dir / "hotline.yaml", "prompt: custom/cc-welcome", "prompt: beep")
    result = registry.reload()
    assert result.ok and result.changed == ("hotline",) and result.versions["hotline"] == 2
    assert registry.current is not old
    assert registry.current.flows["hotline"].version == 2
    assert start(registry.current.flows["hotline"], registry.current.context("c", "", "4000"), NOW)[1][0] == \
        cmd.Play("beep")
    assert [v.number for v in registry.history.versions("hotline")] == [1, 2]


def test_an_unchanged_reload_stores_no_version(flows_dir):
    """Reloading the same files changes nothing and writes no new version."""
    registry = FlowRegistry(flows_dir)
    registry.reload()
    result = registry.reload()
    assert result.ok and result.changed == ()
    assert len(registry.history.versions("hotline")) == 1


def test_an_invalid_edit_is_refused_and_the_old_set_keeps_answering(flows_dir):
    """Every error comes back with its line; current is still the old set."""
    registry = FlowRegistry(flows_dir)
    registry.reload()
    old = registry.current
    edit(flows_dir / "hotline.yaml", "validate: luhn(account)", "validate: luhn(acount)")
    edit(flows_dir / "vip.yaml", "type: queue", "type: queu")
    result = registry.reload()
    assert not result.ok
    assert [(Path(e.file).name, e.line, e.column, e.message.split(";")[0]) for e in result.errors] == [
        ("hotline.yaml", 73, 20, "unknown variable 'acount' (did you mean 'account'?)"),
        ("vip.yaml", 37, 11, "unknown node type 'queu' (did you mean 'queue'?)"),
    ]
    assert registry.current is old
    assert result.versions == {"acd_callback_offer": 1, "after_hours": 1, "hotline": 1, "vip": 1}
    assert len(registry.history.versions("hotline")) == 1


def test_a_call_in_flight_finishes_on_the_version_it_started(flows_dir):
    """Press 1 after a reload that swapped keys 1 and 2: the running call still reaches billing,
    a new call technical support."""
    registry = FlowRegistry(flows_dir)
    registry.reload()
    running = call_to_main_menu(registry.current, ani="5550000")
    edit(flows_dir / "hotline.yaml", "      1: billing\n      2: support", "      1: support\n      2: billing")
    assert registry.reload().ok
    state, _ = resume(running, "1", NOW)
    assert state.visited()[-2:] == ["billing", "ask_account"]
    fresh = call_to_main_menu(registry.current, ani="5550000")
    state, out = resume(fresh, "1", NOW)
    assert state.visited()[-2:] == ["support", "busy_check"] and out[-1] == cmd.QueueStats(("support",))


def test_a_call_in_flight_keeps_the_flows_it_jumps_to(flows_dir):
    """A VIP-line call that jumps to the hotline after a reload gets the hotline it started with."""
    registry = FlowRegistry(flows_dir)
    registry.reload()
    vip = registry.current.flows["vip"]
    state, out = start(vip, registry.current.context("c2", "5551234", "4001"), NOW)
    edit(flows_dir / "hotline.yaml", "prompt: custom/cc-welcome", "prompt: beep")
    assert registry.reload().ok
    state, out = resume(state, None, NOW)  # not a VIP: goto hotline
    assert out[0] == cmd.Play("custom/cc-welcome")


def test_rollback_restores_the_previous_version_as_a_new_one(flows_dir):
    """rollback NAME writes back the version before the current one and records it again."""
    registry = FlowRegistry(flows_dir)
    registry.reload()
    original = (flows_dir / "hotline.yaml").read_text()
    edit(flows_dir / "hotline.yaml", "prompt: custom/cc-welcome", "prompt: beep")
    registry.reload()
    result = registry.rollback("hotline")
    assert result.ok and result.restored.number == 1 and result.recorded.number == 3
    assert (flows_dir / "hotline.yaml").read_text() == original
    assert registry.reload().versions["hotline"] == 3
    assert registry.current.flows["hotline"].digest == registry.history.get("hotline", 1).digest
    assert registry.rollback("hotline", 2).recorded.number == 4
    assert "no version 9" in registry.rollback("hotline", 9).message


def test_rollback_to_a_version_that_no_longer_validates_is_refused(flows_dir):
    """A version naming a prompt removed since is checked first and refused; the file is untouched."""
    registry = FlowRegistry(flows_dir)
    edit(flows_dir / "prompts.yaml", "  - beep\n", "  - beep\n  - custom/old-welcome\n")
    edit(flows_dir / "hotline.yaml", "prompt: custom/cc-welcome", "prompt: custom/old-welcome")
    registry.reload()
    edit(flows_dir / "hotline.yaml", "prompt: custom/old-welcome", "prompt: custom/cc-welcome")
    edit(flows_dir / "prompts.yaml", "  - custom/old-welcome\n", "")
    assert registry.reload().ok
    current = (flows_dir / "hotline.yaml").read_text()
    result = registry.rollback("hotline", 1)
    assert not result.ok and "not valid with the current files" in result.message
    assert [e.message.split(":")[0] for e in result.errors] == ["missing prompt file 'custom/old-welcome'"]
    assert (flows_dir / "hotline.yaml").read_text() == current


def test_history_numbers_never_collide(flows_dir):
    """Two writers: a version file that appeared meanwhile is skipped, not overwritten."""
    registry = FlowRegistry(flows_dir)
    registry.reload()
    (flows_dir / ".history" / "hotline" / "0002.yaml").write_text("taken by another writer\n")
    edit(flows_dir / "hotline.yaml", "prompt: custom/cc-welcome", "prompt: beep")
    assert registry.reload().versions["hotline"] == 3


# -- the service -----------------------------------------------------------------


def service_on(flows_dir: Path, clock) -> FlowService:
    """The service with its watcher on ``clock`` and its file work on a real thread."""
    return FlowService(FlowRegistry(flows_dir), clock, interval=2.0, pool=DbPool(reactor, name="ivr-flows", size=1))


async def poll(service: FlowService, clock: task.Clock, seconds: float) -> None:
    clock.advance(seconds)
    await service.settled()


@pytest_twisted.ensureDeferred
async def test_service_reloads_an_edited_file_on_the_next_poll(flows_dir):
    """The watcher polls on the injected clock; an edit is live within one interval."""
    clock = task.Clock()
    service = service_on(flows_dir, clock)
    await service.startService()
    assert service.registry.current.flows["hotline"].version == 1
    edit(flows_dir / "hotline.yaml", "prompt: custom/cc-welcome", "prompt: beep")
    await poll(service, clock, 1.9)
    assert service.registry.current.flows["hotline"].version == 1
    await poll(service, clock, 0.1)
    assert service.registry.current.flows["hotline"].version == 2
    await service.stopService()
    assert clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_service_logs_a_refused_edit_and_keeps_watching(flows_dir, caplog):
    """An invalid edit is logged with its errors; fixing it later is picked up."""
    clock = task.Clock()
    service = service_on(flows_dir, clock)
    await service.startService()
    old = service.registry.current
    edit(flows_dir / "after_hours.yaml", "fallback: goodbye ", "fallback: goodby ")
    with caplog.at_level(logging.ERROR):
        await poll(service, clock, 2)
    assert service.registry.current is old
    assert "IVR flow edit refused, the previous flows keep answering calls" in caplog.text
    assert "after_hours.yaml:24:15: dangling fallback: no node 'goodby' in this flow" in caplog.text
    edit(flows_dir / "after_hours.yaml", "fallback: goodby ", "fallback: goodbye ")
    await poll(service, clock, 2)
    assert service.registry.current is not old
    await service.stopService()


@pytest_twisted.ensureDeferred
async def test_sighup_reload_and_a_broken_check_do_not_stop_the_watcher(flows_dir, caplog, monkeypatch):
    """reload() (what SIGHUP calls) works at any time; an exception in a poll is logged, polling goes on."""
    clock = task.Clock()
    service = service_on(flows_dir, clock)
    await service.startService()
    edit(flows_dir / "vip.yaml", "prompt: custom/cc-vip-welcome", "prompt: beep")
    assert (await service.reload()).changed == ("vip",)
    calls = []
    monkeypatch.setattr(service.registry, "fingerprint", lambda: calls.append(1) / 0)
    with caplog.at_level(logging.ERROR):
        await poll(service, clock, 2)
        await poll(service, clock, 2)
    assert len(calls) == 2 and "IVR flow watcher: check failed; still watching" in caplog.text
    await service.stopService()


@pytest_twisted.ensureDeferred
async def test_service_refuses_to_start_with_invalid_flows(flows_dir):
    """A failed start names every error."""
    edit(flows_dir / "vip.yaml", "type: queue", "type: queu")
    service = service_on(flows_dir, task.Clock())
    with pytest.raises(FlowsInvalid, match=r"1 error\(s\) in the IVR flows:\n.*vip.yaml:37:11: unknown node type"):
        await service.startService()


# -- file work off the reactor ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_reload_reads_and_hashes_files_and_history_off_the_reactor_thread(flows_dir, monkeypatch):
    """With 300 stored versions of a flow, starting, a watched edit and a SIGHUP reload read, stat, hash and
    write the flow files and their history on the service's thread only; the swap is made on the reactor."""
    registry = FlowRegistry(flows_dir)
    text = (flows_dir / "hotline.yaml").read_text(encoding="utf-8")
    for n in range(300):
        registry.history.record("hotline", f"# draft {n}\n{text}")
    reactor_thread = threading.current_thread()
    touched: list[tuple[str, str, bool]] = []
    watching = [False]  # off while the test itself edits files

    def spy(owner, name):
        original = getattr(owner, name)

        def watched(*args, **kwargs):
            target = str(args[0])
            if watching[0] and target.startswith(str(flows_dir)):
                touched.append((name, target, threading.current_thread() is reactor_thread))
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, watched)

    for name in ("read_text", "stat", "iterdir"):
        spy(Path, name)
    spy(os, "open")
    swaps = []
    commit = registry.commit
    monkeypatch.setattr(registry, "commit", lambda prepared: (swaps.append(threading.current_thread()),
                                                              commit(prepared))[1])

    async def service_work(d):
        watching[0] = True
        try:
            return await d
        finally:
            watching[0] = False

    clock = task.Clock()
    service = FlowService(registry, clock, interval=2.0, pool=DbPool(reactor, name="ivr-flows", size=1))
    await service_work(service.startService())
    try:
        edit(flows_dir / "hotline.yaml", "prompt: custom/cc-welcome", "prompt: beep")
        watching[0] = True
        clock.advance(2)  # the watcher's poll
        await service_work(service.settled())
        assert service.registry.current.flows["hotline"].version == 302
        edit(flows_dir / "hotline.yaml", "prompt: beep", "prompt: custom/cc-welcome")
        result = await service_work(service.reload())  # SIGHUP
        assert result.ok and result.versions["hotline"] == 303
    finally:
        await service_work(service.stopService())
    history = [t for t in touched if "/.history/" in t[1]]
    assert history and any(name == "read_text" for name, _, _ in history)
    assert any(name == "open" for name, _, _ in history)  # the new versions were written
    assert [t[:2] for t in touched if t[2]] == []  # nothing on the reactor thread
    assert swaps == [reactor_thread] * 3


@pytest_twisted.ensureDeferred
async def test_reloads_never_overlap_and_a_broken_thread_job_is_logged(flows_dir, caplog, monkeypatch):
    """A poll while a reload is running is skipped; a failing look at the files is logged, the old set
    keeps answering and the watcher keeps watching."""
    clock = task.Clock()
    service = FlowService(FlowRegistry(flows_dir), clock, interval=2.0,
                          pool=DbPool(reactor, name="ivr-flows", size=1))
    await service.startService()
    try:
        old = service.registry.current
        monkeypatch.setattr(service.registry, "fingerprint", lambda: 1 / 0)
        with caplog.at_level(logging.ERROR):
            clock.advance(2)
            await service.settled()
            result = await service.reload()
        assert not result.ok and service.registry.current is old
        assert "IVR flow watcher: check failed; still watching" in caplog.text
        assert "IVR flow reload failed" in caplog.text
        monkeypatch.undo()
        edit(flows_dir / "vip.yaml", "prompt: custom/cc-vip-welcome", "prompt: beep")
        first = service.reload()
        assert service.check().result is None  # a reload is running: the poll does nothing
        assert (await first).changed == ("vip",)
    finally:
        await service.stopService()
