"""The stateful rule stages in a running worker: grouping, silences, stuck timers.

Each test runs real `watcher run` workers on each broker leg against a frozen-clock simulator
and a real webhook sink, and asserts exactly what arrived (and, for silences, what was
recorded instead). The expectations come from the simulator's plan, never the pipeline.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import ROOT, WatchSpec, Worker, unique_prefix, wait_for, write_config
from tests.integration.topic import TopicCollector
from tests.kafka.legs import kafka_only
from watcher.events import Decision
from watcher.simulator import DEFAULT_PROJECTS
from watcher.simulator.server import RunningSimulator, start_simulator
from watcher.simulator.settings import Settings
from watcher.sinks import WebhookSink

pytestmark = pytest.mark.timeout(120)

P1 = DEFAULT_PROJECTS[0]
ERRORS = [("WKS.0112", "Insufficient desktop quota."), ("WKS.00129901", "The service is now unavailable.")]
FAST_RETRY = "attempts = 3\nbase_delay = 0.1\nmax_delay = 0.3\nbudget_seconds = 10.0"


def desktops_scenario(n: int, *, fail: float = 0.0, wait: float = 1, duration: str = "[1, 3]") -> str:
    errors = ", ".join(f'{{code: {c}, message: "{m}"}}' for c, m in ERRORS)
    return (
        f"seed: 3\nprojects:\n  {P1}:\n    workspace:\n"
        f"      - {{job_type: createDesktops, desktops: {n}, start: 0, wait: {wait}, duration: {duration},"
        f" fail: {fail}, errors: [{errors}]}}\n"
    )


class Rig:
    def __init__(self, broker: Any, tmp: Path) -> None:
        self.broker, self.tmp = broker, tmp
        self.prefix = unique_prefix("stg")
        self.workers: list[Worker] = []
        self.stops: list[Any] = []

    async def start(self, scenario: str, rules: str) -> tuple[RunningSimulator, WebhookSink, Path]:
        (self.tmp / "scenario.yaml").write_text(scenario)
        (self.tmp / "rules.yaml").write_text(rules)
        running = await start_simulator(scenario=self.tmp / "scenario.yaml", settings=Settings(speed=0))
        self.stops.append(running.stop)
        sink = await WebhookSink().start()
        self.stops.append(sink.stop)
        cfg = write_config(
            self.tmp / "watcher.toml", leg=self.broker, prefix=self.prefix, sim_url=running.url,
            watches=[WatchSpec("workspace", [P1])], rules=[str(self.tmp / "rules.yaml")],
            targets=[(sink.url(), ["webhook"])], retry=FAST_RETRY,
        )  # fmt: skip
        return running, sink, cfg

    def worker(self, cfg: Path, name: str = "worker") -> Worker:
        w = Worker(cfg, self.tmp / f"{name}.log").start()
        self.workers.append(w)
        return w

    async def collect(self, topic: str) -> TopicCollector:
        c = await TopicCollector(self.broker.conn, f"{self.prefix}.{topic}").start()
        self.stops.append(c.stop)
        return c

    async def close(self) -> None:
        for w in self.workers:
            w.stop()
        for stop in reversed(self.stops):
            await stop()


@pytest.fixture
async def rig(broker: Any, tmp_path: Path) -> Any:
    r = Rig(broker, tmp_path)
    yield r
    await r.close()


def watcher_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "watcher.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def failed_desktops(running: RunningSimulator) -> Counter[str]:
    """Error code → failed desktops, from the simulator's plan."""
    return Counter(
        d.timeline.error.code for d in running.sim.plan.projects[P1].desktops
        if d.timeline.failed and d.timeline.error is not None
    )  # fmt: skip


GROUPED_RULES = """\
rules:
  - name: batch-failed
    when: FAILED createDesktops
    group_by: [project_id, job_type, parent_job_id]
    group_wait: 4s
    notify: [webhook]
"""


@kafka_only
async def test_a_failing_batch_becomes_one_grouped_message(rig: Rig) -> None:
    """30 desktops, ~40% failing, seen at once on several partitions: one message, exact counts."""
    running, sink, cfg = await rig.start(desktops_scenario(30, fail=0.4), GROUPED_RULES)
    running.sim.set_time(running.sim.horizon())
    codes = failed_desktops(running)
    n = sum(codes.values())
    assert n == 12 and len(codes) == 2
    worker = rig.worker(cfg)
    await wait_for(lambda: len(sink.received) >= 1, 60, "the grouped message", worker)
    await asyncio.sleep(3)  # a second message (a split group, a duplicate) would arrive now
    assert len(sink.received) == 1, [r.body["title"] for r in sink.received]
    body = sink.received[0].body
    assert body["title"].endswith(f"(+{n - 1} more)")
    lines = body["message"].splitlines()
    assert lines[0].startswith(f"{n} alerts of rule batch-failed, grouped by project_id={P1}, job_type=createDesktops")
    ranked = sorted(codes.items(), key=lambda c: (-c[1], c[0]))
    assert f"Error codes: {', '.join(f'{c} ×{k}' for c, k in ranked)}" in lines
    # The live explain follows one failed desktop from its event into the delivered group message.
    desktop = next(d for d in running.sim.plan.projects[P1].desktops if d.timeline.failed)
    key = f"workspace/cn-north-4/{P1}/{desktop.id}"
    group = f"batch-failed|firing|project_id={P1}|job_type=createDesktops|parent_job_id={desktop.job_id}"
    story = watcher_cli("explain", key, "--config", str(cfg)).splitlines()
    assert story[0] == f"job {key} (live, from the {rig.prefix}.* topics)"
    assert story[1].endswith(" UTC  FAILED (first seen): batch-failed") and len(story) == 9, story
    own = story.index(f"alert batch-failed|{key}|->FAILED|firing (batch-failed, firing)")
    assert story[own + 1] == f"    grouped in {group}"
    [incident] = [line for line in story if line.startswith("incident ")]
    assert incident.startswith(f"incident {group}|group@") and incident.endswith(f"(batch-failed, firing, {n} job(s))")
    opened = story.index(incident) + 1
    assert story[opened].startswith("    open 1/1 to every target: ")
    assert story[opened + 1] == f"        delivered to json://127.0.0.1:{sink.port}/****", story


SILENCED_RULES = """\
rules:
  - name: desktop-failed
    when: FAILED createDesktops
    notify: [webhook]
"""


@kafka_only
async def test_a_cli_silence_mutes_alerts_and_records_them(rig: Rig) -> None:
    running, sink, cfg = await rig.start(desktops_scenario(6, fail=0.5), SILENCED_RULES)
    out = watcher_cli("silence", "add", "--match", f'project_id == "{P1}" && job_type == "createDesktops"',
                      "--for", "2h", "--comment", "planned rebuild", "--config", str(cfg))  # fmt: skip
    sid = out.split()[1]
    listed = watcher_cli("silence", "list", "--config", str(cfg))
    assert sid in listed and "active" in listed and "planned rebuild" in listed
    decisions = await rig.collect("decisions")
    running.sim.set_time(running.sim.horizon())
    n = sum(failed_desktops(running).values())
    assert n == 3
    worker = rig.worker(cfg)
    await wait_for(lambda: len(decisions.records) >= n, 60, "the silenced decisions", worker)
    await asyncio.sleep(2)
    assert sink.received == []
    assert all(isinstance(d, Decision) and d.result == "silenced" for d in decisions.records)
    assert {d.alert.event.job_id for d in decisions.records} == {
        d.id for d in running.sim.plan.projects[P1].desktops if d.timeline.failed
    }
    assert all(sid in d.reason and "planned rebuild" in d.reason for d in decisions.records)
    watcher_cli("silence", "expire", sid, "--config", str(cfg))
    assert "expired" in watcher_cli("silence", "list", "--config", str(cfg))


STUCK_RULES = """\
rules:
  - name: desktop-stuck
    when: RUNNING createDesktops
    for: 2s
    notify: [webhook]
"""


async def test_a_stuck_job_alerts_once_and_resolves_after_a_worker_restart(rig: Rig) -> None:
    """The timer fires in the first worker; the second recovers it from Kafka and sends the resolved notice."""
    running, sink, cfg = await rig.start(desktops_scenario(1, wait=1, duration=100), STUCK_RULES)
    running.sim.set_time(2)  # RUNNING, and the frozen clock keeps it so
    first = rig.worker(cfg, "worker1")
    await wait_for(lambda: len(sink.received) >= 1, 60, "the stuck alert", first)
    await asyncio.sleep(2)
    assert [r.body["title"].split()[0] for r in sink.received] == ["[STUCK]"]
    first.stop()
    second = rig.worker(cfg, "worker2")
    await asyncio.sleep(4)  # let it take over before the job moves on
    running.sim.set_time(running.sim.horizon())
    await wait_for(lambda: len(sink.received) >= 2, 60, "the resolved notice", second)
    await asyncio.sleep(2)
    titles = [r.body["title"] for r in sink.received]
    assert [t.split()[0] for t in titles] == ["[STUCK]", "[RESOLVED]"], titles
    assert "no longer RUNNING" in titles[1]


BURST_RULES = """\
rules:
  - name: failures-burst
    when: FAILED createDesktops
    burst: {count: 5, within: 10m, by: [project_id]}
    notify: [webhook]
"""


@kafka_only
async def test_failures_across_partitions_make_one_burst_alert(rig: Rig) -> None:
    """8 failed desktops land on several partitions; the burst counts them in one window: one alert."""
    running, sink, cfg = await rig.start(desktops_scenario(8, fail=1.0), BURST_RULES)
    running.sim.set_time(running.sim.horizon())
    worker = rig.worker(cfg)
    await wait_for(lambda: len(sink.received) >= 1, 60, "the burst alert", worker)
    await asyncio.sleep(3)  # a second episode or a duplicate would arrive now
    assert len(sink.received) == 1, [r.body["title"] for r in sink.received]
    title = sink.received[0].body["title"]
    assert title == f"[BURST] 5 × FAILED createDesktops within 10m: project_id={P1}", title


INHIBITING_RULES = """\
rules:
  - name: batch-failing
    when: FAILED createDesktops
    share: {min: 0.05, of: parent}
    inhibits: [desktop-failed]
    notify: [webhook]
  - name: failures-burst
    when: FAILED createDesktops
    burst: {count: 3, within: 10m, by: [project_id]}
    inhibits: [desktop-failed]
    notify: [webhook]
  - name: desktop-failed
    when: FAILED createDesktops
    group_by: [project_id, job_type, parent_job_id]
    group_wait: 4s
    notify: [webhook]
"""


@kafka_only
async def test_share_and_burst_alerts_inhibit_the_per_desktop_alerts_they_cover(rig: Rig) -> None:
    """20 desktops of one job, 8 failing: one share alert, one burst alert; the grouped per-desktop
    alerts are recorded as inhibited at their flush, and none of them is sent."""
    running, sink, cfg = await rig.start(desktops_scenario(20, fail=0.4), INHIBITING_RULES)
    decisions = await rig.collect("decisions")
    running.sim.set_time(running.sim.horizon())
    failed = {d.id for d in running.sim.plan.projects[P1].desktops if d.timeline.failed}
    assert len(failed) == 8
    parent = running.sim.plan.projects[P1].desktops[0].job_id
    worker = rig.worker(cfg)
    await wait_for(lambda: len(decisions.records) >= len(failed), 60, "the inhibited decisions", worker)
    await wait_for(lambda: len(sink.received) >= 2, 30, "the share and burst alerts", worker)
    await asyncio.sleep(3)  # a grouped message, a second share or burst, a duplicate would arrive now
    titles = sorted(r.body["title"] for r in sink.received)
    assert len(titles) == 2, titles
    assert titles[0] == f"[BURST] 3 × FAILED createDesktops within 10m: project_id={P1}"
    assert titles[1].startswith("[SHARE] ") and f"of createDesktops {parent} match FAILED createDesktops" in titles[1]
    assert all(isinstance(d, Decision) and d.result == "inhibited" for d in decisions.records)
    assert sorted(d.alert.event.job_id for d in decisions.records) == sorted(failed)
    assert all(d.alert.rule == "desktop-failed" and "inhibited by " in d.reason for d in decisions.records)
    desktop = sorted(failed)[0]
    key = f"workspace/cn-north-4/{P1}/{desktop}"
    reason = next(d.reason for d in decisions.records if d.alert.event.job_id == desktop)
    story = watcher_cli("explain", key, "--config", str(cfg)).splitlines()
    assert story[1].endswith(" UTC  FAILED (first seen): batch-failing, failures-burst, desktop-failed"), story
    mine = story.index(f"alert desktop-failed|{key}|->FAILED|firing (desktop-failed, firing)")
    assert story[mine + 1] == f"    inhibited: {reason}"
    # The share or burst alert may have fired on this very desktop's event: then it is its story too.
    others = [(line, story[i + 1]) for i, line in enumerate(story) if line.startswith("alert ") and i != mine]
    assert all(o[0].endswith(("(batch-failing, firing)", "(failures-burst, firing)")) for o in others), story
    assert all(o[1] == "    delivered" for o in others) and len(story) == 4 + 2 * len(others), story
    parent_key = f"workspace/cn-north-4/{P1}/{parent}"
    assert watcher_cli("explain", parent_key, "--config", str(cfg)).splitlines()[1:] == [
        f"no event of this job on {rig.prefix}.events"
    ]
