"""tools/metrics: the shipped Grafana dashboard is well formed and queries only our metrics (the
live check of every name against real /metrics endpoints is in test_demo_live.py), and
``demo --metrics`` gives each long-running process its own port and a scrape configuration."""

from __future__ import annotations

import json
import re
from pathlib import Path

from runtime.metrics import ProcessMetrics, parse_text, render
from tools.deployment import ProcessSpec
from tools.metrics import (
    DASHBOARD,
    expose_for_demo,
    expose_metrics,
    exposed,
    load_dashboard,
    metric_names,
    panels,
    prometheus_config,
    queries,
)


def test_the_dashboard_is_a_grafana_dashboard_with_a_datasource_variable() -> None:
    d = load_dashboard()
    assert d["uid"] and d["title"] == "AlphaPulse" and d["schemaVersion"] >= 36
    ds = [v for v in d["templating"]["list"] if v["type"] == "datasource"]
    assert ds and ds[0]["name"] == "datasource" and ds[0]["query"] == "prometheus"
    ids = [p["id"] for p in panels(d)]
    assert len(ids) == len(set(ids)) >= 20
    occupied: set[tuple[int, int]] = set()
    for p in panels(d):
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & occupied, f"{p['title']} overlaps another panel"
        occupied |= cells
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]


def test_every_query_names_our_metrics_only() -> None:
    exprs = queries(load_dashboard())
    names = metric_names(exprs)
    # identifiers that are neither PromQL functions/keywords nor label names must be our metrics
    words = {w for e in exprs for w in re.findall(r"\b[a-z_][a-z0-9_]*\b(?!\s*[=~!]|\s*\()", re.sub(r'"[^"]*"', "", e))}
    keywords = {"by", "on", "group_left", "without", "sum", "max", "min", "avg", "count",  # aggregations
                "le", "process", "domain", "chain", "outcome", "breaker", "consumer", "role", "result", "instance",
                "__rate_interval"}
    assert not {w for w in words if not w.startswith("alphapulse_")} - keywords
    # histograms are queried through their buckets (quantiles), never by _sum/_count alone
    assert not [n for n in names if n.endswith(("_sum", "_count"))]
    assert {"alphapulse_strategy_update_to_decision_seconds_bucket", "alphapulse_executor_outcomes_total",
            "alphapulse_relay_consumer_lag_messages", "alphapulse_risk_tripped"} <= names


def test_exposed_reads_histograms_and_counters_as_served() -> None:
    pm = ProcessMetrics("t")
    pm.histogram("alphapulse_t_seconds", "a histogram")
    pm.counter("alphapulse_t_total", "a counter", ["x"])  # no child yet: the family is still served
    families = {n: f.type for n, f in parse_text(render(pm.registry).decode()).items()}
    assert exposed("alphapulse_t_seconds_bucket", families) and exposed("alphapulse_t_seconds_count", families)
    assert exposed("alphapulse_t_total", families) and exposed("alphapulse_process_info", families)
    assert not exposed("alphapulse_t_total_bucket", families) and not exposed("alphapulse_nope", families)


def test_expose_metrics_gives_each_long_running_process_a_port(tmp_path: Path) -> None:
    procs = [ProcessSpec(name="relay-signal", args=("relay", "--domain", "signal")),
             ProcessSpec(name="risk", args=("risk", "--config", "r.toml")),
             ProcessSpec(name="setup", args=("config", "check", "x"), oneshot=True),
             ProcessSpec(name="fixed", args=("portfolio", "--metrics-port", "9999"))]
    out, ports = expose_metrics(procs)
    assert set(ports) == {"relay-signal", "risk"} and len(set(ports.values())) == 2
    assert out[0].args == ("relay", "--domain", "signal", "--metrics-port", str(ports["relay-signal"]),
                           "--metrics-host", "127.0.0.1")
    assert out[2] is procs[2] and out[3] is procs[3]
    conf = json.loads(prometheus_config(ports))
    [job] = conf["scrape_configs"]
    assert {(s["targets"][0], s["labels"]["alphapulse_process"]) for s in job["static_configs"]} == {
        (f"127.0.0.1:{ports['relay-signal']}", "relay-signal"), (f"127.0.0.1:{ports['risk']}", "risk")}
    said: list[str] = []
    expose_for_demo(procs, tmp_path, said.append)
    assert any(re.fullmatch(r"metrics: risk http://127\.0\.0\.1:\d+/metrics", s) for s in said)
    assert (tmp_path / "prometheus.yml").is_file() and str(DASHBOARD) in said[-1]
