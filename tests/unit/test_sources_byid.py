"""By-id sources at hundreds of ids: bounded concurrency per target, least recently fetched
first, a time budget per poll, and no target starved by a big one.

The fake client here models the real one's global semaphore (``[cloud] max_concurrency``)
and records, per project, how many requests were in flight at once and in which order they
started. Time is a fake clock each request advances, so budgets are exact, not timed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest

from tests.unit.test_sources import PID, target
from watcher import events
from watcher.errors import JobNotFound, ThrottledError
from watcher.poller.loop import Intervals, MemoryStore, poll_target
from watcher.sources.appjob import AppJobSource
from watcher.sources.base import Target
from watcher.sources.byid import ByIdFetcher
from watcher.sources.evs import EvsSource


class RecordingClient:
    """A by-id API: every id answers RUNNING (``status`` overrides), behind a global semaphore."""

    def __init__(self, *, slots: int = 8, turns: int = 3, cost: float = 0.0, clock: list[float] | None = None) -> None:
        self.semaphore = asyncio.Semaphore(slots)
        self.turns, self.cost, self.clock = turns, cost, clock
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.started: list[tuple[str, str]] = []  # (project, job id) in the order requests went out
        self.status: dict[str, str] = {}
        self.errors: dict[str, Exception] = {}

    async def get(
        self, *, api: str, service: str, region: str, project_id: str, path: str, params: Sequence[Any] = ()
    ) -> bytes:
        job_id = path.rsplit("/", 1)[1]
        async with self.semaphore:
            self.started.append((project_id, job_id))
            self.in_flight[project_id] = self.in_flight.get(project_id, 0) + 1
            self.peak[project_id] = max(self.peak.get(project_id, 0), self.in_flight[project_id])
            try:
                for _ in range(self.turns):  # the request is in flight for a few loop turns
                    await asyncio.sleep(0)
                if self.clock is not None:
                    self.clock[0] += self.cost
                if job_id in self.errors:
                    raise self.errors[job_id]
                return json.dumps({"status": self.status.get(job_id, "RUNNING"), "job_type": "extendVolume"}).encode()
            finally:
                self.in_flight[project_id] -= 1


def evs_target(project: str = PID) -> Target:
    return Target(source="evs", region="cn-north-4", project_id=project)


def ids(n: int, prefix: str = "j") -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(n)]


async def test_one_target_never_has_more_than_its_concurrency_in_flight() -> None:
    client = RecordingClient(slots=8)
    result = await EvsSource(concurrency=4, budget=None).fetch(client, evs_target(), ids(50))
    assert client.peak == {PID: 4}
    assert [j for _, j in client.started] == ids(50)  # first poll: in the order given
    assert [o.job_id for o in result.observations] == ids(50)
    assert (result.requests, result.complete, result.gone) == (50, True, [])


async def test_a_big_target_does_not_starve_a_small_one() -> None:
    client = RecordingClient(slots=8)
    big, small = "bigproject" + "0" * 22, "smallproject" + "0" * 20
    src = EvsSource(concurrency=4, budget=None)
    big_result, small_result = await asyncio.gather(
        src.fetch(client, evs_target(big), ids(200, "b")), src.fetch(client, evs_target(small), ids(3, "s"))
    )
    assert client.peak == {big: 4, small: 3}
    # The small target's requests went out among the first 7, not after the big one's 200.
    assert sorted(i for i, (p, _) in enumerate(client.started) if p == small) == [4, 5, 6]
    assert (len(big_result.observations), len(small_result.observations)) == (200, 3)


async def test_a_budget_cut_poll_resumes_with_the_least_recently_fetched() -> None:
    now = [0.0]
    client = RecordingClient(clock=now, cost=1.0)  # every request takes one second of fake time
    src = EvsSource(concurrency=1, budget=10.0, clock=lambda: now[0])
    active = ids(25)
    polls = []
    for _ in range(4):
        client.started.clear()
        result = await src.fetch(client, evs_target(), active)
        polls.append(([j for _, j in client.started], result.complete))
        assert [o.job_id for o in result.observations] == sorted(j for _, j in client.started)  # in active's order
    assert (
        polls
        == [
            (ids(25)[0:10], False),
            (ids(25)[10:20], False),
            (ids(25)[20:25] + ids(25)[0:5], False),  # never fetched first, then the oldest
            (ids(25)[5:15], False),
        ]
    )


async def test_round_robin_sees_every_one_of_500_ids_once_per_round() -> None:
    """500 ids a poll cannot cover: each is seen exactly once every ceil(500 / per poll) polls."""
    now = [0.0]
    client = RecordingClient(clock=now, cost=40.0, turns=1)  # in ms: 40 ms a request, one at a time
    src = EvsSource(concurrency=1, budget=4000.0, clock=lambda: now[0])  # 100 requests per 4 s budget
    active = ids(500)
    rounds: list[list[str]] = []
    for _ in range(10):
        client.started.clear()
        await src.fetch(client, evs_target(), active)
        rounds.append([j for _, j in client.started])
    assert [len(r) for r in rounds] == [100] * 10
    for k in (0, 5):
        assert sorted(j for r in rounds[k : k + 5] for j in r) == active  # every id once per 5 polls


async def test_ids_that_left_active_leave_the_memo_and_new_ones_go_first() -> None:
    fetcher = ByIdFetcher(concurrency=2, budget=None)

    async def one(job_id: str) -> list[Any]:
        return []

    await fetcher.fetch("t", ["a", "b", "c"], one)
    assert fetcher.order("t", ["c", "b", "a", "d"]) == ["d", "c", "b", "a"]
    await fetcher.fetch("t", ["b", "d"], one)
    assert fetcher._last == {"t": {"b": 2, "d": 2}}  # a and c no longer tracked: forgotten


async def test_a_failure_stops_new_requests_fails_the_poll_and_leaves_the_order_alone() -> None:
    client = RecordingClient(slots=8)
    client.errors["j003"] = ThrottledError("slow down", api="evs.show_job", status=429)
    src = EvsSource(concurrency=2, budget=None)
    with pytest.raises(ThrottledError):
        await src.fetch(client, evs_target(), ids(20))
    assert len(client.started) == 5  # j000-j003, and j004 that was in flight beside j003; no more
    assert client.in_flight == {PID: 0}  # none left running
    del client.errors["j003"]
    client.started.clear()
    await src.fetch(client, evs_target(), ids(20))
    assert [j for _, j in client.started] == ids(20)  # the failed poll moved nothing in the memo


async def test_not_found_ids_are_gone_and_forgotten() -> None:
    client = RecordingClient()
    client.errors["j001"] = JobNotFound("query job fail.", api="evs.show_job", status=400, error_code="Common.0011")
    src = EvsSource(concurrency=4, budget=None)
    result = await src.fetch(client, evs_target(), ids(3))
    assert (result.gone, [o.job_id for o in result.observations], result.complete) == (["j001"], ["j000", "j002"], True)
    assert src._byid._last == {evs_target().id: {"j000": 1, "j002": 1}}


async def test_appjob_uses_the_same_bounded_fetch() -> None:
    client = RecordingClient(slots=8)

    async def get(**kw: Any) -> bytes:
        await RecordingClient.get(client, **kw)
        return json.dumps({"id": "x", "status": "RUNNING", "sub_jobs": []}).encode()

    client.get = get  # type: ignore[method-assign]
    result = await AppJobSource(concurrency=3, budget=None).fetch(client, target("appjob"), ids(30))
    assert client.peak == {PID: 3} and len(result.observations) == 30


async def test_through_the_poller_ids_not_reached_keep_their_state_and_stay_tracked() -> None:
    now = [0.0]
    client = RecordingClient(clock=now, cost=1.0)
    src = EvsSource(concurrency=1, budget=3.0, clock=lambda: now[0])
    t, store = evs_target(), MemoryStore()
    t = Target(source=t.source, region=t.region, project_id=t.project_id, job_ids=tuple(ids(5)))
    published: list[events.JobEvent] = []

    async def publish(batch: Sequence[events.JobEvent]) -> None:
        published.extend(batch)

    async def poll() -> list[tuple[str, str | None, str]]:
        published.clear()
        out = await poll_target(t, src, client, store, publish, intervals=Intervals(), force=True)
        assert out.error is None
        return [(e.job_id, e.prev_status, e.status) for e in published]

    assert await poll() == [(j, None, "RUNNING") for j in ids(5)[:3]]
    assert await poll() == [(j, None, "RUNNING") for j in ids(5)[3:]]
    client.status.update(j000="FAIL", j004="FAIL")
    assert await poll() == [("j000", "RUNNING", "FAIL")]  # j000 is the least recently fetched
    assert store.open_jobs(t.id) == ids(5)[1:]
    assert await poll() == [("j004", "RUNNING", "FAIL")]
    assert store.open_jobs(t.id) == ids(5)[1:4]
