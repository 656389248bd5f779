"""Mirror of Uniswap v3-core ``SqrtPriceMath.sol``: price movement and token deltas for a liquidity range.

Rounding direction is the whole point of this library -- every function rounds in the pool's favour (inputs up,
outputs down, prices so that the target is never overshot) -- and it is easy to get one wrong in a re-implementation
and only notice it in the last wei.  Two places need more than a straight translation:

* ``getNextSqrtPriceFromAmount0RoundingUp`` (add) picks between two formulas depending on whether
  ``amount * sqrtP`` or ``liquidity << 96 + amount * sqrtP`` overflows *256-bit* arithmetic.  The two formulas
  round differently, so with Python's unbounded ints we must reproduce the overflow test explicitly; otherwise very
  large inputs (e.g. the quoter's MAX_INT256 probes) land on a different price.
* ``getNextSqrtPriceFromAmount1RoundingDown`` switches to ``FullMath`` for amounts above uint160; the quotient is
  identical, but ``mulDiv`` can revert where the shift path cannot, so we keep the branch.

The signed ``getAmount0Delta(uint160, uint160, int128)`` overloads are exposed as ``get_amount0_delta_signed`` /
``get_amount1_delta_signed`` (Python has no overloading).
"""

from __future__ import annotations

from .errors import DivisionByZero, InsufficientLiquidity, InvalidSqrtPrice, Overflow
from .full_math import (
    MAX_UINT160,
    MAX_UINT256,
    Q96,
    RESOLUTION,
    div_rounding_up,
    mul_div,
    mul_div_rounding_up,
    to_int256,
    to_uint160,
)

__all__ = [
    "get_amount0_delta",
    "get_amount0_delta_signed",
    "get_amount1_delta",
    "get_amount1_delta_signed",
    "get_next_sqrt_price_from_amount0_rounding_up",
    "get_next_sqrt_price_from_amount1_rounding_down",
    "get_next_sqrt_price_from_input",
    "get_next_sqrt_price_from_output",
]


def get_next_sqrt_price_from_amount0_rounding_up(
    sqrt_px96: int, liquidity: int, amount: int, add: bool
) -> int:
    """Price after adding (``add``) or removing ``amount`` of token0, rounded up.

    ``sqrt(P') = L * sqrt(P) / (L + amount * sqrt(P))`` (add) or ``/ (L - amount * sqrt(P))`` (remove).
    """
    # Short circuit: otherwise the rounding-up division could move the price by one unit for a zero amount.
    if amount == 0:
        return sqrt_px96
    numerator1 = liquidity << RESOLUTION

    if add:
        product = amount * sqrt_px96
        # Contract: `(product = amount * sqrtPX96) / amount == sqrtPX96` (no uint256 overflow), then
        # `denominator >= numerator1` (the addition did not wrap).  Both are exact overflow tests.
        if product <= MAX_UINT256:
            denominator = numerator1 + product
            if denominator <= MAX_UINT256:
                return mul_div_rounding_up(numerator1, sqrt_px96, denominator)
        # Overflow fallback: sqrt(P') = L / (L / sqrt(P) + amount); rounds differently, hence the exact test above.
        divisor = numerator1 // sqrt_px96 + amount
        if divisor > MAX_UINT256:  # LowGasSafeMath.add
            raise Overflow("SqrtPriceMath: L/sqrtP + amount overflows uint256")
        return div_rounding_up(numerator1, divisor)

    product = amount * sqrt_px96
    # "if the product overflows, we know the denominator underflows": either way the output is unavailable.
    if product > MAX_UINT256 or numerator1 <= product:
        raise InsufficientLiquidity("SqrtPriceMath: token0 output exceeds what the liquidity can provide")
    return to_uint160(mul_div_rounding_up(numerator1, sqrt_px96, numerator1 - product))


def get_next_sqrt_price_from_amount1_rounding_down(
    sqrt_px96: int, liquidity: int, amount: int, add: bool
) -> int:
    """Price after adding (``add``) or removing ``amount`` of token1, rounded down.

    ``sqrt(P') = sqrt(P) +/- amount / L`` (in Q96).
    """
    if add:
        if amount <= MAX_UINT160:
            if liquidity == 0:
                raise DivisionByZero("SqrtPriceMath: division by zero liquidity")
            quotient = (amount << RESOLUTION) // liquidity
        else:
            quotient = mul_div(amount, Q96, liquidity)
        result = sqrt_px96 + quotient
        if result > MAX_UINT256:  # LowGasSafeMath.add before the uint160 cast
            raise Overflow("SqrtPriceMath: sqrtP + quotient overflows uint256")
        return to_uint160(result)

    if amount <= MAX_UINT160:
        # UnsafeMath.divRoundingUp: a zero liquidity yields 0 here (EVM div), exactly as on chain.
        quotient = div_rounding_up(amount << RESOLUTION, liquidity)
    else:
        quotient = mul_div_rounding_up(amount, Q96, liquidity)
    if sqrt_px96 <= quotient:
        raise InsufficientLiquidity("SqrtPriceMath: token1 output exceeds what the liquidity can provide")
    return sqrt_px96 - quotient


def get_next_sqrt_price_from_input(sqrt_px96: int, liquidity: int, amount_in: int, zero_for_one: bool) -> int:
    """Price after swapping ``amount_in`` (fee already removed) into the pool; never overshoots the true price."""
    if sqrt_px96 <= 0:
        raise InvalidSqrtPrice("SqrtPriceMath.getNextSqrtPriceFromInput: sqrtPX96 == 0")
    if liquidity <= 0:
        raise InsufficientLiquidity("SqrtPriceMath.getNextSqrtPriceFromInput: liquidity == 0")
    if zero_for_one:
        return get_next_sqrt_price_from_amount0_rounding_up(sqrt_px96, liquidity, amount_in, True)
    return get_next_sqrt_price_from_amount1_rounding_down(sqrt_px96, liquidity, amount_in, True)


def get_next_sqrt_price_from_output(
    sqrt_px96: int, liquidity: int, amount_out: int, zero_for_one: bool
) -> int:
    """Price after taking ``amount_out`` out of the pool; always reaches at least the true price."""
    if sqrt_px96 <= 0:
        raise InvalidSqrtPrice("SqrtPriceMath.getNextSqrtPriceFromOutput: sqrtPX96 == 0")
    if liquidity <= 0:
        raise InsufficientLiquidity("SqrtPriceMath.getNextSqrtPriceFromOutput: liquidity == 0")
    if zero_for_one:
        return get_next_sqrt_price_from_amount1_rounding_down(sqrt_px96, liquidity, amount_out, False)
    return get_next_sqrt_price_from_amount0_rounding_up(sqrt_px96, liquidity, amount_out, False)


def get_amount0_delta(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool) -> int:
    """token0 between two prices: ``L * (sqrtB - sqrtA) / (sqrtA * sqrtB)`` (Q96), rounded as asked.

    The two-stage division (by sqrtB inside mulDiv, then by sqrtA) is the contract's and determines rounding.
    """
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    numerator1 = liquidity << RESOLUTION
    numerator2 = sqrt_ratio_b_x96 - sqrt_ratio_a_x96
    if sqrt_ratio_a_x96 <= 0:
        raise InvalidSqrtPrice("SqrtPriceMath.getAmount0Delta: sqrtRatioAX96 == 0")
    if round_up:
        return div_rounding_up(
            mul_div_rounding_up(numerator1, numerator2, sqrt_ratio_b_x96), sqrt_ratio_a_x96
        )
    return mul_div(numerator1, numerator2, sqrt_ratio_b_x96) // sqrt_ratio_a_x96


def get_amount1_delta(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool) -> int:
    """token1 between two prices: ``L * (sqrtB - sqrtA)`` (Q96), rounded as asked."""
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    if round_up:
        return mul_div_rounding_up(liquidity, sqrt_ratio_b_x96 - sqrt_ratio_a_x96, Q96)
    return mul_div(liquidity, sqrt_ratio_b_x96 - sqrt_ratio_a_x96, Q96)


def get_amount0_delta_signed(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int) -> int:
    """``getAmount0Delta(uint160, uint160, int128)``: signed token0 delta for a liquidity change.

    Adding liquidity (``liquidity > 0``) rounds the amount owed up; removing rounds the amount paid out down.
    """
    if liquidity < 0:
        return -to_int256(get_amount0_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, -liquidity, False))
    return to_int256(get_amount0_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity, True))


def get_amount1_delta_signed(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int) -> int:
    """``getAmount1Delta(uint160, uint160, int128)``: signed token1 delta for a liquidity change."""
    if liquidity < 0:
        return -to_int256(get_amount1_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, -liquidity, False))
    return to_int256(get_amount1_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity, True))
