"""Burst: 100,000 status changes arrive at once -> time until every alert is delivered.

The simulator's clock is frozen at a time before any job exists; the worker polls the empty
targets (``idle`` interval) until every target has been polled once. Then the clock jumps
to the end of the scenario: 100,000 sub-jobs over 50 projects are suddenly there, all ended,
a share of them FAILED. Each is one change (``appeared``, terminal) and one event; each
failure is one alert. T0 is the jump. Measured: the first and last event on the events
topic, and the last alert at the HTTP sink.

The bench's rule has no ``group_by``, so "delivered or grouped" is "delivered": every failure
is its own notification, the slowest case for the sink side.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.pipeline import Pipeline, TopicCounter, workspace_scenario
from bench.report import Goal, Section, Table

FULL = dict(projects=50, jobs=20, desktops=100, fail=0.01)  # 100,000 changes, 1,000 alerts
SMOKE = dict(projects=2, jobs=2, desktops=25, fail=0.1)
IDLE = {True: "0.5s", False: "2s"}


async def run(ctx: Any) -> Section:
    from bench import brokers

    size = SMOKE if ctx.smoke else FULL
    changes = size["projects"] * size["jobs"] * size["desktops"]
    section = Section(
        name="burst", title=f"{changes:,} status changes at once -> every alert delivered",
        broker="embedded Tansu (memory storage)", command=ctx.command("burst"),
        params={"changes": changes, "projects (targets)": size["projects"], "failed share": size["fail"],
                "idle poll interval": IDLE[ctx.smoke], "workers": 1, "partitions": 8, "grouping": "none (the rule has no group_by)"},
    )
    with tempfile.TemporaryDirectory(prefix="watcher-bench-burst-") as tmp, brokers.tansu() as leg:
        pipe = Pipeline(leg, Path(tmp))
        events = None
        try:
            scenario = workspace_scenario(size["projects"], size["jobs"], size["desktops"], start=1, wait="[0, 0.5]",
                                          duration="[1, 2]", fail=size["fail"])
            await pipe.start(scenario, speed=0.0, fast="5s", idle=IDLE[ctx.smoke],
                             tick="0.25s" if ctx.smoke else "1s")
            events = await TopicCounter(leg.bootstrap, f"{pipe.prefix}.events").start()
            await pipe.wait_for(lambda: pipe.polls() >= size["projects"], 120, "the first poll of every target")
            failed = pipe.failed_jobs()
            pipe.sim.set_time(pipe.sim.horizon() + 1)
            t0 = time.time()
            timeout = 120 if ctx.smoke else 600
            await pipe.wait_for(lambda: events.count >= changes, timeout, f"{changes} events on the topic")
            await pipe.wait_for(lambda: {a.job_id for a in pipe.arrivals} >= set(failed), timeout, "every alert delivered")
            done = time.time()
        finally:
            if events is not None:
                await events.stop()
            await pipe.stop()
    arrivals = sorted(a.at for a in pipe.arrivals)
    assert events is not None and events.first is not None
    published = events.last - t0
    delivered = done - t0
    # Alerts trickle in at the pace the rules agent works through the events, so this is not a
    # delivery rate and is not extrapolated to an all-failed burst.
    rate = len(failed) / max(1e-9, arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else float("nan")
    section.figures.update({
        "changes": changes, "alerts": len(failed), "first_event_s": events.first - t0, "all_events_s": published,
        "first_alert_s": arrivals[0] - t0, "all_alerts_s": delivered, "events_per_s": changes / max(1e-9, published),
        "alerts_arrived_per_s": rate, "duplicates": len(pipe.arrivals) - len(failed),
    })
    section.tables.append(Table(
        ["changes", "alerts", "first event (s)", "all events (s)", "events/s", "first alert (s)", "all alerts (s)",
         "alerts arrived/s"],
        [[changes, len(failed), events.first - t0, published, changes / max(1e-9, published), arrivals[0] - t0,
          delivered, rate]],
        caption="Seconds after the changes appeared (T0). The first event waits for the next idle poll.",
    ))
    section.goals.append(Goal(
        f"every alert of {changes:,} changes delivered or grouped (no numeric goal: time reported)",
        f"{delivered:.1f} s until the last of {len(failed):,} alerts ({size['fail']:.0%} of {changes:,} changes failed)",
        None,
    ))
    section.notes += [
        f"Events: {changes:,} published in {published:.1f} s ({changes / max(1e-9, published):,.0f}/s) by one worker "
        "(each event and each poll-state write is one produce request on Tansu: producer_max_batch_size = 1).",
        "Alerts follow the events closely (the rules agent reads in batches): the pace is set by publishing, "
        "one produce request per event and per poll-state write on Tansu. The rule has no group_by: with one (`group_by: [project_id, parent_job_id]`) a batch "
        "that fails becomes one message per parent job.",
    ]
    return section
