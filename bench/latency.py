"""Detection latency: a job turns FAILED in the simulator -> its notification reaches the HTTP sink.

The simulator's clock runs at real speed, so every status change has a known wall-clock
instant (the plan's virtual second + the wall time of virtual 0). Every job exists (WAITING)
from the start, so each target is polled at the ``fast`` interval throughout; failures fall
after the worker is up: the clock stays frozen at 0 until the worker has polled every target
once, then runs at real speed. Latency = sink arrival - change instant, for every failure. The poll interval is in there by
design: a change waits up to one interval to be seen (each worker schedules its own targets
locally since issue 11: ``[poll] tick`` no longer delays a due poll).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.pipeline import Pipeline, summary, wall_of, workspace_scenario
from bench.report import Goal, Section, Table

FULL = dict(projects=50, jobs=4, desktops=50, start=0, wait="[15, 45]", duration="[10, 40]", fail=0.05)
SMOKE = dict(projects=2, jobs=1, desktops=10, start=0, wait="[1, 2]", duration="[1, 2]", fail=0.3)
FAST = {True: (0.5, 0.25), False: (5.0, 1.0)}  # smoke? -> (poll interval, tick) in seconds; 1 s is [poll] tick's default


async def measure(leg: Any, size: dict[str, Any], fast: float, tick: float) -> dict[str, Any]:
    """One run on ``leg``: each failure's latency (s), start-up time, exclusions, duplicates."""
    with tempfile.TemporaryDirectory(prefix="watcher-bench-lat-") as tmp:
        pipe = Pipeline(leg, Path(tmp))
        try:
            scenario = workspace_scenario(size["projects"], size["jobs"], size["desktops"], start=size["start"],
                                          wait=size["wait"], duration=size["duration"], fail=size["fail"])
            # Frozen at 0 (every job WAITING) until the worker has polled every target once;
            # then the clock runs at real speed from 0, so start-up time never eats into the scenario.
            await pipe.start(scenario, speed=0.0, fast=f"{fast}s", idle="60s", tick=f"{tick}s")
            started = time.time()
            await pipe.wait_for(lambda: pipe.polls() >= size["projects"], 120, "the first poll of every target")
            pipe.sim.clock.speed = 1.0
            pipe.sim.set_time(0.0)
            wall0 = wall_of(pipe.sim)
            ready = time.time()
            failed = pipe.failed_jobs()
            horizon = pipe.sim.horizon()
            await pipe.wait_for(lambda: {a.job_id for a in pipe.arrivals} >= set(failed),
                                max(60.0, horizon - pipe.sim.now() + 60), "every failure notified")
        finally:
            await pipe.stop()
    first: dict[str, float] = {}
    for a in pipe.arrivals:
        first.setdefault(a.job_id, a.at)
    lat = [first[j] - (wall0 + at) for j, at in failed.items() if wall0 + at > ready]
    if not lat:
        raise RuntimeError("no failure happened after the worker was ready: the scenario is too early")
    return {"latency": lat, "ready_s": ready - started, "excluded": len(failed) - len(lat),
            "duplicates": len(pipe.arrivals) - len(first)}


async def run(ctx: Any) -> Section:
    from bench import brokers

    size = SMOKE if ctx.smoke else FULL
    fast, tick = FAST[ctx.smoke]
    active = size["projects"] * size["jobs"] * size["desktops"]
    legs = ["tansu"] + (["kafka"] if ctx.kafka else [])
    names = {"tansu": "embedded Tansu (memory storage)", "kafka": "Apache Kafka"}
    section = Section(
        name="latency", title="status change -> notification at a local HTTP sink",
        broker=", ".join(names[k] for k in legs), command=ctx.command("latency"),
        params={"active jobs": active, "projects (targets)": size["projects"], "poll interval (fast)": f"{fast:g} s",
                "scheduler tick": f"{tick:g} s", "failed share": size["fail"], "workers": 1, "partitions": 8,
                "source": "workspace (list API)"},
    )
    rows = []
    for kind in legs:
        with getattr(brokers, kind)() as leg:
            r = await measure(leg, size, fast, tick)
        s = summary(r["latency"])
        over = {k: s[k] - fast for k in ("p50", "p99", "max")}
        section.figures[kind] = {"latency_s": s, "minus_poll_interval_s": over, "worker_ready_s": r["ready_s"],
                                 "duplicates": r["duplicates"], "excluded_before_ready": r["excluded"]}
        if kind == "tansu":  # the keys earlier reports had
            section.figures.update(section.figures[kind])
        rows.append([kind, s["n"], s["p50"], s["p99"], s["max"], over["p50"], over["p99"], over["max"]])
        met = s["p99"] <= fast + 1.0
        limit = "" if met else (
            f"p99 exceeds the interval by {over['p99']:.2f} s: one worker does everything on one event loop beside "
            "the broker on 2 cores" + (" (on Tansu every record is its own produce request: producer_max_batch_size"
                                       " = 1)" if kind == "tansu" else "")
            + ". The scale benchmark splits a worker's latency by stage (poll, rules, incident, notify).")
        section.goals.append(Goal(f"{kind}: p99 <= poll interval + 1 s = {fast + 1:g} s",
                                  f"p99 {s['p99']:.2f} s (p50 {s['p50']:.2f}, max {s['max']:.2f})", met, limit))
        section.notes.append(
            f"{kind}: worker start-up to the first full poll round {r['ready_s']:.1f} s (not in the figures); "
            f"{r['excluded']} failures before that were excluded; duplicates at the sink: {r['duplicates']}.")
    section.tables.append(Table(
        ["broker", "failures measured", "p50 (s)", "p99 (s)", "max (s)", "p50 - interval", "p99 - interval",
         "max - interval"], rows,
        caption="receive - change, wall clock; minus the poll interval (negative: seen in less than one interval).",
    ))
    section.notes += [
        f"Scale: {active:,} active jobs over {size['projects']} projects (one workspace target each), all measured "
        "in one run on this machine.",
        "Expected floor: a change waits on average half an interval, at most one interval, before a poll sees it.",
    ]
    return section
