"""The non-Faust parts one worker needs: cloud client, sources, rules, notifier, counters."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from watcher.config import Config
from watcher.events import Alert, TrackRequest
from watcher.sources.base import Source, Target

log = logging.getLogger("watcher.app")


@dataclass
class Stats:
    polls: int = 0
    events: int = 0
    fired: int = 0
    sent: int = 0
    deduped: int = 0
    dead: int = 0


@dataclass
class Components:
    config: Config
    client: Any
    notifier: Any
    _ruleset: Any
    stats: Stats = field(default_factory=Stats)
    delivered_hooks: list[Callable[[Alert], None]] = field(default_factory=list)

    def source(self, name: str) -> Source:
        from watcher.sources import get_source

        return get_source(name)

    def ruleset(self) -> Any:
        return self._ruleset

    def target_for(self, req: TrackRequest, targets: dict[str, Target]) -> str | None:
        for tid, t in targets.items():
            if (t.source, t.region, t.project_id) == (req.source, req.region, req.project_id):
                return tid
        return None

    def on_delivered(self, alert: Alert) -> None:
        for hook in self.delivered_hooks:
            hook(alert)


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
    if ruleset is None:
        from watcher.rules.engine import load_rules

        ruleset = load_rules(list(config.rules.files))
    return Components(config=config, client=client, notifier=notifier, _ruleset=ruleset)
