"""execution/xchain/legs.py: every branch of specs/cross-chain-legs.md, without IO."""

from __future__ import annotations

import itertools

import pytest

from execution.xchain.legs import (
    ALLOWED,
    Done,
    LegError,
    LegMachine,
    LegPlan,
    Limits,
    Result,
    SendLeg,
    SendUnwind,
    State,
)
from protocol.execution import Outcome

S = 1_000_000_000
A, B = 31337, 31338
# leg 0: 3,000 USDC -> >= 1.49 WETH on A; leg 1: 1.5 WETH -> >= 3,040 USDC on B
USDC_IN, WETH_MIN = 3_000_000_000, 1_490_000_000_000_000_000
WETH_IN, USDC_MIN = 1_500_000_000_000_000_000, 3_040_000_000


def machine(**limits: int) -> LegMachine:
    m = LegMachine((LegPlan(chain_id=A, amount_in=USDC_IN, min_out=WETH_MIN),
                    LegPlan(chain_id=B, amount_in=WETH_IN, min_out=USDC_MIN)), Limits(**limits))
    acts = m.start(0)
    assert acts == [SendLeg(0, USDC_IN, WETH_MIN), SendLeg(1, WETH_IN, USDC_MIN)]  # both at once
    assert m.state is State.LEGS and m.deadline_ns == Limits(**limits).max_leg_open_ns
    return m


def done(acts: list) -> Done:
    (d,) = acts
    assert isinstance(d, Done)
    return d


def test_both_landed_is_executed() -> None:
    m = machine()
    assert m.on_leg(0, Result.EXECUTED, 1 * S, amount_out=1_500_000_000_000_000_000, gas_wei=7) == []  # waits
    d = done(m.on_leg(1, Result.EXECUTED, 2 * S, amount_out=3_051_000_000, gas_wei=9))
    assert d.outcome is Outcome.EXECUTED and m.state is State.DONE
    a, b = d.legs
    assert (a.amount_out, a.gas_wei, b.amount_out, b.gas_wei) == (1_500_000_000_000_000_000, 7, 3_051_000_000, 9)
    assert a.unwind_result is Result.NOT_SENT and a.left_open == b.left_open == 0


@pytest.mark.parametrize(("r0", "r1", "outcome"), [
    (Result.REVERTED, Result.REVERTED, Outcome.REVERTED),
    (Result.REVERTED, Result.NOT_INCLUDED, Outcome.REVERTED),
    (Result.NOT_INCLUDED, Result.NOT_INCLUDED, Outcome.NOT_INCLUDED),
    (Result.NOT_SENT, Result.NOT_INCLUDED, Outcome.NOT_INCLUDED),
    (Result.NOT_SENT, Result.NOT_SENT, Outcome.FAILED),
])
def test_neither_landed_unwinds_nothing(r0: Result, r1: Result, outcome: Outcome) -> None:
    m = machine()
    assert m.on_leg(1, r1, S, gas_wei=5, detail="x") == []
    d = done(m.on_leg(0, r0, S, amount_out=999))  # an amount with a failure is not believed
    assert d.outcome is outcome and "neither leg landed" in d.reason
    assert all(r.amount_out == 0 and r.unwind_attempts == 0 for r in d.legs)
    assert d.legs[1].gas_wei == 5


@pytest.mark.parametrize("landed", [0, 1])
def test_one_failed_the_other_landed_is_unwound_within_the_loss_bound(landed: int) -> None:
    m = machine(max_unwind_loss_bps=100)
    out = 1_500_000_000_000_000_000 if landed == 0 else 3_051_000_000
    # the failed leg answers first: nothing is unwound until the other has answered
    assert m.on_leg(1 - landed, Result.REVERTED, S, gas_wei=3, detail="min out") == []
    (u,) = m.on_leg(landed, Result.EXECUTED, 2 * S, amount_out=out)
    leg_in = m.plans[landed].amount_in
    assert u == SendUnwind(landed, out, leg_in * 9_900 // 10_000, 1) and m.state is State.UNWINDING
    d = done(m.on_unwind(landed, Result.EXECUTED, 3 * S, amount_out=leg_in - 7, gas_wei=11))
    assert d.outcome is Outcome.UNWOUND and f"leg {1 - landed} reverted: min out" in d.reason
    r = d.legs[landed]
    assert (r.unwind_amount_in, r.unwind_amount_out, r.unwind_gas_wei, r.left_open) == (out, leg_in - 7, 11, 0)


def test_an_unwind_that_fails_is_retried_then_closes() -> None:
    m = machine(max_unwind_attempts=3)
    m.on_leg(0, Result.EXECUTED, S, amount_out=WETH_MIN)
    (u1,) = m.on_leg(1, Result.NOT_INCLUDED, S)
    (u2,) = m.on_unwind(0, Result.REVERTED, 2 * S, gas_wei=4)
    assert (u1.attempt, u2.attempt) == (1, 2) and u2.amount_in == WETH_MIN
    d = done(m.on_unwind(0, Result.EXECUTED, 3 * S, amount_out=2_990_000_000, gas_wei=6))
    assert d.outcome is Outcome.UNWOUND and d.legs[0].unwind_attempts == 2 and d.legs[0].unwind_gas_wei == 10


def test_an_unwind_failing_every_attempt_leaves_the_leg_open() -> None:
    m = machine(max_unwind_attempts=2)
    m.on_leg(1, Result.EXECUTED, S, amount_out=3_051_000_000)
    m.on_leg(0, Result.REVERTED, S)
    m.on_unwind(1, Result.NOT_SENT, 2 * S)  # its simulation could not meet the loss bound
    d = done(m.on_unwind(1, Result.REVERTED, 3 * S, gas_wei=8))
    assert d.outcome is Outcome.LEG_OPEN and "2 time(s)" in d.reason
    r = d.legs[1]
    assert r.left_open == 3_051_000_000 and r.unwind_attempts == 2 and r.unwind_result is Result.REVERTED


def test_a_leg_without_an_answer_by_max_leg_open_times_out() -> None:
    m = machine(max_leg_open_ns=10 * S)
    m.on_leg(0, Result.EXECUTED, S, amount_out=WETH_MIN)
    assert m.on_timer(9 * S) == []
    (u,) = m.on_timer(10 * S)
    assert isinstance(u, SendUnwind) and m.legs[1].result is Result.TIMEOUT
    with pytest.raises(LegError):  # the leg had answered by timing out: the shell stops watching it
        m.on_leg(1, Result.EXECUTED, 11 * S, amount_out=USDC_MIN)


def test_a_late_leg_answer_after_timeout_raises_and_after_done_is_recorded() -> None:
    m = machine(max_leg_open_ns=10 * S)
    m.on_timer(10 * S)
    assert m.state is State.DONE
    assert m.on_leg(0, Result.EXECUTED, 11 * S, amount_out=WETH_MIN) == [] and m.late == ["leg 0"]
    m2 = machine(max_leg_open_ns=10 * S)
    m2.on_leg(0, Result.EXECUTED, S, amount_out=WETH_MIN)
    m2.on_timer(10 * S)
    with pytest.raises(LegError):
        m2.on_leg(1, Result.EXECUTED, 11 * S, amount_out=USDC_MIN)


def test_both_without_an_answer_are_not_included() -> None:
    m = machine(max_leg_open_ns=10 * S)
    d = done(m.on_timer(10 * S))
    assert d.outcome is Outcome.NOT_INCLUDED and all(r.result is Result.TIMEOUT for r in d.legs)


def test_an_unanswered_unwind_leaves_the_leg_open() -> None:
    m = machine(unwind_timeout_ns=5 * S)
    m.on_leg(0, Result.EXECUTED, S, amount_out=WETH_MIN)
    m.on_leg(1, Result.REVERTED, S)
    assert m.on_timer(5 * S) == []
    d = done(m.on_timer(6 * S))
    assert d.outcome is Outcome.LEG_OPEN and "unwind_timeout" in d.reason and d.legs[0].left_open == WETH_MIN


def test_abandon_with_a_leg_in_flight_assumes_it_landed() -> None:
    m = machine()
    m.on_leg(0, Result.REVERTED, S)
    d = done(m.abandon("RpcError: boom"))
    assert d.outcome is Outcome.LEG_OPEN and d.legs[1].left_open == USDC_MIN and d.legs[0].left_open == 0


def test_abandon_while_unwinding_leaves_the_landed_output_open() -> None:
    m = machine()
    m.on_leg(0, Result.EXECUTED, S, amount_out=WETH_MIN + 5)
    m.on_leg(1, Result.REVERTED, S)
    d = done(m.abandon("boom"))
    assert d.outcome is Outcome.LEG_OPEN and d.legs[0].left_open == WETH_MIN + 5


def test_an_executed_leg_below_its_minimum_is_a_bug() -> None:
    m = machine()
    with pytest.raises(LegError, match="min_out"):
        m.on_leg(0, Result.EXECUTED, S, amount_out=WETH_MIN - 1)


def test_a_leg_answering_twice_is_a_bug() -> None:
    m = machine()
    m.on_leg(0, Result.REVERTED, S)
    with pytest.raises(LegError, match="twice"):
        m.on_leg(0, Result.REVERTED, S)


def test_the_unwind_answer_must_be_for_the_unwinding_leg() -> None:
    m = machine()
    m.on_leg(0, Result.EXECUTED, S, amount_out=WETH_MIN)
    m.on_leg(1, Result.REVERTED, S)
    with pytest.raises(LegError, match="unwinding leg 0"):
        m.on_unwind(1, Result.EXECUTED, S, amount_out=1)


def test_legs_on_one_chain_or_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="one chain"):
        LegMachine((LegPlan(chain_id=A, amount_in=1, min_out=1), LegPlan(chain_id=A, amount_in=1, min_out=1)))
    with pytest.raises(ValueError):
        Limits(max_unwind_attempts=0)
    with pytest.raises(ValueError):
        LegPlan(chain_id=A, amount_in=0, min_out=1)


EVENTS = {
    "start": lambda m: m.start(0),
    "leg": lambda m: m.on_leg(0, Result.REVERTED, S),
    "unwind": lambda m: m.on_unwind(0, Result.REVERTED, S),
    "abandon": lambda m: m.abandon("x"),
    "timer": lambda m: m.on_timer(0),
}


def _in(state: State) -> LegMachine:
    m = LegMachine((LegPlan(chain_id=A, amount_in=USDC_IN, min_out=WETH_MIN),
                    LegPlan(chain_id=B, amount_in=WETH_IN, min_out=USDC_MIN)))
    if state is not State.START:
        m.start(0)
    if state in (State.UNWINDING, State.DONE):
        m.on_leg(0, Result.EXECUTED, S, amount_out=WETH_MIN)
        m.on_leg(1, Result.REVERTED, S)
    if state is State.DONE:
        m.on_unwind(0, Result.EXECUTED, S, amount_out=1)
    assert m.state is state
    return m


@pytest.mark.parametrize(("state", "event"), list(itertools.product(list(State), list(EVENTS))))
def test_every_state_event_pair_is_in_the_table_or_refused(state: State, event: str) -> None:
    """h2's discipline: a pair not in ALLOWED raises LegError (after DONE, answers are recorded as late)."""
    m = _in(state)
    late_ok = state is State.DONE and event in ("leg", "unwind")
    if event in ALLOWED[state] or late_ok:
        EVENTS[event](m)
    else:
        with pytest.raises(LegError):
            EVENTS[event](m)
