"""``alphapulse bench <name>``: benchmarks that print figures next to a same-run baseline.

Each benchmark is a module ``tools.bench.<name>`` with ``main(argv) -> int``, registered in
``tools.cli.BENCHMARKS`` (the one dispatcher). The machine is shared and noisy: every benchmark
measures its baseline in the same run and reports the ratio, and none of them asserts a time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def quantile(values: list[int], q: float) -> int:
    """The ``q`` quantile of ``values`` (0 <= q <= 1): the element at ``int(q * n)`` of the sorted values (the
    last one for q = 1), as every benchmark's p50/p99 takes it. ``values`` must not be empty."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def with_load_average(name: str, main: Callable[[list[str]], int | None], argv: list[str]) -> int:
    """Run one benchmark between two load-average lines (stderr, so ``--json`` stays clean): the
    figures only mean something on an idle machine, and these lines say whether it was."""
    print(f"bench {name}: load average before: {load_average()}", file=sys.stderr, flush=True)
    try:
        return int(main(argv) or 0)
    finally:
        print(f"bench {name}: load average after: {load_average()}", file=sys.stderr, flush=True)
