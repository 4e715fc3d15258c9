"""watcher.config ``[broker]``: TLS, SASL and topic settings; every bad one names file, key and line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from watcher.config import broker_hosts, load_config, parse_config
from watcher.errors import ConfigError

FILE = "watcher.toml"
ROOT = Path(__file__).resolve().parents[2]
SASL = '[broker]\nurl = "kafka://k1:9093"\nsecurity_protocol = "SASL_SSL"\nsasl_mechanism = "SCRAM-SHA-512"\nsasl_username = "watcher"\n'


def test_defaults_are_plaintext_and_create_topics() -> None:
    b = parse_config('[broker]\nurl = "kafka://k1:9092"\n', FILE).broker
    assert (b.security_protocol, b.ssl_cafile, b.ssl_certfile, b.ssl_keyfile, b.ssl_check_hostname) == (
        "PLAINTEXT", "", "", "", True)
    assert (b.sasl_mechanism, b.sasl_username, b.sasl_password_env) == (None, "", "WATCHER_KAFKA_PASSWORD")
    assert (b.create_topics, b.replication_factor, b.retention) == (True, 1, "7d")
    assert (b.uses_tls, b.uses_sasl) == (False, False)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_sasl_settings(protocol: str, mechanism: str) -> None:
    text = SASL.replace("SASL_SSL", protocol).replace("SCRAM-SHA-512", mechanism)
    b = parse_config(text + 'sasl_password_env = "KAFKA_PW"\ncreate_topics = false\nretention = "30d"\n', FILE).broker
    assert (b.security_protocol, b.sasl_mechanism, b.sasl_username, b.sasl_password_env) == (
        protocol, mechanism, "watcher", "KAFKA_PW")
    assert (b.uses_sasl, b.uses_tls, b.create_topics, b.retention) == (True, protocol == "SASL_SSL", False, "30d")


def test_tls_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / "certs" / name).write_text("-----BEGIN CERTIFICATE-----\n")
    path = tmp_path / "w.toml"
    path.write_text('[broker]\nurl = "kafka://k1:9093"\nsecurity_protocol = "SSL"\nssl_cafile = "certs/ca.pem"\n'
                    'ssl_certfile = "certs/client.pem"\nssl_keyfile = "certs/client.key"\nssl_check_hostname = false\n')
    b = load_config(path).broker  # found next to the config, not in the current directory
    assert (b.ssl_cafile, b.ssl_certfile, b.ssl_keyfile, b.ssl_check_hostname) == (
        "certs/ca.pem", "certs/client.pem", "certs/client.key", False)


@pytest.mark.parametrize(("url", "hosts"), [
    ("kafka://k1:9093", [("k1", 9093)]),
    ("kafka://k1", [("k1", 9092)]),
    ("aiokafka://k1:9093", [("k1", 9093)]),
    ("kafka://k1:9093;k2:9094", [("k1", 9093), ("k2", 9094)]),
    ("kafka://k1:9093;kafka://k2:9094", [("k1", 9093), ("k2", 9094)]),
    ("kafka://k1:9093,k2:9094", [("k1", 9093), ("k2", 9094)]),
    ("kafka://[::1]:9093", [("::1", 9093)]),
])  # fmt: skip
def test_broker_url_forms(url: str, hosts: list[tuple[str, int]]) -> None:
    assert broker_hosts(url) == hosts
    b = parse_config(f'[broker]\nurl = "{url}"\n', FILE).broker
    assert b.bootstrap() == ",".join(f"{h}:{p}" for h, p in hosts)


# (id, [broker] lines after url, the whole message after "watcher.toml:")
BAD = [
    ("unknown protocol", 'security_protocol = "TLS"', "3: broker.security_protocol: Invalid enum value 'TLS'; "
     "expected 'PLAINTEXT' or 'SSL' or 'SASL_PLAINTEXT' or 'SASL_SSL'"),
    ("unknown mechanism", 'security_protocol = "SASL_SSL"\nsasl_mechanism = "GSSAPI"\nsasl_username = "u"',
     "4: broker.sasl_mechanism: Invalid enum value 'GSSAPI'; expected 'PLAIN' or 'SCRAM-SHA-256' or 'SCRAM-SHA-512'"),
    ("SASL without mechanism", 'security_protocol = "SASL_SSL"\nsasl_username = "u"',
     '1: broker.sasl_mechanism: security_protocol = "SASL_SSL" needs a mechanism: "SCRAM-SHA-512", "SCRAM-SHA-256" '
     'or "PLAIN"'),
    ("SASL without user", 'security_protocol = "SASL_PLAINTEXT"\nsasl_mechanism = "PLAIN"',
     '1: broker.sasl_username: security_protocol = "SASL_PLAINTEXT" needs the SASL user name'),
    ("SASL settings without SASL", 'security_protocol = "SSL"\nsasl_mechanism = "PLAIN"',
     '4: broker.sasl_mechanism: security_protocol = "SSL" does not use SASL: use "SASL_SSL" (or "SASL_PLAINTEXT"), '
     "or remove the sasl_* keys"),
    ("TLS files without TLS", 'ssl_cafile = "ca.pem"',
     '3: broker.ssl_cafile: security_protocol = "PLAINTEXT" does not use TLS: use "SSL" or "SASL_SSL", or remove '
     "the ssl_* keys"),
    ("CA file missing", 'security_protocol = "SSL"\nssl_cafile = "/nonexistent/ca.pem"',
     "4: broker.ssl_cafile: no such file: /nonexistent/ca.pem"),
    ("key without certificate", 'security_protocol = "SSL"\nssl_keyfile = "/etc/hostname"',
     "4: broker.ssl_keyfile: a client key needs its certificate: set ssl_certfile too"),
    ("password variable not a name", 'security_protocol = "SASL_SSL"\nsasl_mechanism = "PLAIN"\nsasl_username = "u"\n'
     'sasl_password_env = "$PW"', "6: broker.sasl_password_env: must be the name of an environment variable "
     "(letters, digits, _)"),
    ("kafka+ssl scheme", None, '2: broker.url: unknown scheme \'kafka+ssl://\'; expected kafka://host:port; TLS is not '
     'a URL scheme here: use kafka:// and security_protocol = "SSL" or "SASL_SSL"'),
    ("zero retention", 'retention = "0s"',
     "3: broker.retention: must be longer than 0s (how long the non-compacted topics keep records)"),
    ("bad retention", 'retention = "a week"',
     "3: broker.retention: expected a duration like '30s', '10m', '2h' or '1h30m', got 'a week'"),
    ("zero replication", "replication_factor = 0", "3: broker.replication_factor: must be at least 1"),
]


@pytest.mark.parametrize(("lines", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_broker_settings_name_file_key_and_line(lines: str | None, message: str) -> None:
    url = "kafka+ssl://k1:9093" if lines is None else "kafka://k1:9093"
    text = f'[broker]\nurl = "{url}"\n' + (lines + "\n" if lines else "")
    with pytest.raises(ConfigError) as info:
        parse_config(text, FILE)
    assert str(info.value) == f"{FILE}:{message}"


@pytest.mark.parametrize("key", ["sasl_password", "sasl_plain_password"])
def test_a_password_in_the_file_is_refused_without_echoing_it(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(SASL + f'{key} = "hunter2-SECRET"\n', FILE)
    assert str(info.value) == (
        f"{FILE}:6: broker.{key}: the SASL password never goes in the file: export it in the environment variable "
        "[broker] sasl_password_env names (WATCHER_KAFKA_PASSWORD by default)"
    )


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[broker]\nurl = "kafka://watcher:hunter2-SECRET@k1:9093"\n', FILE)
    assert str(info.value) == (
        f"{FILE}:2: broker.url: credentials do not go in the url: set sasl_username, and the password in the "
        "environment variable sasl_password_env names"
    )


@pytest.mark.parametrize(("lines", "message"), [
    ('security_protocol = "SASL_SSL"', "2: broker.security_protocol: the embedded broker (no [broker] url) speaks "
     "PLAINTEXT only: set url to the cluster that needs TLS or SASL"),
    ("create_topics = false", "2: broker.create_topics: the embedded broker (no [broker] url) starts empty: watcher "
     "creates its topics"),
])  # fmt: skip
def test_the_embedded_broker_takes_no_security_and_creates_its_topics(lines: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"[broker]\n{lines}\n", FILE)
    assert str(info.value) == f"{FILE}:{message}"


def check(path: Path, *flags: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watcher.cli", "config", "check", *flags, str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, env={**os.environ, **env})  # fmt: skip


def routed(tmp_path: Path) -> str:
    """A rule file and a target, so that `config check` has nothing but the broker to talk about."""
    (tmp_path / "r.yaml").write_text("rules:\n  - name: any-failed\n    when: failed\n")
    return '[rules]\nfiles = ["r.yaml"]\n[[notify.targets]]\nurl = "console://"\n'


def test_config_check_shows_the_broker_security_with_the_password_masked(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(routed(tmp_path) + SASL + 'sasl_password_env = "KAFKA_PW_UNIT"\n')
    out = check(path, env={"KAFKA_PW_UNIT": "hunter2-SECRET"})
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stdout.splitlines() if line.startswith("broker: ")][0] == (
        "broker: k1:9093 (SASL_SSL, SCRAM-SHA-512 as 'watcher', password ****** from $KAFKA_PW_UNIT (set), "
        "CA the system trust store; topics created by watcher)"
    )
    assert "hunter2-SECRET" not in out.stdout + out.stderr


def test_config_check_says_when_the_password_variable_is_unset(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(routed(tmp_path) + SASL + 'sasl_password_env = "KAFKA_PW_UNSET"\n')
    out = check(path, env={})
    assert out.returncode == 0, out.stderr  # the file is fine; the machine that runs watcher needs the variable
    assert "password ****** from $KAFKA_PW_UNSET (NOT SET: `watcher run` will refuse to start)" in out.stdout
    out = check(path, "--broker", env={})  # connecting needs it: one line, exit 2, before any connection
    assert out.returncode == 2
    assert out.stderr == (f"watcher: error: {path}:10: broker.sasl_password_env: the environment variable "
                          "KAFKA_PW_UNSET is not set: the SASL password comes from the environment only\n")  # fmt: skip
