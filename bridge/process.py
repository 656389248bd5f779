"""``alphapulse bridge out|in --domain X --nats URL``: a relay domain to and from JetStream.

Out (on the host whose relay is the source)
-------------------------------------------
Reads the domain's stream state, takes the ``domain_seq`` ``D`` of the last frame it
holds, and consumes the relay from ``D + 1`` (from the oldest retained message when
the stream is empty). Every frame is published *unchanged* to ``alphapulse.<domain>``
with ``Nats-Msg-Id: <domain>:<epoch>:<D>`` (a resend after a crash is dropped by
JetStream's duplicate window) and ``Nats-Expected-Last-Sequence: S - 1`` (a second
bridge on the same stream, or a stale resend, fails instead of interleaving). Up to
``--max-inflight`` publishes are pipelined; the bridge's position advances only on
JetStream's acknowledgement (``relays.core.nats.PublishWindow``). Any refusal, ack
timeout or lost server abandons the window and starts over from the stream's truth,
on the next server of ``--nats``.

In (on a host that wants the domain locally)
--------------------------------------------
A relay producer with a fixed ``--source-id`` whose ``source_seq`` *is* the stream
sequence: the relay's ``Welcome.last_source_seq`` is therefore the last stream
sequence already in the local log, and the bridge reads the stream from the next one
(``relays.jetstream.JetStreamConsumer``). The relay's own dedupe makes every stream
message enter the local log exactly once, across kill -9 of either side. Payload,
event/receive times and flags are kept; the header's ``source_id``/``source_seq`` are
the bridge's (the relay checks them per connection).
"""

from __future__ import annotations

import abc
import argparse
import logging
import sys
from functools import partial

import trio

from protocol.header import HEADER_SIZE, Domain, read_header
from relays.client import RelayConsumer, RelayProducer
from relays.core.nats import (
    JetStreamError,
    Msg,
    NatsProtocolError,
    PublishRejected,
    PublishWindow,
    frame_domain_seq,
    publish_headers,
    stream_subject,
)
from relays.jetstream import (
    BRIDGE_IN,
    BRIDGE_OUT,
    JetStreamConsumer,
    NatsConnection,
    NatsDisconnected,
    NatsUnavailable,
    ensure_stream,
    last_frame,
    read_auth_file,
)
from runtime.metrics import ProcessMetrics
from runtime.paths import parse_domain
from runtime.process import ProcessMain, Work, add_process_arguments

log = logging.getLogger("bridge")

DEFAULT_SOURCE_ID_BASE = 0xB1D60000  # bridge-in's source_id: this + domain, unless --source-id
ACK_TIMEOUT = 5.0
_RETRY = (NatsDisconnected, NatsUnavailable, JetStreamError, PublishRejected, NatsProtocolError, trio.TooSlowError)


def bridge_name(direction: str, domain: Domain) -> str:
    """The relay connection name of a bridge (relay-cli stats lists these as bridges)."""
    return f"{BRIDGE_OUT if direction == 'out' else BRIDGE_IN}:{domain.name.lower()}"


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

    @abc.abstractmethod
    def observe(self, pm: ProcessMetrics) -> None: ...

    async def run(self, pm: ProcessMetrics | None = None) -> None:
        if pm is not None:
            self.observe(pm)
        self.metrics = pm
        await self._run()

    @abc.abstractmethod
    async def _run(self) -> None: ...


class BridgeOut(_Bridge):
    """State of one bridge-out process."""

    def __init__(self, domain: Domain, url: str, socket: str | None, *, auth_file: str | None = None,
                 replicas: int = 1, max_bytes: int = -1, max_inflight: int = 20000) -> None:
        super().__init__(domain, url, socket, auth_file=auth_file)
        self.replicas = replicas
        self.max_bytes = max_bytes
        self.max_inflight = max_inflight
        self.window: PublishWindow | None = None
        self.resyncs = 0
        self.reissued_skipped = 0

    def observe(self, pm: ProcessMetrics) -> None:
        """Prometheus gauges (``--metrics-port``): acknowledged position, in-flight, resyncs."""
        pm.gauge("alphapulse_bridge_acked_domain_seq", "Domain sequence of the last frame JetStream acknowledged.") \
            .set_function(lambda: self.window.position if self.window else 0)
        pm.gauge("alphapulse_bridge_stream_seq", "Stream sequence of the last frame JetStream acknowledged.") \
            .set_function(lambda: self.window.stream_position if self.window else 0)
        pm.gauge("alphapulse_bridge_inflight", "Publishes awaiting JetStream's acknowledgement.") \
            .set_function(lambda: self.window.pending if self.window else 0)
        pm.gauge("alphapulse_bridge_resyncs", "Times the bridge started over from the stream's last message.") \
            .set_function(lambda: self.resyncs)

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            failed: list[BaseException] = []
            try:
                await self._session()
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
            last_s, fr = await last_frame(nc, self.domain)
            position = frame_domain_seq(fr) if fr is not None else 0
            window = PublishWindow(self.domain, next_stream_seq=last_s + 1, position=position)
            old = self.window
            if old is not None:
                window.counters = old.counters
            self.window = window
            state = _AckState()
            reply, sid = nc.reply_subject(partial(_on_ack, window, state))
            subject = stream_subject(self.domain)
            domain = int(self.domain)
            publish = nc.publish
            log.info("bridge out %s -> %s:%d: stream last seq %d holds domain seq %d; reading the relay from %s",
                     self.domain.name.lower(), nc.server.host, nc.server.port, last_s, position,
                     position + 1 if fr is not None else "its oldest message")
            async with RelayConsumer.connect(self.domain, self.socket, from_seq=position + 1 if fr is not None else 0,
                                             raw=True, name=name, metrics=self.metrics) as rc:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_ack_watchdog, window, state)
                    async for batch in rc.batches():
                        epoch = rc.epoch
                        if not window.pending:
                            state.last_progress = trio.current_time()
                        for frame in batch:
                            d = frame_domain_seq(frame)
                            if d <= window.last_added:
                                # a relay that lost an un-fsynced tail reissued sequences the stream has
                                self.reissued_skipped += 1
                                continue
                            token, expected = window.add(d)
                            publish(subject, frame, reply=f"{reply}.{token}",
                                    headers=publish_headers(domain, epoch, d, expected))
                        if state.failure is not None:
                            raise state.failure
                        while window.pending > self.max_inflight:
                            state.wake = trio.Event()
                            await state.wake.wait()
                            if state.failure is not None:
                                raise state.failure
                        await nc.drain()
                    nursery.cancel_scope.cancel()
            nc.unsubscribe(sid)


class _AckState:
    def __init__(self) -> None:
        self.failure: PublishRejected | None = None
        self.wake = trio.Event()
        self.last_progress = trio.current_time()


def _on_ack(window: PublishWindow, state: _AckState, msg: Msg) -> None:
    state.last_progress = trio.current_time()
    status, desc = msg.status()
    token = int(msg.subject.rsplit(".", 1)[1])
    try:
        if status:
            window.inflight.pop(token, None)
            raise PublishRejected(f"publish answered with status {status} {desc}")
        window.ack(token, msg.payload)
    except PublishRejected as exc:
        if state.failure is None:
            state.failure = exc
    state.wake.set()


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

    def __init__(self, domain: Domain, url: str, socket: str | None, *, source_id: int, auth_file: str | None = None) -> None:
        super().__init__(domain, url, socket, auth_file=auth_file)
        self.source_id = source_id
        self.consumer: JetStreamConsumer | None = None
        self.jumps = 0

    def observe(self, pm: ProcessMetrics) -> None:
        """Prometheus gauges (``--metrics-port``): stream position in the local relay, lag, gaps."""
        def counter(key: str) -> int:
            return int(self.consumer.counters[key]) if self.consumer else 0

        pm.gauge("alphapulse_bridge_stream_seq", "Last stream sequence handed to the local relay.") \
            .set_function(lambda: self.consumer.last_seq if self.consumer else 0)
        pm.gauge("alphapulse_bridge_lag_messages", "Messages in the stream after the last one received.") \
            .set_function(lambda: counter("lag"))
        pm.gauge("alphapulse_bridge_gaps", "Gaps in JetStream deliveries (each recovered by a new consumer).") \
            .set_function(lambda: counter("gaps"))
        pm.gauge("alphapulse_bridge_lost", "Stream messages removed by retention before they were read.") \
            .set_function(lambda: counter("lost"))

    async def _run(self) -> None:
        name = bridge_name("in", self.domain)
        async with RelayProducer.connect(self.domain, self.socket, source_id=self.source_id, name=name,
                                         metrics=self.metrics) as p:
            resume = p.last_source_seq
            log.info("bridge in %s: the local relay holds stream seqs up to %d; reading the stream from %s",
                     self.domain.name.lower(), resume, resume + 1 if resume else "its oldest message")
            async with JetStreamConsumer.connect(self.domain, self.url, from_seq=resume + 1 if resume else 0,
                                                 raw=True, name=name, auth_file=self.auth_file) as c:
                self.consumer = c
                core = p.core
                publish = p.publish_payload
                async for first, frames in c.stream_batches():
                    s = first
                    for fr in frames:
                        if s != core.next_seq:
                            # the stream no longer had some sequences (its retention): keep source_seq == S
                            log.warning("bridge in: stream jumps from %d to %d", core.next_seq - 1, s)
                            self.jumps += 1
                            core.next_seq = s
                        h = read_header(fr)
                        await publish(fr[HEADER_SIZE:], event_time_ns=h.event_time_ns,
                                      receive_time_ns=h.receive_time_ns, flags=h.flags)
                        s += 1


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
        add_process_arguments(s)
        if direction == "out":
            s.add_argument("--replicas", type=int, default=1, help="replicas when this bridge creates the stream")
            s.add_argument("--max-bytes", type=int, default=-1, help="stream size limit when creating it (-1: none)")
            s.add_argument("--max-inflight", type=int, default=20000, help="publishes awaiting an ack at most")
        else:
            s.add_argument("--source-id", type=int, default=None,
                           help=f"the bridge's producer id in the local relay (default {DEFAULT_SOURCE_ID_BASE:#x} + domain)")
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
        if args.direction == "out":
            worker = BridgeOut(domain, args.nats, args.socket, auth_file=args.nats_auth_file, replicas=args.replicas,
                               max_bytes=args.max_bytes, max_inflight=args.max_inflight)
        else:
            sid = args.source_id if args.source_id is not None else DEFAULT_SOURCE_ID_BASE + int(domain)
            worker = BridgeIn(domain, args.nats, args.socket, source_id=sid, auth_file=args.nats_auth_file)
        return worker.run

    return ProcessMain(f"alphapulse bridge {args.direction}", f"bridge-{args.direction}",
                       prepare_errors={(ValueError, OSError): 2}).run(args, prepare)


if __name__ == "__main__":
    sys.exit(main())
