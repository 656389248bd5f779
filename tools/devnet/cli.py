"""``alphapulse devnet``: local anvil chains with the official Uniswap V2/V3 contracts.

Starts N independent anvil nodes (chain ids 31337, 31338, ...), deploys the devnet market on
each (each chain its own deployments of the official Uniswap contracts, the same tokens and pairs,
WETH priced differently per chain: ``deploy.chain_spec``), writes one deployment file listing
every chain (and every anvil PID), prints a summary, then stays in the foreground until
SIGINT/SIGTERM and stops every anvil it started.

Block times: one chain automines (a block per transaction) unless told otherwise; several chains
mine on intervals by default, chain i every MULTI_CHAIN_BLOCK_TIMES[i] seconds (2 s, then 0.25 s:
an L2 beside a faster L2). ``--block-times 2,0.25`` sets them per chain, ``--block-time S`` one
for all, ``--automine`` keeps every chain on automine (tests).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from types import FrameType

from chain.deployment import DEFAULT_PATH, ChainDeployment, save_deployment

from .paths import REPO_ROOT, DevnetSetupError

MULTI_CHAIN_BLOCK_TIMES = (2.0, 0.25)


class _Stop(Exception):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def _fmt_price(p: Fraction) -> str:
    f = float(p)
    if f == 0:
        return "0"
    if f >= 1000:
        return f"{f:,.2f}"
    return f"{f:.6g}"


def summary(dep: ChainDeployment, prices: dict[str, Fraction], seconds: float) -> str:
    lines = [
        f"chain {dep.chain_id}: {dep.rpc_url}  {dep.ws_url}  (anvil pid {dep.anvil_pid}, "
        f"{dep.extra.get('transactions', '?')} txs deployed in {seconds:.2f} s, head block {dep.deploy_block}"
        f"{', automine' if dep.block_time is None else f', block time {dep.block_time:g} s'})",
        "  tokens: " + ", ".join(f"{t.symbol}({t.decimals}) {t.address}" for t in dep.tokens),
    ]
    for v in dep.v2:
        lines.append(f"  {v.name}: factory {v.factory} router {v.router}")
    v3 = dep.v3
    lines.append(f"  {v3.name}: factory {v3.factory} positions {v3.position_manager} "
                 f"router {v3.swap_router} quoterV2 {v3.quoter_v2}")
    if dep.bridge is not None:
        lines.append(f"  bridge stand-in: {dep.bridge.address} relayer {dep.bridge.relayer}")
    for p in dep.pools:
        lines.append(f"    {p.label:<30} {p.address}  {_fmt_price(prices[p.address])} {p.symbol1} per {p.symbol0}")
    return "\n".join(lines)


def chain_block_times(chains: int, *, block_time: float | None = None, block_times: str | None = None,
                      automine: bool = False) -> list[float | None]:
    """Each chain's block time in seconds (None: automine) from the command line's choices;
    a ValueError's message is the one line to show."""
    given = [name for name, v in (("--block-time", block_time), ("--block-times", block_times),
                                  ("--automine", automine or None)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"give one of {', '.join(given)}")
    if automine:
        return [None] * chains
    if block_time is not None:
        times = [block_time] * chains
    elif block_times is not None:
        try:
            times = [float(t) for t in block_times.split(",")]
        except ValueError:
            raise ValueError(f"--block-times: {block_times!r} is not a comma-separated list of seconds") from None
        if len(times) != chains:
            raise ValueError(f"--block-times: {len(times)} value(s) for {chains} chain(s)")
    elif chains == 1:
        return [None]
    else:
        times = [MULTI_CHAIN_BLOCK_TIMES[min(i, len(MULTI_CHAIN_BLOCK_TIMES) - 1)] for i in range(chains)]
    if any(not t > 0 for t in times):
        raise ValueError("block times must be > 0 seconds")
    return list(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse devnet", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chains", type=int, default=1, help="number of independent anvil chains (default 1)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / DEFAULT_PATH,
                    help=f"deployment file to write (default <repo>/{DEFAULT_PATH})")
    ap.add_argument("--port-base", type=int, default=None,
                    help="chain i listens on PORT_BASE+i (default: free ports)")
    ap.add_argument("--chain-id-base", type=int, default=31337, help="chain i gets CHAIN_ID_BASE+i (default 31337)")
    ap.add_argument("--block-time", type=float, default=None,
                    help="every chain mines a block every N seconds instead of one per transaction")
    ap.add_argument("--block-times", default=None, metavar="S,S,..",
                    help="chain i mines every S_i seconds (default with --chains >= 2: 2,0.25; one chain: automine)")
    ap.add_argument("--automine", action="store_true", help="every chain mines one block per transaction")
    ap.add_argument("--log-dir", type=Path, default=None, help="write each anvil's output to DIR/anvil-<chain>.log")
    ap.add_argument("--once", action="store_true", help="deploy, write the file, print, then stop (no foreground)")
    args = ap.parse_args(argv)
    if args.chains < 1:
        ap.error("--chains must be >= 1")
    try:
        block_times = chain_block_times(args.chains, block_time=args.block_time, block_times=args.block_times,
                                        automine=args.automine)
    except ValueError as exc:
        ap.error(str(exc))

    # Imported here so `--help` works without the heavier dependencies.
    from chain.rpc import RpcFailure

    from .actions import DevnetClient, TxFailed
    from .anvil import AnvilError, AnvilProcess, anvil_binary
    from .artifacts import check_init_code_hashes, dev_token, load
    from .deploy import chain_spec, deploy

    try:
        anvil_binary()
        check_init_code_hashes()
        dev_token()
        load("V4DevnetRouter")  # compiles (once, cached) the V4 router and hooks
    except DevnetSetupError as exc:
        print(f"alphapulse devnet: {exc}", file=sys.stderr)
        return 2

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    nodes: list[AnvilProcess] = []
    pool = ThreadPoolExecutor(max_workers=args.chains, thread_name_prefix="devnet-deploy")
    code = 0
    try:
        # Start every anvil from this (main) thread, so PR_SET_PDEATHSIG ties them to the
        # process for its whole life; deploy on them in parallel.
        for i in range(args.chains):
            chain_id = args.chain_id_base + i
            port = None if args.port_base is None else args.port_base + i
            log = args.log_dir / f"anvil-{chain_id}.log" if args.log_dir else None
            nodes.append(AnvilProcess(chain_id=chain_id, port=port, block_time=block_times[i], log_path=log).start())

        def _deploy(index: int, node: AnvilProcess) -> tuple[ChainDeployment, float]:
            t0 = time.perf_counter()
            with node.rpc() as rpc:
                dep = deploy(rpc, spec=chain_spec(index), rpc_url=node.rpc_url, ws_url=node.ws_url,
                             anvil_pid=node.pid, block_time=block_times[index])
            return dep, time.perf_counter() - t0

        futures = [pool.submit(_deploy, i, n) for i, n in enumerate(nodes)]
        results = [f.result() for f in futures]
        for dep, seconds in results:
            with DevnetClient(dep) as client:
                prices = {p.address: client.pool_price(p) for p in dep.pools}
            print(summary(dep, prices, seconds))
        # The file is written last: whoever waits for it finds every chain ready.
        path = save_deployment(args.out, [dep for dep, _ in results], pids=[n.pid for n in nodes])
        print(f"deployment file: {path}")
        print("anvil pids: " + " ".join(str(n.pid) for n in nodes))
        if args.once:
            return 0
        print("devnet ready; Ctrl-C or SIGTERM stops it", flush=True)
        while True:
            time.sleep(0.5)
            dead = [n for n in nodes if not n.is_running()]
            if dead:
                for n in dead:
                    print(f"alphapulse devnet: anvil for chain {n.chain_id} exited unexpectedly: "
                          f"{n.log_tail(500)}", file=sys.stderr)
                code = 1
                break
    except _Stop as stop:
        print(f"alphapulse devnet: {stop}, stopping {len(nodes)} anvil(s)", file=sys.stderr)
    except (AnvilError, DevnetSetupError, TxFailed, RpcFailure, TimeoutError) as exc:
        print(f"alphapulse devnet: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    finally:
        # Ignore further signals while cleaning up so a second Ctrl-C cannot orphan anything.
        for s in old:
            signal.signal(s, signal.SIG_IGN)
        for n in nodes:
            n.stop()
        pool.shutdown(wait=False, cancel_futures=True)
        sys.stdout.flush()
        for s, h in old.items():
            signal.signal(s, h)
    return code


if __name__ == "__main__":
    sys.exit(main())
