"""``alphapulse collector evm --config FILE``: the TOML configuration, checked at start-up.

Example (a user adds endpoints; chain id, gas token and factories come from ``chains.py``)::

    source_id = 0x4556                     # producer id in message headers (default 0x4556, "EV")
    relay_socket = "/run/alphapulse/market_data.sock"   # default: relays.paths.socket_path("market_data")

    [[chain]]
    name = "ethereum"                      # built-in: chain_id 1, gas token ETH, Uniswap V2/V3 factories
    endpoints = [
      { ws = "wss://eth.example/ws" },                       # tried first (eth_subscribe)
      { http = "https://eth.example/rpc" },                  # fail-over: HTTP polling
    ]
    pools = [
      { venue = "uniswap_v3", address = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640" },  # tokens read on-chain
      { venue = "uniswap_v2", tokens = ["0xA0b8...", "0xC02a..."] },                     # factory.getPair
      { venue = "uniswap_v3", tokens = ["0xA0b8...", "0xC02a..."], fee = 3000 },         # factory.getPool
    ]

    [[chain]]                              # the devnet: every pool of a tools/devnet deployment file
    name = "devnet"
    deployment = "var/devnet/deployment.json"   # chain id, endpoints and pools from the file
    poll_interval = 0.2

Every table is closed: an unknown key, a wrong type or a missing endpoint is a ``ConfigError``
naming the key path (``chain[1].endpoints[0].wss``); ``process.main`` exits with status 2.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chains import BUILTIN_CHAINS, DEVNET_VENUES, VENUES, Factory

DEFAULT_SOURCE_ID = 0x4556  # "EV"


class ConfigError(ValueError):
    """A configuration problem at ``path`` (a dotted key path such as ``chain[0].endpoints``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


@dataclass(frozen=True, kw_only=True, slots=True)
class Endpoint:
    """One node: ``ws`` for eth_subscribe streaming, ``http`` for calls / polling. At least one."""

    ws: str | None = None
    http: str | None = None

    @property
    def label(self) -> str:
        return self.ws or self.http or "?"


@dataclass(frozen=True, kw_only=True, slots=True)
class PoolSpec:
    """A pool to follow: ``address`` (tokens read on-chain unless given), or ``tokens`` (+ ``fee``
    for V3) resolved through the venue's factory."""

    venue: str
    address: str | None = None
    tokens: tuple[str, str] | None = None
    fee: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ChainConfig:
    name: str
    chain_id: int
    gas_token: str
    endpoints: tuple[Endpoint, ...]
    factories: tuple[Factory, ...] = ()
    pools: tuple[PoolSpec, ...] = ()
    poll_interval: float = 2.0  # seconds between polls on HTTP-only endpoints
    reorg_window: int = 128  # block hashes remembered to find a fork point
    rpc_timeout: float = 15.0  # one call or batch
    head_timeout: float = 60.0  # no head for this long: probe the node
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    batch_size: int = 250  # calls per JSON-RPC batch

    def factory(self, venue: str) -> Factory:
        for f in self.factories:
            if f.venue == venue:
                return f
        raise ConfigError(f"chain {self.name}", f"no {venue} factory known (add factories = [{{venue=..., address=...}}])")


@dataclass(frozen=True, kw_only=True, slots=True)
class CollectorConfig:
    chains: tuple[ChainConfig, ...]
    relay_socket: str | None = None
    source_id: int = DEFAULT_SOURCE_ID
    relay_connect_timeout: float | None = 30.0


# --------------------------------------------------------------------------- checking helpers

_ABSENT = object()


def _closed(table: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise ConfigError(where, f"unknown key (expected one of {', '.join(sorted(allowed))})")


def _get(table: Mapping[str, Any], key: str, path: str, types: type | tuple[type, ...], default: Any = _ABSENT) -> Any:
    where = f"{path}.{key}" if path else key
    if key not in table:
        if default is _ABSENT:
            raise ConfigError(where, "missing")
        return default
    value = table[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ConfigError(where, f"expected {_names(types)}, got a boolean")
    if not isinstance(value, types):
        raise ConfigError(where, f"expected {_names(types)}, got {type(value).__name__} {value!r}")
    return value


def _names(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    return " or ".join({"str": "a string", "int": "an integer", "float": "a number", "list": "an array",
                        "dict": "a table"}.get(t.__name__, t.__name__) for t in ts)


def _address(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) != 42 or value[:2] not in ("0x", "0X"):
        raise ConfigError(where, f"expected a 0x-prefixed 20-byte hex address, got {value!r}")
    try:
        int(value[2:], 16)
    except ValueError:
        raise ConfigError(where, f"not hex: {value!r}") from None
    return value


def _positive(value: float, where: str) -> float:
    if value <= 0:
        raise ConfigError(where, f"must be positive, got {value!r}")
    return value


# --------------------------------------------------------------------------- parsing

_CHAIN_KEYS = {"name", "chain_id", "gas_token", "endpoints", "factories", "pools", "deployment", "poll_interval",
               "reorg_window", "rpc_timeout", "head_timeout", "backoff_initial", "backoff_max", "batch_size"}


def _endpoint(raw: Any, where: str) -> Endpoint:
    if not isinstance(raw, dict):
        raise ConfigError(where, f"expected a table like {{ ws = \"ws://...\" }}, got {raw!r}")
    _closed(raw, where, {"ws", "http"})
    ws = _get(raw, "ws", where, str, None)
    http = _get(raw, "http", where, str, None)
    if ws is None and http is None:
        raise ConfigError(where, "an endpoint needs ws or http (or both)")
    if ws is not None and not ws.startswith(("ws://", "wss://")):
        raise ConfigError(f"{where}.ws", f"expected a ws:// or wss:// URL, got {ws!r}")
    if http is not None and not http.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.http", f"expected an http:// or https:// URL, got {http!r}")
    return Endpoint(ws=ws, http=http)


def _pool(raw: Any, where: str) -> PoolSpec:
    if not isinstance(raw, dict):
        raise ConfigError(where, f"expected a table, got {raw!r}")
    _closed(raw, where, {"venue", "address", "tokens", "fee"})
    venue = _get(raw, "venue", where, str)
    if venue not in VENUES:
        raise ConfigError(f"{where}.venue", f"unknown venue {venue!r} (one of {', '.join(VENUES)})")
    address = _get(raw, "address", where, str, None)
    if address is not None:
        _address(address, f"{where}.address")
    tokens = _get(raw, "tokens", where, list, None)
    if tokens is not None:
        if len(tokens) != 2:
            raise ConfigError(f"{where}.tokens", "expected two token addresses")
        tokens = tuple(_address(t, f"{where}.tokens[{i}]") for i, t in enumerate(tokens))
    fee = _get(raw, "fee", where, int, None)
    if address is None and tokens is None:
        raise ConfigError(where, "a pool needs an address or tokens")
    if address is None and VENUES[venue].kind == 2 and fee is None:
        raise ConfigError(f"{where}.fee", "a V3 pool given by tokens needs its fee tier (e.g. 3000)")
    return PoolSpec(venue=venue, address=address, tokens=tokens, fee=fee)


def _deployment_chain(path_text: str, where: str, base: Path, chain_id: int | None) -> Any:
    from chain.deployment import load_deployment

    path = Path(path_text)
    if not path.is_absolute() and not path.exists() and (base / path).exists():
        path = base / path
    try:
        dep = load_deployment(path)
    except FileNotFoundError:
        raise ConfigError(where, f"no such deployment file {path}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(where, f"unreadable deployment file {path}: {exc}") from None
    try:
        return dep.chain(chain_id)
    except KeyError as exc:
        raise ConfigError(where, str(exc)) from None


def _chain(raw: Any, where: str, base: Path) -> ChainConfig:
    if not isinstance(raw, dict):
        raise ConfigError(where, "expected a table ([[chain]])")
    _closed(raw, where, _CHAIN_KEYS)
    name = _get(raw, "name", where, str)
    builtin = BUILTIN_CHAINS.get(name)
    chain_id = _get(raw, "chain_id", where, int, builtin.chain_id if builtin else None)
    gas_token = _get(raw, "gas_token", where, str, builtin.gas_token if builtin else None)
    factories = list(builtin.factories) if builtin else []
    for i, f in enumerate(_get(raw, "factories", where, list, [])):
        fw = f"{where}.factories[{i}]"
        if not isinstance(f, dict):
            raise ConfigError(fw, "expected a table { venue = ..., address = ... }")
        _closed(f, fw, {"venue", "address"})
        venue = _get(f, "venue", fw, str)
        if venue not in VENUES:
            raise ConfigError(f"{fw}.venue", f"unknown venue {venue!r} (one of {', '.join(VENUES)})")
        factories = [x for x in factories if x.venue != venue]
        factories.append(Factory(venue=venue, address=_address(_get(f, "address", fw, str), f"{fw}.address")))
    pools = [_pool(p, f"{where}.pools[{i}]") for i, p in enumerate(_get(raw, "pools", where, list, []))]
    endpoints_raw = _get(raw, "endpoints", where, list, None)
    dep_path = _get(raw, "deployment", where, str, None)
    if dep_path is not None:
        dep = _deployment_chain(dep_path, f"{where}.deployment", base, chain_id)
        if chain_id is None:
            chain_id = dep.chain_id
        elif chain_id != dep.chain_id:
            raise ConfigError(f"{where}.chain_id", f"{chain_id} but the deployment is chain {dep.chain_id}")
        gas_token = gas_token or "ETH"
        if endpoints_raw is None:
            endpoints_raw = [{"ws": dep.ws_url, "http": dep.rpc_url}]
        for v in dep.v2:
            factories.append(Factory(venue=DEVNET_VENUES.get(v.name, v.name), address=v.factory))
        factories.append(Factory(venue=DEVNET_VENUES.get(dep.v3.name, dep.v3.name), address=dep.v3.factory))
        for p in dep.pools:
            venue = DEVNET_VENUES.get(p.venue)
            if venue is None:
                raise ConfigError(f"{where}.deployment", f"pool {p.address} has unknown devnet venue {p.venue!r}")
            pools.append(PoolSpec(venue=venue, address=p.address, tokens=(p.token0, p.token1), fee=p.fee))
    if chain_id is None:
        raise ConfigError(f"{where}.chain_id", f"missing (chain {name!r} is not built in: "
                                               f"{', '.join(BUILTIN_CHAINS)})")
    if not 0 < chain_id < 2**32:
        raise ConfigError(f"{where}.chain_id", f"out of range: {chain_id}")
    if gas_token is None:
        raise ConfigError(f"{where}.gas_token", "missing")
    if not endpoints_raw:
        raise ConfigError(f"{where}.endpoints", "missing: give at least one { ws = ... } or { http = ... }")
    endpoints = tuple(_endpoint(e, f"{where}.endpoints[{i}]") for i, e in enumerate(endpoints_raw))
    if not pools:
        raise ConfigError(f"{where}.pools", "no pools to follow (give pools = [...] or deployment = ...)")
    numbers: dict[str, Any] = {}
    for key, default in (("poll_interval", 2.0), ("rpc_timeout", 15.0), ("head_timeout", 60.0),
                         ("backoff_initial", 0.1), ("backoff_max", 5.0)):
        numbers[key] = _positive(float(_get(raw, key, where, (int, float), default)), f"{where}.{key}")
    for key, default in (("reorg_window", 128), ("batch_size", 250)):
        numbers[key] = int(_positive(_get(raw, key, where, int, default), f"{where}.{key}"))
    return ChainConfig(name=name, chain_id=chain_id, gas_token=gas_token, endpoints=endpoints,
                       factories=tuple(factories), pools=tuple(pools), **numbers)


def parse_config(data: Mapping[str, Any], *, base: Path = Path(".")) -> CollectorConfig:
    _closed(data, "", {"source_id", "relay_socket", "relay_connect_timeout", "chain"})
    chains_raw = _get(data, "chain", "", list, None)
    if not chains_raw:
        raise ConfigError("chain", "missing: add at least one [[chain]] table")
    chains = tuple(_chain(c, f"chain[{i}]", base) for i, c in enumerate(chains_raw))
    names = [c.name for c in chains]
    if len(set(names)) != len(names):
        raise ConfigError("chain", f"duplicate chain names {names}")
    source_id = _get(data, "source_id", "", int, DEFAULT_SOURCE_ID)
    if not 0 < source_id < 2**32:
        raise ConfigError("source_id", f"out of range: {source_id}")
    timeout = _get(data, "relay_connect_timeout", "", (int, float), 30.0)
    return CollectorConfig(chains=chains, relay_socket=_get(data, "relay_socket", "", str, None),
                           source_id=source_id, relay_connect_timeout=float(timeout))


def load_config(path: str | Path) -> CollectorConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, base=path.parent)
