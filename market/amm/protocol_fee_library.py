"""Mirror of Uniswap v4-core ``ProtocolFeeLibrary.sol``: the protocol fee and the swap fee it implies.

Unlike V3, where the protocol takes a share *of* the LP fee and swap amounts do not depend on it, a V4 protocol
fee is charged on top: the swap runs at ``swapFee = calculateSwapFee(protocolFee, lpFee)`` (protocol fee first,
then the LP fee on what remains), so a pool's protocol fee changes every quote and must be part of its state.

``slot0.protocolFee`` packs two 12-bit fees, one per direction: bits 0-11 for zero-for-one swaps, bits 12-23 for
one-for-zero, each at most ``MAX_PROTOCOL_FEE`` (1000 pips = 0.1 %).
"""

from __future__ import annotations

__all__ = [
    "MAX_PROTOCOL_FEE",
    "PIPS_DENOMINATOR",
    "calculate_swap_fee",
    "get_one_for_zero_fee",
    "get_zero_for_one_fee",
    "is_valid_protocol_fee",
]

MAX_PROTOCOL_FEE = 1000
PIPS_DENOMINATOR = 1_000_000
_FEE_0_THRESHOLD = 1001
_FEE_1_THRESHOLD = 1001 << 12


def get_zero_for_one_fee(protocol_fee: int) -> int:
    return protocol_fee & 0xFFF


def get_one_for_zero_fee(protocol_fee: int) -> int:
    return protocol_fee >> 12


def is_valid_protocol_fee(protocol_fee: int) -> bool:
    """Both 12-bit halves at most ``MAX_PROTOCOL_FEE`` (and nothing above bit 23)."""
    return (protocol_fee & 0xFFF) < _FEE_0_THRESHOLD and (protocol_fee & 0xFFF000) < _FEE_1_THRESHOLD \
        and protocol_fee >> 24 == 0


def calculate_swap_fee(protocol_fee: int, lp_fee: int) -> int:
    """``calculateSwapFee(self, lpFee)`` for *one direction's* protocol fee:
    ``protocolFee + lpFee - floor(protocolFee * lpFee / 1e6)``.

    This is the released v4-core (npm 1.0.x, the deployed bytecode): the division truncates and the protocol
    fee is masked to 12 bits.  An earlier development version rounded the division up; do not "fix" it."""
    protocol_fee &= 0xFFF
    lp_fee &= 0xFFFFFF
    return protocol_fee + lp_fee - protocol_fee * lp_fee // PIPS_DENOMINATOR
