"""collectors/cex/coinbase/advanced.py: Advanced Trade frames built to the documented format from the capture."""

from __future__ import annotations

import json

from cex_testkit import Replica, coinbase_instruments, venue_book

from collectors.cex.book import Publish, Send
from collectors.cex.coinbase.advanced import AdvancedCore
from protocol.market import InvalidationReason, Side, StateInvalidation, Trade
from tools.cex_standin import advanced
from tools.cex_standin.replay import CoinbaseReplay


class Server:
    """The Advanced Trade side of the replay: one ``sequence_num`` counter per connection."""

    def __init__(self) -> None:
        self.venue = CoinbaseReplay()
        self.seq = 0

    def frame(self, channel: str, events: list, ts: int) -> str:
        text = advanced.frame(channel, events, ts, self.seq)
        self.seq += 1
        return text

    def frames(self, start: int, stop: int):
        for i in range(start, stop):
            ts, text = self.venue.frames[i]
            self.venue.advance(i)
            out = advanced.translate(json.loads(text), ts)
            if out is not None:
                yield i, ts, out

    def snapshots(self, ts: int) -> list[str]:
        out = []
        for product in self.venue.books:
            channel, events = advanced.translate(self.venue.snapshot(product), ts)
            out.append(self.frame(channel, events, ts))
        return out

    def expected(self, product: str):
        b = self.venue.books[product]
        return venue_book(([str(p), q] for p, q in b["bids"].items()), ([str(p), q] for p, q in b["asks"].items()))


def _run(core: AdvancedCore, replica: Replica, server: Server, start: int, stop: int, *, skip: int = -1) -> list:
    log = []
    for i, ts, (channel, events) in server.frames(start, stop):
        text = server.frame(channel, events, ts)
        if i == skip:
            continue  # lost on the way: its sequence_num never arrives
        acts = core.on_message(text, ts)
        log.append((i, acts))
        replica.apply_all(acts)
    return log


def test_replaying_the_built_feed_every_book_equals_the_venues() -> None:
    server, core, replica = Server(), AdvancedCore(coinbase_instruments()), Replica()
    acts = core.on_connect(0)
    subs = [a.payload for a in acts if isinstance(a, Send)]
    assert [s["channel"] for s in subs] == ["heartbeats", "level2", "market_trades"]
    replica.apply_all(acts)
    core.on_message(advanced.subscriptions({"level2": ["SKL-USD"]}, 0, server.seq), 0)
    server.seq += 1
    core.on_message(advanced.heartbeat(0, 1, server.seq), 0)
    server.seq += 1
    _run(core, replica, server, 0, len(server.venue.frames))
    for product in server.venue.books:
        assert replica.trusted[product] and replica.books[product] == server.expected(product)
    c = core.counters
    assert (c.snapshots, c.book_updates, c.trades, c.trade_gaps, c.resyncs_forced) == (10, 9719, 107, 0, 0)
    assert core.sequence_gaps == 0


def test_a_sequence_gap_invalidates_every_book_first_resubscribes_and_rebuilds() -> None:
    server, core, replica = Server(), AdvancedCore(coinbase_instruments()), Replica()
    replica.apply_all(core.on_connect(0))
    lost = 3000
    log = _run(core, replica, server, 0, 3500, skip=lost)
    i, acts = next((i, a) for i, a in log if i > lost)
    invs = [a for a in acts if isinstance(a, Publish) and isinstance(a.tlvs[0], StateInvalidation)]
    assert acts[:10] == invs and len(invs) == 10  # every book on the connection, before anything else
    assert all(a.tlvs[0].reason == InvalidationReason.RESYNC and "sequence gap" in a.tlvs[0].detail for a in invs)
    sends = [a.payload for a in acts if isinstance(a, Send)]
    assert [(s["type"], s["channel"]) for s in sends] == [("unsubscribe", "level2"), ("subscribe", "level2")]
    assert not any(replica.trusted.values()) and core.counters.dropped_stale > 0  # old updates wait for snapshots
    for text in server.snapshots(server.venue.frames[3500][0]):
        replica.apply_all(core.on_message(text, 0))
    _run(core, replica, server, 3500, len(server.venue.frames))
    c = core.counters
    assert (core.sequence_gaps, c.resyncs_forced, c.resyncs_recovered) == (1, 10, 10)
    for product in server.venue.books:
        assert replica.trusted[product] and replica.books[product] == server.expected(product)


def test_a_repeated_sequence_num_is_dropped_whole() -> None:
    server, core = Server(), AdvancedCore(coinbase_instruments())
    core.on_connect(0)
    texts = []
    for _, ts, (channel, events) in server.frames(0, 50):
        texts.append(server.frame(channel, events, ts))
    for t in texts[:30]:
        core.on_message(t, 0)
    before = core.counters.book_updates
    assert core.on_message(texts[29], 0) == [] and core.duplicates == 1
    assert core.counters.book_updates == before and core.sequence_gaps == 0


def test_a_new_connection_starts_a_new_counter_and_disconnect_invalidates_first() -> None:
    server, core = Server(), AdvancedCore(coinbase_instruments())
    core.on_connect(0)
    for _, ts, (channel, events) in server.frames(0, 100):
        core.on_message(server.frame(channel, events, ts), ts)
    acts = core.on_disconnect(1)
    assert len(acts) == 10 and all(a.tlvs[0].reason == InvalidationReason.DISCONNECT for a in acts)
    core.on_connect(2)
    server.seq = 0
    for text in server.snapshots(3):
        core.on_message(text, 3)
    assert core.sequence_gaps == 0 and all(p.pub.trusted for p in core.products.values())


def test_offer_side_zero_spellings_and_maker_side_trades() -> None:
    (inst,) = [i for i in coinbase_instruments() if i.symbol == "SKL-USD"]
    core = AdvancedCore([inst])
    core.on_connect(0)
    snap = advanced.frame("l2_data", [{"type": "snapshot", "product_id": "SKL-USD", "updates": [
        {"side": "bid", "event_time": advanced.EPOCH, "price_level": "0.7901", "new_quantity": "10"},
        {"side": "offer", "event_time": advanced.EPOCH, "price_level": "0.7911", "new_quantity": "5.5"},
        {"side": "offer", "event_time": advanced.EPOCH, "price_level": "0.7912", "new_quantity": "1"}]}], 0, 0)
    core.on_message(snap, 1)
    up = advanced.frame("l2_data", [{"type": "update", "product_id": "SKL-USD", "updates": [
        {"side": "offer", "event_time": "2023-02-09T20:32:50.714964855Z", "price_level": "0.7911",
         "new_quantity": "0.00000000"}]}], 1675974770_714964855, 1)
    (pub,) = core.on_message(up, 2)
    assert pub.event_time_ns == 1675974770_714964855 and pub.tlvs[-1].ask_price == 79120000
    trades = advanced.frame("market_trades", [{"type": "update", "trades": [
        {"trade_id": "12", "product_id": "SKL-USD", "price": "0.79", "size": "3", "side": "SELL",
         "time": "2023-02-09T20:32:50.1Z"},
        {"trade_id": "11", "product_id": "SKL-USD", "price": "0.79", "size": "2", "side": "BUY",
         "time": "2023-02-09T20:32:50Z"}]}], 0, 2)
    pubs = core.on_message(trades, 3)
    got = [(t.trade_id, t.side) for p in pubs for t in p.tlvs if isinstance(t, Trade)]
    assert got == [(11, Side.SELL), (12, Side.BUY)]  # ordered by id; taker = the maker's opposite
