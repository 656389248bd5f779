"""Mirror of ``UniswapV2Library.getAmountOut`` / ``getAmountIn`` (Uniswap V2 periphery), with a configurable fee.

Uniswap V2 hard-codes a 0.3 % fee as ``amountIn * 997 / 1000``; forks change the constants (PancakeSwap V2:
``9975 / 10000``, i.e. 0.25 %).  Here the fee is given in parts per million and the formulas are written on the
``1_000_000`` scale::

    amount_in_with_fee = amount_in * (1_000_000 - fee_ppm)
    amount_out = amount_in_with_fee * reserve_out // (reserve_in * 1_000_000 + amount_in_with_fee)
    amount_in  = reserve_in * amount_out * 1_000_000 // ((reserve_out - amount_out) * (1_000_000 - fee_ppm)) + 1

Multiplying numerator and denominator of a floor division by the same positive constant does not change it, so
these are *identical* to the contracts' ``997/1000`` and ``9975/10000`` formulas for every input (the tests check
this on random inputs).  Internally the fee fraction is reduced to lowest terms (3000 ppm -> 997/1000), which
makes the fee-3000 path literally the UniswapV2Library arithmetic, including where SafeMath would overflow.

A note on ``get_amount_in``: the ``+ 1`` is unconditional in the library (it rounds up even when the division is
exact), and it is what routers charge, so we keep it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from math import gcd

from .errors import (
    AMMError,
    InsufficientInputAmount,
    InsufficientLiquidity,
    InsufficientOutputAmount,
    Overflow,
)
from .full_math import MAX_UINT256

__all__ = [
    "MAX_UINT112",
    "PPM",
    "get_amount_in",
    "get_amount_out",
    "get_amounts_in",
    "get_amounts_out",
    "quote",
    "reserves_after_swap",
]

PPM = 1_000_000
MAX_UINT112 = (1 << 112) - 1


@lru_cache(maxsize=64)
def _fee_fraction(fee_ppm: int) -> tuple[int, int]:
    """``(1e6 - fee_ppm) / 1e6`` in lowest terms, e.g. 3000 -> (997, 1000), 2500 -> (399, 400)."""
    if not 0 <= fee_ppm < PPM:
        raise AMMError(f"fee_ppm {fee_ppm} outside [0, 1_000_000)")
    g = gcd(PPM - fee_ppm, PPM)
    return (PPM - fee_ppm) // g, PPM // g


def _checked(x: int) -> int:
    # SafeMath.mul / add: revert when a uint256 intermediate overflows.
    if x > MAX_UINT256:
        raise Overflow("UniswapV2Library: uint256 overflow")
    return x


def get_amount_out(amount_in: int, reserve_in: int, reserve_out: int, fee_ppm: int = 3000) -> int:
    """Maximum output for ``amount_in`` given the pair's reserves (``UniswapV2Library.getAmountOut``)."""
    if amount_in <= 0:
        raise InsufficientInputAmount("UniswapV2Library: INSUFFICIENT_INPUT_AMOUNT")
    if reserve_in <= 0 or reserve_out <= 0:
        raise InsufficientLiquidity("UniswapV2Library: INSUFFICIENT_LIQUIDITY")
    fee_num, fee_den = _fee_fraction(fee_ppm)
    amount_in_with_fee = _checked(amount_in * fee_num)
    numerator = _checked(amount_in_with_fee * reserve_out)
    denominator = _checked(_checked(reserve_in * fee_den) + amount_in_with_fee)
    return numerator // denominator


def get_amount_in(amount_out: int, reserve_in: int, reserve_out: int, fee_ppm: int = 3000) -> int:
    """Minimum input that yields ``amount_out`` (``UniswapV2Library.getAmountIn``).

    Raises :class:`InsufficientLiquidity` when ``amount_out >= reserve_out`` (the library's SafeMath ``sub``
    underflows or divides by zero there; no input can buy the whole reserve).
    """
    if amount_out <= 0:
        raise InsufficientOutputAmount("UniswapV2Library: INSUFFICIENT_OUTPUT_AMOUNT")
    if reserve_in <= 0 or reserve_out <= 0:
        raise InsufficientLiquidity("UniswapV2Library: INSUFFICIENT_LIQUIDITY")
    if amount_out >= reserve_out:
        raise InsufficientLiquidity(f"UniswapV2Library: amount_out {amount_out} >= reserve_out {reserve_out}")
    fee_num, fee_den = _fee_fraction(fee_ppm)
    numerator = _checked(_checked(reserve_in * amount_out) * fee_den)
    denominator = _checked((reserve_out - amount_out) * fee_num)
    if denominator == 0:  # only possible with fee_num == 0, excluded above; kept for clarity
        raise InsufficientLiquidity("UniswapV2Library: zero denominator")
    return _checked(numerator // denominator + 1)


def quote(amount_a: int, reserve_a: int, reserve_b: int) -> int:
    """``UniswapV2Library.quote``: the equivalent amount of the other token at the current reserve ratio."""
    if amount_a <= 0:
        raise InsufficientInputAmount("UniswapV2Library: INSUFFICIENT_AMOUNT")
    if reserve_a <= 0 or reserve_b <= 0:
        raise InsufficientLiquidity("UniswapV2Library: INSUFFICIENT_LIQUIDITY")
    return _checked(amount_a * reserve_b) // reserve_a


def get_amounts_out(
    amount_in: int, reserves: Sequence[tuple[int, int]], fee_ppm: int | Sequence[int] = 3000
) -> list[int]:
    """``getAmountsOut`` over a path given as ``[(reserve_in, reserve_out), ...]`` per hop.

    ``fee_ppm`` is one fee for every hop or a list with one fee per hop.  Returns ``[amount_in, out1, out2, ...]``.
    """
    fees = [fee_ppm] * len(reserves) if isinstance(fee_ppm, int) else list(fee_ppm)
    if len(fees) != len(reserves):
        raise AMMError("get_amounts_out: need one fee per hop")
    amounts = [amount_in]
    for (reserve_in, reserve_out), fee in zip(reserves, fees):
        amounts.append(get_amount_out(amounts[-1], reserve_in, reserve_out, fee))
    return amounts


def get_amounts_in(
    amount_out: int, reserves: Sequence[tuple[int, int]], fee_ppm: int | Sequence[int] = 3000
) -> list[int]:
    """``getAmountsIn`` over a path given as ``[(reserve_in, reserve_out), ...]`` per hop (in path order).

    Returns ``[amount_in, ..., amount_out]`` like the library.
    """
    fees = [fee_ppm] * len(reserves) if isinstance(fee_ppm, int) else list(fee_ppm)
    if len(fees) != len(reserves):
        raise AMMError("get_amounts_in: need one fee per hop")
    amounts = [amount_out]
    for (reserve_in, reserve_out), fee in zip(reversed(reserves), reversed(fees)):
        amounts.append(get_amount_in(amounts[-1], reserve_in, reserve_out, fee))
    amounts.reverse()
    return amounts


def reserves_after_swap(
    amount_in: int, amount_out: int, reserve_in: int, reserve_out: int
) -> tuple[int, int]:
    """``(reserve_in, reserve_out)`` after a swap settles (the pair's ``_update`` with the new balances).

    Assumes no donations or fee-on-transfer: the pair's balances move by exactly the swapped amounts.
    """
    if amount_out >= reserve_out:
        raise InsufficientLiquidity("UniswapV2: INSUFFICIENT_LIQUIDITY")
    new_in = reserve_in + amount_in
    if new_in > MAX_UINT112:
        raise Overflow("UniswapV2: OVERFLOW (reserve does not fit uint112)")
    return new_in, reserve_out - amount_out
