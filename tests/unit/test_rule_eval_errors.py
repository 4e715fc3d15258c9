"""CEL evaluation errors are shown: a metric per rule, a rate-limited WARNING naming the rule,
and `watcher rules check` refuses an expression that cannot be well-typed. Issue 12, item 6.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from watcher.app.broker import free_port
from watcher.app.health import WebServer
from watcher.app.metrics import Metrics
from watcher.events import JobEvent, job_key
from watcher.rules.engine import RuleSet, compile_all

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

RULES = """\
rules:
  - name: slow-failure
    when: 'phase == "failed" && duration_seconds > 600.0'
  - name: anything-failed
    when: failed
"""


def ruleset(tmp_path: Path, clock: list[float]) -> RuleSet:
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    compiled, errors = compile_all([path])
    assert errors == []
    return RuleSet(compiled, clock=lambda: clock[0])


def failed(job: str) -> JobEvent:  # no begin time: duration_seconds is null
    return JobEvent(source="evs", region="cn-north-4", project_id="p1", job_key=job_key("evs", "cn-north-4", "p1", job),
                    job_id=job, job_type="createVolume", status="FAIL", phase="failed", observed_at=NOW)


def test_a_failing_evaluation_warns_once_per_minute_naming_the_rule(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    clock = [1000.0]
    rules = ruleset(tmp_path, clock)
    caplog.set_level(logging.WARNING, logger="watcher.rules.engine")
    assert [r.name for r in rules.matching(failed("j1"))] == ["anything-failed"]
    rules.matching(failed("j2"))
    rules.matching(failed("j3"))
    clock[0] += 61
    rules.matching(failed("j4"))
    where = f"{tmp_path / 'r.yaml'}:2:5"
    reason = "No such overload: the operation is not defined for the given operand types"
    assert [r.getMessage() for r in caplog.records] == [
        f"rule slow-failure ({where}) could not be evaluated on evs/cn-north-4/p1/j1, so it did not match: {reason}",
        f"rule slow-failure ({where}) could not be evaluated on evs/cn-north-4/p1/j4, so it did not match: {reason}; "
        "2 more since the last warning",
    ]
    assert rules.eval_errors == {"slow-failure": 4}


async def test_the_metric_counts_per_rule_across_a_reload(tmp_path: Path) -> None:
    clock = [0.0]
    current = {"rules": ruleset(tmp_path, clock)}
    app = SimpleNamespace(watcher_components=SimpleNamespace(ruleset=lambda: current["rules"]))
    metrics = Metrics()
    web = WebServer(metrics, free_port(), app)
    await web.on_start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as http:
            async def series() -> list[str]:
                text = (await http.get("/metrics")).text
                return [line for line in text.splitlines() if line.startswith("watcher_rule_eval_errors_total")]

            assert await series() == []
            for job in ("j1", "j2"):
                current["rules"].matching(failed(job))
            assert await series() == ['watcher_rule_eval_errors_total{rule="slow-failure"} 2.0']
            current["rules"].matching(failed("j3"))
            current["rules"] = ruleset(tmp_path, clock)  # a reload: a new rule set counts from zero
            current["rules"].matching(failed("j4"))
            assert await series() == ['watcher_rule_eval_errors_total{rule="slow-failure"} 4.0']
    finally:
        await web.on_stop()


@pytest.mark.parametrize(("when", "reason"), [
    ('phase == "failed" && phase > 5', "No such overload: the operation is not defined for the given operand types"),
    ('status == "FAIL" && duration_seconds + 1 > 2.0', "Unsupported operation: float + int"),
    ('source == "script" && counts.failed > "3"',
     "No such overload: the operation is not defined for the given operand types"),
])
def test_rules_check_refuses_what_cannot_be_well_typed(tmp_path: Path, when: str, reason: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"rules:\n  - name: typed\n    when: '{when}'\n")
    out = subprocess.run([sys.executable, "-m", "watcher.cli", "rules", "check", str(path)], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 1
    assert out.stderr == (
        f"{path}:3:12: the expression is not well-typed over the event fields: {reason} (see the field types in "
        "`watcher.rules.fields`; convert with int(), double() or string())\n1 error(s) in 1 file(s)\n"
    )


def test_data_dependent_expressions_still_load(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n  - name: ok\n    when: 'error_code.startsWith(\"WKS\") && duration_seconds > 600'\n")
    assert compile_all([path])[1] == []
