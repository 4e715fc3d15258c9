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


def history(job_id: str, start: datetime, n: int) -> list[ev.JobEvent]:
    """A job's events as the poller publishes them: first seen RUNNING, then ``n - 1`` changes."""
    failing = U.desktop_event(job_id, start, "boom")
    out = [msgspec.structs.replace(failing, status="RUNNING", phase="running", prev_status=None, prev_phase=None,
                                   change="appeared", observed_at=start)]  # fmt: skip
    for i in range(1, n):
        prev = out[-1].status
        out.append(msgspec.structs.replace(failing, status=f"S{i}", prev_status=prev, observed_at=start + timedelta(
            seconds=i)))  # fmt: skip
    return out


def test_job_events_answers_with_a_jobs_whole_history_from_its_first_sighting() -> None:
    view = TopicView(clock=lambda: NOW)
    a, b = history("d-1", NOW - timedelta(hours=2), 3), history("d-2", NOW - timedelta(hours=1), 2)
    for e in (a[0], b[0], a[1], b[1], a[2]):  # interleaved, as partitions deliver them
        view.apply("events", e.incident_subject.encode(), ev.encode(e))
    assert view.job_events(a[0].job_key) == a and view.job_events(b[0].job_key) == b
    assert view.job_events("workspace/cn-north-4/p/nobody") is None  # unknown: the page reads the topic
    assert view.version == 5 and len(view.events) == 5


def test_job_events_cannot_tell_for_a_job_whose_first_sighting_it_does_not_hold() -> None:
    view = TopicView(clock=lambda: NOW)
    old = history("d-1", NOW - timedelta(hours=30), 3)  # first seen before the last 24 h ...
    later = msgspec.structs.replace(old[2], status="FAILED", prev_status="S2", observed_at=NOW - timedelta(hours=1))
    for e in (*old, later):  # ... so only its latest change is kept
        view.apply("events", b"", ev.encode(e))
    assert len(view.events) == 1 and view.job_events(later.job_key) is None
    assert view.version == 4  # an event too old to keep is still a record read


def test_job_events_cannot_tell_once_any_of_a_jobs_events_was_pushed_out() -> None:
    view = TopicView(clock=lambda: NOW, limit=6, per_key=3)
    chatty = history("d-1", NOW - timedelta(hours=1), 4)  # one more than a job may keep
    for e in chatty:
        view.apply("events", b"", ev.encode(e))
    assert [r.at for r in view.events.get(chatty[0].job_key)] == [e.observed_at for e in chatty[1:]]  # the newest 3
    assert view.job_events(chatty[0].job_key) is None
    quiet = history("d-2", NOW - timedelta(minutes=30), 2)
    for e in quiet:
        view.apply("events", b"", ev.encode(e))
    assert view.job_events(quiet[0].job_key) == quiet
    busy = history("d-3", NOW - timedelta(minutes=10), 5)
    for e in busy[:4]:  # the limit in all: the oldest records go first
        view.apply("events", b"", ev.encode(e))
    assert chatty[0].job_key not in view.events.by and view.job_events(chatty[0].job_key) is None  # all gone
    assert view.job_events(quiet[0].job_key) == quiet
    view.apply("events", b"", ev.encode(busy[4]))
    assert len(view.events) == 6 and view.job_events(quiet[0].job_key) is None  # lost its first sighting
    view.trim(NOW + timedelta(hours=24))  # everything out: the job is unknown again, not "cut"
    assert len(view.events) == 0 and view.events.by == {} and view.events.cut == set()


def test_a_malformed_event_is_counted_and_other_records_on_the_events_topic_are_not_events() -> None:
    view = TopicView(clock=lambda: NOW)
    view.apply("events", b"k", b"{not json")
    view.apply("events", b"k", ev.encode(ev.TrackRequest(source="evs", region="r", project_id="p", job_id="j")))
    assert view.malformed == 2 and len(view.events) == 0
