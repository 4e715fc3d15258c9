"""Self-health: notice when this worker goes blind to a target, and prove it is alive.

A target is *blind* when its polls keep failing: ``[health] blind_after_failures`` failures
in a row, or failing for longer than ``blind_after`` since its last success. Then one
``watcher-blind`` alert (severity critical, routed by ``[health] tags``) goes out, and a
recovered notice when a poll succeeds again. A list target this worker owns that has not
been polled at all for ``blind_after`` (a stuck scheduler) is blind too; by-id targets
(``evs``, ``appjob``) with nothing left to track are not polled by design and never count.

An open episode is kept in Kafka (:class:`Episodes`, a table co-partitioned with the ticks
topic, written *before* the firing notice is published), and the notices go out through
the alerts topic, whose notifier delivers each key once. So a worker that restarts, or
takes a target over from a dead one, adopts the open episode: it neither pages again (the
firing notice it re-publishes has the same key) nor loses the recovered notice.

:class:`BlindTracker` is pure bookkeeping; :class:`SelfHealth` is the service that checks
it, publishes the notices and sends the dead-man heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from mode import Service

from watcher.events import Alert, JobEvent, job_key
from watcher.sources.base import Target

if TYPE_CHECKING:
    from watcher.app.components import Components

log = logging.getLogger("watcher.app.health")

RULE = "watcher-blind"
Kind = Literal["firing", "resolved"]


@dataclass
class TargetHealth:
    """What this worker saw of one target's polls."""

    target: Target
    failures: int = 0
    last_ok: float | None = None
    last_attempt: float | None = None
    failing_since: float | None = None
    last_error: str = ""
    blind_since: float | None = None  # an open episode (its firing notice was delivered)


@dataclass
class Change:
    kind: Kind
    health: TargetHealth
    episode: float  # when the episode began: part of the alert key


@dataclass
class BlindTracker:
    """Per-target poll outcomes and the blind/recovered decisions drawn from them. Pure."""

    failures: int = 3
    after: float = 300.0
    targets: dict[str, TargetHealth] = field(default_factory=dict)
    owned_since: dict[str, float] = field(default_factory=dict)

    def observe(self, target: Target, *, ok: bool, now: float, error: str | None = None) -> TargetHealth:
        h = self.targets.setdefault(target.id, TargetHealth(target))
        h.last_attempt = now
        if ok:
            h.failures, h.last_ok, h.failing_since, h.last_error = 0, now, None, ""
        else:
            h.failures += 1
            h.failing_since = h.failing_since or now
            h.last_error = error or "poll failed"
        return h

    def is_blind(self, h: TargetHealth, now: float) -> bool:
        if h.failures >= self.failures:
            return True
        if h.failures and now - (h.last_ok or h.failing_since or now) >= self.after:
            return True
        since = self.owned_since.get(h.target.id)
        quiet_from = max(x for x in (h.last_attempt, since, 0.0) if x is not None)
        return since is not None and now - quiet_from >= self.after

    def own(self, targets: dict[str, Target], owned: set[str], now: float, by_id: Callable[[Target], bool]) -> None:
        """Track which list targets this worker owns now (for the 'never polled' check)."""
        for tid in list(self.owned_since):
            if tid not in owned:
                del self.owned_since[tid]
                h = self.targets.pop(tid, None)
                if h is not None and h.blind_since is not None:
                    log.info("%s moved to another worker during a blind episode; it takes over", tid)
        for tid in owned:
            if tid in targets and not by_id(targets[tid]):
                self.owned_since.setdefault(tid, now)
                self.targets.setdefault(tid, TargetHealth(targets[tid]))

    def decide(self, now: float) -> list[Change]:
        """The notices due now: firing for targets newly blind, resolved for healed ones."""
        out: list[Change] = []
        for h in self.targets.values():
            blind = self.is_blind(h, now)
            if blind and h.blind_since is None:
                out.append(Change("firing", h, now))
            elif not blind and h.blind_since is not None and h.failures == 0 and h.last_ok is not None:
                out.append(Change("resolved", h, h.blind_since))
        return out


def _ago(now: float, then: float | None) -> str:
    return "never" if then is None else f"{now - then:.0f}s ago"


def blind_alert(change: Change, now: float, tags: tuple[str, ...]) -> Alert:
    """The ``watcher-blind`` alert (or its recovered notice) for one target."""
    h, t = change.health, change.health.target
    at = datetime.fromtimestamp(now, UTC)
    firing = change.kind == "firing"
    event = JobEvent(
        source=t.source,
        region=t.region,
        project_id=t.project_id,
        job_key=job_key(t.source, t.region, t.project_id, RULE),
        job_id=RULE,
        job_type=RULE,
        status="BLIND" if firing else "POLLING",
        phase="failed" if firing else "succeeded",
        prev_status="POLLING" if firing else "BLIND",
        prev_phase="succeeded" if firing else "failed",
        message=h.last_error or None,
        observed_at=at,
        target=t.id,
    )
    if firing:
        title = f"[BLIND] watcher cannot poll {t.id}"
        body = "\n".join(
            [
                f"watcher has not polled {t.source} in project {t.project_id} ({t.region}) successfully:",
                f"Failures: {h.failures} in a row",
                f"Last OK:  {_ago(now, h.last_ok)}",
                f"Error:    {h.last_error or '(no poll attempted)'}",
                "Job failures in this target go unnoticed until it recovers.",
            ]
        )
    else:
        title = f"[RECOVERED] watcher polls {t.id} again"
        body = (
            f"watcher polled {t.source} in project {t.project_id} ({t.region}) successfully again; "
            f"it was blind for {now - change.episode:.0f}s."
        )
    return Alert(
        key=f"{RULE}|{t.id}|{int(change.episode)}|{change.kind}",
        rule=RULE,
        kind=change.kind,
        severity="critical",
        tags=tags,
        title=title,
        body=body,
        event=event,
        fired_at=at,
        incident=f"{RULE}|{t.id}@{int(change.episode)}",
        incident_kind="health",
    )


class Episodes(Protocol):
    """Where open blind episodes are kept (target id → when the episode began)."""

    def get(self, target_id: str) -> float | None: ...
    def put(self, target_id: str, episode: float) -> None: ...
    def drop(self, target_id: str) -> None: ...


class SelfHealth(Service):
    """Checks the tracker every ``check_interval``, publishes notices; sends the heartbeat.

    With ``publish`` (the alerts topic) and ``episodes`` (Kafka-backed) notices survive a
    restart as the module doc says; without them (tools, tests) they are delivered directly
    and a firing notice that failed is tried again at the next check."""

    def __init__(
        self,
        comps: Components,
        targets: dict[str, Target],
        *,
        owned: Callable[[], set[str]] | None = None,
        episodes: Episodes | None = None,
        publish: Callable[[Alert], Awaitable[None]] | None = None,
        ready: Callable[[], bool] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.comps, self.all_targets, self.owned = comps, targets, owned
        self.episodes, self.publish, self.ready = episodes, publish, ready
        cfg = comps.config
        self.check_interval = cfg.seconds(cfg.health.check_interval)
        self.heartbeat_interval = cfg.seconds(cfg.health.heartbeat_interval)
        self._heartbeat: Any = None
        if cfg.health.heartbeat_url:
            from watcher.notify.config import NotifyConfig, NotifyTarget, RetryBudget
            from watcher.notify.deliver import Notifier

            self._heartbeat = Notifier(
                NotifyConfig(
                    targets=(NotifyTarget(url=cfg.health.heartbeat_url, tags=("heartbeat",)),),
                    retry=RetryBudget(attempts=1, budget_seconds=max(1.0, self.heartbeat_interval / 2)),
                )
            )

    async def on_start(self) -> None:
        if self.comps.config.health.enabled:
            self.add_future(self._check_loop())
        if self._heartbeat is not None:
            self.add_future(self._heartbeat_loop())

    async def _check_loop(self) -> None:
        while not self.should_stop:
            await self.sleep(self.check_interval)
            try:
                await self.check(time.time())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("self-health check failed")

    async def check(self, now: float) -> None:
        from watcher.poller.diff import target_is_by_id

        if self.ready is not None and not self.ready():
            return  # the episodes table is still being recovered
        tracker = self.comps.blind
        if self.owned is not None:
            owned = self.owned()
            tracker.own(self.all_targets, owned, now, target_is_by_id)
            for tid in owned if self.episodes is not None else ():
                h = tracker.targets.get(tid)
                if h is not None and h.blind_since is None and (episode := self.episodes.get(tid)) is not None:
                    log.info("%s: adopting the open episode of %s (since %.0f)", RULE, tid, episode)
                    await self._notify(Change("firing", h, episode), now, adopted=True)
        for change in tracker.decide(now):
            await self._notify(change, now)

    async def _notify(self, change: Change, now: float, *, adopted: bool = False) -> None:
        alert = blind_alert(change, now, self.comps.config.health.tags)
        h, firing = change.health, change.kind == "firing"
        if not adopted:
            log.warning("%s: %s", RULE, alert.title)
        if self.publish is not None:
            if firing and self.episodes is not None:
                self.episodes.put(h.target.id, change.episode)  # first: a successor re-publishes the same key
            await self.publish(alert)  # the notifier delivers each key once
            if not firing and self.episodes is not None:
                self.episodes.drop(h.target.id)
        else:
            from watcher.incidents.model import standalone
            from watcher.notify.delivery import deliver_now
            from watcher.notify.dispatch import Channels

            note = standalone(alert, datetime.fromtimestamp(now, UTC))
            outcome = await deliver_now(Channels(self.comps.notifier), note, self.comps.config.notify.retry)
            if not outcome.delivered:
                log.error("%s notice for %s not delivered: %s", RULE, h.target.id, outcome.reason)
                return  # a firing notice is tried again at the next check
        if not adopted:
            self.comps.metrics.self_health.labels(change.kind).inc()
        h.blind_since = change.episode if firing else None
        self.comps.metrics.blind.labels(h.target.id).set(1 if firing else 0)

    async def _heartbeat_loop(self) -> None:
        while not self.should_stop:
            await self.beat()
            await self.sleep(self.heartbeat_interval)

    async def beat(self) -> bool:
        notifier = self._heartbeat
        blind = sum(1 for h in self.comps.blind.targets.values() if h.blind_since is not None)
        body = (
            f"watcher worker {socket.gethostname()} pid {os.getpid()} is alive: "
            f"{self.comps.stats.polls} polls, {blind} blind target(s)"
        )
        why = ""
        try:
            results = await notifier.send(
                notifier.targets, "watcher heartbeat", body, timeout=max(1.0, self.heartbeat_interval / 2)
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the notifier contains plugin errors; this would be a bug
            results, why = [], type(e).__name__
        ok = bool(results) and all(r.ok for r in results)
        self.comps.metrics.heartbeats.labels("ok" if ok else "failed").inc()
        if not ok:
            why = why or "; ".join(f"{r.target}: {r.reason}" for r in results)
            log.warning("heartbeat not delivered: %s", why)
        return ok
