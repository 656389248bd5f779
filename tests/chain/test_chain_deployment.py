"""chain.deployment: the devnet deployment file (format, round trip, look-ups, atomic save)
without a chain; tests/tools/devnet checks a real deployment against anvil."""

from __future__ import annotations

import json
import os

import pytest
from eth_utils import to_checksum_address

from chain.addresses import (
    UNISWAP_V2_INIT_CODE_HASH,
    UNISWAP_V3_INIT_CODE_HASH,
    v2_pair_address,
    v3_pool_address,
)
from chain.deployment import (
    FORMAT,
    V2_FEE_PIPS,
    ChainDeployment,
    DeploymentFile,
    Pool,
    Token,
    V2Venue,
    V3Venue,
    load_chain,
    load_deployment,
    save_deployment,
)


def _addr(n: int) -> str:
    return to_checksum_address(f"0x{n:040x}")  # the file holds EIP-55 addresses


WETH = Token(symbol="WETH", name="Wrapped Ether", address=_addr(0xA1), decimals=18)
USDC = Token(symbol="USDC", name="USD Coin", address=_addr(0xA2), decimals=6)


def _chain(chain_id: int = 31337) -> ChainDeployment:
    v2 = V2Venue(name="uniswap_v2_a", factory=_addr(0xF1), router=_addr(0xF2),
                 init_code_hash="0x" + UNISWAP_V2_INIT_CODE_HASH.hex())
    v3 = V3Venue(name="uniswap_v3", factory=_addr(0xF3), position_manager=_addr(0xF4), swap_router=_addr(0xF5),
                 quoter_v2=_addr(0xF6), init_code_hash="0x" + UNISWAP_V3_INIT_CODE_HASH.hex())
    pools = (
        Pool(address=v2_pair_address(v2.factory, WETH.address, USDC.address), venue=v2.name, kind="v2",
             token0=WETH.address, token1=USDC.address, fee=V2_FEE_PIPS, symbol0="WETH", symbol1="USDC"),
        Pool(address=v3_pool_address(v3.factory, WETH.address, USDC.address, 500), venue=v3.name, kind="v3",
             token0=WETH.address, token1=USDC.address, fee=500, tick_spacing=10, symbol0="WETH", symbol1="USDC"),
    )
    return ChainDeployment(chain_id=chain_id, rpc_url="http://127.0.0.1:8545", ws_url="ws://127.0.0.1:8545",
                           deployer=_addr(0xD0), accounts=(_addr(0xD0), _addr(0xD1)), tokens=(WETH, USDC),
                           weth=WETH.address, v2=(v2,), v3=v3, pools=pools, deploy_block=73,
                           funded_accounts=(_addr(0xD1),), extra={"transactions": 73})


def test_round_trip_and_format(tmp_path) -> None:
    chains = [_chain(31337), _chain(31338)]
    path = save_deployment(tmp_path / "sub" / "deployment.json", chains, pids=[11, 12])
    raw = json.loads(path.read_text())
    assert raw["format"] == FORMAT and raw["pids"] == [11, 12] and raw["writer_pid"] == os.getpid()
    loaded = load_deployment(path)
    assert loaded.chains == tuple(chains) and loaded.pids == (11, 12)
    assert load_chain(path, 31338) == chains[1] and load_chain(path) == chains[0]
    assert not list(path.parent.glob("*.tmp"))  # written through a temp file and renamed
    with pytest.raises(ValueError, match="not an"):
        DeploymentFile.from_json(json.dumps({"format": "something-else/1", "chains": []}))
    with pytest.raises(KeyError, match="no chain 1"):
        loaded.chain(1)
    with pytest.raises(KeyError):
        DeploymentFile(chains=()).chain()


def test_look_ups() -> None:
    d = _chain()
    assert d.token("usdc") == USDC and d.address_of(WETH.address.upper().replace("0X", "0x")) == WETH.address
    assert d.pool("uniswap_v2_a", "USDC", "WETH").kind == "v2"
    assert d.pool("uniswap_v3", "WETH", "USDC", 500).label == "uniswap_v3:WETH/USDC@0.05%"
    assert d.pools[0].label == "uniswap_v2_a:WETH/USDC@0.3%"
    with pytest.raises(KeyError, match="give fee="):
        d.pool("uniswap_v3", "WETH", "USDC")
    with pytest.raises(KeyError):
        d.token("DAI")
    assert d.v2_venue("uniswap_v2_a").router == _addr(0xF2)
    assert [p.kind for p in d.pools_of(kind="v3")] == ["v3"] and d.pools_of(venue="nope") == ()


def test_v4_venue_and_pools_round_trip_and_look_up(tmp_path) -> None:
    import dataclasses

    from chain.deployment import V4Pool, V4Venue

    hook = _addr(0xC0DE00C0)
    v4_pools = (
        V4Pool(pool_id="0x" + "ab" * 32, venue="uniswap_v4", token0=WETH.address, token1=USDC.address, fee=3000,
               tick_spacing=60, hooks=_addr(0), symbol0="WETH", symbol1="USDC"),
        V4Pool(pool_id="0x" + "cd" * 32, venue="uniswap_v4", token0=WETH.address, token1=USDC.address, fee=3000,
               tick_spacing=60, hooks=hook, symbol0="WETH", symbol1="USDC", hook_name="counter"),
    )
    chain = dataclasses.replace(_chain(), v4=V4Venue(name="uniswap_v4", pool_manager=_addr(0xE1),
                                                     router=_addr(0xE2)), v4_pools=v4_pools)
    loaded = load_chain(save_deployment(tmp_path / "d.json", [chain]))
    assert loaded == chain
    assert loaded.v4_pool("USDC", "WETH", 3000) is loaded.v4_pools[0]
    assert loaded.v4_pool("WETH", "USDC", 3000, hook="counter").hooks == hook
    assert v4_pools[1].key == (WETH.address, USDC.address, 3000, 60, hook)
    assert v4_pools[1].label == "uniswap_v4:WETH/USDC@0.3%+counter"
    with pytest.raises(KeyError):
        loaded.v4_pool("WETH", "USDC", 500)
    # a file written before V4 existed still loads
    old = json.loads(DeploymentFile(chains=(_chain(),)).to_json())
    for c in old["chains"]:
        del c["v4"], c["v4_pools"]
    assert DeploymentFile.from_json(json.dumps(old)).chain().v4 is None
