"""A rule's kind and timing: ``for``, ``repeat``, ``burst``, ``share``, grouping, ``inhibits``.

A rule is one of four kinds, decided by its keys:

========= ================================ ===============================================
kind      keys                             fires
========= ================================ ===============================================
event     (none of the below)              on each matching status change, once
stuck     ``for: 30m`` [``repeat: 1h``]    when a job holds ``when`` longer than ``for``;
                                           a *resolved* notice when it leaves
burst     ``burst: {count, within, by}``   when ``count`` matches fall within ``within``
                                           per ``by`` group; once per episode (``repeat``)
share     ``share: {min: 0.05}``           when at least ``min`` of a parent's seen
                                           sub-jobs match ``when``; once per parent
========= ================================ ===============================================

Any kind may add ``group_by`` (+ ``group_wait``, ``group_interval``) to batch its alerts
into one message per group, and ``inhibits: [rule, ...]`` to mute the alerts it covers.
Pure: imports the duration parser, the field list and the schema.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from watcher.duration import format_duration, parse_duration
from watcher.rules.schema import Duration, SourceRule

Kind = Literal["event", "stuck", "burst", "share"]

#: Event fields a group key (``group_by``, ``burst.by``) may name: the plain string ones.
GROUP_FIELDS: tuple[str, ...] = (
    "source", "region", "project", "project_id", "job_key", "job_id", "parent_job_id",
    "job_type", "status", "phase", "prev_status", "prev_phase", "change", "error_code", "target",
)  # fmt: skip

DEFAULT_GROUP_WAIT = 30.0
DEFAULT_GROUP_INTERVAL = 300.0


@dataclass(frozen=True)
class Grouping:
    by: tuple[str, ...]
    wait: float = DEFAULT_GROUP_WAIT
    interval: float = DEFAULT_GROUP_INTERVAL


@dataclass(frozen=True)
class Step:
    """One escalation step: ``after`` seconds past the incident's opening, reach ``tags``."""

    after: float
    tags: tuple[str, ...]


@dataclass(frozen=True)
class RuleOptions:
    """Everything beyond "match and fire once"; the defaults are a plain event rule."""

    kind: Kind = "event"
    hold: float | None = None  # stuck: seconds in `when` before firing
    repeat: float | None = None  # stuck/burst: re-send interval; None = never
    burst_count: int = 0
    burst_within: float = 0.0
    burst_by: tuple[str, ...] = ()
    share_min: float = 0.0
    grouping: Grouping | None = None
    inhibits: tuple[str, ...] = ()
    escalate: tuple[Step, ...] = ()

    @property
    def window(self) -> str:
        return format_duration(self.burst_within)


def compile_options(rule: SourceRule) -> RuleOptions:
    """Check how the keys combine and parse their durations; errors point at the key."""
    spec = rule.spec
    kinds = [k for k, v in (("for", spec.for_), ("burst", spec.burst), ("share", spec.share)) if v is not None]
    if len(kinds) > 1:
        raise rule.error(kinds[1], f"'{kinds[1]}' cannot be combined with '{kinds[0]}': a rule has one kind")
    kind: Kind = {"for": "stuck", "burst": "burst", "share": "share"}[kinds[0]] if kinds else "event"  # type: ignore[assignment]
    if kind == "stuck":
        for key, value in (("from", spec.from_), ("to", spec.to)):
            if value is not None:
                raise rule.error(key, f"'{key}' cannot be combined with 'for': 'for' times how long a job holds 'when'")
    if spec.repeat is not None and kind not in ("stuck", "burst"):
        raise rule.error("repeat", "'repeat' re-sends stuck ('for') and burst alerts; a status change is sent once")
    options = RuleOptions(
        kind=kind,
        hold=_duration(rule, "for", spec.for_),
        repeat=_duration(rule, "repeat", spec.repeat),
        grouping=_grouping(rule),
        inhibits=_inhibits(rule),
        escalate=_escalate(rule),
    )
    if spec.burst is not None:
        b = spec.burst
        if b.count < 1:
            raise rule.error("burst", f"burst.count must be at least 1, got {b.count}")
        within = _duration(rule, "burst", b.within, "burst.within") or 0.0
        by = _fields(rule, "burst", b.by, "burst.by")
        options = replace(options, burst_count=b.count, burst_within=within, burst_by=by)
    if spec.share is not None:
        if spec.share.of != "parent":
            raise rule.error("share", f"share.of must be 'parent' (the sub-jobs of one job), got {spec.share.of!r}")
        if not 0 < spec.share.min <= 1:
            raise rule.error("share", f"share.min is a fraction in (0, 1], e.g. 0.05 for 5%; got {spec.share.min}")
        options = replace(options, share_min=float(spec.share.min))
    return options


def _duration(
    rule: SourceRule, key: str, value: Duration | None, label: str | None = None, zero: bool = False
) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise rule.error(key, f"{label or key}: {e}") from None
    if seconds <= 0 and not zero:
        raise rule.error(key, f"{label or key} must be longer than 0s")
    return seconds


def _fields(rule: SourceRule, key: str, names: tuple[str, ...], label: str) -> tuple[str, ...]:
    for name in names:
        if name not in GROUP_FIELDS:
            raise rule.error(key, f"{label}: unknown field {name!r}; group by one of {', '.join(GROUP_FIELDS)}")
    if len(set(names)) != len(names):
        raise rule.error(key, f"{label}: a field is listed twice")
    return tuple(names)


def _grouping(rule: SourceRule) -> Grouping | None:
    spec = rule.spec
    if spec.group_by is None:
        for key, value in (("group_wait", spec.group_wait), ("group_interval", spec.group_interval)):
            if value is not None:
                raise rule.error(key, f"'{key}' needs 'group_by' (the fields that make a group; [] for one group)")
        return None
    by = _fields(rule, "group_by", spec.group_by, "group_by")
    wait = _duration(rule, "group_wait", spec.group_wait, zero=True)
    interval = _duration(rule, "group_interval", spec.group_interval)
    return Grouping(
        by=by,
        wait=DEFAULT_GROUP_WAIT if wait is None else wait,
        interval=DEFAULT_GROUP_INTERVAL if interval is None else interval,
    )


def _escalate(rule: SourceRule) -> tuple[Step, ...]:
    steps = []
    for i, step in enumerate(rule.spec.escalate):
        after = _duration(rule, "escalate", step.after, f"escalate[{i}].after") or 0.0
        if not step.tags:
            raise rule.error("escalate", f"escalate[{i}].notify: name at least one tag to reach")
        if steps and after <= steps[-1].after:
            raise rule.error("escalate", f"escalate[{i}].after must be later than the step before it")
        steps.append(Step(after=after, tags=tuple(step.tags)))
    return tuple(steps)


def _inhibits(rule: SourceRule) -> tuple[str, ...]:
    names = rule.spec.inhibits
    if rule.spec.name in names:
        raise rule.error("inhibits", "a rule cannot inhibit itself")
    return tuple(dict.fromkeys(names))


def check_inhibits(rule: SourceRule, known: set[str]) -> None:
    """Every name in ``inhibits`` must be a rule loaded alongside (any file)."""
    for name in rule.spec.inhibits:
        if name not in known:
            raise rule.error("inhibits", f"inhibits: no rule named {name!r}")
