"""FullMath / UnsafeMath / SafeCast mirrors: values and reverts as in Uniswap v3-core's FullMath.spec.ts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.amm.errors import AMMError, DivisionByZero, Overflow
from market.amm.full_math import (
    MAX_UINT256,
    Q128,
    div_rounding_up,
    mul_div,
    mul_div_rounding_up,
    to_int128,
    to_int256,
    to_uint160,
)

uint256 = st.integers(min_value=0, max_value=MAX_UINT256)


@pytest.mark.parametrize("fn", [mul_div, mul_div_rounding_up])
def test_reverts_on_zero_denominator(fn):
    with pytest.raises(DivisionByZero):
        fn(Q128, 5, 0)
    with pytest.raises(DivisionByZero):
        fn(Q128, Q128, 0)  # numerator overflows too
    with pytest.raises(DivisionByZero):
        fn(0, 0, 0)


@pytest.mark.parametrize("fn", [mul_div, mul_div_rounding_up])
def test_reverts_when_result_overflows(fn):
    with pytest.raises(Overflow):
        fn(Q128, Q128, 1)
    with pytest.raises(Overflow):
        fn(MAX_UINT256, MAX_UINT256, MAX_UINT256 - 1)


def test_all_max_inputs():
    assert mul_div(MAX_UINT256, MAX_UINT256, MAX_UINT256) == MAX_UINT256
    assert mul_div_rounding_up(MAX_UINT256, MAX_UINT256, MAX_UINT256) == MAX_UINT256


def test_phantom_overflow_cases():
    assert mul_div(Q128, 50 * Q128 // 100, 150 * Q128 // 100) == Q128 // 3
    assert mul_div_rounding_up(Q128, 50 * Q128 // 100, 150 * Q128 // 100) == Q128 // 3 + 1
    assert mul_div(Q128, 35 * Q128, 8 * Q128) == 4375 * Q128 // 1000
    assert mul_div_rounding_up(Q128, 35 * Q128, 8 * Q128) == 4375 * Q128 // 1000
    assert mul_div(Q128, 1000 * Q128, 3000 * Q128) == Q128 // 3
    assert mul_div_rounding_up(Q128, 1000 * Q128, 3000 * Q128) == Q128 // 3 + 1


def test_rounding_up_reverts_when_only_the_rounding_overflows():
    # floor fits in uint256 but the +1 would not: the contract's require(result < type(uint256).max).
    with pytest.raises(Overflow):
        mul_div_rounding_up(
            535006138814359, 432862656469423142931042426214547535783388063929571229938474969, 2
        )
    with pytest.raises(Overflow):
        mul_div_rounding_up(
            115792089237316195423570985008687907853269984659341747863450311749907997002549,
            115792089237316195423570985008687907853269984659341747863450311749907997002550,
            115792089237316195423570985008687907853269984653042931687443039491902864365164,
        )
    # ... while the floor version of the first case is fine.
    assert (
        mul_div(535006138814359, 432862656469423142931042426214547535783388063929571229938474969, 2)
        == MAX_UINT256
    )


@settings(max_examples=150, deadline=None)
@given(a=uint256, b=uint256, d=st.integers(min_value=1, max_value=MAX_UINT256))
def test_matches_exact_floor_and_ceil(a, b, d):
    floor, rem = divmod(a * b, d)
    ceil = floor + (1 if rem else 0)
    if floor > MAX_UINT256:
        with pytest.raises(Overflow):
            mul_div(a, b, d)
    else:
        assert mul_div(a, b, d) == floor
    if ceil > MAX_UINT256:
        with pytest.raises(Overflow):
            mul_div_rounding_up(a, b, d)
    else:
        assert mul_div_rounding_up(a, b, d) == ceil


def test_div_rounding_up_has_evm_semantics():
    assert div_rounding_up(10, 3) == 4
    assert div_rounding_up(9, 3) == 3
    assert div_rounding_up(0, 7) == 0
    assert div_rounding_up(5, 0) == 0  # EVM div/mod by zero yield 0, no revert


def test_safe_casts():
    assert to_uint160(2**160 - 1) == 2**160 - 1
    assert to_int256(2**255 - 1) == 2**255 - 1
    assert to_int128(-(2**127)) == -(2**127)
    for fn, bad in ((to_uint160, 2**160), (to_uint160, -1), (to_int256, 2**255), (to_int128, 2**127)):
        with pytest.raises(Overflow):
            fn(bad)


def test_errors_are_value_errors():
    assert issubclass(Overflow, AMMError) and issubclass(AMMError, ValueError)
