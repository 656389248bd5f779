"""Fault tests of the JetStream bridges with real processes, each under load.

Host A: relay -> loadgen producer, bridge out. NATS: nats-server(s) with JetStream file storage.
Host B: bridge in -> relay -> consumer process writing ``domain_seq source_id source_seq counter``
per message. After each fault every counter 1..N must have arrived exactly once, in order, with
the same domain sequence as on host A (``domain_seq == counter``: one producer into a fresh log).

Host A produces only once both bridges are at work (under load a bridge can take seconds to
start: a stream produced before then crosses in one burst, not while it flows). A test that kills
a bridge and checks that the new one resumed mid-stream holds the second half back until the
kill (``start_all(first=N // 2)``, then ``rest_of_load()``): otherwise a slow test could kill a
bridge that had already carried all N.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from natskit import NatsCluster, NatsServer
from relay_testkit import Procs, wait_listening

from protocol.header import Domain
from relays.core.nats import stream_name
from relays.jetstream import NatsConnection

N = 20000
RATE = 8000
BRIDGE_SID = 0xB1D60000 + 1


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def log_of(proc: object) -> str:
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def tally(path: Path, n: int, name: str) -> dict[str, int]:
    """sent / received / lost / duplicated, checking order and the sequence mapping."""
    rows = [tuple(int(x) for x in ln.split()) for ln in path.read_text().splitlines() if len(ln.split()) == 4]
    counters = [r[3] for r in rows]
    seen = set(counters)
    counts = {"sent": n, "received": len(rows), "lost": len(set(range(1, n + 1)) - seen),
              "duplicated": len(counters) - len(seen)}
    print(f"{name}: {json.dumps(counts)}")
    assert counts["lost"] == 0 and counts["duplicated"] == 0, counts
    assert counters == list(range(1, n + 1)), "out of order"
    # the domain sequence is stable across hosts; the bridge's source_seq is host A's domain sequence
    assert all(r[0] == r[3] and r[1] == BRIDGE_SID and r[2] == r[0] for r in rows)
    return counts


def stream_leader(url: str) -> str:
    async def ask() -> str:
        async with NatsConnection.open(url) as nc:
            info = await nc.js_api(f"STREAM.INFO.{stream_name(Domain.MARKET_DATA)}")
            assert info["config"]["num_replicas"] == 3 and len(info["cluster"]["replicas"]) == 2
            return str(info["cluster"]["leader"])

    return trio.run(ask)


class TwoHosts:
    """``relay_in_bridge``: host B's relay runs inside the bridge-in process (``--relay-data-dir``)."""

    def __init__(self, procs: Procs, d: Path, url: str, *, relay_in_bridge: bool = False) -> None:
        self.procs, self.d, self.url = procs, d, url
        self.a_sock, self.b_sock = d / "a.sock", d / "b.sock"
        self.out_file = d / "b-consumer.txt"
        self.relay_in_bridge = relay_in_bridge
        self.p: dict[str, object] = {}  # start_all's processes

    def relay_a(self):  # noqa: ANN201
        return self.procs.relay(self.a_sock, self.d / "a-data")

    def relay_b(self):  # noqa: ANN201
        return self.procs.relay(self.b_sock, self.d / "b-data")

    def bridge(self, direction: str):  # noqa: ANN201
        sock = self.a_sock if direction == "out" else self.b_sock
        hosting = direction == "in" and self.relay_in_bridge
        p = self.procs.start(f"bridge-{direction}", "-m", "tools.cli", "bridge", direction, "--domain",
                             "market_data", "--nats", self.url, "--socket", str(sock), *(
                                 ("--replicas", "3") if self.url.count(",") == 2 and direction == "out" else ()), *(
                                 ("--relay-data-dir", str(self.d / "b-data")) if hosting else ()))
        if hosting:
            wait_listening(self.b_sock, p)
        return p

    def consumer(self):  # noqa: ANN201
        return self.procs.consumer(self.b_sock, self.out_file, "--expect", str(N))

    def loadgen(self, count: int = N):  # noqa: ANN201
        """Host A's producer up to counter ``count`` (a later one goes on from where it stopped)."""
        return self.procs.loadgen(self.a_sock, rate=RATE, count=count)

    def start_all(self, first: int = N) -> dict[str, object]:
        """Every process; host A produces counters 1..``first`` once both bridges are at work."""
        p = {"relay_a": self.relay_a()}
        if not self.relay_in_bridge:
            p["relay_b"] = self.relay_b()
        p["out"] = self.bridge("out")
        p["in"] = self.bridge("in")
        p["consumer"] = self.consumer()
        wait_for(lambda: re.search(r"<bridge-out:market_data#\d+ [^>]*> subscribes from ", log_of(p["relay_a"]))
                 is not None, 60, "bridge out to read host A's relay")
        wait_for(lambda: re.search(r"bridge-in:market_data: consumer \S+ on ", log_of(p["in"])) is not None, 60,
                 "bridge in to consume the stream")
        p["loadgen"] = self.loadgen(first)
        self.p = p
        return p

    def rest_of_load(self):  # noqa: ANN201
        """After ``start_all(first=...)``: host A's producer for the rest, up to N."""
        assert self.p["loadgen"].wait(30) == 0  # type: ignore[attr-defined]
        return self.loadgen()

    def received(self) -> int:
        return count_lines(self.out_file)

    def finish(self, name: str) -> dict[str, int]:
        wait_for(lambda: Path(str(self.out_file) + ".done").exists(), 60, "the host-B consumer to see every message")
        return tally(self.out_file, N, name)


def test_kill9_bridge_out_and_restart(procs: Procs, short_dir: Path, nats: NatsServer) -> None:
    h = TwoHosts(procs, short_dir, nats.url)
    p = h.start_all(first=N // 2)
    wait_for(lambda: h.received() > N // 4, 30, "a quarter of the messages on host B")
    procs.kill9(p["out"])  # type: ignore[arg-type]
    rest = h.rest_of_load()
    time.sleep(0.3)
    out2 = h.bridge("out")
    h.finish("kill -9 bridge-out")
    assert rest.wait(30) == 0
    # the restarted bridge resumed mid-stream from what JetStream acknowledged (a stream message
    # is a batch of frames, so its stream sequence is at most the domain sequence of its last frame)
    resumed = re.search(r"stream last seq (\d+) holds domain seqs up to (\d+)", log_of(out2))
    assert resumed and 0 < int(resumed[1]) <= int(resumed[2]) < N


@pytest.mark.parametrize("relay_in_bridge", [False, True], ids=["separate-relay", "hosting-relay"])
def test_kill9_bridge_in_and_restart(procs: Procs, short_dir: Path, nats: NatsServer, relay_in_bridge: bool) -> None:
    """kill -9 bridge in, restart it: it resumes the stream after the last domain sequence its host's relay holds.
    Hosting host B's relay (``--relay-data-dir``), the kill takes the relay down with the bridge; the restarted
    process recovers the relay's journal (a new epoch) and the consumer, reconnected, goes on from where it was."""
    h = TwoHosts(procs, short_dir, nats.url, relay_in_bridge=relay_in_bridge)
    p = h.start_all(first=N // 2)
    wait_for(lambda: h.received() > N // 4, 30, "a quarter of the messages on host B")
    procs.kill9(p["in"])  # type: ignore[arg-type]
    h.rest_of_load()
    time.sleep(0.3)
    in2 = h.bridge("in")
    h.finish("kill -9 bridge-in hosting relay B" if relay_in_bridge else "kill -9 bridge-in")
    resumed = re.search(r"the local relay holds domain seqs up to (\d+)", log_of(in2))
    assert resumed and 0 < int(resumed[1]) < N
    if relay_in_bridge:
        assert (short_dir / "b-data" / "epoch").read_text().strip() == "2"  # the relay restarted with it


def test_restart_sending_relay_while_bridged(procs: Procs, short_dir: Path, nats: NatsServer) -> None:
    h = TwoHosts(procs, short_dir, nats.url)
    p = h.start_all()
    wait_for(lambda: h.received() > N // 3, 30, "a third of the messages on host B")
    procs.kill9(p["relay_a"])  # type: ignore[arg-type]
    time.sleep(0.3)
    relay2 = h.relay_a()  # recovers its journal under a new epoch; producer and bridge-out reconnect
    h.finish("restart sending relay (new epoch)")
    assert (short_dir / "a-data" / "epoch").read_text().strip() == "2"
    # the same bridge-out process resumed mid-log from the restarted relay
    resumed = re.search(r"<bridge-out:market_data#\d+ [^>]*> subscribes from (\d+)", log_of(relay2))
    assert resumed and 1 < int(resumed[1]) <= N


def test_cluster_kill9_one_node_and_restart(procs: Procs, short_dir: Path, cluster: NatsCluster) -> None:
    h = TwoHosts(procs, short_dir, cluster.url)
    p = h.start_all()
    wait_for(lambda: h.received() > N // 4, 60, "a quarter of the messages on host B")
    # kill the stream's leader: the node every publish acknowledgement comes from
    victim = next(s for s in cluster.servers if s.name == stream_leader(cluster.url))
    victim.kill9()
    time.sleep(1.0)
    victim.start()
    h.finish("3-node cluster, kill -9 one node")
    assert p["loadgen"].wait(30) == 0  # type: ignore[attr-defined]


def test_kill9_single_nats_server_and_restart(procs: Procs, short_dir: Path, nats: NatsServer) -> None:
    """Both bridges lose their server; it comes back from its own storage on the same port."""
    h = TwoHosts(procs, short_dir, nats.url)
    p = h.start_all()
    wait_for(lambda: h.received() > N // 4, 30, "a quarter of the messages on host B")
    nats.kill9()
    time.sleep(0.5)
    nats.start()
    h.finish("kill -9 the (single) nats-server")
    assert "reconnecting" in log_of(p["in"]) and "resynchronising" in log_of(p["out"])
