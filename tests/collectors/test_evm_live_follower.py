"""ChainFollower (the collector's sans-IO core) without a chain: ordering, dedup, gaps, reorgs."""

from __future__ import annotations

import dataclasses
from typing import Any

from collectors.evm.decode import TOPIC0_V2_SYNC
from collectors.evm.follower import (
    Backfill,
    ChainFollower,
    FetchHeaders,
    Header,
    Publish,
    PublishHeader,
    PublishUnit,
    Snapshot,
)
from protocol.ids import PoolId, Venue, VenueKind
from protocol.market import InvalidationReason, StateInvalidation, V2Reserves

A = PoolId.of(1, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, "0x" + "aa" * 20, "0x" + "01" * 20, "0x" + "02" * 20)
B = PoolId.of(1, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, "0x" + "bb" * 20, "0x" + "01" * 20, "0x" + "03" * 20)


def h(n: int, fork: str = "") -> Header:
    return Header(number=n, hash=f"0x{fork}{n:04x}".ljust(66, "0"), parent_hash=f"0x{fork if n > 10 else ''}{n - 1:04x}".ljust(66, "0"),
                  timestamp=1000 + n)


def sync(pool: PoolId, n: int, i: int, r0: int = 1, fork: str = "", removed: bool = False) -> dict[str, Any]:
    return {"address": pool.address, "topics": [TOPIC0_V2_SYNC], "data": "0x" + f"{r0:064x}" + f"{2:064x}",
            "blockNumber": hex(n), "logIndex": hex(i), "blockHash": h(n, fork).hash, "transactionHash": "0x" + "11" * 32,
            "removed": removed}


def published(actions: list[Any]) -> list[Any]:
    """Every TLV the actions publish, in order (a unit's records flattened)."""
    out: list[Any] = []
    for a in actions:
        if isinstance(a, Publish):
            out.append(a.tlv)
        elif isinstance(a, PublishUnit):
            out.extend(a.tlvs)
    return out


def test_live_follower_orders_and_dedups() -> None:
    f = ChainFollower(1, [A, B], unit="log")
    assert f.start(h(10)) == [Snapshot((A, B), 10), PublishHeader(h(10))]
    assert published(f.on_logs([sync(A, 11, 0), sync(B, 11, 1)])) == [
        V2Reserves(pool=A, block_number=11, log_index=0, reserve0=1, reserve1=2),
        V2Reserves(pool=B, block_number=11, log_index=1, reserve0=1, reserve1=2)]
    assert f.on_logs([sync(A, 11, 0)]) == []  # a duplicate never goes out twice
    assert f.on_head(h(11)) == [PublishHeader(h(11))]
    assert f.on_head(h(11)) == []
    # a log two blocks ahead waits for its predecessor's head
    assert f.on_logs([sync(A, 13, 0)]) == []
    assert published(f.on_head(h(12))) == [V2Reserves(pool=A, block_number=13, log_index=0, reserve0=1, reserve1=2)]


def test_live_follower_gap_and_disconnect_backfill() -> None:
    f = ChainFollower(1, [A, B])
    f.start(h(10))
    acts = f.on_disconnect("gone")
    assert [t.reason for t in published(acts)] == [InvalidationReason.DISCONNECT] * 2
    assert f.on_disconnect("again") == []  # once per outage
    acts = f.on_connected(h(14))
    assert acts == [FetchHeaders(tuple(range(10, 15)), h(14))]
    acts = f.on_headers(h(14), {n: h(n) for n in range(10, 15)})
    assert acts[0] == Backfill(11, 14)
    assert [a.header.number for a in acts if isinstance(a, PublishHeader)] == [11, 12, 13, 14]
    assert acts[-1] == Snapshot((A, B), 14)
    out = published(f.on_backfill(11, 14, [sync(B, 13, 2), sync(A, 12, 0)]))
    assert [(t.block_number, t.log_index) for t in out] == [(12, 0), (13, 2)]
    assert f.on_logs([sync(A, 14, 0)]) == []  # already covered by the backfill


def test_live_follower_reorg_invalidates_first_then_backfills_and_resnapshots() -> None:
    f = ChainFollower(1, [A, B])
    f.start(h(10))
    for n in (11, 12, 13):
        f.on_logs([sync(A if n == 12 else B, n, 0)])
        f.on_head(h(n))
    # block 12 and 13 replaced by another branch "f"
    acts = f.on_head(Header(number=12, hash=h(12, "f").hash, parent_hash=h(11).hash))
    assert isinstance(acts[0], FetchHeaders)
    canonical = {n: h(n) for n in range(10, 12)}
    canonical[12] = Header(number=12, hash=h(12, "f").hash, parent_hash=h(11).hash)
    canonical[13] = Header(number=13, hash=h(13, "f").hash, parent_hash=h(12, "f").hash)
    acts = f.on_headers(acts[0].target, canonical)
    first = published(acts[:2])
    assert all(isinstance(t, StateInvalidation) and t.reason == InvalidationReason.REORG and t.from_block == 12
               for t in first)
    assert {t.pool for t in first} == {A, B}
    assert Backfill(12, 13) in acts and acts[-1] == Snapshot((A, B), 13)
    new = published(f.on_backfill(12, 13, [sync(B, 12, 0, r0=7, fork="f")]))
    assert new == [V2Reserves(pool=B, block_number=12, log_index=0, reserve0=7, reserve1=2)]
    assert f.reorgs == 1


def test_live_follower_removed_log_forces_a_check() -> None:
    f = ChainFollower(1, [A, B])
    f.start(h(10))
    f.on_logs([sync(A, 11, 0)])
    f.on_head(h(11))
    acts = f.on_logs([sync(A, 11, 0, removed=True)])
    (inv,) = published(acts)
    assert isinstance(inv, StateInvalidation) and inv.reason == InvalidationReason.REORG and inv.pool == A
    acts = f.on_head(h(12))
    assert isinstance(acts[0], FetchHeaders)  # even though the head extends the last one
    acts = f.on_headers(h(12), {10: h(10), 11: h(11), 12: h(12)})
    assert Backfill(11, 12) in acts and acts[-1] == Snapshot((A,), 12)


def swap_log(pool: PoolId, n: int, i: int, tx: str, r0: int = 1) -> dict[str, Any]:
    return {**sync(pool, n, i, r0), "transactionHash": "0x" + tx * 32}


def test_live_follower_publishes_one_transactions_logs_as_one_unit_in_log_order() -> None:
    f = ChainFollower(1, [A, B])  # unit="tx"
    f.start(h(10))
    # a transaction's logs are held until the unit is complete...
    assert f.on_logs([swap_log(A, 11, 0, "aa"), swap_log(B, 11, 1, "aa")]) == []
    # ...a log of the next transaction completes it: one message, both records in log order
    acts = f.on_logs([swap_log(B, 11, 2, "bb", r0=5)])
    assert [type(a) for a in acts] == [PublishUnit]
    assert [(t.pool, t.log_index) for t in acts[0].tlvs] == [(A, 0), (B, 1)]
    # the stream drained: the pending transaction is complete
    [unit] = f.on_idle()
    assert [(t.pool, t.log_index, t.reserve0) for t in unit.tlvs] == [(B, 2, 5)]
    assert f.on_idle() == []
    # the head of the next block completes the last unit of the previous one, before the header
    assert f.on_logs([swap_log(A, 11, 3, "cc")]) == []
    acts = f.on_head(h(11))
    assert acts == [PublishHeader(h(11))]  # block 11's head may come before its last logs
    acts = f.on_head(h(12))
    assert [type(a) for a in acts] == [PublishUnit, PublishHeader]


def test_live_follower_block_unit_waits_for_the_block_and_a_disconnect_resends_half_a_unit() -> None:
    f = ChainFollower(1, [A, B], unit="block")
    f.start(h(10))
    assert f.on_logs([swap_log(A, 11, 0, "aa"), swap_log(B, 11, 1, "bb")]) == []
    assert f.on_idle() == []  # a drained stream does not end a block
    assert f.on_head(h(11)) == [PublishHeader(h(11))]  # nor does its own head
    [unit] = f.on_logs([swap_log(A, 12, 0, "cc")])  # a later block's log does
    assert [t.log_index for t in unit.tlvs] == [0, 1] and all(t.block_number == 11 for t in unit.tlvs)
    # the connection drops with block 12's unit half received: nothing of it goes out ...
    acts = f.on_disconnect("gone")
    assert not any(isinstance(a, PublishUnit) for a in acts)
    f.on_connected(h(12))
    acts = f.on_headers(h(12), {n: h(n) for n in range(10, 13)})
    assert Backfill(12, 12) in acts
    # ... and the backfill publishes the whole block as one unit
    [unit] = [a for a in f.on_backfill(12, 12, [swap_log(A, 12, 0, "cc"), swap_log(B, 12, 1, "cc")])
              if isinstance(a, PublishUnit)]
    assert [(t.pool, t.log_index) for t in unit.tlvs] == [(A, 0), (B, 1)]


def test_live_follower_tx_unit_from_a_backfill_is_split_by_transaction() -> None:
    f = ChainFollower(1, [A, B])
    f.start(h(10))
    f.on_disconnect("gone")
    f.on_connected(h(11))
    f.on_headers(h(11), {n: h(n) for n in range(10, 12)})
    acts = f.on_backfill(11, 11, [swap_log(B, 11, 2, "bb"), swap_log(A, 11, 0, "aa"), swap_log(B, 11, 1, "aa")])
    units = [[(t.pool, t.log_index) for t in a.tlvs] for a in acts if isinstance(a, PublishUnit)]
    assert units == [[(A, 0), (B, 1)], [(B, 2)]]
    assert f.backfilled_logs == 3


def test_live_follower_stamps_each_unit_when_it_was_complete() -> None:
    """A transaction unit's ``receive_time_ns`` is when its LAST log arrived (the shell's stamp), not when
    the next input showed it complete; a block unit's, when the input that completed it arrived; a log
    ahead of its head keeps its own arrival; a backfill's unit, when the answer arrived."""
    f = ChainFollower(1, [A, B])  # unit="tx"
    f.start(h(10))
    assert f.on_logs([swap_log(A, 11, 0, "aa")], 1_000) == [] and f.pending_block == 11
    assert f.on_logs([swap_log(B, 11, 1, "aa")], 2_000) == []
    [unit] = f.on_logs([swap_log(B, 11, 2, "bb")], 3_000)  # the next transaction completes the first
    assert isinstance(unit, PublishUnit) and len(unit.tlvs) == 2 and unit.receive_time_ns == 2_000
    [unit] = f.on_idle()
    assert unit.receive_time_ns == 3_000 and f.pending_block is None
    assert f.on_logs([swap_log(A, 13, 0, "cc")], 4_000) == []  # block 13 before head 12: held early
    f.on_head(h(11))
    acts = f.on_head(h(12))
    assert [type(a) for a in acts] == [PublishHeader] and f.pending_block == 13
    [unit] = f.on_idle()
    assert unit.receive_time_ns == 4_000
    lg = ChainFollower(1, [A, B], unit="log")
    lg.start(h(10))
    [one] = lg.on_logs([sync(A, 11, 0)], 5_000)
    assert isinstance(one, Publish) and one.receive_time_ns == 5_000
    f.on_disconnect("gone")
    f.on_connected(h(14))
    f.on_headers(h(14), {n: h(n) for n in range(10, 15)})
    units = [a for a in f.on_backfill(14, 14, [swap_log(A, 14, 0, "dd")], 6_000) if isinstance(a, PublishUnit)]
    assert [u.receive_time_ns for u in units] == [6_000]
    assert Header.from_rpc({"number": "0x5", "hash": "0x" + "ab" * 32, "parentHash": "0x" + "cd" * 32}, 7).rx_ns == 7
    blk = ChainFollower(1, [A, B], unit="block")
    blk.start(h(10))
    blk.on_head(h(11))
    assert blk.on_logs([swap_log(A, 11, 0, "aa")], 8_000) == []
    assert blk.on_logs([swap_log(B, 11, 1, "bb")], 8_100) == []  # another transaction: same block unit
    [unit] = [a for a in blk.on_head(dataclasses.replace(h(12), rx_ns=9_000)) if isinstance(a, PublishUnit)]
    assert len(unit.tlvs) == 2 and unit.receive_time_ns == 9_000  # the head that completed it
