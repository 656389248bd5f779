"""CEX-DEX arbitrage sizing: one asset on a centralised order book and on a DEX pool.

Two directions, each sized exactly (integer math on both sides: the book's levels walked by
``market.cex``, the pool's own curve through its snapshot's ``amount_out`` / ``min_input``):

* **CEX_TO_DEX**: buy ``s`` base on the CEX (walking the asks, taker fee on top), sell the same base
  units into the pool for quote. Needs quote on the CEX and base on chain.
* **DEX_TO_CEX**: buy exactly that base from the pool (the least quote input that yields it), sell it
  into the CEX bids (taker fee deducted). Needs quote on chain and base on the CEX.

``s`` is in the book's size steps (``size_scale``), so both legs move the same base units. Gross
profit (quote units) is concave in ``s`` -- the book's cost is convex piecewise linear and the
pool's output concave -- so an integer ternary search over ``[1, s_max]`` finds its maximum; ``s_max``
is the book's depth on that side, cut by the inventory each leg needs. Net profit subtracts the DEX
gas (already converted to the quote token by the caller) and a slippage allowance (``slippage_bps`` of
the DEX leg's quote amount). Only a positive net profit is an opportunity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from market.cex import CexBook, Units, buy_base_cost, sell_base_proceeds

BPS = 10_000


class Direction(Enum):
    CEX_TO_DEX = "cex_to_dex"  # buy on the CEX, sell on the DEX
    DEX_TO_CEX = "dex_to_cex"


class Pool(Protocol):
    def amount_out(self, zero_for_one: bool, amount_in: int) -> int: ...
    def min_input(self, zero_for_one: bool, amount_out: int) -> int: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Inventory:
    """What each venue holds now, in token base units."""

    cex_base: int = 0
    cex_quote: int = 0
    chain_base: int = 0
    chain_quote: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class CexDexOpportunity:
    direction: Direction
    size: int  # book size steps traded on the CEX
    base_units: int  # the same amount in base token units (both legs)
    quote_in: int  # quote paid by the buying leg (fee included)
    quote_out: int  # quote received by the selling leg (fee deducted)
    gas_cost: int  # DEX gas, in quote units
    slippage_allowance: int
    cex_fee_ppm: int

    @property
    def gross_profit(self) -> int:
        return self.quote_out - self.quote_in

    @property
    def net_profit(self) -> int:
        return self.gross_profit - self.gas_cost - self.slippage_allowance


def _legs(direction: Direction, book: CexBook, units: Units, pool: Pool, base_is_token0: bool, fee_ppm: int,
          slippage_bps: int, inv: Inventory) -> Callable[[int], tuple[int, int, int] | None]:
    """size -> (quote_in, quote_out, slippage allowance), or None when not feasible at that size."""

    def cex_to_dex(s: int) -> tuple[int, int, int] | None:
        base = units.base_units(s)
        cost = buy_base_cost(book, units, base, fee_ppm)
        if cost is None or cost > inv.cex_quote or base > inv.chain_base:
            return None
        out = pool.amount_out(base_is_token0, base)
        if out < 0:
            return None
        return cost, out, out * slippage_bps // BPS

    def dex_to_cex(s: int) -> tuple[int, int, int] | None:
        base = units.base_units(s)
        if base > inv.cex_base:
            return None
        quote_in = pool.min_input(not base_is_token0, base)
        proceeds = sell_base_proceeds(book, units, base, fee_ppm)
        if quote_in < 0 or proceeds is None or quote_in > inv.chain_quote:
            return None
        return quote_in, proceeds, -(-quote_in * slippage_bps // BPS)

    return cex_to_dex if direction is Direction.CEX_TO_DEX else dex_to_cex


def _feasible_max(legs: Callable[[int], tuple[int, int, int] | None], hi: int) -> int:
    """The largest size in [0, hi] at which both legs are feasible (feasibility shrinks with size)."""
    lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if legs(mid) is not None:
            lo = mid
        else:
            hi = mid - 1
    return lo


def best(direction: Direction, book: CexBook, units: Units, pool: Pool, *, base_is_token0: bool,
         cex_fee_ppm: int, gas_cost: int, slippage_bps: int, inventory: Inventory) -> CexDexOpportunity | None:
    """The most profitable size in ``direction`` (None when nothing nets a profit)."""
    depth = sum(book.asks.values()) if direction is Direction.CEX_TO_DEX else sum(book.bids.values())
    legs = _legs(direction, book, units, pool, base_is_token0, cex_fee_ppm, slippage_bps, inventory)
    hi = _feasible_max(legs, depth)
    if hi <= 0:
        return None

    def value(s: int) -> int:
        r = legs(s)
        assert r is not None  # every size up to hi is feasible
        return r[1] - r[0] - r[2]

    lo = 1
    while hi - lo > 2:
        m1, m2 = lo + (hi - lo) // 3, hi - (hi - lo) // 3
        if value(m1) < value(m2):
            lo = m1 + 1
        else:
            hi = m2
    s = max(range(lo, hi + 1), key=value)
    r = legs(s)
    assert r is not None
    opp = CexDexOpportunity(direction=direction, size=s, base_units=units.base_units(s), quote_in=r[0],
                            quote_out=r[1], gas_cost=gas_cost, slippage_allowance=r[2], cex_fee_ppm=cex_fee_ppm)
    return opp if opp.net_profit > 0 else None


def best_either(book: CexBook, units: Units, pool: Pool, *, base_is_token0: bool, cex_fee_ppm: int, gas_cost: int,
                slippage_bps: int, inventory: Inventory) -> CexDexOpportunity | None:
    """The better of the two directions (None when neither nets a profit)."""
    found = [o for d in Direction if (o := best(d, book, units, pool, base_is_token0=base_is_token0,
                                                cex_fee_ppm=cex_fee_ppm, gas_cost=gas_cost,
                                                slippage_bps=slippage_bps, inventory=inventory)) is not None]
    return max(found, key=lambda o: o.net_profit, default=None)
