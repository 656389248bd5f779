"""The cross-chain sizing core against the real two-chain devnet: the gap the devnet scripts (WETH
1.5 % dearer on the second chain) is sized from both chains' V2 pairs as read from the chain, and
both legs, executed through each chain's own Router02, give exactly the amounts the core quoted."""

from __future__ import annotations

import pytest

from market.pools import V2Pool
from protocol.ids import PoolId, TokenId, Venue, VenueKind
from strategy.cross_chain import ChainLeg, CrossChainParams, CrossChainSizer

A, B = 31337, 31338


@pytest.fixture(scope="module")
def chains():
    from tools.devnet.deploy import chain_spec, start_devnet

    nets = []
    try:
        for i, chain_id in enumerate((A, B)):
            nets.append(start_devnet(chain_id, spec=chain_spec(i)))
        yield nets
    finally:
        for n in nets:
            n.close()


def _leg(net, *, sell_usdc: bool, block_time_ms: int) -> ChainLeg:
    d = net.deployment
    pool = d.pool("uniswap_v2_a", "WETH", "USDC")
    r0, r1, _ = net.client.v2_reserves(pool)
    pid = PoolId.of(d.chain_id, Venue.DEVNET_V2_A, VenueKind.UNISWAP_V2, pool.address, pool.token0, pool.token1)
    state = V2Pool(pool=pid, block_number=net.client.block_number(), last_event=(0, 0), reserve0=r0, reserve1=r1)
    usdc = TokenId.of(d.chain_id, d.address_of("USDC"))
    zero_for_one = (pool.token0 == d.address_of("USDC")) == sell_usdc
    return ChainLeg(chain_id=d.chain_id, pool=state, zero_for_one=zero_for_one, quote_token=usdc,
                    gas_token=TokenId.of(d.chain_id, d.weth), price_pools=(state,), gas_units=150_000,
                    gas_price_wei=10**9, block_time_ms=block_time_ms)


def test_devnet_gap_sized_then_both_legs_land_as_quoted(chains):
    na, nb = chains
    source = _leg(na, sell_usdc=True, block_time_ms=2000)  # WETH cheap on A: USDC -> WETH
    dest = _leg(nb, sell_usdc=False, block_time_ms=250)  # WETH dear on B: WETH -> USDC
    params = CrossChainParams(bridge_id=1, bridge_fee_bps=1, bridge_gas_units=80_000, rebalance_every=5,
                              drift_k_milli=2000)
    trader_a, trader_b = na.deployment.funded_accounts[0], nb.deployment.funded_accounts[0]
    quote = CrossChainSizer(source, dest, params, sigma_ppb=107_000).best(
        quote_inventory=na.client.balance(trader_a, "USDC"), base_inventory=nb.client.balance(trader_b, "WETH"))
    assert quote is not None and quote.net_profit > 0, quote
    # The opposite direction does not pay.
    back = CrossChainSizer(_leg(nb, sell_usdc=True, block_time_ms=250), _leg(na, sell_usdc=False, block_time_ms=2000),
                           params, sigma_ppb=107_000).best(10**12, 10**21)
    assert back is None or back.net_profit < 0

    leg1 = na.client.v2_swap_exact_in("uniswap_v2_a", trader_a, quote.amount_in, ["USDC", "WETH"])
    leg2 = nb.client.v2_swap_exact_in("uniswap_v2_a", trader_b, quote.base_amount, ["WETH", "USDC"])
    assert (leg1.amount_out, leg2.amount_out) == (quote.base_amount, quote.amount_out)
    assert leg2.amount_out - leg1.amount_in == quote.gross_profit
    # The gas assumed per leg covers what each router swap used.
    assert leg1.receipt.gas_used <= source.gas_units and leg2.receipt.gas_used <= dest.gas_units
