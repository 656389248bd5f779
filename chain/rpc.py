"""The one JSON-RPC client over HTTP (httpx): a trio face and a sync face, one error tree.

* :class:`HttpRpc`: ``await rpc.call(method, params)`` / ``await rpc.batch(calls)`` under trio
  (``httpx.AsyncClient`` runs under trio as well as asyncio). The collector, the executor and
  the builder client use it.
* :class:`SyncHttpRpc`: the same calls, blocking (``httpx.Client``), for the devnet tools,
  ``portfolio reconcile``, the builder stand-in and tests.
* :mod:`chain.ws` adds a WebSocket connection (calls, batches and ``eth_subscribe``) with the
  same codec and the same errors.

Errors, mapped once here at the edge (no httpx, trio or trio-websocket exception leaves)::

    RpcFailure              the call gave no result
    ├── RpcError            the node answered with a JSON-RPC error object (a bad request, a
    │                       revert): .method .code .message .data
    └── EndpointError       the endpoint did not answer properly: connection refused or dropped,
                            timeout, HTTP error status, a body that is not JSON-RPC

A caller that fails over between endpoints reacts to ``EndpointError``; one that simulates a
transaction reads the revert out of ``RpcError.data``.

URLs are secrets as much as addresses (``https://user:pass@host/…``, ``…/v3/<api key>``,
``…?apikey=…``): no message, log line or exception made here carries more of a URL than
:func:`redact_url` leaves, and the text of a library's exception is scrubbed of the URL's
secret parts before it is quoted.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

import httpx
import trio

__all__ = [
    "AsyncRpc",
    "Call",
    "EndpointError",
    "HttpRpc",
    "RpcEndpoint",
    "RpcError",
    "RpcFailure",
    "SyncHttpRpc",
    "batch_results",
    "batched",
    "redact_url",
    "scrub_urls",
    "request",
    "result",
    "scrub",
]

Call = tuple[str, Sequence[Any]]
DEFAULT_TIMEOUT = 30.0


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
class RpcFailure(Exception):
    """A JSON-RPC call gave no result (see the subclasses)."""


class RpcError(RpcFailure):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: Any, message: str, data: Any = None) -> None:
        detail = f"{method}: {message}"
        if code is not None:
            detail += f" (code {code})"
        if data is not None:
            detail += f" data={data!r}"
        super().__init__(detail)
        self.method, self.code, self.message, self.data = method, code, message, data


class EndpointError(RpcFailure):
    """The endpoint is unusable right now (transport failure, timeout, HTTP error, garbage)."""


# --------------------------------------------------------------------------------------------
# redaction
# --------------------------------------------------------------------------------------------
def redact_url(url: str) -> str:
    """``url`` with everything that may be a secret masked: user info, path and query.

    ``https://user:pw@rpc.example:8545/v3/KEY?apikey=K`` -> ``https://***@rpc.example:8545/***?***``;
    scheme, host and port stay, so a log still says which node. A root path (``/``) is kept.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "<unparsable url>"
    if not parts.scheme or not host:
        return "<url>"
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc += f":{port}"
    if parts.username is not None or parts.password is not None:
        netloc = "***@" + netloc
    out = f"{parts.scheme}://{netloc}"
    if parts.path not in ("", "/"):
        out += "/***"
    elif parts.path == "/":
        out += "/"
    if parts.query:
        out += "?***"
    if parts.fragment:
        out += "#***"
    return out


def _secret_parts(url: str) -> list[str]:
    """Every spelling of ``url``'s secret parts a message may carry: as written, and as a library
    prints them after normalizing the URL (httpx percent-encodes user info, path and query, so a
    token with a blank or a non-ASCII letter appears as ``%20``/``%C3%84`` in its exceptions)."""
    found: list[str | None] = []
    try:
        parts = urlsplit(url)
        found += [parts.username, parts.password, parts.path.strip("/"), parts.query, parts.fragment]
    except ValueError:
        pass
    try:
        u = httpx.URL(url)
        path = u.raw_path.decode("ascii").partition("?")[0]
        found += [u.userinfo.decode("ascii"), *u.userinfo.decode("ascii").split(":", 1), path.strip("/"),
                  u.query.decode("ascii"), u.fragment]
    except (httpx.InvalidURL, UnicodeDecodeError, TypeError, ValueError):
        pass
    variants = set()
    for p in found:
        if p:
            variants |= {p, unquote(p), quote(unquote(p), safe="/:@!$&'()*+,;=~")}
    # longest first, so a part inside another is not left half-masked
    return sorted((p for p in variants if len(p) >= 3), key=len, reverse=True)


def _full_forms(url: str) -> list[str]:
    """``url`` as written and as httpx prints it (normalized): both are replaced by its redaction."""
    forms = [url]
    try:
        forms.append(str(httpx.URL(url)))
    except (httpx.InvalidURL, TypeError, ValueError):
        pass
    return sorted(set(forms), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (a library's exception message) with ``url`` and each of its secret parts masked."""
    for full in _full_forms(url):
        text = text.replace(full, redact_url(url))
    for part in _secret_parts(url):
        text = text.replace(part, "***")
    return text


def scrub_urls(text: str, urls: Iterable[str]) -> str:
    """``text`` with every one of ``urls`` (a process's configured endpoints) scrubbed, for the
    messages that leave a process (a FAILED outcome's reason, published and archived)."""
    for url in urls:
        if url:
            text = scrub(text, url)
    return text


# --------------------------------------------------------------------------------------------
# the codec, shared by every face (sans-IO)
# --------------------------------------------------------------------------------------------
def request(id_: int, method: str, params: Sequence[Any] = ()) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}


def result(method: str, reply: Any) -> Any:
    """The ``result`` of one reply object; :class:`RpcError` for an error object,
    :class:`EndpointError` for anything that is not a JSON-RPC reply."""
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


def batch_results(calls: Sequence[Call], ids: Sequence[int], body: Any, *, return_errors: bool = False) -> list[Any]:
    """Results of a batch reply in call order. With ``return_errors`` a call whose reply is an
    error object yields its :class:`RpcError` in place of a result instead of raising."""
    if not isinstance(body, list):
        result("batch", body)  # a server may answer a whole batch with one error object
        raise EndpointError(f"malformed batch reply {body!r:.200}")
    by_id = {r.get("id"): r for r in body if isinstance(r, dict)}
    out: list[Any] = []
    for (method, _), i in zip(calls, ids):
        if i not in by_id:
            raise EndpointError(f"{method}: no reply in batch")
        try:
            out.append(result(method, by_id[i]))
        except RpcError as exc:
            if not return_errors:
                raise
            out.append(exc)
    return out


def _what(payload: Any) -> str:
    return f"batch of {len(payload)}" if isinstance(payload, list) else str(payload["method"])


def _transport_error(what: str, url: str, exc: BaseException) -> EndpointError:
    return EndpointError(f"{what} at {redact_url(url)}: {type(exc).__name__}: {scrub(str(exc), url)}")


def _decode(what: str, url: str, resp: httpx.Response) -> Any:
    if resp.status_code >= 500 or (resp.status_code != 200 and not resp.content):
        raise EndpointError(f"{what} at {redact_url(url)}: HTTP {resp.status_code}")
    try:
        return resp.json()
    except ValueError:
        raise EndpointError(f"{what} at {redact_url(url)}: HTTP {resp.status_code}, not JSON") from None


class RequestIds:
    """Request ids and payloads of one connection."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def one(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        return request(next(self._ids), method, params)

    def many(self, calls: Sequence[Call]) -> tuple[list[int], list[dict[str, Any]]]:
        ids = [next(self._ids) for _ in calls]
        return ids, [request(i, m, p) for i, (m, p) in zip(ids, calls)]


_HEADERS = {"content-type": "application/json"}


class RpcEndpoint:
    """What every face keeps of its node: the URL, its redacted ``label`` (the only form that
    appears in a message or a ``repr``), the per-call ``timeout`` and the request ids."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.label = redact_url(url)
        self.timeout = timeout
        self._ids = RequestIds()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label})"


# --------------------------------------------------------------------------------------------
# the trio face
# --------------------------------------------------------------------------------------------
class HttpRpc(RpcEndpoint):
    """JSON-RPC over HTTP for trio programs. ``async with HttpRpc(url) as rpc: await rpc.call(...)``.

    ``timeout`` bounds each request as a whole (also with a trio deadline, so a node that
    trickles bytes cannot hold a caller longer)."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(url, timeout)
        self._client = httpx.AsyncClient(timeout=timeout, headers=_HEADERS, transport=transport)

    async def _post(self, payload: Any) -> Any:
        what = _what(payload)
        try:
            with trio.fail_after(self.timeout):
                resp = await self._client.post(self.url, content=json.dumps(payload))
        except (httpx.HTTPError, httpx.InvalidURL, trio.TooSlowError, OSError) as exc:
            raise _transport_error(what, self.url, exc) from None
        return _decode(what, self.url, resp)

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return result(method, await self._post(self._ids.one(method, params)))

    async def batch(self, calls: Iterable[Call], *, return_errors: bool = False) -> list[Any]:
        """Many calls in one request, results in call order (see :func:`batch_results`)."""
        calls = list(calls)
        if not calls:
            return []
        ids, payload = self._ids.many(calls)
        return batch_results(calls, ids, await self._post(payload), return_errors=return_errors)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpRpc:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


# --------------------------------------------------------------------------------------------
# the sync face
# --------------------------------------------------------------------------------------------
class SyncHttpRpc(RpcEndpoint):
    """The same client, blocking: ``with SyncHttpRpc(url) as rpc: rpc.call(...)``."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(url, timeout)
        self._client = httpx.Client(timeout=timeout, headers=_HEADERS, transport=transport)

    def _post(self, payload: Any) -> Any:
        what = _what(payload)
        try:
            resp = self._client.post(self.url, content=json.dumps(payload))
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            raise _transport_error(what, self.url, exc) from None
        return _decode(what, self.url, resp)

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return result(method, self._post(self._ids.one(method, params)))

    def batch(self, calls: Iterable[Call], *, return_errors: bool = False) -> list[Any]:
        """Many calls in one request, results in call order (see :func:`batch_results`)."""
        calls = list(calls)
        if not calls:
            return []
        ids, payload = self._ids.many(calls)
        return batch_results(calls, ids, self._post(payload), return_errors=return_errors)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SyncHttpRpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRpc(Protocol):
    """What trio code needs of a connection: :class:`HttpRpc` or :class:`chain.ws.WsRpc`."""

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any: ...

    async def batch(self, calls: Sequence[Call]) -> list[Any]: ...


async def batched(rpc: AsyncRpc, calls: Sequence[Call], size: int) -> list[Any]:
    """``rpc.batch`` in chunks of ``size`` calls (providers cap a batch's length)."""
    out: list[Any] = []
    for start in range(0, len(calls), size):
        out += await rpc.batch(calls[start : start + size])
    return out
