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


def _uint(name: str, fmt: str, bits: int) -> Kind:
    return Kind(name, fmt, bits // 8, 0, (1 << bits) - 1)


def _sint(name: str, fmt: str, bits: int) -> Kind:
    return Kind(name, fmt, bits // 8, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def _wide(name: str, bits: int, signed: bool) -> Kind:
    n = bits // 8
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    s = "True" if signed else "False"
    return Kind(
        name,
        f"{n}s",
        n,
        lo,
        hi,
        enc=f"{{v}}.to_bytes({n}, 'little', signed={s})",
        dec=f"_fb({{v}}, 'little', signed={s})",
    )


U8 = _uint("uint8", "B", 8)
U16 = _uint("uint16", "H", 16)
U32 = _uint("uint32", "I", 32)
U64 = _uint("uint64", "Q", 64)
I8 = _sint("int8", "b", 8)
I16 = _sint("int16", "h", 16)
I32 = _sint("int32", "i", 32)
I64 = _sint("int64", "q", 64)
INT24 = _wide("int24", 24, True)
U112 = _wide("uint112", 112, False)
U128 = _wide("uint128", 128, False)
I128 = _wide("int128", 128, True)
U160 = _wide("uint160", 160, False)
U256 = _wide("uint256", 256, False)
I256 = _wide("int256", 256, True)
ADDRESS = Kind("address", "20s", 20, check_len=True)
HASH = Kind("bytes32", "32s", 32, check_len=True)
TOKEN = Kind(
    "token_id",
    f"{TOKEN_ID_SIZE}s",
    TOKEN_ID_SIZE,
    0,
    (1 << (TOKEN_ID_SIZE * 8)) - 1,
    enc=f"{{v}}.to_bytes({TOKEN_ID_SIZE}, 'little')",
    dec="_TokenId(_fb({v}, 'little'))",
)
POOL = Kind(
    "pool_id",
    f"{POOL_ID_SIZE}s",
    POOL_ID_SIZE,
    0,
    (1 << (POOL_ID_SIZE * 8)) - 1,
    enc=f"{{v}}.to_bytes({POOL_ID_SIZE}, 'little')",
    dec="_PoolId(_fb({v}, 'little'))",
)
STR = VarKind("string")  # uint8 byte length + UTF-8, at most 255 bytes
BLOB = VarKind("bytes")  # uint16 byte length + raw bytes


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
