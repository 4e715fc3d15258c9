"""Keeping a worker useful while the broker is away, and finishing its work when told to stop.

* :class:`BrokerWatch`: the poll agent is driven by ticks that travel through Kafka, so during
  an outage no tick arrives. When ticks stop, a TCP probe tells "broker away" from "nothing to
  do", and the app then polls the targets of its own partitions itself; their changes go to the
  outbox (:mod:`watcher.poller.outbox`) until the broker is back.
* :func:`complete_within`: an alert delivery in flight when the worker is stopped (SIGTERM)
  runs to its end, delivered-mark included, for up to the shutdown grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from watcher.app.kafka import KafkaConnection

T = TypeVar("T")
log = logging.getLogger("watcher.app")

PROBE_TIMEOUT = 1.0


async def reachable(conn: KafkaConnection, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether any of the connection's bootstrap servers accepts a TCP connection within ``timeout``
    (TCP only: a broker that is back accepts it, whatever its TLS and SASL)."""
    for host, port in conn.hosts:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


class BrokerWatch:
    """Says the broker is away when no tick came for ``stale`` seconds and a probe finds no broker."""

    def __init__(self, conn: KafkaConnection, stale: float) -> None:
        self.conn, self.stale = conn, stale
        self.last_tick = time.monotonic()
        self.away = False

    def saw_tick(self) -> None:
        self.last_tick = time.monotonic()
        self.away = False

    async def check(self) -> bool:
        if time.monotonic() - self.last_tick < self.stale:
            self.away = False
        else:
            away = not await reachable(self.conn)
            if away != self.away:
                log.warning(
                    "broker unreachable: polling this worker's targets without ticks until it is back"
                    if away
                    else "broker reachable again: back to ticks"
                )
            self.away = away
        return self.away


async def complete_within(work: Coroutine[Any, Any, T], grace: float, what: str) -> T:
    """Await ``work`` and return its result; if the caller is cancelled meanwhile (a stopping
    worker), let it finish first, for up to ``grace`` more seconds, then pass the cancellation on."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            log.info("stopping: finishing %s first (up to %.0fs)", what, grace)
            await asyncio.wait({task}, timeout=grace)
            if not task.done():
                log.warning("stopping: %s did not finish within %.0fs; a successor takes it over", what, grace)
                task.cancel()
        raise
