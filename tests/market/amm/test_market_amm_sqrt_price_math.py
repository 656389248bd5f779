"""SqrtPriceMath and SwapMath mirrors against the vectors in Uniswap v3-core's SqrtPriceMath/SwapMath specs."""

from __future__ import annotations

from math import isqrt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.amm.errors import AMMError, InsufficientLiquidity, InvalidSqrtPrice, Overflow
from market.amm.full_math import MAX_UINT128, MAX_UINT256
from market.amm.sqrt_price_math import (
    get_amount0_delta,
    get_amount0_delta_signed,
    get_amount1_delta,
    get_amount1_delta_signed,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
)
from market.amm.swap_math import compute_swap_step
from market.amm.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO

E18 = 10**18


def encode_price_sqrt(reserve1: int, reserve0: int) -> int:
    """The upstream tests' ``encodePriceSqrt``: bignumber.js sqrt (20 decimals, half-up) * 2**96, floored."""
    sqrt_20dp = (isqrt(reserve1 * 10**42 // reserve0) + 5) // 10  # exact for the ratios used below
    return sqrt_20dp * 2**96 // 10**20


def test_encode_price_sqrt_helper():
    assert encode_price_sqrt(1, 1) == 2**96
    assert encode_price_sqrt(121, 100) == 87150978765690771352898345369


# --- getNextSqrtPriceFromInput / Output --------------------------------------------------------------------


def test_next_price_from_input_reverts():
    with pytest.raises(InvalidSqrtPrice):
        get_next_sqrt_price_from_input(0, 0, E18 // 10, False)
    with pytest.raises(InsufficientLiquidity):
        get_next_sqrt_price_from_input(1, 0, E18 // 10, True)
    with pytest.raises(Overflow):  # input amount overflows the price
        get_next_sqrt_price_from_input(2**160 - 1, 1024, 1024, False)


def test_next_price_from_input_values():
    p1 = encode_price_sqrt(1, 1)
    assert get_next_sqrt_price_from_input(1, 1, 2**255, True) == 1  # cannot underflow the price
    assert get_next_sqrt_price_from_input(p1, E18 // 10, 0, True) == p1
    assert get_next_sqrt_price_from_input(p1, E18 // 10, 0, False) == p1
    max_amount_no_overflow = MAX_UINT256 - (MAX_UINT128 << 96) // (2**160 - 1)
    assert get_next_sqrt_price_from_input(2**160 - 1, MAX_UINT128, max_amount_no_overflow, True) == 1
    assert get_next_sqrt_price_from_input(p1, E18, E18 // 10, False) == 87150978765690771352898345369
    assert get_next_sqrt_price_from_input(p1, E18, E18 // 10, True) == 72025602285694852357767227579
    assert get_next_sqrt_price_from_input(p1, 10 * E18, 2**100, True) == 624999999995069620
    assert get_next_sqrt_price_from_input(p1, 1, MAX_UINT256 // 2, True) == 1


def test_next_price_from_output():
    price = 20282409603651670423947251286016
    for amount_out, zero_for_one in ((4, False), (5, False), (262145, True), (262144, True)):
        with pytest.raises(InsufficientLiquidity):
            get_next_sqrt_price_from_output(price, 1024, amount_out, zero_for_one)
    assert get_next_sqrt_price_from_output(price, 1024, 262143, True) == 77371252455336267181195264
    p1 = encode_price_sqrt(1, 1)
    assert get_next_sqrt_price_from_output(p1, E18 // 10, 0, True) == p1
    assert get_next_sqrt_price_from_output(p1, E18 // 10, 0, False) == p1
    assert get_next_sqrt_price_from_output(p1, E18, E18 // 10, False) == 88031291682515930659493278152
    assert get_next_sqrt_price_from_output(p1, E18, E18 // 10, True) == 71305346262837903834189555302
    for zero_for_one in (True, False):
        with pytest.raises(AMMError):
            get_next_sqrt_price_from_output(p1, 1, MAX_UINT256, zero_for_one)
    with pytest.raises(InvalidSqrtPrice):
        get_next_sqrt_price_from_output(0, 0, E18 // 10, False)
    with pytest.raises(InsufficientLiquidity):
        get_next_sqrt_price_from_output(1, 0, E18 // 10, True)


def test_product_overflow_branch():
    # sqrtP * amount fits but L<<96 + product does not: the contract's fallback formula, not mulDiv.
    sqrt_p = 1025574284609383690408304870162715216695788925244
    liquidity = 50015962439936049619261659728067971248
    sqrt_q = get_next_sqrt_price_from_input(sqrt_p, liquidity, 406, True)
    assert sqrt_q == 1025574284609383582644711336373707553698163132913
    assert get_amount0_delta(sqrt_q, sqrt_p, liquidity, True) == 406


# --- amount deltas -------------------------------------------------------------------------------------------


def test_amount_deltas():
    p1, p121 = encode_price_sqrt(1, 1), encode_price_sqrt(121, 100)
    assert get_amount0_delta(p1, encode_price_sqrt(2, 1), 0, True) == 0
    assert get_amount0_delta(p1, p1, 0, True) == 0
    assert get_amount0_delta(p1, p121, E18, True) == 90909090909090910
    assert get_amount0_delta(p1, p121, E18, False) == 90909090909090909
    assert get_amount1_delta(p1, encode_price_sqrt(2, 1), 0, True) == 0
    assert get_amount1_delta(p1, p121, E18, True) == 100000000000000000
    assert get_amount1_delta(p1, p121, E18, False) == 99999999999999999
    # prices whose product overflows uint256
    lo, hi = encode_price_sqrt(2**90, 1), encode_price_sqrt(2**96, 1)
    assert get_amount0_delta(lo, hi, E18, True) == get_amount0_delta(lo, hi, E18, False) + 1
    # argument order does not matter
    assert get_amount0_delta(p121, p1, E18, True) == 90909090909090910
    with pytest.raises(InvalidSqrtPrice):
        get_amount0_delta(0, p1, E18, True)


def test_signed_deltas_round_in_the_pools_favour():
    p1, p121 = encode_price_sqrt(1, 1), encode_price_sqrt(121, 100)
    assert get_amount0_delta_signed(p1, p121, E18) == 90909090909090910
    assert get_amount0_delta_signed(p1, p121, -E18) == -90909090909090909
    assert get_amount1_delta_signed(p1, p121, E18) == 100000000000000000
    assert get_amount1_delta_signed(p1, p121, -E18) == -99999999999999999


@settings(max_examples=100, deadline=None)
@given(
    sqrt_p=st.integers(min_value=MIN_SQRT_RATIO, max_value=MAX_SQRT_RATIO - 1),
    liquidity=st.integers(min_value=1, max_value=MAX_UINT128),
    amount=st.integers(min_value=0, max_value=2**128),
    zero_for_one=st.booleans(),
)
def test_input_never_overshoots_and_is_covered(sqrt_p, liquidity, amount, zero_for_one):
    try:
        sqrt_q = get_next_sqrt_price_from_input(sqrt_p, liquidity, amount, zero_for_one)
    except AMMError:
        return  # price would leave uint160 -- the contract reverts too
    if zero_for_one:
        assert sqrt_q <= sqrt_p
        # the amount needed to reach sqrt_q (rounded up) never exceeds what was supplied
        assert get_amount0_delta(sqrt_q, sqrt_p, liquidity, True) <= amount
    else:
        assert sqrt_q >= sqrt_p
        assert get_amount1_delta(sqrt_p, sqrt_q, liquidity, True) <= amount


# --- SwapMath.computeSwapStep --------------------------------------------------------------------------------


def test_swap_step_exact_in_capped_at_target_one_for_zero():
    price, target = encode_price_sqrt(1, 1), encode_price_sqrt(101, 100)
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(price, target, 2 * E18, E18, 600)
    assert (amount_in, fee, amount_out) == (9975124224178055, 5988667735148, 9925619580021728)
    assert amount_in + fee < E18
    assert sqrt_q == target
    assert sqrt_q < get_next_sqrt_price_from_input(price, 2 * E18, E18, False)


def test_swap_step_exact_out_capped_at_target_one_for_zero():
    price, target = encode_price_sqrt(1, 1), encode_price_sqrt(101, 100)
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(price, target, 2 * E18, -E18, 600)
    assert (amount_in, fee, amount_out) == (9975124224178055, 5988667735148, 9925619580021728)
    assert sqrt_q == target


def test_swap_step_exact_in_fully_spent_one_for_zero():
    price, target = encode_price_sqrt(1, 1), encode_price_sqrt(1000, 100)
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(price, target, 2 * E18, E18, 600)
    assert (amount_in, fee, amount_out) == (999400000000000000, 600000000000000, 666399946655997866)
    assert amount_in + fee == E18
    assert sqrt_q < target
    assert sqrt_q == get_next_sqrt_price_from_input(price, 2 * E18, E18 - fee, False)


def test_swap_step_exact_out_fully_received_one_for_zero():
    price, target = encode_price_sqrt(1, 1), encode_price_sqrt(10000, 100)
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(price, target, 2 * E18, -E18, 600)
    assert (amount_in, fee, amount_out) == (2 * E18, 1200720432259356, E18)
    assert sqrt_q < target
    assert sqrt_q == get_next_sqrt_price_from_output(price, 2 * E18, E18, False)


def test_swap_step_edge_cases():
    # amount out is capped at the desired amount out (would be 2 otherwise)
    assert compute_swap_step(
        417332158212080721273783715441582, 1452870262520218020823638996, 159344665391607089467575320103, -1, 1
    ) == (417332158212080721273783715441581, 1, 1, 1)
    # target price of 1 uses partial input amount
    sqrt_q, amount_in, amount_out, fee = compute_swap_step(2, 1, 1, 3915081100057732413702495386755767, 1)
    assert (sqrt_q, amount_in, amount_out, fee) == (
        1,
        39614081257132168796771975168,
        0,
        39614120871253040049813,
    )
    # entire input amount taken as fee
    assert compute_swap_step(2413, 79887613182836312, 1985041575832132834610021537970, 10, 1872) == (
        2413,
        0,
        0,
        10,
    )
    # intermediate insufficient liquidity, exact output, both directions
    sqrt_p = 20282409603651670423947251286016
    assert compute_swap_step(sqrt_p, sqrt_p * 11 // 10, 1024, -4, 3000) == (sqrt_p * 11 // 10, 26215, 0, 79)
    assert compute_swap_step(sqrt_p, sqrt_p * 9 // 10, 1024, -263000, 3000) == (sqrt_p * 9 // 10, 1, 26214, 1)


@settings(max_examples=100, deadline=None)
@given(
    current=st.integers(min_value=MIN_SQRT_RATIO, max_value=MAX_SQRT_RATIO - 1),
    target=st.integers(min_value=MIN_SQRT_RATIO, max_value=MAX_SQRT_RATIO - 1),
    liquidity=st.integers(min_value=1, max_value=MAX_UINT128),
    amount=st.integers(min_value=-(2**128), max_value=2**128).filter(lambda a: a != 0),
    fee=st.sampled_from([100, 500, 3000, 10000, 999999]),
)
def test_swap_step_invariants(current, target, liquidity, amount, fee):
    # Properties checked by the upstream SwapMath echidna test.
    try:
        sqrt_q, amount_in, amount_out, fee_amount = compute_swap_step(current, target, liquidity, amount, fee)
    except AMMError:
        return
    if amount < 0:
        assert amount_out <= -amount
    else:
        assert amount_in + fee_amount <= amount
    if current >= target:
        assert target <= sqrt_q <= current
    else:
        assert current <= sqrt_q <= target
    if sqrt_q != target and amount > 0:
        # not at target: the whole input was used
        assert amount_in + fee_amount == amount
