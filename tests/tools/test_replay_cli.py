"""``alphapulse replay``: order, flags, preserved times, pacing, --from/--to, gaps and clear errors.

Archives are built with the archiver's own writer (``relays.archiver.write_flush``), the relay is
a real daemon subprocess, and the CLI runs as a subprocess, exactly as an operator runs it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

import protocol as P
from protocol.header import FLAG_REPLAYED, FLAG_RETRANSMIT, Domain
from protocol.message import encode
from relays.archiver import GAPS_FILE, domain_dir, write_flush
from relays.client import RelayConsumer

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_704_412_800 * 10**9  # 2024-01-05
POOL = P.PoolId.of(1, P.Venue.UNISWAP_V2, P.VenueKind.UNISWAP_V2, "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20)


def frame(seq: int, *, source_id: int = 17, flags: int = 0) -> bytes:
    """An archived frame as the relay stamped it: domain_seq set, receive times 10 ms apart."""
    tlv = P.V2Reserves(pool=POOL, block_number=1000 + seq, log_index=seq, reserve0=10**20 + seq, reserve1=10**18)
    return encode(P.Message(domain=Domain.MARKET_DATA, tlvs=(tlv,), source_id=source_id, source_seq=seq,
                            domain_seq=seq, event_time_ns=T0 + seq * 12 * 10**9,
                            receive_time_ns=T0 + seq * 10**7, flags=flags))


def make_archive(root: Path, seqs: list[int], gaps: list[dict[str, object]] = ()) -> Path:  # type: ignore[assignment]
    ddir = domain_dir(root, "market_data")
    ddir.mkdir(parents=True, exist_ok=True)
    frames = [frame(s, flags=FLAG_RETRANSMIT if s == 3 else 0) for s in seqs]
    for i in range(0, len(frames), 7):  # several part files
        write_flush(ddir, frames[i:i + 7], {"alphapulse.domain": "market_data"})
    for g in gaps:
        with open(ddir / GAPS_FILE, "a") as f:
            f.write(json.dumps(g) + "\n")
    return root


@pytest.fixture
def relay(short_dir: Path) -> Iterator[Path]:
    sock = short_dir / "md.sock"
    log = open(short_dir / "relay.log", "wb")  # noqa: SIM115
    p = subprocess.Popen([sys.executable, "-m", "tools.cli", "relay", "--domain", "market_data", "--socket", str(sock),
                          "--data-dir", str(short_dir / "relay"), "--fsync", "off"], cwd=ROOT, stdout=log,
                         stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    log.close()
    try:
        deadline = time.monotonic() + 20
        while True:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(str(sock))
                break
            except OSError:
                assert time.monotonic() < deadline and p.poll() is None, (short_dir / "relay.log").read_text()
                time.sleep(0.05)
            finally:
                s.close()
        yield sock
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.cli", "replay", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def consume(sock: Path, n: int) -> list[P.Message]:
    async def go() -> list[P.Message]:
        out: list[P.Message] = []
        with trio.fail_after(10):
            async with RelayConsumer.connect("market_data", sock, from_seq=0, name="t") as c:
                async for m in c:
                    out.append(m)
                    if len(out) == n:
                        break
        return out

    return trio.run(go)


def test_replay_preserves_order_times_payload_and_sets_the_flag(short_dir: Path, relay: Path) -> None:
    seqs = list(range(1, 31))
    make_archive(short_dir / "arch", seqs)
    t0 = time.monotonic()
    r = replay(str(short_dir / "arch"), "--socket", str(relay), "--speed", "1")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "done: 30 messages (domain_seq 1..30)" in r.stderr and "no gaps" in r.stderr
    assert "recorded span 0.290 s" in r.stderr
    assert took >= 0.29  # paced by the original receive times (10 ms apart) at 1x
    got = consume(relay, 30)
    assert [m.domain_seq for m in got] == seqs  # fresh relay: 1..30 in archive order
    for m, s in zip(got, seqs):
        orig = P.decode(frame(s, flags=FLAG_RETRANSMIT if s == 3 else 0))
        assert m.tlvs == orig.tlvs
        assert (m.event_time_ns, m.receive_time_ns) == (orig.event_time_ns, orig.receive_time_ns)
        assert m.flags == orig.flags | FLAG_REPLAYED
        assert m.source_id == 0x5241 and m.source_seq == s


def test_from_to_as_fast_as_possible_and_custom_source(short_dir: Path, relay: Path) -> None:
    make_archive(short_dir / "arch", list(range(1, 51)))
    r = replay(str(short_dir / "arch"), "--socket", str(relay), "--as-fast-as-possible", "--from", "11", "--to", "20",
               "--source-id", "77")
    assert r.returncode == 0, r.stderr
    assert "done: 10 messages (domain_seq 11..20)" in r.stderr
    got = consume(relay, 10)
    assert [m.tlvs[0].log_index for m in got] == list(range(11, 21))
    assert {m.source_id for m in got} == {77}


def test_gaps_warn_with_their_place_and_continue(short_dir: Path, relay: Path) -> None:
    seqs = [s for s in range(1, 41) if not 10 <= s <= 14 and s != 30]  # 10..14 recorded, 30 unrecorded
    make_archive(short_dir / "arch", seqs, gaps=[{"kind": "resync", "from_seq": 10, "to_seq": 14, "count": 5}])
    # a hole nobody recorded (30) is damage: refused (below) unless --allow-missing replays what is there
    r = replay(str(short_dir / "arch"), "--socket", str(relay), "--as-fast-as-possible", "--allow-missing")
    assert r.returncode == 0, r.stderr
    assert "the archive is incomplete (1 sequences missing or unreadable)" in r.stderr
    assert ("WARNING: archive gap (resync): domain_seq 10..14 (5 messages) are not in the archive; "
            "after message #9 (domain_seq 9), before domain_seq 15; continuing") in r.stderr
    assert "WARNING: archive gap (unrecorded): domain_seq 30..30 (1 messages)" in r.stderr
    assert "before domain_seq 31" in r.stderr
    assert "2 gaps (6 messages missing: 10..14, 30..30)" in r.stderr
    got = consume(relay, len(seqs))
    assert [m.tlvs[0].log_index for m in got] == seqs


def test_clear_errors(short_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In-process (``tools.replay.main``): the same code path as the CLI, without a process start per case."""
    from tools.replay import main

    def replay(*args: str) -> subprocess.CompletedProcess[str]:
        code = main(list(args))
        return subprocess.CompletedProcess(args, code, "", capsys.readouterr().err)

    r = replay(str(short_dir / "nothing-here"))
    assert r.returncode == 2 and "no archive at" in r.stderr and "does not exist" in r.stderr
    (short_dir / "notarchive").mkdir()
    r = replay(str(short_dir / "notarchive"))
    assert r.returncode == 2 and "has no domain=market_data/" in r.stderr and "is this an archive?" in r.stderr
    make_archive(short_dir / "arch", list(range(1, 6)))
    r = replay(str(short_dir / "arch"), "--domain", "signal")
    assert r.returncode == 2 and "has no domain=signal/ (it holds domain=market_data)" in r.stderr
    domain_dir(short_dir / "empty", "market_data").mkdir(parents=True)
    r = replay(str(short_dir / "empty"))
    assert r.returncode == 2 and "is empty: no part files" in r.stderr
    r = replay(str(short_dir / "arch"), "--from", "9", "--to", "3")
    assert r.returncode == 2 and "--to 3 is before --from 9" in r.stderr
    r = replay(str(short_dir / "arch"), "--from", "6")
    assert r.returncode == 2 and "nothing to replay" in r.stderr and "holds domain_seq 1..5" in r.stderr
    r = replay(str(short_dir / "arch"), "--socket", str(short_dir / "no.sock"), "--connect-timeout", "0.5")
    assert r.returncode == 1 and "no market_data relay answering" in r.stderr


def test_a_corrupt_parquet_file_is_one_line_and_exit_2(short_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from relays.archiver import archive_files
    from tools.replay import EXIT_USAGE, main

    root = make_archive(short_dir / "arch", list(range(1, 22)))
    victim = archive_files(root, "market_data")[1].path
    victim.write_bytes(b"PAR1" + os.urandom(200) + b"PAR1")  # bit rot
    code = main([str(root), "--domain", "market_data", "--socket", str(short_dir / "none.sock")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if str(victim) in ln]
    assert len(lines) == 1 and "not a readable Parquet file" in lines[0]


# ---- an incomplete archive: which sequences are missing, one line, exit 2, nothing published ----


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from tools.replay import main

    code = main(list(args))
    return code, capsys.readouterr().err


def _files(root: Path) -> list[Path]:
    from relays.archiver import archive_files

    return [f.path for f in archive_files(root, "market_data")]


@pytest.mark.parametrize("damage", ["deleted", "last deleted", "truncated", "bit flipped"])
def test_an_incomplete_archive_names_the_missing_sequences_and_exits_2(
        short_dir: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    """Files of 7 messages: 1..7, 8..14, 15..21, 22..28, 29..30. The manifest knows each one's range,
    size and sha256, so a lost last file is as visible as a lost middle one. The replay refuses before
    connecting (the socket does not exist: exit 1 would mean it tried)."""
    root = make_archive(short_dir / "arch", list(range(1, 31)))
    files = _files(root)
    victim, lost = (files[-1], "29..30") if damage == "last deleted" else (files[1], "8..14")
    if "deleted" in damage:
        victim.unlink()
        why = f"{victim} is missing (the manifest lists it)"
    elif damage == "truncated":
        victim.write_bytes(victim.read_bytes()[:-50])
        why = f"{victim} is truncated"
    else:
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
        why = f"{victim} is corrupt (its sha256 is not the manifest's)"
    code, err = _main(capsys, str(root), "--socket", str(short_dir / "none.sock"), "--connect-timeout", "0.2")
    assert code == 2 and "Traceback" not in err
    [line] = [ln for ln in err.splitlines() if "error:" in ln]
    assert f"7 sequences missing: domain_seq {lost} ({why}" in line if lost == "8..14" else \
        f"2 sequences missing: domain_seq {lost} ({why}" in line
    assert "nothing replayed" in line and "--allow-missing" in line
    # the rest of the archive is fine: a range that avoids the damage replays (here: no relay, exit 1)
    if lost == "8..14":
        code, err = _main(capsys, str(root), "--from", "15", "--to", "21", "--socket", str(short_dir / "none.sock"),
                          "--connect-timeout", "0.2")
        assert code == 1 and "no market_data relay answering" in err


def test_an_old_archive_without_manifest_is_checked_from_its_files(short_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from relays.archive_check import check_archive
    from relays.archiver import MANIFEST_FILE

    root = make_archive(short_dir / "arch", list(range(1, 31)))
    (domain_dir(root, "market_data") / MANIFEST_FILE).unlink()
    files = _files(root)
    files[2].unlink()  # 15..21
    code, err = _main(capsys, str(root), "--socket", str(short_dir / "none.sock"), "--connect-timeout", "0.2")
    assert code == 2 and "Traceback" not in err
    assert "note: " in err and "has no manifest" in err and "a lost last file cannot be detected" in err
    [line] = [ln for ln in err.splitlines() if "error:" in ln]
    assert ("7 sequences missing: domain_seq 15..21 (no file holds them and _gaps.jsonl does not record them, "
            "inside the files of epoch 0)") in line
    # what the files cannot tell: the last one gone leaves a shorter archive that looks whole (and says why)
    files[-1].unlink()
    (domain_dir(root, "market_data") / GAPS_FILE).write_text(json.dumps(
        {"kind": "resync", "from_seq": 15, "to_seq": 21, "count": 7}) + "\n")
    chk = check_archive(root, "market_data")
    assert chk.ok and chk.last_seq == 28 and "lost last file cannot be detected" in chk.note


def test_a_part_file_with_a_damaged_page_is_one_line_during_the_replay(short_dir: Path, relay: Path) -> None:
    """An old archive (no manifest to hold the checksum) whose footer reads but whose data page does
    not: the replay meets it while publishing and stops with one line naming it, exit 2."""
    from relays.archiver import MANIFEST_FILE

    root = make_archive(short_dir / "arch", list(range(1, 22)))
    (domain_dir(root, "market_data") / MANIFEST_FILE).unlink()
    victim = _files(root)[1]
    data = bytearray(victim.read_bytes())
    for i in range(8, 200):  # the first column chunk's pages, well before the footer
        data[i] ^= 0xFF
    victim.write_bytes(bytes(data))
    r = replay(str(root), "--socket", str(relay), "--as-fast-as-possible")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if str(victim) in ln]
    assert len(lines) == 1 and "not a readable Parquet file" in lines[0]
