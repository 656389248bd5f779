"""Replay recorded raw logs as live market-data messages.

Two layers, so the timing logic is testable without a relay or a real clock:

* ``iter_replay(files, pools)`` is a pure generator: it merges the recordings in
  chain order, decodes each log with the live collector's ``LogDecoder`` and
  yields ``ReplayItem(delay_ns, tlvs, event_time_ns)``, where ``delay_ns`` is the
  recorded time since the previous item (block timestamps; 0 within a block) and
  ``event_time_ns`` the log's block time (None when the recording has none).
* ``pace(items, publish, speed=...)`` is the trio shell: it sleeps until each
  item's due time on trio's clock (scheduled from the start, so sleep overshoot
  never accumulates), stamps ``receive_time_ns`` with the wall clock and calls
  ``publish`` -- ``RelayProducer.publish``, or ``MessageSink.publish`` to write
  frames without a relay. ``speed=None`` means as fast as possible.

One message per log (the protocol's fast path: one compact TLV per frame); all
logs of one block go out back to back.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import trio

from collectors.evm.decode import LogDecodeError, LogDecoder
from protocol.header import Domain
from protocol.ids import PoolId
from protocol.message import Message
from protocol.tlv import TLV

from .source import merge_logs, read_logs

_NS = 1_000_000_000


class ReplayItem(NamedTuple):
    delay_ns: int  # recorded time since the previous item (0 within a block, or without timestamps)
    tlvs: list[TLV]
    event_time_ns: int | None  # block time of the log, None when the recording has no timestamps


class ReplayStats:
    """What one replay did: counters shared between the generator and the shell."""

    __slots__ = ("logs", "items", "skipped", "malformed", "published", "untimed", "out_of_order")

    def __init__(self) -> None:
        self.logs = 0  # log objects read
        self.items = 0  # ReplayItems yielded
        self.skipped = 0  # decoder returned None (unknown pool/topic, Collect)
        self.malformed = 0  # LogDecodeError, skipped with skip_malformed=True
        self.published = 0  # messages handed to publish()
        self.untimed = 0  # items without a block timestamp
        self.out_of_order = 0  # logs whose block time went backwards (delay clamped to 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def iter_replay(
    files: Iterable[str | Path],
    pools: Iterable[PoolId] | LogDecoder,
    *,
    skip_malformed: bool = False,
    stats: ReplayStats | None = None,
    on_malformed: Callable[[LogDecodeError], None] | None = None,
) -> Iterator[ReplayItem]:
    """Decode recordings into timed TLV batches, in (block, logIndex) order across all files.

    Raises ``LogDecodeError`` on a malformed log unless ``skip_malformed`` (then it
    is counted and passed to ``on_malformed``).
    """
    decoder = pools if isinstance(pools, LogDecoder) else LogDecoder.from_pools(pools)
    stats = stats if stats is not None else ReplayStats()
    logs = merge_logs([read_logs(f) for f in files])
    last_ts: int | None = None
    decode = decoder.decode
    for log in logs:
        stats.logs += 1
        try:
            tlv = decode(log)
        except LogDecodeError as exc:
            if not skip_malformed:
                raise
            stats.malformed += 1
            if on_malformed is not None:
                on_malformed(exc)
            continue
        if tlv is None:
            stats.skipped += 1
            continue
        ts_hex = log.get("blockTimestamp")
        if ts_hex is None:
            event_time_ns = None
            delay_ns = 0
            stats.untimed += 1
        else:
            ts = int(ts_hex, 16)
            event_time_ns = ts * _NS
            delay_ns = 0 if last_ts is None else (ts - last_ts) * _NS
            if delay_ns < 0:
                stats.out_of_order += 1
                delay_ns = 0
            if last_ts is None or ts > last_ts:
                last_ts = ts
        stats.items += 1
        yield ReplayItem(delay_ns, [tlv], event_time_ns)


class Publish(Protocol):
    """``RelayProducer.publish``'s signature: queue one message, return its source_seq."""

    def __call__(
        self, tlvs: Sequence[TLV], *, event_time_ns: int, receive_time_ns: int, flags: int = 0
    ) -> Awaitable[int]: ...


async def pace(
    items: Iterable[ReplayItem],
    publish: Publish,
    *,
    speed: float | None = 1.0,
    flags: int = 0,
    stats: ReplayStats | None = None,
    wall_clock_ns: Callable[[], int] = time.time_ns,
) -> int:
    """Publish ``items`` at ``speed`` x recorded time (None: no waiting); return how many.

    ``publish`` is ``RelayProducer.publish`` or anything with its signature (the producer
    stamps source id and sequence). Items without an event time get
    ``event_time_ns`` = their receive time.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    start = trio.current_time()
    offset_ns = 0  # recorded time since the first item
    n = 0
    for item in items:
        if speed is not None:
            offset_ns += item.delay_ns
            if offset_ns:
                await trio.sleep_until(start + offset_ns / _NS / speed)
        elif n % 1024 == 0:
            await trio.lowlevel.checkpoint()  # stay cancellable when not sleeping at all
        n += 1
        now = wall_clock_ns()
        event_time_ns = item.event_time_ns
        await publish(
            item.tlvs,
            event_time_ns=now if event_time_ns is None else event_time_ns,
            receive_time_ns=now,
            flags=flags,
        )
        if stats is not None:
            stats.published += 1
    return n


class MessageSink:
    """A ``Publish`` without a relay: stamps source id/sequence like a producer, then hands
    each ``Message`` to ``write`` (e.g. ``lambda m: f.write(encode(m))``)."""

    def __init__(self, write: Callable[[Message], object], *, source_id: int = 0) -> None:
        self.write = write
        self.source_id = source_id
        self.last_source_seq = 0

    async def publish(
        self, tlvs: Sequence[TLV], *, event_time_ns: int, receive_time_ns: int, flags: int = 0
    ) -> int:
        self.last_source_seq += 1
        self.write(
            Message(
                domain=Domain.MARKET_DATA,
                tlvs=tuple(tlvs),
                source_id=self.source_id,
                source_seq=self.last_source_seq,
                event_time_ns=event_time_ns,
                receive_time_ns=receive_time_ns,
                flags=flags,
            )
        )
        return self.last_source_seq


def resolve_files(paths: Sequence[str]) -> list[Path]:
    """Files as given; a directory stands for its ``*.raw.csv`` and ``*.jsonl`` recordings."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted([*p.glob("*.raw.csv"), *p.glob("*.jsonl")])
            if not found:
                raise FileNotFoundError(f"{p}: no *.raw.csv or *.jsonl recordings in this directory")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file")
    return out
