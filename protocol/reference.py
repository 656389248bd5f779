"""A declarative reference codec for the AlphaPulse wire format, written with ``construct``.

This module restates ``specs/protocol.md`` as data: the 52-byte header, the
checksum, both TLV forms and every registered record type are declared below,
field by field, in wire order. It is the readable reference and a test oracle
(``tests/protocol`` check that it and the fast codec produce and accept the same
bytes); it is one to two orders of magnitude slower than ``protocol.message``
and is never used on a hot path.

It is deliberately *independent* of the fast codec: nothing here reads the
``FIELDS``, ``struct`` formats or generated code of ``protocol.tlv`` -- every
field name, kind and width was written out by hand from the spec table. The
only things shared are the Python value types it produces and consumes
(``Message``, the TLV dataclasses, ``UnknownTLV``, ``PoolId``/``TokenId``) and
the error classes. If you add a field to a type, add it here and to the spec
table too; the tests fail until all three agree.

Like the rest of ``protocol`` it is sans-IO: bytes in, messages out.

Usage::

    from protocol.reference import ref_encode, ref_decode
    assert ref_decode(ref_encode(msg)) == msg

``ReferenceCodec(bodies)`` builds a codec for another registry, e.g. an "old
reader" that lacks some types, or a "new writer" whose types carry appended
fields -- the compatibility tests use both.
"""

from __future__ import annotations

import zlib
from typing import Any

from construct import (
    Adapter,
    Bytes,
    BytesInteger,
    Check,
    Const,
    ConstructError,
    ExprAdapter,
    ExprValidator,
    GreedyBytes,
    GreedyRange,
    Int8sl,
    Int8ul,
    Int16sl,
    Int16ul,
    Int32sl,
    Int32ul,
    Int64sl,
    Int64ul,
    Padding,
    PascalString,
    Pointer,
    Prefixed,
    PrefixedArray,
    RawCopy,
    Rebuild,
    Select,
    Struct,
    Terminated,
    ValidationError,
    len_,
    this,
)
from construct import Checksum as _Checksum
from construct import ChecksumError as _ConstructChecksumError

from . import execution as X
from . import market as M
from . import signals as S
from . import system as Y
from .errors import ChecksumError, FieldRangeError, FrameError, TLVError
from .ids import PoolId, TokenId
from .message import Message
from .tlv import TLV, UnknownTLV

__all__ = [
    "BODIES",
    "CompactTLV",
    "ExtendedTLV",
    "Frame",
    "KIND_NAMES",
    "MAX_PAYLOAD",
    "ReferenceCodec",
    "TLVEnvelope",
    "kind_name",
    "record_fields",
    "ref_decode",
    "ref_decode_tlvs",
    "ref_encode",
    "ref_encode_tlv",
]

MAX_PAYLOAD = 1 << 20  # bytes of TLVs after the header (specs/protocol.md, "Limits")
HEADER_SIZE = 52

# Errors construct raises while *building* from a bad Python value, besides its own.
_BUILD_ERRORS = (ConstructError, UnicodeError, TypeError, ValueError, OverflowError, AttributeError)

# ---------------------------------------------------------------------------
# Field kinds. All integers are little-endian two's complement; wide integers
# keep their real widths. construct refuses to build a value that does not fit
# (struct.error / int.to_bytes OverflowError) -- nothing is ever truncated.
# ---------------------------------------------------------------------------

uint8 = Int8ul
uint16 = Int16ul
uint32 = Int32ul
uint64 = Int64ul
int8 = Int8sl
int16 = Int16sl
int32 = Int32sl
int64 = Int64sl
int24 = BytesInteger(3, signed=True, swapped=True)
uint112 = BytesInteger(14, swapped=True)
uint128 = BytesInteger(16, swapped=True)
int128 = BytesInteger(16, signed=True, swapped=True)
uint160 = BytesInteger(20, swapped=True)
uint256 = BytesInteger(32, swapped=True)
int256 = BytesInteger(32, signed=True, swapped=True)


def _exact_bytes(n: int) -> Any:
    """Exactly ``n`` raw bytes. (construct's ``Bytes`` alone would also accept an int and encode it.)"""
    return ExprValidator(Bytes(n), lambda obj, ctx: isinstance(obj, (bytes, bytearray)) and len(obj) == n)


def _bytes_like(obj: Any) -> bytes:
    if not isinstance(obj, (bytes, bytearray, memoryview)):  # bytes(5) would make five zero bytes
        raise ValidationError(f"expected bytes, got {obj!r}")
    return bytes(obj)


address = _exact_bytes(20)  # an EVM address, raw 20 bytes
bytes32 = _exact_bytes(32)  # a hash

# Instrument ids: little-endian unsigned integers whose bit fields are the parts (see protocol.ids).
token_id = ExprAdapter(BytesInteger(24, swapped=True), lambda obj, ctx: TokenId(obj), lambda obj, ctx: obj)
pool_id = ExprAdapter(BytesInteger(67, swapped=True), lambda obj, ctx: PoolId(obj), lambda obj, ctx: obj)

# Variable-length kinds: only after every fixed field of a type.
string = PascalString(Int8ul, "utf8")  # uint8 byte length + UTF-8 (at most 255 bytes)
blob = Prefixed(  # uint16 byte length + raw bytes (at most 65535 bytes)
    Int16ul,
    ExprAdapter(
        GreedyBytes,
        lambda obj, ctx: obj,
        lambda obj, ctx: _bytes_like(obj),
    ),
)

KIND_NAMES: dict[int, str] = {
    id(k): name
    for name, k in {
        "uint8": uint8,
        "uint16": uint16,
        "uint32": uint32,
        "uint64": uint64,
        "int8": int8,
        "int16": int16,
        "int32": int32,
        "int64": int64,
        "int24": int24,
        "uint112": uint112,
        "uint128": uint128,
        "int128": int128,
        "uint160": uint160,
        "uint256": uint256,
        "int256": int256,
        "address": address,
        "bytes32": bytes32,
        "token_id": token_id,
        "pool_id": pool_id,
        "string": string,
        "bytes": blob,
    }.items()
}


class _Object(Adapter):
    """A ``Struct`` of named fields <-> one frozen protocol dataclass (a TLV body or a list item)."""

    def __init__(self, cls: type, *fields: Any) -> None:
        super().__init__(Struct(*fields))
        self.cls = cls
        self.fields: list[tuple[str, Any]] = [(f.name, f.subcon) for f in fields]

    def _decode(self, obj: Any, context: Any, path: Any) -> Any:
        return self.cls(**{name: obj[name] for name, _ in self.fields})

    def _encode(self, obj: Any, context: Any, path: Any) -> Any:
        if type(obj) is not self.cls:
            raise ValidationError(f"expected a {self.cls.__name__}, got {obj!r}", path=path)
        return {name: getattr(obj, name) for name, _ in self.fields}


class _ListOf(Adapter):
    """uint16 item count + that many fixed-size records; a tuple in Python."""

    def __init__(self, item: _Object) -> None:
        super().__init__(PrefixedArray(Int16ul, item))
        self.item = item

    def _decode(self, obj: Any, context: Any, path: Any) -> Any:
        return tuple(obj)

    def _encode(self, obj: Any, context: Any, path: Any) -> Any:
        if not isinstance(obj, (tuple, list)):
            raise ValidationError(f"expected a tuple of {self.item.cls.__name__}, got {obj!r}", path=path)
        return list(obj)


def record(cls: type, *fields: Any) -> _Object:
    return _Object(cls, *fields)


def list_of(item: _Object) -> _ListOf:
    return _ListOf(item)


def kind_name(subcon: Any) -> str:
    """The spec's name for a field kind declared in this module (``uint112``, ``list<Hop>``...)."""
    if isinstance(subcon, _ListOf):
        return f"list<{subcon.item.cls.__name__}>"
    return KIND_NAMES[id(subcon)]


def record_fields(rec: _Object) -> list[tuple[str, str]]:
    """``[(field name, kind name)]`` in wire order."""
    return [(name, kind_name(sc)) for name, sc in rec.fields]


# ---------------------------------------------------------------------------
# Fixed-size items of list fields.
# ---------------------------------------------------------------------------

TickLiquidity = record(
    M.TickLiquidity,
    "tick" / int24,
    "liquidity_net" / int128,
)

Hop = record(
    S.Hop,
    "pool" / pool_id,
    "venue_kind" / uint8,
    "token_in" / address,
    "token_out" / address,
    "amount_in" / uint256,
    "amount_out" / uint256,
)

TypeCode = record(
    Y.TypeCode,
    "code" / uint8,
)

# ---------------------------------------------------------------------------
# Record bodies, by type code. Fields in wire order; every body may be followed
# by bytes a newer writer appended, which this reader ignores.
# ---------------------------------------------------------------------------

BODIES: dict[int, _Object] = {
    # ---- market data (domain 1), types 1-19 ----
    1: record(
        M.Trade,
        "venue" / uint16,
        "side" / uint8,
        "price_scale" / uint8,
        "size_scale" / uint8,
        "trade_id" / uint64,
        "price" / uint128,
        "size" / uint128,
        "symbol" / string,
    ),
    2: record(
        M.Quote,
        "venue" / uint16,
        "price_scale" / uint8,
        "size_scale" / uint8,
        "update_id" / uint64,
        "bid_price" / uint128,
        "bid_size" / uint128,
        "ask_price" / uint128,
        "ask_size" / uint128,
        "symbol" / string,
    ),
    3: record(
        M.BookLevel,
        "venue" / uint16,
        "side" / uint8,
        "price_scale" / uint8,
        "size_scale" / uint8,
        "update_id" / uint64,
        "price" / uint128,
        "size" / uint128,
        "symbol" / string,
    ),
    4: record(
        M.V2Reserves,
        "pool" / pool_id,
        "block_number" / uint64,
        "log_index" / uint32,
        "reserve0" / uint112,
        "reserve1" / uint112,
    ),
    5: record(
        M.V2Swap,
        "pool" / pool_id,
        "block_number" / uint64,
        "log_index" / uint32,
        "tx_hash" / bytes32,
        "sender" / address,
        "recipient" / address,
        "amount0_in" / uint256,
        "amount1_in" / uint256,
        "amount0_out" / uint256,
        "amount1_out" / uint256,
    ),
    6: record(
        M.V3Swap,
        "pool" / pool_id,
        "block_number" / uint64,
        "log_index" / uint32,
        "tx_hash" / bytes32,
        "amount0" / int256,
        "amount1" / int256,
        "sqrt_price_x96" / uint160,
        "liquidity" / uint128,
        "tick" / int24,
    ),
    7: record(
        M.LiquidityChange,
        "pool" / pool_id,
        "block_number" / uint64,
        "log_index" / uint32,
        "tx_hash" / bytes32,
        "kind" / uint8,
        "tick_lower" / int24,
        "tick_upper" / int24,
        "liquidity" / uint128,
        "amount0" / uint256,
        "amount1" / uint256,
        "owner" / address,
    ),
    8: record(
        M.PoolSnapshot,
        "pool" / pool_id,
        "block_number" / uint64,
        "fee_ppm" / uint32,
        "tick_spacing" / int32,
        "reserve0" / uint256,
        "reserve1" / uint256,
        "sqrt_price_x96" / uint160,
        "tick" / int24,
        "liquidity" / uint128,
        "ticks" / list_of(TickLiquidity),
    ),
    9: record(
        M.BlockHeader,
        "chain_id" / uint32,
        "number" / uint64,
        "timestamp" / uint64,
        "gas_limit" / uint64,
        "gas_used" / uint64,
        "hash" / bytes32,
        "parent_hash" / bytes32,
        "base_fee" / uint256,
        "priority_fee" / uint256,
    ),
    10: record(
        M.StateInvalidation,
        "chain_id" / uint32,
        "pool" / pool_id,
        "from_block" / uint64,
        "reason" / uint8,
        "detail" / string,
    ),
    11: record(
        M.V3Initialize,
        "pool" / pool_id,
        "block_number" / uint64,
        "log_index" / uint32,
        "sqrt_price_x96" / uint160,
        "tick" / int24,
    ),
    12: record(
        M.V4ProtocolFee,
        "pool" / pool_id,
        "block_number" / uint64,
        "log_index" / uint32,
        "protocol_fee" / uint32,
    ),
    # ---- signals (domain 2), types 20-39 ----
    20: record(
        S.SignalIdentity,
        "signal_id" / uint64,
        "strategy_id" / uint16,
        "kind" / uint8,
        "confidence_bps" / uint16,
        "chain_id" / uint32,
        "block_number" / uint64,
        "strategy" / string,
    ),
    21: record(
        S.Economics,
        "profit_token" / token_id,
        "gross_profit" / int256,
        "gas_cost" / uint256,
        "flash_fee" / uint256,
        "slippage_allowance" / uint256,
        "net_profit" / int256,
        "gas_units" / uint64,
        "gas_price_wei" / uint256,
    ),
    22: record(
        S.ArbitragePath,
        "hops" / list_of(Hop),
    ),
    23: record(
        S.DecisionPoint,
        "block_number" / uint64,
        "log_index" / uint32,
    ),
    24: record(
        S.FlashLoan,
        "source" / uint8,
    ),
    31: record(
        S.CrossChainArbitrage,
        "source_chain" / uint32,
        "dest_chain" / uint32,
        "bridge" / uint16,
        "timing_risk_blocks" / uint32,
        "bridge_cost" / uint256,
        "source_gas_cost" / uint256,
        "dest_gas_cost" / uint256,
    ),
    # ---- execution (domain 3), types 40-59 ----
    41: record(
        X.ExecutionStarted,
        "signal_id" / uint64,
        "chain_id" / uint32,
        "mode" / uint8,
        "nonce" / uint64,
        "tx_hash" / bytes32,
        "max_fee_per_gas" / uint256,
        "max_priority_fee_per_gas" / uint256,
        "gas_limit" / uint64,
    ),
    42: record(
        X.ExecutionResult,
        "signal_id" / uint64,
        "chain_id" / uint32,
        "outcome" / uint8,
        "block_number" / uint64,
        "tx_hash" / bytes32,
        "gas_used" / uint64,
        "effective_gas_price" / uint256,
        "expected_profit" / int256,
        "realized_profit" / int256,
        "profit_token" / token_id,
        "reason" / string,
    ),
    44: record(
        X.CexFill,
        "signal_id" / uint64,
        "venue" / uint16,
        "side" / uint8,
        "purpose" / uint8,
        "order_id" / uint64,
        "base_units" / uint256,
        "quote_units" / uint256,
        "fee_units" / uint256,
        "base_token" / token_id,
        "quote_token" / token_id,
        "symbol" / string,
        "base_asset" / string,
        "quote_asset" / string,
    ),
    45: record(
        X.LegReport,
        "signal_id" / uint64,
        "outcome" / uint8,
        "cex_venue" / uint16,
        "cex_side" / uint8,
        "dex_result" / uint8,
        "base_token" / token_id,
        "quote_token" / token_id,
        "cex_requested" / uint256,
        "cex_filled" / uint256,
        "cex_quote" / uint256,
        "dex_base" / uint256,
        "dex_quote" / uint256,
        "gas_cost" / uint256,
        "unwound" / uint256,
        "unwind_quote" / uint256,
        "left_open" / uint256,
        "realized_profit" / int256,
        "symbol" / string,
    ),
    46: record(
        X.ChainLegReport,
        "signal_id" / uint64,
        "chain_id" / uint32,
        "leg" / uint8,
        "outcome" / uint8,
        "result" / uint8,
        "unwind_result" / uint8,
        "unwind_attempts" / uint8,
        "block_number" / uint64,
        "tx_hash" / bytes32,
        "gas_used" / uint64,
        "effective_gas_price" / uint256,
        "token_in" / token_id,
        "token_out" / token_id,
        "amount_in" / uint256,
        "min_out" / uint256,
        "amount_out" / uint256,
        "unwind_block_number" / uint64,
        "unwind_tx_hash" / bytes32,
        "unwind_amount_in" / uint256,
        "unwind_amount_out" / uint256,
        "unwind_gas_cost" / uint256,
        "left_open" / uint256,
        "reason" / string,
    ),
    47: record(
        X.OwnerTxRequest,
        "request_id" / uint64,
        "chain_id" / uint32,
        "call" / uint8,
        "token" / address,
        "amount" / uint256,
        "dst_chain" / uint32,
    ),
    48: record(
        X.BridgeTransfer,
        "transfer_id" / uint64,
        "state" / uint8,
        "src_chain" / uint32,
        "dst_chain" / uint32,
        "bridge" / uint16,
        "nonce" / uint64,
        "src_token" / token_id,
        "dst_token" / token_id,
        "recipient" / address,
        "amount" / uint256,
        "fee" / uint256,
        "received" / uint256,
        "src_gas_cost" / uint256,
        "src_tx_hash" / bytes32,
        "dst_tx_hash" / bytes32,
        "sent_time_ns" / uint64,
        "completed_time_ns" / uint64,
        "reason" / string,
    ),
    49: record(
        X.OwnerTxAnswer,
        "request_id" / uint64,
        "requester" / uint32,
        "chain_id" / uint32,
        "status" / uint8,
        "nonce" / uint64,
        "tx_hash" / bytes32,
        "sender" / address,
        "reason" / string,
    ),
    # ---- system (domain 4), types 100-119 ----
    100: record(
        Y.Heartbeat,
        "epoch" / uint64,
        "head_seq" / uint64,
    ),
    101: record(
        Y.Subscribe,
        "mode" / uint8,
        "from_seq" / uint64,
        "types" / list_of(TypeCode),
    ),
    105: record(
        Y.Resync,
        "requested_seq" / uint64,
        "oldest_available" / uint64,
        "reason" / uint8,
    ),
    106: record(
        Y.EmergencyStop,
        "scope" / uint8,
        "scope_value" / uint64,
        "stop_id" / uint64,
        "reason" / string,
        "sender" / string,
    ),
    107: record(
        Y.Resume,
        "scope" / uint8,
        "scope_value" / uint64,
        "stop_id" / uint64,
        "reason" / string,
        "sender" / string,
    ),
    108: record(
        Y.Hello,
        "role" / uint8,
        "protocol_version" / uint16,
        "source_id" / uint32,
        "name" / string,
    ),
    109: record(
        Y.Welcome,
        "epoch" / uint64,
        "head_seq" / uint64,
        "oldest_seq" / uint64,
        "last_source_seq" / uint64,
        "domain" / uint8,
    ),
    110: record(
        Y.Ack,
        "source_id" / uint32,
        "source_seq" / uint64,
    ),
    111: record(
        Y.Goodbye,
        "code" / uint16,
        "reason" / string,
    ),
    112: record(
        Y.Stats,
        "json" / blob,
    ),
    113: record(
        Y.ConsumerClass,
        "latency" / uint8,
    ),
    # ---- any domain ----
    120: record(
        Y.TraceContext,
        "trace_id" / uint128,
        "span_id" / uint64,
        "flags" / uint8,
        "parent_span_id" / uint64,
        "origin_ns" / uint64,
    ),
}

# ---------------------------------------------------------------------------
# The frame: header + payload, and the CRC-32 over bytes [16, end).
# ---------------------------------------------------------------------------

Frame = Struct(
    # bytes [0, 16): not covered by the checksum (the relay stamps domain_seq in place)
    "magic" / Const(b"AP"),  # 0x5041 little-endian
    "version" / Const(1, Int8ul),
    "reserved0" / Const(0, Int8ul),
    Padding(4),  # the checksum: written/verified at the end, once the covered bytes are known
    "domain_seq" / Int64ul,
    # bytes [16, end): covered by the checksum
    "covered"
    / RawCopy(
        Struct(
            "domain" / Int8ul,
            Check(lambda ctx: 1 <= ctx.domain <= 4),
            "reserved1" / Const(0, Int8ul),
            "flags" / Int16ul,
            "payload_len" / Rebuild(Int32ul, len_(this.payload)),
            Check(this.payload_len <= MAX_PAYLOAD),  # rejected before any payload is read
            "source_seq" / Int64ul,
            "event_time_ns" / Int64ul,
            "receive_time_ns" / Int64ul,
            "source_id" / Int32ul,
            "payload" / Bytes(this.payload_len),
        )
    ),
    "checksum" / Pointer(4, _Checksum(Int32ul, zlib.crc32, this.covered.data)),
)


# A record is an envelope (type code + length + raw body) in one of two forms; the body is then
# parsed/built by the type's declaration in BODIES, or kept raw for an unregistered type.
CompactTLV = Struct(
    "type" / Int8ul,
    Check(this.type != 0),  # a zero byte announces the extended form
    "body" / Prefixed(Int8ul, GreedyBytes),  # 0..255 bytes
)
ExtendedTLV = Struct(
    "marker" / Const(0, Int8ul),
    "type" / Int8ul,
    Check(this.type != 0),
    "body" / Prefixed(Int32ul, GreedyBytes),
)
# Writers use the first form that can hold the body (compact up to 255 bytes); readers take either.
TLVEnvelope = Select(CompactTLV, ExtendedTLV)


class _TLVAdapter(Adapter):
    """An envelope ``Container(type, body)`` <-> a TLV object (``UnknownTLV`` for unregistered types)."""

    def __init__(self, bodies: dict[int, _Object]) -> None:
        super().__init__(TLVEnvelope)
        self.bodies = bodies

    def _decode(self, obj: Any, context: Any, path: Any) -> Any:
        rec = self.bodies.get(obj.type)
        if rec is None:
            return UnknownTLV(type_code=obj.type, body=bytes(obj.body))
        # bytes after the fields this registry knows were appended by a newer writer: ignored
        return rec.parse(obj.body)

    def _encode(self, obj: Any, context: Any, path: Any) -> Any:
        if isinstance(obj, UnknownTLV):
            if not isinstance(obj.body, (bytes, bytearray)):
                raise ValidationError(f"UnknownTLV.body must be bytes, got {obj.body!r}", path=path)
            if isinstance(obj.type_code, bool):
                raise ValidationError("UnknownTLV.type_code must be an int", path=path)
            # kept verbatim, even if this registry happens to know its type code
            return {"type": obj.type_code, "body": bytes(obj.body)}
        code = getattr(type(obj), "TYPE", None)
        rec = self.bodies.get(code) if isinstance(code, int) else None
        if rec is None or rec.cls is not type(obj):
            raise ValidationError(f"{type(obj).__name__} is not registered with this codec", path=path)
        return {"type": code, "body": rec.build(obj)}


class ReferenceCodec:
    """The wire format for one registry of record bodies (``BODIES`` by default)."""

    def __init__(self, bodies: dict[int, _Object] | None = None) -> None:
        self.bodies: dict[int, _Object] = dict(BODIES if bodies is None else bodies)
        self.tlv = _TLVAdapter(self.bodies)
        # The payload is a run of records filling payload_len exactly.
        self.payload = Struct("records" / GreedyRange(self.tlv), Terminated)

    # ---- records ----

    def encode_tlv(self, tlv: TLV) -> bytes:
        if not isinstance(tlv, TLV):
            raise FieldRangeError(f"not a TLV record: {tlv!r}")
        try:
            data: bytes = self.tlv.build(tlv)
        except _BUILD_ERRORS as exc:
            raise FieldRangeError(f"{type(tlv).__name__} cannot be encoded: {exc}") from None
        return data

    def decode_tlvs(self, payload: bytes | bytearray | memoryview) -> tuple[TLV, ...]:
        try:
            records = self.payload.parse(bytes(payload)).records
        except (ConstructError, UnicodeError) as exc:
            raise TLVError(f"TLV records do not parse: {exc}") from None
        return tuple(records)

    # ---- messages ----

    def encode(self, message: Message) -> bytes:
        payload = b"".join([self.encode_tlv(t) for t in message.tlvs])
        if len(payload) > MAX_PAYLOAD:  # a local error: the caller must split the data
            raise FieldRangeError(f"payload of {len(payload)} bytes exceeds the maximum {MAX_PAYLOAD}")
        covered = {
            "domain": message.domain,
            "flags": message.flags,
            "source_seq": message.source_seq,
            "event_time_ns": message.event_time_ns,
            "receive_time_ns": message.receive_time_ns,
            "source_id": message.source_id,
            "payload": payload,
        }
        try:
            data: bytes = Frame.build({"domain_seq": message.domain_seq, "covered": {"value": covered}})
        except _BUILD_ERRORS as exc:
            raise FieldRangeError(f"message header cannot be encoded: {exc}") from None
        return data

    def decode(self, data: bytes | bytearray | memoryview) -> Message:
        """Decode exactly one message (trailing bytes are a ``FrameError``)."""
        data = bytes(data)
        try:
            frame = Frame.parse(data)
        except _ConstructChecksumError as exc:
            raise ChecksumError(str(exc)) from None
        except ConstructError as exc:
            raise FrameError(f"bad frame: {exc}") from None
        h = frame.covered.value
        tlvs = self.decode_tlvs(h.payload)
        if len(data) != HEADER_SIZE + h.payload_len:
            raise FrameError(f"{len(data) - HEADER_SIZE - h.payload_len} trailing bytes after the message")
        return Message(
            domain=h.domain,
            tlvs=tlvs,
            source_id=h.source_id,
            source_seq=h.source_seq,
            domain_seq=frame.domain_seq,
            event_time_ns=h.event_time_ns,
            receive_time_ns=h.receive_time_ns,
            flags=h.flags,
        )


_DEFAULT = ReferenceCodec()


def ref_encode(message: Message) -> bytes:
    """Serialise ``message`` with the reference codec."""
    return _DEFAULT.encode(message)


def ref_decode(data: bytes | bytearray | memoryview) -> Message:
    """Parse exactly one message with the reference codec."""
    return _DEFAULT.decode(data)


def ref_encode_tlv(tlv: TLV) -> bytes:
    return _DEFAULT.encode_tlv(tlv)


def ref_decode_tlvs(payload: bytes | bytearray | memoryview) -> tuple[TLV, ...]:
    return _DEFAULT.decode_tlvs(payload)
