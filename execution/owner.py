"""The owner's transactions the rebalancer asks for, signed by the executor: the one signer and nonce authority
of the contracts' owner on every chain (``specs/rebalance.md``, "One signer per account").

Theory of operation
-------------------
``withdrawToken`` is owner-only and the owner is the executor's key, so the rebalancer, which moves inventory
between chains, needs transactions from that account. Two processes assigning nonces for one account race each
other (the node refuses one of them, or both sign the same nonce), so the rebalancer signs nothing: it publishes
an ``OwnerTxRequest`` (type 47) on the execution relay and the executor -- the only process holding the key --
serves it here, with the chain side's one :class:`~execution.store.NonceTracker`, alongside its signals::

    request (requester, request_id, chain, call, token, amount, dst_chain)
      -> from the configured rebalancer? a chain with a side and a bridge? (else REFUSED)
      -> served before (same requester and id, on that chain)? the same signed bytes broadcast again: SENT
      -> the call built from the executor's own configuration (:func:`owner_call`): tokens only ever move
         between the chain's contract, the owner, the chain's bridge and another chain's contract
      -> eth_estimateGas from the owner (a revert: REVERTS, nothing sent)
      -> next nonce (take), fees as a gap fill's (the tip policy's fixed tip on the newest head, capped),
         signed, RECORDED in the executor's store (``meta["owner"]``), broadcast, nonce consumed: SENT
    answer: ``OwnerTxAnswer`` (type 49) on the execution relay, with the nonce and hash

The requester follows the transaction on the chain itself (its receipt). The executor does not watch it: the
rows stay ``pending`` in its store until a restart settles them from the chain like any of its transactions
(``Executor.recover``: mined, or broadcast again). A node that says the nonce is used by another transaction
means something outside the executor signed with its key: one line, the request REFUSED, the tracker moved up
to the chain's pending count once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_utils import to_checksum_address

from chain.abi import encode_call
from chain.rpc import RpcError, RpcFailure
from execution.chain import NonceTaken, SimulationReverted
from execution.core import Head, Tx
from protocol.execution import NO_NONCE, OwnerCall, OwnerTxAnswer, OwnerTxRequest, OwnerTxStatus
from protocol.ids import int_to_address

if TYPE_CHECKING:
    from execution.executor import Executor

log = logging.getLogger("execution")

GAS_MARGIN_BPS = 12_000  # gas limit = estimate x 1.2 + GAS_EXTRA (the rebalancer's margin before)
GAS_EXTRA = 20_000


class NotAllowed(Exception):
    """A request the executor's configuration does not allow (REFUSED with this reason)."""


@dataclass(frozen=True, slots=True)
class OwnerCallTx:
    to: str
    data: bytes


def owner_call(req: OwnerTxRequest, *, owner: str, contract: str, bridge: str,
               contracts: dict[int, str]) -> OwnerCallTx:
    """The transaction ``req`` asks for, from the executor's own configuration: ``contract`` and ``bridge`` of
    the request's chain, ``contracts`` of every configured chain (the recipient of a bridge send)."""
    token = to_checksum_address(int_to_address(int.from_bytes(req.token, "big")))
    if req.amount <= 0:
        raise NotAllowed("amount must be positive")
    try:
        call = OwnerCall(req.call)
    except ValueError:
        raise NotAllowed(f"unknown call {req.call}") from None
    if call is OwnerCall.WITHDRAW:
        return OwnerCallTx(contract, encode_call("withdrawToken(address,address,uint256)", token, owner, req.amount))
    if not bridge:
        raise NotAllowed(f"chain {req.chain_id} has no bridge configured ([[cross_chain.chains]] bridge)")
    if call is OwnerCall.APPROVE:
        return OwnerCallTx(token, encode_call("approve(address,uint256)", bridge, req.amount))
    if call is OwnerCall.BRIDGE_SEND:
        dst = contracts.get(req.dst_chain)
        if dst is None or req.dst_chain == req.chain_id:
            raise NotAllowed(f"destination chain {req.dst_chain} is not another configured chain")
        return OwnerCallTx(bridge, encode_call("send(address,uint256,uint256,address)", token, req.amount,
                                               req.dst_chain, dst))
    return OwnerCallTx(token, encode_call("transfer(address,uint256)", contract, req.amount))


def request_meta(requester: int, req: OwnerTxRequest) -> str:
    """The executor store's ``meta`` of a request's transaction (:meth:`ExecutorStore.owner_tx` finds it by the
    ``owner`` prefix; ``request`` is the whole request, to tell a request asked again from an id reused)."""
    return json.dumps({"owner": [requester, req.request_id, req.call], "request": req.encode().hex()})


class OwnerDesk:
    """Serves ``OwnerTxRequest`` for the executor ``main`` on its chain sides (``main.xchain.sides``), one at a
    time: each request's nonce is taken, recorded and broadcast before the next is looked at."""

    def __init__(self, main: Executor) -> None:
        self.main = main

    def _answer(self, requester: int, req: OwnerTxRequest, status: OwnerTxStatus, *, sender: str = "",
                nonce: int = NO_NONCE, tx_hash: bytes = bytes(32), reason: str = "") -> OwnerTxAnswer:
        return OwnerTxAnswer(request_id=req.request_id, requester=requester, chain_id=req.chain_id, status=int(status),
                             nonce=nonce, tx_hash=tx_hash,
                             sender=bytes.fromhex(sender[2:]) if sender else bytes(20),
                             reason=reason.encode()[:255].decode(errors="ignore"))

    async def serve(self, requester: int, req: OwnerTxRequest) -> OwnerTxAnswer:
        """Carry out one request and return its answer (the caller publishes it).

        FAILURE BOUNDARY, as ``Executor.handle``'s: an unexpected error while serving a request is its REFUSED
        answer with the reason (a nonce it took and did not send given back or filled), never the executor's
        end."""
        try:
            return await self._serve(requester, req)
        except Exception as exc:  # noqa: BLE001 - the marked boundary: error -> REFUSED with the reason
            reason = self.main.failure_reason(exc)
            if not isinstance(exc, (RpcFailure, OSError)):
                log.exception("executor: owner request %d from source %d failed", req.request_id, requester)
            side = self.main.xchain.sides.get(req.chain_id)
            if side is not None:
                await side._release_nonces(_Holder())
            return self._refused(requester, req, f"owner request {req.request_id} from source {requester}",
                                 f"not sent: {reason}")

    async def _serve(self, requester: int, req: OwnerTxRequest) -> OwnerTxAnswer:
        x = self.main.config.cross_chain
        side = self.main.xchain.sides.get(req.chain_id)
        what = f"owner request {req.request_id} from source {requester} ({_name(req.call)} on chain {req.chain_id})"
        if x is None or side is None:
            return self._refused(requester, req, what, f"chain {req.chain_id} is not one of the executor's chains")
        if not x.rebalancer_source_id or requester != x.rebalancer_source_id:
            return self._refused(requester, req, what, f"source {requester} is not the configured rebalancer "
                                                       "([cross_chain] rebalancer_source_id)")
        store, chain = side.store, side.chain
        sender = chain.address
        done = store.owner_tx(requester, req.request_id)
        if done is not None and json.loads(done.meta).get("request") != req.encode().hex():
            return self._refused(requester, req, what, "this request id was served before for another request")
        if done is not None:  # asked again (the rebalancer restarted, or never saw the answer): same bytes
            try:
                await chain.send_raw(done.raw)
            except RpcError as exc:  # mined or replaced: its nonce is used; the requester settles from the chain
                log.info("executor: %s: %s again: %s", what, done.tx_hash, exc.message)
            return self._answer(requester, req, OwnerTxStatus.SENT, sender=sender, nonce=done.nonce,
                                tx_hash=bytes.fromhex(done.tx_hash[2:]))
        c = x.chain(req.chain_id)
        assert c is not None
        try:
            call = owner_call(req, owner=sender, contract=c.contract, bridge=c.bridge,
                              contracts={o.chain_id: o.contract for o in x.chains})
        except NotAllowed as exc:
            return self._refused(requester, req, what, str(exc))
        try:
            estimate = await chain.estimate_gas(call.data, to=call.to)
        except SimulationReverted as exc:
            log.info("executor: %s reverts in simulation: %s", what, exc)
            return self._answer(requester, req, OwnerTxStatus.REVERTS, sender=sender, reason=str(exc))
        head = Head.from_rpc(await chain.head())  # this chain's own (a side's core sees no market data of it)
        nonces = side.core.nonces
        nonce = nonces.take(0)
        fees = side.core.fill_sign(nonce, head)  # the fees a gap fill pays: the tip policy's, capped
        tx = Tx.of(chain.sign(nonce=nonce, gas_limit=estimate * GAS_MARGIN_BPS // 10_000 + GAS_EXTRA, data=call.data,
                              to=call.to, max_fee_per_gas=fees.max_fee_per_gas,
                              max_priority_fee_per_gas=fees.max_priority_fee_per_gas))
        # recorded before it leaves: a restart settles it like every transaction of ours
        store.record_tx(tx_hash=tx.hash_hex, signal_id=0, nonce=nonce, raw=tx.raw, max_fee=tx.max_fee_per_gas,
                        tip=tx.max_priority_fee_per_gas, gas_limit=tx.gas_limit, meta=request_meta(requester, req))
        try:
            await chain.send_raw(tx.raw)
        except NonceTaken as exc:
            store.settle_nonce(nonce, None)
            nonces.consumed(nonce)
            nonces.resync(await chain.nonce("pending"))
            log.error("executor: chain %d: nonce %d of %s is used by a transaction the executor did not sign (%s): "
                      "%s refused, next nonce %d", req.chain_id, nonce, sender, exc.message, what, nonces.next)
            return self._answer(requester, req, OwnerTxStatus.REFUSED, sender=sender,
                                reason=f"nonce {nonce} used outside the executor: {exc.message}")
        except (RpcFailure, OSError):
            store.settle_nonce(nonce, None)
            raise  # the boundary in serve: the nonce given back or filled, REFUSED
        store.mark_public(tx.hash_hex)
        nonces.consumed(nonce)
        log.info("executor: %s sent: %s, nonce %d", what, tx.hash_hex, nonce)
        return self._answer(requester, req, OwnerTxStatus.SENT, sender=sender, nonce=nonce, tx_hash=tx.tx_hash)

    def _refused(self, requester: int, req: OwnerTxRequest, what: str, reason: str) -> OwnerTxAnswer:
        log.warning("executor: %s refused: %s", what, reason)
        return self._answer(requester, req, OwnerTxStatus.REFUSED, reason=reason)


class _Holder:
    """What :meth:`Executor._release_nonces` reads of a run: the nonces a request takes are held by signal 0."""

    signal_id = 0


def _name(call: int) -> str:
    try:
        return OwnerCall(call).name
    except ValueError:
        return str(call)


__all__ = ["NotAllowed", "OwnerCallTx", "OwnerDesk", "owner_call", "request_meta"]
