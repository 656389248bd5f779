"""The rebalancer's sans-IO core: the policy, the transition table, the settle table, the steps'
transactions, the bridge's logs and the records it publishes."""

from __future__ import annotations

import dataclasses

import eth_abi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.abi import selector
from execution.rebalance.core import (
    ALLOWED,
    PUBLISHED,
    TERMINAL,
    TRANSFER_COMPLETED,
    TRANSFER_SENT,
    TX_STATES,
    CompletedLog,
    Plan,
    SentLog,
    Settle,
    State,
    Target,
    Transfer,
    TransferError,
    after_mined,
    after_reverted,
    completed_log,
    completion_filter,
    gross_up,
    on_completed,
    plan,
    record,
    request_for,
    sent_log,
    settle,
)
from protocol import Message, decode, encode
from protocol.execution import NO_NONCE, BridgeTransfer, BridgeTransferState, OwnerCall, OwnerTxRequest
from protocol.tlv import decode_tlvs

A, B, C = 31337, 31338, 8453
USDC_A = "0x" + "a1" * 20
USDC_B = "0x" + "b1" * 20
OWNER = "0x" + "0e" * 20
ARB_A, ARB_B = "0x" + "aa" * 20, "0x" + "bb" * 20
BRIDGE_A, BRIDGE_B = "0x" + "ba" * 20, "0x" + "bd" * 20


def usdc(floor: int, target: int, *chains: int, min_transfer: int = 1) -> list[Target]:
    return [Target(asset="USDC", chain_id=c, floor=floor, target=target, min_transfer=min_transfer) for c in chains]


def transfer(state: State = State.PLANNED, **kw: object) -> Transfer:
    base = dict(transfer_id=7, asset="USDC", state=state, src_chain=A, dst_chain=B, bridge=1, src_token=USDC_A,
                dst_token=USDC_B, owner=OWNER, src_contract=ARB_A, dst_contract=ARB_B, src_bridge=BRIDGE_A,
                dst_bridge=BRIDGE_B, amount=5_000_000, dst_from_block=100)
    base.update(kw)
    return Transfer(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- policy


@given(amount=st.integers(0, 10**30), fee_bps=st.integers(0, 9_999))
def test_gross_up_is_the_least_amount_that_lands_the_amount(amount: int, fee_bps: int) -> None:
    def lands(x: int) -> int:
        return x - -(-x * fee_bps // 10_000)

    x = gross_up(amount, fee_bps)
    assert lands(x) >= amount
    assert x == 0 or lands(x - 1) < amount


def test_gross_up_refuses_a_fee_of_everything() -> None:
    with pytest.raises(ValueError):
        gross_up(1, 10_000)


def test_a_chain_below_its_floor_is_refilled_to_target_from_the_surplus() -> None:
    targets = usdc(1_000, 5_000, A, B)
    assert plan(targets, {(A, "USDC"): 999, (B, "USDC"): 20_000}) == [
        Plan(asset="USDC", src_chain=B, dst_chain=A, amount=4_001)]
    # at the floor exactly: nothing
    assert plan(targets, {(A, "USDC"): 1_000, (B, "USDC"): 20_000}) == []


def test_the_fee_is_grossed_up_and_the_donor_never_goes_below_its_target() -> None:
    targets = usdc(1_000, 5_000, A, B)
    got = plan(targets, {(A, "USDC"): 0, (B, "USDC"): 20_000}, fee_bps=5)
    assert got[0].amount == gross_up(5_000, 5) == 5_003
    # only 2_000 above the donor's target: that much, not the whole deficit
    assert plan(targets, {(A, "USDC"): 0, (B, "USDC"): 7_000}, fee_bps=5)[0].amount == 2_000
    # a donor at or below its own target gives nothing
    assert plan(targets, {(A, "USDC"): 0, (B, "USDC"): 5_000}) == []


def test_busy_assets_small_transfers_and_unknown_balances_start_nothing() -> None:
    targets = usdc(1_000, 5_000, A, B, min_transfer=4_500)
    balances = {(A, "USDC"): 999, (B, "USDC"): 20_000}
    assert plan(targets, balances, busy={"USDC"}) == []
    assert plan(targets, balances) == []  # 4_001 < min_transfer
    assert plan(usdc(1_000, 5_000, A, B), {(A, "USDC"): 0}) == []  # the donor's balance is unknown


def test_three_chains_the_largest_deficit_takes_from_the_largest_surplus() -> None:
    targets = usdc(1_000, 5_000, A, B, C)
    got = plan(targets, {(A, "USDC"): 900, (B, "USDC"): 100, (C, "USDC"): 9_000})
    assert got == [Plan(asset="USDC", src_chain=C, dst_chain=B, amount=4_000)]


def test_a_floor_above_its_target_is_refused() -> None:
    with pytest.raises(ValueError):
        Target(asset="USDC", chain_id=A, floor=2, target=1)


# --------------------------------------------------------------------------- the transition table


@given(a=st.sampled_from(list(State)), b=st.sampled_from(list(State)))
def test_only_the_table_s_transitions_are_allowed(a: State, b: State) -> None:
    t = transfer(a)
    if b in ALLOWED[a]:
        assert t.to(b).state is b
    else:
        with pytest.raises(TransferError):
            t.to(b)


def test_terminal_states_end_everything_and_each_has_a_record() -> None:
    assert all(not ALLOWED[s] for s in TERMINAL)
    assert set(PUBLISHED) == TERMINAL | {State.SENT}
    assert not transfer(State.COMPLETED).open and transfer(State.SENT).open


# --------------------------------------------------------------------------- settling a transaction


@pytest.mark.parametrize(("receipt", "nonce", "mined", "known", "want"), [
    (1, 5, 6, True, Settle.MINED),
    (0, 5, 6, True, Settle.REVERTED),
    (None, 5, 6, False, Settle.DROPPED),  # nonce 5 used, by a transaction that is not ours
    (None, 5, 6, True, Settle.WAIT),  # mined, the receipt not served yet: never signed again
    (None, 5, 5, True, Settle.WAIT),  # in the pool
    (None, 5, 3, True, Settle.WAIT),
    (None, 5, 5, False, Settle.REBROADCAST),  # never left: the same bytes again
    (None, 5, 3, False, Settle.REBROADCAST),
])
def test_settle_table(receipt: int | None, nonce: int, mined: int, known: bool, want: Settle) -> None:
    assert settle(receipt_status=receipt, tx_nonce=nonce, mined_nonces=mined, known=known) is want


# --------------------------------------------------------------------------- steps


def _args(data: bytes, signature: str, types: list[str]) -> tuple[object, ...]:
    assert data[:4] == selector(signature)
    return tuple(eth_abi.decode(types, data[4:]))


def test_each_step_asks_the_executor_for_its_owner_call() -> None:
    """The rebalancer signs nothing: each step is a request naming a call of the closed list, the source chain,
    the token and the amount (and the destination chain for the bridge's send); the executor builds the calldata
    (tests/execution/test_execution_owner.py)."""
    token = bytes.fromhex(USDC_A[2:])
    asked = {state: request_for(transfer(state, end="refused"), 11) for state in TX_STATES}
    assert asked == {
        State.WITHDRAWING: OwnerTxRequest(request_id=11, chain_id=A, call=OwnerCall.WITHDRAW, token=token,
                                          amount=5_000_000, dst_chain=0),
        State.APPROVING: OwnerTxRequest(request_id=11, chain_id=A, call=OwnerCall.APPROVE, token=token,
                                        amount=5_000_000, dst_chain=0),
        State.SENDING: OwnerTxRequest(request_id=11, chain_id=A, call=OwnerCall.BRIDGE_SEND, token=token,
                                      amount=5_000_000, dst_chain=B),
        State.RETURNING: OwnerTxRequest(request_id=11, chain_id=A, call=OwnerCall.RETURN, token=token,
                                        amount=5_000_000, dst_chain=0),
    }
    wire = asked[State.SENDING].encode()
    assert decode_tlvs(wire, 0, len(wire)) == (asked[State.SENDING],)
    for state in set(State) - TX_STATES:
        with pytest.raises(TransferError):
            request_for(transfer(state), 1)


def test_after_a_withdraw_the_allowance_decides_whether_to_approve() -> None:
    t = transfer(State.WITHDRAWING, gas_cost=10)
    assert after_mined(t, gas_cost=5, allowance=0).state is State.APPROVING
    nxt = after_mined(t, gas_cost=5, allowance=5_000_000)
    assert nxt.state is State.SENDING and nxt.gas_cost == 15
    assert after_mined(transfer(State.APPROVING), gas_cost=1).state is State.SENDING


def _sent(**kw: object) -> SentLog:
    base = dict(nonce=42, dst_chain=B, token=USDC_A, sender=OWNER, recipient=ARB_B, amount=5_000_000)
    base.update(kw)
    return SentLog(**base)  # type: ignore[arg-type]


def test_a_mined_send_needs_its_transfer_sent_log_and_it_must_match() -> None:
    t = transfer(State.SENDING)
    nxt = after_mined(t, gas_cost=3, sent=_sent(), sent_time_ns=9 * 10**9, tx_hash="0x" + "11" * 32)
    assert (nxt.state, nxt.nonce, nxt.src_tx, nxt.sent_time_ns) == (State.SENT, 42, "0x" + "11" * 32, 9 * 10**9)
    with pytest.raises(TransferError, match="without a TransferSent"):
        after_mined(t, gas_cost=3)
    for bad in (_sent(amount=1), _sent(dst_chain=C), _sent(recipient=OWNER)):
        with pytest.raises(TransferError, match="not the transfer asked for"):
            after_mined(t, gas_cost=3, sent=bad)


def test_reverted_steps_end_or_return_the_tokens() -> None:
    assert after_reverted(transfer(State.WITHDRAWING), gas_cost=1, why="x").state is State.FAILED
    ap = after_reverted(transfer(State.APPROVING), gas_cost=1, why="x")
    assert (ap.state, ap.end) == (State.RETURNING, "failed")
    se = after_reverted(transfer(State.SENDING), gas_cost=1, why="DevBridge: zero amount")
    assert (se.state, se.end) == (State.RETURNING, "refused") and "zero amount" in se.reason
    assert after_mined(se, gas_cost=2).state is State.REFUSED
    assert after_mined(ap, gas_cost=2).state is State.FAILED
    stuck = after_reverted(se, gas_cost=2, why="y")
    assert stuck.state is State.FAILED and OWNER in stuck.reason and stuck.gas_cost == 3
    for state in (State.PLANNED, State.SENT, State.COMPLETED):
        with pytest.raises(TransferError):
            after_reverted(transfer(state), gas_cost=0, why="")


# --------------------------------------------------------------------------- the bridge's logs


def _word(v: int) -> str:
    return "0x" + v.to_bytes(32, "big").hex()


def _addr_word(a: str) -> str:
    return _word(int(a, 16))


def test_transfer_sent_is_read_from_the_receipt_s_logs() -> None:
    data = "0x" + eth_abi.encode(["address", "address", "uint256"], [OWNER, ARB_B, 5_000_000]).hex()
    logs = [
        {"address": USDC_A, "topics": ["0x" + "00" * 32], "data": "0x"},  # the token's Transfer: not ours
        {"address": BRIDGE_A.upper().replace("0X", "0x"), "topics": ["0x" + TRANSFER_SENT.hex(), _word(42), _word(B),
                                                                      _addr_word(USDC_A)], "data": data},
    ]
    assert sent_log(logs, BRIDGE_A) == _sent()
    assert sent_log(logs, BRIDGE_B) is None


def test_transfer_completed_matches_the_transfer_or_is_an_error() -> None:
    t = transfer(State.SENT, nonce=42, sent_time_ns=1)
    lg = {"address": BRIDGE_B, "topics": ["0x" + TRANSFER_COMPLETED.hex(), _word(A), _word(42), _addr_word(USDC_B)],
          "data": "0x" + eth_abi.encode(["address", "uint256", "uint256"], [ARB_B, 4_997_500, 2_500]).hex()}
    parsed = completed_log(lg)
    assert parsed == CompletedLog(src_chain=A, nonce=42, token=USDC_B, recipient=ARB_B, received=4_997_500, fee=2_500)
    done = on_completed(t, parsed, tx_hash="0x" + "22" * 32, time_ns=5)
    assert (done.state, done.fee, done.received, done.dst_tx, done.completed_time_ns) == (
        State.COMPLETED, 2_500, 4_997_500, "0x" + "22" * 32, 5)
    for bad in (dataclasses.replace(parsed, nonce=41), dataclasses.replace(parsed, received=4_997_501),
                dataclasses.replace(parsed, token=USDC_A), dataclasses.replace(parsed, recipient=OWNER)):
        with pytest.raises(TransferError, match="does not match"):
            on_completed(t, bad, tx_hash="0x", time_ns=0)
    with pytest.raises(TransferError):
        completed_log(dict(lg, topics=["0x" + TRANSFER_SENT.hex()]))
    f = completion_filter(t)
    assert f["address"] == BRIDGE_B and f["fromBlock"] == hex(100) and f["topics"][2] == _word(42)  # type: ignore[index]
    with pytest.raises(TransferError):
        completion_filter(transfer(State.SENDING))


# --------------------------------------------------------------------------- records


def test_records_carry_the_transfer_and_survive_the_wire() -> None:
    t = transfer(State.COMPLETED, nonce=42, fee=2_500, received=4_997_500, gas_cost=123, src_tx="0x" + "11" * 32,
                 dst_tx="0x" + "22" * 32, sent_time_ns=1, completed_time_ns=2)
    rec = record(t)
    assert rec.state == BridgeTransferState.COMPLETED and rec.nonce == 42 and rec.src_token.chain_id == A
    assert rec.dst_token.chain_id == B and rec.recipient == bytes.fromhex("bb" * 20) and rec.src_gas_cost == 123
    assert rec.amount == rec.fee + rec.received
    back = decode(encode(Message(domain=3, tlvs=[rec]))).tlvs[0]
    assert isinstance(back, BridgeTransfer) and back == rec
    failed = record(transfer(State.FAILED, reason="withdrawToken reverted: " + "\u20ac" * 200))
    assert failed.nonce == NO_NONCE and failed.state == BridgeTransferState.FAILED
    assert failed.src_tx_hash == bytes(32) and len(failed.reason.encode()) <= 255
    for state in set(State) - set(PUBLISHED):
        with pytest.raises(TransferError):
            record(transfer(state))
