"""Range errors, compatibility rules (unknown types, appended fields) and instrument ids."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_testkit import (
    BYTES_KINDS,
    ID_KINDS,
    INT_KINDS,
    int_range,
    spec_fields,
    spec_registry,
    typical,
    vector_files,
)

from protocol import (
    MAX_PAYLOAD,
    TLV,
    TLV_TYPES,
    FieldRangeError,
    LocalProtocolError,
    Message,
    PoolId,
    ProtocolError,
    TokenId,
    UnknownTLV,
    Venue,
    VenueKind,
    decode,
    encode,
)
from protocol import reference as R
from protocol.market import TickLiquidity, V2Reserves
from protocol.reference import ref_decode, ref_encode
from protocol.signals import ArbitragePath
from protocol.system import Goodbye, Heartbeat, Stats, Subscribe, TypeCode

ENCODERS = {"fast": encode, "reference": ref_encode}
CODES = sorted(TLV_TYPES)


def _domain(code: int) -> int:
    return 1 if code < 20 else 2 if code < 40 else 3 if code < 100 else 4


def _with(obj: Any, **changes: Any) -> Any:
    return type(obj)(**{**vars(obj), **changes})


def _assert_refused(obj: Any, error: type[ProtocolError] = FieldRangeError) -> None:
    m = Message(domain=4, tlvs=[obj])
    for enc in ENCODERS.values():
        with pytest.raises(error):
            enc(m)
    if error is FieldRangeError:
        with pytest.raises(FieldRangeError):
            obj.encode()


# ---------------------------------------------------------------------------
# Range errors: never truncate, never wrap
# ---------------------------------------------------------------------------


def _bad_values(kind: str) -> list[Any]:
    if kind in INT_KINDS:
        lo, hi = int_range(kind)
        return [hi + 1, lo - 1, 1 << 600, -(1 << 600), 1.0, "1", None, b"\x01"]
    if kind in BYTES_KINDS:
        n = BYTES_KINDS[kind]
        return [b"\x01" * (n - 1), b"\x01" * (n + 1), b"", "0x" + "00" * n, None]
    if kind in ID_KINDS:
        return [-1, 1 << (8 * ID_KINDS[kind]), 1.5, "1", None]
    if kind == "string":
        return ["x" * 256, "\u20ac" * 86, b"abc", 5, None]
    if kind == "bytes":
        return [b"\x00" * 65536, "abc", None]
    return [None, "abc", (None,), (1, 2)]  # lists


@pytest.mark.parametrize("code", CODES, ids=lambda c: TLV_TYPES[c].__name__)
def test_out_of_range_values_raise_field_range_error(code: int) -> None:
    base = typical(code)
    for f in spec_fields(code):
        for bad in _bad_values(f.kind):
            obj = _with(base, **{f.name: bad})
            m = Message(domain=_domain(code), tlvs=[obj])
            for name, enc in ENCODERS.items():
                with pytest.raises(FieldRangeError):
                    enc(m)
                    pytest.fail(f"{name} encoded {type(base).__name__}.{f.name}={bad!r}")
            with pytest.raises(FieldRangeError) as info:
                obj.encode()
            assert f.name in str(info.value), "the error names the field"


@pytest.mark.parametrize("code", CODES, ids=lambda c: TLV_TYPES[c].__name__)
def test_values_at_the_limits_are_accepted(code: int) -> None:
    base = typical(code)
    for f in spec_fields(code):
        if f.kind in INT_KINDS:
            values: list[Any] = list(int_range(f.kind))
        elif f.kind in ID_KINDS:
            values = [0, (1 << (8 * ID_KINDS[f.kind])) - 1]
        elif f.kind == "string":
            values = ["x" * 255, "\u20ac" * 85, ""]
        else:
            continue
        for v in values:
            m = Message(domain=_domain(code), tlvs=[_with(base, **{f.name: v})])
            assert decode(encode(m)) == m == ref_decode(ref_encode(m))


def test_the_specific_limits_in_the_brief() -> None:
    r = typical(4)
    _assert_refused(_with(r, reserve0=1 << 112))
    _assert_refused(_with(r, reserve1=-1))
    s = typical(6)
    _assert_refused(_with(s, tick=1 << 23))
    _assert_refused(_with(s, tick=-(1 << 23) - 1))
    assert decode(encode(Message(domain=1, tlvs=[_with(s, tick=-(1 << 23))]))).tlvs[0].tick == -(1 << 23)
    sw = typical(5)
    _assert_refused(_with(sw, sender=b"\x00" * 19))
    _assert_refused(_with(sw, tx_hash=b"\x00" * 31))
    _assert_refused(Goodbye(code=1, reason="x" * 256))


def test_bool_is_accepted_as_an_integer() -> None:
    """Decision (specs/protocol.md, "Range errors"): bool is an int subclass; both codecs encode True as 1."""
    as_bool = Message(domain=4, tlvs=[Heartbeat(epoch=True, head_seq=False)], source_id=True)
    as_int = Message(domain=4, tlvs=[Heartbeat(epoch=1, head_seq=0)], source_id=1)
    assert encode(as_bool) == ref_encode(as_bool) == encode(as_int)
    got = decode(encode(as_bool))
    assert type(got.tlvs[0].epoch) is int and type(got.source_id) is int


@pytest.mark.parametrize(
    "field, bad",
    [
        ("source_id", 1 << 32),
        ("source_id", -1),
        ("source_seq", 1 << 64),
        ("domain_seq", 1 << 64),
        ("event_time_ns", -1),
        ("receive_time_ns", 1 << 64),
        ("flags", 1 << 16),
        ("flags", -1),
        ("event_time_ns", 1.0),
        ("source_seq", "1"),
    ],
)
def test_header_fields_out_of_range(field: str, bad: Any) -> None:
    m = Message(domain=4, tlvs=[Heartbeat(epoch=1, head_seq=2)], **{field: bad})
    for enc in ENCODERS.values():
        with pytest.raises(FieldRangeError):
            enc(m)


def test_header_fields_at_their_limits() -> None:
    top = (1 << 64) - 1
    m = Message(
        domain=4,
        source_id=(1 << 32) - 1,
        source_seq=top,
        domain_seq=top,
        event_time_ns=top,
        receive_time_ns=top,
        flags=0xFFFF,
    )
    assert decode(encode(m)) == m == ref_decode(ref_encode(m))


def test_message_rejects_bad_domains_and_non_records() -> None:
    for d in (0, 5, 255, -1, True, "1", None):
        with pytest.raises(FieldRangeError):  # a local error
            Message(domain=d)
    with pytest.raises(FieldRangeError):
        Message(domain=1, tlvs=[b"\x04\x00"])  # type: ignore[list-item]


def test_list_limits() -> None:
    ok = Subscribe(mode=1, from_seq=0, types=tuple(TypeCode(code=i % 256) for i in range(65535)))
    m = Message(domain=4, tlvs=[ok])
    wire = encode(m)  # (the reference codec needs seconds for 65535 items: checked on 700 below)
    assert decode(wire) == m and wire[52:58] == b"\x00\x65" + (65535 + 11).to_bytes(4, "little")
    small = Message(domain=4, tlvs=[_with(ok, types=ok.types[:700])])
    assert encode(small) == ref_encode(small) and ref_decode(encode(small)) == small
    _assert_refused(_with(ok, types=ok.types + (TypeCode(code=1),)))
    _assert_refused(Subscribe(mode=1, from_seq=0, types=(TypeCode(code=256),)))
    _assert_refused(Subscribe(mode=1, from_seq=0, types=(Heartbeat(epoch=1, head_seq=1),)))  # type: ignore[arg-type]
    _assert_refused(ArbitragePath(hops=(TickLiquidity(tick=1, liquidity_net=1),)))  # type: ignore[arg-type]
    hop = typical(22).hops[0]
    _assert_refused(ArbitragePath(hops=(_with(hop, amount_in=-1),)))
    _assert_refused(ArbitragePath(hops=(_with(hop, token_in=b"\x00"),)))


def test_blob_limits() -> None:
    m = Message(domain=4, tlvs=[Stats(json=b"\xff" * 65535)])
    assert decode(encode(m)) == m == ref_decode(ref_encode(m))
    _assert_refused(Stats(json=b"\x00" * 65536))


def test_payload_limit() -> None:
    """MAX_PAYLOAD bytes of records encode; one more is refused with FieldRangeError (a local error)."""
    exact = Message(domain=4, tlvs=[UnknownTLV(type_code=200, body=b"\x00" * (MAX_PAYLOAD - 6))])
    assert len(encode(exact)) == 52 + MAX_PAYLOAD == len(ref_encode(exact))
    over = exact._replace(tlvs=(UnknownTLV(type_code=200, body=b"\x00" * (MAX_PAYLOAD - 5)),))
    for enc in ENCODERS.values():
        with pytest.raises(FieldRangeError):
            enc(over)
    # a list within its own limit can still overflow the payload (fast codec only: the reference is slow)
    ticks = tuple(TickLiquidity(tick=0, liquidity_net=0) for _ in range(65535))  # 1.2 MiB in one list
    with pytest.raises(FieldRangeError):
        encode(Message(domain=1, tlvs=[_with(typical(8), ticks=ticks)]))


# ---- defects found by these tests, fixed in b6ef749; kept as regression tests ----


@pytest.mark.parametrize("bad", [5, [1, 2], "abc", None, 1.5])
def test_blob_accepts_only_bytes(bad: Any) -> None:
    """``bytes(5)`` is five zero bytes: a blob must be given bytes, never coerced."""
    _assert_refused(Stats(json=bad))


def test_blob_accepts_bytes_like() -> None:
    for v in (b"ab", bytearray(b"ab"), memoryview(b"ab")):
        m = Message(domain=4, tlvs=[Stats(json=v)])
        assert encode(m) == ref_encode(m) and decode(encode(m)).tlvs[0].json == b"ab"


def test_unencodable_string_raises_field_range_error() -> None:
    _assert_refused(Goodbye(code=1, reason="\ud800"))
    _assert_refused(Goodbye(code=1, reason="ok\udfff"))


@pytest.mark.parametrize("code", ["x", None, 1.0, True])
def test_unknown_tlv_with_a_non_int_code(code: Any) -> None:
    _assert_refused(UnknownTLV(type_code=code, body=b""))


@pytest.mark.parametrize("body", ["x", 5, None])
def test_unknown_tlv_with_a_non_bytes_body(body: Any) -> None:
    _assert_refused(UnknownTLV(type_code=200, body=body))


def test_replace_cannot_smuggle_a_bad_domain() -> None:
    m = Message(domain=1)
    for d in (0, 5, 9, True):
        with pytest.raises(FieldRangeError):
            m._replace(domain=d)
    assert m._replace(domain=2).domain == 2


def test_bad_domain_built_around_the_constructor_is_refused_by_the_reference() -> None:
    bypass = tuple.__new__(Message, (9, (), 0, 0, 0, 0, 0, 0))
    with pytest.raises(FieldRangeError):
        ref_encode(bypass)


def test_out_of_range_id_instances_raise_field_range_error() -> None:
    _assert_refused(_with(typical(4), pool=PoolId(-1)))
    _assert_refused(_with(typical(4), pool=PoolId(1 << 536)))
    _assert_refused(_with(typical(21), profit_token=TokenId(-1)))
    repr(PoolId(-1)), repr(TokenId(1 << 192))  # noqa: B018 -- must not raise


def test_pool_id_parts_with_an_unlisted_kind() -> None:
    """A kind byte outside VenueKind (a newer writer's) comes back as the raw code."""
    p = PoolId.of(1, 1, 7, "0x" + "01" * 20, "0x" + "02" * 20, "0x" + "03" * 20)
    assert p.kind == 7 and p.parts()[2] == 7
    assert PoolId.of(*p.parts()) == p
    assert "kind=7" in repr(p)
    assert (
        PoolId.of(1, 1, 2, "0x" + "01" * 20, "0x" + "02" * 20, "0x" + "03" * 20).kind is VenueKind.UNISWAP_V3
    )


@pytest.mark.parametrize(
    "bad", ["-" + "f" * 39, " " + "f" * 39, "0x" + "0" * 37 + "0_1", "0x" + "g" * 40, "+" + "1" * 39]
)
def test_token_id_rejects_non_hex_addresses(bad: str) -> None:
    with pytest.raises(FieldRangeError):
        TokenId.of(1, bad)


def test_unknown_tlv_code_range() -> None:
    for code in (0, 256, -1):
        _assert_refused(UnknownTLV(type_code=code, body=b""))


def test_local_errors_are_local() -> None:
    assert issubclass(FieldRangeError, LocalProtocolError)


# ---------------------------------------------------------------------------
# Compatibility: unknown types, appended fields
# ---------------------------------------------------------------------------


def test_unknown_type_round_trips_byte_identically() -> None:
    case = next(c for c in vector_files()["messages.json"]["cases"] if c["name"] == "unknown_types")
    wire = bytes.fromhex(case["hex"])
    for dec, enc in ((decode, encode), (ref_decode, ref_encode)):
        m = dec(wire)
        assert [type(t).__name__ for t in m.tlvs] == ["Heartbeat", "UnknownTLV", "UnknownTLV", "Ack"]
        assert enc(m) == wire


def test_old_reader_skips_types_it_does_not_know() -> None:
    """An old reader (a registry without some types) keeps them as UnknownTLV and re-emits them unchanged."""
    bundle = next(c for c in vector_files()["messages.json"]["cases"] if c["name"] == "signal_bundle")
    wire = bytes.fromhex(bundle["hex"])
    new = decode(wire)
    for missing in ({21}, {22, 120}, {20, 21, 22, 120}):
        old = R.ReferenceCodec({k: v for k, v in R.BODIES.items() if k not in missing})
        m = old.decode(wire)
        for a, b in zip(m.tlvs, new.tlvs):
            if type(b).TYPE in missing:
                assert isinstance(a, UnknownTLV) and a.type_code == type(b).TYPE
                assert a.body == b.encode()[6 if b.encode()[0] == 0 else 2 :]
            else:
                assert a == b
        assert old.encode(m) == wire == encode(m)  # a relay on the old registry forwards the bytes unchanged


class FutureV2Reserves(TLV, register=False):
    """V2Reserves as a newer writer might define it: one field appended."""

    TYPE = 4
    pool: int
    block_number: int
    log_index: int
    reserve0: int
    reserve1: int
    fee_ppm: int


class FutureThing(TLV, register=False):
    TYPE = 199
    a: int
    label: str


NEW_WRITER = R.ReferenceCodec(
    {
        **R.BODIES,
        4: R.record(
            FutureV2Reserves,
            "pool" / R.pool_id,
            "block_number" / R.uint64,
            "log_index" / R.uint32,
            "reserve0" / R.uint112,
            "reserve1" / R.uint112,
            "fee_ppm" / R.uint32,
        ),
        199: R.record(FutureThing, "a" / R.uint64, "label" / R.string),
    }
)


@settings(max_examples=30, deadline=None)
@given(fee=st.integers(0, (1 << 32) - 1), a=st.integers(0, (1 << 64) - 1), label=st.text(max_size=40))
def test_new_writer_old_reader(fee: int, a: int, label: str) -> None:
    r = typical(4)
    future = FutureV2Reserves(**vars(r), fee_ppm=fee)
    thing = FutureThing(a=a, label=label)
    wire = NEW_WRITER.encode(Message(domain=1, tlvs=[future, thing, Heartbeat(epoch=1, head_seq=2)]))
    for dec in (decode, ref_decode):
        m = dec(wire)
        # appended field: the known prefix decodes
        assert m.tlvs[0] == r
        # new type: skipped by length, kept verbatim
        assert isinstance(m.tlvs[1], UnknownTLV) and m.tlvs[1].type_code == 199
        assert m.tlvs[2] == Heartbeat(epoch=1, head_seq=2)
        # a relay on the old registry re-emits the new type unchanged, so a new reader still gets it ...
        again = NEW_WRITER.decode(encode(m._replace(tlvs=m.tlvs[1:])))
        assert again.tlvs == (thing, Heartbeat(epoch=1, head_seq=2))
        # ... but re-encoding a known type drops the appended field (relays forward frames, not records)
        assert encode(Message(domain=1, tlvs=[m.tlvs[0]]))[52:] == r.encode()


def test_new_reader_rejects_a_shorter_body() -> None:
    """Appending is one-way: a body shorter than the reader's fixed fields is a TLVError."""
    r = encode(Message(domain=1, tlvs=[typical(4)]))
    with pytest.raises(ProtocolError):
        NEW_WRITER.decode(r)


def test_trailing_body_bytes_are_ignored_for_every_type() -> None:
    for code in CODES:
        tlv = typical(code)
        body = tlv.encode()
        body = body[6:] if body[0] == 0 else body[2:]
        extra = body + b"\xab\xcd\xef"
        rec = (
            bytes((code, len(extra)))
            if len(extra) <= 255
            else bytes((0, code)) + len(extra).to_bytes(4, "little")
        )
        payload = rec + extra
        import struct
        import zlib

        covered = struct.pack("<BBHIQQQI", _domain(code), 0, 0, len(payload), 0, 0, 0, 0) + payload
        frame = b"AP\x01\x00" + struct.pack("<IQ", zlib.crc32(covered), 0) + covered
        assert decode(frame).tlvs == (tlv,) == ref_decode(frame).tlvs, TLV_TYPES[code].__name__


def test_both_forms_accepted_for_every_type() -> None:
    import struct
    import zlib

    for code in CODES:
        tlv = typical(code)
        enc = tlv.encode()
        body = enc[6:] if enc[0] == 0 else enc[2:]
        forms = [bytes((0, code)) + struct.pack("<I", len(body)) + body]
        if len(body) <= 255:
            forms.append(bytes((code, len(body))) + body)
        for payload in forms:
            covered = struct.pack("<BBHIQQQI", 1, 0, 0, len(payload), 0, 0, 0, 0) + payload
            frame = b"AP\x01\x00" + struct.pack("<IQ", zlib.crc32(covered), 0) + covered
            assert decode(frame).tlvs == (tlv,) == ref_decode(frame).tlvs


def test_record_types_do_not_check_domains() -> None:
    """Routing is by header domain; the codec accepts any registered type in any domain."""
    for d in (1, 2, 3, 4):
        m = Message(domain=d, tlvs=[typical(4), typical(100)])
        assert decode(encode(m)) == m == ref_decode(ref_encode(m))


# ---------------------------------------------------------------------------
# Instrument ids
# ---------------------------------------------------------------------------

addresses = st.binary(min_size=20, max_size=20)
chains = st.one_of(st.sampled_from([0, 1, 10, 8453, (1 << 32) - 1]), st.integers(0, (1 << 32) - 1))
venues = st.one_of(st.sampled_from(list(Venue)), st.integers(0, 0xFFFF))
kinds = st.sampled_from(list(VenueKind))


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


@settings(max_examples=50, deadline=None)
@given(chain=chains, addr=addresses)
def test_token_id_parts_round_trip(chain: int, addr: bytes) -> None:
    t = TokenId.of(chain, addr)
    assert t.parts() == (chain, _hex(addr))
    assert TokenId.of(*t.parts()) == t == TokenId.of(chain, _hex(addr).upper().replace("0X", "0x"))
    assert int(t) == (chain << 160) | int.from_bytes(addr, "big")  # the spec's bit layout
    assert 0 <= t < 1 << 192


@settings(max_examples=50, deadline=None)
@given(chain=chains, venue=venues, kind=kinds, addr=addresses, a=addresses, b=addresses)
def test_pool_id_parts_round_trip(chain: int, venue: int, kind: int, addr: bytes, a: bytes, b: bytes) -> None:
    if a == b:
        with pytest.raises(FieldRangeError):
            PoolId.of(chain, venue, kind, addr, a, b)
        return
    p = PoolId.of(chain, venue, kind, addr, a, b)
    t0, t1 = sorted((a, b))
    assert p.parts() == (chain, venue, int(kind), _hex(addr), _hex(t0), _hex(t1))
    assert PoolId.of(*p.parts()) == p == PoolId.of(chain, venue, kind, addr, b, a)
    assert p.token0 == TokenId.of(chain, t0) and p.token1 == TokenId.of(chain, t1)
    assert p.other_token(p.token0) == p.token1 and p.other_token(p.token1) == p.token0
    # the spec's bit layout, most significant first
    expected = (
        (chain << 504)
        | (int.from_bytes(t0, "big") << 344)
        | (int.from_bytes(t1, "big") << 184)
        | (venue << 168)
        | (int(kind) << 160)
        | int.from_bytes(addr, "big")
    )
    assert int(p) == expected
    assert p.pair_key == expected >> 184
    # on the wire: a 67-byte little-endian integer
    body = V2Reserves(pool=p, block_number=0, log_index=0, reserve0=0, reserve1=0).encode()[2:]
    assert body[:67] == expected.to_bytes(67, "little")


@settings(max_examples=50, deadline=None)
@given(
    chain=chains,
    a=addresses,
    b=addresses,
    v1=venues,
    v2=venues,
    k1=kinds,
    k2=kinds,
    p1=addresses,
    p2=addresses,
    other=addresses,
    chain2=chains,
)
def test_same_pair(
    chain: int,
    a: bytes,
    b: bytes,
    v1: int,
    v2: int,
    k1: int,
    k2: int,
    p1: bytes,
    p2: bytes,
    other: bytes,
    chain2: int,
) -> None:
    if a == b:
        return
    x = PoolId.of(chain, v1, k1, p1, a, b)
    y = PoolId.of(chain, v2, k2, p2, b, a)
    assert x.same_pair(y) and y.same_pair(x) and x.pair_key == y.pair_key
    if chain2 != chain:
        assert not x.same_pair(PoolId.of(chain2, v1, k1, p1, a, b))
    if other not in (a, b):
        assert not x.same_pair(PoolId.of(chain, v1, k1, p1, a, other))
        assert not x.same_pair(PoolId.of(chain, v1, k1, p1, other, b))


def test_same_pair_across_real_venues() -> None:
    weth, usdc, dai = (
        "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
        "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
        "0x6b175474e89094c44da98b954eedeac495271d0f",
    )
    uni = PoolId.of(
        1, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, "0xb4e16d0168e52d35cacd2c6185b44281ec28c9dc", usdc, weth
    )
    sushi = PoolId.of(
        1, Venue.SUSHISWAP, VenueKind.UNISWAP_V2, "0x397ff1542f962076d0bfe58ea045ffa2d347aca0", weth, usdc
    )
    v3 = PoolId.of(
        1, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640", usdc, weth
    )
    base = PoolId.of(8453, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, "0x" + "11" * 20, usdc, weth)
    dai_pool = PoolId.of(1, Venue.UNISWAP_V2, VenueKind.UNISWAP_V2, "0x" + "22" * 20, dai, weth)
    assert uni.same_pair(sushi) and uni.same_pair(v3) and sushi.same_pair(v3)
    assert not uni.same_pair(base)  # same addresses, other chain
    assert not uni.same_pair(dai_pool)
    assert uni != sushi != v3


def test_ids_decode_as_id_types_with_any_bits() -> None:
    top = PoolId((1 << 536) - 1)
    m = Message(domain=1, tlvs=[_with(typical(4), pool=top)])
    for dec in (decode, ref_decode):
        got = dec(encode(m)).tlvs[0].pool
        assert type(got) is PoolId and got == top and got.chain_id == (1 << 32) - 1 and got.venue == 0xFFFF


def test_spec_registry_is_loaded() -> None:  # guard: the tables above really were parsed
    assert len(spec_registry()) == len(TLV_TYPES) >= 25  # 28 after the removals in "Removed types"
