"""Pool mid prices and the conversion of amounts between two tokens at such a price.

Every price is an exact integer fraction ``(num, den)`` of "token out per token in", or a
Q64.96 fixed-point number (``price * 2**96``, floored) where one integer per pool is wanted:

* V2: ``reserve1 / reserve0`` (token1 per token0);
* V3: ``sqrtPriceX96**2 / 2**192`` (token1 per token0).

Conversions never use floats. A *cost* is rounded up (never understated by rounding), a value
down: the caller says which with ``round_up``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from market.pools import PoolState, V2Pool, V3Pool
from protocol.ids import PoolId, TokenId, VenueKind
from protocol.market import PoolSnapshot, V2Reserves, V3Initialize, V3Swap

if TYPE_CHECKING:
    from market.state import PoolStateManager

Q96 = 1 << 96
Q192 = 1 << 192


def mid_price(pool: V2Pool | V3Pool, src_is_token0: bool) -> tuple[int, int]:
    """The pool's mid price as ``(num, den)``: units of the other token per unit of the source."""
    if isinstance(pool, V2Pool):
        return (pool.reserve1, pool.reserve0) if src_is_token0 else (pool.reserve0, pool.reserve1)
    assert pool.v3 is not None
    p2 = pool.v3.sqrt_price_x96 * pool.v3.sqrt_price_x96  # token1 per token0, times 2**192
    return (p2, Q192) if src_is_token0 else (Q192, p2)


def deepest_pool(pools: Iterable[PoolState], src: TokenId) -> V2Pool | V3Pool | None:
    """The V2/V3 pool holding the most of ``src`` (the first such on a tie); None without one."""
    best: V2Pool | V3Pool | None = None
    depth = -1
    for st in pools:
        if isinstance(st, (V2Pool, V3Pool)):
            d = st.balance_in(src == st.pool.token0)
            if d > depth:
                best, depth = st, d
    return best


def convert(amount: int, src: TokenId, dst: TokenId, pools: Iterable[PoolState], *, round_up: bool) -> int | None:
    """``amount`` of ``src`` in ``dst`` units at the mid price of the deepest V2/V3 pool among
    ``pools`` (pools pairing ``src`` and ``dst``); None without such a pool."""
    if src == dst:
        return amount
    best = deepest_pool(pools, src)
    if best is None:
        return None
    num, den = mid_price(best, src == best.pool.token0)
    return -(-amount * num // den) if round_up else amount * num // den


def convert_from_gas_token(amount_wei: int, gas_token: TokenId, token: TokenId, state: PoolStateManager) -> int | None:
    """``amount_wei`` of the gas token in ``token`` units at the deepest tradable pool's mid price,
    rounded up (it is a cost); None if no tradable V2/V3 pool pairs the two."""
    return state.convert(amount_wei, gas_token, token, round_up=True)


def convert_q96(amount: int, price_q96: int, src_is_token0: bool) -> int:
    """``amount`` (signed) of one token of a pool in the other at a Q64.96 token1-per-token0 price,
    rounded toward zero (a debit and a credit of one size get values of one size)."""
    num, den = (price_q96, Q96) if src_is_token0 else (Q96, price_q96)
    return amount * num // den if amount >= 0 else -((-amount) * num // den)


def pool_price_q96(record: Any) -> tuple[PoolId, int] | None:
    """(pool, token1-per-token0 price as Q64.96, floored) from a market-data record, or None for a
    record that carries no price (or an empty pool's)."""
    tp = type(record)
    if tp is V2Reserves:
        if record.reserve0 and record.reserve1:
            return PoolId(record.pool), (record.reserve1 << 96) // record.reserve0
    elif tp is V3Swap or tp is V3Initialize:
        if record.sqrt_price_x96:
            return PoolId(record.pool), (record.sqrt_price_x96 * record.sqrt_price_x96) >> 96
    elif tp is PoolSnapshot:
        if record.sqrt_price_x96:
            return PoolId(record.pool), (record.sqrt_price_x96 * record.sqrt_price_x96) >> 96
        if record.reserve0 and record.reserve1 and PoolId(record.pool).kind != VenueKind.UNISWAP_V3:
            return PoolId(record.pool), (record.reserve1 << 96) // record.reserve0
    return None
