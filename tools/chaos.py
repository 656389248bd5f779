"""``alphapulse chaos --config FILE``: the whole system under ``kill -9``, then proof that nothing broke.

    alphapulse chaos --config chaos.toml [--duration S] [--seed N] [--interval S] [--json]

What it does, in order:

1. sets up what ``alphapulse demo`` runs (``tools/demo.py``): a devnet with the official Uniswap
   contracts, our ``AlphaPulseArb`` owned by a fresh keystore key, every component's configuration
   and one deployment file, here with an archiver for each of the three domains;
2. records the start: the block, the signer's native balance, the profit recipient's WETH (and every
   other token of the deployment: cycles that start in USDC bring their profit in USDC);
3. runs the deployment under the supervisor (restarts after at most ``backoff_max`` seconds) and the
   demo's market driver (real 2024-01-05 swaps replayed on the devnet), and every ``interval``
   seconds (x 0.5..1.5, from a seeded RNG) SIGKILLs one component by the PID the supervisor holds:
   each round kills every component once in a shuffled order (so every kind is covered), relays
   included, the chain excepted; a process is only killed once it is up (a relay answers on its socket,
   another process has logged that it is connected, see ``READY_LINES``; an archiver has run
   ``min_up`` seconds), and a kill counts as survived once the next process of that name is up;
   the driver and the kills start once every process is up (at most ``STARTUP_S``) plus ``warmup``;
4. after ``--duration`` seconds stops the market driver and lets the system drain (every process
   up, every signal seen with an outcome, every relay's head still and every consumer caught up,
   for ``quiet`` seconds; at most ``drain`` seconds), reads each relay's head, and stops everything
   (the archivers flush);
5. checks (``tools/chaos_checks.py`` says exactly what each means): every signer transaction on chain
   is in the books once; the books equal the chain's balance changes to the wei; every signal has
   exactly one outcome; no nonce was used twice; each domain's archive is contiguous per relay
   epoch, every gap recorded with a Resync logged;
6. prints the kills per component and how many it survived (restarted and up again), the messages
   lost and duplicated, and each check's verdict. Exit status 0 when every check passes, 1 when one
   fails, 2 on a bad configuration or set-up failure.

The configuration file (TOML, strict: unknown keys are errors)::

    [chaos]
    duration = 120.0     # seconds of market activity under kills (--duration overrides)
    rng = 1              # seed of the RNG choosing the kill order and timing (--seed overrides; a
                         # key named "seed" would be refused as a secret by runtime.secrets)
    interval = 3.0       # mean seconds between kills (--interval overrides)
    kill = []            # process names to kill (default: every process of the deployment)
    min_up = 5.0         # a process that logs no 'up' line (an archiver) is up after running this long
    backoff_max = 1.0    # the supervisor's longest restart delay
    warmup = 5.0         # seconds between the system's start and the market driver's
    drain = 60.0         # at most this long for the system to settle after the driver stops
    quiet = 4.0          # ... settled: heads still and consumers caught up this long

    [market]
    rate = 3.0           # real swaps replayed per second
    amplify = "4"        # size multiplier on the real swaps

Everything is kept in ``var/chaos/<time>`` (logs of every process, relay journals, archives,
books, the executor's store), and the summary is written there as ``chaos.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from runtime.config import Config, ConfigError, decode, load_toml
from runtime.files import make_dirs
from tools.chaos_checks import (
    ChainTx,
    RelayStart,
    StoreTx,
    Verdict,
    check_archive,
    check_balances,
    check_books_txs,
    check_nonces,
    check_outcomes,
)
from tools.deployment import DOMAINS

if TYPE_CHECKING:
    from tools.devnet.deploy import Devnet
    from tools.supervisor import Supervisor

REPO = Path(__file__).resolve().parent.parent
CHAOS_DIR = REPO / "var" / "chaos"
EXIT_FAILED = 1
EXIT_CONFIG = 2
STARTUP_S = 180.0  # at most this long for every process to come up before the chaos starts


class ChaosTable(Config):
    duration: float = 120.0
    rng: int = 1
    interval: float = 3.0
    kill: tuple[str, ...] = ()
    min_up: float = 5.0
    backoff_max: float = 1.0
    warmup: float = 5.0
    drain: float = 60.0
    quiet: float = 4.0

    def __post_init__(self) -> None:
        for name in ("duration", "interval", "backoff_max", "drain", "quiet"):
            if getattr(self, name) <= 0:
                raise ConfigError("must be positive", path=name)
        for name in ("min_up", "warmup"):
            if getattr(self, name) < 0:
                raise ConfigError("must not be negative", path=name)


class MarketTable(Config):
    rate: float = 3.0
    amplify: str = "4"

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ConfigError("must be positive", path="rate")
        try:
            if Fraction(self.amplify) <= 0:
                raise ValueError
        except (ValueError, ZeroDivisionError):
            raise ConfigError("must be a positive number", path="amplify") from None


class ChaosConfig(Config):
    chaos: ChaosTable = msgspec.field(default_factory=ChaosTable)
    market: MarketTable = msgspec.field(default_factory=MarketTable)


def load_config(path: str | os.PathLike[str]) -> ChaosConfig:
    return decode(ChaosConfig, load_toml(path), file=path)


def say(msg: str) -> None:
    """Progress, on stderr (with the supervisor's lines); stdout carries the report only."""
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the killer


@dataclass
class Kill:
    at: float  # seconds since the chaos started
    name: str
    pid: int
    survived: bool = False


# What each kind of process logs once it is up (connected, subscribed, recovered); a process whose kind
# has no line here (the archivers) is up once it has run ``min_up`` seconds, a relay once its socket
# answers (the supervisor's own readiness check).
READY_LINES = {
    "collector": b"connected to ws",
    "strategy": b" running: market data",
    "executor": b"executor: ready",
    "risk": b"risk: watching",
    "portfolio": b"portfolio: consuming",
}


@dataclass
class KillLog:
    kills: list[Kill] = field(default_factory=list)
    started: dict[int, tuple[float, int]] = field(default_factory=dict)  # pid -> (time first seen, log offset)
    ready: dict[int, float] = field(default_factory=dict)  # pid -> time it was seen up

    def per_component(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for k in self.kills:
            n, s = out.get(k.name, (0, 0))
            out[k.name] = (n + 1, s + k.survived)
        return out


def kind_of(name: str) -> str:
    """A process's kind: ``relay``, ``archiver``, or its own name (collector, strategy, ...)."""
    return name.split("-", 1)[0]


def _is_up(child: Any, started: tuple[float, int], now: float, min_up: float) -> bool:
    from tools.supervisor import is_ready

    spec = child.spec
    if spec.ready_socket:
        return is_ready(spec)
    line = READY_LINES.get(kind_of(spec.name))
    if line is None or not spec.log_file:
        return now - started[0] >= min_up
    try:
        with open(spec.log_file, "rb") as f:
            f.seek(started[1])
            return line in f.read()
    except OSError:
        return False


async def watch_pids(sup: Supervisor, log: KillLog, min_up: float) -> None:
    """Note when each process started and when it is up; a kill is survived once a later process of
    that name is up."""
    from tools.supervisor import log_size

    while True:
        now = trio.current_time()
        for name, child in sup.children.items():
            proc = child.proc
            if proc is None or proc.poll() is not None or proc.pid in log.ready:
                continue
            started = log.started.setdefault(proc.pid, (now, log_size(child.spec.log_file)))
            if _is_up(child, started, now, min_up):
                log.ready[proc.pid] = now
                for k in log.kills:
                    if k.name == name and not k.survived and k.pid != proc.pid:
                        k.survived = True
        await trio.sleep(0.1)


def all_up(sup: Supervisor, log: KillLog) -> bool:
    return all(c.proc is not None and c.proc.poll() is None and c.proc.pid in log.ready for c in sup.children.values())


async def kill_loop(sup: Supervisor, names: list[str], rng: random.Random, interval: float, log: KillLog,
                    t0: float) -> None:
    """Every ``interval`` (x 0.5..1.5) seconds SIGKILL one process: rounds of every name in a shuffled
    order; a name whose process is not up (restarting, or not yet connected) waits for the next turn of
    this round."""
    bag: list[str] = []
    while True:
        await trio.sleep(interval * rng.uniform(0.5, 1.5))
        if not bag:
            bag = list(names)
            rng.shuffle(bag)
        now = trio.current_time()
        for i, name in enumerate(bag):
            proc = sup.children[name].proc
            if proc is None or proc.poll() is not None or proc.pid not in log.ready:
                continue
            bag.pop(i)
            os.kill(proc.pid, signal.SIGKILL)  # the PID the supervisor started, never a name
            log.kills.append(Kill(at=now - t0, name=name, pid=proc.pid))
            say(f"kill -9 {name} (pid {proc.pid})")
            break


# --------------------------------------------------------------------------- draining


async def relay_stats(run_dir: Path) -> dict[str, dict[str, Any]]:
    from relays.client import RelayUnavailable, request_stats

    out: dict[str, dict[str, Any]] = {}
    for domain in DOMAINS:
        try:
            with trio.fail_after(2):
                out[domain] = await request_stats(domain, run_dir / f"{domain}.sock")
        except (OSError, trio.TooSlowError, RelayUnavailable):
            pass
    return out


async def drain(sup: Supervisor, kills: KillLog, run_dir: Path, max_s: float, quiet_s: float,
                open_signals: set[int]) -> dict[str, dict[str, Any]]:
    """Wait until every process is up, every signal seen has an outcome (``open_signals``, kept by
    ``tools.demo.watch_bus``), every relay answers with the same head as before and no consumer lags,
    for ``quiet_s`` seconds (at most ``max_s``); return the relays' last stats."""
    deadline = trio.current_time() + max_s
    last: tuple[Any, ...] | None = None
    since = trio.current_time()
    stats: dict[str, dict[str, Any]] = {}
    while trio.current_time() < deadline:
        stats = await relay_stats(run_dir)
        alive = all_up(sup, kills)
        heads = tuple(stats.get(d, {}).get("head_seq") for d in DOMAINS)
        caught_up = len(stats) == len(DOMAINS) and all(
            c.get("lag", 0) == 0 for s in stats.values() for c in s.get("consumers", []))
        now = trio.current_time()
        if not (alive and caught_up and not open_signals and heads == last):
            last, since = heads, now
        elif now - since >= quiet_s:
            return stats
        await trio.sleep(0.5)
    say(f"the system did not settle within {max_s:g} s ({len(open_signals)} signal(s) without an outcome "
        "so far); checking what is there")
    return stats


# --------------------------------------------------------------------------- evidence


@dataclass
class Start:
    block: int
    signer_native: int
    recipient_weth: int
    # the recipient's balance of every other token of the deployment (profit in a cycle's start token:
    # the demo's cycles also start in USDC): token address -> balance
    recipient_tokens: dict[str, int] = field(default_factory=dict)


def chain_txs(net: Devnet, signer: str, from_block: int) -> list[ChainTx]:
    client = net.client
    out: list[ChainTx] = []
    signer = signer.lower()
    for n in range(from_block + 1, client.block_number() + 1):
        for tx in client.get_block(n, full=True)["transactions"]:
            if str(tx["from"]).lower() != signer:
                continue
            r = net.rpc.call("eth_getTransactionReceipt", [tx["hash"]])
            out.append(ChainTx(tx_hash=str(tx["hash"]).lower(), nonce=int(tx["nonce"], 16),
                               to=str(tx.get("to") or "").lower(), status=int(r["status"], 16),
                               fee_wei=int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16)))
    return out


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def books_evidence(db_path: Path) -> tuple[list[str], dict[int, int], dict[str, int]]:
    """(tx hash of every result, balances, counters) from the portfolio's books."""
    from portfolio.books import Books

    if not db_path.exists():  # the portfolio never started: nothing booked
        return [], {}, {}
    db = _read_only(db_path)
    try:
        hashes = [h for (h,) in db.execute("SELECT tx_hash FROM results")]
        books = Books(db)
        return hashes, books.balances(), books.counters()
    finally:
        db.close()


def store_evidence(db_path: Path) -> list[StoreTx]:
    if not db_path.exists():  # the executor never started: nothing signed
        return []
    db = _read_only(db_path)
    try:
        return [StoreTx(tx_hash=h, nonce=n, status=s, signal_id=sid)
                for h, n, s, sid in db.execute("SELECT tx_hash, nonce, status, signal_id FROM txs")]
    finally:
        db.close()


def archive_evidence(out: Path, domain: str) -> tuple[Counter[int], list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    from relays.archiver import archive_files, read_gaps

    seqs: Counter[int] = Counter()
    for pf in archive_files(out, domain):
        seqs.update(pq.read_table(pf.path, columns=["domain_seq"]).column(0).to_pylist())
    return seqs, read_gaps(out, domain)


_START_RE = re.compile(r"relay: epoch (\d+), head (\d+)")


def relay_log_evidence(log_file: Path) -> tuple[list[RelayStart], int]:
    """The relay's starts (epoch, head) and how many Resyncs it logged."""
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return [], 0
    starts = [RelayStart(int(m.group(1)), int(m.group(2))) for m in _START_RE.finditer(text)]
    return starts, len(re.findall(r": resync ", text))


def outcome_evidence(out: Path) -> tuple[list[int], list[int]]:
    """(signal ids published, signal ids of the ExecutionResults) from the archives."""
    from protocol.execution import ExecutionResult
    from protocol.signals import SignalIdentity
    from relays.archiver import read_archive

    signals = [ident.signal_id for msg in read_archive(out, "signal")
               if (ident := msg.find(SignalIdentity)) is not None]
    results = [t.signal_id for msg in read_archive(out, "execution") for t in msg.tlvs
               if isinstance(t, ExecutionResult)]
    return signals, results


def run_checks(net: Devnet, work: Path, start: Start, signer: str, arb: str, recipient: str,
               heads: dict[str, int]) -> list[Verdict]:
    from protocol.ids import TokenId

    dep = net.deployment
    data = work / "data"
    txs = chain_txs(net, signer, start.block)
    hashes, balances, _ = books_evidence(data / "portfolio.sqlite")
    native = dep.chain_id << 160
    weth = int(TokenId.of(dep.chain_id, dep.weth))
    deltas = {native: net.client.eth_balance(signer) - start.signer_native,
              weth: net.client.erc20_balance(dep.weth, recipient) - start.recipient_weth}
    names = {native: "ETH (signer's gas)", weth: "WETH (recipient's profit)"}
    for address, before in start.recipient_tokens.items():
        token = int(TokenId.of(dep.chain_id, address))
        deltas[token] = net.client.erc20_balance(address, recipient) - before
        names[token] = f"{dep.token(address).symbol} (recipient's profit)"
    verdicts = [
        check_books_txs(txs, hashes, arb),
        check_balances(balances, deltas, names),
        check_outcomes(*outcome_evidence(data / "archive")),
        check_nonces(txs, store_evidence(data / "executor.sqlite")),
    ]
    for domain in DOMAINS:
        seqs, gaps = archive_evidence(data / "archive", domain)
        starts, resyncs = relay_log_evidence(work / "logs" / f"relay-{domain}.log")
        verdicts.append(check_archive(domain, seqs, heads.get(domain, 0), gaps, starts, resyncs))
    return verdicts


# --------------------------------------------------------------------------- main


@dataclass
class Run:
    kills: KillLog = field(default_factory=KillLog)
    heads: dict[str, int] = field(default_factory=dict)
    relay_counters: dict[str, dict[str, int]] = field(default_factory=dict)
    trades: int = 0
    settled: bool = False


async def _run(cfg: ChaosTable, market: MarketTable, net: Devnet, deploy_file: Path, run: Run) -> None:
    from tools.demo import Tally, drive_market, watch_bus
    from tools.deployment import load_deployment
    from tools.supervisor import Supervisor

    dep = load_deployment(deploy_file)
    sup = Supervisor(dep.processes, handle_signals=False, backoff_max=cfg.backoff_max)
    names = [p.name for p in dep.processes if not cfg.kill or p.name in cfg.kill]
    rng = random.Random(cfg.rng)
    stop_driver = threading.Event()
    tally = Tally()
    run_dir = Path(dep.run_dir)
    async with trio.open_nursery() as nursery:
        await sup.start(nursery)
        nursery.start_soon(watch_bus, run_dir, tally)
        nursery.start_soon(watch_pids, sup, run.kills, cfg.min_up)
        with trio.move_on_after(STARTUP_S):
            while not all_up(sup, run.kills):  # noqa: ASYNC110 - polling processes' logs and sockets
                await trio.sleep(0.2)
        if not all_up(sup, run.kills):
            say(f"not every process is up after {STARTUP_S:g} s; starting anyway")
        await trio.sleep(cfg.warmup)
        say(f"market driver: {market.rate:g} real swaps/s; killing one of {len(names)} processes every "
            f"~{cfg.interval:g} s for {cfg.duration:g} s (seed {cfg.rng})")
        driver = threading.Thread(target=drive_market, args=(net, net.deployment.funded_accounts[0], market.rate,
                                                              Fraction(market.amplify), stop_driver, tally),
                                  daemon=True)
        driver.start()
        t0 = trio.current_time()
        try:
            with trio.move_on_after(cfg.duration):
                await kill_loop(sup, names, rng, cfg.interval, run.kills, t0)
        finally:
            stop_driver.set()
            await trio.to_thread.run_sync(driver.join)
        run.trades = tally.trades
        say(f"market driver stopped after {tally.trades} trades ({tally.trade_errors} failed); draining")
        stats = await drain(sup, run.kills, run_dir, cfg.drain, cfg.quiet, tally.open_signals)
        run.settled = bool(stats) and len(stats) == len(DOMAINS)
        run.heads = {d: int(s["head_seq"]) for d, s in stats.items()}
        run.relay_counters = {d: {"duplicates_dropped": int(s.get("duplicates_dropped", 0))} for d, s in stats.items()}
        await sup.stop_all()
        nursery.cancel_scope.cancel()


def report(run: Run, verdicts: list[Verdict], names: list[str]) -> dict[str, Any]:
    per = run.kills.per_component()
    return {
        "kills": len(run.kills.kills),
        "survived": sum(k.survived for k in run.kills.kills),
        "per_component": {n: {"kills": per.get(n, (0, 0))[0], "survived": per.get(n, (0, 0))[1]} for n in names},
        "kinds_killed": sorted({kind_of(k.name) for k in run.kills.kills}),
        "trades": run.trades,
        "heads": run.heads,
        "lost": sum(v.lost for v in verdicts),
        "duplicated": sum(v.duplicated for v in verdicts),
        "relay_resends_dropped": {d: c["duplicates_dropped"] for d, c in run.relay_counters.items()},
        "checks": [{"name": v.name, "ok": v.ok, "summary": v.summary, "details": v.details,
                    "lost": v.lost, "duplicated": v.duplicated} for v in verdicts],
        "ok": all(v.ok for v in verdicts),
    }


def print_report(rep: dict[str, Any]) -> None:
    print()
    print("=" * 72)
    print("AlphaPulse chaos: what survived")
    print("=" * 72)
    print(f"kills: {rep['kills']} ({rep['survived']} survived); kinds: {', '.join(rep['kinds_killed'])}")
    for name, k in rep["per_component"].items():
        print(f"  {name:22} killed {k['kills']:3}  survived {k['survived']:3}")
    print(f"trades replayed: {rep['trades']}; relay heads at the end: {rep['heads']}")
    print(f"messages lost: {rep['lost']}   duplicated: {rep['duplicated']}   "
          f"(resends the relays dropped as duplicates: {rep['relay_resends_dropped']})")
    for c in rep["checks"]:
        print(f"[{'PASS' if c['ok'] else 'FAIL'}] {c['name']}: {c['summary']}")
        for line in c["details"]:
            print(f"         {line}")
    print("chaos: every check passed" if rep["ok"] else "chaos: FAILED")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse chaos", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="chaos TOML file (see above)")
    ap.add_argument("--duration", type=float, help="seconds under kills (overrides [chaos] duration)")
    ap.add_argument("--seed", type=int, help="RNG seed (overrides [chaos] rng)")
    ap.add_argument("--interval", type=float, help="mean seconds between kills (overrides [chaos] interval)")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args(argv)
    try:
        config = load_config(args.config)
        over = {k: v for k, v in (("duration", args.duration), ("rng", args.seed), ("interval", args.interval))
                if v is not None}
        cfg = decode(ChaosTable, {**msgspec.structs.asdict(config.chaos), **over}, file=args.config) \
            if over else config.chaos
    except ConfigError as exc:
        print(f"alphapulse chaos: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    from chain.deployment import save_deployment
    from tools.demo import _deploy_arb, _write_configs
    from tools.deployment import load_deployment
    from tools.devnet.deploy import start_devnet
    from tools.devnet.paths import DevnetSetupError

    work = CHAOS_DIR / time.strftime("%Y%m%d-%H%M%S")
    make_dirs(work)
    run_dir = Path(f"/tmp/alphapulse-chaos-{os.getpid()}")  # short: AF_UNIX paths are limited to 107 bytes
    make_dirs(run_dir)
    os.environ["ALPHAPULSE_RUN_DIR"] = str(run_dir)
    say(f"working directory {work}")
    try:
        net = start_devnet(log_path=str(work / "anvil.log"))
    except DevnetSetupError as exc:
        print(f"alphapulse chaos: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    run = Run()
    try:
        signer, arb, ks, pwfile, recipient = _deploy_arb(net, work / "executor")
        save_deployment(work / "deployment.json", [net.deployment], pids=[net.anvil.pid])
        deploy_file = _write_configs(work, run_dir, net.deployment, arb, ks, pwfile, archive=DOMAINS)
        start = Start(block=net.client.block_number(), signer_native=net.client.eth_balance(signer),
                      recipient_weth=net.client.erc20_balance(net.deployment.weth, recipient),
                      recipient_tokens={t.address: net.client.erc20_balance(t.address, recipient)
                                        for t in net.deployment.tokens if t.address != net.deployment.weth})
        names = [p.name for p in load_deployment(deploy_file).processes]
        unknown = sorted(set(cfg.kill) - set(names))
        if unknown:
            print(f"alphapulse chaos: {args.config}: chaos.kill: no such process: {', '.join(unknown)} "
                  f"(processes: {', '.join(names)})", file=sys.stderr)
            return EXIT_CONFIG
        trio.run(_run, cfg, config.market, net, deploy_file, run)
        verdicts = run_checks(net, work, start, signer, arb, recipient, run.heads)
        dead = [f"{k.name} (pid {k.pid}, at {k.at:.0f} s)" for k in run.kills.kills if not k.survived]
        n = len(run.kills.kills)
        verdicts.append(Verdict("every kill survived", ok=not dead, summary=f"{n - len(dead)} of {n} up again",
                                details=[f"never up again: {', '.join(dead)}"] if dead else []))
        if not run.settled:
            verdicts.append(Verdict("relays answered at the end", ok=False, summary="a relay did not answer"))
    finally:
        net.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    rep = report(run, verdicts, names)
    (work / "chaos.json").write_text(json.dumps(rep, indent=2))
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        print_report(rep)
        print(f"\nlogs and data: {work}")
    return 0 if rep["ok"] else EXIT_FAILED
