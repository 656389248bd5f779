"""Codec benchmark: encode+decode of the hot message types vs a bare struct of the same size.

The baseline is one precompiled ``struct.Struct`` whose format has the message
header's fields plus enough 8-byte fields to reach the same byte size, packed
and unpacked with the same values each time: the floor for "bytes <-> Python
values" in CPython. We report msgs/s for both and our rate as a fraction of it.
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from collections.abc import Callable

import protocol as P

HOT_TYPES = ("V2Reserves", "V3Swap", "Trade", "Heartbeat")


def sample_messages() -> dict[str, P.Message]:
    pool = P.PoolId.of(
        1, P.Venue.UNISWAP_V3, P.VenueKind.UNISWAP_V3, "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640",
        "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
    )
    common = dict(source_id=3, source_seq=123456, event_time_ns=1704412800_000_000_000,
                  receive_time_ns=1704412800_000_450_000)
    return {
        "V2Reserves": P.Message(domain=1, **common, tlvs=(P.V2Reserves(
            pool=pool, block_number=18_937_382, log_index=17,
            reserve0=52_123_456_789_012, reserve1=23_456_789_012_345_678_901_234),)),
        "V3Swap": P.Message(domain=1, **common, tlvs=(P.V3Swap(
            pool=pool, block_number=18_937_382, log_index=17, tx_hash=bytes(range(32)),
            amount0=-2_253_312_409, amount1=1_000_000_000_000_000_000,
            sqrt_price_x96=1_887_344_402_127_624_133_364_424_453_232_640, liquidity=13_541_278_417_012_493_217,
            tick=200_311),)),
        "Trade": P.Message(domain=1, **common, tlvs=(P.Trade(
            venue=P.Venue.BINANCE, side=1, price_scale=2, size_scale=5, trade_id=410_523_123,
            price=205_812, size=1_234_500, symbol="ETHUSDT"),)),
        "Heartbeat": P.Message(domain=4, **common, tlvs=(P.Heartbeat(epoch=7, head_seq=99_999_999),)),
    }


def _baseline_struct(size: int) -> tuple[struct.Struct, tuple[int, ...]]:
    head = "HBBHHIIQQQQI"
    extra = size - struct.calcsize("<" + head)
    fmt = "<" + head + "Q" * (extra // 8) + "B" * (extra % 8)
    s = struct.Struct(fmt)
    values = (P.header.MAGIC, P.header.VERSION, 1, 0, 0, 100, 3, 123456, 1, 2, 3, 4) + tuple(range(1, extra // 8 + 1)) + (7,) * (extra % 8)
    assert s.size == size
    return s, values


def _rate(fn: Callable[[int], None], n: int, repeat: int) -> float:
    """Best-of-``repeat`` ops/s for a loop of ``n`` operations."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t0)
    return n / best


def measure(name: str, msg: P.Message, n: int, repeat: int) -> dict[str, float | int | str]:
    enc, dec = P.encode, P.decode
    data = enc(msg)
    assert dec(data) == msg
    s, values = _baseline_struct(len(data))
    packed = s.pack(*values)
    pack, unpack = s.pack, s.unpack

    def b_pack(k: int) -> None:
        for _ in range(k):
            pack(*values)

    def b_unpack(k: int) -> None:
        for _ in range(k):
            unpack(packed)

    def o_enc(k: int) -> None:
        for _ in range(k):
            enc(msg)

    def o_dec(k: int) -> None:
        for _ in range(k):
            dec(data)

    r_pack, r_unpack = _rate(b_pack, n, repeat), _rate(b_unpack, n, repeat)
    r_enc, r_dec = _rate(o_enc, n, repeat), _rate(o_dec, n, repeat)
    base_rt = 1 / (1 / r_pack + 1 / r_unpack)
    ours_rt = 1 / (1 / r_enc + 1 / r_dec)
    return {
        "type": name, "bytes": len(data), "encode_per_s": round(r_enc), "decode_per_s": round(r_dec),
        "roundtrip_per_s": round(ours_rt), "struct_pack_per_s": round(r_pack),
        "struct_unpack_per_s": round(r_unpack), "struct_roundtrip_per_s": round(base_rt),
        "ratio": round(ours_rt / base_rt, 3),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse bench codec", description=__doc__)
    ap.add_argument("-n", type=int, default=200_000, help="operations per timed loop")
    ap.add_argument("--repeat", type=int, default=5, help="timed loops; the best is kept")
    ap.add_argument("--json", action="store_true", help="print JSON rows")
    args = ap.parse_args(argv)
    rows = [measure(name, msg, args.n, args.repeat) for name, msg in sample_messages().items()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"codec benchmark: {args.n} ops per loop, best of {args.repeat}; baseline = bare struct of the same size")
    print(f"{'type':11s} {'bytes':>5s} {'encode/s':>10s} {'decode/s':>10s} {'enc+dec/s':>10s} "
          f"{'struct p+u/s':>12s} {'ratio':>6s}")
    for r in rows:
        print(f"{r['type']:11s} {r['bytes']:5d} {r['encode_per_s']:10,d} {r['decode_per_s']:10,d} "
              f"{r['roundtrip_per_s']:10,d} {r['struct_roundtrip_per_s']:12,d} {r['ratio']:6.1%}")
    mean = sum(float(r["ratio"]) for r in rows) / len(rows)
    print(f"mean ratio {mean:.1%} (target >= 35%)")
    return 0
