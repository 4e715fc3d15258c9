"""watcher.app.preflight: why a broker cannot be used, in one line; the CLI tools say it at once (issue 12 item 5).

The reasons for real TLS and SASL failures are proven on a SASL_SSL Apache Kafka in
tests/integration/test_secure_kafka.py; here: the mapping from each failure to its line, and
every tool that talks to the broker against a port where nothing listens.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import errors

from watcher.app.broker import free_port
from watcher.app.kafka import KafkaConnection
from watcher.app.preflight import Unreachable, explain, reach

ROOT = Path(__file__).resolve().parents[2]
PLAIN = KafkaConnection.plaintext("k1:9093")
SASL_SSL = KafkaConnection("k1:9093", "SASL_SSL", ssl.create_default_context(), "SCRAM-SHA-512", "watcher", "pw-x")
SSL_ONLY = KafkaConnection("k1:9093", "SSL", ssl.create_default_context())


def cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    e = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    e.verify_code, e.verify_message = code, message
    return e


def ssl_error(reason: str) -> ssl.SSLError:
    e = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower().replace('_', ' ')}")
    e.reason = reason
    return e


CASES = [
    ("untrusted CA", SASL_SSL, cert_error(20, "unable to get local issuer certificate"),
     "TLS handshake failed: the broker's certificate is not signed by a trusted CA (unable to get local issuer "
     "certificate; set [broker] ssl_cafile to the CA that signed it)", False),
    ("self-signed", SASL_SSL, cert_error(18, "self-signed certificate"),
     "TLS handshake failed: the broker's certificate is not signed by a trusted CA (self-signed certificate; set "
     "[broker] ssl_cafile to the CA that signed it)", False),
    ("hostname mismatch", SASL_SSL, cert_error(62, "Hostname mismatch, certificate is not valid for 'k1'."),
     "TLS handshake failed: the broker's certificate is not valid for 'k1' (hostname mismatch; connect by a name "
     "the certificate lists)", False),
    ("expired", SASL_SSL, cert_error(10, "certificate has expired"), "TLS handshake failed: certificate has expired",
     False),
    ("not a TLS port", SSL_ONLY, ssl_error("WRONG_VERSION_NUMBER"),
     "TLS handshake failed: the port does not speak TLS (wrong version number; is it a PLAINTEXT listener?)", False),
    ("client certificate refused", SSL_ONLY, ssl_error("TLSV1_ALERT_UNKNOWN_CA"),
     "TLS handshake failed: the broker refused the client certificate (tlsv1 alert unknown ca; ssl_certfile / "
     "ssl_keyfile)", False),
    ("reset during TLS", SASL_SSL, ConnectionResetError(),
     "TLS handshake failed: the broker reset the connection (is it a PLAINTEXT listener? security_protocol = "
     "SASL_SSL)", False),
    ("wrong password", SASL_SSL, errors.SaslAuthenticationFailed(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"),
     "authentication failed (SCRAM-SHA-512 as 'watcher'): Authentication failed during authentication due to "
     "invalid credentials with SASL mechanism SCRAM-SHA-512", False),
    ("mechanism not offered", SASL_SSL, errors.UnsupportedSaslMechanismError(
        "Kafka broker does not support SCRAM-SHA-512 sasl mechanism. Enabled mechanisms are: ['PLAIN']"),
     "authentication failed: [Error 33] UnsupportedSaslMechanismError: Kafka broker does not support SCRAM-SHA-512 "
     "sasl mechanism. Enabled mechanisms are: ['PLAIN']", False),
    ("SASL to a listener without it", SASL_SSL, errors.IllegalSaslStateError(),
     "the listener does not do SASL (security_protocol = SASL_SSL): is it a PLAINTEXT or SSL listener?", False),
    ("plaintext client, TLS listener", PLAIN, errors.KafkaConnectionError("Connection at k1:9093 closed"),
     "the broker closed the connection: the listener may expect TLS or SASL (security_protocol = PLAINTEXT)", False),
    ("TLS client, SASL listener", SSL_ONLY, errors.KafkaConnectionError("Connection at k1:9093 closed"),
     "the broker closed the connection after the TLS handshake: the listener may expect SASL (security_protocol = "
     "SSL)", False),
    ("refused", PLAIN, ConnectionRefusedError(111, "Connection refused"), "connection refused", True),
    ("no such host", PLAIN, socket.gaierror(-2, "Name or service not known"), "cannot resolve 'k1'", True),
    ("no answer", PLAIN, TimeoutError(), "no answer within 5s", True),
    ("unreachable network", PLAIN, OSError(101, "Network is unreachable"), "Network is unreachable", True),
]


@pytest.mark.parametrize(("conn", "error", "reason", "retryable"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_failure_has_its_one_line_reason(conn: KafkaConnection, error: BaseException, reason: str,
                                              retryable: bool) -> None:  # fmt: skip
    assert explain(error, conn, "k1") == (reason, retryable)
    assert "\n" not in reason and "pw-x" not in reason


async def test_reach_says_why_it_cannot_connect() -> None:
    port = free_port()
    with pytest.raises(Unreachable) as info:
        await reach(KafkaConnection.plaintext(f"127.0.0.1:{port}"))
    assert str(info.value) == f"cannot reach the broker at 127.0.0.1:{port} (connection refused)"
    assert info.value.retryable


async def test_reach_lists_each_servers_reason_when_they_differ() -> None:
    port = free_port()
    with pytest.raises(Unreachable) as info:
        await reach(KafkaConnection.plaintext(f"127.0.0.1:{port},nonexistent.invalid:9092"))
    assert str(info.value) == (f"cannot reach the broker at 127.0.0.1:{port},nonexistent.invalid:9092 "
                               f"(127.0.0.1:{port}: connection refused; nonexistent.invalid:9092: cannot resolve "
                               "'nonexistent.invalid')")  # fmt: skip


TOOLS = [
    ("silence", "list"),
    ("silence", "add", "--match", 'status == "FAIL"', "--for", "1h"),
    ("silence", "expire", "abc123"),
    ("dlq", "list"),
    ("dlq", "replay"),
    ("explain", "evs/cn-north-4/p1/job-1"),
    ("track", "evs", "job-1", "--project", "p1"),
]


@pytest.mark.parametrize("tool", TOOLS, ids=[" ".join(t[:2]) for t in TOOLS])
def test_every_tool_says_it_cannot_reach_the_broker(tool: tuple[str, ...], tmp_path: Path) -> None:
    """Before: a traceback (KafkaConnectionError) after aiokafka's timeouts; `silence list` hung 31 s."""
    port = free_port()
    path = tmp_path / "w.toml"
    (tmp_path / "r.yaml").write_text("rules:\n  - name: any-failed\n    when: failed\n")
    path.write_text(f'[broker]\nurl = "kafka://127.0.0.1:{port}"\n\n[[watch]]\nsource = "evs"\nregion = "cn-north-4"\n'
                    'projects = ["p1"]\n[rules]\nfiles = ["r.yaml"]\n[[notify.targets]]\nurl = "console://"\n')  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "watcher.cli", *tool, "--config", str(path)], capture_output=True,
                         text=True, cwd=ROOT, timeout=30)  # fmt: skip
    assert (out.returncode, out.stdout, out.stderr) == (
        2, "", f"watcher: error: cannot reach the broker at 127.0.0.1:{port} (connection refused)\n")


def test_config_check_broker_says_it_cannot_reach_the_broker(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "w.toml"
    (tmp_path / "r.yaml").write_text("rules:\n  - name: any-failed\n    when: failed\n")
    path.write_text(f'[broker]\nurl = "kafka://127.0.0.1:{port}"\n[rules]\nfiles = ["r.yaml"]\n'
                    '[[notify.targets]]\nurl = "console://"\n')  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "watcher.cli", "config", "check", "--broker", str(path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=30)  # fmt: skip
    assert out.returncode == 2
    lines = out.stdout.splitlines()
    assert lines[0] == f"{path}: ok (0 poll targets, 1 rule in 1 rule file, 1 notification target)"
    assert lines[-1] == f"broker: 127.0.0.1:{port} (PLAINTEXT; topics created by watcher)"
    assert out.stderr == f"watcher: error: cannot reach the broker at 127.0.0.1:{port} (connection refused)\n"
