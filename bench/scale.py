"""Scale (issue 11): 10,000 jobs over 50 projects and all five APIs, 4,000 failing within 20 s —
`watcher run` on the embedded broker, on Apache Kafka, and the naive poller, side by side.

The scenario is the simulator's own generator (:func:`watcher.simulator.scale.scale_scenario`),
served in this process with the real clock; each contender gets a fresh simulator serving the
same plan, one after the other (never two at once on the 2 cores), the way :func:`bench.rig.measure`
runs it: frozen at virtual 0 until every target was polled once, then speed 1.

* **watcher**: one real ``watcher run`` subprocess configured as a user would: the five
  sources in every project (``appjob``/``evs``: the ids ``Simulator.job_ids`` gives, one
  ``[[watch]]`` per project), ``[poll] fast = 5s``, the default tick and idle, one rule per source
  family (``bench.rig.RULES``: the job id as title), one ``json://`` target at a
  :class:`~watcher.sinks.WebhookSink`; 8 partitions.
* **naive poller**: ``bench/naive.py`` (its docstring says what it is), polling every 5 s.

Measured per contender: latency change → sink arrival (p50/p99/max over every failure),
notifications per failed job (one expected: duplicates, misses, notifications about jobs that
did not fail), CPU seconds of every process from virtual 0 to the last failure's notification
(worker + broker: Tansu's process or the Kafka JVM; the naive poller), peak RSS of every process,
and requests per API at the simulator. For watcher, :mod:`bench.stages` splits the latency
into poll, rules, incident and notify from the records on its topics.

Goals (issue 11): p99 ≤ poll interval + 2 s on both brokers and ≤ the naive poller's p99;
exactly one notification per failed job; CPU seconds (worker + broker) ≤ the naive poller's.
With ``--profile`` the worker is recorded with py-spy over the burst (:mod:`bench.profile`) and
a missed goal's text says what its event loop was busy with.

README: the Performance table's "scale" rows are this section's first table as it stands
(one column per contender); see ``bench/README.md``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.contenders import NaiveContender, WatcherContender
from bench.profile import describe
from bench.report import Goal, Section, Table
from bench.rig import Run, failures, measure
from bench.stages import STAGES, breakdown
from watcher.simulator.scale import scale_scenario
from watcher.simulator.state import Simulator

MIB = 1024 * 1024
SHORT = {"tansu": "embedded Tansu", "kafka": "Apache Kafka"}
FULL = dict(scenario={}, fast=5.0, settle=15.0, grace=60.0)
SMOKE = dict(scenario=dict(projects=2, per_source=2, failing=1, fail_window=(2.0, 3.0)), fast=0.5, settle=1.5,
             grace=20.0)  # fmt: skip


def size(ctx: Any) -> dict[str, Any]:
    return SMOKE if ctx.smoke else FULL


def lat(run: Run) -> dict[str, float]:
    from bench.pipeline import summary

    return summary(run.latency) if run.latency else {"n": 0, "p50": float("nan"), "p99": float("nan"),
                                                     "max": float("nan"), "min": float("nan")}  # fmt: skip


def total_cpu(run: Run) -> float:
    return sum(v for k, v in run.cpu.items() if not k.startswith("bench"))


def processes(run: Run) -> list[str]:
    return [k for k in run.cpu if not k.startswith("bench")]


def once_text(run: Run) -> str:
    ok = run.failures - len(run.missed)
    return (f"{ok:,} of {run.failures:,} notified; {run.duplicates} duplicate(s), {len(run.missed)} missed, "
            f"{run.unexpected} about jobs that did not fail")  # fmt: skip


async def run_watcher(kind: str, scenario: Any, sz: dict[str, Any], tmp: Path, profile: Path | None = None) -> Run:
    """One watcher run on a fresh broker of ``kind``, with the stage breakdown in ``run.extra``."""
    from bench import brokers

    with getattr(brokers, kind)() as leg:
        contender = WatcherContender(leg, fast=f"{sz['fast']:g}s", name=f"watcher ({SHORT[kind]})")
        run = await measure(contender, scenario, tmp, grace=sz["grace"], settle=sz["settle"], profile=profile)
        try:
            run.extra["stages"] = await breakdown(leg.bootstrap, contender.prefix, run.changes, run.arrivals)
        except (Exception, asyncio.CancelledError) as e:  # the breakdown explains; it must not lose the run
            run.extra["stages_error"] = f"{type(e).__name__}: {e}"
        run.extra["log_warnings"] = dict(contender.warnings().most_common(8))
    return run


async def run(ctx: Any) -> Section:
    sz = size(ctx)
    scenario = scale_scenario(**sz["scenario"])
    sim = Simulator(scenario)
    truth = failures(sim)
    spread = max(f.at for f in truth.values()) - min(f.at for f in truth.values())
    legs = ["tansu"] + (["kafka"] if ctx.kafka else [])
    section = Section(
        name="scale", title="10,000 jobs, 5 APIs, 4,000 failures in 20 s: watcher vs a naive poller",
        broker=", ".join({"tansu": "embedded Tansu", "kafka": "Apache Kafka"}[k] for k in legs) + "; naive: none",
        command=ctx.command("scale"),
        params={"jobs": sum(len(p.desktops) + len(p.app_jobs) + len(p.tasks) + len(p.evs_jobs)
                            for p in sim.plan.projects.values()),
                "projects": len(scenario.projects), "targets (watcher)": 5 * len(scenario.projects),
                "failed jobs": len(truth), "failures within (s)": round(spread, 1), "poll interval (fast)": f"{sz['fast']:g} s",
                "tick": "1 s (default)", "workers": 1, "partitions": 8, "naive in flight": 8},
    )  # fmt: skip
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="watcher-bench-scale-") as tmp:
        for kind in legs:
            d = Path(tmp) / kind
            d.mkdir()
            profile = ctx.out / f"profile-scale-{kind}.txt" if ctx.profile else None
            runs.append(await run_watcher(kind, scenario, sz, d, profile))
            print(f"   scale: {runs[-1].contender}: p99 {lat(runs[-1])['p99']:.2f}s", flush=True)
        d = Path(tmp) / "naive"
        d.mkdir()
        contender = NaiveContender(fast=sz["fast"])
        naive = await measure(contender, scenario, d, grace=sz["grace"], settle=sz["settle"])
        naive.extra["rounds_s"] = contender.rounds()
        print(f"   scale: naive: p99 {lat(naive)['p99']:.2f}s", flush=True)
    report(section, runs, naive, sz, ctx.smoke)
    return section


def report(section: Section, runs: list[Run], naive: Run, sz: dict[str, Any], smoke: bool) -> None:
    everyone = [*runs, naive]
    s = {r.contender: lat(r) for r in everyone}
    section.figures = {r.contender: {
        "latency_s": s[r.contender], "failures": r.failures, "missed": len(r.missed), "duplicates": r.duplicates,
        "unexpected": r.unexpected, "cpu_s": r.cpu, "cpu_total_s": total_cpu(r), "peak_rss_mib":
        {k: v / MIB for k, v in r.peak_rss.items()}, "requests": r.requests, "window_s": r.window_s,
        "ready_s": r.ready_s, "bench_cpu_s": r.bench_cpu, "machine_cores": r.machine_cores, **r.extra}
        for r in everyone}  # fmt: skip

    def cpu_cell(r: Run) -> str:
        parts = [f"{k} {r.cpu[k]:.1f}" for k in processes(r)]
        return " + ".join(parts) + (f" = {total_cpu(r):.1f}" if len(parts) > 1 else "")

    def rss_cell(r: Run) -> str:
        return " + ".join(f"{k} {r.peak_rss[k] / MIB:.0f} MiB" for k in processes(r))

    def req_cell(r: Run) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in r.requests.items())

    rows = [
        ["latency API change → webhook, p50 / p99 / max (s)"] + [
            f"{s[r.contender]['p50']:.2f} / {s[r.contender]['p99']:.2f} / {s[r.contender]['max']:.2f}" for r in everyone],
        ["notifications per failed job"] + [once_text(r) for r in everyone],
        ["CPU seconds, virtual 0 → last failure notified"] + [cpu_cell(r) for r in everyone],
        ["peak RSS"] + [rss_cell(r) for r in everyone],
        ["requests per API (same window)"] + [req_cell(r) for r in everyone],
        ["window: virtual 0 → last failure notified (s)"] + [f"{r.window_s:.1f}" for r in everyone],
    ]  # fmt: skip
    section.tables.append(Table(["", *[r.contender for r in everyone]], rows,
                                caption="Side by side, one after the other on this machine, same scenario."))
    stage_rows = []
    for r in runs:
        st = r.extra.get("stages")
        if st:
            stage_rows.append([r.contender, st["failures"], *[
                f"{st[n]['p50']:.2f} / {st[n]['p99']:.2f}" if st.get(n) else "-" for n in STAGES]])  # fmt: skip
    profiles = [(r.contender, r.extra["profile"]) for r in runs if r.extra.get("profile")]
    if profiles:
        names = list(dict.fromkeys(n for _, p in profiles for n, _ in p["categories"]))
        section.tables.append(Table(
            ["share of the event loop's busy samples", *[c for c, _ in profiles]],
            [["(loop busy, of all samples)", *[f"{p['busy']:.0%}" for _, p in profiles]]] +
            [[n, *[f"{dict(p['categories']).get(n, 0):.0%}" for _, p in profiles]] for n in names],
            caption="py-spy, 100 Hz, the worker's main thread from just before the first failure to the last "
                    "notification (--profile; raw stacks in " + ", ".join(Path(p["file"]).name for _, p in profiles)
                    + ").",
        ))  # fmt: skip
    if stage_rows:
        section.tables.append(Table(["watcher", "failures", *[f"{n} p50 / p99 (s)" for n in STAGES]], stage_rows,
                                    caption="Where watcher's latency goes (from the records' own timestamps)."))

    goal_p99 = sz["fast"] + 2.0
    judged = None if smoke else True
    for r in runs:
        p99, naive99 = s[r.contender]["p99"], s[naive.contender]["p99"]
        slow = " ".join(x for x in (slowest_stage(r), describe(r.extra.get("profile"))) if x)
        section.goals.append(Goal(f"{r.contender}: p99 ≤ poll + 2 s = {goal_p99:g} s", f"p99 {p99:.2f} s",
                                  judged and p99 <= goal_p99, slow))  # fmt: skip
        section.goals.append(Goal(f"{r.contender}: p99 ≤ naive poller's p99", f"{p99:.2f} s vs {naive99:.2f} s",
                                  judged and p99 <= naive99, slow))  # fmt: skip
        exact = not r.missed and r.duplicates == 0 and r.unexpected == 0
        section.goals.append(Goal(f"{r.contender}: exactly one notification per failed job", once_text(r),
                                  judged and exact))  # fmt: skip
        section.goals.append(Goal(
            f"{r.contender}: CPU seconds (worker + broker) ≤ naive poller's",
            f"{total_cpu(r):.1f} s ({cpu_cell(r)}) vs {total_cpu(naive):.1f} s", judged and total_cpu(r) <= total_cpu(naive),
            f"By process: {cpu_cell(r)}. " + (describe(r.extra.get("profile")) or
                                              "Run with --profile for a py-spy profile of the worker (bench/README.md)."),
        ))  # fmt: skip
    for r in everyone:
        section.notes.append(f"{r.contender}: every target polled once {r.ready_s:.1f} s after start (not in the "
                             f"figures); in the window the bench process (simulator + sink) used {r.bench_cpu:.1f} CPU "
                             f"s, and the machine was busy {r.machine_cores:.2f} of {os.cpu_count()} cores on "
                             "average (every process on it, other work included).")  # fmt: skip
        if r.extra.get("stages_error"):
            section.notes.append(f"{r.contender}: no stage breakdown: {r.extra['stages_error']}")
    for r in runs:
        if r.extra.get("log_warnings"):
            section.notes.append(f"{r.contender}: worker log warnings/errors: " + "; ".join(
                f"{n}× {w}" for w, n in r.extra["log_warnings"].items()))  # fmt: skip
    rounds = naive.extra.get("rounds_s") or []
    if rounds:
        from bench.report import percentile

        section.notes.append(f"Naive poller: a round over every target took p50 {percentile(rounds, 50):.1f} s, max "
                             f"{max(rounds):.1f} s ({len(rounds)} rounds; a round longer than {sz['fast']:g} s starts "
                             "the next at once, so its poll interval is the round's length).")  # fmt: skip
    section.notes.append(
        f"Naive poller: {naive.failures - len(naive.missed):,} of {naive.failures:,} failures notified, "
        f"{naive.duplicates} duplicates; it polls every API of every target every {sz['fast']:g} s (lists in full, "
        "every by-id job), so its requests grow with the jobs that exist, watcher's with the jobs that are open.")
    if smoke:
        section.notes.append("Smoke sizes (2 projects, 10 failures, poll 0.5 s): goals not judged.")
    section.notes.append(f"Measured {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC.")


def slowest_stage(r: Run) -> str:
    """For a missed latency goal: which stage's p99 is largest, from the run's own records."""
    st = r.extra.get("stages") or {}
    known = [(n, st[n]["p99"]) for n in STAGES if st.get(n)]
    if not known:
        return "No stage breakdown for this run."
    name, p99 = max(known, key=lambda x: x[1])
    parts = "; ".join(f"{n} p99 {v:.2f} s" for n, v in known)
    return f"Largest stage: {name} (p99 {p99:.2f} s). Stages: {parts}."
