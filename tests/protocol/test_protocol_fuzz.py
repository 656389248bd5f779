"""Hostile input: random bytes and mutated frames only ever raise ProtocolError; the checksum's coverage.

Decoders are compared with each other as well: on any input the fast and the
reference decoder either both succeed with equal messages or both raise the
same error class.
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_testkit import all_vector_frames, vector_files

from protocol import (
    TLV_TYPES,
    ChecksumError,
    FrameDecoder,
    FrameError,
    ProtocolError,
    decode,
    decode_frame,
    decode_tlvs,
    encode,
)
from protocol.reference import ref_decode
from protocol.tlv import COMPACT_MIN, tlvs_valid

FRAMES = all_vector_frames()
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def _outcome(fn: Callable[[bytes], Any], data: bytes) -> tuple[str, Any]:
    try:
        return "ok", fn(data)
    except ProtocolError as exc:
        return "error", type(exc)
    # any other exception propagates and fails the test


def _check_all_decoders(data: bytes) -> None:
    """Every decoding entry point raises only ProtocolError, and the fast and reference decoders agree."""
    fast = _outcome(decode, data)
    ref = _outcome(ref_decode, data)
    assert fast == ref, f"fast {fast} != reference {ref} on {data.hex()}"
    _outcome(lambda d: decode_frame(d, 0), data)
    _outcome(lambda d: decode_frame(bytearray(d), 0), data)
    _outcome(lambda d: decode_frame(memoryview(d), 0), data)
    if len(data) > 52:
        walked = _outcome(lambda d: decode_tlvs(d, 52, len(d)), data)
        # the relay's validator (no records built) agrees with the decoders on every payload
        for feed in (data, bytearray(data), memoryview(data)):
            assert tlvs_valid(feed, 52, len(data)) == (walked[0] == "ok"), data.hex()
        plen = len(data) - 52
        if plen >= 2 and data[53] + 2 == plen and COMPACT_MIN[data[52]] <= plen - 2:
            assert walked[0] == "ok", data.hex()  # the relay's one-lookup shortcut for a lone compact record
    for feed in (data, bytearray(data)):
        _outcome(_stream_messages, feed)
        _outcome(_stream_frames, feed)
    if fast[0] == "ok":
        # whatever decodes re-encodes, and that re-encoding decodes to the same message
        again = encode(fast[1])
        assert decode(again) == fast[1]


def _stream_messages(data: bytes | bytearray) -> list[Any]:
    dec = FrameDecoder()
    dec.receive_data(data)
    return list(dec)


def _stream_frames(data: bytes | bytearray) -> list[bytes]:
    dec = FrameDecoder()
    dec.receive_data(data)
    return list(iter(dec.next_frame, None))


def frame_with(payload: bytes, *, domain: int = 1) -> bytes:
    covered = struct.pack("<BBHIQQQI", domain, 0, 0, len(payload), 1, 2, 3, 4) + payload
    return b"AP\x01\x00" + struct.pack("<IQ", zlib.crc32(covered), 0) + covered


def refresh(frame: bytes | bytearray, fix_len: bool = True) -> bytes:
    """Recompute payload_len (optionally) and the checksum, so a mutation reaches the TLV layer."""
    b = bytearray(frame)
    if len(b) >= 52:
        if fix_len:
            struct.pack_into("<I", b, 20, len(b) - 52)
        struct.pack_into("<I", b, 4, zlib.crc32(bytes(b[16:])))
    return bytes(b)


# ---- random bytes ----


@SETTINGS
@given(data=st.binary(max_size=700))
def test_random_bytes(data: bytes) -> None:
    _check_all_decoders(data)


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes_behind_a_valid_prefix(data: bytes) -> None:
    _check_all_decoders(b"AP\x01\x00" + data)


@SETTINGS
@given(payload=st.binary(max_size=600), domain=st.integers(1, 4))
def test_random_payload_with_valid_header_and_checksum(payload: bytes, domain: int) -> None:
    _check_all_decoders(frame_with(payload, domain=domain))


# Plausible record sequences: known type codes with lengths near their body sizes, both forms.
_codes = st.one_of(st.sampled_from(sorted(TLV_TYPES)), st.integers(1, 255))


@st.composite
def plausible_payloads(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(1, 4))):
        code = draw(_codes)
        size = getattr(TLV_TYPES.get(code), "FIXED_SIZE", 0)
        ln = max(0, size + draw(st.integers(-3, 12)))
        body = draw(st.binary(min_size=ln, max_size=ln))
        if draw(st.booleans()) and ln > 0:
            # variable tail: a short length-prefixed field, sometimes lying
            body += bytes([draw(st.integers(0, 8))]) + draw(st.binary(max_size=8))
        if ln + len(body) > 255 or draw(st.integers(0, 9)) == 0:
            claimed = max(0, len(body) + draw(st.sampled_from([0, 0, 0, 1, -1])))  # sometimes lying
            out += struct.pack("<BBI", 0, code, claimed) + body
        else:
            out += bytes((code, min(255, len(body)))) + body
    return out


@SETTINGS
@given(payload=plausible_payloads())
def test_plausible_records_with_valid_checksum(payload: bytes) -> None:
    _check_all_decoders(frame_with(payload))


# ---- mutated valid frames ----

_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.just(0)),
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    frame=st.sampled_from(FRAMES),
    mutations=st.lists(_mutation, min_size=1, max_size=4),
    fix=st.sampled_from(["none", "checksum", "length+checksum"]),
)
def test_mutated_frames(frame: bytes, mutations: list[tuple[str, int, int]], fix: str) -> None:
    b = bytearray(frame)
    for op, pos, val in mutations:
        if not b:
            break
        i = pos % len(b)
        if op == "flip":
            b[i] ^= 1 << val
        elif op == "set":
            b[i] = val
        elif op == "truncate":
            del b[i:]
        elif op == "insert":
            b.insert(i, val)
        else:
            del b[i]
    data = bytes(b)
    if fix != "none":
        data = refresh(data, fix_len=fix == "length+checksum")
    _check_all_decoders(data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=st.sampled_from(FRAMES), data=st.data())
def test_concatenated_mutated_stream(frame: bytes, data: st.DataObject) -> None:
    """A damaged frame in the middle of a stream: messages before it decode, then ProtocolError or waiting."""
    i = data.draw(st.integers(0, len(frame) - 1))
    bad = bytearray(frame)
    bad[i] ^= data.draw(st.integers(1, 255))
    stream = FRAMES[0] + bytes(bad) + FRAMES[1]
    dec = FrameDecoder()
    dec.receive_data(stream)
    assert dec.next_message() == decode(FRAMES[0])
    try:
        list(dec)
    except ProtocolError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=st.sampled_from(FRAMES), data=st.data())
def test_payloads_of_one_shape_decode_alike(frame: bytes, data: st.DataObject) -> None:
    """The shape ``tlvs_valid`` records (the bytes its walk branched on, the text fields) decides
    validity: rewriting any other byte of a valid payload keeps it decodable as long as the texts
    are ASCII (the relay checks a block of equal-size frames by comparing their shapes)."""
    marks: list[int] = []
    texts: list[tuple[int, int]] = []
    if not tlvs_valid(frame, 52, len(frame), marks, texts):
        return
    in_text = {i for p, n in texts for i in range(p, p + n)}
    free = [i for i in range(52, len(frame)) if i not in set(marks)]
    b = bytearray(frame)
    for i in in_text:
        b[i] = 0x61
    for i in data.draw(st.lists(st.sampled_from(free), max_size=12)) if free else []:
        b[i] = data.draw(st.integers(0, 0x7F if i in in_text else 0xFF))
    decode_tlvs(b, 52, len(b))  # raises if the shape did not decide
    assert tlvs_valid(b, 52, len(b))
    # and a marked byte is one the walk depends on: changing it may change the outcome, never silently
    if marks:
        i = data.draw(st.sampled_from(marks))
        b[i] ^= data.draw(st.integers(1, 255))
        assert tlvs_valid(b, 52, len(b)) == (_outcome(lambda d: decode_tlvs(d, 52, len(d)), bytes(b))[0] == "ok")


# ---- bounded memory ----


def _peak_alloc(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        try:
            fn()
        except ProtocolError:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\x64\xff\xff\xff\xff",  # extended record claiming 4 GiB
        b"\x00\xc8\xff\xff\xff\x7f" + b"\x00" * 100,  # unknown type claiming 2 GiB
        b"\x65\x0c\x01" + b"\x00" * 8 + b"\xff\xff\x04",  # list of 65535 items in a 12-byte body
        b"\x16\x02\xff\xff",  # ArbitragePath claiming 65535 hops
        b"\x00\x16\x06\x00\x00\x00\xff\xff\x00\x00\x00\x00",  # ... in the extended form
        b"\x70\x04\xff\xff{}",  # Stats blob claiming 65535 bytes
        b"\x6f\x03\x01\x00\xff",  # Goodbye string claiming 255 bytes
    ],
)
def test_length_fields_never_drive_allocation(payload: bytes) -> None:
    data = frame_with(payload)
    for fn in (lambda: decode(data), lambda: ref_decode(data)):
        assert _peak_alloc(fn) < 256 * 1024
    dec = FrameDecoder()
    dec.receive_data(data)
    assert _peak_alloc(lambda: list(dec)) < 256 * 1024


def test_oversize_header_is_rejected_without_allocation() -> None:
    header = frame_with(b"")[:20] + struct.pack("<I", 0xFFFFFFFF) + frame_with(b"")[24:52]
    for fn in (lambda: decode(header), lambda: ref_decode(header), lambda: decode(header + b"\x00" * 1000)):
        with pytest.raises(FrameError):
            fn()
        assert _peak_alloc(fn) < 64 * 1024


# ---- the checksum catches every single-bit flip outside [8, 16) ----


def _sample_frames() -> list[bytes]:
    cases = {c["name"]: c for c in vector_files()["messages.json"]["cases"]}
    hb = {c["name"]: c for c in vector_files()["100_heartbeat.json"]["cases"]}
    return [
        bytes.fromhex(hb["typical"]["hex"]),  # fused fast path: one fixed-size compact record
        bytes.fromhex(cases["v2swap_always_extended"]["hex"]),  # one extended record
        bytes.fromhex(cases["signal_bundle"]["hex"]),  # several records, lists, strings
        bytes.fromhex(cases["empty"]["hex"]),  # header only
    ]


def _expected(data: bytes, i: int, bit: int) -> set[type] | None:
    """The error classes allowed for flipping ``bit`` of byte ``i`` (None: must decode)."""
    if 8 <= i < 16:
        return None
    if i < 4 or i == 17:
        return {FrameError}
    if 4 <= i < 8:
        return {ChecksumError}
    if i == 16:
        return {FrameError} if not 1 <= data[16] ^ (1 << bit) <= 4 else {ChecksumError}
    if 20 <= i < 24:
        return {FrameError, ChecksumError}  # a longer claim truncates the frame; a shorter one fails the CRC
    return {ChecksumError}


@pytest.mark.parametrize("index", range(4), ids=["heartbeat", "v2swap-extended", "signal-bundle", "empty"])
def test_every_single_bit_flip_is_detected_except_domain_seq(index: int) -> None:
    frame = _sample_frames()[index]
    original = decode(frame)
    for i in range(len(frame)):
        for bit in range(8):
            b = bytearray(frame)
            b[i] ^= 1 << bit
            data = bytes(b)
            allowed = _expected(frame, i, bit)
            if allowed is None:
                m = decode(data)
                assert m == original._replace(domain_seq=original.domain_seq ^ (1 << (8 * (i - 8) + bit)))
                continue
            with pytest.raises(ProtocolError) as info:
                decode(data)
            assert type(info.value) in allowed, f"byte {i} bit {bit}: {type(info.value).__name__}"
            # the streaming decoder: same verdict, except that a longer length claim makes it wait
            dec = FrameDecoder()
            dec.receive_data(data)
            try:
                got = dec.next_message()
            except ProtocolError as exc:
                assert type(exc) in allowed
            else:
                assert got is None and 20 <= i < 24


def test_every_single_bit_flip_reference_codec() -> None:
    frame = _sample_frames()[0]
    for i in range(len(frame)):
        for bit in range(8):
            b = bytearray(frame)
            b[i] ^= 1 << bit
            allowed = _expected(frame, i, bit)
            if allowed is None:
                assert ref_decode(bytes(b)) == decode(bytes(b))
                continue
            with pytest.raises(ProtocolError) as info:
                ref_decode(bytes(b))
            assert type(info.value) in allowed, f"byte {i} bit {bit}"


def test_frame_checksum_is_crc32_of_bytes_16_to_end() -> None:
    for frame in FRAMES:
        assert struct.unpack_from("<I", frame, 4)[0] == zlib.crc32(frame[16:])


def test_random_frames_checksum_detects_burst_errors() -> None:
    """Any error burst of up to 32 bits inside [16, end) is detected (a CRC-32 property)."""
    import random

    rng = random.Random(1234)
    frame = _sample_frames()[2]
    for _ in range(3000):
        i = rng.randrange(16, len(frame) - 4)
        burst = rng.randrange(1, 1 << 32) | 1
        b = bytearray(frame)
        for k in range(4):
            b[i + k] ^= (burst >> (8 * k)) & 0xFF
        with pytest.raises((ChecksumError, FrameError)):
            decode(bytes(b))


def test_message_with_every_registered_type_survives_mutation_smoke() -> None:
    """Deterministic smoke pass over every vector frame: flip each byte of the payload to 0x00/0xff with the
    checksum fixed up, so the TLV layer (not the CRC) must cope."""
    for frame in FRAMES[::3]:
        for i in range(52, len(frame), max(1, len(frame) // 12)):
            for v in (0x00, 0xFF):
                b = bytearray(frame)
                b[i] = v
                _check_all_decoders(refresh(b, fix_len=False))
