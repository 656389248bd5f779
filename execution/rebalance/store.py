"""What must survive a ``kill -9`` of the rebalancer: one SQLite file (``runtime.files.open_sqlite``:
0600 in a 0700 directory, WAL, ``synchronous=FULL`` -- a transfer moves real inventory and is rare, so
each commit may cost a disk flush).

* ``transfers``: each transfer (``core.Transfer`` as JSON, its state and asset beside it). A state
  change is one SQLite transaction together with whatever it depends on (the settled transaction's
  status, the record to publish).
* ``txs``: every transaction the rebalancer signed, **written before it is broadcast** (raw bytes,
  nonce, step): after a crash the step is settled from the chain with it (``core.settle``), and
  broadcast again byte for byte when the chain never saw it.
* ``records``: each ``BridgeTransfer`` record with the ``source_seq`` it is published with, written
  *before* it is published (in the same transaction as the state it reports): the next start publishes
  again exactly those the relay's ``Welcome.last_source_seq`` says it never got -- the executor's
  ``results`` rule (``execution/store.py``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

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
CREATE TABLE IF NOT EXISTS txs (
    tx_hash     TEXT PRIMARY KEY,
    transfer_id INTEGER NOT NULL,
    step        TEXT NOT NULL,          -- the transfer's state the transaction is the step of
    chain_id    INTEGER NOT NULL,
    sender      TEXT NOT NULL,
    nonce       INTEGER NOT NULL,
    raw         BLOB NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'mined', 'reverted', 'dropped')),
    created_ns  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS txs_transfer ON txs(transfer_id, status);
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
    tx_hash: str
    transfer_id: int
    step: str
    chain_id: int
    sender: str
    nonce: int
    raw: bytes
    status: str


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

    def save(self, t: Transfer, *, tx: tuple[str, str] | None = None,
             record: tuple[int, int, bytes] | None = None) -> None:
        """The transfer's new state, with the settled transaction's ``(hash, status)`` and the record to
        publish ``(state, source_seq, encoded tlv)``: one transaction."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("UPDATE transfers SET state = ?, doc = ?, updated_ns = ? WHERE transfer_id = ?",
                            (t.state.value, _doc(t), time.time_ns(), t.transfer_id))
            if tx is not None:
                self.db.execute("UPDATE txs SET status = ? WHERE tx_hash = ?", (tx[1], tx[0]))
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

    # --- transactions -----------------------------------------------------------------------------

    def record_tx(self, *, tx_hash: str, transfer_id: int, step: str, chain_id: int, sender: str, nonce: int,
                  raw: bytes) -> None:
        self.db.execute("INSERT INTO txs VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                        (tx_hash, transfer_id, step, chain_id, sender, nonce, raw, time.time_ns()))

    def set_tx_status(self, tx_hash: str, status: str) -> None:
        self.db.execute("UPDATE txs SET status = ? WHERE tx_hash = ?", (status, tx_hash))

    def live_tx(self, transfer_id: int, step: str) -> TxRow | None:
        """The step's transaction that may still land (at most one: a dropped one is replaced)."""
        r = self.db.execute("SELECT tx_hash, transfer_id, step, chain_id, sender, nonce, raw, status FROM txs "
                            "WHERE transfer_id = ? AND step = ? AND status = 'pending'", (transfer_id, step)).fetchone()
        return None if r is None else TxRow(tx_hash=r[0], transfer_id=r[1], step=r[2], chain_id=r[3], sender=r[4],
                                             nonce=r[5], raw=bytes(r[6]), status=r[7])

    def txs(self, transfer_id: int | None = None) -> list[TxRow]:
        q = "SELECT tx_hash, transfer_id, step, chain_id, sender, nonce, raw, status FROM txs"
        args: tuple[int, ...] = ()
        if transfer_id is not None:
            q, args = q + " WHERE transfer_id = ?", (transfer_id,)
        return [TxRow(tx_hash=r[0], transfer_id=r[1], step=r[2], chain_id=r[3], sender=r[4], nonce=r[5],
                      raw=bytes(r[6]), status=r[7]) for r in self.db.execute(q + " ORDER BY created_ns", args)]

    def max_live_nonce(self, chain_id: int, sender: str) -> int | None:
        """The highest nonce of ours on the chain that is (or may be) used."""
        r = self.db.execute("SELECT MAX(nonce) FROM txs WHERE chain_id = ? AND sender = ? AND status <> 'dropped'",
                            (chain_id, sender)).fetchone()
        return r[0]

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
