"""Mirror of Uniswap v4-core ``PoolKey.sol`` / ``PoolId.sol``, the checks of ``PoolManager.initialize``, and our
admission rule for V4 pools.

A V4 pool has no address: all pools live in the one PoolManager, named by ``PoolId = keccak256(abi.encode(key))``
over the 5-word key ``(currency0, currency1, fee, tickSpacing, hooks)``.  Our instrument ids
(:class:`protocol.ids.PoolId`) have a 160-bit address field, so a V4 pool's instrument id carries the *first 20
bytes* of its pool id there (kind ``UNISWAP_V4``); the full 32-byte id and the key are what the collector keeps to
talk to the PoolManager.  Two keys colliding in 160 bits of a keccak is not a practical concern; the mapping is
one-way (a PoolKey is needed to go back, as on chain, where keys are only ever emitted in ``Initialize``).

Native ETH is ``currency0 = address(0)`` (it always sorts first).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import keccak

from protocol.ids import PoolId, VenueKind, address_to_int

from .errors import InvalidPoolState
from .hooks import get_permissions, is_valid_hook_address
from .lp_fee_library import DYNAMIC_FEE_FLAG, get_initial_lp_fee, is_dynamic_fee

__all__ = ["MAX_TICK_SPACING", "MIN_TICK_SPACING", "PoolKey", "admission"]

MIN_TICK_SPACING = 1
MAX_TICK_SPACING = (1 << 15) - 1  # type(int16).max

_MASK160 = (1 << 160) - 1
_MASK256 = (1 << 256) - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolKey:
    """``PoolKey``: addresses as ints (``protocol.ids.address_to_int`` accepts hex or bytes via :meth:`of`)."""

    currency0: int
    currency1: int
    fee: int
    tick_spacing: int
    hooks: int = 0

    @classmethod
    def of(cls, currency0: str | bytes | int, currency1: str | bytes | int, fee: int, tick_spacing: int,
           hooks: str | bytes | int = 0) -> PoolKey:
        def a(v: str | bytes | int) -> int:
            return v if isinstance(v, int) else address_to_int(v)
        return cls(currency0=a(currency0), currency1=a(currency1), fee=fee, tick_spacing=tick_spacing,
                   hooks=a(hooks))

    def encode(self) -> bytes:
        """``abi.encode(key)``: five 32-byte words, ``tickSpacing`` sign-extended."""
        return b"".join(
            (v & _MASK256).to_bytes(32, "big")
            for v in (self.currency0, self.currency1, self.fee, self.tick_spacing, self.hooks)
        )

    def to_id(self) -> bytes:
        """``PoolIdLibrary.toId``: the 32-byte pool id (what ``Initialize``/``Swap``/``ModifyLiquidity`` index)."""
        return keccak(self.encode())

    def instrument_id(self, chain_id: int, venue: int) -> PoolId:
        """Our instrument id for this pool: kind ``UNISWAP_V4``, address = the pool id's first 20 bytes."""
        return PoolId.of(chain_id, venue, VenueKind.UNISWAP_V4, self.to_id()[:20],
                         self.currency0.to_bytes(20, "big"), self.currency1.to_bytes(20, "big"))

    def validate(self) -> int:
        """The checks of ``PoolManager.initialize`` that depend on the key alone; returns the initial LP fee.

        Raises :class:`InvalidPoolState` with the PoolManager's error name where it would revert."""
        for name, v in (("currency0", self.currency0), ("currency1", self.currency1), ("hooks", self.hooks)):
            if not 0 <= v <= _MASK160:
                raise InvalidPoolState(f"{name} {v} is not an address")
        if not 0 <= self.fee < 1 << 24:
            raise InvalidPoolState(f"fee {self.fee} does not fit uint24")
        if self.tick_spacing > MAX_TICK_SPACING:
            raise InvalidPoolState(f"TickSpacingTooLarge: {self.tick_spacing}")
        if self.tick_spacing < MIN_TICK_SPACING:
            raise InvalidPoolState(f"TickSpacingTooSmall: {self.tick_spacing}")
        if self.currency0 >= self.currency1:
            raise InvalidPoolState("CurrenciesOutOfOrderOrEqual")
        if not is_valid_hook_address(self.hooks, self.fee):
            raise InvalidPoolState(f"HookAddressNotValid: 0x{self.hooks:040x}")
        return get_initial_lp_fee(self.fee)


def admission(key: PoolKey) -> str | None:
    """Why we refuse to simulate the pool with ``key`` (``None``: it is simulated exactly).

    Refused: keys no PoolManager accepts, a dynamic fee (the hook sets the fee, unknowable in advance), and hooks
    with a swap return-delta permission (they take or give part of each swap).  Everything else -- no hook, or a
    hook that only observes swaps or acts on liquidity/donations/initialisation -- swaps as the core math says.
    The caller logs the reason (this layer does not log)."""
    try:
        key.validate()
    except InvalidPoolState as exc:
        return f"invalid pool key: {exc}"
    if is_dynamic_fee(key.fee):
        return f"dynamic LP fee (fee 0x{DYNAMIC_FEE_FLAG:06x}): the hook sets the fee, it cannot be simulated"
    perms = get_permissions(key.hooks)
    if perms.can_change_swap_amounts:
        which = [n for n, on in (("beforeSwapReturnDelta", perms.before_swap_return_delta),
                                 ("afterSwapReturnDelta", perms.after_swap_return_delta)) if on]
        return f"hook 0x{key.hooks:040x} may change swap amounts ({', '.join(which)})"
    return None
