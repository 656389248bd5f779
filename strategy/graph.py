"""The token graph and the set of arbitrage cycles, indexed by pool.

Tokens are nodes, pools are edges (several pools may join the same two tokens: that is what makes
a two-pool, cross-venue arbitrage). A *cycle* is a closed path of 2 to ``max_hops`` pools that
visits no token twice, starts and ends in a *base token* (WETH, a stablecoin: something a profit
can be counted in) and is directed: the same pools traversed the other way is a second cycle.

Theory of operation
-------------------
Cycles are enumerated **incrementally**: when a pool ``P = (u, v)`` first becomes tradable, only
the cycles through ``P`` are new, and each of them is ``u -P-> v`` followed by a simple path of
``1 .. max_hops - 1`` other pools from ``v`` back to ``u``. Every undirected cycle through ``P``
is found exactly once that way (``P`` appears once in a simple cycle), then stored in both
directions, each rotated to start at its anchor: the first base token (in configuration order)
on the cycle. Cycles with no base token are not stored -- nothing to count a profit in.

**Filtering without looking.** An update to a hub pair may touch thousands of cycles, and
even a few integer multiplications per cycle in Python would blow a millisecond budget. Each pool
has two *slots* in one numpy ``int64`` array holding an upper bound of ``2**24·log2`` of its
marginal rate per direction (:func:`market.pools.log_rate_bounds`, integer arithmetic); each
pool keeps a matrix of its cycles' slot indices. :meth:`CycleIndex.candidates` sums the bounds of
all its cycles in one vectorised gather and returns only those whose sum is > 0. Because the
entries are upper bounds, a cycle dropped there has a rate product <= 1 and cannot be profitable:
the filter never loses an opportunity; the survivors are re-checked exactly (integers) by the
search. Small lists skip numpy (its fixed cost is larger than the exact check).

The paths are found by iterative deepening (all 2-pool cycles, then 3, then 4), so when a pool
takes part in more cycles than ``max_cycles_per_pool`` (a hub pair such as WETH/USDC in a large
graph), it keeps the *shortest* ones and counts the rest in ``truncated`` rather than letting one
update's work grow without bound. Each stored cycle is appended to the list of every pool on it:
an update to a pool re-evaluates exactly ``cycles_through(pool)``, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from market.path import Hop
from protocol.ids import PoolId, TokenId

_EMPTY: tuple[Cycle, ...] = ()
_UNRATED = 1 << 40  # a slot whose rate is not known yet never filters anything out
VECTOR_MIN = 24  # below this many cycles, hand them all to the exact check


@dataclass(frozen=True, slots=True, eq=False)
class Cycle:
    """A directed cycle: ``hops[i]`` (a :class:`market.path.Hop`) takes ``tokens[i]`` to ``tokens[i+1]``;
    ``tokens[0] == tokens[-1]`` is the profit token. Compared by identity: the index stores each
    cycle object once and a search de-duplicates by ``id``."""

    hops: tuple[Hop, ...]
    tokens: tuple[TokenId, ...]
    pools: tuple[PoolId, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pools", tuple(p for p, _ in self.hops))

    @property
    def profit_token(self) -> TokenId:
        return self.tokens[0]

    @property
    def chain_id(self) -> int:
        return self.tokens[0].chain_id

    def __len__(self) -> int:
        return len(self.hops)

    def key(self) -> tuple[tuple[int, bool], ...]:
        return tuple((int(p), z) for p, z in self.hops)


def _build(pools: Sequence[PoolId], tokens: Sequence[TokenId], anchors: Sequence[TokenId]) -> Cycle | None:
    """The cycle ``tokens[0] -pools[0]-> tokens[1] ... -> tokens[0]`` rotated to its anchor."""
    n = len(pools)
    start = -1
    for base in anchors:
        for i in range(n):
            if tokens[i] == base:
                start = i
                break
        if start >= 0:
            break
    if start < 0:
        return None
    hops = []
    toks = []
    for k in range(n):
        i = (start + k) % n
        hops.append(Hop(pools[i], tokens[i] == pools[i].token0))
        toks.append(tokens[i])
    toks.append(tokens[start])
    return Cycle(hops=tuple(hops), tokens=tuple(toks))


class CycleIndex:
    """Cycles of up to ``max_hops`` pools, found incrementally and indexed by pool."""

    def __init__(
        self,
        *,
        base_tokens: Mapping[int, Sequence[TokenId]],
        max_hops: int = 4,
        max_cycles_per_pool: int = 4096,
    ) -> None:
        self.base_tokens = {chain: tuple(tokens) for chain, tokens in base_tokens.items()}
        self.max_hops = max_hops
        self.max_cycles_per_pool = max_cycles_per_pool
        # token -> neighbour token -> pools joining them
        self._adj: dict[TokenId, dict[TokenId, list[PoolId]]] = {}
        self._by_pool: dict[PoolId, list[Cycle]] = {}
        # slot s of a pool: entry s is its zero_for_one rate bound, s + 1 the other way; entry 0
        # is the zero padding of cycles shorter than max_hops.
        self._slot: dict[PoolId, int] = {}
        self._lr = np.zeros(1 << 12, dtype=np.int64)
        self._next_slot = 1
        # pool -> slot-index rows of its cycles (row i is cycle i of _by_pool[pool]), grown by
        # doubling so that adding a cycle costs one row write, not a rebuild
        self._mat: dict[PoolId, np.ndarray] = {}
        self.cycle_count = 0
        self.deferred = 0
        self.truncated = 0
        self.unanchored = 0

    def __contains__(self, pool: object) -> bool:
        return pool in self._by_pool

    def __len__(self) -> int:
        return len(self._by_pool)

    def cycles_through(self, pool: int) -> Sequence[Cycle]:
        return self._by_pool.get(pool, _EMPTY)  # type: ignore[call-overload]

    def neighbours(self, token: TokenId) -> Mapping[TokenId, list[PoolId]]:
        return self._adj.get(token, {})

    def set_log_rates(self, pool: PoolId, log_rates: tuple[int, int]) -> None:
        """Record ``pool``'s rate bounds (``PoolState.log_rates``) after each change of its state."""
        s = self._slot.get(pool)
        if s is not None:
            self._lr[s] = log_rates[0]
            self._lr[s + 1] = log_rates[1]

    def candidates(self, pool: int, limit: int | None = None) -> Sequence[Cycle]:
        """The cycles through ``pool`` whose rate bound exceeds 1 (all of them if there are few).

        With ``limit``, at most that many: those with the largest bounds; ``self.deferred`` counts
        the others (their rate bound says they may pay, but not that they pay most)."""
        cycles = self._by_pool.get(pool)  # type: ignore[call-overload]
        if not cycles:
            return _EMPTY
        if len(cycles) < VECTOR_MIN:
            return cycles
        mat = self._mat[pool][: len(cycles)]  # type: ignore[index]
        sums = self._lr[mat].sum(axis=1)
        hits = np.flatnonzero(sums > 0)
        if limit is not None and len(hits) > limit:
            self.deferred += len(hits) - limit
            hits = hits[np.argpartition(sums[hits], -limit)[-limit:]]
        return [cycles[i] for i in hits.tolist()]

    def _slot_of(self, pool: PoolId) -> int:
        s = self._slot.get(pool)
        if s is None:
            s = self._slot[pool] = self._next_slot
            self._next_slot += 2
            if self._next_slot >= len(self._lr):
                grown = np.zeros(2 * len(self._lr), dtype=np.int64)
                grown[: len(self._lr)] = self._lr
                self._lr = grown
            self._lr[s] = self._lr[s + 1] = _UNRATED
        return s

    def add_pool(self, pool: PoolId) -> int:
        """Add ``pool`` to the graph and index every new cycle through it; returns how many."""
        if pool in self._by_pool:
            return 0
        u, v = pool.token0, pool.token1
        anchors = self.base_tokens.get(pool.chain_id, ())
        self._by_pool[pool] = []
        self._mat[pool] = np.zeros((4, self.max_hops), dtype=np.intp)
        self._slot_of(pool)
        added = 0
        if anchors:
            for depth in range(1, self.max_hops):
                for path in self._paths(v, u, depth, pool, {u, v}):
                    pools = [pool] + [q for q, _ in path]
                    tokens = [u, v] + [t for _, t in path[:-1]]
                    added += self._store(pools, tokens, anchors)
        # Only now join the graph, so that the search above never walks the new pool twice.
        self._adj.setdefault(u, {}).setdefault(v, []).append(pool)
        self._adj.setdefault(v, {}).setdefault(u, []).append(pool)
        return added

    def _paths(
        self, start: TokenId, target: TokenId, depth: int, exclude: PoolId, visited: set[TokenId]
    ) -> Iterator[list[tuple[PoolId, TokenId]]]:
        """Simple paths of exactly ``depth`` pools from ``start`` to ``target``, as
        ``[(pool, token reached), ...]``, avoiding ``visited`` tokens and the pool ``exclude``."""
        nbrs = self._adj.get(start)
        if not nbrs:
            return
        if depth == 1:
            for q in nbrs.get(target, ()):
                if q != exclude:
                    yield [(q, target)]
            return
        for nxt, qs in nbrs.items():
            if nxt in visited:
                continue
            visited.add(nxt)
            for rest in self._paths(nxt, target, depth - 1, exclude, visited):
                for q in qs:
                    yield [(q, nxt), *rest]
            visited.discard(nxt)

    def _store(self, pools: list[PoolId], tokens: list[TokenId], anchors: Sequence[TokenId]) -> int:
        cap = self.max_cycles_per_pool
        by_pool = self._by_pool
        if any(len(by_pool.get(p, ())) + 2 > cap for p in pools):
            self.truncated += 2
            return 0
        forward = _build(pools, tokens, anchors)
        if forward is None:
            self.unanchored += 2
            return 0
        # The reverse direction: same pools backwards; token i+1 enters pool i.
        rev_pools = pools[::-1]
        rev_tokens = [tokens[0]] + tokens[:0:-1]
        backward = _build(rev_pools, rev_tokens, anchors)
        assert backward is not None  # same token set, same anchor
        pad = (0,) * (self.max_hops - len(pools))
        for cyc in (forward, backward):
            row = tuple(self._slot_of(p) + (0 if zfo else 1) for p, zfo in cyc.hops) + pad
            for p in cyc.pools:
                lst = by_pool.setdefault(p, [])
                mat = self._mat[p]
                if len(lst) == len(mat):
                    mat = self._mat[p] = np.concatenate((mat, np.zeros_like(mat)))
                mat[len(lst)] = row
                lst.append(cyc)
        self.cycle_count += 2
        return 2

    def all_cycles(self) -> Iterator[Cycle]:
        seen: set[int] = set()
        for cycles in self._by_pool.values():
            for c in cycles:
                if id(c) not in seen:
                    seen.add(id(c))
                    yield c
