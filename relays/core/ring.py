"""The in-memory ring of recent frames that every consumer reads from.

Theory of operation
-------------------
The relay ingests frames in *chunks*: one chunk is the run of consecutive,
accepted frames found in one read from one producer, stamped with consecutive
domain sequences ``first_seq .. last_seq``. A chunk keeps the buffer it was read
into (never mutated after stamping) and the offset of every frame in it, so a
consumer can start at any sequence and send ``data[offsets[i]:end]`` as one
slice -- no per-frame work for unfiltered consumers.

The ring is a list of chunks ordered by sequence, bounded in *bytes*
(``max_bytes``; size it as rate x the stall you want to survive, not in
message counts). Appending past the bound evicts whole chunks from the front;
``oldest_seq`` rises and anything below it must come from the journal.
Invariants: chunks are contiguous (``chunk[k+1].first_seq == chunk[k].last_seq + 1``)
and ``head_seq`` is the last sequence of the last chunk (or the sequence the
ring was started at, minus one, while empty).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Container
from dataclasses import dataclass

from protocol.header import HEADER_SIZE


@dataclass(slots=True, eq=False)
class Chunk:
    """Frames ``first_seq .. first_seq + len(offsets) - 2`` in ``data``.

    ``offsets`` has one entry per frame plus a final end offset, so frame ``i``
    spans ``data[offsets[i]:offsets[i + 1]]``.
    """

    first_seq: int
    data: bytearray | bytes
    offsets: list[int] | array  # array("q") when ingest built it without a per-frame step
    source_id: int = 0  # every frame of a chunk comes from one producer
    last_source_seq: int = 0  # source_seq of the chunk's last frame

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.offsets) - 2

    @property
    def nbytes(self) -> int:
        return self.offsets[-1] - self.offsets[0]

    def view(self) -> memoryview:
        return memoryview(self.data)[self.offsets[0] : self.offsets[-1]]


def first_tlv_type(buf: bytes | bytearray | memoryview, off: int, end: int) -> int:
    """TLV type of the first record of the frame at ``buf[off:end]`` (0 if it has no payload).

    Compact records carry the type in their first byte (frame byte 52); the
    extended form starts with 0x00 and carries the type in the next byte.
    """
    p = off + HEADER_SIZE
    if p >= end:
        return 0
    t = buf[p]
    if t == 0 and p + 1 < end:
        return buf[p + 1]
    return t


class Ring:
    __slots__ = ("max_bytes", "_chunks", "_firsts", "_base", "nbytes", "head_seq", "_start_seq")

    def __init__(self, max_bytes: int, *, next_seq: int = 1) -> None:
        if max_bytes <= 0:
            raise ValueError("ring size must be positive")
        self.max_bytes = max_bytes
        self._chunks: list[Chunk] = []
        self._firsts: list[int] = []
        self._base = 0  # index of the oldest live chunk (evicted ones are compacted lazily)
        self.nbytes = 0
        self.head_seq = next_seq - 1
        self._start_seq = next_seq

    # ---- writing ----

    def append(self, chunk: Chunk) -> int:
        """Add the next chunk; evict from the front to stay within ``max_bytes``. Returns ``oldest_seq``."""
        if chunk.first_seq != self.head_seq + 1:
            raise ValueError(f"chunk starts at {chunk.first_seq}, ring head is {self.head_seq}")
        if chunk.count <= 0:
            raise ValueError("empty chunk")
        self._chunks.append(chunk)
        self._firsts.append(chunk.first_seq)
        self.nbytes += chunk.nbytes
        self.head_seq = chunk.last_seq
        # keep at least the newest chunk even if it alone exceeds the bound
        while self.nbytes > self.max_bytes and len(self._chunks) - self._base > 1:
            old = self._chunks[self._base]
            self._chunks[self._base] = None  # type: ignore[call-overload]
            self._base += 1
            self.nbytes -= old.nbytes
            self._start_seq = old.last_seq + 1
        if self._base > 64 and self._base * 2 > len(self._chunks):
            del self._chunks[: self._base]
            del self._firsts[: self._base]
            self._base = 0
        return self.oldest_seq

    # ---- reading ----

    @property
    def oldest_seq(self) -> int:
        """Lowest sequence the ring can serve (``head_seq + 1`` when empty)."""
        if len(self._chunks) > self._base:
            return self._chunks[self._base].first_seq
        return self._start_seq

    def __len__(self) -> int:
        return len(self._chunks) - self._base

    def locate(self, seq: int) -> tuple[Chunk, int] | None:
        """The chunk holding ``seq`` and the frame index inside it, or None if not in the ring."""
        if seq < self.oldest_seq or seq > self.head_seq:
            return None
        k = bisect_right(self._firsts, seq, self._base) - 1
        chunk = self._chunks[k]
        return chunk, seq - chunk.first_seq

    def read(self, seq: int, max_bytes: int) -> tuple[list[memoryview], int]:
        """Slices of whole frames from ``seq`` on, at most ``max_bytes`` (at least one frame).

        Returns ``(parts, next_seq)``; ``parts`` is empty when ``seq`` is past the head
        or below ``oldest_seq`` (the caller checks which).
        """
        chunks = self._chunks
        if chunks:
            # a live consumer's usual read: the rest of the newest chunk (never evicted), no search
            tail = chunks[-1]
            i = seq - tail.first_seq
            if i >= 0 and seq <= self.head_seq:
                offs = tail.offsets
                start = offs[i]
                end = offs[-1]
                if end - start <= max_bytes:
                    return [memoryview(tail.data)[start:end]], self.head_seq + 1
        loc = self.locate(seq)
        if loc is None:
            return [], seq
        chunk, i = loc
        parts: list[memoryview] = []
        budget = max_bytes
        k = bisect_right(self._firsts, seq, self._base) - 1
        while True:
            offs = chunk.offsets
            start = offs[i]
            end = offs[-1]
            n = chunk.count
            if end - start > budget:
                # cut at the last frame boundary within the budget (but take at least one frame)
                j = bisect_right(offs, start + budget, i + 1) - 1
                if j <= i:
                    j = i + 1 if not parts else i
                if j > i:
                    parts.append(memoryview(chunk.data)[start : offs[j]])
                    seq += j - i
                return parts, seq
            parts.append(memoryview(chunk.data)[start:end])
            seq += n - i
            budget -= end - start
            k += 1
            if k >= len(self._chunks) or budget <= 0:
                return parts, seq
            chunk = self._chunks[k]
            i = 0

    def read_filtered(
        self, seq: int, max_bytes: int, types: Container[int], max_scan: int = 65536
    ) -> tuple[list[memoryview], int]:
        """Like ``read`` but only frames whose first TLV type is in ``types``.

        Scans at most ``max_scan`` frames per call so a consumer filtering out
        nearly everything cannot hog the event loop; ``next_seq`` may advance
        with no parts returned.
        """
        loc = self.locate(seq)
        if loc is None:
            return [], seq
        chunk, i = loc
        k = bisect_right(self._firsts, seq, self._base) - 1
        parts: list[memoryview] = []
        budget = max_bytes
        scanned = 0
        while scanned < max_scan and budget > 0:
            data = chunk.data
            offs = chunk.offsets
            n = chunk.count
            run_start = -1
            mv = memoryview(data)
            while i < n:
                a = offs[i]
                b = offs[i + 1]
                t = data[a + HEADER_SIZE] if b > a + HEADER_SIZE else 0
                if t == 0 and b > a + HEADER_SIZE + 1:
                    t = data[a + HEADER_SIZE + 1]
                if t in types:
                    if run_start < 0:
                        run_start = a
                    budget -= b - a
                elif run_start >= 0:
                    parts.append(mv[run_start:a])
                    run_start = -1
                i += 1
                seq += 1
                scanned += 1
                if budget <= 0 or scanned >= max_scan:
                    break
            if run_start >= 0:
                parts.append(mv[run_start : offs[i]])
            if i < n:
                break
            k += 1
            if k >= len(self._chunks):
                break
            chunk = self._chunks[k]
            i = 0
        return parts, seq
