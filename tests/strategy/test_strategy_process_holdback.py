"""The strategy process with [hold_back] on three real relays: a signal's pools are not signalled again
while it is unresolved; its ExecutionResult, published on the execution relay (read from now), releases them
and signals again at once (the released pools re-sized on the state as it is, no market-data message needed).
A result for another signal id releases nothing."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing
from market_builders import GWEI, WETH, header, v2_snapshot
from test_strategy_engine import SNAP1, SNAP2, WD2

from protocol.execution import ExecutionResult, Outcome
from protocol.header import Domain
from protocol.ids import TokenId
from protocol.signals import SignalIdentity
from relays.client import RelayConsumer, RelayProducer
from relays.server import RelayConfig, serve
from strategy.process import run
from tools.deployment_writer import write_toml


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="aphb-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def result(signal_id: int) -> ExecutionResult:
    return ExecutionResult(signal_id=signal_id, chain_id=1, outcome=int(Outcome.STALE), block_number=0,
                           tx_hash=bytes(32), gas_used=0, effective_gas_price=0, expected_profit=0,
                           realized_profit=0, profit_token=TokenId.of(1, WETH), reason="stale")


@pytest.mark.timeout(60)
async def test_the_process_holds_a_signals_pools_until_its_result_on_the_execution_relay(short_dir: Path) -> None:
    socks = {d: str(short_dir / f"{d.name.lower()}.sock") for d in (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION)}
    cfg = write_toml(short_dir / "strategy.toml", {
        "strategy": {"name": "hb", "source_id": 20},
        "chains": [{"chain_id": 1, "gas_token": WETH}],
        "hold_back": {"enabled": True, "margin_ms": 600_000},  # no timeout within the test: only results release
        "relays": {"market_data": socks[Domain.MARKET_DATA], "signal": socks[Domain.SIGNAL],
                   "execution": socks[Domain.EXECUTION]},
    })
    async with trio.open_nursery() as n:
        for d, sock in socks.items():
            await n.start(serve, RelayConfig(domain=d, socket_path=sock, data_dir=str(short_dir / d.name), fsync="off"))
        await n.start(lambda task_status: run(str(cfg), max_age_ms=0, task_status=task_status))
        async with RelayProducer.connect(Domain.MARKET_DATA, socks[Domain.MARKET_DATA], source_id=7) as md, \
                RelayProducer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], source_id=31) as ex, \
                RelayConsumer.connect(Domain.SIGNAL, socks[Domain.SIGNAL], from_seq=0, name="t") as signals:

            async def next_signal(wait_s: float) -> int | None:
                with trio.move_on_after(wait_s):
                    async for msg in signals:
                        return msg.find(SignalIdentity).signal_id  # type: ignore[union-attr]
                return None

            await md.publish([header(base_fee=20 * GWEI, priority_fee=GWEI)])
            await md.publish([SNAP1, SNAP2])
            first = await next_signal(20)
            assert first is not None
            await md.publish([v2_snapshot(WD2, 2100 * 10**21, 10**21, block=101)])  # profitable still: held
            assert await next_signal(1.0) is None
            # another signal's result changes nothing; then ours (published again until the process, which
            # reads the execution relay from now, is subscribed: a repeated result is ignored)
            await ex.publish([result(first + 1000)])
            assert await next_signal(1.0) is None
            again = None
            for _ in range(30):
                await ex.publish([result(first)])
                # no market data: the result itself re-sizes the released pools (the state needs nothing more
                # for a STALE result), and the results task publishes what that finds
                again = await next_signal(0.5)
                if again is not None:
                    break
            assert again is not None and again != first
        n.cancel_scope.cancel()


async def test_a_result_decides_only_once_the_market_data_that_arrived_is_applied() -> None:
    """``_Turn.market_idle``: the results task waits while the market-data loop still has messages that arrived
    (one per transaction of the block our transaction landed in), and goes on once it waits for the next one."""
    from strategy.process import _Turn

    turn = _Turn()
    applied: list[int] = []
    send, recv = trio.open_memory_channel[int](10)
    for i in range(5):  # five messages already there, handed out without a checkpoint as the consumer does
        send.send_nowait(i)

    async def market_loop() -> None:
        turn.waiting()
        while True:
            try:
                i = recv.receive_nowait()
            except trio.WouldBlock:
                i = await recv.receive()
            turn.idle = False
            applied.append(i)
            await trio.lowlevel.checkpoint()
            turn.waiting()

    async with trio.open_nursery() as n:
        n.start_soon(market_loop)
        assert await turn.market_idle() and applied == [0, 1, 2, 3, 4]
        send.send_nowait(5)
        await trio.testing.wait_all_tasks_blocked()
        assert applied == [0, 1, 2, 3, 4, 5] and await turn.market_idle()
        n.cancel_scope.cancel()


async def test_a_market_data_loop_that_never_rests_leaves_the_release_to_it() -> None:
    from strategy import process

    turn = process._Turn()  # the loop never waits: the result gives up after RESULT_WAIT_S
    with trio.fail_after(5):
        assert await turn.market_idle() is False
