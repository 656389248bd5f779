"""Risk configuration: frozen keyword-only structs (``runtime.config``) loaded from TOML.

Every section is optional; a missing breaker section disables that breaker. The tables are
:class:`runtime.config.Config` structs: unknown keys, wrong types and bad values are a
``ConfigError`` naming the dotted path of the key at start-up, never a silent default. Money is
integer base units of the token; gas prices are integer wei.

A configuration that limits nothing is refused, at start-up and by ``alphapulse config check``
(a risk process that can never trip would only look like protection): the file must enable at
least one breaker (:data:`BREAKERS`), and a breaker table must watch something --
``[daily_loss]`` and ``[trade_size]`` at least one token, ``[gas_price]`` a ``max_wei`` or a
per-chain ceiling, ``[stale_data]`` a venue or a ``default_max_age_s``, ``[inventory]`` an asset,
``[chain_stall]`` a chain, ``[xchain_inventory]`` an asset of ``[[assets]]``. (``[bridge_overdue]`` works on
its defaults.)
(``[failure_rate]``, ``[relay_gaps]``, ``[volatility]`` and ``[leg_open]`` work on their defaults: an
empty table enables them.)

Example (``alphapulse risk --config risk.toml``)::

    [relays]                       # optional: default sockets from runtime.paths
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

    [[inventory.assets]]           # CEX-DEX inventory per venue: start balance and bounds (base units)
    venue = "binance"              # an exchange, with its own asset name ...
    asset = "ETH"
    start = 2000000000000000000
    min = 500000000000000000
    max = 5000000000000000000
    [[inventory.assets]]
    venue = "chain"                # ... or the chain, with a token
    asset = "1:0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    start = 10000000000000000000
    min = 5000000000000000000

    [leg_open]                     # a CEX-DEX leg left open (LEG_OPEN, or a fill without a result)
    max_open_s = 60.0
    scope = "venue"

    [chain_stall]                  # a chain whose head stops advancing: a CHAIN stop of it
    chains = { "31337" = 2.0, "31338" = 0.25 }   # chain id -> block time (s)
    multiple = 10.0                # trips after this many block times without a new BlockHeader
    auto_clear = true              # the next new head lifts the stop (a Resume from risk)

    [[assets]]                     # asset identity across chains (runtime/assets.py), for xchain_inventory
    name = "USDC"
    tokens = [{ chain_id = 31337, address = "0x..." }, { chain_id = 31338, address = "0x..." }]

    [xchain_inventory]             # one chain holding too large a share of an asset (chains + in flight)
    scope = "all"                  # or "chain": a CHAIN stop of the chain holding too much
    [[xchain_inventory.assets]]
    asset = "USDC"
    start = { "31337" = 5000000000, "31338" = 5000000000 }   # balance per chain at start (base units)
    max_share_bps = 8000

    [bridge_overdue]               # a BridgeTransfer SENT and not COMPLETED within this, from its send's block
    max_transfer_s = 600.0
    scope = "chain"                # a CHAIN stop of the destination chain; or "all"

Self-clearing breakers (``auto_clear``, on by default: ``[chain_stall]``, ``[xchain_inventory]``,
``[bridge_overdue]``) lift their own stop when the condition is gone (a new head, the share back within
its bound, the transfer completed), publishing a ``Resume`` naming that stop id; every other stop waits
for an operator. A self-clearing stop restored after a restart is lifted once the evidence says so.

Tokens are written ``"<chain_id>:<0x address>"``; venues by ``protocol.ids.Venue`` name
(case-insensitive) or numeric code.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from protocol.execution import Outcome
from protocol.ids import TokenId, Venue
from protocol.system import StopScope
from runtime.assets import AssetEntry, AssetMap
from runtime.config import Config, ConfigError, RelaysConfig, decode, load, parse_toml

# ------------------------------------------------------------------ value parsers


def parse_token(text: str, path: str = "") -> TokenId:
    """``"1:0xabc..."`` -> TokenId."""
    chain, sep, addr = text.partition(":")
    try:
        if not sep:
            raise ValueError("expected <chain_id>:<0x address>")
        return TokenId.of(int(chain), addr)
    except ValueError as exc:
        raise ConfigError(f"bad token {text!r}: {exc}", path=path) from None


def parse_venue(text: str, path: str = "") -> int:
    t = text.strip()
    if t.isdigit():
        code = int(t)
        if code >> 16:
            raise ConfigError(f"venue code {code} does not fit in 16 bits", path=path)
        return code
    try:
        return int(Venue[t.upper()])
    except KeyError:
        raise ConfigError(
            f"unknown venue {text!r} (a code, or one of {', '.join(v.name.lower() for v in Venue)})", path=path
        ) from None


def parse_scope(text: str, allowed: tuple[StopScope, ...], path: str) -> StopScope:
    try:
        scope = StopScope[text.upper()]
    except KeyError:
        scope = None
    if scope is None or scope not in allowed:
        raise ConfigError(f"scope must be one of {', '.join(s.name.lower() for s in allowed)}, not {text!r}",
                          path=path)
    return scope


def parse_outcomes(names: tuple[str, ...], path: str) -> frozenset[int]:
    out = set()
    for n in names:
        try:
            out.add(int(Outcome[n.upper()]))
        except KeyError:
            raise ConfigError(f"unknown outcome {n!r} (one of {', '.join(o.name for o in Outcome)})", path=path) from None
    return frozenset(out)


def _positive(value: float, path: str) -> None:
    if value <= 0:
        raise ConfigError(f"must be positive, got {value!r}", path=path)


# ------------------------------------------------------------------ sections


class TokenLossLimit(Config):
    max_loss: int  # base units of the profit token; trips when the day's net P&L <= -max_loss
    gas_per_eth: int = 0  # profit-token base units worth 1 ETH (1e18 wei) of gas; 0 ignores gas

    def __post_init__(self) -> None:
        _positive(self.max_loss, "max_loss")
        if self.gas_per_eth < 0:
            raise ConfigError("must not be negative", path="gas_per_eth")


def _watches(something: object, path: str, what: str) -> None:
    if not something:
        raise ConfigError(f"{what}: this breaker watches nothing (configure it, or remove the table)", path=path)


class DailyLossConfig(Config):
    day_start_utc: str = "00:00"
    scope: str = "all"
    tokens: dict[str, TokenLossLimit] = {}

    def __post_init__(self) -> None:
        _watches(self.tokens, "tokens", 'no token has a loss limit ([daily_loss.tokens."<chain>:<0x token>"])')
        parse_scope(self.scope, (StopScope.ALL, StopScope.CHAIN), "scope")
        for k in self.tokens:
            parse_token(k, f"tokens.{k}")
        h, sep, m = self.day_start_utc.partition(":")
        if not (sep and h.isdigit() and m.isdigit() and int(h) < 24 and int(m) < 60):
            raise ConfigError(f"expected HH:MM, got {self.day_start_utc!r}", path="day_start_utc")

    @property
    def day_offset_ns(self) -> int:
        h, _, m = self.day_start_utc.partition(":")
        return (int(h) * 3600 + int(m) * 60) * 1_000_000_000

    def limits(self) -> dict[TokenId, TokenLossLimit]:
        return {parse_token(k): v for k, v in self.tokens.items()}


class TokenSizeLimit(Config):
    max_amount_in: int

    def __post_init__(self) -> None:
        _positive(self.max_amount_in, "max_amount_in")


class TradeSizeConfig(Config):
    scope: str = "strategy"
    tokens: dict[str, TokenSizeLimit] = {}

    def __post_init__(self) -> None:
        _watches(self.tokens, "tokens", 'no token has a size limit ([trade_size.tokens."<chain>:<0x token>"])')
        parse_scope(self.scope, (StopScope.ALL, StopScope.CHAIN, StopScope.STRATEGY), "scope")
        for k in self.tokens:
            parse_token(k, f"tokens.{k}")

    def limits(self) -> dict[TokenId, int]:
        return {parse_token(k): v.max_amount_in for k, v in self.tokens.items()}


class GasPriceConfig(Config):
    max_wei: int = 0  # 0: no global ceiling (only the per-chain ones)
    chains: dict[str, int] = {}
    scope: str = "chain"

    def __post_init__(self) -> None:
        parse_scope(self.scope, (StopScope.ALL, StopScope.CHAIN), "scope")
        for k, v in self.chains.items():
            if not k.isdigit():
                raise ConfigError("chain ids are integers", path=f"chains.{k}")
            _positive(v, f"chains.{k}")
        if self.max_wei < 0:
            raise ConfigError("must not be negative", path="max_wei")
        _watches(self.max_wei or self.chains, "max_wei", "no ceiling: neither max_wei nor a per-chain one in chains")

    def ceiling(self, chain_id: int) -> int:
        return self.chains.get(str(chain_id), self.max_wei)


class FailureRateConfig(Config):
    window: int = 20  # the last N counted results
    min_results: int = 10  # no verdict before this many
    max_failure_rate_bps: int = 5000  # trips when failures * 10000 >= rate * counted
    failure_outcomes: tuple[str, ...] = ("REVERTED", "FAILED")
    counted_outcomes: tuple[str, ...] = ("EXECUTED", "REVERTED", "NOT_INCLUDED", "FAILED")
    scope: str = "all"

    def __post_init__(self) -> None:
        _positive(self.window, "window")
        if not 1 <= self.min_results <= self.window:
            raise ConfigError("must be between 1 and window", path="min_results")
        if not 1 <= self.max_failure_rate_bps <= 10000:
            raise ConfigError("must be 1..10000", path="max_failure_rate_bps")
        parse_outcomes(self.failure_outcomes, "failure_outcomes")
        parse_outcomes(self.counted_outcomes, "counted_outcomes")
        parse_scope(self.scope, (StopScope.ALL, StopScope.CHAIN), "scope")


class StaleDataConfig(Config):
    venues: dict[str, float] = {}  # venue -> max silence in seconds
    default_max_age_s: float = 0.0  # > 0: also watch every other venue once seen

    def __post_init__(self) -> None:
        for k, v in self.venues.items():
            parse_venue(k, f"venues.{k}")
            _positive(v, f"venues.{k}")
        if self.default_max_age_s < 0:
            raise ConfigError("must not be negative", path="default_max_age_s")
        _watches(self.venues or self.default_max_age_s, "venues", "no venue and no default_max_age_s")

    def windows_ns(self) -> dict[int, int]:
        return {parse_venue(k): int(v * 1e9) for k, v in self.venues.items()}


class RelayGapsConfig(Config):
    grace_s: float = 2.0  # a gap not recovered within this trips
    trip_on_resync: bool = True  # messages the relay no longer had: always unresolved

    def __post_init__(self) -> None:
        _positive(self.grace_s, "grace_s")


class VolatilityConfig(Config):
    window: int = 50  # price returns kept per pool
    min_samples: int = 20
    max_sigma: float = 6.0
    scope: str = "venue"

    def __post_init__(self) -> None:
        if self.window < 3:
            raise ConfigError("at least 3", path="window")
        if not 2 <= self.min_samples <= self.window:
            raise ConfigError("must be between 2 and window", path="min_samples")
        _positive(self.max_sigma, "max_sigma")
        parse_scope(self.scope, (StopScope.ALL, StopScope.CHAIN, StopScope.VENUE), "scope")


class InventoryBound(Config):
    """One asset on one venue: its balance at start and the bounds it must stay within (base units).

    ``venue`` is an exchange (``binance``, a code) with ``asset`` its own asset name (``ETH``), or ``chain``
    with ``asset`` a token ``<chain_id>:<0x address>`` (the executor's on-chain inventory)."""

    venue: str
    asset: str
    start: int
    min: int = 0
    max: int = 0  # 0: no upper bound

    def __post_init__(self) -> None:
        if self.venue != "chain":
            parse_venue(self.venue, "venue")
        else:
            parse_token(self.asset, "asset")
        if self.max and self.max < self.min:
            raise ConfigError("max must not be below min", path="max")

    def key(self) -> tuple[int, str]:
        """(venue code, asset name) for an exchange; (0, token id as decimal text) on chain."""
        if self.venue == "chain":
            return 0, str(int(parse_token(self.asset)))
        return parse_venue(self.venue), self.asset


class InventoryConfig(Config):
    assets: tuple[InventoryBound, ...] = ()

    def __post_init__(self) -> None:
        _watches(self.assets, "assets", "no asset has bounds ([[inventory.assets]])")


class LegOpenConfig(Config):
    max_open_s: float = 60.0  # a CEX fill whose signal has no result after this trips (executor stuck or gone)
    scope: str = "venue"  # venue: the exchange's; all: everything

    def __post_init__(self) -> None:
        _positive(self.max_open_s, "max_open_s")
        parse_scope(self.scope, (StopScope.ALL, StopScope.VENUE), "scope")


class ChainStallConfig(Config):
    chains: dict[str, float] = {}  # chain id -> its block time in seconds
    multiple: float = 10.0  # trips after this many block times without a new head
    auto_clear: bool = True  # the next new head lifts the stop (false: only an operator's Resume)

    def __post_init__(self) -> None:
        _watches(self.chains, "chains", 'no chain has a block time (chains = { "<chain id>" = <seconds> })')
        for k, v in self.chains.items():
            if not k.isdigit() or not 0 < int(k) < 1 << 32:
                raise ConfigError("chain ids are integers (uint32, not 0)", path=f"chains.{k}")
            _positive(v, f"chains.{k}")
        _positive(self.multiple, "multiple")

    def windows_ns(self) -> dict[int, int]:
        """chain -> the silence that trips (ns): ``multiple`` block times."""
        return {int(k): int(v * self.multiple * 1e9) for k, v in self.chains.items()}


class AssetShare(Config):
    """One asset's inventory across chains: its balance on each chain at start (base units of that chain's token)
    and the largest share of the whole (every chain plus what is in flight) one chain may hold."""

    asset: str  # an [[assets]] name
    start: dict[str, int] = {}  # chain id -> balance at start
    max_share_bps: int = 8000

    def __post_init__(self) -> None:
        if not 1 <= self.max_share_bps <= 10000:
            raise ConfigError("must be 1..10000", path="max_share_bps")
        for k, v in self.start.items():
            if not k.isdigit() or not 0 < int(k) < 1 << 32:
                raise ConfigError("chain ids are integers (uint32, not 0)", path=f"start.{k}")
            if v < 0:
                raise ConfigError("must not be negative", path=f"start.{k}")


class XchainInventoryConfig(Config):
    assets: tuple[AssetShare, ...] = ()
    scope: str = "all"  # all; chain: a CHAIN stop of the chain holding too large a share
    auto_clear: bool = True  # back within the share (a rebalance landed): the stop lifts itself

    def __post_init__(self) -> None:
        _watches(self.assets, "assets", "no asset has a share bound ([[xchain_inventory.assets]])")
        parse_scope(self.scope, (StopScope.ALL, StopScope.CHAIN), "scope")


class BridgeOverdueConfig(Config):
    max_transfer_s: float = 600.0  # a transfer SENT and not COMPLETED within this (from its send's block) trips
    scope: str = "chain"  # chain: a CHAIN stop of the destination chain (the inventory it waits for); or all
    auto_clear: bool = True  # the overdue transfer completing lifts the stop

    def __post_init__(self) -> None:
        _positive(self.max_transfer_s, "max_transfer_s")
        parse_scope(self.scope, (StopScope.ALL, StopScope.CHAIN), "scope")


class AlertsConfig(Config):
    webhook_url: str = ""  # empty: alerts are only logged
    style: str = "discord"
    chat_id: str = ""  # telegram only
    timeout_s: float = 3.0
    queue: int = 100  # pending alerts beyond this are dropped (logged)

    def __post_init__(self) -> None:
        if self.style not in ("discord", "slack", "telegram"):
            raise ConfigError(f"one of discord, slack, telegram, not {self.style!r}", path="style")
        if self.style == "telegram" and self.webhook_url and not self.chat_id:
            raise ConfigError("required with style telegram", path="chat_id")
        _positive(self.timeout_s, "timeout_s")


class ProcessConfig(Config):
    source_id: int = 7001
    sender: str = "risk"
    state: str = ""  # SQLite file; --state overrides; default <run dir>/data/risk/state.sqlite
    timer_interval_s: float = 0.1
    reassert_on_start: bool = True  # re-publish the still-tripped stops after a restart

    def __post_init__(self) -> None:
        if not 0 < self.source_id < 1 << 32:
            raise ConfigError("must fit in uint32 and be non-zero", path="source_id")
        _positive(self.timer_interval_s, "timer_interval_s")


class RiskConfig(Config):
    risk: ProcessConfig = msgspec.field(default_factory=ProcessConfig)
    relays: RelaysConfig = msgspec.field(default_factory=RelaysConfig)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)
    daily_loss: DailyLossConfig | None = None
    trade_size: TradeSizeConfig | None = None
    gas_price: GasPriceConfig | None = None
    failure_rate: FailureRateConfig | None = None
    stale_data: StaleDataConfig | None = None
    relay_gaps: RelayGapsConfig | None = None
    volatility: VolatilityConfig | None = None
    inventory: InventoryConfig | None = None
    leg_open: LegOpenConfig | None = None
    chain_stall: ChainStallConfig | None = None
    xchain_inventory: XchainInventoryConfig | None = None
    bridge_overdue: BridgeOverdueConfig | None = None
    assets: tuple[AssetEntry, ...] = ()  # which tokens on which chains are one asset (runtime.assets)

    def __post_init__(self) -> None:
        amap = AssetMap.of(self.assets)
        if self.xchain_inventory is not None:
            for i, a in enumerate(self.xchain_inventory.assets):
                here = f"xchain_inventory.assets[{i}]"
                if a.asset not in amap.names:
                    raise ConfigError(f"asset {a.asset} is not in [[assets]] ({', '.join(amap.names) or 'none'})",
                                      path=f"{here}.asset")
                chains = amap.tokens(a.asset)
                for k in a.start:
                    if int(k) not in chains:
                        raise ConfigError(f"asset {a.asset} has no token on chain {k} in [[assets]]",
                                          path=f"{here}.start.{k}")

    def asset_map(self) -> AssetMap:
        return AssetMap.of(self.assets)


BREAKERS = ("daily_loss", "trade_size", "gas_price", "failure_rate", "stale_data", "relay_gaps", "volatility",
            "inventory", "leg_open", "chain_stall", "xchain_inventory", "bridge_overdue")


def load_config(path: str | Path) -> RiskConfig:
    """Read and validate a risk configuration file; one limiting nothing is refused (module docstring)."""
    config = load(RiskConfig, path)
    if all(getattr(config, name) is None for name in BREAKERS):
        raise ConfigError(f"no breaker is configured, so nothing could ever trip: add at least one of "
                          f"{', '.join(f'[{b}]' for b in BREAKERS)}", file=path)
    return config


def parse_config(text: str) -> RiskConfig:
    return decode(RiskConfig, parse_toml(text))
