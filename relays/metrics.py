"""The relay daemon's metrics, read from ``Relay`` state at scrape time (nothing on the hot path).

``instrument_relay(relay, pm)`` adds to the process's ``ProcessMetrics``, all labelled ``domain``:

* ``alphapulse_messages_in_total``: messages accepted from producers (sequenced; duplicates excluded)
* ``alphapulse_messages_out_total``: sequences consumers moved past (each consumer counts; a
  type-filtered consumer also counts the sequences it skipped); consumers that disconnected
  keep counting in (``Relay.departed_sent_frames``)
* ``alphapulse_relay_sent_bytes_total``: bytes sent to consumers (same caveat on disconnects)
* ``alphapulse_relay_duplicates_dropped_total``, ``alphapulse_relay_cut_offs_total``,
  ``alphapulse_relay_protocol_errors_total``
* ``alphapulse_relay_consumers`` / ``alphapulse_relay_producers``: connected now
* ``alphapulse_relay_consumer_lag_messages{consumer}``: head - next sequence, per consumer name;
  ``alphapulse_relay_max_consumer_lag_messages``: the largest
* ``alphapulse_relay_head_seq``, ``alphapulse_relay_synced_seq``, ``alphapulse_relay_oldest_seq``,
  ``alphapulse_relay_journal_bytes``, ``alphapulse_relay_ring_bytes``, ``alphapulse_relay_epoch``,
  ``alphapulse_relay_rate_messages_per_second``
"""

from __future__ import annotations

from collections.abc import Iterator

from runtime.metrics import CounterMetricFamily, GaugeMetricFamily, Metric, ProcessMetrics, domain_name

from .server import Relay

# (key in Relay.stats(), metric name after alphapulse_relay_, help)
_COUNTERS = (
    ("duplicates_dropped", "duplicates_dropped", "Frames dropped as already sequenced (producer resends)."),
    ("cut_offs", "cut_offs", "Live consumers cut off for falling off the ring."),
    ("protocol_errors", "protocol_errors", "Connections dropped for protocol errors."),
)
_GAUGES = (
    ("head_seq", "head_seq", "Last sequence assigned."),
    ("synced_seq", "synced_seq", "Last sequence fsynced to the journal."),
    ("oldest_seq", "oldest_seq", "Oldest sequence still retained (ring or journal)."),
    ("journal_bytes", "journal_bytes", "Journal size on disk."),
    ("ring_bytes", "ring_bytes", "Bytes held in the in-memory ring."),
    ("epoch", "epoch", "Relay epoch (bumped on every start)."),
    ("rate_msgs_per_s", "rate_messages_per_second", "Accepted messages per second (last tick)."),
)


def _sent(relay: Relay) -> tuple[int, int]:
    frames, nbytes = relay.departed_sent_frames, relay.departed_sent_bytes
    for c in list(relay.consumers):
        if c.cursor is not None:
            frames += c.cursor.sent_frames
            nbytes += c.cursor.sent_bytes
    return frames, nbytes


def instrument_relay(relay: Relay, pm: ProcessMetrics) -> None:
    d = domain_name(relay.domain)
    pm.count_messages(lambda: [(d, relay.seq.accepted, _sent(relay)[0])])

    def collect() -> Iterator[Metric]:
        s = relay.stats()
        sent_bytes = CounterMetricFamily("alphapulse_relay_sent_bytes_total", "Bytes sent to consumers.",
                                         labels=["domain"])
        sent_bytes.add_metric([d], _sent(relay)[1])
        yield sent_bytes
        for key, metric, text in _COUNTERS:
            yield _one(CounterMetricFamily, f"alphapulse_relay_{metric}_total", text, d, s.get(key, 0))
        yield _one(GaugeMetricFamily, "alphapulse_relay_consumers", "Consumers connected now.", d,
                   len(s.get("consumers", ())))
        yield _one(GaugeMetricFamily, "alphapulse_relay_producers", "Producers connected now.", d,
                   len(s.get("producers", ())))
        for key, metric, text in _GAUGES:
            v = s.get(key)
            if isinstance(v, (int, float)):
                yield _one(GaugeMetricFamily, f"alphapulse_relay_{metric}", text, d, v)
        per: dict[str, int] = {}
        for c in s.get("consumers", ()):
            name = str(c.get("name", ""))
            per[name] = max(per.get(name, 0), int(c.get("lag", 0)))
        lag = GaugeMetricFamily("alphapulse_relay_consumer_lag_messages",
                                "Relay head minus a consumer's next sequence.", labels=["domain", "consumer"])
        for name, v in sorted(per.items()):
            lag.add_metric([d, name], v)
        yield lag
        yield _one(GaugeMetricFamily, "alphapulse_relay_max_consumer_lag_messages", "The largest consumer lag.", d,
                   max(per.values(), default=0))

    pm.collect(collect)


def _one(kind: type[CounterMetricFamily] | type[GaugeMetricFamily], name: str, text: str, domain: str,
         value: float) -> Metric:
    fam = kind(name, text, labels=["domain"])
    fam.add_metric([domain], value)
    return fam


__all__ = ["instrument_relay"]
