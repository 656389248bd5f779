"""Economics: every term, gas conversion through pool prices, thresholds."""

from __future__ import annotations

import pytest
from market_builders import (
    DAI,
    ETH,
    GWEI,
    WETH,
    config,
    header,
    md,
    token,
    v2_pool,
    v2_snapshot,
    v3_pool,
)

import protocol as P
from strategy.config import GasConfig
from strategy.economics import assess, path_gas_units
from strategy.engine import StrategyEngine

WD1 = v2_pool(1, WETH, DAI)
WD2 = v2_pool(2, WETH, DAI, venue=P.Venue.SUSHISWAP)
W3 = v3_pool(3, WETH, DAI)

# DAI is token0 (0x6b.. < 0xc0..). WETH costs 2000 DAI on WD1 and 2100 DAI on WD2.
SNAP1 = v2_snapshot(WD1, 2000 * 10**22, 10**22)
SNAP2 = v2_snapshot(WD2, 2100 * 10**21, 10**21)


def engine_with(cfg=None, base_fee: int = 20 * GWEI, tip: int = GWEI) -> StrategyEngine:
    e = StrategyEngine(cfg or config())
    e.on_message(md(header(base_fee=base_fee, priority_fee=tip)), 0)
    return e


def only_opportunity(e: StrategyEngine):
    opps = e.search.on_update([WD1])
    assert len(opps) == 1
    return opps[0]


def test_terms_add_up_and_match_the_configuration() -> None:
    cfg = config(slippage_bps=25, flash_fee_ppm=900)
    e = engine_with(cfg)
    e.on_message(md(SNAP1, SNAP2), 1)
    opp = only_opportunity(e)
    a = assess(opp, e.state, cfg)
    assert a is not None
    assert a.profit_token == token(WETH)
    assert a.gas_units == 40_000 + 2 * 60_000 == path_gas_units(opp.states, GasConfig())
    assert a.gas_price_wei == 21 * GWEI
    assert a.gas_cost == a.gas_cost_wei == a.gas_units * 21 * GWEI  # profit token is the gas token
    assert a.flash_fee == -(-opp.amount_in * 900 // 1_000_000)
    assert a.slippage_allowance == -(-a.gross_profit * 25 // 10_000)
    assert a.net_profit == a.gross_profit - a.gas_cost - a.flash_fee - a.slippage_allowance
    assert a.worth_signalling


def test_signal_carries_every_term() -> None:
    e = engine_with()
    [sig] = e.on_message(md(SNAP1, SNAP2), 1)
    econ = sig.find(P.Economics)
    assert econ.net_profit == econ.gross_profit - econ.gas_cost - econ.flash_fee - econ.slippage_allowance
    assert econ.gas_units == 160_000 and econ.gas_price_wei == 21 * GWEI and econ.flash_fee == 0


def test_profit_in_a_non_gas_token_pays_gas_in_that_token() -> None:
    # Anchor cycles at DAI: the profit is counted in DAI, the gas is converted at WETH's DAI price.
    e = engine_with(config(bases=(DAI, WETH)))
    [sig] = e.on_message(md(SNAP1, SNAP2), 1)
    econ = sig.find(P.Economics)
    assert econ.profit_token == token(DAI)
    deepest = e.state.get(WD1)  # 10**22 WETH deep vs 10**21: the deeper pool prices gas
    wei = econ.gas_units * econ.gas_price_wei
    assert econ.gas_cost == -(-wei * deepest.reserve0 // deepest.reserve1)


def test_no_signal_when_net_is_not_positive() -> None:
    e = engine_with(base_fee=10**6 * GWEI)  # absurd gas price: gas exceeds gross
    assert e.on_message(md(SNAP1, SNAP2), 1) == []
    assert e.stats["below_threshold"] == 1
    opp = only_opportunity(e)
    a = assess(opp, e.state, e.config)
    assert a.gross_profit > 0 and a.net_profit <= 0 and not a.worth_signalling


@pytest.mark.parametrize("margin, signals", [(-1, 1), (0, 1), (1, 0)])
def test_minimum_net_profit_threshold(margin: int, signals: int) -> None:
    probe = engine_with()
    probe.on_message(md(SNAP1, SNAP2), 1)
    net = assess(only_opportunity(probe), probe.state, probe.config).net_profit
    e = engine_with(config(min_net=net + margin))
    assert len(e.on_message(md(SNAP1, SNAP2), 1)) == signals


def test_no_header_means_no_signal() -> None:
    e = StrategyEngine(config())
    assert e.on_message(md(SNAP1, SNAP2), 1) == []
    assert e.stats["unpriced"] == 1
    e.on_message(md(header()), 2)
    assert len(e.on_message(md(P.V2Reserves(pool=WD2, block_number=101, log_index=0,
                                            reserve0=2101 * 10**21, reserve1=10**21)), 3)) == 1


def test_profit_is_large_relative_to_gas_sanity() -> None:
    e = engine_with()
    [sig] = e.on_message(md(SNAP1, SNAP2), 1)
    econ = sig.find(P.Economics)
    assert econ.gross_profit > ETH // 100 and econ.gas_cost < econ.gross_profit
