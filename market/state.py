"""Pool state manager: protocol market-data records in, immutable pool snapshots out.

Theory of operation
-------------------
The manager holds one immutable snapshot per pool (:mod:`market.pools`) and replaces it on
each update; nothing is ever mutated in place, so a search holding a snapshot is never surprised.

* **What applies.** ``PoolSnapshot`` (full V2/V3/Curve state), ``V2Reserves`` (a ``Sync``: the
  pair's complete state), ``V3Swap`` (slot0 and active liquidity *from the event*, and balances
  by the signed deltas), ``LiquidityChange`` (V3 mint/burn: ticks' liquidityNet and the in-range
  liquidity, through :func:`market.amm.uniswap_v3.apply_liquidity_change`), ``V3Initialize``
  (first price of a pool known from a snapshot), ``BlockHeader`` (gas prices per chain) and
  ``StateInvalidation``. ``V2Swap`` changes nothing here: the ``Sync`` that follows it does.
* **Dedupe.** Each snapshot carries the ``(block, log_index)`` of the last event applied; an event
  at or below it is a replay or a duplicate and is dropped. A ``PoolSnapshot`` at block ``B``
  covers every log of ``B`` (its mark is ``(B, 2**32)``). Log indices are unique per block, so
  one mark per pool is exact and costs O(1) memory.
* **Staleness.** ``StateInvalidation`` marks a pool (or, with ``pool == 0``, every pool of the
  chain) stale and rolls its dedupe mark back to ``from_block - 1``, so that the replacement
  chain's events after a reorg are not mistaken for duplicates. A stale pool is never traded (the
  search asks :meth:`PoolStateManager.tradable`) until state that is complete by itself arrives:
  a ``PoolSnapshot`` for any pool, or a ``V2Reserves`` for a V2 pair (a ``Sync`` carries the full
  reserves). V3 events alone never clear it: a missed mint makes the tick map wrong silently.
* **Uniswap V4** pools (kind ``UNISWAP_V4``, :class:`market.pools.V4Pool`) take the same records
  (``V3Swap`` with the pool-side amounts, ``LiquidityChange``, ``V3Initialize``, ``PoolSnapshot``)
  plus ``V4ProtocolFee``. A V4 ``PoolSnapshot`` has no protocol-fee field: the collector sends the
  pool's ``V4ProtocolFee`` just before it in the same message, and the manager keeps the last
  protocol fee it was told per pool (``v4_protocol_fee``) to build the snapshot's state with.
* **Parameters.** What the records do not carry (a new V2 pair's fee, a Curve pool's amp and
  rates) comes from :class:`market.params.MarketParams`, which each component builds from its
  own configuration. Prices and conversions are :mod:`market.prices`.
* **Errors.** An event that the AMM mirror rejects (a burn below zero, a tick out of range) means
  our view has diverged from the chain: the pool is marked stale rather than guessed at.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from market.amm import uniswap_v4 as uv4
from market.amm.errors import AMMError
from market.amm.uniswap_v3 import SwapResult, V3PoolState, apply_liquidity_change, apply_swap
from market.params import MarketParams
from market.pools import CurvePool, PoolState, V2Pool, V3Pool, V4Pool
from market.prices import convert
from protocol.ids import PoolId, TokenId, VenueKind
from protocol.market import (
    BlockHeader,
    LiquidityChange,
    LiquidityKind,
    PoolSnapshot,
    StateInvalidation,
    V2Reserves,
    V3Initialize,
    V3Swap,
    V4ProtocolFee,
)

SNAPSHOT_LOG_INDEX = 1 << 32  # above every real log index: a snapshot covers its whole block


@dataclass(frozen=True, slots=True, kw_only=True)
class GasPrice:
    """The newest chain head's gas prices, in wei."""

    block_number: int
    base_fee: int
    priority_fee: int

    @property
    def total(self) -> int:
        return self.base_fee + self.priority_fee


class PoolStateManager:
    """Applies market-data records; ``apply`` returns the pool whose tradable state changed."""

    def __init__(self, params: MarketParams) -> None:
        self.params = params
        self.pools: dict[PoolId, PoolState] = {}
        self.stale: dict[PoolId, int] = {}  # pool -> from_block of the invalidation
        self.gas: dict[int, GasPrice] = {}  # chain_id -> head
        self.stats: Counter[str] = Counter()
        self._curve = {(c.chain_id, c.address): c for c in params.curve_pools}
        self._by_pair: dict[int, list[PoolId]] = {}
        self.v4_protocol_fee: dict[PoolId, int] = {}  # the last V4ProtocolFee per V4 pool

    # --- queries -------------------------------------------------------------------------------

    def get(self, pool: int) -> PoolState | None:
        return self.pools.get(pool)  # type: ignore[call-overload]

    def is_stale(self, pool: int) -> bool:
        return pool in self.stale

    def tradable(self, pool: int) -> PoolState | None:
        """The pool's snapshot if it may be traded on now (known, not stale, has liquidity)."""
        if pool in self.stale:
            return None
        s = self.pools.get(pool)  # type: ignore[call-overload]
        return s if s is not None and s.tradable else None

    def tradable_pools_of_pair(self, a: TokenId, b: TokenId) -> list[PoolState]:
        """Every tradable pool joining tokens ``a`` and ``b`` (same chain), in arrival order."""
        if a.chain_id != b.chain_id or a == b:
            return []
        t0, t1 = sorted((a.address_int, b.address_int))
        key = (a.chain_id << 320) | (t0 << 160) | t1  # == PoolId.pair_key of such a pool
        out = []
        for p in self._by_pair.get(key, ()):
            s = self.tradable(p)
            if s is not None:
                out.append(s)
        return out

    def convert(self, amount: int, src: TokenId, dst: TokenId, *, round_up: bool) -> int | None:
        """``amount`` of ``src`` in ``dst`` units at the mid price of the deepest tradable V2/V3 pool
        pairing them (:func:`market.prices.convert`); None without such a pool. ``round_up`` for
        costs (never understate them), down for values."""
        if src == dst:
            return amount
        return convert(amount, src, dst, self.tradable_pools_of_pair(src, dst), round_up=round_up)

    # --- updates -------------------------------------------------------------------------------

    def apply(self, record: Any) -> PoolId | None:
        """Apply one TLV record. Returns the pool whose state changed and is tradable, else None."""
        t = type(record)
        if t is V2Reserves:
            return self._on_v2_reserves(record)
        if t is V3Swap:
            return self._on_v3_swap(record)
        if t is PoolSnapshot:
            return self._on_snapshot(record)
        if t is BlockHeader:
            self.gas[record.chain_id] = GasPrice(
                block_number=record.number, base_fee=record.base_fee, priority_fee=record.priority_fee
            )
            return None
        if t is LiquidityChange:
            return self._on_liquidity(record)
        if t is StateInvalidation:
            self._on_invalidation(record)
            return None
        if t is V3Initialize:
            return self._on_initialize(record)
        if t is V4ProtocolFee:
            return self._on_v4_protocol_fee(record)
        return None

    def invalidate_all(self, reason: str) -> None:
        """Every pool is untrustworthy (e.g. the relay said we missed messages)."""
        for p, s in self.pools.items():
            self.stale.setdefault(p, s.block_number)
        self.stats[f"invalidated_all_{reason}"] += 1

    def _fresh(self, pool: PoolId, event: tuple[int, int]) -> PoolState | None:
        """The current snapshot if ``event`` is newer than the pool's mark, else None (counted)."""
        s = self.pools.get(pool)
        if s is None:
            self.stats["event_for_unknown_pool"] += 1
            return None
        if event <= s.last_event:
            self.stats["duplicate_event"] += 1
            return None
        return s

    def _changed(self, new: PoolState) -> PoolId | None:
        if new.pool not in self.pools:
            self._by_pair.setdefault(new.pool.pair_key, []).append(new.pool)
        self.pools[new.pool] = new
        return new.pool if new.pool not in self.stale and new.tradable else None

    def _on_v2_reserves(self, r: V2Reserves) -> PoolId | None:
        pool = r.pool
        event = (r.block_number, r.log_index)
        s = self.pools.get(pool)
        if s is not None and event <= s.last_event:
            self.stats["duplicate_event"] += 1
            return None
        if s is not None and not isinstance(s, V2Pool):
            self.stats["kind_mismatch"] += 1
            return None
        if s is None:
            if pool.kind != VenueKind.UNISWAP_V2:
                self.stats["kind_mismatch"] += 1
                return None
            fee = self.params.v2_fee_for(pool.chain_id, pool.venue)
        else:
            fee = s.fee_ppm
        self.stale.pop(pool, None)  # a Sync is the pair's whole state
        self.stats["v2_reserves"] += 1
        return self._changed(
            V2Pool(pool=pool, block_number=r.block_number, last_event=event,
                   reserve0=r.reserve0, reserve1=r.reserve1, fee_ppm=fee)
        )

    def _on_v3_swap(self, ev: V3Swap) -> PoolId | None:
        event = (ev.block_number, ev.log_index)
        s = self._fresh(ev.pool, event)
        if s is None:
            return None
        if isinstance(s, V4Pool):
            return self._on_v4_swap(s, ev)
        if not isinstance(s, V3Pool) or s.v3 is None:
            self.stats["kind_mismatch"] += 1
            return None
        zfo = ev.amount0 > 0
        result = SwapResult(
            amount_in=ev.amount0 if zfo else ev.amount1,
            amount_out=-ev.amount1 if zfo else -ev.amount0,
            sqrt_price_x96=ev.sqrt_price_x96,
            tick=ev.tick,
            liquidity=ev.liquidity,
            zero_for_one=zfo,
        )
        self.stats["v3_swap"] += 1
        return self._changed(
            V3Pool(pool=s.pool, block_number=ev.block_number, last_event=event, fee=s.fee,
                   tick_spacing=s.tick_spacing, v3=apply_swap(s.v3, result),
                   balance0=max(0, s.balance0 + ev.amount0), balance1=max(0, s.balance1 + ev.amount1))
        )

    def _on_liquidity(self, ev: LiquidityChange) -> PoolId | None:
        event = (ev.block_number, ev.log_index)
        s = self._fresh(ev.pool, event)
        if s is None:
            return None
        if isinstance(s, V4Pool):
            return self._on_v4_liquidity(s, ev)
        if not isinstance(s, V3Pool):
            # V2 mint/burn: the Sync emitted with it carries the new reserves; just advance the mark.
            self.pools[s.pool] = _with_mark(s, event)
            return None
        if s.v3 is None:
            self.stats["kind_mismatch"] += 1
            return None
        mint = ev.kind == LiquidityKind.MINT
        delta = ev.liquidity if mint else -ev.liquidity
        try:
            v3 = apply_liquidity_change(s.v3, ev.tick_lower, ev.tick_upper, delta)
        except AMMError:
            self.stale[s.pool] = ev.block_number
            self.stats["liquidity_change_rejected"] += 1
            return None
        self.stats["liquidity_change"] += 1
        # Mints pay tokens in; burns only credit the owner until collect (not on the bus).
        b0, b1 = (s.balance0 + ev.amount0, s.balance1 + ev.amount1) if mint else (s.balance0, s.balance1)
        return self._changed(
            V3Pool(pool=s.pool, block_number=ev.block_number, last_event=event, fee=s.fee,
                   tick_spacing=s.tick_spacing, v3=v3, balance0=b0, balance1=b1)
        )

    def _on_initialize(self, ev: V3Initialize) -> PoolId | None:
        event = (ev.block_number, ev.log_index)
        s = self._fresh(ev.pool, event)
        if s is None:
            return None
        if isinstance(s, V4Pool) and s.v4 is None:
            return self._v4_state(s, event, lambda: uv4.V4PoolState(
                sqrt_price_x96=ev.sqrt_price_x96, tick=ev.tick, liquidity=0, lp_fee=s.lp_fee,
                protocol_fee=s.protocol_fee, tick_spacing=s.tick_spacing, ticks={}), "initialize")
        if not isinstance(s, V3Pool) or s.v3 is not None:
            self.stats["kind_mismatch"] += 1
            return None
        try:
            v3 = V3PoolState(sqrt_price_x96=ev.sqrt_price_x96, tick=ev.tick, liquidity=0, fee=s.fee,
                             tick_spacing=s.tick_spacing, ticks={})
        except AMMError:
            self.stale[s.pool] = ev.block_number
            self.stats["initialize_rejected"] += 1
            return None
        return self._changed(
            V3Pool(pool=s.pool, block_number=ev.block_number, last_event=event, fee=s.fee,
                   tick_spacing=s.tick_spacing, v3=v3, balance0=s.balance0, balance1=s.balance1)
        )

    def _on_snapshot(self, snap: PoolSnapshot) -> PoolId | None:
        pool = snap.pool
        old = self.pools.get(pool)
        if old is not None and pool not in self.stale and snap.block_number < old.block_number:
            self.stats["older_snapshot"] += 1
            return None  # we already hold newer, trusted state
        mark = (snap.block_number, SNAPSHOT_LOG_INDEX)
        kind = pool.kind
        new: PoolState
        try:
            if kind == VenueKind.UNISWAP_V2:
                new = V2Pool(pool=pool, block_number=snap.block_number, last_event=mark,
                             reserve0=snap.reserve0, reserve1=snap.reserve1, fee_ppm=snap.fee_ppm)
            elif kind == VenueKind.UNISWAP_V3:
                v3 = None
                if snap.sqrt_price_x96:
                    v3 = V3PoolState(sqrt_price_x96=snap.sqrt_price_x96, tick=snap.tick,
                                     liquidity=snap.liquidity, fee=snap.fee_ppm, tick_spacing=snap.tick_spacing,
                                     ticks={t.tick: t.liquidity_net for t in snap.ticks})
                new = V3Pool(pool=pool, block_number=snap.block_number, last_event=mark, fee=snap.fee_ppm,
                             tick_spacing=snap.tick_spacing, v3=v3, balance0=snap.reserve0,
                             balance1=snap.reserve1)
            elif kind == VenueKind.UNISWAP_V4:
                protocol_fee = self.v4_protocol_fee.get(pool, 0)
                v4 = None
                if snap.sqrt_price_x96:
                    v4 = uv4.V4PoolState(sqrt_price_x96=snap.sqrt_price_x96, tick=snap.tick,
                                         liquidity=snap.liquidity, lp_fee=snap.fee_ppm,
                                         protocol_fee=protocol_fee, tick_spacing=snap.tick_spacing,
                                         ticks={t.tick: t.liquidity_net for t in snap.ticks})
                new = V4Pool(pool=pool, block_number=snap.block_number, last_event=mark, lp_fee=snap.fee_ppm,
                             tick_spacing=snap.tick_spacing, protocol_fee=protocol_fee, v4=v4)
            elif kind == VenueKind.CURVE:
                cfg = self._curve.get((pool.chain_id, int(pool) & ((1 << 160) - 1)))
                if cfg is None:
                    self.stats["curve_pool_not_configured"] += 1
                    return None
                new = CurvePool(pool=pool, block_number=snap.block_number, last_event=mark,
                                balances=(snap.reserve0, snap.reserve1), rates=cfg.rates, amp=cfg.amp,
                                fee=snap.fee_ppm * 10_000)
            else:
                self.stats["unsupported_kind"] += 1
                return None
        except AMMError:
            self.stale[pool] = snap.block_number
            self.stats["snapshot_rejected"] += 1
            return None
        self.stale.pop(pool, None)
        self.stats["snapshot"] += 1
        return self._changed(new)

    # --- Uniswap V4 --------------------------------------------------------------------------------

    def _v4_state(self, s: V4Pool, event: tuple[int, int], build: Any, what: str) -> PoolId | None:
        """Replace ``s``'s V4 state by ``build()`` (a V4PoolState); a state the mirror refuses makes the
        pool stale (our view diverged from the chain), counted as ``{what}_rejected``."""
        try:
            state = build()
        except AMMError:
            self.stale[s.pool] = event[0]
            self.stats[f"{what}_rejected"] += 1
            return None
        self.stats[f"v4_{what}"] += 1
        return self._changed(V4Pool(pool=s.pool, block_number=event[0], last_event=event, lp_fee=s.lp_fee,
                                    tick_spacing=s.tick_spacing, protocol_fee=state.protocol_fee, v4=state))

    def _on_v4_swap(self, s: V4Pool, ev: V3Swap) -> PoolId | None:
        if s.v4 is None:
            self.stats["kind_mismatch"] += 1
            return None
        # slot0 and liquidity after the swap come from the event itself (as for V3)
        result = uv4.V4SwapResult(amount0=-ev.amount0, amount1=-ev.amount1, sqrt_price_x96=ev.sqrt_price_x96,
                                  tick=ev.tick, liquidity=ev.liquidity, zero_for_one=ev.amount0 > 0,
                                  swap_fee=s.v4.swap_fee(ev.amount0 > 0))
        state = s.v4
        return self._v4_state(s, (ev.block_number, ev.log_index), lambda: uv4.apply_swap(state, result), "swap")

    def _on_v4_liquidity(self, s: V4Pool, ev: LiquidityChange) -> PoolId | None:
        if s.v4 is None:
            self.stats["kind_mismatch"] += 1
            return None
        delta = ev.liquidity if ev.kind == LiquidityKind.MINT else -ev.liquidity
        state = s.v4
        return self._v4_state(s, (ev.block_number, ev.log_index),
                              lambda: uv4.apply_liquidity_change(state, ev.tick_lower, ev.tick_upper, delta),
                              "liquidity_change")

    def _on_v4_protocol_fee(self, ev: V4ProtocolFee) -> PoolId | None:
        pool = ev.pool
        event = (ev.block_number, ev.log_index)
        s = self.pools.get(pool)
        if s is not None and event <= s.last_event:
            if pool in self.stale:  # a stale pool takes a snapshot of any block: keep its companion's fee
                self.v4_protocol_fee[pool] = ev.protocol_fee
            self.stats["duplicate_event"] += 1
            return None
        self.v4_protocol_fee[pool] = ev.protocol_fee  # what the next snapshot of the pool is built with
        if s is None:
            return None
        if not isinstance(s, V4Pool):
            self.stats["kind_mismatch"] += 1
            return None
        if s.v4 is None:
            self.pools[pool] = replace(s, protocol_fee=ev.protocol_fee, last_event=event)
            return None
        state = s.v4
        return self._v4_state(s, event, lambda: replace(state, protocol_fee=ev.protocol_fee), "protocol_fee")

    def _on_invalidation(self, inv: StateInvalidation) -> None:
        self.stats["invalidation"] += 1
        rollback = (inv.from_block - 1, SNAPSHOT_LOG_INDEX) if inv.from_block else (0, 0)
        if inv.pool:
            targets = [inv.pool] if inv.pool in self.pools else []
            if not targets:
                self.stale[inv.pool] = inv.from_block  # stays stale if it shows up without a snapshot
        else:
            targets = [p for p in self.pools if p.chain_id == inv.chain_id]
        for p in targets:
            self.stale[p] = inv.from_block
            s = self.pools[p]
            if s.last_event > rollback:
                self.pools[p] = _with_mark(s, rollback)


def _with_mark(s: PoolState, mark: tuple[int, int]) -> PoolState:
    """The same state with another dedupe mark (frozen dataclasses: derive, don't mutate)."""
    return replace(s, last_event=mark)
