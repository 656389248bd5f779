"""``alphapulse backtest ARCHIVE``: replay an archive through the real strategy and a simulated executor.

    alphapulse backtest ARCHIVE [--latency-blocks N] [--json]
                        [--strategy-config F] [--executor-config F] [--portfolio-config F] [--deployment F]

``ARCHIVE`` is the directory the archivers write (``<run>/data/archive`` for a demo run: the
configs beside it, ``<run>/configs/*.toml`` and ``<run>/deployment.json``, are found on their own).
Its market data is verified first (``relays.archive_check``); a missing, incomplete or damaged
archive is one line and exit 2.

Theory of operation
-------------------
The archived market-data messages go, in sequence order, into

* the **strategy**: :class:`strategy.engine.StrategyEngine` (the live process's sans-IO core, with
  its configuration), whose signals are
* queued for the **simulated executor**: the live :class:`execution.core.ExecutorCore` fed the same
  messages, one :class:`~execution.core.SignalRun` at a time as the live shell runs them, whose
  requests are answered here instead of by a node:

  - ``AwaitMarket``: ready at once (the executor's view has every message the strategy had);
  - ``Simulate``: the re-validated calldata executed on the executor's pool state with the exact
    AMM math (:func:`execution.validate.fill`, the hop outputs re-validation itself computes);
  - ``Estimate``: the **gas model**: the strategy's gas units for the path (``[gas]`` base + per hop
    kind, :func:`strategy.economics.path_gas_units`); the core then applies the executor's own gas
    figures (limit multiplier, tip policy, base-fee multiplier, fee cap, ``max_gas_price_wei``);
  - ``Sign`` / ``Broadcast``: a transaction record, no key;
  - ``PollReceipts``: the **latency model**: the transaction lands in block ``S + N`` (``S`` the
    signal's block, ``N`` = ``--latency-blocks``, never before the block after the head the fees were
    priced on) and executes on *that block's* state: the archived state after every message of the
    blocks before it. It pays ``min(base fee + tip, max fee)`` with the base fee of the archived
    ``BlockHeader`` of that block (while the base fee exceeds the transaction's max fee it waits
    for a later block). A hop below its minimum or a profit below ``minProfit`` reverts, as the
    contract does; otherwise the receipt carries the contract's ``ArbitrageExecuted`` event and the
    core books it as the live executor does (``SignalRun.settle``).

The strategy also gets the simulated executor's results (``StrategyEngine.on_execution``), as the live
process reads them from the execution relay: with ``[hold_back]`` on, a signal's pools are held until
its simulated result, as the live run held them until the live one.

Every signal and execution record goes into an in-memory portfolio book (:class:`portfolio.books.Books`,
with the archived prices), and the report is the live report's (:func:`portfolio.report.build_report`:
funnel, outcomes, reasons, P&L), with tokens named by ``tools.registry``.

When the archive also holds the live run's ``signal`` and ``execution`` domains (the demo archives
all three), each live EXECUTED trade is matched to the backtest's signal with the same block and
path, and the realized profits are compared (``live`` in the output).

What a backtest cannot know: the archived market already contains the live run's own trades (a
backtest fill does not move the archived pools), and gas used is the model's, not the EVM's.

Exit status: 0 done, 2 bad arguments, configuration or archive.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode

from execution.calldata import ARBITRAGE_EXECUTED_TOPIC
from execution.config import ExecutorConfig
from execution.core import (
    AwaitMarket,
    Broadcast,
    Broadcasted,
    Estimate,
    Estimated,
    Event,
    ExecutorCore,
    FetchHead,
    HeadSeen,
    MarketReady,
    Polled,
    PollReceipts,
    Publish,
    Receipt,
    Sign,
    SignalRun,
    Signed,
    Simulate,
    Simulated,
    SimulationFailed,
    Tx,
)
from execution.validate import Signal, fill, revalidate
from market.path import Hop as MarketHop
from portfolio.books import Books, open_db
from protocol.execution import ExecutionResult, Outcome
from protocol.header import Domain
from protocol.market import BlockHeader
from protocol.message import Message
from protocol.signals import ArbitragePath, SignalIdentity
from strategy.config import StrategyConfig
from strategy.economics import path_gas_units
from strategy.engine import StrategyEngine

EXIT_OK = 0
EXIT_USAGE = 2
_NS = 1_000_000_000


class BacktestError(Exception):
    """The backtest cannot run (archive, configuration): one line, exit 2."""


# --------------------------------------------------------------------------- the simulated executor


@dataclass(slots=True)
class _InFlight:
    run: SignalRun
    sig: Signal
    tx: Tx
    land_at: int  # the block the transaction is included in
    hops: tuple[Any, ...]  # the calldata hops (execution.calldata.Hop)
    min_profit: int
    gas_units: int


@dataclass(slots=True)
class Trade:
    """One signal of the backtest and what became of it."""

    signal_id: int
    block_number: int  # the signal's block
    key: tuple[Any, ...]  # (block, path): matches the live run's signal
    result: ExecutionResult | None = None


@dataclass
class Backtest:
    """Sans-IO: archived market-data messages in (:meth:`on_market`), books and trades out.

    ``latency_blocks`` >= 1: a fill lands that many blocks after its signal's block."""

    strategy: StrategyConfig
    executor: ExecutorConfig
    latency_blocks: int = 1
    valuation: dict[int, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.latency_blocks < 1:
            raise BacktestError(f"--latency-blocks must be at least 1 (a transaction lands after its signal's "
                                f"block), got {self.latency_blocks}")
        import msgspec

        cfg = self.executor if self.executor.mode == "public" else msgspec.structs.replace(self.executor, mode="public")
        self.engine = StrategyEngine(self.strategy)
        self.core = ExecutorCore(cfg, address=cfg.contract)
        self.core.nonces.reconcile(latest=0, pending=0, max_live=None)
        self.books = Books(open_db(":memory:"), self.valuation)
        self.queue: deque[tuple[Signal, Message]] = deque()
        self.in_flight: _InFlight | None = None
        self.trades: dict[int, Trade] = {}
        self.headers: dict[int, BlockHeader] = {}  # block -> its archived header (base fees)
        self.seq = {Domain.SIGNAL: 0, Domain.EXECUTION: 0}
        self.messages = 0
        self.first_block = self.last_block = 0
        self.now_ns = 0

    # --- input ------------------------------------------------------------------------------------

    def on_market(self, msg: Message) -> None:
        self.messages += 1
        self.now_ns = msg.receive_time_ns or msg.event_time_ns or self.now_ns
        chain = self.core.config.chain_id
        block = 0
        for t in msg.tlvs:
            if type(t) is BlockHeader:
                if t.chain_id == chain:
                    self.headers[t.number] = t
                    block = max(block, t.number)
            else:
                block = max(block, getattr(t, "block_number", 0) or 0)
        if block:
            self.first_block = self.first_block or block
            self.last_block = max(self.last_block, block)
        # a transaction included in block B executes on the state the blocks before B left
        if self.in_flight is not None and block >= self.in_flight.land_at:
            self._land(block)
        self.core.on_market_data(msg)
        self.books.apply(Domain.MARKET_DATA, [msg])
        for out in self.engine.on_message(msg, self.now_ns):
            self._signal(out)
        self._work()

    def finish(self) -> None:
        """The archive ended: a transaction still waiting for its block was never seen included."""
        f = self.in_flight
        if f is not None:
            self.in_flight = None
            self._publish(_not_included(f.run, f"the archive ends at block {self.last_block}, before block "
                                               f"{f.land_at} where the transaction would land"))
            self._record(f.run)
        while self.queue:
            sig, _ = self.queue.popleft()
            run = self.core.run(sig)
            self._publish(run.fail("the archive ended before the executor took the signal"))
            self._record(run)

    # --- signals and runs --------------------------------------------------------------------------

    def _signal(self, msg: Message) -> None:
        self.seq[Domain.SIGNAL] += 1
        msg = Message(domain=msg.domain, tlvs=msg.tlvs, source_id=msg.source_id, source_seq=msg.source_seq,
                      domain_seq=self.seq[Domain.SIGNAL], event_time_ns=msg.event_time_ns,
                      receive_time_ns=msg.receive_time_ns)
        self.books.apply(Domain.SIGNAL, [msg])
        sig = Signal.from_message(msg)
        self.trades[sig.signal_id] = Trade(sig.signal_id, sig.identity.block_number, signal_key(msg))
        self.queue.append((sig, msg))

    def _work(self) -> None:
        """One signal at a time, as the live executor's worker: the next starts once the last has its result."""
        while self.in_flight is None and self.queue:
            sig, _ = self.queue.popleft()
            run = self.core.run(sig)
            self._drive(run, sig, run.start(self._now()))

    def _now(self) -> float:
        return self.now_ns / _NS

    def _drive(self, run: SignalRun, sig: Signal, actions: list[Any]) -> None:
        """Carry out the run's actions until it ends or waits for its block."""
        ctx: dict[str, Any] = {}
        while actions:
            event: Event | None = None
            for a in actions:
                t = type(a)
                if t is Publish:
                    self._publish([a])
                elif t is AwaitMarket:
                    event = MarketReady(self._now())
                elif t is Simulate:
                    event = self._simulate(run, sig, ctx)
                elif t is Estimate:
                    event = Estimated(ctx["gas_units"])
                elif t is FetchHead:
                    head = self.core.latest_head
                    if head is None:
                        actions = run.fail("no block header in the archive yet")
                        break
                    event = HeadSeen(head)
                elif t is Sign:
                    event = Signed(_tx(sig, a))
                elif t is Broadcast:
                    event = Broadcasted(a.tx)
                elif t is PollReceipts:
                    assert run.head is not None and run.tx is not None
                    land = max(sig.identity.block_number + self.latency_blocks, run.head.number + 1)
                    self.in_flight = _InFlight(run, sig, run.tx, land, ctx["hops"], ctx["min_profit"],
                                               ctx["gas_units"])
                    return
                # RecordTx, MarkPublic, SettleNonce, Log: the live shell's bookkeeping, nothing to simulate
            else:
                if event is None:
                    break
                actions = run.on(event)
                continue
            self._publish(actions)
            break
        self._record(run)

    def _simulate(self, run: SignalRun, sig: Signal, ctx: dict[str, Any]) -> Simulated | SimulationFailed:
        """``eth_call`` of the calldata on the executor's state: the re-validated hops (re-validation is
        pure: the same state gives the verdict the run just had) through :func:`fill`."""
        cfg = self.core.config
        v = revalidate(sig, self.core.state, cfg.factories, max_age_blocks=cfg.validation.max_age_blocks(sig.identity.chain_id),
                       onchain_min_profit_bps=cfg.validation.onchain_min_profit_bps, v4_hooks=cfg.v4_hooks,
                       curve_coins=cfg.curve_coins)
        assert v.outcome is None, v.reason
        ctx["hops"], ctx["min_profit"] = v.hops, v.min_profit_onchain
        ctx["gas_units"] = gas_units(sig, self.core, self.strategy)
        f = fill(v.hops, self.core.state, sig.path.hops, v.min_profit_onchain)
        if f.revert:
            return SimulationFailed(f"eth_call reverted: {f.revert}")
        return Simulated(f.profit)

    def _land(self, block: int) -> None:
        """The in-flight transaction is included in ``block`` (on the state before it), unless its max
        fee is below that block's base fee (then it waits for the next)."""
        f = self.in_flight
        assert f is not None
        header = self.headers.get(block)
        base_fee = header.base_fee if header is not None else (self.core.latest_head.base_fee
                                                               if self.core.latest_head else 0)
        if base_fee > f.tx.max_fee_per_gas:
            f.land_at = block + 1
            return
        self.in_flight = None
        price = min(base_fee + f.tx.max_priority_fee_per_gas, f.tx.max_fee_per_gas)
        result = fill(f.hops, self.core.state, f.sig.path.hops, f.min_profit)
        logs: tuple[dict[str, Any], ...] = ()
        if not result.revert:
            logs = (arbitrage_executed_log(self.core.config.contract, f.hops[0].token_in, f.hops[0].amount_in,
                                           result.profit),)
        receipt = Receipt(tx_hash=f.tx.hash_hex, block_number=block, gas_used=f.gas_units, effective_gas_price=price,
                          status=0 if result.revert else 1, logs=logs)
        self._publish(f.run.on(Polled(self._now(), 0, receipt)))
        self._record(f.run)

    def _publish(self, actions: Iterable[Any]) -> None:
        for a in actions:
            if type(a) is not Publish:
                continue
            self.seq[Domain.EXECUTION] += 1
            msg = Message(domain=Domain.EXECUTION, tlvs=(a.tlv, *a.extra), source_id=self.core.config.source_id,
                          source_seq=self.seq[Domain.EXECUTION], domain_seq=self.seq[Domain.EXECUTION],
                          event_time_ns=self.now_ns, receive_time_ns=self.now_ns)
            self.books.apply(Domain.EXECUTION, [msg])
            # the strategy reads the execution relay too: with [hold_back] its held pools wait for these
            # results (else each signal would hold its pools until the hold's timeout, which the live run
            # never waited for, and the backtest would not signal what the live run signalled)
            self.engine.on_execution(msg)

    def _record(self, run: SignalRun) -> None:
        if run.result is not None and run.signal_id in self.trades:
            self.trades[run.signal_id].result = run.result


def _not_included(run: SignalRun, reason: str) -> list[Any]:
    """A submitted run whose block never comes: the outcome the live watch gives a transaction it never
    saw mined (the live shell reaches it through its timers, which a replay has no use for)."""
    return run._finish(Outcome.NOT_INCLUDED, reason)


def _tx(sig: Signal, a: Sign) -> Tx:
    """A signed transaction's record without a key: its hash names the signal and the nonce."""
    digest = hashlib.sha256(f"backtest {sig.signal_id} {a.nonce} {a.max_fee_per_gas}".encode()).digest()
    return Tx(raw=b"", tx_hash=digest, nonce=a.nonce, gas_limit=a.gas_limit, max_fee_per_gas=a.max_fee_per_gas,
              max_priority_fee_per_gas=a.max_priority_fee_per_gas)


def gas_units(sig: Signal, core: ExecutorCore, strategy: StrategyConfig) -> int:
    """The gas model's units for a signal's path: the strategy's ``[gas]`` figures per hop kind."""
    states = []
    for h in sig.path.hops:
        pool, _ = MarketHop.from_wire(h)
        s = core.state.tradable(pool)
        assert s is not None  # re-validated just before
        states.append(s)
    return path_gas_units(tuple(states), strategy.gas)


def arbitrage_executed_log(contract: str, token: str, amount_in: int, profit: int) -> dict[str, Any]:
    """The receipt log ``AlphaPulseArb`` emits on success (what ``SignalRun.settle`` reads the profit from)."""
    return {"address": contract, "topics": [ARBITRAGE_EXECUTED_TOPIC, bytes(12) + bytes.fromhex(token[2:]), bytes(32)],
            "data": abi_encode(["uint256", "uint256"], [amount_in, profit])}


def signal_key(msg: Message) -> tuple[Any, ...]:
    """What identifies one signal across runs (its id does not): its block and its exact path."""
    ident, path = msg.find(SignalIdentity), msg.find(ArbitragePath)
    assert isinstance(ident, SignalIdentity) and isinstance(path, ArbitragePath)
    return (ident.chain_id, ident.block_number,
            tuple((int(h.pool), bytes(h.token_in), h.amount_in, h.amount_out) for h in path.hops))


# --------------------------------------------------------------------------- the live run, when archived


def live_trades(archive: Path) -> dict[tuple[Any, ...], ExecutionResult] | None:
    """The live run's results by signal key, from the archive's ``signal`` and ``execution`` domains
    (None when the archive does not hold both)."""
    from relays.archiver import archive_files, read_archive

    if not archive_files(archive, "signal") or not archive_files(archive, "execution"):
        return None
    keys = {}
    for msg in read_archive(archive, "signal"):
        ident = msg.find(SignalIdentity)
        if isinstance(ident, SignalIdentity) and msg.find(ArbitragePath) is not None:
            keys[ident.signal_id] = signal_key(msg)
    out = {}
    for msg in read_archive(archive, "execution"):
        for t in msg.tlvs:
            if type(t) is ExecutionResult and t.signal_id in keys:
                out[keys[t.signal_id]] = t
    return out


def compare_live(bt: Backtest, live: dict[tuple[Any, ...], ExecutionResult]) -> dict[str, Any]:
    """For every trade the live run executed: the backtest's outcome and realized profit beside the live one."""
    ours = {t.key: t for t in bt.trades.values()}
    rows = []
    for key, r in sorted(live.items(), key=lambda kv: (kv[0][1], kv[1].signal_id)):
        if r.outcome != Outcome.EXECUTED:
            continue
        t = ours.get(key)
        res = t.result if t is not None else None
        rows.append({"signal_block": key[1], "live_signal_id": r.signal_id, "live_block": r.block_number,
                     "live_latency_blocks": r.block_number - key[1], "live_realized_profit": r.realized_profit,
                     "backtest_signal_id": t.signal_id if t else None,
                     "backtest_outcome": Outcome(res.outcome).name if res else ("NOT_SIGNALLED" if t is None else None),
                     "backtest_block": res.block_number if res else None,
                     "backtest_realized_profit": res.realized_profit if res else None,
                     "equal": bool(res and res.outcome == Outcome.EXECUTED and res.realized_profit == r.realized_profit)})
    return {"live_executed": len(rows), "equal_to_the_wei": sum(r["equal"] for r in rows), "trades": rows}


# --------------------------------------------------------------------------- the command


@dataclass(frozen=True)
class Inputs:
    archive: Path
    strategy: StrategyConfig
    executor: ExecutorConfig
    valuation: dict[int, tuple[int, int]]
    valuation_tokens: list[int]
    deployment: Path | None


def _found(given: str | None, run: Path, rel: str, what: str, flag: str) -> Path:
    path = Path(given) if given else run / rel
    if not path.is_file():
        raise BacktestError(f"no {what} at {path} (give {flag} FILE; a demo run's archive finds its own under "
                            f"<run>/configs)")
    return path


def load_inputs(args: argparse.Namespace) -> Inputs:
    from execution.config import load_config as load_executor
    from runtime.config import ConfigError
    from strategy.config import load_config as load_strategy
    from tools.replay import ArchiveError, inspect_archive

    archive = Path(args.archive)
    try:
        info = inspect_archive(archive, "market_data")
    except ArchiveError as exc:
        raise BacktestError(str(exc)) from None
    if info.check.note:
        print(f"alphapulse backtest: note: {info.check.note}", file=sys.stderr)
    if not info.check.ok:
        raise BacktestError(f"{info.check.summary()}; a backtest needs the whole market")
    run = archive.resolve().parent.parent
    try:
        strategy = load_strategy(_found(args.strategy_config, run, "configs/strategy.toml", "strategy config",
                                        "--strategy-config"))
        executor = load_executor(_found(args.executor_config, run, "configs/executor.toml", "executor config",
                                        "--executor-config"))
        valuation: dict[int, tuple[int, int]] = {}
        pcfg = Path(args.portfolio_config) if args.portfolio_config else run / "configs" / "portfolio.toml"
        if pcfg.is_file():
            from portfolio.config import load_config as load_portfolio

            valuation = load_portfolio(pcfg).valuation()
    except ConfigError as exc:
        raise BacktestError(str(exc)) from None
    dep = Path(args.deployment) if args.deployment else run / "deployment.json"
    return Inputs(archive=archive, strategy=strategy, executor=executor, valuation=valuation,
                  valuation_tokens=[v for v, _ in valuation.values() if v], deployment=dep if dep.is_file() else None)


def market_messages(archive: Path) -> Iterator[Message]:
    from relays.archiver import read_archive

    return read_archive(archive, "market_data")


def run_backtest(inputs: Inputs, latency_blocks: int) -> tuple[Backtest, dict[str, Any]]:
    from portfolio.report import add_readable, build_report
    from tools.registry import load_registry

    bt = Backtest(inputs.strategy, inputs.executor, latency_blocks=latency_blocks, valuation=inputs.valuation)
    for msg in market_messages(inputs.archive):
        bt.on_market(msg)
    bt.finish()
    rep = build_report(bt.books.db)
    registry = load_registry([inputs.deployment] if inputs.deployment else [], cache=None)
    add_readable(rep, registry, inputs.valuation_tokens, bt.books.price_q96)  # the quote currency at its last prices
    return bt, rep


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alphapulse backtest",
        description="Replay an archive's market data through the strategy and a simulated executor that fills "
                    "against the archived pool state (exact math, a gas model from the archived base fees, fills "
                    "N blocks after the signal); the live report's funnel and P&L.")
    p.add_argument("archive", metavar="ARCHIVE", help="archive directory (a demo run's <run>/data/archive)")
    p.add_argument("--latency-blocks", type=int, default=1, metavar="N",
                   help="fills land N blocks after the signal's block, on that block's state (default 1: the next block)")
    p.add_argument("--strategy-config", metavar="FILE", help="default: <run>/configs/strategy.toml beside the archive")
    p.add_argument("--executor-config", metavar="FILE", help="default: <run>/configs/executor.toml (its gas figures)")
    p.add_argument("--portfolio-config", metavar="FILE", help="default: <run>/configs/portfolio.toml (valuation token)")
    p.add_argument("--deployment", metavar="FILE", help="default: <run>/deployment.json (token names)")
    p.add_argument("--json", action="store_true", help="JSON with exact integers")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from portfolio.report import render_text
    from runtime.errors import BadFile, one_line

    try:
        inputs = load_inputs(args)
        bt, rep = run_backtest(inputs, args.latency_blocks)
        live = live_trades(inputs.archive)
    except (BacktestError, BadFile) as exc:
        print(f"alphapulse backtest: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    comparison = compare_live(bt, live) if live is not None else None
    trades = [{"signal_id": t.signal_id, "signal_block": t.block_number,
               "outcome": Outcome(t.result.outcome).name if t.result else None,
               "block": t.result.block_number if t.result else None,
               "realized_profit": t.result.realized_profit if t.result else 0,
               "gas_used": t.result.gas_used if t.result else 0,
               "effective_gas_price": t.result.effective_gas_price if t.result else 0,
               "reason": t.result.reason if t.result else ""} for t in bt.trades.values()]
    head = {"archive": str(inputs.archive), "latency_blocks": args.latency_blocks, "market_messages": bt.messages,
            "blocks": [bt.first_block, bt.last_block],
            "gas_model": "strategy [gas] units per path; executor [gas]/[tip] fees on the archived base fee"}
    try:
        if args.json:
            print(json.dumps({**head, "report": rep, "trades": trades, "live": comparison}, indent=2, default=str))
        else:
            print(f"backtest of {inputs.archive}: {bt.messages:,} market-data messages, blocks "
                  f"{bt.first_block}..{bt.last_block}, fills {args.latency_blocks} block(s) after the signal")
            print(f"gas model: {head['gas_model']}\n")
            print(render_text(rep))
            if comparison is not None:
                print(f"\nlive run: {comparison['live_executed']} trades executed, the backtest's realized profit "
                      f"equals the live one to the wei for {comparison['equal_to_the_wei']}")
                for r in comparison["trades"]:
                    if not r["equal"]:
                        print(f"  signal block {r['signal_block']}: live {r['live_realized_profit']} in block "
                              f"{r['live_block']}; backtest {r['backtest_outcome']} {r['backtest_realized_profit']}")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
