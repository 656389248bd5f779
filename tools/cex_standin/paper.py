"""A paper exchange behind the Binance stand-in: ``POST /api/v3/order`` matched against the replayed book.

Speaks Binance's signed order API: the ``X-MBX-APIKEY`` header names the key, ``signature`` must be the hex
HMAC-SHA256 of the query before it under that key's signing key (else ``-1022``), ``timestamp`` must be within
``recvWindow`` of the stand-in's clock (else ``-1021``). Orders are LIMIT with ``timeInForce`` IOC (or MARKET):
a BUY takes the replayed asks up to the limit price, a SELL the bids down to it; what is not matched at once
expires. The answer is the ``FULL`` response (``status`` FILLED / PARTIALLY_FILLED as EXPIRED with an
``executedQty`` / EXPIRED, ``executedQty``, ``cummulativeQuoteQty``, ``fills`` with a ``commission`` of
``fee_ppm`` in the received asset). Paper fills do not consume the replayed book (the replay is the market's
record; our size is assumed small against it) -- say so wherever paper profits are shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .replay import BinanceReplay
    from .server import Request


def _err(status: int, code: int, msg: str) -> tuple[int, str]:
    return status, json.dumps({"code": code, "msg": msg})


class PaperExchange:
    def __init__(self, keys: dict[str, str], *, fee_ppm: int = 1000, clock_ms: Any = None) -> None:
        self.keys = dict(keys)  # API key -> signing key (the stand-in's own test credentials)
        self.fee_ppm = fee_ppm
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.orders: list[dict[str, Any]] = []
        self._next_id = 1

    def order(self, req: Request, replay: BinanceReplay) -> tuple[int, str]:
        key = req.headers.get("x-mbx-apikey", "")
        secret = self.keys.get(key)
        if secret is None:
            return _err(401, -2015, "Invalid API-key, IP, or permissions for action.")
        query, sep, signature = req.raw_query.rpartition("&signature=")
        want = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        if not sep or not hmac.compare_digest(want, signature):
            return _err(400, -1022, "Signature for this request is not valid.")
        q = {k: v[0] for k, v in req.query.items()}
        try:
            ts, window = int(q["timestamp"]), int(q.get("recvWindow", "5000"))
            symbol, side, kind = q["symbol"].upper(), q["side"], q["type"]
            qty = Decimal(q["quantity"])
        except (KeyError, ValueError):
            return _err(400, -1102, "Mandatory parameter was not sent, was empty/null, or malformed.")
        if abs(self.clock_ms() - ts) > window:
            return _err(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        if symbol not in replay.books and symbol not in replay.capture_snapshots:
            return _err(400, -1121, "Invalid symbol.")
        limit = Decimal(q["price"]) if kind == "LIMIT" else None
        book = replay.books.get(symbol) or {"bids": {}, "asks": {}}
        levels = sorted(book["asks"].items()) if side == "BUY" else sorted(book["bids"].items(), reverse=True)
        left, fills, quote = qty, [], Decimal(0)
        for price, size in levels:
            if left <= 0 or limit is not None and (price > limit if side == "BUY" else price < limit):
                break
            take = min(Decimal(size), left)
            left -= take
            quote += take * price
            received = take if side == "BUY" else take * price
            fills.append({"price": format(price, "f"), "qty": format(take, "f"),
                          "commission": format(received * self.fee_ppm / 1_000_000, "f"),
                          "commissionAsset": "BASE" if side == "BUY" else "QUOTE", "tradeId": len(self.orders)})
        executed = qty - left
        status = "FILLED" if left == 0 else "EXPIRED"
        order_id, self._next_id = self._next_id, self._next_id + 1
        answer = {"symbol": symbol, "orderId": order_id, "clientOrderId": q.get("newClientOrderId", ""),
                  "transactTime": self.clock_ms(), "price": q.get("price", "0"), "origQty": q["quantity"],
                  "executedQty": format(executed, "f"), "cummulativeQuoteQty": format(quote, "f"),
                  "status": status, "timeInForce": q.get("timeInForce", "GTC"), "type": kind, "side": side,
                  "fills": fills}
        self.orders.append(answer)
        return 200, json.dumps(answer)
