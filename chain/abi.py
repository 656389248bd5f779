"""ABI helpers over eth-abi and eth-utils: signatures, selectors, call data, and a contract's ABI
bound to its creation code (:class:`Artifact`), with functions and events to encode and decode.

eth-abi encodes and decodes, eth-utils derives selectors, topics and canonical signatures
(tuples expanded); this module only binds them to names: ``artifact.fn("swap").encode(...)``,
``artifact.event("Transfer").decode(topics, data)``. Pure functions over bytes: no RPC, no
clock, no compiler (see :mod:`chain.solc` for that).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import eth_abi
from eth_abi.grammar import parse
from eth_utils import decode_hex, function_signature_to_4byte_selector, keccak
from eth_utils.abi import (
    abi_to_signature,
    collapse_if_tuple,
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
)

__all__ = ["Artifact", "Event", "Function", "abi_type", "as_bytes", "encode_call", "selector", "signature_types"]

#: The canonical type string of an ABI parameter, tuples expanded: ``(address,uint24)[]``.
abi_type = collapse_if_tuple


def as_bytes(value: str | bytes | None) -> bytes:
    """JSON-RPC hex (``0x``-prefixed or bare) or bytes -> bytes; None and ``""`` -> ``b""``.
    Raises ValueError for text that is not hex."""
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return decode_hex(value)


def signature_types(signature: str) -> tuple[str, ...]:
    """The argument types of ``"name(type,...)"``, tuples kept whole:
    ``"f(uint256,(address,uint24)[])"`` -> ``("uint256", "(address,uint24)[]")``."""
    args = signature[signature.index("(") :]
    if args == "()":
        return ()
    return tuple(c.to_type_str() for c in parse(args).components)


def selector(signature: str) -> bytes:
    """The 4-byte selector of a function or error signature."""
    return function_signature_to_4byte_selector(signature)


def encode_call(signature: str, *args: Any) -> bytes:
    """Calldata for ``signature`` (e.g. ``"transfer(address,uint256)"``) with ``args``."""
    types = signature_types(signature)
    return selector(signature) + (eth_abi.encode(list(types), list(args)) if types else b"")


@dataclass(frozen=True)
class Function:
    name: str
    signature: str
    selector: bytes
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]

    def encode(self, *args: Any) -> bytes:
        return self.selector + eth_abi.encode(list(self.input_types), list(args))

    def decode(self, data: bytes) -> tuple[Any, ...]:
        return tuple(eth_abi.decode(list(self.output_types), data))


@dataclass(frozen=True)
class Event:
    name: str
    signature: str
    topic: bytes
    indexed: tuple[tuple[str, str], ...]  # (name, type) in topic order
    data: tuple[tuple[str, str], ...]  # (name, type) in data order

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (name, typ), topic in zip(self.indexed, topics[1:], strict=True):
            out[name] = eth_abi.decode([typ], topic)[0]
        values = eth_abi.decode([t for _, t in self.data], data)
        out.update({name: v for (name, _), v in zip(self.data, values, strict=True)})
        return out


@dataclass(frozen=True, eq=False)
class Artifact:
    """A contract's ABI and creation bytecode (bytes, no link references left)."""

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes
    source: str
    _functions: dict[str, list[Function]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for entry in self.abi:
            if entry.get("type") == "function":
                fn = Function(
                    entry["name"],
                    abi_to_signature(entry),
                    function_abi_to_4byte_selector(entry),
                    tuple(abi_type(p) for p in entry.get("inputs", [])),
                    tuple(abi_type(p) for p in entry.get("outputs", [])),
                )
                self._functions.setdefault(entry["name"], []).append(fn)

    def fn(self, name: str, nargs: int | None = None) -> Function:
        """The function ``name`` (or a full signature ``name(type,...)``); ``nargs`` picks an overload."""
        if "(" in name:
            for fn in self._functions.get(name.split("(")[0], []):
                if fn.signature == name:
                    return fn
            raise KeyError(f"{self.name} has no function {name}")
        fns = self._functions.get(name, [])
        if nargs is not None:
            fns = [f for f in fns if len(f.input_types) == nargs]
        if len(fns) != 1:
            raise KeyError(f"{self.name}.{name}: {len(fns)} matching functions, give a signature")
        return fns[0]

    def encode(self, name: str, *args: Any) -> bytes:
        return self.fn(name, len(args)).encode(*args)

    def event(self, name: str) -> Event:
        for entry in self.abi:
            if entry.get("type") == "event" and entry["name"] == name:
                ins = entry.get("inputs", [])
                return Event(
                    name,
                    abi_to_signature(entry),
                    event_abi_to_log_topic(entry),
                    tuple((p["name"], abi_type(p)) for p in ins if p.get("indexed")),
                    tuple((p["name"], abi_type(p)) for p in ins if not p.get("indexed")),
                )
        raise KeyError(f"{self.name} has no event {name}")

    def deploy_data(self, *args: Any) -> bytes:
        """Creation code followed by the ABI-encoded constructor arguments."""
        ctor = next((e for e in self.abi if e.get("type") == "constructor"), None)
        types = [abi_type(p) for p in ctor.get("inputs", [])] if ctor else []
        if len(types) != len(args):
            raise TypeError(f"{self.name} constructor takes {len(types)} arguments, got {len(args)}")
        return self.bytecode + (eth_abi.encode(types, list(args)) if types else b"")

    @property
    def init_code_hash(self) -> bytes:
        """keccak256 of the creation code: what CREATE2 addresses are derived from."""
        return keccak(self.bytecode)
