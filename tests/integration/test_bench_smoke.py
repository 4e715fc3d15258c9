"""`python -m bench --smoke`: every benchmark runs end to end at seconds-long sizes and lands in the report.

A smoke of the harness, not a performance check: the figures at these sizes mean nothing.
It starts embedded Tansu brokers and `watcher run` workers, hence integration.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("api_cost", "memory", "throughput", "latency", "burst", "ui", "scale", "idle", "scaleout")

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]


def test_bench_smoke_writes_every_section(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=170,
    )
    assert out.returncode == 0, f"bench --smoke failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    report = json.loads((tmp_path / "report.json").read_text())
    md = (tmp_path / "report.md").read_text()
    assert report["smoke"] is True
    assert {"nproc", "cpu", "ram_gib", "python", "brokers"} <= set(report["machine"])
    sections = {s["name"]: s for s in report["sections"]}
    assert set(sections) == set(SECTIONS)
    for name, s in sections.items():
        assert s["error"] is None, s["error"]
        assert s["goals"] and s["tables"] and s["broker"] and s["command"].startswith("python -m bench"), name
        assert f"## {name}:" in md
    assert sections["throughput"]["figures"]["tansu.ratio_10"] > 0
    assert sections["latency"]["figures"]["latency_s"]["n"] > 0
    assert sections["burst"]["figures"]["alerts"] > 0
    memory = sections["memory"]["figures"]
    assert memory["open"]["jobs"] > 0 and memory["open"]["rss_mib"]["worker"] > 0
    assert memory["retention"]["samples"][-1]["seen"] > 0
    assert sections["api_cost"]["figures"]["workspace"]["first_cycle"] >= 1
    assert sections["ui"]["figures"]["Overview"]["p95_ms"] > 0 and sections["ui"]["figures"]["Job"]["bytes"] > 0
    scale = sections["scale"]["figures"]
    assert set(scale) == {"watcher (embedded Tansu)", "naive poller"}
    for contender in scale.values():  # every failure notified exactly once, by watcher and by the naive poller
        assert contender["failures"] == 10 and contender["missed"] == contender["duplicates"] == 0, contender
        assert contender["unexpected"] == 0 and contender["latency_s"]["n"] == 10
        assert all(v > 0 for v in contender["peak_rss_mib"].values()) and contender["requests"]
    assert scale["watcher (embedded Tansu)"]["stages"]["failures"] == 10
    assert sections["idle"]["figures"]["requests"] > 0 and sections["idle"]["figures"]["cpu_pct"]["worker"] > 0
    scaleout = sections["scaleout"]["figures"]
    for n in (1, 2):
        assert scaleout[f"workers_{n}"]["missed"] == scaleout[f"workers_{n}"]["duplicates"] == 0
    assert scaleout["ratio"] > 0
