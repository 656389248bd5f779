"""``execution.validate.fill``: our calldata executed on a pool state as ``AlphaPulseArb.execute`` does
(the backtest's fills), with the hop outputs re-validation computes (``hop_output``)."""

from __future__ import annotations

from dataclasses import replace

from test_execution_core import AMOUNT_IN, BLOCK, POOL_A, POOL_B, make_core, signal

from execution.validate import fill, hop_output, revalidate
from protocol.market import PoolSnapshot


def _verdict(core):  # type: ignore[no-untyped-def]
    sig = signal(core)
    cfg = core.config
    v = revalidate(sig, core.state, cfg.factories, max_age_blocks=3, onchain_min_profit_bps=10_000)
    assert v.outcome is None, v.reason
    return sig, v


def test_on_the_signals_state_the_fill_is_the_signals_path_to_the_wei() -> None:
    core = make_core()
    sig, v = _verdict(core)
    f = fill(v.hops, core.state, sig.path.hops, v.min_profit_onchain)
    assert f.revert == ""
    assert f.outputs == tuple(h.amount_out for h in sig.path.hops)
    assert f.profit == sig.economics.gross_profit == v.gross_profit > 0
    pool, state, out = hop_output(core.state, sig.path.hops[0], AMOUNT_IN)
    assert pool == POOL_A and state is not None and out == sig.path.hops[0].amount_out


def test_a_moved_pool_reverts_at_the_hop_minimum_or_the_profit_minimum() -> None:
    core = make_core()
    sig, v = _verdict(core)
    # pool B's WETH got cheaper: hop 1 gives less USDC than its minimum
    core.state.apply(PoolSnapshot(pool=POOL_B, block_number=BLOCK + 1, fee_ppm=3000, tick_spacing=0,
                                  reserve0=2_100_000 * 10**6, reserve1=1000 * 10**18, sqrt_price_x96=0, tick=0,
                                  liquidity=0, ticks=()))
    f = fill(v.hops, core.state, sig.path.hops, v.min_profit_onchain)
    assert f.revert.startswith("InsufficientOutput(1, ") and f.profit == 0
    # with no minimum on the hops, the contract's minProfit is what stops it
    loose = tuple(replace(h, amount_out=0) for h in v.hops)
    f = fill(loose, core.state, sig.path.hops, v.min_profit_onchain)
    assert f.revert.startswith("InsufficientProfit(") and f.profit == 0
    # and with neither, the profit is what the moved pool gives
    f = fill(loose, core.state, sig.path.hops, 0)
    assert f.revert == "" and 0 < f.profit < v.gross_profit


def test_an_unknown_pool_reverts() -> None:
    core = make_core()
    sig, v = _verdict(core)
    core.state.invalidate_all("test")
    f = fill(v.hops, core.state, sig.path.hops, 0)
    assert f.revert == f"hop 0: pool {POOL_A.address} has no tradable state"
