"""By-id jobs handed over at run time: `watcher track` publishes, the owning worker follows the job."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.harness import ROOT, WatchSpec, Worker, unique_prefix, wait_for, write_config
from tests.integration.topic import TopicCollector
from watcher.events import JobEvent
from watcher.simulator.server import small_scenario_path, start_simulator
from watcher.simulator.settings import Settings

pytestmark = pytest.mark.timeout(240)


async def test_watcher_track_follows_an_evs_job_until_it_ends(broker, tmp_path: Path):
    running = await start_simulator(scenario=small_scenario_path(), settings=Settings(speed=0))
    sim = running.sim
    project = running.projects[0]
    job_id = sim.job_ids("evs", project)[0]
    prefix = unique_prefix("track")
    cfg = write_config(
        tmp_path / "w.toml", leg=broker, prefix=prefix, sim_url=running.url, watches=[WatchSpec("evs", [project])]
    )
    collector = await TopicCollector(broker.conn, f"{prefix}.events").start()
    worker = Worker(cfg, tmp_path / "worker.log").start()
    try:
        mine = [t for t in sim.transitions() if t.source == "evs" and t.project == project]
        # the worker creates its topics first; a producer before that could auto-create one
        await wait_for(lambda: "created topics" in worker.output(), 60, "the worker's topics", worker)
        out = subprocess.run(
            [sys.executable, "-m", "watcher.cli", "track", "evs", job_id, "--project", project, "--config", str(cfg)],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert f"tracking evs job {job_id}" in out.stdout
        sim.set_time(sim.horizon() + 1)

        def events() -> Counter:
            return Counter(
                (e.job_id, e.prev_status, e.status) for e in collector.records
                if isinstance(e, JobEvent) and (e.job_id == job_id or e.parent_job_id == job_id)
            )

        final = next(t.to_status for t in sorted(mine, key=lambda t: t.at_seconds, reverse=True) if t.job_id == job_id)
        await wait_for(lambda: (job_id, None, final) in events(), 90, "the tracked job's final status", worker)
        assert events()[(job_id, None, final)] == 1
        # only the tracked job (and its own sub-jobs) was followed
        assert all(e.job_id == job_id or e.parent_job_id == job_id for e in collector.records)
    finally:
        worker.stop()
        await collector.stop()
        await running.stop()
