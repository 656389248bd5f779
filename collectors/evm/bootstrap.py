"""Read pools from the chain: resolve configured pools to ``PoolId``s, and read each pool's full
state at ONE pinned block (every ``eth_call`` carries the same block number) as ``PoolSnapshot``s.

* V2: ``getReserves()``.
* V3: ``slot0()``, ``liquidity()``, ``fee()``, ``tickSpacing()``, the pool's token balances, and
  every initialized tick: ``tickBitmap(word)`` over the whole word range of the pool's tick
  spacing, then ``ticks(tick)`` for each set bit (its ``liquidityNet``).

All calls go out as JSON-RPC batches (``batch_size`` calls each): three round trips for any
number of pools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

from chain.rpc import AsyncRpc, Call, batched
from protocol.ids import PoolId, VenueKind
from protocol.market import PoolSnapshot, TickLiquidity

from .chains import VENUES
from .config import ChainConfig, ConfigError

MIN_TICK = -887272
MAX_TICK = 887272
_ZERO = "0x" + "0" * 40
_V3 = VenueKind.UNISWAP_V3


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

    @property
    def address(self) -> str:
        return self.pool.address


Transport = AsyncRpc


async def resolve_pools(chain: ChainConfig, rpc: Transport) -> list[ResolvedPool]:
    """Turn the chain's ``PoolSpec``s into ``PoolId``s (token0/token1 or factory look-ups, batched)."""
    out: dict[str, ResolvedPool] = {}
    lookups: list[tuple[int, Any]] = []
    calls: list[Call] = []
    for i, spec in enumerate(chain.pools):
        info = VENUES[spec.venue]
        if spec.address and spec.tokens:
            continue
        if spec.address:
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


async def read_snapshots(
    rpc: Transport, pools: Sequence[ResolvedPool], block: int, *, batch_size: int = 250
) -> list[PoolSnapshot]:
    """Every pool's full state at ``block``, in the order given."""
    calls: list[Call] = []
    for rp in pools:
        a = rp.address
        if rp.pool.kind == _V3:
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
    for n, rp in enumerate(pools):
        if rp.pool.kind == _V3:
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
    for (n, tick), result in zip(tick_keys, await batched(rpc, tick_calls, batch_size)):
        net = signed(words(result)[1])
        ticks.setdefault(n, []).append(TickLiquidity(tick=tick, liquidity_net=net))
    out = []
    for n, rp in enumerate(pools):
        s = state[n]
        if rp.pool.kind == _V3:
            out.append(PoolSnapshot(pool=rp.pool, block_number=block, fee_ppm=s["fee"], tick_spacing=s["spacing"],
                                    reserve0=s["bal0"], reserve1=s["bal1"], sqrt_price_x96=s["sqrt"],
                                    tick=s["tick"], liquidity=s["liquidity"],
                                    ticks=tuple(sorted(ticks.get(n, []), key=lambda t: t.tick))))
        else:
            out.append(PoolSnapshot(pool=rp.pool, block_number=block, fee_ppm=rp.fee_ppm, tick_spacing=0,
                                    reserve0=s["r0"], reserve1=s["r1"], sqrt_price_x96=0, tick=0, liquidity=0,
                                    ticks=()))
    return out
