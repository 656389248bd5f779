"""Exceptions raised where the mirrored contracts would revert.

Every math function in :mod:`market.amm` raises a subclass of :class:`AMMError` at exactly the point where the
Solidity/Vyper code it mirrors would revert, so callers can treat "this swap would revert on chain" as one
exception type.  :class:`AMMError` derives from :class:`ValueError` because every revert here is caused by the
arguments (amounts, prices, ticks) rather than by the environment.

Where the contract has a revert string (``'T'``, ``'SPL'``, ``'LS'``, ...) the message starts with it, which makes
it easy to match a simulated failure against an ``eth_call`` revert reason.
"""

from __future__ import annotations

__all__ = [
    "AMMError",
    "DivisionByZero",
    "InsufficientInputAmount",
    "InsufficientLiquidity",
    "InsufficientOutputAmount",
    "InvalidAmount",
    "InvalidPoolState",
    "InvalidPriceLimit",
    "InvalidSqrtPrice",
    "InvalidTick",
    "Overflow",
    "Underflow",
]


class AMMError(ValueError):
    """Base class: the mirrored contract would revert with these arguments."""


class Overflow(AMMError):
    """An intermediate or final value does not fit its Solidity/Vyper type (uint256, uint160, int256, uint128...)."""


class Underflow(AMMError):
    """An unsigned subtraction would go below zero (SafeMath ``sub``, LiquidityMath ``'LS'``, Vyper uint256)."""


class DivisionByZero(AMMError):
    """A checked division by zero (FullMath ``require(denominator > 0)``, Vyper ``/``)."""


class InvalidTick(AMMError):
    """Tick outside ``[MIN_TICK, MAX_TICK]`` (TickMath ``'T'``), or not a multiple of the tick spacing."""


class InvalidSqrtPrice(AMMError):
    """sqrt price outside ``[MIN_SQRT_RATIO, MAX_SQRT_RATIO)`` (TickMath ``'R'``) or zero where it must be > 0."""


class InvalidPriceLimit(AMMError):
    """Swap price limit on the wrong side of the current price or outside the ratio bounds (pool ``'SPL'``)."""


class InvalidAmount(AMMError):
    """Zero or out-of-range swap amount (pool ``'AS'``, amounts that do not fit int256)."""


class InsufficientLiquidity(AMMError):
    """Not enough reserves / liquidity for the requested output (V2 ``INSUFFICIENT_LIQUIDITY``, SqrtPriceMath)."""


class InsufficientInputAmount(AMMError):
    """UniswapV2Library ``INSUFFICIENT_INPUT_AMOUNT``."""


class InsufficientOutputAmount(AMMError):
    """UniswapV2Library ``INSUFFICIENT_OUTPUT_AMOUNT``."""


class InvalidPoolState(AMMError):
    """A pool-state object was constructed with values no deployed pool can hold."""
