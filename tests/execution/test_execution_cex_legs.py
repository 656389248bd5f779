"""execution/cex/legs.py: every branch of specs/cex-legs.md."""

from __future__ import annotations

import pytest

from execution.cex.gateway import OrderResult, OrderSide, OrderStatus
from execution.cex.legs import (
    Done,
    LegError,
    LegLimits,
    LegMachine,
    LegOutcome,
    LegPlan,
    PlaceCex,
    QueryCex,
    SendDex,
    State,
)

S = 1_000_000_000  # ns
# ETHUSDC at price_scale 2 / size_scale 3: 1.000 ETH at 2000.00 USDC; USDC has 6 decimals, WETH 18.
QS = 5  # quote scale of a fill = price_scale + size_scale


def plan(side: OrderSide = OrderSide.BUY, size: int = 1000, gas: int = 2_000_000) -> LegPlan:
    return LegPlan(symbol="ETHUSDC", cex_side=side, size=size, limit_price=200_000, price_scale=2, size_scale=3,
                   base_decimals=18, quote_decimals=6, cex_fee_ppm=1000, gas_cost=gas, client_order_id="s1")


def filled(qty: int, price: int = 200_000, status: OrderStatus = OrderStatus.FILLED) -> OrderResult:
    return OrderResult(status=status, executed=qty, quote=qty * price, quote_scale=QS, order_id=1, reason=status.value)


def machine(side: OrderSide = OrderSide.BUY, **limits: int) -> LegMachine:
    m = LegMachine(plan(side), LegLimits(**limits))
    (place,) = m.start(0)
    assert isinstance(place, PlaceCex) and place.order.side is side and place.order.quantity == 1000
    assert place.order.limit_price == 200_000
    return m


def outcome(acts: list) -> LegOutcome:
    (done,) = acts
    assert isinstance(done, Done)
    return done.report.outcome


@pytest.mark.parametrize("result", [
    OrderResult(status=OrderStatus.REJECTED, reason="-2010: Account has insufficient balance"),
    OrderResult(status=OrderStatus.ERROR, reason="ConnectTimeout"),
    OrderResult(status=OrderStatus.EXPIRED, executed=0, quote=0, quote_scale=QS, reason="EXPIRED"),
])
def test_cex_not_filled_ends_without_a_dex_leg(result: OrderResult) -> None:
    m = machine()
    acts = m.on_cex(result, 1, dex_quote_for=2_100_000_000)
    assert outcome(acts) is LegOutcome.CEX_NOT_FILLED
    assert m.report.dex_result == "not sent" and not m.report.dex_sent and m.report.left_open == 0


def test_full_fill_then_dex_executed_is_both_filled_with_realized_profit() -> None:
    m = machine()
    (send,) = m.on_cex(filled(1000), 1, dex_quote_for=2_100_000_000)
    assert isinstance(send, SendDex) and send.sell_base and send.base_units == 10**18
    cost = 2_000_000_000 * 1_001_000 // 1_000_000  # 2000 USDC + 0.1 % taker fee
    assert m.report.cex_quote == cost and send.min_out == cost + 2_000_000 and send.deadline_ns == 1 + 24 * S
    assert outcome(m.on_dex(True, 2_090_000_000, 2_000_000, 2)) is LegOutcome.BOTH_FILLED
    assert m.report.realized_profit == 2_090_000_000 - cost - 2_000_000 and m.report.dex_result == "executed"


def test_partial_fill_resizes_the_dex_leg() -> None:
    m = machine()
    (send,) = m.on_cex(filled(400, status=OrderStatus.PARTIALLY_FILLED), 1, dex_quote_for=900_000_000)
    assert isinstance(send, SendDex) and send.base_units == 4 * 10**17 and m.report.cex_filled == 400


def test_a_fill_the_dex_no_longer_pays_for_is_unwound() -> None:
    m = machine()
    (unwind,) = m.on_cex(filled(1000), 1, dex_quote_for=1_990_000_000)
    assert isinstance(unwind, PlaceCex) and unwind.order.side is OrderSide.SELL and unwind.order.quantity == 1000
    assert unwind.order.limit_price == 199_000  # 50 bps past the original limit
    assert m.state is State.UNWINDING and not m.report.dex_sent
    assert outcome(m.on_unwind(filled(1000, price=199_500), 2)) is LegOutcome.UNWOUND
    r = m.report
    proceeds = 1_995_000_000 * 999_000 // 1_000_000
    assert r.realized_profit == proceeds - r.cex_quote < 0 and "no longer pays" in r.reason


def test_a_fill_on_an_untradable_pool_is_unwound() -> None:
    m = machine()
    (unwind,) = m.on_cex(filled(1000), 1, dex_quote_for=None)
    assert isinstance(unwind, PlaceCex) and "not tradable" in m.report.reason


@pytest.mark.parametrize("how", ["reverted", "not_included"])
def test_a_failed_dex_leg_is_unwound_and_its_gas_counted(how: str) -> None:
    m = machine()
    m.on_cex(filled(1000), 1, dex_quote_for=2_100_000_000)
    (unwind,) = m.on_dex(False, 0, 3_000_000 if how == "reverted" else 0, 2, result=how)
    assert isinstance(unwind, PlaceCex) and unwind.order.side is OrderSide.SELL
    assert outcome(m.on_unwind(filled(1000), 3)) is LegOutcome.UNWOUND
    r = m.report
    assert r.dex_result == how and r.realized_profit == r.unwind_quote - r.cex_quote - r.gas_cost


def test_a_dex_leg_open_past_max_leg_open_is_unwound() -> None:
    m = machine()
    m.on_cex(filled(1000), 1 * S, dex_quote_for=2_100_000_000)
    assert m.on_timer(30 * S) == []
    (unwind,) = m.on_timer(31 * S)
    assert isinstance(unwind, PlaceCex) and m.report.dex_result == "timeout"
    assert outcome(m.on_unwind(filled(1000), 32 * S)) is LegOutcome.UNWOUND


def test_a_partial_unwind_is_retried_and_exhausted_attempts_leave_the_leg_open() -> None:
    m = machine(max_unwind_attempts=2)
    m.on_cex(filled(1000), 1, dex_quote_for=1)
    (retry,) = m.on_unwind(filled(600, status=OrderStatus.PARTIALLY_FILLED), 2)
    assert isinstance(retry, PlaceCex) and retry.order.quantity == 400 and retry.order.client_order_id == "s1-u2"
    assert outcome(m.on_unwind(filled(100, status=OrderStatus.PARTIALLY_FILLED), 3)) is LegOutcome.LEG_OPEN
    assert m.report.left_open == 300 and m.report.unwound == 700


def test_a_retried_unwind_that_completes_is_unwound() -> None:
    m = machine()
    m.on_cex(filled(1000), 1, dex_quote_for=1)
    m.on_unwind(filled(600, status=OrderStatus.PARTIALLY_FILLED), 2)
    assert outcome(m.on_unwind(filled(400), 3)) is LegOutcome.UNWOUND and m.report.unwound == 1000


def test_no_cex_answer_leaves_the_leg_open_and_a_late_answer_changes_nothing() -> None:
    m = machine(query_attempts=0)  # no status queries: the worst is assumed at once
    assert m.on_timer(4 * S) == []
    assert outcome(m.on_timer(5 * S)) is LegOutcome.LEG_OPEN
    assert m.report.left_open == 1000 and "unknown" in m.report.reason
    assert m.on_cex(filled(1000), 6 * S, dex_quote_for=2_100_000_000) == []
    assert m.report.late == ["cex"] and m.report.outcome is LegOutcome.LEG_OPEN


def test_an_unanswered_unwind_leaves_the_leg_open() -> None:
    m = machine(query_attempts=0)
    m.on_cex(filled(1000), 0, dex_quote_for=1)
    assert outcome(m.on_timer(5 * S)) is LegOutcome.LEG_OPEN and m.report.left_open == 1000


def test_cex_sell_first_then_dex_buy_back() -> None:
    m = machine(OrderSide.SELL)
    (send,) = m.on_cex(filled(1000), 1, dex_quote_for=1_900_000_000)
    proceeds = 2_000_000_000 * 999_000 // 1_000_000
    assert isinstance(send, SendDex) and not send.sell_base and send.max_in == proceeds - 2_000_000
    assert outcome(m.on_dex(True, 1_900_000_000, 2_000_000, 2)) is LegOutcome.BOTH_FILLED
    assert m.report.realized_profit == proceeds - 1_900_000_000 - 2_000_000
    m2 = machine(OrderSide.SELL)
    (unwind,) = m2.on_cex(filled(1000), 1, dex_quote_for=2_100_000_000)  # buying back would cost too much
    assert isinstance(unwind, PlaceCex) and unwind.order.side is OrderSide.BUY and unwind.order.limit_price == 201_000


def test_impossible_inputs_are_bugs() -> None:
    m = LegMachine(plan())
    with pytest.raises(LegError):
        m.on_dex(True, 1, 1, 0)
    m.start(0)
    with pytest.raises(LegError):
        m.start(1)
    with pytest.raises(LegError):
        m.on_unwind(filled(1), 1)
    with pytest.raises(ValueError):
        LegMachine(plan(), LegLimits(dex_deadline_ns=30 * S, max_leg_open_ns=30 * S))


# --------------------------------------------------------------------------- lost answers: the order is queried

LOST = OrderResult(status=OrderStatus.UNKNOWN, reason="RemoteProtocolError")
WINDOW = 5 * S + 1 * S  # the order's recvWindow (5000 ms) plus a second of clock skew, from its sending at 0


def queried(acts: list, at: int, coid: str = "s1") -> QueryCex:
    (q,) = acts
    assert isinstance(q, QueryCex) and q.order.client_order_id == coid and q.at_ns == at
    return q


@pytest.mark.parametrize("lose", ["answer dropped", "no answer in time"])
def test_a_lost_entry_answer_is_queried_and_the_real_fill_sizes_the_dex_leg(lose: str) -> None:
    m = machine()
    if lose == "answer dropped":
        queried(m.on_cex(LOST, 1 * S, dex_quote_for=None), 1 * S)
    else:
        queried(m.on_timer(5 * S), 5 * S)
    assert m.state is State.QUERYING and m.report.queries == 1
    (send,) = m.on_query(filled(600, status=OrderStatus.PARTIALLY_FILLED), 6 * S, dex_quote_for=1_300_000_000)
    assert isinstance(send, SendDex) and send.base_units == 6 * 10**17 and m.report.cex_filled == 600
    assert m.state is State.DEX_SENT and outcome(m.on_dex(True, 1_300_000_000, 2_000_000, 7 * S)) is \
        LegOutcome.BOTH_FILLED


def test_a_queried_order_not_found_is_unfilled_only_once_its_recv_window_passed() -> None:
    m = machine()
    queried(m.on_cex(LOST, 1 * S), 1 * S)
    not_found = OrderResult(status=OrderStatus.NOT_FOUND, reason="-2013: Order does not exist.")
    queried(m.on_query(not_found, 1 * S), WINDOW)  # it may still be on its way: ask again when it cannot be
    assert outcome(m.on_query(not_found, WINDOW)) is LegOutcome.CEX_NOT_FILLED
    assert "never placed" in m.report.reason and m.report.left_open == 0 and m.report.queries == 2


def test_a_queried_order_that_expired_unfilled_is_cex_not_filled() -> None:
    m = machine()
    queried(m.on_timer(5 * S), 5 * S)
    expired = OrderResult(status=OrderStatus.EXPIRED, quote_scale=QS, order_id=9, reason="queried: EXPIRED")
    assert outcome(m.on_query(expired, 5 * S)) is LegOutcome.CEX_NOT_FILLED and m.report.dex_result == "not sent"


def test_queries_are_bounded_then_the_worst_is_assumed() -> None:
    m = machine(query_attempts=3, query_interval_ns=S)
    queried(m.on_cex(LOST, 1 * S), 1 * S)
    pending = OrderResult(status=OrderStatus.PENDING, reason="queried: NEW")
    queried(m.on_query(None, 2 * S), 3 * S)  # no answer to the query: ask again one interval later
    queried(m.on_query(pending, 3 * S), 4 * S)  # still being matched
    assert m.on_timer(100 * S) == []  # the shell answers every query; no timer of its own
    acts = m.on_query(OrderResult(status=OrderStatus.UNKNOWN, reason="query: ReadTimeout"), 4 * S)
    assert outcome(acts) is LegOutcome.LEG_OPEN and m.report.left_open == 1000 and m.report.queries == 3
    assert "unknown after 3 queries" in m.report.reason and m.report.dex_result == "not sent"
    assert m.on_query(filled(1000), 5 * S) == [] and m.report.late == ["query"]


def test_a_lost_unwind_answer_is_queried_and_its_fill_counts() -> None:
    m = machine()
    (unwind,) = m.on_cex(filled(1000), 0, dex_quote_for=1)  # the DEX leg does not pay: unwind
    assert isinstance(unwind, PlaceCex)
    queried(m.on_unwind(LOST, 1 * S), 1 * S, coid="s1-u1")
    assert m.querying_unwind
    acts = m.on_query(filled(1000, price=199_500), 2 * S)
    assert outcome(acts) is LegOutcome.UNWOUND and m.report.unwound == 1000 and m.report.left_open == 0
    m2 = machine()
    m2.on_cex(filled(1000), 0, dex_quote_for=1)
    queried(m2.on_timer(5 * S), 5 * S, coid="s1-u1")  # the unwind not answered in time
    nothing = OrderResult(status=OrderStatus.NOT_FOUND, reason="-2013")
    (again,) = m2.on_query(nothing, 12 * S)  # never placed: the rest is retried as the next attempt
    assert isinstance(again, PlaceCex) and again.order.client_order_id == "s1-u2" and again.order.quantity == 1000


def test_an_order_that_never_left_is_not_queried_and_abandon_while_querying_leaves_it_open() -> None:
    m = machine()
    never = OrderResult(status=OrderStatus.ERROR, reason="ConnectError")
    assert outcome(m.on_cex(never, 1)) is LegOutcome.CEX_NOT_FILLED and m.report.queries == 0
    m2 = machine()
    queried(m2.on_cex(LOST, 1), 1)
    assert outcome(m2.abandon("shell failed")) is LegOutcome.LEG_OPEN and m2.report.left_open == 1000
    m3 = machine()
    m3.on_cex(filled(1000), 0, dex_quote_for=2_100_000_000)
    with pytest.raises(LegError):  # a query answer with no query asked: a bug in the shell
        m3.on_query(filled(1000), 1)


# --------------------------------------------------------------------------- after an executor restart


def test_a_restart_queries_an_unanswered_entry_and_places_nothing() -> None:
    order = LegMachine(plan()).start(0)[0].order
    m = LegMachine(plan(), LegLimits())
    queried(m.resume(order, -3 * S, None, 0), 0)  # sent 3 s before the restart, no answer recorded
    acts = m.on_query(filled(700, status=OrderStatus.PARTIALLY_FILLED), 1 * S)
    assert outcome(acts) is LegOutcome.LEG_OPEN and m.report.left_open == m.report.cex_filled == 700
    assert "restart" in m.report.reason and not m.report.dex_sent and m.report.dex_result == "not sent"
    m2 = LegMachine(plan(), LegLimits())
    not_found = OrderResult(status=OrderStatus.NOT_FOUND, reason="-2013")
    queried(m2.resume(order, -3 * S, None, 0), 0)
    queried(m2.on_query(not_found, 0), 3 * S)  # its recvWindow (+1 s) ends 3 s after the restart
    assert outcome(m2.on_query(not_found, 3 * S)) is LegOutcome.CEX_NOT_FILLED
    m3 = LegMachine(plan(), LegLimits())  # its answer was recorded: decided from it, no query
    assert outcome(m3.resume(order, -3 * S, filled(1000), 0)) is LegOutcome.LEG_OPEN and m3.report.queries == 0
    m4 = LegMachine(plan(), LegLimits(query_attempts=0))
    assert outcome(m4.resume(order, 0, None, 0)) is LegOutcome.LEG_OPEN and m4.report.left_open == 1000
