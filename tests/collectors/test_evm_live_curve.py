"""The live EVM collector on the devnet's Curve StableSwap pool (tools/devnet/contracts/StableSwapDevnet.sol).

The collector bootstraps the pool (coins, balances, A, fee, admin fee and the coins' decimals at one
pinned block), follows its ``TokenExchange``, ``AddLiquidity`` and ``RemoveLiquidityImbalance`` logs, applies
them with the exact StableSwap mirror and publishes the pool's ``PoolSnapshot`` -- through a cut WebSocket
(backfill and re-read) and a reorg. Ground truth is the chain: every snapshot published at block ``B`` must
hold the pool's ``balances(k)`` read at ``B`` (the admin fee that leaves the balances included), and the
state a consumer's ``market.state.PoolStateManager`` builds from the relay must price the pool as the
chain's ``get_dy`` does at the end.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import trio
from test_evm_live_collector import (
    Harness,
    Proxy,
    followed,
    records,
    start_collector,
)

from market.params import CurveParams, MarketParams
from market.state import PoolStateManager
from protocol.ids import PoolId, VenueKind
from protocol.market import BlockHeader, InvalidationReason, PoolSnapshot, StateInvalidation
from tools.devnet import artifacts
from tools.devnet.actions import Tx


def curve_snapshots(h: Harness) -> list[PoolSnapshot]:
    return [t for t in h.tlvs(PoolSnapshot) if PoolId(t.pool).kind == VenueKind.CURVE]


def chain_balances(h: Harness, block: int | str) -> tuple[int, int]:
    """The pool's balances at ``block`` as token0 (lower address), token1."""
    p = h.dep.curve_pools[0]
    b = [h.client.call_fn("StableSwapDevnet", p.address, "balances", k, block=block)[0] for k in (0, 1)]
    return (b[0], b[1]) if int(p.coins[0], 16) < int(p.coins[1], 16) else (b[1], b[0])


def decimals(rate: int) -> int:
    """A coin's decimals from its rate ``10**(36 - decimals)``."""
    return 36 - (len(str(rate)) - 1)


class CurveTrader:
    """Random exchanges both ways (a funded dev account) and the owner's add / withdraw."""

    def __init__(self, h: Harness, seed: int) -> None:
        self.h, self.rng = h, random.Random(seed)
        self.pool = h.dep.curve_pools[0]
        self.trader = h.dep.funded_accounts[0]
        for c in self.pool.coins:
            h.client.approve(self.trader, c, self.pool.address)
            h.client.approve(h.dep.deployer, c, self.pool.address)

    def step(self) -> None:
        c, p, r = self.h.client, self.pool, self.rng
        roll = r.random()
        if roll < 0.7:
            i = r.randrange(2)
            one = 10 ** decimals(p.rates[i])
            dx = r.randrange(1, 20_000) * one + r.randrange(one)
            c.transact(self.trader, "StableSwapDevnet", p.address, "exchange", i, 1 - i, dx, 0, gas=1_000_000)
        elif roll < 0.85:
            amounts = [r.randrange(1, 5_000) * 10 ** decimals(rate) for rate in p.rates]
            for coin, a in zip(p.coins, amounts):
                c.fund(self.h.dep.deployer, coin, a)
            c.transact(self.h.dep.deployer, "StableSwapDevnet", p.address, "seed", amounts, gas=1_000_000)
        else:
            amounts = [r.randrange(1, 2_000) * 10 ** decimals(rate) for rate in p.rates]
            c.transact(self.h.dep.deployer, "StableSwapDevnet", p.address, "withdraw", amounts, gas=1_000_000)


def check_snapshots(h: Harness, snaps: list[PoolSnapshot]) -> int:
    """Each snapshot's balances equal the chain's at its block; returns how many were checked."""
    for s in snaps:
        assert (s.reserve0, s.reserve1) == chain_balances(h, s.block_number), s.block_number
    return len(snaps)


async def test_live_curve_pool_is_followed_exactly_through_a_cut_and_a_reorg(devnet_snapshot: Any,
                                                                            short_dir: Path) -> None:
    h = Harness(devnet_snapshot, str(short_dir / "md.sock"))
    pool = h.dep.curve_pools[0]
    proxy = Proxy(int(h.dep.ws_url.rsplit(":", 1)[1]))
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            runner = await start_collector(nursery, h, short_dir, proxy=proxy)
            await h.until(lambda: len(h.tlvs(PoolSnapshot)) >= followed(h.dep) and h.tlvs(BlockHeader))
            assert len(curve_snapshots(h)) == 1  # the bootstrap's
            trader = await h.run(CurveTrader, h, 16)
            for _ in range(15):
                await h.run(trader.step)
            head = await h.run(h.client.block_number)
            await h.wait_for_head(head)
            await h.until(lambda: max(s.block_number for s in curve_snapshots(h)) >= head - 1)
            streamed = len(curve_snapshots(h))
            assert streamed >= 12  # one per event (the approvals and fundings are other contracts' logs)
            proxy.stop()  # the WebSocket drops: activity goes on, then a backfill and a re-read
            for _ in range(6):
                await h.run(trader.step)
            await nursery.start(proxy.serve)
            for _ in range(4):
                await h.run(trader.step)
            head = await h.run(h.client.block_number)
            await h.until(lambda: h.snapshots_since_invalidation() >= followed(h.dep))
            await h.until(lambda: any(s.block_number >= head for s in curve_snapshots(h)))
            # a reorg replaces the last two blocks (two exchanges) with one exchange of another size
            for i in (0, 1):
                await h.run(lambda i=i: h.client.transact(trader.trader, "StableSwapDevnet", pool.address, "exchange",
                                                          i, 1 - i, 5_000 * 10 ** decimals(pool.rates[i]), 0,
                                                          gas=1_000_000))
            head = await h.run(h.client.block_number)
            await h.until(lambda: any(s.block_number == head for s in curve_snapshots(h)))
            before = len(h.tlvs(StateInvalidation))
            data = artifacts.load("StableSwapDevnet").encode("exchange", 0, 1, 3 * 10 ** decimals(pool.rates[0]), 0)
            await h.run(lambda: h.client.reorg(2, [(Tx(trader.trader, pool.address, data, gas=1_000_000), 0)]))
            await h.run(lambda: h.client.mine(1))
            await h.wait_for_head(head + 1)
            await h.until(lambda: any(t.reason == InvalidationReason.REORG for t in h.tlvs(StateInvalidation)[before:])
                          and h.snapshots_since_invalidation() >= 1)
            await trio.sleep(0.3)
            nursery.cancel_scope.cancel()
    assert runner.follower is not None and runner.follower.curve.stats["invalidated"] == 0
    # every snapshot published after the reorg's invalidation is on the new branch; the earlier ones at or
    # above the fork were invalidated, so check those below it and everything after the last invalidation
    flat = records(h.messages)
    last_inv = max(i for i, t in enumerate(flat) if isinstance(t, StateInvalidation))
    fork = min(t.from_block for t in flat[last_inv:last_inv + 1] if isinstance(t, StateInvalidation))
    valid = [t for i, t in enumerate(flat) if isinstance(t, PoolSnapshot) and PoolId(t.pool).kind == VenueKind.CURVE
             and (i > last_inv or t.block_number < fork)]
    assert await trio.to_thread.run_sync(check_snapshots, h, valid) >= 15
    # the consumer's model, built from the relay, prices the pool as the chain does now
    sm = PoolStateManager(MarketParams(curve_pools=(CurveParams(
        chain_id=h.dep.chain_id, address=int(pool.address, 16), amp=pool.amp,
        rates=pool.rates if int(pool.coins[0], 16) < int(pool.coins[1], 16) else pool.rates[::-1]),)))
    for m in h.messages:
        for t in m.tlvs:
            sm.apply(t)
    (curve_id,) = {PoolId(s.pool) for s in curve_snapshots(h)}
    s = sm.tradable(curve_id)
    assert s is not None and s.balances == chain_balances(h, "latest")
    zero_is_coin0 = int(pool.coins[0], 16) < int(pool.coins[1], 16)
    for i, dx in ((0, 1_000 * 10 ** decimals(pool.rates[0])), (1, 777 * 10 ** decimals(pool.rates[1]))):
        got = h.client.call_fn("StableSwapDevnet", pool.address, "get_dy", i, 1 - i, dx)[0]
        ours = s.amount_out(zero_is_coin0 == (i == 0), dx)
        assert abs(ours - got) <= 1  # the model prices with exchange (what is paid), get_dy may be 1 above
