"""The Slack channel against the fake Slack over real HTTP: one card per incident, edited in place
(same channel and ts, whichever worker sends), a thread reply per change, 429s honoured, hostile
text inert, tokens nowhere."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import msgspec
import pytest

from tests.fakes.incidents import incident, job, note
from tests.fakes.slack import FakeSlack
from watcher.errors import ConfigError
from watcher.notify.channel import Channel
from watcher.notify.config import NotifyTarget
from watcher.notify.slack import SlackApp, SlackChannel

OPS = "C0OPS00001"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def app(slack: FakeSlack) -> AsyncIterator[SlackApp]:
    a = SlackApp(slack.bot_token, base_url=slack.base_url)
    yield a
    await a.close()


def channel(app: SlackApp, name: str = "#ops", *, pace: float = 0, group: str = "") -> SlackChannel:
    return SlackChannel(app, NotifyTarget(kind="slack", channel=name, pace=pace, mention_group=group, tags=("ops",)))


def block(message_blocks: list[dict], kind: str) -> list[dict]:
    return [b for b in message_blocks if b["type"] == kind]


async def test_card_posted_then_edited_in_place_with_a_thread_reply_per_change(slack: FakeSlack, app: SlackApp) -> None:
    first = channel(app)
    assert isinstance(first, Channel) and first.editable and first.id == "slack://#ops"
    one = incident(1)
    opened = await first.send(note("open", one), None)
    assert opened.ok and opened.reason == "ok"
    [card] = slack.top_level()
    assert opened.ref == f"{OPS}:{card.ts}"
    assert card.metadata == {"event_type": "watcher_incident", "event_payload": {"incident": one.id, "episode": 1}}
    assert card.blocks[0]["text"]["text"] == "ERROR · [FAILED] createDesktops in project 0bec… (cn-north-4)"

    two = msgspec.structs.replace(one, jobs=(job(1), job(2, message="disk full")), seq=2)
    updated = await first.send(note("update", two, change="desk-02 FAILED", minutes=2), opened.ref)
    # Another worker (its own client and channel object), handed the ref from the table:
    other = SlackApp(slack.bot_token, base_url=slack.base_url)
    try:
        three = msgspec.structs.replace(two, jobs=(*two.jobs, job(3, status="ABNORMAL")), seq=3)
        again = await channel(other).send(note("update", three, change="desk-03 ABNORMAL", minutes=3), updated.ref)
    finally:
        await other.close()

    assert updated.ok and again.ok and updated.ref == again.ref == opened.ref
    assert [m.ts for m in slack.top_level()] == [card.ts]  # one card, never a second post
    assert card.edits == 2
    assert [c.method for c in slack.api_calls()] == [
        "chat.postMessage", "chat.update", "chat.postMessage", "chat.update", "chat.postMessage"]
    assert [(c.params["channel"], c.params["ts"]) for c in slack.api_calls("chat.update")] == [(OPS, card.ts)] * 2
    assert [m.text for m in slack.replies(OPS, card.ts)] == [
        ":arrows_counterclockwise: Updated: desk-02 FAILED", ":arrows_counterclockwise: Updated: desk-03 ABNORMAL"]
    assert all(not m.reply_broadcast for m in slack.replies(OPS, card.ts))
    jobs = [b["text"]["text"] for b in card.blocks if b["type"] == "section" and "text" in b]
    assert jobs == [
        "• *createDesktops* job-01 desk-01: RUNNING → FAILED — WKS.0001: quota exceeded\n"
        "• *createDesktops* job-02 desk-02: RUNNING → FAILED — WKS.0001: disk full\n"
        "• *createDesktops* job-03 desk-03: RUNNING → ABNORMAL — WKS.0001: quota exceeded"]


async def test_resolution_edits_the_card_to_resolved(slack: FakeSlack, app: SlackApp) -> None:
    ch = channel(app)
    inc = incident(2)
    opened = await ch.send(note("open", inc), None)
    done = msgspec.structs.replace(inc, state="resolved", resolved_at=inc.opened_at.replace(minute=30), seq=2,
                                   jobs=tuple(msgspec.structs.replace(j, firing=False, status="SUCCESS")
                                              for j in inc.jobs))  # fmt: skip
    resolved = await ch.send(note("resolve", done, change="all 2 jobs recovered", minutes=30), opened.ref)
    assert resolved.ok and resolved.ref == opened.ref
    [card] = slack.top_level()
    assert card.edits == 1
    assert card.blocks[0]["text"]["text"] == "RESOLVED · [FAILED] createDesktops in project 0bec… (cn-north-4)"
    assert block(card.blocks, "actions") == []  # nothing left to click
    [context] = block(card.blocks, "context")
    stamp = int(done.resolved_at.timestamp())
    assert context["elements"][0]["text"] == (
        f"Resolved at <!date^{stamp}^{{date_short_pretty}} at {{time}}|08:30 UTC> after 30 min")
    assert card.text.startswith(":white_check_mark: RESOLVED · ")
    assert [m.text for m in slack.replies(OPS, card.ts)] == [":white_check_mark: Resolved: all 2 jobs recovered"]


async def test_a_429_returns_retry_after_and_the_next_send_waits_it_out(slack: FakeSlack, app: SlackApp) -> None:
    ch = channel(app)
    inc = incident()
    opened = await ch.send(note("open", inc), None)
    slack.fail_next("chat.update", retry_after=1)
    refused = await ch.send(note("update", inc, change="x", seq=2), opened.ref)
    assert (refused.ok, refused.reason, refused.retryable, refused.retry_after) == (False, "http_429", True, 1.0)
    assert refused.ref == opened.ref and refused.status == "RATELIMITED"
    assert refused.detail == "chat.update: ratelimited (retry after 1s)"
    throttled_at = slack.calls[-1].at
    retried = await ch.send(note("update", inc, change="x", seq=2), opened.ref)
    assert retried.ok
    update = slack.api_calls("chat.update")[0]
    assert update.at - throttled_at >= 1.0  # the channel held its next message for Retry-After
    assert [m.text for m in slack.replies(OPS, opened.ref.split(":")[1])] == [":arrows_counterclockwise: Updated: x"]


async def test_failures_are_classified(slack: FakeSlack, app: SlackApp) -> None:
    ch = channel(app)
    slack.fail_next("chat.postMessage", status=503, error="service_unavailable", retry_after=None)
    r = await ch.send(note("open", incident()), None)
    assert (r.ok, r.reason, r.retryable, r.ref) == (False, "http_5xx", True, None)
    wrong = SlackApp("xoxb-wrong-token-0000000000", base_url=slack.base_url)
    try:
        r = await channel(wrong).send(note("open", incident()), None)
    finally:
        await wrong.close()
    assert (r.ok, r.reason, r.retryable, r.detail) == (False, "http_4xx", False, "chat.postMessage: invalid_auth")
    r = await channel(app, "#nowhere").send(note("open", incident()), None)
    assert (r.ok, r.reason, r.retryable, r.detail) == (False, "http_4xx", False, "chat.postMessage: channel_not_found")
    dead = SlackApp(slack.bot_token, base_url="http://127.0.0.1:9/api/")
    try:
        r = await channel(dead).send(note("open", incident()), None)
    finally:
        await dead.close()
    assert (r.ok, r.reason, r.retryable) == (False, "connection", True)
    assert slack.top_level() == []


async def test_verify_checks_the_bot_token(slack: FakeSlack, app: SlackApp) -> None:
    assert await app.verify() == "Fake Team / watcher"
    wrong = SlackApp("xoxb-wrong-token-0000000000", base_url=slack.base_url)
    try:
        with pytest.raises(ConfigError) as err:
            await wrong.verify()
    finally:
        await wrong.close()
    assert str(err.value) == "<config>: slack.bot_token_env: Slack refused the bot token: invalid_auth"
    assert [c.method for c in slack.calls] == ["auth.test", "auth.test"]


async def test_a_deleted_card_is_posted_again(slack: FakeSlack, app: SlackApp) -> None:
    ch = channel(app)
    inc = incident()
    opened = await ch.send(note("open", inc), None)
    slack.messages.clear()  # someone deleted the card
    r = await ch.send(note("update", inc, change="desk-01 FAILED", seq=2), opened.ref)
    [card] = slack.top_level()
    assert r.ok and r.ref == f"{OPS}:{card.ts}" != opened.ref
    assert [m.text for m in slack.replies(OPS, card.ts)] == [":arrows_counterclockwise: Updated: desk-01 FAILED"]


async def test_escalation_mentions_the_group_in_the_thread_and_in_the_channel(slack: FakeSlack, app: SlackApp) -> None:
    ops = channel(app, group="S0LEADS01")
    inc = incident()
    opened = await ops.send(note("open", inc), None)
    step = msgspec.structs.replace(inc, escalated=1, seq=2)
    r = await ops.send(note("escalate", step, change="unacknowledged for 15 min", tags=("ops",)), opened.ref)
    assert r.ok and r.ref == opened.ref
    [reply] = slack.replies(OPS, opened.ref.split(":")[1])
    assert reply.text == "<!subteam^S0LEADS01> :rotating_light: Escalated (step 1): unacknowledged for 15 min"
    assert reply.reply_broadcast
    # A step whose channel never had the card: a new card there, then the mention under it.
    leads = channel(app, "#leads", group="S0LEADS01")
    r = await leads.send(note("escalate", step, change="unacknowledged for 15 min"), None)
    [card] = [m for m in slack.top_level() if m.channel == "C0LEADS001"]
    assert r.ok and r.ref == f"C0LEADS001:{card.ts}"
    assert [m.text for m in slack.replies("C0LEADS001", card.ts)] == [reply.text]
    context = block(card.blocks, "context")[0]["elements"][0]["text"]
    assert context.endswith("· escalated (step 1)")


HOSTILE = "<script>alert(1)</script> <!channel> @here {{7*7}} \x07\x1b[31mred <@U0BOSS> & <http://evil|click>"


async def test_hostile_job_text_is_inert_in_the_blocks(slack: FakeSlack, app: SlackApp) -> None:
    bad = job(1, message=HOSTILE, code="<!here>", desktop_pool_name="x")
    bad = msgspec.structs.replace(bad, entities=msgspec.structs.replace(bad.entities, desktop_name="@everyone <#C1>"))
    inc = incident(jobs=(bad,), title="[FAILED] <!channel> {{7*7}}", rule="r<1>")
    r = await channel(app).send(note("open", inc, change=HOSTILE), None)
    assert r.ok
    [card] = slack.top_level()
    dumped = json.dumps(card.blocks, ensure_ascii=False) + card.text
    for raw in ("<script>", "<!channel>", "<!here>", "<@U0BOSS>", "<#C1>", "<http://evil", "@here", "@everyone",
                "\x07", "\x1b", "49"):
        assert raw not in dumped, raw
    jobs = [b["text"]["text"] for b in card.blocks if b["type"] == "section" and "text" in b]
    assert jobs == [
        "• *createDesktops* job-01 @\u200beveryone &lt;\u200b#C1&gt;: RUNNING → FAILED — &lt;\u200b!here&gt;: "
        "&lt;script&gt;alert(1)&lt;/script&gt; &lt;\u200b!channel&gt; @\u200bhere {{7*7}} [31mred "
        "&lt;\u200b@U0BOSS&gt; &amp; &lt;http://evil|click&gt;"]
    assert card.blocks[0]["text"]["text"] == "ERROR · [FAILED] <\u200b!channel> {{7*7}}"  # plain_text: no markup at all
    # The only "<" left in any mrkdwn text is a date token we wrote.
    texts = [e["text"] for b in card.blocks for e in ([b.get("text")] + b.get("fields", []) + b.get("elements", []))
             if isinstance(e, dict) and e.get("type") == "mrkdwn"]
    assert all(t.count("<") == t.count("<!date^") for t in texts), texts


async def test_the_token_is_in_no_result_repr_or_log(slack: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = SlackApp(slack.bot_token, base_url=slack.base_url)
    app.logger.setLevel(logging.DEBUG)
    try:
        ch = channel(app)
        ok = await ch.send(note("open", incident()), None)
        slack.fail_next("chat.update", status=500, error="internal_error", retry_after=None)
        bad = await ch.send(note("update", incident(), change="x", seq=2), ok.ref)
    finally:
        await app.close()
    text = caplog.text + repr(app) + repr(ch) + repr(ok) + repr(bad) + "".join(r.getMessage() for r in caplog.records)
    assert slack.bot_token not in text
    assert "Sending a request" in caplog.text  # slack-sdk did log its requests, at DEBUG
