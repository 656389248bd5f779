"""``RiskEngine``: the sans-IO core of the risk process.

Inputs (time always passed in as integer ns since the Unix epoch)::

    engine.on_message(domain, msg, now_ns)        -> list[Action]
    engine.on_timer(now_ns)                        -> list[Action]
    engine.on_relay_counters(domain, counters, now_ns) -> list[Action]

Outputs are actions the shell carries out, in order:

* ``Stop``: a breaker tripped. Persist it, publish ``EmergencyStop(scope, scope_value,
  stop_id, reason, sender)`` on the execution relay, log it, send the alert.
* ``Resumed``: an operator's ``Resume`` arrived on the execution relay; the listed trips are
  cleared (persist, log, alert).
* ``ForeignStop``: someone else (an operator's ``relay-cli stop``) published an
  ``EmergencyStop``; logged and alerted, nothing is tripped here.
* ``Cleared``: a self-clearing breaker (``breakers.SelfClearing``: a chain head advancing again, a
  bridge transfer landing, inventory back within its share) says the condition behind one of its
  stops in force is gone. Persist, publish ``Resume(scope, scope_value, stop_id, reason, sender)``
  for exactly that stop, log it, send the alert. Our own Resume coming back on the relay is ignored.

A tripped breaker stays tripped until resumed (or, for a self-clearing one, cleared): one
``(breaker, scope, scope_value)`` produces one stop, however often its condition is seen again. Stop ids come from a counter the shell
persists (``next_stop_id``), so they stay unique across restarts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocol.header import Domain
from protocol.message import Message
from protocol.system import EmergencyStop, Resume, StopScope

from .breakers import (
    Breach,
    Breaker,
    BridgeOverdue,
    ChainStall,
    Clear,
    DailyLoss,
    FailureRate,
    GasPrice,
    Inventory,
    LegOpen,
    RelayGaps,
    SelfClearing,
    StaleData,
    TradeSize,
    Volatility,
    XchainInventory,
)
from .config import RiskConfig


@dataclass(frozen=True, kw_only=True, slots=True)
class Trip:
    stop_id: int
    breaker: str
    scope: StopScope
    scope_value: int
    reason: str
    at_ns: int

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.breaker, int(self.scope), self.scope_value)

    def describe(self) -> str:
        where = "all" if self.scope == StopScope.ALL else f"{StopScope(self.scope).name.lower()} {self.scope_value}"
        return f"stop #{self.stop_id} [{self.breaker}] scope {where}: {self.reason}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Stop:
    trip: Trip
    reassert: bool = False  # re-publishing a persisted stop after a restart


@dataclass(frozen=True, kw_only=True, slots=True)
class Resumed:
    cleared: tuple[Trip, ...]
    scope: StopScope
    scope_value: int
    stop_id: int
    reason: str
    sender: str
    at_ns: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ForeignStop:
    stop: EmergencyStop
    at_ns: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Cleared:
    trip: Trip
    reason: str
    at_ns: int


Action = Stop | Resumed | ForeignStop | Cleared


# Every breaker kind, in the order the engine consults them; each is configured by the table of
# RiskConfig named like it (``Breaker.name``) and is off when that table is absent.
BREAKERS: tuple[type[Breaker], ...] = (DailyLoss, TradeSize, GasPrice, FailureRate, StaleData, RelayGaps, Volatility,
                                       Inventory, LegOpen, ChainStall, XchainInventory, BridgeOverdue)


def build_breakers(config: RiskConfig) -> list[Breaker]:
    out: list[Breaker] = []
    for kind in BREAKERS:
        cfg = getattr(config, kind.name)
        if cfg is not None:
            out.append(kind.build(cfg, config))
    return out


class RiskEngine:
    def __init__(
        self,
        config: RiskConfig,
        *,
        trips: Iterable[Trip] = (),
        next_stop_id: int = 1,
        snapshot: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.sender = config.risk.sender
        self.breakers = build_breakers(config)
        self.tripped: dict[tuple[str, int, int], Trip] = {t.key: t for t in trips}
        self.next_stop_id = max([next_stop_id, *(t.stop_id + 1 for t in self.tripped.values())])
        if snapshot:
            for b in self.breakers:
                if b.name in snapshot:
                    b.restore(snapshot[b.name])
        for b in self.breakers:
            self._adopt(b)

    #: what ``reconfigure`` can change while running (``runtime.reload`` patterns): the breakers'
    #: tables (limits, windows, thresholds; adding or removing a table turns a breaker on or off).
    #: The process's identity, its relays and alerting need a restart.
    RELOADABLE = tuple(kind.name for kind in BREAKERS)

    def reconfigure(self, config: RiskConfig) -> None:
        """Install a configuration that differs only in breaker tables (SIGHUP). A breaker whose table
        changed is rebuilt and restored from its persisted state (the day's P&L, the failure window),
        so no loss or failure is forgotten; its in-memory observations (staleness, price samples)
        start afresh. Stops in force stay in force (only a Resume clears them)."""
        old = {b.name: b for b in self.breakers}
        breakers: list[Breaker] = []
        for kind in BREAKERS:
            table = getattr(config, kind.name)
            if table is None:
                continue
            same = kind.name in old and getattr(self.config, kind.name) == table
            if same:
                breakers.append(old[kind.name])
                continue
            fresh = kind.build(table, config)
            if kind.name in old and (state := old[kind.name].snapshot()):
                fresh.restore(state)
            self._adopt(fresh)
            breakers.append(fresh)
        self.config = config
        self.breakers = breakers

    def _adopt(self, b: Breaker) -> None:
        """A self-clearing breaker learns its stops in force, so it can lift them once healthy."""
        if isinstance(b, SelfClearing):
            for t in self.tripped.values():
                if t.breaker == b.name:
                    b.adopt(t.scope, t.scope_value)

    # ---- inputs ----

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Action]:
        actions: list[Action] = []
        if domain == Domain.EXECUTION:
            for t in msg.tlvs:
                if type(t) is Resume and t.sender != self.sender:  # ours: a Cleared, already applied
                    actions.append(self._resume(t, now_ns))
                elif type(t) is EmergencyStop and t.sender != self.sender:
                    actions.append(ForeignStop(stop=t, at_ns=now_ns))
        breaches: list[Breach] = []
        for b in self.breakers:
            breaches += b.on_message(domain, msg, now_ns)
        return actions + self._trip(breaches, now_ns)

    def on_timer(self, now_ns: int) -> list[Action]:
        breaches: list[Breach] = []
        for b in self.breakers:
            breaches += b.on_timer(now_ns)
        return self._trip(breaches, now_ns)

    def on_relay_counters(self, domain: int, counters: Mapping[str, int], now_ns: int) -> list[Action]:
        breaches: list[Breach] = []
        for b in self.breakers:
            breaches += b.on_relay_counters(domain, counters, now_ns)
        return self._trip(breaches, now_ns)

    def reassert(self) -> list[Action]:
        """The still-tripped stops, to publish again after a restart (same stop ids)."""
        return [Stop(trip=t, reassert=True) for t in sorted(self.tripped.values(), key=lambda t: t.stop_id)]

    def snapshot(self) -> dict[str, Any]:
        """Execution-derived breaker state (daily P&L, failure windows) for persistence."""
        return {b.name: s for b in self.breakers if (s := b.snapshot())}

    # ---- internals ----

    def _trip(self, breaches: list[Breach], now_ns: int) -> list[Action]:
        out: list[Action] = []
        clears: list[Clear] = []
        for br in self.breakers:
            clears += br.take_clears()
        for c in clears:  # the clears first: a breaker's own breach of the same input stands after them
            trip = self.tripped.pop((c.breaker, int(c.scope), c.scope_value), None)
            if trip is not None:
                out.append(Cleared(trip=trip, reason=c.reason, at_ns=now_ns))
        for b in breaches:
            key = (b.breaker, int(b.scope), b.scope_value)
            if key in self.tripped:
                continue
            trip = Trip(stop_id=self.next_stop_id, breaker=b.breaker, scope=b.scope, scope_value=b.scope_value,
                        reason=b.reason, at_ns=now_ns)
            self.next_stop_id += 1
            self.tripped[key] = trip
            out.append(Stop(trip=trip))
        return out

    def _resume(self, r: Resume, now_ns: int) -> Resumed:
        scope = StopScope(r.scope) if r.scope in StopScope._value2member_map_ else r.scope
        cleared = []
        for key, trip in list(self.tripped.items()):
            if r.stop_id:
                hit = trip.stop_id == r.stop_id
            else:
                hit = scope == StopScope.ALL or (trip.scope == scope and trip.scope_value == r.scope_value)
            if hit:
                cleared.append(trip)
                del self.tripped[key]
        for trip in cleared:
            for b in self.breakers:
                if b.name == trip.breaker:
                    b.reset(trip.scope, trip.scope_value, now_ns)
        return Resumed(cleared=tuple(cleared), scope=scope, scope_value=r.scope_value, stop_id=r.stop_id,
                       reason=r.reason, sender=r.sender, at_ns=now_ns)


def emergency_stop(trip: Trip, sender: str) -> EmergencyStop:
    return EmergencyStop(scope=int(trip.scope), scope_value=trip.scope_value, stop_id=trip.stop_id,
                         reason=f"[{trip.breaker}] {trip.reason}"[:1000], sender=sender)


def cleared_resume(c: Cleared, sender: str) -> Resume:
    """The Resume that lifts exactly the cleared stop."""
    t = c.trip
    return Resume(scope=int(t.scope), scope_value=t.scope_value, stop_id=t.stop_id,
                  reason=f"[{t.breaker}] cleared: {c.reason}"[:1000], sender=sender)


__all__ = ["Action", "Cleared", "ForeignStop", "Resumed", "RiskEngine", "Stop", "Trip", "cleared_resume",
           "emergency_stop"]
