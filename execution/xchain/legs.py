"""The two legs of a cross-chain arbitrage, sans-IO: both sent at once, what a failed leg does to the
other, how a landed leg is unwound, how long any of it may take. The policy is
``specs/cross-chain-legs.md``; this is it as code.

Theory of operation
-------------------
::

    START --start--> LEGS (both legs sent at once: SendLeg(0), SendLeg(1))
    START --resume--> LEGS (after a restart: the legs were sent before it; the chains answer for them)
                       |
                       |  each leg answers once (on_leg): EXECUTED / REVERTED / NOT_INCLUDED / NOT_SENT,
                       |  or TIMEOUT when max_leg_open passes without an answer (on_timer)
                       v
        both EXECUTED ----------------------------------------------------> DONE(EXECUTED)
        neither EXECUTED -------------------------------------------------> DONE(REVERTED | NOT_INCLUDED | FAILED)
        exactly one EXECUTED --SendUnwind(landed leg)--> UNWINDING
                                                          | unwind executed ----------> DONE(UNWOUND)
                                                          | failed, attempts left ----> SendUnwind again
                                                          | failed max_unwind_attempts
                                                          |   times, or no answer by
                                                          |   unwind_timeout ---------> DONE(LEG_OPEN)

* **Both legs go at once**: each is one ``AlphaPulseArb.swap`` from the inventory the contract holds on its
  chain, with the re-validated exact output as its ``min_out`` (less ``leg_slippage_bps``) and an on-chain
  deadline inside the timing budget, so a leg either lands as priced, reverts, or cannot land late.
* **The outcome waits for both answers**: a leg that failed while the other is still in flight does not
  unwind anything yet (the other may fail too, and then there is nothing to unwind).
* **Unwinding** a landed leg swaps its output back on the same pool (``amount_in`` = what the leg
  received), with ``min_out`` = the leg's input less ``max_unwind_loss_bps``: the loss of an unwind is
  bounded, and an unwind that cannot meet the bound is not made (it fails, is retried up to
  ``max_unwind_attempts``, then the signal ends LEG_OPEN for risk and the operator).
* **Every signal ends with exactly one outcome** and a :class:`LegReport` per leg; an input the current
  state cannot take raises :class:`LegError` (a bug, never a second outcome); an answer after the outcome
  is recorded in ``late`` and changes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from protocol.execution import DexLegResult, Outcome

BPS = 10_000


class LegError(RuntimeError):
    """An input the current state cannot take: a bug in the caller."""


class State(enum.Enum):
    START = "start"
    LEGS = "legs"
    UNWINDING = "unwinding"
    DONE = "done"


ALLOWED: dict[State, frozenset[str]] = {
    State.START: frozenset({"start", "timer"}),
    State.LEGS: frozenset({"leg", "timer", "abandon"}),
    State.UNWINDING: frozenset({"unwind", "timer", "abandon"}),
    State.DONE: frozenset({"timer"}),
}

#: what a leg's transaction can end as (``DexLegResult`` on the wire)
Result = DexLegResult


@dataclass(frozen=True, slots=True, kw_only=True)
class LegPlan:
    """One leg: ``amount_in`` of the leg's input token for at least ``min_out`` of its output, on ``chain_id``."""

    chain_id: int
    amount_in: int
    min_out: int

    def __post_init__(self) -> None:
        if self.amount_in <= 0 or self.min_out < 0:
            raise ValueError(f"leg on chain {self.chain_id}: amount_in {self.amount_in} / min_out {self.min_out}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_leg_open_ns: int = 40_000_000_000  # both legs must have answered by then (after start)
    unwind_timeout_ns: int = 40_000_000_000  # one unwind attempt must have answered by then
    max_unwind_attempts: int = 3
    max_unwind_loss_bps: int = 100  # an unwind must return at least the leg's input less this

    def __post_init__(self) -> None:
        if self.max_unwind_attempts < 1 or not 0 <= self.max_unwind_loss_bps < BPS:
            raise ValueError("max_unwind_attempts >= 1 and 0 <= max_unwind_loss_bps < 10000")


@dataclass(frozen=True, slots=True)
class SendLeg:
    leg: int  # 0 source, 1 destination
    amount_in: int
    min_out: int


@dataclass(frozen=True, slots=True)
class SendUnwind:
    """Swap ``amount_in`` of the leg's output back into its input on the same pool, for at least ``min_out``."""

    leg: int
    amount_in: int
    min_out: int
    attempt: int  # 1, 2, ...


@dataclass(frozen=True, slots=True)
class Done:
    outcome: Outcome
    reason: str
    legs: tuple[LegReport, LegReport]


Action = SendLeg | SendUnwind | Done


@dataclass(slots=True)
class LegReport:
    """What one leg did; amounts in its tokens' base units, gas in wei of its chain's gas token."""

    chain_id: int
    amount_in: int
    min_out: int
    result: Result = Result.NOT_SENT
    answered: bool = False
    amount_out: int = 0  # realized: 0 unless EXECUTED
    gas_wei: int = 0  # the leg's own transaction (a mined revert costs gas too)
    detail: str = ""  # why it failed, as its transaction's run said
    unwind_result: Result = Result.NOT_SENT
    unwind_attempts: int = 0
    unwind_amount_in: int = 0
    unwind_amount_out: int = 0
    unwind_gas_wei: int = 0  # every unwind attempt's gas together
    unwind_detail: str = ""  # why the last unwind attempt failed
    left_open: int = 0  # of the leg's output token, still held from this leg at the end

    @property
    def landed(self) -> bool:
        return self.result is Result.EXECUTED


@dataclass
class LegMachine:
    plans: tuple[LegPlan, LegPlan]
    limits: Limits = field(default_factory=Limits)
    state: State = State.START
    late: list[str] = field(default_factory=list)  # answers that arrived after the outcome
    _deadline: int = 0
    _unwinding: int = -1

    def __post_init__(self) -> None:
        if self.plans[0].chain_id == self.plans[1].chain_id:
            raise ValueError("the two legs of a cross-chain signal are on one chain")
        self.legs = tuple(LegReport(chain_id=p.chain_id, amount_in=p.amount_in, min_out=p.min_out)
                          for p in self.plans)

    @property
    def deadline_ns(self) -> int:
        """When the current state's timer fires (``on_timer`` at or after it acts)."""
        return self._deadline

    # --- inputs ------------------------------------------------------------------------------------

    def start(self, now_ns: int) -> list[Action]:
        self._check("start")
        self.state, self._deadline = State.LEGS, now_ns + self.limits.max_leg_open_ns
        return [SendLeg(i, p.amount_in, p.min_out) for i, p in enumerate(self.plans)]

    def resume(self, now_ns: int) -> list[Action]:
        """After an executor restart: both legs were sent by the run before it (nothing is sent again); their
        answers come from the chains (``execution/xchain/recover.py``) through :meth:`on_leg`."""
        self._check("start")
        self.state, self._deadline = State.LEGS, now_ns + self.limits.max_leg_open_ns
        return []

    def on_leg(self, leg: int, result: Result, now_ns: int, *, amount_out: int = 0, gas_wei: int = 0,
               detail: str = "") -> list[Action]:
        """Leg ``leg``'s transaction ended: ``result`` with ``amount_out`` realized (EXECUTED only) and
        ``gas_wei`` paid. Each leg answers once."""
        if self._late(f"leg {leg}"):
            return []
        self._check("leg")
        r = self.legs[leg]
        if r.answered:
            raise LegError(f"leg {leg} answered twice")
        if result is Result.EXECUTED and amount_out < r.min_out:
            raise LegError(f"leg {leg} executed for {amount_out} < its min_out {r.min_out}: not what the chain does")
        r.answered, r.result, r.gas_wei, r.detail = True, result, gas_wei, detail
        r.amount_out = amount_out if result is Result.EXECUTED else 0
        return self._decide(now_ns)

    def on_unwind(self, leg: int, result: Result, now_ns: int, *, amount_out: int = 0, gas_wei: int = 0,
                  detail: str = "") -> list[Action]:
        """The unwind attempt of ``leg`` ended (``detail``: why it failed)."""
        if self._late(f"unwind {leg}"):
            return []
        self._check("unwind")
        if leg != self._unwinding:
            raise LegError(f"unwind answer for leg {leg}, unwinding leg {self._unwinding}")
        r = self.legs[leg]
        r.unwind_result, r.unwind_detail = result, detail
        r.unwind_gas_wei += gas_wei
        if result is Result.EXECUTED:
            r.unwind_amount_in, r.unwind_amount_out = r.amount_out, amount_out
            other = self.legs[1 - leg]
            return self._done(Outcome.UNWOUND, f"leg {1 - leg} {other.result.name.lower()}"
                                               f"{': ' + other.detail if other.detail else ''}; leg {leg} unwound")
        if r.unwind_attempts >= self.limits.max_unwind_attempts:
            return self._open(leg, f"unwind {result.name.lower()} {r.unwind_attempts} time(s)"
                                   f"{', last: ' + detail if detail else ''}")
        return [self._unwind(leg, now_ns)]

    def on_timer(self, now_ns: int) -> list[Action]:
        if self.state in (State.START, State.DONE) or now_ns < self._deadline:
            return []
        if self.state is State.LEGS:  # a leg never answered: it is given up (its deadline keeps it out)
            for r in self.legs:
                if not r.answered:
                    r.answered, r.result, r.detail = True, Result.TIMEOUT, "no answer within max_leg_open"
            return self._decide(now_ns)
        return self._open(self._unwinding, "unwind not answered within unwind_timeout")

    def abandon(self, why: str) -> list[Action]:
        """The caller lost track of a transaction in flight (the shell's failure boundary): a leg or unwind
        without an answer may have landed, so the signal ends LEG_OPEN with the worst case open."""
        self._check("abandon")
        for r in self.legs:
            if not r.answered:
                r.answered, r.result, r.detail = True, Result.TIMEOUT, why
                r.left_open = r.min_out  # it may have landed: at least this much may be held
        if self._unwinding >= 0:
            r = self.legs[self._unwinding]
            r.left_open = r.amount_out
        return self._finish(Outcome.LEG_OPEN, f"failed with a leg in flight: {why}")

    # --- internals ---------------------------------------------------------------------------------

    def _check(self, event: str) -> None:
        if event not in ALLOWED[self.state]:
            raise LegError(f"{event!r} in state {self.state.value}")

    def _late(self, what: str) -> bool:
        if self.state is State.DONE:
            self.late.append(what)
            return True
        return False

    def _decide(self, now_ns: int) -> list[Action]:
        a, b = self.legs
        if not (a.answered and b.answered):
            return []  # wait for the other leg: if it fails too there is nothing to unwind
        if a.landed and b.landed:
            return self._done(Outcome.EXECUTED, "both legs landed")
        if not a.landed and not b.landed:
            results = {a.result, b.result}
            outcome = Outcome.REVERTED if Result.REVERTED in results else \
                Outcome.NOT_INCLUDED if results & {Result.NOT_INCLUDED, Result.TIMEOUT} else Outcome.FAILED
            why = "; ".join(f"leg {i} {r.result.name.lower()}{': ' + r.detail if r.detail else ''}"
                            for i, r in enumerate(self.legs))
            return self._done(outcome, f"neither leg landed ({why})")
        self.state = State.UNWINDING
        self._unwinding = 0 if a.landed else 1
        return [self._unwind(self._unwinding, now_ns)]

    def _unwind(self, leg: int, now_ns: int) -> SendUnwind:
        r = self.legs[leg]
        r.unwind_attempts += 1
        self._deadline = now_ns + self.limits.unwind_timeout_ns
        floor = r.amount_in * (BPS - self.limits.max_unwind_loss_bps) // BPS
        return SendUnwind(leg, r.amount_out, floor, r.unwind_attempts)

    def _open(self, leg: int, why: str) -> list[Action]:
        r = self.legs[leg]
        r.left_open = r.amount_out
        other = self.legs[1 - leg]
        return self._done(Outcome.LEG_OPEN, f"leg {1 - leg} {other.result.name.lower()}"
                                            f"{': ' + other.detail if other.detail else ''}; leg {leg} landed and "
                                            f"could not be unwound ({why}): {r.left_open} left open on chain "
                                            f"{r.chain_id}")

    def _done(self, outcome: Outcome, reason: str) -> list[Action]:
        return self._finish(outcome, reason)

    def _finish(self, outcome: Outcome, reason: str) -> list[Action]:
        self.state = State.DONE
        a, b = self.legs
        return [Done(outcome, reason, (a, b))]


__all__ = ["ALLOWED", "Done", "LegError", "LegMachine", "LegPlan", "LegReport", "Limits", "Result", "SendLeg",
           "SendUnwind", "State"]
