"""A minimal Faust worker that tests run as a real subprocess, to check table recovery on a broker.

    python tests/integration/faust_probe.py worker --without-web --loglevel=warning

Configured by environment (the test sets all of it):

    PROBE_BROKER    kafka://127.0.0.1:PORT
    PROBE_APP_ID    the app id, hence the consumer group and the changelog topic's name
    PROBE_INPUT     the input topic (raw bytes keys and values)
    PROBE_TANSU     "1" to apply watcher.app.broker.FAUST_SETTINGS_FOR_TANSU
    PROBE_SETTINGS  optional JSON object of extra Faust settings (wins over the above)
    PROBE_DATADIR   where Faust may create its data dir (never the repo)
    PROBE_OUT       file this worker appends one JSON object per line to:
                      {"ev": "boot", "t": ...}              the process started
                      {"ev": "put", "key": k, "t": ...}     an input record was written to the table
                      {"ev": "dump", "table": {...}, "t": ...} answer to an input with key "__dump__"

The agent copies every input record into the table ``table`` (changelog ``<app id>-table-changelog``,
key -> value); an input record keyed ``__dump__`` makes it write the whole table to PROBE_OUT instead.
"""

from __future__ import annotations

import json
import os
import sys
import time

import faust

from watcher.app.broker import FAUST_SETTINGS_FOR_TANSU

TABLE = "table"
DUMP_KEY = "__dump__"

# What the tests run with on every broker: one partition, no standby, quick commits, and the
# shortest session Apache Kafka allows (group.min.session.timeout.ms = 6 s) so that a worker
# restarted after SIGKILL is not kept waiting for the dead member's session to expire.
BASE_SETTINGS: dict[str, object] = {
    "store": "memory://",
    "web_enabled": False,
    "topic_partitions": 1,
    "topic_replication_factor": 1,
    "table_standby_replicas": 0,
    "consumer_auto_offset_reset": "earliest",
    "broker_commit_every": 1,
    "broker_commit_interval": 0.2,
    "stream_wait_empty": False,
    "broker_session_timeout": 6.0,
    "broker_heartbeat_interval": 1.0,
    "broker_rebalance_timeout": 6.0,
}


def _out(record: dict[str, object]) -> None:
    record["t"] = time.time()
    with open(os.environ["PROBE_OUT"], "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def settings_from_env() -> dict[str, object]:
    settings = dict(BASE_SETTINGS)
    if os.environ.get("PROBE_TANSU") == "1":
        settings.update(FAUST_SETTINGS_FOR_TANSU)
    settings.update(json.loads(os.environ.get("PROBE_SETTINGS") or "{}"))
    settings["broker"] = os.environ["PROBE_BROKER"]
    settings["datadir"] = os.environ["PROBE_DATADIR"]
    return settings


def build_app() -> faust.App:
    app = faust.App(os.environ["PROBE_APP_ID"], autodiscover=False, **settings_from_env())
    # raw bytes in, so plain aiokafka producers in the tests need no Faust serialization
    topic = app.topic(os.environ["PROBE_INPUT"], key_serializer="raw", value_serializer="raw", partitions=1)
    table = app.Table(TABLE, default=str, partitions=1)

    @app.agent(topic)
    async def copy(stream: faust.StreamT) -> None:
        async for raw_key, raw_value in stream.items():
            key, value = raw_key.decode(), raw_value.decode()
            if key == DUMP_KEY:
                _out({"ev": "dump", "table": dict(table.items())})
            else:
                table[key] = value
                _out({"ev": "put", "key": key})

    return app


if __name__ == "__main__":
    _out({"ev": "boot", "pid": os.getpid()})
    build_app().main()
    sys.exit(0)
