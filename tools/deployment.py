"""Deployment files: which processes make up a running AlphaPulse, and how they depend on each other.

A deployment is one TOML file::

    [deployment]
    name = "demo"
    run_dir = "var/run"        # relay sockets and the supervisor's pid file
    data_dir = "var/data"      # journals, SQLite, archives
    log_dir = "var/log"        # one log file per process (optional)
    user = "alphapulse"        # the dedicated user systemd units run as

    [relays]                   # one relay daemon per domain, started first
    domains = ["market_data", "signal", "execution"]
    fsync = "batch"            # batch | interval | off
    nice = 0                   # optional: the relay daemons' niceness (default 0)

    [[process]]
    name = "strategy"
    args = ["strategy", "--config", "configs/strategy.toml"]   # an alphapulse subcommand
    after = ["relay-market_data", "relay-signal"]              # started once these are ready
    ready_file = ""            # optional: ready once this file exists
    ready_log = ""             # optional: ready once its log shows this text (needs log_dir)
    oneshot = false            # true: runs to completion, not restarted on exit 0
    env = { }                  # extra environment (never secrets: use files the process reads)
    nice = 0                   # optional: its scheduling niceness, 0..19 (default: by kind, below)

``nice`` is the process's CPU scheduling niceness (``nice(1)``, 0 the OS default, 19 the lowest
priority): the supervisor starts the child at it (every thread the child starts inherits it), a
systemd unit carries it as ``Nice=`` (and the matching ``CPUWeight=``, see ``tools/systemd.py``).
Without it a process gets its kind's default (:data:`NICE_BY_KIND`, by its subcommand): 0 for the
trading path -- relays, collectors, strategy, executor, risk, bridges, replay sources, load
generators, exchange stand-ins, and anything this table does not name -- and 10 for the
background work: the archiver, portfolio, the dashboard and the rebalancer. Every market-data
message wakes each consumer at once; on a small machine the background ones then compete with
the strategy for the cores (README, "Scheduling priority"). ``[relays] nice`` sets the relay
daemons'. A negative value (a priority above the OS default) needs CAP_SYS_NICE, which the
supervisor (an ordinary user's command) does not have, and is refused for both ways of running a
deployment file: what the measurement asks for is an order among our own processes, and raising
the background ones' niceness gives that order without privilege. Values above 19 are refused too.

The tables are ``runtime.config`` structs: unknown keys, wrong types, unknown
dependencies and dependency cycles are a ``ConfigError`` with the offending key
path, and a value that looks like a plaintext private key (64 hex digits)
anywhere in the file is refused (``runtime.secrets``) without being echoed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from runtime.config import Config, ConfigError, Meta, decode, load_toml
from runtime.paths import DATA_DOMAINS, socket_path

DOMAINS = tuple(d.name.lower() for d in DATA_DOMAINS)


#: the niceness a process gets without ``nice``, by its subcommand (``args[0]``); any other: 0.
#: 0: on the path from a log to a transaction (a bridge carries a domain between hosts, ``replay`` and
#: ``loadgen`` feed a relay, an exchange stand-in plays the venue, risk's stop gates the executor);
#: 10: work that may lag by milliseconds without costing a trade (the archive, the books, the screen,
#: inventory moves between chains that take seconds to minutes anyway).
NICE_BY_KIND: dict[str, int] = {
    "relay": 0, "collector": 0, "strategy": 0, "executor": 0, "risk": 0, "bridge": 0, "replay": 0, "loadgen": 0,
    "standin": 0,
    "archive": 10, "portfolio": 10, "dashboard": 10, "rebalancer": 10,
}
#: the highest niceness (the lowest priority); a deployment may ask for 0..NICE_MAX
NICE_MAX = 19


def default_nice(args: tuple[str, ...]) -> int:
    """The niceness of a process running the ``alphapulse`` subcommand ``args`` when it names none."""
    return NICE_BY_KIND.get(args[0], 0) if args else 0


class ProcessEntry(Config):
    """One ``[[process]]`` table as written."""

    name: str
    args: Annotated[tuple[str, ...], Meta(min_length=1)]  # an alphapulse subcommand and its arguments
    after: tuple[str, ...] = ()
    ready_socket: str = ""
    ready_file: str = ""
    ready_log: str = ""  # ready once this text is in its log, written since this run of it started
    oneshot: bool = False
    env: dict[str, str] = {}
    nice: int | None = None  # 0..NICE_MAX (checked by parse_deployment); None: ``default_nice(args)``


class ProcessSpec(ProcessEntry):
    """A process to run: an entry with its paths resolved, or a relay the deployment implies."""

    log_file: str = ""

    @property
    def niceness(self) -> int:
        """The niceness to run it at: its ``nice``, else its kind's default."""
        return default_nice(self.args) if self.nice is None else self.nice


class Deployment(Config):
    name: str
    run_dir: str
    data_dir: str
    log_dir: str
    user: str
    fsync: str
    processes: list[ProcessSpec]
    path: str = ""

    def socket(self, domain: str) -> str:
        return str(socket_path(domain, self.run_dir))


class _DeploymentTable(Config):
    name: str = "alphapulse"
    run_dir: str = "var/run"
    data_dir: str = "var/data"
    log_dir: str = ""
    user: str = "alphapulse"


class _RelaysTable(Config):
    domains: tuple[str, ...] = DOMAINS
    fsync: Literal["batch", "interval", "off"] = "batch"
    nice: int | None = None

    def __post_init__(self) -> None:
        for i, domain in enumerate(self.domains):
            if domain not in DOMAINS:
                raise ConfigError(f"unknown domain {domain!r} (known: {', '.join(DOMAINS)})", path=f"domains[{i}]")


class _DeploymentFile(Config):
    deployment: _DeploymentTable = msgspec.field(default_factory=_DeploymentTable)
    relays: _RelaysTable = msgspec.field(default_factory=_RelaysTable)
    process: tuple[ProcessEntry, ...] = ()


def parse_deployment(doc: dict[str, Any], *, base: Path = Path("."), origin: str = "") -> Deployment:
    f = decode(_DeploymentFile, doc, file=origin)
    d = f.deployment

    def path(p: str) -> str:
        return str(p if Path(p).is_absolute() else (base / p))

    run_dir, data_dir = path(d.run_dir), path(d.data_dir)
    log_dir = path(d.log_dir) if d.log_dir else ""

    def log_file(name: str) -> str:
        return str(Path(log_dir) / f"{name}.log") if log_dir else ""

    procs: list[ProcessSpec] = []
    for domain in f.relays.domains:
        sock = str(socket_path(domain, run_dir))
        procs.append(ProcessSpec(
            name=f"relay-{domain}",
            args=("relay", "--domain", domain, "--socket", sock, "--data-dir", str(Path(data_dir) / "relay" / domain),
                  "--fsync", f.relays.fsync),
            ready_socket=sock, log_file=log_file(f"relay-{domain}"), nice=f.relays.nice,
        ))
    for p in f.process:
        procs.append(ProcessSpec(
            name=p.name, args=p.args, after=p.after, oneshot=p.oneshot, env=p.env,
            ready_file=path(p.ready_file) if p.ready_file else "",
            ready_socket=path(p.ready_socket) if p.ready_socket else "", ready_log=p.ready_log,
            log_file=log_file(p.name), nice=p.nice,
        ))
    names = [p.name for p in procs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"process names must be unique: {', '.join(sorted(dupes))}", path="process", file=origin)
    for where, nice in (("relays.nice", f.relays.nice),
                        *((f"process[{i}].nice", p.nice) for i, p in enumerate(f.process))):
        if nice is not None and nice < 0:
            raise ConfigError(f"{nice} is below 0: a priority above the OS default needs CAP_SYS_NICE, which the "
                              f"supervisor does not have; raise the other processes' niceness instead (0..{NICE_MAX})",
                              path=where, file=origin)
        if nice is not None and nice > NICE_MAX:
            raise ConfigError(f"out of range [0, {NICE_MAX}], got {nice}", path=where, file=origin)
    for i, p in enumerate(f.process):
        if p.ready_log and not log_dir:
            raise ConfigError(f"process {p.name!r}: ready_log needs a log file ([deployment] log_dir)",
                              path=f"process[{i}].ready_log", file=origin)
        for dep in p.after:
            if dep not in names:
                raise ConfigError(f"process {p.name!r}: 'after' names unknown process {dep!r}",
                                  path=f"process[{i}].after", file=origin)
    _check_acyclic(procs, origin)
    return Deployment(name=d.name, run_dir=run_dir, data_dir=data_dir, log_dir=log_dir, user=d.user,
                      fsync=f.relays.fsync, processes=procs, path=origin and str(Path(origin).resolve()))


def _check_acyclic(procs: list[ProcessSpec], origin: str) -> None:
    by_name = {p.name: p for p in procs}
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ConfigError("dependency cycle: " + " -> ".join([*stack, name]), path="process", file=origin)
        state[name] = 1
        for dep in by_name[name].after:
            visit(dep, [*stack, name])
        state[name] = 2

    for p in procs:
        visit(p.name, [])


def load_deployment(path: str | Path) -> Deployment:
    p = Path(path)
    return parse_deployment(load_toml(p), base=p.resolve().parent, origin=str(p))


def load_from_args(prog: str, argv: list[str], *, description: str | None = None,
                   options: Callable[[argparse.ArgumentParser], object] | None = None,
                   ) -> tuple[argparse.Namespace, Deployment]:
    """A deployment command's arguments (``--config FILE`` plus what ``options`` adds) and that deployment.

    An invalid file ends the command like an invalid argument: its message on stderr, exit status 2.
    """
    ap = argparse.ArgumentParser(prog=prog, description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="deployment TOML file")
    if options is not None:
        options(ap)
    args = ap.parse_args(argv)
    try:
        return args, load_deployment(args.config)
    except ConfigError as exc:
        ap.exit(2, f"{prog}: {exc}\n")
