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
                               +--no answer within cex_timeout--> DONE(LEG_OPEN)       +--still open--> DONE(LEG_OPEN)

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
* **Every signal ends with exactly one outcome** naming what each leg did (:class:`LegReport`); an
  impossible input for the current state raises :class:`LegError` (a bug, never a second outcome).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .gateway import OrderRequest, OrderResult, OrderSide, OrderStatus


class LegError(RuntimeError):
    """An input the current state cannot take: a bug in the caller."""


class State(enum.Enum):
    START = "start"
    CEX_SENT = "cex_sent"
    DEX_SENT = "dex_sent"
    UNWINDING = "unwinding"
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
    State.DONE: frozenset({"timer"}),
}


@dataclass(frozen=True, slots=True)
class PlaceCex:
    order: OrderRequest


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


Action = PlaceCex | SendDex | Done


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


PPM = 1_000_000


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

    def __post_init__(self) -> None:
        if not self.limits.dex_deadline_ns < self.limits.max_leg_open_ns:
            raise ValueError("the DEX leg's deadline must fall before max_leg_open_ns")

    # --- inputs ------------------------------------------------------------------------------------

    def start(self, now_ns: int) -> list[Action]:
        self._check("start")
        self.state, self._deadline = State.CEX_SENT, now_ns + self.limits.cex_timeout_ns
        p = self.plan
        return [PlaceCex(OrderRequest(symbol=p.symbol, side=p.cex_side, quantity=p.size, limit_price=p.limit_price,
                                      price_scale=p.price_scale, size_scale=p.size_scale,
                                      client_order_id=p.client_order_id))]

    def on_cex(self, result: OrderResult, now_ns: int, dex_quote_for: int | None = None) -> list[Action]:
        """The CEX order's answer; ``dex_quote_for`` = the pool's exact quote output for the filled size
        (the shell computes it at that size from the current pool state; None: the pool is not tradable)."""
        if self.late("cex"):
            return []
        self._check("cex")
        r = self.report
        if result.status in (OrderStatus.REJECTED, OrderStatus.ERROR) or not result.filled_any:
            return self._done(LegOutcome.CEX_NOT_FILLED, f"CEX {result.status.value}: {result.reason}",
                              dex_result="not sent")
        r.cex_filled = result.executed
        r.cex_quote = self._quote_units(result.quote, result.quote_scale, fee=True,
                                        paid=self.plan.cex_side is OrderSide.BUY)
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
        return [self._unwind_order(left)]

    def on_timer(self, now_ns: int) -> list[Action]:
        if self.state is State.DONE or now_ns < self._deadline:
            return []
        if self.state is State.CEX_SENT:
            self.report.left_open = self.plan.size  # unknown: assume the worst
            return self._done(LegOutcome.LEG_OPEN, "no CEX answer within cex_timeout: order status unknown",
                              dex_result="not sent")
        if self.state is State.DEX_SENT:
            self.report.dex_result = "timeout"
            return self._unwind(now_ns, "DEX leg not finished within max_leg_open")
        if self.state is State.UNWINDING:
            r = self.report
            r.left_open = r.cex_filled - r.unwound
            self._settle_unwound()
            return self._done(LegOutcome.LEG_OPEN, "unwind not answered within cex_timeout")
        return []

    @property
    def deadline_ns(self) -> int:
        """When the current state's timer fires (``on_timer`` at or after it acts)."""
        return self._deadline

    def abandon(self, why: str) -> list[Action]:
        """The caller lost track of an order in flight (a CEX entry or unwind): whatever it may have filled
        is assumed open, the worst case, and the signal ends LEG_OPEN."""
        if self.state not in (State.CEX_SENT, State.UNWINDING):
            raise LegError(f"abandon in state {self.state.value}")
        r = self.report
        r.left_open = self.plan.size if self.state is State.CEX_SENT else r.cex_filled - r.unwound
        if self.state is State.UNWINDING:
            self._settle_unwound()
        return self._done(LegOutcome.LEG_OPEN, why, dex_result=None if r.dex_result else "not sent")

    # --- internals ---------------------------------------------------------------------------------

    def _check(self, event: str) -> None:
        if event not in ALLOWED[self.state]:
            raise LegError(f"{event!r} in state {self.state.value}")

    def late(self, event: str) -> bool:
        """An answer after the outcome (a CEX reply after cex_timeout): recorded, changes nothing."""
        if self.state is State.DONE and event in ("cex", "dex", "unwind"):
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

    def _unwind(self, now_ns: int, why: str) -> list[Action]:
        self.state, self._deadline = State.UNWINDING, now_ns + self.limits.cex_timeout_ns
        self.report.reason = why
        return [self._unwind_order(self.report.cex_filled - self.report.unwound)]

    def _unwind_order(self, qty: int) -> PlaceCex:
        self._attempts += 1
        p = self.plan
        bps = self.limits.unwind_slippage_bps
        side = OrderSide.SELL if p.cex_side is OrderSide.BUY else OrderSide.BUY
        price = p.limit_price * (10_000 - bps) // 10_000 if side is OrderSide.SELL else \
            -(-p.limit_price * (10_000 + bps) // 10_000)
        return PlaceCex(OrderRequest(symbol=p.symbol, side=side, quantity=qty, limit_price=price,
                                     price_scale=p.price_scale, size_scale=p.size_scale,
                                     client_order_id=f"{p.client_order_id}-u{self._attempts}"))

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
