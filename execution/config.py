"""Executor configuration: frozen keyword-only structs (``runtime.config``) loaded from TOML.

A typo is an error at start-up, never a silent default: the tables are ``runtime.config``
structs, so unknown keys are rejected (naming the key path and the keys allowed), money and gas
are ``int`` only (a float wei amount is refused, not rounded), and **a plaintext private key
anywhere in the file is refused** (``runtime.secrets``): any value that is 32 bytes of hex (with or
without ``0x``) and any key named like a secret (``private_key``, ``mnemonic``, ``secret``,
``password``) stops the load without echoing it. The signing key lives only in an encrypted
keystore (:mod:`execution.keystore`); its password comes from a file or an environment variable
named here, never from this file.

Example (``alphapulse executor --config executor.toml``)::

    [executor]
    chain_id = 31337
    rpc_url = "http://127.0.0.1:8545"  # or, for a URL carrying an API key, named instead of written:
    # rpc_url_file = "/etc/alphapulse/rpc_url"   (or rpc_url_env = "ALPHAPULSE_RPC_URL"), read at start
    contract = "0x..."                 # AlphaPulseArb, owned by the keystore's address
    gas_token = "0x..."                # WETH: gas costs are converted from it into the profit token
    mode = "shadow"                    # shadow | public | private | hybrid
    source_id = 30                     # producer id on the execution relay
    state_db = "var/executor/state.sqlite"
    market_data_from = "oldest"        # oldest | now: where to start the market-data relay
    signals_from = "now"               # oldest | now: where a fresh state_db starts on the signal relay
                                       # (a restart always resumes after the last signal handled)

    [keystore]
    path = "var/executor/keystore.json"
    password_file = "var/executor/password"   # or: password_env = "ALPHAPULSE_KEYSTORE_PASSWORD"

    [validation]
    max_signal_age_blocks = 2          # head - signal block beyond this: STALE (a chain without a block time below)
    max_signal_age_s = 2.0             # a chain with one: ceil(this / its block time) blocks (at least 1), so the
    block_time_s = { "31338" = 0.25 }  #   limit means the same time on a 0.25 s chain as on a 12 s one
    state_wait_s = 1.0                 # wait this long for market data to reach the signal's block
    min_profit = { "0x<usdc>" = 0 }    # net profit after re-pricing must be > this (profit token units)
    onchain_min_profit_bps = 10000     # minProfit sent to the contract, in bps of the expected gross

    [limits]                           # pre-trade risk limits: a breach ends the signal REJECTED_BY_RISK
    max_amount_in = { "0x<usdc>" = 50000000000000 }    # first hop's input, per token (base units)
    max_gas_price_wei = 300000000000   # effective gas price above this: rejected (0: no limit)

    [gas]
    limit_multiplier_bps = 12000       # gas limit = estimate * bps / 10000 + limit_extra
    limit_extra = 60000                # (the contract needs ~45k above gas used: refunds, 63/64)
    max_gas_limit = 1500000
    base_fee_multiplier_bps = 20000    # maxFeePerGas = base fee * bps / 10000 + tip
    max_fee_per_gas = 500000000000     # hard cap (wei)
    fee_bump_bps = 1250                # replacement bump, >= 1000 (+10 %, the nodes' minimum)

    [tip]
    policy = "fixed"                   # fixed | profit_share
    tip_wei = 1000000000               # fixed tip, and the floor of profit_share
    share_bps = 1000                   # profit_share: this share of the expected profit (in gas token)
    max_tip_wei = 50000000000          # cap of the tip per gas

    [submission]
    receipt_timeout_s = 12.0           # public: give up (and cancel) after this
    replace_after_s = 3.0              # public: bump fees and replace after this without a receipt
    max_replacements = 3
    private_blocks = 2                 # bundles target the next N blocks
    private_timeout_s = 6.0            # private/hybrid: wait this long for the target blocks
    poll_interval_s = 0.05             # receipts: at most this apart; at once when our chain's next BlockHeader comes

    [[builders]]
    name = "standin"
    url = "http://127.0.0.1:18545"
    call_bundle = true                 # the builder supports eth_callBundle

    [[venues]]                         # pool venue code -> the factory the contract allow-lists
    venue = "DEVNET_V2_A"              # protocol.ids.Venue name or numeric code
    factory = "0x..."

    [[venues]]                         # a Uniswap V4 venue: its factory is the PoolManager
    venue = "DEVNET_V4"
    factory = "0x..."
    hooks = ["0x..."]                  # the hook contracts whose pools may be traded (hookless pools always)

    [[curve_pools]]                    # a Curve StableSwap pool the contract may trade (deploy-contract allow-lists
    address = "0x..."                  #   it by its own address); a path through a pool not listed here is FAILED
    coins = ["0x6B175474E89094C44Da98b954EedeAC495271d0F", "0xA0b86991c6218b36c1D19D4a2e9Eb0cE3606eB48"]
                                       # the pool's coins in ITS order (coins(0), coins(1)): the calldata's i, j
    amp = 200                          # the amplification A, and each coin's rate 10**(36 - decimals), in the
    rates = [1000000000000000000, 1000000000000000000000000000000]   # order of `coins`

    [cex]                              # CEX-DEX signals (specs/cex-legs.md); without it they end FAILED
    rest_url = "http://127.0.0.1:18090" # Binance's REST API (the stand-in's paper exchange here)
    key_env = "BINANCE_API_KEY"        # the NAMES of where the API key and its HMAC signing key are:
    hmac_env = "BINANCE_API_HMAC"      # an environment variable (key_env/hmac_env) or a file (key_file/hmac_file)
    cex_timeout_s = 5.0                # no answer to an order (or a status query) within this: query its status
    query_attempts = 3                 # status queries of an order whose answer was lost (0: LEG_OPEN at once)
    query_interval_s = 1.0             # between queries that learnt nothing
    max_leg_open_s = 30.0              # a CEX fill whose DEX leg has not finished by then is unwound
    dex_deadline_s = 24.0              # the DEX leg's on-chain deadline after the CEX fill (< max_leg_open_s)
    max_unwind_attempts = 3
    unwind_slippage_bps = 50

    [[cex.markets]]                    # one book and the same assets on this chain
    venue = "BINANCE"
    symbol = "ETHUSDC"
    base_asset = "ETH"
    quote_asset = "USDC"
    base = "0x..."                     # the base token on chain (WETH), and its decimals
    base_decimals = 18
    quote = "0x..."
    quote_decimals = 6
    fee_ppm = 1000                     # the taker fee

    [cross_chain]                      # CROSS_CHAIN signals (specs/cross-chain-legs.md); without it they end FAILED
    leg_timeout_s = 12.0               # a leg not mined by then is cancelled (its transaction's receipt timeout)
    deadline_s = 10.0                  # each swap's on-chain deadline after sending (<= leg_timeout_s)
    max_leg_open_s = 30.0              # both legs must have answered by then (> 2 x leg_timeout_s: the cancel)
    unwind_timeout_s = 30.0            # one unwind attempt must have answered by then
    max_unwind_attempts = 3
    max_unwind_loss_bps = 100          # an unwind returns at least the leg's input less this
    leg_slippage_bps = 0               # each leg's min_out: its re-validated exact output less this
    rebalancer_source_id = 48          # the rebalancer's producer id: the executor signs its OwnerTxRequests
                                       # (specs/rebalance.md, "One signer per account"); 0 = none

    [[cross_chain.chains]]             # one per chain: its own node, contract (with inventory) and signer
    chain_id = 31337                   # the [executor] chain's entry names its contract and keystore
    rpc_url = "http://127.0.0.1:8545"
    contract = "0x..."
    gas_token = "0x..."
    keystore = { path = "var/executor/keystore.json", password_file = "var/executor/password" }
    venues = [{ venue = "DEVNET_V2_A", factory = "0x..." }]
    bridge = "0x..."                   # the bridge the rebalancer's transfers use on this chain (optional)

    [[cross_chain.chains]]
    chain_id = 31338
    rpc_url = "http://127.0.0.1:8546"  # or rpc_url_file / rpc_url_env, as in [executor]
    contract = "0x..."
    gas_token = "0x..."
    keystore = { path = "var/executor/keystore-31338.json", password_env = "ALPHAPULSE_KEYSTORE_PASSWORD_31338" }
    venues = [{ venue = "DEVNET_V2_A", factory = "0x..." }]

    [relays]                           # empty = the default sockets
    market_data = ""
    signal = ""
    execution = ""
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

import msgspec

from chain.rpc import redact_url
from protocol.errors import ProtocolError
from protocol.ids import TokenId, Venue, address_to_int
from runtime.config import U32, Config, ConfigError, Meta, NonNegative, RelaysConfig, decode, load_toml
from runtime.secrets import SecretSourceError, read_secret

MODES = ("shadow", "public", "private", "hybrid")
TIP_POLICIES = ("fixed", "profit_share")

Seconds = Annotated[float, Meta(ge=0)]


class VenueCode(int):
    """A pool venue code; the file may write it as a ``protocol.ids.Venue`` name or a number."""

    __slots__ = ()


def _address(path: str, value: str) -> int:
    try:
        return address_to_int(value)
    except (ValueError, ProtocolError) as exc:  # FieldRangeError: say which key
        raise ConfigError(str(exc), path=path) from None


class KeystoreConfig(Config):
    path: str
    password_file: str = ""
    password_env: str = ""


class ValidationConfig(Config):
    """``[validation]``. The signal age limit (``specs/executor-concurrency.md``, "The age limit") is a backstop
    in *time*, the same on every chain: on a chain whose block time ``block_time_s`` names, ``head - signal
    block`` may be at most ``ceil(max_signal_age_s / block time)`` blocks (at least 1); on any other chain at most
    ``max_signal_age_blocks``. Re-validation against the executor's own pool state, and the simulation, are what
    catch a signal whose state moved, at any age."""

    max_signal_age_blocks: NonNegative = 2
    max_signal_age_s: Annotated[float, Meta(gt=0, le=3600)] = 2.0
    block_time_s: Mapping[str, Annotated[float, Meta(gt=0, le=3600)]] = {}  # chain id (as written) -> seconds
    state_wait_s: Seconds = 1.0
    min_profit: Mapping[TokenId, NonNegative] = {}  # written by address on [executor]'s chain
    onchain_min_profit_bps: Annotated[int, Meta(ge=0, le=10_000)] = 10_000

    def __post_init__(self) -> None:
        for key in self.block_time_s:
            if not (key.isdigit() and 0 < int(key) <= 0xFFFF_FFFF):
                raise ConfigError(f"{key!r} is not a chain id (a decimal number, 1..4294967295): block_time_s is "
                                  "keyed by chain id", path="block_time_s")

    def max_age_blocks(self, chain_id: int) -> int:
        """How many blocks ``head - signal block`` may be on ``chain_id`` before the signal is STALE."""
        block_time = self.block_time_s.get(str(chain_id))
        if block_time is None:
            return self.max_signal_age_blocks
        return max(1, math.ceil(self.max_signal_age_s / block_time - 1e-9))


class LimitsConfig(Config):
    """Pre-trade risk limits the executor enforces itself (outcome REJECTED_BY_RISK).

    The risk process stops trading through EmergencyStop; these are the per-signal checks that
    need no round trip: the first hop's input per token, and the effective gas price.
    """

    max_amount_in: Mapping[TokenId, NonNegative] = {}  # base units; written by address
    max_gas_price_wei: NonNegative = 0  # 0: no limit beyond [gas] max_fee_per_gas


class GasConfig(Config):
    limit_multiplier_bps: NonNegative = 12_000
    limit_extra: NonNegative = 60_000
    max_gas_limit: NonNegative = 1_500_000
    base_fee_multiplier_bps: NonNegative = 20_000
    max_fee_per_gas: NonNegative = 500 * 10**9
    fee_bump_bps: NonNegative = 1_250


class TipConfig(Config):
    policy: str = "fixed"
    tip_wei: NonNegative = 10**9
    share_bps: NonNegative = 1_000
    max_tip_wei: NonNegative = 50 * 10**9


class SubmissionConfig(Config):
    receipt_timeout_s: Seconds = 12.0
    replace_after_s: Seconds = 3.0
    max_replacements: NonNegative = 3
    private_blocks: NonNegative = 2
    private_timeout_s: Seconds = 6.0
    poll_interval_s: Seconds = 0.05
    # signals in flight at once, their pools disjoint (execution/schedule.py); 1 in private and hybrid mode
    max_in_flight: Annotated[int, Meta(ge=1, le=64)] = 4


class BuilderConfig(Config):
    name: str
    url: str
    call_bundle: bool = False


class VenueConfig(Config):
    venue: VenueCode
    factory: str
    # V4 only: the hooks of the pools that may be traded. A V4 instrument id names its pool by the pool
    # id, which the executor rebuilds from the pool's key to address it, and a key includes its hooks.
    hooks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _address("factory", self.factory)
        for i, h in enumerate(self.hooks):
            _address(f"hooks[{i}]", h)


class CurvePoolConfig(Config):
    """A two-coin Curve StableSwap pool: its coins in the pool's own order (the indices ``exchange(i, j)``
    takes, whatever the addresses' order), its amplification and rates in that order. A snapshot on the
    market-data relay carries only the balances and the fee; these are what the executor prices it with."""

    address: str
    coins: tuple[str, str]
    amp: Annotated[int, Meta(ge=1, le=10**6)]
    rates: tuple[Annotated[int, Meta(gt=0)], Annotated[int, Meta(gt=0)]]

    def __post_init__(self) -> None:
        _address("address", self.address)
        for i, c in enumerate(self.coins):
            _address(f"coins[{i}]", c)
        if self.coins[0].lower() == self.coins[1].lower():
            raise ConfigError("a pool's two coins must differ", path="coins")

    @property
    def sorted_rates(self) -> tuple[int, int]:
        """The rates in the market model's order: token0 (the lower address) first."""
        if int(self.coins[0], 16) < int(self.coins[1], 16):
            return self.rates
        return self.rates[1], self.rates[0]


class CexMarketConfig(Config):
    """One book on an exchange and the same two assets on the executor's chain."""

    symbol: str
    base_asset: str
    quote_asset: str
    base: str
    quote: str
    base_decimals: Annotated[int, Meta(ge=0, le=36)]
    quote_decimals: Annotated[int, Meta(ge=0, le=36)]
    venue: VenueCode = VenueCode(Venue.BINANCE)
    fee_ppm: Annotated[int, Meta(ge=0, lt=1_000_000)] = 1000

    def __post_init__(self) -> None:
        _address("base", self.base)
        _address("quote", self.quote)


class CexConfig(Config):
    """The exchange side of CEX-DEX signals: the order gateway and the two-leg policy's limits."""

    rest_url: str
    key_env: str = ""
    key_file: str = ""
    hmac_env: str = ""
    hmac_file: str = ""
    cex_timeout_s: Seconds = 5.0
    max_leg_open_s: Seconds = 30.0
    dex_deadline_s: Seconds = 24.0
    max_unwind_attempts: Annotated[int, Meta(ge=1)] = 3
    unwind_slippage_bps: Annotated[int, Meta(ge=0, lt=10_000)] = 50
    query_attempts: Annotated[int, Meta(ge=0, le=20)] = 3
    query_interval_s: Seconds = 1.0
    markets: tuple[CexMarketConfig, ...] = ()

    def __post_init__(self) -> None:
        if not self.dex_deadline_s < self.max_leg_open_s:
            raise ConfigError("dex_deadline_s must be below max_leg_open_s (a DEX leg must never land after its "
                              "position was unwound)", path="dex_deadline_s")
        if bool(self.key_env) == bool(self.key_file) or bool(self.hmac_env) == bool(self.hmac_file):
            raise ConfigError("name exactly one of key_env / key_file and one of hmac_env / hmac_file", path="cex")

    def market(self, venue: int, symbol: str) -> CexMarketConfig | None:
        return next((m for m in self.markets if m.venue == venue and m.symbol == symbol), None)


def _check_rpc_source(rpc_url: str, rpc_url_file: str, rpc_url_env: str, keystore: KeystoreConfig) -> None:
    if not (rpc_url or rpc_url_file or rpc_url_env):
        raise ConfigError("missing: give rpc_url, rpc_url_file or rpc_url_env", path="rpc_url")
    if rpc_url_file and rpc_url_env:
        raise ConfigError("give one of rpc_url_file or rpc_url_env", path="rpc_url_env")
    if rpc_url and not rpc_url.startswith(("http://", "https://")):
        raise ConfigError(f"expected an http:// or https:// URL, got {redact_url(rpc_url)}", path="rpc_url")
    if bool(keystore.password_file) == bool(keystore.password_env):
        raise ConfigError("give exactly one of password_file or password_env", path="keystore")


class ChainSideConfig(Config):
    """One chain of cross-chain trading: its node, its AlphaPulseArb (holding the inventory), its signer."""

    chain_id: Annotated[int, Meta(ge=1, le=0xFFFF_FFFF)]
    contract: str
    gas_token: str
    keystore: KeystoreConfig
    rpc_url: str = ""
    rpc_url_file: str = ""
    rpc_url_env: str = ""
    venues: tuple[VenueConfig, ...] = ()
    bridge: str = ""  # the bridge the rebalancer moves this chain's inventory through ("": none, execution/owner.py)

    def __post_init__(self) -> None:
        _address("contract", self.contract)
        _address("gas_token", self.gas_token)
        if self.bridge:
            _address("bridge", self.bridge)
        _check_rpc_source(self.rpc_url, self.rpc_url_file, self.rpc_url_env, self.keystore)

    @property
    def factories(self) -> dict[int, str]:
        return {v.venue: v.factory for v in self.venues}


class CrossChainConfig(Config):
    """CROSS_CHAIN signals: the chains and the two-leg policy's limits (``specs/cross-chain-legs.md``)."""

    chains: tuple[ChainSideConfig, ...]
    leg_timeout_s: Annotated[float, Meta(gt=0)] = 12.0
    deadline_s: Annotated[float, Meta(gt=0)] = 10.0
    max_leg_open_s: Annotated[float, Meta(gt=0)] = 30.0
    unwind_timeout_s: Annotated[float, Meta(gt=0)] = 30.0
    max_unwind_attempts: Annotated[int, Meta(ge=1, le=255)] = 3
    max_unwind_loss_bps: Annotated[int, Meta(ge=0, lt=10_000)] = 100
    leg_slippage_bps: Annotated[int, Meta(ge=0, lt=10_000)] = 0
    # the producer on the execution relay whose OwnerTxRequest the executor signs (0: none; execution/owner.py)
    rebalancer_source_id: U32 = 0

    def __post_init__(self) -> None:
        ids = [c.chain_id for c in self.chains]
        if len(ids) < 2 or len(set(ids)) != len(ids):
            raise ConfigError(f"name at least two distinct chains, got {ids}", path="chains")
        if self.deadline_s > self.leg_timeout_s:
            raise ConfigError("deadline_s must not exceed leg_timeout_s (a leg given up must never land)",
                              path="deadline_s")
        for key in ("max_leg_open_s", "unwind_timeout_s"):
            if getattr(self, key) <= 2 * self.leg_timeout_s:
                raise ConfigError(f"{key} must exceed 2 x leg_timeout_s (a stuck leg is cancelled at leg_timeout_s "
                                  "and the cancel is watched as long again)", path=key)

    def chain(self, chain_id: int) -> ChainSideConfig | None:
        return next((c for c in self.chains if c.chain_id == chain_id), None)


class ExecutorConfig(Config):
    own_table: ClassVar[str] = "executor"  # the settings below that are not tables live in [executor]

    chain_id: Annotated[int, Meta(ge=1, le=0xFFFF_FFFF)]
    contract: str
    gas_token: str
    keystore: KeystoreConfig
    rpc_url: str = ""  # exactly one of rpc_url, rpc_url_file, rpc_url_env; config_from_dict resolves
    rpc_url_file: str = ""  # the last two into rpc_url (the file's or variable's text)
    rpc_url_env: str = ""
    mode: str = "shadow"
    source_id: U32 = 30
    name: str = "executor"
    state_db: str = "var/executor/state.sqlite"
    market_data_from: str = "oldest"
    signals_from: str = "now"
    validation: ValidationConfig = ValidationConfig()
    limits: LimitsConfig = LimitsConfig()
    gas: GasConfig = GasConfig()
    tip: TipConfig = TipConfig()
    submission: SubmissionConfig = SubmissionConfig()
    builders: tuple[BuilderConfig, ...] = ()
    venues: tuple[VenueConfig, ...] = ()
    curve_pools: tuple[CurvePoolConfig, ...] = ()
    cex: CexConfig | None = None
    cross_chain: CrossChainConfig | None = None
    relays: RelaysConfig = RelaysConfig()

    def __post_init__(self) -> None:
        _address("contract", self.contract)
        _address("gas_token", self.gas_token)
        if self.mode not in MODES:
            raise ConfigError(f"{self.mode!r} must be one of {', '.join(MODES)}", path="mode")
        if self.mode in ("private", "hybrid") and not self.builders:
            raise ConfigError(f"{self.mode!r} needs at least one [[builders]] entry", path="mode")
        if self.tip.policy not in TIP_POLICIES:
            raise ConfigError(f"{self.tip.policy!r} must be one of {', '.join(TIP_POLICIES)}", path="tip.policy")
        if self.gas.fee_bump_bps < 1_000:
            raise ConfigError(f"fee_bump_bps={self.gas.fee_bump_bps} must be >= 1000 (+10 %): nodes "
                              "refuse smaller replacements", path="gas.fee_bump_bps")
        if self.market_data_from not in ("oldest", "now"):
            raise ConfigError(f"{self.market_data_from!r} must be 'oldest' or 'now'", path="market_data_from")
        if self.signals_from not in ("oldest", "now"):
            raise ConfigError(f"{self.signals_from!r} must be 'oldest' or 'now'", path="signals_from")
        if not (self.rpc_url or self.rpc_url_file or self.rpc_url_env):
            raise ConfigError("missing: give rpc_url, rpc_url_file or rpc_url_env", path="rpc_url")
        if self.rpc_url_file and self.rpc_url_env:
            raise ConfigError("give one of rpc_url_file or rpc_url_env", path="rpc_url_env")
        if self.rpc_url and not self.rpc_url.startswith(("http://", "https://")):
            raise ConfigError(f"expected an http:// or https:// URL, got {redact_url(self.rpc_url)}", path="rpc_url")
        if bool(self.keystore.password_file) == bool(self.keystore.password_env):
            raise ConfigError("give exactly one of password_file or password_env", path="keystore")
        own = self.cross_chain.chain(self.chain_id) if self.cross_chain is not None else None
        if own is not None and (own.contract.lower() != self.contract.lower() or own.keystore.path != self.keystore.path):
            raise ConfigError(f"the entry for chain {self.chain_id} (the [executor] chain) must name its contract and "
                              "keystore: one signer and one nonce sequence per chain", path="cross_chain.chains")

    @property
    def factories(self) -> dict[int, str]:
        return {v.venue: v.factory for v in self.venues}

    @property
    def v4_hooks(self) -> dict[int, tuple[str, ...]]:
        """Venue code -> the hook contracts configured for it (V4 venues)."""
        return {v.venue: v.hooks for v in self.venues if v.hooks}

    @property
    def curve_coins(self) -> dict[int, tuple[str, str]]:
        """Curve pool address (an int) -> its coins in the pool's order."""
        return {address_to_int(c.address): c.coins for c in self.curve_pools}

    def min_profit_for(self, token: int) -> int:
        return self.validation.min_profit.get(TokenId(token), 0)


def _values_on(chain_id: int) -> Any:
    """The decoder's hook: token addresses on ``chain_id``, venue names or codes."""

    def hook(tp: type, value: Any) -> Any:
        if tp is TokenId and isinstance(value, str):
            try:
                return TokenId.of(chain_id, value)
            except ProtocolError as exc:
                raise ValueError(str(exc)) from None
        if tp is VenueCode and isinstance(value, int | str) and not isinstance(value, bool):
            if isinstance(value, int) or value.isdigit():
                if not 0 <= int(value) <= 0xFFFF:
                    raise ValueError(f"venue code out of range [0, 65535], got {value}")
                return VenueCode(value)
            try:
                return VenueCode(Venue[value.upper()])
            except KeyError:
                raise ValueError(f"unknown venue {value!r} (a protocol.ids.Venue name or a code)") from None
        raise NotImplementedError

    return hook


def config_from_dict(doc: Mapping[str, Any], *, origin: str = "") -> ExecutorConfig:
    """Validate a parsed TOML document (secrets refused first) into an :class:`ExecutorConfig`."""
    table = doc.get("executor") if isinstance(doc, Mapping) else None
    chain_id = table.get("chain_id") if isinstance(table, Mapping) else None
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or not 0 < chain_id < 1 << 32:
        chain_id = 1  # not a chain id: decoding reports it at executor.chain_id
    config = decode(ExecutorConfig, doc, file=origin, dec_hook=_values_on(chain_id))
    if config.rpc_url_file or config.rpc_url_env:
        key = "executor.rpc_url_file" if config.rpc_url_file else "executor.rpc_url_env"
        if config.rpc_url:
            raise ConfigError("give one of rpc_url or " + key.split(".")[1], path=key, file=origin)
        try:
            url = read_secret(file=config.rpc_url_file, env=config.rpc_url_env, what="the RPC URL")
            # the URL is what the process uses; the source stays named beside it
            config = msgspec.structs.replace(config, rpc_url=url)
        except SecretSourceError as exc:
            raise ConfigError(str(exc), path=key, file=origin) from None
        except ConfigError as exc:
            raise ConfigError(exc.message, path=key, file=origin) from None
    if config.cross_chain is not None:
        chains = []
        for i, c in enumerate(config.cross_chain.chains):
            if c.rpc_url_file or c.rpc_url_env:
                key = f"cross_chain.chains[{i}].{'rpc_url_file' if c.rpc_url_file else 'rpc_url_env'}"
                if c.rpc_url:
                    raise ConfigError("give one of rpc_url or " + key.rsplit(".", 1)[1], path=key, file=origin)
                try:
                    url = read_secret(file=c.rpc_url_file, env=c.rpc_url_env, what="the RPC URL")
                    c = msgspec.structs.replace(c, rpc_url=url)
                except SecretSourceError as exc:
                    raise ConfigError(str(exc), path=key, file=origin) from None
                except ConfigError as exc:
                    raise ConfigError(exc.message, path=key, file=origin) from None
            chains.append(c)
        config = msgspec.structs.replace(config, cross_chain=msgspec.structs.replace(config.cross_chain,
                                                                                      chains=tuple(chains)))
    return config


def load_config(path: str | Path) -> ExecutorConfig:
    """Read and validate a TOML file; every problem is a :class:`ConfigError` naming the file."""
    return config_from_dict(load_toml(path), origin=str(path))
