"""JSON-RPC for the collector, spoken directly (web3's subscriptions are asyncio-only).

* ``HttpTransport``: calls and batches over HTTP (httpx.AsyncClient, which runs under trio).
* ``WsConnection``: one WebSocket (trio-websocket): calls, batches and ``eth_subscribe``
  notifications multiplexed on it. A reader task routes replies to their callers by id and
  notifications into ``notifications`` (unbounded, so a caller waiting for a reply on the same
  socket never blocks the reader).

Two kinds of failure, kept apart on purpose:

* ``RpcError``: the node answered with a JSON-RPC error object (a bad request, a revert);
* ``EndpointError``: the node did not answer properly (connection refused or dropped, timeout,
  HTTP error, garbage). The shell reacts by reconnecting / failing over.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
    open_websocket_url,
)

Call = tuple[str, Sequence[Any]]
MAX_WS_MESSAGE = 256 << 20


class RpcError(Exception):
    def __init__(self, method: str, code: Any, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (code {code})" + (f" data={data!r}" if data is not None else ""))
        self.method, self.code, self.message, self.data = method, code, message, data


class EndpointError(Exception):
    """The endpoint is unusable right now (transport failure or timeout)."""


def unwrap(exc: BaseException) -> BaseException:
    """The one exception inside (nested) single-member exception groups, else ``exc``."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _request(id_: int, method: str, params: Sequence[Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}


def _result(method: str, reply: Any) -> Any:
    if not isinstance(reply, dict):
        raise EndpointError(f"{method}: malformed reply {reply!r:.200}")
    err = reply.get("error")
    if err is not None:
        if isinstance(err, dict):
            raise RpcError(method, err.get("code"), str(err.get("message", "")), err.get("data"))
        raise RpcError(method, None, str(err))
    if "result" not in reply:
        raise EndpointError(f"{method}: reply without result: {reply!r:.200}")
    return reply["result"]


def _batch_results(calls: Sequence[Call], ids: Sequence[int], body: Any) -> list[Any]:
    if not isinstance(body, list):
        _result("batch", body)  # one error object for the whole batch
        raise EndpointError(f"malformed batch reply {body!r:.200}")
    by_id = {r.get("id"): r for r in body if isinstance(r, dict)}
    out = []
    for (method, _), i in zip(calls, ids):
        if i not in by_id:
            raise EndpointError(f"{method}: no reply in batch")
        out.append(_result(method, by_id[i]))
    return out


class HttpTransport:
    def __init__(self, url: str, *, timeout: float = 15.0) -> None:
        self.url = url
        self.timeout = timeout
        self._client = httpx.AsyncClient(timeout=timeout, headers={"content-type": "application/json"})
        self._ids = itertools.count(1)

    async def _post(self, what: str, payload: Any) -> Any:
        try:
            with trio.fail_after(self.timeout):
                resp = await self._client.post(self.url, content=json.dumps(payload))
        except (httpx.HTTPError, trio.TooSlowError, OSError) as exc:
            raise EndpointError(f"{what} at {self.url}: {type(exc).__name__}: {exc}") from None
        if resp.status_code >= 500 or (resp.status_code != 200 and not resp.content):
            raise EndpointError(f"{what} at {self.url}: HTTP {resp.status_code}")
        try:
            return resp.json()
        except ValueError:
            raise EndpointError(f"{what} at {self.url}: HTTP {resp.status_code}, not JSON") from None

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return _result(method, await self._post(method, _request(next(self._ids), method, params)))

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        payload = [_request(i, m, p) for i, (m, p) in zip(ids, calls)]
        return _batch_results(calls, ids, await self._post(f"batch of {len(calls)}", payload))

    async def aclose(self) -> None:
        await self._client.aclose()


class _Pending:
    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.reply: Any = None


class WsConnection:
    """Use ``async with WsConnection.open(url) as ws``; the reader runs inside."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._ws: Any = None
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._broken: str | None = None
        send, recv = trio.open_memory_channel[tuple[str, Any]](math.inf)
        self._notify_send = send
        self.notifications = recv

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, *, rpc_timeout: float = 15.0) -> AsyncIterator[WsConnection]:
        self = cls(url, rpc_timeout)
        try:
            async with open_websocket_url(url, max_message_size=MAX_WS_MESSAGE, connect_timeout=rpc_timeout,
                                          disconnect_timeout=1.0) as ws:
                self._ws = ws
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._reader)
                    try:
                        yield self
                    finally:
                        nursery.cancel_scope.cancel()
        except BaseException as exc:  # noqa: BLE001 - nurseries wrap: look at the one exception inside
            leaf = unwrap(exc)
            if isinstance(leaf, EndpointError):
                raise leaf from None
            if isinstance(leaf, (OSError, HandshakeError, ConnectionClosed, ConnectionTimeout, DisconnectionTimeout)):
                raise EndpointError(f"{url}: {type(leaf).__name__}: {leaf}") from None
            raise

    async def _reader(self) -> None:
        try:
            while True:
                text = await self._ws.get_message()
                try:
                    msg = json.loads(text)
                except ValueError:
                    continue
                for item in msg if isinstance(msg, list) else (msg,):
                    if not isinstance(item, dict):
                        continue
                    if item.get("method") == "eth_subscription":
                        params = item.get("params") or {}
                        self._notify_send.send_nowait((params.get("subscription"), params.get("result")))
                    elif (p := self._pending.get(item.get("id"))) is not None:  # type: ignore[arg-type]
                        p.reply = item
                        p.event.set()
        except ConnectionClosed as exc:
            self._broken = f"connection to {self.url} closed ({exc.reason})"
        except Exception as exc:  # noqa: BLE001 - anything else kills the connection too
            self._broken = f"connection to {self.url} failed: {type(exc).__name__}: {exc}"
        finally:
            if self._broken is None:
                self._broken = f"connection to {self.url} closed"
            for p in self._pending.values():
                p.event.set()
            self._notify_send.close()

    @property
    def broken(self) -> str | None:
        return self._broken

    async def _roundtrip(self, what: str, payload: Any, ids: Sequence[int]) -> list[Any]:
        if self._broken:
            raise EndpointError(self._broken)
        waits = [_Pending() for _ in ids]
        for i, w in zip(ids, waits):
            self._pending[i] = w
        try:
            with trio.fail_after(self.timeout):
                try:
                    await self._ws.send_message(json.dumps(payload))
                except ConnectionClosed as exc:
                    raise EndpointError(f"{what}: connection to {self.url} closed ({exc.reason})") from None
                for w in waits:
                    await w.event.wait()
        except trio.TooSlowError:
            raise EndpointError(f"{what}: no answer from {self.url} in {self.timeout} s") from None
        finally:
            for i in ids:
                self._pending.pop(i, None)
        if any(w.reply is None for w in waits):
            raise EndpointError(f"{what}: {self._broken}")
        return [w.reply for w in waits]

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        i = next(self._ids)
        (reply,) = await self._roundtrip(method, _request(i, method, params), [i])
        return _result(method, reply)

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        replies = await self._roundtrip(f"batch of {len(calls)}", [_request(i, m, p) for i, (m, p) in zip(ids, calls)], ids)
        return [_result(m, r) for (m, _), r in zip(calls, replies)]

    async def subscribe(self, kind: str, *args: Any) -> str:
        return str(await self.call("eth_subscribe", [kind, *args]))


async def batched(transport: HttpTransport | WsConnection, calls: Sequence[Call], size: int) -> list[Any]:
    """``transport.batch`` in chunks of ``size`` calls."""
    out: list[Any] = []
    for start in range(0, len(calls), size):
        out += await transport.batch(calls[start : start + size])
    return out
