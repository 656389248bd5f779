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
