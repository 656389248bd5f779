"""Mirror of Uniswap v4-core ``LPFeeLibrary.sol``: the LP fee of a pool, in pips (hundredths of a basis point).

A PoolKey's ``fee`` is either a static LP fee (at most ``MAX_LP_FEE`` = 100 %, unlike V3's fixed tiers) or the
sentinel ``DYNAMIC_FEE_FLAG`` (0x800000): the pool starts at an LP fee of 0 and its hook may set any fee at any
time (``updateDynamicLPFee``) or override it per swap from ``beforeSwap`` (a fee with ``OVERRIDE_FEE_FLAG`` set).
A dynamic fee is therefore not knowable from chain state before the swap, which is why such pools are refused
(:func:`market.amm.pool_key.admission`).
"""

from __future__ import annotations

from .errors import InvalidPoolState

__all__ = [
    "DYNAMIC_FEE_FLAG",
    "MAX_LP_FEE",
    "OVERRIDE_FEE_FLAG",
    "REMOVE_OVERRIDE_MASK",
    "get_initial_lp_fee",
    "is_dynamic_fee",
    "is_override",
    "is_valid",
    "remove_override_flag",
    "remove_override_flag_and_validate",
    "validate",
]

DYNAMIC_FEE_FLAG = 0x800000
OVERRIDE_FEE_FLAG = 0x400000  # only dynamic-fee pools may return a fee from beforeSwap
REMOVE_OVERRIDE_MASK = 0xBFFFFF
MAX_LP_FEE = 1_000_000  # 100 %


def is_dynamic_fee(fee: int) -> bool:
    """``isDynamicFee``: the key's fee is exactly the dynamic-fee sentinel (other high bits are just invalid)."""
    return fee == DYNAMIC_FEE_FLAG


def is_valid(fee: int) -> bool:
    return fee <= MAX_LP_FEE


def validate(fee: int) -> None:
    """``validate``: reverts ``LPFeeTooLarge(fee)`` above 100 %."""
    if not is_valid(fee):
        raise InvalidPoolState(f"LPFeeTooLarge: {fee} pips > {MAX_LP_FEE}")


def get_initial_lp_fee(fee: int) -> int:
    """``getInitialLPFee``: 0 for a dynamic-fee key, else the validated static fee."""
    if is_dynamic_fee(fee):
        return 0
    validate(fee)
    return fee


def is_override(fee: int) -> bool:
    return fee & OVERRIDE_FEE_FLAG != 0


def remove_override_flag(fee: int) -> int:
    return fee & REMOVE_OVERRIDE_MASK


def remove_override_flag_and_validate(fee: int) -> int:
    fee = remove_override_flag(fee)
    validate(fee)
    return fee
