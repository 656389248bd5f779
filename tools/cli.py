"""The ``alphapulse`` command: one subcommand per component.

Each subcommand lives in its component's package and is imported lazily, so
``alphapulse relay`` never pays for importing web3 or textual. A component
registers itself by adding one line to ``COMMANDS``: ``name -> "module:function"``,
where ``function(argv: list[str]) -> int`` parses its own arguments.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:function", one-line help)
    "bench": ("tools.bench:main", "benchmarks: codec, relay, decode, strategy, e2e"),
    "relay": ("relays.daemon:main", "run one relay daemon (market_data, signal, execution)"),
    "archive": ("relays.archiver:main", "archive one relay domain to Parquet"),
    "bridge": ("bridge.process:main", "bridge a relay domain out to / in from NATS JetStream"),
    "loadgen": ("tools.loadgen:main", "publish synthetic load into a relay"),
    "devnet": ("tools.devnet.cli:main", "start anvil with the official Uniswap contracts"),
    "collector": ("tools.collector_cli:main", "run a collector (evm, replay)"),
    "strategy": ("strategy.process:main", "run the arbitrage strategy process"),
    "executor": ("execution.process:main", "run the executor process"),
    "risk": ("risk.process:main", "run the risk monitor"),
    "portfolio": ("portfolio.process:main", "run the portfolio process"),
    "report": ("portfolio.report:main", "daily and all-time report"),
    "demo": ("tools.demo:main", "the main job: the whole system on a local chain"),
    "up": ("tools.supervisor:up", "start a deployment's processes under the supervisor"),
    "down": ("tools.supervisor:down", "stop a running supervisor and its processes"),
    "systemd": ("tools.systemd:main", "generate systemd units from a deployment file"),
    "config": ("tools.config_cli:main", "validate a deployment file: config check FILE"),
    "dashboard": ("tools.dashboard.app:main", "the Textual terminal dashboard"),
    "replay": ("tools.replay:main", "re-publish an archive through the relays"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: alphapulse <command> [args...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"alphapulse: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    return run_target("alphapulse: command", name, COMMANDS[name][0], rest)


def run_target(what: str, name: str, target: str, argv: list[str]) -> int:
    """Import ``module:function`` lazily and call it with ``argv``.

    A module that is not in this build is a clear message and exit 2; a missing dependency
    *inside* an existing module is a real error and propagates.
    """
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"{what} {name!r} is not available in this build ({exc})", file=sys.stderr)
            return 2
        raise
    return int(getattr(module, func_name)(argv) or 0)


if __name__ == "__main__":
    sys.exit(main())
