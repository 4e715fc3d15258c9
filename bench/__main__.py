"""``python -m bench [--smoke] [--only NAME ...]``: run the benchmarks, write bench/out/report.{md,json}."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shlex
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench.report import Section, machine, now_iso, write

NAMES = ("api_cost", "memory", "throughput", "latency", "burst", "ui", "scale", "idle", "scaleout")
OUT = Path(__file__).resolve().parent / "out"


@dataclass
class Context:
    """What every benchmark's ``run(ctx)`` gets."""

    smoke: bool
    kafka: bool  # Apache Kafka can run here: benchmarks that take a broker also run on it
    kafka_note: str
    profile: bool = False  # --profile: py-spy on the worker over the scale burst and the idle minute
    out: Path = OUT

    def command(self, name: str) -> str:
        return "python -m bench --only " + name + (" --smoke" if self.smoke else "")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--smoke", action="store_true", help="seconds-long sizes (what `make test` runs)")
    p.add_argument("--only", action="append", choices=NAMES, metavar="NAME",
                   help=f"run only this benchmark (repeatable): {', '.join(NAMES)}")
    p.add_argument("--kafka", choices=("auto", "yes", "no"), default="auto",
                   help="also run on Apache Kafka: auto = where Java and the jars are (never in --smoke)")
    p.add_argument("--out", type=Path, default=OUT, help=f"report directory (default {OUT})")
    p.add_argument("--profile", action="store_true",
                   help="record the worker with py-spy over the scale burst and the idle minute (bench/profile.py)")
    return p.parse_args(argv)


def kafka_choice(args: argparse.Namespace) -> tuple[bool, str]:
    if args.kafka == "no" or (args.kafka == "auto" and args.smoke):
        return False, "Apache Kafka not run (--kafka no, or --smoke)"
    from bench.brokers import kafka_unavailable

    reason = kafka_unavailable()
    if reason is None:
        return True, "Apache Kafka available"
    if args.kafka == "yes":
        raise SystemExit(f"--kafka yes, but Apache Kafka cannot run here: {reason}")
    return False, f"Apache Kafka not available: {reason}"


async def run_one(name: str, ctx: Context) -> Section:
    started = time.monotonic()
    print(f"== {name}", flush=True)
    module = importlib.import_module(f"bench.{name}")
    try:
        section: Section = await module.run(ctx)
    except Exception:
        section = Section(name=name, title="(failed)", broker="-", command=ctx.command(name), error=traceback.format_exc())
        print(section.error, file=sys.stderr, flush=True)
    section.seconds = time.monotonic() - started
    print(f"   {name} took {section.seconds:.1f}s", flush=True)
    return section


async def main_async(args: argparse.Namespace) -> int:
    started, t0 = now_iso(), time.monotonic()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())  # 1, 5, 15 min: a full run wants a quiet machine
    kafka, note = kafka_choice(args)
    if args.profile:
        from bench.profile import py_spy

        if py_spy() is None:
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    ctx = Context(smoke=args.smoke, kafka=kafka, kafka_note=note, profile=args.profile, out=args.out)
    names = [n for n in NAMES if not args.only or n in args.only]
    if args.smoke:  # sizes are tiny: run side by side, the figures mean nothing anyway
        sections = list(await asyncio.gather(*(run_one(n, ctx) for n in names)))
    else:  # one at a time: a benchmark must not share the 2 cores with another
        sections = [await run_one(n, ctx) for n in names]
    meta = {
        "started": started, "smoke": args.smoke, "seconds": time.monotonic() - t0,
        "command": "python -m bench " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "make bench",
        "machine": machine(["embedded Tansu"] + (["Apache Kafka"] if kafka else [])), "kafka": note,
        "load_at_start": load,
    }
    md, js = write(args.out, meta, sections)
    print(f"wrote {md} and {js} in {meta['seconds']:.0f}s", flush=True)
    return 1 if any(s.error for s in sections) else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
