"""Mirror of Uniswap v3-core ``TickMath.sol``: ticks <-> Q64.96 sqrt prices.

``get_sqrt_ratio_at_tick`` must reproduce the contract bit for bit -- it is not ``sqrt(1.0001**tick) * 2**96``
rounded somehow, it is a specific product of 20 precomputed Q128.128 constants with truncating shifts, and the
pool compares prices for *equality* (``state.sqrtPriceX96 == step.sqrtPriceNextX96`` decides whether a tick is
crossed).  An implementation that differs by one wei on any tick changes which ticks get crossed.

``get_tick_at_sqrt_ratio`` follows the contract's log2 approximation (msb + 14 squaring steps, then a
``tickLow``/``tickHi`` disambiguation).  The result is, by construction, the greatest tick whose sqrt ratio is
<= the price; the tests check that definition independently with a binary search.
"""

from __future__ import annotations

from functools import lru_cache
from math import floor, log

from .errors import InvalidSqrtPrice, InvalidTick
from .full_math import MAX_UINT256

__all__ = [
    "MAX_SQRT_RATIO",
    "MAX_TICK",
    "MIN_SQRT_RATIO",
    "MIN_TICK",
    "get_sqrt_ratio_at_tick",
    "get_sqrt_ratio_at_tick_cached",
    "get_tick_at_sqrt_ratio",
    "get_tick_at_sqrt_ratio_fast",
]

MIN_TICK = -887272
MAX_TICK = -MIN_TICK
# getSqrtRatioAtTick(MIN_TICK) and getSqrtRatioAtTick(MAX_TICK)
MIN_SQRT_RATIO = 4295128739
MAX_SQRT_RATIO = 1461446703485210103287273052203988822378723970342

# ratio for |tick| bit 0 set / clear, then the Q128.128 factor 1/sqrt(1.0001)**(2**k) for bits 1..19.
_RATIO_BIT0_SET = 0xFFFCB933BD6FAD37AA2D162D1A594001
_RATIO_ONE = 0x100000000000000000000000000000000
_TICK_FACTORS: tuple[tuple[int, int], ...] = (
    (0x2, 0xFFF97272373D413259A46990580E213A),
    (0x4, 0xFFF2E50F5F656932EF12357CF3C7FDCC),
    (0x8, 0xFFE5CACA7E10E4E61C3624EAA0941CD0),
    (0x10, 0xFFCB9843D60F6159C9DB58835C926644),
    (0x20, 0xFF973B41FA98C081472E6896DFB254C0),
    (0x40, 0xFF2EA16466C96A3843EC78B326B52861),
    (0x80, 0xFE5DEE046A99A2A811C461F1969C3053),
    (0x100, 0xFCBE86C7900A88AEDCFFC83B479AA3A4),
    (0x200, 0xF987A7253AC413176F2B074CF7815E54),
    (0x400, 0xF3392B0822B70005940C7A398E4B70F3),
    (0x800, 0xE7159475A2C29B7443B29C7FA6E889D9),
    (0x1000, 0xD097F3BDFD2022B8845AD8F792AA5825),
    (0x2000, 0xA9F746462D870FDF8A65DC1F90E061E5),
    (0x4000, 0x70D869A156D2A1B890BB3DF62BAF32F7),
    (0x8000, 0x31BE135F97D08FD981231505542FCFA6),
    (0x10000, 0x9AA508B5B7A84E1C677DE54F3E99BC9),
    (0x20000, 0x5D6AF8DEDB81196699C329225EE604),
    (0x40000, 0x2216E584F5FA1EA926041BEDFE98),
    (0x80000, 0x48A170391F7DC42444E8FA2),
)

# log_2 -> log_sqrt(1.0001) multiplier and the two error bounds of the approximation (all Q128.128).
_LOG_SQRT10001_MUL = 255738958999603826347141
_TICK_LOW_OFFSET = 3402992956809132418596140100660247210
_TICK_HI_OFFSET = 291339464771989622907027621153398088495


def get_sqrt_ratio_at_tick(tick: int) -> int:
    """``TickMath.getSqrtRatioAtTick``: ``sqrt(1.0001**tick) * 2**96`` as the contract computes it (Q64.96).

    Raises :class:`InvalidTick` (``'T'``) if ``|tick| > MAX_TICK``.
    """
    abs_tick = -tick if tick < 0 else tick
    if abs_tick > MAX_TICK:
        raise InvalidTick(f"T: tick {tick} outside [{MIN_TICK}, {MAX_TICK}]")

    ratio = _RATIO_BIT0_SET if abs_tick & 0x1 else _RATIO_ONE
    for bit, factor in _TICK_FACTORS:
        if abs_tick & bit:
            ratio = (ratio * factor) >> 128

    # The factors are for negative ticks (ratio < 1); positive ticks take the reciprocal.  The contract uses
    # type(uint256).max, not 2**256, as the numerator -- this matters for the last bits.
    if tick > 0:
        ratio = MAX_UINT256 // ratio

    # Q128.128 -> Q64.96, rounding *up* so that get_tick_at_sqrt_ratio(result) == tick always holds.
    return (ratio >> 32) + (1 if ratio & 0xFFFFFFFF else 0)


# Tick -> sqrt price is pure and simulations keep hitting the same few thousand ticks (initialized ticks, word
# boundaries, the ticks around the current price); caching saves ~20 big-int multiplications per hit.
get_sqrt_ratio_at_tick_cached = lru_cache(maxsize=1 << 15)(get_sqrt_ratio_at_tick)


def get_tick_at_sqrt_ratio(sqrt_price_x96: int) -> int:
    """``TickMath.getTickAtSqrtRatio``: greatest tick ``t`` with ``get_sqrt_ratio_at_tick(t) <= sqrt_price_x96``.

    Raises :class:`InvalidSqrtPrice` (``'R'``) unless ``MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO``; the
    upper bound is exclusive because no price can ever reach the ratio of MAX_TICK.
    """
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        raise InvalidSqrtPrice(f"R: sqrt price {sqrt_price_x96} outside [MIN_SQRT_RATIO, MAX_SQRT_RATIO)")
    ratio = sqrt_price_x96 << 32

    # The contract finds the most significant bit with a branch-free binary search; bit_length is the same number.
    msb = ratio.bit_length() - 1
    r = ratio >> (msb - 127) if msb >= 128 else ratio << (127 - msb)

    # Integer part of log2 in Q64.64 (negative below 1.0; Python's | on negatives is two's complement, as in
    # the EVM's 256-bit `or`).
    log_2 = (msb - 128) << 64

    # 14 fractional bits by repeated squaring: each squaring doubles log2(r); reaching 2.0 sets the bit and
    # halves r (the contract's branch-free `f := shr(128, r)` is always 0 or 1 here).  Unrolled, as in the
    # contract: this runs once per swap, and the loop cost a quarter to a half of the function's time.
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x8000000000000000  # 1 << 63
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x4000000000000000  # 1 << 62
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x2000000000000000  # 1 << 61
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x1000000000000000  # 1 << 60
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x800000000000000  # 1 << 59
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x400000000000000  # 1 << 58
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x200000000000000  # 1 << 57
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x100000000000000  # 1 << 56
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x80000000000000  # 1 << 55
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x40000000000000  # 1 << 54
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x20000000000000  # 1 << 53
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x10000000000000  # 1 << 52
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x8000000000000  # 1 << 51
        r >>= 1
    r = (r * r) >> 127
    if r >> 128:
        log_2 |= 0x4000000000000  # 1 << 50
        r >>= 1

    log_sqrt10001 = log_2 * _LOG_SQRT10001_MUL  # Q128.128

    # Arithmetic right shifts (floor), exactly as Solidity's signed >> since 0.5.
    tick_low = (log_sqrt10001 - _TICK_LOW_OFFSET) >> 128
    tick_hi = (log_sqrt10001 + _TICK_HI_OFFSET) >> 128

    if tick_low == tick_hi:
        return tick_low
    return tick_hi if get_sqrt_ratio_at_tick_cached(tick_hi) <= sqrt_price_x96 else tick_low


# get_tick_at_sqrt_ratio_fast: ticks per unit of ln(sqrt price), and ln(2**96).
_TICKS_PER_LN = 2 / log(1.0001)
_LN_Q96 = 96 * log(2)
# How close (in ticks) to a tick boundary the float estimate must not be.  Its own error is below 1e-9 tick
# (ln of a price < 2**160 is < 111, good to ~1e-14, times ~2e4 ticks per unit); the contract's ratios differ
# from the real sqrt(1.0001**t) * 2**96 by at most one unit of their last place (Q64.96 rounded up, ratios
# >= 2**32), a relative 2.4e-10, i.e. < 5e-6 tick.  1e-3 tick leaves a factor of 200 on both.
_TICK_MARGIN = 1e-3


def get_tick_at_sqrt_ratio_fast(sqrt_price_x96: int) -> int:
    """:func:`get_tick_at_sqrt_ratio`, the same result, in about a tenth of its time: the tick from a float
    logarithm wherever the price is not within ``_TICK_MARGIN`` of a tick's ratio, where the float cannot be
    wrong about which side of it the price lies; otherwise (one price in ~500, and every price exactly on a
    tick's ratio) the contract's computation.  For the swap loop, which needs the tick wherever a swap stops."""
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        raise InvalidSqrtPrice(f"R: sqrt price {sqrt_price_x96} outside [MIN_SQRT_RATIO, MAX_SQRT_RATIO)")
    x = (log(sqrt_price_x96) - _LN_Q96) * _TICKS_PER_LN
    tick = floor(x)
    if _TICK_MARGIN < x - tick < 1 - _TICK_MARGIN:
        return tick
    return get_tick_at_sqrt_ratio(sqrt_price_x96)
