"""``watcher ack|unack|snooze INCIDENT --config FILE``: act on an incident from the command line.

What a click on a Slack card or the status page does, from a terminal: an
:class:`~watcher.events.Action` on ``<prefix>.actions`` keyed by the incident id (``via = "cli"``);
the incident stage applies it (no reminders or escalation while acknowledged or snoozed) and the
card shows who did it. The incident is looked up first in the incidents table's changelog, by its
whole id or by a prefix only it has, so a typo is refused (exit 2) instead of acting on nothing.
"""

from __future__ import annotations

import getpass
import uuid
from datetime import UTC, datetime, timedelta

import msgspec

from watcher import events as ev
from watcher.app.preflight import tool_connection
from watcher.app.topics import changelog_topic, ensure_planned, read_topic
from watcher.config import Config
from watcher.errors import BrokerError, WatcherError

NEEDS = "acting on an incident needs"
_dec = msgspec.json.Decoder(ev.Incident)


def _key(raw: bytes | None) -> str:
    """A table changelog's key: Faust writes str keys as JSON strings."""
    if not raw:
        return ""
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode(errors="replace")
    return value if isinstance(value, str) else raw.decode(errors="replace")


def _incident(raw: bytes | None) -> ev.Incident | None:
    if not raw:
        return None
    try:
        text = msgspec.json.decode(raw)
        return _dec.decode(text if isinstance(text, str) else raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


async def find_incident(config: Config, ref: str) -> ev.Incident:
    """The incident whose id is ``ref``, or the only one whose id starts with it."""
    conn = await tool_connection(config, NEEDS)
    rows = await read_topic(conn, changelog_topic(config, "incidents"),
                            lambda k, v: (_key(k), _incident(v)))  # fmt: skip
    latest: dict[str, ev.Incident | None] = {}
    for key, incident in rows:
        latest[key] = incident
    live = {k: v for k, v in latest.items() if v is not None}
    if ref in live:
        return live[ref]
    hits = sorted(k for k in live if k.startswith(ref))
    if len(hits) == 1:
        return live[hits[0]]
    if hits:
        raise WatcherError(f"{len(hits)} incidents start with {ref!r} ({', '.join(hits[:3])}…): give more of the id")
    raise WatcherError(f"no incident {ref!r} (ids are in the messages, on the status page and in `watcher explain`)")


async def act(config: Config, ref: str, kind: ev.ActionKind, *, by: str | None = None,
              until: datetime | None = None, comment: str = "") -> tuple[ev.Incident, ev.Action]:  # fmt: skip
    """Publish ``kind`` on the incident ``ref`` names; the incident and the action."""
    incident = await find_incident(config, ref)
    action = ev.Action(id=uuid.uuid4().hex, incident=incident.id, kind=kind, by=by or getpass.getuser(),
                       at=datetime.now(UTC), via="cli", until=until, comment=comment)  # fmt: skip
    conn = await tool_connection(config, NEEDS)
    topic = f"{config.broker.topic_prefix}.actions"
    await ensure_planned(conn, config, topic)
    producer = conn.producer(acks="all")
    try:
        await producer.start()
        await producer.send_and_wait(topic, ev.encode(action), key=incident.id.encode())
    except Exception as e:  # KafkaError and its kin: one line
        raise BrokerError(f"cannot publish the action to {conn.bootstrap}: {e}") from e
    finally:
        await producer.stop()
    return incident, action


def snooze_until(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
