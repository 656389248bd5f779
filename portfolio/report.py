"""``alphapulse report [--db FILE] [--archive DIR] [--json] [--png FILE] [--day YYYY-MM-DD]``

A daily (``--day``, UTC, by the result's event time) and all-time report from the portfolio
database: P&L (gross, gas, net, over time, with its drawdown), the opportunity funnel with counts and
predicted values, every outcome (zeros and the signals still in flight included) and the reasons,
gas spent, best and worst trades, risk metrics. ``--json`` prints the same as JSON (exact integers,
readable fields beside them, values in the quote currency at the latest booked pool prices);
``--png`` draws it (:func:`report_figure`; matplotlib, Agg backend) with the run and the dates in its
title. ``--archive DIR`` builds the books in memory from
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
from typing import TYPE_CHECKING, Any

from market.display import PriceSource, Registry, fmt_units
from protocol.errors import ProtocolError
from protocol.execution import Outcome
from protocol.ids import PoolId, TokenId, Venue, code_name
from runtime.errors import BadFile, one_line
from runtime.files import bad_sqlite

from .books import Books, default_db_path, open_db, open_db_readonly
from .metrics import risk_metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
    funnel = dict.fromkeys(FUNNEL, 0)
    predicted = _predicted(db, lo, hi)
    funnel_value: dict[str, dict[int, int]] = {stage: {} for stage in FUNNEL}  # stage -> profit token -> predicted net of its signals

    def reach(stage: str, sid: int) -> None:
        funnel[stage] += 1
        if sid in predicted:
            tok, net = predicted[sid]
            funnel_value[stage][tok] = funnel_value[stage].get(tok, 0) + net

    legs = _ledger_by_signal(db)
    detected = set(signals) | {sid for sid in predicted}
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
            reach("re-validated", sid)
            if outcome != Outcome.FAILED:
                reach("simulated", sid)
        if sid in started or outcome in SENT:
            reach("submitted", sid)
        if outcome in INCLUDED:
            reach("included", sid)
        nv = None if net_value is None else int(net_value)
        if outcome == Outcome.EXECUTED and nv is not None and nv > 0:
            reach("profit", sid)
        if nv is not None and (outcome in SENT or outcome in CEX_TRADED or int(gas)):  # something was sent or paid
            gross_v, gas_v = legs.get(sid, (0, 0))
            trades.append({"signal_id": sid, "outcome": name, "net_value": nv, "at_ns": at, "chain_id": chain,
                           "gross_value": gross_v, "gas_value": gas_v})
    for sid in detected:
        reach("detected", sid)
    in_flight = len(detected - {r[0] for r in results})
    series = [t["net_value"] for t in trades]
    ordered = sorted(trades, key=lambda t: (t["net_value"], t["signal_id"]))
    rejects = db.execute("SELECT reason FROM rejects WHERE at_ns >= ? AND at_ns < ?", (lo, hi)).fetchall()
    pnl = Books(db).pnl() if day is None else None
    gas_by_chain: dict[str, int] = {}
    bridge_value: int | None = 0
    for kind, chain, delta, value in db.execute(
            "SELECT kind, chain_id, delta, value FROM ledger WHERE kind IN ('gas', 'bridge_gas', 'bridge_fee') "
            "AND at_ns >= ? AND at_ns < ?", (lo, hi)):
        if kind != "bridge_fee":
            gas_by_chain[str(chain)] = gas_by_chain.get(str(chain), 0) - int(delta)
        if kind != "gas":
            bridge_value = None if value is None or bridge_value is None else bridge_value + int(value)
    cum, running = [], 0
    timeline = []
    gross_total = gas_total = peak = 0
    for t in trades:
        running += t["net_value"]
        cum.append(running)
        gross_total += t["gross_value"]
        gas_total += t["gas_value"]
        peak = max(peak, running)
        timeline.append({"at_ns": t["at_ns"], "signal_id": t["signal_id"], "net_value": t["net_value"],
                         "cum_net_value": running, "cum_gross_value": gross_total, "cum_gas_value": gas_total,
                         "drawdown_value": peak - running})
    all_outcomes = {o.name: by_outcome.get(o.name, 0) for o in Outcome}
    all_outcomes.update({k: v for k, v in by_outcome.items() if k not in all_outcomes})  # codes newer than us
    all_outcomes["IN_FLIGHT"] = in_flight
    times = [*(r[7] for r in results), *_detected_times(db, lo, hi)]
    return {
        "period": day or "all-time",
        "results": len(results),
        "funnel": funnel,
        "funnel_predicted_net": {k: {str(t): v for t, v in vals.items()} for k, vals in funnel_value.items()},
        "outcomes": by_outcome,
        "outcomes_all": all_outcomes,
        "first_ns": min(times, default=None),
        "last_ns": max(times, default=None),
        "reasons": by_reason,
        "gas_spent_wei": gas_wei,
        "gas_spent_wei_by_chain": gas_by_chain,  # every chain's gas token: trades' and bridge transfers' gas
        "net_pnl_after_bridge_value": None if bridge_value is None else sum(series) + bridge_value,
        "realized_profit_by_token": realized,
        "net_pnl_value": sum(series),
        "gross_value": gross_total,
        "gas_value": gas_total,
        "best_trades": ordered[::-1][:5],
        "worst_trades": ordered[:5],
        "metrics": risk_metrics(series),
        "rejected_records": len(rejects),
        "books": None if pnl is None else {
            "realized_value": pnl["realized_value"], "unrealized_value": pnl["unrealized_value"],
            "balances": {str(k): v for k, v in Books(db).balances().items()},
            "cex_balances": {f"{code_name(Venue, v).lower()}:{a}": n for (v, a), n in Books(db).cex_balances().items()},
            "cex_balance_tokens": {f"{code_name(Venue, v).lower()}:{a}": str(t)
                                   for (v, a), t in Books(db).cex_balance_tokens().items()},
            "pnl_by_venue": Books(db).pnl_by_venue(),
            "cross_chain": _cross_chain(Books(db))},
        "cumulative_pnl": cum,
        "timeline": timeline,
    }


def _cross_chain(books: Books) -> dict[str, Any]:
    """Balances per chain, bridge transfers (every one, its last state) and what is in flight, what bridging
    cost: exact integers, token ids as decimal text (JSON keys)."""
    costs = books.bridge_costs()
    return {
        "balances_by_chain": {str(c): {str(t): a for t, a in tokens.items()}
                              for c, tokens in books.balances_by_chain().items()},
        "in_flight": {str(t): a for t, a in books.in_flight_by_token().items()},
        "bridge_transfers": [{k: str(v) if k in ("src_token", "dst_token") else v for k, v in t.items()}
                             for t in books.bridge_transfers()],
        "bridge_fees_by_token": {str(t): a for t, a in costs["fees_by_token"].items()},
        "bridge_gas_wei_by_chain": {str(c): a for c, a in costs["gas_wei_by_chain"].items()},
        "bridge_cost_value": costs["value"],
    }


FUNNEL = ("detected", "re-validated", "simulated", "submitted", "included", "profit")


def _predicted(db: sqlite3.Connection, lo: int, hi: int) -> dict[int, tuple[int, int]]:
    """signal id -> (profit token, net profit predicted at detection) of the period's signals."""
    return {sid: (int(tok or 0), int(net or 0)) for sid, tok, net in db.execute(
        "SELECT signal_id, profit_token, net_profit FROM signals WHERE detected_ns >= ? AND detected_ns < ?", (lo, hi))}


def _detected_times(db: sqlite3.Connection, lo: int, hi: int) -> list[int]:
    row = db.execute("SELECT MIN(detected_ns), MAX(detected_ns) FROM signals WHERE detected_ns >= ? AND detected_ns < ?",
                     (lo, hi)).fetchone()
    return [t for t in row if t is not None]


def _ledger_by_signal(db: sqlite3.Connection) -> dict[int, tuple[int, int]]:
    """signal id -> (gross, gas) in the valuation token as booked: the gas rows, and everything else the
    trade moved (its profit, or a CEX-DEX trade's legs). An unpriced row counts 0 here; the trade's net
    (``results.net_value``) is then unknown too and the trade is left out of the P&L."""
    out: dict[int, tuple[int, int]] = {}
    for sid, kind, value in db.execute("SELECT signal_id, kind, value FROM ledger WHERE signal_id != 0"):
        gross, gas = out.get(sid, (0, 0))
        v = int(value) if value is not None else 0
        out[sid] = (gross, gas + v) if kind == "gas" else (gross + v, gas)
    return out


def add_readable(rep: dict[str, Any], registry: Registry, valuation_tokens: Iterable[int] = (),
                 prices: PriceSource | None = None) -> dict[str, Any]:
    """Readable fields beside the exact integers (which stay as they are): token symbols, amounts with
    decimals applied, the net P&L and trades in the valuation token when the books have one (or one asset as
    the valuation token of each chain: the same symbol and decimals), both chains' books in tokens, and with
    ``prices`` (the books' latest pool prices, ``Books.price_q96``) the same in the registry's quote currency:
    ``*_quote`` exact integers in the quote token's base units beside ``*_quote_text``."""
    vals = sorted({int(v) for v in valuation_tokens if v})
    # one valuation token, or one asset on several chains (the same symbol and decimals: WETH on each chain)
    same = len({(i.symbol, i.decimals) if (i := registry.token(v)) else v for v in vals}) == 1
    val = vals[0] if vals and same else None
    # several chains (cross-chain trading): an amount names its chain, USDC on one chain is not USDC on another
    chains = {TokenId(int(t)).chain_id for t in rep["realized_profit_by_token"]} | {
        TokenId(int(t)).chain_id for by_token in rep.get("funnel_predicted_net", {}).values() for t in by_token
        if int(t)} | {int(c) for c in ((rep["books"] or {}).get("cross_chain") or {}).get("balances_by_chain", {})}

    def amount(v: int, token: int) -> str:
        text = registry.amount(v, token)
        return f"{text} on {TokenId(token).chain_id}" if len(chains) > 1 else text

    rep["realized_profit"] = [
        {"token": str(k), "chain_id": TokenId(int(k)).chain_id, "address": TokenId(int(k)).address,
         "symbol": registry.symbol(int(k)), "amount": v, "readable": amount(v, int(k))}
        for k, v in rep["realized_profit_by_token"].items()]
    rep["gas_spent"] = f"{fmt_units(rep['gas_spent_wei'], 18)} ETH"
    for stage, by_token in rep.get("funnel_predicted_net", {}).items():
        rep.setdefault("funnel_predicted", {})[stage] = ", ".join(
            amount(v, int(t)) for t, v in by_token.items() if int(t)) or "-"
    if rep["books"] and rep["books"].get("cex_balances"):  # amounts in the decimals of the chain token traded as
        tokens = rep["books"].get("cex_balance_tokens", {})
        rep["books"]["cex_balances_readable"] = {
            k: f"{fmt_units(n, _decimals(registry, int(tokens[k])))} {k.split(':', 1)[1]}" if k in tokens else str(n)
            for k, n in rep["books"]["cex_balances"].items()}
    if rep["books"] and rep["books"].get("cross_chain"):
        rep["books"]["cross_chain"]["readable"] = _cross_chain_readable(rep["books"]["cross_chain"], registry)
    if val is None:
        return rep
    rep["valuation_token"] = {"token": str(val), "symbol": registry.symbol(val)}
    rep["net_pnl"] = registry.amount(rep["net_pnl_value"], val)
    rep["gross"] = registry.amount(rep["gross_value"], val)
    rep["gas"] = registry.amount(rep["gas_value"], val)
    if rep.get("net_pnl_after_bridge_value") is not None:
        rep["net_pnl_after_bridge"] = registry.amount(rep["net_pnl_after_bridge_value"], val)
    rep["max_drawdown"] = registry.amount(rep["metrics"]["max_drawdown"], val)
    for t in (*rep["best_trades"], *rep["worst_trades"]):
        t["net"] = registry.amount(t["net_value"], val)
    if rep["books"]:
        rep["books"]["realized"] = registry.amount(rep["books"]["realized_value"], val)
        rep["books"]["unrealized"] = registry.amount(rep["books"]["unrealized_value"], val)
        for v in (rep["books"].get("pnl_by_venue") or {}).values():
            if v["realized_value"] is not None:
                v["realized"] = registry.amount(v["realized_value"], val)
    pools = registry.quote_pools(val) if prices is not None else None
    if pools is None or registry.to_quote(10 ** (_decimals(registry, val)), val, prices) is None:  # type: ignore[arg-type]
        return rep
    assert prices is not None and registry.quote is not None

    def q(amount: int) -> int:
        v = registry.to_quote(amount, val, prices)
        assert v is not None  # every pool of the path has a price (checked above)
        return v

    qt = registry.quote_token(val)
    assert qt is not None
    one = 10 ** _decimals(registry, val)
    rep["quote"] = {"currency": registry.quote.name, "token": str(qt), "symbol": registry.symbol(qt),
                    "pools": [registry.pool_label(PoolId(p)) for p in pools],
                    "rate_per_valuation_token": q(one), "rate": registry.quote_text(q(one), val),
                    "priced_at": "the latest pool prices in the books"}
    for key in ("net_pnl_value", "gross_value", "gas_value"):
        base = key.removesuffix("_value")
        rep[f"{base}_quote"] = q(rep[key])
        rep[f"{base}_quote_text"] = registry.quote_text(rep[f"{base}_quote"], val)
    rep["max_drawdown_quote_text"] = registry.quote_text(q(rep["metrics"]["max_drawdown"]), val)
    for t in (*rep["best_trades"], *rep["worst_trades"]):
        t["net_quote"] = q(t["net_value"])
        t["net_quote_text"] = registry.quote_text(t["net_quote"], val)
    for point in rep["timeline"]:
        point["cum_net_quote"] = q(point["cum_net_value"])
    return rep


def exact_amount(registry: Registry, amount: int, token: int) -> str:
    """``amount`` of ``token`` with its symbol and decimals and the exact integer beside it; a chain's native
    coin (a token id without an address) as ETH; a token the registry does not know as its base units."""
    if registry.token(token):
        return f"{registry.amount(amount, token)} ({amount})"
    if not TokenId(token).address_int:
        return f"{fmt_units(amount, 18)} ETH ({amount} wei)"
    return f"{amount} base units of {_token_label(token)}"


def _cross_chain_readable(xc: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """The books' cross-chain section (``build_report``'s ``books.cross_chain``: exact integers) in tokens."""
    def each(by_token: dict[str, int]) -> list[str]:
        return [exact_amount(registry, int(a), int(t)) for t, a in sorted(by_token.items(), key=lambda kv: int(kv[0]))]

    transfers = []
    for t in xc.get("bridge_transfers", ()):
        text = (f"#{t['transfer_id']} chain {t['src_chain']} -> {t['dst_chain']}: "
                f"{exact_amount(registry, int(t['amount']), int(t['src_token']))} {t['state_name']}")
        if t["state_name"] == "COMPLETED":
            text += (f", fee {exact_amount(registry, int(t['fee']), int(t['dst_token']))}, received "
                     f"{exact_amount(registry, int(t['received']), int(t['dst_token']))}")
        elif t.get("reason"):
            text += f": {t['reason']}"
        transfers.append(text)
    return {
        "balances_by_chain": {c: each(tokens) for c, tokens in sorted(xc.get("balances_by_chain", {}).items())},
        "in_flight": each(xc.get("in_flight", {})),
        "bridge_fees": each(xc.get("bridge_fees_by_token", {})),
        "bridge_gas": {c: f"{fmt_units(w, 18)} ETH ({w} wei)" for c, w in sorted(xc.get("bridge_gas_wei_by_chain",
                                                                                          {}).items())},
        "bridge_transfers": transfers,
    }


def _cross_chain_lines(rep: dict[str, Any]) -> list[str]:
    """Both chains' books and the bridge transfers (nothing for a one-chain run without transfers)."""
    xc = (rep.get("books") or {}).get("cross_chain")
    if not xc or (len(xc.get("balances_by_chain", {})) < 2 and not xc.get("bridge_transfers")):
        return []
    r = xc.get("readable") or _cross_chain_readable(xc, Registry())
    lines = ["", "balances per chain (as the books moved them; exact integers in parentheses):"]
    for chain, amounts in r["balances_by_chain"].items():
        lines.append(f"  chain {chain}: " + (", ".join(amounts) or "nothing"))
    gas = rep.get("gas_spent_wei_by_chain") or {}
    if gas:
        lines.append("gas per chain (trades and bridge transfers): "
                     + ", ".join(f"chain {c} {fmt_units(w, 18)} ETH ({w} wei)" for c, w in sorted(gas.items())))
    states: dict[str, int] = {}
    for t in xc.get("bridge_transfers", ()):
        states[t["state_name"]] = states.get(t["state_name"], 0) + 1
    lines.append(f"bridge transfers: {states.get('SENT', 0)} in flight, {states.get('COMPLETED', 0)} completed, "
                 f"{states.get('REFUSED', 0) + states.get('FAILED', 0)} refused/failed; fees "
                 + (", ".join(r["bridge_fees"]) or "none")
                 + (f"; in flight {', '.join(r['in_flight'])}" if r["in_flight"] else ""))
    lines += [f"  {t}" for t in r["bridge_transfers"][-10:]]
    if rep.get("net_pnl_after_bridge_value") is not None:
        lines.append("net P&L after bridge fees and bridge gas: "
                     + (rep.get("net_pnl_after_bridge") or f"{rep['net_pnl_after_bridge_value']} (valuation token base units)"))
    return lines


def _decimals(registry: Registry, token: int) -> int:
    info = registry.token(token)
    return info.decimals if info else 0


def render_text(rep: dict[str, Any]) -> str:
    m = rep["metrics"]
    net = rep.get("net_pnl") or f"{rep['net_pnl_value']} (valuation token base units)"
    gas = rep.get("gas_spent") or f"{fmt_units(rep['gas_spent_wei'], 18)} ETH"

    def usd(key: str) -> str:
        return f"  (= {rep[key]})" if key in rep else ""

    lines = [title(rep), "=" * 40,
             f"results: {rep['results']}   net P&L: {net}{usd('net_pnl_quote_text')}",
             f"  gross {rep.get('gross') or rep['gross_value']}{usd('gross_quote_text')}   "
             f"gas {rep.get('gas') or rep['gas_value']}{usd('gas_quote_text')}",
             f"gas spent: {gas} ({rep['gas_spent_wei']} wei)"]
    if "quote" in rep:
        qd = rep["quote"]
        lines.append(f"quote currency: {qd['currency']} via {qd['symbol']}, 1 {rep['valuation_token']['symbol']} = "
                     f"{qd['rate']} ({', '.join(qd['pools'])}, {qd['priced_at']})")
    lines += ["", "funnel: signals, and the net they were predicted at detection"]
    for k, v in rep["funnel"].items():
        value = rep.get("funnel_predicted", {}).get(k)
        if value is None:
            value = ", ".join(f"{u}" for u in rep.get("funnel_predicted_net", {}).get(k, {}).values()) or "-"
        lines.append(f"  {k:13} {v:8}   {value}")
    lines += ["", "outcomes:"] + [f"  {k:16} {v:8}" for k, v in rep.get("outcomes_all", rep["outcomes"]).items()]
    if rep["reasons"]:
        lines += ["", "reasons:"] + [f"  {v:6}  {k}" for k, v in sorted(rep["reasons"].items(), key=lambda kv: -kv[1])]
    lines += ["", "realized profit by token:"]
    if "realized_profit" in rep:
        lines += [f"  {r['readable']}  ({r['amount']} base units)" for r in rep["realized_profit"]]
    else:
        lines += [f"  {_token_label(k)}: {v}" for k, v in rep["realized_profit_by_token"].items()]

    def trade(t: dict[str, Any]) -> str:
        worth = f"  (= {t['net_quote_text']})" if "net_quote_text" in t else ""
        return f"  signal {t['signal_id']:>8} {t['outcome']:10} {t.get('net') or t['net_value']:>24}{worth}"

    lines += ["", "best trades:"] + [trade(t) for t in rep["best_trades"]]
    lines += ["worst trades:"] + [trade(t) for t in rep["worst_trades"]]

    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    dd = rep.get("max_drawdown") or m["max_drawdown"]
    lines += ["", f"risk: trades {m['trades']}  max drawdown {dd}{usd('max_drawdown_quote_text')}  VaR95 "
                  f"{m['var_95']}  Sharpe {f(m['sharpe'])}  Sortino {f(m['sortino'])}  Calmar {f(m['calmar'])}",
              f"rejected records: {rep['rejected_records']}"]
    if rep["books"]:
        b = rep["books"]
        lines.append(f"books: realized {b.get('realized') or b['realized_value']}  "
                     f"unrealized {b.get('unrealized') or b['unrealized_value']}")
        venues = b.get("pnl_by_venue") or {}
        if any(not k.startswith("chain:") and k != "in_flight" for k in venues):  # CEX-DEX: P&L, balances per venue
            lines.append("realized P&L by venue:" if any("realized" in v for v in venues.values())
                         else "realized P&L by venue (valuation token base units):")
            lines += [f"  {k:12} {v.get('realized') or v['realized_value'] if v['realized_value'] is not None else 'unpriced'}"
                      for k, v in sorted(venues.items())]
            readable = b.get("cex_balances_readable") or {}
            lines += ["exchange balances moved by our fills:" if readable
                      else "exchange balances (base units, moved by our fills):"]
            lines += [f"  {k:12} {readable.get(k, v)}" for k, v in sorted(b.get("cex_balances", {}).items())]
    lines += _cross_chain_lines(rep)
    return "\n".join(lines)


def _day(ns: int | None) -> str:
    return "-" if ns is None else datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%d %H:%M")


def title(rep: dict[str, Any]) -> str:
    """``AlphaPulse report: run 20261206-215800, 2026-12-06 21:58 - 22:01 UTC (all-time)``."""
    run = f"run {rep['run']}, " if rep.get("run") else ""
    if rep.get("first_ns") is None:
        return f"AlphaPulse report: {run}no activity ({rep['period']})"
    first, last = _day(rep.get("first_ns")), _day(rep.get("last_ns"))
    if first[:10] == last[:10]:
        last = last[11:]
    return f"AlphaPulse report: {run}{first} - {last} UTC ({rep['period']})"


def report_figure(rep: dict[str, Any], registry: Registry | None = None) -> Figure:
    """The report's chart (matplotlib's object API, no pyplot state): cumulative gross, gas and net over time
    in the valuation token with the quote currency on the right axis, the drawdown, gross vs gas vs net,
    the funnel with counts and predicted values, every outcome; the run and dates in the title."""
    from matplotlib.dates import AutoDateLocator, DateFormatter, date2num
    from matplotlib.figure import Figure

    val = rep.get("valuation_token")
    info = registry.token(int(val["token"])) if val and registry else None
    scale = 10 ** info.decimals if info is not None else 1  # display only: whole tokens on the axes
    unit = info.symbol if info is not None else "valuation token base units"
    fig = Figure(figsize=(15, 8.5), layout="constrained")
    fig.suptitle(title(rep))
    grid = fig.add_gridspec(2, 3)
    ax_pnl = fig.add_subplot(grid[0, :2])
    ax_bars = fig.add_subplot(grid[0, 2])
    ax_dd = fig.add_subplot(grid[1, 0])
    ax_funnel = fig.add_subplot(grid[1, 1])
    ax_out = fig.add_subplot(grid[1, 2])

    tl = rep.get("timeline", [])
    if tl:  # the curves start at zero when the period's activity starts (its first signal or result)
        start = {"at_ns": min(rep.get("first_ns") or tl[0]["at_ns"], tl[0]["at_ns"]), "cum_gross_value": 0,
                 "cum_gas_value": 0, "cum_net_value": 0, "drawdown_value": 0}
        tl = [start, *tl]
    xs = [float(date2num(datetime.fromtimestamp(p["at_ns"] / 1e9, UTC))) for p in tl]
    for key, label, style in (("cum_gross_value", "gross", "-"), ("cum_gas_value", "gas", ":"),
                              ("cum_net_value", "net", "-")):
        ax_pnl.plot(xs, [p[key] / scale for p in tl], style, label=label, drawstyle="steps-post",
                    linewidth=2.2 if label == "net" else 1.2)
    ax_pnl.axhline(0, color="grey", linewidth=0.6)
    ax_pnl.set_title("cumulative P&L over time (gross - gas = net)")
    ax_pnl.set_ylabel(unit)
    ax_pnl.legend(loc="upper left")
    quote = rep.get("quote")
    if quote is not None and registry is not None:  # the same curves read in the quote currency
        qinfo = registry.token(int(quote["token"]))
        qscale = 10 ** qinfo.decimals if qinfo else 1
        rate = quote["rate_per_valuation_token"] / qscale  # quote units per whole valuation token
        sec = ax_pnl.secondary_yaxis("right", functions=(lambda y: y * rate, lambda y: y / rate))
        sec.set_ylabel(f"{quote['currency']} (at {quote['rate']} per {unit})")
    ax_dd.fill_between(xs, [-p["drawdown_value"] / scale for p in tl], step="post", color="tab:red", alpha=0.5)
    ax_dd.set_title(f"drawdown (max {rep.get('max_drawdown') or rep['metrics']['max_drawdown']})")
    ax_dd.set_ylabel(unit)
    for ax, ticks in ((ax_pnl, 8), (ax_dd, 5)):  # the drawdown panel is a third as wide: fewer ticks (5: the fewest
        # AutoDateLocator finds an interval for at every range, a 40-hour one included)
        ax.xaxis_date(tz=UTC)
        ax.set_xlabel("time (UTC)")
        ax.xaxis.set_major_locator(AutoDateLocator(tz=UTC, minticks=2, maxticks=ticks))
        ax.xaxis.set_major_formatter(DateFormatter("%H:%M:%S" if (tl and tl[-1]["at_ns"] - tl[0]["at_ns"] < 86400e9)
                                                   else "%m-%d %H:%M", tz=UTC))

    names = ["gross", "gas", "net"]
    amounts = [rep["gross_value"] / scale, rep["gas_value"] / scale, rep["net_pnl_value"] / scale]
    bars = ax_bars.bar(names, amounts, color=["tab:green", "tab:orange", "tab:blue"])
    labels = [rep.get(k) or str(rep[f"{k}_value" if k != "net" else "net_pnl_value"]) for k in ("gross", "gas", "net_pnl")]
    if quote is not None:
        labels = [f"{t}\n= {rep[f'{k}_quote_text']}" for t, k in zip(labels, ("gross", "gas", "net_pnl"))]
    ax_bars.bar_label(bars, labels=labels, fontsize=8)
    ax_bars.axhline(0, color="grey", linewidth=0.6)
    ax_bars.set_title("gross vs gas vs net")
    ax_bars.set_ylabel(unit)
    ax_bars.margins(y=0.25)

    stages = list(rep["funnel"])
    counts = [rep["funnel"][st] for st in stages]
    fb = ax_funnel.barh(stages, counts, color="tab:purple")
    ax_funnel.invert_yaxis()
    predicted = rep.get("funnel_predicted") or {}
    ax_funnel.bar_label(fb, labels=[f"{c}  {predicted.get(st, '')}".rstrip() for c, st in zip(counts, stages)],
                        fontsize=8)
    ax_funnel.set_title("opportunity funnel (signals; predicted net)")
    ax_funnel.set_xlabel("signals")
    ax_funnel.margins(x=0.6)

    outcomes = rep.get("outcomes_all") or rep["outcomes"]
    ob = ax_out.barh(list(outcomes), list(outcomes.values()), color="tab:gray")
    ax_out.invert_yaxis()
    ax_out.bar_label(ob, fontsize=8)
    ax_out.set_title("outcomes (every one, and those in flight)")
    ax_out.set_xlabel("signals")
    ax_out.tick_params(axis="y", labelsize=8)
    return fig


def render_png(rep: dict[str, Any], path: str | Path, registry: Registry | None = None) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = report_figure(rep, registry)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=90)


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


def run_name(path: Path) -> str:
    """The run a report is about: a demo run's directory name (``<run>/data/portfolio.sqlite``), else the
    database's or archive's own name."""
    p = path.resolve()
    return p.parent.parent.name if p.parent.name == "data" else p.name


def main(argv: list[str] | None = None, *, registry: Registry | None = None,
         valuation_tokens: Iterable[int] = ()) -> int:
    """``registry``/``valuation_tokens``: name tokens and amounts (``tools.report_cli`` loads them)."""
    p = argparse.ArgumentParser(prog="alphapulse report", description="Daily and all-time report.")
    p.add_argument("--db", default=None, help=f"portfolio database (default {default_db_path()}; "
                   "`alphapulse report` falls back to the latest demo run's)")
    p.add_argument("--archive", help="build the books from a Parquet archive directory instead")
    p.add_argument("--json", action="store_true")
    p.add_argument("--png", help="write the chart (P&L over time, drawdown, gross/gas/net, funnel, outcomes)")
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
            rep["run"] = run_name(path)
            if registry is not None:  # values in the quote currency at the books' latest pool prices
                add_readable(rep, registry, valuation_tokens, Books(db).price_q96)
        except sqlite3.DatabaseError as exc:  # a page damaged past the checks at open
            raise bad_sqlite(path, exc) from None
        finally:
            db.close()
    except BadFile as exc:
        print(f"alphapulse report: {one_line(exc)}", file=sys.stderr)
        return 2
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
