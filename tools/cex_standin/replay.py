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
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
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
    def __init__(self, path: str | Path = captures.BINANCE) -> None:
        self.frames: list[tuple[int, str]] = []  # (capture receive ns, frame text)
        self.capture_snapshots: dict[str, tuple[int, dict[str, Any]]] = {}  # symbol -> (frame index, body)
        for rec in captures.read(path):
            if rec.kind == "recv":
                self.frames.append((rec.ts_ns, rec.text))
            elif rec.kind == "rest" and "depth" in rec.url:
                symbol = rec.url.split("symbol=")[1].split("&")[0].upper()
                self.capture_snapshots[symbol] = (len(self.frames), json.loads(rec.text))
        self.books: dict[str, Book] = {}
        self.last_u: dict[str, int] = {}
        self.pending: dict[str, list[dict[str, Any]]] = {s: [] for s in self.capture_snapshots}
        self.position = 0  # frames consumed from the capture

    @property
    def symbols(self) -> list[str]:
        return sorted(self.capture_snapshots)

    def advance(self, index: int) -> None:
        """Frame ``index`` has been produced (sent or deliberately lost): the venue's book moves on."""
        self.position = max(self.position, index + 1)
        data = json.loads(self.frames[index][1]).get("data", {})
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
