"""Which signals run at once, sans-IO: the pool-exclusion rule and the durable signal cursor.

Theory of operation
-------------------
The executor handles independent signals concurrently (their nonces pipelined: each run takes the
next one from the one :class:`~execution.store.NonceTracker`), but never lets two of its transactions
touch the same pool in one block: the second would trade on the state the first leaves, which its
re-validation never saw. :class:`PoolScheduler` is that rule; the trio shell
(:func:`execution.process._serve`) offers it each signal as it arrives and starts what it returns.

A signal *starts* when, all three:

* fewer than ``limit`` signals are in flight (``[submission] max_in_flight``; 1 in the private and
  hybrid modes, see :func:`in_flight_limit`);
* its pools are disjoint from the pools of every signal in flight (a signal is in flight from its
  start until its run has published its ``ExecutionResult``: its transaction mined, replaced by a
  cancel, given up, or never sent);
* its pools are disjoint from those of every signal that arrived before it and still waits: signals
  through one pool run in arrival order, while a signal sharing nothing with anything waiting or in
  flight may pass them.

A signal that had to wait for a pool starts with ``after_block``: the highest block in which a
transaction of the signals it waited for landed. Its run re-validates only on market data that has
reached that block (or the validation wait ran out), so it is priced on the state our own transaction
left and ends STALE when the opportunity moved. The rule covers every kind of signal (single-chain,
CEX-DEX, cross-chain: their pools are the pools of all their hops, on every chain).

:class:`SignalCursor` keeps the durable position on the signal relay correct when signals end out of
order: the cursor is the highest sequence with every signal at or below it ended, so a restart
redelivers every signal that had not ended (those already ended are skipped by the store's
``signals`` table, those with a transaction out are settled by recovery first).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from protocol.execution import SubmissionMode

T = TypeVar("T")


def in_flight_limit(configured: int, mode: SubmissionMode) -> int:
    """How many signals may be in flight at once. A bundle aims its nonce at named blocks: a later
    nonce of ours cannot be included before it, and a bundle not included gives its nonce back, so in
    the private and hybrid modes signals run one at a time; public and shadow runs pipeline."""
    if mode in (SubmissionMode.PRIVATE, SubmissionMode.HYBRID):
        return 1
    return max(1, configured)


@dataclass(frozen=True, slots=True)
class Ready(Generic[T]):
    """A signal to start now; ``after_block``: re-validate on market data at or past it (0: no wait)."""

    item: T
    after_block: int = 0


@dataclass(slots=True)
class _Waiting(Generic[T]):
    key: int
    pools: frozenset[int]
    item: T
    after_block: int = 0


@dataclass(slots=True)
class PoolScheduler(Generic[T]):
    """Signals in flight and waiting; see the module docstring for the rule."""

    limit: int = 4
    in_flight: dict[int, frozenset[int]] = field(default_factory=dict)  # key -> its pools
    waiting: deque[_Waiting[T]] = field(default_factory=deque)

    def offer(self, key: int, pools: Iterable[int], item: T) -> list[Ready[T]]:
        """A signal arrived (``key`` unique among signals not yet done): what starts now (it, or nothing)."""
        if key in self.in_flight or any(w.key == key for w in self.waiting):
            raise ValueError(f"signal key {key} offered twice")
        self.waiting.append(_Waiting(key, frozenset(pools), item))
        return self._admit()

    def done(self, key: int, block: int = 0) -> list[Ready[T]]:
        """The signal ``key`` ended (its transaction, if any, landed in ``block``; 0: none landed):
        what starts now. Waiting signals that share a pool with it re-validate at or past ``block``."""
        pools = self.in_flight.pop(key)
        if block:
            for w in self.waiting:
                if not w.pools.isdisjoint(pools):
                    w.after_block = max(w.after_block, block)
        return self._admit()

    def _admit(self) -> list[Ready[T]]:
        out: list[Ready[T]] = []
        busy: set[int] = set()
        for pools in self.in_flight.values():
            busy |= pools
        kept: deque[_Waiting[T]] = deque()
        for w in self.waiting:
            if len(self.in_flight) < self.limit and busy.isdisjoint(w.pools):
                self.in_flight[w.key] = w.pools
                out.append(Ready(w.item, w.after_block))
            else:
                kept.append(w)
            busy |= w.pools  # in flight now, or waiting ahead of the rest: either way taken
        self.waiting = kept
        return out

    def contended(self, key: int) -> bool:
        """Does the waiting signal ``key`` wait for a pool (of a signal in flight, or of one ahead of it)
        rather than for the limit? False when it is not waiting."""
        ahead: set[int] = set()
        for pools in self.in_flight.values():
            ahead |= pools
        for w in self.waiting:
            if w.key == key:
                return not ahead.isdisjoint(w.pools)
            ahead |= w.pools
        return False

    @property
    def idle(self) -> bool:
        return not self.in_flight and not self.waiting


@dataclass(slots=True)
class SignalCursor:
    """The durable signal-relay position when signals end out of order: :meth:`ended` returns the new
    cursor (every signal at or below it has ended) when it moved, else None."""

    position: int | None = None
    _open: deque[int] = field(default_factory=deque)  # delivered, in order
    _ended: set[int] = field(default_factory=set)
    _last: int = -1  # the last sequence delivered

    def delivered(self, seq: int) -> None:
        if seq <= self._last:
            raise ValueError(f"signal sequence {seq} delivered after {self._last}")
        self._last = seq
        self._open.append(seq)

    def ended(self, seq: int) -> int | None:
        self._ended.add(seq)
        moved = None
        while self._open and self._open[0] in self._ended:
            moved = self._open.popleft()
            self._ended.discard(moved)
        if moved is not None:
            self.position = moved
        return moved
