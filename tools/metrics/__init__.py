"""Monitoring a running AlphaPulse: the Grafana dashboard, and a deployment's metrics exposed.

* ``tools/metrics/grafana/alphapulse.json``: a Grafana dashboard over the Prometheus metrics every
  process serves (``runtime/metrics/README.md`` lists them): processes, the funnel (signals,
  outcomes), latencies (histogram quantiles), relays (rates, lags, reconnects, losses), risk
  (stops in force, breaker trips), reloads. Import it in Grafana (Dashboards -> New -> Import) and
  pick your Prometheus data source for ``${datasource}``. Every metric it queries is one the
  processes expose: ``tests/tools/test_demo_live.py`` scrapes a live demo and checks.
* :func:`expose_metrics`: a deployment's processes, each given ``--metrics-port`` on a free
  loopback port (``alphapulse demo --metrics``), and :func:`prometheus_config`, the scrape
  configuration for them (JSON, which Prometheus reads as YAML).
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import msgspec

from tools.deployment import ProcessSpec

DASHBOARD = Path(__file__).resolve().parent / "grafana" / "alphapulse.json"

# every metric of ours starts so; PromQL functions and keywords never do
_METRIC = re.compile(r"\balphapulse_[a-zA-Z0-9_:]*")


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports free on ``host`` now (bound together, then released)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in socks]


def expose_metrics(processes: Sequence[ProcessSpec], host: str = "127.0.0.1"
                   ) -> tuple[list[ProcessSpec], dict[str, int]]:
    """Every long-running process with ``--metrics-port`` on its own free port (one-shot processes
    and those already given a port are left as they are); the processes and ``{name: port}``."""
    todo = [p for p in processes if not p.oneshot and "--metrics-port" not in p.args]
    ports = dict(zip((p.name for p in todo), free_ports(len(todo), host)))
    out = [msgspec.structs.replace(p, args=(*p.args, "--metrics-port", str(ports[p.name]),
                                            "--metrics-host", host)) if p.name in ports else p
           for p in processes]
    return out, ports


def expose_for_demo(processes: Sequence[ProcessSpec], work: Path, say: Callable[[str], None],
                    host: str = "127.0.0.1") -> list[ProcessSpec]:
    """``demo --metrics``: :func:`expose_metrics`, one line per process with its URL, and
    ``<work>/prometheus.yml`` to point a Prometheus at them (the dashboard's path said too)."""
    out, ports = expose_metrics(processes, host)
    for name, port in sorted(ports.items()):
        say(f"metrics: {name} http://{host}:{port}/metrics")
    prom = work / "prometheus.yml"
    prom.write_text(prometheus_config(ports, host))
    say(f"metrics: Prometheus scrape configuration {prom}; Grafana dashboard {DASHBOARD}")
    return out


def prometheus_config(ports: Mapping[str, int], host: str = "127.0.0.1", *, interval: str = "5s") -> str:
    """A Prometheus configuration scraping every process in ``ports`` (label ``alphapulse_process``)."""
    doc = {"global": {"scrape_interval": interval},
           "scrape_configs": [{"job_name": "alphapulse", "static_configs": [
               {"targets": [f"{host}:{port}"], "labels": {"alphapulse_process": name}}
               for name, port in sorted(ports.items())]}]}
    return json.dumps(doc, indent=2) + "\n"


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' collapsed children included."""
    out: list[dict[str, Any]] = []
    for p in dashboard.get("panels", []):
        out.append(p)
        out += p.get("panels", [])
    return out


def queries(dashboard: Mapping[str, Any]) -> list[str]:
    """Every PromQL expression the dashboard runs (panel targets and template variables)."""
    exprs = [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if t.get("expr")]
    for var in dashboard.get("templating", {}).get("list", []):
        q = var.get("query")
        if var.get("type") == "query":
            exprs.append(q["query"] if isinstance(q, dict) else q)
    return exprs


def metric_names(exprs: Iterable[str]) -> set[str]:
    """The metric names queried by ``exprs`` (as written: ``..._bucket``, ``..._total``)."""
    return {m for e in exprs for m in _METRIC.findall(e)}


def exposed(name: str, families: Mapping[str, str]) -> bool:
    """Whether a queried ``name`` is served, given ``{family name: type}`` read from scrapes
    (counters by their ``_total`` name): histograms serve ``_bucket``, ``_sum`` and ``_count``."""
    if name in families:
        return True
    base, _, suffix = name.rpartition("_")
    return suffix in ("bucket", "sum", "count") and families.get(base) == "histogram"


__all__ = ["DASHBOARD", "expose_for_demo", "expose_metrics", "exposed", "free_ports", "load_dashboard", "metric_names", "panels",
           "prometheus_config", "queries"]
