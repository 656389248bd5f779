"""``serve_metrics``: a trio HTTP/1.1 task answering ``GET /metrics`` (h11 parses the requests).

    port = await nursery.start(serve_metrics, 9101, registry)      # -> the bound port (0: any free)

``registry`` is a prometheus-client ``CollectorRegistry`` (``ProcessMetrics.registry``), rendered
by prometheus-client at each request. Loopback only unless ``host`` says otherwise.
``GET``/``HEAD /metrics`` (any query string) -> 200 with the registry rendered; ``/healthz``
(liveness: the process's event loop answers) -> 200 ``ok``; ``/readyz`` -> 200 ``ready``, or 503
with one reason per line from ``ready()`` (``ProcessMetrics.readiness``: relays connected, state
fresh); other paths 404; other methods 405. Keep-alive is honoured; an idle or slow connection is closed after ``IDLE_TIMEOUT`` seconds, at most
``MAX_CONNECTIONS`` are served at once (further ones get a 503 and are closed), and a request
head is limited to 16 KiB, so a misbehaving scraper cannot pin the process's memory or tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import h11
import trio
from prometheus_client.registry import Collector

from .exposition import CONTENT_TYPE, render

log = logging.getLogger("runtime.metrics")

IDLE_TIMEOUT = 10.0
MAX_CONNECTIONS = 16
MAX_HEAD = 16 << 10
METRICS_PATH = b"/metrics"
HEALTH_PATH = b"/healthz"
READY_PATH = b"/readyz"

Ready = Callable[[], list[str]]  # reasons the process is not ready; empty: ready


class _Closed(Exception):
    pass


async def _next_event(stream: trio.SocketStream, conn: h11.Connection) -> Any:
    with trio.move_on_after(IDLE_TIMEOUT):
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.ConnectionClosed):
                    raise _Closed
                return event
            conn.receive_data(await stream.receive_some(8192))
    raise _Closed  # idle or too slow


async def _send(stream: trio.SocketStream, conn: h11.Connection, status: int, body: bytes, *,
                content_type: str = "text/plain; charset=utf-8", head: bool = False,
                extra: list[tuple[str, str]] | None = None) -> None:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))] + (extra or [])
    out = conn.send(h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase.encode())) or b""
    if body and not head:
        out += conn.send(h11.Data(data=body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(out)


async def _answer(stream: trio.SocketStream, conn: h11.Connection, req: h11.Request, registry: Collector,
                  ready: Ready | None = None) -> None:
    path = req.target.split(b"?", 1)[0]
    method = req.method
    head = method == b"HEAD"
    if path not in (METRICS_PATH, HEALTH_PATH, READY_PATH):
        await _send(stream, conn, 404, b"not found: try /metrics, /healthz or /readyz\n", head=head)
    elif method not in (b"GET", b"HEAD"):
        await _send(stream, conn, 405, b"method not allowed\n", extra=[("Allow", "GET, HEAD")])
    elif path == HEALTH_PATH:
        await _send(stream, conn, 200, b"ok\n", head=head)
    elif path == READY_PATH:
        try:
            problems = ready() if ready is not None else []
        except Exception:  # a broken check must not take the process down; it is not ready
            log.exception("readyz: check failed")
            problems = ["readiness check failed"]
        body = ("".join(f"{p}\n" for p in problems) if problems else "ready\n").encode()
        await _send(stream, conn, 503 if problems else 200, body, head=head)
    else:
        try:
            body = render(registry)
        except Exception:  # a broken collector must not take the process down
            log.exception("metrics: rendering failed")
            await _send(stream, conn, 500, b"metrics rendering failed\n")
            return
        await _send(stream, conn, 200, body, content_type=CONTENT_TYPE, head=method == b"HEAD")


async def _handle(stream: trio.SocketStream, registry: Collector, ready: Ready | None = None) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    try:
        while True:
            req = await _next_event(stream, conn)
            if not isinstance(req, h11.Request):
                return
            while not isinstance(await _next_event(stream, conn), h11.EndOfMessage):
                pass  # a body nobody asked for: drop it
            await _answer(stream, conn, req, registry, ready)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return  # Connection: close, or HTTP/1.0
            conn.start_next_cycle()
    except h11.RemoteProtocolError as exc:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                await _send(stream, conn, exc.error_status_hint, b"bad request\n")
            except (h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
    except (_Closed, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def serve_metrics(
    port: int,
    registry: Collector,
    host: str = "127.0.0.1",
    *,
    ready: Ready | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``registry`` on ``http://host:port/metrics`` (and ``/healthz``, ``/readyz`` asking
    ``ready``) until cancelled; ``started(bound_port)``."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    limit = trio.CapacityLimiter(MAX_CONNECTIONS)

    async def handler(stream: trio.SocketStream) -> None:
        try:
            limit.acquire_nowait()
        except trio.WouldBlock:
            with trio.move_on_after(1):
                try:
                    await stream.send_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                          b"Connection: close\r\n\r\n")
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            await stream.aclose()
            return
        try:
            await _handle(stream, registry, ready)
        finally:
            limit.release()

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handler, listeners)
        log.info("metrics: serving http://%s:%d%s", host, bound, METRICS_PATH.decode())
        task_status.started(bound)


async def serve_process_metrics(
    port: int | None,
    registry: Collector,
    host: str = "127.0.0.1",
    *,
    ready: Ready | None = None,
    task_status: trio.TaskStatus[int | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``serve_metrics`` when ``port`` is given (``--metrics-port``); None: disabled, ``started(None)``."""
    if port is None:
        task_status.started(None)
        return
    await serve_metrics(port, registry, host, ready=ready, task_status=task_status)
