"""Scenario files: YAML decoded into msgspec Structs, with errors that name the key.

A scenario says what happens in each project over virtual time: batches of jobs per
source, each with a start, a wait (queued), a duration (running), a failure share with
error codes, a stuck share, and faults the server injects. Every random choice is drawn
from ``seed``, so a scenario plus a virtual time always gives the same answers.

A job exists from its ``start``: before it, list APIs do not show it and the by-id APIs
answer "not found" (App job 404, EVS 400 Common.0011). By-id jobs whose ids a poller gets
up front (``Simulator.job_ids``) should therefore start at 0.

Numbers written ``[lo, hi]`` are ranges (each job draws uniformly); a bare number is
exact. Times are virtual seconds since the simulator started. Example::

    seed: 7
    projects:
      0bec5db98280d2d02fd6c00c2de791ce:
        workspace:
          - {job_type: createDesktops, count: 1, desktops: 20, start: 0, wait: [0, 2],
             duration: [5, 15], fail: 0.1,
             errors: [{code: WKS.00129901, message: "The service is now unavailable..."}]}
        workspaceapp:
          - {job_type: CREATE_SERVER, servers: 3, duration: [4, 8]}
          - {servers: 1, fail: 1.0, path: [{status: ABNORMAL, for: 5}, {status: ROLLBACK, for: 5}]}
        appjob: [{servers: 2, fail: 0.5}]            # tracked by id (Simulator.job_ids)
        script: [{desktops: 12, failed: [1, 3], skipped: 1}]
        evs: [{job_type: extendVolume, fail: 1.0}, {job_type: batchCreateVolume, volumes: 3}]
    faults:
      - {kind: throttle, sources: [workspace], window: [10, 12], retry_after: 1}
      - {kind: truncated_page, sources: [workspace], window: [20, 30]}   # total kept, rows dropped
      - {kind: token_expiry, at: 300}

An ``appjob`` batch is one set of App server jobs seen through both Workspace App APIs: by
id (``/v1|v2/{project}/job/{id}``) and as rows of ``app-server-sub-jobs`` whose ``job_id``
is that job, exactly as Huawei shows one job through both. A ``workspaceapp`` batch is
seen only through the list. A batch's ``path`` sends its failing units through the given
statuses (each ``for`` seconds) between RUNNING and FAILED; a last step without ``for``
never ends. EVS batch job types (``batchCreateVolume``, ``bulkDeleteVolume``) carry one
sub-job per volume; ``stuck`` applies to those sub-jobs, and the batch stays RUNNING while
one is stuck.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from watcher.errors import ConfigError

#: Statuses a Workspace App sub-job's ``path`` may hold (the API's own words).
PATH_WORDS = ("RUNNING", "ABNORMAL", "ROLLBACK", "ABORTING")

#: A bare number, or ``[lo, hi]`` drawn uniformly per job.
Range = float | tuple[float, float]

#: Route families a fault can target (``appjob`` covers both the v1 and the v2 path).
FAULT_SOURCES = ("workspace", "workspaceapp", "appjob", "script", "evs")
FaultKind = Literal[
    "throttle",  # 429 APIG.0308, optionally with Retry-After
    "server_error",  # 500/503 WKS.00129901 (EVS: its own error shape)
    "malformed_json",  # 200 with a truncated JSON body
    "missing_fields",  # 200 with fields removed from the body or its rows
    "delay",  # answer after ``seconds`` of real time
    "unknown_status",  # status words the API never documented
    "unknown_job_type",
    "token_expiry",  # 401 APIG.0301 "token expires" for every credential
    "truncated_page",  # 200 list page whose total claims rows it does not carry (keeps ``keep`` rows)
]
#: Route families that answer pages (the only ones a truncated_page fault can hit).
LIST_SOURCES = ("workspace", "workspaceapp", "script")


class ErrorSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One failure a job may end with: the API's error code and message."""

    code: str
    message: str


class Lifecycle(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fields every batch has: how many, when, how long, how it ends."""

    count: int = 1  # jobs in the batch (each with its own start/wait/duration draw)
    start: Range = 0.0  # created (queued) at this virtual second
    wait: Range = (0.0, 2.0)  # seconds queued (WAITING/INIT) before RUNNING
    duration: Range = (5.0, 20.0)  # seconds RUNNING before the end
    fail: float = 0.0  # share of the batch's units that fail (rounded to a whole number)
    stuck: float = 0.0  # share that stays RUNNING forever
    errors: tuple[ErrorSpec, ...] = ()  # a failed unit picks one; empty: the source's default


class WorkspaceBatch(Lifecycle, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``count`` Workspace jobs of ``desktops`` sub-jobs each (one row per desktop)."""

    job_type: str = "createDesktops"
    desktops: int = 1
    desktop_pool_id: str | None = None
    product_id: str = "workspace.x86.ultimate.large2"
    name_prefix: str = "desktop"
    user_prefix: str = "user"


class Step(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One status of a Workspace App sub-job's path, held ``for`` seconds (None: for good)."""

    status: str
    seconds: Range | None = msgspec.field(default=None, name="for")


class AppBatch(Lifecycle, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``count`` Workspace App jobs of ``servers`` sub-jobs each.

    ``path``: the statuses a *failing* sub-job goes through after its ``duration`` RUNNING
    and before FAILED (e.g. ABNORMAL then ROLLBACK); without ``for`` the last one is held
    for good and the sub-job never ends.
    """

    job_type: str = "CREATE_SERVER"
    servers: int = 1
    server_prefix: str = "APS"
    path: tuple[Step, ...] = ()


class ScriptBatch(Lifecycle, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``count`` script tasks on ``desktops`` desktops; ``fail`` tasks end FAILED.

    A task that FINISHes still reports ``failed`` and ``skipped`` desktops.
    """

    task_type: Literal["SCRIPT", "COMMAND"] = "SCRIPT"
    desktops: int = 10
    failed: Range = 0.0
    skipped: Range = 0.0
    desktop_pool_id: str = "pool-01"
    desktop_pool_name: str = "pool-01"
    script_name: str = "install-agent.ps1"
    command_type: Literal["POWERSHELL", "BAT", "SHELL"] = "POWERSHELL"
    command_content: str = ""


class EvsBatch(Lifecycle, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``count`` EVS jobs; batch job types carry ``volumes`` sub-jobs in ``entities.sub_jobs``."""

    job_type: str = "extendVolume"
    volumes: int = 1
    size: Range = (40.0, 200.0)
    volume_type: str = "SSD"
    name_prefix: str = "volume"


class ProjectSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    workspace: tuple[WorkspaceBatch, ...] = ()
    workspaceapp: tuple[AppBatch, ...] = ()
    appjob: tuple[AppBatch, ...] = ()  # like workspaceapp, and advertised by Simulator.job_ids
    script: tuple[ScriptBatch, ...] = ()
    evs: tuple[EvsBatch, ...] = ()


class Fault(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A misbehaviour of the server, within a virtual-time window, on a seeded coin flip."""

    kind: FaultKind
    sources: tuple[str, ...] = ()  # empty: every route
    projects: tuple[str, ...] = ()  # empty: every project
    window: tuple[float, float | None] | None = None  # [from, to) in virtual seconds; to=null: forever
    at: float | None = None  # shorthand for window [at, forever)
    probability: float = 1.0
    limit: int | None = None  # fire at most this many times
    retry_after: float | None = None  # throttle / server_error: Retry-After seconds
    status: Literal[500, 503] = 500  # server_error
    seconds: float = 1.0  # delay, in real seconds
    value: str | None = None  # unknown_status / unknown_job_type: the word to send
    fields: tuple[str, ...] = ()  # missing_fields: top-level keys to drop
    row_fields: tuple[str, ...] = ()  # missing_fields: keys to drop from every row
    keep: int = 0  # truncated_page: rows of the page kept (the total still counts them all)

    def span(self) -> tuple[float, float]:
        if self.window is not None:
            lo, hi = self.window
            return lo, float("inf") if hi is None else hi
        return (self.at or 0.0), float("inf")


class Scenario(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str = ""
    seed: int = 0
    epoch: datetime | None = None  # wall time of virtual second 0 (settings may override)
    projects: dict[str, ProjectSpec] = {}
    faults: tuple[Fault, ...] = ()


class _Top(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str = ""
    seed: int = 0
    epoch: datetime | None = None
    projects: dict[str, Any] = {}
    faults: list[Any] = []


_PATH = re.compile(r" - at `\$([^`]*)`")


def _convert(value: Any, type_: Any, key: str, file: str, text: str) -> Any:
    try:
        return msgspec.convert(value, type_)
    except msgspec.ValidationError as e:
        msg = str(e)
        m = _PATH.search(msg)
        path = key + (m.group(1) if m else "")
        if fld := re.search(r"unknown field `([^`]*)`", msg):
            path = f"{path}.{fld.group(1)}"
        raise ConfigError(
            _PATH.sub("", msg).strip(), file=file, key=path.lstrip("."), line=_line_of(text, path)
        ) from None


def _line_of(text: str, path: str) -> int | None:
    """Best-effort line of the last named key in ``path`` (for the error message)."""
    names = [n for n in re.split(r"[.\[\]]", path) if n and not n.isdigit() and n != "..."]
    if not names:
        return None
    m = re.search(rf"(^|[\s{{,]){re.escape(names[-1])}\s*:", text, re.M)
    return text.count("\n", 0, m.start()) + 1 if m else None


def parse_scenario(text: str, file: str = "<scenario>") -> Scenario:
    """Decode and validate one scenario; any problem raises ConfigError naming the key."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", file=file) from None
    top = _convert(raw if raw is not None else {}, _Top, "", file, text)
    projects = {
        str(pid): _convert(spec if spec is not None else {}, ProjectSpec, f"projects.{pid}", file, text)
        for pid, spec in top.projects.items()
    }
    faults = tuple(_convert(f, Fault, f"faults[{i}]", file, text) for i, f in enumerate(top.faults))
    scenario = Scenario(name=top.name, seed=top.seed, epoch=top.epoch, projects=projects, faults=faults)
    validate(scenario, file, text)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read scenario: {e.strerror}", file=str(p)) from None
    return parse_scenario(text, str(p))


def _check_range(value: Range, key: str, fail: Any) -> None:
    lo, hi = value if isinstance(value, tuple) else (value, value)
    if lo < 0 or hi < lo:
        fail(key, f"expected a number >= 0 or [lo, hi] with 0 <= lo <= hi, got {value!r}")


def validate(scenario: Scenario, file: str = "<scenario>", text: str = "") -> None:
    """The rules msgspec's types cannot say: shares in [0, 1], ranges ordered, names known."""

    def fail(key: str, message: str) -> None:
        raise ConfigError(message, file=file, key=key, line=_line_of(text, key))

    if scenario.epoch is not None and scenario.epoch.tzinfo is None:
        fail("epoch", "expected a time with a zone, e.g. 2024-05-01T08:00:00Z")
    for pid, spec in scenario.projects.items():
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", pid):
            fail(f"projects.{pid}", "a project id is 1-64 letters, digits, '-' or '_'")
        for source in FAULT_SOURCES:
            for i, batch in enumerate(getattr(spec, source)):
                key = f"projects.{pid}.{source}[{i}]"
                for name in ("start", "wait", "duration"):
                    _check_range(getattr(batch, name), f"{key}.{name}", fail)
                for name in ("fail", "stuck"):
                    if not 0.0 <= getattr(batch, name) <= 1.0:
                        fail(f"{key}.{name}", f"expected a share between 0 and 1, got {getattr(batch, name)!r}")
                if batch.fail + batch.stuck > 1.0:
                    fail(f"{key}.stuck", "fail + stuck must not exceed 1")
                if batch.count < 0:
                    fail(f"{key}.count", f"expected a count >= 0, got {batch.count}")
                for name in ("desktops", "servers", "volumes"):
                    if getattr(batch, name, 1) < 1:
                        fail(f"{key}.{name}", f"expected at least 1, got {getattr(batch, name)}")
                for name in ("failed", "skipped", "size"):
                    if hasattr(batch, name):
                        _check_range(getattr(batch, name), f"{key}.{name}", fail)
                if getattr(batch, "path", ()) and batch.fail == 0:
                    fail(f"{key}.path", "a path is what failing sub-jobs go through: set fail above 0")
                for j, step in enumerate(getattr(batch, "path", ())):
                    if step.status not in PATH_WORDS:
                        fail(f"{key}.path[{j}].status",
                             f"expected one of {', '.join(PATH_WORDS)}, got {step.status!r}")  # fmt: skip
                    if step.seconds is None and j != len(batch.path) - 1:
                        fail(f"{key}.path[{j}].for", "only the last step may be held for good (no `for`)")
                    if step.seconds is not None:
                        _check_range(step.seconds, f"{key}.path[{j}].for", fail)
    for i, f in enumerate(scenario.faults):
        key = f"faults[{i}]"
        for s in f.sources:
            if s not in FAULT_SOURCES:
                fail(f"{key}.sources", f"unknown source {s!r}; expected one of {', '.join(FAULT_SOURCES)}")
        if f.window is not None and f.at is not None:
            fail(f"{key}.at", "give either window or at, not both")
        lo, hi = f.span()
        if lo < 0 or hi <= lo:
            fail(f"{key}.window", f"expected 0 <= from < to, got {f.window!r}")
        if not 0.0 <= f.probability <= 1.0:
            fail(f"{key}.probability", f"expected a probability between 0 and 1, got {f.probability!r}")
        if f.limit is not None and f.limit < 1:
            fail(f"{key}.limit", f"expected at least 1, got {f.limit}")
        if f.seconds < 0 or (f.retry_after is not None and f.retry_after < 0):
            fail(f"{key}.seconds", "durations must be >= 0")
        if f.kind == "truncated_page":
            if f.keep < 0:
                fail(f"{key}.keep", f"expected a row count >= 0, got {f.keep}")
            for s in f.sources:
                if s not in LIST_SOURCES:
                    fail(f"{key}.sources", f"{s} answers no pages; truncated_page applies to {', '.join(LIST_SOURCES)}")
