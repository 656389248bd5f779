"""``alphapulse portfolio --config FILE [--db FILE]`` and ``alphapulse portfolio reconcile ...``.

The process consumes the three relays and applies each read batch to the books in one SQLite
transaction together with that relay's cursor (see ``portfolio.books``). On start it resumes
each relay from ``cursor + 1``; a fresh database starts where ``[start]`` says (a start from now
is recorded as the cursor at once, so a restart resumes there). ``kill -9``
at any moment loses nothing and applies nothing twice.

``reconcile`` compares the books with the chain (see ``portfolio.reconcile``).

SIGHUP re-reads the configuration, but nothing in it can change while the books are open (the
valuation tokens price every row already booked, the cursors belong to the relays named): any
change is refused with that reason logged and the running configuration kept (``RELOADABLE``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import trio

from protocol.header import Domain
from relays.client import RelayConsumer
from runtime.metrics import ProcessMetrics
from runtime.paths import socket_path
from runtime.process import ProcessMain, Work, add_process_arguments
from runtime.reload import ConfigReload

from .books import Books, default_db_path, open_db
from .config import ConfigError, PortfolioConfig, load_config

log = logging.getLogger("portfolio")

DOMAINS = (Domain.EXECUTION, Domain.SIGNAL, Domain.MARKET_DATA)
#: keys a SIGHUP may change (``runtime.reload``): none, see the module docstring
RELOADABLE: tuple[str, ...] = ()


def relay_socket(config: PortfolioConfig, domain: Domain) -> str:
    return getattr(config.relays, domain.name.lower()) or str(socket_path(domain))


async def consume(config: PortfolioConfig, books: Books, domain: Domain, pm: ProcessMetrics,
                  *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    last = books.position(domain)
    if last is not None:
        from_seq: int | None = last + 1
    else:
        from_seq = 0 if getattr(config.start, domain.name.lower()) == "oldest" else None
    log.info("%s: resuming from %s", domain.name.lower(), from_seq if from_seq is not None else "now")
    name = f"{config.portfolio.name}-{domain.name.lower()}"
    apply_seconds = pm.histogram(
        "alphapulse_portfolio_apply_seconds", "One relay batch applied to the books (one SQLite transaction).",
        ["domain"]).labels(domain=domain.name.lower())
    # background: the books are bookkeeping (one SQLite transaction per batch), never on the trading path
    async with RelayConsumer.connect(domain, relay_socket(config, domain), from_seq=from_seq, name=name,
                                     latency="background", metrics=pm) as c:
        if from_seq is None:
            # a fresh start from now: that position is durable at once, so a restart before the first
            # message resumes here, not from a later 'now' (what came in between would never be booked)
            await c.subscribed()
            books.start_at(domain, c.core.relay_head)
        task_status.started()
        async for batch in c.batches():
            t0 = time.perf_counter()
            books.apply(domain, batch, time.time_ns())
            apply_seconds.observe(time.perf_counter() - t0)


async def run(config: PortfolioConfig, db_path: str | os.PathLike[str], metrics: ProcessMetrics | None = None,
              *, task_status: trio.TaskStatus[Books] = trio.TASK_STATUS_IGNORED) -> None:
    db = open_db(db_path)
    try:
        books = Books(db, config.valuation())
        pm = metrics or ProcessMetrics("portfolio")
        async with trio.open_nursery() as nursery:
            for domain in DOMAINS:
                await nursery.start(consume, config, books, domain, pm)
            log.info("portfolio: consuming %s into %s", ", ".join(d.name.lower() for d in DOMAINS), db_path)
            task_status.started(books)
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "reconcile":
        from .reconcile import main as reconcile_main

        return reconcile_main(argv[1:])
    p = argparse.ArgumentParser(prog="alphapulse portfolio",
                                description="Keep the books (also: alphapulse portfolio reconcile --help).")
    p.add_argument("--config", required=True, help="TOML file (see portfolio/config.py)")
    p.add_argument("--db", help=f"SQLite file (default: portfolio.db in the config, else {default_db_path()})")
    add_process_arguments(p)
    args = p.parse_args(argv)

    reload = ConfigReload("portfolio", args.config, load_config, RELOADABLE)

    def prepare() -> Work:
        config = reload.load_initial()
        db_path = Path(args.db or config.portfolio.db or default_db_path())
        reload.attach(lambda new: None)  # nothing is reloadable: every change is refused before this
        return lambda pm: run(config, db_path, pm)

    return ProcessMain("alphapulse portfolio", "portfolio", errors={ConfigError: 2}).run(args, prepare, reload=reload)


if __name__ == "__main__":
    sys.exit(main())
