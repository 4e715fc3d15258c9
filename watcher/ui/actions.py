"""What the status page's buttons do: the same records the CLI and the chat buttons write.

* Acknowledge / Unacknowledge / Snooze: an :class:`~watcher.events.Action` on ``P.actions``,
  keyed by the incident id (the incident stage applies it; ``via = "ui"``).
* Silence similar: a run-time silence for the incident's rule and job type, published with
  :func:`watcher.app.silences.publish` (what ``watcher silence add`` does), then a
  ``silence`` action naming it, so the incident's audit trail shows who silenced it.
* Replay from DLQ: :func:`watcher.app.dlq.replay` of the incident's dead letters (what
  ``watcher dlq replay --key`` does: each is delivered once, to the targets that have not
  accepted it).
* Create / expire a silence: :func:`watcher.app.silences.publish` of a new or ended silence.

Pure helpers (:func:`similar_match`, :func:`new_action`) plus thin async effects; imports the
app's topic tools, the event contract and the silence rules.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from watcher import events as ev
from watcher.app import dlq
from watcher.app import silences as silence_feed
from watcher.config import Config
from watcher.errors import BrokerError
from watcher.rules.silence import Silence, expire, new_silence


def actions_topic(config: Config) -> str:
    return f"{config.broker.topic_prefix}.actions"


def similar_match(incident: ev.Incident) -> str:
    """The CEL match of "Silence similar": this rule and this job type (when the incident knows one)."""
    job_type = next((j.job_type for j in incident.jobs if j.job_type), "")
    if not job_type and incident.last_alert is not None:
        job_type = incident.last_alert.event.job_type
    match = f"rule == {json.dumps(incident.rule)}"
    return f"{match} && job_type == {json.dumps(job_type)}" if job_type else match


def new_action(incident: str, kind: ev.ActionKind, by: str, now: datetime, *, until: datetime | None = None,
               silence_id: str | None = None, comment: str = "") -> ev.Action:  # fmt: skip
    return ev.Action(id=uuid.uuid4().hex, incident=incident, kind=kind, by=by, at=now, via="ui", until=until,
                     silence_id=silence_id, comment=comment)  # fmt: skip


async def publish_action(config: Config, action: ev.Action) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    from watcher.app.topics import ensure_topics

    bootstrap = config.broker.url.split("://", 1)[-1]
    await ensure_topics(bootstrap, {actions_topic(config): config.broker.partitions})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        await producer.start()
        await producer.send_and_wait(actions_topic(config), ev.encode(action), key=action.incident.encode())
    except KafkaError as e:
        raise BrokerError(f"cannot publish the action to {bootstrap}: {e}") from e
    finally:
        await producer.stop()


async def silence_similar(config: Config, incident: ev.Incident, by: str, hours: float, now: datetime) -> Silence:
    silence = new_silence(similar_match(incident), now, duration=f"{int(hours * 3600)}s",
                          comment=f"silence similar to incident {incident.id}", created_by=by)  # fmt: skip
    await silence_feed.publish(config, silence)
    await publish_action(config, new_action(incident.id, "silence", by, now, until=silence.ends, silence_id=silence.id))
    return silence


async def snooze(config: Config, incident: str, by: str, hours: float, now: datetime) -> ev.Action:
    action = new_action(incident, "snooze", by, now, until=now + timedelta(hours=hours))
    await publish_action(config, action)
    return action


async def create_silence(config: Config, match: str, duration: str | None, comment: str, by: str,
                         now: datetime) -> Silence:  # fmt: skip
    """A new run-time silence; raises RuleError (line:col in the match) before publishing a bad one."""
    silence = new_silence(match, now, duration=duration or None, comment=comment, created_by=by)
    await silence_feed.publish(config, silence)
    return silence


async def expire_silence(config: Config, silence: Silence, now: datetime) -> Silence:
    ended = expire(silence, now)
    await silence_feed.publish(config, ended)
    return ended


async def replay(config: Config, keys: Sequence[str]) -> int:
    return await dlq.replay(config, keys) if keys else 0
