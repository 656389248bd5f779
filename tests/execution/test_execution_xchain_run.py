"""execution/xchain/run.py's trio shell of the legs, without chains: the machine's deadline stops what has not
answered, an answer that ended right at the deadline is still taken, and what never answers times out.
trio's MockClock jumps over the waits (``autojump_clock``). Both chains, real transactions:
test_execution_xchain_devnet.py."""

from __future__ import annotations

from typing import Any

import trio

from execution.xchain.legs import Done, LegMachine, LegPlan, Limits, Result
from execution.xchain.run import _Answer, _Run
from protocol.execution import Outcome

S = 1_000_000_000


class Shell(_Run):
    """The run's leg loop with each transaction replaced by a script: leg -> (seconds, result, amount out,
    shielded: the transaction's end is not interrupted by the deadline)."""

    def __init__(self, scripts: dict[tuple[str, int], tuple[float, Result, int, bool]], **limits: int) -> None:
        self.machine = LegMachine((LegPlan(chain_id=1, amount_in=100, min_out=90),
                                   LegPlan(chain_id=2, amount_in=90, min_out=95)), Limits(**limits))
        self.txs, self.unwinds, self.scripts, self.done, self.sent = [object(), object()], [[], []], scripts, None, []

    def _tx(self, i: int, hop: Any, expected_out: int, *, unwind: bool = False) -> Any:
        return object()

    def _spec(self, i: int) -> Any:
        class Spec:
            @staticmethod
            def hop(*a: Any, **kw: Any) -> None:
                return None
        return Spec()

    async def _send_one(self, send: Any, kind: str, i: int, tx: Any, min_out: int, amount_in: int) -> None:
        self.sent.append((kind, i))
        seconds, result, out, shielded = self.scripts[(kind, i)]
        with trio.CancelScope(shield=shielded):
            await trio.sleep(seconds)
        send.send_nowait(_Answer(kind, i, result, out, 0, ""))

    async def _report(self, done: Done) -> None:
        self.done = done


async def run(shell: Shell) -> Done:
    await shell._legs()
    assert shell.done is not None
    return shell.done


async def test_a_leg_silent_past_max_leg_open_times_out_and_the_other_is_unwound(autojump_clock: Any) -> None:
    shell = Shell({("leg", 0): (0.1, Result.EXECUTED, 91, False), ("leg", 1): (3600, Result.EXECUTED, 99, False),
                   ("unwind", 0): (0.1, Result.EXECUTED, 99, False)}, max_leg_open_ns=5 * S)
    start = trio.current_time()
    done = await run(shell)
    assert done.outcome is Outcome.UNWOUND and done.legs[1].result is Result.TIMEOUT
    assert 5 <= trio.current_time() - start < 6 and sorted(shell.sent) == [("leg", 0), ("leg", 1), ("unwind", 0)]


async def test_a_leg_that_ended_right_at_the_deadline_is_taken_not_timed_out(autojump_clock: Any) -> None:
    shell = Shell({("leg", 0): (0.1, Result.EXECUTED, 91, False), ("leg", 1): (5.0, Result.EXECUTED, 99, True)},
                  max_leg_open_ns=5 * S)
    done = await run(shell)
    assert done.outcome is Outcome.EXECUTED and done.legs[1].amount_out == 99 and ("unwind", 0) not in shell.sent


async def test_an_unwind_silent_past_its_timeout_leaves_the_leg_open(autojump_clock: Any) -> None:
    shell = Shell({("leg", 0): (0.1, Result.REVERTED, 0, False), ("leg", 1): (0.2, Result.EXECUTED, 99, False),
                   ("unwind", 1): (3600, Result.EXECUTED, 95, False)}, unwind_timeout_ns=4 * S)
    done = await run(shell)
    assert done.outcome is Outcome.LEG_OPEN and done.legs[1].left_open == 99
