"""JSON-RPC over one WebSocket (trio-websocket): calls, batches and ``eth_subscribe``.

web3's subscriptions are asyncio-only, so the trio collector speaks it here. ``async with
WsRpc.open(url) as ws`` connects and runs a reader task inside: it routes replies to their
callers by id and notifications into ``ws.notifications`` (unbounded, so a caller waiting for
a reply on the same socket never blocks the reader).

Same codec and same errors as :mod:`chain.rpc`: :class:`~chain.rpc.RpcError` for a JSON-RPC
error object, :class:`~chain.rpc.EndpointError` when the socket fails, closes or stays silent;
no trio-websocket exception leaves, and the URL appears only as :func:`~chain.rpc.redact_url`
leaves it.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
    open_websocket_url,
)

from .rpc import Call, EndpointError, RpcEndpoint, batch_results, result, scrub

__all__ = ["MAX_WS_MESSAGE", "WsRpc"]

MAX_WS_MESSAGE = 256 << 20


class _Pending:
    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.reply: Any = None


class WsRpc(RpcEndpoint):
    """Use ``async with WsRpc.open(url) as ws``; the reader runs inside."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(url, timeout)
        self._ws: Any = None
        self._pending: dict[int, _Pending] = {}
        self._broken: str | None = None
        send, recv = trio.open_memory_channel[tuple[str, Any]](math.inf)
        self._notify_send = send
        self.notifications = recv

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, *, rpc_timeout: float = 15.0) -> AsyncIterator[WsRpc]:
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
            leaf = exc  # the nurseries wrap it in single-member groups (runtime.errors is a sibling layer)
            while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
                leaf = leaf.exceptions[0]
            if isinstance(leaf, HandshakeError) and not str(leaf) and leaf.__cause__ is not None:
                leaf = leaf.__cause__  # trio-websocket's HandshakeError says nothing; its cause does
            if isinstance(leaf, EndpointError):
                raise leaf from None
            if isinstance(leaf, (OSError, HandshakeError, ConnectionClosed, ConnectionTimeout, DisconnectionTimeout,
                                 ValueError)):
                raise EndpointError(f"{self.label}: {type(leaf).__name__}: {scrub(str(leaf), url)}") from None
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
            self._broken = f"connection to {self.label} closed ({exc.reason})"
        except Exception as exc:  # noqa: BLE001 - anything else kills the connection too
            self._broken = f"connection to {self.label} failed: {type(exc).__name__}: {scrub(str(exc), self.url)}"
        finally:
            if self._broken is None:
                self._broken = f"connection to {self.label} closed"
            for p in self._pending.values():
                p.event.set()
            self._notify_send.close()

    def backlog(self) -> int:
        """Messages received and not yet taken: in ``notifications`` and in trio-websocket's own
        queue (its reader parses frames ahead of ours; there is no public accessor for it)."""
        queued = self.notifications.statistics().current_buffer_used
        ws = self._ws
        channel = getattr(ws, "_recv_channel", None) if ws is not None else None
        return queued + (channel.statistics().current_buffer_used if channel is not None else 0)

    @property
    def broken(self) -> str | None:
        """Why the connection is unusable (None while it works)."""
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
                    raise EndpointError(f"{what}: connection to {self.label} closed ({exc.reason})") from None
                for w in waits:
                    await w.event.wait()
        except trio.TooSlowError:
            raise EndpointError(f"{what}: no answer from {self.label} in {self.timeout} s") from None
        finally:
            for i in ids:
                self._pending.pop(i, None)
        if any(w.reply is None for w in waits):
            raise EndpointError(f"{what}: {self._broken}")
        return [w.reply for w in waits]

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        req = self._ids.one(method, params)
        (reply,) = await self._roundtrip(method, req, [req["id"]])
        return result(method, reply)

    async def batch(self, calls: Iterable[Call], *, return_errors: bool = False) -> list[Any]:
        calls = list(calls)
        if not calls:
            return []
        ids, payload = self._ids.many(calls)
        replies = await self._roundtrip(f"batch of {len(calls)}", payload, ids)
        return batch_results(calls, ids, replies, return_errors=return_errors)

    async def subscribe(self, kind: str, *args: Any) -> str:
        """``eth_subscribe``; the notifications arrive on :attr:`notifications` as (id, result)."""
        return str(await self.call("eth_subscribe", [kind, *args]))
