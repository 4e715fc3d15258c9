"""watcher.notify.cards and summary: the card's exact content, valid Block Kit within Slack's limits,
state lines, the buttons, links, and the mail layout. Pure."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from slack_sdk.models.blocks import Block

from tests.fakes.incidents import OPENED, incident, job, note
from watcher.events import Alert, JobEvent
from watcher.notify import cards, summary

LINKS = {"workspace": "https://console.example.com/ws/?region={region}#/job/{job_id}"}


def stamp(minutes: float) -> int:
    return int((OPENED + timedelta(minutes=minutes)).timestamp())


def date(minutes: float, fallback: str) -> str:
    return f"<!date^{stamp(minutes)}^{{date_short_pretty}} at {{time}}|{fallback}>"


def valid_block_kit(blocks: list[dict]) -> None:
    assert len(blocks) <= 50
    for b in blocks:
        parsed = Block.parse(b)
        assert parsed is not None, b
        parsed.validate_json()  # slack-sdk's own checks of lengths and required fields
        assert parsed.to_dict() == b


def test_a_batch_of_20_is_one_card_listing_10_then_and_n_more() -> None:
    inc = incident(20)
    card = cards.card(note("update", inc, minutes=12), jobs=10)
    valid_block_kit(card.blocks)
    header, facts, jobs, context, actions = card.blocks
    assert header == {"type": "header", "text": {"type": "plain_text", "emoji": True,
                      "text": "ERROR · [FAILED] createDesktops in project 0bec… (cn-north-4)"}}  # fmt: skip
    assert [f["text"] for f in facts["fields"]] == [
        "*Severity*\nerror", "*Where*\ncn-north-4 · project 0bec5db98280d2d02fd6c00c2de791ce",
        "*Firing for*\n12 min", "*Jobs*\n20 failing of 20 jobs", "*Rule*\ndesktop-failed", "*Error codes*\nWKS.0001"]
    lines = jobs["text"]["text"].split("\n")
    assert len(lines) == 11 and lines[-1] == "…and 10 more"
    assert lines[0] == "• *createDesktops* job-01 desk-01: RUNNING → FAILED — WKS.0001: quota exceeded"
    assert context == {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Firing since {date(0, '08:00 UTC')}"}]}
    assert [(b["action_id"], b["text"]["text"], b["value"]) for b in actions["elements"]] == [
        ("watcher_ack", "Acknowledge", inc.id), ("watcher_snooze_1h", "Snooze 1h", inc.id),
        ("watcher_snooze_4h", "Snooze 4h", inc.id), ("watcher_silence_1h", "Silence similar 1h", inc.id),
        ("watcher_silence_4h", "Silence similar 4h", inc.id), ("watcher_silence_24h", "Silence similar 24h", inc.id)]
    assert set(cards.ACTIONS) == {"watcher_ack", "watcher_unack"} | {b["action_id"] for b in actions["elements"]}
    assert card.text == (":large_orange_circle: ERROR · [FAILED] createDesktops in project 0bec… (cn-north-4) — "
                         "Firing since 08:00 UTC")


def test_more_jobs_and_recovered_ones_are_counted() -> None:
    inc = incident(3, more_jobs=40, jobs=(job(1, firing=False, status="SUCCESS", code=None, message=None), job(2), job(3)))
    card = cards.card(note("update", inc), jobs=2)
    jobs = card.blocks[2]["text"]["text"].split("\n")
    assert jobs == ["• *createDesktops* job-02 desk-02: RUNNING → FAILED — WKS.0001: quota exceeded",
                    "• *createDesktops* job-03 desk-03: RUNNING → FAILED — WKS.0001: quota exceeded",
                    "…and 41 more"]  # fmt: skip
    assert card.blocks[1]["fields"][3]["text"] == "*Jobs*\n42 failing of 43 jobs"


def test_very_long_job_text_stays_within_one_section() -> None:
    inc = incident(40, jobs=tuple(job(i, message="x" * 290) for i in range(40)))
    card = cards.card(note("open", inc), jobs=40)
    valid_block_kit(card.blocks)
    text = card.blocks[2]["text"]["text"]
    assert len(text) <= 3000 and text.endswith("more")
    shown = text.count("\n• ") + 1
    assert text.split("\n")[-1] == f"…and {40 - shown} more"


@pytest.mark.parametrize(("changes", "state", "first_button"), [
    ({"state": "acknowledged", "acknowledged_by": "@ana", "acknowledged_at": OPENED + timedelta(minutes=2)},
     f"Acknowledged by @ana at {date(2, '08:02 UTC')}", "watcher_unack"),
    ({"snoozed_until": OPENED + timedelta(hours=2), "snoozed_by": "@bo", "escalated": 2},
     f"Snoozed until {date(120, '10:00 UTC')} by @bo · firing since {date(0, '08:00 UTC')} · escalated (step 2)",
     "watcher_ack"),
    ({"snoozed_until": OPENED + timedelta(minutes=5), "snoozed_by": "@bo"},  # snooze over: not shown
     f"Firing since {date(0, '08:00 UTC')}", "watcher_ack"),
    ({"state": "acknowledged", "acknowledged_by": "<!channel>", "acknowledged_at": OPENED},
     f"Acknowledged by &lt;\u200b!channel&gt; at {date(0, '08:00 UTC')}", "watcher_unack"),
])
def test_state_line_and_ack_button(changes: dict, state: str, first_button: str) -> None:
    card = cards.card(note("update", incident(**changes), minutes=30))
    context = [b for b in card.blocks if b["type"] == "context"][0]
    assert context["elements"][0]["text"] == state
    assert [b for b in card.blocks if b["type"] == "actions"][0]["elements"][0]["action_id"] == first_button


def test_resolved_on_another_day_and_lasting() -> None:
    inc = incident(state="resolved", resolved_at=OPENED + timedelta(days=1, hours=2, minutes=5))
    assert summary.state_line(inc, OPENED + timedelta(days=1, hours=3)) == "Resolved at 10:05 UTC after 1 d 2 h"
    assert summary.state_line(inc, OPENED + timedelta(days=3)) == "Resolved at 2026-11-24 10:05 UTC after 1 d 2 h"
    card = cards.card(note("resolve", inc, minutes=60 * 27))
    assert card.blocks[1]["fields"][2]["text"] == "*Lasted*\n1 d 2 h"
    assert [b["type"] for b in card.blocks] == ["header", "section", "section", "context"]  # no buttons


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"),
                                               (3600, "1 h"), (4440, "1 h 14 min"), (86400, "1 d"), (97200, "1 d 3 h")])
def test_fmt_duration(seconds: int, text: str) -> None:
    assert summary.fmt_duration(seconds) == text


def test_links_are_built_from_templates_and_encoded() -> None:
    inc = incident(jobs=(msgspec.structs.replace(job(1), job_id="a/b?c=d&e"),))
    card = cards.card(note("open", inc), links=LINKS)
    url = "https://console.example.com/ws/?region=cn-north-4#/job/a%2Fb%3Fc%3Dd%26e"
    assert card.blocks[2]["text"]["text"].startswith(f"• *createDesktops* <{url}|a/b?c=d&amp;e> desk-01")
    assert card.blocks[3]["elements"][1]["text"] == f"<{url}|Open in console>"
    assert summary.incident_links(inc, {}) == []


def test_a_rules_own_body_is_shown_escaped() -> None:
    event = JobEvent(source="workspace", region="r", project_id="p", job_key="k", job_id="j", job_type="t",
                     status="FAILED", phase="failed", observed_at=OPENED)  # fmt: skip
    alert = Alert(key="k", rule="r", title="t", body="Pool <b> is *down* @here", event=event, fired_at=OPENED)
    card = cards.card(note("open", incident(), alert=alert))
    assert card.blocks[3]["text"]["text"] == "Pool &lt;b&gt; is *down* @\u200bhere"
    default = msgspec.structs.replace(alert, default_body=True)
    assert len(cards.card(note("open", incident(), alert=default)).blocks) == 5  # a default body adds nothing


@pytest.mark.parametrize(("kind", "change", "text"), [
    ("update", "desk-02 FAILED", ":arrows_counterclockwise: Updated: desk-02 FAILED"),
    ("update", "", ":arrows_counterclockwise: Updated"),
    ("resolve", "all jobs recovered", ":white_check_mark: Resolved: all jobs recovered"),
    ("remind", "", ":alarm_clock: Reminder: still firing"),
    ("escalate", "<!channel> x", "<!subteam^S0LEADS01> :rotating_light: Escalated (step 1): &lt;\u200b!channel&gt; x"),
])
def test_reply_text(kind: str, change: str, text: str) -> None:
    assert cards.reply_text(note(kind, incident(escalated=1), change=change), "S0LEADS01") == text


def test_mail_text_is_exact() -> None:
    inc = incident(2, state="acknowledged", acknowledged_by="@ana", acknowledged_at=OPENED + timedelta(minutes=3))
    subject, body = summary.mail_text(note("update", inc, change="acknowledged by @ana", minutes=4, seq=2), links=LINKS)
    assert subject == "Re: [FAILED] createDesktops in project 0bec… (cn-north-4)"
    assert body == (
        "Updated: acknowledged by @ana\n\n"
        "State:    Acknowledged by @ana at 08:03 UTC\n"
        "Severity: error\n"
        "Rule:     desktop-failed\n"
        "Where:    cn-north-4 · project 0bec5db98280d2d02fd6c00c2de791ce\n"
        "Duration: 4 min\n"
        "Errors:   WKS.0001\n\n"
        "Jobs (2 failing of 2 jobs):\n"
        "  - createDesktops job-01 desk-01: RUNNING → FAILED — WKS.0001: quota exceeded\n"
        "  - createDesktops job-02 desk-02: RUNNING → FAILED — WKS.0001: quota exceeded\n\n"
        "Open in console: https://console.example.com/ws/?region=cn-north-4#/job/job-01\n\n"
        f"--\nIncident {inc.id}, episode 1, notification 2 (update), 2026-11-23T08:04:00Z, by watcher.")
