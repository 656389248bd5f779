"""``ChainFollower``: the collector's decisions, sans-IO.

The trio shell (``process.py``) feeds it what the node said -- heads, logs, header look-ups,
backfilled log ranges, a lost connection -- and executes the actions it returns, in order:

* ``Publish(tlv)``          -- send a TLV to the market-data relay;
* ``PublishUnit(tlvs)``     -- send the decoded logs of one transaction (or block) as ONE message,
  in log order (see "Units" below);
* ``PublishHeader(header)`` -- send a ``BlockHeader`` (the shell adds the priority-fee estimate);

Arrival stamps: the shell passes the wall time (ns) each input arrived from the node (``rx_ns``; a
``Header`` carries its own). ``PublishUnit`` carries when the unit was complete here: its LAST log's
arrival, or -- a ``"block"`` unit, which only a later input completes -- the arrival of the head or log
that completed it; ``Publish`` carries its log's (or the input's that caused it, 0 where the shell must
stamp it). The shell puts them in the message's ``receive_time_ns`` (specs/protocol.md): when the data
it carries was all here, not when it was published. (A block unit stamped with its first log would be
a block time old on arrival: a strategy's max-age check would apply every one as old news.)
* ``Backfill(a, b)``        -- ``eth_getLogs`` blocks ``a..b`` and hand them to ``on_backfill``;
* ``FetchHeaders(ns, h)``   -- read the canonical headers ``ns`` and hand them to ``on_headers``;
* ``Snapshot(pools, n)``    -- read the pools' full state at block ``n``, publish ``PoolSnapshot``s.

Invariants it keeps:

* ``cursor`` = ``(block, logIndex)`` such that every log at or before it has been published;
  a log at or before the cursor is never published again, so streams, backfills and
  reconnects can overlap freely. Logs go out in ``(block, logIndex)`` order.
* ``complete`` = the highest block whose logs are all published.
* The hashes of the last ``window`` blocks (heads seen and blocks logs came from). A head
  that does not extend the last one, or a log from a block we know under another hash,
  makes it fetch the canonical headers and compare: the first differing height is the fork
  point F. Then it publishes ``StateInvalidation(REORG)`` for every pool that had logs in the
  replaced blocks (all pools if the fork is older than the window) -- first --, rewinds
  cursor/complete to F-1, backfills F..head (the new branch's logs), publishes the new
  headers, and re-reads the affected pools at the new head (fresh ``PoolSnapshot``).
* ``removed: true`` logs (geth's reorg notice) publish the decoder's ``StateInvalidation(REORG)``
  at once and force the same check at the next head.
* Units (``unit="tx"`` or ``"block"``): decoded logs are held until their unit is complete and
  then go out together in one ``PublishUnit``, so a consumer that decides once per message never
  sees the state between two logs of one transaction (a three-hop arbitrage's three Swaps). A
  unit is complete when a log of a later unit arrives, when a head above its block arrives (a
  node emits a block's logs before the next block's), at the end of a backfilled range (whole
  blocks), or -- ``"tx"`` only -- when the shell reports the subscription drained (``on_idle``:
  a node writes the logs of a block back to back, so a drained stream ends a transaction). Any
  other publication (invalidation, header) first flushes the pending unit, keeping log order. A
  lost connection drops the pending unit and rewinds the cursor to before it, so the backfill
  republishes it whole. ``unit="log"`` publishes each log on its own (``Publish``).
* A lost connection publishes ``StateInvalidation(DISCONNECT)`` for every pool (once); after
  reconnecting, the missed range is backfilled and every pool is re-read.
* Curve pools: their decoded events go through ``curve`` (:class:`collectors.evm.curve.CurveBook`,
  seeded by the shell with each snapshot it reads), which turns them into the pool's ``PoolSnapshot`` in
  the event's unit. A pool marked stale here is forgotten there until re-read; an event it cannot apply
  exactly invalidates the pool (``StateInvalidation(STALE)``), which is re-read at the next head.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocol.ids import PoolId
from protocol.market import InvalidationReason, StateInvalidation
from protocol.tlv import TLV

from .curve import CurveBook
from .decode import CurveEvent, LogDecodeError, LogDecoder

MAX_INDEX = (1 << 32) - 1


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value or 0)


@dataclass(frozen=True, kw_only=True, slots=True)
class Header:
    number: int
    hash: str
    parent_hash: str
    timestamp: int = 0
    gas_limit: int = 0
    gas_used: int = 0
    base_fee: int = 0
    rx_ns: int = field(default=0, compare=False)  # when it arrived from the node (wall ns; 0: unknown)

    @classmethod
    def from_rpc(cls, d: Mapping[str, Any], rx_ns: int = 0) -> Header:
        return cls(number=_int(d["number"]), hash=str(d["hash"]).lower(), parent_hash=str(d["parentHash"]).lower(),
                   timestamp=_int(d.get("timestamp")), gas_limit=_int(d.get("gasLimit")),
                   gas_used=_int(d.get("gasUsed")), base_fee=_int(d.get("baseFeePerGas")), rx_ns=rx_ns)


@dataclass(frozen=True, slots=True)
class Publish:
    tlv: TLV
    event_time_ns: int | None = None
    receive_time_ns: int = field(default=0, compare=False)  # its input's arrival (0: the shell's clock)


@dataclass(frozen=True, slots=True)
class PublishUnit:
    tlvs: tuple[TLV, ...]
    event_time_ns: int | None = None
    receive_time_ns: int = field(default=0, compare=False)  # when it was complete here (see above)


@dataclass(frozen=True, slots=True)
class PublishHeader:
    header: Header


@dataclass(frozen=True, slots=True)
class Backfill:
    from_block: int
    to_block: int


@dataclass(frozen=True, slots=True)
class FetchHeaders:
    numbers: tuple[int, ...]
    target: Header


@dataclass(frozen=True, slots=True)
class Snapshot:
    pools: tuple[PoolId, ...]
    block: int


Action = Publish | PublishUnit | PublishHeader | Backfill | FetchHeaders | Snapshot


class ChainFollower:
    def __init__(self, chain_id: int, pools: Iterable[PoolId], *, window: int = 128, streaming: bool = True,
                 unit: str = "tx", v4_manager: str | None = None) -> None:
        if unit not in ("tx", "block", "log"):
            raise ValueError(f"unit must be tx, block or log, not {unit!r}")
        self.chain_id = chain_id
        self.unit = unit
        self.pending: list[TLV] = []  # the decoded logs of the unit not yet complete
        self._pending_key: tuple[int, str] | None = None  # (block, tx hash) ("" in block mode)
        self._pending_first: tuple[int, int] = (0, 0)  # (block, logIndex) of its first log
        self._pending_time: int | None = None
        self._pending_rx = 0  # when its newest log arrived
        self.pools: tuple[PoolId, ...] = tuple(pools)
        self.decoder = LogDecoder.from_pools(self.pools, v4_manager=v4_manager)
        self.curve = CurveBook()  # the Curve pools' state (seeded by the shell from the snapshots it reads)
        self.window = window
        self.streaming = streaming  # logs arrive by subscription (else only through Backfill)
        self.last: Header | None = None
        self.hashes: dict[int, str] = {}  # canonical heads we accepted
        self.times: dict[int, int] = {}  # block -> timestamp (s)
        self.log_hashes: dict[int, str] = {}  # block -> blockHash of the logs we published from it
        self.touched: dict[int, set[PoolId]] = {}  # block -> pools we published logs for
        self.cursor: tuple[int, int] = (0, 0)
        self.complete = 0
        self.stale: set[PoolId] = set()  # pools whose published view is invalid until a snapshot
        self.need_reconcile = False
        self.reorg_floor: int | None = None
        self.early: list[tuple[Mapping[str, Any], int]] = []  # (log, its arrival) ahead of their head
        self.reorgs = 0
        self.backfilled_logs = 0
        self.malformed = 0  # logs of our pools that did not decode (skipped, counted)
        self.last_error = ""

    # ------------------------------------------------------------------ inputs

    def start(self, head: Header) -> list[Action]:
        """Bootstrap at ``head``: snapshot every pool there, then follow from the next block."""
        self.last = head
        self._record(head)
        self.complete = head.number
        self.cursor = (head.number, MAX_INDEX)
        self.stale.clear()
        return [Snapshot(self.pools, head.number), PublishHeader(head)]

    def on_head(self, head: Header) -> list[Action]:
        last = self.last
        if last is None:
            return self.start(head)
        if head.number <= last.number and self.hashes.get(head.number) == head.hash:
            return []  # seen it
        extends = (
            head.number == last.number + 1
            and head.parent_hash == last.hash
            and self.log_hashes.get(head.number, head.hash) == head.hash
        )
        # a node emits a block's logs before the next block's: a unit below this head is complete
        acts: list[Action] = (self.flush(head.rx_ns) if self._pending_key and self._pending_key[0] < head.number
                              else [])
        if not extends or self.need_reconcile:
            return acts + [FetchHeaders(self._ancestry(head.number), head)]
        self._record(head)
        self.last = head
        if self.streaming:
            self.complete = max(self.complete, head.number - 1)
        acts.append(PublishHeader(head))
        acts += self._flush_early()
        if not self.streaming or self.stale:
            acts += self._finish(head.number)
        return acts

    def on_connected(self, latest: Header) -> list[Action]:
        """After (re)connecting: ``latest`` is the node's head. Catch up and re-read stale pools."""
        acts = self.on_head(latest)
        if any(isinstance(a, FetchHeaders) for a in acts) or self.last is None:
            return acts
        return acts + self._finish(self.last.number)

    def on_headers(self, target: Header, canonical: Mapping[int, Header | None]) -> list[Action]:
        """The canonical headers asked for by ``FetchHeaders`` (None where no such block)."""
        assert self.last is not None
        old_last = self.last
        known = dict(self.log_hashes)
        known.update(self.hashes)
        mismatch = sorted(n for n, h in known.items() if (c := canonical.get(n)) is None or c.hash != h)
        fork = mismatch[0] if mismatch else None
        if self.reorg_floor is not None:
            fork = self.reorg_floor if fork is None else min(fork, self.reorg_floor)
        present = [h for h in canonical.values() if h is not None]
        # the newest canonical block we saw (after a same-height reorg that is above the announced head)
        head = max(present, key=lambda h: h.number, default=target)
        acts: list[Action] = []
        if self._pending_key is not None:
            if fork is not None and self._pending_key[0] >= fork:
                self._drop_pending()  # from a replaced block: the backfill brings the new branch's
            else:
                acts += self.flush()
        if fork is not None:
            self.reorgs += 1
            # the lowest height we know differs: the fork may be older than what we remember
            deep = bool(mismatch) and mismatch[0] == min(known)
            if deep:
                affected = set(self.pools)
            else:
                affected = {p for n, ps in self.touched.items() if n >= fork for p in ps}
            detail = f"reorg: blocks from {fork} replaced (new head {head.number} {head.hash[:18]})"
            for p in sorted(affected - self.stale):
                acts.append(Publish(StateInvalidation(chain_id=self.chain_id, pool=p, from_block=fork,
                                                      reason=InvalidationReason.REORG, detail=detail)))
            self.stale |= affected
            self.curve.forget(affected)
            for table in (self.hashes, self.times, self.log_hashes, self.touched):
                for n in [n for n in table if n >= fork]:
                    del table[n]
            self.cursor = min(self.cursor, (fork - 1, MAX_INDEX))
            self.complete = min(self.complete, fork - 1)
            self.early = [lg for lg in self.early if _int(lg[0]["blockNumber"]) < fork]
        first_new = fork if fork is not None else old_last.number + 1
        new_headers = sorted((h for h in present if first_new <= h.number <= head.number), key=lambda h: h.number)
        for h in present:
            if h.number <= head.number:
                self._record(h)
        self.last = head
        self.need_reconcile = False
        self.reorg_floor = None
        acts += self._finish(head.number, publish_first=[PublishHeader(h) for h in new_headers])
        return acts

    def on_logs(self, logs: Sequence[Mapping[str, Any]], rx_ns: int = 0) -> list[Action]:
        """Logs from the subscription, in the order they came (``rx_ns``: when they arrived)."""
        acts: list[Action] = []
        for log in logs:
            acts += self._log(log, backfill=False, rx_ns=rx_ns)
        return acts

    @property
    def pending_block(self) -> int | None:
        """The block of the unit being held (None when none is)."""
        return self._pending_key[0] if self._pending_key is not None else None

    def on_idle(self) -> list[Action]:
        """The shell drained the subscription: in ``tx`` mode the pending transaction is complete."""
        return self.flush() if self.unit == "tx" else []

    def flush(self, completed_rx: int = 0) -> list[Action]:
        """Publish the pending unit (if any) as one message; ``completed_rx``: when the input that
        completed it arrived (a later head or log), if one did."""
        if not self.pending:
            self._pending_key = None
            return []
        done = max(self._pending_rx, completed_rx) if self.unit == "block" else self._pending_rx
        act = PublishUnit(tuple(self.pending), self._pending_time, done)
        self.pending = []
        self._pending_key = None
        return [act]

    def _drop_pending(self) -> None:
        if self._pending_key is None:
            return
        block, index = self._pending_first
        before = (block, index - 1) if index > 0 else (block - 1, MAX_INDEX)
        self.cursor = min(self.cursor, before)
        self.complete = min(self.complete, block - 1)
        self.pending = []
        self._pending_key = None

    def on_backfill(self, from_block: int, to_block: int, logs: Sequence[Mapping[str, Any]],
                    rx_ns: int = 0) -> list[Action]:
        """``eth_getLogs`` over ``from_block..to_block`` (every log of those blocks; ``rx_ns``: when the
        answer arrived)."""
        acts: list[Action] = []
        for log in sorted(logs, key=lambda lg: (_int(lg["blockNumber"]), _int(lg["logIndex"]))):
            got = self._log(log, backfill=True, rx_ns=rx_ns)
            self.backfilled_logs += sum(len(a.tlvs) if isinstance(a, PublishUnit) else isinstance(a, Publish)
                                        for a in got)
            acts += got
        if self.pending:  # whole blocks: the last unit of the range is complete
            self.backfilled_logs += len(self.pending)
            acts += self.flush()
        self.cursor = max(self.cursor, (to_block, MAX_INDEX))
        self.complete = max(self.complete, to_block)
        return acts + self._flush_early()

    def on_disconnect(self, reason: str) -> list[Action]:
        """The node connection is gone: every pool's view is untrustworthy until re-read."""
        self.early.clear()
        self._drop_pending()  # perhaps half a transaction: the backfill after reconnecting resends it
        fresh = [p for p in self.pools if p not in self.stale]
        self.stale.update(self.pools)
        self.curve.forget(self.pools)
        return [
            Publish(StateInvalidation(chain_id=self.chain_id, pool=p, from_block=self.complete + 1,
                                      reason=InvalidationReason.DISCONNECT, detail=reason[:200]))
            for p in fresh
        ]

    # ------------------------------------------------------------------ internals

    def _finish(self, head: int, publish_first: Sequence[Action] = ()) -> list[Action]:
        acts: list[Action] = []
        if self.complete < head:
            acts.append(Backfill(self.complete + 1, head))
        acts += publish_first
        if self.stale:
            acts.append(Snapshot(tuple(p for p in self.pools if p in self.stale), head))
            self.stale.clear()
        return acts

    def _record(self, h: Header) -> None:
        self.hashes[h.number] = h.hash
        self.times[h.number] = h.timestamp
        floor = h.number - self.window
        if floor > 0 and len(self.hashes) > self.window + 16:
            for table in (self.hashes, self.times, self.log_hashes, self.touched):
                for n in [n for n in table if n <= floor]:
                    del table[n]

    def _ancestry(self, number: int) -> tuple[int, ...]:
        assert self.last is not None
        known = set(self.hashes) | set(self.log_hashes)
        lo = max(self.last.number + 1, number - self.window + 1)
        return tuple(sorted(known | set(range(lo, number + 1)) | {number}))

    def _flush_early(self) -> list[Action]:
        if not self.early or self.last is None:
            return []
        limit = self.last.number + 1
        ready = [lg for lg in self.early if _int(lg[0]["blockNumber"]) <= limit]
        self.early = [lg for lg in self.early if _int(lg[0]["blockNumber"]) > limit]
        acts: list[Action] = []
        for log, rx_ns in ready:
            acts += self._log(log, backfill=False, rx_ns=rx_ns)
        return acts

    def _log(self, log: Mapping[str, Any], *, backfill: bool, rx_ns: int = 0) -> list[Action]:
        block = _int(log["blockNumber"])
        index = _int(log["logIndex"])
        block_hash = str(log.get("blockHash") or "").lower()
        if log.get("removed"):
            acts = []
            if self._pending_key is not None and self._pending_key[0] >= block:
                self._drop_pending()  # its block is being replaced: never published
            else:
                acts = self.flush()
            tlv = self.decoder.decode(log)  # StateInvalidation(REORG) for its pool, or None
            self.need_reconcile = True
            self.reorg_floor = block if self.reorg_floor is None else min(self.reorg_floor, block)
            self.cursor = min(self.cursor, (block - 1, MAX_INDEX))
            self.complete = min(self.complete, block - 1)
            if tlv is None or not isinstance(tlv, StateInvalidation) or tlv.pool in self.stale:
                return acts
            self.stale.add(tlv.pool)
            self.curve.forget((tlv.pool,))
            return acts + [Publish(tlv, None, rx_ns)]
        known = self.hashes.get(block) or self.log_hashes.get(block)
        if known is not None and block_hash and known != block_hash:
            self.need_reconcile = True  # a log from another branch: the next head settles it
            return []
        if (block, index) <= self.cursor:
            return []
        if not backfill and self.last is not None and block > self.last.number + 1:
            self.early.append((log, rx_ns))
            return []
        try:
            tlv = self.decoder.decode(log)
        except LogDecodeError as exc:
            self.malformed += 1
            self.last_error = str(exc)
            tlv = None
        self.cursor = (block, index)
        if isinstance(tlv, CurveEvent):
            tlv = self.curve.apply(tlv)
            if isinstance(tlv, StateInvalidation):  # our view diverged: re-read the pool at the next head
                self.stale.add(tlv.pool)
                return self.flush() + [Publish(tlv, None, rx_ns)]
        if tlv is None:
            return []
        if block_hash:
            self.log_hashes[block] = block_hash
        pool = getattr(tlv, "pool", None)
        if pool is not None:
            self.touched.setdefault(block, set()).add(pool)
        ts = self.times.get(block)
        event_ns = ts * 1_000_000_000 if ts else None
        if self.unit == "log":
            return [Publish(tlv, event_ns, rx_ns)]
        key = (block, "" if self.unit == "block" else str(log.get("transactionHash") or "").lower())
        acts: list[Action] = []
        if key != self._pending_key:
            acts = self.flush(rx_ns)
            self._pending_key = key
            self._pending_first = (block, index)
            self._pending_time = event_ns
        self._pending_rx = max(self._pending_rx, rx_ns) if self.pending else rx_ns
        self.pending.append(tlv)
        return acts
