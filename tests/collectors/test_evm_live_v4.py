"""The live EVM collector on Uniswap V4 pools: the official PoolManager (v4-core) on the devnet.

The collector follows the PoolManager's ``Initialize``/``Swap``/``ModifyLiquidity``/``ProtocolFeeUpdated``
logs of the admitted pools (one contract, many pools keyed by pool id), bootstraps them from storage
(``extsload`` at one pinned block), and handles a cut connection (backfill) and a reorg as it does for
V3. Ground truth is the chain: ``eth_getLogs`` decoded independently, and every V4 pool's state read
from the PoolManager's storage directly. The state a consumer holds is built by the consumers' own
``market.state.PoolStateManager`` from the relay's messages, and must equal it exactly -- price, tick,
liquidity, LP and protocol fees and every initialized tick's liquidityNet -- at every block checked.

The pool whose hook returns a swap delta (``SkimHook``) is refused at start-up with one log line naming
the pool and the permission, and nothing of it is ever published, though it trades too.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pytest
import trio
from test_evm_live_collector import Harness, Proxy, records, start_collector

from collectors.evm.chains import VENUES
from collectors.evm.decode import LogDecoder
from market.amm.pool_key import PoolKey, admission
from market.amm.uniswap_v4 import V4PoolState
from market.params import MarketParams
from market.pools import V4Pool
from market.state import PoolStateManager
from protocol.ids import PoolId, VenueKind
from protocol.market import (
    BlockHeader,
    InvalidationReason,
    LiquidityChange,
    PoolSnapshot,
    StateInvalidation,
    V3Initialize,
    V3Swap,
    V4ProtocolFee,
)

V4_EVENTS = (V3Swap, LiquidityChange, V3Initialize, V4ProtocolFee)


def key_of(p: Any) -> PoolKey:
    return PoolKey.of(p.token0, p.token1, p.fee, p.tick_spacing, p.hooks)


def instrument(h: Harness, p: Any) -> PoolId:
    return key_of(p).instrument_id(h.dep.chain_id, VENUES["devnet_v4"].venue)


def admitted(h: Harness) -> list[Any]:
    return [p for p in h.dep.v4_pools if admission(key_of(p)) is None]


def followed(h: Harness) -> int:
    return len(h.dep.pools) + len(h.dep.curve_pools) + len(admitted(h))


def v4_only(h: Harness, tlvs: list[Any]) -> list[Any]:
    return [t for t in tlvs if getattr(t, "pool", None) is not None and PoolId(t.pool).kind == VenueKind.UNISWAP_V4]


def chain_v4_events(h: Harness, from_block: int, to_block: int) -> list[Any]:
    """The PoolManager's logs over the range, decoded by a decoder of our own (the admitted pools only)."""
    decoder = LogDecoder.from_pools([instrument(h, p) for p in admitted(h)], v4_manager=h.dep.v4.pool_manager)
    logs = h.client.rpc.call("eth_getLogs", [{"fromBlock": hex(from_block), "toBlock": hex(to_block),
                                              "address": h.dep.v4.pool_manager}])
    return [t for t in (decoder.decode(lg) for lg in logs) if t is not None]


def chain_state(h: Harness, p: Any, block: int | str = "latest") -> V4PoolState:
    raw = h.client.v4_raw_state(p, block)
    return V4PoolState(sqrt_price_x96=raw.slot0.sqrt_price_x96, tick=raw.slot0.tick, liquidity=raw.liquidity,
                       lp_fee=raw.slot0.lp_fee, protocol_fee=raw.slot0.protocol_fee, tick_spacing=p.tick_spacing,
                       ticks={t: net for t, (_, net) in raw.ticks.items() if net})


def key(s: V4PoolState) -> tuple[Any, ...]:
    return (s.sqrt_price_x96, s.tick, s.liquidity, s.lp_fee, s.protocol_fee,
            {t: n for t, n in s.ticks.items() if n})


def states_by_block(h: Harness) -> dict[int, list[tuple[int, tuple[Any, ...]]]]:
    """Replay the relay's messages through the consumers' PoolStateManager, one message at a time:
    V4 pool -> [(block of the state, state key)] after each message that changed it."""
    manager = PoolStateManager(MarketParams())
    history: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}
    reorged: set[int] = set()  # pools whose base state a reorg took back, until their next snapshot
    for m in h.messages:
        for t in m.tlvs:
            manager.apply(t)
            if isinstance(t, StateInvalidation) and t.pool:  # what the chain took back is not history
                hist = history.get(int(t.pool), [])
                hist[:] = [(b, k) for b, k in hist if b < t.from_block]
                if t.reason == InvalidationReason.REORG:
                    reorged.add(int(t.pool))
            elif isinstance(t, PoolSnapshot):
                reorged.discard(int(t.pool))
        for t in m.tlvs:
            pool = getattr(t, "pool", None)
            if pool is None or PoolId(pool).kind != VenueKind.UNISWAP_V4 or int(pool) in reorged:
                continue
            s = manager.get(pool)
            # a pool stale after a disconnect is still exact: the backfill brings every missed log
            if isinstance(s, V4Pool) and s.v4 is not None:
                history.setdefault(int(pool), []).append((s.block_number, key(s.v4)))
    return history


def check_v4_states(h: Harness, blocks: range) -> int:
    """Every admitted V4 pool, at every block of ``blocks``: the replayed state equals the chain's."""
    history = states_by_block(h)
    checked = 0
    for p in admitted(h):
        hist = history[int(instrument(h, p))]
        for block in blocks:
            ours = None
            for b, k in hist:
                if b > block:
                    break
                ours = k
            truth = key(chain_state(h, p, block))
            if ours != truth:
                diff = "none" if ours is None else [
                    (name, a, b) for name, a, b in zip(("sqrt", "tick", "liq", "lp", "proto"), ours, truth) if a != b]
                ticks = None if ours is None else {t: (ours[5].get(t), truth[5].get(t)) for t in
                                                   set(ours[5]) | set(truth[5]) if ours[5].get(t) != truth[5].get(t)}
                raise AssertionError(f"{p.label} at block {block}: {diff} ticks {ticks}; history blocks "
                                     f"{[b for b, _ in hist]}")
            checked += 1
    return checked


class V4Trader:
    """Random V4 activity: exact-in and exact-out swaps both ways, positions added and removed, a
    protocol fee switched, and swaps on the refused pool too."""

    def __init__(self, h: Harness, seed: int) -> None:
        self.h = h
        self.rng = random.Random(seed)
        self.me = h.dep.funded_accounts[0]
        self.positions: list[tuple[Any, int, int, int, int]] = []
        self.salt = 0

    def fund(self) -> None:
        for t in self.h.dep.tokens:
            self.h.client.fund(self.me, t.address, 10**9 * 10**t.decimals)

    def step(self) -> str:
        c, d, rng = self.h.client, self.h.dep, self.rng
        pools = list(d.v4_pools)
        p = rng.choice(pools)
        roll = rng.random()
        raw = c.v4_raw_state(p)
        if roll < 0.6 and raw.liquidity > 0:
            x = raw.liquidity * (1 << 96) // raw.slot0.sqrt_price_x96
            y = raw.liquidity * raw.slot0.sqrt_price_x96 >> 96
            zfo = rng.random() < 0.5
            exact_in = rng.random() < 0.6
            reserve = (x if zfo else y) if exact_in else (y if zfo else x)
            amount = max(1, int(reserve * 10 ** rng.uniform(-5, -1.3)))  # may cross ticks, never drains
            c.v4_swap(self.me, p, zfo, -amount if exact_in else amount)
            return f"v4 swap {p.label} zfo={zfo} {'in' if exact_in else 'out'}"
        if roll < 0.82 or not self.positions:
            tick = raw.slot0.tick
            s = p.tick_spacing
            lo = (tick // s - rng.randint(-5, 40)) * s
            hi = lo + rng.randint(1, 60) * s
            liquidity = 10 ** rng.randint(12, 17)
            self.salt += 1
            c.v4_modify_liquidity(self.me, p, lo, hi, liquidity, salt=self.salt)
            self.positions.append((p, lo, hi, liquidity, self.salt))
            return f"v4 add {p.label} [{lo},{hi})"
        if roll < 0.95:
            p, lo, hi, liquidity, salt = self.positions.pop(rng.randrange(len(self.positions)))
            c.v4_modify_liquidity(self.me, p, lo, hi, -liquidity, salt=salt)
            return f"v4 remove {p.label} [{lo},{hi})"
        return self.protocol_fee(p)

    def protocol_fee(self, p: Any) -> str:
        """``setProtocolFee`` (the devnet's deployer is the protocol fee controller): a ProtocolFeeUpdated."""
        d = self.h.dep
        fee = self.rng.randint(0, 1000) << 12 | self.rng.randint(0, 1000)
        self.h.client.transact(d.deployer, "PoolManager", d.v4.pool_manager, "setProtocolFee", p.key, fee)
        return f"v4 protocol fee {p.label} {fee:#x}"


async def wait_bootstrapped(h: Harness) -> int:
    await h.until(lambda: len(h.tlvs(PoolSnapshot)) >= followed(h) and h.tlvs(BlockHeader))
    return h.tlvs(BlockHeader)[0].number


def refused_pool(h: Harness) -> Any:
    return h.dep.v4_pool("WETH", "USDC", 3000, hook="skim")


async def test_live_v4_pools_followed_exactly_across_a_cut_connection(
        devnet_snapshot: Any, short_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Bootstrap from storage, then random V4 swaps, positions and protocol-fee changes through a
    WebSocket that is cut mid-stream: the V4 records are exactly the PoolManager's logs of the admitted
    pools, once each, in order; the consumers' state equals the chain's at every block; the refused
    pool is logged once with its permission and never published."""
    caplog.set_level(logging.WARNING, logger="collectors.evm")
    h = Harness(devnet_snapshot, str(short_dir / "md.sock"))
    trader = V4Trader(h, seed=16)
    await h.run(trader.fund)
    proxy = Proxy(int(h.dep.ws_url.rsplit(":", 1)[1]))
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            runner = await start_collector(nursery, h, short_dir, proxy=proxy)
            start = await wait_bootstrapped(h)
            steps = []
            for _ in range(14):
                steps.append(await h.run(trader.step))
            await h.wait_for_head(await h.run(h.client.block_number))
            steps.append(await h.run(trader.protocol_fee, h.dep.v4_pool("WETH", "DAI", 3000)))
            proxy.stop()
            steps.append(await h.run(trader.protocol_fee, h.dep.v4_pool("WETH", "USDC", 500)))
            for _ in range(8):
                steps.append(await h.run(trader.step))
            await trio.sleep(0.3)
            await nursery.start(proxy.serve)
            for _ in range(14):
                steps.append(await h.run(trader.step))
            head = await h.run(h.client.block_number)
            expected = await h.run(chain_v4_events, h, start + 1, head)
            await h.until(lambda: h.snapshots_since_invalidation() >= followed(h))
            await h.wait_for_head(head)
            await h.until(lambda: len(v4_only(h, h.tlvs(*V4_EVENTS))) >= len(expected))
            await trio.sleep(0.3)
            nursery.cancel_scope.cancel()
    got = [t for t in v4_only(h, h.tlvs(*V4_EVENTS)) if not (isinstance(t, V4ProtocolFee) and t.log_index == 0xFFFFFFFF)]
    assert got == expected, steps
    kinds = {type(t) for t in expected}
    assert {V3Swap, LiquidityChange, V4ProtocolFee} <= kinds and len(expected) >= 25, steps
    assert runner.failures >= 1 and runner.follower is not None and runner.follower.backfilled_logs > 0
    # the refused pool: one warning naming it and its permission, and nothing of it on the bus
    skim = refused_pool(h)
    lines = [r.getMessage() for r in caplog.records if "refusing Uniswap V4 pool" in r.getMessage()]
    assert len(lines) == 1 and skim.pool_id in lines[0] and "afterSwapReturnDelta" in lines[0]
    assert [k for k, _ in runner.refused] == [key_of(skim)]
    skim_id = instrument(h, skim)
    assert not any(getattr(t, "pool", None) == skim_id for t in records(h.messages))
    assert any("skim" in s for s in steps)  # it traded, and was still not published
    # every V4 snapshot message is (V4ProtocolFee, PoolSnapshot) of one block
    for m in h.messages:
        snaps = [t for t in m.tlvs if isinstance(t, PoolSnapshot) and PoolId(t.pool).kind == VenueKind.UNISWAP_V4]
        if snaps:
            (fee, snap) = m.tlvs
            assert isinstance(fee, V4ProtocolFee) and fee.pool == snap.pool and fee.block_number == snap.block_number
    # the disconnect invalidated every followed pool, V4 ones included
    invalid = h.tlvs(StateInvalidation)
    assert {t.reason for t in invalid} == {InvalidationReason.DISCONNECT} and len(invalid) == followed(h)
    assert await h.run(check_v4_states, h, range(start, head + 1)) >= len(admitted(h)) * (head - start)


async def test_live_v4_reorg_is_invalidated_then_corrected(devnet_snapshot: Any, short_dir: Path) -> None:
    """anvil_reorg replaces the block of a V4 swap with one holding a different V4 swap: the V4 pool
    is invalidated (REORG) first, then the new branch's log and a fresh snapshot; the state equals
    the chain's at the new head."""
    from tools.devnet import artifacts
    from tools.devnet.actions import MIN_SQRT_RATIO, Tx

    h = Harness(devnet_snapshot, str(short_dir / "md.sock"))
    d, c = h.dep, h.client
    trader = V4Trader(h, seed=7)
    await h.run(trader.fund)
    me = trader.me
    gone = d.v4_pool("WETH", "USDC", 500)
    other = d.v4_pool("WETH", "DAI", 3000)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            runner = await start_collector(nursery, h, short_dir, [{"ws": d.ws_url}])
            start = await wait_bootstrapped(h)
            for _ in range(5):
                await h.run(trader.step)
            await h.run(lambda: c.v4_swap(me, gone, True, -(10**17)))
            head = await h.run(c.block_number)
            await h.wait_for_head(head)
            await h.until(lambda: any(t.block_number == head for t in v4_only(h, h.tlvs(V3Swap))))
            n_before = len(h.messages)
            data = artifacts.load("V4DevnetRouter").encode("swap", other.key, (True, -(3 * 10**17), MIN_SQRT_RATIO + 1))
            await h.run(lambda: c.reorg(1, [(Tx(me, d.v4.router, data, gas=500_000), 0)]))
            await h.run(lambda: c.mine(1))
            new_head = head + 1
            await h.wait_for_head(new_head)
            await h.until(lambda: any(isinstance(t, PoolSnapshot) for t in records(h.messages[n_before:])))
            await trio.sleep(0.3)
            nursery.cancel_scope.cancel()
    after = records(h.messages[n_before:])
    invalid = [t for t in after if isinstance(t, StateInvalidation)]
    assert [t.pool for t in invalid] == [instrument(h, gone)]
    assert invalid[0].reason == InvalidationReason.REORG and invalid[0].from_block == head
    assert after.index(invalid[0]) == 0
    new_branch = v4_only(h, [t for t in after if isinstance(t, V3Swap)])
    assert [t.pool for t in new_branch] == [instrument(h, other)] and new_branch[0].block_number == head
    snaps = [t for t in after if isinstance(t, PoolSnapshot)]
    assert [t.pool for t in snaps] == [instrument(h, gone)] and snaps[0].block_number >= head
    assert runner.follower is not None and runner.follower.reorgs >= 1
    # published minus retracted == the canonical chain's logs
    kept: list[Any] = []
    for t in records(h.messages):
        if isinstance(t, StateInvalidation) and t.reason == InvalidationReason.REORG:
            kept = [e for e in kept if not (e.block_number >= t.from_block and e.pool == t.pool)]
        elif isinstance(t, V4_EVENTS) and PoolId(t.pool).kind == VenueKind.UNISWAP_V4 and not (
                isinstance(t, V4ProtocolFee) and t.log_index == 0xFFFFFFFF):
            kept.append(t)
    assert kept == await h.run(chain_v4_events, h, start + 1, new_head)
    await h.run(check_v4_states, h, range(head, new_head + 1))


def test_v4_config_and_admission_without_a_chain(caplog: pytest.LogCaptureFixture) -> None:
    """A V4 pool is its key (no address); admission refuses a dynamic fee and a swap return-delta hook,
    each with one warning naming the pool and the reason, and admits an observing hook."""
    from collectors.evm.bootstrap import resolve_v4
    from collectors.evm.config import ConfigError, parse_config

    usdc, weth = "0xA0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
    observing, delta = "0x" + "00" * 18 + "00c0", "0x" + "00" * 18 + "0044"  # afterSwap(+delta) / before+afterSwap
    pools = [
        {"venue": "uniswap_v4", "tokens": [weth, usdc], "fee": 500, "tick_spacing": 10},
        {"venue": "uniswap_v4", "tokens": [usdc, weth], "fee": 0x800000, "tick_spacing": 60, "hooks": observing},
        {"venue": "uniswap_v4", "tokens": [usdc, weth], "fee": 3000, "tick_spacing": 60, "hooks": delta},
        {"venue": "uniswap_v4", "tokens": [usdc, weth], "fee": 3000, "tick_spacing": 60, "hooks": observing},
    ]
    cfg = parse_config({"chain": [{"name": "ethereum", "endpoints": [{"ws": "wss://x"}], "pools": pools}]})
    chain = cfg.chains[0]
    assert chain.factory("uniswap_v4").address == "0x000000000004444c5dc75cB358380D2e3dE08A90"
    caplog.set_level(logging.WARNING, logger="collectors.evm")
    refused: list[Any] = []
    got = [resolve_v4(chain, i, refused) for i in range(len(pools))]
    assert got[0] is not None and got[3] is not None and got[1] is None and got[2] is None
    assert got[0].key == PoolKey.of(usdc, weth, 500, 10)  # currencies sorted as the PoolManager sorts them
    assert got[0].pool == got[0].key.instrument_id(1, VENUES["uniswap_v4"].venue)
    assert got[0].manager == chain.factory("uniswap_v4").address
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and [k for k, _ in refused] == [got_key for got_key in (
        PoolKey.of(usdc, weth, 0x800000, 60, observing), PoolKey.of(usdc, weth, 3000, 60, delta))]
    assert "dynamic LP fee" in lines[0] and "0x" + refused[0][0].to_id().hex() in lines[0]
    assert "afterSwapReturnDelta" in lines[1] and "0x" + refused[1][0].to_id().hex() in lines[1]
    # a V4 pool has no address, and needs its whole key
    for bad, path in (({"address": usdc}, "address"), ({"tick_spacing": None}, "tick_spacing")):
        spec = {**pools[0], **bad}
        spec = {k: v for k, v in spec.items() if v is not None}
        with pytest.raises(ConfigError) as info:
            parse_config({"chain": [{"name": "ethereum", "endpoints": [{"ws": "wss://x"}], "pools": [spec]}]})
        assert info.value.path.endswith(path)
    with pytest.raises(ConfigError) as info:  # and a V3 pool has no hooks
        parse_config({"chain": [{"name": "ethereum", "endpoints": [{"ws": "wss://x"}],
                                 "pools": [{"venue": "uniswap_v3", "address": usdc, "hooks": observing}]}]})
    assert info.value.path.endswith("hooks")
