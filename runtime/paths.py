"""Where relay sockets live by default -- the one place every process looks.

The runtime directory is ``$ALPHAPULSE_RUN_DIR`` when set, else
``/tmp/alphapulse-$UID``; each domain's relay listens on ``<dir>/<domain>.sock``
(``market_data.sock``, ``signal.sock``, ``execution.sock``). The relay daemon,
relay-cli, every client and every component's ``[relays]`` table
(:class:`runtime.config.RelaysConfig`) call :func:`socket_path` so they agree
without configuration. AF_UNIX paths are limited to 107 bytes on Linux; a longer path
is rejected with a clear message instead of an obscure ``OSError``.
"""

from __future__ import annotations

import os
from pathlib import Path

from protocol.header import DOMAIN_BY_NAME, Domain

ENV_RUN_DIR = "ALPHAPULSE_RUN_DIR"
MAX_UNIX_PATH = 107  # sizeof(sun_path) - 1 on Linux

DATA_DOMAINS = (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION)


def run_dir() -> Path:
    env = os.environ.get(ENV_RUN_DIR)
    if env:
        return Path(env)
    return Path(f"/tmp/alphapulse-{os.getuid()}")


def parse_domain(value: str | int | Domain) -> Domain:
    """``"market_data"`` / ``1`` / ``Domain.MARKET_DATA`` -> ``Domain``; only data domains."""
    if isinstance(value, str):
        key = value.strip().lower().replace("-", "_")
        if key.isdigit():
            value = int(key)
        elif key in DOMAIN_BY_NAME:
            value = DOMAIN_BY_NAME[key]
        else:
            raise ValueError(f"unknown domain {value!r} (expected one of market_data, signal, execution)")
    dom = Domain(int(value))
    if dom not in DATA_DOMAINS:
        raise ValueError(f"domain {dom.name.lower()} has no relay (expected market_data, signal, execution)")
    return dom


def socket_path(domain: str | int | Domain, directory: str | os.PathLike[str] | None = None) -> Path:
    """Default socket of ``domain``'s relay: ``<run dir>/<domain>.sock``."""
    dom = parse_domain(domain)
    path = Path(directory) if directory is not None else run_dir()
    return path / f"{dom.name.lower()}.sock"


def check_socket_path(path: str | os.PathLike[str]) -> str:
    s = os.fspath(path)
    if len(s.encode()) > MAX_UNIX_PATH:
        raise ValueError(f"socket path is {len(s.encode())} bytes, AF_UNIX allows {MAX_UNIX_PATH}: {s}")
    return s
