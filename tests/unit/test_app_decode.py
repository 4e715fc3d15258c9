import logging
from datetime import UTC, datetime

from watcher import events as ev
from watcher.app.factory import decode_or_warn, partition_for


def test_malformed_records_are_logged_and_skipped(caplog):
    caplog.set_level(logging.WARNING, logger="watcher.app")
    assert decode_or_warn(b"{not json", "event") is None
    assert decode_or_warn(b'{"type": "job", "schema": 1}', "event") is None
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["ignored a malformed event"] * 2


def test_good_records_decode_to_their_struct():
    req = ev.TrackRequest(source="evs", region="r", project_id="p", job_id="j", requested_at=datetime.now(UTC))
    assert decode_or_warn(ev.encode(req), "track request") == req


def test_partition_for_is_stable_and_in_range():
    assert partition_for("workspace/cn-north-4/p", 8) == partition_for("workspace/cn-north-4/p", 8)
    assert {partition_for(f"t{i}", 4) for i in range(100)} == {0, 1, 2, 3}
