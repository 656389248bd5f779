"""Trade history from the books: one row per signal that reached an outcome, newest first, filterable.

``history_rows`` returns the exact integers (amounts in base units, gas in wei, the net value in the
valuation token) and, given a ``market.display.Registry``, readable text beside them; ``alphapulse
history`` (``tools/report_cli.py``) prints them as a table or, with ``--csv``, as CSV with both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from market.display import PriceSource, Registry, fmt_units
from protocol.execution import Outcome
from protocol.ids import code_name

COLUMNS = ("time", "signal_id", "outcome", "chain_id", "realized_profit", "profit_token", "profit_symbol", "gas_wei",
           "net_value", "net_quote_units", "tx_hash", "reason", "realized", "gas", "net", "net_quote")


def parse_outcomes(names: Iterable[str]) -> set[int]:
    """Outcome names (``executed``, ``STALE``) as codes; ValueError naming the valid ones."""
    codes = set()
    for name in names:
        try:
            codes.add(int(Outcome[name.upper()]))
        except KeyError:
            raise ValueError(f"unknown outcome {name!r} (one of {', '.join(o.name for o in Outcome)})") from None
    return codes


def history_rows(db: sqlite3.Connection, *, outcomes: set[int] | None = None, since_ns: int = 0,
                 until_ns: int = (1 << 63) - 1, limit: int | None = None, registry: Registry | None = None,
                 valuation_token: int | None = None, prices: PriceSource | None = None) -> list[dict[str, Any]]:
    """With ``prices`` (``Books.price_q96``) and a registry with a quote currency, the net also in that currency
    at the latest pool prices: ``net_quote_units`` (the quote token's base units) and ``net_quote`` (text)."""
    sql = ("SELECT signal_id, outcome, chain_id, realized_profit, profit_token, gas_wei, net_value, tx_hash, "
           "reason, at_ns FROM results WHERE at_ns >= ? AND at_ns < ?")
    params: list[Any] = [since_ns, until_ns]
    if outcomes:
        sql += f" AND outcome IN ({','.join('?' * len(outcomes))})"
        params += sorted(outcomes)
    sql += " ORDER BY at_ns DESC, signal_id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    reg = registry or Registry()
    rows = []
    for sid, outcome, chain, realized, token, gas, net, tx, reason, at in db.execute(sql, params):
        realized_i, gas_i = int(realized or 0), int(gas or 0)
        net_i = None if net is None else int(net)
        tok = int(token or 0)
        net_q = (reg.to_quote(net_i, valuation_token, prices)
                 if net_i is not None and valuation_token and prices is not None else None)
        rows.append({
            "time": datetime.fromtimestamp(at / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "signal_id": sid, "outcome": code_name(Outcome, outcome), "chain_id": chain,
            "realized_profit": realized_i, "profit_token": str(tok), "profit_symbol": reg.symbol(tok) if tok else "",
            "gas_wei": gas_i, "net_value": net_i, "net_quote_units": net_q,
            "tx_hash": tx or "", "reason": reason or "",
            "realized": reg.amount(realized_i, tok) if tok and reg.token(tok) else str(realized_i),
            "gas": f"{fmt_units(gas_i, 18)} ETH",
            "net": ("-" if net_i is None else reg.amount(net_i, valuation_token)
                    if valuation_token and reg.token(valuation_token) else str(net_i)),
            "net_quote": "-" if net_q is None else reg.quote_text(net_q, valuation_token),  # type: ignore[arg-type]
        })
    return rows
