"""Each breaker trips on a constructed breach and stays quiet on a normal stream (sans-IO, no clock)."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from risk_testkit import (
    CHAIN,
    ETHER,
    POOL_V2,
    POOL_V3,
    USDC_ID,
    WETH_ID,
    S,
    block,
    cex_dex_result,
    cex_fill,
    cex_trade,
    reserves,
    result,
    signal,
    started,
    v3swap,
)

from protocol.execution import Outcome
from protocol.header import Domain
from protocol.ids import Venue
from protocol.message import Message
from protocol.system import EmergencyStop, Resume, StopScope
from risk.config import ConfigError, parse_config
from risk.engine import Cleared, ForeignStop, Resumed, RiskEngine, Stop, cleared_resume

T0 = 1_700_000_000 * 10**9
SEC = 10**9


def engine(toml: str, **kw) -> RiskEngine:  # type: ignore[no-untyped-def]
    return RiskEngine(parse_config(toml), **kw)


def stops(actions: list) -> list[Stop]:  # type: ignore[type-arg]
    return [a for a in actions if isinstance(a, Stop)]


# ---------------------------------------------------------------- config


def test_unknown_keys_are_rejected_with_their_path() -> None:
    with pytest.raises(ConfigError, match=r"failure_rate\.windw: unknown key 'windw' \(allowed: "):
        parse_config("[failure_rate]\nwindw = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'bogus'"):
        parse_config("[bogus]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"daily_loss.tokens.1:0xc0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0.max_los: unknown key"):
        parse_config(f'[daily_loss.tokens."1:{"0x" + "c0" * 20}"]\nmax_los = 5\n')
    with pytest.raises(ConfigError, match="failure_rate.window: must be an integer, got float"):
        parse_config("[failure_rate]\nwindow = 2.5\n")
    with pytest.raises(ConfigError, match="unknown venue"):
        parse_config('[stale_data]\nvenues = { nowhere = 3.0 }\n')
    with pytest.raises(ConfigError, match="scope must be one of"):
        parse_config('[gas_price]\nmax_wei = 5\nscope = "venue"\n')


def test_empty_config_has_no_breakers_and_never_trips() -> None:
    e = engine("")
    assert e.breakers == []
    assert e.on_message(Domain.EXECUTION, result(1, profit=-10 * ETHER), T0) == []
    assert e.on_timer(T0 + 10**15) == []


# ---------------------------------------------------------------- daily loss

DAILY = f"""
[daily_loss]
day_start_utc = "00:00"
[daily_loss.tokens."1:{'0x' + 'c0' * 20}"]
max_loss = {ETHER // 2}
gas_per_eth = {ETHER}
"""


def test_daily_loss_trips_on_net_loss_including_gas() -> None:
    e = engine(DAILY)
    # +0.1 profit, then reverts that burn gas: 300k gas at 500 gwei = 0.15 ETH each
    assert e.on_message(Domain.EXECUTION, result(1, profit=ETHER // 10), T0) == []
    assert e.on_message(Domain.EXECUTION, result(2, outcome=Outcome.REVERTED, gas_used=300_000, gas_price=500 * S), T0) == []
    assert e.on_message(Domain.EXECUTION, result(3, outcome=Outcome.REVERTED, gas_used=300_000, gas_price=500 * S), T0) == []
    assert e.on_message(Domain.EXECUTION, result(4, outcome=Outcome.REVERTED, gas_used=300_000, gas_price=500 * S), T0) == []
    # net: 0.1 - 0.45 = -0.35; a 0.15 loss makes -0.5: at the limit
    [a] = e.on_message(Domain.EXECUTION, result(5, profit=-ETHER * 15 // 100), T0)
    assert isinstance(a, Stop) and a.trip.breaker == "daily_loss" and a.trip.scope == StopScope.ALL
    assert "daily loss 500000000000000000" in a.trip.reason and a.trip.stop_id == 1
    # tripped once: more losses do not produce more stops
    assert e.on_message(Domain.EXECUTION, result(6, profit=-ETHER), T0) == []


def test_daily_loss_quiet_on_normal_day_ignores_shadow_and_other_tokens_and_resets_daily() -> None:
    e = engine(DAILY)
    for i in range(50):
        assert e.on_message(Domain.EXECUTION, result(i, profit=ETHER // 100, gas_used=200_000, gas_price=20 * S), T0) == []
    assert e.on_message(Domain.EXECUTION, result(100, outcome=Outcome.SIMULATED, profit=-10 * ETHER), T0) == []
    assert e.on_message(Domain.EXECUTION, result(101, profit=-10**12, token=USDC_ID), T0) == []
    # -0.4 today, -0.4 tomorrow: never -0.5 within one day
    e2 = engine(DAILY)
    day = 86_400 * SEC
    midnight = (T0 // day + 1) * day
    assert e2.on_message(Domain.EXECUTION, result(1, profit=-ETHER * 4 // 10), midnight - SEC) == []
    assert e2.on_message(Domain.EXECUTION, result(2, profit=-ETHER * 4 // 10), midnight + SEC) == []


# ---------------------------------------------------------------- trade size

SIZE = f"""
[trade_size]
[trade_size.tokens."1:{'0x' + 'c0' * 20}"]
max_amount_in = {5 * ETHER}
"""


def test_trade_size_trips_per_strategy() -> None:
    e = engine(SIZE)
    assert e.on_message(Domain.SIGNAL, signal(1, amount_in=5 * ETHER), T0) == []
    [a] = stops(e.on_message(Domain.SIGNAL, signal(2, amount_in=5 * ETHER + 1, strategy_id=9), T0))
    assert a.trip.scope == StopScope.STRATEGY and a.trip.scope_value == 9 and "signal 2" in a.trip.reason


# ---------------------------------------------------------------- gas price

GAS = f"""
[gas_price]
max_wei = {300 * S}
chains = {{ "10" = {S} }}
"""


def test_gas_price_trips_on_block_base_plus_priority_and_on_execution_max_fee() -> None:
    e = engine(GAS)
    for n in range(10):
        assert e.on_message(Domain.MARKET_DATA, block(n + 1, base_fee=30 * S), T0) == []
    assert e.on_message(Domain.EXECUTION, started(1, max_fee=300 * S), T0) == []
    [a] = stops(e.on_message(Domain.MARKET_DATA, block(20, base_fee=299 * S, priority=2 * S), T0))
    assert a.trip.scope == StopScope.CHAIN and a.trip.scope_value == CHAIN and "block 20" in a.trip.reason
    # per-chain ceiling, from ExecutionStarted
    [b] = stops(e.on_message(Domain.EXECUTION, started(2, max_fee=2 * S, chain=10), T0))
    assert b.trip.scope_value == 10 and "max fee" in b.trip.reason


# ---------------------------------------------------------------- failure rate

FAIL = """
[failure_rate]
window = 10
min_results = 5
max_failure_rate_bps = 5000
"""


def test_failure_rate_trips_when_half_of_the_window_reverts() -> None:
    e = engine(FAIL)
    outcomes = [Outcome.EXECUTED, Outcome.REVERTED] * 2  # 2 of 4: below min_results
    for i, o in enumerate(outcomes):
        assert e.on_message(Domain.EXECUTION, result(i, outcome=o), T0) == []
    # STALE / UNPROFITABLE / SIMULATED are not counted
    for i, o in enumerate([Outcome.STALE, Outcome.UNPROFITABLE, Outcome.SIMULATED] * 5):
        assert e.on_message(Domain.EXECUTION, result(100 + i, outcome=o), T0) == []
    [a] = stops(e.on_message(Domain.EXECUTION, result(9, outcome=Outcome.FAILED, reason="nonce too low"), T0))
    assert a.trip.breaker == "failure_rate" and "3 of the last 5" in a.trip.reason


def test_failure_rate_quiet_with_occasional_reverts() -> None:
    e = engine(FAIL)
    for i in range(200):
        o = Outcome.REVERTED if i % 5 == 0 else Outcome.EXECUTED  # 20 %
        assert e.on_message(Domain.EXECUTION, result(i, outcome=o), T0) == []


# ---------------------------------------------------------------- stale market data

STALE = """
[stale_data]
venues = { uniswap_v2 = 5.0, binance = 2.0 }
"""


def test_stale_venue_trips_after_its_window_and_not_before() -> None:
    e = engine(STALE)
    for i in range(10):  # both venues speak every second for 10 s
        t = T0 + i * SEC
        e.on_message(Domain.MARKET_DATA, reserves(10**21, 2 * 10**12, t_ns=t), t)
        e.on_message(Domain.MARKET_DATA, cex_trade(t_ns=t), t)
        assert e.on_timer(t + SEC // 2) == []
    last = T0 + 9 * SEC
    # binance goes quiet: trips after 2 s, uniswap_v2 keeps talking
    for k in range(1, 5):
        t = last + k * SEC
        e.on_message(Domain.MARKET_DATA, reserves(10**21, 2 * 10**12, t_ns=t), t)
        acts = stops(e.on_timer(t + 1))
        if k < 2:
            assert acts == []
        elif k == 2:
            [a] = acts
            assert a.trip.scope == StopScope.VENUE and a.trip.scope_value == Venue.BINANCE
            assert "binance" in a.trip.reason
        else:
            assert acts == []  # tripped once


def test_stale_configured_venue_that_never_speaks_trips() -> None:
    e = engine(STALE)
    assert e.on_timer(T0) == []
    acts = stops(e.on_timer(T0 + 3 * SEC))
    assert [a.trip.scope_value for a in acts] == [Venue.BINANCE]
    assert "never seen" in acts[0].trip.reason


# ---------------------------------------------------------------- relay gaps


def counters(**kw: int) -> dict[str, int]:
    base = {"received": 0, "delivered": 0, "duplicates": 0, "gaps": 0, "gaps_recovered": 0, "resyncs": 0,
            "lost": 0, "reconnects": 0, "epoch_changes": 0, "lag": 0}
    base.update(kw)
    return base


def test_relay_gap_recovered_in_time_does_not_trip_unresolved_one_does() -> None:
    e = engine("[relay_gaps]\ngrace_s = 2.0\n")
    assert e.on_relay_counters(Domain.MARKET_DATA, counters(), T0) == []
    # a gap, recovered by the resume within the grace: fine
    assert e.on_relay_counters(Domain.MARKET_DATA, counters(gaps=2, reconnects=1), T0 + SEC) == []
    assert e.on_relay_counters(Domain.MARKET_DATA, counters(gaps=2, gaps_recovered=1, reconnects=1), T0 + 2 * SEC) == []
    assert e.on_relay_counters(Domain.MARKET_DATA, counters(gaps=2, gaps_recovered=1, reconnects=1), T0 + 9 * SEC) == []
    # a new gap that stays open
    assert e.on_relay_counters(Domain.SIGNAL, counters(gaps=1), T0 + 10 * SEC) == []
    assert e.on_relay_counters(Domain.SIGNAL, counters(gaps=1), T0 + 11 * SEC) == []
    [a] = stops(e.on_relay_counters(Domain.SIGNAL, counters(gaps=1), T0 + 12 * SEC))
    assert "signal relay: sequence gap unresolved" in a.trip.reason and a.trip.scope == StopScope.ALL


def test_relay_resync_trips_at_once() -> None:
    e = engine("[relay_gaps]\n")
    [a] = stops(e.on_relay_counters(Domain.EXECUTION, counters(resyncs=1, lost=40), T0))
    assert "40 message(s) lost" in a.trip.reason


# ---------------------------------------------------------------- volatility

VOL = """
[volatility]
window = 50
min_samples = 20
max_sigma = 6.0
"""


def test_volatility_trips_on_a_jump_beyond_six_sigma_not_on_a_random_walk() -> None:
    rng = random.Random(7)
    e = engine(VOL)
    r0, r1 = 1000 * ETHER, 2_000_000 * 10**6
    for i in range(300):  # random walk, ~0.1 % per step
        r1 = r1 * (1_000_000 + rng.randint(-1000, 1000)) // 1_000_000
        assert e.on_message(Domain.MARKET_DATA, reserves(r0, r1), T0 + i) == [], i
    [a] = stops(e.on_message(Domain.MARKET_DATA, reserves(r0, r1 * 102 // 100), T0 + 400))  # +2 %
    assert a.trip.breaker == "volatility" and a.trip.scope == StopScope.VENUE
    assert a.trip.scope_value == Venue.UNISWAP_V2 and "sigma" in a.trip.reason


def test_volatility_from_v3_sqrt_price() -> None:
    rng = random.Random(3)
    e = engine(VOL)
    sp = int(math.isqrt(2000 * 2**192 // 10**12))
    for i in range(60):
        sp = sp * (10**6 + rng.randint(-300, 300)) // 10**6
        assert e.on_message(Domain.MARKET_DATA, v3swap(sp), T0 + i) == []
    [a] = stops(e.on_message(Domain.MARKET_DATA, v3swap(sp * 95 // 100), T0 + 100))
    assert a.trip.scope_value == Venue.UNISWAP_V3 and str(POOL_V3.address) in a.trip.reason
    assert POOL_V2 != POOL_V3


# ---------------------------------------------------------------- engine: resume, restore, foreign stops


def test_resume_clears_matching_trips_and_rearms() -> None:
    e = engine(FAIL + GAS)
    for i in range(5):
        e.on_message(Domain.EXECUTION, result(i, outcome=Outcome.REVERTED), T0)
    stops(e.on_message(Domain.MARKET_DATA, block(5, base_fee=400 * S), T0))
    assert {k[0] for k in e.tripped} == {"failure_rate", "gas_price"}
    resume = Message(domain=Domain.EXECUTION, tlvs=(
        Resume(scope=int(StopScope.CHAIN), scope_value=CHAIN, stop_id=0, reason="gas back to normal", sender="ops"),))
    [r] = e.on_message(Domain.EXECUTION, resume, T0 + SEC)
    assert isinstance(r, Resumed) and [t.breaker for t in r.cleared] == ["gas_price"]
    everything = Message(domain=Domain.EXECUTION, tlvs=(
        Resume(scope=int(StopScope.ALL), scope_value=0, stop_id=0, reason="fixed", sender="ops"),))
    [r] = e.on_message(Domain.EXECUTION, everything, T0 + 2 * SEC)
    assert [t.breaker for t in r.cleared] == ["failure_rate"] and not e.tripped
    # the failure window was reset: 4 more reverts are below min_results
    for i in range(4):
        assert stops(e.on_message(Domain.EXECUTION, result(10 + i, outcome=Outcome.REVERTED), T0)) == []


def test_restored_trips_are_not_tripped_again_and_ids_continue() -> None:
    e = engine(GAS)
    [a] = stops(e.on_message(Domain.MARKET_DATA, block(5, base_fee=400 * S), T0))
    e2 = engine(GAS, trips=[a.trip], next_stop_id=e.next_stop_id)
    assert stops(e2.on_message(Domain.MARKET_DATA, block(6, base_fee=400 * S), T0)) == []
    assert [s.trip.stop_id for s in e2.reassert()] == [1]
    [b] = stops(e2.on_message(Domain.EXECUTION, started(1, max_fee=400 * S, chain=5), T0))
    assert b.trip.stop_id == 2


def test_foreign_stop_reported_own_echo_ignored() -> None:
    e = engine("")
    own = Message(domain=Domain.EXECUTION, tlvs=(EmergencyStop(scope=0, scope_value=0, stop_id=1, reason="x", sender="risk"),))
    other = Message(domain=Domain.EXECUTION, tlvs=(EmergencyStop(scope=0, scope_value=0, stop_id=9, reason="y", sender="ops"),))
    assert e.on_message(Domain.EXECUTION, own, T0) == []
    [f] = e.on_message(Domain.EXECUTION, other, T0)
    assert isinstance(f, ForeignStop) and f.stop.stop_id == 9


def test_snapshot_restores_daily_pnl() -> None:
    e = engine(DAILY)
    e.on_message(Domain.EXECUTION, result(1, profit=-ETHER * 4 // 10), T0)
    e2 = engine(DAILY, snapshot=e.snapshot())
    assert stops(e2.on_message(Domain.EXECUTION, result(2, profit=-ETHER // 10), T0))
    assert WETH_ID.chain_id == CHAIN


# ---------------------------------------------------------------- reconfigure (SIGHUP)


def test_reconfigure_keeps_the_failure_window_and_unchanged_breakers() -> None:
    e = engine(FAIL.replace("5000", "7000") + "\n[gas_price]\nmax_wei = 300000000000\n")
    gas = next(b for b in e.breakers if b.name == "gas_price")
    for i, o in enumerate([Outcome.REVERTED, Outcome.EXECUTED, Outcome.REVERTED, Outcome.EXECUTED]):
        assert e.on_message(Domain.EXECUTION, result(i, outcome=o), T0) == []
    # 3 failures of 5 (60 %) would not trip at 70 %; at 50 %, with the window kept (a fresh one
    # would hold 1 result, below min_results), the next failure trips
    e.reconfigure(parse_config(FAIL + "\n[gas_price]\nmax_wei = 300000000000\n"))
    assert next(b for b in e.breakers if b.name == "gas_price") is gas  # unchanged: the same object
    [a] = stops(e.on_message(Domain.EXECUTION, result(9, outcome=Outcome.FAILED), T0))
    assert a.trip.breaker == "failure_rate" and "3 of the last 5" in a.trip.reason
    # removing a table turns its breaker off; the stop in force stays until a Resume
    e.reconfigure(parse_config("[gas_price]\nmax_wei = 300000000000\n"))
    assert [b.name for b in e.breakers] == ["gas_price"] and len(e.tripped) == 1
    assert RiskEngine.RELOADABLE == ("daily_loss", "trade_size", "gas_price", "failure_rate", "stale_data",
                                     "relay_gaps", "volatility", "inventory", "leg_open", "chain_stall",
                                     "xchain_inventory", "bridge_overdue")


# ---------------------------------------------------------------- CEX-DEX: inventory per venue, a leg left open


INVENTORY = f"""
[[inventory.assets]]
venue = "binance"
asset = "ETH"
start = {2 * ETHER}
min = {ETHER // 2}
max = {4 * ETHER}
[[inventory.assets]]
venue = "chain"
asset = "{CHAIN}:{WETH_ID.address}"
start = {10 * ETHER}
min = {9 * ETHER}
"""


def test_inventory_out_of_bounds_on_the_exchange_trips_its_venue() -> None:
    e = engine(INVENTORY)
    assert not stops(e.on_message(Domain.EXECUTION, cex_fill(1, 2, ETHER, 2000 * 10**6), T0))  # 2 -> 1 ETH: inside
    (s,) = stops(e.on_message(Domain.EXECUTION, cex_fill(2, 2, ETHER, 2000 * 10**6), T0 + SEC))  # 1 -> 0 ETH: below
    assert s.trip.scope == StopScope.VENUE and s.trip.scope_value == Venue.BINANCE and "binance ETH is 0" in s.trip.reason
    e = engine(INVENTORY)
    (s,) = stops(e.on_message(Domain.EXECUTION, cex_fill(3, 1, 3 * ETHER, 6000 * 10**6), T0))  # 2 -> 5 ETH: above
    assert "outside" in s.trip.reason and "order 3" in s.trip.reason


def test_inventory_of_the_chain_moves_with_the_dex_leg() -> None:
    e = engine(INVENTORY)
    # the CEX sold, the DEX leg bought the base back: chain WETH up (inside); a CEX buy sells it on chain
    assert not stops(e.on_message(Domain.EXECUTION, cex_dex_result(4, Outcome.EXECUTED, dex_base=ETHER, dex_quote=1), T0))
    (s,) = stops(e.on_message(Domain.EXECUTION, cex_dex_result(5, Outcome.EXECUTED, cex_side=1, dex_base=3 * ETHER,
                                                     dex_quote=1), T0))  # 11 -> 8 WETH: below 9
    assert s.trip.scope == StopScope.CHAIN and s.trip.scope_value == CHAIN and "DEX leg" in s.trip.reason
    snap = e.snapshot()
    e2 = engine(INVENTORY, snapshot=snap)  # the balances survive a restart
    assert [b for b in e2.breakers if b.name == "inventory"][0].balances == \
        [b for b in e.breakers if b.name == "inventory"][0].balances


def test_a_leg_left_open_trips_at_once_and_a_silent_fill_after_max_open() -> None:
    e = engine('[leg_open]\nmax_open_s = 5.0\n')
    (s,) = stops(e.on_message(Domain.EXECUTION, cex_dex_result(6, Outcome.LEG_OPEN, left_open=ETHER), T0))
    assert s.trip.scope == StopScope.VENUE and s.trip.scope_value == Venue.BINANCE and "left" in s.trip.reason
    e = engine('[leg_open]\nmax_open_s = 5.0\n')
    assert not stops(e.on_message(Domain.EXECUTION, cex_fill(7, 2, ETHER, 1), T0))
    assert not stops(e.on_timer(T0 + 4 * SEC))
    (s,) = stops(e.on_timer(T0 + 6 * SEC))
    assert "without a result" in s.trip.reason and "signal 7" in s.trip.reason
    # a fill whose signal ends (any way but LEG_OPEN) within the limit never trips
    e = engine('[leg_open]\nmax_open_s = 5.0\nscope = "all"\n')
    e.on_message(Domain.EXECUTION, cex_fill(8, 2, ETHER, 1), T0)
    assert not stops(e.on_message(Domain.EXECUTION, cex_dex_result(8, Outcome.UNWOUND), T0 + SEC))
    assert not stops(e.on_timer(T0 + 60 * SEC))
    # an unfilled order (nothing open) is not a leg
    e.on_message(Domain.EXECUTION, cex_fill(9, 2, 0, 0), T0)
    assert not stops(e.on_timer(T0 + 60 * SEC))
    # a LEG_OPEN result without a LegReport (the executor restarted mid-legs) trips the fill's venue
    e = engine('[leg_open]\nmax_open_s = 5.0\n')
    e.on_message(Domain.EXECUTION, cex_fill(10, 2, ETHER, 1), T0)
    (s,) = stops(e.on_message(Domain.EXECUTION, result(10, outcome=Outcome.LEG_OPEN, reason="restarted"), T0 + SEC))
    assert s.trip.scope == StopScope.VENUE and s.trip.scope_value == Venue.BINANCE and "restarted" in s.trip.reason


# ---------------------------------------------------------------- cross-chain: a chain whose head stops

STALL = """
[chain_stall]
multiple = 10.0
chains = { "1" = 2.0, "2" = 0.25 }
"""


def test_chain_stall_trips_after_the_multiple_of_its_block_time_and_clears_when_heads_resume() -> None:
    e = engine(STALL)
    assert e.on_message(Domain.MARKET_DATA, block(10, base_fee=S, t_ns=T0), T0) == []
    assert e.on_message(Domain.MARKET_DATA, block(500, base_fee=S, chain=2, t_ns=T0), T0) == []
    # chain 2 (0.25 s blocks) trips after 2.5 s without a new head; chain 1 (2 s blocks) not before 20 s
    assert stops(e.on_timer(T0 + 2 * SEC)) == []
    e.on_message(Domain.MARKET_DATA, block(11, base_fee=S, t_ns=T0 + 2 * SEC), T0 + 2 * SEC)
    (s,) = stops(e.on_timer(T0 + 2 * SEC + SEC // 2 + 1))
    assert (s.trip.breaker, s.trip.scope, s.trip.scope_value) == ("chain_stall", StopScope.CHAIN, 2)
    assert "chain 2 head stalled: no new block for 2.5 s (last block 500)" in s.trip.reason
    assert "10 x 0.25 s block time = 2.5 s" in s.trip.reason
    assert stops(e.on_timer(T0 + 5 * SEC)) == []  # tripped once
    # a header that is not new (the same head again, a reorg at its height) does not clear it
    again = e.on_message(Domain.MARKET_DATA, block(500, base_fee=S, chain=2, t_ns=T0 + 6 * SEC), T0 + 6 * SEC)
    assert again == [] and ("chain_stall", int(StopScope.CHAIN), 2) in e.tripped
    # the next new head lifts exactly that stop: a Resume naming its id, from risk
    (c,) = e.on_message(Domain.MARKET_DATA, block(501, base_fee=S, chain=2, t_ns=T0 + 7 * SEC), T0 + 7 * SEC)
    assert isinstance(c, Cleared) and c.trip.stop_id == s.trip.stop_id and not e.tripped
    assert "chain 2 head advanced to block 501 after 7.0 s without one" in c.reason
    r = cleared_resume(c, e.sender)
    assert (r.scope, r.scope_value, r.stop_id, r.sender) == (int(StopScope.CHAIN), 2, s.trip.stop_id, "risk")
    # our own Resume coming back on the execution relay changes nothing and is not reported
    assert e.on_message(Domain.EXECUTION, Message(domain=Domain.EXECUTION, tlvs=(r,)), T0 + 7 * SEC) == []
    # silent again: chain 2 trips anew (a new stop id); chain 1 keeps its longer window, 20 s after its last head
    assert [x.trip.scope_value for x in stops(e.on_timer(T0 + 21 * SEC))] == [2]
    assert [x.trip.scope_value for x in stops(e.on_timer(T0 + 23 * SEC))] == [1]


def test_chain_stall_never_seen_trips_restored_stop_lifts_on_first_head_and_resume_rearms() -> None:
    e = engine(STALL)
    assert stops(e.on_timer(T0)) == []
    (s,) = [x for x in stops(e.on_timer(T0 + 3 * SEC))]
    assert s.trip.scope_value == 2 and "no block seen since risk started" in s.trip.reason
    # a restart keeps the stop (state file); the first head after it lifts it
    e2 = engine(STALL, trips=[s.trip], next_stop_id=e.next_stop_id)
    (c,) = e2.on_message(Domain.MARKET_DATA, block(7, base_fee=S, chain=2, t_ns=T0 + 4 * SEC), T0 + 4 * SEC)
    assert isinstance(c, Cleared) and c.trip.stop_id == s.trip.stop_id
    # auto_clear = false: only an operator's Resume lifts it, and the window starts afresh from the resume
    e3 = engine(STALL + "auto_clear = false\n")
    e3.on_message(Domain.MARKET_DATA, block(7, base_fee=S, chain=2, t_ns=T0), T0)
    (s,) = [x for x in stops(e3.on_timer(T0 + 3 * SEC)) if x.trip.scope_value == 2]
    assert e3.on_message(Domain.MARKET_DATA, block(8, base_fee=S, chain=2, t_ns=T0 + 4 * SEC), T0 + 4 * SEC) == []
    assert ("chain_stall", int(StopScope.CHAIN), 2) in e3.tripped
    resume = Message(domain=Domain.EXECUTION, tlvs=(
        Resume(scope=int(StopScope.CHAIN), scope_value=2, stop_id=0, reason="chain is back", sender="ops"),))
    (r,) = e3.on_message(Domain.EXECUTION, resume, T0 + 10 * SEC)
    assert isinstance(r, Resumed) and [t.breaker for t in r.cleared] == ["chain_stall"]
    assert not [x for x in stops(e3.on_timer(T0 + 12 * SEC)) if x.trip.scope_value == 2]
    assert [x.trip.scope_value for x in stops(e3.on_timer(T0 + 13 * SEC))] == [2]


def test_chain_stall_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="chain_stall.chains: no chain has a block time"):
        parse_config("[chain_stall]\nmultiple = 3.0\n")
    with pytest.raises(ConfigError, match=r"chain_stall.chains.x: chain ids are integers"):
        parse_config('[chain_stall]\nchains = { x = 1.0 }\n')
    with pytest.raises(ConfigError, match=r"chain_stall.multiple: must be positive"):
        parse_config('[chain_stall]\nchains = { "1" = 1.0 }\nmultiple = 0.0\n')


# ---------------------------------------------------------------- cross-chain: inventory shares, bridge transfers

ASSETS = f"""
[[assets]]
name = "USDC"
tokens = [{{ chain_id = 1, address = "{USDC_ID.address}" }}, {{ chain_id = 2, address = "{USDC_ID.address}" }}]
[[assets]]
name = "WETH"
tokens = [{{ chain_id = 1, address = "{WETH_ID.address}" }}, {{ chain_id = 2, address = "{WETH_ID.address}" }}]
"""
SHARES = ASSETS + f"""
[xchain_inventory]
scope = "chain"
[[xchain_inventory.assets]]
asset = "USDC"
start = {{ "1" = {5000 * 10**6}, "2" = {5000 * 10**6} }}
max_share_bps = 7000
"""


def _xtrade(sid: int, usdc_in: int, usdc_out: int, *, src: int = 1, dst: int = 2):  # type: ignore[no-untyped-def]
    from risk_testkit import chain_leg, cross_chain_result

    from protocol.ids import TokenId

    legs = (chain_leg(sid, 0, chain=src, token_in=TokenId.of(src, USDC_ID.address),
                      token_out=TokenId.of(src, WETH_ID.address), amount_in=usdc_in, amount_out=ETHER),
            chain_leg(sid, 1, chain=dst, token_in=TokenId.of(dst, WETH_ID.address),
                      token_out=TokenId.of(dst, USDC_ID.address), amount_in=ETHER, amount_out=usdc_out))
    return cross_chain_result(sid, legs, t_ns=T0)


def test_xchain_inventory_trips_the_chain_holding_too_much_and_lifts_when_a_rebalance_lands() -> None:
    from risk_testkit import bridge

    from protocol.execution import BridgeTransferState as BT

    e = engine(SHARES)
    # each trade moves 2000 USDC from chain 1 to chain 2 (+30 profit): 5000/5000 -> 3000/7030 (70.09 %)
    assert stops(e.on_message(Domain.EXECUTION, _xtrade(1, 1000 * 10**6, 1015 * 10**6), T0)) == []  # 4000/6015: 60 %
    # the executor republishes the same result after a restart: its legs count once
    assert stops(e.on_message(Domain.EXECUTION, _xtrade(1, 1000 * 10**6, 1015 * 10**6), T0)) == []
    (s,) = stops(e.on_message(Domain.EXECUTION, _xtrade(2, 1000 * 10**6, 1015 * 10**6), T0))
    assert (s.trip.breaker, s.trip.scope, s.trip.scope_value) == ("xchain_inventory", StopScope.CHAIN, 2)
    assert "USDC: chain 2 holds 70.1 % of 10030000000 (7030000000; 0 in flight), above the bound 70 %" in s.trip.reason
    assert "signal 2's cross-chain legs" in s.trip.reason
    # the rebalancer sends 2000 USDC back from chain 2: in flight counts in the whole, the stop lifts at SENT
    (c,) = e.on_message(Domain.EXECUTION, bridge(1, BT.SENT, amount=2000 * 10**6, nonce=0), T0 + SEC)
    assert isinstance(c, Cleared) and c.trip.stop_id == s.trip.stop_id and "back within its share" in c.reason
    # it lands (1 USDC fee); the same records again (a rebalancer restart republishes) count once
    for _ in range(2):
        assert e.on_message(Domain.EXECUTION, bridge(1, BT.SENT, amount=2000 * 10**6, nonce=0), T0 + SEC) == []
        assert e.on_message(Domain.EXECUTION, bridge(1, BT.COMPLETED, amount=2000 * 10**6, fee=10**6, nonce=0),
                            T0 + 2 * SEC) == []
    xi = next(b for b in e.breakers if b.name == "xchain_inventory")
    assert xi.balances == {"USDC": {1: 4999 * 10**6, 2: 5030 * 10**6}} and xi.in_flight == {"USDC": 0}
    # a restart: balances from the snapshot; a stop restored from the state file lifts on the first tick when
    # the books no longer justify it
    e2 = engine(SHARES, snapshot=e.snapshot(), trips=[s.trip], next_stop_id=e.next_stop_id)
    assert next(b for b in e2.breakers if b.name == "xchain_inventory").balances == xi.balances
    (c2,) = e2.on_timer(T0 + 3 * SEC)
    assert isinstance(c2, Cleared) and c2.trip.stop_id == s.trip.stop_id and not e2.tripped
    assert e2.on_timer(T0 + 4 * SEC) == []


def test_xchain_inventory_scope_all_and_config_refusals() -> None:
    e = engine(SHARES.replace('scope = "chain"', 'scope = "all"').replace("7000", "6000"))
    (s,) = stops(e.on_message(Domain.EXECUTION, _xtrade(1, 1500 * 10**6, 1500 * 10**6, src=2, dst=1), T0))
    assert (s.trip.scope, s.trip.scope_value) == (StopScope.ALL, 0) and "chain 1 holds 65.0 %" in s.trip.reason
    # a configured start already beyond the bound trips at the first tick
    e = engine(SHARES.replace(f'"1" = {5000 * 10**6}', f'"1" = {9000 * 10**6}').replace(f'"2" = {5000 * 10**6}',
                                                                                       f'"2" = {1000 * 10**6}'))
    (s,) = stops(e.on_timer(T0))
    assert s.trip.scope_value == 1 and "chain 1 holds 90.0 %" in s.trip.reason and "after start" in s.trip.reason
    with pytest.raises(ConfigError, match=r"xchain_inventory.assets\[0\].asset: asset DAI is not in \[\[assets\]\]"):
        parse_config(ASSETS + '[[xchain_inventory.assets]]\nasset = "DAI"\n')
    with pytest.raises(ConfigError, match=r"xchain_inventory.assets\[0\].start.9: asset USDC has no token on chain 9"):
        parse_config(ASSETS + '[[xchain_inventory.assets]]\nasset = "USDC"\nstart = { "9" = 1 }\n')
    with pytest.raises(ConfigError, match=r"xchain_inventory.assets\[0\].max_share_bps: must be 1..10000"):
        parse_config(ASSETS + '[[xchain_inventory.assets]]\nasset = "USDC"\nmax_share_bps = 0\n')


def test_bridge_transfer_overdue_trips_its_destination_and_lifts_when_it_completes() -> None:
    from risk_testkit import bridge

    from protocol.execution import BridgeTransferState as BT

    e = engine("[bridge_overdue]\nmax_transfer_s = 60.0\n")
    # sent at T0 (its block time), chain 2 -> chain 1
    assert e.on_message(Domain.EXECUTION, bridge(5, BT.SENT, amount=10**9, nonce=3, t_ns=T0), T0) == []
    assert stops(e.on_timer(T0 + 60 * SEC)) == []
    (s,) = stops(e.on_timer(T0 + 61 * SEC))
    assert (s.trip.breaker, s.trip.scope, s.trip.scope_value) == ("bridge_overdue", StopScope.CHAIN, 1)
    assert "bridge transfer 5 (chain 2 -> 1, 1000000000 units) sent 61.0 s ago and not completed; limit 60 s" \
        in s.trip.reason
    assert stops(e.on_timer(T0 + 70 * SEC)) == []  # tripped once
    (c,) = e.on_message(Domain.EXECUTION, bridge(5, BT.COMPLETED, amount=10**9, fee=5, nonce=3, t_ns=T0 + 80 * SEC),
                        T0 + 80 * SEC)
    assert isinstance(c, Cleared) and c.trip.stop_id == s.trip.stop_id and "no bridge transfer is overdue" in c.reason
    # the SENT replayed after its completion does not reopen it; refused / failed transfers never left
    e.on_message(Domain.EXECUTION, bridge(5, BT.SENT, amount=10**9, nonce=3, t_ns=T0), T0 + 81 * SEC)
    e.on_message(Domain.EXECUTION, bridge(6, BT.REFUSED, amount=10**9, t_ns=T0), T0 + 81 * SEC)
    e.on_message(Domain.EXECUTION, bridge(7, BT.FAILED, amount=10**9, t_ns=T0), T0 + 81 * SEC)
    assert stops(e.on_timer(T0 + 1000 * SEC)) == []
    # a transfer open across a restart (snapshot) trips when due; scope all
    e = engine("[bridge_overdue]\nmax_transfer_s = 60.0\nscope = \"all\"\n")
    e.on_message(Domain.EXECUTION, bridge(8, BT.SENT, amount=1, nonce=4, t_ns=T0), T0)
    e2 = engine("[bridge_overdue]\nmax_transfer_s = 60.0\nscope = \"all\"\n", snapshot=e.snapshot())
    (s,) = stops(e2.on_timer(T0 + 61 * SEC))
    assert (s.trip.scope, s.trip.scope_value) == (StopScope.ALL, 0)


def test_daily_loss_counts_both_legs_gas_of_a_cross_chain_result() -> None:
    from risk_testkit import chain_leg, cross_chain_result

    from protocol.ids import TokenId

    e = engine(f"""
[daily_loss.tokens."1:{USDC_ID.address}"]
max_loss = {1000 * 10**6}
gas_per_eth = {2000 * 10**6}
""")
    legs = (chain_leg(1, 0, chain=1, token_in=USDC_ID, token_out=WETH_ID, amount_in=1, amount_out=1,
                      gas_used=100_000, gas_price=S),
            chain_leg(1, 1, chain=2, token_in=TokenId.of(2, WETH_ID.address), token_out=TokenId.of(2, USDC_ID.address),
                      amount_in=1, amount_out=1, gas_used=10**9, gas_price=10**9, unwind_gas=0))
    # the source leg's gas alone (the result's own fields) is 0.0001 ETH = 0.2 USDC, a day 0.8 USDC up; with the
    # destination leg's 1e18 wei (1 ETH = 2000 USDC) it is 1999.2 USDC down, beyond the 1000 USDC limit
    msg = cross_chain_result(1, legs, profit=10**6, gas_used=100_000, gas_price=S)
    (s,) = stops(e.on_message(Domain.EXECUTION, msg, T0))
    dl = next(b for b in e.breakers if b.name == "daily_loss")
    assert dl.pnl[USDC_ID] == 10**6 - 2000 * 10**6 - 200_000 and s.trip.breaker == "daily_loss"


def test_a_cross_chain_leg_left_open_stops_everything_naming_its_chain() -> None:
    from risk_testkit import chain_leg, cross_chain_result

    from protocol.execution import DexLegResult
    from protocol.ids import TokenId

    legs = (chain_leg(3, 0, chain=1, token_in=USDC_ID, token_out=WETH_ID, amount_in=2000 * 10**6, amount_out=ETHER,
                      outcome=Outcome.LEG_OPEN, left_open=ETHER),
            chain_leg(3, 1, chain=2, token_in=TokenId.of(2, WETH_ID.address), token_out=TokenId.of(2, USDC_ID.address),
                      amount_in=ETHER, amount_out=0, outcome=Outcome.LEG_OPEN, result=DexLegResult.REVERTED))
    e = engine('[leg_open]\nmax_open_s = 5.0\n')
    (s,) = stops(e.on_message(Domain.EXECUTION, cross_chain_result(3, legs, outcome=Outcome.LEG_OPEN), T0))
    assert (s.trip.scope, s.trip.scope_value) == (StopScope.ALL, 0)
    assert f"signal 3 left {ETHER} of token {WETH_ID.address} open on chain 1 (cross-chain leg 0" in s.trip.reason
    # an unwound cross-chain signal leaves nothing open
    e = engine('[leg_open]\nmax_open_s = 5.0\n')
    unwound = tuple(dataclasses.replace(x, outcome=int(Outcome.UNWOUND), left_open=0) for x in legs)
    assert stops(e.on_message(Domain.EXECUTION, cross_chain_result(4, unwound, outcome=Outcome.UNWOUND), T0)) == []


def test_the_remembered_transfer_states_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from risk_testkit import bridge

    import risk.breakers as rb
    from protocol.execution import BridgeTransferState as BT

    monkeypatch.setattr(rb, "SEEN_KEPT", 3)
    e = engine("[bridge_overdue]\n")
    for n in range(5):
        e.on_message(Domain.EXECUTION, bridge(n, BT.COMPLETED, amount=1, nonce=n), T0)
    bo = next(b for b in e.breakers if b.name == "bridge_overdue")
    assert list(bo.done) == ["2:n2", "2:n3", "2:n4"] and bo.snapshot()["done"] == ["2:n2", "2:n3", "2:n4"]
