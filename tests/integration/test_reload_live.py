"""A running worker picks up an edited rule file, and refuses a broken one without losing rules."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.harness import WatchSpec, Worker, unique_prefix, wait_for, write_config
from tests.integration.test_observability import get, samples
from watcher.simulator.server import small_scenario_path, start_simulator
from watcher.simulator.settings import Settings
from watcher.sinks import WebhookSink, free_port

pytestmark = pytest.mark.timeout(180)

NONE = "rules:\n  - name: never\n    when: 'job_type == \"no-such-type\"'\n    notify: [hook]\n"
EVS = "rules:\n  - name: evs-failed\n    when: 'evs: FAIL *'\n    notify: [hook]\n"
BROKEN = "rules:\n  - name: evs-failed\n    when: 'evs: FIAL *'\n    notify: [hook]\n"


async def test_rule_file_edits_take_effect_without_restart(tansu_broker, tmp_path: Path):
    running = await start_simulator(scenario=small_scenario_path(), settings=Settings(speed=0))
    sink = await WebhookSink().start()
    rules = tmp_path / "rules.yaml"
    rules.write_text(NONE)
    sim, project = running.sim, running.projects[0]
    failing = {t.job_id for t in sim.transitions() if t.source == "evs" and t.project == project and t.to_status == "FAIL"}
    port = free_port()
    cfg = write_config(
        tmp_path / "w.toml", leg=tansu_broker, prefix=unique_prefix("reload"), sim_url=running.url,
        watches=[WatchSpec("evs", [project], job_ids=sim.job_ids("evs", project))],
        rules=[str(rules)], targets=[(sink.url("hook"), ["hook"])], extra='[health]\ntags = ["hook"]\n',
        app=f"web_port = {port}",
    )
    worker = Worker(cfg, tmp_path / "worker.log").start()
    try:
        await wait_for(lambda: "created topics" in worker.output(), 60, "worker start", worker)
        rules.write_text(BROKEN)
        await wait_for(lambda: "keeping the last good rules" in worker.output(), 30, "refused reload", worker)
        assert "rules.yaml:3:" in worker.output()
        await wait_for(lambda: len(sink.received) >= 1, 30, "the refused-change alert", worker)
        refused = sink.received[0].body
        assert refused["title"] == "[RULES] a rule file change was refused; the last good rules stay in force"
        assert f"{rules}:3:" in refused["message"] and "FIAL" in refused["message"]
        metrics = (await get(port, "/metrics"))[1]
        assert samples(metrics, "watcher_rule_reloads_total") == {'{result="applied"}': 0.0, '{result="refused"}': 1.0}
        assert samples(metrics, "watcher_rules_loaded") == {"": 1.0}
        rules.write_text(EVS)
        await wait_for(lambda: "rule files reloaded: 1 rule(s)" in worker.output(), 30, "reload", worker)
        sim.set_time(sim.horizon() + 1)
        await wait_for(lambda: len(sink.received) >= 1 + len(failing), 60, "alerts from the reloaded rule", worker)
        await asyncio.sleep(2)
        assert len(sink.received) == 1 + len(failing)  # the refused change was notified once
        titles = [r.body["title"] for r in sink.received[1:]]
        assert all("FAIL" in t for t in titles), titles
        metrics = (await get(port, "/metrics"))[1]
        assert samples(metrics, "watcher_rule_reloads_total") == {'{result="applied"}': 1.0, '{result="refused"}': 1.0}
    finally:
        worker.stop()
        await sink.stop()
        await running.stop()
