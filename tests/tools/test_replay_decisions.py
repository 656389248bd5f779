"""Decision equality: a live session, archived, replayed into fresh relays, makes the same decisions.

(a) Live: three real processes for the bus (relay daemons for market_data and signal), the real
    strategy process (``alphapulse strategy --config``), and two archivers (market_data and
    signal). The test publishes a deterministic synthetic market (V2 and V3 snapshots, then
    ``Sync``/``V3Swap`` updates over 30 blocks, with block headers for gas) that gives rise to
    many two-pool and triangular signals through V2 and V3 pools.
(b) Replay: FRESH relays, a FRESH strategy process, and ``alphapulse replay ARCHIVE`` of the
    archived market data, paced (``--speed``) so pacing is part of what is tested.
(c) The signals of (b) are compared with the archived signals of (a), decision by decision.

What is compared and what may differ (see ``strategy/engine.py`` and ``strategy/process.py``):
every field of ``SignalIdentity`` but ``signal_id``, all of ``Economics`` and ``ArbitragePath``
(pools, kinds, tokens, exact amounts), the block number, the header's ``event_time_ns``,
``source_id`` and ``source_seq``, and of ``TraceContext`` the flags, parent span and
``origin_ns`` (the market-data message's receive time, which the replay preserves).
Not compared, because the process derives them from the clock or from the replay's own
producer identity: ``signal_id`` and ``span_id`` (seeded from the wall clock at start; the
test checks they are consecutive within each run instead), ``trace_id`` (the causing message's
``source_id << 64 | source_seq``: the replay publishes under its own source id) and the signal's
``receive_time_ns`` (when the strategy produced it).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from relay_testkit import Procs, wait_for

import protocol as P
from market.amm.tick_math import get_sqrt_ratio_at_tick
from protocol.header import FLAG_REPLAYED
from protocol.market import TickLiquidity
from relays.archiver import read_archive
from relays.client import RelayConsumer, RelayProducer, request_stats
from tools.deployment_writer import strategy_doc, write_toml

ROOT = Path(__file__).resolve().parents[2]
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
DAI = "0x6b175474e89094c44da98b954eedeac495271d0f"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
SOURCE_ID = 4242
MARKET_SPAN_S = 1.5  # the live market is published over ~1.5 s of wall time
SPEED = 3.0  # the replay runs at 3x that pace


def _pool(n: int, venue: int, kind: int, a: str, b: str) -> P.PoolId:
    return P.PoolId.of(1, venue, kind, f"0x{n:040x}", a, b)


V2 = P.VenueKind.UNISWAP_V2
V3 = P.VenueKind.UNISWAP_V3
WD_UNI = _pool(0xA1, P.Venue.UNISWAP_V2, V2, WETH, DAI)
WD_SUSHI = _pool(0xB2, P.Venue.SUSHISWAP, V2, WETH, DAI)
WD_V3 = _pool(0xC3, P.Venue.UNISWAP_V3, V3, WETH, DAI)
DU = _pool(0xD4, P.Venue.UNISWAP_V2, V2, DAI, USDC)
UW = _pool(0xE5, P.Venue.UNISWAP_V2, V2, USDC, WETH)


def market_stream(blocks: int = 30, seed: int = 5) -> list[tuple[P.TLV, ...]]:
    """A deterministic market: snapshots at block 100, then 1-3 updates per block and a header.

    Token order: DAI (0x6b..) < USDC (0xa0..) < WETH (0xc0..), so DAI is token0 of the WETH/DAI
    pools, USDC token0 of USDC/WETH. All amounts are integers; prices move by up to +-3 %.
    """
    rng = random.Random(seed)

    def header(b: int) -> P.BlockHeader:
        return P.BlockHeader(chain_id=1, number=b, timestamp=1_704_412_800 + 12 * (b - 100), gas_limit=30_000_000,
                             gas_used=15_000_000, hash=b.to_bytes(32, "big"), parent_hash=(b - 1).to_bytes(32, "big"),
                             base_fee=20 * 10**9 + rng.randrange(10**9), priority_fee=10**9)

    def v2(pool: P.PoolId, r0: int, r1: int) -> P.PoolSnapshot:
        return P.PoolSnapshot(pool=pool, block_number=100, fee_ppm=3000, tick_spacing=0, reserve0=r0, reserve1=r1,
                              sqrt_price_x96=0, tick=0, liquidity=0, ticks=())

    liquidity = 10**23
    tick = -76_020  # ~1/2000 WETH per DAI, a multiple of the spacing (60)
    out: list[tuple[P.TLV, ...]] = [
        (header(100),),
        (v2(WD_UNI, 2000 * 10**22, 10**22),),
        (v2(WD_SUSHI, 2000 * 10**21, 10**21),),
        (P.PoolSnapshot(pool=WD_V3, block_number=100, fee_ppm=3000, tick_spacing=60, reserve0=10**26,
                        reserve1=5 * 10**22, sqrt_price_x96=get_sqrt_ratio_at_tick(tick) + 1, tick=tick,
                        liquidity=liquidity,
                        ticks=(TickLiquidity(tick=-887_220, liquidity_net=liquidity),
                               TickLiquidity(tick=887_220, liquidity_net=-liquidity))),),
        (v2(DU, 10**24, 10**12),),
        (v2(UW, 2000 * 500 * 10**6, 500 * 10**18),),
    ]
    for b in range(101, 101 + blocks):
        out.append((header(b),))
        log_index = 0
        for _ in range(rng.randrange(1, 4)):
            k = rng.randrange(4)
            log_index += rng.randrange(1, 5)
            bps = 10_000 + rng.randrange(-300, 301)
            if k < 2:
                pool, weth = (WD_UNI, 10**22) if k == 0 else (WD_SUSHI, 10**21)
                out.append((P.V2Reserves(pool=pool, block_number=b, log_index=log_index,
                                         reserve0=2000 * weth * bps // 10_000, reserve1=weth),))
            elif k == 2:
                step = rng.randrange(-5, 6) * 60
                tick += step
                sign = 1 if step < 0 else -1  # price of token0 falls: DAI went in
                out.append((P.V3Swap(pool=WD_V3, block_number=b, log_index=log_index, tx_hash=rng.randbytes(32),
                                     amount0=sign * 10**21, amount1=-sign * 5 * 10**17,
                                     sqrt_price_x96=get_sqrt_ratio_at_tick(tick) + 1, liquidity=liquidity,
                                     tick=tick),))
            else:
                out.append((P.V2Reserves(pool=UW, block_number=b, log_index=log_index,
                                         reserve0=2000 * 500 * 10**6 * bps // 10_000, reserve1=500 * 10**18),))
    return out


def strategy_config(md: Path, sig: Path) -> dict[str, Any]:
    return strategy_doc(name="dex-arb", strategy_id=1, source_id=20, max_hops=3, chain_id=1, gas_token=WETH,
                        min_net_profit=10**15, relays={"market_data": str(md), "signal": str(sig)},
                        coalesce_max=1)  # each message decided alone: a decision never depends on what arrived together


# --------------------------------------------------------------------------- processes (by PID)


def stats(domain: str, sock: Path) -> dict[str, Any]:
    async def ask() -> dict[str, Any]:
        with trio.fail_after(5):
            return await request_stats(domain, sock)

    return trio.run(ask)


def wait_settled(sock: Path, expected: int | None, timeout: float = 30.0) -> int:
    """Signal relay head once it reached ``expected`` (or, when None, stopped moving for 1.5 s)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        head = stats("signal", sock)["head_seq"]
        if head != last:
            last, since = head, time.monotonic()
        if (expected is not None and head >= expected and time.monotonic() - since > 0.5) or (
                expected is None and time.monotonic() - since > 1.5):
            return head
        time.sleep(0.1)
    return last


def consume_all(domain: str, sock: Path, count: int) -> list[P.Message]:
    async def go() -> list[P.Message]:
        out: list[P.Message] = []
        with trio.fail_after(10):
            async with RelayConsumer.connect(domain, sock, from_seq=0, name="test") as c:
                async for m in c:
                    out.append(m)
                    if len(out) >= count:
                        break
        return out

    return trio.run(go)


def publish_market(sock: Path, stream: list[tuple[P.TLV, ...]]) -> None:
    async def go() -> None:
        async with RelayProducer.connect("market_data", sock, source_id=SOURCE_ID, name="synthetic-market",
                                         connect_timeout=10) as p:
            t0 = trio.current_time()
            step = MARKET_SPAN_S / len(stream)
            for i, tlvs in enumerate(stream):
                await trio.sleep_until(t0 + i * step)
                # event time: the block's timestamp (headers) or the previous one; receive time: now
                await p.publish(tlvs, event_time_ns=1_704_412_800 * 10**9 + i * 10**6)
            await p.flush()

    trio.run(go)


# --------------------------------------------------------------------------- comparison


def decision(sig: P.Message) -> dict[str, Any]:
    """Everything about a signal that must not depend on the clock or on who published the market data."""
    ident = sig.find(P.SignalIdentity)
    econ = sig.find(P.Economics)
    path = sig.find(P.ArbitragePath)
    trace = sig.find(P.TraceContext)
    assert ident is not None and econ is not None and path is not None and trace is not None
    return {
        "header": (sig.source_id, sig.source_seq, sig.event_time_ns, sig.flags),
        "identity": (ident.strategy_id, ident.kind, ident.confidence_bps, ident.chain_id, ident.block_number,
                     ident.strategy),
        "economics": econ,
        "path": path,
        "trace": (trace.flags, trace.parent_span_id, trace.origin_ns),
        "tlv_types": [type(t).__name__ for t in sig.tlvs],
    }


def _ids_consecutive(sigs: list[P.Message]) -> bool:
    ids = [s.find(P.SignalIdentity).signal_id for s in sigs]  # type: ignore[union-attr]
    spans = [s.find(P.TraceContext).span_id for s in sigs]  # type: ignore[union-attr]
    return ids == list(range(ids[0], ids[0] + len(ids))) and spans == ids


@pytest.mark.timeout(120)
def test_replayed_archive_makes_the_same_decisions(short_dir: Path) -> None:
    if not (ROOT / "strategy" / "process.py").exists():  # pragma: no cover - the process is part of the build
        pytest.skip("strategy/process.py (alphapulse strategy) is not in this build")
    stream = market_stream()
    archive = short_dir / "archive"
    procs = Procs(short_dir)
    try:
        # ---- (a) the live session
        md, sig = short_dir / "md.sock", short_dir / "sig.sock"
        procs.relay(md, short_dir / "data-relay-md", "--fsync", "off", name="relay-md")
        procs.relay(sig, short_dir / "data-relay-sig", "--fsync", "off", domain="signal", name="relay-sig")
        write_toml(short_dir / "strategy.toml", strategy_config(md, sig))
        strat = procs.cli("strategy", "strategy", "--config", str(short_dir / "strategy.toml"))
        arch_md = procs.cli("archive-md", "archive", "--domain", "market_data", "--out", str(archive), "--socket",
                              str(md), "--from", "oldest", "--flush-seconds", "0.2")
        arch_sig = procs.cli("archive-sig", "archive", "--domain", "signal", "--out", str(archive), "--socket",
                               str(sig), "--from", "oldest", "--flush-seconds", "0.2")
        # the strategy drops "old news" (market data received > 2 s ago): start the market once it listens
        wait_for("the strategy and the archiver to subscribe",
                 lambda: len(stats("market_data", md)["consumers"]) >= 2 and stats("signal", sig)["producers"], 30,
                 0.1)
        publish_market(md, stream)
        live_count = wait_settled(sig, None)
        assert live_count >= 20, f"the synthetic market gave only {live_count} signals\n{procs.log('strategy')}"
        wait_for("the archivers to flush", lambda: _archived(archive, "signal") >= live_count
                 and _archived(archive, "market_data") >= len(stream), 15, 0.1)
        for p in (arch_md, arch_sig, strat):
            assert procs.end(p) == 0
        live = list(read_archive(archive, "signal"))
        archived_md = list(read_archive(archive, "market_data"))
        assert len(live) == live_count and len(archived_md) == len(stream)
        assert [m.tlvs for m in archived_md] == stream

        # ---- (b) fresh relays, a fresh strategy, the archived market data replayed
        md2, sig2 = short_dir / "md2.sock", short_dir / "sig2.sock"
        procs.relay(md2, short_dir / "data-relay-md2", "--fsync", "off", name="relay-md2")
        procs.relay(sig2, short_dir / "data-relay-sig2", "--fsync", "off", domain="signal", name="relay-sig2")
        write_toml(short_dir / "strategy2.toml", strategy_config(md2, sig2))
        strat2 = procs.cli("strategy2", "strategy", "--config", str(short_dir / "strategy2.toml"))
        wait_for("the fresh strategy to connect",
                 lambda: len(stats("market_data", md2)["consumers"]) >= 1 and stats("signal", sig2)["producers"], 30,
                 0.1)
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "tools.cli", "replay", str(archive), "--socket", str(md2), "--speed", str(SPEED)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        took = time.monotonic() - t0
        assert out.returncode == 0, out.stderr
        assert f"done: {len(stream)} messages (domain_seq 1..{len(stream)})" in out.stderr
        assert "no gaps" in out.stderr
        # paced: the live market spanned ~MARKET_SPAN_S of receive time, replayed at SPEED
        m = re.search(r"in ([0-9.]+) s .*recorded span ([0-9.,]+) s", out.stderr)
        assert m, out.stderr
        elapsed, span = float(m.group(1)), float(m.group(2).replace(",", ""))
        assert span >= MARKET_SPAN_S * 0.9 and span / SPEED * 0.95 <= elapsed <= took, (span, elapsed, took)
        replay_count = wait_settled(sig2, live_count)
        replayed = consume_all("signal", sig2, replay_count)
        assert procs.end(strat2) == 0

        # what the fresh strategy consumed really was the replay: flag set, times preserved
        replayed_md = consume_all("market_data", md2, len(stream))
        assert all(m.flags & FLAG_REPLAYED for m in replayed_md)
        assert [(m.tlvs, m.event_time_ns, m.receive_time_ns) for m in replayed_md] == [
            (m.tlvs, m.event_time_ns, m.receive_time_ns) for m in archived_md]

        # ---- (c) decision by decision
        assert len(replayed) == len(live), (len(replayed), len(live))
        for i, (a, b) in enumerate(zip(live, replayed)):
            assert decision(a) == decision(b), f"decision #{i} differs:\nlive   {a}\nreplay {b}"
        print(f"{len(live)} live signals, {len(replayed)} replayed, replay took {took:.2f} s")
        kinds = {s.find(P.SignalIdentity).kind for s in live}  # type: ignore[union-attr]
        assert kinds == {P.SignalKind.TWO_POOL, P.SignalKind.CYCLE}
        assert any(h.venue_kind == V3 for s in live for h in s.find(P.ArbitragePath).hops)  # type: ignore[union-attr]
        # what may differ, and only in the way the engine derives it
        assert _ids_consecutive(live) and _ids_consecutive(replayed)
        for a, b in zip(live, replayed):
            ta, tb = a.find(P.TraceContext), b.find(P.TraceContext)
            assert ta.trace_id >> 64 == SOURCE_ID and tb.trace_id >> 64 == 0x5241  # type: ignore[union-attr]
    except BaseException:
        for name in procs.named:
            sys.stderr.write(f"==== {name}\n{procs.log(name)[-3000:]}\n")
        raise
    finally:
        procs.cleanup()


def _archived(root: Path, domain: str) -> int:
    from relays.archiver import last_archived_seq

    return last_archived_seq(root, domain)
