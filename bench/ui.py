"""Status page: how long each page takes to answer for a deployment of 50 targets and 10,000 open jobs.

Method: a :class:`~watcher.ui.view.TopicView` is fed directly (no topic reading: the follower's
decode cost is measured apart, as records/s) with what such a deployment's topics hold:
50 ``TargetStatus`` (200 open jobs each) and 2 ``WorkerStatus``; 2,000 firing incidents of 5
jobs each (the 10,000 open jobs), each with its alert, an ``open`` notification and its
delivered marks; 1,000 silenced decisions; 100 silences. A :class:`~watcher.ui.StatusPage`
serves it on 127.0.0.1 and an HTTP client in the same process asks each page ``REQUESTS``
times in a row after a warm-up; the time is request sent to body read (client included).

The Job page is the one that reads a topic on demand (the job's events, from ``P.events``
read whole, as ``watcher explain`` does): it runs against the embedded Tansu broker with one
event per open job on the events topic, its cache (2 s) defeated so every request reads.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from bench.report import Goal, Section, Table, percentile

GOAL_MS = 200.0
REQUESTS = 30


def deployment(view: Any, targets: int, jobs: int, now: datetime) -> tuple[list[Any], Any]:
    """Feed ``view``; return the config's targets and one job key with events (for the Job page)."""
    import msgspec

    from watcher import events as ev
    from watcher.rules.silence import Silence
    from watcher.sources.base import Target

    tlist = [Target(source="workspace", region="cn-north-4", project_id=f"{i:032x}") for i in range(targets)]
    for t in tlist:
        view.apply("status", t.id.encode(), ev.encode(ev.TargetStatus(
            target=t.id, source=t.source, region=t.region, project_id=t.project_id, worker="host-a:1", polls=100,
            last_ok=now, last_attempt=now, open_jobs=jobs // targets, requests_10m=120, throttled_10m=1,
            updated_at=now)))  # fmt: skip
    for w in ("host-a:1", "host-b:2"):
        view.apply("status", f"worker:{w}".encode(), ev.encode(ev.WorkerStatus(
            worker=w, started_at=now - timedelta(hours=3), targets=targets // 2, rules_loaded=12,
            last_reload="applied", eval_errors={"r1": 3}, updated_at=now)))  # fmt: skip
    per = 5
    first = None
    for n in range(jobs // per):
        t = tlist[n % targets]
        batch: list[Any] = []
        for k in range(per):
            e = ev.JobEvent(source="workspace", region=t.region, project_id=t.project_id,
                            job_key=ev.job_key("workspace", t.region, t.project_id, f"d-{n}-{k}"), job_id=f"d-{n}-{k}",
                            parent_job_id=f"b-{n}", job_type="createDesktops", status="FAILED", phase="failed",
                            prev_status="RUNNING", error_code="WKS.0042", message="quota exceeded",
                            observed_at=now - timedelta(seconds=n % 3600), target=t.id)  # fmt: skip
            batch.append(e)
        e = batch[0]
        iid = ev.incident_id("desktop-failed", f"group/{t.project_id}/b-{n}")
        alert = ev.Alert(key=ev.alert_key("desktop-failed", e), rule="desktop-failed", title=f"{per} desktops failed",
                         body="b", event=e, fired_at=e.observed_at, incident=iid)  # fmt: skip
        jobs_ = tuple(ev.IncidentJob(job_key=x.job_key, source=x.source, job_id=x.job_id, job_type=x.job_type,
                                     status=x.status, phase=x.phase, error_code=x.error_code, message=x.message,
                                     first_seen=x.observed_at, updated=x.observed_at) for x in batch)  # fmt: skip
        inc = ev.Incident(id=iid, rule="desktop-failed", kind="group", subject=iid, source="workspace",
                          region=t.region, project_id=t.project_id, title=alert.title, opened_at=alert.fired_at,
                          updated_at=alert.fired_at, jobs=jobs_, seq=1, last_alert=alert)  # fmt: skip
        note = ev.Notification(key=ev.notification_key(iid, 1, 1), kind="open", incident=inc, alert=alert,
                               created_at=alert.fired_at)  # fmt: skip
        view.apply("incidents", iid.encode(), ev.encode(inc))
        view.apply("alerts", iid.encode(), ev.encode(alert))
        view.apply("notifications", iid.encode(), ev.encode(note))
        view.apply("delivered", f"{note.key}|json://hook".encode(), b"1")
        view.apply("delivered", f"{note.key}|*".encode(), b"1")
        if n < 1000:
            view.apply("decisions", b"", ev.encode(ev.Decision(alert=ev.Alert(**{
                **{f: getattr(alert, f) for f in alert.__struct_fields__}, "key": alert.key + "#m"}),
                result="silenced", reason="silence s1", decided_at=alert.fired_at)))  # fmt: skip
        first = first or e
    for i in range(100):
        view.apply("silences", f"s{i}".encode(), msgspec.json.encode(Silence(
            id=f"s{i}", match=f'project_id == "{i:032x}"', starts=now - timedelta(hours=1),
            ends=now + timedelta(hours=i % 3 - 1))))  # fmt: skip
    return tlist, first


async def timed(client: Any, path: str, n: int) -> list[float]:
    for _ in range(3):
        (await client.get(path)).raise_for_status()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = await client.get(path)
        r.raise_for_status()
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def publish_events(conn: Any, topic: str, view: Any, first: Any) -> int:
    """One event per open job (the incidents' jobs) on the events topic, plus the measured job's."""
    from watcher import events as ev
    from watcher.app.topics import ensure_topics

    await ensure_topics(conn, {topic: 8})
    producer = conn.producer(max_batch_size=1, linger_ms=0)  # Tansu: one per batch
    await producer.start()
    n = 0
    try:
        futs = []
        for inc in view.incidents.values():
            for j in inc.jobs:
                e = ev.JobEvent(source=j.source, region=inc.region, project_id=inc.project_id, job_key=j.job_key,
                                job_id=j.job_id, job_type=j.job_type, status=j.status, phase=j.phase,
                                error_code=j.error_code, message=j.message, observed_at=j.updated)  # fmt: skip
                futs.append(await producer.send(topic, ev.encode(e), key=e.job_key.encode()))
                n += 1
        await asyncio.gather(*futs)
        await producer.send_and_wait(topic, ev.encode(first), key=first.job_key.encode())
    finally:
        await producer.stop()
    return n + 1


async def run(ctx: Any) -> Section:
    import httpx

    from watcher.app.broker import EmbeddedBroker
    from watcher.app.kafka import KafkaConnection
    from watcher.config import BrokerConfig, Config, WatchConfig
    from watcher.ui import StatusPage, pages
    from watcher.ui.view import TopicView

    targets, jobs = (50, 1_000) if ctx.smoke else (50, 10_000)
    n = 5 if ctx.smoke else REQUESTS
    section = Section(name="ui", title="Status page answer time (50 targets, 10,000 open jobs)",
                      broker="embedded Tansu (Job page only; the view is fed directly)", command=ctx.command("ui"),
                      params={"targets": targets, "open jobs": jobs, "requests per page": n})  # fmt: skip
    now = datetime.now(UTC)
    view = TopicView()
    t0 = time.perf_counter()
    tlist, first = deployment(view, targets, jobs, now)
    feed_s = time.perf_counter() - t0
    records = view.version
    section.figures["feed_records_per_s"] = records / feed_s
    pages.EVENTS_TTL = 0.0  # every Job page request reads the events topic
    with EmbeddedBroker() as broker:
        prefix = f"benchui{uuid.uuid4().hex[:6]}"
        cfg = Config(broker=BrokerConfig(url=broker.url, topic_prefix=prefix, partitions=8),
                     watch=tuple(WatchConfig(source=t.source, region=t.region, projects=(t.project_id,))
                                 for t in tlist))  # fmt: skip
        conn = KafkaConnection.plaintext(broker.bootstrap)
        events = await publish_events(conn, f"{prefix}.events", view, first)
        page = StatusPage(cfg, conn, port=0, token="bench", view=view, follow=False)
        url = await page.start()
        paths = {
            "Overview": "/", "Incidents": "/incidents", "Silences": "/silences",
            "Search (job id)": f"/search?q={first.job_id}", "Search (text)": "/search?q=quota&kind=text",
            "Silence preview": "/silences/preview?" + urlencode({"match": 'job_type == "createDesktops"'}),
            "Job": f"/job?key={first.job_key}",
        }  # fmt: skip
        rows = []
        try:
            async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=60) as client:
                sizes = {}
                for name, path in paths.items():
                    ms = await timed(client, path, n)
                    sizes[name] = len((await client.get(path)).content)
                    p50, p95 = percentile(ms, 50), percentile(ms, 95)
                    rows.append([name, p50, p95, max(ms), sizes[name] / 1024])
                    section.figures[name] = {"p50_ms": p50, "p95_ms": p95, "max_ms": max(ms), "bytes": sizes[name]}
        finally:
            await page.stop()
    section.tables.append(Table(["page", "p50 (ms)", "p95 (ms)", "max (ms)", "size (KiB)"], rows,
                                caption=f"{n} requests per page after 3 warm-ups; {len(view.incidents):,} incidents, "
                                        f"{len(view.alerts):,} alerts, {events:,} events on the topic."))  # fmt: skip
    for name, _p50, p95, _mx, _kb in rows:
        if name == "Job":
            section.goals.append(Goal(f"Job page < {GOAL_MS:.0f} ms", f"p95 {p95:.0f} ms (reads {events:,} events)",
                                      p95 < GOAL_MS if not ctx.smoke else None,
                                      limit="" if p95 < GOAL_MS else "it reads P.events whole for one job, as "
                                      "`watcher explain` does: the time grows with the topic, not the page"))  # fmt: skip
        elif name in ("Overview", "Incidents"):
            section.goals.append(Goal(f"{name} < {GOAL_MS:.0f} ms", f"p95 {p95:.0f} ms",
                                      p95 < GOAL_MS if not ctx.smoke else None))  # fmt: skip
    section.notes.append(f"The view took {records:,} records at {records / feed_s:,.0f} records/s (decode + index), "
                         "which bounds how fast a page catches up after a restart.")  # fmt: skip
    section.notes.append("Each list on a page shows the newest 100 rows (incidents per state, muted alerts, search "
                         "hits) with the count of the rest, so the Incidents page's size does not grow with the "
                         "deployment; Overview lists every target.")  # fmt: skip
    if ctx.smoke:
        section.notes.append("Smoke sizes (1,000 jobs): goals not judged.")
    return section
