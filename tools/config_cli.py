"""``alphapulse config check FILE``: validate a deployment before anything starts.

Checks the deployment file itself (unknown keys, wrong types, unknown
dependencies, cycles, plaintext keys) and then every process's own
``--config`` file with that component's loader, so a typo anywhere is reported
with its key path before a single process starts. Every loader raises the one
``runtime.config.ConfigError``, whose message names the file and the key path.
A component's ``[relays]`` must name the sockets it needs, and in a deployment
they must be the deployment's own (an empty socket means the default one under
``$ALPHAPULSE_RUN_DIR``, which the supervisor does not set: a strategy would
publish its signals where no relay listens).

Given a component's own file instead of a deployment, it says so and checks the
file with that component's loader.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from runtime.config import ConfigError, load_toml
from runtime.paths import socket_path

from .deployment import load_deployment

# subcommand -> "module:function" that loads (and so validates) its --config file
COMPONENT_LOADERS = {
    "strategy": "strategy.config:load_config",
    "collector": "collectors.evm.config:load_config",
    "executor": "execution.config:load_config",
    "risk": "risk.config:load_config",
    "portfolio": "portfolio.config:load_config",
    "rebalancer": "execution.rebalance.config:load_config",
}


# the relay sockets a component cannot run without (its [relays] table must name them)
REQUIRED_SOCKETS = {"strategy": ("market_data", "signal"), "rebalancer": ("execution",)}
# a top-level key that only this component's file has: how a component file is recognized
COMPONENT_MARKERS = {"strategy": "strategy", "executor": "executor", "risk": "risk", "portfolio": "portfolio",
                     "collector": "chain", "rebalancer": "rebalancer"}
# a file without its component's own table (every key there has a default) is known by a table only that
# component has: a rebalancer's [[targets]], a strategy's [[chains]] array, a portfolio's [chains."N"] tables or
# [start], risk's breakers
_BY_TABLE = (
    ("rebalancer", lambda doc: "targets" in doc),  # before strategy: it has a [[chains]] array too
    ("strategy", lambda doc: isinstance(doc.get("chains"), list) or "curve_pools" in doc or "cex_dex" in doc),
    ("portfolio", lambda doc: isinstance(doc.get("chains"), dict) or "start" in doc),
    ("risk", lambda doc: bool({"alerts", "daily_loss", "trade_size", "gas_price", "failure_rate", "stale_data",
                               "relay_gaps", "volatility"} & set(doc))),
)


def component_kind(doc: dict[str, Any]) -> str | None:
    """Which component's configuration ``doc`` is (None: none that we can tell)."""
    kinds = [k for k, marker in COMPONENT_MARKERS.items() if marker in doc]
    kinds += [k for k, looks in _BY_TABLE if not kinds and looks(doc)]
    return kinds[0] if kinds else None


def _load_component(kind: str, path: Path) -> Any:
    module_name, func = COMPONENT_LOADERS[kind].split(":")
    return getattr(importlib.import_module(module_name), func)(path)


def _socket_problems(kind: str, cfg: Any, run_dir: str | None) -> list[str]:
    """The component's relay sockets: the required ones named, and (in a deployment) the deployment's own."""
    relays = getattr(cfg, "relays", None)
    if relays is None:
        return []
    problems = []
    required = REQUIRED_SOCKETS.get(kind, ())
    hold_back = getattr(cfg, "hold_back", None)
    if kind == "strategy" and hold_back is not None and hold_back.enabled:
        required = (*required, "execution")  # [hold_back] reads the signals' results there
    for domain in required:
        if not getattr(relays, domain):
            where = f" (this deployment's is {socket_path(domain, run_dir)})" if run_dir else ""
            problems.append(f"{kind} config has no [relays] {domain} socket{where}")
    if run_dir:
        for domain in ("market_data", "signal", "execution"):
            named = getattr(relays, domain)
            if named and Path(named) != Path(socket_path(domain, run_dir)):
                problems.append(f"{kind} config: [relays] {domain} = {named!r} is not this deployment's "
                                f"socket {socket_path(domain, run_dir)}")
    return problems


def check_component_file(path: Path, doc: dict[str, Any]) -> list[str]:
    """A file that is not a deployment: which component's it is, and that component's checks."""
    kind = component_kind(doc)
    if kind is None:
        return [f"{path} is not a deployment file (no [deployment] table and no [[process]] entries) and not "
                f"a component config either (top-level keys: {', '.join(sorted(doc)) or 'none'})"]
    note = (f"{path} is a {kind} config, not a deployment file; `config check` validates a deployment and every "
            f"config it names. Checked it as a {kind} config")
    try:
        cfg = _load_component(kind, path)
    except ConfigError as exc:
        return [f"{note}: {exc}"]
    return [f"{note}: {p}" for p in _socket_problems(kind, cfg, None)]


def check(path: str) -> list[str]:
    """Return a list of problems (empty when the deployment is valid)."""
    try:
        doc = load_toml(path)
    except ConfigError as exc:
        return [str(exc)]
    if "deployment" not in doc and "process" not in doc:
        return check_component_file(Path(path), doc)
    try:
        dep = load_deployment(path)
    except ConfigError as exc:
        return [str(exc)]
    problems: list[str] = []
    for spec in dep.processes:
        args = list(spec.args)
        if "--config" not in args:
            continue
        cfg = args[args.index("--config") + 1] if args.index("--config") + 1 < len(args) else ""
        cfg_path = Path(cfg) if Path(cfg).is_absolute() else Path(dep.path).parent / cfg
        if not cfg_path.exists():
            problems.append(f"process {spec.name!r}: config file {cfg_path} does not exist")
            continue
        target = COMPONENT_LOADERS.get(args[0])
        if not target:
            continue
        module_name, func = target.split(":")
        try:
            loader = getattr(importlib.import_module(module_name), func)
        except (ImportError, AttributeError):
            problems.append(f"process {spec.name!r}: no config loader {target} in this build")
            continue
        try:
            cfg = loader(cfg_path)
        except ConfigError as exc:  # names the file and the key path
            problems.append(f"process {spec.name!r}: {exc}")
            continue
        problems += [f"process {spec.name!r}: {p}" for p in _socket_problems(args[0], cfg, dep.run_dir)]
    return problems


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse config", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="validate a deployment file and every component config it names")
    c.add_argument("file")
    args = ap.parse_args(argv)
    problems = check(args.file)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if not problems:
        print(f"{args.file}: ok")
    return 1 if problems else 0
