"""``alphapulse demo --cex``: the Binance stand-in leads, the devnet's WETH/USDC follows, CEX-DEX arbitrage shows.

The headless run is the integration test of issue 13's point 7; the others check the pieces it is made of."""

from __future__ import annotations

import ast
import os
import re
import stat
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from protocol.ids import Venue
from protocol.market import InvalidationReason, Quote, StateInvalidation
from tools.demo_cex import SYMBOL, CexTape, capture_anchor

ROOT = Path(__file__).resolve().parents[2]


def _quote(bid: int, ask: int, symbol: str = SYMBOL, venue: int = Venue.BINANCE) -> Quote:
    return Quote(venue=venue, price_scale=2, size_scale=8, update_id=1, bid_price=bid, bid_size=1, ask_price=ask,
                 ask_size=1, symbol=symbol)


def test_the_tape_answers_the_mid_seen_lag_seconds_ago() -> None:
    tape = CexTape(horizon=10)
    assert tape.mid_at(100.0) is None
    tape.on_records([_quote(200_000, 200_010)], 1.0)
    tape.on_records([_quote(201_000, 201_010), _quote(1, 3, symbol="BTCUSDT")], 2.0)  # another symbol: ignored
    tape.on_records([StateInvalidation(chain_id=0, pool=0, from_block=0, reason=InvalidationReason.RESYNC,
                                       detail="x")], 2.5)
    assert tape.mid_at(0.5) is None
    assert tape.mid_at(1.9) == Fraction(200_005, 100)
    assert tape.mid_at(2.0) == tape.mid_at(50.0) == Fraction(201_005, 100)
    assert (tape.quotes, tape.invalidations) == (2, 1)
    tape.on_records([_quote(202_000, 202_010)], 20.0)  # older than the horizon falls out
    assert len(tape.mids) == 1


def test_the_capture_anchor_is_its_ethusdt_best_bid() -> None:
    assert str(capture_anchor()) == "2064.73"


@pytest.mark.timeout(300)
def test_headless_cex_demo_finds_cex_dex_opportunities(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "tools.cli", "demo", "--cex", "--headless", "--duration", "40", "--summary-every", "10",
         "--warmup", "2", "--settle", "4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    # the stand-in, the Binance collector and the CEX-following driver ran
    assert re.search(r": started pid \d+: standin binance .*--map-price ETHUSDT:2064\.73=", err), err[-3000:]
    assert re.search(r": started pid \d+: collector binance --config ", err), err[-3000:]
    assert "follows the Binance stand-in's ETHUSDT mid" in out
    moves = int(re.search(r"driver moves following the CEX\s*:\s*(\d+)", out).group(1))  # type: ignore[union-attr]
    quotes = int(re.search(r"CEX quotes seen \(Binance ETHUSDT\)\s*:\s*(\d+)", out).group(1))  # type: ignore[union-attr]
    found = int(re.search(r"CEX-DEX signals\s*:\s*(\d+)", out).group(1))  # type: ignore[union-attr]
    assert moves >= 5 and quotes >= 50, out[-3000:]
    assert found >= 1, out[-3000:]
    cex_outcomes = ast.literal_eval(re.search(r"CEX-DEX outcomes\s*:\s*(\{.*\})", out).group(1))  # type: ignore[union-attr]
    signals = int(re.search(r"signals published by the strategy\s*:\s*(\d+)", out).group(1))  # type: ignore[union-attr]
    assert found <= signals and sum(cex_outcomes.values()) <= found
    # the paper exchange's keys: 0600 files, never in a config, a log or the output
    work = Path(re.search(r"working directory (\S+)", out).group(1))  # type: ignore[union-attr]
    keys = [work / "cex" / "binance_api_key", work / "cex" / "binance_hmac_key"]
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        value = key.read_text().strip()
        assert value not in out and value not in err
        for f in [*(work / "configs").iterdir(), *(work / "logs").iterdir(), work / "deploy.toml"]:
            assert value not in f.read_text(errors="replace"), f
