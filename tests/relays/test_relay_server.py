"""In-process relay tests: the trio layer over memory streams (MockClock) and real sockets."""

from __future__ import annotations

import dataclasses
import os
import socket as stdsocket
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import trio
import trio.testing
from relay_testkit import record_pushes

from protocol.header import HEADER_SIZE, Domain, check_prefix
from protocol.message import Message, decode, encode
from protocol.system import ConsumerClass, Goodbye, Heartbeat, Hello, Role, Subscribe, SubscribeMode, Welcome
from protocol.tlv import UnknownTLV
from relays.client import RelayConsumer, RelayProducer, request_stats
from relays.server import Relay, RelayAlreadyRunning, RelayConfig, serve


def sysf(*tlvs) -> bytes:  # type: ignore[no-untyped-def]
    return encode(Message(domain=Domain.SYSTEM, tlvs=tlvs))


def config(d: Path, **kw) -> RelayConfig:  # type: ignore[no-untyped-def]
    return RelayConfig(domain=Domain.MARKET_DATA, socket_path=str(d / "md.sock"), data_dir=str(d / "data"), **kw)


class MsgReader:
    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self.stream = stream
        self.buf = bytearray()

    async def next(self) -> Message | None:
        while True:
            if len(self.buf) >= HEADER_SIZE:
                n = check_prefix(self.buf, 0)
                if len(self.buf) >= n:
                    m = decode(bytes(self.buf[:n]))
                    del self.buf[:n]
                    return m
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.buf += data


async def test_idle_relay_heartbeats_and_declares_silent_peers_dead(
    short_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    relay = Relay(config(short_dir, fsync="off", heartbeat_interval=0.25, dead_after=8))
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as n:
        n.start_soon(relay._handle, server)
        await client.send_all(
            sysf(Hello(role=Role.CONSUMER, protocol_version=1, source_id=0, name="t"),
                 Subscribe(mode=SubscribeMode.FROM_NOW, from_seq=0, types=()))
        )
        reader = MsgReader(client)
        first = await reader.next()
        assert first is not None and isinstance(first.tlvs[0], Welcome)
        t0 = trio.current_time()
        beats = []
        while len(beats) < 4:
            m = await reader.next()
            assert m is not None
            beats.append((trio.current_time() - t0, m.tlvs[0]))
        assert all(isinstance(t, Heartbeat) and t.epoch == relay.epoch for _, t in beats)
        assert [round(t, 2) for t, _ in beats] == [0.25, 0.5, 0.75, 1.0]
        # we never sent a heartbeat: after 8 intervals of silence the relay hangs up
        while (await reader.next()) is not None:
            pass
        assert trio.current_time() - t0 == pytest.approx(2.0, abs=0.01)
    relay.close()


async def test_a_peer_is_declared_dead_after_the_silence_that_follows_its_last_byte(
    short_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The read loop moves its deadline lazily (issue 12): still never before ``silence`` after
    the last byte received, and at most silence/16 after."""
    relay = Relay(config(short_dir, fsync="off", heartbeat_interval=0.25, dead_after=8))
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as n:
        n.start_soon(relay._handle, server)
        await client.send_all(
            sysf(Hello(role=Role.CONSUMER, protocol_version=1, source_id=0, name="t"),
                 Subscribe(mode=SubscribeMode.FROM_NOW, from_seq=0, types=()))
        )
        reader = MsgReader(client)
        t0 = trio.current_time()
        for at in (0.05, 0.5, 0.9):  # our heartbeats, then silence
            await trio.sleep_until(t0 + at)
            await client.send_all(sysf(Heartbeat(epoch=0, head_seq=0)))
        while (await reader.next()) is not None:
            pass
        assert 0.9 + 2.0 <= trio.current_time() - t0 <= 0.9 + 2.0 + 2.0 / 16 + 0.01
    relay.close()


async def test_consumer_reconnects_when_the_relay_goes_silent(
    short_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = str(short_dir / "md.sock")
    sock = trio.socket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(8)
    accepted = []

    async def hold(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        await trio.sleep_forever()  # accept, then say nothing at all

    async with trio.open_nursery() as n:
        await n.start(trio.serve_listeners, hold, [trio.SocketListener(sock)])
        async with RelayConsumer.connect("market_data", path, heartbeat_interval=0.25, dead_after=4) as c:
            with trio.move_on_after(2.2):
                async for _ in c:
                    pass
            assert c.counters["reconnects"] == 2  # silent for 1 s, twice
        n.cancel_scope.cancel()


async def test_end_to_end_resume_and_stats(short_dir: Path) -> None:
    cfg = config(short_dir)
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        async with RelayProducer.connect("market_data", cfg.socket_path, source_id=3, name="p") as p:
            for i in range(2000):
                await p.publish(UnknownTLV(type_code=250, body=i.to_bytes(10, "little")))
            await p.flush()
            assert p.counters["acked"] == 2000
            got = []
            async with RelayConsumer.connect("market_data", cfg.socket_path, from_seq=0, name="c") as c:
                async for m in c:
                    got.append(m)
                    if len(got) == 700:
                        break
                last = c.last_seq
            async with RelayConsumer.connect("market_data", cfg.socket_path, from_seq=last + 1) as c:
                stats = await request_stats("market_data", cfg.socket_path)
                async for m in c:
                    got.append(m)
                    if len(got) == 2000:
                        break
        assert [m.domain_seq for m in got] == list(range(1, 2001))
        assert [int.from_bytes(m.tlvs[0].body, "little") for m in got] == list(range(2000))
        assert stats["head_seq"] == 2000 and stats["epoch"] == relay.epoch
        assert stats["producers"][0]["source_id"] == 3 and stats["producers"][0]["last_source_seq"] == 2000
        assert stats["consumers"][0]["next_seq"] >= 701
        n.cancel_scope.cancel()


async def test_stalled_consumer_is_cut_off_and_others_get_everything(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(short_dir, ring_bytes=64 * 1024, fsync="off")
    total = 30000
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        stalled = await trio.open_unix_socket(cfg.socket_path)
        await stalled.send_all(
            sysf(Hello(role=Role.CONSUMER, protocol_version=1, source_id=0, name="stalled"),
                 Subscribe(mode=SubscribeMode.FROM_NOW, from_seq=0, types=()))
        )
        await trio.sleep(0.05)
        got: list[int] = []
        all_in = trio.Event()

        async def fast() -> None:
            async with RelayConsumer.connect("market_data", cfg.socket_path, from_seq=1, raw=True, name="fast") as c:
                async for batch in c.batches():
                    got.extend(int.from_bytes(f[8:16], "little") for f in batch)
                    if len(got) >= total:
                        all_in.set()
                        return

        n.start_soon(fast)
        async with RelayProducer.connect("market_data", cfg.socket_path, source_id=5) as p:
            for i in range(total):
                await p.publish_payload(b"\xfa\x0a" + i.to_bytes(10, "little"))
            await p.flush()
        with trio.fail_after(20):
            await all_in.wait()
        assert got == list(range(1, total + 1))
        # the stalled one is cut off; in one process the fast one may lag and be cut too, and then
        # it resumes from the journal: either way it got everything exactly once, in order
        assert relay.cut_offs >= 1
        assert any("stalled" in r.getMessage() and "cut off" in r.getMessage() for r in caplog.records)
        # the stalled consumer's connection was closed by the relay (possibly mid-frame)
        with trio.fail_after(5):
            while await stalled.receive_some(1 << 20):
                pass
        n.cancel_scope.cancel()


async def test_newest_producer_connection_for_a_source_wins(short_dir: Path) -> None:
    cfg = config(short_dir, fsync="off")
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        hello = sysf(Hello(role=Role.PRODUCER, protocol_version=1, source_id=9, name="old"))
        old = await trio.open_unix_socket(cfg.socket_path)
        await old.send_all(hello)
        r_old = MsgReader(old)
        assert isinstance((await r_old.next()).tlvs[0], Welcome)  # type: ignore[union-attr]
        new = await trio.open_unix_socket(cfg.socket_path)
        await new.send_all(hello)
        assert isinstance((await MsgReader(new).next()).tlvs[0], Welcome)  # type: ignore[union-attr]
        with trio.fail_after(5):
            while (await r_old.next()) is not None:
                pass
        assert relay.producers[9].name == "old"  # the name of the *new* connection (same Hello)
        n.cancel_scope.cancel()


async def test_stale_socket_is_replaced_and_a_live_one_refused(short_dir: Path) -> None:
    cfg = config(short_dir, fsync="off")
    stale = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    stale.bind(cfg.socket_path)
    stale.close()  # a dead relay's socket file, nobody listening
    async with trio.open_nursery() as n:
        await n.start(serve, cfg)
        with pytest.raises(RelayAlreadyRunning):
            await Relay(dataclasses.replace(config(short_dir / "other", fsync="off"), socket_path=cfg.socket_path)).serve()
        n.cancel_scope.cancel()
    assert not os.path.exists(cfg.socket_path)  # removed on clean shutdown  # noqa: ASYNC240


async def test_goodbye_code_on_protocol_error(short_dir: Path) -> None:
    cfg = config(short_dir, fsync="off")
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        s = await trio.open_unix_socket(cfg.socket_path)
        await s.send_all(sysf(Heartbeat(epoch=0, head_seq=0)))  # anything but Hello first
        r = MsgReader(s)
        m = await r.next()
        assert m is not None and isinstance(m.tlvs[0], Goodbye) and "Hello" in m.tlvs[0].reason
        assert relay.protocol_errors == 1
        n.cancel_scope.cancel()


async def test_exceptions_from_the_body_come_out_as_themselves(short_dir: Path) -> None:
    cfg = config(short_dir, fsync="off")
    async with trio.open_nursery() as n:
        await n.start(serve, cfg)
        with pytest.raises(KeyError):
            async with RelayConsumer.connect("market_data", cfg.socket_path):
                raise KeyError("consumer body")
        with pytest.raises(KeyError):
            async with RelayProducer.connect("market_data", cfg.socket_path, source_id=1):
                raise KeyError("producer body")
        n.cancel_scope.cancel()


@pytest.mark.parametrize("fsync", ["interval", "off", "batch"])
async def test_fan_out_comes_before_the_producers_ack(short_dir: Path, fsync: str) -> None:
    """The consumers are served before the producer's Ack is written (an Ack first would hand the
    CPU to the producer while the frames wait)."""
    cfg = config(short_dir, fsync=fsync)
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        order = record_pushes(relay)
        async with RelayConsumer.connect("market_data", cfg.socket_path, from_seq=0, name="c") as c:
            async with RelayProducer.connect("market_data", cfg.socket_path, source_id=3, name="p") as p:
                await p.publish(UnknownTLV(type_code=250, body=b"x"))
                await p.flush()
                m = await c.__anext__()
                assert m.domain_seq == 1
        assert "c" in order and "p" in order  # the ack went out through _push too
        assert order.index("c") < order.index("p")
        n.cancel_scope.cancel()


@pytest.mark.parametrize("fsync", ["interval", "batch"])
async def test_an_ack_means_the_frames_are_fsynced(short_dir: Path, fsync: str) -> None:
    """Under ``interval`` too, a producer is acknowledged only once the periodic fsync covered its
    frames (one Ack per commit instead of one per read: a wake-up of the producer and a send
    less per message), so an Ack means durable under either policy."""
    cfg = config(short_dir, fsync=fsync, fsync_interval=0.3)
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        async with RelayProducer.connect("market_data", cfg.socket_path, source_id=3, name="p") as p:
            for _ in range(3):
                await p.publish(UnknownTLV(type_code=250, body=b"x"))
            with trio.fail_after(5):
                await p.flush()
            assert relay.journal.synced_seq >= 3  # acked => on disk
            assert p.counters["acked"] == 3
        n.cancel_scope.cancel()


async def test_one_ack_per_producer_per_commit(short_dir: Path) -> None:
    """A commit that covers several reads of one producer acknowledges it once, with the last
    source sequence covered (not once per read: a send per read for nothing)."""
    cfg = config(short_dir, fsync="interval", fsync_interval=0.5)
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        pushed = record_pushes(relay)
        async with RelayProducer.connect("market_data", cfg.socket_path, source_id=3, name="p") as p:
            for _ in range(10):
                await p.publish(UnknownTLV(type_code=250, body=b"x"))
                await trio.sleep(0.01)  # each message its own read
            with trio.fail_after(5):
                await p.flush()
            assert relay.stats()["producers"][0]["received"] == 10
            assert 1 <= pushed.count("p") <= 2  # a commit might fall between two reads
        n.cancel_scope.cancel()


async def test_a_failed_fsync_stops_the_relay(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An fsync error in the commit thread is not swallowed: no Ack is sent for what it did not
    cover, and the relay stops with the error."""
    import errno

    import relays.server

    def failing(fds: list[int], dir_fd: int | None) -> None:
        raise OSError(errno.EIO, "injected fsync failure")

    monkeypatch.setattr(relays.server, "_fsync_all", failing)
    cfg = config(short_dir, fsync="batch")
    with pytest.raises(BaseExceptionGroup) as info, trio.fail_after(10):
        async with trio.open_nursery() as n:
            await n.start(serve, cfg)
            async with RelayProducer.connect("market_data", cfg.socket_path, source_id=3, name="p") as p:
                await p.publish(UnknownTLV(type_code=250, body=b"x"))
                await trio.sleep_forever()
    errors = list(info.value.exceptions)
    while any(isinstance(e, BaseExceptionGroup) for e in errors):
        errors = [x for e in errors for x in (e.exceptions if isinstance(e, BaseExceptionGroup) else [e])]
    assert any(isinstance(e, OSError) and e.errno == errno.EIO for e in errors), errors


async def test_an_idle_hop_reads_once_per_wake_up(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relay, consumer and producer each read once per wake-up when their peer is idle: after a
    short read that had to wait, they wait for the socket before the next recv instead of trying
    one that fails with EAGAIN (a syscall and an exception per message at a moderate rate)."""
    failed = [0]

    class CountingSocket(stdsocket.socket):
        def recv(self, *args):  # type: ignore[no-untyped-def]
            try:
                return super().recv(*args)
            except BlockingIOError:
                failed[0] += 1
                raise

    monkeypatch.setattr(stdsocket, "socket", CountingSocket)  # every socket this test process makes
    cfg = config(short_dir, fsync="off")  # an Ack per message: the producer reads once per message too
    async with trio.open_nursery() as n:
        await n.start(serve, cfg)
        async with RelayConsumer.connect("market_data", cfg.socket_path, from_seq=0, name="c") as c:
            await c.subscribed()
            async with RelayProducer.connect("market_data", cfg.socket_path, source_id=3, name="p") as p:
                await p.flush()
                await trio.sleep(0.05)
                failed[0] = 0
                for i in range(20):
                    await p.publish(UnknownTLV(type_code=250, body=b"x"))
                    m = await c.__anext__()
                    assert m.source_seq == i + 1
                    await p.flush()
                    await trio.sleep(0.002)  # everyone idle again
                assert failed[0] <= 3, f"{failed[0]} reads found nothing for 20 messages"
        n.cancel_scope.cancel()


async def test_a_relay_process_freezes_its_long_lived_objects_out_of_the_gc(short_dir: Path) -> None:
    import gc

    from relays.daemon import build_parser, config_from_args

    args = build_parser().parse_args(["--domain", "market_data", "--socket", str(short_dir / "md.sock"),
                                      "--data-dir", str(short_dir / "data")])
    assert config_from_args(args).freeze_gc  # the daemon turns it on
    cfg = config(short_dir, freeze_gc=True, gc_freeze_interval=0.05)

    async def next_round(relay: Relay) -> None:
        """Until the relay has frozen once more: a round is synchronous, so it saw all made before now."""
        rounds = relay.gc_freezes
        with trio.fail_after(10):
            while relay.gc_freezes == rounds:  # noqa: ASYNC110  (polling the relay's state from outside)
                await trio.sleep(0.01)

    def unfrozen(objs: list[object]) -> int:
        """How many of ``objs`` a collection would still walk (in generations 0-2, not the permanent one).
        The freeze count cannot say it: frozen objects that die (the relay's ticker's sleep, once a
        second) leave the permanent generation, so the count can grow by less than what was frozen."""
        walked = {id(o) for o in gc.get_objects()}
        return sum(id(o) in walked for o in objs)

    try:
        async with trio.open_nursery() as n:
            relay = await n.start(serve, cfg)
            await next_round(relay)
            assert gc.get_freeze_count() > 0
            keep = [[i] for i in range(1000)]  # created after start-up: frozen by the next round
            assert all(gc.is_tracked(o) for o in keep) and unfrozen([keep, *keep]) == len(keep) + 1
            # waited for, not slept on: a process descheduled past the keeper's next round wakes the keeper
            # and this task in one batch, in either order (so a fixed 0.2 s could fail on a loaded machine)
            await next_round(relay)
            assert unfrozen([keep, *keep]) == 0
            assert gc.get_freeze_count() >= len(keep) + 1
            n.cancel_scope.cancel()
    finally:
        gc.unfreeze()  # a test process is not a relay process


# ---- issue 17, item 2: resource exhaustion ----


async def test_pre_hello_bytes_are_capped(short_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A connection used to buffer up to 1 MiB of partial frame before saying Hello."""
    cfg = config(short_dir, fsync="off")
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        s = await trio.open_unix_socket(cfg.socket_path)
        # the start of a big control frame: a relay waits for the rest of it before reading it
        partial = encode(Message(domain=Domain.SYSTEM, tlvs=(UnknownTLV(type_code=250, body=bytes(200_000)),)))
        with trio.fail_after(5):
            try:
                await s.send_all(partial[:100_000])  # no Hello, and no end of frame yet
                m = await MsgReader(s).next()  # the Goodbye, unless the close reset the connection first
                assert m is None or isinstance(m.tlvs[0], Goodbye)
            except trio.BrokenResourceError:
                pass
            while relay.conns:  # noqa: ASYNC110  (polling the relay's state from outside)
                await trio.sleep(0.01)
        assert relay.protocol_errors == 1
        assert "bytes buffered without a complete Hello" in caplog.text
        n.cancel_scope.cancel()


async def test_pre_hello_time_is_capped(short_dir: Path, autojump_clock: trio.testing.MockClock) -> None:
    """A connection trickling a byte a second (never silent long enough to be declared dead)
    is dropped when hello_timeout has passed without a Hello."""
    relay = Relay(config(short_dir, fsync="off", hello_timeout=5.0))
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as n:
        n.start_soon(relay._handle, server)
        t0 = trio.current_time()
        hello = sysf(Hello(role=Role.CONSUMER, protocol_version=1, source_id=0, name="slow"))
        with trio.fail_after(60):
            for b in hello:
                try:
                    await client.send_all(bytes([b]))
                except trio.BrokenResourceError:
                    break
                await trio.sleep(1.0)
        assert trio.current_time() - t0 == pytest.approx(6.0, abs=1.01)  # not len(hello) seconds
        assert relay.protocol_errors == 1
    relay.close()


async def test_connections_over_the_cap_are_refused_and_the_rest_served(short_dir: Path) -> None:
    cfg = config(short_dir, fsync="off", max_connections=3)
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        held = [await trio.open_unix_socket(cfg.socket_path) for _ in range(3)]
        await trio.sleep(0.1)
        extra = await trio.open_unix_socket(cfg.socket_path)
        with trio.fail_after(5):
            m = await MsgReader(extra).next()
            assert m is not None and isinstance(m.tlvs[0], Goodbye) and "too many" in m.tlvs[0].reason
            assert await MsgReader(extra).next() is None
        assert relay.refused_connections == 1
        for s in held:
            await s.aclose()
        await trio.sleep(0.1)
        assert (await request_stats("market_data", cfg.socket_path))["head_seq"] == 0
        n.cancel_scope.cancel()


def _fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.parametrize("cap", ["default", "above-the-limit"])
def test_relay_survives_running_out_of_descriptors(procs, short_dir: Path, cap: str) -> None:  # type: ignore[no-untyped-def]
    """The relay used to die at the descriptor limit (an os.dup per connection raised EMFILE out
    of its handler) and remove its socket. With a soft limit of 128: 300 connections."""
    import socket as s_
    import time

    from relay_testkit import wait_listening

    sock, data = short_dir / "md.sock", short_dir / "data"
    extra = ("--max-connections", "5000") if cap == "above-the-limit" else ()
    relay = procs.relay(sock, data, "--fsync", "off", *extra, nofile=128)
    base = _fd_count(relay.pid)
    conns = []
    for _ in range(300):
        c = s_.socket(s_.AF_UNIX, s_.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(str(sock))
        except BlockingIOError:  # the backlog is full while the relay is out of descriptors
            pass
        conns.append(c)
    time.sleep(1.5)
    assert relay.poll() is None, "relay died"
    assert sock.exists()
    if cap == "default":
        # one descriptor per connection, never more than the limit minus the reserve
        assert _fd_count(relay.pid) <= base + 128 - 64 + 1
    for c in conns:
        c.close()
    time.sleep(0.5)
    wait_listening(sock, relay)
    # and it still works
    a = short_dir / "a.txt"
    procs.consumer(sock, a, "--expect", "500")
    time.sleep(0.3)
    lg = procs.loadgen(sock, rate=5000, count=500)
    assert lg.wait(30) == 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (a.exists() and a.read_text().count("\n") >= 500):
        time.sleep(0.1)
    assert a.read_text().count("\n") >= 500
    assert relay.poll() is None and sock.exists()
    log = Path(relay.log_path).read_text()  # type: ignore[attr-defined]
    # the only tracebacks are trio's accept loop saying it waits for a descriptor (above the limit)
    assert "relays/server.py" not in log and log.count("Traceback") == log.count("_serve_one_listener"), log[-3000:]


# ---- issue 17, item 3: producers are authenticated ----

_SPOOF = r"""
import socket, sys
from protocol.header import Domain
from protocol.message import Message, encode
from protocol.system import Hello, Role
from protocol.tlv import UnknownTLV
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
hello = encode(Message(domain=Domain.SYSTEM, tlvs=(Hello(role=Role.PRODUCER, protocol_version=1, source_id=17,
                                                         name="spoof"),)))
jump = encode(Message(domain=Domain.MARKET_DATA, source_id=17, source_seq=10**9,
                      tlvs=(UnknownTLV(type_code=250, body=b"spoofed!!!"),)))
s.sendall(hello + jump)
s.settimeout(5)
got = b""
while True:
    try:
        d = s.recv(65536)
    except (TimeoutError, ConnectionResetError):
        break
    if not d:
        break
    got += d
sys.stdout.write(got.hex())
"""


async def test_a_live_producers_source_id_cannot_be_taken_over(short_dir: Path) -> None:
    """The newest Hello for a source id used to win: another process saying Hello as source 17
    and jumping the source sequence made the real producer's in-flight frames be dropped."""
    import sys

    cfg = config(short_dir, fsync="off")
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        async with RelayProducer.connect("market_data", cfg.socket_path, source_id=17, name="real") as p:
            for i in range(100):
                await p.publish(UnknownTLV(type_code=250, body=i.to_bytes(10, "little")))
            await p.flush()
            res = await trio.run_process([sys.executable, "-c", _SPOOF, cfg.socket_path], capture_stdout=True,
                                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2])))
            reply = bytes.fromhex(res.stdout.decode())
            goodbyes = []
            pos = 0
            while pos < len(reply):
                size = check_prefix(reply, pos)
                goodbyes += [t for t in decode(reply[pos:pos + size]).tlvs if isinstance(t, Goodbye)]
                pos += size
            assert goodbyes and "held by another live process" in goodbyes[0].reason
            for i in range(100, 200):
                await p.publish(UnknownTLV(type_code=250, body=i.to_bytes(10, "little")))
            await p.flush()
            assert p.counters["acked"] == 200 and p.counters["reconnects"] == 0
        got = []
        async with RelayConsumer.connect("market_data", cfg.socket_path, from_seq=0) as c:
            async for m in c:
                got.append(int.from_bytes(m.tlvs[0].body, "little"))
                if len(got) == 200:
                    break
        assert got == list(range(200)) and relay.seq.last_source_seq[17] == 200
        n.cancel_scope.cancel()


@pytest.mark.parametrize("rule", ["producers", "allowed_uids"])
async def test_uids_not_configured_are_refused(short_dir: Path, rule: str) -> None:
    other = os.getuid() + 1
    kw = {"producers": {17: frozenset({other})}} if rule == "producers" else {"allowed_uids": frozenset({other})}
    cfg = config(short_dir, fsync="off", **kw)
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        s = await trio.open_unix_socket(cfg.socket_path)
        if rule == "producers":  # (a uid that may not connect is told so before it says anything)
            await s.send_all(sysf(Hello(role=Role.PRODUCER, protocol_version=1, source_id=17, name="p")))
        with trio.fail_after(5):
            msgs = []
            r = MsgReader(s)
            while (m := await r.next()) is not None:
                msgs.append(m)
        reasons = [t.reason for m in msgs for t in m.tlvs if isinstance(t, Goodbye)]
        assert reasons and f"uid {os.getuid()} may not" in reasons[0]
        assert 17 not in relay.producers and relay.protocol_errors == 1
        n.cancel_scope.cancel()


# ---- issue 17, item 4: journal corruption is contained ----


async def test_damaged_history_gives_consumers_a_resync_not_a_crash(short_dir: Path) -> None:
    """A flipped byte in an older segment used to crash the relay ("sequence ... is neither in
    the ring nor in the journal") as soon as a consumer read that history."""
    from protocol.system import Resync, ResyncReason

    cfg = config(short_dir, fsync="off", segment_bytes=4096, retention_bytes=1 << 20, ring_bytes=4096)
    async with trio.open_nursery() as n:
        await n.start(serve, cfg)
        async with RelayProducer.connect("market_data", cfg.socket_path, source_id=3) as p:
            for i in range(400):
                await p.publish(UnknownTLV(type_code=250, body=i.to_bytes(10, "little")))
            await p.flush()
        n.cancel_scope.cancel()
    seg = sorted((short_dir / "data" / "journal").glob("*.seg"))[1]
    raw = bytearray(seg.read_bytes())
    first = int(seg.stem)
    raw[64 * 2 + 60] ^= 0x40  # the third frame of the second segment
    seg.write_bytes(raw)
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        assert relay.stats()["journal_damaged_ranges"] == 1
        s = await trio.open_unix_socket(cfg.socket_path)
        await s.send_all(sysf(Hello(role=Role.CONSUMER, protocol_version=1, source_id=0, name="c"),
                              Subscribe(mode=SubscribeMode.FROM_OLDEST, from_seq=0, types=())))
        r = MsgReader(s)
        seqs, resyncs = [], []
        with trio.fail_after(10):
            while len(seqs) < 399:
                m = await r.next()
                assert m is not None
                if m.domain == Domain.SYSTEM:
                    resyncs += [t for t in m.tlvs if isinstance(t, Resync)]
                else:
                    seqs.append(m.domain_seq)
        assert [(x.requested_seq, x.oldest_available, x.reason) for x in resyncs] == [
            (first + 2, first + 3, ResyncReason.CORRUPT)]
        assert seqs == [q for q in range(1, 401) if q != first + 2]
        n.cancel_scope.cancel()


# ---- specs/relay.md lists every code the relay sends, with its value ----

RELAY_SPEC = Path(__file__).resolve().parents[2] / "specs" / "relay.md"


def _spec_table(marker: str) -> list[list[str]]:
    """The rows of the table under ``<!-- marker: ... -->`` in specs/relay.md (header and rule dropped)."""
    text = RELAY_SPEC.read_text(encoding="utf-8")
    assert f"<!-- {marker}:" in text, f"specs/relay.md has no {marker}"
    lines = text.split(f"<!-- {marker}:", 1)[1].splitlines()[1:]
    rows = []
    for line in lines:
        if not line.strip():
            if rows:
                break
            continue
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows[2:]


def test_the_spec_lists_every_resync_reason_and_goodbye_code() -> None:
    from protocol.system import ResyncReason
    from relays.server import GoodbyeCode

    assert [(int(r[0]), r[1]) for r in _spec_table("resync-table")] == [(int(v), v.name) for v in ResyncReason]
    codes = sorted((v, k) for k, v in vars(GoodbyeCode).items() if k.isupper())
    assert [int(r[0]) for r in _spec_table("goodbye-table")] == [v for v, _ in codes]


async def test_a_filtered_consumer_passes_what_it_filters_out(short_dir: Path) -> None:
    """A live consumer subscribed to one type, behind more non-matching frames than one ring scan
    covers (65,536): the relay must move its cursor past what it filtered out and deliver the next
    matching frame. It once left the cursor where it was whenever a scan matched nothing, so the
    consumer rescanned the same frames for ever and never received the frame after them."""
    cfg = config(short_dir, fsync="off")
    async with trio.open_nursery() as n:
        await n.start(serve, cfg)
        async with RelayProducer.connect("market_data", cfg.socket_path, source_id=3, name="p") as p, \
                RelayConsumer.connect("market_data", cfg.socket_path, types=[251], name="c") as c:
            for i in range(70_000):
                await p.publish(UnknownTLV(type_code=250, body=i.to_bytes(4, "little")))
            await p.flush()
            await p.publish(UnknownTLV(type_code=251, body=b"wanted"))
            await p.flush()
            with trio.fail_after(10):
                m = await c.__anext__()
            assert m.tlvs[0].type_code == 251 and m.tlvs[0].body == b"wanted" and m.domain_seq == 70_001
            stats = await request_stats("market_data", cfg.socket_path)
            assert stats["consumers"][0]["next_seq"] == 70_002
        n.cancel_scope.cancel()


async def _until(check, what: str) -> None:  # type: ignore[no-untyped-def]
    """Poll ``check()`` (relay state that has no event) for up to 10 s."""
    with trio.move_on_after(10):
        while not check():  # noqa: ASYNC110 - the relay has no event for this
            await trio.sleep(0.005)
        return
    raise AssertionError(f"timed out waiting for {what}")


async def test_fan_out_serves_critical_then_normal_then_background(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Consumers of the three classes subscribe in the wrong order -- an old-style one that sends no
    ConsumerClass, one whose class value this relay does not know, one that sends its class before its
    Subscribe among them --: every fan-out serves critical, then normal, then background, each in
    subscription order; stats show that order and each class; everyone still gets every frame. A
    consumer that leaves or arrives later is taken out of / put into its place."""
    cfg = config(short_dir, fsync="off")
    total = 300
    expected = ["crit-strategy", "crit-executor", "old-risk", "odd", "normal-md", "bg-archiver", "bg-portfolio"]
    caplog.set_level("WARNING", logger="relays.server")
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        pushed = record_pushes(relay)
        subscribed = lambda: [c.name for c in relay.consumers]  # noqa: E731
        async with AsyncExitStack() as stack:
            clients: dict[str, RelayConsumer] = {}
            raw: dict[str, trio.SocketStream] = {}

            async def client(name: str, latency: str) -> None:
                clients[name] = await stack.enter_async_context(RelayConsumer.connect(
                    "market_data", cfg.socket_path, from_seq=1, raw=True, name=name, latency=latency))
                await _until(lambda: name in subscribed(), f"{name} subscribed")

            async def by_hand(name: str, *tlvs) -> None:  # type: ignore[no-untyped-def]
                s = await trio.open_unix_socket(cfg.socket_path)
                stack.push_async_callback(s.aclose)
                await s.send_all(sysf(Hello(role=Role.CONSUMER, protocol_version=1, source_id=0, name=name))
                                 + sysf(*tlvs))
                raw[name] = s
                await _until(lambda: name in subscribed(), f"{name} subscribed")

            sub = Subscribe(mode=SubscribeMode.FROM_SEQ, from_seq=1, types=())
            await client("bg-archiver", "background")
            await by_hand("old-risk", sub)  # what an older client sends: no class record
            await client("crit-strategy", "critical")
            await by_hand("odd", sub, ConsumerClass(latency=9))  # a class this relay does not know
            await client("bg-portfolio", "background")
            await by_hand("crit-executor", ConsumerClass(latency=1), sub)  # the class before the Subscribe
            await client("normal-md", "normal")

            assert [c.name for c in relay.fanout] == expected
            stats = await request_stats("market_data", cfg.socket_path)
            assert [(c["name"], c["latency"]) for c in stats["consumers"]] == [
                ("crit-strategy", "critical"), ("crit-executor", "critical"), ("old-risk", "normal"),
                ("odd", "normal"), ("normal-md", "normal"), ("bg-archiver", "background"),
                ("bg-portfolio", "background")]
            assert any("unknown latency class 9, served as normal" in r.getMessage() for r in caplog.records)

            async with RelayProducer.connect("market_data", cfg.socket_path, source_id=3, name="p") as p:
                for i in range(total):
                    await p.publish(UnknownTLV(type_code=250, body=i.to_bytes(10, "little")))
                    if i % 50 == 0:
                        await p.flush()  # several fan-outs
                await p.flush()
            with trio.fail_after(20):
                for name, c in clients.items():
                    got: list[int] = []
                    async for batch in c.batches():
                        got.extend(int.from_bytes(f[8:16], "little") for f in batch)
                        if len(got) >= total:
                            break
                    assert got == list(range(1, total + 1)), name
                for name, s in raw.items():
                    reader, seqs = MsgReader(s), []
                    while len(seqs) < total:
                        m = await reader.next()
                        assert m is not None, name
                        if m.domain == Domain.MARKET_DATA:
                            seqs.append(m.domain_seq)
                    assert seqs == list(range(1, total + 1)), name
            # every fan-out (the producer's own Ack push after it) went in the class order
            fanouts = [x for x in pushed if x != "p"]
            assert fanouts and fanouts == expected * (len(fanouts) // len(expected))

            await raw.pop("crit-executor").aclose()
            await _until(lambda: "crit-executor" not in subscribed(), "crit-executor gone")
            await client("late-critical", "critical")
            assert [c.name for c in relay.fanout] == ["crit-strategy", "late-critical", "old-risk", "odd", "normal-md",
                                                      "bg-archiver", "bg-portfolio"]
        await _until(lambda: not relay.fanout, "everyone gone")
        n.cancel_scope.cancel()


async def test_a_consumer_class_from_a_producer_is_a_protocol_error(short_dir: Path) -> None:
    cfg = config(short_dir, fsync="off")
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        s = await trio.open_unix_socket(cfg.socket_path)
        await s.send_all(sysf(Hello(role=Role.PRODUCER, protocol_version=1, source_id=5, name="p"))
                         + sysf(ConsumerClass(latency=1)))
        r = MsgReader(s)
        m = await r.next()
        if m is not None and isinstance(m.tlvs[0], Welcome):  # written before the ConsumerClass was read, or not
            m = await r.next()
        assert m is not None and isinstance(m.tlvs[0], Goodbye) and m.tlvs[0].code == 1
        assert m.tlvs[0].reason == "ConsumerClass on a connection that said Hello as a producer only"
        assert relay.protocol_errors == 1 and not relay.fanout
        n.cancel_scope.cancel()
