"""The executor process's start-up: results a killed run recorded but the relay never got are published
again, exactly once (found by ``alphapulse chaos``: the outcome was written to the store, the executor
was SIGKILLed before its producer's outbox reached the relay, and the restart skipped the signal as
done -- a signal without an outcome)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from execution.process import republish_unsent
from execution.store import ExecutorStore
from protocol.execution import ExecutionResult, Outcome
from protocol.header import Domain
from protocol.ids import TokenId
from relays.client import RelayConsumer, RelayProducer
from relays.server import RelayConfig, serve

SOURCE = 31


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="apex-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def result(signal_id: int) -> ExecutionResult:
    return ExecutionResult(signal_id=signal_id, chain_id=1, outcome=int(Outcome.STALE), block_number=7,
                           tx_hash=bytes(32), gas_used=0, effective_gas_price=0, expected_profit=0,
                           realized_profit=0, profit_token=TokenId.of(1, "0x" + "c0" * 20), reason="stale")


async def results_on_relay(sock: str) -> list[int]:
    out: list[int] = []
    async with RelayConsumer.connect(Domain.EXECUTION, sock, from_seq=0, name="test") as c:
        with trio.move_on_after(0.5):
            async for msg in c:
                out += [t.signal_id for t in msg.tlvs if isinstance(t, ExecutionResult)]
    return out


async def test_results_the_relay_never_got_are_published_again_once(short_dir: Path) -> None:
    store = ExecutorStore(short_dir / "executor.sqlite")
    cfg = RelayConfig(domain=Domain.EXECUTION, socket_path=str(short_dir / "ex.sock"),
                      data_dir=str(short_dir / "data"), fsync="off")
    async with trio.open_nursery() as n:
        await n.start(serve, cfg)
        # A run that published the result of signal 1 (the relay has it) and recorded those of 2 and 3
        # as source_seq 2 and 3, then died before they left its outbox.
        async with RelayProducer.connect(Domain.EXECUTION, cfg.socket_path, source_id=SOURCE) as p:
            for sid in (1, 2, 3):
                store.finish_signal(sid, int(Outcome.STALE), "stale", result=result(sid).encode(), source_seq=sid)
            assert await p.publish(result(1)) == 1
            await p.flush()
        assert await results_on_relay(cfg.socket_path) == [1]
        assert [(s, q) for s, q, _ in store.unsent_results(1)] == [(2, 2), (3, 3)]
        # the restart: what the relay lacks goes out again, with its new sequence recorded first
        async with RelayProducer.connect(Domain.EXECUTION, cfg.socket_path, source_id=SOURCE) as p:
            assert await republish_unsent(store, p) == 2
            await p.flush()
        assert await results_on_relay(cfg.socket_path) == [1, 2, 3]
        # and the next restart finds nothing missing: no outcome twice
        async with RelayProducer.connect(Domain.EXECUTION, cfg.socket_path, source_id=SOURCE) as p:
            assert await republish_unsent(store, p) == 0
        assert await results_on_relay(cfg.socket_path) == [1, 2, 3]
        n.cancel_scope.cancel()
    store.close()
