"""The collectors' trio shells against the stand-ins over a real WebSocket and REST on loopback.

Each test runs a stand-in replaying a real capture with a fault switched on and the collector pointed at
it by URL only, and checks the published books against the venue's own (the stand-in's replay model).
"""

from __future__ import annotations

from pathlib import Path

import trio
from cex_testkit import Replica, venue_book

from collectors.cex.binance.process import run as run_binance
from collectors.cex.book import Publish
from collectors.cex.coinbase.process import run as run_coinbase
from collectors.cex.config import BinanceConfig, CoinbaseConfig
from protocol.market import InvalidationReason
from tools.cex_standin.replay import Faults
from tools.cex_standin.server import AdvancedStandin, BinanceStandin, CoinbaseStandin

DEADLINE = 60
REPO = str(Path(__file__).resolve().parents[2])


class Sink:
    """Stands in for RelayProducer.publish."""

    def __init__(self) -> None:
        self.replica = Replica()
        self.count = 0

    async def publish(self, tlvs, *, event_time_ns: int, receive_time_ns: int) -> int:
        self.replica.apply(Publish(tuple(tlvs), event_time_ns, receive_time_ns))
        self.count += 1
        return self.count


def _book(b):
    return venue_book(([str(p), q] for p, q in b["bids"].items()), ([str(p), q] for p, q in b["asks"].items()))


async def _settle(standin, runner) -> None:
    await standin.finished.wait()
    last = -1
    while last != runner.core.counters.frames:  # the collector has read everything that was sent
        last = runner.core.counters.frames
        await trio.sleep(0.2)


async def test_binance_collector_drops_a_diff_resyncs_over_rest_and_ends_equal_to_the_venue() -> None:
    standin = BinanceStandin()
    lost = next(i for i, (_, t) in enumerate(standin.frames) if i > 1500 and '"depthUpdate"' in t and "ETHUSDT" in t)
    standin.faults = Faults(drop={lost}, snapshot_delay_frames=10)
    sink = Sink()
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            ws_port, rest_port = await nursery.start(standin.serve)
            cfg = BinanceConfig(symbols=("ETHUSDT", "BTCUSDT", "DOTUSDT"), ws_url=f"ws://127.0.0.1:{ws_port}",
                                rest_url=f"http://127.0.0.1:{rest_port}", snapshot_limit=5000)
            runner = await nursery.start(lambda task_status: run_binance(cfg, publish=sink.publish,
                                                                          task_status=task_status))
            await _settle(standin, runner)
            nursery.cancel_scope.cancel()
    c = runner.core.counters
    assert c.resyncs_forced == 1 and c.resyncs_recovered == 1 and standin.snapshot_requests == 4
    for sym, book in standin.replay.books.items():
        assert sink.replica.trusted[sym] and sink.replica.books[sym] == _book(book), sym


async def test_coinbase_exchange_collector_rebuilds_every_book_after_a_disconnect() -> None:
    standin = CoinbaseStandin(faults=Faults(disconnect_after={5000}))
    sink = Sink()
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            ws_port, rest_port = await nursery.start(standin.serve)
            products = ("SKL-USD", "DASH-BTC", "SKL-BTC", "BAND-BTC", "CRV-EUR", "NMR-EUR", "YFI-BTC", "BAND-GBP",
                        "SKL-GBP", "NU-GBP")
            cfg = CoinbaseConfig(symbols=products, ws_url=f"ws://127.0.0.1:{ws_port}",
                                 rest_url=f"http://127.0.0.1:{rest_port}", channels=("level2", "matches", "ticker"))
            runner = await nursery.start(lambda task_status: run_coinbase(cfg, publish=sink.publish,
                                                                           task_status=task_status))
            await _settle(standin, runner)
            nursery.cancel_scope.cancel()
    c = runner.core.counters
    assert runner.sessions == 2 and (c.resyncs_forced, c.resyncs_recovered) == (10, 10)
    assert sum(i.reason == InvalidationReason.DISCONNECT for i in sink.replica.invalidations) == 10
    scales = {i.symbol: (i.price_scale, i.size_scale) for i in (p.inst for p in runner.core.products.values())}
    assert scales["SKL-USD"] == (4, 1) and scales["YFI-BTC"] == (5, 6)  # from REST /products increments
    for product, book in standin.replay.books.items():
        assert sink.replica.trusted[product] and sink.replica.books[product] == _book(book), product


async def test_advanced_trade_collector_resubscribes_after_a_sequence_gap() -> None:
    standin = AdvancedStandin(faults=Faults(drop={3000}))
    sink = Sink()
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            ws_port, _ = await nursery.start(standin.serve)
            products = ("SKL-USD", "DASH-BTC", "SKL-BTC", "BAND-BTC", "CRV-EUR", "NMR-EUR", "YFI-BTC", "BAND-GBP",
                        "SKL-GBP", "NU-GBP")
            cfg = CoinbaseConfig(symbols=products, feed="advanced", ws_url=f"ws://127.0.0.1:{ws_port}")
            runner = await nursery.start(lambda task_status: run_coinbase(cfg, publish=sink.publish,
                                                                           task_status=task_status))
            await _settle(standin, runner)
            nursery.cancel_scope.cancel()
    core = runner.core
    assert core.sequence_gaps == 1 and runner.sessions == 1
    assert (core.counters.resyncs_forced, core.counters.resyncs_recovered) == (10, 10)
    for product, book in standin.replay.books.items():
        assert sink.replica.trusted[product] and sink.replica.books[product] == _book(book), product


async def test_cli_process_publishes_the_books_through_the_relay_and_stops_on_sigterm() -> None:
    """``python -m tools.cli collector binance --config FILE`` as a real process against the stand-in, read back
    from a real market-data relay: invalidation first, then whole books, then diffs; exit 0 on SIGTERM."""
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile

    from protocol.header import Domain
    from protocol.ids import cex_symbol
    from protocol.market import BookLevel, Quote, StateInvalidation
    from relays import server
    from relays.client import RelayConsumer

    tmp = Path(tempfile.mkdtemp(prefix="cex", dir="/tmp"))
    sock = str(tmp / "md.sock")
    messages: list = []
    enough = trio.Event()
    standin = BinanceStandin(pace=0.002)
    try:
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                await nursery.start(server.serve, server.RelayConfig(
                    domain=Domain.MARKET_DATA, socket_path=sock, data_dir=str(tmp / "journal"), fsync="off"))
                ws_port, rest_port = await nursery.start(standin.serve)

                async def consume(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                    async with RelayConsumer.connect("market_data", sock, from_seq=0, name="test") as consumer:
                        task_status.started()
                        async for msg in consumer:
                            messages.append(msg)
                            if sum(isinstance(m.tlvs[-1], Quote) for m in messages) >= 50:
                                enough.set()

                await nursery.start(consume)
                cfg = tmp / "binance.toml"
                cfg.write_text(f'symbols = ["ETHUSDT"]\nws_url = "ws://127.0.0.1:{ws_port}"\n'
                               f'rest_url = "http://127.0.0.1:{rest_port}"\nsource_id = 4243\n')
                proc = await trio.lowlevel.open_process(
                    [sys.executable, "-m", "tools.cli", "collector", "binance", "--config", str(cfg), "--socket", sock,
                     "--log-level", "WARNING"], cwd=REPO, stdout=subprocess.DEVNULL)
                try:
                    await enough.wait()
                finally:
                    proc.send_signal(signal.SIGTERM)  # our child, by its PID
                    with trio.move_on_after(10):
                        await proc.wait()
                    if proc.returncode is None:
                        proc.kill()
                        await proc.wait()
                nursery.cancel_scope.cancel()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert proc.returncode == 0
    assert {m.source_id for m in messages} == {4243}
    first = messages[0].tlvs[0]
    assert isinstance(first, StateInvalidation) and cex_symbol(first.pool) == "ETHUSDT"
    snapshot = next(m for m in messages if isinstance(m.tlvs[-1], Quote))
    assert sum(isinstance(t, BookLevel) for t in snapshot.tlvs) == 2000  # the REST snapshot (limit 1000), whole
    assert all(m.event_time_ns and m.receive_time_ns for m in messages)
