"""System TLVs (types 100-119) and the trace context (120).

These travel in domain 4 messages on any relay's control channel (see
``specs/relay.md``); ``TraceContext`` may be attached to a message of any domain.
"""

from enum import IntEnum
from typing import Annotated

from .fields import blob, list_of, text, u8, u16, u32, u64, u128
from .tlv import TLV, Record


class Role(IntEnum):
    PRODUCER = 1
    CONSUMER = 2
    BOTH = 3


class Heartbeat(TLV):
    TYPE = 100
    epoch: u64
    head_seq: u64


class SubscribeMode(IntEnum):
    FROM_SEQ = 1  # deliver from_seq onwards
    FROM_NOW = 2  # deliver what arrives after the subscription
    FROM_OLDEST = 3  # everything retained


class TypeCode(Record):
    code: u8


class Subscribe(TLV):
    """Subscribe / resume. ``types`` empty means every type."""

    TYPE = 101
    mode: u8
    from_seq: u64
    types: Annotated[tuple[TypeCode, ...], list_of(TypeCode)]


class LatencyClass(IntEnum):
    """A consumer's latency class: the relay serves a new frame to its consumers in this order
    (specs/relay.md, "Fan-out order"). It never changes what a consumer is delivered, only when, within
    one fan-out, its send is made."""

    CRITICAL = 1  # on the trading path: served first (the strategy's market data, the executor's signals)
    NORMAL = 2  # the default, and what a consumer that sends no ConsumerClass gets
    BACKGROUND = 3  # bookkeeping and observers: served last (archiver, portfolio, dashboard, bridges)


class ConsumerClass(TLV):
    """Consumer to relay, in the message that carries its Subscribe: its ``LatencyClass``.

    A separate type rather than a field appended to Subscribe, which older writers would send without
    it (specs/protocol.md, "Versioning and compatibility"): absent means NORMAL. A value the relay does
    not know is served as NORMAL.
    """

    TYPE = 113
    latency: u8


class ResyncReason(IntEnum):
    TOO_OLD = 1  # requested sequence older than retention
    CUT_OFF = 2  # the consumer fell too far behind
    EPOCH_CHANGED = 3
    CORRUPT = 4  # the relay's journal copy of the range is damaged: requested..oldest_available-1 are lost


class Resync(TLV):
    """The requested sequence cannot be served; delivery restarts at ``oldest_available``."""

    TYPE = 105
    requested_seq: u64
    oldest_available: u64
    reason: u8


class StopScope(IntEnum):
    ALL = 0
    CHAIN = 1
    VENUE = 2
    STRATEGY = 3


class _ScopedStop(TLV, register=False):
    """What an EmergencyStop and the Resume that lifts it both say: which scope, which stop, why, who."""

    scope: u8
    scope_value: u64  # chain id / venue code / strategy id; 0 with scope ALL
    stop_id: u64
    reason: text
    sender: text


class EmergencyStop(_ScopedStop):
    TYPE = 106


class Resume(_ScopedStop):
    """``stop_id`` 0 resumes every stop in scope."""

    TYPE = 107


class Hello(TLV):
    """First message of every connection, client to relay."""

    TYPE = 108
    role: u8
    protocol_version: u16
    source_id: u32
    name: text


class Welcome(TLV):
    """Relay's answer to Hello."""

    TYPE = 109
    epoch: u64
    head_seq: u64
    oldest_seq: u64
    last_source_seq: u64  # highest persisted source_seq of this source_id (0 if none)
    domain: u8


class Ack(TLV):
    """Relay to producer: every source_seq <= this one is persisted in the journal."""

    TYPE = 110
    source_id: u32
    source_seq: u64


class Goodbye(TLV):
    """Either side, just before closing the connection, saying why."""

    TYPE = 111
    code: u16
    reason: text


class Stats(TLV):
    """Relay's answer to a stats request (a Stats record with empty json)."""

    TYPE = 112
    json: blob


class TraceContext(TLV):
    """W3C-trace-context-shaped ids, attachable to any message."""

    TYPE = 120
    trace_id: u128
    span_id: u64
    flags: u8
    parent_span_id: u64
    origin_ns: u64  # when the trace began (e.g. the log's receive time)
