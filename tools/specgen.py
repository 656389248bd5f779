"""Generate the golden vectors in ``specs/vectors/`` (run once, review, commit).

    python -m tools.specgen            # (re)write specs/vectors/*.json
    python -m tools.specgen --check    # exit 1 if the committed files differ from what would be written

Every vector is encoded with the fast codec (``protocol.encode``) and checked
against the construct reference codec (``protocol.reference``) before it is
written; decode-only and invalid vectors are checked against both decoders.
The tests never run this script: they read the committed JSON, so a codec
change that alters bytes fails them instead of silently rewriting the oracle.

JSON value conventions (also in specs/protocol.md, "Golden vectors"):

* integers of kinds up to 32 bits (uint8..uint32, int8..int32, int24) are JSON
  numbers; 64-bit and wider integers are decimal strings;
* ``address``, ``bytes32`` and ``bytes`` values are lower-case ``0x`` hex;
* ``string`` values are JSON strings;
* ``token_id`` is ``{"chain_id", "address"}``; ``pool_id`` is ``{"chain_id",
  "token0", "token1", "venue", "kind", "address"}`` (its bit fields, most
  significant first), both with a decimal ``"int"`` of the whole id;
* a list is a JSON array of objects, one per item.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from functools import partial
from pathlib import Path
from typing import Any

from protocol import (
    TLV_TYPES,
    Message,
    PoolId,
    ProtocolError,
    TokenId,
    UnknownTLV,
    Venue,
    VenueKind,
    decode,
    encode,
)
from protocol import execution as X
from protocol import market as M
from protocol import signals as S
from protocol import system as Y
from protocol.fields import Kind, VarKind
from protocol.reference import ref_decode, ref_encode
from protocol.tlv import TLV

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "specs" / "vectors"

SMALL_KINDS = {"uint8", "uint16", "uint32", "int8", "int16", "int32", "int24"}
DOMAIN_OF_MODULE = {
    "protocol.market": 1,
    "protocol.signals": 2,
    "protocol.execution": 3,
    "protocol.system": 4,
}
DOMAIN_NAMES = {1: "market", 2: "signal", 3: "execution", 4: "system"}
U64_MAX = (1 << 64) - 1

# ---------------------------------------------------------------------------
# Python value -> JSON
# ---------------------------------------------------------------------------


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _addr(v: int) -> str:
    return f"0x{v:040x}"


def token_json(v: int) -> dict[str, Any]:
    v = int(v)
    return {"chain_id": v >> 160, "address": _addr(v & ((1 << 160) - 1)), "int": str(v)}


def pool_json(v: int) -> dict[str, Any]:
    v = int(v)
    m160 = (1 << 160) - 1
    return {
        "chain_id": v >> 504,
        "token0": _addr((v >> 344) & m160),
        "token1": _addr((v >> 184) & m160),
        "venue": (v >> 168) & 0xFFFF,
        "kind": (v >> 160) & 0xFF,
        "address": _addr(v & m160),
        "int": str(v),
    }


def value_json(kind: Kind | VarKind, v: Any) -> Any:
    name = kind.name
    if isinstance(kind, VarKind) and kind.item is not None:
        return [record_json(item) for item in v]
    if name in SMALL_KINDS:
        return int(v)
    if name in ("address", "bytes32", "bytes"):
        return _hex(v)
    if name == "string":
        return v
    if name == "token_id":
        return token_json(v)
    if name == "pool_id":
        return pool_json(v)
    return str(int(v))  # 64-bit and wider integers


def record_json(obj: Any) -> dict[str, Any]:
    return {name: value_json(kind, getattr(obj, name)) for name, kind in type(obj).FIELDS}


def tlv_json(t: TLV) -> dict[str, Any]:
    if isinstance(t, UnknownTLV):
        return {"type": t.type_code, "unknown": True, "body": _hex(t.body)}
    return {"type": type(t).TYPE, "name": type(t).__name__, "fields": record_json(t)}


def header_json(m: Message) -> dict[str, Any]:
    return {
        "domain": m.domain,
        "flags": m.flags,
        "source_id": m.source_id,
        "source_seq": str(m.source_seq),
        "domain_seq": str(m.domain_seq),
        "event_time_ns": str(m.event_time_ns),
        "receive_time_ns": str(m.receive_time_ns),
    }


# ---------------------------------------------------------------------------
# Sample values
# ---------------------------------------------------------------------------

WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
V2_PAIR = "0xb4e16d0168e52d35cacd2c6185b44281ec28c9dc"  # Uniswap V2 USDC/WETH
SUSHI_PAIR = "0x397ff1542f962076d0bfe58ea045ffa2d347aca0"  # SushiSwap USDC/WETH
V3_POOL = "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640"  # Uniswap V3 USDC/WETH 0.05%
ROUTER = bytes.fromhex("7a250d5630b4cf539739df2c5dacb4c659f2488d")
NPM = bytes.fromhex("c36442b4a4522e871399cd717abdd847ab11fe88")
EOA = bytes.fromhex("d8da6bf26964af9d7eed9e03e53415d37aa96045")
WETH_B = bytes.fromhex(WETH[2:])
USDC_B = bytes.fromhex(USDC[2:])
TX = bytes.fromhex("5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060")
BLOCK_HASH = bytes.fromhex("a7e5f3c8a1b9e0d2c4f6a8b0d2e4f6a8c0e2d4f6b8a0c2e4d6f8a0b2c4e6d8f0")
PARENT_HASH = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0")

P_V2 = PoolId.of(1, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, V2_PAIR, USDC, WETH)
P_SUSHI = PoolId.of(1, Venue.SUSHISWAP, VenueKind.UNISWAP_V2, SUSHI_PAIR, USDC, WETH)
P_V3 = PoolId.of(1, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, V3_POOL, USDC, WETH)
# Uniswap V4 ETH/USDC 0.05 %: native ETH is currency0 (address 0); the address field holds the first 20
# bytes of the pool id 0x21c67e77...
P_V4 = PoolId.of(1, Venue.UNISWAP_V4, VenueKind.UNISWAP_V4, "0x21c67e77068de97969ba93d4aab21826d33ca12b",
                 "0x" + "0" * 40, USDC)
T_WETH = TokenId.of(1, WETH)
SQRT_P = 1598116379618778481505518856699904  # tick 198250
ETH = 10**18
GWEI = 10**9

GAS_PRICE = 11_666_666_666
GAS_COST = 180_000 * GAS_PRICE
GROSS = 5 * 10**15
NET = GROSS - GAS_COST - 0 - 5 * 10**14

# Field groups several types share (the same venue, log position or execution), so that each
# value is written once and related vectors stay consistent with each other.
BOOK = dict(venue=Venue.BINANCE, price_scale=2, size_scale=5, symbol="ETHUSDC")  # order-book records
LOG = dict(block_number=19_000_000, tx_hash=TX)  # the on-chain event records' log position
EXEC = dict(signal_id=0x0001_0000_0000_002A, chain_id=1)  # the execution records of one signal
HOP1 = dict(token_in=USDC_B, token_out=WETH_B, amount_in=3_400_000_000, amount_out=1_005_000_000_000_000_000)
STOP = dict(scope=Y.StopScope.CHAIN, scope_value=1, stop_id=9)

TYPICAL: dict[type, dict[str, Any]] = {
    M.Trade: dict(BOOK, side=M.Side.BUY, trade_id=3_123_456_789, price=345_612, size=125_000),
    M.Quote: dict(BOOK, update_id=51_234_567_890, bid_price=345_611, bid_size=2_000_000, ask_price=345_612,
                  ask_size=310_000),
    M.BookLevel: dict(BOOK, side=M.Side.SELL, update_id=51_234_567_891, price=345_700, size=0),
    M.V2Reserves: dict(pool=P_V2, block_number=19_000_000, log_index=112, reserve0=41_236_122_345_678,
                       reserve1=12_345_678_901_234_567_890_123),
    M.V2Swap: dict(LOG, pool=P_V2, log_index=113, sender=ROUTER, recipient=EOA, amount0_in=0, amount1_in=ETH,
                   amount0_out=3_412_345_678, amount1_out=0),
    M.V3Swap: dict(LOG, pool=P_V3, log_index=57, amount0=-3_412_345_678, amount1=ETH, sqrt_price_x96=SQRT_P,
                   liquidity=12_345_678_901_234_567_890, tick=198_250),
    M.LiquidityChange: dict(LOG, pool=P_V3, block_number=19_000_001, log_index=3, kind=M.LiquidityKind.MINT,
                            tick_lower=197_000, tick_upper=199_000, liquidity=987_654_321_098_765,
                            amount0=1_000_000_000, amount1=290_000_000_000_000_000, owner=NPM),
    M.PoolSnapshot: dict(
        pool=P_V3, block_number=19_000_000, fee_ppm=500, tick_spacing=10, reserve0=61_234_567_890_123,
        reserve1=23_456_789_012_345_678_901_234, sqrt_price_x96=SQRT_P, tick=198_250,
        liquidity=12_345_678_901_234_567_890,
        ticks=tuple(M.TickLiquidity(tick=t, liquidity_net=n) for t, n in (
            (-887_270, 1_000_000_000_000), (197_000, 987_654_321_098_765),
            (199_000, -987_654_321_098_765), (887_270, -1_000_000_000_000))),
    ),
    M.BlockHeader: dict(chain_id=1, number=19_000_000, timestamp=1_705_173_443, gas_limit=30_000_000,
                        gas_used=12_345_678, hash=BLOCK_HASH, parent_hash=PARENT_HASH, base_fee=25_123_456_789,
                        priority_fee=100_000_000),
    M.StateInvalidation: dict(chain_id=1, pool=P_V2, from_block=19_000_001, reason=M.InvalidationReason.REORG,
                              detail="reorg depth 2 at 19000001"),
    M.V3Initialize: dict(pool=P_V3, block_number=12_376_729, log_index=0,
                         sqrt_price_x96=1358435673237994543815629213794304, tick=195_000),
    M.V4ProtocolFee: dict(pool=P_V4, block_number=21_700_000, log_index=211, protocol_fee=(300 << 12) | 250),
    S.SignalIdentity: dict(signal_id=EXEC["signal_id"], strategy_id=1, kind=S.SignalKind.TWO_POOL,
                           confidence_bps=8_500, chain_id=1, block_number=19_000_000, strategy="two_pool_v2"),
    S.Economics: dict(profit_token=T_WETH, gross_profit=GROSS, gas_cost=GAS_COST, flash_fee=0,
                      slippage_allowance=5 * 10**14, net_profit=NET, gas_units=180_000, gas_price_wei=GAS_PRICE),
    S.ArbitragePath: dict(hops=(
        S.Hop(pool=P_SUSHI, venue_kind=VenueKind.UNISWAP_V2, **HOP1),
        S.Hop(pool=P_V2, venue_kind=VenueKind.UNISWAP_V2, token_in=WETH_B, token_out=USDC_B,
              amount_in=1_005_000_000_000_000_000, amount_out=3_417_000_000),
    )),
    S.DecisionPoint: dict(block_number=19_000_000, log_index=137),
    S.FlashLoan: dict(source=int(S.FlashSource.BALANCER)),
    S.CrossChainArbitrage: dict(source_chain=1, dest_chain=8453, bridge=1, timing_risk_blocks=2,
                                bridge_cost=300_000_000_000_000, source_gas_cost=GAS_COST,
                                dest_gas_cost=12_000_000_000_000),
    X.ExecutionStarted: dict(EXEC, mode=X.SubmissionMode.PRIVATE, nonce=42, tx_hash=TX, max_fee_per_gas=50 * GWEI,
                             max_priority_fee_per_gas=2 * GWEI, gas_limit=250_000),
    X.ExecutionResult: dict(EXEC, outcome=X.Outcome.EXECUTED, block_number=19_000_001, tx_hash=TX, gas_used=171_234,
                            effective_gas_price=27_123_456_789, expected_profit=NET,
                            realized_profit=NET - 50_000_000_000_000, profit_token=T_WETH, reason=""),
    X.CexFill: dict(signal_id=EXEC["signal_id"], venue=Venue.BINANCE, side=M.Side.BUY,
                    purpose=X.CexOrderPurpose.ENTRY, order_id=28_457, base_units=1_500_000_000_000_000_000,
                    quote_units=5_189_601_450, fee_units=5_184_417, base_token=T_WETH,
                    quote_token=TokenId.of(1, USDC), symbol="ETHUSDC", base_asset="ETH",
                    quote_asset="USDC"),
    X.LegReport: dict(signal_id=EXEC["signal_id"], outcome=X.Outcome.EXECUTED, cex_venue=Venue.BINANCE,
                      cex_side=M.Side.BUY, dex_result=X.DexLegResult.EXECUTED, base_token=T_WETH,
                      quote_token=TokenId.of(1, USDC), cex_requested=1_500_000_000_000_000_000,
                      cex_filled=1_500_000_000_000_000_000, cex_quote=5_189_601_450,
                      dex_base=1_500_000_000_000_000_000, dex_quote=5_221_390_112, gas_cost=4_122_051, unwound=0,
                      unwind_quote=0, left_open=0, realized_profit=27_666_611, symbol="ETHUSDC"),
    X.ChainLegReport: dict(signal_id=EXEC["signal_id"], chain_id=8453, leg=X.ChainLeg.DESTINATION,
                           outcome=X.Outcome.UNWOUND, result=X.DexLegResult.EXECUTED,
                           unwind_result=X.DexLegResult.EXECUTED, unwind_attempts=1, block_number=23_456_789,
                           tx_hash=TX, gas_used=98_512, effective_gas_price=12_000_000,
                           token_in=TokenId.of(8453, WETH), token_out=TokenId.of(8453, USDC),
                           amount_in=1_500_000_000_000_000_000, min_out=5_200_000_000, amount_out=5_221_390_112,
                           unwind_block_number=23_456_795, unwind_tx_hash=BLOCK_HASH,
                           unwind_amount_in=5_221_390_112, unwind_amount_out=1_493_512_004_117_220_451,
                           unwind_gas_cost=1_182_144_000_000, left_open=0,
                           reason="source leg reverted: minimum output not met"),
    # 2,000 USDC returned from Base to Arbitrum through a CCTP-like fast transfer, 1 bp fee, completed
    X.BridgeTransfer: dict(transfer_id=7, state=X.BridgeTransferState.COMPLETED, src_chain=8453, dst_chain=42161,
                           bridge=1, nonce=1_204, src_token=TokenId.of(8453, "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"),
                           dst_token=TokenId.of(42161, "0xaf88d065e77c8cc2239327c5edb3a432268e5831"),
                           recipient=EOA, amount=2_000_000_000, fee=200_000, received=1_999_800_000,
                           src_gas_cost=3_456_789_000_000, src_tx_hash=TX, dst_tx_hash=BLOCK_HASH,
                           sent_time_ns=1_705_173_443_000_000_000, completed_time_ns=1_705_173_451_000_000_000,
                           reason=""),
    # the rebalancer (source 48) asks the executor to send that withdrawal's 2,000 USDC through Base's bridge
    X.OwnerTxRequest: dict(request_id=19, chain_id=8453, call=X.OwnerCall.BRIDGE_SEND,
                           token=bytes.fromhex("833589fcd6edb6e08f4c7c32d4f71b54bda02913"), amount=2_000_000_000,
                           dst_chain=42161),
    X.OwnerTxAnswer: dict(request_id=19, requester=48, chain_id=8453, status=X.OwnerTxStatus.SENT, nonce=312,
                          tx_hash=TX, sender=EOA, reason=""),
    Y.Heartbeat: dict(epoch=3, head_seq=1_234_567),
    Y.Subscribe: dict(mode=Y.SubscribeMode.FROM_SEQ, from_seq=1_000, types=tuple(Y.TypeCode(code=c) for c in (4, 5, 6))),
    Y.Resync: dict(requested_seq=10, oldest_available=5_000, reason=Y.ResyncReason.TOO_OLD),
    Y.EmergencyStop: dict(STOP, reason="gas spike: base fee 500 gwei", sender="risk-manager"),
    Y.Resume: dict(STOP, reason="base fee normal", sender="operator:alice"),
    Y.Hello: dict(role=Y.Role.PRODUCER, protocol_version=1, source_id=0x0101, name="collector-evm-mainnet"),
    Y.Welcome: dict(epoch=3, head_seq=1_234_567, oldest_seq=1_000_000, last_source_seq=41, domain=1),
    Y.Ack: dict(source_id=0x0101, source_seq=41),
    Y.Goodbye: dict(code=1, reason="shutting down"),
    Y.Stats: dict(json=b'{"head_seq":1234567,"consumers":3}'),
    Y.ConsumerClass: dict(latency=Y.LatencyClass.CRITICAL),
    Y.TraceContext: dict(trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0x00F067AA0BA902B7, flags=1,
                         parent_span_id=0, origin_ns=1_705_173_443_123_456_789),
}

# A 255-byte string with multi-byte characters (3-byte euro signs).
LONG_STRING = "\u20ac" * 85


def extreme(kind: Kind | VarKind, high: bool) -> Any:
    if isinstance(kind, VarKind):
        if kind.item is not None:
            n = 3 if high else 0
            return tuple(extreme_record(kind.item, high) for _ in range(n))
        if kind.name == "string":
            return LONG_STRING if high else ""
        return b"\xff" * 1000 if high else b""
    if kind.check_len:
        return (b"\xff" if high else b"\x00") * kind.size
    assert kind.lo is not None and kind.hi is not None
    v = kind.hi if high else kind.lo
    if kind.name == "pool_id":
        return PoolId(v)
    if kind.name == "token_id":
        return TokenId(v)
    return v


def extreme_record(cls: Any, high: bool) -> Any:
    return cls(**{name: extreme(kind, high) for name, kind in cls.FIELDS})


def domain_of(cls: type) -> int:
    return 2 if cls is Y.TraceContext else DOMAIN_OF_MODULE[cls.__module__]


TYPICAL_HEADER = dict(
    source_id=0x0101,
    source_seq=42,
    domain_seq=0,
    event_time_ns=1_705_173_443_000_000_000,
    receive_time_ns=1_705_173_443_123_456_789,
)
MAX_HEADER = dict(
    source_id=(1 << 32) - 1,
    source_seq=U64_MAX,
    domain_seq=U64_MAX,
    event_time_ns=U64_MAX,
    receive_time_ns=U64_MAX,
    flags=3,
)

# ---------------------------------------------------------------------------
# Checked encoding
# ---------------------------------------------------------------------------


def vector_file(cases: list[dict[str, Any]], **about: Any) -> dict[str, Any]:
    """One vectors file: where it comes from, what it holds (``about``), its cases."""
    return {"spec": "specs/protocol.md", "generated_by": "tools/specgen.py", **about, "cases": cases}


def must_refuse(name: str, error: str, attempts: dict[str, Any]) -> None:
    """Every one of ``attempts`` (label -> thunk) must raise the ProtocolError named ``error``."""
    for label, attempt in attempts.items():
        try:
            attempt()
        except ProtocolError as exc:
            if type(exc).__name__ != error:
                raise SystemExit(f"{name}: {label} raised {type(exc).__name__}, expected {error}") from None
        else:
            raise SystemExit(f"{name}: {label} accepted it")


def checked_encode(m: Message) -> bytes:
    data = encode(m)
    if ref_encode(m) != data:
        raise SystemExit(f"fast and reference codecs disagree on {m!r}")
    if decode(data) != m or ref_decode(data) != m:
        raise SystemExit(f"round trip failed for {m!r}")
    return data


def message_case(name: str, description: str, m: Message) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "header": header_json(m),
        "tlvs": [tlv_json(t) for t in m.tlvs],
        "hex": checked_encode(m).hex(),
    }


def decode_only_case(name: str, description: str, data: bytes) -> dict[str, Any]:
    m = decode(data)
    if ref_decode(data) != m:
        raise SystemExit(f"decoders disagree on {name}")
    canonical = checked_encode(m)
    assert canonical != data, name
    return {
        "name": name,
        "description": description,
        "decode_only": True,
        "hex": data.hex(),
        "header": header_json(m),
        "tlvs": [tlv_json(t) for t in m.tlvs],
        "canonical_hex": canonical.hex(),
    }


def snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if (
            ch.isupper()
            and i
            and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower()))
        ):
            out.append("_")
        out.append(ch.lower())
    return "".join(out).replace("v_2", "v2").replace("v_3", "v3")


def type_file(cls: Any) -> tuple[str, dict[str, Any]]:
    dom = domain_of(cls)
    typical = cls(**TYPICAL[cls])
    cases = [
        message_case(
            "typical",
            f"a realistic {cls.__name__} in a domain {dom} message, not yet stamped by a relay (domain_seq 0)",
            Message(domain=dom, tlvs=[typical], **TYPICAL_HEADER),
        ),
        message_case(
            "min",
            "every integer at the bottom of its range (0, or the most negative value), "
            "zero bytes, empty strings and lists; all header fields 0",
            Message(domain=dom, tlvs=[extreme_record(cls, False)]),
        ),
        message_case(
            "max",
            "every integer at the top of its range, 0xff bytes, 255-byte UTF-8 strings (85 x U+20AC), "
            "1000-byte blobs, three-item lists; header fields at their maxima, flags REPLAYED|RETRANSMIT",
            Message(domain=dom, tlvs=[extreme_record(cls, True)], **MAX_HEADER),
        ),
    ]
    if cls is X.ExecutionResult:
        reverted = dict(
            TYPICAL[cls], outcome=X.Outcome.REVERTED, realized_profit=-GAS_COST, reason="reverted: K"
        )
        cases.append(
            message_case(
                "reverted",
                "a reverted execution: negative realized profit (the gas spent) and a reason",
                Message(domain=dom, tlvs=[cls(**reverted)], **TYPICAL_HEADER),
            )
        )
    doc = vector_file(cases, type=cls.TYPE, name=cls.__name__,
                      domain="any" if cls is Y.TraceContext else DOMAIN_NAMES[dom])
    return f"{cls.TYPE:03d}_{snake(cls.__name__)}.json", doc


def _frame(
    payload: bytes,
    *,
    domain: int = 4,
    magic: bytes = b"AP",
    version: int = 1,
    r0: int = 0,
    r1: int = 0,
    plen: int | None = None,
    csum: int | None = None,
) -> bytes:
    """A frame assembled by hand (with a correct checksum unless ``csum`` is given)."""
    n = len(payload) if plen is None else plen
    covered = struct.pack("<BBHIQQQI", domain, r1, 0, n, 1, 2, 3, 4) + payload
    c = zlib.crc32(covered) if csum is None else csum
    return magic + struct.pack("<BBIQ", version, r0, c, 0) + covered


def messages_file() -> dict[str, Any]:
    ident = S.SignalIdentity(**TYPICAL[S.SignalIdentity])
    econ = S.Economics(**TYPICAL[S.Economics])
    path = S.ArbitragePath(**TYPICAL[S.ArbitragePath])
    trace = Y.TraceContext(**TYPICAL[Y.TraceContext])
    snap = M.PoolSnapshot(
        **dict(
            TYPICAL[M.PoolSnapshot],
            ticks=tuple(
                M.TickLiquidity(tick=-887_270 + 10 * i, liquidity_net=(i + 1) * 10**15 * (-1) ** i)
                for i in range(40)
            ),
        )
    )
    reserves = [
        M.V2Reserves(**TYPICAL[M.V2Reserves]),
        M.V2Reserves(**dict(TYPICAL[M.V2Reserves], pool=P_SUSHI, log_index=140, reserve0=9_876_543_210_987)),
        M.V2Reserves(**dict(TYPICAL[M.V2Reserves], log_index=201, reserve0=41_236_000_000_000)),
    ]
    hb = Y.Heartbeat(epoch=3, head_seq=1_234_567)
    unstamped = Message(domain=2, tlvs=[ident, econ, path, trace], **TYPICAL_HEADER)
    cases = [
        message_case(
            "signal_bundle",
            "a two-pool signal as the strategy publishes it: SignalIdentity + Economics + ArbitragePath + TraceContext",
            unstamped,
        ),
        message_case(
            "signal_bundle_stamped",
            "the same message after the relay stamped domain_seq 1001 in place: only bytes [8,16) differ, "
            "the checksum is unchanged",
            unstamped._replace(domain_seq=1001),
        ),
        message_case(
            "market_batch",
            "three V2Reserves records in one market-data message",
            Message(domain=1, tlvs=reserves, **TYPICAL_HEADER),
        ),
        message_case(
            "snapshot_extended",
            "a PoolSnapshot with 40 ticks: its body is 946 bytes, so it uses the extended form",
            Message(domain=1, tlvs=[snap], **TYPICAL_HEADER),
        ),
        message_case(
            "v2swap_always_extended",
            "V2Swap's fixed body is 279 bytes, so it is always written in the extended form",
            Message(domain=1, tlvs=[M.V2Swap(**TYPICAL[M.V2Swap])], **TYPICAL_HEADER),
        ),
        message_case(
            "empty", "a message with no TLV records (payload_len 0)", Message(domain=4, **TYPICAL_HEADER)
        ),
        message_case(
            "unknown_types",
            "records of unregistered types 200 (compact, 5 bytes) and 250 (extended, 300 bytes) between known "
            "ones: readers keep them as UnknownTLV and re-encode them byte for byte",
            Message(
                domain=4,
                tlvs=[
                    hb,
                    UnknownTLV(type_code=200, body=b"hello"),
                    UnknownTLV(type_code=250, body=bytes(range(256)) + b"\x00" * 44),
                    Y.Ack(source_id=0x0101, source_seq=41),
                ],
                **TYPICAL_HEADER,
            ),
        ),
    ]
    # Decode-only: accepted, but not what a writer produces.
    body = hb.encode()[2:]
    cases.append(
        decode_only_case(
            "extended_form_small_body",
            "a Heartbeat written in the extended form although its body fits the compact form: readers accept "
            "either form; re-encoding yields the compact form (canonical_hex)",
            _frame(struct.pack("<BBI", 0, 100, len(body)) + body),
        )
    )
    rbody = reserves[0].encode()[2:] + b"\x2a\x00\x00\x00"
    cases.append(
        decode_only_case(
            "appended_field",
            "a V2Reserves body from a newer writer with 4 appended bytes (a field this reader does not know): "
            "the known prefix decodes; re-encoding drops the unknown tail",
            _frame(bytes((4, len(rbody))) + rbody, domain=1),
        )
    )
    gbody = Y.Goodbye(code=1, reason="bye").encode()[2:] + b"\x07\x00"
    cases.append(
        decode_only_case(
            "appended_after_string",
            "a Goodbye with two bytes appended after its last (string) field: ignored",
            _frame(bytes((111, len(gbody))) + gbody),
        )
    )
    return vector_file(cases)


def invalid_file() -> dict[str, Any]:
    hb = Y.Heartbeat(epoch=3, head_seq=1_234_567).encode()
    good = _frame(hb)
    res = M.V2Reserves(**TYPICAL[M.V2Reserves]).encode()

    def flip(data: bytes, i: int, mask: int = 1) -> bytes:
        b = bytearray(data)
        b[i] ^= mask
        return bytes(b)

    by_error: dict[str, list[tuple[str, str, bytes]]] = {
        "FrameError": [
            ("truncated_header", "10 bytes: less than a header", good[:10]),
            ("bad_magic", "magic 0x5141 instead of 0x5041", _frame(hb, magic=b"AQ")),
            ("version_2", "protocol version 2 (this spec is version 1)", _frame(hb, version=2)),
            ("reserved_byte_3", "reserved byte 3 is not zero", _frame(hb, r0=1)),
            ("reserved_byte_17", "reserved byte 17 is not zero (checksum correct)", _frame(hb, r1=1)),
            ("domain_0", "domain 0", _frame(hb, domain=0)),
            ("domain_5", "domain 5", _frame(hb, domain=5)),
            ("payload_too_large", "a header alone claiming payload_len 0xffffffff: rejected from the header, "
             "before any payload is read", _frame(b"", plen=0xFFFFFFFF)),
            ("payload_just_over_limit", "payload_len MAX_PAYLOAD + 1 (header only)", _frame(b"", plen=(1 << 20) + 1)),
            ("truncated_payload", "the last payload byte is missing", good[:-1]),
            ("trailing_byte", "one byte after the frame (decoding exactly one message)", good + b"\x00"),
        ],
        "ChecksumError": [
            ("checksum_payload_bit", "one payload bit flipped", flip(good, len(good) - 1)),
            ("checksum_header_bit", "one bit of source_seq flipped", flip(good, 24)),
            ("checksum_field_bit", "one bit of the stored checksum flipped", flip(good, 4)),
        ],
        "TLVError": [
            ("tlv_header_truncated", "a payload of one byte: half a compact TLV header", _frame(b"\x64")),
            ("tlv_length_overrun", "a compact record claiming 17 body bytes where 16 remain",
             _frame(bytes((100, 17)) + hb[2:])),
            ("extended_header_truncated", "five bytes of a six-byte extended header", _frame(b"\x00\x64\x10\x00\x00")),
            ("extended_length_overrun", "an extended record claiming 0xffffffff body bytes",
             _frame(b"\x00\x64\xff\xff\xff\xff" + hb[2:])),
            ("extended_type_0", "an extended record with type 0", _frame(b"\x00\x00\x00\x00\x00\x00")),
            ("body_too_short", "a V2Reserves body of 106 bytes (its fixed fields need 107)",
             _frame(bytes((4, 106)) + res[2:-1], domain=1)),
            ("body_empty", "a Heartbeat with an empty body", _frame(b"\x64\x00")),
            ("string_overrun", "a Goodbye whose string claims 10 bytes where 3 remain", _frame(b"\x6f\x06\x01\x00\x0aabc")),
            ("string_length_missing", "a Goodbye body that ends before its string length byte",
             _frame(b"\x6f\x02\x01\x00")),
            ("string_bad_utf8", "a Goodbye string that is not UTF-8", _frame(b"\x6f\x05\x01\x00\x02\xc3\x28")),
            ("string_surrogate", "a Goodbye string holding a UTF-8-encoded surrogate (ED A0 80), which UTF-8 forbids",
             _frame(b"\x6f\x06\x01\x00\x03\xed\xa0\x80")),
            ("list_count_overrun", "a Subscribe claiming 65535 type codes in a 12-byte body",
             _frame(b"\x65\x0c\x01" + b"\x00" * 8 + b"\xff\xff\x04")),
            ("list_count_missing", "a Subscribe body that ends before its item count",
             _frame(b"\x65\x09\x01" + b"\x00" * 8)),
            ("blob_overrun", "a Stats blob claiming 5 bytes where 2 remain", _frame(b"\x70\x04\x05\x00{}")),
            ("second_record_truncated", "a valid Heartbeat followed by a truncated record",
             _frame(hb + b"\x64\x10\x00")),
        ],
    }
    cases = [(name, description, data, error) for error, group in by_error.items() for name, description, data in group]
    out = []
    for name, description, data, error in cases:
        must_refuse(name, error, {"protocol.message": partial(decode, data), "protocol.reference": partial(ref_decode, data)})
        out.append({"name": name, "description": description, "hex": data.hex(), "error": error})
    return vector_file(out, description="bytes every decoder must reject, decoding exactly one message, with the error class")


def invalid_values_file() -> dict[str, Any]:
    """Values every encoder must refuse with FieldRangeError (never truncate or wrap)."""
    base = {cls: TYPICAL[cls] for cls in TYPICAL}

    def case(name: str, description: str, cls: Any, /, **override: Any) -> dict[str, Any]:
        values = dict(base[cls], **override)
        obj = cls(**values)
        m = Message(domain=domain_of(cls), tlvs=[obj])
        must_refuse(name, "FieldRangeError", {"protocol.message": partial(encode, m), "protocol.reference": partial(ref_encode, m)})
        return {
            "name": name,
            "description": description,
            "tlv": {"type": cls.TYPE, "name": cls.__name__, "fields": record_json(obj)},
            "error": "FieldRangeError",
        }

    cases = [
        case("uint112_overflow", "reserve0 = 2**112", M.V2Reserves, reserve0=1 << 112),
        case("uint112_negative", "reserve1 = -1", M.V2Reserves, reserve1=-1),
        case("int24_overflow", "tick = 2**23", M.V3Swap, tick=1 << 23),
        case("int24_underflow", "tick = -2**23 - 1", M.V3Swap, tick=-(1 << 23) - 1),
        case("int256_overflow", "gross_profit = 2**255", S.Economics, gross_profit=1 << 255),
        case("uint256_overflow", "gas_cost = 2**256", S.Economics, gas_cost=1 << 256),
        case("uint64_overflow", "epoch = 2**64", Y.Heartbeat, epoch=1 << 64),
        case("uint64_negative", "head_seq = -1", Y.Heartbeat, head_seq=-1),
        case("uint8_overflow", "flags = 256", Y.TraceContext, flags=256),
        case("uint160_overflow", "sqrt_price_x96 = 2**160", M.V3Initialize, sqrt_price_x96=1 << 160),
        case("address_short", "a 19-byte sender", M.V2Swap, sender=b"\x11" * 19),
        case("address_long", "a 21-byte recipient", M.V2Swap, recipient=b"\x11" * 21),
        case("bytes32_long", "a 33-byte tx_hash", M.V2Swap, tx_hash=b"\x22" * 33),
        case("string_256_bytes", "a 256-byte ASCII reason", Y.Goodbye, reason="x" * 256),
        case("string_258_utf8_bytes", "86 euro signs: 86 characters, 258 UTF-8 bytes", Y.Hello, name="\u20ac" * 86),
        case("pool_id_negative", "pool = -1", M.V2Reserves, pool=-1),
        case("pool_id_overflow", "pool = 2**536", M.V2Reserves, pool=1 << 536),
        case("token_id_overflow", "profit_token = 2**192", S.Economics, profit_token=1 << 192),
    ]
    return vector_file(cases, description="field values every encoder must refuse with FieldRangeError "
                       "(never truncate or wrap)")


def build_all() -> dict[str, str]:
    files: dict[str, Any] = {}
    missing = [cls.__name__ for cls in TLV_TYPES.values() if cls not in TYPICAL]
    if missing:
        raise SystemExit(f"no sample values for {missing}: add them to TYPICAL in tools/specgen.py")
    for _, cls in sorted(TLV_TYPES.items()):
        name, doc = type_file(cls)
        files[name] = doc
    files["messages.json"] = messages_file()
    files["invalid.json"] = invalid_file()
    files["invalid_values.json"] = invalid_values_file()
    return {name: json.dumps(doc, indent=1, ensure_ascii=False) + "\n" for name, doc in files.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--check", action="store_true", help="compare with the committed files instead of writing"
    )
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    files = build_all()
    if args.check:
        bad = [
            n
            for n, text in files.items()
            if not (args.out / n).exists() or (args.out / n).read_text() != text
        ]
        extra = sorted(p.name for p in args.out.glob("*.json") if p.name not in files)
        for n in bad:
            print(f"differs: {n}")
        for n in extra:
            print(f"not generated: {n}")
        return 1 if bad or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for n, text in files.items():
        (args.out / n).write_text(text)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
