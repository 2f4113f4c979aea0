"""Service lifecycle: ordered start, reported failures, reverse stop; backoff bounds."""

from __future__ import annotations

import pytest
import pytest_twisted

from callcenter.backoff import Backoff
from callcenter.service import AsyncMultiService, AsyncService, StartupError


class Recorder(AsyncService):
    def __init__(self, name, log, fail_start=False, fail_stop=False):
        self.name, self.log, self.fail_start, self.fail_stop = name, log, fail_start, fail_stop

    async def start(self):
        self.log.append(f"start {self.name}")
        if self.fail_start:
            raise OSError("port in use")

    async def stop(self):
        self.log.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError("stuck")


def tree(log, **flags):
    root = AsyncMultiService()
    for name in ("a", "b", "c"):
        Recorder(name, log, fail_start=flags.get(f"fail_start_{name}", False),
                 fail_stop=flags.get(f"fail_stop_{name}", False)).setServiceParent(root)
    return root


@pytest_twisted.ensureDeferred
async def test_children_start_in_order_and_stop_in_reverse():
    """a, b, c start in order and stop c, b, a."""
    log = []
    root = tree(log)
    await root.startService()
    assert root.running
    await root.stopService()
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
    assert not root.running


@pytest_twisted.ensureDeferred
async def test_failed_start_is_reported_and_started_children_are_stopped():
    """When b fails to start, a is stopped again and the error names b."""
    log = []
    root = tree(log, fail_start_b=True)
    with pytest.raises(StartupError) as info:
        await root.startService()
    assert info.value.service_name == "b"
    assert "port in use" in str(info.value)
    assert log == ["start a", "start b", "stop a"]
    assert not root.running


@pytest_twisted.ensureDeferred
async def test_a_child_failing_to_stop_does_not_keep_the_others_running(caplog):
    """If b fails to stop, a still stops and the failure is logged."""
    log = []
    root = tree(log, fail_stop_b=True)
    await root.startService()
    await root.stopService()
    assert log[-3:] == ["stop c", "stop b", "stop a"]
    assert "b failed to stop cleanly" in caplog.text


def test_backoff_first_retry_within_a_second_and_capped():
    """First retry <= 1 s, then doubling, never above 30 s, with jitter both ways."""
    b = Backoff()
    assert all(b.delay(0, lambda: r) <= 1.0 for r in (0.0, 0.5, 0.999))
    assert [b.delay(n, lambda: 0.5) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert b.delay(100, lambda: 0.999) <= 30.0
    assert b.delay(3, lambda: 0.0) < b.delay(3, lambda: 0.5) < b.delay(3, lambda: 0.99)
