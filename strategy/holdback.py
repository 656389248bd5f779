"""Holding back the pools of an unresolved signal (sans-IO): one signal in flight per opportunity.

Without it the strategy re-signalled a cross-chain pair on every new state of its two pools (the fast
chain moves every 0.25 s) while the executor was still running the previous signal's legs (seconds on a
2 s chain): the executor's queue filled with signals already stale when it re-priced them (a 60 s
``demo --chains 2`` run: 59 signals, 8 executed, 51 STALE). So once the engine publishes a signal, the
pools it trades are **held**: no signal through any of them (a cross-chain pair, or a cycle sharing a
pool) until the signal is resolved. A hold ends

* **resolved**: the signal's ``ExecutionResult`` (domain 3, its ``signal_id``) arrived, *and* the state
  the engine holds includes what it landed: for each landed transaction (a single-chain signal's
  EXECUTED transaction on every pool of its path; a cross-chain leg, and its unwind, reported EXECUTED by
  its ``ChainLegReport`` on that leg's pool) either the pool's last applied event is in that block or later,
  or that chain's newest ``BlockHeader`` is past it (a collector sends a block's logs before the next
  block's header). A result naming no landed transaction (STALE, UNPROFITABLE, ...) releases at once;
* **timed out**: at ``expires_ns`` -- the signal's timing budget (a cross-chain signal's time until both legs
  land, a single-chain signal's ``[hold_back] cycle_budget_ms``) plus ``[hold_back] margin_ms`` after it was
  published -- whether or not its result came, so a lost executor (or a lost result) never blocks trading.

Released pools are re-sized on the current state, which signals again only if still profitable: by the
result itself when the state already shows what it landed (``StrategyEngine.released_signals``, the process's
results task, once the market-data messages that have arrived are applied -- the rest of that block's
transactions: the usual case, the executor reporting after its receipt, the collector publishing the block's
logs as it is mined), else by the market-data message that shows it (or at the timeout). Waiting for the next
market-data message instead made most re-sizings on a 0.25 s chain STALE: that message is the next block's
header, with that block's logs right behind it, so the decision priced a state the executor no longer had. Results of signal ids not held here (another strategy's signals, the signals of a
previous run of this process, results repeated) change nothing: a restarted strategy knows none of its
predecessor's signals, so their holds are simply forgotten (the pools trade at once; at worst one
signal overlaps one still in flight, as before hold-back existed).

``poll(now_ns)`` applies both endings and returns the pools released; ``hold`` and ``held`` are what the
engine asks at each decision. Nothing here reads a clock: ``now_ns`` is passed in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from protocol.execution import ChainLegReport, DexLegResult, ExecutionResult, Outcome
from protocol.ids import PoolId


@dataclass(slots=True)
class Hold:
    """One unresolved signal: the pools it holds (a cross-chain signal's in hop order: leg 0's then leg 1's),
    when the hold times out, and -- once its result came -- the (pool, block) the state must reach."""

    signal_id: int
    pools: tuple[PoolId, ...]
    expires_ns: int
    awaiting: tuple[tuple[PoolId, int], ...] | None = None  # None: no result yet


class HoldBack:
    """The holds of one strategy engine. ``caught_up(pool, block)`` tells whether the engine's state of
    ``pool`` includes ``block`` (see the module docstring)."""

    def __init__(self, caught_up: Callable[[PoolId, int], bool], stats: Counter[str] | None = None) -> None:
        self.caught_up = caught_up
        self.stats: Counter[str] = stats if stats is not None else Counter()
        self.holds: dict[int, Hold] = {}  # signal id -> its hold
        self._held: dict[PoolId, int] = {}  # pool -> the signal id holding it

    def __len__(self) -> int:
        return len(self.holds)

    def held(self, pools: Iterable[PoolId]) -> bool:
        """Whether any of ``pools`` is held by an unresolved signal."""
        held = self._held
        return any(p in held for p in pools)

    def hold(self, signal_id: int, pools: Iterable[PoolId], expires_ns: int) -> None:
        """Signal ``signal_id`` was published on ``pools``; hold them until it resolves or ``expires_ns``."""
        hold = Hold(signal_id=signal_id, pools=tuple(pools), expires_ns=expires_ns)
        self.holds[signal_id] = hold
        for p in hold.pools:
            self._held[p] = signal_id
        self.stats["hold_placed"] += 1

    def on_records(self, records: Iterable[object]) -> None:
        """Apply an execution-relay message's records: the ``ExecutionResult`` of a held signal (with the
        ``ChainLegReport`` records of a cross-chain one, in the same message) starts its release."""
        records = tuple(records)
        for r in records:
            if type(r) is not ExecutionResult:
                continue
            hold = self.holds.get(r.signal_id)
            if hold is None:
                self.stats["hold_result_not_ours"] += 1  # another strategy's, a previous run's, or a repeat
                continue
            if hold.awaiting is not None:
                continue  # a second result for one signal: the first one counts
            legs = [x for x in records if type(x) is ChainLegReport and x.signal_id == r.signal_id]
            hold.awaiting = self._landed(hold, r, legs)
            self.stats["hold_result"] += 1

    @staticmethod
    def _landed(hold: Hold, result: ExecutionResult, legs: list[ChainLegReport]) -> tuple[tuple[PoolId, int], ...]:
        """The (pool, block) of every transaction the signal landed on a pool it holds."""
        if legs:  # cross-chain: leg i traded hop i's pool (and an unwind swapped back on the same pool)
            out = []
            for leg in legs:
                if leg.leg >= len(hold.pools):
                    continue
                pool = hold.pools[leg.leg]
                if leg.result == DexLegResult.EXECUTED and leg.block_number:
                    out.append((pool, leg.block_number))
                if leg.unwind_result == DexLegResult.EXECUTED and leg.unwind_block_number:
                    out.append((pool, leg.unwind_block_number))
            return tuple(out)
        if result.outcome == Outcome.EXECUTED and result.block_number:
            return tuple((p, result.block_number) for p in hold.pools if p.chain_id == result.chain_id)
        return ()

    def poll(self, now_ns: int) -> list[PoolId]:
        """End every hold that is resolved (its result came and the state caught up with it) or timed out
        at ``now_ns``; return the pools released."""
        released: list[PoolId] = []
        for signal_id, hold in list(self.holds.items()):
            if hold.awaiting is not None and all(self.caught_up(p, b) for p, b in hold.awaiting):
                self.stats["hold_resolved"] += 1
            elif now_ns >= hold.expires_ns:
                # no result (executor lost, result lost) or a state that never caught up: trade again anyway
                self.stats["hold_timeout" if hold.awaiting is None else "hold_timeout_state"] += 1
            else:
                continue
            del self.holds[signal_id]
            for p in hold.pools:
                if self._held.get(p) == signal_id:
                    del self._held[p]
                    released.append(p)
        return released
