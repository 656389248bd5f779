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
            await p.publish_payload(b"\xfa\x02\x01\x02")  # a valid (unknown-type) TLV: the relay validates
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


# ---- issue 17, item 1: no reconnect storm, a bad frame in an old journal is skipped ----


async def test_a_connection_that_keeps_breaking_is_retried_with_backoff(short_dir: Path) -> None:
    """A relay (or anything on its socket) that drops us at once, every time: the consumer used
    to reconnect at full speed (44,193 reconnects in 55 s); now it backs off."""
    import socket as stdsocket

    path = str(short_dir / "s.sock")
    listener = trio.socket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    await listener.bind(path)
    listener.listen(64)
    accepted = 0

    async def drop_everyone() -> None:
        nonlocal accepted
        while True:
            s, _ = await listener.accept()
            accepted += 1
            s.close()

    async with trio.open_nursery() as n:
        n.start_soon(drop_everyone)

        async def consume() -> None:
            async with RelayConsumer.connect(Domain.SIGNAL, path, from_seq=0) as c:
                async for _ in c:
                    pass

        n.start_soon(consume)
        await trio.sleep(1.5)
        n.cancel_scope.cancel()
    listener.close()
    # 20 ms doubling to 1 s: about 8 attempts in 1.5 s; without backoff, thousands
    assert 2 <= accepted <= 20, accepted


async def test_an_undecodable_frame_in_an_old_journal_is_skipped_not_retried(short_dir: Path) -> None:
    from relay_testkit import frame, undecodable_frame

    from protocol.header import stamp_domain_seq
    from relays.core.journal import Journal

    cfg = _config(short_dir)
    j = Journal(Path(cfg.data_dir) / "journal", segment_bytes=1 << 20, retention_bytes=1 << 20)
    j.recover()
    for s in range(1, 7):  # an old relay journaled sequence 3 without validating it
        f = bytearray(undecodable_frame(s, source_id=5, domain=Domain.SIGNAL) if s == 3
                      else frame(s, source_id=5, domain=Domain.SIGNAL))
        stamp_domain_seq(f, 0, s)
        j.append_frames(bytes(f), s, s)
    j.close()
    async with trio.open_nursery() as n:
        await n.start(serve, cfg)
        got = []
        with trio.fail_after(10):
            async with RelayConsumer.connect(Domain.SIGNAL, cfg.socket_path, from_seq=0) as c:
                async for m in c:
                    got.append(m.domain_seq)
                    if m.domain_seq == 6:
                        break
                counters = c.counters
        assert got == [1, 2, 4, 5, 6]
        assert counters["undecodable"] == 1 and counters["reconnects"] == 0
        n.cancel_scope.cancel()


@pytest.mark.parametrize("role", ["consumer", "producer"])
async def test_a_relay_that_welcomes_then_drops_is_retried_with_backoff(short_dir: Path, role: str) -> None:
    """The issue's loop: a connection that *succeeds* (Welcome) and then breaks before anything is
    delivered or acknowledged -- the consumer that rewound to a frame it could not decode, the
    producer whose batch is refused -- was retried at full speed, since a Welcome reset the backoff.
    A session that made no progress now counts as a failed attempt."""
    import socket as stdsocket

    from protocol.message import control_frame
    from protocol.system import Welcome

    path = str(short_dir / "s.sock")
    listener = trio.socket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    await listener.bind(path)
    listener.listen(64)
    accepted = 0
    welcome = control_frame(Welcome(epoch=1, head_seq=5, oldest_seq=1, last_source_seq=0, domain=int(Domain.SIGNAL)))

    async def welcome_then_drop() -> None:
        nonlocal accepted
        while True:
            s, _ = await listener.accept()
            accepted += 1
            with s:
                with trio.move_on_after(0.5):
                    await s.recv(65536)  # the Hello
                await s.send(welcome)

    async with trio.open_nursery() as n:
        n.start_soon(welcome_then_drop)

        async def consume() -> None:
            async with RelayConsumer.connect(Domain.SIGNAL, path, from_seq=0) as c:
                async for _ in c:
                    pass

        async def produce() -> None:
            from protocol.signals import DecisionPoint

            async with RelayProducer.connect(Domain.SIGNAL, path, source_id=9, connect_timeout=30) as p:
                await p.publish(DecisionPoint(block_number=1, log_index=0))
                await trio.sleep_forever()

        n.start_soon(consume if role == "consumer" else produce)
        await trio.sleep(1.5)
        n.cancel_scope.cancel()
    listener.close()
    # 20 ms doubling to 1 s: about 8 attempts in 1.5 s; without backoff, hundreds
    assert 2 <= accepted <= 20, accepted


async def test_an_unknown_latency_class_is_refused_before_connecting(short_dir: Path) -> None:
    """A bad ``latency`` is the caller's mistake: one ValueError naming the choices, raised before any
    connection is tried (no relay listens here; the client would otherwise retry for ever)."""
    with pytest.raises(ValueError, match=r"^latency must be one of 'critical', 'normal', 'background', not 'urgent'$"):
        async with RelayConsumer.connect(Domain.SIGNAL, str(short_dir / "none.sock"), latency="urgent"):
            pass


@pytest.mark.parametrize("raw", [False, True])
async def test_buffered_counts_what_arrived_and_next_nowait_hands_it_out_without_reading(
        short_dir: Path, raw: bool) -> None:
    """``buffered`` / ``next_nowait``: what one read brought in (five messages already on the relay come in
    the relay's one write from our cursor to its head) is handed out in order without another read; when
    nothing is buffered ``next_nowait`` refuses (``WouldBlock``) instead of waiting, even with more to come."""
    cfg = _config(short_dir)
    async with trio.open_nursery() as n:
        await n.start(serve, cfg)
        await _publish(cfg.socket_path, 5)
        with trio.fail_after(10):
            async with RelayConsumer.connect(Domain.SIGNAL, cfg.socket_path, from_seq=0, raw=raw) as c:
                await c.__anext__()
                assert c.last_seq == 1 and c.buffered == 4
                seqs = []
                while c.buffered:
                    c.next_nowait()
                    seqs.append(c.last_seq)
                assert seqs == [2, 3, 4, 5]
                with pytest.raises(trio.WouldBlock):
                    c.next_nowait()
                await _publish(cfg.socket_path, 1)
                assert c.buffered == 0  # published, perhaps already in the socket: never read by buffered
                await c.__anext__()
                assert c.last_seq == 6
        n.cancel_scope.cancel()
