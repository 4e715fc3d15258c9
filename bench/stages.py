"""Where a notification's latency goes: change → event → alert → notification → sink, per failure.

Read after a run from the worker's own topics (``P.events``, ``P.alerts``, ``P.notifications``),
while the broker still runs: each record carries the worker's wall time of that step
(``JobEvent.observed_at``, ``Alert.fired_at``, ``Notification.created_at``), and the sink
stamped the arrival. For each failed job (keyed as :mod:`bench.rig` keys it) the first record
of each kind that is about it gives one instant per stage; the report shows each stage's
p50/p99 across failures, so a missed latency goal says which stage holds it up.
"""

from __future__ import annotations

from typing import Any

from bench.report import percentile
from watcher import events as ev

STAGES = ("poll: change → event", "rules: event → alert", "incident: alert → notification",
          "notify: notification → sink")  # fmt: skip


async def read_all(bootstrap: str, topic: str, partitions: int = 8) -> list[bytes]:
    """Every record value of ``topic`` (``partitions`` partitions) from the beginning to its current end."""
    from aiokafka import TopicPartition

    from watcher.app.kafka import KafkaConnection

    consumer = KafkaConnection.plaintext(bootstrap).consumer(group_id=None, enable_auto_commit=False,
                                                             auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return []
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[bytes] = []
        while True:
            behind = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
            if not behind:
                break
            batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
            for msgs in batch.values():
                out += [m.value for m in msgs if m.value is not None]
        return out
    finally:
        await consumer.stop()


def _key(e: ev.JobEvent) -> set[str]:
    return {e.job_id, *([e.parent_job_id] if e.parent_job_id else [])}


async def breakdown(bootstrap: str, prefix: str, change: dict[str, float], arrivals: dict[str, float]) -> dict[str, Any]:
    """Per stage: {"n", "p50", "p99"} seconds over the failures all four instants are known for."""
    seen: dict[str, float] = {}
    for raw in await read_all(bootstrap, f"{prefix}.events"):
        rec = ev.decode(raw)
        if isinstance(rec, ev.JobEvent) and rec.phase == "failed":
            at = rec.observed_at.timestamp()
            for k in _key(rec) & change.keys():
                seen[k] = min(seen.get(k, at), at)
    fired: dict[str, float] = {}
    for raw in await read_all(bootstrap, f"{prefix}.alerts"):
        rec = ev.decode(raw)
        if isinstance(rec, ev.Alert) and rec.title in change:
            fired[rec.title] = min(fired.get(rec.title, rec.fired_at.timestamp()), rec.fired_at.timestamp())
    noted: dict[str, float] = {}
    for raw in await read_all(bootstrap, f"{prefix}.notifications"):
        rec = ev.decode(raw)
        if isinstance(rec, ev.Notification) and rec.incident.title in change:
            t = rec.created_at.timestamp()
            noted[rec.incident.title] = min(noted.get(rec.incident.title, t), t)
    keys = [k for k in change if k in seen and k in fired and k in noted and k in arrivals]
    steps = [(change, seen), (seen, fired), (fired, noted), (noted, arrivals)]
    out: dict[str, Any] = {"failures": len(keys)}
    for name, (a, b) in zip(STAGES, steps, strict=True):
        d = [b[k] - a[k] for k in keys]
        out[name] = {"p50": percentile(d, 50), "p99": percentile(d, 99), "max": max(d)} if d else None
    return out
