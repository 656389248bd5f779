"""Replay of one day of real Uniswap V3 USDC/WETH swaps (2024-01-05, 0.05 % and 0.3 % pools).

Each Swap log carries the post-swap ``sqrtPriceX96``, ``liquidity`` and ``tick``.  For every swap whose previous
event in the same pool was also a swap with the same active liquidity (no mint/burn in between, no net tick
crossing), the previous swap's slot0 is the exact pre-state, and the simulator must reproduce the logged amounts
*and* the post-state bit for bit.  The tick map is unknown, so the state has no initialized ticks -- but the
simulator still stops at bitmap-word boundaries, as the pool does.

A log does not say whether the swap was exact-input, exact-output or stopped at a price limit; each swap must be
explained by one of the three (the limit case is simulated with the logged post-price as the limit).
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from market.amm.uniswap_v3 import SwapResult, V3PoolState, swap_exact_input, swap_exact_output

DATA = Path(__file__).resolve().parents[2] / "data" / "golden" / "demeter-fetch"

POOLS = {
    # file, fee, tick spacing, number of replayable swaps (counted independently in the dataset README)
    "usdc_weth_005": (
        "ethereum-0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640-2024-01-05.pool.tick.csv",
        500,
        10,
        5373,
    ),
    "usdc_weth_030": (
        "ethereum-0x8ad599c3a0ff1de082011efddc58f1908eb6e6d8-2024-01-05.pool.tick.csv",
        3000,
        60,
        231,
    ),
}


def _replayable_swaps(filename: str):
    prev = None
    with open(DATA / filename, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["tx_type"] != "SWAP":
                prev = None  # a mint/burn may have changed the liquidity or the tick map
                continue
            cur = (
                int(row["amount0"]),
                int(row["amount1"]),
                int(row["sqrtPriceX96"]),
                int(row["total_liquidity"]),
                int(float(row["current_tick"])),
            )
            if prev is not None and prev[3] == cur[3]:
                yield row["transaction_hash"], prev, cur
            prev = cur


def _matches(result: SwapResult, amount_in: int, amount_out: int, post: tuple) -> bool:
    _, _, price, liquidity, tick = post
    return (
        result.amount_in == amount_in
        and result.amount_out == amount_out
        and result.sqrt_price_x96 == price
        and result.liquidity == liquidity
        and result.tick == tick
    )


@pytest.mark.parametrize("pool", sorted(POOLS))
def test_replay_day_of_swaps(pool: str):
    filename, fee, spacing, expected_count = POOLS[pool]
    kinds: Counter[str] = Counter()
    unexplained = []
    for tx_hash, pre, post in _replayable_swaps(filename):
        amount0, amount1 = post[0], post[1]
        state = V3PoolState(
            sqrt_price_x96=pre[2], tick=pre[4], liquidity=pre[3], fee=fee, tick_spacing=spacing, ticks={}
        )
        zero_for_one = amount0 > 0
        amount_in, amount_out = (amount0, -amount1) if zero_for_one else (amount1, -amount0)
        if _matches(swap_exact_input(state, zero_for_one, amount_in), amount_in, amount_out, post):
            kinds["exact_input"] += 1
        elif amount_out > 0 and _matches(
            swap_exact_output(state, zero_for_one, amount_out), amount_in, amount_out, post
        ):
            kinds["exact_output"] += 1
        elif _matches(swap_exact_input(state, zero_for_one, amount_in, post[2]), amount_in, amount_out, post):
            kinds["price_limit"] += 1
        else:
            unexplained.append(tx_hash)
    assert sum(kinds.values()) + len(unexplained) == expected_count
    assert unexplained == []
    assert kinds["exact_input"] > kinds["exact_output"] > 0
