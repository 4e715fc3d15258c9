"""The naive reference poller: what a competent engineer writes in an afternoon, no Kafka, no state.

The scale benchmark (``bench/scale.py``) runs it beside `watcher run` on the same scenario, as
the yardstick issue 11 measures watcher against. On purpose simple and honest:

* one httpx client (keep-alive), requests signed with the project's own AK/SK signer
  (:mod:`watcher.cloud.signer`, the SDK's algorithm), at most 8 requests in flight;
* every ``fast`` seconds it polls every target: list APIs list everything, page by page
  (Workspace desktops, Workspace App server sub-jobs per job type, script tasks); by-id APIs
  ask for each known id (App jobs v2, EVS jobs). A round that overruns starts the next at once;
* answers are decoded with msgspec into Structs of the few fields it needs, as the app must;
* it remembers the last status per job in a dict, and POSTs one JSON webhook per job the first
  time it is seen failed — keyed by the job a page is about: a Workspace App job seen through
  both APIs (its sub-job rows and the job by id) is one job, keyed by the App job id.

No retries, no backoff, no persistence: a restart forgets everything (and would page again).
Run: ``python -m bench.naive SPEC.json`` with HUAWEICLOUD_SDK_AK/SK in the environment; the spec
(:func:`spec_for`) names the simulator, the webhook, the interval and the targets.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from watcher.cloud.client import request_target
from watcher.cloud.signer import sign_headers

IN_FLIGHT = 8


class WsRow(msgspec.Struct):
    id: str
    status: str


class WsPage(msgspec.Struct):
    total_count: int = 0
    jobs: list[WsRow] = []


class AppRow(msgspec.Struct):
    id: str
    job_id: str
    status: str


class AppPage(msgspec.Struct):
    count: int = 0
    items: list[AppRow] = []


class ScriptRow(msgspec.Struct):
    id: str
    status: str
    failed_num: int = 0


class ScriptPage(msgspec.Struct):
    total_count: int = 0
    script_execution_tasks: list[ScriptRow] = []


class AppSub(msgspec.Struct):
    id: str
    status: str


class AppJob(msgspec.Struct):
    id: str
    status: str
    sub_jobs: list[AppSub] = []


class EvsSub(msgspec.Struct):
    job_id: str
    status: str


class EvsEntities(msgspec.Struct):
    sub_jobs: list[EvsSub] = []


class EvsJob(msgspec.Struct):
    job_id: str
    status: str
    entities: EvsEntities = msgspec.field(default_factory=EvsEntities)


DECODERS = {t: msgspec.json.Decoder(t) for t in (WsPage, AppPage, ScriptPage, AppJob, EvsJob)}


def spec_for(sim: Any, url: str, webhook: str, fast: float, app_job_types: Sequence[str]) -> dict[str, Any]:
    """The naive poller's spec for a simulator's scenario: every project, every API, the by-id ids."""
    targets: list[dict[str, Any]] = []
    for p in sim.scenario.projects:
        targets += [{"source": "workspace", "project": p}, {"source": "script", "project": p}]
        targets += [{"source": "workspaceapp", "project": p, "job_type": t} for t in app_job_types]
        for source in ("appjob", "evs"):
            if ids := sim.job_ids(source, p):
                targets.append({"source": source, "project": p, "ids": ids})
    return {"endpoint": url, "webhook": webhook, "fast": fast, "targets": targets}


class Poller:
    def __init__(self, spec: dict[str, Any], ak: str, sk: str) -> None:
        self.spec, self.ak, self.sk = spec, ak, sk
        self.base = spec["endpoint"].rstrip("/")
        self.host = urlsplit(self.base).netloc
        self.http = httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=IN_FLIGHT))
        self.hook = httpx.AsyncClient(timeout=30.0)
        self.gate = asyncio.Semaphore(IN_FLIGHT)
        self.last: dict[str, str] = {}  # job → last status seen
        self.paged: set[str] = set()  # jobs a webhook went out for
        self.errors = 0

    async def get(self, project: str, path: str, params: list[tuple[str, str]], kind: type) -> Any:
        headers = {"Content-Type": "application/json", "X-Project-Id": project, "Host": self.host}
        headers = sign_headers(self.ak, self.sk, "GET", path, params, headers)
        async with self.gate:
            r = await self.http.get(self.base + request_target(path, params), headers=headers)
        if r.status_code != 200:
            self.errors += 1
            return None
        return DECODERS[kind].decode(r.content)

    async def seen(self, source: str, project: str, job: str, status: str, failed: bool) -> None:
        self.last[job] = status
        if failed and job not in self.paged:
            self.paged.add(job)
            body = {"job": job, "source": source, "project": project, "status": status}
            await self.hook.post(self.spec["webhook"], json=body)

    async def listing(self, project: str, path: str, base: list[tuple[str, str]], limit: int, kind: type) -> list[Any]:
        rows: list[Any] = []
        while True:
            page = await self.get(project, path, [*base, ("limit", str(limit)), ("offset", str(len(rows)))], kind)
            if page is None:
                return rows
            got = page.jobs if kind is WsPage else page.items if kind is AppPage else page.script_execution_tasks
            total = page.count if kind is AppPage else page.total_count
            rows += got
            if not got or len(rows) >= total:
                return rows

    async def poll(self, t: dict[str, Any]) -> None:
        p, source = t["project"], t["source"]
        if source == "workspace":
            for row in await self.listing(p, f"/v2/{p}/workspace-sub-jobs", [], 1000, WsPage):
                await self.seen(source, p, row.id, row.status, row.status == "FAILED")
        elif source == "workspaceapp":
            rows = await self.listing(p, f"/v1/{p}/app-server-sub-jobs", [("job_type", t["job_type"])], 100, AppPage)
            for row in rows:
                await self.seen(source, p, row.job_id, row.status, row.status in ("FAILED", "ABNORMAL"))
        elif source == "script":
            path = f"/v2/{p}/desktop-pools/script-execution-tasks/detail"
            for row in await self.listing(p, path, [], 100, ScriptPage):
                await self.seen(source, p, row.id, row.status, row.status == "FAILED" or row.failed_num > 0)
        elif source == "appjob":
            await asyncio.gather(*(self.app_job(p, job_id) for job_id in t["ids"]))
        elif source == "evs":
            await asyncio.gather(*(self.evs_job(p, job_id) for job_id in t["ids"]))

    async def app_job(self, p: str, job_id: str) -> None:
        job = await self.get(p, f"/v2/{p}/job/{job_id}", [], AppJob)
        if job is not None:
            bad = job.status == "FAILED" or any(s.status in ("FAILED", "ABNORMAL") for s in job.sub_jobs)
            await self.seen("appjob", p, job.id, job.status, bad)

    async def evs_job(self, p: str, job_id: str) -> None:
        job = await self.get(p, f"/v1/{p}/jobs/{job_id}", [], EvsJob)
        if job is not None:
            bad = job.status == "FAIL" or any(s.status == "FAIL" for s in job.entities.sub_jobs)
            await self.seen("evs", p, job.job_id, job.status, bad)

    async def guarded(self, t: dict[str, Any]) -> None:
        try:
            await self.poll(t)
        except (httpx.HTTPError, msgspec.DecodeError) as e:  # one target's trouble never stops the round
            self.errors += 1
            print(f"poll of {t['source']} {t['project']} failed: {type(e).__name__}", file=sys.stderr, flush=True)

    async def run(self) -> None:
        fast = float(self.spec["fast"])
        rounds = 0
        while True:
            started = time.monotonic()
            await asyncio.gather(*(self.guarded(t) for t in self.spec["targets"]))
            rounds += 1
            took = time.monotonic() - started
            print(f"round {rounds} took {took:.3f}s: {len(self.last)} jobs, {len(self.paged)} paged, "
                  f"{self.errors} errors", flush=True)  # fmt: skip
            await asyncio.sleep(max(0.0, fast - took))


async def main(path: str) -> None:
    spec = json.loads(open(path).read())
    poller = Poller(spec, os.environ["HUAWEICLOUD_SDK_AK"], os.environ["HUAWEICLOUD_SDK_SK"])
    task = asyncio.ensure_future(poller.run())
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await poller.http.aclose()
        await poller.hook.aclose()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m bench.naive SPEC.json (HUAWEICLOUD_SDK_AK/SK in the environment)")
    asyncio.run(main(sys.argv[1]))
