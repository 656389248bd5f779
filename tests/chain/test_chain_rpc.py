"""chain.rpc: the JSON-RPC codec, both HTTP faces, error mapping at the edge and URL redaction."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import traceback
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import trio
from trio.testing import wait_all_tasks_blocked

import chain.rpc as rpc_module
from chain.rpc import (
    EndpointError,
    HttpRpc,
    RpcError,
    RpcFailure,
    SyncHttpRpc,
    batch_results,
    batched,
    redact_url,
    result,
    scrub,
)

SECRET_URL = "http://user:secret@127.0.0.1:1/key123"
SECRETS = ("secret", "key123", "user:")


# -- redaction ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "shown"), [
    ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
    ("http://127.0.0.1:8545/", "http://127.0.0.1:8545/"),
    ("https://user:pw@rpc.example:8545/v3/KEY?apikey=K", "https://***@rpc.example:8545/***?***"),
    ("wss://mainnet.example/ws/v3/0123456789abcdef", "wss://mainnet.example/***"),
    ("https://node.example?api_key=abc", "https://node.example?***"),
    ("https://token@node.example", "https://***@node.example"),
    ("http://[::1]:8545/k", "http://[::1]:8545/***"),
    ("not a url", "<url>"),
    ("http://host:notaport/", "<unparsable url>"),
])
def test_redact_url_keeps_scheme_host_port_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scrub_masks_the_url_and_each_secret_part() -> None:
    text = f"cannot reach {SECRET_URL}; user:secret rejected for path /key123 (secret)"
    out = scrub(text, SECRET_URL)
    assert not any(s in out for s in ("secret", "key123"))
    assert "http://***@127.0.0.1:1/***" in out


@pytest.mark.parametrize("url", [
    "https://u:p w0rd@h.example/bot12:AB CD/send?token=x y",  # blanks: percent-encoded by httpx
    "https://h.example/hook/ÄBCtoken?k=v4lue",  # a non-ASCII letter: %C3%84
    "HTTPS://H.EXAMPLE/Hook/Tok3n",  # scheme and host lower-cased by httpx
])
def test_scrub_masks_the_url_as_httpx_prints_it(url: str) -> None:
    """A library quotes the URL it normalized: the secret parts must go in that spelling too."""
    try:
        httpx.Response(500, request=httpx.Request("POST", url)).raise_for_status()
    except httpx.HTTPStatusError as exc:
        text = str(exc)
    out = scrub(text, url)
    assert redact_url(url) in out
    for secret in ("w0rd", "AB%20CD", "bot12", "x%20y", "%C3%84BC", "BCtoken", "v4lue", "Tok3n"):
        assert secret not in out, (secret, out)


# -- the codec ------------------------------------------------------------------------------------
def test_result_maps_error_objects_and_garbage_apart() -> None:
    assert result("m", {"jsonrpc": "2.0", "id": 1, "result": "0x1"}) == "0x1"
    with pytest.raises(RpcError) as err:
        result("eth_call", {"id": 1, "error": {"code": 3, "message": "execution reverted", "data": "0xdead"}})
    assert (err.value.method, err.value.code, err.value.message, err.value.data) == (
        "eth_call", 3, "execution reverted", "0xdead")
    assert not isinstance(err.value, EndpointError)
    with pytest.raises(RpcError) as err:
        result("m", {"id": 1, "error": "plain text"})
    assert err.value.code is None and err.value.message == "plain text"
    for garbage in (None, [], "x", {"id": 1}):
        with pytest.raises(EndpointError):
            result("m", garbage)


def test_batch_results_order_errors_and_missing_replies() -> None:
    calls = [("a", []), ("b", []), ("c", [])]
    body = [{"id": 12, "result": "C"}, {"id": 10, "result": "A"}, {"id": 11, "error": {"code": -32601, "message": "no"}}]
    with pytest.raises(RpcError):
        batch_results(calls, [10, 11, 12], body)
    out = batch_results(calls, [10, 11, 12], body, return_errors=True)
    assert out[0] == "A" and out[2] == "C" and isinstance(out[1], RpcError) and out[1].code == -32601
    with pytest.raises(EndpointError, match="b: no reply in batch"):
        batch_results(calls, [10, 11, 12], body[:2])
    with pytest.raises(RpcError, match="too many"):  # one error object for the whole batch
        batch_results(calls, [1, 2, 3], {"id": None, "error": {"code": -32600, "message": "too many"}})
    with pytest.raises(EndpointError):
        batch_results(calls, [1, 2, 3], {"id": None, "result": 1})


# -- both faces over a mock transport -------------------------------------------------------------
def _node(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)

    def answer(c: dict[str, Any]) -> dict[str, Any]:
        if c["method"] == "eth_chainId":
            return {"jsonrpc": "2.0", "id": c["id"], "result": "0x7a69"}
        if c["method"] == "eth_call":
            return {"jsonrpc": "2.0", "id": c["id"], "error": {"code": 3, "message": "execution reverted",
                                                                "data": "0x08c379a0"}}
        return {"jsonrpc": "2.0", "id": c["id"], "error": {"code": -32601, "message": "method not found"}}

    if request.url.path == "/down":
        return httpx.Response(503, text="upstream unavailable")
    if request.url.path == "/html":
        return httpx.Response(200, text="<html>hello</html>")
    if request.url.path == "/empty403":
        return httpx.Response(403)
    out = [answer(c) for c in body] if isinstance(body, list) else answer(body)
    return httpx.Response(200, json=out)


def test_sync_face_results_and_error_mapping() -> None:
    with SyncHttpRpc("http://node.invalid/", transport=httpx.MockTransport(_node)) as rpc:
        assert rpc.call("eth_chainId") == "0x7a69"
        with pytest.raises(RpcError) as err:
            rpc.call("eth_call", [{}, "latest"])
        assert err.value.code == 3 and err.value.data == "0x08c379a0"
        res = rpc.batch([("eth_chainId", []), ("nope", [])], return_errors=True)
        assert res[0] == "0x7a69" and isinstance(res[1], RpcError) and res[1].code == -32601
        assert rpc.batch([]) == []
    for path, match in (("down", "HTTP 503"), ("html", "not JSON"), ("empty403", "HTTP 403")):
        with SyncHttpRpc(f"http://node.invalid/{path}", transport=httpx.MockTransport(_node)) as rpc:
            with pytest.raises(EndpointError, match=match) as err:
                rpc.call("eth_chainId")
            assert path not in str(err.value)  # the path may be an API key: never shown


async def test_trio_face_results_and_error_mapping() -> None:
    async with HttpRpc("http://node.invalid/", transport=httpx.MockTransport(_node)) as rpc:
        assert await rpc.call("eth_chainId") == "0x7a69"
        with pytest.raises(RpcError) as err:
            await rpc.call("eth_call", [{}, "latest"])
        assert err.value.code == 3
        res = await rpc.batch([("eth_chainId", []), ("nope", [])], return_errors=True)
        assert isinstance(res[1], RpcError)
        assert await batched(rpc, [("eth_chainId", [])] * 5, 2) == ["0x7a69"] * 5
    async with HttpRpc("http://node.invalid/down", transport=httpx.MockTransport(_node)) as rpc:
        with pytest.raises(EndpointError, match="HTTP 503"):
            await rpc.call("eth_chainId")


# -- a real socket: error object vs connection refused, and no secret anywhere --------------------
@pytest.fixture
def node_url() -> Iterator[str]:
    """A real HTTP JSON-RPC node on 127.0.0.1 that answers every call with an error object."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            req = json.loads(self.rfile.read(int(self.headers["content-length"])))
            data = json.dumps({"jsonrpc": "2.0", "id": req["id"],
                               "error": {"code": -32000, "message": "header not found"}}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://user:secret@127.0.0.1:{server.server_address[1]}/key123"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _no_secret(exc: BaseException) -> None:
    # what a log line or a traceback prints of the exception (not the test's own source lines)
    shown = "".join(traceback.format_exception_only(exc)) + repr(exc) + str(exc)
    assert not any(s in shown for s in SECRETS), shown
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def test_sync_face_error_object_vs_refused(node_url: str) -> None:
    with SyncHttpRpc(node_url, timeout=5) as rpc:
        with pytest.raises(RpcError) as err:
            rpc.call("eth_getBlockByNumber", ["0x99", False])
        assert err.value.code == -32000 and not isinstance(err.value, EndpointError)
        _no_secret(err.value)
        assert "secret" not in repr(rpc) and "key123" not in rpc.label
    with SyncHttpRpc(SECRET_URL, timeout=5) as rpc:
        with pytest.raises(EndpointError) as err:
            rpc.call("eth_chainId")
    assert "127.0.0.1:1" in str(err.value) and "ConnectError" in str(err.value)
    _no_secret(err.value)
    with SyncHttpRpc(SECRET_URL, timeout=5) as rpc, pytest.raises(EndpointError) as err:
        rpc.batch([("eth_chainId", []), ("eth_blockNumber", [])])
    _no_secret(err.value)


async def test_trio_face_error_object_vs_refused(node_url: str) -> None:
    async with HttpRpc(node_url, timeout=5) as rpc:
        with pytest.raises(RpcError) as err:
            await rpc.call("eth_getBlockByNumber", ["0x99", False])
        assert err.value.code == -32000 and not isinstance(err.value, EndpointError)
    for url in (SECRET_URL, "http://127.0.0.1:1/?apikey=key123&user=secret"):
        async with HttpRpc(url, timeout=5) as rpc:
            with pytest.raises(EndpointError) as err:
                await rpc.call("eth_chainId")
        assert isinstance(err.value, RpcFailure)
        _no_secret(err.value)


async def test_trio_face_timeout_is_an_endpoint_error() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await trio.sleep(10)
        raise AssertionError("not reached")

    async with HttpRpc("http://u:secret@node.invalid/key123", timeout=0.05,
                       transport=httpx.MockTransport(slow)) as rpc:
        with pytest.raises(EndpointError, match="TooSlowError") as err:
            await rpc.call("eth_chainId")
    _no_secret(err.value)


# -- the trio face's own transport (http://): keep-alive HTTP/1.1 over trio streams, a real loopback server ----------
class LoopbackNode:
    """A JSON-RPC node on 127.0.0.1 that speaks HTTP/1.1 by hand (not with h11: the client's parser is checked
    against another implementation), one request at a time per connection, its manner switchable per test.

    ``manner(conn, k, call)`` decides the k-th request of connection ``conn`` (1-based): the answer's bytes, or
    None to close the connection without answering. ``close_idle`` closes each connection after its answer,
    without saying so (a server's idle timeout that struck at once); ``reset_idle`` resets it instead (RST)."""

    def __init__(self) -> None:
        self.port = 0
        self.connections = 0
        self.seen: list[tuple[int, str]] = []  # (connection, method) of every request read
        self.heads: list[bytes] = []
        self.close_idle = False
        self.reset_idle = False
        self.manner = self.plain

    @staticmethod
    def answer(c: dict[str, Any]) -> dict[str, Any]:
        if c["method"] == "eth_chainId":
            return {"jsonrpc": "2.0", "id": c["id"], "result": "0x7a69"}
        if c["method"] in ("echo", "eth_sendRawTransaction") or c["method"].startswith("eth_get"):
            return {"jsonrpc": "2.0", "id": c["id"], "result": c["params"][0] if c["params"] else "0x0"}
        return {"jsonrpc": "2.0", "id": c["id"], "error": {"code": -32601, "message": "method not found"}}

    @staticmethod
    def http(body: bytes, status: str = "200 OK", extra: bytes = b"") -> bytes:
        return (b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"
                % (status.encode(), len(body), extra, body))

    async def plain(self, conn: int, k: int, call: Any) -> bytes | None:
        out = [self.answer(c) for c in call] if isinstance(call, list) else self.answer(call)
        return self.http(json.dumps(out).encode())

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        conn, k, buf = self.connections, 0, b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:")))
                while len(buf) < length:
                    buf += await stream.receive_some(65536)
                body, buf = buf[:length], buf[length:]
                k += 1
                call = json.loads(body)
                self.heads.append(head)
                self.seen.append((conn, call["method"] if isinstance(call, dict) else "batch"))
                out = await self.manner(conn, k, call)
                if out is None:
                    return
                await stream.send_all(out)
                if self.reset_idle:
                    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                if self.close_idle or self.reset_idle or b"connection: close" in out.lower():
                    return
        except trio.BrokenResourceError:
            return
        finally:
            await trio.aclose_forcefully(stream)

    def url(self, userinfo: str = "", path: str = "/") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}{path}"


@pytest.fixture
async def loopback(nursery: trio.Nursery) -> LoopbackNode:
    node = LoopbackNode()
    (listener,) = await nursery.start(partial(trio.serve_tcp, node.handle, 0, host="127.0.0.1"))
    node.port = listener.socket.getsockname()[1]
    return node


async def test_lean_transport_is_used_for_http_and_answers_as_before(loopback: LoopbackNode) -> None:
    """The results and error mapping of the mock-transport test above, over the lean transport itself."""
    async with HttpRpc(loopback.url(), timeout=5) as rpc:
        assert rpc._client is None and rpc._http11 is not None  # not httpx
        assert await rpc.call("eth_chainId") == "0x7a69"
        with pytest.raises(RpcError) as err:
            await rpc.call("eth_call", [{}, "latest"])
        assert err.value.code == -32601 and not isinstance(err.value, EndpointError)
        res = await rpc.batch([("eth_chainId", []), ("nope", [])], return_errors=True)
        assert res[0] == "0x7a69" and isinstance(res[1], RpcError)
        assert await batched(rpc, [("eth_chainId", [])] * 5, 2) == ["0x7a69"] * 5


async def test_one_connection_for_many_calls(loopback: LoopbackNode) -> None:
    async with HttpRpc(loopback.url(), timeout=5) as rpc:
        for i in range(50):
            assert await rpc.call("echo", [i]) == i
    assert loopback.connections == 1 and len(loopback.seen) == 50


async def test_basic_auth_path_and_query_are_sent_as_httpx_sent_them(loopback: LoopbackNode) -> None:
    async with HttpRpc(loopback.url("us%40er:p%3Ass@", "/v3/key 1?apikey=k"), timeout=5) as rpc:
        assert await rpc.call("eth_chainId") == "0x7a69"
    head = loopback.heads[0].decode()
    assert head.startswith("POST /v3/key%201?apikey=k HTTP/1.1\r\n")
    lines = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in head.split("\r\n")[1:]}
    assert lines["authorization"] == "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert lines["host"] == f"127.0.0.1:{loopback.port}" and lines["content-type"] == "application/json"


async def test_a_server_that_closes_the_idle_connection_gets_a_new_one(loopback: LoopbackNode) -> None:
    """The server closes each connection after its answer, without a Connection: close: the next call (even a
    send) finds the idle connection closed before using it and opens another; nothing is asked twice."""
    loopback.close_idle = True
    async with HttpRpc(loopback.url(), timeout=5) as rpc:
        assert await rpc.call("eth_chainId") == "0x7a69"
        await wait_all_tasks_blocked()  # the server has closed: its FIN is on our socket
        assert await rpc.call("eth_sendRawTransaction", ["0xf00d"]) == "0xf00d"
        await wait_all_tasks_blocked()
        assert await rpc.call("echo", [3]) == 3
    assert loopback.seen == [(1, "eth_chainId"), (2, "eth_sendRawTransaction"), (3, "echo")]


async def test_a_connection_dropped_under_a_request_resends_reads_only(loopback: LoopbackNode) -> None:
    """The keep-alive race: the server reads the second request of a connection and closes it unanswered. A read
    is sent again on a new connection and answered; eth_sendRawTransaction, which may have reached the node,
    is not: the caller gets an EndpointError, and the node saw it once."""
    async def drop_second(conn: int, k: int, call: Any) -> bytes | None:
        return None if k == 2 else await loopback.plain(conn, k, call)

    loopback.manner = drop_second
    async with HttpRpc(loopback.url(), timeout=5) as rpc:
        assert await rpc.call("eth_chainId") == "0x7a69"
        assert await rpc.call("eth_getCode", [7]) == 7  # dropped on connection 1, answered on connection 2
        assert await rpc.batch([("eth_getBalance", []), ("eth_chainId", [])], return_errors=True)
        with pytest.raises(EndpointError, match="ConnectionDropped"):
            await rpc.call("eth_sendRawTransaction", ["0xbeef"])  # the second request on connection 3
    assert loopback.seen == [(1, "eth_chainId"), (1, "eth_getCode"), (2, "eth_getCode"), (2, "batch"), (3, "batch"),
                             (3, "eth_sendRawTransaction")]


async def test_a_send_that_fails_on_a_dead_connection_is_sent_again(loopback: LoopbackNode,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A pooled connection reset by the server, the readability check missing it: the send fails, nothing reached
    the node, so even eth_sendRawTransaction goes out again on a new connection -- once."""
    loopback.reset_idle = True
    async with HttpRpc(loopback.url(), timeout=5) as rpc:
        assert await rpc.call("eth_chainId") == "0x7a69"
        await wait_all_tasks_blocked()  # the server has reset the connection
        loopback.reset_idle = False
        monkeypatch.setattr(rpc_module._Connection, "stale", lambda self: False)  # the check before reuse misses it
        assert await rpc.call("eth_sendRawTransaction", ["0xcafe"]) == "0xcafe"
    assert loopback.seen == [(1, "eth_chainId"), (2, "eth_sendRawTransaction")]


async def test_chunked_and_connection_close_answers(loopback: LoopbackNode) -> None:
    async def chunked(conn: int, k: int, call: Any) -> bytes | None:
        body = json.dumps(loopback.answer(call)).encode()
        parts = [body[:7], body[7:20], body[20:]]
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        close = b"connection: close\r\n" if call["params"] and call["params"][0] == "close" else b""
        return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n%s\r\n%s"
                % (close, chunks))

    loopback.manner = chunked
    async with HttpRpc(loopback.url(), timeout=5) as rpc:
        assert await rpc.call("echo", ["x" * 3000]) == "x" * 3000
        assert await rpc.call("echo", [2]) == 2  # the same connection
        assert await rpc.call("echo", ["close"]) == "close"  # then closed by us too
        assert rpc._http11._idle == []  # type: ignore[union-attr]
        assert await rpc.call("echo", [4]) == 4
    assert [c for c, _ in loopback.seen] == [1, 1, 1, 2]


@pytest.mark.parametrize(("status", "body", "match"), [
    ("500 Internal Server Error", b'{"jsonrpc": "2.0"}', "HTTP 500"),
    ("200 OK", b"<html>hello</html>", "HTTP 200, not JSON"),
    ("403 Forbidden", b"", "HTTP 403"),
    ("200 OK", b'{"jsonrpc": "2.0", "id": 99999, "result": "0x1"}', "reply to another request"),
])
async def test_bad_answers_are_endpoint_errors_without_secrets(loopback: LoopbackNode, status: str, body: bytes,
                                                               match: str) -> None:
    async def bad(conn: int, k: int, call: Any) -> bytes | None:
        return loopback.http(body, status)

    loopback.manner = bad
    async with HttpRpc(loopback.url("user:secret@", "/key123"), timeout=5) as rpc:
        with pytest.raises(EndpointError, match=match) as err:
            await rpc.call("eth_chainId")
        assert match.startswith("reply") or f"127.0.0.1:{loopback.port}" in str(err.value)
        _no_secret(err.value)
        loopback.manner = loopback.plain
        assert await rpc.call("eth_chainId") == "0x7a69"  # the connection (or a new one) still serves


async def test_garbage_and_a_truncated_answer_are_endpoint_errors(loopback: LoopbackNode) -> None:
    answers = [b"SSH-2.0-OpenSSH_9.6\r\n\r\n", b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"id"']

    async def garbage(conn: int, k: int, call: Any) -> bytes | None:
        return answers[0]

    loopback.manner = garbage
    loopback.close_idle = True  # the truncated answer ends at EOF
    async with HttpRpc(loopback.url("user:secret@", "/key123"), timeout=5) as rpc:
        for match in ("illegal status line", "without sending complete message body"):
            with pytest.raises(EndpointError, match=f"RemoteProtocolError: .*{match}") as err:
                await rpc.call("eth_chainId")
            _no_secret(err.value)
            answers.pop(0)


async def test_lean_transport_timeout_is_an_endpoint_error_and_the_connection_is_not_reused(
        loopback: LoopbackNode) -> None:
    async def slow_once(conn: int, k: int, call: Any) -> bytes | None:
        if call["method"] == "slow":
            await trio.sleep(10)
        return await loopback.plain(conn, k, call)

    loopback.manner = slow_once
    async with HttpRpc(loopback.url("u:secret@", "/key123"), timeout=5) as rpc:
        assert await rpc.call("eth_chainId") == "0x7a69"
        rpc.timeout = 0.1
        with pytest.raises(EndpointError, match="TooSlowError") as err:
            await rpc.call("slow")
        _no_secret(err.value)
        rpc.timeout = 5
        assert await rpc.call("eth_chainId") == "0x7a69"  # on a new connection: the old one may still answer
    assert [c for c, _ in loopback.seen] == [1, 1, 2]


async def test_concurrent_calls_each_get_their_own_answer(loopback: LoopbackNode) -> None:
    """Twenty tasks call at once, the node answering in a shuffled order: each gets its own answer (ids
    checked), on at most twenty connections, and at most MAX_IDLE stay open afterwards."""
    import random

    async def shuffled(conn: int, k: int, call: Any) -> bytes | None:
        await trio.sleep(random.random() * 0.05)
        return await loopback.plain(conn, k, call)

    loopback.manner = shuffled
    got: dict[int, Any] = {}
    async with HttpRpc(loopback.url(), timeout=5) as rpc:
        async def one(i: int) -> None:
            got[i] = await rpc.call("echo", [{"n": i}])

        for _ in range(2):
            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(one, i)
            assert got == {i: {"n": i} for i in range(20)}
            got.clear()
        assert len(rpc._http11._idle) == rpc_module.MAX_IDLE  # type: ignore[union-attr]
    assert loopback.connections <= 20 + 20 - rpc_module.MAX_IDLE


async def test_refused_and_closed_client_are_endpoint_errors() -> None:
    async with HttpRpc(SECRET_URL, timeout=5) as rpc:
        with pytest.raises(EndpointError, match="ConnectError") as err:
            await rpc.call("eth_chainId")
    _no_secret(err.value)
    with pytest.raises(EndpointError, match="ClosedResourceError"):
        await rpc.call("eth_chainId")


def test_a_proxy_in_the_environment_keeps_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx routed requests through HTTP_PROXY/HTTPS_PROXY/ALL_PROXY unless NO_PROXY said otherwise: such a node
    stays on httpx."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy",
                "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert HttpRpc("http://127.0.0.1:8545")._http11 is not None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    proxied = HttpRpc("http://127.0.0.1:8545")
    assert proxied._http11 is None
    assert proxied._client._transport._pool._keepalive_expiry is None  # type: ignore[union-attr]  # kept alive too
    assert HttpRpc("https://127.0.0.1:8545")._http11 is not None  # HTTP_PROXY is for http:// only
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert HttpRpc("https://127.0.0.1:8545")._http11 is None
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert HttpRpc("http://127.0.0.1:8545")._http11 is not None


# -- https://: the same transport over trio's TLS stream, trusting what httpx trusted ----------------------------
@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (certificate, key), made by the openssl command line."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


async def test_https_speaks_over_trio_tls_and_checks_the_certificate(nursery: trio.Nursery, tls_cert: tuple[str, str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An https:// node: the certificate is checked against httpx's trust (its CA bundle, or SSL_CERT_FILE), then
    many calls share one TLS connection, and a connection the server closed is replaced."""
    cert, key = tls_cert
    node = LoopbackNode()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    (listener,) = await nursery.start(partial(trio.serve_ssl_over_tcp, node.handle, 0, server_tls, host="127.0.0.1",
                                              https_compatible=True))
    node.port = listener.transport_listener.socket.getsockname()[1]
    url = f"https://user:secret@127.0.0.1:{node.port}/key123"
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    async with HttpRpc(url, timeout=5) as rpc:  # a self-signed certificate: not trusted
        assert rpc._client is None and rpc._http11 is not None and rpc._http11.tls is not None
        with pytest.raises(EndpointError, match="ConnectError: TLS handshake.*CERTIFICATE_VERIFY_FAILED") as err:
            await rpc.call("eth_chainId")
        _no_secret(err.value)
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    async with HttpRpc(url, timeout=5) as rpc:
        for i in range(20):
            assert await rpc.call("echo", [i]) == i
        await wait_all_tasks_blocked()  # the server is past its last answer (it reads close_idle after a send)
        node.close_idle = True
        assert await rpc.call("eth_chainId") == "0x7a69"  # then the server closes the connection
        await wait_all_tasks_blocked()
        assert await rpc.call("eth_sendRawTransaction", ["0xf00d"]) == "0xf00d"
    assert [c for c, _ in node.seen] == [2] * 21 + [3]  # 1: the refused handshake
    assert node.heads[0].decode().startswith("POST /key123 HTTP/1.1\r\n")
