"""Prometheus metrics for every AlphaPulse process, on prometheus-client.

* ``registry``: ``ProcessMetrics``, one process's ``prometheus_client.CollectorRegistry`` with
  the shared families (messages in/out per domain, relay-client lag, reconnects, lost, unacked)
  read from the relay clients that were given ``metrics=`` (explicit instrumentation), plus
  ``counter``/``gauge``/``histogram`` (fixed latency buckets 10 µs .. 10 s) and scrape-time
  ``collect`` hooks.
* ``exposition``: ``render`` (prometheus-client's ``generate_latest``), ``CONTENT_TYPE``
  (format 0.0.4) and ``parse_text`` (prometheus-client's parser, families keyed by exposition name).
* ``server``: ``serve_metrics(port, registry, host="127.0.0.1")``, our trio + h11 HTTP task
  answering ``GET /metrics``; ``serve_process_metrics`` (None port: off).

The process main (``runtime.process``) owns the ``--metrics-port``/``--metrics-host`` flags and
starts the server. See ``runtime/metrics/README.md`` for the metric names of each process.
"""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from .exposition import CONTENT_TYPE, ParsedFamily, parse_text, render
from .registry import DEFAULT_BUCKETS, ProcessMetrics, domain_name
from .server import serve_metrics, serve_process_metrics

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_BUCKETS",
    "CounterMetricFamily",
    "GaugeMetricFamily",
    "Metric",
    "ParsedFamily",
    "ProcessMetrics",
    "domain_name",
    "parse_text",
    "render",
    "serve_metrics",
    "serve_process_metrics",
]
