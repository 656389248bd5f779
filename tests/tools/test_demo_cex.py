"""``alphapulse demo --cex``: the Binance stand-in leads, the devnet's WETH/USDC follows, CEX-DEX arbitrage shows.

The headless run is the integration test of issue 13's point 7; the others check the pieces it is made of."""

from __future__ import annotations

import ast
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
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


def test_the_pool_replays_the_cex_moves_late_and_keeps_what_arbitrage_did() -> None:
    from tools.demo_cex import follow_target

    assert follow_target(Fraction(2000), None, Fraction(2004)) == 2004  # the first step: to the lagged mid
    # the CEX rose 1 % (lagged); the pool, already moved to 2010 by an arbitrage, rises 1 % from there
    assert follow_target(Fraction(2010), Fraction(2004), Fraction(202404, 100)) == Fraction(2010) * Fraction(101, 100)
    assert follow_target(Fraction(2010), Fraction(2004), Fraction(2004)) == 2010  # no CEX move: the pool stays


def test_the_capture_anchor_is_its_ethusdt_best_bid() -> None:
    assert str(capture_anchor()) == "2064.73"


@pytest.mark.timeout(400)
def test_headless_cex_demo_finds_and_executes_cex_dex_arbitrage(tmp_path: Path) -> None:
    """A headless ``demo --cex`` until the first CEX-DEX signal has both legs filled, then one Ctrl-C: CEX-DEX
    opportunities were found, executed with a paper CEX leg and a real on-chain DEX leg, and both legs show in
    the summary, on chain and in the books."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    err_path = tmp_path / "stderr"
    with err_path.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "demo", "--cex", "--headless", "--duration", "240",
             "--summary-every", "3", "--warmup", "2", "--settle", "4"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err_file, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            executed = re.findall(r"CEX-DEX outcomes \{[^}]*'EXECUTED': (\d+)", "".join(lines))
            if executed and int(executed[-1]) >= 1:
                break
        assert proc.poll() is None, "".join(lines)[-3000:] + err_path.read_text()[-3000:]
        proc.send_signal(signal.SIGINT)  # one Ctrl-C: the summary and the report follow
        code = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    out, err = "".join(lines), err_path.read_text()
    assert code == 130, out[-3000:] + err[-3000:]
    # the stand-in (prices mapped and amplified, depth kept), the Binance collector and the CEX-following driver
    assert re.search(r": started pid \d+: standin binance .*--map-price ETHUSDT:2064\.73=2\d{3}\.\d\dx20\*20 ", err), \
        err[-3000:]
    assert re.search(r": started pid \d+: collector binance --config ", err), err[-3000:]
    assert "follows the Binance stand-in's ETHUSDT mid" in out

    def figure(label: str) -> str:
        found = re.search(rf"^{re.escape(label)}\s*:\s*(.*)$", out, re.M)
        assert found, f"{label!r} not in the summary:\n" + out[-3000:]
        return found.group(1)

    assert int(figure("CEX quotes seen (Binance ETHUSDT)").split(",")[0]) >= 20
    found = int(figure("CEX-DEX signals"))
    cex_outcomes = ast.literal_eval(figure("CEX-DEX outcomes"))
    signals = int(figure("signals published by the strategy"))
    assert found >= 1 and found <= signals and sum(cex_outcomes.values()) <= found
    # executed: the paper CEX leg and the on-chain DEX leg both filled, and what they moved shows on each venue
    assert cex_outcomes.get("EXECUTED", 0) >= 1, out[-3000:]
    orders = ast.literal_eval(figure("CEX orders answered"))
    assert orders.get("ENTRY BUY", 0) + orders.get("ENTRY SELL", 0) >= cex_outcomes["EXECUTED"]
    # "{...}" then, when a CEX leg stayed open (LEG_OPEN under a slow executor), "; LEFT OPEN x ETH"
    dex_legs, _, left_open = figure("DEX legs").partition("; ")
    assert ast.literal_eval(dex_legs).get("EXECUTED", 0) >= cex_outcomes["EXECUTED"]
    assert not left_open or re.fullmatch(r"LEFT OPEN [\d,]+\.\d+ ETH", left_open), left_open
    assert re.match(r"-?[\d,]+\.\d{6} USDC", figure("CEX-DEX realized net profit"))
    assert re.search(r"ETH [+-][\d,.]+ \(now [\d,.]+\), USDT [+-][\d,.]+ \(now ", figure("CEX balances moved (paper fills)"))
    chain = figure("chain inventory moved (contract)")
    assert re.search(r"WETH [+-][\d,.]+ \(now [\d,.]+\), USDC [+-][\d,.]+ \(now", chain), chain
    assert "WETH +0.000000 " not in chain or "USDC +0.000000 " not in chain  # the DEX leg moved the contract's tokens
    assert "EXECUTED: both legs filled" in out  # the report's reasons, from the books
    # both legs in the books: the exchange balances the fills moved, and the DEX legs' tokens on chain
    work = Path(re.search(r"working directory (\S+)", out).group(1))  # type: ignore[union-attr]
    from portfolio.books import Books
    from runtime.files import open_sqlite_readonly

    db = open_sqlite_readonly(work / "data" / "portfolio.sqlite", tables=("ledger", "cex_balances"))
    try:
        books = Books(db)
        cex = books.cex_balances()
        venues = books.pnl_by_venue()
    finally:
        db.close()
    assert {asset for (_, asset) in cex} == {"ETH", "USDT"} and all(cex.values()), cex
    assert set(venues["binance"]["by_asset"]) == {"ETH", "USDT"}, venues
    chain = next(v for k, v in venues.items() if k.startswith("chain:"))
    assert len([a for a, d in chain["by_asset"].items() if d]) >= 2, venues  # WETH and USDC moved by DEX legs
    assert "exchange balances" in out and "binance:ETH" in out  # the report shows them
    # the paper exchange's keys: 0600 files, never in a config, a log or the output
    for key in (work / "cex" / "binance_api_key", work / "cex" / "binance_hmac_key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        value = key.read_text().strip()
        assert value not in out and value not in err
        for f in [*(work / "configs").iterdir(), *(work / "logs").iterdir(), work / "deploy.toml"]:
            assert value not in f.read_text(errors="replace"), f
