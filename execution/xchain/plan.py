"""A cross-chain signal checked and re-priced on the executor's own market state, sans-IO.

The signal (``specs/protocol.md``, cross-chain layout): ``SignalIdentity(kind=CROSS_CHAIN, chain_id=source)``,
``Economics`` in the source chain's quote token, a two-hop ``ArbitragePath`` -- hop 0 on the source chain's pool
(quote -> base), hop 1 on the destination chain's pool (base -> quote), each hop's amounts exact -- and
``CrossChainArbitrage``. Each hop is one leg, traded from the inventory the chain's AlphaPulseArb holds.

:func:`check` refuses what no market state can fix (FAILED: chains or venues not configured, a malformed
path; REJECTED_BY_RISK: a leg above ``[limits] max_amount_in``); :func:`reprice` re-prices both legs on the
executor's pool state (STALE: no head, signal too old, a pool not tradable, a leg's exact output below the
signal's) and builds each leg's ``swap`` hop with ``min_out`` = its exact output less ``leg_slippage_bps``.
"""

from __future__ import annotations

from dataclasses import dataclass

from execution.calldata import Hop as CallHop
from execution.calldata import Kind
from execution.config import ChainSideConfig, CrossChainConfig, ExecutorConfig
from execution.validate import Signal
from market.path import Hop as MarketHop
from market.pools import V2Pool, V3Pool
from market.state import PoolStateManager
from protocol.execution import ChainLeg, Outcome
from protocol.ids import PoolId, TokenId, VenueKind
from protocol.signals import CrossChainArbitrage

BPS = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class LegSpec:
    """One leg, re-priced: ``amount_in`` of ``token_in`` for exactly ``expected_out`` of ``token_out`` on the
    current state, sent with ``min_out``."""

    leg: ChainLeg
    chain: ChainSideConfig
    pool: PoolId
    token_in: TokenId
    token_out: TokenId
    amount_in: int
    expected_out: int
    min_out: int
    kind: Kind
    fee: int
    factory: str

    def hop(self, amount_in: int | None = None, min_out: int | None = None, *, reverse: bool = False) -> CallHop:
        """The leg's ``swap`` hop (``reverse``: its unwind, the output swapped back into the input)."""
        tin, tout = (self.token_out, self.token_in) if reverse else (self.token_in, self.token_out)
        return CallHop(pool=self.pool.address, factory=self.factory,
                       token_in=tin.address, token_out=tout.address,
                       kind=self.kind, fee=self.fee, amount_in=self.amount_in if amount_in is None else amount_in,
                       amount_out=self.min_out if min_out is None else min_out)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    legs: tuple[LegSpec, LegSpec]
    gross: int  # profit-token units: destination quote out - source quote in, + the base left over, valued


def chains_of(sig: Signal) -> tuple[int, int]:
    """(source, destination) chain ids: the identity's chain and hop 1's pool's chain."""
    return sig.identity.chain_id, PoolId(sig.path.hops[-1].pool).chain_id


def check(sig: Signal, cfg: ExecutorConfig, xc: CrossChainArbitrage | None = None) -> tuple[Outcome, str] | None:
    """What makes the signal unexecutable here whatever the market does (None: nothing)."""
    x = cfg.cross_chain
    if x is None:
        return Outcome.FAILED, "CROSS_CHAIN signal but no [cross_chain] table in the executor's configuration"
    hops = sig.path.hops
    if len(hops) != 2:
        return Outcome.FAILED, f"a CROSS_CHAIN signal has 2 hops (one per chain), not {len(hops)}"
    src, dst = chains_of(sig)
    if PoolId(hops[0].pool).chain_id != src:
        return Outcome.FAILED, f"hop 0's pool is on chain {PoolId(hops[0].pool).chain_id}, the signal's on {src}"
    if src == dst:
        return Outcome.FAILED, f"both hops are on chain {src}"
    if xc is not None and (xc.source_chain, xc.dest_chain) != (src, dst):
        return Outcome.FAILED, (f"CrossChainArbitrage says {xc.source_chain} -> {xc.dest_chain}, the path "
                                f"{src} -> {dst}")
    for cid in (src, dst):
        if x.chain(cid) is None:
            return Outcome.FAILED, f"chain {cid} is not in [[cross_chain.chains]]"
    quote = TokenId.of(src, hops[0].token_in)
    if sig.economics.profit_token != quote:
        return Outcome.FAILED, f"profit token is not hop 0's input {src}:{quote.address}"
    if hops[0].token_out == hops[0].token_in or hops[1].token_out == hops[1].token_in:
        return Outcome.FAILED, "a hop swaps a token for itself"
    for i, (h, cid) in enumerate(((hops[0], src), (hops[1], dst))):
        token = TokenId.of(cid, h.token_in)
        cap = cfg.limits.max_amount_in.get(token)  # written on [executor]'s chain: applies to the source leg
        if cap is not None and cid == cfg.chain_id and h.amount_in > cap:
            return Outcome.REJECTED_BY_RISK, f"leg {i} size {h.amount_in} of {token.address} above the limit {cap}"
    return None


def market_ready(sig: Signal, state: PoolStateManager) -> bool:
    """Both chains' heads known, the source head at the signal's block, both pools tradable."""
    src, dst = chains_of(sig)
    head = state.gas.get(src)
    if head is None or head.block_number < sig.identity.block_number or dst not in state.gas:
        return False
    return all(state.tradable(h.pool) is not None for h in sig.path.hops)


def reprice(sig: Signal, cfg: ExecutorConfig, state: PoolStateManager) -> Plan | tuple[Outcome, str]:
    x = cfg.cross_chain
    assert x is not None
    src, dst = chains_of(sig)
    head = state.gas.get(src)
    if head is None or dst not in state.gas:
        return Outcome.STALE, f"no block header for chain {src if head is None else dst} yet"
    age, limit = head.block_number - sig.identity.block_number, cfg.validation.max_age_blocks(src)
    if age > limit:
        return Outcome.STALE, (f"signal block {sig.identity.block_number} is {age} blocks behind head "
                               f"{head.block_number} on chain {src} (max {limit})")
    legs = []
    for i, cid in enumerate((src, dst)):
        leg = _leg(ChainLeg(i), sig, x, cid, state)
        if isinstance(leg, tuple):
            return leg
        legs.append(leg)
    l0, l1 = legs
    gross = l1.expected_out - l0.amount_in
    left = l0.expected_out - l1.amount_in  # base bought on the source chain beyond what the destination sells
    if left:
        base, quote = TokenId.of(src, sig.path.hops[0].token_out), TokenId(sig.economics.profit_token)
        value = state.convert(abs(left), base, quote, round_up=left < 0)
        if value is None:
            return Outcome.FAILED, f"cannot value {left} of the base token on chain {src} (no pool)"
        gross += value if left > 0 else -value
    return Plan(legs=(l0, l1), gross=gross)


def _leg(which: ChainLeg, sig: Signal, x: CrossChainConfig, chain_id: int,
         state: PoolStateManager) -> LegSpec | tuple[Outcome, str]:
    side = x.chain(chain_id)
    assert side is not None
    hop = sig.path.hops[which]
    pool, zfo = MarketHop.from_wire(hop)
    snap = state.tradable(pool)
    if snap is None:
        return Outcome.STALE, (f"leg {int(which)}: pool {pool.address} on chain {chain_id} is "
                               f"{'invalidated' if state.is_stale(pool) else 'unknown'}")
    factory = side.factories.get(pool.venue)
    if factory is None:
        return Outcome.FAILED, f"leg {int(which)}: no factory configured for venue {pool.venue} on chain {chain_id}"
    if isinstance(snap, V2Pool):
        kind, fee = Kind.V2, snap.fee_ppm
    elif isinstance(snap, V3Pool):
        kind, fee = Kind.V3, snap.fee
    else:
        return Outcome.FAILED, f"leg {int(which)}: venue kind {VenueKind(pool.kind).name} is not a swap leg"
    out = snap.amount_out(zfo, hop.amount_in)
    if out <= 0 or out < hop.amount_out:
        return Outcome.STALE, (f"leg {int(which)} on chain {chain_id}: {hop.amount_in} in gives {out} now, "
                               f"the signal's {hop.amount_out}")
    return LegSpec(leg=which, chain=side, pool=pool, token_in=TokenId.of(chain_id, hop.token_in),
                   token_out=TokenId.of(chain_id, hop.token_out), amount_in=hop.amount_in, expected_out=out,
                   min_out=out * (BPS - x.leg_slippage_bps) // BPS, kind=kind, fee=fee, factory=factory)


__all__ = ["LegSpec", "Plan", "chains_of", "check", "market_ready", "reprice"]
