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
written to a temporary name and renamed), then the ``.seg``. After every append
and segment start, old segments are deleted from the front while the total
exceeds ``retention_bytes`` (the newest segment is never deleted).

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

from protocol.errors import FrameError, ProtocolError
from protocol.framing import split_frames
from protocol.header import HEAD4, HEADER_SIZE, OFF_COVERED, check_prefix, header_struct
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
    holes: list[Hole] = field(default_factory=list)  # damaged ranges, in order

    def add_index(self, seq: int, off: int, *, force: bool = False) -> None:
        if not self.index_offs or off - self.index_offs[-1] >= INDEX_EVERY or (force and off > self.index_offs[-1]):
            self.index_seqs.append(seq)
            self.index_offs.append(off)


@dataclass(frozen=True, slots=True)
class Hole:
    """Sequences ``first_seq..last_seq`` of a segment are unreadable: bytes ``[start, end)`` of
    the file are damaged (a CRC that does not match, a header that does not parse, a sequence
    out of place). ``first_seq > last_seq`` for damaged bytes that held no sequence."""

    first_seq: int
    last_seq: int
    start: int
    end: int
    reason: str

    def __str__(self) -> str:
        return f"sequences {self.first_seq}..{self.last_seq} (bytes {self.start}..{self.end}: {self.reason})"


@dataclass(slots=True)
class SegmentScan:
    """What ``scan_segment`` found: the frames that are good, the damage between them, and a torn
    tail (bytes from ``valid_end`` on: an incomplete last write) if any."""

    valid_end: int
    next_seq: int  # the sequence after the last one the segment accounts for (good or damaged)
    holes: list[Hole]
    last_source_seq: dict[int, int]
    frames: int  # good frames

    @property
    def torn_bytes(self) -> int:
        return self._size - self.valid_end

    _size: int = 0


@dataclass(slots=True)
class Recovery:
    head_seq: int
    oldest_seq: int
    last_source_seq: dict[int, int]
    truncated_bytes: int
    segments: int
    holes: list[tuple[Path, Hole]] = field(default_factory=list)  # damage found, per segment file


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


_MAGIC2 = HEAD4.to_bytes(4, "little")[:2]


def _good_frame_at(data: bytes | memoryview, pos: int, n: int) -> tuple[int, int, int] | None:
    """(size, domain_seq, checksum) of a complete frame at ``pos`` whose prefix parses and whose CRC
    matches, else None."""
    if n - pos < HEADER_SIZE:
        return None
    try:
        size = check_prefix(data, pos)
    except ProtocolError:
        return None
    if pos + size > n:
        return None
    csum, dseq, _, _ = _SCAN.unpack_from(data, pos)
    if zlib.crc32(memoryview(data)[pos + OFF_COVERED : pos + size]) != csum:
        return None
    return size, dseq, csum


def scan_segment(data: bytes, first_seq: int, *, next_first: int | None = None,
                 seg: Segment | None = None) -> SegmentScan:
    """Check every frame of a segment (prefix, CRC, ``domain_seq`` in place) and classify damage.

    After a bad frame the scan looks for the next good frame (magic, parsable prefix, CRC,
    a sequence not below the expected one): if there is one, the bytes between are a *hole*
    (damage in the middle; the sequences it covers are lost, the frames after it are kept).
    If there is none: in an older segment (``next_first`` given) the rest is a hole up to the
    next segment's first sequence; in the newest segment an incomplete last frame (or fewer
    bytes than a header) is a *torn tail* (an interrupted write: truncated), and anything else
    is a hole covering as many frames as can still be walked by their length fields, so their
    sequences -- which may have been acknowledged -- are never issued again.
    """
    n = len(data)
    mv = memoryview(data)
    unpack = _SCAN.unpack_from
    crc32 = zlib.crc32
    pos = 0
    expect = first_seq
    frames = 0
    holes: list[Hole] = []
    last: dict[int, int] = {}
    valid_end = n
    while pos < n:
        size = 0
        if n - pos >= HEADER_SIZE:
            try:
                size = check_prefix(data, pos)
            except ProtocolError:
                size = 0
        if size and pos + size <= n:
            csum, dseq, sseq, sid = unpack(data, pos)
            if dseq == expect and crc32(mv[pos + OFF_COVERED : pos + size]) == csum:
                if seg is not None:
                    seg.add_index(dseq, pos, force=bool(holes) and holes[-1].end == pos)
                last[sid] = sseq
                pos += size
                expect += 1
                frames += 1
                continue
            why = "checksum mismatch" if dseq == expect else f"sequence {dseq} where {expect} belongs"
        else:
            why = "unreadable header" if not size else "incomplete frame"
        # damage at pos: find the next good frame
        q = data.find(_MAGIC2, pos + 1)
        while q >= 0:
            got = _good_frame_at(data, q, n)
            if got is not None and expect <= got[1] <= expect + (q - pos) // HEADER_SIZE + 1:
                break
            q = data.find(_MAGIC2, q + 1)
        if q >= 0:
            d = _SCAN.unpack_from(data, q)[1]
            holes.append(Hole(expect, d - 1, pos, q, why))
            pos, expect = q, d
            continue
        if next_first is not None:
            holes.append(Hole(expect, next_first - 1, pos, n, why))
            expect = next_first
            pos = n
            break
        if size and pos + size > n and n - pos >= HEADER_SIZE and unpack(data, pos)[1] == expect:
            valid_end = pos  # an interrupted last write
            break
        if n - pos < HEADER_SIZE:
            valid_end = pos
            break
        # damaged frames at the end of the newest segment: count them by their lengths
        k, p = 0, pos
        while p < n:
            k += 1
            try:
                p += check_prefix(data, p) if n - p >= HEADER_SIZE else n
            except ProtocolError:
                break
        holes.append(Hole(expect, expect + k - 1, pos, n, why))
        expect += k
        pos = n
        break
    if seg is not None and holes and holes[-1].end == n and pos == n:
        seg.add_index(expect, n, force=True)  # where the next append lands
    out = SegmentScan(valid_end=valid_end, next_seq=expect, holes=holes, last_source_seq=last, frames=frames)
    out._size = n
    return out


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
        # every segment is CRC-checked at start-up: damage anywhere is found now, not when a
        # consumer first reads that history
        found: list[tuple[Path, Hole]] = []
        self.source_state = {}
        for i, seg in enumerate(self.segments):
            newest = i == len(self.segments) - 1
            data = seg.path.read_bytes()
            if newest:
                src = self.dir / f"{_name(seg.first_seq)}.src"
                if src.exists():
                    self.source_state = _read_sidecar(src)
            r = scan_segment(data, seg.first_seq, next_first=None if newest else self.segments[i + 1].first_seq,
                             seg=seg)
            seg.indexed = True
            seg.holes = r.holes
            found += [(seg.path, h) for h in r.holes]
            seg.last_seq = r.next_seq - 1
            seg.size = r.valid_end
            if newest:
                self.source_state.update(r.last_source_seq)
                if r.valid_end < len(data):
                    truncated = len(data) - r.valid_end
                    with open(seg.path, "r+b") as f:
                        f.truncate(r.valid_end)
                        os.fsync(f.fileno())
                self.head_seq = seg.last_seq
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
            holes=found,
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
        if self.total_bytes > self.retention_bytes:
            # here too, not only as a segment starts: one read can be large, and a segment just under
            # retention plus one such read was kept whole until the next segment began
            self._enforce_retention()

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

    def hole_at(self, seq: int) -> Hole | None:
        """The damaged range holding ``seq``, if ``seq`` is one the journal cannot serve."""
        if not self.segments or seq < self.oldest_seq or seq > self.head_seq:
            return None
        seg = self.segments[bisect_right(self._firsts, seq) - 1]
        for h in seg.holes:
            if h.first_seq <= seq <= h.last_seq:
                return h
        return None

    def _damaged(self, seg: Segment, hole: Hole) -> None:
        """Record damage found while reading (bit rot after start-up): reads skip it from now on."""
        seg.holes.append(hole)
        seg.holes.sort(key=lambda h: h.first_seq)
        i = bisect_right(seg.index_seqs, hole.last_seq + 1)
        if not (i and seg.index_seqs[i - 1] == hole.last_seq + 1):
            seg.index_seqs.insert(i, hole.last_seq + 1)
            seg.index_offs.insert(i, hole.end)

    def read(self, seq: int, max_bytes: int) -> tuple[bytes, int]:
        """Whole, CRC-checked frames from ``seq`` on (at least one, at most ``max_bytes`` unless one
        frame is bigger), never reaching into a damaged range.

        Returns ``(data, next_seq)``; empty data when ``seq`` is not in the journal (below
        ``oldest_seq`` or above ``head_seq``) or is damaged (``hole_at(seq)`` says which range).
        """
        if seq > self.head_seq or seq < self.oldest_seq:
            return b"", seq
        k = bisect_right(self._firsts, seq) - 1
        seg = self.segments[k]
        if seq > seg.last_seq:
            return b"", seq
        if not seg.indexed:
            self._build_index(seg)
        if self.hole_at(seq) is not None:
            return b"", seq
        i = bisect_right(seg.index_seqs, seq) - 1
        at_seq, off = (seg.index_seqs[i], seg.index_offs[i]) if i >= 0 else (seg.first_seq, 0)
        limit = seg.size  # stop before the next damaged range
        for h in seg.holes:
            if h.first_seq > seq or (h.first_seq > h.last_seq and h.start >= off):
                limit = min(limit, h.start)
                break
        try:
            fd = os.open(seg.path, os.O_RDONLY)
        except FileNotFoundError:  # retention removed it under us
            return b"", seq
        try:
            try:
                # skip forward from the index entry to ``seq`` by reading headers only
                while at_seq < seq:
                    hdr = os.pread(fd, HEADER_SIZE, off)
                    off += check_prefix(hdr, 0)
                    at_seq += 1
                want = min(max(max_bytes, 1), limit - off)
                data = os.pread(fd, want, off)
                if len(data) >= HEADER_SIZE and check_prefix(data, 0) > len(data):
                    data = os.pread(fd, check_prefix(data, 0), off)  # one frame larger than max_bytes
                offs, _ = split_frames(data, strict=False)  # whole frames only
                if len(offs) == 1:  # not even one whole frame where one must be
                    if len(data) >= HEADER_SIZE:
                        check_prefix(data, 0)
                    raise FrameError("frame cut short")
            except ProtocolError as exc:
                # a header that no longer parses (damage since start-up): the rest of this stretch
                # up to the next index point is unreadable
                j = bisect_right(seg.index_seqs, seq)
                last = seg.index_seqs[j] - 1 if j < len(seg.index_seqs) else seg.last_seq
                end = seg.index_offs[j] if j < len(seg.index_seqs) else seg.size
                self._damaged(seg, Hole(seq, last, off, end, f"unreadable header ({exc})"))
                return b"", seq
            # every frame read back is CRC-checked; the first bad one ends the read (or, if it is
            # the first, becomes a one-frame hole)
            mv = memoryview(data)
            bounds = offs.tolist()
            good = 0
            for a, b in zip(bounds, bounds[1:]):
                csum, dseq = _SCAN.unpack_from(data, a)[:2]
                if dseq != seq + good or zlib.crc32(mv[a + OFF_COVERED : b]) != csum:
                    if good == 0:
                        self._damaged(seg, Hole(seq, seq, off, off + b - a, "checksum mismatch on read"))
                        return b"", seq
                    break
                good += 1
            return data[: bounds[good]], seq + good
        finally:
            os.close(fd)


@dataclass(slots=True)
class SegmentReport:
    path: Path
    first_seq: int
    last_seq: int
    frames: int
    holes: list[Hole]
    torn_bytes: int
    sidecar: str  # "ok", "missing" or why it is unreadable


def verify(directory: str | os.PathLike[str]) -> list[SegmentReport]:
    """Check a journal directory offline, read-only: every segment's frames (prefix, CRC,
    sequence) and sidecar, classified as ``recover`` would (``relay-cli verify``)."""
    d = Path(directory)
    firsts = sorted(int(p.stem) for p in d.glob("*.seg") if p.stem.isdigit())
    out: list[SegmentReport] = []
    for i, first in enumerate(firsts):
        path = d / f"{_name(first)}.seg"
        nxt = firsts[i + 1] if i + 1 < len(firsts) else None
        r = scan_segment(path.read_bytes(), first, next_first=nxt)
        src = d / f"{_name(first)}.src"
        try:
            _read_sidecar(src)
            side = "ok"
        except FileNotFoundError:
            side = "missing"
        except JournalCorrupt:
            side = "unreadable"
        out.append(SegmentReport(path, first, r.next_seq - 1, r.frames, r.holes, r.torn_bytes, side))
    return out


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
