"""The rebalancer's sans-IO core: when to move inventory, and the life of one transfer.

Theory of operation
-------------------
Inventory for cross-chain trades lives in each chain's AlphaPulseArb contract. The operator sets, per
(chain, asset), a **floor** and a **target** (``[[targets]]``). :func:`plan` looks at every
contract's balance and, for an asset with no transfer open, picks the chain furthest below its floor
and the chain with the largest **surplus** (balance above its own target) and moves
``min(deficit, surplus)`` -- grossed up by the bridge's fee so the destination lands on its target --
when that is at least the asset's ``min_transfer``. A donor never goes below its own target, and one
asset has at most one transfer open at a time, so nothing is counted twice while tokens are in flight.

A transfer (:class:`Transfer`) is a small state machine whose every transaction is the owner's, asked of the
executor (the owner account's one signer: :func:`request_for`, ``execution/owner.py``) with the request recorded
before it is published (``store.py``), and whose every step is settled from the chain alone::

    PLANNED -> WITHDRAWING -> [APPROVING] -> SENDING -> SENT -> COMPLETED
                   |              |            |
                   v              v            v
                 FAILED       RETURNING ---> REFUSED (the bridge refused the send) / FAILED

* WITHDRAWING: ``AlphaPulseArb.withdrawToken(token, owner, amount)`` on the source chain;
* APPROVING: ``token.approve(bridge, amount)`` from the owner (skipped when the allowance covers it);
* SENDING: ``DevBridge.send(token, amount, dstChainId, destination contract)``; its ``TransferSent``
  log gives the bridge's nonce: SENT is published;
* SENT: the destination bridge's ``completed(src, nonce)`` and ``TransferCompleted`` log give the fee
  and the amount received: COMPLETED is published;
* RETURNING: the owner sends the tokens back to the source contract after an approve or a send that
  reverted, so nothing is left in the hot account; the transfer then ends REFUSED (the send was
  refused) or FAILED.

:data:`ALLOWED` is the table of transitions; any other is a :class:`TransferError` (a bug). A step's
transaction is settled by :func:`settle` from what the chain shows (the crash-recovery table of
``specs/rebalance.md``): its receipt (mined or reverted), the node knowing it (in its pool: wait), the
account's mined nonce count (a nonce used by a transaction the node does not know as ours: ours was
dropped, ask for the step again) -- or nothing at all (it never left: the same request again, which the executor
answers by broadcasting the same signed bytes). A step is therefore never done twice: it is asked for again only
when the chain shows its transaction did not and cannot execute.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from eth_utils import keccak

from protocol.execution import NO_NONCE, BridgeTransfer, BridgeTransferState, OwnerCall, OwnerTxRequest
from protocol.ids import TokenId, address_to_int

BPS = 10_000

TRANSFER_SENT = keccak(text="TransferSent(uint64,uint256,address,address,address,uint256)")
TRANSFER_COMPLETED = keccak(text="TransferCompleted(uint256,uint64,address,address,uint256,uint256)")


class TransferError(RuntimeError):
    """An impossible transition or an inconsistent chain answer: a bug or a wrong configuration."""


class State(enum.Enum):
    PLANNED = "planned"
    WITHDRAWING = "withdrawing"
    APPROVING = "approving"
    SENDING = "sending"
    SENT = "sent"
    RETURNING = "returning"
    COMPLETED = "completed"
    REFUSED = "refused"
    FAILED = "failed"


#: the states in which one transaction of the owner's is the step (settled from the chain)
TX_STATES = frozenset({State.WITHDRAWING, State.APPROVING, State.SENDING, State.RETURNING})
TERMINAL = frozenset({State.COMPLETED, State.REFUSED, State.FAILED})
ALLOWED: dict[State, frozenset[State]] = {
    State.PLANNED: frozenset({State.WITHDRAWING, State.FAILED}),
    State.WITHDRAWING: frozenset({State.APPROVING, State.SENDING, State.FAILED}),
    State.APPROVING: frozenset({State.SENDING, State.RETURNING}),
    State.SENDING: frozenset({State.SENT, State.RETURNING}),
    State.RETURNING: frozenset({State.REFUSED, State.FAILED}),
    State.SENT: frozenset({State.COMPLETED}),
    State.COMPLETED: frozenset(),
    State.REFUSED: frozenset(),
    State.FAILED: frozenset(),
}
#: the record published on entering a state (the others are internal)
PUBLISHED: dict[State, BridgeTransferState] = {
    State.SENT: BridgeTransferState.SENT,
    State.COMPLETED: BridgeTransferState.COMPLETED,
    State.REFUSED: BridgeTransferState.REFUSED,
    State.FAILED: BridgeTransferState.FAILED,
}


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where one asset's inventory on one chain should be: refilled to ``target`` once below ``floor``."""

    asset: str
    chain_id: int
    floor: int
    target: int
    min_transfer: int = 1  # the smallest transfer into this chain worth its gas

    def __post_init__(self) -> None:
        if not 0 <= self.floor <= self.target:
            raise ValueError(f"{self.asset} on chain {self.chain_id}: want 0 <= floor <= target")


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    asset: str
    src_chain: int
    dst_chain: int
    amount: int


def gross_up(amount: int, fee_bps: int) -> int:
    """What to send so that ``amount`` arrives after a fee of ``fee_bps`` rounded up: the least ``x`` with
    ``x - ceil(x * fee_bps / 10^4) >= amount``."""
    if fee_bps >= BPS:
        raise ValueError("a bridge fee of 100 % or more leaves nothing to receive")
    x = -(-amount * BPS // (BPS - fee_bps))
    while x - -(-x * fee_bps // BPS) < amount:  # the ceiling of the fee may cost one unit more
        x += 1
    return x


def plan(targets: Iterable[Target], balances: Mapping[tuple[int, str], int], *, busy: Iterable[str] = (),
         fee_bps: int = 0) -> list[Plan]:
    """The transfers to start now, at most one per asset (see the module docstring).

    ``balances`` maps (chain id, asset) to the contract's balance in that chain's token (a chain missing
    from it is left out); ``busy`` are the assets with a transfer open."""
    by_asset: dict[str, list[Target]] = {}
    for t in targets:
        by_asset.setdefault(t.asset, []).append(t)
    busy_set = set(busy)
    out = []
    for asset in sorted(by_asset):
        if asset in busy_set:
            continue
        rows = [(t, balances[(t.chain_id, asset)]) for t in by_asset[asset] if (t.chain_id, asset) in balances]
        needy = [(t.target - bal, t.chain_id, t) for t, bal in rows if bal < t.floor]
        if not needy:
            continue
        deficit, dst, dst_target = max(needy, key=lambda n: (n[0], n[1]))
        donors = [(bal - t.target, t.chain_id) for t, bal in rows if t.chain_id != dst and bal > t.target]
        if not donors:
            continue
        surplus, src = max(donors)
        amount = min(gross_up(deficit, fee_bps), surplus)
        if amount <= 0 or amount < dst_target.min_transfer:
            continue
        out.append(Plan(asset=asset, src_chain=src, dst_chain=dst, amount=amount))
    return out


# --------------------------------------------------------------------------- one transfer


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """One transfer as the store keeps it; never mutated (:meth:`to` derives the next one)."""

    transfer_id: int
    asset: str
    state: State
    src_chain: int
    dst_chain: int
    bridge: int  # the bridge id (BridgeTransfer.bridge)
    src_token: str  # checksummed addresses
    dst_token: str
    owner: str  # the source chain's signer (the contract's owner), who holds the tokens between steps
    src_contract: str
    dst_contract: str  # the recipient
    src_bridge: str
    dst_bridge: str
    amount: int
    dst_from_block: int  # the destination's head when planned: its completion cannot be earlier
    nonce: int | None = None  # the bridge's, once sent
    fee: int = 0
    received: int = 0
    gas_cost: int = 0  # wei of the source chain's gas token, every mined step of ours
    src_tx: str = ""
    dst_tx: str = ""
    sent_time_ns: int = 0
    completed_time_ns: int = 0
    end: str = ""  # RETURNING: the state it ends in (refused / failed)
    reason: str = ""

    def to(self, state: State, **changes: object) -> Transfer:
        if state not in ALLOWED[self.state]:
            raise TransferError(f"transfer {self.transfer_id}: {self.state.value} -> {state.value} is not allowed")
        return replace(self, state=state, **changes)  # type: ignore[arg-type]

    @property
    def open(self) -> bool:
        return self.state not in TERMINAL


#: the owner's call each transaction step asks the executor for (``execution/owner.py`` builds it)
STEP_CALLS: dict[State, OwnerCall] = {
    State.WITHDRAWING: OwnerCall.WITHDRAW,  # AlphaPulseArb.withdrawToken(token, owner, amount)
    State.APPROVING: OwnerCall.APPROVE,  # token.approve(bridge, amount)
    State.SENDING: OwnerCall.BRIDGE_SEND,  # bridge.send(token, amount, dstChainId, destination contract)
    State.RETURNING: OwnerCall.RETURN,  # token.transfer(contract, amount)
}


def request_for(t: Transfer, request_id: int) -> OwnerTxRequest:
    """The request for the transaction of ``t``'s current step (one of :data:`TX_STATES`), on its source chain."""
    call = STEP_CALLS.get(t.state)
    if call is None:
        raise TransferError(f"transfer {t.transfer_id}: no transaction in state {t.state.value}")
    return OwnerTxRequest(request_id=request_id, chain_id=t.src_chain, call=int(call),
                          token=address_to_int(t.src_token).to_bytes(20, "big"), amount=t.amount,
                          dst_chain=t.dst_chain if call is OwnerCall.BRIDGE_SEND else 0)


class Settle(enum.Enum):
    MINED = "mined"  # a receipt with status 1
    REVERTED = "reverted"  # a receipt with status 0
    WAIT = "wait"  # the node knows it (in its pool, or mined and its receipt not served yet)
    DROPPED = "dropped"  # unknown to the node and its nonce is used: another transaction took it; ask again
    REBROADCAST = "rebroadcast"  # unknown to the node and its nonce free: it never left; the executor sends the
    # same bytes again (the same request asked again)


def settle(*, receipt_status: int | None, tx_nonce: int, mined_nonces: int, known: bool) -> Settle:
    """What became of a recorded transaction, from the chain alone: its receipt, whether the node knows
    it (``eth_getTransactionByHash``), and the account's transaction count at the latest block.

    A transaction is only DROPPED when the node does not know it *and* its nonce is used: a node that has
    just mined it may count the nonce before it serves the receipt, and signing the step again then would
    do it twice (the shell also looks twice, a moment apart, before it acts on DROPPED)."""
    if receipt_status is not None:
        return Settle.MINED if receipt_status == 1 else Settle.REVERTED
    if known:
        return Settle.WAIT
    return Settle.DROPPED if tx_nonce < mined_nonces else Settle.REBROADCAST


def after_mined(t: Transfer, *, gas_cost: int, allowance: int = 0, sent: SentLog | None = None,
                sent_time_ns: int = 0, tx_hash: str = "") -> Transfer:
    """The next state once the current step's transaction is mined (``allowance``: the owner's allowance
    to the bridge after a withdraw; ``sent``: the send's TransferSent log)."""
    gas = t.gas_cost + gas_cost
    if t.state is State.WITHDRAWING:
        return t.to(State.SENDING if allowance >= t.amount else State.APPROVING, gas_cost=gas)
    if t.state is State.APPROVING:
        return t.to(State.SENDING, gas_cost=gas)
    if t.state is State.SENDING:
        if sent is None:
            raise TransferError(f"transfer {t.transfer_id}: the send {tx_hash} is mined without a TransferSent log")
        if sent.amount != t.amount or sent.dst_chain != t.dst_chain or sent.recipient.lower() != t.dst_contract.lower():
            raise TransferError(f"transfer {t.transfer_id}: TransferSent {sent} is not the transfer asked for")
        return t.to(State.SENT, gas_cost=gas, nonce=sent.nonce, src_tx=tx_hash, sent_time_ns=sent_time_ns)
    if t.state is State.RETURNING:
        return t.to(State(t.end), gas_cost=gas)
    raise TransferError(f"transfer {t.transfer_id}: nothing is mined in state {t.state.value}")


def after_reverted(t: Transfer, *, gas_cost: int, why: str) -> Transfer:
    """The next state when the current step reverted (or its simulation said it would: ``gas_cost`` 0)."""
    gas = t.gas_cost + gas_cost
    if t.state is State.WITHDRAWING:
        return t.to(State.FAILED, gas_cost=gas, reason=f"withdrawToken reverted: {why}")
    if t.state is State.APPROVING:
        return t.to(State.RETURNING, gas_cost=gas, end=State.FAILED.value, reason=f"approve reverted: {why}")
    if t.state is State.SENDING:
        return t.to(State.RETURNING, gas_cost=gas, end=State.REFUSED.value, reason=f"the bridge refused the send: {why}")
    if t.state is State.RETURNING:
        return t.to(State.FAILED, gas_cost=gas,
                    reason=f"{t.reason}; returning the tokens to the contract reverted ({why}): they are in {t.owner}")
    raise TransferError(f"transfer {t.transfer_id}: nothing reverts in state {t.state.value}")


@dataclass(frozen=True, slots=True)
class SentLog:
    nonce: int
    dst_chain: int
    token: str
    sender: str
    recipient: str
    amount: int


@dataclass(frozen=True, slots=True)
class CompletedLog:
    src_chain: int
    nonce: int
    token: str
    recipient: str
    received: int
    fee: int


def _word(data: bytes, i: int) -> int:
    return int.from_bytes(data[32 * i:32 * i + 32], "big")


def _addr(word: int) -> str:
    return "0x" + word.to_bytes(20, "big").hex()


def _topics(log: Mapping[str, object]) -> list[bytes]:
    return [bytes.fromhex(str(t).removeprefix("0x")) for t in log["topics"]]  # type: ignore[attr-defined]


def _data(log: Mapping[str, object]) -> bytes:
    return bytes.fromhex(str(log["data"]).removeprefix("0x"))


def sent_log(logs: Sequence[Mapping[str, object]], bridge: str) -> SentLog | None:
    """The ``TransferSent`` among a receipt's logs emitted by ``bridge``."""
    for lg in logs:
        topics = _topics(lg)
        if str(lg["address"]).lower() == bridge.lower() and topics and topics[0] == TRANSFER_SENT:
            data = _data(lg)
            return SentLog(nonce=int.from_bytes(topics[1], "big"), dst_chain=int.from_bytes(topics[2], "big"),
                           token=_addr(int.from_bytes(topics[3], "big")), sender=_addr(_word(data, 0)),
                           recipient=_addr(_word(data, 1)), amount=_word(data, 2))
    return None


def completed_log(log: Mapping[str, object]) -> CompletedLog:
    topics, data = _topics(log), _data(log)
    if not topics or topics[0] != TRANSFER_COMPLETED:
        raise TransferError("not a TransferCompleted log")
    return CompletedLog(src_chain=int.from_bytes(topics[1], "big"), nonce=int.from_bytes(topics[2], "big"),
                        token=_addr(int.from_bytes(topics[3], "big")), recipient=_addr(_word(data, 0)),
                        received=_word(data, 1), fee=_word(data, 2))


def completion_filter(t: Transfer) -> dict[str, object]:
    """``eth_getLogs`` parameters of ``t``'s TransferCompleted on the destination."""
    if t.nonce is None:
        raise TransferError(f"transfer {t.transfer_id} has no bridge nonce yet")
    return {"address": t.dst_bridge, "fromBlock": hex(t.dst_from_block), "toBlock": "latest",
            "topics": ["0x" + TRANSFER_COMPLETED.hex(), "0x" + t.src_chain.to_bytes(32, "big").hex(),
                       "0x" + t.nonce.to_bytes(32, "big").hex()]}


def on_completed(t: Transfer, log: CompletedLog, *, tx_hash: str, time_ns: int) -> Transfer:
    """SENT -> COMPLETED from the destination's TransferCompleted, checked against the transfer."""
    if (log.src_chain, log.nonce) != (t.src_chain, t.nonce) or log.token.lower() != t.dst_token.lower() \
            or log.recipient.lower() != t.dst_contract.lower() or log.received + log.fee != t.amount:
        raise TransferError(f"transfer {t.transfer_id}: TransferCompleted {log} does not match it "
                            f"(amount {t.amount} of {t.dst_token} to {t.dst_contract})")
    return t.to(State.COMPLETED, fee=log.fee, received=log.received, dst_tx=tx_hash, completed_time_ns=time_ns)


def _h32(tx: str) -> bytes:
    return bytes.fromhex(tx.removeprefix("0x")) if tx else bytes(32)


def record(t: Transfer) -> BridgeTransfer:
    """The protocol record of ``t`` in its (published) state."""
    state = PUBLISHED.get(t.state)
    if state is None:
        raise TransferError(f"transfer {t.transfer_id}: nothing is published in state {t.state.value}")
    return BridgeTransfer(
        transfer_id=t.transfer_id, state=int(state), src_chain=t.src_chain, dst_chain=t.dst_chain, bridge=t.bridge,
        nonce=NO_NONCE if t.nonce is None else t.nonce, src_token=TokenId.of(t.src_chain, t.src_token),
        dst_token=TokenId.of(t.dst_chain, t.dst_token),
        recipient=address_to_int(t.dst_contract).to_bytes(20, "big"), amount=t.amount, fee=t.fee,
        received=t.received, src_gas_cost=t.gas_cost, src_tx_hash=_h32(t.src_tx), dst_tx_hash=_h32(t.dst_tx),
        sent_time_ns=t.sent_time_ns, completed_time_ns=t.completed_time_ns, reason=t.reason.encode()[:255].decode(errors="ignore"))


__all__ = [
    "ALLOWED", "BPS", "PUBLISHED", "TERMINAL", "TX_STATES", "CompletedLog", "Plan", "SentLog", "Settle", "State",
    "STEP_CALLS", "Target", "Transfer", "TransferError", "after_mined", "after_reverted", "completed_log",
    "completion_filter", "gross_up", "on_completed", "plan", "record", "request_for", "sent_log", "settle",
]
