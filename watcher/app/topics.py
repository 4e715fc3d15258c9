"""Create watcher's topics up front, with the partition count the config asks for.

Faust declares its topics itself, but a broker that auto-creates topics on a metadata
request (Tansu does, with 4 partitions) can win the race and leave the ticks topic and its
co-partitioned tables with different counts. Creating them first removes the race.
"""

from __future__ import annotations

import asyncio
import logging

from watcher.errors import BrokerError

log = logging.getLogger("watcher.app")


async def ensure_topics(bootstrap: str, partitions: dict[str, int], timeout: float = 30.0) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, n, 1) for name, n in partitions.items() if name not in existing]
        if missing:
            await admin.create_topics(missing)
            log.info("created topics: %s", ", ".join(t.name for t in missing))
        if existing & set(partitions):
            described = await admin.describe_topics([t for t in partitions if t in existing])
            for d in described:
                want, have = partitions[d["topic"]], len(d.get("partitions", []))
                if have and have != want:
                    raise BrokerError(
                        f"topic {d['topic']} has {have} partitions but [broker] partitions = {want}: "
                        "use the count the topics were created with, or a new topic_prefix"
                    )
    except (TimeoutError, KafkaError, OSError) as e:
        raise BrokerError(f"cannot prepare topics on {bootstrap}: {e!r}") from e
    finally:
        await admin.close()
