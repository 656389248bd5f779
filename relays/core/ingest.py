"""Ingest: find frame boundaries, verify, deduplicate and stamp producer frames.

Theory of operation
-------------------
The hot path of the relay. A producer connection's receive buffer holds any
number of whole frames followed by at most one partial frame. ``Ingest.scan``
walks it by reading the header at fixed offsets only -- one precompiled
``struct`` unpack per frame gives magic, version, reserved bytes, checksum,
domain, payload length, source sequence and source id -- verifies the CRC of
``[16, end)`` with ``zlib.crc32`` on a memoryview slice (no copy), and stamps the
next domain sequence into bytes 8..16 *in place* with ``pack_into``. TLVs are
walked only to *validate* them (below).

Validation (issue 17): a frame whose TLVs do not decode would be journaled and
fanned out, and every decoding consumer would choke on it. So each accepted
frame's payload must pass exactly what the protocol's TLV decoders check
(``protocol.tlv.decode_tlvs``, what a consumer's ``decode`` runs after the header
and CRC), and a frame that fails is refused like a bad checksum. The check is
``protocol.tlv.tlvs_valid``: the decoders' checks (record framing, each known
type's body size, variable fields' lengths, UTF-8 text) without building a
record; the refusal's message is the decoder's own (``payload_error``). In a
vectorised block (issue 12) one walk of the first frame records its *shape* --
the bytes the walk branched on and its text fields -- and one numpy comparison
finds the frames of the same shape with ASCII texts, which are valid for the
same reasons; only frames that differ are walked one by one. The block is cut
at the first frame that fails and the per-frame loop raises for it.
``validate=False`` (``alphapulse relay --no-validate``) turns it off, and
``alphapulse bench relay --no-validate`` measures the difference.

Accepted frames become ``Chunk``s that *share the receive buffer* (the caller
hands the buffer over and starts a fresh one), so the bytes read from the
socket are the bytes journaled and the bytes sent to every consumer.

Dedupe: ``Sequencer.last_source_seq[source_id]`` is the highest source
sequence that entered the log. A frame with ``source_seq <= last`` is a resent
duplicate (a producer resending its unacknowledged tail after a reconnect) and
is dropped; it ends the current chunk so chunks stay contiguous in domain
sequence. A jump forward is accepted (a producer that crashed with unsent
messages loses them; that is its business, not a reason to stall the log).

A domain-4 (SYSTEM) frame is a control message for the relay: the scan stops
there, returns the chunks so far and the control frame, and resumes after it
when called again, so control messages are handled in stream order.

Anything else malformed raises a ``RemoteProtocolError`` subclass; the
connection is then dropped with a logged reason and nothing is ingested past
the bad frame.
"""

from __future__ import annotations

import zlib
from array import array
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from protocol.errors import ChecksumError, FrameError, ProtocolError, TLVError
from protocol.framing import FAST_MIN, header_view
from protocol.header import (
    HEAD4,
    HEADER_SIZE,
    MAX_PAYLOAD,
    OFF_CHECKSUM,
    OFF_COVERED,
    OFF_DOMAIN,
    OFF_DOMAIN_SEQ,
    U64,
    Domain,
    check_prefix,
    header_struct,
)
from protocol.tlv import COMPACT_MIN, decode_tlvs, tlvs_valid

from .ring import Chunk

# (magic, version, reserved) as one u32, checksum, [domain_seq], (domain, reserved) as one u16, [flags],
# payload_len, source_seq, [event/receive time], source_id -- fewer values, fewer comparisons per frame
_SCAN = header_struct("head4", "checksum", "domain16", "payload_len", "source_seq", "source_id")
_BLOCK_COLUMNS = ("head4", "checksum", "domain_seq", "domain16", "payload_len", "source_seq", "source_id")
_CRC_AT = OFF_CHECKSUM
_COPY_MAX = 2048  # payload bytes: up to this, a frame's CRC is taken over a copy rather than a memoryview
_BODY_LEN = HEADER_SIZE + 1  # a compact record's length byte, when it is the payload's first record
_EXPECTED: dict[tuple[int, int], int] = {}


def valid_records_crc(covered: int, m: int) -> int:
    """CRC-32 of ``m`` valid records ``(covered bytes, their CRC-32 little-endian)`` back to back.

    A record ``d || crc32(d)`` (little-endian) always has the same CRC-32, the CRC "residue",
    whatever ``d`` is; CRC-32 is affine over GF(2), so the CRC of ``m`` such records of equal
    length does not depend on their contents either. Computed once with all-zero records.
    """
    key = (covered, m)
    hit = _EXPECTED.get(key)
    if hit is None:
        zero = bytes(covered)
        hit = zlib.crc32((zero + zlib.crc32(zero).to_bytes(4, "little")) * m)
        if len(_EXPECTED) >= 4096:
            _EXPECTED.clear()
        _EXPECTED[key] = hit
    return hit


def _crc_view(buf: bytearray, a: int, b: int) -> int:
    with memoryview(buf) as mv:
        return zlib.crc32(mv[a:b])


def payload_error(buf: bytes | bytearray | memoryview, pos: int, end: int) -> str | None:
    """Why the payload of the frame at ``buf[pos:end]`` does not decode, or None if it does
    (the TLV walk and every known record's decoder, as ``protocol.decode`` would run them).
    The hot path asks ``tlvs_valid`` (the same checks, no record built) and comes here only
    for the message of a frame it refuses."""
    try:
        decode_tlvs(buf, pos + HEADER_SIZE, end)
    except ProtocolError as exc:
        return str(exc)
    except (ValueError, IndexError, OverflowError) as exc:  # a decoder's own check on a field
        return f"{type(exc).__name__}: {exc}"
    return None


def _first_undecodable(buf: bytearray, pos: int, size: int, m: int) -> int:
    """Index of the first of ``m`` frames of ``size`` bytes at ``buf[pos:]`` whose payload does
    not decode (``m`` when all do).

    One Python walk of the first frame's TLVs (``tlvs_valid``) records its shape: the bytes the
    walk branched on (record headers, length prefixes) and its text fields. Every frame with
    the same bytes there and ASCII in those texts walks the same way, so is valid too: that is
    one numpy comparison over the block. The frames that differ are walked one by one.
    """
    marks: list[int] = []
    texts: list[tuple[int, int]] = []
    first = pos + HEADER_SIZE
    if not tlvs_valid(buf, first, pos + size, marks, texts):
        return 0
    if m == 1:
        return 1
    rows = np.frombuffer(buf, dtype=np.uint8, count=m * size, offset=pos).reshape(m, size)
    same = None
    if marks:
        cols = _columns(marks, pos)
        picked = rows[:, cols]
        same = (picked == picked[0]).all(axis=1)
    if texts:
        cols = _columns([i for p, n in texts for i in range(p, p + n)], pos)
        ascii_ = (rows[:, cols] < 0x80).all(axis=1)
        same = ascii_ if same is None else same & ascii_
    del rows
    if same is None or same.all():
        return m
    for i in np.flatnonzero(~same).tolist():  # another shape, or non-ASCII text: the full walk
        a = pos + i * size
        if not tlvs_valid(buf, a + HEADER_SIZE, a + size):
            return i
    return m


def _columns(offsets: list[int], pos: int) -> np.ndarray:
    return np.array(offsets, dtype=np.intp) - pos


def _fast_block(
    buf: bytearray, pos: int, size: int, k: int, domain: int, source_id: int, last_sseq: int, first_seq: int,
    verify: bool, validate: bool = True,
) -> tuple[int, int]:
    """Check, dedupe and stamp up to ``k`` frames of ``size`` bytes at ``buf[pos:]`` in one pass.

    Takes the longest prefix of frames that the per-frame loop would accept without
    comment: magic/version/reserved, this relay's domain, this producer's source id, payload
    length ``size - 52``, CRC, and source sequences strictly increasing from above
    ``last_sseq``. Stamps their domain sequences ``first_seq, ...`` in place. Returns
    ``(frames taken, source_seq of the last one)``; the caller's loop handles whatever
    follows (a frame of another size, a duplicate, a control frame, a bad frame) by the
    per-frame rules, so this is a shortcut, never a different rule.
    """
    h = header_view(buf, pos, size, k, _BLOCK_COLUMNS)
    ok = h["head4"] == HEAD4
    ok &= h["domain16"] == domain  # with the reserved byte 17, which must be 0
    ok &= h["source_id"] == source_id
    ok &= h["payload_len"] == size - HEADER_SIZE
    sseq = h["source_seq"]
    ok[0] &= bool(sseq[0] > last_sseq)
    ok[1:] &= sseq[1:] > sseq[:-1]
    m = k if ok.all() else int(ok.argmin())
    if verify and m:
        # Every frame's CRC, checked at once: lay the frames out as records (covered bytes
        # [16, size), then the stored checksum); all m CRCs are right exactly when one CRC
        # over all records equals that of m valid records (see valid_records_crc). A single bad
        # frame always changes it (x is invertible modulo the CRC polynomial); to name the
        # bad frame, fall back to one zlib.crc32 per frame.
        covered = size - OFF_COVERED
        rows = np.frombuffer(buf, dtype=np.uint8, count=m * size, offset=pos).reshape(m, size)
        rec = np.empty((m, covered + 4), dtype=np.uint8)
        rec[:, :covered] = rows[:, OFF_COVERED:]
        rec[:, covered:] = rows[:, _CRC_AT : _CRC_AT + 4]
        del rows
        if zlib.crc32(rec) != valid_records_crc(covered, m):
            crc32 = zlib.crc32
            stored = h["checksum"][:m].tolist()
            with memoryview(buf) as mv:
                for i in range(m):
                    a = pos + i * size
                    if crc32(mv[a + OFF_COVERED : a + size]) != stored[i]:
                        m = i  # the per-frame loop raises the ChecksumError for it
                        break
    if validate and m:
        m = _first_undecodable(buf, pos, size, m)  # the per-frame loop raises the TLVError for it
    last = last_sseq
    if m:
        h["domain_seq"][:m] = np.arange(first_seq, first_seq + m, dtype=np.uint64)
        last = int(sseq[m - 1])
    del h, sseq
    return m, last


def _join(pieces: list[list[int] | range], tail: list[int]) -> list[int] | array:
    """A chunk's offsets: a list, or (when fast blocks contributed) an ``array('q')`` built
    without a Python step per frame."""
    if not pieces:
        return tail
    parts = [np.arange(p.start, p.stop, p.step, dtype=np.int64) if type(p) is range else np.array(p, dtype=np.int64)
             for p in pieces]
    parts.append(np.array(tail, dtype=np.int64))
    out = array("q")
    out.frombytes(np.concatenate(parts).tobytes())
    return out


@dataclass
class Sequencer:
    """The log's sequencing state: head domain sequence and per-source dedupe table."""

    head_seq: int = 0
    last_source_seq: dict[int, int] = field(default_factory=dict)
    accepted: int = 0  # frames accepted since start
    duplicates: int = 0  # resent frames dropped since start


class ScanResult(NamedTuple):
    """What one ``scan`` found (a tuple: built once per read, ``tuple.__new__`` is the cheapest object)."""

    chunks: list[Chunk]
    pos: int  # first byte not consumed (start of a partial frame, or of the control frame's successor)
    control: bytes | None  # a complete SYSTEM frame found at the stop position, already consumed
    duplicates: int = 0


_tuple_new = tuple.__new__


class Ingest:
    """Per-producer-connection scanner bound to one source id and the shared ``Sequencer``."""

    __slots__ = ("seq", "domain", "verify", "validate", "_sid")

    def __init__(
        self, seq: Sequencer, domain: Domain, source_id: int | None, *, verify: bool = True, validate: bool = True
    ) -> None:
        self.seq = seq
        self.domain = int(domain)
        self.source_id = source_id  # None: this connection may not publish data
        self.verify = verify
        self.validate = validate  # decode every accepted payload's TLVs (see the module docstring)

    @property
    def source_id(self) -> int | None:
        return None if self._sid < 0 else self._sid

    @source_id.setter
    def source_id(self, value: int | None) -> None:
        self._sid = -1 if value is None else value  # what frames are compared with: -1 matches none

    def scan(self, buf: bytearray, pos: int, end: int | None = None) -> ScanResult:
        """Consume whole frames from ``buf[pos:end]``; stamp accepted ones in place."""
        if end is None:
            end = len(buf)
        unpack = _SCAN.unpack_from
        pack_into = U64.pack_into
        crc32 = zlib.crc32
        verify = self.verify
        validate = self.validate
        mydomain = self.domain
        sid_ok = self._sid
        sq = self.seq
        seq = sq.head_seq
        last = sq.last_source_seq.get(sid_ok, 0) if sid_ok >= 0 else 0
        chunks: list[Chunk] = []
        offsets: list[int] = []  # frame offsets of the current chunk (per-frame path)
        pieces: list[list[int] | range] = []  # earlier offsets of the current chunk, and fast blocks
        pcount = 0  # frames in pieces
        dups = 0
        control: bytes | None = None
        prev_size = 0
        retry_at = 0  # no vectorised attempt before this offset (after one that did not pay)
        fast_block = _fast_block
        compact_min = COMPACT_MIN
        while end - pos >= HEADER_SIZE:
            head4, csum, dom, plen, sseq, sid = unpack(buf, pos)
            nxt = pos + HEADER_SIZE + plen
            if head4 != HEAD4 or dom != mydomain or sid != sid_ok or plen > MAX_PAYLOAD:
                size = check_prefix(buf, pos)  # raises the precise FrameError for a bad prefix
                dom = buf[pos + OFF_DOMAIN]
                if dom == Domain.SYSTEM:
                    if pos + size > end:
                        break
                    if verify and crc32(buf[pos + OFF_COVERED : nxt]) != csum:
                        raise ChecksumError(f"checksum mismatch in a control frame at offset {pos}")
                    control = bytes(buf[pos:nxt])
                    pos = nxt
                    break
                if dom != mydomain:
                    raise FrameError(f"data frame of domain {dom} sent to the domain {mydomain} relay")
                if sid_ok < 0:
                    raise FrameError("data frame on a connection that did not say Hello as a producer")
                raise FrameError(f"frame carries source_id {sid}, this connection said Hello as {sid_ok}")
            if nxt > end:
                break
            # a small frame's covered bytes are copied (cheaper than a memoryview), a big one's viewed
            if verify and (crc32(buf[pos + OFF_COVERED : nxt]) if plen <= _COPY_MAX
                           else _crc_view(buf, pos + OFF_COVERED, nxt)) != csum:
                raise ChecksumError(f"checksum mismatch in frame with source_seq {sseq}")
            # one compact record filling the payload is settled with one lookup (COMPACT_MIN), anything else walked
            if (validate and sseq > last and plen
                    and not (plen >= 2 and buf[pos + _BODY_LEN] + 2 == plen and compact_min[buf[pos + HEADER_SIZE]] <= plen - 2)
                    and not tlvs_valid(buf, pos + HEADER_SIZE, nxt)
                    and (why := payload_error(buf, pos, nxt)) is not None):
                raise TLVError(f"frame with source_seq {sseq} does not decode: {why}")
            if sseq <= last:
                # a resent frame that is already in the log: close the current chunk, drop it
                dups += 1
                if offsets or pieces:
                    n = len(offsets) + pcount
                    offsets.append(pos)
                    chunks.append(Chunk(seq - n + 1, buf, _join(pieces, offsets), sid_ok, last))
                    offsets = []
                    pieces = []
                    pcount = 0
                pos = nxt
                continue
            last = sseq
            seq += 1
            pack_into(buf, pos + OFF_DOMAIN_SEQ, seq)
            offsets.append(pos)
            size = nxt - pos
            if size == prev_size and nxt >= retry_at and end - nxt >= FAST_MIN * size:
                # a run of equal-size frames: check, dedupe and stamp the rest of it at once
                m, last_sseq = fast_block(buf, nxt, size, (end - nxt) // size, mydomain,
                                          sid_ok, last, seq + 1, verify, validate)
                if m:
                    if offsets:
                        pieces.append(offsets)
                        pcount += len(offsets)
                        offsets = []
                    pieces.append(range(nxt, nxt + m * size, size))
                    pcount += m
                    seq += m
                    last = last_sseq
                    nxt += m * size
                if m < FAST_MIN:
                    retry_at = nxt + FAST_MIN * size
            prev_size = size
            pos = nxt
        if offsets or pieces:
            n = len(offsets) + pcount
            offsets.append(pos if control is None else pos - len(control))
            chunks.append(Chunk(seq - n + 1, buf, _join(pieces, offsets) if pieces else offsets, sid_ok, last))
        if seq != sq.head_seq:
            sq.accepted += seq - sq.head_seq
            sq.head_seq = seq
            sq.last_source_seq[sid_ok] = last
        if dups:
            sq.duplicates += dups
        return _tuple_new(ScanResult, (chunks, pos, control, dups))
