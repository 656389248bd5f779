"""execution/xchain/recover.py: a cross-chain leg settled from its chain's facts after an executor restart (each
row of the module's table), and the leg machine carried on from those answers (resume)."""

from __future__ import annotations

import json

import pytest

from execution.calldata import SWAPPED_TOPIC
from execution.core import CANCEL_GAS, Receipt
from execution.store import ExecutorStore, TxRow
from execution.xchain.legs import Done, LegError, LegMachine, LegPlan, Limits, Result, SendUnwind
from execution.xchain.recover import TxFact, group, settle
from protocol.execution import Outcome

CONTRACT = "0x" + "ab" * 20
TOKEN_IN, TOKEN_OUT = "0x" + "01" * 20, "0x" + "02" * 20


def receipt(*, status: int = 1, out: int | None = 123_456, contract: str = CONTRACT, block: int = 7) -> Receipt:
    logs = () if out is None else ({
        "address": contract, "topics": ["0x" + SWAPPED_TOPIC.hex(), "0x" + "00" * 12 + TOKEN_IN[2:],
                                        "0x" + "00" * 12 + TOKEN_OUT[2:]],
        "data": "0x" + (1000).to_bytes(32, "big").hex() + out.to_bytes(32, "big").hex()},)
    return Receipt(tx_hash="0x" + "cd" * 32, block_number=block, gas_used=90_000, effective_gas_price=3,
                   status=status, logs=logs)


def fact(*, status: str = "pending", public: bool = True, cancel: bool = False, r: Receipt | None = None) -> TxFact:
    return TxFact("0x" + "ee" * 32, status, public, cancel, r)


def test_a_mined_swap_with_its_swapped_event_landed_for_the_events_amount() -> None:
    s = settle([fact(status="mined", r=receipt())], deadline=100, head_timestamp=50, contract=CONTRACT)
    assert s is not None and (s.result, s.amount_out, s.gas_wei) == (Result.EXECUTED, 123_456, 270_000)
    assert s.receipt is not None and s.receipt.block_number == 7


def test_a_swapped_event_of_another_contract_is_not_ours() -> None:
    s = settle([fact(status="mined", r=receipt(contract="0x" + "cc" * 20))], deadline=100, head_timestamp=50,
               contract=CONTRACT)
    assert s is not None and s.result is Result.REVERTED and "without a Swapped event" in s.detail


def test_a_mined_revert_is_reverted_with_its_gas() -> None:
    s = settle([fact(status="mined", r=receipt(status=0, out=None))], deadline=100, head_timestamp=50,
               contract=CONTRACT)
    assert s is not None and (s.result, s.amount_out, s.gas_wei) == (Result.REVERTED, 0, 270_000)


def test_a_mined_cancel_is_not_included_with_the_cancels_gas() -> None:
    s = settle([fact(status="replaced"), fact(status="mined", cancel=True, r=receipt(out=None))], deadline=100,
               head_timestamp=200, contract=CONTRACT)
    assert s is not None and (s.result, s.gas_wei) == (Result.NOT_INCLUDED, 270_000) and "cancelled" in s.detail


@pytest.mark.parametrize(("head", "settled"), [(99, False), (100, False), (101, True)])
def test_a_pending_leg_waits_until_the_chain_passes_its_deadline(head: int, settled: bool) -> None:
    """A block at the deadline's second may still include it (the contract allows timestamp == deadline)."""
    s = settle([fact()], deadline=100, head_timestamp=head, contract=CONTRACT)
    if not settled:
        assert s is None
    else:
        assert s is not None and s.result is Result.NOT_INCLUDED and "deadline" in s.detail and s.gas_wei == 0


def test_a_receipt_wins_over_the_deadline() -> None:
    """Mined in the block that passed the deadline: its receipt says what it did, not the clock."""
    s = settle([fact(r=receipt(status=0, out=None))], deadline=100, head_timestamp=500, contract=CONTRACT)
    assert s is not None and s.result is Result.REVERTED


def test_a_nonce_someone_else_took_is_not_included_and_a_leg_never_sent_is_not_sent() -> None:
    s = settle([fact(status="dropped")], deadline=100, head_timestamp=0, contract=CONTRACT)
    assert s is not None and s.result is Result.NOT_INCLUDED and "taken" in s.detail
    s = settle([fact(status="dropped", public=False)], deadline=100, head_timestamp=0, contract=CONTRACT)
    assert s is not None and s.result is Result.NOT_SENT and "never broadcast" in s.detail
    s = settle([], deadline=0, head_timestamp=0, contract=CONTRACT)
    assert s is not None and s.result is Result.NOT_SENT and "never signed" in s.detail


def _row(h: int, *, kind: str, leg: int, attempt: int = 0, gas: int = 200_000, nonce: int = 5) -> TxRow:
    meta = json.dumps({"leg": "dex", "xc": {"kind": kind, "leg": leg, "attempt": attempt, "deadline": 1000 + h,
                                            "legs": [], "gross": 1, "signal": ""}})
    return TxRow(tx_hash=f"0x{h:064x}", signal_id=9, nonce=nonce, raw=b"", max_fee=1, tip=1, gas_limit=gas,
                 public=True, status="pending", meta=meta)


def test_a_signals_rows_group_into_leg_transactions_legs_first() -> None:
    rows = [(0, _row(1, kind="leg", leg=0)), (31338, _row(2, kind="leg", leg=1)),
            (31338, _row(3, kind="leg", leg=1, gas=CANCEL_GAS)), (0, _row(4, kind="unwind", leg=0, attempt=1, nonce=6))]
    xc, txs = group(rows)
    assert xc["kind"] == "leg"
    assert [(t.chain_id, t.kind, t.leg, t.attempt, len(t.rows)) for t in txs] == [
        (0, "leg", 0, 0, 1), (31338, "leg", 1, 0, 2), (0, "unwind", 0, 1, 1)]
    facts = txs[1].facts({})
    assert [f.cancel for f in facts] == [False, True]  # the cancel at the leg's nonce, after the leg


def test_the_store_lists_every_chains_rows_of_unfinished_cross_chain_signals(tmp_path: object) -> None:
    store = ExecutorStore(f"{tmp_path}/s.sqlite")
    try:
        b = store.for_chain(31338)
        for view, r in ((store, _row(1, kind="leg", leg=0)), (b, _row(2, kind="leg", leg=1))):
            view.record_tx(tx_hash=r.tx_hash, signal_id=9, nonce=r.nonce, raw=b"x", max_fee=1, tip=1, gas_limit=1,
                           meta=r.meta)
        store.set_status(_row(1, kind="leg", leg=0).tx_hash, "mined")  # a settled row still counts
        store.record_tx(tx_hash="0x" + "77" * 32, signal_id=10, nonce=9, raw=b"x", max_fee=1, tip=1, gas_limit=1,
                        meta=json.dumps({"chain_id": 1}))  # not a cross-chain leg
        got = store.unfinished_cross_chain()
        assert list(got) == [9] and [c for c, _ in got[9]] == [0, 31338]
        store.finish_signal(9, int(Outcome.EXECUTED), "done")
        assert store.unfinished_cross_chain() == {}
    finally:
        store.close()


# --------------------------------------------------------------------------- the machine after a restart


def machine() -> LegMachine:
    return LegMachine((LegPlan(chain_id=1, amount_in=1000, min_out=500), LegPlan(chain_id=2, amount_in=500, min_out=990)),
                      Limits(max_unwind_loss_bps=100))


def test_resume_sends_nothing_and_the_chains_answers_decide() -> None:
    m = machine()
    assert m.resume(0) == []
    assert m.on_leg(0, Result.EXECUTED, 1, amount_out=510) == []
    (done,) = m.on_leg(1, Result.EXECUTED, 2, amount_out=1001)
    assert isinstance(done, Done) and done.outcome is Outcome.EXECUTED


def test_resume_one_landed_the_other_out_unwinds_the_landed_one() -> None:
    m = machine()
    m.resume(0)
    m.on_leg(0, Result.NOT_INCLUDED, 1, detail="after a restart: deadline passed")
    (a,) = m.on_leg(1, Result.EXECUTED, 2, amount_out=1001)
    assert a == SendUnwind(1, 1001, 495, 1)
    (done,) = m.on_unwind(1, Result.EXECUTED, 3, amount_out=499)
    assert isinstance(done, Done) and done.outcome is Outcome.UNWOUND


def test_resume_neither_landed_and_twice_is_refused() -> None:
    m = machine()
    m.resume(0)
    m.on_leg(0, Result.REVERTED, 1)
    (done,) = m.on_leg(1, Result.NOT_INCLUDED, 2)
    assert isinstance(done, Done) and done.outcome is Outcome.REVERTED
    with pytest.raises(LegError):
        m.resume(0)
