"""The relay server: the trio layer around the sans-IO core.

Theory of operation
-------------------
One ``Relay`` per domain owns the log: a ``Sequencer`` (head domain sequence,
per-source dedupe table), the in-memory ``Ring`` and the on-disk ``Journal``.
Every connection runs two tasks in its own nursery:

* a **reader** that receives big chunks, hands them to ``Ingest.scan`` (frame
  boundaries from fixed offsets, CRC, dedupe, ``domain_seq`` stamped in place)
  and, for each accepted chunk, appends it to the journal (one ``os.write``),
  then to the ring, then wakes the consumers -- journal before fan-out, always.
  The fan-out serves the consumers in one fixed order: latency class CRITICAL,
  then NORMAL, then BACKGROUND, each in subscription order (``Relay.fanout``,
  rebuilt when a consumer subscribes, changes class or leaves, never per frame).
  On a machine with fewer cores than consumers, those served first get the idle
  cores first; the order never changes what anyone is sent.
  Control (SYSTEM) frames are handled in stream order between chunks.
* a **writer**, the only task that sends on the connection: queued control
  frames (Welcome, Ack, Resync, Stats, Goodbye), then everything from the
  consumer's cursor to the head in one ``send_all`` (capped at
  ``max_batch_bytes``), then, when there is nothing to send for one heartbeat
  interval, a Heartbeat(epoch, head).

A slow consumer therefore only ever blocks its own writer. The ring does not
wait for anyone: when it evicts past a live consumer's cursor, that consumer is
cut off (Goodbye, or -- if its writer is stuck in ``send_all`` -- the send is
cancelled and the socket closed) and it catches up from the journal after it
reconnects.

Acks: an Ack means durable. With ``fsync=batch`` a group commit starts right
after the fan-out of a batch; with ``interval`` a timer starts one every
``fsync_interval``. Either way the fsyncs run in one long-lived thread
(``_SyncThread``), which hands each finished commit back to the event loop as a
callback that acknowledges every producer up to the last frame covered -- no
task switch, no trio worker-thread hand-off per commit. With ``off`` a producer
is acknowledged as soon as its frames are written (they survive a relay crash,
not a power cut).

Errors: a peer that sends malformed bytes gets a logged ``RemoteProtocolError``
reason, a best-effort Goodbye, and is disconnected; nothing else is affected.
A bug in the relay itself propagates and stops the relay (no blanket excepts).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import resource
import socket as stdsocket
import stat
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from protocol.errors import ProtocolError, RemoteProtocolError
from protocol.framing import FrameDecoder
from protocol.header import VERSION, Domain
from protocol.message import control_frame, decode
from protocol.system import (
    Ack,
    ConsumerClass,
    Goodbye,
    Heartbeat,
    Hello,
    LatencyClass,
    Resync,
    Role,
    Stats,
    Subscribe,
    Welcome,
)
from runtime.files import UnsafePathError, ensure_private_dir, open_private
from runtime.gc_keeper import GcKeeper
from runtime.logging import printable
from runtime.paths import check_socket_owner, check_socket_path, ensure_run_dir, shared_sticky_dir

from .core.cursor import Batch, Cursor, ResyncNeeded
from .core.ingest import Ingest, Sequencer
from .core.journal import Journal, JournalCorrupt, bump_epoch
from .core.ring import Chunk, Ring

log = logging.getLogger("relays.server")

FSYNC_POLICIES = ("batch", "interval", "off")
_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS)
RECV_SIZE = 256 * 1024
YIELD_AFTER = 0.0005  # seconds of reads that found data waiting before the read loop yields to other tasks


class GoodbyeCode:
    NORMAL = 0
    PROTOCOL_ERROR = 1
    CUT_OFF = 2  # slow consumer fell off the ring
    REPLACED = 3  # a newer connection took over this source_id
    SHUTDOWN = 4
    DEAD = 5  # peer silent for too long


class RelayError(Exception):
    """Bad configuration or an environment the relay cannot start in."""


class RelayAlreadyRunning(RelayError):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class RelayConfig:
    domain: Domain
    socket_path: str
    data_dir: str
    fsync: str = "batch"
    fsync_interval: float = 0.05
    segment_bytes: int = 64 << 20
    retention_bytes: int = 1 << 30
    ring_bytes: int = 64 << 20
    max_batch_bytes: int = 256 * 1024
    heartbeat_interval: float = 0.25
    dead_after: float = 8.0  # intervals of silence before a peer is declared dead
    verify_checksums: bool = True
    validate_tlvs: bool = True  # decode every accepted frame's TLVs: one that does not decode is refused
    # Keep the relay's long-lived objects out of the garbage collector's scans (a process-wide
    # setting: the daemon turns it on, an in-process relay in a test leaves it off). See ``Relay.gc_keeper``.
    freeze_gc: bool = False
    gc_freeze_interval: float = 30.0
    # resource caps (issue 17): connections at once (0: the descriptor limit minus a reserve for
    # the journal, the listener and the event loop), bytes and seconds a connection may spend
    # before its Hello is complete
    max_connections: int = 0
    pre_hello_bytes: int = 64 * 1024
    hello_timeout: float = 5.0
    # who may connect and produce (specs/relay.md, "Authentication"): uids allowed to connect
    # (None: the relay's own uid and root), and, when set, the uids allowed to produce each
    # source id (a source id not listed is refused)
    allowed_uids: frozenset[int] | None = None
    producers: Mapping[int, frozenset[int]] | None = None

    def __post_init__(self) -> None:
        if self.domain not in (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION):
            raise RelayError(f"domain {self.domain!r} has no relay")
        if self.fsync not in FSYNC_POLICIES:
            raise RelayError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}, not {self.fsync!r}")
        for name in ("segment_bytes", "retention_bytes", "ring_bytes", "max_batch_bytes"):
            if getattr(self, name) <= 0:
                raise RelayError(f"{name} must be positive")
        if self.retention_bytes < self.segment_bytes:
            raise RelayError("retention_bytes must be at least segment_bytes")
        if self.max_connections < 0 or self.pre_hello_bytes < 1024 or self.hello_timeout <= 0:
            raise RelayError("max_connections must be >= 0, pre_hello_bytes >= 1024 and hello_timeout positive")
        if self.heartbeat_interval <= 0 or self.dead_after < 2:
            raise RelayError("heartbeat_interval must be positive and dead_after at least 2 intervals")
        try:
            check_socket_path(self.socket_path)
        except ValueError as exc:
            raise RelayError(str(exc)) from None


FD_RESERVE = 64  # descriptors kept free of connections: journal segments and reads, fsync, listener, trio


def connection_limit(configured: int) -> int:
    """``configured``, or (0) what the soft RLIMIT_NOFILE leaves after ``FD_RESERVE``; every
    connection costs exactly one descriptor."""
    if configured:
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 65536
    return max(1, soft - FD_RESERVE)


class Conn:
    """State of one client connection (plain data; the tasks live in ``Relay._handle``)."""

    __slots__ = (
        "id", "stream", "name", "role", "source_id", "ingest", "cursor", "control", "ack_to", "ack_sent",
        "wake", "waiting", "scope", "send_scope", "cut_reason", "rx_frames", "rx_bytes", "duplicates",
        "connected_ns", "hello", "sock", "pending", "last_send", "peer_pid", "peer_uid", "latency",
    )

    def __init__(self, cid: int, stream: trio.SocketStream, ingest: Ingest) -> None:
        self.id = cid
        self.stream = stream
        self.name = f"conn{cid}"
        self.role = 0
        self.source_id = 0
        self.hello = False
        self.ingest = ingest
        self.cursor: Cursor | None = None
        self.control: list[bytes] = []
        self.ack_to = 0
        self.ack_sent = 0
        self.wake = trio.Event()
        self.waiting = False
        self.scope: trio.CancelScope | None = None
        self.send_scope: trio.CancelScope | None = None
        self.cut_reason: str | None = None
        self.rx_frames = 0
        self.rx_bytes = 0
        self.duplicates = 0
        self.connected_ns = time.time_ns()
        # a non-blocking duplicate of the socket for direct sends from the event loop (see
        # Relay._push); ``pending`` is the unsent tail of such a send, which the writer
        # sends before anything else
        self.sock: stdsocket.socket | None = None
        self.pending: memoryview | None = None
        self.last_send = trio.current_time()
        # the peer's Unix credentials (SO_PEERCRED), None for in-memory test streams
        self.peer_pid: int | None = None
        self.peer_uid: int | None = None
        self.latency = LatencyClass.NORMAL  # what its ConsumerClass said (NORMAL without one)

    def kick(self) -> None:
        if self.waiting:
            self.wake.set()

    def __repr__(self) -> str:
        return f"<{self.name}#{self.id} role={self.role} sid={self.source_id}>"


class Relay:
    """One domain's relay. Construct (recovers the journal), then ``await relay.serve()``."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.domain = config.domain
        data_dir = Path(config.data_dir)
        try:
            ensure_private_dir(data_dir)  # 0700 when created; refused if someone else's or a symlink
            self._lock_fd = open_private(data_dir / "lock", os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise RelayError(f"data dir {data_dir}: {exc}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RelayError(f"data dir {data_dir} is in use by another relay") from None
        self.journal = Journal(
            data_dir / "journal", segment_bytes=config.segment_bytes, retention_bytes=config.retention_bytes
        )
        try:
            rec = self.journal.recover()
            self.epoch = bump_epoch(data_dir)
        except JournalCorrupt as exc:
            os.close(self._lock_fd)
            raise RelayError(str(exc)) from None
        if rec.truncated_bytes:
            log.warning("journal: truncated a torn tail of %d bytes", rec.truncated_bytes)
        for path, hole in rec.holes:
            log.error("journal: %s is damaged: %s; consumers reading it get Resync(CORRUPT) and continue after "
                      "it, and its sequences are never issued again", path.name, hole)
        self.seq = Sequencer(head_seq=rec.head_seq, last_source_seq=dict(rec.last_source_seq))
        self.ring = Ring(config.ring_bytes, next_seq=rec.head_seq + 1)
        log.info(
            "%s relay: epoch %d, head %d, oldest %d, %d segments, %d sources",
            self.domain.name.lower(), self.epoch, rec.head_seq, rec.oldest_seq, rec.segments,
            len(rec.last_source_seq),
        )
        self.conns: set[Conn] = set()
        # subscribed connections, in subscription order; ``fanout`` is the same connections in the
        # order a new frame is served to them (latency class, then subscription order), rebuilt by
        # _order_fanout whenever one subscribes, changes class or leaves
        self.consumers: dict[Conn, None] = {}
        self.fanout: tuple[Conn, ...] = ()
        self.producers: dict[int, Conn] = {}
        self._next_id = 0
        # (domain_seq, producer, source_seq): acks owed once the journal is synced up to domain_seq
        self._ack_waiters: deque[tuple[int, Conn, int]] = deque()
        self._sync_thread: _SyncThread | None = None  # while serving
        self._sync_running = False  # a commit is in the thread
        self._sync_error: BaseException | None = None
        self._sync_failed = trio.Event()
        self.rate = 0.0
        self.cut_offs = 0
        self.protocol_errors = 0
        # what consumers that disconnected were sent, so totals (metrics) never go down
        self.departed_sent_frames = 0
        self.departed_sent_bytes = 0
        self.started_ns = time.time_ns()
        self._closed = False
        self.max_connections = connection_limit(config.max_connections)
        self.refused_connections = 0
        self.resource_errors = 0
        # No collection pauses on the hot path (``freeze_gc``): a full collection walks every live tracked
        # object -- at 20,000 msgs/s the ring's chunk objects, the connections, trio's tasks -- and paused
        # the relay for 13-28 ms every few seconds. The keeper (runtime.gc_keeper) freezes what is alive
        # right after start-up, then every ``gc_freeze_interval`` what was made since.
        self.gc_keeper = GcKeeper(settle=0.0, interval=config.gc_freeze_interval)

    # ------------------------------------------------------------------ serving

    async def serve(self, *, task_status: trio.TaskStatus[Relay] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on the socket; ``task_status.started(self)`` once listening. Runs until cancelled."""
        sock = await self._bind()
        listener = trio.SocketListener(sock)
        path = self.config.socket_path
        ino = os.stat(path).st_ino
        try:
            if self.config.fsync != "off":
                self._sync_thread = _SyncThread(trio.lowlevel.current_trio_token(), self._synced)
                self._sync_thread.start()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._syncer)
                nursery.start_soon(self._ticker)
                await nursery.start(trio.serve_listeners, self._handle, [listener])
                log.info("listening on %s", path)
                if self.config.freeze_gc:
                    nursery.start_soon(self.gc_keeper.run)
                task_status.started(self)
        finally:
            try:
                if os.stat(path).st_ino == ino:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            if self._sync_thread is not None:
                self._sync_thread.stop()  # waits for a commit in flight: the journal closes next
                self._sync_thread = None
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.journal.sync()
        self.journal.close()
        os.close(self._lock_fd)
        log.info("journal synced and closed at head %d", self.seq.head_seq)

    async def _bind(self) -> trio.socket.SocketType:
        path = self.config.socket_path
        _claim_socket_path(path)
        sock = trio.socket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        try:
            await sock.bind(path)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise RelayAlreadyRunning(f"a live relay already listens on {path}") from None
            raise RelayError(f"cannot bind {path}: {exc}") from None
        # only our user may connect (the directory is 0700 too); not left to the umask
        os.chmod(path, 0o600)
        sock.listen(128)
        return sock

    # ------------------------------------------------------------------ background tasks

    async def _syncer(self) -> None:
        """Start a commit every ``fsync_interval`` (``interval``; ``batch`` starts its own after
        each fan-out), and stop the relay if an fsync failed: an Ack would otherwise never come,
        and acked data might not be on disk."""
        cfg = self.config
        while True:
            if cfg.fsync == "interval":
                with trio.move_on_after(cfg.fsync_interval):
                    await self._sync_failed.wait()
            else:
                await self._sync_failed.wait()
            if self._sync_error is not None:
                raise self._sync_error
            if not self._sync_running and self.journal.needs_sync:
                self._start_sync()

    def _start_sync(self) -> None:
        """Hand what the journal has written so far to the fsync thread (one commit at a time)."""
        if self._sync_thread is None or self._sync_running:
            return  # not serving; or the commit in flight starts the next one when it is done
        self._sync_running = True
        self._sync_thread.submit(self.journal.sync_targets())

    def _synced(self, job: tuple[list[int], int, int | None], error: BaseException | None) -> None:
        """A commit is done (called on the event loop by the fsync thread): acknowledge every
        producer up to the last frame it covered, then start the next commit if ``batch`` has
        written more meanwhile."""
        self._sync_running = False
        fds, seq, dir_fd = job
        if error is not None:
            self._sync_error = error
            self._sync_failed.set()
            return
        if self._closed:  # stopped while the commit ran: close() synced and closed the journal
            if dir_fd is not None:
                os.close(dir_fd)
            return
        self.journal.synced(fds, seq, dir_fd)
        waiters = self._ack_waiters
        owed: dict[Conn, None] = {}  # one Ack per producer per commit, however many reads it covers
        while waiters and waiters[0][0] <= seq:
            _, conn, sseq = waiters.popleft()
            if sseq > conn.ack_to:
                conn.ack_to = sseq
                owed[conn] = None
        for conn in owed:
            self._push(conn)
        if self.config.fsync == "batch" and self.journal.needs_sync:
            self._start_sync()

    @property
    def gc_freezes(self) -> int:
        """Rounds of the GC keeper done (``freeze_gc``): after one, everything alive before it is frozen."""
        return self.gc_keeper.freezes

    async def _ticker(self) -> None:
        prev, prev_t = self.seq.accepted, time.monotonic()
        while True:
            await trio.sleep(1.0)
            now = time.monotonic()
            self.rate = (self.seq.accepted - prev) / (now - prev_t)
            prev, prev_t = self.seq.accepted, now

    # ------------------------------------------------------------------ connections

    async def _handle(self, stream: trio.SocketStream) -> None:
        if len(self.conns) >= self.max_connections:
            # over the cap: say why and close at once (the descriptor is freed immediately)
            self.refused_connections += 1
            if self.refused_connections == 1 or self.refused_connections % 1000 == 0:
                log.warning("refusing connections: %d open, the limit is %d (%d refused so far)",
                            len(self.conns), self.max_connections, self.refused_connections)
            with trio.move_on_after(0.1):
                try:
                    await stream.send_all(control_frame(Goodbye(code=GoodbyeCode.PROTOCOL_ERROR,
                                                                 reason="too many connections")))
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
            await stream.aclose()
            return
        self._next_id += 1
        conn = Conn(self._next_id, stream, Ingest(
            self.seq, self.domain, None, verify=self.config.verify_checksums, validate=self.config.validate_tlvs
        ))
        self.conns.add(conn)
        try:
            tsock = getattr(stream, "socket", None)  # None for in-memory test streams: writer only
            if tsock is not None:
                conn.peer_pid, conn.peer_uid = _peer_credentials(tsock)
                allowed = self.config.allowed_uids
                if conn.peer_uid not in (allowed if allowed is not None else (os.getuid(), 0)):
                    raise RemoteProtocolError(f"uid {conn.peer_uid} may not connect to this relay")
                # the same descriptor, seen through a stdlib socket object for direct non-blocking
                # sends and reads (trio's sockets are non-blocking already); detached, never
                # closed, in ``finally``: one descriptor per connection, closed by the stream
                conn.sock = stdsocket.socket(tsock.family, tsock.type, fileno=tsock.fileno())
            async with trio.open_nursery() as nursery:
                conn.scope = nursery.cancel_scope
                nursery.start_soon(self._writer, conn)
                await self._reader(conn)
                nursery.cancel_scope.cancel()
        except* RemoteProtocolError as group:
            exc = group.exceptions[0]
            self.protocol_errors += 1
            log.warning("%r: protocol error: %s; disconnecting", conn, exc)
            with trio.move_on_after(0.5):
                try:
                    await stream.send_all(
                        control_frame(Goodbye(code=GoodbyeCode.PROTOCOL_ERROR, reason=str(exc)[:200]))
                    )
                except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                    pass  # the peer is gone or our writer was mid-send; closing regardless
        except* (trio.BrokenResourceError, trio.ClosedResourceError) as group:
            log.info("%r: connection lost (%s)", conn, group.exceptions[0])
        except* OSError as group:
            # out of descriptors or memory while serving this connection (a journal read for
            # it, say): this connection ends, the relay and every other connection go on
            exc = group.exceptions[0]
            if getattr(exc, "errno", None) not in _RESOURCE_ERRNOS:
                raise
            self.resource_errors += 1
            log.warning("%r: %s while serving it; disconnecting", conn, exc)
        finally:
            self._forget(conn)
            if conn.sock is not None:
                conn.sock.detach()
                conn.sock = None
            await stream.aclose()

    def _forget(self, conn: Conn) -> None:
        self.conns.discard(conn)
        if conn in self.consumers and conn.cursor is not None:  # per disconnect, never per message
            self.departed_sent_frames += conn.cursor.sent_frames
            self.departed_sent_bytes += conn.cursor.sent_bytes
        if self.consumers.pop(conn, 0) is None:
            self._order_fanout()
        if conn.source_id and self.producers.get(conn.source_id) is conn:
            del self.producers[conn.source_id]
        if conn.hello:
            log.info("%r disconnected", conn)

    async def _reader(self, conn: Conn) -> None:
        timeout = self.config.heartbeat_interval * self.config.dead_after
        # one cancel scope whose deadline moves with every read (cheaper than a scope per read)
        with trio.CancelScope() as cs:
            await self._read_loop(conn, timeout, cs)
        if cs.cancelled_caught:
            if not conn.hello:
                self.protocol_errors += 1
                log.warning("%r: no Hello within %.1f s; disconnecting", conn, self.config.hello_timeout)
            else:
                log.warning("%r: silent for %.1f s, declaring it dead", conn, timeout)

    async def _read_loop(self, conn: Conn, silence: float, cs: trio.CancelScope) -> None:
        stream = conn.stream
        # Chunks keep the buffer they were read into, so the decoder never grows or reuses one
        # (shared): every read starts a fresh bytearray holding the partial tail and the new bytes.
        dec = FrameDecoder(shared=True, writable=True)
        current_time = trio.current_time
        sock = conn.sock
        wait_readable = trio.lowlevel.wait_readable
        checkpoint = trio.lowlevel.checkpoint
        perf = time.perf_counter  # real time: a mock clock in tests does not move while reads keep succeeding
        last_pass = perf()
        # before its Hello a connection gets hello_timeout in all and pre_hello_bytes of buffer:
        # a crowd of connections trickling bytes cannot pin the relay's memory
        hello_deadline = current_time() + self.config.hello_timeout
        pre_hello_bytes = self.config.pre_hello_bytes
        # Moving a cancel scope's deadline costs about as much as scanning a frame, so after the Hello
        # the deadline moves only once it is within ``silence`` of now, and then ``slack`` beyond:
        # a peer is still declared dead after ``silence`` without a byte, at most ``slack`` later.
        slack = silence / 16
        speculate = True  # try a recv before waiting (see below)
        while True:
            if not conn.hello:
                if dec.buffered > pre_hello_bytes:  # what is left after the last scan
                    raise RemoteProtocolError(f"{dec.buffered} bytes buffered without a complete Hello")
                cs.deadline = min(current_time() + silence, hello_deadline)
            elif (due := current_time() + silence) > cs.deadline:
                cs.deadline = due + slack
            if sock is None:
                data = await stream.receive_some(RECV_SIZE)
            else:
                # straight on the non-blocking socket (no trio stream machinery per read). One recv
                # per wake-up: after a short read that had to wait (an idle peer) the next read
                # waits first, since a recv now would almost always fail; after a read that found
                # data waiting, or filled the buffer (a busy peer), it tries first and waits only
                # when the socket is empty, so a busy producer never touches epoll
                waited = False
                if not speculate:
                    await wait_readable(sock)
                    waited = True
                while True:
                    try:
                        data = sock.recv(RECV_SIZE)
                        break
                    except BlockingIOError:
                        await wait_readable(sock)
                        waited = True
                    except OSError as exc:
                        raise trio.BrokenResourceError(str(exc)) from exc
                speculate = not waited or len(data) == RECV_SIZE
                now = perf()
                if waited:
                    last_pass = now  # the wait was a scheduler pass
                elif now - last_pass >= YIELD_AFTER:
                    # data kept coming without a wait for a while: yield so the other tasks stay
                    # served (not after every read: a pass costs as much as ingesting a frame)
                    await checkpoint()
                    last_pass = now
            if not data:
                return
            conn.rx_bytes += len(data)
            dec.receive_data(data)
            while True:
                buf, pos, _ = dec.window()
                result = conn.ingest.scan(buf, pos)  # type: ignore[arg-type]  # writable: a bytearray
                dec.consume(result.pos)
                if result.duplicates:
                    conn.duplicates += result.duplicates
                if result.chunks:
                    self._accept(conn, result.chunks)
                if result.control is None:
                    break
                if not self._on_control(conn, result.control):
                    return

    def _accept(self, conn: Conn, chunks: list[Chunk]) -> None:
        """Journal, then ring, then wake consumers -- the fan-out first --, then arrange the
        producer's ack (sent now under ``interval``/``off``, after the group commit under
        ``batch``): an Ack written before the fan-out would hand the CPU to the producer while
        the consumers still wait for the frames."""
        journal = self.journal
        ring = self.ring
        policy = self.config.fsync
        durable = policy != "off"  # acks wait for the fsync that covers the frames
        for chunk in chunks:
            journal.append(chunk)
            ring.append(chunk)
            conn.rx_frames += chunk.count
            if durable:
                self._ack_waiters.append((chunk.last_seq, conn, chunk.last_source_seq))
            elif chunk.last_source_seq > conn.ack_to:
                conn.ack_to = chunk.last_source_seq
        oldest = ring.oldest_seq
        for c in self.fanout:  # critical, normal, background (see _order_fanout)
            if c is conn:
                continue  # a producer that also consumes: served with its ack below
            cur = c.cursor
            if cur is not None and cur.live and cur.next_seq < oldest and c.cut_reason is None:
                self._cut(c, f"fell {ring.head_seq - cur.next_seq + 1} messages behind, off the ring")
            else:
                self._push(c)
        if policy == "batch":
            self._start_sync()  # the group commit runs (in its thread) after this fan-out
        if conn in self.consumers:
            cur = conn.cursor
            if cur is not None and cur.live and cur.next_seq < oldest and conn.cut_reason is None:
                self._cut(conn, f"fell {ring.head_seq - cur.next_seq + 1} messages behind, off the ring")
                return
        if not durable or conn in self.consumers:
            self._push(conn)

    def _push(self, conn: Conn) -> None:
        """Send what ``conn``'s writer would send next, right now, if its writer is idle.

        The fast path for new data: one non-blocking ``send`` from the event loop instead
        of waking the writer task for a trio ``send_all`` (a task switch, cancel scopes and
        a checkpoint: tens of microseconds per consumer per batch on this kind of machine,
        which at a moderate rate is per message). Only when the writer is parked waiting
        for news (so it is not mid-send and sending stays in stream order); whatever the
        socket does not take becomes ``conn.pending``, which the writer sends first.
        """
        if not conn.waiting or conn.pending is not None or conn.cut_reason is not None or conn.sock is None:
            conn.kick()
            return
        payload, batch = self._collect(conn)
        if payload is None:
            return
        try:
            n = conn.sock.send(payload)
        except BlockingIOError:
            n = 0
        except OSError:
            # the connection is broken: let the writer find out through trio and clean up
            conn.pending = memoryview(payload)
            conn.kick()
            return
        if batch is not None:
            assert conn.cursor is not None
            conn.cursor.advance(batch)
        conn.last_send = trio.current_time()
        if n < len(payload):
            conn.pending = memoryview(payload)[n:]
            conn.kick()
        elif batch is not None and conn.cursor is not None and conn.cursor.next_seq <= self.ring.head_seq:
            conn.kick()  # capped at max_batch: the writer sends the rest

    def _collect(self, conn: Conn) -> tuple[Any, Batch | None]:
        """The next bytes for ``conn``: queued control frames, an Ack, then the next batch
        (or a Resync); ``(None, None)`` when there is nothing to send."""
        cursor = conn.cursor
        if cursor is not None and not conn.control and conn.ack_to <= conn.ack_sent:
            # the fan-out's usual case, nothing queued before the batch: no list to build
            nb = cursor.next_batch(self.ring, self.journal)
            if nb is None:
                return None, None
            if not isinstance(nb, ResyncNeeded):
                data = nb.parts
                if len(data) == 1:
                    return data[0], nb
                return (b"".join(data), nb) if data else (None, None)
            log.info("%r: resync %s", conn, nb)
            return self._resync_frame(nb), None
        parts: list[Any] = []
        if conn.control:
            parts.extend(conn.control)
            conn.control.clear()
        if conn.ack_to > conn.ack_sent:
            parts.append(control_frame(Ack(source_id=conn.source_id, source_seq=conn.ack_to)))
            conn.ack_sent = conn.ack_to
        batch: Batch | None = None
        if cursor is not None:
            nb = cursor.next_batch(self.ring, self.journal)
            if isinstance(nb, ResyncNeeded):
                log.info("%r: resync %s", conn, nb)
                parts.append(self._resync_frame(nb))
            elif nb is not None:
                batch = nb
                parts.extend(nb.parts)
        if not parts:
            return None, None
        return (parts[0] if len(parts) == 1 else b"".join(parts)), batch

    def _cut(self, conn: Conn, reason: str) -> None:
        self.cut_offs += 1
        conn.cut_reason = reason
        log.warning("%r cut off: %s", conn, reason)
        if conn.send_scope is not None:
            conn.send_scope.cancel()
        conn.kick()

    # ------------------------------------------------------------------ control messages

    def _on_control(self, conn: Conn, frame: bytes) -> bool:
        """Handle one SYSTEM frame from a client. False: the client said Goodbye."""
        msg = decode(frame)
        for tlv in msg.tlvs:
            if isinstance(tlv, Hello):
                self._on_hello(conn, tlv)
            elif not conn.hello:
                raise RemoteProtocolError(f"first message must be Hello, got {type(tlv).__name__}")
            elif isinstance(tlv, Heartbeat):
                pass  # liveness is any received byte
            elif isinstance(tlv, Subscribe):
                self._on_subscribe(conn, tlv)
            elif isinstance(tlv, ConsumerClass):
                self._on_consumer_class(conn, tlv)
            elif isinstance(tlv, Stats):
                conn.control.append(control_frame(Stats(json=json.dumps(self.stats()).encode())))
                conn.kick()
            elif isinstance(tlv, Goodbye):
                log.info("%r says goodbye: %s", conn, tlv.reason or tlv.code)
                return False
            else:
                raise RemoteProtocolError(f"unexpected control message {type(tlv).__name__}")
        return True

    def _on_hello(self, conn: Conn, hello: Hello) -> None:
        if conn.hello:
            raise RemoteProtocolError("second Hello on one connection")
        if hello.protocol_version != VERSION:
            raise RemoteProtocolError(f"protocol version {hello.protocol_version}, this relay speaks {VERSION}")
        if hello.role not in (Role.PRODUCER, Role.CONSUMER, Role.BOTH):
            raise RemoteProtocolError(f"unknown role {hello.role}")
        conn.hello = True
        conn.role = hello.role
        conn.name = printable(hello.name) or conn.name  # peer text: never raw into a log line
        conn.source_id = hello.source_id
        if hello.role in (Role.PRODUCER, Role.BOTH):
            if not hello.source_id:
                raise RemoteProtocolError("a producer needs a non-zero source_id")
            owners = self.config.producers
            if owners is not None and conn.peer_uid is not None and conn.peer_uid not in owners.get(hello.source_id, ()):
                raise RemoteProtocolError(f"uid {conn.peer_uid} may not produce source_id {hello.source_id}")
            old = self.producers.get(hello.source_id)
            if old is not None:
                if (old.peer_pid is not None and conn.peer_pid is not None and old.peer_pid != conn.peer_pid
                        and _pid_alive(old.peer_pid)):
                    # another live process holds this source id: refuse the newcomer (a spoofer
                    # could otherwise jump the source sequence and have the real producer's
                    # in-flight frames dropped as duplicates)
                    raise RemoteProtocolError(
                        f"source_id {hello.source_id} is held by another live process (pid {old.peer_pid})"
                    )
                # the same process reconnecting, or a kill -9'd producer's restart racing its old
                # connection's EOF (the old process is gone): the newest connection wins
                log.warning("%r replaces %r for source_id %d", conn, old, hello.source_id)
                old.source_id = 0
                old.ingest.source_id = None
                if old.scope is not None:
                    old.scope.cancel()
            self.producers[hello.source_id] = conn
            conn.ingest.source_id = hello.source_id
        last = self.seq.last_source_seq.get(hello.source_id, 0) if hello.source_id else 0
        conn.ack_sent = conn.ack_to = last
        conn.control.append(
            control_frame(
                Welcome(
                    epoch=self.epoch,
                    head_seq=self.seq.head_seq,
                    oldest_seq=min(self.ring.oldest_seq, self.journal.oldest_seq),
                    last_source_seq=last,
                    domain=int(self.domain),
                )
            )
        )
        log.info("%r hello: role %s, source_id %d, last source_seq %d", conn, Role(hello.role).name, hello.source_id, last)
        conn.kick()

    def _on_subscribe(self, conn: Conn, sub: Subscribe) -> None:
        if conn.role not in (Role.CONSUMER, Role.BOTH):
            raise RemoteProtocolError("Subscribe on a connection that said Hello as a producer only")
        types = frozenset(t.code for t in sub.types) or None
        cursor = Cursor(types=types, max_batch=self.config.max_batch_bytes)
        resync = cursor.subscribe(sub.mode, sub.from_seq, self.ring, self.journal)
        if resync is not None:
            conn.control.append(self._resync_frame(resync))
            log.info("%r: resync %s", conn, resync)
        conn.cursor = cursor
        if conn not in self.consumers:
            self.consumers[conn] = None
            self._order_fanout()
        log.info("%r subscribes from %d (mode %d, types %s, %s)", conn, cursor.next_seq, sub.mode,
                 sorted(types or ()), conn.latency.name.lower())
        conn.kick()

    def _on_consumer_class(self, conn: Conn, rec: ConsumerClass) -> None:
        """A consumer's latency class (sent with its Subscribe, before or after it). A value this relay
        does not know -- a newer client's class -- is served as NORMAL: a class only orders the sends of
        one fan-out, so nothing a consumer is delivered depends on it (specs/relay.md, "Fan-out order")."""
        if conn.role not in (Role.CONSUMER, Role.BOTH):
            raise RemoteProtocolError("ConsumerClass on a connection that said Hello as a producer only")
        try:
            latency = LatencyClass(rec.latency)
        except ValueError:
            log.warning("%r: unknown latency class %d, served as normal", conn, rec.latency)
            latency = LatencyClass.NORMAL
        if latency is not conn.latency:
            conn.latency = latency
            if conn in self.consumers:
                self._order_fanout()

    def _order_fanout(self) -> None:
        """The fan-out order: latency class, then subscription order (``sorted`` is stable over the
        insertion-ordered ``consumers``). Once per subscribe, class change or disconnect, never per frame."""
        self.fanout = tuple(sorted(self.consumers, key=_latency_of))

    @staticmethod
    def _resync_frame(r: ResyncNeeded) -> bytes:
        return control_frame(Resync(requested_seq=r.requested_seq, oldest_available=r.oldest_available, reason=int(r.reason)))

    # ------------------------------------------------------------------ writer

    async def _writer(self, conn: Conn) -> None:
        stream = conn.stream
        hb = self.config.heartbeat_interval
        while True:
            if conn.cut_reason is not None:
                if conn.pending is None:
                    with trio.move_on_after(1.0):
                        await stream.send_all(
                            control_frame(Goodbye(code=GoodbyeCode.CUT_OFF, reason=conn.cut_reason))
                        )
                # else: the stream ends mid-batch; close without a Goodbye
                assert conn.scope is not None
                conn.scope.cancel()
                return
            batch: Batch | None = None
            if conn.pending is not None:
                payload: Any = conn.pending  # the unsent tail of a direct send goes first
                conn.pending = None
            else:
                payload, batch = self._collect(conn)
            if payload is not None:
                try:
                    with trio.CancelScope() as conn.send_scope:
                        await stream.send_all(payload)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    if conn.role in (Role.PRODUCER, Role.BOTH) and conn.source_id:
                        # The peer stopped reading (a producer that closed without waiting for
                        # its acks): stop writing, but let the reader ingest everything it sent
                        # before closing, up to EOF. Nothing for it to be acked on any more.
                        log.info("%r: cannot write (%s); reading what it sent up to EOF", conn, exc)
                        conn.send_scope = None
                        return
                    raise
                conn.send_scope = None
                if conn.cut_reason is not None:
                    # cancelled mid-send: the stream is unusable, close without a Goodbye
                    assert conn.scope is not None
                    conn.scope.cancel()
                    return
                if batch is not None:
                    assert conn.cursor is not None
                    conn.cursor.advance(batch)
                conn.last_send = trio.current_time()
                continue
            # idle: wait for news, or send a heartbeat after one quiet interval
            conn.wake = trio.Event()
            conn.waiting = True
            with trio.move_on_at(conn.last_send + hb):
                await conn.wake.wait()
            conn.waiting = False
            if conn.pending is None and trio.current_time() >= conn.last_send + hb:
                cursor = conn.cursor
                head = cursor.next_seq - 1 if cursor is not None and cursor.subscribed else self.seq.head_seq
                conn.control.append(control_frame(Heartbeat(epoch=self.epoch, head_seq=head)))

    # ------------------------------------------------------------------ stats

    def stats(self) -> dict[str, Any]:
        head = self.seq.head_seq
        return {
            "domain": self.domain.name.lower(),
            "epoch": self.epoch,
            "head_seq": head,
            "oldest_seq": min(self.ring.oldest_seq, self.journal.oldest_seq),
            "ring_oldest_seq": self.ring.oldest_seq,
            "ring_bytes": self.ring.nbytes,
            "journal_bytes": self.journal.total_bytes,
            "journal_segments": len(self.journal.segments),
            "synced_seq": self.journal.synced_seq,
            "fsync": self.config.fsync,
            "rate_msgs_per_s": round(self.rate, 1),
            "accepted": self.seq.accepted,
            "duplicates_dropped": self.seq.duplicates,
            "cut_offs": self.cut_offs,
            "protocol_errors": self.protocol_errors,
            "journal_damaged_ranges": sum(len(seg.holes) for seg in self.journal.segments),
            "refused_connections": self.refused_connections,
            "uptime_s": round((time.time_ns() - self.started_ns) / 1e9, 1),
            "producers": [
                {
                    "name": c.name,
                    "source_id": c.source_id,
                    "last_source_seq": self.seq.last_source_seq.get(c.source_id, 0),
                    "acked": c.ack_sent,
                    "received": c.rx_frames,
                    "duplicates": c.duplicates,
                }
                for c in self.producers.values()
            ],
            "consumers": [  # in fan-out order
                {
                    "name": c.name,
                    "latency": c.latency.name.lower(),
                    "next_seq": c.cursor.next_seq,
                    "lag": c.cursor.lag(head),
                    "live": c.cursor.live,
                    "types": sorted(c.cursor.types or ()),
                    "sent_bytes": c.cursor.sent_bytes,
                }
                for c in self.fanout
                if c.cursor is not None
            ],
        }


def _latency_of(conn: Conn) -> int:
    return conn.latency


_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def _peer_credentials(sock: Any) -> tuple[int | None, int | None]:
    """(pid, uid) of the process at the other end of a Unix socket (Linux SO_PEERCRED)."""
    try:
        pid, uid, _ = _PEERCRED.unpack(sock.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_PEERCRED, _PEERCRED.size))
    except (OSError, AttributeError):
        return None, None
    return pid, uid


def _pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie, dead but not reaped yet, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat_line = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True  # cannot tell (out of descriptors): assume the holder lives
    state = stat_line[stat_line.rfind(b")") + 2 : stat_line.rfind(b")") + 3]
    return state not in (b"Z", b"X")


def _claim_socket_path(path: str) -> None:
    """Make ``path`` free to bind: refuse if a live relay answers there, remove a stale socket."""
    try:
        if shared_sticky_dir(Path(path).parent):
            check_socket_owner(path)  # /tmp/x.sock: nobody else may hold the name we bind
        else:
            ensure_run_dir(Path(path).parent)
    except UnsafePathError as exc:
        raise RelayError(f"unsafe runtime directory: {exc}") from None
    if not os.path.lexists(path):
        return
    if not stat.S_ISSOCK(os.lstat(path).st_mode):
        raise RelayError(f"{path} exists and is not a socket")
    probe = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        log.warning("removing stale socket %s left by a dead relay", path)
        os.unlink(path)
        return
    except TimeoutError:
        raise RelayAlreadyRunning(f"a relay listens on {path} but does not accept connections") from None
    finally:
        probe.close()
    raise RelayAlreadyRunning(f"a live relay already listens on {path}")


def _fsync_all(fds: list[int], dir_fd: int | None) -> None:
    for fd in fds:
        os.fsync(fd)
    if dir_fd is not None:
        os.fsync(dir_fd)


class _SyncThread(threading.Thread):
    """The journal's fsyncs, one commit at a time, in one long-lived thread.

    ``submit(job)`` hands over ``Journal.sync_targets()``; when the fsyncs return, ``done(job,
    error)`` is called on the event loop thread (``run_sync_soon``). A trio worker thread per
    commit cost, each time, a thread hand-off, a thread rename (prctl) and two scheduler
    passes of the syncer task: at 1,000 msgs/s, every message's.
    """

    def __init__(self, token: trio.lowlevel.TrioToken, done: Any) -> None:
        super().__init__(name="relay-fsync", daemon=True)
        self._token = token
        self._done = done
        self._cv = threading.Condition(threading.Lock())
        self._job: tuple[list[int], int, int | None] | None = None
        self._stopping = False

    def submit(self, job: tuple[list[int], int, int | None]) -> None:
        with self._cv:
            self._job = job
            self._cv.notify()

    def stop(self) -> None:
        """Finish the commit in flight (if any), then end the thread; returns once it has."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self.join()

    def run(self) -> None:
        cv = self._cv
        while True:
            with cv:
                while self._job is None and not self._stopping:
                    cv.wait()
                job, self._job = self._job, None
            if job is None:
                return
            error: BaseException | None = None
            try:
                _fsync_all(job[0], job[2])
            except Exception as exc:  # noqa: BLE001  (handed to the event loop, which stops the relay)
                error = exc
            try:
                self._token.run_sync_soon(self._done, job, error)
            except trio.RunFinishedError:
                return


async def serve(config: RelayConfig, *, task_status: trio.TaskStatus[Relay] = trio.TASK_STATUS_IGNORED) -> None:
    """Construct a ``Relay`` for ``config`` and serve it (``await nursery.start(serve, config)`` -> Relay)."""
    relay = Relay(config)
    try:
        await relay.serve(task_status=task_status)
    finally:
        relay.close()


__all__ = [
    "GoodbyeCode",
    "Relay",
    "RelayAlreadyRunning",
    "RelayConfig",
    "RelayError",
    "control_frame",
    "serve",
    "ProtocolError",
]
