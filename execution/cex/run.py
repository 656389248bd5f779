"""A CEX-DEX signal's run through the executor, sans-IO: the two-leg policy (:mod:`execution.cex.legs`,
``specs/cex-legs.md``) driving an order on the exchange and a swap through our contract on chain.

Theory of operation
-------------------
The shell (:mod:`execution.executor`) drives a :class:`CexDexRun` exactly like a
:class:`~execution.core.SignalRun`: ``start(now)``, carry out the actions in order, feed the last one's
answer to ``on(event)``, until ``done``. The phases::

    START --Start--> AWAIT_MARKET --MarketReady: re-priced on the executor's own book and pool-->
      DEX_PREP (the DEX leg at full size: eth_call of swap(), eth_estimateGas, fees from the head)
        --priced: net > min profit, not shadow, not halted--> LEGS

    LEGS: LegMachine.start -> PlaceOrder (CEX IOC) --CexAnswered--> LegMachine.on_cex
            SendDex  -> the DEX leg's transaction (DexLeg: sign, broadcast, watch, replace, cancel)
                        --mined / not included--> LegMachine.on_dex
            PlaceCex -> PlaceOrder (unwind) --CexAnswered--> LegMachine.on_unwind
            QueryCex -> QueryOrder (GET the order by its client order id) --CexQueried--> LegMachine.on_query
            Done     -> Publish(ExecutionResult + LegReport): the one outcome

* **The DEX leg is a one-hop swap from inventory** (``AlphaPulseArb.swap``: exact input from the tokens
  the contract holds, a minimum output, an on-chain deadline), not a flash cycle: a CEX-DEX trade has a
  single pool hop, and its other side is already paid on the exchange. After a CEX BUY it sells the
  filled base for at least the break-even quote; after a CEX SELL it spends the pool's exact input for the
  filled base (``min_input``, at most the break-even) with the filled base as its minimum output. Its
  deadline is the head's timestamp plus ``dex_deadline_s`` (chain time, which the contract compares), so
  a leg given up at ``max_leg_open_s`` can never land afterwards.
* :class:`DexLeg` is :class:`~execution.core.SignalRun` from the simulation on -- the same simulate /
  estimate / fee / sign / broadcast / watch / replace / cancel / bundle steps and the same RecordTx
  before anything leaves -- with three differences: its calldata is ``swap``, its receipt is read for the
  ``Swapped`` event, and its end is handed back to the leg machine instead of being published.
* Timers: an order's answer is awaited until its deadline (the shell answers ``CexAnswered(None)`` when it
  passes); ``max_leg_open`` is checked on every answer of the DEX leg's watch (they come every
  ``poll_interval_s``). Once the CEX leg traded, an emergency stop does not stop the DEX leg or the unwind:
  both reduce the open position.
* An order answered ``UNKNOWN`` (sent, answer lost) or not at all is queried (``QueryOrder``); its fill is
  published once, from the query's final answer -- an answer that says nothing publishes nothing.
* Every CEX answer is published as a ``CexFill`` as it arrives (what the books move the exchange balances
  by); the run ends with one message holding its ``ExecutionResult`` and ``LegReport``. The result's
  ``realized_profit`` is gross (gas apart, as for every signal); the report's is net of the DEX gas.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from execution.calldata import Hop as CallHop
from execution.calldata import Kind, Swapped, decode_swapped, encode_swap
from execution.cex.gateway import FINAL, OrderRequest, OrderResult, OrderSide, OrderStatus
from execution.cex.legs import (
    Done,
    LegLimits,
    LegMachine,
    LegOutcome,
    LegPlan,
    PlaceCex,
    QueryCex,
    SendDex,
    State,
)
from execution.config import CexMarketConfig
from execution.core import (
    Action,
    AwaitMarket,
    CoreError,
    Event,
    ExecutorCore,
    HeadSeen,
    Log,
    MarketReady,
    Publish,
    Receipt,
    SettleNonce,
    Sign,
    SignalRun,
    Simulate,
    Start,
    Step,
)
from execution.validate import Signal, choose_fees, choose_tip, to_gas_token, to_profit_token
from market.cex import Units, buy_base_cost, sell_base_proceeds
from market.pools import V2Pool, V3Pool
from protocol.execution import (
    CexFill,
    CexOrderPurpose,
    DexLegResult,
    ExecutionResult,
    LegReport,
    Outcome,
    SubmissionMode,
)
from protocol.ids import PoolId, TokenId, VenueKind, cex_symbol
from protocol.market import Side

NS = 1_000_000_000


# --------------------------------------------------------------------------- the shell's new request


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Send ``order`` through the order gateway; answer ``CexAnswered``, with ``result`` None when no answer
    came within ``timeout`` seconds of sending it."""

    order: OrderRequest
    timeout: float
    purpose: str = "entry"  # entry | unwind
    meta: str = ""  # the entry's: what a restarted executor needs to end the signal (recorded before sending)


@dataclass(frozen=True, slots=True)
class CexAnswered:
    now: float
    result: OrderResult | None  # None: no answer by the deadline


@dataclass(frozen=True, slots=True)
class QueryOrder:
    """Ask the exchange what became of ``order`` (``GET /api/v3/order`` by its client order id), not before
    trio time ``at``; answer ``CexQueried``, with ``result`` None when no answer came within ``timeout``."""

    order: OrderRequest
    at: float
    timeout: float


@dataclass(frozen=True, slots=True)
class CexQueried:
    now: float
    result: OrderResult | None


class Phase(enum.Enum):
    START = "start"
    AWAIT_MARKET = "await_market"
    DEX_PREP = "dex_prep"
    LEGS = "legs"
    DONE = "done"


# --------------------------------------------------------------------------- re-pricing


@dataclass(frozen=True, slots=True, kw_only=True)
class Priced:
    """The signal re-priced on the executor's own book and pool, at the signal's size."""

    side: OrderSide  # the CEX leg's
    size: int  # book size steps
    base_units: int
    limit_price: int  # the worst level the walk needs (price_scale)
    price_scale: int
    size_scale: int
    cex_quote: int  # quote units: cost with fee (BUY) / proceeds after fee (SELL)
    dex_in: int  # the swap's exact input
    dex_out: int  # its exact output on the current state
    gross: int  # quote units
    pool: PoolId
    base_is_token0: bool
    hop: CallHop  # the swap at full size (for the simulation)


def _worst_price(levels: list[tuple[int, int]], size: int) -> int | None:
    for price, available in levels:
        size -= min(available, size)
        if not size:
            return price
    return None


def reprice(run: CexDexRun) -> tuple[Outcome, str] | Priced:
    sig, core, m = run.sig, run.core, run.market
    state = core.state
    head = state.gas.get(sig.identity.chain_id)
    if head is None:
        return Outcome.STALE, "no block header for the chain yet"
    age, limit = head.block_number - sig.identity.block_number, run.cfg.validation.max_age_blocks(sig.identity.chain_id)
    if age > limit:
        return Outcome.STALE, (f"signal block {sig.identity.block_number} is {age} blocks behind head "
                               f"{head.block_number} (max {limit})")
    book = core.books.book(m.venue, m.symbol)
    if book is None:
        return Outcome.STALE, f"book {m.symbol} is not whole (invalidated or never synced)"
    pool_id = PoolId(run.dex_hop.pool)
    snap = state.tradable(pool_id)
    if snap is None:
        return Outcome.STALE, f"pool stale: {pool_id.address} is {'invalidated' if state.is_stale(pool_id) else 'unknown'}"
    factory = run.cfg.factories.get(pool_id.venue)
    if factory is None:
        return Outcome.FAILED, f"no factory configured for venue {pool_id.venue}"
    if isinstance(snap, V2Pool):
        kind, fee = Kind.V2, snap.fee_ppm
    elif isinstance(snap, V3Pool):
        kind, fee = Kind.V3, snap.fee
    else:
        return Outcome.FAILED, f"venue kind {VenueKind(pool_id.kind).name} is not executable by the contract"
    units = Units(base_decimals=m.base_decimals, quote_decimals=m.quote_decimals, price_scale=book.price_scale,
                  size_scale=book.size_scale)
    size = units.size_of(run.signal_base_units)
    base_units = units.base_units(size)
    if size <= 0:
        return Outcome.STALE, f"size {run.signal_base_units} base units is below the book's step"
    base = TokenId.of(core.config.chain_id, m.base)
    base_is_token0 = pool_id.token0 == base
    if run.side is OrderSide.BUY:  # buy on the CEX, sell the base into the pool
        cex = buy_base_cost(book, units, base_units, m.fee_ppm)
        limit = _worst_price(book.asks_up(), size)
        dex_in, dex_out = base_units, snap.amount_out(base_is_token0, base_units)
        gross = None if cex is None else dex_out - cex
        tin, tout = m.base, m.quote
    else:  # sell on the CEX, buy the base back from the pool (its exact input for the base)
        cex = sell_base_proceeds(book, units, base_units, m.fee_ppm)
        limit = _worst_price(book.bids_down(), size)
        dex_in = snap.min_input(not base_is_token0, base_units)
        dex_out = snap.amount_out(not base_is_token0, dex_in) if dex_in > 0 else -1
        gross = None if cex is None else cex - dex_in
        tin, tout = m.quote, m.base
    if cex is None or limit is None:
        return Outcome.STALE, f"book {m.symbol} is too thin for {size} steps now"
    if dex_in <= 0 or dex_out <= 0:
        return Outcome.STALE, f"pool {pool_id.address} cannot trade {base_units} base units now"
    assert gross is not None
    hop = CallHop(pool=pool_id.address, factory=factory, token_in=tin, token_out=tout, kind=kind,
                  fee=fee, amount_in=dex_in, amount_out=dex_out)
    return Priced(side=run.side, size=size, base_units=base_units, limit_price=limit, price_scale=book.price_scale,
                  size_scale=book.size_scale, cex_quote=cex, dex_in=dex_in, dex_out=dex_out, gross=gross,
                  pool=pool_id, base_is_token0=base_is_token0, hop=hop)


# --------------------------------------------------------------------------- the DEX leg's transaction


class DexLeg(SignalRun):
    """SignalRun's transaction steps for the swap; its end goes to the leg machine, not to the relay."""

    def __init__(self, parent: CexDexRun, data: bytes, expected_out: int) -> None:
        super().__init__(parent.core, parent.sig, ex=parent.ex)
        self.parent = parent
        self.data = data
        self.gross = expected_out  # the simulation must reproduce the mirror's output to the wei
        self.priced = False
        self.sent = False
        self.tip_basis = 0  # the trade's gross profit (quote units), for a profit-share tip
        self.end: tuple[Outcome, str, dict[str, Any]] | None = None
        self.swapped: Swapped | None = None
        self.receipt_gas_wei = 0

    def simulate(self) -> list[Action]:
        self.step = Step.SIMULATE
        return [Simulate(self.data)]

    def _on_await_head(self, ev: HeadSeen) -> list[Action]:
        """Fees for the DEX leg; the decision to trade is the parent's (net of the CEX leg)."""
        cfg, core = self.cfg, self.core
        head = self.head = ev.head
        quote = TokenId(self.parent.sig.economics.profit_token)
        tip = choose_tip(policy=cfg.tip.policy, tip_wei=cfg.tip.tip_wei, share_bps=cfg.tip.share_bps,
                         max_tip_wei=cfg.tip.max_tip_wei, gas_units=self.estimate,
                         profit_in_gas_token=to_gas_token(max(self.tip_basis, 0), core.gas_token, quote, core.state))
        fees = self.fees = choose_fees(base_fee=head.base_fee, tip=tip,
                                       base_fee_multiplier_bps=cfg.gas.base_fee_multiplier_bps,
                                       cap=cfg.gas.max_fee_per_gas)
        self.price = min(head.base_fee + fees.max_priority_fee_per_gas, fees.max_fee_per_gas)
        self.priced = True
        return []

    def send(self, data: bytes) -> list[Action] | str:
        """Sign the resized swap; a reason (str) when it cannot go out."""
        core = self.core
        pools = [int(self.parent.dex_hop.pool)]
        for p in pools:
            held = core.pools_in_flight.get(p)
            if held is not None and held[0] != self.signal_id:
                return f"pool {p & ((1 << 160) - 1):#042x} is in our transaction for signal {held[0]}"
        assert self.head is not None and self.fees is not None
        for p in pools:
            core.pools_in_flight[p] = (self.signal_id, self.head.number + 1)
        self.data = data
        self.sent = True
        ex = self.ex
        self.meta = json.dumps({"chain_id": ex.chain_id, "strategy_id": ex.strategy_id, "profit_token": ex.profit_token,
                                "expected_profit": ex.expected_profit, "mode": int(core.mode), "net_expected": 0,
                                "data": data.hex(), "leg": "dex"})
        self.step = Step.SIGN
        fees = self.fees
        return [Sign(nonce=core.nonces.take(self.signal_id), gas_limit=self.gas_limit,
                     max_fee_per_gas=fees.max_fee_per_gas,
                     max_priority_fee_per_gas=fees.max_priority_fee_per_gas, data=data)]

    def settle(self, nonce: int, r: Receipt, *, cancelled: bool = False) -> list[Action]:
        out: list[Action] = [SettleNonce(nonce, r.tx_hash)]
        kw = {"block_number": r.block_number, "tx_hash": r.tx_hash_bytes, "gas_used": r.gas_used,
              "effective_gas_price": r.effective_gas_price}
        self.receipt_gas_wei = r.gas_used * r.effective_gas_price
        if cancelled:
            return out + self._finish(Outcome.NOT_INCLUDED, f"cancelled: nonce {nonce} used by a 0-value self-transfer",
                                      **kw)
        if r.status != 1:
            return out + self._finish(Outcome.REVERTED, f"reverted on chain in block {r.block_number}", **kw)
        self.swapped = decode_swapped(r.logs, self.cfg.contract)
        if self.swapped is None:
            return out + self._finish(Outcome.FAILED, f"mined in block {r.block_number} without a Swapped event", **kw)
        return out + self._finish(Outcome.EXECUTED, f"mined in block {r.block_number}", **kw)

    def _finish(self, outcome: Outcome, reason: str, **kw: Any) -> list[Action]:
        held = self.core.pools_in_flight
        for p in [p for p, (sid, _) in held.items() if sid == self.signal_id]:
            del held[p]
        self.end = (outcome, reason, kw)
        self.step = Step.DONE
        return []


# --------------------------------------------------------------------------- the run


_DEX_RESULT = {"executed": DexLegResult.EXECUTED, "reverted": DexLegResult.REVERTED,
               "not_included": DexLegResult.NOT_INCLUDED, "timeout": DexLegResult.TIMEOUT}
_OUTCOME = {LegOutcome.BOTH_FILLED: Outcome.EXECUTED, LegOutcome.UNWOUND: Outcome.UNWOUND,
            LegOutcome.LEG_OPEN: Outcome.LEG_OPEN, LegOutcome.CEX_NOT_FILLED: Outcome.CEX_NOT_FILLED}


class CexDexRun:
    """One CEX-DEX signal's way to its one outcome. See the module docstring."""

    def __init__(self, core: ExecutorCore, sig: Signal, *, halted_by: str | None = None) -> None:
        from execution.lifecycle import SignalExecution

        self.core = core
        self.cfg = core.config
        self.sig = sig
        self.halted_by = halted_by
        self.ex = SignalExecution(signal_id=sig.signal_id, chain_id=sig.identity.chain_id,
                                  strategy_id=sig.identity.strategy_id, profit_token=sig.economics.profit_token,
                                  mode=core.mode, expected_profit=sig.economics.gross_profit)
        self.phase = Phase.START
        self.result: ExecutionResult | None = None
        hops = sig.path.hops
        cex = [h for h in hops if h.venue_kind == VenueKind.CEX]
        dex = [h for h in hops if h.venue_kind != VenueKind.CEX]
        self.problem = "" if len(hops) == 2 and len(cex) == 1 and len(dex) == 1 else \
            "a CEX_DEX signal needs one CEX hop and one DEX hop"
        self.cex_hop = cex[0] if cex else hops[0]
        self.dex_hop = dex[0] if dex else hops[-1]
        # the CEX leg buys the base when it comes first (quote in, base out), else it sells the base
        self.side = OrderSide.BUY if hops[0] is self.cex_hop else OrderSide.SELL
        self.signal_base_units = self.cex_hop.amount_out if self.side is OrderSide.BUY else self.cex_hop.amount_in
        book = PoolId(self.cex_hop.pool)
        cexcfg = self.cfg.cex
        m = cexcfg.market(book.venue, cex_symbol(book)) if cexcfg is not None else None
        self._market = m
        self.priced: Priced | None = None
        self.dex: DexLeg | None = None
        self.legs: LegMachine | None = None
        self.net = 0
        self.gas_quote = 0

    # --- the shell's interface (as SignalRun's) --------------------------------------------------

    @property
    def market(self) -> CexMarketConfig:
        assert self._market is not None
        return self._market

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def step(self) -> Phase:
        return self.phase

    @property
    def signal_id(self) -> int:
        return self.ex.signal_id

    def market_ready(self) -> bool:
        core, m = self.core, self._market
        if core.head_block() < self.sig.identity.block_number or m is None:
            return False
        return core.state.tradable(self.dex_hop.pool) is not None and core.books.book(m.venue, m.symbol) is not None

    def start(self, now: float) -> list[Action]:
        return self.on(Start(now))

    def on(self, event: Event | CexAnswered | CexQueried) -> list[Action]:
        ph = self.phase
        if ph is Phase.START and type(event) is Start:
            return self._on_start(event)
        if ph is Phase.AWAIT_MARKET and type(event) is MarketReady:
            return self._on_market(event)
        if ph is Phase.DEX_PREP and self.dex is not None and not isinstance(event, (CexAnswered, CexQueried)):
            return self._on_dex_prep(event)
        if ph is Phase.LEGS:
            if isinstance(event, CexAnswered):
                return self._on_cex(event)
            if isinstance(event, CexQueried):
                return self._on_query(event)
            if self.dex is not None and self.dex.sent and not self.dex.done:
                return self._on_dex_send(event)
        raise CoreError(f"signal {self.signal_id}: {type(event).__name__} is not expected at phase {ph.value}")

    def fail(self, reason: str) -> list[Action]:
        """The shell's failure boundary. With a CEX position open, the leg machine closes it (the DEX leg
        counts as failed); otherwise the run ends FAILED."""
        legs = self.legs
        if legs is not None and legs.state is State.DEX_SENT:
            return self._legs(legs.on_dex(False, 0, self._gas_quote_spent(), int(self._now * NS), result="failed"),
                              self._now)
        if legs is not None and legs.state in (State.CEX_SENT, State.UNWINDING, State.QUERYING):
            return self._legs(legs.abandon(f"failed with an order open: {reason}"), self._now)
        return self._finish(Outcome.FAILED, reason)

    # --- before the legs -------------------------------------------------------------------------

    def _finish(self, outcome: Outcome, reason: str, **kw: Any) -> list[Action]:
        held = self.core.pools_in_flight
        for p in [p for p, (sid, _) in held.items() if sid == self.signal_id]:
            del held[p]
        self.result = self.ex.finish(outcome, reason, **kw)
        self.phase = Phase.DONE
        return [Publish(self.result)]

    def _on_start(self, ev: Start) -> list[Action]:
        sig, cfg = self.sig, self.cfg
        if sig.identity.chain_id != cfg.chain_id:
            return self._finish(Outcome.FAILED, f"signal for chain {sig.identity.chain_id}, this executor serves "
                                                f"{cfg.chain_id}")
        if self.problem:
            return self._finish(Outcome.FAILED, self.problem)
        if cfg.cex is None:
            return self._finish(Outcome.FAILED, "CEX_DEX signal but no [cex] table in the executor's configuration")
        if self._market is None:
            book = PoolId(self.cex_hop.pool)
            return self._finish(Outcome.FAILED, f"no [[cex.markets]] entry for venue {book.venue} symbol "
                                                f"{cex_symbol(book)!r}")
        m = self.market
        quote = TokenId.of(cfg.chain_id, m.quote)
        if sig.economics.profit_token != quote:
            return self._finish(Outcome.FAILED, f"profit token is not the market's quote token {m.quote}")
        halted = self.halted_by or self.core.halted_for(sig)
        if halted:
            return self._finish(Outcome.HALTED, halted)
        token_in = TokenId.of(cfg.chain_id, self.dex_hop.token_in)
        cap = cfg.limits.max_amount_in.get(token_in)
        if cap is not None and self.dex_hop.amount_in > cap:
            return self._finish(Outcome.REJECTED_BY_RISK, f"DEX leg size {self.dex_hop.amount_in} of "
                                                          f"{token_in.address} above the limit {cap}")
        self.phase = Phase.AWAIT_MARKET
        return [AwaitMarket(sig.identity.block_number, ev.now + cfg.validation.state_wait_s)]

    def _on_market(self, ev: MarketReady) -> list[Action]:
        self._now = ev.now
        p = reprice(self)
        if not isinstance(p, Priced):
            return self._finish(*p)
        self.priced = p
        self.ex.validated(p.gross)
        self.dex = DexLeg(self, encode_swap(p.hop, 2**255), p.dex_out)  # deadline: the simulation's only
        self.dex.tip_basis = p.gross
        self.phase = Phase.DEX_PREP
        return self.dex.simulate()

    def _on_dex_prep(self, ev: Any) -> list[Action]:
        dex = self.dex
        assert dex is not None and self.priced is not None
        acts = dex.on(ev)
        if dex.done:  # the simulation or estimate failed
            assert dex.end is not None
            outcome, reason, _ = dex.end
            return self._finish(outcome, f"DEX leg {reason}")
        if not dex.priced:
            return acts
        p, cfg, core = self.priced, self.cfg, self.core
        quote = TokenId(self.sig.economics.profit_token)
        cost = to_profit_token(dex.estimate * dex.price, core.gas_token, quote, core.state)
        if cost is None:
            return self._finish(Outcome.FAILED, "cannot price gas in the quote token (no pool with the gas token)")
        self.gas_quote = cost
        net = self.net = p.gross - cost
        threshold = cfg.min_profit_for(int(quote))
        side = p.side.value
        if net <= threshold:
            return self._finish(Outcome.UNPROFITABLE, f"net {net} <= min profit {threshold} (CEX {side} {p.size} steps "
                                                      f"for {p.cex_quote}, DEX {p.dex_in} -> {p.dex_out}, gas {cost})")
        if core.mode.name == "SHADOW":
            return self._finish(Outcome.SIMULATED, f"shadow: would trade CEX {side} {p.size} steps at <= "
                                                   f"{p.limit_price}, gross {p.gross}, net {net}",
                                realized_profit=p.gross, gas_used=dex.estimate, effective_gas_price=dex.price)
        halted = core.halted_for(self.sig)
        if halted:
            return self._finish(Outcome.HALTED, halted)
        c = cfg.cex
        assert c is not None
        m = self.market
        plan = LegPlan(symbol=m.symbol, cex_side=p.side, size=p.size, limit_price=p.limit_price,
                       price_scale=p.price_scale, size_scale=p.size_scale, base_decimals=m.base_decimals,
                       quote_decimals=m.quote_decimals, cex_fee_ppm=m.fee_ppm, gas_cost=cost,
                       client_order_id=f"ap{self.signal_id}")
        self.legs = LegMachine(plan, self._limits())
        self.phase = Phase.LEGS
        now = self._now
        return self._legs(self.legs.start(int(now * NS)), now)

    _now = 0.0  # the latest trio time an event carried

    # --- the legs ---------------------------------------------------------------------------------

    def _on_cex(self, ev: CexAnswered) -> list[Action]:
        legs = self.legs
        assert legs is not None
        self._now = ev.now
        now_ns = int(ev.now * NS)
        if ev.result is None:
            return self._legs(legs.on_timer(max(now_ns, legs.deadline_ns)), ev.now)
        unwind = legs.state.value == "unwinding"
        # an answer that was lost on the way (UNKNOWN) fills nothing we know of: the query's answer is the fill
        out: list[Action] = [] if ev.result.status is OrderStatus.UNKNOWN else [Publish(self._fill(ev.result, unwind))]
        if unwind:
            return out + self._legs(legs.on_unwind(ev.result, now_ns), ev.now)
        return out + self._legs(legs.on_cex(ev.result, now_ns, dex_quote_for=self._quote_for(ev.result.executed)),
                                ev.now)

    def _on_query(self, ev: CexQueried) -> list[Action]:
        legs = self.legs
        assert legs is not None and legs.state is State.QUERYING
        self._now = ev.now
        r = ev.result
        out: list[Action] = []
        if r is not None and r.status in FINAL:  # the order's real fill, published once, from the query
            out.append(Publish(self._fill(r, legs.querying_unwind)))
        quote = self._quote_for(r.executed) if r is not None and not legs.querying_unwind and self.priced else None
        return out + self._legs(legs.on_query(r, int(ev.now * NS), dex_quote_for=quote), ev.now)

    def _on_dex_send(self, ev: Any) -> list[Action]:
        legs, dex = self.legs, self.dex
        assert legs is not None and dex is not None
        now = getattr(ev, "now", None)
        if now is not None:
            self._now = now
            timed = legs.on_timer(int(now * NS))
            if timed:  # max_leg_open passed with the DEX leg unfinished: unwind; its deadline keeps it out
                for p in [p for p, (sid, _) in self.core.pools_in_flight.items() if sid == self.signal_id]:
                    del self.core.pools_in_flight[p]
                note = Log("warning", f"executor: signal {self.signal_id}: DEX leg not finished within max_leg_open; "
                                      "unwinding the CEX leg (the transaction's deadline keeps it from landing later)")
                return [note, *self._legs(timed, now)]
        acts = dex.on(ev)
        if not dex.done:
            return acts
        assert dex.end is not None
        outcome, reason, _ = dex.end
        gas = self._gas_quote_spent()
        if outcome is Outcome.EXECUTED and dex.swapped is not None:
            sw = dex.swapped
            quote = sw.amount_out if self.side is OrderSide.BUY else sw.amount_in
            return acts + self._legs(legs.on_dex(True, quote, gas, int(self._now * NS)), self._now)
        result = {Outcome.REVERTED: "reverted", Outcome.NOT_INCLUDED: "not_included"}.get(outcome, "failed")
        return acts + self._legs(legs.on_dex(False, 0, gas, int(self._now * NS), result=result), self._now)

    def _gas_quote_spent(self) -> int:
        dex = self.dex
        if dex is None or not dex.receipt_gas_wei:
            return 0
        cost = to_profit_token(dex.receipt_gas_wei, self.core.gas_token, TokenId(self.sig.economics.profit_token),
                               self.core.state)
        return cost if cost is not None else self.gas_quote

    def _legs(self, actions: list[Any], now: float) -> list[Action]:
        """The leg machine's actions as the shell's."""
        out: list[Action] = []
        c = self.cfg.cex
        assert c is not None and self.legs is not None
        for a in actions:
            if isinstance(a, PlaceCex):
                entry = self.legs.state is State.CEX_SENT
                out.append(PlaceOrder(a.order, c.cex_timeout_s, "entry" if entry else "unwind",
                                      self._entry_meta(a.order) if entry else ""))
            elif isinstance(a, QueryCex):
                out.append(QueryOrder(a.order, a.at_ns / NS, c.cex_timeout_s))
            elif isinstance(a, SendDex):
                out += self._send_dex(a, now)
            elif isinstance(a, Done):
                out += self._done(a.report)
        return out

    def _send_dex(self, a: SendDex, now: float) -> list[Action]:
        dex, p, legs = self.dex, self.priced, self.legs
        assert dex is not None and p is not None and legs is not None and dex.head is not None
        if a.sell_base:
            amount_in, min_out = a.base_units, a.min_out
        else:
            snap = self.core.state.tradable(p.pool)
            amount_in = snap.min_input(not p.base_is_token0, a.base_units) if snap is not None else -1
            min_out = a.base_units
            if amount_in <= 0 or amount_in > a.max_in:
                return self._legs(legs.on_dex(False, 0, 0, int(now * NS), result="not_sent"), now)
        c = self.cfg.cex
        assert c is not None
        deadline = dex.head.timestamp + int(-(-c.dex_deadline_s // 1))
        hop = CallHop(pool=p.hop.pool, factory=p.hop.factory, token_in=p.hop.token_in, token_out=p.hop.token_out,
                      kind=p.hop.kind, fee=p.hop.fee, amount_in=amount_in, amount_out=min_out)
        sent = dex.send(encode_swap(hop, deadline))
        if isinstance(sent, str):
            return [Log("warning", f"executor: signal {self.signal_id}: DEX leg not sent: {sent}"),
                    *self._legs(legs.on_dex(False, 0, 0, int(now * NS), result="not_sent"), now)]
        return sent

    def _quote_for(self, executed: int) -> int | None:
        """The pool's exact quote for ``executed`` size steps now (None: the pool is not tradable)."""
        p = self.priced
        assert p is not None
        snap = self.core.state.tradable(p.pool)
        if snap is None or executed <= 0:
            return None
        m = self.market
        base = Units(base_decimals=m.base_decimals, quote_decimals=m.quote_decimals, price_scale=p.price_scale,
                     size_scale=p.size_scale).base_units(executed)
        if self.side is OrderSide.BUY:
            return snap.amount_out(p.base_is_token0, base)
        q = snap.min_input(not p.base_is_token0, base)
        return None if q <= 0 else q

    def _units(self, steps: int) -> int:
        plan, m = self.legs.plan if self.legs is not None else self.priced, self.market
        assert plan is not None
        return Units(base_decimals=m.base_decimals, quote_decimals=m.quote_decimals, price_scale=plan.price_scale,
                     size_scale=plan.size_scale).base_units(steps)

    def _entry_meta(self, o: OrderRequest) -> str:
        ex, m = self.ex, self.market
        return json.dumps({"chain_id": ex.chain_id, "strategy_id": ex.strategy_id, "profit_token": ex.profit_token,
                           "expected_profit": ex.expected_profit, "mode": int(ex.mode), "venue": m.venue,
                           "symbol": o.symbol, "side": o.side.value, "quantity": o.quantity,
                           "limit_price": o.limit_price, "price_scale": o.price_scale, "size_scale": o.size_scale,
                           "recv_window_ms": o.recv_window_ms})

    @classmethod
    def resumed(cls, core: ExecutorCore, *, signal_id: int, client_order_id: str, meta: dict[str, Any],
                answer: OrderResult | None, published: bool, sent_ago_s: float,
                now: float) -> tuple[CexDexRun, list[Action]]:
        """After a restart: the signal whose entry order ``client_order_id`` was sent ``sent_ago_s`` ago, its
        answer ``answer`` (None: never recorded: queried) and whether its CexFill was ``published``. Ends as
        :meth:`LegMachine.resume` says; raises ``CoreError`` when the configuration no longer has its market."""
        from execution.lifecycle import SignalExecution

        run = cls.__new__(cls)
        run.core, run.cfg, run.sig, run.halted_by = core, core.config, None, None
        run.ex = SignalExecution(signal_id=signal_id, chain_id=meta["chain_id"], strategy_id=meta["strategy_id"],
                                 profit_token=meta["profit_token"], mode=SubmissionMode(meta["mode"]),
                                 expected_profit=meta["expected_profit"])
        run.ex.validated(meta["expected_profit"])
        run.ex.simulated()
        c = run.cfg.cex
        run._market = c.market(meta["venue"], meta["symbol"]) if c is not None else None
        if c is None or run._market is None:
            raise CoreError(f"signal {signal_id}: its CEX order {client_order_id} is for venue {meta['venue']} "
                            f"symbol {meta['symbol']!r}, not in the configuration's [cex] any more")
        run.phase, run.result, run.problem = Phase.LEGS, None, ""
        run.side = OrderSide(meta["side"])
        run.priced, run.dex, run.net, run.gas_quote, run._now = None, None, 0, 0, now
        m = run._market
        order = OrderRequest(symbol=meta["symbol"], side=run.side, quantity=meta["quantity"],
                             limit_price=meta["limit_price"], price_scale=meta["price_scale"],
                             size_scale=meta["size_scale"], client_order_id=client_order_id,
                             recv_window_ms=meta["recv_window_ms"])
        plan = LegPlan(symbol=order.symbol, cex_side=run.side, size=order.quantity, limit_price=order.limit_price,
                       price_scale=order.price_scale, size_scale=order.size_scale, base_decimals=m.base_decimals,
                       quote_decimals=m.quote_decimals, cex_fee_ppm=m.fee_ppm, client_order_id=client_order_id)
        run.legs = LegMachine(plan, run._limits())
        acts: list[Action] = []
        if answer is not None and answer.status in FINAL and not published:  # answered, not on the bus: now
            acts.append(Publish(run._fill(answer, False)))
        legs = run.legs.resume(order, int((now - sent_ago_s) * NS), answer, int(now * NS))
        return run, acts + run._legs(legs, now)

    def _limits(self) -> LegLimits:
        c = self.cfg.cex
        assert c is not None
        return LegLimits(cex_timeout_ns=int(c.cex_timeout_s * NS), max_leg_open_ns=int(c.max_leg_open_s * NS),
                         dex_deadline_ns=int(c.dex_deadline_s * NS), max_unwind_attempts=c.max_unwind_attempts,
                         unwind_slippage_bps=c.unwind_slippage_bps, query_attempts=c.query_attempts,
                         query_interval_ns=int(c.query_interval_s * NS))

    def _fill(self, r: OrderResult, unwind: bool) -> CexFill:
        legs, m = self.legs, self.market
        assert legs is not None
        side = self.side if not unwind else (OrderSide.SELL if self.side is OrderSide.BUY else OrderSide.BUY)
        paid = side is OrderSide.BUY
        with_fee = legs._quote_units(r.quote, r.quote_scale, fee=True, paid=paid) if r.filled_any else 0
        bare = legs._quote_units(r.quote, r.quote_scale, fee=False, paid=paid) if r.filled_any else 0
        return CexFill(signal_id=self.signal_id, venue=m.venue, side=int(Side.BUY if paid else Side.SELL),
                       purpose=int(CexOrderPurpose.UNWIND if unwind else CexOrderPurpose.ENTRY),
                       order_id=r.order_id, base_units=self._units(r.executed), quote_units=with_fee,
                       fee_units=abs(with_fee - bare), base_token=TokenId.of(self.cfg.chain_id, m.base),
                       quote_token=TokenId.of(self.cfg.chain_id, m.quote), symbol=m.symbol, base_asset=m.base_asset,
                       quote_asset=m.quote_asset)

    def _done(self, rep: Any) -> list[Action]:
        outcome = _OUTCOME[rep.outcome]
        dex = self.dex
        kw: dict[str, Any] = {}
        if dex is not None and dex.end is not None:
            kw = {k: v for k, v in dex.end[2].items()}
        gas = rep.gas_cost if rep.dex_sent else 0
        gross = rep.realized_profit + gas
        cex_part = (f"CEX {self.side.value} {self.legs.plan.size if self.legs else 0} steps: filled {rep.cex_filled} "
                    f"for {rep.cex_quote}")
        dex_part = f"DEX {rep.dex_result or 'not sent'}" + (f" ({rep.dex_quote} quote)" if rep.dex_quote else "")
        extra = (f"; unwound {rep.unwound} for {rep.unwind_quote}" if rep.unwound else "") + \
            (f"; LEFT OPEN {rep.left_open}" if rep.left_open else "") + \
            (f"; {rep.queries} status quer{'y' if rep.queries == 1 else 'ies'} after lost answers" if rep.queries else "")
        reason = f"{rep.reason}: {cex_part}; {dex_part}{extra}; net {rep.realized_profit}"
        held = self.core.pools_in_flight
        for p in [p for p, (sid, _) in held.items() if sid == self.signal_id]:
            del held[p]
        self.result = self.ex.finish(outcome, reason, realized_profit=gross, **kw)
        self.phase = Phase.DONE
        m = self.market
        sw = dex.swapped if dex is not None else None
        dex_base = 0 if sw is None else (sw.amount_in if self.side is OrderSide.BUY else sw.amount_out)
        report = LegReport(
            signal_id=self.signal_id, outcome=int(outcome), cex_venue=m.venue,
            cex_side=int(Side.BUY if self.side is OrderSide.BUY else Side.SELL),
            dex_result=int(_DEX_RESULT.get(rep.dex_result, DexLegResult.NOT_SENT)),
            base_token=TokenId.of(self.cfg.chain_id, m.base), quote_token=TokenId.of(self.cfg.chain_id, m.quote),
            cex_requested=self._units(self.legs.plan.size) if self.legs else 0, cex_filled=self._units(rep.cex_filled),
            cex_quote=rep.cex_quote, dex_base=dex_base, dex_quote=rep.dex_quote, gas_cost=gas,
            unwound=self._units(rep.unwound), unwind_quote=rep.unwind_quote, left_open=self._units(rep.left_open),
            realized_profit=rep.realized_profit, symbol=m.symbol)
        return [Publish(self.result, extra=(report,))]


__all__ = ["CexAnswered", "CexDexRun", "CexQueried", "DexLeg", "Phase", "PlaceOrder", "Priced", "QueryOrder",
           "reprice"]

