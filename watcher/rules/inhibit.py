"""Inhibition: a rule's alert mutes the alerts of the rules it ``inhibits`` that it covers.

::

    - name: desktop-batch-failing
      when: FAILED createDesktops
      share: {min: 0.05, of: parent}
      inhibits: [desktop-creation-failed]    # per-desktop alerts of that batch go quiet

What a source alert covers depends on its rule's kind:

========= =============================================================================
burst     alerts whose event has the burst's ``by`` values (``by: [project_id]``: the
          whole project), while the burst lasts (until ``within`` after its last match)
share     alerts of sub-jobs of the same parent, for :data:`HOLD` after its last match
stuck     alerts of the same job or of its sub-jobs, until the stuck alert resolves
event     alerts of the same job or of its sub-jobs (its parent failed), for :data:`HOLD`
========= =============================================================================

State: a list of :class:`Inhibition` shared by every worker (a small global table keyed by
:attr:`Inhibition.id`); :func:`prune` drops the ended ones. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import msgspec

from watcher.events import Alert
from watcher.rules.burst import group_values
from watcher.rules.compile import CompiledRule
from watcher.rules.fields import event_context

#: How long a share or status-change alert keeps its sub-jobs quiet after its last match.
HOLD = timedelta(hours=1)


class Inhibition(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``source`` (an alert key of ``rule``) mutes ``targets`` alerts whose event has ``scope``."""

    id: str
    source: str
    rule: str
    targets: tuple[str, ...]
    scope: dict[str, str]
    until: datetime | None = None  # None: until the source resolves

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until

    def describe(self) -> str:
        scope = ", ".join(f"{k}={v}" for k, v in self.scope.items()) or "everything"
        return f"inhibited by {self.source} (rule {self.rule}; covers {scope})"


def covers(rule: CompiledRule, alert: Alert, now: datetime) -> list[Inhibition]:
    """The inhibitions ``alert`` of ``rule`` starts (or extends, same ids) at ``now``."""
    if not rule.options.inhibits or alert.kind != "firing":
        return []
    e, targets = alert.event, rule.options.inhibits

    def make(suffix: str, scope: dict[str, str], until: datetime | None) -> Inhibition:
        return Inhibition(id=f"{alert.key}#{suffix}", source=alert.key, rule=rule.name, targets=targets,
                          scope=scope, until=until)  # fmt: skip

    kind = rule.kind
    if kind == "burst":
        until = e.observed_at + timedelta(seconds=rule.options.burst_within)
        return [make("burst", group_values(e, rule.options.burst_by), until)]
    if kind == "share":
        return [make("parent", _siblings(alert), now + HOLD)]
    until = None if kind == "stuck" else now + HOLD
    children = {"source": e.source, "region": e.region, "project_id": e.project_id, "parent_job_id": e.job_id}
    return [make("job", {"job_key": e.job_key}, until), make("sub", children, until)]


def _siblings(alert: Alert) -> dict[str, str]:
    e = alert.event
    return {"source": e.source, "region": e.region, "project_id": e.project_id, "parent_job_id": e.parent_job_id or ""}


def apply(state: dict[str, Inhibition], rule: CompiledRule, alert: Alert, now: datetime) -> dict[str, Inhibition]:
    """Register what ``alert`` covers; a resolved stuck alert lifts its inhibitions."""
    if alert.kind == "resolved":
        firing = alert.key.removesuffix("|resolved") + "|firing"
        return {k: v for k, v in state.items() if v.source != firing}
    new = covers(rule, alert, now)
    if not new:
        return state
    return {**state, **{i.id: i for i in new}}


def extend(state: dict[str, Inhibition], source: str, until: datetime) -> dict[str, Inhibition]:
    """Push back the end of ``source``'s inhibitions (a burst or share that keeps matching)."""
    out = dict(state)
    for k, v in state.items():
        if v.source == source and v.until is not None and v.until < until:
            out[k] = msgspec.structs.replace(v, until=until)
    return out


def inhibited_by(alert: Alert, inhibitions: Iterable[Inhibition], now: datetime) -> Inhibition | None:
    """The first active inhibition that covers ``alert``, or None."""
    ctx: dict[str, object] | None = None
    for inh in inhibitions:
        if alert.rule not in inh.targets or not inh.active(now) or inh.source == alert.key:
            continue
        ctx = ctx or event_context(alert.event)
        if all(("" if ctx.get(k) is None else str(ctx.get(k))) == v for k, v in inh.scope.items()):
            return inh
    return None


def prune(state: dict[str, Inhibition], now: datetime) -> dict[str, Inhibition]:
    return {k: v for k, v in state.items() if v.active(now)}
