"""Revert data: Solidity's ``Error(string)`` and ``Panic(uint256)``, and a contract's custom errors.

A node reports a revert as a JSON-RPC error object whose ``data`` holds the revert bytes (some
nodes nest them one level deeper: ``{"data": {"data": "0x..."}}``; :func:`revert_data` reads
both). :func:`decode_error` turns them into a :class:`ContractError` given a table of the
contract's error signatures (:func:`error_table`); :func:`decode_revert` into one line of text
for a person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import eth_abi
from eth_utils import to_checksum_address

from .abi import as_bytes, selector, signature_types
from .rpc import RpcError

__all__ = [
    "BUILTIN_ERRORS",
    "ERROR_SELECTOR",
    "PANIC_SELECTOR",
    "ContractError",
    "ErrorTable",
    "decode_error",
    "decode_revert",
    "error_table",
    "revert_data",
]

ERROR_SELECTOR = selector("Error(string)")  # 0x08c379a0
PANIC_SELECTOR = selector("Panic(uint256)")  # 0x4e487b71

#: selector -> (error name, argument types)
ErrorTable = dict[bytes, tuple[str, tuple[str, ...]]]


def error_table(signatures: Iterable[str] = ()) -> ErrorTable:
    """A decoding table for ``signatures`` (e.g. ``"InsufficientProfit(uint256,uint256)"``) plus
    Solidity's built-in ``Error(string)`` and ``Panic(uint256)``."""
    table: ErrorTable = {}
    for sig in ("Error(string)", "Panic(uint256)", *signatures):
        table[selector(sig)] = (sig[: sig.index("(")], signature_types(sig))
    return table


BUILTIN_ERRORS = error_table()


@dataclass(frozen=True, slots=True)
class ContractError:
    """A decoded revert: ``name`` (e.g. ``"InsufficientProfit"``) and its arguments."""

    name: str
    args: tuple[Any, ...]
    selector: bytes

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.args))})"


def decode_error(data: str | bytes | None, table: ErrorTable = BUILTIN_ERRORS) -> ContractError | None:
    """Revert data -> the error it encodes; None for empty data or a selector not in ``table``.
    Arguments that do not decode leave the name alone (``args == ()``)."""
    if data is None:
        return None
    try:
        raw = as_bytes(data)
    except ValueError:
        return None
    entry = table.get(raw[:4]) if len(raw) >= 4 else None
    if entry is None:
        return None
    name, types = entry
    try:
        args = tuple(eth_abi.decode(list(types), raw[4:])) if types else ()
    except Exception:  # noqa: BLE001 - malformed arguments: report the name only
        args = ()
    args = tuple(to_checksum_address(a) if t == "address" else a for t, a in zip(types, args))
    return ContractError(name, args, raw[:4])


def decode_revert(data: str | bytes | None, table: ErrorTable = BUILTIN_ERRORS) -> str:
    """One line for a person: the ``Error(string)`` message, ``Panic(0x11)``, a known custom
    error with its arguments, else the raw hex."""
    try:
        raw = as_bytes(data)
    except ValueError:
        return str(data)
    if not raw:
        return "(no revert data)"
    err = decode_error(raw, table)
    if err is not None and err.args:
        if err.selector == ERROR_SELECTOR:
            return str(err.args[0])
        if err.selector == PANIC_SELECTOR:
            return f"Panic(0x{err.args[0]:x})"
    if err is not None:
        return str(err)
    return "0x" + raw.hex()


def revert_data(exc: RpcError) -> str | None:
    """The revert bytes (0x-hex) of a node's error object, wherever the node put them."""
    data = exc.data
    if isinstance(data, dict):  # some nodes nest it
        data = data.get("data")
    return data if isinstance(data, str) else None
