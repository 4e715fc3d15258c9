"""``python -m bench.http_cost [N]``: client CPU per signed GET, httpx (as the cloud client) vs aiohttp.

Evidence for the scale and idle benchmarks' missed goals, whose profiles put a quarter to a half
of the worker's busy time in ``CloudClient.get`` (httpx, httpcore). Not a benchmark of the
product: the same request (an EVS job by id, signed with :mod:`watcher.cloud.signer`, 8 in
flight, keep-alive) sent ``N`` times with each client against ``watcher simulate --scenario
scale`` in its own process, and this process's CPU time per request. Each client runs twice;
the second runs are printed.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from watcher.cloud.signer import sign_headers
from watcher.simulator import DEFAULT_AK, DEFAULT_SK
from watcher.simulator.scale import project_id, scale_scenario
from watcher.simulator.state import Simulator

IN_FLIGHT = 8


def headers(host: str, path: str) -> dict[str, str]:
    base = {"Content-Type": "application/json", "X-Project-Id": project_id(0), "Host": host}
    return sign_headers(DEFAULT_AK, DEFAULT_SK, "GET", path, [], base)


async def timed(name: str, paths: list[str], send: Callable[[str], Awaitable[int]]) -> dict[str, Any]:
    gate = asyncio.Semaphore(IN_FLIGHT)
    status: Counter[int] = Counter()

    async def one(path: str) -> None:
        async with gate:
            status[await send(path)] += 1

    await one(paths[0])  # connect first
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(p) for p in paths))
    cpu = time.process_time() - cpu0
    return {"client": name, "requests": len(paths), "ms_cpu_per_request": 1000 * cpu / len(paths),
            "seconds": time.perf_counter() - t0, "status": dict(status)}  # fmt: skip


async def measure(base: str, n: int) -> list[dict[str, Any]]:
    host = base.split("//", 1)[1]
    ids = Simulator(scale_scenario()).job_ids("evs", project_id(0))
    paths = [f"/v1/{project_id(0)}/jobs/{ids[i % len(ids)]}" for i in range(n)]
    out = []
    for _ in range(2):
        limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
        async with httpx.AsyncClient(limits=limits) as client:

            async def via_httpx(path: str) -> int:
                r = await client.get(base + path, headers=headers(host, path))
                return r.status_code

            h = await timed("httpx", paths, via_httpx)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=IN_FLIGHT)) as session:

            async def via_aiohttp(path: str) -> int:
                async with session.get(base + path, headers=headers(host, path)) as r:
                    await r.read()
                    return r.status

            a = await timed("aiohttp", paths, via_aiohttp)
    out += [h, a]
    return out


def main(n: int) -> None:
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:  # a file, never a pipe nobody drains
        sim = subprocess.Popen([sys.executable, "-m", "watcher.cli", "simulate", "--port", "0", "--scenario",
                                "scale"], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not (m := re.search(r"listening on (http://\S+)", Path(log.name).read_text())):
                if sim.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the simulator did not start:\n" + Path(log.name).read_text()[-2000:])
                time.sleep(0.1)
            for r in asyncio.run(measure(m[1], n)):
                print(f"{r['client']:8} {r['requests']:,} requests: {r['ms_cpu_per_request']:.2f} ms CPU per "
                      f"request ({r['seconds']:.2f} s, answers {r['status']})")  # fmt: skip
        finally:
            sim.terminate()
            sim.wait(10)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
