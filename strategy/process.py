"""``alphapulse strategy --config FILE``: the strategy as a process between two relays.

Consumes the market-data relay from the oldest retained message (so pool snapshots
published at the collector's start are applied), runs every message through the
sans-IO ``StrategyEngine`` and publishes the signals it returns on the signal relay.

With a ``[cross_chain]`` section (``strategy/config.py``) the same process finds cross-chain
opportunities: each chain's collector publishes on the one market-data relay this process reads,
and the engine re-sizes the configured pool pairs as either chain moves
(``strategy/cross_chain_engine.py``), publishing the cross-chain signal of ``specs/protocol.md``.

SIGHUP reloads the configuration file: thresholds and cost assumptions
(``StrategyEngine.RELOADABLE``) change for the next decision, anything else is refused with the
reason logged and the process keeps its running configuration (``runtime.reload``).

Decisions cover every market-data message already received: the messages the consumer holds behind
the one it hands out (``RelayConsumer.buffered``; the collector publishes one message per transaction,
and a block's arrive together) are applied first and one decision is taken on the state after the last
(``StrategyEngine.coalesced_signals``), at most ``[strategy] coalesce_max`` messages a decision. Nothing
is waited for: a message alone is decided at once. A message flagged REPLAYED is decided alone (in a
replay, what arrives together depends on the replay's speed). Which messages arrive together depends on
timing, so a live run whose decisions must not (one compared with its replay) sets ``coalesce_max = 1``.

Old news is never traded: while catching up on retained history (a message received
more than ``--max-age-ms`` before now), state is applied but no cycle is searched and no
signal published.
Messages flagged REPLAYED (``alphapulse replay``) are exempt, so a replay makes the
same decisions as the live run that recorded it (a live run with ``coalesce_max = 1``, see above).
Signal ids are seeded from the wall clock so a restarted process never reuses one. When the relay reports market data lost
to a resync, every pool is marked stale until fresh snapshots arrive.

With ``[hold_back] enabled = true`` the process also reads the execution relay (``[relays]
execution``), **from now**, for the ``ExecutionResult`` of the signals it published: until a signal's
result comes back (and the market data shows what it landed), or its timing budget plus ``margin_ms``
passes, its pools are not signalled again (``strategy/holdback.py``); a result whose landing the market data
already shows re-sizes them at once, and the signals that finds are published from the results task. From
now, because holds live in memory only: a restarted process knows none of its predecessor's signal ids, so
their holds are simply forgotten and their results (like every other strategy's) ignored; nothing older is
worth reading.
"""

from __future__ import annotations

import argparse
import logging
import time

import trio

from protocol.execution import ChainLegReport, ExecutionResult
from protocol.header import FLAG_REPLAYED, Domain
from relays.client import RelayConsumer, RelayProducer
from runtime.metrics import ProcessMetrics
from runtime.process import ProcessMain, Work, add_process_arguments
from runtime.reload import ConfigReload

from .config import ConfigError, StrategyConfig, load_config
from .engine import StrategyEngine

log = logging.getLogger("alphapulse.strategy")
_U62 = (1 << 62) - 1


async def run(config_path: str, *, max_age_ms: int, first_signal_id: int | None = None,
              metrics: ProcessMetrics | None = None, reload: ConfigReload[StrategyConfig] | None = None,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    cfg = reload.current if reload is not None and reload.current is not None else load_config(config_path)
    engine = StrategyEngine(cfg, first_signal_id=first_signal_id or (time.time_ns() & _U62))
    if reload is not None:
        reload.attach(engine.reconfigure)
    md_sock = cfg.relays.market_data or None
    sig_sock = cfg.relays.signal or None
    max_age_ns = max_age_ms * 1_000_000
    metrics = metrics or ProcessMetrics("strategy")
    async with RelayProducer.connect(Domain.SIGNAL, sig_sock, source_id=cfg.source_id, name=cfg.name,
                                     metrics=metrics) as producer:
        # critical: every swap log reaches a signal through this consumer, so the relay serves it before
        # the bookkeeping consumers of the same frames (specs/relay.md, "Fan-out order")
        async with RelayConsumer.connect(Domain.MARKET_DATA, md_sock, from_seq=0, name=cfg.name,
                                         latency="critical", metrics=metrics) as consumer:
            log.info("strategy %s running: market data %s -> signals %s", cfg.name,
                     md_sock or "default socket", sig_sock or "default socket")
            async with trio.open_nursery() as nursery:
                turn = _Turn()
                if engine.holds is not None:
                    # not awaited: market data is never held up by the execution relay (a hold times out)
                    nursery.start_soon(_results, engine, cfg, metrics, producer, turn)
                task_status.started()
                await _market_data(consumer, producer, engine, max_age_ns, metrics, turn)
                nursery.cancel_scope.cancel()


RESULT_WAIT_S = 0.05  # a result waits at most this long for the market-data loop to apply what has arrived


class _Turn:
    """The market-data loop's state, for the results task. ``deciding``: it is inside a decision (it hands out
    its signals one at a time with a publish, an await, between two, and the engine's lazy sizing is not
    re-entrant). ``idle``: it waits for the next message, everything that arrived applied. A result decides
    only when the loop is idle: the logs of the block our transaction landed in come as one message per
    transaction, and the result often arrives between two of them (the executor's receipt and the collector's
    logs race); deciding then priced half a block, which the executor, a millisecond later, no longer had."""

    __slots__ = ("deciding", "idle", "_went_idle")

    def __init__(self) -> None:
        self.deciding = False
        self.idle = False
        self._went_idle: trio.Event | None = None

    def waiting(self) -> None:
        """The market-data loop is about to wait for its next message."""
        self.idle = True
        if self._went_idle is not None:
            self._went_idle.set()
            self._went_idle = None

    async def market_idle(self) -> bool:
        """Wait until the market-data loop has applied every message that has arrived (at most
        ``RESULT_WAIT_S``); whether it had. The first checkpoint lets a loop woken by the same poll as us run
        first: ``idle`` is true only while the loop is blocked on its socket."""
        await trio.lowlevel.checkpoint()
        with trio.move_on_after(RESULT_WAIT_S):
            while not self.idle:
                if self._went_idle is None:
                    self._went_idle = trio.Event()
                await self._went_idle.wait()
        return self.idle


async def _results(engine: StrategyEngine, cfg: StrategyConfig, metrics: ProcessMetrics,
                   producer: RelayProducer, turn: _Turn) -> None:
    """[hold_back]: the execution relay's results, from now, into the engine. A result that resolves a hold
    (the market data already shows what it landed) re-sizes the pools at once and publishes what that finds
    (``StrategyEngine.released_signals``); one whose landing the market data does not show yet is released by
    the market-data message that does."""
    ex_sock = cfg.relays.execution or None
    m_results = metrics.counter("alphapulse_strategy_results_total", "execution-relay messages read for [hold_back]")
    async with RelayConsumer.connect(Domain.EXECUTION, ex_sock, from_seq=None, name=f"{cfg.name}-results",
                                     types={ExecutionResult.TYPE, ChainLegReport.TYPE}, metrics=metrics) as results:
        log.info("hold-back: results from %s (from now)", ex_sock or "default socket")
        async for msg in results:
            engine.on_execution(msg)
            m_results.inc()
            if engine.holds is None or not engine.holds.holds or not await turn.market_idle() or turn.deciding:
                continue  # nothing held, or the market-data loop busy: its next message releases them
            now = time.time_ns()
            turn.deciding = True
            try:
                # decided whole before the first publish: the market-data loop may run at any await below
                outs = list(engine.released_signals(msg, now))
            finally:
                turn.deciding = False
            for out in outs:
                await producer.publish(list(out.tlvs), event_time_ns=out.event_time_ns, receive_time_ns=time.time_ns())


async def _market_data(consumer: RelayConsumer, producer: RelayProducer, engine: StrategyEngine,
                       max_age_ns: int, metrics: ProcessMetrics, turn: _Turn | None = None) -> None:
    published = old_news = 0
    turn = turn or _Turn()
    m_signals = metrics.counter("alphapulse_strategy_signals_total", "signals published")
    m_old_news = metrics.counter("alphapulse_strategy_old_news_total",
                                 "market-data messages applied without deciding: received over --max-age-ms ago")
    m_latency = metrics.histogram("alphapulse_strategy_update_to_decision_seconds",
                                  "market-data message received -> its first signal decided (without one: "
                                  "its decision done)")
    m_coalesced = metrics.histogram("alphapulse_strategy_messages_per_decision",
                                    "market-data messages applied before one decision (those already received "
                                    "together, at most [strategy] coalesce_max)", buckets=(1, 2, 3, 4, 8, 16, 32, 64))
    last_report = time.monotonic()
    lost = 0
    turn.waiting()
    async for msg in consumer:
        turn.idle = False
        now = time.time_ns()
        if consumer.core.counters.lost != lost:
            # The relay could not serve what we missed (retention): every pool may have
            # changed unseen, so nothing is traded until fresh snapshots arrive.
            lost = consumer.core.counters.lost
            engine.state.invalidate_all("relay_resync")
            log.warning("market data lost on resync (%d messages in total): all pools stale", lost)
        if max_age_ns and not msg.flags & FLAG_REPLAYED and now - msg.receive_time_ns > max_age_ns:
            # Old news (a restart catching up on the market): applied, never decided on. Searching
            # it only to withhold the signals kept a restarted strategy minutes behind under load
            # (found by alphapulse chaos: it never caught up between two kills).
            engine.on_message(msg, now, decide=False)
            old_news += 1
            m_old_news.inc()
        else:
            # Coalescing: the messages already received behind this one (the collector publishes one per
            # transaction, and a block's come together) are applied first, then one decision is taken on the
            # state after the last of them -- never on a block's first transaction with its next already here
            # (priced on a state gone by the time ours lands: STALE). Nothing that has not arrived is waited
            # for, so a lone message is decided at once; at most coalesce_max are taken, so a backlog still
            # decides every coalesce_max messages.
            # A replayed message is decided alone: what arrives together in a replay depends on its speed, not
            # on the market, and a replay makes the decisions of a run that decided every message. (A relay
            # carrying both: the messages behind a live one are taken whatever their flags.)
            msgs = [msg]
            coalesce_max = 1 if msg.flags & FLAG_REPLAYED else engine.config.coalesce_max
            while len(msgs) < coalesce_max and consumer.buffered:
                msgs.append(consumer.next_nowait())
            # Each signal is published as soon as the engine has decided it ("published": stamped after
            # its decision, as it leaves), before the engine sizes the next candidate: the first signal
            # never waits for the others' sizing.
            first = n = 0
            turn.deciding = True
            outs = engine.signals(msg, now) if len(msgs) == 1 else engine.coalesced_signals(msgs, now)
            for out in outs:
                decided = time.time_ns()
                if not n:
                    first = decided
                    m_latency.observe((decided - now) / 1e9)
                await producer.publish(list(out.tlvs), event_time_ns=out.event_time_ns,
                                       receive_time_ns=decided)
                n += 1
                published += 1
                m_signals.inc()
            turn.deciding = False
            m_coalesced.observe(len(msgs))
            if not n:
                m_latency.observe((time.time_ns() - now) / 1e9)
            if n and log.isEnabledFor(logging.DEBUG):
                log.debug("stage: md seq %d: collector stamp -> received %d us, first signal decided in %d us, "
                          "%d signal(s) decided and published in %d us, on %d message(s) (seq %d..%d)",
                          msgs[-1].domain_seq, (now - msg.receive_time_ns) // 1000, (first - now) // 1000, n,
                          (time.time_ns() - now) // 1000, len(msgs), msg.domain_seq, msgs[-1].domain_seq)
        # The consumer hands out a read's messages without a checkpoint, and each decision is
        # CPU work: yield after every message, so that under load (a backlog of hundreds of
        # messages per read) /metrics, /healthz and SIGTERM are still served within a message's
        # time, not a whole backlog's (a scrape once timed out after 10 s at load 19 on 2 cores).
        await trio.lowlevel.checkpoint()
        if time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            log.info("seq %d: %d signals published, %d messages applied as old news; %s",
                     consumer.last_seq, published, old_news, dict(engine.stats))
        turn.waiting()  # the next message is awaited: if none has arrived, everything that has is applied


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse strategy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="strategy TOML file (see strategy/config.py)")
    ap.add_argument("--max-age-ms", type=int, default=2000,
                    help="publish no signal for market data received longer ago than this (0: no limit)")
    add_process_arguments(ap)
    args = ap.parse_args(argv)
    proc = ProcessMain("alphapulse strategy", "strategy", prepare_errors={(ConfigError, OSError): 2})
    reload = ConfigReload("strategy", args.config, load_config, StrategyEngine.RELOADABLE)

    def prepare() -> Work:
        reload.load_initial()  # refuse a bad file before connecting anywhere
        return lambda pm: run(args.config, max_age_ms=args.max_age_ms, metrics=pm, reload=reload)

    return proc.run(args, prepare, reload=reload)
