"""Clicks on the incident card → :class:`~watcher.events.Action` records, by Socket Mode or signed HTTP.

Sits at the rim of notify, the other way round: Slack → watcher. The card's buttons
(:data:`watcher.notify.cards.ACTIONS`) arrive as Slack ``block_actions`` payloads; each becomes
one ``Action`` (who, when, what, for which incident) handed to ``publish`` — the lead's writer to
the ``<prefix>.actions`` topic, where the incident stage applies it and the audit trail keeps it.

Two ways in, as the team prefers:

* **Socket Mode** (:class:`SocketModeInteractions`): slack-sdk's asyncio client over the app-level
  token; Slack pushes envelopes down a websocket watcher opened, so no public URL is needed;
* **HTTP** (:class:`InteractionEndpoint`): an aiohttp handler for Slack's interactivity Request
  URL. Slack's request signature (HMAC of ``v0:timestamp:body`` with the signing secret, the
  timestamp within 5 minutes) is verified with slack-sdk's ``SignatureVerifier`` **before
  anything else** — nothing is parsed, logged or published for a request that fails: 401.

Answering within Slack's 3 s: a click is answered (Socket Mode ack, HTTP 200) once its actions
were published, within ``answer_within`` (2.5 s). If publishing fails or takes longer, the click
is *not* answered (HTTP 503): Slack then shows the person an error, and they click again — better
than a click that looked taken and was lost. Envelopes that are not clicks on our buttons are
acked at once and ignored. An ``Action``'s id is derived from the click (user, button, Slack's
``action_ts``, incident), so a click Slack delivers twice is one action.

Payloads are decoded into msgspec Structs at the edge. Imports slack-sdk, aiohttp, msgspec, and
notify's cards (button ids), redact and slack (the token's environment variable).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import msgspec
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from watcher.errors import ConfigError
from watcher.events import Action
from watcher.notify.cards import ACTIONS
from watcher.notify.config import SlackConfig
from watcher.notify.redact import guarded_logger
from watcher.notify.render import strip_controls
from watcher.notify.slack import env_secret

log = logging.getLogger(__name__)

Publish = Callable[[Action], Awaitable[None]]


class SlackUser(msgspec.Struct, frozen=True):
    id: str
    username: str = ""
    name: str = ""


class ClickedAction(msgspec.Struct, frozen=True):
    action_id: str
    value: str = ""
    action_ts: str = ""


class BlockActions(msgspec.Struct, frozen=True):
    """The parts of Slack's ``block_actions`` payload watcher reads (the rest is ignored)."""

    type: str
    user: SlackUser
    actions: tuple[ClickedAction, ...] = ()
    response_url: str = ""


def clicker(user: SlackUser) -> str:
    """``@username`` (as Slack shows it), else the user id; control characters dropped."""
    name = strip_controls(user.username or user.name).strip()
    return f"@{name}"[:80] if name else strip_controls(user.id)[:40]


def _when(action_ts: str, fallback: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(float(action_ts), UTC)
    except (ValueError, OverflowError, OSError):
        return fallback


def actions_of(payload: BlockActions, now: datetime) -> list[Action]:
    """One :class:`Action` per click on one of the card's buttons; anything else is ignored."""
    if payload.type != "block_actions":
        return []
    out = []
    for clicked in payload.actions:
        spec = ACTIONS.get(clicked.action_id)
        if spec is None or not clicked.value:
            continue
        kind, seconds = spec
        at = _when(clicked.action_ts, now)
        raw = f"{payload.user.id}\x00{clicked.action_id}\x00{clicked.action_ts or at.isoformat()}\x00{clicked.value}"
        action_id = "slack-" + hashlib.sha256(raw.encode()).hexdigest()[:24]
        until = at + timedelta(seconds=seconds) if seconds else None
        out.append(Action(id=action_id, incident=clicked.value, kind=kind, by=clicker(payload.user), at=at,  # type: ignore[arg-type]
                          via="slack", until=until,
                          silence_id=action_id if kind == "silence" else None))  # fmt: skip
    return out


async def _publish_all(publish: Publish, actions: list[Action], within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            for action in actions:
                await publish(action)
    except Exception as e:  # TimeoutError included: the click stays unanswered, Slack tells the person
        log.error("could not record %d Slack action(s) for %s: %s; the click is not answered",
                  len(actions), actions[0].incident[:200], type(e).__name__)  # fmt: skip
        return False
    for action in actions:
        log.info("slack action %s on %s by %s", action.kind, action.incident[:200], action.by)
    return True


class SocketModeInteractions:
    """Receives clicks over Socket Mode (app-level token, ``connections:write``) and publishes them."""

    def __init__(self, app_token: str, publish: Publish, *, base_url: str = "https://slack.com/api/",
                 answer_within: float = 2.5, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._token = app_token
        self.publish = publish
        self.base_url = base_url
        self.answer_within = answer_within
        self._now = now
        self._client: Any = None
        self.logger = guarded_logger("watcher.notify.interact.sdk", [app_token])

    @classmethod
    def from_config(cls, config: SlackConfig, publish: Publish,
                    environ: Mapping[str, str] = os.environ) -> SocketModeInteractions:  # fmt: skip
        token = env_secret(environ, config.app_token_env, "the Slack app-level token for Socket Mode, xapp-…",
                           "slack.app_token_env")  # fmt: skip
        return cls(token, publish, base_url=config.base_url)

    def __repr__(self) -> str:
        return f"SocketModeInteractions(base_url={self.base_url!r})"

    async def start(self) -> None:
        """Open the websocket (``apps.connections.open``, then connect); reconnects on its own.
        Raises ConfigError if Slack refuses the app-level token."""
        from slack_sdk.socket_mode.aiohttp import SocketModeClient
        from slack_sdk.web.async_client import AsyncWebClient

        web_client = AsyncWebClient(base_url=self.base_url, logger=self.logger)
        try:  # first URL by hand: the SDK's connect() would retry a refused token forever
            answer = await web_client.apps_connections_open(app_token=self._token)
        except SlackApiError as e:
            raise ConfigError(f"Slack refused the app-level token: {e.response.get('error', 'unknown')}",
                              key="slack.app_token_env") from None
        self._client = SocketModeClient(app_token=self._token, web_client=web_client, logger=self.logger)
        self._client.wss_uri = str(answer["url"])
        self._client.socket_mode_request_listeners.append(self._on_request)
        await self._client.connect()

    async def _on_request(self, client: Any, request: SocketModeRequest) -> None:
        ack = SocketModeResponse(envelope_id=request.envelope_id)
        actions: list[Action] = []
        if request.type == "interactive":
            try:
                actions = actions_of(msgspec.convert(request.payload, BlockActions), self._now())
            except msgspec.ValidationError as e:
                log.warning("ignoring a Slack interactive payload watcher cannot read: %s", e)
        if actions and not await _publish_all(self.publish, actions, self.answer_within):
            return
        await client.send_socket_mode_response(ack)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class InteractionEndpoint:
    """The HTTP way in: an aiohttp handler for Slack's interactivity Request URL.

    Mount it with :meth:`add_to` on the web server Slack reaches (through a TLS proxy).
    """

    def __init__(self, signing_secret: str, publish: Publish, *, answer_within: float = 2.5,
                 clock: Callable[[], float] = time.time) -> None:
        class _Clock(Clock):
            def now(self) -> float:
                return clock()

        self._verifier = SignatureVerifier(signing_secret, clock=_Clock())
        self.publish = publish
        self.answer_within = answer_within
        self._clock = clock
        guarded_logger(__name__, [signing_secret])

    @classmethod
    def from_config(cls, config: SlackConfig, publish: Publish,
                    environ: Mapping[str, str] = os.environ) -> InteractionEndpoint:  # fmt: skip
        secret = env_secret(environ, config.signing_secret_env, "the Slack app's signing secret",
                            "slack.signing_secret_env")  # fmt: skip
        return cls(secret, publish)

    def __repr__(self) -> str:
        return "InteractionEndpoint()"

    def verified(self, body: bytes, timestamp: str | None, signature: str | None) -> bool:
        """Slack's signature over ``v0:timestamp:body`` matches and the timestamp is within 5 minutes."""
        try:
            return self._verifier.is_valid(body, timestamp, signature)
        except (ValueError, TypeError):  # a timestamp that is not a number
            return False

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self.verified(body, request.headers.get("X-Slack-Request-Timestamp"),
                             request.headers.get("X-Slack-Signature")):  # fmt: skip
            log.warning("refused a Slack interaction request from %s: bad or old signature", request.remote)
            return web.Response(status=401, text="invalid signature")
        try:
            raw = parse_qs(body.decode(), strict_parsing=False).get("payload", [""])[0]
            payload = msgspec.json.decode(raw, type=BlockActions)
        except (UnicodeDecodeError, msgspec.DecodeError, msgspec.ValidationError):
            return web.Response(status=400, text="not a Slack interaction payload")
        actions = actions_of(payload, datetime.fromtimestamp(self._clock(), UTC))
        if actions and not await _publish_all(self.publish, actions, self.answer_within):
            return web.Response(status=503, text="could not record the action; try again")
        return web.Response(status=200)

    def add_to(self, app: web.Application, path: str) -> None:
        app.router.add_post(path, self.handle)
