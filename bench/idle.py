"""Idle (issue 11): 5,000 targets with no jobs at all — what does a `watcher run` worker cost?

Targets: 2,000 ``workspace`` projects, 2,000 ``workspaceapp`` projects (one job type) and 1,000
``script`` projects of a simulator that has no jobs: list sources, each a real request per poll
(a by-id target with no ids asks nothing, so it would flatter the figure). Poll settings are the
defaults a user gets (``fast`` 5 s, ``idle`` 60 s). The worker starts on the embedded broker;
once every target was polled once (counted at the simulator), the worker's CPU time is read
over a steady minute with psutil — one whole idle interval, so every target is polled once
more inside it — and reported as % of one core, beside the broker's and the requests made.

Goal: < 5% of one core for the worker.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procs import MIB, Meter
from bench.profile import describe
from bench.report import Goal, Section, Table
from bench.rig import CountingSimulator, Sink, wait_until
from watcher.simulator.scenario import ProjectSpec, Scenario

FULL = dict(workspace=2000, workspaceapp=2000, script=1000, fast="5s", idle="60s", window=60.0)
SMOKE = dict(workspace=20, workspaceapp=20, script=10, fast="0.5s", idle="2s", window=3.0)


def project(k: int) -> str:
    return f"idleproject{k:05d}" + "0" * 16


class IdleWorker:
    """One `watcher run` worker over the idle targets (a rig contender without failures)."""

    def __init__(self, leg: Any, size: dict[str, Any]) -> None:
        self.leg, self.size, self.name = leg, size, "watcher"
        self.worker: Any = None

    def start(self, rig: CountingSimulator, sink: Sink, tmp: Path) -> int:
        from tests.integration.harness import WatchSpec, Worker, unique_prefix, write_config

        n = max(self.size[s] for s in ("workspace", "workspaceapp", "script"))
        projects = [project(k) for k in range(n)]
        watches = [WatchSpec("workspace", projects[: self.size["workspace"]]),
                   WatchSpec("workspaceapp", projects[: self.size["workspaceapp"]], job_types=["CREATE_SERVER"]),
                   WatchSpec("script", projects[: self.size["script"]])]  # fmt: skip
        prefix = unique_prefix("bench-idle")
        cfg = write_config(tmp / "watcher.toml", leg=self.leg, prefix=prefix, sim_url=rig.url, watches=watches,
                           targets=[(sink.json_url("idle"), ["sink"])], partitions=8, fast=self.size["fast"],
                           idle=self.size["idle"], tick="1s")  # fmt: skip
        self.worker = Worker(cfg, tmp / "worker.log").start()
        return int(self.worker.proc.pid)

    async def settled(self) -> bool:
        return True

    def alive(self) -> str | None:
        if self.worker.proc.poll() is None:
            return None
        return f"worker exited {self.worker.proc.returncode}:\n{self.worker.output()[-3000:]}"


async def run(ctx: Any) -> Section:
    from bench import brokers

    size = SMOKE if ctx.smoke else FULL
    n = max(size[s] for s in ("workspace", "workspaceapp", "script"))
    targets = size["workspace"] + size["workspaceapp"] + size["script"]
    scenario = Scenario(name="idle", projects={project(k): ProjectSpec() for k in range(n)})
    section = Section(
        name="idle", title=f"{targets:,} targets, no jobs: the worker's CPU", broker="embedded Tansu",
        command=ctx.command("idle"),
        params={"targets": targets, "workspace": size["workspace"], "workspaceapp": size["workspaceapp"],
                "script": size["script"], "fast": size["fast"], "idle": size["idle"], "window (s)": size["window"]},
    )  # fmt: skip
    want = {(s, project(k)): 1 for s in ("workspace", "workspaceapp", "script") for k in range(size[s])}
    with tempfile.TemporaryDirectory(prefix="watcher-bench-idle-") as tmp, brokers.tansu() as leg:
        rig = await CountingSimulator(scenario, speed=1.0).start()
        sink = await Sink().start()
        contender = IdleWorker(leg, size)
        recording: Any = None
        try:
            started = time.time()
            pid = contender.start(rig, sink, Path(tmp))
            async with Meter({"worker": pid, "broker (tansu)": leg.server.pid}, every=1.0) as meter:
                await wait_until(lambda: rig.polled_all(want), 600, "the first poll of every target", contender)
                ready = time.time() - started
                await asyncio.sleep(2.0)  # the last first polls' events and state writes settle
                if ctx.profile:
                    from bench.profile import Recording

                    recording = Recording(pid, ctx.out / "profile-idle.txt").start()
                before, t0 = dict(rig.sim.requests), time.time()
                meter.sample()
                await asyncio.sleep(size["window"])
                meter.sample()
                t1 = time.time()
                profiled = await recording.stop() if recording is not None else None
                requests = sum(rig.sim.requests.values()) - sum(before.values())
                if problem := contender.alive():
                    raise RuntimeError(problem)
        finally:
            if recording is not None and recording.proc is not None and recording.proc.poll() is None:
                await recording.stop()
            if contender.worker is not None:
                await asyncio.to_thread(contender.worker.stop)
            await sink.stop()
            await rig.stop()
    pct = {k: 100 * meter.cpu_between(k, t0, t1) / (t1 - t0) for k in meter.series}
    rss = {k: meter.series[k].rss_at(t1) / MIB for k in meter.series}
    section.figures = {"cpu_pct": pct, "rss_mib": rss, "requests": requests, "window_s": t1 - t0, "ready_s": ready,
                       "requests_per_s": requests / (t1 - t0)}  # fmt: skip
    section.tables.append(Table(
        ["process", "CPU % of one core", "RSS at the end (MiB)"],
        [[k, f"{pct[k]:.2f}", f"{rss[k]:.0f}"] for k in pct],
        caption=f"Over {t1 - t0:.0f} s of steady state: {requests:,} requests ({requests / (t1 - t0):.0f}/s) "
                f"for {targets:,} idle targets.",
    ))  # fmt: skip
    if profiled:
        section.figures["profile"] = profiled
        section.tables.append(Table(["share of the event loop's busy samples", "share"],
                                    [["(loop busy, of all samples)", f"{profiled['busy']:.0%}"]]
                                    + [[n, f"{v:.0%}"] for n, v in profiled["categories"]],
                                    caption="py-spy over the window (--profile), the worker's main thread."))  # fmt: skip
    limit = describe(profiled) or "Run with --profile for a py-spy profile of the worker over the window."
    section.goals.append(Goal(f"idle: {targets:,} targets, no jobs: worker < 5% of one core",
                              f"{pct['worker']:.2f}% (broker {pct['broker (tansu)']:.2f}%)",
                              None if ctx.smoke else pct["worker"] < 5.0, limit))  # fmt: skip
    section.notes.append(f"Every target polled once {ready:.1f} s after the worker started (not in the window).")
    if ctx.smoke:
        section.notes.append("Smoke sizes: goal not judged.")
    return section
