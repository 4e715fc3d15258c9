"""Apprise targets as :class:`~watcher.notify.channel.Channel`: every service Apprise speaks.

An Apprise service cannot edit what it sent (apprise#699) and returns no message id, so it is
not ``editable``: it hears an incident's opening, the next flushes of a group (new failures),
reminders, escalations and the resolution, and nothing of the updates that restate the same
failure. The text is the alert's, rendered per kind of channel (:mod:`watcher.notify.render`),
with the incident's other jobs listed when it covers more than one (one page names them all).

Pacing: Apprise waits ``request_rate_per_sec`` seconds between two messages to one service
(5.5 s for mail). A team's own SMTP relay needs none of that, so mail targets default to no
pause; every target can set its own ``pace`` (seconds) in ``[[notify.targets]]``
(:meth:`~watcher.notify.config.NotifyTarget.pace_seconds`, applied when the notifier loads it).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import apprise

from watcher.events import Alert, Notification
from watcher.notify.channel import SendResult
from watcher.notify.redact import known_secrets, redact
from watcher.notify.render import incident_section, notification_alert, render, sanitize
from watcher.notify.retry import TargetResult, classify

log = logging.getLogger("watcher.notify")

_DETAIL_LIMIT = 300
_UNCUT = 1 << 30


def notify_type_for(alert: Alert) -> apprise.NotifyType:
    """Severity → Apprise type (colour/icon per channel); a resolved alert is a success."""
    if alert.kind == "resolved":
        return apprise.NotifyType.SUCCESS
    if alert.severity == "warning":
        return apprise.NotifyType.WARNING
    if alert.severity == "info":
        return apprise.NotifyType.INFO
    return apprise.NotifyType.FAILURE


class AppriseChannel:
    """One loaded Apprise service (a :class:`watcher.notify.deliver.Target`) as a channel."""

    editable = False

    def __init__(self, target: Any, notifier: Any, pace: float | None = None) -> None:
        self.target, self.notifier = target, notifier
        self.id: str = target.id
        self.tags: frozenset[str] = target.tags
        self.kind = target.kind
        if pace is not None:  # else the notifier applied the target's own pace (NotifyTarget.pace_seconds)
            target.plugin.request_rate_per_sec = pace

    def __repr__(self) -> str:
        return f"AppriseChannel({self.id!r}, tags={sorted(self.tags)!r})"

    def text(self, notification: Notification) -> tuple[str, str, apprise.NotifyType]:
        """The title, body and Apprise type this channel sends for ``notification``."""
        alert = notification_alert(notification)
        title, body = render(alert, title_limit=_UNCUT, body_limit=_UNCUT, kind=self.kind)
        section = incident_section(notification)
        if section:
            body = f"{body}\n\n{sanitize(section, _UNCUT)}"
        return title, body, notify_type_for(alert)

    async def send(self, notification: Notification, ref: str | None = None, *, timeout: float = 0) -> SendResult:
        started = time.monotonic()
        title, body, notify_type = self.text(notification)
        title, body = self.notifier.fit(self.target, title, body)
        try:
            result = await self.target.sender.async_notify(
                body=body, title=title, notify_type=notify_type,
                body_format=apprise.NotifyFormat.TEXT, timeout=max(0.0, timeout),
            )  # fmt: skip
        except Exception as e:  # Apprise contains plugin errors; anything here is a bug, ours or its
            log.warning("notification to %s raised %s", self.id, type(e).__name__)  # the text may quote the URL
            return SendResult(target=self.id, ok=False, status="ERROR", detail=type(e).__name__, reason="error",
                              elapsed=time.monotonic() - started)  # fmt: skip
        with result:
            services = result.results
            status = services[0].status.name if services else result.status.name
            warnings = [entry.message for entry in result.logs()]
        detail = sanitize(redact("; ".join(warnings), known_secrets()), _DETAIL_LIMIT)
        tr = TargetResult(target=self.id, ok=status == "SUCCESS", status=status, detail=detail)
        retryable, reason = classify(tr)
        return SendResult(target=self.id, ok=tr.ok, status=status, detail=detail, retryable=retryable, reason=reason,
                          elapsed=time.monotonic() - started)  # fmt: skip

    async def close(self) -> None:
        return None
