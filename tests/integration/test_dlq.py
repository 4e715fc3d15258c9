"""Dead letters: a target that never accepts → the DLQ; `watcher dlq replay` → delivered once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.harness import ROOT, WatchSpec, Worker, unique_prefix, wait_for, write_config
from tests.kafka.legs import kafka_only
from watcher.app.dlq import read_dead
from watcher.simulator.server import small_scenario_path, start_simulator
from watcher.simulator.settings import Settings
from watcher.sinks import WebhookSink

pytestmark = pytest.mark.timeout(300)

RULES = """\
rules:
  - name: evs-failed
    when: "evs: FAIL *"
    notify: [hook]
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watcher.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=90)


@kafka_only
async def test_dead_letters_list_and_replay_exactly_once(broker, tmp_path: Path):
    running = await start_simulator(scenario=small_scenario_path(), settings=Settings(speed=0))
    sink = await WebhookSink(fail_always=True).start()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    sim, prefix = running.sim, unique_prefix("dlq")
    project = running.projects[0]
    failing = {t.job_id for t in sim.transitions() if t.source == "evs" and t.project == project and t.to_status == "FAIL"}
    assert failing, "the scenario must fail an EVS job"
    cfg = write_config(
        tmp_path / "w.toml", leg=broker, prefix=prefix, sim_url=running.url,
        watches=[WatchSpec("evs", [project], job_ids=sim.job_ids("evs", project))],
        rules=[str(rules)], targets=[(sink.url("hook").replace("json://", "json://ops:DLQSECRET4242@"), ["hook"])],
        retry="attempts = 2\nbase_delay = 0.1\nmax_delay = 0.2\nbudget_seconds = 5.0",
    )
    worker = Worker(cfg, tmp_path / "worker.log").start()
    try:
        sim.set_time(sim.horizon() + 1)
        dead: list = []

        async def poll_dead() -> bool:
            dead[:] = await read_dead(broker.conn, f"{prefix}.dlq", idle=0.3)
            return len(dead) >= len(failing)

        for _ in range(60):
            if await poll_dead():
                break
            await asyncio.sleep(1)
        assert {d.alert.event.job_id for d in dead} == failing, worker.output()[-3000:]
        assert all(d.reason and d.attempts == 2 for d in dead)
        assert sink.received == [] and sink.attempts == 2 * len(failing)

        listed = cli("dlq", "list", "--config", str(cfg))
        assert listed.returncode == 0, listed.stderr
        assert f"{len(failing)} dead letter(s)" in listed.stdout
        assert all(d.key in listed.stdout for d in dead)
        assert "DLQSECRET4242" not in listed.stdout + listed.stderr  # targets are shown masked

        sink.fail_always = False
        for _ in range(2):  # replaying twice still delivers each alert once
            out = cli("dlq", "replay", "--config", str(cfg))
            assert out.returncode == 0, out.stderr
            assert f"replayed {len(failing)} notification(s)" in out.stdout
            await wait_for(lambda: len(sink.received) >= len(failing), 60, "replayed alerts at the sink", worker)
        await asyncio.sleep(3)  # a second delivery would arrive now
        assert sorted(r.body["title"] for r in sink.received) == sorted(d.alert.title for d in dead)
        assert len(sink.received) == len(failing)
    finally:
        worker.stop()
        await sink.stop()
        await running.stop()
