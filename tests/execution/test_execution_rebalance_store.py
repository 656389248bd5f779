"""The rebalancer's SQLite state: private from the first byte, transfers exact, a state and its record in
one transaction, and the records a relay never got published again."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
import trio

from execution.rebalance.core import State, Transfer, record
from execution.rebalance.runner import republish_unsent
from execution.rebalance.store import RebalanceStore

BIG = 2**255 + 12_345  # amounts stay exact integers through JSON


def transfer(store: RebalanceStore, **kw: object) -> Transfer:
    base = dict(transfer_id=store.next_id(), asset="USDC", state=State.PLANNED, src_chain=1, dst_chain=2, bridge=1,
                src_token="0x" + "a1" * 20, dst_token="0x" + "b1" * 20, owner="0x" + "0e" * 20,
                src_contract="0x" + "aa" * 20, dst_contract="0x" + "bb" * 20, src_bridge="0x" + "ba" * 20,
                dst_bridge="0x" + "bd" * 20, amount=BIG, dst_from_block=7)
    base.update(kw)
    return store.create(Transfer(**base))  # type: ignore[arg-type]


def test_the_file_is_private_and_transfers_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "rb.sqlite"
    store = RebalanceStore(path)
    try:
        t1 = transfer(store)
        t2 = transfer(store, asset="WETH")
        assert (t1.transfer_id, t2.transfer_id) == (1, 2)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        store.save(t1.to(State.WITHDRAWING))
    finally:
        store.close()
    store = RebalanceStore(path)
    try:
        assert store.get(1) == t1.to(State.WITHDRAWING) and store.get(1).amount == BIG  # type: ignore[union-attr]
        assert [t.transfer_id for t in store.transfers(open_only=True)] == [1, 2]
        assert store.next_id() == 3
    finally:
        store.close()


def test_a_state_its_request_and_its_record_are_one_commit(tmp_path: Path) -> None:
    store = RebalanceStore(tmp_path / "rb.sqlite")
    try:
        t = transfer(store, state=State.SENDING)
        asked = store.new_request(transfer_id=t.transfer_id, step="sending", chain_id=1)
        again = store.new_request(transfer_id=t.transfer_id + 1, step="sending", chain_id=1)
        assert again.request_id == asked.request_id + 1  # a request's id is never reused ...
        other = RebalanceStore(tmp_path / "other.sqlite")  # ... nor another state file's (the executor's key)
        try:
            assert other.new_request(transfer_id=1, step="sending", chain_id=1).request_id != asked.request_id
        finally:
            other.close()
        assert asked.request_id >= 1 << 16
        assert store.live_tx(t.transfer_id, "sending") == asked and asked.status == "requested" and asked.nonce == -1
        row = store.answered(asked.request_id, tx_hash="0x01", sender=t.owner, nonce=4)
        assert (row.status, row.tx_hash, row.nonce, row.sender) == ("pending", "0x01", 4, t.owner)
        assert store.live_tx(t.transfer_id, "sending") == row
        sent = t.to(State.SENT, nonce=9, sent_time_ns=1)
        rec = record(sent)
        store.save(sent, tx=(row.request_id, "mined"), record=(rec.state, 11, rec.encode()))
        assert store.live_tx(t.transfer_id, "sending") is None
        assert [(r.status, r.tx_hash) for r in store.txs(t.transfer_id)] == [("mined", "0x01")]
        assert store.unsent_records(10) == [(t.transfer_id, rec.state, 11, rec.encode())]
        assert store.unsent_records(11) == []
        # a failing commit leaves all of it as it was
        with pytest.raises(sqlite3.IntegrityError):  # the record's NOT NULL tlv
            store.save(sent.to(State.COMPLETED), record=(2, 12, None))  # type: ignore[arg-type]
        assert store.get(t.transfer_id).state is State.SENT  # type: ignore[union-attr]
        assert store.unsent_records(0) == [(t.transfer_id, rec.state, 11, rec.encode())]
        # a request refused or a transaction dropped is no longer the step's: a new request replaces it
        store.set_status(again.request_id, "refused")
        assert store.live_tx(again.transfer_id, "sending") is None
    finally:
        store.close()


def test_a_state_file_with_transactions_it_signed_itself_still_pending_is_refused(tmp_path: Path) -> None:
    """A state file of the version that signed with the owner's key: its pending transactions are that
    version's to settle (this one has no key and no raw bytes to send again)."""
    path = tmp_path / "rb.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE txs (tx_hash TEXT PRIMARY KEY, status TEXT NOT NULL)")
    db.execute("INSERT INTO txs VALUES ('0x01', 'pending')")
    db.commit()
    db.close()
    with pytest.raises(ValueError, match="still pending"):
        RebalanceStore(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE txs SET status='mined'")
    db.commit()
    db.close()
    RebalanceStore(path).close()


class Relay:
    def __init__(self, has: int) -> None:
        self.last_source_seq = has
        self.got: list[bytes] = []

    async def publish_payload(self, payload: bytes) -> int:
        self.got.append(payload)
        self.last_source_seq += 1
        return self.last_source_seq


def test_only_what_the_relay_never_got_is_published_again(tmp_path: Path) -> None:
    store = RebalanceStore(tmp_path / "rb.sqlite")
    try:
        t = transfer(store, state=State.SENT, nonce=3)
        for seq, state in ((5, 1), (6, 2)):
            store.db.execute("INSERT INTO records VALUES (?, ?, ?, ?)", (t.transfer_id, state, seq, bytes([state])))
        relay = Relay(has=5)  # it has the first (SENT), not the second
        assert trio.run(republish_unsent, store, relay) == 1
        assert relay.got == [b"\x02"]
        assert store.unsent_records(5) == [(t.transfer_id, 2, 6, b"\x02")]  # recorded under its new sequence
        assert trio.run(republish_unsent, store, Relay(has=6)) == 0
    finally:
        store.close()
