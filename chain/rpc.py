"""The one JSON-RPC client over HTTP: a trio face and a sync face, one error tree.

* :class:`HttpRpc`: ``await rpc.call(method, params)`` / ``await rpc.batch(calls)`` under trio.
  The collector, the executor (its node, its builders, the cross-chain sides' nodes) and the
  rebalancer use it. Its transport (see "The trio face's transport" below): keep-alive
  HTTP/1.1 with h11 over trio TCP streams (``http://``) or trio's TLS streams (``https://``)
  (:class:`_Http11`); ``httpx.AsyncClient`` only for a node behind a proxy configured in the
  environment, or a test's injected ``transport``.
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

The trio face's transport
-------------------------
httpx costs about 0.5 ms of client CPU per request (its request/response models, httpcore's
pool and its locks, the trio backend's wrappers), several times the request itself on a
devnet. Client CPU per call (``time.process_time``) over 2,000 sequential
``eth_chainId``/``eth_blockNumber`` calls to anvil: this client on httpx 0.51-0.52 ms at load
average 1, 0.64-0.67 ms at 5-8; on the transport below 0.16-0.17 ms at either (3-4x less); a raw
socket with hand parsing 0.06-0.07 ms; over TLS (``https://``, a loopback trio server, load 9)
0.74-0.77 ms on httpx, 0.24 ms here. So a node is spoken to directly: h11 (sans-IO, the parser
httpcore itself uses) over ``trio.SocketStream``, or over ``trio.SSLStream`` for ``https://`` with
httpx's own TLS context (``httpx.create_ssl_context()``: its CA bundle, ``SSL_CERT_FILE`` /
``SSL_CERT_DIR``, hostname checks; ALPN ``http/1.1``), so a node is trusted exactly as before:

* **Keep-alive, no idle expiry**: a connection is kept until the server closes it (signals
  come in bursts; httpx dropped a connection idle for 5 s, and the first signal after a quiet
  spell paid a new connection inside its simulation). ``Connection: close``, an HTTP/1.0
  answer or a body read to EOF close it after the answer.
* **Concurrency**: one request per connection at a time; a caller takes an idle connection or
  opens a new one, and gives it back after a complete answer (at most ``MAX_IDLE`` are kept).
  So concurrent calls (the executor's simulation and a send, the keep-warm request, receipt
  polls) never wait for each other, and an answer cannot reach another caller.
* **A dropped keep-alive connection, and what is sent again.** Before reuse, an idle connection
  that has become readable (the server's FIN, or bytes nobody asked for) is closed and
  another taken. The request is sent again on a new connection only when it cannot have reached
  the node, or cannot have done anything there:

  - the send itself failed on a reused connection (the request's bytes were not all handed
    to the kernel, so the node got at most a truncated request, which it cannot act on): any
    method is sent again, once;
  - the send went out but the connection was closed before the first byte of an answer (the
    server closed the idle connection as the request crossed it: the usual keep-alive race)
    -- the request may have been read and acted upon, so only a payload whose every method is
    a read (:func:`resendable`: ``eth_call``, ``eth_get*``, ``eth_chainId``, ...) is sent
    again, once. ``eth_sendRawTransaction``, ``eth_sendBundle`` and any method not known to be
    a read is never sent again by the transport: the caller gets an ``EndpointError`` and its
    own recovery decides. The executor's: a failed signal reads the node's pending nonce and
    counts the nonce spent when the send got through; the signed transaction's row is written
    before the send, so a restart finds it on the node. (A second broadcast of the same signed
    bytes would be harmless on chain, "already known", but a bundle or a method we do not know
    need not be, and which to send again is the caller's decision, not a transport's.)

  An error after the first byte of an answer is never retried.
* **Timeouts**: the whole call (connect, send, answer) runs under the face's trio deadline; a
  connection interrupted mid-request is closed, never reused.
* **Basic auth** from the URL's user info (``http://user:pass@host``), as httpx sent it.

A node the environment's ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` routes through a proxy (and
not ``NO_PROXY``) stays on httpx, which honoured them; its pool, too, keeps connections with no
idle expiry (:data:`KEEP_ALIVE_LIMITS`). The sync face
(:class:`SyncHttpRpc`, tools and tests, off every critical path) stays on ``httpx.Client``.
"""

from __future__ import annotations

import base64
import itertools
import json
import select
import ssl
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

import h11
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
    "resendable",
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


def result(method: str, reply: Any, id_: int | None = None) -> Any:
    """The ``result`` of one reply object; :class:`RpcError` for an error object,
    :class:`EndpointError` for anything that is not a JSON-RPC reply (or, given the request's ``id_``,
    a result that answers another request)."""
    if not isinstance(reply, dict):
        raise EndpointError(f"{method}: malformed reply {reply!r:.200}")
    if id_ is not None and "result" in reply and reply.get("id") != id_:
        raise EndpointError(f"{method}: reply to another request (id {reply.get('id')!r:.40}, sent {id_})")
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


def _decode(what: str, url: str, status: int, content: bytes) -> Any:
    if status >= 500 or (status != 200 and not content):
        raise EndpointError(f"{what} at {redact_url(url)}: HTTP {status}")
    try:
        return json.loads(content)
    except ValueError:
        raise EndpointError(f"{what} at {redact_url(url)}: HTTP {status}, not JSON") from None


#: JSON-RPC methods that only read: the transport may send such a request again after a keep-alive connection was
#: closed under it (see "The trio face's transport"). ``eth_call``/``eth_estimateGas``/``eth_callBundle`` simulate;
#: nothing here changes a node's state or broadcasts anything.
_READ_METHODS = frozenset({
    "eth_chainId", "eth_blockNumber", "eth_call", "eth_estimateGas", "eth_gasPrice", "eth_maxPriorityFeePerGas",
    "eth_feeHistory", "eth_syncing", "eth_callBundle", "net_version", "web3_clientVersion"})
_READ_PREFIXES = ("eth_get",)


def resendable(payload: Any) -> bool:
    """Whether every call of a request payload (one call or a batch) only reads: safe to send a second time."""
    calls = payload if isinstance(payload, list) else [payload]
    return all(c["method"] in _READ_METHODS or c["method"].startswith(_READ_PREFIXES) for c in calls)


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
# the trio face's own transport: keep-alive HTTP/1.1 with h11 over trio streams (TCP, or TLS for https://)
# --------------------------------------------------------------------------------------------
#: idle connections an :class:`HttpRpc` keeps per node; a connection given back beyond them is closed. More
#: than the executor's peak of concurrent calls to one node (simulations, sends, receipt polls, keep-warm).
MAX_IDLE = 8
_RECEIVE = 65_536
#: what may stay unescaped in a request target (RFC 3986 pchar, "/" and "?"); anything else is
#: percent-encoded as httpx did (an existing ``%XX`` is kept)
_TARGET_SAFE = "/?%:@!$&'()*+,;=~"
#: httpx's pool (proxied nodes): its defaults but for the idle expiry (kept until the server closes it)
KEEP_ALIVE_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=None)


class ConnectError(OSError):
    """The TCP connection to the node could not be opened."""


class ConnectionDropped(Exception):
    """The connection closed (or was reset) after the request went out and before the first byte of an answer."""


class _Unsent(Exception):
    """The request's bytes did not all reach the kernel: the node got at most a truncated request."""


class _Connection:
    """One keep-alive connection: a trio stream and its h11 state machine, one request at a time."""

    __slots__ = ("h11", "sock", "stream")

    def __init__(self, stream: trio.abc.Stream, sock: trio.socket.SocketType) -> None:
        self.stream = stream  # a trio.SocketStream, or a trio.SSLStream over one
        self.sock = sock  # the TCP socket under it
        self.h11 = h11.Connection(h11.CLIENT)

    def stale(self) -> bool:
        """Readable while idle: the server's FIN (or bytes nobody asked for) is waiting; not to be reused."""
        poll = select.poll()  # not select.select: a process's descriptors may pass FD_SETSIZE (1024)
        poll.register(self.sock.fileno(), select.POLLIN)
        return bool(poll.poll(0))

    def close(self) -> None:
        self.sock.close()  # what SocketStream.aclose does, without the checkpoint (also safe when cancelled)

    async def exchange(self, head: h11.Request, body: bytes) -> tuple[int, bytes, bool]:
        """Send one request, read its whole answer: (status, body, whether the connection can be reused)."""
        conn = self.h11
        request = conn.send(head) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
        try:
            await self.stream.send_all(request)
        except (trio.BrokenResourceError, OSError) as exc:
            raise _Unsent from exc
        status = 0
        chunks: list[bytes] = []
        answered = False
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await self.stream.receive_some(_RECEIVE)
                except (trio.BrokenResourceError, OSError) as exc:
                    if answered:
                        raise
                    raise ConnectionDropped(f"connection reset before an answer ({exc})") from None
                if not data and not answered:
                    raise ConnectionDropped("the server closed the connection before an answer")
                answered = True
                conn.receive_data(bytes(data))  # (SSLStream may give a bytearray) b"" at EOF: h11 ends a body read to EOF, or raises on a truncated one
            elif type(event) is h11.Response:
                status = event.status_code
            elif type(event) is h11.Data:
                chunks.append(event.data)
            elif type(event) is h11.EndOfMessage:
                break
            # h11.InformationalResponse (1xx): the answer follows
        keep = conn.our_state is h11.DONE and conn.their_state is h11.DONE  # not after "Connection: close" / HTTP/1.0
        if keep:
            conn.start_next_cycle()
        return status, b"".join(chunks) if len(chunks) != 1 else chunks[0], keep


def _proxied(scheme: str, host: str) -> bool:
    """Whether the environment routes ``scheme`` to ``host`` through a proxy (httpx honours ``HTTP_PROXY`` & co.)."""
    proxies = urllib.request.getproxies_environment()
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


class _Http11:
    """Keep-alive JSON-RPC POSTs to one ``http://`` endpoint (see "The trio face's transport")."""

    def __init__(self, host: str, port: int, target: str, headers: list[tuple[str, str]],
                 tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.target, self.headers, self.tls = host, port, target, headers, tls
        self._idle: list[_Connection] = []
        self._heads: dict[int, h11.Request] = {}  # the request head of each body length (events are immutable)
        self._closed = False

    @classmethod
    def for_url(cls, url: str) -> _Http11 | None:
        """The transport of ``url``, or None where httpx stays (a proxy, another scheme, a URL it must judge)."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not host or _proxied(scheme, host):
            return None
        authority = f"[{host}]" if ":" in host else host
        if port is not None:
            authority += f":{port}"
        target = quote(parts.path or "/", safe=_TARGET_SAFE)
        if parts.query:
            target += "?" + quote(parts.query, safe=_TARGET_SAFE)
        headers = [("host", authority), ("content-type", "application/json"), ("user-agent", "alphapulse")]
        if parts.username is not None or parts.password is not None:  # basic auth, as httpx sent it
            cred = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
            headers.append(("authorization", "Basic " + base64.b64encode(cred).decode("ascii")))
        if scheme == "http":
            return cls(host, 80 if port is None else port, target, headers)
        tls = httpx.create_ssl_context()  # httpx's own: the same CA bundle, SSL_CERT_FILE/SSL_CERT_DIR, checks
        tls.set_alpn_protocols(["http/1.1"])
        return cls(host, 443 if port is None else port, target, headers, tls)

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to have met a server's idle timeout
            if not conn.stale():
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Connection:
        try:
            tcp = await trio.open_tcp_stream(self.host, self.port)
        except OSError as exc:
            raise ConnectError(str(exc)) from None
        if self.tls is None:
            return _Connection(tcp, tcp.socket)
        # https_compatible: a server that closes without close_notify is an EOF, as in every HTTPS client
        tls = trio.SSLStream(tcp, self.tls, server_hostname=self.host, https_compatible=True)
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError as exc:
            tcp.socket.close()
            cause = exc.__cause__ or exc
            raise ConnectError(f"TLS handshake with {self.host}:{self.port}: {type(cause).__name__}: {cause}") from None
        except BaseException:
            tcp.socket.close()
            raise
        return _Connection(tls, tcp.socket)

    async def post(self, body: bytes, payload: Any) -> tuple[int, bytes]:
        """POST ``body`` (``payload`` encoded); (status, answer body). Sent a second time only as documented."""
        if self._closed:
            raise trio.ClosedResourceError("the client is closed")
        head = self._heads.get(len(body))
        if head is None:  # h11 validates a request's headers as it builds it: once per body length, not per call
            if len(self._heads) >= 256:
                self._heads.clear()
            head = self._heads[len(body)] = h11.Request(
                method="POST", target=self.target, headers=[*self.headers, ("content-length", str(len(body)))])
        conn = self._idle_connection()
        reused = conn is not None
        while True:
            if conn is None:
                conn = await self._connect()
            try:
                status, content, keep = await conn.exchange(head, body)
            except _Unsent as exc:
                conn.close()
                if not reused:
                    raise exc.__cause__ from None  # type: ignore[misc]
            except ConnectionDropped:
                conn.close()
                if not (reused and resendable(payload)):
                    raise
            except BaseException:
                conn.close()  # interrupted mid-request (timeout, cancellation, a garbled answer): never reused
                raise
            else:
                if keep and not self._closed and len(self._idle) < MAX_IDLE:
                    self._idle.append(conn)
                else:
                    conn.close()
                return status, content
            conn, reused = None, False  # once more, on a new connection

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()


# --------------------------------------------------------------------------------------------
# the trio face
# --------------------------------------------------------------------------------------------
class HttpRpc(RpcEndpoint):
    """JSON-RPC over HTTP for trio programs. ``async with HttpRpc(url) as rpc: await rpc.call(...)``.

    ``timeout`` bounds each request as a whole (also with a trio deadline, so a node that
    trickles bytes cannot hold a caller longer). Nodes get the lean transport above; a proxied
    node or an injected httpx ``transport`` (tests) go through httpx."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(url, timeout)
        self._http11 = _Http11.for_url(url) if transport is None else None
        self._client = None if self._http11 is not None else httpx.AsyncClient(
            timeout=timeout, headers=_HEADERS, transport=transport, limits=KEEP_ALIVE_LIMITS)

    async def _post(self, payload: Any) -> Any:
        body = json.dumps(payload).encode()
        try:
            with trio.fail_after(self.timeout):
                if self._http11 is not None:
                    status, content = await self._http11.post(body, payload)
                else:
                    assert self._client is not None
                    resp = await self._client.post(self.url, content=body)
                    status, content = resp.status_code, resp.content
        except (httpx.HTTPError, httpx.InvalidURL, h11.ProtocolError, ConnectionDropped, trio.TooSlowError,
                trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise _transport_error(_what(payload), self.url, exc) from None
        return _decode(_what(payload), self.url, status, content)

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        payload = self._ids.one(method, params)
        return result(method, await self._post(payload), payload["id"])

    async def batch(self, calls: Iterable[Call], *, return_errors: bool = False) -> list[Any]:
        """Many calls in one request, results in call order (see :func:`batch_results`)."""
        calls = list(calls)
        if not calls:
            return []
        ids, payload = self._ids.many(calls)
        return batch_results(calls, ids, await self._post(payload), return_errors=return_errors)

    async def aclose(self) -> None:
        if self._http11 is not None:
            self._http11.close()
            await trio.lowlevel.checkpoint()
        else:
            assert self._client is not None
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
        return _decode(what, self.url, resp.status_code, resp.content)

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        payload = self._ids.one(method, params)
        return result(method, self._post(payload), payload["id"])

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
