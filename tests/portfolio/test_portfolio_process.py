"""The portfolio process killed with SIGKILL mid-stream restarts with books identical to a run that was
never killed; duplicated and malformed results do not corrupt the books (real relays, real processes)."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import trio
from relay_testkit import relays_in_process, relays_toml, start_cli_process
from risk_testkit import (
    ETHER,
    USDC_ID,
    S,
    reserves,
    result,
    started,
    wait_until,
)
from risk_testkit import (
    signal as signal_msg,
)

from protocol.execution import Outcome
from protocol.header import Domain
from protocol.ids import TokenId
from relays.client import RelayProducer

N = 400  # signals in the stream


def write_config(d: Path, socks: dict[Domain, str]) -> Path:
    cfg = d / "portfolio.toml"
    cfg.write_text(f"""
{relays_toml(socks)}
[start]
market_data = "oldest"

[chains."1"]
valuation_token = "{'0x' + 'c0' * 20}"
wrapped_native = "{'0x' + 'c0' * 20}"
""")
    return cfg


async def start_portfolio(cfg: Path, db: Path, logpath: Path) -> trio.Process:
    return await start_cli_process(logpath, "portfolio", "--config", str(cfg), "--db", str(db), append=True)


def cursor(db: Path, domain: int = Domain.EXECUTION) -> int:
    if not db.exists():
        return 0
    c = sqlite3.connect(db, timeout=5)
    try:
        row = c.execute("SELECT last_seq FROM cursor WHERE domain = ?", (domain,)).fetchone()
    except sqlite3.OperationalError:
        return 0
    finally:
        c.close()
    return row[0] if row else 0


def dump(db: Path) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    c = sqlite3.connect(db)
    out = {t: c.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
           for t in ("balances", "results", "ledger", "rejects", "started", "signals", "prices", "counters")}
    out["rejects"] = [r[1:] for r in out["rejects"]]  # autoincrement ids aside
    c.close()
    return out


def stream() -> list[tuple[Domain, object]]:
    """Signals, starts and results with gas; a few duplicates and malformed results mixed in."""
    out: list[tuple[Domain, object]] = []
    for i in range(1, N + 1):
        t = 1_700_000_000 * 10**9 + i * 10**9
        out.append((Domain.SIGNAL, signal_msg(i, t_ns=t)))
        out.append((Domain.EXECUTION, started(i, t_ns=t)))
        if i % 7 == 0:
            out.append((Domain.EXECUTION, result(i, outcome=Outcome.REVERTED, gas_used=180_000, gas_price=30 * S, t_ns=t)))
        else:
            out.append((Domain.EXECUTION, result(i, profit=(i % 13 - 4) * 10**15, gas_used=150_000 + i,
                                                 gas_price=20 * S + i, t_ns=t)))
        if i % 50 == 0:  # the same result again: a duplicate
            out.append((Domain.EXECUTION, out[-1][1]))
        if i % 61 == 0:  # malformed: a second, different outcome; a profit token on another chain; profit on a revert
            out.append((Domain.EXECUTION, result(i, outcome=Outcome.EXECUTED, profit=10 * ETHER, t_ns=t)))
            out.append((Domain.EXECUTION, result(10_000 + i, profit=ETHER, token=TokenId.of(5, "0x" + "c0" * 20), t_ns=t)))
            out.append((Domain.EXECUTION, result(20_000 + i, outcome=Outcome.REVERTED, profit=ETHER, t_ns=t)))
        if i % 20 == 0:
            out.append((Domain.MARKET_DATA, reserves(1000 * ETHER, (2_000_000 + i) * 10**6, t_ns=t)))
    return out


async def test_kill9_during_stream_restarts_with_identical_books(short_dir: Path) -> None:
    msgs = stream()
    async with relays_in_process(short_dir) as socks:
        cfg = write_config(short_dir, socks)
        db_a, db_b = short_dir / "a" / "books.sqlite", short_dir / "b" / "books.sqlite"
        a = await start_portfolio(cfg, db_a, short_dir / "a.log")
        b = await start_portfolio(cfg, db_b, short_dir / "b.log")
        kills = 0
        seen = 0
        try:
            async with RelayProducer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], source_id=51) as ex, \
                    RelayProducer.connect(Domain.SIGNAL, socks[Domain.SIGNAL], source_id=52) as sg, \
                    RelayProducer.connect(Domain.MARKET_DATA, socks[Domain.MARKET_DATA], source_id=53) as md:
                prod = {Domain.EXECUTION: ex, Domain.SIGNAL: sg, Domain.MARKET_DATA: md}
                kill_at = {len(msgs) // 3, 2 * len(msgs) // 3}
                for k, (dom, m) in enumerate(msgs):
                    await prod[dom].publish(m.tlvs, event_time_ns=m.event_time_ns,  # type: ignore[attr-defined]
                                            receive_time_ns=m.receive_time_ns)  # type: ignore[attr-defined]
                    if k % 25 == 0:
                        await trio.sleep(0.01)  # a stream, not one burst
                    if k in kill_at:
                        # make sure A is mid-stream, then SIGKILL it by PID and restart it
                        # (the restarted A must have applied something new first)
                        await wait_until(lambda s=seen: cursor(db_a) > s, 20)
                        os.kill(a.pid, signal.SIGKILL)
                        await a.wait()
                        kills += 1
                        seen = cursor(db_a)
                        print(f"\nkilled portfolio A (pid {a.pid}) at execution seq {seen}")
                        a = await start_portfolio(cfg, db_a, short_dir / "a.log")
                for p in prod.values():
                    await p.flush()
                head = ex.last_source_seq
            await wait_until(lambda: cursor(db_a) >= head and cursor(db_b) >= head, 30)
            await trio.sleep(0.3)  # let the other relays' tails land too
            await wait_until(lambda: dump(db_a) == dump(db_b), 10)
        finally:
            for p in (a, b):
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGKILL)
                    await p.wait()
    assert kills == 2
    da, db = dump(db_a), dump(db_b)
    assert da == db
    # the books themselves are right
    results = {r[0]: r for r in da["results"]}
    assert len(results) == N  # one result per signal; rejects and duplicates not booked
    assert len(da["rejects"]) == 3 * (N // 61)
    assert dict(da["counters"]) == {"duplicate_results": N // 50}
    want_weth = sum((i % 13 - 4) * 10**15 for i in range(1, N + 1) if i % 7)
    want_gas = sum(180_000 * 30 * S if i % 7 == 0 else (150_000 + i) * (20 * S + i) for i in range(1, N + 1))
    bal = {int(t): int(amt) for t, _, amt in da["balances"]}
    assert bal[int(TokenId.of(1, "0x" + "c0" * 20))] == want_weth
    assert bal[1 << 160] == -want_gas
    assert USDC_ID not in bal


async def test_a_fresh_start_from_now_is_durable_across_a_restart_before_the_first_message(short_dir: Path) -> None:
    """Found by ``alphapulse chaos``: books that start a relay from now and die before its first message
    restarted from a later 'now', so what was published while they were down was never booked."""
    from portfolio.config import load_config
    from portfolio.process import run

    async with relays_in_process(short_dir) as socks:
        path = write_config(short_dir, socks)
        path.write_text(path.read_text().replace('market_data = "oldest"', 'execution = "now"'))
        config = load_config(path)
        db = short_dir / "books.sqlite"
        async with trio.open_nursery() as n:  # the first run subscribes, then dies before any result
            await n.start(run, config, db)
            n.cancel_scope.cancel()
        async with RelayProducer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], source_id=51) as ex:
            await ex.publish(result(7, profit=3 * 10**15).tlvs)  # published while the books are down
            await ex.flush()
        async with trio.open_nursery() as n:
            await n.start(run, config, db)
            await wait_until(lambda: cursor(db) >= 1, 5)
            n.cancel_scope.cancel()
    assert [r[0] for r in dump(db)["results"]] == [7]


async def test_cex_fills_from_the_execution_relay_reach_the_books(short_dir: Path) -> None:
    """The process books CEX-DEX legs as the executor publishes them: each fill, then the result with its
    LegReport, off a real execution relay."""
    from risk_testkit import cex_dex_result, cex_fill

    from portfolio.books import Books, open_db
    from portfolio.config import load_config
    from portfolio.process import run
    from protocol.ids import Venue

    async with relays_in_process(short_dir) as socks:
        config = load_config(write_config(short_dir, socks))
        db_path = short_dir / "books.sqlite"
        async with trio.open_nursery() as n:
            await n.start(run, config, db_path)
            async with RelayProducer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], source_id=30,
                                             name="executor") as p:
                for m in (cex_fill(1, 2, ETHER, 2100 * 10**6),
                          cex_dex_result(1, Outcome.EXECUTED, cex_quote=2100 * 10**6, dex_base=ETHER,
                                         dex_quote=2000 * 10**6, profit=100 * 10**6)):
                    await p.publish(list(m.tlvs))
                await p.flush()
            reader = Books(open_db(db_path))
            await wait_until(lambda: reader.db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1)
            assert reader.cex_balances() == {(Venue.BINANCE, "ETH"): -ETHER, (Venue.BINANCE, "USDT"): 2100 * 10**6}
            assert reader.balances() == {int(TokenId(cex_dex_result(1, 1).tlvs[1].base_token)): ETHER,
                                         int(USDC_ID): -2000 * 10**6}
            reader.db.close()
            n.cancel_scope.cancel()


async def test_cross_chain_books_survive_kill9_mid_transfer_and_republished_records(short_dir: Path) -> None:
    """The portfolio process (a real subprocess, real relays) books a cross-chain trade and a bridge transfer per
    chain; killed with SIGKILL while the transfer is in flight, restarted, then fed the completion and the
    executor's and rebalancer's republished records (after their own restarts): every chain's balance to the wei,
    nothing twice."""
    from risk_testkit import CHAIN_B, USDC_B, WETH_B, bridge, chain_leg, cross_chain_result

    from portfolio.books import Books, native_token, open_db
    from protocol.execution import BridgeTransferState as BT

    WETH_1 = TokenId.of(1, "0x" + "c0" * 20)
    legs = (chain_leg(9, 0, chain=1, token_in=USDC_ID, token_out=WETH_1, amount_in=2000 * 10**6, amount_out=ETHER,
                      gas_used=150_000, gas_price=2 * S),
            chain_leg(9, 1, chain=CHAIN_B, token_in=WETH_B, token_out=USDC_B, amount_in=ETHER,
                      amount_out=2030 * 10**6, gas_used=120_000, gas_price=S))
    trade = cross_chain_result(9, legs, profit=30 * 10**6)
    sent = bridge(1, BT.SENT, amount=1000 * 10**6, nonce=0, gas=2 * 10**14)
    done = bridge(1, BT.COMPLETED, amount=1000 * 10**6, fee=500_000, nonce=0, gas=2 * 10**14)
    async with relays_in_process(short_dir) as socks:
        cfg = write_config(short_dir, socks)
        db = short_dir / "books.sqlite"
        p = await start_portfolio(cfg, db, short_dir / "p.log")
        try:
            async with RelayProducer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], source_id=61) as ex:
                for m in (trade, sent):
                    await ex.publish(m.tlvs)
                await ex.flush()
                await wait_until(lambda: cursor(db) >= 2, 20)
                os.kill(p.pid, signal.SIGKILL)
                await p.wait()
                for m in (done, trade, sent, done):  # the completion, then everything again
                    await ex.publish(m.tlvs)
                await ex.flush()
                head = ex.last_source_seq
            p = await start_portfolio(cfg, db, short_dir / "p.log")
            await wait_until(lambda: cursor(db) >= head, 20)
        finally:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                await p.wait()
    b = Books(open_db(db))
    try:
        assert b.balances_by_chain() == {
            1: {int(USDC_ID): -2000 * 10**6 + 1000 * 10**6 - 500_000, int(WETH_1): ETHER,
                native_token(1): -150_000 * 2 * S},
            CHAIN_B: {int(USDC_B): 2030 * 10**6 - 1000 * 10**6, int(WETH_B): -ETHER,
                      native_token(CHAIN_B): -120_000 * S - 2 * 10**14}}
        assert b.in_flight_by_token() == {}
        assert b.counters() == {"duplicate_results": 1, "duplicate_chain_legs": 2, "duplicate_bridge_transfers": 2}
    finally:
        b.db.close()
