"""Before watcher uses a broker: can it connect, do TLS, authenticate, see its topics and group?

Where it sits: between the CLI (and :mod:`watcher.app.runner`) and the Kafka clients of
:mod:`watcher.app.kafka`. aiokafka, failing to bootstrap, says only "Unable to bootstrap from
[...]" after its request timeout (40 s) and logs the cause; so before a tool or a worker
opens its clients, :func:`reach` makes one connection per bootstrap server itself — TCP, TLS
handshake, ApiVersions, SASL, one Metadata request — within :data:`CHECK_TIMEOUT` seconds,
and :func:`explain` turns whatever failed into one line: unreachable (and why), TLS handshake
failed (untrusted CA, hostname mismatch, not a TLS port), authentication failed, a listener
that wants TLS or SASL. :func:`check_broker` (``watcher config check --broker``) goes on to
ask for the deployment's topics and consumer group: topic or group authorization failed,
topics missing or of the wrong size.

May import: :mod:`watcher.app.kafka`, :mod:`watcher.app.topics`, :mod:`watcher.config`,
:mod:`watcher.errors`; aiokafka lazily.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Sequence
from typing import Any

from watcher.app.kafka import KafkaConnection, connection
from watcher.app.topics import TopicSpec, ensure_topics, topic_specs
from watcher.config import Config
from watcher.errors import BrokerError

log = logging.getLogger("watcher.app")

#: How long one connection attempt (TCP, TLS, SASL, one request) may take before "no answer".
CHECK_TIMEOUT = 5.0
#: How long ``watcher run`` waits for an unreachable broker to come up (a broker that answers
#: but refuses TLS or the password fails at once: waiting would not change that).
RUN_WAIT = 30.0

_HOSTNAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_UNTRUSTED = {2, 18, 19, 20, 21}  # no issuer cert / self-signed / self-signed in chain / no local issuer / leaf
_TOPIC_AUTHORIZATION_FAILED, _GROUP_AUTHORIZATION_FAILED, _UNKNOWN_TOPIC = 29, 30, 3


class Unreachable(BrokerError):
    """No bootstrap server could be used; ``reason`` is the one-line why, ``retryable`` whether
    waiting could help (nothing listening yet) or not (TLS, authentication)."""

    def __init__(self, bootstrap: str, reason: str, retryable: bool) -> None:
        self.bootstrap, self.reason, self.retryable = bootstrap, reason, retryable
        super().__init__(f"cannot reach the broker at {bootstrap} ({reason})")


def explain(e: BaseException, conn: KafkaConnection, host: str, timeout: float = CHECK_TIMEOUT) -> tuple[str, bool]:
    """(one-line reason, whether retrying may help) for a failed connection attempt to ``host``."""
    from aiokafka import errors

    proto = conn.security_protocol
    if isinstance(e, ssl.SSLCertVerificationError):
        message = e.verify_message or e.reason or str(e)
        if e.verify_code in _HOSTNAME_MISMATCH:
            return (f"TLS handshake failed: the broker's certificate is not valid for {host!r} (hostname mismatch; "
                    "connect by a name the certificate lists)", False)  # fmt: skip
        if e.verify_code in _UNTRUSTED:
            return (f"TLS handshake failed: the broker's certificate is not signed by a trusted CA ({message}; "
                    "set [broker] ssl_cafile to the CA that signed it)", False)  # fmt: skip
        return f"TLS handshake failed: {message}", False
    if isinstance(e, ssl.SSLError):
        reason = (e.reason or str(e)).replace("_", " ").lower()
        if "wrong version number" in reason or "record layer failure" in reason or "packet length" in reason:
            return f"TLS handshake failed: the port does not speak TLS ({reason}; is it a PLAINTEXT listener?)", False
        if "unknown ca" in reason or "certificate required" in reason or "bad certificate" in reason:
            return (f"TLS handshake failed: the broker refused the client certificate ({reason}; "
                    "ssl_certfile / ssl_keyfile)", False)  # fmt: skip
        return f"TLS handshake failed: {reason}", False
    if isinstance(e, errors.SaslAuthenticationFailed):
        text = str(e).split("SaslAuthenticationFailed: ", 1)[-1]
        return f"authentication failed ({conn.sasl_mechanism} as {conn.sasl_username!r}): {text}", False
    if isinstance(e, errors.UnsupportedSaslMechanismError):
        return f"authentication failed: {e}", False
    if isinstance(e, errors.IllegalSaslStateError):
        return (f"the listener does not do SASL (security_protocol = {proto}): is it a PLAINTEXT or SSL "
                "listener?", False)  # fmt: skip
    if isinstance(e, errors.KafkaConnectionError) and "closed" in str(e):
        if proto == "PLAINTEXT":
            return ("the broker closed the connection: the listener may expect TLS or SASL "
                    "(security_protocol = PLAINTEXT)", False)  # fmt: skip
        if proto == "SSL":
            return ("the broker closed the connection after the TLS handshake: the listener may expect SASL "
                    "(security_protocol = SSL)", False)  # fmt: skip
        return "the broker closed the connection", True
    if isinstance(e, ConnectionResetError) and proto in ("SSL", "SASL_SSL"):
        return (f"TLS handshake failed: the broker reset the connection (is it a PLAINTEXT listener? "
                f"security_protocol = {proto})", False)  # fmt: skip
    if isinstance(e, ConnectionRefusedError):
        return "connection refused", True
    if isinstance(e, socket.gaierror):
        return f"cannot resolve {host!r}", True
    if isinstance(e, TimeoutError | asyncio.TimeoutError):
        return f"no answer within {timeout:g}s", True
    if isinstance(e, OSError):
        return e.strerror or type(e).__name__, True
    return str(e) or type(e).__name__, True


async def _connect(conn: KafkaConnection, host: str, port: int, timeout: float) -> Any:
    """One authenticated connection to ``host:port`` that has answered a Metadata request."""
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    kw = conn.client_kwargs()
    kw.pop("bootstrap_servers")
    c = await create_conn(host, port, client_id="watcher-check", request_timeout_ms=int(timeout * 1000), **kw)
    try:
        # A listener that wants SASL answers ApiVersions to anyone and closes on the next request.
        await c.send(MetadataRequest([], allow_auto_topic_creation=False))
    except BaseException:
        c.close()
        raise
    return c


async def reach(conn: KafkaConnection, timeout: float = CHECK_TIMEOUT) -> Any:
    """An open, authenticated connection to the first bootstrap server that takes one (close it
    when done), or :class:`Unreachable` with every server's reason."""
    reasons: list[tuple[str, str, bool]] = []
    for host, port in conn.hosts:
        try:
            return await asyncio.wait_for(_connect(conn, host, port, timeout), timeout)
        except Exception as e:  # OSError, TimeoutError, ssl and aiokafka errors: explain() sorts them
            reason, retry = explain(e, conn, host, timeout)
            log.debug("cannot use %s:%d: %s", host, port, reason)
            reasons.append((f"{host}:{port}", reason, retry))
    distinct = {r for _, r, _ in reasons}
    text = reasons[0][1] if len(distinct) == 1 else "; ".join(f"{a}: {r}" for a, r, _ in reasons)
    raise Unreachable(conn.bootstrap, text, all(retry for *_, retry in reasons))


async def tool_connection(config: Config, needs: str) -> KafkaConnection:
    """The connection a CLI tool uses, checked first: BrokerError says in one line why not.

    ``needs``: how the message starts when there is no ``[broker] url`` ("`watcher track` needs").
    """
    if not config.broker.url:
        raise BrokerError(f"{needs} a [broker] url: the embedded broker lives inside `watcher run`")
    conn = connection(config)
    (await reach(conn)).close()
    return conn


async def prepare_for_run(conn: KafkaConnection, config: Config, extra: dict[str, int] | None = None) -> None:
    """What ``watcher run`` does before Faust starts: wait (up to :data:`RUN_WAIT`) for a broker
    that is not up yet, fail at once on TLS or authentication, then create the topics
    (``create_topics``) or check them. ``extra``: topics the app declares that
    :func:`topic_specs` does not list (a WARNING each: the plan is missing them)."""
    deadline = time.monotonic() + RUN_WAIT
    while True:
        try:
            (await reach(conn)).close()
            break
        except Unreachable as e:
            if not e.retryable or time.monotonic() >= deadline:
                raise
            log.warning("%s; trying again", e)
            await asyncio.sleep(1.0)
    specs = topic_specs(config)
    known = {s.name for s in specs}
    for name, n in (extra or {}).items():
        if name not in known:
            log.warning("the app uses topic %s, which `watcher topics plan` does not list", name)
            specs.append(TopicSpec(name, n))
    await ensure_topics(conn, specs, create=config.broker.create_topics, replication=config.broker.replication_factor,
                        plan=f"watcher topics plan --config {config.path or 'FILE'}")


async def check_broker(config: Config, timeout: float = CHECK_TIMEOUT) -> str:
    """``watcher config check --broker``: one line saying the broker is usable (what was
    checked), or BrokerError with one line saying what failed."""
    from aiokafka.protocol.coordination import FindCoordinatorRequest
    from aiokafka.protocol.metadata import MetadataRequest

    if not config.broker.url:
        raise BrokerError("no [broker] url: the embedded broker starts inside `watcher run`, there is nothing to check")
    conn = connection(config)
    specs = topic_specs(config)
    c = await reach(conn, timeout)
    try:
        meta = await asyncio.wait_for(c.send(MetadataRequest([s.name for s in specs], allow_auto_topic_creation=False)),
                                      timeout)  # fmt: skip
        found = {t[1]: (t[0], t[-1]) for t in meta.topics}  # name -> (error code, partitions)
        group = config.app.id
        coordinator = await asyncio.wait_for(c.send(FindCoordinatorRequest(group, 0)), timeout)
    except Exception as e:  # the connection broke or timed out between requests
        raise Unreachable(conn.bootstrap, explain(e, conn, conn.hosts[0][0], timeout)[0], False) from e
    finally:
        c.close()
    where = f"the broker at {conn.bootstrap} ({conn.describe()})"
    plan = f"watcher topics plan --config {config.path or 'FILE'}"
    denied = [s.name for s in specs if found.get(s.name, (_UNKNOWN_TOPIC,))[0] == _TOPIC_AUTHORIZATION_FAILED]
    if denied:
        raise BrokerError(f"{where}: topic authorization failed for {_names(denied)}: grant the ACLs "
                          f"`{plan}` prints")  # fmt: skip
    if coordinator.error_code == _GROUP_AUTHORIZATION_FAILED:
        raise BrokerError(f"{where}: group authorization failed for consumer group {group!r} ([app] id): grant the "
                          f"ACLs `{plan}` prints")  # fmt: skip
    missing = [s.name for s in specs if found.get(s.name, (_UNKNOWN_TOPIC,))[0] == _UNKNOWN_TOPIC]
    wrong = [f"{s.name} has {len(found[s.name][1])} partitions, want {s.partitions}" for s in specs
             if s.name in found and not found[s.name][0] and len(found[s.name][1]) != s.partitions]  # fmt: skip
    if wrong or (missing and not config.broker.create_topics):
        problems = [*(f"missing {n}" for n in missing), *wrong]
        raise BrokerError(f"{where}: {len(problems)} topic(s) missing or wrong: {'; '.join(problems)} (create them as "
                          f"`{plan}` prints)")  # fmt: skip
    present = len(specs) - len(missing)
    tail = f", {len(missing)} created by `watcher run` (create_topics = true)" if missing else ""
    return f"{where}: ok (authenticated; consumer group {group!r} allowed; {present} of {len(specs)} topics present{tail})"


def _names(names: Sequence[str], limit: int = 5) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
