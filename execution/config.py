"""Executor configuration: frozen keyword-only dataclasses loaded from TOML.

A typo is an error at start-up, never a silent default: unknown keys are rejected (naming the
table, the key and the keys allowed), money and gas are ``int`` only (a float wei amount is
refused, not rounded), and **a plaintext private key anywhere in the file is refused**: any
string that is 32 bytes of hex (with or without ``0x``) and any key named like a secret
(``private_key``, ``mnemonic``, ``secret``, ``password``) stops the load. The signing key lives
only in an encrypted keystore (:mod:`execution.keystore`); its password comes from a file or an
environment variable named here, never from this file.

Example (``alphapulse executor --config executor.toml``)::

    [executor]
    chain_id = 31337
    rpc_url = "http://127.0.0.1:8545"
    contract = "0x..."                 # AlphaPulseArb, owned by the keystore's address
    gas_token = "0x..."                # WETH: gas costs are converted from it into the profit token
    mode = "shadow"                    # shadow | public | private | hybrid
    source_id = 30                     # producer id on the execution relay
    state_db = "var/executor/state.sqlite"
    market_data_from = "oldest"        # oldest | now: where to start the market-data relay

    [keystore]
    path = "var/executor/keystore.json"
    password_file = "var/executor/password"   # or: password_env = "ALPHAPULSE_KEYSTORE_PASSWORD"

    [validation]
    max_signal_age_blocks = 2          # head - signal block beyond this: STALE
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
    poll_interval_s = 0.05

    [[builders]]
    name = "standin"
    url = "http://127.0.0.1:18545"
    call_bundle = true                 # the builder supports eth_callBundle

    [[venues]]                         # pool venue code -> the factory the contract allow-lists
    venue = "DEVNET_V2_A"              # protocol.ids.Venue name or numeric code
    factory = "0x..."

    [relays]                           # empty = the default sockets
    market_data = ""
    signal = ""
    execution = ""
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.ids import TokenId, Venue, address_to_int
from strategy.config import ConfigError, check_keys, int_field, str_field

MODES = ("shadow", "public", "private", "hybrid")
TIP_POLICIES = ("fixed", "profit_share")
_HEX32 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_SECRET_KEY_NAMES = re.compile(r"(^|_)(private_?key|priv_?key|secret|mnemonic|seed|seed_phrase)($|_)|^(password|key)$",
                               re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeystoreConfig:
    path: str
    password_file: str = ""
    password_env: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationConfig:
    max_signal_age_blocks: int = 2
    state_wait_s: float = 1.0
    min_profit: Mapping[int, int] = field(default_factory=dict)  # TokenId -> threshold
    onchain_min_profit_bps: int = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsConfig:
    """Pre-trade risk limits the executor enforces itself (outcome REJECTED_BY_RISK).

    The risk process stops trading through EmergencyStop; these are the per-signal checks that
    need no round trip: the first hop's input per token, and the effective gas price.
    """

    max_amount_in: Mapping[int, int] = field(default_factory=dict)  # TokenId -> base units
    max_gas_price_wei: int = 0  # 0: no limit beyond [gas] max_fee_per_gas


@dataclass(frozen=True, slots=True, kw_only=True)
class GasConfig:
    limit_multiplier_bps: int = 12_000
    limit_extra: int = 60_000
    max_gas_limit: int = 1_500_000
    base_fee_multiplier_bps: int = 20_000
    max_fee_per_gas: int = 500 * 10**9
    fee_bump_bps: int = 1_250


@dataclass(frozen=True, slots=True, kw_only=True)
class TipConfig:
    policy: str = "fixed"
    tip_wei: int = 10**9
    share_bps: int = 1_000
    max_tip_wei: int = 50 * 10**9


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmissionConfig:
    receipt_timeout_s: float = 12.0
    replace_after_s: float = 3.0
    max_replacements: int = 3
    private_blocks: int = 2
    private_timeout_s: float = 6.0
    poll_interval_s: float = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class BuilderConfig:
    name: str
    url: str
    call_bundle: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueConfig:
    venue: int
    factory: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RelaysConfig:
    market_data: str = ""
    signal: str = ""
    execution: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorConfig:
    chain_id: int
    rpc_url: str
    contract: str
    gas_token: str
    keystore: KeystoreConfig
    mode: str = "shadow"
    source_id: int = 30
    name: str = "executor"
    state_db: str = "var/executor/state.sqlite"
    market_data_from: str = "oldest"
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    gas: GasConfig = field(default_factory=GasConfig)
    tip: TipConfig = field(default_factory=TipConfig)
    submission: SubmissionConfig = field(default_factory=SubmissionConfig)
    builders: tuple[BuilderConfig, ...] = ()
    venues: tuple[VenueConfig, ...] = ()
    relays: RelaysConfig = field(default_factory=RelaysConfig)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"[executor] mode={self.mode!r} must be one of {', '.join(MODES)}")
        if self.mode in ("private", "hybrid") and not self.builders:
            raise ConfigError(f"[executor] mode={self.mode!r} needs at least one [[builders]] entry")
        if self.tip.policy not in TIP_POLICIES:
            raise ConfigError(f"[tip] policy={self.tip.policy!r} must be one of {', '.join(TIP_POLICIES)}")
        if self.gas.fee_bump_bps < 1_000:
            raise ConfigError(f"[gas] fee_bump_bps={self.gas.fee_bump_bps} must be >= 1000 (+10 %): nodes "
                              "refuse smaller replacements")
        if self.market_data_from not in ("oldest", "now"):
            raise ConfigError(f"[executor] market_data_from={self.market_data_from!r} must be 'oldest' or 'now'")
        if bool(self.keystore.password_file) == bool(self.keystore.password_env):
            raise ConfigError("[keystore] give exactly one of password_file or password_env")

    @property
    def factories(self) -> dict[int, str]:
        return {v.venue: v.factory for v in self.venues}

    def min_profit_for(self, token: int) -> int:
        return self.validation.min_profit.get(token, 0)


# --- loading -------------------------------------------------------------------------------------


def refuse_secrets(doc: Any, where: str = "") -> None:
    """Raise ConfigError if anything in the parsed document looks like a private key."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            path = f"{where}.{k}" if where else str(k)
            if _SECRET_KEY_NAMES.search(str(k)) and k not in ("password_file", "password_env"):
                raise ConfigError(f"{path}: secrets do not belong in the configuration (use [keystore])")
            refuse_secrets(v, path)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            refuse_secrets(v, f"{where}[{i}]")
    elif isinstance(doc, str) and _HEX32.match(doc.strip()):
        # Do not echo the value: it may be a real key.
        raise ConfigError(f"{where}: looks like a plaintext private key (32 bytes of hex); refused. "
                          "Use an encrypted keystore: alphapulse executor new-keystore")


def _float(where: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise ConfigError(f"{where}: {key} must be a non-negative number of seconds, got {v!r}")
    return float(v)




def _bool(where: str, key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{where}: {key} must be true or false")
    return v


def _address(where: str, key: str, v: Any) -> str:
    s = str_field(where, key, v)
    try:
        address_to_int(s)
    except Exception as exc:  # FieldRangeError: say where
        raise ConfigError(f"{where}: {key}: {exc}") from None
    return s


def _venue(where: str, v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return int_field(where, "venue", v, 0, 0xFFFF)
    name = str_field(where, "venue", v)
    if name.isdigit():
        return int_field(where, "venue", int(name), 0, 0xFFFF)
    try:
        return int(Venue[name.upper()])
    except KeyError:
        raise ConfigError(f"{where}: unknown venue {name!r} (a protocol.ids.Venue name or a code)") from None


def _typed(cls: type, where: str, table: Any, kinds: Mapping[str, str]) -> Any:
    check_keys(where, table, set(kinds))
    conv: dict[str, Callable[[str, str, Any], Any]] = {
        "int": int_field, "float": _float, "str": str_field, "bool": _bool}
    try:
        return cls(**{k: conv[kinds[k]](where, k, v) for k, v in table.items()})
    except TypeError as exc:  # a required key is missing
        raise ConfigError(f"{where}: {exc}") from None


_TOP = {"executor", "keystore", "validation", "limits", "gas", "tip", "submission", "builders", "venues", "relays"}
_EXECUTOR = {"chain_id", "rpc_url", "contract", "gas_token", "mode", "source_id", "name", "state_db",
             "market_data_from"}


def config_from_dict(doc: Mapping[str, Any], *, origin: str = "config") -> ExecutorConfig:
    refuse_secrets(dict(doc), origin)
    check_keys(origin, doc, _TOP, {"executor", "keystore"})
    w = f"{origin} [executor]"
    ex = doc["executor"]
    check_keys(w, ex, _EXECUTOR, {"chain_id", "rpc_url", "contract", "gas_token"})
    chain_id = int_field(w, "chain_id", ex["chain_id"], 1, (1 << 32) - 1)
    kw: dict[str, Any] = {
        "chain_id": chain_id,
        "rpc_url": str_field(w, "rpc_url", ex["rpc_url"]),
        "contract": _address(w, "contract", ex["contract"]),
        "gas_token": _address(w, "gas_token", ex["gas_token"]),
    }
    for k in ("mode", "name", "state_db", "market_data_from"):
        if k in ex:
            kw[k] = str_field(w, k, ex[k])
    if "source_id" in ex:
        kw["source_id"] = int_field(w, "source_id", ex["source_id"], 0, (1 << 32) - 1)

    kw["keystore"] = _typed(KeystoreConfig, f"{origin} [keystore]", doc["keystore"],
                            {"path": "str", "password_file": "str", "password_env": "str"})
    if "validation" in doc:
        wv = f"{origin} [validation]"
        t = doc["validation"]
        check_keys(wv, t, {"max_signal_age_blocks", "state_wait_s", "min_profit", "onchain_min_profit_bps"})
        mins = t.get("min_profit", {})
        if not isinstance(mins, dict):
            raise ConfigError(f"{wv}: min_profit must be a table of token address -> integer")
        kw["validation"] = ValidationConfig(
            max_signal_age_blocks=int_field(wv, "max_signal_age_blocks", t.get("max_signal_age_blocks", 2)),
            state_wait_s=_float(wv, "state_wait_s", t.get("state_wait_s", 1.0)),
            min_profit={TokenId.of(chain_id, _address(wv, "min_profit", k)): int_field(wv, f"min_profit[{k}]", v)
                        for k, v in mins.items()},
            onchain_min_profit_bps=int_field(wv, "onchain_min_profit_bps", t.get("onchain_min_profit_bps", 10_000),
                                        0, 10_000),
        )
    if "limits" in doc:
        wl = f"{origin} [limits]"
        t = doc["limits"]
        check_keys(wl, t, {"max_amount_in", "max_gas_price_wei"})
        caps = t.get("max_amount_in", {})
        if not isinstance(caps, dict):
            raise ConfigError(f"{wl}: max_amount_in must be a table of token address -> integer")
        kw["limits"] = LimitsConfig(
            max_amount_in={TokenId.of(chain_id, _address(wl, "max_amount_in", k)): int_field(wl, f"max_amount_in[{k}]", v)
                           for k, v in caps.items()},
            max_gas_price_wei=int_field(wl, "max_gas_price_wei", t.get("max_gas_price_wei", 0)),
        )
    if "gas" in doc:
        kw["gas"] = _typed(GasConfig, f"{origin} [gas]", doc["gas"],
                           {k: "int" for k in GasConfig.__dataclass_fields__})
    if "tip" in doc:
        kw["tip"] = _typed(TipConfig, f"{origin} [tip]", doc["tip"],
                           {"policy": "str", "tip_wei": "int", "share_bps": "int", "max_tip_wei": "int"})
    if "submission" in doc:
        kinds = {k: "float" for k in SubmissionConfig.__dataclass_fields__}
        kinds.update(max_replacements="int", private_blocks="int")
        kw["submission"] = _typed(SubmissionConfig, f"{origin} [submission]", doc["submission"], kinds)
    builders = doc.get("builders", [])
    if not isinstance(builders, list):
        raise ConfigError(f"{origin}: builders must be an array of tables ([[builders]])")
    kw["builders"] = tuple(
        _typed(BuilderConfig, f"{origin} [[builders]] #{i + 1}", b, {"name": "str", "url": "str", "call_bundle": "bool"})
        for i, b in enumerate(builders))
    venues = doc.get("venues", [])
    if not isinstance(venues, list):
        raise ConfigError(f"{origin}: venues must be an array of tables ([[venues]])")
    vs = []
    for i, v in enumerate(venues):
        wv = f"{origin} [[venues]] #{i + 1}"
        check_keys(wv, v, {"venue", "factory"}, {"venue", "factory"})
        vs.append(VenueConfig(venue=_venue(wv, v["venue"]), factory=_address(wv, "factory", v["factory"])))
    kw["venues"] = tuple(vs)
    if "relays" in doc:
        kw["relays"] = _typed(RelaysConfig, f"{origin} [relays]", doc["relays"],
                              {"market_data": "str", "signal": "str", "execution": "str"})
    try:
        return ExecutorConfig(**kw)
    except TypeError as exc:  # a required key of a sub-table is missing
        raise ConfigError(f"{origin}: {exc}") from None


def load_config(path: str | Path) -> ExecutorConfig:
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
