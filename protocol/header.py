"""The fixed 52-byte message header.

Theory of operation
-------------------
Every message on the bus is ``header (52 bytes) + payload (payload_len bytes)``.
All integers are little-endian. The layout lets a relay handle a frame by
touching fixed offsets only, never the TLVs:

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

OFF_CHECKSUM = 4
OFF_DOMAIN_SEQ = 8
OFF_COVERED = 16  # checksum covers [16, end of frame)
OFF_DOMAIN = 16
OFF_FLAGS = 18
OFF_PAYLOAD_LEN = 20
OFF_SOURCE_SEQ = 24
OFF_SOURCE_ID = 48

# The whole header, in wire order.
HEADER = struct.Struct("<HBBIQBBHIQQQI")
# The first 16 bytes: magic, version, reserved, checksum, domain_seq.
PREFIX = struct.Struct("<HBBIQ")
# The covered 36 header bytes: domain, reserved, flags, payload_len, source_seq, event, receive, source_id.
COVERED = struct.Struct("<BBHIQQQI")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")

assert HEADER.size == HEADER_SIZE and PREFIX.size + COVERED.size == HEADER_SIZE

_crc32 = zlib.crc32


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
    if buf[offset] != 0x41 or buf[offset + 1] != 0x50:
        raise FrameError(f"bad magic 0x{buf[offset] | (buf[offset + 1] << 8):04x} (expected 0x{MAGIC:04x})")
    if buf[offset + 2] != VERSION:
        raise FrameError(f"unsupported protocol version {buf[offset + 2]} (this build speaks {VERSION})")
    if buf[offset + 3] or buf[offset + 17]:
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
