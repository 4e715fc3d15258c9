"""Every Kafka client watcher opens is made here, from ``[broker]``: one place for TLS and SASL.

Where it sits: between :mod:`watcher.config` (the ``[broker]`` table) and every part of ``app/``
that talks to Kafka. :func:`connection` turns the config into a :class:`KafkaConnection`; the
Faust app takes :func:`faust_settings` of it, and everything else (the topic tools in
:mod:`watcher.app.topics`, the silence and inhibition readers, ``dlq``, ``explain``, ``track``,
the outage probe, the test harness) opens its aiokafka producers, consumers and admin clients
through the connection's :meth:`~KafkaConnection.producer`, :meth:`~KafkaConnection.consumer`
and :meth:`~KafkaConnection.admin`. No module builds a client from a bare address, so no tool
connects in plaintext by accident.

May import: :mod:`watcher.config`, :mod:`watcher.errors`, :mod:`watcher.logs`, ``ssl``;
aiokafka and Faust lazily (a config check need not load them).

The SASL password is read from the environment variable ``[broker] sasl_password_env`` names,
when the connection is made. It lives in the connection object only (never in its repr), is
handed to aiokafka and Faust (whose ``SASLCredentials`` repr leaves it out too), and is
registered with :func:`watcher.logs.redact`, so even a library that logs it at DEBUG prints
``******``.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any

from watcher.config import Config, broker_hosts, config_error, resolve_path
from watcher.errors import BrokerError, ConfigError
from watcher.logs import redact

MASK = "******"


@dataclass(frozen=True, eq=False)
class KafkaConnection:
    """How to reach one Kafka cluster: its bootstrap servers and the security to use on them."""

    bootstrap: str  # host:port[,host:port...]
    security_protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    password_env: str | None = None  # where the password came from, for messages

    @classmethod
    def plaintext(cls, bootstrap: str) -> KafkaConnection:
        """An unauthenticated, unencrypted connection: the embedded broker, tests, benchmarks."""
        return cls(bootstrap=bootstrap)

    @property
    def hosts(self) -> list[tuple[str, int]]:
        return broker_hosts(self.bootstrap if "://" in self.bootstrap else f"kafka://{self.bootstrap}")

    @property
    def url(self) -> str:
        """What Faust's ``broker`` setting takes: ``kafka://h1:9092;h2:9092``."""
        return "kafka://" + ";".join(f"{h}:{p}" for h, p in self.hosts)

    def describe(self) -> str:
        """The security in a few words, for messages: ``SASL_SSL, SCRAM-SHA-512 as 'watcher'``."""
        out = self.security_protocol
        if self.sasl_mechanism:
            out += f", {self.sasl_mechanism} as {self.sasl_username!r}"
        return out

    def client_kwargs(self) -> dict[str, Any]:
        """The connection settings of an aiokafka ``AIOKafkaProducer``/``Consumer``/``AdminClient``."""
        kw: dict[str, Any] = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        if self.ssl_context is not None:
            kw["ssl_context"] = self.ssl_context
        if self.sasl_mechanism:
            kw.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                      sasl_plain_password=self.sasl_password)  # fmt: skip
        return kw

    def producer(self, **kw: Any) -> Any:
        from aiokafka import AIOKafkaProducer

        return AIOKafkaProducer(**self.client_kwargs(), **kw)

    def consumer(self, *topics: str, **kw: Any) -> Any:
        from aiokafka import AIOKafkaConsumer

        return AIOKafkaConsumer(*topics, **self.client_kwargs(), **kw)

    def admin(self, **kw: Any) -> Any:
        from aiokafka.admin import AIOKafkaAdminClient

        return AIOKafkaAdminClient(**self.client_kwargs(), **kw)

    def __repr__(self) -> str:
        password = f", password={MASK} (from ${self.password_env})" if self.sasl_password is not None else ""
        return f"KafkaConnection({self.bootstrap}, {self.describe()}{password})"

    __str__ = __repr__


def connection(config: Config, url: str | None = None) -> KafkaConnection:
    """The connection ``config`` describes (``url``: another address, e.g. the embedded broker's).

    Raises ConfigError (file, key, line) for what only shows when connecting: a CA or key file
    that is not PEM, a certificate that does not match its key, the password variable unset.
    """
    b = config.broker
    target = url or b.url
    if not target:
        raise BrokerError("no [broker] url: the embedded broker is started by `watcher run`")
    try:
        bootstrap = ",".join(f"{h}:{p}" for h, p in broker_hosts(target))
    except ValueError as e:
        raise config_error(config, "broker.url", str(e)) from None
    context = _ssl_context(config) if b.uses_tls else None
    if not b.uses_sasl:
        return KafkaConnection(bootstrap, b.security_protocol, context)
    password = os.environ.get(b.sasl_password_env, "")
    if not password:
        raise config_error(config, "broker.sasl_password_env", f"the environment variable {b.sasl_password_env} "
                           "is not set: the SASL password comes from the environment only")  # fmt: skip
    redact(password)
    return KafkaConnection(bootstrap, b.security_protocol, context, b.sasl_mechanism, b.sasl_username, password,
                           b.sasl_password_env)  # fmt: skip


def _ssl_context(config: Config) -> ssl.SSLContext:
    """aiokafka's context (hostname checks on, TLS 1.2+, the system's CAs unless ``ssl_cafile``)."""
    from aiokafka.helpers import create_ssl_context

    b = config.broker

    def path(key: str) -> str | None:
        value = getattr(b, key)
        return str(resolve_path(config.path, value)) if value else None

    try:
        context = create_ssl_context(cafile=path("ssl_cafile"))
    except (OSError, ssl.SSLError, ValueError) as e:
        raise _file_error(config, "ssl_cafile", e) from None
    if b.ssl_certfile:
        try:
            context.load_cert_chain(path("ssl_certfile"), keyfile=path("ssl_keyfile"), password=_no_password)
        except (OSError, ssl.SSLError, ValueError, TypeError) as e:
            raise _file_error(config, "ssl_keyfile" if b.ssl_keyfile else "ssl_certfile", e) from None
    if not b.ssl_check_hostname:  # the certificate is still verified against the CA; only the name is not
        context.check_hostname = False
    return context


def _no_password() -> str:
    raise ValueError("the key is encrypted: give an unencrypted key (a key password would be a secret in the file)")


def _file_error(config: Config, key: str, e: Exception) -> ConfigError:
    reason = getattr(e, "strerror", None) or getattr(e, "reason", None) or str(e)
    return config_error(config, f"broker.{key}", f"cannot use {getattr(config.broker, key)!r}: {reason}")


def faust_settings(conn: KafkaConnection) -> dict[str, Any]:
    """Faust's ``broker`` and ``broker_credentials`` for the same connection (Faust 0.15.3).

    Faust hands ``broker_credentials`` to each aiokafka client it opens (consumer, producer, the
    topic creation), as ``faust.transport.drivers.aiokafka.credentials_to_aiokafka_auth``.
    """
    import faust

    settings: dict[str, Any] = {"broker": conn.url}
    if conn.sasl_mechanism:
        settings["broker_credentials"] = faust.SASLCredentials(
            username=conn.sasl_username, password=conn.sasl_password, ssl_context=conn.ssl_context,
            mechanism=conn.sasl_mechanism,
        )  # fmt: skip
    elif conn.ssl_context is not None:
        settings["broker_credentials"] = faust.SSLCredentials(conn.ssl_context)
    return settings


def bootstrap_string(config: Config) -> str:
    """``host:port[,host:port...]`` of the configured cluster (no connection made)."""
    try:
        return config.broker.bootstrap()
    except ValueError as e:
        raise config_error(config, "broker.url", str(e)) from None
