"""``alphapulse demo --replay``: the system without a chain, detect-only.

Started processes (under the supervisor, like the live demo): the three relays, two archivers
(market data and signals, into the run's ``data/archive``) and the strategy process. The
executor is NOT started: signals are detected and reported, never traded. The market data comes
from one of two sources:

* **an archive of a previous live demo run** (``var/demo/<run>/data/archive``, the newest that holds
  market data, or the one given with ``--replay-archive DIR``), re-published with
  ``alphapulse replay`` at the recorded pace (``--replay-speed``, default 1; 0 = as fast as
  possible). Its own ``configs/strategy.toml`` (the live run's chain and tokens) is reused, with
  the relay sockets of this run. This replays exactly what the live strategy saw, snapshots
  included.
* **the recorded real logs** ``tests/data/uniswap-v3-usdc-weth-2024-01-05/*.raw.csv`` (the two
  mainnet USDC/WETH V3 pools, fee 0.05 % and 0.3 %) through ``alphapulse collector replay``
  at about ``--rate`` messages per second.

  LIMITATION: raw logs carry no pool state. A V3 pool cannot be simulated from swap events alone
  (they carry slot0 and the active liquidity, not the tick map), and the strategy ignores a pool
  until it has a snapshot. So this demo synthesizes, before the first log, one ``PoolSnapshot``
  per pool: price, tick and active liquidity of that pool's first recorded swap, with the active
  liquidity spread over ONE band of +-``BAND_TICKS`` ticks around it, plus the positions the day's
  burns prove existed before it (the running mint/burn balance per range; without them the first
  burn of an older position would make the pool stale). It also publishes one ``BlockHeader``
  with an assumed gas price (``BASE_FEE_WEI`` + ``PRIORITY_FEE_WEI``): the logs have no headers.
  The tick map beyond the band is wrong, so sizes and profits of large trades are approximate.
  These snapshots are marked REPLAYED like the logs, are an approximation for detect-only
  display, and are never used to trade (no executor runs in this mode).

Which source: ``--replay-source auto`` (default) prefers a previous live run's archive and falls
back to the logs; ``archive`` / ``logs`` force one. (``tools/demo.py`` forwards only its own
options; when it does not know ``--replay-archive``/``--replay-source``/``--replay-speed``, set
``ALPHAPULSE_DEMO_REPLAY_ARCHIVE``, ``ALPHAPULSE_DEMO_REPLAY_SOURCE`` or
``ALPHAPULSE_DEMO_REPLAY_SPEED``, or run ``python -m tools.demo_replay`` with those options.)

Output: the dashboard in a terminal (unless ``--headless``), else a summary line every
``--summary-every`` seconds; at the end (``--duration`` seconds, Ctrl-C, or the source running
out) a summary of the signals detected: count, by kind, the top ones by net profit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from market.display import fmt_units
from tools.demo import close_dashboard, live_runs, open_dashboard, print_run_dir, show_for
from tools.deployment_writer import deployment_doc, process, relays_table, strategy_doc, write_toml

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = Path(os.environ.get("ALPHAPULSE_DEMO_DIR") or REPO / "var" / "demo")  # runs live here (tests move it)
LOGS_DIR = REPO / "tests" / "data" / "uniswap-v3-usdc-weth-2024-01-05"
BAND_TICKS = 4000  # +-~40 % in price around the first swap
BASE_FEE_WEI = 20 * 10**9  # assumed: the recording has no block headers
PRIORITY_FEE_WEI = 10**9
SNAPSHOT_SOURCE_ID = 0x5253  # "RS": replay snapshots
COLLECTOR_SOURCE_ID = 0x5250  # "RP": collector replay of raw logs (its default)
FEES = {"0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640": (500, 10),  # fee ppm, tick spacing
        "0x8ad599c3a0ff1de082011efddc58f1908eb6e6d8": (3000, 60)}
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


def say(msg: str) -> None:
    print(f"[demo-replay {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- choosing the source


def _has_market_data(archive: Path) -> bool:
    from relays.archiver import archive_files

    return bool(archive_files(archive, "market_data"))


def newest_live_archive(demo_dir: Path = DEMO_DIR) -> Path | None:
    """The newest ``<run>/data/archive`` of a live demo run that holds market data and whose run left
    its ``configs/strategy.toml`` (replay runs, ``replay-*``, are not candidates)."""
    for run in live_runs(demo_dir):
        archive = run / "data" / "archive"
        if (run / "configs" / "strategy.toml").is_file() and archive.is_dir() and _has_market_data(archive):
            return archive
    return None


def _option(args: argparse.Namespace, name: str, env: str, default: Any) -> Any:
    value = getattr(args, name, None)
    if value is None:
        value = os.environ.get(env) or default
    return value


# --------------------------------------------------------------------------- synthetic start state


def synthesize_start(files: Iterable[Path], pools: Iterable[Any], *, band_ticks: int = BAND_TICKS,
                     chain_id: int = 1) -> tuple[list[Any], dict[str, Any]]:
    """The TLVs to publish before the recorded logs: one ``BlockHeader`` and one ``PoolSnapshot`` per
    pool (see the module docstring for what is approximated). Returns them and a description."""
    from collectors.replay.replay import iter_replay
    from market.amm.uniswap_v3 import V3PoolState, get_position_amounts
    from protocol.market import (
        BlockHeader,
        LiquidityChange,
        LiquidityKind,
        PoolSnapshot,
        TickLiquidity,
        V3Swap,
    )

    first_swap: dict[Any, V3Swap] = {}
    balance: dict[Any, dict[tuple[int, int], int]] = defaultdict(lambda: defaultdict(int))
    deficit: dict[Any, dict[tuple[int, int], int]] = defaultdict(lambda: defaultdict(int))
    first_block = None
    n = 0
    for item in iter_replay(files, pools):
        n += 1
        for t in item.tlvs:
            block = getattr(t, "block_number", None)
            if first_block is None and block is not None:
                first_block = block
            if isinstance(t, V3Swap) and t.pool not in first_swap and t.liquidity > 0:
                first_swap[t.pool] = t
            elif isinstance(t, LiquidityChange):
                key = (t.tick_lower, t.tick_upper)
                bal = balance[t.pool]
                bal[key] += t.liquidity if t.kind == LiquidityKind.MINT else -t.liquidity
                if -bal[key] > deficit[t.pool][key]:
                    deficit[t.pool][key] = -bal[key]
    if first_block is None or not first_swap:
        raise ValueError("the recording holds no V3 swap of a known pool: nothing to start from")
    block = first_block - 1
    out: list[Any] = [BlockHeader(chain_id=chain_id, number=block, timestamp=0, gas_limit=30_000_000, gas_used=0,
                                  hash=bytes(32), parent_hash=bytes(32), base_fee=BASE_FEE_WEI,
                                  priority_fee=PRIORITY_FEE_WEI)]
    described: dict[str, Any] = {"logs": n, "block": block, "pools": {}}
    for pool, sw in first_swap.items():
        fee, spacing = FEES.get(pool.address.lower(), (3000, 60))
        nets: dict[int, int] = defaultdict(int)
        in_range = 0
        for (lo, hi), amount in deficit[pool].items():
            if amount > 0:
                nets[lo] += amount
                nets[hi] -= amount
                if lo <= sw.tick < hi:
                    in_range += amount
        band = max(sw.liquidity - in_range, 0)
        lo = (sw.tick - band_ticks) // spacing * spacing
        hi = -((-(sw.tick + band_ticks)) // spacing) * spacing
        if band:
            nets[lo] += band
            nets[hi] -= band
        ticks = {t: v for t, v in nets.items() if v}
        state = V3PoolState(sqrt_price_x96=sw.sqrt_price_x96, tick=sw.tick, liquidity=band + in_range, fee=fee,
                            tick_spacing=spacing, ticks=ticks)
        a0, a1 = get_position_amounts(state, lo, hi, band) if band else (0, 0)
        out.append(PoolSnapshot(pool=pool, block_number=block, fee_ppm=fee, tick_spacing=spacing,
                                reserve0=max(a0, 0), reserve1=max(a1, 0), sqrt_price_x96=sw.sqrt_price_x96,
                                tick=sw.tick, liquidity=band + in_range,
                                ticks=tuple(TickLiquidity(tick=t, liquidity_net=v) for t, v in sorted(ticks.items()))))
        described["pools"][pool.address] = {"fee_ppm": fee, "tick": sw.tick, "liquidity": sw.liquidity,
                                            "band": (lo, hi), "older_positions": sum(1 for v in deficit[pool].values()
                                                                                     if v > 0)}
    return out, described


# --------------------------------------------------------------------------- configs


def _logs_strategy_doc(run_dir: Path) -> dict[str, Any]:
    """The strategy config for the recorded mainnet USDC/WETH logs."""
    return strategy_doc(name="dex-arb-replay", strategy_id=1, source_id=20, max_hops=2, chain_id=1, gas_token=WETH,
                        min_net_profit=10**13, relays=relays_table(run_dir, ("market_data", "signal")))


def _rebind_relays(live_config: Path, run_dir: Path) -> dict[str, Any]:
    """A live run's strategy config with its ``[relays]`` table pointing at this run's sockets."""
    doc = tomllib.loads(live_config.read_text())
    doc["relays"] = relays_table(run_dir, ("market_data", "signal"))
    doc.pop("hold_back", None)  # detect-only: no executor answers, nothing to hold signals back for
    return doc


def _write_deployment(work: Path, run_dir: Path) -> Path:
    s = relays_table(run_dir)
    data = work / "data"
    archivers = [process(f"archiver-{domain}", ["archive", "--domain", domain, "--out", data / "archive",
                                                "--socket", s[domain], "--from", "oldest", "--flush-seconds", "1"],
                         after=[f"relay-{domain}"])
                 for domain in ("market_data", "signal")]
    return write_toml(work / "deploy.toml", deployment_doc(
        name="demo-replay", run_dir=run_dir, data_dir=data, log_dir=work / "logs", fsync="off", processes=[
            *archivers,
            process("strategy", ["strategy", "--config", work / "configs" / "strategy.toml"],
                    after=["relay-market_data", "relay-signal"]),
        ]))


# --------------------------------------------------------------------------- watching the bus


@dataclass
class Detected:
    market: int = 0
    signals: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    best: list[tuple[int, int, str]] = field(default_factory=list)  # (net, signal_id, description)
    source_done: int | None = None  # exit code of the replaying process once it finished
    start_messages: int = 0  # synthesized messages published before the source
    flowing: trio.Event | None = None  # set once the source's market data arrives (or the source ended)


def _describe(msg: Any) -> tuple[int, str, str]:
    from protocol.ids import VenueKind, code_name
    from protocol.signals import ArbitragePath, Economics, SignalIdentity, SignalKind

    ident = msg.find(SignalIdentity)
    econ = msg.find(Economics)
    path = msg.find(ArbitragePath)
    kind = SignalKind(ident.kind).name if ident is not None and ident.kind in SignalKind._value2member_map_ else "?"
    net = econ.net_profit if econ is not None else 0
    hops = " -> ".join(f"{h.pool.address[:10]}({code_name(VenueKind, h.venue_kind).lower()})" for h in path.hops) if path is not None else ""
    gross = fmt_units(econ.gross_profit, 18) if econ else "?"
    gas = fmt_units(econ.gas_cost, 18) if econ else "?"
    text = f"block {ident.block_number if ident else '?'} {kind:<8} net {fmt_units(net, 18)} gross {gross} gas {gas}  {hops}"
    return net, kind, text


async def watch(run_dir: Path, d: Detected) -> None:
    from protocol.header import Domain
    from relays.client import RelayConsumer

    socks = relays_table(run_dir)

    async def signals() -> None:
        # observers: background, after the processes that trade (specs/relay.md, "Fan-out order")
        async with RelayConsumer.connect(Domain.SIGNAL, str(socks["signal"]), from_seq=0, name="demo-replay",
                                         latency="background") as c:
            async for msg in c:
                d.signals += 1
                net, kind, text = _describe(msg)
                d.by_kind[kind] += 1
                d.best.append((net, msg.domain_seq, text))
                if len(d.best) > 64:
                    d.best.sort(reverse=True)
                    del d.best[10:]

    async def market() -> None:
        async with RelayConsumer.connect(Domain.MARKET_DATA, str(socks["market_data"]), from_seq=0,
                                         name="demo-replay", latency="background") as c:
            async for batch in c.batches():
                d.market += len(batch)
                if d.flowing is not None and d.market > d.start_messages:
                    d.flowing.set()

    async with trio.open_nursery() as n:
        n.start_soon(signals)
        n.start_soon(market)


async def settle(run_dir: Path, d: Detected, strategy: str, *, quiet_s: float = 1.0, max_s: float = 60.0) -> bool:
    """Once the source has stopped: wait until the strategy (the md relay's consumer named ``strategy``) and
    every other consumer have been sent the relays' heads, the watchers have counted every message up to
    them, and neither head has moved for ``quiet_s`` (the strategy's last decisions are not visible on the
    bus until it publishes); at most ``max_s``. False if it did not settle.

    A fixed pause was not enough: on a loaded machine the strategy may connect seconds after the market
    data started flowing (it starts from the oldest message, so it catches up, but later)."""
    from relays.client import RelayUnavailable, request_stats

    socks = relays_table(run_dir)
    deadline = trio.current_time() + max_s
    last: tuple[int, int] | None = None
    since = trio.current_time()
    while trio.current_time() < deadline:
        try:
            with trio.fail_after(5):
                md = await request_stats("market_data", socks["market_data"])
                sig = await request_stats("signal", socks["signal"])
        except (OSError, trio.TooSlowError, RelayUnavailable):
            await trio.sleep(0.2)
            continue
        heads = (md["head_seq"], sig["head_seq"])
        consumers = md["consumers"] + sig["consumers"]
        caught_up = (any(c["name"] == strategy for c in md["consumers"]) and all(c["lag"] == 0 for c in consumers)
                     and (d.market, d.signals) == heads)
        now = trio.current_time()
        if not caught_up or heads != last:
            last, since = heads, now
        elif now - since >= quiet_s:
            return True
        await trio.sleep(0.2)
    return False


# --------------------------------------------------------------------------- running


async def _publish_start(run_dir: Path, tlvs: list[Any]) -> None:
    from protocol.header import FLAG_REPLAYED, Domain
    from relays.client import RelayProducer

    async with RelayProducer.connect(Domain.MARKET_DATA, str(relays_table(run_dir)["market_data"]),
                                     source_id=SNAPSHOT_SOURCE_ID, name="demo-replay-snapshots",
                                     connect_timeout=30) as p:
        for t in tlvs:
            await p.publish(t, flags=FLAG_REPLAYED)
        await p.flush()


def start_source(source_args: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    """The market-data source (``alphapulse replay`` or ``collector replay``) as a child that dies with
    the demo. Forked by the supervisor's ``spawn`` from the calling (main) thread: a child forked by
    ``trio.lowlevel.open_process`` from a worker thread got its parent-death signal when trio retired
    that thread, ending the replay after a few seconds."""
    from tools.supervisor import spawn

    return spawn([sys.executable, "-m", "tools.cli", *source_args], log_file=log_file, cwd=REPO,
                 env=dict(os.environ, PYTHONPATH=str(REPO)))


async def _run(args: argparse.Namespace, plan: dict[str, Any], work: Path, run_dir: Path, d: Detected) -> None:
    from tools.deployment import load_deployment
    from tools.supervisor import Supervisor, wait_exit

    dep = load_deployment(plan["deploy"])
    processes = dep.processes
    if args.metrics:
        from tools.metrics import expose_for_demo

        processes = expose_for_demo(processes, work, say)
    sup = Supervisor(processes)
    source: subprocess.Popen[bytes] | None = None
    async with trio.open_nursery() as nursery:
        await sup.start(nursery)  # returns once the relays accept connections
        d.start_messages = len(plan["start_tlvs"])
        d.flowing = trio.Event()
        nursery.start_soon(watch, run_dir, d)
        if plan["start_tlvs"]:
            await _publish_start(run_dir, plan["start_tlvs"])
            say(f"published the synthesized start state: {len(plan['start_tlvs'])} messages "
                "(1 BlockHeader with an assumed gas price, 1 approximate PoolSnapshot per pool)")
        say(f"source: {' '.join(plan['source_args'])}")
        source = start_source(plan["source_args"], work / "logs" / "source.log")

        stopping = False

        async def wait_source() -> None:
            assert source is not None
            await wait_exit(source)
            d.source_done = source.returncode
            assert d.flowing is not None
            d.flowing.set()
            if not stopping:
                say(f"source finished (exit {source.returncode}); the strategy keeps running until the end")

        nursery.start_soon(wait_source)
        dashboard = None
        if not args.headless and sys.stdout.isatty():
            dashboard = await open_dashboard(run_dir)
        # the clock starts with the market: the source process may take seconds to start on a busy machine
        with trio.move_on_after(60):
            await d.flowing.wait()
        say(f"market data flowing; running for {args.duration:g} s")
        def summary() -> None:
            top = max(d.best)[0] if d.best else None
            say(f"market msgs {d.market}  signals {d.signals}  by kind {dict(sorted(d.by_kind.items()))}"
                f"  best net {fmt_units(top, 18) if top is not None else '-'}"
                f"{'  (source done)' if d.source_done is not None else ''}")

        await show_for(args.duration, dashboard, args.summary_every, summary)
        if dashboard is not None:
            await close_dashboard(dashboard)
        stopping = True
        if source.poll() is None:
            say(f"stopping the source (pid {source.pid})")
            source.send_signal(signal.SIGTERM)
            with trio.move_on_after(5):
                await wait_exit(source)
            if source.poll() is None:
                source.kill()
                await wait_exit(source)
        if not await settle(run_dir, d, plan["strategy_name"]):
            say("the strategy did not catch up within 60 s: the counts below are what it had published by then")
        await sup.stop_all()
        nursery.cancel_scope.cancel()


def _plan(args: argparse.Namespace, work: Path, run_dir: Path) -> dict[str, Any]:
    """Pick the source, write the configs; returns what ``_run`` needs."""
    choice = str(_option(args, "replay_source", "ALPHAPULSE_DEMO_REPLAY_SOURCE", "auto")).lower()
    if choice not in ("auto", "archive", "logs"):
        raise ValueError(f"replay source {choice!r}: expected auto, archive or logs")
    archive_opt = _option(args, "replay_archive", "ALPHAPULSE_DEMO_REPLAY_ARCHIVE", "")
    speed = float(_option(args, "replay_speed", "ALPHAPULSE_DEMO_REPLAY_SPEED", 1.0))
    archive: Path | None = None
    if archive_opt:
        archive = Path(archive_opt)
        if not _has_market_data(archive):
            raise ValueError(f"{archive}: no market data archived there (expected {archive}/domain=market_data/)")
    elif choice in ("auto", "archive"):
        archive = newest_live_archive()
        if archive is None and choice == "archive":
            raise ValueError(f"no archive of a live demo run under {DEMO_DIR}/*/data/archive")
    from strategy.config import load_config

    cfg = work / "configs"
    cfg.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    md_sock = str(relays_table(run_dir)["market_data"])
    if archive is not None and choice != "logs":
        live_cfg = archive.parent.parent / "configs" / "strategy.toml"
        if live_cfg.is_file():
            write_toml(cfg / "strategy.toml", _rebind_relays(live_cfg, run_dir))
            cfg_note = f"the live run's strategy config {live_cfg}"
        else:
            write_toml(cfg / "strategy.toml", _logs_strategy_doc(run_dir))
            cfg_note = "the mainnet USDC/WETH strategy config (no configs/strategy.toml next to the archive)"
        pace = ["--as-fast-as-possible"] if speed <= 0 else ["--speed", f"{speed:g}"]
        say(f"replaying the archive {archive} (a previous live demo run) with {cfg_note}")
        return {"deploy": _write_deployment(work, run_dir), "start_tlvs": [], "mode": "archive",
                "strategy_name": load_config(cfg / "strategy.toml").name,
                "source_args": ["replay", str(archive), "--socket", md_sock, *pace, "--progress-every", "10"]}
    from collectors.replay.pools import MAINNET_USDC_WETH_V3
    from collectors.replay.replay import iter_replay, resolve_files

    files = resolve_files([str(LOGS_DIR)])
    start, described = synthesize_start(files, MAINNET_USDC_WETH_V3)
    n_items = sum(1 for _ in iter_replay(files, MAINNET_USDC_WETH_V3))
    span_s = 86_400  # the recording covers one UTC day
    speed_factor = max(args.rate, 0.001) * span_s / max(n_items, 1)
    write_toml(cfg / "strategy.toml", _logs_strategy_doc(run_dir))
    say(f"no live-run archive used: replaying the recorded logs {LOGS_DIR.name} ({n_items} messages) at "
        f"~{args.rate:g} msg/s (speed x{speed_factor:,.1f})")
    for addr, p in described["pools"].items():
        say(f"  synthesized snapshot {addr} fee {p['fee_ppm']} ppm: tick {p['tick']}, liquidity {p['liquidity']} "
            f"in one band {p['band']}, plus {p['older_positions']} older positions the day's burns reveal "
            "(APPROXIMATION, detect-only display)")
    return {"deploy": _write_deployment(work, run_dir), "start_tlvs": start, "mode": "logs",
            "strategy_name": load_config(cfg / "strategy.toml").name,
            "source_args": ["collector", "replay", "--logs", *map(str, files), "--socket", md_sock,
                            "--speed", f"{speed_factor:g}", "--mark-replayed"]}


def main(args: argparse.Namespace) -> int:
    ts = time.strftime("%Y%m%d-%H%M%S")
    work = DEMO_DIR / f"replay-{ts}"
    work.mkdir(parents=True, exist_ok=True)
    run_dir = Path(f"/tmp/alphapulse-demo-replay-{os.getpid()}")  # short: AF_UNIX paths are limited to 107 bytes
    run_dir.mkdir(parents=True, exist_ok=True)
    os.environ["ALPHAPULSE_RUN_DIR"] = str(run_dir)
    say(f"detect-only replay demo (no chain, no executor); working directory {work}")
    print_run_dir(run_dir)
    try:
        plan = _plan(args, work, run_dir)
    except (ValueError, OSError) as exc:
        print(f"alphapulse demo --replay: {exc}", file=sys.stderr)
        shutil.rmtree(run_dir, ignore_errors=True)
        return 2
    d = Detected()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        trio.run(_run, args, plan, work, run_dir, d)
    except KeyboardInterrupt:
        say("interrupted")
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    print()
    print("=" * 72)
    print("AlphaPulse replay demo (detect-only): what the strategy found")
    print("=" * 72)
    print(f"source                       : {plan['mode']}: {' '.join(plan['source_args'][:3])} ...")
    print(f"market-data messages seen    : {d.market}")
    print(f"signals detected             : {d.signals}")
    print(f"by kind                      : {dict(sorted(d.by_kind.items()))}")
    if d.best:
        gas_note = "; gas at the assumed price" if plan["mode"] == "logs" else ""
        print(f"top signals by net profit (profit-token units, 18 decimals{gas_note}):")
        for _net, seq, text in sorted(d.best, reverse=True)[:5]:
            print(f"  #{seq:<6} {text}")
    if plan["mode"] == "logs":
        print("note: the V3 start state was synthesized (one liquidity band per pool); profits are approximate "
              "and nothing was traded.")
    print(f"\nlogs, configs and the archive of this run: {work}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tools.demo_replay", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=180.0, help="seconds to run (default 180)")
    ap.add_argument("--headless", action="store_true", help="print a live summary instead of the dashboard")
    ap.add_argument("--rate", type=float, default=3.0, help="recorded-log messages per second (default 3)")
    ap.add_argument("--summary-every", type=float, default=5.0)
    ap.add_argument("--replay-source", choices=("auto", "archive", "logs"), default=None)
    ap.add_argument("--replay-archive", default=None, metavar="DIR", help="archive of a previous live run")
    ap.add_argument("--replay-speed", type=float, default=None, help="archive pace factor (0: as fast as possible)")
    ap.add_argument("--metrics", action="store_true", help="every process serves Prometheus metrics (ports printed)")
    return ap


if __name__ == "__main__":
    sys.exit(main(build_parser().parse_args()))
