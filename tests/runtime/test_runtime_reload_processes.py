"""SIGHUP to real processes: risk, strategy, portfolio and a relay (no chain), the executor on the
devnet. A reloadable change is applied and logged ``old -> new`` (and risk's lower gas ceiling then
trips on a block the old one let through); a change to anything else, an invalid file and a
process with nothing to reload are refused with the reason logged, and every process keeps running
on its old configuration."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from relay_testkit import DOMAINS, Procs, relays_toml, wait_for
from risk_testkit import risk_toml

from protocol.header import Domain
from protocol.market import BlockHeader
from relays.client import RelayProducer
from runtime.metrics import parse_text
from tools.devnet.anvil import free_port

GWEI = 10**9
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


class Bus(Procs):
    """Three relays in a private directory and the processes started on them (ended by PID)."""

    def __init__(self, d: Path) -> None:
        super().__init__(d)
        self.d = d
        self.socks = {dom: d / f"{dom.name.lower()[:3]}.sock" for dom in DOMAINS}

    def hup(self, name: str, expect: str) -> None:
        """SIGHUP ``name`` and wait for ``expect`` in its log (after what it logged so far)."""
        before = len(self.log(name))
        os.kill(self.named[name].pid, signal.SIGHUP)
        wait_for(f"{name}: {expect!r}", lambda: expect in self.log(name)[before:])
        assert self.named[name].poll() is None, self.log(name)


@pytest.fixture
def bus(short_dir: Path) -> Iterator[Bus]:
    b = Bus(short_dir)
    try:
        for dom in DOMAINS:
            b.cli(f"relay-{dom.name.lower()}", "relay", "--domain", dom.name.lower(), "--socket",
                  str(b.socks[dom]), "--data-dir", str(short_dir / f"data-{dom.name.lower()}"), "--fsync", "off")
        for dom in DOMAINS:
            wait_for(f"{dom.name} relay", lambda dom=dom: b.socks[dom].exists())
        yield b
    finally:
        b.stop()


def reloads(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    fam = parse_text(text).get("alphapulse_config_reloads_total")
    return {lab["result"]: v for _, lab, v in fam.samples} if fam else {}


def test_sighup_reloads_risk_strategy_portfolio_and_refuses_the_rest(bus: Bus) -> None:
    d = bus.d
    risk_cfg = d / "risk.toml"

    def write_risk(max_gwei: int, sender: str = "risk") -> None:
        risk_cfg.write_text(risk_toml(bus.socks, max_gas_wei=max_gwei * GWEI, sender=sender))

    write_risk(200)
    strategy_cfg = d / "strategy.toml"

    def write_strategy(slippage: int, max_hops: int = 3) -> None:
        strategy_cfg.write_text(f'[strategy]\nmax_hops = {max_hops}\n[economics]\nslippage_bps = {slippage}\n'
                                f'[[chains]]\nchain_id = 1\ngas_token = "{WETH}"\n'
                                f'min_net_profit = {{ "{WETH}" = 1000 }}\n'
                                f'[relays]\nmarket_data = "{bus.socks[Domain.MARKET_DATA]}"\n'
                                f'signal = "{bus.socks[Domain.SIGNAL]}"\n')

    write_strategy(10)
    portfolio_cfg = d / "portfolio.toml"
    portfolio_cfg.write_text(f'[portfolio]\nname = "portfolio"\n{relays_toml(bus.socks)}')
    risk_port = free_port()
    bus.cli("risk", "risk", "--config", str(risk_cfg), "--state", str(d / "risk.sqlite"),
            "--metrics-port", str(risk_port))
    bus.cli("strategy", "strategy", "--config", str(strategy_cfg))
    bus.cli("portfolio", "portfolio", "--config", str(portfolio_cfg), "--db", str(d / "books.sqlite"))
    wait_for("risk ready", lambda: "risk: watching" in bus.log("risk"))
    wait_for("strategy ready", lambda: "running: market data" in bus.log("strategy"))
    wait_for("portfolio ready", lambda: "portfolio: consuming" in bus.log("portfolio"))

    async def publish_block(number: int, base_fee_gwei: int) -> None:
        async with RelayProducer.connect(Domain.MARKET_DATA, str(bus.socks[Domain.MARKET_DATA]), source_id=99) as p:
            await p.publish(BlockHeader(chain_id=1, number=number, timestamp=12 * number, gas_limit=30_000_000,
                                        gas_used=15_000_000, hash=number.to_bytes(32, "big"),
                                        parent_hash=(number - 1).to_bytes(32, "big"),
                                        base_fee=base_fee_gwei * GWEI, priority_fee=GWEI))

    # risk: 150 gwei is under the 200 gwei ceiling; lowered to 100 by SIGHUP, the next block trips
    trio.run(publish_block, 6, 150)
    bus.hup("risk", "nothing changed")
    write_risk(100)
    bus.hup("risk", f"gas_price.max_wei: {200 * GWEI} -> {100 * GWEI}")
    assert "EMERGENCY STOP" not in bus.log("risk")
    trio.run(publish_block, 7, 150)
    wait_for("the gas breaker trips under the reloaded ceiling", lambda: "EMERGENCY STOP" in bus.log("risk"))
    # anything else is refused, naming the key; the process keeps the running configuration
    write_risk(300, sender="someone-else")
    bus.hup("risk", "risk.sender cannot change while the process runs")
    assert "gas_price.max_wei" not in bus.log("risk").rsplit("cannot change", 1)[0].rsplit("\n", 1)[-1]
    risk_cfg.write_text("[gas_price\n")
    bus.hup("risk", "invalid TOML")
    write_risk(100)  # back to the running configuration: nothing to do
    bus.hup("risk", "nothing changed")
    assert reloads(risk_port) == {"applied": 1.0, "refused": 2.0, "unchanged": 2.0}

    # strategy: thresholds reload, the search's shape does not
    write_strategy(25)
    bus.hup("strategy", "economics.slippage_bps: 10 -> 25")
    write_strategy(25, max_hops=4)
    bus.hup("strategy", "strategy.max_hops cannot change while the process runs")
    write_strategy(40)  # max_hops back to the running 3: the refused change was never applied
    bus.hup("strategy", "economics.slippage_bps: 25 -> 40")

    # portfolio: nothing is reloadable
    portfolio_cfg.write_text(f'[portfolio]\nname = "portfolio"\n{relays_toml(bus.socks)}'
                             f'[chains."1"]\nvaluation_token = "{WETH}"\n')
    bus.hup("portfolio", "chains.1 cannot change while the process runs (restart it to apply); reloadable: nothing")

    # a relay has no configuration file to reload: SIGHUP is logged and changes nothing
    bus.hup("relay-signal", "has no reloadable configuration; nothing changed")
    for name, p in bus.named.items():
        assert p.poll() is None, f"{name} ended: {bus.log(name)}"


def test_sighup_reloads_the_executors_limits_and_refuses_its_mode(bus: Bus, devnet: Any) -> None:
    from execution.deploy import deploy_and_configure, devnet_factories
    from execution.keystore import new_keystore_account

    d = bus.d
    dep = devnet.deployment
    snap = devnet.client.snapshot()
    try:
        (d / "password").write_text("pw-for-reload\n")
        account = new_keystore_account(d / "keystore.json", "pw-for-reload", kdf="pbkdf2", iterations=2)
        devnet.client.rpc.call("anvil_setBalance", [account.address, hex(10**20)])
        arb = deploy_and_configure(devnet.client.rpc, account, recipient=dep.accounts[5],
                                   factories=devnet_factories(dep)).contract
        cfg = d / "executor.toml"

        def write(max_gas_price_gwei: int, mode: str = "shadow") -> None:
            cfg.write_text(f'[executor]\nchain_id = {dep.chain_id}\nrpc_url = "{dep.rpc_url}"\ncontract = "{arb}"\n'
                           f'gas_token = "{dep.weth}"\nmode = "{mode}"\nstate_db = "{d / "executor.sqlite"}"\n'
                           f'market_data_from = "now"\n'
                           f'[keystore]\npath = "{d / "keystore.json"}"\npassword_file = "{d / "password"}"\n'
                           f'[limits]\nmax_gas_price_wei = {max_gas_price_gwei * GWEI}\n'
                           f'{relays_toml(bus.socks)}')

        write(300)
        bus.cli("executor", "executor", "--config", str(cfg))
        wait_for("executor ready", lambda: "executor: ready" in bus.log("executor"))
        write(50)
        bus.hup("executor", f"limits.max_gas_price_wei: {300 * GWEI} -> {50 * GWEI}")
        write(50, mode="public")
        bus.hup("executor", "executor.mode cannot change while the process runs")
        assert dep.rpc_url not in bus.log("executor").split("executor: ready", 1)[1]
    finally:
        devnet.client.revert(snap)
