"""``alphapulse report`` and ``alphapulse history``: the books an operator means by default, with
tokens named (``tools.registry``).

Without ``--db`` (or report's ``--archive``): the books at the configured default path when they
exist, else the newest live demo run's (``var/demo/<run>/data/portfolio.sqlite``), and it says which
it took. Tokens and pools come from the deployment file beside the database's run
(``<run>/deployment.json``) or ``--deployment FILE``, the valuation token from the run's
``configs/portfolio.toml`` or ``--portfolio-config FILE``. Values are also shown in the quote currency
(``--quote SYMBOL``, default ``$ALPHAPULSE_QUOTE`` or USDC, i.e. USD; ``none`` for none) through the pools
``tools.registry`` picks from the deployment, at the latest pool prices the books hold.

``alphapulse history [--outcome NAME ...] [--since D] [--until D] [--limit N] [--csv]``: the trades
with their outcomes, newest first; ``--csv`` writes the exact integers and the readable columns.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from market.display import Registry
from portfolio.books import Books as BookDb
from portfolio.books import default_db_path, open_db_readonly
from portfolio.report import main as report_main
from runtime.errors import BadFile, one_line
from runtime.files import bad_sqlite

from .demo import latest_demo_db


@dataclass(frozen=True)
class Books:
    db: Path | None
    registry: Registry
    valuation: list[int]


def _books_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--db", help="portfolio database (default: the configured one, else the latest demo run's)")
    ap.add_argument("--deployment", help="deployment file naming the tokens and pools")
    ap.add_argument("--portfolio-config", help="the portfolio's config (its valuation token)")
    ap.add_argument("--quote", default="", help="quote currency: a stablecoin's symbol in the deployment (default "
                                                "$ALPHAPULSE_QUOTE or USDC, shown as USD); 'none' for none")


def resolve_books(prog: str, args: argparse.Namespace, *, use_default: bool = True) -> Books:
    db = Path(args.db) if args.db else None
    if db is None and use_default and not default_db_path().exists():
        db = latest_demo_db()
        if db is not None:
            print(f"{prog}: the latest demo run's database {db}", file=sys.stderr)
    elif db is None and use_default:
        db = default_db_path()
    run = db.resolve().parent.parent if db is not None else None
    deployment = Path(args.deployment) if args.deployment else (run / "deployment.json" if run else None)
    portfolio_cfg = (Path(args.portfolio_config) if args.portfolio_config
                     else (run / "configs" / "portfolio.toml" if run else None))
    from .registry import load_registry

    quote = None if (args.quote or "").lower() == "none" else (args.quote or "")
    registry = load_registry([deployment] if deployment is not None and deployment.is_file() else None, cache=None,
                             quote=quote)
    valuation: list[int] = []
    if portfolio_cfg is not None and portfolio_cfg.is_file():
        from portfolio.config import load_config

        valuation = [val for val, _wrapped in load_config(portfolio_cfg).valuation().values() if val]
    return Books(db, registry, valuation)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(add_help=False)
    _books_options(ap)
    ap.add_argument("--archive")
    ours, rest = ap.parse_known_args(argv)
    helping = bool({"-h", "--help"} & set(rest))
    books = resolve_books("alphapulse report", ours, use_default=not ours.archive and not helping)
    if books.db is not None:
        rest = ["--db", str(books.db), *rest]
    if ours.archive:
        rest = ["--archive", ours.archive, *rest]
    return report_main(rest, registry=books.registry, valuation_tokens=books.valuation)


def _day_ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


def history(argv: list[str]) -> int:
    from portfolio.history import COLUMNS, history_rows, parse_outcomes

    ap = argparse.ArgumentParser(prog="alphapulse history", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    _books_options(ap)
    ap.add_argument("--outcome", action="append", default=[], help="only this outcome (EXECUTED, STALE ...); "
                                                                   "repeat for several")
    ap.add_argument("--since", help="from this UTC date or time (YYYY-MM-DD[THH:MM])")
    ap.add_argument("--until", help="before this UTC date or time")
    ap.add_argument("--limit", type=int, default=None, help="at most N rows (default: all; the table shows 50)")
    ap.add_argument("--csv", action="store_true", help="CSV with the exact integers and the readable columns")
    args = ap.parse_args(argv)
    try:
        outcomes = parse_outcomes(args.outcome)
        since = _day_ns(args.since) if args.since else 0
        until = _day_ns(args.until) if args.until else (1 << 63) - 1
    except ValueError as exc:
        ap.exit(2, f"alphapulse history: {exc}\n")
    books = resolve_books("alphapulse history", args)
    if books.db is None or not books.db.exists():
        print(f"alphapulse history: no database at {books.db or default_db_path()}", file=sys.stderr)
        return 2
    try:
        db = open_db_readonly(books.db)
        try:
            limit = args.limit if args.limit is not None or args.csv else 50
            rows = history_rows(db, outcomes=outcomes, since_ns=since, until_ns=until, limit=limit,
                                registry=books.registry,
                                valuation_token=books.valuation[0] if len(books.valuation) == 1 else None,
                                prices=BookDb(db).price_q96)
        except sqlite3.DatabaseError as exc:  # a page damaged past the checks at open
            raise bad_sqlite(books.db, exc) from None
        finally:
            db.close()
    except BadFile as exc:
        print(f"alphapulse history: {one_line(exc)}", file=sys.stderr)
        return 2
    try:
        if args.csv:
            w = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        else:
            quote = books.registry.quote.name if books.registry.quote else ""
            print(f"{'time (UTC)':19}  {'signal':>8}  {'outcome':16} {'net':>20} {'net ' + quote if quote else '':>14} "
                  f"{'realized':>20} {'gas':>16}  reason")
            for r in rows:
                sid = str(r["signal_id"])
                print(f"{r['time']:19}  {'…' + sid[-6:] if len(sid) > 8 else sid:>8}  {r['outcome']:16} "
                      f"{r['net']:>20} {r['net_quote'] if quote else '':>14} {r['realized']:>20} {r['gas']:>16}  "
                      f"{r['reason'][:60]}")
            if not rows:
                print("(no trades match)")
        sys.stdout.flush()
    except BrokenPipeError:  # `history --csv | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def balance(argv: list[str]) -> int:
    """``alphapulse balance``: what the books hold, per chain, readable; ``--reconcile`` compares each
    token with the chain (read-only: the books are not changed)."""
    from market.display import TokenInfo, fmt_units
    from protocol.ids import TokenId, Venue, code_name

    ap = argparse.ArgumentParser(prog="alphapulse balance", description=balance.__doc__)
    _books_options(ap)
    ap.add_argument("--reconcile", action="store_true", help="compare with the chain (needs --rpc and --address)")
    ap.add_argument("--rpc", help="JSON-RPC URL of the chain to reconcile against")
    ap.add_argument("--address", help="the account whose balances the books track (the profit recipient)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.reconcile and not (args.rpc and args.address):
        ap.exit(2, "alphapulse balance: --reconcile needs --rpc URL and --address ADDRESS\n")
    books = resolve_books("alphapulse balance", args)
    if books.db is None or not books.db.exists():
        print(f"alphapulse balance: no database at {books.db or default_db_path()}", file=sys.stderr)
        return 2
    reg = books.registry

    def info(token: int) -> TokenInfo | None:
        if TokenId(token).address_int == 0:
            return TokenInfo(symbol="ETH", decimals=18)  # the chain's native coin (gas)
        return reg.token(token)

    def readable(amount: int, token: int) -> str:
        i = info(token)
        return f"{fmt_units(amount, i.decimals)} {i.symbol}" if i else f"{amount} base units of {reg.symbol(token)}"

    try:
        db = open_db_readonly(books.db)
    except BadFile as exc:
        print(f"alphapulse balance: {one_line(exc)}", file=sys.stderr)
        return 2
    try:
        held = BookDb(db).balances()
        prices = BookDb(db).price_q96
        out: dict[str, Any] = {"db": str(books.db), "venue": "on chain (the account the books track)",
                               "balances": [{"chain_id": TokenId(t).chain_id, "token": str(t),
                                             "symbol": (info(t).symbol if info(t) else reg.symbol(t)),
                                             "amount": a, "readable": readable(a, t)} for t, a in held.items()]}
        if reg.quote is not None:  # each balance in the quote currency at the books' latest pool prices
            for b in out["balances"]:
                v = reg.to_quote(b["amount"], int(b["token"]), prices)
                b["quote"], b["quote_text"] = v, (reg.quote_text(v, int(b["token"])) if v is not None else None)
            values = [b["quote"] for b in out["balances"]]
            if out["balances"] and None not in values:
                out["total_quote"] = sum(values)
                out["total_quote_text"] = reg.quote_text(out["total_quote"], int(out["balances"][0]["token"]))
        try:  # exchange balances (CEX-DEX fills), valued through the chain token they trade as
            cex = db.execute("SELECT venue, asset, token, amount FROM cex_balances ORDER BY venue, asset").fetchall()
        except sqlite3.OperationalError:  # books written before exchange balances existed
            cex = []
        out["exchanges"] = [{"venue": code_name(Venue, v).lower(), "asset": a, "amount": int(n),
                             "readable": (f"{fmt_units(int(n), i.decimals)} {a}" if (i := info(int(tk))) else n)}
                            for v, a, tk, n in cex]
        # bridge transfers sent and not landed: off the source chain's balance, not yet on the destination's
        out["in_flight"] = [{"transfer_id": t["transfer_id"], "src_chain": t["src_chain"], "dst_chain": t["dst_chain"],
                             "token": str(t["dst_token"]), "amount": t["amount"],
                             "readable": readable(t["amount"], t["dst_token"])}
                            for t in BookDb(db).bridge_transfers() if t["state_name"] == "SENT"]
        if args.reconcile:
            from portfolio.reconcile import reconcile

            rec = reconcile(BookDb(db), args.rpc, args.address)
            for row in rec["rows"]:
                tok = (int(TokenId.of(rec["chain_id"], "0x" + "00" * 20)) if row["token"] == "native"
                       else int(TokenId.of(rec["chain_id"], row["token"])))
                row["readable"] = {k: readable(row[k], tok) for k in ("books", "chain", "difference")}
            out["reconcile"] = rec
    except sqlite3.DatabaseError as exc:  # a page damaged past the checks at open
        print(f"alphapulse balance: {one_line(bad_sqlite(books.db, exc))}", file=sys.stderr)
        return 2
    finally:
        db.close()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"balances in the books ({out['venue']}):")
    for chain in sorted({b["chain_id"] for b in out["balances"]}):
        print(f"  chain {chain}:")
        for b in (b for b in out["balances"] if b["chain_id"] == chain):
            worth = f"   = {b['quote_text']}" if b.get("quote_text") else ""
            print(f"    {b['readable']:>28}   ({b['amount']} base units){worth}")
    if not out["balances"]:
        print("  (nothing booked yet)")
    elif "total_quote_text" in out:
        print(f"  total {out['total_quote_text']} at the latest pool prices in the books")
    if out["in_flight"]:
        print("in flight on a bridge (sent, not landed yet):")
        for t in out["in_flight"]:
            print(f"  transfer {t['transfer_id']}: chain {t['src_chain']} -> {t['dst_chain']}  {t['readable']:>28}   "
                  f"({t['amount']} base units)")
    if out["exchanges"]:
        print("on exchanges (moved by our fills since the books started):")
        for e in out["exchanges"]:
            print(f"  {e['venue']:>10}  {e['readable']:>28}   ({e['amount']} base units)")
    if args.reconcile:
        rec = out["reconcile"]
        print(f"\nreconciled against chain {rec['chain_id']} for {rec['address']} (read-only):")
        for row in rec["rows"]:
            r = row["readable"]
            flag = "" if row["difference"] == 0 else "   <- differs"
            print(f"  books {r['books']:>24}   chain {r['chain']:>24}   difference {r['difference']}{flag}")
    return 0
