"""Per-signal execution lifecycle and the emergency-stop state, sans-IO.

Theory of operation
-------------------
Every signal the executor takes off the signal relay becomes one :class:`SignalExecution`, which
walks a small state machine and ends with **exactly one** :class:`~protocol.execution.Outcome`
and a reason::

    RECEIVED --validated--> VALIDATED --simulated--> SIMULATED --submitted--> SUBMITTED
        |                      |                        |                       |  (submitted again
        |                      |                        |                       |   = a replacement)
        +----------------------+------------------------+-----------------------+--> DONE(outcome)

The table :data:`ALLOWED` says which outcome may end which stage: a signal that was never sent
cannot be EXECUTED, REVERTED or NOT_INCLUDED; one that was sent cannot be STALE, UNPROFITABLE or
HALTED (it already left); SIMULATED (shadow mode) ends a simulated signal only; FAILED ends
anything. A pair not in the table raises :class:`LifecycleError` (a bug in the executor, never a
silent second outcome). The machine produces the ``ExecutionStarted`` / ``ExecutionResult``
records; the trio shell only publishes them. :mod:`execution.core` drives it: its finer steps
(waiting for the market, simulating, signing, watching receipts or bundles) each map onto one
stage here, so this table stays the single rule for which outcome may end a signal.

:class:`HaltState` applies ``EmergencyStop`` / ``Resume`` records: a stop with scope ALL, or with a
CHAIN / STRATEGY / VENUE scope matching the signal, halts new submissions until a matching Resume
(``stop_id`` 0 resumes every stop in its scope).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from protocol.execution import ExecutionResult, ExecutionStarted, Outcome, SubmissionMode
from protocol.fields import fit_text
from protocol.ids import TokenId, code_name
from protocol.system import EmergencyStop, Resume, StopScope


class LifecycleError(RuntimeError):
    """An impossible transition: a bug, not a market condition."""


class Stage(enum.Enum):
    RECEIVED = "received"
    VALIDATED = "validated"
    SIMULATED = "simulated"
    SUBMITTED = "submitted"
    DONE = "done"


_BEFORE_SEND = {Outcome.STALE, Outcome.UNPROFITABLE, Outcome.HALTED, Outcome.REJECTED_BY_RISK, Outcome.FAILED}
# A CEX-DEX signal's CEX leg goes out after the DEX leg's simulation and before its transaction: these end
# it whether or not the DEX transaction was sent (specs/cex-legs.md); both legs filled is EXECUTED.
_LEGS = {Outcome.CEX_NOT_FILLED, Outcome.UNWOUND, Outcome.LEG_OPEN}
ALLOWED: dict[Stage, frozenset[Outcome]] = {
    Stage.RECEIVED: frozenset(_BEFORE_SEND),
    Stage.VALIDATED: frozenset(_BEFORE_SEND),
    Stage.SIMULATED: frozenset(_BEFORE_SEND | {Outcome.SIMULATED} | _LEGS),
    Stage.SUBMITTED: frozenset({Outcome.EXECUTED, Outcome.REVERTED, Outcome.NOT_INCLUDED, Outcome.FAILED} | _LEGS),
    Stage.DONE: frozenset(),
}
_NEXT = {Stage.RECEIVED: Stage.VALIDATED, Stage.VALIDATED: Stage.SIMULATED, Stage.SIMULATED: Stage.SUBMITTED}


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One signed transaction for the signal (a replacement is a new attempt with the same nonce)."""

    tx_hash: bytes
    nonce: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    gas_limit: int


@dataclass(slots=True, kw_only=True)
class SignalExecution:
    signal_id: int
    chain_id: int
    strategy_id: int
    profit_token: int
    mode: SubmissionMode
    expected_profit: int = 0  # gross, in profit_token units (the signal's, re-validated)
    stage: Stage = Stage.RECEIVED
    outcome: Outcome | None = None
    reason: str = ""
    attempts: list[Attempt] = field(default_factory=list)

    # --- transitions ---------------------------------------------------------------------------

    def _advance(self, expected: Stage) -> None:
        if self.stage is not expected:
            raise LifecycleError(f"signal {self.signal_id}: cannot leave {self.stage.value} as {expected.value}")
        self.stage = _NEXT[expected]

    def validated(self, expected_profit: int) -> None:
        self._advance(Stage.RECEIVED)
        self.expected_profit = expected_profit

    def simulated(self) -> None:
        self._advance(Stage.VALIDATED)

    def submitted(self, attempt: Attempt) -> ExecutionStarted:
        """A transaction was handed to the network or a builder (again, for a replacement)."""
        if self.stage is Stage.SIMULATED:
            self.stage = Stage.SUBMITTED
        elif self.stage is not Stage.SUBMITTED:
            raise LifecycleError(f"signal {self.signal_id}: cannot submit from {self.stage.value}")
        if self.attempts and attempt.nonce != self.attempts[0].nonce:
            raise LifecycleError(f"signal {self.signal_id}: a replacement must keep nonce {self.attempts[0].nonce}")
        self.attempts.append(attempt)
        return ExecutionStarted(
            signal_id=self.signal_id, chain_id=self.chain_id, mode=int(self.mode), nonce=attempt.nonce,
            tx_hash=attempt.tx_hash, max_fee_per_gas=attempt.max_fee_per_gas,
            max_priority_fee_per_gas=attempt.max_priority_fee_per_gas, gas_limit=attempt.gas_limit,
        )

    def finish(self, outcome: Outcome, reason: str, *, block_number: int = 0, tx_hash: bytes = bytes(32),
               gas_used: int = 0, effective_gas_price: int = 0, realized_profit: int = 0) -> ExecutionResult:
        if outcome not in ALLOWED[self.stage]:
            raise LifecycleError(
                f"signal {self.signal_id}: outcome {outcome.name} is impossible at stage {self.stage.value}"
                + (f" (already {self.outcome.name})" if self.outcome is not None else ""))
        self.stage = Stage.DONE
        self.outcome = outcome
        self.reason = reason
        return ExecutionResult(
            signal_id=self.signal_id, chain_id=self.chain_id, outcome=int(outcome), block_number=block_number,
            tx_hash=tx_hash, gas_used=gas_used, effective_gas_price=effective_gas_price,
            expected_profit=self.expected_profit, realized_profit=realized_profit,
            profit_token=TokenId(self.profit_token), reason=fit_text(reason),
        )

    @property
    def done(self) -> bool:
        return self.stage is Stage.DONE


# --- emergency stop ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveStop:
    scope: int
    scope_value: int
    stop_id: int
    reason: str
    sender: str


class HaltState:
    """The stops in force. ``apply`` returns a log line saying what changed and who asked."""

    def __init__(self) -> None:
        self.stops: dict[int, ActiveStop] = {}

    def apply(self, record: object) -> str | None:
        if type(record) is EmergencyStop:
            s = ActiveStop(scope=record.scope, scope_value=record.scope_value, stop_id=record.stop_id,
                           reason=record.reason, sender=record.sender)
            self.stops[record.stop_id] = s
            return (f"EMERGENCY STOP {record.stop_id} scope={_scope_name(record.scope)}:{record.scope_value} "
                    f"from {record.sender!r}: {record.reason}")
        if type(record) is Resume:
            lifted = [sid for sid, s in self.stops.items()
                      if (record.stop_id == 0 or sid == record.stop_id)
                      and (record.scope == StopScope.ALL and record.stop_id == 0
                           or record.stop_id != 0
                           or (s.scope, s.scope_value) == (record.scope, record.scope_value))]
            for sid in lifted:
                del self.stops[sid]
            return (f"RESUME stop_id={record.stop_id} scope={_scope_name(record.scope)}:{record.scope_value} "
                    f"from {record.sender!r}: {record.reason} (lifted {lifted or 'nothing'}; "
                    f"{len(self.stops)} stop(s) still in force)")
        return None

    def halting(self, *, chain_id: int, strategy_id: int, venues: Iterable[int] = ()) -> ActiveStop | None:
        """The first stop in force that covers a signal with these attributes, else None."""
        venues = set(venues)
        for s in self.stops.values():
            if (s.scope == StopScope.ALL
                    or (s.scope == StopScope.CHAIN and s.scope_value == chain_id)
                    or (s.scope == StopScope.STRATEGY and s.scope_value == strategy_id)
                    or (s.scope == StopScope.VENUE and s.scope_value in venues)):
                return s
        return None


def _scope_name(scope: int) -> str:
    return code_name(StopScope, scope).lower()
