"""Cycle index: which cycles exist, how they are anchored and directed, and that an update
re-evaluates only the cycles through the updated pool."""

from __future__ import annotations

import random

from market_builders import DAI, TKA, TKB, USDC, WETH, config, md, token, v2_pool, v2_snapshot

import protocol as P
from strategy.engine import StrategyEngine
from strategy.graph import CycleIndex

WD1 = v2_pool(1, WETH, DAI)
WD2 = v2_pool(2, WETH, DAI, venue=P.Venue.SUSHISWAP)
DU = v2_pool(3, DAI, USDC)
UW = v2_pool(4, USDC, WETH)
AB = v2_pool(5, TKA, TKB)
WA = v2_pool(6, WETH, TKA)
BU = v2_pool(7, TKB, USDC)


def index(bases=(WETH,), max_hops: int = 4, cap: int = 4096) -> CycleIndex:
    return CycleIndex(base_tokens={1: tuple(token(b) for b in bases)}, max_hops=max_hops, max_cycles_per_pool=cap)


def test_two_pool_and_triangular_cycles_in_both_directions() -> None:
    ix = index()
    assert ix.add_pool(WD1) == 0
    assert ix.add_pool(WD2) == 2  # the same pair on two venues: two directed 2-cycles
    assert ix.add_pool(DU) == 0
    assert ix.add_pool(UW) == 4  # two triangles (one per WETH/DAI pool), two directions each
    assert ix.cycle_count == 6
    two = [c for c in ix.cycles_through(WD1) if len(c) == 2]
    assert {c.pools for c in two} == {(WD1, WD2), (WD2, WD1)}
    for c in ix.all_cycles():
        assert c.tokens[0] == c.tokens[-1] == token(WETH)
        # hop i takes tokens[i] to tokens[i+1] through a pool holding both
        for (pool, zfo), t_in, t_out in zip(c.hops, c.tokens, c.tokens[1:]):
            assert (pool.token0, pool.token1) == ((t_in, t_out) if zfo else (t_out, t_in))
    tri = [c for c in ix.cycles_through(DU)]
    assert len(tri) == 4 and all(len(c) == 3 for c in tri)
    fwd = next(c for c in tri if c.pools == (WD1, DU, UW))
    back = next(c for c in tri if c.pools == (UW, DU, WD1))
    assert fwd.tokens == (token(WETH), token(DAI), token(USDC), token(WETH))
    assert back.tokens == tuple(reversed(fwd.tokens))


def test_cycle_index_touches_only_cycles_through_the_pool() -> None:
    ix = index()
    for p in (WD1, WD2, DU, UW, AB):
        ix.add_pool(p)
    assert list(ix.cycles_through(AB)) == []  # TKA/TKB closes no cycle through a base token
    assert all(DU in c.pools for c in ix.cycles_through(DU))
    assert not any(len(c) == 2 for c in ix.cycles_through(DU))
    before = ix.cycle_count
    ix.add_pool(WA)
    ix.add_pool(BU)  # closes WETH-TKA-TKB-USDC-WETH (4 hops) through AB
    assert ix.cycle_count == before + 2
    assert {len(c) for c in ix.cycles_through(AB)} == {4}
    assert all(AB in c.pools for c in ix.cycles_through(AB))


def test_max_hops_bounds_cycle_length() -> None:
    ix = index(max_hops=3)
    for p in (WA, AB, BU, UW):
        ix.add_pool(p)
    assert ix.cycle_count == 0
    ix4 = index(max_hops=4)
    for p in (WA, AB, BU, UW):
        ix4.add_pool(p)
    assert ix4.cycle_count == 2


def test_cycles_are_anchored_at_the_first_listed_base_token() -> None:
    ix = index(bases=(USDC, WETH))
    for p in (WD1, DU, UW):
        ix.add_pool(p)
    assert {c.tokens[0] for c in ix.all_cycles()} == {token(USDC)}
    unanchored = index(bases=(TKA,))
    for p in (WD1, DU, UW):
        unanchored.add_pool(p)
    assert unanchored.cycle_count == 0 and unanchored.unanchored == 2


def test_per_pool_cap_keeps_the_shortest_cycles() -> None:
    ix = index(cap=2)
    for p in (WD1, WD2, DU, UW):
        ix.add_pool(p)
    assert [len(c) for c in ix.cycles_through(WD1)] == [2, 2]
    assert ix.truncated == 4


def test_engine_update_evaluates_exactly_the_cycles_through_the_pool() -> None:
    engine = StrategyEngine(config())
    snaps = [v2_snapshot(p, 10**22, 10**22) for p in (WD1, WD2, DU, UW, AB, WA, BU)]
    engine.on_message(md(*snaps), 0)
    for pool in (DU, AB, WD2):
        before = engine.search.stats["cycles_considered"]
        engine.on_message(md(P.V2Reserves(pool=pool, block_number=200 + pool.venue, log_index=int(pool) & 0xFF,
                                          reserve0=10**22 + 1, reserve1=10**22)), 1)
        assert engine.search.stats["cycles_considered"] - before == len(engine.index.cycles_through(pool))


def test_vectorised_filter_never_drops_a_profitable_cycle() -> None:
    engine = StrategyEngine(config())
    rng = random.Random(3)
    pools = [v2_pool(100 + i, WETH, DAI, venue=1000 + i) for i in range(40)]
    snaps = [v2_snapshot(p, 2000 * 10**21 + rng.randrange(-4 * 10**22, 4 * 10**22), 10**21) for p in pools]
    engine.on_message(md(*snaps), 0)
    for pool in pools[:5]:
        every = engine.index.cycles_through(pool)
        kept = engine.index.candidates(pool)
        assert len(every) == 78 > len(kept)
        exact = [c for c in every if engine.search.evaluate(c) is not None]
        assert exact and {id(c) for c in exact} <= {id(c) for c in kept}
