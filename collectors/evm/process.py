"""``alphapulse collector evm --config FILE``: the live EVM collector process (the trio shell).

Per configured chain, one task:

1. connect to the first endpoint (WebSocket if it has one, else HTTP), check the chain id,
   resolve the pools, and bootstrap: every pool's full state at the node's current head
   (``PoolSnapshot``s, one pinned block), then that head's ``BlockHeader``;
2. stream: ``eth_subscribe`` ``newHeads`` and ``logs`` (filtered by the pool addresses), or
   on an HTTP-only endpoint poll ``eth_getBlockByNumber("latest")`` + ``eth_getLogs`` for each
   new block range;
3. on any endpoint failure: publish ``StateInvalidation(DISCONNECT)`` for every pool, move to
   the next endpoint (in config order, wrapping round, exponential backoff after each full
   round), backfill the missed blocks with ``eth_getLogs`` and re-read every pool.

Every decision (ordering, dedup, gaps, reorgs) is made by ``follower.ChainFollower``; this module
only performs its actions: RPC calls and ``RelayProducer.publish``. JSON-RPC is spoken directly
(``chain.rpc``, ``chain.ws``): trio-websocket for subscriptions, chain.rpc's own h11 keep-alive
transport for HTTP (httpx only for a node behind an environment proxy).

Exit status: 0 on SIGINT/SIGTERM, 1 when no relay answers, 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

import trio
from trio.testing import wait_all_tasks_blocked

from chain.rpc import EndpointError, HttpRpc, RpcError, RpcFailure, batched
from chain.ws import WsRpc
from collectors.process import collector_main, collector_parser
from protocol.market import BlockHeader
from protocol.tlv import TLV
from runtime.errors import unwrap_group
from runtime.metrics import ProcessMetrics

from .bootstrap import ResolvedPool, read_units, resolve_pools
from .config import ChainConfig, CollectorConfig, ConfigError, load_config
from .follower import (
    Action,
    Backfill,
    ChainFollower,
    FetchHeaders,
    Header,
    Publish,
    PublishHeader,
    PublishUnit,
    Snapshot,
)

log = logging.getLogger("collectors.evm")

Publisher = Callable[..., Awaitable[int]]
BACKFILL_CHUNK = 2000  # blocks per eth_getLogs (providers cap the range)
HEALTHY_AFTER = 10.0  # a session that lasted this long resets the backoff
FEE_REFRESH_AFTER = 0.05  # seconds after a header before the priority-fee estimate is refreshed (no unit pending)
DRAIN_LIMIT = 0.002  # seconds per slice of waiting for this process to settle before looking at the stream again
DRAIN_PATIENCE = 0.05  # seconds at most a busy process waits for the rest of a transaction (see _drained)


class ChainRunner:
    """Follow one chain across endpoints; ``publish`` is ``RelayProducer.publish``'s signature."""

    def __init__(self, chain: ChainConfig, publish: Publisher, metrics: ProcessMetrics | None = None) -> None:
        self.chain = chain
        self.publish = publish
        self.follower: ChainFollower | None = None
        self.resolved: dict[int, ResolvedPool] = {}
        self.refused: list[tuple[Any, str]] = []  # V4 pools admission refused: (PoolKey, reason)
        self.addresses: list[str] = []
        self.started = False
        self.endpoint_index = 0
        self.sessions = 0
        self.failures = 0
        self.published = 0
        self.drain_cut = 0  # DRAIN_LIMIT slices a drain check waited through because the process was busy
        self._fee_method = "eth_maxPriorityFeePerGas"
        pm = metrics or ProcessMetrics("collector-evm")
        one = {"chain": chain.name}
        self._m_latency = pm.histogram(
            "alphapulse_collector_receive_to_publish_seconds",
            "Node data received (log or head notification, polled head) -> a message it caused published.",
            ["chain"]).labels(**one)
        self._m_published = pm.counter("alphapulse_collector_published_total", "Messages published, per chain.",
                                       ["chain"]).labels(**one)
        self._m_failures = pm.counter("alphapulse_collector_endpoint_failures_total", "RPC endpoint failures.",
                                      ["chain"]).labels(**one)
        # the priority-fee estimate headers carry: asked for the first header, then refreshed beside the
        # stream (_fee_refresher) after each header where no unit is pending, so no RPC round trip holds
        # a header or the logs behind it, and no request's CPU work runs beside a unit
        self._fee: int | None = None
        self._fee_due = math.inf  # trio time from which a refresh is due (inf: none)
        self._fee_wanted = trio.Event()
        self._bg: trio.Nursery | None = None

    async def run(self) -> None:
        chain = self.chain
        attempt = 0
        while True:
            endpoint = chain.endpoints[self.endpoint_index]
            began = trio.current_time()
            try:
                await self._session(endpoint)
            except BaseException as group:  # noqa: BLE001 - nurseries wrap; only endpoint failures are ours
                exc = unwrap_group(group)
                if not isinstance(exc, (EndpointError, RpcError)):
                    raise
                self.failures += 1
                self._m_failures.inc()
                log.warning("%s: endpoint %s failed: %s", chain.name, endpoint.label, exc)
                if self.follower is not None:
                    await self._execute(self.follower.on_disconnect(str(exc)), None, time.time_ns())
            if trio.current_time() - began > HEALTHY_AFTER:
                attempt = 0
            self.endpoint_index = (self.endpoint_index + 1) % len(chain.endpoints)
            if self.endpoint_index == 0 or len(chain.endpoints) == 1:
                delay = min(chain.backoff_max, chain.backoff_initial * 2 ** min(attempt, 20))
                attempt += 1
                await trio.sleep(delay)

    # ------------------------------------------------------------------ one connection

    async def _session(self, endpoint: Any) -> None:
        chain = self.chain
        async with AsyncExitStack() as stack:
            ws: WsRpc | None = None
            http: HttpRpc | None = None
            if endpoint.http:
                http = HttpRpc(endpoint.http, timeout=chain.rpc_timeout)
                stack.push_async_callback(http.aclose)
            if endpoint.ws:
                ws = await stack.enter_async_context(WsRpc.open(endpoint.ws, rpc_timeout=chain.rpc_timeout))
            rpc: HttpRpc | WsRpc = http or ws  # type: ignore[assignment]
            chain_id = int(await rpc.call("eth_chainId"), 16)
            if chain_id != chain.chain_id:
                raise EndpointError(f"{endpoint.label} serves chain {chain_id}, not {chain.chain_id}")
            if self.follower is None:
                pools = await resolve_pools(chain, rpc, self.refused)
                managers = sorted({p.manager for p in pools if p.key is not None})
                if len(managers) > 1:
                    raise ConfigError(f"chain {chain.name}: V4 pools of {len(managers)} PoolManagers ({managers}); "
                                      "one per chain")
                self.resolved = {int(p.pool): p for p in pools}
                self.follower = ChainFollower(chain.chain_id, [p.pool for p in pools], window=chain.reorg_window,
                                              unit=chain.publish_unit, v4_manager=managers[0] if managers else None)
                # the pools' contracts and the V4 PoolManager (whose logs of other pools are skipped)
                self.addresses = self.follower.decoder.addresses
            follower = self.follower
            follower.streaming = ws is not None
            subs: dict[str, str] = {}
            if ws is not None:
                subs[await ws.subscribe("newHeads")] = "head"
                subs[await ws.subscribe("logs", {"address": self.addresses})] = "log"
            latest = Header.from_rpc(await rpc.call("eth_getBlockByNumber", ["latest", False]), time.time_ns())
            self.sessions += 1
            log.info("%s: connected to %s (%s) at block %d", chain.name, endpoint.label,
                     "subscriptions" if ws else "polling", latest.number)
            if not self.started:
                await self._execute(follower.start(latest), rpc)
                self.started = True
            else:
                await self._execute(follower.on_connected(latest), rpc)
            async with trio.open_nursery() as bg:
                self._bg = bg
                self._fee_wanted = trio.Event()
                bg.start_soon(self._fee_refresher, rpc)
                try:
                    if ws is not None:
                        await self._stream(ws, rpc, subs)
                    else:
                        await self._poll(rpc)
                finally:
                    self._bg = None

    async def _stream(self, ws: WsRpc, rpc: HttpRpc | WsRpc, subs: dict[str, str]) -> None:
        follower = self.follower
        assert follower is not None
        tx_units = follower.unit == "tx"
        # A node sends a block's head before, between or after its logs. In "tx" units a head that comes
        # while its block's unit is being read, or with more of the stream right behind it (its block's
        # logs, perhaps), is held until the stream drains: the unit goes out first and the header's work
        # (~0.1-0.3 ms of CPU: parse, BlockHeader, encode, send) is off the log's path. Every header
        # still follows its block's logs and precedes the next block's (strategy/holdback.py).
        held: list[Header] = []
        quiet_until = trio.current_time() + self.chain.head_timeout
        while True:
            item = None
            with trio.move_on_at(min(quiet_until, self._fee_due)):
                try:
                    item = await ws.notifications.receive()
                except trio.EndOfChannel:
                    raise EndpointError(ws.broken or "subscription stream ended") from None
            if item is None:
                now = trio.current_time()
                if self._fee_due <= now < quiet_until:  # quiet since the last header: refresh the fee now
                    self._fee_check(now)
                    continue
                # quiet for a while: is the node still there, and did we miss a head?
                latest = Header.from_rpc(await rpc.call("eth_getBlockByNumber", ["latest", False]), time.time_ns())
                await self._execute(follower.on_head(latest), rpc)  # (nothing is held: a drain released it)
                quiet_until = trio.current_time() + self.chain.head_timeout
                continue
            rx = time.time_ns()  # the input arrived: its messages carry this as receive_time_ns
            sub, result = item
            kind = subs.get(sub)
            if kind == "head":
                head = Header.from_rpc(result, rx)
                pending = follower.pending_block
                if tx_units and (held or ws.backlog() or (pending is not None and head.number <= pending)):
                    held.append(head)
                else:
                    await self._execute(follower.on_head(head), rpc)
            elif kind == "log":
                await self._execute(follower.on_logs([result], rx), rpc)
            while held or (tx_units and follower.pending):
                # the transaction is complete when nothing more of the stream is in this process
                if ws.backlog() or not await self._drained(ws):
                    break  # more came: read it first
                if follower.pending:
                    await self._execute(follower.on_idle(), rpc)
                # the unit is out: the held head(s) now, in order; one may release logs that came early
                # (a later block's), which start a unit: drain again
                heads, held = held, []
                for head in heads:
                    await self._execute(follower.on_head(head), rpc)
            if not follower.pending:
                self._fee_check(trio.current_time())
            quiet_until = trio.current_time() + self.chain.head_timeout

    async def _drained(self, ws: WsRpc) -> bool:
        """Is the subscription drained (a pending transaction complete)? A node writes a block's logs back
        to back, but a message it wrote may still be on its way through this process: in the socket, in
        trio-websocket's reader, in chain.ws's reader, which hand messages on one per scheduler pass. Wait
        until every task here is blocked and a zero-timeout poll found no socket ready
        (``wait_all_tasks_blocked``: one pass when idle), then look: nothing queued means nothing is
        coming. A process kept busy by other work is not taken for a drained stream at once -- giving up
        after one DRAIN_LIMIT published the Sync and the Swap of one V2 transaction as two messages under
        load (the second log 6-10 ms behind, the header between them): the check goes on in DRAIN_LIMIT
        slices, each counted in ``drain_cut``, until the process is idle, more of the stream is here, or
        DRAIN_PATIENCE has passed (a process busy for longer than that publishes what it has: a
        transaction whose logs come further apart than that may still leave in two parts)."""
        give_up = trio.current_time() + DRAIN_PATIENCE
        while True:
            with trio.move_on_after(DRAIN_LIMIT) as scope:
                await wait_all_tasks_blocked()
            if not scope.cancelled_caught or ws.backlog():
                return not ws.backlog()
            self.drain_cut += 1
            if trio.current_time() >= give_up:
                log.debug("%s: stream taken as drained after %.0f ms of a busy process", self.chain.name,
                          DRAIN_PATIENCE * 1e3)
                return True

    async def _poll(self, rpc: HttpRpc | WsRpc) -> None:
        follower = self.follower
        assert follower is not None
        while True:
            await trio.sleep(self.chain.poll_interval)
            latest = Header.from_rpc(await rpc.call("eth_getBlockByNumber", ["latest", False]), time.time_ns())
            await self._execute(follower.on_head(latest), rpc)
            self._fee_check(math.inf)  # the poll's messages are out: if a header took the fee, refresh it now

    # ------------------------------------------------------------------ actions

    async def _emit(self, tlv: TLV | tuple[TLV, ...], event_time_ns: int | None, receive_time_ns: int) -> None:
        """Publish one message; ``receive_time_ns``: when the data it carries arrived from the node (its
        unit's first log, its head, the answer it came in; 0: now)."""
        rx = receive_time_ns or time.time_ns()
        await self.publish(tlv, event_time_ns=event_time_ns, receive_time_ns=rx)
        done = time.time_ns()
        self._m_latency.observe((done - rx) / 1e9)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("stage %s: received -> published %d us (%s)", self.chain.name, (done - rx) // 1000,
                      type(tlv[0] if isinstance(tlv, tuple) else tlv).__name__)
        self.published += 1
        self._m_published.inc()

    async def _execute(self, actions: Sequence[Action], rpc: HttpRpc | WsRpc | None, rx_ns: int = 0) -> None:
        """Carry out the follower's actions in order; ``rx_ns``: when the input that caused them arrived
        (for the messages that carry no arrival stamp of their own)."""
        follower = self.follower
        assert follower is not None
        queue: deque[Action] = deque(actions)
        fee: int | None = None
        while queue:
            act = queue.popleft()
            if isinstance(act, PublishUnit):
                await self._emit(act.tlvs, act.event_time_ns, act.receive_time_ns or rx_ns)
                continue
            if isinstance(act, Publish):
                await self._emit(act.tlv, act.event_time_ns, act.receive_time_ns or rx_ns)
                continue
            assert rpc is not None, f"{act} needs a connection"
            if isinstance(act, PublishHeader):
                if fee is None:
                    fee = await self._header_fee(rpc)
                h = act.header
                await self._emit(BlockHeader(chain_id=self.chain.chain_id, number=h.number, timestamp=h.timestamp,
                                             gas_limit=h.gas_limit, gas_used=h.gas_used,
                                             hash=bytes.fromhex(h.hash[2:]), parent_hash=bytes.fromhex(h.parent_hash[2:]),
                                             base_fee=h.base_fee, priority_fee=fee),
                                 h.timestamp * 1_000_000_000 or None, h.rx_ns or rx_ns)
            elif isinstance(act, Backfill):
                more: list[Action] = []
                lo = act.from_block
                while lo <= act.to_block:
                    hi = min(act.to_block, lo + BACKFILL_CHUNK - 1)
                    logs = await rpc.call("eth_getLogs", [{"fromBlock": hex(lo), "toBlock": hex(hi),
                                                           "address": self.addresses}])
                    more += follower.on_backfill(lo, hi, logs, time.time_ns())
                    lo = hi + 1
                queue.extendleft(reversed(more))
            elif isinstance(act, FetchHeaders):
                calls = [("eth_getBlockByNumber", [hex(n), False]) for n in act.numbers]
                got = await batched(rpc, calls, self.chain.batch_size)
                at = time.time_ns()
                canonical = {n: (Header.from_rpc(b, at) if b else None) for n, b in zip(act.numbers, got)}
                queue.extendleft(reversed(follower.on_headers(act.target, canonical)))
            elif isinstance(act, Snapshot):
                pools = [self.resolved[int(p)] for p in act.pools]
                curve: dict[Any, Any] = {}
                units = await read_units(rpc, pools, act.block, batch_size=self.chain.batch_size, curve=curve)
                at = time.time_ns()
                for pool, state in curve.items():  # the Curve pools' events apply from this state on
                    follower.curve.seed(pool, state)
                for unit in units:
                    await self._emit(unit if len(unit) > 1 else unit[0], None, at)

    async def _header_fee(self, rpc: HttpRpc | WsRpc) -> int:
        """The priority fee a header carries: the newest estimate, asked inline only while there is none
        (or outside a session's stream); otherwise the header leaves at once with it, and a refresh for
        the next header is due FEE_REFRESH_AFTER later (``_fee_check``). The RPC used to sit between every
        head notification and its header -- and the block's logs queued behind it."""
        if self._fee is None or self._bg is None:
            self._fee = await self._priority_fee(rpc)
        elif self._fee_due == math.inf:
            self._fee_due = trio.current_time() + FEE_REFRESH_AFTER
        return self._fee

    def _fee_check(self, now: float) -> None:
        """Start the due refresh. The stream calls it only where no unit is pending -- quiet for
        FEE_REFRESH_AFTER after a header, or drained after one -- so the request's own CPU work (an HTTP
        request is ~1 ms of it) runs beside no unit of ours; ``_poll`` after each poll."""
        if self._fee_due <= now and self._fee_due != math.inf:
            self._fee_due = math.inf
            self._fee_wanted.set()

    async def _fee_refresher(self, rpc: HttpRpc | WsRpc) -> None:
        """One refresh at a time, for as long as the session lasts."""
        while True:
            await self._fee_wanted.wait()
            self._fee_wanted = trio.Event()
            try:
                self._fee = await self._priority_fee(rpc)
            except RpcFailure as exc:  # an endpoint failing shows on the stream; the old estimate stays
                log.debug("%s: priority fee refresh failed: %s", self.chain.name, exc)

    async def _priority_fee(self, rpc: HttpRpc | WsRpc) -> int:
        """eth_maxPriorityFeePerGas, else the median reward of the last block from eth_feeHistory, else 0."""
        if self._fee_method == "eth_maxPriorityFeePerGas":
            try:
                return int(await rpc.call("eth_maxPriorityFeePerGas"), 16)
            except RpcError:
                self._fee_method = "eth_feeHistory"
        if self._fee_method == "eth_feeHistory":
            try:
                hist = await rpc.call("eth_feeHistory", ["0x1", "latest", [50]])
                return int(hist["reward"][-1][0], 16)
            except (RpcError, KeyError, IndexError, TypeError, ValueError):
                self._fee_method = "none"
        return 0


async def run(
    config: CollectorConfig,
    *,
    socket_path: str | None = None,
    metrics: ProcessMetrics | None = None,
    task_status: trio.TaskStatus[list[ChainRunner]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Publish every configured chain to the market-data relay until cancelled."""
    from relays.client import RelayProducer

    async with RelayProducer.connect(
        "market_data",
        socket_path or config.relay_socket,
        source_id=config.source_id,
        name="collector-evm",
        connect_timeout=config.relay_connect_timeout,
        metrics=metrics,
    ) as producer:
        runners = [ChainRunner(chain, producer.publish, metrics) for chain in config.chains]
        async with trio.open_nursery() as nursery:
            for runner in runners:
                nursery.start_soon(runner.run)
            task_status.started(runners)


def build_parser() -> argparse.ArgumentParser:
    return collector_parser("alphapulse collector evm",
                            "Follow EVM chains (Uniswap V2/V3/V4 and Curve StableSwap pools) into the market-data relay.",
                            config_help="TOML configuration (see collectors/evm/README.md)")


def main(argv: list[str] | None = None) -> int:
    return collector_main(build_parser(), argv, "collector-evm", load_config, run)


if __name__ == "__main__":
    sys.exit(main())
