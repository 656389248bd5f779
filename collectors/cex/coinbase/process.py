"""``alphapulse collector coinbase --config FILE``: Coinbase books and trades into the market-data relay.

``feed = "exchange"`` (default): the Exchange feed (``exchange.ExchangeCore``); the products' price and size
scales are read first from REST ``/products`` (httpx) unless the configuration sets them.
``feed = "advanced"``: the Advanced Trade feed (``advanced.AdvancedCore``). Both run under
``collectors.cex.shell.FeedRunner``. Exit status: 0 on SIGINT/SIGTERM, 1 when no relay answers, 2 for a
configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial

import httpx
import trio

from collectors.process import collector_main, collector_parser
from runtime.metrics import ProcessMetrics

from ..book import decimals_of
from ..config import CoinbaseConfig, load_coinbase
from ..shell import FeedRunner, Publisher, run_feed
from .advanced import AdvancedCore
from .exchange import DEFAULT_CHANNELS, ExchangeCore

NAME = "collector-coinbase"


async def read_increments(config: CoinbaseConfig) -> dict[str, tuple[int, int]]:
    """REST ``/products``: product -> (decimals of quote_increment, decimals of base_increment)."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        resp = await http.get(f"{config.rest}/products")
        resp.raise_for_status()
        products = json.loads(resp.text)
    return {p["id"]: (decimals_of(p["quote_increment"]), decimals_of(p["base_increment"]))
            for p in products if p.get("id") in config.symbols}


async def build_runner(config: CoinbaseConfig, publish: Publisher) -> FeedRunner:
    core: ExchangeCore | AdvancedCore
    if config.feed == "advanced":
        core = AdvancedCore(config.instruments())
    else:
        increments = await read_increments(config) if config.scales_from_rest else None
        core = ExchangeCore(config.instruments(increments), channels=config.channels or DEFAULT_CHANNELS)
    return FeedRunner(core, config.ws, publish, name=NAME, max_message_bytes=config.max_message_bytes,
                      max_backoff=config.max_backoff)


async def run(config: CoinbaseConfig, *, socket_path: str | None = None, metrics: ProcessMetrics | None = None,
              publish: Publisher | None = None,
              task_status: trio.TaskStatus[FeedRunner] = trio.TASK_STATUS_IGNORED) -> None:
    """Run until cancelled; ``publish`` replaces the relay (tests)."""
    await run_feed(config, NAME, f"coinbase-{config.feed}", partial(build_runner, config), socket_path=socket_path,
                   metrics=metrics, publish=publish, task_status=task_status)


def build_parser() -> argparse.ArgumentParser:
    return collector_parser("alphapulse collector coinbase",
                            "Coinbase (Exchange or Advanced Trade feed) books and trades into the market-data relay.",
                            config_help="TOML configuration (collectors/cex/config.py)")


def main(argv: list[str] | None = None) -> int:
    return collector_main(build_parser(), argv, NAME, load_coinbase, run,
                          errors={httpx.HTTPError: (1, "REST /products failed: {}")})


if __name__ == "__main__":
    sys.exit(main())
