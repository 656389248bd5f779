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
