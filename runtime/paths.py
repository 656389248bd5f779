"""Where relay sockets live by default -- the one place every process looks.

The runtime directory is ``$ALPHAPULSE_RUN_DIR`` when set, else
``/tmp/alphapulse-$UID``; each domain's relay listens on ``<dir>/<domain>.sock``
(``market_data.sock``, ``signal.sock``, ``execution.sock``). The relay daemon,
relay-cli, every client and every component's ``[relays]`` table
(:class:`runtime.config.RelaysConfig`) call :func:`socket_path` so they agree
without configuration. AF_UNIX paths are limited to 107 bytes on Linux; a longer path
is rejected with a clear message instead of an obscure ``OSError``.

The runtime directory decides who may talk to the relays, so it must be ours: the relay creates it
with mode 0700 (:func:`ensure_run_dir`) and refuses to start if it is a symlink, owned by someone
else, or (the default ``/tmp/alphapulse-$UID``) has any group/other permission -- another user can
pre-create that name in ``/tmp``. A directory named by ``$ALPHAPULSE_RUN_DIR`` (``$XDG_RUNTIME_DIR/
alphapulse`` is a good choice) must be ours and writable by nobody else. Clients make the same
check (:func:`check_socket_dir`) before every connect, so a planted socket never receives a Hello.

A socket named explicitly inside a shared sticky directory owned by root (``--socket /tmp/x.sock``)
is the one exception to "the directory must be ours": nobody else can remove or replace a file we
own there, so there the *socket itself* must be ours (not a symlink, owned by us or root) -- the
relay refuses to take over a name someone else holds, and a client never says Hello to it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from protocol.header import DOMAIN_BY_NAME, Domain

from .files import check_owned, check_private_dir, ensure_private_dir

ENV_RUN_DIR = "ALPHAPULSE_RUN_DIR"
MAX_UNIX_PATH = 107  # sizeof(sun_path) - 1 on Linux

DATA_DOMAINS = (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION)


def run_dir() -> Path:
    env = os.environ.get(ENV_RUN_DIR)
    if env:
        return Path(env)
    return default_run_dir()


def default_run_dir() -> Path:
    return Path(f"/tmp/alphapulse-{os.getuid()}")


def _exact(directory: Path) -> bool:
    # the shared-/tmp default must be exactly 0700; a directory the user chose need only be private
    return directory == default_run_dir()


def ensure_run_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """Create the runtime directory (mode 0700) if missing and check it is ours; return it.

    Raises :class:`~runtime.files.UnsafePathError` naming the directory and what is wrong."""
    d = Path(directory) if directory is not None else run_dir()
    return ensure_private_dir(d, exact_mode=_exact(d))


def shared_sticky_dir(directory: str | os.PathLike[str]) -> bool:
    """True for a real directory owned by root with the sticky bit (``/tmp``): others may create
    names there but cannot remove or replace ours."""
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode) and bool(st.st_mode & stat.S_ISVTX) and st.st_uid == 0


def check_socket_owner(path: str | os.PathLike[str]) -> None:
    """Refuse ``path`` if it exists and is a symlink, not a socket, or owned by someone else."""
    try:
        check_owned(path, stat.S_ISSOCK, "a socket")
    except FileNotFoundError:
        return


def check_socket_dir(path: str | os.PathLike[str]) -> None:
    """Before connecting to ``path``: refuse if its directory exists and is not safely ours (in a
    shared sticky directory such as ``/tmp``: refuse unless the socket itself is ours)."""
    d = Path(path).parent
    if not os.path.lexists(d):
        return  # nothing to connect to yet; the connect itself fails with FileNotFoundError
    if shared_sticky_dir(d):
        check_socket_owner(path)
        return
    check_private_dir(d, exact_mode=_exact(d))


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
