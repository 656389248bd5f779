"""runtime.metrics: the registry and the text exposition format 0.0.4 (rendered, parsed back)."""

from __future__ import annotations

import math

import pytest

from runtime.metrics import DEFAULT_BUCKETS, ProcessMetrics, Registry, parse_text


def _render(reg: Registry) -> str:
    return reg.render().decode()


def test_counter_gauge_render_and_parse_back() -> None:
    reg = Registry()
    c = reg.counter("alphapulse_messages_in_total", "Messages received.", ["domain"])
    c.labels(domain="signal").inc()
    c.labels(domain="signal").inc(2)
    c.labels("market_data").inc(5)
    g = reg.gauge("alphapulse_relay_lag_messages", "Lag.", ["domain"])
    g.labels(domain="signal").set(7)
    g.labels(domain="signal").dec(2)
    plain = reg.gauge("alphapulse_x", "Unlabelled float.")
    plain.set(0.125)
    text = _render(reg)
    assert text.endswith("\n")
    lines = text.splitlines()
    assert "# HELP alphapulse_messages_in_total Messages received." in lines
    assert "# TYPE alphapulse_messages_in_total counter" in lines
    assert 'alphapulse_messages_in_total{domain="signal"} 3' in lines
    assert 'alphapulse_messages_in_total{domain="market_data"} 5' in lines
    assert "# TYPE alphapulse_relay_lag_messages gauge" in lines
    assert 'alphapulse_relay_lag_messages{domain="signal"} 5' in lines
    assert "alphapulse_x 0.125" in lines
    fams = parse_text(text)
    assert fams["alphapulse_messages_in_total"].type == "counter"
    samples = {tuple(sorted(lab.items())): v for _, lab, v in fams["alphapulse_messages_in_total"].samples}
    assert samples == {(("domain", "signal"),): 3, (("domain", "market_data"),): 5}
    # HELP/TYPE precede the samples of their family, each family once
    assert lines.index("# TYPE alphapulse_x gauge") < lines.index("alphapulse_x 0.125")
    assert sum(1 for ln in lines if ln.startswith("# TYPE alphapulse_messages_in_total")) == 1


def test_histogram_buckets_are_cumulative_with_inf_sum_count() -> None:
    reg = Registry()
    h = reg.histogram("alphapulse_lat_seconds", "Latency.", ["stage"])
    values = [5e-6, 1e-5, 3e-5, 0.0007, 0.0007, 0.02, 3.0, 10.0, 42.0]
    for v in values:
        h.labels(stage="a").observe(v)
    fams = parse_text(_render(reg))
    fam = fams["alphapulse_lat_seconds"]
    assert fam.type == "histogram"
    buckets = [(lab["le"], v) for name, lab, v in fam.samples if name == "alphapulse_lat_seconds_bucket"]
    assert all(lab_stage == "a" for lab_stage in
               (lab["stage"] for name, lab, _ in fam.samples))
    bounds = [float(le) for le, _ in buckets]
    assert bounds[:-1] == list(DEFAULT_BUCKETS) and bounds[-1] == math.inf
    assert bounds[0] == 1e-5 and bounds[-2] == 10.0  # 10 µs .. 10 s
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "cumulative"
    for bound, cum in zip(bounds, counts):
        assert cum == sum(1 for v in values if v <= bound), bound  # le: a value on a bound is inside
    sums = {name: v for name, _, v in fam.samples if not name.endswith("_bucket")}
    assert sums["alphapulse_lat_seconds_count"] == len(values) == counts[-1]
    assert sums["alphapulse_lat_seconds_sum"] == pytest.approx(sum(values))


def test_label_values_and_help_are_escaped() -> None:
    reg = Registry()
    nasty = 'a "quoted" back\\slash\nnewline, {braces}=x'
    reg.counter("alphapulse_odd_total", "Help with \\ and\nnewline.", ["consumer"]).labels(consumer=nasty).inc()
    text = _render(reg)
    assert '{consumer="a \\"quoted\\" back\\\\slash\\nnewline, {braces}=x"}' in text
    assert "# HELP alphapulse_odd_total Help with \\\\ and\\nnewline." in text
    assert "\nnewline" not in text.replace("\\nnewline", "")  # no raw newline leaks into a line
    fam = parse_text(text)["alphapulse_odd_total"]
    assert fam.help == "Help with \\ and\nnewline."
    assert fam.samples[0][1] == {"consumer": nasty}


def test_prometheus_client_parser_agrees_if_installed() -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    reg = Registry()
    reg.counter("alphapulse_messages_out_total", "Out.", ["domain"]).labels(domain='x"y').inc(3)
    reg.histogram("alphapulse_h_seconds", "H.").observe(0.003)
    fams = {f.name: f for f in parser.text_string_to_metric_families(_render(reg))}
    assert fams["alphapulse_messages_out"].type == "counter"
    assert fams["alphapulse_messages_out"].samples[0].labels == {"domain": 'x"y'}
    assert fams["alphapulse_h_seconds"].type == "histogram"


def test_validation() -> None:
    reg = Registry()
    with pytest.raises(ValueError):
        reg.counter("no_suffix", "Counters end in _total.")
    with pytest.raises(ValueError):
        reg.gauge("bad-name", "x")
    with pytest.raises(ValueError):
        reg.histogram("h_seconds", "x", ["le"])
    c = reg.counter("a_total", "x", ["domain"])
    with pytest.raises(ValueError):
        c.inc()  # labelled: needs .labels()
    with pytest.raises(ValueError):
        c.labels(domain="s").inc(-1)
    with pytest.raises(ValueError):
        c.labels(other="s")
    assert reg.counter("a_total", "x", ["domain"]) is c  # asking twice shares it
    with pytest.raises(ValueError):
        reg.gauge("a_total", "x", ["domain"])


def test_collect_hooks_run_at_render() -> None:
    reg = Registry()
    g = reg.gauge("alphapulse_depth", "Depth.")
    source = {"n": 1}
    reg.on_collect(lambda: g.set(source["n"]))
    assert "alphapulse_depth 1" in _render(reg)
    source["n"] = 42
    assert "alphapulse_depth 42" in _render(reg)


def test_process_metrics_standard_families() -> None:
    pm = ProcessMetrics("unit")
    pm.counter("alphapulse_strategy_opportunities_total", "Found.", ["chain"]).labels(chain="1").inc()
    fams = parse_text(pm.registry.render().decode())
    assert fams["alphapulse_process_info"].samples[0][1] == {"process": "unit"}
    assert fams["alphapulse_messages_in_total"].type == "counter"
    assert fams["alphapulse_strategy_opportunities_total"].samples[0][2] == 1
