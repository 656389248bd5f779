"""Coinbase Advanced Trade frames built to the documented format from Exchange-feed records.

No Advanced Trade capture is available under a compatible licence, so the stand-in translates the
Exchange capture message by message (same books, same trades, same times):

* ``snapshot``  -> ``l2_data`` event ``snapshot`` (``updates`` with ``side`` "bid" / "offer");
* ``l2update``  -> ``l2_data`` event ``update``;
* ``match`` / ``last_match`` -> ``market_trades`` event ``update`` / ``snapshot`` (``side`` upper-case,
  the maker side as on the Exchange feed);
* anything else (``ticker``, acks) is skipped; ``heartbeats`` frames are made by ``heartbeat``.

``sequence_num`` is stamped by the server per connection (``Frame.stamp``), as Coinbase does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

_SIDE = {"buy": "bid", "sell": "offer"}
EPOCH = "1970-01-01T00:00:00Z"


def _ns_to_iso(ns: int) -> str:
    import time

    s, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac:09d}Z"


def frame(channel: str, events: list[dict[str, Any]], ts_ns: int, seq: int) -> str:
    return json.dumps({"channel": channel, "client_id": "", "timestamp": _ns_to_iso(ts_ns),
                       "sequence_num": seq, "events": events}, separators=(",", ":"))


def heartbeat(ts_ns: int, counter: int, seq: int) -> str:
    return frame("heartbeats", [{"current_time": _ns_to_iso(ts_ns), "heartbeat_counter": counter}], ts_ns, seq)


def subscriptions(channels: Mapping[str, list[str]], ts_ns: int, seq: int) -> str:
    return frame("subscriptions", [{"subscriptions": dict(channels)}], ts_ns, seq)


def translate(msg: Mapping[str, Any], ts_ns: int) -> tuple[str, list[dict[str, Any]]] | None:
    """One Exchange-feed message -> (channel, events) of Advanced Trade, or None when it has no counterpart."""
    kind = msg.get("type")
    if kind == "snapshot":
        ups = [{"side": "bid", "event_time": EPOCH, "price_level": p, "new_quantity": q} for p, q in msg["bids"]]
        ups += [{"side": "offer", "event_time": EPOCH, "price_level": p, "new_quantity": q} for p, q in msg["asks"]]
        return "l2_data", [{"type": "snapshot", "product_id": msg["product_id"], "updates": ups}]
    if kind == "l2update":
        t = msg.get("time") or _ns_to_iso(ts_ns)
        ups = [{"side": _SIDE[s], "event_time": t, "price_level": p, "new_quantity": q} for s, p, q in msg["changes"]]
        return "l2_data", [{"type": "update", "product_id": msg["product_id"], "updates": ups}]
    if kind in ("match", "last_match"):
        trade = {"trade_id": str(msg["trade_id"]), "product_id": msg["product_id"], "price": msg["price"],
                 "size": msg["size"], "side": msg["side"].upper(), "time": msg["time"]}
        return "market_trades", [{"type": "snapshot" if kind == "last_match" else "update", "trades": [trade]}]
    return None


def translate_all(records: Iterable[tuple[int, Mapping[str, Any]]]) -> Iterator[tuple[int, str, list[dict[str, Any]]]]:
    """(ts_ns, exchange message) pairs -> (ts_ns, channel, events) for every message with a counterpart."""
    for ts, msg in records:
        out = translate(msg, ts)
        if out is not None:
            yield ts, out[0], out[1]
