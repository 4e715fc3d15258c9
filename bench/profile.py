"""``python -m bench --profile``: a py-spy profile of the worker over a benchmark's measured window.

Where a goal is missed, the report should say what limits it with evidence from the same run.
With ``--profile`` the scale benchmark records the `watcher run` worker during the burst (from
just before the first failure to the last notification) and the idle benchmark over its steady
minute: ``py-spy record --idle -r 100 -f raw`` (collapsed stacks, every thread, idle ones too,
so "how busy" is measurable). :func:`summarize` turns the raw file into the share of samples the
event loop thread was busy and, of those, the share of each part of the pipeline
(:data:`CATEGORIES`, matched on frame names, first match wins); the raw file is kept beside the
report (``bench/out/profile-*.txt``) for a flame graph.

py-spy is not a dependency (``.venv/bin/pip install py-spy``); without it ``--profile`` stops
with one line. Sampling at 100 Hz costs the profiled process a few percent: a profiled run's
figures are not the headline figures.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

#: (category, substrings of a frame that put a busy sample in it); first match wins.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("poll: HTTP requests (httpx, httpcore, signing)", ("CloudClient.get", "Session.get")),
    ("poll: scheduling and ownership (PollStage.refresh, run)", ("PollStage.refresh", "Ownership.")),
    ("poll: sources, diff, publish", ("PollStage._poll", "poll_target (", "ByIdFetcher", "Narrow.",
                                      "publish (watcher")),
    ("poll: scheduling and ownership (PollStage.refresh, run)", ("PollStage.run",)),
    ("status records", ("publish_statuses", "StatusBoard")),
    ("self-health / blind targets", ("SelfHealth", "BlindTracker")),
    ("evaluate agent (rules)", ("evaluate_events", "EvaluateStage")),
    ("incident agent", ("keep_incidents", "IncidentStage")),
    ("notify agent (delivery)", ("NotifyStage", "deliver (watcher", "Delivery", "AppriseChannel", "apprise")),
    ("aiokafka producer", ("Sender.", "SendProduceReqHandler", "AIOKafkaProducer")),
    ("consumer: fetch, Faust streams", ("Fetcher.", "_drain_messages", "Conductor.", "Stream.", "on_message")),
    ("faust timers and services", ("Service.", "around_timer", "itertimer")),
    ("logging", ("StreamHandler.emit", "Logger.")),
)
_IDLE = ("select (selectors.py", "EpollSelector.select")


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


class Recording:
    """One ``py-spy record`` subprocess on ``pid``, stopped with SIGINT (it then writes ``out``)."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid, self.out = pid, out
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Recording:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.out.with_suffix(".log"), "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([exe, "record", "-p", str(self.pid), "--idle", "--nonblocking", "-r", "100", "-f", "raw",
                                      "-o", str(self.out)], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        return self

    async def stop(self) -> dict[str, Any] | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return summarize(self.out) if self.out.exists() else None


def summarize(path: Path) -> dict[str, Any]:
    """{"busy": share of the event loop thread's samples not waiting in select, "categories":
    [(category, share of busy samples)], "samples", "file"} from a ``-f raw`` file."""
    busy = idle = 0
    cats: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit() or not stack.startswith("_run_module_as_main"):
            continue  # only the main thread: the event loop every stage runs on
        count = int(n)
        if any(mark in stack for mark in _IDLE):
            idle += count
            continue
        busy += count
        for name, marks in CATEGORIES:
            if any(m in stack for m in marks):
                cats[name] += count
                break
        else:
            cats["other"] += count
    total = busy + idle
    return {"busy": busy / total if total else 0.0, "samples": total, "file": str(path),
            "categories": [(k, v / busy) for k, v in cats.most_common()] if busy else []}  # fmt: skip


def describe(summary: dict[str, Any] | None, top: int = 4) -> str:
    """One sentence for a missed goal's limit: how busy the loop was and what it was busy with."""
    if not summary or not summary["samples"]:
        return ""
    parts = ", ".join(f"{name} {share:.0%}" for name, share in summary["categories"][:top])
    return (f"py-spy over the window: the worker's event loop thread was busy {summary['busy']:.0%} of "
            f"{summary['samples']:,} samples; of the busy ones: {parts}.")
