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
from collections.abc import Awaitable, Callable

import httpx
import trio

from runtime.config import ConfigError
from runtime.metrics import ProcessMetrics
from runtime.process import ProcessMain, add_process_arguments

from ..book import decimals_of
from ..config import CoinbaseConfig, load_coinbase
from ..shell import FeedRunner, Publisher, export_counters, publish_to_relay
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

    async def work(pub: Publisher) -> None:
        runner = await build_runner(config, pub)
        export_counters(metrics, f"coinbase-{config.feed}", runner.core.counters)
        task_status.started(runner)
        await runner.run()

    if publish is not None:
        await work(publish)
    else:
        await publish_to_relay(config, NAME, work, socket_path=socket_path, metrics=metrics)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="alphapulse collector coinbase",
                                 description="Coinbase (Exchange or Advanced Trade feed) books and trades into "
                                             "the market-data relay.")
    ap.add_argument("--config", required=True, metavar="FILE", help="TOML configuration (collectors/cex/config.py)")
    ap.add_argument("--socket", metavar="PATH", help="market-data relay socket (overrides relay_socket)")
    add_process_arguments(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    from relays.client import RelayUnavailable

    args = build_parser().parse_args(argv)
    proc = ProcessMain("alphapulse collector coinbase", NAME,
                       errors={RelayUnavailable: (1, "no market-data relay answering: {}"),
                               ConfigError: (2, "config error: {}"),
                               httpx.HTTPError: (1, "REST /products failed: {}")})

    def prepare() -> Callable[[ProcessMetrics], Awaitable[None]]:
        config = load_coinbase(args.config)
        return lambda pm: run(config, socket_path=args.socket, metrics=pm)

    return proc.run(args, prepare)


if __name__ == "__main__":
    sys.exit(main())
