"""AlphaPulseArb's UNLOCK path: cycles through Uniswap V4 pools (the official PoolManager on the
devnet), with the PoolManager as the flash lender, alone and mixed with V2 and V3 hops.

Each cycle's amounts are ground truth from the chain: the same swaps are first executed one by one
by a funded trader through the routers (V4DevnetRouter, Router02, SwapRouter) inside a snapshot,
which is then reverted; the pools of a cycle are distinct, so the contract must reproduce every
output, and the profit, to the wei.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from arb_testkit import Arb, Chain, Market, abi_call
from test_arb_contract import EXECUTE_GAS, run_cycle, v2_hop, v3_hop

from execution.calldata import Hop, Kind, decode_profit_events, encode_execute, encode_set_factory


@pytest.fixture(autouse=True)
def _isolated(chain: Chain, arb: Arb) -> Iterator[None]:
    with chain.isolated():
        yield


@pytest.fixture(scope="module")
def client(devnet: Any) -> Any:
    return devnet.client


def v4_hop(dep: Any, market: Market, fee: int, token_in: str, token_out: str, amount_in: int = 0,
           amount_out: int = 0, hook: str = "") -> Hop:
    pool = dep.v4_pool(token_in, token_out, fee, hook=hook)
    t = market.tokens
    return Hop(pool=pool.hooks, factory=dep.v4.pool_manager, token_in=t[token_in], token_out=t[token_out],
               kind=Kind.V4, fee=fee, tick_spacing=pool.tick_spacing, amount_in=amount_in, amount_out=amount_out)


def ground_truth(client: Any, dep: Any, market: Market, hops: list[Hop], amount_in: int) -> list[int]:
    """Each hop's output when a trader executes the same swaps in order (then reverted)."""
    trader = market.trader
    snap = client.snapshot()
    try:
        outs = []
        amount = amount_in
        for h in hops:
            if h.kind == Kind.V4:
                pool = next(p for p in dep.v4_pools if p.hooks == h.pool and p.fee == h.fee
                            and {p.token0, p.token1} == {h.token_in, h.token_out})
                s = client.v4_swap(trader, pool, h.zero_for_one, -amount)
                amount = s.paid1 if h.zero_for_one else s.paid0
            elif h.kind == Kind.V3:
                amount = client.v3_swap_exact_in(trader, h.token_in, h.token_out, h.fee, amount).amount_out
            else:
                venue = next(v for v, f in market.v2_factories.items() if f == h.factory)
                amount = client.v2_swap_exact_in(venue, trader, amount, [h.token_in, h.token_out]).amount_out
            assert amount > 0
            outs.append(amount)
        return outs
    finally:
        client.revert(snap)


def best_cycle(client: Any, dep: Any, market: Market, make: Any, amounts: list[int]) -> tuple[list[Hop], int]:
    """The most profitable of ``amounts`` for the cycle ``make(amount_in)``; hops carry each
    output as their minimum."""
    best: tuple[list[Hop], int] | None = None
    for x in amounts:
        hops = make(x)
        outs = ground_truth(client, dep, market, hops, x)
        profit = outs[-1] - x
        if best is None or profit > best[1]:
            best = ([Hop(**{**_fields(h), "amount_out": o}) for h, o in zip(hops, outs)], profit)
    assert best is not None and best[1] > 0, "no profitable amount: the devnet's prices changed?"
    return best


def _fields(h: Hop) -> dict:
    return {f: getattr(h, f) for f in Hop.__dataclass_fields__}


USDC = 10**6


def test_v4_to_v4_inside_one_unlock(chain: Chain, market: Market, arb: Arb, client: Any,
                                    arb_devnet_deployment: Any) -> None:
    """USDC -V4 0.3 % (1994)-> WETH -V4 0.05 % (2006)-> USDC: two V4 swaps and one take."""
    dep = arb_devnet_deployment

    def make(x: int) -> list[Hop]:
        return [v4_hop(dep, market, 3000, "USDC", "WETH", amount_in=x), v4_hop(dep, market, 500, "WETH", "USDC")]

    hops, profit = best_cycle(client, dep, market, make, [k * 1_000 * USDC for k in (2, 5, 10, 20, 40)])
    receipt = run_cycle(chain, market, arb, hops, profit, "V4->V4 (2 hops)")
    assert receipt["gasUsed"] < 200_000


@pytest.mark.parametrize("order", ["V4->V2", "V2->V4"])
def test_v4_and_v2_cycle_with_the_pool_manager_as_lender(chain: Chain, market: Market, arb: Arb, client: Any,
                                                          arb_devnet_deployment: Any, order: str) -> None:
    """WETH is 1994 on V4 0.3 % and 2016 on venue b's pair: the PoolManager lends the start
    token to the pair (take), the pair pays back into it (sync/settle)."""
    dep = arb_devnet_deployment

    def make(x: int) -> list[Hop]:
        if order == "V4->V2":
            return [v4_hop(dep, market, 3000, "USDC", "WETH", amount_in=x),
                    v2_hop(market, "uniswap_v2_b", "WETH", "USDC")]
        return [v2_hop(market, "uniswap_v2_b", "WETH", "USDC", amount_in=x),
                v4_hop(dep, market, 3000, "USDC", "WETH")]

    amounts = [k * 1_000 * USDC for k in (1, 2, 5, 10)] if order == "V4->V2" else [k * 10**17 for k in (5, 10, 25, 50)]
    hops, profit = best_cycle(client, dep, market, make, amounts)
    run_cycle(chain, market, arb, hops, profit, f"{order} (2 hops)")


@pytest.mark.parametrize("order", ["V4->V3", "V3->V4"])
def test_v4_and_v3_cycle_inside_one_unlock(chain: Chain, market: Market, arb: Arb, client: Any,
                                            arb_devnet_deployment: Any, order: str) -> None:
    """A V3 hop inside the unlock: it is paid from the PoolManager (take in its callback) and
    pays its output into it (sync/settle)."""
    dep = arb_devnet_deployment

    def make(x: int) -> list[Hop]:
        if order == "V4->V3":  # WETH 1994 on V4 0.3 %, 2004 on V3 0.05 %
            return [v4_hop(dep, market, 3000, "USDC", "WETH", amount_in=x), v3_hop(market, 500, "WETH", "USDC")]
        # WETH 1996 on V3 0.3 %, 2006 on V4 0.05 %
        return [v3_hop(market, 3000, "USDC", "WETH", amount_in=x), v4_hop(dep, market, 500, "WETH", "USDC")]

    hops, profit = best_cycle(client, dep, market, make, [k * 1_000 * USDC for k in (1, 2, 5, 10, 20)])
    run_cycle(chain, market, arb, hops, profit, f"{order} (2 hops)")


def test_v4_min_profit_and_per_hop_minimum_are_enforced(chain: Chain, market: Market, arb: Arb, client: Any,
                                                        arb_devnet_deployment: Any) -> None:
    dep = arb_devnet_deployment
    x = 10_000 * USDC
    hops = [v4_hop(dep, market, 3000, "USDC", "WETH", amount_in=x), v4_hop(dep, market, 500, "WETH", "USDC")]
    weth, usdc = ground_truth(client, dep, market, hops, x)
    profit = usdc - x
    err = chain.revert_error(arb.owner, arb.address, encode_execute(hops, profit + 1))
    assert (err.name, err.args) == ("InsufficientProfit", (profit, profit + 1))
    greedy = [Hop(**{**_fields(hops[0]), "amount_out": weth + 1}), hops[1]]
    err = chain.revert_error(arb.owner, arb.address, encode_execute(greedy, 0))
    assert (err.name, err.args) == ("InsufficientOutput", (0, weth, weth + 1))
    # A losing direction: the cycle returns less than it borrowed.
    back = [v4_hop(dep, market, 500, "USDC", "WETH", amount_in=x), v4_hop(dep, market, 3000, "WETH", "USDC")]
    assert chain.revert_error(arb.owner, arb.address, encode_execute(back, 0)).name == "InsufficientReturn"


def test_v4_pool_manager_must_be_allow_listed(chain: Chain, market: Market, arb: Arb,
                                              arb_devnet_deployment: Any) -> None:
    dep = arb_devnet_deployment
    pm = dep.v4.pool_manager
    hops = [v4_hop(dep, market, 3000, "USDC", "WETH", amount_in=10**9), v4_hop(dep, market, 500, "WETH", "USDC")]
    chain.send(arb.owner, arb.address, encode_set_factory(pm, Kind.V4, bytes(32)))
    err = chain.revert_error(arb.owner, arb.address, encode_execute(hops, 0))
    assert (err.name, err.args) == ("FactoryNotAllowed", (0, pm, 2))


def test_unlock_callback_only_from_the_pool_manager_we_called(chain: Chain, market: Market, arb: Arb,
                                                              roles: dict[str, str],
                                                              arb_devnet_deployment: Any) -> None:
    """Neither an EOA nor the PoolManager itself (unlocked by someone else) can drive the
    contract's unlock callback: only the unlock this contract started is accepted."""
    dep = arb_devnet_deployment
    attacker = roles["attacker"]
    hops = [v4_hop(dep, market, 3000, "USDC", "WETH", amount_in=10**9), v4_hop(dep, market, 500, "WETH", "USDC")]
    from execution.calldata import encode_path

    data = bytes.fromhex(attacker[2:]) + encode_path(hops, 0)
    err = chain.revert_error(attacker, arb.address, abi_call("unlockCallback(bytes)", data))
    assert (err.name, err.args) == ("UnexpectedCallback", (attacker,))
    # The PoolManager calls back whoever unlocks it: an attacker's contract cannot make it call us,
    # and a direct unlock from an EOA reverts inside the PoolManager (no callback target).
    receipt = chain.send(attacker, dep.v4.pool_manager, abi_call("unlock(bytes)", data), gas=500_000, check=False)
    assert receipt["status"] == 0


def test_v4_profit_follows_the_recipient(chain: Chain, market: Market, arb: Arb, client: Any,
                                         roles: dict[str, str], arb_devnet_deployment: Any) -> None:
    dep = arb_devnet_deployment
    x = 10_000 * USDC
    hops = [v4_hop(dep, market, 3000, "USDC", "WETH", amount_in=x), v4_hop(dep, market, 500, "WETH", "USDC")]
    usdc = ground_truth(client, dep, market, hops, x)[-1]
    stranger = roles["stranger"]
    from execution.calldata import encode_set_recipient

    chain.send(arb.owner, arb.address, encode_set_recipient(stranger))
    receipt = chain.send(arb.owner, arb.address, encode_execute(hops, usdc - x), gas=EXECUTE_GAS)
    (ev,) = decode_profit_events(receipt["logs"], arb.address)
    assert (ev.recipient, ev.profit) == (stranger, usdc - x)
    assert chain.balance_of(market.tokens["USDC"], stranger) == usdc - x
