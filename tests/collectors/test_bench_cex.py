"""``alphapulse bench cex`` at smoke size: it runs every collector core and counts forced/recovered resyncs."""

from __future__ import annotations

import pytest

from tools.bench import cex


def test_bench_cex_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert cex.main(["--repeat", "1", "--limit", "400", "--drop-every", "50"]) == 0
    out = capsys.readouterr().out
    for name in ("binance", "coinbase-exchange", "coinbase-advanced"):
        assert f"\n{name} " in out
    forced = [line for line in out.splitlines() if "resyncs forced" in line]
    assert len(forced) == 2
    for line in forced:
        n_forced = int(line.split("forced ")[1].split(",")[0])
        assert n_forced > 0 and line.endswith(f"recovered {n_forced}")


def test_bench_cex_counts_resyncs_under_the_standins_fault_switches(capsys: pytest.CaptureFixture[str]) -> None:
    """Every switch (drop, duplicate, swap, disconnect) is applied; Binance and Advanced Trade end with every book
    equal to the venue's and each forced resync recovered; the Exchange feed resyncs at each disconnect only."""
    assert cex.main(["--repeat", "1", "--limit", "1200", "--fault-every", "40"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.split("under the stand-ins' fault switches")[1].splitlines()
            if line.startswith(("binance ", "coinbase-"))}
    assert set(rows) == {"binance", "coinbase-exchange", "coinbase-advanced"}
    for name, (_, drop, dup, swap, disc, forced, recovered, reconnects, equal) in rows.items():
        assert min(int(drop), int(dup), int(swap), int(disc)) >= 1, name
        assert int(reconnects) == int(disc) and int(forced) == int(recovered) > 0, name
        if name != "coinbase-exchange":
            assert equal == "yes", name
    # the Exchange feed sees only the disconnects: each invalidates all 10 books
    assert int(rows["coinbase-exchange"][5]) == 10 * int(rows["coinbase-exchange"][4])
    # the clean capture forces nothing
    clean = [line.split() for line in out.splitlines()[1:4]]
    assert [(r[-2], r[-1]) for r in clean] == [("0", "0")] * 3


def test_bench_cex_faults_at_named_frames(capsys: pytest.CaptureFixture[str]) -> None:
    assert cex.main(["--repeat", "1", "--limit", "600", "--faults", "disconnect=300"]) == 0
    out = capsys.readouterr().out.split("under the stand-ins' fault switches")[1]
    assert "binance                0     0     0     1       3         3          1  yes" in out
    with pytest.raises(SystemExit):
        cex.main(["--faults", "late=3"])
