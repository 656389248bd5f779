"""The vectorised shortcuts for runs of equal-size frames must never change a rule.

Ingest (``relays.core.ingest._fast_block``) and the consumer core
(``relays.client.core._uniform_run``) take whole runs of equal-size frames at once;
whatever breaks a run (a bad CRC, a duplicate, a gap, a control frame, another size)
must be handled exactly as the per-frame loop handles it.
"""

from __future__ import annotations

import pytest
from relay_testkit import frame, frames, heartbeat_frame

from protocol.errors import ChecksumError, FrameError
from protocol.header import Domain, read_domain_seq, stamp_domain_seq
from relays.client.core import ConsumerCore, FrameBatch
from relays.core.ingest import FAST_MIN, Ingest, Sequencer, valid_records_crc

N = 4 * FAST_MIN  # long enough for the fast path to engage


def offsets_of(chunk) -> list[int]:  # type: ignore[no-untyped-def]
    return list(chunk.offsets)


def test_a_long_run_is_stamped_like_the_per_frame_loop() -> None:
    seq = Sequencer(head_seq=1000)
    ing = Ingest(seq, Domain.MARKET_DATA, 7)
    buf = bytearray(frames(1, N))
    r = ing.scan(buf, 0)
    assert len(r.chunks) == 1
    ch = r.chunks[0]
    assert (ch.first_seq, ch.last_seq, ch.last_source_seq) == (1001, 1000 + N, N)
    offs = offsets_of(ch)
    assert offs == list(range(0, 64 * N + 1, 64))
    assert [read_domain_seq(buf, o) for o in offs[:-1]] == list(range(1001, 1001 + N))
    assert seq.head_seq == 1000 + N and seq.last_source_seq == {7: N}


@pytest.mark.parametrize("bad", [2, FAST_MIN + 5, N - 1])
def test_a_bad_crc_inside_a_run_is_refused(bad: int) -> None:
    seq = Sequencer()
    ing = Ingest(seq, Domain.MARKET_DATA, 7)
    buf = bytearray(frames(1, N))
    buf[bad * 64 + 60] ^= 0x40  # a body byte: covered by the CRC
    with pytest.raises(ChecksumError):
        ing.scan(buf, 0)
    assert seq.head_seq == 0 and seq.accepted == 0  # nothing from that read entered the log


def test_two_identical_corruptions_do_not_cancel_out() -> None:
    # a systematic producer bug flips the same bit in two frames of one block
    seq = Sequencer()
    ing = Ingest(seq, Domain.MARKET_DATA, 7)
    buf = bytearray(frames(1, N))
    for i in (FAST_MIN + 3, FAST_MIN + 9):
        buf[i * 64 + 60] ^= 0x01
    with pytest.raises(ChecksumError):
        ing.scan(buf, 0)


def testvalid_records_crc_matches_zlib() -> None:
    import zlib

    zero = bytes(48)
    rec = zero + zlib.crc32(zero).to_bytes(4, "little")
    assert valid_records_crc(48, 7) == zlib.crc32(rec * 7)


def test_duplicates_and_control_frames_inside_runs() -> None:
    seq = Sequencer(last_source_seq={7: 40}, head_seq=40)
    ing = Ingest(seq, Domain.MARKET_DATA, 7)
    hb = heartbeat_frame()
    data = frames(1, N) + hb + frames(N + 1, 2 * N)  # 1..40 are resends
    buf = bytearray(data)
    r = ing.scan(buf, 0)
    assert r.control == hb and r.duplicates == 40
    assert [(c.first_seq, c.last_seq) for c in r.chunks] == [(41, N)]
    r = ing.scan(buf, r.pos)
    assert [(c.first_seq, c.last_seq) for c in r.chunks] == [(N + 1, 2 * N)]
    assert seq.last_source_seq[7] == 2 * N


def test_a_frame_of_another_size_or_source_inside_a_run() -> None:
    seq = Sequencer()
    ing = Ingest(seq, Domain.MARKET_DATA, 7)
    big = frame(FAST_MIN + 10, body=bytes(100))
    data = frames(1, FAST_MIN + 9) + big + frames(FAST_MIN + 11, N)
    r = ing.scan(bytearray(data), 0)
    assert [(c.first_seq, c.last_seq) for c in r.chunks] == [(1, N)]
    offs = offsets_of(r.chunks[0])
    assert offs[FAST_MIN + 10] - offs[FAST_MIN + 9] == len(big)
    bad = bytearray(frames(1, N))
    bad[50 * 64 + 48] = 8  # source_id 8 on a connection of source 7
    with pytest.raises(FrameError, match="source_id"):
        Ingest(Sequencer(), Domain.MARKET_DATA, 7).scan(bad, 0)


def stamped_run(first: int, last: int) -> bytes:
    out = bytearray()
    for d in range(first, last + 1):
        f = bytearray(frame(d))
        stamp_domain_seq(f, 0, d)
        out += f
    return bytes(out)


def consumer() -> ConsumerCore:
    c = ConsumerCore(Domain.MARKET_DATA, from_seq=1, raw=True)
    c.start()
    return c


def test_consumer_takes_a_long_run_as_one_batch() -> None:
    c = consumer()
    batches = c.receive_frames(stamped_run(1, N))
    assert [(b.first_seq, b.count, b.size) for b in batches] == [(1, N, 64)]
    assert isinstance(batches[0], FrameBatch) and len(batches[0].frames()) == N
    assert c.position == N and c.counters.delivered == N and list(c.delivered) == [range(1, N + 1)]


def test_consumer_gap_inside_a_run_breaks_the_stream_after_the_good_frames() -> None:
    c = consumer()
    data = stamped_run(1, FAST_MIN + 7) + stamped_run(FAST_MIN + 9, N)
    batches = c.receive_frames(data)
    assert sum(b.count for b in batches) == FAST_MIN + 7
    assert c.broken is not None and "gap" in str(c.broken)
    assert c.position == FAST_MIN + 7


def test_consumer_duplicate_and_control_frames_inside_a_run() -> None:
    c = consumer()
    hb = heartbeat_frame()
    data = stamped_run(1, FAST_MIN + 4) + stamped_run(FAST_MIN + 2, N) + hb + stamped_run(N + 1, N + 40)
    batches = c.receive_frames(data)
    assert c.broken is None
    # a duplicate ends a batch (as in the per-frame loop), a control frame too
    assert [(b.first_seq, b.last_seq) for b in batches] == [(1, FAST_MIN + 4), (FAST_MIN + 5, N), (N + 1, N + 40)]
    assert c.counters.duplicates == 3 and c.counters.delivered == N + 40


def test_decoded_consumer_skips_a_frame_that_does_not_decode() -> None:
    """Issue 17: it used to rewind to just before the frame and reconnect for it, forever; a
    frame that does not decode is counted, reported and moved past (a hole in ``delivered``)."""
    c = ConsumerCore(Domain.MARKET_DATA, from_seq=1)
    c.start()
    data = bytearray(stamped_run(1, N))
    data[(FAST_MIN + 3) * 64 + 60] ^= 1  # the relay would have refused it; the consumer's decode must too
    msgs = c.receive_data(bytes(data))
    assert [m.domain_seq for m in msgs] == [s for s in range(1, N + 1) if s != FAST_MIN + 4]
    assert c.broken is None and c.position == N
    assert c.counters.undecodable == 1 and [s for s, _ in c.undecodable] == [FAST_MIN + 4]
    assert c.counters.delivered == N - 1
    assert list(c.delivered) == [range(1, FAST_MIN + 4), range(FAST_MIN + 5, N + 1)]
