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
* ``flash_fee``: the input is flash-borrowed. With a V2/V3 *flash swap* -- the first pool pays the
  output before it is paid, and the path repays it -- the only charge is the pool's swap fee, and
  that is already inside the exact quote of the first hop; the term is then 0 (the default,
  ``flash_fee_ppm = 0``). With an external flash loan (Aave-style), set ``flash_fee_ppm`` and the
  fee is ``ceil(amount_in × ppm / 1e6)``.
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
from strategy.config import GasConfig, StrategyConfig
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


def assess(opp: Opportunity, state: PoolStateManager, config: StrategyConfig) -> Assessment | None:
    """Every cost term of ``opp``; None when the gas cost cannot be priced (no header, no route)."""
    chain_id = opp.cycle.chain_id
    chain = config.chain(chain_id)
    head = state.gas.get(chain_id)
    if chain is None or head is None:
        return None
    token = opp.cycle.profit_token
    units = path_gas_units(opp.states, config.gas)
    price = head.total
    cost_wei = units * price
    cost = convert_from_gas_token(cost_wei, chain.gas_token, token, state)
    if cost is None:
        return None
    gross = opp.gross_profit
    econ = config.economics
    return Assessment(
        profit_token=token,
        gross_profit=gross,
        gas_units=units,
        gas_price_wei=price,
        gas_cost_wei=cost_wei,
        gas_cost=cost,
        flash_fee=_ceil_div(opp.amount_in * econ.flash_fee_ppm, 1_000_000),
        slippage_allowance=_ceil_div(max(gross, 0) * econ.slippage_bps, 10_000),
        min_net_profit=chain.min_net_profit.get(token, 0),
    )
