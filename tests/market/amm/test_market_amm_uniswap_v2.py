"""Uniswap V2 library mirror: the ppm-fee formulas are identical to the contracts' 997/1000 and 9975/10000."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.amm.errors import (
    AMMError,
    InsufficientInputAmount,
    InsufficientLiquidity,
    InsufficientOutputAmount,
    Overflow,
)
from market.amm.uniswap_v2 import (
    MAX_UINT112,
    get_amount_in,
    get_amount_out,
    get_amounts_in,
    get_amounts_out,
    quote,
    reserves_after_swap,
)

reserves = st.integers(min_value=1, max_value=MAX_UINT112)
amounts = st.integers(min_value=1, max_value=2**120)


def uniswap_library_amount_out(amount_in, reserve_in, reserve_out):
    amount_in_with_fee = amount_in * 997
    return amount_in_with_fee * reserve_out // (reserve_in * 1000 + amount_in_with_fee)


def uniswap_library_amount_in(amount_out, reserve_in, reserve_out):
    return reserve_in * amount_out * 1000 // ((reserve_out - amount_out) * 997) + 1


def ppm_amount_out(amount_in, reserve_in, reserve_out, fee_ppm):
    aiwf = amount_in * (1_000_000 - fee_ppm)
    return aiwf * reserve_out // (reserve_in * 1_000_000 + aiwf)


def ppm_amount_in(amount_out, reserve_in, reserve_out, fee_ppm):
    return reserve_in * amount_out * 1_000_000 // ((reserve_out - amount_out) * (1_000_000 - fee_ppm)) + 1


@settings(max_examples=100, deadline=None)
@given(amount=amounts, reserve_in=reserves, reserve_out=reserves)
def test_fee_3000_is_exactly_997_over_1000(amount, reserve_in, reserve_out):
    expected = uniswap_library_amount_out(amount, reserve_in, reserve_out)
    assert get_amount_out(amount, reserve_in, reserve_out) == expected
    assert ppm_amount_out(amount, reserve_in, reserve_out, 3000) == expected
    if amount < reserve_out:
        expected_in = uniswap_library_amount_in(amount, reserve_in, reserve_out)
        assert get_amount_in(amount, reserve_in, reserve_out) == expected_in
        assert ppm_amount_in(amount, reserve_in, reserve_out, 3000) == expected_in


@settings(max_examples=100, deadline=None)
@given(amount=amounts, reserve_in=reserves, reserve_out=reserves)
def test_fee_2500_is_exactly_pancakes_9975_over_10000(amount, reserve_in, reserve_out):
    expected = amount * 9975 * reserve_out // (reserve_in * 10000 + amount * 9975)
    assert get_amount_out(amount, reserve_in, reserve_out, fee_ppm=2500) == expected
    assert ppm_amount_out(amount, reserve_in, reserve_out, 2500) == expected
    if amount < reserve_out:
        expected_in = reserve_in * amount * 10000 // ((reserve_out - amount) * 9975) + 1
        assert get_amount_in(amount, reserve_in, reserve_out, fee_ppm=2500) == expected_in


@settings(max_examples=100, deadline=None)
@given(
    amount=amounts,
    reserve_in=reserves,
    reserve_out=st.integers(min_value=2, max_value=MAX_UINT112),
    fee=st.sampled_from([0, 1, 500, 2500, 3000, 10000, 999_999]),
)
def test_arbitrary_fees_match_the_ppm_formula_and_round_trip(amount, reserve_in, reserve_out, fee):
    assert get_amount_out(amount, reserve_in, reserve_out, fee) == ppm_amount_out(
        amount, reserve_in, reserve_out, fee
    )
    out = amount % (reserve_out - 1) + 1
    needed = get_amount_in(out, reserve_in, reserve_out, fee)
    assert needed == ppm_amount_in(out, reserve_in, reserve_out, fee)
    # getAmountIn always asks for enough
    assert get_amount_out(needed, reserve_in, reserve_out, fee) >= out


def test_reverts():
    with pytest.raises(InsufficientInputAmount):
        get_amount_out(0, 10, 10)
    with pytest.raises(InsufficientLiquidity):
        get_amount_out(1, 0, 10)
    with pytest.raises(InsufficientOutputAmount):
        get_amount_in(0, 10, 10)
    with pytest.raises(InsufficientLiquidity):
        get_amount_in(10, 10, 10)  # the whole reserve
    with pytest.raises(InsufficientLiquidity):
        get_amount_in(11, 10, 10)
    with pytest.raises(AMMError):
        get_amount_out(1, 10, 10, fee_ppm=1_000_000)
    with pytest.raises(AMMError):
        get_amount_out(1, 10, 10, fee_ppm=-1)
    with pytest.raises(Overflow):  # amountIn.mul(997) overflows uint256 in the library
        get_amount_out(2**250, 10, 10)
    with pytest.raises(Overflow):
        reserves_after_swap(1, 1, MAX_UINT112, 10)


def test_paths_and_quote():
    path = [(10**21, 2 * 10**9), (3 * 10**9, 5 * 10**20)]
    amounts_out = get_amounts_out(10**18, path)
    assert amounts_out[0] == 10**18
    assert amounts_out[1] == get_amount_out(10**18, *path[0])
    assert amounts_out[2] == get_amount_out(amounts_out[1], *path[1])
    assert get_amounts_out(10**18, path, [3000, 2500])[2] == get_amount_out(amounts_out[1], *path[1], 2500)
    amounts_in = get_amounts_in(amounts_out[-1], path)
    assert amounts_in[-1] == amounts_out[-1] and amounts_in[0] <= 10**18
    assert get_amounts_out(amounts_in[0], path)[-1] >= amounts_out[-1]
    with pytest.raises(AMMError):
        get_amounts_out(1, path, [3000])
    assert quote(10**18, 2 * 10**18, 10**18) == 5 * 10**17
    with pytest.raises(InsufficientInputAmount):
        quote(0, 1, 1)
