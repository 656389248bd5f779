"""Loading the token and pool registry that every human-facing output reads (``market.display.Registry``).

Sources, in order: deployment files (``chain.deployment``: tokens with symbol and decimals, pools with
venue and fee), the deployment files the components' configs name (a collector's ``[[chain]]
deployment = ...``), and for a token none of them names, the chain itself: ``symbol()`` and
``decimals()`` by ``eth_call`` (a ``bytes32`` symbol too, as old tokens return), cached in a JSON file
so a chain is asked once per token.

The quote currency (``quote``, default ``$ALPHAPULSE_QUOTE`` or ``USDC``: USD) is a token symbol: on every
chain of the deployment that has it, each other token is valued through one pool pairing it with that token
(:func:`quote_paths`: V3 before V2, the lowest fee, then the address -- the deployment's main pool), or
through the wrapped native coin's pool when it has none; the prices come from whoever displays (the
dashboard's pool states, the books, the chain). ``none`` turns it off.

Which deployment file, without one given: ``$ALPHAPULSE_DEPLOYMENT``, the devnet's default
``var/devnet/deployment.json``, then the newest live demo run's ``deployment.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from chain.deployment import DEFAULT_PATH, ChainDeployment, load_deployment
from market.display import USD_STABLES, PoolInfo, QuoteCurrency, Registry, TokenInfo
from protocol.ids import PoolId, TokenId, VenueKind

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / "var" / "cache" / "tokens.json"


def chain_entries(dep: ChainDeployment) -> tuple[dict[int, TokenInfo], dict[tuple[int, str], PoolInfo]]:
    tokens = {int(TokenId.of(dep.chain_id, t.address)): TokenInfo(symbol=t.symbol, decimals=t.decimals)
              for t in dep.tokens}
    pools = {(dep.chain_id, p.address.lower()): PoolInfo(venue=p.venue, fee_pips=p.fee) for p in dep.pools}
    return tokens, pools


def default_quote() -> str | None:
    q = os.environ.get("ALPHAPULSE_QUOTE", "USDC").strip()
    return None if q.lower() in ("", "none") else q


def pool_id(dep: ChainDeployment, pool: Any) -> PoolId | None:
    """A deployment pool's ``PoolId`` as the collectors publish it (None for a venue we cannot name)."""
    from collectors.evm.chains import DEVNET_VENUES, VENUES

    info = VENUES.get(DEVNET_VENUES.get(pool.venue, pool.venue))
    if info is None:
        return None
    return PoolId.of(dep.chain_id, info.venue, info.kind, pool.address, pool.token0, pool.token1)


def quote_paths(dep: ChainDeployment, quote: str) -> tuple[int, dict[int, tuple[int, ...]]] | None:
    """(the quote token's id, token id -> the pools valuing it) on one chain; None when the chain has no
    token ``quote``. A token is valued through its main pool with the quote token (V3 first, then the lowest
    fee, then the address), else through its main pool with the wrapped native coin and on from there."""
    try:
        target = dep.token(quote)
    except KeyError:
        return None
    ids = [(p, pid) for p in dep.pools if (pid := pool_id(dep, p)) is not None]
    ids.sort(key=lambda pp: (pp[1].kind != VenueKind.UNISWAP_V3, pp[0].fee, pp[0].address.lower()))

    def main_pool(a: str, b: str) -> PoolId | None:
        pair = {a.lower(), b.lower()}
        return next((pid for p, pid in ids if {p.token0.lower(), p.token1.lower()} == pair), None)

    paths: dict[int, tuple[int, ...]] = {}
    for t in dep.tokens:
        if t.address.lower() != target.address.lower() and (pid := main_pool(t.address, target.address)):
            paths[int(TokenId.of(dep.chain_id, t.address))] = (int(pid),)
    weth = int(TokenId.of(dep.chain_id, dep.weth))
    for t in dep.tokens:
        tid = int(TokenId.of(dep.chain_id, t.address))
        if tid not in paths and tid != weth and weth in paths and (pid := main_pool(t.address, dep.weth)):
            paths[tid] = (int(pid), *paths[weth])
    return int(TokenId.of(dep.chain_id, target.address)), paths


def default_deployment_files() -> list[Path]:
    env = os.environ.get("ALPHAPULSE_DEPLOYMENT")
    if env:
        return [Path(env)]
    if (REPO / DEFAULT_PATH).is_file():
        return [REPO / DEFAULT_PATH]
    from .demo import live_runs

    for run in live_runs():
        if (run / "deployment.json").is_file():
            return [run / "deployment.json"]
    return []


def deployment_files_of_config(path: str | Path) -> list[Path]:
    """The deployment files a component config names (``[[chain]] deployment = FILE``)."""
    from runtime.config import load_toml

    doc = load_toml(path)
    chains = doc.get("chain") or doc.get("chains") or []
    return [Path(c["deployment"]) for c in chains if isinstance(c, Mapping) and c.get("deployment")]


def _decode_symbol(data: bytes) -> str:
    import eth_abi

    try:
        return str(eth_abi.decode(["string"], data)[0])
    except Exception:  # noqa: BLE001 - an old token returns bytes32, not string
        return data[:32].rstrip(b"\0").decode("utf-8", "replace")


def fetch_token_info(rpc: Any, address: str) -> TokenInfo | None:
    """``symbol()`` and ``decimals()`` of an ERC-20 by ``eth_call`` on a ``chain.rpc.SyncHttpRpc``;
    None when the contract answers neither."""
    from chain.abi import as_bytes, encode_call
    from chain.rpc import RpcFailure

    def call(signature: str) -> bytes:
        return as_bytes(rpc.call("eth_call", [{"to": address, "data": "0x" + encode_call(signature).hex()},
                                              "latest"]))

    try:
        decimals = int.from_bytes(call("decimals()")[:32], "big")
        symbol = _decode_symbol(call("symbol()"))
    except (RpcFailure, ValueError):
        return None
    if not symbol or decimals > 77:
        return None
    return TokenInfo(symbol=symbol, decimals=decimals)


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def load_registry(deployment_files: Iterable[str | Path] | None = None, *, configs: Iterable[str | Path] = (),
                  tokens_on_chain: Iterable[int] = (), rpc_urls: Mapping[int, str] | None = None,
                  cache: Path | None = DEFAULT_CACHE, quote: str | None = "") -> Registry:
    """The registry from ``deployment_files`` (default :func:`default_deployment_files`) and the files
    ``configs`` name; ``tokens_on_chain`` (TokenIds) none of them knows are asked of their chain's RPC
    (``rpc_urls`` by chain id, default each deployment's own) through the ``cache`` file; ``quote``: the
    quote currency's token symbol ("" :func:`default_quote`, None: no quote currency)."""
    quote = default_quote() if quote == "" else quote
    q_tokens: dict[int, int] = {}
    q_paths: dict[int, tuple[int, ...]] = {}
    q_native: dict[int, int] = {}
    files = [Path(f) for f in (default_deployment_files() if deployment_files is None else deployment_files)]
    for cfg in configs:
        files += deployment_files_of_config(cfg)
    tokens: dict[int, TokenInfo] = {}
    pools: dict[tuple[int, str], PoolInfo] = {}
    urls = dict(rpc_urls or {})
    for f in files:
        if not f.is_file():
            continue
        for dep in load_deployment(f).chains:
            t, p = chain_entries(dep)
            tokens.update(t)
            pools.update(p)
            urls.setdefault(dep.chain_id, dep.rpc_url)
            found = quote_paths(dep, quote) if quote else None
            if found is not None:
                q_tokens[dep.chain_id], paths = found
                q_paths.update(paths)
                q_native[dep.chain_id] = int(TokenId.of(dep.chain_id, dep.weth))
    missing = [TokenId(int(t)) for t in tokens_on_chain if int(t) not in tokens]
    if missing:
        cached = _read_cache(cache) if cache else {}
        asked = False
        for tok in missing:
            key = f"{tok.chain_id}:{tok.address.lower()}"
            if key not in cached and tok.chain_id in urls:
                from chain.rpc import SyncHttpRpc

                with SyncHttpRpc(urls[tok.chain_id], timeout=5) as rpc:
                    info = fetch_token_info(rpc, tok.address)
                if info is not None:
                    cached[key] = {"symbol": info.symbol, "decimals": info.decimals}
                    asked = True
            if key in cached:
                tokens[int(tok)] = TokenInfo(symbol=cached[key]["symbol"], decimals=int(cached[key]["decimals"]))
        if asked and cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp")
            tmp.write_text(json.dumps(cached, indent=1, sort_keys=True))
            tmp.replace(cache)
    q = None
    if quote and q_tokens:
        q = QuoteCurrency(name="USD" if quote.upper() in USD_STABLES else quote, tokens=q_tokens, paths=q_paths,
                          native=q_native)
    return Registry(tokens=tokens, pools=pools, quote=q)
