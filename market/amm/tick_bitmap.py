"""Mirror of Uniswap v3-core ``TickBitmap.sol`` (and ``BitMath.sol``) over a sorted list of initialized ticks.

The pool finds the next tick to swap towards with ``nextInitializedTickWithinOneWord``: it only looks inside one
256-bit bitmap word (256 * tickSpacing ticks) and, if no initialized tick is in that word, returns the word's
boundary tick with ``initialized = False``.  The swap loop then *stops at that boundary* and starts a new
``computeSwapStep`` there.  Because each step rounds its own amounts, skipping the boundary (jumping straight to the
next initialized tick, as a naive "sorted ticks" simulator would) changes results in the last wei.

We keep initialized ticks as a sorted tuple (the pool state stores ``tick -> liquidityNet``), and
:func:`next_initialized_tick_within_one_word` reproduces the contract's answer with one ``bisect`` plus the word
bounds.  A literal bitmap implementation (:func:`build_bitmap`,
:func:`next_initialized_tick_within_one_word_bitmap`, using the BitMath msb/lsb) is kept alongside it as an
executable specification; the tests check that both agree.

Word arithmetic: ``compressed = floor(tick / tickSpacing)`` (the contract truncates, then decrements for negative
non-multiples -- i.e. floor), ``wordPos = compressed >> 8`` and ``bitPos = compressed mod 256`` (``uint8(x % 256)``
of a negative int24 wraps to the same value as Python's ``x & 0xFF``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence

from .errors import InvalidTick

__all__ = [
    "build_bitmap",
    "compress",
    "flip_tick",
    "least_significant_bit",
    "most_significant_bit",
    "next_initialized_tick_within_one_word",
    "next_initialized_tick_within_one_word_bitmap",
    "position",
    "word_bounds",
]


def most_significant_bit(x: int) -> int:
    """``BitMath.mostSignificantBit``: index of the highest set bit (``x > 0``)."""
    if x <= 0:
        raise ValueError("BitMath.mostSignificantBit: x must be > 0")
    return x.bit_length() - 1


def least_significant_bit(x: int) -> int:
    """``BitMath.leastSignificantBit``: index of the lowest set bit (``x > 0``)."""
    if x <= 0:
        raise ValueError("BitMath.leastSignificantBit: x must be > 0")
    return (x & -x).bit_length() - 1


def compress(tick: int, tick_spacing: int) -> int:
    """``tick / tickSpacing`` rounded towards negative infinity, as at the top of nextInitializedTickWithinOneWord."""
    return tick // tick_spacing


def position(compressed: int) -> tuple[int, int]:
    """``TickBitmap.position``: ``(wordPos, bitPos)`` of a *compressed* tick."""
    return compressed >> 8, compressed & 0xFF


def word_bounds(tick: int, tick_spacing: int, lte: bool) -> int:
    """The tick the contract returns when the searched word has no initialized tick.

    ``lte``: the lowest tick of the word containing ``compress(tick)``; otherwise the highest tick of the word
    containing ``compress(tick) + 1`` (searching right starts from the next compressed tick).
    """
    compressed = tick // tick_spacing
    if lte:
        return ((compressed >> 8) << 8) * tick_spacing
    return ((((compressed + 1) >> 8) << 8) + 255) * tick_spacing


def next_initialized_tick_within_one_word(
    sorted_ticks: Sequence[int], tick: int, tick_spacing: int, lte: bool
) -> tuple[int, bool]:
    """``TickBitmap.nextInitializedTickWithinOneWord`` over a sorted sequence of initialized ticks.

    ``sorted_ticks`` must be strictly increasing multiples of ``tick_spacing``.  Returns ``(next, initialized)``
    exactly as the contract: with ``lte`` the greatest initialized tick ``<= tick`` inside the current word, else
    the word's lowest tick; otherwise the least initialized tick ``> tick`` inside the next compressed tick's word,
    else that word's highest tick.  ``next`` may lie beyond MIN_TICK/MAX_TICK; the pool clamps it.
    """
    compressed = tick // tick_spacing
    if lte:
        # Initialized t (a multiple of spacing) satisfies t / spacing <= compressed  <=>  t <= tick.
        bound = ((compressed >> 8) << 8) * tick_spacing
        i = bisect_right(sorted_ticks, tick) - 1
        if i >= 0 and sorted_ticks[i] >= bound:
            return sorted_ticks[i], True
        return bound, False
    # Initialized t satisfies t / spacing >= compressed + 1  <=>  t > tick.
    bound = ((((compressed + 1) >> 8) << 8) + 255) * tick_spacing
    i = bisect_right(sorted_ticks, tick)
    if i < len(sorted_ticks) and sorted_ticks[i] <= bound:
        return sorted_ticks[i], True
    return bound, False


# --- literal bitmap (executable specification of the contract; not used on the hot path) ----------------------


def flip_tick(bitmap: Mapping[int, int], tick: int, tick_spacing: int) -> dict[int, int]:
    """``TickBitmap.flipTick``, returning a new bitmap dict (``wordPos -> uint256``) instead of mutating storage."""
    if tick % tick_spacing != 0:
        raise InvalidTick(f"flipTick: tick {tick} is not a multiple of tick spacing {tick_spacing}")
    word_pos, bit_pos = position(tick // tick_spacing)
    new = dict(bitmap)
    word = new.get(word_pos, 0) ^ (1 << bit_pos)
    if word:
        new[word_pos] = word
    else:
        new.pop(word_pos, None)
    return new


def build_bitmap(ticks: Iterable[int], tick_spacing: int) -> dict[int, int]:
    """Bitmap words (``wordPos -> uint256``) with a bit set for every tick in ``ticks`` (as the pool stores them)."""
    words: dict[int, int] = {}
    for tick in ticks:
        if tick % tick_spacing != 0:
            raise InvalidTick(f"tick {tick} is not a multiple of tick spacing {tick_spacing}")
        word_pos, bit_pos = position(tick // tick_spacing)
        words[word_pos] = words.get(word_pos, 0) | (1 << bit_pos)
    return words


def next_initialized_tick_within_one_word_bitmap(
    bitmap: Mapping[int, int], tick: int, tick_spacing: int, lte: bool
) -> tuple[int, bool]:
    """Line-by-line translation of ``nextInitializedTickWithinOneWord`` on a real bitmap (reference version)."""
    compressed = tick // tick_spacing
    if lte:
        word_pos, bit_pos = position(compressed)
        # all the 1s at or to the right of the current bitPos
        mask = (1 << bit_pos) - 1 + (1 << bit_pos)
        masked = bitmap.get(word_pos, 0) & mask
        if masked != 0:
            return (compressed - (bit_pos - most_significant_bit(masked))) * tick_spacing, True
        return (compressed - bit_pos) * tick_spacing, False
    # start from the word of the next tick, since the current tick state doesn't matter
    word_pos, bit_pos = position(compressed + 1)
    # all the 1s at or to the left of the bitPos (within 256 bits)
    mask = ~((1 << bit_pos) - 1) & ((1 << 256) - 1)
    masked = bitmap.get(word_pos, 0) & mask
    if masked != 0:
        return (compressed + 1 + (least_significant_bit(masked) - bit_pos)) * tick_spacing, True
    return (compressed + 1 + (255 - bit_pos)) * tick_spacing, False
