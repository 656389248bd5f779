"""The main job, end to end: ``alphapulse demo --headless`` on a real devnet makes money on chain."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(400)
def test_headless_demo_executes_arbitrage_with_profit_on_chain(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    res = subprocess.run(
        [sys.executable, "-m", "tools.cli", "demo", "--headless", "--duration", "35", "--summary-every", "5"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=380,
    )
    out = res.stdout
    assert res.returncode == 0, out[-3000:] + res.stderr[-3000:]
    landed = re.search(r"profit landed at the recipient\s*:\s*\S+ WETH\s+\((\d+) wei, read on chain\)", out)
    assert landed, out[-3000:]
    executed = re.search(r"'EXECUTED': (\d+)", out)
    assert executed and int(executed.group(1)) >= 1, out[-3000:]
    realized = re.search(r"realized gross profit \(events\)\s*:\s*(\d+)\.(\d{6}) WETH", out)
    assert realized
    # the profit read back from the chain is the sum of the contract's own profit events
    assert int(landed.group(1)) > 0
    assert int(landed.group(1)) // 10**12 == int(realized.group(1)) * 10**6 + int(realized.group(2))
    assert "AlphaPulse report" in out and "funnel:" in out
