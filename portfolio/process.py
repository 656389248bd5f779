"""``alphapulse portfolio --config FILE [--db FILE]`` and ``alphapulse portfolio reconcile ...``.

The process consumes the three relays and applies each read batch to the books in one SQLite
transaction together with that relay's cursor (see ``portfolio.books``). On start it resumes
each relay from ``cursor + 1``; a fresh database starts where ``[start]`` says. ``kill -9``
at any moment loses nothing and applies nothing twice.

``reconcile`` compares the books with the chain (see ``portfolio.reconcile``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from functools import partial
from pathlib import Path

import trio

from protocol.header import Domain
from risk.relaying import open_consumer
from runtime.config import ConfigError
from runtime.metrics import add_metrics_argument, process_metrics, run_until_signalled
from runtime.paths import run_dir, socket_path

from .books import Books, open_db
from .config import PortfolioConfig, load_config

log = logging.getLogger("portfolio")

DOMAINS = (Domain.EXECUTION, Domain.SIGNAL, Domain.MARKET_DATA)


def default_db_path() -> Path:
    return run_dir() / "data" / "portfolio.sqlite"


def relay_socket(config: PortfolioConfig, domain: Domain) -> str:
    return getattr(config.relays, domain.name.lower()) or str(socket_path(domain))


async def consume(config: PortfolioConfig, books: Books, domain: Domain,
                  *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    last = books.last_seq(domain)
    if last:
        from_seq: int | None = last + 1
    else:
        from_seq = 0 if getattr(config.start, domain.name.lower()) == "oldest" else None
    log.info("%s: resuming from %s", domain.name.lower(), from_seq if from_seq is not None else "now")
    name = f"{config.portfolio.name}-{domain.name.lower()}"
    apply_seconds = process_metrics("portfolio").histogram(
        "alphapulse_portfolio_apply_seconds", "One relay batch applied to the books (one SQLite transaction).",
        ["domain"]).labels(domain=domain.name.lower())
    async with open_consumer(domain, relay_socket(config, domain), from_seq=from_seq, name=name) as c:
        task_status.started()
        async for batch in c.batches():
            t0 = time.perf_counter()
            books.apply(domain, batch, time.time_ns())
            apply_seconds.observe(time.perf_counter() - t0)


async def run(config: PortfolioConfig, db_path: str | os.PathLike[str],
              *, task_status: trio.TaskStatus[Books] = trio.TASK_STATUS_IGNORED) -> None:
    db = open_db(db_path)
    try:
        books = Books(db, config.valuation())
        async with trio.open_nursery() as nursery:
            for domain in DOMAINS:
                await nursery.start(consume, config, books, domain)
            log.info("portfolio: consuming %s into %s", ", ".join(d.name.lower() for d in DOMAINS), db_path)
            task_status.started(books)
    finally:
        db.close()


async def _main(config: PortfolioConfig, db_path: Path, metrics_port: int | None = None,
                metrics_host: str = "127.0.0.1") -> None:
    await run_until_signalled("portfolio", partial(run, config, db_path), metrics_port=metrics_port,
                              metrics_host=metrics_host, log=log)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "reconcile":
        from .reconcile import main as reconcile_main

        return reconcile_main(argv[1:])
    p = argparse.ArgumentParser(prog="alphapulse portfolio",
                                description="Keep the books (also: alphapulse portfolio reconcile --help).")
    p.add_argument("--config", required=True, help="TOML file (see portfolio/config.py)")
    p.add_argument("--db", help=f"SQLite file (default: portfolio.db in the config, else {default_db_path()})")
    p.add_argument("--log-level", default=os.environ.get("ALPHAPULSE_LOG_LEVEL", "INFO"))
    add_metrics_argument(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"alphapulse portfolio: {exc}", file=sys.stderr)
        return 2
    trio.run(_main, config, Path(args.db or config.portfolio.db or default_db_path()), args.metrics_port,
             args.metrics_host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
