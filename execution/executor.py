"""The executor's trio shell: carries out what :mod:`execution.core` decides, signals concurrently.

Tasks (one nursery, see :func:`execution.process.run`):

* market data: the market-data relay into the core's :class:`market.state.PoolStateManager`
  (:meth:`Executor.on_market_data`; a run waiting for the market is woken);
* stops: ``EmergencyStop`` / ``Resume`` from the execution relay into the core's halt state
  (logged with their sender; the cursor is persisted, so stops survive our restarts);
* signals: the signal relay into a queue; a signal that *arrives* while a matching stop is in
  force is marked halted right there;
* worker: signals whose pools are disjoint from every signal in flight run concurrently, up to
  ``[submission] max_in_flight`` (:mod:`execution.schedule`: a signal through a pool in flight waits
  for it, then re-validates on the state it left; nonces are pipelined from the one
  :class:`~execution.store.NonceTracker`), each in :meth:`Executor.handle`: the core's
  :class:`~execution.core.SignalRun` returns actions, this shell performs them (RPC, signing, SQLite,
  publishing) and hands each answer back as an event, until the run has published its one
  ``ExecutionResult``. Per-run shell state (the early gas estimate, the last receipt poll) is keyed
  by the run.

Failure boundary: :meth:`Executor.handle` is the one place where an unexpected exception while
handling a signal becomes a FAILED outcome with the exception as its reason (clearly marked
below); the executor keeps going with the next signal. Anything outside it propagates.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import trio

from chain.rpc import scrub_urls
from execution.cex.gateway import FINAL, OrderGateway, OrderResult, OrderStatus
from execution.cex.run import CexAnswered, CexDexRun, CexQueried, PlaceOrder, QueryOrder
from execution.chain import BuilderClient, ChainGateway, NonceTaken, RpcFailure, SimulationReverted
from execution.config import ExecutorConfig
from execution.core import (
    CANCEL_GAS,
    MODES,
    Action,
    AwaitMarket,
    Broadcast,
    Broadcasted,
    BuilderInfo,
    BundleChecked,
    BundlesSent,
    CallBundle,
    CoreError,
    Estimate,
    Estimated,
    Event,
    ExecutorCore,
    FetchHead,
    FillNonce,
    Head,
    HeadSeen,
    Log,
    MarketReady,
    MarkPublic,
    NonceUsed,
    Polled,
    PollPrivate,
    PollReceipts,
    PrivatePolled,
    Publish,
    Receipt,
    RecordTx,
    SendBundles,
    SettleNonce,
    Sign,
    Signed,
    Simulate,
    Simulated,
    SimulationFailed,
    Tx,
    bundle_failure,
    pre_trade_rejection,
    recover_unmined,
)
from execution.lifecycle import HaltState
from execution.store import ExecutorStore, NonceTracker, TxRow
from execution.validate import Signal
from execution.xchain.run import CrossChainRunner
from market.state import PoolStateManager
from protocol.execution import CexFill, CexOrderPurpose, ExecutionResult, Outcome, SubmissionMode
from protocol.ids import TokenId
from protocol.message import Message
from protocol.signals import SignalKind
from protocol.tlv import TLV

__all__ = ["CANCEL_GAS", "MODES", "Executor", "Publisher", "pre_trade_rejection"]

log = logging.getLogger("execution")
_LEVELS = {"warning": logging.WARNING, "error": logging.ERROR}


def _answer_json(r: OrderResult) -> str:
    return json.dumps({"status": r.status.value, "executed": r.executed, "quote": r.quote,
                       "quote_scale": r.quote_scale, "order_id": r.order_id, "reason": r.reason})


def _answer_of(text: str) -> OrderResult | None:
    if not text:
        return None
    d = json.loads(text)
    return OrderResult(status=OrderStatus(d["status"]), executed=d["executed"], quote=d["quote"],
                       quote_scale=d["quote_scale"], order_id=d["order_id"], reason=d["reason"])


class Publisher:
    """Where results go (a RelayProducer in the process; a list in unit tests)."""

    async def publish(self, tlv: TLV) -> int:  # pragma: no cover - interface
        """Publish ``tlv``; returns its source sequence (0 when there is none)."""
        raise NotImplementedError

    def next_source_seq(self) -> int:  # pragma: no cover - interface
        """The source sequence the next ``publish`` will get (0: unknown)."""
        raise NotImplementedError


@dataclass(slots=True)
class _Queued:
    sig: Signal | None
    msg: Message
    halted_by: str | None
    seq: int
    received_ns: int = 0  # when the signal consumer took it from the relay (the debug stage line splits the wait)


class Executor:
    def __init__(self, config: ExecutorConfig, gateway: ChainGateway, store: ExecutorStore, publisher: Any,
                 builders: list[BuilderClient] | None = None, orders: OrderGateway | None = None) -> None:
        self.config = config
        self.chain = gateway
        self.orders = orders  # the exchange's order gateway (CEX-DEX signals), when [cex] is configured
        self.store = store
        self.publisher = publisher
        self.builders = builders or []
        self.core = ExecutorCore(config, address=gateway.address, builders=[
            BuilderInfo(name=b.name, call_bundle=b.call_bundle_supported) for b in self.builders])
        self._market_changed = trio.Event()
        # our chain's BlockHeaders seen on the market-data relay, and the count when receipts were last
        # asked for: a receipt can only appear with a new block, so a watch polls when one arrives
        self._heads = 0
        self._polled_at: dict[int, int] = {}  # id(run) -> self._heads at its last receipt poll
        self._new_head = trio.Event()
        self.outcomes: list[ExecutionResult] = []
        # id(run) -> (calldata, answer) of the eth_estimateGas started alongside its last simulation
        self._estimates: dict[int, tuple[bytes, Estimated | SimulationFailed | BaseException]] = {}
        # debug level: signal id -> strategy stamp to handled (us), logged with the run's stages
        self._handled_after: dict[int, str] = {}
        # CROSS_CHAIN signals (execution/xchain/): its chain sides are attached by the process when
        # [cross_chain] is configured; without them such a signal ends FAILED
        self.xchain = CrossChainRunner(self)

    #: what ``reconfigure`` can change while running (``runtime.reload`` patterns): thresholds,
    #: limits, fee policy and timeouts, read afresh by each signal's run
    RELOADABLE = ("validation", "limits", "gas", "tip", "submission")

    def reconfigure(self, config: ExecutorConfig) -> None:
        """Install a configuration that differs only in :attr:`RELOADABLE` tables (SIGHUP). Runs
        already started keep theirs (``SignalRun.cfg``); the next signal uses the new one."""
        self.config = config
        self.core.config = config

    @property
    def state(self) -> PoolStateManager:
        return self.core.state

    @property
    def halts(self) -> HaltState:
        return self.core.halts

    @property
    def nonces(self) -> NonceTracker:
        return self.core.nonces

    @property
    def mode(self) -> SubmissionMode:
        return self.core.mode

    @property
    def gas_token(self) -> TokenId:
        return self.core.gas_token

    # ------------------------------------------------------------------ inputs

    def on_market_data(self, msg: Message) -> None:
        if self.core.on_market_data(msg):
            self._heads += 1
            self._new_head.set()
            self._new_head = trio.Event()
        changed = self._market_changed
        if changed.statistics().tasks_waiting:  # a run waits for the market (AwaitMarket)
            changed.set()
            self._market_changed = trio.Event()

    def on_control(self, msg: Message) -> None:
        for line in self.core.on_control(msg):
            log.warning("executor: %s", line)

    def halted_for(self, sig: Signal) -> str | None:
        return self.core.halted_for(sig)

    def head_block(self) -> int:
        return self.core.head_block()

    # ------------------------------------------------------------------ one signal

    async def handle(self, item: _Queued, after_block: int = 0) -> ExecutionResult | None:
        """One signal to its one result (None: malformed, or ended before). ``after_block``: it waited for
        our transaction through one of its pools, which landed there (:mod:`execution.schedule`)."""
        sig = item.sig
        if sig is None:
            log.error("executor: malformed signal message seq %d dropped", item.seq)
            return None
        done = self.store.signal_done(sig.signal_id)
        if done is not None:
            log.info("executor: signal %d already ended as %s; not again", sig.signal_id, Outcome(done[0]).name)
            return None
        cross_chain = sig.identity.kind == SignalKind.CROSS_CHAIN
        if item.msg is not None and log.isEnabledFor(logging.DEBUG):
            now = time.time_ns()
            waited = (f"received {(item.received_ns - item.msg.receive_time_ns) // 1000} us, " if item.received_ns
                      else "") + f"handled {(now - item.msg.receive_time_ns) // 1000} us"
            if cross_chain:
                log.debug("stage: signal %d: strategy stamp -> %s", sig.signal_id, waited)
            else:  # written with the run's other stages once it is done (_drive): no log write on the path
                self._handled_after[sig.signal_id] = waited
        if cross_chain:
            return await self.xchain.handle(sig, item.msg, item.halted_by)
        run = self.core.run(sig, halted_by=item.halted_by, after_block=after_block)
        # --- FAILURE BOUNDARY: an unexpected error while handling this signal is its FAILED outcome.
        try:
            return await self._drive(run, run.start(trio.current_time()))
        except Exception as exc:  # noqa: BLE001 - the marked boundary: error -> FAILED with the reason
            if run.done:
                raise
            reason = self.failure_reason(exc)
            if reason == f"{type(exc).__name__}: {exc}":
                log.exception("executor: signal %d failed", sig.signal_id)
            else:  # the traceback would print the endpoint's secret: the scrubbed line only
                log.error("executor: signal %d failed: %s", sig.signal_id, reason)
            await self._release_nonces(run)
            await self._drive(run, run.fail(reason))
            return run.result

    async def _release_nonces(self, run: Any) -> None:
        """After a failed signal: a nonce it took and did not see broadcast. The chain's pending count above
        it means the node has it (our send got through before the error, or the key was used outside us):
        spent. Else it is given back, or filled when later nonces are out (``ExecutorCore.release_nonce``)."""
        held = self.nonces.held_by(run.signal_id)
        if not held:
            return
        try:
            pending = await self.chain.nonce("pending")
        except RpcFailure:
            pending = -1  # unknown: treat as unsent; a fill the node refuses (nonce taken) is harmless
        for nonce in held:
            if pending > nonce:
                self.nonces.consumed(nonce)
                continue
            for action in self.core.release_nonce(nonce):
                await self._do(run, action)

    def failure_reason(self, exc: BaseException) -> str:
        """A FAILED outcome's reason for ``exc``: it is published on the execution relay and archived,
        so no configured endpoint URL (credentials, API keys in paths or queries) survives in it."""
        x = self.config.cross_chain
        urls = [self.config.rpc_url, *(b.url for b in self.config.builders),
                *(c.rpc_url for c in (x.chains if x is not None else ()))]
        return scrub_urls(f"{type(exc).__name__}: {exc}", urls)

    async def _drive(self, run: Any, actions: list[Action]) -> ExecutionResult | None:
        """Carry out the run's actions in order; the last one's answer is the next event.

        At debug level each action's time and the core's own time per event (``core:<event>``: re-validation,
        calldata, fees) are kept and logged in one ``stage`` line when the drive ends, not as they happen:
        a log write between the simulation and the send would sit on the path it measures."""
        stages: list[tuple[str, int]] | None = [] if log.isEnabledFor(logging.DEBUG) else None
        try:
            while True:
                event: Event | CexAnswered | CexQueried | None = None
                for action in actions:
                    if stages is None:
                        event = await self._do(run, action)
                    else:
                        t0 = time.perf_counter_ns()
                        event = await self._do(run, action)
                        stages.append((type(action).__name__, time.perf_counter_ns() - t0))
                if run.done:
                    self._estimates.pop(id(run), None)
                    self._polled_at.pop(id(run), None)
                    return run.result
                if event is None:
                    raise CoreError(f"signal {run.signal_id}: step {run.step.value} asked for nothing")
                if stages is None:
                    actions = run.on(event)
                else:
                    t0 = time.perf_counter_ns()
                    actions = run.on(event)
                    stages.append(("core:" + type(event).__name__, time.perf_counter_ns() - t0))
        finally:
            if stages:
                waited = self._handled_after.pop(run.signal_id, None)
                log.debug("stage: signal %d:%s %s", run.signal_id,
                          "" if waited is None else f" strategy stamp -> {waited};",
                          ", ".join(f"{name} {ns // 1000} us" for name, ns in stages))

    async def _do(self, run: Any, a: Any) -> Event | CexAnswered | CexQueried | None:
        t = type(a)
        # --- side effects
        if t is Publish:
            assert isinstance(a, Publish)
            tlv = a.tlv
            out = [tlv, *a.extra] if a.extra else tlv
            if type(tlv) is ExecutionResult:
                # outcome and result in one transaction, before publishing (see execution/store.py)
                seq = self.publisher.next_source_seq()
                payload = b"".join(t.encode() for t in (tlv, *a.extra))
                self.store.finish_signal(tlv.signal_id, tlv.outcome, tlv.reason, result=payload, source_seq=seq)
                got = await self.publisher.publish(out)
                if got != seq:  # someone published in between: keep the sequence the result really has
                    self.store.set_result_seq(tlv.signal_id, got)
                self.outcomes.append(tlv)
                log.info("executor: signal %d -> %s: %s", tlv.signal_id, Outcome(tlv.outcome).name, tlv.reason)
            else:
                await self.publisher.publish(out)
                if type(tlv) is CexFill:  # a restart must not book this order's fill again
                    self.store.fill_published(tlv.signal_id, "entry" if tlv.purpose == CexOrderPurpose.ENTRY
                                              else "unwind")
            return None
        if t is RecordTx:
            assert isinstance(a, RecordTx)
            tx = a.tx
            self.store.record_tx(tx_hash=tx.hash_hex, signal_id=a.signal_id, nonce=tx.nonce, raw=tx.raw,
                                 max_fee=tx.max_fee_per_gas, tip=tx.max_priority_fee_per_gas, gas_limit=tx.gas_limit,
                                 meta=a.meta)
            return None
        if t is MarkPublic:
            assert isinstance(a, MarkPublic)
            self.store.mark_public(a.tx.hash_hex)
            return None
        if t is SettleNonce:
            assert isinstance(a, SettleNonce)
            self.store.settle_nonce(a.nonce, a.mined_hash)
            return None
        if t is Log:
            assert isinstance(a, Log)
            log.log(_LEVELS.get(a.level, logging.INFO), "%s", a.text)
            return None
        if t is FillNonce:
            assert isinstance(a, FillNonce)
            await self._fill_nonce(a.nonce)
            return None
        # --- requests: the answer is the next event
        if t is AwaitMarket:
            assert isinstance(a, AwaitMarket)
            with trio.move_on_at(a.deadline):
                while not run.market_ready():
                    await self._market_changed.wait()
            return MarketReady(trio.current_time())
        if t is Simulate:
            assert isinstance(a, Simulate)
            if self.chain.metered:  # one round trip: the profit and the gas (execution/chain.py)
                try:
                    profit, gas = await self.chain.simulate(a.data)
                except SimulationReverted as exc:
                    return SimulationFailed(str(exc))
                return Simulated(profit, gas)  # gas None: the node turned out not to meter, the core asks Estimate
            return await self._simulate_and_estimate(run, a.data)
        if t is Estimate:
            assert isinstance(a, Estimate)
            early = self._estimates.pop(id(run), None)
            if early is not None and early[0] == a.data:  # started together with the simulation
                if isinstance(early[1], BaseException):
                    raise early[1]
                return early[1]
            try:
                return Estimated(await self.chain.estimate_gas(a.data))
            except SimulationReverted as exc:
                return SimulationFailed(str(exc))
        if t is FetchHead:
            return HeadSeen(Head.from_rpc(await self.chain.head()))
        if t is Sign:
            assert isinstance(a, Sign)
            return Signed(Tx.of(self.chain.sign(nonce=a.nonce, gas_limit=a.gas_limit, data=a.data, to=a.to,
                                                max_fee_per_gas=a.max_fee_per_gas,
                                                max_priority_fee_per_gas=a.max_priority_fee_per_gas)))
        if t is Broadcast:
            assert isinstance(a, Broadcast)
            try:
                await self.chain.send_raw(a.tx.raw)
            except NonceTaken as exc:  # our key used outside the executor (or our own earlier tx at a watched nonce)
                return NonceUsed(await self.chain.nonce("pending"), self.failure_reason(exc))
            return Broadcasted(a.tx)
        if t is PollReceipts:
            assert isinstance(a, PollReceipts)
            if a.delay and self._heads == self._polled_at.get(id(run), -1):
                # no block since the last look: wait for our chain's next BlockHeader (a receipt comes with a
                # block), at most the poll interval -- not the whole interval: on a chain mining right after
                # our send, a fixed sleep held every executed signal (and the signals queued behind it)
                # ~50 ms after its block was mined
                with trio.move_on_after(a.delay):
                    await self._new_head.wait()
            self._polled_at[id(run)] = self._heads
            return await self._poll(a.hashes)
        if t is CallBundle:
            assert isinstance(a, CallBundle)
            res = await self.builders[a.builder].call_bundle([a.raw], a.block)
            return BundleChecked(bundle_failure(res))
        if t is SendBundles:
            assert isinstance(a, SendBundles)
            sent = 0
            errors = []
            for b in self.builders:
                for target in a.blocks:
                    try:
                        await b.send_bundle([a.raw], target)
                        sent += 1
                    except RpcFailure as exc:  # one builder down is not the bundle's end
                        errors.append(f"{b.name}: {exc}")
            return BundlesSent(trio.current_time(), sent, tuple(errors))
        if t is PollPrivate:
            assert isinstance(a, PollPrivate)
            with trio.move_on_at(a.deadline):
                await trio.sleep(a.delay)
            r = await self.chain.receipt(a.tx_hash)
            block = -1 if r is not None else await self.chain.block_number()
            return PrivatePolled(trio.current_time(), None if r is None else Receipt.from_rpc(r), block)
        if t is PlaceOrder:
            assert isinstance(a, PlaceOrder)
            return await self._place(run, a)
        if t is QueryOrder:
            assert isinstance(a, QueryOrder)
            return await self._query(run, a)
        raise CoreError(f"signal {run.signal_id}: no way to carry out {a!r}")

    async def _place(self, run: Any, a: PlaceOrder) -> CexAnswered:
        """One order through the gateway, awaited for ``a.timeout`` seconds (then abandoned: its state on the
        exchange is unknown, and the leg machine assumes the worst). The gateway maps every transport error
        to an ERROR result; the API key travels only in its request header."""
        if self.orders is None:
            raise CoreError(f"signal {run.signal_id}: an order to place but no [cex] order gateway")
        o = a.order
        log.info("executor: signal %d: CEX order %s %s %d steps at <= %d (%s)", run.signal_id, o.side.value, o.symbol,
                 o.quantity, o.limit_price, o.client_order_id)
        # recorded before it leaves: a restart finds (and queries) an order it never saw answered
        self.store.record_order(client_order_id=o.client_order_id, signal_id=run.signal_id, purpose=a.purpose,
                                meta=a.meta or "{}")
        with trio.move_on_after(a.timeout):
            res = await self.orders.place(o)
            if res.status in FINAL:
                self.store.answer_order(o.client_order_id, _answer_json(res))
            log.info("executor: signal %d: CEX order %s -> %s, executed %d, quote %d (order %d) %s", run.signal_id,
                     o.client_order_id, res.status.value, res.executed, res.quote, res.order_id, res.reason)
            return CexAnswered(trio.current_time(), res)
        log.warning("executor: signal %d: CEX order %s not answered within %.1fs", run.signal_id, o.client_order_id,
                    a.timeout)
        return CexAnswered(trio.current_time(), None)

    async def _query(self, run: Any, a: QueryOrder) -> CexQueried:
        """Ask the exchange what became of an order whose answer was lost (``GET /api/v3/order`` by its client
        order id), not before ``a.at``, awaited for ``a.timeout`` seconds."""
        if self.orders is None:
            raise CoreError(f"signal {run.signal_id}: an order to query but no [cex] order gateway")
        await trio.sleep_until(a.at)
        o = a.order
        with trio.move_on_after(a.timeout):
            res = await self.orders.query(o)
            if res.status in FINAL:
                self.store.answer_order(o.client_order_id, _answer_json(res))
            log.info("executor: signal %d: CEX order %s queried -> %s, executed %d, quote %d (order %d) %s",
                     run.signal_id, o.client_order_id, res.status.value, res.executed, res.quote, res.order_id,
                     res.reason)
            return CexQueried(trio.current_time(), res)
        log.warning("executor: signal %d: CEX order %s: status query not answered within %.1fs", run.signal_id,
                    o.client_order_id, a.timeout)
        return CexQueried(trio.current_time(), None)

    async def _fill_nonce(self, nonce: int) -> None:
        """Fill a gap at ``nonce`` (``FillNonce``): a 0-value self-transfer, recorded before it is sent (no
        signal: a restart settles it like any transaction of ours), broadcast and left to be mined; a node
        that says the nonce is taken has filled it already."""
        head = self.core.latest_head or Head.from_rpc(await self.chain.head())
        s = self.core.fill_sign(nonce, head)
        tx = Tx.of(self.chain.sign(nonce=s.nonce, gas_limit=s.gas_limit, data=s.data, to=s.to,
                                   max_fee_per_gas=s.max_fee_per_gas, max_priority_fee_per_gas=s.max_priority_fee_per_gas))
        self.store.record_tx(tx_hash=tx.hash_hex, signal_id=0, nonce=nonce, raw=tx.raw, max_fee=tx.max_fee_per_gas,
                             tip=tx.max_priority_fee_per_gas, gas_limit=tx.gas_limit)
        try:
            await self.chain.send_raw(tx.raw)
        except NonceTaken:
            self.store.settle_nonce(nonce, None)
        else:
            self.store.mark_public(tx.hash_hex)
            log.warning("executor: nonce %d filled by a 0-value self-transfer %s", nonce, tx.hash_hex)
        self.nonces.consumed(nonce)

    async def _simulate_and_estimate(self, run: Any, data: bytes) -> Simulated | SimulationFailed:
        """For a node that cannot meter the simulation's gas (``ChainGateway.metered`` False): ``eth_call`` and
        ``eth_estimateGas`` of the same calldata at once: the core asks for the estimate next, and gets this
        answer (held in ``_estimates`` for the run) without a second round trip -- though after the longer of
        the two, and the estimate's client work on this thread."""
        estimate: list[Estimated | SimulationFailed | BaseException] = []

        async def run_estimate() -> None:
            try:
                estimate.append(Estimated(await self.chain.estimate_gas(data)))
            except SimulationReverted as exc:
                estimate.append(SimulationFailed(str(exc)))
            except (RpcFailure, OSError) as exc:  # raised when the core asks for the estimate
                estimate.append(exc)

        sim: Simulated | SimulationFailed
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_estimate)
            try:
                sim = Simulated(await self.chain.simulate_execute(data))
            except SimulationReverted as exc:
                sim = SimulationFailed(str(exc))
                nursery.cancel_scope.cancel()  # the run ends here: no estimate needed
        # kept only for the Estimate that follows a good simulation in the same run
        if estimate and isinstance(sim, Simulated):
            self._estimates[id(run)] = (data, estimate[0])
        else:
            self._estimates.pop(id(run), None)
        return sim

    async def _poll(self, hashes: tuple[str, ...]) -> Polled:
        for i, h in enumerate(hashes):
            r = await self.chain.receipt(h)
            if r is not None:
                return Polled(trio.current_time(), i, Receipt.from_rpc(r))
        return Polled(trio.current_time())

    # ------------------------------------------------------------------ restart recovery

    async def recover(self) -> None:
        """Settle every transaction a previous run signed but did not see to the end, then set the
        next nonce from the chain (pending and latest counts) and what we may have broadcast."""
        latest = await self.chain.nonce("latest")
        self.nonces.next = latest
        open_rows = self.store.open_txs()
        by_nonce: dict[int, list[TxRow]] = {}
        for row in open_rows:
            by_nonce.setdefault(row.nonce, []).append(row)
        for nonce, rows in sorted(by_nonce.items()):
            await self._recover_nonce(nonce, rows, latest)
        pending = await self.chain.nonce("pending")
        latest = await self.chain.nonce("latest")
        nxt = self.nonces.reconcile(latest=latest, pending=pending, max_live=self.store.max_live_nonce())
        log.info("executor: nonces reconciled: latest %d, pending %d, next %d (%d open tx(s) from before)",
                 latest, pending, nxt, len(open_rows))
        await self._recover_cex_entries()

    async def _recover_cex_entries(self) -> None:
        """CEX-DEX signals cut between their entry order and their end (after the DEX legs in flight were
        settled above, which ends theirs): the entry's recorded answer, or a status query when none was
        recorded, decides the outcome; nothing new is placed (``specs/cex-legs.md``, "After a restart")."""
        for row in self.store.open_cex_entries():
            if self.orders is None:
                log.error("executor: signal %d: CEX order %s from before the restart, but no [cex] order gateway: "
                          "its fate is unknown", row.signal_id, row.client_order_id)
                continue
            now = trio.current_time()
            ago = max(0.0, (time.time_ns() - row.sent_ns) / 1e9)
            log.warning("executor: signal %d: CEX entry order %s from before the restart (%.1fs ago, %s, %d unwind "
                        "order(s)): deciding from %s", row.signal_id, row.client_order_id, ago,
                        "answered" if row.answer else "no answer recorded", row.unwinds,
                        "its answer" if row.answer else "a status query")
            try:
                run, acts = CexDexRun.resumed(self.core, signal_id=row.signal_id, client_order_id=row.client_order_id,
                                              meta=json.loads(row.meta), answer=_answer_of(row.answer),
                                              published=row.published, sent_ago_s=ago, now=now)
            except CoreError as exc:
                log.error("executor: %s", exc)
                continue
            await self._drive(run, acts)

    async def _recover_nonce(self, nonce: int, rows: list[TxRow], latest: int) -> None:
        meta = json.loads(rows[-1].meta or "{}")
        signal_id = rows[-1].signal_id
        # a signal still to report; a cross-chain leg's ("xc") is reported by CrossChainRunner.recover once
        # every chain's transactions are settled here (execution/xchain/recover.py); a rebalancer request's
        # ("owner", execution/owner.py) is followed by the rebalancer: only its nonce is settled here
        ours = self.store.signal_done(signal_id) is None and bool(meta) and "xc" not in meta and "owner" not in meta
        txs = [Tx(raw=row.raw, tx_hash=bytes.fromhex(row.tx_hash[2:]), nonce=nonce, gas_limit=row.gas_limit,
                  max_fee_per_gas=row.max_fee, max_priority_fee_per_gas=row.tip) for row in rows]
        for i, row in enumerate(rows):
            r = await self.chain.receipt(row.tx_hash)
            if r is not None:
                log.info("executor: recovered tx %s (nonce %d) was mined", row.tx_hash, nonce)
                if not row.public:  # it left, whether or not the process lived to mark it (a cross-chain
                    self.store.mark_public(row.tx_hash)  # leg's settlement reads the mark: xchain/recover.py)
                if not ours:
                    self.store.settle_nonce(nonce, row.tx_hash)
                    return
                run = self.core.resumed(signal_id=signal_id, meta=meta, txs=txs)
                await self._drive(run, run.settle_recovered(i, Receipt.from_rpc(r),
                                                            cancelled=row.gas_limit == CANCEL_GAS and i != 0))
                return
        sent = [row.public for row in rows]
        for i, row in enumerate(rows):
            if not row.public and await self.chain.known(row.tx_hash):
                # sent, and the process died before it was marked so: the node holds it (execution/store.py,
                # "A crash between signing and sending")
                self.store.mark_public(row.tx_hash)
                sent[i] = True
        plan = recover_unmined(nonce, sent, latest)
        if plan.settle is not None:
            # Someone else's transaction took the nonce (or ours never left): nothing of ours can land.
            self.store.settle_nonce(plan.settle.nonce, plan.settle.mined_hash)
            if ours and plan.result_of is not None:
                run = self.core.resumed(signal_id=signal_id, meta=meta, txs=txs)
                await self._drive(run, run.end_recovered(*plan.result_of))
            return
        # Still pending (or dropped by the node): broadcast again, same bytes and hash, and watch.
        public = [txs[i] for i in plan.public]
        for tx in public:
            await self.chain.send_raw(tx.raw)
        self.nonces.consumed(nonce)
        log.info("executor: re-broadcast %d pending tx(s) with nonce %d after restart", len(public), nonce)
        if not ours:
            return
        run = self.core.resumed(signal_id=signal_id, meta=meta, txs=public)
        await self._drive(run, run.resume_watch())
