"""runtime.metrics.serve_metrics over a real loopback socket; relay clients that were given
``metrics=`` counted by ProcessMetrics; the relay daemon's families (relays.metrics)."""

from __future__ import annotations

import socket
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from protocol.header import Domain
from relays.client import RelayConsumer, RelayProducer
from relays.metrics import instrument_relay
from relays.server import RelayConfig, serve
from runtime.metrics import (
    CONTENT_TYPE,
    ProcessMetrics,
    parse_text,
    serve_metrics,
    serve_process_metrics,
)


async def _raw(port: int, data: bytes, until: bytes, count: int = 1) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        buf = b""
        with trio.fail_after(5):
            while buf.count(until) < count:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                buf += chunk
        return buf


async def test_serves_metrics_404_405_keepalive_over_loopback() -> None:
    pm = ProcessMetrics("unit")
    c = pm.counter("alphapulse_test_in_total", "In.", ["domain"])
    c.labels(domain="signal").inc(3)
    async with trio.open_nursery() as n:
        port = await n.start(serve_metrics, 0, pm.registry)
        assert port > 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            r = await client.get("/metrics")
            assert r.status_code == 200
            assert r.headers["content-type"] == CONTENT_TYPE
            assert 'alphapulse_test_in_total{domain="signal"} 3.0' in r.text
            c.labels(domain="signal").inc()
            r = await client.get("/metrics?x=1")  # same keep-alive connection, fresh values
            assert parse_text(r.text)["alphapulse_test_in_total"].samples[0][2] == 4
            assert (await client.get("/")).status_code == 404
            assert (await client.get("/metrics/x")).status_code == 404
            r = await client.post("/metrics", content=b"x" * 1000)
            assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
            r = await client.head("/metrics")
            assert r.status_code == 200 and r.content == b"" and int(r.headers["content-length"]) > 0
        # two pipelined requests on one raw connection, then a malformed one
        two = await _raw(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n"
                               b"Connection: close\r\n\r\n", b"HTTP/1.1 ", 2)
        assert two.startswith(b"HTTP/1.1 200 OK") and b"HTTP/1.1 404 Not Found" in two
        bad = await _raw(port, b"NOT HTTP AT ALL\r\n\r\n", b"\r\n\r\n")
        assert bad.startswith(b"HTTP/1.1 400")
        n.cancel_scope.cancel()


async def test_binds_loopback_by_default() -> None:
    others = {ai[4][0] for ai in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
    others = {a for a in others if not a.startswith("127.")}
    async with trio.open_nursery() as n:
        port = await n.start(serve_metrics, 0, ProcessMetrics("unit").registry)
        s = await trio.open_tcp_stream("127.0.0.1", port)
        await s.aclose()
        for addr in others:  # a non-loopback address of this host: nothing listens there
            with pytest.raises(OSError):
                await trio.open_tcp_stream(addr, port)
        n.cancel_scope.cancel()


async def test_disabled_port_is_a_noop() -> None:
    async with trio.open_nursery() as n:
        assert await n.start(serve_process_metrics, None, ProcessMetrics("x").registry) is None


async def test_relay_and_clients_counted_at_scrape_time(short_dir: Path) -> None:
    """In-process relay + clients: relay families and the client-side in/out/lag families."""
    cfg = RelayConfig(domain=Domain.SIGNAL, socket_path=str(short_dir / "s.sock"), data_dir=str(short_dir / "d"),
                      fsync="off")
    relay_pm = ProcessMetrics("relay-signal")
    client_pm = ProcessMetrics("client")
    async with trio.open_nursery() as n:
        relay = await n.start(serve, cfg)
        instrument_relay(relay, relay_pm)
        relay_port = await n.start(serve_metrics, 0, relay_pm.registry)
        try:
            async with RelayProducer.connect(Domain.SIGNAL, cfg.socket_path, source_id=5, name="p",
                                             metrics=client_pm) as prod, \
                    RelayConsumer.connect(Domain.SIGNAL, cfg.socket_path, from_seq=0, name="c1", raw=True,
                                          metrics=client_pm) as cons:
                for _ in range(25):
                    await prod.publish_payload(b"\xfa\x02\x01\x02")  # any valid TLV (the relay refuses undecodable ones)
                await prod.flush()
                got = 0
                with trio.fail_after(10):
                    async for batch in cons.batches():
                        got += len(batch)
                        if got >= 25:
                            break
                fams = parse_text(client_pm.render().decode())
                val = {name: {tuple(sorted(lab.items())): v for _, lab, v in f.samples} for name, f in fams.items()}
                assert val["alphapulse_messages_out_total"][(("domain", "signal"),)] == 25
                assert val["alphapulse_messages_in_total"][(("domain", "signal"),)] == 25
                assert val["alphapulse_relay_unacked_messages"][(("domain", "signal"),)] == 0
                async with httpx.AsyncClient() as client:
                    text = (await client.get(f"http://127.0.0.1:{relay_port}/metrics")).text
            relay_vals = {(name, tuple(sorted(lab.items()))): v
                          for f in parse_text(text).values() for name, lab, v in f.samples}
            assert relay_vals[("alphapulse_messages_in_total", (("domain", "signal"),))] == 25
            assert relay_vals[("alphapulse_messages_out_total", (("domain", "signal"),))] == 25
            assert relay_vals[("alphapulse_relay_consumers", (("domain", "signal"),))] == 1
            assert relay_vals[("alphapulse_relay_head_seq", (("domain", "signal"),))] == 25
            assert ("alphapulse_relay_consumer_lag_messages", (("consumer", "c1"), ("domain", "signal"))) in relay_vals
            # after the consumer left, its sent count stays in the total
            with trio.fail_after(5):
                while relay.consumers:  # noqa: ASYNC110 - the relay has no event for this
                    await trio.sleep(0.01)
            again = parse_text(relay_pm.render().decode())
            out = {lab["domain"]: v for _, lab, v in again["alphapulse_messages_out_total"].samples}
            assert out["signal"] == 25
            assert parse_text(client_pm.render().decode())[
                "alphapulse_messages_in_total"].samples[0][2] == 25  # closed consumer folded in
        finally:
            n.cancel_scope.cancel()


async def test_healthz_and_readyz_follow_the_relay_connections(short_dir: Path) -> None:
    """/healthz answers while the loop runs; /readyz is 503 with the reason until every relay client of
    the process is connected, 200 then, and 503 again while a client reconnects."""
    cfg = RelayConfig(domain=Domain.SIGNAL, socket_path=str(short_dir / "r.sock"), data_dir=str(short_dir / "d"),
                      fsync="off")
    pm = ProcessMetrics("client")
    pm.add_ready_check(lambda: stale[0])
    stale = ["market state older than 30 s"]
    async with trio.open_nursery() as n:
        port = await n.start(partial(serve_metrics, 0, pm.registry, ready=pm.readiness))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).text == "ok\n"
            r = await http.get("/readyz")
            assert r.status_code == 503 and "no relay connection yet" in r.text
            relay_scope = trio.CancelScope()

            async def run_relay(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                with relay_scope:
                    async with trio.open_nursery() as rn:
                        await rn.start(serve, cfg)
                        task_status.started()

            await n.start(run_relay)
            async with RelayConsumer.connect(Domain.SIGNAL, cfg.socket_path, from_seq=0, name="c", raw=True,
                                             metrics=pm) as cons, trio.open_nursery() as reading:

                async def read() -> None:
                    async for _ in cons.batches():
                        pass

                reading.start_soon(read)
                r = await http.get("/readyz")
                assert r.status_code == 503 and r.text == "market state older than 30 s\n"
                stale[0] = None
                r = await http.get("/readyz")
                assert (r.status_code, r.text) == (200, "ready\n")
                relay_scope.cancel()  # the relay goes away: the consumer reconnects, not ready
                with trio.fail_after(10):
                    while (r := await http.get("/readyz")).status_code == 200:  # noqa: ASYNC110 - polling it is the test
                        await trio.sleep(0.05)
                assert "signal relay: consumer not connected" in r.text
                reading.cancel_scope.cancel()
        n.cancel_scope.cancel()
