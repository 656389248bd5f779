"""Bridge-out's publish policy without a server: an idle bridge publishes a frame at once; frames
that arrive while ``max_inflight`` batches await their ack go out together, in one batch, when an
ack makes room; every publish names its frames and the stream sequence it must follow."""

from __future__ import annotations

from functools import partial

import trio
import trio.testing
from relay_testkit import frame

from bridge.process import BridgeOut, _AckState, _on_ack
from protocol.header import Domain
from relays.core.nats import BatchBuilder, Msg, PublishWindow, batch_span, parse_headers

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

    async def drain(self) -> None:
        await trio.lowlevel.checkpoint()


def _ack(window: PublishWindow, state: _AckState, reply: str, stream_seq: int) -> None:
    _on_ack(window, state, Msg(reply, 1, None, None, b'{"stream":"AP_MARKET_DATA","seq":%d}' % stream_seq))


async def test_batches_follow_the_window() -> None:
    out = BridgeOut(MD, "nats://127.0.0.1:1", None, max_inflight=2, batch_bytes=64 * 100)
    window = PublishWindow(MD, next_stream_seq=8, position=20)  # the stream holds up to D=20 at S=7
    builder = BatchBuilder(64 * 100, last_added=20)
    state = _AckState()
    nc = FakeNats()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(out._publisher, nc, window, builder, state, "_INBOX.x"))  # type: ignore[arg-type]

        async def feed(first: int, last: int) -> None:
            builder.add(1, first, _frames(first, last), last - first + 1)
            state.wake.set()
            await trio.testing.wait_all_tasks_blocked()

        await feed(21, 21)  # idle: goes at once, alone
        await feed(22, 24)  # one in flight: room for another
        await feed(25, 25)  # the window is full: these wait...
        await feed(26, 30)
        assert len(nc.published) == 2 and window.pending == 2
        _ack(window, state, nc.published[0][2] or "", 8)  # ...until an ack makes room: one batch
        await trio.testing.wait_all_tasks_blocked()
        assert len(nc.published) == 3 and window.position == 21
        nursery.cancel_scope.cancel()
    spans = [batch_span(p[1]) for p in nc.published]
    assert spans == [(21, 21), (22, 24), (25, 30)]
    heads = [parse_headers(p[3] or b"") for p in nc.published]
    assert [h["Nats-Msg-Id"] for h in heads] == ["1:1:21", "1:1:22-24", "1:1:25-30"]
    assert [h["Nats-Expected-Last-Sequence"] for h in heads] == ["7", "8", "9"]
    assert all(p[0] == "alphapulse.market_data" for p in nc.published)
