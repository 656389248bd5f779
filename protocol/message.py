"""Messages: the fixed header plus a tuple of TLV records; ``encode``/``decode``.

``Message`` is an immutable named tuple built with keywords only; derive a new
one with ``msg._replace(...)`` (replay and audit depend on messages never
changing under them). It is a tuple rather than a dataclass because the decoder
builds one per frame and ``tuple.__new__`` is the cheapest immutable object
CPython can make.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from . import fused
from . import header as H
from .errors import ChecksumError, FieldRangeError, FrameError
from .tlv import _DECODERS, ON_REGISTER, TLV, TLV_TYPES, decode_tlvs

_PREFIX_pack = H.PREFIX.pack
_COVERED_pack = H.COVERED.pack
# magic, version and the first reserved byte read as one uint32 for a single compare
_HEADER_unpack_from = H.WORD_HEADER.unpack_from
_WORD0 = H.HEAD4
_OFF_COVERED = H.OFF_COVERED
_OFF_PAYLOAD_LEN = H.OFF_PAYLOAD_LEN
_crc32 = H._crc32
_HEADER_SIZE = H.HEADER_SIZE
_MAX_PAYLOAD = H.MAX_PAYLOAD
_MAGIC = H.MAGIC
_VERSION = H.VERSION
_tuple_new = tuple.__new__
_U32_unpack_from = H.U32.unpack_from
_decoders_get = _DECODERS.get


class _MessageFields(NamedTuple):
    domain: int
    tlvs: tuple[TLV, ...]
    source_id: int
    source_seq: int
    domain_seq: int
    event_time_ns: int
    receive_time_ns: int
    flags: int


class Message(_MessageFields):
    """One bus message. Times are integer nanoseconds since the Unix epoch."""

    __slots__ = ()

    def __new__(
        cls,
        *,
        domain: int,
        tlvs: tuple[TLV, ...] | list[TLV] = (),
        source_id: int = 0,
        source_seq: int = 0,
        domain_seq: int = 0,
        event_time_ns: int = 0,
        receive_time_ns: int = 0,
        flags: int = 0,
    ) -> Message:
        if isinstance(domain, bool) or not isinstance(domain, int) or not 1 <= domain <= 4:
            raise FieldRangeError(f"Message.domain={domain!r} is not a domain (1..4)")
        tlvs = tuple(tlvs)
        for t in tlvs:
            if not isinstance(t, TLV):
                raise FieldRangeError(f"Message.tlvs must hold TLV records, got {t!r}")
        return _tuple_new(
            cls, (domain, tlvs, source_id, source_seq, domain_seq, event_time_ns, receive_time_ns, flags)
        )

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Message:  # type: ignore[override]
        # _replace goes through _make: keep the constructor's checks on derived messages
        return cls(**dict(zip(cls._fields, iterable)))

    def find(self, cls: type[TLV]) -> TLV | None:
        """The first record of type ``cls``, or None."""
        for t in self.tlvs:
            if type(t) is cls:
                return t
        return None

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, self))
        return f"Message({fields})"


def encode_payload(tlvs: tuple[TLV, ...]) -> bytes:
    if len(tlvs) == 1:
        return tlvs[0].encode()
    return b"".join([t.encode() for t in tlvs])


def encode(message: Message) -> bytes:
    """Serialise a message: header (with checksum) + TLVs."""
    if len(message[1]) == 1:
        fenc = _FAST_ENCODE_get(type(message[1][0]))
        if fenc is not None:
            out = fenc(message)
            if out is not None:
                return out
    return _encode_general(message)


def _encode_general(message: Message) -> bytes:
    domain, tlvs, sid, sseq, dseq, ev, rv, flags = message
    payload = tlvs[0].encode() if len(tlvs) == 1 else b"".join([t.encode() for t in tlvs])
    n = len(payload)
    if n > _MAX_PAYLOAD:
        raise FieldRangeError(f"payload of {n} bytes exceeds the maximum {_MAX_PAYLOAD}")
    try:
        covered = _COVERED_pack(domain, 0, flags, n, sseq, ev, rv, sid) + payload
        return _PREFIX_pack(_MAGIC, _VERSION, 0, _crc32(covered), dseq) + covered
    except Exception:  # struct.error and friends: say which header field is wrong
        raise _header_error(message) from None


def _header_error(m: Message) -> FieldRangeError:
    for name, bits in (
        ("domain", 8),
        ("flags", 16),
        ("source_id", 32),
        ("source_seq", 64),
        ("domain_seq", 64),
        ("event_time_ns", 64),
        ("receive_time_ns", 64),
    ):
        v = getattr(m, name)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < (1 << bits):
            return FieldRangeError(f"Message.{name}={v!r} does not fit in uint{bits}")
    return FieldRangeError("invalid message header")


def decode_frame(buf: bytes | bytearray | memoryview, off: int = 0) -> tuple[Message, int]:
    """Decode one message at ``buf[off:]``; return it and the offset just past it.

    Raises ``FrameError`` when the buffer holds less than one whole frame.
    """
    n = len(buf) - off
    if n > _HEADER_SIZE + 1:
        fast = _FAST_DECODE_get(buf[off + _HEADER_SIZE])
        if fast is not None and n >= fast[1]:
            m = fast[0](buf, off)
            if m is not None:
                if fast[2]:
                    return m, off + fast[1]
                return m, off + _HEADER_SIZE + _U32_unpack_from(buf, off + _OFF_PAYLOAD_LEN)[0]
    return _decode_frame_general(buf, off)


def _decode_frame_general(buf: bytes | bytearray | memoryview, off: int) -> tuple[Message, int]:
    if len(buf) - off < _HEADER_SIZE:
        raise FrameError(f"truncated header: {len(buf) - off} of {_HEADER_SIZE} bytes")
    (word0, csum, dseq, domain, r2, flags, plen, sseq, ev, rv, sid) = _HEADER_unpack_from(buf, off)
    if word0 != _WORD0 or r2 or not 0 < domain < 5 or plen > _MAX_PAYLOAD:
        H.check_prefix(buf, off)  # raises the precise FrameError
    start = off + _HEADER_SIZE
    end = start + plen
    if end > len(buf):
        raise FrameError(f"truncated payload: {len(buf) - start} of {plen} bytes")
    covered = off + _OFF_COVERED
    if _crc32(buf[covered:end] if type(buf) is bytes else memoryview(buf)[covered:end]) != csum:
        raise ChecksumError("checksum mismatch")
    # Fast path: one compact record spanning the whole payload (most market data).
    if plen >= 2 and buf[start] and buf[start + 1] + 2 == plen and (dec := _decoders_get(buf[start])):
        tlvs: tuple[TLV, ...] = (dec(buf, start + 2, plen - 2),)
    else:
        tlvs = decode_tlvs(buf, start, end)
    return _tuple_new(Message, (domain, tlvs, sid, sseq, dseq, ev, rv, flags)), end


def control_frame(*tlvs: TLV) -> bytes:
    """A SYSTEM (domain 4) message holding ``tlvs``, encoded: what clients and relays say to
    each other on a connection (Hello, Welcome, Ack, Heartbeat, Goodbye, ...)."""
    return encode(Message(domain=H.Domain.SYSTEM, tlvs=tlvs))


def decode(data: bytes | bytearray | memoryview) -> Message:
    """Decode exactly one message; trailing bytes are an error."""
    if len(data) > _HEADER_SIZE + 1:
        fast = _FAST_DECODE_get(data[_HEADER_SIZE])
        if fast is not None and (len(data) == fast[1] if fast[2] else len(data) >= fast[1]):
            m = fast[0](data, 0)
            if m is not None and (fast[2] or H.frame_size(data) == len(data)):
                return m
    m, end = _decode_frame_general(data, 0)
    if end != len(data):
        raise FrameError(f"{len(data) - end} trailing bytes after the message")
    return m


_FAST_ENCODE_get = fused.FAST_ENCODE.get
_FAST_DECODE_get = fused.FAST_DECODE.get


def _build_fused(cls: type[TLV]) -> None:
    from .tlv import _GEN_NAMESPACE

    ns = dict(_GEN_NAMESPACE)
    ns["_tuple_new"] = _tuple_new
    fused.build(cls, Message, ns)


for _cls in list(TLV_TYPES.values()):
    _build_fused(_cls)
ON_REGISTER.append(_build_fused)
