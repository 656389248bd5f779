"""The relay client every AlphaPulse process uses: one producer class, one consumer class.

Producing
---------
::

    from relays.client import RelayProducer
    from protocol import Trade

    async with RelayProducer.connect("market_data", source_id=17, name="cex-binance") as p:
        seq = await p.publish(Trade(...), event_time_ns=venue_ns, receive_time_ns=time.time_ns())
        await p.flush()          # optional: wait until the relay has persisted everything so far

``RelayProducer.connect(domain, socket_path=None, *, source_id, name="", linger=5.0,
max_unacked_bytes=64 MiB, backoff=Backoff(), heartbeat_interval=0.25, dead_after=8,
connect_timeout=None)`` connects (retrying with exponential backoff; ``connect_timeout``
None waits forever) and returns once the relay said Welcome.

* ``await p.publish(tlv_or_tlvs, *, event_time_ns=None, receive_time_ns=None, flags=0) -> source_seq``
  stamps the next source sequence and appends the frame to the outbox; a writer task
  sends the outbox in batches. It only waits when more than ``max_unacked_bytes`` are
  unacknowledged. Times default to ``time.time_ns()``.
* ``await p.publish_payload(tlv_bytes, ...)``: same with pre-encoded TLV bytes.
* ``await p.forward_frames(frames) -> (taken, last source_seq, damaged)``: frames another
  relay sequenced (back to back), republished under this producer with each frame's
  ``domain_seq`` as its ``source_seq``, one outbox entry per call (what ``bridge in`` does;
  ``unacked`` then counts such batches).
* ``await p.flush()``: wait until everything published so far is acknowledged (journaled,
  and fsynced when the relay runs ``--fsync batch`` or ``interval``: under ``interval`` that
  is up to one ``--fsync-interval`` later).
* After any disconnect (relay restart, ``kill -9``) the producer reconnects and resends its
  unacknowledged tail; the relay drops what it already has, so each message enters the log
  exactly once. A restarted producer process continues its ``source_seq`` from the relay's
  ``Welcome.last_source_seq``: the producer persists nothing itself.
* ``p.counters`` (published, acked, resent, reconnects, unacked), ``p.last_source_seq``.
* Leaving the block normally waits up to ``linger`` seconds for the outstanding acks.

Consuming
---------
::

    from relays.client import RelayConsumer

    async with RelayConsumer.connect("market_data", from_seq=None, types={1, 4}, name="strategy") as c:
        async for msg in c:               # protocol.Message, domain_seq set, in order, exactly once
            ...
        # or, faster: async for batch in c.batches(): ...   (lists)
        # fastest (raw=True): async for fb in c.frame_batches(): ...   (FrameBatch: first_seq,
        #   count, data[start:stop] holding the frames back to back; .frames() / .decode() split)

``RelayConsumer.connect(domain, socket_path=None, *, from_seq=None, types=None, name="",
raw=False, latency="normal", backoff=Backoff(), heartbeat_interval=0.25, dead_after=8, connect_timeout=None)``

* ``from_seq``: None = from now; 0 = from the oldest retained; N = from sequence N.
* ``types``: None = everything, else a set of TLV type codes (the first TLV of a message).
* ``raw=True`` yields the raw frame ``bytes`` instead of decoded Messages (archiving,
  bridging): byte-identical to the journal.
* ``latency``: ``"critical"`` (the trading path), ``"normal"`` or ``"background"`` (bookkeeping,
  observers): the relay serves each new frame to its consumers in that order (specs/relay.md,
  "Fan-out order"); it never changes what is delivered. Anything else is a ``ValueError``.
* Reconnects and relay restarts are invisible apart from the counters: the consumer resumes
  from ``c.last_seq + 1`` (ring, then journal), drops duplicates, and detects gaps (a gap on a
  connection, or an idle relay heartbeat ahead of us) by reconnecting and resuming. If the
  relay no longer has the sequences (retention), it says ``Resync`` and the counters show
  how many messages were ``lost``; ``c.core.delivered`` is a RangeSet of delivered sequences
  whose holes are exactly those.
* ``c.last_seq``, ``c.epoch``, ``c.counters`` (received, delivered, duplicates, gaps,
  gaps_recovered, resyncs, lost, reconnects, epoch_changes, lag).

Relay stats (relay-cli)
-----------------------
``await request_stats(domain, socket_path=None) -> dict`` (bound it with ``trio.fail_after``): epoch, head_seq,
oldest_seq, rate_msgs_per_s, producers (source_id, last_source_seq, acked, received) and
consumers in fan-out order (name, latency, next_seq, lag, live, types).

Metrics
-------
Both classes (and their ``connect``) take ``metrics=``: an observer (``ClientObserver``: one
method, ``attach(client)``, called once at construction) that reads the client's counters when
it wants to, e.g. ``runtime.metrics.ProcessMetrics`` at scrape time. Nothing is patched; a
client without an observer is not counted.

Default sockets come from ``runtime.paths.socket_path(domain)``
(``$ALPHAPULSE_RUN_DIR`` or ``/tmp/alphapulse-$UID``, ``<domain>.sock``).

Exceptions
----------
::

    RelayUnavailable     connect_timeout expired before the relay answered
    (nothing else)       connection errors (OSError, trio.BrokenResourceError, protocol errors,
                         gaps, Goodbye) are handled inside: log, reconnect, resume

The sans-IO cores (``ConsumerCore``, ``ProducerCore``, ``Liveness``) are in ``core.py``.
"""

from .core import (
    LATENCY_CLASSES,
    ConsumerCore,
    ConsumerCounters,
    FrameBatch,
    Liveness,
    ProducerCore,
    StreamBroken,
    latency_class,
)
from .shell import Backoff, ClientObserver, RelayConsumer, RelayProducer, RelayUnavailable, request_stats

__all__ = [
    "Backoff",
    "ClientObserver",
    "ConsumerCore",
    "ConsumerCounters",
    "LATENCY_CLASSES",
    "FrameBatch",
    "Liveness",
    "ProducerCore",
    "RelayConsumer",
    "RelayProducer",
    "RelayUnavailable",
    "StreamBroken",
    "latency_class",
    "request_stats",
]
