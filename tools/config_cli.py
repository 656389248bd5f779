"""``alphapulse config check FILE``: validate a deployment before anything starts.

Checks the deployment file itself (unknown keys, wrong types, unknown
dependencies, cycles, plaintext keys) and then every process's own
``--config`` file with that component's loader, so a typo anywhere is reported
with its key path before a single process starts. Every loader raises the one
``runtime.config.ConfigError``, whose message names the file and the key path.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from runtime.config import ConfigError

from .deployment import load_deployment

# subcommand -> "module:function" that loads (and so validates) its --config file
COMPONENT_LOADERS = {
    "strategy": "strategy.config:load_config",
    "collector": "collectors.evm.config:load_config",
    "executor": "execution.config:load_config",
    "risk": "risk.config:load_config",
    "portfolio": "portfolio.config:load_config",
}


def check(path: str) -> list[str]:
    """Return a list of problems (empty when the deployment is valid)."""
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
            loader(cfg_path)
        except ConfigError as exc:  # names the file and the key path
            problems.append(f"process {spec.name!r}: {exc}")
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
