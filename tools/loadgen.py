"""``alphapulse loadgen``: publish synthetic load into a relay.

    alphapulse loadgen --domain market_data --rate 20000 --count 100000 --size 64
                       [--socket PATH] [--source-id 900] [--name loadgen]

Each message is one TLV of type ``LOADGEN_TYPE`` (250, unregistered, so
consumers keep it as ``UnknownTLV``) whose body starts with the message's own
``source_seq`` as a little-endian u64, padded with zeros to make the whole
frame ``--size`` bytes (64 = 52-byte header + 2-byte TLV header + 10-byte body).
``event_time_ns`` is the send time, so a consumer can compute one-way latency.

``--count N`` publishes until ``source_seq`` N: a loadgen restarted after a
crash continues from the relay's last persisted sequence (``Welcome``) and
stops at the same total, so consumers can check they saw 1..N exactly once.
``--rate 0`` publishes as fast as possible. Exits after everything is acked.
"""

from __future__ import annotations

import argparse
import logging
import struct
import sys
import time

import trio

from runtime.logging import default_log_level, log_level, setup_logging

LOADGEN_TYPE = 250
_U64 = struct.Struct("<Q")
MIN_SIZE = 52 + 2 + 8


def payload_template(size: int) -> bytearray:
    """TLV bytes (header + zeroed body) for a frame of ``size`` bytes; counter at offset 2 or 6."""
    if size < MIN_SIZE:
        raise ValueError(f"--size must be at least {MIN_SIZE} (header + TLV header + u64 counter)")
    body = size - 52 - 2
    if body <= 255:
        return bytearray(bytes((LOADGEN_TYPE, body)) + bytes(body))
    body = size - 52 - 6
    return bytearray(struct.pack("<BBI", 0, LOADGEN_TYPE, body) + bytes(body))


def counter_offset(template: bytes | bytearray) -> int:
    return 2 if template[0] else 6


def read_counter(payload: bytes | memoryview) -> int:
    """The counter in a loadgen TLV payload (frame bytes from offset 52)."""
    off = 2 if payload[0] else 6
    return int(_U64.unpack_from(payload, off)[0])


async def run(
    domain: str, socket: str | None, *, rate: float, count: int, size: int, source_id: int, name: str
) -> int:
    from relays.client import RelayProducer

    template = payload_template(size)
    off = counter_offset(template)
    async with RelayProducer.connect(domain, socket, source_id=source_id, name=name, linger=60.0) as p:
        first = p.core.next_seq
        if first > count:
            logging.info("loadgen: relay already has source_seq %d >= --count %d; nothing to do", first - 1, count)
            return 0
        start = trio.current_time()
        sent = 0
        seq = first
        tick = 0.001
        while seq <= count:
            if rate > 0:
                due = int((trio.current_time() - start) * rate) + 1 - sent
                if due <= 0:
                    await trio.sleep(tick)
                    continue
            else:
                due = 1024
            for _ in range(min(due, count - seq + 1)):
                _U64.pack_into(template, off, seq)
                now = time.time_ns()
                got = await p.publish_payload(bytes(template), event_time_ns=now, receive_time_ns=now)
                assert got == seq, (got, seq)
                seq += 1
                sent += 1
            if rate <= 0:
                await trio.lowlevel.checkpoint()
        await p.flush()
        elapsed = trio.current_time() - start
        logging.info("loadgen: published %d..%d (%d msgs) in %.2f s, %.0f msgs/s; %s", first, count, sent, elapsed,
                     sent / elapsed if elapsed else 0.0, p.counters)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse loadgen", description="Publish synthetic load into a relay.")
    ap.add_argument("--domain", required=True)
    ap.add_argument("--socket", help="relay socket (default: runtime.paths.socket_path(domain))")
    ap.add_argument("--rate", type=float, default=10000.0, help="messages per second; 0 = as fast as possible")
    ap.add_argument("--count", type=int, default=100000, help="publish until source_seq COUNT")
    ap.add_argument("--size", type=int, default=64, help=f"frame bytes (>= {MIN_SIZE})")
    ap.add_argument("--source-id", type=int, default=900)
    ap.add_argument("--name", default="loadgen")
    ap.add_argument("--log-level", type=log_level, default=default_log_level())
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.log_level)
    try:
        payload_template(args.size)
    except ValueError as exc:
        print(f"alphapulse loadgen: {exc}", file=sys.stderr)
        return 2
    return trio.run(
        lambda: run(args.domain, args.socket, rate=args.rate, count=args.count, size=args.size,
                    source_id=args.source_id, name=args.name)
    )


if __name__ == "__main__":
    sys.exit(main())
