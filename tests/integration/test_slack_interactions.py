"""Clicks on the card become Actions: over Socket Mode (the fake Slack's websocket) and over signed
HTTP (a real aiohttp server), refused without a valid, fresh signature."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from tests.fakes.incidents import incident
from tests.fakes.slack import FakeSlack, block_actions
from watcher.errors import ConfigError
from watcher.events import Action
from watcher.notify.interact import InteractionEndpoint, SocketModeInteractions
from watcher.sinks import free_port

INCIDENT = incident().id
CLICKED = "1760000100.000200"
CLICKED_AT = datetime.fromtimestamp(1760000100.0002, UTC)
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    yield fake
    await fake.stop()


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.actions: list[Action] = []
        self.calls = 0
        self.fail = fail

    async def __call__(self, action: Action) -> None:
        self.calls += 1
        if self.fail:
            raise RuntimeError("broker away")
        self.actions.append(action)


async def test_socket_mode_click_becomes_one_action_and_is_acked(slack: FakeSlack) -> None:
    published = Recorder()
    listener = SocketModeInteractions(slack.app_token, published, base_url=slack.base_url)
    await listener.start()
    try:
        await slack.wait_connected()
        assert [c.method for c in slack.api_calls()] == ["apps.connections.open"]
        assert slack.api_calls()[0].token == slack.app_token
        ack = await slack.push_block_actions(block_actions("watcher_ack", INCIDENT, action_ts=CLICKED))
        await slack.wait_for(lambda: any(a.get("envelope_id") == ack for a in slack.acks))
        [action] = published.actions
        assert (action.kind, action.by, action.incident, action.via, action.at, action.until) == (
            "ack", "@ana", INCIDENT, "slack", CLICKED_AT, None)
        assert action.id.startswith("slack-") and action.silence_id is None

        snooze = await slack.push_block_actions(block_actions("watcher_snooze_4h", INCIDENT, username="bo",
                                                              action_ts="1760000200.5"))  # fmt: skip
        other = await slack.push_block_actions(block_actions("someone_elses_button", INCIDENT))
        await slack.wait_for(lambda: {snooze, other} <= {a.get("envelope_id") for a in slack.acks})
        assert [(a.kind, a.by, a.until) for a in published.actions] == [
            ("ack", "@ana", None),
            ("snooze", "@bo", datetime.fromtimestamp(1760000200.5, UTC) + timedelta(hours=4))]
        # A click Slack delivers twice is the same action (same id): the incident stage applies it once.
        again = await slack.push_block_actions(block_actions("watcher_ack", INCIDENT, action_ts=CLICKED))
        await slack.wait_for(lambda: any(a.get("envelope_id") == again for a in slack.acks))
        assert published.actions[2].id == action.id and len(published.actions) == 3
        assert sorted(a["envelope_id"] for a in slack.acks) == sorted([ack, snooze, other, again])
    finally:
        await listener.close()


async def test_socket_mode_click_that_cannot_be_recorded_is_not_acked(slack: FakeSlack) -> None:
    failing = Recorder(fail=True)
    listener = SocketModeInteractions(slack.app_token, failing, base_url=slack.base_url)
    await listener.start()
    try:
        await slack.wait_connected()
        lost = await slack.push_block_actions(block_actions("watcher_ack", INCIDENT))
        await slack.wait_for(lambda: failing.calls == 1)
        failing.fail = False
        taken = await slack.push_block_actions(block_actions("watcher_snooze_1h", INCIDENT))
        await slack.wait_for(lambda: any(a.get("envelope_id") == taken for a in slack.acks))
        assert [a["envelope_id"] for a in slack.acks] == [taken]  # Slack shows the first clicker an error
        assert lost not in {a["envelope_id"] for a in slack.acks}
        assert [a.kind for a in failing.actions] == ["snooze"]
    finally:
        await listener.close()


async def test_a_refused_app_token_is_a_config_error(slack: FakeSlack) -> None:
    listener = SocketModeInteractions("xapp-not-the-token-000000", Recorder(), base_url=slack.base_url)
    with pytest.raises(ConfigError) as err:
        await listener.start()
    assert str(err.value) == "<config>: slack.app_token_env: Slack refused the app-level token: invalid_auth"
    await listener.close()


# -- HTTP ----------------------------------------------------------------------------------------


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[str, Recorder, InteractionEndpoint]]:
    published = Recorder()
    handler = InteractionEndpoint(SECRET, published)
    app = web.Application()
    handler.add_to(app, "/slack/interactions")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/slack/interactions", published, handler
    await runner.cleanup()


def signed(payload: dict, *, secret: str = SECRET, age: float = 0) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time() - age))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return body, {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature or "",
                  "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip


async def test_signed_http_click_is_accepted(endpoint: tuple[str, Recorder, InteractionEndpoint]) -> None:
    url, published, _ = endpoint
    body, headers = signed(block_actions("watcher_silence_24h", INCIDENT, username="cy", action_ts=CLICKED))
    async with httpx.AsyncClient() as http:
        answer = await http.post(url, content=body, headers=headers)
    assert answer.status_code == 200
    [action] = published.actions
    assert (action.kind, action.by, action.incident, action.at, action.until) == (
        "silence", "@cy", INCIDENT, CLICKED_AT, CLICKED_AT + timedelta(hours=24))
    assert action.silence_id == action.id


@pytest.mark.parametrize("case", ["wrong secret", "six minutes old", "tampered body", "no headers", "bad timestamp"])
async def test_http_click_without_a_valid_fresh_signature_is_refused(
    endpoint: tuple[str, Recorder, InteractionEndpoint], case: str
) -> None:
    url, published, _ = endpoint
    payload = block_actions("watcher_ack", INCIDENT)
    body, headers = signed(payload, secret="not-the-secret-0000" if case == "wrong secret" else SECRET,
                           age=360 if case == "six minutes old" else 0)  # fmt: skip
    if case == "tampered body":
        body = body.replace(b"ana", b"eve")
    if case == "no headers":
        headers = {"Content-Type": headers["Content-Type"]}
    if case == "bad timestamp":
        headers["X-Slack-Request-Timestamp"] = "yesterday"
    async with httpx.AsyncClient() as http:
        answer = await http.post(url, content=body, headers=headers)
    assert (answer.status_code, answer.text) == (401, "invalid signature")
    assert published.actions == [] and published.calls == 0


async def test_http_click_that_cannot_be_recorded_answers_503(endpoint: tuple[str, Recorder, InteractionEndpoint]) -> None:
    url, published, _ = endpoint
    published.fail = True
    body, headers = signed(block_actions("watcher_ack", INCIDENT))
    async with httpx.AsyncClient() as http:
        answer = await http.post(url, content=body, headers=headers)
        assert answer.status_code == 503
        body, headers = signed({"type": "view_submission", "user": {"id": "U1"}})
        assert (await http.post(url, content=body, headers=headers)).status_code == 200  # not ours: nothing to do
        body, headers = signed({"nonsense": True})
        assert (await http.post(url, content=body, headers=headers)).status_code == 400
    assert published.calls == 1
