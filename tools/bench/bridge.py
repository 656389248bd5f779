"""Bridge benchmark: relay -> bridge out -> JetStream -> bridge in -> relay -> consumer.

    alphapulse bench bridge [--count 1000000] [--latency-rate 20000] [--latency-seconds 5]
                            [--skip-nats-py] [--json]

Every party is its own process (``tools.bench.relay``'s producer/consumer roles, the real
``alphapulse relay`` and ``alphapulse bridge`` processes, a nats-server with JetStream file
storage started for the run in a temporary directory on a free loopback port). One consumer.

* **bridged throughput**: ``--count`` 64-byte frames written to relay A as fast as it takes
  them; the consumer on relay B reports msgs/s from its first to its last message and checks
  that every batch continues the previous one (nothing lost, nothing twice).
  The stream message count of each bridged phase gives the mean batch size (frames per
  JetStream message).
  Relay A runs with the relay's defaults (as in the plain relay hop); relay B, fed by bridge in,
  as the README's host B runs it (``--fsync interval``: the stream already holds what it holds).
* **bridged latency**: a paced producer at ``--latency-rate`` for ``--latency-seconds``
  stamps ``event_time_ns`` right before sending (bridge-in keeps event times); the consumer on
  relay B computes receive - send per message. Each phase starts fresh bridges and starts producing
  once their one start-up collection-and-freeze (``GC_SETTLE`` s after start) is behind them: a
  pause a bridge takes once in its lifetime is not a steady-state latency.
* **plain relay hop** (same run): the same producer -> one relay -> the same consumer, for
  throughput and latency; *added* latency = bridged minus plain, per percentile.
* **bare nats-py** (same run): core NATS publish/subscribe of the same frames through the
  same nats-server (asyncio, one publish per frame, no JetStream, no checks), throughput and
  paced latency.

* **CPU per message** (both latency phases): each process's user and system CPU time, wake-ups
  (voluntary context switches) and preemptions from /proc while the messages cross, per message;
  the bridged total minus the relay hop's is the CPU the bridge adds. On a machine of two cores
  the path's processes queue for the CPUs, so its CPU per message is what sets the latency's
  tail, and unlike the latency it hardly depends on what else the machine runs.
* ``--stages``: the bridges stamp every batch at each hop (``bridge --trace``) and record their
  garbage-collection pauses (``gc.callbacks``); the consumer stamps each message; printed: where
  the latency goes, hop by hop, and the pauses.

Load average is printed before and after: the machine may be shared, so compare within a run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bridge.process import GC_SETTLE
from tools.bench import quantile
from tools.bench.relay import (
    EV,
    ROOT,
    _frames,
    _paced,
    _result,
    _spawn,
    _summarise,
    _wait_ready,
    _wait_socket,
    worker_parser,
)

SUBJECT = "bench.frames"
# relay B is run as the README's host B runs the relay bridge in feeds: everything in it is already
# in the stream, so it does not fsync every batch (specs/relay.md, "JetStream durability")
BRIDGED_RELAY = ("--fsync", "interval")


# ---------------------------------------------------------------------------- nats-py roles


def role_nats_pub(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    import nats

    from relays.client.core import ProducerCore

    async def go() -> dict[str, Any]:
        nc = await nats.connect(args.nats, pending_size=64 << 20, flush_timeout=60)
        await asyncio.sleep(args.settle)
        t0 = time.perf_counter()
        if args.rate:
            core = ProducerCore(1, 4243, name="bench-nats-paced")
            for i in _paced(args.count, args.rate):
                now = time.time_ns()
                core.publish_payload(b"\xfa\x0a" + bytes(10), event_time_ns=now, receive_time_ns=now)
                await nc.publish(SUBJECT, core.outbox.pop()[1])
                if not i & 63:
                    await nc.flush()
        else:
            for i, f in enumerate(_frames(args.count)):
                await nc.publish(SUBJECT, f)
                if not i & 4095:
                    await asyncio.sleep(0)
        await nc.flush()
        t1 = time.perf_counter()
        await nc.close()
        return {"sent": args.count, "seconds": t1 - t0}

    return asyncio.run(go())


def role_nats_sub(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    import nats

    async def go() -> dict[str, Any]:
        nc = await nats.connect(args.nats)
        done = asyncio.Event()
        st = {"n": 0, "t0": 0.0, "t1": 0.0}
        lat: list[int] = []

        async def on(msg: Any) -> None:
            if not st["n"]:
                st["t0"] = time.perf_counter()
            st["n"] += 1
            if args.latency:
                lat.append(time.time_ns() - int.from_bytes(msg.data[EV], "little"))
            if st["n"] >= args.count:
                st["t1"] = time.perf_counter()
                done.set()

        await nc.subscribe(SUBJECT, cb=on, pending_msgs_limit=-1, pending_bytes_limit=-1)
        await nc.flush()
        print("ready", file=sys.stderr, flush=True)
        await asyncio.wait_for(done.wait(), 120 + args.count / 20000)
        await nc.close()
        secs = st["t1"] - st["t0"]
        return {"received": st["n"], "seconds": secs, "rate": st["n"] / secs if secs > 0 else 0, "latency_ns": lat}

    return asyncio.run(go())


ROLES = {"nats-pub": role_nats_pub, "nats-sub": role_nats_sub}


def _spawn_own(role: str, *extra: str) -> subprocess.Popen[str]:
    return _spawn(role, *extra, module="tools.bench.bridge")


# ---------------------------------------------------------------------------- orchestration


class _Procs:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.names: dict[int, str] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        p = subprocess.Popen([sys.executable, "-m", "tools.cli", *args], cwd=ROOT, env=env, stdout=log,
                             stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(p)
        self.names[p.pid] = name
        return p

    def check_alive(self) -> None:
        """Raise, with the end of its log, if a relay or bridge of the phase has exited (the
        consumer would otherwise wait for messages that never come until its timeout)."""
        for p in self.procs:
            if p.poll() is not None:
                name = self.names[p.pid]
                tail = (self.tmp / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with status {p.returncode} during the phase:\n{tail}")

    def relay(self, name: str, *extra: str) -> str:
        sock = str(self.tmp / f"{name}.sock")
        p = self.start(name, "relay", "--domain", "market_data", "--socket", sock, "--data-dir",
                       str(self.tmp / f"{name}-data"), "--log-level", "WARNING", *extra)
        _wait_socket(sock, p)
        return sock

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()


def _consume(sock: str, count: int, latency: bool, stamps: bool = False) -> subprocess.Popen[str]:
    c = _spawn("relay-consumer", "--socket", sock, "--count", str(count), *(["--latency"] if latency else []),
               *(["--stamps"] if stamps else []))
    _wait_ready(c)
    return c


def _produce(sock: str, count: int, rate: float | None) -> subprocess.Popen[str]:
    if rate:
        return _spawn("relay-paced-producer", "--socket", sock, "--count", str(count), "--rate", str(rate))
    return _spawn("relay-producer", "--socket", sock, "--count", str(count))


def _phase(tmp: Path, nats_url: str | None, count: int, rate: float | None, tag: str,
           bridge_out_args: tuple[str, ...] = (), *, stages: dict[str, Any] | None = None, trace: bool = False,
           server_pid: int | None = None, relay_in_bridge: bool = False) -> dict[str, Any]:
    """One producer -> relay A [-> bridges -> relay B] -> one consumer. With ``stages`` (a dict
    to fill; paced phases only) it gets the CPU each process used (``cpu_usage``); with ``trace``
    too (bridged latency phases), the bridges keep per-batch stamps and the consumer each
    message's receive time, and ``stages`` gets the per-hop breakdown. ``relay_in_bridge``: relay B
    runs inside the bridge-in process (``bridge in --relay-data-dir``)."""
    d = tmp / tag
    d.mkdir()
    procs = _Procs(d)
    trace = trace and stages is not None and bool(nats_url) and bool(rate)
    watch = stages is not None and bool(rate)
    pids: dict[str, int] = {}
    workers: list[subprocess.Popen[str]] = []  # consumer and producer: ended with the phase, also when it fails
    try:
        a = procs.relay("a")
        pids["relay A"] = procs.procs[-1].pid
        sink = a
        if nats_url:
            if relay_in_bridge:  # relay B served inside bridge in (bridge in --relay-data-dir)
                b = str(d / "b.sock")
                host_relay: tuple[str, ...] = ("--relay-data-dir", str(d / "b-data"), "--relay-fsync", BRIDGED_RELAY[1])
            else:
                b = procs.relay("b", *BRIDGED_RELAY)
                pids["relay B"] = procs.procs[-1].pid
                host_relay = ()
            pids["bridge out"] = procs.start(
                "bridge-out", "bridge", "out", "--domain", "market_data", "--nats", nats_url, "--socket", a,
                "--log-level", "WARNING", *bridge_out_args, *(["--trace", str(d / "out.npz")] if trace else [])).pid
            bridge_in = procs.start(
                "bridge-in", "bridge", "in", "--domain", "market_data", "--nats", nats_url, "--socket", b,
                "--log-level", "WARNING", *host_relay, *(["--trace", str(d / "in.npz")] if trace else []))
            pids["bridge in + relay B" if relay_in_bridge else "bridge in"] = bridge_in.pid
            if relay_in_bridge:
                _wait_socket(b, bridge_in)
            if server_pid:
                pids["nats-server"] = server_pid
            sink = b
            _wait_bridges(a, b)
            # Each bridge moves what is alive after start-up out of the collector's reach once, GC_SETTLE s after
            # it starts (bridge.process._Bridge._gc_keeper): one full collection, 15-30 ms here, once per process
            # lifetime. Every phase starts fresh bridges, so without this wait that one start-up pause fell inside
            # the 5 s measured and made most of the p99 (the GC row of --stages showed it in both bridges).
            time.sleep(GC_SETTLE + 1.0)
        consumer = _consume(sink, count, latency=bool(rate), stamps=trace)
        workers.append(consumer)
        pids["consumer"] = consumer.pid
        cpu0 = _cpu_seconds(pids)
        prod = _produce(a, count, rate)
        workers.append(prod)
        pids["producer"] = prod.pid
        timeout = 120 + count / 5000
        if watch:  # the figures of the consumer (and producer) until just before they exit
            box: list[dict[str, Any]] = []
            reader = threading.Thread(target=lambda: box.append(_result(consumer, timeout)), daemon=True)
            reader.start()
            cpu1 = cpu0
            while reader.is_alive():
                cpu1 = {**cpu1, **_cpu_seconds(pids)}
                procs.check_alive()
                reader.join(0.1)
            if not box:
                raise RuntimeError("the consumer failed; see the lines above")
            result = box[0]
        else:
            result = _result(consumer, timeout)
        _result(prod, timeout)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        procs.stop()
    if trace and stages is not None:
        stages.update(stage_breakdown(result["latency_ns"], result.pop("recv_ns"), np.load(d / "out.npz"),
                                      np.load(d / "in.npz")))
    if watch and stages is not None:
        stages.update(cpu_usage(cpu0, cpu1, count))
    return _summarise([result], latency=bool(rate))


def cpu_usage(cpu0: dict[str, tuple[float, int, int, float]], cpu1: dict[str, tuple[float, int, int, float]],
              count: int) -> dict[str, Any]:
    """What each process used between two ``_cpu_seconds`` looks while ``count`` messages crossed:
    CPU seconds, wake-ups, preemptions, and CPU per message (user and system microseconds) -- what
    the path costs the machine, which on a shared machine says more than the latency does."""
    zero = (0.0, 0, 0, 0.0)  # the producer started after the first look
    per: dict[str, dict[str, float]] = {}
    for k, v in cpu1.items():
        b = cpu0.get(k, zero)
        system = v[3] - b[3]
        per[k] = {"user": round((v[0] - b[0] - system) / count * 1e6, 1), "system": round(system / count * 1e6, 1)}
    return {"messages": count, "cpu_seconds": {k: round(v[0] - cpu0.get(k, zero)[0], 2) for k, v in cpu1.items()},
            "cpu_us_per_message": per,
            "wakeups": {k: v[1] - cpu0.get(k, zero)[1] for k, v in cpu1.items()},
            "preemptions": {k: v[2] - cpu0.get(k, zero)[2] for k, v in cpu1.items()}}


def _cpu_seconds(pids: dict[str, int]) -> dict[str, tuple[float, int, int, float]]:
    """Per process so far (Linux /proc): user + system CPU seconds, voluntary context switches
    (wake-ups), involuntary ones (preemptions: runnable but another process had the CPU), and
    the system (kernel) part of the CPU seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            switches = [0, 0]  # summed over the process's threads (nats-server has many)
            for task in Path(f"/proc/{pid}/task").iterdir():
                for line in (task / "status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        switches[0] += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        switches[1] += int(line.split()[1])
        except OSError:
            continue
        out[name] = ((int(fields[11]) + int(fields[12])) / tick, switches[0], switches[1], int(fields[12]) / tick)
    return out


# each message's path, as (stage, from stamp, to stamp); the stamps are joined by domain sequence
STAGES = (
    ("producer -> relay A -> bridge out read", "event", "read"),
    ("bridge out: read -> cut into a batch", "read", "cut"),
    ("bridge out: cut -> written to NATS", "cut", "sent"),
    ("nats-server: stored and pushed to bridge in", "sent", "arrive"),
    ("bridge in: arrived -> forwarding loop", "arrive", "taken"),
    ("bridge in: forward_frames", "taken", "written"),
    ("relay B -> consumer", "written", "recv"),
)


def stage_breakdown(latency_ns: list[int], recv_ns: list[int], out: Any, inn: Any) -> dict[str, Any]:
    """Per hop, microseconds: p50/p99 of each stage over all messages, and each stage's mean over
    the slowest 1 % and 0.1 % of messages (end to end): where the tail comes from. ``out``/``inn``:
    the bridges' ``--trace`` tables (rows ``first D, last D, stamps...``); message ``D`` is the
    ``D``-th the consumer received (it checks contiguity)."""
    recv = np.asarray(recv_ns, dtype=np.int64)
    total = np.asarray(latency_ns, dtype=np.int64)
    d = np.arange(1, len(recv) + 1, dtype=np.int64)

    def stamp(table: Any, col: int) -> Any:
        i = np.searchsorted(table[:, 0], d, side="right") - 1
        if (i < 0).any() or (table[i, 1] < d).any():
            raise RuntimeError("a trace table does not cover every message")
        return table[i, col]

    t = {"event": recv - total, "recv": recv, "read": stamp(out["read"], 2), "cut": stamp(out["pub"], 2),
         "sent": stamp(out["pub"], 3), "acked": stamp(out["pub"], 4), "arrive": stamp(inn["arrive"], 2),
         "taken": stamp(inn["fwd"], 2), "written": stamp(inn["fwd"], 3)}
    order = np.argsort(total)
    tail1, tail01 = order[int(len(order) * 0.99):], order[int(len(order) * 0.999):]
    rows = []
    for name, a, b in (*STAGES, ("(bridge out's ack round trip)", "sent", "acked")):
        x = (t[b] - t[a]) / 1000.0
        values = x.tolist()
        rows.append({"stage": name, "p50_us": round(quantile(values, 0.50), 1),
                     "p99_us": round(quantile(values, 0.99), 1),
                     "slowest_1pct_mean_us": round(float(x[tail1].mean()), 1),
                     "slowest_01pct_mean_us": round(float(x[tail01].mean()), 1)})
    pauses = {}
    for who, tables in (("bridge out", out), ("bridge in", inn)):
        g = tables["gc"] if "gc" in tables else np.zeros((0, 4), dtype=np.int64)
        g = g[(g[:, 3] >= t["event"][0]) & (g[:, 2] <= t["recv"][-1])]  # during the phase
        ms = (g[:, 3] - g[:, 2]) / 1e6
        pauses[who] = {"collections": len(g), "full": int((g[:, 0] == 2).sum()),
                       "total_ms": round(float(ms.sum()), 2), "max_ms": round(float(ms.max()) if len(ms) else 0.0, 2)}
    return {"stages": rows, "end_to_end_slowest_1pct_mean_us": round(float(total[tail1].mean()) / 1000.0, 1),
            "end_to_end_slowest_01pct_mean_us": round(float(total[tail01].mean()) / 1000.0, 1), "gc": pauses}


def _wait_bridges(a: str, b: str, timeout: float = 60.0) -> None:
    """Until relay A has the bridge-out consumer and relay B the bridge-in producer (plus a
    second for bridge-in's JetStream consumer), so start-up is not measured as latency."""
    import trio

    from relays.client import request_stats

    async def names(sock: str, kind: str) -> list[str]:
        with trio.fail_after(5):
            st = await request_stats("market_data", sock)
        return [str(x.get("name", "")) for x in st[kind]]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(n.startswith("bridge-out") for n in trio.run(names, a, "consumers")) and any(
                n.startswith("bridge-in") for n in trio.run(names, b, "producers")):
            time.sleep(1.0)
            return
        time.sleep(0.2)
    raise RuntimeError("the bridges did not connect")


def _nats_py_phase(nats_url: str, count: int, rate: float | None) -> dict[str, Any]:
    extra = ["--nats", nats_url, "--count", str(count)]
    sub = _spawn_own("nats-sub", *extra, *(["--latency"] if rate else []))
    _wait_ready(sub)
    pub = _spawn_own("nats-pub", *extra, "--settle", "0.5", *(["--rate", str(rate)] if rate else []))
    timeout = 120 + count / 5000
    result = _result(sub, timeout)
    _result(pub, timeout)
    return _summarise([result], latency=bool(rate))


def _stream_messages(url: str) -> int:
    """How many stream messages (batches) the bridged phase produced."""
    import trio

    from protocol.header import Domain
    from relays.jetstream import stream_position

    return int(trio.run(stream_position, url, Domain.MARKET_DATA)["messages"])


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = worker_parser("alphapulse bench bridge", __doc__, ROLES, settle=0.5,
                       count_help="frames in the throughput phases (default 1M)")
    ap.add_argument("--nats", help=argparse.SUPPRESS)
    ap.add_argument("--skip-nats-py", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the result as JSON only")
    ap.add_argument("--max-inflight", type=int, default=None,
                    help="bridge out's --max-inflight (default: the bridge's own default)")
    ap.add_argument("--nats-gomaxprocs", type=int, default=None, metavar="N",
                    help="run nats-server with GOMAXPROCS=N (default: Go's, one per CPU), to compare in one sitting")
    ap.add_argument("--relay-in-bridge", action="store_true",
                    help="also run the bridged latency phase with relay B inside the bridge-in process (bridge in "
                         "--relay-data-dir: one process fewer), in the same run")
    ap.add_argument("--stages", action="store_true",
                    help="in the bridged latency phase, stamp every hop (bridge --trace) and print where the "
                         "latency goes, with the CPU seconds each process used")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if args.role:
        print(json.dumps(ROLES[args.role](args)))
        return 0

    from tools.nats_server import INSTALL_HINT, NatsServer, find_nats_server

    if find_nats_server() is None:
        print(f"alphapulse bench bridge: {INSTALL_HINT}", file=sys.stderr)
        return 2
    lat_count = int(args.latency_rate * args.latency_seconds)
    nats_env = {"GOMAXPROCS": str(args.nats_gomaxprocs)} if args.nats_gomaxprocs else None
    tmp = Path(tempfile.mkdtemp(prefix="apbb-", dir="/tmp"))
    report: dict[str, Any] = {"count": args.count, "latency_rate": args.latency_rate,
                              "latency_seconds": args.latency_seconds, "nats_gomaxprocs": args.nats_gomaxprocs,
                              "loadavg_before": _loadavg()}
    print(f"load average before: {report['loadavg_before']}", file=sys.stderr)
    try:
        print(f"plain relay hop: throughput, {args.count:,} x 64 B", file=sys.stderr)
        report["relay_throughput"] = _phase(tmp, None, args.count, None, "relay-tp")
        print(f"plain relay hop: latency at {args.latency_rate:,.0f} msgs/s", file=sys.stderr)
        relay_cpu: dict[str, Any] = {}
        report["relay_latency"] = _phase(tmp, None, lat_count, args.latency_rate, "relay-lat",
                                         stages=relay_cpu)["latency"]
        report["relay_latency_cpu"] = relay_cpu
        phases = [("bridge-tp", None, "bridge_throughput", False), ("bridge-lat", args.latency_rate, "bridge", False)]
        if args.relay_in_bridge:  # the same latency phase again, relay B inside bridge in, same run
            phases.append(("bridge-rib-lat", args.latency_rate, "bridge_rib", True))
        for tag, rate, key, rib in phases:
            # a fresh server and fresh relays per phase: the stream starts empty, D = S = D'
            server = NatsServer(tmp, f"{tag}-nats", env=nats_env).start()
            try:
                what = f"throughput, {args.count:,} x 64 B" if rate is None else f"latency at {rate:,.0f} msgs/s"
                path = "bridge in + relay B in one process" if rib else "bridge in -> relay"
                print(f"bridged (relay -> bridge out -> JetStream -> {path}): {what}", file=sys.stderr)
                extra = ("--max-inflight", str(args.max_inflight)) if args.max_inflight else ()
                stages: dict[str, Any] | None = {} if rate else None
                r = _phase(tmp, server.url, args.count if rate is None else lat_count, rate, tag, extra,
                           stages=stages, trace=args.stages and not rib,
                           server_pid=server.proc.pid if server.proc else None, relay_in_bridge=rib)
                if stages is not None:
                    report[f"{key}_latency_cpu"] = {k: stages[k] for k in CPU_KEYS}
                    if args.stages and not rib:
                        report["bridge_latency_stages"] = stages
                report[key if rate is None else f"{key}_latency"] = r if rate is None else r["latency"]
                report[f"{key}_stream_messages"] = _stream_messages(server.url)
            finally:
                server.stop()
        if not args.skip_nats_py:
            server = NatsServer(tmp, "core", env=nats_env).start()
            try:
                print("bare nats-py publish/subscribe (core NATS): throughput", file=sys.stderr)
                report["nats_py_throughput"] = _nats_py_phase(server.url, args.count, None)
                print("bare nats-py publish/subscribe (core NATS): latency", file=sys.stderr)
                report["nats_py_latency"] = _nats_py_phase(server.url, lat_count, args.latency_rate)["latency"]
            finally:
                server.stop()
        rl = report["relay_latency"]
        for key, added in (("bridge_latency", "added_latency_us"), ("bridge_rib_latency", "added_latency_rib_us")):
            if key in report:
                report[added] = {k: round(report[key][k] - rl[k], 1) for k in ("p50_us", "p99_us", "p999_us")}
    finally:
        report["loadavg_after"] = _loadavg()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {report['loadavg_after']}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0

    def lat(x: dict[str, Any]) -> str:
        return f"p50 {x['p50_us']:.0f} us, p99 {x['p99_us']:.0f} us, p99.9 {x['p999_us']:.0f} us (n={x['n']:,})"

    bt, rt = report["bridge_throughput"], report["relay_throughput"]
    print(f"\n{args.count:,} x 64 B frames, one consumer; latency at {args.latency_rate:,.0f} msgs/s for "
          f"{args.latency_seconds:g} s (paced producer)")
    print(f"load average: before {report['loadavg_before']}, after {report['loadavg_after']}"
          + (f"; nats-server GOMAXPROCS={args.nats_gomaxprocs}" if args.nats_gomaxprocs else ""))
    print(f"  bridged  : {bt['min_msgs_per_s']:>10,} msgs/s, gaps {bt['gaps']}, duplicates {bt['duplicates']}; "
          f"latency {lat(report['bridge_latency'])}")
    print(f"             frames per stream message (batch): {args.count / max(1, report['bridge_throughput_stream_messages']):,.1f} "
          f"at full speed, {lat_count / max(1, report['bridge_stream_messages']):,.1f} at {args.latency_rate:,.0f} msgs/s")
    print(f"  relay hop: {rt['min_msgs_per_s']:>10,} msgs/s; latency {lat(report['relay_latency'])}")
    if "nats_py_throughput" in report:
        print(f"  nats-py  : {report['nats_py_throughput']['min_msgs_per_s']:>10,} msgs/s (core pub/sub, no checks); "
              f"latency {lat(report['nats_py_latency'])}")
    a = report["added_latency_us"]
    print(f"  added by the bridge (bridged - relay hop): p50 {a['p50_us']:.0f} us, p99 {a['p99_us']:.0f} us, "
          f"p99.9 {a['p999_us']:.0f} us")
    if "added_latency_rib_us" in report:
        a = report["added_latency_rib_us"]
        print(f"  relay B inside bridge in: latency {lat(report['bridge_rib_latency'])}; added p50 {a['p50_us']:.0f} us, "
              f"p99 {a['p99_us']:.0f} us, p99.9 {a['p999_us']:.0f} us")
    print_cpu(report["relay_latency_cpu"], report["bridge_latency_cpu"], report.get("bridge_rib_latency_cpu"))
    if "bridge_latency_stages" in report:
        print_stages(report["bridge_latency_stages"])
    return 0


def print_stages(st: dict[str, Any]) -> None:
    print("\n  where the bridged latency goes (us)            p50      p99   slowest 1% mean   slowest 0.1% mean")
    for r in st["stages"]:
        print(f"  {r['stage']:<45} {r['p50_us']:>7.0f} {r['p99_us']:>8.0f} {r['slowest_1pct_mean_us']:>17.0f} "
              f"{r['slowest_01pct_mean_us']:>19.0f}")
    print(f"  {'end to end':<45} {'':>7} {'':>8} {st['end_to_end_slowest_1pct_mean_us']:>17.0f} "
          f"{st['end_to_end_slowest_01pct_mean_us']:>19.0f}")
    print("  garbage collections during the phase: " + ", ".join(
        f"{k} {v['collections']} ({v['full']} full), {v['total_ms']:.1f} ms in all, longest {v['max_ms']:.1f} ms"
        for k, v in st["gc"].items()))


CPU_KEYS = ("messages", "cpu_seconds", "cpu_us_per_message", "wakeups", "preemptions")


def cpu_per_message(cpu: dict[str, Any]) -> float:
    """Microseconds of CPU per message, all processes of a phase together."""
    return float(sum(v["user"] + v["system"] for v in cpu["cpu_us_per_message"].values()))


def print_cpu(relay: dict[str, Any], bridged: dict[str, Any], rib: dict[str, Any] | None = None) -> None:
    print(f"\n  CPU per message in the latency phases (us, user + system; wake-ups and preemptions per 1,000 messages)"
          f"\n  relay hop {cpu_per_message(relay):.1f} us, bridged {cpu_per_message(bridged):.1f} us: "
          f"the bridge adds {cpu_per_message(bridged) - cpu_per_message(relay):.1f} us"
          + (f"; with relay B inside bridge in {cpu_per_message(rib) - cpu_per_message(relay):.1f} us" if rib else ""))
    for name, st in (("relay hop", relay), ("bridged", bridged), *((("relay in br", rib),) if rib else ())):
        per, count = st["cpu_us_per_message"], max(1, st["messages"])
        print(f"  {name:<10}: " + ", ".join(
            f"{k} {v['user']:.1f}+{v['system']:.1f} ({st['wakeups'][k] * 1000 / count:.0f}/{st['preemptions'][k] * 1000 / count:.0f})"
            for k, v in per.items()))


if __name__ == "__main__":
    sys.exit(main())
