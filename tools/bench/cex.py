"""CEX collector benchmark: venue frames -> protocol wire bytes per second, vs a plain ``json.loads``.

Inputs: the real captures in ``tests/data/cex-ws-samples`` (Binance spot: 4,716 frames + 3 REST snapshots;
Coinbase Exchange: 9,946 frames) and the Advanced Trade frames the stand-in builds from the Coinbase capture.
For each collector, in one process, best of ``--repeat``:

* **collector**: the sans-IO core (``BinanceCore`` / ``ExchangeCore`` / ``AdvancedCore``) on every frame in
  capture order -- JSON parsing, exact decimal parsing, book sync and top of book -- plus ``protocol.encode``
  of every message it publishes: all a collector does between the socket and the relay;
* **json.loads (baseline)**: ``json.loads`` of the same frames, nothing else.

It also reports, per collector, the resyncs forced and recovered: none in the clean capture; with
``--drop-every N`` every N-th book frame is lost on the way (what the stand-in's drop switch does), so the
counts show each gap detected and each book rebuilt (Binance from the REST answer the replay model gives;
Advanced Trade from the fresh snapshots a resubscription gets; the Exchange feed has no sequence, so a lost
frame there is invisible by design and only a disconnect forces a resync).

The machine is shared and noisy: compare the ratio, not the absolute rates. ``--limit`` cuts each capture for
a smoke run.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from collectors.cex.binance.sync import BinanceCore
from collectors.cex.book import Action, Counters, FetchSnapshot, Instrument, Publish, Send
from collectors.cex.coinbase.advanced import AdvancedCore
from collectors.cex.coinbase.exchange import ExchangeCore
from protocol.header import Domain
from protocol.ids import Venue
from protocol.message import Message, encode
from tools.cex_standin import advanced, captures
from tools.cex_standin.replay import BinanceReplay, CoinbaseReplay


def _encode_all(actions: list[Action], seq: list[int]) -> None:
    for a in actions:
        if isinstance(a, Publish):
            seq[0] += 1
            encode(Message(domain=Domain.MARKET_DATA, tlvs=a.tlvs, source_id=1, source_seq=seq[0],
                           event_time_ns=a.event_time_ns, receive_time_ns=a.receive_time_ns))


def binance_run(frames: list[tuple[int, str]], snaps: dict[int, list[tuple[str, str]]], drop_every: int,
                replay: BinanceReplay | None) -> tuple[int, Counters]:
    core = BinanceCore([Instrument(venue=Venue.BINANCE, symbol=s, base=s[:-4], quote="USDT")
                        for s in ("ETHUSDT", "BTCUSDT", "DOTUSDT")])
    seq = [0]
    acts = core.on_connect(0)
    pending: list[str] = []
    books = 0
    for i, (ts, text) in enumerate(frames):
        if replay is not None:
            replay.advance(i)
        for sym, body in snaps.get(i, ()):
            acts += core.on_snapshot(sym, body, ts)
        if drop_every and '"depthUpdate"' in text:
            books += 1
            if books % drop_every == 0:
                continue
        acts += core.on_message(text, ts)
        pending += [a.symbol for a in acts if isinstance(a, FetchSnapshot)]
        if replay is not None and pending and core.symbols[pending[0]].buffer:
            for sym in pending:  # answered once the stream has moved on (as a real REST call would be)
                acts += core.on_snapshot(sym, replay.depth(sym, 5000), ts)
            pending = []
        _encode_all(acts, seq)
        acts = []
    return seq[0], core.counters


def coinbase_run(frames: list[tuple[int, str]], products: list[str]) -> tuple[int, Counters]:
    core = ExchangeCore([Instrument(venue=Venue.COINBASE, symbol=p, base=p.split("-")[0], quote=p.split("-")[1])
                         for p in products])
    seq = [0]
    core.on_connect(0)
    for ts, text in frames:
        _encode_all(core.on_message(text, ts), seq)
    return seq[0], core.counters


def advanced_run(frames: list[tuple[int, str]], products: list[str], drop_every: int,
                 replay: CoinbaseReplay | None) -> tuple[int, Counters]:
    core = AdvancedCore([Instrument(venue=Venue.COINBASE, symbol=p, base=p.split("-")[0], quote=p.split("-")[1])
                         for p in products])
    seq = [0]
    core.on_connect(0)
    server_seq = len(frames)
    for i, (ts, text) in enumerate(frames):
        if replay is not None:
            replay.advance(i)
        if drop_every and i and i % drop_every == 0:
            continue
        acts = core.on_message(text, ts)
        if replay is not None and any(isinstance(a, Send) and a.payload["type"] == "subscribe" for a in acts):
            for product in replay.books:  # the resubscription's fresh snapshots
                out = advanced.translate(replay.snapshot(product), ts)
                assert out is not None
                acts += core.on_message(advanced.frame(out[0], out[1], ts, server_seq), ts)
                server_seq += 1
        _encode_all(acts, seq)
    return seq[0], core.counters


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
    args = ap.parse_args(argv)
    cut = (lambda xs: xs[: args.limit]) if args.limit else (lambda xs: xs)

    bin_replay = BinanceReplay()
    bin_frames = cut(bin_replay.frames)
    snaps: dict[int, list[tuple[str, str]]] = {}
    for sym, (idx, body) in bin_replay.capture_snapshots.items():
        snaps.setdefault(idx, []).append((sym, json.dumps(body)))
    cb_replay = CoinbaseReplay()
    cb_frames = cut(cb_replay.frames)
    products = json.loads(next(r.text for r in captures.read(captures.COINBASE) if r.kind == "sent"))["product_ids"]
    adv_frames: list[tuple[int, str]] = []
    for ts, text in cb_frames:
        out = advanced.translate(json.loads(text), ts)
        if out is not None:
            adv_frames.append((ts, advanced.frame(out[0], out[1], ts, len(adv_frames))))

    rows: list[tuple[str, list[tuple[int, str]], Callable[[], tuple[int, Counters]]]] = [
        ("binance", bin_frames, lambda: binance_run(bin_frames, snaps, 0, None)),
        ("coinbase-exchange", cb_frames, lambda: coinbase_run(cb_frames, products)),
        ("coinbase-advanced", adv_frames, lambda: advanced_run(adv_frames, products, 0, None)),
    ]
    print(f"{'collector':18s} {'frames':>7s} {'msgs out':>8s} {'frames/s':>10s} {'json.loads/s':>12s} {'ratio':>6s}")
    for name, frames, fn in rows:
        texts = [t for _, t in frames]
        base, _ = _best(partial(_loads_all, texts), args.repeat)
        took, (published, _counters) = _best(fn, args.repeat)
        n = len(frames)
        print(f"{name:18s} {n:7d} {published:8d} {n / took:10.0f} {n / base:12.0f} {base / took:6.2f}")
    if args.drop_every:
        _, c_bin = binance_run(bin_frames, snaps, args.drop_every, BinanceReplay())
        _, c_adv = advanced_run(adv_frames, products, args.drop_every, CoinbaseReplay())
        for name, c in (("binance", c_bin), ("coinbase-advanced", c_adv)):
            print(f"{name}: losing every {args.drop_every}th book frame: resyncs forced {c.resyncs_forced}, "
                  f"recovered {c.resyncs_recovered}")
    return 0
