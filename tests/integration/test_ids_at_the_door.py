"""Ids are validated where they enter, and no URL is ever built from one that is not an id.

Issue 12, item 5: a 100,000-character ``job_id`` on the track topic made a poll crash with
``httpx.InvalidURL``. Now the track record does not decode (the track agent logs and skips
it), and a by-id source asked for such an id anyway drops it like an unknown job, makes no
request for it and still reports the real ids — against the simulator over real HTTP.
"""

from __future__ import annotations

import msgspec
import pytest

from watcher import events as ev
from watcher.cloud.client import CloudClient
from watcher.cloud.credentials import Credentials
from watcher.errors import InvalidId
from watcher.simulator import DEFAULT_AK, DEFAULT_SK
from watcher.simulator.server import small_scenario_path, start_simulator
from watcher.simulator.settings import Settings
from watcher.sources import new_source
from watcher.sources.base import Target
from watcher.sources.session import segment

HUGE = "f" * 100_000


def track_record(**fields: str) -> bytes:
    base = {"type": "track", "schema": 1, "source": "evs", "region": "cn-north-4", "project_id": "p1", "job_id": "j1"}
    return msgspec.json.encode({**base, **fields})


@pytest.mark.parametrize(("fields", "where"), [
    ({"job_id": HUGE}, "$.job_id"), ({"job_id": "../x"}, "$.job_id"), ({"project_id": "p 1"}, "$.project_id"),
])
def test_a_track_request_with_a_bad_id_does_not_decode(fields: dict[str, str], where: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        ev.decode(track_record(**fields))
    assert str(info.value) == f"Expected `str` matching regex '{ev.ID_PATTERN}' - at `{where}`"


def test_a_track_request_with_good_ids_decodes() -> None:
    req = ev.decode(track_record(job_id="ff808081692a62c70169b4dcf9514264"))
    assert isinstance(req, ev.TrackRequest) and req.job_id == "ff808081692a62c70169b4dcf9514264"


def test_segment_refuses_what_is_not_an_id() -> None:
    assert segment("ff8080-81.6:9_2") == "ff8080-81.6%3A9_2"
    with pytest.raises(InvalidId) as info:
        segment(HUGE)
    assert str(info.value) == ("not a valid job id: 'ffffffffffffffffffff'… (100,000 characters); expected 1 to 128 "
                               "letters, digits, '.', '_', ':' or '-'")


async def test_a_by_id_poll_drops_an_invalid_id_and_reports_the_rest() -> None:
    running = await start_simulator(scenario=small_scenario_path(), settings=Settings(speed=0))
    client = CloudClient(credentials=Credentials(ak=DEFAULT_AK, sk=DEFAULT_SK),
                         endpoints={"evs": running.url, "workspace": running.url, "workspaceapp": running.url})
    try:
        project = running.projects[0]
        real = running.sim.job_ids("evs", project)
        assert real, "the small scenario tracks EVS jobs"
        target = Target(source="evs", region="cn-north-4", project_id=project)
        result = await new_source("evs").fetch(client, target, [HUGE, *real])
        assert result.gone == [HUGE]
        assert result.requests == len(real)  # none for the invalid id
        assert {o.job_id for o in result.observations} >= set(real)
    finally:
        await client.aclose()
        await running.stop()
