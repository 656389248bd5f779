"""The relay daemon's metrics, read from ``Relay`` state at scrape time (nothing on the hot path).

``instrument_relay(relay, pm)`` registers, all labelled ``domain``:

* ``alphapulse_messages_in_total``: messages accepted from producers (sequenced; duplicates excluded)
* ``alphapulse_messages_out_total``: sequences consumers moved past (each consumer counts; a
  type-filtered consumer also counts the sequences it skipped); consumers that disconnected
  keep counting in
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

from typing import Any

from runtime.metrics.process import ProcessMetrics, domain_name


def instrument_relay(relay: Any, pm: ProcessMetrics) -> None:
    r = pm.registry
    d = domain_name(relay.domain)
    one = {"domain": d}
    m_in = pm.messages_in.labels(**one)
    m_out = pm.messages_out.labels(**one)
    sent_bytes = r.counter("alphapulse_relay_sent_bytes_total", "Bytes sent to consumers.", ["domain"]).labels(**one)
    dups = r.counter("alphapulse_relay_duplicates_dropped_total",
                     "Frames dropped as already sequenced (producer resends).", ["domain"]).labels(**one)
    cuts = r.counter("alphapulse_relay_cut_offs_total", "Live consumers cut off for falling off the ring.",
                     ["domain"]).labels(**one)
    perr = r.counter("alphapulse_relay_protocol_errors_total", "Connections dropped for protocol errors.",
                     ["domain"]).labels(**one)
    consumers = r.gauge("alphapulse_relay_consumers", "Consumers connected now.", ["domain"]).labels(**one)
    producers = r.gauge("alphapulse_relay_producers", "Producers connected now.", ["domain"]).labels(**one)
    lag = r.gauge("alphapulse_relay_consumer_lag_messages", "Relay head minus a consumer's next sequence.",
                  ["domain", "consumer"])
    max_lag = r.gauge("alphapulse_relay_max_consumer_lag_messages", "The largest consumer lag.",
                      ["domain"]).labels(**one)
    gauges = {
        key: r.gauge(f"alphapulse_relay_{metric}", text, ["domain"]).labels(**one)
        for key, metric, text in (
            ("head_seq", "head_seq", "Last sequence assigned."),
            ("synced_seq", "synced_seq", "Last sequence fsynced to the journal."),
            ("oldest_seq", "oldest_seq", "Oldest sequence still retained (ring or journal)."),
            ("journal_bytes", "journal_bytes", "Journal size on disk."),
            ("ring_bytes", "ring_bytes", "Bytes held in the in-memory ring."),
            ("epoch", "epoch", "Relay epoch (bumped on every start)."),
            ("rate_msgs_per_s", "rate_messages_per_second", "Accepted messages per second (last tick)."),
        )
    }
    retired = {"frames": 0, "bytes": 0}

    forget = getattr(relay, "_forget", None)
    if forget is not None:
        def _forget(conn: Any) -> None:  # per disconnect, not per message: keep the departed's counts
            cur = getattr(conn, "cursor", None)
            if cur is not None and conn in relay.consumers:
                retired["frames"] += cur.sent_frames
                retired["bytes"] += cur.sent_bytes
            forget(conn)

        relay._forget = _forget

    @r.on_collect
    def _collect() -> None:
        s = relay.stats()
        m_in.set_total(s.get("accepted", 0))
        dups.set_total(s.get("duplicates_dropped", 0))
        cuts.set_total(s.get("cut_offs", 0))
        perr.set_total(s.get("protocol_errors", 0))
        for key, g in gauges.items():
            v = s.get(key)
            if isinstance(v, (int, float)):
                g.set(v)
        frames = retired["frames"]
        nbytes = retired["bytes"]
        for c in list(relay.consumers):
            cur = c.cursor
            if cur is not None:
                frames += cur.sent_frames
                nbytes += cur.sent_bytes
        m_out.set_total(frames)
        sent_bytes.set_total(nbytes)
        consumers.set(len(s.get("consumers", ())))
        producers.set(len(s.get("producers", ())))
        lag.clear()
        per: dict[str, int] = {}
        for c in s.get("consumers", ()):
            name = str(c.get("name", ""))
            per[name] = max(per.get(name, 0), int(c.get("lag", 0)))
        for name, v in per.items():
            lag.labels(domain=d, consumer=name).set(v)
        max_lag.set(max(per.values(), default=0))


__all__ = ["instrument_relay"]
