"""The cross-chain sizing core (strategy/cross_chain.py): a scripted gap between two chains whose
size and net profit are computed by hand here, every term of the CrossChainArbitrage signal, the
inventory caps, the drift term's integer math and the volatility measured from prices."""

from __future__ import annotations

from fractions import Fraction
from math import isqrt

import pytest

from market.pools import V2Pool
from protocol.header import Domain
from protocol.ids import PoolId, TokenId
from protocol.message import Message, decode, encode
from protocol.signals import (
    ArbitragePath,
    CrossChainArbitrage,
    DecisionPoint,
    Economics,
    SignalIdentity,
    SignalKind,
)
from protocol.system import TraceContext
from protocol.tlv import decode_tlvs
from strategy.cross_chain import (
    ChainLeg,
    CrossChainParams,
    CrossChainSizer,
    Volatility,
    ceil_isqrt,
    drift_allowance,
    signal_tlvs,
)

S, D = 31337, 31338
USDC_ADDR, WETH_ADDR = "0x" + "11" * 20, "0x" + "99" * 20  # USDC sorts first: token0 = USDC, token1 = WETH
USDC_S, WETH_S = TokenId.of(S, USDC_ADDR), TokenId.of(S, WETH_ADDR)
USDC_D, WETH_D = TokenId.of(D, USDC_ADDR), TokenId.of(D, WETH_ADDR)
GWEI = 10**9


def pair(chain: int, usdc: int, weth: int) -> V2Pool:
    pid = PoolId.of(chain, 1000, 1, "0x" + "ab" * 20, USDC_ADDR, WETH_ADDR)
    return V2Pool(pool=pid, block_number=1, last_event=(0, 0), reserve0=usdc, reserve1=weth)


# The scripted gap: WETH at 2000 USDC on the source chain (2 s blocks), 2030 on the destination (250 ms).
POOL_S = pair(S, 2_000_000 * 10**6, 1000 * 10**18)
POOL_D = pair(D, 2_030_000 * 10**6, 1000 * 10**18)
PARAMS = CrossChainParams(bridge_id=1, bridge_fee_bps=1, bridge_gas_units=100_000, rebalance_every=10,
                          drift_k_milli=2000)
SIGMA_PPB = 107_000  # ~60 % a year, per √second


def legs(gas_price_s: int = GWEI, gas_price_d: int = GWEI // 10) -> tuple[ChainLeg, ChainLeg]:
    source = ChainLeg(chain_id=S, pool=POOL_S, zero_for_one=True, quote_token=USDC_S, gas_token=WETH_S,
                      price_pools=(POOL_S,), gas_units=150_000, gas_price_wei=gas_price_s, block_time_ms=2000)
    dest = ChainLeg(chain_id=D, pool=POOL_D, zero_for_one=False, quote_token=USDC_D, gas_token=WETH_D,
                    price_pools=(POOL_D,), gas_units=120_000, gas_price_wei=gas_price_d, block_time_ms=250)
    return source, dest


def v2_out(x: int, r_in: int, r_out: int) -> int:
    """Uniswap V2's getAmountOut, written out."""
    return x * 997 * r_out // (r_in * 1000 + x * 997)


def test_a_scripted_gap_sized_and_priced_by_hand():
    source, dest = legs()
    quote = CrossChainSizer(source, dest, PARAMS, SIGMA_PPB).best(quote_inventory=10**12, base_inventory=10**21)
    assert quote is not None

    # -- by hand -------------------------------------------------------------------------------
    us, ws = 2_000_000 * 10**6, 1000 * 10**18  # source: USDC in, WETH out
    ud, wd = 2_030_000 * 10**6, 1000 * 10**18  # destination: WETH in, USDC out
    # Fixed costs in USDC units at each chain's own pool price, rounded up:
    gas_s = -(-150_000 * GWEI * us // ws)  # 1.5e14 wei * 2000 USDC/WETH = 0.3 USDC
    gas_d = -(-120_000 * (GWEI // 10) * ud // wd)  # 1.2e13 wei * 2030 = 0.02436 USDC
    bridge_tx = -(-100_000 * (GWEI // 10) * ud // wd)  # the bridge's send on the destination: 0.0203 USDC
    bridge_gas = -(-bridge_tx // 10)  # a tenth of it per trade
    assert (gas_s, gas_d, bridge_gas) == (300_000, 24_360, 2_030)
    # Drift: k=2, sigma=1.07e-4 per sqrt(s), T = the 2 s chain's block: 2 * 1.07e-4 * sqrt(2) = 3.0264e-4 of x.
    sqrt_t = 1_414_214  # ceil(sqrt(2000 ms * 1e9))
    assert sqrt_t - 1 < (2000 * 10**9) ** 0.5 <= sqrt_t

    def net_variable(x):
        z = v2_out(v2_out(x, us, ws), wd, ud)
        fee = -(-x * 1 // 10_000)
        drift = -(-2000 * 107_000 * sqrt_t * x // 10**18)
        return z - x - fee - drift

    # The continuous optimum: z(x) = A x / (B + C x) for the two pairs, proportional costs phi:
    # z'(x) = A B / (B + C x)^2 = 1 + phi  ->  x* = (sqrt(A B / (1 + phi)) - B) / C.
    a = 997 * ud * 997 * ws  # n·r_out2 · n·r_out1
    b = 1000 * wd * 1000 * us  # d·r_in2 · d·r_in1
    c = 1000 * wd * 997 + 997 * 997 * ws  # d·r_in2·n + n·(n·r_out1)
    phi = Fraction(1, 10_000) + Fraction(2000 * 107_000 * sqrt_t, 10**18)
    x_star = (isqrt(int(Fraction(a * b) / (1 + phi))) - b) // c
    assert 4_000 * 10**6 < x_star < 4_500 * 10**6  # about 4.27k USDC: a 1.5 % gap over two 0.3 % pools
    window = range(x_star - 3000, x_star + 3001)
    best_value = max(net_variable(x) for x in window)

    # -- the core agrees -----------------------------------------------------------------------
    assert abs(quote.amount_in - x_star) <= 2
    assert quote.net_profit == net_variable(quote.amount_in) - gas_s - gas_d - bridge_gas
    assert best_value - 2 <= net_variable(quote.amount_in) <= best_value  # the top is flat: 1 unit per ~85
    assert quote.base_amount == v2_out(quote.amount_in, us, ws)
    assert quote.amount_out == v2_out(quote.base_amount, wd, ud)
    assert quote.source_gas_cost == gas_s and quote.dest_gas_cost == gas_d and quote.bridge_gas_cost == bridge_gas
    assert quote.bridge_fee == -(-quote.amount_in // 10_000)
    assert quote.drift_allowance == -(-2000 * 107_000 * sqrt_t * quote.amount_in // 10**18)
    assert quote.net_profit > 10 * 10**6  # worth more than 10 USDC after everything
    assert (quote.time_to_land_ms, quote.timing_risk_blocks) == (2000, 8)  # 2 s = 8 blocks of the 250 ms chain

    # -- every term of the signal ----------------------------------------------------------------
    tlv = quote.cross_chain_tlv(PARAMS.bridge_id)
    assert tlv == CrossChainArbitrage(source_chain=S, dest_chain=D, bridge=1, timing_risk_blocks=8,
                                      bridge_cost=quote.bridge_fee + bridge_gas, source_gas_cost=150_000 * GWEI,
                                      dest_gas_cost=120_000 * (GWEI // 10))
    (decoded,) = decode_tlvs(tlv.encode(), 0, len(tlv.encode()))
    assert decoded == tlv
    econ = quote.economics_tlv(USDC_S, gas_units=270_000)
    assert econ.net_profit == econ.gross_profit - econ.gas_cost - econ.flash_fee - econ.slippage_allowance
    assert econ.net_profit == quote.net_profit and econ.slippage_allowance == quote.drift_allowance


def test_the_signal_message_layout_encodes_and_decodes():
    """specs/protocol.md "Cross-chain signal": the six records in order, every field from the quote,
    through the wire and back."""
    source, dest = legs()
    quote = CrossChainSizer(source, dest, PARAMS, SIGMA_PPB).best(quote_inventory=10**12, base_inventory=10**21)
    trace = TraceContext(trace_id=77, span_id=5, flags=1, parent_span_id=3, origin_ns=123)
    tlvs = signal_tlvs(quote, source, dest, bridge_id=1, signal_id=5, strategy_id=9, strategy="xc",
                       confidence_bps=5000, source_block=41, dest_position=(330, 2), trace=trace)
    msg = decode(encode(Message(domain=Domain.SIGNAL, tlvs=tlvs, source_id=20, source_seq=1)))
    ident, econ, path, xc, point, tr = msg.tlvs
    assert [type(t) for t in msg.tlvs] == [SignalIdentity, Economics, ArbitragePath, CrossChainArbitrage,
                                           DecisionPoint, TraceContext]
    assert (ident.kind, ident.chain_id, ident.block_number, ident.signal_id, ident.strategy) == (
        SignalKind.CROSS_CHAIN, S, 41, 5, "xc")
    assert econ.profit_token == USDC_S and econ.gas_units == 150_000 + 120_000 and econ.gas_price_wei == 0
    assert econ.gross_profit == quote.amount_out - quote.amount_in and econ.net_profit == quote.net_profit
    assert (econ.gas_cost, econ.flash_fee, econ.slippage_allowance) == (
        quote.source_gas_cost + quote.dest_gas_cost, quote.bridge_fee + quote.bridge_gas_cost, quote.drift_allowance)
    h0, h1 = path.hops
    assert (h0.pool, h0.venue_kind, h0.token_in, h0.token_out) == (
        POOL_S.pool, 1, bytes.fromhex(USDC_ADDR[2:]), bytes.fromhex(WETH_ADDR[2:]))
    assert (h1.pool, h1.token_in, h1.token_out) == (POOL_D.pool, bytes.fromhex(WETH_ADDR[2:]),
                                                    bytes.fromhex(USDC_ADDR[2:]))
    assert (h0.amount_in, h0.amount_out, h1.amount_in, h1.amount_out) == (
        quote.amount_in, quote.base_amount, quote.base_amount, quote.amount_out)
    assert PoolId(h0.pool).chain_id == xc.source_chain == S and PoolId(h1.pool).chain_id == xc.dest_chain == D
    assert xc == quote.cross_chain_tlv(1) and xc.timing_risk_blocks == 8
    assert (point.block_number, point.log_index) == (330, 2) and tr == trace
    with pytest.raises(ValueError):  # legs swapped: not the legs the quote was sized on
        signal_tlvs(quote, dest, source, bridge_id=1, signal_id=5, strategy_id=9, strategy="xc",
                    confidence_bps=5000, source_block=41, dest_position=(330, 2), trace=trace)


def test_no_gap_no_trade_and_the_reverse_direction_loses():
    source, dest = legs()
    flat = CrossChainSizer(ChainLeg(**{**_fields(source), "pool": POOL_D, "price_pools": (POOL_D,)}), dest, PARAMS,
                           SIGMA_PPB).best(10**12, 10**21)
    assert flat is None or flat.net_profit < 0
    rev_s = ChainLeg(**{**_fields(dest), "zero_for_one": True})
    rev_d = ChainLeg(**{**_fields(source), "zero_for_one": False})
    rev = CrossChainSizer(rev_s, rev_d, PARAMS, SIGMA_PPB).best(10**12, 10**21)
    assert rev is None or rev.net_profit < 0


def _fields(leg: ChainLeg) -> dict:
    return {f: getattr(leg, f) for f in ChainLeg.__dataclass_fields__}


def test_inventory_caps_the_size():
    source, dest = legs()
    sizer = CrossChainSizer(source, dest, PARAMS, SIGMA_PPB)
    free = sizer.best(10**12, 10**21)
    by_quote = sizer.best(1_000 * 10**6, 10**21)  # only 1000 USDC on the source chain
    assert 1_000 * 10**6 - 2 <= by_quote.amount_in <= 1_000 * 10**6 < free.amount_in  # flat to the unit there
    by_base = sizer.best(10**12, 10**18)  # only 1 WETH to sell on the destination chain
    assert by_base.base_amount <= 10**18
    edge = by_base.amount_in + next(i for i in range(1, 4) if sizer.quote(by_base.amount_in + i).base_amount > 10**18)
    assert sizer.quote(edge - 1).base_amount <= 10**18 < sizer.quote(edge).base_amount  # the last input that fits
    assert sizer.best(10**12, 0) is None


def test_drift_grows_with_sigma_time_and_k():
    assert ceil_isqrt(0) == 0 and ceil_isqrt(4) == 2 and ceil_isqrt(5) == 3
    base = drift_allowance(10**9, 100_000, 1000, 1000)
    assert base == -(-1000 * 100_000 * ceil_isqrt(10**12) * 10**9 // 10**18) == 100_000  # 1e-4 of 1e9
    assert drift_allowance(10**9, 100_000, 4000, 1000) == 2 * base  # sqrt(4) = 2
    assert drift_allowance(10**9, 200_000, 1000, 3000) == 6 * base
    assert drift_allowance(10**9, 0, 1000, 1000) == 0 and drift_allowance(1, 1, 1, 1) == 1  # rounded up
    # A larger drift allowance shrinks the optimal size.
    source, dest = legs()
    calm = CrossChainSizer(source, dest, PARAMS, 10_000).best(10**12, 10**21)
    wild = CrossChainSizer(source, dest, PARAMS, 2_000_000).best(10**12, 10**21)
    assert wild.amount_in < calm.amount_in and wild.net_profit < calm.net_profit


def test_sizer_equals_brute_force_on_small_pools():
    small_s, small_d = pair(S, 2_000_000, 1000), pair(D, 2_100_000, 1000)
    source = ChainLeg(chain_id=S, pool=small_s, zero_for_one=True, quote_token=USDC_S, gas_token=WETH_S,
                      price_pools=(small_s,), gas_units=1, gas_price_wei=1, block_time_ms=2000)
    dest = ChainLeg(chain_id=D, pool=small_d, zero_for_one=False, quote_token=USDC_D, gas_token=WETH_D,
                    price_pools=(small_d,), gas_units=1, gas_price_wei=1, block_time_ms=250)
    params = CrossChainParams(bridge_id=1, bridge_fee_bps=30, bridge_gas_units=1, rebalance_every=1,
                              drift_k_milli=1000)
    sizer = CrossChainSizer(source, dest, params, 1_000_000)
    quote = sizer.best(60_000, 10**6)
    brute = max(v for x in range(1, 60_001) if (v := sizer.net_before_fixed(x)) is not None)
    assert brute - 2 <= sizer.net_before_fixed(quote.amount_in) <= brute


def test_volatility_from_prices():
    vol = Volatility(alpha_ppm=1_000_000)  # the last sample only
    vol.on_price(0, 2000, 1)
    assert vol.sigma_ppb == 0
    vol.on_price(10**9, 2002, 1)  # +0.1 % in one second: r = 1e6 ppb, sigma = 1e6 ppb per sqrt(s)
    assert vol.sigma_ppb == 1_000_000
    vol.on_price(5 * 10**9, 2002 * 1002, 1000)  # +0.2 % in four seconds: sigma = 2e6 / 2
    assert vol.sigma_ppb == 1_000_000
    vol.on_price(5 * 10**9, 1, 1)  # the same instant: ignored
    assert vol.samples == 2
    smooth = Volatility(alpha_ppm=500_000)
    for t, p in enumerate((2000, 2002, 2000, 2002)):
        smooth.on_price(t * 10**9, p, 1)
    assert 0 < smooth.sigma_ppb <= 1_000_000
    with pytest.raises(ValueError):
        Volatility(alpha_ppm=0)


def test_volatility_over_a_window_with_a_floor():
    """Window mode (what the strategy runs): sigma^2 = sum(r^2) * 1e9 / sum(dt) over the returns that
    ended within the window, never below the floor; figures by hand."""
    vol = Volatility(window_ns=10 * 10**9, floor_ppb=1_000)
    assert vol.sigma_ppb == 1_000  # nothing measured: the floor
    vol.on_price(0, 2000, 1)
    assert vol.sigma_ppb == 1_000 and vol.in_window == 0  # one price is no return
    vol.on_price(10**9, 2002, 1)  # +0.1 % over 1 s: r = 1e6 ppb
    assert vol.variance == 10**12 and vol.sigma_ppb == 1_000_000
    vol.on_price(5 * 10**9, 2002 * 1004, 1000)  # +0.4 % over 4 s: r = 4e6 ppb
    # (1e12 + 16e12) * 1e9 / 5e9 = 3.4e12; sqrt = 1843908.89 -> 1843909 (rounded up)
    assert vol.variance == 34 * 10**11 and vol.sigma_ppb == 1_843_909 == isqrt(34 * 10**11) + 1
    vol.on_price(5 * 10**9, 1, 1)  # the same instant: not a return
    assert vol.in_window == 2 and vol.samples == 2
    vol.advance(11 * 10**9)  # the first return ended at 1 s = 11 s - 10 s: it leaves the window
    assert vol.in_window == 1 and vol.variance == 16 * 10**12 // 4 and vol.sigma_ppb == 2_000_000
    vol.advance(3 * 10**9)  # the window never moves back
    assert vol.in_window == 1
    vol.advance(15 * 10**9)  # quiet for a whole window: the floor again
    assert vol.in_window == 0 and vol.variance == 0 and vol.sigma_ppb == 1_000
    vol.on_price(16 * 10**9, 2002 * 1004 * 999, 10**6)  # -0.1 % over 11 s, measured from the 5 s price
    r = (2002 * 1004 * 999 * 1000 - 2002 * 1004 * 10**6) * 10**9 // (2002 * 1004 * 10**6)
    assert r == -1_000_000 and vol.variance == r * r * 10**9 // (11 * 10**9) == 90_909_090_909
    assert vol.sigma_ppb == isqrt(90_909_090_909) + 1 == 301_512
    low = Volatility(window_ns=10**9, floor_ppb=20_000_000)  # a floor above the measure wins
    low.on_price(0, 100, 1)
    low.on_price(10**9, 101, 1)  # +1 % in 1 s: 1e7 ppb per sqrt(s)
    assert low.variance == 10**14 and low.sigma_ppb == 20_000_000
    assert Volatility(alpha_ppm=1_000_000, floor_ppb=7).sigma_ppb == 7  # the floor holds in EWMA mode too
    for bad in ({"window_ns": 0}, {"floor_ppb": -1}):
        with pytest.raises(ValueError):
            Volatility(**bad)
