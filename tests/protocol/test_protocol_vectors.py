"""Golden vectors (specs/vectors/*.json): bytes <-> values, for the fast and the reference codec.

The vectors are committed files; nothing here regenerates them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from protocol_testkit import (
    message_from_json,
    spec_registry,
    tlv_from_json,
    type_vector_files,
    vector_files,
)

import protocol
from protocol import TLV_TYPES, FieldRangeError, Message, decode, encode
from protocol.reference import ref_decode, ref_encode

DECODERS = {"fast": decode, "reference": ref_decode}
ENCODERS = {"fast": encode, "reference": ref_encode}


def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    return s.replace("v_2", "v2").replace("v_3", "v3")


def _message_cases() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for fname, doc in vector_files().items():
        if fname.startswith("invalid"):
            continue
        for case in doc["cases"]:
            out.append((f"{fname}:{case['name']}", case))
    return out


MESSAGE_CASES = _message_cases()
CANONICAL = [(i, c) for i, c in MESSAGE_CASES if not c.get("decode_only")]
DECODE_ONLY = [(i, c) for i, c in MESSAGE_CASES if c.get("decode_only")]


def test_every_registered_type_has_a_vector_file() -> None:
    files = type_vector_files()
    by_type = {doc["type"]: (name, doc) for name, doc in files.items()}
    assert sorted(by_type) == sorted(TLV_TYPES), "a registered type has no vector file (run tools/specgen.py)"
    for code, (name, doc) in by_type.items():
        cls = TLV_TYPES[code]
        assert name == f"{code:03d}_{_snake(cls.__name__)}.json"
        assert doc["name"] == cls.__name__
        assert doc["domain"] == spec_registry()[code].domain
        assert doc["cases"], name
        # each case holds a record of the file's type
        for case in doc["cases"]:
            assert [t["type"] for t in case["tlvs"]] == [code]


def test_vector_set_includes_messages_and_invalid_inputs() -> None:
    names = set(vector_files())
    assert {"messages.json", "invalid.json", "invalid_values.json"} <= names
    assert len(DECODE_ONLY) >= 2
    assert len(vector_files()["invalid.json"]["cases"]) >= 20


@pytest.mark.parametrize("codec", ["fast", "reference"])
@pytest.mark.parametrize("case", [c for _, c in CANONICAL], ids=[i for i, _ in CANONICAL])
def test_vector_decodes_to_its_values(case: dict[str, Any], codec: str) -> None:
    data = bytes.fromhex(case["hex"])
    expected = message_from_json(case)
    got = DECODERS[codec](data)
    assert got == expected
    # the decoded objects have the spec's Python types
    for t in got.tlvs:
        for name, value in vars(t).items():
            if name in ("pool",):
                assert type(value) is protocol.PoolId
            if name in ("profit_token",):
                assert type(value) is protocol.TokenId
            assert type(value) is not bool


@pytest.mark.parametrize("codec", ["fast", "reference"])
@pytest.mark.parametrize("case", [c for _, c in CANONICAL], ids=[i for i, _ in CANONICAL])
def test_vector_values_encode_to_exactly_its_bytes(case: dict[str, Any], codec: str) -> None:
    assert ENCODERS[codec](message_from_json(case)).hex() == case["hex"]


@pytest.mark.parametrize("case", [c for _, c in CANONICAL], ids=[i for i, _ in CANONICAL])
def test_vector_frame_layout(case: dict[str, Any]) -> None:
    """Header fields at the spec's offsets, checksum over [16, end), records in canonical form."""
    import struct
    import zlib

    data = bytes.fromhex(case["hex"])
    magic, version, r0, csum, dseq, domain, r1, flags, plen, sseq, ev, rv, sid = struct.unpack_from(
        "<HBBIQBBHIQQQI", data
    )
    h = case["header"]
    assert (magic, version, r0, r1) == (0x5041, 1, 0, 0)
    assert data[:2] == b"AP"
    assert csum == zlib.crc32(data[16:])
    assert plen == len(data) - 52
    assert (domain, flags, sid) == (h["domain"], h["flags"], h["source_id"])
    assert (dseq, sseq, ev, rv) == tuple(
        int(h[k]) for k in ("domain_seq", "source_seq", "event_time_ns", "receive_time_ns")
    )
    # walk the records by hand: compact iff the body fits
    off, n = 52, 0
    while off < len(data):
        if data[off]:
            ln = data[off + 1]
            off += 2
        else:
            (ln,) = struct.unpack_from("<I", data, off + 2)
            assert ln > 255, "a writer uses the compact form whenever the body fits"
            off += 6
        off += ln
        n += 1
    assert off == len(data) and n == len(case["tlvs"])


@pytest.mark.parametrize("codec", ["fast", "reference"])
@pytest.mark.parametrize("case", [c for _, c in DECODE_ONLY], ids=[i for i, _ in DECODE_ONLY])
def test_decode_only_vectors(case: dict[str, Any], codec: str) -> None:
    """Accepted non-canonical input: decodes to the values, which re-encode to the canonical bytes."""
    expected = message_from_json(case)
    assert DECODERS[codec](bytes.fromhex(case["hex"])) == expected
    assert ENCODERS[codec](expected).hex() == case["canonical_hex"]
    assert DECODERS[codec](bytes.fromhex(case["canonical_hex"])) == expected


def test_stamped_vector_differs_only_in_domain_seq() -> None:
    cases = {c["name"]: c for c in vector_files()["messages.json"]["cases"]}
    a = bytes.fromhex(cases["signal_bundle"]["hex"])
    b = bytes.fromhex(cases["signal_bundle_stamped"]["hex"])
    assert len(a) == len(b)
    assert [i for i in range(len(a)) if a[i] != b[i]] and all(
        8 <= i < 16 for i in range(len(a)) if a[i] != b[i]
    )
    assert a[4:8] == b[4:8]


INVALID = vector_files()["invalid.json"]["cases"]


@pytest.mark.parametrize("codec", ["fast", "reference"])
@pytest.mark.parametrize("case", INVALID, ids=[c["name"] for c in INVALID])
def test_invalid_frame_vectors(case: dict[str, Any], codec: str) -> None:
    error = getattr(protocol, case["error"])
    assert issubclass(error, protocol.RemoteProtocolError)
    with pytest.raises(protocol.ProtocolError) as info:
        DECODERS[codec](bytes.fromhex(case["hex"]))
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"


@pytest.mark.parametrize("case", INVALID, ids=[c["name"] for c in INVALID])
def test_invalid_frame_vectors_in_a_stream(case: dict[str, Any]) -> None:
    """The streaming decoder rejects them too (or, for a truncated frame, keeps waiting)."""
    data = bytes.fromhex(case["hex"])
    dec = protocol.FrameDecoder()
    dec.receive_data(data)
    if case["name"] in ("truncated_header", "truncated_payload"):
        # not an error on a stream: the rest may still arrive
        assert list(dec) == [] and dec.buffered == len(data)
    elif case["name"] == "trailing_byte":
        assert len(list(dec)) == 1 and dec.buffered == 1
    else:
        with pytest.raises(getattr(protocol, case["error"])):
            list(dec)
        with pytest.raises(getattr(protocol, case["error"])):  # the decoder stays failed
            dec.next_message()


INVALID_VALUES = vector_files()["invalid_values.json"]["cases"]


@pytest.mark.parametrize("codec", ["fast", "reference"])
@pytest.mark.parametrize("case", INVALID_VALUES, ids=[c["name"] for c in INVALID_VALUES])
def test_invalid_value_vectors(case: dict[str, Any], codec: str) -> None:
    assert case["error"] == "FieldRangeError"
    tlv = tlv_from_json(case["tlv"])
    with pytest.raises(FieldRangeError):
        ENCODERS[codec](Message(domain=1, tlvs=[tlv]))
    if codec == "fast":
        with pytest.raises(FieldRangeError):
            tlv.encode()
