"""Curve StableSwap (3pool) mirror.

On-chain anchor: 18 ``get_dy`` answers of the real 3pool (DAI/USDC/USDT) at block 24,407,242, recorded by degenbot
together with the pool's balances, A ramp and fee.  The rest checks the math from first principles: D is the
exact root of the invariant, get_y keeps D, balanced pools trade ~1:1 minus the fee, and the A ramp interpolates
as the contract does.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.amm.curve_stableswap import FEE_DENOMINATOR, exchange, get_A, get_D, get_dy, get_xp, get_y
from market.amm.errors import AMMError, DivisionByZero, Underflow

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "golden" / "degenbot"
POOL = json.loads((GOLDEN / "curve_3pool_block_24407242.state.json").read_text())
QUOTES = json.loads((GOLDEN / "curve_3pool_block_24407242.get_dy_golden.json").read_text())["entries"]
SYMBOLS = [t["symbol"] for t in POOL["tokens"]]
RATES = [10 ** (36 - t["decimals"]) for t in POOL["tokens"]]  # 3pool's RATES constant
POOL_A = get_A(
    POOL["initial_a"],
    POOL["future_a"],
    POOL["initial_a_time"],
    POOL["future_a_time"],
    POOL["block_timestamp"],
)


def _golden_cases():
    for key, entry in sorted(QUOTES.items()):
        address, method, pair, amount = key.split("|")
        assert address == POOL["address"] and method == "get_dy"
        i, j = (SYMBOLS.index(s) for s in pair.split("->"))
        yield pytest.param(i, j, int(amount), entry["value"], id=f"{pair}-{amount}")


def test_pool_amplification_at_block():
    assert POOL_A == POOL["a_coefficient"] == 4000  # the 5000 -> 4000 ramp finished before this block
    assert RATES == [10**18, 10**30, 10**30]


@pytest.mark.parametrize(("i", "j", "dx", "expected"), list(_golden_cases()))
def test_3pool_get_dy_onchain_parity(i, j, dx, expected):
    assert len(QUOTES) == 18
    assert get_dy(i, j, dx, POOL["balances"], RATES, POOL_A, POOL["fee"]) == expected


def test_exchange_differs_from_get_dy_by_at_most_one_unit():
    for key in QUOTES:
        _, _, pair, amount = key.split("|")
        i, j = (SYMBOLS.index(s) for s in pair.split("->"))
        view = get_dy(i, j, int(amount), POOL["balances"], RATES, POOL_A, POOL["fee"])
        dy, new_balances = exchange(
            i, j, int(amount), POOL["balances"], RATES, POOL_A, POOL["fee"], POOL["admin_fee"]
        )
        assert abs(dy - view) <= 1
        assert new_balances[i] == POOL["balances"][i] + int(amount)
        # admin_fee is 100 %: the whole fee leaves the balances
        assert new_balances[j] < POOL["balances"][j] - dy


# --- amplification ramp ------------------------------------------------------------------------------------------


def test_get_A_ramp():
    # ramp up 100 -> 200 over [1000, 2000]
    assert get_A(100, 200, 1000, 2000, 1000) == 100
    assert get_A(100, 200, 1000, 2000, 1500) == 150
    assert get_A(100, 200, 1000, 2000, 1999) == 199  # (100 * 999) // 1000 = 99
    assert get_A(100, 200, 1000, 2000, 2000) == 200
    assert get_A(100, 200, 1000, 2000, 10**10) == 200
    # ramp down 200 -> 100: the decrement rounds down, so A rounds up
    assert get_A(200, 100, 1000, 2000, 1001) == 200
    assert get_A(200, 100, 1000, 2000, 1010) == 199
    assert get_A(200, 100, 1000, 2000, 1999) == 101
    assert get_A(200, 100, 1000, 2000, 2000) == 100
    # no ramp ever scheduled
    assert get_A(0, 300, 0, 0, 12345) == 300


# --- first-principles checks of D and y --------------------------------------------------------------------------


def _invariant_d_root(xp: list[int], amp: int) -> tuple[int, int]:
    """Integers bracketing the exact real root D of  A n^n S + D = A n^n D + D^(n+1) / (n^n prod x)."""
    n = len(xp)
    ann, s, prod = amp * n, sum(xp), 1
    for x in xp:
        prod *= x

    def g_positive(d: int) -> bool:  # g(D) = A n^n S + D - A n^n D - D^(n+1) / (n^n prod), decreasing in D
        # exact rational comparison, multiplied through by the positive denominator
        return (ann * s + d - ann * d) * n**n * prod > d ** (n + 1)

    lo, hi = 0, 2 * s
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if g_positive(mid) else (lo, mid)
    return lo, hi


def _invariant_y_root(i: int, j: int, x: int, xp: list[int], amp: int, d: int) -> tuple[int, int]:
    n = len(xp)
    others = [x if k == i else xp[k] for k in range(n) if k != j]
    ann, s, prod = amp * n, sum(others), 1
    for v in others:
        prod *= v

    def f_non_negative(
        y: int,
    ) -> bool:  # f(y) = A n^n (S' + y) + D - A n^n D - D^(n+1) / (n^n prod' y), increasing
        return (ann * (s + y) + d - ann * d) * n**n * prod * y >= d ** (n + 1)

    lo, hi = 1, 2 * d
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if f_non_negative(mid) else (mid, hi)
    return lo, hi


pools = st.tuples(
    st.integers(min_value=2, max_value=3),
    st.sampled_from([1, 10, 100, 2000, 5000]),
    st.integers(min_value=10**20, max_value=10**27),
    st.lists(st.integers(min_value=50, max_value=200), min_size=3, max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(pool=pools, trade_pct=st.integers(min_value=1, max_value=10), pair=st.permutations([0, 1, 2]))
def test_d_is_the_invariant_root_and_get_y_preserves_it(pool, trade_pct, pair):
    n, amp, base, weights = pool
    xp = [base * w // 100 for w in weights[:n]]
    d = get_D(xp, amp)
    lo, hi = _invariant_d_root(xp, amp)
    assert d in (lo, hi)  # Newton stops within 1 of the exact root
    i, j = [k for k in pair if k < n][:2]
    x = xp[i] + xp[i] * trade_pct // 100
    y = get_y(i, j, x, xp, amp)
    y_lo, y_hi = _invariant_y_root(i, j, x, xp, amp, d)
    assert y_lo - 1 <= y <= y_hi + 1
    # the new point is on the same invariant: D is preserved to within 2 wei
    new_xp = list(xp)
    new_xp[i], new_xp[j] = x, y
    assert abs(get_D(new_xp, amp) - d) <= 2


def test_balanced_pool():
    for n in (2, 3):
        xp = [10**24] * n
        assert get_D(xp, 2000) == n * 10**24  # D = sum exactly at balance
    balances = [10**24, 10**12, 10**12]  # 1M DAI / 1M USDC / 1M USDT
    rates = [10**18, 10**30, 10**30]
    fee = 4_000_000  # 0.04 %
    dy = get_dy(0, 1, 1000 * 10**18, balances, rates, 2000, fee)
    no_fee = get_dy(0, 1, 1000 * 10**18, balances, rates, 2000, 0)
    ideal = 1000 * 10**6
    assert no_fee < ideal and ideal - no_fee < ideal // 100_000  # tiny slippage at A = 2000
    assert dy == no_fee - no_fee * fee // FEE_DENOMINATOR
    # symmetric: USDC -> DAI gives (almost) the same
    back = get_dy(1, 0, 1000 * 10**6, balances, rates, 2000, fee)
    assert abs(back // 10**12 - dy) <= 1


def test_higher_amplification_means_less_slippage():
    balances, rates = [10**24, 10**24], [10**18, 10**18]
    outs = [get_dy(0, 1, 10**23, balances, rates, amp, 0) for amp in (1, 10, 100, 1000)]
    assert outs == sorted(outs) and outs[-1] < 10**23


def test_output_is_monotonic_in_input():
    rng = random.Random(5)
    balances, rates = POOL["balances"], RATES
    dxs = sorted(rng.randint(1, 10**25) for _ in range(30))
    outs = [get_dy(0, 2, dx, balances, rates, POOL_A, POOL["fee"]) for dx in dxs]
    assert outs == sorted(outs)


def test_xp_and_reverts():
    assert get_xp([10**18, 10**6], [10**18, 10**30]) == [10**18, 10**18]
    with pytest.raises(AMMError):
        get_dy(0, 0, 1, [1, 1], [10**18, 10**18], 100, 0)
    with pytest.raises(AMMError):
        get_dy(0, 3, 1, [1, 1, 1], [10**18] * 3, 100, 0)
    with pytest.raises(AMMError):
        get_dy(-1, 0, 1, [1, 1], [10**18, 10**18], 100, 0)
    with pytest.raises(AMMError):
        get_xp([1, 2], [1])
    with pytest.raises(DivisionByZero):  # an empty coin breaks get_D ("only withdrawal will work")
        get_D([10**18, 0], 100)
    assert get_D([0, 0], 100) == 0
    with pytest.raises(Underflow):  # zero-dx trade: xp[j] - y - 1 underflows
        get_dy(0, 1, 0, [10**18, 10**18], [10**18, 10**18], 100, 0)
