"""RuleSet: alerts with exact text, routing, the index under 1,000 extra rules, loading and checking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.jobevents import raw_event
from watcher.errors import RuleError
from watcher.events import Entities, JobEvent, TaskCounts, alert_key
from watcher.rules.check import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, run
from watcher.rules.compile import compile_rule
from watcher.rules.engine import NOTIFY_TYPES, RuleSet, load_rules
from watcher.rules.expr import make_context
from watcher.rules.fields import event_context
from watcher.rules.schema import parse_rules

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def event(
    source: str = "workspace", status: str = "FAILED", phase: str = "failed", job_type: str = "createDesktops", **kw
) -> JobEvent:
    kw.setdefault("prev_status", "RUNNING")
    kw.setdefault("prev_phase", "running")
    return raw_event(source, status, phase, job_type, NOW, **kw)


def ruleset(text: str) -> RuleSet:
    rules, errors = parse_rules(text, "t.yaml")
    if errors:
        raise errors[0]
    return RuleSet(compile_rule(r) for r in rules)


FULL = event(
    parent_job_id="parent-9",
    begin_time=NOW - timedelta(minutes=20),
    end_time=NOW - timedelta(minutes=5),
    error_code="WKS.0203",
    message="The desktop quota is insufficient.",
    entities=Entities(desktop_id="d-1", desktop_name="desk-1", user_name="alice"),
)
BARE = event(prev_status=None, prev_phase=None, change="appeared")


def test_default_title_and_body_full_event() -> None:
    [alert] = ruleset("rules:\n  - name: r\n    when: failed\n").evaluate(FULL, NOW)
    assert alert.title == "[FAILED] createDesktops in p1 (cn-north-4)"
    assert alert.body == (
        "Job type: createDesktops (workspace)\n"
        "Status: RUNNING → FAILED\n"
        "Project: p1\n"
        "Region: cn-north-4\n"
        "Job: j1 (parent parent-9)\n"
        "Began: 2026-11-23 11:40:00 UTC\n"
        "Ended: 2026-11-23 11:55:00 UTC\n"
        "Error: WKS.0203: The desktop quota is insufficient.\n"
        "Desktop: desk-1 (d-1)\n"
        "User: alice"
    )
    assert alert.key == alert_key("r", FULL) == "r|workspace/cn-north-4/p1/j1|RUNNING>FAILED|firing"
    assert (alert.rule, alert.kind, alert.severity, alert.tags, alert.event, alert.fired_at) == (
        "r", "firing", "error", (), FULL, NOW,
    )  # fmt: skip


def test_default_text_bare_event_other_phase_and_script_counts() -> None:
    rs = ruleset("rules:\n  - name: r\n    when: '*'\n")
    [alert] = rs.evaluate(BARE, NOW)
    assert (
        alert.body
        == "Job type: createDesktops (workspace)\nStatus: FAILED (first seen)\nProject: p1\nRegion: cn-north-4\nJob: j1"
    )
    [other] = rs.evaluate(event("workspaceapp", "ROLLBACK", "other", "CREATE_SERVER"), NOW)
    assert other.title == "[ROLLBACK] CREATE_SERVER in p1 (cn-north-4)"
    script = event("script", "FINISH", "failed", "runScript", counts=TaskCounts(success=3, failed=1, skipped=2))
    [s] = rs.evaluate(script, NOW)
    assert s.body.endswith("Job: j1\nDesktops: 3 succeeded, 1 failed, 2 skipped")
    evs = event("evs", "FAIL", "failed", "createVolume", entities=Entities(volume_id="v-1", volume_name="data"))
    assert rs.evaluate(evs, NOW)[0].body.endswith("Volume: data (v-1)")


def test_custom_templates_routing_and_severity() -> None:
    rs = ruleset(
        "rules:\n"
        "  - name: evs-fail\n"
        "    when: 'evs: FAIL'\n"
        "    notify: [console, webhook]\n"
        "    severity: critical\n"
        "    title: '{{ rule.severity | upper }} {{ event.job_type }} {{ event.entities.volume_name }}'\n"
        "    body: |\n"
        "      {{ rule.name }} → {{ rule.tags | join(',') }}\n"
        "      {{ event.error_code }}: {{ event.message }}\n"
    )
    ev = event("evs", "FAIL", "failed", "createVolume", error_code="EVS.1", message="no capacity")
    [alert] = rs.evaluate(ev, NOW)
    assert alert.title == "CRITICAL createVolume"  # a null renders empty; trailing space trimmed
    assert alert.body == "evs-fail → console,webhook\nEVS.1: no capacity"
    assert (alert.tags, alert.severity, NOTIFY_TYPES[alert.severity]) == (("console", "webhook"), "critical", "failure")


def test_truncation_and_control_characters() -> None:
    rs = ruleset(
        "rules:\n  - name: r\n    when: failed\n    title: '{{ event.message }}'\n    body: '{{ event.message }}'\n"
    )
    [alert] = rs.evaluate(event(message="x\x00\x1b" + "y" * 5000 + "\nz"), NOW)
    assert len(alert.title) == 250 and alert.title.endswith("y…") and alert.title.startswith("xy")
    assert len(alert.body) == 4000 and alert.body.endswith("…")
    [multi] = rs.evaluate(event(message="a\n  b\tc"), NOW)
    assert (multi.title, multi.body) == ("a b c", "a\n  b\tc")  # a title is one line


def test_a_template_failing_on_this_event_falls_back_to_the_default() -> None:
    rs = ruleset("rules:\n  - name: r\n    when: failed\n    body: \"{{ event.begin_time.strftime('%H') }}\"\n")
    assert rs.evaluate(FULL, NOW)[0].body == "11"
    body = rs.evaluate(BARE, NOW)[0].body
    assert body.startswith("Job type: createDesktops (workspace)\n")
    assert "(template error: UndefinedError:" in body


@pytest.mark.parametrize(
    "template", ["{{ ''.__class__.__mro__ }}", "{{ event.__class__ }}", "{{ lipsum.__globals__ }}"]
)
def test_templates_are_sandboxed(template: str) -> None:
    with pytest.raises(RuleError, match="t.yaml:4:12: template error"):
        ruleset(f'rules:\n  - name: r\n    when: failed\n    body: "{template}"\n')


def test_disabled_rules_are_compiled_but_never_fire() -> None:
    rs = ruleset("rules:\n  - name: r\n    when: failed\n    enabled: false\n")
    assert len(rs) == 0 and rs.evaluate(FULL, NOW) == []
    with pytest.raises(RuleError, match="unknown status"):
        ruleset("rules:\n  - name: r\n    when: FIALED\n    enabled: false\n")


BASE_RULES = """\
rules:
  - name: desk-failed
    when: FAILED createDesktops
  - name: any-failed
    when: failed
  - name: evs-fail
    when: 'evs: FAIL *'
  - name: create-glob
    when: FAILED create*
  - name: slow
    when: 'phase == "failed" || duration_seconds > 3600.0'
  - name: run-to-fail
    when: '*'
    from: RUNNING
    to: failed
"""


def _noise(n: int) -> str:
    """n rules for other job types, statuses and sources: none can match the probe events."""
    forms = [
        "FAILED job{i}",
        "'evs: FAIL vol{i}'",
        "succeeded x{i}",
        "'script: FINISH t{i}'",
        '\'source == "appjob" && job_type == "a{i}"\'',
        '\'phase == "pending" && job_type.matches("^p{i}")\'',
    ]
    return "".join(f"  - name: noise-{i}\n    when: {forms[i % len(forms)].format(i=i)}\n" for i in range(n))


PROBES = [
    FULL,
    BARE,
    event("evs", "FAIL", "failed", "createVolume"),
    event("evs", "SUCCESS", "succeeded", "createVolume"),
    event("workspace", "RUNNING", "running", "createDesktops", prev_status="WAITING", prev_phase="pending"),
    event("appjob", "0", "failed", "createX"),
    event("script", "FINISH", "failed", "t1x", counts=TaskCounts(failed=1)),
]


def test_a_thousand_non_matching_rules_change_nothing_and_are_never_tried() -> None:
    base = ruleset(BASE_RULES)
    big = ruleset(BASE_RULES + _noise(1000))
    assert len(big) == 1006
    for ev in PROBES:
        assert [r.name for r in big.matching(ev)] == [r.name for r in base.matching(ev)]
        assert [r.name for r in big.candidates(ev)] == [r.name for r in base.candidates(ev)]
        assert [a.key for a in big.evaluate(ev, NOW)] == [a.key for a in base.evaluate(ev, NOW)]
    assert [r.name for r in base.matching(FULL)] == ["desk-failed", "any-failed", "create-glob", "slow", "run-to-fail"]


POOL = [
    "FAILED createDesktops", "failed", "'evs: FAIL *'", "FAILED create*", "terminal", "'appjob: 0'",
    "'source == \"evs\" && phase in [\"failed\", \"succeeded\"]'", "'status == \"FAIL\" || job_type == \"x\"'",
    "'(source == \"script\") && counts.failed > 0'", "running x", "'\"workspace\" == source && status == \"RUNNING\"'",
]  # fmt: skip
EVENT_SPACE = st.builds(
    event,
    source=st.sampled_from(["workspace", "evs", "appjob", "script", "workspaceapp"]),
    status=st.sampled_from(["FAILED", "FAIL", "RUNNING", "0", "SUCCESS", "FINISH"]),
    phase=st.sampled_from(["failed", "running", "succeeded", "other"]),
    job_type=st.sampled_from(["createDesktops", "createX", "x", "deleteDesktop"]),
    counts=st.none() | st.builds(TaskCounts, failed=st.integers(0, 2)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(POOL), min_size=1, max_size=8), EVENT_SPACE)
def test_index_never_changes_what_matches(whens: list[str], ev: JobEvent) -> None:
    rs = ruleset("rules:\n" + "".join(f"  - name: r{i}\n    when: {w}\n" for i, w in enumerate(whens)))
    ctx = make_context(event_context(ev), frozenset())
    brute = [r.name for r in rs.rules if r.program.execute(ctx) is True]
    assert [r.name for r in rs.matching(ev)] == brute


DEMO_ROUTES = [
    (
        event("workspace", "FAILED", "failed", "createDesktops"),
        {"demo-desktop-creation-failed": ("console", "webhook", "mail")},
    ),
    (event("evs", "FAIL", "failed", "createVolume"), {"demo-evs-job-failed": ("console", "webhook", "mail")}),
    (
        event("script", "FINISH", "failed", "runScript", counts=TaskCounts(failed=2)),
        {"demo-script-task-failures": ("console", "webhook")},
    ),
    (event("workspaceapp", "ABNORMAL", "failed", "CREATE_SERVER"), {"demo-app-server-failed": ("console", "webhook")}),
    (event("workspace", "FAILED", "failed", "deleteDesktop"), {"demo-other-job-failed": ("console",)}),
    (event("workspace", "SUCCESS", "succeeded", "createDesktops"), {}),
]


@pytest.mark.parametrize(("ev", "routes"), DEMO_ROUTES)
def test_demo_rules_route(ev: JobEvent, routes: dict[str, tuple[str, ...]]) -> None:
    alerts = load_rules(ROOT / "watcher" / "rules" / "demo.yaml").evaluate(ev, NOW)
    assert {a.rule: a.tags for a in alerts} == routes


DEFAULT_FIRES = [
    (event("workspace", "FAILED", "failed", "createDesktops"), ["workspace-job-failed"]),
    (event("workspaceapp", "ABNORMAL", "failed", "CREATE_SERVER"), ["app-server-job-failed"]),
    (event("workspaceapp", "FAILED", "failed", "CREATE_SERVER"), ["app-server-job-failed"]),
    (event("appjob", "0", "failed", "createServers"), ["app-server-job-failed"]),
    (event("evs", "FAIL", "failed", "createVolume"), ["evs-job-failed"]),
    (event("script", "FINISH", "failed", "runScript", counts=TaskCounts(failed=1)), ["script-task-failures"]),
    (event("evs", "SUCCESS", "succeeded", "createVolume"), []),
]


@pytest.mark.parametrize(("ev", "names"), DEFAULT_FIRES)
def test_default_rules_fire_once_per_failure(ev: JobEvent, names: list[str]) -> None:
    assert [a.rule for a in load_rules(ROOT / "rules" / "default.yaml").evaluate(ev, NOW)] == names


def test_shipped_rule_files_check_clean() -> None:
    assert run([ROOT / "rules", ROOT / "watcher" / "rules" / "demo.yaml"]) == (EXIT_OK, ["ok: 10 rule(s) in 2 file(s)"])


def test_check_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: a\n    when: FIALED\n  - name: b\n    when: 'x == 1'\n")
    code, lines = run([bad])
    assert code == EXIT_ERRORS
    assert [line.split(": ")[0] for line in lines] == [f"{bad}:3:11", f"{bad}:5:12", "2 error(s) in 1 file(s)"]
    assert run([tmp_path / "nope.yaml"])[0] == EXIT_USAGE
    assert run([]) == (EXIT_USAGE, ["usage: watcher rules check FILE_OR_DIR..."])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "r.yaml"


YAMLISH = st.lists(
    st.sampled_from([
        "rules:", "  - name: a", "    when: FAILED", "  - name: b", "    when: 'phase == \"x\" &&'", "    notify: [a",
        "    from: none", "    to: [failed, 7]", "  - {name: c, when: '*', for: 1m}", "    title: '{{ x'", "&a [*a]",
        "    body: |", "      {{ event.job_type }}", "- x", "rules: *a", "\t", ":", "'", "!!binary x", "    when: !x y",
        "    severity: 5", "rules: [{name: 1, when: 0}]", "    enabled: maybe", "%YAML 9.9", "---", "{{", "\x00",
    ]) | st.text(max_size=20),
    max_size=10,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(YAMLISH)
def test_load_rules_raises_only_rule_errors(scratch: Path, lines: list[str]) -> None:
    scratch.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    try:
        load_rules([scratch])
    except RuleError as e:
        assert e.file == str(scratch) and e.line >= 1 and e.col >= 1
