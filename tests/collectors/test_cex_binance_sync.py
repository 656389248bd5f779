"""collectors/cex/binance/sync.py against the real Binance capture: one test per book rule.

The oracle is independent of the collector: the venue's book rebuilt here (or by the stand-in's
replay model) from the capture's JSON with ``Decimal``, compared with a consumer's replica built
only from the TLVs the collector published.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from cex_testkit import Replica, binance_instruments, venue_book, venue_set

from collectors.cex.binance.sync import BinanceCore
from collectors.cex.book import FetchSnapshot, Publish
from protocol.market import InvalidationReason, Quote, StateInvalidation, Trade
from tools.cex_standin import captures
from tools.cex_standin.replay import BinanceReplay, Faults, faulty

ETH = "ETHUSDT"


@pytest.fixture(scope="module")
def venue() -> BinanceReplay:
    return BinanceReplay()


def test_replaying_the_capture_the_eth_book_after_every_diff_equals_an_independent_rebuild() -> None:
    core, replica = BinanceCore(binance_instruments()), Replica()
    replica.apply_all(core.on_connect(0))
    ref: dict[str, dict[Decimal, Decimal]] | None = None
    ref_u, before = 0, []
    compared = 0
    for rec in captures.read(captures.BINANCE):
        if rec.kind == "rest":
            sym = rec.url.split("symbol=")[1].split("&")[0]
            acts = core.on_snapshot(sym, rec.text, rec.ts_ns)
            if sym == ETH:
                snap = json.loads(rec.text)
                ref, ref_u = venue_book(snap["bids"], snap["asks"]), int(snap["lastUpdateId"])
                for d in before:
                    if int(d["u"]) > ref_u:
                        _apply(ref, d)
                        ref_u = int(d["u"])
        elif rec.kind == "recv":
            acts = core.on_message(rec.text, rec.ts_ns)
            data = json.loads(rec.text)["data"]
            if data.get("e") == "depthUpdate" and data["s"] == ETH:
                if ref is None:
                    before.append(data)
                elif int(data["u"]) > ref_u:
                    _apply(ref, data)
                    ref_u = int(data["u"])
        else:
            continue
        replica.apply_all(acts)
        if ref is not None:
            assert replica.trusted[ETH]
            assert replica.books[ETH] == ref
            compared += 1
    assert compared > 2500  # every frame after the snapshot (909 ETH diffs among them)
    c = core.counters
    assert (c.snapshots, c.resyncs_forced, c.trade_gaps, c.trade_duplicates) == (3, 0, 0, 0)
    assert len(replica.invalidations) == 3  # one per book, before its first snapshot
    assert all(i.reason == InvalidationReason.RESYNC for i in replica.invalidations)
    assert c.trades == 506 + 1227 + 177 and len(replica.trades) == c.trades
    q = replica.quotes[ETH]
    assert (Decimal(q.bid_price).scaleb(-8), Decimal(q.ask_price).scaleb(-8)) == (max(ref["bid"]), min(ref["ask"]))


def _apply(book: dict[str, dict[Decimal, Decimal]], d: dict) -> None:
    for p, q in d["b"]:
        venue_set(book, "bid", p, q)
    for p, q in d["a"]:
        venue_set(book, "ask", p, q)


class Harness:
    """The core against the replayed venue: frames through ``faulty``, REST answered from the venue's book."""

    def __init__(self, faults: Faults, *, stop: int | None = None) -> None:
        self.venue = BinanceReplay()
        self.core, self.replica = BinanceCore(binance_instruments()), Replica()
        self.faults = faults
        self.stop = stop
        self.log: list[tuple[int, list]] = []  # (frame index, actions)
        self.waiting: list[tuple[int, str]] = []  # (answer at sent count, symbol)
        self.sent = 0

    def run(self) -> None:
        self.handle(-1, self.core.on_connect(0))
        n = len(self.venue.frames) if self.stop is None else self.stop
        produced = 0
        for i, (ts, text) in faulty(((i, self.venue.frames[i]) for i in range(n)), self.faults):
            while produced <= i:  # the venue's book moves on for every frame, lost ones too
                self.venue.advance(produced)
                produced += 1
            self.handle(i, self.core.on_message(text, ts))
            self.sent += 1
            if i in self.faults.disconnect_after:
                self.handle(i, self.core.on_disconnect(ts))
                self.handle(i, self.core.on_connect(ts))
            self.answer(ts)

    def answer(self, ts: int) -> None:
        due = [w for w in self.waiting if w[0] <= self.sent]
        self.waiting = [w for w in self.waiting if w[0] > self.sent]
        for _, sym in due:
            self.handle(-2, self.core.on_snapshot(sym, json.dumps(self.venue.depth(sym, 5000)), ts))

    def handle(self, i: int, acts: list) -> None:
        self.log.append((i, acts))
        for a in acts:
            if isinstance(a, FetchSnapshot):
                self.waiting.append((self.sent + self.faults.snapshot_delay_frames, a.symbol))
        self.replica.apply_all(acts)

    def venue_eth(self) -> dict[str, dict[Decimal, Decimal]]:
        b = self.venue.books[ETH]
        return venue_book(([str(p), q] for p, q in b["bids"].items()), ([str(p), q] for p, q in b["asks"].items()))


def _eth_diff_indexes(venue: BinanceReplay) -> list[int]:
    return [i for i, (_, t) in enumerate(venue.frames) if '"ETHUSDT"' in t and "depthUpdate" in t]


def _first_eth_publish_after(h: Harness, index: int) -> list:
    return next(acts for i, acts in h.log if i > index and any(
        isinstance(a, Publish) and any(getattr(t, "symbol", "") == ETH or isinstance(t, StateInvalidation)
                                       for t in a.tlvs) for a in acts))


def test_a_dropped_diff_is_detected_at_the_next_message_invalidated_and_resynced(venue: BinanceReplay) -> None:
    eth = _eth_diff_indexes(venue)
    lost = eth[400]
    h = Harness(Faults(drop={lost}))
    h.run()
    nxt = eth[401]
    acts = next(a for i, a in h.log if i == nxt)
    assert isinstance(acts[0], Publish) and isinstance(inv := acts[0].tlvs[0], StateInvalidation)
    assert inv.reason == InvalidationReason.RESYNC and "gap" in inv.detail and inv.detail.startswith(ETH)
    assert FetchSnapshot(ETH, 1) in acts
    assert not any(isinstance(a, Publish) and isinstance(a.tlvs[-1], Quote) for a in acts)  # nothing after it
    c = h.core.counters
    assert (c.resyncs_forced, c.resyncs_recovered) == (1, 1)
    assert h.replica.trusted[ETH] and h.replica.books[ETH] == h.venue_eth()


@pytest.mark.parametrize("late", [0, 25])
def test_out_of_order_diffs_force_one_resync_and_recover(venue: BinanceReplay, late: int) -> None:
    eth = _eth_diff_indexes(venue)
    k = next(k for k in range(300, len(eth)) if eth[k] + 1 == eth[k + 1])  # two ETH diffs back to back
    h = Harness(Faults(swap={eth[k]}, snapshot_delay_frames=late), stop=eth[k + 60])
    h.run()
    c = h.core.counters
    assert (c.resyncs_forced, c.resyncs_recovered) == (1, 1)
    assert h.replica.trusted[ETH] and h.replica.books[ETH] == h.venue_eth()


def test_a_duplicated_diff_is_dropped_without_a_resync(venue: BinanceReplay) -> None:
    eth = _eth_diff_indexes(venue)
    h = Harness(Faults(duplicate={eth[200], eth[201]}), stop=eth[260])
    h.run()
    assert h.core.counters.resyncs_forced == 0 and h.core.counters.dropped_stale >= 2
    assert h.replica.books[ETH] == h.venue_eth()


def test_a_late_snapshot_is_applied_over_the_buffered_diffs(venue: BinanceReplay) -> None:
    eth = _eth_diff_indexes(venue)
    h = Harness(Faults(snapshot_delay_frames=200), stop=eth[300])
    h.run()
    assert h.core.counters.resyncs_forced == 0
    assert h.replica.trusted[ETH] and h.replica.books[ETH] == h.venue_eth()


def test_a_disconnect_invalidates_every_book_first_and_each_rebuilds(venue: BinanceReplay) -> None:
    eth = _eth_diff_indexes(venue)
    cut = eth[500]
    h = Harness(Faults(disconnect_after={cut}, snapshot_delay_frames=5), stop=eth[600])
    h.run()
    after = [a for acts in [acts for i, acts in h.log if i == cut][1:] for a in acts]  # after the frame itself
    invs = [t for a in after if isinstance(a, Publish) for t in a.tlvs if isinstance(t, StateInvalidation)]
    assert len(invs) == 3 and all(t.reason == InvalidationReason.DISCONNECT for t in invs)
    assert isinstance(after[0], Publish) and isinstance(after[0].tlvs[0], StateInvalidation)
    c = h.core.counters
    assert (c.resyncs_forced, c.resyncs_recovered) == (3, 3)
    assert h.replica.books[ETH] == h.venue_eth()


def test_a_snapshot_older_than_the_buffer_is_fetched_again_and_nothing_is_published() -> None:
    core = BinanceCore(binance_instruments())
    core.on_connect(0)
    diff = {"stream": "ethusdt@depth@100ms", "data": {"e": "depthUpdate", "E": 1, "s": ETH, "U": 100, "u": 105,
                                                       "b": [["1.00", "1.0"]], "a": []}}
    assert core.on_message(json.dumps(diff), 1) == []  # FetchSnapshot already outstanding
    acts = core.on_snapshot(ETH, {"lastUpdateId": 90, "bids": [], "asks": []}, 2)
    assert acts == [FetchSnapshot(ETH, 2)]
    acts = core.on_snapshot(ETH, {"lastUpdateId": 102, "bids": [["0.5", "2"]], "asks": [["2", "0.00000000"]]}, 3)
    quotes = [t for a in acts if isinstance(a, Publish) for t in a.tlvs if isinstance(t, Quote)]
    assert [(q.update_id, q.bid_price, q.ask_price) for q in quotes] == [(102, 50_000_000, 0), (105, 10**8, 0)]
    assert core.book(ETH).book.bids == {50_000_000: 200_000_000, 10**8: 10**8}


def test_agg_trades_are_trades_with_the_taker_side_and_venue_time() -> None:
    core = BinanceCore(binance_instruments())
    t = {"stream": "ethusdt@aggTrade", "data": {"e": "aggTrade", "E": 1617566591986, "s": ETH, "a": 291477091,
                                                 "p": "2064.74000000", "q": "1.27218000", "f": 1, "l": 1,
                                                 "T": 1617566591985, "m": True, "M": True}}
    (pub,) = core.on_message(json.dumps(t), 7)
    (trade,) = pub.tlvs
    assert isinstance(trade, Trade) and trade.side == 2 and trade.trade_id == 291477091
    assert (trade.price, trade.size, trade.price_scale) == (206474000000, 127218000, 8)
    assert (pub.event_time_ns, pub.receive_time_ns) == (1617566591985_000_000, 7)
    assert core.on_message(json.dumps(t), 8) == [] and core.counters.trade_duplicates == 1
