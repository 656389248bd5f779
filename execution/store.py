"""What must survive a ``kill -9`` of the executor: SQLite (stdlib), one file, WAL with
``synchronous=NORMAL`` (a commit is in the OS before the call returns; see ``__init__``).

* ``txs``: every transaction we signed, **written before it is broadcast** (raw bytes, nonce,
  fees, the signal it belongs to, its status). A crash after signing leaves a row whose fate the
  next start settles (:meth:`ExecutorStore.open_txs` + reconciliation in the executor); a cross-chain leg's
  rows (``meta["xc"]``) are settled with its signal's other chain (:meth:`ExecutorStore.unfinished_cross_chain`,
  ``execution/xchain/recover.py``). See "A crash between signing and sending" below.
* ``signals``: the outcome of every finished signal, so a signal delivered again (the relay
  resumes after a restart) is not executed twice, and a result is published once.
* ``results``: each finished signal's ``ExecutionResult`` and the ``source_seq`` it is published
  with, written in the same transaction as its ``signals`` row and *before* it is published. A
  ``kill -9`` between the two would otherwise leave a signal done here and never reported; the next
  start compares with the relay's ``Welcome.last_source_seq`` and publishes again exactly those
  results the relay never got (:meth:`ExecutorStore.unsent_results`).
* ``cursors``: the last relay sequence fully handled per domain (signals, stops).
* ``cex_orders``: every CEX order of a CEX-DEX signal, **written before it is sent** (client order id, purpose,
  for the entry what a restarted executor needs to end the signal), and its answer once known (from the order
  request or a status query). A restart queries an entry order left without an answer before deciding
  (``specs/cex-legs.md``).

Transactions are kept **per chain** (``txs.chain_id``): the executor's own chain is 0 (so a file written
before cross-chain trading reads the same), every other chain its chain id. :meth:`ExecutorStore.for_chain`
is a view of the same file whose transaction and nonce methods see one chain only: one nonce sequence
per chain and signer (``execution/xchain/``).

A crash between signing and sending
-----------------------------------
The signal's critical path writes one row before its ``eth_sendRawTransaction``: ``record_tx`` (the raw
transaction, ``public`` 0), an autocommitted INSERT appended to the WAL without an fsync (microseconds;
see ``__init__`` for why a kill -9 loses nothing committed). ``public`` becomes 1 once the node accepted
it. Whatever the moment of a crash, the next start (``Executor.recover``) finds the truth on the chain:

* before the row was committed: nothing left the process; the nonce lived only in memory, and the next
  nonce comes from the chain's counts;
* after the commit, whether or not the bytes reached the node (``public`` still 0, or already 1): the
  row is ``pending``; its receipt settles it when mined (the signal reported from the receipt; the row
  marked sent, which a cross-chain leg's settlement reads: ``execution/xchain/recover.py``); a node
  that still holds it (``eth_getTransactionByHash``) makes it a sent transaction, broadcast again (the
  same bytes) and watched; one the node never got was never sent: dropped, the signal NOT_INCLUDED, and
  its nonce free again (the chain's pending count does not include it).

Nothing here waits for a disk flush on that path: the WAL's automatic checkpoint, which would run (with
its fsyncs) inside whichever commit crosses 1,000 pages -- ``record_tx`` right before a send, say -- is
off; the process checkpoints from a worker thread on a connection of its own (:meth:`ExecutorStore.checkpoint`).

Nonce rule (see :class:`NonceTracker`): the next nonce is never below the chain's pending count
nor below one past the highest nonce of a transaction that may still land (``pending`` rows);
a nonce is only given back when its transaction was never broadcast publicly and its bundle's
target blocks have passed (or the run ended before sending it), and only when no later nonce was handed
out; a nonce below one handed out is a gap, filled with a 0-value self-transfer
(``specs/executor-concurrency.md``, "Nonces").
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.files import open_sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS txs (
    tx_hash     TEXT PRIMARY KEY,
    signal_id   INTEGER NOT NULL,
    nonce       INTEGER NOT NULL,
    raw         BLOB NOT NULL,
    max_fee     TEXT NOT NULL,
    tip         TEXT NOT NULL,
    gas_limit   INTEGER NOT NULL,
    public      INTEGER NOT NULL,      -- 1 once broadcast with eth_sendRawTransaction
    status      TEXT NOT NULL,         -- pending | mined | dropped | replaced
    created_ns  INTEGER NOT NULL,
    meta        TEXT NOT NULL,         -- JSON: what a restarted executor needs to report the signal
    chain_id    INTEGER NOT NULL DEFAULT 0  -- 0: the executor's own chain; else the chain (cross-chain legs)
);
CREATE INDEX IF NOT EXISTS txs_nonce ON txs(nonce);
CREATE TABLE IF NOT EXISTS signals (
    signal_id   INTEGER PRIMARY KEY,
    outcome     INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    done_ns     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    signal_id   INTEGER PRIMARY KEY,
    source_seq  INTEGER NOT NULL,      -- the source_seq its frame was given on the execution relay
    tlv         BLOB NOT NULL          -- the ExecutionResult, encoded, to publish again if it never arrived
);
CREATE TABLE IF NOT EXISTS cex_orders (
    client_order_id TEXT PRIMARY KEY,
    signal_id   INTEGER NOT NULL,
    purpose     TEXT NOT NULL,         -- entry | unwind
    meta        TEXT NOT NULL,         -- JSON (the entry's): the order and the signal, to end it after a restart
    sent_ns     INTEGER NOT NULL,      -- wall clock, when it was handed to the gateway
    answer      TEXT NOT NULL,         -- JSON: the order's final answer; '' while unknown
    published   INTEGER NOT NULL       -- 1 once its CexFill went to the execution relay
);
CREATE TABLE IF NOT EXISTS cursors (
    name        TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class CexOrderRow:
    client_order_id: str
    signal_id: int
    meta: str
    sent_ns: int
    answer: str  # '' while unknown
    published: bool  # its CexFill is on the execution relay
    unwinds: int  # unwind orders recorded for the same signal


@dataclass(frozen=True, slots=True, kw_only=True)
class TxRow:
    tx_hash: str
    signal_id: int
    nonce: int
    raw: bytes
    max_fee: int
    tip: int
    gas_limit: int
    public: bool
    status: str
    meta: str = "{}"


class ExecutorStore:
    def __init__(self, path: str | Path) -> None:
        # 0600 from the first byte: this file holds raw signed transactions.
        # synchronous NORMAL, not FULL: in WAL mode a commit is appended to the -wal file without an
        # fsync, so recording a transaction before it is broadcast costs microseconds, not a disk flush,
        # on the critical path. A kill -9 loses nothing committed (the bytes are in the OS); only a
        # power loss / kernel crash may lose the last commits before the next checkpoint's fsync,
        # and a restart then reconciles nonces from the chain's own counts (recover()).
        self.db = open_sqlite(path, SCHEMA, synchronous="NORMAL")
        # no checkpoint inside our commits (module docstring): checkpoint() does them, off the critical path
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self._path = str(path)
        self._checkpointer: sqlite3.Connection | None = None
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(txs)")}
        if "chain_id" not in columns:  # a file from before per-chain transactions: all of them the own chain's
            self.db.execute("ALTER TABLE txs ADD COLUMN chain_id INTEGER NOT NULL DEFAULT 0")
        self.db.execute("CREATE INDEX IF NOT EXISTS txs_chain_nonce ON txs(chain_id, nonce)")
        self.chain_id = 0  # whose transactions this view reads and writes (0: the executor's own chain)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.db.close()  # the last connection closing checkpoints what is left

    def checkpoint(self) -> tuple[int, int]:
        """Copy the WAL's committed pages into the database file (PASSIVE: never waits for, nor blocks, our
        writes), on a connection of its own: meant for a worker thread (``trio.to_thread.run_sync``), one at a
        time. Returns (pages in the WAL, pages checkpointed)."""
        if self._path == ":memory:":
            return 0, 0
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        _busy, wal, done = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return wal, done

    def for_chain(self, chain_id: int) -> ExecutorStore:
        """A view of the same file for the transactions of ``chain_id`` (signals, results and cursors are
        shared). Close (and checkpoint) only the store it came from."""
        view = object.__new__(ExecutorStore)
        view.db, view.chain_id, view._path, view._checkpointer = self.db, chain_id, ":memory:", None
        return view

    # --- transactions --------------------------------------------------------------------------

    def record_tx(self, *, tx_hash: str, signal_id: int, nonce: int, raw: bytes, max_fee: int, tip: int,
                  gas_limit: int, meta: str = "{}") -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO txs (tx_hash, signal_id, nonce, raw, max_fee, tip, gas_limit, public, status, "
            "created_ns, meta, chain_id) VALUES (?,?,?,?,?,?,?,0,'pending',?,?,?)",
            (tx_hash, signal_id, nonce, raw, str(max_fee), str(tip), gas_limit, time.time_ns(), meta, self.chain_id))

    def mark_public(self, tx_hash: str) -> None:
        self.db.execute("UPDATE txs SET public=1 WHERE tx_hash=?", (tx_hash,))

    def set_status(self, tx_hash: str, status: str) -> None:
        self.db.execute("UPDATE txs SET status=? WHERE tx_hash=?", (status, tx_hash))

    def settle_nonce(self, nonce: int, mined_hash: str | None) -> None:
        """Every tx with ``nonce``: the mined one ``mined``, the others ``replaced`` (or all ``dropped``)."""
        self.db.execute("BEGIN")
        c = self.chain_id
        if mined_hash is None:
            self.db.execute("UPDATE txs SET status='dropped' WHERE nonce=? AND chain_id=? AND status='pending'",
                            (nonce, c))
        else:
            self.db.execute("UPDATE txs SET status='replaced' WHERE nonce=? AND chain_id=? AND tx_hash<>?",
                            (nonce, c, mined_hash))
            self.db.execute("UPDATE txs SET status='mined' WHERE tx_hash=?", (mined_hash,))
        self.db.execute("COMMIT")

    def open_txs(self) -> list[TxRow]:
        rows = self.db.execute(
            "SELECT tx_hash, signal_id, nonce, raw, max_fee, tip, gas_limit, public, status, meta FROM txs "
            "WHERE status='pending' AND chain_id=? ORDER BY nonce, created_ns", (self.chain_id,)).fetchall()
        return [TxRow(tx_hash=r[0], signal_id=r[1], nonce=r[2], raw=bytes(r[3]), max_fee=int(r[4]), tip=int(r[5]),
                      gas_limit=r[6], public=bool(r[7]), status=r[8], meta=r[9]) for r in rows]

    def unfinished_cross_chain(self) -> dict[int, list[tuple[int, TxRow]]]:
        """Signal id -> (chain, row) of every transaction of a cross-chain signal without an outcome, on every
        chain and in every status (``meta`` names its leg: ``execution/xchain/recover.py``), oldest first."""
        out: dict[int, list[tuple[int, TxRow]]] = {}
        for r in self.db.execute(
                "SELECT tx_hash, signal_id, nonce, raw, max_fee, tip, gas_limit, public, status, meta, chain_id FROM txs "
                "WHERE meta LIKE '%\"xc\":%' AND signal_id NOT IN (SELECT signal_id FROM signals) "
                "ORDER BY signal_id, created_ns"):
            out.setdefault(r[1], []).append((r[10], TxRow(
                tx_hash=r[0], signal_id=r[1], nonce=r[2], raw=bytes(r[3]), max_fee=int(r[4]), tip=int(r[5]),
                gas_limit=r[6], public=bool(r[7]), status=r[8], meta=r[9])))
        return out

    def txs_of_nonce(self, nonce: int) -> list[TxRow]:
        rows = self.db.execute(
            "SELECT tx_hash, signal_id, nonce, raw, max_fee, tip, gas_limit, public, status, meta FROM txs WHERE nonce=? "
            "AND chain_id=? ORDER BY created_ns", (nonce, self.chain_id)).fetchall()
        return [TxRow(tx_hash=r[0], signal_id=r[1], nonce=r[2], raw=bytes(r[3]), max_fee=int(r[4]), tip=int(r[5]),
                      gas_limit=r[6], public=bool(r[7]), status=r[8], meta=r[9]) for r in rows]

    def owner_tx(self, requester: int, request_id: int) -> TxRow | None:
        """The transaction signed for the rebalancer's request ``request_id`` of producer ``requester`` on this
        view's chain (``execution/owner.py``: its ``meta`` is ``{"owner": [requester, request_id, call]}``) that may
        still land or has: a row dropped or replaced never can, and its nonce may be another transaction's now."""
        r = self.db.execute(
            "SELECT tx_hash, signal_id, nonce, raw, max_fee, tip, gas_limit, public, status, meta FROM txs "
            "WHERE chain_id=? AND meta LIKE ? AND status IN ('pending','mined') ORDER BY created_ns DESC LIMIT 1",
            (self.chain_id, f'{{"owner": [{int(requester)}, {int(request_id)}, %')).fetchone()
        return None if r is None else TxRow(tx_hash=r[0], signal_id=r[1], nonce=r[2], raw=bytes(r[3]), max_fee=int(r[4]),
                                             tip=int(r[5]), gas_limit=r[6], public=bool(r[7]), status=r[8], meta=r[9])

    def all_nonces(self) -> list[tuple[int, str, str]]:
        """(nonce, tx_hash, status) of every tx ever signed (tests use it to prove no reuse)."""
        return [(r[0], r[1], r[2]) for r in self.db.execute(
            "SELECT nonce, tx_hash, status FROM txs WHERE chain_id=? ORDER BY nonce", (self.chain_id,))]

    def max_live_nonce(self) -> int | None:
        """The highest nonce that may still be (or has been) used on chain."""
        r = self.db.execute("SELECT MAX(nonce) FROM txs WHERE status IN ('pending','mined') AND public=1 AND chain_id=?",
                            (self.chain_id,)).fetchone()
        return r[0]

    # --- CEX orders ------------------------------------------------------------------------------

    def record_order(self, *, client_order_id: str, signal_id: int, purpose: str, meta: str = "{}") -> None:
        self.db.execute("INSERT OR IGNORE INTO cex_orders VALUES (?,?,?,?,?,'',0)",
                        (client_order_id, signal_id, purpose, meta, time.time_ns()))

    def answer_order(self, client_order_id: str, answer: str) -> None:
        self.db.execute("UPDATE cex_orders SET answer=? WHERE client_order_id=?", (answer, client_order_id))

    def fill_published(self, signal_id: int, purpose: str) -> None:
        """The CexFill of the signal's latest ``purpose`` order was published (a restart must not again)."""
        self.db.execute("UPDATE cex_orders SET published=1 WHERE client_order_id=(SELECT client_order_id FROM "
                        "cex_orders WHERE signal_id=? AND purpose=? ORDER BY sent_ns DESC LIMIT 1)",
                        (signal_id, purpose))

    def open_cex_entries(self) -> list[CexOrderRow]:
        """The entry orders of signals without an outcome: a previous run was cut between the order and the end."""
        rows = self.db.execute(
            "SELECT o.client_order_id, o.signal_id, o.meta, o.sent_ns, o.answer, o.published, "
            "(SELECT COUNT(*) FROM cex_orders u WHERE u.signal_id=o.signal_id AND u.purpose='unwind') "
            "FROM cex_orders o WHERE o.purpose='entry' AND o.signal_id NOT IN (SELECT signal_id FROM signals) "
            "ORDER BY o.sent_ns").fetchall()
        return [CexOrderRow(client_order_id=r[0], signal_id=r[1], meta=r[2], sent_ns=r[3], answer=r[4],
                            published=bool(r[5]), unwinds=r[6]) for r in rows]

    # --- signals and cursors -------------------------------------------------------------------

    def signal_done(self, signal_id: int) -> tuple[int, str] | None:
        r = self.db.execute("SELECT outcome, reason FROM signals WHERE signal_id=?", (signal_id,)).fetchone()
        return (r[0], r[1]) if r else None

    def finish_signal(self, signal_id: int, outcome: int, reason: str, *, result: bytes = b"",
                      source_seq: int = 0) -> None:
        """The signal's outcome and, when ``result`` is given, its encoded ``ExecutionResult`` about to be
        published as ``source_seq``: one transaction."""
        self.db.execute("BEGIN")
        self.db.execute("INSERT OR REPLACE INTO signals VALUES (?,?,?,?)", (signal_id, outcome, reason, time.time_ns()))
        if result:
            self.db.execute("INSERT OR REPLACE INTO results VALUES (?,?,?)", (signal_id, source_seq, result))
        self.db.execute("COMMIT")

    def unsent_results(self, relay_has: int) -> list[tuple[int, int, bytes]]:
        """(signal_id, source_seq, encoded result) of every result published with a ``source_seq`` above
        ``relay_has`` (the relay's ``Welcome.last_source_seq`` for us): the relay never got them."""
        return [(r[0], r[1], bytes(r[2])) for r in self.db.execute(
            "SELECT signal_id, source_seq, tlv FROM results WHERE source_seq > ? ORDER BY source_seq", (relay_has,))]

    def set_result_seq(self, signal_id: int, source_seq: int) -> None:
        self.db.execute("UPDATE results SET source_seq=? WHERE signal_id=?", (source_seq, signal_id))

    def cursor(self, name: str) -> int | None:
        r = self.db.execute("SELECT seq FROM cursors WHERE name=?", (name,)).fetchone()
        return r[0] if r else None

    def set_cursor(self, name: str, seq: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO cursors VALUES (?,?)", (name, seq))


class NonceTracker:
    """The in-process nonce allocator. Sans-IO: the executor feeds it the chain's counts.

    Runs in flight at once each :meth:`take` the next nonce (consecutive: pipelined); the shell writes
    the signed transaction with it to the store (``RecordTx``) before it leaves the process. A nonce
    taken and never sent must not leave a gap that blocks the later ones (the node mines nonce n+1
    only after n): :meth:`release` gives it back when it is the highest taken, else it is a gap and the
    caller fills it with a 0-value self-transfer at that nonce (``FillNonce``;
    ``specs/executor-concurrency.md``).
    """

    def __init__(self) -> None:
        self.next: int | None = None
        self.taken: dict[int, int] = {}  # nonce -> the signal that took it, not yet broadcast nor released

    def reconcile(self, *, latest: int, pending: int, max_live: int | None) -> int:
        """After a (re)start: never below what the chain has seen or what we may have broadcast."""
        candidates = [latest, pending]
        if max_live is not None:
            candidates.append(max_live + 1)
        self.next = max(candidates)
        self.taken.clear()
        return self.next

    def take(self, owner: int = 0) -> int:
        """The next nonce, reserved for signal ``owner`` (the next ``take`` gets the one after)."""
        if self.next is None:
            raise RuntimeError("NonceTracker.take before reconcile")
        n = self.next
        self.next = n + 1
        self.taken[n] = owner
        return n

    def held_by(self, owner: int) -> list[int]:
        """The nonces signal ``owner`` took and neither broadcast nor released."""
        return sorted(n for n, o in self.taken.items() if o == owner)

    def resync(self, pending: int) -> None:
        """The chain's pending count, read after another signer of the account used our nonce: go on
        from there (never back)."""
        self.next = pending if self.next is None else max(self.next, pending)

    def consumed(self, nonce: int) -> None:
        """``nonce`` was broadcast publicly or used by another signer (it will be mined, replaced, or
        cancelled: never reused)."""
        assert self.next is not None
        self.taken.pop(nonce, None)
        self.next = max(self.next, nonce + 1)

    def release(self, nonce: int) -> bool:
        """``nonce`` was taken and will not be sent (a run ended before its broadcast, a bundle not
        included). True: it is a gap below a nonce already handed out, to be filled; False: given back
        (the next ``take`` gets it again)."""
        assert self.next is not None
        self.taken.pop(nonce, None)
        if nonce != self.next - 1:
            return nonce < self.next
        self.next = nonce
        return False
