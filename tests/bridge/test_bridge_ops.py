"""Operations: relay-cli stats shows each bridge's position and lag (against the stream with --nats)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from natskit import NatsServer
from relay_testkit import ROOT, Procs

N = 3000


def stats(sock: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.relay_cli", "stats", "--socket", str(sock), *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_relay_cli_stats_shows_bridges(procs: Procs, short_dir: Path, nats: NatsServer) -> None:
    a, b = short_dir / "a.sock", short_dir / "b.sock"
    procs.relay(a, short_dir / "a-data")
    procs.relay(b, short_dir / "b-data")
    for direction, sock in (("out", a), ("in", b)):
        procs.start(f"bridge-{direction}", "-m", "tools.cli", "bridge", direction, "--domain", "market_data",
                    "--nats", nats.url, "--socket", str(sock))
    procs.loadgen(a, rate=5000, count=N)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = stats(b, "--json")
        if r.returncode == 0 and json.loads(r.stdout)[0]["stats"]["head_seq"] == N:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("host B's relay did not reach the last message")

    out_row = json.loads(stats(a, "--json", "--nats", nats.url).stdout)[0]["bridges"]
    assert out_row == [{"name": "bridge-out:market_data", "direction": "out", "read": N, "read_lag": 0,
                        "acked": N, "lag": 0}]
    in_row = json.loads(stats(b, "--json", "--nats", nats.url).stdout)[0]["bridges"]
    assert in_row == [{"name": "bridge-in:market_data", "direction": "in", "position": N, "lag": 0}]
    text = stats(b).stdout
    assert "bridges (1):" in text and f"<- JetStream  domain seq {N}" in text and "give --nats" in text
    down = stats(a, "--json", "--nats", "nats://127.0.0.1:1", "--timeout", "0.5")
    entry = json.loads(down.stdout)[0]
    assert entry["jetstream"] is None and "no NATS server" in entry["jetstream_error"]
    assert entry["bridges"][0]["read"] == N and "lag" not in entry["bridges"][0]


def test_bridge_metrics_follow_the_window() -> None:
    from bridge.process import BridgeIn, BridgeOut
    from protocol.header import Domain
    from relays.core.nats import PublishWindow
    from runtime.metrics import ProcessMetrics, render

    pm = ProcessMetrics("bridge-out")
    out = BridgeOut(Domain.MARKET_DATA, "nats://127.0.0.1:1", None)
    out.observe(pm)
    out.window = PublishWindow(Domain.MARKET_DATA, next_stream_seq=8, position=7)
    out.window.add(8)
    out.resyncs = 2
    text = render(pm.registry).decode()
    for line in ("alphapulse_bridge_acked_domain_seq 7.0", "alphapulse_bridge_stream_seq 7.0",
                 "alphapulse_bridge_inflight 1.0", "alphapulse_bridge_resyncs 2.0"):
        assert line in text
    pm_in = ProcessMetrics("bridge-in")
    BridgeIn(Domain.MARKET_DATA, "nats://127.0.0.1:1", None, source_id=5).observe(pm_in)
    assert "alphapulse_bridge_lag_messages 0.0" in render(pm_in.registry).decode()


def test_bridge_in_refuses_a_relay_data_dir_in_use(procs: Procs, short_dir: Path) -> None:
    """``bridge in --relay-data-dir`` on a journal another relay holds: one line, exit 2, before any
    NATS connection (none is needed to find out), and the running relay is untouched."""
    procs.relay(short_dir / "b.sock", short_dir / "b-data")
    proc = subprocess.run([sys.executable, "-m", "tools.cli", "bridge", "in", "--domain", "market_data",
                           "--nats", "nats://127.0.0.1:1", "--socket", str(short_dir / "other.sock"),
                           "--relay-data-dir", str(short_dir / "b-data")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "in use by another relay" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert (short_dir / "b.sock").exists() and not (short_dir / "other.sock").exists()
