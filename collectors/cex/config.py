"""``alphapulse collector binance|coinbase --config FILE``: the TOML configuration, checked at start-up.

Built-in defaults cover endpoints and symbol rules for both exchanges; a user adds only symbols::

    # binance.toml
    symbols = ["ETHUSDT", "BTCUSDT"]

    # coinbase.toml
    symbols = ["ETH-USD", "BTC-USD"]
    feed = "advanced"                      # or "exchange" (default)

Everything else is optional::

    ws_url = "ws://127.0.0.1:9443"         # a stand-in (tools/cex_standin); default: the real endpoint
    rest_url = "http://127.0.0.1:9444"
    snapshot_limit = 5000                  # Binance REST depth levels (5..5000)
    max_message_bytes = 67108864           # the WebSocket frame limit (see below)
    source_id = 0x4243
    relay_socket = "/run/alphapulse/market_data.sock"

    [rules.ETHUSDT]                        # per-symbol overrides of the built-in symbol rules
    base = "ETH"
    quote = "USDT"
    price_scale = 8                        # decimals kept for prices / sizes (integers on the bus)
    size_scale = 8

    [api]                                  # trading only: where the key is, never the key itself
    key_env = "BINANCE_API_KEY"            # the NAME of an environment variable ...
    hmac_file = "/run/secrets/binance_hmac"   # ... or of a file holding it (the HMAC signing key;
                                           # names with "secret" in them are refused by runtime.secrets)

Symbol rules: Binance writes every price and size with 8 decimals, so scale 8 is exact; base and quote are
split off the symbol by the known quote assets (``QUOTE_ASSETS``) unless ``rules`` says otherwise. Coinbase
symbols are ``BASE-QUOTE``; on the Exchange feed the scales come from the REST ``/products`` listing
(``quote_increment`` / ``base_increment``) unless ``rules`` sets them, else 8.

WebSocket frame limit: trio-websocket refuses (closes the connection on) any message larger than its
``max_message_size``, 1 MiB by default; a Coinbase full-depth ``snapshot`` can be several MiB in one frame,
so the shells raise it deliberately to ``max_message_bytes`` (default 64 MiB).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypeVar

from protocol.ids import Venue
from runtime.config import U32, Config, ConfigError, Meta, decode, load_toml

from .book import MAX_SCALE, Instrument

Scale = Annotated[int, Meta(ge=0, le=MAX_SCALE)]
Seconds = Annotated[float, Meta(gt=0)]

QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "BTC", "ETH", "BNB", "EUR", "GBP", "TRY",
                "BRL", "JPY")
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20

BINANCE_WS = "wss://stream.binance.com:9443"
BINANCE_REST = "https://api.binance.com"
COINBASE_EXCHANGE_WS = "wss://ws-feed.exchange.coinbase.com"
COINBASE_EXCHANGE_REST = "https://api.exchange.coinbase.com"
COINBASE_ADVANCED_WS = "wss://advanced-trade-ws.coinbase.com"


class SymbolRule(Config):
    base: str = ""
    quote: str = ""
    price_scale: Scale | None = None
    size_scale: Scale | None = None


class ApiKey(Config):
    """Where the trading key is: names of environment variables or files, never the values."""

    key_env: str = ""
    key_file: str = ""
    hmac_env: str = ""
    hmac_file: str = ""

    def __post_init__(self) -> None:
        for name in ("key", "hmac"):
            if getattr(self, f"{name}_env") and getattr(self, f"{name}_file"):
                raise ConfigError(f"give {name}_env or {name}_file, not both")


class _Common(Config):
    symbols: tuple[str, ...]
    ws_url: str = ""
    rest_url: str = ""
    rules: dict[str, SymbolRule] = {}
    source_id: U32 = 0x4358  # "CX"
    relay_socket: str = ""
    relay_connect_timeout: Seconds = 10.0
    max_message_bytes: Annotated[int, Meta(ge=1 << 16)] = DEFAULT_MAX_MESSAGE_BYTES
    max_backoff: Seconds = 30.0
    api: ApiKey | None = None

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ConfigError("at least one symbol is needed", path="symbols")
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError("a symbol is listed twice", path="symbols")
        for name in ("ws_url",):
            v = getattr(self, name)
            if v and not v.startswith(("ws://", "wss://")):
                raise ConfigError(f"expected a ws:// or wss:// URL, got {v!r}", path=name)
        if self.rest_url and not self.rest_url.startswith(("http://", "https://")):
            raise ConfigError(f"expected an http:// or https:// URL, got {self.rest_url!r}", path="rest_url")
        for sym in self.rules:
            if sym not in self.symbols:
                raise ConfigError(f"rule for {sym!r}, which is not in symbols", path=f"rules.{sym}")


class BinanceConfig(_Common):
    source_id: U32 = 0x4249  # "BI"
    depth_stream: str = "depth@100ms"
    snapshot_limit: Annotated[int, Meta(ge=5, le=5000)] = 1000

    @property
    def ws(self) -> str:
        return (self.ws_url or BINANCE_WS).rstrip("/")

    @property
    def rest(self) -> str:
        return (self.rest_url or BINANCE_REST).rstrip("/")

    def instruments(self) -> list[Instrument]:
        out = []
        for sym in self.symbols:
            rule = self.rules.get(sym, SymbolRule())
            base, quote = rule.base, rule.quote
            if not (base and quote):
                quote = quote or next((q for q in QUOTE_ASSETS if sym.endswith(q) and len(sym) > len(q)), "")
                base = base or (sym[: -len(quote)] if quote else "")
            if not (base and quote):
                raise ConfigError(f"cannot tell base and quote of {sym!r}: set rules.{sym}.base/quote",
                                  path="symbols")
            out.append(Instrument(venue=Venue.BINANCE, symbol=sym.upper(), base=base, quote=quote,
                                  price_scale=8 if rule.price_scale is None else rule.price_scale,
                                  size_scale=8 if rule.size_scale is None else rule.size_scale))
        return out


class CoinbaseConfig(_Common):
    source_id: U32 = 0x4342  # "CB"
    feed: Literal["exchange", "advanced"] = "exchange"
    channels: tuple[str, ...] = ()  # Exchange feed only; default: level2_batch, matches, ticker, heartbeat
    scales_from_rest: bool = True  # Exchange feed: read quote/base increments from REST /products

    @property
    def ws(self) -> str:
        return (self.ws_url or (COINBASE_ADVANCED_WS if self.feed == "advanced" else COINBASE_EXCHANGE_WS)).rstrip("/")

    @property
    def rest(self) -> str:
        return (self.rest_url or COINBASE_EXCHANGE_REST).rstrip("/")

    def instruments(self, increments: dict[str, tuple[int, int]] | None = None) -> list[Instrument]:
        """``increments``: product -> (price decimals, size decimals) read from REST, when available."""
        out = []
        for sym in self.symbols:
            rule = self.rules.get(sym, SymbolRule())
            parts = sym.split("-")
            base, quote = rule.base or parts[0], rule.quote or (parts[1] if len(parts) > 1 else "")
            if not quote:
                raise ConfigError(f"cannot tell base and quote of {sym!r}: set rules.{sym}.base/quote",
                                  path="symbols")
            inc_p, inc_s = (increments or {}).get(sym, (8, 8))
            out.append(Instrument(venue=Venue.COINBASE, symbol=sym, base=base, quote=quote,
                                  price_scale=inc_p if rule.price_scale is None else rule.price_scale,
                                  size_scale=inc_s if rule.size_scale is None else rule.size_scale))
        return out


_Feed = TypeVar("_Feed", BinanceConfig, CoinbaseConfig)


def _load(cls: type[_Feed], path: str | Path) -> _Feed:
    """Decode the file, then resolve every symbol to an instrument (its errors name the file too)."""
    cfg = decode(cls, load_toml(path), file=path)
    try:
        cfg.instruments()
    except ConfigError as exc:
        raise exc.within(file=path) from None
    return cfg


def load_binance(path: str | Path) -> BinanceConfig:
    return _load(BinanceConfig, path)


def load_coinbase(path: str | Path) -> CoinbaseConfig:
    return _load(CoinbaseConfig, path)
