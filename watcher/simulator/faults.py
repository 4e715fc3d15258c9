"""Faults: the server misbehaving on purpose, inside a virtual-time window, on a seeded coin.

Each fault of the scenario owns a ``random.Random("{seed}/fault/{index}")`` and draws once
per request it matches (route family, project, window), so the same request sequence
fires the same faults on every run. Order of effect for one request:

1. ``token_expiry`` -> 401 APIG.0301 "token expires" (whatever the credentials);
2. ``throttle`` -> 429 APIG.0308, with ``Retry-After`` if configured;
3. ``server_error`` -> 500/503 WKS.00129901 (EVS: its own shape), ``Retry-After`` optional;
4. ``delay`` -> the answer (any of the above or the real one) waits ``seconds`` real seconds;
5. on a 200 only: ``unknown_status``, ``unknown_job_type``, ``missing_fields``,
   ``truncated_page`` (a list page keeps its total but only its first ``keep`` rows, none by
   default: ``{"total_count": 1, "jobs": []}`` while a job is open), then ``malformed_json``
   (the serialized body cut in half).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from watcher.simulator.answers import Answer, auth_failed, throttled, unavailable
from watcher.simulator.scenario import Fault

#: Where each route family keeps its rows and its total (for the body mutators).
ROWS = {"workspace": "jobs", "workspaceapp": "items", "script": "script_execution_tasks"}
#: What ``missing_fields`` drops when it names no field: the total, or a by-id job's status.
DEFAULT_MISSING = {
    "workspace": ("total_count",),
    "workspaceapp": ("count",),
    "script": ("total_count",),
    "evs": ("status",),
    "appjob": ("status", "job"),
}
#: Faults that replace the answer, strongest first.
PRIORITY = {"token_expiry": 0, "throttle": 1, "server_error": 2}
UNKNOWN_STATUS = "SOME_FUTURE_STATUS"
UNKNOWN_JOB_TYPE = "SOME_FUTURE_TYPE"
UNKNOWN_V1_INT = 7  # v1 App job statuses and types are integers


@dataclass
class _Entry:
    index: int
    fault: Fault
    rng: random.Random
    fired: int = 0


class FaultBook:
    """The scenario's faults with their coins and how often each fired."""

    def __init__(self, faults: Sequence[Fault], seed: int) -> None:
        self._entries = [_Entry(i, f, random.Random(f"{seed}/fault/{i}")) for i, f in enumerate(faults)]
        self.fired: Counter[int] = Counter()  # fault index -> times fired

    def draw(self, source: str, project: str | None, t: float) -> list[Fault]:
        """The faults that take effect for one request to ``source`` in ``project`` at virtual ``t``.

        Every matching fault flips its coin, but once one refusal (401/429/5xx) fired, the
        others that need a real answer (more refusals, body damage) do not fire and do not
        count against their ``limit``: only what the client saw is counted.
        """
        out: list[Fault] = []
        refused = False
        for e in sorted(self._entries, key=lambda e: (PRIORITY.get(e.fault.kind, len(PRIORITY)), e.index)):
            f = e.fault
            lo, hi = f.span()
            if (f.sources and source not in f.sources) or (f.projects and project not in f.projects):
                continue
            if not lo <= t < hi:
                continue
            roll = e.rng.random()
            if (f.limit is not None and e.fired >= f.limit) or roll >= f.probability:
                continue
            if refused and f.kind != "delay":
                continue
            refused |= f.kind in PRIORITY
            e.fired += 1
            self.fired[e.index] += 1
            out.append(f)
        return out


def _first(fired: Sequence[Fault], kind: str) -> Fault | None:
    return next((f for f in fired if f.kind == kind), None)


def refusal(fired: Sequence[Fault], source: str, request_id: str, epoch: datetime) -> Answer | None:
    """The error answer a fired fault puts in place of the real one, if any (steps 1-3)."""
    if f := _first(fired, "token_expiry"):
        expired = (epoch + timedelta(seconds=f.span()[0])).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        return auth_failed(f"token expires, expires_at: {expired}", request_id)
    if f := _first(fired, "throttle"):
        return throttled(request_id, f.retry_after)
    if f := _first(fired, "server_error"):
        return unavailable(source, f.status, f.retry_after)
    return None


def delay(fired: Sequence[Fault]) -> float:
    return sum(f.seconds for f in fired if f.kind == "delay")


def _rows(source: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every job-like object of a body (rows, a by-id job and its sub-jobs)."""
    if source in ROWS:
        return [r for r in body.get(ROWS[source]) or () if isinstance(r, dict)]
    job = body.get("job") if isinstance(body.get("job"), dict) else body  # App job v1 wraps it
    subs = job.get("sub_jobs") or (job.get("entities") or {}).get("sub_jobs") or []
    return [job, *(s for s in subs if isinstance(s, dict))]


def _replace(rows: list[dict[str, Any]], keys: tuple[str, ...], value: str) -> None:
    for row in rows:
        for key in keys:
            if isinstance(row.get(key), int):  # v1 App job: integers stay integers
                row[key] = int(value) if value.isdigit() else UNKNOWN_V1_INT
            elif key in row:
                row[key] = value


def mutate(fired: Sequence[Fault], source: str, body: Any) -> Any:
    """A 200 body as the fired faults damage it (step 5); bytes once it is no longer JSON."""
    if not isinstance(body, dict):
        return body
    for f in fired:
        if f.kind == "unknown_status":
            _replace(_rows(source, body), ("status", "job_status"), f.value or UNKNOWN_STATUS)
        elif f.kind == "unknown_job_type":
            _replace(_rows(source, body), ("job_type",), f.value or UNKNOWN_JOB_TYPE)
        elif f.kind == "missing_fields":
            for key in f.fields or (() if f.row_fields else DEFAULT_MISSING[source]):
                body.pop(key, None)
            for row in _rows(source, body) if f.row_fields else ():
                for key in f.row_fields:
                    row.pop(key, None)
        elif f.kind == "truncated_page" and source in ROWS and isinstance(body.get(ROWS[source]), list):
            body[ROWS[source]] = body[ROWS[source]][: f.keep]  # the total still counts every row
    if _first(fired, "malformed_json"):
        raw = json.dumps(body).encode()
        return raw[: max(1, len(raw) // 2)]
    return body
