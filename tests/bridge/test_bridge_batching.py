"""Bridge-out's publish policy without a server: an idle bridge publishes a frame at once (in the
turn it arrives, with no task in between); frames that arrive while ``max_inflight`` batches await
their ack go out together, in one batch, when an ack makes room (published by the ack's handler);
every publish names its frames and the stream sequence it must follow; a refusal stops the session."""

from __future__ import annotations

import pytest
from relay_testkit import frame

from bridge.process import _AckState, _Publisher
from protocol.header import Domain
from relays.core.nats import BatchBuilder, Msg, PublishRejected, PublishWindow, batch_span, parse_headers

MD = Domain.MARKET_DATA


def _frames(first: int, last: int) -> bytes:
    out = bytearray()
    for d in range(first, last + 1):
        f = bytearray(frame(d))
        f[8:16] = d.to_bytes(8, "little")
        out += f
    return bytes(out)


class FakeNats:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, str | None, bytes | None]] = []

    def publish(self, subject: str, payload: bytes, *, reply: str | None = None, headers: bytes | None = None) -> None:
        self.published.append((subject, payload, reply, headers))



def _ack(pub: _Publisher, reply: str, stream_seq: int) -> None:
    pub.on_ack(Msg(reply, 1, None, None, b'{"stream":"AP_MARKET_DATA","seq":%d}' % stream_seq))
    pub.after_acks()  # the connection's reader, once the acks of one read are applied


def _publisher(nc: FakeNats) -> _Publisher:
    window = PublishWindow(MD, next_stream_seq=8, position=20)  # the stream holds up to D=20 at S=7
    builder = BatchBuilder(64 * 100, last_added=20)
    pub = _Publisher(nc, MD, window, builder, _AckState(), 2, None)  # type: ignore[arg-type]
    pub.reply = "_INBOX.x"
    return pub


async def test_batches_follow_the_window() -> None:
    nc = FakeNats()
    pub = _publisher(nc)
    window, builder = pub.window, pub.builder

    def feed(first: int, last: int) -> None:
        builder.add(1, first, _frames(first, last), last - first + 1)
        pub.pump()

    feed(21, 21)  # idle: goes at once, alone
    feed(22, 24)  # one in flight: room for another
    feed(25, 25)  # the window is full: these wait...
    feed(26, 30)
    assert len(nc.published) == 2 and window.pending == 2
    _ack(pub, nc.published[0][2] or "", 8)  # ...until an ack makes room: one batch
    assert len(nc.published) == 3 and window.position == 21
    spans = [batch_span(p[1]) for p in nc.published]
    assert spans == [(21, 21), (22, 24), (25, 30)]
    heads = [parse_headers(p[3] or b"") for p in nc.published]
    assert [h["Nats-Msg-Id"] for h in heads] == ["1:1:21", "1:1:22-24", "1:1:25-30"]
    assert [h["Nats-Expected-Last-Sequence"] for h in heads] == ["7", "8", "9"]
    assert all(p[0] == "alphapulse.market_data" for p in nc.published)


async def test_acks_read_together_make_one_batch() -> None:
    nc = FakeNats()
    pub = _publisher(nc)
    for d in (21, 22, 23, 24):
        pub.builder.add(1, d, _frames(d, d), 1)
        pub.pump()
    assert len(nc.published) == 2  # 21 and 22 in flight; 23 and 24 wait
    for i, seq in ((0, 8), (1, 9)):  # both acks in one read from NATS: one publish after them
        pub.on_ack(Msg(nc.published[i][2] or "", 1, None, None, b'{"stream":"AP_MARKET_DATA","seq":%d}' % seq))
    assert len(nc.published) == 2
    pub.after_acks()
    assert [batch_span(p[1]) for p in nc.published] == [(21, 21), (22, 22), (23, 24)]


async def test_a_refusal_stops_publishing_and_the_session() -> None:
    nc = FakeNats()
    pub = _publisher(nc)
    pub.builder.add(1, 21, _frames(21, 21), 1)
    pub.pump()
    pub.builder.add(1, 22, _frames(22, 22), 1)
    pub.on_ack(Msg(f"{nc.published[0][2]}", 1, None, None,
                   b'{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 9"}}'))
    assert len(nc.published) == 1  # nothing more after a refusal
    with pytest.raises(PublishRejected, match="wrong last sequence"):
        await pub.watch()


async def test_bridge_in_joins_what_has_already_arrived() -> None:
    """Bridge in's reader: stream messages already received that continue each other reach the
    relay as one run (a reader that fell behind catches up in one write); a gap, a flow-control
    reply (answered once what came before it is taken) and the size cap each end a run."""
    from relays.jetstream import JetStreamConsumer

    async def take(coalesce: int, n: int) -> tuple[list[tuple[int, int, int, bytes]], FakeNats]:
        c = JetStreamConsumer(MD, "nats://127.0.0.1:1")
        nc = FakeNats()
        c._nc = nc  # type: ignore[assignment]
        c._queue.extend([(1, 2, 2, b"ab"), (3, 3, 1, b"c"), "fc.reply", (4, 4, 1, b"d"), (5, 5, 1, b"e"),
                         (7, 7, 1, b"g"), (8, 9, 2, b"hi")])
        out = []
        async for run in c.runs(coalesce=coalesce):
            out.append((run[0], run[1], run[2], bytes(run[3])))
            if len(out) == n:
                break
        return out, nc

    joined, nc = await take(1 << 20, 3)
    assert joined == [(1, 3, 3, b"abc"), (4, 5, 2, b"de"), (7, 9, 3, b"ghi")]
    assert [p[0] for p in nc.published] == ["fc.reply"]
    capped, _ = await take(2, 5)
    assert capped == [(1, 2, 2, b"ab"), (3, 3, 1, b"c"), (4, 5, 2, b"de"), (7, 7, 1, b"g"), (8, 9, 2, b"hi")]
    single, _ = await take(0, 6)
    assert [r[:2] for r in single] == [(1, 2), (3, 3), (4, 4), (5, 5), (7, 7), (8, 9)]
