"""Sans-IO NATS client protocol and the JetStream pieces the bridges need. No I/O, no clock.

Theory of operation
-------------------
The NATS client protocol is line-based text with length-prefixed payloads
(``INFO``/``MSG``/``HMSG``/``PING``/``PONG``/``+OK``/``-ERR`` from the server;
``CONNECT``/``PUB``/``HPUB``/``SUB``/``UNSUB``/``PING``/``PONG`` from the client).
``NatsParser.feed(bytes)`` accepts data split at any point and returns the
complete events; the ``encode_*`` functions return bytes to send. JetStream is
plain request/reply on ``$JS.API.*`` subjects with JSON bodies, acks and
flow-control being messages too, so everything JetStream-specific here is
about *meaning*: which message id a frame gets, what a publish acknowledgement
says, which stream sequence a delivered message has, and whether a push
consumer's deliveries have a gap.

Stream messages and sequence mapping (see specs/relay.md, "Bridging to NATS JetStream")
------------------------------------------------------------------------------------
One stream per relay domain. A stream message is a *batch*: one or more relay
frames, unchanged, back to back (frames are self-delimiting, so there is no
other framing; a message holding one frame is just that frame), with strictly
increasing domain sequences ``D`` from one relay epoch. The bridge-out publishes
every frame exactly once, in ``D`` order, so the stream sequence ``S`` counts
batches and the ``D`` each frame carries is the consumer-visible sequence, the
same on every host. ``BatchBuilder`` cuts the relay's frames into batches;
``PublishWindow`` assigns each batch its ``S`` and enforces contiguity with
JetStream's ``Nats-Expected-Last-Sequence`` guard; ``batch_span`` /
``batch_after`` read a batch back.

``StreamCursor`` is the read side's ``ConsumerCore`` analogue: it tracks the
stream position, drops duplicates, and turns a gap in the consumer sequence, or
an idle heartbeat that says more was delivered than we saw, into
``StreamGap`` (the shell recreates the consumer from ``position + 1``).
``BatchReader`` adds the domain level on top: the frames of each accepted batch
above the last ``D`` delivered.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from protocol.errors import FrameError
from protocol.framing import split_frames
from protocol.header import Domain, check_prefix, read_domain_seq

CRLF = b"\r\n"
HEADER_LINE = b"NATS/1.0"
MAX_CONTROL_LINE = 4096


class NatsProtocolError(Exception):
    """The server sent something this client cannot parse, or ``-ERR``."""


# ---------------------------------------------------------------------------------------- events


@dataclass(slots=True)
class Info:
    info: dict[str, Any]


@dataclass(slots=True)
class Msg:
    subject: str
    sid: int
    reply: str | None
    headers: bytes | None  # raw header block ("NATS/1.0 ...\r\nK: V\r\n\r\n") or None
    payload: bytes

    def status(self) -> tuple[int, str]:
        """``(status code, description)`` of a status message (0, "" for an ordinary one)."""
        if not self.headers:
            return 0, ""
        line = self.headers[: self.headers.find(CRLF)]
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return 0, ""
        return int(parts[1]), (parts[2].decode() if len(parts) > 2 else "")

    def header(self, name: str) -> str | None:
        return parse_headers(self.headers).get(name) if self.headers else None


@dataclass(slots=True)
class Ping:
    pass


@dataclass(slots=True)
class Pong:
    pass


@dataclass(slots=True)
class Ok:
    pass


@dataclass(slots=True)
class Err:
    message: str


Event = Info | Msg | Ping | Pong | Ok | Err
_PING, _PONG, _OK = Ping(), Pong(), Ok()


class NatsParser:
    """Streaming parser of server-to-client protocol. ``feed(data) -> [events]``."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""  # the unparsed tail of the last feed

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        # one immutable buffer per call: slices of it are the messages' bytes (one copy each)
        buf = self._buf + data if self._buf else bytes(data)
        out: list[Event] = []
        pos = 0
        n = len(buf)
        find = buf.find
        append = out.append
        while pos < n:
            eol = find(CRLF, pos)
            if eol < 0:
                if n - pos > MAX_CONTROL_LINE:
                    raise NatsProtocolError("control line too long")
                break
            op = buf[pos : pos + 4]
            if op == b"HMSG" or op == b"MSG ":
                hmsg = op == b"HMSG"
                args = buf[pos + (5 if hmsg else 4) : eol].split()
                try:
                    total = int(args[-1])
                    hlen = int(args[-2]) if hmsg else 0
                    nargs = len(args)
                    reply = args[2].decode() if nargs == (5 if hmsg else 4) else None
                    sid = int(args[1])
                except (IndexError, ValueError) as exc:
                    raise NatsProtocolError(f"bad message line {buf[pos:eol]!r}") from exc
                start = eol + 2
                end = start + total
                if end + 2 > n:
                    break  # the payload is not complete yet
                if buf[end : end + 2] != CRLF:
                    raise NatsProtocolError("message payload not followed by CRLF")
                if hlen:
                    append(Msg(args[0].decode(), sid, reply, buf[start : start + hlen], buf[start + hlen : end]))
                else:
                    append(Msg(args[0].decode(), sid, reply, None, buf[start:end]))
                pos = end + 2
                continue
            line = buf[pos:eol]
            pos = eol + 2
            if line == b"PING":
                append(_PING)
            elif line == b"PONG":
                append(_PONG)
            elif line == b"+OK":
                append(_OK)
            elif line.startswith(b"INFO "):
                append(Info(json.loads(line[5:])))
            elif line.startswith(b"-ERR"):
                append(Err(line[4:].strip().strip(b"'").decode(errors="replace")))
            else:
                raise NatsProtocolError(f"unknown protocol line {line[:80]!r}")
        self._buf = buf[pos:] if pos < n else b""
        return out


# ---------------------------------------------------------------------------------------- encoding


def encode_connect(options: dict[str, Any]) -> bytes:
    return b"CONNECT " + json.dumps(options, separators=(",", ":")).encode() + CRLF


def encode_headers(headers: dict[str, str]) -> bytes:
    return HEADER_LINE + CRLF + b"".join(f"{k}: {v}".encode() + CRLF for k, v in headers.items()) + CRLF


def encode_pub(subject: str, payload: bytes, reply: str | None = None, headers: bytes | None = None) -> bytes:
    r = f" {reply}" if reply else ""
    if headers is None:
        return f"PUB {subject}{r} {len(payload)}\r\n".encode() + payload + CRLF
    h = len(headers)
    return f"HPUB {subject}{r} {h} {h + len(payload)}\r\n".encode() + headers + payload + CRLF


def encode_sub(subject: str, sid: int) -> bytes:
    return f"SUB {subject} {sid}\r\n".encode()


def encode_unsub(sid: int) -> bytes:
    return f"UNSUB {sid}\r\n".encode()


PING = b"PING\r\n"
PONG = b"PONG\r\n"


def parse_headers(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in raw.split(CRLF)[1:]:
        if not line:
            continue
        k, _, v = line.partition(b":")
        out[k.strip().decode()] = v.strip().decode()
    return out


# ---------------------------------------------------------------------------------------- JetStream names


def stream_name(domain: Domain) -> str:
    """The JetStream stream that carries one relay domain (``AP_MARKET_DATA``, ...)."""
    return f"AP_{Domain(domain).name}"


def stream_subject(domain: Domain) -> str:
    return f"alphapulse.{Domain(domain).name.lower()}"


def msg_id(domain: Domain | int, epoch: int, first: int, last: int | None = None) -> str:
    """``Nats-Msg-Id`` of a batch: (domain, relay epoch, first..last domain sequence).

    ``<domain>:<epoch>:<first>-<last>``, or ``<domain>:<epoch>:<D>`` for a batch of one frame.
    A resend of the same batch (a bridge that crashed before it saw the ack) carries the same
    id and JetStream drops it within its duplicate window; a relay that lost an un-fsynced tail
    in a power cut and reissued sequence numbers under a new epoch gets new ids for what are
    different messages. (A resend cut differently has another id; the expected-last-sequence
    guard is what refuses it.)
    """
    if last is None or last == first:
        return f"{int(domain)}:{epoch}:{first}"
    return f"{int(domain)}:{epoch}:{first}-{last}"


def publish_headers(domain: Domain | int, epoch: int, first: int, expected_last: int | None,
                    last: int | None = None) -> bytes:
    """The header block of one batch publish: its message id and the expected last stream sequence."""
    h = f"NATS/1.0\r\nNats-Msg-Id: {msg_id(domain, epoch, first, last)}\r\n"
    if expected_last is not None:
        h += f"Nats-Expected-Last-Sequence: {expected_last}\r\n"
    return (h + "\r\n").encode()


def frame_domain_seq(frame: bytes | memoryview) -> int:
    return read_domain_seq(frame)


# ---------------------------------------------------------------------------------------- batches


def _offsets(payload: bytes | memoryview) -> list[int]:
    """Frame start offsets of a batch plus its end; ``FrameError`` unless it is whole frames."""
    offs, end = split_frames(payload)
    if end != len(payload) or len(offs) < 2:
        raise FrameError(f"stream message of {len(payload)} bytes is not whole relay frames")
    return offs.tolist()


def batch_span(payload: bytes | memoryview) -> tuple[int, int]:
    """``(first D, last D)`` of a stream message (one frame or a batch)."""
    first, last, _, _ = batch_after(payload, -1)
    return first, last


def batch_after(payload: bytes | memoryview, position: int) -> tuple[int, int, int, bytes | memoryview]:
    """The frames of a stream message with ``D > position``: ``(first D, last D, frames, bytes)``,
    or ``(0, 0, 0, b"")`` when it holds none (a batch partly delivered before a reconnect starts
    part-way). The common cases, one frame or a batch of equal-size frames with consecutive
    ``D`` entirely above ``position``, are checked without a walk; ``FrameError`` when the
    message is not whole relay frames."""
    size = check_prefix(payload, 0)
    first = read_domain_seq(payload)
    n = len(payload)
    if first > position:
        if size == n:
            return first, first, 1, payload
        if n % size == 0 and check_prefix(payload, n - size) == size:
            last = read_domain_seq(payload, n - size)
            if last - first == n // size - 1:
                return first, last, n // size, payload
    offs = _offsets(payload)
    last = read_domain_seq(payload, offs[-2])
    for i in range(len(offs) - 1):
        d = read_domain_seq(payload, offs[i])
        if d > position:
            return d, last, len(offs) - 1 - i, memoryview(payload)[offs[i]:] if i else payload
    return 0, 0, 0, b""


class BatchBuilder:
    """Bridge-out's frames read from the relay and not yet published, cut into batches.

    ``add(epoch, first, data, count)`` takes ``count`` frames with consecutive domain sequences
    ``first ..`` back to back in ``data`` (a relay ``FrameBatch``); frames at or below the last
    one already added (a relay that lost an un-fsynced tail reissues sequences the stream has)
    are skipped and counted. ``cut()`` returns the next batch: ``(epoch, first D, last D,
    payload)``, as many whole frames from the front as fit in ``max_bytes`` (at least one),
    never mixing relay epochs (the epoch is part of the message id).
    """

    def __init__(self, max_bytes: int, last_added: int = 0) -> None:
        self.max_bytes = max_bytes
        self.last_added = last_added
        self.pending_bytes = 0
        self.reissued_skipped = 0
        self._pieces: deque[tuple[int, int, int, memoryview]] = deque()  # (epoch, first D, last D, frames)

    def __len__(self) -> int:
        return len(self._pieces)

    def add(self, epoch: int, first: int, data: bytes | memoryview, count: int) -> None:
        view = memoryview(data)
        last = first + count - 1
        if last <= self.last_added:
            self.reissued_skipped += count
            return
        if first <= self.last_added:
            skip = self.last_added - first + 1
            offs = _offsets(view)
            view = view[offs[skip]:]
            self.reissued_skipped += skip
            first += skip
        self.last_added = last
        if len(view) <= self.max_bytes:
            self._pieces.append((epoch, first, last, view))
            self.pending_bytes += len(view)
            return
        # bigger than one batch: split at frame boundaries
        offs = _offsets(view)
        n = len(offs) - 1
        a = 0  # the first frame of the piece being built
        for i in range(1, n + 1):
            if i == n or offs[i + 1] - offs[a] > self.max_bytes:
                self._pieces.append((epoch, first + a, first + i - 1, view[offs[a]:offs[i]]))
                a = i
        self.pending_bytes += len(view)

    def cut(self) -> tuple[int, int, int, bytes]:
        pieces = self._pieces
        epoch, first, last, view = pieces.popleft()
        parts = [view]
        size = len(view)
        while pieces and pieces[0][0] == epoch and size + len(pieces[0][3]) <= self.max_bytes:
            _, _, last, view = pieces.popleft()
            parts.append(view)
            size += len(view)
        self.pending_bytes -= size
        return epoch, first, last, b"".join(parts) if len(parts) > 1 else bytes(parts[0])

    def clear(self) -> None:
        self._pieces.clear()
        self.pending_bytes = 0


def ack_stream_seq(reply: str) -> tuple[int, int, int]:
    """``(stream sequence, consumer sequence, pending)`` from a push delivery's ``$JS.ACK`` reply
    subject (``pending``: messages in the stream after this one, for this consumer).

    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`` (9 tokens), or the
    newer ``$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>[.<token>]``.
    """
    t = reply.split(".")
    if len(t) == 9:
        return int(t[5]), int(t[6]), int(t[8])
    if len(t) >= 11 and t[0] == "$JS" and t[1] == "ACK":
        return int(t[7]), int(t[8]), int(t[10])
    raise NatsProtocolError(f"not a JetStream delivery subject: {reply!r}")


class JetStreamError(Exception):
    """A JetStream API error (``code``, ``err_code``, ``description``)."""

    def __init__(self, code: int, err_code: int, description: str) -> None:
        super().__init__(f"JetStream error {code}/{err_code}: {description}")
        self.code = code
        self.err_code = err_code
        self.description = description


ERR_STREAM_NOT_FOUND = 10059
ERR_WRONG_LAST_SEQUENCE = 10071
ERR_NO_MESSAGE = 10037


def api_response(payload: bytes) -> dict[str, Any]:
    """A JetStream API or publish response; raises ``JetStreamError`` for an error answer."""
    doc: dict[str, Any] = json.loads(payload)
    err = doc.get("error")
    if err:
        raise JetStreamError(int(err.get("code", 0)), int(err.get("err_code", 0)), str(err.get("description", "")))
    return doc


# ---------------------------------------------------------------------------------------- publishing


@dataclass
class PublishCounters:
    published: int = 0  # publish requests (batches) sent, including resends
    acked: int = 0  # acknowledged as new stream messages
    duplicates: int = 0  # acknowledged as duplicates of a message already in the stream
    failures: int = 0  # windows abandoned (error answer, timeout, lost connection)
    frames: int = 0  # relay frames in the acknowledged batches

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


_ACK_SEQ = re.compile(rb'"seq":\s*(\d+)')


class PublishRejected(Exception):
    """JetStream refused a publish of the window; the shell must resynchronise from the stream."""


@dataclass
class PublishWindow:
    """Bridge-out's in-flight publishes: stream sequence ``S`` assigned to the batch of frames
    ``first..last`` (domain sequences), in order.

    ``next_stream_seq`` is the stream sequence the next batch will get (the stream's last + 1
    when the window was opened): every publish carries ``Nats-Expected-Last-Sequence:
    S - 1``, so JetStream stores it only directly after its predecessor, and a second writer on
    the same stream (or a stale resend) makes the rest of the window fail instead of
    interleaving. ``position`` is the domain sequence of the last frame JetStream acknowledged
    (the last frame of the stream's last message): the bridge advances only on acks.
    """

    domain: Domain
    next_stream_seq: int
    position: int  # domain seq of the last frame acknowledged (the stream's last frame)
    stream_position: int = 0  # the stream sequence of its batch
    last_added: int = 0  # domain seq of the last frame handed to ``add`` (position when opened)
    inflight: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # token -> (first D, last D, S)
    next_token: int = 1
    counters: PublishCounters = field(default_factory=PublishCounters)

    def __post_init__(self) -> None:
        self.stream_position = self.next_stream_seq - 1
        self.last_added = self.position

    def add(self, first: int, last: int | None = None) -> tuple[int, int]:
        """Register the publish of the batch ``first..last`` (one frame when ``last`` is None):
        returns ``(reply token, expected last S)``."""
        s = self.next_stream_seq
        self.next_stream_seq = s + 1
        token = self.next_token
        self.next_token += 1
        if last is None:
            last = first
        self.inflight[token] = (first, last, s)
        self.last_added = last
        self.counters.published += 1
        return token, s - 1

    def ack(self, token: int, payload: bytes) -> int:
        """Apply one publish acknowledgement; returns the new ``position``.

        Acks of one connection arrive in publish order; a success must name the stream sequence
        we assigned (else the stream holds something we did not write: another writer).
        """
        entry = self.inflight.pop(token, None)
        if entry is None:
            return self.position  # an answer to a window already abandoned
        first, d, s = entry
        if payload.startswith(b'{"stream":') and b'"error"' not in payload and b"duplicate" not in payload:
            # the common answer, {"stream":"AP_...", "seq":N}, without a JSON parse per message
            m = _ACK_SEQ.search(payload)
            if m is not None and int(m.group(1)) == s:
                self.counters.acked += 1
                self.counters.frames += d - first + 1
                self.position = d
                self.stream_position = s
                return d
        what = f"frames {first}..{d}" if d != first else f"frame {d}"
        try:
            doc = api_response(payload)
        except JetStreamError as exc:
            self.counters.failures += 1
            raise PublishRejected(f"{what} (stream seq {s}): {exc.description}") from exc
        except ValueError as exc:
            raise PublishRejected(f"{what}: unreadable acknowledgement {payload[:80]!r}") from exc
        got = int(doc.get("seq", 0))
        if doc.get("duplicate"):
            self.counters.duplicates += 1
        else:
            self.counters.acked += 1
        if got != s:
            self.counters.failures += 1
            raise PublishRejected(f"{what} stored at stream seq {got}, expected {s}")
        self.counters.frames += d - first + 1
        self.position = d
        self.stream_position = s
        return d

    @property
    def pending(self) -> int:
        return len(self.inflight)

    def abandon(self) -> None:
        """Forget the in-flight publishes (the shell reconnects and asks the stream where it is)."""
        if self.inflight:
            self.counters.failures += 1
        self.inflight.clear()


# ---------------------------------------------------------------------------------------- reading


class StreamGap(Exception):
    """Deliveries on this consumer skipped something: recreate it from ``position + 1``."""


@dataclass
class StreamCounters:
    received: int = 0
    delivered: int = 0
    duplicates: int = 0
    gaps: int = 0
    resets: int = 0  # consumers (re)created
    lost: int = 0  # stream sequences the stream no longer had (retention)
    lag: int = 0  # messages in the stream after the last one received (JetStream's "pending")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class StreamCursor:
    """Read side: exactly-once, in-order stream sequences across consumer resets.

    ``position`` is the last stream sequence delivered. Each consumer (re)creation starts a
    new consumer sequence at 1; within one consumer every delivery must be exactly the next
    consumer sequence, and its stream sequence above ``position`` (below is a duplicate, dropped).
    The first delivery of a new consumer may start later than ``position + 1`` only when the
    stream no longer has those messages (``first_seq`` from the stream info): counted as lost.
    """

    position: int = 0
    consumer_seq: int = 0
    first_available: int = 1
    counters: StreamCounters = field(default_factory=StreamCounters)

    def reset(self, first_available: int) -> int:
        """A new consumer: returns the stream sequence to start it from."""
        self.consumer_seq = 0
        self.first_available = first_available
        self.counters.resets += 1
        return self.position + 1

    def accept(self, stream_seq: int, consumer_seq: int, pending: int = 0) -> bool:
        """One delivery. True: hand it to the application; False: a duplicate, drop it."""
        self.counters.received += 1
        self.counters.lag = pending
        if consumer_seq != self.consumer_seq + 1:
            self.counters.gaps += 1
            raise StreamGap(f"consumer sequence {consumer_seq} after {self.consumer_seq}")
        self.consumer_seq = consumer_seq
        if stream_seq <= self.position:
            self.counters.duplicates += 1
            return False
        if stream_seq != self.position + 1:
            if self.position + 1 >= self.first_available or consumer_seq != 1:
                self.counters.gaps += 1
                raise StreamGap(f"stream sequence {stream_seq} after {self.position}")
            self.counters.lost += stream_seq - self.position - 1
        self.position = stream_seq
        self.counters.delivered += 1
        return True

    def heartbeat(self, last_consumer_seq: int) -> None:
        """An idle heartbeat: the consumer says it delivered up to ``last_consumer_seq``."""
        if last_consumer_seq > self.consumer_seq:
            self.counters.gaps += 1
            raise StreamGap(f"heartbeat says consumer sequence {last_consumer_seq}, we saw {self.consumer_seq}")


@dataclass
class BatchCounters:
    """Frames, on top of ``StreamCounters`` (which count stream messages)."""

    delivered: int = 0  # frames handed to the application
    duplicates: int = 0  # frames dropped: at or below the last domain sequence delivered
    lost: int = 0  # domain sequences skipped between delivered frames (retention, or a bridge that
    #               lost them on the source host) and before the first one after ``from_seq``
    undecodable: int = 0  # stream messages that are not whole relay frames: counted and skipped


class BatchReader:
    """Read side of a domain's stream: exactly-once stream messages (``StreamCursor``), then the
    frames of each above the last domain sequence delivered (``position``).

    ``accept(stream seq, consumer seq, pending, payload)`` returns ``(first D, last D, frames,
    bytes)`` to hand to the application, or None (a duplicate, or nothing new in it); it raises
    ``StreamGap`` like ``StreamCursor.accept``. ``position`` is 0 until known (a consumer
    started from the oldest message of an empty stream).
    """

    def __init__(self, position: int = 0) -> None:
        self.cursor = StreamCursor()
        self.position = position
        self.counters = BatchCounters()

    def accept(self, stream_seq: int, consumer_seq: int, pending: int,
               payload: bytes | memoryview) -> tuple[int, int, int, bytes | memoryview] | None:
        if not self.cursor.accept(stream_seq, consumer_seq, pending):
            return None
        try:
            first, last, count, data = batch_after(payload, self.position)
        except FrameError:
            self.counters.undecodable += 1
            raise
        c = self.counters
        if not count:
            try:
                c.duplicates += len(_offsets(payload)) - 1
            except FrameError:
                pass
            return None
        if data is not payload:
            c.duplicates += len(_offsets(payload)) - 1 - count
        if self.position and first > self.position + 1:
            c.lost += first - self.position - 1
        self.position = last
        c.delivered += count
        return first, last, count, data

    def as_dict(self) -> dict[str, int]:
        d = self.cursor.counters.as_dict()
        d["messages_lost"] = d.pop("lost")
        d["messages_duplicated"] = d.pop("duplicates")
        del d["delivered"]  # messages; the frames' count follows
        d.update(asdict(self.counters))
        return d


__all__ = [
    "BatchBuilder", "BatchCounters", "BatchReader", "Err", "Event", "Info", "JetStreamError", "Msg", "NatsParser", "NatsProtocolError", "Ok", "Ping", "Pong",
    "PublishCounters", "PublishRejected", "PublishWindow", "StreamCounters", "StreamCursor", "StreamGap",
    "ack_stream_seq", "api_response", "batch_after", "batch_span", "encode_connect", "encode_headers", "encode_pub", "encode_sub",
    "encode_unsub", "frame_domain_seq", "msg_id", "parse_headers", "publish_headers", "stream_name",
    "stream_subject",
]
