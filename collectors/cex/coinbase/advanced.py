"""``AdvancedCore``: the Coinbase Advanced Trade market-data feed (``advanced-trade-ws.coinbase.com``), sans-IO.

Every frame is ``{"channel": ..., "timestamp": ..., "sequence_num": n, "events": [...]}``:

* ``l2_data`` (subscribed as channel ``level2``): events of type ``snapshot`` (replaces the
  product's book) or ``update``; each update is ``{"side": "bid" | "offer", "price_level",
  "new_quantity"}`` with an absolute quantity, zero in any spelling deleting the level;
* ``market_trades``: events of ``trades`` (``trade_id``, ``price``, ``size``, ``side``,
  ``time``); ``side`` is the maker side, so the taker is the other one. The ``snapshot``
  event repeats recent trades: ids at or below the last one published are dropped, a jump is
  a trade gap (counted);
* ``heartbeats`` (once a second, keeps quiet subscriptions open) and ``subscriptions`` acks.

``sequence_num`` is **one counter per connection**, across all channels: each frame is the
previous + 1. A frame at or below the last is a duplicate and is dropped whole. A jump means
frames were lost and any of them may have been a book update, so **every** book on the
connection is invalidated (``RESYNC``) first, then ``level2`` is unsubscribed and subscribed
again; each product's new ``snapshot`` replaces its book, and updates that arrive for a book
before its snapshot are dropped. A new connection starts a new counter (its first frame sets
it). ``Quote.update_id``/``BookLevel.update_id`` carry the frame's ``sequence_num``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from protocol.market import InvalidationReason, Side, Trade

from ..book import (
    Action,
    FeedError,
    Instrument,
    Publish,
    Send,
    iso_to_ns,
    malformed,
)
from .products import CoinbaseCore, Product

_SIDE = {"bid": Side.BUY, "offer": Side.SELL, "ask": Side.SELL}
_TAKER = {"BUY": Side.SELL, "SELL": Side.BUY}  # market_trades.side is the maker's


class AdvancedCore(CoinbaseCore):
    def __init__(self, instruments: Iterable[Instrument]) -> None:
        super().__init__(instruments)
        self.last_seq: int | None = None  # per connection
        self.sequence_gaps = 0
        self.duplicates = 0

    def _sub(self, kind: str, channel: str) -> Send:
        body: dict[str, Any] = {"type": kind, "channel": channel}
        if channel != "heartbeats":
            body["product_ids"] = list(self.products)
        return Send(body)

    def subscribe(self) -> list[Action]:
        return [self._sub("subscribe", "heartbeats"), self._sub("subscribe", "level2"),
                self._sub("subscribe", "market_trades")]

    def on_connect(self, now_ns: int) -> list[Action]:
        self.last_seq = None
        acts: list[Action] = []
        for p in self.products.values():
            acts += p.pub.invalidate(InvalidationReason.RESYNC, "waiting for the level2 snapshot", 0, now_ns,
                                     forced=False)
        return acts + self.subscribe()

    def on_disconnect(self, now_ns: int) -> list[Action]:
        acts: list[Action] = []
        for p in self.products.values():
            acts += p.pub.invalidate(InvalidationReason.DISCONNECT, "connection lost; resubscribing",
                                     self.last_seq or 0, now_ns)
        self.last_seq = None
        return acts

    def on_event(self, msg: Mapping[str, Any], recv_ns: int) -> list[Action]:
        if msg.get("type") == "error":
            raise FeedError(f"venue error: {msg.get('message')}")
        try:
            seq = int(msg["sequence_num"])
            channel = msg["channel"]
            events = msg.get("events") or ()
        except (KeyError, TypeError, ValueError) as exc:
            raise FeedError(f"frame without channel/sequence_num ({exc!r})") from None
        acts: list[Action] = []
        if self.last_seq is not None:
            if seq <= self.last_seq:
                self.duplicates += 1
                self.counters.dropped_stale += 1
                return []
            if seq != self.last_seq + 1:
                acts += self._gap(seq, recv_ns)
        self.last_seq = seq
        with malformed(f"{channel} frame"):
            if channel == "l2_data":
                t = msg.get("timestamp")
                event_ns = iso_to_ns(t) if t else recv_ns
                for ev in events:
                    acts += self._book_event(ev, seq, event_ns, recv_ns)
            elif channel == "market_trades":
                for ev in events:
                    acts += self._trades(ev, recv_ns)
            else:  # heartbeats, subscriptions
                self.counters.ignored += 1
        return acts

    def _gap(self, seq: int, recv_ns: int) -> list[Action]:
        """Frames lost on this connection: every book is suspect; resubscribe level2 for new snapshots."""
        assert self.last_seq is not None
        self.sequence_gaps += 1
        acts: list[Action] = []
        detail = f"sequence gap: got {seq}, expected {self.last_seq + 1}"
        for p in self.products.values():
            acts += p.pub.invalidate(InvalidationReason.RESYNC, detail, self.last_seq, recv_ns)
        return acts + [self._sub("unsubscribe", "level2"), self._sub("subscribe", "level2")]

    def _product(self, product_id: str) -> Product:
        try:
            return self.products[product_id]
        except KeyError:
            raise FeedError(f"event for a product we did not subscribe to: {product_id!r}") from None

    def _book_event(self, ev: Mapping[str, Any], seq: int, event_ns: int, recv_ns: int) -> list[Action]:
        p = self._product(ev["product_id"])
        inst = p.inst
        rows = [(_SIDE[u["side"]], inst.price(u["price_level"]), inst.size(u["new_quantity"]))
                for u in ev["updates"]]
        if ev["type"] == "snapshot":
            bids = [(px, q) for s, px, q in rows if s == Side.BUY]
            asks = [(px, q) for s, px, q in rows if s == Side.SELL]
            return p.pub.replace(bids, asks, seq, event_ns, recv_ns, reason="level2 snapshot")
        if not p.pub.trusted:
            self.counters.dropped_stale += 1
            return []
        return p.pub.update(rows, seq, event_ns, recv_ns)

    def _trades(self, ev: Mapping[str, Any], recv_ns: int) -> list[Action]:
        acts: list[Action] = []
        for t in sorted(ev.get("trades") or (), key=lambda t: int(t["trade_id"])):
            p = self._product(t["product_id"])
            trade_id = int(t["trade_id"])
            if not p.trade_ids.accept(trade_id, baseline=ev.get("type") == "snapshot"):
                continue
            self.counters.trades += 1
            inst = p.inst
            trade = Trade(venue=inst.venue, side=_TAKER[t["side"].upper()], price_scale=inst.price_scale,
                          size_scale=inst.size_scale, trade_id=trade_id, price=inst.price(t["price"]),
                          size=inst.size(t["size"]), symbol=inst.symbol)
            acts.append(Publish((trade,), iso_to_ns(t["time"]) if t.get("time") else recv_ns, recv_ns))
        return acts
