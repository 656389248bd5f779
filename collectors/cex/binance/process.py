"""``alphapulse collector binance --config FILE``: Binance spot books and trades into the market-data relay.

One combined-stream WebSocket (``/stream?streams=<sym>@depth@100ms/<sym>@aggTrade/...``) and REST depth
snapshots (``/api/v3/depth``), run by ``collectors.cex.shell.FeedRunner``; every decision is
``sync.BinanceCore``'s. Exit status: 0 on SIGINT/SIGTERM, 1 when no relay answers, 2 for a configuration
error.
"""

from __future__ import annotations

import argparse
import sys

import trio

from collectors.process import collector_main, collector_parser
from runtime.metrics import ProcessMetrics

from ..config import BinanceConfig, load_binance
from ..shell import FeedRunner, Publisher, run_feed
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

    async def build(pub: Publisher) -> FeedRunner:
        return build_runner(config, pub)

    await run_feed(config, NAME, "binance", build, socket_path=socket_path, metrics=metrics, publish=publish,
                   task_status=task_status)


def build_parser() -> argparse.ArgumentParser:
    return collector_parser("alphapulse collector binance",
                            "Binance spot order books and trades into the market-data relay.",
                            config_help="TOML configuration (collectors/cex/config.py)")


def main(argv: list[str] | None = None) -> int:
    return collector_main(build_parser(), argv, NAME, load_binance, run)


if __name__ == "__main__":
    sys.exit(main())
