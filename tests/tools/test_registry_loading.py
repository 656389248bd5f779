"""tools.registry: the token and pool registry from deployment files, component configs and the chain
(symbol()/decimals() by eth_call, cached)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import eth_abi
import httpx
import pytest
from eth_utils import to_checksum_address

import tools.registry as registry
from chain.deployment import ChainDeployment, Pool, Token, V3Venue, save_deployment
from chain.rpc import SyncHttpRpc
from market.display import TokenInfo
from protocol.ids import PoolId, TokenId, Venue, VenueKind
from tools.deployment_writer import write_toml


def _addr(n: int) -> str:
    return to_checksum_address(f"0x{n:040x}")


WETH = Token(symbol="WETH", name="Wrapped Ether", address=_addr(0xA1), decimals=18)
USDC = Token(symbol="USDC", name="USD Coin", address=_addr(0xA2), decimals=6)


def _chain() -> ChainDeployment:
    v3 = V3Venue(name="uniswap_v3", factory=_addr(0xF3), position_manager=_addr(0xF4), swap_router=_addr(0xF5),
                 quoter_v2=_addr(0xF6), init_code_hash="0x" + "00" * 32)
    pool = Pool(address=_addr(0x55), venue=v3.name, kind="v3", token0=WETH.address, token1=USDC.address, fee=500,
                tick_spacing=10, symbol0="WETH", symbol1="USDC")
    return ChainDeployment(chain_id=31337, rpc_url="http://127.0.0.1:8545", ws_url="ws://127.0.0.1:8545",
                           deployer=_addr(0xD0), accounts=(_addr(0xD0),), tokens=(WETH, USDC), weth=WETH.address,
                           v2=(), v3=v3, pools=(pool,), deploy_block=1)


def test_from_a_deployment_file_and_a_config_naming_it(tmp_path: Path) -> None:
    dep = _chain()
    path = save_deployment(tmp_path / "deployment.json", [dep])
    reg = registry.load_registry([path], cache=None)
    assert reg.amount(15 * 10**17, int(TokenId.of(dep.chain_id, WETH.address))) == "1.500000 WETH"
    v3 = next(p for p in dep.pools if p.kind == "v3")
    pid = PoolId.of(dep.chain_id, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, v3.address, v3.token0, v3.token1)
    assert reg.pool_label(pid) == "WETH/USDC 0.05% V3 (uniswap_v3)"
    cfg = write_toml(tmp_path / "collector.toml", {"chain": [{"name": "devnet", "deployment": path}]})
    assert registry.load_registry([], configs=[cfg], cache=None).tokens == reg.tokens
    assert int(TokenId.of(dep.chain_id, USDC.address)) in reg.tokens


def test_unknown_tokens_are_asked_of_the_chain_once_and_cached(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    dep = _chain()
    path = save_deployment(tmp_path / "deployment.json", [dep])
    dai = TokenId.of(dep.chain_id, "0x" + "da" * 20)
    asked: list[str] = []

    def fake_fetch(rpc: Any, address: str) -> TokenInfo:
        asked.append(address)
        return TokenInfo(symbol="DAI", decimals=18)

    monkeypatch.setattr(registry, "fetch_token_info", fake_fetch)
    cache = tmp_path / "cache" / "tokens.json"
    reg = registry.load_registry([path], tokens_on_chain=[int(dai)], cache=cache)
    assert reg.amount(10**18, int(dai)) == "1.000000 DAI" and len(asked) == 1
    assert json.loads(cache.read_text()) == {f"{dep.chain_id}:{dai.address.lower()}": {"symbol": "DAI", "decimals": 18}}
    again = registry.load_registry([path], tokens_on_chain=[int(dai)], cache=cache)
    assert again.amount(10**18, int(dai)) == "1.000000 DAI" and len(asked) == 1  # from the cache


def test_fetch_token_info_reads_string_and_bytes32_symbols() -> None:
    replies = {"decimals()": eth_abi.encode(["uint8"], [6]), "symbol()": eth_abi.encode(["string"], ["USDC"])}

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        data = bytes.fromhex(body["params"][0]["data"][2:])
        from chain.abi import selector

        sig = next(s for s in replies if selector(s) == data[:4])
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": "0x" + replies[sig].hex()})

    with SyncHttpRpc("http://127.0.0.1:1", transport=httpx.MockTransport(handler)) as rpc:
        assert registry.fetch_token_info(rpc, "0x" + "11" * 20) == TokenInfo(symbol="USDC", decimals=6)
        replies["symbol()"] = b"MKR".ljust(32, b"\0")  # an old token: bytes32
        assert registry.fetch_token_info(rpc, "0x" + "11" * 20) == TokenInfo(symbol="MKR", decimals=6)


DAI = Token(symbol="DAI", name="Dai", address=_addr(0xA3), decimals=18)


def test_the_quote_currency_picks_the_main_usdc_pool_and_converts_exactly(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from chain.deployment import V2Venue
    from market.prices import convert_q96

    base = _chain()
    v2 = V2Venue(name="uniswap_v2_a", factory=_addr(0xE1), router=_addr(0xE2), init_code_hash="0x" + "00" * 32)

    def pool(n: int, venue: str, kind: str, a: Token, b: Token, fee: int) -> Pool:
        t0, t1 = sorted((a, b), key=lambda t: t.address.lower())
        return Pool(address=_addr(n), venue=venue, kind=kind, token0=t0.address, token1=t1.address, fee=fee,
                    tick_spacing=60 if kind == "v3" else None, symbol0=t0.symbol, symbol1=t1.symbol)

    dep = replace(base, tokens=(WETH, USDC, DAI), v2=(v2,), pools=(
        pool(0x61, "uniswap_v2_a", "v2", WETH, USDC, 3000),  # a V2 pool first in the file: not the main pool
        pool(0x62, "uniswap_v3", "v3", WETH, USDC, 3000),
        pool(0x63, "uniswap_v3", "v3", WETH, USDC, 500),  # V3, lowest fee: the main WETH/USDC pool
        pool(0x64, "uniswap_v2_a", "v2", DAI, WETH, 3000),  # DAI has no USDC pool: through WETH
    ))
    path = save_deployment(tmp_path / "deployment.json", [dep])
    monkeypatch.delenv("ALPHAPULSE_QUOTE", raising=False)
    reg = registry.load_registry([path], cache=None)
    weth, usdc, dai = (int(TokenId.of(dep.chain_id, t.address)) for t in (WETH, USDC, DAI))
    assert reg.quote is not None and reg.quote.name == "USD" and reg.quote_token(weth) == usdc
    main = PoolId.of(dep.chain_id, Venue.DEVNET_V3, VenueKind.UNISWAP_V3, _addr(0x63), WETH.address, USDC.address)
    dai_weth = PoolId.of(dep.chain_id, Venue.DEVNET_V2_A, VenueKind.UNISWAP_V2, _addr(0x64), DAI.address, WETH.address)
    assert reg.quote_pools(weth) == (int(main),) and reg.quote_pools(dai) == (int(dai_weth), int(main))
    assert reg.quote_pools(usdc) == () and reg.quote_pools(dep.chain_id << 160) == (int(main),)  # gas: as WETH
    # prices as the collectors publish them (token1 per token0, Q64.96): 2,000 USDC per WETH, 2,000 DAI per WETH
    weth_is_0 = main.token0 == weth
    p_main = (((2000 * 10**6) << 96) // 10**18) if weth_is_0 else ((10**18 << 96) // (2000 * 10**6))
    p_dai = (10**18 << 96) // (2000 * 10**18) if dai_weth.token0 == weth else ((2000 * 10**18) << 96) // 10**18
    prices = {int(main): p_main, int(dai_weth): p_dai}
    one_weth = reg.to_quote(10**18, weth, prices.get)
    assert one_weth == convert_q96(10**18, p_main, weth_is_0) and reg.quote_text(one_weth, weth).endswith(" USD")
    assert reg.in_quote(10**18, weth, prices.get) in ("2,000.00 USD", "1,999.99 USD")
    hop = convert_q96(4000 * 10**18, p_dai, dai_weth.token0 == dai)  # DAI -> WETH, then WETH -> USDC
    assert reg.to_quote(4000 * 10**18, dai, prices.get) == convert_q96(hop, p_main, weth_is_0)
    assert reg.to_quote(10**18, weth, {}.get) is None  # no price seen: no value, never a guess
    assert reg.to_quote(5, usdc, {}.get) == 5
    # configurable: another token, or none at all
    assert registry.load_registry([path], cache=None, quote="DAI").quote.name == "USD"  # type: ignore[union-attr]
    assert registry.load_registry([path], cache=None, quote="WETH").quote.name == "WETH"  # type: ignore[union-attr]
    assert registry.load_registry([path], cache=None, quote=None).quote is None
    monkeypatch.setenv("ALPHAPULSE_QUOTE", "none")
    assert registry.load_registry([path], cache=None).quote is None
