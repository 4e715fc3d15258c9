"""What a newcomer is told at start (issue 12, item 9): `watcher simulate` prints the keys and
the by-id job ids; `watcher run` without a [broker] url prints the embedded broker's address
as the line to put in the CLI tools' config."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from watcher.app.broker import free_port
from watcher.simulator import DEFAULT_AK, DEFAULT_SK, DEFAULT_TOKEN
from watcher.simulator.scenario import load_scenario
from watcher.simulator.server import small_scenario_path
from watcher.simulator.state import Simulator

ROOT = Path(__file__).resolve().parents[2]


def lines_until(proc: subprocess.Popen[str], stream: str, done: str, timeout: float = 60) -> list[str]:
    """Lines of ``stream`` until one contains ``done`` (the process is stopped by PID after)."""
    out: list[str] = []
    deadline = time.monotonic() + timeout
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    while time.monotonic() < deadline:
        line = pipe.readline()
        if not line:
            break
        out.append(line.rstrip("\n"))
        if done in line:
            return out
    raise AssertionError(f"no line with {done!r} within {timeout}s:\n" + "\n".join(out))


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_simulate_prints_the_keys_and_the_by_id_job_ids() -> None:
    port = free_port()
    sim = Simulator(load_scenario(small_scenario_path()))
    proc = subprocess.Popen([sys.executable, "-m", "watcher.cli", "simulate", "--port", str(port), "--scenario",
                             str(small_scenario_path())], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=ROOT)
    try:
        last = f"appjob in {sim.projects[0]}:"
        lines = lines_until(proc, "stdout", last)
    finally:
        stop(proc)
    evs = [f"    evs in {p}: {', '.join(sim.job_ids('evs', p))}" for p in sim.projects if sim.job_ids("evs", p)]
    assert lines == [
        f"simulator listening on http://127.0.0.1:{port}",
        f"  projects: {', '.join(sim.projects)}",
        "  keys (the simulator's own; they open nothing else):",
        f"    export HUAWEICLOUD_SDK_AK={DEFAULT_AK} HUAWEICLOUD_SDK_SK={DEFAULT_SK}",
        f"    or the token: export HUAWEICLOUD_SDK_TOKEN={DEFAULT_TOKEN}",
        "  by-id jobs (config `job_ids`, or `watcher track SOURCE JOB_ID --project P`):",
        *evs,
        f"    appjob in {sim.projects[0]}: {', '.join(sim.job_ids('appjob', sim.projects[0]))}",
    ]


def test_run_prints_where_the_cli_tools_find_the_embedded_broker(tmp_path: Path) -> None:
    cfg = tmp_path / "w.toml"
    cfg.write_text('[rules]\nfiles = []\n\n[health]\nenabled = false\nnotify_rule_errors = false\n')
    proc = subprocess.Popen([sys.executable, "-m", "watcher.cli", "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        lines = lines_until(proc, "stderr", "started the embedded Tansu broker")
    finally:
        stop(proc)
    m = re.search(r"started the embedded Tansu broker at 127\.0\.0\.1:(\d+) \(in-memory: for demos, development and "
                  r"tests; state is lost when watcher stops\)\. CLI tools \(track, dlq, explain, silence\) reach it "
                  r'with \[broker\] url = "kafka://127\.0\.0\.1:(\d+)" and tansu = true$', lines[-1])
    assert m and m.group(1) == m.group(2), lines[-1]
