"""The thin trio shell every CEX collector runs its sans-IO core under (``book.py`` lists the actions).

``FeedRunner.run`` loops over sessions: open the WebSocket (trio-websocket, ``max_message_size`` raised
deliberately, see ``config.py``), call ``core.on_connect``, feed every frame to ``core.on_message`` with
``time.time_ns()``, and carry out the actions. REST snapshots (Binance) are fetched with httpx in tasks
of the session's nursery and handed to ``core.on_snapshot``. When the session ends for any reason -- the
venue closed, a network error, a frame the core could not read, a ``Reconnect`` action -- the fetches are
cancelled, ``core.on_disconnect`` publishes the invalidations, and the next session starts after an
exponential backoff (reset by a session that lasted ``HEALTHY_AFTER`` seconds).

Ordering: every core call and the execution of the actions it returned run under one lock, so the
messages reach the relay in exactly the order the core decided them, whichever task (reader or
snapshot fetch) made the call. Nothing here decides anything about books.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import httpx
import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from market.scaled import DecimalError
from protocol.tlv import TLV
from runtime.errors import find_in_group, one_line, reraise_unwrapped

from .book import Action, Counters, FeedError, FetchSnapshot, Publish, Reconnect, Send

log = logging.getLogger("collectors.cex")

HEALTHY_AFTER = 10.0
Publisher = Callable[..., Awaitable[int]]


class Core(Protocol):
    counters: Counters

    def on_connect(self, now_ns: int) -> list[Action]: ...
    def on_disconnect(self, now_ns: int) -> list[Action]: ...
    def on_message(self, text: str | bytes, recv_ns: int) -> list[Action]: ...


class _Reconnect(Exception):
    pass


class FeedRunner:
    def __init__(self, core: Any, url: str, publish: Publisher, *, name: str, max_message_bytes: int,
                 snapshot_url: Callable[[str], str] | None = None, max_backoff: float = 30.0,
                 http: httpx.AsyncClient | None = None) -> None:
        self.core = core
        self.url = url
        self.publish = publish
        self.name = name
        self.max_message_bytes = max_message_bytes
        self.snapshot_url = snapshot_url
        self.max_backoff = max_backoff
        self.http = http
        self.lock = trio.Lock()
        self.sessions = 0
        self.published = 0
        self.connected = trio.Event()  # set at the first open session (tests wait on it)
        self._ws: Any = None
        self._nursery: trio.Nursery | None = None

    async def run(self) -> None:
        backoff = 0.5
        async with httpx.AsyncClient(timeout=10.0) if self.http is None else _borrowed(self.http) as http:
            self.http = http
            while True:
                started = trio.current_time()
                reason = await self._session()
                async with self.lock:
                    await self._execute(self.core.on_disconnect(time.time_ns()))
                if trio.current_time() - started > HEALTHY_AFTER:
                    backoff = 0.5
                log.warning("%s: session ended (%s); reconnecting in %.1f s", self.name, reason, backoff)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _session(self) -> str:
        """One connection, until it fails; returns why it ended."""
        try:
            with reraise_unwrapped():
                async with open_websocket_url(self.url, max_message_size=self.max_message_bytes) as ws, \
                        trio.open_nursery() as nursery:
                    self._ws, self._nursery = ws, nursery
                    self.sessions += 1
                    self.connected.set()
                    log.info("%s: connected to %s", self.name, self.url)
                    try:
                        async with self.lock:
                            await self._execute(self.core.on_connect(time.time_ns()))
                        while True:
                            text = await ws.get_message()
                            recv = time.time_ns()
                            async with self.lock:
                                await self._execute(self.core.on_message(text, recv))
                    finally:
                        nursery.cancel_scope.cancel()
        except Exception as exc:
            known = find_in_group(exc, (ConnectionClosed, HandshakeError, FeedError, DecimalError, _Reconnect, OSError))
            if known is None:
                raise
            if isinstance(known, (FeedError, DecimalError)):
                log.error("%s: %s", self.name, known)
            return f"{type(known).__name__}: {one_line(known)}"
        finally:
            self._ws = self._nursery = None
        return "ended"

    async def _execute(self, actions: Sequence[Action]) -> None:
        for a in actions:
            if isinstance(a, Publish):
                await self.publish(a.tlvs, event_time_ns=a.event_time_ns, receive_time_ns=a.receive_time_ns)
                self.published += 1
            elif isinstance(a, Send):
                if self._ws is not None:
                    await self._ws.send_message(json.dumps(a.payload))
            elif isinstance(a, FetchSnapshot):
                if self._nursery is not None:
                    self._nursery.start_soon(self._fetch, a)
            elif isinstance(a, Reconnect):
                raise _Reconnect(a.reason)

    async def _fetch(self, req: FetchSnapshot) -> None:
        assert self.snapshot_url is not None and self.http is not None
        if req.attempt > 1:
            await trio.sleep(min(0.1 * 2 ** (req.attempt - 2), self.max_backoff))
        url = self.snapshot_url(req.symbol)
        try:
            resp = await self.http.get(url)
            resp.raise_for_status()
            body = resp.text
        except httpx.HTTPError as exc:
            log.warning("%s: snapshot %s failed: %s", self.name, req.symbol, one_line(exc))
            async with self.lock:
                await self._execute(self.core.on_snapshot_failed(req.symbol))
            return
        async with self.lock:
            try:
                acts = self.core.on_snapshot(req.symbol, body, time.time_ns())
            except (FeedError, DecimalError) as exc:
                log.warning("%s: %s", self.name, exc)
                acts = self.core.on_snapshot_failed(req.symbol)
            await self._execute(acts)


class _borrowed:
    """``async with`` over a client someone else closes."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __aenter__(self) -> httpx.AsyncClient:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        return None


async def publish_to_relay(config: Any, name: str, work: Callable[[Publisher], Awaitable[None]], *,
                           socket_path: str | None = None, metrics: Any = None) -> None:
    """Connect a market-data ``RelayProducer`` and run ``work(producer.publish)``."""
    from relays.client import RelayProducer

    async with RelayProducer.connect("market_data", socket_path or config.relay_socket or None,
                                     source_id=config.source_id, name=name,
                                     connect_timeout=config.relay_connect_timeout, metrics=metrics) as producer:
        await work(producer.publish)


async def run_feed(config: Any, name: str, feed: str, build: Callable[[Publisher], Awaitable[FeedRunner]], *,
                   socket_path: str | None = None, metrics: Any = None, publish: Publisher | None = None,
                   task_status: trio.TaskStatus[FeedRunner] = trio.TASK_STATUS_IGNORED) -> None:
    """Run ``build(publish)``'s feed until cancelled, its counters exported as ``feed``; ``publish``
    replaces the relay (tests), else a market-data producer named ``name`` publishes."""

    async def work(pub: Publisher) -> None:
        runner = await build(pub)
        export_counters(metrics, feed, runner.core.counters)
        task_status.started(runner)
        await runner.run()

    if publish is not None:
        await work(publish)
    else:
        await publish_to_relay(config, name, work, socket_path=socket_path, metrics=metrics)


def tlvs_of(actions: Sequence[Action]) -> list[TLV]:
    return [t for a in actions if isinstance(a, Publish) for t in a.tlvs]


def export_counters(metrics: Any, feed: str, counters: Counters) -> None:
    """The core's counters as ``alphapulse_cex_<name>_total{feed=...}``, read at each scrape."""
    if metrics is None:
        return
    from dataclasses import fields

    from prometheus_client.core import CounterMetricFamily

    def collect() -> Any:
        for f in fields(counters):
            fam = CounterMetricFamily(f"alphapulse_cex_{f.name}", f"CEX collector: {f.name.replace('_', ' ')}.",
                                      labels=["feed"])
            fam.add_metric([feed], getattr(counters, f.name))
            yield fam

    metrics.collect(collect)
