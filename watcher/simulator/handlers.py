"""Routes: match the raw path, authenticate, check the project, apply faults, answer.

One table of routes (method GET, the real paths). For each API: its query parameters
with their documented ranges (a value out of range is a 400 in the API's error shape),
its filters, its paging (``offset``/``limit`` over the newest-first rows; the total is
the number of matching rows, not the page size) and its top-level field names.

Choices where no source says what the real service does:

* a project id the simulator does not serve answers **403 APIG.0302** on the Workspace
  and Workspace App routes (the IAM user is not authorized for that project), and **400
  Common.0011 "query job fail."** on EVS (its error page lists that code for a wrong project);
* single-valued parameters given twice use the first value; ``status`` on
  ``workspace-sub-jobs`` is multi-valued (S0 sends it twice) and matches any of them;
* an App job id that does not exist (yet) is **404** ``WKS.00010404``, an EVS one **400**
  ``Common.0011``; an unknown path or method is **404 APIG.0101**.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from watcher.simulator import auth, faults
from watcher.simulator.answers import (
    APIG_FORBIDDEN,
    EVS_QUERY_FAIL,
    WKS_JOB_NOT_FOUND,
    Answer,
    apig_error,
    auth_failed,
    bad_param,
    not_found_route,
    service_error,
)
from watcher.simulator.state import SCRIPT_FILTER, Simulator

WORKSPACE_STATUSES = ("SUCCESS", "RUNNING", "FAILED", "WAITING")
APP_STATUSES = ("WAITING", "RUNNING", "SUCCESS", "FAILED", "ABNORMAL", "ROLLBACK", "ABORTING")
TASK_TYPES = ("SCRIPT", "COMMAND")


class ParamError(Exception):
    """A query parameter breaks the API's documented contract (-> 400)."""


class Query:
    """The request's query pairs, percent-decoded, with the API's parsing rules."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]

    def one(self, name: str, choices: tuple[str, ...] | None = None) -> str | None:
        values = self.all(name)
        value = values[0] if values else None
        if value is not None and choices is not None and value not in choices:
            raise ParamError(f"Invalid parameter {name}: {value!r}, expected one of {', '.join(choices)}")
        return value or None

    def number(self, name: str, default: int, lo: int, hi: int | None = None) -> int:
        raw = self.one(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ParamError(f"Invalid parameter {name}: {raw!r} is not an integer") from None
        if value < lo or (hi is not None and value > hi):
            raise ParamError(
                f"Invalid parameter {name}: {value} is out of range [{lo}, {hi if hi is not None else ''}]"
            )
        return value

    def time(self, name: str) -> datetime | None:
        raw = self.one(name)
        if raw is None:
            return None
        try:
            return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise ParamError(f"Invalid parameter {name}: {raw!r}, expected yyyy-MM-ddTHH:mm:ssZ") from None


def _page(q: Query, default: int, lo: int, hi: int) -> dict[str, int]:
    """``offset``/``limit`` of the query, within the API's documented range."""
    return {"offset": q.number("offset", 0, 0), "limit": q.number("limit", default, lo, hi)}


Handler = Callable[[Simulator, str, Mapping[str, str], Query], Answer]


def list_workspace_sub_jobs(sim: Simulator, project: str, path: Mapping[str, str], q: Query) -> Answer:
    statuses = q.all("status")
    for s in statuses:
        if s not in WORKSPACE_STATUSES:
            raise ParamError(f"Invalid parameter status: {s!r}, expected one of {', '.join(WORKSPACE_STATUSES)}")
    page = sim.workspace_page(
        project,
        statuses=statuses,
        job_id=q.one("job_id"),
        job_type=q.one("job_type"),
        desktop_pool_id=q.one("desktop_pool_id"),
        **_page(q, 1000, 0, 1000),
    )
    return Answer(200, {"total_count": page.total, "jobs": page.rows})


def list_app_sub_jobs(sim: Simulator, project: str, path: Mapping[str, str], q: Query) -> Answer:
    job_type = q.one("job_type")
    if job_type is None:
        raise ParamError("Invalid parameter job_type: it is mandatory")
    status, job_id = q.one("status", APP_STATUSES), q.one("job_id")
    page = sim.app_page(project, job_type=job_type, status=status, job_id=job_id, **_page(q, 10, 1, 100))
    return Answer(200, {"count": page.total, "items": page.rows})


def _show_app_job(api: str) -> Handler:
    def show(sim: Simulator, project: str, path: Mapping[str, str], q: Query) -> Answer:
        body = sim.app_job(project, path["job_id"], api)
        if body is None:
            return service_error("appjob", 404, WKS_JOB_NOT_FOUND, f"The job does not exist: {path['job_id']}")
        return Answer(200, body)

    return show


def list_script_tasks(sim: Simulator, project: str, path: Mapping[str, str], q: Query) -> Answer:
    page = sim.script_page(
        project,
        desktop_pool_id=q.one("desktop_pool_id"),
        script_id=q.one("script_id"),
        script_name=q.one("script_name"),
        status=q.one("status", tuple(SCRIPT_FILTER)),
        task_type=q.one("task_type", TASK_TYPES),
        start_after=q.time("execute_time_start"),
        start_before=q.time("execute_time_end"),
        task_ids=set(q.all("task_id")),
        **_page(q, 10, 0, 100),
    )
    return Answer(200, {"script_execution_tasks": page.rows, "total_count": page.total})


def show_evs_job(sim: Simulator, project: str, path: Mapping[str, str], q: Query) -> Answer:
    body = sim.evs_job(project, path["job_id"])
    if body is None:
        return service_error("evs", 400, *EVS_QUERY_FAIL)
    return Answer(200, body)


@dataclass(frozen=True)
class Route:
    name: str  # the SDK operation, for logs and Simulator.requests
    source: str  # route family, as faults name it
    pattern: re.Pattern[str]
    handler: Handler


def _route(name: str, source: str, path: str, handler: Handler) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return Route(name, source, re.compile(f"^{regex}$"), handler)


ROUTES: tuple[Route, ...] = (
    _route("workspace.list_ita_sub_jobs", "workspace", "/v2/{project_id}/workspace-sub-jobs", list_workspace_sub_jobs),
    _route("workspaceapp.list_sub_jobs", "workspaceapp", "/v1/{project_id}/app-server-sub-jobs", list_app_sub_jobs),
    _route("workspaceapp.show_job", "appjob", "/v1/{project_id}/job/{job_id}", _show_app_job("v1")),
    _route("workspaceapp.show_job_detail", "appjob", "/v2/{project_id}/job/{job_id}", _show_app_job("v2")),
    _route(
        "workspace.show_desktop_pools_script_exec_tasks",
        "script",
        "/v2/{project_id}/desktop-pools/script-execution-tasks/detail",
        list_script_tasks,
    ),
    _route("evs.show_job", "evs", "/v1/{project_id}/jobs/{job_id}", show_evs_job),
)


def match(method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
    if method.upper() != "GET":
        return None
    for route in ROUTES:
        if m := route.pattern.match(raw_path):
            return route, {k: unquote(v) for k, v in m.groupdict().items()}
    return None


async def dispatch(
    sim: Simulator,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    request_id: str,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> tuple[str, Answer]:
    """Answer one request: (route name or "-", answer). Never raises for a client's mistake."""
    found = match(method, raw_path)
    if found is None:
        return "-", not_found_route(request_id)
    route, path = found
    sim.requests[route.name] += 1
    if reason := auth.check(sim.settings, method, raw_path, query_string, headers, body):
        return route.name, auth_failed(reason, request_id)
    project = path["project_id"]
    if project not in sim.projects:
        if route.source == "evs":
            return route.name, service_error("evs", 400, *EVS_QUERY_FAIL)
        return route.name, apig_error(403, *APIG_FORBIDDEN, request_id)
    fired = sim.faults.draw(route.source, project, sim.now())
    answer = faults.refusal(fired, route.source, request_id, sim.epoch)
    if answer is None:
        try:
            answer = route.handler(sim, project, path, Query(auth.query_pairs(query_string)))
        except ParamError as e:
            answer = bad_param(route.source, str(e))
        if answer.status == 200:
            answer.body = faults.mutate(fired, route.source, answer.body)
    if wait := faults.delay(fired):
        await sleep(wait)
    return route.name, answer
