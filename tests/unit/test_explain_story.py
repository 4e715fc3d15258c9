"""The live explain's story as data (collect, story_lines) and as text (format_story): one story."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.integration import ui_deployment as U
from watcher.app.explain import collect, format_story, story_lines
from watcher.config import BrokerConfig, Config
from watcher.rules.engine import RuleSet

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def story_of(marks: list[tuple[str, str]]) -> tuple[U.Deployment, list[str]]:
    d = U.deployment("w", NOW)
    events = [d.muted.alert.event, d.running, d.failing]  # type: ignore[attr-defined]
    story = collect(d.job_key, events, [d.alert], (), [d.muted], marks, [d.note])
    text = format_story(story, Config(broker=BrokerConfig(topic_prefix="w")), RuleSet([]))
    lines = story_lines(story, "w", RuleSet([]))
    assert text.splitlines() == ["    " * line.depth + line.text for line in lines]
    return d, text.splitlines()


def test_an_alert_is_followed_into_its_incident_and_its_notifications() -> None:
    key = U.deployment("w", NOW).note.key
    d, lines = story_of([(f"{key}|json://a", "1"), (f"{key}|*", "1")])
    assert lines == [
        f"job {d.job_key} (live, from the w.* topics)",
        "2026-11-23 07:58:30 UTC  RUNNING (first seen): no rule matches",
        "2026-11-23 07:59:30 UTC  RUNNING → FAILED: no rule matches",
        f"alert {d.alert.key} (desktop-failed, firing)",
        f"    → incident {d.incident.id}",
        f"incident {d.incident.id} (desktop-failed, firing, 1 job(s))",
        "    open 1/1 to every target: d-7 FAILED",
        "        delivered to json://a",
    ]


def test_a_muted_alert_says_why_and_is_marked_muted() -> None:
    d = U.deployment("w", NOW)
    job = d.muted.alert.event.job_key
    lines = story_lines(collect(job, [d.muted.alert.event], [], (), [d.muted]), "w", RuleSet([]))
    assert [(line.text, line.muted) for line in lines[-2:]] == [
        (f"alert {d.muted.alert.key} (desktop-failed, firing)", False),
        ("silenced: silence s-file (planned rebuild)", True),
    ]
