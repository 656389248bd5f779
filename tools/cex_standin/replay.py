"""The stand-ins' sans-IO replay models: what to send next, and what REST answers, from a real capture.

``BinanceReplay`` walks the Binance capture's received frames in order and keeps, per symbol, the
venue's own book (the capture's REST snapshot, then every diff after it, in ``Decimal`` strings as
the venue would): ``depth(symbol)`` answers ``GET /api/v3/depth`` with that book and
``lastUpdateId`` = the last diff sent. Before the capture's snapshot time it answers with the
capture's snapshot itself (a snapshot ahead of the stream, which Binance's rules handle).

``CoinbaseReplay`` walks the Exchange capture's received frames; after a reconnect it sends each
product's current book as a fresh ``snapshot`` (what a resubscribe gets from Coinbase) and carries
on from where the stream was.

Fault switches (``Faults``) act on the frame index of the replay: drop, duplicate, or swap with the
next frame; disconnect after a frame; hold REST snapshot answers back for some frames.

For the demo, ``BinanceReplay`` can also play the capture as another market (``text(i)`` is then the
rewritten frame, and the venue's book, REST answers and paper fills follow it):

* ``prices``: a ``PriceMap`` per symbol moves the capture's price level onto another pair's (the devnet's
  WETH/USDC) and amplifies its moves;
* ``live_times``: event and trade times (``E``, ``T``) are the stand-in's clock, not 2021's;
* ``restart()`` plays the capture again as the next lap: every update id and trade id is shifted past the
  previous lap's, so ids only ever grow (the server closes the connection between laps, so a client
  resyncs from a fresh snapshot, as it would after any disconnect).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from . import captures


@dataclass
class Faults:
    drop: set[int] = field(default_factory=set)  # frame indexes never sent
    duplicate: set[int] = field(default_factory=set)  # sent twice
    swap: set[int] = field(default_factory=set)  # sent after the next frame
    disconnect_after: set[int] = field(default_factory=set)  # close the socket after sending this frame
    snapshot_delay_frames: int = 0  # a REST snapshot is answered only after this many more frames

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """``drop=5,9;dup=7;swap=12;disconnect=100;late=20`` (the CLI's ``--faults``)."""
        f = cls()
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            key, _, value = part.partition("=")
            nums = [int(v) for v in value.split(",") if v.strip()]
            if key == "drop":
                f.drop.update(nums)
            elif key in ("dup", "duplicate"):
                f.duplicate.update(nums)
            elif key == "swap":
                f.swap.update(nums)
            elif key == "disconnect":
                f.disconnect_after.update(nums)
            elif key == "late":
                f.snapshot_delay_frames = nums[0] if nums else 0
            else:
                raise ValueError(f"unknown fault {key!r} (drop, dup, swap, disconnect, late)")
        return f


def faulty(frames: Iterable[tuple[int, Any]], faults: Faults) -> Iterator[tuple[int, Any]]:
    """Apply drop / duplicate / swap to ``(index, frame)`` pairs (disconnects are the server's job)."""
    held: tuple[int, Any] | None = None
    for i, fr in frames:
        if i in faults.drop:
            continue
        out = [(i, fr)] * (2 if i in faults.duplicate else 1)
        if i in faults.swap and held is None:
            held = (i, fr)
            continue
        yield from out
        if held is not None:
            yield held
            held = None
    if held is not None:
        yield held


Book = dict[str, dict[Decimal, str]]


@dataclass(frozen=True, slots=True)
class PriceMap:
    """One symbol's prices as a demo venue shows them: ``target + amplify * (p - source)``, and its sizes
    times ``sizes``.

    A map with constant coefficients sends every price of a diff-depth feed on its own, so a diff stays a
    diff, the levels keep their order, and the mid moves exactly as the capture's did, times ``amplify``:
    the capture's price level becomes another pair's, and its small moves become visible ones. Stretching
    the prices spreads each level's size over ``amplify`` times the price range; ``sizes = amplify`` puts it
    back, so the book holds as much within N bps of its mid as the capture did (to first order). Exact in
    ``Decimal``, written with the venue's own number of decimals. A level that would fall to zero or below
    does not exist at this venue (never sent, never matched)."""

    symbol: str
    source: Decimal
    target: Decimal
    amplify: int = 1
    sizes: int = 1

    def __post_init__(self) -> None:
        if self.amplify < 1 or self.sizes < 1 or self.source <= 0 or self.target <= 0:
            raise ValueError(f"{self.symbol}: prices must be positive, the amplification and size factor at least 1")

    def __call__(self, text: str) -> str | None:
        price = self.target + self.amplify * (Decimal(text) - self.source)
        if price <= 0:
            return None
        return _same_decimals(price, text)

    def size(self, text: str) -> str:
        return text if self.sizes == 1 else _same_decimals(self.sizes * Decimal(text), text)

    @classmethod
    def parse(cls, spec: str) -> PriceMap:
        """``ETHUSDT:2064.73=2004x20*20`` (the CLI's ``--map-price``; ``xAMPLIFY`` and ``*SIZES`` optional)."""
        try:
            symbol, _, rest = spec.partition(":")
            source, _, rest = rest.partition("=")
            rest, _, sizes = rest.partition("*")
            target, _, amplify = rest.partition("x")
            return cls(symbol.strip().upper(), Decimal(source), Decimal(target), int(amplify or 1), int(sizes or 1))
        except (InvalidOperation, ValueError) as exc:
            raise ValueError(f"bad price map {spec!r}: want SYMBOL:SOURCE=TARGET[xAMPLIFY][*SIZES] ({exc})") from None

    def __str__(self) -> str:
        return f"{self.symbol}:{self.source}={self.target}x{self.amplify}" + (f"*{self.sizes}" if self.sizes > 1 else "")


def _same_decimals(value: Decimal, like: str) -> str:
    """``value`` written with as many decimals as ``like`` (exact: the maps' coefficients are integers or have
    no more decimals than the venue's)."""
    exponent = Decimal(like).as_tuple().exponent
    return format(value.quantize(Decimal(1).scaleb(exponent)) if isinstance(exponent, int) else value, "f")


def _book(bids: Iterable[list[str]], asks: Iterable[list[str]]) -> Book:
    b: Book = {"bids": {}, "asks": {}}
    for key, rows in (("bids", bids), ("asks", asks)):
        for p, q in rows:
            if Decimal(q):
                b[key][Decimal(p)] = q
    return b


def _set(levels: dict[Decimal, str], price: str, size: str) -> None:
    if Decimal(size):
        levels[Decimal(price)] = size
    else:
        levels.pop(Decimal(price), None)


def _rows(levels: dict[Decimal, str], reverse: bool, limit: int | None = None) -> list[list[str]]:
    keys = sorted(levels, reverse=reverse)[:limit]
    return [[format(k, "f"), levels[k]] for k in keys]


class BinanceReplay:
    def __init__(self, path: str | Path = captures.BINANCE, *, prices: Iterable[PriceMap] = (),
                 live_times: bool = False, clock_ms: Callable[[], int] | None = None) -> None:
        self.frames: list[tuple[int, str]] = []  # (capture receive ns, frame text)
        self._snapshots: dict[str, tuple[int, dict[str, Any]]] = {}  # the capture's, as recorded
        for rec in captures.read(path):
            if rec.kind == "recv":
                self.frames.append((rec.ts_ns, rec.text))
            elif rec.kind == "rest" and "depth" in rec.url:
                symbol = rec.url.split("symbol=")[1].split("&")[0].upper()
                self._snapshots[symbol] = (len(self.frames), json.loads(rec.text))
        self.prices: Mapping[str, PriceMap] = {m.symbol: m for m in prices}
        for sym in self.prices:
            if sym not in self._snapshots:
                raise ValueError(f"price map for {sym}, which the capture does not have ({', '.join(self.symbols)})")
        self.live_times = live_times
        self.clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.lap = 0
        self._offsets: dict[str, tuple[int, int, int]] = {}  # symbol -> (update id, agg id, trade id) per lap
        self._current: tuple[int, int, str | None] = (-1, -1, None)  # (lap, index, text as sent)
        self.capture_snapshots: dict[str, tuple[int, dict[str, Any]]] = {}  # symbol -> (frame index, body)
        self.restart(lap=0)

    @property
    def rewriting(self) -> bool:
        return bool(self.prices or self.live_times or self.lap)

    def restart(self, lap: int | None = None) -> None:
        """Play the capture again from its first frame as lap ``lap`` (default: the next one)."""
        self.lap = self.lap + 1 if lap is None else lap
        if self.lap and not self._offsets:
            self._offsets = _id_spans(self.frames, self._snapshots)
        self.capture_snapshots = {s: (i, self._snapshot(s, body)) for s, (i, body) in self._snapshots.items()}
        self.books = {}
        self.last_u = {}
        self.pending = {s: [] for s in self.capture_snapshots}
        self.position = 0  # frames consumed from the capture in this lap
        self._current = (-1, -1, None)

    def _snapshot(self, sym: str, body: dict[str, Any]) -> dict[str, Any]:
        if not self.rewriting:
            return body
        off = self._offsets.get(sym, (0, 0, 0))[0] * self.lap
        return {"lastUpdateId": int(body["lastUpdateId"]) + off, "bids": self._levels(sym, body["bids"]),
                "asks": self._levels(sym, body["asks"])}

    def _levels(self, sym: str, rows: Iterable[list[str]]) -> list[list[str]]:
        pmap = self.prices.get(sym)
        if pmap is None:
            return [list(r) for r in rows]
        return [[p, pmap.size(q)] for p, q in ((pmap(r[0]), r[1]) for r in rows) if p is not None]

    def text(self, index: int) -> str | None:
        """Frame ``index`` as this venue sends it now: the capture's own text unless rewriting (then the
        rewritten frame, or None when nothing of it is left)."""
        if not self.rewriting:
            return self.frames[index][1]
        lap, i, text = self._current
        if (lap, i) != (self.lap, index):
            text = self._rewrite(json.loads(self.frames[index][1]))
            self._current = (self.lap, index, text)
        return text

    def _rewrite(self, msg: dict[str, Any]) -> str | None:
        data = msg.get("data")
        if not isinstance(data, dict):
            return json.dumps(msg, separators=(",", ":"))
        sym, kind = str(data.get("s", "")).upper(), data.get("e")
        u_off, a_off, t_off = (o * self.lap for o in self._offsets.get(sym, (0, 0, 0)))
        pmap = self.prices.get(sym)
        data = dict(data)
        if self.live_times:
            now = self.clock_ms()
            for key in ("E", "T"):
                if key in data:
                    data[key] = now
        if kind == "depthUpdate":
            data["U"], data["u"] = int(data["U"]) + u_off, int(data["u"]) + u_off
            data["b"], data["a"] = self._levels(sym, data["b"]), self._levels(sym, data["a"])
        elif kind == "aggTrade":
            data["a"], data["f"], data["l"] = int(data["a"]) + a_off, int(data["f"]) + t_off, int(data["l"]) + t_off
            if pmap is not None:
                data["p"], data["q"] = pmap(data["p"]), pmap.size(data["q"])
                if data["p"] is None:
                    return None
        elif kind == "kline" and pmap is not None:
            k = data["k"] = dict(data["k"])
            for key in ("o", "c", "h", "l"):
                k[key] = pmap(k[key]) or "0"
            for key in ("v", "V"):
                if key in k:
                    k[key] = pmap.size(k[key])
        return json.dumps({**msg, "data": data}, separators=(",", ":"))

    @property
    def symbols(self) -> list[str]:
        return sorted(self._snapshots)

    def advance(self, index: int) -> None:
        """Frame ``index`` has been produced (sent or deliberately lost): the venue's book moves on."""
        self.position = max(self.position, index + 1)
        text = self.text(index)
        data = json.loads(text).get("data", {}) if text is not None else {}
        if data.get("e") != "depthUpdate":
            return
        sym = data["s"]
        if sym not in self.books:
            self.pending.setdefault(sym, []).append(data)
            snap_at = self.capture_snapshots.get(sym, (10**12, None))[0]
            if index + 1 >= snap_at:
                self._start(sym)
            return
        self._apply(sym, data)

    def _start(self, sym: str) -> None:
        _, snap = self.capture_snapshots[sym]
        self.books[sym] = _book(snap["bids"], snap["asks"])
        self.last_u[sym] = int(snap["lastUpdateId"])
        for d in self.pending.pop(sym, []):
            if int(d["u"]) > self.last_u[sym]:
                self._apply(sym, d)

    def _apply(self, sym: str, d: dict[str, Any]) -> None:
        if int(d["u"]) <= self.last_u[sym]:
            return  # already inside the snapshot (levels deeper than its limit stay unknown, as on Binance)
        book = self.books[sym]
        for p, q in d["b"]:
            _set(book["bids"], p, q)
        for p, q in d["a"]:
            _set(book["asks"], p, q)
        self.last_u[sym] = max(self.last_u[sym], int(d["u"]))

    def depth(self, symbol: str, limit: int = 1000) -> dict[str, Any]:
        """The REST ``/api/v3/depth`` answer now."""
        sym = symbol.upper()
        if sym not in self.books:
            return self.capture_snapshots[sym][1]
        b = self.books[sym]
        return {"lastUpdateId": self.last_u[sym], "bids": _rows(b["bids"], True, limit),
                "asks": _rows(b["asks"], False, limit)}


def _id_spans(frames: list[tuple[int, str]], snapshots: Mapping[str, tuple[int, dict[str, Any]]]
              ) -> dict[str, tuple[int, int, int]]:
    """Per symbol, how far one lap moves its ids: (update ids, aggregate trade ids, trade ids), each the
    capture's range plus one, so the next lap's first id follows the last one seen."""
    lo: dict[tuple[str, str], int] = {}
    hi: dict[tuple[str, str], int] = {}

    def see(sym: str, kind: str, *ids: int) -> None:
        lo[sym, kind] = min(lo.get((sym, kind), min(ids)), *ids)
        hi[sym, kind] = max(hi.get((sym, kind), max(ids)), *ids)

    for sym, (_, body) in snapshots.items():
        see(sym, "u", int(body["lastUpdateId"]))
    for _, text in frames:
        d = json.loads(text).get("data") or {}
        if d.get("e") == "depthUpdate":
            see(d["s"], "u", int(d["U"]), int(d["u"]))
        elif d.get("e") == "aggTrade":
            see(d["s"], "a", int(d["a"]))
            see(d["s"], "t", int(d["f"]), int(d["l"]))
    def span(sym: str, kind: str) -> int:
        return hi[sym, kind] - lo[sym, kind] + 1 if (sym, kind) in lo else 0

    return {sym: (span(sym, "u"), span(sym, "a"), span(sym, "t")) for sym in {s for s, _ in lo}}


class CoinbaseReplay:
    def __init__(self, path: str | Path = captures.COINBASE) -> None:
        self.frames: list[tuple[int, str]] = [(r.ts_ns, r.text) for r in captures.read(path) if r.kind == "recv"]
        self.books: dict[str, Book] = {}
        self.last_trade: dict[str, dict[str, Any]] = {}
        self.position = 0

    def advance(self, index: int) -> None:
        self.position = max(self.position, index + 1)
        msg = json.loads(self.frames[index][1])
        kind = msg.get("type")
        if kind == "snapshot":
            self.books[msg["product_id"]] = _book(msg["bids"], msg["asks"])
        elif kind == "l2update" and msg["product_id"] in self.books:
            book = self.books[msg["product_id"]]
            for side, p, q in msg["changes"]:
                _set(book["bids" if side == "buy" else "asks"], p, q)
        elif kind in ("match", "last_match"):
            self.last_trade[msg["product_id"]] = msg

    def snapshot(self, product: str) -> dict[str, Any]:
        """A fresh level2 ``snapshot`` of the product's current book (what a resubscribe sends)."""
        b = self.books[product]
        return {"type": "snapshot", "product_id": product, "bids": _rows(b["bids"], True),
                "asks": _rows(b["asks"], False)}
