"""tools/bench/decode.py runs, compares equal values on both sides, and reports both rates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.bench import decode as bench

RAW_3000 = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "uniswap-v3-usdc-weth-2024-01-05"
    / "ethereum-0x8ad599c3a0ff1de082011efddc58f1908eb6e6d8-2024-01-05.raw.csv"
)


def test_bench_decode_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--logs", str(RAW_3000), "--repeat", "1", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["logs"] == 304 and row["messages"] == 304 - 16
    for key in ("ours_raw_to_wire_per_s", "ours_raw_to_tlv_per_s", "eth_abi_per_s"):
        assert row[key] > 0
    assert row["ratio_wire_vs_eth_abi"] == pytest.approx(
        row["ours_raw_to_wire_per_s"] / row["eth_abi_per_s"], rel=0.01
    )


def test_bench_refuses_to_race_different_values(monkeypatch: pytest.MonkeyPatch) -> None:
    logs = bench.load_logs([str(RAW_3000)])
    decoder = bench.LogDecoder.from_pools(bench.MAINNET_USDC_WETH_V3)
    bench.check_same_values(logs, decoder)
    # a baseline that decodes something else must be caught before timing
    original = bench.eth_abi_decode
    monkeypatch.setattr(bench, "eth_abi_decode", lambda log: (*original(log)[:3], (0, 0, 0, 0, 0), ()))
    with pytest.raises(AssertionError, match="values differ"):
        bench.check_same_values(logs[:1], decoder)
