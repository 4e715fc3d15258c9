"""Publish a TrackRequest: how `watcher track` and other systems hand over by-id job ids.

Record format on ``<topic_prefix>.track`` (JSON, any key)::

    {"type": "track", "schema": 1, "source": "evs", "region": "cn-north-4",
     "project_id": "0bec5db98280d2d02fd6c00c2de791ce", "job_id": "ff8080816…"}
"""

from __future__ import annotations

from datetime import UTC, datetime

from watcher.app.preflight import tool_connection
from watcher.app.topics import ensure_planned
from watcher.config import Config
from watcher.errors import BrokerError
from watcher.events import TrackRequest, encode


async def send_track_request(config: Config, source: str, region: str, project_id: str, job_id: str) -> None:
    from aiokafka.errors import KafkaError

    conn = await tool_connection(config, "`watcher track` needs")
    await ensure_planned(conn, config, f"{config.broker.topic_prefix}.track")
    req = TrackRequest(
        source=source, region=region, project_id=project_id, job_id=job_id, requested_at=datetime.now(UTC)
    )
    producer = conn.producer()
    try:
        await producer.start()
        await producer.send_and_wait(f"{config.broker.topic_prefix}.track", encode(req), key=job_id.encode())
    except KafkaError as e:
        raise BrokerError(f"cannot publish the track request to {conn.bootstrap}: {e}") from e
    finally:
        await producer.stop()
