"""chain.ws: JSON-RPC over a WebSocket (trio-websocket) against an in-process server: replies by
id, notifications, the error tree (error object vs a socket that fails) and URL redaction."""

from __future__ import annotations

import json
import traceback
from typing import Any

import pytest
import trio
from trio_websocket import WebSocketRequest, serve_websocket

from chain.rpc import EndpointError, RpcError, batched
from chain.ws import WsRpc

SECRETS = ("secret", "key123")


def _no_secret(exc: BaseException) -> None:
    # what a log line or a traceback prints of the exception (not the test's own source lines)
    shown = "".join(traceback.format_exception_only(exc)) + repr(exc) + str(exc)
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)
    assert not any(s in shown for s in SECRETS), shown


async def _node(request: WebSocketRequest) -> None:
    """Answers eth_chainId, eth_subscribe (then one notification), an error object for anything
    else; ``close_now`` closes the socket without answering."""
    ws = await request.accept()
    while True:
        msg = json.loads(await ws.get_message())
        items = msg if isinstance(msg, list) else [msg]
        out: list[dict[str, Any]] = []
        for c in items:
            if c["method"] == "close_now":
                await ws.aclose()
                return
            if c["method"] == "eth_chainId":
                out.append({"jsonrpc": "2.0", "id": c["id"], "result": "0x1"})
            elif c["method"] == "eth_subscribe":
                out.append({"jsonrpc": "2.0", "id": c["id"], "result": "0xsub"})
            elif c["method"] == "silence":
                continue
            else:
                out.append({"jsonrpc": "2.0", "id": c["id"], "error": {"code": -32601, "message": "no such method"}})
        if out:
            await ws.send_message(json.dumps(out if isinstance(msg, list) else out[0]))
        if any(c["method"] == "eth_subscribe" for c in items):
            await ws.send_message(json.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                                              "params": {"subscription": "0xsub", "result": {"number": "0x5"}}}))


async def _serve(nursery: trio.Nursery) -> int:
    server = await nursery.start(serve_websocket, _node, "127.0.0.1", 0, None)
    return int(server.port)


async def test_calls_batches_and_notifications() -> None:
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery)
        with trio.fail_after(10):
            async with WsRpc.open(f"ws://127.0.0.1:{port}/", rpc_timeout=5) as ws:
                assert await ws.call("eth_chainId") == "0x1"
                assert await ws.subscribe("newHeads") == "0xsub"
                assert await ws.notifications.receive() == ("0xsub", {"number": "0x5"})
                res = await ws.batch([("eth_chainId", []), ("nope", [])], return_errors=True)
                assert res[0] == "0x1" and isinstance(res[1], RpcError) and res[1].code == -32601
                assert await batched(ws, [("eth_chainId", [])] * 3, 2) == ["0x1"] * 3
                with pytest.raises(RpcError) as err:  # an error object: the connection stays up
                    await ws.call("nope")
                assert not isinstance(err.value, EndpointError)
                assert ws.broken is None
        nursery.cancel_scope.cancel()


async def test_closed_socket_and_silence_are_endpoint_errors() -> None:
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery)
        with trio.fail_after(10):
            url = f"ws://user:secret@127.0.0.1:{port}/key123"
            async with WsRpc.open(url, rpc_timeout=0.2) as ws:
                with pytest.raises(EndpointError, match="no answer") as err:
                    await ws.call("silence")
                _no_secret(err.value)
                with pytest.raises(EndpointError) as err:
                    await ws.call("close_now")
                _no_secret(err.value)
                assert ws.broken is not None and "secret" not in ws.broken
                with pytest.raises(EndpointError):  # and it stays broken
                    await ws.call("eth_chainId")
        nursery.cancel_scope.cancel()


async def test_refused_connection_is_an_endpoint_error_without_secrets() -> None:
    with trio.fail_after(10), pytest.raises(EndpointError) as err:
        async with WsRpc.open("ws://user:secret@127.0.0.1:1/key123", rpc_timeout=2):
            raise AssertionError("connected to port 1?")
    assert "127.0.0.1:1" in str(err.value) and "OSError" in str(err.value)
    _no_secret(err.value)
