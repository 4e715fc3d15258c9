"""Benchmarks: the performance claims of the issue, measured side by side in one run.

Not tests: ``make bench`` (``python -m bench``) runs the full sizes and writes
``bench/out/report.md`` and ``bench/out/report.json``; ``python -m bench --smoke`` runs the
same code at sizes that take seconds (``make test`` runs that). One module per benchmark,
each with ``async def run(ctx) -> Section``:

    latency.py     status change in the simulator -> notification at a local HTTP sink
    throughput.py  events/s through a Faust rules agent vs raw aiokafka on the same topic
    api_cost.py    HTTP requests per poll cycle per source vs the floor and a naive SDK poller
    memory.py      a real worker's RSS with 100,000 open jobs; the poll-jobs table under retention
    burst.py       100,000 status changes at once -> every alert delivered
    ui.py          status page answer times
    scale.py       10,000 jobs, 5 APIs, 4,000 failures in 20 s: watcher (Tansu, Kafka) vs naive.py
    idle.py        5,000 targets, no jobs: the worker's CPU
    scaleout.py    the scale scenario with one worker, then two in one consumer group
    rig.py         the scale scenario's simulator, sink, ground truth and one measured run
    contenders.py  `watcher run` worker(s) and the naive poller, as the rig runs them
    naive.py       the naive reference poller (its own process)
    procs.py       CPU seconds and RSS of processes (psutil)
    stages.py      watcher's latency split by stage, from its topics
    profile.py     --profile: py-spy on the worker over a measured window
    readme.py      drafts the README's Performance section from a report
    report.py      Section/Goal, machine facts, the Markdown and JSON report
    brokers.py     the embedded Tansu broker, and Apache Kafka where Java and the jars are

bench/README.md says how a full run maps onto the README's Performance table.

Benchmarks drive the product from outside (its CLI worker, its sources, its simulator);
nothing in ``watcher/`` imports this package.
"""
