"""The brokers a benchmark runs on: the embedded Tansu broker always, Apache Kafka where it can.

Apache Kafka comes from ``tests/kafka/kafka.py`` (Maven jars cached in ~/.cache/watcher-kafka):
it needs Java 17+, and Maven once to fetch the jars. Where it cannot start, the report says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from watcher.app.broker import EmbeddedBroker


@dataclass(frozen=True)
class Leg:
    """One running broker: ``kind`` "tansu"/"kafka", ``url`` for Faust, ``bootstrap`` for aiokafka."""

    kind: str
    url: str
    bootstrap: str
    server: Any = None

    @property
    def label(self) -> str:
        return {"tansu": "embedded Tansu (memory storage)", "kafka": "Apache Kafka"}.get(self.kind, self.kind) + (
            f" {self.server.version}" if self.kind == "kafka" else ""
        )


@contextmanager
def tansu() -> Iterator[Leg]:
    with EmbeddedBroker() as server:
        yield Leg("tansu", server.url, server.bootstrap, server)


def kafka_unavailable() -> str | None:
    """Why Apache Kafka cannot run here, or None if it can (fetching the jars if needed)."""
    from tests.kafka.kafka import KafkaBroker, KafkaUnavailable

    server = KafkaBroker()
    try:
        server.prepare()
    except KafkaUnavailable as e:
        return e.reason
    finally:
        server.close()  # removes the work dir it made
    return None


@contextmanager
def kafka() -> Iterator[Leg]:
    from tests.kafka.kafka import KafkaBroker

    server = KafkaBroker()
    try:
        server.start()
        yield Leg("kafka", server.url, server.bootstrap, server)
    finally:
        server.close()
