"""NATS JetStream from trio: a connection, the stream per domain, and a relay-client-compatible consumer.

Why the NATS protocol directly, not nats-py
-------------------------------------------
nats-py is asyncio-only and every AlphaPulse process is a trio program. Running it
in a dedicated asyncio thread would put a thread hop (``trio.from_thread``) on every
delivery or batch, split the ownership of one connection between two event loops,
and make cancellation and errors cross a thread boundary. The NATS client protocol
is a small text protocol (``relays/core/nats.py`` parses and builds it, sans-IO) and
JetStream is request/reply on ``$JS.API.*`` subjects with JSON bodies, so speaking it
directly from trio keeps one event loop, structured concurrency (every task in a
nursery, errors propagate), and the same sans-IO-core-plus-thin-shell shape as
``relays.client``. nats-py stays a dependency as the reference we measure against
(``alphapulse bench bridge``) and interoperate with (tests publish and read with it).

What is here
------------
* ``NatsConnection.open(url, ...)``: one TCP connection to the first server of a
  comma-separated list that answers (``nats://[user:pass@]host:port``; credentials
  may instead come from a file, ``auth_file``: one line ``user:password`` or a
  token). Background tasks: the reader (dispatches messages to subscription
  callbacks, answers PINGs), the writer (one ``send_all`` for everything queued) and
  a keepalive (PING after 1 s of silence; dead after 5 s). A lost connection raises
  ``NatsDisconnected`` out of the ``async with``; callers reconnect (the bridges and
  ``JetStreamConsumer`` do, to the next server of the list).
* ``ensure_stream``, ``stream_state``, ``last_message``, ``find_stream_seq``: the domain's
  stream (a message is a batch of relay frames; ``find_stream_seq`` finds the batch holding a
  domain sequence).
* ``JetStreamConsumer``: reads a domain's stream from a stream sequence with the
  ``RelayConsumer`` interface (``batches()``, iteration, ``last_seq`` and ``from_seq``
  in domain sequences, ``counters``) plus ``runs()`` (each batch's new frames back to
  back): an ephemeral push consumer (ack none, flow control, idle heartbeats), exactly
  once and in order via ``BatchReader``; a gap, a missed heartbeat or a lost server
  recreates the consumer from the next stream sequence on any server of the cluster.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import secrets
import socket as stdsocket
import time
from array import array
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import trio

from protocol.errors import ProtocolError
from protocol.framing import split_frames
from protocol.header import Domain, read_domain_seq
from protocol.message import decode
from runtime.paths import parse_domain

from .client.shell import YIELD_AFTER
from .core.nats import (
    ERR_NO_MESSAGE,
    ERR_STREAM_NOT_FOUND,
    PING,
    PONG,
    BatchReader,
    Err,
    Info,
    JetStreamError,
    Msg,
    NatsParser,
    NatsProtocolError,
    Ok,
    Ping,
    Pong,
    StreamCursor,
    StreamGap,
    ack_stream_seq,
    api_response,
    batch_span,
    encode_connect,
    encode_pub,
    encode_sub,
    encode_unsub,
    parse_headers,
    stream_name,
    stream_subject,
)

log = logging.getLogger("relays.jetstream")

RECV_SIZE = 256 * 1024
DEFAULT_PORT = 4222


class NatsDisconnected(Exception):
    """The connection to the NATS server was lost or refused us."""


class NatsUnavailable(Exception):
    """No server of the list answered before the deadline."""


class NatsAuthError(NatsDisconnected):
    """The server refused our credentials: a configuration error that retrying cannot fix, so the
    bridges and ``JetStreamConsumer`` stop on it instead of reconnecting."""


@contextmanager
def _unwrap_single() -> Iterator[None]:
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and not isinstance(group.exceptions[0], BaseExceptionGroup):
            exc = group.exceptions[0]
            raise exc.with_traceback(exc.__traceback__) from exc.__cause__
        raise


@dataclass(frozen=True, slots=True)
class Server:
    host: str
    port: int
    user: str | None = None
    password: str | None = None


def parse_servers(url: str) -> list[Server]:
    """``nats://[user:pass@]host[:port][,nats://...]`` -> servers (the scheme may be omitted)."""
    out = []
    for part in url.split(","):
        part = part.strip()
        if not part:
            continue
        if "://" not in part:
            part = "nats://" + part
        u = urlsplit(part)
        if u.scheme not in ("nats", "tcp"):
            raise ValueError(f"unsupported NATS URL scheme {u.scheme!r} (TLS is not supported here)")
        out.append(Server(u.hostname or "127.0.0.1", u.port or DEFAULT_PORT,
                          unquote(u.username) if u.username else None, unquote(u.password) if u.password else None))
    if not out:
        raise ValueError(f"no NATS server in {url!r}")
    return out


def read_auth_file(path: str) -> dict[str, str]:
    """CONNECT credentials from a file: ``user:password`` or a bare token (first line)."""
    with open(path) as f:
        line = f.readline().strip()
    if not line:
        raise ValueError(f"{path}: empty credentials file")
    if ":" in line:
        user, _, password = line.partition(":")
        return {"user": user, "pass": password}
    return {"auth_token": line}


class NatsConnection:
    """One connection to one NATS server. ``async with NatsConnection.open(url) as nc``."""

    def __init__(self, stream: trio.SocketStream, server: Server, *, name: str) -> None:
        self.stream = stream
        self.server = server
        self.name = name
        self.info: dict[str, Any] = {}
        self._parser = NatsParser()
        self._out: list[bytes] = []
        self._out_bytes = 0
        self.queued = 0  # send() calls so far
        self.written = 0  # of those, how many the socket has taken
        # stage traces: called after each write with time.time_ns() taken right before it began (a
        # stamp taken after the write returns can come after the peer has already received it)
        self.on_written: Callable[[int], None] | None = None
        # a non-blocking duplicate of the socket: send() writes straight to it while the writer
        # task is idle (no task switch and no trio send_all per publish); the writer sends the rest
        self._raw: stdsocket.socket | None = None
        self._writer_idle = False
        # called once the messages of one read are dispatched (act once on everything that came together)
        self.after_receive: list[Callable[[], None]] = []
        self._wake = trio.Event()
        self._drained = trio.Event()
        self._pong = trio.Event()
        self._subs: dict[int, Callable[[Msg], None]] = {}
        self._next_sid = 0
        self.inbox_prefix = f"_INBOX.{secrets.token_hex(8)}"
        self._replies: dict[str, list[Any]] = {}  # token -> [Event, Msg | None]
        self._inbox_sid = 0
        self._last_rx = trio.current_time()
        self.closed = False

    # ---- opening

    @classmethod
    @asynccontextmanager
    async def open(
        cls, url: str, *, name: str = "alphapulse", auth_file: str | None = None, connect_timeout: float = 10.0,
    ) -> AsyncIterator[NatsConnection]:
        """Connect to the first server of ``url`` that answers (trying them in turn, with backoff,
        for up to ``connect_timeout`` seconds); raises ``NatsUnavailable`` if none does."""
        servers = parse_servers(url)
        auth = read_auth_file(auth_file) if auth_file else {}
        deadline = trio.current_time() + connect_timeout
        attempt = 0
        start = random.randrange(len(servers))
        while True:
            server = servers[(start + attempt) % len(servers)]
            attempt += 1
            try:
                with trio.fail_after(max(0.1, min(2.0, deadline - trio.current_time()))):
                    stream = await trio.open_tcp_stream(server.host, server.port)
            except (OSError, trio.TooSlowError) as exc:
                if trio.current_time() >= deadline:
                    raise NatsUnavailable(f"no NATS server answered at {url}: {exc}") from None
                await trio.sleep(min(0.5, 0.02 * 2 ** min(attempt, 5)))
                continue
            break
        self = cls(stream, server, name=name)
        try:
            with _unwrap_single():
                async with trio.open_nursery() as nursery:
                    await self._handshake(auth, deadline)
                    tsock = stream.socket
                    self._raw = stdsocket.socket(tsock.family, tsock.type, fileno=os.dup(tsock.fileno()))
                    self._raw.setblocking(False)
                    nursery.start_soon(self._reader)
                    nursery.start_soon(self._writer)
                    nursery.start_soon(self._keepalive)
                    self._inbox_sid = self.subscribe(self.inbox_prefix + ".*", self._on_reply)
                    try:
                        yield self
                    finally:
                        nursery.cancel_scope.cancel()
        finally:
            self.closed = True
            if self._raw is not None:
                self._raw.close()
                self._raw = None
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _handshake(self, auth: dict[str, str], deadline: float) -> None:
        server = self.server
        opts: dict[str, Any] = {
            "verbose": False, "pedantic": False, "tls_required": False, "name": self.name, "lang": "python-trio",
            "version": "1", "protocol": 1, "headers": True, "no_responders": True,
        }
        if server.user is not None:
            opts["user"] = server.user
            opts["pass"] = server.password or ""
        opts.update(auth)
        try:
            with trio.fail_after(max(0.5, deadline - trio.current_time())):
                got_info = False
                while True:
                    data = await self.stream.receive_some(RECV_SIZE)
                    if not data:
                        raise NatsDisconnected(f"{server.host}:{server.port} closed during the handshake")
                    for ev in self._parser.feed(data):
                        if isinstance(ev, Info) and not got_info:
                            got_info = True
                            self.info = ev.info
                            await self.stream.send_all(encode_connect(opts) + PING)
                        elif isinstance(ev, Pong):
                            return
                        elif isinstance(ev, Err):
                            if "authoriz" in ev.message.lower() or "authenticat" in ev.message.lower():
                                raise NatsAuthError(
                                    f"{server.host}:{server.port} refused the credentials ({ev.message}); "
                                    "check the NATS auth file")
                            raise NatsDisconnected(f"{server.host}:{server.port} refused us: {ev.message}")
        except (OSError, trio.BrokenResourceError) as exc:
            raise NatsDisconnected(f"{server.host}:{server.port}: {exc}") from None
        except trio.TooSlowError:
            raise NatsDisconnected(f"{server.host}:{server.port} did not complete the handshake") from None

    # ---- background tasks

    async def _reader(self) -> None:
        """Reads straight on the non-blocking socket, as the relay and its client do: no trio
        stream machinery per read (``receive_some`` costs a failed ``recv``, two context managers
        and a scheduler pass after every read that finds data, about as much as parsing the
        read). After a read shorter than the buffer, the socket is almost surely empty, so it
        waits for readability first (which is also the scheduler pass that lets the tasks fed by
        this read run); after a full buffer it reads again at once, yielding once per
        ``YIELD_AFTER`` of such reads so the other tasks stay served."""
        subs = self._subs
        raw = self._raw
        assert raw is not None
        wait_readable = trio.lowlevel.wait_readable
        perf = time.perf_counter
        last_pass = perf()
        drained = True  # the last read was short: wait before reading
        where = f"{self.server.host}:{self.server.port}"
        while True:
            try:
                if drained:
                    await wait_readable(raw)
                    last_pass = perf()
                elif perf() - last_pass >= YIELD_AFTER:
                    await trio.lowlevel.checkpoint()
                    last_pass = perf()
                data = raw.recv(RECV_SIZE)
            except BlockingIOError:
                drained = True
                continue
            except OSError as exc:
                raise NatsDisconnected(f"connection to {where} lost: {exc}") from None
            if not data:
                raise NatsDisconnected(f"{where} closed the connection")
            drained = len(data) < RECV_SIZE
            self._last_rx = trio.current_time()
            for ev in self._parser.feed(data):
                if type(ev) is Msg:
                    cb = subs.get(ev.sid)
                    if cb is not None:
                        cb(ev)
                elif isinstance(ev, Ping):
                    self.send(PONG)
                elif isinstance(ev, Pong):
                    self._pong.set()
                elif isinstance(ev, Err):
                    # e.g. 'Slow Consumer', 'Stale Connection', permission errors: not recoverable here
                    raise NatsDisconnected(f"server error: {ev.message}")
                elif isinstance(ev, Info | Ok):
                    pass
            for hook in self.after_receive:
                hook()

    async def _writer(self) -> None:
        while True:
            if not self._out:
                self._writer_idle = True
                try:
                    await self._wake.wait()
                finally:
                    self._writer_idle = False
            self._wake = trio.Event()
            while self._out:
                data = b"".join(self._out)
                self._out.clear()
                self._out_bytes = 0
                queued = self.queued
                began = time.time_ns() if self.on_written is not None else 0
                try:
                    await self.stream.send_all(data)
                except (OSError, trio.BrokenResourceError) as exc:
                    raise NatsDisconnected(f"cannot write to {self.server.host}:{self.server.port}: {exc}") from None
                self.written = queued
                if self.on_written is not None:
                    self.on_written(began)
            self._drained.set()

    async def _keepalive(self) -> None:
        while True:
            await trio.sleep(1.0)
            silent = trio.current_time() - self._last_rx
            if silent > 5.0:
                raise NatsDisconnected(f"{self.server.host}:{self.server.port} silent for {silent:.1f} s")
            if silent >= 1.0:
                self.send(PING)

    # ---- sending

    def send(self, data: bytes) -> None:
        self.queued += 1
        raw = self._raw
        if raw is not None and self._writer_idle and not self._out:
            # the fast path: straight to the socket (the writer is parked, so this keeps the order)
            began = time.time_ns() if self.on_written is not None else 0
            try:
                n = raw.send(data)
            except BlockingIOError:
                n = 0
            except OSError:
                n = 0  # a broken connection: the writer finds out and reports it
            if n == len(data):
                self.written = self.queued
                if self.on_written is not None:
                    self.on_written(began)
                return
            data = data[n:]
        self._out.append(data)
        self._out_bytes += len(data)
        self._wake.set()

    @property
    def unsent_bytes(self) -> int:
        return self._out_bytes

    def publish(self, subject: str, payload: bytes, *, reply: str | None = None, headers: bytes | None = None) -> None:
        """Queue a publish; the writer sends everything queued at its next turn."""
        self.send(encode_pub(subject, payload, reply, headers))

    async def drain(self, limit: int = 4 << 20) -> None:
        """Wait while more than ``limit`` bytes are queued (backpressure for a fast publisher)."""
        while self._out_bytes > limit:
            self._drained = trio.Event()
            await self._drained.wait()

    # ---- subscriptions and requests

    def subscribe(self, subject: str, callback: Callable[[Msg], None]) -> int:
        """Call ``callback(msg)`` (in the reader task: keep it short, never block) per message."""
        self._next_sid += 1
        sid = self._next_sid
        self._subs[sid] = callback
        self.send(encode_sub(subject, sid))
        return sid

    def unsubscribe(self, sid: int) -> None:
        if self._subs.pop(sid, None) is not None:
            self.send(encode_unsub(sid))

    def _on_reply(self, msg: Msg) -> None:
        slot = self._replies.get(msg.subject[len(self.inbox_prefix) + 1 :])
        if slot is not None:
            slot[1] = msg
            slot[0].set()

    def reply_subject(self, on_reply: Callable[[Msg], None]) -> tuple[str, int]:
        """A subscription of its own on a fresh inbox subject (for a stream of answers)."""
        subject = f"{self.inbox_prefix}.s{secrets.token_hex(4)}"
        return subject, self.subscribe(subject + ".*", on_reply)

    async def request(self, subject: str, payload: bytes = b"", *, reply_within: float = 5.0) -> Msg:
        token = secrets.token_hex(6)
        slot: list[Any] = [trio.Event(), None]
        self._replies[token] = slot
        try:
            self.publish(subject, payload, reply=f"{self.inbox_prefix}.{token}")
            with trio.fail_after(reply_within):
                await slot[0].wait()
        finally:
            del self._replies[token]
        msg: Msg = slot[1]
        status, desc = msg.status()
        if status == 503:
            raise JetStreamError(503, 0, f"no responders on {subject}")
        return msg

    async def js_api(self, api: str, body: dict[str, Any] | None = None, *, reply_within: float = 5.0) -> dict[str, Any]:
        payload = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        msg = await self.request(f"$JS.API.{api}", payload, reply_within=reply_within)
        return api_response(msg.payload)


# ---------------------------------------------------------------------------------------- streams


async def ensure_stream(
    nc: NatsConnection, domain: Domain, *, replicas: int = 1, max_bytes: int = -1, max_age_s: float = 0,
) -> dict[str, Any]:
    """The domain's stream (created if missing, file storage): returns its info."""
    name = stream_name(domain)
    try:
        return await nc.js_api(f"STREAM.INFO.{name}")
    except JetStreamError as exc:
        if exc.err_code != ERR_STREAM_NOT_FOUND:
            raise
    config = {
        "name": name, "subjects": [stream_subject(domain)], "storage": "file", "retention": "limits",
        "num_replicas": replicas, "max_bytes": max_bytes, "max_age": int(max_age_s * 1e9), "discard": "old",
        "duplicate_window": 120_000_000_000,
    }
    log.info("creating stream %s (%d replicas)", name, replicas)
    return await nc.js_api(f"STREAM.CREATE.{name}", config, reply_within=10.0)


async def stream_state(nc: NatsConnection, domain: Domain) -> dict[str, Any]:
    """``first_seq``, ``last_seq``, ``messages``, ... of the domain's stream."""
    info = await nc.js_api(f"STREAM.INFO.{stream_name(domain)}")
    return dict(info["state"])


async def get_message(nc: NatsConnection, domain: Domain, seq: int) -> bytes | None:
    """The payload of stream message ``seq`` (a batch of relay frames), None when the stream
    does not have it."""
    try:
        doc = await nc.js_api(f"STREAM.MSG.GET.{stream_name(domain)}", {"seq": seq})
    except JetStreamError as exc:
        if exc.err_code == ERR_NO_MESSAGE:
            return None
        raise
    return base64.b64decode(doc["message"].get("data", ""))


async def last_message(nc: NatsConnection, domain: Domain) -> tuple[int, bytes | None]:
    """``(last stream sequence, its payload)``; ``(last_seq, None)`` when the stream holds nothing."""
    st = await stream_state(nc, domain)
    last = int(st["last_seq"])
    if not st.get("messages"):
        return last, None
    return last, await get_message(nc, domain, last)


async def find_stream_seq(nc: NatsConnection, domain: Domain, domain_seq: int, state: dict[str, Any]) -> int:
    """The first stream sequence whose batch holds a frame at or above ``domain_seq`` (the
    stream's last + 1 when none does), by binary search over the retained messages: domain
    sequences increase along the stream. ``state``: the stream's ``stream_state``."""
    lo, hi = max(int(state["first_seq"]), 1), int(state["last_seq"]) + 1
    if not state.get("messages"):
        return hi
    while lo < hi:
        mid = (lo + hi) // 2
        payload = await get_message(nc, domain, mid)
        if payload is None:  # removed meanwhile (retention): everything before it is gone too
            lo = mid + 1
            continue
        if batch_span(payload)[1] >= domain_seq:
            hi = mid
        else:
            lo = mid + 1
    return lo


async def stream_position(url: str, domain: Domain, *, auth_file: str | None = None,
                          connect_timeout: float = 5.0) -> dict[str, Any]:
    """Where the domain's stream is: ``last_seq``, ``first_seq``, ``messages`` and
    ``last_domain_seq`` (the ``domain_seq`` of the last frame of its last message: what
    bridge-out has had acked)."""
    async with NatsConnection.open(url, name="relay-cli", auth_file=auth_file, connect_timeout=connect_timeout) as nc:
        last, payload = await last_message(nc, domain)
        st = await stream_state(nc, domain)
    return {"stream": stream_name(domain), "last_seq": last, "first_seq": int(st["first_seq"]),
            "messages": int(st["messages"]),
            "last_domain_seq": batch_span(payload)[1] if payload is not None else 0}


BRIDGE_OUT = "bridge-out"  # relay connection names of the bridges: "bridge-out:<domain>", "bridge-in:<domain>"
BRIDGE_IN = "bridge-in"


def bridge_rows(stats: dict[str, Any], stream: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The bridges attached to one relay (from its stats) with position and lag.

    bridge-out (a consumer of this relay): ``read`` = last domain sequence sent to it and its
    relay lag; with the stream's state, ``acked`` = the domain sequence of the stream's last
    frame and ``lag`` = head - acked. bridge-in (a producer into this relay): ``position`` = the
    last source domain sequence in this relay (its source_seq) and, with the stream's state,
    ``lag`` = the stream's last domain sequence - position.
    """
    rows: list[dict[str, Any]] = []
    head = int(stats.get("head_seq", 0))
    for c in stats.get("consumers", []):
        if str(c.get("name", "")).startswith(BRIDGE_OUT):
            row = {"name": c["name"], "direction": "out", "read": int(c["next_seq"]) - 1, "read_lag": c["lag"]}
            if stream is not None:
                row.update(acked=stream["last_domain_seq"], lag=max(0, head - stream["last_domain_seq"]))
            rows.append(row)
    for p in stats.get("producers", []):
        if str(p.get("name", "")).startswith(BRIDGE_IN):
            row = {"name": p["name"], "direction": "in", "position": int(p["last_source_seq"])}
            if stream is not None:
                row["lag"] = max(0, stream["last_domain_seq"] - row["position"])
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------- consumer


class JetStreamConsumer:
    """Read one domain's stream like ``RelayConsumer`` reads a relay: in order, exactly once.

    Positions are *domain sequences*, as with ``RelayConsumer``, and the same on every host:
    ``from_seq``: None = from now (after the stream's last message), 0 = from the oldest
    retained, N = from the frame with domain sequence N (the batch holding it is found by
    ``find_stream_seq``). ``last_seq`` is the domain sequence of the last frame handed out,
    ``stream_seq`` the stream sequence of its batch. The frames are unchanged relay frames.
    """

    def __init__(
        self, domain: str | int | Domain, url: str, *, from_seq: int | None = None, raw: bool = False,
        name: str = "", auth_file: str | None = None, idle_heartbeat: float = 1.0, connect_timeout: float = 30.0,
    ) -> None:
        self.domain = parse_domain(domain)
        self.url = url
        self.raw = raw
        self.name = name or f"js-consumer-{os.getpid()}"
        self.auth_file = auth_file
        self.idle_heartbeat = idle_heartbeat
        self.connect_timeout = connect_timeout
        self.reader = BatchReader()
        self._from = from_seq
        self._started = False
        # (first D, last D, frames, bytes) of one batch, or a flow-control reply subject
        self._queue: deque[tuple[int, int, int, bytes | memoryview] | str] = deque()
        self._wake = trio.Event()
        self._broken: str | None = None
        self._nc: NatsConnection | None = None
        self._last_activity = 0.0
        self.last_seq = 0
        self.reconnects = 0
        self.undecodable = 0  # frames that do not decode: counted, logged, skipped (as RelayConsumer does)
        self._ready = trio.Event()
        # stage traces (``bridge in --trace``): first D, last D, time_ns per batch as it arrives, flat
        self.trace: array[int] | None = None

    @classmethod
    @asynccontextmanager
    async def connect(cls, domain: str | int | Domain, url: str, **kw: Any) -> AsyncIterator[JetStreamConsumer]:
        self = cls(domain, url, **kw)
        with _unwrap_single():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._run)
                with trio.move_on_after(self.connect_timeout):
                    await self._ready.wait()
                if not self._ready.is_set():
                    raise NatsUnavailable(f"no JetStream consumer on {self.url} within {self.connect_timeout:g} s "
                                          f"(is the server up, with JetStream, and the stream created by bridge out?)")
                try:
                    yield self
                finally:
                    nursery.cancel_scope.cancel()

    @property
    def cursor(self) -> StreamCursor:
        return self.reader.cursor

    @property
    def stream_seq(self) -> int:
        return self.reader.cursor.position

    @property
    def counters(self) -> dict[str, int]:
        """Frames: delivered, duplicates, lost; stream messages (batches): received, gaps, resets,
        lag, messages_lost; and reconnects, undecodable (frames plus unreadable messages)."""
        d = self.reader.as_dict()
        d["reconnects"] = self.reconnects
        d["undecodable"] = self.undecodable + d["undecodable"]
        return d

    # ---- the connection loop

    async def _run(self) -> None:
        first = True
        while True:
            try:
                async with NatsConnection.open(self.url, name=self.name, auth_file=self.auth_file,
                                               connect_timeout=self.connect_timeout) as nc:
                    self._nc = nc
                    await self._serve(nc)
            except NatsAuthError:
                raise
            except (NatsDisconnected, NatsUnavailable, JetStreamError, trio.TooSlowError, NatsProtocolError) as exc:
                log.warning("%s: %r; reconnecting", self.name, exc)
            finally:
                self._nc = None
            if not first:
                self.reconnects += 1
            first = False
            await trio.sleep(0.1)

    async def _start(self, nc: NatsConnection, st: dict[str, Any]) -> None:
        """The first consumer: where the application asked to start, in stream and domain sequences."""
        reader = self.reader
        if self._from is None:
            last, payload = await last_message(nc, self.domain)
            reader.cursor.position = last
            reader.position = batch_span(payload)[1] if payload is not None else 0
        elif self._from <= 0:
            reader.cursor.position = max(int(st["first_seq"]), 1) - 1  # an empty stream says first_seq 0
        else:
            reader.cursor.position = await find_stream_seq(nc, self.domain, self._from, st) - 1
            reader.position = self._from - 1
        self._started = True

    async def _serve(self, nc: NatsConnection) -> None:
        while True:
            st = await stream_state(nc, self.domain)
            if not self._started:
                await self._start(nc, st)
            start = self.cursor.reset(int(st["first_seq"]))
            start = max(start, 1)
            deliver = f"{nc.inbox_prefix}.d{secrets.token_hex(4)}"
            self._broken = None
            sid = nc.subscribe(deliver, self._on_delivery)
            # What each setting costs on the path (nats-server 2.9): ack "none" -- no ack per delivery
            # to send, track or wake us for (exactly-once comes from the cursor and the relay's
            # dedupe, not from redelivery), so max_ack_pending and ack batching do not apply; flow
            # control -- the server asks for a reply once half its pending-bytes window is out (the
            # window starts at 1/16 of the server's JsFlowControlMaxPending, 1 or 32 MB by 2.x
            # release, and doubles per reply) and stalls only when a whole window is unanswered:
            # at 20,000 x 64 B/s that is tens of ms of a reader not reading, and it bounds what a
            # stuck reader buffers; idle heartbeats every second, only when nothing else is delivered: they
            # make a lost tail visible. mem_storage and one replica for the consumer's own state
            # (an ephemeral consumer's position is ours, kept by the cursor).
            config = {
                "deliver_policy": "by_start_sequence", "opt_start_seq": start, "ack_policy": "none",
                "deliver_subject": deliver, "flow_control": True, "idle_heartbeat": int(self.idle_heartbeat * 1e9),
                "mem_storage": True, "num_replicas": 1, "inactive_threshold": 10_000_000_000,
                "description": self.name,
            }
            doc = await nc.js_api(f"CONSUMER.CREATE.{stream_name(self.domain)}",
                                  {"stream_name": stream_name(self.domain), "config": config}, reply_within=10.0)
            consumer = doc.get("name", "")
            log.info("%s: consumer %s on %s:%d from stream seq %d (after domain seq %d)", self.name, consumer,
                     nc.server.host, nc.server.port, start, self.reader.position)
            self._ready.set()
            self._last_activity = trio.current_time()
            # watch: a gap reported by the delivery callback, or silence beyond 3 heartbeats
            while self._broken is None:
                await trio.sleep(self.idle_heartbeat / 2)
                if trio.current_time() - self._last_activity > 3 * self.idle_heartbeat:
                    self._broken = f"no delivery or heartbeat for {3 * self.idle_heartbeat:.1f} s"
            log.warning("%s: %s; recreating the consumer from %d", self.name, self._broken, self.cursor.position + 1)
            nc.unsubscribe(sid)
            with trio.move_on_after(2.0):
                try:
                    await nc.js_api(f"CONSUMER.DELETE.{stream_name(self.domain)}.{consumer}", reply_within=2.0)
                except JetStreamError:
                    pass

    def _on_delivery(self, msg: Msg) -> None:
        if self._broken is not None:
            return
        self._last_activity = trio.current_time()
        if msg.headers is not None and msg.headers.startswith(b"NATS/1.0 1"):
            status, desc = msg.status()
            if status == 100:
                if msg.reply:  # flow control: answered when the application has taken what came before
                    self._queue.append(msg.reply)
                    self._wake.set()
                    return
                h = parse_headers(msg.headers)
                stalled = h.get("Nats-Consumer-Stalled")
                if stalled and self._nc is not None:
                    self._queue.append(stalled)
                try:
                    self.cursor.heartbeat(int(h.get("Nats-Last-Consumer", "0")))
                except StreamGap as exc:
                    self._broken = str(exc)
                return
        if msg.reply is None:
            return
        sseq, cseq, pending = ack_stream_seq(msg.reply)
        try:
            run = self.reader.accept(sseq, cseq, pending, msg.payload)
        except StreamGap as exc:
            self._broken = str(exc)
            return
        except ProtocolError as exc:  # not relay frames (something else published on the subject)
            log.warning("%s: skipped stream sequence %d: it is not whole relay frames (%s)", self.name, sseq, exc)
            return
        if run is not None:
            if self.trace is not None:
                self.trace.extend((run[0], run[1], time.time_ns()))
            self._queue.append(run)
            self._wake.set()

    # ---- iteration

    async def runs(self, *, coalesce: int = 0) -> AsyncIterator[tuple[int, int, int, bytes | memoryview]]:
        """``(first D, last D, frames, bytes)``: the new frames of one stream message at a time,
        back to back (the cheapest form: what bridge-in forwards). ``coalesce``: join the runs
        already received that continue each other, up to that many bytes, into one (a reader
        that fell behind catches up in fewer, bigger steps; an idle one still gets each message
        as it comes, with no timer)."""
        q = self._queue
        while True:
            while not q:
                self._wake = trio.Event()
                await self._wake.wait()
            item = q.popleft()
            if type(item) is str:
                if self._nc is not None:
                    self._nc.publish(item, b"")
                continue
            first, last, count, data = item  # type: ignore[misc]
            if coalesce and q and type(q[0]) is not str and q[0][0] == last + 1:  # type: ignore[index]
                parts = [data]
                size = len(data)
                while q and type(q[0]) is not str and q[0][0] == last + 1 and size + len(q[0][3]) <= coalesce:  # type: ignore[index, arg-type]
                    _, last, n, more = q.popleft()  # type: ignore[misc]
                    parts.append(more)
                    count += n
                    size += len(more)
                if len(parts) > 1:
                    data = b"".join(parts)
            self.last_seq = last
            yield first, last, count, data

    async def batches(self) -> AsyncIterator[list[Any]]:
        """One list per stream message: raw frames (bytes), or decoded Messages."""
        async for _first, _last, count, data in self.runs():
            if count == 1:
                frames = [bytes(data)]
            else:
                offs, _ = split_frames(data)
                b = bytes(data)
                frames = [b[offs[i] : offs[i + 1]] for i in range(count)]
            if self.raw:
                yield frames
                continue
            out: list[Any] = []
            for f in frames:
                try:
                    out.append(decode(f))
                except ProtocolError as exc:  # an old stream may hold one: count, report, move past it
                    self.undecodable += 1
                    log.warning("%s: skipped domain seq %d: it does not decode (%s); %d such frames so far",
                                self.name, read_domain_seq(f), exc, self.undecodable)
            if out:
                yield out

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for batch in self.batches():
            for item in batch:
                yield item


__all__ = [
    "BRIDGE_IN", "BRIDGE_OUT", "JetStreamConsumer", "NatsConnection", "bridge_rows", "stream_position", "NatsAuthError", "NatsDisconnected", "NatsUnavailable", "Server", "ensure_stream",
    "find_stream_seq", "get_message", "last_message", "parse_servers", "read_auth_file", "stream_state",
]
