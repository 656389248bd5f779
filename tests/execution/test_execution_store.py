"""execution/store.py: transactions kept per chain (cross-chain legs), and a file from before that reads the same."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from execution.store import ExecutorStore, NonceTracker


def _tx(store: ExecutorStore, h: str, nonce: int) -> None:
    store.record_tx(tx_hash=h, signal_id=1, nonce=nonce, raw=b"\x01", max_fee=2, tip=1, gas_limit=21_000)
    store.mark_public(h)


def test_each_chain_has_its_own_nonce_rows(tmp_path: Path) -> None:
    own = ExecutorStore(tmp_path / "s.sqlite")
    other = own.for_chain(31338)
    _tx(own, "0xa5", 5)
    _tx(other, "0xb5", 5)  # the same nonce on another chain is another transaction
    _tx(other, "0xb9", 9)
    assert own.max_live_nonce() == 5 and other.max_live_nonce() == 9
    assert [r.tx_hash for r in own.open_txs()] == ["0xa5"] and [r.tx_hash for r in other.open_txs()] == ["0xb5", "0xb9"]
    other.settle_nonce(5, "0xb5")  # settles chain 31338's nonce 5 only
    assert [r.status for r in own.txs_of_nonce(5)] == ["pending"] and other.txs_of_nonce(5)[0].status == "mined"
    own.settle_nonce(5, None)
    assert own.all_nonces() == [(5, "0xa5", "dropped")] and [n for n, _, _ in other.all_nonces()] == [5, 9]
    t = NonceTracker()
    assert t.reconcile(latest=3, pending=3, max_live=other.max_live_nonce()) == 10
    own.close()


def test_a_rebalancer_request_s_transaction_is_found_by_requester_and_id_while_it_may_land(tmp_path: Path) -> None:
    """``owner_tx``: the executor answers a request asked again with the transaction it signed for it, on that
    chain only, and only while that transaction may land (a dropped row's nonce may be another's now)."""
    own = ExecutorStore(tmp_path / "s.sqlite")
    b = own.for_chain(31338)
    try:
        b.record_tx(tx_hash="0x31", signal_id=0, nonce=4, raw=b"r31", max_fee=1, tip=1, gas_limit=1,
                    meta='{"owner": [48, 31, 1]}')
        b.record_tx(tx_hash="0x03", signal_id=0, nonce=5, raw=b"r3", max_fee=1, tip=1, gas_limit=1,
                    meta='{"owner": [48, 3, 2]}')
        assert b.owner_tx(48, 3).tx_hash == "0x03" and b.owner_tx(48, 31).raw == b"r31"  # type: ignore[union-attr]
        assert b.owner_tx(49, 3) is None and own.owner_tx(48, 3) is None and b.owner_tx(48, 4) is None
        b.settle_nonce(5, "0x03")
        assert b.owner_tx(48, 3).status == "mined"  # type: ignore[union-attr]
        b.settle_nonce(4, None)
        assert b.owner_tx(48, 31) is None
    finally:
        own.close()


def test_a_file_from_before_per_chain_transactions_is_the_own_chains(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE txs (tx_hash TEXT PRIMARY KEY, signal_id INTEGER NOT NULL, nonce INTEGER NOT NULL,
            raw BLOB NOT NULL, max_fee TEXT NOT NULL, tip TEXT NOT NULL, gas_limit INTEGER NOT NULL,
            public INTEGER NOT NULL, status TEXT NOT NULL, created_ns INTEGER NOT NULL, meta TEXT NOT NULL);
        INSERT INTO txs VALUES ('0xold', 4, 7, x'01', '2', '1', 21000, 1, 'pending', 1, '{}');
    """)
    db.close()
    store = ExecutorStore(path)
    assert [r.tx_hash for r in store.open_txs()] == ["0xold"] and store.max_live_nonce() == 7
    assert store.for_chain(31338).open_txs() == []
    _tx(store, "0xnew", 8)
    assert store.max_live_nonce() == 8
    store.close()


def test_cex_entry_orders_of_unfinished_signals_survive_a_restart(tmp_path: Path) -> None:
    s = ExecutorStore(tmp_path / "s.sqlite")
    s.record_order(client_order_id="ap1", signal_id=1, purpose="entry", meta='{"symbol": "ETHUSDT"}')
    s.record_order(client_order_id="ap2", signal_id=2, purpose="entry")
    s.answer_order("ap2", '{"status": "FILLED"}')
    s.fill_published(2, "entry")
    s.record_order(client_order_id="ap2-u1", signal_id=2, purpose="unwind")
    s.record_order(client_order_id="ap3", signal_id=3, purpose="entry")
    s.finish_signal(3, 12, "done")  # ended: nothing to decide after a restart
    s.close()
    s = ExecutorStore(tmp_path / "s.sqlite")
    one, two = s.open_cex_entries()
    assert (one.client_order_id, one.answer, one.published, one.unwinds, one.meta) == \
        ("ap1", "", False, 0, '{"symbol": "ETHUSDT"}')
    assert (two.client_order_id, two.answer, two.published, two.unwinds) == ("ap2", '{"status": "FILLED"}', True, 1)
    s.record_order(client_order_id="ap1", signal_id=9, purpose="entry")  # the same id again: the first row stays
    assert s.open_cex_entries()[0].signal_id == 1
    s.close()


def test_nonces_taken_at_once_are_consecutive_and_owned() -> None:
    t = NonceTracker()
    with pytest.raises(RuntimeError, match="before reconcile"):
        t.take()
    t.reconcile(latest=7, pending=7, max_live=None)
    assert (t.take(1), t.take(2), t.take(1)) == (7, 8, 9) and t.next == 10
    assert t.held_by(1) == [7, 9] and t.held_by(2) == [8]
    t.consumed(8)  # broadcast
    assert t.held_by(2) == [] and t.next == 10


def test_a_nonce_not_sent_is_given_back_when_highest_else_it_is_a_gap() -> None:
    t = NonceTracker()
    t.reconcile(latest=7, pending=7, max_live=None)
    a, b = t.take(1), t.take(2)
    assert t.release(b) is False and t.next == 8  # the highest handed out: given back
    assert t.take(3) == 8
    assert t.release(a) is True and t.next == 9  # 8 is out: 7 is a gap, to be filled
    assert t.held_by(1) == [] and t.held_by(3) == [8]
    assert t.release(20) is False and t.next == 9  # above anything handed out (after a resync): nothing to do


def test_resync_and_reconcile_never_go_back() -> None:
    t = NonceTracker()
    t.resync(5)
    assert t.next == 5
    t.take(1)
    t.resync(3)
    assert t.next == 6
    t.resync(9)
    assert t.next == 9
    assert t.reconcile(latest=2, pending=4, max_live=11) == 12 and t.taken == {}


def test_commits_never_checkpoint_the_wal_the_worker_thread_does(tmp_path: Path) -> None:
    """A commit that crosses SQLite's automatic checkpoint threshold (1,000 pages) would copy the WAL into the
    file and fsync inside that commit -- a record_tx right before a send. Here the pages stay in the WAL
    whatever the count, and checkpoint(), on its own connection (a worker thread's), moves them; the rows read
    the same before and after, also from a new connection."""
    import threading

    path = tmp_path / "s.sqlite"
    store = ExecutorStore(path)
    size = path.stat().st_size
    for i in range(1_500):  # > 1,000 pages: each row's raw transaction fills a page
        store.record_tx(tx_hash=f"0x{i:064x}", signal_id=i, nonce=i, raw=bytes(4_096), max_fee=2, tip=1,
                        gas_limit=21_000)
    assert path.stat().st_size == size  # no checkpoint ran inside a commit
    wal = Path(f"{path}-wal").stat().st_size
    assert wal > 1_000 * 4_096
    out: list[tuple[int, int]] = []
    worker = threading.Thread(target=lambda: out.append(store.checkpoint()))
    worker.start()
    worker.join()
    ((pages, done),) = out
    assert pages == done > 1_000 and path.stat().st_size > 1_500 * 4_096
    again = ExecutorStore(path)
    assert len(store.open_txs()) == 1_500 and len(again.open_txs()) == 1_500
    again.close()
    assert store.for_chain(31338).checkpoint() == (0, 0)  # a view leaves it to the store it came from
    store.close()
