"""A consumer's position in the log, and where its next batch comes from.

Theory of operation
-------------------
A ``Cursor`` is ``next_seq``: the first domain sequence this consumer has not
been sent yet. ``subscribe`` places it (from a sequence, from now, or from the
oldest retained), answering an unservable request with an explicit ``Resync``
(never silence). ``next_batch`` then returns everything from ``next_seq`` to the
head, capped at ``max_batch`` bytes, as slices of shared buffers:

* from the ring when ``next_seq >= ring.oldest_seq`` (the cursor is *live*);
* else from the journal (the cursor is *catching up*);
* else the data is gone (retention deleted it while the consumer was reading):
  a ``Resync`` with reason TOO_OLD, and delivery continues at the oldest
  retained sequence;
* or the journal's copy is damaged (``Journal.hole_at``): a ``Resync`` with reason
  CORRUPT naming the lost range, and delivery continues after it.

A *live* cursor that the ring evicts past has fallen behind the live rate by
more than the ring holds; it is ``cut_off`` (policy in ``specs/relay.md``: the
relay says Goodbye and closes; the consumer reconnects and catches up from the
journal, on its own time, without costing the live path anything).

Filtered cursors (``types`` not None) pick frames whose first TLV's type is in
``types``; only they pay for looking at frames one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.framing import split_frames
from protocol.system import ResyncReason, SubscribeMode

from .journal import Journal
from .ring import Ring, first_tlv_type


@dataclass(frozen=True, slots=True)
class ResyncNeeded:
    requested_seq: int
    oldest_available: int
    reason: ResyncReason


@dataclass(slots=True)
class Batch:
    parts: list[memoryview] | list[bytes]
    next_seq: int
    from_journal: bool

    @property
    def nbytes(self) -> int:
        return sum(len(p) for p in self.parts)


def filter_frames(data: bytes | memoryview, types: frozenset[int]) -> list[memoryview]:
    """Runs of frames in ``data`` whose first TLV type is in ``types``."""
    mv = memoryview(data)
    parts: list[memoryview] = []
    run = -1
    offs = split_frames(data)[0].tolist()
    for pos, nxt in zip(offs, offs[1:]):
        if first_tlv_type(data, pos, nxt) in types:
            if run < 0:
                run = pos
        elif run >= 0:
            parts.append(mv[run:pos])
            run = -1
    if run >= 0:
        parts.append(mv[run : offs[-1]])
    return parts


class Cursor:
    __slots__ = ("next_seq", "types", "max_batch", "live", "sent_frames", "sent_bytes", "subscribed")

    def __init__(self, *, types: frozenset[int] | None = None, max_batch: int = 256 * 1024) -> None:
        self.next_seq = 0
        self.types = types or None
        self.max_batch = max_batch
        self.live = False
        self.subscribed = False
        self.sent_frames = 0
        self.sent_bytes = 0

    def subscribe(self, mode: int, from_seq: int, ring: Ring, journal: Journal) -> ResyncNeeded | None:
        head = ring.head_seq
        oldest = min(ring.oldest_seq, journal.oldest_seq)
        self.subscribed = True
        self.live = False
        if mode == SubscribeMode.FROM_NOW:
            self.next_seq = head + 1
            return None
        if mode == SubscribeMode.FROM_OLDEST:
            self.next_seq = oldest
            return None
        if mode != SubscribeMode.FROM_SEQ:
            raise ValueError(f"unknown subscribe mode {mode}")
        from_seq = max(from_seq, 1)
        if from_seq < oldest:
            self.next_seq = oldest
            return ResyncNeeded(from_seq, oldest, ResyncReason.TOO_OLD)
        if from_seq > head + 1:
            # the consumer has seen sequences this log does not have (a relay that lost
            # un-fsynced data): say so, and continue from what exists
            self.next_seq = head + 1
            return ResyncNeeded(from_seq, head + 1, ResyncReason.EPOCH_CHANGED)
        self.next_seq = from_seq
        return None

    def lag(self, head_seq: int) -> int:
        return max(0, head_seq - self.next_seq + 1) if self.subscribed else 0

    def fell_off(self, ring: Ring) -> bool:
        """True when a live cursor was evicted past: the consumer must be cut off."""
        return self.live and self.next_seq < ring.oldest_seq

    def next_batch(self, ring: Ring, journal: Journal) -> Batch | ResyncNeeded | None:
        """The next batch to send, a resync to announce, or None when caught up.

        Does not advance the cursor: call ``advance(batch)`` once it is sent, so a
        send that fails leaves the cursor where the consumer really is.
        """
        seq = self.next_seq
        if not self.subscribed or seq > ring.head_seq:
            return None
        if seq >= ring.oldest_seq:
            self.live = True
            if self.types is None:
                parts, nxt = ring.read(seq, self.max_batch)
            else:
                parts, nxt = ring.read_filtered(seq, self.max_batch, self.types)
            return Batch(parts, nxt, False)
        if self.live:
            raise RuntimeError("a live cursor fell off the ring; the caller must cut it off")
        data, nxt = journal.read(seq, self.max_batch)
        if not data:
            oldest = min(ring.oldest_seq, journal.oldest_seq)
            if seq < oldest:
                self.next_seq = oldest
                return ResyncNeeded(seq, oldest, ResyncReason.TOO_OLD)
            # damaged in the journal (found at start-up or on this read): say precisely which
            # range is lost and continue after it -- never a crash, never silence
            hole = journal.hole_at(seq)
            resume = min(hole.last_seq + 1 if hole is not None else seq + 1, ring.head_seq + 1)
            self.next_seq = resume
            return ResyncNeeded(seq, resume, ResyncReason.CORRUPT)
        if self.types is None:
            return Batch([data], nxt, True)
        return Batch(filter_frames(data, self.types), nxt, True)

    def advance(self, batch: Batch) -> None:
        self.sent_frames += batch.next_seq - self.next_seq  # sequences passed (a filtered cursor skips some)
        self.next_seq = batch.next_seq
        parts = batch.parts
        self.sent_bytes += len(parts[0]) if len(parts) == 1 else batch.nbytes
