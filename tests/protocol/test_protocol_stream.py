"""FrameDecoder: a stream of many messages, split anywhere, including one byte at a time."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_testkit import all_vector_frames, any_tlv, messages

from protocol import FrameDecoder, FrameError, Message, ProtocolError, decode, encode
from protocol.system import Heartbeat

FRAMES = all_vector_frames()
STREAM = b"".join(FRAMES)
MESSAGES = [decode(f) for f in FRAMES]


def _drain(dec: FrameDecoder) -> list[Message]:
    return list(dec)


def test_vector_stream_has_many_messages() -> None:
    assert len(FRAMES) >= 90 and len(STREAM) > 20_000


def test_whole_stream_at_once() -> None:
    dec = FrameDecoder()
    dec.receive_data(STREAM)
    assert _drain(dec) == MESSAGES
    assert dec.buffered == 0
    assert dec.next_message() is None


def test_byte_at_a_time() -> None:
    dec = FrameDecoder()
    out: list[Message] = []
    view = memoryview(STREAM)
    for i in range(len(STREAM)):
        dec.receive_data(view[i : i + 1])
        m = dec.next_message()
        if m is not None:
            out.append(m)
            assert dec.next_message() is None  # one byte completes at most one frame
    assert out == MESSAGES
    assert dec.buffered == 0


def test_frames_byte_at_a_time() -> None:
    dec = FrameDecoder()
    out: list[bytes] = []
    for i in range(len(STREAM)):
        dec.receive_data(STREAM[i : i + 1])
        while (f := dec.next_frame()) is not None:
            out.append(f)
    assert out == list(FRAMES)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cuts=st.lists(st.integers(0, len(STREAM)), max_size=80),
    kind=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_random_split_points(cuts: list[int], kind: type) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    dec = FrameDecoder()
    out: list[Message] = []
    for a, b in zip(points, points[1:]):
        dec.receive_data(kind(STREAM[a:b]))
        out += _drain(dec)
    assert out == MESSAGES
    assert dec.buffered == 0


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    msgs=st.lists(messages(st.lists(any_tlv(), max_size=3)), min_size=1, max_size=8),
    data=st.data(),
)
def test_random_messages_random_splits(msgs: list[Message], data: st.DataObject) -> None:
    stream = b"".join(encode(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    dec = FrameDecoder()
    out: list[Message] = []
    frames: list[bytes] = []
    dec2 = FrameDecoder()
    for a, b in zip([0, *cuts], [*cuts, len(stream)]):
        dec.receive_data(stream[a:b])
        out += _drain(dec)
        dec2.receive_data(stream[a:b])
        while (f := dec2.next_frame()) is not None:
            frames.append(f)
    assert out == msgs
    assert frames == [encode(m) for m in msgs]


def test_buffer_is_compacted() -> None:
    """Consumed bytes do not accumulate: a long-lived decoder's memory stays bounded."""
    import tracemalloc

    frame = encode(Message(domain=4, tlvs=[Heartbeat(epoch=1, head_seq=2)]))
    dec = FrameDecoder()
    tracemalloc.start()
    try:
        for _ in range(8000):  # 1 MiB of frames in total
            dec.receive_data(frame + frame[:10])
            assert dec.next_message() is not None
            dec.receive_data(frame[10:])
            assert dec.next_message() is not None
            assert dec.buffered == 0
        current = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert current < 300_000


def test_error_state_is_sticky() -> None:
    good = encode(Message(domain=4, tlvs=[Heartbeat(epoch=1, head_seq=2)]))
    bad = bytearray(good)
    bad[0] ^= 0xFF
    dec = FrameDecoder()
    dec.receive_data(good + bytes(bad) + good)
    assert dec.next_message() is not None
    with pytest.raises(FrameError):
        dec.next_message()
    for call in (dec.next_message, dec.next_frame, lambda: dec.receive_data(good)):
        with pytest.raises(ProtocolError):
            call()


def test_huge_payload_claim_is_rejected_from_the_header_alone() -> None:
    """A header announcing more than MAX_PAYLOAD fails at once: nothing waits for (or buffers) the payload."""
    import struct

    for plen in ((1 << 20) + 1, 0xFFFFFFFF):
        header = b"AP\x01\x00" + struct.pack("<IQBBHIQQQI", 0, 0, 1, 0, 0, plen, 0, 0, 0, 0)
        for step in (1, 7, 52):
            dec = FrameDecoder()
            raised = False
            for i in range(0, 52, step):
                dec.receive_data(header[i : i + step])
                try:
                    assert dec.next_message() is None
                except FrameError:
                    raised = True
                    break
            assert raised and dec.buffered == 52


def test_max_payload_claim_waits() -> None:
    """Exactly MAX_PAYLOAD is legal: the decoder waits for it (and bounds nothing else)."""
    import struct
    import zlib

    payload = b"\x00\xc8" + struct.pack("<I", (1 << 20) - 6) + b"\x00" * ((1 << 20) - 6)  # one unknown record
    covered = struct.pack("<BBHIQQQI", 4, 0, 0, len(payload), 0, 0, 0, 0) + payload
    frame = b"AP\x01\x00" + struct.pack("<IQ", zlib.crc32(covered), 0) + covered
    dec = FrameDecoder()
    dec.receive_data(frame[:100])
    assert dec.next_message() is None
    dec.receive_data(frame[100:])
    m = dec.next_message()
    assert m is not None and len(m.tlvs[0].body) == (1 << 20) - 6
    assert encode(m) == frame
