"""The live EVM collector against a real anvil chain with the official Uniswap V2/V3 contracts.

Each test runs a real relay (in-process), the collector (``collectors.evm.process.run``), a
``RelayConsumer`` reading everything from sequence 0, and drives the chain with random swaps,
mints and burns (``tools.devnet``). Ground truth is the chain itself: ``eth_getLogs`` over the
whole range decoded independently, and ``eth_call`` reads of every pool at every block.

The WebSocket is cut by a loopback TCP proxy between the collector and anvil that the test
stops (closing every connection) and restarts; anvil keeps running, so no state is lost.
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from relay_testkit import Changes

from collectors.evm import process
from collectors.evm.config import ConfigError, load_config, parse_config
from collectors.evm.decode import LogDecoder
from protocol.header import Domain
from protocol.ids import PoolId
from protocol.market import (
    BlockHeader,
    InvalidationReason,
    LiquidityChange,
    LiquidityKind,
    PoolSnapshot,
    StateInvalidation,
    V2Reserves,
    V2Swap,
    V3Initialize,
    V3Swap,
)
from protocol.message import Message

REPO = Path(__file__).resolve().parents[2]
EVENTS = (V2Reserves, V2Swap, V3Swap, LiquidityChange, V3Initialize)
WETH, USDC, DAI = 10**18, 10**6, 10**18
PAIRS = (("WETH", "USDC"), ("WETH", "DAI"), ("DAI", "USDC"))
UNIT = {"WETH": WETH // 10, "USDC": 200 * USDC, "DAI": 200 * DAI}


# --------------------------------------------------------------------------- fixtures


class Proxy:
    """A loopback TCP proxy to ``target_port`` that the test can stop (dropping every
    connection) and start again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._scope: trio.CancelScope | None = None
        self.connections = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _pump(self, src: trio.SocketStream, dst: trio.SocketStream) -> None:
        try:
            while data := await src.receive_some(65536):
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    async def _handle(self, client: trio.SocketStream) -> None:
        self.connections += 1
        try:
            upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)
        except OSError:
            await client.aclose()
            return
        async with client, upstream, trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, client, upstream)
            await self._pump(upstream, client)
            nursery.cancel_scope.cancel()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self._scope = scope
            listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
            self.port = listeners[0].socket.getsockname()[1]
            await trio.serve_listeners(self._handle, listeners, task_status=task_status)

    def stop(self) -> None:
        assert self._scope is not None
        self._scope.cancel()


@dataclass
class Harness:
    devnet: Any
    sock: str
    messages: list[Message] = field(default_factory=list)
    changes: Changes = field(default_factory=Changes)

    def add(self, msg: Message) -> None:
        self.messages.append(msg)
        self.changes.notify()

    async def until(self, predicate: Any, limit: float = 20.0) -> None:
        await self.changes.until(predicate, limit)

    @property
    def client(self) -> Any:
        return self.devnet.client

    @property
    def dep(self) -> Any:
        return self.devnet.deployment

    def tlvs(self, *types: type) -> list[Any]:
        return [t for t in records(self.messages) if isinstance(t, types)]

    async def wait_for_head(self, number: int) -> None:
        await self.until(lambda: any(t.number >= number for t in self.tlvs(BlockHeader)))

    async def wait_for_events(self, count: int, head: int) -> None:
        await self.wait_for_head(head)
        await self.until(lambda: len(self.tlvs(*EVENTS)) >= count)
        await trio.sleep(0.3)  # anything extra (a duplicate) would show up now

    def snapshots_since_invalidation(self) -> int:
        """How many ``PoolSnapshot``s follow the last ``StateInvalidation`` (0 before any)."""
        flat = records(self.messages)
        last = max((i for i, t in enumerate(flat) if isinstance(t, StateInvalidation)), default=None)
        return 0 if last is None else sum(isinstance(t, PoolSnapshot) for t in flat[last + 1:])

    async def run(self, fn: Any, *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args)


def config_for(h: Harness, tmp: Path, endpoints: list[dict[str, str]], **extra: Any) -> Any:
    from chain.deployment import save_deployment

    dep_path = save_deployment(tmp / "deployment.json", [h.dep])
    chain = {"name": "devnet", "deployment": str(dep_path), "endpoints": endpoints, "head_timeout": 5.0,
             "backoff_initial": 0.05, "backoff_max": 0.3, "poll_interval": 0.1, **extra}
    return parse_config({"source_id": 0x4556, "chain": [chain]})


async def start_stack(nursery: trio.Nursery, h: Harness, tmp: Path) -> None:
    from relays import server
    from relays.client import RelayConsumer

    config = server.RelayConfig(domain=Domain.MARKET_DATA, socket_path=h.sock, data_dir=str(tmp / "journal"),
                                fsync="off")
    await nursery.start(server.serve, config)

    async def consume(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with RelayConsumer.connect("market_data", h.sock, from_seq=0, name="test") as consumer:
            task_status.started()
            async for msg in consumer:
                h.add(msg)

    await nursery.start(consume)


def followed(dep: Any) -> int:
    """How many pools the collector follows on the devnet: every V2/V3 pool, the Curve pools
    (tests/collectors/test_evm_live_curve.py) and the V4 pools admission lets in
    (tests/collectors/test_evm_live_v4.py covers those)."""
    from market.amm.pool_key import PoolKey, admission

    return len(dep.pools) + len(dep.curve_pools) + sum(admission(PoolKey.of(p.token0, p.token1, p.fee, p.tick_spacing, p.hooks)) is None
                                for p in dep.v4_pools)


async def start_collector(nursery: trio.Nursery, h: Harness, tmp: Path,
                          endpoints: list[dict[str, str]] | None = None, proxy: Proxy | NodeProxy | None = None,
                          **extra: Any) -> Any:
    """The relay and the test's consumer (:func:`start_stack`), then the collector on ``endpoints``, or on
    ``proxy``'s WebSocket (a :class:`Proxy` or :class:`NodeProxy`) once it serves (its port is known only
    then), with ``extra`` chain settings (:func:`config_for`); the collector's runner."""
    await start_stack(nursery, h, tmp)
    if proxy is not None:
        await nursery.start(proxy.serve)
        endpoints = [{"ws": proxy.ws_url}]
    assert endpoints is not None
    (runner,) = await nursery.start(functools.partial(process.run, config_for(h, tmp, endpoints, **extra),
                                                      socket_path=h.sock))
    return runner


async def wait_bootstrapped(h: Harness) -> int:
    await h.until(lambda: len(h.tlvs(PoolSnapshot)) >= followed(h.dep) and h.tlvs(BlockHeader))
    return h.tlvs(BlockHeader)[0].number


# --------------------------------------------------------------------------- chain activity


class Trader:
    """Random swaps on every venue, V2 liquidity adds/removes, V3 mints/burns."""

    def __init__(self, h: Harness, seed: int) -> None:
        self.h = h
        self.rng = random.Random(seed)
        self.account = h.dep.funded_accounts[0]
        self.positions: list[int] = []
        self.v2_added: list[tuple[str, str, str]] = []

    def step(self) -> str:
        from tools.devnet.actions import usable_tick

        c, d, rng, me = self.h.client, self.h.dep, self.rng, self.account
        a, b = rng.choice(PAIRS)
        if rng.random() < 0.5:
            a, b = b, a
        amount = UNIT[a] * rng.randint(1, 20)
        roll = rng.random()
        if roll < 0.35:
            venue = rng.choice([v.name for v in d.v2])
            c.v2_swap_exact_in(venue, me, amount, [a, b])
            return f"v2 swap {venue} {a}->{b}"
        if roll < 0.7:
            fee = rng.choice((500, 3000, 10000))
            c.v3_swap_exact_in(me, a, b, fee, amount)
            return f"v3 swap {fee} {a}->{b}"
        if roll < 0.8:
            fee = rng.choice((500, 3000, 10000))
            pool = d.pool("uniswap_v3", a, b, fee)
            spacing = pool.tick_spacing
            tick = c.v3_slot0(pool).tick
            lo = usable_tick(tick - rng.randint(-3, 30) * spacing, spacing)
            hi = lo + rng.randint(1, 40) * spacing
            big = 10**30
            pos = c.v3_mint(me, a, b, fee, lo, hi, min(big, UNIT[pool.symbol0] * 50) if pool.symbol0 else big,
                            UNIT[pool.symbol1] * 50 if pool.symbol1 else big)
            self.positions.append(pos.token_id)
            return f"v3 mint {fee} [{lo},{hi})"
        if roll < 0.88 and self.positions:
            token_id = self.positions.pop(rng.randrange(len(self.positions)))
            c.v3_burn(me, token_id)
            return f"v3 burn {token_id}"
        venue = rng.choice([v.name for v in d.v2])
        if roll < 0.95 or not self.v2_added:
            c.v2_add_liquidity(venue, me, a, b, UNIT[a] * 5, UNIT[b] * 5)
            self.v2_added.append((venue, a, b))
            return f"v2 add {venue} {a}/{b}"
        venue, a, b = self.v2_added.pop()
        pool = d.pool(venue, a, b)
        lp = c.v2_lp_balance(pool, me)
        if lp:
            c.v2_remove_liquidity(venue, me, a, b, lp // 2)
        return f"v2 remove {venue} {a}/{b}"


# --------------------------------------------------------------------------- ground truth


def chain_events(h: Harness, from_block: int, to_block: int) -> list[Any]:
    pools = [PoolId.of(h.dep.chain_id, *_venue_kind(p), p.address, p.token0, p.token1) for p in h.dep.pools]
    decoder = LogDecoder.from_pools(pools)
    logs = h.client.rpc.call("eth_getLogs", [{"fromBlock": hex(from_block), "toBlock": hex(to_block),
                                              "address": [p.address for p in h.dep.pools]}])
    out = [decoder.decode(lg) for lg in logs]
    return [t for t in out if t is not None]


def _venue_kind(p: Any) -> tuple[int, int]:
    from collectors.evm.chains import DEVNET_VENUES, VENUES

    info = VENUES[DEVNET_VENUES[p.venue]]
    return info.venue, info.kind


@dataclass
class PoolState:
    r0: int = 0
    r1: int = 0
    sqrt: int = 0
    tick: int = 0
    liquidity: int = 0
    ticks: dict[int, int] = field(default_factory=dict)

    def key(self, v3: bool) -> tuple[int, ...]:
        return (self.sqrt, self.tick, self.liquidity) if v3 else (self.r0, self.r1)


def records(messages: list[Message]) -> list[Any]:
    """The records of the messages in order (a message holds one transaction's logs, in log order)."""
    return [t for m in messages for t in m.tlvs]


def replay_state(messages: list[Message]) -> dict[int, list[tuple[int, tuple[int, ...], dict[int, int]]]]:
    """Apply the collector's messages in relay order: pool -> [(block, state key, ticks)] after each."""
    states: dict[int, PoolState] = {}
    history: dict[int, list[tuple[int, tuple[int, ...], dict[int, int]]]] = {}
    for t in records(messages):
        if not isinstance(t, (PoolSnapshot, *EVENTS)):
            continue
        pool = int(t.pool)
        v3 = PoolId(pool).kind == 2
        s = states.setdefault(pool, PoolState())
        if isinstance(t, PoolSnapshot):
            s.r0, s.r1, s.sqrt, s.tick, s.liquidity = t.reserve0, t.reserve1, t.sqrt_price_x96, t.tick, t.liquidity
            s.ticks = {x.tick: x.liquidity_net for x in t.ticks}
        elif isinstance(t, V2Reserves):
            s.r0, s.r1 = t.reserve0, t.reserve1
        elif isinstance(t, (V3Swap, V3Initialize)):
            s.sqrt, s.tick = t.sqrt_price_x96, t.tick
            if isinstance(t, V3Swap):
                s.liquidity = t.liquidity
        elif isinstance(t, LiquidityChange) and v3:
            sign = 1 if t.kind == LiquidityKind.MINT else -1
            if t.tick_lower <= s.tick < t.tick_upper:
                s.liquidity += sign * t.liquidity
            s.ticks[t.tick_lower] = s.ticks.get(t.tick_lower, 0) + sign * t.liquidity
            s.ticks[t.tick_upper] = s.ticks.get(t.tick_upper, 0) - sign * t.liquidity
        else:
            continue
        history.setdefault(pool, []).append((t.block_number, s.key(v3), dict(s.ticks)))
    return history


def state_at(history: list[tuple[int, tuple[int, ...], dict[int, int]]], block: int) -> tuple[int, ...] | None:
    found = None
    for b, key, _ in history:
        if b > block:
            break
        found = key
    return found


def chain_states(h: Harness, blocks: range) -> dict[tuple[str, int], tuple[int, ...]]:
    """eth_call reads of every pool at every block (one batch per block)."""
    out: dict[tuple[str, int], tuple[int, ...]] = {}
    for block in blocks:
        calls: list[tuple[str, str, str, tuple[()]]] = []
        for p in h.dep.pools:
            if p.kind == "v2":
                calls.append(("UniswapV2Pair", p.address, "getReserves", ()))
            else:
                calls += [("UniswapV3Pool", p.address, "slot0", ()), ("UniswapV3Pool", p.address, "liquidity", ())]
        res = iter(h.client.call_many(calls, block=block))
        for p in h.dep.pools:
            if p.kind == "v2":
                r = next(res)
                out[(p.address.lower(), block)] = (int(r[0]), int(r[1]))
            else:
                s0, liq = next(res), next(res)
                out[(p.address.lower(), block)] = (int(s0[0]), int(s0[1]), int(liq[0]))
    return out


def check_states(h: Harness, blocks: range) -> int:
    history = replay_state(h.messages)
    truth = chain_states(h, blocks)
    checked = 0
    for p in h.dep.pools:
        pool = next(k for k in history if PoolId(k).address == p.address.lower())
        for block in blocks:
            assert state_at(history[pool], block) == truth[(p.address.lower(), block)], (p.label, block)
            checked += 1
    return checked


def check_ticks(h: Harness) -> None:
    history = replay_state(h.messages)
    for p in h.dep.pools_of(kind="v3"):
        pool = next(k for k in history if PoolId(k).address == p.address.lower())
        ours = {t: n for t, n in history[pool][-1][2].items() if n}
        chain = {t: i.liquidity_net for t, i in h.client.v3_initialized_ticks(p).items() if i.liquidity_net}
        assert ours == chain, p.label


# --------------------------------------------------------------------------- tests


async def test_live_ws_stream_survives_a_cut_connection(devnet_snapshot: Any, short_dir: Path) -> None:
    """Random activity over a WebSocket that is cut mid-stream: every log exactly once and in order,
    the same values eth_getLogs reports, and pool state equal to eth_call at every block."""
    h = Harness(devnet_snapshot, str(short_dir / "md.sock"))
    trader = Trader(h, seed=4)
    proxy = Proxy(int(h.dep.ws_url.rsplit(":", 1)[1]))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            runner = await start_collector(nursery, h, short_dir, proxy=proxy)
            start = await wait_bootstrapped(h)
            for _ in range(12):
                await h.run(trader.step)
            await h.wait_for_head(await h.run(h.client.block_number))
            proxy.stop()  # the collector's WebSocket drops; anvil keeps going
            for _ in range(8):
                await h.run(trader.step)
            await trio.sleep(0.3)
            await nursery.start(proxy.serve)  # back on the same port
            for _ in range(12):
                await h.run(trader.step)
            head = await h.run(h.client.block_number)
            expected = await h.run(chain_events, h, start + 1, head)
            # a collector that reconnects after the last trade backfills every log and publishes the
            # headers up to the head BEFORE it re-reads the pools: wait for the fresh snapshots too
            await h.until(lambda: h.snapshots_since_invalidation() >= followed(h.dep))
            await h.wait_for_events(len(expected), head)
            nursery.cancel_scope.cancel()
    got = h.tlvs(*EVENTS)
    assert got == expected  # exactly once, in (block, logIndex) order, the chain's values
    assert len(expected) > 40
    assert runner.failures >= 1 and runner.sessions >= 2
    invalidations = h.tlvs(StateInvalidation)
    assert {t.reason for t in invalidations} == {InvalidationReason.DISCONNECT}
    assert len(invalidations) == followed(h.dep)
    # after the invalidations: a fresh snapshot of every pool
    assert h.snapshots_since_invalidation() == followed(h.dep)
    # one message per transaction: its records share one tx and block, in log order
    for m in h.messages:
        if isinstance(m.tlvs[0], EVENTS):
            txs = {(t.block_number, getattr(t, "tx_hash", None)) for t in m.tlvs if hasattr(t, "tx_hash")}
            assert len(txs) <= 1 and [t.log_index for t in m.tlvs] == sorted(t.log_index for t in m.tlvs)
    assert any(len(m.tlvs) > 1 for m in h.messages if isinstance(m.tlvs[0], EVENTS))
    headers = [t.number for t in h.tlvs(BlockHeader)]
    assert headers == sorted(set(headers)) and headers[-1] == head
    assert set(range(start, head + 1)) <= set(headers)
    assert all(t.base_fee > 0 for t in h.tlvs(BlockHeader))
    assert await h.run(check_states, h, range(start, head + 1)) >= 15 * (head - start)
    await h.run(check_ticks, h)
    assert runner.follower is not None and runner.follower.backfilled_logs > 0  # the outage was backfilled


async def test_live_reorg_is_invalidated_then_corrected(devnet_snapshot: Any, short_dir: Path) -> None:
    """anvil_reorg replaces the last blocks (with other swaps): REORG invalidations come first,
    then the new branch's logs and fresh snapshots; state equals eth_call from the snapshot block to
    the new head."""
    from tools.devnet import artifacts
    from tools.devnet.actions import FAR_FUTURE_DEADLINE, Tx

    h = Harness(devnet_snapshot, str(short_dir / "md.sock"))
    trader = Trader(h, seed=11)
    d, c = h.dep, h.client
    me = d.funded_accounts[0]
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            runner = await start_collector(nursery, h, short_dir, [{"ws": d.ws_url}])
            start = await wait_bootstrapped(h)
            for _ in range(6):
                await h.run(trader.step)
            # two swaps on V2 venue a's WETH/USDC and V3 500 that the reorg will take away
            await h.run(lambda: c.v2_swap_exact_in("uniswap_v2_a", me, WETH, ["WETH", "USDC"]))
            await h.run(lambda: c.v3_swap_exact_in(me, "WETH", "USDC", 500, WETH))
            head = await h.run(c.block_number)
            await h.wait_for_head(head)
            # a header may come before its block's logs: the last swap's unit must be out too
            await h.until(lambda: any(t.block_number == head for t in h.tlvs(*EVENTS)))
            n_before = len(h.messages)
            # the new branch: a swap on venue b's WETH/DAI instead
            router = d.v2_venue("uniswap_v2_b").router
            data = artifacts.load("UniswapV2Router02").encode(
                "swapExactTokensForTokens", 3 * WETH, 0, [d.address_of("WETH"), d.address_of("DAI")], me,
                FAR_FUTURE_DEADLINE)
            out = await h.run(lambda: c.reorg(2, [(Tx(me, router, data, gas=300_000), 0)]))
            assert out["head"] == head
            await h.run(lambda: c.mine(1))
            new_head = head + 1
            await h.wait_for_head(new_head)
            await h.until(lambda: len(h.tlvs(PoolSnapshot)) >= followed(d) + 2)
            await trio.sleep(0.3)
            nursery.cancel_scope.cancel()
    after = records(h.messages[n_before:])
    fork = head - 1
    removed = {d.pool("uniswap_v2_a", "WETH", "USDC").address.lower(),
               d.pool("uniswap_v3", "WETH", "USDC", 500).address.lower()}
    invalid = [t for t in after if isinstance(t, StateInvalidation)]
    assert {t.pool.address for t in invalid} == removed
    assert all(t.reason == InvalidationReason.REORG and t.from_block == fork for t in invalid)
    first_other = next(i for i, t in enumerate(after) if not isinstance(t, StateInvalidation))
    assert all(isinstance(t, StateInvalidation) for t in after[:first_other]) and first_other == len(invalid)
    snaps = [t for t in after if isinstance(t, PoolSnapshot)]
    # snapshots at the newest canonical block when the collector reconciled: anvil announces the new
    # branch block by block, so that is the fork block itself when its head came before the next one
    # was made, else the replaced head (seen both ways: the new branch's first head alone, or both)
    snap_block = snaps[0].block_number if snaps else None
    assert {t.pool.address for t in snaps} == removed and all(t.block_number == snap_block for t in snaps)
    assert snap_block is not None and fork <= snap_block <= head, (fork, head, snap_block)
    new_branch = [t for t in after if isinstance(t, EVENTS)]
    assert new_branch and {t.pool.address for t in new_branch} == {d.pool("uniswap_v2_b", "WETH", "DAI").address.lower()}
    assert runner.follower is not None and runner.follower.reorgs >= 1
    # the canonical log stream: what was published, minus what the reorg took away
    kept: list[Any] = []
    for t in records(h.messages):
        if isinstance(t, StateInvalidation) and t.reason == InvalidationReason.REORG:
            kept = [e for e in kept if not (e.block_number >= t.from_block and e.pool == t.pool)]
        elif isinstance(t, EVENTS):
            kept.append(t)
    expected = await h.run(chain_events, h, start + 1, new_head)
    assert sorted(kept, key=lambda e: (e.block_number, e.log_index)) == expected
    await h.run(check_states, h, range(snap_block, new_head + 1))  # from the snapshot block on
    await h.run(check_ticks, h)


async def test_live_http_polling_after_failover(devnet_snapshot: Any, short_dir: Path) -> None:
    """First endpoint unreachable (a WebSocket nobody serves): the collector fails over to the
    HTTP endpoint, polls eth_blockNumber/eth_getLogs, and gets exactly the chain's logs."""
    from tools.devnet.anvil import free_port

    h = Harness(devnet_snapshot, str(short_dir / "md.sock"))
    trader = Trader(h, seed=23)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            runner = await start_collector(nursery, h, short_dir, [{"ws": f"ws://127.0.0.1:{free_port()}"}, {"http": h.dep.rpc_url}])
            start = await wait_bootstrapped(h)
            for _ in range(15):
                await h.run(trader.step)
            head = await h.run(h.client.block_number)
            expected = await h.run(chain_events, h, start + 1, head)
            await h.wait_for_events(len(expected), head)
            nursery.cancel_scope.cancel()
    assert h.tlvs(*EVENTS) == expected
    assert runner.failures >= 1 and runner.follower is not None and not runner.follower.streaming
    assert not h.tlvs(StateInvalidation)
    await h.run(check_states, h, range(start, head + 1))


class NodeProxy:
    """A WebSocket proxy between the collector and anvil at the JSON-RPC message level (real sockets at
    both ends). It can hold the answers to the priority-fee calls (``hold_fees``) until ``release_fees``,
    rewriting the fee they carry to ``fee_value``; with ``logs_first`` it passes a block's head only after
    a log of that block (a node may send them in either order: anvil mostly sends the head first): a head
    that comes first is held until the block's first log has passed, one that comes after one of its
    block's logs passes at once (held, it would wait for the next block's log or the collector's probe).
    ``sent`` records every notification passed on: (kind, block, time.time_ns() just before it was sent).
    ``log_gap`` (s) delays each log that follows a log of the same transaction (a node, or the network,
    slow between the two)."""

    FEE_METHODS = ("eth_maxPriorityFeePerGas", "eth_feeHistory")

    def __init__(self, upstream: str, *, logs_first: bool = False) -> None:
        self.upstream = upstream
        self.logs_first = logs_first
        self.port = 0
        self.hold_fees = False
        self.fee_value: int | None = None
        self.fee_requests = 0
        self.held: list[str] = []  # fee answers not passed on yet
        self._release = trio.Event()
        self.sent: list[tuple[str, int, int]] = []
        self._fee_ids: set[Any] = set()
        self.changes = Changes()  # at each fee request seen, answer held or answer passed on
        self.log_gap = 0.0
        self._last_tx: str | None = None

    async def until(self, predicate: Any, limit: float = 20.0) -> None:
        await self.changes.until(predicate, limit)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        from trio_websocket import serve_websocket

        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(serve_websocket, self._handle, "127.0.0.1", 0, None,
                                                           max_message_size=1 << 28))
            self.port = server.port
            task_status.started()

    def release_fees(self) -> None:
        self._release.set()
        self._release = trio.Event()

    async def _handle(self, request: Any) -> None:
        import json

        from trio_websocket import ConnectionClosed, open_websocket_url

        client = await request.accept()
        lock = trio.Lock()

        async def send(text: str) -> None:
            async with lock:
                await client.send_message(text)

        async def up(node: Any) -> None:
            while True:
                text = await client.get_message()
                msg = json.loads(text)
                for c in msg if isinstance(msg, list) else [msg]:
                    if c.get("method") in self.FEE_METHODS:
                        self._fee_ids.add(c["id"])
                        self.fee_requests += 1
                        self.changes.notify()
                await node.send_message(text)

        async def answer_fee(text: str) -> None:
            self.held.append(text)
            self.changes.notify()
            await self._release.wait()
            self.held.remove(text)
            await send(self._fee(text))
            self.changes.notify()

        async def notify(item: dict[str, Any], text: str) -> None:
            res = item["params"]["result"]
            kind = "log" if "logIndex" in res else "head"
            if kind == "log":
                if self.log_gap and res.get("transactionHash") == self._last_tx:
                    await trio.sleep(self.log_gap)
                self._last_tx = res.get("transactionHash")
            self.sent.append((kind, int(res["blockNumber" if kind == "log" else "number"], 16), time.time_ns()))
            await send(text)

        try:
            async with open_websocket_url(self.upstream, max_message_size=1 << 28) as node, \
                    trio.open_nursery() as nursery:
                nursery.start_soon(up, node)
                head: tuple[dict[str, Any], str] | None = None  # a head held until its block's log passed
                logged = -1  # the newest block a log of which has passed
                while True:
                    text = await node.get_message()
                    item = json.loads(text)
                    if not isinstance(item, dict):  # a batch's answers
                        if head is not None:
                            await notify(*head)
                            head = None
                        await send(text)
                        continue
                    if item.get("id") in self._fee_ids and self.fee_value is not None:
                        text = self._fee(text)
                    if item.get("id") in self._fee_ids and self.hold_fees:
                        nursery.start_soon(answer_fee, text)
                        continue
                    if item.get("method") != "eth_subscription":
                        if head is not None:
                            await notify(*head)
                            head = None
                        await send(text)
                        continue
                    res = item["params"]["result"]
                    if self.logs_first and "logIndex" not in res:
                        if head is not None:
                            await notify(*head)
                            head = None
                        if int(res["number"], 16) > logged:
                            head = (item, text)
                            continue
                    await notify(item, text)
                    if "logIndex" in res:
                        logged = max(logged, int(res["blockNumber"], 16))
                    if head is not None and int(res["blockNumber"], 16) >= int(head[0]["params"]["result"]["number"], 16):
                        await notify(*head)
                        head = None
        except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    def _fee(self, text: str) -> str:
        import json

        if self.fee_value is None:
            return text
        item = json.loads(text)
        if "result" in item:
            item["result"] = hex(self.fee_value)
        return json.dumps(item)


def published_block(h: Harness, block: int) -> bool:
    """Are ``block``'s header and (some of) its events on the relay?"""
    return (any(t.number == block for t in h.tlvs(BlockHeader))
            and any(t.block_number == block for t in h.tlvs(*EVENTS)))


def check_logs_before_next_header(h: Harness) -> None:
    """strategy/holdback.py's contract: every event of block N is on the relay before the header of N+1."""
    seen_header = 0
    for t in records(h.messages):
        if isinstance(t, BlockHeader):
            seen_header = max(seen_header, t.number)
        elif isinstance(t, EVENTS):
            assert t.block_number >= seen_header, (t, seen_header)


async def test_live_units_leave_without_waiting_for_the_fee_call_and_before_their_header(
        devnet_snapshot: Any, short_dir: Path) -> None:
    """The priority-fee call is never between a log and its unit's publication. Through a proxy that holds
    the node's answers to the fee calls and passes each block's head only after its logs: while a fee
    call hangs, every swap's unit is published, then its block's header (the head came while the unit was
    being read: it waits for the unit, not the other way round), with the fee known before; all of a
    block's records before the next block's header; once answered, the next header carries the new fee."""
    h = Harness(devnet_snapshot, str(short_dir / "md.sock"))
    d, c = h.dep, h.client
    me = d.funded_accounts[0]
    proxy = NodeProxy(d.ws_url, logs_first=True)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            # a held fee call never times out here (rpc_timeout beyond the test's own limit): a call that
            # timed out is given up and asked anew, so a slow run would see two held answers, both legitimate
            await start_collector(nursery, h, short_dir, proxy=proxy, rpc_timeout=120.0)
            await wait_bootstrapped(h)
            first_fee = h.tlvs(BlockHeader)[0].priority_fee
            asked = proxy.fee_requests  # the first header's, answered
            proxy.hold_fees = True
            swaps = []
            for k in range(4):
                if k % 2:  # a V2 swap: Swap and Sync of one transaction, one unit
                    await h.run(lambda: c.v2_swap_exact_in("uniswap_v2_a", me, WETH // 10, ["WETH", "USDC"]))
                else:
                    await h.run(lambda: c.v3_swap_exact_in(me, "WETH", "USDC", 500, WETH // 10))
                block = await h.run(c.block_number)
                swaps.append(block)
                await h.until(functools.partial(published_block, h, block))
                if k == 0:  # the refresh after the first header: asked, and hanging from now on
                    await proxy.until(lambda: proxy.held != [])
            assert len(proxy.held) == 1 and proxy.fee_requests == asked + 1  # one refresh at a time, unanswered
            proxy.hold_fees = False
            proxy.fee_value = first_fee + 12345
            proxy.release_fees()
            # the refresher asks again (the headers meanwhile made a refresh due) only after it took the answer
            await proxy.until(lambda: proxy.fee_requests >= asked + 2)
            await h.run(lambda: c.v3_swap_exact_in(me, "USDC", "WETH", 500, 100 * USDC))
            last = await h.run(c.block_number)
            await h.until(functools.partial(published_block, h, last))
            nursery.cancel_scope.cancel()
    where: dict[tuple[str, int], int] = {}
    for i, m in enumerate(h.messages):
        for t in m.tlvs:
            key = ("header", t.number) if isinstance(t, BlockHeader) else (("unit", t.block_number)
                                                                          if isinstance(t, EVENTS) else None)
            if key is not None:
                where.setdefault(key, i)
    for block in swaps + [last]:
        assert where[("unit", block)] < where[("header", block)], block
    for m in h.messages:  # one transaction per message (the V2 swaps' two records together)
        if isinstance(m.tlvs[0], EVENTS):
            assert len({t.block_number for t in m.tlvs}) == 1
            assert len({t.tx_hash for t in m.tlvs if hasattr(t, "tx_hash")}) == 1
    v2 = [[type(t) for t in m.tlvs] for m in h.messages if isinstance(m.tlvs[0], (V2Swap, V2Reserves))]
    assert v2 == [[V2Reserves, V2Swap]] * 2  # Sync and Swap: one transaction, never half of it
    check_logs_before_next_header(h)
    fees = {t.number: t.priority_fee for t in h.tlvs(BlockHeader)}
    assert [fees[b] for b in swaps] == [first_fee] * 4  # published with the estimate there was
    assert fees[last] == first_fee + 12345


async def test_live_a_busy_collector_never_publishes_half_a_transaction(devnet_snapshot: Any,
                                                                        short_dir: Path) -> None:
    """A V2 swap's Sync and Swap are one unit even when the second log comes 10 ms after the first while
    the collector's process is busy (here a task that is always runnable): a busy process is not a drained
    stream (until DRAIN_PATIENCE). Before, the drain check gave up after DRAIN_LIMIT and published the Sync
    alone, then the header, then the Swap (seen under load)."""
    h = Harness(devnet_snapshot, str(short_dir / "md.sock"))
    d, c = h.dep, h.client
    me = d.funded_accounts[0]
    proxy = NodeProxy(d.ws_url)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            runner = await start_collector(nursery, h, short_dir, proxy=proxy)
            await wait_bootstrapped(h)
            proxy.log_gap = 0.01
            assert process.DRAIN_LIMIT < proxy.log_gap < process.DRAIN_PATIENCE
            spinning = True

            async def busy() -> None:
                while spinning:
                    await trio.lowlevel.checkpoint()

            nursery.start_soon(busy)
            for _ in range(2):
                await h.run(lambda: c.v2_swap_exact_in("uniswap_v2_a", me, WETH // 10, ["WETH", "USDC"]))
                block = await h.run(c.block_number)
                await h.until(lambda b=block: len([t for t in h.tlvs(V2Swap) if t.block_number == b]) == 1)
            spinning = False
            nursery.cancel_scope.cancel()
    assert runner.drain_cut > 0  # the busy path was taken
    v2 = [[type(t) for t in m.tlvs] for m in h.messages if isinstance(m.tlvs[0], (V2Swap, V2Reserves))]
    assert v2 == [[V2Reserves, V2Swap]] * 2


async def test_live_block_unit_is_stamped_when_the_next_block_completed_it(devnet_snapshot: Any,
                                                                           short_dir: Path) -> None:
    """``receive_time_ns`` of a market-data message is when the collector had received its data from the node
    (specs/protocol.md). In ``block`` units a block's unit is complete only once the next block's head or log
    has come: its stamp is that notification's arrival -- after the proxy passed it on -- not its first
    log's (a block time old on arrival, which a strategy's max-age check would take for old news); a
    header's, after its head was passed on."""
    h = Harness(devnet_snapshot, str(short_dir / "md.sock"))
    d, c = h.dep, h.client
    me = d.funded_accounts[0]
    proxy = NodeProxy(d.ws_url)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await start_stack(nursery, h, short_dir)
            await nursery.start(proxy.serve)
            await nursery.start(functools.partial(process.run, config_for(h, short_dir, [{"ws": proxy.ws_url}],
                                                                          publish_unit="block"), socket_path=h.sock))
            await wait_bootstrapped(h)
            blocks = []
            for _ in range(4):
                await h.run(lambda: c.v2_swap_exact_in("uniswap_v2_b", me, WETH // 10, ["WETH", "DAI"]))
                blocks.append(await h.run(c.block_number))
                await trio.sleep(0.05)  # the unit waits for the next block: its publication is >= 50 ms later
            await h.until(lambda: any(t.block_number == blocks[-2] for t in h.tlvs(*EVENTS)))
            nursery.cancel_scope.cancel()
    first_sent = {}
    for kind, block, at in proxy.sent:
        first_sent.setdefault((kind, block), at)
    checked = 0
    for m in h.messages:
        t = m.tlvs[0]
        if isinstance(t, BlockHeader) and ("head", t.number) in first_sent:
            assert first_sent[("head", t.number)] <= m.receive_time_ns
        if isinstance(t, EVENTS) and t.block_number in blocks[:-1]:
            n = t.block_number
            nxt = min(at for (kind, b), at in first_sent.items() if b > n)
            assert first_sent[("log", n)] < nxt <= m.receive_time_ns, (n, m.receive_time_ns - nxt)
            checked += 1
    assert checked == 3
    check_logs_before_next_header(h)


# --------------------------------------------------------------------------- config (no chain needed)


def test_live_config_errors_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def err(data: dict[str, Any]) -> str:
        with pytest.raises(ConfigError) as info:
            parse_config(data)
        return info.value.path

    pool = {"venue": "uniswap_v3", "address": "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"}
    ok = {"chain": [{"name": "ethereum", "endpoints": [{"ws": "wss://x"}], "pools": [pool]}]}
    cfg = parse_config(ok)
    (chain,) = cfg.chains
    assert (chain.chain_id, chain.gas_token) == (1, "ETH")
    assert chain.factory("uniswap_v2").address == "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f"
    assert chain.factory("uniswap_v3").address == "0x1F98431c8aD98523631AE4a59f267346ea31F984"
    assert err({"chain": [{"name": "ethereum", "pools": [pool]}]}) == "chain[0].endpoints"
    assert err({"chain": [{"name": "ethereum", "endpoints": [{"wss": "x"}], "pools": [pool]}]}) == "chain[0].endpoints[0].wss"
    assert err({"chain": [{"name": "ethereum", "endpoints": [{"ws": "http://x"}], "pools": [pool]}]}) == "chain[0].endpoints[0].ws"
    assert err({"chain": [{"name": "mychain", "endpoints": [{"ws": "ws://x"}], "pools": [pool]}]}) == "chain[0].chain_id"
    assert err({"chain": [{**ok["chain"][0], "poll_interval": "fast"}]}) == "chain[0].poll_interval"
    assert err({"chain": [{**ok["chain"][0], "pools": [{"venue": "uniswap_v3", "tokens": ["0x" + "1" * 40, "0x" + "2" * 40]}]}]}) == "chain[0].pools[0].fee"
    assert err({**ok, "sourceid": 3}) == "sourceid"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[chain]]\nname = "base"\nendpoints = [{ ws = "wss://x", htp = "https://y" }]\n')
    with pytest.raises(ConfigError):
        load_config(bad)
    assert process.main(["--config", str(bad)]) == 2
    assert "chain[0].endpoints[0].htp" in capsys.readouterr().err


def test_endpoint_urls_can_be_named_by_a_file_or_an_environment_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = {"venue": "uniswap_v3", "address": "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"}
    (tmp_path / "ws").write_text("wss://eth.example/ws/" + "cd" * 32 + "\n")  # an API key in the URL
    monkeypatch.setenv("AP_TEST_HTTP_URL", "https://eth.example/rpc?apikey=k")

    def chain(endpoint: dict[str, str]) -> dict[str, Any]:
        return {"chain": [{"name": "ethereum", "endpoints": [endpoint], "pools": [pool]}]}

    (c,) = parse_config(chain({"ws_file": str(tmp_path / "ws"), "http_env": "AP_TEST_HTTP_URL"})).chains
    assert c.endpoints[0].ws == "wss://eth.example/ws/" + "cd" * 32
    assert c.endpoints[0].http == "https://eth.example/rpc?apikey=k"
    assert "cd" * 32 not in c.endpoints[0].label
    for endpoint, path, words in (
            ({"ws_file": str(tmp_path / "absent")}, "chain[0].endpoints[0].ws_file", "cannot read the ws URL"),
            ({"http_env": "AP_TEST_NO_SUCH_VARIABLE"}, "chain[0].endpoints[0].http_env", "is not set"),
            ({"ws": "wss://x", "ws_env": "AP_TEST_HTTP_URL"}, "chain[0].endpoints[0].ws_env", "give one of"),
            ({"ws_env": "AP_TEST_HTTP_URL"}, "chain[0].endpoints[0].ws", "expected a ws:// or wss:// URL")):
        with pytest.raises(ConfigError, match=words) as info:
            parse_config(chain(endpoint))
        assert info.value.path == path and "apikey=k" not in str(info.value)


async def test_live_cli_process_publishes_and_stops_on_sigterm(devnet_snapshot: Any, short_dir: Path) -> None:
    """``python -m tools.cli collector evm --config FILE`` as a real process: bootstraps from a devnet
    deployment file, streams a swap, exits 0 on SIGTERM."""
    import signal
    import subprocess
    import sys

    from chain.deployment import save_deployment

    h = Harness(devnet_snapshot, str(short_dir / "md.sock"))
    dep_path = save_deployment(short_dir / "deployment.json", [h.dep])
    cfg = short_dir / "evm.toml"
    cfg.write_text(f'source_id = 4242\n\n[[chain]]\nname = "devnet"\ndeployment = "{dep_path}"\n')
    repo = REPO
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            await start_stack(nursery, h, short_dir)
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "tools.cli", "collector", "evm", "--config", str(cfg), "--socket", h.sock,
                 "--log-level", "WARNING"], cwd=repo, stdout=subprocess.DEVNULL)
            try:
                await wait_bootstrapped(h)
                me = h.dep.funded_accounts[0]
                await h.run(lambda: h.client.v2_swap_exact_in("uniswap_v2_b", me, WETH, ["WETH", "DAI"]))
                await h.until(lambda: len(h.tlvs(V2Swap)) == 1)
            finally:
                proc.send_signal(signal.SIGTERM)  # by our child's PID
                with trio.move_on_after(10):
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            nursery.cancel_scope.cancel()
    assert proc.returncode == 0
    assert {m.source_id for m in h.messages} == {4242}


async def test_endpoint_failures_are_logged_without_the_urls_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 17: RPC URLs with credentials or API keys appeared in the collector's warnings. A node that
    refuses the WebSocket upgrade (echoing the request, key included, in its answer) and answers the
    HTTP fail-over with a 403: each failure is a warning naming the endpoint redacted, and no part of
    either URL's user info, path or query is in the log."""
    import logging

    async def node(stream: trio.SocketStream) -> None:
        request = b""
        with trio.move_on_after(2):
            while b"\r\n\r\n" not in request:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                request += chunk
        body = request.split(b"\r\n", 1)[0]  # "GET /v3/<key>?apikey=... HTTP/1.1", echoed back
        await stream.send_all(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: "
                              + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(functools.partial(trio.serve_tcp, node, 0, host="127.0.0.1"))
        port = listener.socket.getsockname()[1]
        pool = {"venue": "uniswap_v3", "address": "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"}
        cfg = parse_config({"chain": [{
            "name": "ethereum", "backoff_initial": 0.05, "backoff_max": 0.1, "rpc_timeout": 2.0, "pools": [pool],
            "endpoints": [{"ws": f"ws://wsuser:wsPa55@127.0.0.1:{port}/v3/WsKey0123?apikey=WsQuery9"},
                          {"http": f"http://htuser:htPa55@127.0.0.1:{port}/v3/HtKey4567?apikey=HtQuery8"}]}]})
        runner = process.ChainRunner(cfg.chains[0], publish=None)  # type: ignore[arg-type]
        with caplog.at_level(logging.WARNING, logger="collectors.evm"):
            with trio.move_on_after(10):
                while runner.failures < 4:
                    with trio.move_on_after(0.5):
                        await runner.run()
        nursery.cancel_scope.cancel()
    assert runner.failures >= 2, caplog.text
    assert f"endpoint ws://***@127.0.0.1:{port}/***?*** failed" in caplog.text
    assert f"endpoint http://***@127.0.0.1:{port}/***?*** failed" in caplog.text
    for secret in ("wsuser", "wsPa55", "WsKey0123", "WsQuery9", "htuser", "htPa55", "HtKey4567", "HtQuery8"):
        assert secret not in caplog.text, (secret, caplog.text)
