"""Uniswap V4 mirror: PoolKey/PoolId, hook permissions and admission, fee libraries, SwapMath and Pool.swap.

Exactness against the deployed PoolManager is in the devnet tests; here the swap loop is checked against a literal
transliteration of ``Pool.swap`` over a real bitmap (with protocol fees), against our V3 mirror (V4 without a
protocol fee moves the same amounts as V3 at the same fee, step by step), and the libraries against hand values.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from market.amm import hooks as H
from market.amm import uniswap_v3 as v3
from market.amm.errors import InvalidAmount, InvalidPoolState, InvalidPriceLimit, InvalidTick, Overflow
from market.amm.liquidity_math import add_delta
from market.amm.liquidity_math import tick_spacing_to_max_liquidity_per_tick as v3_max_liquidity
from market.amm.lp_fee_library import DYNAMIC_FEE_FLAG, get_initial_lp_fee, is_dynamic_fee
from market.amm.pool_key import PoolKey, admission
from market.amm.protocol_fee_library import (
    calculate_swap_fee,
    get_one_for_zero_fee,
    get_zero_for_one_fee,
    is_valid_protocol_fee,
)
from market.amm.swap_math import compute_swap_step as v3_step
from market.amm.swap_math_v4 import compute_swap_step, get_sqrt_price_target
from market.amm.tick_bitmap import build_bitmap, next_initialized_tick_within_one_word_bitmap
from market.amm.tick_math import MAX_TICK, MIN_TICK, get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio
from market.amm.uniswap_v4 import (
    MAX_SQRT_PRICE,
    MIN_SQRT_PRICE,
    V4PoolState,
    V4SwapResult,
    apply_liquidity_change,
    apply_swap,
    get_position_delta,
    swap,
    swap_exact_input,
    swap_exact_output,
    tick_spacing_to_max_liquidity_per_tick,
)
from protocol.ids import PoolId, VenueKind

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
A, B = "0x" + "11" * 20, "0x" + "22" * 20


# --- PoolKey / PoolId ------------------------------------------------------------------------------------------


def test_pool_id_matches_mainnet_eth_usdc_pool():
    # The ETH/USDC 0.05 % pool of the mainnet PoolManager, id as published by Uniswap and used across integrations.
    key = PoolKey.of("0x" + "00" * 20, USDC, 500, 10)
    assert key.to_id().hex() == "21c67e77068de97969ba93d4aab21826d33ca12bb9f565d8496e8fda8a82ca27"
    pid = key.instrument_id(1, 7)
    assert isinstance(pid, PoolId) and pid.kind == VenueKind.UNISWAP_V4
    assert pid.address == "0x21c67e77068de97969ba93d4aab21826d33ca12b"
    assert pid.token0.address == "0x" + "00" * 20 and pid.token1.address == USDC


def test_pool_key_encoding_sign_extends_tick_spacing_and_ids_differ_by_every_field():
    key = PoolKey.of(A, B, 3000, 60)
    assert key.encode()[96:128] == (60).to_bytes(32, "big")
    neg = PoolKey(currency0=1, currency1=2, fee=0, tick_spacing=-1, hooks=0)
    assert neg.encode()[96:128] == b"\xff" * 32
    ids = {k.to_id() for k in (key, PoolKey.of(A, B, 500, 60), PoolKey.of(A, B, 3000, 10),
                               PoolKey.of(A, B, 3000, 60, "0x" + "00" * 18 + "00c0"))}
    assert len(ids) == 4


def test_pool_key_validation_mirrors_initialize():
    assert PoolKey.of(A, B, 3000, 60).validate() == 3000
    assert PoolKey.of(A, B, DYNAMIC_FEE_FLAG, 60, "0x" + "00" * 19 + "80").validate() == 0
    for key, reason in [
        (PoolKey.of(B, A, 3000, 60), "CurrenciesOutOfOrderOrEqual"),
        (PoolKey.of(A, A, 3000, 60), "CurrenciesOutOfOrderOrEqual"),
        (PoolKey.of(A, B, 3000, 0), "TickSpacingTooSmall"),
        (PoolKey.of(A, B, 3000, 32768), "TickSpacingTooLarge"),
        (PoolKey.of(A, B, 1_000_001, 60), "LPFeeTooLarge"),
        (PoolKey.of(A, B, DYNAMIC_FEE_FLAG, 60), "HookAddressNotValid"),  # dynamic fee needs a hook
        (PoolKey.of(A, B, 3000, 60, "0x" + "00" * 18 + "4000"), "HookAddressNotValid"),  # a hook without flags
        (PoolKey.of(A, B, 3000, 60, "0x" + "00" * 19 + "08"), "HookAddressNotValid"),  # delta flag, no action
    ]:
        with pytest.raises(InvalidPoolState, match=reason):
            key.validate()
    assert PoolKey.of(A, B, 1_000_000, 1).validate() == 1_000_000
    assert PoolKey.of(A, B, 0, 32767).validate() == 0


# --- hooks and admission ---------------------------------------------------------------------------------------


def test_permissions_decoded_from_address_bits():
    p = H.get_permissions(int("0x" + "ab" * 18 + "3fff", 16))
    assert all(getattr(p, f) for f in p.__slots__)
    p = H.get_permissions(H.BEFORE_SWAP_FLAG | H.AFTER_SWAP_FLAG | (0xDEAD << 16))
    assert p.before_swap and p.after_swap and not p.can_change_swap_amounts
    assert not (p.before_initialize or p.before_donate or p.after_add_liquidity)
    assert H.get_permissions(H.BEFORE_SWAP_FLAG | H.BEFORE_SWAP_RETURNS_DELTA_FLAG).can_change_swap_amounts
    assert H.get_permissions(H.AFTER_SWAP_FLAG | H.AFTER_SWAP_RETURNS_DELTA_FLAG).can_change_swap_amounts
    # liquidity return deltas change LP amounts, not swaps
    assert not H.get_permissions(0x3FFF & ~(H.BEFORE_SWAP_RETURNS_DELTA_FLAG | H.AFTER_SWAP_RETURNS_DELTA_FLAG)
                                 ).can_change_swap_amounts
    assert H.has_permission(1 << 13, H.BEFORE_INITIALIZE_FLAG) and H.ALL_HOOK_MASK == 0x3FFF


def test_admission_refuses_amount_changing_hooks_and_dynamic_fees_with_a_reason():
    observer = "0x" + "5a" * 18 + "00c0"  # beforeSwap + afterSwap only
    assert admission(PoolKey.of(A, B, 3000, 60)) is None
    assert admission(PoolKey.of(A, B, 3000, 60, observer)) is None
    assert admission(PoolKey.of(A, B, 3000, 60, "0x" + "00" * 18 + "0f00")) is None  # liquidity hooks only
    before_delta = PoolKey.of(A, B, 3000, 60, "0x" + "00" * 18 + "0088")
    after_delta = PoolKey.of(A, B, 3000, 60, "0x" + "00" * 18 + "0044")
    both = PoolKey.of(A, B, 3000, 60, "0x" + "00" * 18 + "00cc")
    assert "beforeSwapReturnDelta" in admission(before_delta)
    assert "afterSwapReturnDelta" in admission(after_delta)
    assert "beforeSwapReturnDelta, afterSwapReturnDelta" in admission(both)
    assert "dynamic LP fee" in admission(PoolKey.of(A, B, DYNAMIC_FEE_FLAG, 60, observer))
    assert "invalid pool key" in admission(PoolKey.of(B, A, 3000, 60))


# --- fee libraries ---------------------------------------------------------------------------------------------


def test_lp_and_protocol_fee_libraries():
    assert is_dynamic_fee(0x800000) and not is_dynamic_fee(0x800001) and not is_dynamic_fee(3000)
    assert get_initial_lp_fee(DYNAMIC_FEE_FLAG) == 0 and get_initial_lp_fee(500) == 500
    with pytest.raises(InvalidPoolState, match="LPFeeTooLarge"):
        get_initial_lp_fee(0x800001)
    packed = (700 << 12) | 250
    assert get_zero_for_one_fee(packed) == 250 and get_one_for_zero_fee(packed) == 700
    assert is_valid_protocol_fee((1000 << 12) | 1000) and is_valid_protocol_fee(0)
    assert not is_valid_protocol_fee(1001) and not is_valid_protocol_fee(1001 << 12)
    # protocolFee + lpFee - floor(protocolFee * lpFee / 1e6)
    assert calculate_swap_fee(1000, 3000) == 3997
    assert calculate_swap_fee(250, 500) == 750  # 125000 / 1e6 truncates to 0
    assert calculate_swap_fee(1000, 1_000_000) == 1_000_000
    assert calculate_swap_fee(0, 3000) == 3000 and calculate_swap_fee(999, 0) == 999


def test_max_liquidity_per_tick_floors_the_minimum_tick():
    # 887272 = 60 * 14787 + 52: V4 counts 14788 ticks below zero, V3 14787
    assert tick_spacing_to_max_liquidity_per_tick(60) == (2**128 - 1) // (14787 + 14788 + 1)
    assert v3_max_liquidity(60) == (2**128 - 1) // (2 * 14787 + 1)
    assert tick_spacing_to_max_liquidity_per_tick(1) == v3_max_liquidity(1)  # 887272 divides by 1
    assert tick_spacing_to_max_liquidity_per_tick(32767) == (2**128 - 1) // (27 + 28 + 1)


# --- SwapMath ---------------------------------------------------------------------------------------------------


@FAST
@given(
    price_tick=st.integers(-200_000, 200_000),
    target_ticks=st.integers(-5000, 5000).filter(bool),
    liquidity=st.integers(1, 10**30),
    amount=st.integers(1, 10**30),
    fee=st.sampled_from([0, 1, 100, 500, 3000, 3997, 10000, 500_000, 999_999]),
    exact_in=st.booleans(),
)
def test_step_moves_the_same_amounts_as_v3(price_tick, target_ticks, liquidity, amount, fee, exact_in):
    cur = get_sqrt_ratio_at_tick(price_tick)
    tgt = get_sqrt_ratio_at_tick(max(MIN_TICK, min(MAX_TICK, price_tick + target_ticks)))
    assume(cur != tgt)
    n4, in4, out4, fee4 = compute_swap_step(cur, tgt, liquidity, -amount if exact_in else amount, fee)
    n3, in3, out3, fee3 = v3_step(cur, tgt, liquidity, amount if exact_in else -amount, fee)
    assert (n4, out4) == (n3, out3)
    if exact_in:
        assert in4 + fee4 == in3 + fee3 and in4 + fee4 <= amount
        assert in4 >= in3  # V4 keeps amountRemainingLessFee as the input, V3 recomputes it from the prices
    else:
        assert (in4, fee4) == (in3, fee3) and out4 <= amount


def test_step_full_fee_and_price_target():
    cur, tgt = get_sqrt_ratio_at_tick(0), get_sqrt_ratio_at_tick(-60)
    assert compute_swap_step(cur, tgt, 10**18, -12345, 1_000_000) == (cur, 0, 0, 12345)
    assert get_sqrt_price_target(True, 5, 7) == 7 and get_sqrt_price_target(True, 9, 7) == 9
    assert get_sqrt_price_target(False, 5, 7) == 5 and get_sqrt_price_target(False, 9, 7) == 7


# --- Pool.swap --------------------------------------------------------------------------------------------------


def reference_swap(state: V4PoolState, zero_for_one: bool, amount_specified: int, limit: int):
    """Line-by-line Pool.swap (v4-core 1.0.x) over a literal tick bitmap, protocol fee included."""
    bitmap = build_bitmap(state.ticks, state.tick_spacing)
    protocol = get_zero_for_one_fee(state.protocol_fee) if zero_for_one else get_one_for_zero_fee(
        state.protocol_fee)
    swap_fee = state.lp_fee if protocol == 0 else calculate_swap_fee(protocol, state.lp_fee)
    remaining, calculated, to_protocol = amount_specified, 0, 0
    price, tick, liquidity = state.sqrt_price_x96, state.tick, state.liquidity
    while not (remaining == 0 or price == limit):
        start = price
        tick_next, initialized = next_initialized_tick_within_one_word_bitmap(
            bitmap, tick, state.tick_spacing, zero_for_one)
        tick_next = min(max(tick_next, MIN_TICK), MAX_TICK)
        price_next = get_sqrt_ratio_at_tick(tick_next)
        price, step_in, step_out, step_fee = compute_swap_step(
            price, get_sqrt_price_target(zero_for_one, price_next, limit), liquidity, remaining, swap_fee)
        if amount_specified > 0:
            remaining -= step_out
            calculated -= step_in + step_fee
        else:
            remaining += step_in + step_fee
            calculated += step_out
        if protocol > 0:
            delta = step_fee if swap_fee == protocol else (step_in + step_fee) * protocol // 1_000_000
            to_protocol += delta
        if price == price_next:
            if initialized:
                net = state.ticks[tick_next]
                liquidity = add_delta(liquidity, -net if zero_for_one else net)
            tick = tick_next - 1 if zero_for_one else tick_next
        elif price != start:
            tick = get_tick_at_sqrt_ratio(price)
    if zero_for_one != (amount_specified < 0):
        amount0, amount1 = calculated, amount_specified - remaining
    else:
        amount0, amount1 = amount_specified - remaining, calculated
    return amount0, amount1, price, tick, liquidity, to_protocol


ANY_LP_FEE = st.sampled_from([0, 100, 500, 3000, 10000, 77_777])
ANY_PROTOCOL_FEE = st.integers(0, 1000)


@st.composite
def random_pools(draw, lp_fees=ANY_LP_FEE, protocol_fees=ANY_PROTOCOL_FEE):
    spacing = draw(st.sampled_from([1, 10, 60, 200, 32767]))
    span = 1200 if spacing < 1000 else 27
    nets: dict[int, int] = {}
    for lower_c, width, liquidity in draw(st.lists(
            st.tuples(st.integers(-span, span), st.integers(1, 300), st.integers(1, 10**24)), max_size=12)):
        lower, upper = lower_c * spacing, min(lower_c + width, span) * spacing
        if lower >= upper:
            continue
        nets[lower] = nets.get(lower, 0) + liquidity
        nets[upper] = nets.get(upper, 0) - liquidity
    full = draw(st.integers(0, 10**20))
    if full:
        lo, hi = (MIN_TICK // spacing + 1) * spacing, (MAX_TICK // spacing) * spacing
        nets[lo] = nets.get(lo, 0) + full
        nets[hi] = nets.get(hi, 0) - full
    nets = {t: n for t, n in nets.items() if n}
    bound = min(span * spacing, MAX_TICK - 1)
    tick = draw(st.integers(-bound, bound))
    if draw(st.booleans()) and nets:  # start exactly on an initialized tick
        tick = draw(st.sampled_from(sorted(nets)))
        tick = min(max(tick, MIN_TICK), MAX_TICK - 1)
        price = get_sqrt_ratio_at_tick(tick)
    else:
        price = draw(st.integers(get_sqrt_ratio_at_tick(tick), get_sqrt_ratio_at_tick(tick + 1) - 1))
    liquidity = sum(net for t, net in nets.items() if t <= tick)
    return V4PoolState(
        sqrt_price_x96=price, tick=tick, liquidity=liquidity, lp_fee=draw(lp_fees), tick_spacing=spacing,
        ticks=nets, protocol_fee=(draw(protocol_fees) << 12) | draw(protocol_fees),
    )


swaps = dict(
    zero_for_one=st.booleans(),
    exact_in=st.booleans(),
    magnitude=st.integers(1, 30),
    mantissa=st.integers(1, 9),
    limit_ticks=st.one_of(st.none(), st.integers(1, 100_000)),
)


def _limit(state, zero_for_one, limit_ticks):
    if limit_ticks is None:
        return MIN_SQRT_PRICE + 1 if zero_for_one else MAX_SQRT_PRICE - 1
    target = state.tick - limit_ticks if zero_for_one else state.tick + limit_ticks
    limit = get_sqrt_ratio_at_tick(min(max(target, MIN_TICK + 1), MAX_TICK - 1))
    assume(limit < state.sqrt_price_x96 if zero_for_one else limit > state.sqrt_price_x96)
    return limit


@FAST
@given(state=random_pools(), **swaps)
def test_matches_literal_pool_swap(state, zero_for_one, exact_in, magnitude, mantissa, limit_ticks):
    amount = mantissa * 10**magnitude
    limit = _limit(state, zero_for_one, limit_ticks)
    try:
        result = swap(state, zero_for_one, -amount if exact_in else amount, limit)
    except Overflow:  # a total beyond int128: the reference must agree that it is that large
        a0, a1, *_ = reference_swap(state, zero_for_one, -amount if exact_in else amount, limit)
        assert max(abs(a0), abs(a1)) >= 2**127
        return
    a0, a1, price, tick, liquidity, to_protocol = reference_swap(
        state, zero_for_one, -amount if exact_in else amount, limit)
    assert (result.amount0, result.amount1) == (a0, a1)
    assert (result.sqrt_price_x96, result.tick, result.liquidity) == (price, tick, liquidity)
    assert result.amount_to_protocol == to_protocol
    assert result.amount_in >= 0 and result.amount_out >= 0
    if exact_in:
        assert result.amount_in <= amount
    else:
        assert result.amount_out <= amount
    apply_swap(state, result)


@FAST
@given(state=random_pools(lp_fees=st.sampled_from([100, 500, 3000, 10000]), protocol_fees=st.just(0)), **swaps)
def test_without_protocol_fee_matches_our_v3_mirror(state, zero_for_one, exact_in, magnitude, mantissa,
                                                    limit_ticks):
    assume(state.tick_spacing < 16384)
    amount = mantissa * 10**magnitude
    limit = _limit(state, zero_for_one, limit_ticks)
    s3 = v3.V3PoolState(sqrt_price_x96=state.sqrt_price_x96, tick=state.tick, liquidity=state.liquidity,
                        fee=state.lp_fee, tick_spacing=state.tick_spacing, ticks=state.ticks)
    r3 = v3.swap(s3, zero_for_one, amount if exact_in else -amount, limit)
    try:
        r4 = swap(state, zero_for_one, -amount if exact_in else amount, limit)
    except Overflow:
        assert max(r3.amount_in, r3.amount_out) >= 2**127
        return
    assert (r4.amount_in, r4.amount_out) == (r3.amount_in, r3.amount_out)
    assert (r4.sqrt_price_x96, r4.tick, r4.liquidity, r4.ticks_crossed) == (
        r3.sqrt_price_x96, r3.tick, r3.liquidity, r3.ticks_crossed)


@FAST
@given(state=random_pools(protocol_fees=st.integers(1, 1000)), **swaps)
def test_protocol_fee_runs_the_swap_at_the_combined_fee(state, zero_for_one, exact_in, magnitude, mantissa,
                                                        limit_ticks):
    amount = mantissa * 10**magnitude
    limit = _limit(state, zero_for_one, limit_ticks)
    combined = V4PoolState(sqrt_price_x96=state.sqrt_price_x96, tick=state.tick, liquidity=state.liquidity,
                           lp_fee=state.swap_fee(zero_for_one), tick_spacing=state.tick_spacing, ticks=state.ticks)
    try:
        with_protocol = swap(state, zero_for_one, -amount if exact_in else amount, limit)
        plain = swap(combined, zero_for_one, -amount if exact_in else amount, limit)
    except Overflow:
        return
    assert (with_protocol.amount0, with_protocol.amount1) == (plain.amount0, plain.amount1)
    assert with_protocol.fee_amount + with_protocol.amount_to_protocol == plain.fee_amount
    assert with_protocol.swap_fee == combined.lp_fee > state.lp_fee or state.lp_fee == 1_000_000


def _pool(**kw):
    nets = {-600: 10**20, 600: -10**20, -887220: 10**18, 887220: -10**18}
    base = dict(sqrt_price_x96=get_sqrt_ratio_at_tick(0), tick=0, liquidity=10**20 + 10**18, lp_fee=3000,
                tick_spacing=60, ticks=nets)
    base.update(kw)
    return V4PoolState(**base)


def test_reverts_where_the_pool_manager_does():
    pool = _pool()
    with pytest.raises(InvalidAmount, match="SwapAmountCannotBeZero"):
        swap(pool, True, 0)
    with pytest.raises(InvalidAmount, match="InvalidFeeForExactOut"):
        swap(_pool(lp_fee=1_000_000), True, 10)
    swap(_pool(lp_fee=1_000_000), True, -10)  # exact input at 100 % is allowed: all fee
    with pytest.raises(InvalidPriceLimit, match="PriceLimitAlreadyExceeded"):
        swap(pool, True, -10, pool.sqrt_price_x96)
    with pytest.raises(InvalidPriceLimit, match="PriceLimitAlreadyExceeded"):
        swap(pool, False, -10, pool.sqrt_price_x96 - 1)
    with pytest.raises(InvalidPriceLimit, match="PriceLimitOutOfBounds"):
        swap(pool, True, -10, MIN_SQRT_PRICE)
    with pytest.raises(InvalidPriceLimit, match="PriceLimitOutOfBounds"):
        swap(pool, False, -10, MAX_SQRT_PRICE)
    with pytest.raises(Overflow, match="SafeCastOverflow"):
        swap(_pool(liquidity=2**127, ticks={}), True, -(2**200))
    for bad in (dict(lp_fee=1_000_001), dict(protocol_fee=1001), dict(tick_spacing=32768), dict(tick=5)):
        with pytest.raises(InvalidPoolState):
            _pool(**bad)


def test_full_fee_exact_input_takes_everything_and_moves_nothing():
    r = swap(_pool(lp_fee=1_000_000), True, -10**6)
    assert (r.amount0, r.amount1, r.fee_amount) == (-10**6, 0, 10**6)
    assert r.sqrt_price_x96 == get_sqrt_ratio_at_tick(0)


@pytest.mark.parametrize("zero_for_one", [True, False])
@pytest.mark.parametrize("protocol_fee", [0, (1000 << 12) | 1000])
def test_full_fee_swap_starting_on_an_initialized_tick_matches_the_literal_pool(zero_for_one, protocol_fee):
    """At a 100 % fee the first step, from a price sitting exactly on an initialized tick, reaches its target
    with zero amounts and crosses the tick; then all the input is fee."""
    # where a swap up to tick 600 / down to tick -600 leaves the pool: the stored tick 600 / -601
    edge = 600 if zero_for_one else -600
    start = _pool(lp_fee=1_000_000, protocol_fee=protocol_fee, sqrt_price_x96=get_sqrt_ratio_at_tick(edge),
                  tick=600 if zero_for_one else -601, liquidity=10**18)
    r = swap(start, zero_for_one, -(10**6))
    limit = MIN_SQRT_PRICE + 1 if zero_for_one else MAX_SQRT_PRICE - 1
    assert (r.amount0, r.amount1, r.sqrt_price_x96, r.tick, r.liquidity, r.amount_to_protocol) == reference_swap(
        start, zero_for_one, -(10**6), limit)
    assert r.ticks_crossed == 1 and r.amount_in == 10**6 and r.amount_out == 0
    assert r.fee_amount + r.amount_to_protocol == 10**6


def test_exact_in_and_out_helpers_and_balance_delta_signs():
    pool = _pool(protocol_fee=(300 << 12) | 200)
    r = swap_exact_input(pool, True, 10**18)
    assert r.amount0 == -10**18 and r.amount1 > 0 and r.amount_in == 10**18 and r.amount_out == r.amount1
    assert r.amount_to_protocol == pytest.approx(10**18 * 200 // 10**6, abs=5)
    back = swap_exact_output(pool, True, r.amount_out)
    assert back.amount_out == r.amount_out and back.amount_in <= 10**18
    up = swap_exact_input(pool, False, 10**18)
    assert up.amount1 == -10**18 and up.amount0 > 0 and up.swap_fee == calculate_swap_fee(300, 3000)
    # crossing: a big swap leaves the [-600, 600) range
    big = swap_exact_input(pool, True, 10**21)
    assert big.tick < -600 and big.ticks_crossed == 1 and big.liquidity == 10**18
    with pytest.raises(InvalidAmount):
        swap_exact_input(pool, True, 0)


def test_stored_tick_after_ending_on_a_tick_downwards():
    pool = _pool()
    limit = get_sqrt_ratio_at_tick(-600)
    r = swap(pool, True, -(10**30), limit)
    assert r.sqrt_price_x96 == limit and r.tick == -601 and r.liquidity == 10**18
    after = apply_swap(pool, r)
    # the next swap starts on the initialized tick without crossing it again
    r2 = swap(after, False, -(10**6))
    assert r2.ticks_crossed == 1 and r2.liquidity == 10**20 + 10**18


def test_modify_liquidity_bookkeeping_and_deltas():
    pool = _pool(liquidity_gross={-600: 10**20, 600: 10**20, -887220: 10**18, 887220: 10**18})
    added = apply_liquidity_change(pool, -120, 120, 5 * 10**18)
    assert added.liquidity == pool.liquidity + 5 * 10**18
    assert added.ticks[-120] == 5 * 10**18 and added.ticks[120] == -5 * 10**18
    assert apply_liquidity_change(added, -120, 120, -5 * 10**18) == pool
    assert apply_liquidity_change(pool, 600, 1200, 10**18).liquidity == pool.liquidity  # out of range
    assert apply_liquidity_change(pool, -120, 120, 0) is pool
    a0, a1 = get_position_delta(pool, -120, 120, 10**18)
    assert a0 < 0 and a1 < 0  # the caller pays both currencies in range
    r0, r1 = get_position_delta(pool, -120, 120, -(10**18))
    assert 0 < r0 <= -a0 and 0 < r1 <= -a1  # removing rounds down
    assert get_position_delta(pool, 120, 240, 10**18)[1] == 0
    for lo, hi, reason in ((120, 120, "TicksMisordered"), (MIN_TICK - 60, 0, "TickLowerOutOfBounds"),
                           (0, MAX_TICK + 60, "TickUpperOutOfBounds"), (-50, 60, "TickMisaligned")):
        with pytest.raises(InvalidTick, match=reason):
            apply_liquidity_change(pool, lo, hi, 1)
    with pytest.raises(Overflow, match="TickLiquidityOverflow"):
        apply_liquidity_change(pool, -120, 120, tick_spacing_to_max_liquidity_per_tick(60) + 1)


@pytest.mark.parametrize("zero_for_one", [True, False])
@pytest.mark.parametrize("limit_tick", [None, -30720, 30720, -30720 + 7, 30720 - 5, -46080, 40_000])
@pytest.mark.parametrize("exact_in", [True, False])
def test_a_walk_through_empty_words_jumps_and_matches_the_word_by_word_pool(zero_for_one, limit_tick, exact_in):
    """Liquidity only around the price and far away: an amount that drains it walks through dozens of empty
    bitmap words. The mirror jumps them in one step (nothing but the price moves there) and must end where
    the contract's word-by-word walk does -- amounts, price, the stored tick (a limit exactly on a word
    boundary going down stores the tick below it) and the liquidity past the far position."""
    nets = {-600: 10**20, 600: -10**20, -60_000: 10**15, -45_000: -10**15, 45_000: 10**15, 60_000: -10**15}
    pool = _pool(ticks=nets, liquidity=10**20)
    if limit_tick is None:
        limit = MIN_SQRT_PRICE + 1 if zero_for_one else MAX_SQRT_PRICE - 1
    else:
        limit = get_sqrt_ratio_at_tick(limit_tick)
        if (limit < pool.sqrt_price_x96) != zero_for_one:
            return
    amount = 10**40
    r = swap(pool, zero_for_one, -amount if exact_in else amount, limit)
    a0, a1, price, tick, liquidity, to_protocol = reference_swap(pool, zero_for_one, -amount if exact_in else amount,
                                                                 limit)
    assert (r.amount0, r.amount1, r.sqrt_price_x96, r.tick, r.liquidity) == (a0, a1, price, tick, liquidity)


def test_swap_result_has_every_field_set():
    """swap() builds its V4SwapResult through the slots, past the generated __init__: every field must be set,
    and equal to what the dataclass's own constructor makes of the same values."""
    state = V4PoolState(sqrt_price_x96=2**96, tick=0, liquidity=10**24, lp_fee=3000, tick_spacing=60,
                        ticks={-600: 10**24, 600: -(10**24)}, protocol_fee=(100 << 12) | 200)
    for zero_for_one, amount in ((True, -(10**18)), (False, 10**6)):
        r = swap(state, zero_for_one, amount)
        values = {f.name: getattr(r, f.name) for f in dataclasses.fields(V4SwapResult)}
        assert V4SwapResult(**values) == r
        assert r.zero_for_one is zero_for_one and r.amount_in > 0 and r.amount_out > 0 and r.amount_to_protocol > 0
