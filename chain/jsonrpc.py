"""A small JSON-RPC 2.0 client over HTTP (httpx), sync and async.

web3's providers would do, but the trio processes speak JSON-RPC themselves (web3 8's
subscriptions are asyncio-only), so the devnet tools use the same tiny client everywhere.
``AsyncRPC`` uses ``httpx.AsyncClient``, which runs under trio as well as asyncio.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

Call = tuple[str, Sequence[Any]]


class RPCError(Exception):
    """A JSON-RPC error object, or a transport failure (code None)."""

    def __init__(self, method: str, code: int | None, message: str, data: Any = None) -> None:
        self.method = method
        self.code = code
        self.message = message
        self.data = data
        detail = f"{method}: {message}"
        if code is not None:
            detail += f" (code {code})"
        if data is not None:
            detail += f" data={data!r}"
        super().__init__(detail)


def _request(id_: int, method: str, params: Sequence[Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}


def _result(method: str, reply: Any) -> Any:
    if not isinstance(reply, dict):
        raise RPCError(method, None, f"malformed reply {reply!r}")
    if reply.get("error") is not None:
        err = reply["error"]
        if isinstance(err, dict):
            raise RPCError(method, err.get("code"), str(err.get("message", "")), err.get("data"))
        raise RPCError(method, None, str(err))
    if "result" not in reply:
        raise RPCError(method, None, f"reply without result: {reply!r}")
    return reply["result"]


def _batch_results(calls: Sequence[Call], first_id: int, body: Any, return_errors: bool) -> list[Any]:
    if not isinstance(body, list):
        # A server may answer a whole batch with one error object.
        _result("batch", body)
        raise RPCError("batch", None, f"malformed batch reply {body!r}")
    by_id = {r.get("id"): r for r in body if isinstance(r, dict)}
    out: list[Any] = []
    for i, (method, _) in enumerate(calls):
        reply = by_id.get(first_id + i)
        try:
            if reply is None:
                raise RPCError(method, None, "no reply in batch")
            out.append(_result(method, reply))
        except RPCError as exc:
            if not return_errors:
                raise
            out.append(exc)
    return out


class RPC:
    """Synchronous JSON-RPC client. ``call`` raises :class:`RPCError`; ``batch`` sends many
    calls in one HTTP request and returns their results in order."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout, headers={"content-type": "application/json"})
        self._ids = itertools.count(1)

    def _post(self, method: str, payload: Any) -> Any:
        try:
            resp = self._client.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            raise RPCError(method, None, f"transport error talking to {self.url}: {exc}") from exc
        if resp.status_code != 200 and not resp.content:
            raise RPCError(method, None, f"HTTP {resp.status_code} from {self.url}")
        try:
            return resp.json()
        except ValueError as exc:
            raise RPCError(method, None, f"HTTP {resp.status_code}, not JSON: {resp.text[:200]!r}") from exc

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return _result(method, self._post(method, _request(next(self._ids), method, params)))

    def batch(self, calls: Iterable[Call], *, return_errors: bool = False) -> list[Any]:
        """Run ``[(method, params), ...]`` in one request. With ``return_errors`` a failed call
        yields its :class:`RPCError` in place of a result instead of raising."""
        calls = list(calls)
        if not calls:
            return []
        first = next(self._ids)
        for _ in range(len(calls) - 1):
            next(self._ids)
        payload = [_request(first + i, m, p) for i, (m, p) in enumerate(calls)]
        return _batch_results(calls, first, self._post("batch", payload), return_errors)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RPC:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRPC:
    """The same client for trio (or asyncio) programs: ``await rpc.call(...)``."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self._client = httpx.AsyncClient(timeout=timeout, headers={"content-type": "application/json"})
        self._ids = itertools.count(1)

    async def _post(self, method: str, payload: Any) -> Any:
        try:
            resp = await self._client.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            raise RPCError(method, None, f"transport error talking to {self.url}: {exc}") from exc
        try:
            return resp.json()
        except ValueError as exc:
            raise RPCError(method, None, f"HTTP {resp.status_code}, not JSON: {resp.text[:200]!r}") from exc

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return _result(method, await self._post(method, _request(next(self._ids), method, params)))

    async def batch(self, calls: Iterable[Call], *, return_errors: bool = False) -> list[Any]:
        calls = list(calls)
        if not calls:
            return []
        first = next(self._ids)
        for _ in range(len(calls) - 1):
            next(self._ids)
        payload = [_request(first + i, m, p) for i, (m, p) in enumerate(calls)]
        return _batch_results(calls, first, await self._post("batch", payload), return_errors)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> AsyncRPC:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
