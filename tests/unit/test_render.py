"""render: the default message per source (exact text), sanitizing, truncation, mentions."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.events import Alert, Entities, JobEvent, TaskCounts, alert_key, job_key
from watcher.notify.render import (
    ZWSP,
    default_body,
    default_title,
    iso_utc,
    neutralize_mentions,
    render,
    sanitize,
    strip_controls,
    truncate,
)

NOW = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)
PROJECT = "0bec3f1a9c2d4e5f8a7b6c5d4e3f2a1b"


def event(source: str, job_id: str, **kw: object) -> JobEvent:
    fields: dict[str, object] = {
        "source": source, "region": "cn-north-4", "project_id": PROJECT,
        "job_key": job_key(source, "cn-north-4", PROJECT, job_id), "job_id": job_id, "observed_at": NOW,
    }
    fields.update(kw)
    return JobEvent(**fields)  # type: ignore[arg-type]


def alert(ev: JobEvent, rule: str = "job-failed", **kw: object) -> Alert:
    fields: dict[str, object] = {
        "key": alert_key(rule, ev), "rule": rule, "title": "", "body": "", "event": ev, "fired_at": NOW,
    }
    fields.update(kw)
    return Alert(**fields)  # type: ignore[arg-type]


WORKSPACE = alert(event(
    "workspace", "ff8080818c3d", parent_job_id="ff8080818c00", job_type="createDesktops",
    status="FAILED", phase="failed", prev_status="RUNNING", prev_phase="running",
    begin_time=datetime(2026, 11, 23, 11, 58, tzinfo=UTC), end_time=datetime(2026, 11, 23, 12, 0, 5, tzinfo=UTC),
    error_code="WKS.0112", message="Insufficient desktop quota.",
    entities=Entities(desktop_name="dev-01", desktop_id="d-123", user_name="alice"),
), severity="critical")

EVS = alert(event(
    "evs", "ff80-evs-1", job_type="createVolume", status="FAIL", phase="failed",
    prev_status="RUNNING", prev_phase="running", error_code="EVS.2024", message="volume quota exceeded",
    # a +08:00 time must come out in UTC
    begin_time=datetime(2026, 11, 23, 19, 59, 0, tzinfo=timezone(timedelta(hours=8))),
    entities=Entities(volume_id="vol-9", volume_name="data-disk", size_gb=40),
))

APPJOB_V1 = alert(event(
    "appjob", "job-77", job_type="1", status="0", phase="failed", prev_status="2", prev_phase="running",
    message="install failed", entities=Entities(resource_id="srv-1", resource_name="app-server-1"),
), severity="warning")

SCRIPT = alert(event(
    "script", "task-5", job_type="EXECUTE_SCRIPT", status="FINISH", phase="failed",
    prev_status="RUNNING", prev_phase="running", counts=TaskCounts(success=8, failed=2, skipped=1),
    entities=Entities(desktop_pool_id="pool-1", desktop_pool_name="finance", scripts=("patch.ps1", "reboot.ps1")),
), count=3)

RESOLVED = alert(event(
    "workspace", "ff8080818c3e", job_type="createDesktops", status="SUCCESS", phase="succeeded",
    prev_status="RUNNING", prev_phase="running", entities=Entities(desktop_name="dev-02"),
), rule="desktop-slow", kind="resolved", severity="info")

FIRST_SIGHTING = alert(event(
    "workspaceapp", "wa-1", job_type="", status="PENDING_X", phase="other", change="appeared",
))


@pytest.mark.parametrize(
    ("al", "title", "body"),
    [
        (WORKSPACE, "[FAILED] createDesktops in project 0bec… (cn-north-4)",
         "Job:      createDesktops (workspace)\n"
         "Status:   RUNNING → FAILED\n"
         f"Project:  {PROJECT}\n"
         "Region:   cn-north-4\n"
         "Job ID:   ff8080818c3d (parent ff8080818c00)\n"
         "Began:    2026-11-23T11:58:00Z\n"
         "Ended:    2026-11-23T12:00:05Z\n"
         "Error:    WKS.0112: Insufficient desktop quota.\n"
         "Desktop:  dev-01 (d-123)\n"
         "User:     alice\n"
         "Rule:     job-failed (critical)"),
        (EVS, "[FAILED] createVolume in project 0bec… (cn-north-4)",
         "Job:      createVolume (evs)\n"
         "Status:   RUNNING → FAIL (failed)\n"
         f"Project:  {PROJECT}\n"
         "Region:   cn-north-4\n"
         "Job ID:   ff80-evs-1\n"
         "Began:    2026-11-23T11:59:00Z\n"
         "Error:    EVS.2024: volume quota exceeded\n"
         "Volume:   data-disk (vol-9), 40 GB\n"
         "Rule:     job-failed (error)"),
        (APPJOB_V1, "[FAILED] App job in project 0bec… (cn-north-4)",  # v1's job_type 1, by its name
         "Job:      App job (appjob)\n"
         "Status:   2 → 0 (failed)\n"
         f"Project:  {PROJECT}\n"
         "Region:   cn-north-4\n"
         "Job ID:   job-77\n"
         "Error:    install failed\n"
         "Resource: app-server-1 (srv-1)\n"
         "Rule:     job-failed (warning)"),
        (SCRIPT, "[FAILED] EXECUTE_SCRIPT in project 0bec… (cn-north-4)",
         "Job:      EXECUTE_SCRIPT (script)\n"
         "Status:   2 of 11 desktops failed (task RUNNING → FINISH)\n"  # not a bare FINISH
         f"Project:  {PROJECT}\n"
         "Region:   cn-north-4\n"
         "Job ID:   task-5\n"
         "Pool:     finance (pool-1)\n"
         "Scripts:  patch.ps1, reboot.ps1\n"
         "Tasks:    8 succeeded, 2 failed, 1 skipped\n"
         "Seen:     3 times\n"
         "Rule:     job-failed (error)"),
        (RESOLVED, "[RESOLVED] createDesktops in project 0bec… (cn-north-4)",
         "Resolved: createDesktops is now SUCCESS.\n"
         "Job:      createDesktops (workspace)\n"
         "Status:   RUNNING → SUCCESS (succeeded)\n"
         f"Project:  {PROJECT}\n"
         "Region:   cn-north-4\n"
         "Job ID:   ff8080818c3e\n"
         "Desktop:  dev-02\n"
         "Rule:     desktop-slow (info)"),
        (FIRST_SIGHTING, "[PENDING_X] workspaceapp job in project 0bec… (cn-north-4)",
         "Job:      - (workspaceapp)\n"
         "Status:   (new) → PENDING_X\n"
         f"Project:  {PROJECT}\n"
         "Region:   cn-north-4\n"
         "Job ID:   wa-1\n"
         "Rule:     job-failed (error)"),
    ],
    ids=["workspace", "evs", "appjob-v1", "script", "resolved", "first-sighting"],
)
def test_default_message(al: Alert, title: str, body: str) -> None:
    assert default_title(al) == title
    assert default_body(al) == body
    assert render(al) == (title, body)


def test_vanished_job_says_so() -> None:
    # the poller's shape: status VANISHED, phase other
    al = alert(event("evs", "v-1", job_type="deleteVolume", status="VANISHED", phase="other",
                     prev_status="RUNNING", prev_phase="running", change="vanished"))
    assert default_title(al) == "[VANISHED] deleteVolume in project 0bec… (cn-north-4)"
    assert "\nStatus:   RUNNING → VANISHED, no longer listed by the API\n" in default_body(al)


def test_rule_text_wins_but_is_still_sanitized() -> None:
    al = alert(WORKSPACE.event, title="Desktop\tbuild\r\nfailed\x1b[31m", body="@here see <!channel>\x00")
    assert render(al) == ("Desktop build failed[31m", f"@{ZWSP}here see <{ZWSP}!channel>")


def test_render_applies_limits() -> None:
    al = alert(WORKSPACE.event, title="T" * 300, body="B" * 5000)
    title, body = render(al, title_limit=100, body_limit=1000)
    assert title == "T" * 66 + "… (truncated, 234 more characters)"
    assert len(body) == 1000 and body.endswith("… (truncated, 4035 more characters)")


def test_iso_utc_takes_naive_as_utc() -> None:
    assert iso_utc(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("line1\r\nline2\ttab", "line1\nline2\ttab"),
        ("bell\x07 esc\x1b[2J nul\x00 del\x7f c1\x85 end", "bell esc[2J nul del c1 end"),
        ("safe\u202eevil\u2066x\u2069", "safeevilx"),  # bidi overrides disguise text
        ("unicode ok: 项目 ✓ 😀", "unicode ok: 项目 ✓ 😀"),
    ],
)
def test_strip_controls(raw: str, clean: str) -> None:
    assert strip_controls(raw) == clean


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("<!channel> <!here|here> <!subteam^S1>", f"<{ZWSP}!channel> <{ZWSP}!here|here> <{ZWSP}!subteam^S1>"),
        ("@everyone @here @Channel @all", f"@{ZWSP}everyone @{ZWSP}here @{ZWSP}Channel @{ZWSP}all"),
        ("<@U123> <@&456> <#C789>", f"<{ZWSP}@U123> <{ZWSP}@&456> <{ZWSP}#C789>"),
        # ordinary text with '@' and '<' is left alone
        ("alice@example.com a<b @heresy @allowed", "alice@example.com a<b @heresy @allowed"),
    ],
)
def test_neutralize_mentions(raw: str, safe: str) -> None:
    assert neutralize_mentions(raw) == safe


@pytest.mark.parametrize(
    ("text", "limit", "out"),
    [
        ("short", 10, "short"),
        ("x" * 100, 100, "x" * 100),
        ("x" * 101, 100, "x" * 67 + "… (truncated, 34 more characters)"),
        ("y" * 50_000, 4000, "y" * 3964 + "… (truncated, 46036 more characters)"),
        ("z" * 50, 10, "z" * 10),  # a limit shorter than the marker: plain cut
    ],
)
def test_truncate(text: str, limit: int, out: str) -> None:
    assert truncate(text, limit) == out
    assert len(out) <= limit


def test_sanitize_hostile_job_text() -> None:
    hostile = "<!channel> @everyone <script>alert(1)</script>\x1b[31m\x00" + "A" * 50_000
    out = sanitize(hostile, 4000)
    assert out.startswith(f"<{ZWSP}!channel> @{ZWSP}everyone <script>alert(1)</script>[31m" + "A")
    assert out.endswith("more characters)") and len(out) == 4000


@given(st.text(), st.integers(min_value=40, max_value=5000))
def test_sanitize_invariants(text: str, limit: int) -> None:
    out = sanitize(text, limit)
    assert len(out) <= limit
    assert not any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in out)
    assert "<!" not in out and "@everyone" not in out.lower() and "@here" not in out.lower()
