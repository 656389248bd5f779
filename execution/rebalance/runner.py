"""The rebalancer's trio shell: carries out :mod:`execution.rebalance.core`'s steps on the chains.

One :class:`Rebalancer` holds each chain's node (:class:`Chain`: reads only), the store, the execution
relay's producer and the **owner** (:class:`Owner`): the rebalancer signs nothing. Every transaction of a
step is the owner's (``withdrawToken`` is owner-only, and the tokens pass through the owner's account), and
the owner's key is the executor's, which is the one process assigning that account's nonces on each chain.
So a step's transaction is an ``OwnerTxRequest`` (type 47) the executor signs and broadcasts
(``execution/owner.py``) and answers with an ``OwnerTxAnswer`` (type 49). Each pass
(:meth:`Rebalancer.run_pass`):

1. drives every open transfer as far as the chain lets it (:meth:`drive`): a step with no transaction
   yet gets a request, **recorded** before it is published; the executor simulates it (a revert there is
   the step's revert, nothing is sent), signs and broadcasts it; a transaction is settled from the chain
   (``core.settle``); a SENT transfer is looked up on its destination (``completed(src, nonce)``, then its
   ``TransferCompleted`` log);
2. reads every (chain, asset) balance of the contracts and starts what ``core.plan`` decides.

A state change is committed with the record it publishes (``store.save``) before the record is
published, so a kill between the two republishes it at the next start (:func:`republish_unsent`).
Node failures (``RpcFailure``) end the pass with a warning; the next pass retries from the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import trio
from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address

from chain.abi import encode_call
from chain.rpc import HttpRpc
from protocol.execution import OwnerTxAnswer, OwnerTxRequest, OwnerTxStatus
from runtime.metrics import ProcessMetrics

from .config import RebalancerConfig
from .core import (
    PUBLISHED,
    TX_STATES,
    Plan,
    Settle,
    State,
    Transfer,
    TransferError,
    after_mined,
    after_reverted,
    completed_log,
    completion_filter,
    on_completed,
    plan,
    record,
    request_for,
    sent_log,
    settle,
)
from .store import RebalanceStore, TxRow

log = logging.getLogger("execution.rebalance")

SETTLE_WAIT_S = 30.0
DROPPED_RECHECK_S = 1.0  # how long one pass waits for a broadcast transaction's receipt before moving on


class Publisher(Protocol):
    """The execution relay's producer, as far as the rebalancer uses it (``relays.client.RelayProducer``)."""

    @property
    def last_source_seq(self) -> int: ...

    async def publish_payload(self, payload: bytes) -> int: ...


class Owner(Protocol):
    """Who sends the owner's transactions: the executor (``execution/owner.py``), asked through the execution
    relay in the process (:class:`RelayOwner`)."""

    async def ask(self, req: OwnerTxRequest) -> OwnerTxAnswer | None:
        """The answer to ``req``, None when none came in time (the request is asked again later)."""
        ...


class RelayOwner:
    """:class:`Owner` over the execution relay: a request is published with the producer, its answer is the
    ``OwnerTxAnswer`` for this rebalancer's ``source_id`` and the request's id (:meth:`on_answer`, fed by the
    process's consumer of the relay), awaited ``wait_s`` at most."""

    def __init__(self, producer: Publisher, source_id: int, *, wait_s: float = 10.0) -> None:
        self.producer, self.source_id, self.wait_s = producer, source_id, wait_s
        self._answers: dict[int, OwnerTxAnswer] = {}
        self._arrived = trio.Event()

    def on_answer(self, answer: OwnerTxAnswer) -> None:
        if answer.requester == self.source_id:
            self._answers[answer.request_id] = answer
            self._arrived.set()
            self._arrived = trio.Event()

    async def ask(self, req: OwnerTxRequest) -> OwnerTxAnswer | None:
        self._answers.pop(req.request_id, None)
        await self.producer.publish_payload(req.encode())
        with trio.move_on_after(self.wait_s):
            while req.request_id not in self._answers:
                await self._arrived.wait()
        return self._answers.pop(req.request_id, None)


@dataclass(frozen=True, slots=True)
class Chain:
    rpc: HttpRpc  # the chain's node: reads only
    contract: str
    bridge: str
    owner: str = ""  # the contract's owner (read at start, :meth:`Rebalancer.read_owners`)


async def republish_unsent(store: RebalanceStore, producer: Publisher) -> int:
    """Publish again every record a previous run committed but the relay never got (its source_seq is
    above the relay's ``Welcome.last_source_seq`` for us), each under its new sequence recorded first."""
    unsent = store.unsent_records(producer.last_source_seq)
    for transfer_id, state, seq, payload in unsent:
        store.set_record_seq(transfer_id, state, producer.last_source_seq + 1)
        await producer.publish_payload(payload)
        log.warning("rebalancer: the record of transfer %d (state %d, source_seq %d) never reached the relay; "
                    "published again", transfer_id, state, seq)
    return len(unsent)


class Rebalancer:
    def __init__(self, config: RebalancerConfig, store: RebalanceStore, chains: Mapping[int, Chain],
                 publisher: Publisher, owner: Owner, *, clock: Callable[[], float] = time.time,
                 metrics: ProcessMetrics | None = None) -> None:
        self.config = config
        self.store = store
        self.chains = dict(chains)
        self.publisher = publisher
        self.owner = owner
        self.clock = clock
        self.assets = config.asset_map()
        self.policy = config.policy()
        self._overdue_logged: set[int] = set()
        self._reached = self._open = None
        if metrics is not None:
            self._reached = metrics.counter("alphapulse_rebalancer_transfers_total",
                                            "Bridge transfers by the published state they reached.", ["state"])
            for state in PUBLISHED:
                self._reached.labels(state=state.value)
            self._open = metrics.gauge("alphapulse_rebalancer_transfers_open", "Transfers started and not ended.")

    # -- reading the chains ------------------------------------------------------------------------

    async def _call(self, chain_id: int, to: str, signature: str, *args: Any, out: str = "uint256") -> Any:
        ret = await self.chains[chain_id].rpc.call(
            "eth_call", [{"to": to, "data": "0x" + encode_call(signature, *args).hex()}, "latest"])
        return abi_decode([out], bytes.fromhex(str(ret).removeprefix("0x")))[0]

    def token(self, asset: str, chain_id: int) -> str:
        tid = self.assets.token(asset, chain_id)
        if tid is None:
            raise TransferError(f"asset {asset} has no token on chain {chain_id}")
        return to_checksum_address(tid.address)

    async def balances(self) -> dict[tuple[int, str], int]:
        """Every configured (chain, asset): the contract's balance of the chain's token."""
        out = {}
        for t in self.policy:
            chain = self.chains[t.chain_id]
            out[(t.chain_id, t.asset)] = int(await self._call(t.chain_id, self.token(t.asset, t.chain_id),
                                                              "balanceOf(address)", chain.contract))
        return out

    async def read_owners(self) -> None:
        """Each chain's contract's owner: the account whose transactions the executor sends for us (and that
        holds the tokens between a withdrawal and the bridge's send)."""
        for cid, chain in self.chains.items():
            owner = to_checksum_address(await self._call(cid, chain.contract, "owner()", out="address"))
            self.chains[cid] = Chain(chain.rpc, chain.contract, chain.bridge, owner)

    # -- one pass ----------------------------------------------------------------------------------

    async def run_pass(self) -> list[Transfer]:
        """Drive the open transfers, then start what the policy asks; returns the transfers started."""
        for t in self.store.transfers(open_only=True):
            await self.drive(t)
        busy = {t.asset for t in self.store.transfers(open_only=True)}
        started = []
        for p in plan(self.policy, await self.balances(), busy=busy, fee_bps=self.config.bridge_fee_bps):
            t = await self.start(p)
            started.append(t)
            await self.drive(t)
        if self._open is not None:
            self._open.set(len(self.store.transfers(open_only=True)))
        return started

    async def start(self, p: Plan) -> Transfer:
        src, dst = self.chains[p.src_chain], self.chains[p.dst_chain]
        t = Transfer(transfer_id=self.store.next_id(), asset=p.asset, state=State.PLANNED, src_chain=p.src_chain,
                     dst_chain=p.dst_chain, bridge=self.config.bridge_id, src_token=self.token(p.asset, p.src_chain),
                     dst_token=self.token(p.asset, p.dst_chain), owner=src.owner, src_contract=src.contract,
                     dst_contract=dst.contract, src_bridge=src.bridge, dst_bridge=dst.bridge, amount=p.amount,
                     dst_from_block=int(await dst.rpc.call("eth_blockNumber", []), 16))
        self.store.create(t)
        log.info("rebalancer: transfer %d planned: %d of %s from chain %d to chain %d", t.transfer_id, t.amount,
                 t.asset, t.src_chain, t.dst_chain)
        return t

    async def commit(self, t: Transfer, *, tx: tuple[int, str] | None = None) -> Transfer:
        """Store ``t`` (with the settled transaction's status); publish its record when its state has one."""
        state = PUBLISHED.get(t.state)
        if state is None:
            self.store.save(t, tx=tx)
            return t
        rec = record(t)
        seq = self.publisher.last_source_seq + 1
        self.store.save(t, tx=tx, record=(int(state), seq, rec.encode()))
        got = await self.publisher.publish_payload(rec.encode())
        if got != seq:  # someone published in between: keep the sequence the record really has
            self.store.set_record_seq(t.transfer_id, int(state), got)
        if self._reached is not None:
            self._reached.labels(state=t.state.value).inc()
        log.info("rebalancer: transfer %d %s (%s)", t.transfer_id, t.state.value.upper(),
                 t.reason or f"{t.amount} of {t.asset}, chain {t.src_chain} -> {t.dst_chain}")
        return t

    async def drive(self, t: Transfer) -> Transfer:
        """Take ``t`` as far as the chains let it now."""
        while True:
            if t.state is State.PLANNED:
                t = await self.commit(t.to(State.WITHDRAWING))
            elif t.state in TX_STATES:
                nxt = await self._step(t)
                if nxt is None:
                    return t
                t = nxt
            elif t.state is State.SENT:
                return await self._follow(t)
            else:
                return t

    # -- the source chain's steps ------------------------------------------------------------------

    async def _step(self, t: Transfer) -> Transfer | None:
        """Advance the current transaction step; None when it must wait for the chain or the executor."""
        row = self.store.live_tx(t.transfer_id, t.state.value)
        if row is None:  # recorded before it is asked: a kill after this line leaves a request asked again
            row = self.store.new_request(transfer_id=t.transfer_id, step=t.state.value, chain_id=t.src_chain)
        if row.status == "requested":
            answered = await self._ask(t, row)
            if not isinstance(answered, TxRow):
                return answered
            row = answered
        deadline = trio.current_time() + SETTLE_WAIT_S
        asked_again = False
        while True:
            outcome, receipt = await self._settle(row)
            if outcome is Settle.WAIT and trio.current_time() < deadline:
                await trio.sleep(0.1)
                continue
            if outcome is Settle.REBROADCAST and not asked_again:
                log.warning("rebalancer: transfer %d: %s (nonce %d) never reached chain %d; asking the executor "
                            "again (it broadcasts the same transaction)", t.transfer_id, row.tx_hash, row.nonce,
                            row.chain_id)
                again = await self._ask(t, row)
                if not isinstance(again, TxRow):
                    return again
                row, asked_again = again, True
                continue
            break
        if outcome in (Settle.WAIT, Settle.REBROADCAST):  # the next pass looks again
            return None
        if outcome is Settle.DROPPED:
            log.error("rebalancer: transfer %d: nonce %d of %s on chain %d was used by a transaction the executor "
                      "did not sign; asking for the %s step again", t.transfer_id, row.nonce, row.sender,
                      row.chain_id, t.state.value)
            self.store.set_status(row.request_id, "dropped")
            return t
        assert receipt is not None
        gas = int(receipt["gasUsed"], 16) * int(receipt.get("effectiveGasPrice") or "0x0", 16)
        if outcome is Settle.REVERTED:
            return await self.commit(after_reverted(t, gas_cost=gas, why=f"transaction {row.tx_hash}"),
                                     tx=(row.request_id, "reverted"))
        chain = self.chains[t.src_chain]
        if t.state is State.WITHDRAWING:
            allowance = int(await self._call(t.src_chain, t.src_token, "allowance(address,address)", t.owner,
                                             chain.bridge))
            nxt = after_mined(t, gas_cost=gas, allowance=allowance)
        elif t.state is State.SENDING:
            block = await chain.rpc.call("eth_getBlockByNumber", [receipt["blockNumber"], False])
            nxt = after_mined(t, gas_cost=gas, sent=sent_log(receipt["logs"], chain.bridge),
                              sent_time_ns=int(block["timestamp"], 16) * 10**9, tx_hash=row.tx_hash)
        else:
            nxt = after_mined(t, gas_cost=gas)
        return await self.commit(nxt, tx=(row.request_id, "mined"))

    async def _ask(self, t: Transfer, row: TxRow) -> TxRow | Transfer | None:
        """Ask the executor for the request ``row``: its transaction (SENT), the step's revert (REVERTS: the
        simulation), or None to ask again at the next pass (no answer; REFUSED: a new request then)."""
        answer = await self.owner.ask(request_for(t, row.request_id))
        if answer is None:
            log.warning("rebalancer: transfer %d: no answer from the executor to request %d (%s on chain %d); asking "
                        "again at the next pass", t.transfer_id, row.request_id, t.state.value, t.src_chain)
            return None
        reason = answer.reason
        if answer.status == OwnerTxStatus.SENT:
            return self.store.answered(row.request_id, tx_hash="0x" + answer.tx_hash.hex(),
                                       sender=to_checksum_address(answer.sender), nonce=answer.nonce)
        self.store.set_status(row.request_id, "refused")
        if answer.status == OwnerTxStatus.REVERTS:
            return await self.commit(after_reverted(t, gas_cost=0, why=f"simulation: {reason}"))
        log.error("rebalancer: transfer %d: the executor refused request %d (%s on chain %d): %s", t.transfer_id,
                  row.request_id, t.state.value, t.src_chain, reason)
        return None

    async def _settle(self, row: TxRow) -> tuple[Settle, dict[str, Any] | None]:
        outcome, receipt = await self._look(row)
        if outcome is Settle.DROPPED:  # acting on it asks for the step again: be sure, look again a moment later
            await trio.sleep(DROPPED_RECHECK_S)
            outcome, receipt = await self._look(row)
        return outcome, receipt

    async def _look(self, row: TxRow) -> tuple[Settle, dict[str, Any] | None]:
        rpc = self.chains[row.chain_id].rpc
        # the nonce count first: a transaction mined after it is then seen by the two looks that follow
        mined = int(await rpc.call("eth_getTransactionCount", [row.sender, "latest"]), 16)
        known = await rpc.call("eth_getTransactionByHash", [row.tx_hash]) is not None
        receipt = await rpc.call("eth_getTransactionReceipt", [row.tx_hash])
        status = None if not receipt else int(receipt["status"], 16)
        return settle(receipt_status=status, tx_nonce=row.nonce, mined_nonces=mined, known=known), receipt or None

    # -- the destination ---------------------------------------------------------------------------

    async def _follow(self, t: Transfer) -> Transfer:
        dst = self.chains[t.dst_chain]
        done = await self._call(t.dst_chain, dst.bridge, "completed(uint256,uint64)", t.src_chain, t.nonce, out="bool")
        if not done:
            late = self.clock() - t.sent_time_ns / 1e9
            if late > self.config.overdue_s and t.transfer_id not in self._overdue_logged:
                self._overdue_logged.add(t.transfer_id)
                log.error("rebalancer: transfer %d (chain %d nonce %d) sent %.0f s ago and not completed on chain %d",
                          t.transfer_id, t.src_chain, t.nonce, late, t.dst_chain)
            return t
        logs = await dst.rpc.call("eth_getLogs", [completion_filter(t)])
        if len(logs) != 1:
            raise TransferError(f"transfer {t.transfer_id}: chain {t.dst_chain} says completed but shows "
                                f"{len(logs)} TransferCompleted logs for (chain {t.src_chain}, nonce {t.nonce})")
        lg = logs[0]
        block = await dst.rpc.call("eth_getBlockByNumber", [lg["blockNumber"], False])
        return await self.commit(on_completed(t, completed_log(lg), tx_hash=str(lg["transactionHash"]),
                                              time_ns=int(block["timestamp"], 16) * 10**9))


__all__ = ["Chain", "Owner", "Publisher", "Rebalancer", "RelayOwner", "republish_unsent"]
