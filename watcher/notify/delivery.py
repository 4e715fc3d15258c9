"""One notification to its channels: each channel tried on its own, retried on its own, marked on its own.

Where it sits: ``notify/``, called by the notify stage (``app/notify.py``) with the channels a
notification is routed to. Each channel gets its own task, so:

* a target's acceptance is reported (``on_accept``) **the moment that target accepts**, not when
  the slowest target of the notification is done: the caller writes the per-target mark right
  then, so a worker killed while a slow mail server is still being talked to leaves a successor
  that sends the webhook nothing more;
* only the targets that failed are tried again, with exponential backoff and jitter (at least what
  a 429's Retry-After asked for), within ``[notify.retry]`` (attempts, budget); a 4xx retrying
  cannot fix stops at once;
* messages about one incident reach one channel in order (``after``: the previous notification's
  task on that channel), so a Slack card is never edited before it is posted.

:class:`Delivery` exposes its tasks, so the stage can wait for the first few seconds inline and
let a delivery still retrying go on off the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence

from watcher.events import Notification
from watcher.notify.channel import Channel, SendResult
from watcher.notify.config import RetryBudget
from watcher.notify.retry import DeliveryOutcome, TargetResult, backoff_delay

log = logging.getLogger("watcher.notify")


class Delivery:
    """The delivery of one notification to ``channels`` (the ones not in ``already`` get sent)."""

    def __init__(
        self,
        notification: Notification,
        channels: Sequence[Channel],
        budget: RetryBudget,
        *,
        already: Collection[str] = frozenset(),
        ref_of: Callable[[str], str | None] = lambda _: None,
        on_accept: Callable[[Channel, SendResult], None] | None = None,
        after: Mapping[str, asyncio.Future[object]] | None = None,
        started: float | None = None,
    ) -> None:
        self.notification, self.budget = notification, budget
        self.channels = [c for c in channels if c.id not in already]
        self.ref_of, self.on_accept = ref_of, on_accept
        self.after = dict(after or {})
        self.started = time.time() if started is None else started
        self.attempts: dict[str, int] = {}
        self.results: dict[str, SendResult] = {}
        self.tasks: dict[str, asyncio.Task[SendResult]] = {}

    def start(self) -> Delivery:
        for channel in self.channels:
            self.tasks[channel.id] = asyncio.ensure_future(self._deliver(channel))
        return self

    @property
    def done(self) -> bool:
        return all(t.done() for t in self.tasks.values())

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for every channel; True when all are done."""
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=timeout)
        return self.done

    def cancel(self) -> None:
        for task in self.tasks.values():
            task.cancel()

    async def _deliver(self, channel: Channel) -> SendResult:
        before = self.after.get(channel.id)
        if before is not None:  # the incident's previous message to this channel goes first
            with contextlib.suppress(BaseException):
                await asyncio.shield(before)
        key = self.notification.key
        while True:
            attempt = self.attempts.get(channel.id, 0) + 1
            self.attempts[channel.id] = attempt
            remaining = self.budget.budget_seconds - (time.time() - self.started)
            try:
                result = await asyncio.wait_for(channel.send(self.notification, self.ref_of(channel.id)),
                                                max(remaining, 0.001))  # fmt: skip
            except TimeoutError:
                result = SendResult(target=channel.id, ok=False, status="TIMEOUT", retryable=True, reason="timeout")
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a channel bug must not lose the notification silently
                log.warning("notification %s to %s raised %s", key, channel.id, type(e).__name__)
                result = SendResult(target=channel.id, ok=False, status="ERROR", detail=type(e).__name__, reason="error")
            self.results[channel.id] = result
            if result.ok:
                if self.on_accept is not None:
                    self.on_accept(channel, result)
                return result
            if not result.retryable or attempt >= self.budget.attempts:
                return result
            delay = max(backoff_delay(attempt, self.budget), result.retry_after or 0.0)
            if time.time() - self.started + delay >= self.budget.budget_seconds:
                return result
            log.info("retrying %s to %s in %.2fs (%s)", key, channel.id, delay, result.reason)
            await asyncio.sleep(delay)

    def outcome(self) -> DeliveryOutcome:
        """What the delivery came to (call when :attr:`done`)."""
        results = [self.results[c.id] for c in self.channels if c.id in self.results]
        failed = [r for r in results if not r.ok]
        as_targets = tuple(TargetResult(target=r.target, ok=r.ok, status=r.status, detail=r.detail, elapsed=r.elapsed)
                           for r in results)  # fmt: skip
        attempts = max(self.attempts.values(), default=0)
        sent = tuple(r.target for r in results if r.ok)
        if not failed and len(results) == len(self.channels):
            return DeliveryOutcome(delivered=True, reason="delivered", attempts=attempts, sent=sent, results=as_targets)
        for r in failed:
            log.warning("notification %s not delivered to %s: %s", self.notification.key, r.target, r.reason)
        reason = failed[0].reason if failed else "cancelled"
        missing = [c.id for c in self.channels if c.id not in self.results]
        return DeliveryOutcome(
            delivered=False, reason=reason, attempts=attempts,
            failed_targets=tuple(r.target for r in failed) + tuple(missing), sent=sent, results=as_targets,
        )  # fmt: skip


async def deliver_now(channels: object, notification: Notification, budget: RetryBudget) -> DeliveryOutcome:
    """Deliver ``notification`` to the channels it routes to, retries included, and wait for the end
    (no marks, no queue: the command-line tools and self-health without a broker)."""
    routed = channels.route(notification)  # type: ignore[attr-defined]
    if not routed:
        return DeliveryOutcome(delivered=False, reason="no_route", attempts=0)
    delivery = Delivery(notification, routed, budget).start()
    await delivery.wait()
    return delivery.outcome()
