"""Economics of a sized opportunity: every cost term, in integer units of the profit token.

::

    net_profit = gross_profit - gas_cost - flash_fee - slippage_allowance

* ``gross_profit``: exact output minus input of the cycle (the AMM mirrors' arithmetic).
* ``gas_cost``: ``gas_units × (base_fee + priority_fee)`` wei, where ``gas_units`` is the
  configured base plus the configured gas of each hop's venue kind, and the fees are the chain's
  newest ``BlockHeader``. Gas is paid in the chain's gas token (WETH); when the profit token is
  another token the wei are converted at the current mid price of the deepest tradable pool
  pairing the two (V2 reserves, or V3 ``sqrtPriceX96²/2¹⁹²``), **rounded up**: a cost is never
  understated by rounding (:func:`market.prices.convert_from_gas_token`, which the executor uses too). No such pool, or no header yet: no signal (we cannot price the cost).
* ``flash_fee``: the input is flash-borrowed, from the cheapest source the path allows
  (:func:`flash_choices`, fee and gas counted; the choice travels in the signal's ``FlashLoan``):

  - ``POOL``: a V2/V3 *flash swap* -- a pool of the path pays its output before it is paid, and the
    path repays it -- the only charge is the pool's swap fee, already inside the exact quote; the
    term is ``ceil(amount_in × economics.flash_fee_ppm / 1e6)``, 0 by default. Impossible when the
    first hop is a Curve pool (it cannot lend);
  - ``V4_UNLOCK``: a path with a V4 hop runs inside the PoolManager's unlock, which lends for free
    (same term as POOL);
  - ``BALANCER``: the Balancer V2 Vault's flash loan, where the chain's ``balancer_vault`` says the
    executor's contract can use one (no V4 hop): ``ceil(amount_in × balancer_fee_ppm / 1e6)`` and
    ``gas.balancer_flash`` more gas units. The only source for a path starting with a Curve hop.

  A path no source can lend to (a Curve hop with a V4 hop; a Curve first hop without a Vault) is
  not signalled.
* ``slippage_allowance``: ``ceil(gross × slippage_bps / 10000)``: state can move between our
  block and inclusion; the allowance is what we are prepared to lose to that.
* The signal is published only when ``net_profit > 0`` **and** ``net_profit >= min_net_profit``
  (configured per profit token; 0 when not configured).
"""

from __future__ import annotations

from dataclasses import dataclass

from market.pools import PoolState
from market.prices import convert_from_gas_token
from market.state import PoolStateManager
from protocol.ids import TokenId, VenueKind
from protocol.signals import FlashSource
from strategy.config import ChainConfig, GasConfig, StrategyConfig
from strategy.search import Opportunity


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    """Every term of a candidate's economics (all in ``profit_token`` units except the gas fields)."""

    profit_token: TokenId
    gross_profit: int
    gas_units: int
    gas_price_wei: int
    gas_cost_wei: int
    gas_cost: int
    flash_fee: int
    slippage_allowance: int
    min_net_profit: int
    flash_source: FlashSource = FlashSource.POOL

    @property
    def net_profit(self) -> int:
        return self.gross_profit - self.gas_cost - self.flash_fee - self.slippage_allowance

    @property
    def worth_signalling(self) -> bool:
        net = self.net_profit
        return net > 0 and net >= self.min_net_profit


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def path_gas_units(states: tuple[PoolState, ...], gas: GasConfig) -> int:
    units = gas.base
    for s in states:
        kind = s.KIND
        if kind == VenueKind.UNISWAP_V2:
            units += gas.v2_hop
        elif kind == VenueKind.UNISWAP_V3:
            units += gas.v3_hop
        elif kind == VenueKind.UNISWAP_V4:
            units += gas.v4_hop
        else:
            units += gas.curve_hop
    return units


def flash_choices(states: tuple[PoolState, ...], amount_in: int, chain: ChainConfig,
                  config: StrategyConfig) -> list[tuple[FlashSource, int, int]]:
    """The flash sources that can lend to a path, each as ``(source, extra gas units, fee)``: the
    path's own lender (a pool's flash swap, or the V4 PoolManager when a hop is V4) unless the first
    hop is Curve, and the Balancer V2 Vault where the chain has one and no hop is V4. A path with
    both Curve and V4 hops has none (the contract does not run Curve inside an unlock)."""
    kinds = [s.KIND for s in states]
    curve, v4 = VenueKind.CURVE in kinds, VenueKind.UNISWAP_V4 in kinds
    if curve and v4:
        return []
    out = []
    if kinds[0] != VenueKind.CURVE:
        own = FlashSource.V4_UNLOCK if v4 else FlashSource.POOL
        out.append((own, 0, _ceil_div(amount_in * config.economics.flash_fee_ppm, 1_000_000)))
    if chain.balancer_vault and not v4:
        out.append((FlashSource.BALANCER, config.gas.balancer_flash,
                    _ceil_div(amount_in * chain.balancer_fee_ppm, 1_000_000)))
    return out


def assess(opp: Opportunity, state: PoolStateManager, config: StrategyConfig) -> Assessment | None:
    """Every cost term of ``opp``, with the cheapest flash source (gas and fee counted; ties: the
    path's own lender); None when the gas cost cannot be priced (no header, no route) or nothing can
    lend to the path."""
    chain_id = opp.cycle.chain_id
    chain = config.chain(chain_id)
    head = state.gas.get(chain_id)
    if chain is None or head is None:
        return None
    token = opp.cycle.profit_token
    units = path_gas_units(opp.states, config.gas)
    price = head.total
    best: tuple[int, FlashSource, int, int, int] | None = None  # (cost + fee, source, units, cost, fee)
    for source, extra, fee in flash_choices(opp.states, opp.amount_in, chain, config):
        cost = convert_from_gas_token((units + extra) * price, chain.gas_token, token, state)
        if cost is None:
            return None
        if best is None or cost + fee < best[0]:
            best = (cost + fee, source, units + extra, cost, fee)
    if best is None:
        return None
    _, source, units, cost, fee = best
    gross = opp.gross_profit
    econ = config.economics
    return Assessment(
        profit_token=token,
        gross_profit=gross,
        gas_units=units,
        gas_price_wei=price,
        gas_cost_wei=units * price,
        gas_cost=cost,
        flash_fee=fee,
        slippage_allowance=_ceil_div(max(gross, 0) * econ.slippage_bps, 10_000),
        min_net_profit=chain.min_net_profit.get(token, 0),
        flash_source=source,
    )
