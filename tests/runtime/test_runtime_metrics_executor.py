"""The executor's metric recording (signal -> submit latency, outcomes by name), without a chain."""

from __future__ import annotations

import trio

from execution.process import _Metrics, _ProducerPublisher
from protocol.execution import ExecutionResult, ExecutionStarted, Outcome
from runtime.metrics import ProcessMetrics, parse_text


class _Sink:
    def __init__(self) -> None:
        self.sent: list[object] = []

    async def publish(self, tlv: object) -> None:
        self.sent.append(tlv)


def _started(signal_id: int) -> ExecutionStarted:
    return ExecutionStarted(signal_id=signal_id, chain_id=1, mode=1, nonce=0, tx_hash=b"\x01" * 32,
                            max_fee_per_gas=1, max_priority_fee_per_gas=1, gas_limit=21000)


def _result(signal_id: int, outcome: Outcome) -> ExecutionResult:
    return ExecutionResult(signal_id=signal_id, chain_id=1, outcome=int(outcome), block_number=0,
                           tx_hash=b"\x00" * 32, gas_used=0, effective_gas_price=0, expected_profit=0,
                           realized_profit=0, profit_token=0, reason="")


async def test_executor_metrics_outcomes_and_latency() -> None:
    pm = ProcessMetrics("executor")
    m = _Metrics(pm)
    pub = _ProducerPublisher(_Sink(), m)  # type: ignore[arg-type]
    m.on_signal(1)
    m.on_signal(2)
    await trio.sleep(0.01)
    await pub.publish(_started(1))
    await pub.publish(_result(1, Outcome.EXECUTED))
    await pub.publish(_result(2, Outcome.UNPROFITABLE))
    assert not m.received
    fams = parse_text(pm.render().decode())
    out = {lab["outcome"]: v for _, lab, v in fams["alphapulse_executor_outcomes_total"].samples}
    assert out["executed"] >= 1 and out["unprofitable"] >= 1 and "reverted" in out
    hist = {name: v for name, lab, v in fams["alphapulse_executor_signal_to_submit_seconds"].samples
            if not lab}
    assert hist["alphapulse_executor_signal_to_submit_seconds_count"] >= 1
    assert hist["alphapulse_executor_signal_to_submit_seconds_sum"] >= 0.009
