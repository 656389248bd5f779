"""The executor end to end on the anvil devnet with the official Uniswap contracts.

Real relays (in-process relay servers on Unix sockets), the strategy engine as a real process
(``STRATEGY_SCRIPT`` below: ``strategy/process.py`` does not exist yet, so a minimal shell runs
``strategy.engine.StrategyEngine`` between the relays), the executor as a real process
(``python -m tools.cli executor --config ...``), AlphaPulseArb deployed from its committed artifact
and owned by a key that exists only in an encrypted keystore.

Market data: the EVM collector is not used (``collectors/evm`` is still being written by others);
the test reads the pools from the chain and publishes ``PoolSnapshot`` + ``BlockHeader`` to the
market-data relay itself (:meth:`Harness.publish_market`).

Every test reverts the chain to the deployment (evm_snapshot/evm_revert) and gets fresh relays
and processes, so the executor's SQLite state always matches the chain.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from arb_testkit import FAR_FUTURE, MAX_UINT256, Chain, abi_call
from eth_utils import to_checksum_address

from execution.build import load_artifact
from execution.calldata import Kind, encode_constructor_args, encode_set_factory
from execution.keystore import create_keystore, keystore_address
from execution.store import ExecutorStore
from protocol.execution import ExecutionResult, ExecutionStarted, Outcome
from protocol.header import Domain
from protocol.ids import PoolId, TokenId, Venue, VenueKind
from protocol.market import BlockHeader, InvalidationReason, PoolSnapshot, StateInvalidation, TickLiquidity
from protocol.message import Message
from protocol.signals import ArbitragePath, Economics, SignalIdentity
from protocol.system import EmergencyStop, Resume, StopScope
from relays.client import RelayConsumer, RelayProducer
from tools.devnet.builder_standin import BuilderStandin

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "devnet-only-password"
VENUES = {"uniswap_v2_a": Venue.DEVNET_V2_A, "uniswap_v2_b": Venue.DEVNET_V2_B, "uniswap_v3": Venue.DEVNET_V3}

STRATEGY_SCRIPT = r'''
import sys, time, trio
from protocol.header import Domain
from relays.client import RelayConsumer, RelayProducer
from strategy.config import load_config
from strategy.engine import StrategyEngine

async def main(cfg_path, md_sock, sig_sock):
    cfg = load_config(cfg_path)
    engine = StrategyEngine(cfg, first_signal_id=time.time_ns() & ((1 << 62) - 1))
    async with RelayProducer.connect(Domain.SIGNAL, sig_sock, source_id=cfg.source_id, name="strategy") as p:
        async with RelayConsumer.connect(Domain.MARKET_DATA, md_sock, from_seq=0, name="strategy") as c:
            print("strategy: running", flush=True)
            async for msg in c:
                for out in engine.on_message(msg, time.time_ns()):
                    await p.publish(list(out.tlvs), event_time_ns=out.event_time_ns)
                    print("strategy: signal", out.tlvs[0].signal_id, flush=True)

trio.run(main, *sys.argv[1:4])
'''


async def until(cond: Any, wait_s: float = 20.0) -> None:
    with trio.fail_after(wait_s):
        while not cond():  # noqa: ASYNC110 - polling the chain or a log file: nothing to wait on
            await trio.sleep(0.02)


# --------------------------------------------------------------------------- module fixtures


@pytest.fixture(scope="module")
def world(devnet: Any) -> Iterator[dict[str, Any]]:
    """The executor's key (keystore only), AlphaPulseArb owned by it, and the market addresses."""
    dep = devnet.deployment
    chain = Chain(dep.rpc_url)
    base_snap = chain.snapshot()
    d = Path(tempfile.mkdtemp(prefix="apx-", dir="/tmp"))
    try:
        (d / "password").write_text(PASSWORD + "\n")
        ks = d / "keystore.json"
        owner = create_keystore(ks, PASSWORD, kdf="pbkdf2", iterations=2)  # cheap KDF: tests only
        assert keystore_address(ks) == owner
        chain.rpc("anvil_setBalance", owner, hex(10**21))
        chain.rpc("anvil_impersonateAccount", owner)  # deploy as the owner without touching the key
        recipient = chain.accounts()[4]
        art = load_artifact()
        code = bytes.fromhex(art["bytecode"][2:]) + encode_constructor_args(recipient)
        arb = to_checksum_address(chain.send(owner, None, code, gas=10_000_000)["contractAddress"])
        for v in dep.v2:
            chain.send(owner, arb, encode_set_factory(v.factory, Kind.V2))
        chain.send(owner, arb, encode_set_factory(dep.v3.factory, Kind.V3))
        chain.send(owner, arb, encode_set_factory(dep.v4.pool_manager, Kind.V4))
        chain.rpc("anvil_stopImpersonatingAccount", owner)
        yield {"dep": dep, "chain": chain, "dir": d, "keystore": ks, "owner": owner, "arb": arb,
               "recipient": recipient, "client": devnet.client}
    finally:
        chain.revert_to(base_snap)
        chain.close()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def bus(world: dict[str, Any]) -> Iterator[dict[Domain, str]]:
    """Three relay daemons and the strategy process, shared by the module's tests (each test
    invalidates the strategy's pool state first, because the chain is reverted between tests)."""
    import subprocess
    import time

    d = Path(tempfile.mkdtemp(prefix="apb-", dir="/tmp"))
    socks = {dom: str(d / f"{dom.name.lower()[:3]}.sock") for dom in (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION)}
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    procs = []
    try:
        for dom, sock in socks.items():
            log = open(d / f"relay-{dom.name.lower()}.log", "wb")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tools.cli", "relay", "--domain", dom.name.lower(), "--socket", sock,
                 "--data-dir", str(d / f"data-{dom.name.lower()}"), "--fsync", "off", "--ring-size", str(4 << 20)],
                cwd=ROOT, env=env, stdout=log, stderr=log))
        weth = world["dep"].address_of("WETH")
        cfg = d / "strategy.toml"
        cfg.write_text(f"""
[strategy]
max_hops = 2
max_signals_per_update = 1
[[chains]]
chain_id = {world["dep"].chain_id}
gas_token = "{weth}"
base_tokens = ["{weth}"]
""")
        deadline = time.monotonic() + 30
        while not all(Path(s).exists() for s in socks.values()):
            assert time.monotonic() < deadline, "relays did not start"
            assert all(p.poll() is None for p in procs), "a relay died"
            time.sleep(0.02)
        slog = d / "strategy.log"
        with open(slog, "wb") as out:
            procs.append(subprocess.Popen([sys.executable, "-c", STRATEGY_SCRIPT, str(cfg), socks[Domain.MARKET_DATA],
                                           socks[Domain.SIGNAL]], cwd=ROOT, env=env, stdout=out, stderr=out))
        while "strategy: running" not in slog.read_text():
            assert time.monotonic() < deadline and procs[-1].poll() is None, slog.read_text()
            time.sleep(0.02)
        yield socks
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not os.environ.get("KEEP"):
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def h(world: dict[str, Any], bus: dict[Domain, str]) -> Iterator[Harness]:
    chain: Chain = world["chain"]
    snap = chain.snapshot()
    d = Path(tempfile.mkdtemp(prefix="apt-", dir="/tmp"))
    harness = Harness(world, d, bus)
    try:
        yield harness
    finally:
        chain.rpc("evm_setAutomine", True)
        chain.revert_to(snap)
        if not os.environ.get("KEEP"):
            shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------- the harness


class Harness:
    def __init__(self, world: dict[str, Any], d: Path, socks: dict[Domain, str]) -> None:
        self.w = world
        self.d = d
        self.dep = world["dep"]
        self.chain: Chain = world["chain"]
        self.client = world["client"]
        self.socks = socks
        self.procs: dict[str, trio.Process] = {}
        self.results: list[ExecutionResult] = []
        self.started: list[ExecutionStarted] = []
        self.signals: list[Message] = []
        self._md: RelayProducer | None = None
        self._new_result = trio.Event()
        self.exec_runs = 0
        self.db = d / "executor.sqlite"

    # --- addresses ---
    def token(self, sym: str) -> str:
        return self.dep.address_of(sym)

    def pool_id(self, venue: str, a: str, b: str, fee: int | None = None) -> tuple[PoolId, Any]:
        p = self.dep.pool(venue, a, b, fee)
        kind = VenueKind.UNISWAP_V2 if p.kind == "v2" else VenueKind.UNISWAP_V3
        return PoolId.of(self.dep.chain_id, VENUES[venue], kind, p.address, p.token0, p.token1), p

    # --- configs ---
    def executor_config(self, mode: str = "public", *, builders: list[str] = (), submission: str = "",
                        extra: str = "") -> Path:
        cfg = self.d / "executor.toml"
        venues = "".join(f'[[venues]]\nvenue = "{VENUES[v.name].name}"\nfactory = "{v.factory}"\n'
                         for v in self.dep.v2)
        venues += f'[[venues]]\nvenue = "DEVNET_V3"\nfactory = "{self.dep.v3.factory}"\n'
        hooks = sorted({p.hooks for p in self.dep.v4_pools if p.hook_name == "counter"})
        venues += (f'[[venues]]\nvenue = "DEVNET_V4"\nfactory = "{self.dep.v4.pool_manager}"\n'
                   f'hooks = {json.dumps(hooks)}\n')
        b = "".join(f'[[builders]]\nname = "b{i}"\nurl = "{u}"\ncall_bundle = true\n' for i, u in enumerate(builders))
        cfg.write_text(f"""
[executor]
chain_id = {self.dep.chain_id}
rpc_url = "{self.dep.rpc_url}"
contract = "{self.w['arb']}"
gas_token = "{self.token('WETH')}"
mode = "{mode}"
source_id = 31
state_db = "{self.db}"

[keystore]
path = "{self.w['keystore']}"
password_file = "{self.w['dir'] / 'password'}"

[validation]
max_signal_age_blocks = 3
state_wait_s = 2.0

[submission]
poll_interval_s = 0.02
{submission}

{extra}
{b}
{venues}
[relays]
market_data = "{self.socks[Domain.MARKET_DATA]}"
signal = "{self.socks[Domain.SIGNAL]}"
execution = "{self.socks[Domain.EXECUTION]}"
""")
        return cfg

    # --- processes ---
    async def _spawn(self, name: str, args: list[str], ready: str) -> trio.Process:
        log = self.d / f"{name}.log"
        out = open(log, "ab")  # noqa: ASYNC230 - a log file handed to the child
        # a restarted process appends to the same log: only this run's ready line counts
        offset = out.tell()
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        proc = await trio.lowlevel.open_process([sys.executable, *args], cwd=ROOT, stdout=out, stderr=out, env=env)
        out.close()
        self.procs[name] = proc
        with trio.fail_after(30):
            while ready.encode() not in log.read_bytes()[offset:]:
                assert proc.poll() is None, log.read_text()
                await trio.sleep(0.02)
        return proc

    async def start_executor(self, cfg: Path) -> None:
        self.exec_runs += 1
        await self._spawn("executor", ["-m", "tools.cli", "executor", "--config", str(cfg)], "executor: ready")

    def executor_log(self) -> str:
        return (self.d / "executor.log").read_text()

    async def kill9(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()

    async def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                with trio.move_on_after(5) as cs:
                    await proc.wait()
                if cs.cancelled_caught:
                    proc.kill()
                    await proc.wait()

    # --- market data (the collector's job, done by hand) ---
    def snapshot_of(self, venue: str, a: str, b: str, fee: int | None = None) -> PoolSnapshot:
        pid, p = self.pool_id(venue, a, b, fee)
        block = int(self.chain.rpc("eth_blockNumber"), 16)
        if p.kind == "v2":
            r0, r1, _ = self.client.v2_reserves(p)
            return PoolSnapshot(pool=pid, block_number=block, fee_ppm=3000, tick_spacing=0, reserve0=r0, reserve1=r1,
                                sqrt_price_x96=0, tick=0, liquidity=0, ticks=())
        s0 = self.client.v3_slot0(p)
        ticks = self.client.v3_initialized_ticks(p)
        return PoolSnapshot(
            pool=pid, block_number=block, fee_ppm=p.fee, tick_spacing=p.tick_spacing, liquidity=self.client.v3_liquidity(p),
            reserve0=self.chain.balance_of(p.token0, p.address), reserve1=self.chain.balance_of(p.token1, p.address),
            sqrt_price_x96=s0.sqrt_price_x96, tick=s0.tick,
            ticks=tuple(TickLiquidity(tick=t, liquidity_net=i.liquidity_net) for t, i in sorted(ticks.items())))

    async def v4_units(self, pools: list[tuple]) -> list[tuple[Any, ...]]:
        """The V4 pools' snapshot messages as the collector reads them (``(V4ProtocolFee, PoolSnapshot)``
        each, from the PoolManager's storage); ``pools`` are ``(a, b, fee)`` or ``(a, b, fee, hook)``."""
        from chain.rpc import HttpRpc
        from collectors.evm.bootstrap import ResolvedPool, read_units
        from market.amm.pool_key import PoolKey

        resolved = []
        for a, b, fee, *hook in pools:
            p = self.dep.v4_pool(a, b, fee, hook=hook[0] if hook else "")
            key = PoolKey.of(p.token0, p.token1, p.fee, p.tick_spacing, p.hooks)
            resolved.append(ResolvedPool(pool=key.instrument_id(self.dep.chain_id, Venue.DEVNET_V4), fee_ppm=p.fee,
                                         key=key, manager=self.dep.v4.pool_manager))
        rpc = HttpRpc(self.dep.rpc_url)
        try:
            return await read_units(rpc, resolved, int(self.chain.rpc("eth_blockNumber"), 16))
        finally:
            await rpc.aclose()

    async def publish_v4_market(self, pools: list[tuple]) -> None:
        assert self._md is not None
        units = await self.v4_units(pools)
        await self._md.publish([self.header(), *(t for u in units for t in u)])
        await self._md.flush()

    def header(self) -> BlockHeader:
        b = self.chain.rpc("eth_getBlockByNumber", "latest", False)
        return BlockHeader(chain_id=self.dep.chain_id, number=int(b["number"], 16), timestamp=int(b["timestamp"], 16),
                           gas_limit=int(b["gasLimit"], 16), gas_used=int(b["gasUsed"], 16),
                           hash=bytes.fromhex(b["hash"][2:]), parent_hash=bytes.fromhex(b["parentHash"][2:]),
                           base_fee=int(b["baseFeePerGas"], 16), priority_fee=10**9)

    async def dump_and_publish(self, pools: list[tuple]) -> None:
        self.dump_weth_on_a()
        await self.publish_market(pools)

    async def publish_market(self, pools: list[tuple]) -> None:
        assert self._md is not None
        tlvs = [self.header(), *(self.snapshot_of(*p) for p in pools)]
        await self._md.publish(tlvs)
        await self._md.flush()

    # --- chain actions ---
    def dump_weth_on_a(self, weth: int = 60 * 10**18, trader: str | None = None, tip: int | None = None,
                       out: str = "USDC") -> str:
        t = self.dep.funded_accounts[1] if trader is None else trader
        router = self.dep.v2_venue("uniswap_v2_a").router
        tx: dict[str, Any] = {"from": t, "to": router, "data": "0x" + abi_call(
            "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
            weth, 0, [self.token("WETH"), self.token(out)], t, FAR_FUTURE).hex(), "gas": hex(300_000)}
        # explicit gas: anvil's estimate skips the oracle writes of a block 12 s later (see the contract README)
        if tip is not None:
            tx.update(maxPriorityFeePerGas=hex(tip), maxFeePerGas=hex(tip + 10 * 10**9), gas=hex(300_000))
        tx_hash = str(self.chain.rpc("eth_sendTransaction", tx))
        if tip is None:
            receipt = self.chain.wait_receipt(tx_hash)
            assert int(receipt["status"], 16) == 1, f"the WETH dump reverted: {receipt}"
        return tx_hash

    def buy_weth_on_a(self, usdc: int, trader: str, tip: int) -> str:
        """A competitor closing the gap: buys the cheap WETH on venue a (maxFee/tip set for ordering)."""
        router = self.dep.v2_venue("uniswap_v2_a").router
        return str(self.chain.rpc("eth_sendTransaction", {
            "from": trader, "to": router, "gas": hex(300_000), "maxPriorityFeePerGas": hex(tip),
            "maxFeePerGas": hex(tip + 10 * 10**9), "data": "0x" + abi_call(
                "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
                usdc, 0, [self.token("USDC"), self.token("WETH")], trader, FAR_FUTURE).hex()}))

    def nonce(self, block: str = "latest") -> int:
        return int(self.chain.rpc("eth_getTransactionCount", self.w["owner"], block), 16)

    def recipient_weth(self) -> int:
        return self.chain.balance_of(self.token("WETH"), self.w["recipient"])

    # --- results ---
    async def wait_results(self, n: int, wait_s: float = 20) -> list[ExecutionResult]:
        with trio.fail_after(wait_s):
            while len(self.results) < n:
                await self._new_result.wait()
        return self.results

    def signal_of(self, signal_id: int) -> tuple[SignalIdentity, Economics]:
        for m in self.signals:
            ident = m.find(SignalIdentity)
            if ident.signal_id == signal_id:
                return ident, m.find(Economics)
        raise KeyError(signal_id)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Harness]:
        """Relays + result/signal listeners + the market-data producer."""
        async with trio.open_nursery() as n:
            async def results(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                async with RelayConsumer.connect(Domain.EXECUTION, self.socks[Domain.EXECUTION],
                                                 name="test-results") as c:
                    task_status.started()
                    async for msg in c:
                        for t in msg.tlvs:
                            if type(t) is ExecutionResult:
                                self.results.append(t)
                                self._new_result.set()
                                self._new_result = trio.Event()
                            elif type(t) is ExecutionStarted:
                                self.started.append(t)

            async def signals(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                async with RelayConsumer.connect(Domain.SIGNAL, self.socks[Domain.SIGNAL],
                                                 name="test-signals") as c:
                    task_status.started()
                    async for msg in c:
                        self.signals.append(msg)

            await n.start(results)
            await n.start(signals)
            async with RelayProducer.connect(Domain.MARKET_DATA, self.socks[Domain.MARKET_DATA], source_id=901,
                                             name="test-md", linger=0) as md:
                self._md = md
                # The chain was reverted to the deployment: whatever the strategy holds is void.
                await md.publish(StateInvalidation(chain_id=self.dep.chain_id, pool=0, from_block=0,
                                                   reason=int(InvalidationReason.RESYNC), detail="test reset"))
                try:
                    yield self
                finally:
                    await self.stop_all()
                    n.cancel_scope.cancel()


V2V2 = [("uniswap_v2_a", "WETH", "USDC"), ("uniswap_v2_b", "WETH", "USDC")]
V2V3 = [("uniswap_v2_a", "WETH", "USDC"), ("uniswap_v3", "WETH", "USDC", 3000)]


def check_executed(h: Harness, r: ExecutionResult, recipient_before: int) -> None:
    ident, econ = h.signal_of(r.signal_id)
    assert r.outcome == Outcome.EXECUTED, r.reason
    # Realized gross profit equals the signal's prediction to the wei; gas is what differs.
    assert r.realized_profit == econ.gross_profit == r.expected_profit > 0
    assert h.recipient_weth() - recipient_before == econ.gross_profit
    assert r.gas_used > 100_000 and r.effective_gas_price > 0 and r.block_number > ident.block_number
    receipt = h.chain.rpc("eth_getTransactionReceipt", "0x" + r.tx_hash.hex())
    assert int(receipt["gasUsed"], 16) == r.gas_used and int(receipt["status"], 16) == 1
    print(f"\nEXECUTED signal {r.signal_id}: gross {r.realized_profit} wei WETH, gas {r.gas_used} "
          f"(strategy estimated {econ.gas_units}) x {r.effective_gas_price}; {r.reason}")


# --------------------------------------------------------------------------- tests


async def test_v2_v2_and_v2_v3_arbitrage_detected_by_strategy_executed_by_executor(h: Harness) -> None:
    async with h.running():
        await h.start_executor(h.executor_config("public"))
        before = h.recipient_weth()
        # V2/V2: a large WETH sale on venue a makes WETH cheap there against venue b.
        h.dump_weth_on_a()
        await h.publish_market(V2V2)
        (r,) = await h.wait_results(1)
        check_executed(h, r, before)
        started = [s for s in h.started if s.signal_id == r.signal_id]
        assert len(started) == 1 and started[0].tx_hash == r.tx_hash and started[0].nonce == h.nonce() - 1

        # V2/V3: a large WETH sale on venue a opens a gap to the V3 0.3 % pool.
        h.dump_weth_on_a()
        before = h.recipient_weth()
        await h.publish_market(V2V3)
        r2 = (await h.wait_results(2))[1]
        check_executed(h, r2, before)
        kinds = {PoolId(hop.pool).kind for m in h.signals if m.find(SignalIdentity).signal_id == r2.signal_id
                 for hop in m.tlvs[2].hops}
        assert kinds == {VenueKind.UNISWAP_V2, VenueKind.UNISWAP_V3}
        assert [s.nonce for s in h.started] == [0 + started[0].nonce, started[0].nonce + 1]
        # no log line per RPC (httpx writes one at INFO for each request: a write on the critical path)
        assert "HTTP Request" not in h.executor_log() and "executor: ready" in h.executor_log()


async def test_shadow_mode_simulates_and_reports_without_sending(h: Harness) -> None:
    async with h.running():
        await h.start_executor(h.executor_config("shadow"))
        nonce = h.nonce("pending")
        await h.dump_and_publish(V2V2)
        (r,) = await h.wait_results(1)
        _, econ = h.signal_of(r.signal_id)
        assert r.outcome == Outcome.SIMULATED, r.reason
        assert r.realized_profit == econ.gross_profit and r.gas_used > 100_000
        assert h.nonce("pending") == nonce and not h.started


async def test_signal_made_stale_by_a_competing_swap_is_caught_and_not_sent(h: Harness) -> None:
    async with h.running():
        await h.start_executor(h.executor_config("public"))
        nonce = h.nonce("pending")
        # The market data says block N; a competitor trades the pool in N+1 before we can act.
        h.dump_weth_on_a()
        tlvs = [h.header(), *(h.snapshot_of(*p) for p in V2V2)]
        h.dump_weth_on_a(10**18)
        await h._md.publish(tlvs)
        (r,) = await h.wait_results(1)
        assert r.outcome == Outcome.STALE and "simulat" in r.reason, r.reason
        assert h.nonce("pending") == nonce and not h.started
        # ... and the executor's own state: fresh data for N+1 makes the *next* old signal stale on
        # re-validation (the path output changed), again without a transaction.
        print(f"\nSTALE: {r.reason}")


async def test_transaction_reverting_on_chain_is_reported_reverted(h: Harness) -> None:
    async with h.running():
        await h.start_executor(h.executor_config("public", submission="replace_after_s = 30\nreceipt_timeout_s = 60"))
        h.dump_weth_on_a()
        h.chain.rpc("evm_setAutomine", False)
        await h.publish_market(V2V2)
        # Our transaction waits in the pool; a competitor with a higher tip lands first in the same block.
        await until(lambda: h.nonce("pending") != h.nonce("latest"))
        h.buy_weth_on_a(100_000 * 10**6, trader=h.dep.funded_accounts[0], tip=100 * 10**9)
        h.chain.rpc("evm_mine")
        h.chain.rpc("evm_setAutomine", True)
        (r,) = await h.wait_results(1)
        assert r.outcome == Outcome.REVERTED, r.reason
        receipt = h.chain.rpc("eth_getTransactionReceipt", "0x" + r.tx_hash.hex())
        assert int(receipt["status"], 16) == 0 and r.gas_used == int(receipt["gasUsed"], 16)
        assert r.realized_profit == 0 and len(h.chain.rpc("eth_getBlockByNumber", hex(r.block_number), False)
                                              ["transactions"]) == 2


async def test_kill9_mid_flight_recovers_nonces_without_reuse(h: Harness) -> None:
    async with h.running():
        cfg = h.executor_config("public", submission="replace_after_s = 30\nreceipt_timeout_s = 60")
        await h.start_executor(cfg)
        n0 = h.nonce("latest")
        h.dump_weth_on_a()
        h.chain.rpc("evm_setAutomine", False)
        await h.publish_market(V2V2)
        # Kill only once the transaction is both in the node's pool and announced (ExecutionStarted is
        # published right *after* eth_sendRawTransaction: waiting for the pending nonce alone raced it).
        # A result before that (e.g. STALE) means nothing was sent: say so now instead of timing out.
        await until(lambda: h.results or (h.started and h.nonce("pending") != n0))
        assert not h.results, h.results[0].reason
        await h.kill9("executor")
        # The node also forgets the transaction (as a mempool may): only our SQLite still has it.
        (first,) = h.started
        assert h.chain.rpc("anvil_dropTransaction", "0x" + first.tx_hash.hex()) is not None
        assert h.nonce("pending") == n0
        h.chain.rpc("evm_setAutomine", True)
        await h.start_executor(cfg)  # recovers: re-broadcasts the same signed tx, reports its result once
        (r,) = await h.wait_results(1)
        assert r.outcome == Outcome.EXECUTED and r.tx_hash == first.tx_hash, r.reason
        assert "re-broadcast 1 pending tx(s) with nonce" in h.executor_log()
        # A new opportunity after the restart uses the next nonce.
        h.dump_weth_on_a()
        await h.publish_market(V2V2)
        r2 = (await h.wait_results(2))[1]
        assert r2.outcome == Outcome.EXECUTED, r2.reason
        store = ExecutorStore(h.db)
        rows = store.all_nonces()
        store.close()
        mined = [(n, s) for n, _, s in rows if s == "mined"]
        assert [n for n, _ in mined] == [n0, n0 + 1]  # every nonce used once, in order
        assert h.nonce("latest") == n0 + 2
        assert len([x for x in h.results if x.signal_id == first.signal_id]) == 1


async def test_a_nonce_a_key_used_outside_the_executor_took_fails_the_signal_once_and_the_next_trades(
        h: Harness) -> None:
    """The executor is the account's one signer (the rebalancer's transactions go through it,
    specs/rebalance.md): a transaction signed with its key outside it takes the executor's next nonce, and the
    node refuses the executor's send ("nonce too low"). Nothing is signed again: one error line, the signal
    FAILED, the refused row settled (never broadcast), the tracker moved up to the chain's pending count once;
    the next signal trades at the first free nonce."""
    async with h.running():
        await h.start_executor(h.executor_config("public"))
        owner = h.w["owner"]
        n0 = h.nonce("pending")
        h.chain.rpc("anvil_impersonateAccount", owner)
        try:
            h.chain.send(owner, owner, b"")  # outside the executor: takes its next nonce
        finally:
            h.chain.rpc("anvil_stopImpersonatingAccount", owner)
        await h.dump_and_publish(V2V2)
        (r,) = await h.wait_results(1)
        assert r.outcome == Outcome.FAILED and f"nonce {n0} refused" in r.reason, r.reason
        lines = [line for line in h.executor_log().splitlines() if "did not sign" in line]
        assert len(lines) == 1 and "ERROR" in lines[0] and f"-> {n0 + 1}" in lines[0], lines
        before = h.recipient_weth()
        await h.dump_and_publish(V2V2)
        r2 = (await h.wait_results(2))[1]
        check_executed(h, r2, before)
        mined = h.chain.rpc("eth_getTransactionByHash", "0x" + r2.tx_hash.hex())
        assert int(mined["nonce"], 16) == n0 + 1 and h.nonce("latest") == n0 + 2
        store = ExecutorStore(h.db)
        rows = store.all_nonces()
        store.close()
        assert [(n, s) for n, _, s in rows] == [(n0, "dropped"), (n0 + 1, "mined")]


async def test_fresh_executor_killed_before_its_first_signal_resumes_where_it_subscribed(h: Harness) -> None:
    """Found by ``alphapulse chaos``: a fresh executor subscribes to signals from now; killed before it
    handled one, it restarted from a later 'now', and the signals published while it was down never
    got an outcome. The position it subscribed at is durable from the start."""
    async with h.running():
        cfg = h.executor_config("public")
        await h.start_executor(cfg)
        await h.kill9("executor")
        h.dump_weth_on_a()
        await h.publish_market(V2V2)
        await until(lambda: bool(h.signals))  # the strategy published while the executor was down
        await h.start_executor(cfg)
        (r,) = await h.wait_results(1)
        assert r.signal_id == h.signals[0].find(SignalIdentity).signal_id


async def test_private_bundle_through_the_builder_standin(h: Harness) -> None:
    with BuilderStandin(h.dep.rpc_url) as standin:
        async with h.running():
            await h.start_executor(h.executor_config("private", builders=[standin.url]))
            before = h.recipient_weth()
            await h.dump_and_publish(V2V2)
            (r,) = await h.wait_results(1)
            check_executed(h, r, before)
            assert any("included in" in what for _, what in standin.log), standin.log
            block = h.chain.rpc("eth_getBlockByNumber", hex(r.block_number), False)
            assert block["transactions"] == ["0x" + r.tx_hash.hex()]  # the bundle is the block


async def test_hybrid_falls_back_to_public_when_the_bundle_is_not_included(h: Harness) -> None:
    with BuilderStandin(h.dep.rpc_url) as standin:
        standin.include = False
        async with h.running():
            await h.start_executor(h.executor_config("hybrid", builders=[standin.url],
                                                     submission="private_timeout_s = 1.0"))
            before = h.recipient_weth()
            await h.dump_and_publish(V2V2)
            (r,) = await h.wait_results(1)
            check_executed(h, r, before)
            assert "sending publicly" in h.executor_log()


async def test_emergency_stop_halts_and_resume_resumes(h: Harness) -> None:
    async with h.running():
        await h.start_executor(h.executor_config("public"))
        async with RelayProducer.connect(Domain.EXECUTION, h.socks[Domain.EXECUTION], source_id=902,
                                         name="test-operator", linger=1) as op:
            await op.publish(EmergencyStop(scope=int(StopScope.CHAIN), scope_value=h.dep.chain_id, stop_id=77,
                                           reason="drill", sender="ops@test"))
            await op.flush()
            await until(lambda: "EMERGENCY STOP 77" in h.executor_log())
            nonce = h.nonce("pending")
            await h.dump_and_publish(V2V2)
            (r,) = await h.wait_results(1)
            assert r.outcome == Outcome.HALTED and "ops@test" in r.reason, r.reason
            assert h.nonce("pending") == nonce
            await op.publish(Resume(scope=int(StopScope.CHAIN), scope_value=h.dep.chain_id, stop_id=77,
                                    reason="drill over", sender="ops@test"))
            await op.flush()
            await until(lambda: "RESUME stop_id=77" in h.executor_log())
        assert "from 'ops@test'" in h.executor_log()
        h.chain.rpc("evm_mine")  # a new block: the strategy signals again
        before = h.recipient_weth()
        await h.dump_and_publish(V2V2)
        r2 = (await h.wait_results(2))[1]
        check_executed(h, r2, before)


def test_new_keystore_cli_writes_only_the_encrypted_key(tmp_path: Path) -> None:
    import subprocess

    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    out = tmp_path / "ks.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "tools.cli", "executor", "new-keystore", "--out", str(out),
                          "--password-file", str(pw), "--kdf", "pbkdf2", "--kdf-iterations", "2"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    address = res.stdout.strip()
    assert address == keystore_address(out)
    doc = json.loads(out.read_text())
    assert "ciphertext" in doc["crypto"] and oct(out.stat().st_mode & 0o777) == "0o600"
    from execution.keystore import load_account

    key = load_account(out, "s3cret").key.hex()
    assert key.removeprefix("0x") not in out.read_text() + res.stdout + res.stderr
    from execution.keystore import new_keystore_main

    assert new_keystore_main(["--out", str(out), "--password-file", str(pw)]) == 2  # never over a keystore


_ = (MAX_UINT256, TokenId)


async def test_stuck_transaction_is_replaced_with_bumped_fees_same_nonce(h: Harness) -> None:
    async with h.running():
        await h.start_executor(h.executor_config("public", submission="replace_after_s = 0.5\nreceipt_timeout_s = 30"))
        h.dump_weth_on_a()
        h.chain.rpc("evm_setAutomine", False)
        await h.publish_market(V2V2)
        await until(lambda: len(h.started) >= 2)  # the first one sat in the pool: replaced
        h.chain.rpc("evm_mine")
        h.chain.rpc("evm_setAutomine", True)
        (r,) = await h.wait_results(1)
        assert r.outcome == Outcome.EXECUTED, r.reason
        first, second = h.started[0], h.started[1]
        assert first.nonce == second.nonce and first.tx_hash != second.tx_hash
        assert second.max_priority_fee_per_gas * 10 >= first.max_priority_fee_per_gas * 11
        assert second.max_fee_per_gas * 10 >= first.max_fee_per_gas * 11
        assert r.tx_hash in {s.tx_hash for s in h.started}


async def test_pre_trade_limits_reject_by_risk_and_send_nothing(h: Harness) -> None:
    """A first-hop input above [limits].max_amount_in, or a gas price above max_gas_price_wei, ends the
    signal as REJECTED_BY_RISK with the reason, and no transaction is sent."""
    weth = h.token("WETH")
    usdc = h.token("USDC")
    limits = f'[limits]\nmax_amount_in = {{ "{weth}" = 1, "{usdc}" = 1 }}\n'
    async with h.running():
        await h.start_executor(h.executor_config("public", extra=limits))
        nonce = h.nonce("pending")
        await h.dump_and_publish(V2V2)
        (r,) = await h.wait_results(1)
        assert r.outcome == Outcome.REJECTED_BY_RISK and "trade size" in r.reason, r.reason
        assert h.nonce("pending") == nonce and not h.started


async def test_v4_arbitrage_detected_by_strategy_executed_inside_one_unlock(h: Harness) -> None:
    """The devnet prices WETH at 2006 USDC on its V4 0.05 % pool and at 1994 on the 0.3 % one (which
    charges a protocol fee on top): the strategy, fed the pools as the collector reads them, finds the
    cycle; the executor addresses both pools by their PoolKey and the contract runs it inside one
    PoolManager.unlock; the realized profit equals the prediction to the wei."""
    async with h.running():
        await h.start_executor(h.executor_config("public"))
        before = h.recipient_weth()
        await h.publish_v4_market([("WETH", "USDC", 500), ("WETH", "USDC", 3000)])
        (r,) = await h.wait_results(1)
        check_executed(h, r, before)
        hops = [hop for m in h.signals if m.find(SignalIdentity).signal_id == r.signal_id for hop in m.tlvs[2].hops]
        assert {PoolId(hop.pool).kind for hop in hops} == {VenueKind.UNISWAP_V4} and len(hops) == 2
        # a V4 pool whose hook the executor was not told about is never traded
        assert "hooks not configured" not in h.executor_log()


# --------------------------------------------------------------------------- concurrent signals (execution/schedule.py)

V2V2_DAI = [("uniswap_v2_a", "WETH", "DAI"), ("uniswap_v2_b", "WETH", "DAI")]


def pools_of(h: Harness, signal_id: int) -> set[int]:
    (m,) = [m for m in h.signals if m.find(SignalIdentity).signal_id == signal_id]
    return {int(hop.pool) for hop in m.find(ArbitragePath).hops}


def our_txs_in(h: Harness, block: int) -> list[dict[str, Any]]:
    b = h.chain.rpc("eth_getBlockByNumber", hex(block), True)
    return [t for t in b["transactions"] if t["from"].lower() == h.w["owner"].lower()]


async def two_independent_in_flight(h: Harness, cfg: Path) -> int:
    """Two opportunities sharing no pool (WETH/USDC and WETH/DAI, venue a against b), published as two
    market-data updates while the chain does not mine: both signals' transactions wait in the node's pool
    at once. Returns the account's nonce before them."""
    await h.start_executor(cfg)
    n0 = h.nonce("latest")
    h.dump_weth_on_a()
    h.dump_weth_on_a(out="DAI")
    h.chain.rpc("evm_setAutomine", False)
    await h.publish_market(V2V2)
    await h.publish_market(V2V2_DAI)
    await until(lambda: h.results or (len(h.started) == 2 and h.nonce("pending") == n0 + 2))
    assert not h.results, h.results[0].reason
    a, b = (s.signal_id for s in h.started)
    assert pools_of(h, a).isdisjoint(pools_of(h, b))
    assert sorted(s.nonce for s in h.started) == [n0, n0 + 1]  # pipelined: consecutive, neither waited
    return n0


async def test_two_independent_opportunities_run_at_once_with_consecutive_nonces_in_one_block(h: Harness) -> None:
    async with h.running():
        before = h.recipient_weth()
        cfg = h.executor_config("public", submission="replace_after_s = 30\nreceipt_timeout_s = 60")
        n0 = await two_independent_in_flight(h, cfg)
        h.chain.rpc("evm_mine")
        h.chain.rpc("evm_setAutomine", True)
        r1, r2 = await h.wait_results(2)
        assert r1.outcome == r2.outcome == Outcome.EXECUTED, (r1.reason, r2.reason)
        assert r1.block_number == r2.block_number
        mined = our_txs_in(h, r1.block_number)
        assert sorted(int(t["nonce"], 16) for t in mined) == [n0, n0 + 1]
        assert {bytes.fromhex(t["hash"][2:]) for t in mined} == {r1.tx_hash, r2.tx_hash}
        assert h.recipient_weth() - before == r1.realized_profit + r2.realized_profit > 0


async def test_signals_through_one_pool_run_one_after_the_other(h: Harness) -> None:
    """The second signal shares pool a with the first one's transaction, still in the node's pool: it is
    not sent into the same block; it starts once the first has landed, re-validated after it (then STALE
    when the opportunity moved, or sent into a later block)."""
    async with h.running():
        await h.start_executor(h.executor_config("public", submission="replace_after_s = 30\nreceipt_timeout_s = 60"))
        n0 = h.nonce("latest")
        h.dump_weth_on_a()
        h.chain.rpc("evm_setAutomine", False)
        await h.publish_market(V2V2)
        await until(lambda: h.results or (len(h.started) == 1 and h.nonce("pending") == n0 + 1))
        assert not h.results, h.results[0].reason
        await h.publish_market(V2V3)  # pools a and V3: whatever the strategy picks goes through a or b
        await until(lambda: len(h.signals) == 2)
        first, second = (m.find(SignalIdentity).signal_id for m in h.signals)
        assert not pools_of(h, first).isdisjoint(pools_of(h, second))
        await until(lambda: "waits for a pool in flight" in h.executor_log())
        await trio.sleep(0.3)
        assert len(h.started) == 1 and h.nonce("pending") == n0 + 1  # the second was not sent
        h.chain.rpc("evm_mine")
        h.chain.rpc("evm_setAutomine", True)
        r1, r2 = await h.wait_results(2)
        assert (r1.signal_id, r2.signal_id) == (first, second)
        assert r1.outcome == Outcome.EXECUTED, r1.reason
        assert r2.outcome in (Outcome.STALE, Outcome.EXECUTED), r2.reason
        if r2.outcome == Outcome.EXECUTED:
            assert r2.block_number > r1.block_number
        assert len(our_txs_in(h, r1.block_number)) == 1


async def test_kill9_with_two_in_flight_each_signal_ends_once_and_nonces_stay_continuous(h: Harness) -> None:
    async with h.running():
        cfg = h.executor_config("public", submission="replace_after_s = 30\nreceipt_timeout_s = 60")
        n0 = await two_independent_in_flight(h, cfg)
        await h.kill9("executor")
        # the node forgets the second one (as a mempool may): only our SQLite still has it
        second = next(s for s in h.started if s.nonce == n0 + 1)
        assert h.chain.rpc("anvil_dropTransaction", "0x" + second.tx_hash.hex()) is not None
        h.chain.rpc("evm_mine")  # the first lands while the executor is down
        h.chain.rpc("evm_setAutomine", True)
        await h.start_executor(cfg)  # settles the first from its receipt, re-broadcasts the second
        await h.wait_results(2)
        h.dump_weth_on_a()  # and a new opportunity after the restart takes the next nonce
        await h.publish_market(V2V2)
        results = await h.wait_results(3)
        assert all(r.outcome == Outcome.EXECUTED for r in results), [r.reason for r in results]
        ids = [r.signal_id for r in results]
        assert len(set(ids)) == 3 and {s.signal_id for s in h.started} <= set(ids)
        store = ExecutorStore(h.db)
        rows = store.all_nonces()
        store.close()
        assert [n for n, _, s in rows if s == "mined"] == [n0, n0 + 1, n0 + 2]  # each once, no gap
        assert h.nonce("latest") == n0 + 3
        await trio.sleep(0.3)
        assert len(h.results) == 3  # nothing reported twice
