"""CPU seconds and resident memory of the processes a benchmark runs, sampled from outside (psutil).

Used by the scale, idle, memory and scale-out benchmarks: a :class:`Meter` follows a few named
processes (a `watcher run` worker, its broker — Tansu's process or the Kafka JVM — the naive
poller) and samples each one's CPU time (user + system, every thread) and RSS every
``every`` seconds. :meth:`Meter.cpu_between` interpolates between samples, so a window can
start and end at instants that fall between two of them (the change instant of the first job,
the arrival of the last notification). Peak RSS is the kernel's own high-water mark
(``VmHWM`` in ``/proc/PID/status``), not the largest sample, so a spike between samples counts;
where that file does not exist the largest sample stands in.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MIB = 1024 * 1024


def peak_rss(pid: int) -> int | None:
    """The process's peak resident set so far (bytes), from ``VmHWM``; None if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass
class Series:
    """One process's samples: wall time, CPU seconds so far, RSS bytes."""

    name: str
    pid: int
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    peak: int = 0  # VmHWM at the last sample (or the largest RSS sampled)
    gone: bool = False

    def sample(self, proc: psutil.Process, now: float) -> None:
        try:
            with proc.oneshot():
                t = proc.cpu_times()
                rss = proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            self.gone = True
            return
        self.times.append(now)
        self.cpu.append(t.user + t.system)
        self.rss.append(rss)
        self.peak = max(self.peak, peak_rss(self.pid) or 0, rss)

    def cpu_at(self, at: float) -> float:
        """CPU seconds used up to wall time ``at`` (linear between samples, clamped at the ends)."""
        if not self.times:
            return 0.0
        i = bisect.bisect_left(self.times, at)
        if i <= 0:
            return self.cpu[0]
        if i >= len(self.times):
            return self.cpu[-1]
        t0, t1, c0, c1 = self.times[i - 1], self.times[i], self.cpu[i - 1], self.cpu[i]
        return c0 + (c1 - c0) * (at - t0) / max(1e-9, t1 - t0)

    def rss_at(self, at: float) -> int:
        """The last RSS sampled at or before ``at`` (the first one before any)."""
        if not self.times:
            return 0
        i = bisect.bisect_right(self.times, at)
        return self.rss[max(0, i - 1)]

    def max_rss(self, start: float, end: float) -> int:
        return max((r for t, r in zip(self.times, self.rss, strict=True) if start <= t <= end), default=0)


class Meter:
    """Samples named processes until stopped; ``async with Meter({...}) as m:`` or start()/stop()."""

    def __init__(self, pids: dict[str, int], every: float = 0.25) -> None:
        self.every = every
        self.series: dict[str, Series] = {name: Series(name, pid) for name, pid in pids.items()}
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._task: asyncio.Task[None] | None = None
        self.machine = Series("machine (every process)", 0)  # CPU seconds busy on all cores

    def add(self, name: str, pid: int) -> None:
        self.series[name] = Series(name, pid)
        self._procs[name] = psutil.Process(pid)

    def sample(self) -> None:
        now = time.time()
        for name, s in self.series.items():
            if not s.gone:
                s.sample(self._procs[name], now)
        t = psutil.cpu_times()
        self.machine.times.append(now)
        self.machine.cpu.append(sum(t) - t.idle - getattr(t, "iowait", 0.0))
        self.machine.rss.append(0)

    def machine_cores(self, start: float, end: float) -> float:
        """Cores busy on average between ``start`` and ``end``, whoever's processes they ran."""
        return (self.machine.cpu_at(end) - self.machine.cpu_at(start)) / max(1e-9, end - start)

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.every)

    def start(self) -> Meter:
        self.sample()
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.sample()

    async def __aenter__(self) -> Meter:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def cpu_between(self, name: str, start: float, end: float) -> float:
        s = self.series[name]
        return s.cpu_at(end) - s.cpu_at(start)

    def peak(self, name: str) -> int:
        return self.series[name].peak
