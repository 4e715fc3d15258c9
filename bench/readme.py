"""``python -m bench.readme [REPORT.json]``: the README's Performance section, drafted from a run's report.

Prints Markdown to paste over README.md's "## Performance" body: the date, machine, load and
command of the run (from ``report.json``), one goals table row per goal of every benchmark
(benchmark | goal | measured | verdict), the scale benchmark's side-by-side table as it stands,
and the "Missed:" explanations the benchmarks wrote. Every figure comes from the report; the
prose around it (what limits a missed goal beyond what the report says) is the editor's.
Not part of ``make bench``: run it after a full run, at HEAD, on a quiet machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.report import _cell, _mark

DEFAULT = Path(__file__).resolve().parent / "out" / "report.json"


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def draft(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Measured on {report['started'][:10]} with `{report['command']}` ({report['seconds'] / 60:.0f} min), "
        f"commit {m['commit']}: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, {m['os']}, Python "
        f"{m['python']}, faust-streaming {m['faust_streaming']}, aiokafka {m['aiokafka']}; brokers: "
        f"{', '.join(m['brokers'])}; load average at its start {report.get('load_at_start', '?')} (1/5/15 min, "
        f"{load_average()} when this draft was made). The report is "
        "`bench/out/report.md` (+ `report.json`); one benchmark: `python -m bench --only NAME`.",
        "",
        "| benchmark | goal | measured | |",
        "|---|---|---|---|",
    ]
    for s in report["sections"]:
        for g in s["goals"]:
            lines.append(f"| {s['name']} | {_cell(g['goal'])} | {_cell(g['measured'])} | {_mark(g['met'])} |")
        if s["error"]:
            lines.append(f"| {s['name']} | - | failed: {_cell(s['error'].strip().splitlines()[-1])} | error |")
    for s in report["sections"]:
        if s["name"] == "scale" and s["tables"]:
            t = s["tables"][0]
            lines += ["", f"Scale scenario, side by side ({t['caption']}):", "",
                      "| " + " | ".join(t["headers"]) + " |", "|" + "---|" * len(t["headers"])]
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t["rows"]]
    missed = [(s["name"], g) for s in report["sections"] for g in s["goals"] if g["met"] is False and g["limit"]]
    if missed:
        lines += ["", "What limits the missed goals (from the run):", ""]
        lines += [f"- **{name}**: {g['goal']}: {g['limit']}" for name, g in missed]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not path.exists():
        raise SystemExit(f"no report at {path}: run `make bench` first")
    sys.stdout.write(draft(json.loads(path.read_text())))
