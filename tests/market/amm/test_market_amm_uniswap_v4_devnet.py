"""The V4 mirror against the official PoolManager bytecode on the devnet, to the wei.

For every pool the simulator admits (no hook, an observing hook, a protocol fee), random states are made on the
shared devnet inside an ``evm_snapshot``: random positions (some with a bound exactly at the current price's
tick), swaps that stop exactly on an initialized tick (so the next swap starts on it), then a sequence of random
exact-input and exact-output swaps, some with price limits, sized to cross ticks. Before each swap the whole pool
state is read from the PoolManager's storage; the simulated ``BalanceDelta``, slot0 and liquidity must equal the
``Swap`` event, the trader's balance changes and the state read back afterwards.  Then ``evm_revert``.

The pool with the amount-changing hook is refused by :func:`market.amm.pool_key.admission`, and executing a swap
on it shows why: the trader gets less than the core math says.
"""

from __future__ import annotations

import random

import pytest

from market.amm.errors import AMMError
from market.amm.pool_key import PoolKey, admission
from market.amm.tick_math import MAX_TICK, MIN_TICK, get_sqrt_ratio_at_tick
from market.amm.uniswap_v4 import V4PoolState, apply_liquidity_change, apply_swap, swap
from tools.devnet.actions import TxFailed

Q96 = 1 << 96
TRIALS_PER_POOL = 6
SWAPS_PER_TRIAL = 4


def key_of(pool) -> PoolKey:
    return PoolKey.of(pool.token0, pool.token1, pool.fee, pool.tick_spacing, pool.hooks)


def read_state(client, pool) -> V4PoolState:
    raw = client.v4_raw_state(pool)
    return V4PoolState(
        sqrt_price_x96=raw.slot0.sqrt_price_x96, tick=raw.slot0.tick, liquidity=raw.liquidity,
        lp_fee=raw.slot0.lp_fee, protocol_fee=raw.slot0.protocol_fee, tick_spacing=pool.tick_spacing,
        ticks={t: net for t, (_, net) in raw.ticks.items()},
        liquidity_gross={t: gross for t, (gross, _) in raw.ticks.items()},
    )


def _same_state(a: V4PoolState, b: V4PoolState) -> bool:
    return (a.sqrt_price_x96, a.tick, a.liquidity, dict(a.ticks), dict(a.liquidity_gross or {})) == (
        b.sqrt_price_x96, b.tick, b.liquidity, dict(b.ticks), dict(b.liquidity_gross or {}))


@pytest.fixture(scope="module")
def v4net(devnet):
    d = devnet.deployment
    assert d.v4 is not None and len(d.v4_pools) >= 6
    return devnet


def test_devnet_pools_are_the_keys_we_compute_and_admission_sorts_them(v4net):
    d = v4net.deployment
    by_hook = {}
    for p in d.v4_pools:
        key = key_of(p)
        assert "0x" + key.to_id().hex() == p.pool_id
        by_hook.setdefault(p.hook_name, []).append(admission(key))
        state = read_state(v4net.client, p)  # the deployed state is one our model accepts
        assert state.lp_fee == p.fee and state.liquidity > 0 and len(state.ticks) == 8
    assert by_hook[""] == [None] * 4 and by_hook["counter"] == [None]
    assert "afterSwapReturnDelta" in by_hook["skim"][0]
    assert read_state(v4net.client, d.v4_pool("WETH", "USDC", 3000)).protocol_fee == (200 << 12) | 500


def _amount(rng, state: V4PoolState, zero_for_one: bool, exact_in: bool) -> int:
    """Log-uniform up to a good share of the range's virtual reserves (large ones cross ticks)."""
    x = state.liquidity * Q96 // state.sqrt_price_x96
    y = state.liquidity * state.sqrt_price_x96 // Q96
    reserve = (x if zero_for_one else y) if exact_in else (y if zero_for_one else x)
    return max(1, int(max(reserve, 10**6) * 10 ** rng.uniform(-7, -0.4 if exact_in else -1)))


def _exact(client, trader, pool, state, zero_for_one, amount_specified, limit, counts, *,
           verify: bool = False) -> V4PoolState:
    """Simulate, execute, compare; returns the state after the swap (with ``verify``, also read back whole
    from the PoolManager's storage and compared)."""
    try:
        sim = swap(state, zero_for_one, amount_specified, limit)
    except AMMError:
        with pytest.raises(TxFailed):
            client.v4_swap(trader, pool, zero_for_one, amount_specified, limit)
        counts["reverts"] += 1
        return state
    got = client.v4_swap(trader, pool, zero_for_one, amount_specified, limit)
    assert (got.amount0, got.amount1) == (sim.amount0, sim.amount1)
    assert (got.paid0, got.paid1) == (sim.amount0, sim.amount1)  # the trader's balances moved by exactly that
    assert (got.sqrt_price_x96, got.tick, got.liquidity, got.fee) == (
        sim.sqrt_price_x96, sim.tick, sim.liquidity, sim.swap_fee)
    after = apply_swap(state, sim)  # a swap changes slot0 and liquidity only: both just checked against the event
    if verify:
        assert _same_state(read_state(client, pool), after)
    counts["swaps"] += 1
    counts["crossing"] += sim.ticks_crossed > 0
    counts["ticks_crossed"] += sim.ticks_crossed
    counts["exact_out"] += amount_specified > 0
    counts["limited"] += limit != 0
    counts["from_initialized"] += state.tick in state.ticks or state.tick + 1 in state.ticks and (
        state.sqrt_price_x96 == get_sqrt_ratio_at_tick(state.tick + 1))
    return after


def _random_positions(rng, client, trader, pool, state, counts) -> V4PoolState:
    spacing = pool.tick_spacing
    for _ in range(rng.randint(1, 3)):
        here = state.tick // spacing * spacing  # the initialized-tick grid point at or below the price
        lower = here - spacing * rng.randint(0, 40) if rng.random() < 0.7 else here + spacing * rng.randint(1, 30)
        upper = lower + spacing * rng.randint(1, 60)
        if rng.random() < 0.3:
            lower = here  # a bound right at the current price's tick
            upper = max(upper, lower + spacing)
        liquidity = max(1, int(state.liquidity * 10 ** rng.uniform(-2, 0.3)))
        client.v4_modify_liquidity(trader, pool, lower, upper, liquidity, salt=rng.getrandbits(64))
        state = apply_liquidity_change(state, lower, upper, liquidity)
        counts["positions"] += 1
    read = read_state(client, pool)
    assert _same_state(read, state)  # ModifyLiquidity bookkeeping, as the collector will apply it
    return read


@pytest.mark.parametrize("label", ["WETH/USDC@500", "WETH/USDC@3000+protocol", "WETH/DAI@3000", "DAI/USDC@100",
                                   "WETH/USDC@3000+counter"])
def test_swaps_match_the_pool_manager_to_the_wei(v4net, label):
    d, client = v4net.deployment, v4net.client
    pair, rest = label.split("@")
    a, b = pair.split("/")
    fee = int(rest.split("+")[0])
    pool = d.v4_pool(a, b, fee, hook="counter" if label.endswith("+counter") else "")
    assert admission(key_of(pool)) is None
    trader = d.funded_accounts[0]
    rng = random.Random(f"v4-{label}")
    counts = dict.fromkeys(("swaps", "crossing", "ticks_crossed", "exact_out", "limited", "from_initialized",
                            "reverts", "positions"), 0)
    base = client.snapshot()
    try:
        for tok in (pool.token0, pool.token1):
            client.fund(trader, tok, 10**12 * 10 ** d.token(tok).decimals // 10**3)
        funded = client.snapshot()
        for _ in range(TRIALS_PER_POOL):
            state = _random_positions(rng, client, trader, pool, read_state(client, pool), counts)
            if rng.random() < 0.6:
                # stop exactly on an initialized tick below or above, so the next swap starts on it
                zfo = rng.random() < 0.5
                candidates = [t for t in state.sorted_ticks if (t < state.tick if zfo else t > state.tick)]
                if candidates:
                    t = candidates[-1] if zfo else candidates[0]
                    state = _exact(client, trader, pool, state, zfo, -(10**40 // 10**10), get_sqrt_ratio_at_tick(t),
                                   counts)
            for k in range(SWAPS_PER_TRIAL):
                zfo, exact_in = rng.random() < 0.5, (k + len(state.ticks)) % 2 == 0
                amount = _amount(rng, state, zfo, exact_in)
                limit = 0
                if rng.random() < 0.25:
                    ticks_away = rng.randint(1, 3000)
                    limit_tick = state.tick - ticks_away if zfo else state.tick + ticks_away
                    limit = get_sqrt_ratio_at_tick(min(max(limit_tick, MIN_TICK + 1), MAX_TICK - 1))
                state = _exact(client, trader, pool, state, zfo, -amount if exact_in else amount, limit, counts,
                               verify=k == SWAPS_PER_TRIAL - 1)
            client.revert(funded)
            funded = client.snapshot()
    finally:
        client.revert(base)
    print(f"\nV4 exactness {label}: {counts}")
    assert counts["swaps"] >= TRIALS_PER_POOL * SWAPS_PER_TRIAL
    assert counts["crossing"] >= 3 and counts["from_initialized"] >= 1 and counts["exact_out"] >= 3


def test_amount_changing_hook_is_refused_and_would_have_been_wrong(devnet_snapshot):
    d, client = devnet_snapshot.deployment, devnet_snapshot.client
    pool = d.v4_pool("WETH", "USDC", 3000, hook="skim")
    reason = admission(key_of(pool))
    assert reason is not None and "afterSwapReturnDelta" in reason
    trader = d.funded_accounts[0]
    state = read_state(client, pool)
    sim = swap(state, True, -(10**17))
    got = client.v4_swap(trader, pool, True, -(10**17))
    # the pool itself swapped as the core math says ...
    assert (got.amount0, got.amount1, got.sqrt_price_x96) == (sim.amount0, sim.amount1, sim.sqrt_price_x96)
    # ... but the hook took 1 % of the output from the trader: simulating this pool would overstate every trade
    assert got.paid0 == sim.amount0 and got.paid1 == sim.amount1 - sim.amount1 // 100 < sim.amount1


def test_observing_hook_saw_the_swaps(devnet_snapshot):
    d, client = devnet_snapshot.deployment, devnet_snapshot.client
    pool = d.v4_pool("WETH", "USDC", 3000, hook="counter")
    before = int(client.call_fn("SwapCounterHook", pool.hooks, "swaps")[0])
    client.v4_swap(d.funded_accounts[0], pool, False, -(10**6))
    assert int(client.call_fn("SwapCounterHook", pool.hooks, "swaps")[0]) == before + 1
