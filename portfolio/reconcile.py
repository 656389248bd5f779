"""``alphapulse portfolio reconcile --rpc URL --address A [--gas-payer G] [--rpc URL2 --address A2 ...] [--db FILE] [--token T ...] [--apply] [--json]``

Reads the chain's balances of ``A`` over JSON-RPC (``chain.rpc``, one batch): ERC20 ``balanceOf`` via
``eth_call`` for every token the books hold on that chain (plus ``--token``), and
``eth_getBalance`` for the native coin. Prints books vs chain and the difference. The books
hold *changes since the portfolio started*, so the first reconcile usually differs by the
starting balances: ``--apply`` books each difference as a ``reconcile`` ledger row, after
which books equal the chain until something unbooked happens.

Several chains (cross-chain inventory, one AlphaPulseArb per chain): one ``--rpc`` per chain, each with
its own ``--address`` (or one ``--address`` for all), and ``--gas-payer`` the signer whose native coin pays
the gas when ``--address`` is the contract holding the inventory; every chain is reconciled against its own node, the
books' balances of that chain only (a ``TokenId`` names its chain). A bridge transfer in flight has left
the source chain's books and balance alike and reached neither on the destination, so it is no difference.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from chain.rpc import RpcFailure, SyncHttpRpc
from protocol.ids import TokenId, address_to_int
from runtime.errors import BadFile, one_line
from runtime.files import bad_sqlite

from .books import Books, default_db_path, native_token, open_db, open_db_readonly

BALANCE_OF = "0x70a08231"  # balanceOf(address)


def chain_balances(url: str, address: str, tokens: list[str], *, gas_payer: str | None = None,
                   transport: httpx.BaseTransport | None = None) -> tuple[int, dict[str, int]]:
    """(chain id, {token address or "native": balance}) read from the node at ``url``: the tokens of
    ``address``, the native coin of ``gas_payer`` (default ``address``)."""
    owner = f"{address_to_int(address):064x}"
    calls: list[tuple[str, list[Any]]] = [("eth_chainId", []), ("eth_getBalance", [gas_payer or address, "latest"])]
    calls += [("eth_call", [{"to": t, "data": BALANCE_OF + owner}, "latest"]) for t in tokens]
    with SyncHttpRpc(url, timeout=10.0, transport=transport) as rpc:
        res = rpc.batch(calls)
    out = {"native": int(res[1], 16)}
    for t, r in zip(tokens, res[2:]):
        out[t.lower()] = int(r, 16) if r not in ("0x", "") else 0
    return int(res[0], 16), out


def reconcile(books: Books, url: str, address: str, extra_tokens: list[str] = (),  # type: ignore[assignment]
              *, apply: bool = False, gas_payer: str | None = None,
              transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """Books vs the chain at ``url`` for ``address``'s tokens and ``gas_payer``'s native coin (default the
    same account: with inventory in a contract, the signer that pays the gas is another account)."""
    held = books.balances()
    # which chain: ask the node first with no tokens, then read the tokens the books hold there
    chain_id, _ = chain_balances(url, address, [], transport=transport)
    tokens = sorted({TokenId(t).address for t in held if TokenId(t).chain_id == chain_id and TokenId(t).address_int}
                    | {t.lower() for t in extra_tokens})
    _, onchain = chain_balances(url, address, tokens, gas_payer=gas_payer, transport=transport)
    rows = []
    for key, chain_amount in onchain.items():
        token = native_token(chain_id) if key == "native" else int(TokenId.of(chain_id, key))
        book_amount = held.get(token, 0)
        diff = chain_amount - book_amount
        rows.append({"token": key, "books": book_amount, "chain": chain_amount, "difference": diff})
        if apply and diff:
            books.book_adjustment(chain_id, token, diff, time.time_ns())
    return {"chain_id": chain_id, "address": address, "gas_payer": gas_payer or address, "applied": apply,
            "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="alphapulse portfolio reconcile", description=__doc__.split("\n\n")[1])
    p.add_argument("--rpc", required=True, action="append", help="a chain's node (repeat: one per chain)")
    p.add_argument("--address", required=True, action="append",
                   help="the account the books track on that chain (one for all, or one per --rpc, in order)")
    p.add_argument("--db", default=str(default_db_path()))
    p.add_argument("--gas-payer", action="append", default=[],
                   help="the account whose native coin pays the gas (the signer, when --address is a contract "
                        "holding the inventory); one for all, or one per --rpc; default --address")
    p.add_argument("--token", action="append", default=[], help="also check this ERC20 (repeatable)")
    p.add_argument("--apply", action="store_true", help="book the differences as reconcile adjustments")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if len(args.address) not in (1, len(args.rpc)):
        print(f"alphapulse portfolio reconcile: {len(args.rpc)} --rpc and {len(args.address)} --address: give one "
              f"--address for all chains or one per --rpc", file=sys.stderr)
        return 2
    if len(args.gas_payer) not in (0, 1, len(args.rpc)):
        print(f"alphapulse portfolio reconcile: {len(args.rpc)} --rpc and {len(args.gas_payer)} --gas-payer: give "
              f"one --gas-payer for all chains or one per --rpc", file=sys.stderr)
        return 2

    def per_chain(values: list[str]) -> list[str | None]:
        return [None] * len(args.rpc) if not values else values * len(args.rpc) if len(values) == 1 else values

    pairs = list(zip(args.rpc, per_chain(args.address), per_chain(args.gas_payer), strict=True))
    try:
        if Path(args.db).exists():  # sound portfolio books, before anything is written to them
            open_db_readonly(args.db).close()
        db = open_db(args.db)
    except BadFile as exc:
        print(f"alphapulse portfolio reconcile: {one_line(exc)}", file=sys.stderr)
        return 2
    try:
        reps = [reconcile(Books(db), url, address, args.token, apply=args.apply, gas_payer=payer)  # type: ignore[arg-type]
                for url, address, payer in pairs]
    except (RpcFailure, ValueError) as exc:
        print(f"alphapulse portfolio reconcile: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:  # a page damaged past the checks at open
        print(f"alphapulse portfolio reconcile: {one_line(bad_sqlite(args.db, exc))}", file=sys.stderr)
        return 2
    finally:
        db.close()
    if args.json:
        print(json.dumps(reps[0] if len(reps) == 1 else {"chains": reps}, indent=2))
        return 0
    for rep in reps:
        payer = f" (gas: {rep['gas_payer']})" if rep["gas_payer"] != rep["address"] else ""
        print(f"chain {rep['chain_id']} address {rep['address']}{payer}{' (differences applied)' if args.apply else ''}")
        print(f"{'token':44} {'books':>28} {'chain':>28} {'difference':>28}")
        for r in rep["rows"]:
            print(f"{r['token']:44} {r['books']:>28} {r['chain']:>28} {r['difference']:>28}")
    return 0
