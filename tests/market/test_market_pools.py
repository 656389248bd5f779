"""Pool snapshots: the shared marginal rates and their log2 bounds, V3 quotes that cannot fill."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from market_builders import DAI, WETH, v2_pool, v3_pool

from market.amm.tick_math import get_sqrt_ratio_at_tick
from market.amm.uniswap_v3 import V3PoolState
from market.pools import NOT_FILLED, PPM, CurvePool, V2Pool, V3Pool, log2_bounds, log_rate_bounds

WD = v2_pool(1, WETH, DAI)
W3 = v3_pool(2, WETH, DAI)
L = 10**21


def v3(liquidity: int = L) -> V3Pool:
    state = V3PoolState(sqrt_price_x96=get_sqrt_ratio_at_tick(0) + 1, tick=0, liquidity=liquidity, fee=3000,
                        tick_spacing=60, ticks={-600: liquidity, 600: -liquidity} if liquidity else {})
    return V3Pool(pool=W3, block_number=1, last_event=(1, 0), fee=3000, tick_spacing=60, v3=state)


def test_every_kind_computes_its_marginals_and_log_bounds_once() -> None:
    v2 = V2Pool(pool=WD, block_number=1, last_event=(1, 0), reserve0=1000, reserve1=2000, fee_ppm=3000)
    assert v2.marginals == (997_000 * 2000, PPM * 1000, 997_000 * 1000, PPM * 2000)
    assert v2.marginal(True) == (997_000 * 2000, PPM * 1000) and v2.marginal(False) == (997_000 * 1000, PPM * 2000)
    assert v2.log_rates == log_rate_bounds(v2.marginals)
    curve = CurvePool(pool=WD, block_number=1, last_event=(1, 0), balances=(10**24, 10**24),
                      rates=(10**18, 10**18), amp=100, fee=4_000_000)
    n0, d0 = curve.marginal(True)
    assert 0 < n0 < d0 and curve.log_rates == log_rate_bounds(curve.marginals)
    assert v3(0).marginals == (0, 1, 0, 1)  # no liquidity: a zero rate


def test_derived_snapshots_recompute_marginals() -> None:
    v2 = V2Pool(pool=WD, block_number=1, last_event=(1, 0), reserve0=1000, reserve1=2000)
    moved = dataclasses.replace(v2, reserve1=4000, last_event=(2, 0))
    assert moved.marginal(True)[0] == 2 * v2.marginal(True)[0] and moved.pool == v2.pool
    with pytest.raises(dataclasses.FrozenInstanceError):
        moved.block_number = 3  # type: ignore[misc]


def test_v3_quotes_that_cannot_fill() -> None:
    pool = v3()
    assert pool.amount_out(True, 0) == NOT_FILLED and pool.min_input(True, 0) == NOT_FILLED
    uninitialised = V3Pool(pool=W3, block_number=1, last_event=(1, 0), fee=3000, tick_spacing=60, v3=None)
    assert uninitialised.amount_out(True, 10**18) == NOT_FILLED
    assert uninitialised.min_input(True, 10**18) == NOT_FILLED
    assert pool.amount_out(True, 10**30) == NOT_FILLED  # runs out of liquidity before the whole input
    out = pool.amount_out(True, 10**18)
    assert 0 < out < 10**18
    x = pool.min_input(True, out)
    assert pool.amount_out(True, x) >= out and pool.amount_out(True, x - 2) < out  # least input, up to a unit


def test_log2_bounds_bracket_the_true_logarithm() -> None:
    rng = random.Random(11)
    for _ in range(20_000):
        v = rng.randrange(1, 1 << rng.randrange(1, 300))
        lo, hi = log2_bounds(v)
        true = math.log2(v) * 2**24  # a float only to check the integer bounds
        assert lo - 1e-3 <= true <= hi + 1e-3
        assert hi - lo <= 5911  # one table step: 2**24 / (4096 ln 2) ~ 0.035 % of a doubling


def test_v4_pool_quotes_with_the_v4_mirror_and_direction_fees() -> None:
    from market_builders import v4_pool

    from market.amm import uniswap_v4 as uv4
    from market.pools import NO_CAP, V4Pool

    state = uv4.V4PoolState(sqrt_price_x96=get_sqrt_ratio_at_tick(0), tick=0, liquidity=L, lp_fee=500,
                            protocol_fee=(1000 << 12) | 0, tick_spacing=60, ticks={-600: L, 600: -L})
    p = V4Pool(pool=v4_pool(1, WETH, DAI), block_number=1, last_event=(1, 0), lp_fee=500, tick_spacing=60,
               protocol_fee=state.protocol_fee, v4=state)
    assert p.tradable and p.balance_in(False) == NO_CAP
    # zero-for-one pays only the LP fee, one-for-zero 0.1 % protocol fee on top
    assert p.model_n_of(True) == PPM - 500 and p.model_n_of(False) == PPM - state.swap_fee(False) < PPM - 500
    assert p.model_n == p.model_n_of(False)
    for zfo in (True, False):
        x = 10**19
        exact = uv4.swap_exact_input(state, zfo, x)
        assert p.amount_out(zfo, x) == exact.amount_out
        assert p.local_model(zfo, x)[0] == exact.amount_out
        need = p.min_input(zfo, exact.amount_out)
        assert p.amount_out(zfo, need) >= exact.amount_out and p.amount_out(zfo, need - 1) < exact.amount_out
    # past every tick the pool cannot fill: the mirror stops at the price limit
    assert p.amount_out(True, 10**40) == NOT_FILLED
    empty = V4Pool(pool=v4_pool(2, WETH, DAI), block_number=1, last_event=(1, 0), lp_fee=500, tick_spacing=60,
                   protocol_fee=0, v4=None)
    assert not empty.tradable and empty.amount_out(True, 10) == NOT_FILLED and empty.marginals == (0, 1, 0, 1)
