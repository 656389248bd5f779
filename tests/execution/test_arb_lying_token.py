"""A start token whose ``balanceOf`` lies (it reports more than the contract and the recipient hold)
cannot inflate the profit AlphaPulseArb reports: the profit is computed from the pools' amounts and
what is reported is at most what was sent, checked against the token's real books. The previous
contract (v1), which measured its own ``balanceOf`` before and after, reported the lie."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from arb_testkit import Arb, Chain, Market, abi_call
from eth_abi import encode
from eth_utils import to_checksum_address

from chain.solc import compile_source
from execution.build import PREVIOUS_ARTIFACT_PATH, SOLC_VERSION, load_artifact
from execution.calldata import (
    Hop,
    Kind,
    decode_profit_events,
    encode_constructor_args,
    encode_execute,
    encode_execute_v1,
    encode_set_factory,
)

BONUS = 10**24  # what the token claims a lied-about holder received on top, per transfer
SUPPLY = 10**30


def v2_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    with_fee = amount_in * 997
    return with_fee * reserve_out // (reserve_in * 1000 + with_fee)


@pytest.fixture
def liar(chain: Chain, market: Market, roles: dict[str, str]) -> Any:
    """LIE/USDC pairs on both V2 venues (LIE 2 % dearer on venue b), the LIE token lying about
    ``roles['recipient']``; yields (token, pair_a, pair_b). Reverted afterwards."""
    snap = chain.snapshot()
    art = compile_source("LyingToken.sol", (Path(__file__).parent / "LyingToken.sol").read_text(), "LyingToken",
                         version=SOLC_VERSION, settings={"optimizer": {"enabled": True, "runs": 200},
                                                         "evmVersion": "cancun"})
    lp = market.trader
    token = chain.deploy(lp, bytes.fromhex(art["bytecode"][2:]) + encode(["uint256", "uint256"], [SUPPLY, BONUS]))
    usdc = market.tokens["USDC"]
    pairs = []
    for venue, usdc_per_lie in (("uniswap_v2_a", 500_000), ("uniswap_v2_b", 510_000)):
        factory = market.v2_factories[venue]
        chain.send(lp, factory, abi_call("createPair(address,address)", token, usdc), gas=5_000_000)
        (pair,) = chain.call_decode(factory, "getPair(address,address)", ["address"], token, usdc)
        pair = to_checksum_address(pair)
        chain.send(lp, token, abi_call("transfer(address,uint256)", pair, 500_000 * 10**18))
        chain.send(lp, usdc, abi_call("transfer(address,uint256)", pair, usdc_per_lie * 10**6))
        chain.send(lp, pair, abi_call("mint(address)", lp), gas=500_000)
        pairs.append(pair)
    try:
        yield token, pairs[0], pairs[1]
    finally:
        chain.revert_to(snap)


def _cycle(chain: Chain, market: Market, token: str, pair_a: str, pair_b: str) -> tuple[list[Hop], int]:
    """LIE -b-> USDC -a-> LIE, 1,000 LIE in."""
    usdc = market.tokens["USDC"]

    def reserves(pair: str, token_in: str) -> tuple[int, int]:
        r0, r1 = chain.reserves(pair)
        return (r0, r1) if int(token_in, 16) < int(usdc if token_in == token else token, 16) else (r1, r0)

    x = 1_000 * 10**18
    mid = v2_out(x, *reserves(pair_b, token))
    back = v2_out(mid, *reserves(pair_a, usdc))
    hops = [
        Hop(pool=pair_b, factory=market.v2_factories["uniswap_v2_b"], token_in=token, token_out=usdc,
            kind=Kind.V2, fee=3000, amount_in=x),
        Hop(pool=pair_a, factory=market.v2_factories["uniswap_v2_a"], token_in=usdc, token_out=token,
            kind=Kind.V2, fee=3000),
    ]
    assert back > x
    return hops, back - x


def test_a_lying_balance_of_cannot_inflate_the_reported_profit(chain: Chain, market: Market, arb: Arb,
                                                               roles: dict[str, str], liar: Any) -> None:
    token, pair_a, pair_b = liar
    hops, profit = _cycle(chain, market, token, pair_a, pair_b)
    chain.send(arb.owner, token, abi_call("setLie(address,bool)", arb.recipient, True))
    chain.send(arb.owner, token, abi_call("setLie(address,bool)", arb.address, True))
    real_before = chain.call_decode(token, "realBalanceOf(address)", ["uint256"], arb.recipient)[0]
    receipt = chain.send(arb.owner, arb.address, encode_execute(hops, profit), gas=2_000_000)
    (ev,) = decode_profit_events(receipt["logs"], arb.address)
    real_after = chain.call_decode(token, "realBalanceOf(address)", ["uint256"], arb.recipient)[0]
    assert ev.profit == profit == real_after - real_before
    # the token's lie, for the record: the recipient "has" a bonus more than it holds
    assert chain.balance_of(token, arb.recipient) == real_after + BONUS
    # minProfit is checked against the real amount, not the lie
    err = chain.revert_error(arb.owner, arb.address, encode_execute(hops, profit + 1))
    assert err.name == "InsufficientProfit"


def test_the_previous_contract_reported_the_lie(chain: Chain, market: Market, roles: dict[str, str],
                                                liar: Any) -> None:
    """The baseline, so the test above is known to test something: v1 measured its own balanceOf."""
    token, pair_a, pair_b = liar
    hops, profit = _cycle(chain, market, token, pair_a, pair_b)
    owner, recipient = roles["owner"], roles["recipient"]
    art = load_artifact(PREVIOUS_ARTIFACT_PATH)
    v1 = chain.deploy(owner, bytes.fromhex(art["bytecode"][2:]) + encode_constructor_args(recipient))
    for factory in market.v2_factories.values():
        chain.send(owner, v1, encode_set_factory(factory, Kind.V2))
    chain.send(owner, token, abi_call("setLie(address,bool)", v1, True))
    receipt = chain.send(owner, v1, encode_execute_v1(hops, 0), gas=2_000_000, check=False)
    events = decode_profit_events(receipt["logs"], v1)
    # v1 either reports the lie as profit or cannot pay it out; it never reports the real profit
    assert receipt["status"] == 0 or events[0].profit > profit
    assert load_artifact()["deployedBytecode"] != art["deployedBytecode"]
