"""TLV records and the code generator behind their codecs.

Wire form of one record (little-endian)::

    compact   : type:u8 (1..255) | len:u8  | body[len]          bodies of 0..255 bytes
    extended  : 0x00 | type:u8 | len:u32   | body[len]          any body (snapshots, paths)

A writer uses the compact form whenever the body fits; readers accept either
form for every type. Type 0 never names a record: a leading zero byte announces
the extended form. A reader that meets a type it does not know skips ``len``
bytes and keeps the record as ``UnknownTLV`` (so a relay or archive re-emits it
unchanged): old readers survive new writers. A known type whose body is longer
than the fields this reader knows keeps the prefix it understands and ignores
the rest: a newer writer may append fields to a type, never reorder them.

Each record type is a frozen, keyword-only dataclass subclassing ``TLV`` with a
class attribute ``TYPE``. Subclassing generates, once, a specialised encoder and
decoder for the type (one precompiled ``struct.Struct`` for all fixed fields,
``int.to_bytes``/``int.from_bytes`` for wide integers). The decoder fills the
instance ``__dict__`` directly instead of calling the validating constructor --
the same bytes-to-object fast path attrs and msgspec use -- which halves the
decode cost. ``Record`` is the same idea for the fixed-size items of list
fields (path hops, tick maps, book levels).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, dataclass_transform, get_args, get_origin

from .errors import FieldRangeError, TLVError
from .fields import BLOB, STR, Kind, VarKind
from .ids import PoolId, TokenId

EXT = struct.Struct("<BBI")  # 0x00, type, len
EXT_SIZE = EXT.size
U16S = struct.Struct("<H")
U32S = struct.Struct("<I")

TLV_TYPES: dict[int, type[TLV]] = {}
# Codes of removed record types (specs/protocol.md, "Removed types"). Reserved for ever: never
# registered again, so a record from an old writer is skipped as unknown, never misread.
RETIRED: dict[int, str] = {
    40: "ExecutionRequest",
    43: "Fill",
    102: "RetransmitRequest",
    103: "SnapshotRequest",
    104: "SnapshotResponse",
}
# Called with each newly registered TLV class (message.py builds fused codecs from it).
ON_REGISTER: list[Callable[[type[TLV]], None]] = []
_DECODERS: dict[int, Callable[[Any, int, int], Any]] = {}
# What each registered type's decoder checks, as data for ``tlvs_valid``: code -> (fixed body
# size, variable fields in order as (length-prefix bytes, item size)); item size _TEXT is a
# string (uint8 length, UTF-8), 1 a blob (uint16 length), a Record's SIZE a list (uint16 count).
_SHAPES: dict[int, tuple[int, tuple[tuple[int, int], ...]]] = {}
_TEXT = -1
# code -> the least body with which ONE compact record of that type, alone in a payload, decodes:
# a registered type without variable fields needs its fixed size, an unregistered type nothing;
# 256 (more than a compact body holds) for code 0 (the extended form's marker) and for types with
# variable fields, which only the full walk (``tlvs_valid``) settles. The relay's per-frame path
# checks the common one-record payload with one lookup: ``payload_len == body + 2`` and
# ``body >= COMPACT_MIN[code]``.
COMPACT_MIN: list[int] = [256] + [0] * 255

def _blob(v: Any) -> bytes:
    """bytes-like only: ``bytes(5)`` would silently make five zero bytes."""
    if not isinstance(v, (bytearray, memoryview)):
        raise TypeError("blob")
    return bytes(v)


_GEN_NAMESPACE = {
    "_blob": _blob,
    "_fb": int.from_bytes,
    "_new": object.__new__,
    "_PoolId": PoolId,
    "_TokenId": TokenId,
    "TLVError": TLVError,
    "FieldRangeError": FieldRangeError,
    "_U16": U16S,
    "_EXT": EXT,
    "_struct_error": struct.error,
}


def _annotations(cls: type) -> dict[str, Any]:
    """Field annotations in wire order: those of unregistered bases (shared field sets) first."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass not in (TLV, Record, object) and issubclass(klass, (TLV, Record)):
            out.update(klass.__dict__.get("__annotations__", {}))
    return out


def _fields_of(cls: type) -> list[tuple[str, Kind | VarKind]]:
    out: list[tuple[str, Kind | VarKind]] = []
    for name, ann in _annotations(cls).items():
        if get_origin(ann) is ClassVar or name.startswith("_"):
            continue
        if get_origin(ann) is not Annotated:
            raise TypeError(f"{cls.__name__}.{name}: annotate with a wire kind from protocol.fields")
        kind = next((a for a in get_args(ann)[1:] if isinstance(a, (Kind, VarKind))), None)
        if kind is None:
            raise TypeError(f"{cls.__name__}.{name}: no wire kind in its annotation")
        out.append((name, kind))
    return out


def describe_invalid(cls: type, obj: Any, fields: list[tuple[str, Kind | VarKind]]) -> FieldRangeError:
    """Slow path: find which field made the fast encoder fail and say why."""
    for name, kind in fields:
        try:
            value = getattr(obj, name)
        except AttributeError:
            return FieldRangeError(f"{cls.__name__}.{name} is missing")
        if isinstance(kind, Kind):
            if kind.check_len:
                if not isinstance(value, (bytes, bytearray)) or len(value) != kind.size:
                    return FieldRangeError(
                        f"{cls.__name__}.{name} must be {kind.size} bytes ({kind.name}), got {value!r}"
                    )
            elif isinstance(value, bool) or not isinstance(value, int):
                return FieldRangeError(f"{cls.__name__}.{name} must be an int ({kind.name}), got {value!r}")
            elif kind.lo is not None and kind.hi is not None and not kind.lo <= value <= kind.hi:
                return FieldRangeError(
                    f"{cls.__name__}.{name}={value} is out of range for {kind.name} [{kind.lo}, {kind.hi}]"
                )
        elif kind is STR:
            try:
                ok = isinstance(value, str) and len(value.encode("utf-8")) <= 255
            except UnicodeEncodeError:
                ok = False
            if not ok:
                return FieldRangeError(f"{cls.__name__}.{name} must be a str of at most 255 UTF-8 bytes")
        elif kind is BLOB:
            if not isinstance(value, (bytes, bytearray)) or len(value) > 0xFFFF:
                return FieldRangeError(f"{cls.__name__}.{name} must be bytes of at most 65535 bytes")
        else:
            if not isinstance(value, (tuple, list)) or len(value) > 0xFFFF:
                return FieldRangeError(f"{cls.__name__}.{name} must be a tuple of at most 65535 items")
            for i, item in enumerate(value):
                if not isinstance(item, kind.item):
                    return FieldRangeError(f"{cls.__name__}.{name}[{i}] must be a {kind.item.__name__}")
                err = describe_invalid(kind.item, item, kind.item.FIELDS)
                if str(err) != "ok":
                    return FieldRangeError(f"{cls.__name__}.{name}[{i}]: {err}")
    return FieldRangeError("ok")


def _compile(src: str, name: str, extra: dict[str, Any]) -> Any:
    ns = dict(_GEN_NAMESPACE)
    ns.update(extra)
    exec(compile(src, f"<protocol codec {name}>", "exec"), ns)
    return ns[name]


def _fixed_parts(fixed: list[tuple[str, Kind]], obj: str) -> tuple[str, list[str], list[str]]:
    """struct format, pack arguments, and length checks for the fixed fields."""
    fmt = "".join(k.fmt for _, k in fixed)
    args = [k.enc.format(v=f"{obj}.{n}") for n, k in fixed]
    checks = [f"len({obj}.{n}) != {k.size}" for n, k in fixed if k.check_len]
    return fmt, args, checks


def _dict_assignments(fixed: list[tuple[str, Kind]], indent: str) -> tuple[str, list[str]]:
    names = [f"_f{i}" for i in range(len(fixed))]
    lines = [f"{indent}d[{n!r}] = {k.dec.format(v=v)}" for (n, k), v in zip(fixed, names)]
    target = ", ".join(names) + ("," if len(names) == 1 else "")
    return target, lines


@dataclass_transform(frozen_default=True, kw_only_default=True)
class Record:
    """A fixed-size item of a list field. Subclasses become frozen kw-only dataclasses."""

    FIELDS: ClassVar[list[tuple[str, Kind | VarKind]]]
    SIZE: ClassVar[int]
    STRUCT: ClassVar[struct.Struct]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        dataclass(frozen=True, kw_only=True)(cls)
        fields = _fields_of(cls)
        if any(not k.fixed for _, k in fields):
            raise TypeError(f"{cls.__name__}: a Record has fixed-size fields only")
        fixed: list[tuple[str, Kind]] = fields  # type: ignore[assignment]
        fmt, args, checks = _fixed_parts(fixed, "o")
        cls.FIELDS = fields
        cls.STRUCT = struct.Struct("<" + fmt)
        cls.SIZE = cls.STRUCT.size
        check = f"    if {' or '.join(checks)}: raise _struct_error('length')\n" if checks else ""
        enc_src = f"def _rec_enc(o):\n{check}    return _S.pack({', '.join(args)})\n"
        target, lines = _dict_assignments(fixed, "    ")
        dec_src = (
            "def _rec_dec(buf, off):\n"
            f"    {target} = _S.unpack_from(buf, off)\n"
            "    o = _new(_cls)\n    d = o.__dict__\n" + "\n".join(lines) + "\n    return o\n"
        )
        extra = {"_S": cls.STRUCT, "_cls": cls}
        cls._encode_item = staticmethod(_compile(enc_src, "_rec_enc", extra))  # type: ignore[attr-defined]
        cls._decode_item = staticmethod(_compile(dec_src, "_rec_dec", extra))  # type: ignore[attr-defined]


@dataclass_transform(frozen_default=True, kw_only_default=True)
class TLV:
    """Base class of every TLV record type. Subclasses set ``TYPE`` (1..255)."""

    TYPE: ClassVar[int]
    FIELDS: ClassVar[list[tuple[str, Kind | VarKind]]]
    FIXED_SIZE: ClassVar[int]

    def __init_subclass__(cls, register: bool = True, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        dataclass(frozen=True, kw_only=True)(cls)
        if not register:
            return
        code = cls.__dict__.get("TYPE")
        if not isinstance(code, int) or not 1 <= code <= 255:
            raise TypeError(f"{cls.__name__}.TYPE must be an int in 1..255")
        if code in RETIRED:
            raise TypeError(f"TLV type {code} is retired (it was {RETIRED[code]}); pick an unassigned code")
        if code in TLV_TYPES:
            raise TypeError(f"TLV type {code} registered twice ({TLV_TYPES[code].__name__}, {cls.__name__})")
        fields = _fields_of(cls)
        seen_var = False
        for name, kind in fields:
            if not kind.fixed:
                seen_var = True
            elif seen_var:
                raise TypeError(f"{cls.__name__}.{name}: fixed fields must precede variable ones")
        cls.FIELDS = fields
        _build_codec(cls, code, fields)
        TLV_TYPES[code] = cls
        for hook in ON_REGISTER:
            hook(cls)

    def encode(self) -> bytes:  # replaced per class by the generated encoder
        raise NotImplementedError


def _build_codec(cls: type, code: int, fields: list[tuple[str, Kind | VarKind]]) -> None:
    fixed: list[tuple[str, Kind]] = [(n, k) for n, k in fields if isinstance(k, Kind)]
    var: list[tuple[str, VarKind]] = [(n, k) for n, k in fields if isinstance(k, VarKind)]
    fmt, args, checks = _fixed_parts(fixed, "self")
    body_struct = struct.Struct("<" + fmt)
    size = body_struct.size
    cls.FIXED_SIZE = size  # type: ignore[attr-defined]
    extra: dict[str, Any] = {"_cls": cls, "_FIELDS": fields, "_describe": describe_invalid, "_S": body_struct}
    check = f"        if {' or '.join(checks)}: raise _struct_error('length')\n" if checks else ""

    # ---- encoder ----
    if not var:
        if size <= 255:
            extra["_P"] = struct.Struct("<BB" + fmt)
            pack = f"_P.pack({code}, {size}{''.join(', ' + a for a in args)})"
        else:
            extra["_P"] = struct.Struct("<BBI" + fmt)
            pack = f"_P.pack(0, {code}, {size}{''.join(', ' + a for a in args)})"
        enc_src = (
            "def _enc(self):\n    try:\n" + check + f"        return {pack}\n"
            "    except (_struct_error, OverflowError, AttributeError, TypeError, ValueError):\n"
            "        raise _describe(_cls, self, _FIELDS) from None\n"
        )
    else:
        lines = [f"        parts = [_S.pack({', '.join(args)})]" if fixed else "        parts = []"]
        for i, (name, kind) in enumerate(var):
            if kind is STR:
                lines += [
                    f"        _s{i} = self.{name}.encode('utf-8')",
                    f"        if len(_s{i}) > 255: raise _struct_error('str')",
                    f"        parts.append(bytes((len(_s{i}),)))",
                    f"        parts.append(_s{i})",
                ]
            elif kind is BLOB:
                lines += [
                    f"        _s{i} = self.{name}",
                    f"        if type(_s{i}) is not bytes: _s{i} = _blob(_s{i})",
                    f"        parts.append(_U16.pack(len(_s{i})))",
                    f"        parts.append(_s{i})",
                ]
            else:
                extra[f"_R{i}"] = kind.item
                lines += [
                    f"        _l{i} = self.{name}",
                    f"        parts.append(_U16.pack(len(_l{i})))",
                    f"        for _it in _l{i}:",
                    f"            if type(_it) is not _R{i}: raise TypeError('item')",
                    f"            parts.append(_R{i}._encode_item(_it))",
                ]
        enc_src = (
            "def _enc(self):\n    try:\n"
            + check
            + "\n".join(lines)
            + "\n        body = b''.join(parts)\n"
            "    except (_struct_error, OverflowError, AttributeError, TypeError, ValueError):\n"
            "        raise _describe(_cls, self, _FIELDS) from None\n"
            "    n = len(body)\n"
            f"    if n <= 255: return bytes(({code}, n)) + body\n"
            f"    return _EXT.pack(0, {code}, n) + body\n"
        )
    cls.encode = _compile(enc_src, "_enc", extra)  # type: ignore[attr-defined]

    # ---- decoder: (buffer, body offset, body length) -> instance ----
    name_ = cls.__name__
    src = [
        "def _dec(buf, off, ln):",
        f"    if ln < {size}: raise TLVError('{name_} body is ' + str(ln) + ' bytes, needs at least {size}')",
        "    o = _new(_cls)",
        "    d = o.__dict__",
    ]
    if fixed:
        target, assigns = _dict_assignments(fixed, "    ")
        src.append(f"    {target} = _S.unpack_from(buf, off)")
        src += assigns
    if var:
        src += ["    end = off + ln", f"    p = off + {size}"]
        for i, (name, kind) in enumerate(var):
            if kind is STR or kind is BLOB:
                hdr = 1 if kind is STR else 2
                src += [
                    f"    if p + {hdr} > end: raise TLVError('{name_}.{name}: truncated length')",
                    "    n = buf[p]" if kind is STR else "    n = _U16.unpack_from(buf, p)[0]",
                    f"    p += {hdr}",
                    f"    if p + n > end: raise TLVError('{name_}.{name}: truncated')",
                ]
                if kind is STR:
                    src += [
                        "    try:",
                        f"        d[{name!r}] = bytes(buf[p:p + n]).decode('utf-8')",
                        "    except UnicodeDecodeError:",
                        f"        raise TLVError('{name_}.{name}: invalid UTF-8') from None",
                    ]
                else:
                    src.append(f"    d[{name!r}] = bytes(buf[p:p + n])")
                src.append("    p += n")
            else:
                extra[f"_R{i}"] = kind.item
                isz = kind.item.SIZE
                src += [
                    f"    if p + 2 > end: raise TLVError('{name_}.{name}: truncated count')",
                    "    n = _U16.unpack_from(buf, p)[0]",
                    "    p += 2",
                    f"    if p + n * {isz} > end: raise TLVError('{name_}.{name}: ' + str(n) + ' items do not fit')",
                    f"    _di = _R{i}._decode_item",
                    f"    d[{name!r}] = tuple([_di(buf, p + k * {isz}) for k in range(n)])",
                    f"    p += n * {isz}",
                ]
    src.append("    return o")
    _DECODERS[code] = _compile("\n".join(src) + "\n", "_dec", extra)
    COMPACT_MIN[code] = 256 if var or size > 255 else size
    _SHAPES[code] = (size, tuple((1, _TEXT) if k is STR else (2, 1) if k is BLOB else (2, k.item.SIZE) for _, k in var))


class UnknownTLV(TLV, register=False):
    """A record of a type this reader does not know, kept verbatim so it can be re-emitted."""

    type_code: int
    body: bytes

    def encode(self) -> bytes:
        if not isinstance(self.body, (bytes, bytearray)):
            raise FieldRangeError(f"UnknownTLV.body must be bytes, got {type(self.body).__name__}")
        n = len(self.body)
        if isinstance(self.type_code, bool) or not isinstance(self.type_code, int) or not 1 <= self.type_code <= 255:
            raise FieldRangeError(f"UnknownTLV.type_code={self.type_code} is not in 1..255")
        if n <= 255:
            return bytes((self.type_code, n)) + self.body
        return EXT.pack(0, self.type_code, n) + self.body


_new_object = object.__new__


def decode_tlvs(buf: bytes | bytearray | memoryview, off: int, end: int) -> tuple[TLV, ...]:
    """Walk the TLV records in ``buf[off:end]``."""
    out: list[TLV] = []
    append = out.append
    decoders = _DECODERS
    while off < end:
        code = buf[off]
        if code:
            if off + 2 > end:
                raise TLVError(f"truncated TLV header at offset {off}")
            ln = buf[off + 1]
            off += 2
        else:
            if off + EXT_SIZE > end:
                raise TLVError(f"truncated extended TLV header at offset {off}")
            _, code, ln = EXT.unpack_from(buf, off)
            if code == 0:
                raise TLVError("extended TLV with type 0")
            off += EXT_SIZE
        nxt = off + ln
        if nxt > end:
            raise TLVError(f"TLV type {code} claims {ln} bytes but only {end - off} remain")
        dec = decoders.get(code)
        if dec is None:
            unknown = _new_object(UnknownTLV)  # the decoders' fast path: no validating constructor
            d = unknown.__dict__
            d["type_code"] = code
            d["body"] = bytes(buf[off:nxt])
            append(unknown)
        else:
            append(dec(buf, off, ln))
        off = nxt
    return tuple(out)


def tlvs_valid(
    buf: bytes | bytearray | memoryview, off: int, end: int, marks: list[int] | None = None,
    texts: list[tuple[int, int]] | None = None,
) -> bool:
    """Whether ``decode_tlvs(buf, off, end)`` succeeds, without building a record.

    The same checks as the decoders, read from ``_SHAPES`` (generated with them): the record
    framing, each known type's fixed body size, and each variable field's length prefix and
    bounds; a text field's bytes must be UTF-8. Fixed fields and list items never fail to
    decode once they fit. (tests/protocol checks this agrees with ``decode_tlvs`` on every
    fuzzed payload.) With ``marks``/``texts`` it also records the *shape* of the payload: the
    offsets of every byte the walk branched on (record headers, length prefixes) and the
    ``(offset, length)`` of every text field; a payload of the same length with the same
    bytes at those offsets and UTF-8 in those ranges is valid too (ingest's block check).
    """
    shapes = _SHAPES
    while off < end:
        code = buf[off]
        if code:
            if off + 2 > end:
                return False
            ln = buf[off + 1]
            if marks is not None:
                marks.append(off)
                marks.append(off + 1)
            off += 2
        else:
            if off + EXT_SIZE > end:
                return False
            _, code, ln = EXT.unpack_from(buf, off)
            if code == 0:
                return False
            if marks is not None:
                marks.extend(range(off, off + EXT_SIZE))
            off += EXT_SIZE
        nxt = off + ln
        if nxt > end:
            return False
        shape = shapes.get(code)
        if shape is not None:
            size, var = shape
            if ln < size:
                return False
            p = off + size
            for hdr, isz in var:
                if p + hdr > nxt:
                    return False
                if hdr == 1:
                    n = buf[p]
                else:
                    n = buf[p] | (buf[p + 1] << 8)
                if marks is not None:
                    marks.extend(range(p, p + hdr))
                p += hdr
                if isz == _TEXT:
                    if p + n > nxt:
                        return False
                    if n:
                        try:
                            bytes(buf[p : p + n]).decode("utf-8")
                        except UnicodeDecodeError:
                            return False
                        if texts is not None:
                            texts.append((p, n))
                    p += n
                else:
                    n *= isz
                    if p + n > nxt:
                        return False
                    p += n
        off = nxt
    return True


def decoder_for(code: int) -> Callable[[Any, int, int], Any]:
    return _DECODERS[code]
