"""Exceptions raised by the protocol layer.

Every malformed input raises ``ProtocolError`` or a subclass -- never another
exception type, never a hang, never an unbounded allocation::

    ProtocolError                  (base; catch this at I/O boundaries)
    +-- LocalProtocolError         we were asked to encode something unrepresentable
    |   +-- FieldRangeError        an integer outside its wire width, a wrong-length address
    +-- RemoteProtocolError        bytes we received are malformed
        +-- FrameError             bad magic, unsupported version, oversize payload, truncation
        +-- ChecksumError          header+payload checksum mismatch
        +-- TLVError               a TLV record is truncated or its body is inconsistent

The split mirrors h11: a *local* error is a bug in the caller; a *remote* error
means the peer (or the disk) handed us garbage and the connection/segment should
be dropped with a logged reason.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of every error raised by ``protocol``."""


class LocalProtocolError(ProtocolError):
    """The caller asked to encode something the wire format cannot represent."""


class FieldRangeError(LocalProtocolError):
    """A field value does not fit its declared wire width (never truncated or wrapped)."""


class RemoteProtocolError(ProtocolError):
    """Received bytes are malformed."""


class FrameError(RemoteProtocolError):
    """The fixed header is invalid (magic, version, length) or the frame is truncated."""


class ChecksumError(RemoteProtocolError):
    """The checksum over header and payload does not match."""


class TLVError(RemoteProtocolError):
    """A TLV record is truncated or its body does not parse."""
