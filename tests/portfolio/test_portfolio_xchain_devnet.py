"""Books and risk per chain on the real two-chain devnet, everything a real process on real relays: the
rebalancer (``alphapulse rebalancer``, its transactions signed by ``alphapulse executor``, the owner's one signer)
bridges USDC back from chain B to chain A through the DevBridge stand-in (``alphapulse standin bridge``), the portfolio process books its ``BridgeTransfer`` records and the risk process
acts on them. Afterwards the books equal both chains to the wei, reconciled per chain against each chain's own
node: each contract's tokens (the fee is the only loss) and the owner's native coin on the source chain (the
rebalancer's gas). Risk's xchain_inventory stop (95 % of the USDC on chain B at start) lifts itself once the
transfer is sent, and its bridge_overdue stop (a 1 s limit, a 4 s bridge) trips and lifts itself when the
transfer completes."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from relay_testkit import DOMAINS, Procs, relays_toml, wait_for

from chain.deployment import save_deployment
from execution.deploy import deploy_and_configure
from execution.keystore import new_keystore_account
from portfolio.books import Books, native_token, open_db
from portfolio.reconcile import reconcile
from protocol.header import Domain
from protocol.ids import TokenId
from protocol.system import EmergencyStop, Resume, StopScope
from relays.client import RelayConsumer
from tools.devnet.bridge_standin import fee_for
from tools.devnet.deploy import chain_spec, start_devnet

A, B = 31337, 31338
USDC = 10**6
FEE_BPS = 5
PASSWORD = "books-test-password"


class World(Procs):
    """The two devnets, the contracts, the relays and the processes on them (ended by PID)."""

    def __init__(self, d: Path) -> None:
        super().__init__(d)
        self.d = d
        self.nets: list[Any] = []
        self.contracts: dict[int, str] = {}
        self.socks = {dom: d / f"{dom.name.lower()[:3]}.sock" for dom in DOMAINS}

    def net(self, chain_id: int) -> Any:
        return next(n for n in self.nets if n.deployment.chain_id == chain_id)

    def token(self, chain_id: int, symbol: str) -> str:
        return self.net(chain_id).deployment.address_of(symbol)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    d = Path(tempfile.mkdtemp(prefix="apxb-", dir="/tmp"))
    w = World(d)
    try:
        for i, cid in enumerate((A, B)):
            w.nets.append(start_devnet(cid, spec=chain_spec(i)))
        w.deployment = save_deployment(d / "deployment.json", [n.deployment for n in w.nets])  # type: ignore[attr-defined]
        w.keystore = d / "keystore.json"  # type: ignore[attr-defined]
        (d / "password").write_text(PASSWORD + "\n")
        owner = new_keystore_account(w.keystore, PASSWORD, kdf="pbkdf2", iterations=2)  # type: ignore[attr-defined]
        w.owner = owner.address  # type: ignore[attr-defined]
        for n in w.nets:
            n.client.set_eth_balance(owner.address, 100 * 10**18)
            w.contracts[n.deployment.chain_id] = deploy_and_configure(n.rpc, owner, recipient=owner.address,
                                                                      factories=[]).contract
        for dom in DOMAINS:
            name = dom.name.lower()
            w.cli(f"relay-{name}", "relay", "--domain", name, "--socket", str(w.socks[dom]), "--data-dir",
                  str(d / f"journal-{name}"), "--fsync", "off")
        wait_for("relays not up", lambda: all(s.exists() for s in w.socks.values()), 30)
        yield w
    finally:
        w.stop(15)
        for n in w.nets:
            n.close()
        if not os.environ.get("KEEP"):
            shutil.rmtree(d, ignore_errors=True)


def mint_usdc(w: World, chain_id: int, amount: int) -> None:
    n = w.net(chain_id)
    n.client.transact(n.deployment.funded_accounts[0], "DevToken", w.token(chain_id, "USDC"), "mint",
                      w.contracts[chain_id], amount)


def assets_toml(w: World) -> str:
    return "".join(f"""
[[assets]]
name = "{sym}"
tokens = [{{ chain_id = {A}, address = "{w.token(A, sym)}" }}, {{ chain_id = {B}, address = "{w.token(B, sym)}" }}]
""" for sym in ("USDC", "WETH"))


def rebalancer_toml(w: World) -> Path:
    chains = "".join(f"""
[[chains]]
chain_id = {cid}
rpc_url = "{w.net(cid).deployment.rpc_url}"
contract = "{w.contracts[cid]}"
bridge = "{w.net(cid).deployment.bridge.address}"
""" for cid in (A, B))
    targets = "".join(f"""
[[targets]]
asset = "USDC"
chain_id = {cid}
floor = {2_000 * USDC}
target = {5_000 * USDC}
""" for cid in (A, B))
    path = w.d / "rebalancer.toml"
    path.write_text(f"""[rebalancer]
state_db = "{w.d / 'rebalancer.sqlite'}"
poll_s = 0.1
bridge_fee_bps = {FEE_BPS}
{chains}
[[assets]]
name = "USDC"
tokens = [{{ chain_id = {A}, address = "{w.token(A, 'USDC')}" }}, {{ chain_id = {B}, address = "{w.token(B, 'USDC')}" }}]
{targets}
[relays]
execution = "{w.socks[Domain.EXECUTION]}"
""")
    return path


def executor_toml(w: World) -> Path:
    """The executor owning both contracts: the rebalancer signs nothing, the executor -- the owner account's one
    signer -- sends its transactions (``specs/rebalance.md``, "One signer per account")."""
    password = w.d / "password"
    keystore = f'{{ path = "{w.keystore}", password_file = "{password}" }}'  # type: ignore[attr-defined]
    chains = "".join(f"""
[[cross_chain.chains]]
chain_id = {cid}
rpc_url = "{w.net(cid).deployment.rpc_url}"
contract = "{w.contracts[cid]}"
gas_token = "{w.token(cid, 'WETH')}"
bridge = "{w.net(cid).deployment.bridge.address}"
keystore = {keystore}
""" for cid in (A, B))
    path = w.d / "executor.toml"
    path.write_text(f"""[executor]
chain_id = {A}
rpc_url = "{w.net(A).deployment.rpc_url}"
contract = "{w.contracts[A]}"
gas_token = "{w.token(A, 'WETH')}"
state_db = "{w.d / 'executor.sqlite'}"
market_data_from = "now"

[keystore]
path = "{w.keystore}"
password_file = "{w.d / 'password'}"

[cross_chain]
rebalancer_source_id = 48
{chains}
{relays_toml(w.socks)}""")  # type: ignore[attr-defined]
    return path


def books_state(db: Path) -> list[tuple[int, str]]:
    if not db.exists():
        return []
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return c.execute("SELECT state, amount FROM bridge_transfers").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        c.close()


def reconcile_both(w: World, books: Books, *, apply: bool = False) -> dict[int, dict[str, dict[str, int]]]:
    out = {}
    for cid in (A, B):
        rep = reconcile(books, w.net(cid).deployment.rpc_url, w.contracts[cid],
                        [w.token(cid, "USDC"), w.token(cid, "WETH")], apply=apply,
                        gas_payer=w.owner)  # type: ignore[attr-defined]
        assert rep["chain_id"] == cid
        out[cid] = {r["token"]: r for r in rep["rows"]}
    return out


async def controls(sock: Path, until: Any) -> list[EmergencyStop | Resume]:
    """The stops and resumes risk publishes, from the start of the relay, until ``until(seen)`` (30 s at most)."""
    seen: list[EmergencyStop | Resume] = []
    with trio.fail_after(30):
        async with RelayConsumer.connect(Domain.EXECUTION, str(sock), from_seq=0, name="test-controls") as c:
            async for msg in c:
                for t in msg.tlvs:
                    if type(t) in (EmergencyStop, Resume) and t.sender == "risk":  # type: ignore[attr-defined]
                        seen.append(t)  # type: ignore[arg-type]
                if until(seen):
                    return seen
    return seen


def test_a_rebalance_lands_in_the_books_to_the_wei_on_both_chains_and_risk_follows_it(world: World) -> None:
    w = world
    mint_usdc(w, A, 1_000 * USDC)  # below A's floor (2,000)
    mint_usdc(w, B, 20_000 * USDC)  # 15,000 above B's target
    db_path = w.d / "books.sqlite"
    # the books start from what the chains hold: the contracts' tokens, the owner's ETH (it pays the gas)
    db = open_db(db_path)
    try:
        seeded = reconcile_both(w, Books(db), apply=True)
        assert seeded[A][w.token(A, "USDC").lower()]["chain"] == 1_000 * USDC
        assert all(r["difference"] == 0 for c in reconcile_both(w, Books(db)).values() for r in c.values())
    finally:
        db.close()
    usdc_a, usdc_b = TokenId.of(A, w.token(A, "USDC")), TokenId.of(B, w.token(B, "USDC"))
    chains = "".join(f"""
[chains."{cid}"]
valuation_token = "{w.token(cid, 'USDC')}"
wrapped_native = "{w.token(cid, 'WETH')}"
""" for cid in (A, B))
    (w.d / "portfolio.toml").write_text(relays_toml(w.socks) + '\n[start]\nexecution = "oldest"\n' + chains)
    (w.d / "risk.toml").write_text(relays_toml(w.socks) + f"""
[risk]
timer_interval_s = 0.05
{assets_toml(w)}
[xchain_inventory]
scope = "chain"
[[xchain_inventory.assets]]
asset = "USDC"
start = {{ "{A}" = {1_000 * USDC}, "{B}" = {20_000 * USDC} }}
max_share_bps = 9000

[bridge_overdue]
max_transfer_s = 1.0
""")
    w.cli("portfolio", "portfolio", "--config", str(w.d / "portfolio.toml"), "--db", str(db_path))
    w.cli("risk", "risk", "--config", str(w.d / "risk.toml"), "--state", str(w.d / "risk.sqlite"))
    wait_for(lambda: w.log("risk"), lambda: "EMERGENCY STOP" in w.log("risk"), 30)  # 95 % of the USDC on B
    w.cli("standin", "standin", "bridge", "--deployment", str(w.deployment), "--delay", "4",  # type: ignore[attr-defined]
           "--fee-bps", str(FEE_BPS), "--state", str(w.d / "relayer.sqlite"), "--poll", "0.05")
    w.cli("executor", "executor", "--config", str(executor_toml(w)))
    wait_for(lambda: w.log("executor")[-3000:], lambda: "executor: ready" in w.log("executor"), 60)
    w.cli("rebalancer", "rebalancer", "--config", str(rebalancer_toml(w)))
    wait_for(lambda: f"{books_state(db_path)}\n{w.log('rebalancer')[-3000:]}\n{w.log('portfolio')[-2000:]}",
             lambda: [s for s, _ in books_state(db_path)] == [2], 90)
    seen = trio.run(controls, w.socks[Domain.EXECUTION], lambda s: sum(type(t) is Resume for t in s) >= 2)
    for name in ("rebalancer", "executor", "standin", "portfolio", "risk"):
        w.end(w.named[name], 15)

    # risk: the concentration stop of B, lifted when the transfer left; the overdue stop of A, lifted when it landed
    kinds = [(type(t).__name__, t.scope, t.scope_value, t.reason.split("]")[0] + "]") for t in seen]
    assert kinds == [("EmergencyStop", StopScope.CHAIN, B, "[xchain_inventory]"),
                     ("Resume", StopScope.CHAIN, B, "[xchain_inventory]"),
                     ("EmergencyStop", StopScope.CHAIN, A, "[bridge_overdue]"),
                     ("Resume", StopScope.CHAIN, A, "[bridge_overdue]")], seen
    assert seen[1].stop_id == seen[0].stop_id and seen[3].stop_id == seen[2].stop_id

    # the books: one transfer, COMPLETED, its fee a cost; both chains equal the books to the wei
    db = open_db(db_path)
    try:
        books = Books(db)
        [t] = books.bridge_transfers()
        amount = t["amount"]
        fee = fee_for(amount, FEE_BPS)
        assert (t["state_name"], t["fee"], t["received"], t["src_chain"], t["dst_chain"]) == (
            "COMPLETED", fee, amount - fee, B, A)
        assert t["gas_booked"] > 0 and books.in_flight_by_token() == {}
        assert books.bridge_costs()["fees_by_token"] == {int(usdc_a): fee}
        after = reconcile_both(w, books)
        for cid, rows in after.items():
            for token, row in rows.items():
                assert row["difference"] == 0, (cid, token, row)
        assert after[A][w.token(A, "USDC").lower()]["chain"] == 1_000 * USDC + amount - fee
        assert after[B][w.token(B, "USDC").lower()]["chain"] == 20_000 * USDC - amount
        native_b = after[B]["native"]
        assert native_b["books"] == seeded[B]["native"]["chain"] - t["gas_booked"]
        assert books.balances()[native_token(A)] == seeded[A]["native"]["chain"]  # nothing paid on A
        assert int(usdc_b) in books.balances()
    finally:
        db.close()
