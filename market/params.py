"""What the pool state manager must be told because the market-data records do not carry it.

A ``PoolSnapshot`` carries a pool's whole state, but two things only configuration knows:

* a V2 pair's LP fee when a ``Sync`` arrives before any snapshot of the pair (per chain and
  venue; 3000 ppm, the 997/1000 formula, unless the venue is listed), and
* a Curve pool's amplification and per-coin rates (a snapshot has balances and the fee only).

Each chain also names its gas token, the token gas costs are converted from
(:func:`market.prices.convert_from_gas_token`).

These objects are frozen and keyword-only. They belong to the market layer so that every
component that keeps pool state (strategy, executor, ...) builds them from its own
configuration, and none has to borrow another component's config class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from protocol.ids import TokenId

DEFAULT_V2_FEE_PPM = 3000  # Uniswap V2's 997/1000


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainParams:
    chain_id: int
    gas_token: TokenId
    v2_fee_ppm: Mapping[int, int] = field(default_factory=dict)  # venue code -> LP fee in ppm

    def v2_fee_for(self, venue: int) -> int:
        return self.v2_fee_ppm.get(venue, DEFAULT_V2_FEE_PPM)


@dataclass(frozen=True, slots=True, kw_only=True)
class CurveParams:
    """A StableSwap pool's parameters: ``rates`` are ``10**(36 - decimals)`` per coin."""

    chain_id: int
    address: int
    amp: int
    rates: tuple[int, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketParams:
    chains: tuple[ChainParams, ...] = ()
    curve_pools: tuple[CurveParams, ...] = ()

    def chain(self, chain_id: int) -> ChainParams | None:
        for c in self.chains:
            if c.chain_id == chain_id:
                return c
        return None

    def v2_fee_for(self, chain_id: int, venue: int) -> int:
        """A new V2 pair's fee: the chain's setting for the venue, else the Uniswap default."""
        chain = self.chain(chain_id)
        return chain.v2_fee_for(venue) if chain is not None else DEFAULT_V2_FEE_PPM
