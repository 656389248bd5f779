"""Market parameters: per-chain V2 fee defaults and lookups."""

from __future__ import annotations

import dataclasses

import pytest
from market_builders import WETH, token

import protocol as P
from market.params import DEFAULT_V2_FEE_PPM, ChainParams, MarketParams


def test_v2_fee_is_the_venue_setting_else_the_uniswap_default() -> None:
    chain = ChainParams(chain_id=1, gas_token=token(WETH), v2_fee_ppm={int(P.Venue.PANCAKESWAP_V2): 2500})
    params = MarketParams(chains=(chain,))
    assert params.chain(1) is chain and params.chain(2) is None
    assert params.v2_fee_for(1, P.Venue.PANCAKESWAP_V2) == 2500
    assert params.v2_fee_for(1, P.Venue.SUSHISWAP) == DEFAULT_V2_FEE_PPM == 3000
    assert params.v2_fee_for(2, P.Venue.PANCAKESWAP_V2) == 3000  # an unknown chain: the default


def test_frozen_and_keyword_only() -> None:
    with pytest.raises(TypeError):
        ChainParams(1, token(WETH))  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        MarketParams().chains = ()  # type: ignore[misc]
