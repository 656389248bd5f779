"""The rebalancer on a real two-chain devnet (two anvils, AlphaPulseArb deployed on each from an
encrypted keystore, DevBridge and its relayer stand-in), its transactions signed by the executor -- the owner
account's one signer (``execution/owner.py``) -- with real relays.

* ``test_rebalance_survives_sigkill_between_send_and_completion``: ``alphapulse rebalancer`` and ``alphapulse
  executor`` run as processes off real relays; the rebalancer is killed with SIGKILL once the bridge's send is
  mined and before the relayer completes it, then restarted; the transfer completes exactly once, balances are
  right to the unit, the fee is recorded, the relay holds one SENT and one COMPLETED record for it, and every
  transaction of the owner's is one the executor signed, each nonce once.
* the in-process tests drive the same code (the rebalancer and the executor's ``OwnerDesk``, no relay between
  them) through its crash windows: a request recorded but never asked (asked again, done once), a request the
  executor sent whose answer was lost (asked again: the same transaction, done once), a transaction whose nonce
  another transaction took (asked for again, done once), and a send the bridge refuses (the tokens go back to
  the contract: REFUSED).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from chain.abi import encode_call
from chain.deployment import load_deployment, save_deployment
from chain.rpc import HttpRpc
from execution.chain import ChainGateway
from execution.config import config_from_dict
from execution.deploy import deploy_and_configure
from execution.executor import Executor
from execution.keystore import load_account, new_keystore_account
from execution.owner import OwnerDesk
from execution.process import unlock, unlock_chains
from execution.rebalance.config import load_config
from execution.rebalance.core import Plan, State, gross_up, plan
from execution.rebalance.runner import Chain, Rebalancer
from execution.rebalance.store import RebalanceStore
from execution.store import ExecutorStore
from execution.xchain.run import CrossChainRunner, build_sides
from protocol.execution import (
    BridgeTransfer,
    BridgeTransferState,
    OwnerCall,
    OwnerTxAnswer,
    OwnerTxRequest,
    OwnerTxStatus,
)
from protocol.header import Domain
from protocol.tlv import decode_tlvs
from relays.client import RelayConsumer
from runtime.metrics import ProcessMetrics
from tools.deployment_writer import rebalancer_doc, write_toml
from tools.devnet import artifacts
from tools.devnet.bridge_standin import Options, Relayer, fee_for
from tools.devnet.deploy import chain_spec, start_devnet
from tools.devnet.paths import REPO_ROOT

A, B = 31337, 31338
FEE_BPS = 5
USDC = 10**6
PASSWORD = "rebalance-test-password"
REBALANCER = 48  # the rebalancer's source id, the one the executor serves


class Net:
    def __init__(self, d: Path) -> None:
        self.d = d
        self.nets: list = []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def net(self, chain_id: int):
        return next(n for n in self.nets if n.deployment.chain_id == chain_id)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
        with open(self.d / f"{name}.log", "ab") as log:
            p = subprocess.Popen([sys.executable, "-m", "tools.cli", *args], cwd=REPO_ROOT, stdout=log,
                                 stderr=subprocess.STDOUT, env=env)
        self.procs[name] = p
        return p

    def log(self, name: str) -> str:
        p = self.d / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self, name: str) -> int:
        p = self.procs.pop(name)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode


def wait_for(what, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what() if callable(what) else what
        time.sleep(0.05)


@pytest.fixture(scope="module")
def env():
    d = Path(tempfile.mkdtemp(prefix="aprb-", dir="/tmp"))
    e = Net(d)
    try:
        for i, cid in enumerate((A, B)):
            e.nets.append(start_devnet(cid, spec=chain_spec(i)))
        e.deployment = save_deployment(d / "deployment.json", [n.deployment for n in e.nets])
        e.keystore = d / "keystore.json"
        (d / "password").write_text(PASSWORD + "\n")
        owner = new_keystore_account(e.keystore, PASSWORD, kdf="pbkdf2", iterations=2)
        e.owner = owner.address
        e.contracts = {}
        for n in e.nets:
            n.client.set_eth_balance(owner.address, 100 * 10**18)
            done = deploy_and_configure(n.rpc, owner, recipient=owner.address, factories=[])
            e.contracts[n.deployment.chain_id] = done.contract
        e.sock = d / "exe.sock"
        e.relays = {"execution": str(e.sock), "market_data": str(d / "md.sock"), "signal": str(d / "sig.sock")}
        for dom, sock in e.relays.items():  # the executor process subscribes to all three
            e.start(f"relay-{dom}", "relay", "--domain", dom, "--socket", sock, "--data-dir", str(d / f"journal-{dom}"),
                    "--fsync", "off")
        for dom, sock in e.relays.items():
            wait_for(lambda dom=dom: f"relay not up: {e.log(f'relay-{dom}')}", Path(sock).exists, 30)
        yield e
    finally:
        for name in list(e.procs):
            e.stop(name)
        for n in e.nets:
            n.close()
        if not os.environ.get("KEEP"):
            shutil.rmtree(d, ignore_errors=True)


def usdc(e: Net, chain_id: int) -> str:
    return e.net(chain_id).deployment.address_of("USDC")


def balance(e: Net, chain_id: int, holder: str) -> int:
    return e.net(chain_id).client.erc20_balance(usdc(e, chain_id), holder)


def set_inventory(e: Net, chain_id: int, amount: int) -> None:
    """The contract's USDC becomes exactly ``amount`` (minted, or withdrawn to a dev account)."""
    n, contract = e.net(chain_id), e.contracts[chain_id]
    have = balance(e, chain_id, contract)
    if amount > have:
        n.client.transact(n.deployment.funded_accounts[0], "DevToken", usdc(e, chain_id), "mint", contract,
                          amount - have)
    elif amount < have:
        _withdraw(e, chain_id, n.deployment.accounts[5], have - amount)
    assert balance(e, chain_id, contract) == amount


def _withdraw(e: Net, chain_id: int, to: str, amount: int) -> None:
    """withdrawToken signed by the keystore's account (the owner; anvil does not hold its key)."""
    n = e.net(chain_id)
    acct = load_account(e.keystore, PASSWORD)
    data = encode_call("withdrawToken(address,address,uint256)", usdc(e, chain_id), to, amount)
    base = int(n.rpc.call("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
    signed = acct.sign_transaction({"type": 2, "chainId": chain_id, "nonce": n.client.nonce(e.owner), "to":
                                    e.contracts[chain_id], "value": 0, "data": data, "gas": 200_000,
                                    "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9})
    tx = n.rpc.call("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
    assert n.client.wait_receipt(tx).status == 1


def write_config(e: Net, state: Path, *, floor: int = 2_000 * USDC, target: int = 5_000 * USDC) -> Path:
    doc = rebalancer_doc([n.deployment for n in e.nets], contracts=e.contracts,
                         targets={("USDC", A): (floor, target), ("USDC", B): (floor, target)},
                         state_db=state, execution_socket=e.sock, poll_s=0.1, bridge_fee_bps=FEE_BPS,
                         source_id=REBALANCER, answer_wait_s=5.0)
    return write_toml(state.with_suffix(".toml"), doc)


def executor_doc(e: Net, state: Path, relays: dict[str, str] | None = None) -> dict[str, Any]:
    """The executor that owns both contracts: chain A its own, B a side, the bridge on each, serving the
    rebalancer's requests (``[cross_chain] rebalancer_source_id``)."""
    keystore = {"path": str(e.keystore), "password_file": str(e.d / "password")}
    chains = [{"chain_id": n.deployment.chain_id, "rpc_url": n.deployment.rpc_url,
               "contract": e.contracts[n.deployment.chain_id], "gas_token": n.deployment.address_of("WETH"),
               "keystore": keystore, "bridge": n.deployment.bridge.address} for n in e.nets]
    a = e.net(A).deployment
    doc: dict[str, Any] = {
        "executor": {"chain_id": A, "rpc_url": a.rpc_url, "contract": e.contracts[A], "gas_token": a.address_of("WETH"),
                     "mode": "public", "state_db": str(state), "market_data_from": "now"},
        "keystore": keystore,
        "cross_chain": {"rebalancer_source_id": REBALANCER, "chains": chains},
    }
    if relays:
        doc["relays"] = relays
    return doc


@asynccontextmanager
async def in_process_executor(e: Net, state: Path) -> AsyncIterator[Executor]:
    """The executor as its process builds it (its chain A, a side for B, each chain's nonces reconciled from the
    chain and its store), without relays: the rebalancer's requests go to its ``OwnerDesk`` directly."""
    config = config_from_dict(executor_doc(e, state))
    rpc = HttpRpc(config.rpc_url, timeout=10.0)
    store = ExecutorStore(config.state_db)
    side_rpcs: list[HttpRpc] = []
    try:
        ex = Executor(config, ChainGateway(rpc, unlock(config), chain_id=A, contract=config.contract), store, Collect())
        await ex.recover()
        sides, side_rpcs = build_sides(ex, unlock_chains(config))
        await sides[B].recover()
        ex.xchain = CrossChainRunner(ex, sides)
        yield ex
    finally:
        for r in (rpc, *side_rpcs):
            await r.aclose()
        store.close()


class DeskOwner:
    """The rebalancer's :class:`~execution.rebalance.runner.Owner` as the executor's desk, in process; ``lose``
    answers are served and then lost (the rebalancer killed before it stored them)."""

    def __init__(self, desk: OwnerDesk, lose: int = 0) -> None:
        self.desk, self.lose = desk, lose
        self.answers: list[OwnerTxAnswer] = []

    async def ask(self, req: OwnerTxRequest) -> OwnerTxAnswer | None:
        answer = await self.desk.serve(REBALANCER, req)
        self.answers.append(answer)
        if self.lose:
            self.lose -= 1
            return None
        return answer


def assert_one_signer(e: Net, chain_id: int, executor_state: Path, since_nonce: int) -> None:
    """Every transaction of the owner's on ``chain_id`` from nonce ``since_nonce`` on is one the executor
    signed and recorded, each nonce exactly once, and the chain used every one of them."""
    n = e.net(chain_id)
    store = ExecutorStore(executor_state)
    try:
        rows = [(nonce, h) for nonce, h, status in store.for_chain(0 if chain_id == A else chain_id).all_nonces()
                if nonce >= since_nonce and status != "dropped"]
    finally:
        store.close()
    now = n.client.nonce(e.owner, "latest")
    assert [nonce for nonce, _ in rows] == list(range(since_nonce, now)), (rows, since_nonce, now)
    for nonce, h in rows:
        tx = n.rpc.call("eth_getTransactionByHash", [h])
        assert tx is not None and int(tx["nonce"], 16) == nonce and tx["blockNumber"] is not None, (nonce, h)


def db_states(state: Path) -> dict[int, str]:
    if not state.exists():
        return {}
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT transfer_id, state FROM transfers").fetchall())
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


def bridge_logs(e: Net, chain_id: int, event: str, from_block: int) -> list[dict]:
    n = e.net(chain_id)
    ev = artifacts.load("DevBridge").event(event)
    return n.rpc.call("eth_getLogs", [{"address": n.deployment.bridge.address, "fromBlock": hex(from_block),
                                       "toBlock": "latest", "topics": ["0x" + ev.topic.hex()]}])


def relay_records(sock: Path) -> list[tuple[int, BridgeTransfer]]:
    """Every BridgeTransfer on the execution relay, oldest first, with its domain sequence."""
    out: list[tuple[int, BridgeTransfer]] = []

    async def main() -> None:
        async with RelayConsumer.connect(Domain.EXECUTION, str(sock), from_seq=0, name="test-reader") as c:
            with trio.move_on_after(2):
                async for msg in c:
                    out.extend((msg.domain_seq, t) for t in msg.tlvs if isinstance(t, BridgeTransfer))

    trio.run(main)
    return out


# --------------------------------------------------------------------------- the process, killed


def test_rebalance_survives_sigkill_between_send_and_completion(env: Net) -> None:
    e = env
    set_inventory(e, A, 1_000 * USDC)  # below the floor (2,000)
    set_inventory(e, B, 20_000 * USDC)  # 15,000 above its target
    start_a, start_b = e.net(A).client.block_number(), e.net(B).client.block_number()
    state = e.d / "rebalancer.sqlite"
    config = write_config(e, state)
    amount = gross_up(4_000 * USDC, FEE_BPS)  # refill A to its target (5,000) after the fee
    fee = fee_for(amount, FEE_BPS)

    nonce_a, nonce_b = e.net(A).client.nonce(e.owner, "latest"), e.net(B).client.nonce(e.owner, "latest")
    ex_state = e.d / "executor.sqlite"
    ex_config = write_toml(e.d / "executor.toml", executor_doc(e, ex_state, e.relays))
    e.start("executor", "executor", "--config", str(ex_config))
    wait_for(lambda: f"executor not ready: {e.log('executor')[-3000:]}", lambda: "executor: ready" in e.log("executor"),
             60)
    e.start("standin", "standin", "bridge", "--deployment", str(e.deployment), "--delay", "6", "--fee-bps",
            str(FEE_BPS), "--state", str(e.d / "relayer.sqlite"), "--poll", "0.05")
    e.start("rebalancer", "rebalancer", "--config", str(config))
    wait_for(lambda: f"no transfer sent: {db_states(state)}\n{e.log('rebalancer')[-3000:]}",
             lambda: "sent" in db_states(state).values(), 60)
    p = e.procs.pop("rebalancer")
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    (tid,) = db_states(state)
    sent = bridge_logs(e, B, "TransferSent", start_b)
    assert len(sent) == 1, sent
    nonce = int(sent[0]["topics"][1], 16)
    assert not bridge_logs(e, A, "TransferCompleted", start_a), "the relayer completed before the kill: too slow a box?"
    assert balance(e, B, e.contracts[B]) == 20_000 * USDC - amount and balance(e, B, e.owner) == 0

    e.start("rebalancer", "rebalancer", "--config", str(config))
    wait_for(lambda: f"not completed after the restart: {db_states(state)}\n{e.log('rebalancer')[-3000:]}",
             lambda: db_states(state).get(tid) == "completed", 60)
    time.sleep(1.0)  # a few more passes: A is at its target, nothing else may start
    assert e.stop("rebalancer") == 0, e.log("rebalancer")[-3000:]
    assert e.stop("standin") == 0
    assert e.stop("executor") == 0, e.log("executor")[-3000:]
    # one signer: every transaction of the owner's on B (withdraw, approve, send) is the executor's, each nonce
    # once, none refused for a nonce another signer used; nothing of the owner's on A
    assert_one_signer(e, B, ex_state, nonce_b)
    assert e.net(A).client.nonce(e.owner, "latest") == nonce_a
    assert "did not sign" not in e.log("executor") and "refused" not in e.log("rebalancer"), e.log("executor")
    # exactly once on both chains
    sent = bridge_logs(e, B, "TransferSent", start_b)
    completed = bridge_logs(e, A, "TransferCompleted", start_a)
    assert len(sent) == 1 and len(completed) == 1, (sent, completed)
    assert int(completed[0]["topics"][1], 16) == B and int(completed[0]["topics"][2], 16) == nonce
    assert db_states(state) == {tid: "completed"}
    # balances to the unit: the fee is the only difference, nothing stays in the hot account
    assert balance(e, A, e.contracts[A]) == 1_000 * USDC + amount - fee == 5_000 * USDC
    assert balance(e, B, e.contracts[B]) == 20_000 * USDC - amount
    assert balance(e, B, e.owner) == 0 and balance(e, A, e.owner) == 0
    # each step's transaction went out once
    store = RebalanceStore(state)
    try:
        steps = [(r.step, r.status) for r in store.txs(tid)]
        final = store.get(tid)
    finally:
        store.close()
    assert sorted(steps) == [("approving", "mined"), ("sending", "mined"), ("withdrawing", "mined")], steps
    assert e.net(B).client.nonce(e.owner, "latest") == nonce_b + 3
    assert final is not None and (final.fee, final.received, final.nonce) == (fee, amount - fee, nonce)

    # the relay: one SENT and one COMPLETED for (B, nonce), whatever was republished after the kill
    recs = relay_records(e.sock)
    by_key: dict[tuple[int, int, int], list[BridgeTransfer]] = {}
    for _, r in recs:
        by_key.setdefault((r.src_chain, r.nonce, r.state), []).append(r)
    assert set(by_key) == {(B, nonce, BridgeTransferState.SENT), (B, nonce, BridgeTransferState.COMPLETED)}, recs
    assert all(len(set(map(bytes, (r.encode() for r in copies)))) == 1 for copies in by_key.values())
    s_rec = by_key[(B, nonce, BridgeTransferState.SENT)][0]
    c_rec = by_key[(B, nonce, BridgeTransferState.COMPLETED)][0]
    assert (s_rec.amount, s_rec.fee, s_rec.received) == (amount, 0, 0)
    assert (c_rec.amount, c_rec.fee, c_rec.received) == (amount, fee, amount - fee)
    assert c_rec.src_tx_hash.hex() == sent[0]["transactionHash"][2:]
    assert c_rec.dst_tx_hash.hex() == completed[0]["transactionHash"][2:]
    assert c_rec.src_token.address.lower() == usdc(e, B).lower() and c_rec.dst_token.address.lower() == usdc(e, A).lower()
    assert c_rec.recipient.hex() == e.contracts[A][2:].lower()
    assert c_rec.src_gas_cost == s_rec.src_gas_cost > 0
    assert 0 < s_rec.sent_time_ns == c_rec.sent_time_ns <= c_rec.completed_time_ns
    assert c_rec.transfer_id == tid and c_rec.bridge == 1


# --------------------------------------------------------------------------- in process: crash windows


class Collect:
    """A publisher that keeps what is published (the relay's part is covered above)."""

    def __init__(self) -> None:
        self.last_source_seq = 0
        self.payloads: list[bytes] = []

    async def publish(self, tlvs: Any) -> int:
        self.last_source_seq += 1
        return self.last_source_seq

    def next_source_seq(self) -> int:
        return self.last_source_seq + 1

    async def publish_payload(self, payload: bytes) -> int:
        self.payloads.append(payload)
        self.last_source_seq += 1
        return self.last_source_seq


def _run(e: Net, config, state: Path, publisher: Collect, fn, metrics: ProcessMetrics | None = None,
         lose: int = 0) -> object:
    """``fn(rebalancer)`` in one trio run with an in-process executor serving its requests; the executor's state
    file sits beside the rebalancer's (it outlives a rebalancer's restart, as the process does)."""
    async def main() -> object:
        store = RebalanceStore(state)
        rpcs = [HttpRpc(c.rpc_url, timeout=10.0) for c in config.chains]
        try:
            async with in_process_executor(e, executor_state(state)) as ex:
                chains = {c.chain_id: Chain(rpc, contract=c.contract, bridge=c.bridge)
                          for c, rpc in zip(config.chains, rpcs, strict=True)}
                rb = Rebalancer(config, store, chains, publisher, DeskOwner(OwnerDesk(ex), lose), metrics=metrics)
                await rb.read_owners()
                return await fn(rb)
        finally:
            for r in rpcs:
                await r.aclose()
            store.close()

    return trio.run(main)


def executor_state(state: Path) -> Path:
    return state.with_name(state.stem + "-executor.sqlite")


def requests_of(state: Path, transfer_id: int) -> list:
    store = RebalanceStore(state)
    try:
        return store.txs(transfer_id)
    finally:
        store.close()


async def _started(rb: Rebalancer):  # planned and committed WITHDRAWING, nothing asked yet
    (p,) = plan(rb.policy, await rb.balances(), fee_bps=FEE_BPS)
    t = await rb.start(p)
    return await rb.commit(t.to(State.WITHDRAWING))


def _complete_open(e: Net, config, state: Path, pub: Collect, tmp_path: Path) -> None:
    relayer = Relayer(load_deployment(e.deployment), tmp_path / "relayer.sqlite", Options(delay=0, fee_bps=FEE_BPS))
    try:
        for _ in range(3):
            relayer.step(time.time())
    finally:
        relayer.close()
    _run(e, config, state, pub, lambda rb: rb.run_pass())


def test_a_request_recorded_but_never_asked_and_one_whose_answer_was_lost(env: Net, tmp_path: Path) -> None:
    e = env
    set_inventory(e, A, 9_000 * USDC)
    set_inventory(e, B, 500 * USDC)  # B needs 4,500 (+ fee) from A
    state = tmp_path / "rb.sqlite"
    config = load_config(write_config(e, state))
    pub = Collect()
    before_a, nonce_a = balance(e, A, e.contracts[A]), e.net(A).client.nonce(e.owner, "latest")

    async def crash_after_recording(rb: Rebalancer) -> object:
        t = await _started(rb)
        return rb.store.new_request(transfer_id=t.transfer_id, step=t.state.value, chain_id=t.src_chain)

    row = _run(e, config, state, pub, crash_after_recording)  # the process dies before asking
    assert e.net(A).client.nonce(e.owner, "latest") == nonce_a  # nothing was sent
    # window 1: the next run asks with the recorded request, and the transfer goes on
    got = _run(e, config, state, pub, lambda rb: rb.run_pass())
    assert got == []  # nothing new started: the open transfer's asset is busy
    store = RebalanceStore(state)
    try:
        (t,) = store.transfers()
    finally:
        store.close()
    reqs = requests_of(state, t.transfer_id)
    assert reqs[0].request_id == row.request_id and reqs[0].status == "mined" and t.state is State.SENT, (t, reqs)
    assert balance(e, A, e.contracts[A]) == before_a - t.amount
    assert_one_signer(e, A, executor_state(state), nonce_a)
    _complete_open(e, config, state, pub, tmp_path)
    store = RebalanceStore(state)
    try:
        assert store.get(t.transfer_id).state is State.COMPLETED  # type: ignore[union-attr]
    finally:
        store.close()

    # window 2: the executor signed and sent the withdrawal, the rebalancer died before it stored the answer: asked
    # again, the executor answers with the same transaction; the withdrawal happens once
    set_inventory(e, A, 9_000 * USDC)
    set_inventory(e, B, 100 * USDC)
    before_a, nonce_a = balance(e, A, e.contracts[A]), e.net(A).client.nonce(e.owner, "latest")

    async def crash_after_asking(rb: Rebalancer) -> object:
        t = await _started(rb)
        return await rb.drive(t)  # the answer is lost: the step waits for the next pass

    lost = _run(e, config, state, pub, crash_after_asking, lose=1)
    assert lost.state is State.WITHDRAWING  # type: ignore[attr-defined]
    _run(e, config, state, pub, lambda rb: rb.run_pass())
    t2 = RebalanceStore(state).get(lost.transfer_id)  # type: ignore[attr-defined]
    reqs2 = requests_of(state, t2.transfer_id)
    assert [(r.step, r.status) for r in reqs2] == [("withdrawing", "mined"), ("sending", "mined")] or [
        (r.step, r.status) for r in reqs2] == [("withdrawing", "mined"), ("approving", "mined"), ("sending", "mined")]
    assert t2.state is State.SENT and balance(e, A, e.contracts[A]) == before_a - t2.amount  # withdrawn once
    ex = ExecutorStore(executor_state(state))
    try:
        signed = ex.owner_tx(REBALANCER, reqs2[0].request_id)
        assert signed is not None and signed.tx_hash == reqs2[0].tx_hash
    finally:
        ex.close()
    assert_one_signer(e, A, executor_state(state), nonce_a)
    # the same id asked for another transaction (a reused id, not a request asked again): refused, nothing sent
    first = reqs2[0]
    reused = OwnerTxRequest(request_id=first.request_id, chain_id=A, call=OwnerCall.WITHDRAW,
                            token=bytes.fromhex(usdc(e, A)[2:]), amount=t2.amount + 1, dst_chain=0)
    answer = _run(e, config, state, pub, lambda rb: rb.owner.ask(reused))
    assert answer.status == OwnerTxStatus.REFUSED and "another request" in answer.reason, answer  # type: ignore[attr-defined]
    assert_one_signer(e, A, executor_state(state), nonce_a)
    states = [decode_tlvs(p, 0, len(p))[0].state for p in pub.payloads]
    assert states == [BridgeTransferState.SENT, BridgeTransferState.COMPLETED, BridgeTransferState.SENT]


def test_a_transaction_whose_nonce_another_took_is_asked_for_again_and_done_once(env: Net, tmp_path: Path) -> None:
    """The executor answered SENT, then the chain shows neither the transaction nor a free nonce (a key used
    outside the executor, or a node that lost it while another transaction of the owner's landed): the step is
    asked for again -- a new request, a new nonce from the executor's tracker -- and happens once."""
    e = env
    set_inventory(e, A, 9_000 * USDC)
    set_inventory(e, B, 100 * USDC)
    state = tmp_path / "rb.sqlite"
    config = load_config(write_config(e, state))
    pub = Collect()
    before_a = balance(e, A, e.contracts[A])

    async def answered_then_lost(rb: Rebalancer) -> object:
        t = await _started(rb)
        row = rb.store.new_request(transfer_id=t.transfer_id, step=t.state.value, chain_id=t.src_chain)
        used = e.net(A).client.nonce(e.owner, "latest") - 1  # a nonce of the owner's the chain has mined
        return rb.store.answered(row.request_id, tx_hash="0x" + "ee" * 32, sender=e.owner, nonce=used)

    gone = _run(e, config, state, pub, answered_then_lost)
    _run(e, config, state, pub, lambda rb: rb.run_pass())
    reqs = requests_of(state, gone.transfer_id)  # type: ignore[attr-defined]
    assert [(r.step, r.status) for r in reqs][:2] == [("withdrawing", "dropped"), ("withdrawing", "mined")], reqs
    assert reqs[0].request_id == gone.request_id and reqs[1].request_id > gone.request_id  # type: ignore[attr-defined]
    t = RebalanceStore(state).get(gone.transfer_id)  # type: ignore[attr-defined]
    assert t is not None and t.state is State.SENT
    assert balance(e, A, e.contracts[A]) == before_a - t.amount  # withdrawn once


def test_a_send_the_bridge_refuses_returns_the_tokens_and_ends_refused(env: Net, tmp_path: Path) -> None:
    """The bridge's send reverts (its transferFrom: the owner's allowance to the bridge is short), in the
    executor's simulation: nothing is sent, the tokens the owner holds go back to the contract, REFUSED."""
    e = env
    set_inventory(e, A, 9_000 * USDC)
    state = tmp_path / "rb.sqlite"
    config = load_config(write_config(e, state))
    pub = Collect()
    amount = 1_234 * USDC
    before, owner_before = balance(e, A, e.contracts[A]), balance(e, A, e.owner)
    assert owner_before == 0, owner_before  # nothing left in the hot account by the tests before
    bridge = e.net(A).deployment.bridge.address
    allowance = e.net(A).rpc.call("eth_call", [{"to": usdc(e, A), "data": "0x" + encode_call(
        "allowance(address,address)", e.owner, bridge).hex()}, "latest"])
    assert int(allowance, 16) < amount
    _withdraw(e, A, e.owner, amount)  # as a withdrawal step would have: the tokens are the owner's now

    async def refused(rb: Rebalancer) -> object:
        p = Plan(asset="USDC", src_chain=A, dst_chain=B, amount=amount)
        t = await rb.start(p)
        t = t.to(State.WITHDRAWING).to(State.SENDING)  # withdrawn, and the allowance taken as enough
        rb.store.save(t)
        return await rb.drive(t)

    pm = ProcessMetrics("rebalancer")
    t = _run(e, config, state, pub, refused, pm)
    text = pm.render().decode()
    assert 'alphapulse_rebalancer_transfers_total{state="refused"} 1.0' in text
    assert 'alphapulse_rebalancer_transfers_total{state="completed"} 0.0' in text
    assert t.state is State.REFUSED and "token transfer failed" in t.reason, t
    assert balance(e, A, e.contracts[A]) == before and balance(e, A, e.owner) == owner_before
    assert t.gas_cost > 0 and t.nonce is None
    assert [(r.step, r.status) for r in requests_of(state, t.transfer_id)] == [("sending", "refused"),
                                                                               ("returning", "mined")]
    (payload,) = pub.payloads
    (rec,) = decode_tlvs(payload, 0, len(payload))
    assert rec.state == BridgeTransferState.REFUSED and rec.nonce == (1 << 64) - 1 and "token transfer" in rec.reason
