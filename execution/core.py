"""The executor's decisions, sans-IO: events in, actions out (the trio shell is :mod:`execution.executor`).

Theory of operation
-------------------
:class:`ExecutorCore` holds what the executor knows: the market (a :class:`market.state.PoolStateManager`
fed from the market-data relay), the emergency stops in force (:class:`~execution.lifecycle.HaltState`)
and the next nonce (:class:`~execution.store.NonceTracker`). It never awaits, reads a clock or
touches a socket, a file or the chain: time comes in as ``now`` (trio seconds) on the events that
need it.

Each signal becomes one :class:`SignalRun`. The shell calls :meth:`SignalRun.start`, carries out the
actions it gets back **in order**, and feeds the answer to the last one (an *event*) to
:meth:`SignalRun.on`, until the run is done. Side effects that need no answer (publish a record,
write SQLite) come first in a list; at most one *request* (an action whose answer is an event)
comes last. The steps and the events each one accepts::

    START --Start--> AWAIT_MARKET --MarketReady--> SIMULATE --Simulated--> ESTIMATE --Estimated--> AWAIT_HEAD
      |                  |                            |   (SimulationFailed: STALE)   |               |
      +-- chain / halt / +-- STALE / FAILED (re-validation)                          +-- STALE / FAILED
          limits: done                   Simulated with its gas: ESTIMATE passed at once ------------>|
                                                                                                      v
     shadow: SIMULATED <------------------- HeadSeen: fees, gas-price limit, net profit, halt ---------+
                                                                                                      |
                                                                                      SIGN --Signed--+
                                                                                        |
        public:  BROADCAST --Broadcasted--> WATCH --Polled--> settled, or SIGN (a replacement / cancel)
        private: BUNDLE_CHECK --BundleChecked--> BUNDLES --BundlesSent--> PRIVATE_WATCH --PrivatePolled-->
                 ... --> PRIVATE_FINAL --Polled--> settled, hybrid: BROADCAST (public fallback), else NOT_INCLUDED

:data:`ACCEPTS` is that table: an event a step does not accept raises :class:`CoreError` (a bug in
the shell, never a market condition), as :class:`~execution.lifecycle.LifecycleError` does for an
impossible outcome. Every run ends with exactly one ``Publish(ExecutionResult)`` (the lifecycle
machine makes the record; :meth:`SignalRun.fail` is the shell's failure boundary).

Actions, carried out by the shell:

* side effects: ``Publish(tlv)`` (an ``ExecutionResult`` is recorded in SQLite first, so a
  redelivered signal is never run again), ``RecordTx(tx, meta)`` (written **before** the
  transaction leaves the process: the kill -9 rule), ``MarkPublic(tx)``, ``SettleNonce(nonce, hash)``,
  ``Log(level, text)``, ``FillNonce(nonce)`` (a nonce taken and never sent below one already handed out:
  a 0-value self-transfer fills it, ``specs/executor-concurrency.md``);
* requests: ``AwaitMarket(block, deadline)`` -> ``MarketReady``; ``Simulate(data)`` -> ``Simulated`` /
  ``SimulationFailed`` (the live shell's simulation measures the gas too, ``Simulated.gas``: one round trip,
  and no ``Estimate`` follows); ``Estimate(data)`` -> ``Estimated`` / ``SimulationFailed``, asked only after a
  simulation without gas (a node that cannot meter: the shell then starts the estimate together with the
  simulation and answers from it, the two RPCs overlap; the backtest's gas model); ``FetchHead`` ->
  ``HeadSeen``, asked by public and shadow runs only while no ``BlockHeader`` of the chain has arrived
  on the market-data relay (afterwards the newest one is the head, with no RPC), by bundles always; ``Sign(...)`` -> ``Signed``; ``Broadcast(tx)`` -> ``Broadcasted``, or
  ``NonceUsed(pending)`` when a transaction the executor did not sign took the nonce (the run ends FAILED); ``PollReceipts(hashes,
  delay)`` -> ``Polled`` (the shell looks after at most ``delay``: at once when our chain's next
  ``BlockHeader`` arrives); ``CallBundle(builder, raw, block)`` -> ``BundleChecked``; ``SendBundles(raw,
  blocks)`` -> ``BundlesSent``; ``PollPrivate(hash, delay, deadline)`` -> ``PrivatePolled``.

The node's answers arrive typed (:class:`Head`, :class:`Receipt`, built at the edge by
``from_rpc``), never as dicts.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from execution.calldata import encode_execute, profit_from_logs
from execution.config import ExecutorConfig
from execution.lifecycle import Attempt, HaltState, SignalExecution
from execution.store import NonceTracker
from execution.validate import (
    Fees,
    Signal,
    choose_fees,
    choose_tip,
    profit_token_mismatch,
    revalidate,
    to_gas_token,
    to_profit_token,
)
from market.cex import CexBooks
from market.params import ChainParams, CurveParams, MarketParams
from market.state import PoolStateManager
from protocol.execution import ExecutionResult, Outcome, SubmissionMode
from protocol.ids import PoolId, TokenId, address_to_int
from protocol.market import BlockHeader
from protocol.message import Message
from protocol.signals import SignalKind
from protocol.system import EmergencyStop, Resume
from protocol.tlv import TLV

MODES = {"shadow": SubmissionMode.SHADOW, "public": SubmissionMode.PUBLIC, "private": SubmissionMode.PRIVATE,
         "hybrid": SubmissionMode.HYBRID}
CANCEL_GAS = 21_000


class CoreError(RuntimeError):
    """An event the run's current step cannot take: a bug in the shell, not a market condition."""


# --------------------------------------------------------------------------- what the node says


def _int(v: Any) -> int:
    return int(v, 16) if isinstance(v, str) else int(v or 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Head:
    """The chain's newest block, as far as fees are concerned."""

    number: int
    base_fee: int
    timestamp: int

    @classmethod
    def from_rpc(cls, block: Mapping[str, Any]) -> Head:
        """From ``eth_getBlockByNumber`` (or the gateway's ``head()``, already decoded)."""
        return cls(number=_int(block["number"]), base_fee=_int(block.get("baseFeePerGas", block.get("base_fee"))),
                   timestamp=_int(block["timestamp"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    tx_hash: str  # 0x-hex, as the node spells it
    block_number: int
    gas_used: int
    effective_gas_price: int
    status: int
    logs: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_rpc(cls, r: Mapping[str, Any]) -> Receipt:
        return cls(tx_hash=str(r["transactionHash"]), block_number=_int(r["blockNumber"]),
                   gas_used=_int(r["gasUsed"]), effective_gas_price=_int(r.get("effectiveGasPrice")),
                   status=_int(r["status"]), logs=tuple(r.get("logs") or ()))

    @property
    def tx_hash_bytes(self) -> bytes:
        return bytes.fromhex(self.tx_hash[2:])


@dataclass(frozen=True, slots=True, kw_only=True)
class Tx:
    """A signed transaction (what ``ChainGateway.sign`` returns)."""

    raw: bytes
    tx_hash: bytes
    nonce: int
    gas_limit: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    @property
    def hash_hex(self) -> str:
        return "0x" + self.tx_hash.hex()

    @classmethod
    def of(cls, signed: Any) -> Tx:
        return cls(raw=signed.raw, tx_hash=signed.tx_hash, nonce=signed.nonce, gas_limit=signed.gas_limit,
                   max_fee_per_gas=signed.max_fee_per_gas, max_priority_fee_per_gas=signed.max_priority_fee_per_gas)

    def attempt(self) -> Attempt:
        return Attempt(tx_hash=self.tx_hash, nonce=self.nonce, max_fee_per_gas=self.max_fee_per_gas,
                       max_priority_fee_per_gas=self.max_priority_fee_per_gas, gas_limit=self.gas_limit)


def bundle_failure(result: Mapping[str, Any]) -> str | None:
    """The first failing transaction's revert or error in an ``eth_callBundle`` answer, else None."""
    bad = [x for x in result.get("results", []) if x.get("error") or x.get("revert")]
    return None if not bad else str(bad[0].get("revert") or bad[0].get("error"))


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Start:
    now: float


@dataclass(frozen=True, slots=True)
class MarketReady:
    """The market data reached the signal's block, or the wait ran out."""

    now: float


@dataclass(frozen=True, slots=True)
class Simulated:
    """The simulation's answer: the profit (a swap's output), and the gas a transaction with the calldata
    would use when the simulation measured it (``ChainGateway.simulate``); None: the run asks ``Estimate``."""

    profit: int
    gas: int | None = None


@dataclass(frozen=True, slots=True)
class SimulationFailed:
    reason: str  # "eth_call reverted: ..."


@dataclass(frozen=True, slots=True)
class Estimated:
    gas: int


@dataclass(frozen=True, slots=True)
class HeadSeen:
    head: Head


@dataclass(frozen=True, slots=True)
class Signed:
    tx: Tx


@dataclass(frozen=True, slots=True)
class Broadcasted:
    tx: Tx


@dataclass(frozen=True, slots=True)
class NonceUsed:
    """``eth_sendRawTransaction`` refused the transaction: another transaction of the account has its
    nonce. The executor is the account's one signer (the rebalancer's transactions go through it,
    ``execution/owner.py``), so that is a key used outside it; ``pending`` is the chain's pending count read
    right after, ``reason`` the node's words."""

    pending: int
    reason: str


@dataclass(frozen=True, slots=True)
class Polled:
    """Receipts looked up in order; ``receipt`` is the first found (``index`` into the hashes), else None."""

    now: float
    index: int = -1
    receipt: Receipt | None = None


@dataclass(frozen=True, slots=True)
class BundleChecked:
    failure: str | None


@dataclass(frozen=True, slots=True)
class BundlesSent:
    now: float
    sent: int
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PrivatePolled:
    now: float
    receipt: Receipt | None
    block_number: int


Event = (Start | MarketReady | Simulated | SimulationFailed | Estimated | HeadSeen | Signed | Broadcasted | NonceUsed
         | Polled | BundleChecked | BundlesSent | PrivatePolled)


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Publish:
    tlv: TLV
    extra: tuple[TLV, ...] = ()  # more records in the same message (a CEX-DEX result's LegReport)


@dataclass(frozen=True, slots=True)
class RecordTx:
    signal_id: int
    tx: Tx
    meta: str


@dataclass(frozen=True, slots=True)
class MarkPublic:
    tx: Tx


@dataclass(frozen=True, slots=True)
class SettleNonce:
    nonce: int
    mined_hash: str | None


@dataclass(frozen=True, slots=True)
class Log:
    level: str  # "info" | "warning" | "error"
    text: str


@dataclass(frozen=True, slots=True)
class FillNonce:
    """A nonce taken and never sent lies below one already handed out: sign a 0-value self-transfer at it
    (:meth:`ExecutorCore.fill_sign`), record it, broadcast it, so the later transactions are not held
    behind a gap (``specs/executor-concurrency.md``)."""

    nonce: int


@dataclass(frozen=True, slots=True)
class AwaitMarket:
    block: int
    deadline: float


@dataclass(frozen=True, slots=True)
class Simulate:
    data: bytes


@dataclass(frozen=True, slots=True)
class Estimate:
    data: bytes


@dataclass(frozen=True, slots=True)
class FetchHead:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Sign:
    nonce: int
    gas_limit: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    data: bytes
    to: str | None = None  # None: the contract


@dataclass(frozen=True, slots=True)
class Broadcast:
    tx: Tx


@dataclass(frozen=True, slots=True)
class PollReceipts:
    hashes: tuple[str, ...]
    delay: float


@dataclass(frozen=True, slots=True)
class CallBundle:
    builder: int
    raw: bytes
    block: int


@dataclass(frozen=True, slots=True)
class SendBundles:
    raw: bytes
    blocks: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PollPrivate:
    tx_hash: str
    delay: float
    deadline: float


Action = (Publish | RecordTx | MarkPublic | SettleNonce | Log | FillNonce | AwaitMarket | Simulate | Estimate | FetchHead | Sign
          | Broadcast | PollReceipts | CallBundle | SendBundles | PollPrivate)
REQUESTS = (AwaitMarket, Simulate, Estimate, FetchHead, Sign, Broadcast, PollReceipts, CallBundle, SendBundles,
            PollPrivate)


# --------------------------------------------------------------------------- the steps


class Step(enum.Enum):
    START = "start"
    AWAIT_MARKET = "await_market"
    SIMULATE = "simulate"
    ESTIMATE = "estimate"
    AWAIT_HEAD = "await_head"
    SIGN = "sign"
    BROADCAST = "broadcast"
    WATCH = "watch"
    BUNDLE_CHECK = "bundle_check"
    BUNDLES = "bundles"
    PRIVATE_WATCH = "private_watch"
    PRIVATE_FINAL = "private_final"
    DONE = "done"


ACCEPTS: dict[Step, tuple[type, ...]] = {
    Step.START: (Start,),
    Step.AWAIT_MARKET: (MarketReady,),
    Step.SIMULATE: (Simulated, SimulationFailed),
    Step.ESTIMATE: (Estimated, SimulationFailed),
    Step.AWAIT_HEAD: (HeadSeen,),
    Step.SIGN: (Signed,),
    Step.BROADCAST: (Broadcasted, NonceUsed),
    Step.WATCH: (Polled,),
    Step.BUNDLE_CHECK: (BundleChecked,),
    Step.BUNDLES: (BundlesSent,),
    Step.PRIVATE_WATCH: (PrivatePolled,),
    Step.PRIVATE_FINAL: (Polled,),
    Step.DONE: (),
}


def pre_trade_rejection(sig: Signal, cfg: ExecutorConfig) -> str | None:
    """The reason a signal breaks a configured pre-trade limit, or None."""
    hop0 = sig.path.hops[0]
    token = TokenId.of(cfg.chain_id, hop0.token_in)
    cap = cfg.limits.max_amount_in.get(token)
    if cap is not None and hop0.amount_in > cap:
        return f"trade size {hop0.amount_in} of {token.address} above the limit {cap}"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class BuilderInfo:
    name: str
    call_bundle: bool


class ExecutorCore:
    """The executor's knowledge (market, stops, nonce) and the factory of :class:`SignalRun` s."""

    def __init__(self, config: ExecutorConfig, *, address: str, builders: Sequence[BuilderInfo] = ()) -> None:
        self.config = config
        self.mode = MODES[config.mode]
        self.gas_token = TokenId.of(config.chain_id, config.gas_token)
        chains = [ChainParams(chain_id=config.chain_id, gas_token=self.gas_token)]
        if config.cross_chain is not None:  # the other chains a cross-chain signal trades on (execution/xchain/)
            chains += [ChainParams(chain_id=c.chain_id, gas_token=TokenId.of(c.chain_id, c.gas_token))
                       for c in config.cross_chain.chains if c.chain_id != config.chain_id]
        self.state = PoolStateManager(MarketParams(
            chains=tuple(chains),
            curve_pools=tuple(CurveParams(chain_id=config.chain_id, address=address_to_int(c.address), amp=c.amp,
                                          rates=c.sorted_rates) for c in config.curve_pools)))
        self.books = CexBooks()  # the exchanges' order books, for CEX-DEX signals (execution/cex/run.py)
        self.address = address
        self.builders = tuple(builders)
        self.halts = HaltState()
        self.nonces = NonceTracker()
        # the newest BlockHeader of our chain from the market-data relay: the head a run prices its
        # fees on, without asking the node (FetchHead only before the first header arrives)
        self.latest_head: Head | None = None
        # pool -> (signal id, first target block) of our signed transaction still in flight through
        # it: a second one through the same pool could land in the same block, so it is not sent
        self.pools_in_flight: dict[int, tuple[int, int]] = {}

    # --- inputs that are not a signal ----------------------------------------------------------

    def on_market_data(self, msg: Message) -> bool:
        """Apply one market-data message; True when it carried this chain's block header."""
        head = False
        books = self.books
        for record in msg.tlvs:
            if books.on_tlv(record, msg.receive_time_ns) is not None:
                continue
            self.state.apply(record)
            if type(record) is BlockHeader and record.chain_id == self.config.chain_id:
                head = True
                latest = self.latest_head
                if latest is None or record.number >= latest.number:
                    self.latest_head = Head(number=record.number, base_fee=record.base_fee,
                                            timestamp=record.timestamp)
        return head

    def on_control(self, msg: Message) -> list[str]:
        """Apply EmergencyStop / Resume records; the lines saying what changed and who asked."""
        lines = []
        for record in msg.tlvs:
            if type(record) in (EmergencyStop, Resume):
                line = self.halts.apply(record)
                if line:
                    lines.append(line)
        return lines

    def halted_for(self, sig: Signal) -> str | None:
        """The stop in force covering the signal: its strategy, its venues, or any chain its path touches (a
        cross-chain signal's destination chain too: a CHAIN stop of it halts the signal)."""
        chains = dict.fromkeys((sig.identity.chain_id, *(PoolId(h.pool).chain_id for h in sig.path.hops)))
        for chain in chains:
            stop = self.halts.halting(chain_id=chain, strategy_id=sig.identity.strategy_id, venues=sig.venues)
            if stop is not None:
                return f"emergency stop {stop.stop_id} by {stop.sender!r}: {stop.reason}"
        return None

    def head_block(self) -> int:
        g = self.state.gas.get(self.config.chain_id)
        return g.block_number if g else -1

    def run(self, sig: Signal, *, halted_by: str | None = None, after_block: int = 0) -> SignalRun:
        """``after_block``: the signal waited for our transaction through one of its pools, which landed
        there; it re-validates on market data at or past that block (:mod:`execution.schedule`)."""
        run: SignalRun
        if sig.identity.kind == SignalKind.CEX_DEX:
            from execution.cex.run import CexDexRun  # it builds on SignalRun: imported when first needed

            run = CexDexRun(self, sig, halted_by=halted_by)
        else:
            run = SignalRun(self, sig, halted_by=halted_by)
        run.after_block = after_block
        return run

    def release_nonce(self, nonce: int) -> list[Action]:
        """A nonce taken and never sent: given back when it is the highest handed out, else the gap is
        filled (``FillNonce``), so the later nonces in flight are not held behind it."""
        if not self.nonces.release(nonce):
            return []
        return [Log("warning", f"executor: nonce {nonce} was taken and not sent while later nonces are out: "
                               "filling it with a 0-value self-transfer"), FillNonce(nonce)]

    def fill_sign(self, nonce: int, head: Head) -> Sign:
        """The 0-value self-transfer that fills a gap at ``nonce``: fees as a signal's would be priced on
        ``head`` (the configured tip policy's fixed tip, at least 1 gwei), capped by ``[gas] max_fee_per_gas``."""
        cfg = self.config
        tip = max(cfg.tip.tip_wei, 10**9)
        fees = choose_fees(base_fee=head.base_fee, tip=tip, base_fee_multiplier_bps=cfg.gas.base_fee_multiplier_bps,
                           cap=cfg.gas.max_fee_per_gas)
        return Sign(nonce=nonce, gas_limit=CANCEL_GAS, max_fee_per_gas=fees.max_fee_per_gas,
                    max_priority_fee_per_gas=fees.max_priority_fee_per_gas, data=b"", to=self.address)

    def resumed(self, *, signal_id: int, meta: Mapping[str, Any], txs: Sequence[Tx]) -> SignalRun:
        """A run for a signal whose transactions a previous process signed (restart recovery): it
        starts at the watch of those transactions (``meta`` is what :class:`RecordTx` stored)."""
        return SignalRun.resumed(self, signal_id=signal_id, meta=meta, txs=txs)


@dataclass(slots=True)
class _Watch:
    """The public watch of one nonce: every transaction sent with it, timers, counters."""

    txs: list[Tx]
    start: float | None = None  # set by the first poll's answer
    next_replace: float = 0.0
    replacements: int = 0
    cancelled: bool = False
    cancel_refused: bool = False  # the node refused the cancel for its nonce: one of ours there is mined/pending
    pending: str = ""  # "" | "replace" | "cancel": what the transaction being signed is for


class SignalRun:
    """One signal's way from arrival to its one ``ExecutionResult``. See the module docstring."""

    def __init__(self, core: ExecutorCore, sig: Signal | None, *, halted_by: str | None = None,
                 ex: SignalExecution | None = None) -> None:
        self.core = core
        self.cfg = core.config
        self.sig = sig
        self.halted_by = halted_by
        if ex is None:
            assert sig is not None
            ex = SignalExecution(signal_id=sig.signal_id, chain_id=sig.identity.chain_id,
                                 strategy_id=sig.identity.strategy_id, profit_token=sig.economics.profit_token,
                                 mode=core.mode, expected_profit=sig.economics.gross_profit)
        self.ex = ex
        self.step = Step.START
        self.result: ExecutionResult | None = None
        self.data = b""
        self.net = 0
        self.gross = 0
        self.simulated = 0
        self.estimate = 0
        self.gas_limit = 0
        self.head: Head | None = None
        self.fees: Fees | None = None
        self.price = 0
        self.meta = ""
        self.tx: Tx | None = None
        self.watch: _Watch | None = None
        self.targets: tuple[int, ...] = ()
        self.private_deadline = 0.0
        self.started_published = False
        # a CEX-DEX signal's DEX leg found in flight after a restart (execution/cex/run.py): its exchange side
        # is not known here, so whatever the transaction did, the signal ends LEG_OPEN for risk and the operator
        self.restarted_leg = False
        # the block our own transaction through one of this signal's pools landed in, when the signal
        # waited for it (execution/schedule.py): re-validation waits for market data that far
        self.after_block = 0

    @classmethod
    def resumed(cls, core: ExecutorCore, *, signal_id: int, meta: Mapping[str, Any], txs: Sequence[Tx]) -> SignalRun:
        ex = SignalExecution(signal_id=signal_id, chain_id=meta["chain_id"], strategy_id=meta["strategy_id"],
                             profit_token=meta["profit_token"], mode=SubmissionMode(meta["mode"]),
                             expected_profit=meta["expected_profit"])
        ex.validated(meta["expected_profit"])
        ex.simulated()
        run = cls(core, None, ex=ex)
        run.meta = json.dumps(dict(meta))
        run.data = bytes.fromhex(meta.get("data", ""))
        run.net = meta.get("net_expected", 0)
        run.tx = txs[0]
        run.watch = _Watch(txs=list(txs))
        run.restarted_leg = meta.get("leg") == "dex"
        return run

    @property
    def done(self) -> bool:
        return self.step is Step.DONE

    @property
    def signal_id(self) -> int:
        return self.ex.signal_id

    def market_ready(self) -> bool:
        """Has this executor's market data caught up with what the strategy priced the signal on?

        The header of the signal's block is not enough: the strategy and the executor read the
        same market-data stream, so a signal on a pool that is *invalidated* (or unknown) here
        means the executor is behind the strategy on that stream (a resync's invalidation
        applied, its fresh snapshot not yet) -- not that the pool is stale. A head number alone
        can also be satisfied by an older header (after a reorg, or a devnet reverted to a
        snapshot, numbers repeat). So: the head reached the signal's block *and* every pool of
        the path is tradable. Past the deadline, re-validation decides with what there is.
        """
        sig = self.sig
        assert sig is not None
        if self.core.head_block() < max(sig.identity.block_number, self.after_block):
            return False
        state = self.core.state
        return all(state.tradable(h.pool) is not None for h in sig.path.hops)

    # --- driving -------------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        return self.on(Start(now))

    def on(self, event: Event) -> list[Action]:
        if type(event) not in ACCEPTS[self.step]:
            raise CoreError(f"signal {self.signal_id}: {type(event).__name__} is not expected at step "
                            f"{self.step.value}")
        handler = getattr(self, f"_on_{self.step.value}")
        actions: list[Action] = handler(event)
        return actions

    def fail(self, reason: str) -> list[Action]:
        """The shell's failure boundary: an unexpected error ends the run as FAILED (once)."""
        return self._finish(Outcome.FAILED, reason)

    def _finish(self, outcome: Outcome, reason: str, **kw: Any) -> list[Action]:
        if self.restarted_leg:
            reason = (f"executor restarted during a two-leg signal's legs; its on-chain leg {outcome.name.lower()} "
                      f"({reason}); the other leg (exchange or other chain) was not re-checked")
            outcome, kw = Outcome.LEG_OPEN, {k: v for k, v in kw.items() if k != "realized_profit"}
        held = self.core.pools_in_flight
        for p in [p for p, (sid, _) in held.items() if sid == self.signal_id]:
            del held[p]  # settled, one way or another: the pools are free again
        result = self.ex.finish(outcome, reason, **kw)
        self.result = result
        self.step = Step.DONE
        return [Publish(result)]

    # --- before anything is signed -------------------------------------------------------------

    def _on_start(self, ev: Start) -> list[Action]:
        sig, cfg = self.sig, self.cfg
        assert sig is not None
        if sig.identity.chain_id != cfg.chain_id:
            return self._finish(Outcome.FAILED, f"signal for chain {sig.identity.chain_id}, "
                                                f"this executor serves {cfg.chain_id}")
        wrong_token = profit_token_mismatch(sig)
        if wrong_token:
            return self._finish(Outcome.FAILED, wrong_token)
        halted = self.halted_by or self.core.halted_for(sig)
        if halted:
            return self._finish(Outcome.HALTED, halted)
        rejected = pre_trade_rejection(sig, cfg)
        if rejected:
            return self._finish(Outcome.REJECTED_BY_RISK, rejected)
        self.step = Step.AWAIT_MARKET
        return [AwaitMarket(sig.identity.block_number, ev.now + cfg.validation.state_wait_s)]

    def _on_await_market(self, ev: MarketReady) -> list[Action]:
        sig, cfg = self.sig, self.cfg
        assert sig is not None
        verdict = revalidate(sig, self.core.state, cfg.factories, max_age_blocks=cfg.validation.max_age_blocks(sig.identity.chain_id),
                             onchain_min_profit_bps=cfg.validation.onchain_min_profit_bps, v4_hooks=cfg.v4_hooks,
                             curve_coins=cfg.curve_coins)
        if verdict.outcome is not None:
            return self._finish(verdict.outcome, verdict.reason)
        self.ex.validated(verdict.gross_profit)
        self.gross = verdict.gross_profit
        self.data = encode_execute(list(verdict.hops), verdict.min_profit_onchain, flash=verdict.flash)
        self.step = Step.SIMULATE
        return [Simulate(self.data)]

    def _on_simulate(self, ev: Simulated | SimulationFailed) -> list[Action]:
        if isinstance(ev, SimulationFailed):
            return self._finish(Outcome.STALE, f"simulation: {ev.reason}")
        self.simulated = ev.profit
        self.step = Step.ESTIMATE
        if ev.gas is not None:  # measured by the simulation itself: no eth_estimateGas, no second round trip
            return self._on_estimate(Estimated(ev.gas))
        return [Estimate(self.data)]

    def _on_estimate(self, ev: Estimated | SimulationFailed) -> list[Action]:
        if isinstance(ev, SimulationFailed):
            return self._finish(Outcome.STALE, f"simulation: {ev.reason}")
        if self.simulated != self.gross:
            return self._finish(Outcome.STALE, f"simulated profit {self.simulated} != re-validated {self.gross}")
        self.ex.simulated()
        gas = self.cfg.gas
        self.estimate = ev.gas
        self.gas_limit = ev.gas * gas.limit_multiplier_bps // 10_000 + gas.limit_extra
        if self.gas_limit > gas.max_gas_limit:
            return self._finish(Outcome.FAILED, f"gas limit {self.gas_limit} above max {gas.max_gas_limit}")
        self.step = Step.AWAIT_HEAD
        head = self.core.latest_head
        if head is not None and self.core.mode in (SubmissionMode.PUBLIC, SubmissionMode.SHADOW):
            # the BlockHeader is already on the bus: fees from it, no eth_getBlockByNumber. Bundles
            # (private, hybrid) still ask the node: they name their target blocks, and a header
            # that lags the chain by one would aim them at a block already mined.
            return self._on_await_head(HeadSeen(head))
        return [FetchHead()]

    def _on_await_head(self, ev: HeadSeen) -> list[Action]:
        sig, cfg, core = self.sig, self.cfg, self.core
        assert sig is not None
        head = self.head = ev.head
        profit_token = TokenId(sig.economics.profit_token)
        estimate = self.estimate
        tip = choose_tip(policy=cfg.tip.policy, tip_wei=cfg.tip.tip_wei, share_bps=cfg.tip.share_bps,
                         max_tip_wei=cfg.tip.max_tip_wei, gas_units=estimate,
                         profit_in_gas_token=to_gas_token(self.gross, core.gas_token, profit_token, core.state))
        fees = self.fees = choose_fees(base_fee=head.base_fee, tip=tip,
                                       base_fee_multiplier_bps=cfg.gas.base_fee_multiplier_bps,
                                       cap=cfg.gas.max_fee_per_gas)
        price = self.price = min(head.base_fee + fees.max_priority_fee_per_gas, fees.max_fee_per_gas)
        if cfg.limits.max_gas_price_wei and price > cfg.limits.max_gas_price_wei:
            return self._finish(Outcome.REJECTED_BY_RISK, f"gas price {price} wei above the limit "
                                                          f"{cfg.limits.max_gas_price_wei}")
        cost = to_profit_token(estimate * price, core.gas_token, profit_token, core.state)
        if cost is None:
            return self._finish(Outcome.FAILED, "cannot price gas in the profit token (no pool with the gas token)")
        net = self.net = self.gross - cost
        threshold = cfg.min_profit_for(profit_token)
        if net <= threshold:
            return self._finish(Outcome.UNPROFITABLE, f"net {net} <= min profit {threshold} (gross {self.gross}, "
                                                      f"gas {estimate} x {price} wei = {cost})")
        if core.mode == SubmissionMode.SHADOW:
            return self._finish(Outcome.SIMULATED,
                                f"shadow: would have made gross {self.simulated}, net {net} (gas est {estimate})",
                                block_number=head.number, gas_used=estimate, effective_gas_price=price,
                                realized_profit=self.simulated)
        halted = core.halted_for(sig)  # a stop may have arrived while we simulated
        if halted:
            return self._finish(Outcome.HALTED, halted)
        # never two of our transactions through one pool in one block: the second would trade on the
        # state the first leaves (and its re-validation never saw)
        pools = [int(h.pool) for h in sig.path.hops]
        for p in pools:
            held = core.pools_in_flight.get(p)
            if held is not None and held[0] != self.signal_id:
                return self._finish(Outcome.STALE, f"pool {p & ((1 << 160) - 1):#042x} is in our transaction for "
                                                    f"signal {held[0]} (from block {held[1]}), not yet settled")
        for p in pools:
            core.pools_in_flight[p] = (self.signal_id, head.number + 1)
        ex = self.ex
        self.meta = json.dumps({"chain_id": ex.chain_id, "strategy_id": ex.strategy_id,
                                "profit_token": ex.profit_token, "expected_profit": ex.expected_profit,
                                "mode": int(core.mode), "net_expected": net, "data": self.data.hex()})
        self.step = Step.SIGN
        return [Sign(nonce=core.nonces.take(self.signal_id), gas_limit=self.gas_limit,
                     max_fee_per_gas=fees.max_fee_per_gas, max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
                     data=self.data)]

    # --- signed: public or private ---------------------------------------------------------------

    def _on_sign(self, ev: Signed) -> list[Action]:
        tx = ev.tx
        record = RecordTx(self.signal_id, tx, self.meta)  # persisted before it leaves the process
        if self.watch is not None:  # a replacement or a cancel of a watched nonce
            self.step = Step.BROADCAST
            return [record, Broadcast(tx)]
        self.tx = tx
        if self.core.mode == SubmissionMode.PUBLIC:
            self.watch = _Watch(txs=[tx])
            self.step = Step.BROADCAST
            return [record, Broadcast(tx)]
        assert self.head is not None
        self.targets = tuple(self.head.number + 1 + i for i in range(max(self.cfg.submission.private_blocks, 1)))
        for i, b in enumerate(self.core.builders):
            if b.call_bundle:
                self.step = Step.BUNDLE_CHECK
                return [record, CallBundle(i, tx.raw, self.targets[0])]
        self.step = Step.BUNDLES
        return [record, SendBundles(tx.raw, self.targets)]

    def _on_broadcast(self, ev: Broadcasted | NonceUsed) -> list[Action]:
        """``eth_sendRawTransaction`` succeeded: the nonce is spent (mined, replaced or cancelled)."""
        w = self.watch
        assert w is not None
        if type(ev) is NonceUsed:
            return self._on_nonce_used(ev)
        assert isinstance(ev, Broadcasted)
        tx = ev.tx
        self.core.nonces.consumed(tx.nonce)
        self.step = Step.WATCH
        if w.pending == "":  # the first transaction of this nonce
            out: list[Action] = []
            if not self.started_published:
                # said first, the bookkeeping after: a restart does not need the row marked to know the
                # transaction left (the node is asked: execution/store.py, "A crash between signing and sending")
                out.append(Publish(self.ex.submitted(tx.attempt())))
                self.started_published = True
            out += [MarkPublic(tx), PollReceipts(tuple(t.hash_hex for t in w.txs), 0.0)]
            return out
        out = [MarkPublic(tx)]
        w.txs.append(tx)
        out.append(Publish(self.ex.submitted(tx.attempt())))
        sub = self.cfg.submission
        if w.pending == "cancel":
            w.cancelled = True
            out.append(Log("warning", f"executor: signal {self.signal_id} not included in {sub.receipt_timeout_s:.1f}s: "
                                      f"cancelling nonce {tx.nonce}"))
        else:
            w.replacements += 1
            out.append(Log("info", f"executor: signal {self.signal_id}: replaced nonce {tx.nonce} with fees "
                                   f"{tx.max_fee_per_gas}/{tx.max_priority_fee_per_gas}"))
        w.pending = ""
        out.append(PollReceipts(tuple(t.hash_hex for t in w.txs), sub.poll_interval_s))
        return out

    def _on_nonce_used(self, ev: NonceUsed) -> list[Action]:
        """The node refused a transaction of ours for its nonce.

        A replacement or a cancel of a nonce we already broadcast: a transaction at that nonce is mined, or
        pending with fees at least these -- with the executor the account's one signer, one of ours (typically
        mined between the last receipt poll and the replacement). Nothing is lost: the watch goes on with the
        transactions already sent, whose receipts decide (a refused replacement counts as one; after a refused
        cancel the watch ends at its second deadline, as after a cancel).

        The first transaction of a nonce: something outside the executor used its key (``specs/executor-
        concurrency.md``, "Nonces"), and nothing is signed again. The run ends FAILED with one line; the nonce is
        spent when the chain counts it (else given back or filled, as any nonce not sent), and the tracker goes
        on from the chain's pending count -- once, here -- so the next signal is not refused the same way."""
        w = self.watch
        assert w is not None
        core = self.core
        if w.pending:
            what, w.pending = w.pending, ""
            if what == "cancel":
                w.cancel_refused = True
            else:
                w.replacements += 1
            self.step = Step.WATCH
            return [Log("info", f"executor: signal {self.signal_id}: the {what} of nonce {w.txs[0].nonce} was refused "
                                f"({ev.reason}): a transaction of ours at it is mined or pending; watching on"),
                    PollReceipts(tuple(t.hash_hex for t in w.txs), 0.0)]
        tx = w.txs[0]
        out: list[Action] = [SettleNonce(tx.nonce, None)]  # it never left: its row can never land
        if ev.pending > tx.nonce:
            core.nonces.consumed(tx.nonce)
        else:  # refused, yet the chain has not used it: never sent, given back or filled
            out += core.release_nonce(tx.nonce)
        before = core.nonces.next
        core.nonces.resync(ev.pending)
        out.append(Log("error", f"executor: signal {self.signal_id}: nonce {tx.nonce} refused ({ev.reason}): a "
                                f"transaction the executor did not sign uses it; next nonce {before} -> "
                                f"{core.nonces.next} (the account's pending count {ev.pending})"))
        return [*out, *self._finish(Outcome.FAILED, f"nonce {tx.nonce} refused: {ev.reason}")]

    def resume_watch(self) -> list[Action]:
        """After a restart, the re-broadcast transactions: say so once and watch them as if just sent."""
        w = self.watch
        assert w is not None and self.step is Step.START and self.sig is None
        self.started_published = True
        self.step = Step.WATCH
        return [Publish(self.ex.submitted(w.txs[0].attempt())), PollReceipts(tuple(t.hash_hex for t in w.txs), 0.0)]

    def end_recovered(self, outcome: Outcome, reason: str) -> list[Action]:
        """After a restart, nothing of the run's can land any more (its nonce is gone or was never sent).
        The run's transaction was signed before the restart, hence it counts as submitted."""
        w = self.watch
        assert w is not None and self.step is Step.START and self.sig is None
        self.ex.submitted(w.txs[0].attempt())
        return self._finish(outcome, reason)

    def settle_recovered(self, row_index: int, r: Receipt, *, cancelled: bool) -> list[Action]:
        """After a restart, a transaction of the run (``row_index`` in the nonce's rows) was mined."""
        w = self.watch
        assert w is not None and self.step is Step.START and self.sig is None
        self.ex.submitted(w.txs[0].attempt())
        return self.settle(w.txs[row_index].nonce, r, cancelled=cancelled)

    def _on_watch(self, ev: Polled) -> list[Action]:
        """Wait for a receipt of any transaction of the nonce; replace with bumped fees when stuck;
        cancel (a 0-value self-transfer at the same nonce) at the deadline."""
        w = self.watch
        assert w is not None
        if w.start is None:  # first poll of this watch: the timers start now
            w.start = ev.now
            w.next_replace = ev.now + self.cfg.submission.replace_after_s
        if ev.receipt is not None:
            t = w.txs[ev.index]
            return self.settle(t.nonce, ev.receipt, cancelled=w.cancelled and ev.index == len(w.txs) - 1)
        sub = self.cfg.submission
        now = ev.now
        if now - w.start >= sub.receipt_timeout_s * (2 if w.cancelled or w.cancel_refused else 1):
            if w.cancelled or w.cancel_refused:
                return self._finish(Outcome.NOT_INCLUDED,
                                    f"nonce {w.txs[0].nonce} still pending after replacements and a cancel")
            cancel = self._replacement(w.txs[-1], b"", to=self.core.address, gas_limit=CANCEL_GAS)
            if cancel is None:
                return self._finish(Outcome.NOT_INCLUDED, "not included; fee cap prevents a cancel")
            w.pending = "cancel"
            self.step = Step.SIGN
            return [cancel]
        if self.data and not (w.cancelled or w.cancel_refused) and now >= w.next_replace \
                and w.replacements < sub.max_replacements:
            repl = self._replacement(w.txs[-1], self.data)
            w.next_replace = now + sub.replace_after_s
            if repl is not None:
                w.pending = "replace"
                self.step = Step.SIGN
                return [repl]
        return [PollReceipts(tuple(t.hash_hex for t in w.txs), sub.poll_interval_s)]

    def _replacement(self, prev: Tx, data: bytes, *, to: str | None = None, gas_limit: int | None = None) -> Sign | None:
        fees = Fees(max_fee_per_gas=prev.max_fee_per_gas, max_priority_fee_per_gas=prev.max_priority_fee_per_gas)
        bumped = fees.bumped(self.cfg.gas.fee_bump_bps, self.cfg.gas.max_fee_per_gas)
        if bumped is None:
            return None
        return Sign(nonce=prev.nonce, gas_limit=gas_limit or prev.gas_limit, to=to, data=data,
                    max_fee_per_gas=bumped.max_fee_per_gas, max_priority_fee_per_gas=bumped.max_priority_fee_per_gas)

    def settle(self, nonce: int, r: Receipt, *, cancelled: bool = False) -> list[Action]:
        """A transaction of ours was mined: the signal's outcome from its receipt."""
        out: list[Action] = [SettleNonce(nonce, r.tx_hash)]
        kw = {"block_number": r.block_number, "tx_hash": r.tx_hash_bytes, "gas_used": r.gas_used,
              "effective_gas_price": r.effective_gas_price}
        block = r.block_number
        if cancelled:
            return out + self._finish(Outcome.NOT_INCLUDED, f"cancelled: nonce {nonce} used by a 0-value "
                                                            f"self-transfer in block {block}", **kw)
        if r.status != 1:
            return out + self._finish(Outcome.REVERTED, f"reverted on chain in block {block} "
                                                        f"(gas used {r.gas_used})", **kw)
        realized = profit_from_logs(r.logs, self.cfg.contract)
        if realized is None:
            return out + self._finish(Outcome.FAILED, f"mined in block {block} without an ArbitrageExecuted "
                                                      "event from our contract", **kw)
        cost = to_profit_token(r.gas_used * r.effective_gas_price, self.core.gas_token, TokenId(self.ex.profit_token),
                               self.core.state)
        net_real = realized - cost if cost is not None else None
        return out + self._finish(
            Outcome.EXECUTED, f"gross {realized} (expected {self.ex.expected_profit}); net {net_real} (expected "
                              f"{self.net}); gas {r.gas_used} x {r.effective_gas_price} wei",
            realized_profit=realized, **kw)

    # --- private (and hybrid) --------------------------------------------------------------------

    def _on_bundle_check(self, ev: BundleChecked) -> list[Action]:
        assert self.tx is not None
        if ev.failure is not None:
            builder = next(b for b in self.core.builders if b.call_bundle)
            return [SettleNonce(self.tx.nonce, None), *self.core.release_nonce(self.tx.nonce),
                    *self._finish(Outcome.STALE, f"eth_callBundle at {builder.name}: {ev.failure}")]
        self.step = Step.BUNDLES
        return [SendBundles(self.tx.raw, self.targets)]

    def _on_bundles(self, ev: BundlesSent) -> list[Action]:
        assert self.tx is not None
        if not ev.sent:
            return [SettleNonce(self.tx.nonce, None), *self.core.release_nonce(self.tx.nonce),
                    *self._finish(Outcome.FAILED, f"no builder accepted the bundle: {'; '.join(ev.errors)}")]
        self.started_published = True
        self.private_deadline = ev.now + self.cfg.submission.private_timeout_s
        self.step = Step.PRIVATE_WATCH
        return [Publish(self.ex.submitted(self.tx.attempt())), PollPrivate(self.tx.hash_hex, 0.0, self.private_deadline)]

    def _on_private_watch(self, ev: PrivatePolled) -> list[Action]:
        assert self.tx is not None
        sub = self.cfg.submission
        if ev.receipt is not None:
            return self.settle(self.tx.nonce, ev.receipt)
        if ev.block_number > self.targets[-1] or ev.now >= self.private_deadline:
            self.step = Step.PRIVATE_FINAL
            return [PollReceipts((self.tx.hash_hex,), 0.0)]
        return [PollPrivate(self.tx.hash_hex, sub.poll_interval_s, self.private_deadline)]

    def _on_private_final(self, ev: Polled) -> list[Action]:
        tx = self.tx
        assert tx is not None
        if ev.receipt is not None:
            return self.settle(tx.nonce, ev.receipt)
        if self.core.mode == SubmissionMode.HYBRID:
            self.watch = _Watch(txs=[tx])
            self.step = Step.BROADCAST
            return [Log("info", f"executor: signal {self.signal_id}: bundle not included in blocks "
                                f"{list(self.targets)}; sending publicly"), Broadcast(tx)]
        # The bundle's blocks passed (or we gave up on them): the nonce was never broadcast publicly
        # and is free again. Should a builder still include the old transaction, it carries its own
        # minProfit and hop minimums, and the next transaction with this nonce simply fails.
        return [SettleNonce(tx.nonce, None), *self.core.release_nonce(tx.nonce),
                *self._finish(Outcome.NOT_INCLUDED, f"bundle not included in blocks {list(self.targets)}")]


# --------------------------------------------------------------------------- restart recovery


@dataclass(frozen=True, slots=True, kw_only=True)
class NonceRecovery:
    """What a restart does with one nonce a previous run signed and did not settle."""

    settle: SettleNonce | None = None  # write this to SQLite
    result_of: tuple[Outcome, str] | None = None  # end the signal so (no transaction of ours can land)
    rebroadcast: bool = False  # send the public transactions again (same bytes) and watch them
    public: tuple[int, ...] = field(default=())  # indices of the rows to re-broadcast


def recover_unmined(nonce: int, public: Sequence[bool], latest: int) -> NonceRecovery:
    """None of the nonce's transactions has a receipt: either nothing of ours can land any more
    (someone else's transaction took the nonce, or ours never left), or they are still pending."""
    sent = tuple(i for i, p in enumerate(public) if p)
    if nonce < latest or not sent:
        why = "consumed by a transaction we did not record" if sent else "never broadcast before the restart"
        return NonceRecovery(settle=SettleNonce(nonce, None),
                             result_of=(Outcome.FAILED if sent else Outcome.NOT_INCLUDED,
                                        f"restart: nonce {nonce} {why}"))
    return NonceRecovery(rebroadcast=True, public=sent)
