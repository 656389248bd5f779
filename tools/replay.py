"""``alphapulse replay``: re-publish a Parquet archive through the relays.

    alphapulse replay ARCHIVE [--domain market_data] [--speed X | --as-fast-as-possible]
                      [--socket PATH] [--from SEQ] [--to SEQ] [--source-id N]
                      [--progress-every S] [--connect-timeout S]

``ARCHIVE`` is the directory an ``alphapulse archive --out ARCHIVE`` wrote (the one holding
``domain=market_data/``). Messages go out in archive sequence order (``domain_seq``), each
with its original ``event_time_ns`` and ``receive_time_ns``, its original flags plus
``REPLAYED``, and its TLV payload byte for byte; the header's ``source_id`` is the replay's
own (``--source-id``, default 0x5241 "RA") and ``source_seq`` is the replay producer's
1, 2, 3, ... (the relay needs one source per producer to deduplicate), so a consumer that
must tell a replay from the live feed looks at the flag or the source id.

Pacing: message i is published ``(receive_time_ns[i] - receive_time_ns[first]) / speed``
after the start (scheduled from the start, so sleep overshoot never accumulates; a receive
time that goes backwards is sent at once). ``--speed 1`` (the default) is real time;
``--as-fast-as-possible`` never waits (the producer still batches, and backpressure from the
relay applies).

The archive is verified first (``relays.archive_check``: against its ``_manifest.jsonl``, or,
for an archive written before manifests, from the files themselves, which it says): a file that
is missing, truncated, corrupt or unreadable, or a hole that ``_gaps.jsonl`` does not record, is
one line naming the missing ``domain_seq`` ranges and which file held them, and exit 2 before
anything is published. ``--allow-missing`` replays what is there instead (the same line as a
WARNING; the summary says the archive was incomplete).

Gaps: the archive's ``_gaps.jsonl`` records ranges the archiver knows it does not have (retention
passed, a relay that lost data); they are not damage. Each, and with ``--allow-missing`` each hole,
is reported on stderr as a WARNING naming the sequence range and where in the replay it falls,
and the replay continues: the consumers see the messages after the gap, exactly as archived.

Progress goes to stderr every ``--progress-every`` seconds; a one-line summary at the end.

Exit status: 0 done, 1 the relay was unavailable or failed, 2 bad arguments, a missing,
incomplete or corrupt archive, or nothing to replay (an empty archive or an empty
``--from``/``--to`` range).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from protocol.header import FLAG_REPLAYED, HEADER_SIZE, read_header
from runtime.errors import BadFile, unwrap_group

if TYPE_CHECKING:
    from relays.archive_check import ArchiveCheck

DEFAULT_SOURCE_ID = 0x5241  # "RA": replayed archive (collector replay of raw logs is 0x5250 "RP")
EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
_NS = 1_000_000_000


class ArchiveError(Exception):
    """The archive cannot be replayed (missing, empty, incomplete, nothing in range); exit 2."""


@dataclass
class ReplayStats:
    published: int = 0
    first_seq: int = 0
    last_seq: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)  # every gap met, with where it fell
    elapsed_s: float = 0.0
    recorded_span_ns: int = 0  # last - first original receive time
    max_behind_s: float = 0.0  # worst lateness against the pacing schedule

    def as_dict(self) -> dict[str, Any]:
        return {"published": self.published, "first_seq": self.first_seq, "last_seq": self.last_seq,
                "gaps": len(self.gaps), "missing": sum(int(g.get("count", 0)) for g in self.gaps),
                "elapsed_s": round(self.elapsed_s, 3), "recorded_span_s": round(self.recorded_span_ns / _NS, 3)}


def _say(msg: str) -> None:
    print(f"replay: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- archive side (pure)


@dataclass(frozen=True)
class ArchiveInfo:
    root: Path
    domain: str
    files: int
    rows: int  # total rows in the archive (all sequences)
    first_seq: int
    last_seq: int
    recorded_gaps: list[dict[str, Any]]
    check: ArchiveCheck


def inspect_archive(root: str | Path, domain: str, from_seq: int | None = None,
                    to_seq: int | None = None) -> ArchiveInfo:
    """Check that ``root`` holds a non-empty archive of ``domain`` and verify it in
    ``[from_seq, to_seq]`` (``info.check``); say clearly what is wrong if it is not an archive."""
    from relays.archive_check import check_archive
    from relays.archiver import domain_dir
    from runtime.paths import parse_domain

    root = Path(root)
    try:
        dom = parse_domain(domain)
    except ValueError as exc:
        raise ArchiveError(str(exc)) from None
    name = dom.name.lower()
    if not root.exists():
        raise ArchiveError(f"no archive at {root}: the directory does not exist")
    if not root.is_dir():
        raise ArchiveError(f"{root} is not a directory (give the --out directory of `alphapulse archive`)")
    ddir = domain_dir(root, dom)
    if not ddir.is_dir():
        found = sorted(p.name for p in root.glob("domain=*"))
        hint = f"it holds {', '.join(found)}" if found else "it holds no domain=* directory: is this an archive?"
        raise ArchiveError(f"{root} has no {ddir.name}/ ({hint})")
    chk = check_archive(root, dom, from_seq=from_seq, to_seq=to_seq)
    gaps = chk.recorded_gaps
    if not chk.files and not chk.missing and not chk.problems:
        raise ArchiveError(f"the {name} archive in {ddir} is empty: no part files"
                           + (f" ({len(gaps)} gap records only)" if gaps else ""))
    if chk.files and chk.rows == 0:
        raise ArchiveError(f"the {name} archive in {ddir} is empty: {len(chk.files)} part files with no rows")
    return ArchiveInfo(root=root, domain=name, files=len(chk.files), rows=chk.rows,
                       first_seq=chk.first_seq, last_seq=chk.last_seq, recorded_gaps=gaps, check=chk)


@dataclass(frozen=True, slots=True)
class Item:
    """One archived frame to re-publish (header fields read at fixed offsets, payload as bytes)."""

    domain_seq: int
    payload: bytes
    event_time_ns: int
    receive_time_ns: int
    flags: int
    source_id: int


def iter_items(root: str | Path, domain: str, from_seq: int | None = None,
               to_seq: int | None = None, files: list[Any] | None = None) -> Iterator[Item]:
    """Archived frames of ``domain`` in ``domain_seq`` order, restricted to ``[from_seq, to_seq]``
    (``files``: only these part files, e.g. the readable ones of an incomplete archive)."""
    from relays.archiver import read_archive_raw

    lo = from_seq or 0
    for seq, raw in read_archive_raw(root, domain, files=files):
        if seq < lo:
            continue
        if to_seq is not None and seq > to_seq:
            return
        h = read_header(raw)
        yield Item(seq, raw[HEADER_SIZE:HEADER_SIZE + h.payload_len], h.event_time_ns, h.receive_time_ns, h.flags,
                   h.source_id)


def gaps_between(prev_seq: int, seq: int, recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gaps between two consecutive replayed sequences: the archive's records that fall in
    ``(prev_seq, seq)``, or one ``unrecorded`` gap when the jump has no record."""
    if seq <= prev_seq + 1:
        return []
    found = [g for g in recorded
             if int(g.get("from_seq", 0)) > prev_seq and int(g.get("to_seq", 0)) < seq
             and g.get("kind") != "rewind"]
    covered = sum(int(g.get("count", 0)) for g in found)
    if covered < seq - prev_seq - 1:
        found = [*found, {"kind": "unrecorded" if not found else "partly recorded", "from_seq": prev_seq + 1,
                          "to_seq": seq - 1, "count": seq - prev_seq - 1}]
    return found


# --------------------------------------------------------------------------- the trio shell


async def replay(
    args: argparse.Namespace, info: ArchiveInfo, stats: ReplayStats, *,
    clock_ns: Any = time.time_ns,
) -> None:
    from relays.client import RelayProducer

    speed = None if args.as_fast_as_possible else args.speed
    socket = args.socket or _default_socket(info.domain)
    items = iter_items(info.root, info.domain, args.from_seq, args.to, files=info.check.files)
    # gaps before the first replayed message (a --from inside a recorded gap, a before_start record)
    recorded = [g for g in info.recorded_gaps if g.get("kind") != "rewind"]
    for g in info.recorded_gaps:
        if g.get("kind") == "rewind":
            _say(f"note: the archive records a rewind at domain_seq {g.get('from_seq')}..{g.get('to_seq')} "
                 "(the relay reused sequences; the archive kept the first copy, nothing is missing)")
    async with RelayProducer.connect(info.domain, socket, source_id=args.source_id, name="replay",
                                     connect_timeout=args.connect_timeout, linger=60.0) as producer:
        t0 = trio.current_time()
        wall0 = time.perf_counter()
        next_progress = t0 + args.progress_every
        rv0: int | None = None
        prev_seq = 0
        n = 0
        publish = producer.publish_payload
        for item in items:
            seq = item.domain_seq
            if rv0 is None:
                rv0 = item.receive_time_ns
                stats.first_seq = seq
                lo = args.from_seq or 0
                for g in recorded:
                    if int(g.get("to_seq", 0)) < seq and int(g.get("to_seq", 0)) >= lo:
                        _warn_gap(g, "before the first replayed message", stats)
            else:
                for g in gaps_between(prev_seq, seq, recorded):
                    _warn_gap(g, f"after message #{n} (domain_seq {prev_seq}), before domain_seq {seq}", stats)
            prev_seq = seq
            if speed is not None:
                due = t0 + max(0, item.receive_time_ns - rv0) / _NS / speed
                now = trio.current_time()
                if due > now:
                    await trio.sleep_until(due)
                elif now - due > stats.max_behind_s:
                    stats.max_behind_s = now - due
            elif n % 1024 == 0:
                await trio.lowlevel.checkpoint()
            await publish(item.payload, event_time_ns=item.event_time_ns, receive_time_ns=item.receive_time_ns,
                          flags=item.flags | FLAG_REPLAYED)
            n += 1
            stats.published = n
            stats.last_seq = seq
            stats.recorded_span_ns = max(stats.recorded_span_ns, item.receive_time_ns - rv0)
            if trio.current_time() >= next_progress:
                next_progress = trio.current_time() + args.progress_every
                el = time.perf_counter() - wall0
                _say(f"progress: {n:,} / ~{_expected(info, args):,} messages, domain_seq {seq}, "
                     f"recorded time +{(item.receive_time_ns - rv0) / _NS:,.1f} s, {n / el if el else 0:,.0f} msg/s"
                     f", acked {producer.counters['acked']:,}")
        if n == 0:
            raise ArchiveError(f"nothing to replay: no archived {info.domain} message in domain_seq "
                               f"[{args.from_seq or info.first_seq}, {args.to if args.to is not None else 'end'}] "
                               f"(the archive holds {info.first_seq}..{info.last_seq})")
        if args.to is not None and prev_seq < args.to <= info.last_seq:
            for g in gaps_between(prev_seq, args.to + 1, recorded):
                _warn_gap(g, f"at the end of the range (after domain_seq {prev_seq})", stats)
        await producer.flush()
    stats.elapsed_s = time.perf_counter() - wall0


def _expected(info: ArchiveInfo, args: argparse.Namespace) -> int:
    lo = max(args.from_seq or info.first_seq, info.first_seq)
    hi = min(args.to if args.to is not None else info.last_seq, info.last_seq)
    return max(0, min(info.rows, hi - lo + 1))


def _warn_gap(g: dict[str, Any], where: str, stats: ReplayStats) -> None:
    stats.gaps.append({**g, "where": where})
    _say(f"WARNING: archive gap ({g.get('kind')}): domain_seq {g.get('from_seq')}..{g.get('to_seq')} "
         f"({g.get('count')} messages) are not in the archive; {where}; continuing")


def _default_socket(domain: str) -> str:
    from runtime.paths import socket_path

    return str(socket_path(domain))


# --------------------------------------------------------------------------- CLI


def _nonneg_int(text: str) -> int:
    from relays.archiver import sequence_arg

    v = sequence_arg(text)
    assert v is not None
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alphapulse replay",
        description="Re-publish an archive (written by `alphapulse archive`) through a relay, in sequence "
                    "order, paced by the original receive times, original event/receive times kept, "
                    "REPLAYED flag set.",
        epilog="Exit status: 0 done, 1 relay unavailable or failed, 2 bad arguments, missing/empty archive.",
    )
    p.add_argument("archive", metavar="ARCHIVE", help="archive root (the --out directory of `alphapulse archive`)")
    p.add_argument("--domain", default="market_data", help="domain to replay (default market_data)")
    timing = p.add_mutually_exclusive_group()
    timing.add_argument("--speed", type=float, default=1.0, metavar="X",
                        help="X times the recorded pace (default 1 = real time)")
    timing.add_argument("--as-fast-as-possible", action="store_true", help="no waiting between messages")
    p.add_argument("--socket", metavar="PATH", help="relay socket of the domain (default: the standard path)")
    p.add_argument("--from", dest="from_seq", type=_nonneg_int, default=None, metavar="SEQ",
                   help="first domain_seq to replay (default: the archive's first)")
    p.add_argument("--to", type=_nonneg_int, default=None, metavar="SEQ",
                   help="last domain_seq to replay, inclusive (default: the archive's last)")
    p.add_argument("--source-id", type=int, default=DEFAULT_SOURCE_ID,
                   help=f"producer id in the replayed headers (default {DEFAULT_SOURCE_ID:#x})")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                   help="give up when no relay answers within S seconds (default 10)")
    p.add_argument("--progress-every", type=float, default=2.0, metavar="S", help="progress line period (default 2)")
    p.add_argument("--allow-missing", action="store_true",
                   help="replay an incomplete archive (missing, truncated or corrupt files) anyway: what is "
                        "there, with a warning per hole (default: refuse, exit 2)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if not args.as_fast_as_possible and not args.speed > 0:
        _say("--speed must be > 0")
        return EXIT_USAGE
    if args.from_seq is not None and args.to is not None and args.to < args.from_seq:
        _say(f"--to {args.to} is before --from {args.from_seq}")
        return EXIT_USAGE
    if not 0 < args.source_id < 1 << 32:
        _say("--source-id must be in [1, 2**32)")
        return EXIT_USAGE
    try:
        info = inspect_archive(args.archive, args.domain, args.from_seq, args.to)
    except (ArchiveError, BadFile) as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    chk = info.check
    if chk.note:
        _say(f"note: {chk.note}")
    if not chk.ok:
        if not args.allow_missing:
            _say(f"error: {chk.summary()}; nothing replayed (restore the files from a copy, or --allow-missing "
                 f"to replay what is there)")
            return EXIT_USAGE
        _say(f"WARNING: {chk.summary()}; --allow-missing: replaying what is there")
    if (args.from_seq is not None and args.from_seq > info.last_seq) or (args.to is not None and args.to < info.first_seq):
        _say(f"error: nothing to replay: --from/--to select no sequence of the archive, which holds "
             f"domain_seq {info.first_seq}..{info.last_seq}")
        return EXIT_USAGE
    pace = "as fast as possible" if args.as_fast_as_possible else f"at {args.speed:g}x the recorded pace"
    _say(f"{info.root}: {info.domain} domain_seq {info.first_seq}..{info.last_seq}, {info.rows:,} messages in "
         f"{info.files} files, {len(info.recorded_gaps)} recorded gaps; replaying {pace} "
         f"to {args.socket or _default_socket(info.domain)} as source {args.source_id:#x}")
    stats = ReplayStats()
    try:
        trio.run(replay, args, info, stats)
    except KeyboardInterrupt:
        _say(f"interrupted after {stats.published:,} messages (last domain_seq {stats.last_seq})")
        return 130
    except BaseException as exc:  # trio nurseries wrap: unwrap a single failure
        leaf = unwrap_group(exc)
        if isinstance(leaf, (ArchiveError, BadFile)):
            _say(f"error: {leaf}")
            return EXIT_USAGE
        from relays.client import RelayUnavailable

        if isinstance(leaf, RelayUnavailable):
            _say(f"error: no {info.domain} relay answering at {args.socket or _default_socket(info.domain)}: {leaf}")
            return EXIT_RUNTIME
        if isinstance(leaf, (OSError, ValueError)):
            _say(f"error: {type(leaf).__name__}: {leaf}")
            return EXIT_RUNTIME
        raise
    s = stats.as_dict()
    rate = s["published"] / stats.elapsed_s if stats.elapsed_s else 0.0
    gap_text = (f"{s['gaps']} gaps ({s['missing']} messages missing: "
                + ", ".join(f"{g.get('from_seq')}..{g.get('to_seq')}" for g in stats.gaps) + ")"
                if stats.gaps else "no gaps")
    if not chk.ok:
        gap_text += f"; the archive is incomplete ({chk.missing_count} sequences missing or unreadable)"
    late = f", at most {stats.max_behind_s:.3f} s behind schedule" if not args.as_fast_as_possible else ""
    _say(f"done: {s['published']:,} messages (domain_seq {s['first_seq']}..{s['last_seq']}) in "
         f"{stats.elapsed_s:.2f} s ({rate:,.0f} msg/s), recorded span {s['recorded_span_s']:,.3f} s{late}; "
         f"{gap_text}; all acknowledged by the relay")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
