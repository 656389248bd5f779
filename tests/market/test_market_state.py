"""Pool state manager: application of every record kind, dedupe, staleness, immutability."""

from __future__ import annotations

import dataclasses

import pytest
from market_builders import (
    DAI,
    WETH,
    header,
    params,
    sync,
    token,
    v2_pool,
    v2_snapshot,
    v3_pool,
    v3_snapshot,
)

import protocol as P
from market.amm.tick_math import get_sqrt_ratio_at_tick
from market.amm.uniswap_v3 import apply_liquidity_change, swap_exact_input
from market.pools import V2Pool, V3Pool
from market.state import PoolStateManager

V2A = v2_pool(1, WETH, DAI)
V3A = v3_pool(2, WETH, DAI)
L = 10**21


def manager() -> PoolStateManager:
    return PoolStateManager(params())


def v3_manager() -> PoolStateManager:
    m = manager()
    m.apply(v3_snapshot(V3A, tick=0, liquidity=L, ticks={-600: L, 600: -L}, balances=(10**21, 10**21)))
    return m


def test_v2_snapshot_then_sync_derives_new_immutable_snapshots() -> None:
    m = manager()
    assert m.apply(v2_snapshot(V2A, 1000, 2000, block=100)) == V2A
    first = m.get(V2A)
    assert isinstance(first, V2Pool) and (first.reserve0, first.reserve1, first.block_number) == (1000, 2000, 100)
    assert m.apply(sync(V2A, 1100, 1900, block=101, log_index=3)) == V2A
    second = m.get(V2A)
    assert (second.reserve0, second.reserve1, second.block_number, second.last_event) == (1100, 1900, 101, (101, 3))
    assert (first.reserve0, first.reserve1) == (1000, 2000)  # the old snapshot did not change
    with pytest.raises(dataclasses.FrozenInstanceError):
        second.reserve0 = 5  # type: ignore[misc]


def test_sync_for_unknown_pair_creates_it_with_the_venue_fee() -> None:
    m = manager()
    assert m.apply(sync(V2A, 10, 20)) == V2A
    assert m.get(V2A).fee_ppm == 3000


def test_duplicate_and_replayed_events_are_applied_once() -> None:
    m = manager()
    m.apply(v2_snapshot(V2A, 1000, 2000, block=100))
    assert m.apply(sync(V2A, 1100, 1900, block=101, log_index=3)) == V2A
    assert m.apply(sync(V2A, 9999, 9999, block=101, log_index=3)) is None  # the same event again
    assert m.apply(sync(V2A, 9999, 9999, block=101, log_index=2)) is None  # an older one
    assert m.apply(sync(V2A, 9999, 9999, block=100, log_index=50)) is None  # covered by the snapshot
    assert m.get(V2A).reserve0 == 1100
    assert m.stats["duplicate_event"] == 3


def test_v3_swap_takes_price_tick_and_liquidity_from_the_event() -> None:
    m = v3_manager()
    before = m.get(V3A)
    r = swap_exact_input(before.v3, True, 10**18)
    ev = P.V3Swap(pool=V3A, block_number=101, log_index=0, tx_hash=bytes(32), amount0=r.amount_in,
                  amount1=-r.amount_out, sqrt_price_x96=r.sqrt_price_x96, liquidity=r.liquidity, tick=r.tick)
    assert m.apply(ev) == V3A
    after = m.get(V3A)
    assert (after.v3.sqrt_price_x96, after.v3.tick, after.v3.liquidity) == (r.sqrt_price_x96, r.tick, r.liquidity)
    assert after.balance0 == 10**21 + r.amount_in and after.balance1 == 10**21 - r.amount_out
    assert after.block_number == 101 and dict(after.v3.ticks) == dict(before.v3.ticks)
    assert m.apply(ev) is None  # replay


def test_v3_mint_and_burn_adjust_ticks_and_in_range_liquidity() -> None:
    m = v3_manager()
    mint = P.LiquidityChange(pool=V3A, block_number=101, log_index=1, tx_hash=bytes(32), kind=P.LiquidityKind.MINT,
                             tick_lower=-120, tick_upper=180, liquidity=5 * 10**20, amount0=7, amount1=9,
                             owner=bytes(20))
    assert m.apply(mint) == V3A
    s = m.get(V3A)
    expected = apply_liquidity_change(v3_manager().get(V3A).v3, -120, 180, 5 * 10**20)
    assert s.v3.liquidity == L + 5 * 10**20 == expected.liquidity
    assert dict(s.v3.ticks) == dict(expected.ticks) == {-600: L, -120: 5 * 10**20, 180: -5 * 10**20, 600: -L}
    assert (s.balance0, s.balance1) == (10**21 + 7, 10**21 + 9)
    burn = dataclasses.replace(mint, log_index=2, kind=P.LiquidityKind.BURN)
    assert m.apply(burn) == V3A
    assert m.get(V3A).v3.liquidity == L and dict(m.get(V3A).v3.ticks) == {-600: L, 600: -L}
    # out of range: ticks change, active liquidity does not
    far = dataclasses.replace(mint, log_index=3, tick_lower=1200, tick_upper=1800)
    m.apply(far)
    assert m.get(V3A).v3.liquidity == L and m.get(V3A).v3.ticks[1200] == 5 * 10**20


def test_rejected_liquidity_change_marks_the_pool_stale() -> None:
    m = v3_manager()
    bad = P.LiquidityChange(pool=V3A, block_number=101, log_index=1, tx_hash=bytes(32), kind=P.LiquidityKind.BURN,
                            tick_lower=-60, tick_upper=60, liquidity=10**30, amount0=0, amount1=0, owner=bytes(20))
    assert m.apply(bad) is None
    assert m.is_stale(V3A) and m.tradable(V3A) is None


def test_v3_initialize_after_an_uninitialized_snapshot() -> None:
    m = manager()
    snap = v3_snapshot(V3A, tick=0, liquidity=0, ticks={}, sqrt_price_x96=0)
    assert m.apply(snap) is None  # known, not tradable
    assert isinstance(m.get(V3A), V3Pool) and m.get(V3A).v3 is None
    init = P.V3Initialize(pool=V3A, block_number=101, log_index=0, sqrt_price_x96=get_sqrt_ratio_at_tick(60), tick=60)
    assert m.apply(init) is None  # initialized, but no liquidity yet
    assert m.get(V3A).v3.tick == 60
    mint = P.LiquidityChange(pool=V3A, block_number=101, log_index=1, tx_hash=bytes(32), kind=P.LiquidityKind.MINT,
                             tick_lower=0, tick_upper=120, liquidity=10**18, amount0=1, amount1=1, owner=bytes(20))
    assert m.apply(mint) == V3A and m.tradable(V3A) is not None


def test_invalidation_per_pool_until_a_snapshot() -> None:
    m = v3_manager()
    m.apply(v2_snapshot(V2A, 1000, 2000))
    m.apply(P.StateInvalidation(chain_id=1, pool=V3A, from_block=101, reason=P.InvalidationReason.REORG, detail=""))
    assert m.tradable(V3A) is None and m.tradable(V2A) is not None
    # a V3 event alone does not make it trustworthy again
    s = m.get(V3A).v3
    ev = P.V3Swap(pool=V3A, block_number=101, log_index=0, tx_hash=bytes(32), amount0=0, amount1=0,
                  sqrt_price_x96=s.sqrt_price_x96, liquidity=s.liquidity, tick=s.tick)
    assert m.apply(ev) is None and m.tradable(V3A) is None
    assert m.apply(v3_snapshot(V3A, tick=0, liquidity=L, ticks={-600: L, 600: -L}, block=102)) == V3A
    assert m.tradable(V3A) is not None


def test_whole_chain_invalidation_and_reorg_rolls_back_the_dedupe_mark() -> None:
    m = manager()
    other_chain = v2_pool(9, WETH, DAI, chain=10)
    m.apply(v2_snapshot(V2A, 1000, 2000, block=100))
    m.apply(sync(V2A, 1100, 1900, block=105, log_index=4))
    m.apply(v2_snapshot(other_chain, 1000, 2000))
    m.apply(P.StateInvalidation(chain_id=1, pool=P.PoolId(0), from_block=104, reason=P.InvalidationReason.REORG,
                                detail="reorg"))
    assert m.tradable(V2A) is None and m.tradable(other_chain) is not None
    # the replacement chain's block 105 log 4 is not a duplicate of the orphaned one; a Sync is
    # the pair's whole state, so it also clears the staleness
    assert m.apply(sync(V2A, 1050, 1950, block=105, log_index=4)) == V2A
    assert m.get(V2A).reserve0 == 1050 and m.tradable(V2A) is not None


def test_older_snapshot_does_not_roll_back_trusted_state() -> None:
    m = manager()
    m.apply(v2_snapshot(V2A, 1000, 2000, block=100))
    m.apply(sync(V2A, 1100, 1900, block=101))
    assert m.apply(v2_snapshot(V2A, 1, 1, block=99)) is None
    assert m.get(V2A).reserve0 == 1100


def test_block_header_gas_prices_per_chain() -> None:
    m = manager()
    m.apply(header(base_fee=30, priority_fee=2, number=7))
    m.apply(header(base_fee=5, priority_fee=1, number=3, chain=10))
    assert m.gas[1].total == 32 and m.gas[1].block_number == 7 and m.gas[10].total == 6


def test_tradable_pools_of_pair() -> None:
    m = manager()
    other = v2_pool(3, WETH, DAI, venue=P.Venue.SUSHISWAP)
    m.apply(v2_snapshot(V2A, 1000, 2000))
    m.apply(v2_snapshot(other, 0, 0))  # empty: not tradable
    assert [s.pool for s in m.tradable_pools_of_pair(token(WETH), token(DAI))] == [V2A]
    assert m.tradable_pools_of_pair(token(DAI), token(DAI)) == []


def test_curve_snapshot_needs_its_configured_parameters() -> None:
    from market.params import CurveParams
    from market.pools import CurvePool
    from protocol.ids import address_to_int

    addr = "0x" + "cc" * 20
    curve = P.PoolId.of(1, P.Venue.CURVE, P.VenueKind.CURVE, addr, DAI, WETH)
    snap = v2_snapshot(curve, 10**24, 10**24, fee_ppm=400)
    bare = PoolStateManager(params())
    assert bare.apply(snap) is None and bare.stats["curve_pool_not_configured"] == 1
    m = PoolStateManager(params(curve_pools=(
        CurveParams(chain_id=1, address=address_to_int(addr), amp=100, rates=(10**18, 10**18)),)))
    assert m.apply(snap) == curve
    s = m.get(curve)
    assert isinstance(s, CurvePool) and s.fee == 4_000_000 and s.amp == 100
    assert 0 < s.amount_out(True, 10**18) < 10**18


def test_sync_for_unknown_pair_takes_the_configured_venue_fee() -> None:
    from market.params import ChainParams, MarketParams

    sushi = v2_pool(3, WETH, DAI, venue=P.Venue.SUSHISWAP)
    m = PoolStateManager(MarketParams(chains=(
        ChainParams(chain_id=1, gas_token=token(WETH), v2_fee_ppm={int(P.Venue.SUSHISWAP): 2500}),)))
    assert m.apply(sync(sushi, 10, 20)) == sushi and m.get(sushi).fee_ppm == 2500
    assert m.apply(sync(V2A, 10, 20)) == V2A and m.get(V2A).fee_ppm == 3000


# --- Uniswap V4 ----------------------------------------------------------------------------------


def test_v4_snapshot_unit_swap_liquidity_and_protocol_fee() -> None:
    from market_builders import v4_pool, v4_snapshot

    from market.amm import uniswap_v4 as uv4
    from market.pools import V4Pool

    pool = v4_pool(9, WETH, DAI)
    m = manager()
    fee, snap = v4_snapshot(pool, tick=0, liquidity=L, ticks={-600: L, 600: -L}, lp_fee=500,
                            protocol_fee=(100 << 12) | 250)
    assert m.apply(fee) is None and m.apply(snap) == pool  # the unit's fee first, then the snapshot
    s = m.get(pool)
    assert isinstance(s, V4Pool) and s.v4 is not None
    assert (s.lp_fee, s.protocol_fee, s.v4.protocol_fee, s.tick_spacing) == (500, (100 << 12) | 250, (100 << 12) | 250, 60)
    assert s.balance_in(True) > 10**50  # no per-pool balance bounds a V4 flash input
    # a swap: the exact V4 result, published from the pool's side like V3's
    r = uv4.swap_exact_input(s.v4, True, 10**18)
    ev = P.V3Swap(pool=pool, block_number=101, log_index=1, tx_hash=bytes(32), amount0=-r.amount0, amount1=-r.amount1,
                  sqrt_price_x96=r.sqrt_price_x96, liquidity=r.liquidity, tick=r.tick)
    assert m.apply(ev) == pool
    after = m.get(pool)
    assert (after.v4.sqrt_price_x96, after.v4.tick, after.v4.protocol_fee) == (r.sqrt_price_x96, r.tick, s.protocol_fee)
    assert m.apply(ev) is None and m.stats["duplicate_event"] == 1
    # a position: V4's tick bookkeeping
    add = P.LiquidityChange(pool=pool, block_number=101, log_index=2, tx_hash=bytes(32), kind=P.LiquidityKind.MINT,
                            tick_lower=-1200, tick_upper=1200, liquidity=L, amount0=0, amount1=0, owner=bytes(20))
    assert m.apply(add) == pool
    assert m.get(pool).v4 == uv4.apply_liquidity_change(after.v4, -1200, 1200, L)
    # ProtocolFeeUpdated changes the fee every later swap runs at
    assert m.apply(P.V4ProtocolFee(pool=pool, block_number=102, log_index=0, protocol_fee=0)) == pool
    assert m.get(pool).v4.swap_fee(True) == 500 and m.get(pool).protocol_fee == 0
    # an invalid protocol fee (a half above 1000 pips) is a diverged view: the pool goes stale
    assert m.apply(P.V4ProtocolFee(pool=pool, block_number=103, log_index=0, protocol_fee=1001)) is None
    assert m.is_stale(pool) and m.stats["protocol_fee_rejected"] == 1


def test_v4_uninitialized_pool_takes_its_initialize_and_fee_survives_invalidation() -> None:
    from market_builders import v4_pool

    from market.pools import V4Pool

    pool = v4_pool(10, WETH, DAI)
    m = manager()
    m.apply(P.V4ProtocolFee(pool=pool, block_number=100, log_index=0xFFFFFFFF, protocol_fee=7))
    m.apply(P.PoolSnapshot(pool=pool, block_number=100, fee_ppm=100, tick_spacing=1, reserve0=0, reserve1=0,
                           sqrt_price_x96=0, tick=0, liquidity=0, ticks=()))
    s = m.get(pool)
    assert isinstance(s, V4Pool) and s.v4 is None and not s.tradable and s.protocol_fee == 7
    assert m.apply(P.V3Initialize(pool=pool, block_number=101, log_index=0, sqrt_price_x96=get_sqrt_ratio_at_tick(5),
                                  tick=5)) is None  # initialized but no liquidity yet: not tradable
    s = m.get(pool)
    assert s.v4 is not None and (s.v4.tick, s.v4.lp_fee, s.v4.protocol_fee) == (5, 100, 7)
    # a disconnect: events still apply to the stale pool (the backfill brings every one), a fee change too
    m.apply(P.StateInvalidation(chain_id=1, pool=pool, from_block=102, reason=P.InvalidationReason.DISCONNECT,
                                detail=""))
    m.apply(P.V4ProtocolFee(pool=pool, block_number=102, log_index=3, protocol_fee=9))
    assert m.get(pool).v4.protocol_fee == 9 and m.is_stale(pool)
