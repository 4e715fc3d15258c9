"""Memory: resident memory per tracked job of the poller state a worker keeps.

Method: a fresh subprocess per size imports Faust and watcher, builds the app's
``<prefix>-poll-jobs`` table the way ``build_app`` declares it (memory store, ``str`` keys and
values, 8 partitions) and reads its RSS (``/proc/self/status`` VmRSS). It then writes N
entries exactly as ``TableStore.put_job_state`` stores them — key ``"<target id>|<job id>"``,
value the JSON of :class:`~watcher.poller.diff.JobState` (``["SUCCESS","succeeded",1763884800.5]``)
— over 50 workspace targets, collects garbage and reads RSS again. Per job = delta / N.

Not included: the changelog records (they live in the broker: on the embedded Tansu broker
that is another process's memory), the per-target ``TargetState`` (one per target; its
``active`` list holds only non-terminal job ids) and the workspace source's memo of open
sub-jobs. Standby replicas are off (``table_standby_replicas = 0``), as in the app.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.report import Goal, Section, Table

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(n: int) -> dict[str, Any]:
    import faust
    import msgspec

    from watcher.poller.diff import JobState

    app = faust.App("bench-memory", broker="kafka://127.0.0.1:1", store="memory://",
                    datadir=tempfile.mkdtemp(prefix="watcher-bench-mem-"))
    table = app.Table("bench-poll-jobs", default=None, partitions=8, key_type=str, value_type=str)
    encoder = msgspec.json.Encoder()
    targets = [f"workspace/cn-north-4/{k:032x}" for k in range(50)]
    gc.collect()
    before = rss()
    data = table.data
    for i in range(n):
        key = f"{targets[i % 50]}|{uuid.UUID(int=i * 7919 + 1)}"
        state = JobState(status="SUCCESS" if i % 20 else "FAILED", phase="succeeded" if i % 20 else "failed",
                         since=1763884800.0 + i * 0.001)
        data[key] = encoder.encode(state).decode()
    gc.collect()
    after = rss()
    sample = next(iter(data.items()))
    return {"n": n, "rss_before": before, "rss_after": after, "per_job": (after - before) / n,
            "sample_key": sample[0], "sample_value": sample[1], "entries": len(data)}


def measure(n: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.memory", "child", str(n)], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"memory child for {n} jobs failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def run(ctx: Any) -> Section:
    import asyncio

    sizes = (10_000, 100_000) if ctx.smoke else (100_000, 1_000_000)
    section = Section(
        name="memory", title="RSS per tracked job (poller state in the Faust table)", broker="none (table built offline)",
        command=ctx.command("memory"), params={"sizes": ", ".join(f"{n:,}" for n in sizes), "targets": 50},
    )
    results = [await asyncio.to_thread(measure, n) for n in sizes]
    section.figures["runs"] = results
    section.tables.append(Table(
        ["jobs", "RSS before (MiB)", "RSS after (MiB)", "delta (MiB)", "bytes per job"],
        [[r["n"], r["rss_before"] / 2**20, r["rss_after"] / 2**20, (r["rss_after"] - r["rss_before"]) / 2**20,
          r["per_job"]] for r in results],
        caption=f"One fresh process per size. Entry: {results[0]['sample_key']!r} -> {results[0]['sample_value']!r}.",
    ))
    big = results[-1]
    total = big["rss_after"]
    if big["n"] == 1_000_000:
        section.goals.append(Goal("1M jobs < 1 GiB", f"{total / GIB:.2f} GiB RSS in all ({big['per_job']:.0f} B/job "
                                  f"over a {big['rss_before'] / 2**20:.0f} MiB baseline)", total < GIB))
    else:
        est = big["rss_before"] + big["per_job"] * 1_000_000
        section.goals.append(Goal("1M jobs < 1 GiB", f"~{est / GIB:.2f} GiB extrapolated from {big['n']:,} (smoke)", None))
    section.notes.append("Method: RSS delta of building the table's entries in a fresh process, not a live worker; "
                         "see the module docstring for what is and is not counted.")
    return section


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        print(json.dumps(child(int(sys.argv[2]))))
    else:
        raise SystemExit("usage: python -m bench --only memory")
