"""``ProcessMetrics``: one process's prometheus-client registry with the families every
AlphaPulse process shares, and the observer its relay clients report to.

The process main (``runtime.process``) creates one and hands it to the process's work; nothing
is global, so tests run several "processes" in one interpreter. The relay clients are
instrumented explicitly: the process passes ``metrics=pm`` to ``RelayConsumer``/``RelayProducer``
(``pm.attach(client)`` is the whole observer protocol) and their own counters are read at scrape
time, so the message path pays nothing::

    async with RelayConsumer.connect(Domain.MARKET_DATA, sock, name="strategy", metrics=pm) as c:
        ...

Process-specific families are prometheus-client metrics on the same registry (asking twice for
a name returns the same metric)::

    opportunities = pm.counter("alphapulse_strategy_opportunities_total", "Profitable cycles found.", ["chain"])
    opportunities.labels(chain="1").inc()

Values some other object already keeps (relay stats, archiver stats) are read at scrape time by
``pm.collect(fn)``: ``fn()`` yields prometheus-client metric families (``CounterMetricFamily``,
``GaugeMetricFamily``), built fresh at each scrape.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from .exposition import render

# seconds: 10 µs .. 10 s in 1-2.5-5 steps (+Inf is implicit)
DEFAULT_BUCKETS: tuple[float, ...] = (
    1e-5, 2.5e-5, 5e-5,
    1e-4, 2.5e-4, 5e-4,
    1e-3, 2.5e-3, 5e-3,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)

DOMAIN_NAMES = {1: "market_data", 2: "signal", 3: "execution"}

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

# produced at scrape time by ProcessMetrics itself (never created as metrics by a process)
SHARED_FAMILIES = frozenset({
    "alphapulse_messages_in_total", "alphapulse_messages_out_total", "alphapulse_relay_lag_messages",
    "alphapulse_relay_reconnects_total", "alphapulse_messages_lost_total", "alphapulse_relay_unacked_messages",
})


def domain_name(domain: Any) -> str:
    name = getattr(domain, "name", None)
    if isinstance(name, str):
        return name.lower()
    return DOMAIN_NAMES.get(int(domain), str(domain))


class _Collect:
    """A prometheus-client collector calling ``fn`` at scrape time."""

    def __init__(self, fn: Callable[[], Iterable[Metric]]) -> None:
        self._fn = fn

    def collect(self) -> Iterable[Metric]:
        return self._fn()


class ProcessMetrics:
    """The registry of one process with the families every AlphaPulse process shares
    (see runtime/metrics/README.md), and the observer (``attach``) of its relay clients."""

    def __init__(self, process: str, registry: CollectorRegistry | None = None) -> None:
        self.process = process
        self.registry = registry or CollectorRegistry()
        self._metrics: dict[str, tuple[Any, tuple[str, ...]]] = {}  # name -> (metric, label names)
        self.gauge("alphapulse_process_info", "Which AlphaPulse process this is (always 1).", ["process"]) \
            .labels(process=process).set(1)
        self.gauge("alphapulse_process_start_time_seconds", "Start time of the process, seconds since the epoch.") \
            .set(round(time.time(), 3))
        self._consumers: list[Any] = []
        self._producers: list[Any] = []
        self._message_sources: list[Callable[[], Iterable[tuple[str, float, float]]]] = []
        # counts of consumers that closed, folded in so totals never go down
        self._retired: dict[str, dict[str, float]] = {"in": {}, "lost": {}, "reconnects": {}}
        self._clients_seen = False
        self._ready_checks: list[Callable[[], str | None]] = []
        self.expects_relay_clients = True  # False for a relay daemon: it has no relay to connect to
        self.collect(self._collect_shared)

    # ---- process-specific families (prometheus-client metrics, shared by name)
    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name!r} should end in _total")
        return self._metric(Counter, name, help, labelnames)

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self._metric(Gauge, name, help, labelnames)

    def histogram(self, name: str, help: str, labelnames: Sequence[str] = (),
                  buckets: Sequence[float] = DEFAULT_BUCKETS) -> Histogram:
        return self._metric(Histogram, name, help, labelnames, buckets=tuple(buckets))

    def _metric(self, cls: type, name: str, help: str, labelnames: Sequence[str], **kw: Any) -> Any:
        if not _NAME_RE.match(name):  # prometheus-client would accept (and escape) any UTF-8 name
            raise ValueError(f"invalid metric name {name!r}")
        if name in SHARED_FAMILIES:
            raise ValueError(f"{name} is a shared family, read from relay clients (attach) or count_messages")
        known = self._metrics.get(name)
        if known is not None:
            old, old_labels = known
            if type(old) is not cls or old_labels != tuple(labelnames):
                raise ValueError(f"metric {name} already registered as a different {type(old).__name__}")
            return old  # the same metric asked for twice: share it
        metric = cls(name, help, labelnames, registry=self.registry, **kw)
        self._metrics[name] = (metric, tuple(labelnames))
        return metric

    def collect(self, fn: Callable[[], Iterable[Metric]]) -> None:
        """Call ``fn()`` at every scrape; it yields metric families built from current values."""
        self.registry.register(_Collect(fn))

    def count_messages(self, read: Callable[[], Iterable[tuple[str, float, float]]]) -> None:
        """A source of ``alphapulse_messages_{in,out}_total`` other than relay clients (the relay
        daemon's own counts): ``read()`` yields ``(domain, in_total, out_total)``."""
        self._message_sources.append(read)

    def render(self) -> bytes:
        return render(self.registry)

    # ---- readiness (``/readyz``)
    def add_ready_check(self, check: Callable[[], str | None]) -> None:
        """A process-specific readiness condition: ``check()`` returns why the process is not ready
        (e.g. its state is stale), or None."""
        self._ready_checks.append(check)

    def readiness(self) -> list[str]:
        """Why this process is not ready, empty when it is: every open relay client of it connected
        (a process that has none yet is not ready), and every ``add_ready_check`` passing."""
        problems: list[str] = []
        clients = [(c, "consumer") for c in self._consumers] + [(p, "producer") for p in self._producers]
        live = [(c, role) for c, role in clients if not getattr(c, "_closed", False)]
        if not live and self.expects_relay_clients:
            problems.append("no relay connection yet")
        for c, role in live:
            if not c.connected:
                problems.append(f"{domain_name(c.domain)} relay: {role} not connected")
        for check in self._ready_checks:
            why = check()
            if why:
                problems.append(why)
        return problems

    # ---- relay clients (the ``metrics=`` observer protocol of relays.client)
    def attach(self, client: Any) -> None:
        """Count a ``RelayConsumer`` or ``RelayProducer`` (idempotent); called by the client."""
        counters = client.core.counters
        bucket = self._consumers if hasattr(counters, "delivered") else self._producers
        if not any(c is client for c in bucket):
            bucket.append(client)
        self._clients_seen = True

    def _collect_shared(self) -> Iterable[Metric]:
        ins: dict[str, float] = dict(self._retired["in"])
        lost: dict[str, float] = dict(self._retired["lost"])
        rec: dict[str, float] = dict(self._retired["reconnects"])
        lag: dict[str, int] = {}
        outs: dict[str, float] = {}
        keep: list[Any] = []
        for c in self._consumers:
            d = domain_name(c.domain)
            core = c.core
            counters = core.counters
            head, pos = core.relay_head, core.position
            behind = max(0, head - pos) if head and pos else int(counters.lag)
            if c._closed:  # closed: fold its final counts in and forget it
                for key, v in (("in", counters.delivered), ("lost", counters.lost), ("reconnects", counters.reconnects)):
                    self._retired[key][d] = self._retired[key].get(d, 0) + v
            else:
                keep.append(c)
                lag[d] = max(lag.get(d, 0), behind)
            ins[d] = ins.get(d, 0) + counters.delivered
            lost[d] = lost.get(d, 0) + counters.lost
            rec[d] = rec.get(d, 0) + counters.reconnects
        self._consumers = keep
        prec: dict[str, float] = {}
        unacked: dict[str, float] = {}
        for p in self._producers:
            d = domain_name(p.domain)
            pc = p.core.counters
            outs[d] = outs.get(d, 0) + pc.published
            prec[d] = prec.get(d, 0) + pc.reconnects
            unacked[d] = unacked.get(d, 0) + p.core.unacked
        for read in self._message_sources:
            for d, n_in, n_out in read():
                ins[d] = ins.get(d, 0) + n_in
                outs[d] = outs.get(d, 0) + n_out

        m_in = CounterMetricFamily(
            "alphapulse_messages_in_total",
            "Messages received: by a relay, accepted from producers; by any other process, delivered "
            "to it by its relay consumers.", labels=["domain"])
        m_out = CounterMetricFamily(
            "alphapulse_messages_out_total",
            "Messages sent: by a relay, sequences its consumers moved past; by any other process, "
            "published by its relay producers.", labels=["domain"])
        for d, v in sorted(ins.items()):
            m_in.add_metric([d], v)
        for d, v in sorted(outs.items()):
            m_out.add_metric([d], v)
        yield m_in
        yield m_out
        if not self._clients_seen:
            return
        g_lag = GaugeMetricFamily(
            "alphapulse_relay_lag_messages",
            "Messages this process's consumers are behind the relay head, max per domain "
            "(as of the relay's last Welcome or heartbeat: exact when caught up or reconnecting).", labels=["domain"])
        c_rec = CounterMetricFamily("alphapulse_relay_reconnects_total", "Relay client reconnections.",
                                    labels=["domain", "role"])
        c_lost = CounterMetricFamily("alphapulse_messages_lost_total",
                                     "Messages a consumer skipped because the relay no longer had them (resync).",
                                     labels=["domain"])
        g_unacked = GaugeMetricFamily("alphapulse_relay_unacked_messages",
                                      "Messages published but not yet acknowledged by the relay.", labels=["domain"])
        for d in sorted(rec):
            g_lag.add_metric([d], lag.get(d, 0))
            c_rec.add_metric([d, "consumer"], rec[d])
            c_lost.add_metric([d], lost[d])
        for d in sorted(prec):
            c_rec.add_metric([d, "producer"], prec[d])
            g_unacked.add_metric([d], unacked[d])
        yield from (g_lag, c_rec, c_lost, g_unacked)
