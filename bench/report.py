"""What a benchmark returns (Section, Goal), the machine it ran on, and the written report."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class Goal:
    """One goal of the issue and what this run measured for it."""

    goal: str
    measured: str
    met: bool | None  # None: not measurable in this run (the note says why)
    limit: str = ""  # for a missed goal: what limits it and what would move it


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]
    caption: str = ""


@dataclass
class Section:
    name: str
    title: str
    broker: str
    command: str
    params: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    goals: list[Goal] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "-"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=5).stdout
        return out.stdout.strip() + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "-"


def machine(brokers: list[str]) -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "ram_gib": _ram_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "faust_streaming": _version("faust-streaming"),
        "aiokafka": _version("aiokafka"),
        "apprise": _version("apprise"),
        "brokers": brokers,
        "commit": _git_commit(),
    }


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v).replace("|", "\\|")


def _md_table(t: Table) -> list[str]:
    out = [f"*{t.caption}*", ""] if t.caption else []
    out.append("| " + " | ".join(t.headers) + " |")
    out.append("|" + "---|" * len(t.headers))
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t.rows]
    return [*out, ""]


def _mark(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def render_markdown(meta: dict[str, Any], sections: list[Section]) -> str:
    m = meta["machine"]
    lines = [
        "# watcher benchmarks",
        "",
        f"Run {meta['started']} ({'smoke' if meta['smoke'] else 'full'} sizes), {meta['seconds']:.0f} s in all. "
        f"Reproduce: `{meta['command']}`.",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}, "
        f"faust-streaming {m['faust_streaming']}, aiokafka {m['aiokafka']}, apprise {m['apprise']}; "
        f"brokers: {', '.join(m['brokers'])}; commit {m['commit']}. "
        f"Load average at the start (1/5/15 min): {meta.get('load_at_start', '?')}.",
        "",
        "## Goals",
        "",
        "| benchmark | goal | measured | verdict |",
        "|---|---|---|---|",
    ]
    for s in sections:
        for g in s.goals:
            lines.append(f"| {s.name} | {_cell(g.goal)} | {_cell(g.measured)} | {_mark(g.met)} |")
        if s.error:
            lines.append(f"| {s.name} | - | failed: {_cell(s.error.splitlines()[-1])} | error |")
    lines.append("")
    for s in sections:
        lines += [f"## {s.name}: {s.title}", ""]
        lines += [f"Broker: {s.broker}. Command: `{s.command}`. Took {s.seconds:.0f} s.", ""]
        if s.params:
            lines += ["Parameters: " + ", ".join(f"{k} = {_cell(v)}" for k, v in s.params.items()) + ".", ""]
        if s.error:
            lines += ["```", s.error.strip()[-3000:], "```", ""]
        for t in s.tables:
            lines += _md_table(t)
        for g in s.goals:
            if g.met is False and g.limit:
                lines += [f"Missed: {g.goal}. {g.limit}", ""]
        lines += [f"- {n}" for n in s.notes]
        if s.notes:
            lines.append("")
    return "\n".join(lines)


def write(out_dir: Path, meta: dict[str, Any], sections: list[Section]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "report.md", out_dir / "report.json"
    md.write_text(render_markdown(meta, sections))
    js.write_text(json.dumps({**meta, "sections": [asdict(s) for s in sections]}, indent=2, default=str) + "\n")
    return md, js


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
