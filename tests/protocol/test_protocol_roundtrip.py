"""Property tests: every type round-trips; the fast and reference codecs produce and accept identical bytes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_testkit import any_tlv, int_range, messages, spec_fields, tlv_strategy

from protocol import TLV_TYPES, Message, PoolId, TokenId, UnknownTLV, decode, decode_frame, encode
from protocol.reference import ref_decode, ref_decode_tlvs, ref_encode, ref_encode_tlv

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _domain(code: int) -> int:
    return 1 if code < 20 else 2 if code < 40 else 3 if code < 100 else 4


def _check_types(obj: Any) -> None:
    """Decoded values have the spec's Python types (ids as PoolId/TokenId, lists as tuples, no bools)."""
    for f in spec_fields(type(obj).TYPE):
        v = getattr(obj, f.name)
        if f.kind == "pool_id":
            assert type(v) is PoolId
        elif f.kind == "token_id":
            assert type(v) is TokenId
        elif f.kind.startswith("list<"):
            assert type(v) is tuple
        elif f.kind in ("string",):
            assert type(v) is str
        elif f.kind in ("address", "bytes32", "bytes"):
            assert type(v) is bytes
        else:
            assert type(v) is int


@pytest.mark.parametrize("code", sorted(TLV_TYPES), ids=lambda c: TLV_TYPES[c].__name__)
@SETTINGS
@given(data=st.data())
def test_every_type_round_trips_in_both_codecs(code: int, data: st.DataObject) -> None:
    tlv = data.draw(tlv_strategy(code))
    m = Message(domain=_domain(code), tlvs=[tlv], source_seq=7, event_time_ns=1)
    wire = encode(m)
    assert ref_encode(m) == wire, "fast and reference encoders disagree"
    assert tlv.encode() == ref_encode_tlv(tlv) == wire[52:]
    for got in (decode(wire), ref_decode(wire), decode_frame(wire + b"\x00" * 3)[0]):
        assert got == m
        _check_types(got.tlvs[0])
    assert ref_decode_tlvs(wire[52:]) == (tlv,)


@pytest.mark.parametrize("code", sorted(TLV_TYPES), ids=lambda c: TLV_TYPES[c].__name__)
def test_extremes_of_every_integer_field_round_trip(code: int) -> None:
    """Each integer field at both ends of its width (the others at their other end), in both codecs."""
    from protocol_testkit import typical

    base = typical(code)
    for f in spec_fields(code):
        try:
            lo, hi = int_range(f.kind)
        except KeyError:
            continue
        for v in (lo, hi):
            obj = type(base)(**{**vars(base), f.name: v})
            m = Message(domain=_domain(code), tlvs=[obj])
            wire = encode(m)
            assert ref_encode(m) == wire
            assert decode(wire) == m == ref_decode(wire)
            assert getattr(decode(wire).tlvs[0], f.name) == v


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(m=messages(st.lists(any_tlv(), max_size=6)))
def test_mixed_messages_round_trip_in_both_codecs(m: Message) -> None:
    wire = encode(m)
    assert ref_encode(m) == wire
    assert decode(wire) == m
    assert ref_decode(wire) == m
    # unknown records come back as UnknownTLV and re-encode byte for byte
    assert encode(decode(wire)) == wire


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=messages(st.lists(any_tlv(), min_size=1, max_size=4)), stamp=st.integers(0, (1 << 64) - 1))
def test_relay_stamping_keeps_the_checksum(m: Message, stamp: int) -> None:
    """Stamping domain_seq in place (bytes [8,16)) leaves a valid frame for both decoders."""
    from protocol.header import stamp_domain_seq

    buf = bytearray(encode(m))
    stamp_domain_seq(buf, 0, stamp)
    stamped = m._replace(domain_seq=stamp)
    assert bytes(buf) == encode(stamped) == ref_encode(stamped)
    assert decode(bytes(buf)) == stamped == ref_decode(bytes(buf))


@settings(max_examples=40, deadline=None)
@given(code=st.integers(1, 255).filter(lambda c: c not in TLV_TYPES), body=st.binary(max_size=600))
def test_unknown_types_round_trip_byte_identically(code: int, body: bytes) -> None:
    u = UnknownTLV(type_code=code, body=body)
    m = Message(domain=4, tlvs=[u])
    wire = encode(m)
    assert wire == ref_encode(m)
    assert wire[52] == (code if len(body) <= 255 else 0)
    assert decode(wire) == m == ref_decode(wire)
    assert encode(decode(wire)) == wire == ref_encode(ref_decode(wire))


def test_compact_extended_boundary() -> None:
    """255-byte bodies are compact, 256-byte bodies extended, in both codecs."""
    from protocol.system import Stats

    for n, first in ((253, 112), (254, 0)):  # Stats body = 2-byte length + n
        m = Message(domain=4, tlvs=[Stats(json=b"x" * n)])
        wire = encode(m)
        assert wire == ref_encode(m)
        assert wire[52] == first
        assert decode(wire) == m == ref_decode(wire)
