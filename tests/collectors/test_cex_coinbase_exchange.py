"""collectors/cex/coinbase/exchange.py against the real Coinbase Exchange capture."""

from __future__ import annotations

import json
from decimal import Decimal

from cex_testkit import Replica, coinbase_instruments, venue_book, venue_set

from collectors.cex.book import Publish, Send
from collectors.cex.coinbase.exchange import ExchangeCore
from protocol.market import InvalidationReason, Side, StateInvalidation, Trade
from tools.cex_standin import captures
from tools.cex_standin.replay import CoinbaseReplay


def test_every_book_equals_snapshot_plus_updates_and_its_top_equals_the_feeds_ticker() -> None:
    core, replica = ExchangeCore(coinbase_instruments()), Replica()
    acts = core.on_connect(0)
    assert isinstance(acts[-1], Send) and acts[-1].payload["type"] == "subscribe"
    replica.apply_all(acts)
    ref: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
    baseline: set[str] = set()
    live_tickers = compared = 0
    for rec in captures.read(captures.COINBASE):
        if rec.kind != "recv":
            continue
        replica.apply_all(core.on_message(rec.text, rec.ts_ns))
        m = json.loads(rec.text)
        kind, product = m.get("type"), m.get("product_id")
        if kind == "snapshot":
            ref[product] = venue_book(m["bids"], m["asks"])
        elif kind == "l2update":
            for side, p, q in m["changes"]:
                venue_set(ref[product], "bid" if side == "buy" else "ask", p, q)
        elif kind == "last_match":
            baseline.add(product)
        elif kind == "ticker" and product in baseline:  # tickers sent before last_match are older than the book
            assert replica.top(product) == (Decimal(m["best_bid"]), Decimal(m["best_ask"]))
            live_tickers += 1
        if product in ref:
            assert replica.trusted[product] and replica.books[product] == ref[product]
            compared += 1
    assert live_tickers == 97 and compared > 9800  # 107 tickers: 10 sent at subscribe time
    c = core.counters
    assert (c.snapshots, c.book_updates, c.trades, c.trade_gaps, c.resyncs_forced) == (10, 9719, 107, 0, 0)
    assert (c.ticker_checks, c.ticker_mismatches) == (97, 0)
    assert not replica.order_errors and len(replica.invalidations) == 10


def test_match_side_is_the_makers_so_the_trade_is_the_takers() -> None:
    (inst,) = [i for i in coinbase_instruments() if i.symbol == "BAND-GBP"]
    core = ExchangeCore([inst])
    lm = {"type": "last_match", "trade_id": 881613, "side": "sell", "size": "0.04", "price": "14.7775",
          "product_id": "BAND-GBP", "sequence": 1, "time": "2021-04-17T16:43:30.244075Z"}
    (pub,) = core.on_message(json.dumps(lm), 5)
    (t,) = pub.tlvs
    assert isinstance(t, Trade) and t.side == Side.BUY and t.price == 1477750000 and t.size == 4000000
    assert pub.event_time_ns == 1618677810_244075000
    gap = dict(lm, type="match", trade_id=881616)
    core.on_message(json.dumps(gap), 6)
    assert core.counters.trade_gaps == 1
    assert core.on_message(json.dumps(dict(lm, type="match")), 7) == []  # the baseline again: a duplicate


def test_an_update_before_its_snapshot_is_dropped_not_applied() -> None:
    core = ExchangeCore(coinbase_instruments())
    core.on_connect(0)
    up = {"type": "l2update", "product_id": "SKL-BTC", "changes": [["sell", "0.00001306", "660.5"]],
          "time": "2021-04-17T16:43:37.075687Z"}
    assert core.on_message(json.dumps(up), 1) == [] and core.counters.dropped_stale == 1


def test_a_disconnect_invalidates_every_book_first_and_resubscribing_rebuilds_them() -> None:
    venue = CoinbaseReplay()
    core, replica = ExchangeCore(coinbase_instruments()), Replica()
    replica.apply_all(core.on_connect(0))
    cut = 4000
    for i, (ts, text) in enumerate(venue.frames[:cut]):
        venue.advance(i)
        replica.apply_all(core.on_message(text, ts))
    lost = range(cut, cut + 300)  # frames the venue sent while we were away
    for i in lost:
        venue.advance(i)
    acts = core.on_disconnect(venue.frames[cut][0])
    assert len(acts) == 10 and all(isinstance(a, Publish) and isinstance(a.tlvs[0], StateInvalidation)
                                   and a.tlvs[0].reason == InvalidationReason.DISCONNECT for a in acts)
    replica.apply_all(acts)
    assert not any(replica.trusted.values())
    acts = core.on_connect(venue.frames[cut][0])
    assert acts == [Send(core.subscribe())]  # already invalidated: nothing more goes out before the snapshots
    for product in venue.books:  # the resubscription's fresh snapshots
        replica.apply_all(core.on_message(json.dumps(venue.snapshot(product)), venue.frames[cut][0]))
    for i in range(cut + 300, len(venue.frames)):
        ts, text = venue.frames[i]
        venue.advance(i)
        replica.apply_all(core.on_message(text, ts))
    c = core.counters
    assert (c.resyncs_forced, c.resyncs_recovered) == (10, 10)
    for product, book in venue.books.items():
        assert replica.trusted[product]
        assert replica.books[product] == venue_book(([str(p), q] for p, q in book["bids"].items()),
                                                     ([str(p), q] for p, q in book["asks"].items()))
