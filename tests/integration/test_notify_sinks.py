"""notify against real sinks: an aiohttp webhook server and an aiosmtpd SMTP server on 127.0.0.1.

Every sink runs on the test's own event loop (the SMTP one in its thread), so each test that
gets an answer also shows that Apprise's send did not block the loop.

Slack and Discord have fixed https endpoints (hooks.slack.com, discord.com) and Apprise has
no option to override the host. To see their real payloads we set the plugin instance's
endpoint attribute (``webhook_url``/``notify_url``) to the local sink — a DNS-style redirect
only; the payload is built by the untouched plugin code.
"""

from __future__ import annotations

import logging
import socket
import time
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from watcher.errors import ConfigError
from watcher.events import Alert, DeadLetter, Entities, JobEvent, encode, job_key
from watcher.incidents.model import standalone
from watcher.notify.config import NotifyConfig, NotifyTarget, RetryBudget
from watcher.notify.deliver import Notifier, TargetResult, classify, format_results, send_test
from watcher.notify.delivery import Delivery
from watcher.notify.dispatch import Channels
from watcher.notify.render import ZWSP, chat_body, default_body, default_title, mail_footer, sanitize
from watcher.notify.retry import DeliveryOutcome, backoff_delay
from watcher.sinks import Mailbox, WebhookSink

NOW = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)
PROJECT = "0bec3f1a9c2d4e5f8a7b6c5d4e3f2a1b"
FAST = RetryBudget(attempts=4, base_delay=0.001, max_delay=0.01, budget_seconds=30.0)
HOSTILE = "<!channel> @everyone <script>alert(1)</script>\x1b[31m\x07\x00\r\n"


def make_alert(*, tags: tuple[str, ...] = ("ops",), message: str = "Insufficient desktop quota.",
               severity: str = "error", kind: str = "firing", desktop: str = "dev-01") -> Alert:
    ev = JobEvent(
        source="workspace", region="cn-north-4", project_id=PROJECT,
        job_key=job_key("workspace", "cn-north-4", PROJECT, "ff80-1"), job_id="ff80-1",
        job_type="createDesktops", status="FAILED", phase="failed", prev_status="RUNNING", prev_phase="running",
        error_code="WKS.0112", message=message, entities=Entities(desktop_name=desktop, user_name="alice"),
        observed_at=NOW,
    )
    return Alert(key="job-failed|ff80-1", rule="job-failed", tags=tags, severity=severity,  # type: ignore[arg-type]
                 kind=kind, title="", body="", event=ev, fired_at=NOW)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def sinks() -> AsyncIterator[Callable[..., Awaitable[WebhookSink]]]:
    started: list[WebhookSink] = []

    async def start(**kw: object) -> WebhookSink:
        sink = await WebhookSink(**kw).start()  # type: ignore[arg-type]
        started.append(sink)
        return sink

    yield start
    for sink in started:
        await sink.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox().start()
    yield box
    box.stop()


class Sender:
    """The notify stage's way of sending, without its Kafka bookkeeping: an alert as the opening of
    its own incident (``standalone``), routed over the channels and delivered with retries."""

    def __init__(self, config: NotifyConfig) -> None:
        self.config = config
        self.notifier = Notifier(config)
        self.channels = Channels(self.notifier)
        self.targets = self.notifier.targets

    def target_ids(self, alert: Alert) -> list[str]:
        return [c.id for c in self.channels.route(standalone(alert, NOW))]

    def delivery(self, alert: Alert, *, already_ok: Collection[str] = (), on_success: Any = None,
                 budget: RetryBudget | None = None) -> Delivery:  # fmt: skip
        note = standalone(alert, NOW)
        accept = (lambda ch, _res: on_success(ch.id)) if on_success else None
        return Delivery(note, self.channels.route(note), budget or self.config.retry, already=set(already_ok),
                        on_accept=accept)  # fmt: skip

    async def deliver_with_retry(self, alert: Alert, *, already_ok: Collection[str] = (),
                                 on_success: Any = None) -> DeliveryOutcome:  # fmt: skip
        if not self.channels.route(standalone(alert, NOW)):
            return DeliveryOutcome(delivered=False, reason="no_route", attempts=0)
        d = self.delivery(alert, already_ok=already_ok, on_success=on_success).start()
        await d.wait()
        return d.outcome()

    async def send(self, *args: Any, **kw: Any) -> Any:
        return await self.notifier.send(*args, **kw)

    async def deliver(self, alert: Alert) -> DeliveryOutcome:
        """One send to every routed target, no retries."""
        d = self.delivery(alert, budget=msgspec.structs.replace(self.config.retry, attempts=1)).start()
        await d.wait()
        return d.outcome()


def notifier(*targets: tuple[str, tuple[str, ...]], retry: RetryBudget = FAST, **kw: object) -> Sender:
    return Sender(NotifyConfig(targets=tuple(NotifyTarget(url=u, tags=t) for u, t in targets), retry=retry, **kw))  # type: ignore[arg-type]


# -- what the sinks receive ------------------------------------------------------------------


async def test_json_sink_receives_exactly_the_rendered_alert(sinks) -> None:
    sink = await sinks()
    n = notifier((sink.url("hooks/ops"), ("ops",)))
    result = await n.deliver(make_alert())
    assert result.delivered and [(r.target, r.ok, r.reason) for r in result.results] == [
        (f"json://127.0.0.1:{sink.port}/****/****", True, "ok")
    ]
    [rec] = sink.received
    assert rec.path == "/hooks/ops"
    assert rec.body == {
        "version": "1.0",
        "title": "[FAILED] createDesktops in project 0bec… (cn-north-4)",
        "message": "Job:      createDesktops (workspace)\n"
                   "Status:   RUNNING → FAILED\n"
                   f"Project:  {PROJECT}\n"
                   "Region:   cn-north-4\n"
                   "Job ID:   ff80-1\n"
                   "Error:    WKS.0112: Insufficient desktop quota.\n"
                   "Desktop:  dev-01\n"
                   "User:     alice\n"
                   "Rule:     job-failed (error)",
        "attachments": [],
        "type": "failure",
    }


@pytest.mark.parametrize(
    ("severity", "kind", "sent_type"),
    [("critical", "firing", "failure"), ("error", "firing", "failure"), ("warning", "firing", "warning"),
     ("info", "firing", "info"), ("critical", "resolved", "success")],
)
async def test_severity_maps_to_apprise_type(sinks, severity: str, kind: str, sent_type: str) -> None:
    sink = await sinks()
    await notifier((sink.url(), ("ops",))).deliver(make_alert(severity=severity, kind=kind))
    assert [r.body["type"] for r in sink.received] == [sent_type]


async def test_smtp_server_receives_subject_and_body(mailbox: Mailbox) -> None:
    al = make_alert()
    n = notifier((mailbox.url(to="oncall@example.com", sender="watcher@example.com"), ("ops",)))
    assert (await n.deliver(al)).delivered
    [mail] = mailbox.mails
    assert (mail.mail_from, mail.rcpt_tos) == ("watcher@example.com", ["oncall@example.com"])
    assert mail.subject == default_title(al)
    assert mail.message.get_content_type() == "text/plain"
    assert mail.text.replace("\r\n", "\n").rstrip("\n") == default_body(al) + (
        "\n\n--\nAlert job-failed|ff80-1, fired 2026-11-23T12:00:30Z by watcher."
    )  # mail: the full body, and a footer to quote in a ticket


def _inert(text: str) -> None:
    assert "<!channel>" not in text and "@everyone" not in text and "@here" not in text
    assert not any(unicodedata.category(c) == "Cc" and c not in "\r\n\t" for c in text)


async def test_hostile_job_text_arrives_inert_and_truncated(sinks, mailbox: Mailbox) -> None:
    sink = await sinks()
    al = make_alert(message=HOSTILE + "Z" * 50_000, desktop="pwn\x1b]0;title\x07 @here")
    n = notifier((sink.url(), ("ops",)), (mailbox.url(), ("ops",)))
    assert (await n.deliver(al)).delivered
    sent = sink.received[0].body
    title, message = sent["title"], sent["message"]
    for text in (title, message):
        _inert(text)
    full = sanitize(default_body(al), 10**9)  # everything, defused, uncut
    marker = f"… (truncated, {len(full) - 3964} more characters)"
    assert len(full) > 50_000 and message == full[:3964] + marker and len(message) == 4000
    assert f"Error:    WKS.0112: <{ZWSP}!channel> @{ZWSP}everyone <script>alert(1)</script>[31m\n" in message
    # JSON is data, not markup: the text arrives as text; a consumer rendering HTML must escape it.
    [mail] = mailbox.mails
    _inert(mail.subject)
    _inert(mail.text)
    mail_text = sanitize(default_body(al) + mail_footer(al), 4000)  # the footer is past the cut, and counted
    assert mail.text.replace("\r\n", "\n").rstrip("\n") == mail_text and mail_text[:3964] == message[:3964]


async def test_html_email_gets_the_text_escaped_by_apprise(mailbox: Mailbox) -> None:
    n = notifier((mailbox.url() + "&format=html", ("ops",)))
    assert (await n.deliver(make_alert(message=HOSTILE))).delivered
    [mail] = mailbox.mails
    html = next(p for p in mail.message.walk() if p.get_content_type() == "text/html").get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html


async def test_console_target_prints_the_alert(capsys: pytest.CaptureFixture[str]) -> None:
    n = notifier(("console://", ("console",)))
    assert repr(n.config.targets[0]) == "NotifyTarget(url='console://', tags=('console',))"
    assert (await n.deliver(make_alert(tags=("console",), severity="warning"))).delivered
    out = capsys.readouterr().out
    assert out.startswith("[warning] [FAILED] createDesktops in project 0bec… (cn-north-4)\n    Job:      ")
    assert out.endswith("    Rule:     job-failed (warning)\n")


SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
DISCORD = "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js"


async def _chat_sinks(sinks) -> tuple[Notifier, WebhookSink]:
    sink = await sinks()
    n = notifier((SLACK, ("ops",)), (DISCORD, ("ops",)))
    slack, discord = n.targets
    slack.plugin.webhook_url = f"http://127.0.0.1:{sink.port}/services"  # test-only redirect, see module doc
    discord.plugin.notify_url = f"http://127.0.0.1:{sink.port}/api/webhooks"
    return n, sink


async def test_apprise_text_format_escapes_slack_but_not_discord(sinks) -> None:
    """The claim "TEXT lets Apprise escape per channel", checked: true for Slack, false for Discord."""
    n, sink = await _chat_sinks(sinks)
    results = await n.send(n.targets, "raw", "hi <!channel> @everyone <@123>")  # raw: bypasses render()
    assert all(r.ok for r in results)
    by_path = {r.path.split("/")[1]: r.body for r in sink.received}
    assert by_path["services"]["attachments"][0]["text"] == "hi &lt;!channel&gt; @everyone &lt;@123&gt;"
    assert by_path["api"]["content"] == "raw\r\nhi <!channel> @everyone <@123>"  # would ping everyone
    assert "allow_mentions" not in by_path["api"] and "allowed_mentions" not in by_path["api"]


async def test_rendered_alert_defuses_mentions_on_slack_and_discord(sinks) -> None:
    n, sink = await _chat_sinks(sinks)
    assert (await n.deliver(make_alert(message="<!channel> @everyone <@123>"))).delivered
    by_path = {r.path.split("/")[1]: r.body for r in sink.received}
    slack_text = by_path["services"]["attachments"][0]["text"]
    discord_text = by_path["api"]["content"]
    assert f"&lt;{ZWSP}!channel&gt; @{ZWSP}everyone &lt;{ZWSP}@123&gt;" in slack_text
    assert f"<{ZWSP}!channel> @{ZWSP}everyone <{ZWSP}@123>" in discord_text
    _inert(discord_text)


async def test_each_channel_kind_gets_its_own_layout_of_the_default_body(sinks, mailbox: Mailbox) -> None:
    """One alert with the default body: chat gets the compact lines, mail the full body and a
    footer, a JSON webhook the full body; a rule's own body goes out as written everywhere."""
    n, sink = await _chat_sinks(sinks)
    hook = await sinks()
    n = notifier((SLACK, ("ops",)), (mailbox.url(), ("ops",)), (hook.url(), ("ops",)))
    n.targets[0].plugin.webhook_url = f"http://127.0.0.1:{sink.port}/services"
    assert [t.kind for t in n.targets] == ["chat", "mail", "webhook"]
    al = msgspec.structs.replace(make_alert(), body="Job type: createDesktops (workspace)", default_body=True)
    assert (await n.deliver(al)).delivered
    assert sink.received[0].body["attachments"][0]["text"] == (
        "Status: RUNNING → FAILED\nError: WKS.0112: Insufficient desktop quota.\nDesktop: dev-01\n"
        f"Job ID: ff80-1\nworkspace · project {PROJECT} (cn-north-4) · rule job-failed"
    )
    [mail] = mailbox.mails
    footer = "\n\n--\nAlert job-failed|ff80-1, fired 2026-11-23T12:00:30Z by watcher."
    assert mail.text.replace("\r\n", "\n").rstrip("\n") == "Job type: createDesktops (workspace)" + footer
    assert hook.received[0].body["message"] == "Job type: createDesktops (workspace)"
    own = msgspec.structs.replace(al, key="k2", body="Desktop {{ dev-01 }} failed: call the pool owner", default_body=False)
    assert (await n.deliver(own)).delivered
    assert sink.received[1].body["attachments"][0]["text"] == own.body
    assert hook.received[1].body["message"] == own.body


async def test_each_chat_service_gets_the_text_cut_to_its_own_limit(sinks) -> None:
    """50 kB of job text: Slack gets the configured 4,000 characters, Discord its own 2,000
    (title and body share its ``content``), each ending in the marker with the true count."""
    n, sink = await _chat_sinks(sinks)
    al = make_alert(message=HOSTILE + "Z" * 50_000)
    assert (await n.deliver(al)).delivered
    by_path = {r.path.split("/")[1]: r.body for r in sink.received}
    full = sanitize(chat_body(al), 10**9)  # chat: the compact layout
    slack_text = by_path["services"]["attachments"][0]["text"]
    assert slack_text.endswith(f"… (truncated, {len(full) - 3964} more characters)")
    title = sanitize(default_title(al), 250)
    content = by_path["api"]["content"]
    assert len(content) == 2000 and content.startswith(f"{title}\r\n{full[:100]}")
    kept = 2000 - len(title) - 2 - len(f"… (truncated, {len(full) - 1900} more characters)")
    assert content == f"{title}\r\n{full[:kept]}… (truncated, {len(full) - kept} more characters)"
    _inert(content)


# -- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
async def test_retry_resends_only_the_failed_target(sinks, k: int) -> None:
    flaky, steady = await sinks(fail_next=k), await sinks()
    n = notifier((flaky.url("flaky"), ("ops",)), (steady.url("steady"), ("ops",)))
    flaky_id, steady_id = (t.id for t in n.targets)
    marks: list[str] = []
    out = await n.deliver_with_retry(make_alert(), on_success=marks.append)
    assert (out.delivered, out.reason, out.attempts, out.failed_targets) == (True, "delivered", k + 1, ())
    assert (flaky.attempts, len(flaky.received), steady.attempts) == (k + 1, 1, 1)
    assert marks == [steady_id, flaky_id] and set(out.sent) == {steady_id, flaky_id}  # marks: as each accepted


async def test_a_slow_target_does_not_hold_up_the_mark_of_a_fast_one(sinks) -> None:
    """Each target is marked the moment it accepts: the fast one while the flaky one still retries."""
    flaky, steady = await sinks(fail_next=2), await sinks()
    budget = RetryBudget(attempts=4, base_delay=0.2, max_delay=0.2, budget_seconds=30.0)
    n = notifier((flaky.url("flaky"), ("ops",)), (steady.url("steady"), ("ops",)), retry=budget)
    flaky_id, steady_id = (t.id for t in n.targets)
    marks: list[str] = []
    d = n.delivery(make_alert(), on_success=marks.append).start()
    assert not await d.wait(0.05)  # the flaky one is waiting to retry...
    assert marks == [steady_id] and (flaky.attempts, steady.attempts) == (1, 1)  # ...the steady one is marked
    assert await d.wait(10)
    out = d.outcome()
    assert (out.delivered, out.attempts) == (True, 3)
    assert marks == [steady_id, flaky_id] and (flaky.attempts, len(flaky.received), steady.attempts) == (3, 1, 1)


async def test_already_delivered_targets_are_not_sent_again(sinks) -> None:
    a, b = await sinks(), await sinks()
    n = notifier((a.url(), ("ops",)), (b.url(), ("ops",)))
    out = await n.deliver_with_retry(make_alert(), already_ok={n.targets[1].id})
    assert out.delivered and (a.attempts, b.attempts) == (1, 0)
    again = await n.deliver_with_retry(make_alert(), already_ok={t.id for t in n.targets})
    assert (again.delivered, again.attempts, a.attempts, b.attempts) == (True, 0, 1, 0)


async def test_always_failing_target_goes_dead_with_reason(sinks) -> None:
    broken, fine = await sinks(fail_always=True), await sinks()
    n = notifier((broken.url("down"), ("ops",)), (fine.url(), ("ops",)))
    out = await n.deliver_with_retry(make_alert())
    assert (out.delivered, out.reason, out.attempts) == (False, "http_5xx", FAST.attempts)
    assert out.failed_targets == (f"json://127.0.0.1:{broken.port}/****",)
    assert (broken.attempts, fine.attempts) == (FAST.attempts, 1) and out.sent == (n.targets[1].id,)


async def test_client_error_is_not_retried(sinks) -> None:
    sink = await sinks()
    n = notifier((sink.url() + "?method=PUT", ("ops",)))  # the sink only routes POST: 405
    out = await n.deliver_with_retry(make_alert())
    assert (out.delivered, out.reason, out.attempts, sink.attempts) == (False, "http_4xx", 1, 0)


async def test_refused_connection_is_retried_then_dead() -> None:
    n = notifier((f"json://127.0.0.1:{closed_port()}/x", ("ops",)))
    out = await n.deliver_with_retry(make_alert())
    assert (out.delivered, out.reason, out.attempts) == (False, "connection", FAST.attempts)


async def test_budget_seconds_stop_retries_early(sinks) -> None:
    broken = await sinks(fail_always=True)
    slow = RetryBudget(attempts=50, base_delay=0.2, max_delay=0.2, budget_seconds=0.5)
    n = notifier((broken.url(), ("ops",)), retry=slow)
    started = time.monotonic()
    out = await n.deliver_with_retry(make_alert())
    # waits are 0.1-0.2 s (equal jitter): sends at 0, then each wait must end before 0.5 s,
    # so 3 sends when every wait is 0.2 s and 5 when every wait is 0.1 s; never the 50 allowed.
    assert out.dead and 3 <= out.attempts <= 5 and broken.attempts == out.attempts
    assert time.monotonic() - started < 2.0


async def test_alert_without_a_matching_target_is_dead_no_route(sinks) -> None:
    sink = await sinks()
    n = notifier((sink.url(), ("ops",)))
    out = await n.deliver_with_retry(make_alert(tags=("nobody",)))
    assert (out.delivered, out.reason, out.attempts, sink.attempts) == (False, "no_route", 0, 0)


async def test_untagged_alerts_and_targets_use_default_tags(sinks) -> None:
    default, ops = await sinks(), await sinks()
    n = notifier((default.url(), ()), (ops.url(), ("ops",)), default_tags=("default",))
    assert n.target_ids(make_alert(tags=())) == [n.targets[0].id]
    assert (await n.deliver_with_retry(make_alert(tags=()))).delivered
    assert (default.attempts, ops.attempts) == (1, 0)


async def test_untagged_alerts_go_to_every_target_without_default_tags(sinks) -> None:
    one, ops = await sinks(), await sinks()
    n = notifier((one.url(), ()), (ops.url(), ("ops",)))
    assert n.target_ids(make_alert(tags=())) == [n.targets[0].id, n.targets[1].id]
    assert n.target_ids(make_alert(tags=("nobody",))) == []
    assert (await n.deliver_with_retry(make_alert(tags=()))).delivered
    assert (one.attempts, ops.attempts) == (1, 1)


async def test_apprise_yaml_config_targets_are_routed_by_their_tags(sinks, tmp_path) -> None:
    sink = await sinks()
    path = tmp_path / "apprise.yaml"
    path.write_text(f"urls:\n  - json://127.0.0.1:{sink.port}/from-yaml:\n      - tag: ops\n")
    n = Sender(NotifyConfig(apprise_config=str(path), retry=FAST))
    assert (await n.deliver_with_retry(make_alert(tags=("ops",)))).delivered
    assert [r.path for r in sink.received] == ["/from-yaml"]
    with pytest.raises(ConfigError, match="not found"):
        Notifier(NotifyConfig(apprise_config=str(tmp_path / "missing.yaml")))


# -- secrets ---------------------------------------------------------------------------------

PASSWORD = "Pa55w0rd-XYZZY-9"
TOKEN = "tok3nABCDEF1234567890"
HEADER = "HeaderSecretQWERTY12345"


@pytest.mark.parametrize("apprise_debug", [False, True], ids=["default-levels", "apprise-logger-forced-debug"])
async def test_secrets_never_leave(sinks, caplog: pytest.LogCaptureFixture, apprise_debug: bool) -> None:
    caplog.set_level(logging.DEBUG)
    broken = await sinks(fail_always=True)
    urls = (
        f"json://alice:{PASSWORD}@127.0.0.1:{broken.port}/hook/{TOKEN}?+X-Api-Key={HEADER}",
        f"mailto://bob:{PASSWORD}@127.0.0.1:{closed_port()}?from=w@example.com&to=o@example.com",
    )
    # One attempt: Apprise throttles each email target to one send per 5.5 s, and the
    # failure logs we check are written on the first attempt.
    config = NotifyConfig(targets=tuple(NotifyTarget(url=u, tags=("ops",)) for u in urls),
                          retry=RetryBudget(attempts=1))
    n = Sender(config)
    if apprise_debug:  # an operator turning Apprise's logger up: the redacting filter must still hold
        caplog.set_level(logging.DEBUG, logger="apprise")
    out = await n.deliver_with_retry(make_alert())
    assert out.dead and len(out.failed_targets) == 2
    dead = DeadLetter(notification=standalone(make_alert(), NOW), reason=out.reason, attempts=out.attempts,
                      failed_targets=out.failed_targets, failed_at=NOW)
    tested = {
        "target repr": repr(config.targets[0]) + str(config.targets[1]),
        "config repr": repr(config),
        "format_results": format_results(list(out.results)),
        "outcome": repr(out) + out.reason + " ".join(out.failed_targets),
        "dead letter": encode(dead).decode(),
        "logs": caplog.text + "".join(r.getMessage() for r in caplog.records),
    }
    for what, text in tested.items():
        for secret in (PASSWORD, TOKEN, HEADER):
            assert secret not in text, f"{what} leaks {secret}"
    assert "json://alice:****@127.0.0.1" in tested["target repr"]
    assert "Failed to send JSON POST notification" in tested["logs"]  # the logs were there to check
    if apprise_debug:
        assert "****" in caplog.text  # debug lines were emitted, with secrets replaced


async def test_bad_url_is_a_config_error_without_the_secret() -> None:
    with pytest.raises(ConfigError) as info:
        Notifier(NotifyConfig(targets=(NotifyTarget(url=f"nosuchscheme://u:{PASSWORD}@host/x"),)))
    assert "notify.targets[0].url" in str(info.value) and PASSWORD not in str(info.value)
    assert repr(NotifyTarget(url=f"nosuchscheme://u:{PASSWORD}@h")) == "NotifyTarget(url='<redacted>', tags=())"


def test_config_decodes_from_toml_shape() -> None:
    raw = b'[[targets]]\nurl = "json://127.0.0.1/x"\ntags = ["ops"]\n[retry]\nattempts = 2\n'
    cfg = msgspec.toml.decode(raw, type=NotifyConfig)
    assert cfg.targets == (NotifyTarget(url="json://127.0.0.1/x", tags=("ops",)),)
    assert cfg.retry == RetryBudget(attempts=2) and cfg.default_tags == ()


# -- notify test command -----------------------------------------------------------------------


async def test_send_test_reports_each_target(sinks) -> None:
    ok, bad, other = await sinks(), await sinks(fail_always=True), await sinks()
    config = NotifyConfig(targets=(
        NotifyTarget(url=ok.url("ok"), tags=("smoke",)),
        NotifyTarget(url=bad.url("bad"), tags=("smoke",)),
        NotifyTarget(url=other.url("other"), tags=("other",)),
    ))
    results = await send_test(config, "smoke")
    assert format_results(results) == (
        f"OK      json://127.0.0.1:{ok.port}/****\n"
        f"FAILED  json://127.0.0.1:{bad.port}/****  [http_5xx] "
        "Failed to send JSON POST notification: Internal server error., error=500."
    )
    assert ok.received[0].body["title"] == "watcher test notification" and other.attempts == 0
    assert await send_test(config, "nobody") == []
    assert format_results([]) == "no notification targets matched"


# -- the retry decision (pure) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        ("SUCCESS", "", (False, "ok")),
        ("TIMEOUT", "", (True, "timeout")),
        ("ERROR", "TypeError", (False, "error")),
        ("FAILURE", "Failed to send JSON POST notification: Internal server error., error=500.", (True, "http_5xx")),
        ("FAILURE", "Failed to send Slack notification: Too Many Requests, error=429.", (True, "http_429")),
        ("FAILURE", "Failed to send Discord notification: Unauthorized, error=401.", (False, "http_4xx")),
        ("FAILURE", "A Connection error occurred sending JSON notification to 127.0.0.1.", (True, "connection")),
        ("FAILURE", 'Connection error while submitting email to "127.0.0.1"', (True, "connection")),
        ("FAILURE", "", (True, "failed")),
    ],
)
def test_classify(status: str, detail: str, expected: tuple[bool, str]) -> None:
    assert classify(TargetResult(target="t", ok=status == "SUCCESS", status=status, detail=detail)) == expected


def test_backoff_is_exponential_capped_and_jittered() -> None:
    b = RetryBudget(base_delay=1.0, max_delay=5.0)
    assert [backoff_delay(n, b, rand=lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.5]
    assert [backoff_delay(n, b, rand=lambda: 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
