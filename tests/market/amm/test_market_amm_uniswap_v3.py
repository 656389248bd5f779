"""UniswapV3Pool.swap mirror: properties, price limits, tick-boundary starts, state handling, mint/burn.

The golden quoter/replay tests pin exact values; these tests pin behaviour: the swap loop is compared with a
literal transliteration of the contract's loop over a real bitmap on random pools, and contract-level properties
(exact-out/exact-in consistency, limits, liquidity bookkeeping) are checked on the real WBTC/WETH state.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from market.amm.errors import (
    AMMError,
    InvalidAmount,
    InvalidPoolState,
    InvalidPriceLimit,
    InvalidTick,
    Overflow,
)
from market.amm.liquidity_math import add_delta
from market.amm.sqrt_price_math import get_amount0_delta, get_amount1_delta
from market.amm.swap_math import compute_swap_step
from market.amm.tick_bitmap import build_bitmap, next_initialized_tick_within_one_word_bitmap
from market.amm.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)
from market.amm.uniswap_v3 import (
    SwapResult,
    V3PoolState,
    apply_liquidity_change,
    apply_swap,
    get_position_amounts,
    swap,
    swap_exact_input,
    swap_exact_output,
)
from tools.bench.v3_swaps import state_from_snapshot

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "golden" / "degenbot"
STATE = state_from_snapshot(
    json.loads((GOLDEN / "uniswap_v3_wbtc_weth_block_24407242.state.json").read_text())
)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_swap(state: V3PoolState, zero_for_one: bool, amount_specified: int, limit: int):
    """Line-by-line UniswapV3Pool.swap loop over a literal tick bitmap (the executable spec): every step, even
    one through an empty bitmap word with no liquidity, goes through ``compute_swap_step``.  Returns the pool's
    signed amounts, slot0, liquidity, the fees charged and the initialized ticks crossed."""
    bitmap = build_bitmap(state.ticks, state.tick_spacing)
    remaining, calculated = amount_specified, 0
    price, tick, liquidity = state.sqrt_price_x96, state.tick, state.liquidity
    exact_input = amount_specified > 0
    fees = crossed = 0
    while remaining != 0 and price != limit:
        start = price
        tick_next, initialized = next_initialized_tick_within_one_word_bitmap(
            bitmap, tick, state.tick_spacing, zero_for_one
        )
        tick_next = min(max(tick_next, MIN_TICK), MAX_TICK)
        price_next = get_sqrt_ratio_at_tick(tick_next)
        beyond = price_next < limit if zero_for_one else price_next > limit
        price, step_in, step_out, step_fee = compute_swap_step(
            price, limit if beyond else price_next, liquidity, remaining, state.fee
        )
        if exact_input:
            remaining -= step_in + step_fee
            calculated -= step_out
        else:
            remaining += step_out
            calculated += step_in + step_fee
        fees += step_fee
        if price == price_next:
            if initialized:
                net = state.ticks[tick_next]
                liquidity = add_delta(liquidity, -net if zero_for_one else net)
                crossed += 1
            tick = tick_next - 1 if zero_for_one else tick_next
        elif price != start:
            tick = get_tick_at_sqrt_ratio(price)
    if zero_for_one == exact_input:
        amount0, amount1 = amount_specified - remaining, calculated
    else:
        amount0, amount1 = calculated, amount_specified - remaining
    return amount0, amount1, price, tick, liquidity, fees, crossed


@st.composite
def random_pools(draw):
    spacing = draw(st.sampled_from([1, 10, 60, 200]))
    span = 1200  # compressed ticks either side of 0 -> several bitmap words
    positions = draw(
        st.lists(
            st.tuples(
                st.integers(-span, span),
                st.integers(1, 300),
                st.integers(1, 10**24),
            ),
            min_size=0,
            max_size=12,
        )
    )
    nets: dict[int, int] = {}
    for lower_c, width, liquidity in positions:
        lower, upper = lower_c * spacing, (lower_c + width) * spacing
        nets[lower] = nets.get(lower, 0) + liquidity
        nets[upper] = nets.get(upper, 0) - liquidity
    # a full-range position so the pool never runs dry mid-map
    full = draw(st.integers(0, 10**20))
    if full:
        lo, hi = -(MAX_TICK // spacing) * spacing, (MAX_TICK // spacing) * spacing
        nets[lo] = nets.get(lo, 0) + full
        nets[hi] = nets.get(hi, 0) - full
    tick = draw(st.integers(-span * spacing, span * spacing))
    price = draw(st.integers(get_sqrt_ratio_at_tick(tick), get_sqrt_ratio_at_tick(tick + 1) - 1))
    liquidity = sum(net for t, net in nets.items() if t <= tick)
    return V3PoolState(
        sqrt_price_x96=price,
        tick=tick,
        liquidity=liquidity,
        fee=draw(st.sampled_from([100, 500, 3000, 10000])),
        tick_spacing=spacing,
        ticks=nets,
    )


@FAST
@given(
    state=random_pools(),
    zero_for_one=st.booleans(),
    exact_in=st.booleans(),
    magnitude=st.integers(1, 30),
    mantissa=st.integers(1, 9),
    limit_ticks=st.one_of(st.none(), st.integers(1, 100_000)),
)
def test_matches_literal_contract_loop(state, zero_for_one, exact_in, magnitude, mantissa, limit_ticks):
    amount = mantissa * 10**magnitude
    if limit_ticks is None:
        limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    else:
        target_tick = state.tick - limit_ticks if zero_for_one else state.tick + limit_ticks
        limit = get_sqrt_ratio_at_tick(min(max(target_tick, MIN_TICK + 1), MAX_TICK - 1))
        assume(limit < state.sqrt_price_x96 if zero_for_one else limit > state.sqrt_price_x96)
    result = swap(state, zero_for_one, amount if exact_in else -amount, limit)
    amount0, amount1, price, tick, liquidity, fees, crossed = reference_swap(
        state, zero_for_one, amount if exact_in else -amount, limit
    )
    assert (result.amount0, result.amount1) == (amount0, amount1)
    assert (result.fee_amount, result.ticks_crossed) == (fees, crossed)
    assert (result.sqrt_price_x96, result.tick, result.liquidity) == (price, tick, liquidity)
    # the resulting slot0 is one the pool can hold
    apply_swap(state, result)
    dataclasses.replace(state, sqrt_price_x96=price, tick=tick, liquidity=liquidity)


@st.composite
def gapped_pools(draw):
    """Pools whose liquidity runs out: a few separate positions, no full-range one, the price anywhere (inside a
    position, in a gap between them, or beyond all of them), so swaps walk through ranges with no liquidity."""
    spacing = draw(st.sampled_from([1, 10, 60, 200]))
    span = 1500
    nets: dict[int, int] = {}
    for lower_c, width, liquidity in draw(st.lists(
        st.tuples(st.integers(-span, span), st.integers(1, 600), st.integers(1, 10**24)), max_size=6
    )):
        nets[lower_c * spacing] = nets.get(lower_c * spacing, 0) + liquidity
        nets[(lower_c + width) * spacing] = nets.get((lower_c + width) * spacing, 0) - liquidity
    tick = draw(st.integers(-(span + 700) * spacing, (span + 700) * spacing))
    low, high = get_sqrt_ratio_at_tick(tick), get_sqrt_ratio_at_tick(tick + 1)
    # the price on the tick's own ratio (a word boundary when the tick is one) or anywhere inside
    price = draw(st.one_of(st.just(low), st.integers(low, high - 1)))
    return V3PoolState(
        sqrt_price_x96=price,
        tick=tick,
        liquidity=sum(net for t, net in nets.items() if t <= tick),
        fee=draw(st.sampled_from([0, 100, 500, 3000, 10000])),
        tick_spacing=spacing,
        ticks={t: n for t, n in nets.items() if n},
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=gapped_pools(), zero_for_one=st.booleans(), exact_in=st.booleans(), data=st.data())
def test_fast_path_matches_literal_contract_loop_through_empty_ranges(state, zero_for_one, exact_in, data):
    """The swap loop's shortcuts -- inlined steps that reach their target, and the jump over ranges with no
    liquidity straight to the next initialized tick -- against the step-by-step contract loop, to the wei: amounts,
    fees, ticks crossed, slot0 and liquidity, including limits that fall exactly on a bitmap word boundary, on an
    initialized tick or between ticks."""
    spacing = state.tick_spacing
    word = 256 * spacing
    sign = -1 if zero_for_one else 1
    words_away = data.draw(st.integers(0, 12 if spacing > 1 else 3))
    kind = data.draw(st.sampled_from(["none", "word", "initialized", "tick", "between"]))
    if kind == "none" and spacing > 1:
        limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    elif kind == "initialized" and state.ticks:
        limit = get_sqrt_ratio_at_tick(data.draw(st.sampled_from(sorted(state.ticks))))
    else:
        if kind == "word":
            t = (state.tick // word + sign * words_away + (0 if zero_for_one else 1)) * word
        else:
            t = state.tick + sign * data.draw(st.integers(1, (words_away + 1) * word))
        t = min(max(t, MIN_TICK + 1), MAX_TICK - 1)
        limit = get_sqrt_ratio_at_tick(t)
        if kind == "between":
            limit = data.draw(st.integers(limit, get_sqrt_ratio_at_tick(min(t + 1, MAX_TICK)) - 1))
    assume(limit < state.sqrt_price_x96 if zero_for_one else limit > state.sqrt_price_x96)
    # up to the int256 bound: inputs whose price update overflows 256 bits take the contract's other formula
    amount = data.draw(st.one_of(st.integers(1, 10**30), st.integers(1, 2**255 - 1))) * (1 if exact_in else -1)
    try:
        result = swap(state, zero_for_one, amount, limit)
    except AMMError as exc:
        with pytest.raises(type(exc)):
            reference_swap(state, zero_for_one, amount, limit)
        return
    assert (result.amount0, result.amount1, result.sqrt_price_x96, result.tick, result.liquidity,
            result.fee_amount, result.ticks_crossed) == reference_swap(state, zero_for_one, amount, limit)


@pytest.mark.parametrize("zero_for_one", [True, False])
@pytest.mark.parametrize(("tick", "amount"), [(-300_000, 2**165), (0, 2**170 + 1), (870_000, 2**100)])
def test_fast_path_input_whose_price_update_overflows_256_bits(zero_for_one, tick, amount):
    """A deep full-range position and an input whose ``amount * sqrtP`` overflows 256 bits without reaching the
    target: the contract's other formula for the price (or SafeCast's revert), exactly as the literal loop.  Near
    the top of the price range the two formulas round apart by thousands of units."""
    # A wide spacing: one bitmap word spans the whole price range, so a single step covers prices far apart
    # (with the factory's spacings a step's input can never get this large).
    spacing = 16_000
    lo, hi = -(MAX_TICK // spacing) * spacing, (MAX_TICK // spacing) * spacing
    state = V3PoolState(sqrt_price_x96=get_sqrt_ratio_at_tick(tick) + 12345, tick=tick, liquidity=2**120, fee=3000,
                        tick_spacing=spacing, ticks={lo: 2**120, hi: -(2**120)})
    limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    try:
        result = swap(state, zero_for_one, amount, limit)
    except AMMError as exc:
        with pytest.raises(type(exc)):
            reference_swap(state, zero_for_one, amount, limit)
        return
    assert (result.amount0, result.amount1, result.sqrt_price_x96, result.tick, result.liquidity,
            result.fee_amount, result.ticks_crossed) == reference_swap(state, zero_for_one, amount, limit)
    assert result.amount_in == amount  # the price stopped inside the range: everything was taken


# --- properties on the real WBTC/WETH state --------------------------------------------------------------------

amounts_token0 = st.integers(min_value=1, max_value=5 * 10**10)  # up to ~500 WBTC (pool holds ~117)
amounts_token1 = st.integers(min_value=1, max_value=3 * 10**22)  # up to 30k WETH (pool holds ~19.5k)


@FAST
@given(zero_for_one=st.booleans(), data=st.data())
def test_exact_output_then_exact_input_consistency(zero_for_one, data):
    amount = data.draw(amounts_token0 if zero_for_one else amounts_token1)
    r_in = swap_exact_input(STATE, zero_for_one, amount)
    if r_in.amount_in == amount and r_in.amount_out > 0:
        # buying exactly what `amount` bought never costs more than `amount`
        r_out = swap_exact_output(STATE, zero_for_one, r_in.amount_out)
        assert r_out.amount_out == r_in.amount_out
        assert r_out.amount_in <= amount
    want = data.draw(amounts_token1 if zero_for_one else amounts_token0)
    r_out = swap_exact_output(STATE, zero_for_one, want)
    if r_out.amount_out == want:
        # paying the exact-output quote as an exact input buys at least as much
        assert swap_exact_input(STATE, zero_for_one, r_out.amount_in).amount_out >= want


@FAST
@given(zero_for_one=st.booleans(), data=st.data())
def test_output_is_monotonic_in_input(zero_for_one, data):
    a = data.draw(amounts_token0 if zero_for_one else amounts_token1)
    b = data.draw(amounts_token0 if zero_for_one else amounts_token1)
    lo, hi = sorted((a, b))
    assert (
        swap_exact_input(STATE, zero_for_one, lo).amount_out
        <= swap_exact_input(STATE, zero_for_one, hi).amount_out
    )


@FAST
@given(zero_for_one=st.booleans(), data=st.data())
def test_liquidity_and_crossed_tick_accounting(zero_for_one, data):
    amount = data.draw(amounts_token0 if zero_for_one else amounts_token1)
    result = swap_exact_input(STATE, zero_for_one, amount)
    if zero_for_one:
        crossed = [t for t in STATE.ticks if result.tick < t <= STATE.tick]
        expected_liquidity = STATE.liquidity - sum(STATE.ticks[t] for t in crossed)
    else:
        crossed = [t for t in STATE.ticks if STATE.tick < t <= result.tick]
        expected_liquidity = STATE.liquidity + sum(STATE.ticks[t] for t in crossed)
    assert result.ticks_crossed == len(crossed)
    assert result.liquidity == expected_liquidity
    assert (
        get_sqrt_ratio_at_tick(result.tick)
        <= result.sqrt_price_x96
        <= get_sqrt_ratio_at_tick(result.tick + 1)
    )
    assert result.amount_in - result.fee_amount > 0 or result.amount_out == 0


def test_swap_crossing_many_ticks_and_words():
    result = swap_exact_input(STATE, True, 10**12)  # 10,000 WBTC: takes nearly all of the pool's WETH
    assert result.ticks_crossed > 300
    assert STATE.tick - result.tick > 8 * 256 * STATE.tick_spacing  # several bitmap words
    back = swap_exact_input(apply_swap(STATE, result), False, result.amount_out)
    # selling the proceeds back pays two fees and cannot return to a higher price than the start
    assert back.amount_out < result.amount_in
    assert back.sqrt_price_x96 <= STATE.sqrt_price_x96


# --- price limits ------------------------------------------------------------------------------------------------


def test_price_limit_stops_swap_and_reports_consumed_amounts():
    limit = get_sqrt_ratio_at_tick(STATE.tick - 100)
    result = swap_exact_input(STATE, True, 10**12, limit)
    assert result.sqrt_price_x96 == limit
    # The limit is neither an initialized tick nor a word boundary, so the last step ends "inside" a range and
    # the tick is recomputed from the price (a step ending on its tick boundary would store tick - 1 instead).
    assert result.tick == STATE.tick - 100
    assert result.amount_in < 10**12
    # the same swap sized to exactly the consumed input does not go beyond the limit either
    again = swap_exact_input(STATE, True, result.amount_in, limit)
    assert again.amount_in == result.amount_in and again.amount_out == result.amount_out
    # exact output capped by the limit delivers less than asked
    capped = swap_exact_output(STATE, True, 10**24, limit)
    assert capped.sqrt_price_x96 == limit and capped.amount_out < 10**24
    assert capped.amount_out == result.amount_out


def test_invalid_price_limits():
    price = STATE.sqrt_price_x96
    for zero_for_one, limit in (
        (True, price),
        (True, price + 1),
        (True, MIN_SQRT_RATIO),
        (False, price),
        (False, price - 1),
        (False, MAX_SQRT_RATIO),
    ):
        with pytest.raises(InvalidPriceLimit):
            swap_exact_input(STATE, zero_for_one, 10**6, limit)


def test_invalid_amounts():
    with pytest.raises(InvalidAmount):
        swap(STATE, True, 0)
    for bad in (0, -1, 2**255):
        with pytest.raises(InvalidAmount):
            swap_exact_input(STATE, True, bad)
        with pytest.raises(InvalidAmount):
            swap_exact_output(STATE, True, bad)


# --- starting exactly on an initialized tick ---------------------------------------------------------------------


def _nearest_initialized_below(state: V3PoolState) -> int:
    return max(t for t in state.ticks if t <= state.tick)


@pytest.mark.parametrize("zero_for_one", [True, False])
@pytest.mark.parametrize("exact_in", [True, False])
def test_start_exactly_on_initialized_tick_both_representations_agree(zero_for_one, exact_in):
    t = _nearest_initialized_below(STATE)
    price = get_sqrt_ratio_at_tick(t)
    liquidity_above = sum(net for tick, net in STATE.ticks.items() if tick <= t)
    # arrived from above: tick t already crossed downwards, the pool stores t - 1
    from_above = dataclasses.replace(
        STATE, sqrt_price_x96=price, tick=t - 1, liquidity=liquidity_above - STATE.ticks[t]
    )
    # arrived from below (or initialized there): tick t, its liquidityNet included
    from_below = dataclasses.replace(STATE, sqrt_price_x96=price, tick=t, liquidity=liquidity_above)
    amount = (10**8 if zero_for_one else 10**19) if exact_in else (10**19 if zero_for_one else 10**8)
    fn = swap_exact_input if exact_in else swap_exact_output
    a, b = fn(from_above, zero_for_one, amount), fn(from_below, zero_for_one, amount)
    assert (a.amount_in, a.amount_out, a.sqrt_price_x96, a.tick, a.liquidity) == (
        b.amount_in,
        b.amount_out,
        b.sqrt_price_x96,
        b.tick,
        b.liquidity,
    )
    # exactly one of them has to cross t first (a zero-amount step)
    assert abs(a.ticks_crossed - b.ticks_crossed) == 1


def test_swap_ending_on_tick_then_continuing_does_not_recross():
    t = _nearest_initialized_below(STATE)
    first = swap_exact_input(STATE, True, 10**12, get_sqrt_ratio_at_tick(t))
    assert first.sqrt_price_x96 == get_sqrt_ratio_at_tick(t)
    assert first.tick == t - 1
    assert first.liquidity == STATE.liquidity - STATE.ticks[t]
    state = apply_swap(STATE, first)
    # going further down starts below t: liquidity is not touched again by t
    down = swap_exact_input(state, True, 1000)
    assert down.ticks_crossed == 0 and down.liquidity == state.liquidity
    # going back up crosses t first (zero-amount step) and restores the liquidity
    up = swap_exact_input(state, False, 10**15)
    assert up.ticks_crossed >= 1
    assert up.liquidity == STATE.liquidity or up.tick > max(x for x in STATE.ticks if x <= STATE.tick)


# --- state object --------------------------------------------------------------------------------------------------


def test_state_is_immutable_and_apply_swap_returns_new_state():
    with pytest.raises(dataclasses.FrozenInstanceError):
        STATE.tick = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        STATE.ticks[0] = 1  # type: ignore[index]
    before = (STATE.sqrt_price_x96, STATE.tick, STATE.liquidity, dict(STATE.ticks))
    result = swap_exact_input(STATE, True, 10**8)
    new = apply_swap(STATE, result)
    assert (STATE.sqrt_price_x96, STATE.tick, STATE.liquidity, dict(STATE.ticks)) == before
    assert (new.sqrt_price_x96, new.tick, new.liquidity) == (
        result.sqrt_price_x96,
        result.tick,
        result.liquidity,
    )
    assert new.ticks is STATE.ticks  # immutable, so shared
    assert len({STATE, new, apply_swap(STATE, result)}) == 2  # hashable, equal states hash equal
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.amount_in = 0  # type: ignore[misc]


def test_constructor_copies_input_mapping():
    ticks = {-60: 10, 60: -10}
    state = V3PoolState(sqrt_price_x96=2**96, tick=0, liquidity=10, fee=3000, tick_spacing=60, ticks=ticks)
    ticks[120] = 5
    assert 120 not in state.ticks and state.sorted_ticks == (-60, 60)


@pytest.mark.parametrize(
    "changes",
    [
        {"tick_spacing": 0},
        {"tick_spacing": 16384},
        {"fee": 1_000_000},
        {"fee": -1},
        {"liquidity": -1},
        {"liquidity": 2**128},
        {"tick": MAX_TICK + 1},
        {"sqrt_price_x96": MIN_SQRT_RATIO - 1},
        {"sqrt_price_x96": MAX_SQRT_RATIO},
        {"tick": 5},  # inconsistent with price 2**96 (tick 0)
        {"tick": -2},
        {"ticks": {61: 1}},  # not a multiple of the spacing
        {"ticks": {MAX_TICK + 60 - MAX_TICK % 60: 1}},
        {"ticks": {60: 2**127}},
        {"liquidity_gross": {60: 5}},  # keys differ from ticks
        {"ticks": {60: 7}, "liquidity_gross": {60: 5}},  # |net| > gross
    ],
)
def test_constructor_validation(changes):
    base = {"sqrt_price_x96": 2**96, "tick": 0, "liquidity": 0, "fee": 3000, "tick_spacing": 60, "ticks": {}}
    base.update(changes)
    with pytest.raises(InvalidPoolState):
        V3PoolState(**base)


def test_tick_below_price_on_boundary_is_accepted():
    # price exactly at ratio(t) with stored tick t - 1: the state right after a downward swap ending on t
    state = V3PoolState(sqrt_price_x96=2**96, tick=-1, liquidity=0, fee=3000, tick_spacing=60, ticks={})
    assert state.tick == -1


# --- mint / burn ---------------------------------------------------------------------------------------------------


def test_mint_then_burn_round_trip_with_gross_tracking():
    lower, upper, delta = STATE.tick - STATE.tick % 60 - 600, STATE.tick - STATE.tick % 60 + 600, 10**15
    minted = apply_liquidity_change(STATE, lower, upper, delta)
    assert minted.liquidity == STATE.liquidity + delta
    assert minted.ticks[lower] == STATE.ticks.get(lower, 0) + delta
    assert minted.ticks[upper] == STATE.ticks.get(upper, 0) - delta
    assert (
        minted.liquidity_gross is not None
        and minted.liquidity_gross[lower] == STATE.liquidity_gross.get(lower, 0) + delta
    )
    burned = apply_liquidity_change(minted, lower, upper, -delta)
    assert burned == STATE
    assert STATE.liquidity == sum(net for t, net in STATE.ticks.items() if t <= STATE.tick)  # untouched


def test_mint_out_of_range_does_not_change_active_liquidity_until_crossed():
    base = STATE.tick - STATE.tick % 60
    lower, upper = base + 60, base + 2400
    minted = apply_liquidity_change(STATE, lower, upper, 10**18)
    assert minted.liquidity == STATE.liquidity
    before, after = swap_exact_input(STATE, False, 10**21), swap_exact_input(minted, False, 10**21)
    assert before.tick > lower
    assert after.amount_out > before.amount_out  # the new range adds depth once the price gets there


def test_tick_shared_by_two_positions_stays_initialized_with_zero_net():
    state = V3PoolState(
        sqrt_price_x96=2**96, tick=0, liquidity=0, fee=3000, tick_spacing=60, ticks={}, liquidity_gross={}
    )
    state = apply_liquidity_change(state, -120, 60, 5)
    state = apply_liquidity_change(state, 60, 180, 5)
    assert state.ticks[60] == 0 and state.liquidity_gross[60] == 10  # initialized, net 0
    assert state.sorted_ticks == (-120, 60, 180)
    state = apply_liquidity_change(state, -120, 60, -5)
    assert state.ticks == {60: 5, 180: -5}
    # without gross tracking the same sequence drops a tick when its net returns to 0 (documented approximation)
    untracked = V3PoolState(sqrt_price_x96=2**96, tick=0, liquidity=0, fee=3000, tick_spacing=60, ticks={})
    untracked = apply_liquidity_change(untracked, -120, 60, 5)
    untracked = apply_liquidity_change(untracked, -120, 60, -5)
    assert dict(untracked.ticks) == {}


def test_liquidity_change_reverts():
    state = V3PoolState(
        sqrt_price_x96=2**96, tick=0, liquidity=0, fee=3000, tick_spacing=60, ticks={}, liquidity_gross={}
    )
    for lower, upper in ((60, 60), (120, 60)):
        with pytest.raises(InvalidTick, match="TLU"):
            apply_liquidity_change(state, lower, upper, 1)
    with pytest.raises(InvalidTick, match="TLM"):
        apply_liquidity_change(state, MIN_TICK - 1, 0, 1)
    with pytest.raises(InvalidTick, match="TUM"):
        apply_liquidity_change(state, 0, MAX_TICK + 1, 1)
    with pytest.raises(InvalidTick):
        apply_liquidity_change(state, 0, 61, 1)
    with pytest.raises(Overflow, match="LO"):
        apply_liquidity_change(state, -60, 60, 11505743598341114571880798222544995)
    with pytest.raises(AMMError, match="LS"):
        apply_liquidity_change(state, -60, 60, -1)
    assert apply_liquidity_change(state, -60, 60, 0) is state


def test_position_amounts():
    price = STATE.sqrt_price_x96
    base = STATE.tick - STATE.tick % 60
    below, inside, above = (base - 600, base - 60), (base - 60, base + 60), (base + 120, base + 600)
    a0, a1 = get_position_amounts(STATE, *inside, 10**15)
    assert a0 == get_amount0_delta(price, get_sqrt_ratio_at_tick(inside[1]), 10**15, True) and a0 > 0
    assert a1 == get_amount1_delta(get_sqrt_ratio_at_tick(inside[0]), price, 10**15, True) and a1 > 0
    b0, b1 = get_position_amounts(STATE, *inside, -(10**15))
    assert 0 <= a0 + b0 <= 1 and 0 <= a1 + b1 <= 1  # mint rounds up, burn rounds down
    assert get_position_amounts(STATE, *below, 10**15)[0] == 0  # range below price: token1 only
    assert get_position_amounts(STATE, *above, 10**15)[1] == 0  # range above price: token0 only
    assert get_position_amounts(STATE, *inside, 0) == (0, 0)


def test_swap_result_has_every_field_set():
    """swap() builds its SwapResult through the slots, past the generated __init__: every field must be set,
    and equal to what the dataclass's own constructor makes of the same values."""
    for zero_for_one, amount in ((True, 10**18), (False, -(10**6))):
        r = swap(STATE, zero_for_one, amount)
        values = {f.name: getattr(r, f.name) for f in dataclasses.fields(SwapResult)}
        assert SwapResult(**values) == r
        assert r.zero_for_one is zero_for_one and r.amount_in > 0 and r.amount_out > 0
