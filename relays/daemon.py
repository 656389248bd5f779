"""``alphapulse relay``: run one relay daemon in the foreground.

    alphapulse relay --domain market_data [--socket PATH] [--data-dir DIR]
                     [--fsync batch|interval|off] [--fsync-interval S]
                     [--retention-bytes N] [--segment-bytes N] [--ring-size N]
                     [--no-verify] [--log-level INFO] [--metrics-port PORT]

Logs to stderr. SIGTERM and SIGINT stop it cleanly (journal fsynced, socket
removed). Exits 2 on bad configuration, 3 when a live relay already owns the
socket (it connects first to find out; a stale socket left by a dead relay is
removed), 0 after a clean stop. Sizes accept K/M/G suffixes (powers of 1024).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from functools import partial
from pathlib import Path

import trio

from relays.metrics import instrument_relay
from runtime.metrics import ProcessMetrics, add_metrics_argument, serve_process_metrics
from runtime.paths import parse_domain, run_dir, socket_path

from .server import FSYNC_POLICIES, Relay, RelayAlreadyRunning, RelayConfig, RelayError

log = logging.getLogger("relays.daemon")

EXIT_CONFIG = 2
EXIT_RUNNING = 3


def parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    mult = 1
    if t and t[-1] in units:
        mult = units[t[-1]]
        t = t[:-1]
    try:
        value = int(float(t) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alphapulse relay", description="Run one relay daemon in the foreground.")
    p.add_argument("--domain", required=True, help="market_data, signal or execution")
    p.add_argument("--socket", help=f"Unix socket path (default {run_dir()}/<domain>.sock)")
    p.add_argument("--data-dir", help="journal directory (default <run dir>/data/<domain>)")
    p.add_argument("--fsync", choices=FSYNC_POLICIES, default="batch",
                   help="batch: fsync before acking each group commit (default); interval: every "
                        "--fsync-interval; off: never (page cache only)")
    p.add_argument("--fsync-interval", type=float, default=0.05, help="seconds, for --fsync interval")
    p.add_argument("--retention-bytes", type=parse_size, default=1 << 30, help="journal size bound (default 1G)")
    p.add_argument("--segment-bytes", type=parse_size, default=64 << 20, help="journal segment size (default 64M)")
    p.add_argument("--ring-size", type=parse_size, default=64 << 20,
                   help="in-memory ring bytes; also the lag at which a live consumer is cut off (default 64M)")
    p.add_argument("--max-batch", type=parse_size, default=256 << 10, help="bytes per consumer send (default 256K)")
    p.add_argument("--heartbeat-interval", type=float, default=0.25, help="seconds (default 0.25)")
    p.add_argument("--no-verify", action="store_true", help="skip per-frame CRC verification on ingest")
    p.add_argument("--log-level", default=os.environ.get("ALPHAPULSE_LOG_LEVEL", "INFO"))
    add_metrics_argument(p)
    return p


def config_from_args(args: argparse.Namespace) -> RelayConfig:
    domain = parse_domain(args.domain)
    sock = args.socket or str(socket_path(domain))
    data_dir = args.data_dir or str(Path(sock).parent / "data" / domain.name.lower())
    return RelayConfig(
        domain=domain,
        socket_path=sock,
        data_dir=data_dir,
        fsync=args.fsync,
        fsync_interval=args.fsync_interval,
        retention_bytes=args.retention_bytes,
        segment_bytes=args.segment_bytes,
        ring_bytes=args.ring_size,
        max_batch_bytes=args.max_batch,
        heartbeat_interval=args.heartbeat_interval,
        verify_checksums=not args.no_verify,
    )


async def _run(config: RelayConfig, metrics_port: int | None = None, metrics_host: str = "127.0.0.1") -> None:
    relay = Relay(config)
    try:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(relay.serve)
                if metrics_port is not None:  # read at scrape time from the relay's own stats
                    pm = ProcessMetrics(f"relay-{config.domain.name.lower()}")
                    instrument_relay(relay, pm)
                    await nursery.start(partial(serve_process_metrics, metrics=pm), metrics_port, None, metrics_host)
                async for signum in signals:
                    log.info("%s received, shutting down", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    break
    finally:
        relay.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
    )
    try:
        config = config_from_args(args)
    except (ValueError, RelayError) as exc:
        print(f"alphapulse relay: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    code = 0
    try:
        trio.run(_run, config, args.metrics_port, args.metrics_host)
    except* RelayAlreadyRunning as group:
        print(f"alphapulse relay: {group.exceptions[0]}", file=sys.stderr)
        code = EXIT_RUNNING
    except* RelayError as group:
        print(f"alphapulse relay: {group.exceptions[0]}", file=sys.stderr)
        code = EXIT_CONFIG
    return code


if __name__ == "__main__":
    sys.exit(main())
