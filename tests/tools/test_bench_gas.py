"""``alphapulse bench gas`` on a fresh devnet: every path type runs on the current contract, the V2/V3
ones on the previous contract too (from its kept artifact), and the current contract is cheaper on
each. Gas is deterministic, so the comparison cannot flake under load."""

from __future__ import annotations

import json

from tools.bench import gas


def test_bench_gas_compares_both_contracts_on_every_path_type(capsys) -> None:
    assert gas.main(["--json"]) == 0
    rows = {r["path"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == {"V2->V2", "V2->V3", "V2->V2->V3", "V4->V4", "V2->V2 (Balancer)", "Curve->V2 (Balancer)",
                         "V2->V2 (inventory)", "V2->V2 (same block)", "V2->V3 (same block)",
                         "V2->V2->V3 (same block)", "V4->V4 (no protocol fee)", "V4->V4 (fees collected)",
                         "V4->V4 (tick crossing)"}
    for name in ("V2->V2", "V2->V3", "V2->V2->V3"):
        r = rows[name]
        assert r["profit"] > 0 and r["amount_in"] > 0
        assert r["previous"] is not None and r["current"] < r["previous"], r
    assert rows["V4->V4"]["previous"] is None  # the previous contract has no V4 path
    assert 0 < rows["V4->V4"]["current"] < rows["V2->V2"]["current"]
    # The Balancer Vault lends to any path without V4, at a price in gas over a pair's own flash swap;
    # a path starting with a Curve hop can only borrow from it. The previous contract has neither.
    for name in ("V2->V2 (Balancer)", "Curve->V2 (Balancer)"):
        r = rows[name]
        assert r["previous"] is None and r["profit"] > 0 and r["current"] > 0, r
    assert rows["V2->V2 (Balancer)"]["amount_in"] == rows["V2->V2"]["amount_in"]
    assert rows["V2->V2 (Balancer)"]["current"] > rows["V2->V2"]["current"]
    # The separate INVENTORY mode runs the same cycle from the contract's own start token: no lender,
    # no callback, less gas; the previous contract has no such mode.
    inv = rows["V2->V2 (inventory)"]
    assert inv["previous"] is None and inv["amount_in"] == rows["V2->V2"]["amount_in"]
    assert inv["profit"] == rows["V2->V2"]["profit"] and inv["current"] < rows["V2->V2"]["current"]
    # A backrun: the opening swap in the arbitrage's own block, so its pair writes no price oracle
    # again. Same cycle, same input; the saving is the pair's (two cumulative-price slots), the same
    # on both contracts.
    for name in ("V2->V2", "V2->V3", "V2->V2->V3"):
        r, same = rows[name], rows[f"{name} (same block)"]
        assert (same["amount_in"], same["profit"], same["target"]) == (r["amount_in"], r["profit"], r["target"])
        saved = r["current"] - same["current"]
        assert saved > 2 * 2_900 and r["previous"] - same["previous"] == saved, (r, same)
    # The devnet's 0.3 % V4 pool has a protocol fee. After a collection, the first fee-paying swap
    # writes its currency's accrued-fee slot from zero: exactly 20,000 - 2,900 more (EIP-2200), same
    # cycle. Without the fee the cycle is cheaper still (and sized for its own, lower, fee).
    v4, collected, no_fee = rows["V4->V4"], rows["V4->V4 (fees collected)"], rows["V4->V4 (no protocol fee)"]
    assert (collected["amount_in"], collected["profit"]) == (v4["amount_in"], v4["profit"])
    assert collected["current"] - v4["current"] == 17_100
    assert no_fee["previous"] is None and no_fee["profit"] > v4["profit"] and no_fee["current"] < v4["current"]
    # An initialized tick in the cycle's way (checked crossed by the bench): at least the tick's two
    # fee-growth-outside slots read cold and rewritten, on top of the plain row.
    crossing = rows["V4->V4 (tick crossing)"]
    assert crossing["profit"] > 0 and crossing["current"] - v4["current"] > 2 * (2_100 + 2_900), crossing


def test_bench_gas_refuses_an_unknown_path(capsys) -> None:
    try:
        gas.main(["--path", "V9->V9"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_bench_gas_prints_the_steady_state_it_measures(capsys) -> None:
    """--steady: the recipient holds the start token and the contract 1 unit of every token of the
    path; the conditions are printed above the table and recorded in the JSON rows."""
    assert gas.main(["--steady", "--path", "V2->V2", "--path", "V2->V2 (same block)"]) == 0
    out = capsys.readouterr().out
    assert "(same block): the swap that opens the opportunity" in out  # a labelled row says its condition
    assert "the profit recipient already holds the start token" in out
    assert "the contract holds 1 unit of every token of the path (dust)" in out
    assert "mined 12 s later" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("V2->V2 ")]
    (row,) = [r for r in rows if not r[1].startswith("(")]
    assert row[1] != "-"  # both contracts measured
    (same,) = [r for r in rows if r[1:3] == ["(same", "block)"]]
    assert same[3] != "-" and int(same[4].replace(",", "")) < int(row[2].replace(",", ""))
    assert gas.main(["--json", "--path", "V2->V2"]) == 0
    (plain,) = map(json.loads, capsys.readouterr().out.splitlines())
    assert (plain["recipient_holds"], plain["contract_dust"]) == (False, False)
