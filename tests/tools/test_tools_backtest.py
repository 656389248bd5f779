"""``alphapulse backtest``: the latency and gas models on a small hand-made market, a bad or incomplete
archive refused in one line, and -- the issue's acceptance test -- a live headless demo's archive
replayed with the latency that really happened gives, for every trade the live run executed, the
live realized profit to the wei."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_replay_decisions import WD_SUSHI, WD_UNI, WETH, strategy_config

import protocol as P
from execution.config import config_from_dict as executor_config
from protocol.execution import Outcome
from protocol.header import Domain
from protocol.message import encode
from relays.archiver import domain_dir, write_flush
from strategy.config import config_from_dict as strategy_from_dict
from tools.backtest import Backtest, main
from tools.deployment_writer import write_toml

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_704_412_800 * 10**9
GWEI = 10**9


def header(b: int, base_fee: int) -> P.BlockHeader:
    return P.BlockHeader(chain_id=1, number=b, timestamp=1_704_412_800 + 12 * (b - 100), gas_limit=30_000_000,
                         gas_used=15_000_000, hash=b.to_bytes(32, "big"), parent_hash=(b - 1).to_bytes(32, "big"),
                         base_fee=base_fee, priority_fee=GWEI)


def v2(pool: P.PoolId, dai: int, weth: int) -> P.PoolSnapshot:
    return P.PoolSnapshot(pool=pool, block_number=100, fee_ppm=3000, tick_spacing=0, reserve0=dai, reserve1=weth,
                          sqrt_price_x96=0, tick=0, liquidity=0, ticks=())


def gap_market(base_fees: dict[int, int]) -> list[tuple[P.TLV, ...]]:
    """Block 100: two WETH/DAI pairs 4 % apart (one arbitrage); blocks 101 and 102 leave them alone; in
    block 103 the gap closes (the cheap pair moves to the other's price); headers up to 105."""
    out: list[tuple[P.TLV, ...]] = [(header(100, base_fees[100]),), (v2(WD_UNI, 2000 * 10**22, 10**22),),
                                    (v2(WD_SUSHI, 2080 * 10**21, 10**21),)]
    for b in range(101, 106):
        out.append((header(b, base_fees[b]),))
        if b == 103:
            out.append((P.V2Reserves(pool=WD_SUSHI, block_number=b, log_index=3, reserve0=2000 * 10**21,
                                     reserve1=10**21),))
    return out


def messages(stream: list[tuple[P.TLV, ...]]) -> list[P.Message]:
    return [P.Message(domain=Domain.MARKET_DATA, tlvs=tlvs, source_id=17742, source_seq=i + 1, domain_seq=i + 1,
                      event_time_ns=T0 + i * 10**9, receive_time_ns=T0 + i * 10**9) for i, tlvs in enumerate(stream)]


def executor_doc(**gas: Any) -> dict[str, Any]:
    return {"executor": {"chain_id": 1, "rpc_url": "http://127.0.0.1:1", "contract": "0x" + "ab" * 20,
                         "gas_token": WETH, "mode": "shadow"},
            "keystore": {"path": "/nonexistent/keystore.json", "password_file": "/nonexistent/password"},
            "gas": gas,
            "venues": [{"venue": "UNISWAP_V2", "factory": "0x" + "11" * 20},
                       {"venue": "SUSHISWAP", "factory": "0x" + "22" * 20}]}


def backtest(latency: int, base_fees: dict[int, int] | None = None, **gas: Any) -> Backtest:
    fees = base_fees or dict.fromkeys(range(100, 106), 20 * GWEI)
    strategy = strategy_from_dict(strategy_config(Path("/tmp/md.sock"), Path("/tmp/sig.sock")))
    bt = Backtest(strategy, executor_config(executor_doc(**gas)), latency_blocks=latency)
    for msg in messages(gap_market(fees)):
        bt.on_market(msg)
    bt.finish()
    return bt


def only_trade(bt: Backtest) -> tuple[Any, P.ExecutionResult]:
    assert len(bt.trades) == 1, bt.trades
    t = next(iter(bt.trades.values()))
    assert t.result is not None
    return t, t.result


# --------------------------------------------------------------------------- the latency model


def test_a_fill_lands_n_blocks_after_its_signal_on_that_blocks_state() -> None:
    signalled = None
    for n in (1, 2, 3):
        t, r = only_trade(backtest(n))
        assert t.block_number == 100
        signalled = signalled or r.expected_profit
        assert r.block_number == 100 + n, (n, r)
        if n < 3:  # blocks 101 and 102 start from the state block 100 left: the profit the signal priced
            assert Outcome(r.outcome) == Outcome.EXECUTED and r.realized_profit == signalled > 0, (n, r)
        else:  # block 103 starts from the same state too: its own trade comes after ours in the block
            assert Outcome(r.outcome) == Outcome.EXECUTED and r.realized_profit == signalled
    t, r = only_trade(backtest(4))  # block 104 sees the closed gap: the contract's minimums revert it
    assert r.block_number == 104 and Outcome(r.outcome) == Outcome.REVERTED and r.realized_profit == 0
    assert r.gas_used > 0


def test_the_executor_takes_one_signal_at_a_time_and_a_block_after_the_archive_is_not_a_fill() -> None:
    t, r = only_trade(backtest(9))  # the archive ends at block 105
    assert Outcome(r.outcome) == Outcome.NOT_INCLUDED and "the archive ends at block 105" in r.reason


def test_latency_below_one_block_is_refused() -> None:
    from tools.backtest import BacktestError

    with pytest.raises(BacktestError, match="at least 1"):
        backtest(0)


# --------------------------------------------------------------------------- the gas model


def test_gas_is_the_strategys_units_priced_at_the_landing_blocks_base_fee_plus_the_executors_tip() -> None:
    fees = {100: 20 * GWEI, 101: 21 * GWEI, 102: 23 * GWEI, 103: 25 * GWEI, 104: 25 * GWEI, 105: 25 * GWEI}
    strategy = strategy_from_dict(strategy_config(Path("/tmp/md.sock"), Path("/tmp/sig.sock")))
    for n, base in ((1, 21 * GWEI), (2, 23 * GWEI)):
        _, r = only_trade(backtest(n, fees))
        assert r.gas_used == strategy.gas.base + 2 * strategy.gas.v2_hop  # two V2 hops
        assert r.effective_gas_price == base + GWEI  # the fixed tip (1 gwei), under the max fee
    # a max fee below the landing block's base fee: the transaction waits for a block it can pay
    fees = {100: 20 * GWEI, 101: 60 * GWEI, 102: 30 * GWEI, 103: 30 * GWEI, 104: 30 * GWEI, 105: 30 * GWEI}
    _, r = only_trade(backtest(1, fees))  # max fee = 2 x 20 gwei + tip = 41 gwei < 60 gwei
    assert r.block_number == 102 and r.effective_gas_price == 31 * GWEI
    # the executor's fee cap bounds the price
    _, r = only_trade(backtest(1, None, max_fee_per_gas=20 * GWEI + GWEI // 2))
    assert r.effective_gas_price == 20 * GWEI + GWEI // 2


# --------------------------------------------------------------------------- bad and incomplete archives


def _archive(tmp: Path) -> Path:
    run = tmp / "run"
    write_toml(run / "configs" / "strategy.toml", strategy_config(Path("/tmp/md.sock"), Path("/tmp/sig.sock")))
    write_toml(run / "configs" / "executor.toml", executor_doc())
    ddir = domain_dir(run / "data" / "archive", "market_data")
    ddir.mkdir(parents=True)
    msgs = messages(gap_market(dict.fromkeys(range(100, 106), 20 * GWEI)))
    write_flush(ddir, [encode(m) for m in msgs[:4]], {"alphapulse.domain": "market_data"})
    write_flush(ddir, [encode(m) for m in msgs[4:]], {"alphapulse.domain": "market_data"})
    return run / "data" / "archive"


def test_a_whole_archive_backtests_to_text_and_exact_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = _archive(tmp_path)
    assert main([str(archive), "--latency-blocks", "2"]) == 0
    out = capsys.readouterr().out
    assert "fills 2 block(s) after the signal" in out and "funnel:" in out and "EXECUTED" in out
    assert main([str(archive), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (trade,) = doc["trades"]
    assert trade["outcome"] == "EXECUTED" and isinstance(trade["realized_profit"], int) and trade["block"] == 101
    assert doc["report"]["funnel"]["included"] == 1 and doc["live"] is None


@pytest.mark.parametrize("damage", ["missing file", "corrupt file", "not an archive", "no config"])
def test_a_bad_or_incomplete_archive_is_one_line_and_exit_2(tmp_path: Path, damage: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    archive = _archive(tmp_path)
    first = sorted(domain_dir(archive, "market_data").glob("date=*/part-*.parquet"))[0]
    if damage == "missing file":
        first.unlink()
    elif damage == "corrupt file":
        first.write_bytes(first.read_bytes()[:100])
    elif damage == "not an archive":
        archive = tmp_path / "run" / "configs"
    else:
        (tmp_path / "run" / "configs" / "executor.toml").unlink()
    assert main([str(archive)]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alphapulse backtest: "), cap.err
    assert "Traceback" not in cap.err
    expect = {"missing file": "incomplete", "corrupt file": "incomplete", "not an archive": "domain=market_data",
              "no config": "executor config"}[damage]
    assert expect in lines[0], lines[0]


# --------------------------------------------------------------------------- against a live demo run


@pytest.mark.timeout(420)
def test_the_backtest_of_a_live_demo_archive_realizes_the_live_profit_to_the_wei() -> None:
    demo_dir = Path(tempfile.mkdtemp(prefix="apbt-", dir="/tmp"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", ALPHAPULSE_DEMO_DIR=str(demo_dir))
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "demo", "--headless", "--duration", "300",
                             "--summary-every", "3"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            executed = re.findall(r"'EXECUTED': (\d+)", "".join(lines))
            if executed and int(executed[-1]) >= 3:
                break
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
        reader.join(timeout=10)
        out = "".join(lines)
        run = Path(re.search(r"^logs and data: (\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
        archive = run / "data" / "archive"
        live = _live_executed(archive)
        assert live, out[-3000:]
        # what happened: each executed trade landed some blocks after its signal's block
        by_latency: dict[int, list[tuple[Any, int]]] = {}
        for key, (block, profit) in live.items():
            by_latency.setdefault(block - key[1], []).append((key, profit))
        compared = 0
        for latency, trades in sorted(by_latency.items()):
            r = subprocess.run([sys.executable, "-m", "tools.cli", "backtest", str(archive), "--json",
                                "--latency-blocks", str(latency)], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=300)
            assert r.returncode == 0, r.stderr
            doc = json.loads(r.stdout)
            rows = {(row["signal_block"], row["live_realized_profit"]): row for row in doc["live"]["trades"]}
            for key, profit in trades:
                row = rows[(key[1], profit)]
                assert row["backtest_outcome"] == "EXECUTED", row
                assert row["backtest_block"] == key[1] + latency
                assert row["backtest_realized_profit"] == profit, row  # to the wei
                compared += 1
        print(f"live trades compared: {compared} at latencies {sorted(by_latency)}, all equal to the wei")
        assert compared == len(live) >= 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        import shutil

        shutil.rmtree(demo_dir, ignore_errors=True)


def _live_executed(archive: Path) -> dict[tuple[Any, ...], tuple[int, int]]:
    """The live run's EXECUTED trades from the archive itself: signal key -> (block, realized profit)."""
    from relays.archiver import read_archive
    from tools.backtest import signal_key

    keys = {}
    for msg in read_archive(archive, "signal"):
        ident = msg.find(P.SignalIdentity)
        if ident is not None:
            keys[ident.signal_id] = signal_key(msg)
    out = {}
    for msg in read_archive(archive, "execution"):
        for t in msg.tlvs:
            if type(t) is P.ExecutionResult and t.outcome == Outcome.EXECUTED and t.signal_id in keys:
                out[keys[t.signal_id]] = (t.block_number, t.realized_profit)
    return out
