import zlib

import pytest
from relay_testkit import frame, frames, heartbeat_frame

from protocol.errors import ChecksumError, FrameError
from protocol.header import Domain, read_domain_seq
from protocol.message import Message, decode, encode
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


# ---- issue 12: validation without a record per frame, by shape over a vectorised run ----


def _trade_frame(seq: int, symbol: bytes) -> bytes:
    """A Trade frame (a registered type with a text field) whose symbol bytes are ``symbol``,
    written raw so they may be any bytes (invalid UTF-8 included), CRC right."""
    from protocol.header import OFF_CHECKSUM, OFF_COVERED
    from protocol.market import Trade

    t = Trade(venue=1, side=0, price_scale=2, size_scale=3, trade_id=seq, price=5, size=6, symbol="x" * len(symbol))
    buf = bytearray(encode(Message(domain=Domain.MARKET_DATA, source_id=7, source_seq=seq, tlvs=(t,))))
    buf[len(buf) - len(symbol):] = symbol
    buf[OFF_CHECKSUM : OFF_CHECKSUM + 4] = zlib.crc32(buf[OFF_COVERED:]).to_bytes(4, "little")
    return bytes(buf)


def test_a_run_of_mixed_record_shapes_is_validated_frame_by_frame() -> None:
    from relay_testkit import undecodable_frame

    from protocol.errors import TLVError

    # equal sizes, so one vectorised run, but three record types: the shapes differ
    good = [frame(s, type_code=250 + s % 3) for s in range(1, 201)]
    seq = Sequencer()
    r = Ingest(seq, Domain.MARKET_DATA, 7).scan(bytearray(b"".join(good)), 0)
    assert seq.head_seq == 200 and sum(c.count for c in r.chunks) == 200
    good[150] = undecodable_frame(151)
    seq = Sequencer()
    with pytest.raises(TLVError, match="source_seq 151 does not decode: TLV type 250 claims 255 bytes"):
        Ingest(seq, Domain.MARKET_DATA, 7).scan(bytearray(b"".join(good)), 0)
    assert seq.head_seq == 0


def test_text_fields_in_a_run_are_checked_as_utf8() -> None:
    from protocol.errors import TLVError

    # the same shape throughout, ASCII, non-ASCII UTF-8 (the frame-by-frame walk) and, once, bytes that are not UTF-8
    symbols = [b"ETHUSD", "é€x".encode(), b"BTCUSD"]
    run = [_trade_frame(s, symbols[s % 3]) for s in range(1, 201)]
    seq = Sequencer()
    r = Ingest(seq, Domain.MARKET_DATA, 7).scan(bytearray(b"".join(run)), 0)
    assert seq.head_seq == 200 and sum(c.count for c in r.chunks) == 200
    assert decode(bytes(r.chunks[-1].data[r.chunks[-1].offsets[-3] : r.chunks[-1].offsets[-2]])).tlvs[0].symbol == "é€x"
    run[99] = _trade_frame(100, b"\xff\xfeETHU")
    seq = Sequencer()
    with pytest.raises(TLVError, match="source_seq 100 does not decode: Trade.symbol: invalid UTF-8"):
        Ingest(seq, Domain.MARKET_DATA, 7).scan(bytearray(b"".join(run)), 0)
    # and alone, on the per-frame path, with the same line
    with pytest.raises(TLVError, match="source_seq 100 does not decode: Trade.symbol: invalid UTF-8"):
        Ingest(Sequencer(last_source_seq={7: 99}, head_seq=99), Domain.MARKET_DATA, 7).scan(bytearray(run[99]), 0)
