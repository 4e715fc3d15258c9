"""Routing notifications to channels by tag: which targets hear a notification.

A notification reaches the channels whose tags meet its own: the escalation step's tags when it
has them, else its incident's (the rule's ``notify``), else ``[notify] default_tags``, else
(none set) every channel: the root route always has a receiver. A channel tagged ``always``
hears everything (Apprise's own convention). An ``editable`` notification (an
update that is no new failure) reaches only the channels that edit a sent message in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from watcher.events import Notification
from watcher.notify.apprise_channel import AppriseChannel
from watcher.notify.channel import Channel, routes_to


class Channels:
    """Every configured channel, and the routing over them."""

    def __init__(self, notifier: object, extra: Sequence[Channel] = (), paces: dict[str, float] | None = None) -> None:
        self.notifier = notifier
        own = {c.id for c in extra}  # threaded mail replaces the plain Apprise mail of the same target
        targets = [t for t in getattr(notifier, "targets", ()) if t.id not in own]
        self.channels: list[Channel] = [AppriseChannel(t, notifier, (paces or {}).get(t.id)) for t in targets]
        self.channels += list(extra)
        self.default_tags: tuple[str, ...] = tuple(getattr(getattr(notifier, "config", None), "default_tags", ()))

    def __iter__(self) -> Iterable[Channel]:  # type: ignore[override]
        return iter(self.channels)

    def by_id(self, channel_id: str) -> Channel | None:
        return next((c for c in self.channels if c.id == channel_id), None)

    def find(self, tags: Iterable[str]) -> list[Channel]:
        wanted = tuple(tags)
        return [c for c in self.channels if routes_to(c, wanted)]

    def wanted(self, notification: Notification) -> tuple[str, ...]:
        return notification.tags or notification.incident.tags or self.default_tags

    def route(self, notification: Notification) -> list[Channel]:
        wanted = self.wanted(notification)
        hits = self.find(wanted) if wanted else list(self.channels)  # the root route reaches every target
        if notification.audience == "editable":
            hits = [c for c in hits if c.editable]
        return hits

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
