import pytest
from relay_testkit import frame, frames, heartbeat_frame

from protocol.errors import ChecksumError, FrameError
from protocol.header import Domain, read_domain_seq
from relays.core.ingest import Ingest, Sequencer


def test_stamps_consecutive_domain_sequences_in_place() -> None:
    seq = Sequencer(head_seq=100)
    ing = Ingest(seq, Domain.MARKET_DATA, 7)
    buf = bytearray(frames(1, 5))
    r = ing.scan(buf, 0)
    assert r.pos == len(buf) and r.control is None and len(r.chunks) == 1
    ch = r.chunks[0]
    assert (ch.first_seq, ch.last_seq, ch.last_source_seq) == (101, 105, 5)
    assert [read_domain_seq(buf, o) for o in ch.offsets[:-1]] == [101, 102, 103, 104, 105]
    assert seq.head_seq == 105 and seq.last_source_seq == {7: 5}


def test_partial_frame_stays_for_the_next_read() -> None:
    seq = Sequencer()
    ing = Ingest(seq, Domain.MARKET_DATA, 7)
    data = frames(1, 3)
    buf = bytearray(data[:150])
    r = ing.scan(buf, 0)
    assert r.pos == 128 and r.chunks[0].count == 2
    buf = bytearray(data[128:])
    r = ing.scan(buf, 0)
    assert r.pos == 64 and r.chunks[0].first_seq == 3


def test_resent_frames_are_dropped_once_in_the_log() -> None:
    seq = Sequencer(last_source_seq={7: 3}, head_seq=3)
    ing = Ingest(seq, Domain.MARKET_DATA, 7)
    buf = bytearray(frames(2, 6))  # 2, 3 already in the log
    r = ing.scan(buf, 0)
    assert r.duplicates == 2
    assert [(c.first_seq, c.last_seq) for c in r.chunks] == [(4, 6)]
    assert seq.last_source_seq[7] == 6 and seq.duplicates == 2


def test_duplicate_in_the_middle_splits_chunks() -> None:
    seq = Sequencer()
    ing = Ingest(seq, Domain.MARKET_DATA, 7)
    buf = bytearray(frame(1) + frame(2) + frame(2) + frame(3))
    r = ing.scan(buf, 0)
    assert [(c.first_seq, c.last_seq, c.last_source_seq) for c in r.chunks] == [(1, 2, 2), (3, 3, 3)]


def test_control_frame_stops_the_scan_in_stream_order() -> None:
    seq = Sequencer()
    ing = Ingest(seq, Domain.MARKET_DATA, 7)
    hb = heartbeat_frame()
    buf = bytearray(frame(1) + hb + frame(2))
    r = ing.scan(buf, 0)
    assert r.control == hb and [c.count for c in r.chunks] == [1] and r.pos == 64 + len(hb)
    r = ing.scan(buf, r.pos)
    assert r.chunks[0].first_seq == 2 and r.control is None


@pytest.mark.parametrize(
    "mutate, error, match",
    [
        (lambda b: b.__setitem__(0, 0), FrameError, "magic"),
        (lambda b: b.__setitem__(63, b[63] ^ 1), ChecksumError, "checksum"),
        (lambda b: b.__setitem__(16, 2), FrameError, "domain 2"),
        (lambda b: b.__setitem__(48, 8), FrameError, "source_id"),
    ],
)
def test_malformed_frames_raise(mutate, error, match) -> None:  # type: ignore[no-untyped-def]
    ing = Ingest(Sequencer(), Domain.MARKET_DATA, 7)
    buf = bytearray(frame(1))
    mutate(buf)
    with pytest.raises(error, match=match):
        ing.scan(buf, 0)


def test_data_before_hello_is_refused() -> None:
    ing = Ingest(Sequencer(), Domain.MARKET_DATA, None)
    with pytest.raises(FrameError, match="Hello"):
        ing.scan(bytearray(frame(1)), 0)


# ---- issue 17, item 1: a frame that does not decode never enters the log ----


def test_a_frame_whose_tlvs_do_not_decode_is_refused() -> None:
    from relay_testkit import undecodable_frame

    from protocol.errors import TLVError

    seq = Sequencer()
    buf = bytearray(frames(1, 3) + undecodable_frame(4) + frames(5, 6))
    with pytest.raises(TLVError, match="source_seq 4 does not decode"):
        Ingest(seq, Domain.MARKET_DATA, 7).scan(buf, 0)
    assert seq.head_seq == 0 and seq.accepted == 0  # nothing from that read entered the log


def test_an_undecodable_frame_inside_a_vectorised_run_is_refused() -> None:
    from relay_testkit import undecodable_frame

    from protocol.errors import TLVError

    good = [frame(s) for s in range(1, 201)]
    good[120] = undecodable_frame(121)  # same size: inside one equal-size run
    seq = Sequencer()
    with pytest.raises(TLVError, match="source_seq 121"):
        Ingest(seq, Domain.MARKET_DATA, 7).scan(bytearray(b"".join(good)), 0)
    assert seq.head_seq == 0
    # the frames before it, sent alone, are accepted through the fast path
    r = Ingest(seq, Domain.MARKET_DATA, 7).scan(bytearray(b"".join(good[:120])), 0)
    assert seq.head_seq == 120 and r.chunks[-1].last_source_seq == 120


def test_validation_can_be_turned_off_for_measurement() -> None:
    from relay_testkit import undecodable_frame

    # what the relay did before issue 17 (and does with --no-validate): the frame is accepted
    seq = Sequencer()
    buf = bytearray(frames(1, 40) + undecodable_frame(41) + frames(42, 100))
    r = Ingest(seq, Domain.MARKET_DATA, 7, validate=False).scan(buf, 0)
    assert seq.head_seq == 100 and sum(c.count for c in r.chunks) == 100
