"""Simulator scenario → `watcher run` pollers → events topic: exactly the scenario's transitions.

The simulator's clock is frozen and stepped through every transition instant; after each step
the test waits until the pipeline has published what the step made visible. The worker is
SIGKILLed halfway, several instants pass while it is down, and a new worker takes over: what
changed meanwhile is published once, and nothing published before is published again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.harness import WatchSpec, Worker, unique_prefix, wait_for, write_config
from tests.integration.topic import TopicCollector
from watcher.events import JobEvent
from watcher.simulator.server import small_scenario_path, start_simulator
from watcher.simulator.settings import Settings

pytestmark = pytest.mark.timeout(300)

Row = tuple[str, str, str, str | None, str]  # source, project, job_id, from, to


def observed(transitions: list, instants: list[float]) -> Counter[Row]:
    """What a poller that looks at exactly ``instants`` sees: per job, consecutive distinct statuses."""
    by_job: dict[tuple[str, str, str], list[tuple[float, str]]] = {}
    for t in transitions:
        by_job.setdefault((t.source, t.project, t.job_id), []).append((t.at_seconds, t.to_status))
    out: Counter[Row] = Counter()
    for (source, project, job_id), steps in by_job.items():
        steps.sort()
        last: str | None = None
        for at in instants:
            now = [s for when, s in steps if when <= at]
            if not now or now[-1] == last:
                continue
            out[(source, project, job_id, last, now[-1])] += 1
            last = now[-1]
    return out


def rows(events: list) -> Counter[Row]:
    return Counter(
        (e.source, e.project_id, e.job_id, e.prev_status, e.status) for e in events if isinstance(e, JobEvent)
    )


async def test_scenario_transitions_exactly_across_a_poller_restart(broker, tmp_path: Path):
    running = await start_simulator(scenario=small_scenario_path(), settings=Settings(speed=0))
    sim = running.sim
    projects = list(running.projects)
    watches = [
        WatchSpec("workspace", projects),
        WatchSpec("workspaceapp", projects, job_types=["CREATE_SERVER"]),
        WatchSpec("script", projects),
    ]
    for p in projects:
        if sim.job_ids("evs", p):
            watches.append(WatchSpec("evs", [p], job_ids=sim.job_ids("evs", p)))
        if sim.job_ids("appjob", p):
            watches.append(WatchSpec("appjob", [p], job_ids=sim.job_ids("appjob", p)))
    prefix = unique_prefix("pipe")
    cfg = write_config(tmp_path / "w.toml", leg=broker, prefix=prefix, sim_url=running.url, watches=watches)
    collector = await TopicCollector(broker.conn, f"{prefix}.events").start()
    transitions = sim.transitions()
    instants = sorted({0.0, *(t.at_seconds for t in transitions)})
    half = len(instants) // 2
    down = instants[half : half + 3]  # instants that pass while no worker runs
    seen_instants: list[float] = []
    worker = Worker(cfg, tmp_path / "worker1.log").start()
    try:
        for i, at in enumerate(instants):
            if i == half:
                worker.kill()
                for gone in down:
                    sim.set_time(gone)
                worker = Worker(cfg, tmp_path / "worker2.log").start()
            if at in down:
                continue
            sim.set_time(at)
            seen_instants.append(at)
            want = observed(transitions, seen_instants)
            await wait_for(lambda want=want: rows(collector.records) >= want, 90, f"transitions up to t={at}", worker)
        await asyncio.sleep(3)  # anything extra (a duplicate, a bogus vanish) would arrive now
        got = rows(collector.records)
        want = observed(transitions, seen_instants)
        assert got == want, f"extra: {got - want}\nmissing: {want - got}"
        assert sum(want.values()) >= 40
        # a change that happened while watcher was down is published once, when seen
        assert any(t.at_seconds in down for t in transitions)
        for e in collector.records:
            assert e.observed_at.tzinfo is not None and e.region == "cn-north-4"
    finally:
        worker.stop()
        await collector.stop()
        await running.stop()
