"""The poll stage without a broker: which targets it polls, when, and what it forgets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from watcher.app.metrics import Stats
from watcher.app.poll import PollRequest, PollStage, TableJobStore, partition_for
from watcher.poller.diff import JobState
from watcher.poller.loop import Intervals
from watcher.poller.outbox import Outbox
from watcher.sources.base import FetchResult, Target

N = 4


class Table:
    """The two things the store needs of a Faust table: ``data`` and ``send_changelog``."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.changelog: list[tuple[int, str, str | None]] = []

    def send_changelog(self, partition: int, key: str, value: str | None, **_: Any) -> Any:
        self.changelog.append((partition, key, value))
        done: asyncio.Future[None] = asyncio.get_event_loop().create_future()
        done.set_result(None)
        return done


class Source:
    """A list source that answers after ``delay`` and records who is being polled right now."""

    name, service, by_id = "workspace", "workspace", False

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.polled: list[str] = []
        self.running: set[str] = set()
        self.overlaps = 0

    async def fetch(self, client: Any, target: Target, active: Any) -> FetchResult:
        if target.id in self.running:
            self.overlaps += 1
        self.running.add(target.id)
        try:
            await asyncio.sleep(self.delay)
            self.polled.append(target.id)
            return FetchResult(observations=[])
        finally:
            self.running.discard(target.id)


class Comps:
    def __init__(self, source: Source) -> None:
        self._source, self.client, self.stats = source, None, Stats()

    def source(self, name: str) -> Source:
        return self._source


def targets(n: int) -> dict[str, Target]:
    out = [Target(source="workspace", region="r", project_id=f"project{i:03d}") for i in range(n)]
    return {t.id: t for t in out}


def stage(source: Source, parts: list[set[int] | None], fast: float = 0.2) -> PollStage:
    async def send(batch: Any) -> None:
        return None

    store = TableJobStore(Table(), N)
    return PollStage(targets=targets(12), comps=Comps(source), store=store, outbox=Outbox(send, bound=10),
                     intervals=Intervals(fast=fast, idle=fast), retention=3600, partitions=N,
                     owned=lambda: parts[0])  # fmt: skip


async def run_for(s: PollStage, seconds: float) -> None:
    task = asyncio.ensure_future(s.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_it_polls_exactly_the_targets_of_its_partitions_and_none_before_recovery() -> None:
    src = Source()
    parts: list[set[int] | None] = [None]  # recovering: no partitions yet
    s = stage(src, parts)
    await run_for(s, 0.3)
    assert src.polled == []
    parts[0] = {0, 2}
    await run_for(s, 0.7)
    mine = {t for t in s.targets if partition_for(t, N) in {0, 2}}
    assert set(src.polled) == mine and mine  # all of its own, nothing else
    assert all(src.polled.count(t) >= 2 for t in mine)  # on its schedule, again and again


async def test_partitions_leaving_wait_for_their_polls_in_flight_then_are_never_polled_again() -> None:
    src = Source(delay=0.3)
    parts: list[set[int] | None] = [{0, 1, 2, 3}]
    s = stage(src, parts, fast=0.1)
    task = asyncio.ensure_future(s.run())
    await asyncio.sleep(0.15)
    assert s.inflight  # polls under way
    leaving = {0, 1}
    parts[0] = None  # a rebalance started
    await s.drain(leaving)
    assert not [t for t in s.inflight if partition_for(t, N) in leaving]  # finished before the handover
    parts[0] = {2, 3}
    polled_before = len(src.polled)
    await asyncio.sleep(0.8)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not [t for t in src.polled[polled_before:] if partition_for(t, N) in leaving]
    assert src.overlaps == 0  # never two polls of one target at once


async def test_partitions_that_come_back_after_a_drain_are_polled_again() -> None:
    src = Source()
    parts: list[set[int] | None] = [{0, 1, 2, 3}]
    s = stage(src, parts)
    await run_for(s, 0.3)
    await s.drain({0, 1})  # revoked ...
    assert s.mine == {t for t in s.targets if partition_for(t, N) in {2, 3}}
    src.polled.clear()
    await run_for(s, 0.7)  # ... and the same partitions assigned again
    assert set(src.polled) == set(s.targets) and s.mine == set(s.targets)


async def test_a_track_request_polls_its_target_at_once_and_writes_the_id_first() -> None:
    src = Source()
    s = stage(src, [{0, 1, 2, 3}], fast=30.0)  # nothing is due for a long time
    tid = next(iter(s.targets))
    task = asyncio.ensure_future(s.run())
    await asyncio.sleep(0.1)
    s.request(PollRequest(target_id=tid, track=("job-1",), force=True))
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert src.polled.count(tid) >= 1
    assert s.store.job_state(tid, "job-1") is not None


@pytest.mark.parametrize(("final", "age", "configured", "kept"), [
    (True, 7200, False, False), (True, 60, False, True), (False, 7200, False, True), (True, 7200, True, True),
])  # fmt: skip
async def test_retention_forgets_only_jobs_that_ended_long_ago(final: bool, age: float, configured: bool, kept: bool) -> None:
    s = stage(Source(), [{0, 1, 2, 3}])
    t = next(iter(s.targets.values()))
    if configured:
        s.targets[t.id] = Target(source=t.source, region=t.region, project_id=t.project_id, job_ids=("j",))
    s.mine = set(s.targets)
    now = 100_000.0
    s.store.put_job_state(t.id, "j", JobState(status="FAILED" if final else "RUNNING", phase="failed",
                                               since=now - age, final=final))  # fmt: skip
    assert s.evict(now) == (0 if kept else 1)
    assert (s.store.job_state(t.id, "j") is not None) is kept
