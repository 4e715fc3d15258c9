"""The local stand-in for the five Huawei Cloud job APIs (plus the v2 App job query).

Sits outside the data flow: the pollers in ``sources/`` talk to it through ``cloud/`` exactly
as they talk to Huawei Cloud, and tests assert what a pipeline publishes against
:func:`~watcher.simulator.lifecycle.scenario_transitions`. It serves every path on one
origin with the real paths, params, paging, field names, time formats, status words and
error bodies (huawei-job-apis.md), and authenticates like API Gateway: an
``SDK-HMAC-SHA256`` signature checked with :func:`watcher.cloud.signer.verify`, or an
``X-Auth-Token``.

Modules, from scenario file to HTTP answer::

    scenario.py   the YAML scenario file -> msgspec Structs (errors name the key)
    scale.py      the scale scenario (issue 11), built rather than shipped as YAML
    jobs.py       timelines, job records, each API's status words
    lifecycle.py  scenario + seed -> every job's timeline; the expected transitions
    clock.py      virtual seconds since start, with a speed and a test hook
    views.py      one job at one virtual time -> the API's JSON (times, words, fields)
    settings.py   credentials, accepted projects, clock speed and epoch
    state.py      Simulator: the plan, the clock and the queries each route needs
    answers.py    Answer, and the error bodies of API Gateway, Workspace and EVS
    auth.py       API Gateway authentication (APIG.0301)
    faults.py     throttling, 5xx, broken bodies, truncated pages, delays, token expiry (seeded)
    handlers.py   routes: query parsing, validation, filters, paging
    server.py     aiohttp app, start_simulator(), SimulatorThread, run() for ``watcher simulate``
    scenarios/    shipped scenario files, each playing one case (its header says what a correct
                  watcher sends): demo, small, app-job-failing-sub-job, app-job-both-apis,
                  evs-batch-stuck, abnormal-rollback-failed, truncated-page-stuck

May import: aiohttp, msgspec, yaml, the standard library, ``watcher.cloud.signer`` and
``watcher.errors``. Nothing in watcher imports this package except the CLI, the demo and
tests.

The defaults below are what a simulator accepts unless :class:`~watcher.simulator.settings.Settings`
says otherwise; they are throwaway values that protect nothing.
"""

from __future__ import annotations

#: Access key the simulator accepts by default.
DEFAULT_AK = "SIMULATORAK0000000001"
#: Secret key belonging to :data:`DEFAULT_AK` (a throwaway: it protects nothing).
DEFAULT_SK = "SIMULATORSK000000000000000000000000000001"
#: ``X-Auth-Token`` value accepted by default.
DEFAULT_TOKEN = "SIMULATOR-TOKEN"
#: Projects served when neither the settings nor the scenario name any.
DEFAULT_PROJECTS: tuple[str, ...] = (
    "0bec5db98280d2d02fd6c00c2de791ce",
    "ac234de25c6741d2b1273da49eea1b9e",
)

__all__ = ["DEFAULT_AK", "DEFAULT_PROJECTS", "DEFAULT_SK", "DEFAULT_TOKEN"]
