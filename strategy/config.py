"""Strategy configuration: frozen keyword-only dataclasses loaded from TOML.

A typo in a config file must be an error at start-up, never a silent default, so the loader
rejects unknown keys (naming the table, the key and the keys that are allowed), wrong types
(money is ``int`` only: a float for a wei amount is refused, not rounded), and impossible values.

Example (every key but ``[[chains]]`` is optional)::

    [strategy]
    name = "dex-arb"
    strategy_id = 1
    source_id = 20            # producer id of the signals on the bus
    max_hops = 4              # longest cycle searched (2 = same-pair two-pool only)
    max_cycles_per_pool = 4096
    max_signals_per_update = 4
    max_sized_per_update = 4   # exact sizings per update; more candidates are ranked by estimate
    confidence_bps = 5000

    [gas]                     # gas units per hop kind, plus a fixed base per transaction
    base = 40000
    v2_hop = 60000
    v3_hop = 110000
    curve_hop = 130000

    [economics]
    slippage_bps = 10         # allowance, in bps of the gross profit
    flash_fee_ppm = 0         # external flash-loan fee on the input; 0 for V2/V3 flash swaps

    [[chains]]
    chain_id = 1
    gas_token = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"             # WETH
    base_tokens = ["0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"]        # cycles start/end here
    min_net_profit = { "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2" = 1000000000000000 }
    v2_fee_ppm = { "SUSHISWAP" = 3000 }   # default 3000; used when a Sync arrives before a snapshot

    [[curve_pools]]           # StableSwap parameters a snapshot does not carry
    chain_id = 1
    address = "0x..."
    amp = 2000
    rates = [1000000000000000000, 1000000000000000000000000000000]

    [relays]                  # empty = the default sockets (relays.paths.socket_path)
    market_data = ""
    signal = ""
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from protocol.ids import TokenId, Venue, address_to_int


class ConfigError(ValueError):
    """The configuration file is malformed; the message names the table and key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GasConfig:
    """Gas units charged for a path: ``base + sum(hop gas by venue kind)``."""

    base: int = 40_000
    v2_hop: int = 60_000
    v3_hop: int = 110_000
    curve_hop: int = 130_000


@dataclass(frozen=True, slots=True, kw_only=True)
class EconomicsConfig:
    slippage_bps: int = 10
    flash_fee_ppm: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainConfig:
    """Per-chain tokens. ``base_tokens`` are the tokens a cycle may start and end in (the profit
    token); their order is a priority: a cycle through several is anchored at the first listed."""

    chain_id: int
    gas_token: TokenId
    base_tokens: tuple[TokenId, ...]
    min_net_profit: Mapping[TokenId, int] = field(default_factory=dict)
    v2_fee_ppm: Mapping[int, int] = field(default_factory=dict)  # venue code -> fee

    def v2_fee_for(self, venue: int) -> int:
        return self.v2_fee_ppm.get(venue, 3000)


@dataclass(frozen=True, slots=True, kw_only=True)
class CurvePoolConfig:
    chain_id: int
    address: int
    amp: int
    rates: tuple[int, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class RelaysConfig:
    market_data: str = ""
    signal: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyConfig:
    name: str = "dex-arb"
    strategy_id: int = 1
    source_id: int = 20
    max_hops: int = 4
    max_cycles_per_pool: int = 4096
    max_signals_per_update: int = 4
    max_sized_per_update: int = 4
    confidence_bps: int = 5000
    gas: GasConfig = field(default_factory=GasConfig)
    economics: EconomicsConfig = field(default_factory=EconomicsConfig)
    chains: tuple[ChainConfig, ...] = ()
    curve_pools: tuple[CurvePoolConfig, ...] = ()
    relays: RelaysConfig = field(default_factory=RelaysConfig)

    def __post_init__(self) -> None:
        if not 2 <= self.max_hops <= 6:
            raise ConfigError(f"[strategy] max_hops={self.max_hops} must be in [2, 6]")
        if not 0 <= self.confidence_bps <= 10_000:
            raise ConfigError(f"[strategy] confidence_bps={self.confidence_bps} must be in [0, 10000]")
        if not 0 <= self.economics.slippage_bps <= 10_000:
            raise ConfigError(f"[economics] slippage_bps={self.economics.slippage_bps} must be in [0, 10000]")
        if not 0 <= self.economics.flash_fee_ppm < 1_000_000:
            raise ConfigError(f"[economics] flash_fee_ppm={self.economics.flash_fee_ppm} must be in [0, 1e6)")
        ids = [c.chain_id for c in self.chains]
        if len(ids) != len(set(ids)):
            raise ConfigError(f"[[chains]] chain_id appears twice: {sorted(ids)}")

    def chain(self, chain_id: int) -> ChainConfig | None:
        for c in self.chains:
            if c.chain_id == chain_id:
                return c
        return None


# --- loading -------------------------------------------------------------------------------------


# The strict field checks below are shared by every component whose config follows this
# pattern (execution/config.py imports them), so a typo reads the same everywhere.


def check_keys(
    where: str, table: Mapping[str, Any], allowed: set[str], required: frozenset[str] | set[str] = frozenset()
) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(table))
    if missing:
        raise ConfigError(f"{where}: missing required key {missing[0]!r}")


def int_field(where: str, key: str, value: Any, lo: int = 0, hi: int | None = None) -> int:
    # bool is an int subclass; a float wei amount is a bug (precision is already lost in the file)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: {key} must be an integer, got {type(value).__name__} {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise ConfigError(f"{where}: {key}={value} out of range [{lo}, {hi if hi is not None else 'inf'}]")
    return value


def str_field(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string, got {type(value).__name__}")
    return value


def _token(where: str, key: str, chain_id: int, value: Any) -> TokenId:
    try:
        return TokenId.of(chain_id, str_field(where, key, value))
    except ConfigError:
        raise
    except Exception as exc:  # FieldRangeError from the address parser: say where it came from
        raise ConfigError(f"{where}: {key}: {exc}") from None


def _simple(cls: type, where: str, table: Any) -> Any:
    """Build a dataclass whose fields are all ints/strs from a TOML table."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    allowed = {f.name for f in fields(cls)}
    check_keys(where, table, allowed)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in table:
            v = table[f.name]
            kwargs[f.name] = str_field(where, f.name, v) if f.type == "str" else int_field(where, f.name, v)
    return cls(**kwargs)


def _venue_code(where: str, name: str) -> int:
    if name.isdigit():
        return int(name)
    try:
        return int(Venue[name.upper()])
    except KeyError:
        raise ConfigError(f"{where}: unknown venue {name!r} (a Venue name or a numeric code)") from None


def _chain(where: str, t: Any) -> ChainConfig:
    if not isinstance(t, dict):
        raise ConfigError(f"{where} must be a table")
    check_keys(where, t, {"chain_id", "gas_token", "base_tokens", "min_net_profit", "v2_fee_ppm"},
                {"chain_id", "gas_token"})
    chain_id = int_field(where, "chain_id", t["chain_id"], 0, (1 << 32) - 1)
    gas_token = _token(where, "gas_token", chain_id, t["gas_token"])
    raw_bases = t.get("base_tokens", [t["gas_token"]])
    if not isinstance(raw_bases, list) or not raw_bases:
        raise ConfigError(f"{where}: base_tokens must be a non-empty list of addresses")
    bases = tuple(_token(where, "base_tokens", chain_id, b) for b in raw_bases)
    mins_raw = t.get("min_net_profit", {})
    if not isinstance(mins_raw, dict):
        raise ConfigError(f"{where}: min_net_profit must be a table of token address -> integer")
    mins = {_token(where, "min_net_profit", chain_id, k): int_field(where, f"min_net_profit[{k}]", v)
            for k, v in mins_raw.items()}
    fees_raw = t.get("v2_fee_ppm", {})
    if not isinstance(fees_raw, dict):
        raise ConfigError(f"{where}: v2_fee_ppm must be a table of venue -> fee in ppm")
    fees = {_venue_code(where, k): int_field(where, f"v2_fee_ppm[{k}]", v, 0, 999_999) for k, v in fees_raw.items()}
    return ChainConfig(chain_id=chain_id, gas_token=gas_token, base_tokens=bases, min_net_profit=mins,
                       v2_fee_ppm=fees)


def _curve(where: str, t: Any) -> CurvePoolConfig:
    if not isinstance(t, dict):
        raise ConfigError(f"{where} must be a table")
    check_keys(where, t, {"chain_id", "address", "amp", "rates"}, {"chain_id", "address", "amp", "rates"})
    rates = t["rates"]
    if not isinstance(rates, list) or len(rates) != 2:
        raise ConfigError(f"{where}: rates must be a list of two integers (10**(36 - decimals) per coin)")
    try:
        address = address_to_int(str_field(where, "address", t["address"]))
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{where}: address: {exc}") from None
    return CurvePoolConfig(
        chain_id=int_field(where, "chain_id", t["chain_id"]),
        address=address,
        amp=int_field(where, "amp", t["amp"], 1, 10**6),
        rates=(int_field(where, "rates[0]", rates[0], 1), int_field(where, "rates[1]", rates[1], 1)),
    )


_TOP = {"strategy", "gas", "economics", "chains", "curve_pools", "relays"}
_STRATEGY_KEYS = {"name", "strategy_id", "source_id", "max_hops", "max_cycles_per_pool",
                  "max_signals_per_update", "max_sized_per_update", "confidence_bps"}


def config_from_dict(doc: Mapping[str, Any], *, origin: str = "config") -> StrategyConfig:
    """Validate a parsed TOML document (a dict) into a :class:`StrategyConfig`."""
    check_keys(origin, doc, _TOP)
    st = doc.get("strategy", {})
    if not isinstance(st, dict):
        raise ConfigError(f"{origin}: [strategy] must be a table")
    check_keys(f"{origin} [strategy]", st, _STRATEGY_KEYS)
    w = f"{origin} [strategy]"
    kwargs: dict[str, Any] = {}
    if "name" in st:
        kwargs["name"] = str_field(w, "name", st["name"])
    limits = {"strategy_id": (0, 0xFFFF), "source_id": (0, 0xFFFF_FFFF), "max_hops": (2, 6),
              "max_cycles_per_pool": (1, 10**9), "max_signals_per_update": (1, 10**6),
              "max_sized_per_update": (1, 10**6),
              "confidence_bps": (0, 10_000)}
    for key, (lo, hi) in limits.items():
        if key in st:
            kwargs[key] = int_field(w, key, st[key], lo, hi)
    if "gas" in doc:
        kwargs["gas"] = _simple(GasConfig, f"{origin} [gas]", doc["gas"])
    if "economics" in doc:
        kwargs["economics"] = _simple(EconomicsConfig, f"{origin} [economics]", doc["economics"])
    if "relays" in doc:
        kwargs["relays"] = _simple(RelaysConfig, f"{origin} [relays]", doc["relays"])
    chains = doc.get("chains", [])
    if not isinstance(chains, list):
        raise ConfigError(f"{origin}: chains must be an array of tables ([[chains]])")
    kwargs["chains"] = tuple(_chain(f"{origin} [[chains]] #{i + 1}", c) for i, c in enumerate(chains))
    curves = doc.get("curve_pools", [])
    if not isinstance(curves, list):
        raise ConfigError(f"{origin}: curve_pools must be an array of tables ([[curve_pools]])")
    kwargs["curve_pools"] = tuple(_curve(f"{origin} [[curve_pools]] #{i + 1}", c) for i, c in enumerate(curves))
    return StrategyConfig(**kwargs)


def load_config(path: str | Path) -> StrategyConfig:
    """Read and validate a TOML file; every problem is a :class:`ConfigError` naming the file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    return config_from_dict(doc, origin=str(p))
