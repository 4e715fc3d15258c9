"""Compiling rules: CEL conditions, from/to transitions, index keys, and file:line:col errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watcher.errors import RuleError
from watcher.events import Entities, JobEvent, TaskCounts, job_key
from watcher.rules.check import check_files
from watcher.rules.compile import compile_rule
from watcher.rules.engine import RuleSet, load_rules
from watcher.rules.fields import FIELDS, event_context
from watcher.rules.index import IndexKeys, conjuncts, index_keys
from watcher.rules.schema import parse_rules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BEGIN = NOW - timedelta(minutes=20)


def event(
    status: str = "FAILED", phase: str = "failed", prev: tuple[str, str] | None = ("RUNNING", "running"), **kw
) -> JobEvent:
    kw.setdefault("source", "workspace")
    kw.setdefault("job_type", "createDesktops")
    return JobEvent(
        region="cn-north-4",
        project_id="p1",
        job_key=job_key(kw["source"], "cn-north-4", "p1", "j1"),
        job_id="j1",
        status=status,
        phase=phase,  # type: ignore[arg-type]
        prev_status=prev[0] if prev else None,
        prev_phase=prev[1] if prev else None,  # type: ignore[arg-type]
        change="changed" if prev else "appeared",
        observed_at=NOW,
        **kw,
    )


def ruleset(text: str) -> RuleSet:
    rules, errors = parse_rules(text, "t.yaml")
    assert errors == []
    return RuleSet(compile_rule(r) for r in rules)


def matches(rule_yaml: str, ev: JobEvent) -> bool:
    rs = ruleset("rules:\n  - name: r\n" + rule_yaml)
    return [r.name for r in rs.matching(ev)] == ["r"]


FULL = event(
    begin_time=BEGIN,
    end_time=NOW - timedelta(minutes=5),
    error_code="EVS.2024",
    message="quota exceeded",
    entities=Entities(volume_id="v1", volume_type="SSD", scripts=("s-1",)),
    counts=TaskCounts(success=2, failed=1),
)
BARE = event()

CEL_CASES = [
    ('phase == "failed" && duration_seconds > 600.0', FULL, True),
    ("duration_seconds > 1200", FULL, False),  # 15 minutes
    ('observed_at - begin_time > duration("15m")', FULL, True),
    ('error_code.startsWith("EVS")', FULL, True),
    ('error_code.startsWith("EVS")', BARE, False),  # null: a runtime error, no match
    ('error_code != null && error_code.startsWith("EVS")', BARE, False),
    ('message.contains("quota")', FULL, True),
    ('entities.volume_type == "SSD"', FULL, True),
    ("entities.volume_type == null", BARE, True),
    ('"s-1" in entities.scripts', FULL, True),
    ("counts.failed > 0", FULL, True),
    ("counts.failed > 0", BARE, False),  # zeros when the source has no counts
    ('prev_status == "RUNNING" && change == "changed"', BARE, True),
    ('project == "p1" && project_id == "p1" && region.startsWith("cn-")', BARE, True),
    ('job_type.lowerAscii() == "createdesktops"', BARE, True),  # an extension function
    ("begin_time.getHours() == 11", FULL, True),
    ('source in ["evs", "workspace"] && status != "SUCCESS"', BARE, True),
    ('job_key.endsWith("/j1") && target == ""', BARE, True),
    ('!(phase == "failed")', BARE, False),
]


@pytest.mark.parametrize(("expr", "ev", "expected"), CEL_CASES)
def test_cel_conditions(expr: str, ev: JobEvent, expected: bool) -> None:
    assert matches(f"    when: '{expr}'\n", ev) is expected


def test_runtime_errors_count_per_rule_and_do_not_match() -> None:
    rs = ruleset("rules:\n  - name: r\n    when: 'error_code.startsWith(\"X\")'\n")
    assert rs.matching(BARE) == []
    assert rs.eval_errors == {"r": 1}


def test_event_context_fields() -> None:
    ctx = event_context(FULL)
    assert tuple(ctx) == FIELDS
    assert ctx["begin_time"] == BEGIN and ctx["begin_time"].tzinfo is not None
    assert ctx["duration_seconds"] == 900.0
    assert ctx["counts"] == {"success": 2, "failed": 1, "skipped": 0}
    assert ctx["entities"]["volume_type"] == "SSD" and ctx["entities"]["desktop_id"] is None
    assert event_context(BARE)["duration_seconds"] is None
    naive = event_context(event(begin_time=datetime(2026, 11, 23, 11, 0)))
    assert naive["begin_time"] == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    assert naive["duration_seconds"] == 3600.0  # no end: observed minus begin


RUN_FAIL = event("FAILED", "failed", ("RUNNING", "running"))
FIRST_FAILED = event("FAILED", "failed", None)
WAIT_FAIL = event("FAILED", "failed", ("WAITING", "pending"))
WAIT_OK = event("SUCCESS", "succeeded", ("WAITING", "pending"))
WAIT_RUN = event("RUNNING", "running", ("WAITING", "pending"))
FIRST_RUNNING = event("RUNNING", "running", None)
EVS_RUN_FAIL = event("FAIL", "failed", ("RUNNING", "running"), source="evs", job_type="createVolume")
TRANSITION_EVENTS = {
    "run>fail": RUN_FAIL,
    "first-failed": FIRST_FAILED,
    "wait>fail": WAIT_FAIL,
    "wait>ok": WAIT_OK,
    "wait>run": WAIT_RUN,
    "first-running": FIRST_RUNNING,
    "evs-run>fail": EVS_RUN_FAIL,
}
TRANSITIONS = [
    ("to: failed", {"run>fail", "first-failed", "wait>fail", "evs-run>fail"}),
    ("from: RUNNING\n    to: FAILED", {"run>fail"}),
    ("from: running\n    to: failed", {"run>fail", "evs-run>fail"}),
    ("from: WAITING\n    to: terminal", {"wait>fail", "wait>ok"}),
    ("from: none\n    to: failed", {"first-failed"}),
    ("from: none", {"first-failed", "first-running"}),
    ("from: [none, pending]\n    to: [failed, SUCCESS]", {"first-failed", "wait>fail", "wait>ok"}),
    ("from: any\n    to: any", set(TRANSITION_EVENTS)),
    ("from: [running, any]", set(TRANSITION_EVENTS)),
    ("from: running", {"run>fail", "evs-run>fail"}),  # never a first sighting
    ("to: [FAIL]", {"evs-run>fail"}),
]


@pytest.mark.parametrize(("yaml_lines", "expected"), TRANSITIONS)
def test_transitions(yaml_lines: str, expected: set[str]) -> None:
    rs = ruleset(f"rules:\n  - name: r\n    when: '*'\n    {yaml_lines}\n")
    got = {name for name, ev in TRANSITION_EVENTS.items() if rs.matching(ev)}
    assert got == expected


def test_when_and_transitions_combine_into_one_expression() -> None:
    rs = ruleset("rules:\n  - name: r\n    when: evs:FAIL\n    from: [RUNNING, none]\n    to: failed\n")
    assert rs.rules[0].expression == (
        '(source == "evs" && status == "FAIL") && (prev_status == "RUNNING" || prev_status == null) && (phase == "failed")'
    )


@pytest.mark.parametrize(
    ("expr", "keys"),
    [
        (
            'status == "FAILED" && job_type == "createDesktops"',
            IndexKeys(None, frozenset({("status", "FAILED")}), frozenset({"createDesktops"})),
        ),
        (
            '(source == "evs" && status == "FAIL") && (phase == "failed")',
            IndexKeys(frozenset({"evs"}), frozenset({("status", "FAIL")}), None),
        ),
        (
            'phase in ["succeeded", "failed"] && "evs" == source',
            IndexKeys(frozenset({"evs"}), frozenset({("phase", "succeeded"), ("phase", "failed")})),
        ),
        ('source == "evs" || phase == "failed"', IndexKeys()),
        ('phase == "failed" ? true : false', IndexKeys()),
        ('job_type.matches(r"^a.*$") && phase == "failed"', IndexKeys(None, frozenset({("phase", "failed")}))),
        ('phase == "failed" && phase == "running"', IndexKeys(impossible=True)),
        ('message == "a && b || c" && source == "script"', IndexKeys(frozenset({"script"}))),
        ("true", IndexKeys()),
    ],
)
def test_index_keys(expr: str, keys: IndexKeys) -> None:
    assert index_keys(expr) == keys


def test_conjuncts_unwrap_parentheses_only_around_whole_groups() -> None:
    assert conjuncts("(a) && (b && (c || d))") == ["a", "b", "c || d"]
    assert conjuncts("(a || b)") == ["a || b"]


# Each bad rule file, and the exact "line:col: message" it must produce.
ERRORS = [
    ("rules:\n  - name: a\n    when: evs: FAIL\n", "3:14: YAML syntax error: mapping values are not allowed here"),
    ("rules:\n\t- name: a\n", "2:1: YAML syntax error: while scanning for the next token, found character '\\t'"),
    (
        "rules:\n  - name: a\n    when: FAILED\n    notify: {a: 1}\n",
        "4:13: notify: Expected `str | array`, got `object`",
    ),
    ("rules:\n  - name: a\n    when: FAILED\n    severity: fatal\n", "4:15: severity: Invalid enum value 'fatal'"),
    ("rules:\n  - name: a\n    when: FAILED\n    colour: red\n", "4:5: unknown field 'colour'; a rule has: name, when"),
    ("rules:\n  - name: a\n", "2:5: rule is missing required field 'when'"),
    (
        "rules:\n  - name: a\n    when: FAILED\n  - name: a\n    when: FAIL\n",
        "4:11: duplicate rule name 'a' (first defined at line 2:11)",
    ),
    ("rules:\n  - name: a\n    when: FAILED\n    when: FAIL\n", "4:5: duplicate key 'when'"),
    ("rules:\n  - name: a\n    when: FAILED\n    [x]: 1\n", "4:5: a key must be a plain word"),
    ("rules:\n  - name: a\n    when: FAILED\n    title: {a: {a: 1, a: 2}}\n", "4:23: duplicate key 'a'"),
    ("rules:\n  - name: a\n    when: FAILED create[\n", "3:18: invalid job type glob 'create['"),
    ('rules:\n  - name: a\n    when: "evs: FAILED"\n', "3:17: unknown status 'FAILED'; did you mean 'FAIL'"),
    ("rules:\n  - name: a\n    when: ecs:FAIL\n", "3:11: unknown source 'ecs'"),
    ("rules:\n  - name: a\n    when: 'status =='\n", "3:21: invalid expression: mismatched input '<EOF>'"),
    (
        'rules:\n  - name: a\n    when: \'phase == "failed" && stauts == "x"\'\n',
        "3:33: unknown field 'stauts'; did you mean 'status'?",
    ),
    (
        "rules:\n  - name: a\n    when: 'lower(status) == \"x\"'\n",
        "3:12: unknown function 'lower'; did you mean 'lowerAscii'?",
    ),
    ("rules:\n  - name: a\n    when: 'entities.desk == \"x\"'\n", "3:21: unknown entities key 'desk'"),
    (
        "rules:\n  - name: a\n    when: 'job_type + \"x\"'\n",
        "3:12: the expression must be true or false, but it gives a str",
    ),
    (
        'rules:\n  - name: a\n    when: |\n      phase == "failed" &&\n        entities.desk == "x"\n',
        "5:18: unknown entities key 'desk'",
    ),
    (
        "rules:\n  - name: a\n    when: '*'\n    from: RUNING\n",
        "4:11: from: unknown status 'RUNING'; did you mean 'RUNNING'",
    ),
    ("rules:\n  - name: a\n    when: '*'\n    to: [failed, FOO]\n", "4:18: to: unknown status 'FOO'"),
    (
        "rules:\n  - name: a\n    when: '*'\n    to: none\n",
        "4:9: to: unknown status 'none' ('none' is only for 'from')",
    ),
    ("rules:\n  - name: a\n    when: '*'\n    to: []\n", "4:9: to: empty list"),
    ("rules:\n  - name: a\n    when: FAILED\n    title: '{{ event.job_type '\n", "4:13: template syntax error:"),
    ("rules:\n  - name: a\n    when: FAILED\n    body: '{{ evnt.x }}'\n", "4:12: template error: 'evnt' is undefined"),
    (
        "rules:\n  - name: a\n    when: FAILED\n    body: '{{ event.nope }}'\n",
        "4:12: template error: 'dict object' has no attribute 'nope'",
    ),
    ("rules:\n  - name: a\n    when: FAILED\n    body: |\n      ok\n      {% if %}\n", "6:7: template syntax error:"),
    (
        "rules:\n  - name: a\n    when: RUNNING\n    for: 5m\n    from: WAITING\n",
        "5:11: 'from' cannot be combined with 'for': 'for' times how long a job holds 'when'",
    ),
    (
        "rules:\n  - name: a\n    when: FAILED\n    repeat: 1h\n",
        "4:13: 'repeat' re-sends stuck ('for') and burst alerts; a status change is sent once",
    ),
    ("rules:\n  - name: a\n    when: FAILED\n    group_by: [jobtype]\n", "4:15: group_by: unknown field 'jobtype'"),
    ("rules:\n  - name: a\n    when: FAILED\n    for: soon\n", "4:10: for: expected a duration like '30s'"),
    (
        "rules:\n  - name: a\n    when: FAILED\n    burst: {count: 5}\n",
        "4:12: burst is missing required field 'within'",
    ),
    (
        "rules:\n  - name: a\n    when: FAILED\n    burst: {count: 5, within: 10m, per: [x]}\n",
        "4:36: unknown field 'per'; burst has: count, within, by",
    ),
    ("rules:\n  - name: a\n    when: FAILED\n    share: {min: 5}\n", "4:12: share.min is a fraction in (0, 1]"),
    (
        "rules:\n  - name: a\n    when: FAILED\n    for: 5m\n    burst: {count: 5, within: 10m}\n",
        "5:12: 'burst' cannot be combined with 'for': a rule has one kind",
    ),
    ("rules:\n  - name: a\n    when: FAILED\n    group_wait: 10s\n", "4:17: 'group_wait' needs 'group_by'"),
    ("rules:\n  - name: a\n    when: FAILED\n    inhibits: [b]\n", "4:15: inhibits: no rule named 'b'"),
    ("rules:\n  - name: a\n    when: FAILED\n    inhibits: [a]\n", "4:15: a rule cannot inhibit itself"),
    ("rules: []\nsilences:\n  - match: 'projct == \"x\"'\n", "3:13: unknown field 'projct'; did you mean 'project'?"),
    ("rules: []\nsilences:\n  - match: 'true'\n    for: 2h\n", "4:10: 'for' needs 'starts' in a file"),
    ("rules: []\nsilences:\n  - match: 'true'\n    until: 2h\n", "4:5: unknown field 'until'; a silence has: match"),
    (
        "rules: []\nsilences:\n  - match: 'true'\n    starts: 2026-01-02T00:00:00Z\n    ends: 2026-01-01T00:00:00Z\n",
        "5:11: a silence must end after it starts",
    ),
    ("rules: []\nsilences: {}\n", "2:11: 'silences' must be a list of silences"),
    ("- a\n", "1:1: a rule file is a mapping with a 'rules' list"),
    ("rule:\n  - name: a\n", "1:1: unknown top-level key 'rule'; expected 'rules'"),
    ("rules: {}\n", "1:8: 'rules' must be a list of rules"),
    ("rules:\n  - FAILED\n", "2:5: a rule is a mapping with at least 'name' and 'when'"),
    ("rules:\n  - name: a\n    when: FAILED\n    notify: [ok, a b]\n", "4:18: invalid Apprise tag 'a b'"),
    ("rules:\n  - name: 'a|b'\n    when: FAILED\n", "2:11: invalid rule name 'a|b'"),
    ("rules:\n  - name: a\n    when: ''\n", "3:11: 'when' is empty"),
    ("rules:\n  - &r {name: a, when: FAILED, notify: *r}\n", "2:5: recursive alias: a value contains itself"),
    ("rules:\n  - name: a\n    when: FAILED\n    enabled: !!bool maybe\n", "4:14: invalid value 'maybe'"),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_errors_carry_file_line_col(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RuleError) as info:
        load_rules([path])
    assert str(info.value).startswith(f"{path}:{expected}")


def test_errors_across_files_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("rules:\n  - name: x\n    when: FAILED\n  - name: y\n    when: FIALED\n")
    (tmp_path / "b.yml").write_text("rules:\n  - name: x\n    when: FAIL\n  - name: z\n    when: 'nope == 1'\n")
    (tmp_path / "c.yaml").write_bytes(b"rules:\n  - name: \xff\n")
    (tmp_path / "ignored.txt").write_text("not yaml: [")
    errors = [str(e) for e in check_files([tmp_path, tmp_path / "missing.yaml"])]
    assert [e.split(": ")[0] for e in errors] == [
        f"{tmp_path}/missing.yaml:1:1",
        f"{tmp_path}/a.yaml:5:11",
        f"{tmp_path}/b.yml:2:11",
        f"{tmp_path}/b.yml:5:12",
        f"{tmp_path}/c.yaml:2:11",
    ]
    assert "duplicate rule name 'x' (first defined at " + f"{tmp_path}/a.yaml:2:5)" in errors[2]
    assert "not UTF-8" in errors[4]


def test_missing_file_is_a_rule_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match=r"missing\.yaml:1:1: cannot read rule file"):
        load_rules([tmp_path / "missing.yaml"])


def test_empty_file_and_empty_rules_load(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("")
    (tmp_path / "b.yaml").write_text("rules: []\n")
    assert len(load_rules(tmp_path)) == 0


def test_text_keys_keep_what_was_typed() -> None:
    rs = ruleset("rules:\n  - name: 1\n    when: 0 createX\n    to: 0\n")
    assert rs.rules[0].name == "1"
    assert rs.rules[0].expression == '(status == "0" && job_type == "createX") && (status == "0")'


def test_compile_rule_reports_location() -> None:
    rules, _ = parse_rules("rules:\n  - name: a\n    when: FAILED\n", "f.yaml")
    assert compile_rule(rules[0]).location == "f.yaml:2:5"
