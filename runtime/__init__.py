"""L1 runtime: what every process shares -- process main, logging, metrics, strict config, errors."""
