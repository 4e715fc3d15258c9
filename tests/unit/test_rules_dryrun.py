"""The dry run on the shipped example, `watcher explain`, and `watcher rules test` as a command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.jobevents import at, event, ruleset
from watcher.errors import WatcherError
from watcher.rules.pipeline import DryRun, explain
from watcher.rules.report import dry_run, read_events, run_test

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules" / "examples" / "features.yaml"
EVENTS = ROOT / "rules" / "examples" / "events.jsonl"


@pytest.fixture(scope="module")
def example() -> DryRun:
    return dry_run([RULES], EVENTS)


def test_the_example_decides_every_feature(example: DryRun) -> None:
    assert [(m.at.strftime("%H:%M:%S"), m.alert.rule, m.alert.kind, m.alert.count) for m in example.messages] == [
        ("10:30:00", "desktop-batch-stuck", "firing", 1),
        ("11:30:00", "desktop-batch-stuck", "firing", 1),  # repeat: 1h
        ("11:40:37", "desktop-creation-failed", "firing", 4),  # 4 desktops of batch-1, one message
        ("11:45:00", "desktop-batch-stuck", "resolved", 1),
        ("11:50:05", "desktop-batch-failing", "firing", 1),  # 1 of 2 sub-jobs of batch-2 failed
        ("12:01:00", "evs-job-failed", "firing", 1),
        ("12:02:00", "evs-job-failed", "firing", 1),
        ("12:03:00", "evs-failure-burst", "firing", 3),
        ("12:20:00", "job-vanished", "firing", 1),
    ]
    suppressed = [(o.job_key.rsplit("/", 1)[1], o.rule, o.result) for e in example.log for o in e.alerts
                  if o.result not in ("sent", "grouped")]  # fmt: skip
    assert suppressed == [
        ("j-22", "desktop-creation-failed", "inhibited"),  # by the batch-2 share
        ("v-1", "evs-job-failed", "deduplicated"),  # the replayed event
        ("v-3", "evs-job-failed", "inhibited"),  # by the burst it started
        ("v-4", "evs-job-failed", "inhibited"),
        ("del-1", "workspace-job-failed", "silenced"),  # p2-maintenance
    ]


def test_text_report_ends_with_a_summary() -> None:
    code, text = run_test([RULES], EVENTS)
    assert code == 0
    assert text.splitlines()[-1] == (
        "21 events, 17 alerts: 8 sent, 4 grouped, 1 deduplicated, 1 silenced, 3 inhibited; "
        "9 messages (nothing was sent)"
    )
    assert "\n-- 3. 2026-11-23 11:40:37 UTC [error] → default route (4 alerts)\n" in text
    assert "Error codes: WKS.0001 ×3, WKS.0002 ×1\n" in text


def test_explain_a_grouped_job(example: DryRun) -> None:
    assert explain("workspace/cn-north-4/p1/j-08", example.log) == "\n".join([
        "job workspace/cn-north-4/p1/j-08",
        "2026-11-23 11:40:08 UTC  RUNNING → FAILED: desktop-creation-failed, desktop-batch-failing",
        "    desktop-creation-failed (firing) → grouped desktop-creation-failed|firing|project_id=p1"
        "|job_type=createDesktops|parent_job_id=batch-1",
        "2026-11-23 11:40:37 UTC  group send",
        "    sent in message desktop-creation-failed|firing|project_id=p1|job_type=createDesktops"
        "|parent_job_id=batch-1|group@20261123T114007Z#1 (4 alerts)",
    ])  # fmt: skip


def test_explain_a_job_that_did_not_notify(example: DryRun) -> None:
    assert explain("workspace/cn-north-4/p1/j-01", example.log) == (
        "job workspace/cn-north-4/p1/j-01\n"
        "2026-11-23 11:40:01 UTC  RUNNING → SUCCESS: no rule matched\n"
        "1 event(s), none matched a rule that fired: nothing to notify"
    )
    assert explain("nope", example.log) == "job nope\nno event of this job in the log"


def test_explain_a_silenced_job(example: DryRun) -> None:
    lines = explain("workspace/cn-north-4/p2/del-1", example.log).splitlines()
    assert lines[2] == (
        '    workspace-job-failed (firing) → silenced: silence p2-maintenance (project_id == "p2"; '
        "2026-11-23 00:00:00 UTC → 2026-11-24 00:00:00 UTC by ops): p2 desktop pool rebuild"
    )


def test_a_bad_events_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('# comment\n\n{"source": "evs"}\n')
    with pytest.raises(WatcherError, match=r"e\.jsonl:3: not a job event: Object missing required field"):
        read_events(path)


def watcher(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watcher.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)  # fmt: skip


def test_cli_rules_test_on_the_shipped_example() -> None:
    out = watcher("rules", "test", "--rules", str(RULES), "--events", str(EVENTS))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("== Decisions\n2026-11-23 10:00:00 UTC  workspace/cn-north-4/p1/batch-1  ")
    assert "[BURST] 3 × evs: FAIL within 10m: project_id=p1\n" in out.stdout
    as_json = watcher("rules", "test", "--rules", str(RULES), "--events", str(EVENTS), "--json")
    data = json.loads(as_json.stdout)
    assert data["summary"]["messages"] == 9 and len(data["messages"]) == 9


def test_cli_explain_and_errors(tmp_path: Path) -> None:
    out = watcher("explain", "evs/cn-north-4/p1/v-3", "--rules", str(RULES), "--events", str(EVENTS))
    assert out.returncode == 0, out.stderr
    assert "evs-job-failed (firing) → inhibited: inhibited by evs-failure-burst|project_id=p1" in out.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: a\n    when: FIALED\n")
    out = watcher("rules", "test", "--rules", str(bad), "--events", str(EVENTS))
    assert out.returncode == 1 and f"{bad}:3:11: unknown status 'FIALED'" in out.stderr


MIXED = ruleset(
    "rules:\n"
    "  - name: each\n    when: failed\n    group_by: [project_id]\n    group_wait: 20s\n    group_interval: 1m\n"
    "  - name: stuck\n    when: running\n    for: 5m\n    repeat: 10m\n"
    "  - name: burst\n    when: failed\n    burst: {count: 3, within: 5m}\n    repeat: 2m\n"
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["j1", "j2", "j3"]),
            st.sampled_from(["RUNNING", "FAILED", "SUCCESS"]),
            st.sampled_from(["p1", "p2"]),
            st.integers(0, 7200),
        ),  # fmt: skip
        max_size=30,
    )
)
def test_no_message_key_is_ever_sent_twice(items) -> None:
    events = [event(j, s, at(0, t), project=p, prev="WAITING") for j, s, p, t in items]
    run = DryRun(MIXED).run(events)
    keys = [m.alert.key for m in run.messages]
    assert len(keys) == len(set(keys))
    members = [m.key for msg in run.messages for m in msg.members]
    assert len(members) == len(set(members))
