"""Pool identities for replay: the built-in mainnet pools of our recordings, and ``--pool`` specs.

A ``PoolId`` carries chain, venue, kind, address and both tokens (not the fee:
that travels in ``PoolSnapshot.fee_ppm``), which is all the decoder needs.
"""

from __future__ import annotations

from protocol.ids import PoolId, Venue, VenueKind

USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"

#: Uniswap V3 USDC/WETH on Ethereum mainnet: fee 500 (tick spacing 10) and fee 3000 (spacing 60).
USDC_WETH_500 = PoolId.of(
    1, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640", USDC, WETH
)
USDC_WETH_3000 = PoolId.of(
    1, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, "0x8ad599c3a0ff1de082011efddc58f1908eb6e6d8", USDC, WETH
)
MAINNET_USDC_WETH_V3 = (USDC_WETH_500, USDC_WETH_3000)

#: Pools known without configuration, by chain id.
KNOWN_POOLS: dict[int, tuple[PoolId, ...]] = {1: MAINNET_USDC_WETH_V3}


def parse_pool_spec(spec: str, chain_id: int) -> PoolId:
    """``ADDRESS:VENUE:KIND:TOKEN_A:TOKEN_B`` -> PoolId.

    VENUE and KIND are ``protocol.ids`` enum names (any case) or integers, e.g.
    ``0xabc...:uniswap_v2:uniswap_v2:0xaaa...:0xbbb...``.
    """
    parts = spec.split(":")
    if len(parts) != 5:
        raise ValueError(f"pool spec {spec!r}: expected ADDRESS:VENUE:KIND:TOKEN_A:TOKEN_B")
    address, venue, kind, token_a, token_b = parts
    return PoolId.of(chain_id, _enum(Venue, venue), _enum(VenueKind, kind), address, token_a, token_b)


def _enum(enum: type[Venue] | type[VenueKind], text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return int(enum[text.upper()])
    except KeyError:
        names = ", ".join(m.name.lower() for m in enum)
        raise ValueError(f"unknown {enum.__name__} {text!r} (one of {names}, or an integer)") from None
