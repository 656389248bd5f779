"""Centralised-exchange order books as a consumer sees them on the bus, and exact walks of their levels.

``CexBooks`` applies the market-data records the CEX collectors publish (``specs/cex.md``):

* a ``StateInvalidation`` whose ``pool`` is a ``cex_book_id`` clears that book and marks it untrusted;
* ``BookLevel`` records set absolute sizes (0 deletes the level);
* a ``Quote`` marks the book whole again (it closes every snapshot and every update).

``CexBooks.book(venue, symbol)`` returns the book only while it is whole: a strategy, risk check or
executor that asks for an untrusted book gets ``None`` -- nothing trades on a book with a gap.

The walks convert between the book's scaled decimals and token base units exactly (integers only):
buying ``size`` base at ``price`` costs ``size * price * 10**quote_decimals / 10**(size_scale +
price_scale)`` quote units; costs round **up** and proceeds **down**, and the taker fee (in ppm) is charged
on the quote side, so a walk never promises more than the venue would give.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from protocol.ids import PoolId, cex_symbol
from protocol.market import BookLevel, Quote, Side, StateInvalidation
from protocol.tlv import TLV

PPM = 1_000_000


@dataclass(slots=True)
class CexBook:
    venue: int
    symbol: str
    price_scale: int = 0
    size_scale: int = 0
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    trusted: bool = False
    update_id: int = 0
    receive_time_ns: int = 0

    def asks_up(self) -> list[tuple[int, int]]:
        return sorted(self.asks.items())

    def bids_down(self) -> list[tuple[int, int]]:
        return sorted(self.bids.items(), reverse=True)


class CexBooks:
    """Every CEX book on the market-data bus, keyed by ``(venue, symbol)``."""

    def __init__(self) -> None:
        self.books: dict[tuple[int, str], CexBook] = {}
        self.invalidations = 0

    def _get(self, venue: int, symbol: str) -> CexBook:
        key = (int(venue), symbol)
        book = self.books.get(key)
        if book is None:
            book = self.books[key] = CexBook(int(venue), symbol)
        return book

    def on_tlv(self, t: TLV, receive_time_ns: int = 0) -> CexBook | None:
        """Apply one record; returns the book it touched (``None`` for records about other things)."""
        if isinstance(t, BookLevel):
            book = self._get(t.venue, t.symbol)
            book.price_scale, book.size_scale = t.price_scale, t.size_scale
            levels = book.bids if t.side == Side.BUY else book.asks
            if t.size:
                levels[t.price] = t.size
            else:
                levels.pop(t.price, None)
            return book
        if isinstance(t, Quote):
            book = self._get(t.venue, t.symbol)
            book.trusted, book.update_id, book.receive_time_ns = True, t.update_id, receive_time_ns
            return book
        if isinstance(t, StateInvalidation) and t.chain_id == 0:
            symbol = cex_symbol(t.pool)
            if not symbol:
                return None
            book = self._get(PoolId(t.pool).venue, symbol)
            book.bids.clear()
            book.asks.clear()
            book.trusted = False
            self.invalidations += 1
            return book
        return None

    def on_tlvs(self, tlvs: Iterable[TLV], receive_time_ns: int = 0) -> None:
        for t in tlvs:
            self.on_tlv(t, receive_time_ns)

    def book(self, venue: int, symbol: str) -> CexBook | None:
        """The book while it is whole; ``None`` when unknown or invalidated."""
        b = self.books.get((int(venue), symbol))
        return b if b is not None and b.trusted else None


# --- exact walks -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Units:
    """How a book's scaled numbers map to token base units."""

    base_decimals: int
    quote_decimals: int
    price_scale: int
    size_scale: int

    def base_units(self, size: int) -> int:
        """Book size (scaled) -> base token units, floor."""
        return _shift(size, self.base_decimals - self.size_scale)

    def size_of(self, base_units: int) -> int:
        """Base token units -> book size (scaled), floor (the venue's step is finer or equal)."""
        return _shift(base_units, self.size_scale - self.base_decimals)

    def quote_units(self, size: int, price: int, *, round_up: bool) -> int:
        num = size * price * 10**self.quote_decimals
        den = 10 ** (self.size_scale + self.price_scale)
        return -(-num // den) if round_up else num // den


def _shift(x: int, digits: int) -> int:
    return x * 10**digits if digits >= 0 else x // 10**-digits


def _take(levels: Iterable[tuple[int, int]], units: Units, size: int, *, round_up: bool) -> int | None:
    """Quote units for taking ``size`` (book scale) level by level, each level's amount rounded up or down;
    None if the levels run out first."""
    total = 0
    for price, available in levels:
        take = min(available, size)
        total += units.quote_units(take, price, round_up=round_up)
        size -= take
        if not size:
            return total
    return None


def buy_base_cost(book: CexBook, units: Units, base_units: int, fee_ppm: int, *,
                  asks: Sequence[tuple[int, int]] | None = None) -> int | None:
    """Quote units to buy ``base_units`` of base from the asks (taker), fee included; None if too deep.
    ``asks``: the book's ``asks_up()`` when the caller walks the same book many times (sorted once)."""
    cost = _take(book.asks_up() if asks is None else asks, units, units.size_of(base_units), round_up=True)
    return None if cost is None else -(-cost * (PPM + fee_ppm) // PPM)


def sell_base_proceeds(book: CexBook, units: Units, base_units: int, fee_ppm: int, *,
                       bids: Sequence[tuple[int, int]] | None = None) -> int | None:
    """Quote units received for selling ``base_units`` into the bids (taker), fee deducted; None if too deep.
    ``bids``: the book's ``bids_down()``, sorted once by a caller that walks it many times."""
    got = _take(book.bids_down() if bids is None else bids, units, units.size_of(base_units), round_up=False)
    return None if got is None else got * (PPM - fee_ppm) // PPM


def depth_base_units(levels: Iterable[tuple[int, int]], units: Units) -> int:
    return units.base_units(sum(size for _, size in levels))
