"""market/cex.py: the consumer's view of CEX books (fed by the real collector on the real capture) and exact walks."""

from __future__ import annotations

import json
import random
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from collectors.cex.binance.sync import BinanceCore
from collectors.cex.book import Instrument, Publish
from market.cex import CexBook, CexBooks, Units, buy_base_cost, sell_base_proceeds
from protocol.ids import Venue
from tools.cex_standin import captures


def test_books_follow_the_bus_and_an_invalidated_book_is_never_handed_out() -> None:
    core = BinanceCore([Instrument(venue=Venue.BINANCE, symbol="ETHUSDT", base="ETH", quote="USDT")])
    books = CexBooks()

    def feed(acts: list) -> None:
        for a in acts:
            if isinstance(a, Publish):
                books.on_tlvs(a.tlvs, a.receive_time_ns)

    feed(core.on_connect(0))
    assert books.book(Venue.BINANCE, "ETHUSDT") is None
    seen_trusted = 0
    for rec in captures.read(captures.BINANCE):
        if rec.kind == "rest" and "ETHUSDT" in rec.url:
            feed(core.on_snapshot("ETHUSDT", rec.text, rec.ts_ns))
        elif rec.kind == "recv" and '"ETHUSDT"' in rec.text:
            feed(core.on_message(rec.text, rec.ts_ns))
            b = books.book(Venue.BINANCE, "ETHUSDT")
            if b is not None:
                seen_trusted += 1
                mine = core.book("ETHUSDT").book
                assert b.bids == mine.bids and b.asks == mine.asks
    assert seen_trusted > 1000
    feed(core.on_disconnect(1))
    assert books.book(Venue.BINANCE, "ETHUSDT") is None and books.invalidations == 2
    assert books.books[(Venue.BINANCE, "ETHUSDT")].bids == {}


def _walk_decimal(levels: list[tuple[int, int]], units: Units, base_units: int, fee_ppm: int, buy: bool) -> int | None:
    want = Decimal(base_units).scaleb(-units.base_decimals)
    total = Decimal(0)
    for price, size in levels:
        p, q = Decimal(price).scaleb(-units.price_scale), Decimal(size).scaleb(-units.size_scale)
        take = min(q, want)
        total += take * p
        want -= take
        if want == 0:
            break
    if want > 0:
        return None
    fee = Decimal(fee_ppm) / Decimal(10**6)
    quote = total * (1 + fee if buy else 1 - fee) * Decimal(10) ** units.quote_decimals
    return int(quote.to_integral_value(rounding=ROUND_CEILING if buy else ROUND_FLOOR))


def test_walks_are_exact_and_round_against_us() -> None:
    rng = random.Random(11)
    units = Units(base_decimals=18, quote_decimals=6, price_scale=2, size_scale=4)
    for _ in range(300):
        book = CexBook(Venue.BINANCE, "ETHUSDC", 2, 4)
        for _ in range(rng.randrange(1, 12)):
            book.asks[rng.randrange(200_000, 210_000)] = rng.randrange(1, 50_000)
            book.bids[rng.randrange(190_000, 200_000)] = rng.randrange(1, 50_000)
        steps = rng.randrange(1, 120_000)
        base = units.base_units(steps)
        fee = rng.choice((0, 1000, 7500))
        cost = buy_base_cost(book, units, base, fee)
        proceeds = sell_base_proceeds(book, units, base, fee)
        want_cost = _walk_decimal(book.asks_up(), units, base, fee, True)
        want_proceeds = _walk_decimal(book.bids_down(), units, base, fee, False)
        assert (cost is None) == (want_cost is None) and (proceeds is None) == (want_proceeds is None)
        if cost is not None:  # per-level ceilings may add at most one unit per level, never less
            assert want_cost <= cost <= want_cost + len(book.asks) + 1
        if proceeds is not None:
            assert want_proceeds - 1 <= proceeds <= want_proceeds
    assert json.dumps(units.base_units(1)) == str(10**14)
