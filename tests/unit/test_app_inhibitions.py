"""InhibitionBook: the records a worker publishes when alerts start, extend or end inhibitions."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from tests.unit.jobevents import T0, at, event, ruleset
from watcher.app.inhibitions import InhibitionBook, encode
from watcher.rules.engine import make_alert
from watcher.rules.inhibit import HOLD, inhibited_by

RULES = ruleset("""\
rules:
  - name: parent-failed
    when: FAILED createDesktops
    inhibits: [desktop-failed]
  - name: parent-stuck
    when: RUNNING createDesktops
    for: 10m
    inhibits: [desktop-failed]
  - name: desktop-failed
    when: FAILED createDesktops
""")
BY_NAME = {r.name: r for r in RULES.rules}


def test_a_parent_alert_publishes_two_inhibitions_that_mute_its_sub_jobs_for_the_hold():
    book = InhibitionBook()
    parent = make_alert(BY_NAME["parent-failed"], event("job-1", "FAILED"), T0)
    records = book.started(BY_NAME["parent-failed"], parent, T0)
    assert sorted(i.id for i in records) == [f"{parent.key}#job", f"{parent.key}#sub"]
    assert all(i.until == T0 + HOLD and i.targets == ("desktop-failed",) for i in records)
    child = make_alert(BY_NAME["desktop-failed"], event("d-1", "FAILED", parent="job-1"), T0)
    other = make_alert(BY_NAME["desktop-failed"], event("d-2", "FAILED", parent="job-2"), T0)
    assert inhibited_by(child, book.all(), at(30)) is not None
    assert inhibited_by(other, book.all(), at(30)) is None
    assert inhibited_by(child, book.all(), T0 + HOLD) is None  # the hold is over
    assert book.started(BY_NAME["parent-failed"], parent, T0) == []  # a replayed alert changes nothing


def test_a_record_read_back_from_the_topic_is_the_one_published():
    book, follower = InhibitionBook(), InhibitionBook()
    parent = make_alert(BY_NAME["parent-failed"], event("job-1", "FAILED"), T0)
    for i in book.started(BY_NAME["parent-failed"], parent, T0):
        follower.apply(encode(i))
    assert follower.runtime == book.runtime
    follower.apply(b"{not json")  # logged and ignored; nothing else is lost
    assert follower.runtime == book.runtime


def test_a_resolved_stuck_alert_ends_its_inhibitions_with_records_that_say_so():
    book = InhibitionBook()
    rule = BY_NAME["parent-stuck"]
    stuck = make_alert(rule, event("job-1", "RUNNING", prev="WAITING"), T0, key="parent-stuck|k|firing")
    started = book.started(rule, stuck, T0)
    assert len(started) == 2 and all(i.until is None for i in started)  # until the job moves on
    resolved = msgspec.structs.replace(stuck, kind="resolved", key="parent-stuck|k|resolved")
    ended = book.started(rule, resolved, at(20))
    assert sorted(i.id for i in ended) == sorted(i.id for i in started)
    assert all(i.until == at(20) for i in ended)
    child = make_alert(BY_NAME["desktop-failed"], event("d-1", "FAILED", parent="job-1"), at(21))
    assert inhibited_by(child, book.all(), at(21)) is None
    book.prune(at(21))
    assert book.runtime == {}


def test_extending_moves_the_end_and_publishes_only_what_changed():
    book = InhibitionBook()
    parent = make_alert(BY_NAME["parent-failed"], event("job-1", "FAILED"), T0)
    book.started(BY_NAME["parent-failed"], parent, T0)
    later = T0 + HOLD + timedelta(minutes=5)
    records = book.extended(parent.key, later, at(5))
    assert len(records) == 2 and all(i.until == later for i in records)
    assert book.extended(parent.key, later, at(6)) == []
    assert book.extended("someone-else", later + HOLD, at(6)) == []
