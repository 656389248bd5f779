"""The optimal input of an arbitrage path, found with exact integer evaluations.

Theory of operation
-------------------
A path is a sequence of hops ``(pool snapshot, zero_for_one)``; ``x`` of the first hop's input
token goes in and ``out(x)`` of the same token comes out. The profit ``f(x) = out(x) - x`` is
concave (each hop's output is concave and increasing in its input, and so is a composition of
such functions), so it has one maximum. Everything below only ever *decides* with ``f`` evaluated
exactly (the contracts' integer arithmetic, :mod:`market.amm`); models only propose points.

**Constant-product chains have a closed form.** One V2 hop with reserves ``(r_in, r_out)`` and fee
fraction ``n/d`` (997/1000) maps ``x`` to ``n·r_out·x / (d·r_in + n·x)``: a Möbius map
``A·x / (B + C·x)`` with ``(A, B, C) = (n·r_out, d·r_in, n)``. Composing it after a map
``(A, B, C)`` gives again a Möbius map::

    A' = n·r_out·A        B' = d·r_in·B        C' = d·r_in·C + n·A

so a whole V2 chain (two-pool or cycle) is ``out(x) = A·x / (B + C·x)`` in the continuum, and
``f'(x) = A·B / (B + C·x)² - 1 = 0`` gives::

    x* = (√(A·B) - B) / C          (profitable iff A > B, i.e. the product of marginal rates > 1)

For two pools (buy on ``a``, sell on ``b``, both fee ``γ = n/d``) this is the familiar
``x* = (√(γ²·a_in·a_out·b_in·b_out) - a_in·b_in) / (γ·(b_in + γ·a_out))``. The contracts floor
every hop, so the exact optimum is within a few units of ``x*`` and the exact profit is flat there
(the curvature is ~1/reserve: moving 1e11 wei off a 1e22-wei pool's optimum costs < 1 wei). We
evaluate the integer neighbourhood ``x* - k .. x* + k`` exactly and keep the best (ties: the
smaller input), then re-centre on the steps of each intermediate token (:func:`refine_coarse`):
a 6-decimal token turns the profit into a staircase whose steps are far wider than ``k``. The
result is the exact profit of an exactly evaluated input; on tiny reserves, where flooring makes a
wide plateau of values differing by 1, it can be 1 below the brute-force maximum (the tests bound
this).

**V3, V4 or Curve in the path: bracketed Newton on local models.** Inside one price range a V3 pool *is* a
constant-product pool with virtual reserves ``(L/√P, L·√P)``. At any point ``x`` the exact
evaluation also yields every hop's post-swap state, hence a local Möbius model of the rest of the
path (:meth:`~market.pools.V3Pool.local_model`); its stationary point is exact for as long as no
hop crosses an initialized tick, so one step lands on the optimum unless ticks are crossed, and
each crossing costs one more step. The step is kept inside a bracket ``[lo, hi]`` maintained from
the sign of the model's slope ``A/B - 1`` at each evaluated point (concavity makes the sign
trustworthy); a step that would leave it, or a bracket that stops halving, falls back to regula
falsi on the two ends' slopes (or bisection). It stops when a step is smaller than
``max(2, x >> 40, one unit of the coarsest intermediate token)`` -- below a wei of profit by the
curvature argument above, or inside one step of the staircase. Typically 1-3 evaluations. The
final polish (neighbourhood, staircase, ``polish=True``, the default) costs a few more V3
simulations to gain up to about one unit of the coarsest intermediate token -- on a WBTC path
1e11-1e12 wei, enough to turn a quoted loss into a profit.

**Curve in the path: the same Newton steps.** A StableSwap hop's local model is the constant-product
curve with the same slope and curvature at the point (implicit derivatives of the invariant,
:class:`~market.pools.CurvePool`), exact to second order, so Newton converges on Curve paths as on V3
ones (on the bench e2e's market data 15-40 exact evaluations per Curve path, polish included, where
the golden-section search below took ~65 without a polish), and the polish works the same: Curve has
an exact ``min_input`` (the invariant solved the other way, then exact quotes around it).

**Saw-teeth.** A hop whose fee is rounded up to a whole unit of a coarse input token (a V3/V4 hop fed
USDC: every ``1e6 / fee`` units the fee takes one more unit) makes the exact profit a saw-tooth whose
teeth are far wider than a unit step; an early Newton iterate can sit on a tooth's top and beat the
converged point by a fraction of a unit. The polish therefore re-centres on the coarse steps around
the converged point (where the continuum optimum is), and around the best evaluated point only when
that still beats it; and among the steps it tries first are the next hop's *fee stalls*
(:func:`market.pools.fee_stall_inputs`: the teeth's tops, computed from the fee), which the one-unit
climb cannot see past a tooth's cliff. On the bench e2e's market data that took the polished search
from ~20-25 to ~8-10 exact evaluations per path, with equal or better quotes on every path.

:func:`optimize_golden` (integer golden-section search on the exact profit, first over the exponent of
``x = 2**e`` in ``[1, cap]``, then over ``x`` in that bracket) needs no model at all; it is kept as
the independent cross-check of the Newton search in the tests.

``cap`` bounds the input by the flash liquidity: the first hop's pool balance of its input token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import isqrt
from typing import Any

from market.pools import PoolState, V2Pool

# A hop (:class:`market.path.Hop`) as the optimiser's inner loops take it: the pool's snapshot in
# place of its id, so that quoting a path looks nothing up.
Leg = tuple[PoolState, bool]

NEWTON_MAX_STEPS = 24
NEIGHBOURHOOD_V2 = 2
NEIGHBOURHOOD = 1


@dataclass(frozen=True, slots=True)
class PathQuote:
    """An exactly evaluated input: ``amounts[i]`` is hop ``i``'s output."""

    amount_in: int
    amounts: tuple[int, ...]
    evaluations: int = 0

    @property
    def amount_out(self) -> int:
        return self.amounts[-1]

    @property
    def profit(self) -> int:
        return self.amounts[-1] - self.amount_in


def evaluate(hops: Sequence[Leg], amount_in: int) -> tuple[int, ...] | None:
    """Every hop's exact output for ``amount_in``, or None if a hop cannot fill it or yields 0
    (a zero output reverts on chain)."""
    if amount_in <= 0:
        return None
    x = amount_in
    outs = []
    for state, zfo in hops:
        x = state.amount_out(zfo, x)
        if x <= 0:
            return None
        outs.append(x)
    return tuple(outs)


def evaluate_with_model(hops: Sequence[Leg], amount_in: int) -> tuple[tuple[int, ...], int, int, int] | None:
    """Like :func:`evaluate`, plus the composed local model ``(A, B, C)`` of the path just past
    ``amount_in`` (a further ``δ`` in returns about ``A·δ / (B + C·δ)`` more)."""
    if amount_in <= 0:
        return None
    a, b, c = 1, 1, 0
    x = amount_in
    outs = []
    for state, zfo in hops:
        x, n, d, r_in, r_out = state.local_model(zfo, x)
        if x <= 0:
            return None
        dr = d * r_in
        c = dr * c + n * a
        a = n * r_out * a
        b = dr * b
        outs.append(x)
    return tuple(outs), a, b, c


def compose_at_zero(hops: Sequence[Leg]) -> tuple[int, int, int]:
    """The composed model ``(A, B, C)`` of the path before any input (see the module docstring)."""
    a, b, c = 1, 1, 0
    for state, zfo in hops:
        n, d, r_in, r_out = state.model0(zfo)
        dr = d * r_in
        c = dr * c + n * a
        a = n * r_out * a
        b = dr * b
    return a, b, c


def stationary_point(a: int, b: int, c: int) -> int:
    """``floor((√(A·B) - B) / C)``: where ``A·x / (B + C·x) - x`` peaks (negative if A < B)."""
    if c <= 0:
        return 0
    return (isqrt(a * b) - b) // c


def _profit(hops: Sequence[Leg], x: int) -> tuple[int, tuple[int, ...] | None]:
    outs = evaluate(hops, x)
    # An unfillable input is worth nothing: -x keeps f monotone past the edge for the searches.
    return (outs[-1] - x if outs else -x), outs


def _best_of(hops: Sequence[Leg], xs: Sequence[int], best: PathQuote | None, evals: int) -> PathQuote | None:
    for x in xs:
        outs = evaluate(hops, x)
        evals += 1
        if outs is None:
            continue
        p = outs[-1] - x
        if best is None or p > best.profit or (p == best.profit and x < best.amount_in):
            best = PathQuote(x, outs, 0)
    if best is None:
        return None
    return PathQuote(best.amount_in, best.amounts, evals)


def _neighbourhood(x: int, k: int, cap: int) -> range:
    return range(max(1, x - k), min(cap, x + k) + 1)


def optimize_v2(hops: Sequence[Leg], cap: int, k: int = NEIGHBOURHOOD_V2) -> PathQuote | None:
    """All-V2 path: closed form, then the best of its exact integer neighbourhood."""
    a, b, c = compose_at_zero(hops)
    if a <= b:
        return None
    x = min(stationary_point(a, b, c), cap)
    if x < 1:
        return None
    return _best_of(hops, _neighbourhood(x, k, cap), None, 0)


def optimize_newton(hops: Sequence[Leg], cap: int, k: int = NEIGHBOURHOOD) -> PathQuote | None:
    """V2/V3/V4/Curve path: safeguarded Newton steps on local constant-product models, exact evaluations
    (see :func:`_newton`); then the exact ``±k`` neighbourhood of the best point."""
    best, _, evals = _newton(hops, cap)
    if best is None:
        return None
    if k == 0:
        return PathQuote(best.amount_in, best.amounts, evals)
    return _best_of(hops, _neighbourhood(best.amount_in, k, cap), best, evals)


def _newton(hops: Sequence[Leg], cap: int) -> tuple[PathQuote | None, PathQuote | None, int]:
    """``(best, centre, evaluations)``: the best exactly evaluated point, and the point where the local
    model put its optimum within the stopping step (None if the search ended otherwise).

    The two differ when a hop's rounding makes the exact profit a saw-tooth (a fee rounded up to the
    next unit of a coarse input token every ``1e6 / fee`` units): an earlier iterate can sit on a
    tooth's top and beat the converged point by a fraction of a unit although the continuum optimum,
    and the best teeth, are around ``centre``.

    Every evaluation gives the exact-region model at ``x``, hence the slope ``g = A/B - 1`` there
    (a fraction). Its sign moves one end of the bracket ``[lo, hi]``. The Newton step (exact while
    no tick is crossed) is taken when it falls inside the bracket and the bracket keeps halving;
    otherwise -- many crossings with liquidity changing at each -- a regula-falsi step on the two
    ends' slopes (or a bisection while ``hi``'s slope is unknown) keeps convergence guaranteed.
    """
    a, b, c = compose_at_zero(hops)
    if a <= b:
        return None, None, 0
    centre: PathQuote | None = None
    lo, hi = 0, cap  # invariant: the optimum lies in [lo, hi]
    g_lo: tuple[int, int] | None = (a - b, b)  # slope at lo as (num, den), den > 0
    g_hi: tuple[int, int] | None = None
    x = max(1, min(stationary_point(a, b, c), hi))
    best: PathQuote | None = None
    evals = 0
    slow = 0
    for _ in range(NEWTON_MAX_STEPS):
        width = hi - lo
        res = evaluate_with_model(hops, x)
        evals += 1
        newton: int | None = None
        if res is None:
            # Unfillable (too large for some pool) or dust (too small to give any output).
            if best is None and x <= 1:
                break
            if best is not None and x < best.amount_in:
                lo, g_lo = x, None
            else:
                hi, g_hi = x - 1, None
        else:
            outs, a, b, c = res
            p = outs[-1] - x
            if best is None or p > best.profit:
                best = PathQuote(x, outs, 0)
            if a > b:
                lo, g_lo = x, (a - b, b)
            else:
                hi, g_hi = x, (a - b, b)
            step = stationary_point(a, b, c)
            # Below one unit of the coarsest intermediate token (in input units) the exact profit is a
            # staircase the model cannot see into; refine_coarse works on those steps instead.
            grain = max(x // y for y in outs[:-1]) if len(outs) > 1 else 0
            if abs(step) <= max(2, x >> 40, grain):
                centre = PathQuote(x, outs, 0)
                break  # the local model's optimum is here: no tick crossing left to account for
            newton = x + step
        if hi - lo <= 2:
            break
        slow = slow + 1 if hi - lo > width // 2 else 0
        if newton is not None and lo < newton < hi and slow < 2:
            x = newton
            continue
        slow = 0
        if g_lo is not None and g_hi is not None:
            # regula falsi on the slope: x = lo + (hi - lo) * g_lo / (g_lo - g_hi)
            (nl, dl), (nh, dh) = g_lo, g_hi
            x = lo + (hi - lo) * nl * dh // (nl * dh - nh * dl)
            x = min(max(x, lo + 1), hi - 1)
        else:
            x = (lo + hi + 1) // 2
    return best, centre, evals


_INV_PHI_NUM, _INV_PHI_DEN = 618_033_988_749_895, 10**15  # 1/φ to 15 digits: only picks probe points


def _scale_bracket(hops: Sequence[Leg], cap: int) -> tuple[int, int, int]:
    """``(lo, hi, evaluations)``: a bracket within a factor 4 holding the maximum, found by a golden-section
    search over the exponent ``e`` of ``x = 2**e`` (the profit is unimodal in ``x``, so it is in ``e``; the
    best power of two ``2**e`` puts the maximum in ``[2**(e-1), 2**(e+1)]``). The flash cap is often 10-20
    orders of magnitude above the optimum: narrowing from ``[1, cap]`` linearly spent ~80 of a Curve
    path's ~130 exact evaluations just finding its scale; in the exponent that takes ~8."""
    top = cap.bit_length() - 1  # 2**top <= cap
    if top < 8:
        return 1, cap, 0
    values: dict[int, int] = {}

    def f(e: int) -> int:
        if e not in values:
            values[e] = _profit(hops, 1 << e)[0]
        return values[e]

    a, b = 0, top
    while b - a > 2:
        cut = max(1, (b - a) * 382 // 1000)
        m1, m2 = a + cut, b - cut
        if m1 >= m2:
            m1, m2 = a + 1, b - 1
        if f(m1) < f(m2):
            a = m1
        else:
            b = m2
    e = max(range(a, b + 1), key=lambda e: (f(e), -e))
    return (1 << (e - 1)) if e else 1, cap if e >= top else min(cap, 1 << (e + 1)), len(values)


def optimize_golden(hops: Sequence[Leg], cap: int, k: int = NEIGHBOURHOOD) -> PathQuote | None:
    """Any path (used where Curve is involved): integer golden-section search on the exact profit, in the
    exponent first (:func:`_scale_bracket`), then on the input itself."""
    lo, hi, evals = _scale_bracket(hops, cap)

    def probe(lo: int, hi: int) -> tuple[int, int]:
        span = (hi - lo) * _INV_PHI_NUM // _INV_PHI_DEN
        return hi - span, lo + span

    x1, x2 = probe(lo, hi)
    f1, _ = _profit(hops, x1)
    f2, _ = _profit(hops, x2)
    evals += 2
    while hi - lo > max(3, hi >> 32):
        if f1 < f2:  # the maximum is right of x1
            lo = x1
            x1, f1 = x2, f2
            x2 = lo + (hi - lo) * _INV_PHI_NUM // _INV_PHI_DEN
            if x2 <= x1:
                x2 = x1 + 1
            f2, _ = _profit(hops, x2)
        else:  # the maximum is left of x2
            hi = x2
            x2, f2 = x1, f1
            x1 = hi - (hi - lo) * _INV_PHI_NUM // _INV_PHI_DEN
            if x1 >= x2:
                x1 = x2 - 1
            f1, _ = _profit(hops, x1)
        evals += 1
        if x1 <= lo or x2 >= hi:
            break
    centre = x1 if f1 >= f2 else x2
    return _best_of(hops, _neighbourhood(centre, k, cap), None, evals)


COARSE_RATIO_SHIFT = 10  # an intermediate unit worth > 2**10 input units is "coarse"


def coarse_boundaries(quote: PathQuote) -> list[int]:
    """Hops whose output token is worth more than ``2**10`` units of the input token."""
    x = quote.amount_in >> COARSE_RATIO_SHIFT
    return [j for j, y in enumerate(quote.amounts[:-1]) if x > y]


def refine_coarse(hops: Sequence[Leg], quote: PathQuote, cap: int, k: int = 2, every: bool = False) -> PathQuote:
    """Re-centre on the steps of *coarse* intermediate tokens (see below); keep the best.

    An intermediate token with few decimals (USDT: 1 unit ~ 6e8 wei of WETH) turns the profit into
    a staircase with steps far wider than any neighbourhood: at the continuum optimum the hop may
    waste most of a unit to flooring. For a fixed intermediate amount ``u`` the rest of the path is
    fixed, so the best input for it is the *least* input that yields ``u`` (found backwards, hop
    by hop, with each pool's exact ``min_input``). We try ``u`` in ``y - k .. y + k`` around the
    amount ``y`` the quote reaches at each coarse boundary, then climb ``u`` from the best one
    while the profit grows (:func:`_climb`: galloping, then bisection, then unit steps), so the step
    found is the best one, not just the best near ``y``. All candidates are exactly evaluated
    forwards, each input once: the window and both climbs share their steps, and an input that
    two steps (or the quote itself) need is not simulated again.
    """
    best = quote
    evals = quote.evaluations

    memo: dict[tuple[int, int], Step | None] = {}  # the initial window and both climbs share it
    forward: dict[int, tuple[int, ...] | None] = {}  # several steps can need the same least input

    def at(j: int, u: int) -> tuple[int, int, tuple[int, ...]] | None:
        if (j, u) not in memo:
            memo[j, u] = _at(j, u)
        return memo[j, u]

    def _at(j: int, u: int) -> tuple[int, int, tuple[int, ...]] | None:
        nonlocal evals
        need = u
        for i in range(j, -1, -1):
            state, zfo = hops[i]
            need = state.min_input(zfo, need)
            if need <= 0:
                return None
        if not 0 < need <= cap:
            return None
        if need == quote.amount_in:
            outs: tuple[int, ...] | None = quote.amounts
        elif need in forward:
            outs = forward[need]
        else:
            outs = forward[need] = evaluate(hops, need)
            evals += 1
        return None if outs is None else (outs[-1] - need, need, outs)

    def better(c: tuple[int, int, tuple[int, ...]] | None, b: PathQuote) -> bool:
        return c is not None and (c[0] > b.profit or (c[0] == b.profit and c[1] < b.amount_in))

    for j in range(len(hops) - 1) if every else coarse_boundaries(quote):
        y = quote.amounts[j]
        best_u = None
        # the window, and where the next hop's fee rounding ends a tooth of the saw-tooth (V3/V4: the
        # climb below cannot see past a tooth's cliff one unit at a time, and galloping to it costs ~20)
        stalls = getattr(hops[j + 1][0], "fee_stalls", None)
        tops = stalls(hops[j + 1][1], y) if stalls is not None else ()
        for u in (*range(max(1, y - k), y + k + 1), *tops):
            c = at(j, u)
            if better(c, best):
                assert c is not None
                best, best_u = PathQuote(c[1], c[2], 0), u
        if best_u is None:
            continue
        for step in (1, -1):  # climb the staircase from the best step while it pays
            best, best_u = _climb(lambda u, j=j: at(j, u), best, best_u, step, better)  # type: ignore[misc]
    return PathQuote(best.amount_in, best.amounts, evals)


Step = tuple[int, int, tuple[int, ...]]  # (profit, input, outputs) of the least input reaching a step


def _climb(at: Any, best: PathQuote, best_u: int, step: int, better: Any,
           unit_steps_left: int = 64) -> tuple[PathQuote, int]:
    """From ``best_u`` (the best step so far) towards ``step``: climb the staircase while the profit
    grows. The profit per step rises steadily until another token's step makes it fall off a cliff
    (it is a saw-tooth under a concave envelope), so stepping one unit at a time took one evaluation
    per unit, and a Newton result can land a few thousand steps of a 6-decimal token short of the
    cliff. Instead: gallop (strides 1, 2, 4, ... while each is better than the best so far), then
    bisect the last stride for the last point still better than where the gallop stopped rising,
    then finish one unit at a time both ways (the roundings of ``min_input`` make the slope jitter
    by a unit), at most ``UNIT_STEPS`` before galloping again from there: O(log distance)
    evaluations."""
    cache: dict[int, Step | None] = {}

    def value(u: int) -> Step | None:
        if u < 1:
            return None
        if u not in cache:
            cache[u] = at(u)
        return cache[u]

    last, stride = 0, 1
    while True:
        c = value(best_u + step * stride)
        if not better(c, best):
            break
        assert c is not None
        best, last = PathQuote(c[1], c[2], 0), stride
        stride *= 2
    if last:
        lo, hi = last, stride  # better than ``last``'s step at lo, not at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            c = value(best_u + step * mid)
            if better(c, best):
                assert c is not None
                best, lo = PathQuote(c[1], c[2], 0), mid
            else:
                hi = mid
        best_u += step * lo
    for d in (1, -1):
        u = best_u + d
        walked = 0
        while (c := value(u)) is not None and better(c, best):
            best, best_u = PathQuote(c[1], c[2], 0), u
            u += d
            walked += 1
            if walked == UNIT_STEPS and unit_steps_left:
                # Still rising one unit at a time: the gallop stopped at a dip of the saw-tooth, not at
                # the top. Gallop on from here: walking one unit per exact evaluation was unbounded
                # (thousands of units of a fine intermediate token on a Curve path).
                return _climb(at, best, best_u, d, better, unit_steps_left - 1)
    return best, best_u


UNIT_STEPS = 4  # unit steps taken after a gallop before galloping again from where they led


def optimize(hops: Sequence[Leg], cap: int, *, polish: bool = True) -> PathQuote | None:
    """The best exactly-evaluated input in ``[1, cap]`` for ``hops`` (None if nothing fills).

    The returned quote may still have ``profit <= 0``; callers decide what is worth a signal.
    """
    if cap < 1:
        return None
    kinds = {type(s) for s, _ in hops}
    if kinds == {V2Pool}:
        quote = optimize_v2(hops, cap)
        if quote is None:
            return None
        # V2 evaluations cost microseconds: re-centre on every intermediate token's steps, not only
        # the coarse ones (on small reserves every token is "coarse" at the wei level).
        return _flat_top(hops, refine_coarse(hops, quote, cap, every=True), cap)
    # V3, V4 and Curve: every hop has a local model exact to second order (V3/V4 inside a tick range;
    # StableSwap's slope and curvature, see market.pools.CurvePool), so safeguarded Newton steps.
    # The Newton result is within its stopping step of the optimum; the polish (coarse-token steps,
    # +-1 neighbourhood) adds up to about one unit of the coarsest intermediate token for three more
    # V3 simulations (~30-70 us). Measured on the real WBTC/WETH V3 pool (tests/data/golden) that
    # unit is worth 1e11-1e12 wei, and without it a profitable path can even be quoted at a loss:
    # the live strategy polishes (``polish=False`` is the unpolished Newton, for comparisons).
    best, centre, evals = _newton(hops, cap)
    if best is None:
        return None
    quote = PathQuote(best.amount_in, best.amounts, evals)
    if not polish:
        return quote
    if coarse_boundaries(quote):
        if centre is None or centre.amount_in == quote.amount_in or not coarse_boundaries(centre):
            return _flat_top(hops, refine_coarse(hops, quote, cap, k=1), cap)
        # The steps around the converged point first (see _newton): the continuum optimum is there, and
        # the best steps near it. The best evaluated point is polished too only when it still beats that
        # unpolished (an early iterate on a tooth's top can lie tens of thousands of steps away, and
        # climbing from it first cost up to ~60 exact evaluations for what the converged point reached
        # in a few).
        polished = refine_coarse(hops, PathQuote(centre.amount_in, centre.amounts, evals), cap, k=1)
        if (quote.profit, -quote.amount_in) > (polished.profit, -polished.amount_in):
            again = refine_coarse(hops, PathQuote(quote.amount_in, quote.amounts, polished.evaluations), cap, k=1)
            polished = again if (again.profit, -again.amount_in) > (polished.profit, -polished.amount_in) else \
                PathQuote(polished.amount_in, polished.amounts, again.evaluations)
        return _flat_top(hops, polished, cap)
    x = quote.amount_in  # already evaluated: only its neighbours
    near = _best_of(hops, [y for y in _neighbourhood(x, NEIGHBOURHOOD, cap) if y != x], quote, quote.evaluations)
    return _flat_top(hops, near, cap) if near is not None else None


FLAT_TOP_MAX = 1024  # exact evaluations the flat-top scan may spend (it only fits small pools)


def _flat_top(hops: Sequence[Leg], quote: PathQuote, cap: int) -> PathQuote:
    """On small pools, every input where the exact profit can still beat ``quote``'s, evaluated.

    Each hop floors its output, losing less than one unit of its token, worth about
    ``out / amounts[j]`` units of the path's output: the exact profit lies within ``noise`` (their
    sum, plus the input's and output's unit) below the continuum profit, which falls off quadratically
    from its top with curvature ``κ = 2AC/B²`` (the local model at the quote). An input farther than
    ``√(2·noise/κ)`` from the continuum optimum therefore cannot beat the top's exact profit; within
    that window the flooring makes a plateau of values differing by a
    few units, where the searches above can stop one or two units short of the maximum. When the window
    holds at most ``FLAT_TOP_MAX`` inputs (reserves of up to about a million units) it is scanned
    exactly, around both the quote and the model's optimum (they differ when the model ends at a tick); on real pools it is astronomically wider than that, and a unit is below a wei of
    profit anyway. The zero-size model's curvature is the largest along the path (Möbius curvature
    falls with the input), so a window already too wide there costs no evaluation at all."""
    a, b, c = compose_at_zero(hops)
    noise0 = 2 + len(hops) * max(1, a // max(1, b))  # noise in output units: a coarse bound for the pre-check
    if a <= 0 or c <= 0 or noise0 * b * b // (a * c) > FLAT_TOP_MAX**2:
        return quote
    res = evaluate_with_model(hops, quote.amount_in)
    evals = quote.evaluations + 1
    if res is None:
        return quote
    outs, a, b, c = res
    if a <= 0 or c <= 0:
        return quote
    noise = 2 + sum(-(-outs[-1] // y) for y in outs[:-1])
    w = isqrt(noise * b * b // (a * c)) + 2
    x = quote.amount_in
    # around the quote and the model's optimum (not the same when the model ends at a tick nearby)
    centre = min(max(1, x + stationary_point(a, b, c)), cap)
    lo, hi = max(1, min(x, centre) - w), min(cap, max(x, centre) + w)
    if hi - lo + 1 > FLAT_TOP_MAX:
        return PathQuote(quote.amount_in, quote.amounts, evals)
    return _best_of(hops, [y for y in range(lo, hi + 1) if y != x], quote, evals) or quote
