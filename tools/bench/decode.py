"""Decode benchmark: raw EVM logs -> protocol wire bytes, vs eth-abi decoding the same logs.

Input: the 6,538 real ``eth_getLogs`` rows of the two Uniswap V3 USDC/WETH pools on
2024-01-05 (``tests/data/uniswap-v3-usdc-weth-2024-01-05``), as the JSON-RPC log
dicts a node returns (hex strings). All three loops run in the same process, over
the same dicts, best of ``--repeat``:

* **ours, raw log -> wire bytes**: ``LogDecoder.decode`` (validating every word it
  uses), then ``protocol.Message`` with event/receive times and ``protocol.encode``
  -- everything a collector does between the JSON-RPC dict and the socket. Collect
  logs, which have no TLV, are decoded with ``decode_collect``, so every log yields
  its full values on both sides.
* **ours, raw log -> TLV**: the decoder alone (the like-for-like comparison).
* **eth-abi (baseline)**: ``eth_abi.decode`` of the data and of the indexed topics the
  TLV carries, plus block number, log index and transaction hash: the same values,
  without building or encoding any message.

Before timing, every value of both sides is compared for every log, so neither side
can be fast by doing less. We report logs/s for each and our rates as multiples of
eth-abi's. The machine is shared and noisy: compare the ratio, not the absolute rates.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eth_abi

from collectors.evm.decode import (
    TOPIC0_V3_BURN,
    TOPIC0_V3_COLLECT,
    TOPIC0_V3_MINT,
    TOPIC0_V3_SWAP,
    LogDecoder,
    decode_collect,
)
from collectors.replay.pools import MAINNET_USDC_WETH_V3
from collectors.replay.replay import resolve_files
from collectors.replay.source import merge_logs, read_logs
from protocol import LiquidityChange, Message, V3Swap, encode

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "uniswap-v3-usdc-weth-2024-01-05"

# topic0 -> (data types, indexed topic types the TLV carries)
ABI: dict[str, tuple[list[str], list[str]]] = {
    TOPIC0_V3_SWAP: (["int256", "int256", "uint160", "uint128", "int24"], []),
    TOPIC0_V3_MINT: (["address", "uint128", "uint256", "uint256"], ["address", "int24", "int24"]),
    TOPIC0_V3_BURN: (["uint128", "uint256", "uint256"], ["address", "int24", "int24"]),
    TOPIC0_V3_COLLECT: (["address", "uint128", "uint128"], ["address", "int24", "int24"]),
}


def load_logs(paths: list[str]) -> list[dict[str, Any]]:
    return list(merge_logs([read_logs(p) for p in resolve_files(paths)]))


def eth_abi_decode(log: dict[str, Any]) -> tuple[Any, ...]:
    """The baseline: the same values with eth-abi (data + the indexed topics we carry)."""
    topics = log["topics"]
    data_types, topic_types = ABI[topics[0]]
    values = eth_abi.decode(data_types, bytes.fromhex(log["data"][2:]))
    indexed = (
        eth_abi.decode(
            topic_types, b"".join([bytes.fromhex(t[2:]) for t in topics[1 : 1 + len(topic_types)]])
        )
        if topic_types
        else ()
    )
    return (
        int(log["blockNumber"], 16),
        int(log["logIndex"], 16),
        bytes.fromhex(log["transactionHash"][2:]),
        values,
        indexed,
    )


def make_ours(decoder: LogDecoder) -> Callable[[dict[str, Any], int], bytes | tuple[Any, ...]]:
    decode = decoder.decode

    def raw_to_wire(log: dict[str, Any], seq: int) -> bytes | tuple[Any, ...]:
        tlv = decode(log)
        if tlv is None:  # Collect: no TLV, but decode its values like the baseline does
            return decode_collect(log["topics"], log["data"])
        now = time.time_ns()
        return encode(
            Message(
                domain=1,
                tlvs=(tlv,),
                source_id=1,
                source_seq=seq,
                event_time_ns=int(log["blockTimestamp"], 16) * 1_000_000_000,
                receive_time_ns=now,
            )
        )

    return raw_to_wire


def check_same_values(logs: list[dict[str, Any]], decoder: LogDecoder) -> None:
    """Both sides must produce the same full values for every log (else the race is meaningless)."""
    for log in logs:
        block, index, txh, values, indexed = eth_abi_decode(log)
        t0 = log["topics"][0]
        tlv = decoder.decode(log)
        if t0 == TOPIC0_V3_COLLECT:
            ev = decode_collect(log["topics"], log["data"])
            owner, lo, hi = indexed
            recipient, a0, a1 = values
            got: tuple[Any, ...] = (
                "0x" + ev.owner.hex(),
                ev.tick_lower,
                ev.tick_upper,
                "0x" + ev.recipient.hex(),
                ev.amount0,
                ev.amount1,
            )
            want: tuple[Any, ...] = (owner, lo, hi, recipient, a0, a1)
        else:
            if not isinstance(tlv, (V3Swap, LiquidityChange)):
                raise AssertionError(f"no event TLV at block {block} log {index}: {tlv!r}")
            if (tlv.block_number, tlv.log_index, tlv.tx_hash) != (block, index, txh):
                raise AssertionError(f"position/hash differ at block {block} log {index}")
            if t0 == TOPIC0_V3_SWAP:
                assert type(tlv) is V3Swap
                got = (tlv.amount0, tlv.amount1, tlv.sqrt_price_x96, tlv.liquidity, tlv.tick)
                want = values
            else:
                assert type(tlv) is LiquidityChange
                owner, lo, hi = indexed
                got = (
                    "0x" + tlv.owner.hex(),
                    tlv.tick_lower,
                    tlv.tick_upper,
                    tlv.liquidity,
                    tlv.amount0,
                    tlv.amount1,
                )
                want = (owner, lo, hi, *values[-3:])
        if got != want:
            raise AssertionError(f"values differ at block {block} log {index}: ours {got} eth-abi {want}")


def _best_rates(loops: dict[str, Callable[[], None]], n: int, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` rates, the loops interleaved pass by pass so load spikes hit all of them."""
    best = dict.fromkeys(loops, float("inf"))
    for _ in range(repeat):
        for name, fn in loops.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: n / t for name, t in best.items()}


def measure(logs: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    decoder = LogDecoder.from_pools(MAINNET_USDC_WETH_V3)
    check_same_values(logs, decoder)
    raw_to_wire = make_ours(decoder)
    decode = decoder.decode

    def ours_wire() -> None:
        for seq, log in enumerate(logs, 1):
            raw_to_wire(log, seq)

    def ours_tlv() -> None:
        for log in logs:
            if decode(log) is None:
                decode_collect(log["topics"], log["data"])

    def baseline() -> None:
        for log in logs:
            eth_abi_decode(log)

    n = len(logs)
    rates = _best_rates({"base": baseline, "wire": ours_wire, "tlv": ours_tlv}, n, repeat)
    r_base, r_wire, r_tlv = rates["base"], rates["wire"], rates["tlv"]
    frames = [b for log in logs if isinstance(b := raw_to_wire(log, 1), bytes)]
    return {
        "logs": n,
        "repeat": repeat,
        "ours_raw_to_wire_per_s": round(r_wire),
        "ours_raw_to_tlv_per_s": round(r_tlv),
        "eth_abi_per_s": round(r_base),
        "ratio_wire_vs_eth_abi": round(r_wire / r_base, 2),
        "ratio_tlv_vs_eth_abi": round(r_tlv / r_base, 2),
        "messages": len(frames),
        "mean_message_bytes": round(sum(map(len, frames)) / max(1, len(frames)), 1),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="alphapulse bench decode",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--logs",
        nargs="+",
        default=[str(DEFAULT_DATA)],
        metavar="PATH",
        help="raw-log recordings or directories (default: the 2024-01-05 USDC/WETH set)",
    )
    ap.add_argument("--repeat", type=int, default=7, help="timed passes over all logs; the best is kept")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    logs = load_logs(args.logs)
    row = measure(logs, args.repeat)
    if args.json:
        print(json.dumps(row, indent=2))
        return 0
    print(
        f"decode benchmark: {row['logs']} real logs (Uniswap V3 USDC/WETH, 2024-01-05), best of {args.repeat}; "
        "values checked equal on both sides first"
    )
    print(
        f"  ours, raw log -> Message -> wire bytes  {row['ours_raw_to_wire_per_s']:>10,} logs/s  "
        f"{row['ratio_wire_vs_eth_abi']:>6.2f}x eth-abi"
    )
    print(
        f"  ours, raw log -> TLV                    {row['ours_raw_to_tlv_per_s']:>10,} logs/s  "
        f"{row['ratio_tlv_vs_eth_abi']:>6.2f}x eth-abi"
    )
    print(
        f"  eth-abi decode of the same values       {row['eth_abi_per_s']:>10,} logs/s  (baseline, same run)"
    )
    return 0
