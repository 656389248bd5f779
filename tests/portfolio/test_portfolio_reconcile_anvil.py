"""Reconcile against a real chain (anvil with the devnet tokens), not a recorded response."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from portfolio.books import Books, open_db
from portfolio.reconcile import reconcile


def test_reconcile_reads_the_chain_and_apply_makes_books_equal_it(devnet_snapshot: Any, tmp_path: Path) -> None:
    dep, client = devnet_snapshot.deployment, devnet_snapshot.client
    who = dep.accounts[7]
    usdc = dep.address_of("USDC")
    client.fund(who, "USDC", 1_234_567)
    db = open_db(tmp_path / "books.sqlite")
    try:
        books = Books(db)
        rep = reconcile(books, dep.rpc_url, who, [usdc])
        assert rep["chain_id"] == dep.chain_id
        rows = {r["token"]: r for r in rep["rows"]}
        assert rows[usdc.lower()]["chain"] == 1_234_567 == client.erc20_balance(usdc, who)
        assert rows[usdc.lower()]["books"] == 0 and rows[usdc.lower()]["difference"] == 1_234_567
        assert rows["native"]["chain"] == client.eth_balance(who)
        reconcile(books, dep.rpc_url, who, [usdc], apply=True)
        after = {r["token"]: r for r in reconcile(books, dep.rpc_url, who, [usdc])["rows"]}
        assert all(r["difference"] == 0 for r in after.values())
        # something unbooked happens on chain: the next reconcile shows exactly that difference
        client.transfer(who, usdc, dep.accounts[8], 567)
        later = {r["token"]: r for r in reconcile(books, dep.rpc_url, who, [usdc])["rows"]}
        assert later[usdc.lower()]["difference"] == -567
    finally:
        db.close()
