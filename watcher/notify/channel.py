"""The contract between the delivery stage and a channel that speaks to one outside service.

Sits in notify, between the delivery stage (which routes a :class:`~watcher.events.Notification`
to targets, keeps the message ref per incident and target, marks and retries) and the service:
:mod:`watcher.notify.slack` (the card, edited in place), :mod:`watcher.notify.webhook` (the
signed JSON document), :mod:`watcher.notify.mail` (threaded mail). A channel sends one
notification once and says what happened in a :class:`SendResult`; it never retries by itself
and never raises for a service's failure. Also here: :class:`Pacer` (the minimum gap between two
messages to one place, and waiting out a 429), and :func:`classify_status`, the one "retry?"
decision for HTTP answers, whose reason is a metric label as in :mod:`watcher.notify.retry`.

Imports only the event contract, msgspec and the standard library.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol, runtime_checkable

import msgspec

from watcher.events import Notification

#: Reasons a send failed, each also a metric label: ``ok``, ``http_429``, ``http_5xx``,
#: ``http_4xx``, ``connection``, ``timeout``, ``error``.
REASONS = ("ok", "http_429", "http_5xx", "http_4xx", "connection", "timeout", "error")
_RETRYABLE_4XX = frozenset({408, 425, 429})


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one channel did with one notification."""

    target: str  # the target id (masked, never a secret)
    ok: bool
    status: str = "SUCCESS"  # or an error class name
    detail: str = ""  # redacted
    ref: str | None = None  # what a later send needs to edit this incident's message (Slack: "C123:1712345.6789")
    retry_after: float | None = None  # the service asked us to wait (429 Retry-After)
    retryable: bool = False
    reason: str = "ok"  # a metric label: ok, http_429, http_5xx, http_4xx, connection, timeout, error
    elapsed: float = 0.0  # seconds the send took


@runtime_checkable
class Channel(Protocol):
    """One configured target that is not a plain Apprise URL."""

    id: str  # masked id, unique per configured target
    tags: frozenset[str]
    editable: bool  # edits a sent message in place (Slack native): hears "editable" updates

    async def send(self, notification: Notification, ref: str | None) -> SendResult: ...

    async def close(self) -> None: ...


def routes_to(channel: Channel, tags: Iterable[str]) -> bool:
    """Apprise's routing rule, for channels: any tag in common, and ``always`` matches all."""
    wanted = set(tags)
    return bool(channel.tags & wanted) or "always" in channel.tags or "always" in wanted


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify_status(status: int) -> tuple[bool, str]:
    """An HTTP answer → (retryable, reason). 2xx ok; 408/425/429 and 5xx retry; other 4xx do not
    (a wrong token or a gone endpoint: retrying will not fix it); 1xx/3xx are errors (we do not
    follow redirects: a moved webhook is a config change)."""
    if 200 <= status <= 299:
        return False, "ok"
    if status == 429:
        return True, "http_429"
    if status in _RETRYABLE_4XX:
        return True, "http_4xx"
    if 500 <= status <= 599:
        return True, "http_5xx"
    if 400 <= status <= 499:
        return False, "http_4xx"
    return False, "error"


def failed(target: str, status: str, reason: str, *, detail: str = "", retryable: bool | None = None,
           retry_after: float | None = None, ref: str | None = None) -> SendResult:
    """A failed :class:`SendResult`; ``retryable`` defaults from the reason."""
    if retryable is None:
        retryable = reason in ("http_429", "http_5xx", "connection", "timeout")
    return SendResult(target=target, ok=False, status=status, detail=detail, reason=reason,
                      retryable=retryable, retry_after=retry_after, ref=ref)


class Pacer:
    """At least ``pace`` seconds between the starts of two messages to one key (a Slack channel,
    a webhook URL, a mail target), in this process; :meth:`hold` makes a key wait longer (a 429's
    Retry-After), so the next message there waits it out instead of being refused again.

    Several workers each pace their own sends: Slack's limit is per app and channel, so a deployment
    of N workers posts at most N messages per ``pace`` to one channel, and 429s (honoured) cover the
    rest. ``clock``/``sleep`` are injectable for tests.
    """

    def __init__(self, pace: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.pace = max(0.0, pace)
        self._clock, self._sleep = clock, sleep
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def ready_in(self, key: str = "") -> float:
        """Seconds until ``key`` may be sent to (0: now)."""
        return max(0.0, self._next.get(key, 0.0) - self._clock())

    async def wait(self, key: str = "") -> None:
        """Wait for ``key``'s turn, then take it."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            delay = self.ready_in(key)
            while delay > 0:  # a hold() may have moved the time on while we slept
                await self._sleep(delay)
                delay = self.ready_in(key)
            self._next[key] = self._clock() + self.pace

    def hold(self, key: str, seconds: float) -> None:
        """Nothing goes to ``key`` for ``seconds`` from now."""
        self._next[key] = max(self._next.get(key, 0.0), self._clock() + max(0.0, seconds))
