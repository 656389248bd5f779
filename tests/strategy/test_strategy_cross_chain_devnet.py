"""Cross-chain arbitrage on the real two-chain devnet (two anvils, the official Uniswap contracts).

* The sizing core: the gap the devnet scripts (WETH 1.5 % dearer on the second chain) is sized from
  both chains' V2 pairs as read from the chain, and both legs, executed through each chain's own
  Router02, give exactly the amounts the core quoted.
* The strategy process live: both chains' collectors publish on one market-data relay, the strategy
  process (``alphapulse strategy`` with a ``[cross_chain]`` section) publishes on a signal relay;
  a price gap the test scripts is found, and the published signal's size and net profit equal the
  test's own integer arithmetic on the market data the strategy applied (read back from the relay).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from math import isqrt
from pathlib import Path
from typing import Any

import pytest
import trio
from relay_testkit import Changes

from market.pools import V2Pool
from protocol.header import Domain
from protocol.ids import PoolId, TokenId, Venue, VenueKind
from protocol.market import BlockHeader, PoolSnapshot, V2Reserves
from protocol.message import Message
from protocol.signals import (
    ArbitragePath,
    CrossChainArbitrage,
    DecisionPoint,
    Economics,
    SignalIdentity,
    SignalKind,
)
from protocol.system import TraceContext
from relays.client import RelayConsumer
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


# --------------------------------------------------------------------------- live: the strategy process

ROOT = Path(__file__).resolve().parents[2]
K_MILLI, FLOOR_PPB, WINDOW_S = 2000, 20_000, 300
BLOCK_MS, INCLUSION = {A: 2000, B: 250}, {A: 1, B: 3}
GAS_UNITS = {A: 150_000, B: 120_000}
BRIDGE_FEE_BPS, BRIDGE_GAS, REBALANCE_EVERY, MIN_NET = 1, 80_000, 10, 10**6


def _up(a: int, b: int) -> int:
    return -(-a // b)


def _isqrt_up(n: int) -> int:
    s = isqrt(n)
    return s if s * s == n else s + 1


def _v2_out(x: int, r_in: int, r_out: int) -> int:
    return x * 997 * r_out // (r_in * 1000 + x * 997)


def _by_hand(applied: list[Message], usdc_is_token0: dict[PoolId, bool], signal_x: int) -> dict[str, Any]:
    """Replay, by hand, the market data the strategy applied up to the signal's cause: each chain's gas
    price (its newest header: base fee + priority fee), each pool's reserves and price history (the
    collector's receive stamps), each chain's position; then sigma, every cost, the continuous optimum
    and the best integer size around it."""
    gas: dict[int, int] = {}
    head: dict[int, int] = {}
    reserves: dict[PoolId, tuple[int, int]] = {}
    mark: dict[PoolId, tuple[int, int]] = {}
    history: dict[PoolId, list[tuple[int, int, int]]] = {p: [] for p in usdc_is_token0}
    pos: dict[int, tuple[int, int]] = {}
    for m in applied:
        for r in m.tlvs:
            if type(r) is BlockHeader:
                gas[r.chain_id] = r.base_fee + r.priority_fee
                head[r.chain_id] = r.number
            elif type(r) in (PoolSnapshot, V2Reserves) and r.pool in usdc_is_token0:
                snap = type(r) is PoolSnapshot
                at = (r.block_number, 0xFFFFFFFF if snap else r.log_index)
                own = (r.block_number, 1 << 32) if snap else at  # a snapshot covers its whole block
                if r.pool in mark and (r.block_number < mark[r.pool][0] if snap else own <= mark[r.pool]):
                    continue  # older than the state held: not applied
                mark[r.pool] = own
                reserves[r.pool] = (r.reserve0, r.reserve1)
                history[r.pool].append((m.receive_time_ns, r.reserve0, r.reserve1))
                pos[r.pool.chain_id] = max(pos.get(r.pool.chain_id, (0, 0)), at)
    now = applied[-1].receive_time_ns

    def usdc_weth(pool: PoolId, r0: int, r1: int) -> tuple[int, int]:
        return (r0, r1) if usdc_is_token0[pool] else (r1, r0)

    def sigma(pool: PoolId) -> int:
        """sum(r^2) * 1e9 / sum(dt) over the window's returns of USDC per WETH, ppb; at least the floor."""
        r2 = dt = 0
        prev: tuple[int, int, int] | None = None
        for t, r0, r1 in history[pool]:
            u, w = usdc_weth(pool, r0, r1)
            if prev is not None and t <= prev[0]:
                continue
            if prev is not None and t > now - WINDOW_S * 10**9:
                t0, u0, w0 = prev
                ret = (u * w0 - u0 * w) * 10**9 // (u0 * w)
                r2, dt = r2 + ret * ret, dt + t - t0
            prev = (t, u, w)
        return max(FLOOR_PPB, _isqrt_up(r2 * 10**9 // dt) if dt else 0)

    pa = next(p for p in usdc_is_token0 if p.chain_id == A)
    pb = next(p for p in usdc_is_token0 if p.chain_id == B)
    (ua, wa), (ub, wb) = usdc_weth(pa, *reserves[pa]), usdc_weth(pb, *reserves[pb])
    src, dst = (pa, pb) if ua * wb < ub * wa else (pb, pa)  # the source: fewer USDC per WETH
    (us, ws), (ud, wd) = usdc_weth(src, *reserves[src]), usdc_weth(dst, *reserves[dst])
    cs, cd = src.chain_id, dst.chain_id
    sig = max(sigma(pa), sigma(pb))
    t_ms = max(INCLUSION[A] * BLOCK_MS[A], INCLUSION[B] * BLOCK_MS[B])
    sqrt_t = _isqrt_up(t_ms * 10**9)
    gas_s = _up(GAS_UNITS[cs] * gas[cs] * us, ws)  # wei of WETH in USDC at the pool's mid price, rounded up
    gas_d = _up(GAS_UNITS[cd] * gas[cd] * ud, wd)
    bridge_gas = _up(_up(BRIDGE_GAS * gas[cd] * ud, wd), REBALANCE_EVERY)

    def variable(x: int) -> int:
        z = _v2_out(_v2_out(x, us, ws), wd, ud)
        return z - x - _up(x * BRIDGE_FEE_BPS, 10_000) - _up(K_MILLI * sig * sqrt_t * x, 10**18)

    # the continuous optimum of z(x) - (1 + phi) x with z(x) = a x / (b + c x): x* = (sqrt(a b / (1 + phi)) - b) / c
    a, b, c = 997 * ud * 997 * ws, 1000 * wd * 1000 * us, 1000 * wd * 997 + 997 * 997 * ws
    phi = Fraction(BRIDGE_FEE_BPS, 10_000) + Fraction(K_MILLI * sig * sqrt_t, 10**18)
    x_star = (isqrt(int(Fraction(a * b) / (1 + phi))) - b) // c
    best = max(variable(x) for x in range(x_star - 3000, x_star + 3001))
    fixed = gas_s + gas_d + bridge_gas
    base = _v2_out(signal_x, us, ws)
    return {"src": src, "dst": dst, "sigma": sig, "x_star": x_star, "best": best - fixed,
            "net_at": variable(signal_x) - fixed, "base_at": base, "out_at": _v2_out(base, wd, ud),
            "gas": (gas[cs], gas[cd]), "costs": (gas_s, gas_d, bridge_gas), "fee": _up(signal_x * BRIDGE_FEE_BPS, 10_000),
            "drift": _up(K_MILLI * sig * sqrt_t * signal_x, 10**18), "blocks": _up(t_ms, min(BLOCK_MS.values())),
            "pos": pos, "known": {cid: max(pos[cid][0], head[cid] - 1) for cid in (A, B)}}


class _Stack:
    """Two relays, the strategy process and one collector per chain, each a real process we started
    (and stop by its own handle)."""

    def __init__(self, d: Path) -> None:
        self.d = d
        self.md, self.sg = str(d / "md.sock"), str(d / "sg.sock")
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, args: list[str], ready: str | None = None) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        with open(self.d / f"{name}.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "tools.cli", *args], cwd=ROOT, env=env, stdout=log,
                                    stderr=log)
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while ready is not None and ready not in self.log(name):
            assert proc.poll() is None, f"{name} exited: {self.log(name)}"
            assert time.monotonic() < deadline, f"{name}: no {ready!r} in {self.log(name)}"
            time.sleep(0.05)

    def log(self, name: str) -> str:
        return (self.d / f"{name}.log").read_text(errors="replace")

    def start(self, nets: dict[int, Any], pools: dict[int, Any], strategy_toml: str) -> None:
        for dom, sock in (("market_data", self.md), ("signal", self.sg)):
            self.spawn(f"relay-{dom}", ["relay", "--domain", dom, "--socket", sock, "--data-dir", str(self.d / dom),
                                        "--fsync", "off"])
        deadline = time.monotonic() + 30
        while not (Path(self.md).exists() and Path(self.sg).exists()):
            assert time.monotonic() < deadline and all(p.poll() is None for p in self.procs), "relays did not start"
            time.sleep(0.02)
        (self.d / "strategy.toml").write_text(strategy_toml)
        self.spawn("strategy", ["strategy", "--config", str(self.d / "strategy.toml"), "--max-age-ms", "0"],
                   "strategy xc running")
        for i, cid in enumerate((A, B)):  # each chain's own collector, both on the one market-data relay
            dep, p = nets[cid].deployment, pools[cid]
            (self.d / f"collector-{cid}.toml").write_text(f"""source_id = {0x4500 + i + 1}
relay_socket = "{self.md}"
[[chain]]
name = "chain{cid}"
chain_id = {cid}
gas_token = "ETH"
endpoints = [{{ ws = "{dep.ws_url}", http = "{dep.rpc_url}" }}]
pools = [{{ venue = "uniswap_v2_a", address = "{p.address}", tokens = ["{p.token0}", "{p.token1}"] }}]
""")
            self.spawn(f"collector-{cid}", ["collector", "evm", "--config", str(self.d / f"collector-{cid}.toml")],
                       "connected to")

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _strategy_toml(nets: dict[int, Any], pools: dict[int, Any], md: str, sg: str) -> str:
    weth = {cid: net.deployment.address_of("WETH") for cid, net in nets.items()}
    usdc = {cid: net.deployment.address_of("USDC") for cid, net in nets.items()}
    chains = "".join(f'[[chains]]\nchain_id = {cid}\ngas_token = "{weth[cid]}"\npools = ["{pools[cid].address}"]\n'
                     for cid in (A, B))  # a one-pool shard per chain: no cycle, only the cross-chain pair
    assets = "".join(f'[[assets]]\nname = "{name}"\ntokens = [' + ", ".join(
        f'{{ chain_id = {cid}, address = "{addr[cid]}" }}' for cid in (A, B)) + "]\n"
        for name, addr in (("WETH", weth), ("USDC", usdc)))
    legs = "".join(f"[[cross_chain.chains]]\nchain_id = {cid}\nblock_time_ms = {BLOCK_MS[cid]}\n"
                   f"inclusion_blocks = {INCLUSION[cid]}\ngas_units = {GAS_UNITS[cid]}\n"
                   f"inventory = {{ base = {10**21}, quote = {10**12} }}\n" for cid in (A, B))
    return f"""[strategy]
name = "xc"
max_hops = 2
[relays]
market_data = "{md}"
signal = "{sg}"
{chains}{assets}
[cross_chain]
base = "WETH"
quote = "USDC"
pairs = [["{pools[A].address}", "{pools[B].address}"]]
bridge_id = 1
bridge_fee_bps = {BRIDGE_FEE_BPS}
bridge_gas_units = {BRIDGE_GAS}
rebalance_every = {REBALANCE_EVERY}
drift_k_milli = {K_MILLI}
sigma_window_s = {WINDOW_S}
sigma_floor_ppb = {FLOOR_PPB}
min_net_profit = {MIN_NET}
{legs}"""


class _Feed:
    """Everything a relay holds, from its first message, as it arrives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.changes = Changes()

    async def read(self, domain: Domain, sock: str) -> None:
        async with RelayConsumer.connect(domain, sock, from_seq=0, name=f"test-{domain.name.lower()}") as consumer:
            async for m in consumer:
                self.messages.append(m)
                self.changes.notify()

    async def until(self, cond: Any, limit: float = 60.0) -> None:
        await self.changes.until(cond, limit)


async def test_the_strategy_process_finds_a_scripted_gap_sized_and_priced_by_hand(chains):
    na, nb = chains
    nets = {A: na, B: nb}
    usdc_is_token0: dict[PoolId, bool] = {}
    pools, pids = {}, {}
    for cid, net in nets.items():
        d = net.deployment
        p = pools[cid] = d.pool("uniswap_v2_a", "WETH", "USDC")
        pids[cid] = PoolId.of(cid, Venue.DEVNET_V2_A, VenueKind.UNISWAP_V2, p.address, p.token0, p.token1)
        usdc_is_token0[pids[cid]] = p.token0.lower() == d.address_of("USDC").lower()
    trader = nb.deployment.funded_accounts[1]

    def buy_weth_on_b(per_mille_of_usdc: int) -> None:
        r0, r1, _ = nb.client.v2_reserves(pools[B])
        pool_usdc = r0 if usdc_is_token0[pids[B]] else r1
        nb.client.v2_swap_exact_in("uniswap_v2_a", trader, pool_usdc * per_mille_of_usdc // 1000, ["USDC", "WETH"])

    # The scripted gap: WETH bought on B with 1.5 % of the pool's USDC, before anything watches (~3 % dearer).
    buy_weth_on_b(15)
    d = Path(tempfile.mkdtemp(prefix="xcs", dir="/tmp"))  # Unix socket paths must stay short
    stack = _Stack(d)
    market, signals = _Feed(), _Feed()

    def cross() -> list[Message]:
        return [m for m in signals.messages if m.find(SignalIdentity).kind == SignalKind.CROSS_CHAIN]

    async def check(sig: Message) -> dict[str, Any]:
        """The signal against the test's own arithmetic on the market data up to its cause."""
        assert [type(t) for t in sig.tlvs] == [SignalIdentity, Economics, ArbitragePath, CrossChainArbitrage,
                                               DecisionPoint, TraceContext]
        ident, econ, path, xc, point, trace = sig.tlvs
        cause = (trace.trace_id >> 64, trace.trace_id & ((1 << 64) - 1))  # (source id, seq) of the cause

        def upto() -> int | None:
            return next((i for i, m in enumerate(market.messages) if (m.source_id, m.source_seq) == cause), None)

        # The signal can reach us before its cause does: the strategy read the cause from the market-data
        # relay, decided and published through the signal relay while our own market-data consumer (another
        # connection, catching up from seq 0) had not read it yet; which of our two connections is served
        # first is the scheduler's choice under load. The replay must cover exactly what the strategy
        # applied, so wait for the cause (looking it up at once raised StopIteration when it lagged).
        await market.until(lambda: upto() is not None)
        last = upto()
        assert last is not None
        x = path.hops[0].amount_in
        hand = _by_hand(market.messages[:last + 1], usdc_is_token0, x)
        # the size: at the continuous optimum (to 2 units), its net within the staircase's 2 units of the best
        assert abs(x - hand["x_star"]) <= 2, (x, hand["x_star"])
        assert hand["best"] - 2 <= econ.net_profit == hand["net_at"] <= hand["best"], (econ, hand)
        assert econ.net_profit >= MIN_NET
        # every term
        src, dst = hand["src"], hand["dst"]
        assert (ident.chain_id, xc.source_chain, xc.dest_chain) == (src.chain_id, src.chain_id, dst.chain_id)
        assert (path.hops[0].pool, path.hops[1].pool) == (src, dst)
        assert (path.hops[0].amount_out, path.hops[1].amount_in, path.hops[1].amount_out) == (
            hand["base_at"], hand["base_at"], hand["out_at"])
        gas_s, gas_d, bridge_gas = hand["costs"]
        assert econ.gross_profit == hand["out_at"] - x and econ.gas_cost == gas_s + gas_d
        assert econ.flash_fee == xc.bridge_cost == hand["fee"] + bridge_gas
        assert econ.slippage_allowance == hand["drift"]
        assert econ.profit_token == TokenId.of(src.chain_id, nets[src.chain_id].deployment.address_of("USDC"))
        assert econ.gas_units == GAS_UNITS[A] + GAS_UNITS[B] and econ.gas_price_wei == 0
        assert (xc.source_gas_cost, xc.dest_gas_cost) == (GAS_UNITS[src.chain_id] * hand["gas"][0],
                                                          GAS_UNITS[dst.chain_id] * hand["gas"][1])
        assert (xc.bridge, xc.timing_risk_blocks) == (1, hand["blocks"]) and hand["blocks"] == 8  # 2 s / 250 ms
        assert ident.block_number == hand["known"][src.chain_id]
        assert (point.block_number, point.log_index) == hand["pos"][dst.chain_id]
        return hand

    try:
        await trio.to_thread.run_sync(stack.start, nets, pools, _strategy_toml(nets, pools, stack.md, stack.sg))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(market.read, Domain.MARKET_DATA, stack.md)
            nursery.start_soon(signals.read, Domain.SIGNAL, stack.sg)
            try:
                await signals.until(lambda: cross())
            except trio.TooSlowError:  # say why: the same market data through an engine here
                from strategy.config import load_config
                from strategy.engine import StrategyEngine

                e = StrategyEngine(load_config(d / "strategy.toml"))
                for m in market.messages:
                    e.on_message(m, m.receive_time_ns)
                raise AssertionError(f"no cross-chain signal from {len(market.messages)} market messages: "
                                     f"{dict(e.stats)}; strategy log: {stack.log('strategy')[-2000:]}") from None
            first = await check(cross()[0])
            assert first["src"].chain_id == A and first["sigma"] == FLOOR_PPB  # one price per pool: the floor
            await trio.sleep(1.0)  # a measurable interval; nothing moved meanwhile: no second signal
            assert len(cross()) == 1, cross()
            # WETH a little dearer still on B (+~0.1 %): a new state, a new signal, sigma measured from the move
            await trio.to_thread.run_sync(buy_weth_on_b, 1)
            await signals.until(lambda: len(cross()) >= 2)
            second = await check(cross()[1])
            assert second["src"].chain_id == A and second["sigma"] > FLOOR_PPB
            assert cross()[1].find(ArbitragePath).hops[0].amount_in != cross()[0].find(ArbitragePath).hops[0].amount_in
            await trio.sleep(0.5)
            assert len(cross()) == 2
            nursery.cancel_scope.cancel()
    finally:
        stack.stop()
        if not os.environ.get("KEEP"):
            shutil.rmtree(d, ignore_errors=True)
