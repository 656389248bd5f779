"""``alphapulse bench <name>``: benchmarks that print figures next to a same-run baseline.

Each benchmark is a module ``tools.bench.<name>`` with ``main(argv) -> int``, registered in
``tools.cli.BENCHMARKS`` (the one dispatcher). The machine is shared and noisy: every benchmark
measures its baseline in the same run and reports the ratio, and none of them asserts a time.
"""
