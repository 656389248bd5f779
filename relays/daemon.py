"""``alphapulse relay``: run one relay daemon in the foreground.

    alphapulse relay --domain market_data [--socket PATH] [--data-dir DIR]
                     [--fsync batch|interval|off] [--fsync-interval S]
                     [--retention-bytes N] [--segment-bytes N] [--ring-size N]
                     [--no-verify] [--no-validate] [--log-level INFO] [--metrics-port PORT]

Logs to stderr. SIGTERM and SIGINT stop it cleanly (journal fsynced, socket
removed). Exits 2 on bad configuration, 3 when a live relay already owns the
socket (it connects first to find out; a stale socket left by a dead relay is
removed), 0 after a clean stop. Sizes accept K/M/G suffixes (powers of 1024).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import trio

from relays.metrics import instrument_relay
from runtime.metrics import ProcessMetrics
from runtime.paths import parse_domain, run_dir, socket_path
from runtime.process import ProcessMain, Work, add_process_arguments

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


def _producer_rule(text: str) -> tuple[int, frozenset[int]]:
    try:
        sid, _, uids = text.partition("=")
        rule = int(sid, 0), frozenset(int(u) for u in uids.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected SOURCE_ID=UID[,UID...] (integers)") from None
    if not rule[1] or not 0 < rule[0] < 1 << 32:
        raise argparse.ArgumentTypeError("expected SOURCE_ID=UID[,UID...] with a source id in 1..2**32-1")
    return rule


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
    p.add_argument("--ring-size", dest="ring_bytes", type=parse_size, default=64 << 20,
                   help="in-memory ring bytes; also the lag at which a live consumer is cut off (default 64M)")
    p.add_argument("--max-batch", dest="max_batch_bytes", type=parse_size, default=256 << 10, help="bytes per consumer send (default 256K)")
    p.add_argument("--heartbeat-interval", type=float, default=0.25, help="seconds (default 0.25)")
    p.add_argument("--no-verify", action="store_true", help="skip per-frame CRC verification on ingest")
    p.add_argument("--max-connections", type=int, default=0,
                   help="connections at once (default: the descriptor limit minus a reserve)")
    p.add_argument("--hello-timeout", type=float, default=5.0, help="seconds a connection has to say Hello (5)")
    p.add_argument("--allow-uid", dest="allow_uids", type=int, action="append", metavar="UID",
                   help="a uid that may connect (repeat; default: the relay's own uid and root)")
    p.add_argument("--producer", dest="producers", action="append", type=_producer_rule, metavar="SOURCE_ID=UID[,UID]",
                   help="the uids that may produce SOURCE_ID (repeat); once given, unlisted source ids are refused")
    p.add_argument("--no-validate", action="store_true",
                   help="skip decoding each accepted frame's TLVs on ingest (a frame that does not decode then "
                        "reaches the journal and every consumer)")
    add_process_arguments(p)
    return p


# RelayConfig fields taken as they are from the command line (the flags' dest names)
_TUNABLES = ("fsync", "fsync_interval", "retention_bytes", "segment_bytes", "ring_bytes", "max_batch_bytes",
             "heartbeat_interval", "max_connections", "hello_timeout")


def config_from_args(args: argparse.Namespace) -> RelayConfig:
    domain = parse_domain(args.domain)
    sock = args.socket or str(socket_path(domain))
    data_dir = args.data_dir or str(Path(sock).parent / "data" / domain.name.lower())
    tunables = {name: getattr(args, name) for name in _TUNABLES}
    # a relay process owns its interpreter: keep its long-lived objects out of the GC's scans
    return RelayConfig(domain=domain, socket_path=sock, data_dir=data_dir, verify_checksums=not args.no_verify,
                       validate_tlvs=not args.no_validate, freeze_gc=True,
                       **tunables)


def _producers(rules: list[tuple[int, frozenset[int]]] | None) -> dict[int, frozenset[int]] | None:
    if not rules:
        return None
    out: dict[int, frozenset[int]] = {}
    for sid, uids in rules:
        out[sid] = out.get(sid, frozenset()) | uids
    return out


def relay_work(config: RelayConfig) -> Work:
    """Serve the relay until cancelled (journal fsynced and socket removed on the way out);
    its metrics are read at scrape time from the relay's own stats."""

    async def work(pm: ProcessMetrics) -> None:
        relay = Relay(config)
        listening = False
        pm.expects_relay_clients = False  # it is the relay: ready once it listens
        pm.add_ready_check(lambda: None if listening else "not listening yet")
        try:
            instrument_relay(relay, pm)
            if config.freeze_gc:
                relay.gc_keeper.observe(pm)
            async with trio.open_nursery() as nursery:
                await nursery.start(relay.serve)
                listening = True
        finally:
            relay.close()

    return work


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = config_from_args(args)
    except (ValueError, RelayError) as exc:
        print(f"alphapulse relay: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    proc = ProcessMain("alphapulse relay", f"relay-{config.domain.name.lower()}",
                       errors={RelayAlreadyRunning: EXIT_RUNNING, RelayError: EXIT_CONFIG},
                       gc_keeper=False)  # the relay runs its own (freeze_gc, gc_freeze_interval)
    return proc.run(args, lambda: relay_work(config))


if __name__ == "__main__":
    sys.exit(main())
