"""Building job events and rule sets for the rule-stage tests, in one line each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from watcher.events import Entities, JobEvent, job_key
from watcher.rules.compile import compile_rule
from watcher.rules.engine import RuleSet
from watcher.rules.schema import parse_rules

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PHASES = {"WAITING": "pending", "RUNNING": "running", "SUCCESS": "succeeded", "FAILED": "failed", "FAIL": "failed",
          "VANISHED": "other"}  # fmt: skip


def at(minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def event(
    job_id: str,
    status: str,
    when: datetime = T0,
    *,
    prev: str | None = "RUNNING",
    job_type: str = "createDesktops",
    source: str = "workspace",
    project: str = "p1",
    parent: str | None = None,
    code: str | None = None,
    name: str | None = None,
) -> JobEvent:
    return JobEvent(
        source=source,
        region="cn-north-4",
        project_id=project,
        job_key=job_key(source, "cn-north-4", project, job_id),
        job_id=job_id,
        parent_job_id=parent,
        job_type=job_type,
        status=status,
        phase=PHASES[status],  # type: ignore[arg-type]
        prev_status=prev,
        prev_phase=PHASES[prev] if prev else None,  # type: ignore[arg-type]
        change="vanished" if status == "VANISHED" else ("changed" if prev else "appeared"),
        error_code=code,
        entities=Entities(desktop_name=name),
        observed_at=when,
    )


def ruleset(text: str) -> RuleSet:
    rules, errors = parse_rules(text, "t.yaml")
    assert errors == []
    return RuleSet(compile_rule(r) for r in rules)


def raw_event(source: str, status: str, phase: str, job_type: str, when: datetime = T0, **kw: object) -> JobEvent:
    """Job j1 of project p1 with any status word and phase (e.g. App job "0" / failed)."""
    return JobEvent(
        source=source,
        region="cn-north-4",
        project_id="p1",
        job_key=job_key(source, "cn-north-4", "p1", "j1"),
        job_id="j1",
        job_type=job_type,
        status=status,
        phase=phase,  # type: ignore[arg-type]
        observed_at=when,
        **kw,  # type: ignore[arg-type]
    )
