"""Immutable pool snapshots and the per-hop quoting the search needs.

Every snapshot is a frozen, slotted dataclass; an update derives a new one (the state manager
swaps the reference), so a search that holds a snapshot never sees it change underneath it.

Each snapshot answers three questions for a hop in direction ``zero_for_one`` (token0 in):

* ``amount_out(zfo, amount_in)`` -- the exact on-chain output (the AMM mirrors in
  :mod:`market.amm`), ``-1`` when the pool cannot absorb the whole input or would revert;
* ``local_model(zfo, amount_in)`` -- that output plus a *local constant-product model* of the
  pool after the swap: ``(out, n, d, r_in, r_out)`` meaning that a further ``δ`` in yields about
  ``n·r_out·δ / (d·r_in + n·δ)``. For V2 this is the pair itself (reserves after the swap, fee
  ``n/d``); for V3 it is the current price range's *virtual reserves* ``L/√P`` and ``L·√P`` with
  fee ``(1e6 - fee)/1e6``, exact in the continuum until the next initialized tick. The optimiser
  composes these models along a path (see :mod:`strategy.optimize`);
* ``marginal(zfo)`` -- the model's rate at zero size as a fraction ``(num, den)``, precomputed
  once per snapshot because every cycle through the pool multiplies it in its pre-screen.

A Uniswap V4 pool (:class:`V4Pool`) is a V3-like pool priced with the V4 mirror
(:mod:`market.amm.uniswap_v4`): its fee is the LP fee plus the direction's protocol fee on top, so
its model's ``n`` depends on the direction (``model_n_of``).

Nothing here is a float: rates are integer fractions and quotes are the contracts' arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from market.amm import curve_stableswap as curve
from market.amm import uniswap_v2 as v2
from market.amm import uniswap_v4 as uv4
from market.amm.errors import AMMError
from market.amm.uniswap_v3 import SwapResult, V3PoolState, swap_exact_input, swap_exact_output
from protocol.ids import PoolId, VenueKind

PPM = 1_000_000
Q96 = 1 << 96
NO_CAP = 1 << 200  # "no known bound" on a flash input (V3 pool whose balances were not reported)
NOT_FILLED = -1  # amount_out's answer when the hop cannot take the whole input

Model = tuple[int, int, int, int, int]  # (amount_out, n, d, r_in, r_out)

# --- integer log2 bounds, for the vectorised pre-filter of the cycle index ------------------------
#
# ``log_rates`` holds, per direction, an integer U with U >= 2**24 * log2(num / den) of the marginal
# rate: a *guaranteed upper bound*, so a cycle whose bounds sum to <= 0 has a rate product <= 1 and
# can be skipped without looking at it; everything else goes to the exact integer check. Bounds
# come from a 4097-entry table of log2(1 + k/4096) (built once with the integer binary-log
# algorithm: no floats), which brackets any mantissa between two entries.

LOG_FRAC_BITS = 24
LOG_NEVER = -(1 << 50)  # a rate of zero: no cycle through it can pay
_TABLE_BITS = 12
_LOG_TABLE: list[int] = []


def _log2_q24_of_mantissa(m: int) -> int:
    """floor(2**24 * log2(m / 2**62)) (within one unit, from below) for m in [2**62, 2**63)."""
    two = 2 << 62
    y = 0
    for i in range(LOG_FRAC_BITS - 1, -1, -1):
        m = (m * m) >> 62
        if m >= two:
            m >>= 1
            y |= 1 << i
    return y


def _table() -> list[int]:
    if not _LOG_TABLE:
        step = 1 << (62 - _TABLE_BITS)
        _LOG_TABLE.extend(_log2_q24_of_mantissa((1 << 62) + k * step) for k in range(1 << _TABLE_BITS))
        _LOG_TABLE.append(1 << LOG_FRAC_BITS)  # log2(2) exactly
    return _LOG_TABLE


def log2_bounds(v: int) -> tuple[int, int]:
    """``(lo, hi)`` with ``lo <= 2**24 * log2(v) <= hi`` for an integer ``v >= 1``."""
    table = _LOG_TABLE or _table()
    b = v.bit_length() - 1
    k = ((v << (_TABLE_BITS - b)) if b < _TABLE_BITS else (v >> (b - _TABLE_BITS))) - (1 << _TABLE_BITS)
    base = b << LOG_FRAC_BITS
    return base + table[k], base + table[k + 1] + 1


def log_rate_bounds(m: tuple[int, ...]) -> tuple[int, int]:
    """Upper bounds of ``2**24 * log2(rate)`` for both directions of marginals ``(n0, d0, n1, d1)``."""
    out = []
    for num, den in ((m[0], m[1]), (m[2], m[3])):
        out.append(log2_bounds(num)[1] - log2_bounds(den)[0] if num > 0 and den > 0 else LOG_NEVER)
    return out[0], out[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Snapshot:
    """What every pool snapshot carries: its id, the block of its state, the ``(block, log_index)``
    high-water mark of the last event applied (``last_event``), and the zero-size marginal rates
    that each kind computes once in ``__post_init__`` (through :meth:`_set_marginals`)."""

    pool: PoolId
    block_number: int
    last_event: tuple[int, int]
    marginals: tuple[int, int, int, int] = field(init=False, repr=False, compare=False)
    log_rates: tuple[int, int] = field(init=False, repr=False, compare=False)

    def _set_marginals(self, m: tuple[int, int, int, int]) -> None:
        """``m = (num, den)`` of the token0 -> token1 rate, then of the reverse."""
        object.__setattr__(self, "marginals", m)
        object.__setattr__(self, "log_rates", log_rate_bounds(m))

    def marginal(self, zero_for_one: bool) -> tuple[int, int]:
        m = self.marginals
        return (m[0], m[1]) if zero_for_one else (m[2], m[3])

    def model_n_of(self, zero_for_one: bool) -> int:
        """The ``n`` of the zero-size model in this direction (one fee both ways but for V4)."""
        return self.model_n  # type: ignore[attr-defined, no-any-return]


@dataclass(frozen=True, slots=True, kw_only=True)
class V2Pool(_Snapshot):
    """A constant-product pair. ``last_event`` is the (block, log_index) high-water mark."""

    KIND: ClassVar[VenueKind] = VenueKind.UNISWAP_V2
    reserve0: int
    reserve1: int
    fee_ppm: int = 3000

    def __post_init__(self) -> None:
        n = PPM - self.fee_ppm
        # token0 -> token1 rate n*r1/(d*r0), and the reverse
        m = (n * self.reserve1, PPM * self.reserve0, n * self.reserve0, PPM * self.reserve1)
        self._set_marginals(m)

    @property
    def tradable(self) -> bool:
        return self.reserve0 > 0 and self.reserve1 > 0

    @property
    def model_n(self) -> int:
        """The ``n`` of the zero-size model whose ``(n·r_out, d·r_in)`` are the marginals."""
        return PPM - self.fee_ppm

    def balance_in(self, zero_for_one: bool) -> int:
        return self.reserve0 if zero_for_one else self.reserve1

    def model0(self, zero_for_one: bool) -> tuple[int, int, int, int]:
        """The local model ``(n, d, r_in, r_out)`` before any input: the pair itself."""
        r_in, r_out = (self.reserve0, self.reserve1) if zero_for_one else (self.reserve1, self.reserve0)
        return (PPM - self.fee_ppm, PPM, r_in, r_out)

    def amount_out(self, zero_for_one: bool, amount_in: int) -> int:
        r_in, r_out = (self.reserve0, self.reserve1) if zero_for_one else (self.reserve1, self.reserve0)
        try:
            return v2.get_amount_out(amount_in, r_in, r_out, self.fee_ppm)
        except AMMError:
            return NOT_FILLED

    def min_input(self, zero_for_one: bool, amount_out: int) -> int:
        """The least input whose exact output is >= ``amount_out`` (-1 if none).

        ``ceil(out·d·r_in / (n·(r_out - out)))`` -- not the library's ``getAmountIn``, whose
        unconditional ``+ 1`` overshoots by one when the division is exact.
        """
        r_in, r_out = (self.reserve0, self.reserve1) if zero_for_one else (self.reserve1, self.reserve0)
        if not 0 < amount_out < r_out:
            return NOT_FILLED
        n = PPM - self.fee_ppm
        return -(-(amount_out * PPM * r_in) // (n * (r_out - amount_out)))

    def local_model(self, zero_for_one: bool, amount_in: int) -> Model:
        r_in, r_out = (self.reserve0, self.reserve1) if zero_for_one else (self.reserve1, self.reserve0)
        try:
            out = v2.get_amount_out(amount_in, r_in, r_out, self.fee_ppm)
        except AMMError:
            return (NOT_FILLED, 0, 1, 1, 0)
        # Continuing *the same* swap (not a new one on the post-trade reserves: the fee of the
        # first part stays in the pair and would make a second swap's curve different):
        # out(x + δ) - out(x) = n·(r_out - out)·δ / ((d·r_in + n·x) + n·δ), so d' = 1 and
        # r_in' = d·r_in + n·x, in the model's (n, d, r_in, r_out) form.
        n = PPM - self.fee_ppm
        return (out, n, 1, PPM * r_in + n * amount_in, r_out - out)


@dataclass(frozen=True, slots=True, kw_only=True)
class V3Pool(_Snapshot):
    """A concentrated-liquidity pool. ``v3`` is None until the pool is initialized.

    ``balance0``/``balance1`` are the pool's token balances (a snapshot's reserves, moved by swaps
    and mints); they bound a flash input. They are not moved by burns: burned liquidity stays in
    the pool as owed tokens until ``collect``, which the market-data protocol does not carry.
    """

    KIND: ClassVar[VenueKind] = VenueKind.UNISWAP_V3
    fee: int
    tick_spacing: int
    v3: V3PoolState | None
    balance0: int = 0
    balance1: int = 0

    def __post_init__(self) -> None:
        s = self.v3
        if s is None or s.liquidity == 0:
            m = (0, 1, 0, 1)
        else:
            n = PPM - s.fee
            x_v, y_v = _virtual_reserves(s.liquidity, s.sqrt_price_x96)
            m = (n * y_v, PPM * x_v, n * x_v, PPM * y_v)
        self._set_marginals(m)

    @property
    def tradable(self) -> bool:
        return self.v3 is not None and self.v3.liquidity > 0

    @property
    def model_n(self) -> int:
        return PPM - self.fee

    def balance_in(self, zero_for_one: bool) -> int:
        b = self.balance0 if zero_for_one else self.balance1
        return b if b > 0 else NO_CAP

    def model0(self, zero_for_one: bool) -> tuple[int, int, int, int]:
        """The current range's virtual reserves with the pool fee."""
        s = self.v3
        if s is None or s.liquidity == 0:
            return (0, 1, 1, 0)
        x_v, y_v = _virtual_reserves(s.liquidity, s.sqrt_price_x96)
        return (PPM - s.fee, PPM, x_v, y_v) if zero_for_one else (PPM - s.fee, PPM, y_v, x_v)

    def _swap(self, exact_input: bool, zero_for_one: bool, amount: int) -> SwapResult | None:
        """The mirror's exact-input (or exact-output) swap of ``amount``; None when the pool is not
        initialized, the amount is not positive, or the contract would revert."""
        if self.v3 is None or amount <= 0:
            return None
        try:
            return (swap_exact_input if exact_input else swap_exact_output)(self.v3, zero_for_one, amount)
        except AMMError:
            return None

    def amount_out(self, zero_for_one: bool, amount_in: int) -> int:
        r = self._swap(True, zero_for_one, amount_in)
        # None, or the pool stopped at the price limit: it would not take the whole input.
        return r.amount_out if r is not None and r.amount_in == amount_in else NOT_FILLED

    def min_input(self, zero_for_one: bool, amount_out: int) -> int:
        """The least exact input whose output is >= ``amount_out`` (-1 if none), up to a unit: the
        exact-output quote, one less if that still fills (the contract rounds exact-output and
        exact-input swaps separately, so the quote can be a unit above the least input)."""
        r = self._swap(False, zero_for_one, amount_out)
        if r is None or r.amount_out < amount_out:
            return NOT_FILLED
        x = r.amount_in
        if x > 1 and self.amount_out(zero_for_one, x - 1) >= amount_out:
            x -= 1  # one step down: the two roundings rarely differ by more than one unit
        return x

    def fee_stalls(self, zero_for_one: bool, amount_in: int) -> tuple[int, ...]:
        """Inputs near ``amount_in`` where the exact output's saw-tooth peaks (:func:`fee_stall_inputs`)."""
        return fee_stall_inputs(self.fee, amount_in)

    def local_model(self, zero_for_one: bool, amount_in: int) -> Model:
        if self.v3 is None or amount_in <= 0:
            return (NOT_FILLED, 0, 1, 1, 0)
        try:
            r = swap_exact_input(self.v3, zero_for_one, amount_in)
        except AMMError:
            return (NOT_FILLED, 0, 1, 1, 0)
        if r.amount_in != amount_in:
            return (NOT_FILLED, 0, 1, 1, 0)
        x_v, y_v = _virtual_reserves(r.liquidity, r.sqrt_price_x96)
        if zero_for_one:
            return (r.amount_out, PPM - self.fee, PPM, x_v, y_v)
        return (r.amount_out, PPM - self.fee, PPM, y_v, x_v)


@dataclass(frozen=True, slots=True, kw_only=True)
class V4Pool(_Snapshot):
    """A Uniswap V4 pool admitted for simulation (no dynamic fee, no hook that can change a swap's
    amounts: the collector refuses those). ``v4`` is None until the pool is initialized.

    ``lp_fee`` (pips) and ``protocol_fee`` (``slot0.protocolFee``) are kept here as well, so an
    uninitialized pool knows them when its ``Initialize`` arrives. V4 pools have no balances of
    their own (the PoolManager holds every pool's tokens), so a flash input is not bounded by one.
    """

    KIND: ClassVar[VenueKind] = VenueKind.UNISWAP_V4
    lp_fee: int
    tick_spacing: int
    protocol_fee: int
    v4: uv4.V4PoolState | None

    def __post_init__(self) -> None:
        s = self.v4
        if s is None or s.liquidity == 0:
            m = (0, 1, 0, 1)
        else:
            x_v, y_v = _virtual_reserves(s.liquidity, s.sqrt_price_x96)
            m = (self.model_n_of(True) * y_v, PPM * x_v, self.model_n_of(False) * x_v, PPM * y_v)
        self._set_marginals(m)

    @property
    def tradable(self) -> bool:
        return self.v4 is not None and self.v4.liquidity > 0

    @property
    def model_n(self) -> int:
        """The smaller of the two directions' ``n`` (the larger fee)."""
        return min(self.model_n_of(True), self.model_n_of(False))

    def model_n_of(self, zero_for_one: bool) -> int:
        s = self.v4
        if s is None:
            return PPM - self.lp_fee
        return PPM - s.swap_fee(zero_for_one)

    def balance_in(self, zero_for_one: bool) -> int:
        return NO_CAP

    def model0(self, zero_for_one: bool) -> tuple[int, int, int, int]:
        s = self.v4
        if s is None or s.liquidity == 0:
            return (0, 1, 1, 0)
        x_v, y_v = _virtual_reserves(s.liquidity, s.sqrt_price_x96)
        n = self.model_n_of(zero_for_one)
        return (n, PPM, x_v, y_v) if zero_for_one else (n, PPM, y_v, x_v)

    def _swap(self, exact_input: bool, zero_for_one: bool, amount: int) -> uv4.V4SwapResult | None:
        if self.v4 is None or amount <= 0:
            return None
        try:
            return (uv4.swap_exact_input if exact_input else uv4.swap_exact_output)(self.v4, zero_for_one, amount)
        except AMMError:
            return None

    def amount_out(self, zero_for_one: bool, amount_in: int) -> int:
        r = self._swap(True, zero_for_one, amount_in)
        return r.amount_out if r is not None and r.amount_in == amount_in else NOT_FILLED

    def min_input(self, zero_for_one: bool, amount_out: int) -> int:
        """As :meth:`V3Pool.min_input`, with the V4 mirror."""
        r = self._swap(False, zero_for_one, amount_out)
        if r is None or r.amount_out < amount_out:
            return NOT_FILLED
        x = r.amount_in
        if x > 1 and self.amount_out(zero_for_one, x - 1) >= amount_out:
            x -= 1
        return x

    def fee_stalls(self, zero_for_one: bool, amount_in: int) -> tuple[int, ...]:
        """As :meth:`V3Pool.fee_stalls`, at the direction's swap fee (protocol fee included)."""
        return fee_stall_inputs(PPM - self.model_n_of(zero_for_one), amount_in)

    def local_model(self, zero_for_one: bool, amount_in: int) -> Model:
        r = self._swap(True, zero_for_one, amount_in)
        if r is None or r.amount_in != amount_in:
            return (NOT_FILLED, 0, 1, 1, 0)
        x_v, y_v = _virtual_reserves(r.liquidity, r.sqrt_price_x96)
        n = self.model_n_of(zero_for_one)
        if zero_for_one:
            return (r.amount_out, n, PPM, x_v, y_v)
        return (r.amount_out, n, PPM, y_v, x_v)


def fee_stall_inputs(fee_pips: int, amount_in: int) -> tuple[int, ...]:
    """The inputs nearest ``amount_in`` (the last at or below it, the first above it) after which one more
    unit buys nothing: an exact-input swap step spends ``floor(u·(1e6 - fee)/1e6)`` of an input ``u``
    (Uniswap's ``computeSwapStep``, V3 and V4 alike), which stalls once every ``1e6/fee`` units, so a
    path's exact profit over ``u`` is a saw-tooth whose teeth end there. For a swap that stays in one
    step these are exactly the teeth's tops (a crossed tick shifts them): the optimiser only *tries* them.

    ``u`` stalls iff ``(u+1)·g // 1e6 == u·g // 1e6`` with ``g = 1e6 - fee``, i.e. iff ``u·g mod 1e6 < fee``;
    that residue falls by ``fee`` (mod 1e6) per unit, which gives both neighbours directly."""
    if not 0 < fee_pips < PPM or amount_in < 1:
        return ()
    r = amount_in * (PPM - fee_pips) % PPM
    nxt = amount_in + r // fee_pips  # residue r - k·fee first below fee
    r0 = r - (r // fee_pips) * fee_pips
    prev = nxt if r < fee_pips else nxt - -(-(PPM - r0) // fee_pips)
    return (prev, nxt) if prev != nxt and prev >= 1 else (nxt,)


def _virtual_reserves(liquidity: int, sqrt_price_x96: int) -> tuple[int, int]:
    """``(L / √P, L·√P)`` in token units: the reserves of the constant-product pool that prices the
    current range exactly like the V3 pool does (``x·y = L²``)."""
    return (liquidity << 96) // sqrt_price_x96, (liquidity * sqrt_price_x96) >> 96


@dataclass(frozen=True, slots=True, kw_only=True)
class CurvePool(_Snapshot):
    """A two-coin classic StableSwap pool. ``amp`` and ``rates`` come from configuration (a snapshot
    carries only balances and the fee); ``fee`` is on Curve's 1e10 scale.

    The invariant ``D`` depends on the balances alone, so the snapshot computes it (and the normalised
    balances ``xp``) once: every quote on it reuses them, where the contract's ``get_y`` recomputes
    ``D`` at every call (same result to the wei; ``D``'s Newton loop was half of a quote's time).

    Its local model (:meth:`local_model`, :meth:`model0`, the marginals) is the constant-product curve
    with the StableSwap curve's slope *and* curvature at the point (see :func:`_stableswap_model`):
    exact in the continuum to second order, so the optimiser's Newton steps land on a Curve path's
    optimum in a few evaluations, as on V3 paths.
    """

    KIND: ClassVar[VenueKind] = VenueKind.CURVE
    balances: tuple[int, int]
    rates: tuple[int, int]
    amp: int
    fee: int
    xp: tuple[int, int] | None = field(init=False, repr=False, compare=False)
    invariant: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            x0, x1 = curve.get_xp(self.balances, self.rates)
            xp: tuple[int, int] | None = (x0, x1)
            d: int | None = curve.get_D((x0, x1), self.amp)
        except AMMError:
            xp, d = None, None
        object.__setattr__(self, "xp", xp)
        object.__setattr__(self, "invariant", d)
        # the zero-size model's rate both ways (n = 1: the fee is inside r_out)
        _, _, r_in0, r_out0 = self.model0(True)
        _, _, r_in1, r_out1 = self.model0(False)
        self._set_marginals((r_out0, r_in0, r_out1, r_in1))

    @property
    def tradable(self) -> bool:
        return self.balances[0] > 0 and self.balances[1] > 0 and self.invariant is not None

    @property
    def model_n(self) -> int:
        return 1  # the model's fee is inside its r_out (see _stableswap_model)

    def balance_in(self, zero_for_one: bool) -> int:
        return self.balances[0] if zero_for_one else self.balances[1]

    def _exchange(self, i: int, dx: int) -> int:
        try:
            # ``exchange`` (not ``get_dy``): it is what the pool actually pays (they can differ by 1).
            dy, _ = curve.exchange(i, 1 - i, dx, self.balances, self.rates, self.amp, self.fee,
                                   d=self.invariant, xp=self.xp)
        except AMMError:
            return NOT_FILLED
        return dy

    def amount_out(self, zero_for_one: bool, amount_in: int) -> int:
        if amount_in <= 0:
            return NOT_FILLED
        return self._exchange(0 if zero_for_one else 1, amount_in)

    def min_input(self, zero_for_one: bool, amount_out: int) -> int:
        """The least input whose exact ``exchange`` output is >= ``amount_out`` (-1 if none).

        The continuum answer comes from the invariant solved the other way (``get_y`` for the input
        coin, given the output coin's balance after the trade, fee and rounding undone); the exact
        answer is then found around it with exact quotes (the output is nondecreasing in the input):
        a gallop to an input that fills, and bisection down to the least one.
        """
        i = 0 if zero_for_one else 1
        j = 1 - i
        xp, d = self.xp, self.invariant
        if amount_out <= 0 or xp is None or d is None or amount_out >= self.balances[j]:
            return NOT_FILLED
        fee_den = curve.FEE_DENOMINATOR
        # dy = (dy_xp - dy_xp * fee // 1e10) * 1e18 // rate_j  >=  amount_out
        dy_xp = -(-amount_out * self.rates[j] * fee_den // (curve.PRECISION * (fee_den - self.fee))) + 1
        guess = max(1, amount_out * self.rates[j] // self.rates[i])  # where the continuum has no answer
        if dy_xp + 1 < xp[j]:
            try:
                x = curve.get_y(j, i, xp[j] - dy_xp - 1, xp, self.amp, d)
                guess = max(1, (x - xp[i]) * curve.PRECISION // self.rates[i])
            except AMMError:
                pass
        return _least_input(lambda dx: self._exchange(i, dx), amount_out, guess, self.balances[i] << 8)

    def model0(self, zero_for_one: bool) -> tuple[int, int, int, int]:
        xp, d = self.xp, self.invariant
        if xp is None or d is None or 0 in xp:
            return (0, 1, 1, 0)
        i = 0 if zero_for_one else 1
        r_in, r_out = _stableswap_model(xp[i], xp[1 - i], d, self.amp, self.rates[i], self.rates[1 - i], self.fee)
        return (1, 1, r_in, r_out)

    def local_model(self, zero_for_one: bool, amount_in: int) -> Model:
        xp, d = self.xp, self.invariant
        if amount_in <= 0 or xp is None or d is None:
            return (NOT_FILLED, 0, 1, 1, 0)
        i = 0 if zero_for_one else 1
        j = 1 - i
        try:
            # the exchange's own amounts: what it pays, and the curve's point after it (where the model is)
            out, _, y = curve.exchange_dy(i, j, amount_in, self.balances, self.rates, self.amp, self.fee, d=d, xp=xp)
        except AMMError:
            return (NOT_FILLED, 0, 1, 1, 0)
        if out <= 0 or y <= 0:
            return (NOT_FILLED, 0, 1, 1, 0)
        x = xp[i] + amount_in * self.rates[i] // curve.PRECISION
        r_in, r_out = _stableswap_model(x, y, d, self.amp, self.rates[i], self.rates[j], self.fee)
        return (out, 1, 1, r_in, r_out)


def _stableswap_model(x: int, y: int, d: int, amp: int, rate_in: int, rate_out: int, fee: int) -> tuple[int, int]:
    """``(r_in, r_out)`` in coin units: the constant-product curve ``r_out·δ / (r_in + δ)`` with the same
    slope and curvature as a two-coin StableSwap pool's output (after its fee) at normalised balances
    ``(x, y)`` on invariant ``d``.

    The curve is ``G(x, y) = Ann·(x + y) + D - Ann·D - D³/(4xy) = 0`` with ``Ann = 2·amp`` (the
    contract's ``get_D``/``get_y`` solve exactly this). Implicit differentiation, scaled by ``4x²y²``:
    ``gx = 4·Ann·x²y² + D³·y``, ``gy = 4·Ann·x²y² + D³·x``; the output's slope is ``s = gx/gy`` and its
    curvature ``κ = 2·D³·N / (x·y·gy³)`` with ``N = y²gy² - gx·gy·xy + gx²x²``. A constant-product curve
    has slope ``r_out/r_in`` and curvature ``2·r_out/r_in²`` at zero, hence ``r_in = 2s/κ`` and
    ``r_out = s·r_in``. Then coin units (``rates``) and the fee on the output. (With ``Ann -> 0`` this
    gives back ``(x, y)``: the constant-product pool itself.)
    """
    ann = 2 * amp
    p = d * d * d
    xxyy = 4 * ann * x * x * y * y
    gx = xxyy + p * y
    gy = xxyy + p * x
    n = y * y * gy * gy - gx * gy * x * y + gx * gx * x * x
    den = p * n
    if den <= 0:
        return 1, 0
    r_in_xp = gx * gy * gy * x * y // den
    r_out_xp = gx * gx * gy * x * y // den
    fee_den = curve.FEE_DENOMINATOR
    r_in = r_in_xp * curve.PRECISION // rate_in
    r_out = r_out_xp * curve.PRECISION * (fee_den - fee) // (rate_out * fee_den)
    return max(r_in, 1), r_out


def _least_input(quote: Callable[[int], int], amount_out: int, guess: int, limit: int) -> int:
    """The least ``dx >= 1`` with ``quote(dx) >= amount_out`` for a nondecreasing ``quote`` (-1 if none up
    to ``limit``), searched from ``guess``: a gallop up to one that fills (or down to one that does not),
    then bisection between the two."""
    hi = min(max(guess, 1), limit)
    if quote(hi) >= amount_out:
        step, lo = 1, hi
        while True:  # down until it does not fill
            lo = hi - step
            if lo < 1:
                lo = 0
                break
            if quote(lo) < amount_out:
                break
            hi, step = lo, step * 2
    else:
        step, lo = 1, hi
        while True:  # up until it fills
            hi = lo + step
            if hi > limit:
                return NOT_FILLED
            if quote(hi) >= amount_out:
                break
            lo, step = hi, step * 2
    while hi - lo > 1:  # quote(lo) < amount_out (or lo == 0) <= quote(hi)
        mid = (lo + hi) // 2
        if quote(mid) >= amount_out:
            hi = mid
        else:
            lo = mid
    return hi


PoolState = V2Pool | V3Pool | V4Pool | CurvePool
