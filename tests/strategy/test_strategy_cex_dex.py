"""strategy/cex_dex.py: the sizing equals an exhaustive search, both directions, inventory and gas respected."""

from __future__ import annotations

import random

import pytest

from market.cex import CexBook, Units
from market.pools import V2Pool
from protocol.ids import PoolId, Venue, VenueKind
from strategy.cex_dex import Direction, Inventory, _legs, best, best_either

WETH = "0x" + "c0" * 20  # token0 < token1 below: WETH is token1
USDC = "0x" + "a0" * 20
POOL = PoolId.of(1, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, "0x" + "11" * 20, WETH, USDC)
UNITS = Units(base_decimals=18, quote_decimals=6, price_scale=2, size_scale=3)  # ETH in 0.001 steps, USDC cents
RICH = Inventory(cex_base=10**24, cex_quote=10**15, chain_base=10**24, chain_quote=10**15)


def pool_at(price_usdc_per_eth: int, eth: int = 100) -> V2Pool:
    r_weth, r_usdc = eth * 10**18, eth * price_usdc_per_eth * 10**6
    return V2Pool(pool=POOL, block_number=1, last_event=(1, 0), reserve0=r_usdc, reserve1=r_weth)


def book_at(mid_cents: int, levels: int = 8, size: int = 2_000) -> CexBook:
    b = CexBook(Venue.BINANCE, "ETHUSDC", 2, 3, trusted=True)
    for i in range(levels):
        b.asks[mid_cents + 50 + 100 * i] = size
        b.bids[mid_cents - 50 - 100 * i] = size
    return b


def exhaustive(direction: Direction, book: CexBook, pool: V2Pool, inv: Inventory, gas: int, slip: int, fee: int):
    best_net, best_s = 0, None
    for s in range(1, sum((book.asks if direction is Direction.CEX_TO_DEX else book.bids).values()) + 1):
        o = _legs(direction, book, UNITS, pool, False, fee, slip, inv)(s)
        if o is not None and o[1] - o[0] - o[2] - gas > best_net:
            best_net, best_s = o[1] - o[0] - o[2] - gas, s
    return best_net, best_s


@pytest.mark.parametrize(("cex_mid", "dex_price", "direction"), [
    (200_000, 2_100, Direction.CEX_TO_DEX),  # CEX 2000.00, pool 2100: buy on the CEX, sell on the pool
    (210_000, 2_000, Direction.DEX_TO_CEX),
])
def test_sizing_matches_an_exhaustive_search(cex_mid: int, dex_price: int, direction: Direction) -> None:
    book, pool = book_at(cex_mid), pool_at(dex_price)
    kw = {"base_is_token0": False, "cex_fee_ppm": 1000, "gas_cost": 5 * 10**6, "slippage_bps": 10, "inventory": RICH}
    opp = best_either(book, UNITS, pool, **kw)
    assert opp is not None and opp.direction is direction
    want_net, want_s = exhaustive(direction, book, pool, RICH, 5 * 10**6, 10, 1000)
    assert opp.net_profit == want_net and opp.size == want_s
    assert opp.base_units == opp.size * 10**15
    assert best(Direction.CEX_TO_DEX if direction is Direction.DEX_TO_CEX else Direction.DEX_TO_CEX, book, UNITS,
                pool, **kw) is None


def test_aligned_prices_or_gas_leave_nothing() -> None:
    kw = {"base_is_token0": False, "cex_fee_ppm": 1000, "slippage_bps": 10, "inventory": RICH}
    assert best_either(book_at(200_000), UNITS, pool_at(2_000), gas_cost=0, **kw) is None
    small = best_either(book_at(200_000), UNITS, pool_at(2_020), gas_cost=0, **kw)
    assert small is not None
    assert best_either(book_at(200_000), UNITS, pool_at(2_020), gas_cost=small.net_profit, **kw) is None


def test_inventory_caps_each_leg() -> None:
    book, pool = book_at(200_000), pool_at(2_100)
    kw = {"base_is_token0": False, "cex_fee_ppm": 1000, "gas_cost": 0, "slippage_bps": 0}
    free = best(Direction.CEX_TO_DEX, book, UNITS, pool, inventory=RICH, **kw)
    assert free is not None and free.base_units > 10**18
    capped = best(Direction.CEX_TO_DEX, book, UNITS, pool, inventory=Inventory(
        cex_quote=10**15, chain_base=10**18), **kw)  # only 1 ETH on chain to sell into the pool
    assert capped is not None and capped.base_units == 10**18
    quote_capped = best(Direction.CEX_TO_DEX, book, UNITS, pool, inventory=Inventory(
        cex_quote=1000 * 10**6, chain_base=10**24), **kw)  # 1,000 USDC on the CEX
    assert quote_capped is not None and quote_capped.quote_in <= 1000 * 10**6
    assert best(Direction.CEX_TO_DEX, book, UNITS, pool, inventory=Inventory(), **kw) is None


def test_random_books_and_pools_agree_with_brute_force() -> None:
    rng = random.Random(5)
    for _ in range(25):
        book = book_at(rng.randrange(195_000, 215_000), levels=rng.randrange(1, 5), size=rng.randrange(50, 400))
        pool = pool_at(rng.randrange(1_950, 2_150), eth=rng.randrange(5, 50))
        gas, slip, fee = rng.randrange(0, 3 * 10**6), rng.randrange(0, 30), rng.choice((0, 1000, 2000))
        for d in Direction:
            opp = best(d, book, UNITS, pool, base_is_token0=False, cex_fee_ppm=fee, gas_cost=gas, slippage_bps=slip,
                       inventory=RICH)
            want_net, _ = exhaustive(d, book, pool, RICH, gas, slip, fee)
            assert (opp.net_profit if opp else 0) == want_net


def test_the_margin_screen_never_hides_a_gain() -> None:
    """``best`` skips the search when the first unit does not gain; brute force agrees that no size does."""
    from strategy.cex_dex import _profitable_at_margin

    rng = random.Random(11)
    screened = 0
    for _ in range(40):
        book = book_at(rng.randrange(198_000, 202_000), levels=rng.randrange(1, 4), size=rng.randrange(50, 300))
        pool = pool_at(rng.randrange(1_985, 2_015), eth=rng.randrange(5, 50))
        fee = rng.choice((0, 1000, 2000))
        for d in Direction:
            if not _profitable_at_margin(d, book, UNITS, pool, False, fee):
                screened += 1
                assert exhaustive(d, book, pool, RICH, 0, 0, fee) == (0, None)
    assert screened > 20


# --- the engine: market-data messages in, CEX_DEX signals out -------------------------------------


def _engine_setup():
    from collectors.cex.book import BookPublisher, Counters, Instrument
    from market.params import ChainParams, MarketParams
    from protocol.ids import TokenId
    from strategy.cex_dex import CexDexEngine, CexDexPair, CexDexParams

    weth, usdc = TokenId.of(1, WETH), TokenId.of(1, USDC)
    pair = CexDexPair(venue=Venue.BINANCE, symbol="ETHUSDC", base_asset="ETH", quote_asset="USDC", base=weth,
                      quote=usdc, base_decimals=18, quote_decimals=6, gas_token=weth, cex_fee_ppm=1000,
                      inventory=RICH)
    engine = CexDexEngine(CexDexParams(pairs=(pair,)), MarketParams(chains=(ChainParams(chain_id=1, gas_token=weth),)))
    pub = BookPublisher(Instrument(venue=Venue.BINANCE, symbol="ETHUSDC", base="ETH", quote="USDC", price_scale=2,
                                   size_scale=3), Counters())
    return engine, pub


def _msg(tlvs, t=1):
    from protocol.header import Domain
    from protocol.message import Message

    return Message(domain=Domain.MARKET_DATA, tlvs=tuple(tlvs), source_id=1, source_seq=t, event_time_ns=t,
                   receive_time_ns=t)


def _chain_msgs(price: int):
    from protocol.market import BlockHeader, PoolSnapshot

    p = pool_at(price)
    head = BlockHeader(chain_id=1, number=10, timestamp=0, gas_limit=30_000_000, gas_used=0, hash=b"\1" * 32,
                       parent_hash=b"\0" * 32, base_fee=10**9, priority_fee=10**8)
    snap = PoolSnapshot(pool=POOL, block_number=10, fee_ppm=3000, tick_spacing=0, reserve0=p.reserve0,
                        reserve1=p.reserve1, sqrt_price_x96=0, tick=0, liquidity=0, ticks=())
    return [_msg([head]), _msg([snap])]


def test_engine_publishes_a_cex_dex_signal_with_both_legs_in_trade_order() -> None:
    from protocol.ids import VenueKind, cex_book_id
    from protocol.signals import ArbitragePath, Economics, SignalIdentity, SignalKind

    engine, pub = _engine_setup()
    for m in _chain_msgs(2_100):  # the pool lags: ETH at 2100 USDC on chain
        assert engine.on_message(m, 1) == []  # no book yet
    book = book_at(200_000)
    signals = []
    for a in pub.replace(book.bids_down(), book.asks_up(), 1, 2, 2):
        signals += engine.on_message(_msg(a.tlvs, 2), 2)
    (sig,) = signals
    ident, econ, path = sig.tlvs
    assert isinstance(ident, SignalIdentity) and ident.kind == SignalKind.CEX_DEX and ident.chain_id == 1
    assert isinstance(econ, Economics) and isinstance(path, ArbitragePath)
    cex, dex = path.hops
    assert cex.pool == cex_book_id(Venue.BINANCE, "ETHUSDC", "ETH", "USDC") and cex.venue_kind == VenueKind.CEX
    assert dex.pool == POOL and dex.venue_kind == VenueKind.UNISWAP_V2
    assert cex.token_out == dex.token_in and dex.token_out == cex.token_in  # USDC -> ETH on the CEX -> USDC
    assert cex.amount_out == dex.amount_in and econ.gross_profit == dex.amount_out - cex.amount_in
    assert econ.net_profit == econ.gross_profit - econ.gas_cost - econ.slippage_allowance > 0
    assert econ.gas_units == 100_000 and econ.gas_price_wei == 11 * 10**8
    want = best(Direction.CEX_TO_DEX, book, UNITS, pool_at(2_100), base_is_token0=False, cex_fee_ppm=1000,
                gas_cost=econ.gas_cost, slippage_bps=10, inventory=RICH)
    assert want is not None and want.net_profit == econ.net_profit


def test_engine_never_uses_an_invalidated_book() -> None:
    from protocol.market import InvalidationReason

    engine, pub = _engine_setup()
    book = book_at(200_000)
    for a in pub.replace(book.bids_down(), book.asks_up(), 1, 2, 2):
        engine.on_message(_msg(a.tlvs), 1)
    (inv,) = pub.invalidate(InvalidationReason.DISCONNECT, "gone", 1, 3)
    engine.on_message(_msg(inv.tlvs), 3)
    for m in _chain_msgs(2_100):
        assert engine.on_message(m, 4) == []
    assert engine.stats["book_not_whole"] >= 1 and engine.stats["signals"] == 0


# --- inside the strategy: [[cex_dex]] in the strategy's configuration --------------------------------

def _strategy_doc(**pair: object) -> dict:
    table = {"venue": "BINANCE", "symbol": "ETHUSDC", "base_asset": "ETH", "quote_asset": "USDC", "chain_id": 1,
             "base": WETH, "quote": USDC, "base_decimals": 18, "quote_decimals": 6, "cex_fee_ppm": 1000,
             "inventory": {"cex_quote": 10**15, "chain_base": 10**24}}
    table.update(pair)
    return {"chains": [{"chain_id": 1, "gas_token": WETH}], "cex_dex": [table]}


def test_the_strategy_engine_runs_configured_cex_dex_pairs_with_its_own_signal_ids() -> None:
    from strategy.config import config_from_dict
    from strategy.engine import StrategyEngine

    config = config_from_dict(_strategy_doc())
    (pair,) = config.cex_dex
    assert pair.gas_token == pair.base and pair.inventory.chain_base == 10**24
    engine = StrategyEngine(config, first_signal_id=70)
    _, pub = _engine_setup()
    for m in _chain_msgs(2_100):
        engine.on_message(m, 1)
    book = book_at(200_000)
    signals = [s for a in pub.replace(book.bids_down(), book.asks_up(), 1, 2, 2)
               for s in engine.on_message(_msg(a.tlvs, 2), 2)]
    (sig,) = signals
    assert sig.tlvs[0].kind == 4 and sig.tlvs[0].signal_id == 70 and sig.tlvs[0].strategy == config.name
    assert engine._next_signal_id == 71


@pytest.mark.parametrize(("change", "where"), [
    ({"venue": "NOPE"}, "cex_dex[0].venue"),
    ({"chain_id": 5}, "cex_dex[0].chain_id"),
    ({"base": "0x1234"}, "cex_dex[0].base"),
    ({"symbol": "X" * 30}, "cex_dex[0].symbol"),
    ({"cex_fee_ppm": 1_000_000}, "cex_dex[0].cex_fee_ppm"),
])
def test_cex_dex_config_mistakes_name_the_key(change: dict, where: str) -> None:
    from runtime.config import ConfigError
    from strategy.config import config_from_dict

    with pytest.raises(ConfigError) as err:
        config_from_dict(_strategy_doc(**change))
    assert where in str(err.value)


def test_coalesced_messages_keep_the_book_a_quote_moved_for_the_one_decision() -> None:
    """``StrategyEngine.coalesced_signals``: a quote applied with a later message in the same decision still
    has its pair evaluated -- once, after the last message (a header that moves no pair of its own)."""
    from protocol.market import BlockHeader
    from strategy.config import config_from_dict
    from strategy.engine import StrategyEngine

    engine = StrategyEngine(config_from_dict(_strategy_doc()), first_signal_id=70)
    _, pub = _engine_setup()
    for m in _chain_msgs(2_100):
        engine.on_message(m, 1)
    book = book_at(200_000)
    head = BlockHeader(chain_id=1, number=11, timestamp=0, gas_limit=30_000_000, gas_used=0, hash=b"\2" * 32,
                       parent_hash=b"\1" * 32, base_fee=10**9, priority_fee=10**8)
    msgs = [_msg(a.tlvs, 2) for a in pub.replace(book.bids_down(), book.asks_up(), 1, 2, 2)] + [_msg([head], 3)]
    (sig,) = engine.coalesced_signals(msgs, 3)
    assert sig.tlvs[0].kind == 4 and sig.tlvs[0].signal_id == 70
    # the marks were cleared by that decision: the next header alone evaluates nothing
    assert list(engine.coalesced_signals([_msg([head], 4)], 4)) == [] and engine._next_signal_id == 71
