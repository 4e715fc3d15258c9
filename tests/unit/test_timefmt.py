"""timefmt.parse_time: every API's documented format -> aware UTC; empty/garbage -> None, never raises."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.sources.timefmt import parse_time


@pytest.mark.parametrize(
    ("api", "raw", "expected"),
    [
        ("workspace", "2020-04-10 06:45:14", datetime(2020, 4, 10, 6, 45, 14, tzinfo=UTC)),
        ("workspaceapp", "2022-03-07T10:40:43.858Z", datetime(2022, 3, 7, 10, 40, 43, 858000, tzinfo=UTC)),
        ("appjob", "2023-06-06T02:30:06Z", datetime(2023, 6, 6, 2, 30, 6, tzinfo=UTC)),
        ("script", "2021-10-01T12:00:00Z", datetime(2021, 10, 1, 12, 0, 0, tzinfo=UTC)),
        ("evs", "2016-03-08T07:40:13.219Z", datetime(2016, 3, 8, 7, 40, 13, 219000, tzinfo=UTC)),
        ("offset", "2022-03-07T18:40:43+08:00", datetime(2022, 3, 7, 10, 40, 43, tzinfo=UTC)),
        ("offset-compact", "2022-03-07T05:40:43-0500", datetime(2022, 3, 7, 10, 40, 43, tzinfo=UTC)),
        ("nanoseconds", "2022-03-07T10:40:43.123456789Z", datetime(2022, 3, 7, 10, 40, 43, 123456, tzinfo=UTC)),
        ("no-seconds", "2022-03-07T10:40Z", datetime(2022, 3, 7, 10, 40, tzinfo=UTC)),
        ("padded", "  2020-04-10 06:45:14 ", datetime(2020, 4, 10, 6, 45, 14, tzinfo=UTC)),
        ("epoch-s", 1583822714, datetime(2020, 3, 10, 6, 45, 14, tzinfo=UTC)),
        ("epoch-ms", 1583822714500, datetime(2020, 3, 10, 6, 45, 14, 500000, tzinfo=UTC)),
    ],
)
def test_documented_formats_parse_to_aware_utc(api: str, raw: str | int, expected: datetime) -> None:
    got = parse_time(raw)
    assert got == expected
    assert got is not None and got.utcoffset() is not None and got.tzinfo == UTC


@pytest.mark.parametrize(
    "raw",
    [None, "", "   ", "string", "2020-13-40 06:45:14", "2020-04-10", "06:45:14", "2020-04-10T25:00:00Z",
     "2020-04-10T06:45:14+99:99", "yyyy-MM-ddTHH:mm:ssZ", True, -5, float("nan"), float("inf"), 1e30],
)  # fmt: skip
def test_empty_or_garbage_is_none(raw: object) -> None:
    assert parse_time(raw) is None  # type: ignore[arg-type]


@given(st.one_of(st.text(), st.integers(), st.floats(), st.none()))
def test_never_raises(raw: str | int | float | None) -> None:
    got = parse_time(raw)
    assert got is None or got.tzinfo == UTC
