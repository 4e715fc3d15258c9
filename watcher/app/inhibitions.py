"""Inhibitions on ``<topic_prefix>.inhibitions``, shared by every worker.

A burst, share or parent-job alert of a rule with ``inhibits:`` mutes the alerts it covers
(:mod:`watcher.rules.inhibit` decides what, for how long). The worker whose stage fired the
source alert publishes each inhibition it starts, extends or ends; every worker reads the
whole topic (no consumer group, as for silences, with the same follower) and honours all
of them, whichever partitions it owns. Record format: key = :attr:`Inhibition.id`, value =
an :class:`~watcher.rules.inhibit.Inhibition` as JSON; the latest record of an id wins, so
ending one is publishing it again with ``until`` set to now.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import msgspec

from watcher.config import Config
from watcher.events import Alert
from watcher.rules import inhibit
from watcher.rules.compile import CompiledRule
from watcher.rules.inhibit import Inhibition

log = logging.getLogger("watcher.app")

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Inhibition)


def topic_name(config: Config) -> str:
    return f"{config.broker.topic_prefix}.inhibitions"


def encode(inhibition: Inhibition) -> bytes:
    return _enc.encode(inhibition)


class InhibitionBook:
    """The inhibitions one worker honours (latest record per id); fed by :func:`silences.follow`."""

    what = "inhibition"

    def __init__(self) -> None:
        self.runtime: dict[str, Inhibition] = {}
        self.ready = asyncio.Event()  # set once the topic has been read to its end

    def all(self) -> list[Inhibition]:
        return list(self.runtime.values())

    def apply(self, raw: bytes | None) -> None:
        if not raw:
            return
        try:
            self.put(_dec.decode(raw))
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            log.warning("ignored a malformed inhibition: %s", e)

    def put(self, inhibition: Inhibition) -> None:
        self.runtime[inhibition.id] = inhibition

    def started(self, rule: CompiledRule, alert: Alert, now: datetime) -> list[Inhibition]:
        """What ``alert`` starts, extends or (a resolved stuck alert) ends: the records to publish."""
        return self._changes(inhibit.apply(self.runtime, rule, alert, now), now)

    def extended(self, source: str, until: datetime, now: datetime) -> list[Inhibition]:
        """``source`` keeps matching: its inhibitions last until ``until`` (records to publish)."""
        return self._changes(inhibit.extend(self.runtime, source, until), now)

    def prune(self, now: datetime) -> None:
        """Forget what has ended (a later record of the same id would bring it back)."""
        self.runtime = inhibit.prune(self.runtime, now)

    def _changes(self, after: dict[str, Inhibition], now: datetime) -> list[Inhibition]:
        before = self.runtime
        out = [v for k, v in after.items() if before.get(k) != v]
        out += [msgspec.structs.replace(v, until=now) for k, v in before.items() if k not in after]
        for i in out:  # this worker honours them at once, before the topic brings them back
            self.put(i)
        return out
