"""The rebalancer on a real two-chain devnet (two anvils, AlphaPulseArb deployed on each from an
encrypted keystore, DevBridge and its relayer stand-in), with a real execution relay.

* ``test_rebalance_survives_sigkill_between_send_and_completion``: ``alphapulse rebalancer`` is killed
  with SIGKILL once the bridge's send is mined and before the relayer completes it, then restarted;
  the transfer completes exactly once, balances are right to the unit, the fee is recorded, and the
  relay holds one SENT and one COMPLETED record for it.
* the in-process tests drive the same code through its crash windows: a transaction recorded but never
  broadcast (sent again byte for byte), a recorded nonce another transaction took (the step signed
  again, done once), and a send the bridge refuses (the tokens go back to the contract: REFUSED).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import trio

from chain.abi import encode_call
from chain.deployment import load_deployment, save_deployment
from chain.rpc import HttpRpc
from execution.chain import ChainGateway
from execution.deploy import deploy_and_configure
from execution.keystore import load_account, new_keystore_account
from execution.rebalance.config import load_config
from execution.rebalance.core import Plan, State, gross_up, plan
from execution.rebalance.runner import Chain, Rebalancer
from execution.rebalance.store import RebalanceStore
from protocol.execution import BridgeTransfer, BridgeTransferState
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
        e.start("relay", "relay", "--domain", "execution", "--socket", str(e.sock), "--data-dir", str(d / "journal"),
                "--fsync", "off")
        wait_for(lambda: f"relay not up: {e.log('relay')}", e.sock.exists, 30)
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
    doc = rebalancer_doc([n.deployment for n in e.nets], contracts=e.contracts, keystore=e.keystore,
                         password_file=e.d / "password", targets={("USDC", A): (floor, target),
                                                                  ("USDC", B): (floor, target)},
                         state_db=state, execution_socket=e.sock, poll_s=0.1, bridge_fee_bps=FEE_BPS)
    return write_toml(state.with_suffix(".toml"), doc)


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

    async def publish_payload(self, payload: bytes) -> int:
        self.payloads.append(payload)
        self.last_source_seq += 1
        return self.last_source_seq


def _rebalancer(e: Net, config, store: RebalanceStore, publisher: Collect,
                metrics: ProcessMetrics | None = None) -> tuple[Rebalancer, list[HttpRpc]]:
    acct = load_account(e.keystore, PASSWORD)
    rpcs = [HttpRpc(c.rpc_url, timeout=10.0) for c in config.chains]
    chains = {c.chain_id: Chain(ChainGateway(rpc, acct, chain_id=c.chain_id, contract=c.contract), contract=c.contract,
                                bridge=c.bridge) for c, rpc in zip(config.chains, rpcs, strict=True)}
    return Rebalancer(config, store, chains, publisher, metrics=metrics), rpcs


def _run(e: Net, config, state: Path, publisher: Collect, fn, metrics: ProcessMetrics | None = None) -> object:
    async def main() -> object:
        store = RebalanceStore(state)
        rb, rpcs = _rebalancer(e, config, store, publisher, metrics)
        try:
            return await fn(rb)
        finally:
            for r in rpcs:
                await r.aclose()
            store.close()

    return trio.run(main)


def test_a_step_recorded_but_never_sent_and_a_nonce_taken_by_another_transaction(env: Net, tmp_path: Path) -> None:
    e = env
    set_inventory(e, A, 9_000 * USDC)
    set_inventory(e, B, 500 * USDC)  # B needs 4,500 (+ fee) from A
    state = tmp_path / "rb.sqlite"
    config = load_config(write_config(e, state))
    pub = Collect()
    before_a = balance(e, A, e.contracts[A])

    async def crash_after_recording(rb: Rebalancer) -> object:
        (p,) = plan(rb.policy, await rb.balances(), fee_bps=FEE_BPS)
        t = await rb.start(p)
        t = await rb.commit(t.to(State.WITHDRAWING))
        return await rb._sign(t)  # recorded, never broadcast: the process dies here

    row = _run(e, config, state, pub, crash_after_recording)
    assert e.net(A).client.nonce(e.owner, "latest") == row.nonce  # the chain never saw it
    # window 1: the next run broadcasts the very same bytes, and the transfer goes on
    got = _run(e, config, state, pub, lambda rb: rb.run_pass())
    assert got == []  # nothing new started: the open transfer's asset is busy
    store = RebalanceStore(state)
    try:
        (t,) = store.transfers()
        txs = store.txs(t.transfer_id)
    finally:
        store.close()
    assert txs[0].tx_hash == row.tx_hash and txs[0].status == "mined" and t.state is State.SENT, (t, txs)
    assert balance(e, A, e.contracts[A]) == before_a - t.amount

    # window 2: a second transfer's withdraw is recorded with nonce n, then another transaction of the
    # owner's (the executor's, say) takes n: the step is signed again and happens once.
    relayer = Relayer(load_deployment(e.deployment), tmp_path / "relayer.sqlite", Options(delay=0, fee_bps=FEE_BPS))
    try:
        for _ in range(3):
            relayer.step(time.time())
    finally:
        relayer.close()
    _run(e, config, state, pub, lambda rb: rb.run_pass())  # completes the first
    store = RebalanceStore(state)
    try:
        assert store.get(t.transfer_id).state is State.COMPLETED  # type: ignore[union-attr]
    finally:
        store.close()
    set_inventory(e, A, 9_000 * USDC)
    set_inventory(e, B, 100 * USDC)
    before_a = balance(e, A, e.contracts[A])
    row2 = _run(e, config, state, pub, crash_after_recording)
    _withdraw(e, A, e.net(A).deployment.accounts[5], 1)  # the owner's nonce row2.nonce is now used by this
    before_a -= 1
    _run(e, config, state, pub, lambda rb: rb.run_pass())
    store = RebalanceStore(state)
    try:
        t2 = store.transfers()[-1]
        txs2 = store.txs(t2.transfer_id)
    finally:
        store.close()
    assert [(r.step, r.status) for r in txs2][:2] == [("withdrawing", "dropped"), ("withdrawing", "mined")], txs2
    assert txs2[0].tx_hash == row2.tx_hash and txs2[1].nonce > row2.nonce
    assert t2.state is State.SENT
    assert balance(e, A, e.contracts[A]) == before_a - t2.amount  # withdrawn once
    states = [decode_tlvs(p, 0, len(p))[0].state for p in pub.payloads]
    assert states == [BridgeTransferState.SENT, BridgeTransferState.COMPLETED, BridgeTransferState.SENT]


def test_a_send_the_bridge_refuses_returns_the_tokens_and_ends_refused(env: Net, tmp_path: Path) -> None:
    e = env
    set_inventory(e, A, 9_000 * USDC)
    state = tmp_path / "rb.sqlite"
    config = load_config(write_config(e, state))
    pub = Collect()
    before, owner_before = balance(e, A, e.contracts[A]), balance(e, A, e.owner)
    assert owner_before == 0, owner_before  # nothing left in the hot account by the tests before

    async def refused(rb: Rebalancer) -> object:
        p = Plan(asset="USDC", src_chain=A, dst_chain=B, amount=1_234 * USDC)
        t = await rb.start(p)
        # the bridge refuses a zero recipient: the one way to make DevBridge.send revert for us
        t = dataclasses.replace(t, dst_contract="0x" + "00" * 20)
        rb.store.save(t)
        return await rb.drive(t)

    pm = ProcessMetrics("rebalancer")
    t = _run(e, config, state, pub, refused, pm)
    text = pm.render().decode()
    assert 'alphapulse_rebalancer_transfers_total{state="refused"} 1.0' in text
    assert 'alphapulse_rebalancer_transfers_total{state="completed"} 0.0' in text
    assert t.state is State.REFUSED and "zero recipient" in t.reason, t
    assert balance(e, A, e.contracts[A]) == before and balance(e, A, e.owner) == owner_before
    assert t.gas_cost > 0 and t.nonce is None
    (payload,) = pub.payloads
    (rec,) = decode_tlvs(payload, 0, len(payload))
    assert rec.state == BridgeTransferState.REFUSED and rec.nonce == (1 << 64) - 1 and "zero recipient" in rec.reason
