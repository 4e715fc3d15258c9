"""`watcher config check` follows every route: a rule (or the self-health alerts) whose alerts
reach no notification target fails the check, and `watcher run` refuses to start on it.

Issue 12, item 1 (and 9: the ok line says "poll targets" and lists the notification targets).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RULES = """\
rules:
  - name: anything-failed
    when: failed
  - name: paged
    when: "evs: FAIL"
    notify: [pager, phone]
  - name: to-ops
    when: "script: failed"
    notify: [ops]
"""


def watcher(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watcher.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def write(tmp_path: Path, notify: str, health: str = "") -> Path:
    (tmp_path / "r.yaml").write_text(RULES)
    path = tmp_path / "w.toml"
    path.write_text(f'[rules]\nfiles = ["r.yaml"]\n\n{health}\n{notify}')
    return path


def test_rules_and_health_alerts_that_reach_no_target_fail_the_check(tmp_path: Path) -> None:
    path = write(tmp_path, '[notify]\ndefault_tags = ["default"]\n\n[[notify.targets]]\nurl = "console://"\n'
                           'tags = ["ops"]\n', health='[health]\ntags = ["blind"]\n')
    out = watcher("config", "check", str(path))
    rules = tmp_path / "r.yaml"
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        f"{rules}:2:5: rule 'anything-failed' reaches no notification target (no notify, so the default route: "
        "[notify] default_tags = ['default'])",
        f"{rules}:4:5: rule 'paged' reaches no notification target (tags: pager, phone)",
        f"{path}: [health] the self-health alerts (watcher-blind, watcher-rules-refused) reach no notification "
        "target (tags: blind)",
    ]
    # `run` starts anyway (watching without targets is legitimate) but says so first, per route.
    proc = subprocess.Popen([sys.executable, "-m", "watcher.cli", "run", "--config", str(path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        said = [proc.stderr.readline().rstrip("\n") for _ in range(3)]
    finally:
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(30)
    assert [line.split(" ERROR watcher: ", 1)[-1] for line in said] == [
        f"{line}: its alerts will be dead-lettered no_route" for line in out.stderr.splitlines()]


def test_run_refuses_rule_files_that_do_not_compile(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n  - name: x\n    wen: failed\n")
    path = tmp_path / "w.toml"
    path.write_text('[rules]\nfiles = ["r.yaml"]\n')
    out = watcher("run", "--config", str(path))
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert lines[0].startswith(f"watcher: error: {tmp_path / 'r.yaml'}:3:5: ")
    assert lines[-1] == f"watcher: error: {path}: not started; `watcher config check {path}` lists the same problems"


def test_with_no_target_at_all_every_route_fails(tmp_path: Path) -> None:
    out = watcher("config", "check", str(write(tmp_path, "")))
    assert out.returncode == 1
    assert out.stderr.splitlines()[0] == (f"{tmp_path / 'r.yaml'}:2:5: rule 'anything-failed' reaches no notification "
                                          "target (no notify, so the default route: every target, and there is none)")
    assert len(out.stderr.splitlines()) == 4


@pytest.mark.parametrize("default_tags", ["", '[notify]\ndefault_tags = ["ops"]\n'])
def test_the_default_route_reaches_every_target_unless_default_tags_says_otherwise(tmp_path: Path,
                                                                                   default_tags: str) -> None:
    path = write(tmp_path, f'{default_tags}\n[[notify.targets]]\nurl = "console://"\ntags = ["ops"]\n\n'
                           '[[notify.targets]]\nurl = "json://u:S3cr3tT0k3n12@127.0.0.1:9/hook/S3cr3tT0k3n12?a=b"\n'
                           'tags = ["pager"]\n\n[[watch]]\nsource = "evs"\nregion = "cn-north-4"\nprojects = ["p1", "p2"]\n')
    out = watcher("config", "check", str(path))
    if default_tags:  # the default route is the ops target only
        assert out.returncode == 0, out.stderr
        route = "console:// ([notify] default_tags = ['ops'])"
    else:
        assert out.returncode == 0, out.stderr
        route = "console://, json://u:****@127.0.0.1:9/****/**** (every target: [notify] default_tags is not set)"
    assert out.stdout.splitlines() == [
        f"{path}: ok (2 poll targets, 3 rules in 1 rule file, 2 notification targets)",
        "  notify console://  tags: ops",
        "  notify json://u:****@127.0.0.1:9/****/****  tags: pager",
        f"  rules without notify, and the self-health alerts without [health] tags, go to: {route}",
    ]
    assert "S3cr3tT0k3n12" not in out.stdout + out.stderr


@pytest.mark.parametrize("config", ["deploy/watcher.toml", "deploy/watcher-demo.toml"])
def test_the_shipped_configs_check(config: str) -> None:
    out = watcher("config", "check", config)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{config}: ok (")
