"""chain.addresses: EIP-55 checksums, CREATE / CREATE2 and the Uniswap pool addresses, against known mainnet values."""

from __future__ import annotations

import pytest

from chain.addresses import (
    UNISWAP_V2_INIT_CODE_HASH,
    UNISWAP_V3_INIT_CODE_HASH,
    _checksum,
    checksum,
    create2_address,
    create_address,
    sort_tokens,
    v2_pair_address,
    v3_pool_address,
)

WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
V2_FACTORY = "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f"
V3_FACTORY = "0x1F98431c8aD98523631AE4a59f267346ea31F984"


def test_uniswap_mainnet_pools() -> None:
    # the USDC/WETH V2 pair and the 0.05 % / 0.3 % V3 pools (tests/data's two pools)
    assert v2_pair_address(V2_FACTORY, WETH, USDC) == "0xB4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc"
    assert v2_pair_address(V2_FACTORY, USDC.lower(), WETH) == "0xB4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc"
    assert v3_pool_address(V3_FACTORY, WETH, USDC, 500) == "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"
    assert v3_pool_address(V3_FACTORY, USDC, WETH, 3000) == "0x8ad599c3A0ff1De082011EFDDc58f1908eb6e6D8"
    assert len(UNISWAP_V2_INIT_CODE_HASH) == len(UNISWAP_V3_INIT_CODE_HASH) == 32


def test_create_and_create2() -> None:
    # anvil's first dev account deploying at nonce 0 (the devnet's first contract)
    assert create_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", 0) == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    # EIP-1014 example 1: deployer 0x0, salt 0, init code 0x00
    assert create2_address("0x" + "00" * 20, bytes(32), "0x" + "bc36789e7a1e281436464229828f817d6612f7b477d66591ff96a9e064bcc98a") \
        == "0x4D1A2e2bB4F88F0250f26Ffff098B0b30B26BF38"
    with pytest.raises(ValueError):
        create2_address("0x" + "00" * 20, b"\x00", UNISWAP_V2_INIT_CODE_HASH)
    with pytest.raises(ValueError):
        create2_address("0x" + "00" * 20, bytes(32), b"\x00" * 31)


def test_sort_tokens() -> None:
    assert sort_tokens(WETH, USDC) == (USDC, WETH)
    with pytest.raises(ValueError):
        sort_tokens(WETH, WETH.lower())


def test_checksum_is_eip55_for_every_spelling_and_remembered() -> None:
    raw = bytes.fromhex(WETH[2:])
    for spelling in (WETH.lower(), WETH.upper().replace("0X", "0x"), WETH, raw, bytearray(raw), memoryview(raw)):
        assert checksum(spelling) == WETH  # type: ignore[arg-type]
    before = _checksum.cache_info()
    assert checksum(WETH.lower()) == WETH
    assert _checksum.cache_info().hits == before.hits + 1  # no keccak the second time
    assert _checksum.cache_info().maxsize == 1 << 16  # bounded: a hostile stream of addresses cannot grow it


@pytest.mark.parametrize("bad", ["0x1234", "not an address", b"\x01" * 19, "0x" + "g" * 40])
def test_checksum_refuses_what_is_not_an_address(bad: str | bytes) -> None:
    with pytest.raises(ValueError):
        checksum(bad)
