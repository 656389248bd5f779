"""Raw EVM logs -> protocol TLVs, for Uniswap V2, V3 and V4 pools known in advance.

Theory of operation
-------------------
Input is one log object exactly as ``eth_getLogs`` / ``eth_subscribe("logs")``
return it: a dict of hex strings ::

    {"address": "0x88e6...", "topics": ["0xc420...", ...], "data": "0x...",
     "blockNumber": "0x120f6a6", "logIndex": "0xa9", "transactionHash": "0x0bb5...",
     "removed": False, ...}

``LogDecoder`` knows every pool it cares about up front (address -> ``PoolId``,
which already carries chain, venue, kind and both tokens), so decoding is two
dict lookups -- the pool by address, the handler by ``topics[0]`` -- and one
handler that slices the ABI words out of the data and builds the TLV.

Why not eth-abi: for these fixed, static event layouts eth-abi's generic
stream decoder spends its time in per-call dispatch and object plumbing. Here
every layout is known, so a handler does one ``bytes.fromhex`` of the data and
one ``int.from_bytes`` per 32-byte word (``signed=True`` gives the two's
complement of int256 amounts and int24 ticks directly). The result is exact
Python ints, never floats. ``tools/bench/decode.py`` measures the difference
against eth-abi on real logs in the same run.

Strictness: malformed input raises ``LogDecodeError`` and never yields a wrong
number. Checked like eth-abi's strict decoder: data length, hex validity
(``bytes.fromhex`` rejects non-hex; embedded whitespace, which it tolerates,
changes the byte count and is caught by the length check), zero padding of
narrow unsigned words (uint112/uint128/uint160, addresses), sign extension of
int24 words, the number of topics, and the ``0x`` prefixes. Topics a TLV does not
carry (a V3 Swap's sender/recipient) are not parsed; only their number is checked. The
decoder never swallows its own errors: the caller decides whether to skip, count or stop.

Uniswap V4: every V4 pool's events come from one contract, the PoolManager, with the 32-byte pool
id as ``topics[1]``. The manager's address maps to the V4 handlers with no pool, and the handler's
pool is then looked up by the first 20 bytes of that id (what a V4 instrument id carries as its
address, :mod:`market.amm.pool_key`); a pool id we do not follow is an unknown pool. The events
become the V3 records (see ``specs/protocol.md``, "Record types"): ``Swap`` -> ``V3Swap`` with the
amounts turned to the pool's side, ``ModifyLiquidity`` -> ``LiquidityChange``, ``Initialize`` ->
``V3Initialize``, and ``ProtocolFeeUpdated`` -> ``V4ProtocolFee``; ``Donate`` (fee growth only) and a
``ModifyLiquidity`` with a zero delta (a fee collection) are known and ignored.

Curve StableSwap (classic two-coin pools): ``TokenExchange``, ``AddLiquidity``, ``RemoveLiquidity``,
``RemoveLiquidityImbalance`` and ``RemoveLiquidityOne`` decode to a :class:`CurveEvent`, not a wire record:
the events carry amounts, not the pool's balances (an exchange's admin fee leaves the balances unseen), so
the follower's :class:`collectors.evm.curve.CurveBook` applies them to the pool's state with the exact
StableSwap mirror and publishes the resulting ``PoolSnapshot``.

Hot path: ``decode`` does the two lookups in a per-pool table that holds only its
kind's events, parses block number and log index, and calls the handler; any
lookup or parse failure drops to ``_slow_path``, which classifies the log
(unknown pool, unknown or ignored topic, wrong pool kind, checksummed address,
bad fields) and counts it or raises.

Outcomes of ``decode(log)``:

* a TLV (``V2Reserves``, ``V2Swap``, ``V3Swap``, ``LiquidityChange``, ``V3Initialize``);
* ``None`` for a log we do not want -- an unknown pool address, an unknown
  ``topics[0]``, or a known event with no TLV (V3 ``Collect``: it moves fees, not
  price or liquidity); each counted in ``decoder.stats``;
* for a log with ``removed: true`` (its block was reorged out) a
  ``StateInvalidation(reason=REORG, from_block=<its block>)`` for its pool: the
  protocol's way of saying "what you derived from this block on is wrong until a
  fresh snapshot". ``decode_event`` gives the event itself regardless of ``removed``.

TLV objects are built with the same fast path the protocol's own decoder uses
(``object.__new__`` + filling ``__dict__``; the frozen dataclass constructor is
about 4x slower). That skips the constructor's checks, so every value is
range-checked here first, and each field fits its wire width by construction
(the ABI types and the TLV field widths are the same); the test suite checks
that these objects compare and encode equal to constructor-built ones.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from protocol.ids import PoolId, VenueKind
from protocol.market import (
    InvalidationReason,
    LiquidityChange,
    LiquidityKind,
    StateInvalidation,
    V2Reserves,
    V2Swap,
    V3Initialize,
    V3Swap,
    V4ProtocolFee,
)
from protocol.tlv import TLV

__all__ = [
    "EVENT_SIGNATURES",
    "CollectEvent",
    "CurveEvent",
    "CurveOp",
    "DecodeStats",
    "LogDecodeError",
    "LogDecoder",
    "TOPIC0_V2_BURN",
    "TOPIC0_V2_MINT",
    "TOPIC0_V2_SWAP",
    "TOPIC0_V2_SYNC",
    "TOPIC0_V3_BURN",
    "TOPIC0_V3_COLLECT",
    "TOPIC0_V3_INITIALIZE",
    "TOPIC0_V3_MINT",
    "TOPIC0_V3_SWAP",
    "decode_collect",
]

# keccak256 of the canonical event signatures (tests recompute them with eth_utils.keccak).
TOPIC0_V2_SYNC = "0x1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1"
TOPIC0_V2_SWAP = "0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822"
TOPIC0_V2_MINT = "0x4c209b5fc8ad50758f13e2e1088ba56a560dff690a1c6fef26394f4c03821c4f"
TOPIC0_V2_BURN = "0xdccd412f0b1252819cb1fd330b93224ca42612892bb3f4f789976e6d81936496"
TOPIC0_V3_SWAP = "0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67"
TOPIC0_V3_MINT = "0x7a53080ba414158be7ec69b987b5fb7d07dee101fe85488f0853ae16239d0bde"
TOPIC0_V3_BURN = "0x0c396cd989a39f4459b5fa1aed6a9a8dcdbc45908acfd67e028cd568da98982c"
TOPIC0_V3_INITIALIZE = "0x98636036cb66a9c19a37435efc1e90142190214e8abeb821bdba3f2990dd4c95"
TOPIC0_V3_COLLECT = "0x70935338e69775456a85ddef226c395fb668b63fa0115f5f20610b388e6ca9c0"
TOPIC0_V4_INITIALIZE = "0xdd466e674ea557f56295e2d0218a125ea4b4f0f6f3307b95f85e6110838d6438"
TOPIC0_V4_SWAP = "0x40e9cecb9f5f1f1c5b9c97dec2917b7ee92e57ba5563708daca94dd84ad7112f"
TOPIC0_V4_MODIFY_LIQUIDITY = "0xf208f4912782fd25c7f114ca3723a2d5dd6f3bcc3ac8db5af63baa85f711d5ec"
TOPIC0_V4_PROTOCOL_FEE_UPDATED = "0xe9c42593e71f84403b84352cd168d693e2c9fcd1fdbcc3feb21d92b43e6696f9"
TOPIC0_V4_DONATE = "0x29ef05caaff9404b7cb6d1c0e9bbae9eaa7ab2541feba1a9c4248594c08156cb"
TOPIC0_CURVE_TOKEN_EXCHANGE = "0x8b3e96f2b889fa771c53c981b40daf005f63f637f1869f707052d15a3dd97140"
TOPIC0_CURVE_ADD_LIQUIDITY = "0x26f55a85081d24974e85c6c00045d0f0453991e95873f52bff0d21af4079a768"
TOPIC0_CURVE_REMOVE_LIQUIDITY = "0x7c363854ccf79623411f8995b362bce5eddff18c927edc6f5dbbb5e05819a82c"
TOPIC0_CURVE_REMOVE_LIQUIDITY_IMBALANCE = "0x2b5508378d7e19e0d5fa338419034731416c4f5b219a10379956f764317fd47e"
TOPIC0_CURVE_REMOVE_LIQUIDITY_ONE = "0x9e96dd3b997a2a257eec4df9bb6eaf626e206df5f543bd963682d143300be310"

#: topic0 -> canonical signature. Parameter order and which ones are indexed
#: (-> topics, the rest -> data) are noted next to each handler below.
EVENT_SIGNATURES: dict[str, str] = {
    TOPIC0_V2_SYNC: "Sync(uint112,uint112)",
    TOPIC0_V2_SWAP: "Swap(address,uint256,uint256,uint256,uint256,address)",
    TOPIC0_V2_MINT: "Mint(address,uint256,uint256)",
    TOPIC0_V2_BURN: "Burn(address,uint256,uint256,address)",
    TOPIC0_V3_SWAP: "Swap(address,address,int256,int256,uint160,uint128,int24)",
    TOPIC0_V3_MINT: "Mint(address,address,int24,int24,uint128,uint256,uint256)",
    TOPIC0_V3_BURN: "Burn(address,int24,int24,uint128,uint256,uint256)",
    TOPIC0_V3_INITIALIZE: "Initialize(uint160,int24)",
    TOPIC0_V3_COLLECT: "Collect(address,address,int24,int24,uint128,uint128)",
    TOPIC0_V4_INITIALIZE: "Initialize(bytes32,address,address,uint24,int24,address,uint160,int24)",
    TOPIC0_V4_SWAP: "Swap(bytes32,address,int128,int128,uint160,uint128,int24,uint24)",
    TOPIC0_V4_MODIFY_LIQUIDITY: "ModifyLiquidity(bytes32,address,int24,int24,int256,bytes32)",
    TOPIC0_V4_PROTOCOL_FEE_UPDATED: "ProtocolFeeUpdated(bytes32,uint24)",
    TOPIC0_V4_DONATE: "Donate(bytes32,address,uint256,uint256)",
    TOPIC0_CURVE_TOKEN_EXCHANGE: "TokenExchange(address,int128,uint256,int128,uint256)",
    TOPIC0_CURVE_ADD_LIQUIDITY: "AddLiquidity(address,uint256[2],uint256[2],uint256,uint256)",
    TOPIC0_CURVE_REMOVE_LIQUIDITY: "RemoveLiquidity(address,uint256[2],uint256[2],uint256)",
    TOPIC0_CURVE_REMOVE_LIQUIDITY_IMBALANCE: "RemoveLiquidityImbalance(address,uint256[2],uint256[2],uint256,uint256)",
    TOPIC0_CURVE_REMOVE_LIQUIDITY_ONE: "RemoveLiquidityOne(address,uint256,uint256)",
}


class LogDecodeError(ValueError):
    """A log for a known pool and event that does not parse (bad hex, wrong length, bad padding).

    ``log`` is the offending log object (or None when decoding from parts).
    """

    def __init__(self, message: str, log: Any = None) -> None:
        super().__init__(message)
        self.log = log


class DecodeStats:
    """Counters of what ``LogDecoder`` saw. Plain ints: read them, or ``as_dict()``."""

    __slots__ = ("decoded", "removed", "unknown_pool", "unknown_topic", "ignored", "malformed")

    def __init__(self) -> None:
        self.decoded = 0  # logs that became an event TLV
        self.removed = 0  # removed=true logs (became a StateInvalidation)
        self.unknown_pool = 0  # address not in the pool map: skipped
        self.unknown_topic = 0  # topics[0] not one we decode: skipped
        self.ignored = 0  # known events with no TLV (V3 Collect): skipped
        self.malformed = 0  # LogDecodeError raised

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"DecodeStats({', '.join(f'{k}={v}' for k, v in self.as_dict().items())})"


# --------------------------------------------------------------------------- word helpers

_fromhex = bytes.fromhex
_fb = int.from_bytes
_new = object.__new__


# One builder per record type, shared by every pool kind that emits it (V2/V3/V4): the handlers
# check their event's words and pass plain ints; the record is filled here without __init__.
def _swap_record(pool: PoolId, block: int, index: int, txh: str | None, amount0: int, amount1: int,
                 sqrt_price: int, liquidity: int, tick: int) -> V3Swap:
    o = _new(V3Swap)
    d = o.__dict__
    d["pool"] = pool
    d["block_number"] = block
    d["log_index"] = index
    d["tx_hash"] = _tx_hash(txh)
    d["amount0"] = amount0
    d["amount1"] = amount1
    d["sqrt_price_x96"] = sqrt_price
    d["liquidity"] = liquidity
    d["tick"] = tick
    return o


def _liquidity_record(pool: PoolId, block: int, index: int, txh: str | None, kind: int, tick_lower: int,
                      tick_upper: int, liquidity: int, amount0: int, amount1: int, owner: str) -> LiquidityChange:
    o = _new(LiquidityChange)
    d = o.__dict__
    d["pool"] = pool
    d["block_number"] = block
    d["log_index"] = index
    d["tx_hash"] = _tx_hash(txh)
    d["kind"] = kind
    d["tick_lower"] = tick_lower
    d["tick_upper"] = tick_upper
    d["liquidity"] = liquidity
    d["amount0"] = amount0
    d["amount1"] = amount1
    d["owner"] = owner
    return o


def _initialize_record(pool: PoolId, block: int, index: int, sqrt_price: int, tick: int) -> V3Initialize:
    o = _new(V3Initialize)
    d = o.__dict__
    d["pool"] = pool
    d["block_number"] = block
    d["log_index"] = index
    d["sqrt_price_x96"] = sqrt_price
    d["tick"] = tick
    return o
_ZERO24 = "0" * 24
_INT24_MIN = -(1 << 23)
_INT24_MAX = (1 << 23) - 1
_U64_MAX = (1 << 64) - 1
_U32_MAX = (1 << 32) - 1
_INT128_MIN = -(1 << 127)
_INT128_MAX = (1 << 127) - 1
_MINT = int(LiquidityKind.MINT)
_BURN = int(LiquidityKind.BURN)


class _Malformed(Exception):
    """Internal: raised by the helpers, turned into LogDecodeError with context by the decoder."""


def _data(data: str, words: int) -> bytes:
    """The data field as bytes, exactly ``words`` 32-byte words."""
    raw = _fromhex(data[2:])
    if len(raw) != 32 * words or data[:2] != "0x":
        raise _Malformed(f"data must be 0x + {words} words ({64 * words} hex digits), got {len(data)} chars")
    return raw


def _topic_address(topic: str) -> bytes:
    raw = _fromhex(topic[26:])
    if len(raw) != 20 or len(topic) != 66 or topic[2:26] != _ZERO24 or topic[:2] != "0x":
        raise _Malformed(f"topic {topic!r} is not an ABI-encoded address")
    return raw


def _topic_int24(topic: str) -> int:
    raw = _fromhex(topic[2:])
    value = _fb(raw, signed=True)
    if len(raw) != 32 or not _INT24_MIN <= value <= _INT24_MAX or topic[:2] != "0x":
        raise _Malformed(f"topic {topic!r} is not an ABI-encoded int24")
    return value


def _word_address(word: bytes) -> bytes:
    if _fb(word[:12]):
        raise _Malformed("address word has non-zero padding")
    return word[12:]


def _tx_hash(tx_hash: str | None) -> bytes:
    if tx_hash is None:  # pending logs have no hash yet
        return bytes(32)
    raw = _fromhex(tx_hash[2:])
    if len(raw) != 32 or tx_hash[:2] != "0x":
        raise _Malformed(f"transactionHash {tx_hash!r} is not 32 bytes of 0x-hex")
    return raw


# --------------------------------------------------------------------------- handlers
# Each handler: (pool, topics, data, block_number, log_index, tx_hash_hex) -> TLV.
# It may raise _Malformed, ValueError (bad hex) or IndexError (too few topics).

Handler = Callable[[PoolId, Sequence[str], str, int, int, "str | None"], TLV]


def _v2_sync(pool: PoolId, topics: Sequence[str], data: str, block: int, index: int, txh: str | None) -> TLV:
    # Sync(uint112 reserve0, uint112 reserve1); nothing indexed
    if len(topics) != 1:
        raise _Malformed(f"V2 Sync has 1 topic, got {len(topics)}")
    b = _data(data, 2)
    r0 = _fb(b[0:32])
    r1 = _fb(b[32:64])
    if r0 >> 112 or r1 >> 112:
        raise _Malformed("V2 Sync reserve does not fit in uint112")
    o = _new(V2Reserves)
    d = o.__dict__
    d["pool"] = pool
    d["block_number"] = block
    d["log_index"] = index
    d["reserve0"] = r0
    d["reserve1"] = r1
    return o


def _v2_swap(pool: PoolId, topics: Sequence[str], data: str, block: int, index: int, txh: str | None) -> TLV:
    # Swap(address indexed sender, uint256 amount0In, uint256 amount1In,
    #      uint256 amount0Out, uint256 amount1Out, address indexed to)
    if len(topics) != 3:
        raise _Malformed(f"V2 Swap has 3 topics, got {len(topics)}")
    b = _data(data, 4)
    o = _new(V2Swap)
    d = o.__dict__
    d["pool"] = pool
    d["block_number"] = block
    d["log_index"] = index
    d["tx_hash"] = _tx_hash(txh)
    d["sender"] = _topic_address(topics[1])
    d["recipient"] = _topic_address(topics[2])
    d["amount0_in"] = _fb(b[0:32])
    d["amount1_in"] = _fb(b[32:64])
    d["amount0_out"] = _fb(b[64:96])
    d["amount1_out"] = _fb(b[96:128])
    return o


def _v2_liquidity(kind: int, n_topics: int) -> Handler:
    # Mint(address indexed sender, uint256 amount0, uint256 amount1)
    # Burn(address indexed sender, uint256 amount0, uint256 amount1, address indexed to)
    # V2 events carry no LP-token amount (that is in the pair's Transfer event), so
    # ``liquidity`` is 0 and the ticks are 0; ``owner`` is the event's ``sender``.
    name = "Mint" if kind == _MINT else "Burn"

    def handler(
        pool: PoolId, topics: Sequence[str], data: str, block: int, index: int, txh: str | None
    ) -> TLV:
        if len(topics) != n_topics:
            raise _Malformed(f"V2 {name} has {n_topics} topics, got {len(topics)}")
        b = _data(data, 2)
        return _liquidity_record(pool, block, index, txh, kind, 0, 0, 0, _fb(b[0:32]), _fb(b[32:64]),
                                 _topic_address(topics[1]))

    handler.__name__ = f"_v2_{name.lower()}"
    return handler


def _v3_swap(pool: PoolId, topics: Sequence[str], data: str, block: int, index: int, txh: str | None) -> TLV:
    # Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1,
    #      uint160 sqrtPriceX96, uint128 liquidity, int24 tick)
    if len(topics) != 3:
        raise _Malformed(f"V3 Swap has 3 topics, got {len(topics)}")
    b = _data(data, 5)
    sqrt_price = _fb(b[64:96])
    liquidity = _fb(b[96:128])
    tick = _fb(b[128:160], signed=True)
    if sqrt_price >> 160 or liquidity >> 128 or not _INT24_MIN <= tick <= _INT24_MAX:
        raise _Malformed("V3 Swap sqrtPriceX96/liquidity/tick word out of its ABI range")
    return _swap_record(pool, block, index, txh, _fb(b[0:32], signed=True), _fb(b[32:64], signed=True),
                        sqrt_price, liquidity, tick)


def _v3_liquidity(kind: int) -> Handler:
    # Mint(address sender, address indexed owner, int24 indexed tickLower, int24 indexed tickUpper,
    #      uint128 amount, uint256 amount0, uint256 amount1)          data: sender, amount, amount0, amount1
    # Burn(address indexed owner, int24 indexed tickLower, int24 indexed tickUpper,
    #      uint128 amount, uint256 amount0, uint256 amount1)          data: amount, amount0, amount1
    # ``owner`` is the position owner (topics[1]) for both.
    name = "Mint" if kind == _MINT else "Burn"
    skip = 32 if kind == _MINT else 0  # Mint's data starts with the (non-indexed) sender
    words = 4 if kind == _MINT else 3

    def handler(
        pool: PoolId, topics: Sequence[str], data: str, block: int, index: int, txh: str | None
    ) -> TLV:
        if len(topics) != 4:
            raise _Malformed(f"V3 {name} has 4 topics, got {len(topics)}")
        b = _data(data, words)
        if skip:
            _word_address(b[0:32])
        liquidity = _fb(b[skip : skip + 32])
        if liquidity >> 128:
            raise _Malformed(f"V3 {name} amount does not fit in uint128")
        return _liquidity_record(pool, block, index, txh, kind, _topic_int24(topics[2]), _topic_int24(topics[3]),
                                 liquidity, _fb(b[skip + 32 : skip + 64]), _fb(b[skip + 64 : skip + 96]),
                                 _topic_address(topics[1]))

    handler.__name__ = f"_v3_{name.lower()}"
    return handler


def _v3_initialize(
    pool: PoolId, topics: Sequence[str], data: str, block: int, index: int, txh: str | None
) -> TLV:
    # Initialize(uint160 sqrtPriceX96, int24 tick); nothing indexed
    if len(topics) != 1:
        raise _Malformed(f"V3 Initialize has 1 topic, got {len(topics)}")
    b = _data(data, 2)
    sqrt_price = _fb(b[0:32])
    tick = _fb(b[32:64], signed=True)
    if sqrt_price >> 160 or not _INT24_MIN <= tick <= _INT24_MAX:
        raise _Malformed("V3 Initialize sqrtPriceX96/tick word out of its ABI range")
    return _initialize_record(pool, block, index, sqrt_price, tick)


def _word_int24(word: bytes) -> int:
    value = _fb(word, signed=True)
    if not _INT24_MIN <= value <= _INT24_MAX:
        raise _Malformed("int24 word out of range")
    return value


def _v4_swap(pool: PoolId, topics: Sequence[str], data: str, block: int, index: int, txh: str | None) -> TLV:
    # Swap(bytes32 indexed id, address indexed sender, int128 amount0, int128 amount1, uint160 sqrtPriceX96,
    #      uint128 liquidity, int24 tick, uint24 fee)
    # amount0/amount1 are the swapper's BalanceDelta (negative = paid into the pool): negated into the
    # pool's side, as V3's Swap reports them. ``fee`` (the swap fee of that direction) is not carried.
    if len(topics) != 3:
        raise _Malformed(f"V4 Swap has 3 topics, got {len(topics)}")
    b = _data(data, 6)
    amount0 = _fb(b[0:32], signed=True)
    amount1 = _fb(b[32:64], signed=True)
    sqrt_price = _fb(b[64:96])
    liquidity = _fb(b[96:128])
    tick = _fb(b[128:160], signed=True)
    if not (_INT128_MIN <= amount0 <= _INT128_MAX and _INT128_MIN <= amount1 <= _INT128_MAX):
        raise _Malformed("V4 Swap amount word out of int128")
    if sqrt_price >> 160 or liquidity >> 128 or not _INT24_MIN <= tick <= _INT24_MAX or _fb(b[160:192]) >> 24:
        raise _Malformed("V4 Swap sqrtPriceX96/liquidity/tick/fee word out of its ABI range")
    return _swap_record(pool, block, index, txh, -amount0, -amount1, sqrt_price, liquidity, tick)


def _v4_modify_liquidity(
    pool: PoolId, topics: Sequence[str], data: str, block: int, index: int, txh: str | None
) -> TLV | None:
    # ModifyLiquidity(bytes32 indexed id, address indexed sender, int24 tickLower, int24 tickUpper,
    #                 int256 liquidityDelta, bytes32 salt). No amounts in the event: 0 in the record.
    if len(topics) != 3:
        raise _Malformed(f"V4 ModifyLiquidity has 3 topics, got {len(topics)}")
    b = _data(data, 4)
    lower = _word_int24(b[0:32])
    upper = _word_int24(b[32:64])
    delta = _fb(b[64:96], signed=True)
    if not _INT128_MIN <= delta <= _INT128_MAX:
        raise _Malformed("V4 ModifyLiquidity liquidityDelta out of int128")
    owner = _topic_address(topics[2])
    if delta == 0:
        return None  # a fee collection: nothing to apply
    return _liquidity_record(pool, block, index, txh, _MINT if delta > 0 else _BURN, lower, upper, abs(delta),
                             0, 0, owner)


def _v4_initialize(
    pool: PoolId, topics: Sequence[str], data: str, block: int, index: int, txh: str | None
) -> TLV:
    # Initialize(bytes32 indexed id, address indexed currency0, address indexed currency1, uint24 fee,
    #            int24 tickSpacing, address hooks, uint160 sqrtPriceX96, int24 tick)
    if len(topics) != 4:
        raise _Malformed(f"V4 Initialize has 4 topics, got {len(topics)}")
    b = _data(data, 5)
    sqrt_price = _fb(b[96:128])
    tick = _word_int24(b[128:160])
    if sqrt_price >> 160:
        raise _Malformed("V4 Initialize sqrtPriceX96 word out of its ABI range")
    return _initialize_record(pool, block, index, sqrt_price, tick)


def _v4_protocol_fee(
    pool: PoolId, topics: Sequence[str], data: str, block: int, index: int, txh: str | None
) -> TLV:
    # ProtocolFeeUpdated(bytes32 indexed id, uint24 protocolFee)
    if len(topics) != 2:
        raise _Malformed(f"V4 ProtocolFeeUpdated has 2 topics, got {len(topics)}")
    fee = _fb(_data(data, 1))
    if fee >> 24:
        raise _Malformed("V4 ProtocolFeeUpdated protocolFee does not fit uint24")
    o = _new(V4ProtocolFee)
    d = o.__dict__
    d["pool"] = pool
    d["block_number"] = block
    d["log_index"] = index
    d["protocol_fee"] = fee
    return o


# --------------------------------------------------------------------------- Curve StableSwap


class CurveOp(enum.IntEnum):
    """What a Curve event did to the pool's balances (see :class:`collectors.evm.curve.CurveBook`)."""

    EXCHANGE = 1  # sold ``amounts[sold]`` of coin ``sold``, bought ``amounts[bought]`` of coin ``bought``
    ADD = 2  # balances += amounts - fees * admin_fee
    REMOVE = 3  # balances -= amounts (remove_liquidity: in proportion, no fee)
    REMOVE_IMBALANCE = 4  # balances -= amounts + fees * admin_fee
    REMOVE_ONE = 5  # the classic event does not say which coin: the pool must be re-read


@dataclass(frozen=True, slots=True, kw_only=True)
class CurveEvent:
    """A Curve pool's event, decoded (not a wire record: the follower's CurveBook turns it into the pool's
    ``PoolSnapshot``). Coin indices are the pool's own; ``amounts`` and ``fees`` are per coin, in its order."""

    pool: PoolId
    block_number: int
    log_index: int
    op: CurveOp
    amounts: tuple[int, ...] = ()
    fees: tuple[int, ...] = ()
    sold: int = 0
    bought: int = 0


def _curve_words(b: bytes, n: int, at: int = 0) -> tuple[int, ...]:
    return tuple(_fb(b[at + 32 * k: at + 32 * (k + 1)]) for k in range(n))


def _curve_exchange(pool: PoolId, topics: Sequence[str], data: str, block: int, index: int,
                    txh: str | None) -> CurveEvent:
    # TokenExchange(address indexed buyer, int128 sold_id, uint256 tokens_sold, int128 bought_id,
    #               uint256 tokens_bought)
    if len(topics) != 2:
        raise _Malformed(f"Curve TokenExchange has 2 topics, got {len(topics)}")
    b = _data(data, 4)
    sold, tokens_sold, bought, tokens_bought = _fb(b[0:32], signed=True), _fb(b[32:64]), \
        _fb(b[64:96], signed=True), _fb(b[96:128])
    if not (0 <= sold < 2 and 0 <= bought < 2) or sold == bought:
        raise _Malformed(f"Curve TokenExchange coin ids {sold}, {bought}: a two-coin pool has 0 and 1")
    amounts = [0, 0]
    amounts[sold], amounts[bought] = tokens_sold, tokens_bought
    return CurveEvent(pool=pool, block_number=block, log_index=index, op=CurveOp.EXCHANGE, amounts=tuple(amounts),
                      sold=sold, bought=bought)


def _curve_liquidity(op: CurveOp, words: int) -> Handler:
    # AddLiquidity(address indexed provider, uint256[2] token_amounts, uint256[2] fees, uint256 invariant,
    #              uint256 token_supply)
    # RemoveLiquidity(address indexed provider, uint256[2] token_amounts, uint256[2] fees, uint256 token_supply)
    # RemoveLiquidityImbalance(address indexed provider, uint256[2] token_amounts, uint256[2] fees,
    #                          uint256 invariant, uint256 token_supply)
    def handler(pool: PoolId, topics: Sequence[str], data: str, block: int, index: int,
                txh: str | None) -> CurveEvent:
        if len(topics) != 2:
            raise _Malformed(f"Curve {op.name} has 2 topics, got {len(topics)}")
        b = _data(data, words)
        return CurveEvent(pool=pool, block_number=block, log_index=index, op=op, amounts=_curve_words(b, 2),
                          fees=_curve_words(b, 2, 64))

    handler.__name__ = f"_curve_{op.name.lower()}"
    return handler  # type: ignore[return-value]


def _curve_remove_one(pool: PoolId, topics: Sequence[str], data: str, block: int, index: int,
                      txh: str | None) -> CurveEvent:
    # RemoveLiquidityOne(address indexed provider, uint256 token_amount, uint256 coin_amount)
    if len(topics) != 2:
        raise _Malformed(f"Curve RemoveLiquidityOne has 2 topics, got {len(topics)}")
    _data(data, 2)
    return CurveEvent(pool=pool, block_number=block, log_index=index, op=CurveOp.REMOVE_ONE)


_V2 = int(VenueKind.UNISWAP_V2)
_V3 = int(VenueKind.UNISWAP_V3)
_V4 = int(VenueKind.UNISWAP_V4)
_CURVE = int(VenueKind.CURVE)

#: topic0 -> (handler, the pool kind that emits it)
HANDLERS: dict[str, tuple[Handler, int]] = {
    TOPIC0_V2_SYNC: (_v2_sync, _V2),
    TOPIC0_V2_SWAP: (_v2_swap, _V2),
    TOPIC0_V2_MINT: (_v2_liquidity(_MINT, 2), _V2),
    TOPIC0_V2_BURN: (_v2_liquidity(_BURN, 3), _V2),
    TOPIC0_V3_SWAP: (_v3_swap, _V3),
    TOPIC0_V3_MINT: (_v3_liquidity(_MINT), _V3),
    TOPIC0_V3_BURN: (_v3_liquidity(_BURN), _V3),
    TOPIC0_V3_INITIALIZE: (_v3_initialize, _V3),
    TOPIC0_V4_SWAP: (_v4_swap, _V4),
    TOPIC0_V4_MODIFY_LIQUIDITY: (_v4_modify_liquidity, _V4),  # type: ignore[dict-item]  # None: zero delta
    TOPIC0_V4_INITIALIZE: (_v4_initialize, _V4),
    TOPIC0_V4_PROTOCOL_FEE_UPDATED: (_v4_protocol_fee, _V4),
    # Curve: CurveEvent, not a TLV (the follower's CurveBook makes the PoolSnapshot)
    TOPIC0_CURVE_TOKEN_EXCHANGE: (_curve_exchange, _CURVE),  # type: ignore[dict-item]
    TOPIC0_CURVE_ADD_LIQUIDITY: (_curve_liquidity(CurveOp.ADD, 6), _CURVE),
    TOPIC0_CURVE_REMOVE_LIQUIDITY: (_curve_liquidity(CurveOp.REMOVE, 5), _CURVE),
    TOPIC0_CURVE_REMOVE_LIQUIDITY_IMBALANCE: (_curve_liquidity(CurveOp.REMOVE_IMBALANCE, 6), _CURVE),
    TOPIC0_CURVE_REMOVE_LIQUIDITY_ONE: (_curve_remove_one, _CURVE),  # type: ignore[dict-item]
}

#: pool kind -> {topic0: handler}: a pool only decodes its own kind's events
_HANDLERS_BY_KIND: dict[int, dict[str, Handler]] = {}
for _t0, (_handler, _kind) in HANDLERS.items():
    _HANDLERS_BY_KIND.setdefault(_kind, {})[_t0] = _handler

#: Known events that deliberately produce no TLV.
IGNORED_TOPICS = frozenset({TOPIC0_V3_COLLECT, TOPIC0_V4_DONATE})


# --------------------------------------------------------------------------- the decoder


class LogDecoder:
    """Decode logs of a fixed set of pools into protocol TLVs.

    ``pools`` maps pool address (0x-hex, any case) -> ``PoolId``; the key must be
    the id's own address. All pools must be on one chain. Uniswap V4 pools (kind
    ``UNISWAP_V4``: the key is the pool id's first 20 bytes, the id's address) need
    ``v4_manager``, the PoolManager that emits their logs.
    """

    def __init__(self, pools: Mapping[str, PoolId], *, v4_manager: str | None = None) -> None:
        table: dict[str, tuple[PoolId | None, dict[str, Handler]]] = {}
        v4: dict[str, PoolId] = {}
        chains = set()
        for address, pool in pools.items():
            if not isinstance(pool, PoolId):
                raise TypeError(f"pool for {address!r} must be a PoolId, got {pool!r}")
            key = address.lower()
            if key != pool.address:
                raise ValueError(f"pool map key {address} is not the PoolId's address {pool.address}")
            if pool.kind == _V4:
                v4[key] = pool
            else:
                table[key] = (pool, _HANDLERS_BY_KIND.get(int(pool.kind), {}))
            chains.add(pool.chain_id)
        if len(chains) > 1:
            raise ValueError(f"one LogDecoder per chain; got pools on chains {sorted(chains)}")
        if v4:
            if v4_manager is None:
                raise ValueError("V4 pools need v4_manager, the PoolManager that emits their logs")
            # the manager's logs: the pool is looked up by topics[1] (see the module doc)
            table[v4_manager.lower()] = (None, _HANDLERS_BY_KIND[_V4])
        self.chain_id: int | None = chains.pop() if chains else None
        self.v4_manager = v4_manager.lower() if v4 and v4_manager else None
        self._pools = table
        self._v4 = v4
        self.stats = DecodeStats()

    @classmethod
    def from_pools(cls, pools: Iterable[PoolId], *, v4_manager: str | None = None) -> LogDecoder:
        return cls({p.address: p for p in pools}, v4_manager=v4_manager)

    @property
    def pools(self) -> dict[str, PoolId]:
        out = {a: p for a, (p, _) in self._pools.items() if p is not None}
        out.update(self._v4)
        return out

    @property
    def addresses(self) -> list[str]:
        """The contracts whose logs to ask the node for: V2/V3 pools and the V4 PoolManager."""
        return list(self._pools)

    def decode(self, log: Mapping[str, Any]) -> TLV | None:
        """One JSON-RPC log object -> a TLV, or None (skipped and counted).

        ``removed: true`` logs give a ``StateInvalidation`` for their pool (see module doc).
        Raises ``LogDecodeError`` for malformed logs.
        """
        # The hot path: two dict lookups and one handler call. Every unusual case
        # (unknown pool or topic, wrong kind, bad fields) falls through to _slow_path.
        try:
            pool, handlers = self._pools[log["address"]]
            handler = handlers[log["topics"][0]]
            if pool is None:  # the V4 PoolManager: the pool is the id in topics[1]
                pool = self._v4[log["topics"][1][:42]]
            block_number = int(log["blockNumber"], 16)
            log_index = int(log["logIndex"], 16)
            if not (0 <= block_number <= _U64_MAX and 0 <= log_index <= _U32_MAX):
                raise _Malformed
        except Exception:
            return self._slow_path(log)
        try:
            tlv = handler(
                pool, log["topics"], log["data"], block_number, log_index, log.get("transactionHash")
            )
        except Exception as exc:
            raise self._malformed(log, pool, block_number, log_index, exc) from None
        if tlv is None and not log.get("removed"):  # a known event with nothing to apply
            self.stats.ignored += 1
            return None
        if log.get("removed"):
            self.stats.removed += 1
            return StateInvalidation(
                chain_id=pool.chain_id,
                pool=pool,
                from_block=block_number,
                reason=InvalidationReason.REORG,
                detail=f"removed log {log_index} of tx {log.get('transactionHash')}",
            )
        self.stats.decoded += 1
        return tlv

    def decode_parts(
        self,
        address: str,
        topics: Sequence[str],
        data: str,
        block_number: int,
        log_index: int,
        tx_hash: str | None = None,
        removed: bool = False,
    ) -> TLV | None:
        """Like ``decode`` for callers that hold the fields rather than a log object."""
        log = {
            "address": address,
            "topics": topics,
            "data": data,
            "blockNumber": hex(block_number) if isinstance(block_number, int) else block_number,
            "logIndex": hex(log_index) if isinstance(log_index, int) else log_index,
            "transactionHash": tx_hash,
            "removed": removed,
        }
        return self.decode(log)

    def decode_event(self, log: Mapping[str, Any]) -> TLV | None:
        """The event TLV of ``log`` even when it is ``removed`` (what the reorg took away)."""
        if log.get("removed"):
            log = {**log, "removed": False}
        return self.decode(log)

    def _slow_path(self, log: Any) -> TLV | None:
        """Everything the hot path did not handle: classify, count, and return None or raise."""
        stats = self.stats
        try:
            address = log["address"]
            topics = log["topics"]
            block = log["blockNumber"]
            index = log["logIndex"]
            log["data"]
        except (KeyError, TypeError, AttributeError) as exc:
            stats.malformed += 1
            raise LogDecodeError(f"not a log object: missing or unreadable field {exc}", log) from None
        if type(address) is not str:
            stats.malformed += 1
            raise LogDecodeError(f"log address {address!r} is not a hex string", log)
        entry = self._pools.get(address) or self._pools.get(address.lower())
        if entry is None:
            stats.unknown_pool += 1
            return None
        if not isinstance(topics, (list, tuple)) or not all(type(t) is str for t in topics):
            stats.malformed += 1
            raise LogDecodeError(f"log topics {topics!r} are not a list of hex strings", log)
        if not topics:  # an anonymous event: none of ours
            stats.unknown_topic += 1
            return None
        maybe_pool, handlers = entry
        topic0 = topics[0]
        if maybe_pool is None and topic0 in handlers:  # the V4 PoolManager: which pool?
            topic1 = topics[1] if len(topics) > 1 else ""
            v4_pool = self._v4.get(topic1[:42].lower()) if len(topic1) == 66 else None
            if v4_pool is None:
                stats.unknown_pool += 1  # another pool of the singleton, not one we follow
                return None
            if topic1[:42] != topic1[:42].lower():
                return self.decode({**log, "topics": [topic0, topic1.lower(), *topics[2:]]})
        if topic0 not in handlers:
            if topic0 in HANDLERS:
                stats.malformed += 1
                what = (f"the V4 PoolManager {address}" if maybe_pool is None
                        else f"{maybe_pool!r}, which is configured as {VenueKind(int(maybe_pool.kind)).name}")
                raise LogDecodeError(f"{EVENT_SIGNATURES[topic0]} log from {what}", log)
            if topic0 in IGNORED_TOPICS:
                stats.ignored += 1
            else:
                stats.unknown_topic += 1
            return None
        try:
            block_number = int(block, 16)
            log_index = int(index, 16)
        except (TypeError, ValueError):
            stats.malformed += 1
            if block is None or index is None:
                raise LogDecodeError("pending log (no blockNumber/logIndex) cannot be decoded", log) from None
            raise LogDecodeError(
                f"blockNumber {block!r} / logIndex {index!r} are not hex integers", log
            ) from None
        if not (0 <= block_number <= _U64_MAX and 0 <= log_index <= _U32_MAX):
            stats.malformed += 1
            raise LogDecodeError(f"blockNumber {block_number} / logIndex {log_index} out of range", log)
        if address == address.lower():  # pragma: no cover - the hot path failed for a reason not checked here
            stats.malformed += 1
            raise LogDecodeError("unreadable log object", log)
        # a checksummed (mixed-case) address of a known pool
        return self.decode({**log, "address": address.lower()})

    def _malformed(self, log: Any, pool: PoolId, block: int, index: int, exc: Exception) -> LogDecodeError:
        if not isinstance(exc, (_Malformed, ValueError, TypeError, IndexError, KeyError)):
            raise exc  # a bug here, not a bad log
        self.stats.malformed += 1
        topic0 = log["topics"][0]
        where = f"block {block} log {index} tx {log.get('transactionHash')} pool {pool.address}"
        what = exc if isinstance(exc, _Malformed) else f"{type(exc).__name__}: {exc}"
        return LogDecodeError(f"malformed {EVENT_SIGNATURES[topic0]} log at {where}: {what}", log)


# --------------------------------------------------------------------------- Collect


class CollectEvent(NamedTuple):
    """V3 ``Collect``: fees/tokens withdrawn from a position (no TLV: it moves neither price nor liquidity)."""

    owner: bytes
    recipient: bytes
    tick_lower: int
    tick_upper: int
    amount0: int
    amount1: int


def decode_collect(topics: Sequence[str], data: str) -> CollectEvent:
    """Decode a V3 ``Collect(address indexed owner, address recipient, int24 indexed tickLower,
    int24 indexed tickUpper, uint128 amount0, uint128 amount1)`` log."""
    try:
        if len(topics) != 4 or topics[0] != TOPIC0_V3_COLLECT:
            raise _Malformed("not a V3 Collect log")
        b = _data(data, 3)
        amount0, amount1 = _fb(b[32:64]), _fb(b[64:96])
        if amount0 >> 128 or amount1 >> 128:
            raise _Malformed("Collect amount does not fit in uint128")
        return CollectEvent(
            owner=_topic_address(topics[1]),
            recipient=_word_address(b[0:32]),
            tick_lower=_topic_int24(topics[2]),
            tick_upper=_topic_int24(topics[3]),
            amount0=amount0,
            amount1=amount1,
        )
    except (_Malformed, ValueError, TypeError, IndexError) as exc:
        raise LogDecodeError(f"malformed Collect log: {exc}") from None
