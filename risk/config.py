"""Risk configuration: frozen keyword-only dataclasses loaded from TOML.

Every section is optional; a missing breaker section disables that breaker. Unknown keys are
an error at start-up (``ConfigError`` naming the dotted path of the key), never a silent
default. Money is integer base units of the token; gas prices are integer wei.

Example (``alphapulse risk --config risk.toml``)::

    [relays]                       # optional: default sockets from relays.paths
    execution = "/tmp/ap/execution.sock"

    [risk]
    source_id = 7001
    sender = "risk"

    [alerts]
    webhook_url = "https://discord.example/api/webhooks/..."
    style = "discord"              # discord {"content"}, slack {"text"}, telegram {"chat_id","text"}

    [daily_loss]
    day_start_utc = "00:00"
    [daily_loss.tokens."1:0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"]
    max_loss = 500000000000000000          # 0.5 WETH in wei
    gas_per_eth = 1000000000000000000      # profit-token base units per 1 ETH of gas

    [trade_size.tokens."1:0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"]
    max_amount_in = 20000000000000000000

    [gas_price]
    max_wei = 300000000000
    chains = { "1" = 200000000000 }

    [failure_rate]
    window = 20
    min_results = 10
    max_failure_rate_bps = 5000

    [stale_data]
    venues = { uniswap_v3 = 30.0, "1000" = 5.0 }

    [relay_gaps]
    grace_s = 2.0

    [volatility]
    window = 50
    min_samples = 20
    max_sigma = 6.0

Tokens are written ``"<chain_id>:<0x address>"``; venues by ``protocol.ids.Venue`` name
(case-insensitive) or numeric code.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from protocol.execution import Outcome
from protocol.ids import TokenId, Venue
from protocol.system import StopScope


class ConfigError(ValueError):
    """A configuration file is malformed: the message names the offending key."""


T = TypeVar("T")


# ------------------------------------------------------------------ generic loader


def from_mapping(cls: type[T], data: Any, path: str = "") -> T:
    """Build the frozen dataclass ``cls`` from a TOML mapping, rejecting unknown keys.

    Supported field types: int, float, str, bool, nested dataclasses, ``tuple[X, ...]``,
    ``dict[str, X]`` and ``X | None``. Shared by ``portfolio.config``.
    """
    where = path or "<top level>"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {_join(path, unknown[0])!r} (allowed: {', '.join(sorted(names))})"
        )
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], _join(path, f.name))
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except TypeError as exc:  # a required key is missing
        raise ConfigError(f"{where}: {exc}") from None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, path)
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, path)  # type: ignore[arg-type]
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected an array, got {value!r}")
        return tuple(_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        _, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {value!r}")
        return {str(k): _convert(item, v, _join(path, str(k))) for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported field type {tp!r}")  # a bug in a config class


def load_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# ------------------------------------------------------------------ value parsers


def parse_token(text: str, path: str = "token") -> TokenId:
    """``"1:0xabc..."`` -> TokenId."""
    chain, sep, addr = text.partition(":")
    try:
        if not sep:
            raise ValueError("expected <chain_id>:<0x address>")
        return TokenId.of(int(chain), addr)
    except ValueError as exc:
        raise ConfigError(f"{path}: bad token {text!r}: {exc}") from None


def parse_venue(text: str, path: str = "venue") -> int:
    t = text.strip()
    if t.isdigit():
        code = int(t)
        if code >> 16:
            raise ConfigError(f"{path}: venue code {code} does not fit in 16 bits")
        return code
    try:
        return int(Venue[t.upper()])
    except KeyError:
        raise ConfigError(
            f"{path}: unknown venue {text!r} (a code, or one of {', '.join(v.name.lower() for v in Venue)})"
        ) from None


def parse_scope(text: str, allowed: tuple[StopScope, ...], path: str) -> StopScope:
    try:
        scope = StopScope[text.upper()]
    except KeyError:
        scope = None
    if scope is None or scope not in allowed:
        raise ConfigError(f"{path}: scope must be one of {', '.join(s.name.lower() for s in allowed)}, not {text!r}")
    return scope


def parse_outcomes(names: tuple[str, ...], path: str) -> frozenset[int]:
    out = set()
    for n in names:
        try:
            out.add(int(Outcome[n.upper()]))
        except KeyError:
            raise ConfigError(f"{path}: unknown outcome {n!r} (one of {', '.join(o.name for o in Outcome)})") from None
    return frozenset(out)


def _positive(value: float, path: str) -> None:
    if value <= 0:
        raise ConfigError(f"{path}: must be positive, got {value!r}")


# ------------------------------------------------------------------ sections


@dataclass(frozen=True, kw_only=True)
class TokenLossLimit:
    max_loss: int  # base units of the profit token; trips when the day's net P&L <= -max_loss
    gas_per_eth: int = 0  # profit-token base units worth 1 ETH (1e18 wei) of gas; 0 ignores gas

    def __post_init__(self) -> None:
        _positive(self.max_loss, "daily_loss.tokens.*.max_loss")
        if self.gas_per_eth < 0:
            raise ConfigError("daily_loss.tokens.*.gas_per_eth: must not be negative")


@dataclass(frozen=True, kw_only=True)
class DailyLossConfig:
    day_start_utc: str = "00:00"
    scope: str = "all"
    tokens: dict[str, TokenLossLimit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parse_scope(self.scope, (StopScope.ALL, StopScope.CHAIN), "daily_loss.scope")
        for k in self.tokens:
            parse_token(k, f"daily_loss.tokens.{k}")
        h, sep, m = self.day_start_utc.partition(":")
        if not (sep and h.isdigit() and m.isdigit() and int(h) < 24 and int(m) < 60):
            raise ConfigError(f"daily_loss.day_start_utc: expected HH:MM, got {self.day_start_utc!r}")

    @property
    def day_offset_ns(self) -> int:
        h, _, m = self.day_start_utc.partition(":")
        return (int(h) * 3600 + int(m) * 60) * 1_000_000_000

    def limits(self) -> dict[TokenId, TokenLossLimit]:
        return {parse_token(k): v for k, v in self.tokens.items()}


@dataclass(frozen=True, kw_only=True)
class TokenSizeLimit:
    max_amount_in: int

    def __post_init__(self) -> None:
        _positive(self.max_amount_in, "trade_size.tokens.*.max_amount_in")


@dataclass(frozen=True, kw_only=True)
class TradeSizeConfig:
    scope: str = "strategy"
    tokens: dict[str, TokenSizeLimit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parse_scope(self.scope, (StopScope.ALL, StopScope.CHAIN, StopScope.STRATEGY), "trade_size.scope")
        for k in self.tokens:
            parse_token(k, f"trade_size.tokens.{k}")

    def limits(self) -> dict[TokenId, int]:
        return {parse_token(k): v.max_amount_in for k, v in self.tokens.items()}


@dataclass(frozen=True, kw_only=True)
class GasPriceConfig:
    max_wei: int = 0  # 0: no global ceiling (only the per-chain ones)
    chains: dict[str, int] = field(default_factory=dict)
    scope: str = "chain"

    def __post_init__(self) -> None:
        parse_scope(self.scope, (StopScope.ALL, StopScope.CHAIN), "gas_price.scope")
        for k, v in self.chains.items():
            if not k.isdigit():
                raise ConfigError(f"gas_price.chains.{k}: chain ids are integers")
            _positive(v, f"gas_price.chains.{k}")
        if self.max_wei < 0:
            raise ConfigError("gas_price.max_wei: must not be negative")

    def ceiling(self, chain_id: int) -> int:
        return self.chains.get(str(chain_id), self.max_wei)


@dataclass(frozen=True, kw_only=True)
class FailureRateConfig:
    window: int = 20  # the last N counted results
    min_results: int = 10  # no verdict before this many
    max_failure_rate_bps: int = 5000  # trips when failures * 10000 >= rate * counted
    failure_outcomes: tuple[str, ...] = ("REVERTED", "FAILED")
    counted_outcomes: tuple[str, ...] = ("EXECUTED", "REVERTED", "NOT_INCLUDED", "FAILED")
    scope: str = "all"

    def __post_init__(self) -> None:
        _positive(self.window, "failure_rate.window")
        if not 1 <= self.min_results <= self.window:
            raise ConfigError("failure_rate.min_results: must be between 1 and window")
        if not 1 <= self.max_failure_rate_bps <= 10000:
            raise ConfigError("failure_rate.max_failure_rate_bps: must be 1..10000")
        parse_outcomes(self.failure_outcomes, "failure_rate.failure_outcomes")
        parse_outcomes(self.counted_outcomes, "failure_rate.counted_outcomes")
        parse_scope(self.scope, (StopScope.ALL, StopScope.CHAIN), "failure_rate.scope")


@dataclass(frozen=True, kw_only=True)
class StaleDataConfig:
    venues: dict[str, float] = field(default_factory=dict)  # venue -> max silence in seconds
    default_max_age_s: float = 0.0  # > 0: also watch every other venue once seen

    def __post_init__(self) -> None:
        for k, v in self.venues.items():
            parse_venue(k, f"stale_data.venues.{k}")
            _positive(v, f"stale_data.venues.{k}")
        if self.default_max_age_s < 0:
            raise ConfigError("stale_data.default_max_age_s: must not be negative")

    def windows_ns(self) -> dict[int, int]:
        return {parse_venue(k): int(v * 1e9) for k, v in self.venues.items()}


@dataclass(frozen=True, kw_only=True)
class RelayGapsConfig:
    grace_s: float = 2.0  # a gap not recovered within this trips
    trip_on_resync: bool = True  # messages the relay no longer had: always unresolved

    def __post_init__(self) -> None:
        _positive(self.grace_s, "relay_gaps.grace_s")


@dataclass(frozen=True, kw_only=True)
class VolatilityConfig:
    window: int = 50  # price returns kept per pool
    min_samples: int = 20
    max_sigma: float = 6.0
    scope: str = "venue"

    def __post_init__(self) -> None:
        if self.window < 3:
            raise ConfigError("volatility.window: at least 3")
        if not 2 <= self.min_samples <= self.window:
            raise ConfigError("volatility.min_samples: must be between 2 and window")
        _positive(self.max_sigma, "volatility.max_sigma")
        parse_scope(self.scope, (StopScope.ALL, StopScope.CHAIN, StopScope.VENUE), "volatility.scope")


@dataclass(frozen=True, kw_only=True)
class AlertsConfig:
    webhook_url: str = ""  # empty: alerts are only logged
    style: str = "discord"
    chat_id: str = ""  # telegram only
    timeout_s: float = 3.0
    queue: int = 100  # pending alerts beyond this are dropped (logged)

    def __post_init__(self) -> None:
        if self.style not in ("discord", "slack", "telegram"):
            raise ConfigError(f"alerts.style: one of discord, slack, telegram, not {self.style!r}")
        if self.style == "telegram" and self.webhook_url and not self.chat_id:
            raise ConfigError("alerts.chat_id: required with style telegram")
        _positive(self.timeout_s, "alerts.timeout_s")


@dataclass(frozen=True, kw_only=True)
class RelaysConfig:
    market_data: str = ""
    signal: str = ""
    execution: str = ""


@dataclass(frozen=True, kw_only=True)
class ProcessConfig:
    source_id: int = 7001
    sender: str = "risk"
    state: str = ""  # SQLite file; --state overrides; default <run dir>/data/risk/state.sqlite
    timer_interval_s: float = 0.1
    reassert_on_start: bool = True  # re-publish the still-tripped stops after a restart

    def __post_init__(self) -> None:
        if not 0 < self.source_id < 1 << 32:
            raise ConfigError("risk.source_id: must fit in uint32 and be non-zero")
        _positive(self.timer_interval_s, "risk.timer_interval_s")


@dataclass(frozen=True, kw_only=True)
class RiskConfig:
    risk: ProcessConfig = field(default_factory=ProcessConfig)
    relays: RelaysConfig = field(default_factory=RelaysConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    daily_loss: DailyLossConfig | None = None
    trade_size: TradeSizeConfig | None = None
    gas_price: GasPriceConfig | None = None
    failure_rate: FailureRateConfig | None = None
    stale_data: StaleDataConfig | None = None
    relay_gaps: RelayGapsConfig | None = None
    volatility: VolatilityConfig | None = None


def load_config(path: str | Path) -> RiskConfig:
    return from_mapping(RiskConfig, load_toml(path))


def parse_config(text: str) -> RiskConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(exc)) from None
    return from_mapping(RiskConfig, data)
