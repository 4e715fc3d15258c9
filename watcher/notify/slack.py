"""Slack, natively: the incident card posted once, then edited in place, with a thread reply per change.

Sits at the end of notify, called by the delivery stage through the
:class:`~watcher.notify.channel.Channel` contract. Apprise cannot edit a sent message and returns
no message id, so ``kind = "slack"`` targets use the official ``slack-sdk`` (``AsyncWebClient``)
with the bot token from the environment:

* ``open`` posts the card (:func:`watcher.notify.cards.card`) and returns the ref
  ``"<channel id>:<ts>"``, which the delivery stage keeps per incident and target;
* every later kind edits that message with ``chat.update`` (same channel and ts, whichever
  worker sends: the ref comes from the table) **and** posts a short reply in its thread
  (``thread_ts``) saying what changed; escalations and reminders broadcast the reply to the
  channel too, and an escalation mentions the target's ``mention_group``;
* a later kind without a ref (a target that never had the card: an escalation step's own
  channel) posts a new card, then the reply; so does an edit whose message was deleted.

The card is edited before the reply is posted: a retry after a failed reply only repeats the
harmless edit. Rate limits: a :class:`~watcher.notify.channel.Pacer` keeps ``pace`` seconds
(default 1, Slack's documented one message per second per channel) between messages to one
channel, and a 429 answer returns ``retry_after`` (and holds the channel that long in this
process); nothing here retries: the delivery stage does. slack-sdk's own handler retries a
request once on a dropped keep-alive connection.

The token is only in the client's Authorization header; errors report Slack's error code, never
the request. Imports slack-sdk, aiohttp, and notify's cards/channel/redact.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from watcher.errors import ConfigError
from watcher.events import Notification
from watcher.notify import cards
from watcher.notify.channel import Pacer, SendResult, classify_status, failed, parse_retry_after
from watcher.notify.config import NotifyTarget, SlackConfig
from watcher.notify.redact import guarded_logger, known_secrets, redact

log = logging.getLogger(__name__)

#: Slack ``error`` codes worth retrying although the HTTP status was 200.
_RETRYABLE_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout",
                               "ratelimited", "team_added_to_org"})  # fmt: skip
#: The message to edit is gone (deleted by someone): post a new card instead.
_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


def env_secret(environ: Mapping[str, str], name: str, what: str, key: str) -> str:
    """The value of environment variable ``name``, or a ConfigError naming the variable (never a value)."""
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set ({what})", key=key)
    return value


def parse_ref(ref: str) -> tuple[str, str] | None:
    """``"C123:1712345.6789"`` → (channel id, ts); None if it is not one of ours."""
    channel, sep, ts = ref.partition(":")
    return (channel, ts) if sep and channel and ts else None


class SlackApp:
    """The bot's Web API client, shared by every ``kind = "slack"`` target: one keep-alive HTTP
    session. Built from ``[slack]`` and the environment; the session opens on first use."""

    def __init__(self, token: str, *, base_url: str = "https://slack.com/api/", timeout: float = 10.0) -> None:
        self._token = token
        self.base_url = base_url
        self.timeout = timeout
        self._client: AsyncWebClient | None = None
        self.logger = guarded_logger("watcher.notify.slack.sdk", [token])

    @classmethod
    def from_config(cls, config: SlackConfig, environ: Mapping[str, str] = os.environ) -> SlackApp:
        token = env_secret(environ, config.bot_token_env, "the Slack bot token, xoxb-…", "slack.bot_token_env")
        return cls(token, base_url=config.base_url, timeout=config.timeout)

    def __repr__(self) -> str:
        return f"SlackApp(base_url={self.base_url!r})"

    @property
    def client(self) -> AsyncWebClient:
        if self._client is None:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._client = AsyncWebClient(token=self._token, base_url=self.base_url, session=session,
                                          logger=self.logger)  # fmt: skip
        return self._client

    async def verify(self) -> str:
        """``auth.test``: who the token is (``team / bot``); raises ConfigError if Slack refuses it."""
        try:
            answer = await self.client.auth_test()
        except SlackApiError as e:
            raise ConfigError(f"Slack refused the bot token: {e.response.get('error', 'unknown')}",
                              key="slack.bot_token_env") from None
        return f"{answer.get('team', '?')} / {answer.get('user', '?')}"

    async def close(self) -> None:
        if self._client is not None and self._client.session is not None:
            await self._client.session.close()
        self._client = None


class SlackChannel:
    """One ``kind = "slack"`` target: a channel of the workspace the bot is in."""

    editable = True

    def __init__(self, app: SlackApp, target: NotifyTarget, *, target_id: str = "", jobs: int = 10,
                 links: Mapping[str, str] | None = None, tags: frozenset[str] | None = None) -> None:
        self.app = app
        self.channel = target.channel
        self.id = target_id or target.display()
        self.tags = tags if tags is not None else frozenset(target.tags)
        self.mention_group = target.mention_group
        self.jobs = jobs
        self.links = dict(links or {})
        self.pacer = Pacer(target.pace_seconds())

    def __repr__(self) -> str:
        return f"SlackChannel({self.id!r}, tags={sorted(self.tags)!r})"

    async def send(self, notification: Notification, ref: str | None) -> SendResult:
        card = cards.card(notification, jobs=self.jobs, links=self.links)
        where = parse_ref(ref) if ref and notification.kind != "open" else None  # an open starts a new card
        step = "chat.postMessage"
        try:
            if where is not None:
                step = "chat.update"
                try:
                    await self._call("chat_update", where[0], channel=where[0], ts=where[1], text=card.text,
                                     blocks=card.blocks)  # fmt: skip
                except SlackApiError as e:
                    if e.response.get("error") not in _GONE:
                        raise
                    log.warning("slack card %s on %s is gone (%s): posting a new one", where[1], self.id,
                                e.response.get("error"))  # fmt: skip
                    where = None
            if where is None:
                step = "chat.postMessage"
                answer = await self._call("chat_postMessage", self.channel, channel=self.channel, text=card.text,
                                          blocks=card.blocks, metadata=_metadata(notification),
                                          unfurl_links=False, unfurl_media=False)  # fmt: skip
                where = (str(answer["channel"]), str(answer["ts"]))
            if notification.kind != "open":
                step = "chat.postMessage (thread)"
                await self._call("chat_postMessage", where[0], channel=where[0], thread_ts=where[1],
                                 text=cards.reply_text(notification, self.mention_group),
                                 reply_broadcast=notification.kind in ("escalate", "remind"),
                                 unfurl_links=False, unfurl_media=False)  # fmt: skip
        except SlackApiError as e:
            return self._refused(step, e, where)
        except TimeoutError:
            return failed(self.id, "TIMEOUT", "timeout", detail=f"{step}: no answer in {self.app.timeout:g}s",
                          ref=_ref(where))  # fmt: skip
        except (aiohttp.ClientError, OSError) as e:
            return failed(self.id, type(e).__name__, "connection", detail=_detail(step, e), ref=_ref(where))
        except Exception as e:  # slack-sdk or a bug of ours; never let it take the delivery stage down
            log.warning("slack send to %s raised %s", self.id, type(e).__name__)
            return failed(self.id, type(e).__name__, "error", detail=_detail(step, e), ref=_ref(where))
        return SendResult(target=self.id, ok=True, ref=_ref(where))

    async def _call(self, method: str, pace_key: str, /, **kwargs: Any) -> Any:
        await self.pacer.wait(pace_key)
        return await getattr(self.app.client, method)(**kwargs)

    def _refused(self, step: str, e: SlackApiError, where: tuple[str, str] | None) -> SendResult:
        status = int(getattr(e.response, "status_code", 0) or 0)
        error = str(e.response.get("error", "") if hasattr(e.response, "get") else "") or f"HTTP {status}"
        detail = f"{step}: {error}"
        if status == 429 or error == "ratelimited":
            headers = getattr(e.response, "headers", {}) or {}
            wait = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after")) or 1.0
            self.pacer.hold(where[0] if where else self.channel, wait)
            return failed(self.id, "RATELIMITED", "http_429", detail=f"{detail} (retry after {wait:g}s)",
                          retry_after=wait, ref=_ref(where))  # fmt: skip
        if status >= 500 or error in _RETRYABLE_ERRORS:
            return failed(self.id, "SERVER_ERROR", "http_5xx", detail=detail, ref=_ref(where))
        retryable, reason = classify_status(status) if status and status != 200 else (False, "http_4xx")
        return failed(self.id, "REFUSED", reason, detail=detail, retryable=retryable, ref=_ref(where))

    async def close(self) -> None:
        """The shared :class:`SlackApp` is closed by its owner."""


def _ref(where: tuple[str, str] | None) -> str | None:
    return f"{where[0]}:{where[1]}" if where else None


def _metadata(notification: Notification) -> dict[str, Any]:
    """Message metadata (needs no extra scope): which incident and episode a card is about."""
    inc = notification.incident
    return {"event_type": "watcher_incident", "event_payload": {"incident": inc.id, "episode": inc.episode}}


def _detail(step: str, e: Exception) -> str:
    return redact(f"{step}: {type(e).__name__}: {e}", known_secrets())[:300]
