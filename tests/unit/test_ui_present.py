"""What each status page shows, from a view fed directly: no broker, no browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from tests.integration import ui_deployment as U
from watcher import events as ev
from watcher.rules.silence import Silence
from watcher.ui import present
from watcher.ui.actions import similar_match
from watcher.ui.view import TopicView

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s ago"), (59, "59s ago"), (60, "1m 0s ago"), (3599, "59m 59s ago"), (3600, "1h 0m ago"),
    (86399, "23h 59m ago"), (90000, "1d 1h ago"), (-5, "in the future"),
])  # fmt: skip
def test_ago(seconds: int, text: str) -> None:
    assert present.ago(NOW - timedelta(seconds=seconds), NOW) == text
    assert present.ago(None, NOW) == "never"


def fed(d: U.Deployment) -> TopicView:
    view = TopicView()
    view.apply("incidents", d.incident.id.encode(), ev.encode(d.incident))
    view.apply("alerts", b"", ev.encode(d.alert))
    view.apply("notifications", b"", ev.encode(d.note))
    view.apply("decisions", b"", ev.encode(d.muted))
    return view


def status(t: str, **kw: object) -> ev.TargetStatus:
    base = dict(target=t, source="workspace", region="r", project_id=t, worker="w", last_ok=NOW, updated_at=NOW)
    return ev.TargetStatus(**{**base, **kw})  # type: ignore[arg-type]


def test_overview_lists_configured_targets_first_with_their_health_then_unknown_ones() -> None:
    cfg = U.config("127.0.0.1:1", "w", U.__file__)  # type: ignore[arg-type]
    ids = [t.id for t in cfg.targets()]
    view = TopicView()
    view.targets = {
        ids[0]: status(ids[0]),
        ids[1]: status(ids[1], failures=2, last_error="HTTP 500"),
        "evs/other/p9": status("evs/other/p9", last_ok=NOW - timedelta(minutes=5)),
    }
    o = present.overview(view, cfg.targets(), NOW)
    assert [(r.id, r.health, r.age) for r in o.targets] == [
        (ids[0], "ok", "0s ago"), (ids[1], "failing", "0s ago"), (ids[2], "no status yet", "never"),
        ("evs/other/p9", "stale", "5m 0s ago"),
    ]
    view.targets[ids[0]] = status(ids[0], blind_since=NOW)
    assert present.overview(view, cfg.targets(), NOW).health == {"blind": 1, "failing": 1, "no status yet": 1,
                                                                 "stale": 1}


def test_incidents_sorted_into_states_with_notification_fates_per_target() -> None:
    d = U.deployment("w", NOW)
    view = fed(d)
    view.apply("delivered", f"{d.note.key}|json://a".encode(), b"1")
    view.apply("delivered", f"{d.note.key}|*".encode(), b"dead")
    view.apply("dlq", b"", ev.encode(ev.DeadLetter(notification=d.note, reason="HTTP 500", attempts=5,
                                                   failed_targets=("mailto://b",), failed_at=NOW)))  # fmt: skip
    snoozed = msgspec.structs.replace(d.incident, id="s", snoozed_until=NOW + timedelta(hours=1))
    acked = msgspec.structs.replace(d.incident, id="a", state="acknowledged", acknowledged_by="@ana")
    resolved = msgspec.structs.replace(d.incident, id="r", state="resolved", resolved_at=NOW)
    for inc in (snoozed, acked, resolved):
        view.apply("incidents", inc.id.encode(), ev.encode(inc))
    page = present.incidents(view, NOW)
    assert {s: [c.incident.id for c in cards] for s, cards in page.sections.items()} == {
        "firing": [d.incident.id], "acknowledged": ["a"], "snoozed": ["s"], "resolved": ["r"]}
    c = page.sections["firing"][0]
    assert [(n.note.key, n.fate) for n in c.notes] == [(d.note.key, "dead-lettered")]
    assert [(t.target, t.fate) for t in c.notes[0].targets] == [("json://a", "delivered"), ("mailto://b", "dead-lettered")]
    assert [x.reason for x in c.dead] == ["HTTP 500"]
    assert [m.alert.key for m in page.muted] == [d.muted.alert.key] and page.muted_count == 1
    assert present.status_of(msgspec.structs.replace(snoozed, snoozed_until=NOW - timedelta(seconds=1)), NOW) == "firing"


def test_an_update_no_target_had_to_hear_is_nothing_to_tell_not_delivered() -> None:
    d = U.deployment("w", NOW)
    view = fed(d)
    view.apply("delivered", f"{d.note.key}|{U.TARGET}".encode(), b'"1"')  # the open one: the webhook took it
    view.apply("delivered", f"{d.note.key}|*".encode(), b'"1"')
    edit = ev.Notification(key=ev.notification_key(d.incident.id, 1, 2), kind="update", incident=d.incident,
                           change="acknowledged by @ana", audience="editable", created_at=NOW)  # fmt: skip
    view.apply("notifications", b"", ev.encode(edit))
    view.apply("delivered", f"{edit.key}|*".encode(), b'"1"')  # settled: no editable target here
    [card] = present.incidents(view, NOW).sections["firing"]
    assert [(n.note.key, n.fate, [t.target for t in n.targets]) for n in card.notes] == [
        (d.note.key, "delivered", [U.TARGET]), (edit.key, "nothing to tell", [])]


def test_each_section_shows_at_most_show_newest_first() -> None:
    d = U.deployment("w", NOW)
    view = TopicView()
    for i in range(5):
        inc = msgspec.structs.replace(d.incident, id=f"i{i}", updated_at=NOW + timedelta(seconds=i))
        view.apply("incidents", inc.id.encode(), ev.encode(inc))
    page = present.incidents(view, NOW, show=2)
    assert [c.incident.id for c in page.sections["firing"]] == ["i4", "i3"] and page.counts["firing"] == 5


@pytest.mark.parametrize(("query", "kind", "incidents", "jobs"), [
    ("d-7", "job", 1, 1), ("D-7", "any", 1, 1), (U.P1[-6:], "project", 1, 1), ("desktop-failed", "rule", 1, 1),
    ("<!channel>", "text", 1, 1), ("d-7", "rule", 0, 0), ("nothing-like-it", "any", 0, 0), ("  ", "any", 0, 0),
])  # fmt: skip
def test_search_by_job_project_rule_or_text(query: str, kind: str, incidents: int, jobs: int) -> None:
    found = present.search(fed(U.deployment("w", NOW)), query, kind)
    assert (len(found.incidents), len(found.jobs)) == (incidents, jobs)


def test_would_match_counts_the_alerts_of_the_last_24h_a_match_mutes() -> None:
    d = U.deployment("w", NOW)
    view = fed(d)
    old = msgspec.structs.replace(d.alert, key="old", fired_at=NOW - timedelta(hours=30))
    view.apply("alerts", b"", ev.encode(old))
    assert present.would_match(view, 'rule == "desktop-failed"', NOW) == 1
    assert present.would_match(view, 'job_type == "createDesktops" && error_code == "WKS.0042"', NOW) == 1
    assert present.would_match(view, 'rule == "other"', NOW) == 0


def test_silences_are_listed_by_state_runtime_ones_expirable() -> None:
    view = TopicView()
    rows = [Silence(id="on", match="true", starts=NOW - timedelta(hours=1)),
            Silence(id="later", match="true", starts=NOW + timedelta(hours=1)),
            Silence(id="over", match="true", starts=NOW - timedelta(hours=2), ends=NOW - timedelta(hours=1))]
    view.silences = {s.id: s for s in rows}
    filed = Silence(id="f.yaml:3", match="true", origin="f.yaml:3")
    out = present.silences(view, [filed], NOW)
    assert {k: [(r.silence.id, r.expirable) for r in v] for k, v in out.items()} == {
        "active": [("on", True), ("f.yaml:3", False)], "pending": [("later", True)], "expired": [("over", False)]}


def test_silence_similar_matches_the_rule_and_job_type_quoted_for_cel() -> None:
    d = U.deployment("w", NOW)
    assert similar_match(d.incident) == 'rule == "desktop-failed" && job_type == "createDesktops"'
    odd = msgspec.structs.replace(d.incident, rule='a"b', jobs=(), last_alert=None)
    assert similar_match(odd) == 'rule == "a\\"b"'
