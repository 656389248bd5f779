"""Deterministic, reversible instrument ids.

A token is ``(chain_id, address)``; a pool is ``(chain_id, venue, kind, address,
token0, token1)``. Both are ``int`` subclasses whose bits *are* the parts, so

* id -> parts -> id round-trips exactly, with no registry;
* two pools trade the same pair on the same chain iff their ``pair_key`` is
  equal -- a shift and a compare, no lookup table;
* ids hash, sort and compare as integers and go on the wire as fixed-width
  little-endian integers (24 bytes for a token, 67 bytes for a pool).

Bit layout of a PoolId (most significant first)::

    chain_id:32 | token0:160 | token1:160 | venue:16 | kind:8 | address:160

``token0 < token1`` as the Uniswap factories sort them; ``PoolId.of`` sorts for
you. The chain and the two tokens occupy the high bits, so ``pair_key`` is just
``pool_id >> 184``.

Recognising the same *asset* on two chains (USDC on Ethereum vs on Base) is a
bridge fact, not an identity fact: it lives in configuration, not in the id.
"""

from __future__ import annotations

from enum import IntEnum

from .errors import FieldRangeError

_ADDR_BITS = 160
_ADDR_MASK = (1 << 160) - 1
_U32_MAX = (1 << 32) - 1
_U16_MAX = (1 << 16) - 1

TOKEN_ID_SIZE = 24  # bytes on the wire
POOL_ID_SIZE = 67


class VenueKind(IntEnum):
    """The AMM family of a pool: decides which math prices it."""

    UNKNOWN = 0
    UNISWAP_V2 = 1  # constant product with a fee (Uniswap V2 and its forks)
    UNISWAP_V3 = 2  # concentrated liquidity
    CURVE = 3  # StableSwap
    CEX = 4  # a centralised order book
    UNISWAP_V4 = 5  # concentrated liquidity in the singleton PoolManager; address = first 20 bytes of the pool id


class Venue(IntEnum):
    """Well-known venues. Codes 1000+ are free for local/devnet venues."""

    UNKNOWN = 0
    UNISWAP_V2 = 1
    SUSHISWAP = 2
    UNISWAP_V3 = 3
    PANCAKESWAP_V2 = 4
    PANCAKESWAP_V3 = 5
    CURVE = 6
    UNISWAP_V4 = 7
    BINANCE = 100
    COINBASE = 101  # both public feeds (Exchange and Advanced Trade) quote the same books
    DEVNET_V2_A = 1000
    DEVNET_V2_B = 1001
    DEVNET_V3 = 1002
    DEVNET_V4 = 1003


_HEX = frozenset("0123456789abcdefABCDEF")


def address_to_int(address: bytes | str) -> int:
    """Accept 20 raw bytes or a 0x-hex string."""
    if isinstance(address, str):
        text = address[2:] if address[:2] in ("0x", "0X") else address
        if len(text) != 40 or not _HEX.issuperset(text):
            raise FieldRangeError(f"address {address!r} is not 20 bytes of hex")
        return int(text, 16)
    if not isinstance(address, (bytes, bytearray)) or len(address) != 20:
        raise FieldRangeError(f"address must be 20 bytes, got {address!r}")
    return int.from_bytes(address, "big")


def int_to_address(value: int) -> str:
    """Lower-case 0x-hex (not checksummed: the protocol layer stays dependency-free)."""
    return f"0x{value:040x}"


def _check(name: str, value: int, bits: int) -> int:
    if not isinstance(value, int) or value < 0 or value >> bits:
        raise FieldRangeError(f"{name}={value!r} does not fit in {bits} unsigned bits")
    return int(value)


class TokenId(int):
    """``chain_id:32 | address:160``."""

    __slots__ = ()

    @classmethod
    def of(cls, chain_id: int, address: bytes | str) -> TokenId:
        return cls((_check("chain_id", chain_id, 32) << _ADDR_BITS) | address_to_int(address))

    @property
    def chain_id(self) -> int:
        return int(self) >> _ADDR_BITS

    @property
    def address(self) -> str:
        return int_to_address(int(self) & _ADDR_MASK)

    @property
    def address_int(self) -> int:
        return int(self) & _ADDR_MASK

    def parts(self) -> tuple[int, str]:
        return self.chain_id, self.address

    def __repr__(self) -> str:
        if not 0 <= self < (1 << (TOKEN_ID_SIZE * 8)):
            return f"TokenId({int(self)})"
        return f"TokenId(chain_id={self.chain_id}, address={self.address})"


_KIND_SHIFT = _ADDR_BITS
_VENUE_SHIFT = _ADDR_BITS + 8
_TOKEN1_SHIFT = _VENUE_SHIFT + 16  # 184
_TOKEN0_SHIFT = _TOKEN1_SHIFT + 160
_CHAIN_SHIFT = _TOKEN0_SHIFT + 160
PAIR_SHIFT = _TOKEN1_SHIFT


class PoolId(int):
    """``chain_id:32 | token0:160 | token1:160 | venue:16 | kind:8 | address:160``."""

    __slots__ = ()

    @classmethod
    def of(
        cls,
        chain_id: int,
        venue: int,
        kind: int,
        address: bytes | str,
        token_a: bytes | str,
        token_b: bytes | str,
    ) -> PoolId:
        a, b = address_to_int(token_a), address_to_int(token_b)
        if a == b:
            raise FieldRangeError("a pool's two tokens must differ")
        t0, t1 = (a, b) if a < b else (b, a)
        return cls(
            (_check("chain_id", chain_id, 32) << _CHAIN_SHIFT)
            | (t0 << _TOKEN0_SHIFT)
            | (t1 << _TOKEN1_SHIFT)
            | (_check("venue", venue, 16) << _VENUE_SHIFT)
            | (_check("kind", kind, 8) << _KIND_SHIFT)
            | address_to_int(address)
        )

    @property
    def chain_id(self) -> int:
        return int(self) >> _CHAIN_SHIFT

    @property
    def venue(self) -> int:
        return (int(self) >> _VENUE_SHIFT) & _U16_MAX

    @property
    def kind(self) -> int:
        """A ``VenueKind`` when the code is known, else the raw code (ids from newer writers)."""
        code = (int(self) >> _KIND_SHIFT) & 0xFF
        try:
            return VenueKind(code)
        except ValueError:
            return code

    @property
    def address(self) -> str:
        return int_to_address(int(self) & _ADDR_MASK)

    @property
    def token0(self) -> TokenId:
        return TokenId((self.chain_id << _ADDR_BITS) | ((int(self) >> _TOKEN0_SHIFT) & _ADDR_MASK))

    @property
    def token1(self) -> TokenId:
        return TokenId((self.chain_id << _ADDR_BITS) | ((int(self) >> _TOKEN1_SHIFT) & _ADDR_MASK))

    @property
    def pair_key(self) -> int:
        """Equal for every pool of the same (chain, token0, token1)."""
        return int(self) >> PAIR_SHIFT

    def same_pair(self, other: int) -> bool:
        return int(self) >> PAIR_SHIFT == int(other) >> PAIR_SHIFT

    def other_token(self, token: int) -> TokenId:
        if token == self.token0:
            return self.token1
        if token == self.token1:
            return self.token0
        raise ValueError(f"{token!r} is not a token of {self!r}")

    def parts(self) -> tuple[int, int, int, str, str, str]:
        return (self.chain_id, self.venue, int(self.kind), self.address, self.token0.address, self.token1.address)

    def __repr__(self) -> str:
        if not 0 <= self < (1 << (POOL_ID_SIZE * 8)):
            return f"PoolId({int(self)})"
        try:
            venue: object = Venue(self.venue).name
        except ValueError:
            venue = self.venue
        kind = self.kind
        return (
            f"PoolId(chain_id={self.chain_id}, venue={venue}, kind={getattr(kind, 'name', kind)}, "
            f"address={self.address}, token0={self.token0.address}, token1={self.token1.address})"
        )


def pool_label(pool: int, *, short: bool = False) -> str:
    """A pool for people to read: ``chain:VENUE:0xaddress`` (a venue without a name by its code);
    with ``short``, only the abbreviated address (``0x1234…abcd``), for tables whose other columns
    already name the chain and the venue. The one pool formatter of the tree (relay-cli, the
    dashboard, reports)."""
    p = PoolId(pool)
    if p.chain_id == 0 and p.kind == VenueKind.CEX:  # an order book: cex_book_id
        return f"{code_name(Venue, p.venue)}:{cex_symbol(p)}"
    if short:
        a = p.address
        return f"{a[:6]}…{a[-4:]}"
    return f"{p.chain_id}:{code_name(Venue, p.venue)}:{p.address}"


def code_name(kind: type[IntEnum], code: int) -> str:
    """The name of ``code`` in the enum ``kind`` (``Venue``, ``StopScope``, ``Outcome`` ...), or the
    number itself for a code this reader does not know (a record from a newer writer)."""
    try:
        return kind(code).name
    except ValueError:
        return str(code)


# --- order books on centralised venues ---------------------------------------------------------

CEX_NAME_BYTES = 20  # a symbol or asset name must fit an address field


def _ascii20(name: str, what: str) -> int:
    raw = name.encode("ascii", "strict") if name.isascii() else b""
    if not raw or len(raw) > CEX_NAME_BYTES:
        raise FieldRangeError(f"{what} {name!r} must be 1-{CEX_NAME_BYTES} ASCII characters")
    return int.from_bytes(raw, "big")


def cex_book_id(venue: int, symbol: str, base: str, quote: str) -> PoolId:
    """The id of one order book on a centralised venue, for records that name a ``pool_id``
    (``StateInvalidation``): ``chain_id`` 0 (no chain), ``kind`` CEX, the venue's own symbol
    (``ETHUSDT``, ``ETH-USD``) as the address and the base/quote asset names as the two
    "tokens", each as big-endian ASCII in 160 bits. Reversible like every id: ``cex_symbol``
    reads the symbol back, and two books of the same asset names on two venues share a
    ``pair_key``. Linking an asset name to a token on a chain is configuration, not identity.
    """
    a, b = _ascii20(base, "base asset"), _ascii20(quote, "quote asset")
    if a == b:
        raise FieldRangeError("a book's base and quote assets must differ")
    t0, t1 = (a, b) if a < b else (b, a)
    return PoolId(
        (t0 << _TOKEN0_SHIFT)
        | (t1 << _TOKEN1_SHIFT)
        | (_check("venue", venue, 16) << _VENUE_SHIFT)
        | (int(VenueKind.CEX) << _KIND_SHIFT)
        | _ascii20(symbol, "symbol")
    )


def cex_symbol(pool: int) -> str:
    """The venue symbol inside a ``cex_book_id`` (``""`` when ``pool`` is not a CEX book id)."""
    pid = PoolId(pool)
    if pid.chain_id != 0 or pid.kind != VenueKind.CEX:
        return ""
    raw = (int(pid) & _ADDR_MASK).to_bytes(CEX_NAME_BYTES, "big").lstrip(b"\0")
    return raw.decode("ascii", "replace")
