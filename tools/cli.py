"""The ``alphapulse`` command: one subcommand per component, and groups of them.

Each subcommand lives in its component's package and is imported lazily, so
``alphapulse relay`` never pays for importing web3 or textual. A component
registers itself by adding one line to ``COMMANDS``: ``name -> Command("module:function", help)``,
where ``function(argv: list[str]) -> int`` parses its own arguments. A ``Group`` of commands
(``alphapulse collector evm``, ``alphapulse bench relay``) is dispatched by the same code.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    target: str  # "module:function"
    help: str
    # "module:function" called as ``function(name, main, argv)`` around the target (benchmarks: the
    # load average before and after)
    around: str = ""


@dataclass(frozen=True)
class Group:
    help: str
    commands: Mapping[str, Command | Group]


COLLECTORS = Group("run a collector (evm, replay, binance, coinbase)", {
    "evm": Command("collectors.evm.process:main", "live EVM chain collector (eth_subscribe logs + heads)"),
    "replay": Command("collectors.replay.cli:main", "publish recorded raw eth_getLogs rows as live market data"),
    "binance": Command("collectors.cex.binance.process:main", "Binance spot order books and trades (WebSocket + REST)"),
    "coinbase": Command("collectors.cex.coinbase.process:main",
                        "Coinbase order books and trades (Exchange or Advanced Trade feed)"),
})

def _bench(target: str, help: str) -> Command:
    return Command(target, help, around="tools.bench:with_load_average")


# Every benchmark prints its figures next to a baseline measured in the same run (the machine is
# shared and noisy) and reports the ratio; none of them asserts a time. Each runs between two
# load-average lines (tools.bench.with_load_average).
BENCHMARKS = Group("benchmarks: codec, relay, decode, strategy, e2e, cex, bridge, gas", {
    "codec": _bench("tools.bench.codec:main", "protocol codec encode+decode vs bare struct pack+unpack"),
    "relay": _bench("tools.bench.relay:main", "relay throughput and latency vs pyzmq PUB/SUB"),
    "decode": _bench("tools.bench.decode:main", "raw EVM logs -> protocol messages vs eth-abi"),
    "strategy": _bench("tools.bench.strategy:main", "10k-pool update-to-decision latency; V3 swaps/s vs degenbot"),
    "e2e": _bench("tools.bench.e2e:main", "devnet: swap log -> signal -> submitted transaction latency"),
    "cex": _bench("tools.bench.cex:main", "CEX collectors: captured venue frames -> wire bytes vs json.loads"),
    "bridge": _bench("tools.bench.bridge:main",
                     "relay -> NATS JetStream bridges -> relay vs the plain relay hop and bare nats-py"),
    "gas": _bench("tools.bench.gas:main", "devnet: AlphaPulseArb gas per path type, current vs previous contract"),
})

COMMANDS: dict[str, Command | Group] = {
    "bench": BENCHMARKS,
    "relay": Command("relays.daemon:main", "run one relay daemon (market_data, signal, execution)"),
    # also installed as its own ``relay-cli`` script; here so ``./run relay-cli ...`` works like every command
    "relay-cli": Command("tools.relay_cli:main", "inspect relays: stats, tail, check, gaps, stop, resume"),
    "archive": Command("relays.archiver:main", "archive one relay domain to Parquet"),
    "bridge": Command("bridge.process:main", "bridge a relay domain out to / in from NATS JetStream"),
    "loadgen": Command("tools.loadgen:main", "publish synthetic load into a relay"),
    "devnet": Command("tools.devnet.cli:main", "start anvil with the official Uniswap contracts"),
    "collector": COLLECTORS,
    "strategy": Command("strategy.process:main", "run the arbitrage strategy process"),
    "executor": Command("execution.process:main", "run the executor process"),
    "rebalancer": Command("execution.rebalance.process:main",
                          "bridge inventory between chains' contracts when one drops below its floor"),
    "risk": Command("risk.process:main", "run the risk monitor"),
    "portfolio": Command("portfolio.process:main", "run the portfolio process"),
    "report": Command("tools.report_cli:main", "daily and all-time report (default: the latest demo run)"),
    "status": Command("tools.status:main", "relays (heads, lags), breakers, open signals, processes' last errors"),
    "balance": Command("tools.report_cli:balance", "what the books hold per chain, readable; --reconcile"),
    "history": Command("tools.report_cli:history", "trades with their outcomes, filterable; --csv"),
    "demo": Command("tools.demo:main", "the main job: the whole system on a local chain"),
    "chaos": Command("tools.chaos:main", "the whole system under kill -9, then checks: books, nonces, outcomes, archives"),
    "up": Command("tools.supervisor:up", "start a deployment's processes under the supervisor"),
    "down": Command("tools.supervisor:down", "stop a running supervisor and its processes"),
    "systemd": Command("tools.systemd:main", "generate systemd units from a deployment file"),
    "config": Command("tools.config_cli:main", "validate a deployment file: config check FILE"),
    "dashboard": Command("tools.dashboard.app:main", "the Textual terminal dashboard"),
    "replay": Command("tools.replay:main", "re-publish an archive through the relays"),
    "backtest": Command("tools.backtest:main",
                        "replay an archive through the strategy and a simulated executor (fills, gas, latency)"),
    "standin": Command("tools.cex_standin.cli:main", "local Binance / Coinbase stand-ins replaying real captures"),
}


def _usage(prog: str, commands: Mapping[str, Command | Group]) -> str:
    width = max(len(n) for n in commands)
    lines = [f"usage: {prog} <command> [args...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {c.help}" for name, c in commands.items()]
    return "\n".join(lines)


def dispatch(prog: str, commands: Mapping[str, Command | Group], argv: list[str]) -> int:
    """Run the command ``argv[0]`` names with the rest of ``argv``. Without arguments: the usage and
    exit status 2; with ``-h``/``--help``/``help``: the usage and 0; an unknown command: 2."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage(prog, commands))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    command = commands.get(name)
    if command is None:
        print(f"{prog}: unknown command {name!r}\n\n{_usage(prog, commands)}", file=sys.stderr)
        return 2
    if isinstance(command, Group):
        return dispatch(f"{prog} {name}", command.commands, rest)
    if command.around:
        mod, fn = command.around.split(":")
        around = getattr(importlib.import_module(mod), fn)
        return int(around(name, lambda argv: run_target(f"{prog}: command {name!r}", command.target, argv), rest))
    return run_target(f"{prog}: command {name!r}", command.target, rest)


def run_target(what: str, target: str, argv: list[str]) -> int:
    """Import ``module:function`` lazily and call it with ``argv``.

    A module that is not in this build is a clear message and exit 2; a missing dependency
    *inside* an existing module is a real error and propagates. A file the command cannot use
    (``runtime.errors.BadFile``, which every reader raises naming the file) that its own code did
    not turn into its line is one line and exit 2 here: never a traceback.
    """
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"{what} is not available in this build ({exc})", file=sys.stderr)
            return 2
        raise
    from runtime.errors import BadFile, one_line

    try:
        return int(getattr(module, func_name)(argv) or 0)
    except BadFile as exc:
        print(f"{what}: {one_line(exc)}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # a bare ``alphapulse`` is a request for help
        argv = ["--help"]
    return dispatch("alphapulse", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
