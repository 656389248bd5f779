"""Mirror of Uniswap v4-core ``SwapMath.sol`` (the released 1.0.x): one swap step within a single liquidity range.

The price arithmetic is V3's (:mod:`.sqrt_price_math`, unchanged in V4), but the step itself differs from V3's
:mod:`.swap_math` in ways that matter to the last wei of fee accounting:

* the sign convention is flipped: ``amount_remaining < 0`` is exact *input*, ``> 0`` exact output;
* exact input that does not reach the target takes ``amountIn = amountRemainingLessFee`` as is (V3 recomputes it
  from the prices) and the rest as fee, so the fee split -- and with it the protocol fee -- differs from V3;
* a 100 % fee is allowed for exact input (the whole input is fee);
* exact output caps ``amountOut`` before computing the next price, not after.

The total a step consumes and produces is what the pool loop accumulates.  ``get_sqrt_price_target`` is the
branch-free ``getSqrtPriceTarget`` written plainly.
"""

from __future__ import annotations

from .full_math import mul_div, mul_div_rounding_up
from .sqrt_price_math import (
    get_amount0_delta,
    get_amount1_delta,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
)

__all__ = ["MAX_SWAP_FEE", "compute_swap_step", "get_sqrt_price_target"]

MAX_SWAP_FEE = 1_000_000


def get_sqrt_price_target(zero_for_one: bool, sqrt_price_next_x96: int, sqrt_price_limit_x96: int) -> int:
    """``getSqrtPriceTarget``: the next tick's price, unless the limit comes first."""
    if zero_for_one:
        return max(sqrt_price_next_x96, sqrt_price_limit_x96)
    return min(sqrt_price_next_x96, sqrt_price_limit_x96)


def compute_swap_step(
    sqrt_price_current_x96: int,
    sqrt_price_target_x96: int,
    liquidity: int,
    amount_remaining: int,
    fee_pips: int,
) -> tuple[int, int, int, int]:
    """``SwapMath.computeSwapStep`` -> ``(sqrt_price_next_x96, amount_in, amount_out, fee_amount)``.

    ``amount_in`` excludes the fee; for exact input ``amount_in + fee_amount <= -amount_remaining``.
    """
    zero_for_one = sqrt_price_current_x96 >= sqrt_price_target_x96
    if amount_remaining < 0:  # exact input
        remaining = -amount_remaining
        less_fee = mul_div(remaining, MAX_SWAP_FEE - fee_pips, MAX_SWAP_FEE)
        if zero_for_one:
            amount_in = get_amount0_delta(sqrt_price_target_x96, sqrt_price_current_x96, liquidity, True)
        else:
            amount_in = get_amount1_delta(sqrt_price_current_x96, sqrt_price_target_x96, liquidity, True)
        if less_fee >= amount_in:
            sqrt_next = sqrt_price_target_x96
            fee_amount = (
                amount_in if fee_pips == MAX_SWAP_FEE
                else mul_div_rounding_up(amount_in, fee_pips, MAX_SWAP_FEE - fee_pips)
            )
        else:
            amount_in = less_fee
            sqrt_next = get_next_sqrt_price_from_input(sqrt_price_current_x96, liquidity, less_fee, zero_for_one)
            fee_amount = remaining - amount_in
        if zero_for_one:
            amount_out = get_amount1_delta(sqrt_next, sqrt_price_current_x96, liquidity, False)
        else:
            amount_out = get_amount0_delta(sqrt_price_current_x96, sqrt_next, liquidity, False)
        return sqrt_next, amount_in, amount_out, fee_amount

    if zero_for_one:
        amount_out = get_amount1_delta(sqrt_price_target_x96, sqrt_price_current_x96, liquidity, False)
    else:
        amount_out = get_amount0_delta(sqrt_price_current_x96, sqrt_price_target_x96, liquidity, False)
    if amount_remaining >= amount_out:
        sqrt_next = sqrt_price_target_x96
    else:
        amount_out = amount_remaining
        sqrt_next = get_next_sqrt_price_from_output(sqrt_price_current_x96, liquidity, amount_out, zero_for_one)
    if zero_for_one:
        amount_in = get_amount0_delta(sqrt_next, sqrt_price_current_x96, liquidity, True)
    else:
        amount_in = get_amount1_delta(sqrt_price_current_x96, sqrt_next, liquidity, True)
    # feePips cannot be MAX_SWAP_FEE here: Pool.swap reverts InvalidFeeForExactOut first.
    fee_amount = mul_div_rounding_up(amount_in, fee_pips, MAX_SWAP_FEE - fee_pips)
    return sqrt_next, amount_in, amount_out, fee_amount
