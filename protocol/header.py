"""The fixed 52-byte message header.

Theory of operation
-------------------
Every message on the bus is ``header (52 bytes) + payload (payload_len bytes)``.
All integers are little-endian. The layout lets a relay handle a frame by
touching fixed offsets only, never the TLVs. ``FIELDS`` below is the layout the
code uses -- every struct, numpy column and offset constant in protocol/ and
relays/ is derived from it, and tests/protocol checks it against the table in
specs/protocol.md; this table is its documentation:

=======  =====  ====================  ==============================================
offset   size   field                 notes
=======  =====  ====================  ==============================================
0        2      magic                 0x5041 (bytes ``41 50``, "AP")
2        1      version               1
3        1      reserved              0 in version 1
4        4      checksum              CRC-32 (zlib) over bytes [16, 52 + payload_len)
8        8      domain_seq            stamped by the relay *in place*; 0 before that
16       1      domain                1 market data, 2 signal, 3 execution, 4 system
17       1      reserved              0 in version 1
18       2      flags                 bit 0 REPLAYED, bit 1 RETRANSMIT
20       4      payload_len           bytes of TLVs after the header, <= MAX_PAYLOAD
24       8      source_seq            stamped by the producer: 1, 2, 3, ...
32       8      event_time_ns         venue/event time, integer ns since the Unix epoch
40       8      receive_time_ns       local receive time, integer ns since the Unix epoch
48       4      source_id             producer identity
=======  =====  ====================  ==============================================

Why the checksum skips bytes [0, 16): the relay stamps ``domain_seq`` with one
``pack_into`` and forwards the frame without recomputing anything, while
everything the producer wrote stays covered end to end, in one contiguous CRC
pass. Magic, version and the reserved bytes are checked by value instead (a
flip there is a ``FrameError``); a corrupted ``domain_seq`` shows up in every
consumer's gap tracker as a gap or a duplicate.
"""

from __future__ import annotations

import struct
import zlib
from enum import IntEnum
from typing import Any, NamedTuple

from .errors import ChecksumError, FrameError

MAGIC = 0x5041
VERSION = 1
HEADER_SIZE = 52
MAX_PAYLOAD = 1 << 20  # 1 MiB: bounds every allocation a peer can make us do

FLAG_REPLAYED = 0x0001
FLAG_RETRANSMIT = 0x0002


class Domain(IntEnum):
    MARKET_DATA = 1
    SIGNAL = 2
    EXECUTION = 3
    SYSTEM = 4


DOMAIN_BY_NAME = {d.name.lower(): d for d in Domain}

# The layout, stated once: (field, struct code) in wire order; offsets follow from the sizes.
# Every codec, scanner and vectorised check below and in relays/ derives its structs and
# numpy columns from this table through ``header_format`` / ``header_columns``.
FIELDS: tuple[tuple[str, str], ...] = (
    ("magic", "H"),
    ("version", "B"),
    ("reserved0", "B"),
    ("checksum", "I"),
    ("domain_seq", "Q"),
    ("domain", "B"),
    ("reserved1", "B"),
    ("flags", "H"),
    ("payload_len", "I"),
    ("source_seq", "Q"),
    ("event_time_ns", "Q"),
    ("receive_time_ns", "Q"),
    ("source_id", "I"),
)
# Two words the fast paths compare in one go: (magic, version, reserved0) as a u32 that must
# equal ``HEAD4``, and (domain, reserved1) as a u16 that must equal the domain.
WORDS: tuple[tuple[str, str, int], ...] = (("head4", "I", 0), ("domain16", "H", 16))
HEAD4 = MAGIC | (VERSION << 16)

OFFSETS: dict[str, int] = {}
CODES: dict[str, str] = {}
_at = 0
for _name, _code in FIELDS:
    OFFSETS[_name] = _at
    CODES[_name] = _code
    _at += struct.calcsize(_code)
for _name, _code, _off in WORDS:
    OFFSETS[_name] = _off
    CODES[_name] = _code
assert _at == HEADER_SIZE
FIELD_NAMES = tuple(name for name, _ in FIELDS)

OFF_CHECKSUM = OFFSETS["checksum"]
OFF_DOMAIN_SEQ = OFFSETS["domain_seq"]
OFF_COVERED = OFFSETS["domain"]  # checksum covers [16, end of frame)
OFF_DOMAIN = OFFSETS["domain"]
OFF_FLAGS = OFFSETS["flags"]
OFF_PAYLOAD_LEN = OFFSETS["payload_len"]
OFF_SOURCE_SEQ = OFFSETS["source_seq"]
OFF_EVENT_TIME = OFFSETS["event_time_ns"]
OFF_RECEIVE_TIME = OFFSETS["receive_time_ns"]
OFF_SOURCE_ID = OFFSETS["source_id"]


def header_format(*names: str, start: int = 0, stop: int = HEADER_SIZE) -> str:
    """A ``struct`` format (no byte-order prefix) over header bytes ``[start, stop)`` that reads
    ``names`` (fields or ``WORDS``, in wire order) and skips every other byte."""
    out = []
    at = start
    for name in names:
        off = OFFSETS[name]
        if off < at:
            raise ValueError(f"header field {name} is out of wire order or overlaps the one before")
        if off > at:
            out.append(f"{off - at}x")
        out.append(CODES[name])
        at = off + struct.calcsize(CODES[name])
    if at > stop:
        raise ValueError(f"header fields run past byte {stop}")
    if stop > at:
        out.append(f"{stop - at}x")
    return "".join(out)


def header_struct(*names: str) -> struct.Struct:
    """A precompiled little-endian ``struct`` reading ``names`` from a whole 52-byte header."""
    return struct.Struct("<" + header_format(*names))


def header_columns(*names: str) -> dict[str, list[Any]]:
    """numpy structured-dtype fields (``names``, ``formats``, ``offsets``) for header columns of
    frames laid back to back; the caller adds ``itemsize`` (the frame size)."""
    return {
        "names": list(names),
        "formats": ["<" + {"B": "u1", "H": "u2", "I": "u4", "Q": "u8"}[CODES[n]] for n in names],
        "offsets": [OFFSETS[n] for n in names],
    }


# The whole header, in wire order.
HEADER = header_struct(*FIELD_NAMES)
# The first 16 bytes: magic, version, reserved, checksum, domain_seq.
PREFIX = struct.Struct("<" + header_format(*FIELD_NAMES[:5], stop=OFF_COVERED))
# The covered 36 header bytes: domain, reserved, flags, payload_len, source_seq, event, receive, source_id.
COVERED = struct.Struct("<" + header_format(*FIELD_NAMES[5:], start=OFF_COVERED))
# The whole header with magic, version and reserved0 as one word: what the decoders unpack.
WORD_FIELDS = ("head4",) + FIELD_NAMES[3:]
WORD_HEADER = header_struct(*WORD_FIELDS)
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")


class FrameHeader(NamedTuple):
    """The header fields of one frame (``read_header``); a Python object per frame, so for
    tools and recorders, not for the relay's hot path."""

    magic: int
    version: int
    reserved0: int
    checksum: int
    domain_seq: int
    domain: int
    reserved1: int
    flags: int
    payload_len: int
    source_seq: int
    event_time_ns: int
    receive_time_ns: int
    source_id: int


_HEADER_unpack_from = HEADER.unpack_from
_tuple_new = tuple.__new__


def read_header(buf: bytes | bytearray | memoryview, offset: int = 0) -> FrameHeader:
    """Every header field of the frame at ``offset``, unchecked."""
    return _tuple_new(FrameHeader, _HEADER_unpack_from(buf, offset))


assert FrameHeader._fields == FIELD_NAMES
assert HEADER.size == HEADER_SIZE and PREFIX.size + COVERED.size == HEADER_SIZE

_crc32 = zlib.crc32
_MAGIC_LO, _MAGIC_HI = MAGIC & 0xFF, MAGIC >> 8
_OFF_VERSION = OFFSETS["version"]
_OFF_RESERVED0 = OFFSETS["reserved0"]
_OFF_RESERVED1 = OFFSETS["reserved1"]
_U32_unpack_from = U32.unpack_from


def frame_size(buf: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """Size of the frame at ``offset`` from its payload length, unchecked (for frames already checked)."""
    return HEADER_SIZE + int(_U32_unpack_from(buf, offset + OFF_PAYLOAD_LEN)[0])


def stamp_domain_seq(buf: bytearray | memoryview, offset: int, seq: int) -> None:
    """Write the relay's domain sequence into the frame starting at ``offset``, in place."""
    U64.pack_into(buf, offset + OFF_DOMAIN_SEQ, seq)


def read_domain_seq(buf: bytes | bytearray | memoryview, offset: int = 0) -> int:
    return int(U64.unpack_from(buf, offset + OFF_DOMAIN_SEQ)[0])


def check_prefix(buf: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """Validate magic, version, reserved bytes, domain and length of the header at ``offset``.

    Returns the total frame size. Needs only HEADER_SIZE bytes at ``offset``;
    cheap enough for the relay's hot path.
    """
    if buf[offset] != _MAGIC_LO or buf[offset + 1] != _MAGIC_HI:
        raise FrameError(f"bad magic 0x{buf[offset] | (buf[offset + 1] << 8):04x} (expected 0x{MAGIC:04x})")
    if buf[offset + _OFF_VERSION] != VERSION:
        raise FrameError(f"unsupported protocol version {buf[offset + _OFF_VERSION]} (this build speaks {VERSION})")
    if buf[offset + _OFF_RESERVED0] or buf[offset + _OFF_RESERVED1]:
        raise FrameError("reserved header bytes are not zero")
    if not 1 <= buf[offset + OFF_DOMAIN] <= 4:
        raise FrameError(f"unknown domain {buf[offset + OFF_DOMAIN]}")
    (payload_len,) = U32.unpack_from(buf, offset + OFF_PAYLOAD_LEN)
    if payload_len > MAX_PAYLOAD:
        raise FrameError(f"payload length {payload_len} exceeds the maximum {MAX_PAYLOAD}")
    return HEADER_SIZE + int(payload_len)


def verify_frame(buf: bytes | bytearray | memoryview, offset: int, size: int) -> None:
    """Verify the checksum of the complete frame ``buf[offset:offset+size]``."""
    (stored,) = U32.unpack_from(buf, offset + OFF_CHECKSUM)
    actual = _crc32(memoryview(buf)[offset + OFF_COVERED : offset + size])
    if stored != actual:
        raise ChecksumError(f"checksum mismatch: frame says 0x{stored:08x}, computed 0x{actual:08x}")
