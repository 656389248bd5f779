"""AlphaPulseArb against a real anvil devnet with the official Uniswap V2/V3 bytecode.

Every cycle starts from a zero balance (flash liquidity only) and its profit is checked to the
wei against an off-chain computation: the 997/1000 formula on the pairs' reserves for V2 hops,
a QuoterV2 ``eth_call`` for V3 hops (the V3 pools a cycle touches are not moved by its other hops,
so quoting them up front is exact).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from arb_testkit import FAR_FUTURE, MAX_UINT256, Arb, Chain, Market, abi_call
from eth_utils import to_checksum_address

from chain.addresses import UNISWAP_V2_INIT_CODE_HASH, UNISWAP_V3_INIT_CODE_HASH
from chain.solc import compile_source
from execution.build import SOLC_VERSION
from execution.calldata import (
    FlashSource,
    Hop,
    Kind,
    compute_pool_address,
    decode_profit_events,
    encode_execute,
    encode_execute_inventory,
    encode_pause,
    encode_set_factory,
    encode_set_recipient,
    encode_unpause,
    encode_withdraw_token,
    profit_from_logs,
)

GAS_REPORT: dict[str, int] = {}
# Always an explicit gas limit for execute(): anvil's eth_estimateGas simulates in the previous
# block's second, so it misses the pools' oracle writes when the transaction lands in a new second
# and comes out short (a flaky out-of-gas revert).
EXECUTE_GAS = 2_000_000


@pytest.fixture(autouse=True)
def _isolated(chain: Chain, arb: Arb) -> Iterator[None]:
    with chain.isolated():
        yield


# -- off-chain exact math -------------------------------------------------------------------------
def v2_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """UniswapV2Library.getAmountOut, the 997/1000 formula."""
    amount_in_with_fee = amount_in * 997
    return amount_in_with_fee * reserve_out // (reserve_in * 1000 + amount_in_with_fee)


def reserves_in_out(chain: Chain, pair: str, token_in: str, token_out: str) -> tuple[int, int]:
    r0, r1 = chain.reserves(pair)
    return (r0, r1) if int(token_in, 16) < int(token_out, 16) else (r1, r0)


def quote_v3(chain: Chain, market: Market, token_in: str, token_out: str, fee: int, amount_in: int) -> int:
    """QuoterV2.quoteExactInputSingle via eth_call (it is not a view function)."""
    data = abi_call(
        "quoteExactInputSingle((address,address,uint256,uint24,uint160))", (token_in, token_out, amount_in, fee, 0)
    )
    from eth_abi import decode

    out, _sqrt_after, _ticks, _gas = decode(["uint256", "uint160", "uint32", "uint256"], chain.call(market.quoter_v2, data))
    return int(out)


def best_input(profit: Callable[[int], int], lo: int, hi: int) -> int:
    """Integer ternary search for the most profitable input (the profit is unimodal)."""
    while hi - lo > 2:
        m1 = lo + (hi - lo) // 3
        m2 = hi - (hi - lo) // 3
        if profit(m1) < profit(m2):
            lo = m1
        else:
            hi = m2
    return max(range(lo, hi + 1), key=profit)


# -- scenario helpers -----------------------------------------------------------------------------
def dump_weth_on_venue_a(chain: Chain, market: Market, weth: int = 60 * 10**18) -> None:
    """The price discrepancy: a large WETH sale on venue A's WETH/USDC pair makes WETH cheap there."""
    t = market.tokens
    router = market.v2_routers["uniswap_v2_a"]
    chain.send(market.trader, t["WETH"], abi_call("approve(address,uint256)", router, MAX_UINT256))
    chain.send(
        market.trader,
        router,
        abi_call(
            "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
            weth, 0, [t["WETH"], t["USDC"]], market.trader, FAR_FUTURE,
        ),
        gas=500_000,  # explicit, like every swap here: an estimate can miss the pair's oracle writes
    )


def v2_hop(market: Market, venue: str, token_in: str, token_out: str, amount_in: int = 0, amount_out: int = 0) -> Hop:
    t = market.tokens
    return Hop(
        pool=market.v2_pairs[(venue, token_in, token_out)],
        factory=market.v2_factories[venue],
        token_in=t[token_in],
        token_out=t[token_out],
        kind=Kind.V2,
        fee=3000,
        amount_in=amount_in,
        amount_out=amount_out,
    )


def v3_hop(market: Market, fee: int, token_in: str, token_out: str, amount_in: int = 0, amount_out: int = 0) -> Hop:
    t = market.tokens
    return Hop(
        pool=market.v3_pools[(token_in, token_out, fee)],
        factory=market.v3_factory,
        token_in=t[token_in],
        token_out=t[token_out],
        kind=Kind.V3,
        fee=fee,
        amount_in=amount_in,
        amount_out=amount_out,
    )


def run_cycle(chain: Chain, market: Market, arb: Arb, hops: list[Hop], predicted: int, label: str,
              flash: FlashSource = FlashSource.POOL) -> dict:
    """Execute ``hops`` with minProfit = the prediction (the pools lend, or ``flash`` names the
    lender); check every place the profit shows up."""
    start = hops[0].token_in
    tokens = {h.token_in for h in hops}
    assert all(chain.balance_of(tok, arb.address) == 0 for tok in tokens), "the arb must start with nothing"
    recipient_before = chain.balance_of(start, arb.recipient)
    data = encode_execute(hops, predicted, flash=flash)

    simulated = int.from_bytes(chain.call(arb.address, data, sender=arb.owner), "big")
    assert simulated == predicted

    # Mainnet-like oracle state: a live pair's cumulative prices are non-zero, a fresh devnet pair's
    # may still be zero (writing those would add ~17k per slot once). sync() in a later second sets them.
    for hop in hops:
        if hop.kind == Kind.V2:
            latest = chain.rpc("eth_getBlockByNumber", "latest", False)
            chain.rpc("evm_setNextBlockTimestamp", int(latest["timestamp"], 16) + 12)
            chain.send(arb.owner, hop.pool, abi_call("sync()"), gas=200_000)
    # Mine it 12 s after the previous block, as on mainnet: every pool then writes its price oracle
    # (V2 cumulative prices, a V3 observation), the worst case, and the gas figure is reproducible.
    # That is also why the gas limit is explicit: anvil's eth_estimateGas simulates in the previous
    # block's second, skips those writes and comes out ~10k below the minimum working limit.
    latest = chain.rpc("eth_getBlockByNumber", "latest", False)
    chain.rpc("evm_setNextBlockTimestamp", int(latest["timestamp"], 16) + 12)
    receipt = chain.send(arb.owner, arb.address, data, gas=EXECUTE_GAS)
    GAS_REPORT[label] = receipt["gasUsed"]
    print(f"\nGAS {label}: {receipt['gasUsed']} (profit {predicted})")

    events = decode_profit_events(receipt["logs"], arb.address)
    assert len(events) == 1
    ev = events[0]
    assert (ev.token, ev.recipient, ev.amount_in, ev.profit) == (start, arb.recipient, hops[0].amount_in, predicted)
    assert profit_from_logs(receipt["logs"], arb.address) == predicted
    assert chain.balance_of(start, arb.recipient) - recipient_before == predicted
    assert all(chain.balance_of(tok, arb.address) == 0 for tok in tokens), "nothing may stay in the contract"
    return receipt


# -- the cycles -------------------------------------------------------------------------------------
def test_v2_to_v2_cycle_profit_matches_the_997_formula_to_the_wei(chain: Chain, market: Market, arb: Arb) -> None:
    dump_weth_on_venue_a(chain, market)
    t = market.tokens
    a_in, a_out = reserves_in_out(chain, market.v2_pairs[("uniswap_v2_a", "USDC", "WETH")], t["USDC"], t["WETH"])
    b_in, b_out = reserves_in_out(chain, market.v2_pairs[("uniswap_v2_b", "WETH", "USDC")], t["WETH"], t["USDC"])

    def profit(x: int) -> int:
        return v2_out(v2_out(x, a_in, a_out), b_in, b_out) - x

    x = best_input(profit, 1, 200_000 * 10**6)
    weth = v2_out(x, a_in, a_out)
    usdc = v2_out(weth, b_in, b_out)
    predicted = usdc - x
    assert predicted > 1_000 * 10**6  # the dump left > 1000 USDC on the table
    hops = [
        v2_hop(market, "uniswap_v2_a", "USDC", "WETH", amount_in=x, amount_out=weth),
        v2_hop(market, "uniswap_v2_b", "WETH", "USDC", amount_in=weth, amount_out=usdc),
    ]
    receipt = run_cycle(chain, market, arb, hops, predicted, "V2->V2 (2 hops)")
    assert receipt["gasUsed"] < 300_000  # ~230k here; +34k if the oracle slots are still zero
    # The pairs moved exactly as computed.
    assert reserves_in_out(chain, hops[0].pool, t["USDC"], t["WETH"]) == (a_in + x, a_out - weth)
    assert reserves_in_out(chain, hops[1].pool, t["WETH"], t["USDC"]) == (b_in + weth, b_out - usdc)


def test_v2_to_v3_cycle_profit_matches_quoter_to_the_wei(chain: Chain, market: Market, arb: Arb) -> None:
    dump_weth_on_venue_a(chain, market)
    t = market.tokens
    a_in, a_out = reserves_in_out(chain, market.v2_pairs[("uniswap_v2_a", "USDC", "WETH")], t["USDC"], t["WETH"])

    def profit(x: int) -> int:
        return quote_v3(chain, market, t["WETH"], t["USDC"], 3000, v2_out(x, a_in, a_out)) - x

    x = best_input(profit, 10**6, 200_000 * 10**6)
    weth = v2_out(x, a_in, a_out)
    usdc = quote_v3(chain, market, t["WETH"], t["USDC"], 3000, weth)
    predicted = usdc - x
    assert predicted > 0
    hops = [
        v2_hop(market, "uniswap_v2_a", "USDC", "WETH", amount_in=x, amount_out=weth),
        v3_hop(market, 3000, "WETH", "USDC", amount_in=weth, amount_out=usdc),
    ]
    receipt = run_cycle(chain, market, arb, hops, predicted, "V2->V3 (2 hops)")
    assert receipt["gasUsed"] < 300_000  # ~230k here; +34k if the oracle slots are still zero


def test_v3_first_hop_flash_then_v2(chain: Chain, market: Market, arb: Arb) -> None:
    """The V3 pool lends first (its callback runs the path); its output goes straight to the V2 pair."""
    dump_weth_on_venue_a(chain, market)
    t = market.tokens
    a_in, a_out = reserves_in_out(chain, market.v2_pairs[("uniswap_v2_a", "USDC", "WETH")], t["USDC"], t["WETH"])

    def profit(x: int) -> int:
        return v2_out(quote_v3(chain, market, t["WETH"], t["USDC"], 3000, x), a_in, a_out) - x

    x = best_input(profit, 10**15, 100 * 10**18)
    usdc = quote_v3(chain, market, t["WETH"], t["USDC"], 3000, x)
    weth = v2_out(usdc, a_in, a_out)
    predicted = weth - x
    assert predicted > 0
    hops = [
        v3_hop(market, 3000, "WETH", "USDC", amount_in=x, amount_out=usdc),
        v2_hop(market, "uniswap_v2_a", "USDC", "WETH", amount_in=usdc, amount_out=weth),
    ]
    run_cycle(chain, market, arb, hops, predicted, "V3->V2 (2 hops)")


def test_three_hop_triangle_v2_v2_v3(chain: Chain, market: Market, arb: Arb) -> None:
    """USDC -A-> WETH -B-> DAI -V3-> USDC: a V2 hop delivered straight into the next pair, and a
    nested V3 swap paid from its own callback inside the first pair's flash callback."""
    dump_weth_on_venue_a(chain, market)
    t = market.tokens
    a_in, a_out = reserves_in_out(chain, market.v2_pairs[("uniswap_v2_a", "USDC", "WETH")], t["USDC"], t["WETH"])
    b_in, b_out = reserves_in_out(chain, market.v2_pairs[("uniswap_v2_b", "WETH", "DAI")], t["WETH"], t["DAI"])

    def profit(x: int) -> int:
        dai = v2_out(v2_out(x, a_in, a_out), b_in, b_out)
        return quote_v3(chain, market, t["DAI"], t["USDC"], 500, dai) - x

    x = best_input(profit, 10**6, 200_000 * 10**6)
    weth = v2_out(x, a_in, a_out)
    dai = v2_out(weth, b_in, b_out)
    usdc = quote_v3(chain, market, t["DAI"], t["USDC"], 500, dai)
    predicted = usdc - x
    assert predicted > 0
    hops = [
        v2_hop(market, "uniswap_v2_a", "USDC", "WETH", amount_in=x, amount_out=weth),
        v2_hop(market, "uniswap_v2_b", "WETH", "DAI", amount_out=dai),
        v3_hop(market, 500, "DAI", "USDC", amount_out=usdc),
    ]
    run_cycle(chain, market, arb, hops, predicted, "V2->V2->V3 (3 hops)")


def test_three_hops_with_v3_in_the_middle_runs_forward(chain: Chain, market: Market, arb: Arb) -> None:
    """USDC -A-> WETH -V3 0.05 %-> DAI -b-> USDC: the first pair lends (FORWARD: a V3 hop that is not
    the last), the V3 pool is paid in its own callback and sends its output straight into pair b."""
    dump_weth_on_venue_a(chain, market)
    t = market.tokens
    a_in, a_out = reserves_in_out(chain, market.v2_pairs[("uniswap_v2_a", "USDC", "WETH")], t["USDC"], t["WETH"])
    b_in, b_out = reserves_in_out(chain, market.v2_pairs[("uniswap_v2_b", "DAI", "USDC")], t["DAI"], t["USDC"])

    def profit(x: int) -> int:
        return v2_out(quote_v3(chain, market, t["WETH"], t["DAI"], 500, v2_out(x, a_in, a_out)), b_in, b_out) - x

    x = best_input(profit, 10**6, 100_000 * 10**6)
    weth = v2_out(x, a_in, a_out)
    dai = quote_v3(chain, market, t["WETH"], t["DAI"], 500, weth)
    usdc = v2_out(dai, b_in, b_out)
    assert usdc - x > 0
    hops = [
        v2_hop(market, "uniswap_v2_a", "USDC", "WETH", amount_in=x, amount_out=weth),
        v3_hop(market, 500, "WETH", "DAI", amount_out=dai),
        v2_hop(market, "uniswap_v2_b", "DAI", "USDC", amount_out=usdc),
    ]
    run_cycle(chain, market, arb, hops, usdc - x, "V2->V3->V2 (3 hops)")


# -- profit guard, access control, pause --------------------------------------------------------
def _v2v2_cycle(chain: Chain, market: Market) -> tuple[list[Hop], int]:
    dump_weth_on_venue_a(chain, market)
    t = market.tokens
    a_in, a_out = reserves_in_out(chain, market.v2_pairs[("uniswap_v2_a", "USDC", "WETH")], t["USDC"], t["WETH"])
    b_in, b_out = reserves_in_out(chain, market.v2_pairs[("uniswap_v2_b", "WETH", "USDC")], t["WETH"], t["USDC"])
    x = 50_000 * 10**6
    weth = v2_out(x, a_in, a_out)
    profit = v2_out(weth, b_in, b_out) - x
    assert profit > 0
    return [
        v2_hop(market, "uniswap_v2_a", "USDC", "WETH", amount_in=x),
        v2_hop(market, "uniswap_v2_b", "WETH", "USDC"),
    ], profit


def test_min_profit_above_the_real_profit_reverts(chain: Chain, market: Market, arb: Arb) -> None:
    hops, profit = _v2v2_cycle(chain, market)
    usdc = market.tokens["USDC"]
    err = chain.revert_error(arb.owner, arb.address, encode_execute(hops, profit + 1))
    assert (err.name, err.args) == ("InsufficientProfit", (profit, profit + 1))
    # Mined with a fixed gas limit: the transaction fails and nothing moves.
    before = chain.balance_of(usdc, arb.recipient)
    receipt = chain.send(arb.owner, arb.address, encode_execute(hops, profit + 1), gas=1_000_000, check=False)
    assert receipt["status"] == 0
    assert decode_profit_events(receipt["logs"], arb.address) == []
    assert chain.balance_of(usdc, arb.recipient) == before
    # Exactly the real profit is accepted.
    receipt = chain.send(arb.owner, arb.address, encode_execute(hops, profit), gas=EXECUTE_GAS)
    assert profit_from_logs(receipt["logs"], arb.address) == profit


def test_unprofitable_cycle_reverts_before_touching_balances(chain: Chain, market: Market, arb: Arb) -> None:
    hops, _ = _v2v2_cycle(chain, market)
    backwards = [  # buy WETH where it is expensive, sell where it is cheap
        v2_hop(market, "uniswap_v2_b", "USDC", "WETH", amount_in=10_000 * 10**6),
        v2_hop(market, "uniswap_v2_a", "WETH", "USDC"),
    ]
    err = chain.revert_error(arb.owner, arb.address, encode_execute(backwards, 0))
    assert err.name == "InsufficientReturn"
    returned, owed = err.args
    assert returned < owed == 10_000 * 10**6


def test_per_hop_minimum_output_is_enforced(chain: Chain, market: Market, arb: Arb) -> None:
    hops, _ = _v2v2_cycle(chain, market)
    t = market.tokens
    a_in, a_out = reserves_in_out(chain, hops[0].pool, t["USDC"], t["WETH"])
    weth = v2_out(hops[0].amount_in, a_in, a_out)
    too_greedy = [Hop(**{**_fields(hops[0]), "amount_out": weth + 1}), hops[1]]
    err = chain.revert_error(arb.owner, arb.address, encode_execute(too_greedy, 0))
    assert (err.name, err.args) == ("InsufficientOutput", (0, weth, weth + 1))


def test_v2_fee_parameter_drives_the_formula(chain: Chain, market: Market, arb: Arb) -> None:
    """``fee`` (pips) is the pair's LP fee: claiming less than the pair charges asks for too much
    (the pair's K check refuses), claiming more leaves the difference in the pair."""
    hops, _ = _v2v2_cycle(chain, market)
    t = market.tokens
    cheap = [Hop(**{**_fields(hops[0]), "fee": 2500}), hops[1]]  # PancakeSwap's 9975/10000
    err = chain.revert_error(arb.owner, arb.address, encode_execute(cheap, 0))
    assert (err.name, err.args) == ("Error", ("UniswapV2: K",))
    a_in, a_out = reserves_in_out(chain, hops[0].pool, t["USDC"], t["WETH"])
    b_in, b_out = reserves_in_out(chain, hops[1].pool, t["WETH"], t["USDC"])
    x = hops[0].amount_in

    def out(amount: int, r_in: int, r_out: int, fee_ppm: int) -> int:
        with_fee = amount * (1_000_000 - fee_ppm)
        return with_fee * r_out // (r_in * 1_000_000 + with_fee)

    predicted = out(out(x, a_in, a_out, 3500), b_in, b_out, 3000) - x
    dear = [Hop(**{**_fields(hops[0]), "fee": 3500}), hops[1]]
    receipt = chain.send(arb.owner, arb.address, encode_execute(dear, predicted), gas=EXECUTE_GAS)
    assert profit_from_logs(receipt["logs"], arb.address) == predicted


def test_a_v2_cycle_from_inventory_pays_the_same_profit_with_less_gas(chain: Chain, market: Market, arb: Arb,
                                                                      roles: dict[str, str]) -> None:
    """INVENTORY (executeFromInventory): the contract pays the first pair from the start token it
    holds, no pool lends and none calls back. Same profit to the wei as the flash cycle from the same
    state, the inventory is back to what it was, and it costs less gas (no lender's callback)."""
    hops, profit = _v2v2_cycle(chain, market)
    usdc = market.tokens["USDC"]
    x = hops[0].amount_in
    chain.send(market.trader, usdc, abi_call("transfer(address,uint256)", arb.address, x))
    for hop in hops:  # live pairs (non-zero cumulative prices), mined in a new second: both runs alike
        chain.send(arb.owner, hop.pool, abi_call("sync()"), gas=200_000)
    state = chain.snapshot()
    chain.rpc("evm_increaseTime", 12)
    flash = chain.send(arb.owner, arb.address, encode_execute(hops, profit), gas=EXECUTE_GAS)
    chain.revert_to(state)
    before = chain.balance_of(usdc, arb.recipient)
    chain.rpc("evm_increaseTime", 12)
    receipt = chain.send(arb.owner, arb.address, encode_execute_inventory(hops, profit), gas=EXECUTE_GAS)
    (ev,) = decode_profit_events(receipt["logs"], arb.address)
    assert (ev.token, ev.recipient, ev.amount_in, ev.profit) == (usdc, arb.recipient, x, profit)
    assert chain.balance_of(usdc, arb.recipient) - before == profit
    assert chain.balance_of(usdc, arb.address) == x
    assert profit_from_logs(flash["logs"], arb.address) == profit
    assert receipt["gasUsed"] < flash["gasUsed"], (receipt["gasUsed"], flash["gasUsed"])
    print(f"\nGAS V2->V2 from inventory: {receipt['gasUsed']} (the same cycle flash-lent: {flash['gasUsed']})")


def test_the_inventory_mode_keeps_the_checks(chain: Chain, market: Market, arb: Arb, roles: dict[str, str]) -> None:
    hops, profit = _v2v2_cycle(chain, market)
    usdc = market.tokens["USDC"]
    x = hops[0].amount_in
    stranger = roles["stranger"]

    def err_of(sender: str, data: bytes) -> tuple:
        e = chain.revert_error(sender, arb.address, data)
        return (e.name, e.args)

    # Without the inventory the first transfer fails; nothing moves.
    assert err_of(arb.owner, encode_execute_inventory(hops, 0)) == ("TransferFailed", (usdc, hops[0].pool, x))
    chain.send(market.trader, usdc, abi_call("transfer(address,uint256)", arb.address, x))
    assert err_of(stranger, encode_execute_inventory(hops, 0)) == ("NotOwner", (stranger,))
    assert err_of(arb.owner, encode_execute_inventory(hops, profit + 1)) == ("InsufficientProfit", (profit, profit + 1))
    fake = Hop(**{**_fields(hops[1]), "pool": market.v2_pairs[("uniswap_v2_a", "WETH", "USDC")]})
    assert err_of(arb.owner, encode_execute_inventory([hops[0], fake], 0))[0] == "PoolNotGenuine"
    v3 = [hops[0], v3_hop(market, 3000, "WETH", "USDC")]  # V2 hops only
    assert err_of(arb.owner, encode_execute_inventory(v3, 0, check=False)) == ("MalformedPath", ())
    with pytest.raises(ValueError, match="V2 hops only"):
        encode_execute_inventory(v3, 0)
    chain.send(arb.owner, arb.address, encode_pause())
    assert err_of(arb.owner, encode_execute_inventory(hops, 0)) == ("EnforcedPause", ())
    chain.send(arb.owner, arb.address, encode_unpause())
    receipt = chain.send(arb.owner, arb.address, encode_execute_inventory(hops, profit), gas=EXECUTE_GAS)
    assert profit_from_logs(receipt["logs"], arb.address) == profit


def _fields(h: Hop) -> dict:
    return {f: getattr(h, f) for f in Hop.__dataclass_fields__}


def test_only_the_owner_can_execute_and_administer(chain: Chain, market: Market, arb: Arb,
                                                   roles: dict[str, str]) -> None:
    hops, profit = _v2v2_cycle(chain, market)
    stranger = roles["stranger"]
    for data in (
        encode_execute(hops, 0),
        encode_pause(),
        encode_set_recipient(stranger),
        encode_set_factory(market.v2_factories["uniswap_v2_a"], Kind.V2, bytes(32)),
        encode_withdraw_token(market.tokens["USDC"], stranger, 1),
        abi_call("transferOwnership(address)", stranger),
    ):
        err = chain.revert_error(stranger, arb.address, data)
        assert (err.name, err.args) == ("NotOwner", (stranger,))
    receipt = chain.send(stranger, arb.address, encode_execute(hops, 0), gas=1_000_000, check=False)
    assert receipt["status"] == 0
    # The owner's recipient change redirects the profit.
    chain.send(arb.owner, arb.address, encode_set_recipient(stranger))
    receipt = chain.send(arb.owner, arb.address, encode_execute(hops, profit), gas=EXECUTE_GAS)
    (ev,) = decode_profit_events(receipt["logs"], arb.address)
    assert ev.recipient == stranger
    assert chain.balance_of(market.tokens["USDC"], stranger) == profit


def test_two_step_ownership_transfer(chain: Chain, market: Market, arb: Arb, roles: dict[str, str]) -> None:
    new = roles["stranger"]
    chain.send(arb.owner, arb.address, abi_call("transferOwnership(address)", new))
    err = chain.revert_error(roles["attacker"], arb.address, abi_call("acceptOwnership()"))
    assert err.name == "NotPendingOwner"
    assert chain.call_decode(arb.address, "owner()", ["address"])[0].lower() == arb.owner.lower()
    chain.send(new, arb.address, abi_call("acceptOwnership()"))
    assert chain.call_decode(arb.address, "owner()", ["address"])[0].lower() == new.lower()
    assert chain.revert_error(arb.owner, arb.address, encode_pause()).name == "NotOwner"


def test_profits_follow_an_ownership_handover(chain: Chain, market: Market, arb: Arb, roles: dict[str, str]) -> None:
    """After a handover the profits go to the new owner (the recipient resets to it), never to the
    previous owner's recipient; the new owner may then choose another recipient."""
    hops, profit = _v2v2_cycle(chain, market)
    usdc = market.tokens["USDC"]
    new = roles["stranger"]
    chain.send(arb.owner, arb.address, abi_call("transferOwnership(address)", new))
    assert chain.call_decode(arb.address, "recipient()", ["address"])[0].lower() == arb.recipient.lower()
    chain.send(new, arb.address, abi_call("acceptOwnership()"))
    assert chain.call_decode(arb.address, "recipient()", ["address"])[0].lower() == new.lower()
    old_recipient_before = chain.balance_of(usdc, arb.recipient)
    assert chain.revert_error(arb.owner, arb.address, encode_execute(hops, 0)).name == "NotOwner"
    receipt = chain.send(new, arb.address, encode_execute(hops, profit), gas=EXECUTE_GAS)
    (ev,) = decode_profit_events(receipt["logs"], arb.address)
    assert (ev.recipient, ev.profit) == (new, profit)
    assert chain.balance_of(usdc, new) == profit
    assert chain.balance_of(usdc, arb.recipient) == old_recipient_before


def test_paused_execute_reverts_until_unpaused(chain: Chain, market: Market, arb: Arb) -> None:
    hops, profit = _v2v2_cycle(chain, market)
    chain.send(arb.owner, arb.address, encode_pause())
    assert chain.call_decode(arb.address, "paused()", ["bool"]) == (True,)
    assert chain.revert_error(arb.owner, arb.address, encode_execute(hops, 0)).name == "EnforcedPause"
    assert chain.revert_error(arb.owner, arb.address, encode_pause()).name == "EnforcedPause"
    chain.send(arb.owner, arb.address, encode_unpause())
    assert chain.revert_error(arb.owner, arb.address, encode_unpause()).name == "ExpectedPause"
    receipt = chain.send(arb.owner, arb.address, encode_execute(hops, profit), gas=EXECUTE_GAS)
    assert profit_from_logs(receipt["logs"], arb.address) == profit


# -- path validation ------------------------------------------------------------------------------
def test_path_validation_errors(chain: Chain, market: Market, arb: Arb, fake_pool: str) -> None:
    hops, _ = _v2v2_cycle(chain, market)
    h0, h1 = hops

    def err_of(path: list[Hop]) -> tuple:
        e = chain.revert_error(arb.owner, arb.address, encode_execute(path, 0, check=False))
        return (e.name, e.args)

    assert err_of([h0]) == ("PathTooShort", (1,))
    assert err_of([h0, Hop(**{**_fields(h1), "token_out": market.tokens["DAI"]})])[0] == "BrokenPath"
    assert err_of([Hop(**{**_fields(h0), "amount_in": 0}), h1]) == ("ZeroAmountIn", ())
    assert err_of([h0, Hop(**{**_fields(h1), "fee": 1_000_000})]) == ("InvalidFee", (1, 1_000_000))
    # A pool that is not the CREATE2 address of (factory, tokens): e.g. a fake contract.
    assert err_of([h0, Hop(**{**_fields(h1), "pool": fake_pool})]) == ("PoolNotGenuine", (1, fake_pool, h1.pool))
    # The V3 factory is not allow-listed for V2 pairs; a V3 hop with the wrong fee tier is not genuine.
    assert err_of([Hop(**{**_fields(h0), "factory": market.v3_factory}), h1]) == (
        "FactoryNotAllowed", (0, market.v3_factory, 0))
    v3 = v3_hop(market, 3000, "WETH", "USDC")
    name, args = err_of([h0, Hop(**{**_fields(v3), "fee": 500})])
    assert (name, args[:2]) == ("PoolNotGenuine", (1, v3.pool))
    # Removing a venue from the allow-list stops it.
    chain.send(arb.owner, arb.address, encode_set_factory(h1.factory, Kind.V2, bytes(32)))
    assert err_of(hops) == ("FactoryNotAllowed", (1, h1.factory, 0))


def test_the_allow_list_survives_growth_replacement_and_removal(chain: Chain, market: Market, arb: Arb,
                                                                 arb_devnet_deployment: Any) -> None:
    """The allow-list is a hash table in the code of a data contract the setters redeploy: random
    keys share buckets and the table is rebuilt as it grows, yet every entry reads back, a replaced
    entry has its new hash, a removed one reads zero while the others stay, the owner and recipient
    survive every rewrite, and a cycle still runs with a full table. Past 127 entries the table
    would not fit in one contract's code: AllowListFull, and nothing changes."""
    rng = random.Random(16)

    def hash_of(factory: str, kind: Kind) -> bytes:
        return bytes(chain.call_decode(arb.address, "initCodeHashOf(address,uint8)", ["bytes32"], factory,
                                       int(kind))[0])

    ours = {(f, Kind.V2): UNISWAP_V2_INIT_CODE_HASH for f in market.v2_factories.values()}
    ours[(market.v3_factory, Kind.V3)] = UNISWAP_V3_INIT_CODE_HASH
    existing = len(ours) + (arb_devnet_deployment.v4 is not None)
    added: dict[tuple[str, Kind], bytes] = {}
    factories = [to_checksum_address(rng.randbytes(20).hex()) for _ in range(60)]
    while existing + len(added) < 127:
        key = (rng.choice(factories), rng.choice(list(Kind)))
        if key in added:
            continue
        added[key] = rng.randbytes(32)
        chain.send(arb.owner, arb.address, encode_set_factory(key[0], key[1], added[key]), gas=10_000_000)
    replaced, removed = list(added)[:2]
    added[replaced] = rng.randbytes(32)
    chain.send(arb.owner, arb.address, encode_set_factory(replaced[0], replaced[1], added[replaced]), gas=10_000_000)
    chain.send(arb.owner, arb.address, encode_set_factory(removed[0], removed[1], bytes(32)), gas=10_000_000)
    assert hash_of(*removed) == bytes(32)
    del added[removed]
    chain.send(arb.owner, arb.address, encode_set_factory(removed[0], removed[1], b"\x01" * 32), gas=10_000_000)
    added[removed] = b"\x01" * 32
    for key, value in {**ours, **added}.items():
        assert hash_of(*key) == value, key
    assert hash_of(factories[0], Kind.V4) == added.get((factories[0], Kind.V4), bytes(32))
    assert chain.call_decode(arb.address, "owner()", ["address"])[0].lower() == arb.owner.lower()
    assert chain.call_decode(arb.address, "recipient()", ["address"])[0].lower() == arb.recipient.lower()
    full = to_checksum_address(rng.randbytes(20).hex())
    err = chain.revert_error(arb.owner, arb.address, encode_set_factory(full, Kind.V2))
    assert (err.name, err.args) == ("AllowListFull", (128,))
    hops, profit = _v2v2_cycle(chain, market)
    receipt = chain.send(arb.owner, arb.address, encode_execute(hops, profit), gas=EXECUTE_GAS)
    assert profit_from_logs(receipt["logs"], arb.address) == profit


def test_init_code_hashes_match_the_devnet_pools(chain: Chain, market: Market, arb: Arb) -> None:
    """The official init-code hashes reproduce every deployed pair/pool address - in Python, in
    the contract (``poolAddress``), and according to the factories themselves."""
    assert chain.call_decode(arb.address, "UNISWAP_V2_INIT_CODE_HASH()", ["bytes32"])[0] == UNISWAP_V2_INIT_CODE_HASH
    assert chain.call_decode(arb.address, "UNISWAP_V3_INIT_CODE_HASH()", ["bytes32"])[0] == UNISWAP_V3_INIT_CODE_HASH
    t = market.tokens
    checked = 0
    for (venue, a, b), pair in market.v2_pairs.items():
        factory = market.v2_factories[venue]
        assert compute_pool_address(Kind.V2, factory, t[a], t[b]) == pair
        (on_chain,) = chain.call_decode(factory, "getPair(address,address)", ["address"], t[a], t[b])
        assert to_checksum_address(on_chain) == pair
        (computed,) = chain.call_decode(arb.address, "poolAddress(uint8,address,address,address,uint24)",
                                        ["address"], 0, factory, t[a], t[b], 3000)
        assert to_checksum_address(computed) == pair
        checked += 1
    for (a, b, fee), pool in market.v3_pools.items():
        assert compute_pool_address(Kind.V3, market.v3_factory, t[a], t[b], fee) == pool
        (on_chain,) = chain.call_decode(market.v3_factory, "getPool(address,address,uint24)", ["address"],
                                        t[a], t[b], fee)
        assert to_checksum_address(on_chain) == pool
        (computed,) = chain.call_decode(arb.address, "poolAddress(uint8,address,address,address,uint24)",
                                        ["address"], 1, market.v3_factory, t[a], t[b], fee)
        assert to_checksum_address(computed) == pool
        checked += 1
    assert checked == 2 * (6 + 9)


# -- callbacks from anything but the pool we are swapping with ------------------------------------
@pytest.fixture(scope="module")
def fake_pool_artifact() -> dict:
    text = (Path(__file__).parent / "FakePool.sol").read_text()
    return compile_source("FakePool.sol", text, "FakePool", version=SOLC_VERSION,
                          settings={"optimizer": {"enabled": True, "runs": 200}, "evmVersion": "cancun"})


@pytest.fixture
def fake_pool(chain: Chain, market: Market, roles: dict[str, str], fake_pool_artifact: dict) -> str:
    from eth_abi import encode

    t0, t1 = sorted([market.tokens["USDC"], market.tokens["WETH"]], key=lambda a: int(a, 16))
    code = bytes.fromhex(fake_pool_artifact["bytecode"][2:]) + encode(["address", "address"], [t0, t1])
    return chain.deploy(roles["attacker"], code)


def _loot(chain: Chain, market: Market, arb: Arb) -> int:
    """Leave tokens in the contract, so a successful callback attack would have something to take."""
    amount = 5_000 * 10**6
    chain.send(market.trader, market.tokens["USDC"], abi_call("transfer(address,uint256)", arb.address, amount))
    return amount


def _malicious_flash_data(market: Market) -> bytes:
    """What our own flash data looks like, for a 'path' that makes the contract pay USDC out."""
    from eth_abi import encode

    from execution.calldata import HOP_TYPE

    h = v2_hop(market, "uniswap_v2_a", "USDC", "WETH", amount_in=5_000 * 10**6)
    back = v2_hop(market, "uniswap_v2_a", "WETH", "USDC")
    return b"\x01" + encode([f"{HOP_TYPE}[]"], [[h.as_abi_tuple(), back.as_abi_tuple()]])


def test_direct_callbacks_from_an_eoa_revert(chain: Chain, market: Market, arb: Arb, roles: dict[str, str]) -> None:
    loot = _loot(chain, market, arb)
    attacker = roles["attacker"]
    data = _malicious_flash_data(market)
    err = chain.revert_error(attacker, arb.address, abi_call("uniswapV2Call(address,uint256,uint256,bytes)",
                                                             arb.address, 0, 1, data))
    assert (err.name, err.args) == ("UnexpectedCallback", (attacker,))
    for payload in (data, b"\x02" + data[1:]):
        err = chain.revert_error(attacker, arb.address, abi_call("uniswapV3SwapCallback(int256,int256,bytes)",
                                                                 loot, -1, payload))
        assert (err.name, err.args) == ("UnexpectedCallback", (attacker,))
    receipt = chain.send(attacker, arb.address, abi_call("uniswapV3SwapCallback(int256,int256,bytes)",
                                                         loot, -1, data), gas=500_000, check=False)
    assert receipt["status"] == 0
    assert chain.balance_of(market.tokens["USDC"], arb.address) == loot


def test_callbacks_from_a_fake_pool_contract_revert(chain: Chain, market: Market, arb: Arb,
                                                    roles: dict[str, str], fake_pool: str) -> None:
    loot = _loot(chain, market, arb)
    attacker = roles["attacker"]
    data = _malicious_flash_data(market)
    err = chain.revert_error(attacker, fake_pool, abi_call("attackV2(address,address,uint256,uint256,bytes)",
                                                           arb.address, arb.address, 0, 1, data))
    assert (err.name, err.args) == ("UnexpectedCallback", (fake_pool,))
    for payload in (data, b"\x02" + data[1:]):
        err = chain.revert_error(attacker, fake_pool, abi_call("attackV3(address,int256,int256,bytes)",
                                                               arb.address, loot, -1, payload))
        assert (err.name, err.args) == ("UnexpectedCallback", (fake_pool,))
    assert chain.balance_of(market.tokens["USDC"], arb.address) == loot


def test_genuine_pair_callback_not_initiated_by_us_reverts(chain: Chain, market: Market, arb: Arb,
                                                           roles: dict[str, str], fake_pool: str) -> None:
    """A real pair calling back (its CREATE2 address is right) is still refused when the swap was
    not started by this contract: the transient expected-caller slot is empty."""
    loot = _loot(chain, market, arb)
    attacker = roles["attacker"]
    pair = market.v2_pairs[("uniswap_v2_a", "USDC", "WETH")]
    t = market.tokens
    weth_out = 10**15
    out0, out1 = (0, weth_out) if int(t["USDC"], 16) < int(t["WETH"], 16) else (weth_out, 0)
    data = _malicious_flash_data(market)
    swap = abi_call("swap(uint256,uint256,address,bytes)", out0, out1, arb.address, data)
    err = chain.revert_error(attacker, pair, swap)  # from an EOA
    assert (err.name, err.args) == ("UnexpectedCallback", (pair,))
    err = chain.revert_error(attacker, fake_pool, abi_call(  # from a contract
        "flashThroughPair(address,uint256,uint256,address,bytes)", pair, out0, out1, arb.address, data))
    assert (err.name, err.args) == ("UnexpectedCallback", (pair,))
    assert chain.balance_of(t["USDC"], arb.address) == loot


def test_owner_can_withdraw_stray_tokens(chain: Chain, market: Market, arb: Arb, roles: dict[str, str]) -> None:
    loot = _loot(chain, market, arb)
    usdc = market.tokens["USDC"]
    chain.send(arb.owner, arb.address, encode_withdraw_token(usdc, arb.owner, loot))
    assert chain.balance_of(usdc, arb.address) == 0
    assert chain.balance_of(usdc, arb.owner) == loot


def test_gas_report(arb: Arb) -> None:
    """Printed with -s; the cycle tests record their gas in GAS_REPORT."""
    print(f"\nGAS deploy AlphaPulseArb: {arb.deploy_gas}")
    for label, gas in GAS_REPORT.items():
        print(f"GAS {label}: {gas}")
