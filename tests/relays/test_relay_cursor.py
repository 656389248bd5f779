from pathlib import Path

import pytest
from relay_testkit import frame

from protocol.header import Domain, read_domain_seq
from protocol.system import ResyncReason, SubscribeMode
from relays.core.cursor import Batch, Cursor, ResyncNeeded
from relays.core.ingest import Ingest, Sequencer
from relays.core.journal import Journal
from relays.core.ring import Ring


class Log:
    def __init__(self, tmp: Path, ring_bytes: int = 64 * 100, retention: int = 1 << 20) -> None:
        self.journal = Journal(tmp, segment_bytes=4096, retention_bytes=retention)
        self.journal.recover()
        self.ring = Ring(ring_bytes)
        self.seq = Sequencer()
        self.n = 0

    def add(self, n: int, type_code: int = 250) -> None:
        buf = bytearray(b"".join(frame(self.n + k + 1, type_code=type_code) for k in range(n)))
        self.n += n
        for c in Ingest(self.seq, Domain.MARKET_DATA, 7, validate=False).scan(buf, 0).chunks:  # placeholder bodies of registered types: this is about filtering
            self.journal.append(c)
            self.ring.append(c)


def seqs(batch: Batch) -> list[int]:
    data = b"".join(bytes(p) for p in batch.parts)
    return [read_domain_seq(data, o) for o in range(0, len(data), 64)]


def drain(cur: Cursor, log: Log) -> list[int]:
    out: list[int] = []
    while (b := cur.next_batch(log.ring, log.journal)) is not None:
        assert isinstance(b, Batch)
        out += seqs(b)
        cur.advance(b)
    return out


def test_from_seq_served_from_journal_then_ring(tmp_path: Path) -> None:
    log = Log(tmp_path)
    for _ in range(50):
        log.add(10)
    assert log.ring.oldest_seq > 1  # older frames are only on disk
    cur = Cursor(max_batch=4096)
    assert cur.subscribe(SubscribeMode.FROM_SEQ, 1, log.ring, log.journal) is None
    assert drain(cur, log) == list(range(1, 501))
    assert cur.live
    log.add(5)
    assert drain(cur, log) == list(range(501, 506))


def test_from_now_and_oldest(tmp_path: Path) -> None:
    log = Log(tmp_path)
    log.add(10)
    now, oldest = Cursor(), Cursor()
    now.subscribe(SubscribeMode.FROM_NOW, 0, log.ring, log.journal)
    oldest.subscribe(SubscribeMode.FROM_OLDEST, 0, log.ring, log.journal)
    log.add(3)
    assert drain(now, log) == [11, 12, 13]
    assert drain(oldest, log) == list(range(1, 14))


def test_too_old_gets_an_explicit_resync(tmp_path: Path) -> None:
    log = Log(tmp_path, retention=2 * 4096)
    for _ in range(30):
        log.add(10)
    cur = Cursor()
    r = cur.subscribe(SubscribeMode.FROM_SEQ, 1, log.ring, log.journal)
    assert isinstance(r, ResyncNeeded) and r.reason == ResyncReason.TOO_OLD
    assert r.oldest_available == min(log.journal.oldest_seq, log.ring.oldest_seq) > 1
    assert drain(cur, log)[0] == r.oldest_available


def test_ahead_of_head_resyncs_to_head(tmp_path: Path) -> None:
    log = Log(tmp_path)
    log.add(10)
    cur = Cursor()
    r = cur.subscribe(SubscribeMode.FROM_SEQ, 50, log.ring, log.journal)
    assert r == ResyncNeeded(50, 11, ResyncReason.EPOCH_CHANGED)


def test_live_cursor_that_falls_off_the_ring_must_be_cut(tmp_path: Path) -> None:
    log = Log(tmp_path, ring_bytes=64 * 20)
    cur = Cursor(max_batch=64 * 5)
    cur.subscribe(SubscribeMode.FROM_NOW, 0, log.ring, log.journal)
    log.add(10)
    b = cur.next_batch(log.ring, log.journal)
    assert isinstance(b, Batch)
    cur.advance(b)
    assert cur.live and not cur.fell_off(log.ring)
    log.add(30)
    assert cur.fell_off(log.ring)
    with pytest.raises(RuntimeError):
        cur.next_batch(log.ring, log.journal)


def test_filtered_cursor_reads_only_its_types(tmp_path: Path) -> None:
    log = Log(tmp_path)
    log.add(5, type_code=4)
    log.add(5, type_code=6)
    log.add(5, type_code=4)
    cur = Cursor(types=frozenset({6}))
    cur.subscribe(SubscribeMode.FROM_OLDEST, 0, log.ring, log.journal)
    assert drain(cur, log) == [6, 7, 8, 9, 10]
    assert cur.next_seq == 16
