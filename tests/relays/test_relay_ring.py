import pytest
from relay_testkit import frame

from relays.core.ring import Chunk, Ring, first_tlv_type


def chunk(first_seq: int, n: int, type_code: int = 250, size_body: int = 10) -> Chunk:
    data = bytearray()
    offs = []
    for i in range(n):
        offs.append(len(data))
        data += frame(first_seq + i, type_code=type_code, body=bytes(size_body))
    offs.append(len(data))
    return Chunk(first_seq, data, offs, 7, first_seq + n - 1)


def test_append_read_and_locate() -> None:
    ring = Ring(1 << 20)
    assert ring.oldest_seq == 1 and ring.head_seq == 0
    ring.append(chunk(1, 10))
    ring.append(chunk(11, 5))
    assert ring.head_seq == 15 and ring.oldest_seq == 1
    parts, nxt = ring.read(4, 1 << 20)
    assert nxt == 16
    assert sum(len(p) for p in parts) == 12 * 64
    assert ring.read(16, 100) == ([], 16)
    c, i = ring.locate(13)  # type: ignore[misc]
    assert c.first_seq == 11 and i == 2


def test_read_caps_at_frame_boundaries_and_takes_at_least_one() -> None:
    ring = Ring(1 << 20)
    ring.append(chunk(1, 10))
    parts, nxt = ring.read(1, 64 * 3 + 10)
    assert nxt == 4 and sum(len(p) for p in parts) == 64 * 3
    parts, nxt = ring.read(1, 10)  # smaller than one frame: still one frame
    assert nxt == 2 and sum(len(p) for p in parts) == 64


def test_eviction_by_bytes_keeps_the_newest_chunk() -> None:
    ring = Ring(64 * 20)
    for k in range(5):
        ring.append(chunk(1 + 10 * k, 10))
    assert ring.nbytes <= 64 * 20
    assert ring.oldest_seq == 31 and ring.head_seq == 50
    assert ring.locate(30) is None and ring.read(30, 1000) == ([], 30)
    with pytest.raises(ValueError):
        ring.append(chunk(60, 1))  # not contiguous


def test_filtered_read_picks_first_tlv_types() -> None:
    ring = Ring(1 << 20)
    ring.append(chunk(1, 3, type_code=4))
    ring.append(chunk(4, 3, type_code=6))
    ring.append(chunk(7, 2, type_code=4))
    parts, nxt = ring.read_filtered(1, 1 << 20, {6})
    assert nxt == 9
    data = b"".join(parts)
    assert len(data) == 3 * 64
    assert [first_tlv_type(data, 64 * k, 64 * (k + 1)) for k in range(3)] == [6, 6, 6]
