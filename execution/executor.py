"""The executor's trio core: signals in, transactions out, one outcome per signal on the execution relay.

Tasks (one nursery, see :meth:`Executor.run`):

* ``_market_data``: the market-data relay into a :class:`market.state.PoolStateManager` (the
  state re-validation prices on) and the newest chain head;
* ``_stops``: ``EmergencyStop`` / ``Resume`` from the execution relay into :class:`HaltState`
  (logged with their sender; the cursor is persisted, so stops survive our restarts);
* ``_signals``: the signal relay into a queue; a signal that *arrives* while a matching stop is in
  force is marked halted right there;
* ``_worker``: one signal at a time (a single in-flight nonce keeps nonce handling simple and
  exact): halt check, wait for market data to reach the signal's block, re-validate, build
  calldata, ``eth_call`` simulation, gas estimate, fees, then shadow / public / private / hybrid
  submission, and exactly one ``ExecutionResult``.

Failure boundary: :meth:`Executor.handle` is the one place where an unexpected exception while
handling a signal becomes a FAILED outcome with the exception as its reason (clearly marked
below); the executor keeps going with the next signal. Anything outside it propagates.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from execution.calldata import encode_execute, profit_from_logs
from execution.chain import BuilderClient, ChainGateway, RPCError, SignedTx, SimulationReverted
from execution.config import ExecutorConfig
from execution.lifecycle import Attempt, HaltState, SignalExecution
from execution.store import ExecutorStore, NonceTracker, TxRow
from execution.validate import (
    Fees,
    Signal,
    choose_fees,
    choose_tip,
    revalidate,
    to_gas_token,
    to_profit_token,
)
from market.params import ChainParams, MarketParams
from market.state import PoolStateManager
from protocol.execution import ExecutionResult, Outcome, SubmissionMode
from protocol.ids import TokenId
from protocol.market import BlockHeader
from protocol.message import Message
from protocol.system import EmergencyStop, Resume
from protocol.tlv import TLV

log = logging.getLogger("execution")

MODES = {"shadow": SubmissionMode.SHADOW, "public": SubmissionMode.PUBLIC, "private": SubmissionMode.PRIVATE,
         "hybrid": SubmissionMode.HYBRID}
CANCEL_GAS = 21_000


class Publisher:
    """Where results go (a RelayProducer in the process; a list in unit tests)."""

    async def publish(self, tlv: TLV) -> None:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(slots=True)
class _Queued:
    sig: Signal | None
    msg: Message
    halted_by: str | None
    seq: int


def pre_trade_rejection(sig: Signal, cfg: ExecutorConfig) -> str | None:
    """The reason a signal breaks a configured pre-trade limit, or None."""
    hop0 = sig.path.hops[0]
    token = TokenId.of(cfg.chain_id, hop0.token_in)
    cap = cfg.limits.max_amount_in.get(token)
    if cap is not None and hop0.amount_in > cap:
        return f"trade size {hop0.amount_in} of {token.address} above the limit {cap}"
    return None


class Executor:
    def __init__(self, config: ExecutorConfig, gateway: ChainGateway, store: ExecutorStore, publisher: Any,
                 builders: list[BuilderClient] | None = None) -> None:
        self.config = config
        self.chain = gateway
        self.store = store
        self.publisher = publisher
        self.builders = builders or []
        self.mode = MODES[config.mode]
        self.gas_token = TokenId.of(config.chain_id, config.gas_token)
        self.state = PoolStateManager(MarketParams(chains=(ChainParams(chain_id=config.chain_id,
                                                                       gas_token=self.gas_token),)))
        self.halts = HaltState()
        self.nonces = NonceTracker()
        self.factories = config.factories
        self._head_changed = trio.Event()
        self.outcomes: list[ExecutionResult] = []

    # ------------------------------------------------------------------ inputs

    def on_market_data(self, msg: Message) -> None:
        for record in msg.tlvs:
            self.state.apply(record)
            if type(record) is BlockHeader and record.chain_id == self.config.chain_id:
                self._head_changed.set()
                self._head_changed = trio.Event()

    def on_control(self, msg: Message) -> None:
        for record in msg.tlvs:
            if type(record) in (EmergencyStop, Resume):
                line = self.halts.apply(record)
                if line:
                    log.warning("executor: %s", line)

    def halted_for(self, sig: Signal) -> str | None:
        stop = self.halts.halting(chain_id=sig.identity.chain_id, strategy_id=sig.identity.strategy_id,
                                  venues=sig.venues)
        return None if stop is None else f"emergency stop {stop.stop_id} by {stop.sender!r}: {stop.reason}"

    def head_block(self) -> int:
        g = self.state.gas.get(self.config.chain_id)
        return g.block_number if g else -1

    async def wait_for_head(self, block: int, wait_s: float) -> None:
        with trio.move_on_after(wait_s):
            while self.head_block() < block:
                await self._head_changed.wait()

    # ------------------------------------------------------------------ publishing

    async def _publish(self, tlv: TLV) -> None:
        await self.publisher.publish(tlv)

    async def _finish(self, ex: SignalExecution, outcome: Outcome, reason: str, **kw: Any) -> ExecutionResult:
        result = ex.finish(outcome, reason, **kw)
        self.store.finish_signal(ex.signal_id, int(outcome), reason)
        await self._publish(result)
        self.outcomes.append(result)
        log.info("executor: signal %d -> %s: %s", ex.signal_id, outcome.name, reason)
        return result

    # ------------------------------------------------------------------ one signal

    async def handle(self, item: _Queued) -> ExecutionResult | None:
        sig = item.sig
        if sig is None:
            log.error("executor: malformed signal message seq %d dropped", item.seq)
            return None
        done = self.store.signal_done(sig.signal_id)
        if done is not None:
            log.info("executor: signal %d already ended as %s; not again", sig.signal_id, Outcome(done[0]).name)
            return None
        ex = SignalExecution(signal_id=sig.signal_id, chain_id=sig.identity.chain_id,
                             strategy_id=sig.identity.strategy_id, profit_token=sig.economics.profit_token,
                             mode=self.mode, expected_profit=sig.economics.gross_profit)
        # --- FAILURE BOUNDARY: an unexpected error while handling this signal is its FAILED outcome.
        try:
            return await self._handle(sig, ex, item.halted_by)
        except Exception as exc:  # noqa: BLE001 - the marked boundary: error -> FAILED with the reason
            if ex.done:
                raise
            log.exception("executor: signal %d failed", sig.signal_id)
            return await self._finish(ex, Outcome.FAILED, f"{type(exc).__name__}: {exc}")

    async def _handle(self, sig: Signal, ex: SignalExecution, halted_by: str | None) -> ExecutionResult:
        cfg = self.config
        if sig.identity.chain_id != cfg.chain_id:
            return await self._finish(ex, Outcome.FAILED, f"signal for chain {sig.identity.chain_id}, "
                                                          f"this executor serves {cfg.chain_id}")
        halted = halted_by or self.halted_for(sig)
        if halted:
            return await self._finish(ex, Outcome.HALTED, halted)
        rejected = pre_trade_rejection(sig, cfg)
        if rejected:
            return await self._finish(ex, Outcome.REJECTED_BY_RISK, rejected)
        await self.wait_for_head(sig.identity.block_number, cfg.validation.state_wait_s)
        verdict = revalidate(sig, self.state, self.factories, max_age_blocks=cfg.validation.max_signal_age_blocks,
                             onchain_min_profit_bps=cfg.validation.onchain_min_profit_bps)
        if verdict.outcome is not None:
            return await self._finish(ex, verdict.outcome, verdict.reason)
        ex.validated(verdict.gross_profit)
        data = encode_execute(list(verdict.hops), verdict.min_profit_onchain)

        try:
            simulated = await self.chain.simulate_execute(data)
            estimate = await self.chain.estimate_gas(data)
        except SimulationReverted as exc:
            return await self._finish(ex, Outcome.STALE, f"simulation: {exc}")
        if simulated != verdict.gross_profit:
            return await self._finish(ex, Outcome.STALE, f"simulated profit {simulated} != re-validated "
                                                         f"{verdict.gross_profit}")
        ex.simulated()
        gas_limit = estimate * cfg.gas.limit_multiplier_bps // 10_000 + cfg.gas.limit_extra
        if gas_limit > cfg.gas.max_gas_limit:
            return await self._finish(ex, Outcome.FAILED, f"gas limit {gas_limit} above max {cfg.gas.max_gas_limit}")

        head = await self.chain.head()
        profit_token = TokenId(sig.economics.profit_token)
        tip = choose_tip(policy=cfg.tip.policy, tip_wei=cfg.tip.tip_wei, share_bps=cfg.tip.share_bps,
                         max_tip_wei=cfg.tip.max_tip_wei, gas_units=estimate,
                         profit_in_gas_token=to_gas_token(verdict.gross_profit, self.gas_token, profit_token, self.state))
        fees = choose_fees(base_fee=head["base_fee"], tip=tip, base_fee_multiplier_bps=cfg.gas.base_fee_multiplier_bps,
                           cap=cfg.gas.max_fee_per_gas)
        price = min(head["base_fee"] + fees.max_priority_fee_per_gas, fees.max_fee_per_gas)
        if cfg.limits.max_gas_price_wei and price > cfg.limits.max_gas_price_wei:
            return await self._finish(ex, Outcome.REJECTED_BY_RISK, f"gas price {price} wei above the limit "
                                                                    f"{cfg.limits.max_gas_price_wei}")
        cost = to_profit_token(estimate * price, self.gas_token, profit_token, self.state)
        if cost is None:
            return await self._finish(ex, Outcome.FAILED, "cannot price gas in the profit token (no pool with the "
                                                          "gas token)")
        net = verdict.gross_profit - cost
        threshold = cfg.min_profit_for(profit_token)
        if net <= threshold:
            return await self._finish(ex, Outcome.UNPROFITABLE, f"net {net} <= min profit {threshold} (gross "
                                                                f"{verdict.gross_profit}, gas {estimate} x {price} wei "
                                                                f"= {cost})")
        if self.mode == SubmissionMode.SHADOW:
            return await self._finish(ex, Outcome.SIMULATED,
                                      f"shadow: would have made gross {simulated}, net {net} (gas est {estimate})",
                                      block_number=head["number"], gas_used=estimate, effective_gas_price=price,
                                      realized_profit=simulated)
        halted = self.halted_for(sig)  # a stop may have arrived while we simulated
        if halted:
            return await self._finish(ex, Outcome.HALTED, halted)

        nonce = self.nonces.take()
        tx = self.chain.sign(nonce=nonce, gas_limit=gas_limit, max_fee_per_gas=fees.max_fee_per_gas,
                             max_priority_fee_per_gas=fees.max_priority_fee_per_gas, data=data)
        meta = json.dumps({"chain_id": ex.chain_id, "strategy_id": ex.strategy_id, "profit_token": ex.profit_token,
                           "expected_profit": ex.expected_profit, "mode": int(self.mode), "net_expected": net,
                           "data": data.hex()})
        self._record(ex, tx, meta)  # persisted before it leaves the process
        if self.mode == SubmissionMode.PUBLIC:
            return await self._public(ex, tx, data, meta, net)
        return await self._private(ex, tx, data, meta, net, head["number"])

    # ------------------------------------------------------------------ submission

    def _record(self, ex: SignalExecution, tx: SignedTx, meta: str) -> None:
        self.store.record_tx(tx_hash=tx.hash_hex, signal_id=ex.signal_id, nonce=tx.nonce, raw=tx.raw,
                             max_fee=tx.max_fee_per_gas, tip=tx.max_priority_fee_per_gas, gas_limit=tx.gas_limit,
                             meta=meta)

    async def _broadcast(self, ex: SignalExecution, tx: SignedTx) -> None:
        await self.chain.send_raw(tx.raw)
        self.store.mark_public(tx.hash_hex)
        self.nonces.consumed(tx.nonce)

    def _attempt(self, tx: SignedTx) -> Attempt:
        return Attempt(tx_hash=tx.tx_hash, nonce=tx.nonce, max_fee_per_gas=tx.max_fee_per_gas,
                       max_priority_fee_per_gas=tx.max_priority_fee_per_gas, gas_limit=tx.gas_limit)

    async def _public(self, ex: SignalExecution, tx: SignedTx, data: bytes, meta: str, net: int,
                      *, already_started: bool = False) -> ExecutionResult:
        await self._broadcast(ex, tx)
        if not already_started:
            await self._publish(ex.submitted(self._attempt(tx)))
        return await self._watch_public(ex, [tx], data, meta, net)

    async def _watch_public(self, ex: SignalExecution, txs: list[SignedTx], data: bytes, meta: str,
                            net: int) -> ExecutionResult:
        """Wait for a receipt of any of ``txs`` (same nonce); replace with bumped fees when stuck;
        cancel (a 0-value self-transfer at the same nonce) at the deadline."""
        sub = self.config.submission
        start = trio.current_time()
        next_replace = start + sub.replace_after_s
        replacements = 0
        cancelled = False
        while True:
            for t in txs:
                r = await self.chain.receipt(t.hash_hex)
                if r is not None:
                    return await self._settle(ex, t.nonce, r, net, cancelled=cancelled and t is txs[-1])
            now = trio.current_time()
            if now - start >= sub.receipt_timeout_s * (2 if cancelled else 1):
                if cancelled:
                    return await self._finish(ex, Outcome.NOT_INCLUDED,
                                              f"nonce {txs[0].nonce} still pending after replacements and a cancel")
                cancel = self._replacement(txs[-1], b"", to=self.chain.address, gas_limit=CANCEL_GAS)
                if cancel is None:
                    return await self._finish(ex, Outcome.NOT_INCLUDED, "not included; fee cap prevents a cancel")
                self._record(ex, cancel, meta)
                await self._broadcast(ex, cancel)
                await self._publish(ex.submitted(self._attempt(cancel)))
                txs.append(cancel)
                cancelled = True
                log.warning("executor: signal %d not included in %.1fs: cancelling nonce %d", ex.signal_id,
                            sub.receipt_timeout_s, cancel.nonce)
            elif data and not cancelled and now >= next_replace and replacements < sub.max_replacements:
                repl = self._replacement(txs[-1], data)
                next_replace = now + sub.replace_after_s
                if repl is not None:
                    replacements += 1
                    self._record(ex, repl, meta)
                    await self._broadcast(ex, repl)
                    await self._publish(ex.submitted(self._attempt(repl)))
                    txs.append(repl)
                    log.info("executor: signal %d: replaced nonce %d with fees %d/%d", ex.signal_id, repl.nonce,
                             repl.max_fee_per_gas, repl.max_priority_fee_per_gas)
            await trio.sleep(sub.poll_interval_s)

    def _replacement(self, prev: SignedTx, data: bytes, *, to: str | None = None,
                     gas_limit: int | None = None) -> SignedTx | None:
        fees = Fees(max_fee_per_gas=prev.max_fee_per_gas, max_priority_fee_per_gas=prev.max_priority_fee_per_gas)
        bumped = fees.bumped(self.config.gas.fee_bump_bps, self.config.gas.max_fee_per_gas)
        if bumped is None:
            return None
        return self.chain.sign(nonce=prev.nonce, gas_limit=gas_limit or prev.gas_limit, to=to, data=data,
                               max_fee_per_gas=bumped.max_fee_per_gas,
                               max_priority_fee_per_gas=bumped.max_priority_fee_per_gas)

    async def _settle(self, ex: SignalExecution, nonce: int, r: dict[str, Any], net: int, *,
                      cancelled: bool = False) -> ExecutionResult:
        tx_hash = r["transactionHash"]
        self.store.settle_nonce(nonce, tx_hash)
        block = int(r["blockNumber"], 16)
        gas_used = int(r["gasUsed"], 16)
        price = int(r.get("effectiveGasPrice") or "0x0", 16)
        kw = {"block_number": block, "tx_hash": bytes.fromhex(tx_hash[2:]), "gas_used": gas_used,
              "effective_gas_price": price}
        if cancelled:
            return await self._finish(ex, Outcome.NOT_INCLUDED, f"cancelled: nonce {nonce} used by a 0-value "
                                                                f"self-transfer in block {block}", **kw)
        if int(r["status"], 16) != 1:
            return await self._finish(ex, Outcome.REVERTED, f"reverted on chain in block {block} "
                                                            f"(gas used {gas_used})", **kw)
        realized = profit_from_logs(r.get("logs") or [], self.config.contract)
        if realized is None:
            return await self._finish(ex, Outcome.FAILED, f"mined in block {block} without an ArbitrageExecuted "
                                                          "event from our contract", **kw)
        cost = to_profit_token(gas_used * price, self.gas_token, TokenId(ex.profit_token), self.state)
        net_real = realized - cost if cost is not None else None
        return await self._finish(
            ex, Outcome.EXECUTED,
            f"gross {realized} (expected {ex.expected_profit}); net {net_real} (expected {net}); "
            f"gas {gas_used} x {price} wei", realized_profit=realized, **kw)

    async def _private(self, ex: SignalExecution, tx: SignedTx, data: bytes, meta: str, net: int,
                       head: int) -> ExecutionResult:
        sub = self.config.submission
        targets = [head + 1 + i for i in range(max(sub.private_blocks, 1))]
        for b in self.builders:
            if b.call_bundle_supported:
                res = await b.call_bundle([tx.raw], targets[0])
                bad = [x for x in res.get("results", []) if x.get("error") or x.get("revert")]
                if bad:
                    self.store.settle_nonce(tx.nonce, None)
                    return await self._finish(ex, Outcome.STALE, f"eth_callBundle at {b.name}: "
                                                                 f"{bad[0].get('revert') or bad[0].get('error')}")
                break
        sent = 0
        errors = []
        for b in self.builders:
            for target in targets:
                try:
                    await b.send_bundle([tx.raw], target)
                    sent += 1
                except (RPCError, httpx.HTTPError) as exc:  # one builder down is not the bundle's end
                    errors.append(f"{b.name}: {exc}")
        if not sent:
            self.store.settle_nonce(tx.nonce, None)
            return await self._finish(ex, Outcome.FAILED, f"no builder accepted the bundle: {'; '.join(errors)}")
        await self._publish(ex.submitted(self._attempt(tx)))
        with trio.move_on_after(sub.private_timeout_s):
            while True:
                r = await self.chain.receipt(tx.hash_hex)
                if r is not None:
                    return await self._settle(ex, tx.nonce, r, net)
                if await self.chain.block_number() > targets[-1]:
                    break
                await trio.sleep(sub.poll_interval_s)
        r = await self.chain.receipt(tx.hash_hex)
        if r is not None:
            return await self._settle(ex, tx.nonce, r, net)
        if self.mode == SubmissionMode.HYBRID:
            log.info("executor: signal %d: bundle not included in blocks %s; sending publicly", ex.signal_id, targets)
            return await self._public(ex, tx, data, meta, net, already_started=True)
        # The bundle's blocks passed (or we gave up on them): the nonce was never broadcast publicly
        # and is free again. Should a builder still include the old transaction, it carries its own
        # minProfit and hop minimums, and the next transaction with this nonce simply fails.
        self.store.settle_nonce(tx.nonce, None)
        return await self._finish(ex, Outcome.NOT_INCLUDED, f"bundle not included in blocks {targets}")

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

    async def _recover_nonce(self, nonce: int, rows: list[TxRow], latest: int) -> None:
        meta = json.loads(rows[-1].meta or "{}")
        signal_id = rows[-1].signal_id
        ex = None
        if self.store.signal_done(signal_id) is None and meta:
            ex = SignalExecution(signal_id=signal_id, chain_id=meta["chain_id"], strategy_id=meta["strategy_id"],
                                 profit_token=meta["profit_token"], mode=SubmissionMode(meta["mode"]),
                                 expected_profit=meta["expected_profit"])
            ex.validated(meta["expected_profit"])
            ex.simulated()
        for row in rows:
            r = await self.chain.receipt(row.tx_hash)
            if r is not None:
                log.info("executor: recovered tx %s (nonce %d) was mined", row.tx_hash, nonce)
                if ex is None:
                    self.store.settle_nonce(nonce, row.tx_hash)
                    return
                first = rows[0]
                ex.submitted(Attempt(tx_hash=bytes.fromhex(first.tx_hash[2:]), nonce=nonce, max_fee_per_gas=first.max_fee,
                                     max_priority_fee_per_gas=first.tip, gas_limit=first.gas_limit))
                await self._settle(ex, nonce, r, meta.get("net_expected", 0), cancelled=row.gas_limit == CANCEL_GAS
                                   and row is not rows[0])
                return
        public = [row for row in rows if row.public]
        if nonce < latest or not public:
            # Someone else's transaction took the nonce (or ours never left): nothing of ours can land.
            self.store.settle_nonce(nonce, None)
            if ex is not None:
                await self._finish(ex, Outcome.FAILED if public else Outcome.NOT_INCLUDED,
                                   f"restart: nonce {nonce} " + ("consumed by a transaction we did not record"
                                                                  if public else "never broadcast before the restart"))
            return
        # Still pending (or dropped by the node): broadcast again, same bytes and hash, and watch.
        txs = []
        for row in public:
            await self.chain.send_raw(row.raw)
            txs.append(SignedTx(raw=row.raw, tx_hash=bytes.fromhex(row.tx_hash[2:]), nonce=nonce,
                                gas_limit=row.gas_limit, max_fee_per_gas=row.max_fee,
                                max_priority_fee_per_gas=row.tip))
        self.nonces.consumed(nonce)
        log.info("executor: re-broadcast %d pending tx(s) with nonce %d after restart", len(txs), nonce)
        if ex is None:
            return
        first = txs[0]
        await self._publish(ex.submitted(self._attempt(first)))
        data = bytes.fromhex(meta.get("data", ""))
        await self._watch_public(ex, txs, data, json.dumps(meta), meta.get("net_expected", 0))

