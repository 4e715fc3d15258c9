"""The scale scenario (issue 11): many projects, all five APIs, then a batch failing at once.

Built as a :class:`~watcher.simulator.scenario.Scenario` by a function rather than shipped as
YAML: 50 projects of 10 batches is 500 near-identical lines. The defaults are the outside
run's numbers: 10,000 jobs over 50 projects (40 per API per project), 4,000 of them failing
between 60 s and 80 s of virtual time; the other 6,000 succeed between 10 s and ~52 s. Each
failing job is one failure a correct watcher pages once:

* ``workspace``: desktops (8 per createDesktops job), each its own job: 16 fail per project;
* ``workspaceapp``: App server jobs of one sub-job each, seen only through the list;
* ``appjob``: App server jobs of one sub-job each, tracked by id (``Simulator.job_ids``)
  *and* listed by ``app-server-sub-jobs``: one job through both APIs, one page;
* ``script``: tasks ending FAILED;
* ``evs``: ``extendVolume`` jobs ending FAIL.

By-id jobs (``appjob``, ``evs``) start at 0, so ids read up front always exist.
``python -m watcher.simulator.scale`` prints the same scenario as YAML.
"""

from __future__ import annotations

import sys

import msgspec

from watcher.simulator.scenario import (
    AppBatch,
    ErrorSpec,
    EvsBatch,
    ProjectSpec,
    Scenario,
    ScriptBatch,
    WorkspaceBatch,
)

WKS_ERROR = ErrorSpec("WKS.00129901", "The service is now unavailable to process the request.")
EVS_ERROR = ErrorSpec("EVS.1014", "volume can not be extended!")


def project_id(k: int) -> str:
    """The ``k``-th project of the scale scenario (32 characters, like a Huawei project id)."""
    return f"scaleproject{k:04d}" + "0" * 16


def scale_scenario(
    *,
    projects: int = 50,
    per_source: int = 40,
    failing: int = 16,
    fail_window: tuple[float, float] = (60.0, 80.0),
    seed: int = 11,
) -> Scenario:
    """``projects`` projects, each with ``per_source`` jobs of every API, ``failing`` of which fail
    inside ``fail_window`` (virtual seconds); the rest succeed before it."""
    if not 0 <= failing <= per_source:
        raise ValueError(f"failing must be between 0 and per_source ({per_source}), got {failing}")
    lo, hi = fail_window
    if not 2.0 <= lo <= hi:
        raise ValueError(f"fail_window must be [lo, hi] with 2 <= lo <= hi, got {fail_window}")
    ok = per_source - failing
    desktops = 8 if ok % 8 == 0 and failing % 8 == 0 else 1
    # Failing units start at 0, run from 1 s and end in the window: duration in [lo - 1, hi - 1].
    fails = {"start": 0.0, "wait": 1.0, "duration": (lo - 1.0, hi - 1.0), "fail": 1.0}
    listed = {"start": (0.0, 10.0), "wait": (0.0, 2.0), "duration": (10.0, 40.0)}
    byid = {"start": 0.0, "wait": (0.0, 2.0), "duration": (10.0, 50.0)}
    spec = ProjectSpec(
        workspace=tuple(
            b
            for b in (
                WorkspaceBatch(count=ok // desktops, desktops=desktops, **listed),  # type: ignore[arg-type]
                WorkspaceBatch(count=failing // desktops, desktops=desktops, errors=(WKS_ERROR,), **fails),  # type: ignore[arg-type]
            )
            if b.count
        ),
        workspaceapp=(
            AppBatch(count=ok, **listed),  # type: ignore[arg-type]
            AppBatch(count=failing, errors=(WKS_ERROR,), **fails),  # type: ignore[arg-type]
        ),
        appjob=(
            AppBatch(count=ok, server_prefix="APS-TRACKED", **byid),  # type: ignore[arg-type]
            AppBatch(count=failing, server_prefix="APS-TRACKED", errors=(WKS_ERROR,), **fails),  # type: ignore[arg-type]
        ),
        script=(
            ScriptBatch(count=ok, desktops=4, **listed),  # type: ignore[arg-type]
            ScriptBatch(count=failing, desktops=4, **fails),  # type: ignore[arg-type]
        ),
        evs=(
            EvsBatch(count=ok, **byid),  # type: ignore[arg-type]
            EvsBatch(count=failing, errors=(EVS_ERROR,), **fails),  # type: ignore[arg-type]
        ),
    )
    return Scenario(name="scale", seed=seed, projects={project_id(k): spec for k in range(projects)})


def to_yaml(scenario: Scenario) -> str:
    """``scenario`` as a scenario file (``parse_scenario`` reads it back to an equal Struct)."""
    import yaml

    raw = msgspec.to_builtins(scenario)
    raw.pop("faults", None)
    return yaml.safe_dump(raw, sort_keys=False, width=120)


if __name__ == "__main__":  # pragma: no cover - a convenience for people, tested through to_yaml
    sys.stdout.write(to_yaml(scale_scenario()))
