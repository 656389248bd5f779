"""The committed AlphaPulseArb artifact is what the source compiles to, and calldata.py speaks
the compiled interface. No chain needed (the compile needs node + node_modules/solc)."""

from __future__ import annotations

import pytest
from eth_abi import decode

from execution import build
from execution.calldata import (
    ARBITRAGE_EXECUTED_TOPIC,
    ERROR_SIGNATURES,
    EXECUTE_INVENTORY_SIGNATURE,
    EXECUTE_SELECTOR,
    EXECUTE_SIGNATURE,
    Hop,
    Kind,
    check_cycle,
    decode_arbitrage_executed,
    decode_error,
    decode_execute,
    decode_profit_events,
    encode_execute,
    profit_from_logs,
)

A = "0x" + "11" * 20
B = "0x" + "22" * 20
C = "0x" + "33" * 20
P1 = "0x" + "a1" * 20
P2 = "0x" + "a2" * 20
F = "0x" + "f0" * 20


@pytest.fixture(scope="module")
def fresh() -> dict:
    return build.compile_contract()


def test_committed_artifact_is_up_to_date(fresh: dict) -> None:
    committed = build.load_artifact()
    assert committed["sourceSha256"] == build.sha256_hex(build.SOURCE_PATH.read_text()), (
        "AlphaPulseArb.sol changed: run `python -m execution.build` and commit the artifact"
    )
    assert build.stale_reasons(committed, fresh) == [], "stale artifact: run `python -m execution.build`"
    assert committed["bytecode"] == fresh["bytecode"]
    assert committed["deployedBytecode"] == fresh["deployedBytecode"]


def test_previous_artifact_is_kept_with_its_source_hash() -> None:
    """The v1 contract's artifact is the gas benchmark's baseline: its source hash is pinned and
    its interface is the one encode_execute_v1 speaks."""
    from execution.calldata import EXECUTE_V1_SIGNATURE

    previous = build.load_artifact(build.PREVIOUS_ARTIFACT_PATH)
    assert previous["sourceSha256"] == build.PREVIOUS_SOURCE_SHA256
    assert previous["compiler"]["version"] == build.SOLC_VERSION
    functions = {_signature(e) for e in previous["abi"] if e["type"] == "function"}
    assert EXECUTE_V1_SIGNATURE in functions
    assert previous["deployedBytecode"] != build.load_artifact()["deployedBytecode"]


def test_compiler_is_pinned_and_clean(fresh: dict) -> None:
    assert fresh["compiler"]["fullVersion"].startswith(build.SOLC_VERSION + ".")
    assert fresh["settings"] == build.SETTINGS
    assert fresh["warnings"] == []
    assert len(fresh["deployedBytecode"]) // 2 - 1 < 24_576  # EIP-170


def test_check_mode_reports_a_stale_artifact(tmp_path, monkeypatch, fresh: dict) -> None:
    stale = dict(fresh, bytecode=fresh["bytecode"][:-2] + "00")
    path = tmp_path / "AlphaPulseArb.json"
    build.write_artifact(stale, path)
    monkeypatch.setattr(build, "ARTIFACT_PATH", path)
    monkeypatch.setattr(build, "compile_contract", lambda: fresh)
    assert build.main(["--check"]) == 1
    build.write_artifact(fresh, path)
    assert build.main(["--check"]) == 0


def _signature(entry: dict) -> str:
    def typ(p: dict) -> str:
        if p["type"].startswith("tuple"):
            return "(" + ",".join(typ(c) for c in p["components"]) + ")" + p["type"][5:]
        return p["type"]

    return f"{entry['name']}({','.join(typ(p) for p in entry['inputs'])})"


def test_calldata_interface_matches_the_compiled_abi() -> None:
    abi = build.load_artifact()["abi"]
    functions = {_signature(e) for e in abi if e["type"] == "function"}
    events = {_signature(e) for e in abi if e["type"] == "event"}
    errors = {_signature(e) for e in abi if e["type"] == "error"}
    assert EXECUTE_SIGNATURE in functions
    assert EXECUTE_INVENTORY_SIGNATURE in functions
    assert "ArbitrageExecuted(address,address,uint256,uint256)" in events
    assert set(ERROR_SIGNATURES) == errors
    for sig in ("setFactory(address,uint8,bytes32)", "setRecipient(address)", "pause()", "unpause()",
                "transferOwnership(address)", "acceptOwnership()", "withdrawToken(address,address,uint256)",
                "uniswapV2Call(address,uint256,uint256,bytes)", "uniswapV3SwapCallback(int256,int256,bytes)",
                "unlockCallback(bytes)"):
        assert sig in functions
    (event,) = [e for e in abi if e["type"] == "event" and e["name"] == "ArbitrageExecuted"]
    assert [i["indexed"] for i in event["inputs"]] == [True, True, False, False]


def _cycle() -> list[Hop]:
    return [
        Hop(pool=P1, factory=F, token_in=A, token_out=B, kind=Kind.V2, fee=3000, amount_in=10**18, amount_out=5),
        Hop(pool=P2, factory=F, token_in=B, token_out=C, kind=Kind.V3, fee=500),
        Hop(pool=P2, factory=F, token_in=C, token_out=A, kind=Kind.V2, fee=2500, amount_out=10**18 + 1),
    ]


def test_execute_calldata_round_trip() -> None:
    hops = _cycle()
    data = encode_execute(hops, 123)
    assert data[:4] == EXECUTE_SELECTOR
    got, min_profit = decode_execute(data)
    assert got == hops and min_profit == 123
    assert hops[0].zero_for_one and hops[1].zero_for_one and not hops[2].zero_for_one


def test_packed_path_layout_and_v4_hops() -> None:
    """The packed path: 33-byte header, 83 bytes per hop, the last token_out as a 20-byte trailer;
    a V4 hop carries its hooks, PoolManager and tick spacing."""
    from execution.calldata import PATH_HEADER, PATH_HOP, PATH_TRAILER, decode_path, encode_path

    pm, hooks = "0x" + "44" * 20, "0x" + "00" * 18 + "c0de"
    hops = [
        Hop(pool=hooks, factory=pm, token_in=A, token_out=B, kind=Kind.V4, fee=3000, tick_spacing=60,
            amount_in=(1 << 128) - 1, amount_out=7),
        Hop(pool=P2, factory=F, token_in=B, token_out=A, kind=Kind.V3, fee=500),
    ]
    path = encode_path(hops, 99)
    assert len(path) == PATH_HEADER + PATH_HOP * 2 + PATH_TRAILER
    assert path[:16] == ((1 << 128) - 1).to_bytes(16, "big") and path[16:32] == (99).to_bytes(16, "big")
    assert path[32] == 2 and path[-20:] == bytes.fromhex(A[2:])
    hop0 = path[PATH_HEADER:PATH_HEADER + PATH_HOP]
    assert (hop0[:20], hop0[20], hop0[21:24], hop0[24:27]) == (bytes.fromhex(A[2:]), 2, (3000).to_bytes(3, "big"),
                                                                (60).to_bytes(3, "big"))
    assert (hop0[27:47], hop0[47:67], hop0[67:]) == (bytes.fromhex(hooks[2:]), bytes.fromhex(pm[2:]),
                                                      (7).to_bytes(16, "big"))
    assert decode_path(path) == (hops, 99)
    with pytest.raises(ValueError, match="uint128"):
        encode_path([Hop(**{**_fields(hops[0]), "amount_in": 1 << 128}), hops[1]], 0)
    with pytest.raises(ValueError, match="uint128"):
        encode_path(hops, 1 << 128)
    with pytest.raises(ValueError, match="int24"):
        encode_path([Hop(**{**_fields(hops[0]), "tick_spacing": 1 << 23}), hops[1]], 0)
    with pytest.raises(ValueError, match="does not hold"):
        decode_path(path[:-1])
    with pytest.raises(ValueError, match="V4 hop has no v1"):
        hops[0].as_abi_tuple()


def test_execute_calldata_refuses_broken_paths() -> None:
    hops = _cycle()
    with pytest.raises(ValueError, match="at least 2 hops"):
        encode_execute(hops[:1], 0)
    with pytest.raises(ValueError, match="token_out"):
        encode_execute([hops[0], hops[2]], 0)
    with pytest.raises(ValueError, match="amount_in"):
        check_cycle([Hop(**{**_fields(hops[0]), "amount_in": 0}), *hops[1:]])
    with pytest.raises(ValueError, match="fee"):
        encode_execute([Hop(**{**_fields(hops[0]), "fee": 1_000_000}), *hops[1:]], 0)
    # check=False lets tests send what the contract must refuse
    assert decode_execute(encode_execute(hops[:1], 0, check=False))[0] == hops[:1]


def _fields(h: Hop) -> dict:
    return {f: getattr(h, f) for f in Hop.__dataclass_fields__}


def test_profit_event_decoding() -> None:
    arb = "0x" + "ab" * 20
    log = {
        "address": arb,
        "topics": ["0x" + ARBITRAGE_EXECUTED_TOPIC.hex(), "0x" + "00" * 12 + "11" * 20, "0x" + "00" * 12 + "22" * 20],
        "data": "0x" + (10**18).to_bytes(32, "big").hex() + (12345).to_bytes(32, "big").hex(),
        "logIndex": "0x3",
        "blockNumber": "0x10",
        "transactionHash": "0x" + "99" * 32,
    }
    other = dict(log, topics=["0x" + "00" * 32, *log["topics"][1:]])
    ev = decode_arbitrage_executed(log)
    assert ev is not None
    assert (ev.token.lower(), ev.recipient.lower(), ev.amount_in, ev.profit) == (A, B, 10**18, 12345)
    assert (ev.log_index, ev.block_number) == (3, 16)
    assert decode_arbitrage_executed(other) is None
    assert profit_from_logs([other, log], arb) == 12345
    assert profit_from_logs([log], "0x" + "cd" * 20) is None  # a look-alike from another contract
    assert decode_profit_events([log], None)[0].contract.lower() == arb
    with pytest.raises(ValueError):
        profit_from_logs([log, log], arb)


def test_error_decoding() -> None:
    from eth_abi import encode
    from eth_utils import function_signature_to_4byte_selector as sel

    data = sel("InsufficientProfit(uint256,uint256)") + encode(["uint256", "uint256"], [5, 6])
    err = decode_error("0x" + data.hex())
    assert err is not None and (err.name, err.args) == ("InsufficientProfit", (5, 6))
    assert str(err) == "InsufficientProfit(5, 6)"
    err = decode_error(sel("UnexpectedCallback(address)") + encode(["address"], [A]))
    assert err is not None and err.name == "UnexpectedCallback" and err.args[0].lower() == A
    assert decode_error(sel("Error(string)") + encode(["string"], ["UniswapV2: K"])).args == ("UniswapV2: K",)
    assert decode_error(b"") is None and decode_error(None) is None and decode_error(b"\x00\x01\x02\x03") is None
    assert decode(["uint256"], (7).to_bytes(32, "big")) == (7,)
