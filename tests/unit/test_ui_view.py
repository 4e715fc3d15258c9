"""The status page's in-memory view: what each record does to it, and how it stays bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from tests.integration import ui_deployment as U
from watcher import events as ev
from watcher.rules.silence import Silence
from watcher.ui.view import TopicView, table_text

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def alert(job_id: str, at: datetime, incident: str = "") -> ev.Alert:
    e = U.desktop_event(job_id, at, "boom")
    return ev.Alert(key=ev.alert_key("r", e), rule="r", title=f"t {job_id}", body="b", event=e, fired_at=at,
                    incident=incident)  # fmt: skip


def test_status_records_keep_the_latest_per_target_and_worker_and_tombstones_remove() -> None:
    view = TopicView()
    cfg = U.config("127.0.0.1:1", "w", U.__file__)  # type: ignore[arg-type]
    for key, rec in U.status_records(cfg, NOW):
        view.apply("status", key.encode(), ev.encode(rec))
    assert sorted(view.targets) == sorted(t.id for t in cfg.targets()) and list(view.workers) == ["host-a:101"]
    first = cfg.targets()[0].id
    later = msgspec.structs.replace(view.targets[first], polls=99, updated_at=NOW + timedelta(seconds=5))
    view.apply("status", first.encode(), ev.encode(later))
    assert view.targets[first].polls == 99
    view.apply("status", first.encode(), None)
    view.apply("status", b"worker:host-a:101", None)
    assert first not in view.targets and view.workers == {}
    assert view.version == 7 and view.malformed == 0


def test_incidents_come_from_the_changelog_as_json_strings_or_raw_and_none_deletes() -> None:
    view = TopicView()
    d = U.deployment("w", NOW)
    view.apply("incidents", json.dumps(d.incident.id).encode(), json.dumps(ev.encode(d.incident).decode()).encode())
    assert view.incidents == {d.incident.id: d.incident}
    later = msgspec.structs.replace(d.incident, state="acknowledged", acknowledged_by="@ana")
    view.apply("incidents", d.incident.id.encode(), ev.encode(later))  # raw bytes: also understood
    assert view.incidents[d.incident.id].acknowledged_by == "@ana"
    view.apply("incidents", json.dumps(d.incident.id).encode(), None)
    assert view.incidents == {}


def test_delivered_marks_per_target_and_whole_give_each_notifications_fate() -> None:
    view = TopicView()
    k = "r|subject#1/1"
    assert view.delivery(k).fate == "pending"
    view.apply("delivered", json.dumps(f"{k}|json://a").encode(), b'"1"')
    assert (view.delivery(k).fate, view.delivery(k).accepted) == ("retrying", ("json://a",))
    view.apply("delivered", json.dumps(f"{k}|*").encode(), b'"dead"')
    assert view.delivery(k).fate == "dead-lettered"
    view.apply("delivered", json.dumps(f"{k}|*").encode(), b'"1"')
    assert view.delivery(k).fate == "delivered"
    assert sorted(view.marks_of([k, "other"])) == [(f"{k}|*", "1"), (f"{k}|json://a", "1")]


def test_malformed_records_are_counted_not_raised_and_change_nothing() -> None:
    view = TopicView()
    for kind in ("status", "alerts", "notifications", "incidents", "silences", "decisions"):
        view.apply(kind, b"k", b"{not json")
    view.apply("alerts", b"k", ev.encode(ev.TrackRequest(source="evs", region="r", project_id="p", job_id="j")))
    assert view.malformed == 6 and len(view.alerts) == 0 and view.version == 1  # the track request: not an alert


def test_records_are_indexed_by_job_and_incident_and_bounded_per_key_and_in_all() -> None:
    view = TopicView(limit=5, per_key=2)
    for i in range(4):
        view.apply("alerts", b"", ev.encode(alert("d-1", NOW + timedelta(seconds=i), incident="inc-1")))
    job = U.desktop_event("d-1", NOW, "").job_key
    assert [a.fired_at.second for a in view.alerts.get(f"j:{job}")] == [2, 3]  # the newest per key
    assert [a.fired_at.second for a in view.alerts.get("i:inc-1")] == [2, 3]
    for i in range(4):
        view.apply("alerts", b"", ev.encode(alert(f"x-{i}", NOW + timedelta(seconds=10 + i))))
    assert len(view.alerts) == 5  # the oldest dropped first
    assert [a.fired_at.second for a in view.alerts.items] == [3, 10, 11, 12, 13]
    assert [a.fired_at.second for a in view.alerts.get(f"j:{job}")] == [3]  # its index forgets the dropped ones


def test_trim_forgets_records_older_than_keep_and_incidents_resolved_before_it() -> None:
    view = TopicView(keep=timedelta(hours=24))
    view.apply("alerts", b"", ev.encode(alert("old", NOW - timedelta(hours=25))))
    view.apply("alerts", b"", ev.encode(alert("new", NOW - timedelta(hours=1))))
    d = U.deployment("w", NOW)
    gone = msgspec.structs.replace(d.incident, id="gone", state="resolved", resolved_at=NOW - timedelta(hours=30))
    kept = msgspec.structs.replace(d.incident, id="kept", state="resolved", resolved_at=NOW - timedelta(hours=2))
    old_open = msgspec.structs.replace(d.incident, id="open", opened_at=NOW - timedelta(days=3))
    for inc in (gone, kept, old_open):
        view.apply("incidents", inc.id.encode(), ev.encode(inc))
    view.trim(NOW)
    assert [a.event.job_id for a in view.alerts.items] == ["new"]
    assert sorted(view.incidents) == ["kept", "open"]  # an open incident stays, however old


def test_silences_keep_the_latest_record_per_id() -> None:
    view = TopicView()
    s = Silence(id="s1", match='rule == "r"', starts=NOW)
    view.apply("silences", b"s1", msgspec.json.encode(s))
    view.apply("silences", b"s1", msgspec.json.encode(msgspec.structs.replace(s, ends=NOW)))
    assert view.silences == {"s1": msgspec.structs.replace(s, ends=NOW)}


def test_eval_errors_are_summed_over_workers_most_first() -> None:
    view = TopicView()
    for w, errors in (("a:1", {"r1": 2, "r2": 5}), ("b:2", {"r1": 4})):
        view.apply("status", f"worker:{w}".encode(), ev.encode(ev.WorkerStatus(
            worker=w, started_at=NOW, eval_errors=errors, updated_at=NOW)))  # fmt: skip
    assert list(view.eval_errors().items()) == [("r1", 6), ("r2", 5)]


@pytest.mark.parametrize(("raw", "text"), [
    (None, None), (b'"a|b"', "a|b"), (b"a|b", "a|b"), (b'{"type":"incident"}', '{"type":"incident"}'),
])  # fmt: skip
def test_table_text_reads_faust_json_strings_and_raw_bytes(raw: bytes | None, text: str | None) -> None:
    assert table_text(raw) == text
