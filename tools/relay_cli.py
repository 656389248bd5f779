"""``relay-cli``: look at and operate the relays from a shell.

    relay-cli stats  [--json] [--domain D | --socket PATH] [--nats URL [--nats-auth-file F]]
    relay-cli tail   --domain D [--type T ...] [--from SEQ|oldest] [--count N] [--json] [--timeout S]
    relay-cli check  --domain D --from SEQ|oldest --count N [--timeout S]
    relay-cli gaps   [--domain D] [--archive DIR] [--json]
    relay-cli stop   --scope all|chain|venue|strategy [--value V] --reason TEXT [--sender NAME]
    relay-cli resume --scope all|chain|venue|strategy [--value V] [--stop-id N] --reason TEXT [--sender NAME]

Sockets default to ``runtime.paths.socket_path(domain)`` (``$ALPHAPULSE_RUN_DIR`` or
``/tmp/alphapulse-$UID``, then ``<domain>.sock``); every command accepts ``--socket PATH``.
See ``relay-cli <command> --help`` for each command, and ``EXIT_STATUS`` below.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import trio

from market.display import Registry, describe
from protocol.errors import ProtocolError
from protocol.execution import Outcome, SubmissionMode
from protocol.framing import FrameDecoder
from protocol.header import VERSION, Domain, read_domain_seq
from protocol.ids import PoolId, TokenId, Venue, VenueKind, code_name, pool_label
from protocol.market import InvalidationReason, LiquidityKind, Side
from protocol.message import Message, control_frame, decode
from protocol.signals import SignalKind
from protocol.system import (
    EmergencyStop,
    Goodbye,
    Hello,
    Resume,
    ResyncReason,
    Role,
    Stats,
    StopScope,
    SubscribeMode,
    Welcome,
)
from protocol.tlv import TLV_TYPES, Record, UnknownTLV
from runtime.errors import find_in_group
from runtime.logging import log_level, setup_logging

log = logging.getLogger("relay_cli")

EXIT_OK = 0
EXIT_FAILED = 1  # check found a problem / gaps found
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3  # a relay is not running / not answering
EXIT_TIMEOUT = 4  # tail/check/stop did not complete within --timeout

EXIT_STATUS = """\
exit status:
  0  success
  1  check: the range is not contiguous, has duplicates or is not (or no longer) retained;
     gaps: gaps were found; verify: damage was found
  2  bad arguments
  3  a relay is not running or did not answer (stats: any queried relay is down)
  4  timed out (--timeout) before the command completed
"""

# relay-cli publishes EmergencyStop/Resume as its own producer: one source_id per process
# (base | pid), so two operators stopping at once never share a source sequence.
SOURCE_ID_BASE = 0x7C00_0000

DOMAINS = (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION)


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def run_trio(fn: Callable[..., Any], *args: Any) -> Any:
    """``trio.run`` that unwraps a CliError, RelayUnavailable or Ctrl-C from trio's exception groups."""
    from relays.client import RelayUnavailable

    try:
        return trio.run(fn, *args)
    except (BaseExceptionGroup, RelayUnavailable) as exc:
        leaf = find_in_group(exc, (CliError, KeyboardInterrupt, RelayUnavailable))
        if isinstance(leaf, RelayUnavailable):
            raise CliError(f"{leaf} (is the relay running? start it with: alphapulse relay --domain <domain>)",
                           EXIT_UNAVAILABLE) from None
        if leaf is not None:
            raise leaf from None
        raise


# ---------------------------------------------------------------------------- sockets


def _paths():  # type: ignore[no-untyped-def]
    from runtime import paths

    return paths


def resolve_socket(domain: Domain, socket: str | None) -> str:
    paths = _paths()
    path = socket if socket else str(paths.socket_path(domain))
    try:
        return paths.check_socket_path(path)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def how_to_start(domain: Domain | None, path: str) -> str:
    dom = domain.name.lower() if domain is not None else "<domain>"
    return f"start it with: alphapulse relay --domain {dom} --socket {path}"


def unavailable(domain: Domain | None, path: str, exc: BaseException) -> CliError:
    if isinstance(exc, FileNotFoundError):
        why = f"no relay is running: {path} does not exist"
    elif isinstance(exc, ConnectionRefusedError):
        why = f"no relay is running: {path} is a stale socket (connection refused)"
    elif isinstance(exc, trio.TooSlowError):
        why = f"the relay at {path} did not answer in time"
    else:
        why = f"cannot talk to the relay at {path}: {exc}"
    name = f"{domain.name.lower()} relay: " if domain is not None else ""
    return CliError(f"{name}{why}; {how_to_start(domain, path)}", EXIT_UNAVAILABLE)


async def probe(path: str, wait_s: float = 2.0) -> tuple[Welcome, dict[str, Any]]:
    """Hello + Stats request on one connection: the relay's Welcome and its stats JSON.

    (``relays.client.request_stats`` needs the domain up front; this works for any socket.)
    """
    with trio.fail_after(wait_s):
        _paths().check_socket_dir(path)  # never say Hello to a socket someone else planted
        stream = await trio.open_unix_socket(path)
        async with stream:
            hello = Hello(role=Role.CONSUMER, protocol_version=VERSION, source_id=0, name=f"relay-cli-{os.getpid()}")
            await stream.send_all(control_frame(hello) + control_frame(Stats(json=b"")))
            dec = FrameDecoder()
            welcome: Welcome | None = None
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    raise ConnectionError("the relay closed the connection before answering")
                dec.receive_data(data)
                while (msg := dec.next_message()) is not None:
                    for tlv in msg.tlvs:
                        if isinstance(tlv, Welcome):
                            welcome = tlv
                        elif isinstance(tlv, Stats) and welcome is not None:
                            stats = json.loads(tlv.json)
                            with trio.move_on_after(0.2):
                                await stream.send_all(control_frame(Goodbye(code=0, reason="relay-cli done")))
                            return welcome, stats
                        elif isinstance(tlv, Goodbye):
                            raise ConnectionError(f"the relay said goodbye: {tlv.reason}")


async def probe_domain(domain: Domain, path: str, wait_s: float) -> tuple[Welcome, dict[str, Any]]:
    try:
        welcome, stats = await probe(path, wait_s)
    except (OSError, trio.TooSlowError, trio.BrokenResourceError, ConnectionError, ProtocolError) as exc:
        raise unavailable(domain, path, exc) from None
    if welcome.domain != int(domain):
        got = Domain(welcome.domain).name.lower() if welcome.domain in Domain._value2member_map_ else welcome.domain
        raise CliError(f"{path} serves the {got} domain, not {domain.name.lower()}", EXIT_USAGE)
    return welcome, stats


# ---------------------------------------------------------------------------- formatting

_VENUE_NAMES = {v.value: v.name for v in Venue}


def fmt_time(ns: int) -> str:
    if not ns:
        return "-"
    dt = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}Z"


def fmt_value(v: Any) -> str:
    if isinstance(v, PoolId):
        return pool_label(v)
    if isinstance(v, TokenId):
        return f"{v.chain_id}:{v.address}"
    if isinstance(v, (bytes, bytearray)):
        if len(v) > 32:
            return f"0x{bytes(v[:16]).hex()}…({len(v)} bytes)"
        return "0x" + bytes(v).hex()
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, tuple):
        items = ", ".join(fmt_value(x) for x in v[:3])
        more = f", …{len(v) - 3} more" if len(v) > 3 else ""
        return f"[{items}{more}]"
    if isinstance(v, Record):
        return "(" + " ".join(f"{f.name}={fmt_field(v, f.name)}" for f in dataclasses.fields(v)) + ")"
    return str(v)


def _tlv_name(t: Any) -> str:
    return f"Unknown{t.type_code}" if isinstance(t, UnknownTLV) else type(t).__name__


def _tlv_code(t: Any) -> int:
    return t.type_code if isinstance(t, UnknownTLV) else type(t).TYPE


# Integer fields that carry a protocol enum, printed by name (``outcome=EXECUTED``); by field name where
# the name means one enum everywhere, by (record, field) where it does not.
FIELD_ENUMS: dict[str, type[IntEnum]] = {
    "outcome": Outcome, "side": Side, "venue": Venue, "venue_kind": VenueKind, "scope": StopScope,
    "role": Role, "domain": Domain,
}
RECORD_FIELD_ENUMS: dict[tuple[str, str], type[IntEnum]] = {
    ("SignalIdentity", "kind"): SignalKind, ("LiquidityChange", "kind"): LiquidityKind,
    ("StateInvalidation", "reason"): InvalidationReason, ("Resync", "reason"): ResyncReason,
    ("Subscribe", "mode"): SubscribeMode, ("ExecutionStarted", "mode"): SubmissionMode,
}


def field_enum(record: Any, field: str) -> type[IntEnum] | None:
    return RECORD_FIELD_ENUMS.get((type(record).__name__, field)) or FIELD_ENUMS.get(field)


def fmt_field(record: Any, field: str) -> str:
    v = getattr(record, field)
    enum = field_enum(record, field)
    if enum is not None and isinstance(v, int) and not isinstance(v, bool):
        return code_name(enum, v)
    return fmt_value(v)


def fmt_tlv(t: Any) -> str:
    if isinstance(t, UnknownTLV):
        return f"Unknown{t.type_code}(body={fmt_value(t.body)})"
    fields = " ".join(f"{f.name}={fmt_field(t, f.name)}" for f in dataclasses.fields(t))
    return f"{type(t).__name__}({fields})"


def fmt_message(m: Message, registry: Registry | None = None) -> str:
    lat = ""
    if m.event_time_ns and m.receive_time_ns:
        lat = f" (+{(m.receive_time_ns - m.event_time_ns) / 1e6:.3f} ms)"
    flags = f" flags=0x{m.flags:x}" if m.flags else ""
    tlvs = " ".join(fmt_tlv(t) for t in m.tlvs)
    line = (f"#{m.domain_seq} ev={fmt_time(m.event_time_ns)} rx={fmt_time(m.receive_time_ns)}{lat} "
            f"src={m.source_id}/{m.source_seq}{flags} {tlvs}")
    words = [w for t in m.tlvs if (w := describe(t, registry))] if registry is not None else []
    return f"{line}  # {' | '.join(words)}" if words else line


_JS_SAFE = 1 << 53


def json_value(v: Any) -> Any:
    if isinstance(v, PoolId):
        pid = v
        return {"id": str(int(pid)), "chain_id": pid.chain_id, "venue": pid.venue,
                "venue_name": _VENUE_NAMES.get(pid.venue), "kind": int(pid.kind), "address": pid.address,
                "token0": pid.token0.address, "token1": pid.token1.address}
    if isinstance(v, TokenId):
        return {"chain_id": v.chain_id, "address": v.address}
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v) if -_JS_SAFE < v < _JS_SAFE else str(v)
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    if isinstance(v, tuple):
        return [json_value(x) for x in v]
    if isinstance(v, Record):
        return {f.name: json_value(getattr(v, f.name)) for f in dataclasses.fields(v)}
    return v


def json_message(m: Message, raw: bytes, registry: Registry | None = None) -> dict[str, Any]:
    tlvs = []
    for t in m.tlvs:
        fields = ({"body": json_value(t.body)} if isinstance(t, UnknownTLV)
                  else {f.name: json_value(getattr(t, f.name)) for f in dataclasses.fields(t)})
        if not isinstance(t, UnknownTLV):  # enum codes stay numbers; their names go beside them
            for f in dataclasses.fields(t):
                enum, v = field_enum(t, f.name), getattr(t, f.name)
                if enum is not None and isinstance(v, int) and f"{f.name}_name" not in fields:
                    fields[f"{f.name}_name"] = code_name(enum, v)
        entry = {"type": _tlv_code(t), "name": _tlv_name(t), "fields": fields}
        if registry is not None and (words := describe(t, registry)):
            entry["readable"] = words  # beside the exact fields, never instead of them
        tlvs.append(entry)
    return {
        "domain_seq": m.domain_seq, "domain": Domain(m.domain).name.lower(), "source_id": m.source_id,
        "source_seq": m.source_seq, "event_time_ns": m.event_time_ns, "receive_time_ns": m.receive_time_ns,
        "flags": m.flags, "tlvs": tlvs, "raw": raw.hex(),
    }


def parse_types(values: list[str] | None) -> set[int] | None:
    if not values:
        return None
    by_name = {cls.__name__.lower(): code for code, cls in TLV_TYPES.items()}
    out: set[int] = set()
    for v in values:
        for item in v.split(","):
            item = item.strip()
            if not item:
                continue
            if item.isdigit():
                code = int(item)
                if not 1 <= code <= 255:
                    raise CliError(f"--type {item}: a type code is 1..255", EXIT_USAGE)
                out.add(code)
            elif item.lower() in by_name:
                out.add(by_name[item.lower()])
            else:
                names = ", ".join(sorted(cls.__name__ for cls in TLV_TYPES.values()))
                raise CliError(f"--type {item!r}: not a type code or a known type name ({names})", EXIT_USAGE)
    return out


def parse_domain_arg(text: str) -> Domain:
    try:
        return _paths().parse_domain(text)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


# ---------------------------------------------------------------------------- commands


def _targets(args: argparse.Namespace) -> list[tuple[Domain | None, str]]:
    if args.socket:
        return [(parse_domain_arg(args.domain) if args.domain else None, resolve_socket(Domain.MARKET_DATA, args.socket))]
    doms = [parse_domain_arg(args.domain)] if args.domain else list(DOMAINS)
    return [(d, resolve_socket(d, None)) for d in doms]


async def _probe_any(domain: Domain | None, path: str, wait_s: float) -> dict[str, Any]:
    """One relay's entry for stats/gaps: ``{"domain", "socket", "up", "welcome", "stats"}`` or ``error``."""
    entry: dict[str, Any] = {"domain": domain.name.lower() if domain else None, "socket": path}
    try:
        if domain is None:
            try:
                welcome, stats = await probe(path, wait_s)
            except (OSError, trio.TooSlowError, trio.BrokenResourceError, ConnectionError, ProtocolError) as exc:
                raise unavailable(None, path, exc) from None
            entry["domain"] = stats.get("domain")
        else:
            welcome, stats = await probe_domain(domain, path, wait_s)
    except CliError as exc:
        entry.update(up=False, error=str(exc))
        return entry
    entry.update(up=True, epoch=welcome.epoch, head_seq=welcome.head_seq, oldest_seq=welcome.oldest_seq, stats=stats)
    return entry


async def _probe_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    targets = _targets(args)
    results: list[dict[str, Any]] = [{} for _ in targets]

    async def one(i: int, dom: Domain | None, path: str) -> None:
        results[i] = await _probe_any(dom, path, args.timeout)

    async with trio.open_nursery() as n:
        for i, (dom, path) in enumerate(targets):
            n.start_soon(one, i, dom, path)
    return results


def _retained(s: dict[str, Any]) -> str:
    return f"{s['oldest_seq']}..{s['head_seq']}" if s["head_seq"] >= s["oldest_seq"] else "nothing (empty log)"


def _producer_line(p: dict[str, Any]) -> str:
    return (f"{p.get('name', '?'):<24} source_id {p['source_id']:<10} last_source_seq {p['last_source_seq']}  "
            f"acked {p['acked']}  received {p['received']}  duplicates {p.get('duplicates', 0)}")


def _consumer_line(c: dict[str, Any]) -> str:
    live = "live" if c.get("live") else "catching up from journal"
    types = f"  types {c['types']}" if c.get("types") else ""
    latency = c.get("latency", "normal")  # a relay older than latency classes does not say
    return f"{c.get('name', '?'):<24} {latency:<10} next_seq {c['next_seq']:<10} lag {c['lag']:<8} {live}{types}"


def _section(out: TextIO, title: str, rows: list[dict[str, Any]], line: Callable[[dict[str, Any]], str]) -> None:
    print(f"  {title} ({len(rows)}):", file=out)
    for row in rows:
        print("    " + line(row), file=out)


def _bridge_line(b: dict[str, Any]) -> str:
    lag = f"  lag {b['lag']}" if "lag" in b else "  (lag: give --nats)"
    if b["direction"] == "out":
        acked = f"  acked by JetStream {b['acked']}" if "acked" in b else ""
        return f"{b['name']:<24} -> JetStream  read {b['read']} (relay lag {b['read_lag']}){acked}{lag}"
    return f"{b['name']:<24} <- JetStream  domain seq {b['position']}{lag}"


async def _add_bridges(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    """Each relay's bridges with position and lag; with ``--nats``, against the domain's stream."""
    from relays.core.nats import JetStreamError
    from relays.jetstream import NatsDisconnected, NatsUnavailable, bridge_rows, stream_position

    for r in results:
        if not r.get("up"):
            continue
        stream = None
        if args.nats:
            try:
                with trio.fail_after(args.timeout + 5):
                    stream = await stream_position(args.nats, Domain[str(r["domain"]).upper()],
                                                   auth_file=args.nats_auth_file, connect_timeout=args.timeout)
            except (NatsUnavailable, NatsDisconnected, JetStreamError, trio.TooSlowError) as exc:
                r["jetstream_error"] = str(exc) or type(exc).__name__
            r["jetstream"] = stream
        r["bridges"] = bridge_rows(r["stats"], stream)


def cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    results = run_trio(_probe_all, args)
    run_trio(_add_bridges, args, results)
    if args.json:
        print(json.dumps(results, indent=None), file=out)
    else:
        for r in results:
            name = r["domain"] or "?"
            if not r["up"]:
                print(f"{name:<12} DOWN  {r['error']}", file=out)
                continue
            s = r["stats"]
            print(f"{name:<12} UP    {r['socket']}  epoch {s['epoch']}  head {s['head_seq']}  "
                  f"retained {_retained(s)}  rate {s['rate_msgs_per_s']:.1f} msg/s  "
                  f"fsync {s.get('fsync')}  synced {s.get('synced_seq')}  uptime {s.get('uptime_s')} s", file=out)
            _section(out, "producers", s.get("producers", []), _producer_line)
            _section(out, "consumers", s.get("consumers", []), _consumer_line)
            if r.get("bridges"):
                _section(out, "bridges", r["bridges"], _bridge_line)
    return EXIT_OK if all(r["up"] for r in results) else EXIT_UNAVAILABLE


async def _consume(
    domain: Domain, path: str, *, from_seq: int | None, types: set[int] | None, count: int | None,
    on_frame: Callable[[bytes, dict[str, int]], bool], limit_s: float | None,
) -> tuple[int, dict[str, int], bool]:
    """Feed raw frames to ``on_frame`` (return False to stop). Returns (seen, counters, timed_out)."""
    from relays.client import RelayConsumer, RelayUnavailable

    seen = 0
    counters: dict[str, int] = {}
    timed_out = True
    with trio.move_on_after(limit_s if limit_s is not None else float("inf")):
        try:
            async with RelayConsumer.connect(domain, path, from_seq=from_seq, types=types, raw=True,
                                             name=f"relay-cli-{os.getpid()}", connect_timeout=5.0) as c:
                async for fr in c:
                    seen += 1
                    counters = c.counters
                    if not on_frame(fr, counters) or (count is not None and seen >= count):
                        timed_out = False
                        break
                counters = c.counters
        except RelayUnavailable as exc:
            raise unavailable(domain, path, exc) from None
    return seen, counters, timed_out


def _from_arg(text: str | None) -> int | None:
    if text is None or text == "now":
        return None
    if text == "oldest":
        return 0
    try:
        v = int(text)
    except ValueError:
        raise CliError(f"--from expects a sequence number, 'oldest' or 'now', not {text!r}", EXIT_USAGE) from None
    if v < 0:
        raise CliError("--from must not be negative", EXIT_USAGE)
    return v


def cmd_tail(args: argparse.Namespace, out: TextIO) -> int:
    domain = parse_domain_arg(args.domain)
    path = resolve_socket(domain, args.socket)
    types = parse_types(args.type)
    from_seq = _from_arg(args.from_seq)
    if args.count is not None and args.count <= 0:
        raise CliError("--count must be positive", EXIT_USAGE)
    run_trio(probe_domain, domain, path, args.timeout_connect)  # a clear error now if the relay is down
    from tools.registry import load_registry

    registry = load_registry([args.deployment] if args.deployment else None, cache=None)
    state = {"resyncs": 0, "last": 0}

    def on_frame(fr: bytes, counters: dict[str, int]) -> bool:
        if counters.get("resyncs", 0) != state["resyncs"]:
            state["resyncs"] = counters["resyncs"]
            print(f"# relay resync: {counters.get('lost', 0)} messages lost in total (retention passed), "
                  f"continuing at #{read_domain_seq(fr)}", file=sys.stderr)
        msg = decode(fr)
        line = json.dumps(json_message(msg, fr, registry)) if args.json else fmt_message(msg, registry)
        print(line, file=out, flush=True)
        return True

    seen, _counters, timed_out = run_trio(partial(
        _consume, domain, path, from_seq=from_seq, types=types, count=args.count, on_frame=on_frame,
        limit_s=args.timeout))
    if args.count is not None and timed_out:
        print(f"relay-cli tail: timed out after {args.timeout} s with {seen} of {args.count} messages",
              file=sys.stderr)
        return EXIT_TIMEOUT
    return EXIT_OK


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    domain = parse_domain_arg(args.domain)
    path = resolve_socket(domain, args.socket)
    oldest_wanted = args.from_seq == "oldest"  # the same spelling tail accepts
    first = 1 if oldest_wanted else _from_arg(args.from_seq)
    n = args.count
    if first is None or first < 1 or n < 1:
        raise CliError("--from must be >= 1 (or 'oldest') and --count >= 1", EXIT_USAGE)
    name = domain.name.lower()
    welcome, _stats = run_trio(probe_domain, domain, path, args.timeout_connect)
    oldest, head = welcome.oldest_seq, welcome.head_seq
    if oldest_wanted:
        first = max(oldest, 1)
    last = first + n - 1
    if first < oldest:
        print(f"FAIL {name} {first}..{last}: not retained: the relay keeps {oldest}..{head} "
              f"(messages {first}..{min(last, oldest - 1)} passed retention)", file=out)
        return EXIT_FAILED
    if last > head:
        print(f"FAIL {name} {first}..{last}: beyond the head: the relay keeps {oldest}..{head}", file=out)
        return EXIT_FAILED
    state: dict[str, Any] = {"expected": first, "problems": [], "got": 0}

    def on_frame(fr: bytes, counters: dict[str, int]) -> bool:
        seq = read_domain_seq(fr)
        exp = state["expected"]
        if seq < exp:
            state["problems"].append(f"duplicate #{seq}")
        elif seq > exp:
            state["problems"].append(f"gap: #{exp}..#{seq - 1} missing ({seq - exp})")
        state["expected"] = max(exp, seq + 1)
        if seq <= last:
            state["got"] += 1
        try:
            decode(fr)
        except ProtocolError as exc:
            state["problems"].append(f"#{seq} does not decode: {exc}")
        return seq < last and len(state["problems"]) < 10

    seen, counters, timed_out = run_trio(partial(
        _consume, domain, path, from_seq=first, types=None, count=None, on_frame=on_frame, limit_s=args.timeout))
    problems: list[str] = state["problems"]
    if counters.get("duplicates"):
        problems.append(f"{counters['duplicates']} duplicates received (dropped by the client)")
    if counters.get("resyncs"):
        problems.append(f"relay resync: {counters.get('lost', 0)} messages passed retention while reading")
    if timed_out:
        problems.append(f"timed out after {args.timeout} s at #{state['expected'] - 1}")
    recovered = counters.get("gaps_recovered", 0)
    note = f", {recovered} connection gaps recovered by resume" if recovered else ""
    if problems:
        print(f"FAIL {name} {first}..{last}: {state['got']} of {n} messages; " + "; ".join(problems[:10]), file=out)
        return EXIT_FAILED
    print(f"OK {name} {first}..{last}: {n} messages, contiguous, no duplicates (epoch {welcome.epoch}){note}",
          file=out)
    return EXIT_OK


def _archive_gaps(archive: str, domain: str) -> dict[str, Any]:
    """The archive's ranges, its recorded gaps and what is missing from it (``relays.archive_check``:
    against its manifest, or from the files of an archive written before manifests)."""
    from relays.archive_check import check_archive

    chk = check_archive(archive, domain)
    covered: list[list[int]] = []
    for f in sorted(chk.files, key=lambda f: (f.first_seq, f.last_seq)):  # union of the readable files' ranges
        if covered and f.first_seq <= covered[-1][1] + 1:
            covered[-1][1] = max(covered[-1][1], f.last_seq)
        else:
            covered.append([f.first_seq, f.last_seq])
    return {"archive": archive, "files": len(chk.files), "archived_ranges": covered,
            "recorded_gaps": chk.recorded_gaps,
            "unrecorded_holes": [[m.first, m.last] for m in chk.missing],
            "missing": [{"from_seq": m.first, "to_seq": m.last, "reason": m.reason} for m in chk.missing],
            "problems": chk.problems, "note": chk.note}


def cmd_gaps(args: argparse.Namespace, out: TextIO) -> int:
    results = run_trio(_probe_all, args)
    found = False
    down = False
    for r in results:
        if not r["up"]:
            down = True
        else:
            s = r["stats"]
            r["behind_retention"] = [c for c in s.get("consumers", []) if c["next_seq"] < s["oldest_seq"]]
            found |= bool(r["behind_retention"])
        dom = r["domain"]
        if args.archive and dom:
            r["archive"] = _archive_gaps(args.archive, dom)
            found |= bool(r["archive"]["recorded_gaps"] or r["archive"]["missing"] or r["archive"]["problems"])
    if args.json:
        print(json.dumps(results), file=out)
    else:
        for r in results:
            name = r["domain"] or "?"
            if not r["up"]:
                print(f"{name:<12} DOWN  {r['error']}", file=out)
            else:
                s = r["stats"]
                lost_prefix = s["oldest_seq"] - 1
                print(f"{name:<12} epoch {s['epoch']}  retained {_retained(s)}"
                      f"{f' ({lost_prefix} older messages passed retention)' if lost_prefix > 0 else ''}  "
                      f"cut-offs {s.get('cut_offs', 0)}  producer duplicates dropped {s.get('duplicates_dropped', 0)}  "
                      f"protocol errors {s.get('protocol_errors', 0)}", file=out)
                for c in r["behind_retention"]:
                    print(f"  consumer {c.get('name', '?')} is at {c['next_seq']}, behind retention "
                          f"(oldest {s['oldest_seq']}): it will get a Resync and lose "
                          f"{s['oldest_seq'] - c['next_seq']} messages", file=out)
                lagging = [c for c in s.get("consumers", []) if not c.get("live") and c not in r["behind_retention"]]
                for c in lagging:
                    print(f"  consumer {c.get('name', '?')} catching up from the journal, lag {c['lag']}", file=out)
            a = r.get("archive")
            if a:
                print(f"  archive {a['archive']}: {a['files']} files, ranges "
                      f"{', '.join(f'{x}..{y}' for x, y in a['archived_ranges']) or 'none'}", file=out)
                for g in a["recorded_gaps"]:
                    print(f"    gap ({g.get('kind')}) {g['from_seq']}..{g['to_seq']} ({g['count']} messages) "
                          f"epoch {g.get('epoch')} {g.get('reason', '')}", file=out)
                for m in a["missing"]:
                    print(f"    MISSING {m['from_seq']}..{m['to_seq']}: {m['reason']}", file=out)
                for problem in a["problems"]:
                    print(f"    BAD {problem}", file=out)
                if a["note"]:
                    print(f"    note: {a['note']}", file=out)
    if found:
        return EXIT_FAILED
    return EXIT_UNAVAILABLE if down else EXIT_OK


def _scope_value(scope: StopScope, value: str | None) -> int:
    if scope == StopScope.ALL:
        if value not in (None, "", "0"):
            raise CliError("--scope all takes no --value", EXIT_USAGE)
        return 0
    if value is None:
        raise CliError(f"--scope {scope.name.lower()} needs --value", EXIT_USAGE)
    if value.isdigit():
        return int(value)
    if scope == StopScope.VENUE:
        try:
            return int(Venue[value.upper()])
        except KeyError:
            raise CliError(f"--value {value!r}: not a venue code or name ({', '.join(v.name for v in Venue)})",
                           EXIT_USAGE) from None
    raise CliError(f"--value for --scope {scope.name.lower()} must be an integer", EXIT_USAGE)


def _audit(path: str, line: str) -> None:
    try:
        with open(Path(path).parent / "relay-cli.log", "a") as f:
            f.write(line + "\n")
    except OSError as exc:
        log.warning("cannot append to the audit log next to %s: %s", path, exc)


def cmd_control(args: argparse.Namespace, out: TextIO) -> int:
    from relays.client import RelayProducer, RelayUnavailable

    domain = Domain.EXECUTION
    path = resolve_socket(domain, args.socket)
    scope = StopScope[args.scope.upper()]
    value = _scope_value(scope, args.value)
    sender = args.sender or f"relay-cli@{os.environ.get('USER') or getpass.getuser()}"
    reason = args.reason
    if args.command == "stop":
        stop_id = args.stop_id if args.stop_id is not None else time.time_ns()
        tlv: Any = EmergencyStop(scope=int(scope), scope_value=value, stop_id=stop_id, reason=reason, sender=sender)
    else:
        stop_id = args.stop_id or 0
        tlv = Resume(scope=int(scope), scope_value=value, stop_id=stop_id, reason=reason, sender=sender)
    source_id = args.source_id or (SOURCE_ID_BASE | (os.getpid() & 0xFFFFFF))

    async def publish() -> tuple[int, bool]:
        try:
            async with RelayProducer.connect(domain, path, source_id=source_id, name=f"relay-cli-{args.command}",
                                             connect_timeout=args.timeout, linger=0) as p:
                seq = await p.publish(tlv)
                with trio.move_on_after(args.timeout) as cs:
                    await p.flush()
                return seq, not cs.cancelled_caught
        except RelayUnavailable as exc:
            raise unavailable(domain, path, exc) from None

    run_trio(probe_domain, domain, path, args.timeout)
    seq, acked = run_trio(publish)
    what = type(tlv).__name__
    val = f" value={value}" if scope != StopScope.ALL else ""
    line = (f"{what} scope={scope.name.lower()}{val} stop_id={stop_id} reason={reason!r} sender={sender!r} "
            f"-> execution relay {path} (source {source_id}/{seq}): "
            f"{'acknowledged' if acked else 'NOT acknowledged within the timeout'}")
    print(line, file=out)
    log.info("%s", line)
    _audit(path, f"{datetime.now(UTC).isoformat()} {line}")
    return EXIT_OK if acked else EXIT_TIMEOUT


# ---------------------------------------------------------------------------- parser

GAPS_HELP = """\
What "gaps" means here. The relay assigns domain sequences contiguously, so its own log has
no holes; what can be lost is (a) the prefix that passed retention (sequences below the
relay's oldest_seq can no longer be replayed), (b) a consumer whose position is below
oldest_seq (when it resumes, the relay answers Resync and the consumer skips those
messages), and (c) messages a durable consumer such as the archiver did not get. This
command shows, per relay: epoch, retained range, cut-offs (consumers that fell off the ring:
they reconnect and catch up from the journal, no loss unless retention passed), duplicate
frames dropped from resending producers, protocol errors, consumers behind retention (will
lose data) and consumers catching up. The client-side gap counters (gaps, gaps_recovered,
resyncs, lost) live inside each consumer process and are not visible to the relay; with
--archive DIR it reads the archiver's recorded gaps (DIR/domain=X/_gaps.jsonl) and verifies the
archive against its manifest (DIR/domain=X/_manifest.jsonl: every file there, whole, with its
sha256) or, for an archive written before manifests, from the files themselves: MISSING lines
name the sequences no whole file holds and no gap record explains, and which file held them.
Exit status 1 when a consumer is behind retention, or the archive has recorded gaps or is missing
anything.
"""


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="relay-cli", formatter_class=fmt,
        description="Inspect and operate the AlphaPulse relays. Sockets default to "
                    "$ALPHAPULSE_RUN_DIR (or /tmp/alphapulse-$UID)/<domain>.sock.",
        epilog=EXIT_STATUS,
    )
    p.add_argument("--log-level", type=log_level, default=os.environ.get("ALPHAPULSE_LOG_LEVEL", "WARNING"))
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    def add(name: str, help_: str, description: str | None = None) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=description or help_, epilog=EXIT_STATUS,
                            formatter_class=fmt)
        sp.add_argument("--socket", help="relay socket path (default: the domain's socket in the run directory)")
        return sp

    s = add("stats", "per relay: epoch, head, retained range, rate, producers, consumers with lag",
            "Per relay (the three default sockets, or --domain / --socket): epoch, head sequence, retained "
            "range, message rate, producers, consumers in fan-out order with their latency class and lag. A relay that is down is reported as DOWN.")
    s.add_argument("--domain", help="only this domain's relay")
    s.add_argument("--json", action="store_true", help="one JSON list of per-relay objects")
    s.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each relay (default 2)")
    s.add_argument("--nats", help="NATS URL: show each bridge's lag against the domain's JetStream stream")
    s.add_argument("--nats-auth-file", help="file with the NATS user:password or token")

    t = add("tail", "print messages, decoded, one line each",
            "Print messages as they arrive (or from --from), decoded: sequence, event/receive time, "
            "source id/seq, each TLV with its fields (pools as chain:venue:address), then, for the tokens the "
            "deployment names, a '# ...' comment in words: pool names, amounts, prices as quote per base.")
    t.add_argument("--domain", required=True)
    t.add_argument("--type", action="append", help="only messages whose first TLV is this type: a code or a "
                                                   "class name (V2Reserves), comma-separated or repeated")
    t.add_argument("--from", dest="from_seq", help="start at this domain sequence ('oldest', default: now)")
    t.add_argument("--count", type=int, help="stop after N messages")
    t.add_argument("--json", action="store_true", help="one JSON object per line (fields, and the raw frame in hex)")
    t.add_argument("--deployment", help="deployment file naming tokens and pools (default: $ALPHAPULSE_DEPLOYMENT, "
                                        "the devnet's, else the latest demo run's)")
    t.add_argument("--timeout", type=float, default=None, help="give up after S seconds (exit 4 if --count not reached)")
    t.add_argument("--timeout-connect", type=float, default=2.0, help=argparse.SUPPRESS)

    c = add("check", "verify that a range of domain sequences is contiguous, without duplicates",
            "Consume --count messages from --from and verify that domain_seq is contiguous with no duplicates "
            "and every frame decodes; prints one summary line. Fails at once when the range is not retained "
            "(passed retention) or goes beyond the relay's head.")
    c.add_argument("--domain", required=True)
    c.add_argument("--from", dest="from_seq", required=True, help="first domain sequence, or 'oldest' retained")
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    c.add_argument("--timeout-connect", type=float, default=2.0, help=argparse.SUPPRESS)

    g = add("gaps", "retention, resync and cut-off counters; gaps recorded by the archiver", GAPS_HELP)
    g.add_argument("--domain", help="only this domain")
    g.add_argument("--archive", help="archive root written by 'alphapulse archive --out DIR'")
    g.add_argument("--json", action="store_true")
    g.add_argument("--timeout", type=float, default=2.0)

    v = sub.add_parser("verify", help="check a relay's data directory offline (CRC of every frame, sequences)",
                       description="Read every journal segment of DIR (a relay's --data-dir, or its journal/) "
                                   "without a relay: frame prefixes, CRCs and sequences, sidecars. One line per "
                                   "segment with any lost range; exit 1 if anything is damaged.",
                       epilog=EXIT_STATUS, formatter_class=fmt)
    v.add_argument("dir", metavar="DIR")

    for name, what in (("stop", "EmergencyStop"), ("resume", "Resume")):
        x = add(name, f"publish {what} on the execution relay",
                f"Publish {what} on the execution relay and wait for the relay to acknowledge it (persisted). "
                f"Printed on stdout and logged (stderr and relay-cli.log next to the socket).")
        x.add_argument("--scope", required=True, choices=["all", "chain", "venue", "strategy"])
        x.add_argument("--value", help="chain id, venue code or name (UNISWAP_V3), or strategy id; not with all")
        x.add_argument("--reason", required=True)
        x.add_argument("--sender", help="default relay-cli@$USER")
        x.add_argument("--stop-id", type=int, default=None,
                       help="stop: id of this stop (default: now in ns); resume: the stop to lift (default 0: all in scope)")
        x.add_argument("--source-id", type=int, default=0, help=argparse.SUPPRESS)
        x.add_argument("--timeout", type=float, default=5.0, help="seconds to connect and be acknowledged")
    return p


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    """Offline check of a relay's data directory: one line per segment, then a verdict."""
    from relays.core.journal import verify

    d = Path(args.dir)
    jdir = d / "journal" if (d / "journal").is_dir() else d
    if not jdir.is_dir():
        raise CliError(f"{args.dir} is not a relay data directory or journal directory", 2)
    try:
        reports = verify(jdir)
    except OSError as exc:
        raise CliError(f"cannot read {jdir}: {exc.strerror or exc}", 2) from None
    damaged = 0
    prev_last: int | None = None
    for r in reports:
        if prev_last is not None and r.first_seq != prev_last + 1:
            damaged += 1
            print(f"{jdir}: sequences {prev_last + 1}..{r.first_seq - 1} missing between segments", file=out)
        prev_last = r.last_seq
        state = "ok" if not r.holes and not r.torn_bytes and r.sidecar != "unreadable" else "DAMAGED"
        print(f"{r.path.name}: {state}, sequences {r.first_seq}..{r.last_seq}, {r.frames} good frames, "
              f"sidecar {r.sidecar}", file=out)
        for h in r.holes:
            print(f"  lost {h}", file=out)
        if r.torn_bytes:
            print(f"  torn tail: {r.torn_bytes} bytes after the last whole frame (a relay start truncates them)",
                  file=out)
        damaged += len(r.holes) + (r.sidecar == "unreadable")
    print(f"{jdir}: {len(reports)} segments, {'no damage' if not damaged else f'{damaged} damaged ranges'}"
          + ("" if reports else " (empty)"), file=out)
    return 1 if damaged else 0


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "stats": cmd_stats, "tail": cmd_tail, "check": cmd_check, "gaps": cmd_gaps, "verify": cmd_verify,
    "stop": cmd_control, "resume": cmd_control,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    setup_logging(args.log_level)
    try:
        return COMMANDS[args.command](args, sys.stdout)
    except CliError as exc:
        print(f"relay-cli {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return EXIT_OK if args.command == "tail" else 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep the interpreter quiet at exit
        except OSError:
            pass
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
