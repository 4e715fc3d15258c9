"""watcher.app.kafka: one connection from [broker] for aiokafka and Faust alike; the password never shown."""

from __future__ import annotations

import io
import logging
import ssl
from pathlib import Path

import pytest
import trustme
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from tests.kafka.pki import make_pki
from watcher.app.kafka import KafkaConnection, bootstrap_string, connection, faust_settings
from watcher.config import load_config, parse_config
from watcher.errors import BrokerError, ConfigError
from watcher.logs import SecretFilter, redact

PASSWORD = "pw-Unit-7d1c0a"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def write(tmp_path: Path, broker: str) -> Path:
    path = tmp_path / "w.toml"
    path.write_text("[broker]\n" + broker)
    return path


def sasl_ssl(pki, extra: str = "") -> str:
    return (f'url = "kafka://k1:9093;k2:9093"\nsecurity_protocol = "SASL_SSL"\nssl_cafile = "{pki.ca}"\n'
            f'sasl_mechanism = "SCRAM-SHA-512"\nsasl_username = "watcher"\n{extra}')  # fmt: skip


def test_plaintext_connection_gives_plain_kwargs() -> None:
    conn = connection(parse_config('[broker]\nurl = "kafka://k1:9092"\n', "w.toml"))
    assert conn.client_kwargs() == {"bootstrap_servers": "k1:9092", "security_protocol": "PLAINTEXT"}
    assert faust_settings(conn) == {"broker": "kafka://k1:9092"}
    assert conn == conn and conn.hosts == [("k1", 9092)]


def test_the_embedded_brokers_url_overrides_an_empty_one() -> None:
    conn = connection(parse_config("", "w.toml"), "kafka://127.0.0.1:4567")
    assert (conn.bootstrap, conn.security_protocol) == ("127.0.0.1:4567", "PLAINTEXT")
    with pytest.raises(BrokerError, match="no \\[broker\\] url"):
        connection(parse_config("", "w.toml"))


def test_sasl_ssl_connection(pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHER_KAFKA_PASSWORD", PASSWORD)
    conn = connection(load_config(write(tmp_path, sasl_ssl(pki))))
    kw = conn.client_kwargs()
    context = kw.pop("ssl_context")
    assert kw == {"bootstrap_servers": "k1:9093,k2:9093", "security_protocol": "SASL_SSL",
                  "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "watcher", "sasl_plain_password": PASSWORD}
    assert isinstance(context, ssl.SSLContext)
    assert (context.check_hostname, context.verify_mode) == (True, ssl.CERT_REQUIRED)
    assert len(context.get_ca_certs()) == 1  # the configured CA only, not the system's
    assert bootstrap_string(load_config(write(tmp_path, sasl_ssl(pki)))) == "k1:9093,k2:9093"


def test_faust_gets_the_same_security_as_every_other_client(pki, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Faust translates its broker_credentials into aiokafka kwargs itself: they must be ours."""
    monkeypatch.setenv("WATCHER_KAFKA_PASSWORD", PASSWORD)
    conn = connection(load_config(write(tmp_path, sasl_ssl(pki))))
    settings = faust_settings(conn)
    assert settings["broker"] == "kafka://k1:9093;k2:9093"
    faust_kw = dict(credentials_to_aiokafka_auth(settings["broker_credentials"]))
    faust_kw.pop("sasl_oauth_token_provider", None)
    ours = conn.client_kwargs()
    ours.pop("bootstrap_servers")
    assert faust_kw == ours
    assert PASSWORD not in repr(settings)  # faust.SASLCredentials leaves the password out of its repr


def test_ssl_only_and_mutual_tls(pki, tmp_path: Path) -> None:
    broker = (f'url = "kafka://k1:9093"\nsecurity_protocol = "SSL"\nssl_cafile = "{pki.ca}"\n'
              f'ssl_certfile = "{pki.client_cert}"\nssl_keyfile = "{pki.client_key}"\nssl_check_hostname = false\n')
    conn = connection(load_config(write(tmp_path, broker)))
    assert conn.client_kwargs()["security_protocol"] == "SSL"
    assert conn.ssl_context is not None and conn.ssl_context.check_hostname is False
    assert conn.ssl_context.verify_mode == ssl.CERT_REQUIRED  # the CA is still checked; only the name is not
    settings = faust_settings(conn)
    assert dict(credentials_to_aiokafka_auth(settings["broker_credentials"])) == {
        "security_protocol": "SSL", "ssl_context": conn.ssl_context}


def test_the_password_comes_only_from_the_environment(pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_PW", raising=False)
    path = write(tmp_path, sasl_ssl(pki, 'sasl_password_env = "KAFKA_PW"\n'))
    with pytest.raises(ConfigError) as info:
        connection(load_config(path))
    assert str(info.value) == (f"{path}:7: broker.sasl_password_env: the environment variable KAFKA_PW is not set: "
                               "the SASL password comes from the environment only")  # fmt: skip
    monkeypatch.setenv("KAFKA_PW", PASSWORD)
    assert connection(load_config(path)).client_kwargs()["sasl_plain_password"] == PASSWORD


def test_the_password_is_in_no_repr(pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHER_KAFKA_PASSWORD", PASSWORD)
    config = load_config(write(tmp_path, sasl_ssl(pki)))
    conn = connection(config)
    assert repr(conn) == str(conn) == (
        "KafkaConnection(k1:9093,k2:9093, SASL_SSL, SCRAM-SHA-512 as 'watcher', password=****** "
        "(from $WATCHER_KAFKA_PASSWORD))"
    )
    assert PASSWORD not in repr(config) + f"{conn!r}{conn}{conn.describe()}"


@pytest.mark.parametrize(("key", "content", "reason"), [
    ("ssl_cafile", b"not a certificate\n", "cannot use"),
    ("ssl_certfile", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cannot use"),
])  # fmt: skip
def test_a_file_that_is_not_pem_is_a_config_error(pki, tmp_path: Path, key: str, content: bytes, reason: str) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(content)
    broker = f'url = "kafka://k1:9093"\nsecurity_protocol = "SSL"\nssl_cafile = "{pki.ca}"\n'
    broker = broker.replace(str(pki.ca), str(bad)) if key == "ssl_cafile" else broker + f'ssl_certfile = "{bad}"\n'
    path = write(tmp_path, broker)
    with pytest.raises(ConfigError) as info:
        connection(load_config(path))
    assert str(info.value).startswith(f"{path}:{4 if key == 'ssl_cafile' else 5}: broker.{key}: {reason} '{bad}': ")


def test_an_encrypted_client_key_is_refused(pki, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    leaf = ca.issue_cert("client")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    (tmp_path / "enc.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.BestAvailableEncryption(b"keypass")))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    broker = ('url = "kafka://k1:9093"\nsecurity_protocol = "SSL"\nssl_certfile = "client.pem"\n'
              'ssl_keyfile = "enc.key"\n')  # fmt: skip
    with pytest.raises(ConfigError) as info:
        connection(load_config(write(tmp_path, broker)))
    assert "broker.ssl_keyfile: cannot use 'enc.key': " in str(info.value)


def test_a_registered_secret_never_reaches_a_log_line() -> None:
    redact(PASSWORD)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(SecretFilter())
    logger = logging.getLogger("test.secret")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("SaslAuthenticate auth_bytes=%r", f"\x00watcher\x00{PASSWORD}".encode())
        try:
            raise RuntimeError(f"bad password {PASSWORD}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert PASSWORD not in text
    assert text.count("******") == 2  # the message, and the exception's line in the traceback
    assert "auth_bytes=b'\\x00watcher\\x00******'" in text


def test_plaintext_factory_for_tests_and_benchmarks() -> None:
    conn = KafkaConnection.plaintext("127.0.0.1:9092")
    assert conn.client_kwargs() == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert repr(conn) == "KafkaConnection(127.0.0.1:9092, PLAINTEXT)"
