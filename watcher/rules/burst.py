"""Bursts: ``count`` events matching a rule within ``within``, per group of ``by`` fields.

::

    - name: desktop-creation-failures-burst
      when: FAILED createDesktops
      burst: {count: 5, within: 10m, by: [project_id, job_type]}

Each group keeps the times of its matches inside the window (``(t - within, t]``); a job
counts once per window (a replayed event, or a job failing twice, is one match). When
the count reaches ``count`` an *episode* starts and one alert fires; the episode lasts
while the window holds at least ``count`` matches, and with ``repeat`` a reminder goes out
while it lasts. Once the window drains below ``count`` the next match that reaches it again
is a new episode (a new alert key). An event counts at its ``observed_at``.

State: one :class:`Window` per (rule, group), keyed by :func:`group_key`. Pure.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from watcher.events import Alert, JobEvent
from watcher.rules import templates
from watcher.rules.compile import CompiledRule
from watcher.rules.engine import make_alert
from watcher.rules.fields import event_context

#: Hits kept per window; a bigger burst still fires, its count then reads "at least".
MAX_HITS = 1000
#: Job ids named in a burst alert.
SHOWN_JOBS = 10


class Hit(msgspec.Struct, frozen=True, array_like=True):
    at: datetime
    job_id: str


class Window(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One group's matches within the window and its current episode."""

    hits: list[Hit] = msgspec.field(default_factory=list)
    episode: datetime | None = None  # when the current burst began; None: no burst now
    last_sent: datetime | None = None


def group_values(event: JobEvent, fields: tuple[str, ...]) -> dict[str, str]:
    """The ``by``/``group_by`` fields of ``event`` (None as an empty string), in order."""
    ctx: dict[str, Any] = event_context(event)
    return {f: "" if ctx[f] is None else str(ctx[f]) for f in fields}


def describe(values: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "all events"


def group_key(rule: str, values: dict[str, str]) -> str:
    return "|".join([rule, *(f"{k}={v}" for k, v in values.items())])


def episode_key(rule: str, values: dict[str, str], episode: datetime) -> str:
    """The alert key of one burst episode of one group."""
    return f"{group_key(rule, values)}|burst@{episode.strftime('%Y%m%dT%H%M%SZ')}"


def burst_key(rule: CompiledRule, event: JobEvent) -> str:
    """The state key of ``event``'s group under ``rule``."""
    return group_key(rule.name, group_values(event, rule.options.burst_by))


def active(state: Window, rule: CompiledRule, now: datetime) -> bool:
    """True while the current episode lasts (the window still holds ``count`` matches)."""
    start = now - timedelta(seconds=rule.options.burst_within)
    return state.episode is not None and sum(h.at > start for h in state.hits) >= rule.options.burst_count


def on_event(state: Window | None, event: JobEvent, rule: CompiledRule, now: datetime) -> tuple[Window, list[Alert]]:
    """Count one event that matched ``rule``; an alert when a burst starts (or is due a repeat)."""
    opts = rule.options
    at = event.observed_at
    start = at - timedelta(seconds=opts.burst_within)
    hits = [h for h in (state.hits if state else []) if h.at > start]
    episode = state.episode if state else None
    last_sent = state.last_sent if state else None
    if len(hits) < opts.burst_count:
        episode = None  # the window drained: any burst is over
    if any(h.job_id == event.job_id for h in hits):  # a replay, or the same job again: count jobs once
        return Window(hits=hits, episode=episode, last_sent=last_sent), []
    hits = [*hits, Hit(at=at, job_id=event.job_id)][-MAX_HITS:]
    alerts: list[Alert] = []
    if len(hits) >= opts.burst_count:
        if episode is None:
            episode = at
            alerts.append(_alert(rule, event, hits, episode, now))
            last_sent = now
        elif opts.repeat is not None and last_sent is not None and (now - last_sent).total_seconds() >= opts.repeat:
            alerts.append(_alert(rule, event, hits, episode, now))
            last_sent = now
    return Window(hits=hits, episode=episode, last_sent=last_sent), alerts


def expired(state: Window, rule: CompiledRule, now: datetime) -> bool:
    """True when the window holds nothing any more: the caller may drop the state."""
    return all(h.at <= now - timedelta(seconds=rule.options.burst_within) for h in state.hits)


def _alert(rule: CompiledRule, event: JobEvent, hits: list[Hit], episode: datetime, now: datetime) -> Alert:
    opts = rule.options
    values = group_values(event, opts.burst_by)
    n = len(hits)
    at_least = "at least " if n >= MAX_HITS else ""
    title = f"[BURST] {at_least}{n} × {rule.when} within {opts.window}: {describe(values)}"
    jobs = [h.job_id for h in hits[-SHOWN_JOBS:]]
    more = f" (and {n - len(jobs)} earlier)" if n > len(jobs) else ""
    body = "\n".join([
        f"{at_least}{n} events matched rule {rule.name} ({rule.when}) within {opts.window}, "
        f"from {templates.utc(hits[0].at)} to {templates.utc(hits[-1].at)}.",
        f"Group: {describe(values)}",
        f"Latest jobs: {', '.join(jobs)}{more}",
    ])  # fmt: skip
    key = episode_key(rule.name, values, episode)
    extra = {"window": opts.window, "since": episode, "group": values}
    return make_alert(rule, event, now, key=key, count=n, title=title, body=body, extra=extra, incident=key)
