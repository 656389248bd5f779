"""``alphapulse collector binance --config FILE``: Binance spot books and trades into the market-data relay.

One combined-stream WebSocket (``/stream?streams=<sym>@depth@100ms/<sym>@aggTrade/...``) and REST depth
snapshots (``/api/v3/depth``), run by ``collectors.cex.shell.FeedRunner``; every decision is
``sync.BinanceCore``'s. Exit status: 0 on SIGINT/SIGTERM, 1 when no relay answers, 2 for a configuration
error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable

import trio

from runtime.config import ConfigError
from runtime.metrics import ProcessMetrics
from runtime.process import ProcessMain, add_process_arguments

from ..config import BinanceConfig, load_binance
from ..shell import FeedRunner, Publisher, export_counters, publish_to_relay
from .sync import BinanceCore

NAME = "collector-binance"


def build_runner(config: BinanceConfig, publish: Publisher) -> FeedRunner:
    core = BinanceCore(config.instruments())
    url = f"{config.ws}/stream?streams=" + "/".join(core.streams(config.depth_stream))

    def snapshot_url(symbol: str) -> str:
        return f"{config.rest}/api/v3/depth?symbol={symbol}&limit={config.snapshot_limit}"

    return FeedRunner(core, url, publish, name=NAME, max_message_bytes=config.max_message_bytes,
                      snapshot_url=snapshot_url, max_backoff=config.max_backoff)


async def run(config: BinanceConfig, *, socket_path: str | None = None, metrics: ProcessMetrics | None = None,
              publish: Publisher | None = None,
              task_status: trio.TaskStatus[FeedRunner] = trio.TASK_STATUS_IGNORED) -> None:
    """Run until cancelled; ``publish`` replaces the relay (tests)."""

    async def work(pub: Publisher) -> None:
        runner = build_runner(config, pub)
        export_counters(metrics, "binance", runner.core.counters)
        task_status.started(runner)
        await runner.run()

    if publish is not None:
        await work(publish)
    else:
        await publish_to_relay(config, NAME, work, socket_path=socket_path, metrics=metrics)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="alphapulse collector binance",
                                 description="Binance spot order books and trades into the market-data relay.")
    ap.add_argument("--config", required=True, metavar="FILE", help="TOML configuration (collectors/cex/config.py)")
    ap.add_argument("--socket", metavar="PATH", help="market-data relay socket (overrides relay_socket)")
    add_process_arguments(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    from relays.client import RelayUnavailable

    args = build_parser().parse_args(argv)
    proc = ProcessMain("alphapulse collector binance", NAME,
                       errors={RelayUnavailable: (1, "no market-data relay answering: {}"),
                               ConfigError: (2, "config error: {}")})

    def prepare() -> Callable[[ProcessMetrics], Awaitable[None]]:
        config = load_binance(args.config)
        return lambda pm: run(config, socket_path=args.socket, metrics=pm)

    return proc.run(args, prepare)


if __name__ == "__main__":
    sys.exit(main())
