"""``BinanceCore``: Binance spot diff-depth book sync and aggregate trades, sans-IO.

The shell subscribes to one combined stream (``<symbol>@depth@100ms`` and ``<symbol>@aggTrade``
per symbol), calls ``on_connect`` once the socket is open, ``on_message`` for every frame,
``on_snapshot`` with each REST ``/api/v3/depth`` answer, ``on_disconnect`` when the socket is
gone, and performs the returned actions (``collectors/cex/book.py``).

Per symbol, Binance's documented rules ("How to manage a local order book correctly"):

1. buffer the diffs (``U`` first / ``u`` final update id of each) and ask for the snapshot;
2. snapshot ``lastUpdateId`` = L: drop buffered diffs with ``u <= L``; if the first one left
   has ``U > L + 1`` the snapshot is older than the stream -- ask again (nothing published);
3. otherwise publish the snapshot whole, then apply the buffer: the **first** diff applied must
   straddle ``U <= L + 1 <= u``; every later one must have ``U == previous u + 1``;
4. a diff breaking (3) is a gap: ``StateInvalidation(RESYNC)`` goes out first, the book is
   cleared and we are back at (1) with that diff buffered;
5. quantities are absolute; 0 deletes the level (removing an absent level is not an error).

A diff with ``u <=`` the last applied ``u`` is already in the book (a duplicate, or older than
the snapshot): it is dropped, never re-applied -- re-applying an old absolute size could undo a
newer one. A lost connection invalidates every book (``DISCONNECT``) and starts over at (1).

Aggregate trades: ``a`` is the aggregate id, consecutive per symbol; a jump is a trade gap
(counted, the trades are still published), an id at or below the last is a duplicate (dropped).
``m`` = the buyer is the maker, so the taker sold: ``Side.SELL``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from protocol.ids import Venue
from protocol.market import InvalidationReason, Side, Trade

from ..book import (
    Action,
    BookPublisher,
    Counters,
    FeedCore,
    FeedError,
    FetchSnapshot,
    Instrument,
    Publish,
    TradeIds,
    ms_to_ns,
)

MAX_BUFFER = 5000  # diffs held per symbol while a snapshot is on its way (~8 min at 100 ms)


@dataclass(frozen=True, slots=True)
class Diff:
    first: int  # U
    final: int  # u
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]
    event_ns: int
    recv_ns: int


class SymbolSync:
    """One symbol's sync state machine: BUFFERING (waiting for a usable snapshot) or SYNCED."""

    def __init__(self, inst: Instrument, counters: Counters, max_buffer: int) -> None:
        self.inst = inst
        self.pub = BookPublisher(inst, counters)
        self.counters = counters
        self.synced = False
        self.buffer: deque[Diff] = deque(maxlen=max_buffer)
        self.requested = False  # a FetchSnapshot is outstanding
        self.attempt = 0
        self.last_u = 0  # the book reflects every update up to and including this id
        self.first_pending = False  # the next applied diff must straddle last_u + 1
        self.trade_ids = TradeIds(counters)

    # -- book --

    def request(self) -> list[Action]:
        if self.requested:
            return []
        self.requested = True
        self.attempt += 1
        return [FetchSnapshot(self.inst.symbol, self.attempt)]

    def resync(self, reason: InvalidationReason, detail: str, now_ns: int) -> list[Action]:
        acts = self.pub.invalidate(reason, detail, self.last_u, now_ns)
        self.synced = False
        self.first_pending = False
        return acts

    def on_diff(self, d: Diff) -> list[Action]:
        if not self.synced:
            self.buffer.append(d)
            return self.request()
        return self._apply(d)

    def _apply(self, d: Diff) -> list[Action]:
        if d.final <= self.last_u:
            self.counters.dropped_stale += 1
            return []
        expected = self.last_u + 1
        ok = d.first <= expected if self.first_pending else d.first == expected
        if not ok:
            acts = self.resync(InvalidationReason.RESYNC, f"gap: diff U={d.first} u={d.final}, expected U={expected}",
                               d.recv_ns)
            self.buffer.clear()
            self.buffer.append(d)
            return acts + self.request()
        self.first_pending = False
        self.last_u = d.final
        changes = [(Side.BUY, p, s) for p, s in d.bids] + [(Side.SELL, p, s) for p, s in d.asks]
        return self.pub.update(changes, d.final, d.event_ns, d.recv_ns)

    def on_snapshot(self, last_update_id: int, bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]],
                    recv_ns: int) -> list[Action]:
        self.requested = False
        if self.synced:  # an answer nobody waits for any more (a duplicate request)
            return []
        buf = self.buffer
        while buf and buf[0].final <= last_update_id:
            buf.popleft()
            self.counters.dropped_stale += 1
        if buf and buf[0].first > last_update_id + 1:
            return self.request()  # the snapshot is older than the oldest diff we hold
        acts = self.pub.replace(bids, asks, last_update_id, recv_ns, recv_ns)
        self.synced, self.last_u, self.first_pending, self.attempt = True, last_update_id, True, 0
        pending = list(buf)
        buf.clear()
        for i, d in enumerate(pending):
            acts += self._apply(d)
            if not self.synced:  # a gap inside the buffer: keep the rest for the next snapshot
                buf.extend(pending[i + 1:])
                break
        return acts

    def on_disconnect(self, now_ns: int) -> list[Action]:
        acts = self.resync(InvalidationReason.DISCONNECT, "connection lost", now_ns)
        self.buffer.clear()
        self.requested = False
        self.attempt = 0
        return acts

    # -- trades --

    def on_trade(self, t: Mapping[str, Any], recv_ns: int) -> list[Action]:
        agg = int(t["a"])
        if not self.trade_ids.accept(agg):
            return []
        self.counters.trades += 1
        i = self.inst
        trade = Trade(venue=i.venue, side=Side.SELL if t["m"] else Side.BUY, price_scale=i.price_scale,
                      size_scale=i.size_scale, trade_id=agg, price=i.price(t["p"]), size=i.size(t["q"]),
                      symbol=i.symbol)
        return [Publish((trade,), ms_to_ns(t.get("T", t["E"])), recv_ns)]


def _levels(inst: Instrument, rows: Iterable[Sequence[str]]) -> tuple[tuple[int, int], ...]:
    return tuple((inst.price(r[0]), inst.size(r[1])) for r in rows)


class BinanceCore(FeedCore):
    """Every subscribed symbol of one combined-stream connection."""

    def __init__(self, instruments: Iterable[Instrument], *, max_buffer: int = MAX_BUFFER) -> None:
        self.counters = Counters()
        self.symbols: dict[str, SymbolSync] = {}
        for inst in instruments:
            if inst.venue != Venue.BINANCE:
                raise ValueError(f"{inst.symbol}: not a Binance instrument")
            self.symbols[inst.symbol.upper()] = SymbolSync(inst, self.counters, max_buffer)

    def streams(self, depth: str = "depth@100ms") -> list[str]:
        """The combined-stream names to subscribe to (``ethusdt@depth@100ms``, ``ethusdt@aggTrade``)."""
        out = []
        for s in self.symbols:
            out += [f"{s.lower()}@{depth}", f"{s.lower()}@aggTrade"]
        return out

    def on_connect(self, now_ns: int) -> list[Action]:
        """The socket is open: every book needs a snapshot (invalidated first, once)."""
        acts: list[Action] = []
        for sync in self.symbols.values():
            acts += sync.pub.invalidate(InvalidationReason.RESYNC, "syncing from the REST snapshot", 0, now_ns,
                                        forced=False)
            acts += sync.request()
        return acts

    def on_disconnect(self, now_ns: int) -> list[Action]:
        acts: list[Action] = []
        for sync in self.symbols.values():
            acts += sync.on_disconnect(now_ns)
        return acts

    def on_event(self, msg: Any, recv_ns: int) -> list[Action]:
        data = msg.get("data", msg) if isinstance(msg, dict) else None
        if not isinstance(data, dict):
            raise FeedError(f"unexpected frame: {str(msg)[:80]}")
        kind = data.get("e")
        if kind == "depthUpdate":
            sync = self._sync(data)
            inst = sync.inst
            try:
                diff = Diff(int(data["U"]), int(data["u"]), _levels(inst, data["b"]), _levels(inst, data["a"]),
                            ms_to_ns(data["E"]), recv_ns)
            except (KeyError, TypeError, IndexError) as exc:
                raise FeedError(f"malformed depthUpdate ({exc!r})") from None
            return sync.on_diff(diff)
        if kind == "aggTrade":
            try:
                return self._sync(data).on_trade(data, recv_ns)
            except (KeyError, TypeError) as exc:
                raise FeedError(f"malformed aggTrade ({exc!r})") from None
        self.counters.ignored += 1  # klines, subscription results, ...
        return []

    def _sync(self, data: Mapping[str, Any]) -> SymbolSync:
        try:
            return self.symbols[str(data["s"]).upper()]
        except KeyError:
            raise FeedError(f"event for a symbol we did not subscribe to: {data.get('s')!r}") from None

    def on_snapshot(self, symbol: str, body: str | bytes | Mapping[str, Any], recv_ns: int) -> list[Action]:
        """A REST depth answer: ``{"lastUpdateId": L, "bids": [[p, q], ...], "asks": [...]}``."""
        sync = self.symbols[symbol.upper()]
        snap = json.loads(body) if isinstance(body, (str, bytes)) else body
        try:
            lid = int(snap["lastUpdateId"])
            bids, asks = _levels(sync.inst, snap["bids"]), _levels(sync.inst, snap["asks"])
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            sync.requested = False
            raise FeedError(f"{symbol}: malformed depth snapshot ({exc!r})") from None
        return sync.on_snapshot(lid, bids, asks, recv_ns)

    def on_snapshot_failed(self, symbol: str) -> list[Action]:
        """The REST call failed: ask again (the shell spaces the attempts)."""
        sync = self.symbols[symbol.upper()]
        sync.requested = False
        return [] if sync.synced else sync.request()

    def book(self, symbol: str) -> BookPublisher:
        return self.symbols[symbol.upper()].pub
