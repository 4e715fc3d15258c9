"""The one TOML config file, decoded and validated with msgspec.

Every error names the file, the key and (where it can be found) the line. Secrets are
never in the file: AK/SK come from the SDK's variables (``HUAWEICLOUD_SDK_AK``,
``HUAWEICLOUD_SDK_SK``, ``HUAWEICLOUD_SDK_SECURITY_TOKEN``) or a token from
``HUAWEICLOUD_SDK_TOKEN``; the Kafka SASL password from the variable ``[broker]
sasl_password_env`` names (``WATCHER_KAFKA_PASSWORD``), read by :mod:`watcher.app.kafka`.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, get_args

import msgspec

from watcher.cloud.endpoints import SERVICES, region_problem
from watcher.cloud.endpoints import normalize as normalize_endpoint
from watcher.duration import parse_duration
from watcher.errors import ConfigError
from watcher.events import SOURCES, id_problem
from watcher.notify.config import NotifyConfig, SlackConfig
from watcher.notify.redact import mask_url
from watcher.sources import get_source
from watcher.sources.base import Target

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]  # Kafka's security.protocol
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
#: The URL schemes Faust's Kafka transport takes; TLS and SASL are security_protocol's business.
BROKER_SCHEMES = ("kafka", "aiokafka")
DEFAULT_KAFKA_PORT = 9092


class BrokerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[broker]``: where Kafka is, how to talk to it securely, and the topics' shape.

    TLS and SASL follow Kafka's own client settings (``security.protocol``, ``sasl.mechanism``)
    as aiokafka and Faust name them. Paths are relative to the config file. The SASL password
    is never in the file: it is read from the environment variable ``sasl_password_env`` names.
    """

    # "" -> start the embedded Tansu broker (in-memory; demos, development, tests). Several
    # brokers: "kafka://h1:9092;h2:9092" (Faust's form) or "kafka://h1:9092,h2:9092".
    url: str = ""
    topic_prefix: str = "watcher"
    partitions: int = 8
    session_timeout: str = "10s"  # how long a dead worker holds its partitions before others take over
    tansu: bool = False  # the url points at a Tansu broker: apply its workarounds (set for you when embedded)
    # While the broker is unreachable, pollers hold up to this many changes and publish them when
    # it is back; past it, changes are not taken (an ERROR line) and a later poll sees them again.
    outage_buffer: int = 10000
    security_protocol: SecurityProtocol = "PLAINTEXT"
    ssl_cafile: str = ""  # PEM CA bundle that signed the brokers' certificates; "" -> the system's CAs
    ssl_certfile: str = ""  # mutual TLS: the client certificate (PEM; may hold the key too)
    ssl_keyfile: str = ""  # mutual TLS: the client key (PEM, unencrypted)
    ssl_check_hostname: bool = True
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str = ""
    sasl_password_env: str = "WATCHER_KAFKA_PASSWORD"  # the variable holding the SASL password
    # false: the cluster admin creates the topics (`watcher topics plan`); `watcher run` checks
    # they exist with the right partitions instead of creating them, and exits 2 if not.
    create_topics: bool = True
    replication_factor: int = 1  # of the topics watcher creates (and `topics plan` prints)
    retention: str = "7d"  # retention.ms of the topics that are not compacted

    def bootstrap(self) -> str:
        """``host:port[,host:port...]`` from ``url``; ValueError saying what is wrong."""
        return ",".join(f"{h}:{p}" for h, p in broker_hosts(self.url))

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def broker_hosts(url: str) -> list[tuple[str, int]]:
    """The (host, port) pairs of a ``[broker] url``; ValueError saying what is wrong.

    Accepts Faust's forms: ``kafka://h1:9092``, ``kafka://h1:9092;h2:9092``,
    ``kafka://h1:9092;kafka://h2:9092``, and commas between hosts. There is no
    ``kafka+ssl://`` in Faust or aiokafka: TLS is ``security_protocol``.
    """
    hosts: list[tuple[str, int]] = []
    for part in filter(None, (p.strip() for p in re.split(r"[;,]", url))):
        scheme, sep, rest = part.partition("://")
        if not sep:
            scheme, rest = "", part
        if scheme and scheme not in BROKER_SCHEMES:
            hint = ('; TLS is not a URL scheme here: use kafka:// and security_protocol = "SSL" or "SASL_SSL"'
                    if "ssl" in scheme or "sasl" in scheme else "")
            raise ValueError(f"unknown scheme {scheme + '://'!r}; expected kafka://host:port{hint}")
        if "@" in rest:  # never echo it: what precedes the @ may be a password
            raise ValueError("credentials do not go in the url: set sasl_username, and the password in the "
                             "environment variable sasl_password_env names")
        if not scheme and hosts == []:
            raise ValueError(f"expected kafka://host:port, got {part!r}")
        host, colon, port = rest.rstrip("/").rpartition(":")
        if not colon:
            host, port = rest.rstrip("/"), str(DEFAULT_KAFKA_PORT)
        if not host or "/" in host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected kafka://host:port, got {part!r}")
        hosts.append((host.strip("[]"), int(port)))
    if not hosts:
        raise ValueError("expected kafka://host:port")
    return hosts


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
    # List sources poll only open jobs and re-list everything at least this often: it bounds
    # how late a job that starts and ends between two polls (refused at once) is seen.
    sweep: str = "60s"
    # Ended jobs leave the poll state this long after they ended; history older than this is
    # not news (a first start does not page for last week's failures).
    retention: str = "6h"


ApiVersion = Literal["v1", "v2"]  # appjob: "v1" is the deprecated integer-status API


class WatchConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One [[watch]] table: a source in some projects of one region, with its filter."""

    source: str
    region: str
    projects: tuple[str, ...]
    job_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    desktop_pool_id: str | None = None
    job_ids: tuple[str, ...] = ()
    api_version: ApiVersion = "v2"


class RulesConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    files: tuple[str, ...] = ("rules/default.yaml",)


class AppConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str = "watcher"
    web_port: int = 0  # /metrics, /healthz, /readyz on 127.0.0.1:web_port; 0 -> no web server
    track_topic: bool = True  # only true is supported: every worker follows <topic_prefix>.track
    # On SIGTERM/SIGINT, alert deliveries in flight get this long to finish and be marked delivered.
    shutdown_grace: str = "10s"


class HealthConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Self-health: alert when watcher goes blind to a target, and a dead-man heartbeat.

    A target is blind after ``blind_after_failures`` failed polls in a row, or when polls have
    been failing for longer than ``blind_after``. The ``watcher-blind`` alert (severity
    critical) goes to the targets tagged ``tags`` (empty: the default route, see
    ``[notify] default_tags``), and a
    recovered notice follows when a poll succeeds again. ``heartbeat_url`` (any Apprise URL,
    e.g. ``json://host/ping``; a secret, masked like notify URLs) is sent a short message
    every ``heartbeat_interval``; "" turns the heartbeat off. ``notify_rule_errors``: a rule
    file change that does not load is also sent as a ``watcher-rules-refused`` alert (same tags).
    """

    enabled: bool = True
    blind_after_failures: int = 3
    blind_after: str = "5m"
    check_interval: str = "5s"
    tags: tuple[str, ...] = ()
    heartbeat_url: str = ""
    heartbeat_interval: str = "60s"
    notify_rule_errors: bool = True

    def __repr__(self) -> str:  # the heartbeat URL may carry a token: never print it raw
        url = mask_url(self.heartbeat_url) if self.heartbeat_url else ""
        return (f"HealthConfig(enabled={self.enabled!r}, blind_after_failures={self.blind_after_failures!r}, "
                f"blind_after={self.blind_after!r}, tags={self.tags!r}, heartbeat_url={url!r}, "
                f"heartbeat_interval={self.heartbeat_interval!r})")

    __str__ = __repr__


class UiConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The status page (:mod:`watcher.ui`): off unless ``enabled``; loopback by default.

    State-changing requests need the token in ``WATCHER_UI_TOKEN`` (the environment, never
    this file); without it the page is read-only. ``port = 0`` takes any free port.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8088


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    broker: BrokerConfig = BrokerConfig()
    cloud: CloudConfig = CloudConfig()
    poll: PollConfig = PollConfig()
    watch: tuple[WatchConfig, ...] = ()
    rules: RulesConfig = RulesConfig()
    notify: NotifyConfig = NotifyConfig()
    slack: SlackConfig = SlackConfig()
    app: AppConfig = AppConfig()
    health: HealthConfig = HealthConfig()
    ui: UiConfig = UiConfig()
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
    "broker": ("session_timeout", "retention"),
    "cloud": ("connect_timeout", "read_timeout", "retry_budget"),
    "poll": ("fast", "idle", "tick", "sweep", "retention"),
    "health": ("blind_after", "check_interval", "heartbeat_interval"),
    "app": ("shutdown_grace",),
}

#: Durations that must be longer than zero (a zero tick or poll interval would spin).
_POSITIVE_DURATIONS = frozenset({"poll.fast", "poll.idle", "poll.tick", "poll.sweep", "cloud.read_timeout",
                                 "cloud.connect_timeout", "health.check_interval", "health.heartbeat_interval"})

_PATH = re.compile(r"at `\$\.([^`]*)`")
#: The choices of each Literal field, so a bad value's message says what was expected.
_CHOICES: dict[str, tuple[str, ...]] = {
    "api_version": get_args(ApiVersion),
    "kind": ("apprise", "slack", "webhook"),
    "security_protocol": get_args(SecurityProtocol),
    "sasl_mechanism": get_args(SaslMechanism),
}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SLACK_CHANNEL = re.compile(r"^(?:[CGD][A-Z0-9]{6,}|#[a-z0-9][a-z0-9_\-]{0,79})$")
_SLACK_GROUP = re.compile(r"^S[A-Z0-9]{6,}$")
_LINK_FIELDS = frozenset({"region", "project_id", "job_id", "parent_job_id", "source"})
#: Keys that look like settings but would put a secret in the file: refused with the way to do it.
_SECRET_KEYS = {
    "broker.sasl_password": "the SASL password never goes in the file: export it in the environment "
    "variable [broker] sasl_password_env names (WATCHER_KAFKA_PASSWORD by default)",
    "broker.sasl_plain_password": "the SASL password never goes in the file: export it in the environment "
    "variable [broker] sasl_password_env names (WATCHER_KAFKA_PASSWORD by default)",
    "broker.ssl_password": "watcher reads unencrypted client keys only (ssl_keyfile); a key password would "
    "be a secret in the file",
}
_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)")
_SEGMENT = re.compile(r"([^.\[\]]+)(?:\[(\d+)\])?")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]*?)\s*\]\]?")


def _line_of(text: str, dotted: str) -> int | None:
    """Best effort: the line of a dotted key (``watch[1].source``), else of its table's header.

    Array-of-tables indexes pick the n-th ``[[header]]``, so an error in the second
    ``[[watch]]`` points into that table, not the first.
    """
    segments = [(name, int(i) if i else None) for name, i in _SEGMENT.findall(dotted)]
    if not segments:
        return None
    lines = text.splitlines()
    headers = [(n, m.group(1).replace(" ", "")) for n, line in enumerate(lines) if (m := _HEADER.match(line))]
    start, found_header = 0, None
    # A top-level key sits above the first header; a nested one is narrowed below.
    end = headers[0][0] if headers and len(segments) == 1 else len(lines)
    table = ""
    for name, index in segments[:-1]:
        table = f"{table}.{name}" if table else name
        matches = [n for n, h in headers if h == table and n >= start]
        if index is not None:
            matches = matches[index : index + 1]
        if matches:
            start = found_header = matches[0]
            end = next((n for n, _ in headers if n > start), len(lines))
    last, last_index = segments[-1]
    table = f"{table}.{last}" if table else last
    key = re.compile(rf"^\s*(?:[\w\-\"]+\s*\.\s*)*\"?{re.escape(last)}\"?\s*=")
    inline = re.compile(rf"[{{,]\s*\"?{re.escape(last)}\"?\s*=")
    for pat in (key, inline):
        for n in range(start, end):
            if pat.search(lines[n]):
                return n + 1
    tables = [n for n, h in headers if h == table]
    if last_index is not None:
        tables = tables[last_index : last_index + 1]
    if tables:
        return tables[0] + 1
    return found_header + 1 if found_header is not None else None


def parse_config(text: str, file: str = "<config>") -> Config:
    """Decode and validate a config; every problem is a ConfigError naming file, key and line."""
    try:
        data = text.encode()
    except UnicodeEncodeError as e:
        raise ConfigError(f"not valid UTF-8 text: {e.reason}", file=file) from None
    try:
        cfg = msgspec.toml.decode(data, type=Config)
    except msgspec.ValidationError as e:
        msg = str(e)
        m = _PATH.search(msg)
        key = m.group(1) if m else None
        if "unknown field" in msg:
            fld = re.search(r"unknown field `([^`]*)`", msg)
            key = f"{key}.{fld.group(1)}" if key and fld else (fld.group(1) if fld else key)
        reason = _PATH.sub("", msg).strip(" -")
        if key in _SECRET_KEYS:  # never echo its value: the message names the key only
            reason = _SECRET_KEYS[key]
        choices = _CHOICES.get((key or "").rsplit(".", 1)[-1])
        if choices and reason.startswith(("Invalid enum value", "Expected `str | null`")):
            reason += f"; expected {' or '.join(repr(c) for c in choices)}"
        raise ConfigError(reason, file=file, key=key, line=_line_of(text, key or "")) from None
    except msgspec.DecodeError as e:
        msg = str(e)
        at = _TOML_AT.search(msg)
        line = int(at.group(1)) if at else (text.count("\n") + 1 if "end of document" in msg else None)
        reason = _TOML_AT.sub("", msg) + (f" (column {at.group(2)})" if at else "")
        raise ConfigError(f"not valid TOML: {reason}", file=file, line=line) from None
    except RecursionError:
        raise ConfigError("not valid TOML: nested too deeply", file=file) from None
    _validate(cfg, text, file)
    return msgspec.structs.replace(cfg, path=file)


def _validate(cfg: Config, text: str, file: str) -> None:
    def fail(key: str, message: str) -> None:
        raise ConfigError(message, file=file, key=key, line=_line_of(text, key))

    for section, keys in _DURATION_KEYS.items():
        sub = getattr(cfg, section)
        for k in keys:
            try:
                seconds = parse_duration(getattr(sub, k))
            except ValueError as e:
                fail(f"{section}.{k}", str(e))
            if seconds <= 0 and f"{section}.{k}" in _POSITIVE_DURATIONS:
                fail(f"{section}.{k}", f"must be longer than 0, got {getattr(sub, k)!r}")
    for svc, url in cfg.cloud.endpoints.items():
        if svc not in SERVICES:
            fail(f"cloud.endpoints.{svc}", f"unknown service; expected {', '.join(SERVICES)} "
                 "(appjob uses workspaceapp's endpoint, script workspace's)")
        try:
            normalize_endpoint(url)
        except ValueError as e:
            fail(f"cloud.endpoints.{svc}", str(e))
    if cfg.cloud.max_concurrency < 1:
        fail("cloud.max_concurrency", "must be at least 1 (HTTP requests in flight to the cloud)")
    if cfg.cloud.retry_attempts < 1:
        fail("cloud.retry_attempts", "must be at least 1 (the first request counts)")
    for i, w in enumerate(cfg.watch):
        if w.source not in SOURCES:
            fail(f"watch[{i}].source", f"unknown source {w.source!r}; expected one of {', '.join(SOURCES)}")
        if not w.projects:
            fail(f"watch[{i}].projects", "name at least one project id")
        if w.source == "workspaceapp" and not w.job_types:
            fail(f"watch[{i}].job_types", "the workspaceapp API requires job_type: name the job types to watch")
        service = get_source(w.source).service
        if (problem := region_problem(service, w.region, cfg.cloud.endpoints)) is not None:
            fail(f"watch[{i}].region", problem)
        for project in w.projects:
            if (problem := id_problem(project, "project id")) is not None:
                fail(f"watch[{i}].projects", problem)
        for job_id in w.job_ids:
            if (problem := id_problem(job_id)) is not None:
                fail(f"watch[{i}].job_ids", problem)
    _validate_broker(cfg.broker, file, fail)
    if cfg.broker.partitions < 1:
        fail("broker.partitions", "must be at least 1")
    if cfg.broker.outage_buffer < 1:
        fail("broker.outage_buffer", "must be at least 1 (events held while the broker is unreachable)")
    if cfg.health.blind_after_failures < 1:
        fail("health.blind_after_failures", "must be at least 1")
    if not 0 <= cfg.app.web_port <= 65535:
        fail("app.web_port", "must be a TCP port (1-65535), or 0 for no web server")
    if not cfg.app.track_topic:  # refused, not ignored: a worker follows the track topic whatever this says
        fail("app.track_topic", "false is not supported yet: every worker follows <topic_prefix>.track")
    _validate_channels(cfg, fail)


def _validate_channels(cfg: Config, fail: Callable[[str, str], None]) -> None:
    """``[[notify.targets]]`` of each kind have the keys that kind needs (and no others);
    ``[slack]`` names environment variables, not tokens. Never quotes a URL: it may hold a secret."""
    for i, t in enumerate(cfg.notify.targets):
        at = f"notify.targets[{i}]"
        wrong = {"apprise": ("channel", "mention_group", "secret_env"), "slack": ("url", "secret_env"),
                 "webhook": ("channel", "mention_group")}[t.kind]  # fmt: skip
        for key in wrong:
            if getattr(t, key):
                fail(f"{at}.{key}", f"not used by a {t.kind!r} target; remove it")
        if t.kind in ("apprise", "webhook") and not t.url:
            fail(f"{at}.url", f"a {t.kind!r} target needs a url")
        if t.kind == "webhook":
            if t.scheme not in ("http", "https") or "://" not in t.url or not t.url.split("://", 1)[1].strip("/"):
                fail(f"{at}.url", "a webhook url must be http:// or https:// with a host")
            if not t.secret_env:
                fail(f"{at}.secret_env", "name the environment variable that holds the HMAC signing secret")
            if not _ENV_NAME.match(t.secret_env):
                fail(f"{at}.secret_env", "must be an environment variable name (letters, digits, _), not the secret")
        if t.kind == "slack":
            if not t.channel:
                fail(f"{at}.channel", "a slack target needs a channel: its id (C0123456789) or #name")
            if not _SLACK_CHANNEL.match(t.channel):
                fail(f"{at}.channel", "expected a channel id (C0123456789) or #name (lower case)")
            if t.mention_group and not _SLACK_GROUP.match(t.mention_group):
                fail(f"{at}.mention_group", "expected a Slack user group id (S0123ABCD)")
    slack = cfg.slack
    for key in ("bot_token_env", "app_token_env", "signing_secret_env"):
        if not _ENV_NAME.match(getattr(slack, key)):
            fail(f"slack.{key}", "must be an environment variable name (letters, digits, _), not the token")
    if slack.interactions_path and not slack.interactions_path.startswith("/"):
        fail("slack.interactions_path", "must be a path starting with / (e.g. /slack/interactions)")
    if not re.match(r"^https?://[^/\s]+", slack.base_url):
        fail("slack.base_url", "must be an http:// or https:// URL")
    for source, template in cfg.notify.links.items():
        key = f"notify.links.{source}"
        if source not in SOURCES:
            fail(key, f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
        if not template.startswith(("https://", "http://")):
            fail(key, "a link template must be an http:// or https:// URL")
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as e:
            fail(key, f"not a valid template: {e}")
        else:
            unknown = sorted(names - _LINK_FIELDS)
            if unknown:
                fail(key, f"unknown placeholder {{{unknown[0]}}}; expected {', '.join(sorted(_LINK_FIELDS))}")


def resolve_path(config_file: str, path: str) -> Path:
    """A path from the config, relative to the config file's directory (absolute paths as they are)."""
    p = Path(path).expanduser()
    if p.is_absolute() or not config_file or config_file.startswith("<"):
        return p
    return Path(config_file).parent / p


def _validate_broker(b: BrokerConfig, file: str, fail: Callable[[str, str], None]) -> None:
    if b.url:
        try:
            broker_hosts(b.url)
        except ValueError as e:
            fail("broker.url", str(e))
    elif b.security_protocol != "PLAINTEXT":
        fail("broker.security_protocol", "the embedded broker (no [broker] url) speaks PLAINTEXT only: "
             "set url to the cluster that needs TLS or SASL")
    elif not b.create_topics:
        fail("broker.create_topics", "the embedded broker (no [broker] url) starts empty: watcher creates its topics")
    if b.uses_sasl:
        if b.sasl_mechanism is None:
            fail("broker.sasl_mechanism", f'security_protocol = "{b.security_protocol}" needs a mechanism: '
                 '"SCRAM-SHA-512", "SCRAM-SHA-256" or "PLAIN"')
        if not b.sasl_username:
            fail("broker.sasl_username", f'security_protocol = "{b.security_protocol}" needs the SASL user name')
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", b.sasl_password_env):
            fail("broker.sasl_password_env", "must be the name of an environment variable (letters, digits, _)")
    else:
        for key in ("sasl_mechanism", "sasl_username"):
            if getattr(b, key):
                fail(f"broker.{key}", f'security_protocol = "{b.security_protocol}" does not use SASL: '
                     'use "SASL_SSL" (or "SASL_PLAINTEXT"), or remove the sasl_* keys')
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(b, key)
        if not value:
            continue
        if not b.uses_tls:
            fail(f"broker.{key}", f'security_protocol = "{b.security_protocol}" does not use TLS: '
                 'use "SSL" or "SASL_SSL", or remove the ssl_* keys')
        path = resolve_path(file, value)
        if not path.is_file():
            fail(f"broker.{key}", f"no such file: {path}")
    if b.ssl_keyfile and not b.ssl_certfile:
        fail("broker.ssl_keyfile", "a client key needs its certificate: set ssl_certfile too")
    if b.replication_factor < 1:
        fail("broker.replication_factor", "must be at least 1")
    if parse_duration(b.retention) <= 0:
        fail("broker.retention", "must be longer than 0s (how long the non-compacted topics keep records)")


def config_error(config: Config, key: str, message: str) -> ConfigError:
    """A ConfigError about ``key`` of a loaded config, with the key's line when the file is readable."""
    try:
        text = Path(config.path).read_text() if config.path else ""
    except OSError:
        text = ""
    return ConfigError(message, file=config.path or None, key=key, line=_line_of(text, key) if text else None)


def check_notify_targets(cfg: Config, text: str | None = None) -> None:
    """Raise ConfigError for the first ``[[notify.targets]]`` url that Apprise cannot use.

    Not part of :func:`parse_config`: it loads Apprise and its plugins, which ``watcher
    config check`` can afford and the hot paths need not pay twice (the notifier checks again
    when it starts). The message shows the URL's scheme only: the rest may be a secret.
    """
    from watcher.notify.config import url_problem

    if text is None:
        try:
            text = Path(cfg.path).read_text() if cfg.path else ""
        except OSError:
            text = ""
    for i, target in enumerate(cfg.notify.targets):
        if target.kind == "apprise" and (problem := url_problem(target.url)) is not None:
            key = f"notify.targets[{i}].url"
            raise ConfigError(f"not a usable Apprise URL: {problem}", file=cfg.path or None, key=key,
                              line=_line_of(text, key))


def line_of(path: str, key: str) -> int | None:
    """The line of ``key`` in the config file at ``path`` (best effort; None if unreadable)."""
    try:
        return _line_of(Path(path).read_text(), key) if path else None
    except (OSError, UnicodeDecodeError):
        return None


def load_config(path: str | Path) -> Config:
    """Read, decode and validate a config file; relative paths in it (rule files, the Apprise
    config) are made relative to the file's own directory, not the current one."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read config: {e.strerror}", file=str(p)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"not a TOML text file: byte {data[e.start]:#04x} at offset {e.start} is not UTF-8",
                          file=str(p)) from None
    if "\x00" in text:
        raise ConfigError(f"not a TOML text file: a NUL byte at offset {text.index(chr(0))}", file=str(p))
    return resolve_paths(parse_config(text, str(p)), p.parent)


def _beside(base: Path, path: str) -> str:
    return path if os.path.isabs(path) else os.path.normpath(base / path)


def resolve_paths(cfg: Config, base: Path) -> Config:
    """``cfg`` with its relative file paths joined to ``base`` (the config file's directory)."""
    rules = msgspec.structs.replace(cfg.rules, files=tuple(_beside(base, f) for f in cfg.rules.files))
    notify = cfg.notify
    if notify.apprise_config:
        notify = msgspec.structs.replace(notify, apprise_config=_beside(base, notify.apprise_config))
    return msgspec.structs.replace(cfg, rules=rules, notify=notify)
