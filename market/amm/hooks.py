"""Mirror of Uniswap v4-core ``Hooks.sol``: which callbacks a hook contract gets, read from its address.

A V4 hook's permissions are not stored anywhere: they are the low 14 bits of the hook's address (hooks are
deployed with CREATE2 salts mined to produce them).  So the permissions of a pool's hook -- and whether it can
change a swap's amounts -- are known from the PoolKey alone, before anything is read from chain.

What can change a swap's amounts (and therefore cannot be simulated from pool state):

* ``beforeSwapReturnDelta`` -- the hook takes or gives part of the specified amount before the swap
  (custom curves, fee-taking hooks);
* ``afterSwapReturnDelta`` -- the hook takes or gives part of the unspecified amount after it;
* a dynamic fee (see :mod:`.lp_fee_library`): ``beforeSwap`` may override the LP fee, and the hook may change it
  at any time.

``beforeSwap``/``afterSwap`` without the delta flags only observe (the PoolManager ignores a returned fee
unless the fee is dynamic, and ignores the deltas without the flags), so such pools swap exactly as a hookless
pool does -- given the state the hook leaves behind.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lp_fee_library import is_dynamic_fee

__all__ = [
    "AFTER_ADD_LIQUIDITY_FLAG",
    "AFTER_ADD_LIQUIDITY_RETURNS_DELTA_FLAG",
    "AFTER_DONATE_FLAG",
    "AFTER_INITIALIZE_FLAG",
    "AFTER_REMOVE_LIQUIDITY_FLAG",
    "AFTER_REMOVE_LIQUIDITY_RETURNS_DELTA_FLAG",
    "AFTER_SWAP_FLAG",
    "AFTER_SWAP_RETURNS_DELTA_FLAG",
    "ALL_HOOK_MASK",
    "BEFORE_ADD_LIQUIDITY_FLAG",
    "BEFORE_DONATE_FLAG",
    "BEFORE_INITIALIZE_FLAG",
    "BEFORE_REMOVE_LIQUIDITY_FLAG",
    "BEFORE_SWAP_FLAG",
    "BEFORE_SWAP_RETURNS_DELTA_FLAG",
    "Permissions",
    "get_permissions",
    "has_permission",
    "is_valid_hook_address",
]

ALL_HOOK_MASK = (1 << 14) - 1
BEFORE_INITIALIZE_FLAG = 1 << 13
AFTER_INITIALIZE_FLAG = 1 << 12
BEFORE_ADD_LIQUIDITY_FLAG = 1 << 11
AFTER_ADD_LIQUIDITY_FLAG = 1 << 10
BEFORE_REMOVE_LIQUIDITY_FLAG = 1 << 9
AFTER_REMOVE_LIQUIDITY_FLAG = 1 << 8
BEFORE_SWAP_FLAG = 1 << 7
AFTER_SWAP_FLAG = 1 << 6
BEFORE_DONATE_FLAG = 1 << 5
AFTER_DONATE_FLAG = 1 << 4
BEFORE_SWAP_RETURNS_DELTA_FLAG = 1 << 3
AFTER_SWAP_RETURNS_DELTA_FLAG = 1 << 2
AFTER_ADD_LIQUIDITY_RETURNS_DELTA_FLAG = 1 << 1
AFTER_REMOVE_LIQUIDITY_RETURNS_DELTA_FLAG = 1 << 0


def has_permission(hooks: int, flag: int) -> bool:
    """``hasPermission``: the flag's bit is set in the hook address (an int)."""
    return hooks & flag != 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Permissions:
    """``Hooks.Permissions``, decoded from an address (the field names of the Solidity struct)."""

    before_initialize: bool
    after_initialize: bool
    before_add_liquidity: bool
    after_add_liquidity: bool
    before_remove_liquidity: bool
    after_remove_liquidity: bool
    before_swap: bool
    after_swap: bool
    before_donate: bool
    after_donate: bool
    before_swap_return_delta: bool
    after_swap_return_delta: bool
    after_add_liquidity_return_delta: bool
    after_remove_liquidity_return_delta: bool

    @property
    def can_change_swap_amounts(self) -> bool:
        """The hook may take or give part of a swap (the two swap return-delta permissions)."""
        return self.before_swap_return_delta or self.after_swap_return_delta


def get_permissions(hooks: int) -> Permissions:
    """The permissions the PoolManager grants the hook at address ``hooks`` (an int)."""
    return Permissions(
        before_initialize=has_permission(hooks, BEFORE_INITIALIZE_FLAG),
        after_initialize=has_permission(hooks, AFTER_INITIALIZE_FLAG),
        before_add_liquidity=has_permission(hooks, BEFORE_ADD_LIQUIDITY_FLAG),
        after_add_liquidity=has_permission(hooks, AFTER_ADD_LIQUIDITY_FLAG),
        before_remove_liquidity=has_permission(hooks, BEFORE_REMOVE_LIQUIDITY_FLAG),
        after_remove_liquidity=has_permission(hooks, AFTER_REMOVE_LIQUIDITY_FLAG),
        before_swap=has_permission(hooks, BEFORE_SWAP_FLAG),
        after_swap=has_permission(hooks, AFTER_SWAP_FLAG),
        before_donate=has_permission(hooks, BEFORE_DONATE_FLAG),
        after_donate=has_permission(hooks, AFTER_DONATE_FLAG),
        before_swap_return_delta=has_permission(hooks, BEFORE_SWAP_RETURNS_DELTA_FLAG),
        after_swap_return_delta=has_permission(hooks, AFTER_SWAP_RETURNS_DELTA_FLAG),
        after_add_liquidity_return_delta=has_permission(hooks, AFTER_ADD_LIQUIDITY_RETURNS_DELTA_FLAG),
        after_remove_liquidity_return_delta=has_permission(hooks, AFTER_REMOVE_LIQUIDITY_RETURNS_DELTA_FLAG),
    )


def is_valid_hook_address(hooks: int, fee: int) -> bool:
    """``isValidHookAddress``: a return-delta flag needs its action flag; no hook means no dynamic fee; a hook
    must have at least one flag or a dynamic fee.  ``PoolManager.initialize`` reverts ``HookAddressNotValid``
    otherwise, so no pool with such a key can exist."""
    for action, delta in (
        (BEFORE_SWAP_FLAG, BEFORE_SWAP_RETURNS_DELTA_FLAG),
        (AFTER_SWAP_FLAG, AFTER_SWAP_RETURNS_DELTA_FLAG),
        (AFTER_ADD_LIQUIDITY_FLAG, AFTER_ADD_LIQUIDITY_RETURNS_DELTA_FLAG),
        (AFTER_REMOVE_LIQUIDITY_FLAG, AFTER_REMOVE_LIQUIDITY_RETURNS_DELTA_FLAG),
    ):
        if not has_permission(hooks, action) and has_permission(hooks, delta):
            return False
    if hooks == 0:
        return not is_dynamic_fee(fee)
    return hooks & ALL_HOOK_MASK > 0 or is_dynamic_fee(fee)
