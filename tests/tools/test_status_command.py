"""``alphapulse status``: relays with heads and lags, breakers and open signals read from the relays,
and a deployment's processes with the last error line of each log -- against real in-process relays."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import trio
from test_dashboard_model import result, signal_msg

from protocol.execution import Outcome
from protocol.header import Domain
from protocol.system import EmergencyStop, StopScope
from relays.client import RelayProducer
from relays.server import RelayConfig, serve
from runtime.paths import socket_path
from tools.deployment_writer import deployment_doc, process, write_toml
from tools.status import gather, processes, render


async def _scenario(run: Path, tmp_path: Path) -> dict[str, Any]:
    async with trio.open_nursery() as n:
        for d in (Domain.SIGNAL, Domain.EXECUTION):  # market_data stays down
            await n.start(serve, RelayConfig(domain=d, socket_path=str(socket_path(d, run)),
                                             data_dir=str(tmp_path / d.name), fsync="off"))
        async with RelayProducer.connect(Domain.SIGNAL, socket_path(Domain.SIGNAL, run), source_id=20,
                                         name="strategy") as p:
            for sid in (501, 502, 503):
                await p.publish(list(signal_msg(sid - 500, sid).tlvs))
            await p.flush()
        async with RelayProducer.connect(Domain.EXECUTION, socket_path(Domain.EXECUTION, run), source_id=31,
                                         name="executor") as p:
            await p.publish(result(501, Outcome.EXECUTED))
            await p.publish(result(502, Outcome.STALE))
            await p.publish(EmergencyStop(scope=int(StopScope.ALL), scope_value=0, stop_id=9, reason="daily loss",
                                          sender="risk"))
            await p.flush()
        st = await gather(run, 2.0)
        n.cancel_scope.cancel()
    return st


def test_status_reads_relays_breakers_and_open_signals(tmp_path: Path) -> None:
    run = Path(f"/tmp/ap-status-{os.getpid()}-{tmp_path.name[-10:]}")  # AF_UNIX paths are short
    run.mkdir(exist_ok=True)
    try:
        st = trio.run(_scenario, run, tmp_path)
    finally:
        shutil.rmtree(run, ignore_errors=True)
    assert not st["relays"]["market_data"]["up"]
    assert st["relays"]["signal"]["up"] and st["relays"]["signal"]["head"] == 3
    assert st["relays"]["execution"]["head"] == 3
    assert st["halted"] and st["active_stops"][0]["reason"] == "daily loss"
    assert st["open_signals"] == [503]
    assert st["outcomes"] == {"EXECUTED": 1, "STALE": 1}
    text = render(st)
    assert "market_data  DOWN" in text and "breakers: HALTED" in text and "open signals: 1 (503)" in text

    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "strategy.log").write_text("starting\nValueError: pool 0x12 has no fee\n")
    cfg = write_toml(tmp_path / "deploy.toml", deployment_doc(run_dir=run, data_dir=tmp_path / "data",
                                                              log_dir=log_dir, processes=[
        process("strategy", ["strategy", "--config", "s.toml"], after=["relay-signal"])]))
    procs = processes(str(cfg))
    assert procs["supervisor"]["running"] is False
    strategy = next(p for p in procs["processes"] if p["name"] == "strategy")
    assert strategy["last_error"] == "ValueError: pool 0x12 has no fee"
    assert "ValueError: pool 0x12 has no fee" in render({**st, "processes": procs})


def test_status_shows_each_supervised_process_pid_and_the_niceness_it_runs_at(tmp_path: Path) -> None:
    """With the supervisor running (here: this test process, named in the pid file), every process of the
    deployment is found among its children by its command line and shown with its pid, its configured
    niceness and, when it differs, the niceness it really runs at (read from the kernel); one that is not
    running says so."""
    import sys

    from tools.supervisor import spawn

    run = tmp_path / "run"
    run.mkdir()
    (run / "supervisor.pid").write_text(f"{os.getpid()}\n")
    cfg = write_toml(tmp_path / "deploy.toml", deployment_doc(run_dir=run, data_dir=tmp_path / "data",
                                                              log_dir=tmp_path / "logs", processes=[
        process("archiver", ["archive", "--config", "a.toml"]),
        process("portfolio", ["portfolio", "--config", "p.toml"], nice=3),
        process("risk", ["risk", "--config", "r.toml"])]))
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)", "tools.cli"]
    children = [spawn([*sleeper, "archive", "--config", "a.toml"], nice=10),  # the archiver's default: 10
                spawn([*sleeper, "portfolio", "--config", "p.toml"], nice=5)]  # not the configured 3
    try:
        found = processes(str(cfg))
    finally:
        for c in children:
            c.kill()
            c.wait()
    procs = {p["name"]: p for p in found["processes"]}
    assert procs["archiver"]["pid"] == children[0].pid and procs["archiver"]["nice"] == 10
    assert procs["archiver"]["running_nice"] == 10
    assert procs["portfolio"]["pid"] == children[1].pid and procs["portfolio"]["nice"] == 3
    assert procs["portfolio"]["running_nice"] == 5
    assert procs["risk"]["pid"] is None and procs["risk"]["running_nice"] is None
    lines = render({"relays": {"execution": {"up": False, "error": "down"}}, "halted": False, "open_signals": [], "outcomes": {}, "processes": found}).splitlines()
    assert any(f"pid {children[1].pid}" in ln and "nice 3 (runs at 5)" in ln for ln in lines if "portfolio" in ln)
    assert any("nice 10" in ln and "runs at" not in ln for ln in lines if "archiver" in ln)
    assert any("not running" in ln for ln in lines if ln.lstrip().startswith("risk"))
