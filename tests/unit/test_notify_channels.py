"""Channel config ([[notify.targets]] kinds, [slack]), building the channel set from it, pacing,
HTTP classification, and turning clicks into Actions. No network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from tests.fakes.incidents import incident, job
from tests.fakes.slack import block_actions
from tests.unit.jobevents import event
from watcher.config import check_notify_targets, parse_config
from watcher.errors import ConfigError
from watcher.events import Alert
from watcher.notify.channel import Pacer, classify_status, parse_retry_after
from watcher.notify.channels import ChannelSet, build_interactions, needs_env
from watcher.notify.interact import BlockActions, actions_of
from watcher.notify.mail import MailChannel
from watcher.notify.slack import SlackChannel
from watcher.notify.webhook import WebhookChannel
from watcher.rules.silence import compiled, matches, similar_match, similar_silence

FILE = "w.toml"
CONFIG = """
[[notify.targets]]
url = "mailto://relay.internal?from=watcher@example.com&to=oncall@example.com"
tags = ["ops"]

[[notify.targets]]
url = "json://127.0.0.1:9/hook"

[[notify.targets]]
kind = "slack"
channel = "#ops"
mention_group = "S0LEADS01"
tags = ["ops", "oncall-lead"]

[[notify.targets]]
kind = "webhook"
url = "https://hooks.example.com/watcher/abcdefghijklmnopqrstuvwxyz"
secret_env = "WATCHER_WEBHOOK_SECRET"
pace = 0.5

[[notify.targets]]
kind = "slack"
channel = "#ops"

[slack]
interactions_path = "/slack/interactions"
"""
ENV = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "SLACK_SIGNING_SECRET": "s" * 32,
       "WATCHER_WEBHOOK_SECRET": "whsec-1"}  # fmt: skip


def test_targets_of_each_kind_decode_with_their_defaults() -> None:
    cfg = parse_config(CONFIG, FILE)
    check_notify_targets(cfg, CONFIG)  # slack/webhook targets are not Apprise URLs, and that is fine
    kinds = [(t.kind, t.display(), t.pace_seconds(5.5)) for t in cfg.notify.targets]
    assert kinds == [
        ("apprise", "mailto://relay.internal/****", 0.0),  # our own relay: no 5.5 s
        ("apprise", "json://127.0.0.1:9/****", 5.5),  # keeps what Apprise declares for the service
        ("slack", "slack://#ops", 1.0),
        ("webhook", "https://hooks.example.com/****/****", 0.5),
        ("slack", "slack://#ops", 1.0),
    ]
    assert cfg.slack.socket_mode and cfg.slack.bot_token_env == "SLACK_BOT_TOKEN"
    assert "abcdefghijklmnop" not in repr(cfg) + str(cfg.notify.targets[3])


@pytest.mark.parametrize(("text", "message"), [
    ('[[notify.targets]]\nkind = "slack"\n', "1: notify.targets[0].channel: a slack target needs a channel"),
    ('[[notify.targets]]\nkind = "slack"\nchannel = "ops room"\n',
     "3: notify.targets[0].channel: expected a channel id (C0123456789) or #name (lower case)"),
    ('[[notify.targets]]\nkind = "slack"\nchannel = "C0123456789"\nurl = "https://x/secret-token"\n',
     "4: notify.targets[0].url: not used by a 'slack' target; remove it"),
    ('[[notify.targets]]\nkind = "slack"\nchannel = "C0123456789"\nmention_group = "oncall"\n',
     "4: notify.targets[0].mention_group: expected a Slack user group id (S0123ABCD)"),
    ('[[notify.targets]]\nkind = "webhook"\nurl = "https://h/x"\n',
     "1: notify.targets[0].secret_env: name the environment variable that holds the HMAC signing secret"),
    ('[[notify.targets]]\nkind = "webhook"\nurl = "https://h/x"\nsecret_env = "s3cr3t-value!"\n',
     "4: notify.targets[0].secret_env: must be an environment variable name (letters, digits, _), not the secret"),
    ('[[notify.targets]]\nkind = "webhook"\nurl = "ftp://h/x"\nsecret_env = "S"\n',
     "3: notify.targets[0].url: a webhook url must be http:// or https:// with a host"),
    ('[[notify.targets]]\nkind = "email"\nurl = "x"\n',
     "2: notify.targets[0].kind: Invalid enum value 'email'; expected 'apprise' or 'slack' or 'webhook'"),
    ('[[notify.targets]]\nurl = "json://h"\npace = -1\n', "3: notify.targets[0].pace: Expected `float` >= 0.0"),
    ('[[notify.targets]]\nurl = "json://h"\nchannel = "#ops"\n',
     "3: notify.targets[0].channel: not used by a 'apprise' target; remove it"),
    ('[slack]\nbot_token_env = "xoxb-123-456"\n',
     "2: slack.bot_token_env: must be an environment variable name (letters, digits, _), not the token"),
    ('[slack]\ninteractions_path = "slack"\n', "2: slack.interactions_path: must be a path starting with /"),
    ('[slack]\ntoken = "xoxb"\n', "2: slack.token: Object contains unknown field `token`"),
    ('[notify.links]\nevs = "https://console/{region}/{volume}"\n',
     "2: notify.links.evs: unknown placeholder {volume}; expected job_id, parent_job_id, project_id, region, source"),
    ('[notify.links]\ndisks = "https://console/{region}"\n', "2: notify.links.disks: unknown source 'disks'"),
], ids=lambda v: v[:40] if isinstance(v, str) else v)
def test_bad_channel_config_is_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, FILE)
    assert str(err.value).startswith(f"{FILE}:{message}"), str(err.value)
    for value in ("xoxb-123-456", "s3cr3t-value!", "secret-token"):  # a misplaced secret is never echoed
        assert value not in str(err.value)


def test_channel_set_builds_shares_clients_and_routes() -> None:
    cfg = parse_config(CONFIG, FILE)
    channels = ChannelSet.build(cfg.notify, cfg.slack, ENV)
    assert [(type(c).__name__, c.id, sorted(c.tags)) for c in channels.channels] == [
        ("MailChannel", "mailto://relay.internal/****", ["ops"]),
        ("SlackChannel", "slack://#ops", ["oncall-lead", "ops"]),
        ("WebhookChannel", "https://hooks.example.com/****/****", []),
        ("SlackChannel", "slack://#ops#2", []),
    ]
    slack_a, slack_b = (c for c in channels.channels if isinstance(c, SlackChannel))
    assert slack_a.app is slack_b.app is channels.slack and slack_a.mention_group == "S0LEADS01"
    assert [c.id for c in channels.route(["oncall-lead"])] == ["slack://#ops"]
    assert [c.id for c in channels.route([])] == [c.id for c in channels.channels]  # the root route: every target
    assert [c.id for c in channels.route(["always"])] == [c.id for c in channels.channels]
    assert channels.get("slack://#ops#2") is slack_b
    assert [type(c).__name__ for c in ChannelSet.build(cfg.notify, cfg.slack, ENV, mail=False).channels] == [
        "SlackChannel", "WebhookChannel", "SlackChannel"]
    assert needs_env(cfg.notify, cfg.slack) == [
        ("slack.bot_token_env", "SLACK_BOT_TOKEN"), ("slack.app_token_env", "SLACK_APP_TOKEN"),
        ("slack.signing_secret_env", "SLACK_SIGNING_SECRET"), ("notify.targets[3].secret_env", "WATCHER_WEBHOOK_SECRET")]
    for secret in ENV.values():
        assert secret not in repr(channels) + "".join(repr(c) for c in channels.channels)
    assert isinstance(channels.channels[0], MailChannel) and isinstance(channels.channels[2], WebhookChannel)


@pytest.mark.parametrize(("missing", "message"), [
    ("SLACK_BOT_TOKEN", "<config>: slack.bot_token_env: environment variable SLACK_BOT_TOKEN is not set "
                        "(the Slack bot token, xoxb-…)"),
    ("WATCHER_WEBHOOK_SECRET", "<config>: notify.targets[3].secret_env: environment variable "
                               "WATCHER_WEBHOOK_SECRET is not set (the webhook's HMAC signing secret)"),
])
def test_a_missing_secret_names_the_variable(missing: str, message: str) -> None:
    cfg = parse_config(CONFIG, FILE)
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ConfigError) as err:
        ChannelSet.build(cfg.notify, cfg.slack, env)
    assert str(err.value) == message


async def test_interactions_are_built_from_the_config() -> None:
    cfg = parse_config(CONFIG, FILE)

    async def publish(action: object) -> None: ...

    socket, endpoint = build_interactions(cfg.notify, cfg.slack, publish, ENV)
    assert socket is not None and endpoint is not None
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET is not set"):
        build_interactions(cfg.notify, cfg.slack, publish, {k: v for k, v in ENV.items() if "SIGNING" not in k})
    assert build_interactions(parse_config("", FILE).notify, cfg.slack, publish, {}) == (None, None)


# -- pacing and classification ---------------------------------------------------------------


async def test_pacer_spaces_starts_per_key_and_holds_for_retry_after() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    pacer = Pacer(1.0, clock=lambda: now[0], sleep=sleep)
    await pacer.wait("C1")
    await pacer.wait("C1")
    await pacer.wait("C2")  # another channel: its own turn
    now[0] += 0.25
    await pacer.wait("C1")
    assert slept == [1.0, 0.75]
    pacer.hold("C2", 30)
    assert pacer.ready_in("C2") == 30
    await pacer.wait("C2")
    assert slept == [1.0, 0.75, 30.0]


@pytest.mark.parametrize(("status", "expected"), [
    (200, (False, "ok")), (204, (False, "ok")), (429, (True, "http_429")), (408, (True, "http_4xx")),
    (500, (True, "http_5xx")), (503, (True, "http_5xx")), (400, (False, "http_4xx")), (404, (False, "http_4xx")),
    (301, (False, "error")),
])
def test_classify_status(status: int, expected: tuple[bool, str]) -> None:
    assert classify_status(status) == expected


def test_retry_after_seconds_or_http_date() -> None:
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Mon, 23 Nov 2026 08:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None) is None


# -- clicks and "Silence similar" ---------------------------------------------------------------


NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def click(action_id: str, **kw: str) -> BlockActions:
    return msgspec.convert(block_actions(action_id, incident().id, **kw), BlockActions)


@pytest.mark.parametrize(("action_id", "kind", "hours"), [
    ("watcher_ack", "ack", None), ("watcher_unack", "unack", None), ("watcher_snooze_1h", "snooze", 1),
    ("watcher_snooze_4h", "snooze", 4), ("watcher_silence_1h", "silence", 1), ("watcher_silence_4h", "silence", 4),
    ("watcher_silence_24h", "silence", 24),
])
def test_each_button_is_one_action(action_id: str, kind: str, hours: int | None) -> None:
    [action] = actions_of(click(action_id, action_ts="1795424400.5"), NOW)
    at = datetime.fromtimestamp(1795424400.5, UTC)
    assert (action.kind, action.at, action.by, action.via, action.incident) == (kind, at, "@ana", "slack", incident().id)
    assert action.until == (at + timedelta(hours=hours) if hours else None)
    assert action.silence_id == (action.id if kind == "silence" else None)


def test_click_identity_and_odd_payloads() -> None:
    a = actions_of(click("watcher_ack"), NOW)[0]
    assert actions_of(click("watcher_ack"), NOW)[0].id == a.id  # the same click twice: one action
    assert actions_of(click("watcher_ack", user_id="U2"), NOW)[0].id != a.id
    assert actions_of(click("watcher_ack", username=""), NOW)[0].by == "U0ANA0001"
    assert actions_of(click("watcher_ack", username="e\x1bvil"), NOW)[0].by == "@evil"
    assert actions_of(click("watcher_ack", action_ts="not-a-time"), NOW)[0].at == NOW
    assert actions_of(click("somebody_elses"), NOW) == []
    assert actions_of(msgspec.structs.replace(click("watcher_ack"), type="view_submission"), NOW) == []


def test_silence_similar_matches_this_rule_and_job_type_only() -> None:
    inc = incident(2)
    assert similar_match(inc.rule, [j.job_type for j in inc.jobs]) == 'rule == "desktop-failed" && job_type == "createDesktops"'
    assert similar_match("r", ["b", "a", ""]) == 'rule == "r" && job_type in ["a", "b"]'
    assert similar_match("r", []) == 'rule == "r"'
    hostile = 'x" || true || "\\\n'
    expr = similar_match("r", [hostile])
    compiled(expr)  # one literal, whatever the cloud put in a job type
    silence = similar_silence(msgspec.structs.replace(inc, jobs=(msgspec.structs.replace(job(1), job_type=hostile),)),
                              id="slack-1", by="@ana", at=NOW, until=NOW + timedelta(hours=4))
    assert (silence.created_by, silence.starts, silence.ends, silence.origin) == ("@ana", NOW, NOW + timedelta(hours=4),
                                                                                  "slack")
    def alert(rule: str, job_type: str) -> Alert:
        return Alert(key="k", rule=rule, title="t", body="b", event=event("j1", "FAILED", job_type=job_type),
                     fired_at=NOW)  # fmt: skip

    assert matches(silence, alert(inc.rule, hostile))
    assert not matches(silence, alert(inc.rule, "x"))
    assert not matches(silence, alert("other", hostile))


def test_readme_channel_config_is_valid() -> None:
    """The README's "Incident cards, webhooks and threaded mail" config decodes and builds."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = re.search(r"^## Incident cards, webhooks and threaded mail\n(.*?)^## ", readme, re.M | re.S)
    assert section
    text = re.search(r"```toml\n(.*?)```", section.group(1), re.S).group(1)  # type: ignore[union-attr]
    cfg = parse_config(text, "README.md")
    check_notify_targets(cfg, text)
    channels = ChannelSet.build(cfg.notify, cfg.slack, ENV)
    assert [c.id for c in channels.channels] == [
        "slack://C0123456789", "https://hooks.example.com/****", "mailto://relay.internal/****"]
    assert cfg.notify.links == {"evs": "https://console.example.com/evs/?region={region}#/jobs/{job_id}"}
