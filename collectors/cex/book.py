"""What every CEX collector core shares: exact decimals, venue times, the local book, the actions.

Theory of operation
-------------------
Each venue core (``binance/sync.py``, ``coinbase/exchange.py``, ``coinbase/advanced.py``) is
sans-IO in the shape of ``collectors/evm/follower.py``: the trio shell hands it every frame the
venue sent (text plus the local receive time in ns) and every REST answer, and carries out the
actions it returns, in order:

* ``Publish(tlvs, event_time_ns, receive_time_ns)`` -- one message to the market-data relay;
* ``FetchSnapshot(symbol)``  -- GET the venue's REST depth snapshot, hand it to ``on_snapshot``;
* ``Send(payload)``          -- send a JSON frame on the WebSocket (subscribe / unsubscribe);
* ``Reconnect(reason)``      -- drop the connection and open a new one (the core says why).

How a book travels on the bus (``specs/cex.md``):

* a ``StateInvalidation`` (``chain_id`` 0, ``pool`` = ``cex_book_id``) goes out **first**
  whenever a book is not trustworthy: before its first snapshot, at a gap, at a disconnect;
* the book is then published whole: ``BookLevel`` records for every level (absolute sizes),
  closed by a ``Quote`` (top of book) -- split over several messages only when it would exceed
  the payload limit, the ``Quote`` in the last;
* every later message of that book is one venue update: a ``BookLevel`` per changed level
  (size 0 deletes it) and the ``Quote`` after it. A consumer clears a book at its invalidation
  and trusts it again at the first ``Quote`` after that.

Prices and sizes are integers with the symbol's explicit decimal scale (``price = mantissa /
10**scale``), parsed from the venue's decimal strings without floats; a string with more
significant decimals than the scale is refused (:class:`PrecisionError`), never rounded. Zero
sizes come spelled "0", "0.0", "0.00000000": they are compared as numbers.
"""

from __future__ import annotations

import abc
import calendar
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from market.scaled import (  # noqa: F401  (re-exported: the collectors' one place for numbers)
    DecimalError,
    PrecisionError,
    decimals_of,
    format_scaled,
    parse_scaled,
)
from protocol.header import MAX_PAYLOAD
from protocol.ids import PoolId, cex_book_id
from protocol.market import BookLevel, InvalidationReason, Quote, Side, StateInvalidation
from protocol.tlv import TLV

MAX_SCALE = 30
# A BookLevel is 47 bytes + the symbol; keep a snapshot message well under MAX_PAYLOAD.
_LEVEL_BYTES = 2 + 45 + 1 + 24
LEVELS_PER_MESSAGE = (MAX_PAYLOAD - 4096) // _LEVEL_BYTES


class FeedError(ValueError):
    """A venue frame we cannot interpret (malformed JSON shape). A bad number is a
    ``market.scaled.DecimalError``; the shell treats both alike."""


# --- times ------------------------------------------------------------------------------------


def ms_to_ns(ms: Any) -> int:
    return int(ms) * 1_000_000


def iso_to_ns(text: str) -> int:
    """``2021-04-17T16:43:37.075687Z`` (any 0-9 fraction digits, ``Z`` or ``+00:00``) -> ns since the epoch."""
    s = text.strip()
    if s.endswith("Z"):
        s = s[:-1]
    elif s.endswith("+00:00"):
        s = s[:-6]
    s = s.replace(" ", "T", 1)
    head, _, frac = s.partition(".")
    try:
        date, _, clock = head.partition("T")
        y, mo, d = (int(p) for p in date.split("-"))
        h, mi, sec = (int(p) for p in clock.split(":")) if clock else (0, 0, 0)
        if frac and not frac.isdigit():
            raise ValueError
    except ValueError:
        raise FeedError(f"not an ISO-8601 UTC time: {text!r}") from None
    seconds = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0))
    return seconds * 1_000_000_000 + int((frac[:9] or "0").ljust(9, "0"))


# --- symbols ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Instrument:
    """One subscribed symbol as the venue spells it, with its scales and its bus identity."""

    venue: int
    symbol: str  # the venue's own spelling: ETHUSDT, ETH-USD
    base: str
    quote: str
    price_scale: int = 8
    size_scale: int = 8

    def __post_init__(self) -> None:
        for name in ("price_scale", "size_scale"):
            if not 0 <= getattr(self, name) <= MAX_SCALE:
                raise ValueError(f"{self.symbol}: {name} must be within 0..{MAX_SCALE}")

    @property
    def book_id(self) -> PoolId:
        return cex_book_id(self.venue, self.symbol, self.base, self.quote)

    def price(self, text: str) -> int:
        return parse_scaled(text, self.price_scale)

    def size(self, text: str) -> int:
        return parse_scaled(text, self.size_scale)


# --- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Publish:
    tlvs: tuple[TLV, ...]
    event_time_ns: int
    receive_time_ns: int


@dataclass(frozen=True, slots=True)
class FetchSnapshot:
    symbol: str
    attempt: int = 1  # 2+ when the previous snapshot was too old / failed


@dataclass(frozen=True, slots=True)
class Send:
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reconnect:
    reason: str


Action = Publish | FetchSnapshot | Send | Reconnect


@dataclass(slots=True)
class Counters:
    """What a core saw; the shell exports these as metrics and tests assert on them."""

    frames: int = 0
    book_updates: int = 0
    trades: int = 0
    snapshots: int = 0
    invalidations: int = 0
    resyncs_forced: int = 0  # gaps / disconnects that made a book untrustworthy
    resyncs_recovered: int = 0  # books published whole again after an invalidation
    dropped_stale: int = 0  # updates already covered by the book (duplicates, pre-snapshot)
    trade_gaps: int = 0
    trade_duplicates: int = 0
    ignored: int = 0  # frames of channels we do not publish (klines, subscription acks)
    ticker_checks: int = 0
    ticker_mismatches: int = 0


class FeedCore(abc.ABC):
    """What every venue core shares: its :class:`Counters`, and frames that are JSON documents.

    :meth:`on_message` counts a websocket text frame, parses it and hands the document to the
    venue's :meth:`on_event` (tests feed documents to ``on_event`` directly).
    """

    counters: Counters

    def on_message(self, text: str | bytes, recv_ns: int) -> list[Action]:
        self.counters.frames += 1
        try:
            msg = json.loads(text)
        except ValueError as exc:
            raise FeedError(f"not JSON: {exc}") from None
        return self.on_event(msg, recv_ns)

    @abc.abstractmethod
    def on_event(self, msg: Any, recv_ns: int) -> list[Action]: ...


class malformed:  # noqa: N801  (used as ``with malformed(kind):``, like contextlib's helpers)
    """``with malformed(what):`` a missing key, a wrong type or a bad value met while reading a frame
    becomes a :class:`FeedError` naming ``what``; a FeedError raised inside passes through unchanged.
    A class rather than a generator context manager: it runs once per venue frame."""

    __slots__ = ("what",)

    def __init__(self, what: object) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if typ is not None and issubclass(typ, _MALFORMED) and not issubclass(typ, FeedError):
            raise FeedError(f"malformed {self.what} ({exc!r})") from None


_MALFORMED = (KeyError, TypeError, IndexError, ValueError)


# --- the book ---------------------------------------------------------------------------------


class OrderBook:
    """Price -> size maps (integer mantissas); a size of 0 deletes a level.

    The best bid and ask are cached: a level that betters the top replaces it, deleting the
    top forgets it, and only then is the side scanned again (the common update touches levels
    away from the top, so a diff costs O(changes), not O(depth)).
    """

    __slots__ = ("bids", "asks", "_bid", "_ask")

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self._bid: int | None = None  # cached best price; None = unknown (rescan), 0 = empty side
        self._ask: int | None = None

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self._bid = self._ask = None

    def set(self, side: Side, price: int, size: int) -> None:
        if side == Side.BUY:
            if size:
                self.bids[price] = size
                if self._bid is not None and price > self._bid:
                    self._bid = price
            elif self.bids.pop(price, None) is not None and price == self._bid:
                self._bid = None
        else:
            if size:
                self.asks[price] = size
                if self._ask is not None and (price < self._ask or self._ask == 0):
                    self._ask = price
            elif self.asks.pop(price, None) is not None and price == self._ask:
                self._ask = None

    def best_bid(self) -> tuple[int, int]:
        if self._bid is None:
            self._bid = max(self.bids) if self.bids else 0
        return (self._bid, self.bids[self._bid]) if self._bid else (0, 0)

    def best_ask(self) -> tuple[int, int]:
        if self._ask is None:
            self._ask = min(self.asks) if self.asks else 0
        return (self._ask, self.asks[self._ask]) if self._ask else (0, 0)

    def levels(self) -> Iterator[tuple[Side, int, int]]:
        """Bids best first, then asks best first."""
        for p in sorted(self.bids, reverse=True):
            yield Side.BUY, p, self.bids[p]
        for p in sorted(self.asks):
            yield Side.SELL, p, self.asks[p]


class TradeIds:
    """Per-symbol trade-id continuity: a jump is a gap (counted), an old id a duplicate (dropped)."""

    __slots__ = ("last", "counters")

    def __init__(self, counters: Counters) -> None:
        self.last = 0
        self.counters = counters

    def accept(self, trade_id: int, *, baseline: bool = False) -> bool:
        """True when ``trade_id`` is new; ``baseline`` trades (Coinbase ``last_match``) may jump."""
        c = self.counters
        if self.last:
            if trade_id <= self.last:
                c.trade_duplicates += 1
                return False
            if trade_id != self.last + 1 and not baseline:
                c.trade_gaps += 1
        self.last = trade_id
        return True

    def seen_up_to(self, trade_id: int) -> None:
        """A heartbeat says the venue's last trade is ``trade_id``: one we never saw is a gap."""
        if self.last and trade_id > self.last:
            self.counters.trade_gaps += 1
            self.last = trade_id


class BookPublisher:
    """One symbol's book and the messages that describe it (see the module docstring)."""

    def __init__(self, inst: Instrument, counters: Counters) -> None:
        self.inst = inst
        self.book = OrderBook()
        self.counters = counters
        self.trusted = False  # published whole since the last invalidation
        self.invalidated = False  # an invalidation went out that no snapshot has answered yet
        self.forced = False  # the pending invalidation was forced (gap, disconnect), not the first sync

    def level(self, side: Side, price: int, size: int, update_id: int) -> BookLevel:
        i = self.inst
        return BookLevel(venue=i.venue, side=side, price_scale=i.price_scale, size_scale=i.size_scale,
                         update_id=update_id, price=price, size=size, symbol=i.symbol)

    def quote(self, update_id: int) -> Quote:
        i = self.inst
        (bp, bs), (ap, as_) = self.book.best_bid(), self.book.best_ask()
        return Quote(venue=i.venue, price_scale=i.price_scale, size_scale=i.size_scale, update_id=update_id,
                     bid_price=bp, bid_size=bs, ask_price=ap, ask_size=as_, symbol=i.symbol)

    def invalidate(self, reason: InvalidationReason, detail: str, update_id: int, now_ns: int,
                   *, forced: bool = True) -> list[Action]:
        """Mark the book untrustworthy and clear it; the ``StateInvalidation`` (once per episode)."""
        self.book.clear()
        was_trusted, self.trusted = self.trusted, False
        if self.invalidated:
            return []
        self.invalidated = True
        self.counters.invalidations += 1
        if forced and was_trusted:
            self.counters.resyncs_forced += 1
            self.forced = True
        inv = StateInvalidation(chain_id=0, pool=self.inst.book_id, from_block=update_id, reason=reason,
                                detail=f"{self.inst.symbol}: {detail}"[:255])
        return [Publish((inv,), now_ns, now_ns)]

    def replace(self, bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]], update_id: int,
                event_ns: int, recv_ns: int, *, reason: str = "snapshot") -> list[Action]:
        """Replace the book by a snapshot and publish it whole (invalidating first if needed)."""
        acts: list[Action] = []
        if not self.invalidated:
            acts += self.invalidate(InvalidationReason.RESYNC, reason, update_id, recv_ns, forced=False)
        book = self.book
        book.clear()
        for p, s in bids:
            if s:
                book.bids[p] = s
        for p, s in asks:
            if s:
                book.asks[p] = s
        records: list[TLV] = [self.level(side, p, s, update_id) for side, p, s in book.levels()]
        for start in range(0, max(len(records), 1), LEVELS_PER_MESSAGE):
            chunk = records[start:start + LEVELS_PER_MESSAGE]
            if start + LEVELS_PER_MESSAGE >= len(records):
                chunk.append(self.quote(update_id))
            acts.append(Publish(tuple(chunk), event_ns, recv_ns))
        if self.forced:
            self.counters.resyncs_recovered += 1
        self.counters.snapshots += 1
        self.trusted, self.invalidated, self.forced = True, False, False
        return acts

    def update(self, changes: Iterable[tuple[Side, int, int]], update_id: int, event_ns: int,
               recv_ns: int) -> list[Action]:
        """Apply absolute level sizes to a trusted book and publish them with the new top of book."""
        records: list[TLV] = []
        book = self.book
        for side, p, s in changes:
            book.set(side, p, s)
            records.append(self.level(side, p, s, update_id))
        records.append(self.quote(update_id))
        self.counters.book_updates += 1
        return [Publish(tuple(records), event_ns, recv_ns)]
