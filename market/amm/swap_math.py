"""Mirror of Uniswap v3-core ``SwapMath.sol``: one swap step within a single liquidity range.

``compute_swap_step`` is called by the pool once per (tick or word-boundary) segment.  Its result depends on where
the segment ends, because each step rounds its own amounts; that is why the pool simulator has to stop at exactly
the same tick-bitmap word boundaries as the contract (see :mod:`market.amm.tick_bitmap`).

Conventions, as in the contract: ``amount_remaining >= 0`` means exact input (the amount includes the fee),
``< 0`` means exact output; the direction is inferred from ``current >= target`` (zero-for-one when the price
moves down or not at all); ``fee_pips`` is in hundredths of a basis point (3000 = 0.3 %).
"""

from __future__ import annotations

from .full_math import mul_div, mul_div_rounding_up
from .sqrt_price_math import (
    get_amount0_delta,
    get_amount1_delta,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
)

__all__ = ["FEE_DENOMINATOR", "compute_swap_step"]

#: fee_pips denominator (1e6): 3000 pips = 0.3 %
FEE_DENOMINATOR = 1_000_000


def compute_swap_step(
    sqrt_ratio_current_x96: int,
    sqrt_ratio_target_x96: int,
    liquidity: int,
    amount_remaining: int,
    fee_pips: int,
) -> tuple[int, int, int, int]:
    """``SwapMath.computeSwapStep`` -> ``(sqrt_ratio_next_x96, amount_in, amount_out, fee_amount)``.

    ``amount_in`` excludes the fee; for exact input ``amount_in + fee_amount <= amount_remaining`` and, if the
    target price is not reached, the whole remainder is consumed (the leftover rounding dust becomes fee).
    """
    zero_for_one = sqrt_ratio_current_x96 >= sqrt_ratio_target_x96
    exact_in = amount_remaining >= 0

    if exact_in:
        amount_remaining_less_fee = mul_div(amount_remaining, FEE_DENOMINATOR - fee_pips, FEE_DENOMINATOR)
        if zero_for_one:
            amount_in = get_amount0_delta(sqrt_ratio_target_x96, sqrt_ratio_current_x96, liquidity, True)
        else:
            amount_in = get_amount1_delta(sqrt_ratio_current_x96, sqrt_ratio_target_x96, liquidity, True)
        if amount_remaining_less_fee >= amount_in:
            sqrt_ratio_next_x96 = sqrt_ratio_target_x96
        else:
            sqrt_ratio_next_x96 = get_next_sqrt_price_from_input(
                sqrt_ratio_current_x96, liquidity, amount_remaining_less_fee, zero_for_one
            )
        amount_out = 0
    else:
        if zero_for_one:
            amount_out = get_amount1_delta(sqrt_ratio_target_x96, sqrt_ratio_current_x96, liquidity, False)
        else:
            amount_out = get_amount0_delta(sqrt_ratio_current_x96, sqrt_ratio_target_x96, liquidity, False)
        if -amount_remaining >= amount_out:
            sqrt_ratio_next_x96 = sqrt_ratio_target_x96
        else:
            sqrt_ratio_next_x96 = get_next_sqrt_price_from_output(
                sqrt_ratio_current_x96, liquidity, -amount_remaining, zero_for_one
            )
        amount_in = 0

    reached_target = sqrt_ratio_target_x96 == sqrt_ratio_next_x96

    # Recompute whichever side was not already computed against the (possibly unchanged) target price.
    if zero_for_one:
        if not (reached_target and exact_in):
            amount_in = get_amount0_delta(sqrt_ratio_next_x96, sqrt_ratio_current_x96, liquidity, True)
        if not (reached_target and not exact_in):
            amount_out = get_amount1_delta(sqrt_ratio_next_x96, sqrt_ratio_current_x96, liquidity, False)
    else:
        if not (reached_target and exact_in):
            amount_in = get_amount1_delta(sqrt_ratio_current_x96, sqrt_ratio_next_x96, liquidity, True)
        if not (reached_target and not exact_in):
            amount_out = get_amount0_delta(sqrt_ratio_current_x96, sqrt_ratio_next_x96, liquidity, False)

    # The price rounding in getNextSqrtPriceFromOutput can yield one unit more than asked; cap it.
    if not exact_in and amount_out > -amount_remaining:
        amount_out = -amount_remaining

    if exact_in and sqrt_ratio_next_x96 != sqrt_ratio_target_x96:
        # Target not reached: everything that was not used as input is kept as fee (so no dust is returned).
        fee_amount = amount_remaining - amount_in
    else:
        fee_amount = mul_div_rounding_up(amount_in, fee_pips, FEE_DENOMINATOR - fee_pips)

    return sqrt_ratio_next_x96, amount_in, amount_out, fee_amount
