"""AlphaPulseArb's FLASH_BALANCER mode and Curve hops: the Balancer V2 Vault (official bytecode from
@balancer-labs/v2-deployments, deployed by tools/devnet) lends the start token to paths whose first
hop cannot flash-swap (a Curve StableSwap hop), or to any path without V4; Curve hops
(``exchange(i, j, dx, min_dy)``) run from the contract's tokens in FORWARD and FLASH_BALANCER cycles.

Every cycle is predicted with our own math (market.amm: the StableSwap mirror and the V2 formula on
the chain's current state) and must execute exact to the wei; the Curve pool's balances must move
exactly as the mirror's ``exchange`` says.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from arb_testkit import Arb, Chain, Market, abi_call
from test_arb_contract import (
    EXECUTE_GAS,
    best_input,
    dump_weth_on_venue_a,
    reserves_in_out,
    run_cycle,
    v2_hop,
    v2_out,
)
from test_arb_v4 import v4_hop

from execution.calldata import (
    FlashSource,
    Hop,
    Kind,
    encode_execute,
    encode_set_balancer_vault,
    encode_set_factory,
)
from market.amm import curve_stableswap as ss


@pytest.fixture(scope="module")
def dep(arb_devnet_deployment: Any) -> Any:
    if arb_devnet_deployment.balancer_vault is None or not arb_devnet_deployment.curve_pools:
        pytest.fail("the devnet deployment has no Balancer Vault / Curve pool")
    return arb_devnet_deployment


@pytest.fixture(scope="module")
def flash_arb(chain: Chain, arb: Arb, dep: Any) -> Arb:
    """The shared arb with the devnet's Vault configured and its Curve pool allow-listed."""
    chain.send(arb.owner, arb.address, encode_set_balancer_vault(dep.balancer_vault))
    chain.send(arb.owner, arb.address, encode_set_factory(dep.curve_pools[0].address, Kind.CURVE))
    return arb


@pytest.fixture(autouse=True)
def _isolated(chain: Chain, flash_arb: Arb) -> Iterator[None]:
    with chain.isolated():
        yield


def curve_hop(dep: Any, market: Market, token_in: str, token_out: str, amount_in: int = 0,
              amount_out: int = 0) -> Hop:
    pool = dep.curve_pools[0]
    t = market.tokens
    return Hop(pool=pool.address, factory=pool.address, token_in=t[token_in], token_out=t[token_out],
               kind=Kind.CURVE, fee=pool.fee // 10_000, coin_in=pool.index(t[token_in]),
               coin_out=pool.index(t[token_out]), amount_in=amount_in, amount_out=amount_out)


def curve_balances(chain: Chain, dep: Any) -> list[int]:
    pool = dep.curve_pools[0]
    return [int(chain.call_decode(pool.address, "balances(uint256)", ["uint256"], k)[0]) for k in range(len(pool.coins))]


def curve_exchange(chain: Chain, dep: Any, market: Market, token_in: str, token_out: str,
                   dx: int) -> tuple[int, list[int]]:
    pool = dep.curve_pools[0]
    t = market.tokens
    return ss.exchange(pool.index(t[token_in]), pool.index(t[token_out]), dx, curve_balances(chain, dep),
                       pool.rates, pool.amp, pool.fee, pool.admin_fee)


def test_curve_port_get_dy_and_exchange_equal_our_math(chain: Chain, dep: Any, market: Market) -> None:
    """The devnet pool (a Solidity port, see the README) against market.amm.curve_stableswap."""
    pool = dep.curve_pools[0]
    rng = random.Random(16)
    balances = curve_balances(chain, dep)
    for _ in range(12):
        i = rng.randrange(2)
        j = 1 - i
        dx = rng.randrange(1, balances[i]) // rng.choice((1, 10, 1000, 10**6))
        want = ss.get_dy(i, j, dx, balances, pool.rates, pool.amp, pool.fee)
        got = int(chain.call_decode(pool.address, "get_dy(int128,int128,uint256)", ["uint256"], i, j, dx)[0])
        assert got == want, (i, j, dx)
    # exchange, executed by a trader: output and both balances exactly as the mirror's exchange.
    trader = market.trader
    for i, dx in ((0, 12_345 * 10**18 + 7), (1, 54_321 * 10**6 + 3)):
        j = 1 - i
        coin_in, coin_out = pool.coins[i], pool.coins[j]
        dy, new_balances = ss.exchange(i, j, dx, curve_balances(chain, dep), pool.rates, pool.amp, pool.fee,
                                       pool.admin_fee)
        chain.send(trader, coin_in, abi_call("approve(address,uint256)", pool.address, dx))
        before = chain.balance_of(coin_out, trader)
        chain.send(trader, pool.address, abi_call("exchange(int128,int128,uint256,uint256)", i, j, dx, dy),
                   gas=1_000_000)
        assert chain.balance_of(coin_out, trader) - before == dy
        assert curve_balances(chain, dep) == new_balances


def _curve_then_v2(chain: Chain, dep: Any, market: Market) -> tuple[list[Hop], int, list[int]]:
    """USDC -> DAI on Curve (DAI is cheap there) -> USDC on V2 venue b (DAI at 1.004), sized for
    the most profit by our math; returns the hops (each output its minimum), the profit and the
    Curve balances the cycle must leave."""
    t = market.tokens
    pair = market.v2_pairs[("uniswap_v2_b", "DAI", "USDC")]
    r_in, r_out = reserves_in_out(chain, pair, t["DAI"], t["USDC"])

    def profit(x: int) -> int:
        dai, _ = curve_exchange(chain, dep, market, "USDC", "DAI", x)
        return v2_out(dai, r_in, r_out) - x

    cache: dict[int, int] = {}

    def cached(x: int) -> int:
        if x not in cache:
            cache[x] = profit(x)
        return cache[x]

    x = best_input(cached, 1, 400_000 * 10**6)
    dai, after = curve_exchange(chain, dep, market, "USDC", "DAI", x)
    usdc = v2_out(dai, r_in, r_out)
    hops = [curve_hop(dep, market, "USDC", "DAI", amount_in=x, amount_out=dai),
            v2_hop(market, "uniswap_v2_b", "DAI", "USDC", amount_out=usdc)]
    return hops, usdc - x, after


def test_curve_first_cycle_borrows_from_the_balancer_vault_exact_to_the_wei(
        chain: Chain, dep: Any, market: Market, flash_arb: Arb) -> None:
    hops, predicted, curve_after = _curve_then_v2(chain, dep, market)
    assert predicted > 5 * 10**6  # a few USDC
    vault_before = chain.balance_of(hops[0].token_in, dep.balancer_vault)
    # A Curve pool cannot lend: the pools' own entry point refuses the path.
    with pytest.raises(ValueError, match="needs flash=BALANCER"):
        encode_execute(hops, predicted)
    err = chain.revert_error(flash_arb.owner, flash_arb.address, encode_execute(hops, predicted, check=False))
    assert err.name == "MalformedPath"
    run_cycle(chain, market, flash_arb, hops, predicted, "Curve->V2 (Balancer flash)", flash=FlashSource.BALANCER)
    assert curve_balances(chain, dep) == curve_after
    assert chain.balance_of(hops[0].token_in, dep.balancer_vault) == vault_before  # repaid, fee 0


def test_v2_then_curve_runs_forward_with_the_pair_lending(chain: Chain, dep: Any, market: Market,
                                                          flash_arb: Arb) -> None:
    """DAI -> USDC on V2 venue b (the pair lends) -> DAI on Curve, inside the pair's callback; and the
    same cycle with the Balancer Vault lending instead gives the same profit."""
    t = market.tokens
    pair = market.v2_pairs[("uniswap_v2_b", "DAI", "USDC")]
    r_in, r_out = reserves_in_out(chain, pair, t["DAI"], t["USDC"])

    def profit(x: int) -> int:
        return curve_exchange(chain, dep, market, "USDC", "DAI", v2_out(x, r_in, r_out))[0] - x

    x = best_input(profit, 10**18, 400_000 * 10**18)
    usdc = v2_out(x, r_in, r_out)
    dai, curve_after = curve_exchange(chain, dep, market, "USDC", "DAI", usdc)
    hops = [v2_hop(market, "uniswap_v2_b", "DAI", "USDC", amount_in=x, amount_out=usdc),
            curve_hop(dep, market, "USDC", "DAI", amount_out=dai)]
    predicted = dai - x
    assert predicted > 5 * 10**18
    snap = chain.snapshot()
    pool_lends = run_cycle(chain, market, flash_arb, hops, predicted, "V2->Curve (pair lends)")
    assert curve_balances(chain, dep) == curve_after
    chain.revert_to(snap)
    vault_lends = run_cycle(chain, market, flash_arb, hops, predicted, "V2->Curve (Balancer flash)",
                            flash=FlashSource.BALANCER)
    assert curve_balances(chain, dep) == curve_after
    print(f"\nGAS V2->Curve: pair lends {pool_lends['gasUsed']}, Balancer lends {vault_lends['gasUsed']}")


def test_v2_to_v2_with_balancer_flash_matches_the_formula(chain: Chain, market: Market, flash_arb: Arb) -> None:
    dump_weth_on_venue_a(chain, market)
    t = market.tokens
    a_in, a_out = reserves_in_out(chain, market.v2_pairs[("uniswap_v2_a", "USDC", "WETH")], t["USDC"], t["WETH"])
    b_in, b_out = reserves_in_out(chain, market.v2_pairs[("uniswap_v2_b", "WETH", "USDC")], t["WETH"], t["USDC"])

    def profit(x: int) -> int:
        return v2_out(v2_out(x, a_in, a_out), b_in, b_out) - x

    x = best_input(profit, 1, 200_000 * 10**6)
    weth = v2_out(x, a_in, a_out)
    usdc = v2_out(weth, b_in, b_out)
    hops = [v2_hop(market, "uniswap_v2_a", "USDC", "WETH", amount_in=x, amount_out=weth),
            v2_hop(market, "uniswap_v2_b", "WETH", "USDC", amount_out=usdc)]
    run_cycle(chain, market, flash_arb, hops, usdc - x, "V2->V2 (Balancer flash)", flash=FlashSource.BALANCER)


def test_receive_flash_loan_only_from_the_vault_during_our_own_loan(
        chain: Chain, dep: Any, market: Market, flash_arb: Arb, roles: dict[str, str]) -> None:
    hops, predicted, _ = _curve_then_v2(chain, dep, market)
    from eth_abi import encode

    from execution.calldata import encode_path
    user_data = encode_path(hops, 0)
    direct = bytes.fromhex("f04f2707") + encode(
        ["address[]", "uint256[]", "uint256[]", "bytes"],
        [[hops[0].token_in], [hops[0].amount_in], [0], user_data])
    # From an EOA, and from the Vault's own address outside a loan of ours (impersonated).
    err = chain.revert_error(roles["attacker"], flash_arb.address, direct)
    assert err.name == "UnexpectedCallback"
    err = chain.revert_error(dep.balancer_vault, flash_arb.address, direct)
    assert err.name == "UnexpectedCallback"
    # Someone else's flash loan from the genuine Vault naming our contract as the recipient.
    loan = abi_call("flashLoan(address,address[],uint256[],bytes)", flash_arb.address, [hops[0].token_in],
                    [hops[0].amount_in], user_data)
    receipt = chain.send(roles["attacker"], dep.balancer_vault, loan, gas=EXECUTE_GAS, check=False)
    assert receipt["status"] == 0


def test_flash_path_rules(chain: Chain, dep: Any, market: Market, flash_arb: Arb, arb_devnet_deployment: Any) -> None:
    hops, predicted, _ = _curve_then_v2(chain, dep, market)
    owner, addr = flash_arb.owner, flash_arb.address
    # No Vault configured.
    chain.send(owner, addr, encode_set_balancer_vault("0x" + "00" * 20))
    err = chain.revert_error(owner, addr, encode_execute(hops, predicted, flash=FlashSource.BALANCER))
    assert err.name == "NoFlashLender"
    chain.send(owner, addr, encode_set_balancer_vault(dep.balancer_vault))
    # A Curve pool that is not allow-listed, and a Curve hop whose factory is not its pool.
    chain.send(owner, addr, encode_set_factory(dep.curve_pools[0].address, Kind.CURVE, bytes(32)))
    err = chain.revert_error(owner, addr, encode_execute(hops, predicted, flash=FlashSource.BALANCER))
    assert err.name == "FactoryNotAllowed"
    chain.send(owner, addr, encode_set_factory(dep.curve_pools[0].address, Kind.CURVE))
    bad = [Hop(**{**{f: getattr(hops[0], f) for f in Hop.__slots__}, "factory": market.v2_factories["uniswap_v2_a"]}),
           hops[1]]
    err = chain.revert_error(owner, addr, encode_execute(bad, predicted, flash=FlashSource.BALANCER))
    assert err.name in ("PoolNotGenuine", "FactoryNotAllowed")
    # The Vault lends to no path with a V4 hop.
    if arb_devnet_deployment.v4 is not None:
        v4 = [v4_hop(dep, market, 500, "WETH", "USDC", amount_in=10**18), v4_hop(dep, market, 3000, "USDC", "WETH")]
        with pytest.raises(ValueError, match="V4"):
            encode_execute(v4, 0, flash=FlashSource.BALANCER)
        err = chain.revert_error(owner, addr, encode_execute(v4, 0, flash=FlashSource.BALANCER, check=False))
        assert err.name == "MalformedPath"
    # Not enough to repay the Vault: InsufficientProfit / output checks, never a loss.
    too_much = encode_execute(hops, predicted + 1, flash=FlashSource.BALANCER)
    assert chain.revert_error(owner, addr, too_much).name == "InsufficientProfit"
