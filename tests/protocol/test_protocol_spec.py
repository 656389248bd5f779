"""The registry, the spec table in specs/protocol.md and the reference codec agree; protocol/ is sans-IO."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from protocol_testkit import (
    BYTES_KINDS,
    DOMAINS,
    ID_KINDS,
    INT_KINDS,
    RECORD_CLASSES,
    SPEC,
    VECTORS,
    spec_records,
    spec_registry,
    spec_removed,
)

import protocol
from protocol import TLV_TYPES
from protocol import reference as R
from protocol.fields import Kind, VarKind

PROTOCOL_DIR = Path(protocol.__file__).resolve().parent


def _code_fields(cls: type) -> list[tuple[str, str, int | None]]:
    return [(n, k.name, k.size if isinstance(k, Kind) else None) for n, k in cls.FIELDS]  # type: ignore[attr-defined]


def _spec_fields(fields: tuple) -> list[tuple[str, str, int | None]]:
    return [(f.name, f.kind, f.size) for f in fields]


def _kind_size(kind: str) -> int | None:
    if kind in INT_KINDS:
        bits = INT_KINDS[kind][0]
        return bits // 8
    if kind in BYTES_KINDS:
        return BYTES_KINDS[kind]
    if kind in ID_KINDS:
        return ID_KINDS[kind]
    assert kind in ("string", "bytes") or kind.startswith("list<"), f"unknown kind {kind!r} in the spec"
    return None


# ---- registry <-> spec table ----


def test_spec_lists_exactly_the_registered_types() -> None:
    assert sorted(spec_registry()) == sorted(TLV_TYPES)
    for code, st in spec_registry().items():
        assert st.name == TLV_TYPES[code].__name__, f"type {code}"


def test_spec_header_table_is_the_code_layout() -> None:
    """specs/protocol.md's header table and protocol.header.FIELDS (from which every struct, numpy
    column and offset in the code is derived) say the same: names, offsets and sizes, in order."""
    import struct

    from protocol.header import FIELDS, HEADER_SIZE, OFFSETS

    lines = SPEC.read_text(encoding="utf-8").split("## Header", 1)[1].splitlines()
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if line.startswith("| ")]
    spec = []
    for off, size, name, _ in rows[1:]:
        if not off.isdigit():
            break
        spec.append((int(off), int(size), name.strip("`")))
    reserved = iter(["reserved0", "reserved1"])
    code = [(OFFSETS[n], struct.calcsize(c), n) for n, c in FIELDS]
    assert [(o, sz, next(reserved) if n == "reserved" else n) for o, sz, n in spec] == code
    assert sum(sz for _, sz, _ in spec) == HEADER_SIZE


def test_removed_types_are_reserved_and_gone_everywhere() -> None:
    """specs/protocol.md "Removed types" is exactly the code's RETIRED set: not registered, not
    in the reference codec or the vectors, no class of that name left, and a new type cannot
    take the code."""
    from protocol.tlv import RETIRED, TLV

    assert spec_removed() == RETIRED
    for code, name in RETIRED.items():
        assert code not in TLV_TYPES and code not in spec_registry() and code not in R.BODIES
        assert not hasattr(protocol, name) and name not in {c.__name__ for c in TLV_TYPES.values()}
        assert not list(VECTORS.glob(f"{code:03d}_*.json"))
        with pytest.raises(TypeError, match="retired"):
            type(f"Again{code}", (TLV,), {"TYPE": code, "__module__": __name__})


@pytest.mark.parametrize("code", sorted(TLV_TYPES))
def test_spec_fields_match_the_registry(code: int) -> None:
    """Names, kinds and widths, in wire order: adding a field without updating the spec fails here."""
    cls = TLV_TYPES[code]
    st = spec_registry()[code]
    assert _spec_fields(st.fields) == _code_fields(cls), f"{cls.__name__}: specs/protocol.md is out of date"
    assert st.fixed == cls.FIXED_SIZE == sum(f.size or 0 for f in st.fields)


@pytest.mark.parametrize("code", sorted(TLV_TYPES))
def test_spec_table_is_self_consistent(code: int) -> None:
    st = spec_registry()[code]
    assert st.domain in {*DOMAINS, "any"}
    seen_var = False
    for f in st.fields:
        assert f.size == _kind_size(f.kind), f"{st.name}.{f.name}: width of {f.kind}"
        if f.size is None:
            seen_var = True
        else:
            assert not seen_var, f"{st.name}.{f.name}: fixed fields must precede variable ones"
    names = [f.name for f in st.fields]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("code", sorted(TLV_TYPES))
def test_spec_domain_matches_the_defining_module(code: int) -> None:
    cls = TLV_TYPES[code]
    expected = {
        "protocol.market": "market",
        "protocol.signals": "signal",
        "protocol.execution": "execution",
        "protocol.system": "system",
    }[cls.__module__]
    st = spec_registry()[code]
    assert st.domain == ("any" if cls.__name__ == "TraceContext" else expected)
    lo, hi = {
        "market": (1, 19),
        "signal": (20, 39),
        "execution": (40, 59),
        "system": (100, 119),
        "any": (120, 120),
    }[st.domain]
    assert lo <= code <= hi, f"type code {code} is outside the {st.domain} range"


def test_spec_record_table_matches_the_list_item_classes() -> None:
    used = {
        k.item.__name__
        for cls in TLV_TYPES.values()
        for _, k in cls.FIELDS
        if isinstance(k, VarKind) and k.item is not None
    }
    assert set(spec_records()) == used == set(RECORD_CLASSES)
    for name, rec in spec_records().items():
        cls = RECORD_CLASSES[name]
        assert _spec_fields(rec.fields) == _code_fields(cls)
        assert rec.size == cls.SIZE == sum(f.size or 0 for f in rec.fields)
        assert all(f.size is not None for f in rec.fields)


def test_spec_documents_every_kind_in_use() -> None:
    text = SPEC.read_text(encoding="utf-8")
    kinds = {f.kind for st in spec_registry().values() for f in st.fields}
    kinds |= {f.kind for rec in spec_records().values() for f in rec.fields}
    for kind in kinds:
        row = "list<R>" if kind.startswith("list<") else kind
        assert f"| `{row}`" in text, f"kind {kind} missing from the field-kind table"


def test_spec_constants() -> None:
    text = SPEC.read_text(encoding="utf-8")
    assert protocol.MAX_PAYLOAD == R.MAX_PAYLOAD == 1 << 20 and "1,048,576" in text
    assert protocol.HEADER_SIZE == R.HEADER_SIZE == 52
    assert protocol.VERSION == 1
    assert [d.value for d in protocol.Domain] == list(DOMAINS.values())


# ---- reference codec <-> spec table ----


def test_reference_declares_every_registered_type() -> None:
    assert sorted(R.BODIES) == sorted(TLV_TYPES)
    for code, rec in R.BODIES.items():
        assert rec.cls is TLV_TYPES[code]


@pytest.mark.parametrize("code", sorted(TLV_TYPES))
def test_reference_fields_match_the_spec(code: int) -> None:
    rec = R.BODIES[code]
    spec = spec_registry()[code].fields
    assert R.record_fields(rec) == [(f.name, f.kind) for f in spec]
    for (_, sc), f in zip(rec.fields, spec):
        if f.size is not None:
            assert sc.sizeof() == f.size, f"{rec.cls.__name__}.{f.name}"


def test_reference_list_items_match_the_spec() -> None:
    for name, item in (("TickLiquidity", R.TickLiquidity), ("Hop", R.Hop), ("TypeCode", R.TypeCode)):
        spec = spec_records()[name]
        assert item.cls is RECORD_CLASSES[name]
        assert R.record_fields(item) == [(f.name, f.kind) for f in spec.fields]
        assert item.sizeof() == spec.size


def test_reference_is_written_out_not_generated_from_the_fast_codec() -> None:
    """An oracle derived from the code under test would agree with it by construction."""
    tree = ast.parse(inspect.getsource(R))
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not attrs & {"FIELDS", "FIXED_SIZE", "STRUCT", "SIZE", "_encode_item", "_decode_item"}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"TLV_TYPES", "_DECODERS"}
    modules = {m for _, m in _imports(tree)} | {
        n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level
    }
    assert not modules & {"fields", "protocol.fields", "header", "protocol.header"}


# ---- sans-IO guard ----

FORBIDDEN = {"trio", "socket", "time", "logging", "asyncio", "threading", "os", "selectors"}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            if name in ("__import__", "import_module") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    out.append((node.lineno, arg.value))
    return out


def _protocol_modules() -> list[Path]:
    return sorted(PROTOCOL_DIR.rglob("*.py"))


@pytest.mark.parametrize("path", _protocol_modules(), ids=lambda p: str(p.relative_to(PROTOCOL_DIR)))
def test_protocol_is_sans_io(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [(line, mod) for line, mod in _imports(tree) if mod.split(".")[0] in FORBIDDEN]
    assert not bad, f"{path.name} imports I/O / clock / logging modules: {bad}"


def test_sans_io_guard_catches_imports() -> None:
    src = "import os.path\nfrom time import monotonic\nimport struct\nx = __import__('socket')\n"
    assert [m for _, m in _imports(ast.parse(src)) if m.split(".")[0] in FORBIDDEN] == [
        "os.path",
        "time",
        "socket",
    ]


def _wire_enums() -> dict[str, type]:
    """Every IntEnum defined in protocol/ (the codes records carry), by name."""
    import enum
    import importlib
    import pkgutil

    found: dict[str, type] = {}
    for info in pkgutil.iter_modules([str(PROTOCOL_DIR)]):
        module = importlib.import_module(f"protocol.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, type) and issubclass(obj, enum.IntEnum) and obj.__module__ == module.__name__:
                found[name] = obj
    return found


def test_spec_enum_table_lists_every_value_of_every_wire_enum() -> None:
    """specs/protocol.md's enum table and the code's IntEnums: the same enums, the same values and
    names (ResyncReason 4 CORRUPT included); a new member or enum without a spec row fails here."""
    text = SPEC.read_text(encoding="utf-8").split("<!-- enum-table:", 1)[1]
    spec: dict[str, list[tuple[int, str]]] = {}
    for line in text.splitlines()[1:]:
        if not line.startswith("| "):
            if spec:
                break
            continue
        name, _carried, values = (c.strip() for c in line.strip().strip("|").split("|"))
        if name in ("enum",) or set(name) <= {"-"}:
            continue
        spec[name] = [(int(v.split()[0]), v.split()[1]) for v in values.split(", ")]
    code = {name: [(int(m), m.name) for m in cls] for name, cls in _wire_enums().items()}  # type: ignore[attr-defined]
    assert spec == code
    assert (4, "CORRUPT") in spec["ResyncReason"]
