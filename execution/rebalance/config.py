"""The rebalancer's configuration (``alphapulse rebalancer --config FILE``): strict frozen structs
(``runtime.config``), plaintext keys refused, RPC URLs by file or environment variable when they carry
an API key. Example::

    [rebalancer]
    source_id = 48                     # producer id on the execution relay
    name = "rebalancer"
    state_db = "var/rebalancer/state.sqlite"
    poll_s = 1.0                       # seconds between passes (balances, steps, completions)
    bridge_id = 1                      # BridgeTransfer.bridge
    bridge_fee_bps = 1                 # the bridge's fee, to size a transfer so its destination lands on target
    overdue_s = 600                    # a transfer sent this long ago and not completed is logged as overdue
    answer_wait_s = 10.0               # how long a pass waits for the executor's answer to a request

    [[chains]]                         # one per chain: its node (reads only), contract and bridge
    chain_id = 31337
    rpc_url = "http://127.0.0.1:8545"  # or rpc_url_file / rpc_url_env
    contract = "0x..."                 # AlphaPulseArb (its owner's transactions are the executor's to sign)
    bridge = "0x..."                   # the bridge (DevBridge on the devnet); the executor's
                                       # [[cross_chain.chains]] bridge must name the same

The rebalancer holds no key: the owner account's transactions are signed by the executor, its one signer and
nonce authority on each chain (``specs/rebalance.md``, "One signer per account"); the executor serves the
requests of the ``source_id`` its ``[cross_chain] rebalancer_source_id`` names. A ``keystore`` here is refused.

    [[assets]]                         # runtime/assets.py: which tokens are one asset across chains
    name = "USDC"
    tokens = [{ chain_id = 31337, address = "0x..." }, { chain_id = 31338, address = "0x..." }]

    [[targets]]                        # per (asset, chain): refill to target once below floor (base units)
    asset = "USDC"
    chain_id = 31337
    floor = 20000000000
    target = 50000000000
    min_transfer = 1000000             # optional: the smallest transfer into this chain worth doing

    [relays]
    execution = ""                     # empty: the default socket
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

import msgspec

from chain.rpc import redact_url
from protocol.ids import address_to_int
from runtime.assets import AssetEntry, AssetMap
from runtime.config import U16, U32, Config, ConfigError, Meta, NonNegative, RelaysConfig, decode, load_toml
from runtime.secrets import SecretSourceError, read_secret

from .core import BPS, Target

ChainId = Annotated[int, Meta(ge=1, le=0xFFFF_FFFF)]


def _check_address(path: str, value: str) -> None:
    try:
        address_to_int(value)
    except Exception:  # noqa: BLE001 - ProtocolError or ValueError: one line naming the key
        raise ConfigError("not an address (want 0x and 40 hex digits)", path=path) from None


class ChainConfig(Config):
    chain_id: ChainId
    contract: str
    bridge: str
    rpc_url: str = ""
    rpc_url_file: str = ""
    rpc_url_env: str = ""

    def __post_init__(self) -> None:
        _check_address("contract", self.contract)
        _check_address("bridge", self.bridge)
        if sum(map(bool, (self.rpc_url, self.rpc_url_file, self.rpc_url_env))) != 1:
            raise ConfigError("give exactly one of rpc_url, rpc_url_file or rpc_url_env", path="rpc_url")
        if self.rpc_url and not self.rpc_url.startswith(("http://", "https://")):
            raise ConfigError(f"expected an http:// or https:// URL, got {redact_url(self.rpc_url)}", path="rpc_url")


class TargetConfig(Config):
    asset: str
    chain_id: ChainId
    floor: NonNegative
    target: NonNegative
    min_transfer: Annotated[int, Meta(ge=1)] = 1

    def __post_init__(self) -> None:
        if self.floor > self.target:
            raise ConfigError(f"floor {self.floor} is above target {self.target}", path="floor")


class RebalancerConfig(Config):
    own_table: ClassVar[str] = "rebalancer"

    chains: Annotated[tuple[ChainConfig, ...], Meta(min_length=2)]
    assets: Annotated[tuple[AssetEntry, ...], Meta(min_length=1)]
    targets: Annotated[tuple[TargetConfig, ...], Meta(min_length=2)]
    source_id: U32 = 48
    name: str = "rebalancer"
    state_db: str = "var/rebalancer/state.sqlite"
    poll_s: Annotated[float, Meta(gt=0)] = 1.0
    bridge_id: U16 = 1
    bridge_fee_bps: Annotated[int, Meta(ge=0, lt=BPS)] = 0
    overdue_s: Annotated[float, Meta(gt=0)] = 600.0
    answer_wait_s: Annotated[float, Meta(gt=0)] = 10.0
    relays: RelaysConfig = RelaysConfig()

    def __post_init__(self) -> None:
        chains = [c.chain_id for c in self.chains]
        for i, cid in enumerate(chains):
            if cid in chains[:i]:
                raise ConfigError(f"chain {cid} is configured twice", path=f"chains[{i}].chain_id")
        assets = self.asset_map()
        seen: set[tuple[str, int]] = set()
        for i, t in enumerate(self.targets):
            where = f"targets[{i}]"
            if t.chain_id not in chains:
                raise ConfigError(f"chain {t.chain_id} is not in [[chains]]", path=f"{where}.chain_id")
            if t.asset not in assets.names:
                raise ConfigError(f"asset {t.asset} is not in [[assets]]", path=f"{where}.asset")
            if assets.token(t.asset, t.chain_id) is None:
                raise ConfigError(f"asset {t.asset} has no token on chain {t.chain_id} in [[assets]]",
                                  path=f"{where}.chain_id")
            if (t.asset, t.chain_id) in seen:
                raise ConfigError(f"{t.asset} on chain {t.chain_id} has two targets", path=where)
            seen.add((t.asset, t.chain_id))

    def asset_map(self) -> AssetMap:
        return AssetMap.of(self.assets)

    def policy(self) -> list[Target]:
        return [Target(asset=t.asset, chain_id=t.chain_id, floor=t.floor, target=t.target,
                       min_transfer=t.min_transfer) for t in self.targets]

    def chain(self, chain_id: int) -> ChainConfig:
        return next(c for c in self.chains if c.chain_id == chain_id)


_SIGNS_NOTHING = ("the rebalancer signs nothing: the executor, the owner account's one signer, sends its "
                  "transactions (specs/rebalance.md, \"One signer per account\"); remove it")


def config_from_dict(doc: Mapping[str, Any], *, origin: str = "") -> RebalancerConfig:
    """Validate a parsed document (secrets refused first); RPC URLs named by file or variable are read. A
    keystore (a second process signing for the owner account) is refused with its own line."""
    for i, c in enumerate(doc.get("chains") or ()):
        if isinstance(c, Mapping) and "keystore" in c:
            raise ConfigError(_SIGNS_NOTHING, path=f"chains[{i}].keystore", file=origin)
    for key in ("tip_wei", "max_fee_per_gas"):
        if isinstance(doc.get("rebalancer"), Mapping) and key in doc["rebalancer"]:
            raise ConfigError(f"the executor prices the owner's transactions: {_SIGNS_NOTHING}",
                              path=f"rebalancer.{key}", file=origin)
    config = decode(RebalancerConfig, doc, file=origin)
    chains = []
    for i, c in enumerate(config.chains):
        if c.rpc_url_file or c.rpc_url_env:
            key = f"chains[{i}].{'rpc_url_file' if c.rpc_url_file else 'rpc_url_env'}"
            try:
                url = read_secret(file=c.rpc_url_file, env=c.rpc_url_env, what="the RPC URL")
            except SecretSourceError as exc:
                raise ConfigError(str(exc), path=key, file=origin) from None
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"expected an http:// or https:// URL, got {redact_url(url)}", path=key, file=origin)
            c = msgspec.structs.replace(c, rpc_url=url, rpc_url_file="", rpc_url_env="")
        chains.append(c)
    return msgspec.structs.replace(config, chains=tuple(chains))


def load_config(path: str | Path) -> RebalancerConfig:
    return config_from_dict(load_toml(path), origin=str(path))
