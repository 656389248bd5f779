"""execution/cex/gateway.py: Binance's signed order API against the stand-in's paper exchange on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import trio

from execution.cex.gateway import (
    ApiCredentials,
    CredentialError,
    OrderGateway,
    OrderRequest,
    OrderSide,
    OrderStatus,
    Secret,
    parse_order_response,
    parse_query_response,
    query_params,
)
from tools.cex_standin.paper import PaperExchange
from tools.cex_standin.server import BinanceStandin

KEY, SIGNING = "test-api-key", "test-signing-key-not-a-real-one"


def _order(side: OrderSide, qty: int, price: int, coid: str = "t1") -> OrderRequest:
    return OrderRequest(symbol="ETHUSDT", side=side, quantity=qty, limit_price=price, price_scale=8, size_scale=8,
                        client_order_id=coid)


def test_the_signature_is_binances_hmac_of_the_exact_query() -> None:
    creds = ApiCredentials(Secret(KEY), Secret(SIGNING))
    q = _order(OrderSide.BUY, 150_000_000, 206_000_000_000).signed_query(creds, 1_700_000_000_000)
    query, _, sig = q.rpartition("&signature=")
    assert query.startswith("symbol=ETHUSDT&side=BUY&type=LIMIT&timeInForce=IOC&quantity=1.50000000&price=2060.00000000")
    assert query.endswith("&timestamp=1700000000000")
    assert sig == hmac.new(SIGNING.encode(), query.encode(), hashlib.sha256).hexdigest()


def test_credentials_come_from_named_places_and_never_print(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AP_TEST_KEY", KEY)
    f = tmp_path / "signing"
    f.write_text(SIGNING + "\n")
    creds = ApiCredentials.load(key_env="AP_TEST_KEY", hmac_file=str(f))
    assert creds.signing_key.reveal() == SIGNING and SIGNING not in repr(creds) and KEY not in str(creds)
    with pytest.raises(CredentialError, match="AP_MISSING") as err:
        ApiCredentials.load(key_env="AP_MISSING", hmac_file=str(f))
    assert SIGNING not in str(err.value)
    with pytest.raises(CredentialError):
        ApiCredentials.load(key_env="AP_TEST_KEY")


async def test_orders_against_the_paper_exchange() -> None:
    paper = PaperExchange({KEY: SIGNING})
    standin = BinanceStandin(paper=paper, pace=0.0)
    creds = ApiCredentials(Secret(KEY), Secret(SIGNING))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, httpx.AsyncClient() as http:
            ws_port, rest_port = await nursery.start(standin.serve)
            for i in range(600):  # the venue's books exist once the replay is past the capture's snapshots
                standin.replay.advance(i)
            book = standin.replay.books["ETHUSDT"]
            asks = sorted(book["asks"].items())
            gw = OrderGateway(f"http://127.0.0.1:{rest_port}", creds, http)
            # a BUY limited to the best ask fills at most that level's size: IOC leaves the rest
            best_price, best_size = asks[0]
            price = int(best_price.scaleb(8))
            size = int(Decimal(best_size).scaleb(8))
            res = await gw.place(_order(OrderSide.BUY, size + 10**8, price))
            assert res.status is OrderStatus.PARTIALLY_FILLED and res.executed == size
            assert res.quote == size * price and res.quote_scale == 16
            res = await gw.place(_order(OrderSide.BUY, size, price, "t2"))
            assert res.status is OrderStatus.FILLED and res.executed == size
            res = await gw.place(_order(OrderSide.BUY, 10**8, price // 2, "t3"))  # far below the book
            assert res.status is OrderStatus.EXPIRED and not res.filled_any
            bad = OrderGateway(f"http://127.0.0.1:{rest_port}", ApiCredentials(Secret(KEY), Secret("wrong")), http)
            res = await bad.place(_order(OrderSide.SELL, 10**8, 1))
            assert res.status is OrderStatus.REJECTED and res.reason.startswith("-1022")
            stranger = OrderGateway(f"http://127.0.0.1:{rest_port}", ApiCredentials(Secret("x"), Secret("y")), http)
            assert (await stranger.place(_order(OrderSide.SELL, 10**8, 1))).reason.startswith("-2015")
            stale = await gw.place(_order(OrderSide.SELL, 10**8, 1), timestamp_ms=1)
            assert stale.status is OrderStatus.REJECTED and stale.reason.startswith("-1021")
            nursery.cancel_scope.cancel()
    assert len(paper.orders) == 3


def test_a_query_is_signed_like_an_order_and_its_answers_parse() -> None:
    o = _order(OrderSide.SELL, 10**8, 2 * 10**11, "ap7")
    assert query_params(o, 1_700_000_000_000) == [("symbol", "ETHUSDT"), ("origClientOrderId", "ap7"),
                                                  ("recvWindow", "5000"), ("timestamp", "1700000000000")]

    def answer(status: str, executed: str = "0.50000000", coid: str = "ap7") -> str:
        return json.dumps({"symbol": "ETHUSDT", "orderId": 12, "orderListId": -1, "clientOrderId": coid,
                           "price": "2000.00000000", "origQty": "1.00000000", "executedQty": executed,
                           "cummulativeQuoteQty": "1000.00000000", "status": status, "timeInForce": "IOC",
                           "type": "LIMIT", "side": "SELL", "time": 1, "updateTime": 1, "isWorking": False})

    r = parse_query_response(200, answer("EXPIRED"), o)  # IOC: half matched, the rest expired
    assert r.status is OrderStatus.PARTIALLY_FILLED and r.executed == 5 * 10**7 and r.order_id == 12
    assert r.quote == 1000 * 10**16 and r.quote_scale == 16
    assert parse_query_response(200, answer("FILLED", "1.00000000"), o).status is OrderStatus.FILLED
    assert parse_query_response(200, answer("EXPIRED_IN_MATCH", "0"), o).status is OrderStatus.EXPIRED
    assert parse_query_response(200, answer("NEW", "0"), o).status is OrderStatus.PENDING  # still matching
    assert parse_query_response(200, answer("PARTIALLY_FILLED"), o).status is OrderStatus.PENDING
    assert parse_query_response(200, answer("FILLED", coid="other"), o).status is OrderStatus.UNKNOWN
    assert parse_query_response(200, answer("WEIRD"), o).status is OrderStatus.UNKNOWN
    gone = parse_query_response(400, '{"code":-2013,"msg":"Order does not exist."}', o)
    assert gone.status is OrderStatus.NOT_FOUND
    for code, body in [(400, '{"code":-1021,"msg":"Timestamp outside"}'), (503, "busy"), (200, "[]"),
                       (200, "<html>")]:
        assert parse_query_response(code, body, o).status is OrderStatus.UNKNOWN
    # an order's 5XX answer: Binance says its execution status is unknown
    assert parse_order_response(503, '{"code":-1000,"msg":"unknown"}', o).status is OrderStatus.UNKNOWN


async def test_query_duplicate_and_dropped_answers_against_the_paper_exchange() -> None:
    from tools.cex_standin.paper import OrderFaults

    paper = PaperExchange({KEY: SIGNING}, faults=OrderFaults.parse("drop=3"))  # the third request
    standin = BinanceStandin(paper=paper, pace=0.0)
    creds = ApiCredentials(Secret(KEY), Secret(SIGNING))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, httpx.AsyncClient() as http:
            _, rest_port = await nursery.start(standin.serve)
            for i in range(600):
                standin.replay.advance(i)
            best_price, best_size = sorted(standin.replay.books["ETHUSDT"]["asks"].items())[0]
            price, size = int(best_price.scaleb(8)), int(Decimal(best_size).scaleb(8))
            gw = OrderGateway(f"http://127.0.0.1:{rest_port}", creds, http)
            first = _order(OrderSide.BUY, size, price, "q1")
            placed = await gw.place(first)
            assert placed.status is OrderStatus.FILLED
            got = await gw.query(first)  # the query tells the same fill
            assert (got.status, got.executed, got.quote, got.order_id) == \
                (OrderStatus.FILLED, placed.executed, placed.quote, placed.order_id)
            # the same client order id again: refused, and nothing more traded
            dup = await gw.place(first)
            assert dup.status is OrderStatus.REJECTED and dup.reason == "-2010: Duplicate order sent."
            # the answer is dropped after the order executed: the gateway cannot know; the query can
            lost = _order(OrderSide.BUY, size, price, "q2")
            res = await gw.place(lost)
            assert res.status is OrderStatus.UNKNOWN and res.reason == "RemoteProtocolError"
            assert paper.orders[-1]["clientOrderId"] == "q2" and paper.orders[-1]["status"] == "FILLED"
            got = await gw.query(lost)
            assert got.status is OrderStatus.FILLED and got.executed == size and got.quote == size * price
            missing = await gw.query(_order(OrderSide.BUY, size, price, "never-sent"))
            assert missing.status is OrderStatus.NOT_FOUND and missing.reason.startswith("-2013")
            bad = OrderGateway(f"http://127.0.0.1:{rest_port}", ApiCredentials(Secret(KEY), Secret("wrong")), http)
            assert (await bad.query(first)).status is OrderStatus.UNKNOWN  # -1022: says nothing about the order
            # an exchange that cannot be reached: the order never left (ERROR), not "unknown"
            dead = OrderGateway("http://127.0.0.1:1", creds, http)
            assert (await dead.place(_order(OrderSide.BUY, size, price, "q3"))).status is OrderStatus.ERROR
            nursery.cancel_scope.cancel()
    assert [o["clientOrderId"] for o in paper.orders] == ["q1", "q2"] and paper.queries == 3
