"""The trio shell around the sans-IO client cores: sockets, retries, timers.

Everything protocol-shaped is in ``core.py``; this module only moves bytes and
keeps time. Exceptions from trio and the OS never leak out of an iteration or a
publish: a broken connection is dropped, logged, and re-established with
exponential backoff, and the cores resume where they were.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, Unpack

import trio

from protocol.errors import ProtocolError
from protocol.header import VERSION, Domain, read_domain_seq
from protocol.message import Message, control_frame
from protocol.system import Goodbye, Hello, LatencyClass, Role, Stats
from protocol.tlv import TLV
from runtime.errors import reraise_unwrapped
from runtime.paths import check_socket_dir, check_socket_path, parse_domain, socket_path

from .core import ConsumerCore, FrameBatch, ProducerCore, StreamBroken

log = logging.getLogger("relays.client")

RECV_SIZE = 256 * 1024
YIELD_EVERY = 64
YIELD_AFTER = 0.0005  # seconds of reads that found data waiting before the consumer yields to other tasks
DIRECT_GAP = 50e-6  # seconds: at most one direct send per producer per this interval
# what a dropped connection looks like from here; anything else is a bug and propagates
_CONNECTION_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError, StreamBroken)


class ClientObserver(Protocol):
    """What a relay client accepts as ``metrics=``: told once, at construction, about the client.

    The observer reads the client's own counters (``client.core.counters``) whenever it likes
    (a metrics scrape); the message path pays nothing. ``runtime.metrics.ProcessMetrics`` is one.
    """

    def attach(self, client: Any) -> None: ...


class RelayUnavailable(Exception):
    """The relay could not be reached within ``connect_timeout``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Backoff:
    """Reconnect delays: ``initial * factor**n`` capped at ``maximum``, with +-``jitter`` fraction."""

    initial: float = 0.02
    factor: float = 2.0
    maximum: float = 1.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        d = min(self.maximum, self.initial * self.factor ** min(attempt, 30))
        return d * (1 + self.jitter * (2 * random.random() - 1))


def _resolve(domain: str | int | Domain, path: str | os.PathLike[str] | None) -> tuple[Domain, str]:
    dom = parse_domain(domain)
    return dom, check_socket_path(path if path is not None else socket_path(dom))


async def _open(path: str, backoff: Backoff, deadline: float, what: str) -> trio.SocketStream:
    attempt = 0
    while True:
        check_socket_dir(path)  # a directory someone else owns may hold a planted socket: never retried
        try:
            return await trio.open_unix_socket(path)
        except OSError as exc:
            if trio.current_time() >= deadline:
                raise RelayUnavailable(f"{what}: cannot connect to {path}: {exc}") from None
            if attempt == 0 or attempt % 20 == 0:
                log.info("%s: relay at %s unavailable (%s); retrying", what, path, exc)
            await trio.sleep(backoff.delay(attempt))
            attempt += 1


class SessionOptions(TypedDict, total=False):
    """How either client keeps its connection to the relay (keywords of both constructors)."""

    backoff: Backoff  # reconnect delays
    heartbeat_interval: float  # seconds of sending nothing before a Heartbeat (0.25)
    dead_after: float  # intervals of silence before the relay counts as dead (8)
    connect_timeout: float | None  # give up (RelayUnavailable) if not connected within this; None: never
    metrics: ClientObserver | None  # told about the client once, reads its counters when it likes


class _Session:
    """What ``RelayConsumer`` and ``RelayProducer`` share: which relay, and the session options."""

    domain: Domain
    socket_path: str

    def _open_session(
        self,
        domain: Domain,
        socket_path: str,
        *,
        backoff: Backoff = Backoff(),
        heartbeat_interval: float = 0.25,
        dead_after: float = 8.0,
        connect_timeout: float | None = None,
        metrics: ClientObserver | None = None,
    ) -> None:
        """Call last in ``__init__``: the observer sees a fully built client."""
        self.domain, self.socket_path = domain, socket_path
        self.backoff = backoff
        self.heartbeat_interval = heartbeat_interval
        self.dead_after = dead_after
        self.connect_timeout = connect_timeout
        if metrics is not None:
            metrics.attach(self)


class RelayConsumer(_Session):
    """Consume one relay domain: in order, exactly once, across reconnects and relay restarts.

    Use ``RelayConsumer.connect(...)``; see the package docstring.
    """

    def __init__(
        self,
        domain: str | int | Domain,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        from_seq: int | None = None,
        types: Iterable[int] | None = None,
        name: str = "",
        raw: bool = False,
        latency: str | LatencyClass = LatencyClass.NORMAL,
        **session: Unpack[SessionOptions],
    ) -> None:
        dom, path = _resolve(domain, socket_path)
        self.core = ConsumerCore(dom, from_seq=from_seq, types=types, name=name or f"consumer-{os.getpid()}", raw=raw,
                                 latency=latency)
        self._stream: trio.SocketStream | None = None
        self._sock: socket.socket | None = None  # non-blocking duplicate of the stream's socket, for reads
        self._wait_since: float | None = None  # when the reader started waiting for data (None: not waiting)
        self._last_pass = 0.0  # time.perf_counter() of this reader's last scheduler pass
        self._speculate = True  # try a recv before waiting for the socket (see _fill)
        self._silent = False
        self._send_lock = trio.Lock()
        self._ready: deque[FrameBatch] = deque()  # raw: received, not handed out yet
        self._items: deque[Any] = deque()  # frames or Messages split/decoded, not handed out yet
        self._last_send = 0.0
        self.last_seq = 0  # domain_seq of the last item handed to the application
        self._closed = False
        # consecutive connections that broke without delivering anything: each later
        # retry after the first waits backoff.delay(n - 2) first, so a connection that keeps breaking at
        # the same place (a relay that keeps refusing us, a stream that keeps failing)
        # costs a few attempts a second, not tens of thousands
        self._fruitless = 0
        self._connected_at_position = 0
        self._open_session(dom, path, **session)

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, domain: str | int | Domain, socket_path: str | os.PathLike[str] | None = None, **kw: Any
    ) -> AsyncIterator[RelayConsumer]:
        self = cls(domain, socket_path, **kw)
        with reraise_unwrapped():
            async with trio.open_nursery() as nursery:
                await self._reconnect(first=True)
                nursery.start_soon(self._heartbeats)
                try:
                    yield self
                finally:
                    # shielded: an exception from the body must come out as itself, not be
                    # replaced by the Cancelled our own cancel_scope would raise here
                    with trio.CancelScope(shield=True):
                        await self._drop(goodbye=True)
                    self._closed = True
                    nursery.cancel_scope.cancel()

    @property
    def counters(self) -> dict[str, int]:
        return self.core.counters.as_dict()

    @property
    def epoch(self) -> int:
        return self.core.epoch

    @property
    def connected(self) -> bool:
        """A session with the relay is open now (False while reconnecting)."""
        return self._stream is not None

    async def subscribed(self) -> None:
        """Return once the relay has answered this session's Hello + Subscribe (its Welcome).

        ``connect`` returns as soon as the Subscribe is *sent*; the relay places a from-now
        cursor at its head when it *reads* it. A process that announces itself ready in between
        can miss a message published right after (the executor did, under load). Anything read
        while waiting is kept for iteration."""
        while not self.core.welcomed:
            await self._fill()

    # ---- iteration ----

    def __aiter__(self) -> RelayConsumer:
        return self

    async def __anext__(self) -> Any:
        items = self._items
        while not items:
            if self._ready:
                items.extend(self.core.items([self._ready.popleft()]))
            else:
                await self._fill()
        item = items.popleft()
        self.last_seq = item.domain_seq if type(item) is Message else read_domain_seq(item)
        return item

    @property
    def buffered(self) -> int:
        """How many items this consumer has already received and not handed out yet: the next
        ``buffered`` iterations (or :meth:`next_nowait` calls) return without reading the socket or
        yielding. Data still in the kernel's socket buffer is not counted: this never reads.
        Raw frame batches still waiting are decoded (filtered) here, so the count is exact -- the
        work ``__anext__`` would do anyway. For per-item iteration (not ``frame_batches``)."""
        if self._ready:
            self._items.extend(self.core.items(list(self._ready)))
            self._ready.clear()
        return len(self._items)

    def next_nowait(self) -> Any:
        """The next item already received, without waiting or yielding (as an iteration would hand it
        out); ``trio.WouldBlock`` if none is buffered (see :attr:`buffered`). A strategy uses it to apply
        the messages that arrived together before deciding, never waiting for one that has not."""
        if not self.buffered:
            raise trio.WouldBlock
        item = self._items.popleft()
        self.last_seq = item.domain_seq if type(item) is Message else read_domain_seq(item)
        return item

    async def batches(self) -> AsyncIterator[list[Any]]:
        """Everything available at once (one list per socket read): the cheap way to go fast."""
        while True:
            while not self._items and not self._ready:
                await self._fill()
            items = list(self._items)
            self._items.clear()
            if self._ready:
                items.extend(self.core.items(list(self._ready)))
                self._ready.clear()
            if not items:
                continue
            last = items[-1]
            self.last_seq = last.domain_seq if type(last) is Message else read_domain_seq(last)
            yield items

    async def frame_batches(self) -> AsyncIterator[FrameBatch]:
        """The fastest form: ``FrameBatch``es (runs of consecutive frames sharing one buffer,
        headers and sequence contiguity already checked), no per-frame objects. Raw only."""
        if not self.core.raw:
            raise ValueError("frame_batches() needs a raw consumer (raw=True)")
        while True:
            while not self._ready:
                if self._items:
                    raise RuntimeError("frame_batches() cannot follow per-message iteration mid-batch")
                await self._fill()
            b = self._ready.popleft()
            self.last_seq = b.last_seq
            yield b

    async def _fill(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("consumer is closed")
        if self._stream is None:
            await self._reconnect()
        stream = self._stream
        assert stream is not None
        core = self.core
        sock = self._sock
        try:
            data = b""
            if sock is None:
                with trio.move_on_after(self.heartbeat_interval * self.dead_after) as cs:
                    data = await stream.receive_some(RECV_SIZE)
                if cs.cancelled_caught:
                    raise StreamBroken(f"relay silent for {self.heartbeat_interval * self.dead_after:.1f} s")
            else:
                # Straight on the non-blocking socket. One recv per wake-up: after a short read that
                # had to wait (an idle relay) wait first, since a recv now would almost always
                # fail; after a read that found data waiting or filled the buffer (busy), try
                # first and wait only when the socket is empty. The dead-peer timer lives in the
                # heartbeat task (no cancel scope per read), which wakes a wait that has lasted
                # too long through notify_closing.
                got = None
                if self._speculate:
                    try:
                        got = sock.recv(RECV_SIZE)
                    except BlockingIOError:
                        pass
                if got is None:
                    self._wait_since = trio.current_time()
                    while True:
                        try:
                            await trio.lowlevel.wait_readable(sock)
                        except trio.ClosedResourceError:
                            if self._silent:
                                raise StreamBroken(
                                    f"relay silent for {self.heartbeat_interval * self.dead_after:.1f} s"
                                ) from None
                            raise
                        finally:
                            self._wait_since = None
                        try:
                            got = sock.recv(RECV_SIZE)
                            break
                        except BlockingIOError:
                            self._wait_since = trio.current_time()
                    self._last_pass = time.perf_counter()  # the wait was a scheduler pass
                    self._speculate = len(got) == RECV_SIZE
                else:
                    # data was waiting: still let the other tasks run, once per YIELD_AFTER of such reads
                    # (a scheduler pass after every read costs as much as the read)
                    self._speculate = True
                    now = time.perf_counter()
                    if now - self._last_pass >= YIELD_AFTER:
                        await trio.lowlevel.checkpoint()
                        self._last_pass = now
                data = got
            if not data:
                raise StreamBroken("relay closed the connection")
            batches = core.receive_frames(data)
            if batches:
                if core.raw:
                    self._ready.extend(batches)
                else:  # decode now: a frame that fails to decode is counted and skipped
                    self._items.extend(core.items(batches))
                    if core.undecodable:
                        self._report_undecodable()
            if core.broken is not None:
                raise core.broken
        except _CONNECTION_ERRORS as exc:
            log.info("%s: connection to %s dropped: %s", core.name, self.socket_path, exc)
            await self._drop()
            core.lost_connection()
            if core.position > self._connected_at_position:
                self._fruitless = 0
            else:
                self._fruitless += 1

    def _report_undecodable(self) -> None:
        core = self.core
        for seq, reason in core.undecodable:
            log.warning("%s: skipped domain_seq %d of %s: it does not decode (%s); %d such frames so far",
                        core.name, seq, self.domain.name.lower(), reason, core.counters.undecodable)
        core.undecodable.clear()

    async def _reconnect(self, first: bool = False) -> None:
        deadline = math.inf if self.connect_timeout is None else trio.current_time() + self.connect_timeout
        attempt = 0
        if self._fruitless > 1:  # the first retry is immediate (a relay restart), then back off
            await trio.sleep(self.backoff.delay(self._fruitless - 2))
        self._connected_at_position = self.core.position
        while True:
            stream = await _open(self.socket_path, self.backoff, deadline, self.core.name)
            try:
                async with self._send_lock:
                    await stream.send_all(self.core.start())
                    self._last_send = trio.current_time()
                self._stream = stream
                tsock = getattr(stream, "socket", None)
                if tsock is not None:
                    self._sock = socket.socket(tsock.family, tsock.type, fileno=os.dup(tsock.fileno()))
                    self._sock.setblocking(False)
                self._silent = False
                self._wait_since = None
                self._speculate = True
                return
            except _CONNECTION_ERRORS as exc:
                log.info("%s: handshake failed: %s", self.core.name, exc)
                await stream.aclose()
            await trio.sleep(self.backoff.delay(attempt))
            attempt += 1

    async def _drop(self, goodbye: bool = False) -> None:
        stream, self._stream = self._stream, None
        sock, self._sock = self._sock, None
        if sock is not None:
            trio.lowlevel.notify_closing(sock)
            sock.close()
        if stream is None:
            return
        if goodbye:
            with trio.move_on_after(0.2):
                try:
                    async with self._send_lock:
                        await stream.send_all(control_frame(Goodbye(code=0, reason="closing")))
                except _CONNECTION_ERRORS:
                    pass  # closing anyway
        await stream.aclose()

    async def _heartbeats(self) -> None:
        while True:
            await trio.sleep_until(self._last_send + self.heartbeat_interval)
            since = self._wait_since
            if (
                since is not None
                and self._sock is not None
                and trio.current_time() - since >= self.heartbeat_interval * self.dead_after
            ):
                # the reader has been waiting for the relay too long: wake it with an error
                self._silent = True
                trio.lowlevel.notify_closing(self._sock)
            stream = self._stream
            if stream is None or trio.current_time() < self._last_send + self.heartbeat_interval:
                if stream is None:
                    self._last_send = trio.current_time()
                continue
            try:
                async with self._send_lock:
                    await stream.send_all(self.core.heartbeat())
            except _CONNECTION_ERRORS:
                pass  # the receiving side notices and reconnects
            self._last_send = trio.current_time()


class RelayProducer(_Session):
    """Publish into one relay domain through an outbox that survives reconnects.

    Use ``RelayProducer.connect(...)``; see the package docstring.
    """

    def __init__(
        self,
        domain: str | int | Domain,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        source_id: int,
        name: str = "",
        max_unacked_bytes: int = 64 << 20,
        **session: Unpack[SessionOptions],
    ) -> None:
        dom, path = _resolve(domain, socket_path)
        self.core = ProducerCore(dom, source_id, name=name or f"producer-{source_id}")
        self.max_unacked_bytes = max_unacked_bytes
        self._wake = trio.Event()
        self._acked = trio.Event()
        self.connected = False
        self._welcomed_now = False
        self._since_yield = 0
        # direct sends (see _kick): a non-blocking duplicate of the session's socket, the
        # unsent tail of the last direct send, whether the writer is parked
        self._sock: socket.socket | None = None
        self._pending: memoryview | None = None
        self._idle = False
        self._last_direct = 0.0
        self._last_send = 0.0
        self._open_session(dom, path, **session)

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        domain: str | int | Domain,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        source_id: int,
        linger: float = 5.0,
        **kw: Any,
    ) -> AsyncIterator[RelayProducer]:
        """Connect (waiting for the first Welcome), yield the producer; on normal exit
        wait up to ``linger`` seconds for everything published to be acknowledged."""
        self = cls(domain, socket_path, source_id=source_id, **kw)
        with reraise_unwrapped():
            async with trio.open_nursery() as nursery:
                await nursery.start(self._run)
                try:
                    yield self
                    with trio.move_on_after(linger):
                        await self.flush()
                finally:
                    nursery.cancel_scope.cancel()

    @property
    def counters(self) -> dict[str, int]:
        c = self.core.counters
        return {"published": c.published, "acked": c.acked, "resent": c.resent, "reconnects": c.reconnects,
                "unacked": self.core.unacked}

    @property
    def last_source_seq(self) -> int:
        return self.core.last_published

    # ---- publishing ----

    async def publish(
        self,
        tlvs: TLV | Iterable[TLV],
        *,
        event_time_ns: int | None = None,
        receive_time_ns: int | None = None,
        flags: int = 0,
    ) -> int:
        """Stamp the next source_seq, queue the message, return its source_seq.

        Returns without waiting for the relay unless more than ``max_unacked_bytes``
        are unacknowledged (then it waits: backpressure from a stalled relay).
        """
        await self._room()
        if isinstance(tlvs, TLV):
            tlvs = (tlvs,)
        now = time.time_ns()
        seq = self.core.publish(
            tlvs,
            event_time_ns=now if event_time_ns is None else event_time_ns,
            receive_time_ns=now if receive_time_ns is None else receive_time_ns,
            flags=flags,
        )
        await self._kick()
        return seq

    async def publish_payload(
        self, payload: bytes, *, event_time_ns: int | None = None, receive_time_ns: int | None = None, flags: int = 0
    ) -> int:
        """Like ``publish`` with already-encoded TLV bytes (the loadgen / bridge fast path)."""
        await self._room()
        now = time.time_ns()
        seq = self.core.publish_payload(
            payload,
            event_time_ns=now if event_time_ns is None else event_time_ns,
            receive_time_ns=now if receive_time_ns is None else receive_time_ns,
            flags=flags,
        )
        await self._kick()
        return seq

    async def forward_frames(self, data: bytes | bytearray | memoryview) -> tuple[int, int, list[tuple[int, str]]]:
        """Queue relay frames from another relay under this producer, each frame's ``domain_seq``
        as its ``source_seq`` (``ProducerCore.forward_frames``: the bridge-in fast path).
        Returns ``(frames taken, last source_seq, damaged frames skipped)``."""
        await self._room()
        got = self.core.forward_frames(data)
        if got[0]:
            await self._kick()
        return got

    async def _room(self) -> None:
        while self.core.outbox_bytes >= self.max_unacked_bytes:
            await self._acked.wait()

    async def _kick(self) -> None:
        # The writer sends everything published so far whenever this task next awaits
        # something (a socket read, a sleep): a burst of publishes becomes one send. A
        # publisher that never awaits anything else yields every YIELD_EVERY messages so it
        # cannot starve the writer. (Yielding on every publish costs a send per message:
        # ~18 us each in trio, which is what we are avoiding.)
        # Latency: when the writer is parked, send right here with one non-blocking send (no
        # task switch, no trio send_all) -- but at most once per DIRECT_GAP, so a burst of
        # publishes still leaves as a few big writes (the writer sends the rest at the next
        # await). Whatever the socket does not take is sent by the writer first.
        sock = self._sock
        if sock is not None and self._idle and self._pending is None:
            now = time.perf_counter()
            if now - self._last_direct >= DIRECT_GAP:
                self._last_direct = now
                data = self.core.data_to_send()
                try:
                    n = sock.send(data)
                except OSError:  # BlockingIOError, or a broken connection the writer will report
                    n = 0
                if n < len(data):
                    self._pending = memoryview(data)[n:]
                    self._wake.set()
                self._last_send = trio.current_time()
            else:
                self._wake.set()
        else:
            self._wake.set()
        self._since_yield += 1
        if self._since_yield >= YIELD_EVERY:
            self._since_yield = 0
            await trio.lowlevel.checkpoint()

    async def flush(self) -> None:
        """Wait until every message published so far is acknowledged (persisted) by the relay."""
        target = self.core.last_published
        while self.core.acked_seq < target:
            await self._acked.wait()

    # ---- connection loop ----

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        core = self.core
        attempt = 0
        started = False
        deadline = math.inf if self.connect_timeout is None else trio.current_time() + self.connect_timeout
        while True:
            stream = await _open(self.socket_path, self.backoff, math.inf if started else deadline, core.name)
            self._welcomed_now = False
            acked_before = core.acked_seq
            try:
                async with stream:
                    await self._session(stream, None if started else task_status)
            except* _CONNECTION_ERRORS as group:
                log.info("%s: connection to %s dropped: %s", core.name, self.socket_path, group.exceptions[0])
            if self._welcomed_now:
                started = True
            if self._welcomed_now and (core.acked_seq > acked_before or not core.outbox):
                # a session that got somewhere: reconnect quickly. One that was welcomed but got
                # none of its outbox acknowledged (the relay refusing a frame) backs off like a
                # failed connect, so a refused frame is not resent at full speed
                attempt = 0
            else:
                attempt += 1
            self.connected = False
            core.lost_connection()
            await trio.sleep(self.backoff.delay(attempt))

    async def _session(self, stream: trio.SocketStream, task_status: trio.TaskStatus[None] | None) -> None:
        core = self.core
        await stream.send_all(core.start())
        timeout = self.heartbeat_interval * self.dead_after
        while not core.welcomed:
            data = b""
            with trio.move_on_after(timeout):
                data = await stream.receive_some(RECV_SIZE)
            if not data:
                raise StreamBroken("no Welcome from the relay")
            core.receive_data(data)
        self.connected = True
        self._welcomed_now = True
        self._signal_ack()
        log.info("%s: connected to %s (epoch %d), resending %d unacked", core.name, self.socket_path, core.epoch,
                 core.unacked)
        if task_status is not None:
            task_status.started()
        self._pending = None
        tsock = getattr(stream, "socket", None)
        if tsock is not None:
            self._sock = socket.socket(tsock.family, tsock.type, fileno=os.dup(tsock.fileno()))
            self._sock.setblocking(False)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, stream)
                await self._reader(stream)
                nursery.cancel_scope.cancel()
        finally:
            self._idle = False
            self._pending = None  # its frames are still in the outbox: resent after the reconnect
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    async def _reader(self, stream: trio.SocketStream) -> None:
        timeout = self.heartbeat_interval * self.dead_after
        sock = self._sock
        if sock is None:  # an in-memory stream (tests): trio's stream, a deadline per read
            while True:
                data = b""
                with trio.move_on_after(timeout) as cs:
                    data = await stream.receive_some(RECV_SIZE)
                if cs.cancelled_caught:
                    raise StreamBroken(f"relay silent for {timeout:.1f} s")
                self._on_reply(data)
        # A producer reads only the relay's replies (Acks, heartbeats), each after a wait: wait for
        # the socket, then one recv on it (no trio stream machinery, no cancel scope per read;
        # the dead-relay deadline moves at most once per 1/16 of it, as in the relay's reader).
        current_time = trio.current_time
        wait_readable = trio.lowlevel.wait_readable
        slack = timeout / 16
        with trio.CancelScope(deadline=current_time() + timeout + slack) as cs:
            while True:
                if (due := current_time() + timeout) > cs.deadline:
                    cs.deadline = due + slack
                await wait_readable(sock)
                try:
                    data = sock.recv(RECV_SIZE)
                except BlockingIOError:
                    continue
                self._on_reply(data)
        raise StreamBroken(f"relay silent for {timeout:.1f} s")

    def _on_reply(self, data: bytes) -> None:
        if not data:
            raise StreamBroken("relay closed the connection")
        core = self.core
        before = core.acked_seq
        core.receive_data(data)
        if core.acked_seq != before:
            self._signal_ack()

    def _signal_ack(self) -> None:
        self._acked.set()
        self._acked = trio.Event()

    async def _writer(self, stream: trio.SocketStream) -> None:
        core = self.core
        self._last_send = trio.current_time()
        while True:
            if self._pending is not None:
                data: Any = self._pending  # the unsent tail of a direct send goes first
                self._pending = None
            else:
                data = core.data_to_send()
            if data:
                await stream.send_all(data)
                self._last_send = trio.current_time()
                continue
            self._wake = trio.Event()
            self._idle = True
            try:
                with trio.move_on_at(self._last_send + self.heartbeat_interval):
                    await self._wake.wait()
            finally:
                self._idle = False
            if (
                self._pending is None
                and not core.unsent_bytes
                and trio.current_time() >= self._last_send + self.heartbeat_interval
            ):
                await stream.send_all(core.heartbeat())
                self._last_send = trio.current_time()


async def request_stats(
    domain: str | int | Domain, socket_path: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Ask a relay for its Stats: epoch, head, rate, producers, consumers with their lag.

    Wrap in ``trio.fail_after`` to bound the wait.
    """
    dom, path = _resolve(domain, socket_path)
    core = ConsumerCore(dom, name="relay-cli")
    stream = await trio.open_unix_socket(path)
    async with stream:
        hello = control_frame(Hello(role=Role.CONSUMER, protocol_version=VERSION, source_id=0, name="relay-cli"))
        await stream.send_all(hello + control_frame(Stats(json=b"")))
        while core.stats is None:
            data = await stream.receive_some(RECV_SIZE)
            if not data:
                raise RelayUnavailable(f"relay at {path} closed the connection before answering")
            core.receive_data(data)
            if core.broken is not None:
                raise RelayUnavailable(f"relay at {path}: {core.broken}")
        await stream.send_all(control_frame(Goodbye(code=0, reason="stats done")))
    assert core.stats is not None
    return core.stats
