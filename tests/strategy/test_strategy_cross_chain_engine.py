"""The strategy engine's [cross_chain] part (strategy/cross_chain_engine.py), sans-IO: two chains'
market data through one StrategyEngine, the signal published once per state of both pools, with
every term of the sizer, sigma measured from the pools' prices, and each reason not to signal
counted."""

from __future__ import annotations

from math import isqrt
from typing import Any

from market_builders import DAI, USDC, WETH, header, pool_address, sync, v2_pool, v2_snapshot

import protocol as P
from protocol.signals import (
    ArbitragePath,
    CrossChainArbitrage,
    DecisionPoint,
    Economics,
    SignalIdentity,
    SignalKind,
)
from strategy.config import config_from_dict
from strategy.cross_chain import ChainLeg, CrossChainParams, CrossChainSizer, drift_allowance
from strategy.engine import StrategyEngine

A, B = 31337, 31338
GWEI = 10**9
POOL_A, POOL_B = v2_pool(1, USDC, WETH, chain=A), v2_pool(2, USDC, WETH, chain=B)  # token0 = USDC
FLOOR = 20_000
K = 2000


def doc(**cross: Any) -> dict[str, Any]:
    xc = {"base": "WETH", "quote": "USDC", "pairs": [[POOL_A.address, POOL_B.address]], "bridge_id": 3,
          "bridge_fee_bps": 1, "bridge_gas_units": 80_000, "rebalance_every": 10, "drift_k_milli": K,
          "sigma_window_s": 60, "sigma_floor_ppb": FLOOR, "min_net_profit": 10**6,
          "chains": [{"chain_id": A, "block_time_ms": 2000, "gas_units": 150_000,
                      "inventory": {"base": 10**21, "quote": 10**12}},
                     {"chain_id": B, "block_time_ms": 250, "gas_units": 120_000,
                      "inventory": {"base": 10**21, "quote": 10**12}}]}
    xc.update(cross)
    return {"chains": [{"chain_id": A, "gas_token": WETH}, {"chain_id": B, "gas_token": WETH}],
            "assets": [{"name": "WETH", "tokens": [{"chain_id": A, "address": WETH}, {"chain_id": B, "address": WETH}]},
                       {"name": "USDC", "tokens": [{"chain_id": A, "address": USDC}, {"chain_id": B, "address": USDC}]}],
            "cross_chain": xc}


def engine(**cross: Any) -> StrategyEngine:
    return StrategyEngine(config_from_dict(doc(**cross)))


def msg(*tlvs: P.TLV, t: int, seq: int = 1) -> P.Message:
    return P.Message(domain=1, tlvs=tlvs, source_id=7, source_seq=seq, event_time_ns=t, receive_time_ns=t)


S = 10**9  # one second in ns


def start(e: StrategyEngine, usdc_b: int = 2_030_000 * 10**6) -> list[P.Message]:
    """Both chains' heads, then both pools' snapshots (WETH at 2000 USDC on A, usdc_b/1000 on B)."""
    assert e.on_message(msg(header(base_fee=GWEI, priority_fee=0, number=100, chain=A),
                            header(base_fee=GWEI // 10, priority_fee=0, number=400, chain=B), t=S), S) == []
    assert e.on_message(msg(v2_snapshot(POOL_A, 2_000_000 * 10**6, 1000 * 10**18, block=100), t=2 * S), 2 * S) == []
    return e.on_message(msg(v2_snapshot(POOL_B, usdc_b, 1000 * 10**18, block=400), t=3 * S, seq=2), 3 * S)


def expected(e: StrategyEngine, source: P.PoolId, dest: P.PoolId, sigma: int) -> Any:
    """What the sizer says for these legs (this test is about the wiring; the sizer's own arithmetic is
    checked by hand in test_strategy_cross_chain.py and on the devnet)."""
    def leg(pool: P.PoolId, sells_usdc: bool, gas: int, units: int, bt: int) -> ChainLeg:
        st = e.state.get(pool)
        return ChainLeg(chain_id=pool.chain_id, pool=st, zero_for_one=sells_usdc, quote_token=P.TokenId.of(
            pool.chain_id, USDC), gas_token=P.TokenId.of(pool.chain_id, WETH), price_pools=(st,), gas_units=units,
            gas_price_wei=gas, block_time_ms=bt)
    legs = {A: (GWEI, 150_000, 2000), B: (GWEI // 10, 120_000, 250)}
    params = CrossChainParams(bridge_id=3, bridge_fee_bps=1, bridge_gas_units=80_000, rebalance_every=10,
                              drift_k_milli=K)
    return CrossChainSizer(leg(source, True, *legs[source.chain_id]), leg(dest, False, *legs[dest.chain_id]),
                           params, sigma).best(10**12, 10**21)


def test_both_chains_through_one_engine_publish_the_cross_chain_signal() -> None:
    e = engine()
    (sig,) = start(e)
    ident, econ, path, xc, point, trace = sig.tlvs
    assert type(ident) is SignalIdentity and ident.kind == SignalKind.CROSS_CHAIN and ident.chain_id == A
    assert (ident.block_number, point.block_number, point.log_index) == (100, 400, 0xFFFFFFFF)
    q = expected(e, POOL_A, POOL_B, FLOOR)  # one price per pool so far: sigma is the floor
    assert e.cross_chain is not None and e.cross_chain.sigma_ppb(0) == FLOOR
    assert type(xc) is CrossChainArbitrage and xc == q.cross_chain_tlv(3)
    assert (xc.source_chain, xc.dest_chain, xc.bridge, xc.timing_risk_blocks) == (A, B, 3, 8)
    assert type(econ) is Economics and econ.net_profit == q.net_profit >= 10**6
    assert econ.profit_token == P.TokenId.of(A, USDC) and econ.slippage_allowance == drift_allowance(
        q.amount_in, FLOOR, 2000, K)
    h0, h1 = path.hops
    assert (h0.pool, h0.amount_in, h0.amount_out, h1.pool, h1.amount_in, h1.amount_out) == (
        POOL_A, q.amount_in, q.base_amount, POOL_B, q.base_amount, q.amount_out)
    assert trace.trace_id == (7 << 64) | 2 and trace.span_id == ident.signal_id  # caused by B's snapshot
    # a quiet source pool is not old news: A's newer head says its state is known to the block before it
    e.on_message(msg(header(base_fee=GWEI, priority_fee=0, number=130, chain=A), t=4 * S), 4 * S)
    (later,) = e.on_message(msg(sync(POOL_B, 2_031_000 * 10**6, 1000 * 10**18, block=401), t=5 * S), 5 * S)
    assert later.find(SignalIdentity).block_number == 129 and later.find(DecisionPoint).block_number == 401
    assert e.stats["xc_signals"] == 2


def test_no_repeat_for_the_same_state_of_both_pools_a_new_state_signals_again() -> None:
    e = engine()
    assert len(start(e)) == 1
    # the same snapshots again (a reconnecting collector): same marks, no second signal
    again = e.on_message(msg(v2_snapshot(POOL_B, 2_030_000 * 10**6, 1000 * 10**18, block=400), t=4 * S), 4 * S)
    assert again == [] and e.stats["xc_repeat"] == 1
    assert e.on_message(msg(header(number=401, chain=B, base_fee=GWEI // 10, priority_fee=0), t=4 * S), 4 * S) == []
    # WETH dearer still on B: a new state, a new signal, sigma now measured from B's move
    r0, r1 = 2_032_000 * 10**6, 9995 * 10**17  # +0.15 %
    (sig,) = e.on_message(msg(sync(POOL_B, r0, r1, block=402, log_index=3), t=5 * S, seq=3), 5 * S)
    # B's return by hand: p = 2.03e12/1e21 -> 2.032e12/9.995e20, over 2 s (stamps 3 s -> 5 s)
    num, den = r0 * 1000 * 10**18, r1 * 2_030_000 * 10**6
    r = (num - den) * 10**9 // den
    var = r * r * 10**9 // (2 * S)
    sigma = isqrt(var)
    sigma += sigma * sigma < var  # rounded up
    assert e.cross_chain is not None and e.cross_chain.sigma_ppb(0) == sigma > FLOOR
    q = expected(e, POOL_A, POOL_B, sigma)
    assert sig.find(CrossChainArbitrage) == q.cross_chain_tlv(3) and sig.find(Economics).net_profit == q.net_profit
    assert sig.find(DecisionPoint) == DecisionPoint(block_number=402, log_index=3)
    # quiet for longer than the 60 s window: sigma back to the floor when a later message decides
    e.on_message(msg(sync(POOL_A, 2_000_000 * 10**6 - 1, 1000 * 10**18 + 1, block=101), t=70 * S, seq=4), 70 * S)
    assert e.cross_chain.sigma_ppb(0) < sigma


def test_the_cheaper_chain_is_the_source_either_way() -> None:
    e = engine()
    (sig,) = start(e, usdc_b=1_970_000 * 10**6)  # WETH dearer on A now
    ident, path = sig.find(SignalIdentity), sig.find(ArbitragePath)
    assert ident.chain_id == B and sig.find(CrossChainArbitrage).source_chain == B
    assert (path.hops[0].pool, path.hops[1].pool) == (POOL_B, POOL_A)
    assert path.hops[0].token_in == bytes.fromhex(USDC[2:]) and path.hops[1].token_out == bytes.fromhex(USDC[2:])
    q = expected(e, POOL_B, POOL_A, FLOOR)
    assert sig.find(Economics).net_profit == q.net_profit and sig.find(CrossChainArbitrage) == q.cross_chain_tlv(3)
    assert sig.find(DecisionPoint).block_number == 100  # the destination is chain A now


def test_a_cross_chain_pool_outside_the_cycle_shard_still_counts() -> None:
    d = doc()
    for c in d["chains"]:
        c["pools"] = [pool_address(99)]  # no cycle can form on either chain
    e = StrategyEngine(config_from_dict(d))
    assert len(start(e)) == 1


def test_reasons_not_to_signal_are_counted() -> None:
    e = engine(min_net_profit=10**15)
    assert start(e) == [] and e.stats["xc_below_threshold"] == 1
    e = engine(chains=[{"chain_id": A, "block_time_ms": 2000, "gas_units": 150_000,
                        "inventory": {"base": 10**21, "quote": 10**12}},
                       {"chain_id": B, "block_time_ms": 250, "gas_units": 120_000, "inventory": {"base": 0,
                                                                                                  "quote": 10**12}}])
    assert start(e) == []  # no WETH to sell on B: the only paying direction is capped to nothing
    e = engine()
    e.on_message(msg(header(base_fee=GWEI, priority_fee=0, number=100, chain=A), t=S), S)
    e.on_message(msg(v2_snapshot(POOL_A, 2_000_000 * 10**6, 1000 * 10**18), t=S), S)
    assert e.stats["xc_pair_incomplete"] == 1
    assert e.on_message(msg(v2_snapshot(POOL_B, 2_030_000 * 10**6, 1000 * 10**18), t=S), S) == []
    assert e.stats["xc_no_gas_price"] >= 1  # no head from B yet
    # a collector publishes its snapshots before its first header: the header re-sizes the pair
    (sig,) = e.on_message(msg(header(base_fee=GWEI // 10, priority_fee=0, number=400, chain=B), t=2 * S), 2 * S)
    assert sig.find(Economics).net_profit == expected(e, POOL_A, POOL_B, FLOOR).net_profit
    assert e.on_message(msg(header(base_fee=GWEI // 10, priority_fee=0, number=401, chain=B), t=2 * S), 2 * S) == []
    assert e.stats["xc_repeat"] == 1  # re-sized on the next head, not signalled again: the pools did not move
    # old news: applied (the state and sigma move on), never decided
    e = engine()
    e.on_message(msg(header(base_fee=GWEI, priority_fee=0, number=100, chain=A),
                     header(base_fee=GWEI // 10, priority_fee=0, number=400, chain=B), t=S), S)
    e.on_message(msg(v2_snapshot(POOL_A, 2_000_000 * 10**6, 1000 * 10**18), t=S), S, decide=False)
    assert e.on_message(msg(v2_snapshot(POOL_B, 2_030_000 * 10**6, 1000 * 10**18), t=S), S, decide=False) == []
    assert len(e.on_message(msg(sync(POOL_B, 2_031_000 * 10**6, 1000 * 10**18), t=2 * S), 2 * S)) == 1
    # a configured address whose pool trades other tokens is not the pair
    e = engine()
    wrong = P.PoolId.of(B, P.Venue.UNISWAP_V2, P.VenueKind.UNISWAP_V2, POOL_B.address, DAI, WETH)
    e.on_message(msg(v2_snapshot(wrong, 10**24, 10**21), t=S), S)
    assert e.stats["xc_pool_not_the_pair"] == 1


def test_without_a_cross_chain_section_nothing_changes() -> None:
    d = doc()
    del d["cross_chain"]
    e = StrategyEngine(config_from_dict(d))
    assert e.cross_chain is None and start(e) == []


def test_positions_are_per_chain_for_the_single_chain_signals_too() -> None:
    """One engine holds both chains: a cycle's DecisionPoint is its own chain's position, never the
    other chain's higher block numbers."""
    d = doc()
    d["chains"][0]["base_tokens"] = [WETH]
    e = StrategyEngine(config_from_dict(d))
    start(e)  # chain A at block 100, chain B at 400
    assert e.positions == {A: (100, 0xFFFFFFFF), B: (400, 0xFFFFFFFF)}
    other = v2_pool(3, USDC, WETH, chain=A)  # a second WETH/USDC pool on A, priced 3 % away: a two-pool cycle
    e.on_message(msg(header(base_fee=0, priority_fee=0, number=101, chain=A), t=6 * S), 6 * S)
    sigs = e.on_message(msg(v2_snapshot(other, 2_060_000 * 10**6, 1000 * 10**18, block=101), t=6 * S), 6 * S)
    cycle = [s for s in sigs if s.find(SignalIdentity).kind == SignalKind.TWO_POOL]
    assert cycle and cycle[0].find(SignalIdentity).chain_id == A
    assert cycle[0].find(DecisionPoint) == DecisionPoint(block_number=101, log_index=0xFFFFFFFF)


def test_sighup_changes_costs_threshold_and_caps_not_the_pairs() -> None:
    """The reloadable [cross_chain] keys (strategy.process's SIGHUP path): a new inventory cap or
    threshold applies to the next sizing; pairs, chains and sigma need a restart."""
    from runtime.reload import config_diff, is_reloadable

    e = engine()
    (first,) = start(e)
    x = first.find(ArbitragePath).hops[0].amount_in
    d = doc()
    d["cross_chain"]["chains"][0]["inventory"]["quote"] = x // 2  # half the optimum on the source chain
    capped = config_from_dict(d)
    changes = config_diff(e.config, capped)
    assert [c.path for c in changes] == ["cross_chain.chains[0].quote_inventory"]
    assert all(is_reloadable(c.path, StrategyEngine.RELOADABLE) for c in changes)
    e.reconfigure(capped)
    (sig,) = e.on_message(msg(sync(POOL_B, 2_031_000 * 10**6, 1000 * 10**18, block=401), t=5 * S), 5 * S)
    assert sig.find(ArbitragePath).hops[0].amount_in <= x // 2
    d["cross_chain"]["min_net_profit"] = 10**15
    e.reconfigure(config_from_dict(d))
    assert e.on_message(msg(sync(POOL_B, 2_032_000 * 10**6, 1000 * 10**18, block=402), t=6 * S), 6 * S) == []
    assert e.stats["xc_below_threshold"] == 1
    for key, value in (("sigma_floor_ppb", 1), ("pairs", [[POOL_A.address, pool_address(9)]])):
        other = doc(**{key: value})
        paths = [c.path for c in config_diff(e.config, config_from_dict(other))]
        assert any(not is_reloadable(p, StrategyEngine.RELOADABLE) for p in paths), paths


def test_coalesced_messages_size_the_pair_once_on_the_state_after_the_last() -> None:
    """``StrategyEngine.coalesced_signals``: the pairs the earlier messages moved stay marked for the one
    decision after the last message; the signal is the one of the state after it, its trace originating at
    the earliest message."""
    (ref,) = start(engine())
    e = engine()
    heads = msg(header(base_fee=GWEI, priority_fee=0, number=100, chain=A),
                header(base_fee=GWEI // 10, priority_fee=0, number=400, chain=B), t=S)
    (sig,) = e.coalesced_signals([heads, msg(v2_snapshot(POOL_A, 2_000_000 * 10**6, 1000 * 10**18, block=100), t=2 * S),
                                  msg(v2_snapshot(POOL_B, 2_030_000 * 10**6, 1000 * 10**18, block=400), t=3 * S, seq=2)],
                                 3 * S)
    assert sig.find(Economics) == ref.find(Economics) and sig.find(CrossChainArbitrage) == ref.find(CrossChainArbitrage)
    trace = sig.find(P.TraceContext)
    assert trace.trace_id == (7 << 64) | 2 and trace.origin_ns == S
    # B's pool moves, then a message of a pool no pair watches: the pair is still re-sized, once
    other = v2_pool(9, DAI, WETH, chain=A)
    (later,) = e.coalesced_signals([msg(sync(POOL_B, 2_031_000 * 10**6, 1000 * 10**18, block=401), t=5 * S, seq=3),
                                    msg(v2_snapshot(other, 2000 * 10**21, 10**21, block=101), t=6 * S, seq=4)], 6 * S)
    assert later.find(DecisionPoint).block_number == 401 and later.find(P.TraceContext).origin_ns == 5 * S
    assert e.stats["xc_signals"] == 2
