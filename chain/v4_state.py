"""Reading a Uniswap V4 pool's state out of the PoolManager's storage (``extsload``), as v4-core's
``StateLibrary`` does: the storage layout, the slot of each field and the decoding of each word.

V4 pools are not contracts: every pool is ``pools[poolId]`` (a ``Pool.State``) in the PoolManager's
storage at slot 6, and the PoolManager exposes raw storage reads (``extsload(bytes32[])``) so that
anyone can read slot0, liquidity, ticks and the tick bitmap in one call. Both the devnet client and the
EVM collector's bootstrap use this module; it only computes slots, builds the call and decodes words.

``Pool.State`` layout (offsets from the pool's slot)::

    +0 slot0: sqrtPriceX96:160 | tick:24 | protocolFee:24 | lpFee:24 (low bits first)
    +1 feeGrowthGlobal0X128   +2 feeGrowthGlobal1X128   +3 liquidity (uint128)
    +4 ticks:      mapping(int24 => TickInfo)   first word: liquidityGross:128 | liquidityNet:128
    +5 tickBitmap: mapping(int16 => uint256)
    +6 positions
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import eth_abi
from eth_utils import function_signature_to_4byte_selector, keccak

__all__ = [
    "POOLS_SLOT",
    "Slot0",
    "all_bitmap_slots",
    "bitmap_slot",
    "decode_extsload",
    "decode_slot0",
    "decode_tick_liquidity",
    "encode_extsload",
    "initialized_ticks_in_words",
    "liquidity_slot",
    "pool_state_slot",
    "tick_info_slot",
    "word_range",
]

POOLS_SLOT = 6
LIQUIDITY_OFFSET = 3
TICKS_OFFSET = 4
TICK_BITMAP_OFFSET = 5
EXTSLOAD_MANY = function_signature_to_4byte_selector("extsload(bytes32[])")
_M256 = (1 << 256) - 1
MIN_TICK, MAX_TICK = -887272, 887272


def _word(v: int) -> bytes:
    return (v & _M256).to_bytes(32, "big")


def pool_state_slot(pool_id: bytes) -> int:
    """``keccak256(abi.encodePacked(poolId, POOLS_SLOT))``."""
    return int.from_bytes(keccak(pool_id + _word(POOLS_SLOT)), "big")


def liquidity_slot(pool_id: bytes) -> int:
    return pool_state_slot(pool_id) + LIQUIDITY_OFFSET


def tick_info_slot(pool_id: bytes, tick: int) -> int:
    """``keccak256(abi.encodePacked(int256(tick), stateSlot + TICKS_OFFSET))``."""
    return int.from_bytes(keccak(_word(tick) + _word(pool_state_slot(pool_id) + TICKS_OFFSET)), "big")


def bitmap_slot(pool_id: bytes, word_pos: int) -> int:
    """``keccak256(abi.encodePacked(int256(wordPos), stateSlot + TICK_BITMAP_OFFSET))``."""
    return int.from_bytes(keccak(_word(word_pos) + _word(pool_state_slot(pool_id) + TICK_BITMAP_OFFSET)), "big")


@functools.lru_cache(maxsize=256)
def all_bitmap_slots(pool_id: bytes, tick_spacing: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(word positions, their slots)`` of every bitmap word the pool can use (cached: for a tick
    spacing of 1 that is ~6,900 keccaks, computed once per pool)."""
    base = _word(pool_state_slot(pool_id) + TICK_BITMAP_OFFSET)
    words = tuple(word_range(tick_spacing))
    return words, tuple(int.from_bytes(keccak(_word(w) + base), "big") for w in words)


@dataclass(frozen=True, slots=True)
class Slot0:
    sqrt_price_x96: int
    tick: int
    protocol_fee: int
    lp_fee: int


def decode_slot0(word: int) -> Slot0:
    tick = (word >> 160) & 0xFFFFFF
    if tick >= 1 << 23:
        tick -= 1 << 24
    return Slot0(word & ((1 << 160) - 1), tick, (word >> 184) & 0xFFFFFF, (word >> 208) & 0xFFFFFF)


def decode_tick_liquidity(word: int) -> tuple[int, int]:
    """``(liquidityGross, liquidityNet)`` of a TickInfo's first word."""
    net = word >> 128
    if net >= 1 << 127:
        net -= 1 << 128
    return word & ((1 << 128) - 1), net


def encode_extsload(slots: Sequence[int]) -> bytes:
    """Calldata of ``extsload(bytes32[] slots)``."""
    return EXTSLOAD_MANY + eth_abi.encode(["bytes32[]"], [[_word(s) for s in slots]])


def decode_extsload(data: bytes) -> list[int]:
    return [int.from_bytes(w, "big") for w in eth_abi.decode(["bytes32[]"], data)[0]]


def word_range(tick_spacing: int) -> range:
    """Every bitmap word a pool with this spacing can use (compressed ticks >> 8, floor division)."""
    return range((MIN_TICK // tick_spacing) >> 8, ((MAX_TICK // tick_spacing) >> 8) + 1)


def initialized_ticks_in_words(words: dict[int, int], tick_spacing: int) -> list[int]:
    """The ticks whose bits are set in ``{wordPos: bitmap word}``, in increasing order."""
    ticks = []
    for pos in sorted(words):
        w = words[pos]
        while w:
            low = w & -w
            ticks.append(((pos << 8) + low.bit_length() - 1) * tick_spacing)
            w ^= low
    return ticks
