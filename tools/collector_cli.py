"""``alphapulse collector <kind>``: run one collector.

* ``evm``    -- the live chain collector (``collectors.evm.process``)
* ``replay`` -- publish recorded raw logs (``collectors.replay.cli``)

Each is imported only when asked for, so ``replay`` does not pay for the live
collector's dependencies, and a collector that is not built yet says so.
"""

from __future__ import annotations

import sys

from tools.cli import run_target

COLLECTORS: dict[str, tuple[str, str]] = {
    "evm": ("collectors.evm.process:main", "live EVM chain collector (eth_subscribe logs + heads)"),
    "replay": ("collectors.replay.cli:main", "publish recorded raw eth_getLogs rows as live market data"),
}


def _usage() -> str:
    lines = ["usage: alphapulse collector <kind> [args...]", "", "collectors:"]
    lines += [f"  {name:7s} {help_}" for name, (_, help_) in COLLECTORS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COLLECTORS:
        print(f"alphapulse collector: unknown collector {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    return run_target("alphapulse collector:", name, COLLECTORS[name][0], rest)


if __name__ == "__main__":
    sys.exit(main())
