"""What a cross-chain leg did, settled from the chain after an executor restart, sans-IO.

Theory of operation
-------------------
A run cut by a restart (``kill -9``) leaves its transactions in the executor's SQLite store (``txs`` rows per
chain, written before they left the process, with the leg they belong to in ``meta["xc"]``). The restarted
executor first settles each chain's nonces as for every signal (``Executor.recover``: a mined row ``mined``,
a nonce someone else took or a row that never left ``dropped``, one still in flight re-broadcast and left
``pending``); then, for each cross-chain signal without an outcome, each of its leg transactions (the leg, or
one unwind attempt: every row with its nonce, the cancel included) is settled here from what its chain shows:

=========================================================  =====================================================
the chain shows                                             the leg is
=========================================================  =====================================================
a receipt of the leg's swap, status 1, with ``Swapped``     EXECUTED, ``amount_out`` = the event's, gas paid
a receipt of the swap, status 0 (or no ``Swapped``)        REVERTED, gas paid
a receipt of its cancel (0-value self-transfer)            NOT_INCLUDED (cancelled), the cancel's gas paid
no receipt; still pending; the head's timestamp <=          in flight: ask again at the next block
  the swap's on-chain ``deadline``
no receipt; still pending; head timestamp > ``deadline``    NOT_INCLUDED: every later block is later still, so
                                                            the swap can only revert ``DeadlinePassed``
no receipt; its nonce taken by another transaction          NOT_INCLUDED
never broadcast (or never signed: no row at all)            NOT_SENT
=========================================================  =====================================================

:func:`settle` is that table; ``execution/xchain/run.py`` (``CrossChainRunner.recover``) reads the facts and
carries the leg machine on from the answers (``specs/cross-chain-legs.md``, "After a restart").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from execution.calldata import decode_swapped
from execution.core import CANCEL_GAS, Receipt
from execution.store import TxRow
from execution.xchain.legs import Result


@dataclass(frozen=True, slots=True)
class TxFact:
    """One recorded transaction at a leg's nonce, after the chain's own recovery."""

    tx_hash: str
    status: str  # the store's: pending | mined | dropped | replaced
    public: bool  # it was broadcast
    cancel: bool  # the 0-value self-transfer that cancels the leg
    receipt: Receipt | None  # the chain's receipt of it, if any


@dataclass(frozen=True, slots=True)
class Settled:
    result: Result
    amount_out: int = 0  # realized: EXECUTED only (the Swapped event's amountOut)
    gas_wei: int = 0  # what the mined transaction at the leg's nonce cost (the leg, or its cancel)
    detail: str = ""
    receipt: Receipt | None = None  # the mined transaction's receipt


def settle(facts: Sequence[TxFact], *, deadline: int, head_timestamp: int, contract: str) -> Settled | None:
    """The leg's answer from its transactions' facts, or None while it may still land (see the module's table).
    ``facts`` empty: the leg was never signed."""
    for f in facts:
        r = f.receipt
        if r is None:
            continue
        gas = r.gas_used * r.effective_gas_price
        if f.cancel:
            return Settled(Result.NOT_INCLUDED, 0, gas, f"cancelled in block {r.block_number} (a 0-value "
                                                        "self-transfer took its nonce)", r)
        if r.status != 1:
            return Settled(Result.REVERTED, 0, gas, f"reverted on chain in block {r.block_number}", r)
        swapped = decode_swapped(r.logs, contract)
        if swapped is None:
            return Settled(Result.REVERTED, 0, gas, f"mined in block {r.block_number} without a Swapped event", r)
        return Settled(Result.EXECUTED, swapped.amount_out, gas, f"mined in block {r.block_number}", r)
    if any(f.status in ("pending", "mined") for f in facts):  # in flight ("mined" without a receipt: reorged)
        if head_timestamp > deadline:
            return Settled(Result.NOT_INCLUDED, detail=f"still pending when the chain passed its deadline {deadline} "
                                                       f"(head at {head_timestamp}): it can only revert")
        return None
    if any(f.public for f in facts):
        return Settled(Result.NOT_INCLUDED, detail="its nonce was taken by another transaction")
    why = "never broadcast before the restart" if facts else "never signed before the restart"
    return Settled(Result.NOT_SENT, detail=why)


@dataclass(frozen=True, slots=True)
class LegTx:
    """The rows of one leg transaction (the leg itself, or one unwind attempt) of a cross-chain signal."""

    chain_id: int  # the store's (0: the executor's own chain)
    kind: str  # "leg" | "unwind"
    leg: int
    attempt: int  # 0 for a leg, 1.. for unwinds
    deadline: int
    rows: tuple[TxRow, ...]

    def facts(self, receipts: dict[str, Receipt | None]) -> list[TxFact]:
        return [TxFact(r.tx_hash, r.status, r.public, r.gas_limit == CANCEL_GAS and i > 0, receipts.get(r.tx_hash))
                for i, r in enumerate(self.rows)]


def group(rows: Sequence[tuple[int, TxRow]]) -> tuple[dict[str, Any], list[LegTx]]:
    """One signal's rows (chain, row) -> its ``meta["xc"]`` (of its first leg) and its leg transactions, legs
    first then unwind attempts in order."""
    by: dict[tuple[int, str, int, int], list[TxRow]] = {}
    xc0: dict[str, Any] | None = None
    deadlines: dict[tuple[int, str, int, int], int] = {}
    for chain, row in rows:
        xc = json.loads(row.meta)["xc"]
        key = (chain, xc["kind"], xc["leg"], xc["attempt"])
        by.setdefault(key, []).append(row)
        deadlines[key] = xc["deadline"]
        if xc0 is None or xc["kind"] == "leg":
            xc0 = xc if xc0 is None or xc0["kind"] != "leg" else xc0
    assert xc0 is not None
    txs = [LegTx(chain_id=k[0], kind=k[1], leg=k[2], attempt=k[3], deadline=deadlines[k], rows=tuple(v))
           for k, v in by.items()]
    txs.sort(key=lambda t: (t.kind != "leg", t.leg, t.attempt))
    return xc0, txs


__all__ = ["LegTx", "Settled", "TxFact", "group", "settle"]
