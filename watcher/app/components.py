"""The non-Faust parts one worker needs: cloud client, sources, rules, notifier, counters.

The stages reach the cloud, the rules and the notifier only through :class:`Components`, so
the wrappers here see every poll and every fired rule: that is where metrics
(:mod:`watcher.app.metrics`) and the self-health tracker (:mod:`watcher.app.blind`) are fed,
without the stages knowing. (Deliveries are counted by the notify stage itself.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watcher.app.blind import BlindTracker
from watcher.app.metrics import Metrics, Stats
from watcher.config import Config
from watcher.events import Alert, JobEvent, Notification, TrackRequest
from watcher.rules.silence import Silence
from watcher.sources.base import Source, Target

__all__ = ["Components", "Stats", "build_client", "build_components"]

log = logging.getLogger("watcher.app")


class _MeteredSource:
    """A source whose ``fetch`` is timed and whose outcome is recorded per target."""

    def __init__(self, inner: Source, comps: Components) -> None:
        self._inner, self._comps = inner, comps

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def fetch(self, client: Any, target: Target, active: Any) -> Any:
        started = time.monotonic()
        try:
            result = await self._inner.fetch(client, target, active)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._comps.record_poll(target, time.monotonic() - started, error=str(e) or type(e).__name__)
            raise
        self._comps.record_poll(target, time.monotonic() - started)
        return result


class _MeteredRuleSet:
    """The rule set, counting what each rule fires."""

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self._inner, self._metrics = inner, metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __len__(self) -> int:
        return len(self._inner)

    def evaluate(self, event: JobEvent, now: datetime) -> list[Alert]:
        alerts = self._inner.evaluate(event, now)
        for alert in alerts:
            self._metrics.rules_fired.labels(alert.rule, alert.severity).inc()
        return list(alerts)


@dataclass
class Components:
    config: Config
    client: Any
    notifier: Any
    _ruleset: Any
    metrics: Metrics = field(default_factory=Metrics)
    delivered_hooks: list[Callable[[Notification], None]] = field(default_factory=list)
    incident_hooks: list[Callable[[Notification], None]] = field(default_factory=list)  # each one made
    silences: list[Silence] = field(default_factory=list)  # the rule files' own
    stats: Stats = field(init=False)
    _sources: dict[str, Any] = field(default_factory=dict)
    blind: BlindTracker = field(init=False)

    def __post_init__(self) -> None:
        self.stats = Stats(self.metrics)
        health = self.config.health
        self.blind = BlindTracker(
            failures=health.blind_after_failures, after=self.config.seconds(health.blind_after)
        )
        if hasattr(self.client, "on_response"):
            self.client.on_response = self.metrics.cloud_response
        if self._ruleset is not None and not isinstance(self._ruleset, _MeteredRuleSet):
            self._ruleset = _MeteredRuleSet(self._ruleset, self.metrics)

    def source(self, name: str) -> Source:
        from watcher.sources import new_source

        if name not in self._sources:  # one per worker and source: its memo lives as long as the worker
            sweep = self.config.seconds(self.config.poll.sweep)
            self._sources[name] = _MeteredSource(new_source(name, sweep_seconds=sweep), self)
        return self._sources[name]  # type: ignore[return-value]

    def ruleset(self) -> Any:
        return self._ruleset

    def replace_ruleset(self, ruleset: Any) -> None:
        """Install reloaded rules; agents read them through ruleset() on every event."""
        self._ruleset = _MeteredRuleSet(ruleset, self.metrics)

    def record_poll(self, target: Target, seconds: float, error: str | None = None) -> None:
        """One fetch of ``target`` finished: feed the metrics and the blind tracker."""
        health = self.blind.observe(target, ok=error is None, now=time.time(), error=error)
        self.metrics.poll_finished(target.source, target.id, seconds, error is None, health.failures)

    def target_for(self, req: TrackRequest, targets: dict[str, Target]) -> str | None:
        for tid, t in targets.items():
            if (t.source, t.region, t.project_id) == (req.source, req.region, req.project_id):
                return tid
        return None

    def on_delivered(self, notification: Notification) -> None:
        for hook in self.delivered_hooks:
            try:
                hook(notification)
            except Exception:  # an observer's bug must not look like a failed delivery
                log.exception("a delivered-hook failed on %s", notification.key)


def build_client(config: Config) -> Any:
    from watcher.cloud.client import CloudClient, RetryPolicy
    from watcher.cloud.credentials import Credentials

    return CloudClient(
        credentials=Credentials.from_env(),
        endpoints=dict(config.cloud.endpoints),
        connect_timeout=config.seconds(config.cloud.connect_timeout),
        read_timeout=config.seconds(config.cloud.read_timeout),
        retry=RetryPolicy(max_attempts=config.cloud.retry_attempts, budget_seconds=config.seconds(config.cloud.retry_budget)),
        max_concurrency=config.cloud.max_concurrency,
    )


def build_components(config: Config, *, client: Any = None, notifier: Any = None, ruleset: Any = None) -> Components:
    if client is None:
        client = build_client(config)
    if notifier is None:
        from watcher.notify.deliver import Notifier

        notifier = Notifier(config.notify)
    silences: list[Silence] = []
    if ruleset is None:
        from watcher.rules.engine import load_book

        ruleset, silences = load_book(list(config.rules.files))
    return Components(config=config, client=client, notifier=notifier, _ruleset=ruleset, silences=silences)
