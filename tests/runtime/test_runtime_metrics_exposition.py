"""runtime.metrics on prometheus-client: ProcessMetrics' families rendered in the text exposition
format 0.0.4 and parsed back (by prometheus-client's parser, through ``parse_text``)."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime.metrics import DEFAULT_BUCKETS, CounterMetricFamily, ProcessMetrics, parse_text


def _render(pm: ProcessMetrics) -> str:
    return pm.render().decode()


def test_counter_gauge_render_and_parse_back() -> None:
    pm = ProcessMetrics("unit")
    c = pm.counter("alphapulse_test_in_total", "Messages received.", ["domain"])
    c.labels(domain="signal").inc()
    c.labels(domain="signal").inc(2)
    c.labels("market_data").inc(5)
    g = pm.gauge("alphapulse_test_lag_messages", "Lag.", ["domain"])
    g.labels(domain="signal").set(7)
    g.labels(domain="signal").dec(2)
    plain = pm.gauge("alphapulse_x", "Unlabelled float.")
    plain.set(0.125)
    text = _render(pm)
    assert text.endswith("\n")
    lines = text.splitlines()
    assert "# HELP alphapulse_test_in_total Messages received." in lines
    assert "# TYPE alphapulse_test_in_total counter" in lines
    assert 'alphapulse_test_in_total{domain="signal"} 3.0' in lines
    assert 'alphapulse_test_in_total{domain="market_data"} 5.0' in lines
    assert "# TYPE alphapulse_test_lag_messages gauge" in lines
    assert 'alphapulse_test_lag_messages{domain="signal"} 5.0' in lines
    assert "alphapulse_x 0.125" in lines
    assert not any("_created" in ln for ln in lines)  # one series per counter, as documented
    fams = parse_text(text)
    assert fams["alphapulse_test_in_total"].type == "counter"
    samples = {tuple(sorted(lab.items())): v for _, lab, v in fams["alphapulse_test_in_total"].samples}
    assert samples == {(("domain", "signal"),): 3, (("domain", "market_data"),): 5}
    # HELP/TYPE precede the samples of their family, each family once
    assert lines.index("# TYPE alphapulse_x gauge") < lines.index("alphapulse_x 0.125")
    assert sum(1 for ln in lines if ln.startswith("# TYPE alphapulse_test_in_total")) == 1


def test_histogram_buckets_are_cumulative_with_inf_sum_count() -> None:
    pm = ProcessMetrics("unit")
    h = pm.histogram("alphapulse_lat_seconds", "Latency.", ["stage"])
    values = [5e-6, 1e-5, 3e-5, 0.0007, 0.0007, 0.02, 3.0, 10.0, 42.0]
    for v in values:
        h.labels(stage="a").observe(v)
    fams = parse_text(_render(pm))
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
    pm = ProcessMetrics("unit")
    nasty = 'a "quoted" back\\slash\nnewline, {braces}=x'
    pm.counter("alphapulse_odd_total", "Help with \\ and\nnewline.", ["consumer"]).labels(consumer=nasty).inc()
    text = _render(pm)
    assert '{consumer="a \\"quoted\\" back\\\\slash\\nnewline, {braces}=x"}' in text
    assert "# HELP alphapulse_odd_total Help with \\\\ and\\nnewline." in text
    assert "\nnewline" not in text.replace("\\nnewline", "")  # no raw newline leaks into a line
    fam = parse_text(text)["alphapulse_odd_total"]
    assert fam.help == "Help with \\ and\nnewline."
    assert fam.samples[0][1] == {"consumer": nasty}


def test_prometheus_client_parser_agrees() -> None:
    pm = ProcessMetrics("unit")
    pm.counter("alphapulse_test_out_total", "Out.", ["domain"]).labels(domain='x"y').inc(3)
    pm.histogram("alphapulse_h_seconds", "H.").observe(0.003)
    fams = {f.name: f for f in text_string_to_metric_families(_render(pm))}
    assert fams["alphapulse_test_out"].type == "counter"
    assert fams["alphapulse_test_out"].samples[0].labels == {"domain": 'x"y'}
    assert fams["alphapulse_h_seconds"].type == "histogram"


def test_validation() -> None:
    pm = ProcessMetrics("unit")
    with pytest.raises(ValueError):
        pm.counter("no_suffix", "Counters end in _total.")
    with pytest.raises(ValueError):
        pm.gauge("bad-name", "x")
    with pytest.raises(ValueError):
        pm.histogram("h_seconds", "x", ["le"])
    c = pm.counter("a_total", "x", ["domain"])
    with pytest.raises(ValueError):
        c.inc()  # labelled: needs .labels()
    with pytest.raises(ValueError):
        c.labels(domain="s").inc(-1)
    with pytest.raises(ValueError):
        c.labels(other="s")
    assert pm.counter("a_total", "x", ["domain"]) is c  # asking twice shares it
    with pytest.raises(ValueError):
        pm.gauge("a_total", "x", ["domain"])


def test_collect_hooks_run_at_render() -> None:
    pm = ProcessMetrics("unit")
    source = {"n": 1}
    pm.gauge("alphapulse_depth", "Depth.").set_function(lambda: source["n"])
    pm.collect(lambda: [CounterMetricFamily("alphapulse_seen_total", "Seen.", value=source["n"] * 2)])
    assert "alphapulse_depth 1.0" in _render(pm)
    source["n"] = 42
    text = _render(pm)
    assert "alphapulse_depth 42.0" in text and "alphapulse_seen_total 84.0" in text


def test_process_metrics_standard_families() -> None:
    pm = ProcessMetrics("unit")
    pm.counter("alphapulse_strategy_opportunities_total", "Found.", ["chain"]).labels(chain="1").inc()
    fams = parse_text(pm.render().decode())
    assert fams["alphapulse_process_info"].samples[0][1] == {"process": "unit"}
    assert fams["alphapulse_messages_in_total"].type == "counter"
    assert fams["alphapulse_strategy_opportunities_total"].samples[0][2] == 1


def test_two_processes_in_one_interpreter_do_not_share_metrics() -> None:
    a, b = ProcessMetrics("a"), ProcessMetrics("b")
    a.counter("alphapulse_only_a_total", "A.").inc()
    assert "alphapulse_only_a_total" in parse_text(a.render().decode())
    assert "alphapulse_only_a_total" not in parse_text(b.render().decode())
    assert parse_text(b.render().decode())["alphapulse_process_info"].samples[0][1] == {"process": "b"}
