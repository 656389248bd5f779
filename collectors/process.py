"""What every collector process shares: its command line and its exit statuses.

``alphapulse collector evm|binance|coinbase --config FILE [--socket PATH]``: each reads its TOML
configuration and publishes into the market-data relay until SIGINT/SIGTERM (exit 0); no relay
answering exits 1, a configuration error 2 (a collector may name more errors, see ``errors``).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.config import ConfigError
from runtime.metrics import ProcessMetrics
from runtime.process import ErrorMap, ProcessMain, add_process_arguments


def collector_parser(prog: str, description: str, *, config_help: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--config", required=True, metavar="FILE", help=config_help)
    ap.add_argument("--socket", metavar="PATH", help="market-data relay socket (overrides relay_socket)")
    add_process_arguments(ap)
    return ap


def collector_main(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    name: str,
    load: Callable[[str], Any],
    run: Callable[..., Awaitable[None]],
    *,
    errors: ErrorMap | None = None,
) -> int:
    """Parse ``argv``, ``load(--config)`` and ``run(config, socket_path=--socket, metrics=...)`` under
    :class:`~runtime.process.ProcessMain` (``name`` is the process and relay-connection name)."""
    from relays.client import RelayUnavailable

    args = parser.parse_args(argv)
    proc = ProcessMain(parser.prog, name,
                       errors={RelayUnavailable: (1, "no market-data relay answering: {}"),
                               ConfigError: (2, "config error: {}"), **(errors or {})})

    def prepare() -> Callable[[ProcessMetrics], Awaitable[None]]:
        config = load(args.config)
        return lambda pm: run(config, socket_path=args.socket, metrics=pm)

    return proc.run(args, prepare)
