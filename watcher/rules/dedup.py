"""Dedup and repeat: an alert key is sent once, or again only after its rule's ``repeat``.

Keys already say what "the same alert" is: a status change (rule + job + transition), a
stuck episode (rule + job + since), a burst episode (rule + group + start), a share (rule
+ parent). So the decision is one function, :func:`should_send`:

* never sent → send;
* a resolved notice, or a rule without ``repeat`` (every status-change rule) → never again;
* otherwise → again once ``repeat`` has passed since the last send.

A repeat goes out under ``KEY#2``, ``KEY#3``… so the notifier's own delivery marks (by
alert key) do not swallow it. State: one :class:`Sent` per key (table keyed by alert key);
:func:`prune` drops keys nobody will send again. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import msgspec

from watcher.duration import format_duration
from watcher.events import Alert

#: How long a key is remembered after its last send when nothing can repeat it.
KEEP = timedelta(days=7)


class Sent(msgspec.Struct, frozen=True, kw_only=True):
    """When a key was first and last let through, and how often."""

    first: datetime
    last: datetime
    sends: int = 1


def should_send(
    key: str, kind: str, last_sent: datetime | None, repeat: float | None, now: datetime
) -> tuple[bool, str]:
    """(send?, why): the whole dedup/repeat policy; the reason is a log line and a metric label."""
    if last_sent is None:
        return True, "first"
    ago = format_duration(max(0.0, (now - last_sent).total_seconds()))
    if kind == "resolved" or repeat is None:
        return False, f"{key} already sent {ago} ago (no repeat)"
    if (now - last_sent).total_seconds() >= repeat:
        return True, "repeat"
    return False, f"{key} sent {ago} ago; repeat every {format_duration(repeat)}"


def admit(
    state: Sent | None, alert: Alert, repeat: float | None, now: datetime
) -> tuple[Sent | None, Alert | None, str]:
    """Apply :func:`should_send` to ``alert``: (new state, the alert to pass on or None, why)."""
    ok, why = should_send(alert.key, alert.kind, state.last if state else None, repeat, now)
    if not ok:
        return state, None, why
    if state is None:
        return Sent(first=now, last=now), alert, why
    sends = state.sends + 1
    return (
        Sent(first=state.first, last=now, sends=sends),
        msgspec.structs.replace(alert, key=f"{alert.key}#{sends}"),
        why,
    )


def prune(states: Mapping[str, Sent], now: datetime, keep: timedelta = KEEP) -> dict[str, Sent]:
    """The entries sent within ``keep``: older keys belong to jobs long finished."""
    return {k: v for k, v in states.items() if now - v.last < keep}
