"""A hop: one swap of a path, through one pool in one direction.

This is the domain's hop, shared by the strategy (its cycles, :mod:`strategy.graph`) and the
executor (re-validating a signal's path). Two records describe a hop at the edges and stay
there: :class:`protocol.signals.Hop` on the signal bus (with the amounts the strategy computed)
and ``execution.calldata``'s ABI mirror of the arbitrage contract's ``Hop`` struct.
:meth:`Hop.from_wire` and :meth:`Hop.to_wire` convert to and from the bus record.

A ``Hop`` is a ``NamedTuple`` so that the search's hot loops may unpack it
(``for pool, zfo in cycle.hops``) as cheaply as a bare pair.
"""

from __future__ import annotations

from typing import NamedTuple

from protocol.ids import PoolId, TokenId
from protocol.signals import Hop as WireHop

_ADDR_MASK = (1 << 160) - 1


def address_bytes(token: int) -> bytes:
    """A token's (or any id's) 20-byte address, as the wire records carry it."""
    return (int(token) & _ADDR_MASK).to_bytes(20, "big")


class Hop(NamedTuple):
    """Through ``pool``, token0 in and token1 out if ``zero_for_one``, else the reverse."""

    pool: PoolId
    zero_for_one: bool

    @property
    def token_in(self) -> TokenId:
        return self.pool.token0 if self.zero_for_one else self.pool.token1

    @property
    def token_out(self) -> TokenId:
        return self.pool.token1 if self.zero_for_one else self.pool.token0

    @classmethod
    def from_wire(cls, hop: WireHop) -> Hop:
        """The bus record's pool and direction (token0 < token1, as the factories sort them)."""
        return cls(PoolId(hop.pool), int.from_bytes(hop.token_in, "big") < int.from_bytes(hop.token_out, "big"))

    def to_wire(self, amount_in: int, amount_out: int) -> WireHop:
        pool = self.pool
        return WireHop(pool=pool, venue_kind=int(pool.kind), token_in=address_bytes(self.token_in),
                       token_out=address_bytes(self.token_out), amount_in=amount_in, amount_out=amount_out)
