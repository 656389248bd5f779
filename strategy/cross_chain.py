"""Cross-chain arbitrage from inventory: the sans-IO sizing core (issue 14, point 3).

Theory of operation
-------------------
One asset pair (base, quote) trades on two chains, each in its own pool; the configuration says
which tokens are one asset (``runtime/assets.py``), the ids stay exact per chain. Where the base is
cheaper (the *source* chain) we spend ``x`` of the quote asset for ``y`` base; at the same time, on
the *destination* chain, we sell exactly ``y`` base from inventory there for ``z`` quote. Both legs
run from inventory, so the quote asset moves from the source chain to the destination chain and
the base the other way; the position in each asset is unchanged once both legs land.

The two legs chain amounts exactly like a two-hop path (the second hop's input *is* the first's
output), so ``z(x)`` is the exact integer composition of the two pools' curves (``market/amm``
through ``strategy/optimize.evaluate``). Every term below is in the quote asset's base units, at
integer precision, costs rounded up:

* gross ``z(x) - x``;
* gas on each chain, ``gas_units · gas_price`` wei of that chain's gas token, converted to that
  chain's quote token through that chain's pools (``market/prices.convert``, rounded up);
* bridge-back, the amortised cost of returning ``x`` of the quote asset to the source chain through
  the bridge (CCTP-like: ``specs/bridge-standin.md``): ``⌈x · fee_bps / 10⁴⌉`` plus the bridge
  transaction's gas on the destination chain divided by ``rebalance_every`` (one bridge transfer
  returns the inventory of that many trades), rounded up;
* drift: until both legs land, the price may move against the leg still open. With ``σ`` the
  relative volatility per √second measured from market data (:class:`Volatility`, parts per billion)
  and ``T`` the time until both legs land (the slower chain's ``inclusion_blocks · block_time``),
  the allowance is ``k · σ · √T · x``, in integers::

      drift(x) = ⌈k_milli · σ_ppb · ⌈√(T_ms · 10⁹)⌉ · x / 10¹⁸⌉

  (``√(T_ms / 10³) = √(T_ms · 10⁹) / 10⁶``; ``k = k_milli / 10³``, ``σ = σ_ppb / 10⁹``).

``net(x) = z(x) - x - ⌈x·fee⌉ - drift(x) - gas_source - gas_dest - bridge_gas/rebalance_every``:
the proportional costs ``φ = fee + k·σ·√T`` make the optimum smaller than the bare path's. ``z``
is concave, so ``net``'s slope ``z'(x) - (1 + φ)`` decreases: bisection on its sign, with ``z'``
read from both pools' exact local models at ``x`` (``strategy/optimize.evaluate_with_model``),
finds the continuous optimum, and the integers within one unit of the base token's worth around it
are evaluated exactly (the floors and ceilings make a staircase; as in ``strategy/optimize.py``, on
a flat top the kept value can be a unit or two below the brute-force maximum). ``cap`` is the source inventory of the quote asset; the
destination inventory of the base bounds ``y``: the largest ``x`` whose ``y`` fits is found by
bisection on the monotone ``y(x)`` and caps the search.

The timing risk in blocks (``CrossChainArbitrage.timing_risk_blocks``) is ``T`` counted in blocks of
the faster chain: how many of its blocks its leg stays exposed while the other lands.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from math import isqrt

from market.pools import PoolState
from market.prices import convert
from protocol.ids import PoolId, TokenId
from protocol.signals import (
    ArbitragePath,
    CrossChainArbitrage,
    DecisionPoint,
    Economics,
    Hop,
    SignalIdentity,
    SignalKind,
)
from protocol.system import TraceContext
from protocol.tlv import TLV

from .optimize import Leg, compose_at_zero, evaluate, evaluate_with_model

BPS = 10_000
DRIFT_SCALE = 10**18  # k_milli (10³) · σ_ppb (10⁹) · √(T_ms·10⁹) (10⁶)
NEIGHBOURHOOD = 2


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def ceil_isqrt(n: int) -> int:
    s = isqrt(n)
    return s if s * s == n else s + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainLeg:
    """One chain's side: its pool and swap direction, its gas, its tokens and its clock."""

    chain_id: int
    pool: PoolState
    zero_for_one: bool
    quote_token: TokenId  # this chain's token of the quote (profit) asset
    gas_token: TokenId  # this chain's gas token (wrapped), priced through ``price_pools``
    price_pools: tuple[PoolState, ...]  # this chain's pools pairing gas_token and quote_token
    gas_units: int
    gas_price_wei: int
    block_time_ms: int
    inclusion_blocks: int = 1  # blocks until this leg's transaction is included

    def gas_cost_quote(self, gas_units: int) -> int:
        """``gas_units`` at this chain's gas price, in this chain's quote token (rounded up)."""
        wei = gas_units * self.gas_price_wei
        value = convert(wei, self.gas_token, self.quote_token, self.price_pools, round_up=True)
        if value is None:
            raise ValueError(f"chain {self.chain_id}: no pool prices its gas token in the quote token")
        return value


@dataclass(frozen=True, slots=True, kw_only=True)
class CrossChainParams:
    bridge_id: int  # CrossChainArbitrage.bridge: which bridge returns the inventory
    bridge_fee_bps: int
    bridge_gas_units: int  # the bridge transaction (send) on the destination chain
    rebalance_every: int  # trades whose inventory one bridge transfer returns
    drift_k_milli: int  # k, in thousandths
    min_net_profit: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.bridge_fee_bps <= BPS and self.rebalance_every >= 1 and self.drift_k_milli >= 0):
            raise ValueError("bridge_fee_bps in [0, 10000], rebalance_every >= 1, drift_k_milli >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class CrossChainQuote:
    """Every term of one sized opportunity, in the quote asset's units unless named ``_wei``."""

    source_chain: int
    dest_chain: int
    amount_in: int  # quote spent on the source chain
    base_amount: int  # base bought on the source chain = sold on the destination chain
    amount_out: int  # quote received on the destination chain
    source_gas_wei: int
    dest_gas_wei: int
    source_gas_cost: int
    dest_gas_cost: int
    bridge_fee: int
    bridge_gas_cost: int  # amortised
    drift_allowance: int
    time_to_land_ms: int
    timing_risk_blocks: int

    @property
    def gross_profit(self) -> int:
        return self.amount_out - self.amount_in

    @property
    def bridge_cost(self) -> int:
        return self.bridge_fee + self.bridge_gas_cost

    @property
    def gas_cost(self) -> int:
        return self.source_gas_cost + self.dest_gas_cost

    @property
    def net_profit(self) -> int:
        return self.gross_profit - self.gas_cost - self.bridge_cost - self.drift_allowance

    def cross_chain_tlv(self, bridge_id: int) -> CrossChainArbitrage:
        """The protocol's type 31: chains, bridge, timing risk in blocks, the bridge cost (quote
        units) and each chain's gas cost in wei of its own gas token."""
        return CrossChainArbitrage(source_chain=self.source_chain, dest_chain=self.dest_chain, bridge=bridge_id,
                                   timing_risk_blocks=self.timing_risk_blocks, bridge_cost=self.bridge_cost,
                                   source_gas_cost=self.source_gas_wei, dest_gas_cost=self.dest_gas_wei)

    def economics_tlv(self, profit_token: TokenId, gas_units: int) -> Economics:
        """Economics in the source chain's quote token: the drift is the slippage allowance, the
        bridge cost is carried in the flash-fee slot's place (no flash loan: inventory)."""
        return Economics(profit_token=profit_token, gross_profit=self.gross_profit, gas_cost=self.gas_cost,
                         flash_fee=self.bridge_cost, slippage_allowance=self.drift_allowance,
                         net_profit=self.net_profit, gas_units=gas_units, gas_price_wei=0)


def _hop(pool: PoolId, zero_for_one: bool, amount_in: int, amount_out: int) -> Hop:
    token_in, token_out = (pool.token0, pool.token1) if zero_for_one else (pool.token1, pool.token0)
    return Hop(pool=pool, venue_kind=int(pool.kind), token_in=bytes.fromhex(token_in.address[2:]),
               token_out=bytes.fromhex(token_out.address[2:]), amount_in=amount_in, amount_out=amount_out)


def signal_tlvs(quote: CrossChainQuote, source: ChainLeg, dest: ChainLeg, *, bridge_id: int, signal_id: int,
                strategy_id: int, strategy: str, confidence_bps: int, source_block: int,
                dest_position: tuple[int, int], trace: TraceContext) -> tuple[TLV, ...]:
    """The cross-chain signal message's records, in wire order (``specs/protocol.md``, "Cross-chain
    signal"): ``SignalIdentity`` (kind CROSS_CHAIN, the source chain and its newest block applied),
    ``Economics`` (in the source chain's quote token), ``ArbitragePath`` (hop 0 the source pool,
    quote -> base; hop 1 the destination pool, base -> quote; exact amounts), ``CrossChainArbitrage``,
    ``DecisionPoint`` (the destination chain's newest ``(block, log_index)`` applied) and the
    ``TraceContext``."""
    if (quote.source_chain, quote.dest_chain) != (source.chain_id, dest.chain_id):
        raise ValueError("the quote was not sized on these legs")
    identity = SignalIdentity(signal_id=signal_id, strategy_id=strategy_id, kind=SignalKind.CROSS_CHAIN,
                              confidence_bps=confidence_bps, chain_id=source.chain_id, block_number=source_block,
                              strategy=strategy)
    hops = (_hop(source.pool.pool, source.zero_for_one, quote.amount_in, quote.base_amount),
            _hop(dest.pool.pool, dest.zero_for_one, quote.base_amount, quote.amount_out))
    return (identity, quote.economics_tlv(source.quote_token, source.gas_units + dest.gas_units),
            ArbitragePath(hops=hops), quote.cross_chain_tlv(bridge_id),
            DecisionPoint(block_number=dest_position[0], log_index=dest_position[1]), trace)


def time_to_land_ms(source: ChainLeg, dest: ChainLeg) -> int:
    return max(source.inclusion_blocks * source.block_time_ms, dest.inclusion_blocks * dest.block_time_ms)


def drift_allowance(amount: int, sigma_ppb: int, t_ms: int, k_milli: int) -> int:
    """``⌈k · σ · √T · amount⌉`` in integers (see the module docstring)."""
    return ceil_div(k_milli * sigma_ppb * ceil_isqrt(t_ms * 10**9) * amount, DRIFT_SCALE)


class CrossChainSizer:
    """Sizes one direction (buy base on ``source``, sell it on ``dest``) against both exact curves."""

    def __init__(self, source: ChainLeg, dest: ChainLeg, params: CrossChainParams, sigma_ppb: int) -> None:
        self.source, self.dest, self.params, self.sigma_ppb = source, dest, params, sigma_ppb
        self.hops: Sequence[Leg] = ((source.pool, source.zero_for_one), (dest.pool, dest.zero_for_one))
        self.t_ms = time_to_land_ms(source, dest)
        self.timing_risk_blocks = ceil_div(self.t_ms, min(source.block_time_ms, dest.block_time_ms))
        self.source_gas_cost = source.gas_cost_quote(source.gas_units)
        self.dest_gas_cost = dest.gas_cost_quote(dest.gas_units)
        self.bridge_gas_cost = ceil_div(dest.gas_cost_quote(params.bridge_gas_units), params.rebalance_every)

    def _variable(self, x: int) -> tuple[int, int, tuple[int, ...] | None]:
        """(fee, drift, amounts) of input ``x``."""
        fee = ceil_div(x * self.params.bridge_fee_bps, BPS)
        drift = drift_allowance(x, self.sigma_ppb, self.t_ms, self.params.drift_k_milli)
        return fee, drift, evaluate(self.hops, x)

    def net_before_fixed(self, x: int) -> int | None:
        """``z(x) - x - fee(x) - drift(x)`` (None where a leg cannot fill ``x``)."""
        fee, drift, amounts = self._variable(x)
        return None if amounts is None else amounts[-1] - x - fee - drift

    def quote(self, x: int) -> CrossChainQuote | None:
        fee, drift, amounts = self._variable(x)
        if amounts is None:
            return None
        s, d = self.source, self.dest
        return CrossChainQuote(
            source_chain=s.chain_id, dest_chain=d.chain_id, amount_in=x, base_amount=amounts[0], amount_out=amounts[1],
            source_gas_wei=s.gas_units * s.gas_price_wei, dest_gas_wei=d.gas_units * d.gas_price_wei,
            source_gas_cost=self.source_gas_cost, dest_gas_cost=self.dest_gas_cost, bridge_fee=fee,
            bridge_gas_cost=self.bridge_gas_cost, drift_allowance=drift, time_to_land_ms=self.t_ms,
            timing_risk_blocks=self.timing_risk_blocks)

    def _cap_for_base(self, cap: int, base_inventory: int) -> int:
        """The largest ``x <= cap`` whose base amount fits the destination inventory (0 if none)."""
        def base(x: int) -> int | None:
            amounts = evaluate(self.hops[:1], x)
            return None if amounts is None else amounts[0]

        b = base(cap)
        if b is not None and b <= base_inventory:
            return cap
        lo, hi = 0, cap  # base(lo) fits (or lo = 0); base(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            b = base(mid)
            if b is not None and b <= base_inventory:
                lo = mid
            else:
                hi = mid
        return lo

    def proportional_cost(self) -> tuple[int, int]:
        """``φ`` as ``(num, den)``: the bridge fee and the drift per unit of input."""
        sqrt_t = ceil_isqrt(self.t_ms * 10**9)
        return (self.params.bridge_fee_bps * (DRIFT_SCALE // BPS)
                + self.params.drift_k_milli * self.sigma_ppb * sqrt_t), DRIFT_SCALE

    def _rising(self, x: int, num: int, den: int) -> bool:
        """True where the path's marginal rate at ``x`` (its exact local model) beats ``1 + φ``."""
        m = evaluate_with_model(self.hops, x)
        if m is None:  # too small to give a unit out (the zero-size margin decides), or unfillable
            y = x
            for state, zfo in self.hops:
                y = state.amount_out(zfo, y)
                if y == 0:
                    a, b, _ = compose_at_zero(self.hops)
                    return a * den > b * (den + num)
                if y < 0:
                    return False
            return False
        _, a, b, _ = m
        return a * den > b * (den + num)

    def best(self, quote_inventory: int, base_inventory: int) -> CrossChainQuote | None:
        """The best input in ``[1, cap]``, or None when no size earns more than ``1 + φ`` at the margin.

        ``net`` is concave in the continuum: its slope is the path's marginal rate (the exact local
        model of both pools at ``x``, ``market.pools.local_model``) less ``1 + φ``, decreasing in ``x``,
        so bisection on its sign finds the continuous optimum ``x_c``; then every integer within one
        unit of the base token's worth (the staircase the floors make, at least ``NEIGHBOURHOOD``)
        around ``x_c`` is evaluated exactly and the best (the smaller on a tie) kept."""
        cap = self._cap_for_base(quote_inventory, base_inventory)
        if cap < 1:
            return None
        num, den = self.proportional_cost()
        if not self._rising(1, num, den):
            return None
        lo, hi = 1, cap
        if self._rising(cap, num, den):
            lo = cap
        else:
            while hi - lo > 1:  # rising(lo), not rising(hi)
                mid = (lo + hi) // 2
                if self._rising(mid, num, den):
                    lo = mid
                else:
                    hi = mid
        x_c = lo
        first = evaluate(self.hops[:1], x_c)
        step = NEIGHBOURHOOD if not first else max(NEIGHBOURHOOD, ceil_div(x_c, first[0]) + 1)
        best_x, best_v = None, None
        for x in range(max(1, x_c - step), min(cap, x_c + step) + 1):
            v = self.net_before_fixed(x)
            if v is not None and (best_v is None or v > best_v):
                best_x, best_v = x, v
        return None if best_x is None else self.quote(best_x)


class Volatility:
    """σ, the relative volatility per √second, in parts per billion, measured from prices.

    Each price (an exact ``(num, den)``, e.g. a pool's zero-size marginal rate) after the first gives
    a relative return ``r = (p - p₀) / p₀`` in ppb (floored) over ``Δt`` ns. Two estimators of the
    variance (ppb² per second), both in integers:

    * ``window_ns`` given (what the strategy uses, ``[cross_chain] sigma_window_s``): the realized
      variance of the returns that ended within the window, ``Σ r² · 10⁹ / Σ Δt`` -- the squared
      returns per second of time they cover (a return whose ``Δt`` starts before the window counts
      whole). The window ends at the newest time seen: an observation, or :meth:`advance` (the
      strategy advances every estimator to the deciding message's time, so a pool quiet for longer
      than the window falls back to the floor);
    * else an exponential average of ``r² · 10⁹ / Δt`` with weight ``alpha_ppm / 10⁶`` per return.

    ``σ = max(floor_ppb, ⌈√variance⌉)``: with no return measured (one observation, or none left in
    the window) σ is the floor, so the drift allowance never reads zero for lack of data. A price
    at the same instant as the previous one (or earlier) is not a return: the earlier observation
    is kept and the next later price is measured from it. Sans-IO: times are passed in (ns)."""

    def __init__(self, alpha_ppm: int = 50_000, *, window_ns: int | None = None, floor_ppb: int = 0) -> None:
        if not 0 < alpha_ppm <= 1_000_000:
            raise ValueError("alpha_ppm must be in (0, 10^6]")
        if window_ns is not None and window_ns <= 0:
            raise ValueError("window_ns must be > 0")
        if floor_ppb < 0:
            raise ValueError("floor_ppb must be >= 0")
        self.alpha_ppm = alpha_ppm
        self.window_ns = window_ns
        self.floor_ppb = floor_ppb
        self.variance = 0  # ppb² per second
        self.samples = 0  # returns measured (all time)
        self._last: tuple[int, int, int] | None = None  # (time_ns, num, den)
        self._window: deque[tuple[int, int, int]] = deque()  # (end_ns, r², Δt) of the returns in the window
        self._sum_r2 = 0
        self._sum_dt = 0
        self._now = 0

    def on_price(self, time_ns: int, num: int, den: int) -> None:
        last, self._last = self._last, (time_ns, num, den)
        if last is None:
            self.advance(time_ns)
            return
        t0, n0, d0 = last
        dt = time_ns - t0
        if dt <= 0:
            self._last = last  # the same instant (or out of order): keep the earlier observation
            return
        # (p - p0) / p0 = (num·d0 - n0·den) / (n0·den), in ppb
        r = (num * d0 - n0 * den) * 10**9 // (n0 * den)
        self.samples += 1
        if self.window_ns is None:
            sample = r * r * 10**9 // dt
            self.variance += (sample - self.variance) * self.alpha_ppm // 1_000_000
            return
        self._window.append((time_ns, r * r, dt))
        self._sum_r2 += r * r
        self._sum_dt += dt
        self.advance(time_ns)

    def advance(self, now_ns: int) -> None:
        """Move the window's end to ``now_ns`` (never backwards): returns that ended at or before
        ``now_ns - window_ns`` leave it. No effect on the exponential average."""
        if now_ns > self._now:
            self._now = now_ns
        if self.window_ns is None:
            return
        w, start = self._window, self._now - self.window_ns
        while w and w[0][0] <= start:
            _, r2, dt = w.popleft()
            self._sum_r2 -= r2
            self._sum_dt -= dt
        self.variance = self._sum_r2 * 10**9 // self._sum_dt if self._sum_dt else 0

    @property
    def in_window(self) -> int:
        """The returns the window holds (window mode)."""
        return len(self._window)

    @property
    def sigma_ppb(self) -> int:
        return max(self.floor_ppb, ceil_isqrt(max(self.variance, 0)))
