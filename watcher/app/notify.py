"""The notify stage: notifications in, each delivered once per target, marks in Kafka, DLQ at the end.

Where it sits: incidents → notifications(key = incident) → **notify** → channels (Apprise, Slack,
the structured webhook) or ``<prefix>.dlq``. One object owns the delivery state of a worker:

* the ``<prefix>-delivered`` table: ``<notification key>|<target>`` → ``"1"`` written the moment
  that target accepts (:class:`~watcher.notify.delivery.Delivery` reports each target on its own),
  and ``<notification key>|*`` → ``"1"`` or ``"dead"`` once the notification is settled;
* the ``<prefix>-message-refs`` table: ``<incident>#<episode>|<target>`` → what a later send needs
  to edit the same message (a Slack card's channel and ts), so any worker edits the same card;
* the deliveries in flight, and per incident and target the last one, so messages about one
  incident reach a target in order;
* where the re-read net (:meth:`NotifyStage.reconcile`) stands in each partition.

A batch of notifications is delivered concurrently; the stage waits for it up to
``[notify.retry] inline_seconds``, and a delivery still retrying after that goes on off the queue
(a dead mail server must not hold up Slack). Its offset may then be committed while it is still
going: if the worker dies, the re-read net of the successor finds it (below a committed offset,
no settled mark, not in flight here) and delivers it to the targets that have not accepted it.
That is also the only case the net warns about: a notification that truly had no fate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from watcher import events as ev
from watcher.app.reread import Committed, Reread, RereadNet
from watcher.app.tables import write_row
from watcher.notify.channel import Channel, SendResult
from watcher.notify.config import RetryBudget
from watcher.notify.delivery import Delivery
from watcher.notify.dispatch import Channels
from watcher.notify.retry import DeliveryOutcome

log = logging.getLogger("watcher.app")

#: How often each worker re-reads its notifications partitions for ones nobody settled.
RECONCILE_EVERY = 10.0


class NotifyStage:
    """Delivers notifications (see the module docstring)."""

    def __init__(
        self, *, comps: Any, channels: Channels, delivered: Any, refs: Any, dlq_topic: Any, budget: RetryBudget,
        owned: Callable[[], set[int] | None], reread: Reread | None = None, committed: Committed | None = None,
        grace: float = 10.0,
    ) -> None:  # fmt: skip
        self.comps, self.channels, self.delivered, self.refs, self.dlq_topic = comps, channels, delivered, refs, dlq_topic
        self.budget, self.owned, self.grace = budget, owned, grace
        self.inflight: dict[str, asyncio.Task[None]] = {}
        self.chains: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self.net = RereadNet(what="notifications", owned=owned, reread=reread or _nothing, committed=committed or _none,
                             handled=self._had_a_fate, recover=self._recover)  # fmt: skip

    # -- marks and refs ----------------------------------------------------------------------

    def settled(self, key: str) -> str | None:
        return self.delivered.get(f"{key}|*")

    def _write(self, table: Any, key: str, value: str, partition: int) -> Any:
        return write_row(table, key, value, partition)

    def _ref_key(self, n: ev.Notification, channel_id: str) -> str:
        return f"{n.incident.id}#{n.incident.episode}|{channel_id}"

    # -- the agent ---------------------------------------------------------------------------

    async def on_batch(self, records: Iterable[tuple[int, int, ev.Notification]]) -> None:
        """Start each notification's delivery; wait for them up to ``inline_seconds``."""
        started: dict[asyncio.Task[None], str] = {}
        for partition, offset, n in records:
            self.net.saw(partition, offset)
            task = self.start(n, partition)
            if task is not None:
                started[task] = n.key
        if started:
            _, pending = await asyncio.wait(started, timeout=self.budget.inline_seconds)
            for task in pending:
                log.info("notification %s: targets still retrying, going on off the queue", started[task])

    def start(self, n: ev.Notification, partition: int) -> asyncio.Task[None] | None:
        """Begin delivering ``n`` unless it is settled or already under way; its task."""
        done = self.settled(n.key)
        if done == "1" or (done is not None and not n.replay):
            self.comps.stats.deduped += 1
            return None
        if n.key in self.inflight:
            return None
        channels = self.channels.route(n)
        if not channels:
            if n.audience == "editable":  # nothing edits a message in place here: nothing to do
                self._write(self.delivered, f"{n.key}|*", "1", partition)
                return None
            log.warning("notification %s matched no notification target (tags %s)", n.key, list(self.channels.wanted(n)))
            outcome = DeliveryOutcome(delivered=False, reason="no_route", attempts=0)
            task = asyncio.ensure_future(self._settle(n, partition, outcome))
            self.inflight[n.key] = task
            task.add_done_callback(lambda _: self.inflight.pop(n.key, None))
            return task
        already = set() if n.replay else {c.id for c in channels if self.delivered.get(f"{n.key}|{c.id}")}
        after = {c.id: f for c in channels if (f := self.chains.get((n.incident.id, c.id))) is not None}
        delivery = Delivery(
            n, channels, self.budget, already=already, after=after,
            ref_of=lambda cid: self.refs.get(self._ref_key(n, cid)),
            on_accept=lambda ch, res: self._accepted(n, partition, ch, res),
        ).start()  # fmt: skip
        for channel_id, t in delivery.tasks.items():
            self.chains[(n.incident.id, channel_id)] = t
        task = asyncio.ensure_future(self._finish(delivery, n, partition))
        self.inflight[n.key] = task
        return task

    def _accepted(self, n: ev.Notification, partition: int, channel: Channel, result: SendResult) -> None:
        """A target accepted: mark it now, whatever the other targets are still doing."""
        self._write(self.delivered, f"{n.key}|{channel.id}", "1", partition)
        if result.ref:
            self._write(self.refs, self._ref_key(n, channel.id), result.ref, partition)
        self.comps.metrics.notifications.labels(channel.id, "ok").inc()

    async def _finish(self, delivery: Delivery, n: ev.Notification, partition: int) -> None:
        try:
            await delivery.wait()
            outcome = delivery.outcome()
            for r in outcome.results:
                if not r.ok:
                    self.comps.metrics.notifications.labels(r.target, r.reason).inc()
            await self._settle(n, partition, outcome)
        except asyncio.CancelledError:  # stopping: unsettled, so a successor's re-read takes it up
            delivery.cancel()
            raise
        except Exception:  # never lose it silently: the re-read net finds it again
            log.exception("delivering %s crashed; the re-read net takes it up", n.key)
            self._rewind(partition)
        finally:
            self.inflight.pop(n.key, None)
            for channel_id, t in delivery.tasks.items():
                if self.chains.get((n.incident.id, channel_id)) is t:
                    del self.chains[(n.incident.id, channel_id)]

    async def _settle(self, n: ev.Notification, partition: int, outcome: DeliveryOutcome) -> None:
        """Mark the notification delivered, or dead-letter it: either way no worker sends it again."""
        seconds = (datetime.now(UTC) - n.created_at).total_seconds()
        self.comps.metrics.delivered(outcome, max(0.0, seconds))
        if outcome.delivered:
            await self._write(self.delivered, f"{n.key}|*", "1", partition)  # durable before its batch is acked
            self.comps.stats.sent += 1
            self.comps.on_delivered(n)
            return
        dead = ev.DeadLetter(
            notification=n, reason=outcome.reason, attempts=outcome.attempts,
            failed_targets=tuple(outcome.failed_targets), failed_at=datetime.now(UTC),
        )  # fmt: skip
        await (await self.dlq_topic.send(key=n.key.encode(), value=ev.encode(dead)))
        await self._write(self.delivered, f"{n.key}|*", "dead", partition)
        self.comps.stats.dead += 1
        log.error("notification %s dead-lettered: %s", n.key, outcome.reason)

    def _rewind(self, partition: int) -> None:
        self.net.rewind(partition)

    # -- stopping ----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Deliveries in flight get ``grace`` to finish and be marked; the rest stay for a successor."""
        tasks = list(self.inflight.values())
        if not tasks:
            return
        log.info("stopping: finishing %d delivery(ies) first (up to %.0fs)", len(tasks), self.grace)
        done, pending = await asyncio.wait(tasks, timeout=self.grace)
        if pending:
            log.warning("stopping: %d delivery(ies) did not finish within %.0fs; a successor takes them over",
                        len(pending), self.grace)  # fmt: skip
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- the re-read net ---------------------------------------------------------------------

    def _had_a_fate(self, record: Any) -> bool:
        if not isinstance(record, ev.Notification) or record.replay:
            return True  # a replay is the dlq tool's, delivered by the agent
        return record.key in self.inflight or self.settled(record.key) is not None

    async def _recover(self, record: ev.Notification, partition: int) -> None:
        log.warning("notification %s was never settled (its worker stopped mid-delivery): delivering it now",
                    record.key)  # fmt: skip
        self.comps.metrics.recovered.inc()
        self.start(record, partition)

    async def reconcile(self) -> int:
        """One round of the re-read net; how many notifications it delivered."""
        return await self.net.round()

    @property
    def recovered(self) -> int:
        return self.net.recovered


async def _nothing(starts: dict[int, int]) -> list[tuple[int, int, bytes | None]]:
    return []


async def _none(parts: set[int]) -> dict[int, int]:
    return {}
