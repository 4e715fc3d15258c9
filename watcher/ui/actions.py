"""What the status page's buttons do: the same records the CLI and the chat buttons write.

* Acknowledge / Unacknowledge / Snooze: an :class:`~watcher.events.Action` on ``P.actions``,
  keyed by the incident id (the incident stage applies it; ``via = "ui"``).
* Silence similar: a run-time silence for the incident's rule and job type(s), published with
  :func:`watcher.app.silences.publish` (what ``watcher silence add`` does), then a ``silence``
  action naming it, so the incident's audit trail shows who silenced it. The silence is the one
  the incident stage makes of that action (:func:`watcher.rules.silence.similar_silence`, same id,
  times and origin), so the stage writing it again changes nothing; published first, it mutes
  even while the worker that owns the incident is away.
* Replay from DLQ: :func:`watcher.app.dlq.replay` of the incident's dead letters (what
  ``watcher dlq replay --key`` does: each is delivered once, to the targets that have not
  accepted it).
* Create / expire a silence: :func:`watcher.app.silences.publish` of a new or ended silence.

Every effect goes through the worker's :class:`~watcher.app.kafka.KafkaConnection` (its TLS and
SASL settings) and creates or checks the topic it writes as ``watcher topics plan`` says
(:func:`watcher.app.topics.ensure_planned`). Pure helpers (:func:`similar_match`,
:func:`similar`, :func:`new_action`) plus thin async effects; imports the app's topic tools,
the event contract and the silence rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from watcher import events as ev
from watcher.app import dlq
from watcher.app import silences as silence_feed
from watcher.app.kafka import KafkaConnection
from watcher.config import Config
from watcher.errors import BrokerError
from watcher.rules import silence as rules_silence
from watcher.rules.silence import Silence, expire, new_silence


def actions_topic(config: Config) -> str:
    return f"{config.broker.topic_prefix}.actions"


def similar_match(incident: ev.Incident) -> str:
    """The CEL match of "Silence similar": this rule and the job type(s) of the incident's jobs."""
    return rules_silence.similar_match(incident.rule, (j.job_type for j in incident.jobs))


def similar(incident: ev.Incident, by: str, now: datetime, hours: float) -> Silence:
    """The silence "Silence similar" makes: what the incident stage makes of the ``silence`` action."""
    silence = rules_silence.similar_silence(incident, id=uuid.uuid4().hex[:12], by=by, at=now,
                                            until=now + timedelta(hours=hours))  # fmt: skip
    return msgspec.structs.replace(silence, origin="ui")


def new_action(incident: str, kind: ev.ActionKind, by: str, now: datetime, *, until: datetime | None = None,
               silence_id: str | None = None, comment: str = "") -> ev.Action:  # fmt: skip
    return ev.Action(id=uuid.uuid4().hex, incident=incident, kind=kind, by=by, at=now, via="ui", until=until,
                     silence_id=silence_id, comment=comment)  # fmt: skip


async def publish_action(config: Config, conn: KafkaConnection, action: ev.Action) -> None:
    from aiokafka.errors import KafkaError

    from watcher.app.topics import ensure_planned

    await ensure_planned(conn, config, actions_topic(config))
    producer = conn.producer(acks="all")
    try:
        await producer.start()
        await producer.send_and_wait(actions_topic(config), ev.encode(action), key=action.incident.encode())
    except KafkaError as e:
        raise BrokerError(f"cannot publish the action to {conn.bootstrap}: {e}") from e
    finally:
        await producer.stop()


async def silence_similar(config: Config, conn: KafkaConnection, incident: ev.Incident, by: str, hours: float,
                          now: datetime) -> Silence:  # fmt: skip
    silence = similar(incident, by, now, hours)
    await silence_feed.publish(config, silence, conn)
    await publish_action(config, conn, new_action(incident.id, "silence", by, now, until=silence.ends,
                                                  silence_id=silence.id))  # fmt: skip
    return silence


async def snooze(config: Config, conn: KafkaConnection, incident: str, by: str, hours: float,
                 now: datetime) -> ev.Action:  # fmt: skip
    action = new_action(incident, "snooze", by, now, until=now + timedelta(hours=hours))
    await publish_action(config, conn, action)
    return action


async def create_silence(config: Config, conn: KafkaConnection, match: str, duration: str | None, comment: str,
                         by: str, now: datetime) -> Silence:  # fmt: skip
    """A new run-time silence; raises RuleError (line:col in the match) before publishing a bad one."""
    silence = msgspec.structs.replace(new_silence(match, now, duration=duration or None, comment=comment,
                                                  created_by=by), origin="ui")  # fmt: skip
    await silence_feed.publish(config, silence, conn)
    return silence


async def expire_silence(config: Config, conn: KafkaConnection, silence: Silence, now: datetime) -> Silence:
    ended = expire(silence, now)
    await silence_feed.publish(config, ended, conn)
    return ended


async def replay(config: Config, conn: KafkaConnection, keys: Sequence[str]) -> int:
    """Replay the dead letters ``keys`` name; how many went (a no_route one still unroutable stays)."""
    if not keys:
        return 0
    count, _refused = await dlq.replay(config, keys, conn=conn)
    return count
