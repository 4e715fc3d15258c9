"""Who watcher is to Huawei Cloud: AK/SK (optionally STS), an IAM token, or both.

Three modes, chosen by what is set:

* ``ak`` + ``sk``  → every request is signed (``SDK-HMAC-SHA256``), like the SDK;
* only ``token``   → ``X-Auth-Token`` is sent and nothing is signed;
* both             → signed, with ``X-Auth-Token`` among the signed headers, as the SDK's
  ``invoker.add_header("X-Auth-Token", …)`` does.

``security_token`` (STS temporary credentials) goes with AK/SK as ``X-Security-Token``.
No secret ever appears in a repr, a str, an error or a log line: :meth:`Credentials.redact`
scrubs them out of any text echoed from a server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from watcher.cloud import signer
from watcher.errors import ConfigError

ENV_AK = "HUAWEICLOUD_SDK_AK"
ENV_SK = "HUAWEICLOUD_SDK_SK"
ENV_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"
ENV_TOKEN = "HUAWEICLOUD_SDK_TOKEN"  # watcher's own name; the SDK has no token-only mode

Mode = Literal["sign", "token", "sign+token"]


def mask(value: str, keep: int = 0) -> str:
    """``AKIA****``: at most ``keep`` leading chars, and never more than half of the value."""
    shown = min(keep, len(value) // 2)
    return value[:shown] + "****"


class Credentials:
    """AK/SK, an IAM token, or both; immutable, and masked whenever printed."""

    __slots__ = ("ak", "sk", "token", "security_token")

    ak: str | None
    sk: str | None
    token: str | None
    security_token: str | None

    def __init__(
        self,
        *,
        ak: str | None = None,
        sk: str | None = None,
        token: str | None = None,
        security_token: str | None = None,
    ) -> None:
        values = {"ak": ak, "sk": sk, "token": token, "security_token": security_token}
        for name, value in values.items():
            object.__setattr__(self, name, value or None)
        if bool(self.ak) != bool(self.sk):
            missing = ENV_SK if self.ak else ENV_AK
            raise ConfigError(f"AK and SK go together: {missing} is not set", key=missing)
        if not self.ak and not self.token:
            raise ConfigError(
                f"no cloud credentials: set {ENV_AK} and {ENV_SK}, or {ENV_TOKEN}",
                key=ENV_AK,
            )
        if self.security_token and not self.ak:
            raise ConfigError(f"{ENV_SECURITY_TOKEN} needs {ENV_AK} and {ENV_SK}", key=ENV_SECURITY_TOKEN)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Credentials are immutable")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """Read the SDK's variables plus watcher's token variable.

        * ``HUAWEICLOUD_SDK_AK`` / ``HUAWEICLOUD_SDK_SK``: access key pair (the SDK's names);
        * ``HUAWEICLOUD_SDK_SECURITY_TOKEN``: STS token for temporary AK/SK (the SDK's name);
        * ``HUAWEICLOUD_SDK_TOKEN``: an IAM user token (``X-Subject-Token``), sent as
          ``X-Auth-Token``. This name is watcher's own: the SDK has no token-only mode.

        ``environ`` defaults to ``os.environ``; blank values count as unset. Raises
        ConfigError when nothing usable is set or only half of AK/SK is.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(name, "").strip() or None

        return cls(ak=get(ENV_AK), sk=get(ENV_SK), token=get(ENV_TOKEN), security_token=get(ENV_SECURITY_TOKEN))

    @property
    def mode(self) -> Mode:
        if self.ak and self.token:
            return "sign+token"
        return "sign" if self.ak else "token"

    def authorize(
        self,
        method: str,
        path: str,
        pairs: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
        now: datetime | None = None,
    ) -> dict[str, str]:
        """``headers`` plus the auth headers, signed over ``path`` and ``pairs`` when AK/SK are set.

        Call once per attempt: each call stamps a fresh ``X-Sdk-Date``.
        """
        out = dict(headers)
        if self.token:
            out["X-Auth-Token"] = self.token
        if self.security_token:
            out["X-Security-Token"] = self.security_token
        if self.ak and self.sk:
            return signer.sign_headers(self.ak, self.sk, method, path, pairs, out, now=now)
        out["X-Sdk-Date"] = signer.sdk_date(now)
        return out

    def secrets(self) -> list[str]:
        """Every credential value, longest first (so redaction replaces whole values)."""
        values = [v for v in (self.sk, self.token, self.security_token, self.ak) if v]
        return sorted(values, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every credential value replaced by ``****``."""
        for value in self.secrets():
            text = text.replace(value, "****")
        return text

    def __repr__(self) -> str:
        parts = []
        if self.ak:
            parts += [f"ak={mask(self.ak, 4)}", "sk=****"]
        if self.security_token:
            parts.append("security_token=****")
        if self.token:
            parts.append("token=****")
        return f"Credentials({', '.join(parts)})"

    __str__ = __repr__
