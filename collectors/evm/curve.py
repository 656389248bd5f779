"""``CurveBook``: the collector's view of its Curve StableSwap pools, sans-IO.

Theory of operation
-------------------
A Curve pool's events do not carry its balances (a V2 ``Sync`` does): ``TokenExchange`` says what was
sold and bought, but the admin share of the fee also leaves the balances and is in no event. The market
model (``market.state``) learns a Curve pool only from a ``PoolSnapshot`` (balances and fee; the
amplification and rates come from each consumer's configuration). So the collector keeps each pool's full
state -- coins, balances, rates, A, fee and admin fee, read at one pinned block by the bootstrap
(:func:`collectors.evm.bootstrap.read_units`) -- and applies every event to it with the exact StableSwap
mirror (:mod:`market.amm.curve_stableswap`), publishing the pool's new ``PoolSnapshot`` in the event's
unit (a Curve hop of a multi-hop transaction arrives with its other hops):

* ``TokenExchange``: the mirror's ``exchange`` on the state held; its output must equal the event's
  ``tokens_bought`` to the unit, else our view has diverged from the chain (a missed event, parameters that
  changed): the pool is invalidated and re-read (``StateInvalidation(STALE)``, the follower's snapshot);
* ``AddLiquidity``: ``balances += amounts - fees * admin_fee / 1e10`` (the classic ``add_liquidity``);
* ``RemoveLiquidity``: ``balances -= amounts``; ``RemoveLiquidityImbalance``: ``balances -= amounts + fees
  * admin_fee / 1e10``;
* ``RemoveLiquidityOne``: the classic event does not name the coin: invalidated and re-read.

A pool the follower marks stale (a reorg, a lost connection, a removed log) is *forgotten* until the next
snapshot seeds it again; events for a forgotten pool are skipped (the snapshot, read at a block at or after
them, includes them). A snapshot's balances are ordered as the pool id's tokens (token0, the lower
address, first), whatever the pool's own coin order.

Covered: classic two-coin plain pools (``coins(uint256)``, ``balances(uint256)``, ``A()``, ``fee()``,
``admin_fee()``; rates ``10**(36 - decimals)``). Not covered: lending pools (stored rates), the later
``A_PRECISION`` pools, meta pools, amplification ramps (a changed A shows up as a mismatch and a re-read).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from market.amm import curve_stableswap as ss
from market.amm.errors import AMMError
from protocol.ids import PoolId
from protocol.market import InvalidationReason, PoolSnapshot, StateInvalidation

from .decode import CurveEvent, CurveOp

__all__ = ["CurveBook", "CurvePoolState"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CurvePoolState:
    """One pool's full state, in the pool's own coin order."""

    coins: tuple[str, str]  # lower-case 0x addresses
    balances: tuple[int, int]
    rates: tuple[int, int]  # 10**(36 - decimals) per coin
    amp: int
    fee: int  # 1e10 scale
    admin_fee: int  # 1e10 scale

    def snapshot(self, pool: PoolId, block: int) -> PoolSnapshot:
        """The wire snapshot: balances as the pool id's token0/token1, the fee in ppm."""
        b0, b1 = self.balances
        if int(self.coins[0], 16) > int(self.coins[1], 16):
            b0, b1 = b1, b0
        return PoolSnapshot(pool=pool, block_number=block, fee_ppm=self.fee // 10_000, tick_spacing=0,
                            reserve0=b0, reserve1=b1, sqrt_price_x96=0, tick=0, liquidity=0, ticks=())


class CurveBook:
    """Each followed Curve pool's state; events in, ``PoolSnapshot`` (or ``StateInvalidation``) out."""

    def __init__(self) -> None:
        self.states: dict[PoolId, CurvePoolState] = {}
        self.stats: Counter[str] = Counter()

    def seed(self, pool: PoolId, state: CurvePoolState) -> None:
        """The pool's state read at one block (the bootstrap or a re-read)."""
        self.states[pool] = state

    def forget(self, pools: Iterable[PoolId]) -> None:
        for p in pools:
            self.states.pop(p, None)

    def apply(self, ev: CurveEvent) -> PoolSnapshot | StateInvalidation | None:
        """The pool's snapshot after ``ev``; a ``StateInvalidation`` when the event cannot be applied
        exactly (the pool is forgotten: the caller re-reads it); None for a pool not held (skipped)."""
        s = self.states.get(ev.pool)
        if s is None:
            self.stats["skipped"] += 1
            return None
        try:
            new = self._next(s, ev)
        except (AMMError, _Diverged) as exc:
            self.states.pop(ev.pool, None)
            self.stats["invalidated"] += 1
            return StateInvalidation(chain_id=ev.pool.chain_id, pool=ev.pool, from_block=ev.block_number,
                                     reason=InvalidationReason.STALE,
                                     detail=f"Curve {ev.op.name} at block {ev.block_number} log {ev.log_index}: "
                                            f"{exc}"[:200])
        self.states[ev.pool] = new
        self.stats["applied"] += 1
        return new.snapshot(ev.pool, ev.block_number)

    @staticmethod
    def _next(s: CurvePoolState, ev: CurveEvent) -> CurvePoolState:
        b = list(s.balances)
        if ev.op == CurveOp.EXCHANGE:
            i, j = ev.sold, ev.bought
            dy, after = ss.exchange(i, j, ev.amounts[i], b, s.rates, s.amp, s.fee, s.admin_fee)
            if dy != ev.amounts[j]:
                raise _Diverged(f"the mirror pays {dy}, the pool paid {ev.amounts[j]}")
            return replace(s, balances=(after[0], after[1]))
        if ev.op == CurveOp.REMOVE_ONE:
            raise _Diverged("RemoveLiquidityOne does not name its coin")
        admin = [f * s.admin_fee // ss.FEE_DENOMINATOR for f in ev.fees]
        for k in range(2):
            if ev.op == CurveOp.ADD:
                b[k] += ev.amounts[k] - admin[k]
            elif ev.op == CurveOp.REMOVE:
                b[k] -= ev.amounts[k]
            else:
                b[k] -= ev.amounts[k] + admin[k]
            if b[k] < 0:
                raise _Diverged(f"coin {k}'s balance would go below zero")
        return replace(s, balances=(b[0], b[1]))


class _Diverged(Exception):
    """Our view of the pool no longer matches the chain's."""
