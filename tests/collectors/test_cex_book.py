"""collectors/cex/book.py: exact decimals, venue times, the cached-top book, trade ids, book ids."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from collectors.cex.book import (
    LEVELS_PER_MESSAGE,
    BookPublisher,
    Counters,
    DecimalError,
    FeedError,
    Instrument,
    OrderBook,
    PrecisionError,
    TradeIds,
    decimals_of,
    format_scaled,
    iso_to_ns,
    parse_scaled,
)
from protocol.errors import FieldRangeError
from protocol.header import MAX_PAYLOAD, Domain
from protocol.ids import PoolId, Venue, VenueKind, cex_book_id, cex_symbol, pool_label
from protocol.market import BookLevel, InvalidationReason, Quote, Side, StateInvalidation
from protocol.message import Message, decode, encode


@pytest.mark.parametrize("text", ["0", "0.0", "0.00", "0.000", "0.000000", "0.00000000", "0e-8", ".0", "00.0"])
def test_every_spelling_of_zero_is_zero(text: str) -> None:
    assert parse_scaled(text, 8) == 0


@pytest.mark.parametrize(("text", "scale", "want"), [
    ("2064.73000000", 2, 206473), ("2064.73", 8, 206473000000), ("985", 2, 98500), ("0.00001306", 8, 1306),
    ("1e-8", 8, 1), ("1.5E2", 0, 150), ("12", 0, 12),
])
def test_parse_scaled_is_exact(text: str, scale: int, want: int) -> None:
    assert parse_scaled(text, scale) == want
    assert Decimal(format_scaled(want, scale)) == Decimal(text)


def test_more_decimals_than_the_scale_is_refused_not_rounded() -> None:
    with pytest.raises(PrecisionError):
        parse_scaled("2064.731", 2)
    with pytest.raises(PrecisionError):
        parse_scaled("1e-9", 8)


@pytest.mark.parametrize("text", ["", "-1", "1,5", "abc", "1.2.3", "0x10", "1e"])
def test_garbage_is_a_decimal_error(text: str) -> None:
    with pytest.raises(DecimalError):
        parse_scaled(text, 8)


def test_parse_scaled_agrees_with_decimal_on_random_strings() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        whole, frac = rng.randrange(10**9), "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 9)))
        text = f"{whole}.{frac}" if frac or rng.random() < 0.5 else str(whole)
        assert parse_scaled(text, 8) == int(Decimal(text).scaleb(8))


def test_decimals_of_an_increment() -> None:
    assert decimals_of("0.01000000") == 2 and decimals_of("1") == 0 and decimals_of("0.00000001") == 8


def test_iso_times_to_ns() -> None:
    assert iso_to_ns("2021-04-17T16:43:37.075687Z") == 1618677817_075687000
    assert iso_to_ns("2023-02-09T20:32:50.714964855Z") == 1675974770_714964855
    assert iso_to_ns("2026-04-07 14:30:10.000000000+00:00") == 1775572210_000000000
    assert iso_to_ns("1970-01-01T00:00:00Z") == 0
    with pytest.raises(FeedError):
        iso_to_ns("yesterday")


def test_order_book_top_cache_matches_a_full_scan() -> None:
    rng = random.Random(3)
    book = OrderBook()
    for _ in range(5000):
        side = rng.choice((Side.BUY, Side.SELL))
        price = rng.randrange(90, 110) if side == Side.BUY else rng.randrange(100, 120)
        book.set(side, price, rng.choice((0, 0, rng.randrange(1, 50))))
        bb, ba = book.best_bid(), book.best_ask()
        assert bb == ((max(book.bids), book.bids[max(book.bids)]) if book.bids else (0, 0))
        assert ba == ((min(book.asks), book.asks[min(book.asks)]) if book.asks else (0, 0))


def test_trade_ids_count_gaps_and_drop_duplicates() -> None:
    c = Counters()
    ids = TradeIds(c)
    assert [ids.accept(i) for i in (5, 6, 6, 4, 9, 10)] == [True, True, False, False, True, True]
    assert (c.trade_gaps, c.trade_duplicates) == (1, 2)
    assert ids.accept(20, baseline=True) and c.trade_gaps == 1
    ids.seen_up_to(22)
    assert c.trade_gaps == 2 and not ids.accept(22)


def test_cex_book_ids_round_trip_and_pair_across_venues() -> None:
    a = cex_book_id(Venue.BINANCE, "ETHUSDT", "ETH", "USDT")
    b = cex_book_id(Venue.COINBASE, "ETH-USDT", "ETH", "USDT")
    assert cex_symbol(a) == "ETHUSDT" and cex_symbol(b) == "ETH-USDT"
    assert a.chain_id == 0 and a.kind == VenueKind.CEX and a.venue == Venue.BINANCE
    assert a.same_pair(b) and a != b
    assert cex_symbol(PoolId.of(1, 1, 1, "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20)) == ""
    assert pool_label(a) == "BINANCE:ETHUSDT" and pool_label(b, short=True) == "COINBASE:ETH-USDT"
    with pytest.raises(FieldRangeError):
        cex_book_id(Venue.BINANCE, "X" * 21, "ETH", "USDT")
    with pytest.raises(FieldRangeError):
        cex_book_id(Venue.BINANCE, "ETHETH", "ETH", "ETH")


def test_invalidation_goes_first_and_a_snapshot_is_published_whole() -> None:
    inst = Instrument(venue=Venue.BINANCE, symbol="ETHUSDT", base="ETH", quote="USDT", price_scale=2, size_scale=3)
    pub = BookPublisher(inst, Counters())
    acts = pub.replace([(100, 1), (99, 0), (98, 2)], [(101, 3)], 7, 1, 2)
    first, last = acts[0].tlvs, acts[-1].tlvs
    assert isinstance(first[0], StateInvalidation) and first[0].pool == inst.book_id
    assert first[0].reason == InvalidationReason.RESYNC and len(first) == 1
    assert [type(t) for t in last] == [BookLevel, BookLevel, BookLevel, Quote]
    assert (last[-1].bid_price, last[-1].ask_price, last[-1].update_id) == (100, 101, 7)
    assert pub.trusted and pub.counters.resyncs_forced == 0
    # a forced invalidation of a trusted book is counted, and its recovery too
    inv = pub.invalidate(InvalidationReason.DISCONNECT, "gone", 7, 3)
    assert len(inv) == 1 and pub.invalidate(InvalidationReason.DISCONNECT, "again", 7, 4) == []
    pub.replace([(100, 1)], [(101, 1)], 9, 5, 5)
    assert (pub.counters.resyncs_forced, pub.counters.resyncs_recovered) == (1, 1)


def test_a_huge_snapshot_is_split_and_every_message_fits_the_payload_limit() -> None:
    inst = Instrument(venue=Venue.COINBASE, symbol="BTC-USD", base="BTC", quote="USD", price_scale=2, size_scale=8)
    pub = BookPublisher(inst, Counters())
    n = LEVELS_PER_MESSAGE + 500
    acts = pub.replace([(10**6 - i, 10**8) for i in range(n)], [(10**6 + 1 + i, 10**8) for i in range(n)], 1, 0, 0)
    snaps = acts[1:]
    assert len(snaps) == 3 and isinstance(snaps[-1].tlvs[-1], Quote)
    assert all(not isinstance(t, Quote) for a in snaps[:-1] for t in a.tlvs)
    for a in snaps:
        raw = encode(Message(domain=Domain.MARKET_DATA, tlvs=a.tlvs, source_id=1, source_seq=1))
        assert len(raw) - 52 <= MAX_PAYLOAD
        assert decode(raw).tlvs == a.tlvs
    assert sum(isinstance(t, BookLevel) for a in snaps for t in a.tlvs) == 2 * n
