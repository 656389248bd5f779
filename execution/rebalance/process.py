"""``alphapulse rebalancer --config FILE``: keeps each chain's AlphaPulseArb inventory above its floor by
bridging surplus from another chain (``specs/rebalance.md``).

Start-up: load the configuration (plaintext keys refused), decrypt each chain's keystore, open the
SQLite state, check that each signer owns its chain's contract, connect the execution relay and
publish again the records it never got, print ``rebalancer: ready``, then pass every ``poll_s``
seconds: open transfers first (a transfer a killed run left in flight is resumed or settled from the
chain), then new ones. SIGINT/SIGTERM stop it between two steps of the chain (a step recorded but not
yet settled is settled by the next start).

Exit codes: 0 after SIGINT/SIGTERM, 2 on a bad configuration or keystore, 1 when a contract is not owned
by its signer or a chain answers something inconsistent with a transfer (``TransferError``).
"""

from __future__ import annotations

import argparse
import logging
import sys

import trio
from eth_account.signers.local import LocalAccount

from chain.rpc import HttpRpc, RpcFailure
from execution.chain import ChainGateway
from execution.keystore import KeystoreError, load_account, read_password
from protocol.header import Domain
from relays.client import RelayProducer
from runtime.config import ConfigError
from runtime.metrics import ProcessMetrics
from runtime.process import ProcessMain, Work, add_process_arguments

from .config import RebalancerConfig, load_config
from .core import TransferError
from .runner import Chain, Rebalancer, republish_unsent
from .store import RebalanceStore

log = logging.getLogger("execution.rebalance")
EXIT_CONFIG = 2


def unlock(config: RebalancerConfig) -> dict[int, LocalAccount]:
    """Each chain's signer, from its encrypted keystore (a keystore shared by chains is decrypted once)."""
    cache: dict[tuple[str, str, str], LocalAccount] = {}
    out = {}
    for c in config.chains:
        key = (c.keystore.path, c.keystore.password_file, c.keystore.password_env)
        if key not in cache:
            password = read_password(password_file=c.keystore.password_file, password_env=c.keystore.password_env)
            cache[key] = load_account(c.keystore.path, password)
        out[c.chain_id] = cache[key]
    return out


async def run(config: RebalancerConfig, accounts: dict[int, LocalAccount], pm: ProcessMetrics | None = None, *,
              task_status: trio.TaskStatus[Rebalancer] = trio.TASK_STATUS_IGNORED) -> None:
    store = RebalanceStore(config.state_db)
    rpcs = {c.chain_id: HttpRpc(c.rpc_url, timeout=10.0) for c in config.chains}
    try:
        chains = {c.chain_id: Chain(ChainGateway(rpcs[c.chain_id], accounts[c.chain_id], chain_id=c.chain_id,
                                                 contract=c.contract), contract=c.contract, bridge=c.bridge)
                  for c in config.chains}
        async with RelayProducer.connect(Domain.EXECUTION, config.relays.socket(Domain.EXECUTION),
                                         source_id=config.source_id, name=config.name, metrics=pm) as producer:
            rb = Rebalancer(config, store, chains, producer, metrics=pm)
            await rb.check_owners()
            await republish_unsent(store, producer)
            opened = len(store.transfers(open_only=True))
            print(f"rebalancer: ready ({len(chains)} chains, {len(rb.policy)} targets, {opened} transfers open)",
                  flush=True)
            task_status.started(rb)
            while True:
                try:
                    await rb.run_pass()
                except RpcFailure as exc:
                    log.warning("rebalancer: a node did not answer (%s); retrying next pass", exc)
                await trio.sleep(config.poll_s)
    finally:
        for rpc in rpcs.values():
            await rpc.aclose()
        store.close()


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="alphapulse rebalancer",
                                 description="Bridge inventory between chains' AlphaPulseArb contracts when one "
                                             "drops below its floor (specs/rebalance.md).")
    ap.add_argument("--config", required=True, help="rebalancer TOML file")
    add_process_arguments(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))

    def prepare() -> Work:
        config = load_config(args.config)
        accounts = unlock(config)
        return lambda pm: run(config, accounts, pm)

    proc = ProcessMain("rebalancer", "rebalancer", errors={TransferError: 1},
                       prepare_errors={(ConfigError, KeystoreError, OSError, ValueError, KeyError): EXIT_CONFIG})
    return proc.run(args, prepare)


__all__ = ["main", "run", "unlock"]
