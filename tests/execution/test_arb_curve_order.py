"""A Curve pool whose coin 0 is the HIGHER address, traded by the executor's path building end to end.

The market model orders a pool's balances by address (a ``PoolSnapshot``'s reserve0 is token0, the lower
address); the contract calls ``exchange(i, j, ...)`` with the pool's own coin indices. Here a second
StableSwapDevnet pool is deployed with its coins in descending address order, the executor's
re-validation (``execution.validate.revalidate`` with the pool's coins as ``[[curve_pools]]`` lists them)
builds the calldata hops of a Curve-first cycle from a signal priced on our model, and the contract
executes it through the Balancer Vault exact to the wei. The same pool with the coins assumed sorted
would swap the wrong way (the contract would revert), so the test fails if the order is ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from arb_testkit import Arb, Chain, Market, abi_call
from test_arb_contract import best_input, run_cycle

from execution.calldata import (
    FlashSource,
    Kind,
    encode_execute,
    encode_set_balancer_vault,
    encode_set_factory,
)
from execution.validate import Signal, revalidate
from market.params import ChainParams, CurveParams, MarketParams
from market.state import PoolStateManager
from protocol.ids import PoolId, TokenId, Venue, VenueKind
from protocol.market import BlockHeader, PoolSnapshot
from protocol.message import Message
from protocol.signals import ArbitragePath, Economics, FlashLoan, Hop, SignalIdentity
from protocol.signals import FlashSource as WireFlashSource
from tools.devnet import artifacts


@pytest.fixture
def flash_arb(chain: Chain, arb: Arb, arb_devnet_deployment: Any) -> Iterator[Arb]:
    """The shared arb with the devnet's Balancer Vault configured, on a chain snapshot reverted after."""
    with chain.isolated():
        chain.send(arb.owner, arb.address, encode_set_balancer_vault(arb_devnet_deployment.balancer_vault))
        yield arb


def _deploy_reversed_pool(chain: Chain, market: Market, dep: Any) -> tuple[str, tuple[str, str], tuple[int, int]]:
    """A DAI/USDC StableSwapDevnet whose coin 0 is the higher of the two addresses, seeded like the devnet's
    (more DAI than USDC, so DAI is cheap on it); returns (pool, coins in the pool's order, rates in that order)."""
    t = market.tokens
    decimals = {tok.address.lower(): tok.decimals for tok in dep.tokens}
    coins = tuple(sorted((t["DAI"], t["USDC"]), key=lambda a: int(a, 16), reverse=True))
    rates = tuple(10 ** (36 - decimals[c.lower()]) for c in coins)
    seed = {t["DAI"]: 1_500_000 * 10**18, t["USDC"]: 500_000 * 10**6}
    art = artifacts.load("StableSwapDevnet")
    from eth_abi import encode

    ctor = encode(["address[]", "uint256[]", "uint256", "uint256", "uint256"],
                  [list(coins), list(rates), 200, 4_000_000, 5_000_000_000])
    owner = market.trader
    pool = chain.deploy(owner, art.bytecode + ctor)
    for c in coins:
        chain.send(owner, c, abi_call("approve(address,uint256)", pool, seed[c]))
    chain.send(owner, pool, abi_call("seed(uint256[])", [seed[c] for c in coins]), gas=1_000_000)
    assert int(coins[0], 16) > int(coins[1], 16)
    return pool, coins, rates  # type: ignore[return-value]


def test_a_pool_whose_coin_0_is_the_higher_address_is_traded_the_right_way_round(
        chain: Chain, arb_devnet_deployment: Any, market: Market, flash_arb: Arb) -> None:
    dep = arb_devnet_deployment
    t = market.tokens
    pool, coins, rates = _deploy_reversed_pool(chain, market, dep)
    chain.send(flash_arb.owner, flash_arb.address, encode_set_factory(pool, Kind.CURVE))
    cid = dep.chain_id
    block = int(chain.rpc("eth_blockNumber"), 16)
    sorted_rates = (rates[1], rates[0])  # the model's order: token0 (the lower address) first
    state = PoolStateManager(MarketParams(
        chains=(ChainParams(chain_id=cid, gas_token=TokenId.of(cid, t["WETH"])),),
        curve_pools=(CurveParams(chain_id=cid, address=int(pool, 16), amp=200, rates=sorted_rates),)))
    state.apply(BlockHeader(chain_id=cid, number=block, timestamp=1, gas_limit=30_000_000, gas_used=0,
                            hash=bytes(32), parent_hash=bytes(32), base_fee=10**9, priority_fee=10**9))
    balances = [int(chain.call_decode(pool, "balances(uint256)", ["uint256"], k)[0]) for k in range(2)]
    curve_id = PoolId.of(cid, Venue.CURVE, VenueKind.CURVE, pool, t["DAI"], t["USDC"])
    state.apply(PoolSnapshot(pool=curve_id, block_number=block, fee_ppm=400, tick_spacing=0,
                             reserve0=balances[1], reserve1=balances[0], sqrt_price_x96=0, tick=0, liquidity=0,
                             ticks=()))
    pair = market.v2_pairs[("uniswap_v2_b", "DAI", "USDC")]
    r0, r1 = chain.reserves(pair)
    pair_id = PoolId.of(cid, Venue.DEVNET_V2_B, VenueKind.UNISWAP_V2, pair, t["DAI"], t["USDC"])
    state.apply(PoolSnapshot(pool=pair_id, block_number=block, fee_ppm=3000, tick_spacing=0, reserve0=r0,
                             reserve1=r1, sqrt_price_x96=0, tick=0, liquidity=0, ticks=()))

    usdc, dai = t["USDC"], t["DAI"]
    curve_s, pair_s = state.tradable(curve_id), state.tradable(pair_id)
    usdc_is_0 = int(usdc, 16) < int(dai, 16)

    def outs(x: int) -> tuple[int, int]:
        d = curve_s.amount_out(usdc_is_0, x)
        return d, pair_s.amount_out(not usdc_is_0, d)

    x = best_input(lambda x: outs(x)[1] - x, 1, 400_000 * 10**6)
    d, u = outs(x)
    assert u - x > 10**6  # more than a USDC: DAI is cheap on this pool, dear on the pair
    wire = (Hop(pool=curve_id, venue_kind=int(VenueKind.CURVE), token_in=bytes.fromhex(usdc[2:]),
                token_out=bytes.fromhex(dai[2:]), amount_in=x, amount_out=d),
            Hop(pool=pair_id, venue_kind=int(VenueKind.UNISWAP_V2), token_in=bytes.fromhex(dai[2:]),
                token_out=bytes.fromhex(usdc[2:]), amount_in=d, amount_out=u))
    sig = Signal.from_message(Message(domain=2, tlvs=(
        SignalIdentity(signal_id=1, strategy_id=1, kind=1, confidence_bps=0, chain_id=cid, block_number=block,
                       strategy="t"),
        Economics(profit_token=TokenId.of(cid, usdc), gross_profit=u - x, gas_cost=0, flash_fee=0,
                  slippage_allowance=0, net_profit=u - x, gas_units=0, gas_price_wei=0),
        ArbitragePath(hops=wire), FlashLoan(source=WireFlashSource.BALANCER))))
    v = revalidate(sig, state, {int(Venue.DEVNET_V2_B): market.v2_factories["uniswap_v2_b"]}, max_age_blocks=3,
                   onchain_min_profit_bps=10_000, curve_coins={int(pool, 16): coins})
    assert v.outcome is None, v.reason
    curve_hop = v.hops[0]
    assert (curve_hop.coin_in, curve_hop.coin_out) == (coins.index(usdc), coins.index(dai))
    assert curve_hop.coin_in == (0 if int(usdc, 16) > int(dai, 16) else 1)  # the pool's order, not the addresses'
    # the contract agrees with our model to the wei: the pool's own get_dy for those indices, then the cycle
    got = int(chain.call_decode(pool, "get_dy(int128,int128,uint256)", ["uint256"], curve_hop.coin_in,
                                curve_hop.coin_out, x)[0])
    assert abs(got - d) <= 1  # get_dy charges the fee after converting; exchange (what is paid) is `d`
    run_cycle(chain, market, flash_arb, list(v.hops), v.gross_profit, "Curve(coin 0 higher)->V2 (Balancer flash)",
              flash=FlashSource.BALANCER)
    # the same hops with the indices the address order would give swap the other way: the contract refuses
    wrong = [replace(curve_hop, coin_in=curve_hop.coin_out, coin_out=curve_hop.coin_in), *v.hops[1:]]
    data = encode_execute(wrong, 0, flash=FlashSource.BALANCER)
    receipt = chain.send(flash_arb.owner, flash_arb.address, data, gas=2_000_000, check=False)
    assert receipt["status"] == 0
