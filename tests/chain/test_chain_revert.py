"""chain.revert: Error(string), Panic(uint256), custom errors, nested revert data."""

from __future__ import annotations

import eth_abi
from eth_utils import to_checksum_address

from chain.abi import selector
from chain.revert import ContractError, decode_error, decode_revert, error_table, revert_data
from chain.rpc import RpcError

A = "0x" + "ab" * 20
TABLE = error_table(["InsufficientProfit(uint256,uint256)", "NotOwner(address)", "Paused()"])


def test_builtin_errors() -> None:
    err = selector("Error(string)") + eth_abi.encode(["string"], ["UniswapV2: K"])
    assert decode_error(err) == ContractError("Error", ("UniswapV2: K",), selector("Error(string)"))
    assert decode_revert(err) == "UniswapV2: K" and decode_revert("0x" + err.hex()) == "UniswapV2: K"
    panic = selector("Panic(uint256)") + eth_abi.encode(["uint256"], [0x11])
    assert decode_revert(panic) == "Panic(0x11)"


def test_custom_errors_need_their_table() -> None:
    data = selector("InsufficientProfit(uint256,uint256)") + eth_abi.encode(["uint256", "uint256"], [1, 2])
    assert decode_error(data) is None and decode_revert(data) == "0x" + data.hex()
    assert str(decode_error(data, TABLE)) == "InsufficientProfit(1, 2)"
    assert decode_revert(data, TABLE) == "InsufficientProfit(1, 2)"
    owner = decode_error(selector("NotOwner(address)") + eth_abi.encode(["address"], [A]), TABLE)
    assert owner is not None and owner.args == (to_checksum_address(A),) and owner.args[0] != A  # checksummed
    assert decode_error(selector("Paused()"), TABLE) == ContractError("Paused", (), selector("Paused()"))
    # malformed arguments: the name only
    assert decode_error(selector("NotOwner(address)") + b"\x01", TABLE) == ContractError(
        "NotOwner", (), selector("NotOwner(address)"))


def test_empty_and_garbage() -> None:
    for nothing in (None, "", "0x", b""):
        assert decode_error(nothing) is None
        assert decode_revert(nothing) == "(no revert data)"
    assert decode_error(b"\x00\x01\x02") is None and decode_error("0xzz") is None
    assert decode_revert("0xzz") == "0xzz"


def test_revert_data_from_error_objects() -> None:
    assert revert_data(RpcError("eth_call", 3, "execution reverted", "0x1234")) == "0x1234"
    assert revert_data(RpcError("eth_call", -32000, "reverted", {"data": "0x99"})) == "0x99"
    assert revert_data(RpcError("eth_call", -32000, "reverted")) is None
