"""relays.jetstream against a real nats-server: interop with nats-py, reading from a sequence,
credentials from a file, and the expected-last-sequence guard between two writers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import trio
from natskit import NatsServer, require_nats_server
from relay_testkit import frame

from protocol.header import Domain
from relays.core.nats import PublishRejected, PublishWindow, publish_headers, stream_name, stream_subject
from relays.jetstream import (
    JetStreamConsumer,
    NatsConnection,
    NatsDisconnected,
    ensure_stream,
    find_stream_seq,
    last_message,
    stream_position,
    stream_state,
)

MD = Domain.MARKET_DATA


def _stamped(seq: int) -> bytes:
    b = bytearray(frame(seq))
    b[8:16] = seq.to_bytes(8, "little")  # as a relay would have stamped it
    return bytes(b)


def _nats_py_publish(url: str, frames: list[bytes]) -> list[int]:
    import nats

    async def go() -> list[int]:
        nc = await nats.connect(url)
        js = nc.jetstream()
        acks = [await js.publish(stream_subject(MD), f) for f in frames]
        await nc.close()
        return [a.seq for a in acks]

    return asyncio.run(go())


async def test_consumer_reads_from_a_sequence_what_nats_py_published(nats: NatsServer) -> None:
    async with NatsConnection.open(nats.url) as nc:
        await ensure_stream(nc, MD)
        assert await last_message(nc, MD) == (0, None)
    seqs = await trio.to_thread.run_sync(_nats_py_publish, nats.url, [_stamped(i) for i in range(1, 51)])
    assert seqs == list(range(1, 51))
    got: list[bytes] = []
    async with JetStreamConsumer.connect(MD, nats.url, from_seq=20, raw=True) as c:
        with trio.fail_after(10):
            async for batch in c.batches():
                got += batch
                if len(got) == 31:
                    break
        assert c.last_seq == 50
        # live: more arrives after we caught up
        await trio.to_thread.run_sync(_nats_py_publish, nats.url, [_stamped(i) for i in range(51, 61)])
        with trio.fail_after(10):
            async for batch in c.batches():
                got += batch
                if len(got) == 41:
                    break
        assert c.counters["delivered"] == 41 and c.counters["duplicates"] == 0 and c.counters["gaps"] == 0
    assert [int.from_bytes(f[8:16], "little") for f in got] == list(range(20, 61))
    assert got[0] == _stamped(20)  # unchanged bytes
    async with NatsConnection.open(nats.url) as nc:
        last, fr = await last_message(nc, MD)
        assert last == 60 and fr == _stamped(60)


async def test_a_consumer_positioned_by_domain_sequence_in_a_stream_of_batches(nats: NatsServer) -> None:
    """Stream messages are batches of frames: a consumer asked for domain seq 13 gets 13.. exactly,
    from the middle of the batch that holds it (found by binary search), and nothing twice."""
    cuts = [(1, 10), (11, 25), (26, 26), (27, 40)]
    async with NatsConnection.open(nats.url) as nc:
        await ensure_stream(nc, MD)
        w = PublishWindow(MD, next_stream_seq=1, position=0)
        done = trio.Event()

        def on(m):  # type: ignore[no-untyped-def]
            w.ack(int(m.subject.rsplit(".", 1)[1]), m.payload)
            if not w.pending:
                done.set()

        subject, _ = nc.reply_subject(on)
        for first, last in cuts:
            token, expected = w.add(first, last)
            nc.publish(stream_subject(MD), b"".join(_stamped(d) for d in range(first, last + 1)),
                       reply=f"{subject}.{token}", headers=publish_headers(MD, 1, first, expected, last))
        with trio.fail_after(10):
            await done.wait()
        assert (w.position, w.stream_position, w.counters.frames) == (40, 4, 40)
        st = await stream_state(nc, MD)
        assert [await find_stream_seq(nc, MD, d, st) for d in (1, 10, 11, 12, 26, 27, 40, 41)] == [1, 1, 2, 2, 3, 4, 4, 5]
    assert (await stream_position(nats.url, MD))["last_domain_seq"] == 40
    got: list[bytes] = []
    async with JetStreamConsumer.connect(MD, nats.url, from_seq=13, raw=True) as c:
        with trio.fail_after(10):
            async for batch in c.batches():
                got += batch
                if len(got) == 28:
                    break
        assert (c.last_seq, c.stream_seq) == (40, 4)
        assert c.counters["delivered"] == 28 and c.counters["duplicates"] == 2 and c.counters["gaps"] == 0
    assert got == [_stamped(d) for d in range(13, 41)]


async def test_two_writers_cannot_interleave(nats: NatsServer) -> None:
    """The expected-last-sequence guard: a second bridge on the same stream is refused."""
    async with NatsConnection.open(nats.url) as a, NatsConnection.open(nats.url) as b:
        await ensure_stream(a, MD)
        results: dict[str, list[object]] = {"a": [], "b": []}

        # publish as the bridge does: message id, expected last sequence, acks on a reply subject
        async def publish_h(nc: NatsConnection, who: str, d: int) -> None:
            w = PublishWindow(MD, next_stream_seq=1, position=0)
            token, expected = w.add(d)
            done = trio.Event()
            answer: list[bytes] = []

            def on(m):  # type: ignore[no-untyped-def]
                answer.append(m.payload)
                done.set()

            subject, sid = nc.reply_subject(on)
            nc.publish(stream_subject(MD), _stamped(d), reply=f"{subject}.{token}",
                       headers=publish_headers(MD, 1, d, expected))
            with trio.fail_after(5):
                await done.wait()
            try:
                results[who].append(w.ack(token, answer[0]))
            except PublishRejected as exc:
                results[who].append(exc)

        await publish_h(a, "a", 1)
        await publish_h(b, "b", 7)
        assert results["a"] == [1]
        assert isinstance(results["b"][0], PublishRejected) and "wrong last sequence" in str(results["b"][0])
        # a resend of the same frame (same message id) is acknowledged as the message already stored
        await publish_h(a, "a", 1)
        assert results["a"] == [1, 1]
        info = await a.js_api(f"STREAM.INFO.{stream_name(MD)}")
        assert info["state"]["messages"] == 1


async def test_credentials_from_a_file(short_dir: Path) -> None:
    require_nats_server()
    server = NatsServer(short_dir, "secured", auth="bridge:s3cret").start()
    try:
        creds = short_dir / "nats.creds"
        creds.write_text("bridge:s3cret\n")
        async with NatsConnection.open(server.url, auth_file=str(creds)) as nc:
            doc = await nc.js_api("INFO")
            assert "memory" in json.dumps(doc)
        creds.write_text("bridge:wrong\n")
        with pytest.raises(NatsDisconnected, match="Authorization"):
            async with NatsConnection.open(server.url, auth_file=str(creds)):
                pass
    finally:
        server.stop()


def test_missing_nats_server_skips_outside_ci_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import natskit

    monkeypatch.setattr(natskit, "find_nats_server", lambda: None)
    monkeypatch.delenv("ALPHAPULSE_CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install nats-server"):
        natskit.require_nats_server()
    monkeypatch.setenv("ALPHAPULSE_CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI installs it"):
        natskit.require_nats_server()


async def test_our_server_config_carries_the_largest_relay_frame(nats: NatsServer) -> None:
    from bridge.process import LARGEST_MESSAGE, check_max_payload

    async with NatsConnection.open(nats.url) as nc:
        assert int(nc.info["max_payload"]) >= LARGEST_MESSAGE
        assert check_max_payload(int(nc.info["max_payload"])) == int(nc.info["max_payload"]) - 4096


def test_bridge_out_refuses_a_server_that_cannot_carry_the_largest_frame(short_dir: Path) -> None:
    """A server left at NATS's default max_payload (1 MB) could never take a 1 MiB relay frame: the
    bridge would retry that frame for ever. It refuses at start with one line and exit 2."""
    import subprocess
    import sys

    require_nats_server()
    server = NatsServer(short_dir, "small")
    server.conf.write_text("".join(line + "\n" for line in server.conf.read_text().splitlines()
                                   if not line.startswith("max_payload")))
    server.start()
    try:
        proc = subprocess.run([sys.executable, "-m", "tools.cli", "bridge", "out", "--domain", "market_data",
                               "--nats", server.url, "--socket", str(short_dir / "none.sock")],
                              capture_output=True, text=True, timeout=60)
    finally:
        server.stop()
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "max_payload" in ln]
    assert len(lines) == 1 and "1048576" in lines[0] and "2MB" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
