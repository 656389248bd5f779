"""chain.abi: signatures, selectors, call data and an Artifact's functions and events."""

from __future__ import annotations

import eth_abi
import pytest
from eth_utils import keccak

from chain.abi import Artifact, abi_type, encode_call, selector, signature_types

ERC20_ABI = (
    {"type": "constructor", "inputs": [{"name": "supply", "type": "uint256"}]},
    {"type": "function", "name": "transfer", "inputs": [{"name": "to", "type": "address"},
                                                        {"name": "value", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "swap", "inputs": [
        {"name": "hops", "type": "tuple[]", "components": [{"name": "pool", "type": "address"},
                                                           {"name": "fee", "type": "uint24"}]},
        {"name": "min", "type": "uint256"}], "outputs": []},
    {"type": "function", "name": "f", "inputs": [], "outputs": [{"name": "", "type": "uint8"}]},
    {"type": "function", "name": "f", "inputs": [{"name": "x", "type": "uint8"}], "outputs": []},
    {"type": "event", "name": "Transfer", "inputs": [
        {"name": "from", "type": "address", "indexed": True},
        {"name": "to", "type": "address", "indexed": True},
        {"name": "value", "type": "uint256", "indexed": False}]},
)
A = "0x" + "11" * 20
B = "0x" + "22" * 20


def test_signature_types_keep_tuples_whole() -> None:
    assert signature_types("f()") == ()
    assert signature_types("transfer(address,uint256)") == ("address", "uint256")
    assert signature_types("execute((address,uint24,uint256)[],uint256)") == ("(address,uint24,uint256)[]", "uint256")


def test_selector_and_encode_call() -> None:
    assert selector("transfer(address,uint256)").hex() == "a9059cbb"
    assert encode_call("transfer(address,uint256)", A, 5) == bytes.fromhex("a9059cbb") + eth_abi.encode(
        ["address", "uint256"], [A, 5])
    assert encode_call("pause()") == selector("pause()")


def test_artifact_functions_overloads_events_and_deploy_data() -> None:
    art = Artifact("Token", ERC20_ABI, b"\x60\x80", "test")
    t = art.fn("transfer")
    assert t.signature == "transfer(address,uint256)" and t.selector == selector(t.signature)
    assert art.encode("transfer", A, 7) == encode_call("transfer(address,uint256)", A, 7)
    assert t.decode(eth_abi.encode(["bool"], [True])) == (True,)
    assert art.fn("swap").input_types == ("(address,uint24)[]", "uint256")
    with pytest.raises(KeyError, match="2 matching"):
        art.fn("f")
    assert art.fn("f", 1).signature == "f(uint8)" and art.fn("f(uint8)").input_types == ("uint8",)
    with pytest.raises(KeyError):
        art.fn("g(uint8)")
    ev = art.event("Transfer")
    assert ev.topic == keccak(text="Transfer(address,address,uint256)")
    topics = [ev.topic, eth_abi.encode(["address"], [A]), eth_abi.encode(["address"], [B])]
    got = ev.decode(topics, eth_abi.encode(["uint256"], [9]))
    assert got == {"from": A, "to": B, "value": 9}
    assert art.deploy_data(3) == b"\x60\x80" + eth_abi.encode(["uint256"], [3])
    with pytest.raises(TypeError):
        art.deploy_data()
    assert art.init_code_hash == keccak(b"\x60\x80")
    assert abi_type({"type": "tuple[2]", "components": [{"type": "bool"}]}) == "(bool)[2]"
