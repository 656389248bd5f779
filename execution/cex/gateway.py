"""Binance spot order gateway: signed REST orders (``POST /api/v3/order``), sans-IO core + httpx shell.

* ``ApiCredentials.load(key_env=..., key_file=..., hmac_env=..., hmac_file=...)`` reads the API key and
  its HMAC signing key from the environment variable or file the configuration *names*; the values are
  kept in :class:`Secret`, whose ``repr``/``str`` never show them (so they cannot reach a log line).
* ``OrderRequest.signed_query(creds, timestamp_ms)`` builds Binance's signed query string: the
  parameters in order, then ``signature`` = hex HMAC-SHA256 of that exact query under the signing key
  (Binance's ``SIGNED`` endpoint security); the API key travels in the ``X-MBX-APIKEY`` header.
* ``parse_order_response`` turns the ``FULL`` response (``status``, ``executedQty``,
  ``cummulativeQuoteQty``, ``fills``) into an :class:`OrderResult` with integer quantities at the
  symbol's scales; an error body (``{"code": -2010, "msg": ...}``) becomes a rejected result.
* ``query_params`` / ``parse_query_response``: ``GET /api/v3/order`` by ``origClientOrderId`` (signed the same
  way), Binance's order-status answer (no ``fills``) or ``-2013 Order does not exist.`` as ``NOT_FOUND``.
* ``OrderGateway.place(order)`` / ``query(order)`` are the shell: one httpx request each, errors mapped at this
  edge. A request that never reached the exchange (connect refused or timed out) is ``ERROR``: nothing was
  placed. One that may have reached it without an answer coming back (read timeout, connection dropped, a 5XX,
  which Binance documents as "execution status unknown") is ``UNKNOWN``: only a query can tell what it did.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from market.scaled import format_scaled, parse_scaled


class Secret:
    """A credential value that never prints."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__


class CredentialError(ValueError):
    """A named credential is missing (the message names the variable or file, never a value)."""


def _read(env: str, file: str, what: str) -> Secret:
    if env:
        value = os.environ.get(env, "")
        if not value:
            raise CredentialError(f"{what}: environment variable {env} is not set")
        return Secret(value.strip())
    if file:
        try:
            return Secret(Path(file).read_text().strip())
        except OSError as exc:
            raise CredentialError(f"{what}: cannot read {file} ({exc.strerror})") from None
    raise CredentialError(f"{what}: name an environment variable or a file")


@dataclass(frozen=True, slots=True)
class ApiCredentials:
    api_key: Secret
    signing_key: Secret

    @classmethod
    def load(cls, *, key_env: str = "", key_file: str = "", hmac_env: str = "", hmac_file: str = "") -> ApiCredentials:
        return cls(_read(key_env, key_file, "API key"), _read(hmac_env, hmac_file, "HMAC signing key"))


def sign(query: str, signing_key: Secret) -> str:
    return hmac.new(signing_key.reveal().encode(), query.encode(), hashlib.sha256).hexdigest()


class OrderSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRequest:
    """A LIMIT IOC order (the worst price we accept; whatever is not matched at once is cancelled)."""

    symbol: str
    side: OrderSide
    quantity: int  # at size_scale
    limit_price: int  # at price_scale
    price_scale: int
    size_scale: int
    client_order_id: str
    recv_window_ms: int = 5000

    def params(self, timestamp_ms: int) -> list[tuple[str, str]]:
        return [("symbol", self.symbol), ("side", self.side.value), ("type", "LIMIT"), ("timeInForce", "IOC"),
                ("quantity", format_scaled(self.quantity, self.size_scale)),
                ("price", format_scaled(self.limit_price, self.price_scale)),
                ("newClientOrderId", self.client_order_id), ("newOrderRespType", "FULL"),
                ("recvWindow", str(self.recv_window_ms)), ("timestamp", str(timestamp_ms))]

    def signed_query(self, creds: ApiCredentials, timestamp_ms: int) -> str:
        return signed(self.params(timestamp_ms), creds)


class OrderStatus(StrEnum):
    FILLED = "FILLED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    EXPIRED = "EXPIRED"  # IOC: nothing (more) matched
    REJECTED = "REJECTED"
    ERROR = "ERROR"  # the request never reached the exchange: nothing was placed
    UNKNOWN = "UNKNOWN"  # sent, no answer (dropped, timed out, 5XX): the order may have executed
    NOT_FOUND = "NOT_FOUND"  # a query: the exchange has no order with that client order id
    PENDING = "PENDING"  # a query: the order is still being matched (NEW, or PARTIALLY_FILLED and working)


FINAL = frozenset({OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED, OrderStatus.EXPIRED, OrderStatus.REJECTED})


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderResult:
    status: OrderStatus
    executed: int = 0  # base, at size_scale
    quote: int = 0  # quote, at price_scale + size_scale... see ``quote_scale``
    quote_scale: int = 0
    order_id: int = 0
    reason: str = ""

    @property
    def filled_any(self) -> bool:
        return self.executed > 0


def parse_order_response(status_code: int, body: str, order: OrderRequest) -> OrderResult:
    if status_code >= 500:  # Binance: the request went to the matching engine, its fate is unknown
        return OrderResult(status=OrderStatus.UNKNOWN, reason=f"HTTP {status_code}")
    try:
        data: Any = json.loads(body)
    except ValueError:
        return OrderResult(status=OrderStatus.ERROR, reason=f"HTTP {status_code}: not JSON")
    if status_code >= 400 or "code" in data and "orderId" not in data:
        return OrderResult(status=OrderStatus.REJECTED, reason=f"{data.get('code')}: {data.get('msg')}")
    scale = order.price_scale + order.size_scale
    executed = parse_scaled(data["executedQty"], order.size_scale)
    status = data["status"]
    if status == "EXPIRED" and executed:
        status = "PARTIALLY_FILLED"  # IOC: part matched, the rest expired
    return OrderResult(status=OrderStatus(status) if status in OrderStatus.__members__ else OrderStatus.ERROR,
                       executed=executed, quote=parse_scaled(data["cummulativeQuoteQty"], scale), quote_scale=scale,
                       order_id=int(data.get("orderId", 0)), reason=status)


def query_params(order: OrderRequest, timestamp_ms: int) -> list[tuple[str, str]]:
    """``GET /api/v3/order``: the order ``order`` was placed as, by its client order id."""
    return [("symbol", order.symbol), ("origClientOrderId", order.client_order_id),
            ("recvWindow", str(order.recv_window_ms)), ("timestamp", str(timestamp_ms))]


def signed(params: list[tuple[str, str]], creds: ApiCredentials) -> str:
    query = urlencode(params)
    return f"{query}&signature={sign(query, creds.signing_key)}"


#: Binance's ``status`` of a queried order -> ours. An IOC order is NEW or PARTIALLY_FILLED only while it is
#: being matched (query again); its end is FILLED, EXPIRED / EXPIRED_IN_MATCH / CANCELED (with whatever
#: ``executedQty`` matched before), or REJECTED.
_QUERIED = {"NEW": OrderStatus.PENDING, "PENDING_NEW": OrderStatus.PENDING, "PARTIALLY_FILLED": OrderStatus.PENDING,
            "FILLED": OrderStatus.FILLED, "EXPIRED": OrderStatus.EXPIRED, "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
            "CANCELED": OrderStatus.EXPIRED, "PENDING_CANCEL": OrderStatus.PENDING,
            "REJECTED": OrderStatus.REJECTED}


def parse_query_response(status_code: int, body: str, order: OrderRequest) -> OrderResult:
    """The answer to :func:`query_params`: the order's fill so far (``executedQty``, ``cummulativeQuoteQty``),
    ``NOT_FOUND`` for ``-2013``, ``UNKNOWN`` for anything that says nothing about the order."""
    if status_code >= 500:
        return OrderResult(status=OrderStatus.UNKNOWN, reason=f"query: HTTP {status_code}")
    try:
        data: Any = json.loads(body)
    except ValueError:
        return OrderResult(status=OrderStatus.UNKNOWN, reason=f"query: HTTP {status_code}: not JSON")
    if not isinstance(data, dict):
        return OrderResult(status=OrderStatus.UNKNOWN, reason="query: not an object")
    if "orderId" not in data:
        if data.get("code") == -2013:
            return OrderResult(status=OrderStatus.NOT_FOUND, reason=f"-2013: {data.get('msg')}")
        return OrderResult(status=OrderStatus.UNKNOWN, reason=f"query: {data.get('code')}: {data.get('msg')}")
    try:
        scale = order.price_scale + order.size_scale
        executed = parse_scaled(data["executedQty"], order.size_scale)
        quote = parse_scaled(data["cummulativeQuoteQty"], scale)
        status = _QUERIED[data["status"]]
    except (KeyError, ValueError, TypeError) as exc:
        return OrderResult(status=OrderStatus.UNKNOWN, reason=f"query: malformed answer ({type(exc).__name__})")
    if data.get("clientOrderId") != order.client_order_id:
        return OrderResult(status=OrderStatus.UNKNOWN, reason="query: answer for another client order id")
    if status is OrderStatus.EXPIRED and executed:
        status = OrderStatus.PARTIALLY_FILLED
    return OrderResult(status=status, executed=executed, quote=quote, quote_scale=scale,
                       order_id=int(data["orderId"]), reason=f"queried: {data['status']}")


class OrderGateway:
    """The httpx shell: sign, send, parse. Transport errors become a result (never raised): ``ERROR`` when the
    request cannot have reached the exchange, ``UNKNOWN`` when it may have."""

    def __init__(self, rest_url: str, creds: ApiCredentials, http: httpx.AsyncClient) -> None:
        self.rest_url = rest_url.rstrip("/")
        self.creds = creds
        self.http = http

    async def place(self, order: OrderRequest, *, timestamp_ms: int | None = None) -> OrderResult:
        ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        url = f"{self.rest_url}/api/v3/order?{order.signed_query(self.creds, ts)}"
        try:
            resp = await self.http.post(url, headers={"X-MBX-APIKEY": self.creds.api_key.reveal()})
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol) as exc:
            return OrderResult(status=OrderStatus.ERROR, reason=f"{type(exc).__name__}")  # never left
        except httpx.HTTPError as exc:
            return OrderResult(status=OrderStatus.UNKNOWN, reason=f"{type(exc).__name__}")
        return parse_order_response(resp.status_code, resp.text, order)

    async def query(self, order: OrderRequest, *, timestamp_ms: int | None = None) -> OrderResult:
        """``GET /api/v3/order?origClientOrderId=``: what the exchange did with ``order``. A transport error or
        an answer that says nothing about the order is ``UNKNOWN`` (ask again)."""
        ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        url = f"{self.rest_url}/api/v3/order?{signed(query_params(order, ts), self.creds)}"
        try:
            resp = await self.http.get(url, headers={"X-MBX-APIKEY": self.creds.api_key.reveal()})
        except httpx.HTTPError as exc:
            return OrderResult(status=OrderStatus.UNKNOWN, reason=f"query: {type(exc).__name__}")
        return parse_query_response(resp.status_code, resp.text, order)
