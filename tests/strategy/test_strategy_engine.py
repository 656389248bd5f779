"""The sans-IO engine end to end: messages in, signal messages out; staleness never trades."""

from __future__ import annotations

import dataclasses

import msgspec
from market_builders import (
    DAI,
    GWEI,
    USDC,
    WETH,
    config,
    header,
    md,
    sync,
    v2_pool,
    v2_snapshot,
    v3_pool,
    v3_snapshot,
)

import protocol as P
from market.amm.uniswap_v3 import swap_exact_input
from strategy.engine import StrategyEngine

WD1 = v2_pool(1, WETH, DAI)
WD2 = v2_pool(2, WETH, DAI, venue=P.Venue.SUSHISWAP)
W3 = v3_pool(3, WETH, DAI)
DU = v2_pool(4, DAI, USDC)
UW = v2_pool(5, USDC, WETH)
SNAP1 = v2_snapshot(WD1, 2000 * 10**22, 10**22)
SNAP2 = v2_snapshot(WD2, 2100 * 10**21, 10**21)
FULL_RANGE = {-887220: 10**22, 887220: -(10**22)}


def engine(**kw) -> StrategyEngine:
    e = StrategyEngine(config(**kw))
    e.on_message(md(header(base_fee=20 * GWEI, priority_fee=GWEI)), 0)
    return e


def test_signal_message_shape() -> None:
    e = engine()
    msg = md(SNAP1, SNAP2, seq=42, t=5_000)
    [sig] = e.on_message(msg, now_ns=9_000)
    assert sig.domain == P.Domain.SIGNAL and sig.source_id == e.config.source_id and sig.source_seq == 1
    assert (sig.event_time_ns, sig.receive_time_ns) == (5_000, 9_000)
    assert [type(t) for t in sig.tlvs] == [P.SignalIdentity, P.Economics, P.ArbitragePath, P.TraceContext,
                                           P.DecisionPoint, P.FlashLoan]
    ident, econ, path, trace, point, flash = sig.tlvs
    assert flash.source == P.FlashSource.POOL  # a V2 pair lends (no Balancer Vault configured)
    assert (point.block_number, point.log_index) == (100, 0xFFFFFFFF)  # snapshots: the whole block
    assert ident.kind == P.SignalKind.TWO_POOL and ident.block_number == 100 and ident.chain_id == 1
    assert ident.strategy == e.config.name and ident.signal_id == 1
    # buy WETH cheap on WD1 (2000 DAI), sell it dear on WD2 (2100 DAI): start in WETH on WD2
    assert [h.pool for h in path.hops] == [WD2, WD1]
    assert path.hops[0].amount_out == path.hops[1].amount_in
    assert path.hops[1].amount_out - path.hops[0].amount_in == econ.gross_profit > 0
    assert all(h.venue_kind == P.VenueKind.UNISWAP_V2 for h in path.hops)
    assert trace.trace_id == (7 << 64) | 42 and trace.origin_ns == 5_001 and trace.span_id == ident.signal_id
    assert P.decode(P.encode(sig)) == sig


def test_trace_context_is_continued() -> None:
    e = engine()
    upstream = P.TraceContext(trace_id=123, span_id=456, flags=1, parent_span_id=0, origin_ns=77)
    [sig] = e.on_message(md(SNAP1, SNAP2, upstream), 1)
    trace = sig.find(P.TraceContext)
    assert (trace.trace_id, trace.parent_span_id, trace.origin_ns) == (123, 456, 77)


def test_v2_v3_cross_venue_two_pool() -> None:
    e = engine()
    # V3 DAI/WETH (DAI is token0): tick -76_020 is ~1/2000 WETH per DAI; a V2 pool prices WETH 3 %
    # higher.
    snap3 = v3_snapshot(W3, tick=-76_020, liquidity=10**23, ticks=FULL_RANGE, spacing=60,
                        balances=(10**26, 10**23))
    assert e.on_message(md(snap3), 1) == []
    st = e.state.get(W3)
    dai_per_weth = (1 << 192) // st.v3.sqrt_price_x96**2
    [sig] = e.on_message(md(v2_snapshot(WD1, dai_per_weth * 103 * 10**20, 10**22)), 2)
    path = sig.find(P.ArbitragePath)
    assert {h.venue_kind for h in path.hops} == {P.VenueKind.UNISWAP_V2, P.VenueKind.UNISWAP_V3}
    assert sig.find(P.Economics).gas_units == 40_000 + 60_000 + 110_000
    # the V3 hop's amounts are the exact V3 simulation
    h3 = next(h for h in path.hops if h.pool == W3)
    r = swap_exact_input(st.v3, h3.token_in == bytes.fromhex(DAI[2:]), h3.amount_in)
    assert r.amount_out == h3.amount_out


def test_triangular_cycle() -> None:
    e = engine()
    msgs = [v2_snapshot(WD1, 2000 * 10**22, 10**22), v2_snapshot(DU, 10**24, 10**12),
            v2_snapshot(UW, 2100 * 10**9 * 500, 500 * 10**18)]  # USDC/WETH: WETH at 2100 USDC
    sigs = e.on_message(md(*msgs), 1)
    assert len(sigs) == 1
    ident, econ, path = sigs[0].tlvs[:3]
    assert ident.kind == P.SignalKind.CYCLE and len(path.hops) == 3
    assert path.hops[0].token_in == path.hops[-1].token_out == bytes.fromhex(WETH[2:])


def test_stale_pool_never_yields_a_signal() -> None:
    e = engine()
    e.on_message(md(SNAP1), 1)
    e.on_message(md(P.StateInvalidation(chain_id=1, pool=WD1, from_block=100,
                                        reason=P.InvalidationReason.DISCONNECT, detail="ws closed")), 2)
    assert e.on_message(md(SNAP2), 3) == []  # WD1 is stale: the cycle is not priced at all
    assert e.search.stats["skipped_untradable"] >= 1
    assert e.on_message(md(sync(WD2, 2200 * 10**21, 10**21, block=101)), 4) == []
    # a fresh snapshot of WD1 makes it tradable again
    assert len(e.on_message(md(dataclasses.replace(SNAP1, block_number=102)), 5)) == 1


def test_chain_invalidation_and_relay_resync_stop_all_signals() -> None:
    e = engine()
    e.on_message(md(SNAP1), 1)
    e.on_message(md(P.StateInvalidation(chain_id=1, pool=P.PoolId(0), from_block=0,
                                        reason=P.InvalidationReason.RESYNC, detail="")), 2)
    assert e.on_message(md(SNAP2), 3) == []
    e.on_message(md(dataclasses.replace(SNAP1, block_number=103)), 4)
    resync = P.Message(domain=4, tlvs=(P.Resync(requested_seq=5, oldest_available=9, reason=1),))
    assert e.on_message(resync, 5) == []
    assert e.state.is_stale(WD1) and e.state.is_stale(WD2)
    assert e.on_message(md(dataclasses.replace(SNAP2, block_number=104)), 6) == []  # WD1 still stale


def test_replayed_message_gives_no_second_signal() -> None:
    e = engine()
    e.on_message(md(SNAP1), 1)
    update = md(sync(WD2, 2100 * 10**21, 10**21, block=101, log_index=3))
    assert len(e.on_message(update, 2)) == 1
    assert e.on_message(update, 3) == []  # the same event again: not applied, nothing re-evaluated


def test_signal_ids_and_sequence_numbers_increase() -> None:
    e = StrategyEngine(config(), first_signal_id=1000)
    e.on_message(md(header()), 0)
    e.on_message(md(SNAP1), 1)
    a = e.on_message(md(sync(WD2, 2100 * 10**21, 10**21, block=101)), 2)
    b = e.on_message(md(sync(WD2, 2200 * 10**21, 10**21, block=102)), 3)
    assert [m.tlvs[0].signal_id for m in a + b] == [1000, 1001]
    assert [m.source_seq for m in a + b] == [1, 2]
    assert b[0].tlvs[0].block_number == 102


def test_at_most_max_signals_per_update_best_first() -> None:
    # three disjoint opportunities (signals never share a pool): the best two go out
    pools = [v2_pool(10 + i, WETH, DAI, venue=1000 + i) for i in range(6)]
    prices = (2000, 2010, 2020, 2180, 2190, 2200)
    snaps = [v2_snapshot(p, price * 10**21, 10**21) for p, price in zip(pools, prices)]
    e = engine(max_signals_per_update=2, max_sized_per_update=16)
    sigs = e.on_message(md(*snaps), 1)
    assert len(sigs) == 2
    nets = [s.find(P.Economics).net_profit for s in sigs]
    assert nets == sorted(nets, reverse=True)


def test_other_domains_are_ignored() -> None:
    e = engine()
    assert e.on_message(P.Message(domain=3, tlvs=()), 1) == []


def test_sizing_work_per_update_is_bounded_and_goes_to_the_best_estimates() -> None:
    # One pool far off the others: every 2-cycle through it pays, the deeper pools pay more.
    pools = [v2_pool(20 + i, WETH, DAI, venue=1100 + i) for i in range(6)]
    e = engine(max_sized_per_update=2, max_signals_per_update=8)
    e.on_message(md(*[v2_snapshot(p, 2000 * 10**19 * (i + 1), 10**19 * (i + 1)) for i, p in enumerate(pools)]), 1)
    assert e.search.stats["optimised"] == 0  # all priced alike: nothing passes the screen
    moved = v2_pool(40, WETH, DAI, venue=1200)
    sized: list = []
    search = e.search.on_update
    e.search.on_update = lambda touched: sized.extend(search(touched)) or sized  # type: ignore[method-assign]
    sigs = e.on_message(md(v2_snapshot(moved, 2100 * 10**21, 10**21)), 2)
    assert e.search.stats["optimised"] == 2 and e.search.stats["deferred"] == 4
    # the two sized are the two deepest counterparts
    assert {o.cycle.pools[1] if o.cycle.pools[0] == moved else o.cycle.pools[0] for o in sized} == {pools[5], pools[4]}
    # both run through the moved pool: one opportunity, one signal (the deepest counterpart)
    assert [s.find(P.ArbitragePath).hops[1].pool for s in sigs] == [pools[5]]


def test_snapshot_on_the_system_domain_is_applied() -> None:
    e = engine()
    e.on_message(md(SNAP1), 1)
    reply = P.Message(domain=4, tlvs=(SNAP2,))
    [sig] = e.on_message(reply, 2)
    assert sig.find(P.SignalIdentity).kind == P.SignalKind.TWO_POOL


def test_a_shard_only_trades_in_its_pools() -> None:
    """``[[chains]] pools``: two strategy shards over one market-data stream, disjoint pool sets."""
    WD3 = v2_pool(6, WETH, DAI, venue=P.Venue.SUSHISWAP)
    snap3 = v2_snapshot(WD3, 2100 * 10**21, 10**21)

    def shard(*pools: P.PoolId) -> StrategyEngine:
        e = engine()
        chain = msgspec.structs.replace(e.config.chains[0],
                                        pools=frozenset(int(p) & ((1 << 160) - 1) for p in pools))
        e2 = StrategyEngine(msgspec.structs.replace(e.config, chains=(chain,)))
        e2.on_message(md(header(base_fee=20 * GWEI, priority_fee=GWEI)), 0)
        return e2

    a, b = shard(WD1, WD2), shard(WD3, W3)
    msg = md(SNAP1, SNAP2, snap3)  # WD1/WD2 is an opportunity; WD1/WD3 would be one but spans shards
    [sig] = a.on_message(msg, 1)
    assert [h.pool for h in sig.find(P.ArbitragePath).hops] == [WD2, WD1]
    assert b.on_message(msg, 1) == []
    assert WD3 not in a.index and WD1 not in b.index and WD3 in b.index


def _balanced_triangle() -> StrategyEngine:
    e = engine()
    # WETH at 2000 DAI, DAI = USDC, WETH at 2000 USDC: nothing to do
    assert e.on_message(md(v2_snapshot(WD1, 2000 * 10**22, 10**22), v2_snapshot(DU, 10**24, 10**12),
                           v2_snapshot(UW, 2000 * 10**6 * 500, 500 * 10**18)), 1) == []
    return e


# one transaction moving all three pools of the cycle (a three-hop arbitrage): WETH goes to 2100
# on both WETH pools, the DAI/USDC pool only changes depth -- consistent before and after
TX_LOGS = (sync(WD1, 2100 * 10**22, 10**22, log_index=3), sync(DU, 2 * 10**24, 2 * 10**12, log_index=7),
           sync(UW, 2100 * 10**6 * 500, 500 * 10**18, log_index=11))


def test_three_swaps_of_one_transaction_cause_no_phantom_signal() -> None:
    # applied log by log (the old collector), the half-applied states look like a 5 % cycle
    e = _balanced_triangle()
    phantom = [s for log in TX_LOGS for s in e.on_message(md(log), 2)]
    assert phantom and all(len(s.find(P.ArbitragePath).hops) == 3 for s in phantom)
    # as the collector publishes it now -- the transaction's logs in one message -- nothing
    e = _balanced_triangle()
    assert e.on_message(md(*TX_LOGS), 2) == []
    assert e.position == (101, 11)  # every log of the unit was applied


def test_signal_records_the_block_and_last_log_index_it_saw() -> None:
    e = _balanced_triangle()
    # the transaction moves only the first pool: a real opportunity, decided after its last log
    [sig] = e.on_message(md(sync(DU, 10**24, 10**12, log_index=4), TX_LOGS[0], sync(DU, 10**24, 10**12, log_index=5)),
                         2)
    point = sig.find(P.DecisionPoint)
    assert (point.block_number, point.log_index) == (101, 5)
    assert P.decode(P.encode(sig)) == sig


def test_one_signal_per_opportunity_the_best_set_of_paths_sharing_no_pool() -> None:
    # five WETH/DAI pools: every pair is a two-pool cycle (10 of them), but pools can only be used once
    pools = [v2_pool(20 + i, WETH, DAI, venue=2000 + i) for i in range(5)]
    prices = (2000, 2010, 2100, 2190, 2200)
    e = engine(max_signals_per_update=10)
    sigs = e.on_message(md(*[v2_snapshot(p, price * 10**21, 10**21) for p, price in zip(pools, prices)]), 1)
    paths = [frozenset(h.pool for h in s.find(P.ArbitragePath).hops) for s in sigs]
    assert len(paths) == 2 and not paths[0] & paths[1]
    # the best disjoint pair first: the widest gap (2000 <-> 2200), then the next one (2010 <-> 2190)
    assert paths[0] == {pools[0], pools[4]} and paths[1] == {pools[1], pools[3]}
    assert e.stats["overlapping"] > 0


def test_old_news_is_applied_without_searching_then_the_next_fresh_update_decides_on_it() -> None:
    """Found by ``alphapulse chaos``: a restarted strategy searched every retained message only to
    withhold the signals as old news, and under load never caught up between two kills. ``decide=False``
    applies the state and searches nothing; a fresh update then decides on the state built so far."""
    e = engine()
    before = dict(e.search.stats)
    assert e.on_message(md(SNAP1, SNAP2), 1, decide=False) == []
    assert e.state.get(WD1) is not None and e.state.get(WD2) is not None  # applied
    assert dict(e.search.stats) == before  # nothing searched
    [sig] = e.on_message(md(v2_snapshot(WD2, 2101 * 10**21, 10**21)), 2)
    assert [h.pool for h in sig.find(P.ArbitragePath).hops] == [WD2, WD1]


def test_reconfigure_changes_the_next_decision_and_keeps_the_state() -> None:
    """SIGHUP's path (strategy.process attaches ``reconfigure``): a raised profit floor stops the
    signal the old one let through; pools, cycles and signal ids carry on."""
    e = engine()
    [sig] = e.on_message(md(SNAP1, SNAP2), 1)
    net = sig.find(P.Economics).net_profit
    e.reconfigure(config(min_net=net + 1))
    again = v2_snapshot(WD2, 2100 * 10**21, 10**21, block=101)
    assert e.on_message(md(again), 2) == [] and e.stats["below_threshold"] >= 1
    assert WD1 in e.index and e.state.get(WD1) is not None
    e.reconfigure(config(min_net=net, max_signals_per_update=2))
    [sig2] = e.on_message(md(v2_snapshot(WD2, 2100 * 10**21, 10**21, block=102)), 3)
    assert sig2.find(P.SignalIdentity).signal_id == 2 and e.config.max_signals_per_update == 2


# --- several messages received together: one decision on the final state ------------------------------

def _balanced_pair() -> StrategyEngine:
    e = engine()
    # WETH at 2000 DAI on both WETH/DAI pairs; DAI/USDC known (it forms no cycle without a USDC/WETH pool)
    assert e.on_message(md(SNAP1, v2_snapshot(WD2, 2000 * 10**22, 10**22), v2_snapshot(DU, 10**24, 10**12)), 1) == []
    return e


# two transactions of block 101, one message each (the collector's transaction units): a swap that takes
# WETH to 2100 DAI on WD2, then its reverse
SWAP = md(sync(WD2, 2100 * 10**22, 10**22, log_index=2), seq=10, t=5_000)
REVERSE = md(sync(WD2, 2000 * 10**22, 10**22, log_index=6), seq=11, t=6_000)


def test_two_transactions_received_together_are_decided_once_on_the_final_state() -> None:
    # decided message by message, the state between the two shows a 5 % gap no transaction could take
    e = _balanced_pair()
    assert e.on_message(SWAP, 2) and e.on_message(REVERSE, 3) == []
    # coalesced: both applied, one decision on the state after the reverse: nothing
    e = _balanced_pair()
    assert list(e.coalesced_signals([SWAP, REVERSE], 2)) == []
    assert e.position == (101, 6) and e.stats["signals"] == 0
    assert e.state.get(WD2).reserve0 == 2000 * 10**22  # type: ignore[union-attr]


def test_a_coalesced_decision_covers_every_pool_touched_and_is_caused_by_the_last_message() -> None:
    """The first message's pools join the decision even when the last touches none of the cycle: the gap the
    swap opened is signalled once, with the last message's stamps, trace id and position, and the trace
    originating at the first message (the latency from the swap log's arrival is not understated)."""
    e = _balanced_pair()
    later = md(sync(DU, 10**24 + 1, 10**12, log_index=9), seq=11, t=6_000)  # another pool of the block
    [sig] = e.coalesced_signals([SWAP, later], 9_000)
    assert [h.pool for h in sig.find(P.ArbitragePath).hops] == [WD2, WD1]
    trace, point = sig.find(P.TraceContext), sig.find(P.DecisionPoint)
    assert trace.trace_id == (7 << 64) | 11 and trace.origin_ns == 5_001  # SWAP's receive stamp
    assert (point.block_number, point.log_index) == (101, 9) and sig.event_time_ns == 6_000
    assert sig.receive_time_ns == 9_000
    # an upstream trace on the cause is continued, its origin the earliest message's
    e = _balanced_pair()
    upstream = P.TraceContext(trace_id=123, span_id=456, flags=1, parent_span_id=0, origin_ns=5_500)
    [sig] = e.coalesced_signals([SWAP, md(*later.tlvs, upstream, seq=11, t=6_000)], 9_000)
    trace = sig.find(P.TraceContext)
    assert (trace.trace_id, trace.parent_span_id, trace.origin_ns) == (123, 456, 5_001)


def test_a_lone_message_coalesced_decides_exactly_as_signals() -> None:
    a, b = _balanced_pair(), _balanced_pair()
    assert list(a.coalesced_signals([SWAP], 9_000)) == b.on_message(SWAP, 9_000) != []
    # messages of other domains are skipped: none left, nothing decided
    other = P.Message(domain=P.Domain.SIGNAL, tlvs=REVERSE.tlvs, source_id=7, source_seq=12, event_time_ns=1,
                      receive_time_ns=2)
    assert list(a.coalesced_signals([other], 9_001)) == [] and a.position == (101, 2)
