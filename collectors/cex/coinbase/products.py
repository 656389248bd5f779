"""What both Coinbase feed cores share: per subscribed product its instrument, book publisher and trade ids."""

from __future__ import annotations

from collections.abc import Iterable

from protocol.ids import Venue

from ..book import BookPublisher, Counters, FeedCore, Instrument, TradeIds


class Product:
    def __init__(self, inst: Instrument, counters: Counters) -> None:
        self.inst = inst
        self.pub = BookPublisher(inst, counters)
        self.trade_ids = TradeIds(counters)
        self.updates = 0  # book messages applied (the Exchange feed's sequence for invalidations)


def products_of(instruments: Iterable[Instrument], counters: Counters) -> dict[str, Product]:
    """Product id (the venue's spelling, ``ETH-USD``) -> :class:`Product`; refuses other venues' instruments."""
    products: dict[str, Product] = {}
    for inst in instruments:
        if inst.venue != Venue.COINBASE:
            raise ValueError(f"{inst.symbol}: not a Coinbase instrument")
        products[inst.symbol] = Product(inst, counters)
    return products


class CoinbaseCore(FeedCore):
    """The base of ``ExchangeCore`` and ``AdvancedCore``: their counters and their products."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self.counters = Counters()
        self.products = products_of(instruments, self.counters)

    def book(self, symbol: str) -> BookPublisher:
        return self.products[symbol].pub
