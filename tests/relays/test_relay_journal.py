import os
from pathlib import Path

from relay_testkit import frame

from protocol.header import Domain, read_domain_seq
from relays.core.ingest import Ingest, Sequencer
from relays.core.journal import Journal, bump_epoch
from relays.core.ring import Chunk


def ingest(seq: Sequencer, first: int, last: int, source_id: int = 7) -> list[Chunk]:
    buf = bytearray(b"".join(frame(s, source_id=source_id) for s in range(first, last + 1)))
    return Ingest(seq, Domain.MARKET_DATA, source_id).scan(buf, 0).chunks


def fill(j: Journal, seq: Sequencer, first: int, last: int, source_id: int = 7, per_chunk: int = 10) -> None:
    for a in range(first, last + 1, per_chunk):
        for c in ingest(seq, a, min(last, a + per_chunk - 1), source_id):
            j.append(c)


def test_append_recover_and_read_back(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=4096, retention_bytes=1 << 20)
    assert j.recover().head_seq == 0
    seq = Sequencer()
    fill(j, seq, 1, 200)
    fill(j, seq, 1, 50, source_id=8)
    j.sync()
    j.close()
    assert len(list(tmp_path.glob("*.seg"))) > 1  # 64-byte frames, 4 KiB segments: it rolled
    j2 = Journal(tmp_path, segment_bytes=4096, retention_bytes=1 << 20)
    rec = j2.recover()
    assert rec.head_seq == 250 and rec.oldest_seq == 1 and rec.truncated_bytes == 0
    assert rec.last_source_seq == {7: 200, 8: 50}
    data, nxt = j2.read(100, 64 * 5)
    assert nxt == 105 and [read_domain_seq(data, 64 * k) for k in range(5)] == [100, 101, 102, 103, 104]
    # a read stops at the end of its segment; the next read continues in the next one
    seq_at, got = 1, []
    while seq_at <= 250:
        data, seq_at = j2.read(seq_at, 1 << 20)
        got += [read_domain_seq(data, o) for o in range(0, len(data), 64)]
    assert got == list(range(1, 251))
    assert j2.read(251, 100) == (b"", 251)


def test_torn_tail_is_truncated_on_recovery(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=1 << 20, retention_bytes=1 << 21)
    j.recover()
    seq = Sequencer()
    fill(j, seq, 1, 20)
    j.close()
    seg = next(tmp_path.glob("*.seg"))
    with open(seg, "ab") as f:
        f.write(frame(21)[:30])  # the relay died mid-write
    rec = Journal(tmp_path, segment_bytes=1 << 20, retention_bytes=1 << 21).recover()
    assert rec.head_seq == 20 and rec.truncated_bytes == 30 and rec.last_source_seq == {7: 20}
    assert seg.stat().st_size == 20 * 64


def test_corrupt_frame_in_the_newest_segment_is_a_hole_not_a_truncation(tmp_path: Path) -> None:
    """Issue 17: a flipped byte used to truncate from there, silently dropping every acknowledged
    frame after it and reusing their sequence numbers. Now only the damaged frame is lost."""
    j = Journal(tmp_path, segment_bytes=1 << 20, retention_bytes=1 << 21)
    j.recover()
    fill(j, Sequencer(), 1, 1500)
    j.close()
    seg = next(tmp_path.glob("*.seg"))
    raw = bytearray(seg.read_bytes())
    raw[64 * 15 + 60] ^= 0xFF  # frame 16's body
    seg.write_bytes(raw)
    j2 = Journal(tmp_path, segment_bytes=1 << 20, retention_bytes=1 << 21)
    rec = j2.recover()
    assert rec.head_seq == 1500 and rec.truncated_bytes == 0 and rec.last_source_seq == {7: 1500}
    assert [(h.first_seq, h.last_seq, h.start, h.end) for _, h in rec.holes] == [(16, 16, 960, 1024)]
    assert "checksum" in rec.holes[0][1].reason
    # reads stop before the hole, report it, and go on after it
    data, nxt = j2.read(10, 1 << 20)
    assert nxt == 16 and len(data) == 6 * 64
    assert j2.read(16, 1 << 20) == (b"", 16) and j2.hole_at(16) is rec.holes[0][1]
    data, nxt = j2.read(17, 1 << 20)
    assert nxt == 1501 and read_domain_seq(data, 0) == 17
    # the next sequence is new: nothing acknowledged is ever reused
    fill(j2, Sequencer(head_seq=1500, last_source_seq={7: 1500}), 1501, 1510)
    j2.close()
    rec = Journal(tmp_path, segment_bytes=1 << 20, retention_bytes=1 << 21).recover()
    assert rec.head_seq == 1510 and len(rec.holes) == 1


def test_damaged_header_in_the_middle_is_skipped_to_the_next_good_frame(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=1 << 20, retention_bytes=1 << 21)
    j.recover()
    fill(j, Sequencer(), 1, 100)
    j.close()
    seg = next(tmp_path.glob("*.seg"))
    raw = bytearray(seg.read_bytes())
    raw[64 * 40 : 64 * 43 + 10] = bytes(64 * 3 + 10)  # zeroed: three frames and a header's start
    seg.write_bytes(raw)
    rec = Journal(tmp_path, segment_bytes=1 << 20, retention_bytes=1 << 21).recover()
    assert rec.head_seq == 100
    assert [(h.first_seq, h.last_seq) for _, h in rec.holes] == [(41, 44)]


def test_a_damaged_last_frame_is_a_hole_and_an_interrupted_one_is_torn(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=1 << 20, retention_bytes=1 << 21)
    j.recover()
    fill(j, Sequencer(), 1, 20)
    j.close()
    seg = next(tmp_path.glob("*.seg"))
    raw = bytearray(seg.read_bytes())
    raw[-3] ^= 0x10  # complete but corrupt: its sequence may have been acknowledged
    seg.write_bytes(raw)
    rec = Journal(tmp_path, segment_bytes=1 << 20, retention_bytes=1 << 21).recover()
    assert rec.head_seq == 20 and rec.truncated_bytes == 0
    assert [(h.first_seq, h.last_seq) for _, h in rec.holes] == [(20, 20)]


def test_damage_in_an_older_segment_is_found_at_start_up(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=4096, retention_bytes=1 << 20)
    j.recover()
    fill(j, Sequencer(), 1, 300)
    j.close()
    segs = sorted(tmp_path.glob("*.seg"))
    raw = bytearray(segs[0].read_bytes())
    raw[-10] ^= 1  # the last frame of the first segment
    raw[64 * 3 + 20] ^= 1  # and the fourth
    segs[0].write_bytes(raw)
    j2 = Journal(tmp_path, segment_bytes=4096, retention_bytes=1 << 20)
    rec = j2.recover()
    n0 = len(raw) // 64
    assert rec.head_seq == 300
    assert [(h.first_seq, h.last_seq) for _, h in rec.holes] == [(4, 4), (n0, n0)]
    assert j2.read(n0, 1 << 20) == (b"", n0)
    data, nxt = j2.read(n0 + 1, 1 << 20)
    assert read_domain_seq(data, 0) == n0 + 1


def test_damage_after_start_up_is_found_on_read(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=1 << 20, retention_bytes=1 << 21)
    j.recover()
    fill(j, Sequencer(), 1, 50)
    seg = next(tmp_path.glob("*.seg"))
    with open(seg, "r+b") as f:  # bit rot while the relay runs
        f.seek(64 * 20 + 55)
        f.write(b"\xee")
    data, nxt = j.read(1, 1 << 20)
    assert nxt == 21 and len(data) == 20 * 64  # stops before the bad frame
    assert j.read(21, 1 << 20) == (b"", 21) and j.hole_at(21) is not None
    data, nxt = j.read(22, 1 << 20)
    assert nxt == 51 and read_domain_seq(data, 0) == 22
    j.close()


def test_dedupe_table_survives_retention_via_sidecars(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=4096, retention_bytes=3 * 4096)
    j.recover()
    seq = Sequencer()
    fill(j, seq, 1, 30, source_id=5)  # source 5 only appears in early segments
    fill(j, seq, 1, 600, source_id=7)
    j.close()
    rec = Journal(tmp_path, segment_bytes=4096, retention_bytes=3 * 4096).recover()
    assert rec.oldest_seq > 30  # source 5's frames are gone ...
    assert rec.last_source_seq[5] == 30  # ... but its dedupe state is not
    assert rec.last_source_seq[7] == 600 and rec.head_seq == 630
    assert sum(p.stat().st_size for p in tmp_path.glob("*.seg")) <= 4 * 4096


def test_reads_below_retention_return_nothing(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=4096, retention_bytes=2 * 4096)
    j.recover()
    fill(j, Sequencer(), 1, 500)
    assert j.oldest_seq > 1
    assert j.read(1, 1000) == (b"", 1)
    data, nxt = j.read(j.oldest_seq, 64)
    assert read_domain_seq(data) == j.oldest_seq and nxt == j.oldest_seq + 1


def test_group_commit_bookkeeping(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=4096, retention_bytes=1 << 20)
    j.recover()
    fill(j, Sequencer(), 1, 100)
    assert j.needs_sync
    fds, upto, dir_fd = j.sync_targets()
    assert upto == 100 and len(fds) >= 2 and dir_fd is not None
    for fd in fds:
        os.fsync(fd)
    j.synced(fds, upto, dir_fd)
    assert j.synced_seq == 100 and not j.needs_sync


def test_epoch_counter_increments(tmp_path: Path) -> None:
    assert bump_epoch(tmp_path) == 1
    assert bump_epoch(tmp_path) == 2
    assert (tmp_path / "epoch").read_text().strip() == "2"


def test_retention_applies_when_an_append_passes_it_not_only_when_a_segment_starts(tmp_path: Path) -> None:
    """A segment ends after the read that crossed ``segment_bytes``, and one read can be large (a relay reads
    up to 256 KiB at once): with retention checked only as a segment starts, a first segment just under
    retention plus one large second read kept everything -- twice the retention -- until some later
    roll (test_archiver's resync test, whose producer's frames arrived in two reads, found message 1 still
    retained)."""
    j = Journal(tmp_path, segment_bytes=4096, retention_bytes=2 * 4096)
    j.recover()
    seq = Sequencer()
    fill(j, seq, 1, 80, per_chunk=80)  # one read of 80 frames: the first segment, over segment_bytes
    assert j.oldest_seq == 1 and len(j.segments) == 1
    fill(j, seq, 81, 200, per_chunk=120)  # one read: starts the second segment, the total passes retention
    assert j.total_bytes - j.segments[-1].size <= j.retention_bytes or len(j.segments) == 1
    assert j.oldest_seq == 81  # the first segment went as the append passed retention
    assert sorted(p.name for p in tmp_path.glob("*.seg")) == [j.segments[-1].path.name]
    j.close()
