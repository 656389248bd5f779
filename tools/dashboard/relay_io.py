"""Relay I/O for the dashboard: trio in a worker thread, talking to the app through an inbox.

Textual runs on asyncio and every AlphaPulse client is trio, so the dashboard runs
``trio.run`` in one daemon thread. That thread consumes the three relays and polls their
Stats; everything it learns goes into an ``Inbox`` (a lock-protected list) that the app
drains on a timer and applies to the model on its own thread, so the model is only ever
touched by one thread. Publishing (EmergencyStop / Resume) goes the other way: the app calls
``RelayWorker.publish(tlv)``, which schedules a producer task in the trio thread and returns
at once; the outcome comes back through the inbox as a notice.

When a relay is down the consumer for it keeps retrying (``connect_timeout`` bounded, then a
pause) and reports ``connected=False``; the app shows "relay down" and keeps working.
"""

from __future__ import annotations

import getpass
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import trio

from protocol.header import Domain
from protocol.tlv import TLV
from relays.client import RelayConsumer, RelayProducer, RelayUnavailable, request_stats
from runtime.paths import DATA_DOMAINS, socket_path

log = logging.getLogger("tools.dashboard")

# one producer identity per dashboard process, disjoint from relay-cli's 0x7C00_0000 block
SOURCE_ID_BASE = 0x7D00_0000


def operator_name() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (containers): fall back to the environment
        user = os.environ.get("USER", "unknown")
    return f"dashboard@{user}"


class Inbox:
    """Thread-safe hand-off from the relay thread to the UI thread, bounded in messages.

    Items: ``("msgs", domain, [Message...], now_ns)``, ``("status", domain, kwargs)``,
    ``("notice", text, now_ns)``. When the UI falls more than ``max_messages`` behind, the
    oldest message batches are dropped and counted per domain (``dropped``): the dashboard
    must never grow without bound because a terminal is slow.
    """

    def __init__(self, max_messages: int = 500_000) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[Any, ...]] = []
        self._pending = 0
        self.max_messages = max_messages
        self.dropped: dict[int, int] = {}

    def put_messages(self, domain: int, msgs: list[Any], now_ns: int) -> None:
        with self._lock:
            self._items.append(("msgs", domain, msgs, now_ns))
            self._pending += len(msgs)
            if self._pending > self.max_messages:
                self._shed()

    def _shed(self) -> None:
        keep: list[tuple[Any, ...]] = []
        for item in self._items:
            if item[0] == "msgs" and self._pending > self.max_messages // 2:
                self._pending -= len(item[2])
                self.dropped[item[1]] = self.dropped.get(item[1], 0) + len(item[2])
            else:
                keep.append(item)
        self._items = keep

    def put(self, item: tuple[Any, ...]) -> None:
        with self._lock:
            self._items.append(item)

    def drain(self, max_messages: int | None = None) -> list[tuple[Any, ...]]:
        """Everything queued, or whole items up to about ``max_messages`` messages (the rest stays)."""
        with self._lock:
            if max_messages is None or self._pending <= max_messages:
                items, self._items = self._items, []
                self._pending = 0
                return items
            n = taken = 0
            for n, item in enumerate(self._items, 1):  # noqa: B007 -- n is used after the loop
                if item[0] == "msgs":
                    taken += len(item[2])
                    if taken >= max_messages:
                        break
            items, self._items = self._items[:n], self._items[n:]
            self._pending -= taken
            return items

    def __len__(self) -> int:
        """Messages waiting."""
        return self._pending


class RelayWorker:
    """Consumes the three relays and polls their stats in a trio thread; publishes on request."""

    def __init__(self, socket_dir: str | os.PathLike[str] | None, inbox: Inbox, *,
                 stats_interval: float = 1.0, connect_timeout: float = 1.0, retry_after: float = 1.0,
                 publish_connect_timeout: float = 3.0) -> None:
        self.socket_dir = Path(socket_dir) if socket_dir is not None else None
        self.inbox = inbox
        self.stats_interval = stats_interval
        self.connect_timeout = connect_timeout
        self.retry_after = retry_after
        self.publish_connect_timeout = publish_connect_timeout
        self.source_id = SOURCE_ID_BASE | (os.getpid() & 0xFFFFFF)
        self._consumers: dict[int, RelayConsumer] = {}
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = threading.Event()

    def path(self, domain: Domain) -> str:
        return str(socket_path(domain, self.socket_dir))

    # ---- lifecycle (called from the UI thread) ----

    def start(self) -> None:
        self._thread = threading.Thread(target=self._thread_main, name="dashboard-relays", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def stop(self, timeout: float = 2.0) -> None:
        if self._token is not None and self._nursery is not None:
            try:
                trio.from_thread.run_sync(self._nursery.cancel_scope.cancel, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    def publish(self, tlv: TLV) -> None:
        """Schedule a publish on the execution relay; the result arrives as an inbox notice."""
        if self._token is None or self._nursery is None:
            self.inbox.put(("notice", f"cannot publish {type(tlv).__name__}: relay worker not running",
                            time.time_ns()))
            return
        try:
            trio.from_thread.run_sync(self._nursery.start_soon, self._publish, tlv, trio_token=self._token)
        except trio.RunFinishedError:
            self.inbox.put(("notice", f"cannot publish {type(tlv).__name__}: relay worker stopped",
                            time.time_ns()))

    # ---- the trio side ----

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except Exception as exc:  # the UI must learn why its data stopped; it keeps running
            log.exception("dashboard relay worker died")
            self.inbox.put(("notice", f"relay worker died: {exc!r}", time.time_ns()))
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for dom in DATA_DOMAINS:
                nursery.start_soon(self._consume, dom)
                nursery.start_soon(self._poll_stats, dom)
            self._ready.set()

    async def _consume(self, domain: Domain) -> None:
        path = self.path(domain)
        last = 0
        while True:
            # first connection: market data from now (the panels show the present pools), signals and
            # outcomes from the oldest the relay keeps, so a dashboard opened mid-run shows the P&L,
            # funnel and outcomes made before it; after an outage resume where we stopped, so the
            # panels do not silently skip what happened meanwhile
            first = None if domain == Domain.MARKET_DATA else 0
            try:
                # background: a person watching; served after the processes that trade
                async with RelayConsumer.connect(domain, path, from_seq=last + 1 if last else first,
                                                 name=f"dashboard-{os.getpid()}", latency="background",
                                                 connect_timeout=self.connect_timeout) as c:
                    self._consumers[int(domain)] = c
                    async for batch in c.batches():
                        self.inbox.put_messages(int(domain), batch, time.time_ns())
                        last = c.last_seq
            except* (RelayUnavailable, OSError) as group:
                self._consumers.pop(int(domain), None)
                self.inbox.put(("status", int(domain), {"connected": False, "error": str(group.exceptions[0])}))
            await trio.sleep(self.retry_after)

    async def _poll_stats(self, domain: Domain) -> None:
        path = self.path(domain)
        while True:
            c = self._consumers.get(int(domain))
            try:
                with trio.fail_after(max(0.2, self.stats_interval / 2)):
                    stats = await request_stats(domain, path)
                status: dict[str, Any] = {"connected": True, "stats": stats}
            except (OSError, RelayUnavailable, trio.TooSlowError) as exc:
                status = {"connected": False, "error": f"relay down ({exc.__class__.__name__}: {exc})"}
            if c is not None:
                status["counters"] = c.counters
            status["dropped"] = self.inbox.dropped.get(int(domain), 0)
            self.inbox.put(("status", int(domain), status))
            await trio.sleep(self.stats_interval)

    async def _publish(self, tlv: TLV) -> None:
        name = type(tlv).__name__
        path = self.path(Domain.EXECUTION)
        try:
            with trio.fail_after(10):
                async with RelayProducer.connect(Domain.EXECUTION, path, source_id=self.source_id,
                                                 name="dashboard", connect_timeout=self.publish_connect_timeout,
                                                 linger=0) as p:
                    seq = await p.publish(tlv)
                    await p.flush()
            text = f"{name} published on the execution relay (source {self.source_id}/{seq})"
        except* (RelayUnavailable, OSError, trio.TooSlowError) as group:
            text = f"{name} NOT published: {group.exceptions[0]}"
        self.inbox.put(("notice", text, time.time_ns()))
