"""``alphapulse report [--db FILE] [--archive DIR] [--json] [--png FILE] [--day YYYY-MM-DD]``

A daily (``--day``, UTC, by the result's event time) and all-time report from the portfolio
database: P&L, the opportunity funnel with counts per outcome code and reason, gas spent, best
and worst trades, risk metrics. ``--json`` prints the same as JSON; ``--png`` draws cumulative
P&L and the funnel (matplotlib, Agg backend). ``--archive DIR`` builds the books in memory from
Parquet archive files instead of a database (each file's first binary column must hold raw
frames, as ``relays.archiver`` writes them -- an assumption, see the module code).

The funnel, from the data we have::

    detected      signals seen on the signal relay (or known from their result)
    re-validated  ended with an outcome other than STALE, UNPROFITABLE, REJECTED_BY_RISK, HALTED
    simulated     re-validated and not FAILED (a build/simulation/signing failure)
    submitted     an ExecutionStarted was seen, or the outcome implies a transaction was sent
                  (EXECUTED, REVERTED, NOT_INCLUDED)
    included      EXECUTED or REVERTED (mined)
    profit        EXECUTED with a positive net value (realized profit minus gas)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from market.display import Registry, fmt_units
from protocol.errors import ProtocolError
from protocol.execution import Outcome
from protocol.ids import TokenId, Venue, code_name
from runtime.errors import BadFile, one_line
from runtime.files import bad_sqlite

from .books import Books, default_db_path, open_db, open_db_readonly
from .metrics import risk_metrics

NOT_REVALIDATED = {int(Outcome.STALE), int(Outcome.UNPROFITABLE), int(Outcome.REJECTED_BY_RISK), int(Outcome.HALTED)}
SENT = {int(Outcome.EXECUTED), int(Outcome.REVERTED), int(Outcome.NOT_INCLUDED)}
CEX_TRADED = {int(Outcome.UNWOUND), int(Outcome.LEG_OPEN)}  # a CEX-DEX leg traded on the exchange
INCLUDED = {int(Outcome.EXECUTED), int(Outcome.REVERTED)}


_NUMBER = re.compile(r"-?\d+")


def _token_label(key: object) -> str:
    """A token id key as ``chain:0xaddress`` (keys are TokenId integers, possibly as strings)."""
    try:
        tok = TokenId(int(str(key)))
    except ValueError:
        return str(key)
    return f"{tok.chain_id}:{tok.address}"


def _outcome(code: int) -> str:
    try:
        return Outcome(code).name
    except ValueError:
        return str(code)


def _window(day: str | None) -> tuple[int, int]:
    if day is None:
        return 0, (1 << 63) - 1
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    s = int(start.timestamp()) * 10**9
    return s, s + int(timedelta(days=1).total_seconds()) * 10**9


def build_report(db: sqlite3.Connection, day: str | None = None) -> dict[str, Any]:
    lo, hi = _window(day)
    results = db.execute(
        "SELECT signal_id, outcome, reason, gas_wei, realized_profit, profit_token, net_value, at_ns, chain_id "
        "FROM results WHERE at_ns >= ? AND at_ns < ? ORDER BY at_ns, signal_id", (lo, hi)).fetchall()
    signals = {r[0] for r in db.execute("SELECT signal_id FROM signals WHERE detected_ns >= ? AND detected_ns < ?",
                                        (lo, hi))}
    started = {r[0] for r in db.execute("SELECT signal_id FROM started")}
    by_outcome: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    funnel = dict.fromkeys(("detected", "re-validated", "simulated", "submitted", "included", "profit"), 0)
    detected = set(signals)
    gas_wei = 0
    realized: dict[str, int] = {}
    trades = []
    for sid, outcome, reason, gas, realized_profit, token, net_value, at, chain in results:
        detected.add(sid)
        name = _outcome(outcome)
        by_outcome[name] = by_outcome.get(name, 0) + 1
        if reason:
            # group by the reason's shape: its first clause with the numbers blanked out
            key = f"{name}: {_NUMBER.sub('#', reason.split(';', 1)[0].split(':', 1)[0]).strip()}"
            by_reason[key] = by_reason.get(key, 0) + 1
        gas_wei += int(gas)
        if outcome == Outcome.EXECUTED:
            realized[token] = realized.get(token, 0) + int(realized_profit)
        if outcome not in NOT_REVALIDATED:
            funnel["re-validated"] += 1
            if outcome != Outcome.FAILED:
                funnel["simulated"] += 1
        if sid in started or outcome in SENT:
            funnel["submitted"] += 1
        if outcome in INCLUDED:
            funnel["included"] += 1
        nv = None if net_value is None else int(net_value)
        if outcome == Outcome.EXECUTED and nv is not None and nv > 0:
            funnel["profit"] += 1
        if nv is not None and (outcome in SENT or outcome in CEX_TRADED or int(gas)):  # something was sent or paid
            trades.append({"signal_id": sid, "outcome": name, "net_value": nv, "at_ns": at, "chain_id": chain})
    funnel["detected"] = len(detected)
    series = [t["net_value"] for t in trades]
    ordered = sorted(trades, key=lambda t: (t["net_value"], t["signal_id"]))
    rejects = db.execute("SELECT reason FROM rejects WHERE at_ns >= ? AND at_ns < ?", (lo, hi)).fetchall()
    pnl = Books(db).pnl() if day is None else None
    cum, running = [], 0
    for v in series:
        running += v
        cum.append(running)
    return {
        "period": day or "all-time",
        "results": len(results),
        "funnel": funnel,
        "outcomes": by_outcome,
        "reasons": by_reason,
        "gas_spent_wei": gas_wei,
        "realized_profit_by_token": realized,
        "net_pnl_value": sum(series),
        "best_trades": ordered[::-1][:5],
        "worst_trades": ordered[:5],
        "metrics": risk_metrics(series),
        "rejected_records": len(rejects),
        "books": None if pnl is None else {
            "realized_value": pnl["realized_value"], "unrealized_value": pnl["unrealized_value"],
            "balances": {str(k): v for k, v in Books(db).balances().items()},
            "cex_balances": {f"{code_name(Venue, v).lower()}:{a}": n for (v, a), n in Books(db).cex_balances().items()},
            "pnl_by_venue": Books(db).pnl_by_venue()},
        "cumulative_pnl": cum,
    }


def add_readable(rep: dict[str, Any], registry: Registry, valuation_tokens: Iterable[int] = ()) -> dict[str, Any]:
    """Readable fields beside the exact integers (which stay as they are): token symbols, amounts with
    decimals applied, the net P&L and trades in the valuation token when the books have one."""
    vals = sorted({int(v) for v in valuation_tokens if v})
    val = vals[0] if len(vals) == 1 else None
    rep["realized_profit"] = [
        {"token": str(k), "chain_id": TokenId(int(k)).chain_id, "address": TokenId(int(k)).address,
         "symbol": registry.symbol(int(k)), "amount": v, "readable": registry.amount(v, int(k))}
        for k, v in rep["realized_profit_by_token"].items()]
    rep["gas_spent"] = f"{fmt_units(rep['gas_spent_wei'], 18)} ETH"
    if val is not None:
        rep["valuation_token"] = {"token": str(val), "symbol": registry.symbol(val)}
        rep["net_pnl"] = registry.amount(rep["net_pnl_value"], val)
        for t in (*rep["best_trades"], *rep["worst_trades"]):
            t["net"] = registry.amount(t["net_value"], val)
        if rep["books"]:
            rep["books"]["realized"] = registry.amount(rep["books"]["realized_value"], val)
            rep["books"]["unrealized"] = registry.amount(rep["books"]["unrealized_value"], val)
    return rep


def render_text(rep: dict[str, Any]) -> str:
    m = rep["metrics"]
    net = rep.get("net_pnl") or f"{rep['net_pnl_value']} (valuation token base units)"
    gas = rep.get("gas_spent") or f"{fmt_units(rep['gas_spent_wei'], 18)} ETH"
    lines = [f"AlphaPulse report: {rep['period']}", "=" * 40,
             f"results: {rep['results']}   net P&L: {net}",
             f"gas spent: {gas} ({rep['gas_spent_wei']} wei)",
             "", "funnel:"]
    for k, v in rep["funnel"].items():
        lines.append(f"  {k:13} {v:8}")
    lines += ["", "outcomes:"] + [f"  {k:16} {v:8}" for k, v in sorted(rep["outcomes"].items())]
    if rep["reasons"]:
        lines += ["", "reasons:"] + [f"  {v:6}  {k}" for k, v in sorted(rep["reasons"].items(), key=lambda kv: -kv[1])]
    lines += ["", "realized profit by token:"]
    if "realized_profit" in rep:
        lines += [f"  {r['readable']}  ({r['amount']} base units)" for r in rep["realized_profit"]]
    else:
        lines += [f"  {_token_label(k)}: {v}" for k, v in rep["realized_profit_by_token"].items()]

    def trade(t: dict[str, Any]) -> str:
        return f"  signal {t['signal_id']:>8} {t['outcome']:10} {t.get('net') or t['net_value']:>24}"

    lines += ["", "best trades:"] + [trade(t) for t in rep["best_trades"]]
    lines += ["worst trades:"] + [trade(t) for t in rep["worst_trades"]]

    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    lines += ["", f"risk: trades {m['trades']}  max drawdown {m['max_drawdown']}  VaR95 {m['var_95']}  "
                  f"Sharpe {f(m['sharpe'])}  Sortino {f(m['sortino'])}  Calmar {f(m['calmar'])}",
              f"rejected records: {rep['rejected_records']}"]
    if rep["books"]:
        b = rep["books"]
        lines.append(f"books: realized {b.get('realized') or b['realized_value']}  "
                     f"unrealized {b.get('unrealized') or b['unrealized_value']}")
        venues = b.get("pnl_by_venue") or {}
        if any(not k.startswith("chain:") for k in venues):  # CEX-DEX trading: P&L and balances per venue
            lines.append("realized P&L by venue (valuation token base units):")
            lines += [f"  {k:12} {v['realized_value'] if v['realized_value'] is not None else 'unpriced'}"
                      for k, v in sorted(venues.items())]
            lines += ["exchange balances (base units, moved by our fills):"]
            lines += [f"  {k:12} {v}" for k, v in sorted(b.get("cex_balances", {}).items())]
    return "\n".join(lines)


def render_png(rep: dict[str, Any], path: str | Path, registry: Registry | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    val = rep.get("valuation_token")
    info = registry.token(int(val["token"])) if val and registry else None
    if info is not None:  # display only: the chart's axis in whole tokens
        ys: list[float] = [v / 10**info.decimals for v in rep["cumulative_pnl"]]
        unit = info.symbol
    else:
        ys, unit = [float(v) for v in rep["cumulative_pnl"]], "valuation token base units"
    ax1.plot(range(1, len(ys) + 1), ys)
    ax1.set_title(f"cumulative P&L ({rep['period']})")
    ax1.set_xlabel("trade")
    ax1.set_ylabel(unit)
    stages = list(rep["funnel"])
    ax2.bar(stages, [rep["funnel"][s] for s in stages])
    ax2.set_title("opportunity funnel")
    ax2.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def books_from_archive(directory: str | Path) -> sqlite3.Connection:
    """Replay Parquet archive files (raw frames in the first binary column) into an in-memory book."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from protocol.message import decode
    from relays.archiver import unreadable

    db = open_db(":memory:")
    books = Books(db)
    for f in sorted(Path(directory).rglob("*.parquet")):
        try:
            table = pq.read_table(f)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise unreadable(f, exc) from None
        col = next((c for c, t in zip(table.column_names, table.schema.types)
                    if pa.types.is_binary(t) or pa.types.is_large_binary(t)), None)
        if col is None:
            raise ValueError(f"{f}: no binary column of raw frames")
        try:
            msgs = [decode(b) for b in table.column(col).to_pylist()]
        except ProtocolError as exc:
            raise BadFile(f"{f} holds a frame that does not decode ({exc}); not an archive of ours?") from None
        for domain in sorted({m.domain for m in msgs}):
            books.apply(domain, [m for m in msgs if m.domain == domain])
    return db


def main(argv: list[str] | None = None, *, registry: Registry | None = None,
         valuation_tokens: Iterable[int] = ()) -> int:
    """``registry``/``valuation_tokens``: name tokens and amounts (``tools.report_cli`` loads them)."""
    p = argparse.ArgumentParser(prog="alphapulse report", description="Daily and all-time report.")
    p.add_argument("--db", default=None, help=f"portfolio database (default {default_db_path()}; "
                   "`alphapulse report` falls back to the latest demo run's)")
    p.add_argument("--archive", help="build the books from a Parquet archive directory instead")
    p.add_argument("--json", action="store_true")
    p.add_argument("--png", help="write a chart of cumulative P&L and the funnel")
    p.add_argument("--day", help="YYYY-MM-DD (UTC); default all-time")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.day:
        try:
            _window(args.day)
        except ValueError:
            print(f"alphapulse report: --day {args.day!r} is not YYYY-MM-DD", file=sys.stderr)
            return 2
    try:
        if args.archive:
            db = books_from_archive(args.archive)
            path = Path(args.archive)
        else:
            path = Path(args.db) if args.db else default_db_path()
            if not path.exists():
                print(f"alphapulse report: no database at {path}", file=sys.stderr)
                return 2
            db = open_db_readonly(path)
        try:
            rep = build_report(db, args.day)
        except sqlite3.DatabaseError as exc:  # a page damaged past the checks at open
            raise bad_sqlite(path, exc) from None
        finally:
            db.close()
    except BadFile as exc:
        print(f"alphapulse report: {one_line(exc)}", file=sys.stderr)
        return 2
    if registry is not None:
        add_readable(rep, registry, valuation_tokens)
    if args.png:
        render_png(rep, args.png, registry)
        print(f"alphapulse report: wrote the chart to {Path(args.png).resolve()}", file=sys.stderr)
    try:
        print(json.dumps(rep, indent=2, default=str) if args.json else render_text(rep), flush=True)
    except BrokenPipeError:  # `report --json | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
