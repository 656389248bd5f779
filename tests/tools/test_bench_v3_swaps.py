"""The benchmark entry point used by ``alphapulse bench strategy`` runs and returns a rate."""

from __future__ import annotations

import pytest

from tools.bench.v3_swaps import DEFAULT_SNAPSHOT, bench_v3_swaps, load_snapshot


def test_bench_runs_on_the_golden_state():
    assert DEFAULT_SNAPSHOT.is_file()
    assert bench_v3_swaps(40) > 0
    assert bench_v3_swaps(20, state=load_snapshot()) > 0
    with pytest.raises(ValueError):
        bench_v3_swaps(0)
