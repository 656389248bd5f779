"""The dashboard's state: everything the panels show, fed one bus message at a time.

Theory of operation
-------------------
``DashboardModel`` is a plain object (no textual, no trio, no clock): the relay worker hands
it ``on_message(domain, msg, now_ns)`` for every delivered message and
``on_relay_status(domain, ...)`` for connection and stats reports; the app reads it when it
repaints. Invariants that let it keep up with a 10k msgs/s bus on one core:

* **O(1) per message.** One dict lookup on the first record's type picks a handler; handlers
  mutate a small slotted record in place (a pool's latest state, a signal's trace) and add a
  section name to ``changed``. Nothing is sorted, scanned or formatted here -- that happens at
  repaint time, at most ~10 times a second, over bounded collections.
* **Bounded memory.** Pools and signals live in ``OrderedDict`` LRUs capped by ``max_pools`` /
  ``max_signals`` (the least recently touched falls out); swaps and risk events are fixed-length
  rings.
* **Bursts collapse to the latest.** A pool updated a thousand times between two repaints is
  one row showing its last state; ``changed`` is a set, so the app repaints each panel at most
  once per tick (``take_changes``) however many messages touched it.

Execution messages and the signal they answer travel on different relays and may arrive in
either order, so a signal's record is created by whichever message names it first.

Cross-chain (issue 14): a cross-chain signal's two ``ChainLegReport`` records stay on its record
(``chain_legs``, by leg), and what they and the rebalancer's ``BridgeTransfer`` records moved is kept per
chain: ``chain_moved`` ((chain, token) -> base units our legs, unwinds and bridge transfers moved),
``chain_gas`` (chain -> wei those transactions cost), ``transfers`` (the latest state of each transfer,
``max_transfers`` of them) and ``bridge_fees`` (destination token -> fees paid). A report is counted once:
legs by (signal, leg), transfers by ``specs/rebalance.md``'s dedupe key, so a republished one changes nothing.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from itertools import islice
from typing import Any, NamedTuple

from protocol.execution import (
    NO_NONCE,
    BridgeTransfer,
    BridgeTransferState,
    CexFill,
    CexOrderPurpose,
    ChainLegReport,
    DexLegResult,
    ExecutionResult,
    ExecutionStarted,
    LegReport,
    Outcome,
)
from protocol.header import Domain
from protocol.ids import PoolId, cex_symbol, code_name
from protocol.market import (
    BlockHeader,
    InvalidationReason,
    LiquidityChange,
    PoolSnapshot,
    Quote,
    Side,
    StateInvalidation,
    Trade,
    V2Reserves,
    V2Swap,
    V3Initialize,
    V3Swap,
)
from protocol.message import Message
from protocol.signals import ArbitragePath, CrossChainArbitrage, Economics, SignalIdentity
from protocol.system import EmergencyStop, Resume, StopScope, TraceContext
from protocol.tlv import TLV

__all__ = [
    "DashboardModel",
    "PoolState",
    "QuoteState",
    "RelayHealth",
    "RiskEvent",
    "SignalRecord",
    "SwapEvent",
    "TraceStep",
    "SECTIONS",
]

SECTIONS = ("market", "signals", "execution", "pnl", "risk", "health")
_NS = 1_000_000_000


class PoolState:
    """Latest known state of one AMM pool (mutated in place; it is the view, not a message)."""

    __slots__ = ("pool", "block", "reserve0", "reserve1", "sqrt_price_x96", "tick", "liquidity",
                 "fee_ppm", "updates", "updated_ns", "stale", "source")

    # None until a record carries them (a V2 pool never gets the V3 fields)
    reserve0: int | None
    reserve1: int | None
    sqrt_price_x96: int | None
    tick: int | None
    liquidity: int | None
    fee_ppm: int | None

    def __init__(self, pool: int) -> None:
        self.pool = pool
        self.block = 0
        self.reserve0 = self.reserve1 = self.sqrt_price_x96 = self.tick = self.liquidity = self.fee_ppm = None
        self.updates = 0
        self.updated_ns = 0
        self.stale = ""  # non-empty: why the producer said this state is not trustworthy
        self.source = ""  # the record type that last changed it


class QuoteState:
    """Latest top of book (or last trade) of one order-book symbol; ``stale`` says why the book is not
    trustworthy (its collector's ``StateInvalidation``) until the next ``Quote`` makes it whole again."""

    __slots__ = ("venue", "symbol", "price_scale", "size_scale", "bid", "bid_size", "ask", "ask_size",
                 "last", "updates", "updated_ns", "stale", "invalidations")

    def __init__(self, venue: int, symbol: str) -> None:
        self.venue, self.symbol = venue, symbol
        self.price_scale = self.size_scale = 0
        self.bid = self.bid_size = self.ask = self.ask_size = 0
        self.last: int | None = None
        self.updates = 0
        self.updated_ns = 0
        self.stale = ""
        self.invalidations = 0


class SwapEvent(NamedTuple):
    """One swap in the ring: the record as received (V2Swap or V3Swap), when, at which sequence.

    Kept as the received record (no copy) because most swaps fall out of the ring unseen.
    """

    swap: V2Swap | V3Swap
    at_ns: int
    seq: int

    @property
    def amounts(self) -> tuple[int, int]:
        """Signed from the pool's side, as V3 reports them (positive: into the pool)."""
        s = self.swap
        if isinstance(s, V3Swap):
            return s.amount0, s.amount1
        return s.amount0_in - s.amount0_out, s.amount1_in - s.amount1_out


STAGE_ORDER = {"detected": 0, "started": 1, "result": 2}


class TraceStep:
    """One step of a signal's life: what, when (ns), on which relay at which sequence."""

    __slots__ = ("step", "at_ns", "domain", "seq", "detail")

    def __init__(self, step: str, at_ns: int, domain: int, seq: int, detail: str = "") -> None:
        self.step, self.at_ns, self.domain, self.seq, self.detail = step, at_ns, domain, seq, detail

    @property
    def order(self) -> tuple[int, int]:
        """Time first, then the stage (a detection and its execution can share a timestamp)."""
        return self.at_ns, STAGE_ORDER.get(self.step, len(STAGE_ORDER))


class SignalRecord:
    """A signal and everything execution said about it; ``steps`` in time order.

    The signal and execution relays are read by separate consumers, so the execution relay's
    report can arrive before the signal it is about: steps are kept sorted by their own time
    (then stage), never by arrival."""

    __slots__ = ("signal_id", "identity", "economics", "path", "cross_chain", "trace_context",
                 "started", "result", "legs", "cex_fills", "chain_legs", "steps", "first_ns", "updated_ns")

    MAX_STEPS = 32
    MAX_FILLS = 8

    def __init__(self, signal_id: int, now_ns: int) -> None:
        self.signal_id = signal_id
        self.identity: SignalIdentity | None = None
        self.economics: Economics | None = None
        self.path: ArbitragePath | None = None
        self.cross_chain: CrossChainArbitrage | None = None
        self.trace_context: TraceContext | None = None
        self.started: ExecutionStarted | None = None
        self.result: ExecutionResult | None = None
        self.legs: LegReport | None = None  # a CEX-DEX signal: what each leg did (with its result)
        self.cex_fills: list[CexFill] = []  # its exchange orders as answered (entry, unwinds)
        self.chain_legs: dict[int, ChainLegReport] = {}  # a cross-chain signal: ChainLeg -> what that leg did
        self.steps: list[TraceStep] = []
        self.first_ns = now_ns
        self.updated_ns = now_ns

    def add_step(self, step: TraceStep) -> None:
        if len(self.steps) < self.MAX_STEPS:
            self.steps.append(step)
            self.steps.sort(key=lambda s: s.order)  # stable: equal keys keep arrival order

    def update_step(self, step: TraceStep, at_ns: int, seq: int, detail: str) -> None:
        step.at_ns, step.seq, step.detail = at_ns, seq, detail
        self.steps.sort(key=lambda s: s.order)

    @property
    def status(self) -> str:
        if self.result is not None:
            return outcome_name(self.result.outcome)
        if self.started is not None:
            return "SUBMITTED"
        return "OPEN"

    @property
    def is_open(self) -> bool:
        return self.result is None

    def step_at(self, name: str) -> TraceStep | None:
        for s in self.steps:
            if s.step == name:
                return s
        return None


class RiskEvent:
    __slots__ = ("kind", "scope", "scope_value", "stop_id", "reason", "sender", "at_ns", "seq")

    def __init__(self, kind: str, tlv: EmergencyStop | Resume, at_ns: int, seq: int) -> None:
        self.kind = kind
        self.scope, self.scope_value, self.stop_id = tlv.scope, tlv.scope_value, tlv.stop_id
        self.reason, self.sender = tlv.reason, tlv.sender
        self.at_ns, self.seq = at_ns, seq

    @property
    def scope_text(self) -> str:
        try:
            name = StopScope(self.scope).name.lower()
        except ValueError:
            name = f"scope{self.scope}"
        return name if self.scope == StopScope.ALL else f"{name}={self.scope_value}"


class RelayHealth:
    """One relay as the dashboard sees it: its own stream plus what the relay and client report."""

    __slots__ = ("domain", "connected", "error", "head_seq", "last_seq", "messages", "rate",
                 "relay_rate", "lag", "gaps", "resyncs", "lost", "reconnects", "seq_jumps", "epoch",
                 "consumers", "producers", "worst_lag", "worst_consumer", "last_msg_ns", "status_ns", "dropped",
                 "_window_start", "_window_count", "_seen")

    @property
    def head(self) -> int:
        """The relay's head as far as we know: its last reported head or our newest message."""
        return max(self.head_seq, self.last_seq)

    def __init__(self, domain: int) -> None:
        self.domain = domain
        self.connected: bool | None = None  # None: not heard of yet
        self.error = ""
        self.head_seq = 0  # from the relay's stats
        self.last_seq = 0  # the last domain_seq this dashboard received
        self.messages = 0
        self.rate = 0.0  # msgs/s this dashboard received over the last closed window (on_tick)
        self.relay_rate: float | None = None  # what the relay reports (all producers)
        self.lag: int | None = None
        self.gaps = self.resyncs = self.lost = self.reconnects = 0
        self.seq_jumps = 0  # domain_seq steps != 1 seen by the model (resyncs, restarts)
        self.epoch = 0
        self.consumers: int | None = None
        self.worst_lag: int | None = None  # the relay's slowest consumer (any process)
        self.worst_consumer = ""
        self.producers: int | None = None
        self.last_msg_ns = 0
        self.status_ns = 0
        self.dropped = 0  # dropped by the dashboard itself (inbox overflow)
        self._window_start = 0
        self._window_count = 0  # ``messages`` when the window opened
        self._seen = 0  # ``messages`` at the last on_tick


class DashboardModel:
    """See the module docstring. ``now_ns`` is always passed in; the model never reads a clock."""

    def __init__(self, *, max_pools: int = 5000, max_signals: int = 2000, max_swaps: int = 200,
                 max_risk_events: int = 100, max_quotes: int = 500, max_transfers: int = 500) -> None:
        self.max_pools = max_pools
        self.max_signals = max_signals
        self.max_quotes = max_quotes
        self.pools: OrderedDict[int, PoolState] = OrderedDict()  # least recently updated first
        self.quotes: OrderedDict[tuple[int, str], QuoteState] = OrderedDict()
        self.swaps: deque[SwapEvent] = deque(maxlen=max_swaps)
        self.blocks: dict[int, BlockHeader] = {}  # chain id -> latest head
        self.chain_invalid: dict[int, str] = {}  # chain id -> reason (a chain-wide invalidation)
        self.signals: OrderedDict[int, SignalRecord] = OrderedDict()  # least recently created first
        self.signals_seen = 0
        self.open_signals = 0
        self.outcomes: dict[int, int] = {}
        self.realized: dict[int, int] = {}  # profit token -> sum of realized profit (EXECUTED)
        self.realized_net: dict[int, int] = {}  # profit token -> sum of realized_net() over results
        self.pnl_points: dict[int, deque[int]] = {}  # profit token -> realized net after each result
        self.simulated: dict[int, int] = {}  # profit token -> sum of shadow-mode profit (SIMULATED)
        self.expected: dict[int, int] = {}  # profit token -> sum of expected profit of executed
        self.gas_spent: dict[int, int] = {}  # chain id -> wei
        self.gas_used_total = 0
        # exchange balances as our CexFills moved them: (venue, the venue's asset name) -> (chain token the
        # asset trades as, units of that token)
        self.cex_moved: dict[tuple[int, str], tuple[int, int]] = {}
        # cross-chain: see the module docstring
        self.max_transfers = max_transfers
        self.chain_moved: dict[tuple[int, int], int] = {}
        self.chain_gas: dict[int, int] = {}
        self.transfers: OrderedDict[tuple[int, int], BridgeTransfer] = OrderedDict()  # (src chain, transfer id)
        self.transfer_counts: dict[int, int] = {}  # BridgeTransferState -> transfers that reached it
        self.bridge_fees: dict[int, int] = {}
        self.cross_chain_signals = 0
        self._legs_seen: set[tuple[int, int]] = set()
        self._transfers_seen: set[tuple[int, int, int, int]] = set()
        self.active_stops: dict[int, RiskEvent] = {}
        self.risk_events: deque[RiskEvent] = deque(maxlen=max_risk_events)
        self.health: dict[int, RelayHealth] = {
            int(d): RelayHealth(int(d)) for d in (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION)
        }
        self.notices: deque[tuple[int, str]] = deque(maxlen=20)
        self.messages = 0
        self.unknown = 0
        self.changed: set[str] = set()
        self._handlers: dict[type, Callable[[Any, Message, int, int], None]] = {
            V2Reserves: self._v2_reserves,
            V3Swap: self._v3_swap,
            V2Swap: self._v2_swap,
            PoolSnapshot: self._snapshot,
            V3Initialize: self._v3_init,
            LiquidityChange: self._liquidity,
            BlockHeader: self._block,
            StateInvalidation: self._invalidation,
            Quote: self._quote,
            Trade: self._trade,
            SignalIdentity: self._signal,
            ExecutionStarted: self._exec_started,
            ExecutionResult: self._exec_result,
            CexFill: self._cex_fill,
            LegReport: self._leg_report,
            ChainLegReport: self._chain_leg,
            BridgeTransfer: self._bridge_transfer,
            EmergencyStop: self._stop,
            Resume: self._resume,
            TraceContext: _ignore,
            Economics: _ignore,  # handled with the SignalIdentity of the same message
            ArbitragePath: _ignore,
            CrossChainArbitrage: _ignore,
        }

    # ------------------------------------------------------------------ input

    @property
    def dirty(self) -> bool:
        return bool(self.changed)

    def take_changes(self) -> set[str]:
        """The sections changed since the last call (and forget them): what to repaint."""
        changed, self.changed = self.changed, set()
        return changed

    def on_message(self, domain: int, msg: Message, now_ns: int) -> None:
        """Apply one delivered message. ``domain`` is the relay it came from."""
        self.messages += 1
        h = self.health.get(domain)
        seq = msg[4]  # domain_seq (Message is a named tuple; indexing skips the property)
        if h is not None:
            h.messages += 1
            if seq:
                last = h.last_seq
                if last and seq != last + 1:
                    h.seq_jumps += 1
                h.last_seq = seq
            h.last_msg_ns = now_ns
        handlers = self._handlers
        tlvs = msg[1]
        if len(tlvs) == 1:
            fn = handlers.get(type(tlvs[0]))
            if fn is None:
                self.unknown += 1
            else:
                fn(tlvs[0], msg, seq, now_ns)
            return
        for t in tlvs:
            fn = handlers.get(type(t))
            if fn is None:
                self.unknown += 1
            else:
                fn(t, msg, seq, now_ns)

    def on_messages(self, domain: int, msgs: list[Message], now_ns: int) -> None:
        for m in msgs:
            self.on_message(domain, m, now_ns)

    def on_tick(self, now_ns: int, window_ns: int = _NS) -> None:
        """Called by the app's refresh timer: close each relay's rate window once per ``window_ns``.

        Rates are computed here rather than per message, so a message costs two increments.
        """
        for h in self.health.values():
            if h.messages != h._seen:  # sequences and counts moved: one health repaint per tick
                h._seen = h.messages
                self.changed.add("health")
            elapsed = now_ns - h._window_start
            if elapsed < window_ns:
                continue
            if h._window_start:
                rate = (h.messages - h._window_count) * _NS / elapsed
                if rate != h.rate:
                    h.rate = rate
                    self.changed.add("health")
            h._window_start = now_ns
            h._window_count = h.messages

    def on_relay_status(self, domain: int, *, connected: bool, now_ns: int, error: str = "",
                        stats: dict[str, Any] | None = None, counters: dict[str, int] | None = None,
                        dropped: int | None = None) -> None:
        """A report from the relay worker: connection state, the relay's Stats, the client counters."""
        h = self.health.get(domain)
        if h is None:
            h = self.health[domain] = RelayHealth(domain)
        h.connected = connected
        h.error = "" if connected else (error or "relay down")
        h.status_ns = now_ns
        if stats:
            head = int(stats.get("head_seq", 0))
            h.head_seq = head
            h.epoch = int(stats.get("epoch", h.epoch))
            rate = stats.get("rate_msgs_per_s")
            h.relay_rate = float(rate) if rate is not None else None
            consumers = stats.get("consumers") or ()
            h.consumers = len(consumers)
            if consumers:
                worst = max(consumers, key=lambda c: int(c.get("lag", 0)))
                h.worst_lag, h.worst_consumer = int(worst.get("lag", 0)), str(worst.get("name", ""))
            else:
                h.worst_lag, h.worst_consumer = None, ""
            h.producers = len(stats.get("producers", ()))
            if h.last_seq:
                h.lag = max(0, head - h.last_seq)
        if counters:
            h.gaps = counters.get("gaps", h.gaps)
            h.resyncs = counters.get("resyncs", h.resyncs)
            h.lost = counters.get("lost", h.lost)
            h.reconnects = counters.get("reconnects", h.reconnects)
            if not stats and "lag" in counters:
                h.lag = counters["lag"]
        if dropped is not None:
            h.dropped = dropped
        self.changed.add("health")

    def notice(self, text: str, now_ns: int) -> None:
        """An operator-facing line (publish results, worker errors)."""
        self.notices.append((now_ns, text))
        self.changed.add("risk")

    # ------------------------------------------------------------------ market

    def _pool(self, pool: int, now_ns: int, source: str, block: int = 0) -> PoolState:
        """The pool's state, most recently updated now by a ``source`` message of ``block``."""
        pools = self.pools
        p = pools.get(pool)
        if p is None:
            p = pools[pool] = PoolState(pool)
            if len(pools) > self.max_pools:
                pools.popitem(last=False)
        else:
            pools.move_to_end(pool)
        p.updates += 1
        p.updated_ns = now_ns
        p.stale = ""
        p.source = source
        if block > p.block:
            p.block = block
        self.changed.add("market")
        return p

    def _v2_reserves(self, t: V2Reserves, msg: Message, seq: int, now_ns: int) -> None:
        p = self._pool(t.pool, now_ns, "V2Reserves", t.block_number)
        p.reserve0, p.reserve1 = t.reserve0, t.reserve1

    def _v3_swap(self, t: V3Swap, msg: Message, seq: int, now_ns: int) -> None:
        p = self._pool(t.pool, now_ns, "V3Swap", t.block_number)
        p.sqrt_price_x96, p.liquidity, p.tick = t.sqrt_price_x96, t.liquidity, t.tick
        self.swaps.append(SwapEvent(t, msg[5] or now_ns, seq))

    def _v2_swap(self, t: V2Swap, msg: Message, seq: int, now_ns: int) -> None:
        # reserves come with the Sync (V2Reserves) of the same transaction; here only the ring
        self.swaps.append(SwapEvent(t, msg[5] or now_ns, seq))
        self.changed.add("market")

    def _snapshot(self, t: PoolSnapshot, msg: Message, seq: int, now_ns: int) -> None:
        p = self._pool(t.pool, now_ns, "PoolSnapshot")
        p.block, p.fee_ppm, p.reserve0, p.reserve1 = t.block_number, t.fee_ppm, t.reserve0, t.reserve1
        if t.sqrt_price_x96:
            p.sqrt_price_x96, p.tick, p.liquidity = t.sqrt_price_x96, t.tick, t.liquidity

    def _v3_init(self, t: V3Initialize, msg: Message, seq: int, now_ns: int) -> None:
        p = self._pool(t.pool, now_ns, "V3Initialize", t.block_number)
        p.sqrt_price_x96, p.tick = t.sqrt_price_x96, t.tick

    def _liquidity(self, t: LiquidityChange, msg: Message, seq: int, now_ns: int) -> None:
        self._pool(t.pool, now_ns, "LiquidityChange", t.block_number)

    def _block(self, t: BlockHeader, msg: Message, seq: int, now_ns: int) -> None:
        cur = self.blocks.get(t.chain_id)
        if cur is None or t.number >= cur.number:
            self.blocks[t.chain_id] = t
            self.chain_invalid.pop(t.chain_id, None)
            self.changed.add("market")

    def _invalidation(self, t: StateInvalidation, msg: Message, seq: int, now_ns: int) -> None:
        try:
            why = InvalidationReason(t.reason).name.lower()
        except ValueError:
            why = f"reason {t.reason}"
        text = f"{why} from block {t.from_block}" + (f": {t.detail}" if t.detail else "")
        symbol = cex_symbol(t.pool) if t.pool and not t.chain_id else ""
        if symbol:  # an order book (cex_book_id): untrusted until its next Quote
            q = self._quote_state(PoolId(t.pool).venue, symbol, now_ns)
            q.stale = f"{why} at update {t.from_block}" + (f": {t.detail}" if t.detail else "")
            q.invalidations += 1
            q.bid = q.bid_size = q.ask = q.ask_size = 0
            return
        if t.pool:
            p = self.pools.get(t.pool)
            if p is not None:
                p.stale = text
        else:
            self.chain_invalid[t.chain_id] = text
        self.changed.add("market")

    def _quote_state(self, venue: int, symbol: str, now_ns: int) -> QuoteState:
        key = (venue, symbol)
        q = self.quotes.get(key)
        if q is None:
            q = self.quotes[key] = QuoteState(venue, symbol)
            if len(self.quotes) > self.max_quotes:
                self.quotes.popitem(last=False)
        else:
            self.quotes.move_to_end(key)
        q.updates += 1
        q.updated_ns = now_ns
        self.changed.add("market")
        return q

    def _quote(self, t: Quote, msg: Message, seq: int, now_ns: int) -> None:
        q = self._quote_state(t.venue, t.symbol, now_ns)
        q.price_scale, q.size_scale = t.price_scale, t.size_scale
        q.bid, q.bid_size, q.ask, q.ask_size = t.bid_price, t.bid_size, t.ask_price, t.ask_size
        q.stale = ""

    def _trade(self, t: Trade, msg: Message, seq: int, now_ns: int) -> None:
        q = self._quote_state(t.venue, t.symbol, now_ns)
        q.price_scale, q.size_scale, q.last = t.price_scale, t.size_scale, t.price

    # ------------------------------------------------------------------ signals / execution

    def _record(self, signal_id: int, now_ns: int) -> SignalRecord:
        sigs = self.signals
        r = sigs.get(signal_id)
        if r is None:
            r = sigs[signal_id] = SignalRecord(signal_id, now_ns)
            self.open_signals += 1
            if len(sigs) > self.max_signals:
                _, old = sigs.popitem(last=False)
                if old.is_open:
                    self.open_signals -= 1
        r.updated_ns = now_ns
        return r

    def _trace(self, signal_id: int, step: str, msg: Message, seq: int, now_ns: int, detail: str,
               panels: tuple[str, ...] = ("signals", "execution")) -> SignalRecord:
        """The signal's record with one more step of its trace (at the message's event time); marks
        ``panels`` changed."""
        r = self._record(signal_id, now_ns)
        r.add_step(TraceStep(step, msg.event_time_ns or now_ns, msg.domain, seq, detail))
        self.changed.update(panels)
        return r

    def _signal(self, t: SignalIdentity, msg: Message, seq: int, now_ns: int) -> None:
        r = self._trace(t.signal_id, "detected", msg, seq, now_ns,
                        f"block {t.block_number}, {t.strategy or 'strategy ' + str(t.strategy_id)}", ("signals",))
        r.identity = t
        self.signals_seen += 1
        for x in msg.tlvs:
            if isinstance(x, Economics):
                r.economics = x
            elif isinstance(x, ArbitragePath):
                r.path = x
            elif isinstance(x, CrossChainArbitrage):
                r.cross_chain = x
                self.cross_chain_signals += 1
            elif isinstance(x, TraceContext):
                r.trace_context = x

    def _exec_started(self, t: ExecutionStarted, msg: Message, seq: int, now_ns: int) -> None:
        self._trace(t.signal_id, "started", msg, seq, now_ns,
                    f"tx 0x{t.tx_hash.hex()[:16]}… nonce {t.nonce}").started = t

    def _exec_result(self, t: ExecutionResult, msg: Message, seq: int, now_ns: int) -> None:
        r = self._record(t.signal_id, now_ns)
        tok = t.profit_token
        if r.result is None:
            self.open_signals -= 1
        else:  # a repeated result replaces the old one in the totals
            self._account(r.result, -1)
            old = realized_net(r)
            if old:
                self.realized_net[tok] = self.realized_net.get(tok, 0) - old
        r.result = t
        self._account(t, 1)
        net = realized_net(r)
        if net is not None and (net or t.outcome == Outcome.EXECUTED):
            self.realized_net[tok] = self.realized_net.get(tok, 0) + net
            self.pnl_points.setdefault(tok, deque(maxlen=200)).append(self.realized_net[tok])
        step = r.step_at("result")
        detail = f"{outcome_name(t.outcome)}" + (f": {t.reason}" if t.reason else "")
        if step is None:
            r.add_step(TraceStep("result", msg.event_time_ns or now_ns, msg.domain, seq, detail))
        else:
            r.update_step(step, msg.event_time_ns or now_ns, seq, detail)
        self.changed.update(("signals", "execution", "pnl"))

    def _cex_fill(self, t: CexFill, msg: Message, seq: int, now_ns: int) -> None:
        buy = t.side == Side.BUY
        what = f"{code_name(CexOrderPurpose, t.purpose).lower()} {'BUY' if buy else 'SELL'} {t.symbol}"
        detail = f"CEX {what} order {t.order_id}: " + ("filled" if t.base_units else "nothing filled")
        r = self._trace(t.signal_id, "cex order", msg, seq, now_ns, detail, ("execution", "pnl"))
        if len(r.cex_fills) < r.MAX_FILLS:
            r.cex_fills.append(t)
        for asset, token, delta in ((t.base_asset, t.base_token, t.base_units if buy else -t.base_units),
                                    (t.quote_asset, t.quote_token, -t.quote_units if buy else t.quote_units)):
            _, held = self.cex_moved.get((t.venue, asset), (token, 0))
            self.cex_moved[(t.venue, asset)] = (token, held + delta)

    def _leg_report(self, t: LegReport, msg: Message, seq: int, now_ns: int) -> None:
        """The legs of a CEX-DEX result (same message, after its ExecutionResult): the report's realized
        profit -- net of the taker fee and the DEX gas -- replaces the one the result alone gave."""
        r = self._record(t.signal_id, now_ns)
        res = r.result
        before = realized_net(r) if res is not None else None
        # what the result (the record just before this one, in the same message) added to the totals
        counted = before is not None and res is not None and bool(before or res.outcome == Outcome.EXECUTED)
        r.legs = t
        after = t.realized_profit
        tok = res.profit_token if res is not None else t.quote_token
        points = self.pnl_points.setdefault(tok, deque(maxlen=200))
        if counted:
            self.realized_net[tok] = self.realized_net.get(tok, 0) - (before or 0) + after
            points[-1] = self.realized_net[tok]
        elif after:
            self.realized_net[tok] = self.realized_net.get(tok, 0) + after
            points.append(self.realized_net[tok])
        self.changed.update(("signals", "execution", "pnl"))

    def _move(self, chain_id: int, token: int, amount: int) -> None:
        key = (chain_id, token)
        self.chain_moved[key] = self.chain_moved.get(key, 0) + amount

    def _chain_leg(self, t: ChainLegReport, msg: Message, seq: int, now_ns: int) -> None:
        """One leg of a cross-chain result: kept on the signal's record; what it (and its unwind) moved and
        cost counted on its chain, once per (signal, leg)."""
        r = self._record(t.signal_id, now_ns)
        r.chain_legs[t.leg] = t
        self.changed.update(("signals", "execution", "pnl"))
        if (t.signal_id, t.leg) in self._legs_seen:
            return
        self._legs_seen.add((t.signal_id, t.leg))
        if t.result == DexLegResult.EXECUTED:
            self._move(t.chain_id, t.token_in, -t.amount_in)
            self._move(t.chain_id, t.token_out, t.amount_out)
        if t.unwind_result == DexLegResult.EXECUTED:
            self._move(t.chain_id, t.token_out, -t.unwind_amount_in)
            self._move(t.chain_id, t.token_in, t.unwind_amount_out)
        gas = t.gas_used * t.effective_gas_price + t.unwind_gas_cost
        if gas:
            self.chain_gas[t.chain_id] = self.chain_gas.get(t.chain_id, 0) + gas

    def _bridge_transfer(self, t: BridgeTransfer, msg: Message, seq: int, now_ns: int) -> None:
        """A rebalancer transfer's new state; counted once per ``specs/rebalance.md`` dedupe key (a
        rebalancer republishes after a restart)."""
        numbered = t.state in (BridgeTransferState.SENT, BridgeTransferState.COMPLETED) and t.nonce != NO_NONCE
        key = (t.src_chain, int(numbered), t.nonce if numbered else t.transfer_id, t.state)
        self.changed.add("pnl")
        if key in self._transfers_seen:
            return
        self._transfers_seen.add(key)
        table = self.transfers
        old = table.pop((t.src_chain, t.transfer_id), None)
        # a late SENT (after its COMPLETED) does not move the state back
        table[(t.src_chain, t.transfer_id)] = old if (old is not None and old.state == BridgeTransferState.COMPLETED
                                                      and t.state == BridgeTransferState.SENT) else t
        if len(table) > self.max_transfers:
            table.popitem(last=False)
        self.transfer_counts[t.state] = self.transfer_counts.get(t.state, 0) + 1
        if t.state != BridgeTransferState.COMPLETED and t.src_gas_cost:  # the rebalancer's own transactions
            self.chain_gas[t.src_chain] = self.chain_gas.get(t.src_chain, 0) + t.src_gas_cost
        if t.state == BridgeTransferState.SENT:
            self._move(t.src_chain, t.src_token, -t.amount)
        elif t.state == BridgeTransferState.COMPLETED:
            self._move(t.dst_chain, t.dst_token, t.received)
            self.bridge_fees[t.dst_token] = self.bridge_fees.get(t.dst_token, 0) + t.fee

    @property
    def transfers_in_flight(self) -> int:
        """Transfers sent whose completion has not been seen."""
        return sum(1 for t in self.transfers.values() if t.state == BridgeTransferState.SENT)

    def _account(self, t: ExecutionResult, sign: int) -> None:
        self.outcomes[t.outcome] = self.outcomes.get(t.outcome, 0) + sign
        tok = t.profit_token
        if t.outcome == Outcome.EXECUTED:
            self.realized[tok] = self.realized.get(tok, 0) + sign * t.realized_profit
            self.expected[tok] = self.expected.get(tok, 0) + sign * t.expected_profit
        elif t.outcome == Outcome.SIMULATED:
            self.simulated[tok] = self.simulated.get(tok, 0) + sign * t.realized_profit
        if t.gas_used:
            self.gas_spent[t.chain_id] = self.gas_spent.get(t.chain_id, 0) + sign * t.gas_used * t.effective_gas_price
            self.gas_used_total += sign * t.gas_used

    # ------------------------------------------------------------------ risk

    def _stop(self, t: EmergencyStop, msg: Message, seq: int, now_ns: int) -> None:
        ev = RiskEvent("stop", t, msg.event_time_ns or now_ns, seq)
        self.active_stops[t.stop_id] = ev
        self.risk_events.append(ev)
        self.changed.add("risk")

    def _resume(self, t: Resume, msg: Message, seq: int, now_ns: int) -> None:
        ev = RiskEvent("resume", t, msg.event_time_ns or now_ns, seq)
        self.risk_events.append(ev)
        stops = self.active_stops
        if t.stop_id:
            stops.pop(t.stop_id, None)
        elif t.scope == StopScope.ALL:
            stops.clear()
        else:  # stop id 0: every stop in this scope (a handful at most)
            for sid in [s for s, e in stops.items() if e.scope == t.scope and e.scope_value == t.scope_value]:
                del stops[sid]
        self.changed.add("risk")

    @property
    def halted(self) -> bool:
        return bool(self.active_stops)

    # ------------------------------------------------------------------ views

    def recent_signals(self, limit: int) -> list[SignalRecord]:
        """Newest first, at most ``limit`` (O(limit))."""
        return list(islice(reversed(self.signals.values()), limit))

    def recent_pools(self, limit: int) -> list[PoolState]:
        """Most recently updated first."""
        return list(islice(reversed(self.pools.values()), limit))


def _ignore(t: TLV, msg: Message, seq: int, now_ns: int) -> None:
    pass


_OUTCOME_NAMES = {int(o): o.name for o in Outcome}


def realized_net(r: SignalRecord) -> int | None:
    """Realized gross minus the gas paid, in the profit token (the gas converted at the rate the
    signal's own economics used: ``gas_cost / (gas_units * gas_price_wei)``); None before a result or
    when gas was paid and the signal's rate is unknown. A CEX-DEX signal's is its ``LegReport``'s (net of
    the taker fee and of the DEX gas, in the quote token), whatever its outcome."""
    if r.legs is not None:
        return r.legs.realized_profit
    res = r.result
    if res is None:
        return None
    gross = res.realized_profit if res.outcome == Outcome.EXECUTED else 0
    gas_wei = res.gas_used * res.effective_gas_price
    if not gas_wei:
        return gross
    eco = r.economics
    if eco is None or not eco.gas_units or not eco.gas_price_wei:
        return None
    den = eco.gas_units * eco.gas_price_wei
    return gross - (gas_wei * eco.gas_cost + den - 1) // den  # a cost: rounded up


def outcome_name(code: int) -> str:
    """An ``ExecutionResult.outcome`` code's name (``OUTCOME_<code>`` for one this build does not know)."""
    return _OUTCOME_NAMES.get(code) or f"OUTCOME_{code}"
