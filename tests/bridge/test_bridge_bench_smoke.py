"""``alphapulse bench bridge`` runs end to end at a tiny size (figures are not checked: shared machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from natskit import require_nats_server

ROOT = Path(__file__).resolve().parents[2]


def test_bench_bridge_smoke() -> None:
    require_nats_server()
    out = subprocess.run([sys.executable, "-m", "tools.cli", "bench", "bridge", "--count", "2000",
                          "--latency-rate", "2000", "--latency-seconds", "0.5", "--skip-nats-py", "--stages", "--relay-in-bridge",
                          "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout[out.stdout.index("{"):])
    bt = report["bridge_throughput"]
    assert bt["gaps"] == 0 and bt["duplicates"] == 0 and bt["min_msgs_per_s"] > 0
    assert report["bridge_latency"]["n"] == 1000 and report["relay_latency"]["n"] == 1000
    assert "loadavg_before" in report and "loadavg_after" in report
    # --stages: every hop of every message joined by domain sequence, and each process's CPU
    st = report["bridge_latency_stages"]
    assert [r["stage"] for r in st["stages"]][:3] == ["producer -> relay A -> bridge out read",
                                                      "bridge out: read -> cut into a batch",
                                                      "bridge out: cut -> written to NATS"]
    assert len(st["stages"]) == 8
    # bridge out's write to NATS is stamped when it begins: stamped once it returned, it could come
    # after bridge in had the batch (bridge out preempted right after its send), which made the
    # nats-server hop negative on a loaded machine
    assert all(r["p50_us"] >= 0 for r in st["stages"][:7]), [(r["stage"], r["p50_us"]) for r in st["stages"]]
    assert set(st["cpu_seconds"]) == {"relay A", "relay B", "bridge out", "bridge in", "nats-server", "consumer",
                                      "producer"}
    # CPU per message in both latency phases, with or without --stages
    assert set(report["relay_latency_cpu"]["cpu_us_per_message"]) == {"relay A", "consumer", "producer"}
    per = report["bridge_latency_cpu"]["cpu_us_per_message"]
    assert per.keys() == st["cpu_seconds"].keys() and report["bridge_latency_cpu"]["messages"] == 1000
    assert all(v["user"] >= 0 and v["system"] >= 0 for v in per.values()) and per["bridge in"]["user"] > 0
    assert st["gc"].keys() == {"bridge out", "bridge in"}
    # --relay-in-bridge: the latency phase again with relay B inside bridge in, one process fewer
    assert report["bridge_rib_latency"]["n"] == 1000 and "added_latency_rib_us" in report
    assert set(report["bridge_rib_latency_cpu"]["cpu_seconds"]) == {
        "relay A", "bridge out", "bridge in + relay B", "nats-server", "consumer", "producer"}


def test_bench_phase_reports_a_process_that_died(tmp_path: Path) -> None:
    """A relay or bridge that exits mid-phase is named with the end of its log at once, instead of
    the consumer waiting for its timeout (minutes) for messages that never come."""
    import pytest

    from tools.bench.bridge import _Procs

    procs = _Procs(tmp_path)
    p = procs.start("bridge-out", "bridge", "out", "--domain", "market_data", "--nats", "nats://127.0.0.1:1",
                    "--max-inflight", "0")
    try:
        p.wait(60)
        with pytest.raises(RuntimeError, match=r"bridge-out exited with status 2 during the phase:\n.*max-inflight"):
            procs.check_alive()
    finally:
        procs.stop()
