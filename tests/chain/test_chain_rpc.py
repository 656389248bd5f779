"""chain.rpc: the JSON-RPC codec, both HTTP faces, error mapping at the edge and URL redaction."""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import trio

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
