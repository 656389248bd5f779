"""Opportunity search: re-evaluate the cycles an update touches, size each one optimally.

For each cycle through an updated pool (see :class:`strategy.graph.CycleIndex`):

1. **Fetch** every pool's current snapshot; a pool that is unknown, stale or empty ends the
   evaluation -- a cycle is never priced on state we do not trust.
2. **Pre-screen**: the index's vectorised bound filter drops every cycle whose rate product is
   provably <= 1 (:meth:`strategy.graph.CycleIndex.candidates`); the rest are checked in exact integers: the product of the hops' marginal rates at zero size (fees
   included) must exceed 1, i.e. ``Π num > Π den``. Concavity makes this necessary and sufficient
   for *some* input to be profitable before gas, and it costs a few multiplications per hop with
   the rates each snapshot precomputed; almost every cycle stops here.
3. **Rank** the survivors by a continuum estimate of their profit, valued in the chain's gas token
   (keeping the ``max_sized`` best when there are more: only a hub pool's move makes that many), and
4. **size** them, best estimate first and only when asked for (:class:`Opportunities`), with
   :func:`strategy.optimize.optimize`, bounded by the flash liquidity: the first hop's pool balance
   of the input token. The engine takes them one at a time and publishes a signal as soon as one is
   sized and worth it, so the first signal never waits for the other candidates' sizing.

Two-pool, same-pair arbitrage is the 2-hop case of the same code: the graph stores every pair of
pools joining the same two tokens as two directed 2-cycles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from math import isqrt
from typing import overload

from market.pools import PoolState
from market.state import PoolStateManager
from protocol.ids import PoolId, TokenId
from strategy.graph import Cycle, CycleIndex
from strategy.optimize import PathQuote, optimize

_UNSEEN = object()  # OpportunitySearch.screen: a pool not looked up yet


@dataclass(frozen=True, slots=True)
class Opportunity:
    """A sized arbitrage: ``quote`` was evaluated exactly on ``states``."""

    cycle: Cycle
    states: tuple[PoolState, ...]
    quote: PathQuote

    @property
    def gross_profit(self) -> int:
        return self.quote.profit

    @property
    def amount_in(self) -> int:
        return self.quote.amount_in

    @property
    def block_number(self) -> int:
        """The newest block among the path's pool states: the state the signal was computed at."""
        return max(s.block_number for s in self.states)

    def hop_amounts(self) -> list[tuple[int, int]]:
        """``(amount_in, amount_out)`` of each hop."""
        ins = (self.quote.amount_in, *self.quote.amounts[:-1])
        return list(zip(ins, self.quote.amounts))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A cycle that passed the exact pre-screen, with the snapshots it was screened on and its
    composed zero-size model ``A·x / (B + C·x)`` (see :mod:`strategy.optimize`)."""

    cycle: Cycle
    states: tuple[PoolState, ...]
    a: int
    b: int
    c: int

    def estimate(self) -> int:
        """The continuum estimate of the gross profit, ``(√A - √B)² / C`` (exact for V2 chains up
        to flooring, for V3 while the optimum crosses no tick): only used to decide what to size
        first when there is too much to size."""
        return (isqrt(self.a) - isqrt(self.b)) ** 2 // self.c if self.c > 0 else 0


class OpportunitySearch:
    """Finds sized opportunities among the cycles through updated pools.

    ``max_sized`` bounds the exact sizing work of one update: when more cycles pass the pre-screen
    (a hub pool moved), the ones with the largest estimated profit, valued in the chain's gas token,
    are sized and the rest are counted in ``stats["deferred"]`` (they are re-examined on the next
    update of any of their pools). Sizing them all would be wasted anyway: every one of them runs
    through the pool that moved and competes for the same price gap, so once one is executed the
    others' sizes are stale.
    """

    def __init__(self, state: PoolStateManager, index: CycleIndex, *, max_sized: int = 16,
                 gas_tokens: dict[int, TokenId] | None = None,
                 sizable: Callable[[Candidate], bool] | None = None) -> None:
        self.state = state
        # what the caller could never signal whatever its size (the engine: no gas price yet, or no flash
        # source can lend to the path) is dropped before sizing, and takes no place among max_sized
        self.sizable = sizable
        self.index = index
        self.max_sized = max_sized
        # A hub pool's move can open hundreds of cycles at once; the exact screen of each costs
        # ~10 us, so only the ones with the largest rate bound (the index's integer log sums) are
        # screened, then ranked by estimated profit. The rest wait for their pools' next update.
        self.max_screened = 4 * max_sized
        self.gas_tokens = gas_tokens or {}
        self.stats: Counter[str] = Counter()

    def on_update(self, pools: Iterable[PoolId]) -> Opportunities:
        """The profitable (before gas) opportunities among the cycles through ``pools``, best
        estimate first, each sized when the caller reaches it (see :class:`Opportunities`)."""
        return Opportunities(self, self.ranked(pools))

    def ranked(self, pools: Iterable[PoolId]) -> list[Candidate]:
        """The candidates through ``pools`` that pass the exact pre-screen, largest estimated profit (in
        gas-token units) first, at most ``max_sized`` of them."""
        found: list[Candidate] = []
        seen: set[int] = set()
        index = self.index
        screen = self.screen
        hops: dict[PoolId, tuple[PoolState, tuple[int, int, int], tuple[int, int, int]] | None] = {}
        for pool in pools:
            self.stats["cycles_considered"] += len(index.cycles_through(pool))
            for cycle in index.candidates(pool, limit=self.max_screened):
                key = id(cycle)
                if key in seen:
                    continue
                seen.add(key)
                cand = screen(cycle, hops)
                if cand is not None:
                    found.append(cand)
        self.stats["cycles_evaluated"] += len(seen)
        if self.sizable is not None:
            found = [c for c in found if self.sizable(c)]
        if len(found) > 1:
            found.sort(key=self._value, reverse=True)  # stable: equal values keep the index's order
        if len(found) > self.max_sized:
            self.stats["deferred"] += len(found) - self.max_sized
            del found[self.max_sized :]
        return found

    def evaluate(self, cycle: Cycle) -> Opportunity | None:
        """Screen and size one cycle on the current state (None: not tradable or not profitable)."""
        cand = self.screen(cycle)
        return self.size(cand) if cand is not None else None

    def screen(
        self, cycle: Cycle,
        hops: dict[PoolId, tuple[PoolState, tuple[int, int, int], tuple[int, int, int]] | None] | None = None,
    ) -> Candidate | None:
        """The exact integer pre-screen: every pool tradable, product of marginal rates > 1.

        ``hops`` memoizes each pool's snapshot and both directions' ``(n_out, d_in, model n)`` across the
        cycles of one update (the state does not change in between: :meth:`ranked` screens hundreds of
        cycles through a few pools)."""
        if hops is None:
            hops = {}
        a, b, c = 1, 1, 0  # composed as in optimize.compose_at_zero, from the cached marginals
        states = []
        for pool, zfo in cycle.hops:
            h = hops.get(pool, _UNSEEN)
            if h is _UNSEEN:
                s = self.state.tradable(pool)
                if s is None:
                    h = None
                else:
                    m = s.marginals
                    h = (s, (m[0], m[1], s.model_n_of(True)), (m[2], m[3], s.model_n_of(False)))
                hops[pool] = h
            if h is None:
                self.stats["skipped_untradable"] += 1
                return None
            n_out, d_in, n = h[1] if zfo else h[2]
            c = d_in * c + n * a
            a *= n_out
            b *= d_in
            states.append(h[0])
        if a <= b:
            return None
        self.stats["prescreen_passed"] += 1
        return Candidate(cycle, tuple(states), a, b, c)

    def size(self, cand: Candidate) -> Opportunity | None:
        """The optimal input of a screened cycle (exact), if it makes a gross profit."""
        states, cycle = cand.states, cand.cycle
        hops = [(s, h.zero_for_one) for s, h in zip(states, cycle.hops)]
        cap = states[0].balance_in(cycle.hops[0].zero_for_one)
        quote = optimize(hops, cap)
        self.stats["optimised"] += 1
        self.stats["path_evaluations"] += quote.evaluations if quote is not None else 0
        if quote is None or quote.profit <= 0:
            return None
        self.stats["profitable"] += 1
        return Opportunity(cycle, states, quote)

    def _value(self, cand: Candidate) -> int:
        """The estimate in gas-token units (floor), for ranking; 0 if it cannot be valued."""
        gas = self.gas_tokens.get(cand.cycle.chain_id)
        estimate = cand.estimate()
        if gas is None:
            return estimate
        v = self.state.convert(estimate, cand.cycle.profit_token, gas, round_up=False)
        return v if v is not None else 0


class Opportunities(Sequence[Opportunity]):
    """The sized opportunities of one update, in the candidates' rank order, sized lazily.

    Iterating sizes one candidate at a time (each exactly, :meth:`OpportunitySearch.size`) and
    yields those that make a gross profit, so a caller can act on the first one while the rest are
    still unsized, and stop early without sizing them at all. ``len()`` and indexing size them all.
    Every candidate is sized at most once, however the sequence is read.
    """

    def __init__(self, search: OpportunitySearch, candidates: list[Candidate]) -> None:
        self._search = search
        self._pending = candidates
        self._next = 0  # candidates[:_next] are sized
        self._sized: list[Opportunity] = []

    def _size_next(self) -> bool:
        """Size the next candidate; False once none is left."""
        if self._next >= len(self._pending):
            return False
        cand = self._pending[self._next]
        self._next += 1
        opp = self._search.size(cand)
        if opp is not None:
            self._sized.append(opp)
        return True

    def __iter__(self) -> Iterator[Opportunity]:
        i = 0
        while True:
            while i >= len(self._sized):
                if not self._size_next():
                    return
            yield self._sized[i]
            i += 1

    def _all(self) -> list[Opportunity]:
        while self._size_next():
            pass
        return self._sized

    def __len__(self) -> int:
        return len(self._all())

    @overload
    def __getitem__(self, i: int) -> Opportunity: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Opportunity]: ...

    def __getitem__(self, i: int | slice) -> Opportunity | Sequence[Opportunity]:
        return self._all()[i]

    @property
    def unsized(self) -> int:
        """Candidates not sized (yet)."""
        return len(self._pending) - self._next
