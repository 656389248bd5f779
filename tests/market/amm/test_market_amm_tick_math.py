"""TickMath mirror: bounds, upstream snapshot values, and the defining property of getTickAtSqrtRatio."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.amm.errors import InvalidSqrtPrice, InvalidTick
from market.amm.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_sqrt_ratio_at_tick_cached,
    get_tick_at_sqrt_ratio,
    get_tick_at_sqrt_ratio_fast,
)

# getSqrtRatioAtTick results recorded in Uniswap v3-core test/__snapshots__/TickMath.spec.ts.snap
UPSTREAM_SQRT_RATIOS = {
    -50: 79030349367926598376800521322,
    -100: 78833030112140176575862854579,
    -250: 78244023372248365697264290337,
    -500: 77272108795590369356373805297,
    -1000: 75364347830767020784054125655,
    -2500: 69919044979842180277688105136,
    -3000: 68192822843687888778582228483,
    -4000: 64867181785621769311890333195,
    -5000: 61703726247759831737814779831,
    -50000: 6504256538020985011912221507,
    -150000: 43836292794701720435367485,
    -250000: 295440463448801648376846,
    -500000: 1101692437043807371,
    -738203: 7409801140451,
    50: 79426470787362580746886972461,
    100: 79625275426524748796330556128,
    250: 80224679980005306637834519095,
    500: 81233731461783161732293370115,
    1000: 83290069058676223003182343270,
}


def _tick_by_bisection(price: int) -> int:
    """Greatest tick whose ratio is <= price, found without the log2 approximation."""
    lo, hi = MIN_TICK, MAX_TICK
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if get_sqrt_ratio_at_tick(mid) <= price:
            lo = mid
        else:
            hi = mid - 1
    return lo


def test_bounds():
    assert get_sqrt_ratio_at_tick(MIN_TICK) == MIN_SQRT_RATIO
    assert get_sqrt_ratio_at_tick(MAX_TICK) == MAX_SQRT_RATIO
    assert get_sqrt_ratio_at_tick(0) == 2**96
    assert get_sqrt_ratio_at_tick(MIN_TICK + 1) == 4295343490
    assert get_sqrt_ratio_at_tick(MAX_TICK - 1) == 1461373636630004318706518188784493106690254656249
    assert get_tick_at_sqrt_ratio(MIN_SQRT_RATIO) == MIN_TICK
    assert get_tick_at_sqrt_ratio(MIN_SQRT_RATIO + 1) == MIN_TICK
    assert get_tick_at_sqrt_ratio(MAX_SQRT_RATIO - 1) == MAX_TICK - 1
    assert get_tick_at_sqrt_ratio(4295343490) == MIN_TICK + 1
    assert get_tick_at_sqrt_ratio(1461373636630004318706518188784493106690254656249) == MAX_TICK - 1


def test_out_of_range_reverts():
    for tick in (MIN_TICK - 1, MAX_TICK + 1, 2**23):
        with pytest.raises(InvalidTick):
            get_sqrt_ratio_at_tick(tick)
    for price in (0, MIN_SQRT_RATIO - 1, MAX_SQRT_RATIO, 2**160):
        with pytest.raises(InvalidSqrtPrice):
            get_tick_at_sqrt_ratio(price)


@pytest.mark.parametrize(("tick", "ratio"), sorted(UPSTREAM_SQRT_RATIOS.items()))
def test_upstream_snapshot_values(tick, ratio):
    assert get_sqrt_ratio_at_tick(tick) == ratio
    assert get_sqrt_ratio_at_tick_cached(tick) == ratio
    assert get_tick_at_sqrt_ratio(ratio) == tick


def test_ratio_is_strictly_increasing_across_a_sample():
    rng = random.Random(7)
    ticks = sorted({rng.randint(MIN_TICK, MAX_TICK) for _ in range(500)} | {MIN_TICK, -1, 0, 1, MAX_TICK})
    ratios = [get_sqrt_ratio_at_tick(t) for t in ticks]
    assert ratios == sorted(ratios) and len(set(ratios)) == len(ratios)


@settings(max_examples=200, deadline=None)
@given(tick=st.integers(min_value=MIN_TICK, max_value=MAX_TICK))
def test_round_trip(tick):
    ratio = get_sqrt_ratio_at_tick(tick)
    if tick < MAX_TICK:  # MAX_SQRT_RATIO itself is outside getTickAtSqrtRatio's domain
        assert get_tick_at_sqrt_ratio(ratio) == tick
    if tick > MIN_TICK:
        # one wei below a tick's ratio belongs to the tick below it
        assert get_tick_at_sqrt_ratio(ratio - 1) == tick - 1


@settings(max_examples=150, deadline=None)
@given(price=st.integers(min_value=MIN_SQRT_RATIO, max_value=MAX_SQRT_RATIO - 1))
def test_tick_at_sqrt_ratio_is_the_floor_tick(price):
    tick = get_tick_at_sqrt_ratio(price)
    assert get_sqrt_ratio_at_tick(tick) <= price
    assert tick == MAX_TICK or price < get_sqrt_ratio_at_tick(tick + 1)


def test_tick_at_sqrt_ratio_matches_bisection_on_log_spaced_prices():
    rng = random.Random(11)
    for _ in range(60):
        price = rng.randint(MIN_SQRT_RATIO, 2 ** rng.randint(33, 160))
        price = min(price, MAX_SQRT_RATIO - 1)
        assert get_tick_at_sqrt_ratio(price) == _tick_by_bisection(price)


def test_fast_tick_at_sqrt_ratio_is_the_contracts():
    """The float shortcut agrees with the contract's computation on log-spaced prices, on and one wei either
    side of tick ratios (where it must fall back), at the domain's ends, and reverts outside it alike."""
    rng = random.Random(12)
    prices = [min(rng.randint(MIN_SQRT_RATIO, 2 ** rng.randint(33, 160)), MAX_SQRT_RATIO - 1) for _ in range(20000)]
    for _ in range(3000):
        ratio = get_sqrt_ratio_at_tick(rng.randint(MIN_TICK + 1, MAX_TICK - 1))
        prices += [ratio - 1, ratio, ratio + 1]
    prices += [MIN_SQRT_RATIO, MIN_SQRT_RATIO + 1, MAX_SQRT_RATIO - 1, 2**96 - 1, 2**96, 2**96 + 1]
    for price in prices:
        assert get_tick_at_sqrt_ratio_fast(price) == get_tick_at_sqrt_ratio(price), price
    for price in (0, MIN_SQRT_RATIO - 1, MAX_SQRT_RATIO, 2**160):
        with pytest.raises(InvalidSqrtPrice):
            get_tick_at_sqrt_ratio_fast(price)
