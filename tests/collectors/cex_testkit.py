"""Helpers for the CEX collector tests: the captures' instruments, and a downstream book replica.

``Replica`` is what a consumer of the market-data relay does with a CEX book (specs/cex.md): clear
at a ``StateInvalidation`` for the book, apply ``BookLevel`` absolute sizes, trust again at the
first ``Quote`` after that. It is written against the published TLVs only, with ``Decimal``
prices, so comparing it with an independent rebuild from the venue's JSON checks the collector end
to end without sharing its code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal

from collectors.cex.book import Action, Instrument, Publish
from protocol.ids import Venue, cex_symbol
from protocol.market import BookLevel, Quote, Side, StateInvalidation, Trade
from tools.cex_standin import captures

BINANCE_SYMBOLS = {"ETHUSDT": ("ETH", "USDT"), "BTCUSDT": ("BTC", "USDT"), "DOTUSDT": ("DOT", "USDT")}


def binance_instruments() -> list[Instrument]:
    return [Instrument(venue=Venue.BINANCE, symbol=s, base=b, quote=q) for s, (b, q) in BINANCE_SYMBOLS.items()]


def coinbase_products() -> list[str]:
    first_sub = next(r for r in captures.read(captures.COINBASE) if r.kind == "sent")
    return list(json.loads(first_sub.text)["product_ids"])


def coinbase_instruments() -> list[Instrument]:
    out = []
    for p in coinbase_products():
        base, quote = p.split("-")
        out.append(Instrument(venue=Venue.COINBASE, symbol=p, base=base, quote=quote))
    return out


def published(actions: Iterable[Action]) -> list[Publish]:
    return [a for a in actions if isinstance(a, Publish)]


def dec(value: int, scale: int) -> Decimal:
    return Decimal(value).scaleb(-scale)


class Replica:
    """A consumer's view of every CEX book on the bus."""

    def __init__(self) -> None:
        self.books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
        self.trusted: dict[str, bool] = {}
        self.invalidations: list[StateInvalidation] = []
        self.trades: list[Trade] = []
        self.quotes: dict[str, Quote] = {}
        self.order_errors: list[str] = []  # updates seen for a book that was never invalidated first

    def apply(self, pub: Publish) -> None:
        for t in pub.tlvs:
            if isinstance(t, StateInvalidation):
                sym = cex_symbol(t.pool)
                self.invalidations.append(t)
                self.books[sym] = {"bid": {}, "ask": {}}
                self.trusted[sym] = False
            elif isinstance(t, BookLevel):
                if t.symbol not in self.books:
                    self.order_errors.append(t.symbol)
                    continue
                side = self.books[t.symbol]["bid" if t.side == Side.BUY else "ask"]
                price, size = dec(t.price, t.price_scale), dec(t.size, t.size_scale)
                if size:
                    side[price] = size
                else:
                    side.pop(price, None)
            elif isinstance(t, Quote):
                self.trusted[t.symbol] = True
                self.quotes[t.symbol] = t
            elif isinstance(t, Trade):
                self.trades.append(t)

    def apply_all(self, actions: Iterable[Action]) -> None:
        for p in published(actions):
            self.apply(p)

    def top(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        b = self.books[symbol]
        return (max(b["bid"]) if b["bid"] else None, min(b["ask"]) if b["ask"] else None)


def venue_book(bids: Iterable[list[str]], asks: Iterable[list[str]]) -> dict[str, dict[Decimal, Decimal]]:
    """A book from the venue's own ``[price, size]`` strings (independent of the collector's parser)."""
    book: dict[str, dict[Decimal, Decimal]] = {"bid": {}, "ask": {}}
    for side, rows in (("bid", bids), ("ask", asks)):
        for p, q in rows:
            if Decimal(q) != 0:
                book[side][Decimal(p)] = Decimal(q)
    return book


def venue_set(book: dict[str, dict[Decimal, Decimal]], side: str, price: str, size: str) -> None:
    if Decimal(size) == 0:
        book[side].pop(Decimal(price), None)
    else:
        book[side][Decimal(price)] = Decimal(size)
