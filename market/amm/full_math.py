"""Mirror of Uniswap v3-core ``FullMath.sol`` (plus the tiny ``UnsafeMath.sol`` and ``SafeCast.sol`` helpers).

``FullMath.mulDiv`` computes ``floor(a * b / denominator)`` with a full 512-bit intermediate product and reverts
when the result does not fit in 256 bits or the denominator is zero.  Python integers are arbitrary precision, so
the 512-bit Chinese-remainder dance collapses into one ``//``; what we *must* keep is the exact revert
conditions, because the pool relies on them (e.g. ``mulDivRoundingUp`` refusing to round ``2**256 - 1`` up).

Inputs are assumed to already be in range for their Solidity types (uint256 etc.); validating that on every call
would double the cost of the swap hot loop for a condition the contracts cannot even express.  Negative results
(which only arise from out-of-range inputs) are still rejected as :class:`Overflow`.
"""

from __future__ import annotations

from .errors import DivisionByZero, Overflow

__all__ = [
    "MAX_INT128",
    "MAX_INT256",
    "MAX_UINT128",
    "MAX_UINT160",
    "MAX_UINT256",
    "MIN_INT128",
    "MIN_INT256",
    "Q96",
    "Q128",
    "RESOLUTION",
    "div_rounding_up",
    "mul_div",
    "mul_div_rounding_up",
    "to_int128",
    "to_int256",
    "to_uint160",
]

MAX_UINT256 = (1 << 256) - 1
MAX_UINT160 = (1 << 160) - 1
MAX_UINT128 = (1 << 128) - 1
MAX_INT256 = (1 << 255) - 1
MIN_INT256 = -(1 << 255)
MAX_INT128 = (1 << 127) - 1
MIN_INT128 = -(1 << 127)

# FixedPoint96 / FixedPoint128
RESOLUTION = 96
Q96 = 1 << 96
Q128 = 1 << 128


def mul_div(a: int, b: int, denominator: int) -> int:
    """``FullMath.mulDiv``: ``floor(a * b / denominator)``.

    Reverts (raises) exactly when the contract does: ``denominator == 0`` or a result >= 2**256.  The contract's
    ``require(denominator > prod1)`` is equivalent to ``a * b < denominator * 2**256``, i.e. to the floor quotient
    fitting in 256 bits, so checking the quotient is exact, not an approximation.
    """
    if denominator <= 0:
        raise DivisionByZero("FullMath.mulDiv: denominator is zero")
    result = a * b // denominator
    if result > MAX_UINT256 or result < 0:
        raise Overflow("FullMath.mulDiv: result does not fit in uint256")
    return result


def mul_div_rounding_up(a: int, b: int, denominator: int) -> int:
    """``FullMath.mulDivRoundingUp``: ``ceil(a * b / denominator)``.

    The contract first computes ``mulDiv`` (same reverts) and then ``require(result < type(uint256).max)`` before
    incrementing, so a ceiling of exactly 2**256 reverts as well.
    """
    if denominator <= 0:
        raise DivisionByZero("FullMath.mulDivRoundingUp: denominator is zero")
    result, remainder = divmod(a * b, denominator)
    if remainder:
        result += 1
    if result > MAX_UINT256 or result < 0:
        raise Overflow("FullMath.mulDivRoundingUp: result does not fit in uint256")
    return result


def div_rounding_up(x: int, y: int) -> int:
    """``UnsafeMath.divRoundingUp``: ``ceil(x / y)`` with EVM semantics.

    The contract uses raw ``div``/``mod`` opcodes, which return 0 for a zero divisor instead of reverting; we
    reproduce that rather than raising, because SqrtPriceMath relies on its callers to have checked ``y > 0``.
    """
    if y == 0:
        return 0
    q, r = divmod(x, y)
    return q + 1 if r else q


def to_uint160(y: int) -> int:
    """``SafeCast.toUint160``: revert unless ``y`` fits in uint160."""
    if y > MAX_UINT160 or y < 0:
        raise Overflow("SafeCast.toUint160: value does not fit in uint160")
    return y


def to_int256(y: int) -> int:
    """``SafeCast.toInt256`` (uint256 -> int256): revert unless ``y < 2**255``."""
    if y > MAX_INT256 or y < 0:
        raise Overflow("SafeCast.toInt256: value does not fit in int256")
    return y


def to_int128(y: int) -> int:
    """``SafeCast.toInt128`` (int256 -> int128): revert unless ``y`` fits in int128."""
    if y > MAX_INT128 or y < MIN_INT128:
        raise Overflow("SafeCast.toInt128: value does not fit in int128")
    return y
