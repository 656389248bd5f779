"""AlphaPulse wire protocol: sans-IO, packed TLV messages.

No trio, sockets, clocks or logging here: bytes in, messages out; messages in,
bytes out. See ``specs/protocol.md`` for the wire format.
"""

from . import execution, market, signals, system
from .errors import (
    ChecksumError,
    FieldRangeError,
    FrameError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    TLVError,
)
from .execution import *  # noqa: F403
from .framing import FrameDecoder, FrameViews, split_frames
from .header import HEADER_SIZE, MAX_PAYLOAD, VERSION, Domain
from .ids import PoolId, TokenId, Venue, VenueKind
from .market import *  # noqa: F403
from .message import Message, control_frame, decode, decode_frame, encode
from .signals import *  # noqa: F403
from .system import *  # noqa: F403
from .tlv import TLV, TLV_TYPES, Record, UnknownTLV, decode_tlvs

__all__ = [
    "ChecksumError",
    "Domain",
    "FieldRangeError",
    "FrameDecoder",
    "FrameViews",
    "FrameError",
    "HEADER_SIZE",
    "LocalProtocolError",
    "MAX_PAYLOAD",
    "Message",
    "PoolId",
    "ProtocolError",
    "Record",
    "RemoteProtocolError",
    "TLV",
    "TLVError",
    "TLV_TYPES",
    "TokenId",
    "UnknownTLV",
    "VERSION",
    "Venue",
    "VenueKind",
    "control_frame",
    "decode",
    "decode_frame",
    "decode_tlvs",
    "encode",
    "execution",
    "market",
    "signals",
    "split_frames",
    "system",
]
