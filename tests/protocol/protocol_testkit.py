"""Shared helpers for tests/protocol: the spec tables, the golden vectors, hypothesis strategies.

Everything here is derived from ``specs/protocol.md`` (parsed) and written
independently of ``protocol.fields``: the tests compare the code against the
spec, so the spec side must not be read from the code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from protocol import (
    TLV_TYPES,
    Message,
    PoolId,
    TokenId,
    UnknownTLV,
    Venue,
    VenueKind,
    market,
    signals,
    system,
)

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "protocol.md"
VECTORS = ROOT / "specs" / "vectors"

# kind name -> (bits, signed), from the spec's field-kind table
INT_KINDS: dict[str, tuple[int, bool]] = {
    "uint8": (8, False),
    "uint16": (16, False),
    "uint32": (32, False),
    "uint64": (64, False),
    "int8": (8, True),
    "int16": (16, True),
    "int32": (32, True),
    "int64": (64, True),
    "int24": (24, True),
    "uint112": (112, False),
    "uint128": (128, False),
    "int128": (128, True),
    "uint160": (160, False),
    "uint256": (256, False),
    "int256": (256, True),
}
BYTES_KINDS = {"address": 20, "bytes32": 32}
ID_KINDS = {"token_id": 24, "pool_id": 67}
SMALL_INT_KINDS = {k for k, (bits, _) in INT_KINDS.items() if bits <= 32}
DOMAINS = {"market": 1, "signal": 2, "execution": 3, "system": 4}

# list item classes, by the name the spec uses
RECORD_CLASSES: dict[str, Any] = {
    "TickLiquidity": market.TickLiquidity,
    "Hop": signals.Hop,
    "TypeCode": system.TypeCode,
}


def int_range(kind: str) -> tuple[int, int]:
    bits, signed = INT_KINDS[kind]
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


# ---------------------------------------------------------------------------
# The spec tables
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecField:
    name: str
    kind: str
    size: int | None  # None: variable


@dataclass(frozen=True)
class SpecType:
    code: int
    name: str
    domain: str
    fixed: int
    fields: tuple[SpecField, ...]


@dataclass(frozen=True)
class SpecRecord:
    name: str
    size: int
    fields: tuple[SpecField, ...]


_FIELD = re.compile(r"^`(\w+)` ([\w<>]+) \((\d+|var)\)$")


def _table_after(marker: str) -> list[list[str]]:
    lines = SPEC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if marker in line)
    rows: list[list[str]] = []
    i = start + 1
    while i < len(lines) and not lines[i].startswith("|"):
        i += 1
    while i < len(lines) and lines[i].startswith("|"):
        rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
        i += 1
    assert len(rows) > 2, f"no table after {marker!r}"
    assert set(rows[1][0]) <= set("-: "), "second row must be the separator"
    return rows[2:]


def _fields(cell: str) -> tuple[SpecField, ...]:
    out = []
    for part in cell.split(", "):
        m = _FIELD.match(part.strip())
        assert m, f"cannot parse field {part!r}"
        out.append(SpecField(m[1], m[2], None if m[3] == "var" else int(m[3])))
    return tuple(out)


@cache
def spec_registry() -> dict[int, SpecType]:
    out: dict[int, SpecType] = {}
    for row in _table_after("<!-- registry-table"):
        code, name, domain, fixed, fields = row
        assert int(code) not in out, f"type {code} listed twice"
        out[int(code)] = SpecType(int(code), name, domain, int(fixed), _fields(fields))
    return out


@cache
def spec_records() -> dict[str, SpecRecord]:
    out: dict[str, SpecRecord] = {}
    for name, size, fields in _table_after("<!-- record-table"):
        out[name] = SpecRecord(name, int(size), _fields(fields))
    return out


@cache
def spec_removed() -> dict[int, str]:
    """The "Removed types" table: retired code -> the name it had."""
    out: dict[int, str] = {}
    for code, name, why in _table_after("<!-- removed-table"):
        assert int(code) not in out and why, f"retired type {code}"
        out[int(code)] = name
    return out


def spec_fields(code: int) -> tuple[SpecField, ...]:
    return spec_registry()[code].fields


# ---------------------------------------------------------------------------
# Golden vectors: JSON -> values, by the spec's kinds
# ---------------------------------------------------------------------------


def _int(kind: str, v: Any) -> int:
    if kind in SMALL_INT_KINDS:
        assert type(v) is int, f"{kind} values are JSON numbers, got {v!r}"
        return v
    assert isinstance(v, str) and re.fullmatch(r"-?\d+", v), f"{kind} values are decimal strings, got {v!r}"
    return int(v)


def _hex(v: Any) -> bytes:
    assert isinstance(v, str) and v.startswith("0x") and v == v.lower(), f"expected 0x-hex, got {v!r}"
    return bytes.fromhex(v[2:])


def _addr_int(v: Any) -> int:
    b = _hex(v)
    assert len(b) == 20, v
    return int.from_bytes(b, "big")


def token_from_json(v: dict[str, Any]) -> TokenId:
    assert list(v) == ["chain_id", "address", "int"], v
    value = (v["chain_id"] << 160) | _addr_int(v["address"])
    assert value == int(v["int"]), "token_id parts and int disagree"
    # out-of-range values (invalid_values.json) stay plain ints
    return TokenId(value) if 0 <= value < 1 << 192 else value  # type: ignore[return-value]


def pool_from_json(v: dict[str, Any]) -> PoolId:
    assert list(v) == ["chain_id", "token0", "token1", "venue", "kind", "address", "int"], v
    value = (
        (v["chain_id"] << 504)
        | (_addr_int(v["token0"]) << 344)
        | (_addr_int(v["token1"]) << 184)
        | (v["venue"] << 168)
        | (v["kind"] << 160)
        | _addr_int(v["address"])
    )
    assert value == int(v["int"]), "pool_id parts and int disagree"
    return PoolId(value) if 0 <= value < 1 << 536 else value  # type: ignore[return-value]


def value_from_json(kind: str, v: Any) -> Any:
    if kind in INT_KINDS:
        return _int(kind, v)
    if kind in BYTES_KINDS or kind == "bytes":
        return _hex(v)
    if kind == "string":
        assert isinstance(v, str)
        return v
    if kind == "token_id":
        return token_from_json(v)
    if kind == "pool_id":
        return pool_from_json(v)
    m = re.fullmatch(r"list<(\w+)>", kind)
    assert m, f"unknown kind {kind}"
    rec = spec_records()[m[1]]
    cls = RECORD_CLASSES[m[1]]
    assert isinstance(v, list)
    return tuple(cls(**fields_from_json(rec.fields, item)) for item in v)


def fields_from_json(fields: tuple[SpecField, ...], obj: dict[str, Any]) -> dict[str, Any]:
    assert list(obj) == [f.name for f in fields], f"fields {list(obj)} are not the spec's, in order"
    return {f.name: value_from_json(f.kind, obj[f.name]) for f in fields}


def tlv_from_json(d: dict[str, Any]) -> Any:
    if d.get("unknown"):
        return UnknownTLV(type_code=d["type"], body=_hex(d["body"]))
    cls = TLV_TYPES[d["type"]]
    assert cls.__name__ == d["name"] == spec_registry()[d["type"]].name
    return cls(**fields_from_json(spec_fields(d["type"]), d["fields"]))


def header_from_json(h: dict[str, Any]) -> dict[str, int]:
    assert set(h) == {
        "domain",
        "flags",
        "source_id",
        "source_seq",
        "domain_seq",
        "event_time_ns",
        "receive_time_ns",
    }
    out = {k: _int("uint32", h[k]) for k in ("domain", "flags", "source_id")}
    out.update(
        {k: _int("uint64", h[k]) for k in ("source_seq", "domain_seq", "event_time_ns", "receive_time_ns")}
    )
    return out


def message_from_json(case: dict[str, Any]) -> Message:
    return Message(tlvs=[tlv_from_json(t) for t in case["tlvs"]], **header_from_json(case["header"]))


@cache
def vector_files() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(VECTORS.glob("*.json"))}


def type_vector_files() -> dict[str, dict[str, Any]]:
    return {n: d for n, d in vector_files().items() if re.match(r"\d{3}_", n)}


@cache
def all_vector_frames() -> tuple[bytes, ...]:
    """Every valid, canonical frame in the vectors."""
    out = []
    for name, doc in vector_files().items():
        if name.startswith("invalid"):
            continue
        for case in doc["cases"]:
            out.append(bytes.fromhex(case.get("canonical_hex", case["hex"])))
    return tuple(out)


def typical(code: int) -> Any:
    """The ``typical`` record of a type, from its vector file."""
    for doc in type_vector_files().values():
        if doc["type"] == code:
            case = next(c for c in doc["cases"] if c["name"] == "typical")
            return tlv_from_json(case["tlvs"][0])
    raise KeyError(code)


# ---------------------------------------------------------------------------
# Hypothesis strategies, derived per field kind from the spec table
# ---------------------------------------------------------------------------

ADDRESSES = st.one_of(
    st.sampled_from([b"\x00" * 20, b"\xff" * 20, b"\x00" * 19 + b"\x01", b"\x80" + b"\x00" * 19]),
    st.binary(min_size=20, max_size=20),
)
STRINGS = st.one_of(
    st.sampled_from(["", "x" * 255, "\u20ac" * 85, "\u00e9" * 127 + "x", "\U0001f680" * 63 + "abc", "\x00"]),
    st.text(max_size=63),  # at most 4 UTF-8 bytes a character: <= 252 bytes
)


def int_strategy(kind: str) -> st.SearchStrategy[int]:
    lo, hi = int_range(kind)
    edges = sorted({lo, lo + 1, hi - 1, hi, 0, 1, -1 if lo < 0 else 2})
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def _token_ids() -> st.SearchStrategy[TokenId]:
    chains = st.one_of(st.sampled_from([0, 1, 8453, (1 << 32) - 1]), st.integers(0, (1 << 32) - 1))
    return st.one_of(
        st.sampled_from([TokenId(0), TokenId((1 << 192) - 1)]),
        st.builds(TokenId.of, chains, ADDRESSES),
    )


def _pool_ids() -> st.SearchStrategy[PoolId]:
    chains = st.one_of(st.sampled_from([0, 1, (1 << 32) - 1]), st.integers(0, (1 << 32) - 1))
    venues = st.one_of(st.sampled_from(list(Venue)), st.integers(0, 0xFFFF))
    kinds = st.sampled_from(list(VenueKind))
    pairs = st.tuples(ADDRESSES, ADDRESSES).filter(lambda ab: ab[0] != ab[1])
    return st.one_of(
        st.sampled_from([PoolId(0), PoolId((1 << 536) - 1)]),
        st.builds(lambda c, v, k, a, ab: PoolId.of(c, v, k, a, *ab), chains, venues, kinds, ADDRESSES, pairs),
        st.integers(0, (1 << 536) - 1).map(PoolId),  # any bit pattern decodes
    )


def kind_strategy(kind: str) -> st.SearchStrategy[Any]:
    if kind in INT_KINDS:
        return int_strategy(kind)
    if kind in BYTES_KINDS:
        n = BYTES_KINDS[kind]
        return st.one_of(st.sampled_from([b"\x00" * n, b"\xff" * n]), st.binary(min_size=n, max_size=n))
    if kind == "string":
        return STRINGS
    if kind == "bytes":
        return st.one_of(st.sampled_from([b"", b"\xff" * 65535, b"{}"]), st.binary(max_size=300))
    if kind == "token_id":
        return _token_ids()
    if kind == "pool_id":
        return _pool_ids()
    m = re.fullmatch(r"list<(\w+)>", kind)
    assert m, kind
    return st.lists(record_strategy(m[1]), max_size=5).map(tuple)


@cache
def record_strategy(name: str) -> st.SearchStrategy[Any]:
    rec = spec_records()[name]
    return st.builds(RECORD_CLASSES[name], **{f.name: kind_strategy(f.kind) for f in rec.fields})


@cache
def tlv_strategy(code: int) -> st.SearchStrategy[Any]:
    return st.builds(TLV_TYPES[code], **{f.name: kind_strategy(f.kind) for f in spec_fields(code)})


UNKNOWN_CODES = st.integers(1, 255).filter(lambda c: c not in TLV_TYPES)
unknown_tlvs = st.builds(
    lambda code, body: UnknownTLV(type_code=code, body=body),
    UNKNOWN_CODES,
    st.one_of(st.binary(max_size=40), st.binary(min_size=250, max_size=300)),
)


def any_tlv() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(sorted(TLV_TYPES)).flatmap(tlv_strategy),
        unknown_tlvs,
    )


def _u(bits: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([0, 1, (1 << bits) - 1]), st.integers(0, (1 << bits) - 1))


def messages(tlvs: st.SearchStrategy[list[Any]] | None = None) -> st.SearchStrategy[Message]:
    return st.builds(
        lambda domain, tl, sid, sseq, dseq, ev, rv, flags: Message(
            domain=domain,
            tlvs=tl,
            source_id=sid,
            source_seq=sseq,
            domain_seq=dseq,
            event_time_ns=ev,
            receive_time_ns=rv,
            flags=flags,
        ),
        st.integers(1, 4),
        tlvs if tlvs is not None else st.lists(any_tlv(), max_size=5),
        _u(32),
        _u(64),
        _u(64),
        _u(64),
        _u(64),
        st.sampled_from([0, 1, 2, 3]),
    )
