"""The domain hop: direction, tokens, and the round trip through the signal bus's Hop record."""

from __future__ import annotations

from market_builders import DAI, WETH, token, v2_pool, v3_pool

import protocol as P
from market.path import Hop, address_bytes

WD = v2_pool(1, WETH, DAI)  # DAI is token0
W3 = v3_pool(2, WETH, DAI)


def test_direction_decides_the_tokens() -> None:
    assert (Hop(WD, True).token_in, Hop(WD, True).token_out) == (token(DAI), token(WETH))
    assert (Hop(WD, False).token_in, Hop(WD, False).token_out) == (token(WETH), token(DAI))


def test_unpacks_like_a_pair() -> None:
    pool, zfo = Hop(W3, False)
    assert (pool, zfo) == (W3, False) and Hop(W3, False) == (W3, False)


def test_to_wire_and_back() -> None:
    wire = Hop(W3, False).to_wire(10**18, 2000 * 10**18)
    assert wire == P.Hop(pool=W3, venue_kind=int(P.VenueKind.UNISWAP_V3), token_in=bytes.fromhex(WETH[2:]),
                         token_out=bytes.fromhex(DAI[2:]), amount_in=10**18, amount_out=2000 * 10**18)
    assert Hop.from_wire(wire) == Hop(W3, False)
    assert Hop.from_wire(Hop(WD, True).to_wire(1, 2)) == Hop(WD, True)


def test_address_bytes_drops_the_chain() -> None:
    assert address_bytes(token(WETH)) == bytes.fromhex(WETH[2:])
