"""Wire field kinds: how one dataclass field becomes bytes.

Every TLV field is declared with a type alias from this module, e.g.
``reserve0: u112``. The alias carries a ``Kind`` that knows the field's width,
its ``struct`` format, and the expressions the code generator in ``tlv.py``
splices into each type's encoder and decoder. Integers keep their real widths
(uint112 reserves are 14 bytes, int24 ticks 3 bytes); a value that does not fit
raises ``FieldRangeError`` -- ``int.to_bytes`` and ``struct`` both refuse to
truncate or wrap, and fixed-length byte strings are length-checked explicitly
because ``struct``'s ``s`` format would silently pad or cut them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from .ids import POOL_ID_SIZE, TOKEN_ID_SIZE, PoolId, TokenId


@dataclass(frozen=True)
class Kind:
    """A fixed-width field kind."""

    name: str  # name used in specs/protocol.md
    fmt: str  # struct format of its wire representation
    size: int  # bytes on the wire
    lo: int | None = None  # integer range (for validation messages and test generators)
    hi: int | None = None
    # how to go from the Python value ``{v}`` to the struct argument, and back
    enc: str = "{v}"
    dec: str = "{v}"
    check_len: bool = False  # fixed-length bytes: check len() before packing

    @property
    def fixed(self) -> bool:
        return True


@dataclass(frozen=True)
class VarKind:
    """A variable-length field kind: must come after all fixed fields of a type."""

    name: str
    item: Any = None  # for lists: the Record class of each item

    @property
    def fixed(self) -> bool:
        return False


_STRUCT_CODES = {8: "b", 16: "h", 32: "i", 64: "q"}  # widths struct packs natively (lower case: signed)


def _int(bits: int, signed: bool) -> Kind:
    """The kind of a ``bits``-wide integer: a struct code where struct has one, else
    ``bits // 8`` raw little-endian bytes converted with ``int.to_bytes``/``int.from_bytes``."""
    n = bits // 8
    name = f"{'int' if signed else 'uint'}{bits}"
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    code = _STRUCT_CODES.get(bits)
    if code is not None:
        return Kind(name, code if signed else code.upper(), n, lo, hi)
    return Kind(name, f"{n}s", n, lo, hi, enc=f"{{v}}.to_bytes({n}, 'little', signed={signed})",
                dec=f"_fb({{v}}, 'little', signed={signed})")


U8, U16, U32, U64, U112, U128, U160, U256 = (_int(b, False) for b in (8, 16, 32, 64, 112, 128, 160, 256))
I8, I16, I32, I64, INT24, I128, I256 = (_int(b, True) for b in (8, 16, 32, 64, 24, 128, 256))
ADDRESS = Kind("address", "20s", 20, check_len=True)
HASH = Kind("bytes32", "32s", 32, check_len=True)


def _id(name: str, size: int, cls: str) -> Kind:
    """An instrument id: ``size`` little-endian bytes, decoded into the int subclass ``cls``."""
    return Kind(name, f"{size}s", size, 0, (1 << (size * 8)) - 1, enc=f"{{v}}.to_bytes({size}, 'little')",
                dec=f"{cls}(_fb({{v}}, 'little'))")


TOKEN = _id("token_id", TOKEN_ID_SIZE, "_TokenId")
POOL = _id("pool_id", POOL_ID_SIZE, "_PoolId")
STR = VarKind("string")  # uint8 byte length + UTF-8, at most 255 bytes
BLOB = VarKind("bytes")  # uint16 byte length + raw bytes


TEXT_MAX_BYTES = 255


def fit_text(s: str) -> str:
    """The longest prefix of ``s`` that a ``string`` field holds (at most 255 UTF-8 bytes, whole characters)."""
    b = s.encode()
    return s if len(b) <= TEXT_MAX_BYTES else b[:TEXT_MAX_BYTES].decode(errors="ignore")


def list_of(record: Any) -> VarKind:
    """uint16 item count + that many fixed-size records."""
    return VarKind(f"list<{record.__name__}>", item=record)


u8 = Annotated[int, U8]
u16 = Annotated[int, U16]
u32 = Annotated[int, U32]
u64 = Annotated[int, U64]
i8 = Annotated[int, I8]
i16 = Annotated[int, I16]
i32 = Annotated[int, I32]
i64 = Annotated[int, I64]
int24 = Annotated[int, INT24]
u112 = Annotated[int, U112]
u128 = Annotated[int, U128]
i128 = Annotated[int, I128]
u160 = Annotated[int, U160]
u256 = Annotated[int, U256]
i256 = Annotated[int, I256]
address = Annotated[bytes, ADDRESS]
bytes32 = Annotated[bytes, HASH]
text = Annotated[str, STR]
blob = Annotated[bytes, BLOB]
token_id = Annotated[TokenId, TOKEN]
pool_id = Annotated[PoolId, POOL]
