"""The contenders of the scale benchmarks: `watcher run` worker(s), and the naive reference poller.

Each implements :class:`bench.rig.Contender` (start → the PIDs to measure, settled, alive, stop),
so :func:`bench.rig.measure` runs them the same way. :class:`WatcherContender` writes the config a
user would (``tests/integration/harness.py``'s ``write_config``: the five sources in every project of
the scenario, the by-id ids per project, one rule per source family, one ``json://`` target) and
starts real ``watcher run`` subprocesses; :class:`NaiveContender` starts ``python -m bench.naive``.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.rig import APP_JOB_TYPES, BY_ID, RULES, CountingSimulator, Sink

_NUMBERS = re.compile(r"[0-9a-f]{6,}|\d+")
_PARTS = re.compile(r"polling \d+ target\(s\) of partitions")


@dataclass
class WatcherContender:
    """``workers`` `watcher run` subprocesses, one config, one consumer group, on ``leg``."""

    leg: Any
    workers: int = 1
    fast: str = "5s"
    partitions: int = 8
    name: str = "watcher"
    poll_extra: str = ""
    procs: list[Any] = field(default_factory=list)
    prefix: str = ""

    def config(self, rig: CountingSimulator, sink: Sink, tmp: Path) -> Path:
        from tests.integration.harness import WatchSpec, unique_prefix, write_config

        sim = rig.sim
        projects = list(sim.scenario.projects)
        watches = [WatchSpec("workspace", projects), WatchSpec("workspaceapp", projects, job_types=APP_JOB_TYPES),
                   WatchSpec("script", projects)]  # fmt: skip
        for source in BY_ID:
            watches += [WatchSpec(source, [p], job_ids=ids) for p in projects if (ids := sim.job_ids(source, p))]
        rules = tmp / "rules.yaml"
        rules.write_text(RULES)
        self.prefix = unique_prefix("bench")
        return write_config(
            tmp / f"{self.prefix}.toml", leg=self.leg, prefix=self.prefix, sim_url=rig.url, watches=watches,
            rules=[str(rules)], targets=[(sink.json_url("watcher"), ["sink"])], partitions=self.partitions,
            fast=self.fast, idle="60s", tick="1s",
            retry="attempts = 5\nbase_delay = 0.2\nmax_delay = 1.0\nbudget_seconds = 60.0",
        )  # fmt: skip

    async def start(self, rig: CountingSimulator, sink: Sink, tmp: Path) -> dict[str, int]:
        from tests.integration.harness import Worker

        cfg = self.config(rig, sink, tmp)
        self.procs = [Worker(cfg, tmp / f"{self.prefix}-worker{i}.log").start() for i in range(self.workers)]
        pids = {(f"worker {i + 1}" if self.workers > 1 else "worker"): w.proc.pid for i, w in enumerate(self.procs)}
        pids[f"broker ({self.leg.kind})"] = self.leg.server.pid
        return pids

    async def settled(self) -> bool:
        from tests.integration.harness import describe_group
        from watcher.app.kafka import KafkaConnection

        if not all(_PARTS.search(w.output()) for w in self.procs):  # every worker has its targets
            return False
        if self.workers == 1:
            return True
        group = await describe_group(KafkaConnection.plaintext(self.leg.bootstrap), self.prefix)
        return group is not None and group.state == "Stable" and len(group.members) == self.workers

    def alive(self) -> str | None:
        for w in self.procs:
            if w.proc.poll() is not None:
                return f"worker exited {w.proc.returncode}:\n{w.output()[-3000:]}"
        return None

    def logs(self) -> list[str]:
        return [w.output() for w in self.procs]

    def warnings(self) -> Counter[str]:
        """The workers' WARNING and ERROR lines, by logger and message with numbers blanked."""
        out: Counter[str] = Counter()
        for text in self.logs():
            for m in re.finditer(r" (WARNING|ERROR) (\S+): (.{0,70})", text):
                out[f"{m[1]} {m[2]}: " + _NUMBERS.sub("#", m[3])] += 1
        return out

    async def stop(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.procs))


@dataclass
class NaiveContender:
    """``python -m bench.naive`` in its own process (see naive.py)."""

    fast: float = 5.0
    name: str = "naive poller"
    proc: Any = None
    log: Path | None = None

    async def start(self, rig: CountingSimulator, sink: Sink, tmp: Path) -> dict[str, int]:
        import json
        import os
        import subprocess
        import sys

        from bench.naive import spec_for
        from watcher.simulator import DEFAULT_AK, DEFAULT_SK

        spec = tmp / "naive.json"
        spec.write_text(json.dumps(spec_for(rig.sim, rig.url, sink.http_url("naive"), self.fast, APP_JOB_TYPES)))
        self.log = tmp / "naive.log"
        env = {**os.environ, "HUAWEICLOUD_SDK_AK": DEFAULT_AK, "HUAWEICLOUD_SDK_SK": DEFAULT_SK}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "bench.naive", str(spec)], stdout=out,
                                         stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).resolve().parents[1])
        return {"naive poller": self.proc.pid}

    async def settled(self) -> bool:
        return True

    def rounds(self) -> list[float]:
        """Seconds each polling round took, from its log ("round N took S s: ...")."""
        text = self.log.read_text() if self.log and self.log.exists() else ""
        return [float(m) for m in re.findall(r"^round \d+ took ([\d.]+)s", text, re.M)]

    def alive(self) -> str | None:
        if self.proc.poll() is None:
            return None
        return f"naive poller exited {self.proc.returncode}:\n{self.log.read_text()[-3000:] if self.log else ''}"

    async def stop(self) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 10)
            except Exception:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait, 10)
