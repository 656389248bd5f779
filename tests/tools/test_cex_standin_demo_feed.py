"""tools/cex_standin demo feeding: the Binance capture played onto another price level, amplified, with live
times and lap after lap -- and the collector still syncs it exactly by Binance's rules."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collectors"))
from cex_testkit import Replica, binance_instruments, venue_book  # noqa: E402

from collectors.cex.binance.process import run as run_binance  # noqa: E402
from collectors.cex.binance.sync import BinanceCore  # noqa: E402
from collectors.cex.book import FetchSnapshot, Publish  # noqa: E402
from collectors.cex.config import BinanceConfig  # noqa: E402
from protocol.market import InvalidationReason  # noqa: E402
from tools.cex_standin.replay import BinanceReplay, PriceMap  # noqa: E402
from tools.cex_standin.server import BinanceStandin  # noqa: E402

ETH = "ETHUSDT"
MAP = PriceMap(ETH, Decimal("2064.73"), Decimal("2004"), 20)
DEEP = PriceMap(ETH, Decimal("2064.73"), Decimal("2004"), 20, 20)


def test_price_map_is_affine_exact_and_keeps_the_venues_decimals() -> None:
    assert MAP("2064.73000000") == "2004.00000000"
    assert MAP("2064.74000000") == "2004.20000000"
    assert MAP("2063.00") == "1969.40"
    assert MAP("1964.00") is None  # 2004 - 20 * 100.73 < 0: no such level at this venue
    assert PriceMap.parse("ethusdt:2064.73=2004x20") == MAP and str(MAP) == "ETHUSDT:2064.73=2004x20"
    assert PriceMap.parse("ETHUSDT:1=2") == PriceMap(ETH, Decimal(1), Decimal(2), 1)
    deep = PriceMap.parse("ETHUSDT:2064.73=2004x20*20")
    assert deep.sizes == 20 and deep.size("0.04700000") == "0.94000000" and MAP.size("0.047") == "0.047"
    assert str(deep) == "ETHUSDT:2064.73=2004x20*20"
    for bad in ("ETHUSDT", "ETHUSDT:x=1", "ETHUSDT:1=2x0", "ETHUSDT:-1=2", "ETHUSDT:1=2x2*0"):
        with pytest.raises(ValueError):
            PriceMap.parse(bad)
    with pytest.raises(ValueError, match="does not have"):
        BinanceReplay(prices=[PriceMap("XRPUSDT", Decimal(1), Decimal(1))])


def test_plain_replay_sends_the_capture_byte_for_byte() -> None:
    venue = BinanceReplay()
    assert not venue.rewriting
    assert all(venue.text(i) == venue.frames[i][1] for i in range(0, len(venue.frames), 97))


def _run_laps(venue: BinanceReplay, laps: int) -> tuple[BinanceCore, Replica]:
    """The sans-IO collector over ``laps`` plays of the capture, disconnected between laps (as the looping
    server does), every REST snapshot answered from the venue's book once the stream has moved on."""
    core, replica = BinanceCore(binance_instruments()), Replica()
    pending: list[str] = []

    def handle(acts: list) -> None:
        pending.extend(a.symbol for a in acts if isinstance(a, FetchSnapshot))
        replica.apply_all(acts)

    for lap in range(laps):
        if lap:
            venue.restart()
        handle(core.on_connect(0))
        for i in range(len(venue.frames)):
            venue.advance(i)
            text = venue.text(i)
            if text is not None:
                handle(core.on_message(text, venue.frames[i][0]))
            if pending and all(core.symbols[s].buffer for s in pending):
                due, pending[:] = list(pending), []
                for sym in due:
                    handle(core.on_snapshot(sym, json.dumps(venue.depth(sym, 5000)), venue.frames[i][0]))
        handle(core.on_disconnect(venue.frames[-1][0]))
    return core, replica


def test_mapped_live_looping_feed_syncs_exactly_lap_after_lap() -> None:
    clock = iter(range(10**12, 10**13))
    venue = BinanceReplay(prices=[DEEP], live_times=True, clock_ms=lambda: next(clock))
    plain = BinanceReplay()
    for i in range(len(plain.frames)):
        plain.advance(i)
    core, replica = _run_laps(venue, 2)
    c = core.counters
    # each lap: one sync per symbol at connect, then nothing lost; the disconnect after a lap invalidates
    assert c.resyncs_forced == c.resyncs_recovered + 3 and c.resyncs_recovered >= 3
    assert sum(i.reason == InvalidationReason.RESYNC and "gap" in i.detail for i in replica.invalidations) == 0
    # lap 2's ids follow lap 1's: no trade is taken for a duplicate, none is a gap
    assert c.trades == 2 * sum('"aggTrade"' in t for _, t in plain.frames)
    # the venue's book at the end of lap 2 is the capture's, every ETHUSDT level mapped (others untouched)
    want = plain.books[ETH]
    got = venue.books[ETH]
    assert {(Decimal(DEEP(format(p, "f")) or 0), DEEP.size(q)) for p, q in want["asks"].items()} == set(
        got["asks"].items())
    assert venue.books["BTCUSDT"] == plain.books["BTCUSDT"]
    assert venue.last_u[ETH] > plain.last_u[ETH]
    # times are the stand-in's clock, not 2021's
    assert json.loads(venue.text(len(venue.frames) - 1) or "{}")["data"]["E"] >= 10**12


async def test_looping_standin_disconnects_between_laps_and_the_collector_recovers() -> None:
    """The real shell against a looping, mapped stand-in: a lap's end is a disconnect, the collector
    reconnects, resyncs from the REST snapshot and its book equals the venue's, at the mapped prices."""
    venue = BinanceReplay(prices=[MAP], live_times=True)
    standin = BinanceStandin(venue, loop=True)
    published: list[Publish] = []
    replica = Replica()

    async def publish(tlvs, *, event_time_ns: int, receive_time_ns: int) -> int:
        published.append(Publish(tuple(tlvs), event_time_ns, receive_time_ns))
        replica.apply(published[-1])
        return len(published)

    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            ws_port, rest_port = await nursery.start(standin.serve)
            cfg = BinanceConfig(symbols=(ETH,), ws_url=f"ws://127.0.0.1:{ws_port}",
                                rest_url=f"http://127.0.0.1:{rest_port}", max_backoff=0.2)
            runner = await nursery.start(lambda task_status: run_binance(cfg, publish=publish,
                                                                         task_status=task_status))
            while True:  # until well into lap 2
                if standin.laps >= 1 and venue.position >= len(venue.frames) // 2:
                    break
                await trio.sleep(0.05)
            standin.pace = 1000.0  # hold the venue still (after at most one more frame) while the collector catches up
            last = -1
            while last != runner.core.counters.frames:
                last = runner.core.counters.frames
                await trio.sleep(0.3)
            nursery.cancel_scope.cancel()
    c = runner.core.counters
    assert runner.sessions == 2
    assert c.resyncs_forced == c.resyncs_recovered == 1  # the first sync does not count; the lap end does
    assert [i.reason for i in replica.invalidations].count(InvalidationReason.DISCONNECT) == 1
    book = venue.books[ETH]
    assert replica.trusted[ETH]
    assert replica.books[ETH] == venue_book(([str(p), q] for p, q in book["bids"].items()),
                                            ([str(p), q] for p, q in book["asks"].items()))
    best_bid = max(replica.books[ETH]["bid"])
    assert Decimal(1500) < best_bid < Decimal(2500)  # the devnet's level, not 2021's ETHUSDT
