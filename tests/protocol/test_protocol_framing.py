"""The one frame splitter: ``FrameDecoder`` views and ``split_frames``, at every split point.

The vectorised run check (``uniform_run``) must find exactly the boundaries a per-frame walk
finds, and refuse exactly what ``check_prefix`` refuses, wherever a run starts or breaks.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_testkit import all_vector_frames

from protocol import (
    FrameDecoder,
    FrameError,
    FrameViews,
    Message,
    ProtocolError,
    decode,
    encode,
    split_frames,
)
from protocol.framing import FAST_MIN, uniform_run
from protocol.header import HEADER_SIZE, check_prefix, read_header
from protocol.system import Heartbeat, Stats

FRAMES = all_vector_frames()
STREAM = b"".join(FRAMES)


def _walk(buf: bytes) -> list[int]:
    """Boundaries by the plain per-frame walk (the oracle)."""
    offs = [0]
    pos = 0
    while len(buf) - pos >= HEADER_SIZE:
        size = check_prefix(buf, pos)
        if pos + size > len(buf):
            break
        pos += size
        offs.append(pos)
    return offs


def _heartbeats(n: int, start: int = 1) -> list[bytes]:
    return [encode(Message(domain=4, tlvs=(Heartbeat(epoch=1, head_seq=i),), source_seq=i)) for i in range(start, start + n)]


def _mixed(n: int) -> list[bytes]:
    """Runs of equal-size frames (long enough for the vectorised path) broken by other sizes."""
    out: list[bytes] = []
    for k in range(n):
        out += _heartbeats(FAST_MIN + 3 + k, start=100 * k + 1)
        out.append(encode(Message(domain=4, tlvs=(Stats(json=b"x" * (k + 1)),))))
    return out


RUNS = _mixed(3)
RUN_STREAM = b"".join(RUNS)


def _collect(chunks: list[bytes], *, writable: bool = False) -> tuple[list[bytes], list[FrameViews]]:
    dec = FrameDecoder(shared=True, writable=writable)
    got: list[bytes] = []
    kept: list[FrameViews] = []
    for c in chunks:
        dec.receive_data(c)
        fv = dec.views()
        if fv is not None:
            kept.append(fv)
            got += [bytes(v) for v in fv]
    assert dec.buffered == 0 and dec.views() is None
    return got, kept


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *cuts})
    return [data[a:b] for a, b in zip(points, points[1:])]


def test_split_frames_matches_the_walk() -> None:
    for data in (STREAM, RUN_STREAM):
        offs, end = split_frames(data)
        assert offs.tolist() == _walk(data) and end == len(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(0, len(RUN_STREAM)), max_size=40), writable=st.booleans())
def test_views_at_any_split_point(cuts: list[int], writable: bool) -> None:
    got, _ = _collect(_cut(RUN_STREAM, cuts), writable=writable)
    assert got == RUNS


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(0, len(STREAM)), max_size=60))
def test_vector_stream_views_at_any_split_point(cuts: list[int]) -> None:
    got, _ = _collect(_cut(STREAM, cuts))
    assert got == list(FRAMES)


def test_views_are_zero_copy_and_survive_later_reads() -> None:
    for writable in (False, True):
        dec = FrameDecoder(shared=True, writable=writable)
        half = len(RUN_STREAM) // 2 + 7
        dec.receive_data(RUN_STREAM[:half])
        fv = dec.views()
        assert fv is not None and len(fv) > FAST_MIN
        whole = fv.view()
        assert whole.obj is fv.data  # a slice of the decoder's buffer, not a copy
        assert all(v.obj is fv.data for v in fv)
        before = fv.frames()
        dec.receive_data(RUN_STREAM[half:])  # the decoder must not touch a buffer it handed out
        rest = dec.views()
        assert rest is not None and rest.data is not fv.data
        assert fv.frames() == before
        assert before + rest.frames() == RUNS
        assert [read_header(f).source_seq for f in before] == [decode(f).source_seq for f in before]
        assert fv.messages() == [decode(f) for f in before]


def test_bytes_input_is_not_copied_when_nothing_is_left_over() -> None:
    dec = FrameDecoder(shared=True)
    dec.receive_data(RUN_STREAM)
    fv = dec.views()
    assert fv is not None and fv.data is RUN_STREAM


@pytest.mark.parametrize("bad", [1, FAST_MIN // 2, FAST_MIN + 1, 2 * FAST_MIN + 2])
@pytest.mark.parametrize("byte", [0, 2, 3, 16, 17, 22])
def test_a_bad_header_inside_a_run_is_found_where_the_walk_finds_it(bad: int, byte: int) -> None:
    frames = _heartbeats(3 * FAST_MIN)
    size = len(frames[0])
    buf = bytearray(b"".join(frames))
    buf[bad * size + byte] ^= 0x40 if byte != 16 else 0x04  # magic, version, reserved, domain 0, length
    with pytest.raises(FrameError):
        check_prefix(buf, bad * size)
    with pytest.raises(FrameError):
        split_frames(buf)
    offs, end = split_frames(buf, strict=False)
    assert end == bad * size and offs.tolist() == list(range(0, end + 1, size))
    dec = FrameDecoder(shared=True)
    dec.receive_data(bytes(buf))
    with pytest.raises(FrameError):
        dec.views()
    with pytest.raises(FrameError):  # the stream stays unusable
        dec.views()


def test_uniform_run_counts_only_frames_of_that_size() -> None:
    frames = _heartbeats(2 * FAST_MIN)
    size = len(frames[0])
    other = encode(Message(domain=4, tlvs=(Stats(json=b"abc"),)))
    buf = b"".join(frames[:FAST_MIN]) + other + b"".join(frames[FAST_MIN:])
    assert uniform_run(buf, 0, size, FAST_MIN) == FAST_MIN
    assert uniform_run(buf, 0, size, FAST_MIN + 1) == FAST_MIN  # the Stats frame breaks the run


def test_window_and_consume_for_in_place_scanners() -> None:
    dec = FrameDecoder(shared=True, writable=True)
    dec.receive_data(RUN_STREAM[:100])
    buf, pos, end = dec.window()
    assert isinstance(buf, bytearray) and (pos, end) == (0, 100)
    first = len(RUNS[0])
    dec.consume(first)
    with pytest.raises(ValueError):
        dec.consume(0)  # backwards
    dec.receive_data(RUN_STREAM[100:])
    buf2, pos2, end2 = dec.window()
    assert buf2 is not buf and pos2 == 0 and bytes(buf2[:end2]) == RUN_STREAM[first:]


def test_views_need_shared_mode() -> None:
    dec = FrameDecoder()
    dec.receive_data(STREAM)
    with pytest.raises(ProtocolError):
        dec.views()
    assert dec.next_frame() == FRAMES[0]
