"""``alphapulse demo --replay`` as a real subprocess (headless, short): both sources.

* a previous live run's archive (picked automatically as the newest under the demo directory):
  the strategy must find exactly the signals the sans-IO engine finds on the same market data;
* the recorded real logs with synthesized start snapshots: signals appear, the limitation is said.

``ALPHAPULSE_DEMO_DIR`` points the demo at a temporary directory, so nothing lands in var/demo.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from test_replay_decisions import WETH, market_stream, strategy_config

import protocol as P
from protocol.header import Domain
from protocol.message import encode
from relays.archiver import domain_dir, write_flush
from strategy.config import config_from_dict
from strategy.engine import StrategyEngine
from tools.deployment_writer import strategy_doc, write_toml

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_704_412_800 * 10**9


def run_demo(short_dir: Path, *extra_env: tuple[str, str], duration: float = 7.0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), ALPHAPULSE_DEMO_DIR=str(short_dir), **dict(extra_env))
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", "demo", "--replay", "--headless", "--duration", str(duration),
         "--rate", "1000", "--summary-every", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=90, env=env,
    )


def _field(out: str, name: str) -> str:
    m = re.search(rf"^{re.escape(name)}\s*: (.*)$", out, re.M)
    assert m, f"no {name!r} line in\n{out}"
    return m.group(1).strip()


def fake_live_run(short_dir: Path) -> tuple[Path, list[P.Message]]:
    """A previous live demo run's layout: configs/strategy.toml and data/archive with market data."""
    run = short_dir / "20240105-000000"
    (run / "configs").mkdir(parents=True)
    write_toml(run / "configs" / "strategy.toml", strategy_config(Path("/tmp/old/md.sock"), Path("/tmp/old/sig.sock")))
    msgs = [P.Message(domain=Domain.MARKET_DATA, tlvs=tlvs, source_id=17742, source_seq=i + 1, domain_seq=i + 1,
                      event_time_ns=T0 + i * 10**6, receive_time_ns=T0 + i * 15 * 10**6)
            for i, tlvs in enumerate(market_stream())]
    ddir = domain_dir(run / "data" / "archive", "market_data")
    ddir.mkdir(parents=True)
    write_flush(ddir, [encode(m) for m in msgs], {"alphapulse.domain": "market_data"})
    return run, msgs


def test_demo_replay_of_a_live_run_archive(short_dir: Path) -> None:
    run, msgs = fake_live_run(short_dir)
    doc = strategy_doc(max_hops=3, chain_id=1, gas_token=WETH, min_net_profit=10**15)
    engine = StrategyEngine(config_from_dict(doc))
    expected = sum(len(engine.on_message(m, 0)) for m in msgs)
    assert expected > 20
    r = run_demo(short_dir, duration=5.0)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert f"replaying the archive {run / 'data' / 'archive'} (a previous live demo run)" in out
    assert "the live run's strategy config" in out
    assert re.search(r"^ALPHAPULSE_RUN_DIR=/tmp/alphapulse-demo-replay-\d+$", out, re.M)  # to paste elsewhere
    assert "market msgs" in out and "signals" in out  # the live headless summary
    assert _field(out, "signals detected") == str(expected)
    assert _field(out, "market-data messages seen") == str(len(msgs))
    assert "TWO_POOL" in _field(out, "by kind") and "CYCLE" in _field(out, "by kind")
    assert "top signals by net profit" in out
    # the replay run's own results live in a replay-* directory that is never picked as a source
    runs = [p for p in short_dir.iterdir() if p.name.startswith("replay-")]
    assert len(runs) == 1 and (runs[0] / "data" / "archive" / "domain=signal").is_dir()
    assert "executor" not in (runs[0] / "deploy.toml").read_text()


def test_demo_replay_of_recorded_logs(short_dir: Path) -> None:
    r = run_demo(short_dir, ("ALPHAPULSE_DEMO_REPLAY_SOURCE", "logs"), duration=5.0)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "replaying the recorded logs uniswap-v3-usdc-weth-2024-01-05" in out
    assert out.count("APPROXIMATION, detect-only display") == 2  # one synthesized snapshot per real pool
    assert "published the synthesized start state: 3 messages" in out
    assert int(_field(out, "market-data messages seen")) > 500
    # at ~1000 msg/s the first real-data signal (after ~520 logs) comes within the run
    assert int(_field(out, "signals detected")) >= 1, out
    assert "TWO_POOL" in _field(out, "by kind")
    assert "profits are approximate and nothing was traded" in out
