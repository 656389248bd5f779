"""``alphapulse risk --config FILE [--state FILE]``: the risk monitor process.

Consumes the three relay domains, feeds ``RiskEngine`` (the sans-IO core), and carries out
its actions: a tripped breaker is persisted (SQLite), published as an ``EmergencyStop`` on
the execution relay, logged, and alerted through the webhook (queued: an alert never delays
a stop). Operator ``Resume`` messages arrive on the execution relay and are applied, logged
and persisted the same way.

Restart behaviour: tripped stops are loaded from the state file (and re-published with their
original stop ids when ``risk.reassert_on_start``); the execution relay is resumed from the
last applied sequence, whose breaker state (daily P&L, failure windows) was committed in the
same transaction, so results and resumes that arrived while risk was down are applied once (a
fresh state starts the execution relay from now and records that position at once). Market data
and signals are consumed from now.

SIGHUP reloads the configuration: the breaker tables (``RiskEngine.RELOADABLE``) change in place,
anything else is refused with the reason logged and the running configuration kept.

A self-clearing breaker's stop (a stalled chain head advancing again, an overdue bridge transfer
landing, inventory back within its share) is lifted by risk itself: persisted as resumed, a
``Resume`` naming exactly that stop id published, logged (``CLEARED stop #N``) and alerted.

Exit codes: 0 after SIGINT/SIGTERM, 2 on a bad configuration.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from protocol.header import Domain
from protocol.message import Message
from relays.client import RelayConsumer, RelayProducer
from runtime.metrics import ProcessMetrics
from runtime.paths import run_dir, socket_path
from runtime.process import ProcessMain, Work, add_process_arguments
from runtime.reload import ConfigReload

from .alerts import AlertSender
from .config import ConfigError, RiskConfig, load_config
from .engine import Action, Cleared, ForeignStop, Resumed, RiskEngine, Stop, cleared_resume, emergency_stop
from .state import RiskState

log = logging.getLogger("risk")

EXIT_CONFIG = 2
DOMAINS = (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION)


def default_state_path() -> Path:
    return run_dir() / "data" / "risk" / "state.sqlite"


def relay_socket(config: RiskConfig, domain: Domain) -> str:
    configured = getattr(config.relays, domain.name.lower())
    return configured or str(socket_path(domain))


class RiskMetrics:
    """Risk families (see runtime/metrics/README.md): per action, never per message."""

    def __init__(self, engine: RiskEngine, pm: ProcessMetrics) -> None:
        self.pm = pm
        self.trips = pm.counter("alphapulse_risk_breaker_trips_total", "Breakers tripped (EmergencyStop published).",
                                ["breaker"])
        for b in engine.breakers:
            self.trips.labels(breaker=b.name)
        self.stops = pm.counter("alphapulse_risk_stops_published_total",
                                "EmergencyStops published (re-assertions on start included).")
        self.resumes = pm.counter("alphapulse_risk_resumes_total", "Operator Resumes applied.")
        self.clears = pm.counter("alphapulse_risk_breaker_clears_total",
                                 "Stops lifted by their own breaker (its condition gone; Resume published).",
                                 ["breaker"])
        self.foreign = pm.counter("alphapulse_risk_foreign_stops_total", "EmergencyStops seen from other senders.")
        self.to_stop = pm.histogram("alphapulse_risk_message_to_stop_seconds",
                                    "Relay batch received -> the EmergencyStop it caused published.")
        pm.gauge("alphapulse_risk_tripped", "Stops in force now.").set_function(lambda: len(engine.tripped))


@dataclass
class RiskShell:
    """Carries out the engine's actions; holds what the trio tasks share."""

    engine: RiskEngine
    state: RiskState
    producer: RelayProducer
    alerts: AlertSender
    metrics: RiskMetrics
    consumers: dict[int, RelayConsumer] = field(default_factory=dict)
    stops_published: int = 0

    async def apply(self, actions: list[Action], received: float | None = None) -> None:
        m = self.metrics
        for a in actions:
            if isinstance(a, Stop):
                trip = a.trip
                if not a.reassert:
                    self.state.record_trip(trip, self.engine.next_stop_id)
                await self.producer.publish(emergency_stop(trip, self.engine.sender))
                self.stops_published += 1
                m.stops.inc()
                if not a.reassert:
                    m.trips.labels(breaker=trip.breaker).inc()
                    if received is not None:
                        m.to_stop.observe(trio.current_time() - received)
                verb = "re-asserted" if a.reassert else "EMERGENCY STOP"
                log.warning("%s %s", verb, trip.describe())
                if not a.reassert:
                    self.alerts.offer(f"AlphaPulse risk: EMERGENCY STOP {trip.describe()}")
            elif isinstance(a, Resumed):
                m.resumes.inc()
                self.state.record_resume(list(a.cleared), a.at_ns, a.sender, a.reason)
                ids = ", ".join(f"#{t.stop_id}" for t in a.cleared) or "nothing tripped"
                log.warning("RESUME by %r (scope %d/%d, stop %d, reason %r): cleared %s",
                            a.sender, a.scope, a.scope_value, a.stop_id, a.reason, ids)
                self.alerts.offer(f"AlphaPulse risk: resumed by {a.sender} ({a.reason}): cleared {ids}")
            elif isinstance(a, Cleared):
                trip = a.trip
                self.state.record_resume([trip], a.at_ns, self.engine.sender, f"cleared: {a.reason}")
                await self.producer.publish(cleared_resume(a, self.engine.sender))
                m.clears.labels(breaker=trip.breaker).inc()
                log.warning("CLEARED stop #%d [%s]: %s", trip.stop_id, trip.breaker, a.reason)
                self.alerts.offer(f"AlphaPulse risk: stop #{trip.stop_id} [{trip.breaker}] cleared: {a.reason}")
            elif isinstance(a, ForeignStop):
                m.foreign.inc()
                s = a.stop
                log.warning("EmergencyStop #%d from %r (scope %d/%d): %s", s.stop_id, s.sender, s.scope,
                            s.scope_value, s.reason)
                self.alerts.offer(f"AlphaPulse: EmergencyStop from {s.sender}: {s.reason}")

    async def on_messages(self, domain: Domain, msgs: list[Message]) -> None:
        engine = self.engine
        received = trio.current_time()
        for msg in msgs:
            await self.apply(engine.on_message(domain, msg, time.time_ns()), received)
            if domain == Domain.EXECUTION:
                self.state.record_execution(msg.domain_seq, engine.snapshot())

    async def consume(
        self, config: RiskConfig, domain: Domain, from_seq: int | None,
        *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        name = f"{config.risk.sender}-{domain.name.lower()}"
        async with RelayConsumer.connect(domain, relay_socket(config, domain), from_seq=from_seq, name=name,
                                         metrics=self.metrics.pm) as c:
            self.consumers[domain] = c
            if domain == Domain.EXECUTION and from_seq is None:
                # A fresh state starting from now: that position is durable at once, so a restart before
                # the first execution message resumes here, not from a later 'now' (results published
                # while risk was down would never reach the breakers).
                await c.subscribed()
                self.state.record_execution(c.core.relay_head, self.engine.snapshot())
            task_status.started()
            async for batch in c.batches():
                await self.on_messages(domain, batch)

    async def ticker(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            now = time.time_ns()
            actions = self.engine.on_timer(now)
            for domain, c in self.consumers.items():
                actions += self.engine.on_relay_counters(domain, c.counters, now)
            await self.apply(actions)


async def run(
    config: RiskConfig, state_path: str | os.PathLike[str], metrics: ProcessMetrics | None = None,
    *, reload: ConfigReload[RiskConfig] | None = None,
    task_status: trio.TaskStatus[RiskShell] = trio.TASK_STATUS_IGNORED,
) -> None:
    state = RiskState(state_path)
    try:
        engine = RiskEngine(config, trips=state.active_trips(), next_stop_id=state.get("next_stop_id", 1),
                            snapshot=state.get("snapshot"))
        exec_seq = state.get("execution_seq")
        if engine.tripped:
            log.warning("restored %d tripped stop(s) from %s", len(engine.tripped), state_path)
            for t in engine.tripped.values():
                log.warning("still tripped: %s", t.describe())
        alerts = AlertSender(config.alerts)
        pm = metrics or ProcessMetrics("risk")
        async with RelayProducer.connect(Domain.EXECUTION, relay_socket(config, Domain.EXECUTION),
                                         source_id=config.risk.source_id, name=config.risk.sender,
                                         metrics=pm) as producer:
            shell = RiskShell(engine=engine, state=state, producer=producer, alerts=alerts,
                              metrics=RiskMetrics(engine, pm))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(alerts.run)
                for domain in DOMAINS:
                    from_seq = exec_seq + 1 if domain == Domain.EXECUTION and exec_seq is not None else None
                    await nursery.start(shell.consume, config, domain, from_seq)
                if config.risk.reassert_on_start:
                    await shell.apply(engine.reassert())
                nursery.start_soon(shell.ticker, config.risk.timer_interval_s)
                if reload is not None:
                    reload.attach(engine.reconfigure)
                log.info("risk: watching %s; %d breaker(s): %s", ", ".join(d.name.lower() for d in DOMAINS),
                         len(engine.breakers), ", ".join(b.name for b in engine.breakers) or "none")
                task_status.started(shell)
    finally:
        state.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alphapulse risk", description="Run the risk monitor (circuit breakers).")
    p.add_argument("--config", required=True, help="TOML file (see risk/config.py)")
    p.add_argument("--state", help=f"SQLite state file (default: risk.state in the config, else {default_state_path()})")
    add_process_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    reload = ConfigReload("risk", args.config, load_config, RiskEngine.RELOADABLE)

    def prepare() -> Work:
        config = reload.load_initial()
        state_path = Path(args.state or config.risk.state or default_state_path())
        return lambda pm: run(config, state_path, pm, reload=reload)

    return ProcessMain("alphapulse risk", "risk", errors={ConfigError: EXIT_CONFIG}).run(args, prepare, reload=reload)


if __name__ == "__main__":
    sys.exit(main())
