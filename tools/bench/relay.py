"""Relay benchmark: one producer, three consumers, 64-byte messages, journal on; vs pyzmq.

    alphapulse bench relay [--count 1000000] [--latency-rate 20000] [--latency-seconds 5]
                           [--fsync batch] [--no-verify] [--no-validate] [--skip-zmq] [--json]
    alphapulse bench relay --table [--table-seconds 5] [--table-min-samples 200] [--json]

Every party is its own process, as in production:

* **throughput, raw**: the producer pre-builds ``--count`` 64-byte frames (52-byte header +
  one 12-byte TLV) and writes them to the relay as fast as the socket takes them; each
  consumer (the real ``RelayConsumer`` client, ``frame_batches()``) reports msgs/s from its
  first to its last message. Per message: the client checks the header and that
  ``domain_seq`` is exactly the previous + 1 (runs of equal-size frames in one vectorised
  pass); the bench checks every batch starts right after the previous one. No per-message
  Python object.
* **throughput, decoded**: the same with every message fully decoded (``protocol.decode``:
  CRC, TLVs) into a ``Message`` and its ``domain_seq`` checked by the bench.
* **latency**: a producer publishes at a fixed ``--latency-rate`` for ``--latency-seconds``,
  stamping ``event_time_ns`` right before sending; consumers compute receive - send per
  message; we report p50/p99/p99.9 over all three. Twice: with a plain paced producer
  (the same pacing loop as the pyzmq PUB: it measures the relay hop), and with the real
  ``RelayProducer`` trio client (adds the client's own cost).
* **baseline**: pyzmq PUB/SUB over ``ipc://`` with SNDHWM = RCVHWM = 0 (no loss), the
  same frames, one ``send``/``recv`` per message (no checks), three SUB processes; same
  throughput and latency phases.

``--table`` prints, from one run, one hop's one-way latency p50 / p99 at 10, 100, 1,000 and
20,000 msgs/s, twice -- with three consumers per hop (the fan-out above) and with one (like for
like with the bare socket, which has one reader; on a two-core machine the later consumers of a
fan-out wait for a core) -- for: the relay with the client library on both ends (``RelayProducer`` ->
relay -> ``RelayConsumer``, journal on) under ``fsync=batch`` and ``fsync=interval``; pyzmq
PUB/SUB ipc (as many SUBs as consumers); and trio on a bare Unix socket (a paced blocking
sender, one trio reader: the floor an event-loop process pays), then the raw throughput of the relay and pyzmq and their
ratio. Each rate runs ``--table-seconds`` (at least ``--table-min-samples`` messages).

The machine is shared and noisy: compare the ratio within one run, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from protocol.header import OFF_EVENT_TIME

ROOT = Path(__file__).resolve().parents[2]
EV = slice(OFF_EVENT_TIME, OFF_EVENT_TIME + 8)  # a frame's event_time_ns: the latency probes' send stamp
PAYLOAD = b"\xfa\x0a" + bytes(10)  # one compact TLV (type 250, 10-byte body): 64-byte frames
SOURCE_ID = 4242


# ---------------------------------------------------------------------------- worker roles


def _paced(count: int, rate: float) -> Iterator[int]:
    """0 .. count - 1, each yielded at its due time ``i / rate`` after the start (a plain blocking
    loop: ``time.sleep`` only for gaps over 0.5 ms, so sleep overshoot never accumulates)."""
    interval = 1.0 / rate
    t0 = time.perf_counter()
    for i in range(count):
        delay = t0 + i * interval - time.perf_counter()
        if delay > 0.0005:
            time.sleep(delay)
        yield i


def _frames(count: int) -> list[bytes]:
    from relays.client.core import ProducerCore

    core = ProducerCore(1, SOURCE_ID)
    core.welcomed = False  # build into the outbox only
    now = time.time_ns()
    for _ in range(count):
        core.publish_payload(PAYLOAD, event_time_ns=now, receive_time_ns=now)
    return [f for _, f in core.outbox]


def role_relay_producer(args: argparse.Namespace) -> dict[str, Any]:
    from protocol.message import Message, encode
    from protocol.system import Hello, Role

    frames = _frames(args.count)
    blob = b"".join(frames)
    del frames
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(args.socket)
    s.sendall(encode(Message(domain=4, tlvs=(Hello(role=Role.PRODUCER, protocol_version=1, source_id=SOURCE_ID,
                                                    name="bench-producer"),))))
    s.recv(65536)  # Welcome
    s.setblocking(True)
    t0 = time.perf_counter()
    view = memoryview(blob)
    step = 256 * 1024
    for off in range(0, len(blob), step):
        s.sendall(view[off : off + step])
    t1 = time.perf_counter()
    s.close()
    return {"sent": args.count, "seconds": t1 - t0}


async def _relay_consume(args: argparse.Namespace) -> dict[str, Any]:
    """One consumer. Per message, ``raw`` (the default): the client checks every header
    (magic/version, domain, length) and that every ``domain_seq`` is exactly the previous
    + 1 (runs of equal-size frames in one vectorised pass), and the bench checks that
    every batch starts right after the previous one -- no per-message Python object.
    ``--decode``: every frame fully decoded (``protocol.decode``: CRC, TLVs) into a
    ``Message``, and its ``domain_seq`` checked by the bench.
    """
    from relays.client import RelayConsumer

    n = 0
    t_first = t_last = 0.0
    lat: list[int] = []
    recv: list[int] = []  # --stamps: each message's receive time (time_ns), for a stage breakdown
    stamps = args.stamps
    latency = args.latency
    expect = 1
    async with RelayConsumer.connect("market_data", args.socket, from_seq=1, raw=not args.decode,
                                     name="bench") as c:
        print("ready", file=sys.stderr, flush=True)
        if args.decode:
            async for msgs in c.batches():
                if not n:
                    t_first = time.perf_counter()
                for m in msgs:
                    if m.domain_seq != expect:
                        raise SystemExit(f"sequence {m.domain_seq}, expected {expect}")
                    expect += 1
                n += len(msgs)
                if latency:
                    now = time.time_ns()
                    lat.extend(now - m.event_time_ns for m in msgs)
                if n >= args.count:
                    t_last = time.perf_counter()
                    break
        else:
            async for fb in c.frame_batches():
                if not n:
                    t_first = time.perf_counter()
                if fb.first_seq != expect:
                    raise SystemExit(f"batch starts at {fb.first_seq}, expected {expect}")
                expect += fb.count
                n += fb.count
                if latency:
                    now = time.time_ns()
                    data = fb.data
                    lat.extend(now - int.from_bytes(data[a + OFF_EVENT_TIME : a + OFF_EVENT_TIME + 8], "little")
                               for a in fb.offsets())
                    if stamps:
                        recv.extend([now] * fb.count)
                if n >= args.count:
                    t_last = time.perf_counter()
                    break
        counters = c.counters
    return {"received": n, "seconds": t_last - t_first, "rate": n / (t_last - t_first) if t_last > t_first else 0,
            "gaps": counters["gaps"], "duplicates": counters["duplicates"], "latency_ns": lat,
            **({"recv_ns": recv} if stamps else {})}


def role_relay_consumer(args: argparse.Namespace) -> dict[str, Any]:
    import trio

    return trio.run(_relay_consume, args)


async def _relay_latency_produce(args: argparse.Namespace) -> dict[str, Any]:
    import trio

    from relays.client import RelayProducer

    async with RelayProducer.connect("market_data", args.socket, source_id=SOURCE_ID + 1, name="bench-lat") as p:
        start = trio.current_time()
        interval = 1.0 / args.rate
        for i in range(args.count):
            due = start + i * interval
            if trio.current_time() < due:
                await trio.sleep_until(due)
            await p.publish_payload(PAYLOAD)
        await p.flush()
        elapsed = trio.current_time() - start
    return {"sent": args.count, "seconds": elapsed}


def role_relay_paced_producer(args: argparse.Namespace) -> dict[str, Any]:
    """The latency producer paced exactly like the pyzmq baseline's PUB: a plain blocking loop,
    ``time.sleep`` only for gaps over 0.5 ms, ``event_time_ns`` stamped right before one send
    per message (the frame built with ``ProducerCore.publish_payload``, CRC included). It
    measures the relay hop itself; ``relay-latency-producer`` adds the trio client on top."""
    from relays.client.core import ProducerCore

    core = ProducerCore(1, SOURCE_ID + 2, name="bench-paced")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(args.socket)
    s.sendall(core.start())  # Hello
    s.recv(65536)  # Welcome
    outbox = core.outbox
    t0 = time.perf_counter()
    for i in _paced(args.count, args.rate):
        now = time.time_ns()
        core.publish_payload(PAYLOAD, event_time_ns=now, receive_time_ns=now)
        s.sendall(outbox.pop()[1])
        if not i & 1023:  # drain acks so the relay never blocks on us
            try:
                while s.recv(65536, socket.MSG_DONTWAIT):
                    pass
            except BlockingIOError:
                pass
    t1 = time.perf_counter()
    time.sleep(0.5)
    s.close()
    return {"sent": args.count, "seconds": t1 - t0}


def role_relay_latency_producer(args: argparse.Namespace) -> dict[str, Any]:
    import trio

    return trio.run(_relay_latency_produce, args)


def role_zmq_pub(args: argparse.Namespace) -> dict[str, Any]:
    import zmq

    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.bind(args.endpoint)
    time.sleep(args.settle)  # slow joiners: let the subscribers connect
    sent = 0
    if args.rate:
        frame = bytearray(_frames(1)[0])
        t0 = time.perf_counter()
        for _ in _paced(args.count, args.rate):
            frame[EV] = time.time_ns().to_bytes(8, "little")
            pub.send(bytes(frame))
            sent += 1
        t1 = time.perf_counter()
    else:
        frames = _frames(args.count)
        t0 = time.perf_counter()
        send = pub.send
        for f in frames:
            send(f)
        t1 = time.perf_counter()
        sent = len(frames)
    time.sleep(0.5)
    pub.close(linger=-1)
    ctx.term()
    return {"sent": sent, "seconds": t1 - t0}


def role_zmq_sub(args: argparse.Namespace) -> dict[str, Any]:
    import zmq

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(args.endpoint)
    print("ready", file=sys.stderr, flush=True)
    recv = sub.recv
    n = 0
    lat: list[int] = []
    first = recv()
    t_first = time.perf_counter()
    n = 1
    if args.latency:
        lat.append(time.time_ns() - int.from_bytes(first[EV], "little"))
        while n < args.count:
            f = recv()
            lat.append(time.time_ns() - int.from_bytes(f[EV], "little"))
            n += 1
    else:
        while n < args.count:
            recv()
            n += 1
    t_last = time.perf_counter()
    sub.close()
    ctx.term()
    return {"received": n, "seconds": t_last - t_first, "rate": n / (t_last - t_first), "latency_ns": lat}


def role_sock_pub(args: argparse.Namespace) -> dict[str, Any]:
    """The bare-socket baseline's sender: the pyzmq PUB's pacing loop, one ``sendall`` per frame."""
    frame = bytearray(_frames(1)[0])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(args.socket)
    t0 = time.perf_counter()
    for _ in _paced(args.count, args.rate):
        frame[EV] = time.time_ns().to_bytes(8, "little")
        s.sendall(frame)
    t1 = time.perf_counter()
    time.sleep(0.2)
    s.close()
    return {"sent": args.count, "seconds": t1 - t0}


async def _trio_sock_sub(args: argparse.Namespace) -> dict[str, Any]:
    import trio

    listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await listener.bind(args.socket)
    listener.listen(1)
    print("ready", file=sys.stderr, flush=True)
    conn, _ = await listener.accept()
    stream = trio.SocketStream(conn)
    size = len(_frames(1)[0])
    buf = bytearray()
    lat: list[int] = []
    n = 0
    t_first = t_last = time.perf_counter()
    while n < args.count:
        data = await stream.receive_some(65536)
        if not data:
            break
        now = time.time_ns()
        if not n:
            t_first = time.perf_counter()
        buf += data
        k = len(buf) // size
        for i in range(k):
            lat.append(now - int.from_bytes(buf[i * size + OFF_EVENT_TIME : i * size + OFF_EVENT_TIME + 8], "little"))
        del buf[: k * size]
        n += k
    t_last = time.perf_counter()
    await stream.aclose()
    listener.close()
    return {"received": n, "seconds": t_last - t_first, "rate": n / (t_last - t_first) if t_last > t_first else 0,
            "latency_ns": lat}


def role_trio_sock_sub(args: argparse.Namespace) -> dict[str, Any]:
    import trio

    return trio.run(_trio_sock_sub, args)


ROLES = {
    "sock-pub": role_sock_pub,
    "trio-sock-sub": role_trio_sock_sub,
    "relay-producer": role_relay_producer,
    "relay-consumer": role_relay_consumer,
    "relay-latency-producer": role_relay_latency_producer,
    "relay-paced-producer": role_relay_paced_producer,
    "zmq-pub": role_zmq_pub,
    "zmq-sub": role_zmq_sub,
}


# ---------------------------------------------------------------------------- orchestration


def worker_parser(prog: str, doc: str, roles: Iterable[str], *, settle: float,
                  count_help: str) -> argparse.ArgumentParser:
    """A bench's parser with the arguments its workers (``--role``, hidden) and its phases share.

    The bench adds its own (and ``--json`` last); :func:`_spawn` starts a worker of a bench module.
    """
    ap = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    ap.add_argument("--role", choices=sorted(roles), help=argparse.SUPPRESS)
    ap.add_argument("--latency", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--stamps", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--settle", type=float, default=settle, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=1_000_000, help=count_help)
    ap.add_argument("--latency-rate", type=float, default=20000.0)
    ap.add_argument("--latency-seconds", type=float, default=5.0)
    return ap


def _spawn(role: str, *extra: str, module: str = "tools.bench.relay") -> subprocess.Popen[str]:
    """Start one worker: ``python -m <module> --role <role> ...``, its JSON result on stdout."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", module, "--role", role, *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_ready(p: subprocess.Popen[str]) -> None:
    assert p.stderr is not None
    line = p.stderr.readline()
    if "ready" not in line:
        raise RuntimeError(f"worker failed to start: {line}{p.stderr.read()}")


def _result(p: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, err = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"worker exited {p.returncode}: {err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _wait_socket(path: str, relay: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if relay.poll() is not None:
            raise RuntimeError("relay exited")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return
        except OSError:
            time.sleep(0.02)
        finally:
            s.close()
    raise RuntimeError("relay did not start")


def _percentiles(lat: list[int]) -> dict[str, float]:
    if not lat:
        return {}
    lat = sorted(lat)

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] / 1000.0

    return {"p50_us": q(0.50), "p99_us": q(0.99), "p999_us": q(0.999), "max_us": lat[-1] / 1000.0, "n": len(lat)}


def _run_relay_phase(
    tmp: Path, args: argparse.Namespace, *, latency: bool, decode: bool = False, client_producer: bool = False,
    validate: bool = True, consumers: int = 3,
) -> dict[str, Any]:
    tag = ("lat" if latency else "tp") + ("-dec" if decode else "") + ("-cli" if client_producer else "") + (
        "" if validate else "-noval") + f"-{args.fsync}-{args.latency_rate:g}-{consumers}"  # a fresh journal per phase
    sock = str(tmp / f"{tag}.sock")
    data = tmp / f"{tag}-data"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    relay = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "relay", "--domain", "market_data", "--socket", sock, "--data-dir",
         str(data), "--fsync", args.fsync, "--log-level", "WARNING"]
        + (["--no-verify"] if args.no_verify else [])
        + (["--no-validate"] if args.no_validate or not validate else []),
        cwd=ROOT, env=env, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_socket(sock, relay)
        count = int(args.latency_rate * args.latency_seconds) if latency else args.count
        extra = ["--socket", sock, "--count", str(count)] + (["--latency"] if latency else []) + (
            ["--decode"] if decode else [])
        procs = [_spawn("relay-consumer", *extra) for _ in range(consumers)]
        for c in procs:
            _wait_ready(c)
        if latency:
            prod = _spawn("relay-latency-producer" if client_producer else "relay-paced-producer", "--socket", sock,
                          "--count", str(count), "--rate", str(args.latency_rate))
        else:
            prod = _spawn("relay-producer", "--socket", sock, "--count", str(count))
        timeout = 120 + count / 20000
        results = [_result(c, timeout) for c in procs]
        _result(prod, timeout)
    finally:
        relay.terminate()
        relay.wait(30)
    return _summarise(results, latency)


def _run_zmq_phase(tmp: Path, args: argparse.Namespace, *, latency: bool, consumers: int = 3) -> dict[str, Any]:
    endpoint = f"ipc://{tmp}/{'lat' if latency else 'tp'}.zmq"
    count = int(args.latency_rate * args.latency_seconds) if latency else args.count
    extra = ["--endpoint", endpoint, "--count", str(count)] + (["--latency"] if latency else [])
    subs = [_spawn("zmq-sub", *extra) for _ in range(consumers)]
    for s in subs:
        _wait_ready(s)
    pub = _spawn("zmq-pub", "--endpoint", endpoint, "--count", str(count), "--settle", "1.0",
                 *(["--rate", str(args.latency_rate)] if latency else []))
    timeout = 120 + count / 20000
    results = [_result(s, timeout) for s in subs]
    _result(pub, timeout)
    return _summarise(results, latency)


def _run_socket_phase(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    path = str(tmp / f"bare-{args.latency_rate:g}.sock")
    count = int(args.latency_rate * args.latency_seconds)
    sub = _spawn("trio-sock-sub", "--socket", path, "--count", str(count))
    _wait_ready(sub)
    pub = _spawn("sock-pub", "--socket", path, "--count", str(count), "--rate", str(args.latency_rate))
    timeout = 120 + count / 20000
    result = _result(sub, timeout)
    _result(pub, timeout)
    return _percentiles(result["latency_ns"])


TABLE_RATES = (10, 100, 1_000, 20_000)
TABLE_COLUMNS = (("relay_batch", "relay (fsync batch)"), ("relay_interval", "relay (fsync interval)"),
                 ("zmq", "pyzmq PUB/SUB ipc"), ("trio_socket", "trio on a bare Unix socket"))
# The fan-out table (the issue's: three consumers per hop) and the same hop with one consumer, like for
# like with the bare socket, which has one reader: on two cores, the second and third consumer of a
# fan-out wait for a core while the first runs, a cost the bare socket never pays.
TABLE_FANOUTS = (3, 1)


def run_table(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every (fan-out, rate, transport) latency cell, then raw throughput of the relay and pyzmq.

    The bare socket has one reader whatever the fan-out: it is measured once per rate and shown in both."""
    tables: dict[str, dict[str, dict[str, Any]]] = {str(n): {} for n in TABLE_FANOUTS}
    for rate in TABLE_RATES:
        phase = argparse.Namespace(**vars(args))
        phase.latency_rate = float(rate)
        phase.latency_seconds = max(args.table_seconds, args.table_min_samples / rate)
        print(f"table: {rate:,}/s trio on a Unix socket", file=sys.stderr)
        bare = _run_socket_phase(tmp, phase)
        for n in TABLE_FANOUTS:
            row: dict[str, Any] = {}
            for policy in ("batch", "interval"):
                phase.fsync = policy
                print(f"table: {rate:,}/s relay fsync={policy}, {n} consumer(s) ({phase.latency_seconds:g} s)",
                      file=sys.stderr)
                row[f"relay_{policy}"] = _run_relay_phase(tmp, phase, latency=True, client_producer=True,
                                                          consumers=n)["latency"]
            print(f"table: {rate:,}/s pyzmq, {n} subscriber(s)", file=sys.stderr)
            row["zmq"] = _run_zmq_phase(tmp, phase, latency=True, consumers=n)["latency"]
            row["trio_socket"] = bare
            tables[str(n)][str(rate)] = row
    print("table: raw throughput, relay (fsync batch) and pyzmq", file=sys.stderr)
    tp = argparse.Namespace(**vars(args))
    tp.fsync = "batch"
    relay_tp = _run_relay_phase(tmp, tp, latency=False)
    zmq_tp = _run_zmq_phase(tmp, tp, latency=False)
    return {"latency_us": tables[str(TABLE_FANOUTS[0])], "latency_us_by_consumers": tables,
            "relay_throughput": relay_tp, "zmq_throughput": zmq_tp,
            "throughput_ratio_min": round(relay_tp["min_msgs_per_s"] / zmq_tp["min_msgs_per_s"], 2)}


def print_table(report: dict[str, Any]) -> None:
    for n, table in report["latency_us_by_consumers"].items():
        fan = "3 consumers per hop (relay and pyzmq)" if n == "3" else "1 consumer per hop, like the bare socket"
        print(f"one hop, one-way latency p50 / p99 in us (relay: client library both ends, journal on), {fan}:")
        print("| rate | " + " | ".join(label for _, label in TABLE_COLUMNS) + " |")
        print("|---|" + "---|" * len(TABLE_COLUMNS))
        for rate, row in table.items():
            cells = [f"{row[k]['p50_us']:.0f} / {row[k]['p99_us']:.0f}" if row.get(k) else "-"
                     for k, _ in TABLE_COLUMNS]
            print(f"| {int(rate):,}/s | " + " | ".join(cells) + " |")
        for rate, row in table.items():
            z, t = row["zmq"], row["trio_socket"]
            for k in ("relay_batch", "relay_interval"):
                r = row[k]
                print(f"{int(rate):>6,}/s {k:15s}: p50 {r['p50_us'] / z['p50_us']:.2f}x pyzmq, "
                      f"p99 {r['p99_us'] / z['p99_us']:.2f}x pyzmq, p50 {r['p50_us'] / t['p50_us']:.2f}x trio socket")
        print()
    print(f"raw throughput per consumer (min of 3): relay {report['relay_throughput']['min_msgs_per_s']:,} msgs/s, "
          f"pyzmq {report['zmq_throughput']['min_msgs_per_s']:,} msgs/s: {report['throughput_ratio_min']:.2f}x")


def _summarise(results: list[dict[str, Any]], latency: bool) -> dict[str, Any]:
    rates = [r["rate"] for r in results]
    out: dict[str, Any] = {
        "per_consumer_msgs_per_s": [round(r) for r in rates],
        "min_msgs_per_s": round(min(rates)),
        "mean_msgs_per_s": round(sum(rates) / len(rates)),
        "gaps": sum(r.get("gaps", 0) for r in results),
        "duplicates": sum(r.get("duplicates", 0) for r in results),
    }
    if latency:
        out["latency"] = _percentiles([x for r in results for x in r["latency_ns"]])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = worker_parser("alphapulse bench relay", __doc__, ROLES, settle=1.0, count_help="messages in the throughput phase")
    ap.add_argument("--socket", help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    ap.add_argument("--decode", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fsync", default="batch", choices=("batch", "interval", "off"))
    ap.add_argument("--no-verify", action="store_true", help="relay skips per-frame CRC checks")
    ap.add_argument("--no-validate", action="store_true",
                    help="relay skips decoding accepted frames' TLVs (without it, the bench also runs the raw "
                         "throughput phase once with validation off, to show its cost)")
    ap.add_argument("--skip-zmq", action="store_true")
    ap.add_argument("--table", action="store_true",
                    help="the latency table: 10 .. 20,000 msgs/s x relay (batch, interval), pyzmq, trio socket")
    ap.add_argument("--table-seconds", type=float, default=5.0, help="seconds per rate in --table")
    ap.add_argument("--table-min-samples", type=int, default=200, help="messages per rate at least, in --table")
    ap.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)

    if args.role:
        if args.role == "relay-latency-producer" and not args.rate:
            raise SystemExit("--rate required")
        result = ROLES[args.role](args)
        print(json.dumps(result))
        return 0

    if args.table:
        tmp = Path(tempfile.mkdtemp(prefix="apbench-", dir="/tmp"))
        try:
            table = run_table(tmp, args)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if args.json:
            print(json.dumps(table, indent=2))
        else:
            print_table(table)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="apbench-", dir="/tmp"))
    try:
        report: dict[str, Any] = {"count": args.count, "fsync": args.fsync, "verify": not args.no_verify,
                                  "validate": not args.no_validate}
        print(f"relay: throughput, {args.count:,} x 64 B, 1 producer -> 3 consumers, journal on (fsync={args.fsync})",
              file=sys.stderr)
        report["relay_throughput"] = _run_relay_phase(tmp, args, latency=False)
        if not args.no_validate:
            print("relay: the same, relay not validating TLVs (--no-validate): the cost of validation",
                  file=sys.stderr)
            report["relay_throughput_unvalidated"] = _run_relay_phase(tmp, args, latency=False, validate=False)
        print("relay: the same, consumers decoding every message", file=sys.stderr)
        report["relay_throughput_decoded"] = _run_relay_phase(tmp, args, latency=False, decode=True)
        print(f"relay: latency at {args.latency_rate:,.0f} msgs/s for {args.latency_seconds} s (paced producer)",
              file=sys.stderr)
        report["relay_latency"] = _run_relay_phase(tmp, args, latency=True)["latency"]
        print("relay: latency again, producer = RelayProducer client", file=sys.stderr)
        report["relay_latency_client_producer"] = _run_relay_phase(tmp, args, latency=True,
                                                                   client_producer=True)["latency"]
        if not args.skip_zmq:
            print("pyzmq PUB/SUB ipc, HWM 0: throughput", file=sys.stderr)
            report["zmq_throughput"] = _run_zmq_phase(tmp, args, latency=False)
            print("pyzmq PUB/SUB ipc, HWM 0: latency", file=sys.stderr)
            report["zmq_latency"] = _run_zmq_phase(tmp, args, latency=True)["latency"]
            report["throughput_ratio_min"] = round(
                report["relay_throughput"]["min_msgs_per_s"] / report["zmq_throughput"]["min_msgs_per_s"], 2
            )
            report["decoded_ratio_min"] = round(
                report["relay_throughput_decoded"]["min_msgs_per_s"] / report["zmq_throughput"]["min_msgs_per_s"], 2
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    rt, rd, rl = report["relay_throughput"], report["relay_throughput_decoded"], report["relay_latency"]
    rc = report["relay_latency_client_producer"]

    def lat(x: dict[str, Any]) -> str:
        return f"p50 {x['p50_us']:.0f} us, p99 {x['p99_us']:.0f} us, p99.9 {x['p999_us']:.0f} us (n={x['n']:,})"

    print(f"\nrelay (journal on, fsync={args.fsync}, CRC {'on' if not args.no_verify else 'off'}), per consumer, "
          "min of 3:")
    print(f"  raw     : {rt['min_msgs_per_s']:>10,} msgs/s (mean {rt['mean_msgs_per_s']:,}), gaps {rt['gaps']}, "
          f"duplicates {rt['duplicates']}")
    if "relay_throughput_unvalidated" in report:
        rv = report["relay_throughput_unvalidated"]
        print(f"  raw, relay not validating TLVs: {rv['min_msgs_per_s']:>10,} msgs/s (mean {rv['mean_msgs_per_s']:,}): "
              "the difference is what TLV validation on ingest costs")
    print("            per message: header + domain_seq contiguity checked by the client, no per-message object")
    print(f"  decoded : {rd['min_msgs_per_s']:>10,} msgs/s (mean {rd['mean_msgs_per_s']:,}), gaps {rd['gaps']}, "
          f"duplicates {rd['duplicates']}")
    print("            per message: protocol.decode (CRC, TLVs) into a Message, domain_seq checked")
    print(f"  latency @ {args.latency_rate:,.0f}/s, {args.latency_seconds:g} s, paced producer : {lat(rl)}")
    print(f"  latency @ {args.latency_rate:,.0f}/s, RelayProducer client  : {lat(rc)}")
    if not args.skip_zmq:
        zt, zl = report["zmq_throughput"], report["zmq_latency"]
        print("pyzmq PUB/SUB ipc HWM 0, per subscriber, min of 3 (one recv per message, no checks):")
        print(f"  raw     : {zt['min_msgs_per_s']:>10,} msgs/s (mean {zt['mean_msgs_per_s']:,})")
        print(f"  latency @ {args.latency_rate:,.0f}/s, {args.latency_seconds:g} s          : {lat(zl)}")
        print(f"ratio   : relay raw / pyzmq = {report['throughput_ratio_min']:.2f}x, "
              f"relay decoded / pyzmq = {report['decoded_ratio_min']:.2f}x (per-consumer minimum, same run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
