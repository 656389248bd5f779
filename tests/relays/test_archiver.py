"""The Parquet archiver against real relay daemons (subprocesses), including kill -9 and retention."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import trio
from relay_testkit import Procs, cpu_wait

from protocol.ids import PoolId, Venue, VenueKind
from protocol.market import BlockHeader, V2Reserves, V2Swap, V3Swap
from protocol.message import Message, decode, encode
from protocol.tlv import UnknownTLV
from relays import archiver as A
from relays.archive_check import check_archive
from relays.client import RelayConsumer, RelayProducer, request_stats
from tools.loadgen import read_counter

DAY1 = 1704412800 * 10**9  # 2024-01-05T00:00:00Z
POOL2 = PoolId.of(1, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20)
POOL3 = PoolId.of(1, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, "0x" + "d4" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20)


def sample(i: int) -> tuple[object, int]:
    """A market-data TLV and its event time; the event time crosses midnight, some are 0."""
    ev = DAY1 + 86_400 * 10**9 - 50 * 10**9 + i * 10**9 if i % 7 else 0
    k = i % 5
    if k == 0:
        return V2Reserves(pool=POOL2, block_number=19_000_000 + i, log_index=i, reserve0=(1 << 111) + i,
                          reserve1=10**24 + i), ev
    if k == 1:
        return V3Swap(pool=POOL3, block_number=19_000_000 + i, log_index=i, tx_hash=bytes([i % 256]) * 32,
                      amount0=-(10**30) - i, amount1=10**20 + i, sqrt_price_x96=(1 << 150) + i,
                      liquidity=10**25 + i, tick=-200_000 + i), ev
    if k == 2:
        return V2Swap(pool=POOL2, block_number=19_000_000 + i, log_index=i, tx_hash=b"\x01" * 32,
                      sender=b"\x11" * 20, recipient=b"\x22" * 20, amount0_in=1000 + i, amount1_in=0,
                      amount0_out=0, amount1_out=7 + i), ev
    if k == 3:
        return BlockHeader(chain_id=1, number=19_000_000 + i, timestamp=1704412800 + i, gas_limit=30_000_000,
                           gas_used=1, hash=b"\x02" * 32, parent_hash=b"\x03" * 32, base_fee=10**9,
                           priority_fee=1), ev
    return UnknownTLV(type_code=250, body=i.to_bytes(10, "little")), ev


async def publish_samples(sock: Path, n: int) -> None:
    async with RelayProducer.connect("market_data", sock, source_id=41, connect_timeout=10) as p:
        for i in range(n):
            tlv, ev = sample(i)
            await p.publish(tlv, event_time_ns=ev, receive_time_ns=DAY1 + i)  # type: ignore[arg-type]
        await p.flush()


async def collect_raw(sock: Path, n: int, from_seq: int = 1) -> list[bytes]:
    out: list[bytes] = []
    with trio.fail_after(20):
        async with RelayConsumer.connect("market_data", sock, from_seq=from_seq, raw=True, connect_timeout=10) as c:
            async for fr in c:
                out.append(fr)
                if len(out) == n:
                    break
    return out


def archiver(procs: Procs, sock: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return procs.start("archiver", "-m", "tools.cli", "archive", "--domain", "market_data", "--socket", str(sock),
                       "--out", str(out), *extra)


def wait_exit(p: subprocess.Popen[bytes], timeout: float) -> int:
    """``p``'s exit status, or AssertionError after ``timeout`` s of ``p``'s own time: time it spent waiting
    for a CPU does not count (as in relay_testkit.wait_listening). An archiver or a loadgen does ~2 s of
    imports (pyarrow, numpy); at load 35 on 2 cores it gets a few % of a CPU, and 30 s of wall time ran out."""
    start = time.monotonic()
    while (rc := p.poll()) is None:
        if time.monotonic() - start - cpu_wait(p.pid) >= timeout:
            raise AssertionError(f"{p.args} did not exit within {timeout} s of its own time:\n"
                                 f"{Path(p.log_path).read_text()[-3000:]}")  # type: ignore[attr-defined]
        time.sleep(0.05)
    return rc


def visible_tmp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and p.name.endswith(".tmp") and not p.name.startswith(".")]


async def test_archive_round_trip_identical_bytes(procs: Procs, short_dir: Path) -> None:
    sock, out, n = short_dir / "md.sock", short_dir / "arch", 300
    procs.relay(sock, short_dir / "data", "--fsync", "off")
    await publish_samples(sock, n)
    sent = await collect_raw(sock, n)
    assert [int.from_bytes(f[8:16], "little") for f in sent] == list(range(1, n + 1))

    p = archiver(procs, sock, out, "--until", str(n), "--flush-messages", "64", "--flush-seconds", "0.2")
    assert await trio.to_thread.run_sync(wait_exit, p, 30) == 0

    raws = list(A.read_archive_raw(out, "market_data"))
    assert [s for s, _ in raws] == list(range(1, n + 1))
    assert [r for _, r in raws] == sent  # the exact bytes the relay delivered
    msgs = list(A.read_archive(out, "market_data"))
    assert msgs == [decode(f) for f in sent]
    assert [encode(m) for m in msgs] == sent
    assert A.read_gaps(out, "market_data") == []
    assert visible_tmp_files(out) == [] and not list(out.rglob("*.tmp"))
    chk = check_archive(out, "market_data")  # the manifest lists every file, with the relay's epoch
    assert chk.ok and chk.has_manifest and len(chk.epochs) == 1 and 0 not in chk.epochs, chk.summary()

    # partitioned by domain and event date (receive date when the event time is 0)
    dates = sorted(p.name for p in (out / "domain=market_data").glob("date=*"))
    assert dates == ["date=2024-01-05", "date=2024-01-06"]
    for f in A.archive_files(out, "market_data"):
        meta = pq.read_metadata(f.path).metadata
        assert int(meta[b"first_seq"]) == f.first_seq and int(meta[b"last_seq"]) == f.last_seq

    table = ds.dataset(out, partitioning="hive").to_table().sort_by("domain_seq")
    assert table.num_rows == n
    rows = table.to_pylist()
    for i, row in enumerate(rows):
        tlv, ev = sample(i)
        m = msgs[i]
        assert row["domain_seq"] == i + 1 and row["source_id"] == 41 and row["source_seq"] == m.source_seq
        assert row["event_time_ns"] == ev and row["receive_time_ns"] == DAY1 + i
        assert row["tlv_types"] == [tlv.type_code if isinstance(tlv, UnknownTLV) else type(tlv).TYPE]
        assert row["domain"] == "market_data"
        assert row["date"] == ("2024-01-05" if ev == 0 or ev < DAY1 + 86_400 * 10**9 else "2024-01-06")
        if isinstance(tlv, V2Reserves):
            assert row["pool_id"] == int(POOL2).to_bytes(67, "little")
            assert (row["chain_id"], row["venue"], row["pool_address"]) == (1, Venue.UNISWAP_V2, POOL2.address)
            assert row["reserve0"] == str((1 << 111) + i) and row["reserve1"] == str(10**24 + i)
            assert (row["block_number"], row["log_index"]) == (19_000_000 + i, i)
        elif isinstance(tlv, V3Swap):
            assert row["venue"] == Venue.UNISWAP_V3 and row["pool_address"] == POOL3.address
            assert row["amount0"] == str(-(10**30) - i) and row["amount1"] == str(10**20 + i)
            assert row["sqrt_price_x96"] == str((1 << 150) + i) and row["liquidity"] == str(10**25 + i)
            assert row["tick"] == -200_000 + i and row["tx_hash"] == bytes([i % 256]) * 32
        elif isinstance(tlv, V2Swap):
            assert row["amount0"] == str(1000 + i) and row["amount1"] == str(-(7 + i))
        elif isinstance(tlv, BlockHeader):
            assert row["block_number"] == 19_000_000 + i and row["chain_id"] == 1 and row["pool_id"] is None
        else:
            assert row["type_name"] == "UnknownTLV" and row["pool_id"] is None and row["reserve0"] is None

    # a restart with everything archived is a no-op (resumes after the last sequence, --until reached)
    p = archiver(procs, sock, out, "--until", str(n))
    assert await trio.to_thread.run_sync(wait_exit, p, 30) == 0
    assert [s for s, _ in A.read_archive_raw(out, "market_data")] == list(range(1, n + 1))

    # SIGTERM flushes what is buffered; a second archiver on the same directory is refused
    p = archiver(procs, sock, out, "--flush-seconds", "600", "--name", "arch-term")
    await publish_samples(sock, 10)
    with trio.fail_after(20):
        while True:
            consumers = (await request_stats("market_data", sock))["consumers"]
            if any(c["name"] == "arch-term" and c["next_seq"] == n + 11 for c in consumers):
                break
            await trio.sleep(0.05)  # noqa: ASYNC110 - polling another process
    second = archiver(procs, sock, out)
    assert await trio.to_thread.run_sync(wait_exit, second, 30) == 2
    assert "another archiver" in await trio.Path(second.log_path).read_text()  # type: ignore[attr-defined]
    assert A.last_archived_seq(out, "market_data") == n  # nothing flushed yet
    p.send_signal(signal.SIGTERM)
    assert await trio.to_thread.run_sync(wait_exit, p, 30) == 0
    assert [s for s, _ in A.read_archive_raw(out, "market_data")] == list(range(1, n + 11))


def test_kill9_archiver_mid_stream_resumes_exactly_once(procs: Procs, short_dir: Path) -> None:
    sock, out, n = short_dir / "md.sock", short_dir / "arch", 10000
    procs.relay(sock, short_dir / "data", "--fsync", "off")
    procs.loadgen(sock, rate=5000, count=n)
    flush = ("--flush-messages", "250", "--flush-seconds", "0.05")
    for target in (1500, 5000):
        p = archiver(procs, sock, out, *flush)
        deadline = time.monotonic() + 20
        while A.last_archived_seq(out, "market_data") < target:
            assert time.monotonic() < deadline, "archiver made no progress"
            assert p.poll() is None, Path(p.log_path).read_text()[-2000:]  # type: ignore[attr-defined]
            time.sleep(0.01)
        procs.kill9(p)  # mid-stream: the loadgen keeps publishing
        assert visible_tmp_files(out) == []
    p = archiver(procs, sock, out, *flush, "--until", str(n))
    assert wait_exit(p, 40) == 0

    raws = list(A.read_archive_raw(out, "market_data"))
    assert [s for s, _ in raws] == list(range(1, n + 1))  # no gap, no duplicate, in order
    assert [read_counter(memoryview(r)[52:]) for _, r in raws] == list(range(1, n + 1))
    assert A.read_gaps(out, "market_data") == []
    assert not list(out.rglob("*.tmp"))
    sent = trio.run(collect_raw, sock, n)
    assert [r for _, r in raws] == sent


def test_resync_beyond_retention_is_recorded_as_a_gap(procs: Procs, short_dir: Path) -> None:
    sock, out, n = short_dir / "md.sock", short_dir / "arch", 4500
    procs.relay(sock, short_dir / "data", "--fsync", "off", "--segment-bytes", "64K", "--retention-bytes", "128K",
                "--ring-size", "64K")
    lg = procs.loadgen(sock, rate=0, count=n)
    assert wait_exit(lg, 30) == 0
    # an archive that already holds 1..10 resumes at 11, which has passed retention: Resync
    first = trio.run(collect_raw, sock, 1, 0)
    oldest = int.from_bytes(first[0][8:16], "little")
    assert oldest > 20
    ddir = A.domain_dir(out, "market_data")
    A.write_flush(ddir, [_frame(s) for s in range(1, 11)], {})
    p = archiver(procs, sock, out, "--until", str(n))
    assert wait_exit(p, 30) == 0
    gaps = A.read_gaps(out, "market_data")
    assert [(g["kind"], g["from_seq"], g["to_seq"], g["count"]) for g in gaps] == [
        ("resync", 11, oldest - 1, oldest - 11)]
    seqs = [s for s, _ in A.read_archive_raw(out, "market_data")]
    assert seqs == list(range(1, 11)) + list(range(oldest, n + 1))
    assert "GAP (resync)" in Path(p.log_path).read_text()  # type: ignore[attr-defined]

    # a fresh archive from the oldest retained message records the missing prefix explicitly
    out2 = short_dir / "arch2"
    p = archiver(procs, sock, out2, "--until", str(n), "--from", "oldest")
    assert wait_exit(p, 30) == 0
    gaps2 = A.read_gaps(out2, "market_data")
    assert [(g["kind"], g["from_seq"]) for g in gaps2] == [("before_start", 1)]
    assert gaps2[0]["to_seq"] >= oldest - 1


def _frame(seq: int, ev: int = DAY1) -> bytes:
    return encode(Message(domain=1, source_id=9, source_seq=seq, domain_seq=seq, event_time_ns=ev,
                          tlvs=(UnknownTLV(type_code=250, body=seq.to_bytes(10, "little")),)))


def test_multi_date_flush_interrupted_between_renames_rolls_forward(short_dir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = short_dir / "arch"
    ddir = A.domain_dir(out, "market_data")
    ddir.mkdir(parents=True)
    A.write_flush(ddir, [_frame(s) for s in range(1, 5)], {})
    frames = [_frame(s, DAY1 + (s % 2) * 86_400 * 10**9) for s in range(5, 15)]  # two dates, interleaved
    real_replace = os.replace
    calls = []

    def crashing_replace(src: object, dst: object) -> None:
        calls.append(dst)
        if len(calls) == 3:  # commit file renamed, first part renamed, crash before the second
            raise SystemExit("crash")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(A.os, "replace", crashing_replace)
    with pytest.raises(SystemExit):
        A.write_flush(ddir, frames, {})
    monkeypatch.setattr(A.os, "replace", real_replace)
    assert (ddir / A.COMMIT_FILE).exists()
    A.recover(ddir)
    assert not (ddir / A.COMMIT_FILE).exists() and not list(ddir.rglob("*.tmp"))
    assert [s for s, _ in A.read_archive_raw(out, "market_data")] == list(range(1, 15))
    assert A.last_archived_seq(out, "market_data") == 14


def test_half_written_tmp_without_commit_is_discarded(short_dir: Path) -> None:
    out = short_dir / "arch"
    ddir = A.domain_dir(out, "market_data")
    ddir.mkdir(parents=True)
    A.write_flush(ddir, [_frame(s) for s in range(1, 5)], {})
    torn = ddir / "date=2024-01-05" / f".{A.part_name(5, 9)}.tmp"
    torn.write_bytes(b"PAR1 torn")
    a = A.Archiver("market_data", out, short_dir / "none.sock")
    assert not torn.exists()
    assert a.subscribe_from == 5 and a.expected == 5
    a.close()


def test_gaps_file_and_rewind_accounting(short_dir: Path) -> None:
    out = short_dir / "arch"
    a = A.Archiver("market_data", out, short_dir / "none.sock", from_seq=1)
    a._accept([_frame(1), _frame(2), _frame(5), _frame(6)], {"resyncs": 1, "lost": 2})
    assert [read for read in (A.read_gaps(out, "market_data"))][0]["from_seq"] == 3
    a._accept([_frame(4), _frame(5), _frame(6), _frame(7)], {})  # relay reused 4..6: not archived twice
    assert [int.from_bytes(f[8:16], "little") for f in a.buffer] == [1, 2, 5, 6, 7]
    kinds = [(g["kind"], g["from_seq"], g["to_seq"]) for g in A.read_gaps(out, "market_data")]
    assert kinds == [("resync", 3, 4), ("rewind", 4, 6)]
    assert json.loads((A.domain_dir(out, "market_data") / A.GAPS_FILE).read_text().splitlines()[0])["count"] == 2
    a.close()


# ---- the manifest ----


def test_the_manifest_lists_each_file_with_epoch_range_rows_size_and_sha256(short_dir: Path) -> None:
    out = short_dir / "arch"
    ddir = A.domain_dir(out, "market_data")
    old = os.umask(0o002)  # a loose umask must not widen what is created
    try:
        A.make_dirs(ddir, A.DIR_MODE)
        paths = A.write_flush(ddir, [_frame(s) for s in range(1, 7)], {}, epochs=[4, 4, 4, 5, 5, 5])
    finally:
        os.umask(old)
    assert [p.name for p in paths] == [A.part_name(1, 3), A.part_name(4, 6)]  # one file per epoch
    found = A.read_manifest(ddir)
    assert found is not None and found[1] == []
    entries = sorted(found[0].values(), key=lambda e: e.first_seq)
    assert [(e.epoch, e.first_seq, e.last_seq, e.rows) for e in entries] == [(4, 1, 3, 3), (5, 4, 6, 3)]
    for e, p in zip(entries, paths):
        assert (e.sha256, e.bytes) == A.file_sha256(p) and e.file == str(p.relative_to(ddir))
        assert int(pq.read_metadata(p).metadata[b"alphapulse.epoch"]) == e.epoch
    for p in [*paths, ddir / A.MANIFEST_FILE]:
        assert p.stat().st_mode & 0o777 == 0o640, p
    assert ddir.stat().st_mode & 0o777 == 0o750
    assert check_archive(out, "market_data").epochs == {4: (1, 3), 5: (4, 6)}


def test_a_crash_before_the_manifest_line_and_a_torn_line_are_repaired_at_start(
        short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = short_dir / "arch"
    ddir = A.domain_dir(out, "market_data")
    ddir.mkdir(parents=True)
    A.write_flush(ddir, [_frame(s) for s in range(1, 5)], {})

    def crash(ddir: Path, entries: list[A.ManifestEntry]) -> None:
        with open(ddir / A.MANIFEST_FILE, "a") as f:
            f.write(entries[0].line()[:30])  # half a line, then the crash
        raise SystemExit("crash")

    monkeypatch.setattr(A, "_append_manifest", crash)
    with pytest.raises(SystemExit):
        A.write_flush(ddir, [_frame(s) for s in range(5, 9)], {})
    monkeypatch.undo()
    assert A.last_archived_seq(out, "market_data") == 8  # published, not listed
    a = A.Archiver("market_data", out, short_dir / "none.sock")
    a.close()
    assert (ddir / A.MANIFEST_FILE).read_bytes().endswith(b"\n")
    found = A.read_manifest(ddir)
    assert found is not None and found[1] == []
    assert sorted((e.first_seq, e.last_seq) for e in found[0].values()) == [(1, 4), (5, 8)]
    assert check_archive(out, "market_data").ok

    # an archive from before manifests gets one, from its files as they are, at the archiver's next start
    (ddir / A.MANIFEST_FILE).unlink()
    assert not check_archive(out, "market_data").has_manifest
    A.Archiver("market_data", out, short_dir / "none.sock").close()
    chk = check_archive(out, "market_data")
    assert chk.has_manifest and chk.ok and chk.rows == 8


def test_the_archiver_splits_a_flush_at_an_epoch_change(short_dir: Path) -> None:
    out = short_dir / "arch"
    a = A.Archiver("market_data", out, short_dir / "none.sock", from_seq=1)
    a.epoch = 2
    a._accept([_frame(1), _frame(2)], {})
    a.epoch = 3  # the relay restarted; sequences continue
    a._accept([_frame(3)], {})
    trio.run(a.flush)
    a.close()
    chk = check_archive(out, "market_data")
    assert chk.ok and chk.epochs == {2: (1, 2), 3: (3, 3)}
