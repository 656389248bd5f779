"""``alphapulse status [--config DEPLOYMENT] [--socket-dir DIR] [--json]``: what is running, at a glance.

* every relay of the run directory: up or down, retained range, head, each consumer's lag, producers;
* breakers and open signals: the signal and execution domains read from the relays (the newest
  ``--window`` messages of each) into the dashboard's model: active emergency stops, signals without
  an outcome, the outcome counts;
* with a deployment file: the supervisor (its pid file) and every process with the last error line
  of its log, its niceness as configured and, while the supervisor runs it, its pid and the niceness it
  really runs at (read from the kernel: a niceness the supervisor could not set shows here).

Exit status 0 when every relay is up and nothing is halted, 1 otherwise (for scripts and probes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import trio

from protocol.header import Domain
from runtime.paths import DATA_DOMAINS, run_dir, socket_path

WINDOW = 20_000


async def _relay(domain: Domain, path: Path, wait_s: float) -> dict[str, Any]:
    from tools.relay_cli import CliError, probe_domain

    try:
        welcome, stats = await probe_domain(domain, str(path), wait_s)
    except CliError as exc:
        return {"up": False, "socket": str(path), "error": str(exc).splitlines()[0]}
    return {"up": True, "socket": str(path), "oldest": welcome.oldest_seq, "head": welcome.head_seq,
            "consumers": [{"name": c.get("name", "?"), "lag": c.get("lag", 0)} for c in stats.get("consumers", ())],
            "producers": [p.get("name", "?") for p in stats.get("producers", ())]}


async def _read_into(model: Any, domain: Domain, path: Path, oldest: int, head: int, wait_s: float) -> None:
    from relays.client import RelayConsumer

    if head < max(oldest, 1):
        return
    start = max(oldest, 1, head - WINDOW + 1)
    with trio.move_on_after(wait_s):
        # background: an operator's look must not take a core from the processes that trade
        async with RelayConsumer.connect(domain, str(path), from_seq=start, name="status", latency="background") as c:
            async for msg in c:
                model.on_message(int(domain), msg, time.time_ns())
                if msg.domain_seq >= head:
                    break


async def gather(socket_dir: Path, wait_s: float = 2.0) -> dict[str, Any]:
    from tools.dashboard.model import DashboardModel, outcome_name

    relays: dict[str, dict[str, Any]] = {}

    async def probe(d: Domain) -> None:
        relays[d.name.lower()] = await _relay(d, socket_path(d, socket_dir), wait_s)

    async with trio.open_nursery() as n:
        for d in DATA_DOMAINS:
            n.start_soon(probe, d)
    model = DashboardModel()
    for d in (Domain.SIGNAL, Domain.EXECUTION):
        r = relays[d.name.lower()]
        if r["up"]:
            await _read_into(model, d, socket_path(d, socket_dir), r["oldest"], r["head"], wait_s * 5)
    return {
        "relays": {k: relays[k] for k in sorted(relays, key=lambda k: Domain[k.upper()])},
        "halted": model.halted,
        "active_stops": [{"stop_id": ev.stop_id, "scope": ev.scope_text, "sender": ev.sender, "reason": ev.reason}
                         for ev in model.active_stops.values()],
        "open_signals": [r.signal_id for r in model.signals.values() if r.is_open],
        "outcomes": {outcome_name(k): v for k, v in sorted(model.outcomes.items()) if v},
    }


def supervised_children(supervisor_pid: int) -> list[tuple[int, list[str]]]:
    """The supervisor's child processes as (pid, argv), from /proc (empty when it is gone or not Linux)."""
    found = []
    try:
        tasks = list(Path(f"/proc/{supervisor_pid}/task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            pids = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in map(int, pids):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
            except OSError:
                continue
            found.append((pid, [a.decode(errors="replace") for a in argv]))
    return found


def _child_of(children: list[tuple[int, list[str]]], args: list[str]) -> int | None:
    """The pid of the child that runs ``alphapulse`` with exactly ``args`` (``python -m tools.cli ARGS``)."""
    for pid, argv in children:
        if "tools.cli" in argv and argv[argv.index("tools.cli") + 1:] == list(args):
            return pid
    return None


def processes(deployment: str) -> dict[str, Any]:
    from tools.deployment import load_deployment
    from tools.supervisor import last_error_line, niceness_of

    dep = load_deployment(deployment)
    pidfile = Path(dep.run_dir) / "supervisor.pid"
    sup: dict[str, Any] = {"pid_file": str(pidfile), "running": False}
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
        sup.update(pid=pid, running=True)
    except (OSError, ValueError):
        pass
    children = supervised_children(sup["pid"]) if sup["running"] else []
    procs = []
    for spec in dep.processes:
        pid = _child_of(children, spec.args)
        procs.append({"name": spec.name, "command": " ".join(spec.args[:2]), "log": spec.log_file,
                      "nice": spec.niceness, "pid": pid, "running_nice": None if pid is None else niceness_of(pid),
                      "last_error": last_error_line(spec.log_file) if spec.log_file else None})
    return {"run_dir": dep.run_dir, "supervisor": sup, "processes": procs}


def render(st: dict[str, Any]) -> str:
    lines = ["relays:"]
    for name, r in st["relays"].items():
        if not r["up"]:
            lines.append(f"  {name:<12} DOWN   {r['error']}")
            continue
        lags = ", ".join(f"{c['name']} lag {c['lag']}" for c in r["consumers"]) or "no consumers"
        lines.append(f"  {name:<12} up     head {r['head']:,} (retained {r['oldest']:,}..{r['head']:,}); "
                     f"{lags}; producers: {', '.join(r['producers']) or 'none'}")
    lines.append("")
    if st["halted"]:
        lines.append("breakers: HALTED")
        lines += [f"  stop #{s['stop_id']} {s['scope']} by {s['sender']}: {s['reason']}" for s in st["active_stops"]]
    elif not st["relays"]["execution"]["up"]:
        lines.append("breakers: unknown (execution relay down)")
    else:
        lines.append("breakers: no active stop")
    opened = st["open_signals"]
    lines.append(f"open signals: {len(opened)}" + (f" ({', '.join(map(str, opened[:10]))}"
                                                   f"{' ...' if len(opened) > 10 else ''})" if opened else ""))
    if st["outcomes"]:
        lines.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in st["outcomes"].items()))
    if "processes" in st:
        p = st["processes"]
        sup = p["supervisor"]
        lines += ["", f"supervisor: {'running, pid ' + str(sup['pid']) if sup['running'] else 'not running'}",
                  "processes (pid, niceness, last error line of its log):"]
        for proc in p["processes"]:
            nice = f"nice {proc['nice']}"
            if proc["running_nice"] is not None and proc["running_nice"] != proc["nice"]:
                nice += f" (runs at {proc['running_nice']})"
            pid = f"pid {proc['pid']}" if proc["pid"] is not None else "not running"
            lines.append(f"  {proc['name']:<20} {proc['command']:<22} {pid:<11} {nice:<9} {proc['last_error'] or '-'}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse status", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="deployment file: its run directory, supervisor and process logs")
    ap.add_argument("--socket-dir", help="relay socket directory (default: the deployment's, else "
                                         "$ALPHAPULSE_RUN_DIR)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds per relay probe (default 2)")
    args = ap.parse_args(argv)
    procs = processes(args.config) if args.config else None
    sockets = Path(args.socket_dir or (procs["run_dir"] if procs else run_dir()))
    st = trio.run(gather, sockets, args.timeout)
    if procs is not None:
        st["processes"] = procs
    print(json.dumps(st, indent=2) if args.json else render(st))
    healthy = all(r["up"] for r in st["relays"].values()) and not st["halted"]
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
