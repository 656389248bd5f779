"""Sans-IO client cores: bytes in, frames/messages out; what to send next. No trio, no clock.

``ConsumerCore`` and ``ProducerCore`` are what ``RelayConsumer`` / ``RelayProducer``
wrap; tests drive them with bytes directly. Times (``now``) are passed in.

Consumer theory of operation
----------------------------
``position`` is the resume point minus one: the highest domain sequence this
consumer has either delivered or been told (by an idle Heartbeat, for a
filtered consumer) it has nothing to wait for below. ``start()`` builds
``Hello + Subscribe`` for a (re)connection: from ``position + 1`` once anything
is known, else from the mode the application asked for. Within one connection
a Unix stream loses nothing, so after the first frame every frame must be
exactly ``position + 1`` (unfiltered) or above ``position`` (filtered); a
smaller one is a duplicate and dropped (counted), a bigger one is a gap, which
raises ``StreamBroken`` -- the shell reconnects and resumes from
``position + 1``, recovering the gap from the relay's ring or journal. An
idle relay's Heartbeat carries the sequence its cursor for us has reached; for
an unfiltered consumer a heartbeat above ``position`` is a lost tail (also
``StreamBroken``). A ``Resync`` is the relay saying the requested range is gone:
we count it, record the loss, and continue from where it says.

``delivered`` is a ``RangeSet`` of every sequence handed to the application;
its holes are exactly the messages lost to resyncs.

Producer theory of operation
----------------------------
``publish`` stamps ``source_seq`` (1, 2, 3, ...) into a complete frame and
appends it to the *outbox*; ``data_to_send()`` returns everything not sent on
this connection yet. An ``Ack(n)`` from the relay drops every frame with
``source_seq <= n``. After a reconnect, ``Welcome.last_source_seq`` says what the
relay already has: the outbox drops that much and resends the rest (the relay
dedupes anything it sees twice). A fresh producer process starts numbering
after ``Welcome.last_source_seq``, so restarts continue the sequence without
the producer persisting anything.
``forward_frames`` is the bridge's form: frames another relay already sequenced,
restamped under this producer with their ``domain_seq`` as ``source_seq`` (so
the numbering may jump forward), one outbox entry per batch.
"""

from __future__ import annotations

import json
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from protocol.errors import FrameError, ProtocolError, RemoteProtocolError
from protocol.framing import FAST_MIN, FrameDecoder, header_view, split_frames
from protocol.header import (
    COVERED,
    HEAD4,
    HEADER_SIZE,
    MAGIC,
    MAX_PAYLOAD,
    OFF_CHECKSUM,
    OFF_COVERED,
    OFF_DOMAIN_SEQ,
    OFF_SOURCE_ID,
    OFF_SOURCE_SEQ,
    PREFIX,
    U32,
    U64,
    VERSION,
    Domain,
    check_prefix,
    header_struct,
)
from protocol.message import Message, control_frame, decode, decode_frame, encode
from protocol.system import (
    Ack,
    ConsumerClass,
    Goodbye,
    Heartbeat,
    Hello,
    LatencyClass,
    Resync,
    ResyncReason,
    Role,
    Stats,
    Subscribe,
    SubscribeMode,
    TypeCode,
    Welcome,
)
from protocol.tlv import TLV

from ..core.ingest import valid_records_crc
from ..core.rangeset import RangeSet

# (magic, version, reserved) as one u32, [checksum], domain_seq, domain, [reserved, flags], payload_len
_HDR = header_struct("head4", "domain_seq", "domain", "payload_len")
# forward_frames: what it reads, and what it stamps (domain_seq, [..], source_seq, [times], source_id)
_FWD = header_struct("head4", "checksum", "domain_seq", "payload_len")
_U64_into = U64.pack_into
_U32_into = U32.pack_into
_U64_from = U64.unpack_from
_U32_from = U32.unpack_from
_OFF_COVERED = OFF_COVERED
_OFF_CHECKSUM = OFF_CHECKSUM
_OFF_DOMAIN_SEQ = OFF_DOMAIN_SEQ
_OFF_SOURCE_SEQ = OFF_SOURCE_SEQ
_OFF_SOURCE_ID = OFF_SOURCE_ID
_COVERED_pack = COVERED.pack
_PREFIX_pack = PREFIX.pack
_crc32 = zlib.crc32


LATENCY_CLASSES = {m.name.lower(): m for m in LatencyClass}  # "critical", "normal", "background"


def latency_class(value: str | LatencyClass) -> LatencyClass:
    """A consumer's latency class from its name (``"critical"``, ``"normal"``, ``"background"``) or
    the member itself; anything else is a ValueError naming the choices."""
    if isinstance(value, LatencyClass):
        return value
    found = LATENCY_CLASSES.get(value) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f"latency must be one of {', '.join(map(repr, LATENCY_CLASSES))}, not {value!r}")
    return found


class StreamBroken(Exception):
    """This connection can no longer be trusted (a gap, a Goodbye): drop it and resume."""


@dataclass(slots=True)
class Liveness:
    """Heartbeat and dead-peer timers; ``now`` in seconds on any monotonic clock."""

    interval: float = 0.25
    dead_after: float = 8.0  # intervals
    last_receive: float = 0.0
    last_send: float = 0.0

    def reset(self, now: float) -> None:
        self.last_receive = self.last_send = now

    def heartbeat_due(self, now: float) -> bool:
        return now - self.last_send >= self.interval

    def dead(self, now: float) -> bool:
        return now - self.last_receive >= self.interval * self.dead_after

    def next_heartbeat(self) -> float:
        return self.last_send + self.interval

    @property
    def dead_timeout(self) -> float:
        return self.interval * self.dead_after


@dataclass
class ConsumerCounters:
    received: int = 0  # data frames received, duplicates included
    delivered: int = 0  # handed to the application (exactly once)
    duplicates: int = 0  # dropped: already delivered
    gaps: int = 0  # gaps seen on a connection (triggering a resume) plus reconnects that had to resume
    gaps_recovered: int = 0  # resumes that got exactly the next expected sequence back
    resyncs: int = 0  # the relay said the requested sequences are gone
    lost: int = 0  # messages skipped by resyncs
    reconnects: int = 0
    epoch_changes: int = 0
    lag: int = 0  # relay head - position, as of the last Welcome (0 once an idle heartbeat arrives)
    undecodable: int = 0  # frames that failed to decode: counted, reported, skipped (never retried)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


_FAST_MIN = FAST_MIN
_RUN_COLUMNS = ("head4", "domain_seq", "domain", "payload_len")


def _uniform_run(buf: bytes, pos: int, size: int, k: int, domain: int, first_seq: int) -> int:
    """How many of the ``k`` frames at ``buf[pos:]``, assumed ``size`` bytes each, really are:
    valid magic/version, ``domain``, payload length ``size - 52`` and domain sequences
    ``first_seq, first_seq + 1, ...``. One vectorised pass over the header columns; the
    caller's per-frame loop takes over at the first frame that is not (a different size,
    a control frame, a gap...), so this is only ever a shortcut, never a different rule.
    """
    h = header_view(buf, pos, size, k, _RUN_COLUMNS)
    ok = h["domain_seq"] == np.arange(first_seq, first_seq + k, dtype=np.uint64)
    ok &= h["head4"] == HEAD4
    ok &= h["payload_len"] == size - HEADER_SIZE
    ok &= h["domain"] == domain
    del h
    if ok.all():
        return k
    return int(ok.argmin())


_FWD_COLUMNS = ("head4", "checksum", "domain_seq", "payload_len", "source_seq", "source_id")


def _forward_run(buf: bytearray, mv: memoryview, pos: int, size: int, k: int, last: int, sid: int) -> tuple[int, int]:
    """``forward_frames`` for up to ``k`` frames of ``size`` bytes at ``buf[pos:]``, vectorised:
    the longest prefix with a valid prefix word, payload length ``size - 52``, domain sequences
    increasing from above ``last`` and correct CRCs (all checked with one CRC over the frames laid
    out as records, as the relay's ingest does) is restamped in place. Returns ``(frames taken,
    domain_seq of the last one)``; the per-frame loop handles whatever follows, so this is a
    shortcut, never a different rule."""
    h = header_view(buf, pos, size, k, _FWD_COLUMNS)
    ok = h["head4"] == HEAD4
    ok &= h["payload_len"] == size - HEADER_SIZE
    dseq = h["domain_seq"]
    ok[0] &= bool(dseq[0] > last)
    ok[1:] &= dseq[1:] > dseq[:-1]
    m = k if ok.all() else int(ok.argmin())
    if not m:
        return 0, last
    covered = size - OFF_COVERED
    rows = np.frombuffer(buf, dtype=np.uint8, count=m * size, offset=pos).reshape(m, size)
    rec = np.empty((m, covered + 4), dtype=np.uint8)
    rec[:, :covered] = rows[:, OFF_COVERED:]
    rec[:, covered:] = rows[:, OFF_CHECKSUM : OFF_CHECKSUM + 4]
    del rows
    crc32 = _crc32
    if crc32(rec) != valid_records_crc(covered, m):
        stored = h["checksum"][:m].tolist()
        for i in range(m):  # name the first bad frame: the per-frame loop reports it
            a = pos + i * size
            if crc32(mv[a + OFF_COVERED : a + size]) != stored[i]:
                m = i
                break
        if not m:
            return 0, last
    del rec
    last = int(dseq[m - 1])
    new_seq = dseq[:m].copy()
    if covered <= _TABLE_MAX:
        # CRC-32 is affine: the new CRC is the old one XOR a linear function of the changed bytes
        changed = np.empty((m, 12), dtype=np.uint8)
        changed[:, :8] = (h["source_seq"][:m] ^ new_seq).view(np.uint8).reshape(m, 8)
        changed[:, 8:] = (h["source_id"][:m] ^ np.uint32(sid)).view(np.uint8).reshape(m, 4)
        t = _crc_tables(covered)
        fix = t[0].take(changed[:, 0])
        for j in range(1, 12):
            fix ^= t[j].take(changed[:, j])
        h["checksum"][:m] ^= fix
    else:
        start = pos + OFF_COVERED
        h["source_seq"][:m] = new_seq
        h["source_id"][:m] = sid
        h["checksum"][:m] = [crc32(mv[a : a + covered]) for a in range(start, start + m * size, size)]
    h["source_seq"][:m] = new_seq
    h["domain_seq"][:m] = 0
    h["source_id"][:m] = sid
    del h, dseq
    return m, last


# The header bytes forward_frames changes inside the CRC's coverage: source_seq, then source_id.
_RESTAMPED = [*range(OFF_SOURCE_SEQ, OFF_SOURCE_SEQ + 8), *range(OFF_SOURCE_ID, OFF_SOURCE_ID + 4)]
_TABLE_MAX = 1 << 16  # covered bytes: above this a frame's own CRC is the cheaper way
_TABLES: dict[int, Any] = {}


def _crc_tables(covered: int) -> Any:
    """For frames whose CRC covers ``covered`` bytes: ``t[j][v]`` is how the CRC changes when the
    ``j``-th byte of ``_RESTAMPED`` changes by ``v`` (XOR). CRC-32 of equal-length inputs is
    affine, ``crc(x ^ d) = crc(x) ^ crc(d) ^ crc(0)``, and ``crc(d) ^ crc(0)`` is linear in ``d``:
    so one table entry per changed byte, and each from the eight single-bit entries."""
    t = _TABLES.get(covered)
    if t is None:
        zero = bytes(covered)
        c0 = zlib.crc32(zero)
        t = np.zeros((len(_RESTAMPED), 256), dtype=np.uint32)
        for j, off in enumerate(_RESTAMPED):
            at = off - OFF_COVERED
            bits = []
            for b in range(8):
                d = bytearray(covered)
                d[at] = 1 << b
                bits.append(zlib.crc32(d) ^ c0)
            for v in range(1, 256):
                low = v & -v
                t[j, v] = t[j, v ^ low] ^ bits[low.bit_length() - 1]
        if len(_TABLES) >= 64:
            _TABLES.clear()
        _TABLES[covered] = t
    return t


class FrameBatch:
    """Frames ``first_seq .. first_seq + count - 1`` back to back in ``data[start:stop]``.

    What ``ConsumerCore.receive_frames`` delivers: the headers were checked and the
    sequences are consecutive, so a consumer that only counts, forwards or archives
    frames never needs a per-frame Python object. ``size`` is the frame size when all
    frames have the same size (0 otherwise); ``frames()`` / ``decode()`` split them.
    """

    __slots__ = ("data", "start", "stop", "first_seq", "count", "size")

    def __init__(self, data: bytes, start: int, stop: int, first_seq: int, count: int, size: int) -> None:
        self.data = data
        self.start = start
        self.stop = stop
        self.first_seq = first_seq
        self.count = count
        self.size = size

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.count - 1

    @property
    def nbytes(self) -> int:
        return self.stop - self.start

    def __len__(self) -> int:
        return self.count

    def view(self) -> memoryview:
        return memoryview(self.data)[self.start : self.stop]

    def offsets(self) -> list[int]:
        """Start offset (in ``data``) of every frame."""
        if self.size:
            return list(range(self.start, self.stop, self.size))
        return split_frames(self.data, self.start, self.stop)[0].tolist()[:-1]

    def frames(self) -> list[bytes]:
        data = self.data
        size = self.size
        if size:
            return [data[a : a + size] for a in range(self.start, self.stop, size)]
        offs = self.offsets()
        offs.append(self.stop)
        return [data[a:b] for a, b in zip(offs, offs[1:])]

    def decode(self, out: list[Any] | None = None) -> list[Any]:
        """Every frame fully decoded (CRC checked, TLVs parsed), appended to ``out``.

        On a frame that does not decode, raises with the good ones already in ``out``.
        """
        data = self.data
        if out is None:
            out = []
        append = out.append
        pos = self.start
        stop = self.stop
        while pos < stop:
            m, pos = decode_frame(data, pos)
            append(m)
        return out

    def __repr__(self) -> str:
        return f"<FrameBatch {self.first_seq}..{self.last_seq} ({self.nbytes} B)>"


class ConsumerCore:
    def __init__(
        self,
        domain: Domain | int,
        *,
        from_seq: int | None = None,
        types: Iterable[int] | None = None,
        name: str = "",
        raw: bool = False,
        latency: str | LatencyClass = LatencyClass.NORMAL,
    ) -> None:
        self.domain = Domain(domain)
        self.types = frozenset(types) if types else None
        self.name = name
        self.raw = raw
        # where the relay serves us in each fan-out (specs/relay.md, "Fan-out order")
        self.latency = latency_class(latency)
        if from_seq is None:
            self._mode, self._from = SubscribeMode.FROM_NOW, 0
        elif from_seq <= 0:
            self._mode, self._from = SubscribeMode.FROM_OLDEST, 0
        else:
            self._mode, self._from = SubscribeMode.FROM_SEQ, from_seq
        self.position = 0  # resume from position + 1 (0: nothing known yet)
        self.last_seq = 0  # last delivered
        self.epoch = 0
        self.relay_head = 0
        self.delivered = RangeSet()
        self.counters = ConsumerCounters()
        self._dec = FrameDecoder(shared=True)  # delivered FrameBatches keep pointing into its buffers
        self._exact = False  # next frame must be position + 1
        self._subscribed = False
        self.welcomed = False  # this session's Hello + Subscribe answered (the relay has our cursor)
        self._resumed_at = 0  # position at reconnect, to count recovered gaps
        self._out: list[bytes] = []
        self.goodbye: Goodbye | None = None
        self.broken: Exception | None = None
        self.stats: dict[str, Any] | None = None
        # (domain_seq, reason) of frames skipped because they do not decode, for the shell to
        # report; it empties the list as it logs
        self.undecodable: list[tuple[int, str]] = []

    # ---- connection lifecycle ----

    def start(self, source_id: int = 0) -> bytes:
        """A new connection: returns Hello + Subscribe to send (+ ConsumerClass in the Subscribe's
        message, unless the class is NORMAL: then the bytes are an older client's, which any relay
        takes)."""
        self._dec.reset()
        self.goodbye = None
        self.broken = None
        self.welcomed = False
        if self.position:
            mode, from_seq = SubscribeMode.FROM_SEQ, self.position + 1
            self._exact = self.types is None
            self._resumed_at = self.position
        else:
            mode, from_seq = self._mode, self._from
            self._exact = mode == SubscribeMode.FROM_SEQ and self.types is None
            if mode == SubscribeMode.FROM_SEQ:
                self.position = from_seq - 1
            self._resumed_at = 0
        self._subscribed = True
        types = tuple(TypeCode(code=t) for t in sorted(self.types or ()))
        sub: tuple[TLV, ...] = (Subscribe(mode=int(mode), from_seq=from_seq, types=types),)
        if self.latency is not LatencyClass.NORMAL:
            sub += (ConsumerClass(latency=int(self.latency)),)
        return control_frame(
            Hello(role=Role.CONSUMER, protocol_version=VERSION, source_id=source_id, name=self.name)
        ) + control_frame(*sub)

    def lost_connection(self) -> None:
        self.counters.reconnects += 1
        self._subscribed = False

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def heartbeat(self) -> bytes:
        return control_frame(Heartbeat(epoch=self.epoch, head_seq=self.position))

    # ---- receiving ----

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """Feed bytes; return the data frames (bytes) or Messages to deliver, in order.

        If the connection turned out to be unusable (a gap, a Goodbye, malformed
        bytes), ``broken`` is set: deliver what was returned, then reconnect.
        Per-frame objects are built here; ``receive_frames`` is the cheaper form.
        """
        return self.items(self.receive_frames(data))

    def items(self, batches: list[FrameBatch]) -> list[Any]:
        """What the application gets for ``batches``: raw frames (bytes) or decoded Messages.

        Decoding checks every frame's CRC and TLVs. A frame that fails (the relay refuses
        such frames since issue 17, but an older journal may still hold one) is counted
        (``counters.undecodable``), reported (``undecodable``: its sequence and the reason,
        for the shell to log) and skipped: it is not delivered, its sequence becomes a
        hole in ``delivered``, and the frames after it are delivered as usual. Fetching
        it again could never succeed, so it is never retried.
        """
        out: list[Any] = []
        if self.raw:
            for b in batches:
                out.extend(b.frames())
            return out
        for b in batches:
            before = len(out)
            try:
                b.decode(out)
            except ProtocolError:
                self._decode_skipping(b, len(out) - before, out)
        return out

    def _decode_skipping(self, b: FrameBatch, done: int, out: list[Any]) -> None:
        """Finish decoding ``b`` after its first ``done`` frames, skipping and recording every
        frame that does not decode."""
        data = b.data
        pos = b.start
        for _ in range(done):
            pos += check_prefix(data, pos)
        seq = b.first_seq + done
        while pos < b.stop:
            size = check_prefix(data, pos)  # the header was checked on receipt
            try:
                m, _ = decode_frame(data, pos)
            except ProtocolError as exc:
                self.counters.undecodable += 1
                self.counters.delivered -= 1
                self.delivered.subtract(seq, seq + 1)
                self.undecodable.append((seq, str(exc)))
            else:
                out.append(m)
            pos += size
            seq += 1

    def receive_frames(self, data: bytes | bytearray | memoryview) -> list[FrameBatch]:
        """Feed bytes; return the frames to deliver as ``FrameBatch``es (runs of consecutive
        sequences sharing one buffer), in order, with no per-frame objects.

        Every delivered frame's header was checked (magic, version, domain, length) and
        its ``domain_seq`` is exactly the next one expected (unfiltered) or above the
        last one (filtered). Runs of equal-size frames are checked with one vectorised
        comparison over their header columns instead of a Python loop per frame.
        """
        if self.broken is not None:
            return []
        dec = self._dec
        dec.receive_data(data)
        buf, pos, end = dec.window()
        out: list[FrameBatch] = []
        unpack = _HDR.unpack_from
        mydomain = int(self.domain)
        filtered = self.types is not None
        last = self.position
        exact = self._exact
        c = self.counters
        received = 0
        dups = 0
        rpos = -1  # current run: start offset, first sequence, uniform frame size (0: mixed)
        rfirst = 0
        rsize = 0
        prev_size = 0
        retry_at = 0  # no vectorised attempt before this offset (after one that did not pay)
        try:
            while end - pos >= HEADER_SIZE:
                head4, dseq, dom, plen = unpack(buf, pos)
                if head4 != HEAD4 or plen > MAX_PAYLOAD:
                    check_prefix(buf, pos)
                size = HEADER_SIZE + plen
                nxt = pos + size
                if nxt > end:
                    break
                if dom == mydomain:
                    received += 1
                    if dseq == last + 1 and rpos >= 0:
                        # the common case: the next frame of the current run
                        last = dseq
                        if size != rsize:
                            rsize = 0
                        if size == prev_size and nxt >= retry_at and end - nxt >= _FAST_MIN * size:
                            m = _uniform_run(buf, nxt, size, (end - nxt) // size, mydomain, dseq + 1)
                            if m < _FAST_MIN:
                                retry_at = nxt + _FAST_MIN * size
                            received += m
                            last += m
                            nxt += m * size
                        prev_size = size
                        pos = nxt
                        continue
                    prev_size = size
                    if dseq <= last:
                        dups += 1
                        if rpos >= 0:
                            out.append(FrameBatch(buf, rpos, pos, rfirst, last - rfirst + 1, rsize))
                            self.delivered.add(rfirst, last + 1)
                            rpos = -1
                    elif exact and dseq != last + 1:
                        c.gaps += 1
                        raise StreamBroken(f"gap: expected sequence {last + 1}, got {dseq}")
                    else:
                        if rpos >= 0:  # a filtered consumer's jump: close the run, start another
                            out.append(FrameBatch(buf, rpos, pos, rfirst, last - rfirst + 1, rsize))
                            self.delivered.add(rfirst, last + 1)
                        rpos = pos
                        rfirst = dseq
                        rsize = size
                        if self._resumed_at:
                            if self._resumed_at == last and dseq == last + 1:
                                c.gaps_recovered += 1
                            self._resumed_at = 0
                        exact = not filtered
                        last = dseq
                elif dom == Domain.SYSTEM:
                    if rpos >= 0:
                        out.append(FrameBatch(buf, rpos, pos, rfirst, last - rfirst + 1, rsize))
                        self.delivered.add(rfirst, last + 1)
                        rpos = -1
                    self.position = last
                    self._exact = exact
                    self._on_control(decode(buf[pos:nxt]))
                    last = self.position
                    exact = self._exact
                    prev_size = 0
                else:
                    raise FrameError(f"frame of domain {dom} on the {self.domain.name.lower()} relay")
                pos = nxt
        except (StreamBroken, ProtocolError) as exc:
            # frames before the break are good and delivered; the shell drops the connection
            self.broken = exc
        finally:
            dec.consume(pos)
            if rpos >= 0:
                out.append(FrameBatch(buf, rpos, pos, rfirst, last - rfirst + 1, rsize))
                self.delivered.add(rfirst, last + 1)
            if out:
                tail = out[-1]
                self.last_seq = tail.first_seq + tail.count - 1
                c.delivered += tail.count if len(out) == 1 else sum(b.count for b in out)
            self.position = last
            self._exact = exact
            c.received += received
            if dups:
                c.duplicates += dups
        return out

    def _on_control(self, msg: Message) -> None:
        for tlv in msg.tlvs:
            if isinstance(tlv, Welcome):
                if tlv.domain != self.domain:
                    raise RemoteProtocolError(f"relay serves domain {tlv.domain}, expected {int(self.domain)}")
                if self.epoch and tlv.epoch != self.epoch:
                    self.counters.epoch_changes += 1
                self.epoch = tlv.epoch
                self.welcomed = True
                self.relay_head = tlv.head_seq
                if self._mode == SubscribeMode.FROM_NOW and not self.position:
                    # 'now' is this Welcome's head: a reconnect before anything arrived resumes after it,
                    # not from a later 'now' (what was published while we reconnected would be skipped)
                    self._mode, self._from = SubscribeMode.FROM_SEQ, tlv.head_seq + 1
                self.counters.lag = max(0, tlv.head_seq - self.position)
                if self._resumed_at and tlv.head_seq > self._resumed_at:
                    self.counters.gaps += 1  # we missed messages while away; the resume recovers them
                elif self._resumed_at:
                    self._resumed_at = 0  # nothing was missed
            elif isinstance(tlv, Heartbeat):
                if tlv.head_seq == 0:
                    continue  # sent before our Subscribe took effect: no watermark yet
                self.relay_head = tlv.head_seq
                self.counters.lag = 0
                if tlv.head_seq > self.position:
                    if self._exact:
                        self.counters.gaps += 1
                        raise StreamBroken(f"lost tail: relay is at {tlv.head_seq}, we have {self.position}")
                    self.position = tlv.head_seq  # filtered, or a fresh from-now/oldest consumer
                    self._exact = self.types is None
                    self._resumed_at = 0
            elif isinstance(tlv, Resync):
                self.counters.resyncs += 1
                if tlv.reason in (ResyncReason.TOO_OLD, ResyncReason.CORRUPT) and tlv.oldest_available > tlv.requested_seq:
                    self.counters.lost += tlv.oldest_available - tlv.requested_seq
                elif tlv.oldest_available <= self.position:
                    # the relay lost sequences we already delivered; they will be reused
                    self.delivered.subtract(tlv.oldest_available, self.position + 1)
                self.position = tlv.oldest_available - 1
                self._exact = self.types is None
                self._resumed_at = 0
            elif isinstance(tlv, Goodbye):
                self.goodbye = tlv
                raise StreamBroken(f"relay said goodbye ({tlv.code}): {tlv.reason}")
            elif isinstance(tlv, Stats):
                self.stats = json.loads(tlv.json)
            elif isinstance(tlv, Ack):
                pass
            else:
                raise RemoteProtocolError(f"unexpected control message {type(tlv).__name__} for a consumer")


@dataclass
class ProducerCounters:
    published: int = 0
    acked: int = 0  # highest acknowledged source_seq
    resent: int = 0  # frames sent again after a reconnect
    reconnects: int = 0


class ProducerCore:
    def __init__(self, domain: Domain | int, source_id: int, *, name: str = "") -> None:
        if not 0 < source_id < 1 << 32:
            raise ValueError("source_id must be in 1 .. 2**32-1")
        self.domain = Domain(domain)
        self.source_id = source_id
        self.name = name
        self.next_seq = 1
        self.acked_seq = 0
        self.epoch = 0
        self.welcomed = False
        self.outbox: deque[tuple[int, bytes]] = deque()
        self.outbox_bytes = 0
        self._unsent: list[bytes] = []
        self.unsent_bytes = 0
        self._dec = FrameDecoder()
        self._out: list[bytes] = []
        self.counters = ProducerCounters()
        self.goodbye: Goodbye | None = None
        # An Ack for this source as the relay encodes it: every byte is fixed but the checksum and
        # the trailing source_seq (see receive_data)
        ack = control_frame(Ack(source_id=source_id, source_seq=0))
        self._ack_size = len(ack)
        self._ack_head = ack[:_OFF_CHECKSUM]
        self._ack_body = ack[_OFF_CHECKSUM + 4 : -8]

    @property
    def last_published(self) -> int:
        return self.next_seq - 1

    @property
    def unacked(self) -> int:
        return len(self.outbox)

    def start(self) -> bytes:
        """A new connection: returns the Hello to send; frames are sent after Welcome."""
        self._dec.reset()
        self.welcomed = False
        self.goodbye = None
        self._unsent.clear()
        self.unsent_bytes = 0
        return control_frame(
            Hello(role=Role.PRODUCER, protocol_version=VERSION, source_id=self.source_id, name=self.name)
        )

    def lost_connection(self) -> None:
        self.counters.reconnects += 1
        self.welcomed = False

    def heartbeat(self) -> bytes:
        return control_frame(Heartbeat(epoch=self.epoch, head_seq=self.acked_seq))

    # ---- publishing ----

    def publish(
        self, tlvs: Iterable[TLV], *, event_time_ns: int = 0, receive_time_ns: int = 0, flags: int = 0
    ) -> int:
        seq = self.next_seq
        frame = encode(
            Message(
                domain=self.domain,
                tlvs=tuple(tlvs),
                source_id=self.source_id,
                source_seq=seq,
                event_time_ns=event_time_ns,
                receive_time_ns=receive_time_ns,
                flags=flags,
            )
        )
        self._push(seq, frame)
        return seq

    def publish_payload(
        self, payload: bytes, *, event_time_ns: int = 0, receive_time_ns: int = 0, flags: int = 0
    ) -> int:
        """Fast path: ``payload`` is already-encoded TLV bytes."""
        n = len(payload)
        if n > MAX_PAYLOAD:
            raise FrameError(f"payload of {n} bytes exceeds the maximum {MAX_PAYLOAD}")
        seq = self.next_seq
        covered = _COVERED_pack(self.domain, 0, flags, n, seq, event_time_ns, receive_time_ns, self.source_id) + payload
        self._push(seq, _PREFIX_pack(MAGIC, VERSION, 0, _crc32(covered), 0) + covered)
        return seq

    def forward_frames(self, data: bytes | bytearray | memoryview) -> tuple[int, int, list[tuple[int, str]]]:
        """Republish relay frames (back to back in ``data``, as another relay delivered them) under
        this producer's identity, keeping each frame's ``domain_seq`` as its ``source_seq``.

        What a bridge into a relay does: the frames' payload, times and flags are unchanged;
        ``source_id`` and ``source_seq`` are restamped, ``domain_seq`` cleared and the CRC
        recomputed -- after checking the original CRC, so a frame damaged on the way is never
        given a fresh checksum. Domain sequences must increase (and exceed what this producer
        published before); the relay dedupes by them, so a resent batch enters its log once.
        One outbox entry for the whole batch. Returns ``(frames taken, last source_seq, damaged)``
        where ``damaged`` lists ``(domain_seq, reason)`` of frames skipped because their CRC or
        header is wrong.
        """
        buf = bytearray(data)
        n = len(buf)
        mv = memoryview(buf)
        crc32 = _crc32
        unpack = _FWD.unpack_from
        u64_into = _U64_into
        u32_into = _U32_into
        sid = self.source_id
        pos = 0
        taken = 0
        last = self.next_seq - 1
        damaged: list[tuple[int, str]] = []
        keep: list[tuple[int, int]] = []  # runs of good frames (start, end) when some are skipped
        run = 0
        while pos < n:
            if n - pos < HEADER_SIZE:
                damaged.append((0, f"{n - pos} trailing bytes"))
                break
            head4, csum, dseq, plen = unpack(buf, pos)
            end = pos + HEADER_SIZE + plen
            if head4 != HEAD4 or plen > MAX_PAYLOAD or end > n:
                damaged.append((dseq, "bad header"))  # frame boundaries are lost: drop the rest
                break
            if crc32(mv[pos + _OFF_COVERED : end]) != csum or dseq <= last:
                damaged.append((dseq, "checksum mismatch" if dseq > last else f"domain_seq {dseq} after {last}"))
                if pos > run:
                    keep.append((run, pos))
                run = end
                pos = end
                continue
            u64_into(buf, pos + _OFF_DOMAIN_SEQ, 0)
            u64_into(buf, pos + _OFF_SOURCE_SEQ, dseq)
            u32_into(buf, pos + _OFF_SOURCE_ID, sid)
            u32_into(buf, pos + _OFF_CHECKSUM, crc32(mv[pos + _OFF_COVERED : end]))
            last = dseq
            taken += 1
            size = end - pos
            pos = end
            if n - pos >= _FAST_MIN * size:
                # a run of equal-size frames (a bridge's usual batch): the same checks and stamps at once
                m, last_d = _forward_run(buf, mv, pos, size, (n - pos) // size, last, sid)
                if m:
                    last = last_d
                    taken += m
                    pos += m * size
        mv.release()
        if keep:
            if pos > run:
                keep.append((run, pos))
            frames = b"".join(buf[a:b] for a, b in keep)
        else:
            frames = bytes(buf[run:pos]) if run or pos < n else bytes(buf)
        if taken:
            self._push(last, frames)
            self.counters.published += taken - 1
        return taken, last, damaged

    def _push(self, seq: int, frame: bytes) -> None:
        self.next_seq = seq + 1
        self.outbox.append((seq, frame))
        self.outbox_bytes += len(frame)
        self.counters.published += 1
        if self.welcomed:
            self._unsent.append(frame)
            self.unsent_bytes += len(frame)

    def data_to_send(self) -> bytes:
        """Control replies, then every frame not yet sent on this connection."""
        if not self._out:
            unsent = self._unsent
            if len(unsent) == 1:  # the latency path: one frame, sent as it is
                self._unsent = []
                self.unsent_bytes = 0
                return unsent[0]
            if not unsent:
                return b""
        parts = self._out + self._unsent
        self._out.clear()
        self._unsent = []
        self.unsent_bytes = 0
        return b"".join(parts)

    # ---- receiving ----

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        dec = self._dec
        size = self._ack_size
        if self.welcomed and not dec.buffered and len(data) % size == 0 and (top := self._acks_only(data, size)) >= 0:
            # the usual read: nothing but whole Acks for us, each checked (prefix, every header and
            # TLV byte, CRC) against the one layout an Ack has; the highest one counts. Anything
            # else (a Welcome, a heartbeat, a bad frame) takes the general path below
            self._acked(top)
            return
        dec.receive_data(data)
        while (msg := dec.next_message()) is not None:
            if msg.domain != Domain.SYSTEM:
                raise RemoteProtocolError(f"relay sent a domain {msg.domain} message to a producer-only connection")
            for tlv in msg.tlvs:
                self._on_control(tlv)

    def _acks_only(self, data: bytes | bytearray | memoryview, size: int) -> int:
        """The highest source_seq of ``data`` if it is whole, valid Acks for this source and
        nothing else, else -1."""
        head = self._ack_head
        body = self._ack_body
        crc32 = _crc32
        csum_at = _OFF_CHECKSUM
        top = 0
        for pos in range(0, len(data), size):
            if (data[pos : pos + csum_at] != head or data[pos + csum_at + 4 : pos + size - 8] != body
                    or crc32(data[pos + _OFF_COVERED : pos + size]) != _U32_from(data, pos + csum_at)[0]):
                return -1
            seq = _U64_from(data, pos + size - 8)[0]
            if seq > top:
                top = seq
        return top

    def _on_control(self, tlv: TLV) -> None:
        if isinstance(tlv, Welcome):
            if tlv.domain != self.domain:
                raise RemoteProtocolError(f"relay serves domain {tlv.domain}, expected {int(self.domain)}")
            self.epoch = tlv.epoch
            self.welcomed = True
            self._acked(tlv.last_source_seq)
            if tlv.last_source_seq >= self.next_seq:
                self.next_seq = tlv.last_source_seq + 1  # a restarted producer continues its sequence
            # resend the unacknowledged tail
            self._unsent = [f for _, f in self.outbox]
            self.unsent_bytes = self.outbox_bytes
            self.counters.resent += len(self._unsent)
        elif isinstance(tlv, Ack):
            if tlv.source_id != self.source_id:
                raise RemoteProtocolError(f"Ack for source {tlv.source_id}, we are {self.source_id}")
            self._acked(tlv.source_seq)
        elif isinstance(tlv, Heartbeat):
            pass
        elif isinstance(tlv, Goodbye):
            self.goodbye = tlv
            raise StreamBroken(f"relay said goodbye ({tlv.code}): {tlv.reason}")
        else:
            raise RemoteProtocolError(f"unexpected control message {type(tlv).__name__} for a producer")

    def _acked(self, seq: int) -> None:
        if seq > self.acked_seq:
            self.acked_seq = seq
            self.counters.acked = seq
        box = self.outbox
        while box and box[0][0] <= seq:
            self.outbox_bytes -= len(box.popleft()[1])
