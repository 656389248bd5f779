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

    [[process]]
    name = "strategy"
    args = ["strategy", "--config", "configs/strategy.toml"]   # an alphapulse subcommand
    after = ["relay-market_data", "relay-signal"]              # started once these are ready
    ready_file = ""            # optional: ready once this file exists
    oneshot = false            # true: runs to completion, not restarted on exit 0
    env = { }                  # extra environment (never secrets: use files the process reads)

Unknown keys, wrong types, unknown dependencies and dependency cycles are
errors with the offending key path. A value that looks like a plaintext private
key (64 hex digits) anywhere in the file is refused.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOMAINS = ("market_data", "signal", "execution")
_KEY_LIKE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class DeploymentError(ValueError):
    """A deployment file is invalid; the message names the key path."""


@dataclass(frozen=True, kw_only=True)
class ProcessSpec:
    name: str
    args: tuple[str, ...]
    after: tuple[str, ...] = ()
    ready_socket: str = ""
    ready_file: str = ""
    oneshot: bool = False
    env: dict[str, str] = field(default_factory=dict)
    log_file: str = ""


@dataclass(frozen=True, kw_only=True)
class Deployment:
    name: str
    run_dir: str
    data_dir: str
    log_dir: str
    user: str
    fsync: str
    processes: list[ProcessSpec]
    path: str = ""

    def socket(self, domain: str) -> str:
        return str(Path(self.run_dir) / f"{domain}.sock")


def _expect(table: dict[str, Any], where: str, allowed: dict[str, type | tuple[type, ...]]) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise DeploymentError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
        if not isinstance(value, allowed[key]):
            want = allowed[key]
            names = " or ".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
            raise DeploymentError(f"{where}.{key}: expected {names}, got {type(value).__name__} {value!r}")


def _scan_for_keys(value: Any, where: str) -> None:
    if isinstance(value, str) and _KEY_LIKE.match(value.strip()):
        raise DeploymentError(
            f"{where}: looks like a plaintext private key; keys never go in configuration "
            "(use an encrypted keystore and a password file or environment variable)"
        )
    if isinstance(value, dict):
        for k, v in value.items():
            _scan_for_keys(v, f"{where}.{k}")
    if isinstance(value, list):
        for i, v in enumerate(value):
            _scan_for_keys(v, f"{where}[{i}]")


def parse_deployment(doc: dict[str, Any], *, base: Path = Path(".")) -> Deployment:
    _scan_for_keys(doc, "deployment file")
    _expect(doc, "(top)", {"deployment": dict, "relays": dict, "process": list})
    d = doc.get("deployment", {})
    _expect(d, "deployment", {"name": str, "run_dir": str, "data_dir": str, "log_dir": str, "user": str})
    r = doc.get("relays", {})
    _expect(r, "relays", {"domains": list, "fsync": str})

    def path(p: str) -> str:
        return str(p if Path(p).is_absolute() else (base / p))

    run_dir = path(d.get("run_dir", "var/run"))
    data_dir = path(d.get("data_dir", "var/data"))
    log_dir = path(d["log_dir"]) if d.get("log_dir") else ""
    fsync = r.get("fsync", "batch")
    if fsync not in ("batch", "interval", "off"):
        raise DeploymentError(f"relays.fsync: {fsync!r} is not one of batch, interval, off")
    procs: list[ProcessSpec] = []
    for domain in r.get("domains", list(DOMAINS)):
        if domain not in DOMAINS:
            raise DeploymentError(f"relays.domains: unknown domain {domain!r} (known: {', '.join(DOMAINS)})")
        sock = str(Path(run_dir) / f"{domain}.sock")
        procs.append(ProcessSpec(
            name=f"relay-{domain}",
            args=("relay", "--domain", domain, "--socket", sock, "--data-dir", str(Path(data_dir) / "relay" / domain),
                  "--fsync", fsync),
            ready_socket=sock,
            log_file=str(Path(log_dir) / f"relay-{domain}.log") if log_dir else "",
        ))
    allowed = {"name": str, "args": list, "after": list, "ready_file": str, "ready_socket": str,
               "oneshot": bool, "env": dict}
    for i, p in enumerate(doc.get("process", [])):
        where = f"process[{i}]"
        if not isinstance(p, dict):
            raise DeploymentError(f"{where}: expected a table")
        _expect(p, where, allowed)
        for req in ("name", "args"):
            if req not in p:
                raise DeploymentError(f"{where}.{req}: missing")
        if not all(isinstance(a, str) for a in p["args"]) or not p["args"]:
            raise DeploymentError(f"{where}.args: expected a non-empty list of strings")
        name = p["name"]
        procs.append(ProcessSpec(
            name=name, args=tuple(p["args"]), after=tuple(p.get("after", ())),
            ready_file=path(p["ready_file"]) if p.get("ready_file") else "",
            ready_socket=path(p["ready_socket"]) if p.get("ready_socket") else "",
            oneshot=p.get("oneshot", False), env={str(k): str(v) for k, v in p.get("env", {}).items()},
            log_file=str(Path(log_dir) / f"{name}.log") if log_dir else "",
        ))
    names = [p.name for p in procs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise DeploymentError(f"process names must be unique: {', '.join(sorted(dupes))}")
    for p in procs:
        for dep in p.after:
            if dep not in names:
                raise DeploymentError(f"process {p.name!r}: 'after' names unknown process {dep!r}")
    _check_acyclic(procs)
    return Deployment(name=d.get("name", "alphapulse"), run_dir=run_dir, data_dir=data_dir, log_dir=log_dir,
                      user=d.get("user", "alphapulse"), fsync=fsync, processes=procs)


def _check_acyclic(procs: list[ProcessSpec]) -> None:
    by_name = {p.name: p for p in procs}
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise DeploymentError("dependency cycle: " + " -> ".join([*stack, name]))
        state[name] = 1
        for dep in by_name[name].after:
            visit(dep, [*stack, name])
        state[name] = 2

    for p in procs:
        visit(p.name, [])


def load_deployment(path: str | Path) -> Deployment:
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except OSError as exc:
        raise DeploymentError(f"{p}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise DeploymentError(f"{p}: invalid TOML: {exc}") from None
    dep = parse_deployment(doc, base=p.resolve().parent)
    return Deployment(**{**dep.__dict__, "path": str(p.resolve())})
