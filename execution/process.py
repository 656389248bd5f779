"""``alphapulse executor --config FILE``: the executor process.

``alphapulse executor new-keystore --out FILE --password-file F`` creates its signing key
(see :mod:`execution.keystore`); ``alphapulse executor deploy-contract ...`` deploys and configures
our contract from that key and prints the configuration lines (see :mod:`execution.deploy`).

Start-up: load the configuration (refusing plaintext keys), decrypt the keystore, open the
SQLite state, connect the relays, reconcile nonces and settle transactions a previous run left
open (:meth:`Executor.recover`), apply the market-data backlog (up to the relay's head when we
subscribed; at most 5 s), print ``executor: ready``, then run until SIGINT/SIGTERM.

Relays: signals (from the last handled sequence after a restart; a fresh store starts where
``signals_from`` says, and a start from now is recorded as the position at once); market data
(from the oldest retained message by default: the pool state is rebuilt from snapshots and
updates); the execution relay, EmergencyStop/Resume (from the last applied sequence, else from the
oldest) and, with ``[cross_chain] rebalancer_source_id``, the rebalancer's ``OwnerTxRequest`` (from the last
served, else from now: ``execution/owner.py``); results and the requests' answers are published there.

SIGHUP reloads the configuration: ``[validation]``, ``[limits]``, ``[gas]``, ``[tip]`` and
``[submission]`` (``Executor.RELOADABLE``) apply from the next signal (a signal being executed
finishes under the configuration it started with); anything else (chain, node, contract, keystore,
mode, venues, relays) is refused with the reason logged and the running configuration kept.

With ``[cross_chain]``, every other chain's keystore is decrypted at start too, and each chain gets a
side (``execution.xchain.run.build_sides``: its own node, signer, nonce sequence and store rows; that
chain's transactions left open by a previous run are settled before the executor is ready);
``SignalKind.CROSS_CHAIN`` signals run on them (``specs/cross-chain-legs.md``).

Exit codes: 0 after SIGINT/SIGTERM, 2 on a bad configuration or keystore.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

import httpx
import trio
from eth_account.signers.local import LocalAccount

from chain.rpc import HttpRpc, RpcFailure
from execution.cex.gateway import ApiCredentials, OrderGateway
from execution.chain import BuilderClient, ChainGateway, node_rpc
from execution.config import ConfigError, ExecutorConfig, load_config
from execution.executor import Executor, _Queued
from execution.keystore import KeystoreError, keystore_address, load_account, new_keystore_main, read_password
from execution.owner import OwnerDesk
from execution.schedule import PoolScheduler, Ready, SignalCursor, in_flight_limit
from execution.store import ExecutorStore
from execution.validate import MalformedSignal, Signal
from execution.xchain.run import CrossChainRunner, build_sides
from protocol.execution import ExecutionResult, ExecutionStarted, Outcome, OwnerTxRequest
from protocol.header import Domain
from protocol.system import EmergencyStop, Resume
from relays.client import RelayConsumer, RelayProducer
from runtime.metrics import ProcessMetrics
from runtime.paths import socket_path
from runtime.process import ProcessMain, Work, add_process_arguments
from runtime.reload import ConfigReload

log = logging.getLogger("execution")
EXIT_CONFIG = 2
CHECKPOINT_INTERVAL_S = 1.0  # the store's WAL checkpoint, off the critical path (ExecutorStore.checkpoint)
KEEP_WARM_S = 30.0  # a request to an otherwise idle node, under the servers' idle timeouts (see _serve)


def relay_socket(config: ExecutorConfig, domain: Domain) -> str:
    return getattr(config.relays, domain.name.lower()) or str(socket_path(domain))


class _Metrics:
    """Executor families (see runtime/metrics/README.md); recorded per signal, never per market message."""

    def __init__(self, pm: ProcessMetrics) -> None:
        self.pm = pm  # also the relay clients' metrics= observer
        self.signals = pm.counter("alphapulse_executor_signals_received_total",
                                  "Signals (opportunities) received from the signal relay.")
        self.outcomes = pm.counter("alphapulse_executor_outcomes_total", "Signals ended, by outcome.", ["outcome"])
        for o in Outcome:
            self.outcomes.labels(outcome=o.name.lower())
        self.submitted = pm.counter("alphapulse_executor_submissions_total",
                                    "Transactions or bundles handed to the network or a builder (replacements too).")
        self.to_submit = pm.histogram("alphapulse_executor_signal_to_submit_seconds",
                                      "Signal received -> its first transaction or bundle submitted.")
        self.received: dict[int, float] = {}  # signal_id -> trio time received, until its first submit/result

    def on_signal(self, signal_id: int) -> None:
        self.signals.inc()
        self.received[signal_id] = trio.current_time()

    def on_publish(self, tlvs: Any) -> None:
        for tlv in tlvs if isinstance(tlvs, list) else (tlvs,):
            self._on_record(tlv)

    def _on_record(self, tlv: Any) -> None:
        kind = type(tlv)
        if kind is ExecutionStarted:
            self.submitted.inc()
            t0 = self.received.pop(tlv.signal_id, None)
            if t0 is not None:
                self.to_submit.observe(trio.current_time() - t0)
        elif kind is ExecutionResult:
            self.received.pop(tlv.signal_id, None)
            try:
                name = Outcome(tlv.outcome).name.lower()
            except ValueError:
                name = str(tlv.outcome)
            self.outcomes.labels(outcome=name).inc()


class _ProducerPublisher:
    def __init__(self, producer: RelayProducer, metrics: _Metrics | None = None) -> None:
        self.producer = producer
        self.metrics = metrics

    async def publish(self, tlv: Any) -> int:
        seq = await self.producer.publish(tlv)
        if self.metrics is not None:
            self.metrics.on_publish(tlv)
        return seq

    def next_source_seq(self) -> int:
        return self.producer.last_source_seq + 1


async def republish_unsent(store: ExecutorStore, producer: RelayProducer) -> int:
    """Publish again every result a previous run recorded but the relay never got: its source_seq is
    above the relay's ``Welcome.last_source_seq`` for us (``producer.last_source_seq`` right after
    connecting). Each gets its new sequence recorded before it is published, so a kill in between is
    handled the same way at the next start. Returns how many."""
    unsent = store.unsent_results(producer.last_source_seq)
    for signal_id, seq, payload in unsent:
        store.set_result_seq(signal_id, producer.last_source_seq + 1)
        await producer.publish_payload(payload)
        log.warning("executor: the result of signal %d (source_seq %d) never reached the relay; published again",
                    signal_id, seq)
    return len(unsent)


def cex_credentials(config: ExecutorConfig) -> ApiCredentials | None:
    """The exchange's API and signing keys from where ``[cex]`` names them (CredentialError when missing)."""
    c = config.cex
    if c is None:
        return None
    return ApiCredentials.load(key_env=c.key_env, key_file=c.key_file, hmac_env=c.hmac_env, hmac_file=c.hmac_file)


def unlock(config: ExecutorConfig) -> LocalAccount:
    """Decrypt the configured keystore (KeystoreError when the password or file is wrong)."""
    password = read_password(password_file=config.keystore.password_file, password_env=config.keystore.password_env)
    return load_account(config.keystore.path, password)


def unlock_chains(config: ExecutorConfig) -> dict[int, LocalAccount]:
    """Decrypt each ``[[cross_chain.chains]]`` keystore but the executor's own chain's (its key is
    :func:`unlock`'s): chain id -> account. KeystoreError names the file that did not open."""
    x = config.cross_chain
    out: dict[int, LocalAccount] = {}
    for c in x.chains if x is not None else ():
        if c.chain_id != config.chain_id:
            keystore_address(c.keystore.path)
            password = read_password(password_file=c.keystore.password_file, password_env=c.keystore.password_env)
            out[c.chain_id] = load_account(c.keystore.path, password)
    return out


async def run(config: ExecutorConfig, account: LocalAccount, pm: ProcessMetrics | None = None, *,
              reload: ConfigReload[ExecutorConfig] | None = None,
              task_status: trio.TaskStatus[Executor] = trio.TASK_STATUS_IGNORED,
              cex: ApiCredentials | None = None, chains: dict[int, LocalAccount] | None = None) -> None:
    # httpx logs every request at INFO: a log write per RPC, the simulation and the send among them, on the
    # critical path (and half of the executor's log); its warnings still show
    logging.getLogger("httpx").setLevel(logging.WARNING)
    store = ExecutorStore(config.state_db)
    side_rpcs: list[HttpRpc] = []
    rpc = node_rpc(config.rpc_url, timeout=10.0)
    builders = [BuilderClient(b.name, b.url, call_bundle=b.call_bundle) for b in config.builders]
    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0))  # the order gateway's; each order has its own deadline
    try:
        gateway = ChainGateway(rpc, account, chain_id=config.chain_id, contract=config.contract)
        if config.cex is not None and cex is None:
            cex = cex_credentials(config)
        orders = OrderGateway(config.cex.rest_url, cex, http) if config.cex is not None and cex is not None else None
        async with RelayProducer.connect(Domain.EXECUTION, relay_socket(config, Domain.EXECUTION),
                                         source_id=config.source_id, name=config.name,
                                         metrics=pm) as producer:
            await republish_unsent(store, producer)
            metrics = _Metrics(pm or ProcessMetrics("executor"))
            ex = Executor(config, gateway, store, _ProducerPublisher(producer, metrics), builders, orders)
            if config.cross_chain is not None:  # CROSS_CHAIN signals: one side per chain (execution/xchain/)
                sides, side_rpcs = build_sides(ex, chains if chains is not None else unlock_chains(config))
                for side in sides.values():
                    if side.config.chain_id != config.chain_id:
                        await side.recover()  # that chain's nonce sequence and transactions left open
                ex.xchain = CrossChainRunner(ex, sides)
            if reload is not None:
                reload.attach(ex.reconfigure)
            await _serve(ex, config, task_status, metrics)
    finally:
        for b in builders:
            await b.aclose()
        await http.aclose()
        for r in side_rpcs:
            await r.aclose()
        await rpc.aclose()
        store.close()


async def _serve(ex: Executor, config: ExecutorConfig, task_status: trio.TaskStatus[Executor],
                 metrics: _Metrics | None = None) -> None:
    store = ex.store
    send, recv = trio.open_memory_channel[_Queued](10_000)
    md_from = 0 if config.market_data_from == "oldest" else None
    stop_cursor = store.cursor("stops")
    sig_cursor = store.cursor("signals")
    observer = metrics.pm if metrics is not None else None
    async with trio.open_nursery() as nursery:
        md_ready = trio.Event()

        async def market_data() -> None:
            async with RelayConsumer.connect(Domain.MARKET_DATA, relay_socket(config, Domain.MARKET_DATA),
                                             from_seq=md_from, name=f"{config.name}-md", metrics=observer) as c:
                if md_from is None:
                    md_ready.set()  # from now: no backlog to catch up on
                async for batch in c.batches():
                    for msg in batch:
                        ex.on_market_data(msg)
                    # Ready once the backlog the relay held when we subscribed (its head in the
                    # Welcome) is applied: before that our pools are a past state of the market.
                    if not md_ready.is_set() and c.last_seq >= c.core.relay_head > 0:
                        md_ready.set()

        async def stops(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            start = 0 if stop_cursor is None else stop_cursor + 1
            async with RelayConsumer.connect(Domain.EXECUTION, relay_socket(config, Domain.EXECUTION),
                                             from_seq=start, types={EmergencyStop.TYPE, Resume.TYPE},
                                             name=f"{config.name}-stops", metrics=observer) as c:
                task_status.started()
                async for msg in c:
                    ex.on_control(msg)
                    store.set_cursor("stops", msg.domain_seq)

        async def signals(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            if sig_cursor is not None:
                start: int | None = sig_cursor + 1
            else:
                start = 0 if config.signals_from == "oldest" else None
            # critical: a signal is worth most the moment it is published (the market-data consumer above
            # stays normal: it must hold the signal's state before the signal arrives, but after the strategy)
            async with RelayConsumer.connect(Domain.SIGNAL, relay_socket(config, Domain.SIGNAL), from_seq=start,
                                             name=f"{config.name}-signals", latency="critical", metrics=observer) as c:
                # 'ready' must mean subscribed: from now starts where the relay reads our Subscribe
                await c.subscribed()
                if sig_cursor is None and start is None:
                    # A fresh store starting from now: make that position durable at once, so a restart
                    # before the first signal is handled resumes here instead of from a later 'now'
                    # (every signal published while we were down would never get an outcome).
                    store.set_cursor("signals", c.core.relay_head)
                task_status.started()
                async for msg in c:
                    received = time.time_ns()
                    try:
                        sig: Signal | None = Signal.from_message(msg)
                    except MalformedSignal as exc:
                        log.error("executor: signal message seq %d: %s", msg.domain_seq, exc)
                        sig = None
                    if sig is not None and metrics is not None:
                        metrics.on_signal(sig.signal_id)
                    halted = ex.halted_for(sig) if sig is not None else None
                    await send.send(_Queued(sig=sig, msg=msg, halted_by=halted, seq=msg.domain_seq, received_ns=received))

        async def owner_requests() -> None:
            # the rebalancer's transactions (execution/owner.py): from the last one served after a restart, else
            # from now (an old request in the journal is not this store's to serve; the rebalancer asks again)
            done = store.cursor("owner_requests")
            desk = OwnerDesk(ex)
            async with RelayConsumer.connect(Domain.EXECUTION, relay_socket(config, Domain.EXECUTION),
                                             from_seq=None if done is None else done + 1, types={OwnerTxRequest.TYPE},
                                             name=f"{config.name}-owner", metrics=observer) as c:
                async for msg in c:
                    for tlv in msg.tlvs:
                        if isinstance(tlv, OwnerTxRequest):
                            await ex.publisher.publish(await desk.serve(msg.source_id, tlv))
                    store.set_cursor("owner_requests", msg.domain_seq)

        async def worker() -> None:
            # Signals with pools disjoint from every signal in flight run at once (execution/schedule.py);
            # the durable cursor moves past a signal only once every signal before it has ended too.
            sched: PoolScheduler[_Queued] = PoolScheduler(limit=1)
            cursor = SignalCursor(sig_cursor)
            async with trio.open_nursery() as runs:

                def start(ready: list[Ready[_Queued]]) -> None:
                    for r in ready:
                        runs.start_soon(one, r.item, r.after_block)

                async def one(item: _Queued, after_block: int) -> None:
                    result = await ex.handle(item, after_block)
                    moved = cursor.ended(item.seq)
                    if moved is not None:
                        store.set_cursor("signals", moved)
                    sched.limit = in_flight_limit(ex.config.submission.max_in_flight, ex.mode)
                    start(sched.done(item.seq, result.block_number if result is not None else 0))

                async for item in recv:
                    cursor.delivered(item.seq)
                    sched.limit = in_flight_limit(ex.config.submission.max_in_flight, ex.mode)
                    pools = [int(h.pool) for h in item.sig.path.hops] if item.sig is not None else []
                    ready = sched.offer(item.seq, pools, item)
                    if not ready and item.sig is not None:
                        log.info("executor: signal %d %s", item.sig.signal_id,
                                 "waits for a pool in flight" if sched.contended(item.seq)
                                 else f"waits: {len(sched.in_flight)} signal(s) in flight, the limit")
                    start(ready)

        async def keep_warm() -> None:
            # between signals nothing else talks to the node (heads come from the market-data relay): a request
            # now and then keeps the kept-alive connection from a server's idle timeout (geth's: 120 s; hosted
            # endpoints' often 60 s), so a signal after a quiet spell does not pay a new connection
            while True:
                await trio.sleep(KEEP_WARM_S)
                try:
                    await ex.chain.rpc.call("eth_chainId", [])
                except RpcFailure as exc:
                    log.debug("executor: keep-alive request to the node failed: %s", exc)

        async def checkpoints() -> None:
            # the store's WAL into its file, in a worker thread (execution/store.py: never inside a commit of
            # the critical path); a second's commits at most wait in the WAL
            while True:
                await trio.sleep(CHECKPOINT_INTERVAL_S)
                await trio.to_thread.run_sync(store.checkpoint)

        nursery.start_soon(market_data)
        nursery.start_soon(checkpoints)
        nursery.start_soon(keep_warm)
        await nursery.start(stops)
        await ex.recover()
        with trio.move_on_after(5) as waited:
            await md_ready.wait()
        if waited.cancelled_caught:
            log.warning("executor: market-data backlog not applied within 5 s; starting anyway")
        await ex.xchain.recover()  # cross-chain signals cut by a restart: settled from both chains, ended once
        if config.cross_chain is not None and config.cross_chain.rebalancer_source_id:
            nursery.start_soon(owner_requests)  # the one signer of the owner account: after its nonces are settled
        nursery.start_soon(worker)
        await nursery.start(signals)
        addr = ex.chain.address
        print(f"executor: ready (mode {config.mode}, account {addr}, contract {config.contract}, next nonce "
              f"{ex.nonces.next})", flush=True)
        log.info("executor: ready")
        task_status.started(ex)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="alphapulse executor",
                                 description="Execute arbitrage signals through AlphaPulseArb. "
                                             "Subcommands: new-keystore, deploy-contract (see 'alphapulse executor "
                                             "new-keystore -h', 'alphapulse executor deploy-contract -h').")
    ap.add_argument("--config", required=True, help="executor TOML file")
    add_process_arguments(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "new-keystore":
        return new_keystore_main(argv[1:])
    if argv and argv[0] == "deploy-contract":
        from execution.deploy import main as deploy_main

        return deploy_main(argv[1:])
    args = build_parser().parse_args(argv)

    reload = ConfigReload("executor", args.config, load_config, Executor.RELOADABLE)

    def prepare() -> Work:
        config = reload.load_initial()
        keystore_address(config.keystore.path)
        account = unlock(config)
        creds = cex_credentials(config)  # a missing key is a configuration error, named, never shown
        chains = unlock_chains(config)  # each other chain's signer (CROSS_CHAIN signals)
        return lambda pm: run(config, account, pm, reload=reload, cex=creds, chains=chains)

    proc = ProcessMain("executor", "executor",
                       prepare_errors={(ConfigError, KeystoreError, OSError, ValueError, KeyError): EXIT_CONFIG})
    return proc.run(args, prepare, reload=reload)


__all__ = ["Outcome", "main", "run"]
