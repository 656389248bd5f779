"""Market-data TLVs (types 1-19), carried in domain 1 messages.

Prices and sizes from order-book venues are unsigned integers with a decimal
scale (``price = price_mantissa / 10**price_scale``); AMM values are raw
on-chain integers in token base units. Nothing here is ever a float.
"""

from enum import IntEnum
from typing import Annotated

from .fields import (
    address,
    bytes32,
    i32,
    i128,
    i256,
    int24,
    list_of,
    pool_id,
    text,
    u8,
    u16,
    u32,
    u64,
    u112,
    u128,
    u160,
    u256,
)
from .tlv import TLV, Record


class Side(IntEnum):
    UNKNOWN = 0
    BUY = 1
    SELL = 2


class Trade(TLV):
    """A trade on an order-book venue (``symbol`` in the venue's own spelling)."""

    TYPE = 1
    venue: u16
    side: u8
    price_scale: u8
    size_scale: u8
    trade_id: u64
    price: u128
    size: u128
    symbol: text


class Quote(TLV):
    """Top of book."""

    TYPE = 2
    venue: u16
    price_scale: u8
    size_scale: u8
    update_id: u64
    bid_price: u128
    bid_size: u128
    ask_price: u128
    ask_size: u128
    symbol: text


class BookLevel(TLV):
    """One order-book level update; ``size == 0`` removes the level."""

    TYPE = 3
    venue: u16
    side: u8
    price_scale: u8
    size_scale: u8
    update_id: u64
    price: u128
    size: u128
    symbol: text


class V2Reserves(TLV):
    """Uniswap V2 ``Sync``: the pair's reserves after a change."""

    TYPE = 4
    pool: pool_id
    block_number: u64
    log_index: u32
    reserve0: u112
    reserve1: u112


class V2Swap(TLV):
    """Uniswap V2 ``Swap``."""

    TYPE = 5
    pool: pool_id
    block_number: u64
    log_index: u32
    tx_hash: bytes32
    sender: address
    recipient: address
    amount0_in: u256
    amount1_in: u256
    amount0_out: u256
    amount1_out: u256


class V3Swap(TLV):
    """Uniswap V3 ``Swap``: signed pool deltas and the pool's state after the swap."""

    TYPE = 6
    pool: pool_id
    block_number: u64
    log_index: u32
    tx_hash: bytes32
    amount0: i256
    amount1: i256
    sqrt_price_x96: u160
    liquidity: u128
    tick: int24


class LiquidityKind(IntEnum):
    MINT = 1
    BURN = 2


class LiquidityChange(TLV):
    """Mint or burn. V3: ``liquidity`` over ``[tick_lower, tick_upper)``; V2: LP tokens, ticks 0."""

    TYPE = 7
    pool: pool_id
    block_number: u64
    log_index: u32
    tx_hash: bytes32
    kind: u8
    tick_lower: int24
    tick_upper: int24
    liquidity: u128
    amount0: u256
    amount1: u256
    owner: address


class TickLiquidity(Record):
    """One initialized V3 tick: its signed net liquidity change when crossed upwards."""

    tick: int24
    liquidity_net: i128


class PoolSnapshot(TLV):
    """Full pool state at one block, for bootstrap and resync (usually the extended form).

    V2: ``reserve0``/``reserve1`` set, V3 fields zero, no ticks.
    V3: ``sqrt_price_x96``, ``tick``, ``liquidity``, ``tick_spacing`` and every
    initialized tick; ``reserve0``/``reserve1`` carry the pool's token balances.
    """

    TYPE = 8
    pool: pool_id
    block_number: u64
    fee_ppm: u32
    tick_spacing: i32
    reserve0: u256
    reserve1: u256
    sqrt_price_x96: u160
    tick: int24
    liquidity: u128
    ticks: Annotated[tuple[TickLiquidity, ...], list_of(TickLiquidity)]


class BlockHeader(TLV):
    """A new chain head, with gas prices in wei."""

    TYPE = 9
    chain_id: u32
    number: u64
    timestamp: u64
    gas_limit: u64
    gas_used: u64
    hash: bytes32
    parent_hash: bytes32
    base_fee: u256
    priority_fee: u256


class InvalidationReason(IntEnum):
    DISCONNECT = 1
    REORG = 2
    BACKFILL = 3
    STALE = 4
    FAILOVER = 5
    RESYNC = 6


class StateInvalidation(TLV):
    """The producer's view of ``pool`` (or of the whole chain when ``pool == 0``) is not trustworthy
    from ``from_block`` on, until a fresh snapshot or update for it arrives."""

    TYPE = 10
    chain_id: u32
    pool: pool_id
    from_block: u64
    reason: u8
    detail: text


class V3Initialize(TLV):
    """Uniswap V3 ``Initialize``: the pool's first price."""

    TYPE = 11
    pool: pool_id
    block_number: u64
    log_index: u32
    sqrt_price_x96: u160
    tick: int24


class V4ProtocolFee(TLV):
    """A Uniswap V4 pool's protocol fee (``slot0.protocolFee``: two 12-bit fees in pips, zero-for-one in
    the low bits, each charged on top of the LP fee): a ``ProtocolFeeUpdated`` log, or the value at a
    snapshot's block. A V4 pool's ``PoolSnapshot`` carries its LP fee (``fee_ppm``) but no field for this,
    so the collector sends this record *before* the snapshot in the same message, with the snapshot's block
    and ``log_index`` 0xFFFFFFFF."""

    TYPE = 12
    pool: pool_id
    block_number: u64
    log_index: u32
    protocol_fee: u32
