"""Curve StableSwap in the EVM collector without a chain: the events' decoding (``collectors.evm.decode``),
the pool state they are applied to (``collectors.evm.curve.CurveBook``, exact against the StableSwap
mirror) and the follower around it (units, divergence, forgetting what a reorg or a lost connection
made stale)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak

from collectors.evm.curve import CurveBook, CurvePoolState
from collectors.evm.decode import (
    EVENT_SIGNATURES,
    TOPIC0_CURVE_ADD_LIQUIDITY,
    TOPIC0_CURVE_REMOVE_LIQUIDITY,
    TOPIC0_CURVE_REMOVE_LIQUIDITY_IMBALANCE,
    TOPIC0_CURVE_REMOVE_LIQUIDITY_ONE,
    TOPIC0_CURVE_TOKEN_EXCHANGE,
    CurveEvent,
    CurveOp,
    LogDecodeError,
    LogDecoder,
)
from collectors.evm.follower import ChainFollower, Header, Publish, PublishUnit, Snapshot
from market.amm import curve_stableswap as ss
from market.params import CurveParams, MarketParams
from market.state import PoolStateManager
from protocol.ids import PoolId, Venue, VenueKind
from protocol.market import InvalidationReason, PoolSnapshot, StateInvalidation

LOW, HIGH = "0x" + "11" * 20, "0x" + "ee" * 20  # the pool's coin 0 is HIGH (6 decimals), coin 1 LOW (18)
ADDR = "0x" + "cc" * 20
POOL = PoolId.of(1, Venue.CURVE, VenueKind.CURVE, ADDR, LOW, HIGH)
STATE = CurvePoolState(coins=(HIGH, LOW), balances=(500_000 * 10**6, 1_500_000 * 10**18), rates=(10**30, 10**18),
                       amp=200, fee=4_000_000, admin_fee=5_000_000_000)
PROVIDER = "0x" + "00" * 12 + "ab" * 20


def log(topic0: str, data: bytes, block: int = 5, index: int = 0, tx: str = "11") -> dict[str, Any]:
    return {"address": ADDR, "topics": [topic0, PROVIDER], "data": "0x" + data.hex(), "blockNumber": hex(block),
            "logIndex": hex(index), "transactionHash": "0x" + tx * 32, "blockHash": f"0x{block:064x}",
            "removed": False}


def exchange_log(i: int, dx: int, dy: int, **kw: Any) -> dict[str, Any]:
    return log(TOPIC0_CURVE_TOKEN_EXCHANGE, encode(["int128", "uint256", "int128", "uint256"], [i, dx, 1 - i, dy]),
               **kw)


def liquidity_log(topic0: str, amounts: list[int], fees: list[int], tail: int = 2, **kw: Any) -> dict[str, Any]:
    return log(topic0, encode(["uint256[2]", "uint256[2]", *["uint256"] * tail], [amounts, fees, *[7] * tail]), **kw)


def test_topics_are_the_classic_pools_event_signatures() -> None:
    for topic, sig in EVENT_SIGNATURES.items():
        assert "0x" + keccak(text=sig).hex() == topic, sig


def test_events_decode_to_curve_events_in_the_pools_coin_order() -> None:
    d = LogDecoder.from_pools([POOL])
    ev = d.decode(exchange_log(1, 10**18, 999_000, index=3))
    assert ev == CurveEvent(pool=POOL, block_number=5, log_index=3, op=CurveOp.EXCHANGE, amounts=(999_000, 10**18),
                            sold=1, bought=0)
    add = d.decode(liquidity_log(TOPIC0_CURVE_ADD_LIQUIDITY, [1, 2], [3, 4]))
    assert (add.op, add.amounts, add.fees) == (CurveOp.ADD, (1, 2), (3, 4))
    rem = d.decode(liquidity_log(TOPIC0_CURVE_REMOVE_LIQUIDITY, [5, 6], [0, 0], tail=1))
    assert (rem.op, rem.amounts) == (CurveOp.REMOVE, (5, 6))
    imb = d.decode(liquidity_log(TOPIC0_CURVE_REMOVE_LIQUIDITY_IMBALANCE, [5, 6], [1, 1]))
    assert imb.op == CurveOp.REMOVE_IMBALANCE
    one = d.decode(log(TOPIC0_CURVE_REMOVE_LIQUIDITY_ONE, encode(["uint256", "uint256"], [1, 2])))
    assert one.op == CurveOp.REMOVE_ONE
    with pytest.raises(LogDecodeError, match="coin ids 2, -1"):
        d.decode(log(TOPIC0_CURVE_TOKEN_EXCHANGE, encode(["int128", "uint256", "int128", "uint256"], [2, 1, -1, 1])))
    with pytest.raises(LogDecodeError, match="has 2 topics"):
        d.decode({**exchange_log(0, 1, 1), "topics": [TOPIC0_CURVE_TOKEN_EXCHANGE]})
    with pytest.raises(LogDecodeError, match="words"):
        d.decode(liquidity_log(TOPIC0_CURVE_ADD_LIQUIDITY, [1, 2], [3, 4], tail=1))
    # a removed log is the pool's invalidation, as for every other pool kind
    inv = d.decode({**exchange_log(0, 1, 1), "removed": True})
    assert isinstance(inv, StateInvalidation) and inv.reason == InvalidationReason.REORG and inv.pool == POOL


def test_the_book_applies_each_event_exactly_and_orders_the_snapshot_by_address() -> None:
    book = CurveBook()
    book.seed(POOL, STATE)
    dx = 12_345 * 10**6
    dy, after = ss.exchange(0, 1, dx, STATE.balances, STATE.rates, STATE.amp, STATE.fee, STATE.admin_fee)
    snap = book.apply(CurveEvent(pool=POOL, block_number=6, log_index=0, op=CurveOp.EXCHANGE, amounts=(dx, dy),
                                 sold=0, bought=1))
    assert isinstance(snap, PoolSnapshot) and snap.block_number == 6 and snap.fee_ppm == 400
    assert (snap.reserve0, snap.reserve1) == (after[1], after[0])  # token0 is LOW, the pool's coin 1
    assert book.states[POOL].balances == tuple(after)
    # the admin fee left the balances: not just + dx / - dy
    assert after[1] < STATE.balances[1] - dy
    # liquidity: + amounts - fees x admin_fee; - amounts; - amounts - fees x admin_fee
    base = book.states[POOL].balances
    book.apply(CurveEvent(pool=POOL, block_number=7, log_index=0, op=CurveOp.ADD, amounts=(10, 20), fees=(4, 6)))
    assert book.states[POOL].balances == (base[0] + 10 - 2, base[1] + 20 - 3)
    book.apply(CurveEvent(pool=POOL, block_number=7, log_index=1, op=CurveOp.REMOVE, amounts=(10, 20)))
    book.apply(CurveEvent(pool=POOL, block_number=7, log_index=2, op=CurveOp.REMOVE_IMBALANCE, amounts=(1, 1),
                          fees=(2, 2)))
    assert book.states[POOL].balances == (base[0] - 2 - 2, base[1] - 3 - 2)
    # what a consumer builds from the snapshot prices the pool as the book holds it
    sm = PoolStateManager(MarketParams(curve_pools=(CurveParams(chain_id=1, address=int(ADDR, 16), amp=200,
                                                                rates=(10**18, 10**30)),)))
    sm.apply(book.states[POOL].snapshot(POOL, 8))
    b = book.states[POOL].balances
    assert sm.get(POOL).amount_out(False, 10**9) == ss.exchange(0, 1, 10**9, b, STATE.rates, 200, STATE.fee)[0]


def test_a_payout_the_mirror_does_not_reproduce_invalidates_and_forgets_the_pool() -> None:
    book = CurveBook()
    book.seed(POOL, STATE)
    dy, _ = ss.exchange(0, 1, 10**6, STATE.balances, STATE.rates, STATE.amp, STATE.fee, STATE.admin_fee)
    out = book.apply(CurveEvent(pool=POOL, block_number=6, log_index=2, op=CurveOp.EXCHANGE, amounts=(10**6, dy + 1),
                                sold=0, bought=1))
    assert isinstance(out, StateInvalidation) and out.reason == InvalidationReason.STALE and out.from_block == 6
    assert "the mirror pays" in out.detail and POOL not in book.states
    assert book.apply(CurveEvent(pool=POOL, block_number=7, log_index=0, op=CurveOp.ADD, amounts=(1, 1),
                                 fees=(0, 0))) is None  # skipped until re-read
    book.seed(POOL, STATE)
    out = book.apply(CurveEvent(pool=POOL, block_number=8, log_index=0, op=CurveOp.REMOVE_ONE))
    assert isinstance(out, StateInvalidation) and "does not name its coin" in out.detail


def _head(n: int) -> Header:
    return Header(number=n, hash=f"0x{n:064x}", parent_hash=f"0x{n - 1:064x}", timestamp=1000 + n)


def test_the_follower_publishes_the_pools_snapshot_in_the_events_unit_and_rereads_a_stale_pool() -> None:
    f = ChainFollower(1, [POOL])
    acts = f.start(_head(4))
    assert isinstance(acts[0], Snapshot) and acts[0].pools == (POOL,)
    f.curve.seed(POOL, STATE)  # what the shell does with the snapshot it reads
    dy, after = ss.exchange(0, 1, 10**9, STATE.balances, STATE.rates, STATE.amp, STATE.fee, STATE.admin_fee)
    f.on_head(_head(5))
    assert f.on_logs([exchange_log(0, 10**9, dy)]) == []  # held until its transaction is complete
    (unit,) = f.on_idle()
    assert isinstance(unit, PublishUnit) and unit.tlvs == (STATE.__class__(
        coins=STATE.coins, balances=(after[0], after[1]), rates=STATE.rates, amp=200, fee=STATE.fee,
        admin_fee=STATE.admin_fee).snapshot(POOL, 5),)
    # a payout we cannot reproduce: the pool is invalidated at once and re-read at the next head
    acts = f.on_logs([exchange_log(0, 10**9, 1, index=1, tx="22")])
    assert [type(a) for a in acts] == [Publish] and acts[0].tlv.reason == InvalidationReason.STALE
    acts = f.on_head(_head(6))
    assert any(isinstance(a, Snapshot) and a.pools == (POOL,) for a in acts)
    # a lost connection forgets the pool: its events are skipped until the re-read seeds it again
    f.curve.seed(POOL, STATE)
    f.on_disconnect("cut")
    assert POOL not in f.curve.states
    assert f.on_logs([exchange_log(0, 10**9, dy, block=6, index=5, tx="33")]) == []
    assert f.on_idle() == [] and f.curve.stats["skipped"] == 1
