"""portfolio.report: the P&L over time (gross, gas, net, drawdown), the funnel with values, every outcome,
values in the quote currency, the title, and the chart checked through its matplotlib objects."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from risk_testkit import ETHER, POOL_V2, USDC_ID, WETH_ID, S, reserves, result, signal, started

from market.display import QuoteCurrency, Registry, TokenInfo
from market.prices import convert_q96
from portfolio.books import Books, open_db
from portfolio.report import add_readable, build_report, render_text, report_figure, title
from portfolio.report import main as report_main
from protocol.execution import Outcome
from protocol.header import Domain

T0 = 1_700_000_000 * 10**9  # 2023-11-14 22:13:20 UTC
VAL = {1: (int(WETH_ID), int(WETH_ID))}
REG = Registry(tokens={int(WETH_ID): TokenInfo(symbol="WETH", decimals=18),
                       int(USDC_ID): TokenInfo(symbol="USDC", decimals=6)},
               quote=QuoteCurrency(name="USD", tokens={1: int(USDC_ID)}, paths={int(WETH_ID): (int(POOL_V2),)},
                                   native={1: int(WETH_ID)}))


def seqd(msgs, start: int = 1):  # type: ignore[no-untyped-def]
    return [m._replace(domain_seq=start + i) for i, m in enumerate(msgs)]


def make_run(tmp_path: Path) -> Path:
    """A demo-shaped run: ``<run>/data/portfolio.sqlite`` with a WETH/USDC price, twelve signals a minute apart
    ending EXECUTED (a win, then losses: a drawdown), REVERTED, STALE, HALTED, UNWOUND, LEG_OPEN,
    CEX_NOT_FILLED, and one still in flight."""
    data = tmp_path / "20231114-221320" / "data"
    data.mkdir(parents=True)
    b = Books(open_db(data / "portfolio.sqlite"), VAL)
    assert POOL_V2.token0 == WETH_ID or POOL_V2.token1 == WETH_ID
    r0, r1 = (1000 * ETHER, 2_000_000 * 10**6) if POOL_V2.token0 == WETH_ID else (2_000_000 * 10**6, 1000 * ETHER)
    b.apply(Domain.MARKET_DATA, seqd([reserves(r0, r1, t_ns=T0)]))
    plan = [(Outcome.EXECUTED, 3 * 10**16), (Outcome.EXECUTED, 10**15), (Outcome.REVERTED, 0),
            (Outcome.EXECUTED, 2 * 10**16), (Outcome.STALE, 0), (Outcome.HALTED, 0), (Outcome.UNWOUND, 0),
            (Outcome.LEG_OPEN, 0), (Outcome.CEX_NOT_FILLED, 0), (Outcome.REVERTED, 0), (Outcome.EXECUTED, 10**16)]
    msgs = []
    for i, (outcome, profit) in enumerate(plan, 1):
        t = T0 + i * 60 * 10**9
        b.apply(Domain.SIGNAL, seqd([signal(i, net=i * 10**15, t_ns=t)], i))
        sent = outcome in (Outcome.EXECUTED, Outcome.REVERTED)
        if sent:
            msgs.append(started(i, t_ns=t))
        msgs.append(result(i, outcome=outcome, profit=profit, gas_used=200_000 if sent else 0,
                           gas_price=50 * S, t_ns=t + 10**9))
    b.apply(Domain.EXECUTION, seqd(msgs))
    b.apply(Domain.SIGNAL, seqd([signal(99, net=7, t_ns=T0 + 20 * 60 * 10**9)], len(plan) + 1))  # in flight
    b.db.close()
    return data / "portfolio.sqlite"


def test_pnl_over_time_gross_gas_net_and_drawdown(tmp_path: Path) -> None:
    rep = build_report(sqlite3.connect(make_run(tmp_path)))
    tl = rep["timeline"]
    assert [p["at_ns"] for p in tl] == sorted(p["at_ns"] for p in tl) and len(tl) == rep["metrics"]["trades"] == 8
    gas = 200_000 * 50 * S  # 0.01 ETH a transaction, valued 1:1 in WETH
    assert rep["gas_value"] == -6 * gas and rep["gross_value"] == 3 * 10**16 + 10**15 + 2 * 10**16 + 10**16
    assert rep["gross_value"] + rep["gas_value"] == rep["net_pnl_value"] == tl[-1]["cum_net_value"]
    nets = [p["net_value"] for p in tl]
    # UNWOUND and LEG_OPEN traded on the exchange (no gas, nothing booked here: net 0) and are trades too
    assert nets == [3 * 10**16 - gas, 10**15 - gas, -gas, 2 * 10**16 - gas, 0, 0, -gas, 10**16 - gas]
    # drawdown after each trade: the fall from the running peak (2e16 after the first trade)
    assert [p["drawdown_value"] for p in tl] == [0, 9 * 10**15, 19 * 10**15, 9 * 10**15, 9 * 10**15, 9 * 10**15,
                                                 19 * 10**15, 19 * 10**15]
    assert max(p["drawdown_value"] for p in tl) == rep["metrics"]["max_drawdown"]


def test_every_outcome_and_the_funnel_with_values(tmp_path: Path) -> None:
    rep = build_report(sqlite3.connect(make_run(tmp_path)))
    allo = rep["outcomes_all"]
    assert list(allo)[:len(Outcome)] == [o.name for o in Outcome]  # every outcome, in code order, zeros too
    assert allo["HALTED"] == allo["STALE"] == allo["UNWOUND"] == allo["LEG_OPEN"] == allo["CEX_NOT_FILLED"] == 1
    assert allo["EXECUTED"] == 4 and allo["REVERTED"] == 2 and allo["SIMULATED"] == 0 and allo["IN_FLIGHT"] == 1
    assert sum(allo.values()) == rep["funnel"]["detected"] == 12  # the counts add up
    weth = str(int(WETH_ID))
    pred = rep["funnel_predicted_net"]
    assert pred["detected"] == {weth: sum(range(1, 12)) * 10**15 + 7}
    assert pred["included"] == {weth: (1 + 2 + 3 + 4 + 10 + 11) * 10**15}  # EXECUTED and REVERTED: 1-4, 10, 11
    assert pred["profit"] == {weth: (1 + 4) * 10**15}  # EXECUTED with a positive net: 1 and 4
    add_readable(rep, REG, [int(WETH_ID)])
    assert rep["funnel_predicted"]["profit"] == "0.005000 WETH"
    text = render_text(rep)
    for name in ("HALTED", "UNWOUND", "LEG_OPEN", "CEX_NOT_FILLED", "IN_FLIGHT", "0.005000 WETH"):
        assert name in text, name


def test_values_in_the_quote_currency_are_exact_integers_beside_text(tmp_path: Path) -> None:
    path = make_run(tmp_path)
    db = sqlite3.connect(path)
    rep = add_readable(build_report(db), REG, [int(WETH_ID)], Books(db).price_q96)
    weth_is_0 = POOL_V2.token0 == WETH_ID
    price = Books(db).price_q96(int(POOL_V2))
    r0, r1 = (1000 * ETHER, 2_000_000 * 10**6) if weth_is_0 else (2_000_000 * 10**6, 1000 * ETHER)
    assert price == (r1 << 96) // r0  # the V2 reserves' price, as the books booked it
    expect = convert_q96(rep["net_pnl_value"], price, weth_is_0)
    assert rep["net_pnl_quote"] == expect and isinstance(expect, int)
    assert rep["net_pnl_quote_text"] == f"{expect // 10**6:,}.{expect % 10**6 // 10**4:02d} USD"
    assert rep["quote"]["currency"] == "USD" and rep["quote"]["rate"] == "2,000.00 USD"
    assert rep["quote"]["rate_per_valuation_token"] == 2_000 * 10**6
    assert rep["gas_quote"] == convert_q96(rep["gas_value"], price, weth_is_0) < 0
    assert rep["timeline"][-1]["cum_net_quote"] == expect
    best = rep["best_trades"][0]
    assert best["net_quote"] == convert_q96(best["net_value"], price, weth_is_0) and best["net_quote_text"].endswith(" USD")
    json.dumps(rep)  # all of it serializes
    text = render_text(rep)
    assert "(= " in text and " USD)" in text and "quote currency: USD via USDC, 1 WETH = 2,000.00 USD" in text
    # no price for the pool: no quote-currency figures, never a made-up one
    rep2 = add_readable(build_report(db), REG, [int(WETH_ID)], lambda pool: None)
    assert "quote" not in rep2 and "net_pnl_quote" not in rep2


def test_title_names_the_run_and_the_dates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_run(tmp_path)
    assert report_main(["--db", str(path), "--json"], registry=REG, valuation_tokens=[int(WETH_ID)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["run"] == "20231114-221320"
    assert title(rep) == "AlphaPulse report: run 20231114-221320, 2023-11-14 22:14 - 22:33 UTC (all-time)"
    assert report_main(["--db", str(path)], registry=REG, valuation_tokens=[int(WETH_ID)]) == 0
    assert capsys.readouterr().out.startswith(title(rep))


def test_the_chart_through_its_matplotlib_objects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_run(tmp_path)
    db = sqlite3.connect(path)
    rep = add_readable(build_report(db), REG, [int(WETH_ID)], Books(db).price_q96)
    rep["run"] = "20231114-221320"
    fig = report_figure(rep, REG)
    assert tuple(fig.get_size_inches()) == (15.0, 8.5)
    assert fig.get_suptitle() == title(rep) and "run 20231114-221320" in fig.get_suptitle()
    pnl, bars, dd, funnel, outcomes = fig.axes[:5]
    # P&L over time: gross, gas and net as steps on a time axis, in WETH, with USD on the right
    assert [ln.get_label() for ln in pnl.get_lines()[:3]] == ["gross", "gas", "net"]
    net_line = pnl.get_lines()[2]
    assert list(net_line.get_ydata()) == [0, *(p["cum_net_value"] / 10**18 for p in rep["timeline"])]  # from zero
    assert pnl.get_xlabel() == "time (UTC)" and pnl.get_ylabel() == "WETH"
    xs = list(net_line.get_xdata())
    # in days: from the first signal (T0 + 60 s) to the last result (T0 + 661 s)
    assert xs == sorted(xs) and xs[-1] - xs[0] == pytest.approx(601 / 86400, rel=1e-6)
    (secondary,) = [c for c in pnl.child_axes]
    assert secondary.get_ylabel() == "USD (at 2,000.00 USD per WETH)"
    assert "drawdown" in dd.get_title() and dd.get_xlabel() == "time (UTC)"
    assert [t.get_text() for t in bars.get_xticklabels()] == ["gross", "gas", "net"]
    bar_text = [t.get_text() for t in bars.texts]
    assert len(bar_text) == 3 and all("USD" in t and "WETH" in t for t in bar_text)
    assert [t.get_text() for t in funnel.get_yticklabels()] == list(rep["funnel"])
    assert any("0.005000 WETH" in t.get_text() for t in funnel.texts)
    names = [t.get_text() for t in outcomes.get_yticklabels()]
    assert names == list(rep["outcomes_all"]) and {"STALE", "HALTED", "UNWOUND", "LEG_OPEN", "CEX_NOT_FILLED",
                                                    "IN_FLIGHT"} <= set(names)
    assert [round(p.get_width()) for p in outcomes.patches] == list(rep["outcomes_all"].values())

    png = tmp_path / "report.png"
    assert report_main(["--db", str(path), "--png", str(png)], registry=REG, valuation_tokens=[int(WETH_ID)]) == 0
    assert f"wrote the chart to {png.resolve()}" in capsys.readouterr().err
    from matplotlib.image import imread

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and imread(png).shape[:2] == (765, 1350)  # 90 dpi


def test_an_empty_book_still_reports_and_draws(tmp_path: Path) -> None:
    db = open_db(tmp_path / "empty.sqlite")
    rep = add_readable(build_report(db), REG, [int(WETH_ID)], Books(db).price_q96)
    assert rep["timeline"] == [] and rep["outcomes_all"]["IN_FLIGHT"] == 0 and rep["first_ns"] is None
    assert title(rep) == "AlphaPulse report: no activity (all-time)"
    fig = report_figure(rep, REG)
    assert len(fig.axes) >= 5 and fig.axes[0].get_lines()[2].get_xydata().size == 0


def test_the_report_shows_both_chains_in_tokens_and_the_bridge_transfers_with_fees(tmp_path: Path) -> None:
    from risk_testkit import CHAIN_B, USDC_B, WETH_B, bridge, chain_leg, cross_chain_result

    from portfolio.books import native_token
    from protocol.execution import BridgeTransferState as BT

    b = Books(open_db(tmp_path / "x.sqlite"), {1: (int(USDC_ID), int(WETH_ID)), CHAIN_B: (int(USDC_B), int(WETH_B))})
    legs = (chain_leg(7, 0, chain=1, token_in=USDC_ID, token_out=WETH_ID, amount_in=2000 * 10**6, amount_out=ETHER,
                      gas_used=150_000, gas_price=2 * S),
            chain_leg(7, 1, chain=CHAIN_B, token_in=WETH_B, token_out=USDC_B, amount_in=ETHER,
                      amount_out=2030 * 10**6, gas_used=120_000, gas_price=S))
    b.apply(Domain.EXECUTION, seqd([
        cross_chain_result(7, legs, profit=30 * 10**6, gas_used=150_000, gas_price=2 * S, t_ns=T0),
        bridge(1, BT.SENT, amount=1000 * 10**6, nonce=4, gas=2 * 10**14, t_ns=T0 + 1),
        bridge(1, BT.COMPLETED, amount=1000 * 10**6, fee=500_000, nonce=4, gas=2 * 10**14, t_ns=T0 + 2),
        bridge(2, BT.SENT, amount=ETHER // 2, nonce=5, token=WETH_ID.address, src=1, dst=CHAIN_B, t_ns=T0 + 3)]))
    reg = Registry(tokens={int(t): TokenInfo(symbol=s, decimals=d) for t, s, d in (
        (WETH_ID, "WETH", 18), (USDC_ID, "USDC", 6), (WETH_B, "WETH", 18), (USDC_B, "USDC", 6))})
    rep = add_readable(build_report(b.db), reg)
    exact = json.loads(json.dumps(build_report(b.db)["books"]["cross_chain"]))
    assert {k: v for k, v in rep["books"]["cross_chain"].items() if k != "readable"} == exact  # integers unchanged
    lines = render_text(rep).splitlines()
    at = lines.index("balances per chain (as the books moved them; exact integers in parentheses):")
    # bought 1 WETH for 2,000 USDC on chain 1, sold it for 2,030 on chain 2; 1,000 USDC bridged back less 0.5 fee;
    # 0.5 WETH on its way to chain 2; each chain's native coin paid its gas
    assert lines[at + 1] == (f"  chain 1: -0.000300 ETH (-{300_000 * S} wei), -1,000.500000 USDC (-1000500000), "
                             f"0.500000 WETH ({ETHER // 2})")
    assert lines[at + 2] == (f"  chain 2: -0.000320 ETH (-{120_000 * S + 2 * 10**14} wei), 1,030.000000 USDC "
                             f"(1030000000), -1.000000 WETH (-{ETHER})")
    assert native_token(1) in {int(t) for t in exact["balances_by_chain"]["1"]}
    assert lines[at + 3].startswith("gas per chain (trades and bridge transfers): chain 1 0.000300 ETH")
    assert lines[at + 4] == ("bridge transfers: 1 in flight, 1 completed, 0 refused/failed; fees 0.500000 USDC "
                             "(500000); in flight 0.500000 WETH (500000000000000000)")
    assert lines[at + 5] == ("  #1 chain 2 -> 1: 1,000.000000 USDC (1000000000) COMPLETED, fee 0.500000 USDC "
                             "(500000), received 999.500000 USDC (999500000)")
    assert lines[at + 6] == "  #2 chain 1 -> 2: 0.500000 WETH (500000000000000000) SENT"
    # amounts name their chain when the books span two (USDC on chain 1 is not USDC on chain 2)
    assert [r["readable"] for r in rep["realized_profit"]] == ["30.000000 USDC on 1"]
    # a one-chain run without transfers has no such section
    assert "balances per chain" not in render_text(add_readable(build_report(open_db(make_run(tmp_path))), REG))
