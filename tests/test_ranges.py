"""The key-range helper covers the key space exactly once."""

from __future__ import annotations

import random
import uuid

import pytest

from batch_orchestra import (
    InvalidBatchInputError,
    KeyRange,
    split_hex_range,
    split_int_range,
    split_uuid_range,
)


@pytest.mark.parametrize(("lo", "hi", "k"), [(0, 1000, 8), (5, 12, 3), (0, 3, 8), (-50, 50, 7)])
def test_int_ranges_cover_once(lo: int, hi: int, k: int) -> None:
    ranges = [KeyRange.from_cursor(c) for c in split_int_range(lo, hi, k)]
    covered = [key for key in range(lo - 5, hi + 5) for r in ranges if r.contains(key)]
    assert covered == list(range(lo, hi))
    sizes = [int(r.hi) - int(r.lo) for r in ranges]  # type: ignore[arg-type]
    assert max(sizes) - min(sizes) <= 1
    assert len(ranges) == min(k, hi - lo)


def test_uuid_and_hex_ranges_cover_once() -> None:
    rng = random.Random(7)
    keys = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(5000)]
    keys += [str(uuid.UUID(int=0)), str(uuid.UUID(int=2**128 - 1))]
    ranges = [KeyRange.from_cursor(c) for c in split_uuid_range(8)]
    for key in keys:
        assert sum(r.contains(key) for r in ranges) == 1, key
    counts = [sum(r.contains(k) for k in keys) for r in ranges]
    assert min(counts) > 500  # roughly even
    hexes = [KeyRange.from_cursor(c) for c in split_hex_range(4, digits=4)]
    for key in ["0000", "3fff", "4000", "ffff", "zzzz"]:
        assert sum(r.contains(key) for r in hexes) == 1


def test_bad_arguments() -> None:
    with pytest.raises(InvalidBatchInputError, match="k must be an int >= 1, got 0"):
        split_int_range(0, 10, 0)
    with pytest.raises(InvalidBatchInputError, match="lo=10 > hi=0"):
        split_int_range(10, 0, 2)
    with pytest.raises(InvalidBatchInputError, match="not a KeyRange cursor"):
        KeyRange.from_cursor("42")
