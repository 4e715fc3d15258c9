"""Fixtures shared by every test. Keep it a table of contents: logic lives in modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from tests.kafka.legs import LEGS, BrokerLeg, SecureLeg, run_kafka, run_secure_kafka, run_tansu

BROKER_FIXTURES = {"broker", "tansu_broker", "kafka_broker", "own_kafka", "secure_kafka"}


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[BrokerLeg]:
    """The embedded Tansu broker (memory storage), one for the whole run."""
    yield from run_tansu()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[BrokerLeg]:
    """A real single-node Apache Kafka (KRaft), one for the whole run; skipped (failed under CI) without Java/Maven."""
    yield from run_kafka()


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[SecureLeg]:
    """An Apache Kafka with a SASL_SSL listener (SCRAM-SHA-512, test-time CA) and ACLs, one for the whole run."""
    yield from run_secure_kafka()


@pytest.fixture
def own_kafka() -> Iterator[BrokerLeg]:
    """An Apache Kafka of one test's own, for tests that stop and restart it (same port, same data)."""
    yield from run_kafka()


@pytest.fixture(params=LEGS)
def broker(request: pytest.FixtureRequest) -> BrokerLeg:
    """Each broker leg in turn: integration tests that take it run on Tansu and on Apache Kafka."""
    leg: BrokerLeg = request.getfixturevalue(f"{request.param}_broker")
    return leg


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test that touches a broker carries the "broker" marker: `-m "not broker"` runs the rest.
    for item in items:
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Any]:
    """One headless Chromium for the whole run (tests/integration/browser.py); its tests run on the session loop."""
    from tests.integration.browser import launch

    async for browser in launch():
        yield browser
