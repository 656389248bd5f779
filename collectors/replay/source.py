"""Recorded raw logs -> JSON-RPC log objects, in chain order.

Two recording formats are read, both giving exactly the dicts a node returns from
``eth_getLogs`` (hex strings), so replay goes through the same decoder path as
the live collector:

* CSV with the columns ``block_number,block_timestamp,transaction_hash,
  transaction_index,log_index,topics,data`` (demeter-fetch's "raw" files, see
  ``tests/data/uniswap-v3-usdc-weth-2024-01-05/README.md``). ``topics`` is a
  Python-list repr with single quotes; ``block_timestamp`` is UTC
  (``2024-01-05 00:00:23``) or integer seconds. An ``address`` column is used
  when present; otherwise the pool address comes from the file name
  (``<chain>-0x<40 hex>-<date>.raw.csv``) or the caller.
* JSON lines (``.jsonl``/``.ndjson``): one JSON-RPC log object per line, or a
  ``.json`` file holding one array of them.

Each log gets ``blockTimestamp`` (hex seconds, the field newer nodes add to
``eth_getLogs`` results) when the recording has a timestamp.
"""

from __future__ import annotations

import csv
import heapq
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_ADDRESS_IN_NAME = re.compile(r"(?<![0-9a-fA-F])0x([0-9a-fA-F]{40})(?![0-9a-fA-F])")
_CSV_COLUMNS = ("block_number", "transaction_hash", "log_index", "topics", "data")


class RecordingError(ValueError):
    """A recording file cannot be read (missing columns, unparsable row)."""


def address_from_filename(path: str | Path) -> str | None:
    """``ethereum-0x88e6...5640-2024-01-05.raw.csv`` -> ``0x88e6...5640`` (lower case), else None."""
    found = _ADDRESS_IN_NAME.findall(Path(path).name)
    return f"0x{found[0].lower()}" if len(found) == 1 else None


def parse_topics(text: str) -> list[str]:
    """``"['0xab', '0xcd']"`` (Python repr) or ``'["0xab", "0xcd"]'`` (JSON) -> list of str."""
    try:
        topics = json.loads(text.replace("'", '"'))
    except ValueError:
        raise RecordingError(f"topics {text[:80]!r} is not a list literal") from None
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise RecordingError(f"topics {text[:80]!r} is not a list of strings")
    return topics


_TS_CACHE: dict[str, int] = {}


def parse_timestamp(text: str) -> int:
    """Seconds since the epoch from ``2024-01-05 00:00:23`` (UTC if naive), ISO 8601, or an integer."""
    cached = _TS_CACHE.get(text)
    if cached is not None:
        return cached
    s = text.strip()
    if s.isdigit():
        value = int(s)
    elif s.startswith(("0x", "0X")):
        value = int(s, 16)
    else:
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace(" UTC", ""))
        except ValueError:
            raise RecordingError(f"block_timestamp {text!r} is not a date, time or integer") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        value = int(dt.timestamp())
    if len(_TS_CACHE) > 100_000:
        _TS_CACHE.clear()
    _TS_CACHE[text] = value
    return value


def read_csv_logs(path: str | Path, address: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield JSON-RPC-shaped log objects from a raw CSV recording, in file order."""
    path = Path(path)
    default_address = (address or address_from_filename(path) or "").lower() or None
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _CSV_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise RecordingError(f"{path}: missing column(s) {', '.join(missing)}")
        has_address = "address" in (reader.fieldnames or ())
        if not has_address and default_address is None:
            raise RecordingError(f"{path}: no address column and no pool address in the file name")
        has_ts = "block_timestamp" in (reader.fieldnames or ())
        has_txi = "transaction_index" in (reader.fieldnames or ())
        for line, row in enumerate(reader, start=2):
            try:
                log: dict[str, Any] = {
                    "address": row["address"].lower() if has_address else default_address,
                    "topics": parse_topics(row["topics"]),
                    "data": row["data"],
                    "blockNumber": hex(int(row["block_number"])),
                    "transactionHash": row["transaction_hash"],
                    "logIndex": hex(int(row["log_index"])),
                    "removed": False,
                }
                if has_txi and row["transaction_index"]:
                    log["transactionIndex"] = hex(int(row["transaction_index"]))
                if has_ts and row["block_timestamp"]:
                    log["blockTimestamp"] = hex(parse_timestamp(row["block_timestamp"]))
            except (RecordingError, ValueError, TypeError, AttributeError) as exc:
                raise RecordingError(f"{path}:{line}: {exc}") from None
            yield log


def read_json_logs(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield log objects from JSON lines (one per line) or from one JSON array."""
    path = Path(path)
    with path.open() as f:
        if path.suffix == ".json":
            logs = json.load(f)
            if not isinstance(logs, list):
                raise RecordingError(f"{path}: expected a JSON array of log objects")
            yield from logs
            return
        for line_no, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise RecordingError(f"{path}:{line_no}: {exc}") from None


def read_logs(path: str | Path, address: str | None = None) -> Iterator[dict[str, Any]]:
    """Any supported recording, by file suffix."""
    suffixes = Path(path).suffixes
    if suffixes and suffixes[-1] in (".jsonl", ".ndjson", ".json"):
        return read_json_logs(path)
    return read_csv_logs(path, address)


def _order_key(log: dict[str, Any]) -> tuple[int, int]:
    return int(log["blockNumber"], 16), int(log["logIndex"], 16)


def merge_logs(sources: Iterable[Iterable[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """Merge per-file streams (each in chain order) into one stream ordered by (block, logIndex)."""
    return heapq.merge(*sources, key=_order_key)
