"""Prometheus metrics for every AlphaPulse process (no third-party dependency).

* ``core``: ``Registry`` with ``Counter``/``Gauge``/``Histogram`` (labels, fixed latency buckets
  10 µs .. 10 s), rendered in the text exposition format 0.0.4; ``parse_text`` reads it back.
* ``server``: ``serve_metrics(port, registry, host="127.0.0.1")``, a trio + h11 HTTP task
  answering ``GET /metrics``.
* ``process``: ``add_metrics_argument`` (``--metrics-port``), ``serve_process_metrics`` and
  ``process_metrics()``: the shared families (messages in/out per domain, lag, reconnects)
  read from the relay clients' own counters at scrape time.
* ``relay``: the relay daemon's families, read from ``Relay`` state at scrape time.

See ``runtime/metrics/README.md`` for the metric names of each process.
"""

from .core import (
    CONTENT_TYPE,
    DEFAULT_BUCKETS,
    Counter,
    Gauge,
    Histogram,
    Registry,
    escape_label_value,
    format_value,
    parse_text,
)
from .process import (
    ProcessMetrics,
    add_metrics_argument,
    domain_name,
    process_metrics,
    run_until_signalled,
    serve_process_metrics,
)
from .server import serve_metrics

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_BUCKETS",
    "Counter",
    "Gauge",
    "Histogram",
    "ProcessMetrics",
    "Registry",
    "add_metrics_argument",
    "domain_name",
    "escape_label_value",
    "format_value",
    "parse_text",
    "process_metrics",
    "serve_metrics",
    "run_until_signalled",
    "serve_process_metrics",
]
