"""[hold_back] (strategy/holdback.py), sans-IO: the pools of a published signal are not signalled again until
its ExecutionResult came back and the state shows what landed, or until its timing budget plus the margin;
results for signal ids not held (another strategy's, a previous run's, a repeat) change nothing. Every
branch on the HoldBack alone, then through the engine for a cross-chain pair and a single-chain cycle."""

from __future__ import annotations

from typing import Any

from market_builders import GWEI, config, header, md, sync, v2_snapshot
from test_strategy_cross_chain_engine import POOL_A, POOL_B, S, doc, msg, start
from test_strategy_engine import SNAP1, SNAP2, WD1, WD2

import protocol as P
from protocol.execution import ChainLegReport, DexLegResult, ExecutionResult, Outcome
from strategy.config import HoldBackConfig, config_from_dict
from strategy.engine import StrategyEngine
from strategy.holdback import HoldBack

MS = 1_000_000
ZERO32 = b"\0" * 32


def result(signal_id: int, outcome: Outcome, *, chain: int = 1, block: int = 0) -> ExecutionResult:
    return ExecutionResult(signal_id=signal_id, chain_id=chain, outcome=int(outcome), block_number=block,
                           tx_hash=ZERO32, gas_used=0, effective_gas_price=0, expected_profit=0, realized_profit=0,
                           profit_token=P.TokenId(0), reason="")


def leg(signal_id: int, i: int, chain: int, res: DexLegResult, block: int = 0, *,
        unwind: DexLegResult = DexLegResult.NOT_SENT, unwind_block: int = 0) -> ChainLegReport:
    return ChainLegReport(signal_id=signal_id, chain_id=chain, leg=i, outcome=0, result=int(res),
                          unwind_result=int(unwind), unwind_attempts=0, block_number=block, tx_hash=ZERO32,
                          gas_used=0, effective_gas_price=0, token_in=P.TokenId(0), token_out=P.TokenId(0),
                          amount_in=0, min_out=0, amount_out=0, unwind_block_number=unwind_block,
                          unwind_tx_hash=ZERO32, unwind_amount_in=0, unwind_amount_out=0, unwind_gas_cost=0,
                          left_open=0, reason="")


def ex(*tlvs: P.TLV) -> P.Message:
    return P.Message(domain=P.Domain.EXECUTION, tlvs=tlvs, source_id=31, source_seq=1, event_time_ns=1,
                     receive_time_ns=1)


# --- the bookkeeping alone -----------------------------------------------------------------------


class Chain:
    """caught_up(pool, block) over a dict the test moves: the newest block the state includes per pool."""

    def __init__(self) -> None:
        self.at: dict[P.PoolId, int] = {}

    def __call__(self, pool: P.PoolId, block: int) -> bool:
        return self.at.get(pool, 0) >= block


def test_a_result_that_landed_nothing_releases_at_the_next_poll() -> None:
    hb = HoldBack(Chain())
    hb.hold(5, (WD1, WD2), expires_ns=100)
    assert hb.held([WD2]) and not hb.held([POOL_A])
    assert hb.poll(10) == [] and hb.held([WD1])  # no result, not expired
    hb.on_records([result(5, Outcome.STALE)])
    assert hb.poll(11) == [WD1, WD2] and not hb.held([WD1, WD2]) and len(hb) == 0
    assert (hb.stats["hold_placed"], hb.stats["hold_result"], hb.stats["hold_resolved"]) == (1, 1, 1)


def test_an_executed_single_chain_signal_waits_for_its_block_in_the_state() -> None:
    chain = Chain()
    hb = HoldBack(chain)
    hb.hold(5, (WD1, WD2), expires_ns=100)
    hb.on_records([result(5, Outcome.EXECUTED, chain=WD1.chain_id, block=120)])
    chain.at[WD1] = 120
    assert hb.poll(10) == [] and hb.held([WD1])  # WD2's state has not reached block 120 yet
    chain.at[WD2] = 121
    assert hb.poll(11) == [WD1, WD2] and hb.stats["hold_resolved"] == 1


def test_cross_chain_legs_wait_for_each_landed_transaction_on_its_own_pool() -> None:
    chain = Chain()
    hb = HoldBack(chain)
    hb.hold(9, (POOL_A, POOL_B), expires_ns=100)
    # leg 0 landed in A's block 50 and was unwound in A's block 52; leg 1 reverted (its pool untouched)
    hb.on_records([result(9, Outcome.UNWOUND, chain=POOL_A.chain_id, block=50),
                   leg(9, 0, POOL_A.chain_id, DexLegResult.EXECUTED, 50, unwind=DexLegResult.EXECUTED, unwind_block=52),
                   leg(9, 1, POOL_B.chain_id, DexLegResult.REVERTED, 700)])
    assert hb.holds[9].awaiting == ((POOL_A, 50), (POOL_A, 52))
    chain.at[POOL_A] = 51
    assert hb.poll(10) == []  # the unwind is not in the state yet
    chain.at[POOL_A] = 52
    assert hb.poll(11) == [POOL_A, POOL_B]


def test_a_hold_without_a_result_times_out() -> None:
    hb = HoldBack(Chain())
    hb.hold(5, (WD1,), expires_ns=100)
    assert hb.poll(99) == []
    assert hb.poll(100) == [WD1] and hb.stats["hold_timeout"] == 1 and len(hb) == 0


def test_a_result_whose_landing_never_shows_times_out_too() -> None:
    hb = HoldBack(Chain())
    hb.hold(5, (WD1,), expires_ns=100)
    hb.on_records([result(5, Outcome.EXECUTED, chain=WD1.chain_id, block=120)])
    assert hb.poll(50) == []
    assert hb.poll(100) == [WD1] and hb.stats["hold_timeout_state"] == 1


def test_results_of_signals_not_held_change_nothing() -> None:
    """Another strategy's signal, a previous run's (a restarted process holds nothing), a result repeated."""
    hb = HoldBack(Chain())
    hb.hold(5, (WD1,), expires_ns=100)
    hb.on_records([result(6, Outcome.STALE), leg(6, 0, 1, DexLegResult.EXECUTED, 3)])
    assert hb.poll(10) == [] and hb.held([WD1]) and hb.stats["hold_result_not_ours"] == 1
    hb.on_records([result(5, Outcome.EXECUTED, chain=WD1.chain_id, block=120)])
    hb.on_records([result(5, Outcome.STALE)])  # a repeat does not replace the first answer
    assert hb.holds[5].awaiting == ((WD1, 120),) and hb.poll(11) == []
    restarted = HoldBack(Chain())
    restarted.on_records([result(5, Outcome.STALE)])
    assert len(restarted) == 0 and restarted.poll(0) == [] and restarted.stats["hold_result_not_ours"] == 1


# --- through the engine: a cross-chain pair --------------------------------------------------------


def xc_engine(**hold: Any) -> StrategyEngine:
    d = doc()
    d["hold_back"] = {"enabled": True, **hold}
    return StrategyEngine(config_from_dict(d))


def moved_b(e: StrategyEngine, block: int, t: int) -> list[P.Message]:
    """B's pool moves (WETH dearer on B still: profitable) at ``block``, stamped ``t``."""
    r0 = 2_032_000 * 10**6 + block * 10**6
    return e.on_message(msg(sync(POOL_B, r0, 9995 * 10**17, block=block), t=t, seq=block), t)


def test_cross_chain_pair_is_held_until_its_result_then_resized() -> None:
    e = xc_engine()
    (sig,) = start(e)
    sid = sig.find(P.SignalIdentity).signal_id
    assert moved_b(e, 401, 4 * S) == [] and e.stats["xc_held"] == 1  # a new state, but the pair is in flight
    e.on_execution(ex(result(sid + 1000, Outcome.STALE)))  # someone else's signal
    assert moved_b(e, 402, 5 * S) == [] and e.stats["xc_held"] == 2
    e.on_execution(ex(result(sid, Outcome.STALE)))
    (again,) = moved_b(e, 403, 6 * S)  # released: re-sized on the current state, still profitable
    assert again.find(P.SignalIdentity).signal_id != sid and e.stats["hold_resolved"] == 1


def test_landed_legs_hold_the_pair_until_the_market_data_shows_them() -> None:
    e = xc_engine()
    (sig,) = start(e)
    sid = sig.find(P.SignalIdentity).signal_id
    e.on_execution(ex(result(sid, Outcome.EXECUTED, chain=POOL_A.chain_id, block=101),
                      leg(sid, 0, POOL_A.chain_id, DexLegResult.EXECUTED, 101),
                      leg(sid, 1, POOL_B.chain_id, DexLegResult.EXECUTED, 410)))
    assert moved_b(e, 405, 4 * S) == []  # B's state is at 405 < 410 and A's at 100 < 101: still held
    e.on_message(msg(sync(POOL_A, 2_000_000 * 10**6 - 10**6, 1000 * 10**18 + 10**15, block=101), t=5 * S), 5 * S)
    assert len(e.holds) == 1  # A caught up, B not yet
    (again,) = moved_b(e, 410, 6 * S)  # B's leg's block: both legs are in the state; re-sized and signalled
    assert again.find(P.SignalIdentity).signal_id != sid and e.stats["hold_resolved"] == 1


def test_a_lost_executor_releases_the_pair_after_the_budget_plus_the_margin() -> None:
    e = xc_engine(margin_ms=3000)
    (sig,) = start(e)  # decided at 3 s; time to land: A's one 2 s block -> expires at 3 + 2 + 3 = 8 s
    hold = e.holds.holds[sig.find(P.SignalIdentity).signal_id]
    assert hold.expires_ns == 3 * S + (2000 + 3000) * MS
    assert moved_b(e, 401, 8 * S - 1) == []
    assert len(moved_b(e, 402, 8 * S)) == 1 and e.stats["hold_timeout"] == 1


def test_a_restarted_engine_ignores_its_predecessors_results() -> None:
    e = xc_engine()
    (sig,) = start(e)
    d = doc()
    d["hold_back"] = {"enabled": True}
    # the process seeds signal ids from the wall clock: a restart never reuses one; nothing of before is held
    restarted = StrategyEngine(config_from_dict(d), first_signal_id=1000)
    (mine,) = start(restarted)
    restarted.on_execution(ex(result(sig.find(P.SignalIdentity).signal_id, Outcome.STALE)))
    assert restarted.stats["hold_result_not_ours"] == 1 and len(restarted.holds) == 1
    assert moved_b(restarted, 401, 4 * S) == []  # its own signal's hold is untouched
    restarted.on_execution(ex(result(mine.find(P.SignalIdentity).signal_id, Outcome.STALE)))
    assert len(moved_b(restarted, 402, 5 * S)) == 1


def test_hold_back_off_is_the_old_behaviour() -> None:
    e = StrategyEngine(config_from_dict(doc()))
    assert e.holds is None and len(start(e)) == 1 and len(moved_b(e, 401, 4 * S)) == 1


# --- through the engine: a single-chain cycle ------------------------------------------------------


def test_single_chain_cycle_pools_are_held_until_the_result() -> None:
    e = StrategyEngine(config(hold_back=HoldBackConfig(enabled=True, margin_ms=1000, cycle_budget_ms=500)))
    e.on_message(md(header(base_fee=20 * GWEI, priority_fee=GWEI)), 0)
    (sig,) = e.on_message(md(SNAP1, SNAP2), 10)
    sid = sig.find(P.SignalIdentity).signal_id
    assert e.holds.holds[sid].expires_ns == 10 + 1500 * MS
    assert e.on_message(md(v2_snapshot(WD2, 2101 * 10**21, 10**21, block=101)), 20) == []
    assert e.stats["held"] >= 1
    e.on_execution(ex(result(sid, Outcome.EXECUTED, chain=WD1.chain_id, block=102)))
    assert e.on_message(md(v2_snapshot(WD2, 2102 * 10**21, 10**21, block=101)), 30) == []  # block 102 not seen
    (again,) = e.on_message(md(header(base_fee=20 * GWEI, priority_fee=GWEI, number=103)), 40)
    # the header past block 102: the result's block is in the state; the released pools are re-sized
    assert again.find(P.SignalIdentity).signal_id == sid + 1 and e.stats["hold_resolved"] == 1


def test_a_result_whose_landing_the_state_shows_resizes_the_pools_at_once() -> None:
    """The executor reports once its receipt is in, after the collector published the block's logs: the result
    resolves the hold there and then, and ``released_signals`` re-sizes the pools on that whole block's state --
    not at the next market-data message (on a fast chain the next block's header, its logs right behind)."""
    e = StrategyEngine(config(hold_back=HoldBackConfig(enabled=True, margin_ms=1000, cycle_budget_ms=500)))
    e.on_message(md(header(base_fee=20 * GWEI, priority_fee=GWEI)), 0)
    (sig,) = e.on_message(md(SNAP1, SNAP2), 10)
    sid = sig.find(P.SignalIdentity).signal_id
    cause = ex(result(sid, Outcome.EXECUTED, chain=WD1.chain_id, block=102))
    e.on_execution(cause)
    assert list(e.released_signals(cause, 15)) == []  # the state has not reached block 102: still held
    # block 102's logs (the pools still apart) arrive after the result: that message releases and re-sizes them
    (later,) = e.on_message(md(v2_snapshot(WD1, 2000 * 10**22, 10**22, block=102),
                               v2_snapshot(WD2, 2100 * 10**21, 10**21, block=102)), 20)
    assert later.find(P.SignalIdentity).signal_id == sid + 1 and e.stats["hold_resolved"] == 1
    e2 = StrategyEngine(config(hold_back=HoldBackConfig(enabled=True, margin_ms=1000, cycle_budget_ms=500)))
    e2.on_message(md(header(base_fee=20 * GWEI, priority_fee=GWEI)), 0)
    (sig,) = e2.on_message(md(SNAP1, SNAP2), 10)
    sid = sig.find(P.SignalIdentity).signal_id
    # the block with our transaction is in the state before its result comes: nothing to decide on it (held)
    assert e2.on_message(md(v2_snapshot(WD1, 2000 * 10**22, 10**22, block=102),
                            v2_snapshot(WD2, 2100 * 10**21, 10**21, block=102)), 20) == []
    cause = ex(result(sid, Outcome.EXECUTED, chain=WD1.chain_id, block=102))
    e2.on_execution(cause)
    (again,) = e2.released_signals(cause, 25)  # no market-data message needed
    assert again.find(P.SignalIdentity).signal_id == sid + 1 and again.find(P.SignalIdentity).block_number == 102
    assert e2.stats["hold_resolved"] == 1 and list(e2.released_signals(cause, 26)) == []  # released once


def test_a_stale_result_resizes_a_cross_chain_pair_at_once() -> None:
    e = xc_engine()
    (sig,) = start(e)
    sid = sig.find(P.SignalIdentity).signal_id
    assert moved_b(e, 401, 4 * S) == []  # held
    cause = ex(result(sid, Outcome.STALE))
    e.on_execution(cause)
    (again,) = e.released_signals(cause, 5 * S)  # re-sized on the state the executor saw too
    assert again.find(P.SignalIdentity).signal_id != sid and e.stats["hold_resolved"] == 1


def test_a_quiet_path_resized_on_a_header_is_stamped_with_the_block_before_it() -> None:
    """A signal's block is the block whose state it was priced on: its pools last moved in 101, but the header
    of 103 says every log of 102 is in the state (a collector sends a block's logs before the next header), so
    the signal says 102 -- not 101, which the executor's age limit would count from."""
    e = StrategyEngine(config(hold_back=HoldBackConfig(enabled=True, margin_ms=1000, cycle_budget_ms=500)))
    e.on_message(md(header(base_fee=20 * GWEI, priority_fee=GWEI)), 0)
    (sig,) = e.on_message(md(SNAP1, SNAP2), 10)
    sid = sig.find(P.SignalIdentity).signal_id
    e.on_message(md(v2_snapshot(WD2, 2101 * 10**21, 10**21, block=101)), 20)
    e.on_execution(ex(result(sid, Outcome.STALE)))
    (again,) = e.on_message(md(header(base_fee=20 * GWEI, priority_fee=GWEI, number=103)), 40)
    assert again.find(P.SignalIdentity).block_number == 102
    assert again.find(P.DecisionPoint).block_number == 101  # the newest log applied, as before
