"""The strategy process on real relays: the market-data messages its consumer has already received are applied
together and decided on once, on the state after the last (``strategy/process.py``, coalescing); a lone
message is decided at once. Two transactions of one block -- a swap and its reverse, one message each as the
collector publishes them -- never give a signal priced on the state between them."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from market_builders import GWEI, WETH, header, sync, v2_snapshot
from test_strategy_engine import SNAP1, SWAP, WD2

from protocol.header import FLAG_REPLAYED, Domain
from protocol.message import Message
from protocol.signals import DecisionPoint, SignalIdentity
from protocol.system import TraceContext
from relays.client import RelayConsumer, RelayProducer
from relays.server import RelayConfig, serve
from strategy.process import run
from tools.deployment_writer import write_toml

BALANCED = [v2_snapshot(WD2, 2000 * 10**22, 10**22), SNAP1]  # WETH at 2000 DAI on both pairs: nothing to do
REVERSE = sync(WD2, 2000 * 10**22, 10**22, log_index=6)  # block 101's next transaction undoes SWAP
LONE = sync(WD2, 2100 * 10**22, 10**22, block=102, log_index=1)  # a real 5 % gap, alone in its block


async def _signals_after_backlog(short_dir: Path, flags: int = 0, **strategy: int) -> list[Message]:
    """Publish the header, the balanced pools, SWAP and REVERSE (four messages) before the strategy starts, so
    its consumer (from the oldest retained message) receives them in one read; then LONE, on its own. The
    signals published, in order, until the one LONE causes."""
    socks = {d: str(short_dir / f"{d.name.lower()}.sock") for d in (Domain.MARKET_DATA, Domain.SIGNAL)}
    cfg = write_toml(short_dir / "strategy.toml", {
        "strategy": {"name": "burst", "source_id": 20, **strategy},
        "chains": [{"chain_id": 1, "gas_token": WETH}],
        "relays": {"market_data": socks[Domain.MARKET_DATA], "signal": socks[Domain.SIGNAL]},
    })
    out: list[Message] = []
    async with trio.open_nursery() as n:
        for d, sock in socks.items():
            await n.start(serve, RelayConfig(domain=d, socket_path=sock, data_dir=str(short_dir / d.name), fsync="off"))
        async with RelayProducer.connect(Domain.MARKET_DATA, socks[Domain.MARKET_DATA], source_id=7) as producer:
            await producer.publish([header(base_fee=20 * GWEI, priority_fee=GWEI)], flags=flags)
            await producer.publish(BALANCED, flags=flags)
            await producer.publish(SWAP.tlvs, flags=flags)
            await producer.publish([REVERSE], flags=flags)
            await producer.flush()
            await n.start(lambda task_status: run(str(cfg), max_age_ms=0, task_status=task_status))
            async with RelayConsumer.connect(Domain.SIGNAL, socks[Domain.SIGNAL], from_seq=0, name="t") as signals:
                with trio.fail_after(20):
                    # the backlog's signals, if any (none is the point), then LONE's
                    with trio.move_on_after(1.0):
                        async for msg in signals:
                            out.append(msg)
                    await producer.publish([LONE])
                    async for msg in signals:
                        out.append(msg)
                        if msg.find(DecisionPoint).block_number == 102:  # type: ignore[union-attr]
                            break
        n.cancel_scope.cancel()
    return out


@pytest.mark.timeout(60)
async def test_messages_received_together_are_decided_once_on_the_final_state(short_dir: Path) -> None:
    out = await _signals_after_backlog(short_dir)
    # nothing priced on the state between SWAP and REVERSE; LONE is decided on its own, at once
    [lone] = out
    point, trace = lone.find(DecisionPoint), lone.find(TraceContext)
    assert (point.block_number, point.log_index) == (102, 1)  # type: ignore[union-attr]
    assert lone.find(SignalIdentity).chain_id == 1  # type: ignore[union-attr]
    assert trace.origin_ns <= lone.receive_time_ns  # type: ignore[union-attr]


@pytest.mark.timeout(60)
async def test_coalescing_is_bounded(short_dir: Path) -> None:
    """At most ``coalesce_max`` messages per decision, so a backlog still decides: with three, the first
    decision covers the header, the pools and SWAP -- the intermediate state, signalled -- and the next REVERSE
    alone; with one, every message is decided alone (SWAP's signal again)."""
    out = await _signals_after_backlog(short_dir, coalesce_max=3)
    assert [(p.block_number, p.log_index) for p in (m.find(DecisionPoint) for m in out)] == [(101, 2), (102, 1)]  # type: ignore[union-attr]



@pytest.mark.timeout(60)
async def test_coalesce_max_one_decides_every_message_alone(short_dir: Path) -> None:
    out = await _signals_after_backlog(short_dir, coalesce_max=1)
    assert [(p.block_number, p.log_index) for p in (m.find(DecisionPoint) for m in out)] == [(101, 2), (102, 1)]  # type: ignore[union-attr]


@pytest.mark.timeout(60)
async def test_a_replayed_message_is_decided_alone(short_dir: Path) -> None:
    """In a replay, what arrives together depends on the replay's speed: REPLAYED messages are decided one by
    one, as a run with ``coalesce_max = 1`` decides them (SWAP's signal, although REVERSE was already here)."""
    out = await _signals_after_backlog(short_dir, flags=FLAG_REPLAYED)
    assert [(p.block_number, p.log_index) for p in (m.find(DecisionPoint) for m in out)] == [(101, 2), (102, 1)]  # type: ignore[union-attr]
