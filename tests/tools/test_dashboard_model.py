"""DashboardModel: scripted bus streams in, expected panel state out (no textual, no relays)."""

from __future__ import annotations

import time

from protocol.execution import ExecutionResult, ExecutionStarted, Outcome
from protocol.header import Domain
from protocol.ids import PoolId, TokenId, Venue, VenueKind
from protocol.market import BlockHeader, PoolSnapshot, StateInvalidation, V2Reserves, V2Swap, V3Swap
from protocol.message import Message, decode, encode
from protocol.signals import ArbitragePath, Economics, Hop, SignalIdentity, SignalKind
from protocol.system import EmergencyStop, Resume, StopScope, TraceContext
from tools.dashboard import views
from tools.dashboard.model import DashboardModel

USDC = "0x" + "a0" * 20
WETH = "0x" + "c0" * 20
V2_POOL = PoolId.of(1, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, "0x" + "11" * 20, USDC, WETH)
V3_POOL = PoolId.of(1, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, "0x" + "22" * 20, USDC, WETH)
WETH_ID = TokenId.of(1, WETH)
T0 = 1_700_000_000_000_000_000


def msg(domain: Domain, seq: int, *tlvs, t: int = T0) -> Message:
    """A message as a consumer receives it: through the wire codec, so field types are the decoder's."""
    return decode(encode(Message(domain=int(domain), tlvs=tlvs, domain_seq=seq, event_time_ns=t,
                                 receive_time_ns=t, source_id=1, source_seq=seq)))


def signal_msg(seq: int, signal_id: int, *, net: int = 900, t: int = T0) -> Message:
    ident = SignalIdentity(signal_id=signal_id, strategy_id=3, kind=int(SignalKind.TWO_POOL),
                           confidence_bps=9500, chain_id=1, block_number=19_000_000, strategy="two-pool")
    eco = Economics(profit_token=WETH_ID, gross_profit=net + 600, gas_cost=300, flash_fee=200,
                    slippage_allowance=100, net_profit=net, gas_units=150_000, gas_price_wei=2_000_000_000)
    usdc, weth = bytes.fromhex(USDC[2:]), bytes.fromhex(WETH[2:])
    path = ArbitragePath(hops=(
        Hop(pool=V2_POOL, venue_kind=1, token_in=weth, token_out=usdc, amount_in=10**18, amount_out=2_300_000_000),
        Hop(pool=V3_POOL, venue_kind=2, token_in=usdc, token_out=weth, amount_in=2_300_000_000,
            amount_out=10**18 + 1500),
    ))
    trace = TraceContext(trace_id=0xABC, span_id=1, flags=1, parent_span_id=0, origin_ns=t)
    return msg(Domain.SIGNAL, seq, ident, eco, path, trace, t=t)


def started(signal_id: int, nonce: int = 7) -> ExecutionStarted:
    return ExecutionStarted(signal_id=signal_id, chain_id=1, mode=1, nonce=nonce, tx_hash=b"\x12" * 32,
                            max_fee_per_gas=30_000_000_000, max_priority_fee_per_gas=1_000_000_000,
                            gas_limit=400_000)


def result(signal_id: int, outcome: Outcome, realized: int = 850, reason: str = "") -> ExecutionResult:
    return ExecutionResult(signal_id=signal_id, chain_id=1, outcome=int(outcome), block_number=19_000_001,
                           tx_hash=b"\x12" * 32, gas_used=140_000, effective_gas_price=2_000_000_000,
                           expected_profit=900, realized_profit=realized, profit_token=WETH_ID, reason=reason)


def test_market_keeps_latest_state_per_pool_and_a_ring_of_swaps() -> None:
    m = DashboardModel(max_swaps=3)
    m.on_message(1, msg(Domain.MARKET_DATA, 1, V2Reserves(pool=V2_POOL, block_number=10, log_index=1,
                                                           reserve0=1000, reserve1=2000)), T0)
    m.on_message(1, msg(Domain.MARKET_DATA, 2, V2Reserves(pool=V2_POOL, block_number=11, log_index=1,
                                                           reserve0=1100, reserve1=1900)), T0)
    for i in range(5):
        m.on_message(1, msg(Domain.MARKET_DATA, 3 + i, V3Swap(
            pool=V3_POOL, block_number=12 + i, log_index=i, tx_hash=bytes([i]) * 32, amount0=-5 - i, amount1=7,
            sqrt_price_x96=(1 << 96) * 2 + i, liquidity=10**18 + i, tick=13_863 + i)), T0)
    m.on_message(1, msg(Domain.MARKET_DATA, 8, V2Swap(
        pool=V2_POOL, block_number=17, log_index=0, tx_hash=b"\x09" * 32, sender=b"\x01" * 20, recipient=b"\x02" * 20,
        amount0_in=10, amount1_in=0, amount0_out=0, amount1_out=20)), T0)

    assert len(m.pools) == 2
    v2, v3 = m.pools[V2_POOL], m.pools[V3_POOL]
    assert (v2.reserve0, v2.reserve1, v2.block, v2.updates) == (1100, 1900, 11, 2)
    assert (v3.sqrt_price_x96, v3.liquidity, v3.tick, v3.block) == ((1 << 96) * 2 + 4, 10**18 + 4, 13_867, 16)
    assert len(m.swaps) == 3 and [s.seq for s in m.swaps] == [6, 7, 8]
    assert m.swaps[-1].amounts == (10, -20) and m.swaps[0].amounts == (-8, 7)
    assert views.swap_rows(m)[0][1][:5] == ("8", "17", "0x1111…1111", "10", "-20")
    assert "market" in m.take_changes() and not m.dirty
    rows = views.market_rows(m)
    assert rows[0][0] == f"pool-{V3_POOL}"  # most recently updated first
    assert rows[0][1][6] == "13867" and rows[0][1][1] == "4"
    assert rows[1][1][4:6] == ("1,100", "1,900")


def test_snapshot_and_invalidation_mark_state() -> None:
    m = DashboardModel()
    m.on_message(1, msg(Domain.MARKET_DATA, 1, PoolSnapshot(
        pool=V3_POOL, block_number=5, fee_ppm=500, tick_spacing=10, reserve0=1, reserve1=2,
        sqrt_price_x96=1 << 96, tick=0, liquidity=99, ticks=())), T0)
    m.on_message(1, msg(Domain.MARKET_DATA, 2, StateInvalidation(chain_id=1, pool=V3_POOL, from_block=6,
                                                                  reason=2, detail="reorg")), T0)
    m.on_message(1, msg(Domain.MARKET_DATA, 3, BlockHeader(
        chain_id=1, number=19_000_000, timestamp=1, gas_limit=30_000_000, gas_used=1, hash=b"\x01" * 32,
        parent_hash=b"\x02" * 32, base_fee=12_500_000_000, priority_fee=10**9)), T0)
    assert views.chain_heads_text(m) == "chain 1 block 19,000,000 base fee 12.500 gwei"
    m.on_message(1, msg(Domain.MARKET_DATA, 4, StateInvalidation(chain_id=1, pool=0, from_block=19_000_000,
                                                                  reason=1, detail="")), T0)
    assert "STALE (disconnect from block 19000000)" in views.chain_heads_text(m)
    p = m.pools[V3_POOL]
    assert (p.fee_ppm, p.liquidity, p.tick) == (500, 99, 0)
    assert p.stale.startswith("reorg from block 6")
    assert views.market_rows(m)[0][1][-1].startswith("STALE")


def test_a_cex_book_shows_its_resync_until_its_next_quote_and_a_cex_hop_names_the_book() -> None:
    from protocol.ids import cex_book_id
    from protocol.market import InvalidationReason, Quote

    book = cex_book_id(Venue.BINANCE, "ETHUSDT", "ETH", "USDT")

    def quote(bid: int) -> Quote:
        return Quote(venue=Venue.BINANCE, price_scale=2, size_scale=8, update_id=9, bid_price=bid, bid_size=1,
                     ask_price=bid + 1, ask_size=1, symbol="ETHUSDT")

    def invalidation(reason: int, detail: str) -> StateInvalidation:
        return StateInvalidation(chain_id=0, pool=book, from_block=41, reason=reason, detail=detail)

    m = DashboardModel()
    m.on_message(1, msg(Domain.MARKET_DATA, 1, invalidation(InvalidationReason.RESYNC, "ETHUSDT: syncing")), T0)
    m.on_message(1, msg(Domain.MARKET_DATA, 2, quote(200_000)), T0)
    row = views.market_rows(m)[0][1]
    assert (row[0], row[2]) == ("ETHUSDT", "binance") and row[4] == "bid 2000" and row[-1] == "ok"
    m.on_message(1, msg(Domain.MARKET_DATA, 3, invalidation(InvalidationReason.DISCONNECT, "ETHUSDT: lost")), T0)
    row = views.market_rows(m)[0][1]
    assert row[-1] == "RESYNC disconnect at update 41: ETHUSDT: lost" and row[4] == "bid -"
    assert not m.pools and not m.chain_invalid  # a book is not a pool, nor a chain
    m.on_message(1, msg(Domain.MARKET_DATA, 4, quote(200_100)), T0)
    assert views.market_rows(m)[0][1][-1] == "ok (resynced 1x)"

    ident = SignalIdentity(signal_id=5, strategy_id=2, kind=int(SignalKind.CEX_DEX), confidence_bps=5000, chain_id=1,
                           block_number=7, strategy="cex-dex")
    usdc, weth = bytes.fromhex(USDC[2:]), bytes.fromhex(WETH[2:])
    path = ArbitragePath(hops=(
        Hop(pool=book, venue_kind=int(VenueKind.CEX), token_in=usdc, token_out=weth, amount_in=2_001_000_000,
            amount_out=10**18),
        Hop(pool=V3_POOL, venue_kind=2, token_in=weth, token_out=usdc, amount_in=10**18, amount_out=2_020_000_000),
    ))
    m.on_message(2, msg(Domain.SIGNAL, 1, ident, path), T0)
    text = views.inspector_text(m, 5)
    assert "1. CEX book BINANCE:ETHUSDT (an order on binance)" in text and "2. pool 0x" + "22" * 20 in text
    assert views.signal_rows(m)[0][1][3] == "cex_dex"


def test_a_cex_dex_signal_shows_its_exchange_orders_both_legs_and_the_balances_they_moved() -> None:
    from market.display import Registry, TokenInfo
    from protocol.execution import CexFill, CexOrderPurpose, DexLegResult, LegReport
    from protocol.market import Side

    usdc_id = TokenId.of(1, USDC)
    reg = Registry(tokens={int(WETH_ID): TokenInfo(symbol="WETH", decimals=18),
                           int(usdc_id): TokenInfo(symbol="USDC", decimals=6)})

    def fill(purpose: int, side: int, base: int, quote: int, order: int) -> CexFill:
        return CexFill(signal_id=9, venue=Venue.BINANCE, side=side, purpose=purpose, order_id=order, base_units=base,
                       quote_units=quote, fee_units=quote // 1000, base_token=WETH_ID, quote_token=usdc_id,
                       symbol="ETHUSDT", base_asset="ETH", quote_asset="USDT")

    m = DashboardModel()
    m.on_message(2, signal_msg(40, 8, t=T0), T0)  # an earlier DEX signal with its result: the P&L line has a point
    m.on_message(3, msg(Domain.EXECUTION, 69, result(8, Outcome.EXECUTED)), T0)
    ident = SignalIdentity(signal_id=9, strategy_id=2, kind=int(SignalKind.CEX_DEX), confidence_bps=5000, chain_id=1,
                           block_number=7, strategy="cex-dex")
    m.on_message(2, msg(Domain.SIGNAL, 41, ident, t=T0 + 1), T0 + 1)
    m.on_message(3, msg(Domain.EXECUTION, 70, fill(CexOrderPurpose.ENTRY, Side.SELL, 2 * 10**18, 4_000_000_000, 1),
                        t=T0 + 2), T0 + 2)
    res = ExecutionResult(signal_id=9, chain_id=1, outcome=int(Outcome.EXECUTED), block_number=8, tx_hash=b"\x01" * 32,
                          gas_used=100_000, effective_gas_price=10**9, expected_profit=30_000_000,
                          realized_profit=31_000_000, profit_token=usdc_id, reason="both legs filled")
    legs = LegReport(signal_id=9, outcome=int(Outcome.EXECUTED), cex_venue=Venue.BINANCE, cex_side=Side.SELL,
                     dex_result=DexLegResult.EXECUTED, base_token=WETH_ID, quote_token=usdc_id,
                     cex_requested=2 * 10**18, cex_filled=2 * 10**18, cex_quote=3_996_000_000, dex_base=2 * 10**18,
                     dex_quote=3_965_000_000, gas_cost=200_000, unwound=0, unwind_quote=0, left_open=0,
                     realized_profit=30_800_000, symbol="ETHUSDT")
    m.on_message(3, msg(Domain.EXECUTION, 71, res, legs, t=T0 + 3), T0 + 3)
    r = m.signals[9]
    assert r.legs == legs and r.status == "EXECUTED" and [s.step for s in r.steps] == ["detected", "cex order", "result"]
    # the LegReport's net (fee and gas paid) replaces the result's gross, once
    assert m.realized_net[usdc_id] == 30_800_000 and m.realized[usdc_id] == 31_000_000
    assert list(m.pnl_points[usdc_id]) == [30_800_000]
    assert m.cex_moved == {(Venue.BINANCE, "ETH"): (WETH_ID, -2 * 10**18), (Venue.BINANCE, "USDT"): (usdc_id, 4_000_000_000)}
    text = views.inspector_text(m, 9, reg)
    assert "CEX entry SELL ETHUSDT on binance, order 1: 2.000000 WETH (ETH) for 4,000.000000 USDC (USDT)" in text
    assert "legs: CEX SELL ETHUSDT on binance: filled 2.000000 WETH of 2.000000 WETH for 3,996.000000 USDC" in text
    assert "DEX executed: 2.000000 WETH / 3,965.000000 USDC, gas 0.200000 USDC" in text
    assert "realized net 30.800000 USDC" in text
    trace = views.tracer_text(m, 9, reg)
    assert "cex order" in trace and "CEX entry SELL ETHUSDT order 1: filled" in trace
    assert "realized, both legs      net 30.800000 USDC   <- authoritative" in trace
    assert "Exchange balances moved by our fills: binance ETH -2.000000, binance USDT +4,000.000000" in \
        views.pnl_risk_text(m, reg)
    # an unwound signal without gas: its legs' (negative) net is counted when the report comes
    m.on_message(3, msg(Domain.EXECUTION, 72, fill(CexOrderPurpose.UNWIND, Side.BUY, 10**18, 2_010_000_000, 2)), T0 + 4)
    unwound = ExecutionResult(signal_id=10, chain_id=1, outcome=int(Outcome.UNWOUND), block_number=0, tx_hash=b"\0" * 32,
                              gas_used=0, effective_gas_price=0, expected_profit=0, realized_profit=0,
                              profit_token=usdc_id, reason="DEX reverted")
    m.on_message(3, msg(Domain.EXECUTION, 73, unwound, LegReport(
        signal_id=10, outcome=int(Outcome.UNWOUND), cex_venue=Venue.BINANCE, cex_side=Side.SELL,
        dex_result=DexLegResult.REVERTED, base_token=WETH_ID, quote_token=usdc_id, cex_requested=10**18,
        cex_filled=10**18, cex_quote=2_000_000_000, dex_base=0, dex_quote=0, gas_cost=0, unwound=10**18,
        unwind_quote=2_010_000_000, left_open=0, realized_profit=-10_000_000, symbol="ETHUSDT")), T0 + 5)
    assert m.realized_net[usdc_id] == 20_800_000 and list(m.pnl_points[usdc_id]) == [30_800_000, 20_800_000]
    assert "unwound 1.000000 WETH for 2,010.000000 USDC" in views.inspector_text(m, 10, reg)


def test_signal_then_execution_traces_to_outcome_and_pnl() -> None:
    m = DashboardModel()
    m.on_message(2, signal_msg(41, 1001, t=T0), T0 + 5)
    assert m.open_signals == 1
    r = m.signals[1001]
    assert r.economics.net_profit == 900 and len(r.path.hops) == 2 and r.status == "OPEN"
    m.on_message(3, msg(Domain.EXECUTION, 70, started(1001), t=T0 + 2_000_000), T0 + 2_000_000)
    assert r.status == "SUBMITTED"
    m.on_message(3, msg(Domain.EXECUTION, 71, result(1001, Outcome.EXECUTED), t=T0 + 14_000_000_000),
                 T0 + 14_000_000_000)
    assert r.status == "EXECUTED" and m.open_signals == 0
    assert [(s.step, s.domain, s.seq) for s in r.steps] == [("detected", 2, 41), ("started", 3, 70),
                                                            ("result", 3, 71)]
    assert r.steps[1].at_ns - r.steps[0].at_ns == 2_000_000
    assert m.realized == {WETH_ID: 850} and m.expected == {WETH_ID: 900}
    assert m.gas_spent == {1: 140_000 * 2_000_000_000} and m.outcomes == {int(Outcome.EXECUTED): 1}

    text = views.inspector_text(m, 1001)
    for needle in ("gross profit", "1,500", "- gas cost", "300", "- flash fee", "200", "- slippage", "100",
                   "= net profit", "900", WETH, "2 hop(s)", "0x" + "11" * 20, "2,300,000,000"):
        assert needle in text, needle
    trace = views.tracer_text(m, 1001)
    assert "detected" in trace and "signal#41" in trace and "execution#70" in trace and "execution#71" in trace
    assert "EXECUTED" in trace and "+14.00 s" in trace and "nonce 7" in trace
    row = dict(zip(views.EXECUTION_COLUMNS, views.execution_rows(m)[0][1]))
    assert row["signal"] == "1001" and row["nonce"] == "7" and row["gas used"] == "140,000"
    assert row["outcome"] == "EXECUTED" and views.EXECUTION_COLUMNS[:3] == ("outcome", "net realized", "realized gross")
    # realized 850 minus the gas paid (140,000 x 2 gwei) at the signal's own rate (300 per 150,000 x 2 gwei): 280
    assert row["realized gross"] == "850" and row["net realized"] == "570" and m.realized_net == {WETH_ID: 570}
    assert "predicted at detection   net 900" in text and "re-validated (executor)  gross 900" in text
    assert "realized on chain        net 570   <- authoritative" in trace


def test_execution_before_signal_and_failures_with_reason() -> None:
    m = DashboardModel()
    m.on_message(3, msg(Domain.EXECUTION, 1, result(5, Outcome.REVERTED, realized=0, reason="K")), T0)
    assert m.signals[5].status == "REVERTED" and m.open_signals == 0
    m.on_message(2, signal_msg(1, 5), T0)  # the signal relay is slower: the record is the same
    r = m.signals[5]
    assert r.identity is not None and r.status == "REVERTED"
    assert [s.step for s in r.steps] == ["detected", "result"]  # in time order, though the result came first
    trace = views.tracer_text(m, 5)  # in time order on screen, and a result without a tx is said so
    assert trace.index("detected") < trace.index("result ") and "started    not sent: REVERTED" in trace
    assert m.realized == {} and m.gas_spent[1] > 0
    assert "REVERTED" in views.execution_rows(m)[0][1] and "K" in views.execution_rows(m)[0][1]


def test_risk_stop_and_resume() -> None:
    m = DashboardModel()
    assert not m.halted
    m.on_message(3, msg(Domain.EXECUTION, 1, EmergencyStop(scope=int(StopScope.ALL), scope_value=0, stop_id=9,
                                                           reason="daily loss", sender="risk")), T0)
    m.on_message(3, msg(Domain.EXECUTION, 2, EmergencyStop(scope=int(StopScope.CHAIN), scope_value=1, stop_id=10,
                                                           reason="gas", sender="ops")), T0)
    assert m.halted and set(m.active_stops) == {9, 10}
    assert "HALTED" in views.pnl_risk_text(m) and "daily loss" in views.pnl_risk_text(m)
    m.on_message(3, msg(Domain.EXECUTION, 3, Resume(scope=int(StopScope.CHAIN), scope_value=1, stop_id=0,
                                                    reason="ok", sender="ops")), T0)
    assert set(m.active_stops) == {9}
    m.on_message(3, msg(Domain.EXECUTION, 4, Resume(scope=int(StopScope.ALL), scope_value=0, stop_id=9,
                                                    reason="ok", sender="ops")), T0)
    assert not m.halted and len(m.risk_events) == 4
    assert "trading" in views.pnl_risk_text(m)


def test_relay_health_from_stream_stats_and_counters() -> None:
    m = DashboardModel()
    m.on_tick(T0)
    for i in range(1, 101):  # 100 messages over one second
        m.on_message(1, msg(Domain.MARKET_DATA, i, V2Reserves(pool=V2_POOL, block_number=1, log_index=0,
                                                               reserve0=1, reserve1=1)), T0 + i * 10_000_000)
    m.on_tick(T0 + 500_000_000)  # window not closed yet
    assert m.health[1].rate == 0
    m.on_tick(T0 + 1_000_000_000)
    assert m.health[1].rate == 100
    m.on_message(1, msg(Domain.MARKET_DATA, 150, V2Reserves(pool=V2_POOL, block_number=1, log_index=0,
                                                             reserve0=1, reserve1=1)), T0 + 2_000_000_000)
    m.on_tick(T0 + 3_000_000_000)
    h = m.health[1]
    assert h.last_seq == 150 and h.seq_jumps == 1 and h.rate == 0.5  # one message over two seconds
    m.on_relay_status(1, connected=True, now_ns=T0 + 2_000_000_000,
                      stats={"head_seq": 175, "epoch": 3, "rate_msgs_per_s": 1234.5, "consumers": [{"name": "strategy", "lag": 3}, {"name": "archiver", "lag": 40}],
                             "producers": [{}]},
                      counters={"gaps": 2, "resyncs": 1, "lost": 10, "reconnects": 3, "lag": 0})
    assert (h.head_seq, h.lag, h.gaps, h.resyncs, h.lost, h.reconnects, h.epoch) == (175, 25, 2, 1, 10, 3, 3)
    m.on_relay_status(2, connected=False, now_ns=T0, error="cannot connect")
    rows = dict(views.health_rows(m))
    assert rows["relay-1"][1] == "up" and rows["relay-1"][4] == "25" and rows["relay-1"][-1] == "archiver lag 40"
    assert rows["relay-2"][1] == "relay down" and rows["relay-3"][1] == "connecting…"


def test_bounded_memory() -> None:
    m = DashboardModel(max_pools=10, max_signals=20)
    for i in range(100):
        pool = PoolId.of(1, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, f"0x{i + 1:040x}", USDC, WETH)
        m.on_message(1, msg(Domain.MARKET_DATA, i + 1, V2Reserves(pool=pool, block_number=i, log_index=0,
                                                                   reserve0=i, reserve1=i)), T0)
        m.on_message(2, signal_msg(i + 1, i), T0)
    assert len(m.pools) == 10 and len(m.signals) == 20 and m.open_signals == 20
    assert min(m.signals) == 80 and m.signals_seen == 100


def test_throughput_100k_messages() -> None:
    """A realistic mix (mostly market data, some signals/execution); prints msgs/s, asserts nothing on time."""
    pools = [PoolId.of(1, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, f"0x{i + 1:040x}", USDC, WETH)
             for i in range(200)]
    stream: list[tuple[int, Message]] = []
    sig = 0
    for i in range(100_000):
        k = i % 100
        if k < 60:
            t = V3Swap(pool=pools[i % 200], block_number=i // 50, log_index=i % 50, tx_hash=b"\x01" * 32,
                       amount0=-i, amount1=i, sqrt_price_x96=(1 << 96) + i, liquidity=10**18, tick=i % 1000)
            stream.append((1, msg(Domain.MARKET_DATA, i + 1, t)))
        elif k < 96:
            t2 = V2Reserves(pool=pools[i % 200], block_number=i // 50, log_index=0, reserve0=i, reserve1=i + 1)
            stream.append((1, msg(Domain.MARKET_DATA, i + 1, t2)))
        elif k < 98:
            sig += 1
            stream.append((2, signal_msg(i + 1, sig)))
        elif k == 98:
            stream.append((3, msg(Domain.EXECUTION, i + 1, started(sig))))
        else:
            stream.append((3, msg(Domain.EXECUTION, i + 1, result(sig, Outcome.EXECUTED))))
    m = DashboardModel()
    on_message = m.on_message
    t0 = time.perf_counter()
    now = T0
    for dom, mm in stream:
        now += 100_000  # 10k msgs/s of bus time
        on_message(dom, mm, now)
    elapsed = time.perf_counter() - t0
    print(f"\ndashboard model: {len(stream) / elapsed:,.0f} msgs/s ({elapsed * 1e3:.0f} ms for {len(stream):,})")
    assert m.messages == 100_000
    assert 0 < len(m.pools) <= 200 and len(m.swaps) == m.swaps.maxlen
    assert len(m.signals) == m.max_signals and m.realized[WETH_ID] == 850 * 1000
    assert m.health[1].last_seq == 99_996 and m.health[2].messages == 2000


def test_pnl_in_the_quote_currency_at_the_latest_pool_state_with_a_sparkline() -> None:
    from market.display import QuoteCurrency, Registry, TokenInfo
    from market.prices import convert_q96

    usdc = int(TokenId.of(1, USDC))
    reg = Registry(tokens={int(WETH_ID): TokenInfo(symbol="WETH", decimals=18), usdc: TokenInfo(symbol="USDC", decimals=6)},
                   quote=QuoteCurrency(name="USD", tokens={1: usdc}, paths={int(WETH_ID): (int(V3_POOL),)},
                                       native={1: int(WETH_ID)}))
    m = DashboardModel()
    for h in m.health.values():
        h.connected = True
    net = 10**16
    m.on_message(2, signal_msg(1, 41, net=net), T0)
    m.on_message(3, msg(Domain.EXECUTION, 1, result(41, Outcome.EXECUTED, realized=2 * 10**16)), T0)
    text = views.pnl_risk_text(m, reg)
    assert "realized net" in text and "USD" not in text  # no pool state yet: no dollar figure, never a guess
    # USDC (0xa0..) is token0: 2,000 USDC per WETH is 1e18/2000e6 token1 per token0
    sqrt = int((10**18 / (2000 * 10**6)) ** 0.5 * (1 << 96))
    m.on_message(1, msg(Domain.MARKET_DATA, 1, V3Swap(pool=V3_POOL, block_number=5, log_index=0, tx_hash=b"\x01" * 32,
                                                      amount0=1, amount1=-1, sqrt_price_x96=sqrt, liquidity=1, tick=0)), T0)
    from tools.dashboard.model import realized_net

    rnet = realized_net(m.signals[41])
    assert rnet is not None
    usd = convert_q96(rnet, sqrt * sqrt >> 96, False)
    text = views.pnl_risk_text(m, reg)
    assert f"(= {usd // 10**6:,}.{usd % 10**6 // 10**4:02d} USD)" in text, text
    gas_usd = convert_q96(140_000 * 2_000_000_000, sqrt * sqrt >> 96, False)  # the native coin valued as WETH
    assert f"(= {gas_usd // 10**6:,}.{gas_usd % 10**6 // 10**4:02d} USD)" in text.split("Gas spent:")[1]
    # a sparkline of the net over time once there are results
    for i in range(2, 6):
        m.on_message(2, signal_msg(i, 40 + i * 10, net=net), T0)
        m.on_message(3, msg(Domain.EXECUTION, i, result(40 + i * 10, Outcome.EXECUTED, realized=i * 10**16)), T0)
    spark = next(line for line in views.pnl_risk_text(m, reg).splitlines() if "over the last" in line)
    assert spark.strip().startswith(views.SPARK[0]) and spark.strip()[4] == views.SPARK[-1]
    assert "realized on chain        net" in views.tracer_text(m, 41, reg) and " USD)" in views.tracer_text(m, 41, reg)


def test_no_data_is_said_not_faked() -> None:
    m = DashboardModel()
    text = views.pnl_risk_text(m)
    assert text.startswith("RISK: unknown -- NO DATA: connecting to the relays") and "none yet -- no data" in text
    m.on_relay_status(int(Domain.SIGNAL), connected=False, now_ns=T0, error="refused")
    assert "NO DATA: relay down: signal" in views.pnl_risk_text(m)
    assert "trading" not in views.pnl_risk_text(m)


def test_cross_chain_legs_and_bridge_transfers_per_chain_counted_once() -> None:
    from market.display import Registry, TokenInfo
    from protocol.execution import BridgeTransfer, BridgeTransferState, ChainLeg, ChainLegReport, DexLegResult
    from protocol.signals import CrossChainArbitrage

    a, b = 31337, 31338
    usdc_a, weth_a = TokenId.of(a, USDC), TokenId.of(a, WETH)
    usdc_b, weth_b = TokenId.of(b, USDC), TokenId.of(b, WETH)
    reg = Registry(tokens={int(t): TokenInfo(symbol=s, decimals=d) for t, s, d in (
        (usdc_a, "USDC", 6), (weth_a, "WETH", 18), (usdc_b, "USDC", 6), (weth_b, "WETH", 18))})
    m = DashboardModel()
    ident = SignalIdentity(signal_id=77, strategy_id=4, kind=int(SignalKind.CROSS_CHAIN), confidence_bps=9000,
                           chain_id=a, block_number=50, strategy="xchain")
    xc = CrossChainArbitrage(source_chain=a, dest_chain=b, bridge=1, timing_risk_blocks=8, bridge_cost=1_000,
                             source_gas_cost=10**14, dest_gas_cost=10**13)
    m.on_message(2, msg(Domain.SIGNAL, 1, ident, xc), T0)

    def leg(which: ChainLeg, chain: int, tin: TokenId, tout: TokenId, amount_in: int, amount_out: int,
            **kw: int) -> ChainLegReport:
        fields = dict(signal_id=77, chain_id=chain, leg=int(which), outcome=int(Outcome.UNWOUND),
                      result=int(DexLegResult.EXECUTED), unwind_result=int(DexLegResult.NOT_SENT), unwind_attempts=0,
                      block_number=60, tx_hash=b"\x01" * 32, gas_used=100_000, effective_gas_price=10**9,
                      token_in=tin, token_out=tout, amount_in=amount_in, min_out=amount_out - 5,
                      amount_out=amount_out, unwind_block_number=0, unwind_tx_hash=bytes(32), unwind_amount_in=0,
                      unwind_amount_out=0, unwind_gas_cost=0, left_open=0, reason="")
        fields.update(kw)
        return ChainLegReport(**fields)

    source = leg(ChainLeg.SOURCE, a, usdc_a, weth_a, 2_000_000_000, 10**18, unwind_result=int(DexLegResult.EXECUTED),
                 unwind_attempts=1, unwind_amount_in=10**18, unwind_amount_out=1_998_000_000,
                 unwind_gas_cost=7 * 10**13)
    dest = leg(ChainLeg.DESTINATION, b, weth_b, usdc_b, 10**18, 0, result=int(DexLegResult.REVERTED),
               min_out=2_020_000_000)
    res = ExecutionResult(signal_id=77, chain_id=a, outcome=int(Outcome.UNWOUND), block_number=61,
                          tx_hash=b"\x01" * 32, gas_used=0, effective_gas_price=0, expected_profit=20_000_000,
                          realized_profit=-2_000_000, profit_token=usdc_a, reason="destination leg reverted")
    for seq in (1, 2):  # the same report twice (a replay after a reconnect) counts once
        m.on_message(3, msg(Domain.EXECUTION, seq, res, source, dest), T0)

    def transfer(state: BridgeTransferState, **kw: int) -> BridgeTransfer:
        fields = dict(transfer_id=3, state=int(state), src_chain=b, dst_chain=a, bridge=1, nonce=0, src_token=usdc_b,
                      dst_token=usdc_a, recipient=b"\x05" * 20, amount=50_000_000_000, fee=0, received=0,
                      src_gas_cost=3 * 10**14, src_tx_hash=b"\x02" * 32, dst_tx_hash=bytes(32),
                      sent_time_ns=T0, completed_time_ns=0, reason="")
        fields.update(kw)
        return BridgeTransfer(**fields)

    m.on_message(3, msg(Domain.EXECUTION, 3, transfer(BridgeTransferState.SENT)), T0)
    assert m.transfers_in_flight == 1
    done = transfer(BridgeTransferState.COMPLETED, fee=5_000_000, received=49_995_000_000,
                    dst_tx_hash=b"\x03" * 32, completed_time_ns=T0 + 8 * 10**9)
    m.on_message(3, msg(Domain.EXECUTION, 4, done), T0)
    m.on_message(3, msg(Domain.EXECUTION, 5, transfer(BridgeTransferState.SENT), done), T0)  # republished
    assert m.transfers_in_flight == 0 and m.transfer_counts == {BridgeTransferState.SENT: 1,
                                                                BridgeTransferState.COMPLETED: 1}
    # the source leg bought 1 WETH for 2,000 USDC and sold it back for 1,998; the destination leg moved nothing
    assert m.chain_moved == {(a, int(usdc_a)): -2_000_000_000 + 1_998_000_000 + 49_995_000_000, (a, int(weth_a)): 0,
                             (b, int(usdc_b)): -50_000_000_000}
    assert m.chain_gas == {a: 10**14 + 7 * 10**13, b: 10**14 + 3 * 10**14}
    assert m.bridge_fees == {int(usdc_a): 5_000_000}
    text = views.pnl_risk_text(m, reg)
    assert "Cross-chain: 1 signal(s)" in text
    assert ("    77 UNWOUND: 31337 2,000.000000 USDC -> 1.000000 WETH | 31338 1.000000 WETH -> 0.000000 USDC "
            "reverted") in text.splitlines()
    assert "moved +49,993.000000 USDC (49993000000)" in text and "moved -50,000.000000 USDC (-50000000000)" in text
    assert "bridge transfers: 0 in flight, 1 completed, 0 refused/failed; fees 5.000000 USDC (5000000)" in text
    assert ("#3 31338 -> 31337: 50,000.000000 USDC (50000000000) COMPLETED, fee 5.000000 USDC (5000000), "
            "received 49,995.000000 USDC (49995000000) after 8 s") in text
    legs = views.inspector_text(m, 77, reg)
    assert "source leg on chain 31337: executed, 2,000.000000 USDC (2000000000) -> 1.000000 WETH" in legs
    assert "unwind executed after 1 attempt(s)" in legs
    assert "destination leg on chain 31338: reverted" in legs
