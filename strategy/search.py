"""Opportunity search: re-evaluate the cycles an update touches, size each one optimally.

For each cycle through an updated pool (see :class:`strategy.graph.CycleIndex`):

1. **Fetch** every pool's current snapshot; a pool that is unknown, stale or empty ends the
   evaluation -- a cycle is never priced on state we do not trust.
2. **Pre-screen**: the index's vectorised bound filter drops every cycle whose rate product is
   provably <= 1 (:meth:`strategy.graph.CycleIndex.candidates`); the rest are checked in exact integers: the product of the hops' marginal rates at zero size (fees
   included) must exceed 1, i.e. ``Π num > Π den``. Concavity makes this necessary and sufficient
   for *some* input to be profitable before gas, and it costs a few multiplications per hop with
   the rates each snapshot precomputed; almost every cycle stops here.
3. **Size** the survivors with :func:`strategy.optimize.optimize`, bounded by the flash liquidity:
   the first hop's pool balance of the input token.

Two-pool, same-pair arbitrage is the 2-hop case of the same code: the graph stores every pair of
pools joining the same two tokens as two directed 2-cycles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from protocol.ids import PoolId
from strategy.graph import Cycle, CycleIndex
from strategy.optimize import PathQuote, optimize
from strategy.pools import PoolState
from strategy.state import PoolStateManager


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


class OpportunitySearch:
    """Finds sized opportunities among the cycles through updated pools."""

    def __init__(self, state: PoolStateManager, index: CycleIndex) -> None:
        self.state = state
        self.index = index
        self.stats: Counter[str] = Counter()

    def on_update(self, pools: Iterable[PoolId]) -> list[Opportunity]:
        """Every profitable (before gas) opportunity among the cycles through ``pools``."""
        out: list[Opportunity] = []
        seen: set[int] = set()
        index = self.index
        evaluate = self.evaluate
        for pool in pools:
            self.stats["cycles_considered"] += len(index.cycles_through(pool))
            for cycle in index.candidates(pool):
                key = id(cycle)
                if key in seen:
                    continue
                seen.add(key)
                opp = evaluate(cycle)
                if opp is not None:
                    out.append(opp)
        self.stats["cycles_evaluated"] += len(seen)
        return out

    def evaluate(self, cycle: Cycle) -> Opportunity | None:
        """Size ``cycle`` on the current state; None if it is not tradable or not profitable."""
        tradable = self.state.tradable
        num = den = 1
        states = []
        for pool, zfo in cycle.hops:
            s = tradable(pool)
            if s is None:
                self.stats["skipped_untradable"] += 1
                return None
            n, d = s.marginals[0:2] if zfo else s.marginals[2:4]
            num *= n
            den *= d
            states.append(s)
        if num <= den:
            return None
        self.stats["prescreen_passed"] += 1
        hops = list(zip(states, (z for _, z in cycle.hops)))
        cap = states[0].balance_in(cycle.hops[0][1])
        quote = optimize(hops, cap)
        self.stats["optimised"] += 1
        self.stats["path_evaluations"] += quote.evaluations if quote is not None else 0
        if quote is None or quote.profit <= 0:
            return None
        self.stats["profitable"] += 1
        return Opportunity(cycle, tuple(states), quote)
