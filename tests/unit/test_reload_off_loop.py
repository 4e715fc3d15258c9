"""A huge rule reload does not stop the worker's event loop (issue 12, item 7).

The reloader is driven the way the worker drives it — an asyncio task calling ``check()``
on the loop — next to the real web server on 127.0.0.1. While thousands of rules compile,
``/healthz`` answers; the new rules are installed once the load is done. And a rule file
has a size bound.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from watcher.app.broker import free_port
from watcher.app.health import WebServer
from watcher.app.metrics import Metrics
from watcher.app.reload import RuleReloader
from watcher.rules.engine import MAX_RULE_FILE_BYTES

ROOT = Path(__file__).resolve().parents[2]
HUGE = 5_000  # several seconds of compiling on this machine; 50,000 is the same, ten times longer


def many_rules(n: int) -> str:
    return "rules:\n" + "".join(f"  - name: r{i:05d}\n    when: FAILED job{i:05d}\n" for i in range(n))


async def test_healthz_answers_while_a_huge_reload_runs(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(many_rules(1))
    installed: list[Any] = []
    reloader = RuleReloader([str(rules)], lambda ruleset, _silences: installed.append(ruleset))
    web = WebServer(Metrics(), free_port())
    await web.on_start()

    async def timer() -> None:  # what the worker's @app.timer does, on the same loop
        while True:
            reloader.check()
            await asyncio.sleep(0.2)

    ticking = asyncio.create_task(timer())
    try:
        rules.write_text(many_rules(HUGE))
        os.utime(rules, (rules.stat().st_atime, rules.stat().st_mtime + 5))
        for _ in range(100):
            if reloader.loading:
                break
            await asyncio.sleep(0.1)
        assert reloader.loading, "the reload did not start"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}", timeout=10.0) as http:
            answer = await http.get("/healthz")
        assert (answer.status_code, answer.text) == (200, "ok\n")
        assert reloader.loading and installed == [], "the reload ended before /healthz answered: make HUGE bigger"
        for _ in range(1200):
            if installed:
                break
            await asyncio.sleep(0.1)
        assert [len(r) for r in installed] == [HUGE]
        assert reloader.reloads == 1 and not reloader.loading
    finally:
        ticking.cancel()
        await web.on_stop()


def test_a_rule_file_over_the_bound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("rules: []\n" + "#" * MAX_RULE_FILE_BYTES)
    size = path.stat().st_size
    out = subprocess.run([sys.executable, "-m", "watcher.cli", "rules", "check", str(path)], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 1
    assert out.stderr == (f"{path}:1:1: rule file of {size:,} bytes; the limit is 4,194,304 (4 MiB): split it into "
                          "several files\n1 error(s) in 1 file(s)\n")
