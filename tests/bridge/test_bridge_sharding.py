"""Sharding: two strategy processes, one per chain, consume the same bridged market-data stream;
the signal side sees each opportunity exactly once (README, "Sharding the strategy")."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import trio
from natskit import NatsServer
from relay_testkit import Procs, wait_listening

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from market_builders import DAI, GWEI, WETH, header, md, v2_pool, v2_snapshot  # noqa: E402

import protocol as P  # noqa: E402
from relays.client import RelayConsumer, RelayProducer, request_stats  # noqa: E402

K = 5  # opportunities per chain
SHARDS = {1: 31, 10: 32}  # chain -> the shard's signal source_id


def strategy_toml(path: Path, chain: int, source_id: int, md_sock: Path, sig_sock: Path) -> Path:
    path.write_text(f"""
[strategy]
name = "shard-{chain}"
source_id = {source_id}
max_hops = 2
coalesce_max = 1  # every update its own decision (K opportunities), however the bridge delivers them

[[chains]]
chain_id = {chain}
gas_token = "{WETH}"

[relays]
market_data = "{md_sock}"
signal = "{sig_sock}"
""")
    return path


async def publish(sock: Path) -> None:
    async with RelayProducer.connect("market_data", sock, source_id=77, name="feed") as p:
        for chain in SHARDS:
            await p.publish(md(header(base_fee=20 * GWEI, priority_fee=GWEI, chain=chain)).tlvs)
        for k in range(K):
            for chain in SHARDS:
                a = v2_pool(1, WETH, DAI, chain=chain)
                b = v2_pool(2, WETH, DAI, venue=P.Venue.SUSHISWAP, chain=chain)
                # WETH is 2000 DAI on one pool and 2100 + k on the other: an opportunity per update
                await p.publish((v2_snapshot(a, 2000 * 10**22, 10**22, block=100 + k),
                                 v2_snapshot(b, (2100 + k) * 10**21, 10**21, block=100 + k)))
        await p.flush()


async def collect(sock: Path, want: int, wait_s: float) -> list[P.Message]:
    got: list[P.Message] = []
    async with RelayConsumer.connect("signal", sock, from_seq=0, name="executor-side") as c:
        with trio.move_on_after(wait_s):
            async for msg in c:
                got.append(msg)
                if len(got) == want:
                    break
        with trio.move_on_after(1.5):  # anything beyond the expected count would be a duplicate
            async for msg in c:
                got.append(msg)
    return got


def wait_connected(a_md: Path, b_md: Path, wait_s: float = 60.0) -> None:
    async def names(sock: Path, kind: str) -> set[str]:
        st = await request_stats("market_data", sock)
        return {str(x["name"]).split(":")[0] for x in st[kind]}

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if "bridge-out" in trio.run(names, a_md, "consumers") and {"shard-1", "shard-10"} <= trio.run(
                names, b_md, "consumers") and "bridge-in" in trio.run(names, b_md, "producers"):
            return
        time.sleep(0.2)
    raise AssertionError("bridges and strategies did not connect")


def test_two_strategy_shards_each_opportunity_once(procs: Procs, short_dir: Path, nats: NatsServer) -> None:
    a_md, b_md, b_sig = short_dir / "a-md.sock", short_dir / "b-md.sock", short_dir / "b-sig.sock"
    procs.relay(a_md, short_dir / "a-md")
    procs.relay(b_md, short_dir / "b-md")
    sig = procs.start("relay-signal", "-m", "tools.cli", "relay", "--domain", "signal", "--socket", str(b_sig),
                      "--data-dir", str(short_dir / "b-sig"))
    wait_listening(b_sig, sig)
    for direction, sock in (("out", a_md), ("in", b_md)):
        procs.start(f"bridge-{direction}", "-m", "tools.cli", "bridge", direction, "--domain", "market_data",
                    "--nats", nats.url, "--socket", str(sock))
    for chain, sid in SHARDS.items():
        cfg = strategy_toml(short_dir / f"strategy-{chain}.toml", chain, sid, b_md, b_sig)
        # --max-age-ms 0: this test is about sharding; signal suppression of old news has its own tests
        procs.start(f"strategy-{chain}", "-m", "tools.cli", "strategy", "--config", str(cfg), "--max-age-ms", "0")
    wait_connected(a_md, b_md)
    trio.run(publish, a_md)
    t0 = time.monotonic()
    signals = trio.run(collect, b_sig, K * len(SHARDS), 20.0)
    if len(signals) != K * len(SHARDS):
        md_stats = trio.run(request_stats, "market_data", b_md)
        raise AssertionError(f"{len(signals)} signals after {time.monotonic() - t0:.1f} s; host B market data: "
                             f"head {md_stats['head_seq']}, consumers {md_stats['consumers']}")
    seen = set()
    for s in signals:
        ident = s.find(P.SignalIdentity)
        assert s.source_id == SHARDS[ident.chain_id]  # each chain's opportunities come from its own shard
        key = (ident.chain_id, ident.block_number)
        assert key not in seen, f"opportunity {key} signalled twice"
        seen.add(key)
    assert seen == {(c, 100 + k) for c in SHARDS for k in range(K)}
