"""Micro-benchmark for the V3 swap simulator (called by ``alphapulse bench strategy``; not a CLI command itself).

Runs a fixed mix of exact-input and exact-output swaps in both directions on the real Uniswap V3 WBTC/WETH 0.3 %
pool state at block 24,407,242 (458 initialized ticks; the same snapshot the golden quoter tests use): small
in-range trades, trades that cross a few ticks, and a couple that cross bitmap words.  Returns swaps per second.

The snapshot is read from the repository's ``tests/data/golden`` folder; pass ``state=`` to benchmark another pool.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from market.amm.uniswap_v3 import V3PoolState, swap_exact_input, swap_exact_output

__all__ = ["DEFAULT_SNAPSHOT", "bench_v3_swaps", "load_snapshot", "state_from_snapshot"]

DEFAULT_SNAPSHOT = (
    Path(__file__).resolve().parents[2]
    / "tests"
    / "data"
    / "golden"
    / "degenbot"
    / "uniswap_v3_wbtc_weth_block_24407242.state.json"
)

# (zero_for_one, exact_input, amount).  token0 = WBTC (8 decimals), token1 = WETH (18 decimals); the pool holds
# ~117 WBTC / ~19.5k WETH.  Sizes span arbitrage-typical trades, from 0.001 BTC up to a few hundred WETH.
_SWAP_MIX: tuple[tuple[bool, bool, int], ...] = (
    (True, True, 100_000),
    (True, True, 1_000_000),
    (True, True, 10_000_000),
    (True, True, 100_000_000),
    (True, True, 1_000_000_000),
    (False, True, 10**17),
    (False, True, 10**18),
    (False, True, 10**19),
    (False, True, 10**20),
    (False, True, 3 * 10**20),
    (True, False, 10**18),
    (True, False, 10**20),
    (False, False, 1_000_000),
    (False, False, 100_000_000),
    (False, False, 1_000_000_000),
    (True, True, 5_000_000_000),
)


def state_from_snapshot(snapshot: Mapping[str, Any]) -> V3PoolState:
    """Build a :class:`V3PoolState` from a degenbot chain-data snapshot (``scalars`` + ``tick_data``).

    ``tick_data[tick] = [liquidityGross, liquidityNet, block]``; both liquidities are kept.
    """
    scalars = snapshot["scalars"]
    tick_data = snapshot["tick_data"]
    return V3PoolState(
        sqrt_price_x96=int(scalars["sqrt_price_x96"]),
        tick=int(scalars["tick"]),
        liquidity=int(scalars["liquidity"]),
        fee=int(scalars["fee"]),
        tick_spacing=int(scalars["tick_spacing"]),
        ticks={int(t): int(v[1]) for t, v in tick_data.items()},
        liquidity_gross={int(t): int(v[0]) for t, v in tick_data.items()},
    )


def load_snapshot(path: Path | str = DEFAULT_SNAPSHOT) -> V3PoolState:
    """Read a degenbot snapshot JSON file and return its pool state."""
    with open(path, encoding="utf-8") as fh:
        return state_from_snapshot(json.load(fh))


def bench_v3_swaps(n: int, state: V3PoolState | None = None) -> float:
    """Simulate ``n`` swaps (cycling through a fixed size/direction mix) and return swaps per second.

    Each swap starts from the same state (as a strategy evaluating candidate trades does).  One untimed pass over
    the mix warms the tick->price cache first, so the figure is steady-state throughput.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    if state is None:
        state = load_snapshot()
    mix = _SWAP_MIX
    for zero_for_one, exact_in, amount in mix:
        (swap_exact_input if exact_in else swap_exact_output)(state, zero_for_one, amount)

    jobs = [mix[k % len(mix)] for k in range(n)]
    exact_in_fn, exact_out_fn = swap_exact_input, swap_exact_output
    start = time.perf_counter()
    for zero_for_one, exact_in, amount in jobs:
        if exact_in:
            exact_in_fn(state, zero_for_one, amount)
        else:
            exact_out_fn(state, zero_for_one, amount)
    elapsed = time.perf_counter() - start
    return n / elapsed if elapsed > 0 else float("inf")
