"""Which worker polls which target: the consumer group's partitions decide, on both brokers.

Two `watcher run` workers on one config. What each polls is read from what each says on
`<prefix>.status` (a `TargetStatus` per target it polls, naming the worker), and from the
partitions each logs it took: a worker polls exactly the targets of its own partitions, the two
never share a target, and when one stops the other takes its targets over.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import WatchSpec, Worker, unique_prefix, wait_for, write_config
from tests.integration.topic import TopicCollector
from watcher import events as ev
from watcher.app.poll import partition_for
from watcher.simulator.server import start_simulator
from watcher.simulator.settings import Settings

pytestmark = pytest.mark.timeout(240)

PROJECTS = [f"ownershipproject{k:02d}" + "0" * 14 for k in range(8)]
SCENARIO = "seed: 31\nprojects:\n" + "".join(
    f"  {p}:\n    workspace:\n      - {{job_type: createDesktops, desktops: 2, start: 0, wait: 1, duration: 600}}\n"
    for p in PROJECTS
)
POLLING = re.compile(r"polling \d+ target\(s\) of partitions \[([\d, ]*)\]")


def partitions_of(worker: Worker) -> set[int]:
    """The partitions the worker last said it polls."""
    found = POLLING.findall(worker.output())
    return {int(p) for p in found[-1].split(",") if p.strip()} if found else set()


def latest(statuses: TopicCollector) -> dict[str, str]:
    """Target id → the worker of its latest status record."""
    out: dict[str, str] = {}
    for r in statuses.records:
        if isinstance(r, ev.TargetStatus):
            out[r.target] = r.worker
    return out


async def test_each_target_is_polled_by_the_owner_of_its_partition_and_moves_when_a_worker_stops(
    broker: Any, tmp_path: Path
) -> None:
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    running = await start_simulator(scenario=tmp_path / "scenario.yaml", settings=Settings(speed=0))
    prefix = unique_prefix("own")
    cfg = write_config(tmp_path / "watcher.toml", leg=broker, prefix=prefix, sim_url=running.url,
                       watches=[WatchSpec("workspace", PROJECTS)], session_timeout="6s")  # fmt: skip
    targets = {f"workspace/cn-north-4/{p}" for p in PROJECTS}
    statuses = await TopicCollector(broker.conn, f"{prefix}.status").start()
    one = Worker(cfg, tmp_path / "one.log").start()
    two: Worker | None = None
    try:
        await wait_for(lambda: set(latest(statuses)) == targets, 90, "every target's status from worker one", one)
        first = set(latest(statuses).values())
        assert len(first) == 1  # one worker: it polls all of them
        two = Worker(cfg, tmp_path / "two.log").start()

        def split() -> bool:
            a, b = partitions_of(one), partitions_of(two)
            return bool(a) and bool(b) and not a & b and len(a | b) == 4

        await wait_for(split, 120, "the two workers sharing the partitions", two)
        mine = {"one": partitions_of(one), "two": partitions_of(two)}
        owner = {t: "one" if partition_for(t, 4) in mine["one"] else "two" for t in targets}
        assert set(owner.values()) == {"one", "two"}, "the test's targets must fall on both workers' partitions"
        statuses.records.clear()
        await wait_for(lambda: set(latest(statuses)) == targets, 90, "fresh statuses after the rebalance", two)
        by_worker: dict[str, set[str]] = {}
        for target, worker in latest(statuses).items():
            by_worker.setdefault(worker, set()).add(target)
        assert len(by_worker) == 2  # two workers, each with its own targets, none shared
        assert sorted(map(frozenset, by_worker.values()), key=len) == sorted(
            (frozenset(t for t, o in owner.items() if o == name) for name in ("one", "two")), key=len)

        two.stop()
        statuses.records.clear()
        await wait_for(lambda: set(latest(statuses)) == targets and len(set(latest(statuses).values())) == 1, 120,
                       "worker one polling every target again", one)  # fmt: skip
        await asyncio.sleep(0)
    finally:
        one.stop()
        if two is not None:
            two.stop()
        await statuses.stop()
        await running.stop()
