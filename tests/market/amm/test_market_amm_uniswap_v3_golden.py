"""Uniswap V3 WBTC/WETH 0.3 % at block 24,407,242: all 80 on-chain QuoterV1 answers, reproduced to the wei.

Pool state (all 458 initialized ticks) and quotes were recorded by degenbot on a fork at the same block; see
``tests/data/golden/README.md``.  token0 = WBTC, token1 = WETH, so "WBTC->WETH" is zero-for-one.  The quoter was
called with ``sqrtPriceLimitX96 = MIN_SQRT_RATIO + 1`` / ``MAX_SQRT_RATIO - 1``; for amounts larger than the pool
can absorb it returns the partial swap up to that limit.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from market.amm.tick_math import MAX_SQRT_RATIO, MAX_TICK, MIN_SQRT_RATIO, MIN_TICK
from market.amm.uniswap_v3 import V3PoolState, apply_swap, swap_exact_input, swap_exact_output
from tools.bench.v3_swaps import state_from_snapshot

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "golden" / "degenbot"
SNAPSHOT = json.loads((GOLDEN / "uniswap_v3_wbtc_weth_block_24407242.state.json").read_text())
QUOTES = json.loads((GOLDEN / "uniswap_v3_wbtc_weth_block_24407242.quoter_golden.json").read_text())[
    "entries"
]
STATE = state_from_snapshot(SNAPSHOT)
POOL = "0xCBCdF9626bC03E24f779434178A73a0B4bad62eD"


def _cases():
    for key, entry in sorted(
        QUOTES.items(), key=lambda kv: (kv[0].split("|")[1:3], int(kv[0].split("|")[3]))
    ):
        pool, method, pair, amount = key.split("|")
        assert pool == POOL
        yield pytest.param(method, pair, int(amount), entry["value"], id=f"{method}-{pair}-{amount}")


def _quote(state: V3PoolState, method: str, pair: str, amount: int):
    zero_for_one = pair == "WBTC->WETH"
    limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    if method == "quoteExactInputSingle":
        return swap_exact_input(state, zero_for_one, amount, limit)
    assert method == "quoteExactOutputSingle"
    return swap_exact_output(state, zero_for_one, amount, limit)


def test_golden_set_is_complete():
    kinds = Counter(tuple(k.split("|")[1:3]) for k in QUOTES)
    assert len(QUOTES) == 80
    assert set(kinds.values()) == {20}
    assert len(kinds) == 4


def test_snapshot_tick_map_is_complete_and_consistent():
    # Sum of liquidityNet over all initialized ticks is 0 (every position has both ends in the map), and the
    # active liquidity equals the sum of liquidityNet of the ticks at or below the current tick.
    assert sum(STATE.ticks.values()) == 0
    assert len(STATE.ticks) == 458
    assert sum(net for t, net in STATE.ticks.items() if t <= STATE.tick) == STATE.liquidity
    assert STATE.sorted_ticks == tuple(sorted(STATE.ticks))


@pytest.mark.parametrize(("method", "pair", "amount", "expected"), list(_cases()))
def test_quoter_parity(method: str, pair: str, amount: int, expected: int):
    result = _quote(STATE, method, pair, amount)
    if method == "quoteExactInputSingle":
        assert result.amount_out == expected
        assert result.amount_in <= amount
    else:
        assert result.amount_in == expected
        assert result.amount_out <= amount


def test_default_limit_is_the_quoter_limit():
    for amount in (10**6, 10**9, 10**30):
        assert swap_exact_input(STATE, True, amount) == swap_exact_input(
            STATE, True, amount, MIN_SQRT_RATIO + 1
        )
        assert swap_exact_output(STATE, False, amount) == swap_exact_output(
            STATE, False, amount, MAX_SQRT_RATIO - 1
        )


@pytest.mark.parametrize("zero_for_one", [True, False])
def test_draining_swap_stops_at_the_limit_and_reports_consumed_input(zero_for_one: bool):
    max_int256 = 2**255 - 1
    result = swap_exact_input(STATE, zero_for_one, max_int256)
    limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    assert result.sqrt_price_x96 == limit
    assert result.tick == (MIN_TICK if zero_for_one else MAX_TICK - 1)
    # Only what was needed to reach the limit is taken; the output is bounded by the pool's token balance.
    assert 0 < result.amount_in < max_int256
    balance_out = SNAPSHOT["balance_token1"] if zero_for_one else SNAPSHOT["balance_token0"]
    assert 0 < result.amount_out <= balance_out
    # Every initialized tick on the way was crossed and the liquidity beyond the last one is 0.
    crossed = [t for t in STATE.ticks if (t <= STATE.tick if zero_for_one else t > STATE.tick)]
    assert result.ticks_crossed == len(crossed)
    assert result.liquidity == 0
    # 1e30 is not enough to push through the full-range position to the limit, but what is left to buy beyond
    # that point is dust: same output (as the golden set shows), all of the input consumed.
    partial = swap_exact_input(STATE, zero_for_one, 10**30)
    assert partial.amount_out == result.amount_out
    assert partial.amount_in == 10**30
    assert partial.sqrt_price_x96 != limit


def test_exact_output_golden_matches_exact_input_of_that_amount():
    # The quoter's exact-output answer, paid as an exact input, buys at least the requested output.
    for key, entry in QUOTES.items():
        _, method, pair, amount = key.split("|")
        amount = int(amount)
        if method != "quoteExactOutputSingle" or entry["value"] > 10**25:
            continue  # skip the liquidity-exhausting ones (partial fills)
        res = swap_exact_input(STATE, pair == "WBTC->WETH", entry["value"])
        assert res.amount_out >= amount


def test_sequential_swaps_from_applied_state_are_valid_states():
    state = STATE
    for zero_for_one, amount in ((True, 10**9), (False, 5 * 10**20), (True, 3 * 10**8), (False, 10**15)):
        result = swap_exact_input(state, zero_for_one, amount)
        new_state = apply_swap(state, result)
        assert new_state is not state
        # Re-validating through the public constructor proves slot0 and the tick map are consistent.
        rebuilt = V3PoolState(
            sqrt_price_x96=new_state.sqrt_price_x96,
            tick=new_state.tick,
            liquidity=new_state.liquidity,
            fee=new_state.fee,
            tick_spacing=new_state.tick_spacing,
            ticks=dict(new_state.ticks),
            liquidity_gross=new_state.liquidity_gross,
        )
        assert rebuilt == new_state
        assert sum(net for t, net in new_state.ticks.items() if t <= new_state.tick) == new_state.liquidity
        state = new_state
    # The original snapshot is untouched.
    assert STATE == state_from_snapshot(SNAPSHOT)
