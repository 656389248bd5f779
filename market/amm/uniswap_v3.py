"""Mirror of ``UniswapV3Pool.swap`` (and the tick/liquidity effects of ``mint``/``burn``) on an immutable state.

The pool state is a frozen :class:`V3PoolState`: slot0 (``sqrt_price_x96``, ``tick``), active ``liquidity``,
``fee``, ``tick_spacing`` and the initialized ticks as ``tick -> liquidityNet``.  Swaps never mutate it; they return
a :class:`SwapResult`, and :func:`apply_swap` builds the next state.

Things that look like details but change results in the last wei, all reproduced from the contract:

* the loop starts from the *stored* ``state.tick``, not from ``getTickAtSqrtRatio(price)``: after a swap that ends
  exactly on tick ``t`` moving down, the pool stores ``t - 1`` (the tick has already been crossed), and the next
  swap must not cross it again;
* every step stops at the tick-bitmap word boundary (every ``256 * tick_spacing`` ticks) even with no initialized
  tick there (:mod:`market.amm.tick_bitmap`), because each ``computeSwapStep`` rounds on its own;
* a price limit of 0 means ``MIN_SQRT_RATIO + 1`` / ``MAX_SQRT_RATIO - 1`` (the quoter's convention); a swap that
  hits the limit reports the amounts actually consumed/produced, which is what QuoterV1 returns for swaps larger
  than the pool can absorb.

Protocol fees only change fee accounting, not swap amounts, so they are not modelled.  Oracle observations are not
modelled either.  Everything here is pure integer arithmetic; no floats, no I/O.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, TypeVar

from .errors import InvalidAmount, InvalidPoolState, InvalidPriceLimit, InvalidTick, Overflow, Underflow
from .full_math import MAX_INT128, MAX_INT256, MAX_UINT128, MAX_UINT160, MAX_UINT256, MIN_INT128, to_int128
from .liquidity_math import add_delta, tick_spacing_to_max_liquidity_per_tick
from .sqrt_price_math import get_amount0_delta_signed, get_amount1_delta_signed
from .swap_math import compute_swap_step
from .tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick_cached,
    get_tick_at_sqrt_ratio,
    get_tick_at_sqrt_ratio_fast,
)

__all__ = [
    "SwapResult",
    "V3PoolState",
    "apply_liquidity_change",
    "apply_swap",
    "get_position_amounts",
    "swap",
    "swap_exact_input",
    "swap_exact_output",
    "update_ticks",
]

_sqrt_ratio_at_tick = get_sqrt_ratio_at_tick_cached
_Q96 = 1 << 96

_MAX_TICK_SPACING = 16384  # UniswapV3Factory: require(tickSpacing > 0 && tickSpacing < 16384)


def checked_ticks(
    tick: int, sqrt_price_x96: int, ticks: Mapping[int, int], liquidity_gross: Mapping[int, int] | None, spacing: int
) -> tuple[Mapping[int, int], tuple[int, ...], Mapping[int, int] | None]:
    """The invariants V3 and V4 pool states share (the same TickMath and TickBitmap): the stored ``tick`` agrees
    with the price; every initialized tick is in range and a multiple of ``spacing`` with an int128 liquidityNet;
    liquidityGross, when given, has exactly those ticks, fits uint128 and is at least ``|net|``.  Returns the
    tick maps read-only, and the initialized ticks in increasing order."""
    # The stored tick is floor(log_sqrt1.0001(price)), except right after a downward swap ending exactly on
    # a tick t, when the price equals ratio(t) and the tick is t - 1.  Anything else is a mismatched slot0.
    if _sqrt_ratio_at_tick(tick) > sqrt_price_x96 or (
        tick < MAX_TICK and sqrt_price_x96 > _sqrt_ratio_at_tick(tick + 1)
    ):
        raise InvalidPoolState(f"tick {tick} is inconsistent with sqrt_price_x96 {sqrt_price_x96}")

    nets: dict[int, int] = {}
    for t, net in ticks.items():
        t, net = int(t), int(net)
        if not MIN_TICK <= t <= MAX_TICK or t % spacing:
            raise InvalidPoolState(f"initialized tick {t} out of range or not a multiple of {spacing}")
        if not MIN_INT128 <= net <= MAX_INT128:
            raise InvalidPoolState(f"liquidityNet {net} at tick {t} does not fit int128")
        nets[t] = net
    if liquidity_gross is None:
        return MappingProxyType(nets), tuple(sorted(nets)), None
    gross = {int(t): int(g) for t, g in liquidity_gross.items()}
    if gross.keys() != nets.keys():
        raise InvalidPoolState("liquidity_gross must have exactly the initialized ticks as keys")
    for t, g in gross.items():
        if not 0 < g <= MAX_UINT128 or abs(nets[t]) > g:
            raise InvalidPoolState(f"liquidityGross {g} at tick {t} invalid for liquidityNet {nets[t]}")
    return MappingProxyType(nets), tuple(sorted(nets)), MappingProxyType(gross)


@dataclass(frozen=True, slots=True, kw_only=True)
class V3PoolState:
    """Immutable snapshot of the parts of a V3 pool that determine swap results.

    ``ticks`` maps every initialized tick to its ``liquidityNet`` (a tick with net 0 can still be initialized and
    still splits swap steps, so keep it).  ``liquidity_gross`` is optional; when given (same keys) mint/burn
    bookkeeping in :func:`apply_liquidity_change` is exact, otherwise a tick is dropped when its net reaches 0.
    ``sorted_ticks`` is derived: the initialized ticks in increasing order, for bisecting.
    """

    sqrt_price_x96: int
    tick: int
    liquidity: int
    fee: int
    tick_spacing: int
    ticks: Mapping[int, int]
    liquidity_gross: Mapping[int, int] | None = None
    sorted_ticks: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spacing = self.tick_spacing
        if not 0 < spacing < _MAX_TICK_SPACING:
            raise InvalidPoolState(f"tick_spacing {spacing} outside (0, {_MAX_TICK_SPACING})")
        if not 0 <= self.fee < 1_000_000:
            raise InvalidPoolState(f"fee {self.fee} pips outside [0, 1e6)")
        if not 0 <= self.liquidity <= MAX_UINT128:
            raise InvalidPoolState(f"liquidity {self.liquidity} does not fit uint128")
        if not MIN_TICK <= self.tick <= MAX_TICK:
            raise InvalidPoolState(f"tick {self.tick} outside [{MIN_TICK}, {MAX_TICK}]")
        price = self.sqrt_price_x96
        if not MIN_SQRT_RATIO <= price < MAX_SQRT_RATIO:
            raise InvalidPoolState(f"sqrt_price_x96 {price} outside [MIN_SQRT_RATIO, MAX_SQRT_RATIO)")
        nets, ordered, gross = checked_ticks(self.tick, price, self.ticks, self.liquidity_gross, spacing)
        object.__setattr__(self, "ticks", nets)
        object.__setattr__(self, "sorted_ticks", ordered)
        object.__setattr__(self, "liquidity_gross", gross)

    def __hash__(self) -> int:
        # The generated hash would fail on the mapping proxies; equal states agree on these cheap fields.
        return hash(
            (self.sqrt_price_x96, self.tick, self.liquidity, self.fee, self.tick_spacing, len(self.ticks))
        )

    def _with_slot0(self, sqrt_price_x96: int, tick: int, liquidity: int) -> V3PoolState:
        """Copy with new slot0/liquidity, sharing the (immutable) tick maps; skips the O(n log n) validation."""
        new = object.__new__(V3PoolState)
        setattr_ = object.__setattr__
        setattr_(new, "sqrt_price_x96", sqrt_price_x96)
        setattr_(new, "tick", tick)
        setattr_(new, "liquidity", liquidity)
        setattr_(new, "fee", self.fee)
        setattr_(new, "tick_spacing", self.tick_spacing)
        setattr_(new, "ticks", self.ticks)
        setattr_(new, "liquidity_gross", self.liquidity_gross)
        setattr_(new, "sorted_ticks", self.sorted_ticks)
        return new


@dataclass(frozen=True, slots=True, kw_only=True)
class SwapResult:
    """Outcome of a simulated swap (all amounts positive, in token units).

    ``amount_in`` includes the fee and is what the pool actually takes (less than requested when an exact-input
    swap stops at the price limit); ``amount_out`` is what it pays out.  ``sqrt_price_x96``/``tick``/``liquidity``
    are the pool's slot0 and active liquidity afterwards.  ``fee_amount`` is the total LP + protocol fee charged,
    ``ticks_crossed`` the number of initialized ticks crossed.
    """

    amount_in: int
    amount_out: int
    sqrt_price_x96: int
    tick: int
    liquidity: int
    fee_amount: int = 0
    ticks_crossed: int = 0
    zero_for_one: bool = True

    @property
    def amount0(self) -> int:
        """Pool-signed token0 delta as returned by ``UniswapV3Pool.swap`` (positive = paid into the pool)."""
        return self.amount_in if self.zero_for_one else -self.amount_out

    @property
    def amount1(self) -> int:
        """Pool-signed token1 delta as returned by ``UniswapV3Pool.swap``."""
        return -self.amount_out if self.zero_for_one else self.amount_in


def swap(
    state: V3PoolState, zero_for_one: bool, amount_specified: int, sqrt_price_limit_x96: int = 0
) -> SwapResult:
    """``UniswapV3Pool.swap`` with the pool's signed convention: ``amount_specified > 0`` is exact input,
    ``< 0`` exact output.  ``sqrt_price_limit_x96 == 0`` means no limit (MIN+1 / MAX-1).  The checks are the
    contract's; the step loop is :func:`swap_steps`.
    """
    if amount_specified == 0:
        raise InvalidAmount("AS: amountSpecified is zero")
    if not -MAX_INT256 <= amount_specified <= MAX_INT256:
        raise InvalidAmount(f"amount {amount_specified} does not fit int256")

    sqrt_price = state.sqrt_price_x96
    if sqrt_price_limit_x96 == 0:
        limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    else:
        limit = sqrt_price_limit_x96
    if zero_for_one:
        if not MIN_SQRT_RATIO < limit < sqrt_price:
            raise InvalidPriceLimit(
                f"SPL: limit {limit} must be in (MIN_SQRT_RATIO, current price) when selling token0"
            )
    elif not sqrt_price < limit < MAX_SQRT_RATIO:
        raise InvalidPriceLimit(
            f"SPL: limit {limit} must be in (current price, MAX_SQRT_RATIO) when selling token1"
        )

    remaining, calculated, sqrt_price, tick, liquidity, fee_total, _, crossed = swap_steps(
        state, zero_for_one, amount_specified, limit, state.fee, compute_swap_step)

    # SafeCast.toInt256 / LowGasSafeMath on the running int256 totals; amounts only grow, so checking the totals
    # at the end is equivalent to the per-step checks.
    if not -MAX_INT256 - 1 <= calculated <= MAX_INT256:
        raise Overflow("swap: accumulated amount does not fit int256")

    # SwapResult(...) with every field, built through its slots: the generated keyword __init__ cost a third of
    # a one-step swap.
    r = _new(SwapResult)
    if amount_specified > 0:
        _set_amount_in(r, amount_specified - remaining)
        _set_amount_out(r, -calculated)
    else:
        _set_amount_in(r, calculated)
        _set_amount_out(r, remaining - amount_specified)
    _set_sqrt_price_x96(r, sqrt_price)
    _set_tick(r, tick)
    _set_liquidity(r, liquidity)
    _set_fee_amount(r, fee_total)
    _set_ticks_crossed(r, crossed)
    _set_zero_for_one(r, zero_for_one)
    return r


_new = object.__new__
(_set_amount_in, _set_amount_out, _set_sqrt_price_x96, _set_tick, _set_liquidity, _set_fee_amount, _set_ticks_crossed,
 _set_zero_for_one) = (getattr(SwapResult, f).__set__ for f in (
    "amount_in", "amount_out", "sqrt_price_x96", "tick", "liquidity", "fee_amount", "ticks_crossed", "zero_for_one"))


class TickWalkState(Protocol):
    """What :func:`swap_steps` reads from a pool state (:class:`V3PoolState` and V4's ``V4PoolState`` have it)."""

    @property
    def sqrt_price_x96(self) -> int: ...
    @property
    def tick(self) -> int: ...
    @property
    def liquidity(self) -> int: ...
    @property
    def tick_spacing(self) -> int: ...
    @property
    def ticks(self) -> Mapping[int, int]: ...
    @property
    def sorted_ticks(self) -> tuple[int, ...]: ...


class PositionState(TickWalkState, Protocol):
    """What :func:`change_position` reads, and a dataclass it can ``replace``."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def liquidity_gross(self) -> Mapping[int, int] | None: ...


S = TypeVar("S", bound=PositionState)


StepFn = Callable[[int, int, int, int, int], tuple[int, int, int, int]]


def swap_steps(
    state: TickWalkState,
    zero_for_one: bool,
    amount_specified: int,
    limit: int,
    fee: int,
    step_fn: StepFn,
    v4_step: bool = False,
    protocol_fee: int = 0,
) -> tuple[int, int, int, int, int, int, int, int]:
    """The step loop of ``UniswapV3Pool.swap``, which v4-core's ``Pool.swap`` repeats: walk the initialized ticks
    from the stored tick towards ``limit`` (already checked by the caller), one ``computeSwapStep`` per tick or
    bitmap-word segment, crossing ticks as the price reaches them.  Returns ``(remaining, calculated,
    sqrt_price_x96, tick, liquidity, fee_amount, amount_to_protocol, ticks_crossed)``; ``remaining`` and
    ``calculated`` are the contract's running totals, unchecked.

    V3's conventions throughout: ``amount_specified > 0`` is exact input, and ``step_fn`` is a ``computeSwapStep``
    taking the remainder that way.  What V4 does differently is passed in: its ``step_fn``; ``fee``, the fee
    every step runs at (V4: the LP fee with the protocol fee on top, up to 100 % for exact input); and
    ``protocol_fee``, the protocol's share carved out of each step's fee (V4's ``ProtocolFeeLibrary``; 0 in V3).

    V3's and V4's ``computeSwapStep`` agree on every step that reaches its target, so that step is inlined here for
    both, using only the operations whose results are provably in range, so the contract's reverts cannot fire
    there.  A step that stops short (the last of a swap) is inlined too wherever its price update cannot revert
    (elsewhere ``step_fn`` raises as the contract does): its new price is V3's and V4's alike, but V4's step
    (``v4_step``) takes ``amountIn = amountRemainingLessFee`` as is for exact input, where V3 recomputes it from the
    prices, and ``amountOut`` = the remainder as is for exact output, where V3 computes it from the prices and caps
    it there.  Where the active liquidity is zero every step moves the price and nothing else, so the walk jumps
    straight to the next initialized tick (or the limit) instead of stopping at each empty bitmap word; the tick it
    ends on is the one the word-by-word walk stores (see ``zero_liquidity_tick``).  tests/market/amm cross-checks
    both pools against literal transliterations of their loops over real bitmaps.
    """
    # Hot loop: everything in locals.
    sqrt_price = state.sqrt_price_x96
    exact_input = amount_specified > 0
    remaining = amount_specified
    calculated = 0
    tick = state.tick
    liquidity = state.liquidity
    fee_complement = 1_000_000 - fee
    # A step that reaches its target charges ceil(amountIn * fee / (1e6 - fee)).  At V4's 100 % (exact input
    # only) the fee-less remainder is 0, so a step reaches its target only when its amountIn is 0 too, whose
    # fee is 0 (V4 charges amountIn there): dividing by 1 instead of 0 gives that.
    fee_divisor = fee_complement or 1
    spacing = state.tick_spacing
    sorted_ticks = state.sorted_ticks
    n_ticks = len(sorted_ticks)
    nets = state.ticks
    sqrt_at = _sqrt_ratio_at_tick
    fee_total = 0
    to_protocol = 0
    crossed = 0

    while remaining != 0 and sqrt_price != limit:
        # TickBitmap.nextInitializedTickWithinOneWord, inlined (see tick_bitmap.py for the reasoning); with no
        # liquidity the word boundaries change nothing, so the search is not bounded by the word.
        if zero_for_one:
            i = bisect_right(sorted_ticks, tick) - 1
            if liquidity:
                tick_next = (((tick // spacing) >> 8) << 8) * spacing
                initialized = i >= 0 and sorted_ticks[i] >= tick_next
            else:
                tick_next = MIN_TICK
                initialized = i >= 0
            if initialized:
                tick_next = sorted_ticks[i]
            elif tick_next < MIN_TICK:
                tick_next = MIN_TICK
            sqrt_next = sqrt_at(tick_next)
            target = limit if sqrt_next < limit else sqrt_next
        else:
            i = bisect_right(sorted_ticks, tick)
            if liquidity:
                tick_next = (((((tick // spacing) + 1) >> 8) << 8) + 255) * spacing
                initialized = i < n_ticks and sorted_ticks[i] <= tick_next
            else:
                tick_next = MAX_TICK
                initialized = i < n_ticks
            if initialized:
                tick_next = sorted_ticks[i]
            elif tick_next > MAX_TICK:
                tick_next = MAX_TICK
            sqrt_next = sqrt_at(tick_next)
            target = limit if sqrt_next > limit else sqrt_next

        sqrt_start = sqrt_price
        if not liquidity:
            # computeSwapStep with zero liquidity: the price goes to the target, every amount is 0.
            if target != sqrt_next:  # the limit comes first
                sqrt_price = target
                tick = zero_liquidity_tick(target, zero_for_one, spacing)
                break
            sqrt_price = sqrt_next
        else:
            # computeSwapStep, inlined for a step that reaches its target; amounts as in SqrtPriceMath (token0
            # delta: mulDiv by the upper price, then divide by the lower; token1 delta: times L over Q96).
            # step_in < 0: not computed here (an exact-output step that stops short, or an input edge case).
            if zero_for_one:  # price moves down to target <= sqrt_price: token0 in, token1 out
                diff = sqrt_price - target
                if exact_input:
                    q, r = divmod((liquidity << 96) * diff, sqrt_price)
                    if r:
                        q += 1
                    q, r = divmod(q, target)
                    step_in = q + 1 if r else q
                    less_fee = remaining * fee_complement // 1_000_000
                    if less_fee >= step_in:
                        step_out = (liquidity * diff) >> 96
                        sqrt_price = target
                        q, r = divmod(step_in * fee, fee_divisor)
                        step_fee = q + 1 if r else q
                    else:
                        # getNextSqrtPriceFromAmount0RoundingUp, the branch without 256-bit overflow
                        numerator1 = liquidity << 96
                        denominator = numerator1 + less_fee * sqrt_price
                        step_in = -1
                        if less_fee and denominator <= MAX_UINT256:
                            q, r = divmod(numerator1 * sqrt_price, denominator)
                            price_after = q + 1 if r else q
                            if price_after != target:
                                diff = sqrt_price - price_after
                                if v4_step:
                                    step_in = less_fee
                                else:
                                    q, r = divmod(numerator1 * diff, sqrt_price)
                                    if r:
                                        q += 1
                                    q, r = divmod(q, price_after)
                                    step_in = q + 1 if r else q
                                step_out = (liquidity * diff) >> 96
                                step_fee = remaining - step_in
                                sqrt_price = price_after
                else:
                    step_out = (liquidity * diff) >> 96
                    step_in = -1
                    if -remaining >= step_out:
                        q, r = divmod((liquidity << 96) * diff, sqrt_price)
                        if r:
                            q += 1
                        q, r = divmod(q, target)
                        step_in = q + 1 if r else q
                        sqrt_price = target
                        q, r = divmod(step_in * fee, fee_divisor)
                        step_fee = q + 1 if r else q
                    elif -remaining <= MAX_UINT160:
                        # stops short: getNextSqrtPriceFromAmount1RoundingDown removing -remaining, the shift
                        # branch; the amounts to that price (V3 caps its output at the remainder, V4 takes it)
                        q, r = divmod(-remaining << 96, liquidity)
                        if r:
                            q += 1
                        if sqrt_price > q and sqrt_price - q != target:
                            price_after = sqrt_price - q
                            diff = sqrt_price - price_after
                            q, r = divmod((liquidity << 96) * diff, sqrt_price)
                            if r:
                                q += 1
                            q, r = divmod(q, price_after)
                            step_in = q + 1 if r else q
                            if v4_step:
                                step_out = -remaining
                            else:
                                step_out = (liquidity * diff) >> 96
                                if step_out > -remaining:
                                    step_out = -remaining
                            q, r = divmod(step_in * fee, fee_divisor)
                            step_fee = q + 1 if r else q
                            sqrt_price = price_after
            else:  # price moves up to target >= sqrt_price: token1 in, token0 out
                diff = target - sqrt_price
                if exact_input:
                    q, r = divmod(liquidity * diff, _Q96)
                    step_in = q + 1 if r else q
                    less_fee = remaining * fee_complement // 1_000_000
                    if less_fee >= step_in:
                        step_out = (liquidity << 96) * diff // target // sqrt_price
                        sqrt_price = target
                        q, r = divmod(step_in * fee, fee_divisor)
                        step_fee = q + 1 if r else q
                    else:
                        # getNextSqrtPriceFromAmount1RoundingDown, the shift branch
                        step_in = -1
                        if less_fee <= MAX_UINT160:
                            price_after = sqrt_price + (less_fee << 96) // liquidity
                            if price_after != target and price_after <= MAX_UINT160:
                                diff = price_after - sqrt_price
                                if v4_step:
                                    step_in = less_fee
                                else:
                                    q, r = divmod(liquidity * diff, _Q96)
                                    step_in = q + 1 if r else q
                                step_out = (liquidity << 96) * diff // price_after // sqrt_price
                                step_fee = remaining - step_in
                                sqrt_price = price_after
                else:
                    step_out = (liquidity << 96) * diff // target // sqrt_price
                    step_in = -1
                    if -remaining >= step_out:
                        q, r = divmod(liquidity * diff, _Q96)
                        step_in = q + 1 if r else q
                        sqrt_price = target
                        q, r = divmod(step_in * fee, fee_divisor)
                        step_fee = q + 1 if r else q
                    else:
                        # stops short: getNextSqrtPriceFromAmount0RoundingUp removing -remaining, where it does
                        # not revert; the amounts to that price (V3 caps its output at the remainder, V4 takes it)
                        numerator1 = liquidity << 96
                        product = -remaining * sqrt_price
                        if product <= MAX_UINT256 and numerator1 > product:
                            q, r = divmod(numerator1 * sqrt_price, numerator1 - product)
                            price_after = q + 1 if r else q
                            if price_after != target and price_after <= MAX_UINT160:
                                diff = price_after - sqrt_price
                                q, r = divmod(liquidity * diff, _Q96)
                                step_in = q + 1 if r else q
                                if v4_step:
                                    step_out = -remaining
                                else:
                                    step_out = numerator1 * diff // price_after // sqrt_price
                                    if step_out > -remaining:
                                        step_out = -remaining
                                q, r = divmod(step_in * fee, fee_divisor)
                                step_fee = q + 1 if r else q
                                sqrt_price = price_after
            if step_in < 0:
                sqrt_price, step_in, step_out, step_fee = step_fn(sqrt_price, target, liquidity, remaining, fee)

            if exact_input:
                remaining -= step_in + step_fee
                calculated -= step_out
            else:
                remaining += step_out
                calculated += step_in + step_fee
            if protocol_fee:  # ProtocolFeeLibrary: the protocol's share of the step, the rest is the LPs'
                delta = step_fee if fee == protocol_fee else (step_in + step_fee) * protocol_fee // 1_000_000
                step_fee -= delta
                to_protocol += delta
            fee_total += step_fee

            if sqrt_price != sqrt_next:
                # Stopped inside the range (amount exhausted or price limit): recompute; if the price did not move
                # we may be sitting on a lower tick boundary already transitioned, so the tick must stay as is.
                if sqrt_price != sqrt_start:
                    tick = get_tick_at_sqrt_ratio_fast(sqrt_price)
                continue
        # Reached the next tick (or word boundary): cross it if initialized.
        if initialized:
            net = nets[tick_next]
            liquidity = add_delta(liquidity, -net if zero_for_one else net)
            crossed += 1
        tick = tick_next - 1 if zero_for_one else tick_next

    return remaining, calculated, sqrt_price, tick, liquidity, fee_total, to_protocol, crossed


def zero_liquidity_tick(limit: int, zero_for_one: bool, spacing: int) -> int:
    """The tick the pool stores after a walk with no liquidity ends at ``limit``.

    Word by word, the walk stops at every bitmap word boundary; ending on one exactly while moving down stores
    the tick below it (the boundary counts as crossed), anywhere else the tick is ``getTickAtSqrtRatio``.
    """
    tick = get_tick_at_sqrt_ratio(limit)
    if zero_for_one and tick % (spacing << 8) == 0 and _sqrt_ratio_at_tick(tick) == limit:
        return tick - 1
    return tick


def swap_exact_input(
    state: V3PoolState, zero_for_one: bool, amount_in: int, sqrt_price_limit_x96: int = 0
) -> SwapResult:
    """Sell exactly ``amount_in`` (fee included) of token0 (``zero_for_one``) or token1.

    Matches ``QuoterV1.quoteExactInputSingle``: ``result.amount_out`` is the quote.  If the price limit is hit
    first, ``result.amount_in`` is the smaller amount the pool actually took.
    """
    if not 0 < amount_in <= MAX_INT256:
        raise InvalidAmount(f"amount_in {amount_in} must be in (0, 2**255)")
    return swap(state, zero_for_one, amount_in, sqrt_price_limit_x96)


def swap_exact_output(
    state: V3PoolState, zero_for_one: bool, amount_out: int, sqrt_price_limit_x96: int = 0
) -> SwapResult:
    """Buy exactly ``amount_out`` of token1 (``zero_for_one``) or token0.

    Matches ``QuoterV1.quoteExactOutputSingle`` with an explicit limit: ``result.amount_in`` is the quote.  If the
    pool runs out of liquidity before the limit, ``result.amount_out`` is less than requested -- check it.
    """
    if not 0 < amount_out <= MAX_INT256:
        raise InvalidAmount(f"amount_out {amount_out} must be in (0, 2**255)")
    return swap(state, zero_for_one, -amount_out, sqrt_price_limit_x96)


def apply_swap(state: V3PoolState, result: SwapResult) -> V3PoolState:
    """The pool state after ``result`` (which must have been computed from ``state``); ``state`` is unchanged."""
    return state._with_slot0(result.sqrt_price_x96, result.tick, result.liquidity)


# --- mint / burn ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionReverts:
    """The contract's names for what reverts a position change: V3's require strings, V4's custom errors."""

    misordered: str
    lower: str
    upper: str
    misaligned: str
    overflow: str


# TickBitmap.flipTick's spacing require has no reason string in V3.
_V3_REVERTS = PositionReverts(misordered="TLU", lower="TLM", upper="TUM", misaligned="flipTick", overflow="LO")


def check_position_ticks(tick_lower: int, tick_upper: int, tick_spacing: int, reverts: PositionReverts) -> None:
    """``checkTicks`` plus the spacing requirement of ``TickBitmap.flipTick`` (V3 and V4 alike)."""
    if tick_lower >= tick_upper:
        raise InvalidTick(f"{reverts.misordered}: tick_lower {tick_lower} >= tick_upper {tick_upper}")
    if tick_lower < MIN_TICK:
        raise InvalidTick(f"{reverts.lower}: tick_lower {tick_lower} < MIN_TICK")
    if tick_upper > MAX_TICK:
        raise InvalidTick(f"{reverts.upper}: tick_upper {tick_upper} > MAX_TICK")
    if tick_lower % tick_spacing or tick_upper % tick_spacing:
        raise InvalidTick(f"{reverts.misaligned}: ticks {tick_lower}, {tick_upper} "
                          f"must be multiples of tick spacing {tick_spacing}")


def position_amounts(
    state: TickWalkState, tick_lower: int, tick_upper: int, liquidity_delta: int
) -> tuple[int, int]:
    """The pool's side of a liquidity change (positive: owed to the pool), ticks already checked: mint rounds up,
    burn rounds down.  V4's caller-side ``BalanceDelta`` is the same with the opposite sign."""
    if liquidity_delta == 0:
        return 0, 0
    sqrt_lower = _sqrt_ratio_at_tick(tick_lower)
    sqrt_upper = _sqrt_ratio_at_tick(tick_upper)
    if state.tick < tick_lower:
        return get_amount0_delta_signed(sqrt_lower, sqrt_upper, liquidity_delta), 0
    if state.tick < tick_upper:
        return (
            get_amount0_delta_signed(state.sqrt_price_x96, sqrt_upper, liquidity_delta),
            get_amount1_delta_signed(sqrt_lower, state.sqrt_price_x96, liquidity_delta),
        )
    return 0, get_amount1_delta_signed(sqrt_lower, sqrt_upper, liquidity_delta)


def change_position(
    state: S, tick_lower: int, tick_upper: int, liquidity_delta: int, max_liquidity: int, reverts: PositionReverts
) -> S:
    """The pool state after a position change of ``liquidity_delta`` over ``[tick_lower, tick_upper)``, V3 and V4
    alike: the ticks checked, :func:`update_ticks` at both ends (``max_liquidity`` per tick), and the active
    liquidity changed when the current tick is inside the range.  A zero delta returns ``state`` itself."""
    check_position_ticks(tick_lower, tick_upper, state.tick_spacing, reverts)
    if not MIN_INT128 <= liquidity_delta <= MAX_INT128:
        raise Overflow(f"liquidity_delta {liquidity_delta} does not fit int128")
    if liquidity_delta == 0:
        return state
    nets = dict(state.ticks)
    gross = dict(state.liquidity_gross) if state.liquidity_gross is not None else None
    update_ticks(nets, gross, tick_lower, tick_upper, liquidity_delta, max_liquidity, reverts.overflow)
    liquidity = state.liquidity
    if tick_lower <= state.tick < tick_upper:
        liquidity = add_delta(liquidity, liquidity_delta)
    return replace(state, liquidity=liquidity, ticks=nets, liquidity_gross=gross)


def get_position_amounts(
    state: V3PoolState, tick_lower: int, tick_upper: int, liquidity_delta: int
) -> tuple[int, int]:
    """``(amount0, amount1)`` owed to (positive) or paid by (negative) the pool for a liquidity change, exactly as
    ``UniswapV3Pool._modifyPosition`` computes them (mint rounds up, burn rounds down).
    """
    check_position_ticks(tick_lower, tick_upper, state.tick_spacing, _V3_REVERTS)
    return position_amounts(state, tick_lower, tick_upper, liquidity_delta)


def apply_liquidity_change(
    state: V3PoolState, tick_lower: int, tick_upper: int, liquidity_delta: int
) -> V3PoolState:
    """The pool state after a mint (``liquidity_delta > 0``) or burn (``< 0``) of ``[tick_lower, tick_upper)``.

    Mirrors ``_updatePosition``/``Tick.update``: the lower tick's liquidityNet gains the delta, the upper's loses
    it; a tick becomes initialized when its liquidityGross leaves 0 and is cleared when it returns to 0; the
    active liquidity changes when the current tick is inside the range.  Without ``liquidity_gross`` tracking a
    tick is cleared when its liquidityNet returns to 0 (exact unless another position shares the tick).
    Position ownership is not tracked, so burning more than a position holds is not detected.
    """
    max_liquidity = tick_spacing_to_max_liquidity_per_tick(state.tick_spacing)
    return change_position(state, tick_lower, tick_upper, liquidity_delta, max_liquidity, _V3_REVERTS)


def update_ticks(
    nets: dict[int, int],
    gross: dict[int, int] | None,
    tick_lower: int,
    tick_upper: int,
    liquidity_delta: int,
    max_liquidity: int,
    overflow_reason: str,
) -> None:
    """``Tick.update`` on both ends of a position, in place (shared by V3 and V4, whose tick bookkeeping is the
    same): the lower tick's liquidityNet gains the delta, the upper's loses it; a tick is cleared when its
    liquidityGross returns to 0 (without gross tracking: when its net does).  ``overflow_reason`` is the
    contract's name for a gross above ``max_liquidity`` (V3 ``LO``, V4 ``TickLiquidityOverflow``)."""
    for t, net_delta in ((tick_lower, liquidity_delta), (tick_upper, -liquidity_delta)):
        net_after = to_int128(nets.get(t, 0) + net_delta)
        if gross is not None:
            gross_after = add_delta(gross.get(t, 0), liquidity_delta)
            if gross_after > max_liquidity:
                raise Overflow(f"{overflow_reason}: liquidityGross {gross_after} at tick {t} exceeds {max_liquidity}")
            if gross_after == 0:
                nets.pop(t, None)
                gross.pop(t, None)
                continue
            gross[t] = gross_after
            nets[t] = net_after
        elif liquidity_delta < 0 and t not in nets:
            raise Underflow(f"LS: burning liquidity at uninitialized tick {t}")
        elif liquidity_delta < 0 and net_after == 0:
            del nets[t]
        else:
            nets[t] = net_after
