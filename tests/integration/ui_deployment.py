"""A small deployment's records, as the pipeline writes them, for the status page's tests.

Three poll targets (two workspace projects, one EVS), a worker, one failing desktop whose
job text is hostile (``<script>``, ``<!channel>``, ``{{7*7}}``) with its event, alert,
incident, notification and delivered marks, and a second job whose alert was silenced.
:func:`publish` writes them to a real broker the way each stage does (records on topics,
JSON strings on table changelogs, one record per produce batch for Tansu).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from watcher import events as ev
from watcher.app.kafka import KafkaConnection
from watcher.config import BrokerConfig, Config, RulesConfig, UiConfig, WatchConfig

REGION = "cn-north-4"
P1, P2 = "0bec0000000000000000000000000001", "0bec0000000000000000000000000002"
HOSTILE = "<script>alert(1)</script> <!channel> {{7*7}}"
TARGET = "json://127.0.0.1/hook"  # a masked target id, as the notifier names targets

RULES = """\
rules:
  - name: desktop-failed
    when: FAILED createDesktops
    severity: critical
    notify: [webhook]
"""


@dataclass
class Deployment:
    prefix: str
    app_id: str
    now: datetime
    failing: ev.JobEvent
    alert: ev.Alert
    incident: ev.Incident
    note: ev.Notification
    muted: ev.Decision

    @property
    def job_key(self) -> str:
        return self.failing.job_key


def config(bootstrap: str, prefix: str, rules_file: Path, app_id: str = "watcher") -> Config:
    watch = (
        WatchConfig(source="workspace", region=REGION, projects=(P1, P2)),
        WatchConfig(source="evs", region=REGION, projects=(P1,), job_ids=("v-1",)),
    )
    return Config(broker=BrokerConfig(url=f"kafka://{bootstrap}", topic_prefix=prefix, partitions=4), watch=watch,
                  rules=RulesConfig(files=(str(rules_file),)), ui=UiConfig(enabled=True, port=0))  # fmt: skip


def config_toml(bootstrap: str, prefix: str, rules_file: Path) -> str:
    return (f'[broker]\nurl = "kafka://{bootstrap}"\ntopic_prefix = "{prefix}"\npartitions = 4\n'
            f'[rules]\nfiles = ["{rules_file}"]\n')  # fmt: skip


def desktop_event(job_id: str, now: datetime, message: str, project: str = P1) -> ev.JobEvent:
    return ev.JobEvent(
        source="workspace", region=REGION, project_id=project, job_key=ev.job_key("workspace", REGION, project, job_id),
        job_id=job_id, parent_job_id="batch-1", job_type="createDesktops", status="FAILED", phase="failed",
        prev_status="RUNNING", prev_phase="running", error_code="WKS.0042", message=message,
        entities=ev.Entities(desktop_name="desk-7"), observed_at=now, target=f"workspace/{REGION}/{project}",
        final=True,
    )  # fmt: skip


def deployment(prefix: str, now: datetime, app_id: str = "watcher") -> Deployment:
    failing = desktop_event("d-7", now - timedelta(seconds=30), HOSTILE)
    running = ev.JobEvent(**{**{f: getattr(failing, f) for f in failing.__struct_fields__},
                             "status": "RUNNING", "phase": "running", "prev_status": None, "prev_phase": None,
                             "change": "appeared", "error_code": None, "message": None, "final": False,
                             "observed_at": now - timedelta(seconds=90)})  # fmt: skip
    iid = ev.incident_id("desktop-failed", failing.incident_subject)
    alert = ev.Alert(key=ev.alert_key("desktop-failed", failing), rule="desktop-failed", severity="critical",
                     title=f"desktop-failed: {HOSTILE}", body=HOSTILE, event=failing, fired_at=now - timedelta(seconds=29),
                     incident=iid)  # fmt: skip
    job = ev.IncidentJob(job_key=failing.job_key, source="workspace", job_id="d-7", parent_job_id="batch-1",
                         job_type="createDesktops", status="FAILED", phase="failed", prev_status="RUNNING",
                         error_code="WKS.0042", message=HOSTILE, first_seen=failing.observed_at,
                         updated=failing.observed_at)  # fmt: skip
    incident = ev.Incident(id=iid, rule="desktop-failed", subject=failing.incident_subject, severity="critical",
                           source="workspace", region=REGION, project_id=P1, title=alert.title,
                           opened_at=alert.fired_at, updated_at=alert.fired_at, jobs=(job,), alerts=(alert.key,),
                           seq=1, last_alert=alert)  # fmt: skip
    note = ev.Notification(key=ev.notification_key(iid, 1, 1), kind="open", incident=incident, alert=alert,
                           change="d-7 FAILED", created_at=alert.fired_at)  # fmt: skip
    quiet = desktop_event("d-9", now - timedelta(seconds=20), "quota exceeded", project=P2)
    quiet_alert = ev.Alert(key=ev.alert_key("desktop-failed", quiet), rule="desktop-failed", title="desktop-failed: d-9",
                           body="quota exceeded", event=quiet, fired_at=now - timedelta(seconds=19),
                           incident=ev.incident_id("desktop-failed", quiet.incident_subject))  # fmt: skip
    muted = ev.Decision(alert=quiet_alert, result="silenced", reason="silence s-file (planned rebuild)",
                        decided_at=now - timedelta(seconds=19))  # fmt: skip
    d = Deployment(prefix, app_id, now, failing, alert, incident, note, muted)
    d.running = running  # type: ignore[attr-defined]
    return d


def status_records(cfg: Config, now: datetime) -> list[tuple[str, ev.AnyRecord]]:
    out: list[tuple[str, ev.AnyRecord]] = []
    for i, t in enumerate(cfg.targets()):
        out.append((t.id, ev.TargetStatus(target=t.id, source=t.source, region=t.region, project_id=t.project_id,
                                          worker="host-a:101", polls=40 + i, last_ok=now - timedelta(seconds=3 + i),
                                          last_attempt=now - timedelta(seconds=3 + i), open_jobs=2 * i,
                                          requests_10m=60 + i, throttled_10m=i, updated_at=now)))  # fmt: skip
    out.append(("worker:host-a:101", ev.WorkerStatus(worker="host-a:101", started_at=now - timedelta(hours=2),
                                                      targets=len(out), rules_loaded=1,
                                                      last_reload="applied at 2026-01-01 00:00:00 UTC",
                                                      eval_errors={"desktop-failed": 2}, updated_at=now)))  # fmt: skip
    return out


async def publish(conn: KafkaConnection, cfg: Config, d: Deployment) -> None:
    """Write the deployment's records where the pipeline would, one record per produce batch."""
    from watcher.app.topics import ensure_topics

    p, a = d.prefix, d.app_id
    records: list[tuple[str, str, bytes | None]] = [
        (f"{p}.status", k, ev.encode(r)) for k, r in status_records(cfg, d.now)
    ]
    records += [
        (f"{p}.events", d.running.job_key, ev.encode(d.running)),  # type: ignore[attr-defined]
        (f"{p}.events", d.failing.job_key, ev.encode(d.failing)),
        (f"{p}.events", d.muted.alert.event.job_key, ev.encode(d.muted.alert.event)),
        (f"{p}.alerts", d.incident.id, ev.encode(d.alert)),
        (f"{p}.decisions", d.muted.alert.key, ev.encode(d.muted)),
        (f"{a}-{p}-incidents-changelog", json.dumps(d.incident.id), json.dumps(ev.encode(d.incident).decode()).encode()),
        (f"{p}.notifications", d.incident.id, ev.encode(d.note)),
        (f"{a}-{p}-delivered-changelog", json.dumps(f"{d.note.key}|{TARGET}"), b'"1"'),
        (f"{a}-{p}-delivered-changelog", json.dumps(f"{d.note.key}|*"), b'"1"'),
    ]  # fmt: skip
    await ensure_topics(conn, dict.fromkeys({t for t, _, _ in records} | {f"{p}.silences", f"{p}.actions"}, 4))
    producer = conn.producer(acks="all", max_batch_size=16384, linger_ms=0)
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
