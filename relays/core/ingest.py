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
never walked.

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

import struct
import zlib
from dataclasses import dataclass, field

from protocol.errors import ChecksumError, FrameError
from protocol.header import HEADER_SIZE, MAX_PAYLOAD, OFF_DOMAIN_SEQ, U64, Domain, check_prefix

from .ring import Chunk

# (magic, version, reserved) as one u32, checksum, [domain_seq], (domain, reserved) as one u16, [flags],
# payload_len, source_seq, [event/receive time], source_id -- fewer values, fewer comparisons per frame
_SCAN = struct.Struct("<II8xH2xIQ16xI")
assert _SCAN.size == HEADER_SIZE
_HEAD4 = 0x5041 | (1 << 16)  # magic 0x5041, version 1, reserved 0


@dataclass
class Sequencer:
    """The log's sequencing state: head domain sequence and per-source dedupe table."""

    head_seq: int = 0
    last_source_seq: dict[int, int] = field(default_factory=dict)
    accepted: int = 0  # frames accepted since start
    duplicates: int = 0  # resent frames dropped since start


@dataclass(slots=True)
class ScanResult:
    chunks: list[Chunk]
    pos: int  # first byte not consumed (start of a partial frame, or of the control frame's successor)
    control: bytes | None  # a complete SYSTEM frame found at the stop position, already consumed
    duplicates: int = 0


class Ingest:
    """Per-producer-connection scanner bound to one source id and the shared ``Sequencer``."""

    __slots__ = ("seq", "domain", "source_id", "verify")

    def __init__(self, seq: Sequencer, domain: Domain, source_id: int | None, *, verify: bool = True) -> None:
        self.seq = seq
        self.domain = int(domain)
        self.source_id = source_id  # None: this connection may not publish data
        self.verify = verify

    def scan(self, buf: bytearray, pos: int, end: int | None = None) -> ScanResult:
        """Consume whole frames from ``buf[pos:end]``; stamp accepted ones in place."""
        if end is None:
            end = len(buf)
        unpack = _SCAN.unpack_from
        pack_into = U64.pack_into
        crc32 = zlib.crc32
        verify = self.verify
        mydomain = self.domain
        sid_ok = -1 if self.source_id is None else self.source_id
        seq = self.seq.head_seq
        last = self.seq.last_source_seq.get(sid_ok, 0) if sid_ok >= 0 else 0
        chunks: list[Chunk] = []
        offsets: list[int] = []
        dups = 0
        control: bytes | None = None
        with memoryview(buf) as mv:
            while end - pos >= HEADER_SIZE:
                head4, csum, dom, plen, sseq, sid = unpack(buf, pos)
                nxt = pos + HEADER_SIZE + plen
                if head4 != _HEAD4 or dom != mydomain or sid != sid_ok or plen > MAX_PAYLOAD:
                    size = check_prefix(buf, pos)  # raises the precise FrameError for a bad prefix
                    dom = buf[pos + 16]
                    if dom == Domain.SYSTEM:
                        if pos + size > end:
                            break
                        if verify and crc32(mv[pos + 16 : nxt]) != csum:
                            raise ChecksumError(f"checksum mismatch in a control frame at offset {pos}")
                        control = bytes(mv[pos:nxt])
                        pos = nxt
                        break
                    if dom != mydomain:
                        raise FrameError(f"data frame of domain {dom} sent to the domain {mydomain} relay")
                    if sid_ok < 0:
                        raise FrameError("data frame on a connection that did not say Hello as a producer")
                    raise FrameError(f"frame carries source_id {sid}, this connection said Hello as {sid_ok}")
                if nxt > end:
                    break
                if verify and crc32(mv[pos + 16 : nxt]) != csum:
                    raise ChecksumError(f"checksum mismatch in frame with source_seq {sseq}")
                if sseq <= last:
                    # a resent frame that is already in the log: close the current chunk, drop it
                    dups += 1
                    if offsets:
                        offsets.append(pos)
                        chunks.append(Chunk(seq - len(offsets) + 2, buf, offsets, sid_ok, last))
                        offsets = []
                    pos = nxt
                    continue
                last = sseq
                seq += 1
                pack_into(buf, pos + OFF_DOMAIN_SEQ, seq)
                offsets.append(pos)
                pos = nxt
        if offsets:
            offsets.append(pos if control is None else pos - len(control))
            chunks.append(Chunk(seq - len(offsets) + 2, buf, offsets, sid_ok, last))
        if seq != self.seq.head_seq:
            self.seq.accepted += seq - self.seq.head_seq
            self.seq.head_seq = seq
            self.seq.last_source_seq[sid_ok] = last
        self.seq.duplicates += dups
        return ScanResult(chunks, pos, control, dups)
