"""Per-process metrics: the standard AlphaPulse families, relay-client tracking, the CLI flag.

Adding Prometheus metrics to a process is two lines::

    from runtime.metrics import add_metrics_argument, serve_process_metrics

    add_metrics_argument(parser)                                            # --metrics-port PORT, --metrics-host
    nursery.start_soon(serve_process_metrics, args.metrics_port, "strategy", args.metrics_host)

``serve_process_metrics`` does nothing (returns at once) when the port is None. Otherwise it
serves ``/metrics`` and, from then on, every ``RelayConsumer``/``RelayProducer`` created in this
process is watched: ``alphapulse_messages_in_total{domain}`` (delivered by consumers),
``alphapulse_messages_out_total{domain}`` (published by producers), lag, reconnects, lost
messages and unacknowledged messages are read from the clients' own counters at scrape time, so
the message path pays nothing. (Clients created *before* the server started are not seen:
start it first in the nursery, or call ``process_metrics().watch(client)``.)

Process-specific metrics go on the same registry::

    pm = process_metrics("strategy")
    opportunities = pm.registry.counter("alphapulse_strategy_opportunities_total",
                                        "Profitable cycles found.", ["chain"])
    opportunities.labels(chain="1").inc()
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .core import DEFAULT_BUCKETS, Histogram, Registry
from .server import serve_metrics

DOMAIN_NAMES = {1: "market_data", 2: "signal", 3: "execution"}


def domain_name(domain: Any) -> str:
    name = getattr(domain, "name", None)
    if isinstance(name, str):
        return name.lower()
    return DOMAIN_NAMES.get(int(domain), str(domain))


def add_metrics_argument(parser: argparse.ArgumentParser) -> None:
    """``--metrics-port PORT`` (off by default; 0 = any free port) and ``--metrics-host``."""
    parser.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve Prometheus metrics on http://HOST:PORT/metrics (default: off)")
    parser.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                        help="address for --metrics-port (default 127.0.0.1: loopback only)")


class ProcessMetrics:
    """The registry of one process with the families every AlphaPulse process shares."""

    def __init__(self, process: str, registry: Registry | None = None) -> None:
        self.process = process
        self.registry = r = registry or Registry()
        r.gauge("alphapulse_process_info", "Which AlphaPulse process this is (always 1).", ["process"]) \
            .labels(process=process).set(1)
        r.gauge("alphapulse_process_start_time_seconds", "Start time of the process, seconds since the epoch.") \
            .set(round(time.time(), 3))
        self.messages_in = r.counter(
            "alphapulse_messages_in_total",
            "Messages received: by a relay, accepted from producers; by any other process, delivered "
            "to it by its relay consumers.", ["domain"])
        self.messages_out = r.counter(
            "alphapulse_messages_out_total",
            "Messages sent: by a relay, sequences its consumers moved past; by any other process, "
            "published by its relay producers.", ["domain"])
        self._consumers: list[Any] = []
        self._producers: list[Any] = []
        self._retired_in: dict[str, float] = {}
        self._retired_lost: dict[str, float] = {}
        self._retired_reconnects: dict[str, float] = {}
        self._client_families = False

    def _add_client_families(self) -> None:
        if self._client_families:
            return
        self._client_families = True
        r = self.registry
        self.lag = r.gauge("alphapulse_relay_lag_messages",
                           "Messages this process's consumers are behind the relay head, max per domain "
                           "(as of the relay's last Welcome or heartbeat: exact when caught up or reconnecting).",
                           ["domain"])
        self.reconnects = r.counter("alphapulse_relay_reconnects_total", "Relay client reconnections.",
                                    ["domain", "role"])
        self.lost = r.counter("alphapulse_messages_lost_total",
                              "Messages a consumer skipped because the relay no longer had them (resync).",
                              ["domain"])
        self.unacked = r.gauge("alphapulse_relay_unacked_messages",
                               "Messages published but not yet acknowledged by the relay.", ["domain"])
        r.on_collect(self._collect_relay_clients)

    # ---- convenience for process-specific families
    def counter(self, name: str, help: str, labelnames: tuple[str, ...] | list[str] = ()) -> Any:
        return self.registry.counter(name, help, labelnames)

    def gauge(self, name: str, help: str, labelnames: tuple[str, ...] | list[str] = ()) -> Any:
        return self.registry.gauge(name, help, labelnames)

    def histogram(self, name: str, help: str, labelnames: tuple[str, ...] | list[str] = (),
                  buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> Histogram:
        return self.registry.histogram(name, help, labelnames, buckets)

    # ---- relay clients
    def watch(self, client: Any) -> None:
        """Count a ``RelayConsumer`` or ``RelayProducer`` (idempotent)."""
        kind = _client_kind(client)
        self._add_client_families()
        bucket = self._consumers if kind == "consumer" else self._producers
        if kind and not any(c is client for c in bucket):
            bucket.append(client)

    def _collect_relay_clients(self) -> None:
        ins: dict[str, float] = dict(self._retired_in)
        lost: dict[str, float] = dict(self._retired_lost)
        rec: dict[str, float] = dict(self._retired_reconnects)
        lag: dict[str, int] = {}
        keep: list[Any] = []
        for c in self._consumers:
            d = domain_name(c.domain)
            counters = c.core.counters
            core = c.core
            head = getattr(core, "relay_head", 0)
            pos = getattr(core, "position", 0)
            behind = max(0, head - pos) if head and pos else int(getattr(counters, "lag", 0))
            if getattr(c, "_closed", False):  # closed: fold its final counts in and forget it
                self._retired_in[d] = self._retired_in.get(d, 0) + counters.delivered
                self._retired_lost[d] = self._retired_lost.get(d, 0) + counters.lost
                self._retired_reconnects[d] = self._retired_reconnects.get(d, 0) + counters.reconnects
            else:
                keep.append(c)
                lag[d] = max(lag.get(d, 0), behind)
            ins[d] = ins.get(d, 0) + counters.delivered
            lost[d] = lost.get(d, 0) + counters.lost
            rec[d] = rec.get(d, 0) + counters.reconnects
        self._consumers = keep
        for d, v in ins.items():
            self.messages_in.labels(domain=d).set_total(v)
        for d, v in lost.items():
            self.lost.labels(domain=d).set_total(v)
        for d, v in rec.items():
            self.reconnects.labels(domain=d, role="consumer").set_total(v)
        for d in ins:
            self.lag.labels(domain=d).set(lag.get(d, 0))
        outs: dict[str, float] = {}
        prec: dict[str, float] = {}
        unacked: dict[str, float] = {}
        for p in self._producers:
            d = domain_name(p.domain)
            pc = p.core.counters
            outs[d] = outs.get(d, 0) + pc.published
            prec[d] = prec.get(d, 0) + pc.reconnects
            unacked[d] = unacked.get(d, 0) + p.core.unacked
        for d, v in outs.items():
            self.messages_out.labels(domain=d).set_total(v)
            self.reconnects.labels(domain=d, role="producer").set_total(prec[d])
            self.unacked.labels(domain=d).set(unacked[d])

    def track_relay_clients(self) -> None:
        """Watch every relay client constructed from now on in this process."""
        _install_client_hooks()
        _TRACKING.add(self)

    def untrack_relay_clients(self) -> None:
        _TRACKING.discard(self)


def _client_kind(client: Any) -> str:
    core = getattr(client, "core", None)
    if core is None:
        return ""
    if hasattr(core.counters, "delivered"):
        return "consumer"
    if hasattr(core.counters, "published"):
        return "producer"
    return ""


_TRACKING: weakref.WeakSet[ProcessMetrics] = weakref.WeakSet()


def _install_client_hooks() -> None:
    """Wrap ``RelayConsumer.__init__``/``RelayProducer.__init__`` once: construction-time only."""
    from relays.client import RelayConsumer, RelayProducer

    for cls in (RelayConsumer, RelayProducer):
        orig = cls.__init__
        if getattr(orig, "_alphapulse_metrics", False):
            continue

        @functools.wraps(orig)
        def init(self: Any, *args: Any, _orig: Any = orig, **kw: Any) -> None:
            _orig(self, *args, **kw)
            for pm in list(_TRACKING):
                pm.watch(self)

        init._alphapulse_metrics = True  # type: ignore[attr-defined]
        cls.__init__ = init  # type: ignore[method-assign]


_PROCESS: ProcessMetrics | None = None


def process_metrics(process: str | None = None) -> ProcessMetrics:
    """This process's ``ProcessMetrics`` (created on first call, named ``process`` or the program)."""
    global _PROCESS
    if _PROCESS is None:
        _PROCESS = ProcessMetrics(process or os.path.basename(sys.argv[0] or "python"))
    return _PROCESS


async def serve_process_metrics(
    port: int | None,
    process: str | None = None,
    host: str = "127.0.0.1",
    *,
    metrics: ProcessMetrics | None = None,
    task_status: trio.TaskStatus[int | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve this process's metrics on ``port`` (None: disabled, returns at once) until cancelled.

    Also starts watching every relay client created afterwards (see the module docstring).
    ``task_status.started(bound_port)``.
    """
    if port is None:
        task_status.started(None)
        return
    pm = metrics or process_metrics(process)
    pm.track_relay_clients()
    try:
        await serve_metrics(port, pm.registry, host, task_status=task_status)
    finally:
        pm.untrack_relay_clients()


async def run_until_signalled(
    process: str,
    work: Callable[[], Awaitable[object]],
    *,
    metrics_port: int | None,
    metrics_host: str = "127.0.0.1",
    log: logging.Logger,
) -> None:
    """A long-running process's main: serve its metrics (when a port is given), run ``work``,
    and cancel everything cleanly on SIGTERM or SIGINT."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_process_metrics, metrics_port, process, metrics_host)
            nursery.start_soon(work)
            async for signum in signals:
                log.info("%s received, shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


__all__ = [
    "ProcessMetrics",
    "add_metrics_argument",
    "domain_name",
    "process_metrics",
    "run_until_signalled",
    "serve_process_metrics",
]
