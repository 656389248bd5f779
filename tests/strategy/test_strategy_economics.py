"""Economics: every term, gas conversion through pool prices, thresholds."""

from __future__ import annotations

import pytest
from market_builders import (
    DAI,
    ETH,
    GWEI,
    USDC,
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


# -- the flash source ---------------------------------------------------------------------------------
def _with_balancer(cfg, *, fee_ppm: int = 0):
    import msgspec
    chain = msgspec.structs.replace(cfg.chains[0], balancer_vault=True, balancer_fee_ppm=fee_ppm)
    return msgspec.structs.replace(cfg, chains=(chain,))


def _curve_and_v2_states():
    from market.pools import CurvePool, V2Pool
    curve = CurvePool(pool=P.PoolId.of(1, P.Venue.CURVE, P.VenueKind.CURVE, "0x" + "cc" * 20, USDC, DAI),
                      block_number=1, last_event=(0, 0), balances=(10**25, 10**13), rates=(10**18, 10**30),
                      amp=200, fee=4_000_000)
    v2 = V2Pool(pool=P.PoolId.of(1, 1, 1, "0x" + "dd" * 20, USDC, DAI), block_number=1, last_event=(0, 0),
                reserve0=10**24, reserve1=102 * 10**10)
    return curve, v2


def test_flash_choices_per_path_shape() -> None:
    from protocol.signals import FlashSource
    from strategy.economics import flash_choices
    curve, v2 = _curve_and_v2_states()
    cfg = config(flash_fee_ppm=100)
    plain, vault = cfg.chains[0], _with_balancer(cfg, fee_ppm=900).chains[0]
    # A Curve first hop cannot lend: only the Vault can, and without one nothing can.
    assert flash_choices((curve, v2), 10**6, plain, cfg) == []
    assert flash_choices((curve, v2), 10**6, vault, cfg) == [(FlashSource.BALANCER, cfg.gas.balancer_flash, 900)]
    # A V2 first hop lends itself (the configured pool fee), the Vault is the alternative.
    assert flash_choices((v2, curve), 10**6, plain, cfg) == [(FlashSource.POOL, 0, 100)]
    assert flash_choices((v2, curve), 10**6, vault, cfg) == [
        (FlashSource.POOL, 0, 100), (FlashSource.BALANCER, cfg.gas.balancer_flash, 900)]


def test_assess_picks_the_cheapest_flash_source_and_the_signal_says_which() -> None:
    from protocol.signals import FlashSource
    # The pair's own flash swap is free and cheaper in gas: chosen even with a Vault configured.
    cfg = _with_balancer(config())
    e = engine_with(cfg)
    [sig] = e.on_message(md(SNAP1, SNAP2), 1)
    assert sig.find(P.FlashLoan).source == FlashSource.POOL
    assert sig.find(P.Economics).gas_units == 160_000
    # An external fee on the pools' lending (flash_fee_ppm) that outweighs the Vault's extra gas: the Vault.
    cfg = _with_balancer(config(flash_fee_ppm=5_000, gas=GasConfig(balancer_flash=1_000)))
    e = engine_with(cfg)
    [sig] = e.on_message(md(SNAP1, SNAP2), 1)
    econ = sig.find(P.Economics)
    assert sig.find(P.FlashLoan).source == FlashSource.BALANCER
    assert econ.flash_fee == 0 and econ.gas_units == 161_000
    assert econ.net_profit == econ.gross_profit - econ.gas_cost - econ.slippage_allowance
