"""Where each service lives: the base URL for a (service, region), as the SDK resolves it.

Precedence, first match wins:

1. explicit config (``[cloud] endpoints = {workspace = "http://127.0.0.1:8080"}``), one
   base URL per service for every region — the way tests and the simulator are wired in;
2. the SDK's own variable ``HUAWEICLOUD_SDK_REGION_<SERVICE>_<REGION>`` (region upper-cased,
   ``-`` → ``_``; a comma-separated value lists several endpoints and the first is used);
3. the SDK's static region tables, which follow one host pattern per service. The one
   quirk: Workspace App answers on ``appstream.<region>`` in five CN regions and on
   ``workspace.<region>`` everywhere else, so in e.g. cn-north-4 the App APIs and the
   Workspace APIs sit on different hosts.

Like the SDK, a URL without a scheme gets ``https://``, and only scheme and host[:port] of a
base URL matter (a path on it is ignored). Pure functions; the caller passes ``environ``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

SERVICES: tuple[str, ...] = ("workspace", "workspaceapp", "evs")

#: Regions whose Workspace App endpoint is ``appstream.<region>`` (SDK ``WorkspaceAppRegion``).
APPSTREAM_REGIONS: frozenset[str] = frozenset({"cn-north-9", "cn-southwest-2", "cn-north-4", "cn-east-3", "cn-south-1"})

ENV_PREFIX = "HUAWEICLOUD_SDK_REGION"
DOMAIN = "myhuaweicloud.com"

# A region id goes into a host name, so it must look like one ("cn-north-4", "eu-west-101").
_REGION_RE = re.compile(r"^[a-z]{2,}(?:-[a-z0-9]+)+$")


def _check(service: str, region: str) -> None:
    if service not in SERVICES:
        raise ValueError(f"unknown cloud service {service!r}; expected one of {', '.join(SERVICES)}")
    if not _REGION_RE.match(region):
        raise ValueError(f"invalid region id {region!r}; expected e.g. 'cn-north-4'")


def default_endpoint(service: str, region: str) -> str:
    """The base URL from the SDK's region tables (by their host pattern)."""
    _check(service, region)
    if service == "workspaceapp":
        host = "appstream" if region in APPSTREAM_REGIONS else "workspace"
    else:
        host = service
    return f"https://{host}.{region}.{DOMAIN}"


def env_var_name(service: str, region: str) -> str:
    """``HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4`` for ("evs", "cn-north-4")."""
    return f"{ENV_PREFIX}_{service.upper()}_{region.replace('-', '_').upper()}"


def normalize(url: str) -> str:
    """``scheme://netloc`` of a base URL; adds ``https://`` when the scheme is missing."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"invalid endpoint URL {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def resolve_endpoint(
    service: str,
    region: str,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The base URL (``scheme://host[:port]``) to call ``service`` in ``region`` on.

    ``environ`` defaults to ``os.environ``. Raises ValueError for an unknown service, a
    malformed region id or a malformed override.
    """
    _check(service, region)
    if overrides and overrides.get(service):
        return normalize(overrides[service])
    env = os.environ if environ is None else environ
    value = env.get(env_var_name(service, region), "")
    first = value.split(",")[0].strip()
    if first:
        return normalize(first)
    return default_endpoint(service, region)


def host_of(base_url: str) -> str:
    """The Host header (and signed ``host``) for a base URL: its netloc, port included."""
    return urlsplit(base_url).netloc


#: The regions each service's SDK knows (huaweicloudsdk* 3.1.219, ``<Service>Region.static_fields``);
#: a region outside them needs an endpoint of its own (``[cloud] endpoints`` or the SDK variable).
KNOWN_REGIONS: dict[str, frozenset[str]] = {
    "workspace": frozenset({
        "af-north-1", "af-south-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "cn-east-3", "cn-east-5",
        "cn-north-11", "cn-north-4", "cn-north-9", "cn-south-1", "cn-southwest-2", "eu-west-101", "la-north-2",
        "la-south-2", "me-east-1", "sa-brazil-1", "tr-west-1",
    }),
    "workspaceapp": frozenset({
        "af-north-1", "af-south-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "cn-east-3", "cn-east-5",
        "cn-north-11", "cn-north-4", "cn-north-9", "cn-south-1", "cn-southwest-2", "la-north-2", "la-south-2",
        "me-east-1", "sa-brazil-1", "tr-west-1",
    }),
    "evs": frozenset({
        "ae-ad-1", "af-north-1", "af-south-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
        "ap-southeast-5", "cn-east-2", "cn-east-3", "cn-east-4", "cn-east-5", "cn-north-1", "cn-north-11",
        "cn-north-12", "cn-north-2", "cn-north-4", "cn-north-9", "cn-south-1", "cn-south-2", "cn-south-4",
        "cn-southwest-2", "cn-southwest-3", "eu-west-0", "eu-west-101", "la-north-2", "la-south-2", "me-east-1",
        "my-kualalumpur-1", "na-mexico-1", "ru-moscow-1", "ru-northwest-2", "sa-brazil-1", "tr-west-1",
    }),
}  # fmt: skip


def region_problem(
    service: str, region: str, overrides: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """Why ``service`` cannot be reached in ``region`` (one line), or None when it can: the region
    is in the SDK's table, or an override or the SDK's variable gives its endpoint."""
    if not _REGION_RE.match(region):
        return f"invalid region id {region!r}; expected e.g. 'cn-north-4'"
    env = os.environ if environ is None else environ
    if region in KNOWN_REGIONS[service] or (overrides or {}).get(service) or env.get(env_var_name(service, region)):
        return None
    known = sorted(KNOWN_REGIONS[service])
    close = difflib.get_close_matches(region, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"e.g. {', '.join(known[:3])}…"
    return (f"unknown region {region!r} for {service}, not one of the SDK's {len(known)} ({hint}); "
            f"for another region set [cloud] endpoints.{service} or {env_var_name(service, region)}")
