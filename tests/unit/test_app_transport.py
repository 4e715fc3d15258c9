"""watcher.app.transport: what may be committed.

The first table pins the faust-streaming behaviour the module replaces: if a Faust release
fixes ``Consumer._new_offset``, it fails, and the replacement can be reconsidered.
"""

from collections import defaultdict
from types import SimpleNamespace

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from intervaltree import IntervalTree

from watcher.app.transport import committable

TP0 = TP("alerts", 0)


def faust_new_offset(committed: int | None, acked: list[int]) -> int | None:
    """What faust-streaming commits for TP0, given its committed offset and the acked offsets."""
    state = SimpleNamespace(
        _acked=defaultdict(list, {TP0: list(acked)}), _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None, {TP0: committed}), _acked_index=defaultdict(set, {TP0: set(acked)}),
    )  # fmt: skip
    return FaustConsumer._new_offset(state, TP0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("committed", "acked", "commits"),
    [
        (None, [1, 2], 3),  # never committed: offset 0, still in flight, is committed past
        (3, [4], 5),  # offset 3 in flight: committed past (one unacked offset gets through)
        (3, [5, 6], None),  # two unacked: held back
        (3, [3, 4], 5),  # in order: right
    ],
)
def test_faust_commits_past_an_unacked_head(committed, acked, commits):
    assert faust_new_offset(committed, acked) == commits


@pytest.mark.parametrize(
    ("acked", "committed", "inflight", "commits"),
    [
        ([], None, None, None),
        ([0, 1, 2], None, None, 3),  # a partition's first records
        ([1, 2], None, 0, None),  # never committed, offset 0 still in flight: nothing
        ([2, 3], None, 1, None),
        ([0, 1, 3], None, 2, 2),  # up to the one in flight
        ([3, 4], 3, None, 5),
        ([4], 3, 3, None),  # Faust commits 5 here
        ([4, 5], 3, None, None),  # offset 3 neither acked nor in flight (not read yet): wait
        ([3, 4, 6], 3, 5, 5),  # a run stops at a hole
        ([3, 4, 5, 6], 3, 5, 5),
    ],
)
def test_commits_the_acked_run_from_the_committed_offset_never_past_one_in_flight(acked, committed, inflight, commits):
    assert committable(acked, committed, inflight) == commits
