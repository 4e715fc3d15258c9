"""The whole product under test: simulator -> `watcher run` worker -> broker -> local HTTP sink.

Shared by the latency and burst benchmarks. The worker is a real ``watcher run`` subprocess
(started with ``tests/integration/harness.py``), configured for ``workspace`` targets in
every project of the scenario, one rule that fires on every failed job with the job id as
its title, and one Apprise ``json://`` target: a :class:`~watcher.sinks.WebhookSink` in this
process that stamps each arrival with the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.simulator.server import RunningSimulator, start_simulator
from watcher.simulator.settings import Settings
from watcher.sinks import Received, WebhookSink

RULES = """\
rules:
  - name: bench-failed
    when: "workspace: failed"
    notify: [sink]
    title: "{{ event.job_id }}"
"""


def project(k: int) -> str:
    return f"benchproject{k:04d}" + "0" * 16


def workspace_scenario(
    projects: int, jobs: int, desktops: int, *, start: Any, wait: Any, duration: Any, fail: float, seed: int = 1
) -> str:
    """``projects`` projects, each with ``jobs`` createDesktops jobs of ``desktops`` sub-jobs."""
    err = '{code: WKS.00129901, message: "The service is now unavailable to process the request."}'
    lines = [f"seed: {seed}", "projects:"]
    for k in range(projects):
        lines += [f"  {project(k)}:", "    workspace:",
                  f"      - {{job_type: createDesktops, count: {jobs}, desktops: {desktops}, start: {start}, "
                  f"wait: {wait}, duration: {duration}, fail: {fail}, errors: [{err}]}}"]
    return "\n".join(lines) + "\n"


@dataclass
class Arrival:
    job_id: str
    at: float  # time.time() when the sink had read the request


@dataclass
class Pipeline:
    """Simulator + sink + worker on one broker; ``arrivals`` fills as notifications land."""

    leg: Any
    tmp: Path
    arrivals: list[Arrival] = field(default_factory=list)
    running: RunningSimulator | None = None
    sink: WebhookSink | None = None
    worker: Any = None

    async def start(
        self, scenario: str, *, speed: float, fast: str, idle: str, tick: str = "1s", partitions: int = 8
    ) -> Pipeline:
        from tests.integration.harness import WatchSpec, Worker, unique_prefix, write_config

        path = self.tmp / "scenario.yaml"
        path.write_text(scenario)
        self.running = await start_simulator(scenario=path, settings=Settings(speed=speed))
        self.sink = await WebhookSink(on_receive=self._arrived).start()
        rules = self.tmp / "rules.yaml"
        rules.write_text(RULES)
        self.prefix = unique_prefix("bench")
        projects = list(self.running.sim.scenario.projects)
        cfg = write_config(
            self.tmp / "watcher.toml", leg=self.leg, prefix=self.prefix, sim_url=self.running.url,
            watches=[WatchSpec("workspace", projects)], rules=[str(rules)],
            targets=[(self.sink.url("alerts"), ["sink"])], partitions=partitions, fast=fast, idle=idle, tick=tick,
            retry="attempts = 5\nbase_delay = 0.2\nmax_delay = 1.0\nbudget_seconds = 60.0",
        )
        self.worker = Worker(cfg, self.tmp / "worker.log").start()
        return self

    def _arrived(self, rec: Received) -> None:
        title = rec.body.get("title", "") if isinstance(rec.body, dict) else ""
        self.arrivals.append(Arrival(title.strip(), time.time()))

    @property
    def sim(self) -> Any:
        assert self.running is not None
        return self.running.sim

    def polls(self) -> int:
        return int(self.sim.requests["workspace.list_ita_sub_jobs"])

    async def wait_for(self, predicate: Any, timeout: float, what: str) -> float:
        """Seconds waited until ``predicate()``; raises with the worker's log tail on timeout."""
        t0 = time.monotonic()
        while not predicate():
            if self.worker.proc.poll() is not None:
                raise RuntimeError(f"the worker exited while waiting for {what}:\n{self.worker.output()[-3000:]}")
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"{what}: not within {timeout:.0f}s\n{self.worker.output()[-3000:]}")
            await asyncio.sleep(0.05)
        return time.monotonic() - t0

    def failed_jobs(self) -> dict[str, float]:
        """Job id -> virtual second it turned FAILED, from the simulator's plan."""
        return {t.job_id: t.at_seconds for t in self.sim.transitions() if t.to_status == "FAILED"}

    async def stop(self) -> None:
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop)
        if self.sink is not None:
            await self.sink.stop()
        if self.running is not None:
            await self.running.stop()


class TopicCounter:
    """Counts the records of one topic as they arrive, and when the last one came."""

    def __init__(self, bootstrap: str, topic: str, partitions: int = 8) -> None:
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.count, self.last = 0, 0.0
        self.first: float | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> TopicCounter:
        from watcher.app.kafka import KafkaConnection
        from watcher.app.topics import ensure_topics

        conn = KafkaConnection.plaintext(self.bootstrap)
        await ensure_topics(conn, {self.topic: self.partitions})
        self._consumer = conn.consumer(self.topic, group_id=None, auto_offset_reset="earliest",
                                       enable_auto_commit=False, metadata_max_age_ms=1000)
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=10_000)
            n = sum(len(m) for m in batch.values())
            if n:
                now = time.time()
                self.first = self.first or now
                self.count, self.last = self.count + n, now

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._consumer.stop()


def wall_of(sim: Any) -> float:
    """Wall time of virtual second 0, for a simulator whose clock runs at speed 1."""
    return time.time() - sim.now()


def summary(values: Sequence[float]) -> dict[str, float]:
    from bench.report import percentile

    return {"n": len(values), "p50": percentile(list(values), 50), "p99": percentile(list(values), 99),
            "max": max(values), "min": min(values)}
