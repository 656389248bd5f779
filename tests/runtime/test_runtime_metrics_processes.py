"""Real processes started with ``--metrics-port``: three relay daemons, the risk monitor and the
replay collector. Traffic: the replay publishes recorded logs, a test producer a high-gas block
(trips risk's gas breaker). Every process's /metrics must show non-zero message counters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
from relay_testkit import DOMAINS, Procs, wait_for
from risk_testkit import risk_toml

from protocol.header import Domain
from protocol.market import BlockHeader
from relays.client import RelayProducer
from runtime.metrics import parse_text
from tools.devnet.anvil import free_port

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "tests/data/uniswap-v3-usdc-weth-2024-01-05"
GWEI = 10**9


@pytest.fixture
def procs(short_dir: Path) -> Iterator[Procs]:
    ps = Procs(short_dir)
    try:
        yield ps
    finally:
        ps.stop()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert r.status_code == 200
    return {(name, tuple(sorted(lab.items()))): v
            for fam in parse_text(r.text).values() for name, lab, v in fam.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_relays_risk_and_replay_expose_metrics(short_dir: Path, procs: Procs) -> None:
    d = short_dir
    socks = {dom: d / f"{dom.name.lower()[:3]}.sock" for dom in DOMAINS}
    relay_ports = {dom: free_port() for dom in DOMAINS}
    for dom in DOMAINS:
        procs.cli(f"relay-{dom.name.lower()}", "relay", "--domain", dom.name.lower(), "--socket", str(socks[dom]),
                  "--data-dir", str(d / f"data-{dom.name.lower()}"), "--fsync", "off",
                  "--metrics-port", str(relay_ports[dom]))
    for dom in DOMAINS:
        wait_for(f"{dom.name} relay metrics", lambda dom=dom: bool(scrape(relay_ports[dom])), 20)

    cfg = d / "risk.toml"
    cfg.write_text(risk_toml(socks, max_gas_wei=100 * GWEI, extra='[alerts]\nwebhook_url = ""\n'))
    risk_port = free_port()
    risk = procs.cli("risk", "risk", "--config", str(cfg), "--state", str(d / "risk.sqlite"),
                       "--metrics-port", str(risk_port))
    wait_for("risk ready", lambda: "risk: watching" in procs.log("risk"), 20)
    assert risk.poll() is None
    # liveness and readiness beside /metrics: the relays listen, risk is connected to all three
    for port in (*relay_ports.values(), risk_port):
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text == "ok\n"
        wait_for(f"/readyz on {port}", lambda port=port: httpx.get(f"http://127.0.0.1:{port}/readyz",
                                                                   timeout=5).status_code == 200, 20)

    replay_port = free_port()
    procs.cli("replay", "collector", "replay", "--logs", str(RECORDING), "--as-fast-as-possible",
              "--limit", "300", "--socket", str(socks[Domain.MARKET_DATA]), "--metrics-port", str(replay_port),
              "--metrics-linger", "30")
    wait_for("replay published", lambda: value(scrape(replay_port), "alphapulse_replay_published_total") >= 300,
             20)
    rep = scrape(replay_port)
    assert value(rep, "alphapulse_messages_out_total", domain="market_data") >= 300
    assert value(rep, "alphapulse_replay_publish_seconds_count") >= 300
    assert value(rep, "alphapulse_process_info", process="collector-replay") == 1

    async def publish_high_gas() -> None:
        async with RelayProducer.connect(Domain.MARKET_DATA, str(socks[Domain.MARKET_DATA]), source_id=99) as p:
            await p.publish(BlockHeader(chain_id=1, number=6, timestamp=72, gas_limit=30_000_000,
                                        gas_used=15_000_000, hash=(6).to_bytes(32, "big"),
                                        parent_hash=(5).to_bytes(32, "big"), base_fee=150 * GWEI,
                                        priority_fee=GWEI))

    trio.run(publish_high_gas)
    wait_for("gas breaker trip", lambda: value(scrape(risk_port), "alphapulse_risk_breaker_trips_total",
                                               breaker="gas_price") == 1, 20)
    rk = scrape(risk_port)
    assert value(rk, "alphapulse_messages_in_total", domain="market_data") >= 301
    assert value(rk, "alphapulse_messages_out_total", domain="execution") >= 1  # the EmergencyStop
    assert value(rk, "alphapulse_risk_message_to_stop_seconds_count") >= 1
    assert value(rk, "alphapulse_risk_tripped") >= 1

    md = scrape(relay_ports[Domain.MARKET_DATA])
    assert value(md, "alphapulse_messages_in_total", domain="market_data") >= 301
    assert value(md, "alphapulse_messages_out_total", domain="market_data") >= 301  # risk consumed them
    assert value(md, "alphapulse_relay_consumers", domain="market_data") >= 1
    assert value(md, "alphapulse_relay_head_seq", domain="market_data") >= 301
    ex = scrape(relay_ports[Domain.EXECUTION])
    assert value(ex, "alphapulse_messages_in_total", domain="execution") >= 1
    # every relay domain answers and names itself
    for dom in DOMAINS:
        assert value(scrape(relay_ports[dom]), "alphapulse_process_info", process=f"relay-{dom.name.lower()}") == 1
    # each process keeps collection pauses off its path (runtime.gc_keeper): the relay its own keeper from
    # start-up, risk the process main's once settled; one keeper each, one round counted per freeze
    wait_for("risk's gc keeper froze", lambda: value(scrape(risk_port), "alphapulse_gc_frozen_objects") > 0, 20)
    for port in (risk_port, relay_ports[Domain.MARKET_DATA]):
        m = scrape(port)
        assert value(m, "alphapulse_gc_frozen_objects") > 1000
        assert value(m, "alphapulse_gc_keeper_pause_seconds_count") >= 1
