"""Our decoder against real mainnet logs: all 6,538 logs of the two USDC/WETH V3 pools on 2024-01-05.

Two independent references, row by row:

* upstream's own decoding (demeter-fetch's ``*.pool.tick.csv``, see the data folder's README):
  amounts, sqrtPriceX96, liquidity and tick of every swap; tick range, liquidity, amounts and
  owner of every mint/burn; the Collect rows (which have no TLV) through ``decode_collect``;
  and the price/tick upstream carries forward onto non-swap rows;
* eth-abi decoding every raw log, for the fields upstream does not print (mint owner).
"""

from __future__ import annotations

import csv
from pathlib import Path

import eth_abi
import pytest

from collectors.evm.decode import (
    TOPIC0_V3_BURN,
    TOPIC0_V3_COLLECT,
    TOPIC0_V3_MINT,
    TOPIC0_V3_SWAP,
    LogDecoder,
    decode_collect,
)
from collectors.replay.pools import MAINNET_USDC_WETH_V3
from collectors.replay.source import read_logs
from protocol import LiquidityChange, LiquidityKind, Message, V3Swap, decode, encode

DATA = Path(__file__).resolve().parents[1] / "data" / "uniswap-v3-usdc-weth-2024-01-05"
POOL_FILES = {
    "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640": "ethereum-0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640-2024-01-05",
    "0x8ad599c3a0ff1de082011efddc58f1908eb6e6d8": "ethereum-0x8ad599c3a0ff1de082011efddc58f1908eb6e6d8-2024-01-05",
}
EXPECTED_ROWS = {
    "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640": 6234,
    "0x8ad599c3a0ff1de082011efddc58f1908eb6e6d8": 304,
}


def _addr(hex_or_bytes: str | bytes) -> str:
    if isinstance(hex_or_bytes, bytes):
        return "0x" + hex_or_bytes.hex()
    return hex_or_bytes.lower()


def _tick(text: str) -> int:
    # upstream prints ticks as floats ("199045.0"); they are exact small integers
    value = float(text)
    assert value == int(value)
    return int(value)


def _pairs(address: str) -> list[tuple[dict, dict]]:
    stem = POOL_FILES[address]
    logs = list(read_logs(DATA / f"{stem}.raw.csv"))
    with (DATA / f"{stem}.pool.tick.csv").open(newline="") as f:
        upstream = list(csv.DictReader(f))
    assert len(logs) == len(upstream) == EXPECTED_ROWS[address]
    return list(zip(logs, upstream))


@pytest.mark.parametrize("address", sorted(POOL_FILES))
def test_decoder_reproduces_upstream_row_by_row(address: str) -> None:
    decoder = LogDecoder.from_pools(MAINNET_USDC_WETH_V3)
    pool = decoder.pools[address]
    checked = {"SWAP": 0, "MINT": 0, "BURN": 0, "COLLECT": 0}
    last_swap: V3Swap | None = None
    for log, up in _pairs(address):
        where = f"block {up['block_number']} log {up['log_index']}"
        # the same log on both sides
        assert int(log["blockNumber"], 16) == int(up["block_number"]), where
        assert int(log["logIndex"], 16) == int(up["log_index"]), where
        assert log["transactionHash"] == up["transaction_hash"], where

        tlv = decoder.decode(log)
        kind = up["tx_type"]
        checked[kind] += 1
        if kind == "COLLECT":
            assert tlv is None and log["topics"][0] == TOPIC0_V3_COLLECT, where
            ev = decode_collect(log["topics"], log["data"])
            assert (ev.amount0, ev.amount1) == (int(up["amount0"]), int(up["amount1"])), where
            assert (ev.tick_lower, ev.tick_upper) == (_tick(up["tick_lower"]), _tick(up["tick_upper"])), where
            assert _addr(ev.owner) == up["sender"] and _addr(ev.recipient) == up["receipt"], where
        else:
            assert tlv is not None and tlv.pool == pool, where
            assert tlv.block_number == int(up["block_number"]) and tlv.log_index == int(up["log_index"]), (
                where
            )
            assert "0x" + tlv.tx_hash.hex() == up["transaction_hash"], where
        if kind == "SWAP":
            assert type(tlv) is V3Swap, where
            assert tlv.amount0 == int(up["amount0"]), where
            assert tlv.amount1 == int(up["amount1"]), where
            assert tlv.sqrt_price_x96 == int(up["sqrtPriceX96"]), where
            assert tlv.liquidity == int(up["total_liquidity"]), where
            assert tlv.tick == _tick(up["current_tick"]), where
            last_swap = tlv
        elif kind in ("MINT", "BURN"):
            assert type(tlv) is LiquidityChange, where
            assert tlv.kind == (LiquidityKind.MINT if kind == "MINT" else LiquidityKind.BURN), where
            assert tlv.tick_lower == _tick(up["tick_lower"]), where
            assert tlv.tick_upper == _tick(up["tick_upper"]), where
            assert tlv.liquidity == int(up["liquidity"]), where
            assert tlv.amount0 == int(up["amount0"]), where
            assert tlv.amount1 == int(up["amount1"]), where
            if kind == "BURN":  # upstream's "sender" of a Burn is the owner topic
                assert _addr(tlv.owner) == up["sender"], where
        if kind != "SWAP" and last_swap is not None:
            # upstream carries the last swap's price and tick onto non-swap rows
            assert int(up["sqrtPriceX96"]) == last_swap.sqrt_price_x96, where
            assert _tick(up["current_tick"]) == last_swap.tick, where
        if tlv is not None:  # and every TLV survives the wire unchanged
            msg = Message(domain=1, tlvs=(tlv,), event_time_ns=1, receive_time_ns=2)
            assert decode(encode(msg)).tlvs == (tlv,), where
    assert sum(checked.values()) == EXPECTED_ROWS[address]
    stats = decoder.stats
    assert stats.decoded == checked["SWAP"] + checked["MINT"] + checked["BURN"]
    assert stats.ignored == checked["COLLECT"]
    assert stats.unknown_pool == stats.unknown_topic == stats.malformed == stats.removed == 0


def test_all_6538_logs_agree_with_eth_abi() -> None:
    """Every field of every TLV against eth-abi's decoding of the same raw log."""
    decoder = LogDecoder.from_pools(MAINNET_USDC_WETH_V3)
    n = 0
    for address in POOL_FILES:
        for log, _ in _pairs(address):
            topics, data = log["topics"], bytes.fromhex(log["data"][2:])
            tlv = decoder.decode(log)
            t0 = topics[0]
            if t0 == TOPIC0_V3_SWAP:
                a0, a1, sp, liq, tick = eth_abi.decode(
                    ["int256", "int256", "uint160", "uint128", "int24"], data
                )
                assert (tlv.amount0, tlv.amount1, tlv.sqrt_price_x96, tlv.liquidity, tlv.tick) == (
                    a0,
                    a1,
                    sp,
                    liq,
                    tick,
                )
            elif t0 in (TOPIC0_V3_MINT, TOPIC0_V3_BURN):
                owner, lo, hi = eth_abi.decode(
                    ["address", "int24", "int24"], b"".join(bytes.fromhex(t[2:]) for t in topics[1:])
                )
                types = ["uint128", "uint256", "uint256"]
                if t0 == TOPIC0_V3_MINT:
                    _, liq, a0, a1 = eth_abi.decode(["address", *types], data)
                else:
                    liq, a0, a1 = eth_abi.decode(types, data)
                assert (tlv.tick_lower, tlv.tick_upper, tlv.liquidity, tlv.amount0, tlv.amount1) == (
                    lo,
                    hi,
                    liq,
                    a0,
                    a1,
                )
                assert _addr(tlv.owner) == owner.lower()
            else:
                assert t0 == TOPIC0_V3_COLLECT and tlv is None
                owner, lo, hi = eth_abi.decode(
                    ["address", "int24", "int24"], b"".join(bytes.fromhex(t[2:]) for t in topics[1:])
                )
                recipient, a0, a1 = eth_abi.decode(["address", "uint128", "uint128"], data)
                assert decode_collect(topics, log["data"]) == (
                    bytes.fromhex(owner[2:]),
                    bytes.fromhex(recipient[2:]),
                    lo,
                    hi,
                    a0,
                    a1,
                )
            n += 1
    assert n == 6538
