"""``alphapulse archive``: archive one relay domain to Parquet, exactly once, in order.

    alphapulse archive --domain market_data --out DIR [--socket PATH]
                       [--flush-messages N] [--flush-seconds T] [--from oldest|now|SEQ]
                       [--until SEQ] [--name NAME] [--log-level INFO]

Layout (Hive-style partitions, readable with ``pyarrow.dataset.dataset(DIR, partitioning="hive")``)::

    DIR/domain=market_data/date=2024-01-05/part-000000000001-000000010000.parquet
    DIR/domain=market_data/_gaps.jsonl        sequences the archive knows it does not have
    DIR/domain=market_data/_manifest.jsonl    every published file: epoch, sequence range, rows, size, sha256
    DIR/domain=market_data/_commit.json       only while a multi-file flush is being published

``date`` is the UTC date of ``event_time_ns`` (``receive_time_ns`` when the event time is 0).
A flush writes one file per (date, relay epoch) of its messages. A file is named after the
smallest and largest ``domain_seq`` it holds; rows are sorted by ``domain_seq``. Columns: ``domain_seq, source_id, source_seq, event_time_ns, receive_time_ns,
flags, tlv_types (list<uint8>), raw`` (the exact frame bytes as received from the relay), then
decoded key columns taken from the first TLV that has them (null otherwise): ``type_name``,
``pool_id`` (the 67-byte little-endian wire form of the PoolId), ``chain_id``, ``venue``,
``pool_kind``, ``pool_address``, ``token0``, ``token1``, ``block_number``, ``log_index``,
``tx_hash``, ``reserve0``, ``reserve1``, ``amount0``, ``amount1``, ``sqrt_price_x96``,
``liquidity`` (decimal strings: they exceed int64), ``tick``, ``symbol``. ``amount0/amount1``
are signed pool deltas: V3Swap as logged, V2Swap ``in - out``, LiquidityChange the token amounts.

Durability and exactly-once
---------------------------
Frames are buffered and flushed every ``--flush-messages`` messages or ``--flush-seconds``
seconds, whichever comes first. A flush writes one file per date to ``.<name>.tmp`` (a
dot-file, so dataset readers never see it), fsyncs it, then renames it into place and fsyncs
the directory: a crash never leaves a half-written file visible. A flush that spans several
dates first writes ``_commit.json`` listing its renames, so a crash half-way through the
renames is rolled forward on restart; leftover ``.tmp`` files without a commit are deleted.

On start the archiver scans the file names for the largest archived ``domain_seq`` and
subscribes from the next one: a restart (even after ``kill -9``) neither skips nor repeats a
message. It checks every received sequence against the expected next one:

* a jump forward (the relay's ``Resync``: the range passed retention while we were away) is
  recorded in ``_gaps.jsonl`` (fsynced *before* any later message is archived) and logged;
* sequences at or below what is already archived after a relay lost un-fsynced data and
  reuses them (``Resync`` with reason EPOCH_CHANGED) are not archived twice: the reused range
  is recorded as a ``rewind`` gap entry and logged;
* a fresh archive started ``--from oldest`` whose first retained sequence is above 1 records
  the missing prefix as ``before_start``.

Nothing is ever skipped silently.

The manifest
------------
``_manifest.jsonl`` is the archive's own account of what it holds, so that a reader can tell a
missing, truncated or corrupt file from a gap: one JSON object per published file, ::

    {"file": "date=2024-01-05/part-000000000001-000000010000.parquet", "epoch": 3,
     "first_seq": 1, "last_seq": 10000, "rows": 10000, "bytes": 812345, "sha256": "<hex>"}

appended (one ``write`` per flush, ``O_APPEND``, fsynced) after the flush's renames, so a line
never names a file that was not published whole. A crash between the renames and the append
leaves published files without a line; the next start (``recover``) adds the lines of every
part file the manifest does not list, computed from the file itself, and drops a torn last line
first. The same step gives an archive written before manifests existed its manifest (from the
files as they are then). A later line for the same ``file`` replaces an earlier one.
``relays.archive_check.check_archive`` verifies an archive against it (``alphapulse replay``
does before publishing anything). Files are created with explicit modes: 0640 (an archive is
for analysis: group-readable on purpose), directories 0750.

``read_archive(DIR, domain)`` yields the archived messages
in sequence order (decoded from ``raw``); ``read_gaps(DIR, domain)`` the recorded gaps.

One archiver per archive and domain: a second one on the same directory exits 2 (``_lock``).

Exit status: 0 after a clean stop (SIGTERM/SIGINT flush what is buffered) or when ``--until``
was reached, 2 on bad arguments or when another archiver holds the directory.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import heapq
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import trio

from protocol.errors import ProtocolError
from protocol.header import OFF_EVENT_TIME, OFF_RECEIVE_TIME, Domain, read_domain_seq, read_header
from protocol.ids import POOL_ID_SIZE, PoolId
from protocol.message import Message, decode
from protocol.tlv import UnknownTLV
from runtime.errors import BadFile
from runtime.files import make_dirs, open_private
from runtime.metrics import CounterMetricFamily, GaugeMetricFamily, Metric, ProcessMetrics
from runtime.paths import parse_domain
from runtime.process import ProcessMain, Work, add_process_arguments

if TYPE_CHECKING:
    from .client import ClientObserver

log = logging.getLogger("relays.archiver")

PART_RE = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
GAPS_FILE = "_gaps.jsonl"
COMMIT_FILE = "_commit.json"
MANIFEST_FILE = "_manifest.jsonl"
LOCK_FILE = "_lock"
FILE_MODE = 0o640  # archive files: the user's, readable by the group on purpose (analysis)
DIR_MODE = 0o750
EXIT_CONFIG = 2

# Big integers (uint112 .. int256) are kept exactly, as decimal strings.
_BIG_INTS = ("reserve0", "reserve1", "sqrt_price_x96", "liquidity")
# Header columns (never null), in order, then the TLV types and the raw frame, then the
# decoded key columns (null when the message has no such field or does not decode).
_HEADER_COLUMNS = [("domain_seq", pa.uint64()), ("source_id", pa.uint32()), ("source_seq", pa.uint64()),
                   ("event_time_ns", pa.uint64()), ("receive_time_ns", pa.uint64()), ("flags", pa.uint16())]
_DECODED_COLUMNS = (
    [("type_name", pa.string()), ("pool_id", pa.binary(POOL_ID_SIZE)), ("chain_id", pa.uint32()),
     ("venue", pa.uint16()), ("pool_kind", pa.uint8())]
    + [(name, pa.string()) for name in ("pool_address", "token0", "token1")]
    + [("block_number", pa.uint64()), ("log_index", pa.uint32()), ("tx_hash", pa.binary(32))]
    + [(name, pa.string()) for name in (*_BIG_INTS[:2], "amount0", "amount1", *_BIG_INTS[2:])]
    + [("tick", pa.int32()), ("symbol", pa.string())]
)
SCHEMA = pa.schema(
    [pa.field(name, typ, nullable=False) for name, typ in _HEADER_COLUMNS]
    + [pa.field("tlv_types", pa.list_(pa.uint8())), pa.field("raw", pa.binary(), nullable=False)]
    + [pa.field(name, typ) for name, typ in _DECODED_COLUMNS]
)
_DECODED = [f.name for f in SCHEMA][8:]


# ---------------------------------------------------------------------------- layout helpers


def domain_dir(out: str | os.PathLike[str], domain: str | int | Domain) -> Path:
    return Path(out) / f"domain={parse_domain(domain).name.lower()}"


def part_name(first: int, last: int) -> str:
    return f"part-{first:012d}-{last:012d}.parquet"


@dataclass(frozen=True, slots=True)
class PartFile:
    path: Path
    first_seq: int
    last_seq: int


def _part_files(ddir: Path) -> list[PartFile]:
    files = []
    if ddir.is_dir():
        for p in ddir.glob("date=*/part-*.parquet"):
            m = PART_RE.match(p.name)
            if m:
                files.append(PartFile(p, int(m.group(1)), int(m.group(2))))
    files.sort(key=lambda f: (f.first_seq, f.last_seq))
    return files


def archive_files(out: str | os.PathLike[str], domain: str | int | Domain) -> list[PartFile]:
    """Every published part file of ``domain``, sorted by (first_seq, last_seq)."""
    return _part_files(domain_dir(out, domain))


def last_archived_seq(out: str | os.PathLike[str], domain: str | int | Domain) -> int:
    """Largest ``domain_seq`` in the archive (0 when empty), from the file names."""
    return max((f.last_seq for f in archive_files(out, domain)), default=0)


def read_gaps(out: str | os.PathLike[str], domain: str | int | Domain) -> list[dict[str, Any]]:
    """The gap records of ``domain`` (``from_seq``, ``to_seq`` inclusive, ``count``, ``kind``, ...)."""
    path = domain_dir(out, domain) / GAPS_FILE
    if not path.exists():
        return []
    out_: list[dict[str, Any]] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out_.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: ignoring a torn line %r", path, line[:80])
    return out_


def unreadable(path: Path, exc: BaseException) -> BadFile:
    """The one wording of a part file pyarrow cannot read (a ``BadFile``: one line, no traceback)."""
    return BadFile(f"{path} is not a readable Parquet file ({' '.join(str(exc).split())[:200]}); "
                   f"restore it or move it aside (its sequences then count as missing)")


def _iter_file(pf: PartFile) -> Iterator[tuple[int, bytes]]:
    try:
        f = pq.ParquetFile(pf.path)
        for batch in f.iter_batches(columns=["domain_seq", "raw"], batch_size=8192):
            seqs = batch.column(0).to_pylist()
            raws = batch.column(1).to_pylist()
            yield from zip(seqs, raws)
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:  # ArrowInvalid is a ValueError
        raise unreadable(pf.path, exc) from None


def read_archive_raw(out: str | os.PathLike[str], domain: str | int | Domain, *,
                     files: list[PartFile] | None = None) -> Iterator[tuple[int, bytes]]:
    """``(domain_seq, frame bytes)`` of every archived message (of ``files``, default all), in
    sequence order. A file that cannot be read raises ``BadFile`` naming it.

    Files are merged lazily: a file is opened only when its first sequence is due, so memory
    stays bounded by the files of one flush (which may interleave across dates).
    """
    files = archive_files(out, domain) if files is None else sorted(files, key=lambda f: (f.first_seq, f.last_seq))
    heap: list[tuple[int, int, bytes, Iterator[tuple[int, bytes]]]] = []
    i = 0
    last = 0
    while heap or i < len(files):
        while i < len(files) and (not heap or files[i].first_seq <= heap[0][0]):
            it = _iter_file(files[i])
            first = next(it, None)
            if first is not None:
                heapq.heappush(heap, (first[0], i, first[1], it))
            i += 1
        if not heap:
            continue
        seq, idx, raw, it = heapq.heappop(heap)
        nxt = next(it, None)
        if nxt is not None:
            heapq.heappush(heap, (nxt[0], idx, nxt[1], it))
        if seq <= last:
            continue  # cannot happen with files written by this module; never yield twice
        last = seq
        yield seq, raw


def read_archive(out: str | os.PathLike[str], domain: str | int | Domain) -> Iterator[Message]:
    """Every archived message of ``domain`` in ``domain_seq`` order, decoded from ``raw``."""
    for _, raw in read_archive_raw(out, domain):
        yield decode(raw)


# ---------------------------------------------------------------------------- rows


def _date_of(frame: bytes) -> str:
    """UTC date of the event time, else of the receive time (a time that is 0 or absurd is skipped)."""
    for off in (OFF_EVENT_TIME, OFF_RECEIVE_TIME):
        ns = int.from_bytes(frame[off : off + 8], "little")
        if ns:
            try:
                return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%d")
            except (ValueError, OverflowError, OSError):
                continue
    return "1970-01-01"


def _tlv_code(tlv: Any) -> int:
    return tlv.type_code if isinstance(tlv, UnknownTLV) else type(tlv).TYPE


def _key_columns(msg: Message) -> dict[str, Any]:
    """Decoded key columns from the first TLV that carries them."""
    row: dict[str, Any] = {}
    if msg.tlvs:
        row["type_name"] = type(msg.tlvs[0]).__name__
    for tlv in msg.tlvs:
        if isinstance(tlv, UnknownTLV):
            continue
        d = tlv.__dict__
        pool = d.get("pool")
        if pool is not None and "pool_id" not in row and pool:
            pid = PoolId(pool)
            row["pool_id"] = int(pool).to_bytes(POOL_ID_SIZE, "little")
            row["chain_id"] = pid.chain_id
            row["venue"] = pid.venue
            row["pool_kind"] = int(pid.kind)
            row["pool_address"] = pid.address
            row["token0"] = pid.token0.address
            row["token1"] = pid.token1.address
        for name in ("block_number", "log_index", "tick", "symbol"):
            if name in d and name not in row:
                row[name] = d[name]
        if "number" in d and "block_number" not in row:  # BlockHeader
            row["block_number"] = d["number"]
        if "chain_id" in d and "chain_id" not in row:
            row["chain_id"] = d["chain_id"]
        if "venue" in d and "venue" not in row:  # order-book venues
            row["venue"] = d["venue"]
        if "tx_hash" in d and "tx_hash" not in row:
            row["tx_hash"] = bytes(d["tx_hash"])
        for name in _BIG_INTS:
            if name in d and name not in row:
                row[name] = str(d[name])
        if "amount0_in" in d and "amount0" not in row:  # V2Swap: net pool delta
            row["amount0"] = str(d["amount0_in"] - d["amount0_out"])
            row["amount1"] = str(d["amount1_in"] - d["amount1_out"])
        elif "amount0" in d and "amount0" not in row:
            row["amount0"] = str(d["amount0"])
            row["amount1"] = str(d["amount1"])
    return row


def build_table(frames: list[bytes]) -> pa.Table:
    """One Arrow table (sorted by domain_seq) from raw frames."""
    frames = sorted(frames, key=read_domain_seq)
    cols: dict[str, list[Any]] = {f.name: [] for f in SCHEMA}
    header_cols = [(cols[name], name) for name, _ in _HEADER_COLUMNS]
    for fr in frames:
        h = read_header(fr)
        for col, name in header_cols:
            col.append(getattr(h, name))
        dseq = h.domain_seq
        cols["raw"].append(fr)
        try:
            msg = decode(fr)
        except ProtocolError as exc:
            log.warning("domain_seq %d does not decode (%s); archiving raw bytes only", dseq, exc)
            cols["tlv_types"].append(None)
            for name in _DECODED:
                cols[name].append(None)
            continue
        cols["tlv_types"].append([_tlv_code(t) for t in msg.tlvs])
        keys = _key_columns(msg)
        for name in _DECODED:
            cols[name].append(keys.get(name))
    return pa.table(cols, schema=SCHEMA)


# ---------------------------------------------------------------------------- files


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """An archive file, created with its mode from the first byte, never through a symlink."""
    return open_private(path, flags, FILE_MODE)


def _write_tmp(path: Path, table: pa.Table, metadata: dict[str, str]) -> None:
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    with os.fdopen(_create(path), "wb") as f:
        pq.write_table(table, f, compression="zstd", row_group_size=max(1, table.num_rows))
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------------------- the manifest


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One line of ``_manifest.jsonl``: a published file and what it must hold."""

    file: str  # relative to the domain directory: date=YYYY-MM-DD/part-....parquet
    epoch: int
    first_seq: int
    last_seq: int
    rows: int
    bytes: int
    sha256: str

    def line(self) -> str:
        return json.dumps({"file": self.file, "epoch": self.epoch, "first_seq": self.first_seq,
                           "last_seq": self.last_seq, "rows": self.rows, "bytes": self.bytes,
                           "sha256": self.sha256}) + "\n"


def file_sha256(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file's bytes."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def manifest_entry(ddir: Path, path: Path, epoch: int | None = None) -> ManifestEntry:
    """The manifest line of a published part file, computed from the file (``BadFile`` if unreadable)."""
    m = PART_RE.match(path.name)
    if m is None:
        raise ValueError(f"{path} is not a part file")
    try:
        meta = pq.read_metadata(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise unreadable(path, exc) from None
    if epoch is None:
        kv = meta.metadata or {}
        try:
            epoch = int(kv.get(b"alphapulse.epoch", b"0"))
        except ValueError:
            epoch = 0
    digest, size = file_sha256(path)
    return ManifestEntry(file=str(path.relative_to(ddir)), epoch=epoch, first_seq=int(m.group(1)),
                         last_seq=int(m.group(2)), rows=meta.num_rows, bytes=size, sha256=digest)


def read_manifest(ddir: Path) -> tuple[dict[str, ManifestEntry], list[str]] | None:
    """The manifest of a domain directory: entries by file (a later line wins) and the problems
    met reading it (a damaged line; a torn last line is not one: see the module docstring).
    ``None`` when the archive has no manifest (written before manifests existed)."""
    path = ddir / MANIFEST_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    entries: dict[str, ManifestEntry] = {}
    problems: list[str] = []
    lines = data.split(b"\n")
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            d = json.loads(raw)
            e = ManifestEntry(file=str(d["file"]), epoch=int(d["epoch"]), first_seq=int(d["first_seq"]),
                              last_seq=int(d["last_seq"]), rows=int(d["rows"]), bytes=int(d["bytes"]),
                              sha256=str(d["sha256"]))
        except (ValueError, KeyError, TypeError):
            if i == len(lines):  # no newline after it: an append torn by a crash
                continue
            problems.append(f"{path} line {i} is damaged")
            continue
        entries[e.file] = e
    return entries, problems


def _append_manifest(ddir: Path, entries: list[ManifestEntry]) -> None:
    if not entries:
        return
    fd = _create(ddir / MANIFEST_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, "".join(e.line() for e in entries).encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _repair_manifest(ddir: Path) -> None:
    """Drop a torn last line and add the lines of published files the manifest does not list."""
    path = ddir / MANIFEST_FILE
    known: dict[str, ManifestEntry] = {}
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            log.warning("%s: dropping a torn last line left by a crash", path)
            fd = _create(path, os.O_WRONLY)
            try:
                os.ftruncate(fd, keep)
                os.fsync(fd)
            finally:
                os.close(fd)
        found = read_manifest(ddir)
        if found is not None:
            known = found[0]
    unlisted = [pf.path for pf in _part_files(ddir) if str(pf.path.relative_to(ddir)) not in known]
    if not unlisted:
        return
    if not path.exists() and unlisted:
        log.warning("%s: no manifest (an archive written before manifests): writing one for its %d files "
                    "as they are now", ddir, len(unlisted))
    added = []
    for p in unlisted:
        try:
            added.append(manifest_entry(ddir, p))
        except BadFile as exc:
            log.error("%s; left out of the manifest", exc)
    _append_manifest(ddir, added)


def recover(ddir: Path) -> None:
    """Finish or undo a flush interrupted by a crash (see the module docstring)."""
    commit = ddir / COMMIT_FILE
    if commit.exists():
        try:
            plan = json.loads(commit.read_text())
        except json.JSONDecodeError:
            plan = None  # torn commit file: its renames never started (it is renamed into place whole)
        for tmp, final in plan or []:
            tmp_p, final_p = ddir / tmp, ddir / final
            if tmp_p.exists():
                os.replace(tmp_p, final_p)
                log.info("rolled forward %s", final_p)
        for d in {(ddir / final).parent for _, final in plan or []}:
            _fsync_dir(d)
        commit.unlink()
        _fsync_dir(ddir)
    for tmp in list(ddir.glob("date=*/.part-*.tmp")) + list(ddir.glob(f".{COMMIT_FILE}.tmp")):
        log.info("removing %s left by an interrupted flush", tmp)
        tmp.unlink()
    _repair_manifest(ddir)


def write_flush(ddir: Path, frames: list[bytes], metadata: dict[str, str],
                epochs: list[int] | None = None) -> list[Path]:
    """Publish ``frames`` as one part file per (date, epoch), atomically, and list them in the
    manifest (see the module docstring). ``epochs``: the relay epoch each frame arrived in
    (default: ``metadata["alphapulse.epoch"]``, else 0, for all)."""
    if epochs is None:
        epochs = [int(metadata.get("alphapulse.epoch", "0"))] * len(frames)
    by_date: dict[tuple[str, int], list[bytes]] = {}
    for fr, epoch in zip(frames, epochs, strict=True):
        by_date.setdefault((_date_of(fr), epoch), []).append(fr)
    plan: list[tuple[Path, Path]] = []
    entries: list[ManifestEntry] = []
    for (date, epoch), group in sorted(by_date.items()):
        table = build_table(group)
        seqs = table.column("domain_seq")
        first, last = seqs[0].as_py(), seqs[-1].as_py()
        d = ddir / f"date={date}"
        make_dirs(d, DIR_MODE)
        final = d / part_name(first, last)
        tmp = d / f".{final.name}.tmp"
        _write_tmp(tmp, table, {**metadata, "alphapulse.epoch": str(epoch), "first_seq": str(first),
                                "last_seq": str(last)})
        digest, size = file_sha256(tmp)
        entries.append(ManifestEntry(file=str(final.relative_to(ddir)), epoch=epoch, first_seq=first,
                                     last_seq=last, rows=table.num_rows, bytes=size, sha256=digest))
        plan.append((tmp, final))
    if len(plan) > 1:
        commit_tmp = ddir / f".{COMMIT_FILE}.tmp"
        with os.fdopen(_create(commit_tmp), "w") as f:
            json.dump([[str(t.relative_to(ddir)), str(p.relative_to(ddir))] for t, p in plan], f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(commit_tmp, ddir / COMMIT_FILE)
        _fsync_dir(ddir)
    for tmp, final in plan:
        os.replace(tmp, final)
    for d in {final.parent for _, final in plan}:
        _fsync_dir(d)
    _append_manifest(ddir, entries)
    if len(plan) > 1:
        (ddir / COMMIT_FILE).unlink()
        _fsync_dir(ddir)
    return [final for _, final in plan]


# ---------------------------------------------------------------------------- the archiver


class ArchiveInUse(Exception):
    """Another archiver process holds this archive's domain directory."""


@dataclass
class ArchiverStats:
    archived: int = 0
    files: int = 0
    flushes: int = 0
    gaps: int = 0
    missing: int = 0  # messages recorded as gaps
    rewound: int = 0  # reused sequences not archived twice
    last_seq: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Archiver:
    """Consume one domain and archive it. ``await Archiver(...).run()``; see the module docstring.

    ``from_seq`` applies only to an empty archive: None = from now, 0 = oldest retained,
    N = from N. ``until_seq``: return once everything up to it is archived.
    """

    def __init__(
        self,
        domain: str | int | Domain,
        out: str | os.PathLike[str],
        socket_path: str | os.PathLike[str] | None = None,
        *,
        flush_messages: int = 10_000,
        flush_seconds: float = 5.0,
        from_seq: int | None = 0,
        until_seq: int | None = None,
        name: str = "",
        metrics: ClientObserver | None = None,
    ) -> None:
        if flush_messages <= 0 or flush_seconds <= 0:
            raise ValueError("flush_messages and flush_seconds must be positive")
        self.domain = parse_domain(domain)
        self.out = Path(out)
        self.socket_path = socket_path
        self.flush_messages = flush_messages
        self.flush_seconds = flush_seconds
        self.until_seq = until_seq
        self.name = name or f"archiver-{self.domain.name.lower()}-{os.getpid()}"
        self.metrics = metrics  # handed to the relay consumer (relays.client's metrics=)
        self.ddir = domain_dir(self.out, self.domain)
        make_dirs(self.ddir, DIR_MODE)
        self._lock_fd = _create(self.ddir / LOCK_FILE, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise ArchiveInUse(f"{self.ddir} is being written by another archiver") from None
        recover(self.ddir)
        self.last_seq = last_archived_seq(self.out, self.domain)
        self._gap_keys = {(g.get("kind"), g.get("from_seq"), g.get("to_seq")) for g in read_gaps(self.out, self.domain)}
        if self.last_seq:
            self.subscribe_from: int | None = self.last_seq + 1
            self.expected: int | None = self.last_seq + 1
            self._fresh_oldest = False
        else:
            self.subscribe_from = from_seq
            self.expected = None if from_seq is None else max(from_seq, 1)
            self._fresh_oldest = from_seq is not None and from_seq <= 0
        self.buffer: list[bytes] = []
        self.buffer_epochs: list[int] = []  # the relay epoch each buffered frame arrived in
        self.stats = ArchiverStats(last_seq=self.last_seq)
        self.epoch = 0
        self._counters: dict[str, int] = {}
        self._rewinding = False
        self.done = trio.Event()
        log.info(
            "%s: archive %s holds up to domain_seq %d; subscribing from %s",
            self.name, self.ddir, self.last_seq,
            "now" if self.subscribe_from is None else ("oldest" if self.subscribe_from <= 0 else self.subscribe_from),
        )

    # ---- gaps ----

    def close(self) -> None:
        """Release the archive lock (the process exiting does it too)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _record_gap(self, kind: str, first: int, last: int, **extra: Any) -> None:
        key = (kind, first, last)
        count = last - first + 1
        self.stats.gaps += 1
        if kind == "rewind":
            self.stats.rewound += count
        else:
            self.stats.missing += count
        log.warning("%s: GAP (%s) domain_seq %d..%d (%d messages) %s", self.name, kind, first, last, count, extra or "")
        if key in self._gap_keys:
            return  # recorded before a crash; the restart met it again
        self._gap_keys.add(key)
        rec = {"kind": kind, "from_seq": first, "to_seq": last, "count": count, "epoch": self.epoch,
               "detected_at_ns": time.time_ns(), **extra}
        with os.fdopen(_create(self.ddir / GAPS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _accept(self, frames: list[bytes], counters: dict[str, int]) -> None:
        for fr in frames:
            seq = read_domain_seq(fr)
            exp = self.expected
            if exp is None:
                exp = self.expected = seq
            if seq > exp:
                if self._fresh_oldest and self.last_seq == 0 and not self.buffer:
                    self._record_gap("before_start", exp, seq - 1, reason="retention passed before the archive began")
                else:
                    self._record_gap(
                        "resync", exp, seq - 1,
                        relay_resyncs=counters.get("resyncs", 0), client_lost=counters.get("lost", 0),
                    )
            elif seq < exp:
                if not self._rewinding:
                    self._rewinding = True
                    self._record_gap("rewind", seq, exp - 1,
                                     reason="relay reused sequences already archived (lost un-fsynced data)")
                continue
            self._rewinding = False
            self._fresh_oldest = False
            self.buffer.append(fr)
            self.buffer_epochs.append(self.epoch)
            self.expected = seq + 1

    # ---- flushing ----

    async def flush(self) -> None:
        if not self.buffer:
            return
        frames, self.buffer = self.buffer, []
        epochs, self.buffer_epochs = self.buffer_epochs, []
        meta = {"alphapulse.domain": self.domain.name.lower(), "alphapulse.archiver": self.name}
        paths = await trio.to_thread.run_sync(write_flush, self.ddir, frames, meta, epochs)
        self.last_seq = read_domain_seq(frames[-1])
        self.stats.archived += len(frames)
        self.stats.files += len(paths)
        self.stats.flushes += 1
        self.stats.last_seq = self.last_seq
        log.debug("%s: flushed %d messages up to %d into %d file(s)", self.name, len(frames), self.last_seq, len(paths))

    # ---- running ----

    async def _consume(self, send: trio.MemorySendChannel[tuple[list[bytes], dict[str, int], int]]) -> None:
        from .client import RelayConsumer

        # background: the archive is written in batches anyway; it must not take a core from the
        # strategy or the executor when a frame arrives (specs/relay.md, "Fan-out order")
        async with send, RelayConsumer.connect(
            self.domain, self.socket_path, from_seq=self.subscribe_from, raw=True, name=self.name,
            latency="background", metrics=self.metrics,
        ) as c:
            async for batch in c.batches():
                await send.send((batch, c.counters, c.epoch))

    async def run(self, *, task_status: trio.TaskStatus[Archiver] = trio.TASK_STATUS_IGNORED) -> None:
        """Archive until cancelled (then flush what is buffered) or until ``until_seq``."""
        send, recv = trio.open_memory_channel[tuple[list[bytes], dict[str, int], int]](64)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._consume, send)
                task_status.started(self)
                if self.until_seq is not None and self.last_seq >= self.until_seq:
                    nursery.cancel_scope.cancel()
                    return
                deadline = math.inf
                async with recv:
                    while True:
                        with trio.move_on_at(deadline):
                            frames, counters, epoch = await recv.receive()
                            self.epoch = epoch
                            self._counters = counters
                            if self.until_seq is not None:
                                frames = [f for f in frames if read_domain_seq(f) <= self.until_seq]
                            self._accept(frames, counters)
                            reached = self.until_seq is not None and (self.expected or 0) > self.until_seq
                            if len(self.buffer) >= self.flush_messages or reached:
                                with trio.CancelScope(shield=True):
                                    await self.flush()
                                deadline = math.inf
                            elif self.buffer and deadline == math.inf:
                                deadline = trio.current_time() + self.flush_seconds
                            if reached:
                                nursery.cancel_scope.cancel()
                                return
                            continue
                        with trio.CancelScope(shield=True):
                            await self.flush()
                        deadline = math.inf
        finally:
            with trio.CancelScope(shield=True):
                await self.flush()
            self.done.set()


# ---------------------------------------------------------------------------- CLI


def sequence_arg(text: str, names: dict[str, int | None] | None = None) -> int | None:
    """A sequence number given on a command line (archiver, replay, relay-cli): a non-negative
    integer, or one of ``names`` (``oldest``, ``now``); ``argparse.ArgumentTypeError`` says why not."""
    if names and text in names:
        return names[text]
    try:
        v = int(text)
    except ValueError:
        expected = ", ".join([*(names or ()), "a sequence number"])
        raise argparse.ArgumentTypeError(f"expected {expected}, not {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"a sequence number must not be negative, not {v}")
    return v


FROM_NAMES: dict[str, int | None] = {"oldest": 0, "now": None}


def _from_arg(text: str) -> int | None:
    try:
        return sequence_arg(text.strip().lower(), FROM_NAMES)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"--from: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alphapulse archive",
        description="Archive one relay domain to Parquet (partitioned by domain and date), exactly once.",
        epilog="Exit status: 0 clean stop (SIGTERM/SIGINT, or --until reached), 2 bad arguments or another "
               "archiver holds DIR/domain=X. "
               "Gaps (relay Resync) are recorded in DIR/domain=X/_gaps.jsonl and logged.",
    )
    p.add_argument("--domain", required=True, help="market_data, signal or execution")
    p.add_argument("--out", required=True, help="archive root directory")
    p.add_argument("--socket", help="relay socket (default <run dir>/<domain>.sock, see runtime/paths.py)")
    p.add_argument("--flush-messages", type=int, default=10_000, help="flush after N messages (default 10000)")
    p.add_argument("--flush-seconds", type=float, default=5.0, help="flush after T seconds (default 5)")
    p.add_argument("--from", dest="from_seq", type=_from_arg, default=0,
                   help="where an EMPTY archive starts: oldest (default), now, or a sequence; a non-empty "
                        "archive always resumes after its last archived sequence")
    p.add_argument("--until", type=int, default=None, help="exit 0 once everything up to this sequence is archived")
    p.add_argument("--name", default="", help="consumer name shown in relay stats")
    add_process_arguments(p)
    return p


def _instrument(archiver: Archiver, pm: ProcessMetrics) -> None:
    """Archiver families, read from its stats at scrape time (see runtime/metrics/README.md)."""
    domain = archiver.domain.name.lower()

    def collect() -> Iterator[Metric]:
        st = archiver.stats
        for kind, name, text, value in (
            (CounterMetricFamily, "archived_total", "Messages written to Parquet.", st.archived),
            (CounterMetricFamily, "files_total", "Parquet files written.", st.files),
            (CounterMetricFamily, "flushes_total", "Flushes (fsynced renames).", st.flushes),
            (CounterMetricFamily, "gaps_total", "Gaps recorded in _gaps.jsonl.", st.gaps),
            (CounterMetricFamily, "missing_messages_total", "Messages recorded as gaps.", st.missing),
            (GaugeMetricFamily, "last_seq", "Last archived domain_seq.", st.last_seq),
            (GaugeMetricFamily, "buffered_messages", "Received, not yet flushed.", len(archiver.buffer)),
        ):
            fam = kind(f"alphapulse_archiver_{name}", text, labels=["domain"])
            fam.add_metric([domain], value)
            yield fam

    pm.collect(collect)


def archiver_work(archiver: Archiver) -> Work:
    """Archive until cancelled (flushing what is buffered) or until ``--until`` is reached."""

    async def work(pm: ProcessMetrics) -> None:
        _instrument(archiver, pm)
        archiver.metrics = pm
        await archiver.run()

    return work


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    proc = ProcessMain("alphapulse archive", "archiver", errors={ArchiveInUse: EXIT_CONFIG})
    try:
        archiver = Archiver(
            args.domain, args.out, args.socket, flush_messages=args.flush_messages,
            flush_seconds=args.flush_seconds, from_seq=args.from_seq, until_seq=args.until, name=args.name,
        )
    except (ValueError, OSError, ArchiveInUse) as exc:
        proc.say(str(exc))
        return EXIT_CONFIG
    try:
        code = proc.run(args, lambda: archiver_work(archiver))
    finally:
        archiver.close()
    s = archiver.stats
    log.info("stopped: archived %d messages in %d files, last domain_seq %d, %d gaps (%d missing, %d rewound)",
             s.archived, s.files, s.last_seq, s.gaps, s.missing, s.rewound)
    return code


if __name__ == "__main__":
    sys.exit(main())
