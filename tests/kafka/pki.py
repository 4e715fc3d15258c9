"""A throwaway PKI for the SASL_SSL broker: a CA, the broker's certificate, and a stranger's CA.

Made at test time with ``trustme`` (a well-kept library for exactly this), written as PEM files
the broker (``ssl.keystore.type=PEM``) and watcher (``[broker] ssl_cafile``) read. The broker's
key is re-serialised as unencrypted PKCS#8, the only unencrypted form Kafka's PEM key store
reads. ``other_ca`` signed nothing the broker shows: a client trusting only it must fail the
TLS handshake ("untrusted CA").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA that signed the broker's certificate (PEM)
    broker_keystore: Path  # the broker's PKCS#8 key + certificate chain (PEM), for ssl.keystore.location
    other_ca: Path  # a CA that signed nothing the broker shows
    client_cert: Path  # a client certificate (chain) signed by ``ca``, for mutual TLS
    client_key: Path


def make_pki(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1",)) -> Pki:
    """Write the PKI under ``directory``; the broker certificate names ``hosts`` (and nothing else)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, stranger = trustme.CA(), trustme.CA()
    leaf = ca.issue_cert(*hosts, common_name=hosts[0], key_type=trustme.KeyType.RSA)
    client = ca.issue_cert("watcher-client", common_name="watcher-client", key_type=trustme.KeyType.RSA)
    pki = Pki(
        ca=directory / "ca.pem",
        broker_keystore=directory / "broker.pem",
        other_ca=directory / "other-ca.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    ca.cert_pem.write_to_path(str(pki.ca))
    stranger.cert_pem.write_to_path(str(pki.other_ca))
    pki.broker_keystore.write_bytes(_pkcs8(leaf.private_key_pem.bytes()) + b"".join(c.bytes() for c in leaf.cert_chain_pems))
    pki.client_cert.write_bytes(b"".join(c.bytes() for c in client.cert_chain_pems))
    pki.client_key.write_bytes(_pkcs8(client.private_key_pem.bytes()))
    for path in (pki.broker_keystore, pki.client_key):
        path.chmod(0o600)
    return pki


def _pkcs8(pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(pem, password=None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
