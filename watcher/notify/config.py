"""The ``[notify]`` and ``[slack]`` sections of the config file: targets, routing defaults,
retry budget, limits, pacing, and the Slack app's settings.

The lead's config loader decodes TOML into these structs; nothing here reads files or the
environment. A target URL carries credentials (passwords, webhook tokens), so
:class:`NotifyTarget` masks it in every repr — the structs end up in logs and tracebacks.
Tokens and signing secrets are never in the file: the file names the *environment variable*
that holds each one (``bot_token_env``, ``secret_env``…).

Example::

    [notify]
    default_tags = ["default"]     # rules without `notify`; leave out to send those to every target
    apprise_config = "/etc/watcher/apprise.yaml"   # optional, Apprise YAML with tags

    [[notify.targets]]                 # kind = "apprise" (the default): any Apprise URL
    url = "mailto://relay.internal?to=oncall@example.com"
    tags = ["default"]
    pace = 0                           # seconds between two messages to this target

    [[notify.targets]]
    kind = "slack"                     # the incident card, edited in place, with buttons
    channel = "C0123456789"            # channel id (or "#name")
    mention_group = "S0123ABCD"        # escalations mention this user group
    tags = ["default", "oncall-lead"]

    [[notify.targets]]
    kind = "webhook"                   # watcher's signed JSON document, version 1
    url = "https://hooks.example.com/watcher"
    secret_env = "WATCHER_WEBHOOK_SECRET"
    tags = ["default"]

    [slack]
    bot_token_env = "SLACK_BOT_TOKEN"
    app_token_env = "SLACK_APP_TOKEN"  # Socket Mode
    socket_mode = true

    [notify.retry]
    attempts = 5
    base_delay = 1.0
    max_delay = 60.0
    budget_seconds = 300.0
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from watcher.notify.redact import mask_http_url, mask_url

_Positive = Annotated[float, msgspec.Meta(gt=0)]
_NonNegative = Annotated[float, msgspec.Meta(ge=0)]

TargetKind = Literal["apprise", "slack", "webhook"]

#: Seconds between two messages to one target when its ``pace`` is not set. Slack documents
#: about one message per second per channel for ``chat.postMessage``; a webhook is the
#: receiver's own server; Apprise targets keep the pace Apprise declares for the service
#: (``None`` here), except SMTP mail, which Apprise paces at 5.5 s — a team's own relay needs
#: none, and a hosted one that does can set ``pace``.
DEFAULT_PACE: dict[str, float | None] = {"slack": 1.0, "webhook": 0.0, "apprise": None, "mail": 0.0}

#: URL schemes of the SMTP mail targets (threaded by :mod:`watcher.notify.mail`).
MAIL_SCHEMES = frozenset({"mailto", "mailtos"})


class NotifyTarget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One place notifications go, and the tags that route them there.

    * ``kind = "apprise"`` (default): ``url`` is any Apprise URL (mail, Slack webhooks, Teams…);
    * ``kind = "slack"``: ``channel`` (id ``C…`` or ``#name``) through the Slack app of ``[slack]``;
      ``mention_group`` (a user group id ``S…``) is mentioned by escalations;
    * ``kind = "webhook"``: ``url`` (http/https) gets watcher's JSON document, signed with the
      HMAC secret in the environment variable ``secret_env``.

    ``pace``: minimum seconds between two messages to this target (None: the kind's default,
    see :data:`DEFAULT_PACE`).
    """

    kind: TargetKind = "apprise"
    url: str = ""
    channel: str = ""
    mention_group: str = ""
    secret_env: str = ""
    pace: _NonNegative | None = None
    tags: tuple[str, ...] = ()

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower() if "://" in self.url else ""

    @property
    def is_mail(self) -> bool:
        """An Apprise SMTP mail target (``mailto://``, ``mailtos://``)."""
        return self.kind == "apprise" and self.scheme in MAIL_SCHEMES

    def pace_seconds(self, service_default: float | None = None) -> float:
        """The pace to apply: ``pace`` if set, else the kind's default, else ``service_default``
        (what Apprise declares for the service), else none."""
        if self.pace is not None:
            return float(self.pace)
        default = DEFAULT_PACE["mail" if self.is_mail else self.kind]
        if default is not None:
            return default
        return float(service_default or 0.0)

    def display(self) -> str:
        """The masked form used as the target's id: never a secret."""
        if self.kind == "slack":
            return f"slack://{self.channel}"
        if self.kind == "webhook":
            return mask_http_url(self.url)
        return mask_url(self.url)

    def __repr__(self) -> str:
        where = f"channel={self.channel!r}" if self.kind == "slack" else f"url={self.display()!r}"
        kind = "" if self.kind == "apprise" else f"kind={self.kind!r}, "
        extra = f", secret_env={self.secret_env!r}" if self.secret_env else ""
        extra += f", pace={self.pace!r}" if self.pace is not None else ""
        return f"NotifyTarget({kind}{where}, tags={self.tags!r}{extra})"

    __str__ = __repr__

    def __rich_repr__(self) -> Any:  # rich would otherwise print the raw field values
        yield "kind", self.kind
        yield "target", self.display()
        yield "tags", self.tags


class RetryBudget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How hard to try one alert: attempts per target, backoff bounds, total seconds."""

    attempts: Annotated[int, msgspec.Meta(ge=1)] = 5
    base_delay: _NonNegative = 1.0
    max_delay: _NonNegative = 60.0
    budget_seconds: _Positive = 300.0
    # A worker waits this long at most between retries of one alert before it moves on to the
    # next alert and lets that one retry on its own: a dead target must not hold
    # up the alerts behind it.
    inline_seconds: _NonNegative = 5.0


class NotifyConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where alerts go and how hard we try.

    ``default_tags`` route alerts whose rule set no tags (and the self-health alerts when
    ``[health] tags`` is empty); when it is empty, the default, such alerts go to every
    target, so a config with targets always delivers. ``body_limit``/``title_limit``
    cap what is sent, after sanitizing (see :func:`watcher.notify.render.sanitize`).
    ``links``: a URL template per source (``{region}``, ``{project_id}``, ``{job_id}``,
    ``{parent_job_id}``) for the "open in console" links of cards, mails and webhooks.
    ``card_jobs``: how many jobs a Slack card lists before "…and N more".
    """

    targets: tuple[NotifyTarget, ...] = ()
    apprise_config: str | None = None
    default_tags: tuple[str, ...] = ()  # () -> every target
    retry: RetryBudget = RetryBudget()
    body_limit: Annotated[int, msgspec.Meta(ge=64)] = 4000
    title_limit: Annotated[int, msgspec.Meta(ge=16)] = 250
    links: dict[str, str] = {}
    card_jobs: Annotated[int, msgspec.Meta(ge=1, le=40)] = 10


class SlackConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The Slack app used by ``kind = "slack"`` targets and for the card's buttons.

    Every value here is a *name*: the tokens live in the environment. ``socket_mode``: clicks
    arrive over Slack's Socket Mode websocket (needs ``app_token_env``, no public URL);
    ``interactions_path``: also serve Slack's HTTP interactivity requests at this path of the
    web server (needs ``signing_secret_env``). ``base_url``: Slack's Web API (tests point it at
    a fake).
    """

    bot_token_env: str = "SLACK_BOT_TOKEN"
    app_token_env: str = "SLACK_APP_TOKEN"
    signing_secret_env: str = "SLACK_SIGNING_SECRET"
    socket_mode: bool = True
    interactions_path: str = ""
    base_url: str = "https://slack.com/api/"
    timeout: _Positive = 10.0


def url_problem(url: str) -> str | None:
    """Why Apprise cannot use ``url`` (one line, never the URL's secrets), or None if it can.

    An unknown scheme is named as such; a known service whose URL does not parse gets the
    forms its Apprise plugin expects, from the plugin's own templates (``slack://onlyonetoken``:
    "expected slack://{token_a}/{token_b}/{token_c} …").
    """
    from watcher.notify.redact import REDACTED

    if mask_url(url) != REDACTED:
        return None
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        return "no scheme:// in the URL (e.g. slack://…, mailtos://…, json://…)"
    from apprise.manager_plugins import NotificationManager

    plugins = NotificationManager()
    if scheme.lower() not in plugins:
        return f"unknown scheme {scheme + '://'!r}: no Apprise service is called that"
    plugin = plugins[scheme.lower()]
    forms = [str(t).replace("{schema}", scheme.lower()) for t in getattr(plugin, "templates", ())[:2]]
    expected = f"; expected {' or '.join(forms)}" if forms else ""
    return f"a {scheme}:// ({plugin.service_name}) URL that Apprise does not accept{expected}"
