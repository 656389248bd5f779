"""relays.jetstream.JetStreamConsumer's decoding side without a NATS server: a frame in the
stream that does not decode is counted, reported and skipped, like RelayConsumer (issue 17)."""

from __future__ import annotations

import trio
from relay_testkit import frame, undecodable_frame

from relays.jetstream import JetStreamConsumer


async def test_an_undecodable_frame_in_the_stream_is_skipped() -> None:
    c = JetStreamConsumer("market_data", "nats://127.0.0.1:1")
    for s in range(1, 6):  # five stream messages of one frame each, domain sequences 1..5
        fr = bytearray(undecodable_frame(s) if s == 3 else frame(s))
        fr[8:16] = s.to_bytes(8, "little")
        c._queue.append((s, s, 1, bytes(fr)))
    got = []
    with trio.fail_after(5):
        async for batch in c.batches():
            got += [m.source_seq for m in batch]
            if len(got) == 4:
                break
    assert got == [1, 2, 4, 5]
    assert c.counters["undecodable"] == 1
