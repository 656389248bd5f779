"""What was deployed where: a frozen description of one or more devnet chains, and its JSON file.

The file (default ``var/devnet/deployment.json``) always has the same shape, one entry per chain::

    {"format": "alphapulse-devnet/1", "chains": [ {chain}, ... ]}

and is what collector / strategy / executor configuration points at. Addresses are EIP-55
checksummed strings. Pool fees are in hundredths of a basis point ("pips", Uniswap V3's unit):
V2 pools have fee 3000 (0.3 %), like the V3 3000 tier. ``token0``/``token1`` are sorted exactly
as the contracts sort them (by address).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

FORMAT = "alphapulse-devnet/1"
DEFAULT_PATH = Path("var/devnet/deployment.json")
V2_FEE_PIPS = 3000


@dataclass(frozen=True, kw_only=True)
class Token:
    symbol: str
    name: str
    address: str
    decimals: int


@dataclass(frozen=True, kw_only=True)
class V2Venue:
    """One Uniswap V2 deployment: a factory and the Router02 bound to it."""

    name: str
    factory: str
    router: str
    init_code_hash: str


@dataclass(frozen=True, kw_only=True)
class V3Venue:
    name: str
    factory: str
    position_manager: str
    swap_router: str
    quoter_v2: str
    init_code_hash: str


@dataclass(frozen=True, kw_only=True)
class V4Venue:
    """The Uniswap V4 singleton and our devnet router for it (tools/devnet/contracts/V4Devnet.sol)."""

    name: str
    pool_manager: str
    router: str


@dataclass(frozen=True, kw_only=True)
class V4Pool:
    """A V4 pool: no address, a PoolKey (``token0/token1`` = currency0/1, ``fee``, ``tick_spacing``,
    ``hooks``) and its ``pool_id`` (0x-hex keccak of the key). Listed apart from ``pools``, whose
    entries are contracts with addresses."""

    pool_id: str
    venue: str
    token0: str
    token1: str
    fee: int
    tick_spacing: int
    hooks: str
    symbol0: str = ""
    symbol1: str = ""
    hook_name: str = ""  # what the devnet deployed at ``hooks`` ("" without a hook)

    @property
    def key(self) -> tuple[str, str, int, int, str]:
        """The PoolKey tuple as the PoolManager's ABI takes it."""
        return (self.token0, self.token1, self.fee, self.tick_spacing, self.hooks)

    @property
    def label(self) -> str:
        hook = f"+{self.hook_name}" if self.hook_name else ""
        return f"{self.venue}:{self.symbol0}/{self.symbol1}@{self.fee / 10_000:g}%{hook}"


@dataclass(frozen=True, kw_only=True)
class Bridge:
    """The chain's bridge stand-in (tools/devnet/contracts/DevBridge.sol, specs/bridge-standin.md):
    its contract, the one account allowed to complete transfers here, and the contract's
    ``liquidity`` per token symbol at deployment (raw units), from which transfers are released."""

    address: str
    relayer: str
    liquidity: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CurvePool:
    """A Curve StableSwap pool: ``coins`` in the pool's index order, ``rates`` its RATES
    (``10**(36 - decimals)``), ``amp`` A, ``fee`` and ``admin_fee`` on the 1e10 scale."""

    address: str
    venue: str
    coins: tuple[str, ...]
    symbols: tuple[str, ...]
    rates: tuple[int, ...]
    amp: int
    fee: int
    admin_fee: int

    def index(self, token: str) -> int:
        """The pool's index of ``token`` (an address)."""
        for i, c in enumerate(self.coins):
            if c.lower() == token.lower():
                return i
        raise KeyError(f"{token} is not a coin of the Curve pool {self.address}")

    @property
    def label(self) -> str:
        return f"{self.venue}:{'/'.join(self.symbols)}"


@dataclass(frozen=True, kw_only=True)
class Pool:
    address: str
    venue: str
    kind: str  # "v2" or "v3"
    token0: str  # address, sorted as the contract sorts
    token1: str
    fee: int  # pips (1e-6): 3000 = 0.3 %
    tick_spacing: int | None = None  # v3 only
    symbol0: str = ""
    symbol1: str = ""

    @property
    def label(self) -> str:
        """``venue:SYM0/SYM1@fee%``, e.g. ``uniswap_v3:WETH/USDC@0.05%``."""
        return f"{self.venue}:{self.symbol0}/{self.symbol1}@{self.fee / 10_000:g}%"


@dataclass(frozen=True, kw_only=True)
class ChainDeployment:
    """One chain of a deployment file: its node, accounts, tokens, venues and pools."""

    chain_id: int
    rpc_url: str
    ws_url: str
    deployer: str
    accounts: tuple[str, ...]
    tokens: tuple[Token, ...]
    weth: str
    v2: tuple[V2Venue, ...]
    v3: V3Venue
    pools: tuple[Pool, ...]
    deploy_block: int  # the last block of the deployment; collectors may start after it
    funded_accounts: tuple[str, ...] = ()  # dev accounts holding WETH/USDC/DAI with every router approved
    block_time: float | None = None  # None = automine
    anvil_pid: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    v4: V4Venue | None = None
    v4_pools: tuple[V4Pool, ...] = ()
    bridge: Bridge | None = None
    balancer_vault: str | None = None  # a Balancer V2 Vault holding token balances it can flash-lend
    curve_pools: tuple[CurvePool, ...] = ()

    # -- look-ups ------------------------------------------------------------------------------
    def token(self, symbol_or_address: str) -> Token:
        key = symbol_or_address.lower()
        for t in self.tokens:
            if t.symbol.lower() == key or t.address.lower() == key:
                return t
        raise KeyError(f"no token {symbol_or_address!r} on chain {self.chain_id}")

    def address_of(self, token: str) -> str:
        """Checksummed address of a token given by symbol or address."""
        return self.token(token).address

    def v2_venue(self, name: str) -> V2Venue:
        for v in self.v2:
            if v.name == name:
                return v
        raise KeyError(f"no V2 venue {name!r} (have {[v.name for v in self.v2]})")

    def pool(self, venue: str, token_a: str, token_b: str, fee: int | None = None) -> Pool:
        """The pool of ``venue`` for the two tokens (symbols or addresses); ``fee`` for V3."""
        a, b = self.address_of(token_a).lower(), self.address_of(token_b).lower()
        for p in self.pools:
            if p.venue != venue or {p.token0.lower(), p.token1.lower()} != {a, b}:
                continue
            if fee is None or p.fee == fee:
                if fee is None and p.kind == "v3":
                    raise KeyError("give fee= for a V3 pool")
                return p
        raise KeyError(f"no pool {venue} {token_a}/{token_b} fee={fee}")

    def v4_pool(self, token_a: str, token_b: str, fee: int, *, hook: str = "") -> V4Pool:
        """The V4 pool of the two tokens at ``fee`` with the devnet hook named ``hook`` ("" = none)."""
        a, b = self.address_of(token_a).lower(), self.address_of(token_b).lower()
        for p in self.v4_pools:
            if {p.token0.lower(), p.token1.lower()} == {a, b} and p.fee == fee and p.hook_name == hook:
                return p
        raise KeyError(f"no V4 pool {token_a}/{token_b} fee={fee} hook={hook!r}")

    def pools_of(self, *, kind: str | None = None, venue: str | None = None) -> tuple[Pool, ...]:
        return tuple(p for p in self.pools if (kind is None or p.kind == kind) and (venue is None or p.venue == venue))

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["extra"] = dict(self.extra)
        if self.bridge is not None:
            d["bridge"]["liquidity"] = dict(self.bridge.liquidity)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChainDeployment:
        cs = to_checksum_address
        return cls(
            chain_id=int(d["chain_id"]),
            rpc_url=d["rpc_url"],
            ws_url=d["ws_url"],
            deployer=cs(d["deployer"]),
            accounts=tuple(cs(a) for a in d["accounts"]),
            tokens=tuple(Token(**{**t, "address": cs(t["address"])}) for t in d["tokens"]),
            weth=cs(d["weth"]),
            v2=tuple(V2Venue(**{**v, "factory": cs(v["factory"]), "router": cs(v["router"])}) for v in d["v2"]),
            v3=V3Venue(**{k: (cs(v) if k not in ("name", "init_code_hash") else v) for k, v in d["v3"].items()}),
            pools=tuple(
                Pool(**{**p, "address": cs(p["address"]), "token0": cs(p["token0"]), "token1": cs(p["token1"])})
                for p in d["pools"]
            ),
            deploy_block=int(d["deploy_block"]),
            funded_accounts=tuple(cs(a) for a in d.get("funded_accounts", ())),
            block_time=d.get("block_time"),
            anvil_pid=d.get("anvil_pid"),
            extra=dict(d.get("extra") or {}),
            v4=(V4Venue(name=d["v4"]["name"], pool_manager=cs(d["v4"]["pool_manager"]), router=cs(d["v4"]["router"]))
                if d.get("v4") else None),
            v4_pools=tuple(
                V4Pool(**{**p, "token0": cs(p["token0"]), "token1": cs(p["token1"]), "hooks": cs(p["hooks"])})
                for p in d.get("v4_pools", ())
            ),
            bridge=(Bridge(address=cs(d["bridge"]["address"]), relayer=cs(d["bridge"]["relayer"]),
                           liquidity={k: int(v) for k, v in (d["bridge"].get("liquidity") or {}).items()})
                    if d.get("bridge") else None),
            balancer_vault=cs(d["balancer_vault"]) if d.get("balancer_vault") else None,
            curve_pools=tuple(
                CurvePool(**{**p, "address": cs(p["address"]), "coins": tuple(cs(c) for c in p["coins"]),
                             "symbols": tuple(p["symbols"]), "rates": tuple(int(r) for r in p["rates"])})
                for p in d.get("curve_pools", ())
            ),
        )


@dataclass(frozen=True)
class DeploymentFile:
    chains: tuple[ChainDeployment, ...]
    pids: tuple[int, ...] = ()  # every anvil PID the writer started (for clean-up checks)
    writer_pid: int | None = None

    def chain(self, chain_id: int | None = None) -> ChainDeployment:
        """The chain with ``chain_id``, or the only/first chain when None."""
        if chain_id is None:
            if not self.chains:
                raise KeyError("deployment file lists no chains")
            return self.chains[0]
        for c in self.chains:
            if c.chain_id == chain_id:
                return c
        raise KeyError(f"no chain {chain_id} (have {[c.chain_id for c in self.chains]})")

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "writer_pid": self.writer_pid,
                "pids": list(self.pids),
                "chains": [c.to_dict() for c in self.chains],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> DeploymentFile:
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} file (format={d.get('format')!r})")
        return cls(
            chains=tuple(ChainDeployment.from_dict(c) for c in d["chains"]),
            pids=tuple(int(p) for p in d.get("pids", [])),
            writer_pid=d.get("writer_pid"),
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (temp file + rename), creating parent directories."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(self.to_json() + "\n")
        tmp.replace(path)
        return path


def load_deployment(path: str | os.PathLike[str] = DEFAULT_PATH) -> DeploymentFile:
    return DeploymentFile.from_json(Path(path).read_text())


def load_chain(path: str | os.PathLike[str] = DEFAULT_PATH, chain_id: int | None = None) -> ChainDeployment:
    return load_deployment(path).chain(chain_id)


def save_deployment(
    path: str | os.PathLike[str], chains: Iterable[ChainDeployment], *, pids: Iterable[int] = ()
) -> Path:
    return DeploymentFile(chains=tuple(chains), pids=tuple(pids), writer_pid=os.getpid()).save(path)
