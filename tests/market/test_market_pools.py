"""Pool snapshots: the shared marginal rates and their log2 bounds, V3 quotes that cannot fill, Curve quotes
on the snapshot's cached invariant, Curve's least input and its local model."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from market_builders import DAI, USDC, WETH, v2_pool, v3_pool

import protocol as P
from market.amm import curve_stableswap as curve
from market.amm.errors import AMMError
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


USDC_DAI = P.PoolId.of(1, P.Venue.CURVE, P.VenueKind.CURVE, "0x" + "cc" * 20, USDC, DAI)
COIN_RATES = st.sampled_from([(10**18, 10**18), (10**18, 10**30), (10**30, 10**18)])  # 18/18, 18/6, 6/18 decimals


def curve_pool(balances: tuple[int, int], rates: tuple[int, int], amp: int, fee: int) -> CurvePool:
    return CurvePool(pool=USDC_DAI, block_number=1, last_event=(0, 0), balances=balances, rates=rates, amp=amp, fee=fee)


@settings(max_examples=150, deadline=None)
@given(b0=st.integers(1, 10**26), b1=st.integers(1, 10**26), rates=COIN_RATES,
       amp=st.sampled_from([1, 10, 200, 2000]), fee=st.sampled_from([0, 4_000_000, 30_000_000]),
       zfo=st.booleans(), frac=st.integers(1, 3000))
def test_curve_quotes_on_the_cached_invariant_are_the_contracts_and_min_input_is_the_least_input(
        b0, b1, rates, amp, fee, zfo, frac) -> None:
    pool = curve_pool((b0, b1), rates, amp, fee)
    i = 0 if zfo else 1
    dx = max(1, pool.balances[i] * frac // 1000)
    try:  # the mirror as the contract runs it: D recomputed from the balances inside get_y
        expected, _ = curve.exchange(i, 1 - i, dx, pool.balances, pool.rates, amp, fee)
    except AMMError:
        expected = NOT_FILLED
    out = pool.amount_out(zfo, dx)
    assert out == expected
    if out > 0:
        least = pool.min_input(zfo, out)
        assert 1 <= least <= dx and pool.amount_out(zfo, least) >= out
        assert least == 1 or pool.amount_out(zfo, least - 1) < out
    assert pool.min_input(zfo, pool.balances[1 - i]) == NOT_FILLED  # never the whole balance


@pytest.mark.parametrize("rates", [(10**18, 10**18), (10**18, 10**30)])
def test_curve_local_model_has_the_curves_slope_and_curvature(rates: tuple[int, int]) -> None:
    # the constant-product model at a point predicts the exact quotes just past it, to second order
    scale = (10**18 * 10**18 // rates[0], 10**18 * 10**18 // rates[1])  # one whole coin in each coin's units
    for amp in (10, 200, 2000):
        pool = curve_pool((3 * 10**6 * scale[0], 10**6 * scale[1]), rates, amp, 4_000_000)
        for zfo in (True, False):
            i = 0 if zfo else 1
            for frac in (10**-4, 0.1, 0.5):
                x = int(pool.balances[i] * frac)
                out, n, d, r_in, r_out = pool.local_model(zfo, x)
                assert out == pool.amount_out(zfo, x)
                for dfrac in (10**-3, 10**-1):
                    delta = int(x * dfrac)
                    exact = pool.amount_out(zfo, x + delta) - out
                    model = n * r_out * delta // (d * r_in + n * delta)
                    # second-order exact: the error shrinks with the cube of the step (1e-3: rounding only)
                    assert abs(model - exact) <= max(2, exact * (10**-6 if dfrac < 0.01 else 5 * 10**-3)), (amp, zfo, frac)
    # a constant-product curve is its own model: with A -> 0 the StableSwap model is the pair itself
    flat = curve_pool((10**24, 2 * 10**24), (10**18, 10**18), 1, 0)
    _, _, r_in, r_out = flat.model0(True)
    assert r_out * 10**24 > r_in * 10**24  # dearer token1 side: more out than in at the margin


@settings(max_examples=300, deadline=None)
@given(fee=st.sampled_from([100, 500, 1234, 3000, 10_000]), amount=st.integers(1, 10**9))
def test_fee_stall_inputs_are_where_one_more_unit_buys_nothing(fee: int, amount: int) -> None:
    # computeSwapStep spends floor(u * (1e6 - fee) / 1e6) of an input u: the nearest inputs at or below
    # and above ``amount`` after which one more unit adds nothing (found here by walking)
    from market.pools import fee_stall_inputs

    def stalls(u: int) -> bool:
        return (u + 1) * (PPM - fee) // PPM == u * (PPM - fee) // PPM

    nxt = next(u for u in range(amount, amount + PPM) if stalls(u))
    prev = next((u for u in range(amount, max(0, amount - PPM), -1) if stalls(u)), None)
    expected = (prev, nxt) if prev is not None and prev != nxt else (nxt,)
    assert fee_stall_inputs(fee, amount) == expected
    assert v3().fee_stalls(True, amount) == fee_stall_inputs(3000, amount)
