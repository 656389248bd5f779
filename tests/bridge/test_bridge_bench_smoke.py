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
                          "--latency-rate", "2000", "--latency-seconds", "0.5", "--skip-nats-py", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout[out.stdout.index("{"):])
    bt = report["bridge_throughput"]
    assert bt["gaps"] == 0 and bt["duplicates"] == 0 and bt["min_msgs_per_s"] > 0
    assert report["bridge_latency"]["n"] == 1000 and report["relay_latency"]["n"] == 1000
    assert "loadavg_before" in report and "loadavg_after" in report
