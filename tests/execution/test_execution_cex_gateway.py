"""execution/cex/gateway.py: Binance's signed order API against the stand-in's paper exchange on loopback."""

from __future__ import annotations

import hashlib
import hmac
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
