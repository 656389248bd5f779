"""The on-disk journal: segment files of stamped frames, bounded retention, recovery.

Layout of the data directory::

    <data-dir>/epoch                      decimal epoch counter, +1 at every start (atomic rename)
    <data-dir>/lock                       flock'ed by the running relay
    <data-dir>/journal/<first_seq>.src    JSON: per-source last source_seq *before* this segment
    <data-dir>/journal/<first_seq>.seg    frames first_seq, first_seq + 1, ... back to back

``<first_seq>`` is the first domain sequence of the segment, zero-padded to 20
digits so names sort numerically. A segment holds exactly the frames as they
went out to consumers (domain_seq stamped), so a frame read back from disk is
byte-identical to the live one and needs no re-encoding.

Theory of operation
-------------------
*Append*: one ``os.write`` per chunk (everything accepted from one read).
When the current segment exceeds ``segment_bytes`` the next chunk starts a new
segment: first its ``.src`` sidecar (the dedupe table as of the segment start,
written to a temporary name and renamed), then the ``.seg``. Old segments are
deleted from the front while the total exceeds ``retention_bytes`` (the newest
segment is never deleted).

*Recovery* (after a clean stop or ``kill -9``): read the newest segment's
``.src`` for the dedupe table, then scan that one segment frame by frame --
prefix check, CRC, and domain_seq must continue ``first_seq, first_seq + 1, ...``
-- updating the table from each frame's (source_id, source_seq). The first
frame that fails (a torn write: the process died mid-``write``, or the disk
returned garbage) and everything after it is truncated away. Recovery cost is
one segment, independent of retention.

*Durability*: ``sync_targets()`` / ``synced()`` let the caller fsync in a
worker thread (group commit) without the journal's bookkeeping leaving the
event loop thread. After ``synced(seq)`` every frame ``<= seq`` is on stable
storage.

*Reads* for consumers that are behind the in-memory ring: ``read(seq, max)``
returns whole frames starting at ``seq`` from one segment using ``os.pread``.
Each segment keeps a sparse index (sequence -> file offset, one entry per
``INDEX_EVERY`` bytes), built while appending, or by one header scan the first
time an older segment is read.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import zlib
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from protocol.framing import split_frames
from protocol.header import HEADER_SIZE, OFF_COVERED, check_prefix, header_struct
from runtime.files import ensure_private_dir, open_private, write_private

from .ring import Chunk


class JournalCorrupt(ValueError):
    """A journal file (epoch counter, segment sidecar) cannot be read back; the message names the
    file and says what to do, in one line."""


INDEX_EVERY = 64 * 1024
_SCAN = header_struct("checksum", "domain_seq", "source_seq", "source_id")
_READ_BLOCK = 1 << 20


def _name(first_seq: int) -> str:
    return f"{first_seq:020d}"


@dataclass(slots=True)
class Segment:
    first_seq: int
    path: Path
    size: int = 0  # bytes of whole, valid frames
    last_seq: int = 0  # first_seq - 1 when empty
    index_seqs: list[int] = field(default_factory=list)
    index_offs: list[int] = field(default_factory=list)
    indexed: bool = False

    def add_index(self, seq: int, off: int) -> None:
        if not self.index_offs or off - self.index_offs[-1] >= INDEX_EVERY:
            self.index_seqs.append(seq)
            self.index_offs.append(off)


@dataclass(slots=True)
class Recovery:
    head_seq: int
    oldest_seq: int
    last_source_seq: dict[int, int]
    truncated_bytes: int
    segments: int


def scan_frames(data: bytes | memoryview, first_seq: int, seg: Segment | None = None) -> tuple[int, int, dict[int, int]]:
    """Validate frames from the start of ``data``; return (valid bytes, frames, per-source last seq).

    Stops at the first incomplete, corrupt or out-of-sequence frame.
    """
    offs, _ = split_frames(data, 0, len(data), strict=False)
    pos = 0
    n = 0
    last: dict[int, int] = {}
    unpack = _SCAN.unpack_from
    crc32 = zlib.crc32
    mv = memoryview(data)
    for nxt in offs.tolist()[1:]:
        csum, dseq, sseq, sid = unpack(data, pos)
        if dseq != first_seq + n or crc32(mv[pos + OFF_COVERED : nxt]) != csum:
            break
        if seg is not None:
            seg.add_index(dseq, pos)
        last[sid] = sseq
        pos = nxt
        n += 1
    return pos, n, last


class Journal:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = 64 << 20,
        retention_bytes: int = 1 << 30,
    ) -> None:
        if segment_bytes < 4096:
            raise ValueError("segment_bytes must be at least 4096")
        if retention_bytes < segment_bytes:
            raise ValueError("retention_bytes must be at least one segment (segment_bytes)")
        self.dir = Path(directory)
        self.segment_bytes = segment_bytes
        self.retention_bytes = retention_bytes
        self.segments: list[Segment] = []
        self._firsts: list[int] = []
        self._fd: int | None = None  # the current (last) segment, open for append
        self._unsynced_fds: list[int] = []  # rolled segments whose data is not fsynced yet
        self._dir_dirty = False
        self.head_seq = 0
        self.written_seq = 0  # == head_seq; kept separately for clarity in the sync protocol
        self.synced_seq = 0
        self.total_bytes = 0
        self.source_state: dict[int, int] = {}  # per-source last source_seq, through head_seq

    # ---- recovery ----

    def recover(self) -> Recovery:
        ensure_private_dir(self.dir)
        firsts = sorted(int(p.stem) for p in self.dir.glob("*.seg") if p.stem.isdigit())
        truncated = 0
        self.segments = [Segment(f, self.dir / f"{_name(f)}.seg") for f in firsts]
        for seg in self.segments:
            # never read, truncate or append through a symlink someone planted in the data directory
            if not stat.S_ISREG(os.lstat(seg.path).st_mode):
                raise JournalCorrupt(f"{seg.path} is not a regular file (a symlink?); refusing to use it")
        for a, b in zip(self.segments, self.segments[1:]):
            a.size = (a.path.stat()).st_size
            a.last_seq = b.first_seq - 1
        self.source_state = {}
        if self.segments:
            cur = self.segments[-1]
            src = self.dir / f"{_name(cur.first_seq)}.src"
            if src.exists():
                self.source_state = _read_sidecar(src)
            data = cur.path.read_bytes()
            valid, n, last = scan_frames(data, cur.first_seq, cur)
            cur.indexed = True
            self.source_state.update(last)
            if valid < len(data):
                truncated = len(data) - valid
                with open(cur.path, "r+b") as f:
                    f.truncate(valid)
                    os.fsync(f.fileno())
            cur.size = valid
            cur.last_seq = cur.first_seq + n - 1
            self.head_seq = cur.last_seq
        self._firsts = [s.first_seq for s in self.segments]
        self.total_bytes = sum(s.size for s in self.segments)
        self.written_seq = self.synced_seq = self.head_seq
        if self.segments:
            self._fd = open_private(self.segments[-1].path, os.O_WRONLY | os.O_APPEND)
        # drop sidecars of segments that no longer exist (a crash between the two unlinks)
        for p in self.dir.glob("*.src"):
            if p.stem.isdigit() and int(p.stem) not in self._firsts:
                p.unlink()
        return Recovery(
            head_seq=self.head_seq,
            oldest_seq=self.oldest_seq,
            last_source_seq=dict(self.source_state),
            truncated_bytes=truncated,
            segments=len(self.segments),
        )

    @property
    def oldest_seq(self) -> int:
        """Lowest sequence still on disk (``head_seq + 1`` when the journal is empty)."""
        for s in self.segments:
            if s.last_seq >= s.first_seq:
                return s.first_seq
        return self.head_seq + 1

    # ---- appending ----

    def append(self, chunk: Chunk) -> None:
        """Write the chunk's frames (already stamped) with one write."""
        self.append_frames(chunk.view(), chunk.first_seq, chunk.last_seq)
        self.source_state[chunk.source_id] = chunk.last_source_seq

    def append_frames(self, data: memoryview | bytes, first_seq: int, last_seq: int) -> None:
        """Write stamped frames ``first_seq..last_seq`` with one write (dedupe table untouched).

        The table in ``source_state`` is snapshotted into the sidecar of any
        segment this append starts, *before* these frames, so recovery never
        believes a source sequence is in the log when its frame was torn away.
        """
        if first_seq != self.head_seq + 1:
            raise ValueError(f"journal append at {first_seq}, head is {self.head_seq}")
        cur = self.segments[-1] if self.segments else None
        if cur is None or (cur.size >= self.segment_bytes and cur.last_seq >= cur.first_seq):
            cur = self._roll(first_seq)
        n = len(data)
        written = os.write(self._fd, data)  # type: ignore[arg-type]
        while written < n:  # regular files do not short-write in practice; be correct anyway
            written += os.write(self._fd, memoryview(data)[written:])  # type: ignore[arg-type]
        cur.add_index(first_seq, cur.size)
        cur.size += n
        cur.last_seq = last_seq
        self.total_bytes += n
        self.head_seq = self.written_seq = last_seq

    def _roll(self, first_seq: int) -> Segment:
        if self._fd is not None:
            self._unsynced_fds.append(self._fd)
            self._fd = None
        write_private(self.dir / f"{_name(first_seq)}.src",
                      json.dumps({"last_source_seq": {str(k): v for k, v in self.source_state.items()}}), fsync=False)
        seg = Segment(first_seq, self.dir / f"{_name(first_seq)}.seg", last_seq=first_seq - 1, indexed=True)
        self._fd = open_private(seg.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC)
        self.segments.append(seg)
        self._firsts.append(first_seq)
        self._dir_dirty = True
        self._enforce_retention()
        return seg

    def _enforce_retention(self) -> None:
        while len(self.segments) > 1 and self.total_bytes > self.retention_bytes:
            old = self.segments.pop(0)
            self._firsts.pop(0)
            self.total_bytes -= old.size
            old.path.unlink(missing_ok=True)
            (self.dir / f"{_name(old.first_seq)}.src").unlink(missing_ok=True)
            self._dir_dirty = True

    # ---- durability (group commit) ----

    def sync_targets(self) -> tuple[list[int], int, int | None]:
        """What to fsync now: (file descriptors, sequence they cover, directory fd or None).

        Call from the event loop; fsync the returned fds anywhere (a worker
        thread), then call ``synced`` from the event loop.
        """
        fds = list(self._unsynced_fds)
        if self._fd is not None:
            fds.append(self._fd)
        dir_fd = None
        if self._dir_dirty:
            try:
                dir_fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
                self._dir_dirty = False
            except OSError as exc:  # out of descriptors: the next sync does the directory
                if exc.errno not in (errno.EMFILE, errno.ENFILE):
                    raise
        return fds, self.written_seq, dir_fd

    def synced(self, fds: list[int], seq: int, dir_fd: int | None) -> None:
        for fd in fds:
            if fd in self._unsynced_fds:
                self._unsynced_fds.remove(fd)
                os.close(fd)
        if dir_fd is not None:
            os.close(dir_fd)
        self.synced_seq = max(self.synced_seq, seq)

    def sync(self) -> None:
        """fsync everything now, in this thread."""
        fds, seq, dir_fd = self.sync_targets()
        for fd in fds:
            os.fsync(fd)
        if dir_fd is not None:
            os.fsync(dir_fd)
        self.synced(fds, seq, dir_fd)

    @property
    def needs_sync(self) -> bool:
        return self.synced_seq < self.written_seq or bool(self._unsynced_fds) or self._dir_dirty

    def close(self) -> None:
        for fd in self._unsynced_fds:
            os.close(fd)
        self._unsynced_fds.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # ---- reading ----

    def _build_index(self, seg: Segment) -> None:
        with open(seg.path, "rb") as f:
            data = f.read(seg.size)
        valid, n, _ = scan_frames(data, seg.first_seq, seg)
        seg.indexed = True
        if seg is not self.segments[-1]:
            seg.size = valid
            seg.last_seq = seg.first_seq + n - 1

    def read(self, seq: int, max_bytes: int) -> tuple[bytes, int]:
        """Whole frames from ``seq`` on (at least one, at most ``max_bytes`` unless one frame is bigger).

        Returns ``(data, next_seq)``; empty data when ``seq`` is not in the
        journal (below ``oldest_seq`` or above ``head_seq``).
        """
        if seq > self.head_seq or seq < self.oldest_seq:
            return b"", seq
        k = bisect_right(self._firsts, seq) - 1
        seg = self.segments[k]
        if seq > seg.last_seq:
            return b"", seq
        if not seg.indexed:
            self._build_index(seg)
        i = bisect_right(seg.index_seqs, seq) - 1
        at_seq, off = (seg.index_seqs[i], seg.index_offs[i]) if i >= 0 else (seg.first_seq, 0)
        try:
            fd = os.open(seg.path, os.O_RDONLY)
        except FileNotFoundError:  # retention removed it under us
            return b"", seq
        try:
            # skip forward from the index entry to ``seq`` by reading headers only
            while at_seq < seq:
                hdr = os.pread(fd, HEADER_SIZE, off)
                off += check_prefix(hdr, 0)
                at_seq += 1
            want = min(max(max_bytes, 1), seg.size - off)
            data = os.pread(fd, want, off)
            offs, pos = split_frames(data)  # whole frames only
            if len(offs) == 1 and len(data) >= HEADER_SIZE:  # one frame larger than max_bytes
                size = check_prefix(data, 0)
                data = os.pread(fd, size, off)
                return data, seq + 1
            return data[:pos], seq + len(offs) - 1
        finally:
            os.close(fd)


def _read_sidecar(src: Path) -> dict[int, int]:
    try:
        raw = json.loads(src.read_text())
        return {int(k): int(v) for k, v in raw["last_source_seq"].items()}
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise JournalCorrupt(f"{src} is corrupt (not a segment's source table); restore it, or remove it to "
                             f"rebuild the table from the segment alone (older sources may then be re-accepted)") from None


def bump_epoch(data_dir: str | os.PathLike[str]) -> int:
    """Increment and durably store the epoch counter; return the new epoch."""
    path = Path(data_dir) / "epoch"
    try:
        text = path.read_text().strip()
        epoch = int(text or 0)
        if epoch < 0:
            raise ValueError
    except FileNotFoundError:
        epoch = 0
    except (ValueError, UnicodeDecodeError):
        raise JournalCorrupt(f"{path} is corrupt (not a decimal epoch counter); restore it, or remove the "
                             f"data directory's journal and epoch to start a fresh epoch") from None
    epoch += 1
    write_private(path, f"{epoch}\n")
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return epoch
