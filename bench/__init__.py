"""Benchmarks: the performance claims of the issue, measured side by side in one run.

Not tests: ``make bench`` (``python -m bench``) runs the full sizes and writes
``bench/out/report.md`` and ``bench/out/report.json``; ``python -m bench --smoke`` runs the
same code at sizes that take seconds (``make test`` runs that). One module per benchmark,
each with ``async def run(ctx) -> Section``:

    latency.py     status change in the simulator -> notification at a local HTTP sink
    throughput.py  events/s through a Faust rules agent vs raw aiokafka on the same topic
    api_cost.py    HTTP requests per poll cycle per source vs the floor and a naive SDK poller
    memory.py      RSS per tracked job of the poller state (the Faust table's strings)
    burst.py       100,000 status changes at once -> every alert delivered
    report.py      Section/Goal, machine facts, the Markdown and JSON report
    brokers.py     the embedded Tansu broker, and Apache Kafka where Java and the jars are

Benchmarks drive the product from outside (its CLI worker, its sources, its simulator);
nothing in ``watcher/`` imports this package.
"""
