"""The re-read net (app/reread.py): what it takes, what it leaves to the agent, and a stopped stream."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from watcher import events as ev
from watcher.app import reread
from watcher.app.reread import RereadNet


def alert(n: int) -> ev.Alert:
    at = datetime(2026, 12, 5, tzinfo=UTC)
    event = ev.JobEvent(source="evs", region="r", project_id="p", job_key=f"evs/j{n}", job_id=f"j{n}",
                        job_type="extendVolume", status="FAIL", phase="failed", observed_at=at)  # fmt: skip
    return ev.Alert(key=f"k{n}", rule="r", tags=(), title=f"t{n}", body="", event=event, fired_at=at)


class Topic:
    """One partition (0) of a topic, the group's committed offset, and a stage's traces."""

    def __init__(self, n: int) -> None:
        self.records = [(0, i, ev.encode(alert(i))) for i in range(n)]
        self.committed: dict[int, int] = {}
        self.traced: set[str] = set()
        self.recovered: list[str] = []

    def net(self) -> RereadNet:
        async def read(starts: dict[int, int]) -> list[tuple[int, int, bytes | None]]:
            return [r for r in self.records if r[0] in starts and r[1] >= starts[r[0]]]

        async def committed(parts: set[int]) -> dict[int, int]:
            return {p: o for p, o in self.committed.items() if p in parts}

        async def recover(record: Any, partition: int) -> None:
            self.recovered.append(record.key)
            self.traced.add(record.key)

        return RereadNet(what="alerts", owned=lambda: {0}, reread=read, committed=committed,
                         handled=lambda r: r.key in self.traced, recover=recover)  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(reread.time, "monotonic", c)
    return c


async def test_only_records_below_the_commit_or_what_the_agent_was_handed_and_without_a_trace(clock: Clock) -> None:
    topic = Topic(6)
    net = topic.net()
    topic.committed[0] = 3
    topic.traced = {"k0", "k2"}
    net.saw(0, 3)  # the agent was handed offset 3 (not yet traced): below the limit, no trace
    assert await net.round() == 2 and topic.recovered == ["k1", "k3"]
    assert await net.round() == 0  # looked at once: the next round starts past them
    net.saw(0, 4)  # the agent moves on (and handles 4): 5 is its, still to come, however long it waits
    topic.traced.add("k4")
    clock.now += 100
    assert await net.round() == 0 and topic.recovered == ["k1", "k3"]


async def test_a_stopped_stream_leaves_its_records_to_the_net_after_a_while_and_says_so_once(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    topic = Topic(3)  # never committed, never handed to the agent: Faust's stopped partition
    net = topic.net()
    caplog.set_level(logging.WARNING, "watcher.app")
    assert await net.round() == 0  # first round: nothing to compare with
    clock.now += 10
    assert await net.round() == 0  # no progress, but the records only just noticed
    clock.now += 10
    assert await net.round() == 0  # waited 10 s
    clock.now += 10
    assert await net.round() == 3 and topic.recovered == ["k0", "k1", "k2"]
    topic.records.append((0, 3, ev.encode(alert(3))))
    clock.now += 10
    assert await net.round() == 0
    clock.now += 25
    assert await net.round() == 1 and topic.recovered[-1] == "k3"
    stopped = [r.message for r in caplog.records if "has not read" in r.message]
    assert stopped == ["the stream has not read alerts partition 0 for 20s past offset 0: the re-read net takes its records"]


async def test_a_stream_that_moves_keeps_its_records(clock: Clock) -> None:
    topic = Topic(4)
    net = topic.net()
    for step in range(4):  # slow, but handed (and handling) one record a round
        if step:
            net.saw(0, step - 1)
            topic.traced.add(f"k{step - 1}")
        assert await net.round() == 0
        clock.now += 30
    assert topic.recovered == []


async def test_events_only_a_stopped_streams_records_and_without_asking_for_a_trace(clock: Clock) -> None:
    topic = Topic(5)
    topic.committed[0] = 2  # 0 and 1 were evaluated (acked after): never looked at again
    handed: list[str] = []

    async def read(starts: dict[int, int]) -> list[tuple[int, int, bytes | None]]:
        handed.append(f"read from {starts}")
        return [r for r in topic.records if r[0] in starts and r[1] >= starts[r[0]]]

    async def committed(parts: set[int]) -> dict[int, int]:
        return dict(topic.committed)

    async def recover(record: Any, partition: int) -> None:
        topic.recovered.append(record.key)

    net = RereadNet(what="events", owned=lambda: {0}, reread=read, committed=committed,
                    handled=lambda r: True, recover=recover, stopped_only=True)  # fmt: skip
    assert await net.round() == 0 and handed == []  # nothing to compare with yet: no read
    for _ in range(2):
        clock.now += 15
        assert await net.round() == 0
    clock.now += 15
    assert await net.round() == 3 and topic.recovered == ["k2", "k3", "k4"]
    assert handed[0] == "read from {0: 2}"  # from the committed offset, not from the start


async def test_the_incident_stage_tells_its_net_of_a_record_only_once_the_batch_is_applied() -> None:
    """Mid-batch an alert has no trace in its incident yet: the net must not count it as handed
    (a round then would call it lost and apply it a second time, with a false warning)."""
    import asyncio

    from watcher.app.incidents import IncidentStage

    stage = IncidentStage(comps=None, table=None, notifications_topic=None, silences_topic=None, partitions=4,
                          owned=lambda: {0})  # fmt: skip
    gate, applied = asyncio.Event(), []

    async def on_records(batch: Any) -> int:
        applied.extend(batch)
        await gate.wait()
        return 1

    stage.on_records = on_records  # type: ignore[method-assign]
    task = asyncio.create_task(stage.on_batch([(True, 0, 7, alert(7)), (False, 0, 3, None)]))
    await asyncio.sleep(0.01)
    assert [p for p, _ in applied] == [0] and stage.net.seen == {}  # being applied: the agent's still
    gate.set()
    assert await task == 1
    assert stage.net.seen == {0: 8}
