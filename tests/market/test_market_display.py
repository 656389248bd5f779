"""market.display: amounts with symbols and decimals, prices as quote per base, pool labels -- from exact
integers, with integer arithmetic only."""

from __future__ import annotations

import math

import pytest

from market.display import PoolInfo, Registry, TokenInfo, fmt_ratio, fmt_units
from protocol.ids import PoolId, TokenId, Venue, VenueKind

WETH_ADDR = "0x" + "0a" * 20  # sorts before USDC: WETH is token0, as on the devnet
USDC_ADDR = "0x" + "e7" * 20
WETH, USDC = TokenId.of(31337, WETH_ADDR), TokenId.of(31337, USDC_ADDR)
POOL_ADDR = "0x" + "55" * 20
POOL = PoolId.of(31337, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, POOL_ADDR, WETH_ADDR, USDC_ADDR)
REG = Registry(tokens={int(WETH): TokenInfo(symbol="WETH", decimals=18), int(USDC): TokenInfo(symbol="USDC", decimals=6)},
               pools={(31337, POOL_ADDR): PoolInfo(venue="uniswap_v3", fee_pips=500)})


def test_fmt_units_truncates_toward_zero_with_separators() -> None:
    assert fmt_units(1_234_567_891, 6) == "1,234.567891"
    assert fmt_units(-1_234_567_891, 6, 2) == "-1,234.56"
    assert fmt_units(97_500_000_000_000_000, 18) == "0.097500"
    assert fmt_units(5, 0) == "5"
    assert fmt_ratio(2, 3) == "0.6667" and fmt_ratio(2004, 1) == "2,004.00" and fmt_ratio(1, 2_004_000) == "0.0000004990"


def test_amounts_name_their_token() -> None:
    assert REG.amount(2_004_000_000, int(USDC)) == "2,004.000000 USDC"
    assert REG.amount(10**16, int(WETH), 4) == "0.0100 WETH"
    other = TokenId.of(31337, "0x" + "12" * 19 + "34")
    assert REG.amount(7, int(other)) == "7 base units of 0x1212…1234"


def test_price_is_quote_per_base_whichever_way_the_pool_sorts() -> None:
    # 2004 USDC per WETH: token1 (USDC, 6 decimals) per token0 (WETH, 18 decimals) in base units
    sqrt = math.isqrt(2004 * 10**6 * 2**192 // 10**18)
    assert REG.price_sqrt_x96(POOL, sqrt) == "2,004.00 USDC per WETH"
    # a USDC whose address sorts first: token0 = USDC, the raw price is WETH per USDC, still shown as USDC per WETH
    usdc_low = TokenId.of(31337, "0x" + "01" * 20)
    reg = Registry(tokens={**REG.tokens, int(usdc_low): TokenInfo(symbol="USDC", decimals=6)}, pools=REG.pools)
    flipped = PoolId.of(31337, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, POOL_ADDR, usdc_low.address, WETH_ADDR)
    assert flipped.token0 == usdc_low
    assert reg.price(flipped, 10**18, 2004 * 10**6) == "2,004.00 USDC per WETH"
    assert REG.pool_label(POOL) == "WETH/USDC 0.05% V3 (uniswap_v3)"
    assert reg.pool_label(flipped) == "WETH/USDC 0.05% V3 (uniswap_v3)"
    v2 = PoolId.of(31337, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, "0x" + "66" * 20, WETH_ADDR, USDC_ADDR)
    assert REG.pool_label(v2) == "WETH/USDC V2 (0x6666…6666)"  # not in the registry: its address


def test_registry_output_is_text_only() -> None:
    with pytest.raises(ValueError):
        fmt_ratio(1, 0)
