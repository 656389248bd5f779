"""``alphapulse rebalancer --config FILE``: keeps each chain's AlphaPulseArb inventory above its floor by
bridging surplus from another chain (``specs/rebalance.md``).

Start-up: load the configuration (a keystore is refused: the rebalancer signs nothing), open the SQLite
state, read each chain's contract owner, connect the execution relay (a producer for its records and its
``OwnerTxRequest``, a consumer of the executor's ``OwnerTxAnswer`` from now) and publish again the records it
never got, print ``rebalancer: ready``, then pass every ``poll_s`` seconds: open transfers first (a transfer a
killed run left in flight is resumed or settled from the chain), then new ones. SIGINT/SIGTERM stop it between
two steps of the chain (a step requested but not yet settled is settled by the next start).

Exit codes: 0 after SIGINT/SIGTERM, 2 on a bad configuration, 1 when a chain answers something inconsistent
with a transfer (``TransferError``).
"""

from __future__ import annotations

import argparse
import logging
import sys

import trio

from chain.rpc import HttpRpc, RpcFailure
from protocol.execution import OwnerTxAnswer
from protocol.header import Domain
from relays.client import RelayConsumer, RelayProducer
from runtime.config import ConfigError
from runtime.metrics import ProcessMetrics
from runtime.process import ProcessMain, Work, add_process_arguments

from .config import RebalancerConfig, load_config
from .core import TransferError
from .runner import Chain, Rebalancer, RelayOwner, republish_unsent
from .store import RebalanceStore

log = logging.getLogger("execution.rebalance")
EXIT_CONFIG = 2


async def run(config: RebalancerConfig, pm: ProcessMetrics | None = None, *,
              task_status: trio.TaskStatus[Rebalancer] = trio.TASK_STATUS_IGNORED) -> None:
    store = RebalanceStore(config.state_db)
    rpcs = {c.chain_id: HttpRpc(c.rpc_url, timeout=10.0) for c in config.chains}
    sock = config.relays.socket(Domain.EXECUTION)
    try:
        chains = {c.chain_id: Chain(rpcs[c.chain_id], contract=c.contract, bridge=c.bridge) for c in config.chains}
        async with RelayProducer.connect(Domain.EXECUTION, sock, source_id=config.source_id, name=config.name,
                                         metrics=pm) as producer, \
                RelayConsumer.connect(Domain.EXECUTION, sock, from_seq=None, types={OwnerTxAnswer.TYPE},
                                      name=f"{config.name}-answers", metrics=pm) as answers, \
                trio.open_nursery() as nursery:
            owner = RelayOwner(producer, config.source_id, wait_s=config.answer_wait_s)

            async def feed() -> None:
                async for msg in answers:
                    for tlv in msg.tlvs:
                        if isinstance(tlv, OwnerTxAnswer):
                            owner.on_answer(tlv)

            await answers.subscribed()  # an answer to our first request must not pass before we listen
            nursery.start_soon(feed)
            rb = Rebalancer(config, store, chains, producer, owner, metrics=pm)
            await rb.read_owners()
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
        return lambda pm: run(config, pm)

    proc = ProcessMain("rebalancer", "rebalancer", errors={TransferError: 1},
                       prepare_errors={(ConfigError, OSError, ValueError, KeyError): EXIT_CONFIG})
    return proc.run(args, prepare)


__all__ = ["main", "run"]
