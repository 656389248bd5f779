"""``alphapulse demo``: the whole system making money on a real local chain.

What it does, in order:

1. starts a devnet: anvil with the official Uniswap V2/V3/V4 bytecode (``tools/devnet``);
2. creates the executor's signing key as an encrypted keystore (a fresh random key,
   a random password in a 0600 file: no plaintext key is ever written), deploys our
   ``AlphaPulseArb`` contract owned by that key and allow-lists the devnet factories;
3. writes one deployment file plus each component's config under ``var/demo/``, and
   starts, as separate processes under the supervisor: the three relays, an archiver per domain,
   the EVM collector, the strategy, the executor (live, public submission, through our
   contract), risk and portfolio;
4. drives market activity from real history: the real USDC/WETH swaps of 2024-01-05
   (``tools/demo_market.py``) replayed as trades on the devnet's V3 0.05 % pool while the
   V2 venues and the other fee tiers lag, so real-shaped arbitrage appears; the devnet's Uniswap V4
   pools (in the one PoolManager, followed by the collector, traded by the contract inside one
   ``unlock``) start priced apart from each other and from V2/V3, so arbitrage through V4 pools
   appears from the first block; the devnet's DAI/USDC Curve pool (seeded three DAI to one USDC, so DAI is
   cheap there) opens cycles that start by buying DAI on it, and a Curve pool cannot lend: the strategy
   finds them from USDC, prices the Balancer V2 Vault's flash loan for them and the executor sends them
   through ``executeBalancer`` (the summary counts the executed arbitrages per flash source);
5. shows the dashboard when run in a terminal (``q`` quits), or prints a live summary
   (``--headless``), and after ``--duration`` seconds or Ctrl-C stops everything and prints
   the report: P&L, the opportunity funnel and gas, and the profit that landed on chain.

``--cex`` adds a centralised exchange that leads the market (``tools/demo_cex.py``): the Binance stand-in
replaying the real ETHUSDT capture mapped onto the devnet's WETH/USDC price, the Binance collector, a CEX-DEX
pair in the strategy, and the market driver moving the devnet's V3 0.05 % pool to where the CEX was a few
seconds ago instead of replaying Uniswap swaps, so CEX-DEX arbitrage appears.

``--replay`` does the same without a chain: the recorded logs go through the collector's
replay into the relays, and the strategy runs in detect-only mode (signals, no execution).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from market.display import fmt_units
from runtime.files import make_dirs, write_private
from tools.deployment_writer import deployment_doc, process, relays_table, strategy_doc, write_toml

if TYPE_CHECKING:
    from chain.deployment import ChainDeployment
    from tools.demo_cex import CexSetup, CexTape
    from tools.demo_xchain import XChainSetup
    from tools.devnet.deploy import Devnet

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = Path(os.environ.get("ALPHAPULSE_DEMO_DIR") or REPO / "var" / "demo")  # tests move it


def _new_work_dir(parent: Path, stamp: str) -> Path:
    """A run directory of its own: ``parent/stamp``, or ``stamp-2``, ``stamp-3``... when a demo started in the
    same second has it (two demos at once, e.g. tests on two workers, shared one keystore directory)."""
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        work = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            work.mkdir()
        except FileExistsError:
            continue
        return work
    raise SystemExit(f"alphapulse demo: no free run directory {parent / stamp}-N; remove old runs")


def live_runs(demo_dir: Path = DEMO_DIR) -> list[Path]:
    """The working directories of live demo runs (``<demo_dir>/<YYYYmmdd-HHMMSS>``), newest first;
    replay runs (``replay-*``) are not among them."""
    return sorted((p for p in demo_dir.glob("[0-9]*") if p.is_dir()), key=lambda p: p.name, reverse=True)


def latest_demo_db(demo_dir: Path = DEMO_DIR) -> Path | None:
    """The portfolio database of the newest live demo run that has one."""
    return next((db for run in live_runs(demo_dir) if (db := run / "data" / "portfolio.sqlite").is_file()), None)


# While the dashboard owns the terminal, the demo's and the supervisor's lines go to a log file.
_say_stream = None


def say(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", file=_say_stream or sys.stdout, flush=True)


@dataclass
class Tally:
    """What the demo process itself sees on the bus (for the headless summary)."""

    market: int = 0
    signals: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    open_signals: set[int] = field(default_factory=set)  # published, no ExecutionResult yet
    interrupted: str | None = None  # the signal's name when the run was stopped by one
    realized_wei: int = 0
    gas_wei: int = 0
    trades: int = 0
    trade_errors: int = 0
    halted: bool = False
    # --cex: the CEX-DEX signals among the signals, their outcomes and realized profit (in the quote token)
    cex_signals: int = 0
    cex_ids: set[int] = field(default_factory=set)
    cex_outcomes: dict[str, int] = field(default_factory=dict)
    cex_realized: int = 0  # gross, from the ExecutionResults (gas apart, as for every signal)
    cex_net: int = 0  # net of the taker fee and the DEX gas, from the LegReports
    cex_orders: dict[str, int] = field(default_factory=dict)  # "ENTRY BUY" / "UNWIND SELL" ... answered
    cex_moved: dict[str, int] = field(default_factory=dict)  # exchange asset -> what the fills moved (units)
    dex_legs: dict[str, int] = field(default_factory=dict)  # DexLegResult name -> count
    cex_left_open: int = 0  # base units left open (LEG_OPEN)
    cex_tape: CexTape | None = None
    v4_ids: set[int] = field(default_factory=set)  # signals with a Uniswap V4 hop
    v4_executed: int = 0  # ... of them EXECUTED
    flash: dict[int, str] = field(default_factory=dict)  # signal id -> its FlashLoan source (POOL if none)
    by_flash: dict[str, int] = field(default_factory=dict)  # flash source -> arbitrages EXECUTED
    # the profit token realized_wei counts (the WETH TokenId; 0: every profit); others in realized_other
    profit_token: int = 0
    realized_other: dict[int, int] = field(default_factory=dict)  # TokenId -> realized gross profit
    # --chains 2: the cross-chain signals, their outcomes, when each leg's transaction was submitted
    xc_ids: set[int] = field(default_factory=set)
    xc_outcomes: dict[str, int] = field(default_factory=dict)
    xc_realized: int = 0  # gross, in the quote token of the source chain (from the ExecutionResults)
    xc_origin: dict[int, int] = field(default_factory=dict)  # signal id -> its TraceContext.origin_ns
    submitted: dict[int, dict[int, int]] = field(default_factory=dict)  # signal id -> chain -> ExecutionStarted ns
    execution_seq: int = 0  # the newest execution-relay sequence the demo has read
    chains_seen: set[int] = field(default_factory=set)  # chains whose BlockHeader the demo has read
    rtt: dict[int, list[int]] = field(default_factory=dict)  # chain id -> eth_blockNumber round trips (ns)
    follow_moves: Any = None  # the lagging chain's driver counts (trades, trade_errors)
    pool_tape: Any = None  # tools.demo_xchain.PoolTape: the lead chain's pool price as seen on the bus
    # the dashboard's model fed the signal and execution relays: the cross-chain legs, per-chain moves and gas,
    # the bridge transfers and their fees, counted as the dashboard counts them
    xc_model: Any = None

    def log_to_submitted(self) -> list[int]:
        """Per cross-chain signal with both legs submitted: ns from its first leg's swap log (the
        signal's origin) to the later of its two legs' ExecutionStarted."""
        out = []
        for sid in self.xc_ids:
            legs, origin = self.submitted.get(sid, {}), self.xc_origin.get(sid)
            if origin and len(legs) >= 2:
                out.append(max(legs.values()) - origin)
        return out


# --------------------------------------------------------------------------- chain set-up


def new_password_file(keystore_dir: Path) -> tuple[Path, str]:
    """A random keystore password in ``<keystore_dir>/password``: 0600 from the first byte (never
    written and then chmod-ed), in a 0700 directory, never through a planted symlink."""
    make_dirs(keystore_dir)
    pwfile = keystore_dir / "password"
    password = secrets.token_hex(24)
    write_private(pwfile, password + "\n")
    return pwfile, password


def _deploy_arb(net: Devnet, keystore_dir: Path) -> tuple[str, str, Path, Path, str]:
    """Fresh key in an encrypted keystore; AlphaPulseArb deployed and configured from it by
    ``execution.deploy`` (what ``alphapulse executor deploy-contract`` runs), every devnet factory and Curve
    pool allow-listed, the devnet's Balancer Vault set. The devnet funds the new key first (``anvil_setBalance``).

    Returns (owner, arb, keystore, password file, profit recipient)."""
    from execution.deploy import deploy_and_configure, devnet_factories
    from execution.keystore import new_keystore_account

    pwfile, password = new_password_file(keystore_dir)
    ks = keystore_dir / "keystore.json"
    account = new_keystore_account(ks, password)
    dep = net.deployment
    recipient = dep.accounts[5]  # a dev account that trades nothing: its WETH balance is our profit
    net.client.rpc.call("anvil_setBalance", [account.address, hex(10**21)])
    done = deploy_and_configure(net.client.rpc, account, recipient=recipient, factories=devnet_factories(dep),
                                chain_id=dep.chain_id, balancer_vault=dep.balancer_vault, receipt_timeout=30.0)
    return account.address, done.contract, ks, pwfile, recipient


# --------------------------------------------------------------------------- configs


def _write_configs(work: Path, run_dir: Path, dep: ChainDeployment, arb: str, ks: Path, pwfile: Path,
                   cex: CexSetup | None = None, archive: tuple[str, ...] = ("market_data",),
                   xchain: XChainSetup | None = None) -> Path:
    """Every component's config under ``work/configs`` and the deployment file naming them (with ``cex``, the
    stand-in, the Binance collector and the strategy's ``[[cex_dex]]`` table too; with ``xchain``, ``dep`` is
    its lead chain, and a collector per chain, the bridge relayer and both chains in the books and risk);
    one archiver per domain in ``archive`` (``archiver`` for market data, ``archiver-<domain>`` else), all into
    ``work/data/archive``."""
    from tools import demo_cex, demo_xchain

    relays = relays_table(run_dir)
    weth = dep.address_of("WETH")
    cfg = work / "configs"
    data = work / "data"
    if xchain is None:
        write_toml(cfg / "collector.toml", {
            "source_id": 17742,
            "relay_socket": relays["market_data"],
            "chain": [{"name": "devnet", "deployment": work / "deployment.json"}],
        })
    strategy = strategy_doc(
        name="dex-arb", strategy_id=1, source_id=20, max_hops=3, max_signals_per_update=1,
        economics={"slippage_bps": 10}, chain_id=dep.chain_id, gas_token=weth, min_net_profit=10**13,
        relays=relays_table(run_dir, ("market_data", "signal", "execution")))
    if cex is not None:
        strategy["cex_dex"] = [demo_cex.strategy_table(dep, cex)]
    if cex is None and xchain is None:
        # each market-data message decided alone: which messages arrive together (one decision when coalesced)
        # depends on timing, and alphapulse backtest of this archive, deciding message by message, must take
        # the live run's decisions (test_tools_backtest: a live decision over two coalesced transactions was
        # NOT_SIGNALLED in the backtest). The CEX and two-chain demos coalesce.
        strategy["strategy"]["coalesce_max"] = 1
    if xchain is not None:
        # one signal in flight per opportunity: the executor answers every signal on the execution relay, and
        # re-signalling a pool pair while its legs run (seconds on the 2 s chain) only queued signals stale by
        # the time they were re-priced. Not for one chain, whose transactions land within a block: there the
        # executor keeps two transactions out of one pool, and the decisions stay those a backtest of the
        # archive replays (test_tools_backtest: with holds timed by the live executor they were not).
        strategy["hold_back"] = {"enabled": True}
        tables = demo_xchain.strategy_tables(xchain)
        strategy["chains"].append(tables["chain"])
        strategy["assets"] = tables["assets"]
        strategy["cross_chain"] = tables["cross_chain"]
    curve_pools = _curve_and_balancer_tables(dep, strategy) if cex is None and xchain is None else []
    write_toml(cfg / "strategy.toml", strategy)
    executor: dict[str, Any] = {
        "executor": {"chain_id": dep.chain_id, "rpc_url": dep.rpc_url, "contract": arb, "gas_token": weth,
                     "mode": "public", "source_id": 31, "state_db": data / "executor.sqlite",
                     # the executor starts with the system: every signal gets an outcome, also one the
                     # strategy published before the executor's first subscription
                     "signals_from": "oldest"},
        "keystore": {"path": ks, "password_file": pwfile},
        "validation": {"max_signal_age_blocks": 3, "state_wait_s": 1.0},
        "venues": [*({"venue": "DEVNET_V2_A" if v.name.endswith("_a") else "DEVNET_V2_B", "factory": v.factory}
                     for v in dep.v2),
                   {"venue": "DEVNET_V3", "factory": dep.v3.factory},
                   # V4 pools by their PoolKey in the PoolManager: hookless ones and the observing hook's
                   # (the amount-changing hook's pool is refused by the collector and never signalled)
                   *([{"venue": "DEVNET_V4", "factory": dep.v4.pool_manager,
                       "hooks": sorted({p.hooks for p in dep.v4_pools if p.hook_name == "counter"})}]
                     if dep.v4 is not None else [])],
        "relays": relays,
    }
    risk: dict[str, Any] = {
        "relays": relays,
        "risk": {"source_id": 7001, "sender": "risk"},
        "gas_price": {"max_wei": 300 * 10**9},
        "failure_rate": {"window": 20, "min_results": 10, "max_failure_rate_bps": 9000},
        "daily_loss": {"tokens": {f"{dep.chain_id}:{weth}": {"max_loss": 5 * 10**18, "gas_per_eth": 10**18}}},
    }
    if curve_pools:
        executor["curve_pools"] = curve_pools
    if cex is not None:
        executor["cex"] = demo_cex.executor_table(dep, cex)
        risk.update(demo_cex.risk_tables(dep, cex))
    portfolio_chains = {dep.chain_id: {"valuation_token": weth, "wrapped_native": weth}}
    if xchain is not None:
        risk["daily_loss"]["tokens"] = demo_xchain.daily_loss_tokens(xchain)
        risk.update(demo_xchain.risk_tables(xchain))
        executor["cross_chain"] = demo_xchain.executor_table(xchain)
        executor["validation"].update(demo_xchain.executor_validation(xchain))
        portfolio_chains = demo_xchain.portfolio_chains(xchain)
    write_toml(cfg / "executor.toml", executor)
    write_toml(cfg / "risk.toml", risk)
    write_toml(cfg / "portfolio.toml", {
        "portfolio": {"db": data / "portfolio.sqlite"},
        "relays": relays,
        "start": {"execution": "oldest", "signal": "oldest", "market_data": "oldest"},
        "chains": portfolio_chains,
    })
    all_relays = ["relay-market_data", "relay-signal", "relay-execution"]
    return write_toml(work / "deploy.toml", deployment_doc(
        name="demo", run_dir=run_dir, data_dir=data, log_dir=work / "logs", fsync="interval", processes=[
            *(process("archiver" if domain == "market_data" else f"archiver-{domain}",
                      ["archive", "--domain", domain, "--out", data / "archive", "--socket", relays[domain],
                       "--from", "oldest"], after=[f"relay-{domain}"]) for domain in archive),
            *([process("collector", ["collector", "evm", "--config", cfg / "collector.toml"],
                       after=["relay-market_data"])] if xchain is None else
              demo_xchain.processes(xchain, cfg, data, relays)),
            # --chains 2: the strategy starts once the executor is ready (its keystores decrypted, both chains'
            # nonces settled: the slowest start of all, tens of seconds on a loaded machine), so the chains' gap at
            # start is signalled to an executor that can trade it -- a signal published before is STALE by the
            # time the executor reads it, and the strategy never signals the same state of both pools twice
            process("strategy", ["strategy", "--config", cfg / "strategy.toml"],
                    after=["relay-market_data", "relay-signal", *(["executor"] if xchain is not None else [])]),
            process("executor", ["executor", "--config", cfg / "executor.toml"], after=all_relays,
                    ready_log=demo_xchain.EXECUTOR_READY if xchain is not None else ""),
            process("risk", ["risk", "--config", cfg / "risk.toml", "--state", data / "risk.sqlite"],
                    after=all_relays),
            process("portfolio", ["portfolio", "--config", cfg / "portfolio.toml", "--db", data / "portfolio.sqlite"],
                    after=all_relays),
            *(demo_cex.processes(cex, cfg, relays["market_data"]) if cex is not None else ()),
        ]))


def _curve_and_balancer_tables(dep: ChainDeployment, strategy: dict[str, Any]) -> list[dict[str, Any]]:
    """The devnet's Curve pools in the strategy's config (their amplification and rates: the snapshots carry
    balances and the fee), cycles that start in USDC too (a Curve first hop buys DAI with USDC), and the
    Balancer Vault as a flash lender (the contract has it set): a path whose first hop is Curve can only
    borrow from it. Returns the executor's ``[[curve_pools]]`` (with each pool's own coin order)."""
    if not dep.curve_pools:
        return []
    chain = strategy["chains"][0]
    usdc = dep.address_of("USDC")
    chain["base_tokens"] = [*chain["base_tokens"], usdc]
    chain["min_net_profit"] = {**chain.get("min_net_profit", {}), usdc: 4 * 10**4}  # 0.04 USDC, ~ the WETH floor
    chain["balancer_vault"] = dep.balancer_vault is not None

    def by_address(p: Any) -> list[int]:  # the strategy's rates follow the pool id's token order
        return [r for _, r in sorted(zip(p.coins, p.rates), key=lambda cr: int(cr[0], 16))]

    strategy["curve_pools"] = [{"chain_id": dep.chain_id, "address": p.address, "amp": p.amp, "rates": by_address(p)}
                               for p in dep.curve_pools]
    return [{"address": p.address, "coins": list(p.coins), "amp": p.amp, "rates": list(p.rates)}
            for p in dep.curve_pools]


# --------------------------------------------------------------------------- market driver


def drive_market(net: Devnet, trader: str, rate: float, amplify: Fraction, stop: threading.Event, tally: Tally) -> None:
    """Replay the real swap sequence on the devnet V3 0.05 % pool (runs in a worker thread)."""
    from tools.demo_market import real_swaps, to_devnet_trade

    pool = net.deployment.pool("uniswap_v3", "WETH", "USDC", 500)
    client = net.client
    period = 1.0 / rate
    next_at = time.monotonic()
    for swap in real_swaps():
        if stop.is_set():
            return
        trade = to_devnet_trade(swap, client.v3_liquidity(pool), amplify)
        if trade is None:
            continue
        try:
            client.v3_swap_exact_in(trader, trade.token_in, trade.token_out, 500, trade.amount_in)
            tally.trades += 1
        except Exception as exc:  # a failed demo trade (e.g. out of funds) must not stop the demo
            tally.trade_errors += 1
            if tally.trade_errors <= 3:
                say(f"market driver: trade failed: {exc}")
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()


# --------------------------------------------------------------------------- bus watchers


async def watch_bus(run_dir: Path, tally: Tally) -> None:
    from protocol.execution import (
        CexFill,
        CexOrderPurpose,
        DexLegResult,
        ExecutionResult,
        ExecutionStarted,
        LegReport,
        Outcome,
    )
    from protocol.header import Domain
    from protocol.ids import VenueKind, code_name
    from protocol.market import BlockHeader, Side
    from protocol.signals import ArbitragePath, FlashLoan, FlashSource, SignalIdentity, SignalKind
    from protocol.system import EmergencyStop, Resume, TraceContext
    from relays.client import RelayConsumer
    from tools.dashboard.model import outcome_name

    finished: dict[int, ExecutionResult] = {}  # results can arrive before the signal watcher reads the signal

    def _count_cex(t: ExecutionResult) -> None:
        name = outcome_name(t.outcome)
        tally.cex_outcomes[name] = tally.cex_outcomes.get(name, 0) + 1
        if t.outcome == Outcome.EXECUTED:
            tally.cex_realized += t.realized_profit

    def _count_xc(t: ExecutionResult) -> None:
        name = outcome_name(t.outcome)
        tally.xc_outcomes[name] = tally.xc_outcomes.get(name, 0) + 1
        tally.xc_realized += t.realized_profit  # an unwind's loss too

    async def signals() -> None:
        # the demo's observers are background: they count, the strategy and executor trade
        async with RelayConsumer.connect(Domain.SIGNAL, str(run_dir / "signal.sock"), from_seq=0,
                                         name="demo", latency="background") as c:
            async for msg in c:
                tally.signals += 1
                if tally.xc_model is not None:
                    tally.xc_model.on_message(Domain.SIGNAL, msg, time.time_ns())
                ident = msg.find(SignalIdentity)
                if ident is None:
                    continue
                if ident.kind == SignalKind.CEX_DEX:
                    tally.cex_signals += 1
                    tally.cex_ids.add(ident.signal_id)
                    if ident.signal_id in finished:
                        _count_cex(finished[ident.signal_id])
                elif ident.kind == SignalKind.CROSS_CHAIN:
                    tally.xc_ids.add(ident.signal_id)
                    trace = msg.find(TraceContext)
                    if isinstance(trace, TraceContext):
                        tally.xc_origin[ident.signal_id] = trace.origin_ns
                    done = finished.get(ident.signal_id)
                    if done is not None:  # its result came first and was counted as a one-chain profit
                        _count_xc(done)
                        if done.outcome == Outcome.EXECUTED:
                            tally.realized_wei -= done.realized_profit
                            tally.gas_wei -= done.gas_used * done.effective_gas_price
                flash = msg.find(FlashLoan)
                source = code_name(FlashSource, flash.source) if isinstance(flash, FlashLoan) else "POOL"
                done = finished.get(ident.signal_id)
                if done is not None and done.outcome == Outcome.EXECUTED:
                    tally.by_flash[source] = tally.by_flash.get(source, 0) + 1
                else:
                    tally.flash[ident.signal_id] = source
                path = msg.find(ArbitragePath)
                if isinstance(path, ArbitragePath) and any(h.venue_kind == VenueKind.UNISWAP_V4 for h in path.hops):
                    tally.v4_ids.add(ident.signal_id)
                    done = finished.get(ident.signal_id)
                    tally.v4_executed += done is not None and done.outcome == Outcome.EXECUTED
                if ident.signal_id not in finished:
                    tally.open_signals.add(ident.signal_id)

    async def market() -> None:
        async with RelayConsumer.connect(Domain.MARKET_DATA, str(run_dir / "market_data.sock"),
                                         from_seq=None, name="demo", latency="background") as c:
            tapes = [t for t in (tally.cex_tape, tally.pool_tape) if t is not None]
            async for msg in c:
                tally.market += 1
                for t in msg.tlvs:
                    if type(t) is BlockHeader:
                        tally.chains_seen.add(t.chain_id)
                for tape in tapes:
                    tape.on_records(msg.tlvs, time.monotonic())

    async def execution() -> None:
        async with RelayConsumer.connect(Domain.EXECUTION, str(run_dir / "execution.sock"), from_seq=0,
                                         name="demo", latency="background") as c:
            async for msg in c:
                tally.execution_seq = max(tally.execution_seq, msg.domain_seq)
                if tally.xc_model is not None:
                    tally.xc_model.on_message(Domain.EXECUTION, msg, time.time_ns())
                for t in msg.tlvs:
                    if isinstance(t, ExecutionResult):
                        name = outcome_name(t.outcome)
                        finished[t.signal_id] = t
                        tally.open_signals.discard(t.signal_id)
                        tally.outcomes[name] = tally.outcomes.get(name, 0) + 1
                        if t.signal_id in tally.cex_ids:
                            _count_cex(t)
                        elif t.signal_id in tally.xc_ids:
                            _count_xc(t)
                        elif t.outcome == Outcome.EXECUTED:
                            if tally.profit_token and t.profit_token != tally.profit_token:
                                token = int(t.profit_token)
                                tally.realized_other[token] = tally.realized_other.get(token, 0) + t.realized_profit
                            else:
                                tally.realized_wei += t.realized_profit
                        if t.outcome == Outcome.EXECUTED and t.signal_id not in tally.xc_ids:  # legs: xc_model
                            tally.gas_wei += t.gas_used * t.effective_gas_price
                            tally.v4_executed += t.signal_id in tally.v4_ids
                            source = tally.flash.pop(t.signal_id, None)
                            if source is not None:
                                tally.by_flash[source] = tally.by_flash.get(source, 0) + 1
                    elif isinstance(t, ExecutionStarted):
                        legs = tally.submitted.setdefault(t.signal_id, {})
                        legs.setdefault(t.chain_id, msg.receive_time_ns)
                        if tally.pool_tape is not None:
                            tally.pool_tape.ours(t.tx_hash)
                    elif isinstance(t, CexFill):
                        buy = t.side == Side.BUY
                        order = f"{code_name(CexOrderPurpose, t.purpose)} {'BUY' if buy else 'SELL'}"
                        tally.cex_orders[order] = tally.cex_orders.get(order, 0) + 1
                        for asset, delta in ((t.base_asset, t.base_units if buy else -t.base_units),
                                             (t.quote_asset, -t.quote_units if buy else t.quote_units)):
                            tally.cex_moved[asset] = tally.cex_moved.get(asset, 0) + delta
                    elif isinstance(t, LegReport):
                        leg = code_name(DexLegResult, t.dex_result)
                        tally.dex_legs[leg] = tally.dex_legs.get(leg, 0) + 1
                        tally.cex_net += t.realized_profit
                        tally.cex_left_open += t.left_open
                    elif isinstance(t, EmergencyStop):
                        tally.halted = True
                        say(f"EMERGENCY STOP from {t.sender}: {t.reason}")
                    elif isinstance(t, Resume):
                        tally.halted = False
                        say(f"resume from {t.sender}: {t.reason}")

    async with trio.open_nursery() as n:
        n.start_soon(signals)
        n.start_soon(market)
        n.start_soon(execution)


# --------------------------------------------------------------------------- showing progress (live and replay)


async def open_dashboard(run_dir: Path) -> trio.Process:
    """The Textual dashboard on this run's relays, as a child process that owns the terminal."""
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "tools.cli", "dashboard", "--socket-dir", str(run_dir)])


async def show_for(duration: float, dashboard: trio.Process | None, every: float, summary: Callable[[], None]) -> None:
    """Run for ``duration`` seconds: until the dashboard quits when there is one, else calling
    ``summary`` every ``every`` seconds."""
    with trio.move_on_after(duration):
        while dashboard is None or dashboard.returncode is None:
            if dashboard is None:
                await trio.sleep(every)
                summary()
            else:
                await trio.sleep(0.5)


async def close_dashboard(dashboard: trio.Process) -> None:
    if dashboard.returncode is None:
        dashboard.terminate()
        await dashboard.wait()
    # leave the dashboard's alternate screen, show the cursor, clear: the report prints cleanly
    print("\033[?1049l\033[?25h\033[2J\033[H", end="", flush=True)


# --------------------------------------------------------------------------- main


async def _run(args: argparse.Namespace, net: Devnet, deploy_file: Path, run_dir: Path, tally: Tally,
               cex: CexSetup | None = None, xchain: XChainSetup | None = None) -> None:
    """The supervised system, the market driver and the display until ``--duration`` ends or the first
    SIGINT/SIGTERM; then the driver stops, in-flight executions settle (a second signal cuts that short)
    and every process ends. The demo owns the signals (the supervisor does not catch them here), so one
    Ctrl-C stops all of it."""
    global _say_stream
    from tools.deployment import load_deployment
    from tools.supervisor import Supervisor

    dep = load_deployment(deploy_file)
    processes = dep.processes
    if args.metrics:
        from tools.metrics import expose_for_demo

        processes = expose_for_demo(processes, deploy_file.parent, say)
    sup = Supervisor(processes, handle_signals=False)
    stop_driver = threading.Event()
    active = trio.CancelScope()  # warm-up and the display; cancelled by the first signal
    settle = trio.CancelScope()  # cancelled by a second signal

    async def watch_signals(signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            name = signal.Signals(signum).name
            if tally.interrupted is None:
                tally.interrupted = name
                say(f"received {name}: stopping everything")
                sup.stopping = True  # a Ctrl-C in a terminal reaches the children too: do not restart them
                active.cancel()
            else:
                say(f"received {name} again: not waiting for in-flight executions")
                settle.cancel()

    dashboard = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_signals, signals)
            try:
                with active:
                    await sup.start(nursery)  # returns once the relays accept connections
                    nursery.start_soon(watch_bus, run_dir, tally)
                    trader = net.deployment.funded_accounts[0]
                    await trio.sleep(args.warmup)
                    if xchain is not None:
                        from tools.demo_xchain import wait_both_chains

                        await wait_both_chains(xchain, tally, say)
                    if cex is not None:
                        from tools.demo_cex import follow_cex

                        o = cex.options
                        assert tally.cex_tape is not None
                        say(f"market driver: the V3 0.05 % WETH/USDC pool follows the Binance stand-in's ETHUSDT mid "
                            f"{o.lag:g} s behind (real 2021-04-04 capture, {cex.price_map}), a move every {o.step:g} s")
                        nursery.start_soon(trio.to_thread.run_sync, follow_cex, net, trader, tally.cex_tape, o,
                                           stop_driver, tally, say)
                    else:
                        say(f"market driver: replaying real 2024-01-05 USDC/WETH swaps at {args.rate:g}/s "
                            f"on the V3 0.05 % pool{f' of chain {net.deployment.chain_id}' if xchain else ''}")
                        nursery.start_soon(trio.to_thread.run_sync, drive_market, net, trader, args.rate,
                                           Fraction(args.amplify), stop_driver, tally)
                    if xchain is not None:
                        from tools.demo_xchain import follow_lead_chain, measure_rtt

                        xo = xchain.options
                        say(f"market driver: chain {xchain.lagging.chain_id}'s V3 0.05 % WETH/USDC pool follows the "
                            f"moves of chain {xchain.lead.chain_id}'s {xo.lag:g} s late, a move every {xo.step:g} s")
                        nursery.start_soon(trio.to_thread.run_sync, follow_lead_chain, xchain, tally.follow_moves,
                                           stop_driver, say)
                        nursery.start_soon(measure_rtt, xchain, tally.rtt)
                    if not args.headless and sys.stdout.isatty():
                        import tools.supervisor as supervisor_module

                        quiet = (deploy_file.parent / "logs" / "demo.log").open("a")  # noqa: ASYNC230
                        _say_stream = supervisor_module.log_stream = quiet
                        print(f"[demo] opening the dashboard (q quits); progress is logged to {quiet.name}",
                              flush=True)
                        dashboard = await open_dashboard(run_dir)
                    await show_for(args.duration, dashboard, args.summary_every, lambda: say(
                        f"trades {tally.trades}  market msgs {tally.market}  signals {tally.signals}  "
                        f"outcomes {dict(sorted(tally.outcomes.items()))}  in flight {len(tally.open_signals)}  "
                        f"realized {fmt_units(tally.realized_wei, 18)} WETH  "
                        + (f"executed by flash source {dict(sorted(tally.by_flash.items()))}  " if tally.by_flash else "")
                        + f"gas {fmt_units(tally.gas_wei, 18)} ETH{'  HALTED' if tally.halted else ''}"
                        + (_cex_progress(tally) if cex is not None else "")
                        + (_xchain_progress(tally) if xchain is not None else "")))
            finally:
                stop_driver.set()
            if dashboard is not None:
                await close_dashboard(dashboard)
                import tools.supervisor as supervisor_module

                _say_stream = supervisor_module.log_stream = None
            say("stopping the market driver; letting in-flight executions settle")
            with settle:
                await trio.sleep(min(args.settle, 2.0) if tally.interrupted else args.settle)
                if xchain is not None:
                    from tools.demo_xchain import wind_down

                    await wind_down(sup, xchain, tally, deploy_file.parent / "data", say)
            await sup.stop_all()
            nursery.cancel_scope.cancel()


def _xchain_progress(tally: Tally) -> str:
    moves = tally.follow_moves
    return (f"  | lagging-chain moves {moves.trades if moves else 0}  cross-chain signals {len(tally.xc_ids)}  "
            f"outcomes {dict(sorted(tally.xc_outcomes.items()))}")


def _cex_progress(tally: Tally) -> str:
    tape = tally.cex_tape
    mid = f"{float(tape.mids[-1][1]):.2f}" if tape is not None and tape.mids else "-"
    return (f"  | CEX mid {mid}  quotes {tape.quotes if tape else 0}  CEX-DEX signals {tally.cex_signals}  "
            f"CEX-DEX outcomes {dict(sorted(tally.cex_outcomes.items()))}  "
            f"realized net {fmt_units(tally.cex_net, 6)} USDC")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=180.0, help="seconds of market activity (default 180)")
    ap.add_argument("--headless", action="store_true", help="print a live summary instead of the dashboard")
    ap.add_argument("--rate", type=float, default=3.0, help="real swaps replayed per second (default 3)")
    ap.add_argument("--amplify", default="4", help="size multiplier on the real swaps (default 4)")
    ap.add_argument("--cex", action="store_true",
                    help="a Binance stand-in (the real ETHUSDT capture) leads, the devnet's WETH/USDC follows: CEX-DEX "
                         "arbitrage")
    ap.add_argument("--cex-amplify", type=int, default=20, help="with --cex: the capture's price moves, multiplied "
                                                                "(default 20)")
    ap.add_argument("--cex-lag", type=float, default=5.0, help="with --cex: seconds the devnet pool trails the CEX "
                                                              "mid (default 5)")
    ap.add_argument("--chains", type=int, default=1,
                    help="2: two devnet chains, the real history replayed on one while the other lags, cross-chain "
                         "arbitrage from inventory on both, rebalanced through the bridge stand-in (default 1)")
    ap.add_argument("--block-times", default="2,0.25", metavar="S,S",
                    help="with --chains 2: each chain's block time in seconds (default 2,0.25)")
    ap.add_argument("--chain-lag", type=float, default=4.0,
                    help="with --chains 2: seconds the lagging chain trails the lead chain's moves (default 4)")
    ap.add_argument("--bridge-delay", type=int, default=8,
                    help="with --chains 2: seconds the bridge stand-in takes to complete a transfer (default 8)")
    ap.add_argument("--bridge-fee-bps", type=int, default=1,
                    help="with --chains 2: the bridge stand-in's fee in basis points (default 1)")
    ap.add_argument("--metrics", action="store_true",
                    help="every process serves Prometheus metrics (/metrics, /healthz, /readyz) on a free "
                         "loopback port, printed as 'metrics: NAME URL' lines; writes prometheus.yml beside the run")
    ap.add_argument("--replay", action="store_true", help="no chain: recorded logs or an archive, detect-only")
    ap.add_argument("--replay-source", choices=("auto", "archive", "logs"), default=None,
                    help="with --replay: the newest live-demo archive (auto prefers it) or the recorded logs")
    ap.add_argument("--replay-archive", default=None, help="with --replay: the archive directory to replay")
    ap.add_argument("--replay-speed", type=float, default=None, help="with --replay: archive replay speed factor")
    ap.add_argument("--summary-every", type=float, default=5.0, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=float, default=3.0, help=argparse.SUPPRESS)
    ap.add_argument("--settle", type=float, default=6.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cex and args.replay:
        ap.error("--cex runs on the devnet; it cannot be combined with --replay")
    if args.cex_amplify < 1 or args.cex_lag < 0:
        ap.error("--cex-amplify must be at least 1 and --cex-lag not negative")
    if args.chains not in (1, 2):
        ap.error("--chains: 1 or 2")
    if args.chains == 2 and (args.cex or args.replay):
        ap.error("--chains 2 runs without --cex and --replay")
    xoptions = None
    if args.chains == 2:
        from tools.demo_xchain import XChainOptions

        try:
            xoptions = XChainOptions(block_times=tuple(float(t) for t in args.block_times.split(",")),
                                     lag=args.chain_lag, bridge_delay=args.bridge_delay,
                                     bridge_fee_bps=args.bridge_fee_bps)
        except ValueError as exc:
            ap.error(str(exc))
    if args.replay:
        from tools.demo_replay import main as replay_main

        return replay_main(args)

    from chain.deployment import save_deployment
    from tools.devnet.deploy import start_devnet
    from tools.devnet.paths import DevnetSetupError

    work = _new_work_dir(DEMO_DIR, time.strftime("%Y%m%d-%H%M%S"))
    run_dir = Path(f"/tmp/alphapulse-demo-{os.getpid()}")  # short: AF_UNIX paths are limited to 107 bytes
    run_dir.mkdir(parents=True, exist_ok=True)
    os.environ["ALPHAPULSE_RUN_DIR"] = str(run_dir)
    say(f"working directory {work}")
    print_run_dir(run_dir)
    t0 = time.monotonic()
    xchain: XChainSetup | None = None
    try:
        if xoptions is not None:
            from tools.demo_xchain import start_chains

            nets = start_chains(work, xoptions)
        else:
            nets = [start_devnet(log_path=str(work / "anvil.log"))]
    except DevnetSetupError as exc:
        print(f"alphapulse demo: {exc}", file=sys.stderr)
        return 2
    net = nets[0]
    tally = Tally()
    xc_start: dict[int, dict[str, int]] = {}
    hold_start: dict[tuple[int, int], int] = {}
    try:
        for n in nets:
            bt = n.deployment.block_time
            say(f"devnet up: chain {n.deployment.chain_id} at {n.deployment.rpc_url}, "
                f"{len(n.deployment.pools)} pools on 3 venues ({time.monotonic() - t0:.1f} s)"
                + (f", {'automine' if bt is None else f'a block every {bt:g} s'}" if xoptions is not None else ""))
        if xoptions is not None:
            from tools.demo_xchain import Moves, fmt_inventory, read_inventory
            from tools.demo_xchain import prepare as prepare_xchain

            xchain = prepare_xchain(work, nets, xoptions, _deploy_arb)
            xc_start = read_inventory(xchain)
            for c in xchain.chains:
                say(f"chain {c.chain_id}: AlphaPulseArb {c.arb} owned by {c.owner} (key only in the encrypted "
                    f"keystore {c.keystore}), holding {fmt_inventory(_decimals(c.deployment), xc_start[c.chain_id])}")
            net = xchain.lead.net
            owner, arb, ks, pwfile, recipient = (xchain.lead.owner, xchain.lead.arb, xchain.lead.keystore,
                                                 xchain.lead.password_file, xchain.lead.recipient)
            tally.pool_tape = xchain.tape
            from tools.dashboard.model import DashboardModel

            tally.xc_model = DashboardModel()
            tally.follow_moves = Moves()
        else:
            owner, arb, ks, pwfile, recipient = _deploy_arb(net, work / "executor")
            say(f"AlphaPulseArb {arb} owned by {owner} (key only in the encrypted keystore {ks})")
            save_deployment(work / "deployment.json", [net.deployment], pids=[net.anvil.pid])
        cex = None
        inventory_start: dict[str, int] = {}
        if args.cex:
            from tools.demo_cex import CexOptions, CexTape, fund_inventory, prepare

            cex = prepare(work, net, CexOptions(amplify=args.cex_amplify, lag=args.cex_lag))
            fund_inventory(net, arb, cex)
            inventory_start = {sym: net.client.erc20_balance(net.deployment.address_of(sym), arb)
                               for sym in ("WETH", "USDC")}
            tally.cex_tape = CexTape()
            say(f"Binance stand-in on {cex.ws_url} and {cex.rest_url} (paper exchange keys in {cex.key_file.parent}), "
                f"ETHUSDT mapped {cex.price_map}")
        # every domain archived: the live run's signals and results beside its market data, so
        # `alphapulse backtest` can replay the market and compare its fills with what really happened
        deploy_file = _write_configs(work, run_dir, net.deployment, arb, ks, pwfile, cex,
                                     archive=("market_data", "signal", "execution"), xchain=xchain)
        from protocol.ids import TokenId

        weth = net.deployment.address_of("WETH")
        if xchain is None and cex is None:  # cycles also start in USDC (the Curve pool's): WETH lines stay WETH
            tally.profit_token = int(TokenId.of(net.deployment.chain_id, weth))
        before = net.client.erc20_balance(weth, recipient)
        others = [t for t in net.deployment.tokens if t.address != weth] if tally.profit_token else []
        before_other = {t.address: net.client.erc20_balance(t.address, recipient) for t in others}
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        if xchain is not None:
            from tools.demo_xchain import holdings

            hold_start = holdings(xchain)
        try:
            trio.run(_run, args, net, deploy_file, run_dir, tally, cex, xchain)
        except KeyboardInterrupt:
            tally.interrupted = tally.interrupted or "SIGINT"
            say("interrupted")
        landed = net.client.erc20_balance(weth, recipient) - before
        landed_other = {int(TokenId.of(net.deployment.chain_id, a)): net.client.erc20_balance(a, recipient) - b
                        for a, b in before_other.items()}
        quote = _usdc_quote(net)
        inventory = {sym: (net.deployment.token(sym).decimals, start,
                           net.client.erc20_balance(net.deployment.address_of(sym), arb))
                     for sym, start in inventory_start.items()}
        xc_end = read_inventory(xchain) if xchain is not None else {}
        hold_end = holdings(xchain) if xchain is not None else {}
        decimals = _decimals(net.deployment)
    finally:
        for n in nets:
            n.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    print()
    print("=" * 72)
    print("AlphaPulse demo: what happened")
    print("=" * 72)
    if args.cex:
        print(f"driver moves following the CEX    : {tally.trades} ({tally.trade_errors} failed)")
    else:
        print(f"real swaps replayed on the devnet : {tally.trades} ({tally.trade_errors} failed)"
              + (f" on chain {xchain.lead.chain_id}" if xchain is not None else ""))
    if xchain is not None:
        print(f"{f'lagging chain {xchain.lagging.chain_id} moves':<34}: {tally.follow_moves.trades} "
              f"({tally.follow_moves.trade_errors} failed)")
    print(f"market-data messages seen         : {tally.market}")
    print(f"signals published by the strategy : {tally.signals}")
    print(f"execution outcomes                : {dict(sorted(tally.outcomes.items()))}")
    print(f"executed through Uniswap V4 pools : {tally.v4_executed} (of {len(tally.v4_ids)} signals with a V4 hop)")
    print(f"executed per flash source         : {dict(sorted(tally.by_flash.items()))}  (POOL: a pool's flash swap, "
          "V4_UNLOCK: the V4 PoolManager, BALANCER: the Balancer V2 Vault)")
    print(f"in flight at stop                 : {len(tally.open_signals)}"
          + (f" (signal ids {', '.join(map(str, sorted(tally.open_signals)[:10]))}"
             f"{' ...' if len(tally.open_signals) > 10 else ''})" if tally.open_signals else ""))
    realized = tally.realized_wei
    print(f"realized gross profit (events)    : {fmt_units(realized, 18)} WETH{quote(realized)}")
    if tally.realized_other:
        print(f"... in other profit tokens        : {_fmt_tokens(net.deployment, tally.realized_other)}  (cycles that "
              "start there; not in the WETH lines); landed at the recipient, read on chain: "
              f"{_fmt_tokens(net.deployment, {t: v for t, v in landed_other.items() if v})}")
    print(f"gas paid                          : {fmt_units(tally.gas_wei, 18)} ETH{quote(tally.gas_wei)}")
    net_wei = tally.realized_wei - tally.gas_wei  # gas is paid in ETH, profit in WETH: 1:1
    print(f"net (realized - gas)              : {fmt_units(net_wei, 18)} WETH{quote(net_wei)}")
    print(f"profit landed at the recipient    : {fmt_units(landed, 18)} WETH  ({landed} wei, read on chain)"
          f"{quote(landed)}")
    if tally.cex_tape is not None:
        assert cex is not None
        _print_cex_summary(tally, inventory, {"ETH": cex.options.cex_base, "USDT": cex.options.cex_quote})
    if xchain is not None:
        _print_xchain_summary(tally, xchain, decimals, xc_start, xc_end)
        _print_books_vs_chains(work / "data" / "portfolio.sqlite", xchain, hold_start, hold_end)
    print()
    from tools.report_cli import main as report_main

    report_main(["--db", str(work / "data" / "portfolio.sqlite"), "--png", str(work / "report.png")])
    print(f"\nlogs and data: {work}")
    if tally.interrupted:
        print(f"stopped by {tally.interrupted}")
        return 130
    return 0


def _fmt_tokens(dep: ChainDeployment, amounts: dict[int, int]) -> str:
    """``{TokenId: amount}`` as ``12.345678 USDC, ...`` with the deployment's symbols and decimals."""
    from protocol.ids import TokenId

    out = []
    for token, amount in sorted(amounts.items()):
        address = TokenId(token).address
        try:
            t = dep.token(address)
            out.append(f"{fmt_units(amount, t.decimals)} {t.symbol}")
        except KeyError:
            out.append(f"{amount} of {address}")
    return ", ".join(out)


def _decimals(dep: ChainDeployment) -> dict[str, int]:
    return {t.symbol: t.decimals for t in dep.tokens}


def _print_xchain_summary(tally: Tally, xchain: XChainSetup, decimals: dict[str, int],
                          start: dict[int, dict[str, int]], end: dict[int, dict[str, int]]) -> None:
    """The cross-chain side of the run: opportunities, outcomes, profit, each contract's inventory (read on
    chain) and the time from a first leg's swap log to both legs submitted beside one RPC round trip."""
    from protocol.execution import BridgeTransferState
    from tools.demo_xchain import fmt_inventory, median_ms, percentile_ms

    print("-" * 72)
    print(f"cross-chain opportunities found   : {len(tally.xc_ids)}")
    print(f"cross-chain outcomes              : {dict(sorted(tally.xc_outcomes.items()))}")
    print(f"cross-chain executed / unwound    : {tally.xc_outcomes.get('EXECUTED', 0)} / "
          f"{tally.xc_outcomes.get('UNWOUND', 0)}")
    model = tally.xc_model
    usdc_d = decimals["USDC"]
    print(f"cross-chain realized gross profit : {fmt_units(tally.xc_realized, usdc_d)} USDC "
          f"({tally.xc_realized} units; the ExecutionResults, unwinds' losses included)")
    price = xchain.tape.last  # USDC per WETH: the lead pool after its last swap seen
    usdc_per_wei = price / 10 ** (18 - usdc_d) if price is not None else None
    costs = 0
    for c in xchain.chains:
        gas = model.chain_gas.get(c.chain_id, 0)
        worth = -(-gas * usdc_per_wei.numerator // usdc_per_wei.denominator) if usdc_per_wei is not None else 0
        costs += worth
        print(f"{f'gas on chain {c.chain_id} (legs, bridge)':<34}: {fmt_units(gas, 18)} ETH ({gas} wei)"
              + (f" = {fmt_units(worth, usdc_d)} USDC" if usdc_per_wei is not None else ""))
    from protocol.ids import TokenId

    symbols = {int(TokenId.of(c.chain_id, t.address)): t.symbol for c in xchain.chains for t in c.deployment.tokens}
    for tok, fee in sorted(model.bridge_fees.items()):
        sym = symbols.get(tok, "?")
        worth = fee if sym == "USDC" else (-(-fee * usdc_per_wei.numerator // usdc_per_wei.denominator)
                                           if usdc_per_wei is not None else 0)
        costs += worth
        print(f"{f'bridge fees in {sym}':<34}: {fmt_units(fee, decimals.get(sym, 0))} {sym} ({fee} units)")
    counts = model.transfer_counts
    print(f"rebalances (bridge transfers)     : {counts.get(BridgeTransferState.COMPLETED, 0)} completed, "
          f"{model.transfers_in_flight} in flight at stop, "
          f"{counts.get(BridgeTransferState.REFUSED, 0) + counts.get(BridgeTransferState.FAILED, 0)} refused/failed")
    net = tally.xc_realized - costs
    print(f"cross-chain realized net profit   : {fmt_units(net, usdc_d)} USDC ({net} units; gas and WETH fees at "
          f"{f'{float(price):,.2f}' if price is not None else '?'} USDC per WETH, chain {xchain.lead.chain_id}'s V3 "
          "0.05 % pool)")
    for c in xchain.chains:
        moved = {sym: end[c.chain_id][sym] - start[c.chain_id][sym] for sym in start[c.chain_id]}
        print(f"{f'chain {c.chain_id} contract inventory':<34}: {fmt_inventory(decimals, end[c.chain_id])}; moved "
              + ", ".join(f"{'+' if v >= 0 else ''}{fmt_units(v, decimals[sym])} {sym}" for sym, v in moved.items()))
    lat = tally.log_to_submitted()
    rtt = [v for values in tally.rtt.values() for v in values]
    print(f"first leg's log -> both submitted : p50 {percentile_ms(lat, 0.5)}  p99 {percentile_ms(lat, 0.99)} "
          f"(n={len(lat)}; the signal's TraceContext origin to the later leg's ExecutionStarted, as bench e2e)")
    print(f"one devnet RPC round trip         : p50 {median_ms(rtt)} (eth_blockNumber over HTTP, n={len(rtt)}; "
          + ", ".join(f"chain {cid} {median_ms(v)}" for cid, v in sorted(tally.rtt.items())) + ")")
    from tools.bench import load_average

    print(f"load average at the end           : {load_average()} (1, 5, 15 min; the timings mean little above "
          f"{os.cpu_count() or 1})")


def _print_books_vs_chains(db: Path, xchain: XChainSetup, start: dict[tuple[int, int], int],
                           end: dict[tuple[int, int], int]) -> None:
    """The books against both chains, to the wei (``tools.demo_xchain.reconcile_books``)."""
    from portfolio.books import native_token
    from protocol.ids import TokenId
    from tools.demo_xchain import reconcile_books

    rows = reconcile_books(db, start, end)
    names = {(c.chain_id, int(TokenId.of(c.chain_id, t.address))): (t.symbol, t.decimals)
             for c in xchain.chains for t in c.deployment.tokens}
    names.update({(c.chain_id, native_token(c.chain_id)): ("ETH", 18) for c in xchain.chains})
    differ = [r for r in rows if r[2] != r[3]]
    print(f"books vs both chains (to the wei) : {'EQUAL' if rows and not differ else 'DIFFERENT' if differ else 'no books'}"
          f" ({len(rows) - len(differ)} of {len(rows)} balances equal; the books' changes against the contracts' "
          "and the profit recipients' tokens and the owners' ETH, read on chain)")
    for chain, tok, books, moved in rows:
        sym, d = names.get((chain, tok), (str(tok), 0))
        print(f"  chain {chain} {sym:<5} books {fmt_units(books, d):>22} ({books})  chain {fmt_units(moved, d):>22} "
              f"({moved}){'' if books == moved else f'  DIFFERENCE {moved - books}'}")


def _print_cex_summary(tally: Tally, inventory: dict[str, tuple[int, int, int]], cex_start: dict[str, int]) -> None:
    """The CEX side of the run; ``inventory``: symbol -> (decimals, at start, at the end) of the contract's
    tokens, read on chain; ``cex_start``: the paper account's balances at start (exchange asset -> units)."""
    tape = tally.cex_tape
    assert tape is not None
    print("-" * 72)
    print(f"CEX quotes seen (Binance ETHUSDT) : {tape.quotes}, book invalidations {tape.invalidations} "
          "(first sync, and a resync at each lap of the capture)")
    print(f"CEX-DEX signals                   : {tally.cex_signals}")
    print(f"CEX-DEX outcomes                  : {dict(sorted(tally.cex_outcomes.items()))}")
    print(f"CEX orders answered               : {dict(sorted(tally.cex_orders.items()))}")
    print(f"DEX legs                          : {dict(sorted(tally.dex_legs.items()))}"
          + (f"; LEFT OPEN {fmt_units(tally.cex_left_open, 18)} ETH" if tally.cex_left_open else ""))
    print(f"CEX-DEX realized net profit       : {fmt_units(tally.cex_net, 6)} USDC  ({tally.cex_net} units, net of the "
          f"taker fee and the DEX gas; gross {fmt_units(tally.cex_realized, 6)} USDC)")
    decimals = {"ETH": 18, "USDT": 6}
    moved = ", ".join(f"{asset} {'+' if v >= 0 else ''}{fmt_units(v, decimals.get(asset, 0))} "
                      f"(now {fmt_units(cex_start.get(asset, 0) + v, decimals.get(asset, 0))})"
                      for asset, v in sorted(tally.cex_moved.items()))
    print(f"CEX balances moved (paper fills)  : {moved or 'nothing'}  (paper fills do not consume the replayed book)")
    chain = ", ".join(f"{sym} {'+' if end >= start else ''}{fmt_units(end - start, d)} (now {fmt_units(end, d)})"
                      for sym, (d, start, end) in inventory.items())
    print(f"chain inventory moved (contract)  : {chain}  (read on chain)")


def _usdc_quote(net: Devnet) -> Callable[[int], str]:
    """A WETH amount in the quote currency (``tools.registry``: USD through the deployment's main WETH/USDC
    pool) at that pool's price on the chain now, as a suffix for the summary."""
    from market.display import QuoteCurrency, Registry
    from protocol.ids import PoolId, TokenId
    from tools.registry import chain_entries, pool_id, quote_paths

    dep = net.deployment
    tokens, pools = chain_entries(dep)
    found = quote_paths(dep, "USDC")
    if found is None:
        return lambda amount: ""
    weth = int(TokenId.of(dep.chain_id, dep.weth))
    reg = Registry(tokens=tokens, pools=pools, quote=QuoteCurrency(name="USD", tokens={dep.chain_id: found[0]},
                                                                   paths=found[1], native={dep.chain_id: weth}))
    by_id = {int(pid): p for p in dep.pools if (pid := pool_id(dep, p)) is not None}
    prices: dict[int, int] = {}
    for pid in reg.quote_pools(weth) or ():
        p = by_id[pid]
        if p.kind == "v3":
            sqrt = net.client.v3_slot0(p).sqrt_price_x96
            prices[pid] = sqrt * sqrt >> 96
        else:
            r0, r1, _ = net.client.v2_reserves(p)
            prices[pid] = (r1 << 96) // r0 if r0 else 0
    label = ", ".join(f"{reg.pool_label(PoolId(pid))} at {reg.price(PoolId(pid), price, 1 << 96)}"
                      for pid, price in prices.items())

    def quote(amount: int) -> str:
        value = reg.in_quote(amount, weth, prices.get)
        return "" if value is None else f"  (= {value}; {label})"

    return quote


def print_run_dir(run_dir: Path) -> None:
    """The run's socket directory as a line to paste into another shell (``relay-cli``, the dashboard)."""
    print(f"ALPHAPULSE_RUN_DIR={run_dir}", flush=True)
