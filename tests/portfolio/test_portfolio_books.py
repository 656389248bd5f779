"""Books without a relay: idempotency, rejects, valuation, report and reconcile (recorded JSON-RPC)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
import pytest
from risk_testkit import ETHER, POOL_V2, USDC, USDC_ID, WETH, WETH_ID, S, reserves, result, signal, started

from portfolio.books import Books, native_token, open_db
from portfolio.metrics import risk_metrics
from portfolio.reconcile import reconcile
from portfolio.report import add_readable, build_report, render_text
from portfolio.report import main as report_main
from protocol.execution import Outcome
from protocol.header import Domain
from protocol.ids import TokenId

T0 = 1_700_000_000 * 10**9  # 2023-11-14 22:13:20 UTC
VAL = {1: (int(WETH_ID), int(WETH_ID))}


def books(tmp_path: Path) -> Books:
    return Books(open_db(tmp_path / "b.sqlite"), VAL)


def seqd(msgs, start: int = 1):  # type: ignore[no-untyped-def]
    return [m._replace(domain_seq=start + i) for i, m in enumerate(msgs)]


def test_duplicates_and_malformed_results_do_not_corrupt_the_books(tmp_path: Path) -> None:
    b = books(tmp_path)
    good = result(1, profit=ETHER // 10, gas_used=100_000, gas_price=10 * S, t_ns=T0)
    b.apply(Domain.EXECUTION, seqd([good]))
    before = b.balances()
    bad = [
        good,  # duplicate
        result(1, outcome=Outcome.REVERTED, t_ns=T0),  # a second outcome for the same signal
        result(2, profit=ETHER, token=TokenId.of(5, WETH), t_ns=T0),  # profit token on another chain
        result(3, outcome=Outcome.STALE, profit=ETHER, t_ns=T0),  # stale cannot realize a profit
        result(4, outcome=250, t_ns=T0),  # unknown outcome
    ]
    b.apply(Domain.EXECUTION, seqd(bad, 2))
    assert b.balances() == before == {int(WETH_ID): ETHER // 10, native_token(1): -10**15}
    reasons = [r[0] for r in b.db.execute("SELECT reason FROM rejects ORDER BY id")]
    assert len(reasons) == 4 and "conflicting result" in reasons[0] and "chain 5" in reasons[1]
    assert "cannot realize" in reasons[2] and "unknown outcome" in reasons[3]
    assert b.counters() == {"duplicate_results": 1}
    # a replay of already-applied sequences is ignored entirely
    b.apply(Domain.EXECUTION, seqd([result(9, profit=ETHER, t_ns=T0)], 3))
    assert b.balances() == before and b.last_seq(Domain.EXECUTION) == 6


def test_a_failing_batch_rolls_back_with_its_cursor(tmp_path: Path) -> None:
    b = books(tmp_path)

    class Boom(Exception):
        pass

    real = b._result

    def explode(t, seq, at):  # type: ignore[no-untyped-def]
        if t.signal_id == 2:
            raise Boom
        real(t, seq, at)

    b._result = explode  # type: ignore[method-assign]
    try:
        b.apply(Domain.EXECUTION, seqd([result(1, profit=5, t_ns=T0), result(2, profit=5, t_ns=T0)]))
    except Boom:
        pass
    b2 = Books(b.db, VAL)
    assert b2.balances() == {} and b2.last_seq(Domain.EXECUTION) == 0


def test_realized_and_unrealized_pnl_marked_to_pool_prices(tmp_path: Path) -> None:
    b = books(tmp_path)
    # WETH/USDC pool: 1 WETH = 2000 USDC. token0 is the smaller address (USDC 0xa0.. < WETH 0xc0..)
    assert POOL_V2.token0 == USDC_ID
    b.apply(Domain.MARKET_DATA, seqd([reserves(2_000_000 * 10**6, 1000 * ETHER, t_ns=T0)]))
    # a profit in USDC, valued at 2000 USDC/WETH
    b.apply(Domain.EXECUTION, seqd([result(1, profit=200 * 10**6, token=USDC_ID, t_ns=T0)]))
    pnl = b.pnl()
    assert pnl["realized_by_token"] == {int(USDC_ID): 200 * 10**6}
    assert pnl["realized_value"] == ETHER // 10
    assert pnl["unrealized_value"] == 0
    # WETH doubles against USDC: the USDC we hold is worth half as much WETH
    b.apply(Domain.MARKET_DATA, seqd([reserves(4_000_000 * 10**6, 1000 * ETHER, t_ns=T0 + 1)], 2))
    assert b.pnl()["unrealized_value"] == -(ETHER // 20)
    assert USDC.startswith("0xa0")


def test_risk_metrics() -> None:
    m = risk_metrics([10, -5, 20, -30, 5])
    assert m["total"] == 0 and m["max_drawdown"] == 30 and m["trades"] == 5
    assert m["var_95"] > 0 and m["sharpe"] == 0.0 and m["calmar"] == 0.0
    assert risk_metrics([])["sharpe"] is None


def make_history(tmp_path: Path) -> Path:
    b = books(tmp_path)
    msgs = []
    for i in range(1, 41):
        t = T0 + i * 3600 * 10**9  # one per hour: spans two UTC days
        b.apply(Domain.SIGNAL, seqd([signal(i, t_ns=t)], i))
        if i % 5 == 0:
            msgs.append(result(i, outcome=Outcome.STALE, reason="pool moved", t_ns=t))
            continue
        msgs.append(started(i, t_ns=t))
        if i % 4 == 0:
            msgs.append(result(i, outcome=Outcome.REVERTED, gas_used=150_000, gas_price=20 * S, reason="K", t_ns=t))
        else:
            msgs.append(result(i, profit=(i % 3) * 10**16, gas_used=120_000, gas_price=20 * S, t_ns=t))
    b.apply(Domain.EXECUTION, seqd(msgs))
    b.db.close()
    return tmp_path / "b.sqlite"


def test_report_text_json_png(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = make_history(tmp_path)
    import sqlite3

    rep = build_report(sqlite3.connect(path))
    assert rep["funnel"] == {"detected": 40, "re-validated": 32, "simulated": 32, "submitted": 32,
                             "included": 32, "profit": 16}
    assert rep["outcomes"] == {"EXECUTED": 24, "REVERTED": 8, "STALE": 8}
    assert rep["reasons"] == {"STALE: pool moved": 8, "REVERTED: K": 8}
    assert rep["gas_spent_wei"] == 8 * 150_000 * 20 * S + 24 * 120_000 * 20 * S
    assert rep["best_trades"][0]["net_value"] == 2 * 10**16 - 120_000 * 20 * S
    assert rep["worst_trades"][0]["net_value"] == -150_000 * 20 * S
    text = render_text(rep)
    assert "funnel:" in text and "Sharpe" in text and "best trades" in text
    print(text)
    capsys.readouterr()

    png = tmp_path / "r.png"
    assert report_main(["--db", str(path), "--json", "--png", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert out["funnel"] == rep["funnel"] and out["metrics"]["trades"] == 32
    assert report_main(["--db", str(path), "--json", "--day", "2023-11-15"]) == 0
    day = json.loads(capsys.readouterr().out)
    assert day["period"] == "2023-11-15" and 0 < day["results"] < 40
    assert report_main(["--db", str(path), "--day", "15/11/2023"]) == 2


def test_reconcile_against_recorded_json_rpc(tmp_path: Path) -> None:
    b = books(tmp_path)
    b.apply(Domain.EXECUTION, seqd([result(1, profit=3 * 10**15, gas_used=100_000, gas_price=S, t_ns=T0)]))
    owner = "0x" + "ab" * 20
    seen = []

    # recorded answers of a node (anvil-shaped) for chain 1
    def handler(request: httpx.Request) -> httpx.Response:
        calls = json.loads(request.content)
        seen.append(calls)
        out = []
        for c in calls:
            if c["method"] == "eth_chainId":
                r = "0x1"
            elif c["method"] == "eth_getBalance":
                r = hex(5 * ETHER)
            else:
                assert c["params"][0]["data"] == "0x70a08231" + "00" * 12 + "ab" * 20
                r = "0x" + f"{3 * 10**15 + 7:064x}"
            out.append({"jsonrpc": "2.0", "id": c["id"], "result": r})
        return httpx.Response(200, json=out)

    rep = reconcile(b, "http://node.invalid", owner, apply=True, transport=httpx.MockTransport(handler))
    rows = {r["token"]: r for r in rep["rows"]}
    assert rows[WETH.lower()]["difference"] == 7 and rows["native"]["books"] == -10**14
    assert seen[1][2]["params"][0]["to"] == WETH.lower()
    # --apply booked the differences: the books now match the chain
    assert b.balances()[int(WETH_ID)] == 3 * 10**15 + 7 and b.balances()[native_token(1)] == 5 * ETHER


def test_report_says_where_the_png_went_and_a_closed_pipe_is_quiet(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    path = make_history(tmp_path)
    png = tmp_path / "chart.png"
    assert report_main(["--db", str(path), "--png", str(png)]) == 0
    assert f"wrote the chart to {png}" in capsys.readouterr().err
    # `report --json | head`: the reader is gone before the report is written
    r, w = os.pipe()
    os.close(r)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "tools.cli", "report", "--db", str(path), "--json"], stdout=w,
                          stderr=subprocess.PIPE, text=True, cwd=root, env=dict(os.environ, PYTHONPATH=str(root)),
                          timeout=60)
    os.close(w)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_report_names_tokens_and_keeps_the_exact_integers(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from market.display import Registry, TokenInfo

    path = make_history(tmp_path)
    reg = Registry(tokens={int(WETH_ID): TokenInfo(symbol="WETH", decimals=18),
                           int(USDC_ID): TokenInfo(symbol="USDC", decimals=6)})
    assert report_main(["--db", str(path), "--json"], registry=reg, valuation_tokens=[int(WETH_ID)]) == 0
    rep = json.loads(capsys.readouterr().out)
    (realized,) = rep["realized_profit"]
    exact = rep["realized_profit_by_token"][str(int(WETH_ID))]
    assert isinstance(exact, int) and realized["amount"] == exact and realized["symbol"] == "WETH"
    assert realized["readable"] == f"{exact // 10**18}.{exact % 10**18 // 10**12:06d} WETH"
    assert rep["gas_spent"].endswith(" ETH") and isinstance(rep["gas_spent_wei"], int)
    assert rep["valuation_token"]["symbol"] == "WETH" and rep["net_pnl"].endswith(" WETH")
    assert rep["best_trades"][0]["net"].endswith(" WETH") and isinstance(rep["best_trades"][0]["net_value"], int)
    assert report_main(["--db", str(path)], registry=reg, valuation_tokens=[int(WETH_ID)]) == 0
    text = capsys.readouterr().out
    assert "net P&L: " in text and " WETH" in text and "valuation units" not in text
    assert realized["readable"] in text


def test_history_filters_outcomes_and_writes_csv_with_exact_integers(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import csv
    import io
    import sqlite3

    from market.display import Registry, TokenInfo
    from portfolio.history import history_rows, parse_outcomes
    from tools.report_cli import history

    path = make_history(tmp_path)
    reg = Registry(tokens={int(WETH_ID): TokenInfo(symbol="WETH", decimals=18)})
    rows = history_rows(sqlite3.connect(path), registry=reg, valuation_token=int(WETH_ID))
    assert len(rows) == 40 and rows[0]["signal_id"] == 40  # newest first
    assert {r["outcome"] for r in rows} == {"EXECUTED", "REVERTED", "STALE"}
    executed = [r for r in rows if r["outcome"] == "EXECUTED" and r["realized_profit"]]
    assert executed[0]["realized"] == f"{executed[0]['realized_profit'] / 10**18:.6f} WETH"
    assert executed[0]["profit_symbol"] == "WETH"
    with pytest.raises(ValueError, match="unknown outcome 'winning'"):
        parse_outcomes(["winning"])

    assert history(["--db", str(path), "--csv", "--outcome", "stale", "--outcome", "REVERTED"]) == 0
    out = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(out) == 16 and {r["outcome"] for r in out} == {"STALE", "REVERTED"}
    assert all(r["gas_wei"].isdigit() for r in out)
    assert history(["--db", str(path), "--since", "2023-11-15", "--limit", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("time (UTC)") and len(table) == 4
    with pytest.raises(SystemExit):
        history(["--db", str(path), "--outcome", "nope"])


def test_balance_is_readable_and_reconciles_read_only(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import portfolio.reconcile as reconcile_module
    from tools.report_cli import balance

    b = books(tmp_path)
    b.apply(Domain.EXECUTION, seqd([result(1, profit=3 * 10**15, gas_used=100_000, gas_price=S, t_ns=T0)]))
    b.db.close()
    db = tmp_path / "b.sqlite"
    deployment = tmp_path / "no-deployment.json"  # no registry file: WETH by its address, ETH by name
    assert balance(["--db", str(db), "--deployment", str(deployment), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_symbol = {row["symbol"]: row for row in out["balances"]}
    assert by_symbol["ETH"]["amount"] == -10**14 and by_symbol["ETH"]["readable"] == "-0.000100 ETH"
    assert any(row["amount"] == 3 * 10**15 for row in out["balances"])

    def handler(request: httpx.Request) -> httpx.Response:
        calls = json.loads(request.content)
        answers = {"eth_chainId": "0x1", "eth_getBalance": hex(5 * ETHER)}
        return httpx.Response(200, json=[{"jsonrpc": "2.0", "id": c["id"],
                                          "result": answers.get(c["method"], "0x" + f"{3 * 10**15 + 7:064x}")}
                                         for c in calls])

    real = reconcile_module.reconcile
    monkeypatch.setattr(reconcile_module, "reconcile", lambda books_, url, address: real(
        books_, url, address, transport=httpx.MockTransport(handler)))
    assert balance(["--db", str(db), "--deployment", str(deployment), "--reconcile", "--rpc", "http://node.invalid",
                    "--address", "0x" + "ab" * 20]) == 0
    text = capsys.readouterr().out
    assert "chain 1:" in text and "-0.000100 ETH" in text and "difference 7" in text and "<- differs" in text
    with pytest.raises(SystemExit):
        balance(["--db", str(db), "--reconcile"])


# ---- books that are not books: one line naming the file, exit 2, never a traceback ----


def _damaged_books(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.sqlite"
    if kind == "random bytes":
        path.write_bytes(bytes(range(256)) * 40)
    elif kind == "text":
        path.write_text("hello, not a database\n")
    elif kind == "another program's database":
        import sqlite3

        other = sqlite3.connect(path)
        other.execute("CREATE TABLE t (a)")
        other.commit()
        other.close()
    else:  # real books cut in half: the header reads, the pages do not
        b = Books(open_db(tmp_path / "whole.sqlite"), VAL)
        for i in range(300):
            b.apply(Domain.EXECUTION, seqd([result(i + 1, profit=ETHER // 10, t_ns=T0 + i)], start=i + 1))
        b.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        b.db.close()
        data = (tmp_path / "whole.sqlite").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("kind", ["random bytes", "text", "another program's database", "truncated"])
@pytest.mark.parametrize("command", ["report", "history", "balance", "reconcile"])
def test_a_corrupt_or_foreign_database_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              kind: str, command: str) -> None:
    from portfolio.reconcile import main as reconcile_main
    from tools.report_cli import balance, history

    path = _damaged_books(tmp_path, kind)
    before = path.read_bytes()
    run = {"report": lambda: report_main(["--db", str(path)]),
           "history": lambda: history(["--db", str(path)]),
           "balance": lambda: balance(["--db", str(path)]),
           "reconcile": lambda: reconcile_main(["--rpc", "http://127.0.0.1:9", "--address", "0x" + "11" * 20,
                                                "--db", str(path), "--apply"])}[command]
    code = run()
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and str(path) in lines[0], err
    assert ("is not a portfolio database" if kind == "another program's database"
            else "is not a usable SQLite database") in lines[0]
    assert path.read_bytes() == before  # nothing was written to it (reconcile --apply included)


def test_report_over_a_corrupt_archive_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "arch" / "domain=execution" / "date=2024-01-05" / "part-000000000001-000000000009.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PAR1" + bytes(200) + b"PAR1")
    code = report_main(["--archive", str(tmp_path / "arch")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(bad) in err and "not a readable Parquet file" in err


# ---------------------------------------------------------------- CEX-DEX: the venue as a dimension


def test_cex_dex_legs_book_each_venue_once(tmp_path: Path) -> None:
    from risk_testkit import cex_dex_result, cex_fill

    from protocol.execution import CexOrderPurpose
    from protocol.ids import Venue

    b = books(tmp_path)
    # a USDC/WETH price: 2000 USDC per WETH (valuation in WETH)
    b.apply(Domain.MARKET_DATA, seqd([reserves(2000 * 10**6 * 1000, 1000 * ETHER, t_ns=T0)]))
    usdc, weth = int(USDC_ID), int(WETH_ID)
    # signal 1: sold 1 ETH on Binance for 2100 USDT (fee included), bought 1 WETH back on chain for 2000 USDC
    msgs = [cex_fill(1, 2, ETHER, 2100 * 10**6, t_ns=T0),
            cex_dex_result(1, Outcome.EXECUTED, cex_quote=2100 * 10**6, dex_base=ETHER, dex_quote=2000 * 10**6,
                           gas_used=100_000, gas_price=10 * S, profit=100 * 10**6, t_ns=T0)]
    # signal 2: sold 1 ETH, the DEX leg reverted, bought 1 ETH back on Binance for 2110 USDT
    msgs += [cex_fill(2, 2, ETHER, 2100 * 10**6, t_ns=T0),
             cex_fill(2, 1, ETHER, 2110 * 10**6, purpose=CexOrderPurpose.UNWIND, t_ns=T0),
             cex_dex_result(2, Outcome.UNWOUND, cex_quote=2100 * 10**6, unwound=ETHER, unwind_quote=2110 * 10**6,
                            gas_used=50_000, gas_price=10 * S, profit=-10 * 10**6, t_ns=T0)]
    b.apply(Domain.EXECUTION, seqd(msgs))
    assert b.cex_balances() == {(Venue.BINANCE, "ETH"): -ETHER, (Venue.BINANCE, "USDT"): 2090 * 10**6}
    # on chain: the DEX leg's tokens and both transactions' gas; the results' profits are NOT booked again
    assert b.balances() == {weth: ETHER, usdc: -2000 * 10**6, native_token(1): -15 * 10**14}
    assert not list(b.db.execute("SELECT * FROM rejects"))
    by_venue = b.pnl_by_venue()
    assert by_venue["binance"]["by_asset"] == {"ETH": -ETHER, "USDT": 2090 * 10**6}
    assert by_venue["chain:1"]["by_asset"] == {str(weth): ETHER, str(usdc): -2000 * 10**6, str(native_token(1)): -15 * 10**14}
    # valued in WETH at 2000 USDC/WETH: binance -1 + 2090/2000, chain +1 - 1 - gas
    assert by_venue["binance"]["realized_value"] == -ETHER + 2090 * ETHER // 2000
    assert by_venue["chain:1"]["realized_value"] == -15 * 10**14
    assert b.pnl()["realized_value"] == by_venue["binance"]["realized_value"] + by_venue["chain:1"]["realized_value"]
    # the result's net value is the legs' and gas'
    (net,) = b.db.execute("SELECT net_value FROM results WHERE signal_id = 1").fetchone()
    assert int(net) == -ETHER + 2100 * ETHER // 2000 + ETHER - ETHER - 10**15
    # applied exactly once: the same batch again changes nothing
    b.apply(Domain.EXECUTION, seqd(msgs))
    assert b.cex_balances()[(Venue.BINANCE, "USDT")] == 2090 * 10**6
    rep = build_report(b.db)
    assert rep["outcomes"] == {"EXECUTED": 1, "UNWOUND": 1} and len(rep["worst_trades"]) == 2
    assert rep["books"]["cex_balances"] == {"binance:ETH": -ETHER, "binance:USDT": 2090 * 10**6}
    text = render_text(rep)
    assert "realized P&L by venue" in text and "binance:USDT" in text
    # readable: exchange amounts in the decimals of the chain token each asset trades as, P&L per venue in WETH
    from market.display import Registry, TokenInfo

    reg = Registry(tokens={weth: TokenInfo(symbol="WETH", decimals=18), usdc: TokenInfo(symbol="USDC", decimals=6)})
    rep = add_readable(build_report(b.db), reg, [weth])
    assert rep["books"]["cex_balances"] == {"binance:ETH": -ETHER, "binance:USDT": 2090 * 10**6}  # exact, unchanged
    text = render_text(rep)
    lines = text.splitlines()
    assert "exchange balances moved by our fills:" in lines and "(valuation token base units)" not in text
    assert any(ln.split() == ["binance:USDT", "2,090.000000", "USDT"] for ln in lines), text
    assert any(ln.split() == ["binance:ETH", "-1.000000", "ETH"] for ln in lines), text
    assert any(ln.split() == ["chain:1", "-0.001500", "WETH"] for ln in lines), text


def test_balance_command_lists_exchange_balances(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from risk_testkit import cex_fill

    from tools.report_cli import balance

    b = books(tmp_path)
    b.apply(Domain.EXECUTION, seqd([cex_fill(1, 1, ETHER, 2000 * 10**6, t_ns=T0)]))
    assert balance(["--db", str(tmp_path / "b.sqlite"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {(e["venue"], e["asset"], e["amount"]) for e in out["exchanges"]} == {
        ("binance", "ETH", ETHER), ("binance", "USDT", -2000 * 10**6)}
    assert balance(["--db", str(tmp_path / "b.sqlite")]) == 0
    assert "on exchanges" in capsys.readouterr().out


def test_an_older_books_file_gains_the_venue_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, signal_id INTEGER, chain_id INTEGER, "
               "token TEXT, delta TEXT, kind TEXT, value TEXT, at_ns INTEGER)")
    db.execute("INSERT INTO ledger(signal_id, chain_id, token, delta, kind, value, at_ns) VALUES (1,1,'5','7','gas',NULL,0)")
    db.commit()
    db.close()
    b = Books(open_db(path), VAL)
    assert [r for r in b.db.execute("SELECT venue, asset, delta FROM ledger")] == [(0, "", "7")]
    assert list(b.pnl_by_venue()) == ["chain:1"]


# ---------------------------------------------------------------- cross-chain: two chains, legs and bridge transfers


def _two_chains(tmp_path: Path, name: str = "x.sqlite") -> Books:
    from risk_testkit import USDC_B, WETH_B

    return Books(open_db(tmp_path / name), {1: (int(USDC_ID), int(WETH_ID)), 2: (int(USDC_B), int(WETH_B))})


def _xchain_trade(sid: int, t_ns: int):  # type: ignore[no-untyped-def]
    """Bought 1 WETH for 2000 USDC on chain 1, sold it for 2030 USDC on chain 2; each leg's own gas."""
    from risk_testkit import CHAIN_B, USDC_B, WETH_B, chain_leg, cross_chain_result

    legs = (chain_leg(sid, 0, chain=1, token_in=USDC_ID, token_out=WETH_ID, amount_in=2000 * 10**6, amount_out=ETHER,
                      gas_used=150_000, gas_price=2 * S),
            chain_leg(sid, 1, chain=CHAIN_B, token_in=WETH_B, token_out=USDC_B, amount_in=ETHER,
                      amount_out=2030 * 10**6, gas_used=120_000, gas_price=S))
    # the result's own gas fields must not be booked a second time
    return cross_chain_result(sid, legs, profit=30 * 10**6, gas_used=150_000, gas_price=2 * S, t_ns=t_ns)


def test_cross_chain_trade_and_bridge_transfer_book_each_chain_to_the_wei(tmp_path: Path) -> None:
    from risk_testkit import CHAIN_B, POOL_V2_B, USDC_B, WETH_B, bridge

    from protocol.execution import BridgeTransferState as BT

    b = _two_chains(tmp_path)
    n1, n2 = native_token(1), native_token(CHAIN_B)
    usdc1, weth1, usdc2, weth2 = int(USDC_ID), int(WETH_ID), int(USDC_B), int(WETH_B)
    # 2000 USDC per WETH on chain 1, 2030 on chain 2 (token0 is USDC)
    b.apply(Domain.MARKET_DATA, seqd([reserves(2000 * 10**6 * 1000, 1000 * ETHER, t_ns=T0),
                                      reserves(2030 * 10**6 * 1000, 1000 * ETHER, pool=POOL_V2_B, t_ns=T0)]))
    b.apply(Domain.EXECUTION, seqd([_xchain_trade(7, T0 + 1)]))
    gas1, gas2 = 150_000 * 2 * S, 120_000 * S
    assert b.balances_by_chain() == {
        1: {usdc1: -2000 * 10**6, weth1: ETHER, n1: -gas1},
        CHAIN_B: {usdc2: 2030 * 10**6, weth2: -ETHER, n2: -gas2}}
    # the trade's value: the quote it made less both chains' gas (each in its own chain's prices); the WETH
    # sold on chain 2 is valued at what it was bought for on chain 1
    gas_value = b.value_of(1, n1, -gas1) + b.value_of(CHAIN_B, n2, -gas2)  # type: ignore[operator]
    assert -gas_value > 0
    (net, gas_wei) = b.db.execute("SELECT net_value, gas_wei FROM results WHERE signal_id = 7").fetchone()
    assert int(net) == 30 * 10**6 + gas_value and int(gas_wei) == gas1 + gas2
    realized_before = b.pnl()["realized_value"]
    assert realized_before == int(net)

    # a rebalance: 1000 USDC from chain 2 back to chain 1, fee 5 bps (0.5 USDC), 2e14 wei of gas on chain 2
    amount, fee, bgas = 1000 * 10**6, 500_000, 2 * 10**14
    b.apply(Domain.EXECUTION, seqd([bridge(1, BT.SENT, amount=amount, nonce=4, gas=bgas, t_ns=T0 + 2)], 2))
    assert b.balances_by_chain()[CHAIN_B] == {usdc2: 1030 * 10**6, weth2: -ETHER, n2: -gas2 - bgas}
    assert b.balances_by_chain()[1][usdc1] == -2000 * 10**6  # not landed yet
    assert b.in_flight_by_token() == {usdc1: amount}
    [tr] = b.bridge_transfers()
    assert (tr["state_name"], tr["nonce"], tr["amount"], tr["gas_booked"]) == ("SENT", 4, amount, bgas)
    # in flight is still ours: only the gas left the books' value
    bgas_value = b.value_of(CHAIN_B, n2, -bgas)
    assert b.pnl()["realized_value"] == realized_before + bgas_value
    venues = b.pnl_by_venue()  # on no chain while it travels
    assert venues["in_flight"]["by_asset"] == {str(usdc1): amount}
    assert venues["chain:1"]["by_asset"][str(usdc1)] == -2000 * 10**6  # not landed
    assert venues["chain:2"]["by_asset"][str(usdc2)] == 1030 * 10**6
    b.db.close()

    b = _two_chains(tmp_path)  # a restart mid-transfer: the books carry it
    assert b.in_flight_by_token() == {usdc1: amount}
    b.apply(Domain.EXECUTION, [bridge(1, BT.COMPLETED, amount=amount, fee=fee, nonce=4, gas=bgas,
                                      t_ns=T0 + 3)._replace(domain_seq=3)])
    assert b.balances_by_chain() == {
        1: {usdc1: -2000 * 10**6 + amount - fee, weth1: ETHER, n1: -gas1},
        CHAIN_B: {usdc2: 1030 * 10**6, weth2: -ETHER, n2: -gas2 - bgas}}
    assert b.in_flight_by_token() == {}
    costs = b.bridge_costs()
    assert costs["fees_by_token"] == {usdc1: fee} and costs["gas_wei_by_chain"] == {CHAIN_B: bgas}
    assert costs["value"] == -fee + bgas_value
    venues = b.pnl_by_venue()
    assert venues["in_flight"] == {"by_asset": {str(usdc1): 0}, "realized_value": 0}
    assert venues["chain:1"]["by_asset"][str(usdc1)] == -2000 * 10**6 + amount - fee
    # P&L counts the bridge fee and both chains' gas (trade legs and the rebalancer's)
    assert b.pnl()["realized_value"] == 30 * 10**6 + gas_value - fee + bgas_value

    # a replay (the executor and the rebalancer republish after a restart, new sequence numbers): nothing twice
    before = b.balances(), b.pnl(), b.bridge_costs()
    b.apply(Domain.EXECUTION, seqd([_xchain_trade(7, T0 + 1),
                                    bridge(1, BT.SENT, amount=amount, nonce=4, gas=bgas, t_ns=T0 + 2),
                                    bridge(1, BT.COMPLETED, amount=amount, fee=fee, nonce=4, gas=bgas, t_ns=T0 + 3)],
                                   10))
    assert (b.balances(), b.pnl(), b.bridge_costs()) == before
    assert b.counters() == {"duplicate_results": 1, "duplicate_chain_legs": 2, "duplicate_bridge_transfers": 2}
    assert not list(b.db.execute("SELECT * FROM rejects"))
    # the report carries both chains and the transfers (exact integers)
    rep = build_report(b.db)
    xc = rep["books"]["cross_chain"]
    assert xc["balances_by_chain"] == {"1": {str(usdc1): -1000500000, str(weth1): ETHER, str(n1): -gas1},
                                       "2": {str(usdc2): 1030 * 10**6, str(weth2): -ETHER, str(n2): -gas2 - bgas}}
    assert xc["in_flight"] == {} and [t["state_name"] for t in xc["bridge_transfers"]] == ["COMPLETED"]
    assert xc["bridge_fees_by_token"] == {str(usdc1): fee} and xc["bridge_cost_value"] == -fee + bgas_value
    assert rep["gas_spent_wei_by_chain"] == {"1": gas1, "2": gas2 + bgas}
    assert rep["net_pnl_after_bridge_value"] == rep["net_pnl_value"] - fee + bgas_value
    assert rep["net_pnl_value"] == int(net)
    assert "exchange balances" not in render_text(rep)  # a bridge is no exchange


def test_a_cross_chain_trade_is_valued_at_one_price_of_each_asset_not_each_chains(tmp_path: Path) -> None:
    """Valued in WETH with each chain's own pool price, the USDC the source leg spent (at chain 1's 2000 USDC
    per WETH) and the USDC the destination leg received (at chain 2's 2030) did not cancel: the trade that
    made 30 USDC read as worth nothing but its gas (a profitable demo trade showed -0.05 WETH). The quote is
    one asset on both chains and is valued at the source leg's price, as the base already was."""
    from risk_testkit import CHAIN_B, POOL_V2_B, WETH_B

    b = Books(open_db(tmp_path / "w.sqlite"), {1: (int(WETH_ID), int(WETH_ID)), CHAIN_B: (int(WETH_B), int(WETH_B))})
    b.apply(Domain.MARKET_DATA, seqd([reserves(2000 * 10**6 * 1000, 1000 * ETHER, t_ns=T0),
                                      reserves(2030 * 10**6 * 1000, 1000 * ETHER, pool=POOL_V2_B, t_ns=T0)]))
    b.apply(Domain.EXECUTION, seqd([_xchain_trade(7, T0 + 1)]))
    gas_value = -(150_000 * 2 * S) - 120_000 * S  # the gas tokens are the valuation tokens' chains' ETH = WETH
    (net,) = b.db.execute("SELECT net_value FROM results WHERE signal_id = 7").fetchone()
    # 30 USDC at chain 1's price, 2000 USDC per WETH (floors: 2030 USDC valued pro rata of 2000 USDC's value)
    spent_value = b.value_of(1, int(USDC_ID), 2000 * 10**6)
    assert spent_value is not None and abs(spent_value - ETHER) <= ETHER // 100  # about 1 WETH (the pool's price)
    assert int(net) == spent_value * 2030 // 2000 - spent_value + gas_value
    assert int(net) > 0


def test_cross_chain_unwind_refused_transfer_and_a_completion_seen_first(tmp_path: Path) -> None:
    from risk_testkit import CHAIN_B, USDC_B, WETH_B, bridge, chain_leg, cross_chain_result

    from protocol.execution import BridgeTransferState as BT
    from protocol.execution import DexLegResult

    b = _two_chains(tmp_path)
    n1, n2 = native_token(1), native_token(CHAIN_B)
    # the source leg landed, the destination leg reverted; the source leg was swapped back for 1995 USDC
    legs = (chain_leg(8, 0, chain=1, token_in=USDC_ID, token_out=WETH_ID, amount_in=2000 * 10**6, amount_out=ETHER,
                      outcome=Outcome.UNWOUND, gas_used=100_000, gas_price=S, unwind_in=ETHER,
                      unwind_out=1995 * 10**6, unwind_gas=7 * 10**13),
            chain_leg(8, 1, chain=CHAIN_B, token_in=WETH_B, token_out=USDC_B, amount_in=ETHER, amount_out=0,
                      outcome=Outcome.UNWOUND, result=DexLegResult.REVERTED, gas_used=40_000, gas_price=S))
    b.apply(Domain.EXECUTION, seqd([cross_chain_result(8, legs, outcome=Outcome.UNWOUND, profit=-5 * 10**6,
                                                       t_ns=T0)]))
    assert b.balances() == {int(USDC_ID): -5 * 10**6, int(WETH_ID): 0, n1: -(10**14 + 7 * 10**13),
                            n2: -40_000 * S}
    # a refused transfer moved nothing but its gas; a COMPLETED seen without its SENT books both
    b.apply(Domain.EXECUTION, seqd([bridge(2, BT.REFUSED, amount=10**6, gas=10**13, reason="reverted"),
                                    bridge(3, BT.COMPLETED, amount=10**6, fee=100, nonce=9)], 2))
    assert b.balances()[n2] == -40_000 * S - 10**13
    assert b.balances()[int(USDC_B)] == -10**6 and b.balances()[int(USDC_ID)] == -5 * 10**6 + 10**6 - 100
    assert [t["state_name"] for t in b.bridge_transfers()] == ["REFUSED", "COMPLETED"]
    # a completion whose amounts do not add up is refused with the reason
    bad = bridge(4, BT.COMPLETED, amount=10**6, fee=100, nonce=10)
    b.apply(Domain.EXECUTION, seqd([bad._replace(tlvs=(dataclasses.replace(bad.tlvs[0], received=5),))], 4))
    [(reason,)] = b.db.execute("SELECT reason FROM rejects").fetchall()
    assert "received 5 + fee 100 != amount 1000000" in reason


def test_reconcile_per_chain_reads_each_chain_against_its_own_node(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two nodes (recorded JSON-RPC, one chain each): each chain's tokens against its own node, nothing of the
    other chain's; the CLI takes one --rpc per chain."""
    from risk_testkit import USDC_B, WETH_B

    import portfolio.reconcile as rec

    b = _two_chains(tmp_path)
    b.apply(Domain.EXECUTION, seqd([_xchain_trade(7, T0)]))
    onchain = {1: {USDC: 10**9 - 2000 * 10**6 + 10**12, WETH: ETHER}, 2: {USDC: 2030 * 10**6, WETH: 4 * ETHER}}
    asked: dict[int, list[str]] = {1: [], 2: []}

    def handler(request: httpx.Request) -> httpx.Response:
        chain = 1 if request.url.host == "one.invalid" else 2
        out = []
        for c in json.loads(request.content):
            if c["method"] == "eth_chainId":
                r = hex(chain)
            elif c["method"] == "eth_getBalance":
                r = "0x0"
            else:
                asked[chain].append(c["params"][0]["to"])
                r = "0x" + f"{onchain[chain][c['params'][0]['to']]:064x}"
            out.append({"jsonrpc": "2.0", "id": c["id"], "result": r})
        return httpx.Response(200, json=out)

    transport = httpx.MockTransport(handler)
    r1 = reconcile(b, "http://one.invalid", "0x" + "ab" * 20, transport=transport)
    r2 = reconcile(b, "http://two.invalid", "0x" + "cd" * 20, transport=transport)
    assert (r1["chain_id"], r2["chain_id"]) == (1, 2) and sorted(asked[1]) == sorted(asked[2]) == [USDC, WETH]
    rows1, rows2 = ({r["token"]: r for r in rep["rows"]} for rep in (r1, r2))
    assert rows1[USDC]["books"] == -2000 * 10**6 and rows1[USDC]["difference"] == 10**9 + 10**12
    assert rows2[USDC]["books"] == 2030 * 10**6 and rows2[USDC]["difference"] == 0
    assert rows2[WETH]["books"] == -ETHER and rows2[WETH]["difference"] == 5 * ETHER
    assert int(USDC_B) in b.balances() and int(WETH_B) in b.balances()
    # the CLI: one --rpc per chain, one --address for both; a count mismatch is one line
    b.db.close()
    real = rec.reconcile
    monkeypatch.setattr(rec, "reconcile", lambda *a, **kw: real(*a, **kw, transport=transport))
    assert rec.main(["--db", str(tmp_path / "x.sqlite"), "--rpc", "http://one.invalid", "--rpc", "http://two.invalid",
                     "--address", "0x" + "ab" * 20, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["chain_id"] for c in out["chains"]] == [1, 2]
    assert rec.main(["--db", str(tmp_path / "x.sqlite"), "--rpc", "http://one.invalid", "--rpc", "http://two.invalid",
                     "--address", "0x" + "ab" * 20, "--address", "0x" + "cd" * 20, "--address", "0x" + "ef" * 20]) == 2
    assert "3 --address" in capsys.readouterr().err


def test_balance_command_lists_transfers_in_flight_per_chain(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from risk_testkit import bridge

    from protocol.execution import BridgeTransferState as BT
    from tools.report_cli import balance

    b = _two_chains(tmp_path)
    b.apply(Domain.EXECUTION, seqd([bridge(4, BT.SENT, amount=7 * 10**6, nonce=2, t_ns=T0),
                                    bridge(5, BT.SENT, amount=10**6, nonce=3, t_ns=T0),
                                    bridge(5, BT.COMPLETED, amount=10**6, fee=1, nonce=3, t_ns=T0)]))
    b.db.close()
    assert balance(["--db", str(tmp_path / "x.sqlite"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(t["transfer_id"], t["src_chain"], t["dst_chain"], t["amount"]) for t in out["in_flight"]] == [(4, 2, 1, 7 * 10**6)]
    assert {(x["chain_id"], x["amount"]) for x in out["balances"]} == {(2, -8 * 10**6), (1, 10**6 - 1)}
    assert balance(["--db", str(tmp_path / "x.sqlite")]) == 0
    assert "transfer 4: chain 2 -> 1" in capsys.readouterr().out
