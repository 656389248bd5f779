"""TickBitmap mirror: sorted-tick stepping must stop at exactly the contract's word boundaries."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.amm.errors import InvalidTick
from market.amm.tick_bitmap import (
    build_bitmap,
    flip_tick,
    least_significant_bit,
    most_significant_bit,
    next_initialized_tick_within_one_word,
    next_initialized_tick_within_one_word_bitmap,
    position,
    word_bounds,
)

UPSTREAM_TICKS = (-200, -55, -4, 70, 78, 84, 139, 240, 535)  # TickBitmap.spec.ts, tick spacing 1

# (tick, lte) -> (next, initialized), from TickBitmap.spec.ts
UPSTREAM_CASES = [
    (78, False, 84, True),
    (-55, False, -4, True),
    (77, False, 78, True),
    (-56, False, -55, True),
    (255, False, 511, False),
    (-257, False, -200, True),
    (508, False, 511, False),
    (383, False, 511, False),
    (78, True, 78, True),
    (79, True, 78, True),
    (258, True, 256, False),
    (256, True, 256, False),
    (72, True, 70, True),
    (-257, True, -512, False),
    (1023, True, 768, False),
    (900, True, 768, False),
]


@pytest.mark.parametrize(("tick", "lte", "expected_next", "expected_init"), UPSTREAM_CASES)
def test_upstream_cases(tick, lte, expected_next, expected_init):
    ticks = sorted(UPSTREAM_TICKS)
    assert next_initialized_tick_within_one_word(ticks, tick, 1, lte) == (expected_next, expected_init)
    bitmap = build_bitmap(ticks, 1)
    assert next_initialized_tick_within_one_word_bitmap(bitmap, tick, 1, lte) == (
        expected_next,
        expected_init,
    )


def test_upstream_cases_with_extra_flips():
    ticks = sorted((*UPSTREAM_TICKS, 340))
    assert next_initialized_tick_within_one_word(ticks, 328, 1, False) == (340, True)
    ticks = sorted((*UPSTREAM_TICKS, 329))
    assert next_initialized_tick_within_one_word(ticks, 456, 1, True) == (329, True)


def test_bit_math():
    assert most_significant_bit(1) == 0 and least_significant_bit(1) == 0
    assert most_significant_bit(2**255) == 255 and least_significant_bit(2**255) == 255
    assert most_significant_bit(2**256 - 1) == 255 and least_significant_bit(2**256 - 1) == 0
    assert least_significant_bit(0b101000) == 3
    with pytest.raises(ValueError):
        most_significant_bit(0)


def test_position_wraps_negative_ticks_like_solidity():
    assert position(-1) == (-1, 255)
    assert position(-256) == (-1, 0)
    assert position(-257) == (-2, 255)
    assert position(256) == (1, 0)


def test_flip_tick():
    bitmap = flip_tick({}, 120, 60)
    assert bitmap == {0: 1 << 2}
    assert flip_tick(bitmap, 120, 60) == {}
    with pytest.raises(InvalidTick):
        flip_tick({}, 61, 60)


def test_word_bounds():
    # spacing 60: a word spans 256 * 60 = 15360 ticks; compressed tick -1 is in word -1.
    assert word_bounds(0, 60, True) == 0
    assert word_bounds(-1, 60, True) == -15360
    assert word_bounds(15359, 60, False) == 2 * 15360 - 60  # searching right from the last tick of word 0
    assert word_bounds(15300, 60, False) == 2 * 15360 - 60
    assert word_bounds(15299, 60, False) == 15360 - 60


@settings(max_examples=100, deadline=None)
@given(
    spacing=st.sampled_from([1, 10, 60, 200]),
    compressed=st.lists(st.integers(min_value=-2000, max_value=2000), max_size=40, unique=True),
    tick=st.integers(min_value=-600_000, max_value=600_000),
    lte=st.booleans(),
)
def test_sorted_list_matches_literal_bitmap(spacing, compressed, tick, lte):
    ticks = sorted(c * spacing for c in compressed)
    tick = tick % (2200 * spacing) - 1100 * spacing  # keep the probe near the initialized ticks
    expected = next_initialized_tick_within_one_word_bitmap(build_bitmap(ticks, spacing), tick, spacing, lte)
    assert next_initialized_tick_within_one_word(ticks, tick, spacing, lte) == expected


def test_dense_random_comparison():
    rng = random.Random(3)
    for spacing in (1, 60):
        ticks = sorted({rng.randint(-3000, 3000) * spacing for _ in range(300)})
        bitmap = build_bitmap(ticks, spacing)
        for _ in range(500):
            tick = rng.randint(-3100 * spacing, 3100 * spacing)
            for lte in (True, False):
                assert next_initialized_tick_within_one_word(
                    ticks, tick, spacing, lte
                ) == next_initialized_tick_within_one_word_bitmap(bitmap, tick, spacing, lte)
