"""One-liners: every form in the rules v1 issue matches exactly the right events; errors carry columns."""

from __future__ import annotations

from datetime import UTC, datetime

import cel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.jobevents import raw_event
from watcher.errors import RuleError
from watcher.events import JobEvent, TaskCounts
from watcher.rules import oneliner
from watcher.rules.fields import event_context

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def event(source: str, status: str, phase: str, job_type: str, **kw) -> JobEvent:
    return raw_event(source, status, phase, job_type, NOW, **kw)


# One event per way a job can look; the ids are what the table below refers to.
EVENTS = {
    "ws-create-failed": event("workspace", "FAILED", "failed", "createDesktops"),
    "ws-create-running": event("workspace", "RUNNING", "running", "createDesktops"),
    "ws-delete-failed": event("workspace", "FAILED", "failed", "deleteDesktop"),
    "ws-createx-failed": event("workspace", "FAILED", "failed", "createDesktopsX"),
    "evs-create-fail": event("evs", "FAIL", "failed", "createVolume"),
    "evs-extend-fail": event("evs", "FAIL", "failed", "extendVolume"),
    "evs-create-success": event("evs", "SUCCESS", "succeeded", "createVolume"),
    "app-v1-failed": event("appjob", "0", "failed", "createDesktops"),
    "app-v1-running": event("appjob", "2", "running", "createDesktops"),
    "app-abnormal": event("workspaceapp", "ABNORMAL", "failed", "CREATE_SERVER"),
    "script-partial": event("script", "FINISH", "failed", "createDesktops", counts=TaskCounts(success=3, failed=1)),
    "script-ok": event("script", "FINISH", "succeeded", "createDesktops", counts=TaskCounts(success=4)),
}

MATCHES = [
    ("FAILED createDesktops", {"ws-create-failed"}),
    ("FAILED", {"ws-create-failed", "ws-delete-failed", "ws-createx-failed"}),
    ("FAILED create*", {"ws-create-failed", "ws-createx-failed"}),
    ("FAILED create?esktops", {"ws-create-failed"}),
    ("FAILED [cd]*Desktop?", {"ws-create-failed"}),
    ("FAILED [cd]*Desktop*", {"ws-create-failed", "ws-delete-failed", "ws-createx-failed"}),
    ("FAILED [!d]*", {"ws-create-failed", "ws-createx-failed"}),
    ("FAIL createVolume", {"evs-create-fail"}),
    ("evs: FAIL *", {"evs-create-fail", "evs-extend-fail"}),
    ("evs:FAIL", {"evs-create-fail", "evs-extend-fail"}),
    ("evs : FAIL create*", {"evs-create-fail"}),
    ("failed createDesktops", {"ws-create-failed", "app-v1-failed", "script-partial"}),
    ("0 createDesktops", {"app-v1-failed"}),
    ("appjob: 0", {"app-v1-failed"}),
    ("ABNORMAL", {"app-abnormal"}),
    ("workspaceapp: failed", {"app-abnormal"}),
    ("script: failed", {"script-partial"}),
    ("script: FINISH", {"script-partial", "script-ok"}),
    ("succeeded", {"evs-create-success", "script-ok"}),
    ("running", {"ws-create-running", "app-v1-running"}),
    ("terminal createVolume", {"evs-create-fail", "evs-create-success"}),
    ("evs: *", {"evs-create-fail", "evs-extend-fail", "evs-create-success"}),
    ("* createVolume", {"evs-create-fail", "evs-create-success"}),
    ("pending", set()),
]


@pytest.mark.parametrize(("text", "expected"), MATCHES)
def test_oneliner_matches_exactly(text: str, expected: set[str]) -> None:
    parsed = oneliner.parse(text)
    assert parsed is not None
    program = cel.compile(parsed.cel())
    got = {name for name, ev in EVENTS.items() if program.execute(event_context(ev)) is True}
    assert got == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FAILED createDesktops", 'status == "FAILED" && job_type == "createDesktops"'),
        ("FAILED", 'status == "FAILED"'),
        ("FAILED create*", 'status == "FAILED" && job_type.matches(r"^create.*$")'),
        ("evs: FAIL *", 'source == "evs" && status == "FAIL"'),
        ("failed createDesktops", 'phase == "failed" && job_type == "createDesktops"'),
        ("terminal", 'phase in ["succeeded", "failed"]'),
        ("*", "true"),
        ("  FAILED\tcreate.v2  ", 'status == "FAILED" && job_type == "create.v2"'),
        ("FAILED a-b.c?", r'status == "FAILED" && job_type.matches(r"^a\-b\.c.$")'),
    ],
)
def test_oneliner_cel(text: str, expected: str) -> None:
    parsed = oneliner.parse(text)
    assert parsed is not None and parsed.cel() == expected


@pytest.mark.parametrize(
    "text",
    ['status == "FAILED"', "true", "false", 'phase in ["failed"]', "counts.failed > 0", "", "   "],
)
def test_not_a_oneliner_is_cel(text: str) -> None:
    assert oneliner.parse(text) is None


@pytest.mark.parametrize(
    ("text", "col", "message"),
    [
        ("FIALED", 1, "unknown status 'FIALED'; did you mean 'FAILED'"),
        ("FAILED createDesktops extra", 23, "unexpected 'extra': a one-liner is [source:] STATUS [JOB_TYPE_GLOB]"),
        ("evs: FAILED", 6, "unknown status 'FAILED'; did you mean 'FAIL'"),
        ("ecs: FAIL", 1, "unknown source 'ecs'; expected one of workspace, workspaceapp, appjob, script, evs"),
        ("evs:", 5, "expected a status after 'evs:'"),
        ("FAILED create[", 8, "invalid job type glob 'create[': '[' without a closing ']'"),
        ("FAILED a[z-a]", 8, "invalid job type glob"),
        ("FAILED ab]", 8, "invalid job type glob"),
        ("Failed", 1, "unknown status 'Failed'; did you mean 'failed' or 'FAILED'"),
        ("FINISH: x", 1, "unknown source 'FINISH'"),
        ("FAILED: x", 1, "unknown source 'FAILED'"),
    ],
)
def test_oneliner_errors_carry_the_column(text: str, col: int, message: str) -> None:
    with pytest.raises(RuleError) as info:
        oneliner.parse(text)
    assert info.value.col == col
    assert info.value.reason.startswith(message)


def test_unknown_status_lists_the_vocabulary_of_the_source() -> None:
    with pytest.raises(RuleError) as info:
        oneliner.parse("evs: FAILED")
    assert "evs statuses are INIT, RUNNING, SUCCESS, FAIL, VANISHED" in info.value.reason


@pytest.mark.parametrize(
    ("glob", "regex"),
    [("create*", "^create.*$"), ("a?c", "^a.c$"), ("[!x]y", "^[^x]y$"), ("v1.2", r"^v1\.2$")],
)
def test_glob_regex(glob: str, regex: str) -> None:
    assert oneliner.glob_regex(glob) == regex


@given(st.text(max_size=40))
def test_parse_raises_only_rule_errors_with_a_column_in_the_text(text: str) -> None:
    try:
        parsed = oneliner.parse(text)
    except RuleError as e:
        assert 1 <= e.col <= len(text) + 1
        return
    if parsed is not None:
        cel.compile(parsed.cel())  # whatever parses compiles


@given(st.lists(st.sampled_from(["evs:", "FAIL", "failed", "*", "create*", "[a-", ":", "x", "0", "?"]), max_size=4))
def test_parse_on_oneliner_alphabet(words: list[str]) -> None:
    text = " ".join(words)
    try:
        parsed = oneliner.parse(text)
    except RuleError as e:
        assert 1 <= e.col <= len(text) + 1
        return
    if parsed is not None:
        cel.compile(parsed.cel())
