"""Apprise targets: loading them from the config, routing by tag, and one-off sends (``notify test``).

Apprise 2.x returns an ``AppriseResult`` from ``notify``/``async_notify``: one ``NotifyResult``
per service it dispatched (masked URL, status, and the warnings it logged per attempt). But
one call over many services also applies Apprise's tag-priority escalation, and gives no
handle back to the plugin object. So each target gets its own single-service ``Apprise``;
a send is ``asyncio.gather`` over those, each ``await``-ing ``async_notify`` — which runs
blocking plugins in Apprise's worker threads, so the event loop never blocks. Routing still
uses Apprise's own tag logic (``Apprise.find``: OR of tags, ``always`` matches everything);
an alert without tags takes the default route (:meth:`Notifier.find_route`).

A target's id is its masked URL (``#2``, ``#3`` appended to repeats); it is what callers
persist to remember "already delivered", and what dead letters list.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apprise

from watcher.errors import ConfigError
from watcher.events import Alert
from watcher.notify import console as _console  # noqa: F401 (registers console://)
from watcher.notify.apprise_channel import notify_type_for
from watcher.notify.config import NotifyConfig
from watcher.notify.redact import (
    guard_apprise_logging,
    known_secrets,
    mask_plugin,
    mask_url,
    quiet_apprise,
    redact,
    secrets_of,
)
from watcher.notify.render import ChannelKind, channel_kind, sanitize, truncate
from watcher.notify.retry import DeliveryOutcome, DeliveryResult, TargetResult, classify, format_results

__all__ = [
    "DeliveryOutcome", "DeliveryResult", "Notifier", "Target", "TargetResult",
    "classify", "format_results", "notify_type_for", "send_test",
]

log = logging.getLogger(__name__)

_DETAIL_LIMIT = 300
_UNCUT = 1 << 30  # render in full; each target's send cuts to its own limits (Notifier.fit)


class Target:
    """One loaded Apprise service: its id (masked URL), its tags, and a private sender."""

    def __init__(self, target_id: str, plugin: Any, asset: apprise.AppriseAsset) -> None:
        self.id = target_id
        self.plugin = plugin
        self.kind: ChannelKind = channel_kind(plugin)
        self.tags: frozenset[str] = frozenset(str(t) for t in getattr(plugin, "tags", ()) or ())
        self.sender = apprise.Apprise(plugin, asset=asset)

    def __repr__(self) -> str:
        return f"Target({self.id!r}, tags={sorted(self.tags)!r})"


class Notifier:
    """The configured Apprise targets and the routing over them (delivery: ``watcher.notify.delivery``)."""

    def __init__(self, config: NotifyConfig) -> None:
        guard_apprise_logging()
        self.config = config
        self.asset = apprise.AppriseAsset(app_id="watcher", app_desc="Huawei Cloud job watcher")
        loaded: list[tuple[Any, str | None]] = []
        for i, target in enumerate(config.targets):
            if target.kind != "apprise":
                continue  # Slack and webhook targets are channels of their own (watcher.notify.channel)
            # Untagged targets get the default tags, else only the every-target route reaches them.
            tags = list(target.tags or config.default_tags)
            # Learn the URL's secrets before Apprise parses it: parsing logs (at DEBUG).
            guard_apprise_logging(secrets_of(None, target.url))
            plugin = apprise.Apprise.instantiate(target.url, asset=self.asset, tag=tags)
            if plugin is None:
                raise ConfigError(f"not a usable Apprise URL: {mask_url(target.url)}", key=f"notify.targets[{i}].url")
            # Apprise paces each plugin instance itself (5.5 s for mail); the target's pace replaces it.
            plugin.request_rate_per_sec = target.pace_seconds(getattr(plugin, "request_rate_per_sec", 0.0))
            loaded.append((plugin, target.url))
        if config.apprise_config:
            loaded.extend((plugin, None) for plugin in self._load_apprise_config(config.apprise_config))
        seen: dict[str, int] = {}
        self.targets: tuple[Target, ...] = ()
        for plugin, raw in loaded:
            guard_apprise_logging(secrets_of(plugin, raw if raw is not None else _full_url(plugin)))
            masked = mask_plugin(plugin)
            seen[masked] = seen.get(masked, 0) + 1
            target_id = masked if seen[masked] == 1 else f"{masked}#{seen[masked]}"
            self.targets += (Target(target_id, plugin, self.asset),)
        self._router = apprise.Apprise([t.plugin for t in self.targets], asset=self.asset)

    def _load_apprise_config(self, path: str) -> list[Any]:
        if not Path(path).is_file():
            raise ConfigError(f"Apprise config file {path} not found", key="notify.apprise_config")
        with quiet_apprise():  # its own lines would only repeat ours, less clearly
            plugins = apprise.AppriseConfig(paths=path, asset=self.asset).services()
        if not plugins:
            raise ConfigError(f"no usable notification URL in {path} (not Apprise YAML or TEXT, or no URL in it "
                              "parses)", key="notify.apprise_config")
        return list(plugins)

    # -- routing -------------------------------------------------------------------------

    def find(self, tags: str | Iterable[str]) -> list[Target]:
        """Targets matching any of ``tags`` (Apprise semantics), in config order."""
        wanted = tags if isinstance(tags, str) else list(tags)
        hits = {id(p) for p in self._router.find(wanted)}
        return [t for t in self.targets if id(t.plugin) in hits]

    def find_route(self, tags: Iterable[str]) -> list[Target]:
        """Where an alert with ``tags`` goes: the targets with any of them; with no tags, the
        default route — the targets with a ``default_tags`` tag, or every target when
        ``default_tags`` is not set (the root route always has a receiver)."""
        wanted = tuple(tags) or tuple(self.config.default_tags)
        return self.find(wanted) if wanted else list(self.targets)

    def route(self, alert: Alert) -> list[Target]:
        """The targets for ``alert``: its tags, or the default route when the rule gave none."""
        return self.find_route(alert.tags)

    def target_ids(self, alert: Alert) -> list[str]:
        return [t.id for t in self.route(alert)]

    # -- sending -------------------------------------------------------------------------

    def fit(self, target: Target, title: str, body: str) -> tuple[str, str]:
        """``title``/``body`` cut to the configured limits and to the service's own (Apprise's
        ``title_maxlen``/``body_maxlen``: Discord 2,000, Telegram 4,096…), with a visible marker.
        Many services put the title in the body's space, so the body makes room for it."""
        plugin = target.plugin
        title = truncate(title, min(self.config.title_limit, getattr(plugin, "title_maxlen", 0) or _UNCUT))
        service_body = int(getattr(plugin, "body_maxlen", 0) or _UNCUT) - (len(title) + 2 if title else 0)
        return title, truncate(body, max(1, min(self.config.body_limit, service_body)))

    async def send(
        self,
        targets: Collection[Target],
        title: str,
        body: str,
        notify_type: apprise.NotifyType = apprise.NotifyType.INFO,
        *,
        timeout: float = 0,
        bodies: Mapping[ChannelKind, str] | None = None,
    ) -> list[TargetResult]:
        """Send one rendered message to ``targets`` concurrently, cut to each one's limits; one result each.
        ``bodies``: the body per channel kind, when the layout differs by kind."""
        sends = (self._send_one(t, title, bodies[t.kind] if bodies else body, notify_type, timeout) for t in targets)
        return list(await asyncio.gather(*sends))

    async def _send_one(
        self, target: Target, title: str, body: str, notify_type: apprise.NotifyType, timeout: float
    ) -> TargetResult:
        started = time.monotonic()
        title, body = self.fit(target, title, body)
        try:
            result = await target.sender.async_notify(
                body=body, title=title, notify_type=notify_type,
                body_format=apprise.NotifyFormat.TEXT, timeout=max(0.0, timeout),
            )
        except Exception as e:  # Apprise contains plugin errors; anything here is a bug, ours or its
            # The exception text may quote the URL, so only its type leaves this function.
            log.warning("notification to %s raised %s", target.id, type(e).__name__)
            return TargetResult(target=target.id, ok=False, status="ERROR", detail=type(e).__name__,
                                elapsed=time.monotonic() - started)
        with result:
            services = result.results
            status = services[0].status.name if services else result.status.name
            warnings = [entry.message for entry in result.logs()]
        detail = sanitize(redact("; ".join(warnings), known_secrets()), _DETAIL_LIMIT)
        return TargetResult(target=target.id, ok=status == "SUCCESS", status=status, detail=detail,
                            elapsed=time.monotonic() - started)


def _full_url(plugin: Any) -> str | None:
    """The plugin's unmasked URL — only to learn which strings to redact, never to print."""
    try:
        return str(plugin.url())
    except Exception:
        return None


async def send_test(config: NotifyConfig, tag: str) -> list[TargetResult]:
    """``watcher notify test --tag TAG``: a short test message to every target with ``tag``."""
    notifier = Notifier(config)
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    title = "watcher test notification"
    body = (f"This is a test message from watcher on {socket.gethostname()} at {now} "
            f"for targets tagged '{tag}'. If you can read it, alerts will reach you here.")
    return await notifier.send(notifier.find(tag), sanitize(title, config.title_limit),
                               sanitize(body, config.body_limit), apprise.NotifyType.INFO)
