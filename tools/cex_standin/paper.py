"""A paper exchange behind the Binance stand-in: ``POST /api/v3/order`` matched against the replayed book, and
``GET /api/v3/order`` (query an order by ``origClientOrderId`` or ``orderId``).

Speaks Binance's signed order API: the ``X-MBX-APIKEY`` header names the key, ``signature`` must be the hex
HMAC-SHA256 of the query before it under that key's signing key (else ``-1022``), ``timestamp`` must be within
``recvWindow`` of the stand-in's clock (else ``-1021``). Orders are LIMIT with ``timeInForce`` IOC (or MARKET):
a BUY takes the replayed asks up to the limit price, a SELL the bids down to it; what is not matched at once
expires. The answer is the ``FULL`` response (``status`` FILLED / PARTIALLY_FILLED as EXPIRED with an
``executedQty`` / EXPIRED, ``executedQty``, ``cummulativeQuoteQty``, ``fills`` with a ``commission`` of
``fee_ppm`` in the received asset). Paper fills do not consume the replayed book (the replay is the market's
record; our size is assumed small against it) -- say so wherever paper profits are shown.

A ``newClientOrderId`` the exchange already has an order for is refused with ``-2010 Duplicate order sent.``
(stricter than Binance, which documents the id as unique among *open* orders: an IOC order is never open
afterwards, so a client must not count on the refusal; ours queries instead, ``specs/cex-legs.md``). The query
answers Binance's order-status object (``status``, ``executedQty``, ``cummulativeQuoteQty``, ``time``,
``updateTime``, ``isWorking``, ...; no ``fills``), or ``-2013 Order does not exist.``

``OrderFaults`` (the CLI's ``--order-faults "reject=1;cap=2:0.5;delay=3:6;drop=4"``) make the n-th order received
(1-based) fail the way a real venue can: ``reject`` answers ``-2010`` (insufficient balance), ``cap`` fills at
most that quantity of it (the rest expires: a partial fill), ``delay`` answers only after that many seconds
(an exchange that does not answer in time), ``drop`` executes the order and then closes the connection without
an answer (the answer lost on the way: only a query tells what happened). ``delay`` and ``drop`` count order
requests as they arrive; ``reject`` and ``cap`` count those that reach matching.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .replay import BinanceReplay
    from .server import Request


def _err(status: int, code: int, msg: str) -> tuple[int, str]:
    return status, json.dumps({"code": code, "msg": msg})


@dataclass
class OrderFaults:
    reject: set[int] = field(default_factory=set)  # order numbers answered -2010
    cap: dict[int, Decimal] = field(default_factory=dict)  # order number -> most it fills
    delay: dict[int, float] = field(default_factory=dict)  # order number -> seconds before the answer
    drop: set[int] = field(default_factory=set)  # order numbers executed whose answer is never sent

    @classmethod
    def parse(cls, spec: str) -> OrderFaults:
        """``reject=1,4;cap=2:0.5,3:0;delay=5:6.5;drop=6`` (order numbers from 1, in arrival order)."""
        f = cls()
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            key, _, value = part.partition("=")
            items = [v.strip() for v in value.split(",") if v.strip()]
            if key not in ("reject", "cap", "delay", "drop"):
                raise ValueError(f"unknown order fault {key!r} (reject, cap, delay, drop)")
            try:
                if key in ("reject", "drop"):
                    (f.reject if key == "reject" else f.drop).update(int(v) for v in items)
                for v in items if key not in ("reject", "drop") else ():
                    n, _, amount = v.partition(":")
                    if key == "cap":
                        f.cap[int(n)] = Decimal(amount)
                    else:
                        f.delay[int(n)] = float(amount)
            except (ArithmeticError, ValueError):
                raise ValueError(f"order fault {part!r}: not a number") from None
        return f


class PaperExchange:
    def __init__(self, keys: dict[str, str], *, fee_ppm: int = 1000, clock_ms: Any = None,
                 faults: OrderFaults | None = None) -> None:
        self.keys = dict(keys)  # API key -> signing key (the stand-in's own test credentials)
        self.fee_ppm = fee_ppm
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.faults = faults or OrderFaults()
        self.orders: list[dict[str, Any]] = []
        self.by_client_id: dict[tuple[str, str], dict[str, Any]] = {}  # (symbol, clientOrderId) -> order
        self.queries = 0  # order queries answered (found or not)
        self.received = 0  # signed orders that reached matching (reject and cap count these)
        self.arrived = 0  # order requests that arrived (delay counts these; the same numbers for good orders)
        self._next_id = 1

    def arrive(self) -> tuple[float, bool]:
        """An order request arrived: the seconds its answer is held back (the ``delay`` switch), and whether
        the answer is dropped once the order executed (the ``drop`` switch)."""
        self.arrived += 1
        return self.faults.delay.get(self.arrived, 0.0), self.arrived in self.faults.drop

    def _signed(self, req: Request) -> tuple[int, str] | dict[str, str]:
        """A SIGNED request's parameters, or the error Binance answers (key, signature, timestamp)."""
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
        except (KeyError, ValueError):
            return _err(400, -1102, "Mandatory parameter was not sent, was empty/null, or malformed.")
        if abs(self.clock_ms() - ts) > window:
            return _err(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return q

    def query(self, req: Request) -> tuple[int, str]:
        """``GET /api/v3/order``: one order's status by ``origClientOrderId`` (or ``orderId``)."""
        q = self._signed(req)
        if isinstance(q, tuple):
            return q
        symbol = q.get("symbol", "").upper()
        coid, oid = q.get("origClientOrderId", ""), q.get("orderId", "")
        if not symbol or not (coid or oid):
            return _err(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        self.queries += 1
        if oid:
            found = next((o for o in self.orders if str(o["orderId"]) == oid and o["symbol"] == symbol), None)
        else:
            found = self.by_client_id.get((symbol, coid))
        if found is None:
            return _err(400, -2013, "Order does not exist.")
        t = found["transactTime"]
        answer = {k: found[k] for k in ("symbol", "orderId", "clientOrderId", "price", "origQty", "executedQty",
                                        "cummulativeQuoteQty", "status", "timeInForce", "type", "side")}
        answer.update({"orderListId": -1, "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": t,
                       "updateTime": t, "isWorking": False, "workingTime": t,
                       "origQuoteOrderQty": "0.00000000", "selfTradePreventionMode": "NONE"})
        return 200, json.dumps(answer)

    def order(self, req: Request, replay: BinanceReplay) -> tuple[int, str]:
        q = self._signed(req)
        if isinstance(q, tuple):
            return q
        try:
            symbol, side, kind = q["symbol"].upper(), q["side"], q["type"]
            qty = Decimal(q["quantity"])
        except (KeyError, ValueError, ArithmeticError):
            return _err(400, -1102, "Mandatory parameter was not sent, was empty/null, or malformed.")
        if symbol not in replay.books and symbol not in replay.capture_snapshots:
            return _err(400, -1121, "Invalid symbol.")
        coid = q.get("newClientOrderId", "")
        if coid and (symbol, coid) in self.by_client_id:
            return _err(400, -2010, "Duplicate order sent.")
        self.received += 1
        n = self.received
        if n in self.faults.reject:
            return _err(400, -2010, "Account has insufficient balance for requested action.")
        qty = min(qty, self.faults.cap.get(n, qty))
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
        qty = Decimal(q["quantity"])
        left = qty - executed
        status = "FILLED" if left == 0 else "EXPIRED"
        order_id, self._next_id = self._next_id, self._next_id + 1
        coid = coid or f"paper{order_id}"  # Binance makes one up when none is sent
        answer = {"symbol": symbol, "orderId": order_id, "clientOrderId": coid,
                  "transactTime": self.clock_ms(), "price": q.get("price", "0"), "origQty": q["quantity"],
                  "executedQty": format(executed, "f"), "cummulativeQuoteQty": format(quote, "f"),
                  "status": status, "timeInForce": q.get("timeInForce", "GTC"), "type": kind, "side": side,
                  "fills": fills}
        self.orders.append(answer)
        self.by_client_id[(symbol, coid)] = answer
        return 200, json.dumps(answer)
