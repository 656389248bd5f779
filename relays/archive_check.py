"""Is an archive whole? Verify a domain of a Parquet archive before anything trusts it.

``check_archive(DIR, domain)`` answers which sequences of the archived range are really there,
which the archive itself recorded as never received (``_gaps.jsonl``: retention passed, a relay
that lost data), and which are **missing**: a file that was published and is gone, a file that
is truncated or whose bytes changed, a file pyarrow cannot read, or a hole nobody recorded.

With a manifest (``_manifest.jsonl``, see ``relays.archiver``), every listed file must exist with
its recorded size and sha256 (checked for the files that overlap the range asked for); the
manifest's ranges, not the files found, say how far the archive goes, so a lost *last* file is
missing too. A part file the manifest does not list (a crash before the archiver's restart added
its line) is used if it reads.

Without a manifest (an archive written before manifests existed), the files themselves are the
only witness: each must read, hold as many rows as its name's range less the recorded gaps inside
it (else its ``domain_seq`` column is read to find what it lacks), and, taken per relay epoch (the
``alphapulse.epoch`` each file carries) and across epochs (``domain_seq`` continues across relay
restarts), the files must follow each other with no hole that ``_gaps.jsonl`` does not explain.
A lost last file cannot be seen this way; the result says so (``note``).

Pure file reading, no trio: ``alphapulse replay`` and ``relay-cli gaps --archive`` call it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from protocol.header import Domain
from runtime.errors import BadFile
from runtime.paths import parse_domain

from .archiver import (
    ManifestEntry,
    PartFile,
    archive_files,
    domain_dir,
    file_sha256,
    read_gaps,
    read_manifest,
    unreadable,
)

_SHOWN = 6  # missing ranges named in the one-line summary; the rest are counted


@dataclass(frozen=True, slots=True)
class Missing:
    """Sequences ``first..last`` are not in the archive, and why (``reason`` names the file when one is to blame)."""

    first: int
    last: int
    reason: str

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def text(self) -> str:
        return f"domain_seq {self.first}..{self.last} ({self.reason})"


@dataclass
class ArchiveCheck:
    """What :func:`check_archive` found. ``ok`` is true when nothing is missing."""

    ddir: Path
    domain: str
    has_manifest: bool
    files: list[PartFile] = field(default_factory=list)  # the readable part files, to read from
    rows: int = 0
    first_seq: int = 0
    last_seq: int = 0
    epochs: dict[int, tuple[int, int]] = field(default_factory=dict)  # epoch -> (first, last) seq
    recorded_gaps: list[dict[str, Any]] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files or lines that are bad in themselves
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.missing and not self.problems

    @property
    def missing_count(self) -> int:
        return sum(m.count for m in self.missing)

    def summary(self) -> str:
        """One line: what is missing (the ranges, and which file) and what else is wrong."""
        parts = []
        if self.missing:
            shown = "; ".join(m.text() for m in self.missing[:_SHOWN])
            more = f"; and {len(self.missing) - _SHOWN} more ranges" if len(self.missing) > _SHOWN else ""
            parts.append(f"{self.missing_count} sequences missing: {shown}{more}")
        parts += self.problems
        head = f"the {self.domain} archive in {self.ddir} is incomplete"
        return f"{head}: {'; '.join(parts)}" if parts else f"the {self.domain} archive in {self.ddir} is whole"


def _subtract(lo: int, hi: int, covered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[lo, hi]`` minus the union of ``covered`` (inclusive ranges), as sorted ranges."""
    out = []
    pos = lo
    for a, b in sorted(covered):
        if b < pos:
            continue
        if a > hi:
            break
        if a > pos:
            out.append((pos, min(a - 1, hi)))
        pos = max(pos, b + 1)
        if pos > hi:
            break
    if pos <= hi:
        out.append((pos, hi))
    return out


def _file_epoch(path: Path) -> int:
    try:
        kv = pq.read_metadata(path).metadata or {}
        return int(kv.get(b"alphapulse.epoch", b"0"))
    except (OSError, ValueError, pa.ArrowException):
        return 0


def _rows_and_holes(pf: PartFile, gap_ranges: list[tuple[int, int]],
                    rows: int | None = None) -> tuple[int, list[tuple[int, int]]]:
    """The rows of a part file (``rows``: as the manifest says) and the sequences of its name's
    range it lacks beyond the recorded gaps (read from its ``domain_seq`` column only when the row
    count says some are lacking). Raises ``BadFile`` when the file does not read."""
    try:
        if rows is None:
            rows = pq.read_metadata(pf.path).num_rows
        expected = sum(b - a + 1 for a, b in _subtract(pf.first_seq, pf.last_seq, gap_ranges))
        if rows >= expected:
            return rows, []
        seqs = pq.read_table(pf.path, columns=["domain_seq"]).column(0).to_pylist()
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        raise unreadable(pf.path, exc) from None
    held = [(s, s) for s in seqs]
    return rows, _subtract(pf.first_seq, pf.last_seq, held + gap_ranges)


def check_archive(out: str | os.PathLike[str], domain: str | int | Domain, *, from_seq: int | None = None,
                  to_seq: int | None = None) -> ArchiveCheck:
    """Verify ``domain`` of the archive at ``out`` in ``[from_seq, to_seq]`` (default: all of it).

    Missing ranges are clipped to that window; checksums are computed only for the files that
    overlap it. An archive with no part file and no manifest gives an empty ``files`` list."""
    dom = parse_domain(domain)
    ddir = domain_dir(out, dom)
    manifest = read_manifest(ddir)
    lo, hi = from_seq or 0, to_seq if to_seq is not None else (1 << 64) - 1
    chk = ArchiveCheck(ddir=ddir, domain=dom.name.lower(), has_manifest=manifest is not None,
                       recorded_gaps=read_gaps(out, dom))
    gap_ranges = [(int(g["from_seq"]), int(g["to_seq"])) for g in chk.recorded_gaps
                  if g.get("kind") != "rewind" and "from_seq" in g and "to_seq" in g]
    present = archive_files(out, dom)
    covered: list[tuple[int, int]] = []  # ranges of files that are there and whole
    blamed: list[tuple[int, int, str]] = []  # ranges of bad files, with the reason
    span: list[tuple[int, int]] = []  # what the archive says it spans: manifest lines and files found

    def overlaps(a: int, b: int) -> bool:
        return a <= hi and b >= lo

    def use(pf: PartFile, epoch: int, rows: int, holes: list[tuple[int, int]]) -> None:
        chk.files.append(pf)
        chk.rows += rows
        covered.extend(_subtract(pf.first_seq, pf.last_seq, holes))
        blamed.extend((a, b, f"within the range of {pf.path} but not in it, nor recorded in _gaps.jsonl") for a, b in holes)
        e = chk.epochs.get(epoch)
        chk.epochs[epoch] = (min(e[0], pf.first_seq), max(e[1], pf.last_seq)) if e else (pf.first_seq, pf.last_seq)

    if manifest is not None:
        entries, chk.problems = manifest
        by_name = {str(pf.path.relative_to(ddir)): pf for pf in present}
        for name, e in sorted(entries.items(), key=lambda kv: (kv[1].first_seq, kv[1].last_seq)):
            span.append((e.first_seq, e.last_seq))
            pf = by_name.pop(name, None)
            if not overlaps(e.first_seq, e.last_seq):
                if pf is not None:
                    use(pf, e.epoch, e.rows, [])
                continue
            bad = _manifest_problem(ddir / name, e, pf)
            if bad:
                blamed.append((e.first_seq, e.last_seq, bad))
                continue
            assert pf is not None
            try:
                rows, holes = _rows_and_holes(pf, gap_ranges, e.rows)
            except BadFile as exc:
                blamed.append((pf.first_seq, pf.last_seq, str(exc)))
                continue
            use(pf, e.epoch, rows, holes)
        for pf in by_name.values():  # published, not yet listed (the archiver lists it at its next start)
            span.append((pf.first_seq, pf.last_seq))
            try:
                rows, holes = _rows_and_holes(pf, gap_ranges)
            except BadFile as exc:
                blamed.append((pf.first_seq, pf.last_seq, str(exc)))
                continue
            use(pf, _file_epoch(pf.path), rows, holes)
    else:
        chk.note = (f"{ddir} has no manifest (an archive written before manifests): checked from the files "
                    f"themselves that each reads and that the sequences follow each other per epoch, with "
                    f"every hole recorded in _gaps.jsonl; a lost last file cannot be detected this way")
        for pf in present:
            span.append((pf.first_seq, pf.last_seq))
            try:
                rows, holes = _rows_and_holes(pf, gap_ranges)
            except BadFile as exc:
                blamed.append((pf.first_seq, pf.last_seq, str(exc)))
                continue
            use(pf, _file_epoch(pf.path), rows, holes)
    if not span:
        return chk
    chk.first_seq = min(a for a, _ in span)
    chk.last_seq = max(b for _, b in span)
    # everything in the archive's span that no whole file holds and no gap record explains is missing
    window_lo, window_hi = max(lo, chk.first_seq), min(hi, chk.last_seq)
    if window_lo <= window_hi:
        for a, b in _subtract(window_lo, window_hi, covered + gap_ranges):
            chk.missing += _attribute(a, b, blamed, chk.epochs)
    return chk


def _manifest_problem(path: Path, e: ManifestEntry, pf: PartFile | None) -> str:
    """Why a listed file cannot be trusted ('' when it is whole)."""
    if pf is None or not path.is_file():
        return f"{path} is missing (the manifest lists it)"
    size = path.stat().st_size
    if size < e.bytes:
        return f"{path} is truncated ({size} of {e.bytes} bytes){_readable(path)}"
    if size != e.bytes:
        return f"{path} has {size} bytes, the manifest says {e.bytes}{_readable(path)}"
    digest, _ = file_sha256(path)
    if digest != e.sha256:
        return f"{path} is corrupt (its sha256 is not the manifest's){_readable(path)}"
    return ""


def _readable(path: Path) -> str:
    try:
        pq.read_metadata(path)
    except (OSError, ValueError, pa.ArrowException):
        return ", not a readable Parquet file"
    return ""


def _attribute(a: int, b: int, blamed: list[tuple[int, int, str]], epochs: dict[int, tuple[int, int]]) -> list[Missing]:
    """Split the missing range ``a..b`` by the bad files that held parts of it; the rest is a hole."""
    out: list[Missing] = []
    pos = a
    for fa, fb, why in sorted(blamed):
        if fb < pos or fa > b:
            continue
        if fa > pos:
            out.append(Missing(pos, fa - 1, _hole(pos, fa - 1, epochs)))
        out.append(Missing(max(pos, fa), min(b, fb), why))
        pos = min(b, fb) + 1
        if pos > b:
            return out
    if pos <= b:
        out.append(Missing(pos, b, _hole(pos, b, epochs)))
    return out


def _hole(a: int, b: int, epochs: dict[int, tuple[int, int]]) -> str:
    """A hole no file was to blame for: which epochs' files it lies in or between."""
    before = [ep for ep, (_, last) in epochs.items() if last < a]
    after = [ep for ep, (first, _) in epochs.items() if first > b]
    inside = [ep for ep, (first, last) in epochs.items() if first < a and last > b]
    last_before = max(before, key=lambda ep: epochs[ep][1]) if before else None
    first_after = min(after, key=lambda ep: epochs[ep][0]) if after else None
    if inside:
        where = f"inside the files of epoch {max(inside)}"
    elif last_before is not None and first_after is not None:
        where = f"between the files of epoch {last_before} and of epoch {first_after}"
    else:
        where = "at the edge of the archive"
    return f"no file holds them and _gaps.jsonl does not record them, {where}"


__all__ = ["ArchiveCheck", "Missing", "check_archive"]
