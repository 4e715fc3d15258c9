"""The one TOML config file, decoded and validated with msgspec.

Every error names the file, the key and (where it can be found) the line. Secrets are
never in the file: AK/SK come from the SDK's variables (``HUAWEICLOUD_SDK_AK``,
``HUAWEICLOUD_SDK_SK``, ``HUAWEICLOUD_SDK_SECURITY_TOKEN``) or a token from
``HUAWEICLOUD_SDK_TOKEN``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import msgspec

from watcher.duration import parse_duration
from watcher.errors import ConfigError
from watcher.events import SOURCES
from watcher.notify.config import NotifyConfig
from watcher.sources.base import Target


class BrokerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str = ""  # "" -> start the embedded Tansu broker (in-memory; demos, development, tests)
    topic_prefix: str = "watcher"
    partitions: int = 8
    tansu: bool = False  # the url points at a Tansu broker: apply its workarounds (set for you when embedded)


class CloudConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    endpoints: dict[str, str] = {}  # service ("workspace", "workspaceapp", "evs") -> base URL
    connect_timeout: str = "5s"
    read_timeout: str = "30s"
    max_concurrency: int = 8
    retry_attempts: int = 5
    retry_budget: str = "60s"


class PollConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    fast: str = "5s"  # while a target has non-terminal jobs
    idle: str = "60s"  # while it has none
    tick: str = "1s"  # how often the scheduler checks which targets are due


class WatchConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One [[watch]] table: a source in some projects of one region, with its filter."""

    source: str
    region: str
    projects: tuple[str, ...]
    job_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    desktop_pool_id: str | None = None
    job_ids: tuple[str, ...] = ()
    api_version: Literal["v1", "v2"] = "v2"


class RulesConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    files: tuple[str, ...] = ("rules/default.yaml",)


class AppConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str = "watcher"
    web_port: int = 0  # 0 -> no web server (metrics/health are their own issue)
    track_topic: bool = True


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    broker: BrokerConfig = BrokerConfig()
    cloud: CloudConfig = CloudConfig()
    poll: PollConfig = PollConfig()
    watch: tuple[WatchConfig, ...] = ()
    rules: RulesConfig = RulesConfig()
    notify: NotifyConfig = NotifyConfig()
    app: AppConfig = AppConfig()
    path: str = ""

    def targets(self) -> list[Target]:
        out: list[Target] = []
        for w in self.watch:
            for project in w.projects:
                out.append(
                    Target(
                        source=w.source,
                        region=w.region,
                        project_id=project,
                        job_types=w.job_types,
                        statuses=w.statuses,
                        desktop_pool_id=w.desktop_pool_id,
                        job_ids=w.job_ids,
                        api_version=w.api_version,
                    )
                )
        return out

    def seconds(self, value: str) -> float:
        return parse_duration(value)


_DURATION_KEYS = {
    "cloud": ("connect_timeout", "read_timeout", "retry_budget"),
    "poll": ("fast", "idle", "tick"),
}

_PATH = re.compile(r"at `\$\.([^`]*)`")


def _line_of(text: str, dotted: str) -> int | None:
    """Best effort: the line where the last key of a dotted path is assigned."""
    last = re.sub(r"\[\d+\]", "", dotted).split(".")[-1]
    if not last:
        return None
    pat = re.compile(rf"^\s*{re.escape(last)}\s*=|^\s*\[+\s*[\w.]*{re.escape(last)}\s*\]+", re.M)
    m = pat.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def parse_config(text: str, file: str = "<config>") -> Config:
    try:
        cfg = msgspec.toml.decode(text.encode(), type=Config)
    except msgspec.ValidationError as e:
        msg = str(e)
        m = _PATH.search(msg)
        key = m.group(1) if m else None
        if "unknown field" in msg:
            fld = re.search(r"unknown field `([^`]*)`", msg)
            key = f"{key}.{fld.group(1)}" if key and fld else (fld.group(1) if fld else key)
        reason = _PATH.sub("", msg).strip(" -")
        raise ConfigError(reason, file=file, key=key, line=_line_of(text, key or "")) from None
    except msgspec.DecodeError as e:
        raise ConfigError(f"not valid TOML: {e}", file=file) from None
    _validate(cfg, text, file)
    return msgspec.structs.replace(cfg, path=file)


def _validate(cfg: Config, text: str, file: str) -> None:
    def fail(key: str, message: str) -> None:
        raise ConfigError(message, file=file, key=key, line=_line_of(text, key))

    for section, keys in _DURATION_KEYS.items():
        sub = getattr(cfg, section)
        for k in keys:
            try:
                parse_duration(getattr(sub, k))
            except ValueError as e:
                fail(f"{section}.{k}", str(e))
    for i, w in enumerate(cfg.watch):
        if w.source not in SOURCES:
            fail(f"watch[{i}].source", f"unknown source {w.source!r}; expected one of {', '.join(SOURCES)}")
        if not w.projects:
            fail(f"watch[{i}].projects", "name at least one project id")
        if w.source == "workspaceapp" and not w.job_types:
            fail(f"watch[{i}].job_types", "the workspaceapp API requires job_type: name the job types to watch")
    if cfg.broker.partitions < 1:
        fail("broker.partitions", "must be at least 1")
    for svc in cfg.cloud.endpoints:
        if svc not in ("workspace", "workspaceapp", "evs"):
            fail(f"cloud.endpoints.{svc}", "unknown service; expected workspace, workspaceapp or evs")


def load_config(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config: {e.strerror}", file=str(p)) from None
    return parse_config(text, str(p))
