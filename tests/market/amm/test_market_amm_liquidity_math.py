"""LiquidityMath / Tick.tickSpacingToMaxLiquidityPerTick mirrors (values from v3-core's specs)."""

from __future__ import annotations

import pytest

from market.amm.errors import Overflow, Underflow
from market.amm.full_math import MAX_UINT128
from market.amm.liquidity_math import add_delta, tick_spacing_to_max_liquidity_per_tick


def test_add_delta():
    assert add_delta(1, 0) == 1
    assert add_delta(1, -1) == 0
    assert add_delta(1, 1) == 2
    assert add_delta(0, MAX_UINT128 >> 1) == MAX_UINT128 >> 1
    assert add_delta(MAX_UINT128, -(2**127)) == MAX_UINT128 - 2**127


def test_add_delta_reverts():
    with pytest.raises(Overflow, match="LA"):
        add_delta(2**128 - 15, 15)
    with pytest.raises(Underflow, match="LS"):
        add_delta(0, -1)
    with pytest.raises(Underflow, match="LS"):
        add_delta(3, -4)


@pytest.mark.parametrize(
    ("spacing", "expected"),
    [
        (10, 1917569901783203986719870431555990),
        (60, 11505743598341114571880798222544994),
        (200, 38350317471085141830651933667504588),
        (887272, MAX_UINT128 // 3),
        (2302, 441351967472034323558203122479595605),
    ],
)
def test_max_liquidity_per_tick(spacing, expected):
    assert tick_spacing_to_max_liquidity_per_tick(spacing) == expected
