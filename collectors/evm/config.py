"""``alphapulse collector evm --config FILE``: the TOML configuration, checked at start-up.

Example (a user adds endpoints; chain id, gas token and factories come from ``chains.py``)::

    source_id = 0x4556                     # producer id in message headers (default 0x4556, "EV")
    relay_socket = "/run/alphapulse/market_data.sock"   # default: runtime.paths.socket_path("market_data")

    [[chain]]
    name = "ethereum"                      # built-in: chain_id 1, gas token ETH, Uniswap V2/V3 factories
    endpoints = [
      { ws = "wss://eth.example/ws" },                       # tried first (eth_subscribe)
      { http = "https://eth.example/rpc" },                  # fail-over: HTTP polling
      { ws_file = "/etc/alphapulse/ws_url", http_env = "ALPHAPULSE_RPC_URL" },  # a URL with an API key:
    ]                                                        # named by a file or an env var, read at start
    pools = [
      { venue = "uniswap_v3", address = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640" },  # tokens read on-chain
      { venue = "uniswap_v2", tokens = ["0xA0b8...", "0xC02a..."] },                     # factory.getPair
      { venue = "uniswap_v3", tokens = ["0xA0b8...", "0xC02a..."], fee = 3000 },         # factory.getPool
      # a Uniswap V4 pool is its PoolKey: currency0/1 (0x0 = native ETH), fee, tick_spacing, hooks
      { venue = "uniswap_v4", tokens = ["0x0000...", "0xA0b8..."], fee = 500, tick_spacing = 10 },
      { venue = "curve", address = "0x..." },   # a classic two-coin StableSwap pool (coins read on-chain)
    ]

    [[chain]]                              # the devnet: every pool of a tools/devnet deployment file
    name = "devnet"
    deployment = "var/devnet/deployment.json"   # chain id, endpoints and pools from the file
    poll_interval = 0.2

Every table is closed (the tables are ``runtime.config`` structs): an unknown key, a wrong type or
a missing endpoint is a ``ConfigError`` naming the key path (``chain[1].endpoints[0].wss``);
``process.main`` exits with status 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from chain.rpc import redact_url
from protocol.ids import VenueKind
from runtime.config import Config, ConfigError, Meta, decode, load_toml
from runtime.secrets import SecretSourceError, read_secret

from .chains import BUILTIN_CHAINS, DEVNET_VENUES, VENUES, ChainDefaults, Factory

DEFAULT_SOURCE_ID = 0x4556  # "EV"

Seconds = Annotated[float, Meta(gt=0)]
Count = Annotated[int, Meta(gt=0)]


def _address(value: str, path: str) -> str:
    if len(value) != 42 or value[:2] not in ("0x", "0X"):
        raise ConfigError(f"expected a 0x-prefixed 20-byte hex address, got {value!r}", path=path)
    try:
        int(value[2:], 16)
    except ValueError:
        raise ConfigError(f"not hex: {value!r}", path=path) from None
    return value


def _venue(name: str, path: str) -> str:
    if name not in VENUES:
        raise ConfigError(f"unknown venue {name!r} (one of {', '.join(VENUES)})", path=path)
    return name


class Endpoint(Config):
    """One node: ``ws`` for eth_subscribe streaming, ``http`` for calls / polling. At least one."""

    ws: str | None = None
    http: str | None = None

    def __post_init__(self) -> None:
        if self.ws is None and self.http is None:
            raise ConfigError("an endpoint needs ws or http (or both)")
        if self.ws is not None and not self.ws.startswith(("ws://", "wss://")):
            raise ConfigError(f"expected a ws:// or wss:// URL, got {redact_url(self.ws)}", path="ws")
        if self.http is not None and not self.http.startswith(("http://", "https://")):
            raise ConfigError(f"expected an http:// or https:// URL, got {redact_url(self.http)}", path="http")

    @property
    def label(self) -> str:
        """The endpoint for messages and logs, secrets masked (see ``chain.rpc.redact_url``)."""
        url = self.ws or self.http
        return redact_url(url) if url else "?"


class _EndpointTable(Config):
    """An endpoint as written: each URL inline (``ws``, ``http``) or, since a provider's URL usually
    carries its API key, named by a file (``ws_file``, ``http_file``) or an environment variable
    (``ws_env``, ``http_env``) read at start-up (``runtime.secrets.read_secret``)."""

    ws: str | None = None
    http: str | None = None
    ws_file: str | None = None
    ws_env: str | None = None
    http_file: str | None = None
    http_env: str | None = None

    def __post_init__(self) -> None:
        for scheme in ("ws", "http"):
            given = [k for k in (scheme, f"{scheme}_file", f"{scheme}_env") if getattr(self, k) is not None]
            if len(given) > 1:
                raise ConfigError(f"give one of {', '.join(given)}", path=given[1])

    def resolve(self) -> Endpoint:
        urls: dict[str, str | None] = {}
        for scheme in ("ws", "http"):
            file, env = getattr(self, f"{scheme}_file"), getattr(self, f"{scheme}_env")
            urls[scheme] = getattr(self, scheme)
            if file is not None or env is not None:
                try:
                    urls[scheme] = read_secret(file=file or "", env=env or "", what=f"the {scheme} URL")
                except SecretSourceError as exc:
                    raise ConfigError(str(exc), path=f"{scheme}_file" if file is not None else f"{scheme}_env") from None
        return Endpoint(ws=urls["ws"], http=urls["http"])


class PoolSpec(Config):
    """A pool to follow: ``address`` (tokens read on-chain unless given), or ``tokens`` (+ ``fee``
    for V3) resolved through the venue's factory. A Uniswap V4 pool has no address: it is its
    PoolKey, ``tokens`` (currency0, currency1), ``fee``, ``tick_spacing`` and ``hooks`` (default none),
    in the venue's PoolManager (the venue's factory entry)."""

    venue: str
    address: str | None = None
    tokens: tuple[str, str] | None = None
    fee: int | None = None
    tick_spacing: int | None = None  # V4 only
    hooks: str | None = None  # V4 only

    def __post_init__(self) -> None:
        _venue(self.venue, "venue")
        if self.address is not None:
            _address(self.address, "address")
        for i, t in enumerate(self.tokens or ()):
            _address(t, f"tokens[{i}]")
        if self.hooks is not None:
            _address(self.hooks, "hooks")
        kind = VENUES[self.venue].kind
        if kind == VenueKind.UNISWAP_V4:
            if self.address is not None:
                raise ConfigError("a V4 pool has no address: give its key (tokens, fee, tick_spacing, hooks)",
                                  path="address")
            for name in ("tokens", "fee", "tick_spacing"):
                if getattr(self, name) is None:
                    raise ConfigError("a V4 pool needs its key: tokens, fee, tick_spacing (and hooks)", path=name)
            return
        if self.tick_spacing is not None or self.hooks is not None:
            raise ConfigError("tick_spacing and hooks are for V4 pools (their PoolKey)",
                              path="tick_spacing" if self.tick_spacing is not None else "hooks")
        if self.address is None and self.tokens is None:
            raise ConfigError("a pool needs an address or tokens")
        if kind == VenueKind.CURVE and self.address is None:
            raise ConfigError("a Curve pool is followed by its address (it has no factory here)", path="address")
        if self.address is None and kind == VenueKind.UNISWAP_V3 and self.fee is None:
            raise ConfigError("a V3 pool given by tokens needs its fee tier (e.g. 3000)", path="fee")


class ChainTuning(Config):
    """Timing and batching of one chain's follower (every ``[[chain]]`` may set these)."""

    poll_interval: Seconds = 2.0  # seconds between polls on HTTP-only endpoints
    reorg_window: Count = 128  # block hashes remembered to find a fork point
    rpc_timeout: Seconds = 15.0  # one call or batch
    head_timeout: Seconds = 60.0  # no head for this long: probe the node
    backoff_initial: Seconds = 0.1
    backoff_max: Seconds = 5.0
    batch_size: Count = 250  # calls per JSON-RPC batch
    # One market-data message per transaction's logs ("tx"), per block's ("block"), or per log
    # ("log"): the strategy decides once per message, so it never sees half a transaction.
    publish_unit: Literal["tx", "block", "log"] = "tx"


class ChainConfig(ChainTuning, kw_only=True):  # kw_only spelled out for type checkers (inherited defaults)
    """A chain to follow, with built-in defaults and a deployment file merged in."""

    name: str
    chain_id: int
    gas_token: str
    endpoints: tuple[Endpoint, ...]
    factories: tuple[Factory, ...] = ()
    pools: tuple[PoolSpec, ...] = ()

    def factory(self, venue: str) -> Factory:
        for f in self.factories:
            if f.venue == venue:
                return f
        raise ConfigError(f"chain {self.name}: no {venue} factory known "
                          "(add factories = [{venue=..., address=...}])")


class CollectorConfig(Config):
    chains: tuple[ChainConfig, ...]
    relay_socket: str | None = None
    source_id: int = DEFAULT_SOURCE_ID
    relay_connect_timeout: float | None = 30.0


# --------------------------------------------------------------------------- the file's tables


class _ChainTable(ChainTuning, kw_only=True):
    """``[[chain]]`` as written: a built-in name and/or a deployment file fill in what is left out."""

    name: str
    chain_id: Annotated[int, Meta(gt=0, lt=2**32)] | None = None
    gas_token: str | None = None
    endpoints: tuple[_EndpointTable, ...] | None = None
    factories: tuple[Factory, ...] = ()
    pools: tuple[PoolSpec, ...] = ()
    deployment: str | None = None

    def __post_init__(self) -> None:
        for i, f in enumerate(self.factories):
            _venue(f.venue, f"factories[{i}].venue")
            _address(f.address, f"factories[{i}].address")

    def resolve(self, base: Path) -> ChainConfig:
        """Merge the built-in chain and the deployment file; errors are relative to this table."""
        builtin: ChainDefaults | None = BUILTIN_CHAINS.get(self.name)
        chain_id = self.chain_id if self.chain_id is not None else (builtin.chain_id if builtin else None)
        gas_token = self.gas_token if self.gas_token is not None else (builtin.gas_token if builtin else None)
        mine = {f.venue for f in self.factories}
        factories = [f for f in (builtin.factories if builtin else ()) if f.venue not in mine] + list(self.factories)
        pools = list(self.pools)
        endpoints: tuple[Endpoint, ...] | None = None
        if self.endpoints is not None:
            resolved = []
            for i, e in enumerate(self.endpoints):
                try:
                    resolved.append(e.resolve())
                except ConfigError as exc:
                    raise exc.within(f"endpoints[{i}]") from None
            endpoints = tuple(resolved)
        if self.deployment is not None:
            dep = _deployment_chain(self.deployment, base, chain_id)
            if chain_id is None:
                chain_id = dep.chain_id
            elif chain_id != dep.chain_id:
                raise ConfigError(f"{chain_id} but the deployment is chain {dep.chain_id}", path="chain_id")
            gas_token = gas_token or "ETH"
            if endpoints is None:
                try:
                    endpoints = (Endpoint(ws=dep.ws_url, http=dep.rpc_url),)
                except ConfigError as exc:
                    raise exc.within("deployment") from None
            factories += [Factory(venue=DEVNET_VENUES.get(v.name, v.name), address=v.factory) for v in dep.v2]
            factories.append(Factory(venue=DEVNET_VENUES.get(dep.v3.name, dep.v3.name), address=dep.v3.factory))
            for p in dep.pools:
                venue = DEVNET_VENUES.get(p.venue)
                if venue is None:
                    raise ConfigError(f"pool {p.address} has unknown devnet venue {p.venue!r}", path="deployment")
                pools.append(PoolSpec(venue=venue, address=p.address, tokens=(p.token0, p.token1), fee=p.fee))
            for c in dep.curve_pools:
                if len(c.coins) != 2:
                    raise ConfigError(f"Curve pool {c.address} has {len(c.coins)} coins: two-coin pools only",
                                      path="deployment")
                pools.append(PoolSpec(venue=DEVNET_VENUES.get(c.venue, c.venue), address=c.address,
                                      tokens=(c.coins[0], c.coins[1])))
            if dep.v4 is not None:
                v4_venue = DEVNET_VENUES.get(dep.v4.name, dep.v4.name)
                factories.append(Factory(venue=v4_venue, address=dep.v4.pool_manager))
                for q in dep.v4_pools:  # every V4 pool, the refused ones too: admission is the collector's
                    pools.append(PoolSpec(venue=DEVNET_VENUES.get(q.venue, q.venue), tokens=(q.token0, q.token1),
                                          fee=q.fee, tick_spacing=q.tick_spacing, hooks=q.hooks))
        if chain_id is None:
            raise ConfigError(f"missing (chain {self.name!r} is not built in: {', '.join(BUILTIN_CHAINS)})",
                              path="chain_id")
        if gas_token is None:
            raise ConfigError("missing", path="gas_token")
        if not endpoints:
            raise ConfigError("missing: give at least one { ws = ... } or { http = ... }", path="endpoints")
        if not pools:
            raise ConfigError("no pools to follow (give pools = [...] or deployment = ...)", path="pools")
        tuning = {f: getattr(self, f) for f in ChainTuning.__struct_fields__}
        return ChainConfig(name=self.name, chain_id=chain_id, gas_token=gas_token, endpoints=endpoints,
                           factories=tuple(factories), pools=tuple(pools), **tuning)


def _deployment_chain(path_text: str, base: Path, chain_id: int | None) -> Any:
    from chain.deployment import load_deployment

    path = Path(path_text)
    if not path.is_absolute() and not path.exists() and (base / path).exists():
        path = base / path
    try:
        dep = load_deployment(path)
    except FileNotFoundError:
        raise ConfigError(f"no such deployment file {path}", path="deployment") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"unreadable deployment file {path}: {exc}", path="deployment") from None
    try:
        return dep.chain(chain_id)
    except KeyError as exc:
        raise ConfigError(str(exc), path="deployment") from None


class _CollectorFile(Config):
    chain: tuple[_ChainTable, ...] = ()
    relay_socket: str | None = None
    source_id: Annotated[int, Meta(gt=0, lt=2**32)] = DEFAULT_SOURCE_ID
    relay_connect_timeout: float = 30.0


def parse_config(data: Mapping[str, Any], *, base: Path = Path("."), origin: str = "") -> CollectorConfig:
    f = decode(_CollectorFile, data, file=origin)
    if not f.chain:
        raise ConfigError("missing: add at least one [[chain]] table", path="chain", file=origin)
    chains = []
    for i, table in enumerate(f.chain):
        try:
            chains.append(table.resolve(base))
        except ConfigError as exc:
            raise exc.within(f"chain[{i}]", file=origin) from None
    names = [c.name for c in chains]
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate chain names {names}", path="chain", file=origin)
    return CollectorConfig(chains=tuple(chains), relay_socket=f.relay_socket, source_id=f.source_id,
                           relay_connect_timeout=f.relay_connect_timeout)


def load_config(path: str | Path) -> CollectorConfig:
    path = Path(path)
    return parse_config(load_toml(path), base=path.parent, origin=str(path))
