"""Read pools from the chain: resolve configured pools to ``PoolId``s, and read each pool's full
state at ONE pinned block (every ``eth_call`` carries the same block number) as ``PoolSnapshot``s.

* V2: ``getReserves()``.
* V3: ``slot0()``, ``liquidity()``, ``fee()``, ``tickSpacing()``, the pool's token balances, and
  every initialized tick: ``tickBitmap(word)`` over the whole word range of the pool's tick
  spacing, then ``ticks(tick)`` for each set bit (its ``liquidityNet``).
* V4: the pool's storage in the PoolManager through ``extsload(bytes32[])`` (v4-core's
  ``StateLibrary`` layout, :mod:`chain.v4_state`): slot0 (price, tick, protocol and LP fees),
  liquidity and the whole tick bitmap in one read (chunked by ``V4_SLOTS_PER_CALL``), then every
  initialized tick's liquidity. A V4 pool's snapshot is a *unit*: its ``V4ProtocolFee`` then its
  ``PoolSnapshot`` (see ``specs/protocol.md``).
* Curve (classic two-coin StableSwap): ``coins(k)``, ``balances(k)``, ``A()``, ``fee()``, ``admin_fee()``
  and each coin's ``decimals()`` (rates ``10**(36 - decimals)``): the ``PoolSnapshot`` (balances as
  token0/token1, the fee in ppm) and, in ``curve`` when given, the pool's full state for the follower's
  :class:`collectors.evm.curve.CurveBook`. A pool whose coins are not the configured tokens is refused.

V4 pools are admitted here (:func:`market.amm.pool_key.admission`): a pool with a dynamic fee or a
hook that can change swap amounts is refused with one warning naming the pool and the permission,
and never followed.

All calls go out as JSON-RPC batches (``batch_size`` calls each): three round trips for any
number of pools.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

from chain import v4_state
from chain.rpc import AsyncRpc, Call, batched
from market.amm.pool_key import PoolKey, admission
from protocol.ids import PoolId, VenueKind
from protocol.market import PoolSnapshot, TickLiquidity, V4ProtocolFee
from protocol.tlv import TLV

from .chains import VENUES
from .config import ChainConfig, ConfigError
from .curve import CurvePoolState

MIN_TICK = -887272
MAX_TICK = 887272
_ZERO = "0x" + "0" * 40
_V3 = VenueKind.UNISWAP_V3
_V4 = VenueKind.UNISWAP_V4
_CURVE = VenueKind.CURVE
V4_SLOTS_PER_CALL = 1024  # storage slots per extsload call (32 bytes each in the calldata)
SNAPSHOT_FEE_LOG_INDEX = 0xFFFFFFFF  # a snapshot's V4ProtocolFee: after every log of its block

log = logging.getLogger("collectors.evm")


def _selector(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


SEL = {
    name: _selector(sig)
    for name, sig in {
        "getReserves": "getReserves()",
        "slot0": "slot0()",
        "liquidity": "liquidity()",
        "fee": "fee()",
        "tickSpacing": "tickSpacing()",
        "tickBitmap": "tickBitmap(int16)",
        "ticks": "ticks(int24)",
        "balanceOf": "balanceOf(address)",
        "token0": "token0()",
        "token1": "token1()",
        "getPair": "getPair(address,address)",
        "getPool": "getPool(address,address,uint24)",
        "coins": "coins(uint256)",
        "balances": "balances(uint256)",
        "A": "A()",
        "curve_fee": "fee()",
        "admin_fee": "admin_fee()",
        "decimals": "decimals()",
    }.items()
}


def _word(value: int) -> str:
    return f"{value % (1 << 256):064x}"


def _addr_word(address: str) -> str:
    return "0" * 24 + address[2:].lower()


def eth_call(to: str, selector: str, args: str = "", block: int | str = "latest") -> Call:
    tag = hex(block) if isinstance(block, int) else block
    return ("eth_call", [{"to": to, "data": selector + args}, tag])


def words(data: str) -> list[int]:
    raw = bytes.fromhex(data[2:])
    return [int.from_bytes(raw[i : i + 32], "big") for i in range(0, len(raw) - len(raw) % 32, 32)]


def signed(value: int) -> int:
    value &= (1 << 256) - 1
    return value - (1 << 256) if value >> 255 else value


@dataclass(frozen=True, kw_only=True, slots=True)
class ResolvedPool:
    pool: PoolId
    fee_ppm: int  # V2: the venue's fee; V3: the configured/known tier (re-read with fee() in snapshots)
    key: PoolKey | None = None  # V4: the pool's key (its id is key.to_id())
    manager: str = ""  # V4: the PoolManager holding it

    @property
    def address(self) -> str:
        return self.pool.address


Transport = AsyncRpc


def resolve_v4(chain: ChainConfig, i: int, refused: list[tuple[PoolKey, str]] | None = None) -> ResolvedPool | None:
    """The V4 pool of ``chain.pools[i]`` (its key, id and PoolManager), or None when admission refuses
    it: then one warning names the pool (id and key) and the reason (the permission or the dynamic fee)."""
    spec = chain.pools[i]
    info = VENUES[spec.venue]
    assert spec.tokens is not None and spec.fee is not None and spec.tick_spacing is not None
    a, b = sorted(spec.tokens, key=lambda t: int(t, 16))
    key = PoolKey.of(a, b, spec.fee, spec.tick_spacing, spec.hooks or _ZERO)
    reason = admission(key)
    if reason is not None:
        log.warning("%s: refusing Uniswap V4 pool 0x%s (currencies %s/%s fee %d spacing %d hooks 0x%040x): %s; "
                    "not followed", chain.name, key.to_id().hex(), a, b, key.fee, key.tick_spacing, key.hooks,
                    reason)
        if refused is not None:
            refused.append((key, reason))
        return None
    manager = chain.factory(spec.venue).address
    return ResolvedPool(pool=key.instrument_id(chain.chain_id, info.venue), fee_ppm=key.fee, key=key,
                        manager=manager)


async def resolve_pools(chain: ChainConfig, rpc: Transport,
                        refused: list[tuple[PoolKey, str]] | None = None) -> list[ResolvedPool]:
    """Turn the chain's ``PoolSpec``s into ``PoolId``s (token0/token1 or factory look-ups, batched).
    V4 pools go through admission; the refused ones are logged, appended to ``refused`` and left out."""
    out: dict[str, ResolvedPool] = {}
    lookups: list[tuple[int, Any]] = []
    calls: list[Call] = []
    v4: dict[int, ResolvedPool | None] = {}
    for i, spec in enumerate(chain.pools):
        info = VENUES[spec.venue]
        if info.kind == _V4:
            v4[i] = resolve_v4(chain, i, refused)
            continue
        if spec.address and spec.tokens:
            continue
        if spec.address:
            if info.kind == _CURVE:
                calls += [eth_call(spec.address, SEL["coins"], _word(k)) for k in (0, 1)]
            else:
                calls += [eth_call(spec.address, SEL["token0"]), eth_call(spec.address, SEL["token1"])]
            lookups.append((i, "tokens"))
        else:
            assert spec.tokens is not None
            factory = chain.factory(spec.venue).address
            a, b = spec.tokens
            if info.kind == _V3:
                calls.append(eth_call(factory, SEL["getPool"], _addr_word(a) + _addr_word(b) + _word(spec.fee or 0)))
            else:
                calls.append(eth_call(factory, SEL["getPair"], _addr_word(a) + _addr_word(b)))
            lookups.append((i, "factory"))
    results = iter(await batched(rpc, calls, chain.batch_size))
    found: dict[int, tuple[str, str, str]] = {}
    for i, how in lookups:
        spec = chain.pools[i]
        if how == "tokens":
            t0, t1 = (f"0x{words(next(results))[0]:040x}" for _ in range(2))
            found[i] = (spec.address or "", t0, t1)
        else:
            (pool_word,) = words(next(results))[:1] or [0]
            address = f"0x{pool_word:040x}"
            if address == _ZERO:
                raise ConfigError(f"the {spec.venue} factory has no pool for {spec.tokens} fee {spec.fee}",
                                  path=f"chain {chain.name}.pools[{i}]")
            assert spec.tokens is not None
            found[i] = (address, *spec.tokens)
    for i, spec in enumerate(chain.pools):
        info = VENUES[spec.venue]
        if i in v4:
            rp = v4[i]
            if rp is not None:
                out[rp.pool.address] = rp
            continue
        if i in found:
            address, t0, t1 = found[i]
        else:
            assert spec.address and spec.tokens
            address, (t0, t1) = spec.address, spec.tokens
        pool = PoolId.of(chain.chain_id, info.venue, info.kind, address, t0, t1)
        fee = spec.fee if spec.fee is not None and info.kind == _V3 else info.v2_fee_ppm
        out[pool.address] = ResolvedPool(pool=pool, fee_ppm=fee)
    return list(out.values())


def word_range(spacing: int) -> range:
    return range((MIN_TICK // spacing) >> 8, ((MAX_TICK // spacing) >> 8) + 1)


def _extsload_calls(manager: str, slots: Sequence[int], block: int) -> list[Call]:
    return [eth_call(manager, "0x" + v4_state.encode_extsload(slots[i : i + V4_SLOTS_PER_CALL]).hex(), block=block)
            for i in range(0, len(slots), V4_SLOTS_PER_CALL)]


def _extsload_values(results: Any, n_calls: int) -> list[int]:
    values: list[int] = []
    for _ in range(n_calls):
        values += v4_state.decode_extsload(bytes.fromhex(next(results)[2:]))
    return values


def _curve_calls(rp: ResolvedPool, block: int) -> list[Call]:
    a = rp.address
    return [*(eth_call(a, SEL["coins"], _word(k), block) for k in (0, 1)),
            *(eth_call(a, SEL["balances"], _word(k), block) for k in (0, 1)),
            eth_call(a, SEL["A"], block=block), eth_call(a, SEL["curve_fee"], block=block),
            eth_call(a, SEL["admin_fee"], block=block),
            *(eth_call(t.address, SEL["decimals"], block=block) for t in (rp.pool.token0, rp.pool.token1))]


def _curve_state(rp: ResolvedPool, results: Any) -> CurvePoolState:
    coins = tuple(f"0x{words(next(results))[0]:040x}" for _ in range(2))
    balances = tuple(words(next(results))[0] for _ in range(2))
    amp, fee, admin_fee = (words(next(results))[0] for _ in range(3))
    decimals = {rp.pool.token0.address: words(next(results))[0], rp.pool.token1.address: words(next(results))[0]}
    if set(coins) != set(decimals):
        raise ConfigError(f"Curve pool {rp.address}: its coins are {coins[0]}, {coins[1]}, not the configured "
                          f"tokens {rp.pool.token0.address}, {rp.pool.token1.address}")
    if fee % 10_000:
        log.warning("Curve pool %s: fee %d (1e10 scale) is not a whole number of ppm: its snapshots carry %d ppm",
                    rp.address, fee, fee // 10_000)
    return CurvePoolState(coins=(coins[0], coins[1]), balances=(balances[0], balances[1]),
                          rates=(10 ** (36 - decimals[coins[0]]), 10 ** (36 - decimals[coins[1]])),
                          amp=amp, fee=fee, admin_fee=admin_fee)


async def read_snapshots(
    rpc: Transport, pools: Sequence[ResolvedPool], block: int, *, batch_size: int = 250
) -> list[PoolSnapshot]:
    """Every pool's ``PoolSnapshot`` at ``block``, in the order given (V4 pools' protocol fees are in
    :func:`read_units`)."""
    return [unit[-1] for unit in await read_units(rpc, pools, block, batch_size=batch_size)]  # type: ignore[misc]


async def read_units(
    rpc: Transport, pools: Sequence[ResolvedPool], block: int, *, batch_size: int = 250,
    curve: dict[PoolId, CurvePoolState] | None = None,
) -> list[tuple[TLV, ...]]:
    """Every pool's full state at ``block``, in the order given, one message's records per pool:
    ``(PoolSnapshot,)``, or ``(V4ProtocolFee, PoolSnapshot)`` for a V4 pool. Each Curve pool's full state
    goes into ``curve`` too (the follower's CurveBook seeds from it)."""
    calls: list[Call] = []
    v4_chunks: dict[int, int] = {}
    for n, rp in enumerate(pools):
        a = rp.address
        if rp.pool.kind == _CURVE:
            calls += _curve_calls(rp, block)
        elif rp.pool.kind == _V4:
            assert rp.key is not None
            pid = rp.key.to_id()
            _, bitmap = v4_state.all_bitmap_slots(pid, rp.key.tick_spacing)
            chunk = _extsload_calls(rp.manager, [v4_state.pool_state_slot(pid), v4_state.liquidity_slot(pid),
                                                 *bitmap], block)
            v4_chunks[n] = len(chunk)
            calls += chunk
        elif rp.pool.kind == _V3:
            calls += [eth_call(a, SEL["slot0"], block=block), eth_call(a, SEL["liquidity"], block=block),
                      eth_call(a, SEL["fee"], block=block), eth_call(a, SEL["tickSpacing"], block=block),
                      eth_call(rp.pool.token0.address, SEL["balanceOf"], _addr_word(a), block),
                      eth_call(rp.pool.token1.address, SEL["balanceOf"], _addr_word(a), block)]
        else:
            calls.append(eth_call(a, SEL["getReserves"], block=block))
    first = iter(await batched(rpc, calls, batch_size))
    state: dict[int, dict[str, Any]] = {}
    bitmap_calls: list[Call] = []
    bitmap_keys: list[tuple[int, int]] = []
    tick_v4_calls: list[Call] = []
    for n, rp in enumerate(pools):
        if rp.pool.kind == _CURVE:
            state[n] = {"curve": _curve_state(rp, first)}
        elif rp.pool.kind == _V4:
            assert rp.key is not None
            values = _extsload_values(first, v4_chunks[n])
            slot0 = v4_state.decode_slot0(values[0])
            spacing = rp.key.tick_spacing
            bitmap_words, _ = v4_state.all_bitmap_slots(rp.key.to_id(), spacing)
            set_words = {w: v for w, v in zip(bitmap_words, values[2:]) if v}
            initialized = v4_state.initialized_ticks_in_words(set_words, spacing)
            state[n] = {"slot0": slot0, "liquidity": values[1], "ticks": initialized}
            pid = rp.key.to_id()
            chunk = _extsload_calls(rp.manager, [v4_state.tick_info_slot(pid, t) for t in initialized], block)
            state[n]["tick_chunks"] = len(chunk)
            tick_v4_calls.extend(chunk)
        elif rp.pool.kind == _V3:
            slot0 = words(next(first))
            s = {"sqrt": slot0[0], "tick": signed(slot0[1]), "liquidity": words(next(first))[0],
                 "fee": words(next(first))[0], "spacing": signed(words(next(first))[0]),
                 "bal0": words(next(first))[0], "bal1": words(next(first))[0]}
            state[n] = s
            for w in word_range(s["spacing"]):
                bitmap_calls.append(eth_call(rp.address, SEL["tickBitmap"], _word(w), block))
                bitmap_keys.append((n, w))
        else:
            r = words(next(first))
            state[n] = {"r0": r[0], "r1": r[1]}
    tick_calls: list[Call] = []
    tick_keys: list[tuple[int, int]] = []
    for (n, w), result in zip(bitmap_keys, await batched(rpc, bitmap_calls, batch_size)):
        bits = words(result)[0]
        spacing = state[n]["spacing"]
        while bits:
            low = bits & -bits
            bit = low.bit_length() - 1
            bits ^= low
            tick = ((w << 8) + bit) * spacing
            tick_calls.append(eth_call(pools[n].address, SEL["ticks"], _word(tick), block))
            tick_keys.append((n, tick))
    ticks: dict[int, list[TickLiquidity]] = {}
    results = await batched(rpc, tick_calls + tick_v4_calls, batch_size)
    for (n, tick), result in zip(tick_keys, results):
        net = signed(words(result)[1])
        ticks.setdefault(n, []).append(TickLiquidity(tick=tick, liquidity_net=net))
    v4_results = iter(results[len(tick_calls):])
    for n, rp in enumerate(pools):
        if rp.pool.kind == _V4:
            infos = _extsload_values(v4_results, state[n]["tick_chunks"])
            ticks[n] = [TickLiquidity(tick=t, liquidity_net=v4_state.decode_tick_liquidity(w)[1])
                        for t, w in zip(state[n]["ticks"], infos)]
    out: list[tuple[TLV, ...]] = []
    for n, rp in enumerate(pools):
        s = state[n]
        if rp.pool.kind == _CURVE:
            cs = s["curve"]
            if curve is not None:
                curve[rp.pool] = cs
            out.append((cs.snapshot(rp.pool, block),))
        elif rp.pool.kind == _V4:
            assert rp.key is not None
            slot0 = s["slot0"]
            lp_fee = slot0.lp_fee if slot0.sqrt_price_x96 else rp.key.fee  # uninitialized: the key's static fee
            out.append((
                V4ProtocolFee(pool=rp.pool, block_number=block, log_index=SNAPSHOT_FEE_LOG_INDEX,
                              protocol_fee=slot0.protocol_fee),
                PoolSnapshot(pool=rp.pool, block_number=block, fee_ppm=lp_fee, tick_spacing=rp.key.tick_spacing,
                             reserve0=0, reserve1=0, sqrt_price_x96=slot0.sqrt_price_x96, tick=slot0.tick,
                             liquidity=s["liquidity"], ticks=tuple(ticks.get(n, ()))),
            ))
        elif rp.pool.kind == _V3:
            out.append((PoolSnapshot(pool=rp.pool, block_number=block, fee_ppm=s["fee"], tick_spacing=s["spacing"],
                                     reserve0=s["bal0"], reserve1=s["bal1"], sqrt_price_x96=s["sqrt"],
                                     tick=s["tick"], liquidity=s["liquidity"],
                                     ticks=tuple(sorted(ticks.get(n, []), key=lambda t: t.tick))),))
        else:
            out.append((PoolSnapshot(pool=rp.pool, block_number=block, fee_ppm=rp.fee_ppm, tick_spacing=0,
                                     reserve0=s["r0"], reserve1=s["r1"], sqrt_price_x96=0, tick=0, liquidity=0,
                                     ticks=()),))
    return out
