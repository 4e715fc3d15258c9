"""Shares: the fraction of one parent job's sub-jobs that match a rule.

::

    - name: desktop-batch-failing
      when: FAILED createDesktops      # what counts as a failed sub-job
      share: {min: 0.05, of: parent}   # ≥ 5% of the sub-jobs seen so far

Every event of a sub-job (an event with ``parent_job_id``) whose source and job type the
rule allows adds the sub-job to the parent's *seen* set; a sub-job whose event matched
``when`` joins the *matched* set. When ``matched / seen`` reaches ``min`` the rule fires,
once per parent. "Seen" is what the watcher has observed: early in a batch the share rests
on few sub-jobs, which is the point (a batch that fails from its first desktops is news).

State: one :class:`ParentShare` per (rule, parent), keyed by :func:`share_key`. Sub-jobs
of one parent have different job keys, so a Kafka deployment re-keys these events by
parent first. Pure.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from watcher.events import Alert, JobEvent
from watcher.rules.compile import CompiledRule
from watcher.rules.engine import make_alert


class ParentShare(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The sub-job ids of one parent seen so far, those that matched, and when the rule fired."""

    seen: list[str] = msgspec.field(default_factory=list)
    matched: list[str] = msgspec.field(default_factory=list)
    fired_at: datetime | None = None


def parent_key(event: JobEvent) -> str | None:
    """``source/region/project/parent id``: the job key of the event's parent, or None."""
    if not event.parent_job_id:
        return None
    return f"{event.source}/{event.region}/{event.project_id}/{event.parent_job_id}"


def share_key(rule: str, event: JobEvent) -> str | None:
    parent = parent_key(event)
    return None if parent is None else f"{rule}|{parent}"


def alert_key(rule: str, event: JobEvent) -> str:
    return f"{rule}|{parent_key(event)}|share"


def counts_toward(rule: CompiledRule, event: JobEvent) -> bool:
    """True when ``event`` is a sub-job the rule's share is over (its source and job type allow it)."""
    keys = rule.keys
    return (
        event.parent_job_id is not None
        and (keys.sources is None or event.source in keys.sources)
        and (keys.job_types is None or event.job_type in keys.job_types)
    )


def on_event(
    state: ParentShare | None, event: JobEvent, rule: CompiledRule, matched: bool, now: datetime
) -> tuple[ParentShare, list[Alert]]:
    """Count a sub-job event (``matched``: it matched ``when``); an alert when the share is reached."""
    state = state or ParentShare()
    seen = state.seen if event.job_id in state.seen else [*state.seen, event.job_id]
    hit = state.matched if not matched or event.job_id in state.matched else [*state.matched, event.job_id]
    new = ParentShare(seen=seen, matched=hit, fired_at=state.fired_at)
    if new.fired_at is not None or not hit or len(hit) / len(seen) < rule.options.share_min:
        return new, []
    new.fired_at = now
    return new, [_alert(rule, event, len(hit), len(seen), now)]


def percent(share: float) -> str:
    """0.05 → "5%", 1/3 → "33.3%"."""
    return f"{share * 100:.3g}%"


def _alert(rule: CompiledRule, event: JobEvent, n: int, seen: int, now: datetime) -> Alert:
    share = n / seen
    title = (
        f"[SHARE] {n} of {seen} sub-jobs ({percent(share)}) of {event.job_type} {event.parent_job_id} "
        f"match {rule.when} in {event.project_id} ({event.region})"
    )
    body = "\n".join([
        f"{n} of the {seen} sub-jobs seen of job {event.parent_job_id} matched rule {rule.name} ({rule.when}): "
        f"{percent(share)}, at least {percent(rule.options.share_min)}.",
        f"Parent: {parent_key(event)}",
        f"Latest: {event.job_id} {event.status}" + (f" {event.error_code}" if event.error_code else ""),
    ])  # fmt: skip
    key = alert_key(rule.name, event)
    extra = {"share": share, "seen": seen, "group": {"parent_job_id": event.parent_job_id or ""}}
    return make_alert(rule, event, now, key=key, count=n, title=title, body=body, extra=extra, incident=key)
