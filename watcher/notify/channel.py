"""What the notify stage needs of a notification channel: one send of one notification.

Every kind of target (an Apprise URL, Slack driven natively, the signed structured webhook) is a
:class:`Channel`. The notify stage routes each :class:`~watcher.events.Notification` to the
channels its tags reach, sends it to each once, remembers per target that it was accepted, and
keeps the ``ref`` a channel returns (what a later send needs to edit the same message: a Slack
card's channel and ts) per incident and target, in Kafka, so any worker edits the same message.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from watcher.events import Notification


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one target did with one send; never carries a secret."""

    target: str  # the target id (masked, never a secret)
    ok: bool
    status: str = "SUCCESS"  # or an error class name
    detail: str = ""  # redacted
    ref: str | None = None  # what a later send needs to edit this incident's message (Slack: "C123:1712345.6789")
    retry_after: float | None = None  # the service asked us to wait (429 Retry-After)
    retryable: bool = False
    reason: str = "ok"  # a metric label: ok, http_429, http_5xx, http_4xx, connection, timeout, error
    elapsed: float = 0.0


class Channel(Protocol):
    id: str  # masked id, unique per configured target
    tags: frozenset[str]
    editable: bool  # edits a sent message in place (Slack native): hears "editable" updates

    async def send(self, notification: Notification, ref: str | None) -> SendResult: ...

    async def close(self) -> None: ...
