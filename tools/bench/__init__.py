"""``alphapulse bench <name>``: benchmarks that print figures next to a same-run baseline.

Each benchmark is a module ``tools.bench.<name>`` with ``main(argv) -> int``.
The machine is shared and noisy: every benchmark measures its baseline in the
same run and reports the ratio, and none of them asserts a time.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "codec": "protocol codec encode+decode vs bare struct pack+unpack",
    "relay": "relay throughput and latency vs pyzmq PUB/SUB",
    "decode": "raw EVM logs -> protocol messages vs eth-abi",
    "strategy": "10k-pool update-to-decision latency; V3 swaps/s vs degenbot",
    "e2e": "devnet: swap log -> signal -> submitted transaction latency",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: alphapulse bench <name> [args]\n")
        for name, what in BENCHMARKS.items():
            print(f"  {name:9s} {what}")
        return 0 if argv else 2
    name = argv[0]
    if name not in BENCHMARKS:
        print(f"alphapulse bench: unknown benchmark {name!r}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"tools.bench.{name}")
    except ModuleNotFoundError as exc:
        print(f"alphapulse bench: {name!r} is not available in this build ({exc})", file=sys.stderr)
        return 2
    return int(module.main(argv[1:]) or 0)
