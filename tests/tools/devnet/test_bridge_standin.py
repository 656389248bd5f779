"""The bridge stand-in (DevBridge + relayer) on a real two-chain devnet: fees, replay protection,
the relayer's crash windows, and a relayer process killed with SIGKILL mid-transfer."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from relay_testkit import wait_for

from chain.deployment import save_deployment
from tools.devnet import artifacts
from tools.devnet.actions import TxFailed
from tools.devnet.bridge_standin import Options, Relayer, fee_for
from tools.devnet.deploy import chain_spec, start_devnet
from tools.devnet.paths import REPO_ROOT

A, B = 31337, 31338
FEE_BPS = 5


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    nets = []
    try:
        for i, chain_id in enumerate((A, B)):
            nets.append(start_devnet(chain_id, spec=chain_spec(i)))
        path = save_deployment(tmp_path_factory.mktemp("bridge") / "deployment.json", [n.deployment for n in nets])
        yield nets, path
    finally:
        for n in nets:
            n.close()


def _send(net, sender, symbol, amount, dst_chain, recipient):
    d = net.deployment
    r = net.client.transact(sender, "DevBridge", d.bridge.address, "send", d.address_of(symbol), amount, dst_chain,
                            recipient)
    (ev,) = r.events("DevBridge", "TransferSent", d.bridge.address)
    return int(ev["nonce"])


def _completions(net, src_chain):
    """Every TransferCompleted on ``net`` for transfers from ``src_chain``: {nonce: count}."""
    d = net.deployment
    ev = artifacts.load("DevBridge").event("TransferCompleted")
    logs = net.rpc.call("eth_getLogs", [{"address": d.bridge.address, "fromBlock": "0x0", "toBlock": "latest",
                                          "topics": ["0x" + ev.topic.hex(), "0x" + src_chain.to_bytes(32, "big").hex()]}])
    counts: dict[int, int] = {}
    for lg in logs:
        nonce = int(lg["topics"][2], 16)
        counts[nonce] = counts.get(nonce, 0) + 1
    return counts


def test_fee_rounds_up():
    assert fee_for(10_000, 5) == 5 and fee_for(10_001, 5) == 6 and fee_for(1, 1) == 1 and fee_for(0, 5) == 0
    assert fee_for(10**6, 0) == 0


def test_only_the_relayer_completes_and_only_once(chains):
    (na, nb), _ = chains
    db = nb.deployment
    user = db.funded_accounts[0]
    usdc = db.address_of("USDC")
    with pytest.raises(TxFailed, match="not the relayer"):
        nb.client.transact(user, "DevBridge", db.bridge.address, "complete", 999, 1, usdc, user, 100, 0)
    snap = nb.client.snapshot()
    try:
        before = nb.client.balance(user, "USDC")
        nb.client.transact(db.bridge.relayer, "DevBridge", db.bridge.address, "complete", 999, 1, usdc, user, 100, 3)
        assert nb.client.balance(user, "USDC") - before == 97
        with pytest.raises(TxFailed, match="already completed"):
            nb.client.transact(db.bridge.relayer, "DevBridge", db.bridge.address, "complete", 999, 1, usdc, user, 100, 3)
    finally:
        nb.client.revert(snap)
    with pytest.raises(TxFailed, match="same chain"):
        na.client.transact(na.deployment.funded_accounts[0], "DevBridge", na.deployment.bridge.address, "send",
                           na.deployment.address_of("USDC"), 1, A, user)


def test_relayer_crash_windows_complete_each_transfer_once(chains, tmp_path):
    """Driven in-process: a relayer dies after writing 'sending' but before sending, and another dies
    after sending but before seeing the receipt; a fresh relayer on the same file completes each once."""
    (na, nb), path = chains
    from chain.deployment import load_deployment

    dep = load_deployment(path)
    sender, recipient = na.deployment.funded_accounts[0], na.deployment.accounts[6]
    amounts = [1_000_000, 2_500_001, 7]
    start_usdc = nb.client.balance(recipient, "USDC")
    nonces = [_send(na, sender, "USDC", a, B, recipient) for a in amounts]
    state = tmp_path / "relayer.sqlite"

    first = Relayer(dep, state, Options(delay=0, fee_bps=FEE_BPS))
    first.scan(A)
    first.scan(B)
    assert first.counts() == {"pending": 3}
    # Crash 1: the first transfer's nonce is written, the transaction never leaves.
    first.db.execute("UPDATE transfer SET state = 'sending', dst_nonce = ? WHERE src_chain = ? AND nonce = ?",
                     (first._nonces(B)[1], A, nonces[0]))
    first.close()
    # Crash 2: a relayer re-sends the first (its recorded nonce unused) and dies before it looks at
    # the chain again.
    second = Relayer(dep, state, Options(delay=0, fee_bps=FEE_BPS))
    second.settle()  # re-sends the first with its recorded nonce
    sent = second.db.execute("SELECT nonce FROM transfer WHERE state = 'sending'").fetchall()
    assert sent == [(nonces[0],)]
    second.close()
    third = Relayer(dep, state, Options(delay=0, fee_bps=FEE_BPS))
    for _ in range(3):
        third.step(time.time())
    assert third.counts() == {"done": 3}
    third.close()
    counts = _completions(nb, A)
    assert all(counts[n] == 1 for n in nonces), counts
    assert nb.client.balance(recipient, "USDC") - start_usdc == sum(a - fee_for(a, FEE_BPS) for a in amounts)


def test_tokens_cross_as_the_asset_map_says(chains, tmp_path):
    """The default map is the deployment's tokens by symbol (assets_doc); with an operator's map that
    leaves WETH out, a WETH transfer is refused (recorded, its tokens stay locked) and USDC crosses."""
    from chain.deployment import load_deployment
    from runtime.assets import AssetsConfig
    from runtime.config import decode
    from tools.deployment_writer import assets_doc

    (na, nb), path = chains
    dep = load_deployment(path)
    doc = assets_doc(dep.chains)
    assert [a["name"] for a in doc["assets"]] == ["WETH", "USDC", "DAI"]
    only_usdc = decode(AssetsConfig, {"assets": [a for a in doc["assets"] if a["name"] == "USDC"]}).asset_map()
    sender, recipient = nb.deployment.funded_accounts[0], nb.deployment.accounts[8]
    weth_nonce = _send(nb, sender, "WETH", 10**15, A, recipient)
    usdc_nonce = _send(nb, sender, "USDC", 123_456, A, recipient)
    before = na.client.balance(recipient, "USDC")
    relayer = Relayer(dep, tmp_path / "relayer.sqlite", Options(delay=0, fee_bps=FEE_BPS), only_usdc)
    try:
        for _ in range(2):
            relayer.step(time.time())
        rows = dict(relayer.db.execute("SELECT nonce, state || ':' || note FROM transfer WHERE src_chain = ?",
                                       (B,)).fetchall())
    finally:
        relayer.close()
    assert rows[weth_nonce].startswith("refused:") and "no asset with a token on chain 31337" in rows[weth_nonce]
    assert rows[usdc_nonce] == "done:"
    assert na.client.balance(recipient, "USDC") - before == 123_456 - fee_for(123_456, FEE_BPS)


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start_relayer(path, state, log):
    return subprocess.Popen([sys.executable, "-m", "tools.cli", "standin", "bridge", "--deployment", str(path),
                             "--delay", "2", "--fee-bps", str(FEE_BPS), "--state", str(state), "--poll", "0.05"],
                            cwd=REPO_ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT)


def _states(state):
    if not state.exists():
        return {}
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT state, COUNT(*) FROM transfer GROUP BY state").fetchall())
    except sqlite3.OperationalError:  # the schema is not there yet
        return {}
    finally:
        db.close()


def test_relayer_killed_with_sigkill_loses_and_doubles_nothing(chains, tmp_path):
    (na, nb), path = chains
    state = tmp_path / "relayer.sqlite"
    recipient_a, recipient_b = na.deployment.accounts[7], nb.deployment.accounts[7]
    sender_a, sender_b = na.deployment.funded_accounts[1], nb.deployment.funded_accounts[1]
    start = {"a_weth": na.client.balance(recipient_a, "WETH"), "b_usdc": nb.client.balance(recipient_b, "USDC")}
    first_nonce_a = na.client.call_fn("DevBridge", na.deployment.bridge.address, "nextNonce")[0]
    first_nonce_b = nb.client.call_fn("DevBridge", nb.deployment.bridge.address, "nextNonce")[0]
    to_b, to_a = [], []  # amounts sent A -> B (USDC) and B -> A (WETH)
    log = open(tmp_path / "relayer.log", "wb")  # noqa: SIM115 - closed below
    proc = _start_relayer(path, state, log)
    try:
        wait_for("relayer not up",
                 lambda: b"bridge stand-in: relaying" in (tmp_path / "relayer.log").read_bytes(), 30)
        # Keep sending, both ways, until some transfers are done while later ones still wait for
        # their time (delay 2 s), then kill it: whatever the machine's load, the kill lands mid-flow.
        deadline = time.monotonic() + 30
        while not (_states(state).get("done", 0) >= 1 and _states(state).get("pending", 0) >= 1):
            assert time.monotonic() < deadline, f"no mix of done and pending transfers: {_states(state)}"
            i = len(to_b)
            to_b.append(1_000_000 * (i + 1) + i)
            _send(na, sender_a, "USDC", to_b[-1], B, recipient_b)
            to_a.append(10**17 + i)
            _send(nb, sender_b, "WETH", to_a[-1], A, recipient_a)
            time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed_at = _states(state)
        for i in range(2):  # more transfers while the relayer is dead
            to_b.append(3 * 10**6 + i)
            _send(na, sender_a, "USDC", to_b[-1], B, recipient_b)
        proc = _start_relayer(path, state, log)
        # Every transfer ever sent on either bridge (earlier tests' too) ends done, none elsewhere.
        total = sum(n.client.call_fn("DevBridge", n.deployment.bridge.address, "nextNonce")[0] for n in (na, nb))
        wait_for(lambda: f"not every transfer done after the restart: {_states(state)} (at the kill: {killed_at})",
                 lambda: _states(state) == {"done": total}, 30)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        log.close()
    assert proc.returncode == 0, (tmp_path / "relayer.log").read_text()[-2000:]
    got_b = _completions(nb, A)
    got_a = _completions(na, B)
    assert {n: got_b[n] for n in range(first_nonce_a, first_nonce_a + len(to_b))} == dict.fromkeys(
        range(first_nonce_a, first_nonce_a + len(to_b)), 1)
    assert {n: got_a[n] for n in range(first_nonce_b, first_nonce_b + len(to_a))} == dict.fromkeys(
        range(first_nonce_b, first_nonce_b + len(to_a)), 1)
    assert nb.client.balance(recipient_b, "USDC") - start["b_usdc"] == sum(a - fee_for(a, FEE_BPS) for a in to_b)
    assert na.client.balance(recipient_a, "WETH") - start["a_weth"] == sum(a - fee_for(a, FEE_BPS) for a in to_a)
