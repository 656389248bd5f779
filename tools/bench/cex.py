"""CEX collector benchmark: venue frames -> protocol wire bytes per second, vs a plain ``json.loads``.

Inputs: the real captures in ``tests/data/cex-ws-samples`` (Binance spot: 4,716 frames + 3 REST snapshots;
Coinbase Exchange: 9,946 frames) and the Advanced Trade frames the stand-in builds from the Coinbase capture.
For each collector, in one process, best of ``--repeat``:

* **collector**: the sans-IO core (``BinanceCore`` / ``ExchangeCore`` / ``AdvancedCore``) on every frame in
  capture order -- JSON parsing, exact decimal parsing, book sync and top of book -- plus ``protocol.encode``
  of every message it publishes: all a collector does between the socket and the relay;
* **json.loads (baseline)**: ``json.loads`` of the same frames, nothing else.

Resyncs forced and recovered: the clean capture forces none (the first sync of a book is not a resync). The
stand-ins' fault switches (``tools/cex_standin/replay.Faults``: drop, duplicate, swap with the next frame,
disconnect after a frame) force them:

* ``--faults "drop=500;dup=700;swap=900;disconnect=1200"`` switches faults at those frame indexes (each
  collector's own frame list), exactly as ``alphapulse standin --faults`` does;
* ``--fault-every N`` puts one on every N-th book frame, in turn drop, duplicate, swap, disconnect;
* ``--drop-every N`` loses every N-th book frame (Binance, Advanced Trade).

Each faulted run is the core against the replayed venue: the venue's book moves on for every frame, lost ones
too; a REST snapshot is answered from the venue's book once the stream has moved on (Binance); a reconnection
gets fresh snapshots (Coinbase Exchange) or resubscribes and gets them (Advanced Trade, whose ``sequence_num``
is stamped per connection at send time, as the stand-in does: a lost frame still used its number). It reports
the faults applied, the resyncs forced and recovered, the reconnections, and whether every book ended equal to
the venue's. What each feed can see differs by design: Binance and Advanced Trade detect a lost or reordered
update by its sequence; the Exchange feed has none, so only a disconnect forces its resync, and a lost update
stays wrong in the book until then (``books = venue`` says so).

The machine is shared and noisy: compare the ratio, not the absolute rates. ``--limit`` cuts each capture for
a smoke run.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from collectors.cex.binance.sync import BinanceCore
from collectors.cex.book import Action, Counters, FetchSnapshot, Instrument, Publish, Send, parse_scaled
from collectors.cex.coinbase.advanced import AdvancedCore
from collectors.cex.coinbase.exchange import ExchangeCore
from protocol.header import Domain
from protocol.ids import Venue
from protocol.message import Message, encode
from tools.cex_standin import advanced, captures
from tools.cex_standin.replay import BinanceReplay, CoinbaseReplay, Faults, faulty

BINANCE_SYMBOLS = ("ETHUSDT", "BTCUSDT", "DOTUSDT")
FAULT_KINDS = ("drop", "dup", "swap", "disconnect")


def _encode_all(actions: list[Action], seq: list[int]) -> None:
    for a in actions:
        if isinstance(a, Publish):
            seq[0] += 1
            encode(Message(domain=Domain.MARKET_DATA, tlvs=a.tlvs, source_id=1, source_seq=seq[0],
                           event_time_ns=a.event_time_ns, receive_time_ns=a.receive_time_ns))


def _binance_core() -> BinanceCore:
    return BinanceCore([Instrument(venue=Venue.BINANCE, symbol=s, base=s[:-4], quote="USDT") for s in BINANCE_SYMBOLS])


def _coinbase_instruments(products: list[str]) -> list[Instrument]:
    return [Instrument(venue=Venue.COINBASE, symbol=p, base=p.split("-")[0], quote=p.split("-")[1]) for p in products]


# --- the timed runs: the clean capture, in order ---------------------------------------------------


def binance_run(frames: list[tuple[int, str]], snaps: dict[int, list[tuple[str, str]]]) -> tuple[int, Counters]:
    core = _binance_core()
    seq = [0]
    acts = core.on_connect(0)
    for i, (ts, text) in enumerate(frames):
        for sym, body in snaps.get(i, ()):
            acts += core.on_snapshot(sym, body, ts)
        acts += core.on_message(text, ts)
        _encode_all(acts, seq)
        acts = []
    return seq[0], core.counters


def coinbase_run(frames: list[tuple[int, str]], products: list[str]) -> tuple[int, Counters]:
    core = ExchangeCore(_coinbase_instruments(products))
    seq = [0]
    core.on_connect(0)
    for ts, text in frames:
        _encode_all(core.on_message(text, ts), seq)
    return seq[0], core.counters


def advanced_run(frames: list[tuple[int, str]], products: list[str]) -> tuple[int, Counters]:
    core = AdvancedCore(_coinbase_instruments(products))
    seq = [0]
    core.on_connect(0)
    for ts, text in frames:
        _encode_all(core.on_message(text, ts), seq)
    return seq[0], core.counters


# --- the faulted runs: the core against the replayed venue, with the stand-ins' switches -------------


@dataclass
class FaultRun:
    """What one collector did under faults."""

    counters: Counters
    applied: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    books_equal: bool = False


def _applied(faults: Faults, produced: Iterable[int]) -> Counter[str]:
    seen = set(produced)
    sets = {"drop": faults.drop, "dup": faults.duplicate, "swap": faults.swap, "disconnect": faults.disconnect_after}
    return Counter({k: len(v & seen) for k, v in sets.items()})


def _levels(levels: dict[Any, str], scale: int) -> dict[int, int]:
    return {parse_scaled(str(p), scale): parse_scaled(q, scale) for p, q in levels.items()}


def _equal(book: Any, venue: dict[str, dict[Any, str]], scale: int = 8) -> bool:
    return book.bids == _levels(venue["bids"], scale) and book.asks == _levels(venue["asks"], scale)


def binance_faulted(frames: list[tuple[int, str]], faults: Faults, replay: BinanceReplay) -> FaultRun:
    core = _binance_core()
    run = FaultRun(core.counters)
    pending: list[str] = []
    produced = 0

    def handle(acts: list[Action], ts: int) -> None:
        pending.extend(a.symbol for a in acts if isinstance(a, FetchSnapshot))
        # answered once the stream has moved on past the request, as a real REST call would be
        if pending and all(core.symbols[s].buffer for s in pending):
            due, pending[:] = list(pending), []
            for sym in due:
                handle(core.on_snapshot(sym, json.dumps(replay.depth(sym, 5000)), ts), ts)

    handle(core.on_connect(0), 0)
    for i, (ts, text) in faulty(enumerate(frames), faults):
        while produced <= i:  # the venue's book moves on for every frame, lost ones too
            replay.advance(produced)
            produced += 1
        handle(core.on_message(text, ts), ts)
        if i in faults.disconnect_after:
            run.reconnects += 1
            handle(core.on_disconnect(ts) + core.on_connect(ts), ts)
    run.applied = _applied(faults, range(produced))
    run.books_equal = all(core.symbols[s].pub.trusted and _equal(core.symbols[s].pub.book, replay.books[s])
                          for s in BINANCE_SYMBOLS if s in replay.books)
    return run


def coinbase_faulted(frames: list[tuple[int, str]], products: list[str], faults: Faults,
                     replay: CoinbaseReplay) -> FaultRun:
    core = ExchangeCore(_coinbase_instruments(products))
    run = FaultRun(core.counters)
    core.on_connect(0)
    produced = 0
    for i, (ts, text) in faulty(enumerate(frames), faults):
        while produced <= i:
            replay.advance(produced)
            produced += 1
        core.on_message(text, ts)
        if i in faults.disconnect_after:
            run.reconnects += 1
            core.on_disconnect(ts)
            core.on_connect(ts)
            for product in sorted(set(products) & set(replay.books)):  # a resubscription's fresh snapshots
                core.on_message(json.dumps(replay.snapshot(product)), ts)
    run.applied = _applied(faults, range(produced))
    run.books_equal = all(p.pub.trusted and _equal(p.pub.book, replay.books[sym])
                          for sym, p in core.products.items() if sym in replay.books)
    return run


AdvEvent = tuple[int, int, str, list[dict[str, Any]]]  # (Exchange-capture index, ts, channel, events)


def advanced_events(cb_frames: list[tuple[int, str]]) -> list[AdvEvent]:
    out = []
    for i, (ts, text) in enumerate(cb_frames):
        t = advanced.translate(json.loads(text), ts)
        if t is not None:
            out.append((i, ts, t[0], t[1]))
    return out


def advanced_faulted(events: list[AdvEvent], products: list[str], faults: Faults,
                     replay: CoinbaseReplay) -> FaultRun:
    """Faults act on the index in ``events``; ``sequence_num`` is stamped when a frame is produced, one counter
    per connection (a lost frame used its number; a duplicate repeats it)."""
    core = AdvancedCore(_coinbase_instruments(products))
    run = FaultRun(core.counters)
    conn_seq = [0]
    stamped: dict[int, int] = {}  # event index -> the sequence_num it was produced with on this connection
    produced = 0

    def deliver(acts: list[Action], ts: int) -> None:
        if any(isinstance(a, Send) and a.payload["type"] == "subscribe" and a.payload["channel"] == "level2"
               for a in acts):
            for product in sorted(set(products) & set(replay.books)):  # the (re)subscription's fresh snapshots
                channel, evs = advanced.translate(replay.snapshot(product), ts) or ("", [])
                conn_seq[0] += 1
                deliver(core.on_message(advanced.frame(channel, evs, ts, conn_seq[0]), ts), ts)

    cb_produced = 0  # Exchange-capture frames the venue's books have moved through
    deliver(core.on_connect(0), 0)
    for k, (_, ts, channel, evs) in faulty(enumerate(events), faults):
        while produced <= k:  # frames are produced (and numbered) in capture order, lost ones too
            while cb_produced <= events[produced][0]:
                replay.advance(cb_produced)
                cb_produced += 1
            conn_seq[0] += 1
            stamped[produced] = conn_seq[0]
            produced += 1
        deliver(core.on_message(advanced.frame(channel, evs, ts, stamped[k]), ts), ts)
        if k in faults.disconnect_after:
            run.reconnects += 1
            deliver(core.on_disconnect(ts), ts)
            conn_seq[0] = 0  # a new connection numbers from the start
            deliver(core.on_connect(ts), ts)
    run.applied = _applied(faults, range(produced))
    run.books_equal = all(p.pub.trusted and _equal(p.pub.book, replay.books[sym])
                          for sym, p in core.products.items() if sym in replay.books)
    return run


def every_nth(book_frames: list[int], n: int, kinds: Iterable[str] = FAULT_KINDS) -> Faults:
    """One fault on every ``n``-th of ``book_frames`` (indexes), the kinds in turn."""
    f = Faults()
    sets = {"drop": f.drop, "dup": f.duplicate, "swap": f.swap, "disconnect": f.disconnect_after}
    order = list(kinds)
    for k, i in enumerate(book_frames[n - 1::n]):
        sets[order[k % len(order)]].add(i)
    return f


# --- main --------------------------------------------------------------------------------------------


def _loads_all(texts: list[str]) -> list[Any]:
    return [json.loads(t) for t in texts]


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse bench cex", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0, help="frames per capture (0: all)")
    ap.add_argument("--drop-every", type=int, default=0, help="lose every N-th book frame (resync counts)")
    ap.add_argument("--fault-every", type=int, default=0,
                    help="a fault on every N-th book frame: drop, duplicate, swap, disconnect in turn")
    ap.add_argument("--faults", default="", help="the stand-ins' switches at frame indexes: "
                                                 "drop=I,..;dup=I,..;swap=I,..;disconnect=I,..")
    args = ap.parse_args(argv)
    try:
        switched = Faults.parse(args.faults) if args.faults else None
    except ValueError as exc:
        ap.error(str(exc))
    if switched is not None and switched.snapshot_delay_frames:
        ap.error("--faults: late=N is a REST timing switch of the live stand-in; use it there")
    cut = (lambda xs: xs[: args.limit]) if args.limit else (lambda xs: xs)

    bin_replay = BinanceReplay()
    bin_frames = cut(bin_replay.frames)
    snaps: dict[int, list[tuple[str, str]]] = {}
    for sym, (idx, body) in bin_replay.capture_snapshots.items():
        snaps.setdefault(idx, []).append((sym, json.dumps(body)))
    cb_frames = cut(CoinbaseReplay().frames)
    products = json.loads(next(r.text for r in captures.read(captures.COINBASE) if r.kind == "sent"))["product_ids"]
    adv_events = advanced_events(cb_frames)
    adv_frames = [(ts, advanced.frame(ch, evs, ts, k)) for k, (_, ts, ch, evs) in enumerate(adv_events)]

    rows: list[tuple[str, list[tuple[int, str]], Callable[[], tuple[int, Counters]]]] = [
        ("binance", bin_frames, lambda: binance_run(bin_frames, snaps)),
        ("coinbase-exchange", cb_frames, lambda: coinbase_run(cb_frames, products)),
        ("coinbase-advanced", adv_frames, lambda: advanced_run(adv_frames, products)),
    ]
    print(f"{'collector':18s} {'frames':>7s} {'msgs out':>8s} {'frames/s':>10s} {'json.loads/s':>12s} {'ratio':>6s} "
          f"{'forced':>6s} {'recovered':>9s}")
    for name, frames, fn in rows:
        texts = [t for _, t in frames]
        base, _ = _best(partial(_loads_all, texts), args.repeat)
        took, (published, counters) = _best(fn, args.repeat)
        n = len(frames)
        print(f"{name:18s} {n:7d} {published:8d} {n / took:10.0f} {n / base:12.0f} {base / took:6.2f} "
              f"{counters.resyncs_forced:6d} {counters.resyncs_recovered:9d}")
    print("(ratio = json.loads time / collector time on the same frames in this run; forced/recovered: resyncs on "
          "the clean capture)")

    def book_frames(frames: Iterable[tuple[int, str]], marker: str) -> list[int]:
        return [i for i, (_, t) in enumerate(frames) if marker in t]

    bin_books = book_frames(bin_frames, '"depthUpdate"')
    cb_books = book_frames(cb_frames, '"l2update"')
    adv_books = [k for k, (_, _, ch, evs) in enumerate(adv_events) if ch == "l2_data" and evs[0]["type"] == "update"]

    if args.drop_every:
        c_bin = binance_faulted(bin_frames, every_nth(bin_books, args.drop_every, ["drop"]), BinanceReplay()).counters
        c_adv = advanced_faulted(adv_events, products, every_nth(adv_books, args.drop_every, ["drop"]),
                                 CoinbaseReplay()).counters
        for name, c in (("binance", c_bin), ("coinbase-advanced", c_adv)):
            print(f"{name}: losing every {args.drop_every}th book frame: resyncs forced {c.resyncs_forced}, "
                  f"recovered {c.resyncs_recovered}")
    if args.fault_every or switched is not None:
        def faults_for(books: list[int]) -> Faults:
            return switched if switched is not None else every_nth(books, args.fault_every)

        what = (f"--faults {args.faults!r}" if switched is not None
                else f"a fault on every {args.fault_every}th book frame: drop, dup, swap, disconnect in turn")
        print(f"\nunder the stand-ins' fault switches ({what}):")
        print(f"{'collector':18s} {'drop':>5s} {'dup':>5s} {'swap':>5s} {'disc':>5s} {'forced':>7s} {'recovered':>9s} "
              f"{'reconnects':>10s}  books = venue")
        runs = [
            ("binance", binance_faulted(bin_frames, faults_for(bin_books), BinanceReplay())),
            ("coinbase-exchange", coinbase_faulted(cb_frames, products, faults_for(cb_books), CoinbaseReplay())),
            ("coinbase-advanced", advanced_faulted(adv_events, products, faults_for(adv_books), CoinbaseReplay())),
        ]
        for name, r in runs:
            a, c = r.applied, r.counters
            print(f"{name:18s} {a['drop']:5d} {a['dup']:5d} {a['swap']:5d} {a['disconnect']:5d} "
                  f"{c.resyncs_forced:7d} {c.resyncs_recovered:9d} {r.reconnects:10d}  "
                  f"{'yes' if r.books_equal else 'NO'}")
        print("(the Exchange feed has no sequence: a lost or reordered update is invisible to it until a disconnect "
              "replaces its books)")
    return 0

