"""CEX-DEX arbitrage sizing: one asset on a centralised order book and on a DEX pool.

Two directions, each sized exactly (integer math on both sides: the book's levels walked by
``market.cex``, the pool's own curve through its snapshot's ``amount_out`` / ``min_input``):

* **CEX_TO_DEX**: buy ``s`` base on the CEX (walking the asks, taker fee on top), sell the same base
  units into the pool for quote. Needs quote on the CEX and base on chain.
* **DEX_TO_CEX**: buy exactly that base from the pool (the least quote input that yields it), sell it
  into the CEX bids (taker fee deducted). Needs quote on chain and base on the CEX.

``s`` is in the book's size steps (``size_scale``), so both legs move the same base units. Gross
profit (quote units) is concave in ``s`` -- the book's cost is convex piecewise linear and the
pool's output concave -- so an integer ternary search over ``[1, s_max]`` finds its maximum; ``s_max``
is the book's depth on that side, cut by the inventory each leg needs. Net profit subtracts the DEX
gas (already converted to the quote token by the caller) and a slippage allowance (``slippage_bps`` of
the DEX leg's quote amount). Only a positive net profit is an opportunity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from market.cex import PPM, CexBook, CexBooks, Units, buy_base_cost, sell_base_proceeds
from market.params import MarketParams
from market.state import PoolStateManager
from protocol.header import Domain
from protocol.ids import PoolId, TokenId, VenueKind, cex_book_id
from protocol.market import Quote
from protocol.message import Message
from protocol.signals import ArbitragePath, Economics, Hop, SignalIdentity, SignalKind
from protocol.tlv import TLV

BPS = 10_000


class Direction(Enum):
    CEX_TO_DEX = "cex_to_dex"  # buy on the CEX, sell on the DEX
    DEX_TO_CEX = "dex_to_cex"


class Pool(Protocol):
    def amount_out(self, zero_for_one: bool, amount_in: int) -> int: ...
    def min_input(self, zero_for_one: bool, amount_out: int) -> int: ...
    def marginal(self, zero_for_one: bool) -> tuple[int, int]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Inventory:
    """What each venue holds now, in token base units."""

    cex_base: int = 0
    cex_quote: int = 0
    chain_base: int = 0
    chain_quote: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class CexDexOpportunity:
    direction: Direction
    size: int  # book size steps traded on the CEX
    base_units: int  # the same amount in base token units (both legs)
    quote_in: int  # quote paid by the buying leg (fee included)
    quote_out: int  # quote received by the selling leg (fee deducted)
    gas_cost: int  # DEX gas, in quote units
    slippage_allowance: int
    cex_fee_ppm: int

    @property
    def gross_profit(self) -> int:
        return self.quote_out - self.quote_in

    @property
    def net_profit(self) -> int:
        return self.gross_profit - self.gas_cost - self.slippage_allowance


def _legs(direction: Direction, book: CexBook, units: Units, pool: Pool, base_is_token0: bool, fee_ppm: int,
          slippage_bps: int, inv: Inventory) -> Callable[[int], tuple[int, int, int] | None]:
    """size -> (quote_in, quote_out, slippage allowance), or None when not feasible at that size.

    The book's side is sorted once here: a search calls the legs a hundred times on the same book."""
    asks = book.asks_up() if direction is Direction.CEX_TO_DEX else None
    bids = book.bids_down() if direction is Direction.DEX_TO_CEX else None

    def cex_to_dex(s: int) -> tuple[int, int, int] | None:
        base = units.base_units(s)
        cost = buy_base_cost(book, units, base, fee_ppm, asks=asks)
        if cost is None or cost > inv.cex_quote or base > inv.chain_base:
            return None
        out = pool.amount_out(base_is_token0, base)
        if out < 0:
            return None
        return cost, out, out * slippage_bps // BPS

    def dex_to_cex(s: int) -> tuple[int, int, int] | None:
        base = units.base_units(s)
        if base > inv.cex_base:
            return None
        quote_in = pool.min_input(not base_is_token0, base)
        proceeds = sell_base_proceeds(book, units, base, fee_ppm, bids=bids)
        if quote_in < 0 or proceeds is None or quote_in > inv.chain_quote:
            return None
        return quote_in, proceeds, -(-quote_in * slippage_bps // BPS)

    return cex_to_dex if direction is Direction.CEX_TO_DEX else dex_to_cex


def _profitable_at_margin(direction: Direction, book: CexBook, units: Units, pool: Pool, base_is_token0: bool,
                          fee_ppm: int) -> bool:
    """Whether the first base unit already gains: the pool's zero-size rate (fee included) against the book's
    best price (taker fee included). Gross profit is concave in the size and zero at zero, so when the first
    unit does not gain, no size does (and rounding, which always goes against us, cannot make one): the
    search is skipped. Exact integer cross-multiplication."""
    scale = 10**units.price_scale * 10**units.base_decimals * PPM  # book price -> quote units per base unit
    if direction is Direction.CEX_TO_DEX:
        if not book.asks:
            return False
        num, den = pool.marginal(base_is_token0)  # quote out per base in
        return num * scale > den * min(book.asks) * 10**units.quote_decimals * (PPM + fee_ppm)
    if not book.bids:
        return False
    num, den = pool.marginal(not base_is_token0)  # base out per quote in
    return max(book.bids) * 10**units.quote_decimals * (PPM - fee_ppm) * num > scale * den


def _feasible_max(legs: Callable[[int], tuple[int, int, int] | None], hi: int) -> int:
    """The largest size in [0, hi] at which both legs are feasible (feasibility shrinks with size)."""
    lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if legs(mid) is not None:
            lo = mid
        else:
            hi = mid - 1
    return lo


def best(direction: Direction, book: CexBook, units: Units, pool: Pool, *, base_is_token0: bool,
         cex_fee_ppm: int, gas_cost: int, slippage_bps: int, inventory: Inventory) -> CexDexOpportunity | None:
    """The most profitable size in ``direction`` (None when nothing nets a profit)."""
    if not _profitable_at_margin(direction, book, units, pool, base_is_token0, cex_fee_ppm):
        return None
    depth = sum(book.asks.values()) if direction is Direction.CEX_TO_DEX else sum(book.bids.values())
    # the base each leg can move caps the size before any walk (a leg is infeasible past it anyway)
    depth = min(depth, units.size_of(inventory.chain_base if direction is Direction.CEX_TO_DEX else inventory.cex_base))
    legs = _legs(direction, book, units, pool, base_is_token0, cex_fee_ppm, slippage_bps, inventory)
    hi = _feasible_max(legs, depth)
    if hi <= 0:
        return None

    def value(s: int) -> int:
        r = legs(s)
        assert r is not None  # every size up to hi is feasible
        return r[1] - r[0] - r[2]

    lo = 1
    while hi - lo > 2:
        m1, m2 = lo + (hi - lo) // 3, hi - (hi - lo) // 3
        if value(m1) < value(m2):
            lo = m1 + 1
        else:
            hi = m2
    s = max(range(lo, hi + 1), key=value)
    r = legs(s)
    assert r is not None
    opp = CexDexOpportunity(direction=direction, size=s, base_units=units.base_units(s), quote_in=r[0],
                            quote_out=r[1], gas_cost=gas_cost, slippage_allowance=r[2], cex_fee_ppm=cex_fee_ppm)
    return opp if opp.net_profit > 0 else None


def best_either(book: CexBook, units: Units, pool: Pool, *, base_is_token0: bool, cex_fee_ppm: int, gas_cost: int,
                slippage_bps: int, inventory: Inventory) -> CexDexOpportunity | None:
    """The better of the two directions (None when neither nets a profit)."""
    found = [o for d in Direction if (o := best(d, book, units, pool, base_is_token0=base_is_token0,
                                                cex_fee_ppm=cex_fee_ppm, gas_cost=gas_cost,
                                                slippage_bps=slippage_bps, inventory=inventory)) is not None]
    return max(found, key=lambda o: o.net_profit, default=None)


# --- the signal-producing engine -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class CexDexPair:
    """One asset on a CEX book and on chain: the identity comes from configuration, not from the data."""

    venue: int
    symbol: str  # the venue's spelling
    base_asset: str  # the venue's asset names (for the book id)
    quote_asset: str
    base: TokenId  # the same assets on chain
    quote: TokenId
    base_decimals: int
    quote_decimals: int
    gas_token: TokenId
    cex_fee_ppm: int = 1000
    inventory: Inventory = Inventory()
    min_net_profit: int = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class CexDexParams:
    pairs: tuple[CexDexPair, ...]
    strategy_id: int = 2
    strategy: str = "cex-dex"
    source_id: int = 21
    confidence_bps: int = 5000
    slippage_bps: int = 10
    gas_base: int = 40_000
    gas_v2_hop: int = 60_000
    gas_v3_hop: int = 110_000


class CexDexEngine:
    """Market data in, CEX-DEX signal messages out (sans-IO, like ``strategy.engine.StrategyEngine``).

    A signal is ``SignalIdentity(kind=CEX_DEX)`` + ``Economics`` (profit token = the quote token on
    chain; gas is the DEX leg's, converted from the gas token) + ``ArbitragePath`` with the two legs in
    trade order: the CEX hop's ``pool`` is the book's ``cex_book_id`` (``venue_kind`` CEX, amounts in
    token base units), the DEX hop is the pool's. A book that is not whole is never used.
    """

    def __init__(self, params: CexDexParams, market: MarketParams | None = None, *, first_signal_id: int = 1,
                 state: PoolStateManager | None = None, next_signal_id: Callable[[], int] | None = None) -> None:
        """Standalone (its own pool state from ``market``) or inside ``StrategyEngine`` (its ``state`` and
        its signal-id counter, so the two never hand out the same id)."""
        self.params = params
        self.books = CexBooks()
        self.owns_state = state is None
        self.state = state if state is not None else PoolStateManager(market or MarketParams())
        self.stats: Counter[str] = Counter()
        self._next_signal_id = first_signal_id
        self._ids = next_signal_id or self._own_id
        self._source_seq = 0
        # marked by apply_records, evaluated (and cleared) by evaluate
        self._books_dirty: set[tuple[int, str]] = set()
        self._pairs_dirty: set[int] = set()

    def _own_id(self) -> int:
        signal_id, self._next_signal_id = self._next_signal_id, self._next_signal_id + 1
        return signal_id

    def on_message(self, msg: Message, now_ns: int) -> list[Message]:
        if msg.domain != Domain.MARKET_DATA:
            return []
        return self.on_records(msg.tlvs, msg, now_ns)

    def on_records(self, records: Iterable[object], cause: Message, now_ns: int,
                   touched_pools: Iterable[PoolId] = ()) -> list[Message]:
        """Apply the CEX records (and, standalone, the pool records) of ``cause``; evaluate every pair
        whose book got a new top or whose pools changed (``touched_pools``: pools the caller applied)."""
        self.apply_records(records, cause, touched_pools)
        return self.evaluate(cause, now_ns)

    def apply_records(self, records: Iterable[object], cause: Message, touched_pools: Iterable[PoolId] = ()) -> None:
        """:meth:`on_records` without the evaluation: the books and pairs it changed stay marked until the
        next :meth:`evaluate` (a strategy applying several messages that arrived together decides once)."""
        books_touched = self._books_dirty
        pairs_touched = self._pairs_dirty
        pairs_touched.update(p.pair_key for p in touched_pools)
        for t in records:
            if isinstance(t, TLV):
                book = self.books.on_tlv(t, cause.receive_time_ns)
                if book is not None:
                    if isinstance(t, Quote):
                        books_touched.add((book.venue, book.symbol))
                    continue
            if self.owns_state:
                pool = self.state.apply(t)
                if pool is not None:
                    pairs_touched.add(pool.pair_key)

    def evaluate(self, cause: Message, now_ns: int, *, decide: bool = True) -> list[Message]:
        """The signals of every pair marked since the last evaluation (none with ``decide=False``: the marks
        are dropped, as for old news); ``cause``: the last message applied."""
        books_touched, self._books_dirty = self._books_dirty, set()
        pairs_touched, self._pairs_dirty = self._pairs_dirty, set()
        if not decide or not (books_touched or pairs_touched):
            return []
        out = []
        for pair in self.params.pairs:
            if (pair.venue, pair.symbol) in books_touched or _pair_key(pair.base, pair.quote) in pairs_touched:
                sig = self._evaluate(pair, cause, now_ns)
                if sig is not None:
                    out.append(sig)
        return out

    def _evaluate(self, pair: CexDexPair, cause: Message, now_ns: int) -> Message | None:
        book = self.books.book(pair.venue, pair.symbol)
        if book is None:
            self.stats["book_not_whole"] += 1
            return None
        gas = self.state.gas.get(pair.base.chain_id)
        if gas is None:
            self.stats["no_gas_price"] += 1
            return None
        units = Units(base_decimals=pair.base_decimals, quote_decimals=pair.quote_decimals,
                      price_scale=book.price_scale, size_scale=book.size_scale)
        p = self.params
        best_opp, best_pool, best_gas = None, None, (0, 0)
        for snap in self.state.tradable_pools_of_pair(pair.base, pair.quote):
            kind = snap.pool.kind
            if kind not in (VenueKind.UNISWAP_V2, VenueKind.UNISWAP_V3):
                continue
            units_gas = p.gas_base + (p.gas_v2_hop if kind == VenueKind.UNISWAP_V2 else p.gas_v3_hop)
            gas_quote = self.state.convert(units_gas * gas.total, pair.gas_token, pair.quote, round_up=True)
            if gas_quote is None:
                continue
            opp = best_either(book, units, snap, base_is_token0=snap.pool.token0 == pair.base,
                              cex_fee_ppm=pair.cex_fee_ppm, gas_cost=gas_quote, slippage_bps=p.slippage_bps,
                              inventory=pair.inventory)
            if opp is not None and (best_opp is None or opp.net_profit > best_opp.net_profit):
                best_opp, best_pool, best_gas = opp, snap, (units_gas, gas.total)
        if best_opp is None or best_pool is None or best_opp.net_profit < pair.min_net_profit:
            self.stats["no_opportunity"] += 1
            return None
        self.stats["signals"] += 1
        return self._signal(pair, best_opp, best_pool.pool, best_gas, gas.block_number, cause, now_ns)

    def _signal(self, pair: CexDexPair, opp: CexDexOpportunity, pool: PoolId, gas: tuple[int, int], block: int,
                cause: Message, now_ns: int) -> Message:
        signal_id = self._ids()
        self._source_seq += 1
        p = self.params
        base, quote = bytes.fromhex(pair.base.address[2:]), bytes.fromhex(pair.quote.address[2:])
        book_id = cex_book_id(pair.venue, pair.symbol, pair.base_asset, pair.quote_asset)
        if opp.direction is Direction.CEX_TO_DEX:
            hops = (Hop(pool=book_id, venue_kind=VenueKind.CEX, token_in=quote, token_out=base,
                        amount_in=opp.quote_in, amount_out=opp.base_units),
                    Hop(pool=pool, venue_kind=int(pool.kind), token_in=base, token_out=quote,
                        amount_in=opp.base_units, amount_out=opp.quote_out))
        else:
            hops = (Hop(pool=pool, venue_kind=int(pool.kind), token_in=quote, token_out=base,
                        amount_in=opp.quote_in, amount_out=opp.base_units),
                    Hop(pool=book_id, venue_kind=VenueKind.CEX, token_in=base, token_out=quote,
                        amount_in=opp.base_units, amount_out=opp.quote_out))
        identity = SignalIdentity(signal_id=signal_id, strategy_id=p.strategy_id, kind=SignalKind.CEX_DEX,
                                  confidence_bps=p.confidence_bps, chain_id=pair.base.chain_id, block_number=block,
                                  strategy=p.strategy)
        economics = Economics(profit_token=pair.quote, gross_profit=opp.gross_profit, gas_cost=opp.gas_cost,
                              flash_fee=0, slippage_allowance=opp.slippage_allowance, net_profit=opp.net_profit,
                              gas_units=gas[0], gas_price_wei=gas[1])
        return Message(domain=Domain.SIGNAL, tlvs=(identity, economics, ArbitragePath(hops=hops)),
                       source_id=p.source_id, source_seq=self._source_seq, event_time_ns=cause.event_time_ns,
                       receive_time_ns=now_ns)


def _pair_key(a: TokenId, b: TokenId) -> int:
    t0, t1 = sorted((a.address_int, b.address_int))
    return (a.chain_id << 320) | (t0 << 160) | t1
