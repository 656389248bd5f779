"""Pool ids for people: the one pool formatter."""

from __future__ import annotations

from protocol.ids import PoolId, Venue, VenueKind, pool_label

A = "0x" + "a1" * 20
T0, T1 = "0x" + "0b" * 20, "0x" + "0c" * 20


def test_pool_label_names_chain_venue_and_address() -> None:
    pool = PoolId.of(1, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, A, T1, T0)
    assert pool_label(pool) == f"1:UNISWAP_V2:{A}"
    assert pool_label(int(pool)) == f"1:UNISWAP_V2:{A}"  # a bare int from a record field


def test_pool_label_of_an_unnamed_venue_uses_its_code() -> None:
    assert pool_label(PoolId.of(8453, 4242, VenueKind.UNISWAP_V3, A, T0, T1)) == f"8453:4242:{A}"


def test_short_pool_label_is_the_abbreviated_address() -> None:
    pool = PoolId.of(1, Venue.SUSHISWAP, VenueKind.UNISWAP_V2, "0x" + "22" * 20, T0, T1)
    assert pool_label(pool, short=True) == "0x2222…2222"


def test_code_name_is_the_enum_name_or_the_number() -> None:
    from protocol.ids import code_name

    assert code_name(Venue, 2) == "SUSHISWAP" and code_name(VenueKind, VenueKind.CURVE) == "CURVE"
    assert code_name(Venue, 4242) == "4242"  # a venue this reader does not know
