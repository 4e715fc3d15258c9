"""SilenceBook: the latest record of a silence id wins; file silences join the run-time ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from watcher.app.silences import SilenceBook, format_silences
from watcher.rules.silence import Silence, expire, new_silence

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_latest_record_per_id_wins_and_files_stay() -> None:
    from_file = Silence(id="rules.yaml:3", match='job_type == "x"', origin="rules.yaml:3")
    book = SilenceBook([from_file])
    s = new_silence('project_id == "p"', NOW, duration="2h", comment="rebuild")
    book.apply(msgspec.json.encode(s))
    assert [x.id for x in book.all()] == ["rules.yaml:3", s.id]
    assert book.runtime[s.id].active(NOW + timedelta(hours=1))
    book.apply(msgspec.json.encode(expire(s, NOW + timedelta(minutes=5))))
    assert not book.runtime[s.id].active(NOW + timedelta(hours=1))


def test_malformed_records_are_ignored() -> None:
    book = SilenceBook()
    book.apply(b"{not json")
    book.apply(None)
    assert book.all() == []


def test_format_lists_state_and_origin() -> None:
    s = new_silence('project_id == "p"', NOW, duration="2h", comment="rebuild")
    gone = expire(new_silence('rule == "r"', NOW - timedelta(hours=1)), NOW - timedelta(minutes=1))
    text = format_silences([s, gone], [], NOW + timedelta(minutes=1))
    assert f"{s.id}  active   cli" in text and f"{gone.id}  expired  cli" in text and "rebuild" in text
    assert format_silences([], [], NOW) == "no silences"
