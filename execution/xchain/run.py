"""A cross-chain signal's run through the executor: the two-leg policy (:mod:`execution.xchain.legs`,
``specs/cross-chain-legs.md``) driving one swap per chain, each from that chain's AlphaPulseArb inventory.

Theory of operation
-------------------
The executor's shell hands every ``SignalKind.CROSS_CHAIN`` signal to :meth:`CrossChainRunner.handle`::

    check (plan.check: chains, venues, limits) -- halted? -- wait for both chains' market data
      -> re-price both legs on the executor's own pool state (plan.reprice)
      -> both legs prepared at once: eth_call of swap() must return the mirror's exact output,
         eth_estimateGas, fees from that chain's head (each on its own chain, through its own node)
      -> net = gross - both chains' gas (each converted through its own chain's pools) - the bridge cost;
         <= min_profit: UNPROFITABLE; shadow mode: SIMULATED
      -> LegMachine.start: both legs signed and broadcast at once, each watched on its chain;
         each leg's end -> LegMachine.on_leg; SendUnwind -> the landed leg swapped back (prepared and sent
         the same way) -> LegMachine.on_unwind; the machine's deadline -> LegMachine.on_timer
      -> Done: one message, ExecutionResult + two ChainLegReport

* **Each chain is a side**: an :class:`~execution.executor.Executor` for that chain alone (its node, its
  keystore's signer, its nonce sequence, its rows of the SQLite store) sharing the main executor's pool
  state, emergency stops, pools in flight and publisher. The side of the executor's own chain signs with
  the executor's key and takes nonces from the executor's own sequence.
* **Each leg's transaction** is :class:`~execution.cex.run.DexLeg` (``SignalRun``'s simulate / estimate /
  fee / sign / broadcast / watch / replace / cancel steps, RecordTx before anything leaves) on its side,
  with its own ``ExecutionStarted`` on its own chain. Its receipt timeout is ``leg_timeout_s``: a leg not
  mined by then is cancelled (a 0-value self-transfer at its nonce), and its on-chain deadline
  (``deadline_s`` <= ``leg_timeout_s`` after sending) keeps it from landing once given up.
* Each side's nonce sequence is the only one for its signer on that chain: the rebalancer's withdrawals and
  bridge sends with the same key are signed by the executor too (``execution/owner.py``), so a leg never reads
  the chain's pending count before it is signed.
* **After a restart** (:meth:`CrossChainRunner.recover`, once every chain's nonces are settled and the market
  data's backlog applied): each leg transaction's ``meta`` names its leg, deadline, signal and plan; each
  signal cut by the restart is settled leg by leg from its chains (:mod:`execution.xchain.recover`), its
  machine resumed (``LegMachine.resume``) and carried on (an unwind recorded before is settled, one not yet
  sent is sent), and it ends once, with both reports built from the receipts.
* The result's ``chain_id``, ``tx_hash``, ``gas_used`` and ``effective_gas_price`` are the source leg's;
  ``realized_profit`` is the change of the inventory on both chains in the profit token, gas apart (as for
  every signal): both quote amounts, plus the base left over valued on the source chain's pool.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from chain.rpc import HttpRpc
from execution.calldata import Kind, encode_swap
from execution.cex.run import DexLeg
from execution.config import ExecutorConfig
from execution.core import Action, Head, Publish, Receipt, Simulated, SimulationFailed
from execution.lifecycle import Attempt, LifecycleError, SignalExecution
from execution.validate import Signal, to_profit_token
from execution.xchain import plan as P
from execution.xchain import recover as R
from execution.xchain.legs import Done, LegMachine, LegPlan, LegReport, Limits, Result, SendLeg, SendUnwind
from protocol.execution import ChainLeg, ChainLegReport, ExecutionResult, Outcome
from protocol.fields import fit_text
from protocol.ids import PoolId, TokenId
from protocol.message import Message
from protocol.message import decode as decode_message
from protocol.message import encode as encode_message
from protocol.signals import CrossChainArbitrage
from runtime.errors import unwrap_group

if TYPE_CHECKING:
    from execution.executor import Executor

log = logging.getLogger("execution")
NS = 1_000_000_000


def side_config(main: ExecutorConfig, chain_id: int) -> ExecutorConfig:
    """The configuration a chain's side runs its leg transactions under: that chain's node, contract, gas
    token, keystore and venues; public submission (shadow stays shadow); ``leg_timeout_s`` as the receipt
    timeout."""
    x = main.cross_chain
    assert x is not None
    c = x.chain(chain_id)
    assert c is not None
    return msgspec.structs.replace(
        main, chain_id=c.chain_id, contract=c.contract, gas_token=c.gas_token, rpc_url=c.rpc_url, rpc_url_file="",
        rpc_url_env="", keystore=c.keystore, venues=c.venues, builders=(), cex=None, cross_chain=None,
        mode="shadow" if main.mode == "shadow" else "public",
        submission=msgspec.structs.replace(main.submission, receipt_timeout_s=x.leg_timeout_s))


def attach_side(main: Executor, side: Executor) -> None:
    """``side`` shares the main executor's market, stops and pools in flight (and its nonce sequence when it
    is the same chain)."""
    core = side.core
    core.state, core.halts, core.pools_in_flight, core.books = (main.core.state, main.core.halts,
                                                                main.core.pools_in_flight, main.core.books)
    if side.config.chain_id == main.config.chain_id:
        core.nonces = main.core.nonces


def build_sides(main: Executor, accounts: Mapping[int, Any]) -> tuple[dict[int, Executor], list[HttpRpc]]:
    """One side per ``[[cross_chain.chains]]`` entry: the executor's own chain through its own gateway and
    nonce sequence, every other through its own node (``rpc_url``) and signer (``accounts[chain_id]``, from
    that chain's keystore) with its own rows of the store. Returns the sides and the RPC clients to close."""
    from execution.chain import ChainGateway, node_rpc
    from execution.executor import Executor

    x = main.config.cross_chain
    sides: dict[int, Executor] = {}
    rpcs: list[HttpRpc] = []
    if x is None:
        return sides, rpcs
    for c in x.chains:
        cfg = side_config(main.config, c.chain_id)
        if c.chain_id == main.config.chain_id:
            side = Executor(cfg, main.chain, main.store, main.publisher)
        else:
            rpc = node_rpc(c.rpc_url, timeout=10.0)  # the executor's own client: kept alive, as the main chain's
            rpcs.append(rpc)
            gateway = ChainGateway(rpc, accounts[c.chain_id], chain_id=c.chain_id, contract=c.contract)
            side = Executor(cfg, gateway, main.store.for_chain(c.chain_id), main.publisher)
        attach_side(main, side)
        sides[c.chain_id] = side
    return sides, rpcs


@dataclass(slots=True)
class _Parent:
    """What :class:`DexLeg` reads from the run it belongs to."""

    core: Any
    sig: Signal
    ex: SignalExecution
    dex_hop: Any


class _UnwindTx(DexLeg):
    """An unwind's transaction: its simulation says what it returns (the pool moved with our own leg, which
    the executor's market data may not show yet); the contract enforces the loss bound (``min_out``)."""

    def _on_simulate(self, ev: Simulated | SimulationFailed) -> list[Action]:
        if isinstance(ev, Simulated):
            self.gross = ev.profit
        return super()._on_simulate(ev)


@dataclass(slots=True)
class _Answer:
    kind: str  # "leg" | "unwind"
    leg: int
    result: Result
    amount_out: int
    gas_wei: int
    detail: str


_RESULT = {Outcome.EXECUTED: Result.EXECUTED, Outcome.REVERTED: Result.REVERTED,
           Outcome.NOT_INCLUDED: Result.NOT_INCLUDED}
_OUTCOME_OF = {v: k for k, v in _RESULT.items()}


@dataclass(slots=True)
class _Recovered:
    """A leg transaction (or unwind attempt) a run before a restart sent, as its chain settled it: what the
    reports read of a :class:`DexLeg`."""

    end: tuple[Outcome, str, dict[str, Any]]
    ex: SignalExecution


class CrossChainRunner:
    """Runs CROSS_CHAIN signals for the executor ``main`` on its chain sides (chain id -> side executor)."""

    def __init__(self, main: Executor, sides: dict[int, Executor] | None = None) -> None:
        self.main = main
        self.sides = sides or {}

    # ------------------------------------------------------------------ one signal

    async def handle(self, sig: Signal, msg: Message | None, halted_by: str | None) -> ExecutionResult | None:
        run = _Run(self, sig, msg, halted_by)
        # --- FAILURE BOUNDARY, as Executor.handle's: an unexpected error is the signal's FAILED outcome, or
        # LEG_OPEN when a leg may be on chain.
        try:
            await run.go()
        except Exception as exc:  # noqa: BLE001 - the marked boundary: error -> one outcome with the reason
            if run.result is not None:
                raise
            reason = self.main.failure_reason(unwrap_group(exc))
            log.error("executor: cross-chain signal %d failed: %s", sig.signal_id, reason)
            for side in self.sides.values():  # a nonce a leg took and did not send: given back or filled
                await side._release_nonces(run)
            await run.failed(reason)
        return run.result

    # ------------------------------------------------------------------ restart recovery

    async def recover(self) -> None:
        """After every chain's ``Executor.recover`` (each chain's nonces settled, what was in flight broadcast
        again) and the market data's backlog: each cross-chain signal a run before the restart left without an
        outcome is settled leg by leg from its chains (``execution/xchain/recover.py``), its leg machine carried
        on from there (the unwind of a leg that landed alone) and its one outcome published with both
        ``ChainLegReport`` (``specs/cross-chain-legs.md``, "After a restart")."""
        store = self.main.store
        for signal_id, rows in store.unfinished_cross_chain().items():
            if store.signal_done(signal_id) is not None:
                continue
            run: _Run | None = None
            # --- FAILURE BOUNDARY, as handle's: an error settling one signal is its outcome (LEG_OPEN when a leg
            # may be on chain), never the executor's end
            try:
                xc, txs = R.group(rows)
                msg = decode_message(bytes.fromhex(xc["signal"]))
                run = _Run(self, Signal.from_message(msg), msg, None)
                await run.recover(xc, txs)
            except Exception as exc:  # noqa: BLE001 - the marked boundary
                reason = self.main.failure_reason(unwrap_group(exc))
                log.error("executor: cross-chain signal %d: restart recovery failed: %s", signal_id, reason)
                if run is None or run.result is not None:
                    continue
                run.restarted = True
                await run.failed(f"restart recovery: {reason}")


class _Run:
    def __init__(self, runner: CrossChainRunner, sig: Signal, msg: Message | None, halted_by: str | None) -> None:
        self.runner, self.main, self.sig, self.halted_by = runner, runner.main, sig, halted_by
        self.cfg = self.main.config
        src = sig.identity.chain_id
        self.ex = SignalExecution(signal_id=sig.signal_id, chain_id=src, strategy_id=sig.identity.strategy_id,
                                  profit_token=sig.economics.profit_token, mode=self.main.core.mode,
                                  expected_profit=sig.economics.gross_profit)
        found = msg.find(CrossChainArbitrage) if msg is not None else None
        self.xc = found if isinstance(found, CrossChainArbitrage) else None
        self.msg = msg
        self.restarted = False  # settled by the restart recovery (CrossChainRunner.recover)
        self.result: ExecutionResult | None = None
        self.plan: P.Plan | None = None
        self.machine: LegMachine | None = None
        self.txs: list[DexLeg | None] = [None, None]  # each leg's transaction
        self.unwinds: list[list[DexLeg]] = [[], []]  # each leg's unwind attempts

    @property
    def signal_id(self) -> int:
        return self.sig.signal_id

    # --- the way to the legs ------------------------------------------------------------------------

    async def go(self) -> None:
        sig, cfg, main = self.sig, self.cfg, self.main
        problem = P.check(sig, cfg, self.xc)
        if problem is None and any(cid not in self.runner.sides for cid in P.chains_of(sig)):
            problem = Outcome.FAILED, f"no chain side open for chains {P.chains_of(sig)}"
        if problem is not None:
            return await self.finish(*problem)
        halted = self.halted_by or main.core.halted_for(sig)
        if halted:
            return await self.finish(Outcome.HALTED, halted)
        with trio.move_on_after(cfg.validation.state_wait_s):
            while not P.market_ready(sig, main.core.state):
                await main._market_changed.wait()
        plan = P.reprice(sig, cfg, main.core.state)
        if not isinstance(plan, P.Plan):
            return await self.finish(*plan)
        self.plan = plan
        self.ex.validated(plan.gross)
        txs = [self._tx(i, spec.hop(), spec.expected_out) for i, spec in enumerate(plan.legs)]
        async with trio.open_nursery() as n:  # both legs prepared at once, each on its own chain
            for i, tx in enumerate(txs):
                n.start_soon(self._drive, i, tx, tx.simulate())
        for i, tx in enumerate(txs):
            if tx.done:
                assert tx.end is not None
                return await self.finish(tx.end[0], f"leg {i} (chain {plan.legs[i].chain.chain_id}): {tx.end[1]}",
                                         details={i: tx.end[1]})
        self.ex.simulated()
        costs = []
        for i, (tx, spec) in enumerate(zip(txs, plan.legs, strict=True)):
            side = self.runner.sides[spec.chain.chain_id]
            quote = spec.token_in if i == 0 else spec.token_out
            cost = to_profit_token(tx.estimate * tx.price, side.core.gas_token, quote, main.core.state)
            if cost is None:
                return await self.finish(Outcome.FAILED, f"cannot price chain {spec.chain.chain_id}'s gas in its quote "
                                                         "token (no pool with the gas token)")
            costs.append(cost)
        bridge = sig.economics.flash_fee  # the amortised bridge-back cost (specs/protocol.md)
        net = plan.gross - sum(costs) - bridge
        threshold = cfg.min_profit_for(int(sig.economics.profit_token))
        l0, l1 = plan.legs
        what = (f"chain {l0.chain.chain_id}: {l0.amount_in} -> {l0.expected_out}; chain {l1.chain.chain_id}: "
                f"{l1.amount_in} -> {l1.expected_out}; gross {plan.gross}, gas {costs[0]} + {costs[1]}, bridge {bridge}")
        if net <= threshold:
            return await self.finish(Outcome.UNPROFITABLE, f"net {net} <= min profit {threshold} ({what})")
        if main.core.mode.name == "SHADOW":
            return await self.finish(Outcome.SIMULATED, f"shadow: would trade both legs ({what}), net {net}",
                                     realized_profit=plan.gross)
        halted = main.core.halted_for(sig)
        if halted:
            return await self.finish(Outcome.HALTED, halted)
        self.txs = list(txs)
        self.machine = self._machine()
        await self._legs()

    def _machine(self) -> LegMachine:
        x = self.cfg.cross_chain
        assert x is not None and self.plan is not None
        l0, l1 = self.plan.legs
        return LegMachine(
            (LegPlan(chain_id=l0.chain.chain_id, amount_in=l0.amount_in, min_out=l0.min_out),
             LegPlan(chain_id=l1.chain.chain_id, amount_in=l1.amount_in, min_out=l1.min_out)),
            Limits(max_leg_open_ns=int(x.max_leg_open_s * NS), unwind_timeout_ns=int(x.unwind_timeout_s * NS),
                   max_unwind_attempts=x.max_unwind_attempts, max_unwind_loss_bps=x.max_unwind_loss_bps))

    def _tx(self, i: int, hop: Any, expected_out: int, *, unwind: bool = False) -> DexLeg:
        """A transaction on leg ``i``'s chain (its swap, or an unwind of it), with its own ExecutionStarted."""
        assert self.plan is not None
        spec = self.plan.legs[i]
        side = self.runner.sides[spec.chain.chain_id]
        sig = self.sig
        ex = SignalExecution(signal_id=sig.signal_id, chain_id=spec.chain.chain_id,
                             strategy_id=sig.identity.strategy_id, profit_token=int(spec.token_in),
                             mode=side.core.mode, expected_profit=0)
        ex.validated(0)
        parent = _Parent(core=side.core, sig=sig, ex=ex, dex_hop=sig.path.hops[i])
        cls = _UnwindTx if unwind else DexLeg
        return cls(parent, encode_swap(hop, 2**255), expected_out)  # type: ignore[arg-type]

    async def _drive(self, i: int, tx: DexLeg, actions: list[Action]) -> None:
        """Carry out ``tx``'s actions on leg ``i``'s chain until it is priced (prepared) or done."""
        assert self.plan is not None
        side = self.runner.sides[self.plan.legs[i].chain.chain_id]
        while True:
            event = None
            for a in actions:
                event = await side._do(tx, a)
            if tx.done or event is None:
                return
            actions = tx.on(event)

    # --- the legs -------------------------------------------------------------------------------------

    async def _legs(self, first: list[Any] | None = None) -> None:
        """Both legs sent and answered; ``first``: the machine's actions to begin with instead of its start
        (the restart recovery hands over an unwind still to be sent)."""
        m = self.machine
        assert m is not None
        send, recv = trio.open_memory_channel[_Answer](16)  # never full: 2 legs + their unwind attempts
        async with trio.open_nursery() as n:
            tasks: dict[int, tuple[trio.CancelScope, trio.Event]] = {}  # leg -> its current transaction's task

            def act(actions: list[Any]) -> Done | None:
                for a in actions:
                    if isinstance(a, SendLeg):
                        tx = self.txs[a.leg]
                        assert tx is not None
                        tasks[a.leg] = self._start(n, send, "leg", a.leg, tx, a.min_out, a.amount_in)
                    elif isinstance(a, SendUnwind):
                        spec = self._spec(a.leg)
                        tx = self._tx(a.leg, spec.hop(a.amount_in, a.min_out, reverse=True), a.min_out, unwind=True)
                        self.unwinds[a.leg].append(tx)
                        tasks[a.leg] = self._start(n, send, "unwind", a.leg, tx, a.min_out, a.amount_in)
                    elif isinstance(a, Done):
                        return a
                return None

            def answer(ans: _Answer) -> Done | None:
                now = self._now_ns()
                if ans.kind == "leg":
                    return act(m.on_leg(ans.leg, ans.result, now, amount_out=ans.amount_out, gas_wei=ans.gas_wei,
                                        detail=ans.detail))
                return act(m.on_unwind(ans.leg, ans.result, now, amount_out=ans.amount_out, gas_wei=ans.gas_wei,
                                       detail=ans.detail))

            done = act(m.start(self._now_ns()) if first is None else first)
            while done is None:
                with trio.move_on_at(m.deadline_ns / NS):
                    done = answer(await recv.receive())
                    continue
                # The deadline passed: stop watching what has not answered, let each stopped task end (one that
                # had just seen its transaction's end still answers: it sends without a checkpoint), take those
                # answers, and only then give up on what is still unanswered.
                for scope, finished in tasks.values():
                    scope.cancel()
                    await finished.wait()
                while done is None:
                    try:
                        done = answer(recv.receive_nowait())
                    except trio.WouldBlock:
                        break
                if done is None:
                    done = act(m.on_timer(self._now_ns()))
            n.cancel_scope.cancel()
        await self._report(done)

    def _start(self, n: trio.Nursery, send: trio.MemorySendChannel[_Answer], kind: str, i: int, tx: DexLeg,
               min_out: int, amount_in: int) -> tuple[trio.CancelScope, trio.Event]:
        scope, finished = trio.CancelScope(), trio.Event()

        async def go() -> None:
            try:
                with scope:
                    await self._send_one(send, kind, i, tx, min_out, amount_in)
            finally:
                finished.set()

        n.start_soon(go)
        return scope, finished

    async def _send_one(self, send: trio.MemorySendChannel[_Answer], kind: str, i: int, tx: DexLeg, min_out: int,
                        amount_in: int) -> None:
        x = self.cfg.cross_chain
        assert x is not None
        if kind == "unwind":  # prepared like a leg: simulation (the loss bound), estimate, fees
            await self._drive(i, tx, tx.simulate())
            if tx.done:
                assert tx.end is not None
                send.send_nowait(_Answer(kind, i, Result.NOT_SENT, 0, 0, tx.end[1]))
                return
        spec = self._spec(i)
        head = tx.head.timestamp if tx.head is not None else 0
        deadline = max(head, int(time.time())) + math.ceil(x.deadline_s)  # chain time, which the contract reads
        sent = tx.send(encode_swap(spec.hop(amount_in, min_out, reverse=kind == "unwind"), deadline))
        if not isinstance(sent, str) and self.msg is not None:
            tx.meta = self._xc_meta(tx.meta, kind, i, deadline)
        if isinstance(sent, str):
            send.send_nowait(_Answer(kind, i, Result.NOT_SENT, 0, 0, sent))
            return
        try:
            await self._drive(i, tx, sent)
        except Exception as exc:
            if tx.ex.attempts:  # it left: its fate is unknown, the boundary assumes the worst (LEG_OPEN)
                raise
            why = self.main.failure_reason(unwrap_group(exc))  # e.g. the node refused it: nothing is on chain
            log.warning("executor: signal %d: %s on chain %d not sent: %s", self.signal_id, kind, tx.cfg.chain_id, why)
            # the nonce it took: given back, or its gap filled (specs/executor-concurrency.md, "Nonces")
            await self.runner.sides[self._spec(i).chain.chain_id]._release_nonces(tx)
            send.send_nowait(_Answer(kind, i, Result.NOT_SENT, 0, 0, why))
            return
        assert tx.end is not None
        outcome, reason, _ = tx.end
        result = _RESULT.get(outcome, Result.NOT_SENT)
        out = tx.swapped.amount_out if result is Result.EXECUTED and tx.swapped is not None else 0
        if result is Result.EXECUTED and tx.swapped is None:
            result = Result.REVERTED
        send.send_nowait(_Answer(kind, i, result, out, tx.receipt_gas_wei, reason))

    def _xc_meta(self, meta: str, kind: str, i: int, deadline: int) -> str:
        """The store's ``meta`` of a leg's (or unwind's) transactions: which leg, its on-chain deadline, the
        signal and both legs as planned -- what the restart recovery needs to settle it and carry on."""
        assert self.plan is not None and self.msg is not None
        d = json.loads(meta)
        d["xc"] = {"kind": kind, "leg": i, "attempt": len(self.unwinds[i]) if kind == "unwind" else 0,
                   "deadline": deadline, "gross": self.plan.gross, "signal": encode_message(self.msg).hex(),
                   "legs": [{"amount_in": s.amount_in, "expected_out": s.expected_out, "min_out": s.min_out,
                             "kind": int(s.kind), "fee": s.fee, "factory": s.factory} for s in self.plan.legs]}
        return json.dumps(d)

    # --- after a restart ------------------------------------------------------------------------------

    async def recover(self, xc: dict[str, Any], txs: list[R.LegTx]) -> None:
        """Settle the legs a run before the restart sent, then carry the machine on (see CrossChainRunner)."""
        cfg, sig = self.cfg, self.sig
        x = cfg.cross_chain
        assert x is not None
        self.restarted = True
        specs = []
        for i, (h, cid, planned) in enumerate(zip(sig.path.hops, P.chains_of(sig), xc["legs"], strict=True)):
            side = x.chain(cid)
            if side is None or cid not in self.runner.sides:
                raise RuntimeError(f"chain {cid} of leg {i} is no longer configured")
            specs.append(P.LegSpec(leg=ChainLeg(i), chain=side, pool=PoolId(h.pool), token_in=TokenId.of(cid, h.token_in),
                                   token_out=TokenId.of(cid, h.token_out), amount_in=planned["amount_in"],
                                   expected_out=planned["expected_out"], min_out=planned["min_out"],
                                   kind=Kind(planned["kind"]), fee=planned["fee"], factory=planned["factory"]))
        self.plan = P.Plan(legs=(specs[0], specs[1]), gross=xc["gross"])
        self.ex.validated(self.plan.gross)
        self.ex.simulated()
        m = self.machine = self._machine()
        m.resume(self._now_ns())
        legs = {t.leg: t for t in txs if t.kind == "leg"}
        settled = await self._settle([legs.get(0), legs.get(1)], (0, 1), x.max_leg_open_s)
        actions: list[Any] = []
        for i, s in enumerate(settled):
            if s is not None:
                actions = m.on_leg(i, s.result, self._now_ns(), amount_out=s.amount_out, gas_wei=s.gas_wei,
                                   detail=f"after a restart: {s.detail}")
        if any(s is None for s in settled):
            actions = m.abandon(f"a leg still unsettled {x.max_leg_open_s:g} s after the restart")
        unwinds = {(t.leg, t.attempt): t for t in txs if t.kind == "unwind"}
        while actions and isinstance(actions[0], SendUnwind):
            a = actions[0]
            recorded = unwinds.get((a.leg, a.attempt))
            if recorded is None:  # not sent before the restart: sent now, as in a live run
                return await self._legs(first=actions)
            (s,) = await self._settle([recorded], (a.leg,), x.unwind_timeout_s, unwind=True)
            if s is None:
                actions = m.abandon(f"unwind attempt {a.attempt} still unsettled {x.unwind_timeout_s:g} s after the "
                                    "restart")
                break
            actions = m.on_unwind(a.leg, s.result, self._now_ns(), amount_out=s.amount_out, gas_wei=s.gas_wei,
                                  detail=f"after a restart: {s.detail}")
        (done,) = actions
        assert isinstance(done, Done)
        await self._report(done)

    async def _settle(self, txs: list[R.LegTx | None], legs: tuple[int, ...], wait_s: float, *,
                      unwind: bool = False) -> list[R.Settled | None]:
        """Each transaction's answer from its chain (``recover.settle``), asking again at each poll while one
        may still land, at most ``wait_s`` (None: still unsettled then)."""
        out: list[R.Settled | None] = [None] * len(txs)
        poll = self.cfg.submission.poll_interval_s
        with trio.move_on_after(wait_s):
            while True:
                for k, (t, i) in enumerate(zip(txs, legs, strict=True)):
                    if out[k] is not None:
                        continue
                    if t is None:
                        out[k] = R.settle((), deadline=0, head_timestamp=0, contract="")
                        continue
                    side = self.runner.sides[self._spec(i).chain.chain_id]
                    head = Head.from_rpc(await side.chain.head())  # before the receipts: see recover.settle
                    receipts: dict[str, Receipt | None] = {}
                    for row in t.rows:
                        r = await side.chain.receipt(row.tx_hash)
                        receipts[row.tx_hash] = None if r is None else Receipt.from_rpc(r)
                    s = out[k] = R.settle(t.facts(receipts), deadline=t.deadline, head_timestamp=head.timestamp,
                                          contract=side.config.contract)
                    if s is not None:
                        self._recovered(t, s, unwind=unwind)
                        log.info("executor: signal %d: %s %d on chain %d settled after the restart: %s (%s)",
                                 self.signal_id, "unwind" if unwind else "leg", i, side.config.chain_id,
                                 s.result.name, s.detail)
                if all(s is not None for s in out):
                    return out
                await trio.sleep(poll)
        return out

    def _recovered(self, t: R.LegTx, s: R.Settled, *, unwind: bool) -> None:
        """What the reports read of the settled transaction (its receipt, its first signed attempt)."""
        r = s.receipt
        kw = {} if r is None else {"block_number": r.block_number, "tx_hash": r.tx_hash_bytes, "gas_used": r.gas_used,
                                   "effective_gas_price": r.effective_gas_price}
        ex = SignalExecution(signal_id=self.signal_id, chain_id=self._spec(t.leg).chain.chain_id,
                             strategy_id=self.sig.identity.strategy_id, profit_token=0, mode=self.main.core.mode)
        first = t.rows[0]
        if first.public:
            ex.attempts.append(Attempt(tx_hash=bytes.fromhex(first.tx_hash[2:]), nonce=first.nonce,
                                       max_fee_per_gas=first.max_fee, max_priority_fee_per_gas=first.tip,
                                       gas_limit=first.gas_limit))
        rec = _Recovered((_OUTCOME_OF.get(s.result, Outcome.NOT_INCLUDED), s.detail, kw), ex)
        if unwind:
            self.unwinds[t.leg].append(rec)  # type: ignore[arg-type]
        else:
            self.txs[t.leg] = rec  # type: ignore[call-overload]

    def _spec(self, i: int) -> P.LegSpec:
        assert self.plan is not None
        return self.plan.legs[i]

    @staticmethod
    def _now_ns() -> int:
        return int(trio.current_time() * NS)

    # --- the one outcome --------------------------------------------------------------------------------

    async def finish(self, outcome: Outcome, reason: str, *, details: dict[int, str] | None = None,
                     **kw: Any) -> None:
        """The outcome of a signal that sent no leg: with a report per leg (NOT_SENT) when it has two."""
        held = self.main.core.pools_in_flight
        for p in [p for p, (sid, _) in held.items() if sid == self.signal_id]:
            del held[p]
        self.result = self.ex.finish(outcome, reason, **kw)
        hops, reports = self.sig.path.hops, ()
        if len(hops) == 2:
            plans = self.plan.legs if self.plan is not None else None
            reports = tuple(self._leg_report(i, LegReport(
                chain_id=PoolId(h.pool).chain_id, amount_in=h.amount_in,
                min_out=plans[i].min_out if plans is not None else h.amount_out,
                detail=(details or {}).get(i, "not sent")), outcome) for i, h in enumerate(hops))
        await self.main._do(self, Publish(self.result, extra=reports))

    async def failed(self, reason: str) -> None:
        m = self.machine
        if m is not None and m.state.value in ("legs", "unwinding"):
            (done,) = m.abandon(reason)
            assert isinstance(done, Done)
            return await self._report(done)
        if self.result is None:
            if self.ex.done:
                return
            await self.finish(Outcome.FAILED, reason)

    async def _report(self, done: Done) -> None:
        plan = self.plan
        assert plan is not None
        reports = tuple(self._leg_report(i, r, done.outcome) for i, r in enumerate(done.legs))
        # the inventory's change, in the profit token: quote on both chains, the base valued on the source
        l0, l1 = done.legs
        quote = (-l0.amount_in if l0.landed else 0) + l0.unwind_amount_out \
            + l1.amount_out - l1.unwind_amount_in
        base = l0.amount_out - l0.unwind_amount_in + l1.unwind_amount_out - (l1.amount_in if l1.landed else 0)
        realized = quote
        if base:
            src = plan.legs[0]
            value = self.main.core.state.convert(abs(base), src.token_out, src.token_in, round_up=base < 0)
            realized += (value or 0) if base > 0 else -(value or 0)
        kw: dict[str, Any] = {}
        tx0 = self.txs[0]
        if tx0 is not None and tx0.end is not None:
            kw = dict(tx0.end[2])
        attempts = [t.ex.attempts[0] for t in self.txs if t is not None and t.ex.attempts]
        outcome = done.outcome
        legs = "; ".join(
            f"chain {r.chain_id}: {r.result.name.lower()} {r.amount_in} -> {r.amount_out}"
            + (f", unwound {r.unwind_amount_in} -> {r.unwind_amount_out}" if r.unwind_amount_out else "")
            + (f", LEFT OPEN {r.left_open}" if r.left_open else "") for r in done.legs)
        reason = f"{done.reason} ({legs}); realized {realized}"
        if self.restarted:
            reason = f"settled after an executor restart: {reason}"
        try:
            if attempts:
                self.ex.submitted(attempts[0])
            self.result = self.ex.finish(outcome, reason, realized_profit=realized, **kw)
        except LifecycleError as exc:  # an outcome the lifecycle cannot take: a bug, said as FAILED
            self.result = self.ex.finish(Outcome.FAILED, f"{reason} ({exc})") if not self.ex.done else self.result
        assert self.result is not None
        held = self.main.core.pools_in_flight
        for p in [p for p, (sid, _) in held.items() if sid == self.signal_id]:
            del held[p]
        await self.main._do(self, Publish(self.result, extra=reports))

    def _leg_report(self, i: int, r: LegReport, outcome: Outcome) -> ChainLegReport:
        hop = self.sig.path.hops[i]
        tx = self.txs[i]
        kw = dict(tx.end[2]) if tx is not None and tx.end is not None else {}
        un = self.unwinds[i][-1] if self.unwinds[i] else None
        ukw = dict(un.end[2]) if un is not None and un.end is not None else {}
        return ChainLegReport(
            signal_id=self.signal_id, chain_id=r.chain_id, leg=i, outcome=int(outcome),
            result=int(r.result), unwind_result=int(r.unwind_result), unwind_attempts=r.unwind_attempts,
            block_number=kw.get("block_number", 0), tx_hash=kw.get("tx_hash", bytes(32)),
            gas_used=kw.get("gas_used", 0), effective_gas_price=kw.get("effective_gas_price", 0),
            token_in=TokenId.of(r.chain_id, hop.token_in), token_out=TokenId.of(r.chain_id, hop.token_out),
            amount_in=r.amount_in, min_out=r.min_out,
            amount_out=r.amount_out, unwind_block_number=ukw.get("block_number", 0) if r.unwind_amount_out else 0,
            unwind_tx_hash=ukw.get("tx_hash", bytes(32)) if r.unwind_amount_out else bytes(32),
            unwind_amount_in=r.unwind_amount_in, unwind_amount_out=r.unwind_amount_out,
            unwind_gas_cost=r.unwind_gas_wei, left_open=r.left_open,
            reason=fit_text(r.detail + (f"; unwind: {r.unwind_detail}" if r.unwind_detail else "")))


__all__ = ["CrossChainRunner", "attach_side", "build_sides", "side_config"]
