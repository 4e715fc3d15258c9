"""Stuck jobs: a job that holds a rule's ``when`` longer than its ``for`` fires a stuck alert.

::

    - name: desktop-creation-stuck
      when: RUNNING createDesktops     # the state being timed (a status, a phase, CEL)
      for: 30m                         # fire once the job has held it this long
      repeat: 2h                       # remind every 2h while it still holds (default: never)

A timer starts at the ``observed_at`` of the first event that matches ``when`` and keeps
running while later events of the job still match (WAITING → RUNNING under ``pending``
does not restart it). The first event that no longer matches ends it: if the stuck alert
had fired, a *resolved* notice goes out (also when the job vanished). Timers fire on
:func:`on_tick`, which the caller runs periodically (the dry run: at each exact due time).

State: one :class:`JobTimers` per job with at least one running timer, keyed by job key
(co-partitioned with the events topic). Pure: no I/O, the clock is passed in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

import msgspec

from watcher.duration import format_duration
from watcher.events import Alert, JobEvent
from watcher.rules import templates
from watcher.rules.compile import CompiledRule
from watcher.rules.engine import make_alert
from watcher.wording import job_type_name


class Timer(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One rule's timer on one job; ``last_sent`` is when this stage last emitted its alert."""

    since: datetime
    status: str
    fired: bool = False
    last_sent: datetime | None = None
    sends: int = 0


class JobTimers(msgspec.Struct, kw_only=True):
    """The running timers of one job (rule name → Timer) and its latest event, for rendering."""

    job_key: str
    event: JobEvent
    timers: dict[str, Timer] = msgspec.field(default_factory=dict)


def stuck_key(rule: str, job_key: str, since: datetime, kind: str = "firing") -> str:
    """One key per stuck episode: a job stuck again later is a new alert."""
    return f"{rule}|{job_key}|stuck@{since.strftime('%Y%m%dT%H%M%SZ')}|{kind}"


def on_event(
    state: JobTimers | None,
    event: JobEvent,
    rules: Iterable[CompiledRule],
    matched: Collection[str],
    now: datetime,
) -> tuple[JobTimers | None, list[Alert]]:
    """Start, keep or end ``event``'s job timers; ``matched`` names the rules its event matched.

    Returns the new state (None when no timer runs) and any resolved notices.
    """
    timers = dict(state.timers) if state else {}
    alerts: list[Alert] = []
    for rule in rules:
        timer = timers.get(rule.name)
        if rule.name in matched:
            if timer is None:
                timers[rule.name] = Timer(since=event.observed_at, status=event.status)
        elif timer is not None:
            del timers[rule.name]
            if timer.fired:
                alerts.append(_resolved(rule, timer, event, now))
    if not timers:
        return None, alerts
    return JobTimers(job_key=event.job_key, event=event, timers=timers), alerts


def due_at(state: JobTimers, rules: dict[str, CompiledRule]) -> datetime | None:
    """When :func:`on_tick` next has something to do for this job, or None."""
    times = [t for name, timer in state.timers.items() if (t := _due(timer, rules.get(name))) is not None]
    return min(times, default=None)


def _due(timer: Timer, rule: CompiledRule | None) -> datetime | None:
    if rule is None or rule.options.hold is None:
        return None
    if not timer.fired:
        return timer.since + timedelta(seconds=rule.options.hold)
    if rule.options.repeat is not None and timer.last_sent is not None:
        return timer.last_sent + timedelta(seconds=rule.options.repeat)
    return None


def on_tick(state: JobTimers, rules: dict[str, CompiledRule], now: datetime) -> tuple[JobTimers, list[Alert]]:
    """Fire the timers that are due at ``now`` (first alert, or a ``repeat`` reminder)."""
    alerts: list[Alert] = []
    timers = dict(state.timers)
    for name, timer in state.timers.items():
        rule = rules.get(name)
        due = _due(timer, rule)
        if rule is None or due is None or due > now:
            continue
        timers[name] = Timer(since=timer.since, status=timer.status, fired=True, last_sent=now, sends=timer.sends + 1)
        alerts.append(_firing(rule, timer, state.event, now, timer.sends + 1))
    return JobTimers(job_key=state.job_key, event=state.event, timers=timers), alerts


def _vars(rule: CompiledRule, timer: Timer, now: datetime) -> dict:
    return {
        "held": format_duration((now - timer.since).total_seconds()),
        "since": timer.since,
        "limit": format_duration(rule.options.hold or 0),
    }


def _firing(rule: CompiledRule, timer: Timer, event: JobEvent, now: datetime, sends: int) -> Alert:
    extra = _vars(rule, timer, now)
    job = job_type_name(event.source, event.job_type)
    title = f"[STUCK] {job} {timer.status} for {extra['held']} in {event.project_id} ({event.region})"
    reminder = f" (reminder {sends})" if sends > 1 else ""
    first = (
        f"{job} job {event.job_id} has been {timer.status} since {templates.utc(timer.since)} "
        f"({extra['held']}; the limit is {extra['limit']}){reminder}."
    )
    status = {"held": extra["held"], "since": timer.since}
    return make_alert(
        rule, event, now, key=stuck_key(rule.name, event.job_key, timer.since),
        title=title, body=f"{first}\n{templates.event_body(event, **status)}", extra=extra,
    )  # fmt: skip


def _resolved(rule: CompiledRule, timer: Timer, event: JobEvent, now: datetime) -> Alert:
    extra = _vars(rule, timer, event.observed_at)
    held = extra["held"]
    job = job_type_name(event.source, event.job_type)
    title = f"[RESOLVED] {job} no longer {timer.status} after {held} in {event.project_id} ({event.region})"
    first = (
        f"{job} job {event.job_id} was {timer.status} from {templates.utc(timer.since)} "
        f"to {templates.utc(event.observed_at)} ({held}); now {event.status}."
    )
    return make_alert(
        rule, event, now, key=stuck_key(rule.name, event.job_key, timer.since, "resolved"), kind="resolved",
        title=title, body=f"{first}\n{templates.event_body(event)}", extra=extra,
    )  # fmt: skip
