"""Strategy configuration: frozen keyword-only structs (``runtime.config``) loaded from TOML.

A typo in a config file must be an error at start-up, never a silent default, so the loader
rejects unknown keys (naming the key path and the keys that are allowed), wrong types (money is
``int`` only: a float for a wei amount is refused, not rounded), and impossible values; each is a
``ConfigError`` such as ``strategy.toml: chains[0].gas_token: address ... is not 20 bytes of hex``.

A ``[cross_chain]`` section is checked against ``[[assets]]`` and ``[[chains]]`` at load, each
contradiction one ``ConfigError`` line naming its key: an asset that is not configured, base and
quote the same asset, an asset with no token on one of the two chains, a chain with no
``[[chains]]`` table, a chain listed twice, a pool pair listed twice, and inventories with which
neither direction could ever trade (the quote on one chain and the base on the other).

A configuration that could never produce a signal is refused too (at start-up and by
``alphapulse config check``): a file with no ``[[chains]]`` (nothing to watch or price), a
``min_net_profit`` for a token that is not one of its chain's ``base_tokens`` (profit is only ever
taken in a base token, so that threshold would never apply), an empty ``pools`` shard, and a
``[relays]`` that gives market data and signals one socket. An empty ``[relays]`` key means the
default socket under the run directory (``runtime.paths``), which is a real place; a deployment's
``config check`` demands the sockets be named, since the supervisor sets no run directory.

Example (every key but ``[[chains]]`` is optional)::

    [strategy]
    name = "dex-arb"
    strategy_id = 1
    source_id = 20            # producer id of the signals on the bus
    max_hops = 4              # longest cycle searched (2 = same-pair two-pool only)
    max_cycles_per_pool = 4096
    max_signals_per_update = 4 # paths sharing no pool, chosen best estimate first, each published once decided
    max_sized_per_update = 4   # exact sizings per update; more candidates are ranked by estimate
    coalesce_max = 64          # market-data messages already received that one decision covers (1: each alone)
    confidence_bps = 5000

    [gas]                     # gas units per hop kind, plus a fixed base per transaction
    base = 40000
    v2_hop = 60000
    v3_hop = 110000
    v4_hop = 80000            # a hop through the V4 PoolManager (inside the contract's one unlock)
    curve_hop = 130000
    balancer_flash = 40000    # borrowing the start token from the Balancer V2 Vault, over a pool's own flash swap

    [economics]
    slippage_bps = 10         # allowance, in bps of the gross profit
    flash_fee_ppm = 0         # external flash-loan fee on the input; 0 for V2/V3 flash swaps

    [hold_back]               # one signal in flight per opportunity (strategy/holdback.py): the pools of a
    enabled = true            # published signal (a cycle's, a cross-chain pair's) are not signalled again
    margin_ms = 10000         # until its ExecutionResult comes back on the execution relay ([relays]
    cycle_budget_ms = 2000    # execution, read from now) and the market data shows what landed, or until the
                              # signal's timing budget (cross-chain: both legs' time to land; a cycle:
                              # cycle_budget_ms) plus margin_ms passed (a lost executor never blocks trading).
                              # Holds live in memory: a restarted strategy forgets them. Default enabled =
                              # false (no executor to answer: detect-only, replay): no execution relay read

    [[chains]]
    chain_id = 1
    gas_token = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"             # WETH
    base_tokens = ["0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"]        # cycles start/end here
    min_net_profit = { "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2" = 1000000000000000 }
    v2_fee_ppm = { "SUSHISWAP" = 3000 }   # default 3000; used when a Sync arrives before a snapshot
    # balancer_vault = true   # the executor's contract can borrow from the Balancer V2 Vault (paths
    # balancer_fee_ppm = 0    #   whose first hop cannot lend, or when cheapest); the Vault's flash fee
    # pools = ["0x...", ...]  # optional shard: only these pool contracts form cycles (default: all)
    # kinds = ["uniswap_v2", "uniswap_v3"]  # optional: only pools of these kinds form cycles -- the ones
    #                                         your executor's contract can trade (default: every kind)

    [[curve_pools]]           # StableSwap parameters a snapshot does not carry
    chain_id = 1
    address = "0x..."
    amp = 2000
    rates = [1000000000000000000, 1000000000000000000000000000000]   # 10**(36 - decimals) per coin, in the
                              # order of the pool's tokens BY ADDRESS (a snapshot's token0 first), whatever
                              # the pool's own coin order (the executor's [[curve_pools]] lists that one)

    [[cex_dex]]               # CEX-DEX arbitrage (strategy/cex_dex.py): one asset on a book and on chain
    venue = "BINANCE"         # the book: venue and its own symbol, with the venue's asset names
    symbol = "ETHUSDC"
    base_asset = "ETH"
    quote_asset = "USDC"
    chain_id = 1              # the same assets on chain (needs that chain's [[chains]] for its gas token)
    base = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    quote = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
    base_decimals = 18
    quote_decimals = 6
    cex_fee_ppm = 1000        # taker fee
    min_net_profit = 1000000  # quote units
    inventory = { cex_base = 0, cex_quote = 10000000000, chain_base = 5000000000000000000, chain_quote = 0 }

    [[assets]]                # asset identity across chains (runtime/assets.py), for [cross_chain]
    name = "WETH"
    tokens = [{ chain_id = 10, address = "0x4200000000000000000000000000000000000006" },
              { chain_id = 8453, address = "0x4200000000000000000000000000000000000006" }]
    [[assets]]
    name = "USDC"
    tokens = [{ chain_id = 10, address = "0x0b2c639c533813f4aa9d7837caf62653d097ff85" },
              { chain_id = 8453, address = "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913" }]

    [cross_chain]             # cross-chain arbitrage from inventory (strategy/cross_chain.py): one asset pair
    base = "WETH"             # [[assets]] names; both chains' tokens of one asset must have the same decimals
    quote = "USDC"            # the profit asset: sizes, costs and min_net_profit in its base units
    pairs = [["0x...pool on chains[0]", "0x...pool on chains[1]"]]   # base/quote pools, one per chain
    bridge_id = 1             # CrossChainArbitrage.bridge: the bridge that returns the inventory
    bridge_fee_bps = 1        # its fee on the amount returned (CCTP-like, specs/bridge-standin.md)
    bridge_gas_units = 80000  # its send transaction on the destination chain
    rebalance_every = 10      # trades whose inventory one bridge transfer returns (amortises its gas)
    drift_k_milli = 2000      # k of the drift allowance k·σ·√T·size, in thousandths
    sigma_window_s = 300      # σ: realized volatility of the pools' prices over this window ...
    sigma_floor_ppb = 20000   # ... never below this (ppb per √s; also σ before any price moved)
    min_net_profit = 1000000  # publish when the net profit reaches this (quote units)
    [[cross_chain.chains]]    # exactly two
    chain_id = 10             # needs its [[chains]] table (its gas token prices that leg's gas)
    block_time_ms = 2000
    inclusion_blocks = 1      # blocks until a leg is included: T = the slower chain's blocks · block time
    gas_units = 150000        # one leg's transaction on this chain
    inventory = { base = 5000000000000000000, quote = 10000000000 }   # caps: the executor contract's
    [[cross_chain.chains]]                                             # inventory here (from this file)
    chain_id = 8453
    block_time_ms = 250
    gas_units = 150000
    inventory = { base = 5000000000000000000, quote = 10000000000 }

    [relays]                  # empty = the default sockets (runtime.paths.socket_path)
    market_data = ""
    signal = ""
    execution = ""            # read (from now) for [hold_back]'s results
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

import msgspec

from protocol.errors import ProtocolError
from protocol.ids import TokenId, Venue, VenueKind, address_to_int, cex_book_id
from runtime.assets import AssetEntry, AssetMap
from runtime.config import (
    U16,
    U32,
    Config,
    ConfigError,
    Meta,
    NonNegative,
    Positive,
    RelaysConfig,
    decode,
    load_toml,
)

from .cex_dex import CexDexPair, Inventory


class GasConfig(Config):
    """Gas units charged for a path: ``base + sum(hop gas by venue kind)``."""

    base: NonNegative = 40_000
    v2_hop: NonNegative = 60_000
    v3_hop: NonNegative = 110_000
    v4_hop: NonNegative = 80_000
    curve_hop: NonNegative = 130_000
    balancer_flash: NonNegative = 40_000  # the Balancer V2 Vault's flash loan, over a pool's own flash swap


class EconomicsConfig(Config):
    slippage_bps: Annotated[int, Meta(ge=0, le=10_000)] = 10
    flash_fee_ppm: Annotated[int, Meta(ge=0, lt=1_000_000)] = 0


class HoldBackConfig(Config):
    """``[hold_back]`` (``strategy/holdback.py``): while a published signal is unresolved its pools are not
    signalled again; a hold ends at its result (once the state includes what landed) or after the signal's
    timing budget plus ``margin_ms``."""

    enabled: bool = False  # off: no executor's results to wait for (detect-only, replay, backtests)
    margin_ms: Annotated[int, Meta(ge=0, le=3_600_000)] = 10_000
    cycle_budget_ms: Annotated[int, Meta(ge=0, le=3_600_000)] = 2_000  # a single-chain signal's budget


class ChainConfig(Config):
    """Per-chain tokens. ``base_tokens`` are the tokens a cycle may start and end in (the profit
    token); their order is a priority: a cycle through several is anchored at the first listed."""

    chain_id: int
    gas_token: TokenId
    base_tokens: tuple[TokenId, ...]
    min_net_profit: Mapping[TokenId, int] = {}
    v2_fee_ppm: Mapping[int, int] = {}  # venue code -> fee
    pools: frozenset[int] | None = None  # a shard's pool contract addresses; None: every pool of the chain
    kinds: frozenset[int] | None = None  # VenueKind codes of the pools that may form cycles; None: all
    balancer_vault: bool = False  # the executor's contract can borrow from a Balancer V2 Vault
    balancer_fee_ppm: int = 0  # that Vault's flash-loan fee

    def trades_in(self, pool_address: int, kind: int | None = None) -> bool:
        """Whether this strategy may use the pool (see README, "Sharding the strategy"), and, given its
        ``kind``, whether that kind is one it trades."""
        if kind is not None and self.kinds is not None and kind not in self.kinds:
            return False
        return self.pools is None or pool_address in self.pools

    def v2_fee_for(self, venue: int) -> int:
        return self.v2_fee_ppm.get(venue, 3000)


class CurvePoolConfig(Config):
    chain_id: int
    address: int
    amp: int
    rates: tuple[int, int]


class CrossChainChain(Config):
    """One chain of ``[cross_chain]``: its tokens of the two assets, its clock, one leg's gas and the
    inventory caps (the executor contract's holdings there, as configured: the sizer never plans
    to spend more quote on this chain, or sell more base, than these)."""

    chain_id: int
    base_token: TokenId
    quote_token: TokenId
    block_time_ms: int
    inclusion_blocks: int
    gas_units: int
    base_inventory: int
    quote_inventory: int


class CrossChainConfig(Config):
    """``[cross_chain]`` resolved: two chains, the pool pairs (pool contract addresses on
    ``chains[0]`` and ``chains[1]``) and the cost model of ``strategy/cross_chain.py``."""

    base_asset: str
    quote_asset: str
    chains: tuple[CrossChainChain, CrossChainChain]
    pairs: tuple[tuple[int, int], ...]
    bridge_id: int
    bridge_fee_bps: int
    bridge_gas_units: int
    rebalance_every: int
    drift_k_milli: int
    sigma_window_s: int
    sigma_floor_ppb: int
    min_net_profit: int


class StrategyConfig(Config):
    own_table: ClassVar[str] = "strategy"  # the settings below that are not tables live in [strategy]

    name: str = "dex-arb"
    strategy_id: U16 = 1
    source_id: U32 = 20
    max_hops: int = 4  # in [2, 6]: checked below, also when built in code
    max_cycles_per_pool: Annotated[int, Meta(ge=1, le=10**9)] = 4096
    max_signals_per_update: Annotated[int, Meta(ge=1, le=10**6)] = 4
    max_sized_per_update: Annotated[int, Meta(ge=1, le=10**6)] = 4
    # the process applies the messages its consumer already holds before deciding, at most this many per
    # decision (strategy/process.py); 1 decides on every message alone, independent of how they arrive
    coalesce_max: Annotated[int, Meta(ge=1, le=10**6)] = 64
    confidence_bps: int = 5000  # in [0, 10000]
    gas: GasConfig = GasConfig()
    economics: EconomicsConfig = EconomicsConfig()
    hold_back: HoldBackConfig = HoldBackConfig()
    chains: tuple[ChainConfig, ...] = ()
    curve_pools: tuple[CurvePoolConfig, ...] = ()
    cex_dex: tuple[CexDexPair, ...] = ()
    assets: tuple[AssetEntry, ...] = ()
    cross_chain: CrossChainConfig | None = None
    relays: RelaysConfig = RelaysConfig()

    def __post_init__(self) -> None:
        if not 2 <= self.max_hops <= 6:
            raise ConfigError(f"out of range [2, 6], got {self.max_hops}", path="max_hops")
        if not 0 <= self.confidence_bps <= 10_000:
            raise ConfigError(f"out of range [0, 10000], got {self.confidence_bps}", path="confidence_bps")
        if not 0 <= self.economics.slippage_bps <= 10_000:
            raise ConfigError(f"out of range [0, 10000], got {self.economics.slippage_bps}",
                              path="economics.slippage_bps")
        if not 0 <= self.economics.flash_fee_ppm < 1_000_000:
            raise ConfigError(f"out of range [0, 1000000), got {self.economics.flash_fee_ppm}",
                              path="economics.flash_fee_ppm")
        ids = [c.chain_id for c in self.chains]
        if len(ids) != len(set(ids)):
            raise ConfigError(f"a chain_id appears twice: {sorted(ids)}", path="chains")

    def chain(self, chain_id: int) -> ChainConfig | None:
        for c in self.chains:
            if c.chain_id == chain_id:
                return c
        return None


# --- the file's [[chains]] and [[curve_pools]] ----------------------------------------------------
# The file names tokens by address within their [[chains]] table and venues by name; these tables
# check every value when decoded (``__post_init__`` resolves them once) and become the classes above.


def _parsed(path: str, parse: Any, *args: Any) -> Any:
    try:
        return parse(*args)
    except (ValueError, ProtocolError) as exc:  # FieldRangeError from the address parser: say which key
        raise ConfigError(str(exc), path=path) from None


def _venue_code(path: str, name: str) -> int:
    if name.isdigit():
        return int(name)
    try:
        return int(Venue[name.upper()])
    except KeyError:
        raise ConfigError(f"unknown venue {name!r} (a Venue name or a numeric code)", path=path) from None


_TRADED_KINDS = {k.name.lower(): int(k) for k in (VenueKind.UNISWAP_V2, VenueKind.UNISWAP_V3,
                                                  VenueKind.UNISWAP_V4, VenueKind.CURVE)}


def _kind_code(path: str, name: str) -> int:
    code = _TRADED_KINDS.get(name.lower())
    if code is None:
        raise ConfigError(f"unknown pool kind {name!r} (one of {', '.join(_TRADED_KINDS)})", path=path)
    return code


class _ChainTable(Config):
    chain_id: U32
    gas_token: str
    base_tokens: Annotated[tuple[str, ...], Meta(min_length=1)] | None = None  # default: the gas token
    min_net_profit: dict[str, NonNegative] = {}
    v2_fee_ppm: dict[str, Annotated[int, Meta(ge=0, le=999_999)]] = {}
    pools: Annotated[tuple[str, ...], Meta(min_length=1)] | None = None
    kinds: Annotated[tuple[str, ...], Meta(min_length=1)] | None = None
    balancer_vault: bool = False
    balancer_fee_ppm: Annotated[int, Meta(ge=0, lt=1_000_000)] = 0

    def __post_init__(self) -> None:
        chain = self.resolve()  # every address and venue parses, or the error names its key
        for key in self.min_net_profit:
            if TokenId.of(self.chain_id, key) not in chain.base_tokens:
                raise ConfigError("not one of this chain's base_tokens (default: the gas token): profit is only "
                                  "taken in a base token, so this threshold would never apply",
                                  path=f"min_net_profit.{key}")

    def resolve(self) -> ChainConfig:
        def token(path: str, address: str) -> TokenId:
            return _parsed(path, TokenId.of, self.chain_id, address)

        bases = self.base_tokens if self.base_tokens is not None else (self.gas_token,)
        return ChainConfig(
            chain_id=self.chain_id,
            gas_token=token("gas_token", self.gas_token),
            base_tokens=tuple(token(f"base_tokens[{i}]", b) for i, b in enumerate(bases)),
            min_net_profit={token(f"min_net_profit.{k}", k): v for k, v in self.min_net_profit.items()},
            v2_fee_ppm={_venue_code(f"v2_fee_ppm.{k}", k): v for k, v in self.v2_fee_ppm.items()},
            pools=None if self.pools is None else frozenset(
                _parsed(f"pools[{i}]", address_to_int, a) for i, a in enumerate(self.pools)),
            kinds=None if self.kinds is None else frozenset(
                _kind_code(f"kinds[{i}]", k) for i, k in enumerate(self.kinds)),
            balancer_vault=self.balancer_vault,
            balancer_fee_ppm=self.balancer_fee_ppm,
        )


class _CurveTable(Config):
    chain_id: U32
    address: str
    amp: Annotated[int, Meta(ge=1, le=10**6)]
    rates: tuple[Positive, Positive]  # 10**(36 - decimals) per coin

    def __post_init__(self) -> None:
        self.resolve()

    def resolve(self) -> CurvePoolConfig:
        return CurvePoolConfig(chain_id=self.chain_id, address=_parsed("address", address_to_int, self.address),
                               amp=self.amp, rates=self.rates)


class _Inventory(Config):
    cex_base: NonNegative = 0
    cex_quote: NonNegative = 0
    chain_base: NonNegative = 0
    chain_quote: NonNegative = 0


class _CexDexTable(Config):
    venue: str
    symbol: str
    base_asset: str
    quote_asset: str
    chain_id: U32
    base: str
    quote: str
    base_decimals: Annotated[int, Meta(ge=0, le=36)]
    quote_decimals: Annotated[int, Meta(ge=0, le=36)]
    cex_fee_ppm: Annotated[int, Meta(ge=0, lt=1_000_000)] = 1000
    min_net_profit: Positive = 1
    inventory: _Inventory = _Inventory()

    def __post_init__(self) -> None:
        self.resolve(TokenId(0))  # every address, venue and name parses, or the error names its key

    def resolve(self, gas_token: TokenId) -> CexDexPair:
        venue = _venue_code("venue", self.venue)
        _parsed("symbol", cex_book_id, venue, self.symbol, self.base_asset, self.quote_asset)
        inv = self.inventory
        return CexDexPair(
            venue=venue, symbol=self.symbol, base_asset=self.base_asset, quote_asset=self.quote_asset,
            base=_parsed("base", TokenId.of, self.chain_id, self.base),
            quote=_parsed("quote", TokenId.of, self.chain_id, self.quote),
            base_decimals=self.base_decimals, quote_decimals=self.quote_decimals, gas_token=gas_token,
            cex_fee_ppm=self.cex_fee_ppm, min_net_profit=self.min_net_profit,
            inventory=Inventory(cex_base=inv.cex_base, cex_quote=inv.cex_quote, chain_base=inv.chain_base,
                                chain_quote=inv.chain_quote))


class _XcInventory(Config):
    base: NonNegative = 0
    quote: NonNegative = 0


class _XcChainTable(Config):
    chain_id: Annotated[int, Meta(ge=1, le=0xFFFF_FFFF)]
    block_time_ms: Annotated[int, Meta(ge=1, le=3_600_000)]
    gas_units: Annotated[int, Meta(ge=1, le=10**9)]
    inclusion_blocks: Annotated[int, Meta(ge=1, le=10_000)] = 1
    inventory: _XcInventory = _XcInventory()


class _CrossChainTable(Config):
    base: str
    quote: str
    chains: Annotated[tuple[_XcChainTable, ...], Meta(min_length=2, max_length=2)]
    pairs: Annotated[tuple[tuple[str, str], ...], Meta(min_length=1)]
    bridge_id: U16
    bridge_fee_bps: Annotated[int, Meta(ge=0, le=10_000)]
    bridge_gas_units: Annotated[int, Meta(ge=0, le=10**9)]
    rebalance_every: Annotated[int, Meta(ge=1, le=10**6)]
    drift_k_milli: Annotated[int, Meta(ge=0, le=10**6)]
    sigma_floor_ppb: Annotated[int, Meta(ge=1, le=10**9)]
    min_net_profit: Positive
    sigma_window_s: Annotated[int, Meta(ge=1, le=7 * 86_400)] = 300

    def __post_init__(self) -> None:
        a, b = self.chains
        if a.chain_id == b.chain_id:
            raise ConfigError(f"chain {a.chain_id} is listed twice: a cross-chain pair needs two chains",
                              path="chains[1].chain_id")
        if self.base.casefold() == self.quote.casefold():
            raise ConfigError(f"base and quote are both asset {self.base}", path="quote")
        seen: dict[tuple[int, ...], int] = {}
        for i, pair in enumerate(self.pairs):
            key = tuple(_parsed(f"pairs[{i}][{j}]", address_to_int, p) for j, p in enumerate(pair))
            if key in seen:
                raise ConfigError(f"the same pools as pairs[{seen[key]}]", path=f"pairs[{i}]")
            seen[key] = i
        if not any(src.inventory.quote and dst.inventory.base for src, dst in ((a, b), (b, a))):
            raise ConfigError("no direction can trade: one chain needs quote inventory and the other base "
                              "inventory (chains[i].inventory)", path="chains")

    def resolve(self, assets: AssetMap, gas_tokens: Mapping[int, TokenId]) -> CrossChainConfig:
        names = {n.casefold(): n for n in assets.names}
        resolved: dict[str, str] = {}
        for key in ("base", "quote"):
            name = getattr(self, key)
            if name.casefold() not in names:
                raise ConfigError(f"no [[assets]] named {name} (configured: {', '.join(assets.names) or 'none'})",
                                  path=key)
            resolved[key] = names[name.casefold()]
        chains = []
        for i, c in enumerate(self.chains):
            tokens = {}
            for key, asset in resolved.items():
                token = assets.token(asset, c.chain_id)
                if token is None:
                    raise ConfigError(f"asset {asset} has no token on chain {c.chain_id} ([[assets]])",
                                      path=f"chains[{i}].chain_id")
                tokens[key] = token
            if c.chain_id not in gas_tokens:
                raise ConfigError(f"chain {c.chain_id} has no [[chains]] table (its gas token prices the leg's gas)",
                                  path=f"chains[{i}].chain_id")
            chains.append(CrossChainChain(
                chain_id=c.chain_id, base_token=tokens["base"], quote_token=tokens["quote"],
                block_time_ms=c.block_time_ms, inclusion_blocks=c.inclusion_blocks, gas_units=c.gas_units,
                base_inventory=c.inventory.base, quote_inventory=c.inventory.quote))
        return CrossChainConfig(
            base_asset=resolved["base"], quote_asset=resolved["quote"], chains=(chains[0], chains[1]),
            pairs=tuple((address_to_int(p0), address_to_int(p1)) for p0, p1 in self.pairs),
            bridge_id=self.bridge_id, bridge_fee_bps=self.bridge_fee_bps, bridge_gas_units=self.bridge_gas_units,
            rebalance_every=self.rebalance_every, drift_k_milli=self.drift_k_milli,
            sigma_window_s=self.sigma_window_s, sigma_floor_ppb=self.sigma_floor_ppb,
            min_net_profit=self.min_net_profit)


class _ChainTables(Config):
    chains: tuple[_ChainTable, ...] = ()
    curve_pools: tuple[_CurveTable, ...] = ()
    cex_dex: tuple[_CexDexTable, ...] = ()
    assets: tuple[AssetEntry, ...] = ()
    cross_chain: _CrossChainTable | None = None


def config_from_dict(doc: Mapping[str, Any], *, origin: str = "") -> StrategyConfig:
    """Validate a parsed TOML document (a dict) into a :class:`StrategyConfig`."""
    # written by address, venue and asset name: decoded as _ChainTables
    listed = ("chains", "curve_pools", "cex_dex", "assets", "cross_chain")
    config = decode(StrategyConfig, {k: v for k, v in doc.items() if k not in listed}, file=origin)
    tables = decode(_ChainTables, {k: v for k, v in doc.items() if k in listed}, file=origin)
    try:
        chains = tuple(c.resolve() for c in tables.chains)
        gas = {c.chain_id: c.gas_token for c in chains}
        for i, t in enumerate(tables.cex_dex):
            if t.chain_id not in gas:
                raise ConfigError(f"chain {t.chain_id} has no [[chains]] table (its gas token prices the DEX leg)",
                                  path=f"cex_dex[{i}].chain_id")
        assets = AssetMap.of(tables.assets)
        cross_chain = None
        if tables.cross_chain is not None:
            try:
                cross_chain = tables.cross_chain.resolve(assets, gas)
            except ConfigError as exc:
                raise exc.within("cross_chain") from None
        return msgspec.structs.replace(config, chains=chains,
                                       curve_pools=tuple(c.resolve() for c in tables.curve_pools),
                                       cex_dex=tuple(t.resolve(gas[t.chain_id]) for t in tables.cex_dex),
                                       assets=tables.assets, cross_chain=cross_chain)
    except ConfigError as exc:  # a check across tables (a chain listed twice)
        raise exc.within(file=origin) from None


def load_config(path: str | Path) -> StrategyConfig:
    """Read and validate a TOML file; every problem is a :class:`ConfigError` naming the file."""
    config = config_from_dict(load_toml(path), origin=str(path))
    if not config.chains:  # nothing to watch or price: a strategy that can never signal
        raise ConfigError("at least one [[chains]] table is needed", path="chains", file=path)
    return config
