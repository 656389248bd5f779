"""execution/owner.py without a chain: the owner's call each rebalancer request names, built from the executor's
own configuration, and what it refuses. Serving requests on the two-chain devnet (signing with the executor's
one nonce sequence per chain, concurrently with trades) is in ``test_execution_xchain_devnet.py``."""

from __future__ import annotations

import pytest
from eth_abi import decode

from chain.abi import selector
from execution.owner import NotAllowed, owner_call, request_meta
from protocol.execution import OwnerCall, OwnerTxRequest

A, B = 31337, 31338
TOKEN = "0x" + "a1" * 20
OWNER = "0x" + "0e" * 20
ARB_A, ARB_B = "0x" + "aa" * 20, "0x" + "bb" * 20
BRIDGE_A = "0x" + "ba" * 20
CONTRACTS = {A: ARB_A, B: ARB_B}


def req(call: int, *, amount: int = 5_000_000, dst_chain: int = 0, request_id: int = 3) -> OwnerTxRequest:
    return OwnerTxRequest(request_id=request_id, chain_id=A, call=call, token=bytes.fromhex(TOKEN[2:]), amount=amount,
                          dst_chain=dst_chain)


def args(data: bytes, signature: str, types: list[str]) -> tuple:  # type: ignore[type-arg]
    assert data[:4] == selector(signature)
    return decode(types, data[4:])


def build(r: OwnerTxRequest, bridge: str = BRIDGE_A):  # type: ignore[no-untyped-def]
    return owner_call(r, owner=OWNER, contract=ARB_A, bridge=bridge, contracts=CONTRACTS)


def test_each_call_is_built_from_the_executor_s_configuration() -> None:
    """The request names a call, a token and an amount; where the tokens go is the executor's configuration:
    to the owner from the contract, to our bridge, to our contract on the other chain, back to our contract."""
    w = build(req(OwnerCall.WITHDRAW))
    assert w.to == ARB_A
    assert args(w.data, "withdrawToken(address,address,uint256)", ["address", "address", "uint256"]) == (
        TOKEN, OWNER, 5_000_000)
    a = build(req(OwnerCall.APPROVE))
    assert a.to.lower() == TOKEN and args(a.data, "approve(address,uint256)", ["address", "uint256"]) == (BRIDGE_A, 5_000_000)
    s = build(req(OwnerCall.BRIDGE_SEND, dst_chain=B))
    assert s.to == BRIDGE_A
    assert args(s.data, "send(address,uint256,uint256,address)", ["address", "uint256", "uint256", "address"]) == (
        TOKEN, 5_000_000, B, ARB_B)
    r = build(req(OwnerCall.RETURN))
    assert r.to.lower() == TOKEN and args(r.data, "transfer(address,uint256)", ["address", "uint256"]) == (ARB_A, 5_000_000)


@pytest.mark.parametrize(("r", "bridge", "why"), [
    (req(OwnerCall.BRIDGE_SEND, dst_chain=5), BRIDGE_A, "destination chain 5"),
    (req(OwnerCall.BRIDGE_SEND, dst_chain=A), BRIDGE_A, "destination chain 31337"),
    (req(OwnerCall.APPROVE), "", "no bridge"),
    (req(OwnerCall.BRIDGE_SEND, dst_chain=B), "", "no bridge"),
    (req(9), BRIDGE_A, "unknown call 9"),
    (req(OwnerCall.WITHDRAW, amount=0), BRIDGE_A, "positive"),
])
def test_what_the_configuration_does_not_allow_is_refused(r: OwnerTxRequest, bridge: str, why: str) -> None:
    with pytest.raises(NotAllowed, match=why):
        build(r, bridge)


def test_a_withdrawal_needs_no_bridge() -> None:
    assert build(req(OwnerCall.WITHDRAW), "").to == ARB_A


def test_the_store_meta_names_the_requester_and_the_request() -> None:
    """``ExecutorStore.owner_tx`` finds a request's transaction by this prefix: a request id that is another's
    prefix (3 and 31) must not match."""
    meta = request_meta(48, req(OwnerCall.APPROVE))
    assert meta.startswith('{"owner": [48, 3, 2], "request": "') and req(OwnerCall.APPROVE).encode().hex() in meta
    assert not request_meta(48, req(OwnerCall.APPROVE, request_id=31)).startswith('{"owner": [48, 3,')
