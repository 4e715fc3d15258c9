"""RepeatFilter: a library's repeated lines pass once per window, then say how many were held."""

from __future__ import annotations

import logging

from watcher.logs import RepeatFilter


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_library_storm_is_one_line_per_window_and_the_next_counts_the_rest():
    now = [0.0]
    f = RepeatFilter(window=30, clock=lambda: now[0])
    passed = []
    for i in range(500):  # aiokafka during a broker outage: one error per attempt
        now[0] = i * 0.05
        r = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused")
        if f.filter(r):
            passed.append(r.getMessage())
    assert passed == ["Unable connect to node with id 1: refused"]
    now[0] = 31.0
    r = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused")
    assert f.filter(r)
    assert r.getMessage() == "Unable connect to node with id 1: refused (499 more like this in the last 30s held back)"


def test_watchers_own_lines_and_other_templates_always_pass():
    f = RepeatFilter(window=30, clock=lambda: 0.0)
    assert all(f.filter(record("watcher.poller", "poll of %s failed", "t")) for _ in range(5))
    assert f.filter(record("aiokafka", "one thing")) and f.filter(record("aiokafka", "another thing"))
    assert f.filter(record("faust.worker", "one thing"))  # another logger, its own window
