"""``alphapulse bridge out|in --domain X --nats URL``: a relay domain to and from JetStream.

Out (on the host whose relay is the source)
-------------------------------------------
Reads the domain's stream state, takes the ``domain_seq`` ``D`` of the last frame of
its last message, and consumes the relay from ``D + 1`` (from the oldest retained
message when the stream is empty). Frames are published *unchanged*, several
consecutive ones per stream message (``relays.core.nats.BatchBuilder``): a publisher
task sends a batch whenever fewer than ``--max-inflight`` batches await their ack,
holding everything read from the relay meanwhile, up to ``--batch-bytes`` -- an idle
bridge sends a frame at once, a busy one sends big batches, with no timer. Each goes
to ``alphapulse.<domain>`` with ``Nats-Msg-Id: <domain>:<epoch>:<first D>-<last D>``
(a resend after a crash is dropped by JetStream's duplicate window) and
``Nats-Expected-Last-Sequence: S - 1`` (a second bridge on the same stream, or a stale
resend, fails instead of interleaving). The bridge's position advances only on
JetStream's acknowledgement (``relays.core.nats.PublishWindow``). Any refusal, ack
timeout or lost server abandons the window and starts over from the stream's truth,
on the next server of ``--nats``.

In (on a host that wants the domain locally)
--------------------------------------------
A relay producer with a fixed ``--source-id`` that forwards every frame of every batch
with its host-A ``domain_seq`` as ``source_seq`` (``RelayProducer.forward_frames``:
CRC checked, source fields restamped, one write per batch). The relay's
``Welcome.last_source_seq`` is therefore the last ``D`` already in the local log, and
the bridge reads the stream from the batch holding ``D + 1``
(``relays.jetstream.JetStreamConsumer``, positioned by domain sequence). The relay's
own dedupe makes every frame enter the local log exactly once, across kill -9 of
either side. Payload, event/receive times and flags are kept; the header's
``source_id``/``source_seq`` are the bridge's (the relay checks them per connection).
With ``--relay-data-dir DIR`` the bridge serves that relay itself, in this process
(``relays.server.Relay`` on ``--socket``, its journal in ``DIR``), and feeds it the same
way over the same socket: one process fewer on the path, and the relay goes down and
comes back with the bridge.

Both directions keep garbage-collection pauses off the path (``_Bridge._gc_keeper``).
"""

from __future__ import annotations

import abc
import argparse
import gc
import logging
import sys
import time
from array import array
from collections import deque
from functools import partial
from typing import Any

import numpy as np
import trio

from protocol.header import HEADER_SIZE, MAX_PAYLOAD, Domain
from relays.client import RelayConsumer, RelayProducer
from relays.core.nats import (
    BatchBuilder,
    JetStreamError,
    Msg,
    NatsProtocolError,
    PublishRejected,
    PublishWindow,
    batch_span,
    publish_headers,
    stream_subject,
)
from relays.daemon import EXIT_CONFIG, EXIT_RUNNING
from relays.jetstream import (
    BRIDGE_IN,
    BRIDGE_OUT,
    JetStreamConsumer,
    NatsAuthError,
    NatsConnection,
    NatsDisconnected,
    NatsUnavailable,
    ensure_stream,
    last_message,
    read_auth_file,
)
from relays.metrics import instrument_relay
from relays.server import FSYNC_POLICIES, Relay, RelayAlreadyRunning, RelayConfig, RelayError
from runtime.errors import reraise_unwrapped
from runtime.gc_keeper import INTERVAL, SETTLE, GcKeeper
from runtime.metrics import ProcessMetrics
from runtime.paths import parse_domain, socket_path
from runtime.process import ProcessMain, Work, add_process_arguments

log = logging.getLogger("bridge")

DEFAULT_SOURCE_ID_BASE = 0xB1D60000  # bridge-in's source_id: this + domain, unless --source-id
ACK_TIMEOUT = 5.0
DEFAULT_MAX_INFLIGHT = 2  # batches awaiting JetStream's ack
DEFAULT_BATCH_BYTES = 256 * 1024  # frames per stream message, at most (JetStream's max_payload is 1 MB)
GC_SETTLE = SETTLE  # seconds after start-up before the first gc.freeze (see _Bridge._gc_keeper)
GC_FREEZE_INTERVAL = INTERVAL  # seconds between collections of the objects made since the last freeze
COALESCE_BYTES = 1 << 20  # bridge in: consecutive stream messages already received go to the relay in one write
_RETRY = (NatsDisconnected, NatsUnavailable, JetStreamError, PublishRejected, NatsProtocolError, trio.TooSlowError)


def bridge_name(direction: str, domain: Domain) -> str:
    """The relay connection name of a bridge (relay-cli stats lists these as bridges)."""
    return f"{BRIDGE_OUT if direction == 'out' else BRIDGE_IN}:{domain.name.lower()}"


class StageTrace:
    """Per-batch ``time.time_ns()`` stamps at a bridge's hops, for ``alphapulse bench bridge
    --stages`` (``--trace FILE``): kept in memory, written to ``FILE`` (numpy ``.npz``, one int64
    table per hop, each row ``first D, last D, stamps...``) when the bridge stops.

    bridge out: ``read`` (first, last, read from the relay), ``pub`` (first, last, cut into a
    batch, its write to the NATS socket began, acknowledged: the write's start, because a stamp
    taken once the write returns may come after bridge in has received it). bridge in: ``arrive`` (first, last,
    delivered by NATS), ``fwd`` (first, last, taken by the forwarding loop, written to the relay:
    stamped when ``forward_frames`` returns, which on a loaded machine can be after relay B has
    passed the frames on -- the relay client has no hook for the start of its write).
    Both: ``gc`` (generation, objects collected, start, end of each garbage collection: a pause).

    The tables are flat ``array('q')`` of plain integers, not a list per row: rows kept for the
    whole run as containers would be objects the garbage collector tracks and walks, so the
    trace itself would cause the collections it measures (it did: a 27 ms full collection).
    """

    WIDTH = {"read": 3, "pub": 5, "arrive": 3, "fwd": 4, "gc": 4}

    def __init__(self, path: str) -> None:
        self.path = path
        self.tables: dict[str, array[int]] = {}
        self._unsent: deque[tuple[int, int]] = deque()  # (send() count that covers it, index of its pub row)
        self._by_token: dict[int, int] = {}  # publish token -> index of its pub row
        self._gc_start = 0
        gc.callbacks.append(self._gc)  # ``gc``: (generation, collected, start, end) of each collection (a pause)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.time_ns()
        else:
            self.row("gc", info["generation"], info["collected"], self._gc_start, time.time_ns())

    def table(self, name: str) -> array[int]:
        t = self.tables.get(name)
        if t is None:
            t = self.tables[name] = array("q")
        return t

    def row(self, table: str, *values: int) -> int:
        """Append one row; returns the index of its first value."""
        t = self.table(table)
        at = len(t)
        t.extend(values)
        return at

    # bridge out's publishes: cut -> written -> acked
    def published(self, nc: NatsConnection, token: int, first: int, last: int, cut_ns: int) -> None:
        """Call right before the publish (one ``send`` on ``nc``), which may write it at once."""
        at = self.row("pub", first, last, cut_ns, 0, 0)
        self._unsent.append((nc.queued + 1, at))
        self._by_token[token] = at

    def written(self, nc: NatsConnection, began: int) -> None:
        """``nc.on_written``: the publishes now written get the time their write began."""
        unsent = self._unsent
        if unsent and unsent[0][0] <= nc.written:
            pub = self.tables["pub"]
            while unsent and unsent[0][0] <= nc.written:
                pub[unsent.popleft()[1] + 3] = began

    def acked(self, token: int) -> None:
        at = self._by_token.pop(token, None)
        if at is not None:
            self.tables["pub"][at + 4] = time.time_ns()

    def save(self) -> None:
        arrays: dict[str, Any] = {k: np.frombuffer(v, dtype=np.int64).reshape(-1, self.WIDTH[k]).copy()
                                  for k, v in self.tables.items()}
        np.savez(self.path, **arrays)


class _Bridge(abc.ABC):
    """What both directions hold: one domain, its JetStream (``url``, ``auth_file``) and its local relay
    (``socket``); kept across reconnects, for stats and tests. ``run(pm)`` registers the direction's
    gauges with ``pm`` (``--metrics-port``), hands ``pm`` to its relay client and runs the bridge."""

    def __init__(self, domain: Domain, url: str, socket: str | None, *, auth_file: str | None = None) -> None:
        self.domain = domain
        self.url = url
        self.socket = socket
        self.auth_file = auth_file
        self.metrics: ProcessMetrics | None = None
        self.trace: StageTrace | None = None
        self.freeze_gc = False  # the process sets it (main): it changes the whole interpreter's GC

    @abc.abstractmethod
    def observe(self, pm: ProcessMetrics) -> None: ...

    @abc.abstractmethod
    def sessions(self) -> int:
        """Connections given up so far (resynchronisations, consumer re-creations): each may have
        left reference cycles among objects frozen while they were alive (see ``_gc_keeper``)."""

    async def run(self, pm: ProcessMetrics | None = None) -> None:
        if pm is not None:
            self.observe(pm)
        self.metrics = pm
        try:
            with reraise_unwrapped():
                async with trio.open_nursery() as nursery:
                    if self.freeze_gc:
                        nursery.start_soon(self._gc_keeper)
                    await self._run()
                    nursery.cancel_scope.cancel()
        finally:
            if self.trace is not None:
                self.trace.save()

    @abc.abstractmethod
    async def _run(self) -> None: ...

    async def _gc_keeper(self) -> None:
        """No garbage-collection pauses on the path, as in the relay daemon (``runtime.gc_keeper``).

        A full collection walks every tracked object: some 40,000 once the bridge has imported
        trio, numpy and the protocol, 5-90 ms depending on the machine's load, all of it added
        to the messages in flight. What a freeze would keep for ever is a reference cycle among
        objects frozen while alive, which is what a connection torn down can leave (trio tasks,
        cancelled scopes, exceptions): so the keeper's epoch is ``sessions()``, and after a
        connection is given up its next round thaws everything first (one full collection right
        after a reconnect, when the path was interrupted anyway)."""
        keeper = GcKeeper(settle=GC_SETTLE, interval=GC_FREEZE_INTERVAL, epoch=self.sessions)
        if self.metrics is not None:
            keeper.observe(self.metrics)
        await keeper.run()


# the largest relay frame plus room for the publish headers: a stream message must hold it
LARGEST_MESSAGE = HEADER_SIZE + MAX_PAYLOAD + 4096


class ServerLimitError(Exception):
    """The NATS server cannot carry every frame a relay can hold (its ``max_payload`` is too small)."""


def check_max_payload(max_payload: int) -> int:
    """The batch limit a server's ``max_payload`` allows; refuse a server that could not take the
    largest relay frame, which a bridge would otherwise retry for ever once such a frame came."""
    if max_payload < LARGEST_MESSAGE:
        raise ServerLimitError(
            f"the NATS server's max_payload is {max_payload} bytes, below the largest relay frame "
            f"({HEADER_SIZE + MAX_PAYLOAD} bytes plus 4096 for headers); set max_payload: 2MB in its configuration")
    return max_payload - 4096


class BridgeOut(_Bridge):
    """State of one bridge-out process."""

    def __init__(self, domain: Domain, url: str, socket: str | None, *, auth_file: str | None = None,
                 replicas: int = 1, max_bytes: int = -1, max_inflight: int = DEFAULT_MAX_INFLIGHT,
                 batch_bytes: int = DEFAULT_BATCH_BYTES) -> None:
        super().__init__(domain, url, socket, auth_file=auth_file)
        self.replicas = replicas
        self.max_bytes = max_bytes
        self.max_inflight = max_inflight
        self.batch_bytes = batch_bytes
        self.window: PublishWindow | None = None
        self.builder: BatchBuilder | None = None
        self.resyncs = 0
        self._reissued_before = 0  # skipped by the builders of earlier sessions

    @property
    def reissued_skipped(self) -> int:
        """Frames a relay reissued under sequences the stream already has (skipped, not published)."""
        return self._reissued_before + (self.builder.reissued_skipped if self.builder else 0)

    def observe(self, pm: ProcessMetrics) -> None:
        """Prometheus gauges (``--metrics-port``): acknowledged position, in-flight, resyncs."""
        pm.gauge("alphapulse_bridge_acked_domain_seq", "Domain sequence of the last frame JetStream acknowledged.") \
            .set_function(lambda: self.window.position if self.window else 0)
        pm.gauge("alphapulse_bridge_stream_seq", "Stream sequence of the last batch JetStream acknowledged.") \
            .set_function(lambda: self.window.stream_position if self.window else 0)
        pm.gauge("alphapulse_bridge_inflight", "Batches published and awaiting JetStream's acknowledgement.") \
            .set_function(lambda: self.window.pending if self.window else 0)
        pm.gauge("alphapulse_bridge_resyncs", "Times the bridge started over from the stream's last message.") \
            .set_function(lambda: self.resyncs)

    def sessions(self) -> int:
        return self.resyncs

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            failed: list[BaseException] = []
            try:
                await self._session()
            except* NatsAuthError:
                raise  # the credentials are wrong: no retry can help
            except* _RETRY as group:
                failed.extend(group.exceptions)
            if not failed:
                return
            self.resyncs += 1
            pos = self.window.position if self.window else 0
            log.warning("bridge out %s: %r; resynchronising from the stream (acked up to domain seq %d)",
                        self.domain.name.lower(), failed[0], pos)
            await trio.sleep(backoff)
            backoff = min(1.0, backoff * 2)

    async def _session(self) -> None:
        name = bridge_name("out", self.domain)
        async with NatsConnection.open(self.url, name=name, auth_file=self.auth_file, connect_timeout=30.0) as nc:
            await ensure_stream(nc, self.domain, replicas=self.replicas, max_bytes=self.max_bytes)
            last_s, payload = await last_message(nc, self.domain)
            position = batch_span(payload)[1] if payload is not None else 0
            window = PublishWindow(self.domain, next_stream_seq=last_s + 1, position=position)
            old = self.window
            if old is not None:
                window.counters = old.counters
            self.window = window
            if self.builder is not None:
                self._reissued_before += self.builder.reissued_skipped
            # a batch must fit the server's max_payload (1 MB by default, too small: see check_max_payload)
            batch_bytes = max(1, min(self.batch_bytes, check_max_payload(int(nc.info.get("max_payload", 1 << 20)))))
            self.builder = builder = BatchBuilder(batch_bytes, last_added=position)
            state = _AckState()
            pub = _Publisher(nc, self.domain, window, builder, state, self.max_inflight, self.trace)
            pub.reply, sid = nc.reply_subject(pub.on_ack)
            nc.after_receive.append(pub.after_acks)
            log.info("bridge out %s -> %s:%d: stream last seq %d holds domain seqs up to %d; reading the relay from %s",
                     self.domain.name.lower(), nc.server.host, nc.server.port, last_s, position,
                     position + 1 if payload is not None else "its oldest message")
            # normal, not background: in the two-host layout (README) this bridge carries host A's market
            # data to the strategy on host B, so it is on a trading path; the local strategy and executor
            # (critical) still come first on this host
            async with RelayConsumer.connect(self.domain, self.socket, from_seq=position + 1 if payload is not None else 0,
                                             raw=True, name=name, latency="normal", metrics=self.metrics) as rc:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_ack_watchdog, window, state)
                    nursery.start_soon(pub.watch)
                    limit = batch_bytes * 4  # frames read but not yet published, at most (then stop reading)
                    trace = self.trace
                    if trace is not None:
                        nc.on_written = partial(trace.written, nc)
                    async for fb in rc.frame_batches():
                        if trace is not None:
                            trace.row("read", fb.first_seq, fb.last_seq, time.time_ns())
                        builder.add(rc.epoch, fb.first_seq, fb.view(), fb.count)
                        pub.pump()
                        while builder.pending_bytes > limit:  # the window is full for long: stop reading
                            state.room = trio.Event()
                            await state.room.wait()
                        if nc.unsent_bytes > limit:  # the socket is behind (a large --max-inflight)
                            await nc.drain(limit)
                    nursery.cancel_scope.cancel()
            nc.unsubscribe(sid)


class _AckState:
    def __init__(self) -> None:
        self.failure: PublishRejected | None = None
        self.wake = trio.Event()  # the watcher: a publish failed
        self.room = trio.Event()  # the relay reader: frames left the builder
        self.last_progress = trio.current_time()


class _Publisher:
    """Bridge out's publishing, driven where frames and acks arrive: ``pump()`` publishes batches
    while fewer than ``max_inflight`` await their ack -- right after a relay read, and once the
    acks of one read from NATS are applied (``on_ack`` per ack, then ``after_acks``, in the
    connection's reader) -- with no task in between, so a frame that finds the window open leaves
    in the same scheduler turn it arrived in. Frames that arrive while the window is full wait
    and go out together in the next batch (up to ``batch_bytes``): the batch size follows the
    rate and an idle bridge sends at once, with no timer. ``watch()`` raises a refusal as soon
    as one arrives."""

    def __init__(self, nc: NatsConnection, domain: Domain, window: PublishWindow, builder: BatchBuilder,
                 state: _AckState, max_inflight: int, trace: StageTrace | None) -> None:
        self.nc = nc
        self.subject = stream_subject(domain)
        self.domain = int(domain)
        self.window = window
        self.builder = builder
        self.state = state
        self.max_inflight = max_inflight
        self.trace = trace
        self.reply = ""
        self._acked = False

    def pump(self) -> None:
        state, window, builder = self.state, self.window, self.builder
        if state.failure is not None or not builder or window.pending >= self.max_inflight:
            return
        publish, trace, max_inflight = self.nc.publish, self.trace, self.max_inflight
        while builder and window.pending < max_inflight:
            if not window.pending:
                state.last_progress = trio.current_time()
            epoch, first, last, payload = builder.cut()
            token, expected = window.add(first, last)
            if trace is not None:  # before the publish: it may be written at once
                trace.published(self.nc, token, first, last, time.time_ns())
            publish(self.subject, payload, reply=f"{self.reply}.{token}",
                    headers=publish_headers(self.domain, epoch, first, expected, last))
        state.room.set()

    def on_ack(self, msg: Msg) -> None:
        state, window = self.state, self.window
        state.last_progress = trio.current_time()
        status, desc = msg.status()
        token = int(msg.subject.rsplit(".", 1)[1])
        if self.trace is not None:
            self.trace.acked(token)
        try:
            if status:
                window.inflight.pop(token, None)
                raise PublishRejected(f"publish answered with status {status} {desc}")
            window.ack(token, msg.payload)
        except PublishRejected as exc:
            if state.failure is None:
                state.failure = exc
            state.wake.set()
            return
        self._acked = True

    def after_acks(self) -> None:
        if self._acked:
            self._acked = False
            self.pump()

    async def watch(self) -> None:
        while self.state.failure is None:
            self.state.wake = trio.Event()
            await self.state.wake.wait()
        raise self.state.failure


async def _ack_watchdog(window: PublishWindow, state: _AckState) -> None:
    while True:
        await trio.sleep(0.5)
        if state.failure is not None:
            state.wake.set()
            raise state.failure
        if window.pending and trio.current_time() - state.last_progress > ACK_TIMEOUT:
            raise PublishRejected(f"no acknowledgement for {ACK_TIMEOUT} s with {window.pending} publishes in flight")


class BridgeIn(_Bridge):
    """State of one bridge-in process."""

    def __init__(self, domain: Domain, url: str, socket: str | None, *, source_id: int, auth_file: str | None = None,
                 relay: RelayConfig | None = None) -> None:
        super().__init__(domain, url, socket if relay is None else relay.socket_path, auth_file=auth_file)
        self.source_id = source_id
        self.relay_config = relay  # serve the local relay in this process (``--relay-data-dir``)
        self.relay: Relay | None = None
        self.consumer: JetStreamConsumer | None = None
        self.jumps = 0
        self.damaged = 0

    def observe(self, pm: ProcessMetrics) -> None:
        """Prometheus gauges (``--metrics-port``): stream position in the local relay, lag, gaps."""
        def counter(key: str) -> int:
            return int(self.consumer.counters[key]) if self.consumer else 0

        pm.gauge("alphapulse_bridge_stream_seq", "Stream sequence of the last batch handed to the local relay.") \
            .set_function(lambda: self.consumer.stream_seq if self.consumer else 0)
        pm.gauge("alphapulse_bridge_domain_seq", "Domain sequence of the last frame handed to the local relay.") \
            .set_function(lambda: self.consumer.last_seq if self.consumer else 0)
        pm.gauge("alphapulse_bridge_lag_messages", "Stream messages (batches) after the last one received.") \
            .set_function(lambda: counter("lag"))
        pm.gauge("alphapulse_bridge_gaps", "Gaps in JetStream deliveries (each recovered by a new consumer).") \
            .set_function(lambda: counter("gaps"))
        pm.gauge("alphapulse_bridge_lost", "Domain sequences the stream did not have when read (retention).") \
            .set_function(lambda: counter("lost"))
        pm.gauge("alphapulse_bridge_damaged", "Frames skipped because their checksum or header was wrong.") \
            .set_function(lambda: self.damaged)

    def sessions(self) -> int:
        c = self.consumer
        return c.reconnects + c.cursor.counters.resets if c is not None else 0

    async def _run(self) -> None:
        if self.relay_config is None:
            await self._feed()
            return
        # The relay this bridge feeds runs in this process (one process fewer on the path, and
        # the bridge's writes and the relay's acks cross no process boundary): the same relay,
        # socket, journal, producer protocol and dedupe as ``alphapulse relay``, so local
        # consumers see no difference and a restart resumes exactly as with two processes.
        relay = self.relay = Relay(self.relay_config)
        try:
            if self.metrics is not None:
                instrument_relay(relay, self.metrics)
            async with trio.open_nursery() as nursery:
                await nursery.start(relay.serve)
                await self._feed()
                nursery.cancel_scope.cancel()
        finally:
            relay.close()

    async def _feed(self) -> None:
        name = bridge_name("in", self.domain)
        async with RelayProducer.connect(self.domain, self.socket, source_id=self.source_id, name=name,
                                         metrics=self.metrics) as p:
            resume = p.last_source_seq
            log.info("bridge in %s: the local relay holds domain seqs up to %d; reading the stream from %s",
                     self.domain.name.lower(), resume, resume + 1 if resume else "its oldest message")
            async with JetStreamConsumer.connect(self.domain, self.url, from_seq=resume + 1 if resume else 0,
                                                 raw=True, name=name, auth_file=self.auth_file) as c:
                self.consumer = c
                core = p.core
                forward = p.forward_frames
                trace = self.trace
                if trace is not None:
                    c.trace = trace.table("arrive")
                async for first, last, _count, data in c.runs(coalesce=COALESCE_BYTES):
                    if first != core.next_seq and core.next_seq > 1:
                        # the stream does not have some domain sequences (its retention, or a
                        # bridge-out that lost them on the source host): the relay takes the jump
                        log.warning("bridge in: domain seq jumps from %d to %d", core.next_seq - 1, first)
                        self.jumps += 1
                    if trace is not None:
                        taken = time.time_ns()
                        _, _, damaged = await forward(data)
                        trace.row("fwd", first, last, taken, time.time_ns())
                    else:
                        _, _, damaged = await forward(data)
                    for d, why in damaged:
                        self.damaged += 1
                        log.error("bridge in: skipped domain seq %d from the stream: %s (%d such frames so far)",
                                  d, why, self.damaged)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alphapulse bridge", description="bridge one relay domain to/from NATS JetStream")
    sub = p.add_subparsers(dest="direction", required=True)
    for direction, help_ in (("out", "publish a local relay's frames to the domain's JetStream stream"),
                             ("in", "feed a local relay from the domain's JetStream stream")):
        s = sub.add_parser(direction, help=help_)
        s.add_argument("--domain", required=True, help="market_data, signal or execution")
        s.add_argument("--nats", required=True, metavar="URL",
                       help="nats://host:port[,nats://host2:port...] (no credentials here: use --nats-auth-file)")
        s.add_argument("--nats-auth-file", default=None, metavar="FILE",
                       help="file whose first line is user:password or a token")
        s.add_argument("--socket", default=None, help="the local relay's socket (default: the domain's)")
        s.add_argument("--trace", default=None, metavar="FILE",
                       help="keep per-batch timestamps at each hop and write them to FILE (.npz) on exit "
                            "(alphapulse bench bridge --stages)")
        add_process_arguments(s)
        if direction == "out":
            s.add_argument("--replicas", type=int, default=1, help="replicas when this bridge creates the stream")
            s.add_argument("--max-bytes", type=int, default=-1, help="stream size limit when creating it (-1: none)")
            s.add_argument("--max-inflight", type=int, default=DEFAULT_MAX_INFLIGHT,
                           help=f"batches awaiting an ack at most (default {DEFAULT_MAX_INFLIGHT})")
            s.add_argument("--batch-bytes", type=int, default=DEFAULT_BATCH_BYTES,
                           help=f"frames per stream message, in bytes at most (default {DEFAULT_BATCH_BYTES}; "
                                "a bigger frame goes alone)")
        else:
            s.add_argument("--source-id", type=int, default=None,
                           help=f"the bridge's producer id in the local relay (default {DEFAULT_SOURCE_ID_BASE:#x} + domain)")
            s.add_argument("--relay-data-dir", default=None, metavar="DIR",
                           help="serve the domain's local relay in this process, its journal in DIR, on --socket "
                                "(instead of a separate `alphapulse relay`: one process fewer on the path)")
            s.add_argument("--relay-fsync", choices=FSYNC_POLICIES, default="interval",
                           help="with --relay-data-dir: the relay's fsync policy (default interval: the stream "
                                "holds everything the relay does; see specs/relay.md)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)

    def prepare() -> Work:
        domain = parse_domain(args.domain)
        if "@" in args.nats:
            log.warning("credentials in --nats end up in process listings and unit files; use --nats-auth-file")
        if args.nats_auth_file:
            read_auth_file(args.nats_auth_file)  # unreadable or empty: refuse at start-up
        worker: BridgeOut | BridgeIn
        if args.direction == "out" and (args.max_inflight < 1 or args.batch_bytes < HEADER_SIZE):
            raise ValueError(f"--max-inflight must be at least 1 and --batch-bytes at least {HEADER_SIZE}")
        if args.direction == "out":
            worker = BridgeOut(domain, args.nats, args.socket, auth_file=args.nats_auth_file, replicas=args.replicas,
                               max_bytes=args.max_bytes, max_inflight=args.max_inflight,
                               batch_bytes=args.batch_bytes)
        else:
            sid = args.source_id if args.source_id is not None else DEFAULT_SOURCE_ID_BASE + int(domain)
            relay = None
            if args.relay_data_dir:
                # the process owns its interpreter: the bridge's GC keeper covers the relay's objects too
                relay = RelayConfig(domain=domain, socket_path=args.socket or str(socket_path(domain)),
                                    data_dir=args.relay_data_dir, fsync=args.relay_fsync)
            worker = BridgeIn(domain, args.nats, args.socket, source_id=sid, auth_file=args.nats_auth_file,
                              relay=relay)
        if args.trace:
            worker.trace = StageTrace(args.trace)
        worker.freeze_gc = True
        return worker.run

    return ProcessMain(f"alphapulse bridge {args.direction}", f"bridge-{args.direction}",
                       errors={ServerLimitError: 2, NatsAuthError: 2, NatsUnavailable: 1, RelayAlreadyRunning: EXIT_RUNNING,
                               RelayError: EXIT_CONFIG},
                       prepare_errors={(ValueError, OSError, RelayError): 2},
                       gc_keeper=False).run(args, prepare)  # the bridge runs its own (epoch: sessions)


if __name__ == "__main__":
    sys.exit(main())
