"""Scale-out (issue 11): the scale scenario with one `watcher run` worker, then two in one consumer group.

Same scenario, rig and config as ``bench/scale.py`` (one rule per source family, a ``json://``
sink, poll 5 s, 8 partitions), on Apache Kafka (where it runs; the smoke runs on the embedded
Tansu broker: same code path, tiny sizes). One broker for both runs, a fresh simulator and topic
prefix for each. With two workers the clock starts only once the group is stable with both
(each worker owns half the partitions, hence half the targets) and every target was polled after
that.

Throughput: failures delivered per second, from the first failure's change to the last
failure's notification, and that time itself; the ratio two workers / one. The burst itself
spans ~20 s, so a worker that keeps up is bounded by the scenario, not by its pipeline: the
report says how far each run was from that bound (last notification − last change). Each alert
once: duplicates and misses at the sink, as in the scale benchmark.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.report import Goal, Section, Table
from bench.rig import Run, WatcherContender, measure
from bench.scale import MIB, lat, once_text, size, total_cpu
from bench.stages import STAGES, breakdown
from watcher.simulator.scale import scale_scenario


def throughput(r: Run) -> dict[str, float]:
    delivered = len(r.arrivals)
    span = r.last_arrival - r.first_change
    return {"delivered": delivered, "seconds": span, "per_s": delivered / max(1e-9, span),
            "after_last_change_s": r.last_arrival - max(r.changes.values())}  # fmt: skip


async def run(ctx: Any) -> Section:
    from bench import brokers

    sz = size(ctx)
    scenario = scale_scenario(**sz["scenario"])
    kind = "kafka" if ctx.kafka else "tansu"
    section = Section(
        name="scaleout", title="the scale scenario with one worker, then two (one consumer group)",
        broker={"kafka": "Apache Kafka", "tansu": "embedded Tansu"}[kind], command=ctx.command("scaleout"),
        params={"projects": len(scenario.projects), "poll interval (fast)": f"{sz['fast']:g} s", "partitions": 8,
                "workers": "1, then 2"},
    )  # fmt: skip
    runs: dict[int, Run] = {}
    with tempfile.TemporaryDirectory(prefix="watcher-bench-scaleout-") as tmp, getattr(brokers, kind)() as leg:
        for n in (1, 2):
            d = Path(tmp) / f"w{n}"
            d.mkdir()
            contender = WatcherContender(leg, workers=n, fast=f"{sz['fast']:g}s", name=f"{n} worker{'s' * (n > 1)}")
            runs[n] = await measure(contender, scenario, d, grace=sz["grace"], settle=sz["settle"])
            try:
                runs[n].extra["stages"] = await breakdown(leg.bootstrap, contender.prefix, runs[n].changes,
                                                          runs[n].arrivals)  # fmt: skip
            except (Exception, asyncio.CancelledError) as e:
                runs[n].extra["stages_error"] = f"{type(e).__name__}: {e}"
            print(f"   scaleout: {n} worker(s): {throughput(runs[n])['seconds']:.1f}s to deliver", flush=True)
    tp = {n: throughput(r) for n, r in runs.items()}
    ratio = tp[2]["per_s"] / max(1e-9, tp[1]["per_s"])
    section.figures = {f"workers_{n}": {"throughput": tp[n], "latency_s": lat(r), "missed": len(r.missed),
                                        "duplicates": r.duplicates, "unexpected": r.unexpected, "cpu_s": r.cpu,
                                        "peak_rss_mib": {k: v / MIB for k, v in r.peak_rss.items()},
                                        "bench_cpu_s": r.bench_cpu, "machine_cores": r.machine_cores, **r.extra}
                       for n, r in runs.items()}  # fmt: skip
    section.figures["ratio"] = ratio
    rows = []
    for n, r in runs.items():
        s = lat(r)
        workers = " + ".join(f"{r.cpu[k]:.1f}" for k in r.cpu if k.startswith("worker"))
        rows.append([n, tp[n]["delivered"], f"{tp[n]['seconds']:.1f}", f"{tp[n]['per_s']:.0f}",
                     f"{tp[n]['after_last_change_s']:.1f}", f"{s['p50']:.2f} / {s['p99']:.2f} / {s['max']:.2f}",
                     once_text(r), f"workers {workers}; with the broker {total_cpu(r):.1f}",
                     f"{r.machine_cores:.2f} of {os.cpu_count()}"])  # fmt: skip
    section.tables.append(Table(
        ["workers", "failures delivered", "first change → last notification (s)", "delivered/s",
         "last change → last notification (s)", "latency p50 / p99 / max (s)", "notifications", "CPU s",
         "machine cores busy"], rows,
        caption=f"Ratio (two workers / one), delivered per second: {ratio:.2f}.",
    ))  # fmt: skip
    stage_rows = [[n, *[f"{r.extra['stages'][s]['p50']:.2f} / {r.extra['stages'][s]['p99']:.2f}"
                        if r.extra.get("stages", {}).get(s) else "-" for s in STAGES]] for n, r in runs.items()]
    section.tables.append(Table(["workers", *[f"{s} p50 / p99 (s)" for s in STAGES]], stage_rows,
                                caption="Where the latency goes (bench/stages.py)."))  # fmt: skip
    judged = None if ctx.smoke or kind != "kafka" else True
    bounded = max(tp[1]["after_last_change_s"], 0.0) <= sz["fast"] + 2.0
    section.goals.append(Goal(
        "two workers on Apache Kafka: throughput nearly doubles (ratio reported)",
        f"ratio {ratio:.2f} ({tp[1]['per_s']:.0f} → {tp[2]['per_s']:.0f} failures delivered/s)",
        judged and ratio >= 1.8,
        ("One worker already keeps up with the burst (its last notification came "
         f"{tp[1]['after_last_change_s']:.1f} s after the last change): the scenario's own pace bounds both runs, "
         "so a second worker cannot double what arrives at that pace.") if bounded else
        f"One worker falls behind the burst and two do not halve the lag. In the two-worker window the machine was "
        f"busy {runs[2].machine_cores:.2f} of {os.cpu_count()} cores on average (workers, broker, the simulator "
        "and other work): a second worker process adds throughput only where a core is free for it.",
    ))  # fmt: skip
    for n, r in runs.items():
        exact = not r.missed and r.duplicates == 0 and r.unexpected == 0
        section.goals.append(Goal(f"{n} worker(s): each alert once", once_text(r), judged and exact))
    if kind != "kafka":
        section.notes.append(f"Ran on embedded Tansu: {ctx.kafka_note}.")
    section.notes.append("The burst spans about 20 s of failures: 'last change → last notification' is how far behind "
                         "the pipeline ended; near one poll interval means it kept up.")
    return section
