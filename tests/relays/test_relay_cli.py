"""relay-cli as a real subprocess against real relay daemons (subprocesses) on default sockets."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from relay_testkit import ROOT, Procs, wait_listening

from protocol.ids import PoolId, Venue, VenueKind
from protocol.market import V2Reserves
from protocol.message import decode
from protocol.system import EmergencyStop, Resume, StopScope
from protocol.tlv import UnknownTLV
from relays.client import RelayConsumer, RelayProducer

POOL = PoolId.of(1, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20)


def env(run_dir: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), ALPHAPULSE_RUN_DIR=str(run_dir), USER="tester")


def cli(run_dir: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.relay_cli", *args], cwd=ROOT, env=env(run_dir),
                          capture_output=True, text=True, timeout=timeout)


def start_relay(procs: Procs, run_dir: Path, domain: str, *extra: str) -> Path:
    """A relay on its default socket in ``run_dir`` (the documented layout)."""
    sock = run_dir / f"{domain}.sock"
    # Procs.start does not pass ALPHAPULSE_RUN_DIR, so name the same path explicitly
    p = procs.start(f"relay-{domain}", "-m", "tools.cli", "relay", "--domain", domain, "--fsync", "off",
                    "--socket", str(sock), "--data-dir", str(run_dir / "data" / domain), *extra)
    wait_listening(sock, p)
    return sock


async def publish_mixed(sock: Path, n: int) -> None:
    """n messages alternating V2Reserves and an unregistered type 250."""
    async with RelayProducer.connect("market_data", sock, source_id=77, connect_timeout=10) as p:
        for i in range(n):
            if i % 2 == 0:
                await p.publish(V2Reserves(pool=POOL, block_number=100 + i, log_index=i, reserve0=(1 << 100) + i,
                                           reserve1=5 + i))
            else:
                await p.publish(UnknownTLV(type_code=250, body=i.to_bytes(10, "little")))
        await p.flush()


@pytest.fixture
def market(procs: Procs, short_dir: Path) -> Path:
    sock = start_relay(procs, short_dir, "market_data")
    trio.run(publish_mixed, sock, 40)
    return sock


def test_stats_reports_head_and_down_relays(procs: Procs, short_dir: Path, market: Path) -> None:
    start_relay(procs, short_dir, "execution")
    r = cli(short_dir, "stats", "--json")
    assert r.returncode == 3, r.stderr  # the signal relay is not running
    by = {x["domain"]: x for x in json.loads(r.stdout)}
    assert by["market_data"]["up"] and by["market_data"]["stats"]["head_seq"] == 40
    assert by["market_data"]["stats"]["epoch"] >= 1 and "rate_msgs_per_s" in by["market_data"]["stats"]
    assert by["execution"]["up"] and by["execution"]["stats"]["head_seq"] == 0
    assert not by["signal"]["up"]
    assert str(short_dir / "signal.sock") in by["signal"]["error"]
    assert "alphapulse relay --domain signal" in by["signal"]["error"]

    r = cli(short_dir, "stats", "--domain", "market_data")
    assert r.returncode == 0, r.stderr
    assert "head 40" in r.stdout and "epoch" in r.stdout and "consumers (" in r.stdout

    r = cli(short_dir, "stats", "--socket", str(market))  # any socket, domain learned from the relay
    assert r.returncode == 0 and r.stdout.startswith("market_data") and "head 40" in r.stdout

    r = cli(short_dir, "stats", "--socket", str(short_dir / "nope.sock"))
    assert r.returncode == 3 and "DOWN" in r.stdout and "does not exist" in r.stdout


def test_tail_json_and_type_filter(short_dir: Path, market: Path) -> None:
    r = cli(short_dir, "tail", "--domain", "market_data", "--from", "1", "--count", "40", "--json")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 40
    for i, line in enumerate(lines):
        obj = json.loads(line)
        msg = decode(bytes.fromhex(obj["raw"]))
        assert obj["domain_seq"] == msg.domain_seq == i + 1
        assert obj["source_id"] == 77 and obj["tlvs"][0]["type"] == (4 if i % 2 == 0 else 250)
    first = json.loads(lines[0])["tlvs"][0]
    assert first["name"] == "V2Reserves"
    assert first["fields"]["pool"]["address"] == POOL.address and first["fields"]["pool"]["venue"] == 1
    assert first["fields"]["reserve0"] == str(1 << 100)  # beyond 2**53: a string

    for t in ("v2reserves", "4"):
        r = cli(short_dir, "tail", "--domain", "market_data", "--from", "1", "--count", "3", "--type", t)
        assert r.returncode == 0, r.stderr
        out = r.stdout.splitlines()
        assert len(out) == 3 and all("V2Reserves(pool=1:UNISWAP_V2:0x" + "a1" * 20 in x for x in out)
        assert [x.split()[0] for x in out] == ["#1", "#3", "#5"]

    r = cli(short_dir, "tail", "--domain", "market_data", "--type", "NoSuchType", "--count", "1")
    assert r.returncode == 2 and "NoSuchType" in r.stderr
    r = cli(short_dir, "tail", "--domain", "market_data", "--from", "41", "--count", "1", "--timeout", "0.5")
    assert r.returncode == 4 and "0 of 1" in r.stderr


def test_check_contiguous_beyond_head_and_down(short_dir: Path, market: Path) -> None:
    r = cli(short_dir, "check", "--domain", "market_data", "--from", "1", "--count", "40")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("OK market_data 1..40: 40 messages, contiguous")
    r = cli(short_dir, "check", "--domain", "market_data", "--from", "oldest", "--count", "40")  # as tail takes it
    assert r.returncode == 0 and r.stdout.startswith("OK market_data 1..40"), r.stdout + r.stderr
    r = cli(short_dir, "check", "--domain", "market_data", "--from", "35", "--count", "10")
    assert r.returncode == 1 and r.stdout.startswith("FAIL") and "beyond the head" in r.stdout
    r = cli(short_dir, "check", "--domain", "signal", "--from", "1", "--count", "1")
    assert r.returncode == 3 and "no relay is running" in r.stderr and "alphapulse relay --domain signal" in r.stderr


def test_check_and_gaps_after_retention(procs: Procs, short_dir: Path) -> None:
    sock = start_relay(procs, short_dir, "market_data", "--segment-bytes", "64K", "--retention-bytes", "128K",
                       "--ring-size", "64K")
    lg = procs.loadgen(sock, rate=0, count=4500)
    assert lg.wait(30) == 0
    stats = json.loads(cli(short_dir, "stats", "--json", "--domain", "market_data").stdout)[0]["stats"]
    oldest = stats["oldest_seq"]
    assert oldest > 1
    r = cli(short_dir, "check", "--domain", "market_data", "--from", "1", "--count", "100")
    assert r.returncode == 1 and "not retained" in r.stdout, r.stdout
    r = cli(short_dir, "check", "--domain", "market_data", "--from", str(oldest), "--count", str(4501 - oldest))
    assert r.returncode == 0, r.stdout
    r = cli(short_dir, "check", "--domain", "market_data", "--from", "oldest", "--count", str(4501 - oldest))
    assert r.returncode == 0 and r.stdout.startswith(f"OK market_data {oldest}..4500"), r.stdout

    # the archiver records the retention gap; relay-cli gaps shows it and exits 1
    out = short_dir / "arch"
    p = procs.start("archiver", "-m", "tools.cli", "archive", "--domain", "market_data", "--socket", str(sock),
                    "--out", str(out), "--from", "1", "--until", "4500")
    assert p.wait(30) == 0
    r = cli(short_dir, "gaps", "--domain", "market_data", "--archive", str(out))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"retained {oldest}..4500" in r.stdout and f"gap (resync) 1..{oldest - 1}" in r.stdout
    r = cli(short_dir, "gaps", "--domain", "market_data", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["stats"]["oldest_seq"] == oldest
    assert "Resync" in cli(short_dir, "gaps", "--help").stdout


async def test_stop_and_resume_reach_an_execution_consumer(procs: Procs, short_dir: Path) -> None:
    sock = start_relay(procs, short_dir, "execution")
    got = []
    with trio.fail_after(40):
        async with RelayConsumer.connect("execution", sock, from_seq=None, connect_timeout=10) as c:
            await trio.sleep(0.2)  # subscribed from now
            stop = await trio.run_process(
                [sys.executable, "-m", "tools.relay_cli", "stop", "--scope", "venue", "--value", "UNISWAP_V3",
                 "--reason", "price feed stale"], cwd=ROOT, env=env(short_dir), capture_stdout=True,
                capture_stderr=True, check=False)
            assert stop.returncode == 0, stop.stderr
            resume = await trio.run_process(
                [sys.executable, "-m", "tools.relay_cli", "resume", "--scope", "venue", "--value", "3",
                 "--reason", "feed back", "--sender", "ops"], cwd=ROOT, env=env(short_dir), capture_stdout=True,
                capture_stderr=True, check=False)
            assert resume.returncode == 0, resume.stderr
            async for m in c:
                got.append(m)
                if len(got) == 2:
                    break
    s, r = got[0].tlvs[0], got[1].tlvs[0]
    assert isinstance(s, EmergencyStop) and isinstance(r, Resume)
    assert (s.scope, s.scope_value, s.reason, s.sender) == (StopScope.VENUE, 3, "price feed stale", "relay-cli@tester")
    assert (r.scope, r.scope_value, r.stop_id, r.sender) == (StopScope.VENUE, 3, 0, "ops")
    assert b"acknowledged" in stop.stdout and str(s.stop_id).encode() in stop.stdout
    audit = (short_dir / "relay-cli.log").read_text().splitlines()
    assert len(audit) == 2 and "EmergencyStop" in audit[0] and "Resume" in audit[1]


def test_usage_errors_and_help(short_dir: Path) -> None:
    r = cli(short_dir, "--help")
    assert r.returncode == 0 and "exit status" in r.stdout
    r = cli(short_dir, "stop", "--scope", "chain", "--reason", "x")
    assert r.returncode == 2 and "--value" in r.stderr
    r = cli(short_dir, "stop", "--scope", "all", "--reason", "x", "--timeout", "0.5")
    assert r.returncode == 3 and "execution" in r.stderr
    r = cli(short_dir, "tail", "--domain", "nope")
    assert r.returncode == 2


def test_tail_prints_enum_names_beside_the_codes() -> None:
    """``outcome=EXECUTED``, not ``outcome=1``; the JSON keeps the code and adds ``outcome_name``."""
    from protocol.execution import ExecutionResult, Outcome
    from protocol.ids import TokenId
    from protocol.message import Message
    from tools.relay_cli import fmt_tlv, json_message

    res = ExecutionResult(signal_id=7, chain_id=1, outcome=Outcome.STALE, block_number=5, tx_hash=b"\0" * 32,
                          gas_used=0, effective_gas_price=0, expected_profit=3, realized_profit=0,
                          profit_token=TokenId.of(1, "0x" + "c3" * 20), reason="too old")
    assert "outcome=STALE" in fmt_tlv(res)
    assert "outcome=99" in fmt_tlv(dataclasses.replace(res, outcome=99))  # a newer writer's code: the number
    reserves = V2Reserves(pool=POOL, block_number=1, log_index=0, reserve0=1, reserve1=2)
    assert "UNISWAP_V2" in fmt_tlv(reserves)
    msg = Message(domain=3, source_id=1, source_seq=1, domain_seq=1, event_time_ns=0, receive_time_ns=0, flags=0,
                  tlvs=(res,))
    fields = json_message(msg, b"")["tlvs"][0]["fields"]
    assert fields["outcome"] == 3 and fields["outcome_name"] == "STALE"


def test_tail_adds_words_for_tokens_the_deployment_names() -> None:
    from market.display import PoolInfo, Registry, TokenInfo
    from protocol.ids import TokenId
    from protocol.message import Message
    from tools.relay_cli import fmt_message, json_message

    reg = Registry(tokens={int(TokenId.of(1, "0x" + "b2" * 20)): TokenInfo(symbol="WETH", decimals=18),
                           int(TokenId.of(1, "0x" + "c3" * 20)): TokenInfo(symbol="USDC", decimals=6)},
                   pools={(1, "0x" + "a1" * 20): PoolInfo(venue="uniswap_v2_a", fee_pips=3000)})
    rec = V2Reserves(pool=POOL, block_number=1, log_index=0, reserve0=10 * 10**18, reserve1=20_040 * 10**6)
    msg = Message(domain=1, source_id=1, source_seq=1, domain_seq=1, tlvs=(rec,))
    line = fmt_message(msg, reg)
    assert "reserve0=10000000000000000000" in line  # the exact fields stay
    assert line.endswith("# WETH/USDC 0.3% V2 (uniswap_v2_a); 10.000000 WETH + 20,040.000000 USDC; "
                         "2,004.00 USDC per WETH"), line
    fields = json_message(msg, b"", reg)["tlvs"][0]
    assert fields["fields"]["reserve1"] == 20_040 * 10**6 and "2,004.00 USDC per WETH" in fields["readable"]
    assert " # " not in fmt_message(msg, Registry())  # nothing known: nothing added


def test_verify_checks_a_data_directory_offline(short_dir: Path) -> None:
    """relay-cli verify DIR: every segment's frames and sidecar, without a relay (issue 17)."""
    from relay_testkit import frame

    from protocol.header import Domain, stamp_domain_seq
    from relays.core.journal import Journal

    data = short_dir / "data"
    j = Journal(data / "journal", segment_bytes=4096, retention_bytes=1 << 20)
    j.recover()
    for s in range(1, 201):
        f = bytearray(frame(s, domain=Domain.MARKET_DATA))
        stamp_domain_seq(f, 0, s)
        j.append_frames(bytes(f), s, s)
    j.close()
    ok = cli(short_dir, "verify", str(data))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "no damage" in ok.stdout and "sequences 1.." in ok.stdout
    seg = sorted((data / "journal").glob("*.seg"))[0]
    raw = bytearray(seg.read_bytes())
    raw[64 * 9 + 58] ^= 1
    seg.write_bytes(raw)
    bad = cli(short_dir, "verify", str(data))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "DAMAGED" in bad.stdout and "lost sequences 10..10" in bad.stdout and "checksum" in bad.stdout
    assert cli(short_dir, "verify", str(short_dir / "nope")).returncode == 2


def test_stats_shows_each_consumers_latency_class() -> None:
    from tools.relay_cli import _consumer_line

    row = {"name": "strategy", "latency": "critical", "next_seq": 41, "lag": 0, "live": True, "types": []}
    assert _consumer_line(row).split()[:2] == ["strategy", "critical"]
    del row["latency"]  # a relay from before latency classes: every consumer was served as normal
    assert _consumer_line(row).split()[:2] == ["strategy", "normal"]
