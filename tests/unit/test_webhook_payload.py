"""watcher.notify.webhook: the document (valid against the shipped JSON Schema for every kind of
notification), the signature scheme, and its verification."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from importlib import resources

import jsonschema
import msgspec
import pytest

from tests.fakes.incidents import OPENED, incident, job, note
from watcher.events import Alert, Entities, JobEvent, TaskCounts
from watcher.notify import webhook
from watcher.notify.webhook import encode, payload, signature, verify_signature

SCHEMA = json.loads(resources.files("watcher.notify").joinpath("schema/notification-v1.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
LINKS = {"workspace": "https://console.example.com/workspace/?region={region}#/jobs/{project_id}/{job_id}"}


def valid(doc: dict) -> dict:
    errors = sorted(VALIDATOR.iter_errors(doc), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    return doc


def alert() -> Alert:
    event = JobEvent(source="workspace", region="cn-north-4", project_id="p", job_key="k", job_id="job-01",
                     job_type="createDesktops", status="FAILED", phase="failed", observed_at=OPENED)  # fmt: skip
    return Alert(key="desktop-failed|k|RUNNING>FAILED|firing", rule="desktop-failed", title="t\x07", body="b",
                 event=event, fired_at=OPENED)  # fmt: skip


def every_kind() -> list[tuple[str, dict]]:
    inc = incident(3)
    hostile = job(9, message="<script>\x1b[31m</script> @here {{7*7}}", code=None, scripts=("a.ps1",),
                  size_gb=40)  # fmt: skip
    acked = msgspec.structs.replace(inc, state="acknowledged", acknowledged_by="@ana",
                                    acknowledged_at=OPENED + timedelta(minutes=2), seq=2)  # fmt: skip
    snoozed = msgspec.structs.replace(inc, snoozed_until=OPENED + timedelta(hours=1), snoozed_by="@bo",
                                      escalated=1, seq=3, more_jobs=17, jobs=(*inc.jobs, hostile))  # fmt: skip
    resolved = msgspec.structs.replace(inc, state="resolved", resolved_at=OPENED + timedelta(minutes=30), seq=4,
                                       jobs=tuple(msgspec.structs.replace(j, firing=False) for j in inc.jobs))
    script = msgspec.structs.replace(job(1, code="SCRIPT.1"), source="script", job_type="",
                                     counts=TaskCounts(success=3, failed=1), entities=Entities())  # fmt: skip
    cases = [
        ("open", note("open", inc, alert=alert())),
        ("update", note("update", acked, change="acknowledged by @ana")),
        ("escalate", note("escalate", snoozed, change="unacknowledged for 15 min", tags=("leads",))),
        ("remind", note("remind", snoozed)),
        ("resolve", note("resolve", resolved, change="all jobs recovered")),
        ("health", note("open", msgspec.structs.replace(inc, kind="health", source="", region="", project_id="",
                                                        jobs=(script,), severity="critical"))),
    ]
    return [(name, json.loads(encode(payload(n, receiver="https://hooks.example.com/w…", links=LINKS))))
            for name, n in cases]


@pytest.mark.parametrize(("name", "doc"), every_kind(), ids=[n for n, _ in every_kind()])
def test_every_payload_is_valid_against_the_schema(name: str, doc: dict) -> None:
    valid(doc)
    assert doc["version"] == "1"


def test_payload_content_is_exact() -> None:
    docs = dict(every_kind())
    opened = docs["open"]
    assert opened["transition"] == "open" and opened["key"] == f"{incident().id}#1/1"
    assert opened["incident"]["status"] == "firing" and opened["incident"]["jobs_total"] == 3
    assert [j["job_id"] for j in opened["jobs"]] == ["job-01", "job-02", "job-03"]
    assert opened["jobs"][0]["link"] == (
        "https://console.example.com/workspace/?region=cn-north-4#/jobs/0bec5db98280d2d02fd6c00c2de791ce/job-01")
    assert opened["links"] == [{"title": "Open in console", "url": opened["jobs"][0]["link"]}]
    assert opened["alert"]["title"] == "t" and opened["created_at"] == "2026-11-23T08:00:00Z"
    assert docs["resolve"]["incident"]["status"] == "resolved"
    assert docs["resolve"]["incident"]["resolved_at"] == "2026-11-23T08:30:00Z"
    assert docs["update"]["incident"]["acknowledged_by"] == "@ana"
    esc = docs["escalate"]
    assert (esc["incident"]["escalated"], esc["truncated_jobs"], esc["incident"]["jobs_total"]) == (1, 17, 21)
    assert esc["jobs"][3]["message"] == "<script>[31m</script> @here {{7*7}}"  # data, controls removed
    assert esc["jobs"][3]["entities"] == {"desktop_id": "desk-id-09", "desktop_name": "desk-09",
                                          "size_gb": 40, "scripts": ["a.ps1"]}  # fmt: skip
    assert docs["health"]["jobs"][0]["counts"] == {"success": 3, "failed": 1, "skipped": 0}


def test_the_schema_lists_every_field_the_structs_have() -> None:
    defs = SCHEMA["$defs"]
    pairs = [(webhook.WebhookPayload, SCHEMA), (webhook.PayloadIncident, defs["incident"]),
             (webhook.PayloadJob, defs["job"]), (webhook.PayloadAlert, defs["alert"])]  # fmt: skip
    for struct, schema in pairs:
        assert set(struct.__struct_fields__) == set(schema["required"]) == set(schema["properties"]), struct
    assert set(Entities.__struct_fields__) == set(defs["job"]["properties"]["entities"]["properties"])


def test_signature_scheme_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"version":"1"}'
    expected = "sha256=" + hmac.new(b"s3cret", b"1764000000." + body, hashlib.sha256).hexdigest()
    assert signature("s3cret", "1764000000", body) == expected
    assert verify_signature("s3cret", body, "1764000000", expected, now=1764000000 + 300)
    assert not verify_signature("s3cret", body, "1764000000", expected, now=1764000000 + 301)  # a replay
    assert not verify_signature("s3cret", body + b" ", "1764000000", expected, now=1764000000)
    assert not verify_signature("other", body, "1764000000", expected, now=1764000000)
    assert not verify_signature("s3cret", body, "1764000001", expected, now=1764000000)  # timestamp is signed
    assert not verify_signature("s3cret", body, "soon", expected, now=1764000000)
    assert not verify_signature("s3cret", body, None, expected)
