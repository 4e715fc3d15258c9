"""Builds the channels of a config: every ``[[notify.targets]]`` that is not a plain Apprise URL
(Slack, webhook) and, for SMTP mail, the threaded mail channel; plus the Slack interactions.

Sits in notify between the config and the delivery stage: the lead's factory calls
:meth:`ChannelSet.build` once per worker, hands :meth:`ChannelSet.route` the tags of each
notification, and :meth:`ChannelSet.close` on the way out. Secrets are read from the environment
here, once; a missing one is a :class:`~watcher.errors.ConfigError` naming the variable (exit 2).
Clients are shared: one Slack Web API session for every Slack target, one ``httpx.AsyncClient``
(keep-alive) for every webhook.

Imports notify's channel modules, httpx and the config structs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import httpx

from watcher.notify.channel import Channel, routes_to
from watcher.notify.config import NotifyConfig, SlackConfig
from watcher.notify.interact import InteractionEndpoint, Publish, SocketModeInteractions
from watcher.notify.mail import MailChannel
from watcher.notify.slack import SlackApp, SlackChannel, env_secret
from watcher.notify.webhook import WebhookChannel


class ChannelSet:
    """The channels of one worker and the clients they share."""

    def __init__(self, channels: Iterable[Channel], *, slack: SlackApp | None = None,
                 http: httpx.AsyncClient | None = None, default_tags: Iterable[str] = ("default",)) -> None:  # fmt: skip
        self.channels: tuple[Channel, ...] = tuple(channels)
        self.slack = slack
        self.http = http
        self.default_tags = tuple(default_tags)

    @classmethod
    def build(cls, notify: NotifyConfig, slack: SlackConfig | None = None,
              environ: Mapping[str, str] = os.environ, *, mail: bool = True) -> ChannelSet:  # fmt: skip
        """Channels for the ``slack`` and ``webhook`` targets, and (``mail``) the ``mailto(s)://`` ones.

        Other Apprise targets are left to the Apprise notifier. Target ids are their masked form,
        ``#2``, ``#3``… appended to repeats, as the notifier names its targets.
        """
        slack = slack or SlackConfig()
        app: SlackApp | None = None
        http: httpx.AsyncClient | None = None
        seen: dict[str, int] = {}
        out: list[Channel] = []
        for i, target in enumerate(notify.targets):
            if target.kind == "apprise" and not (mail and target.is_mail):
                continue
            shown = target.display()
            seen[shown] = seen.get(shown, 0) + 1
            common = {"target_id": shown if seen[shown] == 1 else f"{shown}#{seen[shown]}",
                      "tags": frozenset(target.tags or notify.default_tags), "links": notify.links}  # fmt: skip
            if target.kind == "slack":
                app = app or SlackApp.from_config(slack, environ)
                out.append(SlackChannel(app, target, jobs=notify.card_jobs, **common))  # type: ignore[arg-type]
            elif target.kind == "webhook":
                secret = env_secret(environ, target.secret_env, "the webhook's HMAC signing secret",
                                    f"notify.targets[{i}].secret_env")  # fmt: skip
                http = http or httpx.AsyncClient(follow_redirects=False)
                out.append(WebhookChannel(target, secret, http, **common))  # type: ignore[arg-type]
            else:
                out.append(MailChannel(target, body_limit=notify.body_limit, title_limit=notify.title_limit,
                                       **common))  # type: ignore[arg-type]  # fmt: skip
        return cls(out, slack=app, http=http, default_tags=notify.default_tags)

    def __repr__(self) -> str:
        return f"ChannelSet({[c.id for c in self.channels]!r})"

    def route(self, tags: Iterable[str]) -> list[Channel]:
        """The channels a notification with ``tags`` goes to (its rule's, an escalation step's, or
        the default route when it has none), in config order."""
        wanted = tuple(tags) or self.default_tags
        if not wanted:  # no tags and no default_tags: the root route reaches every target
            return list(self.channels)
        return [c for c in self.channels if routes_to(c, wanted)]

    def get(self, target_id: str) -> Channel | None:
        return next((c for c in self.channels if c.id == target_id), None)

    async def verify(self) -> str | None:
        """Checks the Slack bot token (``auth.test``) if any Slack target is configured."""
        return await self.slack.verify() if self.slack else None

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
        if self.slack is not None:
            await self.slack.close()
        if self.http is not None:
            await self.http.aclose()


def build_interactions(notify: NotifyConfig, slack: SlackConfig, publish: Publish,
                       environ: Mapping[str, str] = os.environ,
                       ) -> tuple[SocketModeInteractions | None, InteractionEndpoint | None]:  # fmt: skip
    """The ways clicks come in, when a Slack target is configured: Socket Mode (``socket_mode``)
    and the HTTP endpoint (``interactions_path``). Start the first with ``await .start()``; mount
    the second with ``.add_to(web_app, slack.interactions_path)``."""
    if not any(t.kind == "slack" for t in notify.targets):
        return None, None
    socket = SocketModeInteractions.from_config(slack, publish, environ) if slack.socket_mode else None
    endpoint = InteractionEndpoint.from_config(slack, publish, environ) if slack.interactions_path else None
    return socket, endpoint


def needs_env(notify: NotifyConfig, slack: SlackConfig) -> list[tuple[str, str]]:
    """(key, environment variable) pairs this config reads at run time, for ``watcher config check``."""
    out: list[tuple[str, str]] = []
    if any(t.kind == "slack" for t in notify.targets):
        out.append(("slack.bot_token_env", slack.bot_token_env))
        if slack.socket_mode:
            out.append(("slack.app_token_env", slack.app_token_env))
        if slack.interactions_path:
            out.append(("slack.signing_secret_env", slack.signing_secret_env))
    out += [(f"notify.targets[{i}].secret_env", t.secret_env) for i, t in enumerate(notify.targets)
            if t.kind == "webhook"]  # fmt: skip
    return out

