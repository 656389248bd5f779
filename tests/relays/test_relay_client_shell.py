"""relays.client's trio shell: an exception raised in the body of ``async with
RelayConsumer.connect(...)`` leaves as itself, while the connection is open and consuming
(the defect ``risk/relaying.py`` once worked around: the body's exception was replaced by the
Cancelled of the client's own cleanup and vanished), and the explicit metrics observer."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from protocol.header import Domain
from relays.client import RelayConsumer, RelayProducer
from relays.server import RelayConfig, serve


class Boom(Exception):
    pass


def _config(d: Path) -> RelayConfig:
    return RelayConfig(domain=Domain.SIGNAL, socket_path=str(d / "s.sock"), data_dir=str(d / "data"), fsync="off")


async def _publish(sock: str, n: int) -> None:
    async with RelayProducer.connect(Domain.SIGNAL, sock, source_id=3) as p:
        for _ in range(n):
            await p.publish_payload(b"\x01\x02")
        await p.flush()


async def test_exception_in_the_consuming_body_propagates(short_dir: Path) -> None:
    cfg = _config(short_dir)
    async with trio.open_nursery() as n:
        await n.start(serve, cfg)
        await _publish(cfg.socket_path, 5)
        got = 0
        with pytest.raises(Boom, match="after 3"):
            async with RelayConsumer.connect(Domain.SIGNAL, cfg.socket_path, from_seq=0, raw=True) as c:
                async for _ in c:
                    got += 1
                    if got == 3:
                        raise Boom("after 3")
        assert got == 3
        n.cancel_scope.cancel()


async def test_exception_in_a_consumer_task_fails_its_nursery(short_dir: Path) -> None:
    """The shape risk and portfolio use: a consumer task started in the process's nursery whose
    batch handler raises; the error must end the nursery, not leave the task silently finished."""
    cfg = _config(short_dir)

    async def consume(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with RelayConsumer.connect(Domain.SIGNAL, cfg.socket_path, from_seq=0, raw=True) as c:
            task_status.started()
            async for _batch in c.batches():
                raise Boom("while applying a batch")

    async with trio.open_nursery() as relay_nursery:
        await relay_nursery.start(serve, cfg)
        with pytest.raises(BaseExceptionGroup) as info, trio.fail_after(10):
            async with trio.open_nursery() as n:
                await n.start(consume)
                await _publish(cfg.socket_path, 2)
                await trio.sleep_forever()
        assert info.group_contains(Boom, match="while applying a batch")
        relay_nursery.cancel_scope.cancel()


class _Observer:
    def __init__(self) -> None:
        self.seen: list[object] = []

    def attach(self, client: object) -> None:
        self.seen.append(client)


async def test_clients_report_to_the_observer_they_are_given(short_dir: Path) -> None:
    cfg = _config(short_dir)
    obs = _Observer()
    async with trio.open_nursery() as n:
        await n.start(serve, cfg)
        async with RelayProducer.connect(Domain.SIGNAL, cfg.socket_path, source_id=4, metrics=obs) as p, \
                RelayConsumer.connect(Domain.SIGNAL, cfg.socket_path, metrics=obs) as c:
            assert obs.seen == [p, c]
        async with RelayConsumer.connect(Domain.SIGNAL, cfg.socket_path):  # no observer: nothing reported
            pass
        assert len(obs.seen) == 2
        n.cancel_scope.cancel()
