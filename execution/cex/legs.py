"""The two legs of a CEX-DEX arbitrage, sans-IO: which goes first, what a failure or partial fill does,
how an open leg is closed, how long it may stay open. The policy is ``specs/cex-legs.md``; this is it as code.

Theory of operation
-------------------
::

    START --place CEX IOC--> CEX_SENT --filled q > 0, DEX pays--> DEX_SENT --executed--> DONE(BOTH_FILLED)
                               |   |                                 |
                               |   +--filled q > 0, DEX no longer pays after the fill--+
                               |                                     |                 |
                               |                       reverted / not included / leg   v
                               |                       open past max_leg_open -----> UNWINDING --closed--> DONE(UNWOUND)
                               |                                                       |   (retry the rest up to
                               +--rejected / expired with 0 / error--> DONE(CEX_NOT_FILLED)   max_unwind_attempts)
                               |                                                       +--still open--> DONE(LEG_OPEN)
                               +--no answer within cex_timeout, or the answer lost--> QUERYING
                                    (the entry or an unwind)     GET the order by its client order id, bounded:
                                                                 its real fill -> back to the answer's branch;
                                                                 not found once its recvWindow passed -> nothing filled;
                                                                 still unknown after query_attempts -> DONE(LEG_OPEN)

* **The CEX leg goes first**, as a LIMIT IOC order at the worst price the signal priced: it is matched or
  expires at once, costs no gas, and its result is known within one round trip. A DEX leg sent first
  would be final once mined while the CEX price can move away before our order lands.
* **The DEX leg is sized to what the CEX filled** (a partial fill resizes it) and is sent only if, at
  that size, the pool's exact output still covers what the CEX leg cost plus gas: its ``min_out`` is
  that break-even, so the chain reverts it rather than lose.
* **Unwinding**: an open CEX position (the DEX leg reverted, was not included, no longer paid, or did
  not finish within ``max_leg_open_ns`` of the CEX fill) is closed by the opposite IOC order at
  ``unwind_slippage_bps`` past the original price, retried for what is left up to
  ``max_unwind_attempts``. The DEX leg's deadline must fall before ``max_leg_open_ns`` (checked at
  construction), so a DEX leg can never land after its position was unwound.
* **An order whose answer never came is asked about, not guessed**: every order carries a client order id
  made from the signal id and its purpose (``ap<signal>`` for the entry, ``-u<n>`` for the n-th unwind), so
  ``GET /api/v3/order?origClientOrderId=`` finds it. Its fill then goes down the branch its answer would have
  taken. "Not found" is final only once the order's ``recvWindow`` (plus a second of clock skew) has passed
  since it was sent: after that the exchange refuses the request, so it can never execute.
* **Every signal ends with exactly one outcome** naming what each leg did (:class:`LegReport`); an
  impossible input for the current state raises :class:`LegError` (a bug, never a second outcome).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .gateway import FINAL, OrderRequest, OrderResult, OrderSide, OrderStatus


class LegError(RuntimeError):
    """An input the current state cannot take: a bug in the caller."""


class State(enum.Enum):
    START = "start"
    CEX_SENT = "cex_sent"
    DEX_SENT = "dex_sent"
    UNWINDING = "unwinding"
    QUERYING = "querying"  # an order's answer was lost: asking the exchange what it did
    DONE = "done"


class LegOutcome(enum.Enum):
    CEX_NOT_FILLED = "cex_not_filled"  # nothing traded; nothing open
    BOTH_FILLED = "both_filled"
    UNWOUND = "unwound"  # CEX traded, DEX did not; the CEX position was closed
    LEG_OPEN = "leg_open"  # a CEX position is (or may be) open: risk and the operator must act


ALLOWED: dict[State, frozenset[str]] = {
    State.START: frozenset({"start"}),
    State.CEX_SENT: frozenset({"cex", "timer"}),
    State.DEX_SENT: frozenset({"dex", "timer"}),
    State.UNWINDING: frozenset({"unwind", "timer"}),
    State.QUERYING: frozenset({"query", "timer"}),
    State.DONE: frozenset({"timer"}),
}


@dataclass(frozen=True, slots=True)
class PlaceCex:
    order: OrderRequest


@dataclass(frozen=True, slots=True)
class QueryCex:
    """Ask the exchange what became of ``order`` (``GET /api/v3/order`` by its client order id), not before
    ``at_ns``; the answer goes to :meth:`LegMachine.on_query` (None: no answer within cex_timeout)."""

    order: OrderRequest
    at_ns: int


@dataclass(frozen=True, slots=True)
class SendDex:
    """The DEX leg for exactly ``base_units`` of base: after a CEX BUY, sell them (exact input) for at
    least ``min_out`` quote; after a CEX SELL, buy them back (exact output) for at most ``max_in`` quote.
    Either bound is the break-even, so the chain reverts a leg that would lose."""

    sell_base: bool
    base_units: int
    min_out: int  # quote units (sell_base)
    max_in: int  # quote units (not sell_base)
    deadline_ns: int


@dataclass(frozen=True, slots=True)
class Done:
    report: LegReport


Action = PlaceCex | QueryCex | SendDex | Done


@dataclass(slots=True)
class LegReport:
    outcome: LegOutcome | None = None
    reason: str = ""
    cex_filled: int = 0  # size_scale steps
    cex_quote: int = 0  # quote units spent (CEX buy) or received (CEX sell), fee included
    dex_sent: bool = False
    dex_result: str = ""  # "executed" / "reverted" / "not_included" / "timeout" / "not sent"
    dex_quote: int = 0
    gas_cost: int = 0  # quote units
    unwound: int = 0  # size steps closed by unwinding
    unwind_quote: int = 0
    left_open: int = 0  # size steps still open at the end
    realized_profit: int = 0  # quote units
    queries: int = 0  # order status queries made after lost answers
    late: list[str] = field(default_factory=list)  # answers that arrived after the outcome


@dataclass(kw_only=True)
class LegPlan:
    """What the signal decided, in the book's scales and token units."""

    symbol: str
    cex_side: OrderSide  # BUY: buy base on the CEX, sell it on the DEX
    size: int  # size_scale steps
    limit_price: int  # price_scale: the worst level the signal walked
    price_scale: int
    size_scale: int
    base_decimals: int  # the tokens on chain
    quote_decimals: int
    cex_fee_ppm: int = 1000
    gas_cost: int = 0  # quote units, the DEX leg's
    client_order_id: str = "ap"


@dataclass(kw_only=True)
class LegLimits:
    cex_timeout_ns: int = 5_000_000_000
    max_leg_open_ns: int = 30_000_000_000
    dex_deadline_ns: int = 24_000_000_000  # after the CEX fill; must be < max_leg_open_ns
    max_unwind_attempts: int = 3
    unwind_slippage_bps: int = 50
    query_attempts: int = 3  # status queries for one order whose answer was lost (0: assume the worst at once)
    query_interval_ns: int = 1_000_000_000  # between queries that learnt nothing


PPM = 1_000_000
CLOCK_SKEW_NS = 1_000_000_000  # Binance also refuses a timestamp more than 1 s ahead of its clock


def _shift(x: int, digits: int) -> int:
    return x * 10**digits if digits >= 0 else x // 10**-digits


@dataclass
class LegMachine:
    plan: LegPlan
    limits: LegLimits = field(default_factory=LegLimits)
    state: State = State.START
    report: LegReport = field(default_factory=LegReport)
    _deadline: int = 0
    _attempts: int = 0
    _order: OrderRequest | None = None  # the order last placed (entry or unwind) and when
    _sent_ns: int = 0
    _query_of: State = State.CEX_SENT  # QUERYING: the state whose order is being asked about
    _queries: int = 0
    _restarted: bool = False  # resumed after an executor restart: decide from the entry's fill, place nothing

    def __post_init__(self) -> None:
        if not self.limits.dex_deadline_ns < self.limits.max_leg_open_ns:
            raise ValueError("the DEX leg's deadline must fall before max_leg_open_ns")

    # --- inputs ------------------------------------------------------------------------------------

    def start(self, now_ns: int) -> list[Action]:
        self._check("start")
        self.state, self._deadline = State.CEX_SENT, now_ns + self.limits.cex_timeout_ns
        p = self.plan
        self._order, self._sent_ns = OrderRequest(
            symbol=p.symbol, side=p.cex_side, quantity=p.size, limit_price=p.limit_price, price_scale=p.price_scale,
            size_scale=p.size_scale, client_order_id=p.client_order_id), now_ns
        return [PlaceCex(self._order)]

    def resume(self, order: OrderRequest, sent_ns: int, answer: OrderResult | None, now_ns: int) -> list[Action]:
        """After an executor restart: the entry ``order`` was sent at ``sent_ns`` (on this clock) and its answer is
        ``answer`` (None: it was never recorded, so it is queried as a lost one). No order is placed and no DEX
        leg sent from here: nothing filled is CEX_NOT_FILLED, a fill ``q`` is LEG_OPEN with ``q`` open (the
        signal's moment has passed; risk and the operator take the position), unknown is LEG_OPEN as ever."""
        self._check("start")
        self.state, self._deadline = State.CEX_SENT, now_ns + self.limits.cex_timeout_ns
        self._order, self._sent_ns, self._restarted = order, sent_ns, True
        if answer is None:
            return self._query(now_ns, "restart: the entry order's answer was never recorded")
        return self.on_cex(answer, now_ns)

    def on_cex(self, result: OrderResult, now_ns: int, dex_quote_for: int | None = None) -> list[Action]:
        """The CEX order's answer; ``dex_quote_for`` = the pool's exact quote output for the filled size
        (the shell computes it at that size from the current pool state; None: the pool is not tradable)."""
        if self.late("cex"):
            return []
        self._check("cex")
        r = self.report
        if result.status is OrderStatus.UNKNOWN:
            return self._query(now_ns, f"CEX answer lost ({result.reason})")
        if result.status in (OrderStatus.REJECTED, OrderStatus.ERROR) or not result.filled_any:
            return self._done(LegOutcome.CEX_NOT_FILLED, f"CEX {result.status.value}: {result.reason}",
                              dex_result="not sent")
        r.cex_filled = result.executed
        r.cex_quote = self._quote_units(result.quote, result.quote_scale, fee=True,
                                        paid=self.plan.cex_side is OrderSide.BUY)
        if self._restarted:
            r.left_open = result.executed
            return self._done(LegOutcome.LEG_OPEN, f"restart: the entry order filled {result.executed} of "
                                                   f"{self.plan.size} steps and the DEX leg was never sent",
                              dex_result="not sent")
        base_units = _shift(result.executed, self.plan.base_decimals - self.plan.size_scale)
        break_even = self._break_even()
        if dex_quote_for is None or not self._dex_pays(dex_quote_for, break_even):
            self.report.dex_result = "not sent"
            why = "pool not tradable" if dex_quote_for is None else \
                f"DEX leg no longer pays for the filled size (quote {dex_quote_for}, break-even {break_even})"
            return self._unwind(now_ns, why)
        self.state, self._deadline = State.DEX_SENT, now_ns + self.limits.max_leg_open_ns
        r.dex_sent = True
        sell = self.plan.cex_side is OrderSide.BUY
        return [SendDex(sell_base=sell, base_units=base_units, min_out=break_even if sell else 0,
                        max_in=0 if sell else break_even, deadline_ns=now_ns + self.limits.dex_deadline_ns)]

    def on_dex(self, executed: bool, quote_amount: int, gas_cost: int, now_ns: int, *,
               result: str = "executed") -> list[Action]:
        """The DEX leg's end: executed (``quote_amount`` = quote received, or paid for a DEX buy), else
        ``result`` says how it failed (reverted / not_included)."""
        if self.late("dex"):
            return []
        self._check("dex")
        r = self.report
        r.gas_cost = gas_cost
        if executed:
            r.dex_result, r.dex_quote = "executed", quote_amount
            if self.plan.cex_side is OrderSide.BUY:
                r.realized_profit = quote_amount - r.cex_quote - gas_cost
            else:
                r.realized_profit = r.cex_quote - quote_amount - gas_cost
            return self._done(LegOutcome.BOTH_FILLED, "both legs filled")
        r.dex_result = result
        return self._unwind(now_ns, f"DEX leg {result}")

    def on_unwind(self, result: OrderResult, now_ns: int) -> list[Action]:
        if self.late("unwind"):
            return []
        self._check("unwind")
        r = self.report
        if result.status is OrderStatus.UNKNOWN:
            return self._query(now_ns, f"unwind answer lost ({result.reason})")
        if result.filled_any:
            r.unwound += result.executed
            r.unwind_quote += self._quote_units(result.quote, result.quote_scale, fee=True,
                                                paid=self.plan.cex_side is OrderSide.SELL)
        left = r.cex_filled - r.unwound
        if left <= 0:
            self._settle_unwound()
            return self._done(LegOutcome.UNWOUND, r.reason or "unwound")
        if self._attempts >= self.limits.max_unwind_attempts:
            r.left_open = left
            self._settle_unwound()
            return self._done(LegOutcome.LEG_OPEN, f"{left} steps still open after {self._attempts} unwind attempts")
        return [self._unwind_order(left, now_ns)]

    def on_query(self, result: OrderResult | None, now_ns: int, dex_quote_for: int | None = None) -> list[Action]:
        """The answer to :class:`QueryCex` (None: none within cex_timeout). A final status is the order's real
        answer and continues as that would have (``dex_quote_for`` as for :meth:`on_cex`); not found after the
        order's recvWindow is "nothing filled"; anything else asks again, up to ``query_attempts``."""
        if self.late("query"):
            return []
        self._check("query")
        assert self._order is not None
        status = OrderStatus.UNKNOWN if result is None else result.status
        if result is not None and status in FINAL:
            return self._resume(result, now_ns, dex_quote_for)
        window_end = self._sent_ns + self._order.recv_window_ms * 1_000_000 + CLOCK_SKEW_NS
        if status is OrderStatus.NOT_FOUND and now_ns >= window_end:
            nothing = OrderResult(status=OrderStatus.EXPIRED, reason="not found after its recvWindow: never placed")
            return self._resume(nothing, now_ns, dex_quote_for)
        if self._queries >= self.limits.query_attempts:
            return self._unknown(f"order {self._order.client_order_id} status unknown after {self._queries} "
                                 f"queries ({'no answer' if result is None else result.reason})")
        at = window_end if status is OrderStatus.NOT_FOUND else now_ns + self.limits.query_interval_ns
        return [self._next_query(at)]

    def on_timer(self, now_ns: int) -> list[Action]:
        if self.state is State.DONE or now_ns < self._deadline:
            return []
        if self.state is State.CEX_SENT:
            return self._query(now_ns, "no CEX answer within cex_timeout")
        if self.state is State.DEX_SENT:
            self.report.dex_result = "timeout"
            return self._unwind(now_ns, "DEX leg not finished within max_leg_open")
        if self.state is State.UNWINDING:
            return self._query(now_ns, "unwind not answered within cex_timeout")
        return []  # QUERYING: the shell answers every query (None when it timed out)

    @property
    def querying_unwind(self) -> bool:
        """QUERYING about an unwind order (else: the entry)."""
        return self.state is State.QUERYING and self._query_of is State.UNWINDING

    @property
    def deadline_ns(self) -> int:
        """When the current state's timer fires (``on_timer`` at or after it acts)."""
        return self._deadline

    def abandon(self, why: str) -> list[Action]:
        """The caller lost track of an order in flight (a CEX entry or unwind): whatever it may have filled
        is assumed open, the worst case, and the signal ends LEG_OPEN."""
        if self.state not in (State.CEX_SENT, State.UNWINDING, State.QUERYING):
            raise LegError(f"abandon in state {self.state.value}")
        r = self.report
        of = self._query_of if self.state is State.QUERYING else self.state
        r.left_open = self.plan.size if of is State.CEX_SENT else r.cex_filled - r.unwound
        if of is State.UNWINDING:
            self._settle_unwound()
        return self._done(LegOutcome.LEG_OPEN, why, dex_result=None if r.dex_result else "not sent")

    # --- internals ---------------------------------------------------------------------------------

    def _check(self, event: str) -> None:
        if event not in ALLOWED[self.state]:
            raise LegError(f"{event!r} in state {self.state.value}")

    def late(self, event: str) -> bool:
        """An answer after the outcome (a CEX reply after cex_timeout): recorded, changes nothing."""
        if self.state is State.DONE and event in ("cex", "dex", "unwind", "query"):
            self.report.late.append(event)
            return True
        return False

    def _quote_units(self, quote: int, scale: int, *, fee: bool, paid: bool) -> int:
        """A CEX quote amount at ``scale`` decimals -> quote token units, with the taker fee (paid: more)."""
        num, den = quote * 10**self.plan.quote_decimals, 10**scale
        units = -(-num // den) if paid else num // den  # never understate a cost or overstate a gain
        if fee:
            units = -(-units * (PPM + self.plan.cex_fee_ppm) // PPM) if paid else \
                units * (PPM - self.plan.cex_fee_ppm) // PPM
        return units

    def _break_even(self) -> int:
        r = self.report
        # CEX BUY: the DEX sale must return what the CEX cost plus gas; CEX SELL: the DEX purchase may
        # cost at most what the CEX sale brought minus gas.
        if self.plan.cex_side is OrderSide.BUY:
            return r.cex_quote + self.plan.gas_cost
        return r.cex_quote - self.plan.gas_cost

    def _dex_pays(self, dex_quote: int, break_even: int) -> bool:
        return dex_quote >= break_even if self.plan.cex_side is OrderSide.BUY else dex_quote <= break_even

    def _query(self, now_ns: int, why: str) -> list[Action]:
        """The answer to the order last placed was lost (or never came): ask the exchange."""
        of = self.state
        if self.limits.query_attempts <= 0:
            self._query_of = of
            return self._unknown(f"{why}: order status unknown")
        self.state, self._query_of, self._queries = State.QUERYING, of, 0
        return [self._next_query(now_ns)]

    def _next_query(self, at_ns: int) -> QueryCex:
        assert self._order is not None
        self._queries += 1
        self.report.queries += 1
        return QueryCex(self._order, at_ns)

    def _resume(self, result: OrderResult, now_ns: int, dex_quote_for: int | None) -> list[Action]:
        """The queried order's real answer, down the branch its own answer would have taken."""
        self.state = self._query_of
        if self.state is State.CEX_SENT:
            return self.on_cex(result, now_ns, dex_quote_for)
        return self.on_unwind(result, now_ns)

    def _unknown(self, why: str) -> list[Action]:
        """The order's fate cannot be learnt: assume the worst (all of it filled and open)."""
        r = self.report
        if self._query_of is State.CEX_SENT:
            r.left_open = self.plan.size
            return self._done(LegOutcome.LEG_OPEN, why, dex_result="not sent")
        r.left_open = r.cex_filled - r.unwound
        self._settle_unwound()
        return self._done(LegOutcome.LEG_OPEN, why)

    def _unwind(self, now_ns: int, why: str) -> list[Action]:
        self.state, self._deadline = State.UNWINDING, now_ns + self.limits.cex_timeout_ns
        self.report.reason = why
        return [self._unwind_order(self.report.cex_filled - self.report.unwound, now_ns)]

    def _unwind_order(self, qty: int, now_ns: int) -> PlaceCex:
        self._attempts += 1
        p = self.plan
        bps = self.limits.unwind_slippage_bps
        side = OrderSide.SELL if p.cex_side is OrderSide.BUY else OrderSide.BUY
        price = p.limit_price * (10_000 - bps) // 10_000 if side is OrderSide.SELL else \
            -(-p.limit_price * (10_000 + bps) // 10_000)
        self._order, self._sent_ns = OrderRequest(
            symbol=p.symbol, side=side, quantity=qty, limit_price=price, price_scale=p.price_scale,
            size_scale=p.size_scale, client_order_id=f"{p.client_order_id}-u{self._attempts}"), now_ns
        # a new unwind order gets its own cex_timeout (its predecessor's may have been spent querying)
        self._deadline = now_ns + self.limits.cex_timeout_ns
        return PlaceCex(self._order)

    def _settle_unwound(self) -> None:
        r = self.report
        if self.plan.cex_side is OrderSide.BUY:  # bought, then sold back
            r.realized_profit = r.unwind_quote - r.cex_quote - (r.gas_cost if r.dex_sent else 0)
        else:
            r.realized_profit = r.cex_quote - r.unwind_quote - (r.gas_cost if r.dex_sent else 0)

    def _done(self, outcome: LegOutcome, reason: str, *, dex_result: str | None = None) -> list[Action]:
        r = self.report
        r.outcome, r.reason = outcome, reason
        if dex_result is not None:
            r.dex_result = dex_result
        self.state = State.DONE
        return [Done(r)]
