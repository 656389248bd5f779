"""Binance and Coinbase stand-ins: the venues' real wire formats over a real WebSocket and REST on loopback.

    standin = BinanceStandin(faults=Faults.parse("drop=500;late=20"))
    ws_port, rest_port = await nursery.start(standin.serve)
    # collector config: ws_url = f"ws://127.0.0.1:{ws_port}", rest_url = f"http://127.0.0.1:{rest_port}"

* ``BinanceStandin``: ``/stream?streams=a@depth@100ms/a@aggTrade/...`` (the combined-stream format, only the
  named streams) and ``GET /api/v3/depth?symbol=&limit=`` answered from the venue's replayed book
  (``replay.BinanceReplay``); with a ``paper`` exchange, ``POST /api/v3/order`` and ``GET /api/v3/order``
  (``paper.py``).
* ``CoinbaseStandin``: the Exchange feed -- a ``subscribe`` frame gets a ``subscriptions`` ack, then the
  capture's frames for the subscribed products and channels; a connection opened mid-replay first gets
  a fresh ``snapshot`` of every book (what a resubscribe gets); ``GET /products`` answers the capture's
  listing.
* ``AdvancedStandin``: the Advanced Trade feed built from the same capture (``advanced.py``), one
  ``sequence_num`` counter per connection (a dropped frame still uses its number, as a frame lost on the
  way would); a ``level2`` (re)subscription mid-replay gets fresh ``l2_data`` snapshots.

The replay advances while a client is connected, ``pace`` seconds per frame (0: as fast as the client
reads), and resumes where it was after a reconnect. With ``loop`` (Binance), the end of the capture closes
the connection and the replay starts its next lap (``BinanceReplay.restart``: ids keep growing), so a demo
can run longer than the capture; each lap is a disconnect the collector must recover from. ``Faults`` (``replay.py``) drop, duplicate or reorder
frames, close the connection after a frame, and hold REST snapshot answers back.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import h11
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from . import advanced
from .paper import PaperExchange
from .replay import BinanceReplay, CoinbaseReplay, Faults

MAX_MESSAGE = 64 << 20


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()
Handler = Callable[["Request"], Awaitable[tuple[int, str]]]
DROP = 0  # a route's status meaning: close the connection without answering


class Request:
    """One REST request as a stand-in route sees it."""

    def __init__(self, method: str, target: str, headers: dict[str, str]) -> None:
        self.method = method
        parts = urlsplit(target)
        self.path, self.raw_query = parts.path, parts.query
        self.query = parse_qs(parts.query)
        self.headers = headers


# --- REST: a small h11 server ------------------------------------------------------------------------


async def _http_connection(stream: trio.SocketStream, route: Handler) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                if not data:
                    return
                continue
            if isinstance(event, h11.Request):
                req = Request(event.method.decode(), event.target.decode(),
                              {k.decode().lower(): v.decode() for k, v in event.headers})
                status, body = await route(req)
                if status == DROP:  # the answer is lost on the way: the connection closes without it
                    return
                payload = body.encode()
                headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
                out = conn.send(h11.Response(status_code=status, headers=headers,
                                             reason=HTTPStatus(status).phrase.encode()))
                out += conn.send(h11.Data(data=payload)) + conn.send(h11.EndOfMessage())
                await stream.send_all(out)
            elif isinstance(event, h11.EndOfMessage):
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()
                else:
                    return
            elif isinstance(event, h11.ConnectionClosed):
                return
    except (h11.RemoteProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


class _Replay(Protocol):
    frames: list[tuple[int, str]]

    def advance(self, index: int) -> None: ...


class _Standin:
    """The shared machinery: two listeners, the replay loop, the fault switches."""

    def __init__(self, *, faults: Faults | None = None, pace: float = 0.0, host: str = "127.0.0.1",
                 ws_port: int = 0, rest_port: int = 0, loop: bool = False) -> None:
        self.ws_port, self.rest_port = ws_port, rest_port
        self.loop = loop
        self.laps = 0  # completed plays of the capture
        self.faults = faults or Faults()
        self.pace = pace
        self.host = host
        self.position = 0  # next capture frame index
        self.connections = 0
        self.finished = trio.Event()  # every frame of the capture has been produced
        self.sent_frames = 0
        self._produced = trio.Condition()

    replay: _Replay  # the venue's stand-in sets its own

    @property
    def frames(self) -> list[tuple[int, str]]:
        """The capture's frames: (capture receive ns, text)."""
        return self.replay.frames

    def advance(self, index: int) -> None:
        """Frame ``index`` has been produced (sent or deliberately lost): the replayed venue moves on."""
        self.replay.advance(index)

    def text(self, index: int) -> str | None:
        """Frame ``index`` as the venue sends it (None: nothing of it is sent)."""
        return self.frames[index][1]

    def restart(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot loop its capture")

    async def serve(self, *, task_status: trio.TaskStatus[tuple[int, int]] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            ws = await nursery.start(lambda task_status: serve_websocket(
                self._ws_handler, self.host, self.ws_port, None, max_message_size=MAX_MESSAGE,
                task_status=task_status))
            listeners = await trio.open_tcp_listeners(self.rest_port, host=self.host)
            rest_port = listeners[0].socket.getsockname()[1]
            nursery.start_soon(trio.serve_listeners, lambda s: _http_connection(s, self.route), listeners)
            task_status.started((ws.port, rest_port))

    async def _ws_handler(self, request: WebSocketRequest) -> None:
        ws = await request.accept()
        self.connections += 1
        try:
            await self.session(ws, request.path)
        except ConnectionClosed:
            pass
        finally:
            await ws.aclose()

    async def session(self, ws: WebSocketConnection, path: str) -> None:
        raise NotImplementedError

    async def route(self, req: Request) -> tuple[int, str]:
        return 404, json.dumps({"code": -1, "msg": f"no route {req.path}"})

    async def stream(self, ws: WebSocketConnection, render: Callable[[int, str], list[str]],
                     lock: trio.Lock | None = None) -> None:
        """Send the capture from ``position`` on, with the faults; returns after a deliberate disconnect.

        ``lock`` (held while a frame is rendered and sent) keeps other senders of the session out of
        the middle, so sequence numbers stamped by ``render`` leave in order."""
        while self.position < len(self.frames):
            async with lock or _NO_LOCK:
                done = await self._one(ws, render)
            if done:
                return
            await trio.sleep(self.pace)
        self.finished.set()
        if self.loop:  # the next lap is for the next connection: this one closes, as a venue's may
            self.laps += 1
            self.restart()
            self.position = 0
            return
        await trio.sleep_forever()  # an idle venue keeps the connection open

    _held: list[str] | None = None

    async def _one(self, ws: WebSocketConnection, render: Callable[[int, str], list[str]]) -> bool:
        if True:
            i = self.position
            self.position += 1
            self.advance(i)
            text = self.text(i)
            out = [] if text is None else render(i, text)
            async with self._produced:
                self._produced.notify_all()
            if i in self.faults.drop:
                out = []
            elif i in self.faults.duplicate:
                out = out * 2
            if i in self.faults.swap and self._held is None and out:
                self._held = out
                return False
            for text in out + (self._held or []):
                await ws.send_message(text)
                self.sent_frames += 1
            self._held = None
            if i in self.faults.disconnect_after:
                self.faults.disconnect_after.discard(i)
                return True
            return False

    async def wait_frames(self, n: int) -> None:
        """Until ``n`` more frames have been produced (the late-snapshot switch), or the capture ends."""
        target = self.position + n
        async with self._produced:
            while self.position < target and self.position < len(self.frames):
                await self._produced.wait()


class BinanceStandin(_Standin):
    replay: BinanceReplay

    def __init__(self, replay: BinanceReplay | None = None, *, paper: PaperExchange | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.replay = replay or BinanceReplay()
        self.paper = paper
        self.snapshot_requests = 0

    def text(self, index: int) -> str | None:
        return self.replay.text(index)

    def restart(self) -> None:
        self.replay.restart()

    async def session(self, ws: WebSocketConnection, path: str) -> None:
        q = parse_qs(urlsplit(path).query)
        streams = set("/".join(q.get("streams", [])).split("/")) - {""}
        if not streams:
            await ws.aclose(1008, "no streams")
            return

        def render(i: int, text: str) -> list[str]:
            stream = json.loads(text).get("stream", "")
            return [text] if stream in streams else []

        await self.stream(ws, render)

    async def route(self, req: Request) -> tuple[int, str]:
        path, query = req.path, req.query
        if path == "/api/v3/ping":
            return 200, "{}"
        if path == "/api/v3/order" and req.method == "POST":
            if self.paper is None:
                return 404, json.dumps({"code": -1, "msg": "no paper exchange on this stand-in"})
            delay, drop = self.paper.arrive()
            if delay:
                await trio.sleep(delay)
            status, body = self.paper.order(req, self.replay)
            return (DROP, "") if drop else (status, body)
        if path == "/api/v3/order" and req.method == "GET":
            if self.paper is None:
                return 404, json.dumps({"code": -1, "msg": "no paper exchange on this stand-in"})
            return self.paper.query(req)
        if path in ("/api/v3/depth", "/api/v1/depth"):
            symbol = (query.get("symbol") or [""])[0].upper()
            if symbol not in self.replay.capture_snapshots:
                return 400, json.dumps({"code": -1121, "msg": "Invalid symbol."})
            limit = int((query.get("limit") or ["100"])[0])
            self.snapshot_requests += 1
            if self.faults.snapshot_delay_frames:
                await self.wait_frames(self.faults.snapshot_delay_frames)
            return 200, json.dumps(self.replay.depth(symbol, min(limit, 5000)), separators=(",", ":"))
        return await super().route(req)


class CoinbaseStandin(_Standin):
    """The Exchange feed (``ws-feed.exchange.coinbase.com`` format)."""

    replay: CoinbaseReplay

    def __init__(self, replay: CoinbaseReplay | None = None, *, products_text: str | None = None,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.replay = replay or CoinbaseReplay()
        if products_text is None:
            from . import captures

            products_text = next(r.text for r in captures.read(captures.COINBASE_PRODUCTS) if r.kind == "rest")
        self.products_text = products_text

    async def session(self, ws: WebSocketConnection, path: str) -> None:
        sub = json.loads(await ws.get_message())
        if sub.get("type") != "subscribe":
            await ws.send_message(json.dumps({"type": "error", "message": "Failed to subscribe"}))
            return
        products = set(sub.get("product_ids") or [])
        names = {c if isinstance(c, str) else c.get("name") for c in sub.get("channels") or []}
        await ws.send_message(json.dumps({"type": "subscriptions", "channels": [
            {"name": n, "product_ids": sorted(products)} for n in sorted(names)]}))
        kinds = set()
        if names & {"level2", "level2_batch"}:
            kinds |= {"snapshot", "l2update"}
            for product in sorted(products & set(self.replay.books)):  # joining mid-replay: the current book
                await ws.send_message(json.dumps(self.replay.snapshot(product)))
        if "matches" in names:
            kinds |= {"match", "last_match"}
        if "ticker" in names:
            kinds.add("ticker")

        def render(i: int, text: str) -> list[str]:
            msg = json.loads(text)
            return [text] if msg.get("type") in kinds and msg.get("product_id") in products else []

        await self.stream(ws, render)

    async def route(self, req: Request) -> tuple[int, str]:
        if req.path == "/products":
            return 200, self.products_text
        return await super().route(req)


class AdvancedStandin(CoinbaseStandin):
    """The Advanced Trade feed (``advanced-trade-ws.coinbase.com`` format), built from the Exchange capture."""

    async def session(self, ws: WebSocketConnection, path: str) -> None:
        state: dict[str, Any] = {"seq": 0, "channels": set(), "products": set()}
        lock = trio.Lock()
        level2 = trio.Event()  # the replay starts at the first level2 subscription

        def stamp(channel: str, events: list[dict[str, Any]], ts: int) -> str:
            text = advanced.frame(channel, events, ts, state["seq"])
            state["seq"] += 1
            return text

        async def control() -> None:
            while True:
                req = json.loads(await ws.get_message())
                async with lock:
                    await self._control(ws, req, state, stamp)
                if "level2" in state["channels"]:
                    level2.set()

        def render(i: int, text: str) -> list[str]:
            ts = self.frames[i][0]
            out = advanced.translate(json.loads(text), ts)
            if out is None:
                return []
            channel, events = out
            sub = "level2" if channel == "l2_data" else channel
            if sub not in state["channels"]:
                return []
            pid = events[0].get("product_id") or events[0]["trades"][0]["product_id"]
            if pid not in state["products"]:
                return []
            frames = [stamp(channel, events, ts)]  # a dropped frame still used its sequence_num
            if "heartbeats" in state["channels"] and i % 50 == 0:
                frames.append(stamp("heartbeats", [{"current_time": "", "heartbeat_counter": i // 50}], ts))
            return frames

        async with trio.open_nursery() as nursery:
            nursery.start_soon(control)
            await level2.wait()
            await self.stream(ws, render, lock)
            nursery.cancel_scope.cancel()

    async def _control(self, ws: WebSocketConnection, req: dict[str, Any], state: dict[str, Any],
                       stamp: Callable[[str, list[dict[str, Any]], int], str]) -> None:
        channel, kind = req.get("channel"), req.get("type")
        products = set(req.get("product_ids") or [])
        if kind == "subscribe":
            state["channels"].add(channel)
            state["products"] |= products
            await ws.send_message(stamp("subscriptions", [{"subscriptions": {
                c: sorted(state["products"]) for c in sorted(state["channels"])}}], trio_now_ns()))
            if channel == "level2":
                for product in sorted(products & set(self.replay.books)):
                    out = advanced.translate(self.replay.snapshot(product), trio_now_ns())
                    assert out is not None
                    await ws.send_message(stamp(out[0], out[1], trio_now_ns()))
        elif kind == "unsubscribe":
            state["channels"].discard(channel)


def trio_now_ns() -> int:
    import time

    return time.time_ns()
