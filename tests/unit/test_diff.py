"""diff(): exactly the transitions, once; vanishing; first sightings."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from watcher.poller.diff import VANISHED, JobState, active_ids, diff
from watcher.sources.base import FetchResult, Observation, Target

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
T = Target(source="workspace", region="cn-north-4", project_id="p1", job_types=("createDesktops",))
EVS = Target(source="evs", region="cn-north-4", project_id="p1")
PHASE = {"WAITING": "pending", "RUNNING": "running", "SUCCESS": "succeeded", "FAILED": "failed"}


FINAL = {"SUCCESS", "FAILED"}


def obs(job_id: str, status: str, parent: str | None = "parent-1", **kw: object) -> Observation:
    return Observation(job_id=job_id, parent_job_id=parent, job_type="createDesktops", status=status,
                       phase=PHASE.get(status, "other"), final=status in FINAL, **kw)  # type: ignore[arg-type]


def state(status: str) -> JobState:
    return JobState(status=status, phase=PHASE[status], since=0.0, final=status in FINAL)


def test_first_sighting_is_one_appeared_event():
    d = diff(T, {}, FetchResult(observations=[obs("a", "RUNNING")]), NOW)
    assert [(e.job_id, e.change, e.prev_status, e.status, e.phase) for e in d.events] == [
        ("a", "appeared", None, "RUNNING", "running")
    ]
    assert d.events[0].job_key == "workspace/cn-north-4/p1/a"
    assert d.events[0].parent_job_id == "parent-1"
    assert d.states == {"a": JobState(status="RUNNING", phase="running", since=NOW.timestamp())}
    assert d.events[0].subject == "workspace/cn-north-4/p1/a" and not d.events[0].final


def test_same_status_publishes_nothing_and_change_publishes_once():
    known = {"a": state("RUNNING"), "b": state("RUNNING")}
    d = diff(T, known, FetchResult(observations=[obs("a", "RUNNING"), obs("b", "FAILED")]), NOW)
    assert [(e.job_id, e.prev_status, e.status, e.prev_phase, e.phase) for e in d.events] == [
        ("b", "RUNNING", "FAILED", "running", "failed")
    ]


def test_first_seen_already_failed():
    d = diff(T, {}, FetchResult(observations=[obs("a", "FAILED")]), NOW)
    assert [(e.change, e.prev_status, e.status) for e in d.events] == [("appeared", None, "FAILED")]


def test_an_open_job_vanishes_only_after_two_consistent_answers_without_it():
    known = {"a": state("RUNNING"), "b": state("SUCCESS")}
    first = diff(T, known, FetchResult(observations=[]), NOW)
    assert first.events == [] and first.states == {"a": JobState(status="RUNNING", phase="running", since=0.0, missing=1)}
    known.update(first.states)  # type: ignore[arg-type]
    d = diff(T, known, FetchResult(observations=[]), NOW)
    assert [(e.job_id, e.change, e.prev_status, e.status, e.phase, e.final) for e in d.events] == [
        ("a", "vanished", "RUNNING", VANISHED, "other", True)
    ]
    # an incomplete answer says nothing about absent jobs
    assert diff(T, known, FetchResult(observations=[], complete=False), NOW).events == []


def test_a_job_missing_once_then_seen_again_is_no_news_and_no_longer_missing():
    known = {"a": JobState(status="RUNNING", phase="running", since=0.0, missing=1)}
    d = diff(T, known, FetchResult(observations=[obs("a", "RUNNING")]), NOW)
    assert d.events == [] and d.states == {"a": JobState(status="RUNNING", phase="running", since=0.0)}


def test_only_a_final_status_ends_polling_abnormal_rollback_failed_is_three_events():
    app = Target(source="workspaceapp", region="r", project_id="p", job_types=("CREATE_SERVER",))
    known: dict[str, JobState] = {"s": JobState(status="RUNNING", phase="running", since=0.0)}
    seen = []
    for status, phase, final in (("ABNORMAL", "failed", False), ("ROLLBACK", "running", False), ("FAILED", "failed", True)):
        row = Observation(job_id="s", parent_job_id="X", job_type="CREATE_SERVER", status=status, phase=phase, final=final)
        d = diff(app, known, FetchResult(observations=[row]), NOW)
        known.update({k: v for k, v in d.states.items() if v is not None})
        seen += [(e.prev_status, e.status, e.final, e.subject) for e in d.events]
        assert active_ids(known) == ([] if final else ["s"])
    assert seen == [("RUNNING", "ABNORMAL", False, "app/r/p/X"), ("ABNORMAL", "ROLLBACK", False, "app/r/p/X"),
                    ("ROLLBACK", "FAILED", True, "app/r/p/X")]


def test_old_history_first_seen_publishes_nothing_new_failures_do():
    old = obs("a", "FAILED", end_time=datetime(2026, 11, 20, tzinfo=UTC))
    new = obs("b", "FAILED", end_time=datetime(2026, 11, 23, 11, 59, tzinfo=UTC))
    d = diff(T, {}, FetchResult(observations=[old, new]), NOW, horizon=NOW.timestamp() - 6 * 3600)
    assert [e.job_id for e in d.events] == ["b"] and set(d.states) == {"b"}


def test_by_id_vanishes_at_once_when_the_api_says_no_such_job():
    known = {"j1": state("RUNNING")}
    assert diff(EVS, known, FetchResult(observations=[]), NOW).events == []
    d = diff(EVS, known, FetchResult(observations=[], gone=["j1"]), NOW)
    assert [(e.job_id, e.status) for e in d.events] == [("j1", VANISHED)]


def test_a_tracked_job_first_seen_is_appeared_and_its_sub_jobs_are_marked_sub():
    from watcher.poller.diff import tracked

    known = {"b1": tracked(0.0)}
    rows = [Observation(job_id="b1", job_type="batchCreateVolume", status="RUNNING", phase="running"),
            Observation(job_id="s1", parent_job_id="b1", job_type="createVolume", status="RUNNING", phase="running")]
    d = diff(EVS, known, FetchResult(observations=rows), NOW)
    assert [(e.job_id, e.change, e.prev_status, e.subject) for e in d.events] == [
        ("b1", "appeared", None, "evs/cn-north-4/p1/b1"), ("s1", "appeared", None, "evs/cn-north-4/p1/b1")]
    assert [(j, s.sub) for j, s in d.states.items() if s] == [("b1", False), ("s1", True)]
    assert active_ids({k: v for k, v in d.states.items() if v}) == ["b1"]


def test_duplicate_rows_across_pages_count_once():
    d = diff(T, {}, FetchResult(observations=[obs("a", "RUNNING"), obs("a", "RUNNING")]), NOW)
    assert len(d.events) == 1


def test_active_ids():
    assert active_ids({"a": state("RUNNING"), "b": state("FAILED"), "c": state("WAITING")}) == ["a", "c"]


@given(st.lists(st.lists(st.sampled_from(["WAITING", "RUNNING", "SUCCESS", "FAILED"]), min_size=1, max_size=6), max_size=8))
def test_replaying_polls_never_loses_or_repeats_a_transition(histories):
    """Each job's observed status sequence yields exactly its distinct consecutive changes."""
    known: dict[str, JobState] = {}
    seen: dict[str, list[str]] = {}
    rounds = max((len(h) for h in histories), default=0)
    for r in range(rounds):
        rows = [obs(f"j{i}", h[min(r, len(h) - 1)]) for i, h in enumerate(histories)]
        d = diff(T, known, FetchResult(observations=rows), NOW)
        for e in d.events:
            seen.setdefault(e.job_id, []).append(e.status)
        known.update({k: v for k, v in d.states.items() if v is not None})
        # replaying the same poll publishes nothing
        assert diff(T, known, FetchResult(observations=rows), NOW).events == []
    for i, h in enumerate(histories):
        expected = [s for k, s in enumerate(h) if k == 0 or h[k - 1] != s]
        assert seen.get(f"j{i}", []) == expected
