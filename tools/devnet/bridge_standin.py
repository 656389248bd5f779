"""The bridge stand-in's relayer: completes ``DevBridge`` transfers between the devnet's chains.

    alphapulse standin bridge --deployment var/devnet/deployment.json --delay 8 --fee-bps 1

Modelled on USDC's CCTP fast transfers (specs/bridge-standin.md): a transfer sent on one chain
(``DevBridge.send``: tokens locked, ``TransferSent`` with the source chain's nonce) is completed
on its destination chain ``--delay`` seconds after the source block's timestamp, releasing the
amount less a fee of ``--fee-bps`` basis points (rounded up: the fee is a cost) to the recipient,
in the same asset: the destination token is the source token's counterpart in an asset map
(``runtime/assets.py``), ``--assets FILE`` or by default the deployment's tokens of one symbol
(``tools.deployment_writer.assets_doc``). Only the relayer's account may complete, and the contract completes each (source chain,
nonce) once.

Theory of operation (crash safety). Everything the relayer knows is in its SQLite file
(``--state``, 0600 in a 0700 directory, ``runtime.files.open_sqlite``), written before it acts:

* ``scan`` holds, per source chain, the last block whose ``TransferSent`` logs are recorded. The
  logs of a block range and the new cursor are written in one SQLite transaction, so a kill
  either records the whole range or none of it (then it is scanned again: ``INSERT OR IGNORE``).
* ``transfer`` holds each transfer with its state: ``pending`` (seen, waiting for its time),
  ``sending`` (the destination transaction's nonce is written *before* the transaction is sent),
  ``done`` (the contract says completed). A transfer never goes back to be sent a second time
  unless the chain shows its nonce was used by nothing that completed it.
* On every pass, and so after a restart, a ``sending`` transfer is settled from the chain alone:
  ``completed(source, nonce)`` true -> ``done``; its relayer nonce already mined without completing
  it -> ``pending`` again (a fresh nonce next time); the nonce still in the node's pool -> wait; the
  nonce unused -> send the same completion again with that nonce.

So a kill at any instant loses no transfer (each is recorded before the cursor passes it) and
completes none twice (the completion of a recorded nonce is only re-sent when the chain shows
it was not done; the contract's ``completed`` refuses a replay in any case).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from chain.abi import as_bytes
from chain.deployment import ChainDeployment, DeploymentFile, load_deployment
from chain.rpc import RpcError, RpcFailure, SyncHttpRpc
from protocol.ids import TokenId
from runtime.assets import AssetMap, AssetsConfig, load_assets
from runtime.config import ConfigError, decode
from runtime.errors import BadFile
from runtime.files import open_sqlite
from runtime.logging import setup_logging
from tools.deployment_writer import assets_doc

from . import artifacts
from .actions import ChainClient, to_hex

log = logging.getLogger("alphapulse.bridge_standin")

SCHEMA = """
CREATE TABLE IF NOT EXISTS scan (chain_id INTEGER PRIMARY KEY, last_block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transfer (
    src_chain INTEGER NOT NULL,
    nonce INTEGER NOT NULL,
    dst_chain INTEGER NOT NULL,
    src_token TEXT NOT NULL,
    dst_token TEXT NOT NULL,
    recipient TEXT NOT NULL,
    amount TEXT NOT NULL,          -- raw units, decimal text (uint256)
    fee TEXT NOT NULL,
    src_block INTEGER NOT NULL,
    src_tx TEXT NOT NULL,
    due_at INTEGER NOT NULL,       -- unix seconds: source block timestamp + delay
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'done', 'refused')),
    dst_nonce INTEGER,             -- the relayer's nonce on the destination chain, written before sending
    dst_tx TEXT,
    note TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (src_chain, nonce)
);
"""
BPS = 10_000
GAS_COMPLETE = 200_000
MAX_LOG_RANGE = 5_000


def fee_for(amount: int, fee_bps: int) -> int:
    """The relayer's fee on ``amount``: ``fee_bps`` basis points, rounded up (a cost)."""
    return -(-amount * fee_bps // BPS)


@dataclass(frozen=True)
class Options:
    delay: int  # seconds after the source block's timestamp
    fee_bps: int
    poll: float = 0.2


class Relayer:
    """One pass at a time (:meth:`step`) over every chain of the deployment that has a bridge."""

    def __init__(self, deployment: DeploymentFile, state: str | Path, options: Options,
                 assets: AssetMap | None = None) -> None:
        self.options = options
        self.chains = {c.chain_id: c for c in deployment.chains if c.bridge is not None}
        self.assets = assets or decode(AssetsConfig, assets_doc(deployment.chains)).asset_map()
        if len(self.chains) < 2:
            raise ValueError("the deployment file needs two chains with a bridge (alphapulse devnet --chains 2)")
        self.db = open_sqlite(state, SCHEMA)
        self.clients = {cid: ChainClient(SyncHttpRpc(c.rpc_url, timeout=10.0)) for cid, c in self.chains.items()}
        bridge = artifacts.load("DevBridge")
        self._sent = bridge.event("TransferSent")
        self._complete = bridge.fn("complete")
        self._completed = bridge.fn("completed")

    def close(self) -> None:
        for c in self.clients.values():
            c.rpc.close()
        self.db.close()

    # -- scanning the sources ------------------------------------------------------------------
    def scan(self, chain_id: int) -> int:
        """Record the TransferSent logs of ``chain_id`` up to its head; returns how many were new."""
        chain, client = self.chains[chain_id], self.clients[chain_id]
        assert chain.bridge is not None
        row = self.db.execute("SELECT last_block FROM scan WHERE chain_id = ?", (chain_id,)).fetchone()
        start = 0 if row is None else row[0] + 1
        head = client.block_number()
        new = 0
        while start <= head:
            end = min(head, start + MAX_LOG_RANGE - 1)
            logs = client.rpc.call("eth_getLogs", [{"address": chain.bridge.address, "topics": [to_hex(self._sent.topic)],
                                                    "fromBlock": to_hex(start), "toBlock": to_hex(end)}])
            rows = [self._transfer_row(chain, client, lg) for lg in logs]
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for r in rows:
                    new += self.db.execute("INSERT OR IGNORE INTO transfer VALUES "
                                           "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)", r).rowcount
                self.db.execute("INSERT INTO scan VALUES (?, ?) ON CONFLICT (chain_id) DO UPDATE SET "
                                "last_block = excluded.last_block", (chain_id, end))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            start = end + 1
        return new

    def _transfer_row(self, chain: ChainDeployment, client: ChainClient, lg: dict[str, Any]) -> tuple[Any, ...]:
        ev = self._sent.decode([as_bytes(t) for t in lg["topics"]], as_bytes(lg["data"]))
        block = int(lg["blockNumber"], 16)
        stamp = int(client.get_block(block)["timestamp"], 16)
        amount, dst_chain = int(ev["amount"]), int(ev["dstChainId"])
        state, note, dst_token = "pending", "", ""
        dst = self.chains.get(dst_chain)
        if dst is None:
            state, note = "refused", f"no chain {dst_chain} with a bridge in the deployment"
        else:
            counterpart = self.assets.counterpart(TokenId.of(chain.chain_id, ev["token"]), dst_chain)
            try:
                if counterpart is None:
                    raise KeyError(f"token {ev['token']} is no asset with a token on chain {dst_chain}")
                dst_token = dst.token(counterpart.address).address
            except KeyError as exc:
                state, note = "refused", str(exc.args[0])
        if state == "refused":
            log.warning("transfer %d/%d refused: %s (its tokens stay locked)", chain.chain_id, ev["nonce"], note)
        return (chain.chain_id, int(ev["nonce"]), dst_chain, ev["token"], dst_token, ev["recipient"], str(amount),
                str(fee_for(amount, self.options.fee_bps)), block, lg["transactionHash"],
                stamp + self.options.delay, state, note)

    # -- completing on the destinations --------------------------------------------------------
    def _is_completed(self, dst_chain: int, src_chain: int, nonce: int) -> bool:
        client, bridge = self.clients[dst_chain], self.chains[dst_chain].bridge
        assert bridge is not None
        return bool(self._completed.decode(client.eth_call(bridge.address, self._completed.encode(src_chain, nonce)))[0])

    def _nonces(self, chain_id: int) -> tuple[int, int]:
        relayer = self.chains[chain_id].bridge.relayer  # type: ignore[union-attr]
        client = self.clients[chain_id]
        return client.nonce(relayer, "latest"), client.nonce(relayer, "pending")

    def settle(self) -> None:
        """Settle every ``sending`` transfer from the chain (see the module docstring)."""
        rows = self.db.execute("SELECT src_chain, nonce, dst_chain, dst_nonce FROM transfer WHERE state = 'sending' "
                               "ORDER BY dst_chain, dst_nonce").fetchall()
        for src, nonce, dst, dst_nonce in rows:
            if self._is_completed(dst, src, nonce):
                self._set(src, nonce, "done")
                log.info("transfer %d/%d completed on chain %d", src, nonce, dst)
                continue
            mined, pooled = self._nonces(dst)
            if dst_nonce < mined:  # that nonce was used without completing the transfer
                log.warning("transfer %d/%d: relayer nonce %d on chain %d did not complete it; sending again",
                            src, nonce, dst_nonce, dst)
                self.db.execute("UPDATE transfer SET state = 'pending', dst_nonce = NULL, dst_tx = NULL "
                                "WHERE src_chain = ? AND nonce = ?", (src, nonce))
            elif dst_nonce >= pooled:  # never reached the node (killed between the write and the send)
                self._send(src, nonce, dst_nonce)

    def complete_due(self, now: float) -> int:
        """Send the completion of every pending transfer whose time has come; returns how many."""
        rows = self.db.execute("SELECT src_chain, nonce, dst_chain FROM transfer WHERE state = 'pending' AND due_at <= ? "
                               "ORDER BY due_at, src_chain, nonce", (int(now),)).fetchall()
        for src, nonce, dst in rows:
            if self._is_completed(dst, src, nonce):  # completed by a run whose record was lost? never twice
                self._set(src, nonce, "done")
                continue
            _, pooled = self._nonces(dst)
            used = self.db.execute("SELECT MAX(dst_nonce) FROM transfer WHERE dst_chain = ?", (dst,)).fetchone()[0]
            dst_nonce = max(pooled, -1 if used is None else used + 1)
            self.db.execute("UPDATE transfer SET state = 'sending', dst_nonce = ? WHERE src_chain = ? AND nonce = ?",
                            (dst_nonce, src, nonce))
            self._send(src, nonce, dst_nonce)
        return len(rows)

    def _send(self, src: int, nonce: int, dst_nonce: int) -> None:
        dst, token, recipient, amount, fee = self.db.execute(
            "SELECT dst_chain, dst_token, recipient, amount, fee FROM transfer WHERE src_chain = ? AND nonce = ?",
            (src, nonce)).fetchone()
        bridge = self.chains[dst].bridge
        assert bridge is not None
        data = self._complete.encode(src, nonce, token, recipient, int(amount), int(fee))
        tx = {"from": bridge.relayer, "to": bridge.address, "data": to_hex(data), "gas": to_hex(GAS_COMPLETE),
              "nonce": to_hex(dst_nonce)}
        try:
            tx_hash = self.clients[dst].rpc.call("eth_sendTransaction", [tx])
        except RpcError as exc:  # e.g. the nonce raced: settle() looks again next pass
            log.warning("transfer %d/%d: chain %d refused the completion: %s", src, nonce, dst, exc.message)
            return
        self.db.execute("UPDATE transfer SET dst_tx = ? WHERE src_chain = ? AND nonce = ?", (tx_hash, src, nonce))
        log.info("transfer %d/%d: completion sent on chain %d (nonce %d, %s)", src, nonce, dst, dst_nonce, tx_hash)

    def _set(self, src: int, nonce: int, state: str) -> None:
        self.db.execute("UPDATE transfer SET state = ? WHERE src_chain = ? AND nonce = ?", (state, src, nonce))

    def step(self, now: float) -> None:
        """One pass: scan every source, settle what was sent, send what is due."""
        for chain_id in self.chains:
            self.scan(chain_id)
        self.settle()
        self.complete_due(now)

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT state, COUNT(*) FROM transfer GROUP BY state").fetchall())


class _Stop(Exception):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse standin bridge", description=__doc__.split("\n\n")[0] + "\n\n"
                                 + __doc__.split("\n\n")[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deployment", type=Path, required=True, help="the devnet deployment file (alphapulse devnet)")
    ap.add_argument("--delay", type=int, default=8, help="seconds from the source block to the completion (default 8)")
    ap.add_argument("--fee-bps", type=int, default=1, help="fee in basis points of the amount (default 1)")
    ap.add_argument("--state", type=Path, default=None,
                    help="the relayer's SQLite file (default: bridge-relayer.sqlite beside the deployment file)")
    ap.add_argument("--assets", type=Path, default=None,
                    help="[[assets]] file mapping tokens across chains (default: the deployment's tokens by symbol)")
    ap.add_argument("--poll", type=float, default=0.2, help="seconds between passes (default 0.2)")
    args = ap.parse_args(argv)
    if args.delay < 0:
        ap.error("--delay must be >= 0 seconds")
    if not 0 <= args.fee_bps <= BPS:
        ap.error("--fee-bps must be between 0 and 10000")
    if not args.poll > 0:
        ap.error("--poll must be > 0")
    setup_logging("INFO")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per RPC request otherwise
    try:
        deployment = load_deployment(args.deployment)
    except (OSError, ValueError, KeyError) as exc:
        print(f"alphapulse standin bridge: cannot read {args.deployment}: {exc}", file=sys.stderr)
        return 2
    state = args.state or args.deployment.parent / "bridge-relayer.sqlite"
    try:
        assets = load_assets(args.assets) if args.assets else None
        relayer = Relayer(deployment, state, Options(delay=args.delay, fee_bps=args.fee_bps, poll=args.poll), assets)
    except (ConfigError, ValueError, BadFile, OSError, sqlite3.Error) as exc:
        print(f"alphapulse standin bridge: {exc}", file=sys.stderr)
        return 2
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    print(f"bridge stand-in: relaying between chains {', '.join(map(str, relayer.chains))} "
          f"(delay {args.delay} s, fee {args.fee_bps} bps), state {state}", flush=True)
    code = 0
    try:
        while True:
            try:
                relayer.step(time.time())
            except (RpcFailure, TimeoutError) as exc:
                log.warning("chain unreachable, retrying: %s", exc)
            time.sleep(args.poll)
    except _Stop as stop:
        log.info("%s: stopping (%s)", stop, relayer.counts())
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        relayer.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
