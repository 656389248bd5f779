"""The rebalancer's trio shell: carries out :mod:`execution.rebalance.core`'s steps on the chains.

One :class:`Rebalancer` holds a :class:`~execution.chain.ChainGateway` per chain (the node, and the
chain's signer: the owner of its AlphaPulseArb), the store and the execution relay's producer. Each
pass (:meth:`Rebalancer.run_pass`):

1. drives every open transfer as far as the chain lets it (:meth:`drive`): a step with no transaction
   yet is simulated (``eth_estimateGas``; a revert there is the step's revert, nothing is sent), signed,
   **recorded**, then broadcast; a recorded transaction is settled from the chain (``core.settle``); a
   SENT transfer is looked up on its destination (``completed(src, nonce)``, then its
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
from chain.revert import revert_data
from chain.rpc import RpcError
from execution.calldata import decode_error
from execution.chain import ChainGateway
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
    sent_log,
    settle,
    tx_for,
)
from .store import RebalanceStore, TxRow

log = logging.getLogger("execution.rebalance")

GAS_MARGIN_BPS = 12_000  # gas limit = estimate x 1.2 + GAS_EXTRA
GAS_EXTRA = 20_000
SETTLE_WAIT_S = 30.0
DROPPED_RECHECK_S = 1.0  # how long one pass waits for a broadcast transaction's receipt before moving on


class Publisher(Protocol):
    """The execution relay's producer, as far as the rebalancer uses it (``relays.client.RelayProducer``)."""

    @property
    def last_source_seq(self) -> int: ...

    async def publish_payload(self, payload: bytes) -> int: ...


class StepRefused(Exception):
    """The node's simulation says the step's transaction would revert."""


@dataclass(frozen=True, slots=True)
class Chain:
    gateway: ChainGateway
    contract: str
    bridge: str


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
                 publisher: Publisher, *, clock: Callable[[], float] = time.time,
                 metrics: ProcessMetrics | None = None) -> None:
        self.config = config
        self.store = store
        self.chains = dict(chains)
        self.publisher = publisher
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
        ret = await self.chains[chain_id].gateway.rpc.call(
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

    async def check_owners(self) -> None:
        """Refuse to start unless each chain's signer owns its contract (withdrawToken is owner-only)."""
        for cid, chain in self.chains.items():
            owner = to_checksum_address(await self._call(cid, chain.contract, "owner()", out="address"))
            if owner != chain.gateway.address:
                raise TransferError(f"chain {cid}: the contract {chain.contract} is owned by {owner}, not by the "
                                    f"keystore's account {chain.gateway.address}")

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
                     dst_token=self.token(p.asset, p.dst_chain), owner=src.gateway.address, src_contract=src.contract,
                     dst_contract=dst.contract, src_bridge=src.bridge, dst_bridge=dst.bridge, amount=p.amount,
                     dst_from_block=await dst.gateway.block_number())
        self.store.create(t)
        log.info("rebalancer: transfer %d planned: %d of %s from chain %d to chain %d", t.transfer_id, t.amount,
                 t.asset, t.src_chain, t.dst_chain)
        return t

    async def commit(self, t: Transfer, *, tx: tuple[str, str] | None = None) -> Transfer:
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
        """Advance the current transaction step; None when it must wait for the chain."""
        row = self.store.live_tx(t.transfer_id, t.state.value)
        if row is None:
            try:
                row = await self._sign(t)
            except StepRefused as exc:
                return await self.commit(after_reverted(t, gas_cost=0, why=f"simulation: {exc}"))
            await self._broadcast(row)
        deadline = trio.current_time() + SETTLE_WAIT_S
        rebroadcast = False
        while True:
            outcome, receipt = await self._settle(row)
            if outcome is Settle.WAIT and trio.current_time() < deadline:
                await trio.sleep(0.1)
                continue
            if outcome is Settle.REBROADCAST and not rebroadcast:
                log.warning("rebalancer: transfer %d: %s (nonce %d) never reached chain %d; broadcasting it again",
                            t.transfer_id, row.tx_hash, row.nonce, row.chain_id)
                await self._broadcast(row)
                rebroadcast = True
                continue
            break
        if outcome in (Settle.WAIT, Settle.REBROADCAST):  # the next pass looks again
            return None
        if outcome is Settle.DROPPED:
            log.warning("rebalancer: transfer %d: nonce %d of %s was used by another transaction; signing the %s "
                        "step again", t.transfer_id, row.nonce, row.sender, t.state.value)
            self.store.set_tx_status(row.tx_hash, "dropped")
            return t
        assert receipt is not None
        gas = int(receipt["gasUsed"], 16) * int(receipt.get("effectiveGasPrice") or "0x0", 16)
        if outcome is Settle.REVERTED:
            return await self.commit(after_reverted(t, gas_cost=gas, why=f"transaction {row.tx_hash}"),
                                     tx=(row.tx_hash, "reverted"))
        chain = self.chains[t.src_chain]
        if t.state is State.WITHDRAWING:
            allowance = int(await self._call(t.src_chain, t.src_token, "allowance(address,address)", t.owner,
                                             chain.bridge))
            nxt = after_mined(t, gas_cost=gas, allowance=allowance)
        elif t.state is State.SENDING:
            block = await chain.gateway.rpc.call("eth_getBlockByNumber", [receipt["blockNumber"], False])
            nxt = after_mined(t, gas_cost=gas, sent=sent_log(receipt["logs"], chain.bridge),
                              sent_time_ns=int(block["timestamp"], 16) * 10**9, tx_hash=row.tx_hash)
        else:
            nxt = after_mined(t, gas_cost=gas)
        return await self.commit(nxt, tx=(row.tx_hash, "mined"))

    async def _sign(self, t: Transfer) -> TxRow:
        chain = self.chains[t.src_chain]
        gw = chain.gateway
        req = tx_for(t)
        call = {"from": gw.address, "to": req.to, "data": "0x" + req.data.hex()}
        try:
            estimate = int(await gw.rpc.call("eth_estimateGas", [call]), 16)
        except RpcError as exc:
            err = decode_error(revert_data(exc))
            raise StepRefused(str(err) if err is not None else exc.message) from None
        head = await gw.head()
        tip = self.config.tip_wei
        max_fee = min(2 * head["base_fee"] + tip, self.config.max_fee_per_gas)
        used = self.store.max_live_nonce(t.src_chain, gw.address)
        nonce = max(await gw.nonce("pending"), -1 if used is None else used + 1)
        tx = gw.sign(nonce=nonce, gas_limit=estimate * GAS_MARGIN_BPS // 10_000 + GAS_EXTRA, max_fee_per_gas=max_fee,
                     max_priority_fee_per_gas=min(tip, max_fee), data=req.data, to=req.to)
        row = TxRow(tx_hash="0x" + tx.tx_hash.hex(), transfer_id=t.transfer_id, step=t.state.value,
                    chain_id=t.src_chain, sender=gw.address, nonce=nonce, raw=tx.raw, status="pending")
        # written before it is broadcast: a kill after this line leaves a row the next start settles
        self.store.record_tx(tx_hash=row.tx_hash, transfer_id=row.transfer_id, step=row.step, chain_id=row.chain_id,
                             sender=row.sender, nonce=row.nonce, raw=row.raw)
        return row

    async def _broadcast(self, row: TxRow) -> None:
        try:
            await self.chains[row.chain_id].gateway.send_raw(row.raw)
        except RpcError as exc:  # nonce raced, underpriced...: settled from the chain on the next look
            log.warning("rebalancer: chain %d refused %s (nonce %d): %s", row.chain_id, row.tx_hash, row.nonce,
                        exc.message)

    async def _settle(self, row: TxRow) -> tuple[Settle, dict[str, Any] | None]:
        outcome, receipt = await self._look(row)
        if outcome is Settle.DROPPED:  # acting on it signs the step again: be sure, look again a moment later
            await trio.sleep(DROPPED_RECHECK_S)
            outcome, receipt = await self._look(row)
        return outcome, receipt

    async def _look(self, row: TxRow) -> tuple[Settle, dict[str, Any] | None]:
        gw = self.chains[row.chain_id].gateway
        # the nonce count first: a transaction mined after it is then seen by the two looks that follow
        mined = await gw.nonce("latest")
        known = await gw.rpc.call("eth_getTransactionByHash", [row.tx_hash]) is not None
        receipt = await gw.receipt(row.tx_hash)
        status = None if receipt is None else int(receipt["status"], 16)
        return settle(receipt_status=status, tx_nonce=row.nonce, mined_nonces=mined, known=known), receipt

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
        logs = await dst.gateway.rpc.call("eth_getLogs", [completion_filter(t)])
        if len(logs) != 1:
            raise TransferError(f"transfer {t.transfer_id}: chain {t.dst_chain} says completed but shows "
                                f"{len(logs)} TransferCompleted logs for (chain {t.src_chain}, nonce {t.nonce})")
        lg = logs[0]
        block = await dst.gateway.rpc.call("eth_getBlockByNumber", [lg["blockNumber"], False])
        return await self.commit(on_completed(t, completed_log(lg), tx_hash=str(lg["transactionHash"]),
                                              time_ns=int(block["timestamp"], 16) * 10**9))


__all__ = ["Chain", "Publisher", "Rebalancer", "StepRefused", "republish_unsent"]
