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
