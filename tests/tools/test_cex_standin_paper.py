"""tools/cex_standin/paper.py: the paper exchange's order fault switches (the branches the executor's CEX-DEX tests
drive over loopback are in tests/execution/test_execution_cex_run.py) and their command line."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tools.cex_standin.cli import main
from tools.cex_standin.paper import OrderFaults


def test_order_faults_parse_per_order_number() -> None:
    f = OrderFaults.parse("reject=1,4; cap=2:0.5,3:0 ;delay=5:6.5;drop=6,7")
    assert f.reject == {1, 4} and f.cap == {2: Decimal("0.5"), 3: Decimal(0)} and f.delay == {5: 6.5}
    assert f.drop == {6, 7}
    assert OrderFaults.parse("") == OrderFaults()


@pytest.mark.parametrize("spec, words", [("bogus=1", "unknown order fault"), ("cap=1:x", "not a number"),
                                         ("reject=x", "not a number"), ("delay=2", "not a number"),
                                         ("drop=x", "not a number")])
def test_bad_order_faults_are_one_clear_error(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        OrderFaults.parse(spec)


def test_the_command_line_refuses_bad_order_faults(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PAPER_K", "k")
    monkeypatch.setenv("PAPER_H", "h")
    with pytest.raises(SystemExit) as exit_:
        main(["binance", "--paper", "PAPER_K:PAPER_H", "--order-faults", "cap=1:x"])
    assert exit_.value.code == 2 and "not a number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["coinbase", "--order-faults", "reject=1"])
    assert "binance stand-in only" in capsys.readouterr().err
