"""What must survive a ``kill -9`` of the rebalancer: one SQLite file (``runtime.files.open_sqlite``:
0600 in a 0700 directory, WAL, ``synchronous=FULL`` -- a transfer moves real inventory and is rare, so
each commit may cost a disk flush).

* ``transfers``: each transfer (``core.Transfer`` as JSON, its state and asset beside it). A state
  change is one SQLite transaction together with whatever it depends on (the settled transaction's
  status, the record to publish).
* ``requests``: every transaction the rebalancer asked the executor for (``OwnerTxRequest``: the executor is
  the owner account's one signer, ``execution/owner.py``), **written before the request is published**, then
  the executor's answer (hash, nonce, sender): after a crash a request without an answer is asked again (the
  executor answers a request it served with the same transaction), and a step's transaction is settled from
  the chain with it (``core.settle``).
* ``records``: each ``BridgeTransfer`` record with the ``source_seq`` it is published with, written
  *before* it is published (in the same transaction as the state it reports): the next start publishes
  again exactly those the relay's ``Welcome.last_source_seq`` says it never got -- the executor's
  ``results`` rule (``execution/store.py``).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runtime.files import open_sqlite

from .core import State, Transfer

SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    transfer_id INTEGER PRIMARY KEY AUTOINCREMENT,
    asset       TEXT NOT NULL,
    state       TEXT NOT NULL,
    doc         TEXT NOT NULL,          -- core.Transfer as JSON (integers exact)
    created_ns  INTEGER NOT NULL,
    updated_ns  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    request_id  INTEGER PRIMARY KEY AUTOINCREMENT,  -- OwnerTxRequest.request_id
    transfer_id INTEGER NOT NULL,
    step        TEXT NOT NULL,          -- the transfer's state the transaction is the step of
    chain_id    INTEGER NOT NULL,
    tx_hash     TEXT NOT NULL,          -- the executor's answer; '' until it answered SENT
    sender      TEXT NOT NULL,          -- the owner that signed it; '' until then
    nonce       INTEGER NOT NULL,       -- -1 until then
    status      TEXT NOT NULL CHECK (status IN ('requested', 'pending', 'mined', 'reverted', 'dropped', 'refused')),
    created_ns  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_transfer ON requests(transfer_id, status);
CREATE TABLE IF NOT EXISTS records (
    transfer_id INTEGER NOT NULL,
    state       INTEGER NOT NULL,       -- BridgeTransferState
    source_seq  INTEGER NOT NULL,
    tlv         BLOB NOT NULL,
    PRIMARY KEY (transfer_id, state)
);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class TxRow:
    """One request for a step's transaction and, once the executor answered SENT, the transaction."""

    request_id: int
    transfer_id: int
    step: str
    chain_id: int
    tx_hash: str  # '' while requested
    sender: str
    nonce: int  # -1 while requested
    status: str  # requested | pending | mined | reverted | dropped | refused

_ROW = "SELECT request_id, transfer_id, step, chain_id, tx_hash, sender, nonce, status FROM requests"


def _row(r: tuple[Any, ...]) -> TxRow:
    return TxRow(request_id=r[0], transfer_id=r[1], step=r[2], chain_id=r[3], tx_hash=r[4], sender=r[5], nonce=r[6],
                 status=r[7])


def _doc(t: Transfer) -> str:
    d = asdict(t)
    d["state"] = t.state.value
    return json.dumps(d, sort_keys=True)


def _transfer(doc: str) -> Transfer:
    d = json.loads(doc)
    d["state"] = State(d["state"])
    return Transfer(**d)


class RebalanceStore:
    def __init__(self, path: str | Path) -> None:
        self.db = open_sqlite(path, SCHEMA)
        # request ids are the executor's key to a request it served (it answers one asked again with the same
        # transaction): a new state file must not reuse an old one's, so its ids start at a random point
        if self.db.execute("SELECT 1 FROM sqlite_sequence WHERE name = 'requests'").fetchone() is None:
            self.db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('requests', ?)",
                            (secrets.randbits(40) << 16,))
        old = self.db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='txs'").fetchone()
        if old is not None and self.db.execute("SELECT 1 FROM txs WHERE status='pending' LIMIT 1").fetchone():
            self.db.close()
            raise ValueError(f"{path}: transactions the rebalancer signed itself are still pending (a state file of "
                             "the version that signed with the owner's key): settle them with that version first")

    def close(self) -> None:
        self.db.close()

    # --- transfers --------------------------------------------------------------------------------

    def next_id(self) -> int:
        r = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'transfers'").fetchone()
        return 1 if r is None else int(r[0]) + 1

    def create(self, t: Transfer) -> Transfer:
        """Insert a new (PLANNED) transfer; its id is the one given (``next_id``)."""
        now = time.time_ns()
        self.db.execute("INSERT INTO transfers VALUES (?, ?, ?, ?, ?, ?)",
                        (t.transfer_id, t.asset, t.state.value, _doc(t), now, now))
        return t

    def save(self, t: Transfer, *, tx: tuple[int, str] | None = None,
             record: tuple[int, int, bytes] | None = None) -> None:
        """The transfer's new state, with the settled request's ``(request_id, status)`` and the record to
        publish ``(state, source_seq, encoded tlv)``: one transaction."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("UPDATE transfers SET state = ?, doc = ?, updated_ns = ? WHERE transfer_id = ?",
                            (t.state.value, _doc(t), time.time_ns(), t.transfer_id))
            if tx is not None:
                self.db.execute("UPDATE requests SET status = ? WHERE request_id = ?", (tx[1], tx[0]))
            if record is not None:
                self.db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", (t.transfer_id, *record))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def get(self, transfer_id: int) -> Transfer | None:
        r = self.db.execute("SELECT doc FROM transfers WHERE transfer_id = ?", (transfer_id,)).fetchone()
        return None if r is None else _transfer(r[0])

    def transfers(self, *, open_only: bool = False) -> list[Transfer]:
        q = "SELECT doc FROM transfers"
        if open_only:
            q += " WHERE state NOT IN ('completed', 'refused', 'failed')"
        return [_transfer(r[0]) for r in self.db.execute(q + " ORDER BY transfer_id")]

    # --- requests for the owner's transactions ---------------------------------------------------

    def new_request(self, *, transfer_id: int, step: str, chain_id: int) -> TxRow:
        """A request for the step's transaction, written before it is published: its id is the request's."""
        cur = self.db.execute("INSERT INTO requests (transfer_id, step, chain_id, tx_hash, sender, nonce, status, "
                              "created_ns) VALUES (?, ?, ?, '', '', -1, 'requested', ?)",
                              (transfer_id, step, chain_id, time.time_ns()))
        return TxRow(request_id=int(cur.lastrowid or 0), transfer_id=transfer_id, step=step, chain_id=chain_id,
                     tx_hash="", sender="", nonce=-1, status="requested")

    def answered(self, request_id: int, *, tx_hash: str, sender: str, nonce: int) -> TxRow:
        """The executor sent the request's transaction (``OwnerTxStatus.SENT``)."""
        self.db.execute("UPDATE requests SET tx_hash = ?, sender = ?, nonce = ?, status = 'pending' WHERE request_id = ?",
                        (tx_hash, sender, nonce, request_id))
        return _row(self.db.execute(_ROW + " WHERE request_id = ?", (request_id,)).fetchone())

    def set_status(self, request_id: int, status: str) -> None:
        self.db.execute("UPDATE requests SET status = ? WHERE request_id = ?", (status, request_id))

    def live_tx(self, transfer_id: int, step: str) -> TxRow | None:
        """The step's request still unanswered, or its transaction that may still land (at most one: a
        dropped or refused one is replaced by a new request)."""
        r = self.db.execute(_ROW + " WHERE transfer_id = ? AND step = ? AND status IN ('requested', 'pending')",
                            (transfer_id, step)).fetchone()
        return None if r is None else _row(r)

    def txs(self, transfer_id: int | None = None) -> list[TxRow]:
        q, args = _ROW, ()  # type: tuple[str, tuple[int, ...]]
        if transfer_id is not None:
            q, args = q + " WHERE transfer_id = ?", (transfer_id,)
        return [_row(r) for r in self.db.execute(q + " ORDER BY request_id", args)]

    # --- records ----------------------------------------------------------------------------------

    def unsent_records(self, relay_has: int) -> list[tuple[int, int, int, bytes]]:
        """(transfer_id, state, source_seq, encoded record) of every record published with a source_seq
        above ``relay_has`` (the relay's ``Welcome.last_source_seq`` for us): the relay never got them."""
        return [(r[0], r[1], r[2], bytes(r[3])) for r in self.db.execute(
            "SELECT transfer_id, state, source_seq, tlv FROM records WHERE source_seq > ? ORDER BY source_seq",
            (relay_has,))]

    def set_record_seq(self, transfer_id: int, state: int, source_seq: int) -> None:
        self.db.execute("UPDATE records SET source_seq = ? WHERE transfer_id = ? AND state = ?",
                        (source_seq, transfer_id, state))
