"""Ground truth: two real mainnet arbitrages with their exact pre-trade reserves (mev-inspect-py).

Block 12,483,198: WETH -> (Sushiswap DAI/WETH) -> DAI -> (Uniswap V2 DAI/WETH) -> WETH.
Block 11,931,272: a five-pool V2 cycle from WETH back to WETH.

What is checked, and what holds exactly:

* the bot's input evaluated through our path reproduces every hop's observed output and the
  bot's gross profit **to the wei** (both cases);
* case 1: our optimiser's gross profit is **equal** to the bot's, to the wei. The bot's input
  (18.723458351916439600 WETH) is not the unique optimum: the exact profit is flat there (the
  curvature is ~1/reserve), and our input differs from the bot's by ~3.4e8 wei with the same
  gross profit; both lie on the optimal plateau;
* case 2: our optimiser finds **more** than the bot (0.076877923983849921 vs
  0.076823540222651237 WETH) and more than the data set's own ternary-search optimum
  (0.076877923983602193), because it re-centres on USDT's 6-decimal steps;
* the engine, fed only snapshots and a header, publishes exactly this cycle in this direction.
"""

from __future__ import annotations

import pytest
from market_builders import GWEI, WETH, case_pools, config, ground_truth, header, md, token

import protocol as P
from market.pools import V2Pool
from strategy.engine import StrategyEngine
from strategy.optimize import evaluate, optimize


def _hops(case: dict, pools: list[tuple[P.PoolId, P.PoolSnapshot]]) -> list[tuple[V2Pool, bool]]:
    hops = []
    for (pid, snap), hop in zip(pools, case["hops"]):
        state = V2Pool(pool=pid, block_number=snap.block_number, last_event=(0, 0), reserve0=snap.reserve0,
                       reserve1=snap.reserve1, fee_ppm=snap.fee_ppm)
        hops.append((state, hop["token_in"] == hop["token0"]))
    return hops


def _run_engine(case: dict, max_hops: int) -> list[P.Message]:
    venues = [P.Venue.SUSHISWAP] + [P.Venue.UNISWAP_V2] * (len(case["hops"]) - 1)
    engine = StrategyEngine(config(max_hops=max_hops))
    # Pre-London blocks: no base fee. A 1 gwei tip makes the gas term non-zero.
    engine.on_message(md(header(base_fee=0, priority_fee=GWEI, number=case["block_number"])), 0)
    signals: list[P.Message] = []
    for i, (_, snap) in enumerate(case_pools(case, venues)):
        signals += engine.on_message(md(snap, seq=i + 2), now_ns=10 + i)
    return signals


@pytest.mark.parametrize("index", [0, 1])
def test_bot_input_reproduces_observed_amounts_exactly(index: int) -> None:
    case = ground_truth()[index]
    hops = _hops(case, case_pools(case))
    bot_in = int(case["observed_start_amount"])
    outs = evaluate(hops, bot_in)
    assert outs == tuple(int(h["observed_amount_out"]) for h in case["hops"])
    assert outs[-1] - bot_in == int(case["observed_profit"])


def test_two_pool_sushiswap_uniswap_dai_weth_block_12483198() -> None:
    case = ground_truth()[0]
    assert case["block_number"] == 12_483_198
    hops = _hops(case, case_pools(case))
    bot_in = int(case["observed_start_amount"])
    bot_profit = int(case["observed_profit"])

    quote = optimize(hops, cap=hops[0][0].balance_in(hops[0][1]))
    assert quote is not None
    assert quote.profit == bot_profit == 22_137_247_799_616_742  # equal, to the wei
    assert quote.profit == int(case["computed_optimal_gross_profit"])
    # the bot's input is on the same (flat) optimum; ours differs from it by well under 1e-9 of it
    assert abs(quote.amount_in - bot_in) < bot_in >> 30

    signals = _run_engine(case, max_hops=4)
    assert len(signals) == 1
    sig = signals[0]
    ident, econ, path = sig.find(P.SignalIdentity), sig.find(P.Economics), sig.find(P.ArbitragePath)
    assert ident.kind == P.SignalKind.TWO_POOL and ident.block_number == 12_483_198
    assert econ.profit_token == token(WETH)
    assert econ.gross_profit == bot_profit
    assert [h.pool.address for h in path.hops] == [h["pool"] for h in case["hops"]]
    assert ["0x" + h.token_in.hex() for h in path.hops] == [h["token_in"] for h in case["hops"]]
    assert path.hops[0].amount_in == quote.amount_in
    assert path.hops[-1].amount_out - path.hops[0].amount_in == bot_profit
    assert P.decode(P.encode(sig)) == sig


def test_five_pool_cycle_block_11931272() -> None:
    case = ground_truth()[1]
    assert case["block_number"] == 11_931_272
    hops = _hops(case, case_pools(case))
    bot_profit = int(case["observed_profit"])

    quote = optimize(hops, cap=hops[0][0].balance_in(hops[0][1]))
    assert quote is not None
    assert quote.profit >= bot_profit
    assert quote.profit >= int(case["computed_optimal_gross_profit"])
    assert quote.profit == 76_877_923_983_849_921

    # The real cycle has five hops: the default max_hops = 4 cannot see it (no shorter cycle exists
    # among these five pools), max_hops = 5 finds it.
    assert _run_engine(case, max_hops=4) == []
    signals = _run_engine(case, max_hops=5)
    assert len(signals) == 1
    sig = signals[0]
    econ, path = sig.find(P.Economics), sig.find(P.ArbitragePath)
    assert sig.find(P.SignalIdentity).kind == P.SignalKind.CYCLE
    assert econ.gross_profit == quote.profit >= bot_profit
    assert [h.pool.address for h in path.hops] == [h["pool"] for h in case["hops"]]
    assert ["0x" + h.token_out.hex() for h in path.hops] == [h["token_out"] for h in case["hops"]]
    assert econ.net_profit == econ.gross_profit - econ.gas_cost - econ.flash_fee - econ.slippage_allowance
