"""``ExchangeCore``: the Coinbase Exchange feed (``ws-feed.exchange.coinbase.com``), sans-IO.

Channels: ``level2`` (or ``level2_batch``, the same messages batched every 50 ms; plain
``level2`` needs an authenticated subscription today), ``matches``, ``ticker``, ``heartbeat``.

* ``snapshot`` (the whole aggregated book, no sequence, no time) **replaces** the book;
  ``l2update`` ``changes`` are ``[side, price, new absolute size]`` with ``buy`` = bid,
  ``sell`` = ask and a zero size ("0", "0.00000000", ...) deleting the level.
* level2 carries **no sequence number**: Coinbase guarantees delivery on the connection, so a
  gap can only be a lost connection. ``on_disconnect`` invalidates every book (``DISCONNECT``)
  first; the next connection resubscribes and each product's fresh ``snapshot`` replaces its
  book. An ``l2update`` for a product whose book is not whole (before its snapshot) is dropped.
* ``match`` / ``last_match``: ``side`` is the **maker** side, so the taker (our ``Trade.side``)
  is the other one. Per product each ``match`` is the previous ``trade_id`` + 1, starting from
  ``last_match`` (the trade before subscribing): a jump is a trade gap (counted); an id at or
  below the last is a duplicate (dropped, e.g. ``last_match`` again after a reconnect).
  ``heartbeat.last_trade_id`` reveals a missed trade in a quiet market.
* ``ticker`` is not published (the ``Quote`` comes from our own book); it is a cross-check:
  its ``best_bid``/``best_ask`` against the book's top, counted in ``ticker_checks`` /
  ``ticker_mismatches``, once the product's ``last_match`` has arrived (tickers sent at
  subscribe time describe an older trade and may legitimately differ).
* ``Quote.update_id`` / ``BookLevel.update_id`` are a local per-product count of book
  messages applied (the feed has no update id of its own).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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

DEFAULT_CHANNELS = ("level2_batch", "matches", "ticker", "heartbeat")
_SIDE = {"buy": Side.BUY, "sell": Side.SELL}
_TAKER = {"buy": Side.SELL, "sell": Side.BUY}  # match.side is the maker's


class ExchangeCore(CoinbaseCore):
    def __init__(self, instruments: Iterable[Instrument], *, channels: Sequence[str] = DEFAULT_CHANNELS) -> None:
        super().__init__(instruments)
        self.channels = tuple(channels)

    def subscribe(self) -> dict[str, Any]:
        return {"type": "subscribe", "product_ids": list(self.products), "channels": list(self.channels)}

    def on_connect(self, now_ns: int) -> list[Action]:
        acts: list[Action] = []
        for p in self.products.values():
            acts += p.pub.invalidate(InvalidationReason.RESYNC, "waiting for the level2 snapshot", 0, now_ns,
                                     forced=False)
        return acts + [Send(self.subscribe())]

    def on_disconnect(self, now_ns: int) -> list[Action]:
        acts: list[Action] = []
        for p in self.products.values():
            acts += p.pub.invalidate(InvalidationReason.DISCONNECT, "connection lost; resubscribing", p.updates,
                                     now_ns)
        return acts

    def on_event(self, msg: Mapping[str, Any], recv_ns: int) -> list[Action]:
        kind = msg.get("type")
        with malformed(kind):
            if kind == "l2update":
                return self._l2update(msg, recv_ns)
            if kind == "snapshot":
                return self._snapshot(msg, recv_ns)
            if kind in ("match", "last_match"):
                return self._match(msg, recv_ns, baseline=kind == "last_match")
            if kind == "ticker":
                return self._ticker(msg)
            if kind == "heartbeat":
                self._product(msg).trade_ids.seen_up_to(int(msg.get("last_trade_id") or 0))
                return []
        if kind == "error":
            raise FeedError(f"venue error: {msg.get('message')} {msg.get('reason', '')}".strip())
        self.counters.ignored += 1  # subscriptions acks, other channels
        return []

    def _product(self, msg: Mapping[str, Any]) -> Product:
        try:
            return self.products[msg["product_id"]]
        except KeyError:
            raise FeedError(f"message for a product we did not subscribe to: {msg.get('product_id')!r}") from None

    def _snapshot(self, msg: Mapping[str, Any], recv_ns: int) -> list[Action]:
        p = self._product(msg)
        inst = p.inst
        bids = [(inst.price(r[0]), inst.size(r[1])) for r in msg["bids"]]
        asks = [(inst.price(r[0]), inst.size(r[1])) for r in msg["asks"]]
        p.updates += 1
        return p.pub.replace(bids, asks, p.updates, recv_ns, recv_ns, reason="level2 snapshot")

    def _l2update(self, msg: Mapping[str, Any], recv_ns: int) -> list[Action]:
        p = self._product(msg)
        if not p.pub.trusted:
            self.counters.dropped_stale += 1
            return []
        inst = p.inst
        changes = [(_SIDE[c[0]], inst.price(c[1]), inst.size(c[2])) for c in msg["changes"]]
        p.updates += 1
        t = msg.get("time")
        return p.pub.update(changes, p.updates, iso_to_ns(t) if t else recv_ns, recv_ns)

    def _match(self, msg: Mapping[str, Any], recv_ns: int, *, baseline: bool) -> list[Action]:
        p = self._product(msg)
        trade_id = int(msg["trade_id"])
        if not p.trade_ids.accept(trade_id, baseline=baseline):
            return []
        self.counters.trades += 1
        inst = p.inst
        trade = Trade(venue=inst.venue, side=_TAKER[msg["side"]], price_scale=inst.price_scale,
                      size_scale=inst.size_scale, trade_id=trade_id, price=inst.price(msg["price"]),
                      size=inst.size(msg["size"]), symbol=inst.symbol)
        t = msg.get("time")
        return [Publish((trade,), iso_to_ns(t) if t else recv_ns, recv_ns)]

    def _ticker(self, msg: Mapping[str, Any]) -> list[Action]:
        p = self._product(msg)
        # Tickers sent at subscribe time (before the product's last_match) describe an older trade.
        if p.pub.trusted and p.trade_ids.last and msg.get("best_bid") and msg.get("best_ask"):
            self.counters.ticker_checks += 1
            inst = p.inst
            if (inst.price(msg["best_bid"]), inst.price(msg["best_ask"])) != (
                    p.pub.book.best_bid()[0], p.pub.book.best_ask()[0]):
                self.counters.ticker_mismatches += 1
        return []
