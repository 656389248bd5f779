"""A small sorted set of integer ranges, after aioquic's ``quic/rangeset.py``.

A consumer records every domain sequence it has delivered; the set stays a
handful of ``range`` objects (usually one: ``range(first, last + 1)``), and its
holes are exactly the gaps still to recover. Ranges are half-open, kept sorted,
non-overlapping and non-adjacent (adjacent ranges are merged), so ``len(set)``
is the number of disjoint runs.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence


class RangeSet(Sequence[range]):
    __slots__ = ("_ranges",)

    def __init__(self, ranges: Sequence[range] = ()) -> None:
        self._ranges: list[range] = []
        for r in ranges:
            self.add(r.start, r.stop)

    def add(self, start: int, stop: int | None = None) -> None:
        """Add ``[start, stop)`` (``stop`` defaults to ``start + 1``)."""
        if stop is None:
            stop = start + 1
        if stop <= start:
            return
        rs = self._ranges
        # fast path: appending at or just past the end (the in-order case)
        if rs:
            last = rs[-1]
            if start >= last.start:
                if start > last.stop:
                    rs.append(range(start, stop))
                    return
                if stop > last.stop:
                    rs[-1] = range(last.start, stop)
                return
        else:
            rs.append(range(start, stop))
            return
        # general case: find the first range whose stop >= start, merge while overlapping
        i = bisect_left([r.stop for r in rs], start)
        j = i
        while j < len(rs) and rs[j].start <= stop:
            start = min(start, rs[j].start)
            stop = max(stop, rs[j].stop)
            j += 1
        rs[i:j] = [range(start, stop)]

    def subtract(self, start: int, stop: int) -> None:
        out: list[range] = []
        for r in self._ranges:
            if r.stop <= start or r.start >= stop:
                out.append(r)
                continue
            if r.start < start:
                out.append(range(r.start, start))
            if r.stop > stop:
                out.append(range(stop, r.stop))
        self._ranges = out

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        rs = self._ranges
        i = bisect_left([r.stop for r in rs], value + 1)
        return i < len(rs) and rs[i].start <= value

    def gaps(self) -> list[range]:
        """The holes between the first and last recorded values."""
        rs = self._ranges
        return [range(a.stop, b.start) for a, b in zip(rs, rs[1:])]

    def bounds(self) -> range:
        if not self._ranges:
            return range(0)
        return range(self._ranges[0].start, self._ranges[-1].stop)

    def shift(self) -> range:
        """Remove and return the first range."""
        return self._ranges.pop(0)

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        return self._ranges[index]

    def __len__(self) -> int:
        return len(self._ranges)

    def __iter__(self) -> Iterator[range]:
        return iter(self._ranges)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RangeSet) and other._ranges == self._ranges

    def __repr__(self) -> str:
        return f"RangeSet({self._ranges!r})"
