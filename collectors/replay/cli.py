"""``alphapulse collector replay``: publish recorded raw logs to the market-data relay.

Examples::

    alphapulse collector replay --logs tests/data/uniswap-v3-usdc-weth-2024-01-05 --speed 600
    alphapulse collector replay --logs a.raw.csv b.raw.csv --as-fast-as-possible --socket /tmp/md.sock
    alphapulse collector replay --logs DIR --as-fast-as-possible --dry-run      # decode + pace, no relay
    alphapulse collector replay --logs DIR --as-fast-as-possible --out frames.bin  # wire frames to a file
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO, cast

from collectors.evm.decode import LogDecodeError, LogDecoder
from protocol.header import FLAG_REPLAYED
from protocol.ids import PoolId
from protocol.message import encode
from runtime.errors import unwrap_group
from runtime.metrics import CounterMetricFamily, ProcessMetrics
from runtime.process import ProcessMain, Work, add_process_arguments

from .pools import KNOWN_POOLS, parse_pool_spec
from .replay import MessageSink, Publish, ReplayStats, iter_replay, pace, resolve_files
from .source import RecordingError

DEFAULT_SOURCE_ID = 0x5250  # "RP": replay; pass --source-id to run several replays at once


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="alphapulse collector replay",
        description="Publish recorded raw eth_getLogs rows as live market-data messages.",
    )
    ap.add_argument(
        "--logs",
        nargs="+",
        required=True,
        metavar="FILE",
        help="raw-log recordings (*.raw.csv, *.jsonl) or directories of them",
    )
    timing = ap.add_mutually_exclusive_group()
    timing.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="replay at X times the recorded pace (default 1.0 = real time)",
    )
    timing.add_argument("--as-fast-as-possible", action="store_true", help="no waiting between blocks")
    ap.add_argument("--socket", metavar="PATH", help="market-data relay socket (default: the standard path)")
    ap.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="give up if no relay answers (default 10)",
    )
    ap.add_argument("--chain-id", type=int, default=1, help="chain of the recorded logs (default 1)")
    ap.add_argument(
        "--pool",
        action="append",
        default=[],
        metavar="ADDRESS:VENUE:KIND:TOKEN_A:TOKEN_B",
        help="a pool to decode, in addition to the built-in ones for --chain-id (repeatable)",
    )
    ap.add_argument("--source-id", type=int, default=DEFAULT_SOURCE_ID, help="producer id in message headers")
    ap.add_argument(
        "--mark-replayed", action="store_true", help="set the REPLAYED header flag on every message"
    )
    ap.add_argument(
        "--skip-malformed",
        action="store_true",
        help="skip (and count) malformed logs instead of stopping at the first",
    )
    ap.add_argument("--limit", type=int, default=None, metavar="N", help="stop after N messages")
    add_process_arguments(ap)
    ap.add_argument("--metrics-linger", type=float, default=0.0, metavar="S",
                    help="with --metrics-port: keep serving metrics S seconds after the replay ends (last scrape)")
    sink = ap.add_mutually_exclusive_group()
    sink.add_argument("--dry-run", action="store_true", help="decode, pace and encode, but publish nowhere")
    sink.add_argument("--out", metavar="FILE", help="append the encoded frames to FILE instead of a relay")
    return ap


def pools_for(chain_id: int, specs: list[str]) -> list[PoolId]:
    pools = {p.address: p for p in KNOWN_POOLS.get(chain_id, ())}
    for spec in specs:
        pool = parse_pool_spec(spec, chain_id)
        pools[pool.address] = pool
    return list(pools.values())


def _default_socket() -> str:
    from runtime.paths import socket_path

    return str(socket_path("market_data"))


@asynccontextmanager
async def relay_sink(socket: str, source_id: int, connect_timeout: float = 10.0,
                     metrics: ProcessMetrics | None = None) -> AsyncIterator[Publish]:
    """``RelayProducer.publish`` on the market-data relay at ``socket``; on exit, wait for its acks."""
    try:
        from relays.client import RelayProducer, RelayUnavailable
    except ImportError as exc:
        raise RuntimeError(
            f"the relay client (relays.client.RelayProducer) is not available in this build ({exc}); "
            "use --dry-run or --out FILE"
        ) from None
    try:
        async with RelayProducer.connect(
            "market_data",
            socket,
            source_id=source_id,
            name="collector-replay",
            connect_timeout=connect_timeout,
            metrics=metrics,
        ) as producer:
            yield producer.publish
            await producer.flush()
    except Exception as exc:  # the producer's nursery wraps it in an exception group
        leaf = unwrap_group(exc)
        if isinstance(leaf, RelayUnavailable):
            raise RuntimeError(f"no market-data relay answering at {socket}: {leaf}") from None
        raise


@asynccontextmanager
async def open_sink(args: argparse.Namespace, out: BinaryIO | None = None,
                    metrics: ProcessMetrics | None = None) -> AsyncIterator[Publish]:
    """Where messages go: the relay, a frame file ``out`` (``--out``) or nowhere (``--dry-run``).

    Frames to a local file are written synchronously: buffered appends, no slower than
    a thread hop per message would be.
    """
    if args.dry_run:
        yield MessageSink(encode, source_id=args.source_id).publish  # still encodes every message
    elif out is not None:
        write = out.write
        yield MessageSink(lambda m: write(encode(m)), source_id=args.source_id).publish
    else:
        async with relay_sink(
            args.socket or _default_socket(), args.source_id, args.connect_timeout, metrics
        ) as publish:
            yield publish


def _metered(publish: Publish, stats: ReplayStats, pm: ProcessMetrics) -> Publish:
    """``publish`` timed into ``alphapulse_replay_publish_seconds``; stats read at scrape time."""
    hist = pm.histogram("alphapulse_replay_publish_seconds",
                        "One publish call (encode + queue; waits when the relay applies backpressure).")
    counters = (("logs", "Raw logs read."), ("published", "Messages published."),
                ("skipped", "Logs the decoder ignored (unknown pool or topic)."),
                ("malformed", "Malformed logs skipped."))
    pm.collect(lambda: [CounterMetricFamily(f"alphapulse_replay_{key}_total", text, value=getattr(stats, key))
                        for key, text in counters])
    observe = hist.observe
    clock = time.perf_counter

    async def publish_timed(tlvs: Any, **kw: Any) -> int:
        t0 = clock()
        seq = await publish(tlvs, **kw)
        observe(clock() - t0)
        return seq

    return cast(Publish, publish_timed)


async def run(args: argparse.Namespace, decoder: LogDecoder, out: BinaryIO | None = None,
              metrics: ProcessMetrics | None = None) -> ReplayStats:
    """Replay ``args.logs`` into the sink; with ``metrics``, time each publish and count the stats."""
    stats = ReplayStats()

    def report(exc: LogDecodeError) -> None:
        print(f"replay: skipped malformed log: {exc}", file=sys.stderr)

    items = iter_replay(
        resolve_files(args.logs),
        decoder,
        skip_malformed=args.skip_malformed,
        stats=stats,
        on_malformed=report,
    )
    if args.limit is not None:
        items = (item for _, item in zip(range(args.limit), items))
    async with open_sink(args, out, metrics) as publish:
        if metrics is not None:
            publish = _metered(publish, stats, metrics)
        await pace(
            items,
            publish,
            speed=None if args.as_fast_as_possible else args.speed,
            flags=FLAG_REPLAYED if args.mark_replayed else 0,
            stats=stats,
        )
    return stats


_EXPECTED_ERRORS = (RecordingError, LogDecodeError, ValueError, RuntimeError, OSError)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    proc = ProcessMain("replay", "collector-replay", errors={_EXPECTED_ERRORS: 1})
    if not args.as_fast_as_possible and not args.speed > 0:
        proc.say("--speed must be > 0")
        return 2
    try:
        pools = pools_for(args.chain_id, args.pool)
    except ValueError as exc:
        proc.say(str(exc))
        return 2
    if not pools:
        proc.say(f"no known pools on chain {args.chain_id}; pass --pool")
        return 2
    decoder = LogDecoder.from_pools(pools)
    t0 = time.perf_counter()
    with contextlib.ExitStack() as files:

        def prepare() -> Work:
            out = files.enter_context(Path(args.out).open("ab")) if args.out else None

            async def work(pm: ProcessMetrics) -> None:
                stats = await run(args, decoder, out, pm if args.metrics_port is not None else None)
                _summary(stats, decoder, time.perf_counter() - t0)

            return work

        return proc.run(args, prepare, linger=args.metrics_linger)


def _summary(stats: ReplayStats, decoder: LogDecoder, elapsed: float) -> None:
    s = stats.as_dict()
    rate = s["published"] / elapsed if elapsed > 0 else 0.0
    print(
        f"replay: {s['published']} messages from {s['logs']} logs in {elapsed:.2f} s ({rate:,.0f}/s); "
        f"skipped {s['skipped']} (no TLV), malformed {s['malformed']}, untimed {s['untimed']}; "
        f"decoder {decoder.stats}",
        file=sys.stderr,
    )
