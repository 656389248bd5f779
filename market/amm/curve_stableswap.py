"""Mirror of the classic Curve StableSwap pool math (``StableSwap3Pool.vy``, Vyper 0.2.4, DAI/USDC/USDT).

Functions mirror the contract's ``_A`` (amplification ramp), ``_xp``, ``get_D``, ``get_y``, ``get_dy`` and the
balance bookkeeping of ``exchange``.  The contract is compiled for a fixed ``N_COINS`` with constant ``RATES``;
here the number of coins is ``len(balances)`` (2 and 3 are what the classic pools deploy) and the rates are passed
in, so the same code serves the 2-coin pools of that generation (e.g. sUSD-era/compound-style plain pools with
``rates[i] = 10**(36 - decimals)``, or lending pools with their stored rates).

What is mirrored exactly, because it moves results by a wei:

* every division is Vyper's floor division on uint256, in the contract's order (``D_P * D / (x * N)`` one coin at
  a time, the ``- 1`` in ``dy``);
* both Newton loops stop after at most 255 iterations and, as in this contract, return the last iterate instead of
  reverting (later pools ``raise`` there);
* ``get_dy`` charges the fee in *coin* units after converting, while ``exchange`` charges it in normalised
  (``xp``) units before converting -- the two can differ by one unit, and the pool really pays the ``exchange``
  amount.  Use :func:`exchange` to update balances.

Not covered: the later ``A_PRECISION = 100`` pools (``A_precise``; different ``get_D``/``get_y`` scaling and
``get_dy`` rounding order), meta pools and the crypto (v2) pools.

Reverts become exceptions: Vyper's checked uint256 arithmetic (overflow, underflow, division by zero) and the
asserts on coin indices.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import AMMError, DivisionByZero, InsufficientLiquidity, Overflow, Underflow
from .full_math import MAX_UINT256

__all__ = [
    "FEE_DENOMINATOR",
    "MAX_A",
    "PRECISION",
    "exchange",
    "exchange_dy",
    "get_A",
    "get_D",
    "get_dy",
    "get_xp",
    "get_y",
]

FEE_DENOMINATOR = 10**10  # fee and admin_fee are stored * 1e10 (4_000_000 = 0.04 %)
PRECISION = 10**18  # xp precision; LENDING_PRECISION has the same value
MAX_A = 10**6
_MAX_ITERATIONS = 255


def _u(x: int) -> int:
    """Vyper uint256 range check for a product/sum (checked arithmetic reverts on overflow/underflow)."""
    if x > MAX_UINT256:
        raise Overflow("StableSwap: uint256 overflow")
    if x < 0:
        raise Underflow("StableSwap: uint256 underflow")
    return x


def _div(x: int, y: int) -> int:
    if y == 0:
        raise DivisionByZero("StableSwap: division by zero")
    return x // y


def _check_indices(i: int, j: int, n: int) -> None:
    # The contract's asserts ("dev: same coin", "j below zero", ...); also keeps Python's negative indexing out.
    if i == j:
        raise AMMError("StableSwap: same coin")
    if not (0 <= i < n and 0 <= j < n):
        raise AMMError(f"StableSwap: coin index out of range (i={i}, j={j}, n={n})")


def get_A(initial_A: int, future_A: int, initial_A_time: int, future_A_time: int, now: int) -> int:  # noqa: N802
    """``_A()``: the amplification coefficient at time ``now`` while ramping linearly from ``initial_A`` (at
    ``initial_A_time``) to ``future_A`` (at ``future_A_time``).  After the ramp, or with ``future_A_time == 0``,
    it is ``future_A``.  Time is passed in (block timestamp) -- nothing here reads a clock.

    The two branches exist because uint256 cannot hold a negative difference; note the rounding: ramping up
    rounds the increment down, ramping down rounds the decrement down (i.e. A is rounded *up* while falling).
    """
    if now < future_A_time:
        elapsed = _u(now - initial_A_time)
        duration = future_A_time - initial_A_time
        if future_A > initial_A:
            return initial_A + _div(_u((future_A - initial_A) * elapsed), duration)
        return _u(initial_A - _div(_u((initial_A - future_A) * elapsed), duration))
    return future_A


def get_xp(balances: Sequence[int], rates: Sequence[int]) -> list[int]:
    """``_xp``/``_xp_mem``: balances scaled to 18 decimals (``rate * balance / 1e18``)."""
    if len(balances) != len(rates):
        raise AMMError("StableSwap: balances and rates must have the same length")
    return [_u(rate * balance) // PRECISION for rate, balance in zip(rates, balances)]


def get_D(xp: Sequence[int], amp: int) -> int:  # noqa: N802
    """``get_D``: the StableSwap invariant for normalised balances ``xp`` and amplification ``amp`` (plain A).

    Solves ``A n^n S + D = A n^n D + D^(n+1) / (n^n prod x)`` by Newton iteration from ``D = S``; stops when two
    iterates differ by <= 1 or after 255 rounds (returning the last iterate, as this contract does).
    """
    n = len(xp)
    s = 0
    for x in xp:
        s += x
    _u(s)
    if s == 0:
        return 0

    d = s
    ann = amp * n
    for _ in range(_MAX_ITERATIONS):
        d_p = d
        for x in xp:
            # "If division by 0, this will be borked: only withdrawal will work. And that is good"
            d_p = _div(_u(d_p * d), x * n)
        d_prev = d
        numerator = _u(_u(_u(ann * s) + d_p * n) * d)
        denominator = _u(_u((ann - 1) * d) + (n + 1) * d_p)
        d = _div(numerator, denominator)
        if _converged(d, d_prev):
            break
    return d


def _converged(new: int, prev: int) -> bool:
    """Both Newton loops' stopping test (the contract writes it out in each): within one unit, compared
    without an unsigned underflow."""
    return new - prev <= 1 if new > prev else prev - new <= 1


def get_y(i: int, j: int, x: int, xp: Sequence[int], amp: int, d: int | None = None) -> int:
    """``get_y``: the new normalised balance of coin ``j`` when coin ``i``'s becomes ``x``, keeping D constant.

    D is recomputed from ``xp`` (the balances *before* the trade), as in the contract, unless the caller
    passes it: ``d`` must be ``get_D(xp, amp)``, which depends on the balances only, so a caller quoting
    many amounts on one pool state computes it once (the result is the same to the wei).  Solves
    ``y^2 + (b - D) y = c`` by Newton iteration from ``y = D``.
    """
    n = len(xp)
    _check_indices(i, j, n)

    if d is None:
        d = get_D(xp, amp)
    c = d
    s_ = 0
    ann = amp * n
    for k in range(n):
        if k == i:
            x_k = x
        elif k != j:
            x_k = xp[k]
        else:
            continue
        s_ = _u(s_ + x_k)
        c = _div(_u(c * d), x_k * n)
    c = _div(_u(c * d), ann * n)
    b = s_ + _div(d, ann)  # - D (subtracted below, where it cannot underflow)

    y = d
    for _ in range(_MAX_ITERATIONS):
        y_prev = y
        # Vyper evaluates (2 * y + b) - D left to right; the subtraction is checked.
        y = _div(_u(y * y + c), _u(2 * y + b - d))
        if _converged(y, y_prev):
            break
    return y


def _xp_and_y_after(
    i: int, j: int, dx: int, balances: Sequence[int], rates: Sequence[int], amp: int,
    d: int | None = None, xp: Sequence[int] | None = None,
) -> tuple[Sequence[int], int]:
    """The lines ``get_dy`` and ``exchange`` both open with in the contract: the normalised balances
    ``xp`` and coin ``j``'s normalised balance ``y`` once ``dx`` of coin ``i`` is in. ``xp`` and ``d``,
    when given, are ``get_xp(balances, rates)`` and its ``get_D`` (see :func:`get_y`)."""
    _check_indices(i, j, len(balances))
    if xp is None:
        xp = get_xp(balances, rates)
    x = _u(xp[i] + _u(dx * rates[i]) // PRECISION)
    return xp, get_y(i, j, x, xp, amp, d)


def get_dy(i: int, j: int, dx: int, balances: Sequence[int], rates: Sequence[int], amp: int, fee: int) -> int:
    """``get_dy``: output of coin ``j`` (in its own units) for ``dx`` of coin ``i``, after the pool fee.

    ``rates[k]`` are the contract's RATES (``10**(36 - decimals)`` for plain coins), ``amp`` is A as returned by
    ``A()`` (see :func:`get_A`), ``fee`` is ``fee()`` on the 1e10 scale.  This is the view the pool exposes; the
    amount actually transferred by ``exchange`` can be one unit different (see :func:`exchange`).
    """
    xp, y = _xp_and_y_after(i, j, dx, balances, rates, amp)
    dy = _div(_u(_u(xp[j] - y - 1) * PRECISION), rates[j])
    fee_amount = _u(fee * dy) // FEE_DENOMINATOR
    return dy - fee_amount


def exchange_dy(
    i: int, j: int, dx: int, balances: Sequence[int], rates: Sequence[int], amp: int, fee: int, *,
    d: int | None = None, xp: Sequence[int] | None = None,
) -> tuple[int, int, int]:
    """The amounts of ``exchange``: ``(dy, dy_fee, y)`` -- what the pool pays (coin ``j`` units), its fee
    (normalised) and coin ``j``'s normalised balance on the invariant after ``dx`` of coin ``i`` came in
    (the point a quoting caller wants the curve's slope at). ``xp``, ``d``: as for :func:`exchange`."""
    xp, y = _xp_and_y_after(i, j, dx, balances, rates, amp, d, xp)

    dy_xp = _u(xp[j] - y - 1)  # -1 just in case there were some rounding errors
    dy_fee = _u(dy_xp * fee) // FEE_DENOMINATOR
    return _div(_u(_u(dy_xp - dy_fee) * PRECISION), rates[j]), dy_fee, y


def exchange(
    i: int, j: int, dx: int, balances: Sequence[int], rates: Sequence[int], amp: int, fee: int,
    admin_fee: int = 0, min_dy: int = 0, *, d: int | None = None, xp: Sequence[int] | None = None,
) -> tuple[int, list[int]]:
    """``exchange`` without the token transfers: ``(dy, new_balances)``. ``xp`` and ``d``: the pool
    state's normalised balances and invariant when the caller has them (see :func:`get_y`).

    ``dx`` is what the pool actually received (for a fee-on-transfer coin, the balance increase).  The output
    side's balance drops by ``dy`` plus the admin share of the fee (which leaves the pool's accounting); the LP
    share of the fee stays in the balance.  Raises :class:`InsufficientLiquidity` when ``dy < min_dy`` (the
    contract's "Exchange resulted in fewer coins than expected").
    """
    dy, dy_fee, _ = exchange_dy(i, j, dx, balances, rates, amp, fee, d=d, xp=xp)
    if dy < min_dy:
        raise InsufficientLiquidity(
            f"StableSwap: exchange resulted in fewer coins than expected ({dy} < {min_dy})"
        )

    dy_admin_fee = _u(dy_fee * admin_fee) // FEE_DENOMINATOR
    dy_admin_fee = _div(_u(dy_admin_fee * PRECISION), rates[j])

    new_balances = list(balances)
    new_balances[i] = _u(balances[i] + dx)
    new_balances[j] = _u(balances[j] - dy - dy_admin_fee)
    return dy, new_balances
