"""The ``[notify]`` section of the config file: targets, routing defaults, retry budget, limits.

The lead's config loader decodes TOML into these structs; nothing here reads files. A
target URL carries credentials (passwords, webhook tokens), so :class:`NotifyTarget`
masks it in every repr — the structs end up in logs and tracebacks.

Example::

    [notify]
    default_tags = ["default"]     # rules without `notify`; leave out to send those to every target
    apprise_config = "/etc/watcher/apprise.yaml"   # optional, Apprise YAML with tags

    [[notify.targets]]
    url = "slack://T000/B000/XXXX/#ops"
    tags = ["default", "ops"]

    [notify.retry]
    attempts = 5
    base_delay = 1.0
    max_delay = 60.0
    budget_seconds = 300.0
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from watcher.notify.redact import mask_url

_Positive = Annotated[float, msgspec.Meta(gt=0)]
_NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class NotifyTarget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One Apprise URL and the tags that route alerts to it."""

    url: str
    tags: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"NotifyTarget(url={mask_url(self.url)!r}, tags={self.tags!r})"

    __str__ = __repr__

    def __rich_repr__(self) -> Any:  # rich would otherwise print the raw field values
        yield "url", mask_url(self.url)
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
    """

    targets: tuple[NotifyTarget, ...] = ()
    apprise_config: str | None = None
    default_tags: tuple[str, ...] = ()  # () -> every target
    retry: RetryBudget = RetryBudget()
    body_limit: Annotated[int, msgspec.Meta(ge=64)] = 4000
    title_limit: Annotated[int, msgspec.Meta(ge=16)] = 250


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
