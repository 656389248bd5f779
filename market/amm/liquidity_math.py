"""Mirror of Uniswap v3-core ``LiquidityMath.sol`` (and the liquidity bookkeeping rules of ``Tick.sol``).

``add_delta`` is what the pool uses when a swap crosses an initialized tick and when a position is minted or
burned inside the current range; it reverts with ``'LS'`` on underflow and ``'LA'`` on uint128 overflow.  A
revert here during a simulated swap means the tick map is inconsistent with the pool's active liquidity (e.g. an
incomplete tick map), which is worth surfacing rather than clamping.
"""

from __future__ import annotations

from .errors import Overflow, Underflow
from .full_math import MAX_UINT128
from .tick_math import MAX_TICK, MIN_TICK

__all__ = ["add_delta", "tick_spacing_to_max_liquidity_per_tick"]


def add_delta(x: int, y: int) -> int:
    """``LiquidityMath.addDelta(uint128 x, int128 y)``: ``x + y`` with the contract's reverts."""
    if y < 0:
        z = x + y
        if z < 0:
            raise Underflow(f"LS: liquidity {x} minus {-y} underflows")
        return z
    z = x + y
    if z > MAX_UINT128:
        raise Overflow(f"LA: liquidity {x} plus {y} overflows uint128")
    return z


def tick_spacing_to_max_liquidity_per_tick(tick_spacing: int) -> int:
    """``Tick.tickSpacingToMaxLiquidityPerTick``: the per-tick liquidityGross cap (``'LO'`` when exceeded).

    Solidity's ``/`` truncates toward zero, so ``MIN_TICK / tickSpacing`` must not use Python's floor division.
    """
    min_tick = -(-MIN_TICK // tick_spacing) * tick_spacing
    max_tick = (MAX_TICK // tick_spacing) * tick_spacing
    num_ticks = (max_tick - min_tick) // tick_spacing + 1
    return MAX_UINT128 // num_ticks
