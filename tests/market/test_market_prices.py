"""Pool mid prices, conversion at the deepest pool's price, Q64.96 prices of market-data records."""

from __future__ import annotations

from market_builders import DAI, GWEI, WETH, params, sync, token, v2_pool, v2_snapshot, v3_pool, v3_snapshot

import protocol as P
from market.amm.tick_math import get_sqrt_ratio_at_tick
from market.prices import Q96, Q192, convert, convert_from_gas_token, convert_q96, mid_price, pool_price_q96
from market.state import PoolStateManager

WD1 = v2_pool(1, WETH, DAI)
WD2 = v2_pool(2, WETH, DAI, venue=P.Venue.SUSHISWAP)
W3 = v3_pool(3, WETH, DAI)

# DAI is token0 (0x6b.. < 0xc0..). WETH costs 2000 DAI on WD1 and 2100 DAI on WD2.
SNAP1 = v2_snapshot(WD1, 2000 * 10**22, 10**22)
SNAP2 = v2_snapshot(WD2, 2100 * 10**21, 10**21)


def state_with(*records: P.TLV) -> PoolStateManager:
    m = PoolStateManager(params())
    for r in records:
        m.apply(r)
    return m


def test_gas_is_converted_into_the_profit_token_through_a_weth_pool() -> None:
    state = state_with(SNAP1)
    wei = 3_000_000 * 21 * GWEI
    # mid price of WD1: 2000 DAI per WETH, rounded up
    assert convert_from_gas_token(wei, token(WETH), token(DAI), state) == -(-wei * 2000 * 10**22 // 10**22)
    assert convert_from_gas_token(wei, token(WETH), token(WETH), state) == wei
    assert convert_from_gas_token(wei, token(WETH), token("0x" + "ee" * 20), state) is None


def test_gas_conversion_through_a_v3_pool_price() -> None:
    state = state_with(v3_snapshot(W3, tick=76_000, liquidity=10**22, ticks={-887220: 10**22, 887220: -(10**22)}))
    s = state.get(W3).v3
    wei = 10**16
    # WETH is token1: DAI per WETH = 2**192 / sqrtP**2
    assert convert_from_gas_token(wei, token(WETH), token(DAI), state) == -(-wei * Q192 // s.sqrt_price_x96**2)


def test_costs_round_up_and_values_down() -> None:
    state = state_with(v2_snapshot(WD1, 3, 7))  # 7/3 WETH per DAI, 3/7 DAI per WETH
    assert state.convert(10, token(DAI), token(WETH), round_up=True) == 24  # 70/3 = 23.3
    assert state.convert(10, token(DAI), token(WETH), round_up=False) == 23
    assert convert_from_gas_token(10, token(WETH), token(DAI), state) == 5  # 30/7 = 4.3, a cost: up
    assert state.convert(10, token(WETH), token(DAI), round_up=False) == 4


def test_the_deepest_pool_of_the_pair_sets_the_price() -> None:
    state = state_with(SNAP1, SNAP2)  # WD1 holds 10**22 WETH, WD2 10**21
    assert state.convert(10**18, token(WETH), token(DAI), round_up=False) == 2000 * 10**18
    shallow_first = [state.get(WD2), state.get(WD1)]
    assert convert(10**18, token(WETH), token(DAI), shallow_first, round_up=False) == 2000 * 10**18
    assert convert(10**18, token(WETH), token(DAI), [], round_up=False) is None


def test_mid_price_is_other_token_per_source_token() -> None:
    state = state_with(SNAP1, v3_snapshot(W3, tick=0, liquidity=10**20, ticks={-600: 10**20, 600: -(10**20)},
                                          sqrt_price_x96=Q96))
    assert mid_price(state.get(WD1), True) == (10**22, 2000 * 10**22)  # WETH per DAI
    assert mid_price(state.get(WD1), False) == (2000 * 10**22, 10**22)
    assert mid_price(state.get(W3), True) == (Q192, Q192) == mid_price(state.get(W3), False)


def test_stale_pools_do_not_price() -> None:
    state = state_with(SNAP1, P.StateInvalidation(chain_id=1, pool=WD1, from_block=100, reason=0, detail=""))
    assert state.convert(10**18, token(WETH), token(DAI), round_up=False) is None


def test_pool_price_q96_of_each_record_kind() -> None:
    sqrt_p = get_sqrt_ratio_at_tick(1000)
    assert pool_price_q96(sync(WD1, 4, 10)) == (WD1, (10 << 96) // 4)
    assert pool_price_q96(sync(WD1, 0, 10)) is None
    assert pool_price_q96(v2_snapshot(WD1, 4, 10)) == (WD1, (10 << 96) // 4)
    v3 = v3_snapshot(W3, tick=1000, liquidity=1, ticks={}, sqrt_price_x96=sqrt_p)
    assert pool_price_q96(v3) == (W3, sqrt_p * sqrt_p >> 96)
    # a V3 snapshot's reserves are balances, not a price
    assert pool_price_q96(v3_snapshot(W3, tick=0, liquidity=0, ticks={}, sqrt_price_x96=0, balances=(4, 10))) is None
    init = P.V3Initialize(pool=W3, block_number=1, log_index=0, sqrt_price_x96=sqrt_p, tick=1000)
    assert pool_price_q96(init) == (W3, sqrt_p * sqrt_p >> 96)
    assert pool_price_q96(P.StateInvalidation(chain_id=1, pool=W3, from_block=1, reason=0, detail="")) is None


def test_convert_q96_rounds_toward_zero_both_ways() -> None:
    price = 3 * Q96 // 2  # 1.5 token1 per token0
    assert convert_q96(7, price, True) == 10 and convert_q96(-7, price, True) == -10
    assert convert_q96(7, price, False) == 4 and convert_q96(-7, price, False) == -4
