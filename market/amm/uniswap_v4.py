"""Mirror of Uniswap v4-core ``Pool.swap`` (and the tick/liquidity effects of ``Pool.modifyLiquidity``) on an
immutable state -- the released v4-core 1.0.x, the bytecode the PoolManager runs.

What V4 shares with V3 and takes from our V3 modules unchanged: ``TickMath``, ``SqrtPriceMath``, ``FullMath``,
``LiquidityMath``, the swap's step loop (:func:`.uniswap_v3.swap_steps`, given V4's step, fee and protocol fee:
the tick bitmap walk, stopping at every ``256 * tickSpacing`` word boundary and starting from the *stored*
tick, and the tick crossings) and a position change (:func:`.uniswap_v3.change_position`).

What differs, all reproduced here:

* sign convention: ``amount_specified < 0`` is exact input, ``> 0`` exact output, and the result is a
  ``BalanceDelta`` from the swapper's side (negative = paid to the pool);
* :mod:`.swap_math_v4` (a different ``computeSwapStep``; 100 % fee allowed for exact input);
* the fee: the LP fee is in ``slot0`` (any value up to 100 %, not a fixed tier), and a protocol fee (per
  direction, :mod:`.protocol_fee_library`) is charged *on top*, so every step runs at
  ``swapFee = calculateSwapFee(protocolFee, lpFee)`` and the protocol's share is carved out of each step's fee;
* reverts: ``SwapAmountCannotBeZero``, ``InvalidFeeForExactOut`` (swap fee of 100 % and exact output),
  ``PriceLimitAlreadyExceeded``/``PriceLimitOutOfBounds``, ``SafeCastOverflow`` when a total does not fit int128;
* tick spacing up to 32767, and ``tickSpacingToMaxLiquidityPerTick`` floors the minimum tick (V3 truncates).

Hooks are outside this module: pools whose hooks can change amounts, or with a dynamic fee, are refused before a
state is ever built (:func:`.pool_key.admission`).  Fee growth is not modelled (it does not change amounts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import InvalidAmount, InvalidPoolState, InvalidPriceLimit, Overflow
from .full_math import MAX_INT128, MAX_INT256, MAX_UINT128, MIN_INT128
from .lp_fee_library import MAX_LP_FEE
from .pool_key import MAX_TICK_SPACING, MIN_TICK_SPACING
from .protocol_fee_library import (
    calculate_swap_fee,
    get_one_for_zero_fee,
    get_zero_for_one_fee,
    is_valid_protocol_fee,
)
from .swap_math_v4 import MAX_SWAP_FEE, compute_swap_step
from .tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick_cached,
)
from .uniswap_v3 import (
    PositionReverts,
    change_position,
    check_position_ticks,
    checked_ticks,
    position_amounts,
    swap_steps,
)

__all__ = [
    "MAX_SQRT_PRICE",
    "MIN_SQRT_PRICE",
    "V4PoolState",
    "V4SwapResult",
    "apply_liquidity_change",
    "apply_swap",
    "get_position_delta",
    "swap",
    "swap_exact_input",
    "swap_exact_output",
    "tick_spacing_to_max_liquidity_per_tick",
]

MIN_SQRT_PRICE = MIN_SQRT_RATIO  # V4 names; same values as V3
MAX_SQRT_PRICE = MAX_SQRT_RATIO
_sqrt_at = get_sqrt_ratio_at_tick_cached


def tick_spacing_to_max_liquidity_per_tick(tick_spacing: int) -> int:
    """``Pool.tickSpacingToMaxLiquidityPerTick``: note the *floored* minimum tick (V3 truncates towards 0)."""
    min_tick = MIN_TICK // tick_spacing  # floor division == sdiv minus one when the remainder is negative
    max_tick = MAX_TICK // tick_spacing
    return MAX_UINT128 // (max_tick - min_tick + 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class V4PoolState:
    """Immutable snapshot of the parts of a V4 pool that determine swap results.

    ``lp_fee`` is ``slot0.lpFee`` (pips, up to 1e6); ``protocol_fee`` is ``slot0.protocolFee`` (two packed 12-bit
    fees: zero-for-one in the low bits).  ``ticks``/``liquidity_gross`` are as in
    :class:`market.amm.uniswap_v3.V3PoolState`.
    """

    sqrt_price_x96: int
    tick: int
    liquidity: int
    lp_fee: int
    tick_spacing: int
    ticks: Mapping[int, int]
    protocol_fee: int = 0
    liquidity_gross: Mapping[int, int] | None = None
    sorted_ticks: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spacing = self.tick_spacing
        if not MIN_TICK_SPACING <= spacing <= MAX_TICK_SPACING:
            raise InvalidPoolState(f"tick_spacing {spacing} outside [{MIN_TICK_SPACING}, {MAX_TICK_SPACING}]")
        if not 0 <= self.lp_fee <= MAX_LP_FEE:
            raise InvalidPoolState(f"lp_fee {self.lp_fee} pips outside [0, {MAX_LP_FEE}]")
        if not is_valid_protocol_fee(self.protocol_fee):
            raise InvalidPoolState(f"protocol_fee 0x{self.protocol_fee:06x} invalid (each half <= 1000 pips)")
        if not 0 <= self.liquidity <= MAX_UINT128:
            raise InvalidPoolState(f"liquidity {self.liquidity} does not fit uint128")
        if not MIN_TICK <= self.tick <= MAX_TICK:
            raise InvalidPoolState(f"tick {self.tick} outside [{MIN_TICK}, {MAX_TICK}]")
        price = self.sqrt_price_x96
        if not MIN_SQRT_PRICE <= price < MAX_SQRT_PRICE:
            raise InvalidPoolState(f"sqrt_price_x96 {price} outside [MIN_SQRT_PRICE, MAX_SQRT_PRICE)")
        nets, ordered, gross = checked_ticks(self.tick, price, self.ticks, self.liquidity_gross, spacing)  # as V3's
        object.__setattr__(self, "ticks", nets)
        object.__setattr__(self, "sorted_ticks", ordered)
        object.__setattr__(self, "liquidity_gross", gross)

    def __hash__(self) -> int:
        return hash((self.sqrt_price_x96, self.tick, self.liquidity, self.lp_fee, self.protocol_fee,
                     self.tick_spacing, len(self.ticks)))

    def swap_fee(self, zero_for_one: bool) -> int:
        """The fee a swap in this direction runs at: the LP fee with the direction's protocol fee on top."""
        protocol = get_zero_for_one_fee(self.protocol_fee) if zero_for_one else get_one_for_zero_fee(
            self.protocol_fee)
        return self.lp_fee if protocol == 0 else calculate_swap_fee(protocol, self.lp_fee)

    def _with_slot0(self, sqrt_price_x96: int, tick: int, liquidity: int) -> V4PoolState:
        """Copy with new slot0/liquidity, sharing the (immutable) tick maps; skips validation."""
        new = object.__new__(V4PoolState)
        setattr_ = object.__setattr__
        for name in ("lp_fee", "protocol_fee", "tick_spacing", "ticks", "liquidity_gross", "sorted_ticks"):
            setattr_(new, name, getattr(self, name))
        setattr_(new, "sqrt_price_x96", sqrt_price_x96)
        setattr_(new, "tick", tick)
        setattr_(new, "liquidity", liquidity)
        return new


@dataclass(frozen=True, slots=True, kw_only=True)
class V4SwapResult:
    """Outcome of ``Pool.swap``: ``amount0``/``amount1`` are the ``BalanceDelta`` (swapper's side: negative is
    paid into the pool, positive received); ``amount_in``/``amount_out`` the same as positive numbers.

    ``fee_amount`` is what the LPs earn, ``amount_to_protocol`` the protocol's share (both in the input token,
    both included in ``amount_in``); ``swap_fee`` the fee in pips the steps ran at.
    """

    amount0: int
    amount1: int
    sqrt_price_x96: int
    tick: int
    liquidity: int
    zero_for_one: bool
    swap_fee: int
    fee_amount: int = 0
    amount_to_protocol: int = 0
    ticks_crossed: int = 0

    @property
    def amount_in(self) -> int:
        return -(self.amount0 if self.zero_for_one else self.amount1)

    @property
    def amount_out(self) -> int:
        return self.amount1 if self.zero_for_one else self.amount0


def swap(
    state: V4PoolState, zero_for_one: bool, amount_specified: int, sqrt_price_limit_x96: int = 0
) -> V4SwapResult:
    """``PoolManager.swap`` on a pool without amount-changing hooks: ``amount_specified < 0`` exact input,
    ``> 0`` exact output.  ``sqrt_price_limit_x96 == 0`` means no limit (MIN+1 / MAX-1, as routers pass)."""
    if amount_specified == 0:
        raise InvalidAmount("SwapAmountCannotBeZero")
    if not -MAX_INT256 - 1 <= amount_specified <= MAX_INT256:
        raise InvalidAmount(f"amount {amount_specified} does not fit int256")
    swap_fee = state.swap_fee(zero_for_one)
    protocol_fee = (get_zero_for_one_fee(state.protocol_fee) if zero_for_one
                    else get_one_for_zero_fee(state.protocol_fee))
    if swap_fee >= MAX_SWAP_FEE and amount_specified > 0:
        raise InvalidAmount("InvalidFeeForExactOut: a 100 % swap fee makes exact output impossible")

    sqrt_price = state.sqrt_price_x96
    if sqrt_price_limit_x96 == 0:
        limit = MIN_SQRT_PRICE + 1 if zero_for_one else MAX_SQRT_PRICE - 1
    else:
        limit = sqrt_price_limit_x96
    if zero_for_one:
        if limit >= sqrt_price:
            raise InvalidPriceLimit(f"PriceLimitAlreadyExceeded: limit {limit} >= price {sqrt_price}")
        if limit <= MIN_SQRT_PRICE:
            raise InvalidPriceLimit(f"PriceLimitOutOfBounds: {limit}")
    else:
        if limit <= sqrt_price:
            raise InvalidPriceLimit(f"PriceLimitAlreadyExceeded: limit {limit} <= price {sqrt_price}")
        if limit >= MAX_SQRT_PRICE:
            raise InvalidPriceLimit(f"PriceLimitOutOfBounds: {limit}")

    # The loop counts in V3's convention (> 0: exact input), so V4's remainder and total are negated around it.
    remaining, calculated, sqrt_price, tick, liquidity, lp_fees, to_protocol, crossed = swap_steps(
        state, zero_for_one, -amount_specified, limit, swap_fee, _v3_signed_step, True, protocol_fee)
    remaining, calculated = -remaining, -calculated

    specified_done = amount_specified - remaining
    if not (MIN_INT128 <= calculated <= MAX_INT128 and MIN_INT128 <= specified_done <= MAX_INT128):
        raise Overflow("SafeCastOverflow: a swap total does not fit int128")
    # V4SwapResult(...) with every field, built through its slots: the generated keyword __init__ cost a
    # third of a one-step swap.
    r = _new(V4SwapResult)
    if zero_for_one != (amount_specified < 0):  # currency1 is the specified one
        _set_amount0(r, calculated)
        _set_amount1(r, specified_done)
    else:
        _set_amount0(r, specified_done)
        _set_amount1(r, calculated)
    _set_sqrt_price_x96(r, sqrt_price)
    _set_tick(r, tick)
    _set_liquidity(r, liquidity)
    _set_zero_for_one(r, zero_for_one)
    _set_swap_fee(r, swap_fee)
    _set_fee_amount(r, lp_fees)
    _set_amount_to_protocol(r, to_protocol)
    _set_ticks_crossed(r, crossed)
    return r


_new = object.__new__
(_set_amount0, _set_amount1, _set_sqrt_price_x96, _set_tick, _set_liquidity, _set_zero_for_one, _set_swap_fee,
 _set_fee_amount, _set_amount_to_protocol, _set_ticks_crossed) = (getattr(V4SwapResult, f).__set__ for f in (
    "amount0", "amount1", "sqrt_price_x96", "tick", "liquidity", "zero_for_one", "swap_fee", "fee_amount",
    "amount_to_protocol", "ticks_crossed"))


def _v3_signed_step(
    current: int, target: int, liquidity: int, remaining: int, fee: int
) -> tuple[int, int, int, int]:
    """V4's ``computeSwapStep`` for :func:`.uniswap_v3.swap_steps`, which passes the remainder V3's way round."""
    return compute_swap_step(current, target, liquidity, -remaining, fee)


def swap_exact_input(
    state: V4PoolState, zero_for_one: bool, amount_in: int, sqrt_price_limit_x96: int = 0
) -> V4SwapResult:
    """Sell exactly ``amount_in`` (fees included); ``result.amount_out`` is the quote (``V4Quoter``'s answer).
    If the price limit stops the swap first, ``result.amount_in`` is the smaller amount actually taken."""
    if not 0 < amount_in <= MAX_INT256:
        raise InvalidAmount(f"amount_in {amount_in} must be in (0, 2**255)")
    return swap(state, zero_for_one, -amount_in, sqrt_price_limit_x96)


def swap_exact_output(
    state: V4PoolState, zero_for_one: bool, amount_out: int, sqrt_price_limit_x96: int = 0
) -> V4SwapResult:
    """Buy exactly ``amount_out``; ``result.amount_in`` is the quote.  If the pool runs dry before the limit,
    ``result.amount_out`` is smaller than asked -- check it."""
    if not 0 < amount_out <= MAX_INT256:
        raise InvalidAmount(f"amount_out {amount_out} must be in (0, 2**255)")
    return swap(state, zero_for_one, amount_out, sqrt_price_limit_x96)


def apply_swap(state: V4PoolState, result: V4SwapResult) -> V4PoolState:
    """The pool state after ``result`` (computed from ``state``); ``state`` is unchanged."""
    return state._with_slot0(result.sqrt_price_x96, result.tick, result.liquidity)


# --- modifyLiquidity -----------------------------------------------------------------------------------------


_REVERTS = PositionReverts(
    misordered="TicksMisordered", lower="TickLowerOutOfBounds", upper="TickUpperOutOfBounds",
    misaligned="TickMisaligned", overflow="TickLiquidityOverflow",
)


def get_position_delta(
    state: V4PoolState, tick_lower: int, tick_upper: int, liquidity_delta: int
) -> tuple[int, int]:
    """The caller's ``BalanceDelta`` (amount0, amount1) for a liquidity change, fees aside: negative = paid in
    (adding liquidity rounds the payment up, removing rounds the receipt down), as ``Pool.modifyLiquidity``."""
    check_position_ticks(tick_lower, tick_upper, state.tick_spacing, _REVERTS)
    # V4's signed getAmountXDelta is V3's with the opposite sign (the caller's side of the ledger).
    amount0, amount1 = position_amounts(state, tick_lower, tick_upper, liquidity_delta)
    return -amount0, -amount1


def apply_liquidity_change(
    state: V4PoolState, tick_lower: int, tick_upper: int, liquidity_delta: int
) -> V4PoolState:
    """The pool state after ``modifyLiquidity`` with ``liquidity_delta`` over ``[tick_lower, tick_upper)``
    (what a ``ModifyLiquidity`` event carries), as :func:`.uniswap_v3.apply_liquidity_change` but for V4's
    maximum liquidity per tick and revert names.  A zero delta only collects fees and changes nothing here."""
    max_liquidity = tick_spacing_to_max_liquidity_per_tick(state.tick_spacing)
    return change_position(state, tick_lower, tick_upper, liquidity_delta, max_liquidity, _REVERTS)
