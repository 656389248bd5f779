"""relays.jetstream.JetStreamConsumer's decoding side without a NATS server: a frame in the
stream that does not decode is counted, reported and skipped, like RelayConsumer (issue 17)."""

from __future__ import annotations

import trio
from relay_testkit import frame, undecodable_frame

from relays.jetstream import JetStreamConsumer


async def test_an_undecodable_frame_in_the_stream_is_skipped() -> None:
    c = JetStreamConsumer("market_data", "nats://127.0.0.1:1")
    for s in range(1, 6):
        c._queue.append((s, undecodable_frame(s) if s == 3 else frame(s)))
    got = []
    with trio.fail_after(5):
        async for batch in c.batches():
            got += [m.source_seq for m in batch]
            if len(got) == 4:
                break
    assert got == [1, 2, 4, 5]
    assert c.counters["undecodable"] == 1
