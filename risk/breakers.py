"""The circuit breakers: small sans-IO state machines fed messages and times.

Theory of operation
-------------------
A breaker looks at the messages of the three domains (and, for relay health, the client
library's counters) and returns *candidates*: ``Breach(breaker, scope, scope_value, reason)``.
It never decides whether a stop is already in force -- ``RiskEngine`` keeps the tripped set,
drops candidates whose ``(breaker, scope, scope_value)`` is already tripped, assigns stop ids
and produces the actions. ``reset(scope, scope_value, now_ns)`` is called when an operator
resumes a stop, so a breaker re-arms from a clean window instead of re-tripping on stale
evidence (the daily loss breaker is the exception: a resume does not forgive the day's losses;
it trips again on the next result while the day is beyond its limit).

Everything that touches money or prices is integer arithmetic. The volatility breaker's
standard deviation is computed with numpy over integer returns (parts per billion): it is a
statistic for a halt decision, never an input to a trade.

Nothing here reads a clock: ``now_ns`` is passed in (integer ns since the Unix epoch).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from market.prices import pool_price_q96
from protocol.execution import (
    NO_NONCE,
    BridgeTransfer,
    BridgeTransferState,
    CexFill,
    CexOrderPurpose,
    ChainLegReport,
    DexLegResult,
    ExecutionResult,
    ExecutionStarted,
    LegReport,
    Outcome,
)
from protocol.header import Domain
from protocol.ids import PoolId, TokenId, Venue, code_name
from protocol.market import BlockHeader, Side, StateInvalidation
from protocol.message import Message
from protocol.signals import ArbitragePath, SignalIdentity
from protocol.system import StopScope
from runtime.assets import AssetMap

from .config import (
    BridgeOverdueConfig,
    ChainStallConfig,
    DailyLossConfig,
    FailureRateConfig,
    GasPriceConfig,
    InventoryConfig,
    LegOpenConfig,
    RelayGapsConfig,
    StaleDataConfig,
    TradeSizeConfig,
    VolatilityConfig,
    XchainInventoryConfig,
    parse_outcomes,
    parse_scope,
)

DAY_NS = 86_400 * 1_000_000_000
WEI_PER_ETH = 10**18
PPB = 10**9


@dataclass(frozen=True, kw_only=True, slots=True)
class Breach:
    breaker: str
    scope: StopScope
    scope_value: int
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Clear:
    """A self-clearing breaker's word that the condition behind ``(breaker, scope, scope_value)`` is gone."""

    breaker: str
    scope: StopScope
    scope_value: int
    reason: str


def venue_name(code: int) -> str:
    return code_name(Venue, code).lower()


class Breaker:
    name = ""

    @classmethod
    def build(cls, cfg: Any, config: Any) -> Breaker:
        """This breaker from its table ``cfg`` of the whole risk configuration ``config``."""
        return cls(cfg)  # type: ignore[call-arg]  # each kind takes its own config table

    def breach(self, scope: StopScope, scope_value: int, reason: str) -> Breach:
        """A candidate stop of ``(scope, scope_value)`` by this breaker."""
        return Breach(breaker=self.name, scope=scope, scope_value=scope_value, reason=reason)

    def take_clears(self) -> list[Clear]:
        """Conditions gone since the last call (a :class:`SelfClearing` breaker's; others never clear)."""
        return []

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Breach]:
        return []

    def on_timer(self, now_ns: int) -> list[Breach]:
        return []

    def on_relay_counters(self, domain: int, counters: Mapping[str, int], now_ns: int) -> list[Breach]:
        return []

    def reset(self, scope: StopScope, scope_value: int, now_ns: int) -> None:
        """An operator resumed ``(scope, scope_value)`` (ALL: everything)."""

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state derived from the execution domain (restored after a restart)."""
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        pass


def _applies(scope: StopScope, scope_value: int, my_scope: StopScope, my_value: int) -> bool:
    return scope == StopScope.ALL or (scope == my_scope and scope_value == my_value)


class SelfClearing(Breaker):
    """A breaker whose stop lifts itself when its condition goes away (``auto_clear``, on by default).

    It queues a :class:`Clear` on every transition back to healthy (and on the first healthy evidence after
    a start, so a stop restored from the state file is lifted too); the engine lifts its own stop of that
    key when one is in force, and ignores the Clear otherwise. With ``auto_clear = false`` only an operator's
    Resume lifts the stop, as for every other breaker.
    """

    def __init__(self, auto_clear: bool) -> None:
        self.auto_clear = auto_clear
        self._clears: list[Clear] = []
        self.breached: set[tuple[StopScope, int]] = set()  # what :meth:`settle` last found (or adopted)

    def clear(self, scope: StopScope, scope_value: int, reason: str) -> None:
        if self.auto_clear:
            self._clears.append(Clear(breaker=self.name, scope=scope, scope_value=scope_value, reason=reason))

    def take_clears(self) -> list[Clear]:
        out, self._clears = self._clears, []
        return out

    def adopt(self, scope: StopScope, scope_value: int) -> None:
        """A stop of ours already in force (restored after a restart, or a reload rebuilt us): the next
        :meth:`settle` that finds it healthy lifts it."""
        self.breached.add((scope, scope_value))

    def settle(self, now: Mapping[tuple[StopScope, int], str], healthy: str) -> list[Breach]:
        """The breaches found now (key -> reason); a key breached before and not now is cleared with ``healthy``."""
        for scope, value in self.breached - set(now):
            self.clear(scope, value, healthy)
        self.breached = set(now)
        return [self.breach(scope, value, reason) for (scope, value), reason in now.items()]


# ------------------------------------------------------------------ daily loss


class DailyLoss(Breaker):
    """Net realized P&L per profit token since the configured UTC day start.

    net = realized_profit - gas, gas = gas_used * effective_gas_price (wei) converted with the
    configured fixed rate ``gas_per_eth`` (profit-token base units per 1e18 wei), rounded up
    (so gas is never under-counted). A cross-chain result (with its ``ChainLegReport``s) counts both
    legs' gas and their unwinds' instead (each chain's gas token taken at the same rate). SIMULATED
    (shadow) results are ignored. Tokens without a configured limit are ignored. The day is taken
    from ``now_ns`` (when risk saw the result).
    """

    name = "daily_loss"

    def __init__(self, cfg: DailyLossConfig) -> None:
        self.limits = cfg.limits()
        self.offset = cfg.day_offset_ns
        self.scope = parse_scope(cfg.scope, (StopScope.ALL, StopScope.CHAIN), "daily_loss.scope")
        self.day = -1
        self.pnl: dict[TokenId, int] = {}

    def day_of(self, now_ns: int) -> int:
        return (now_ns - self.offset) // DAY_NS

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Breach]:
        if domain != Domain.EXECUTION:
            return []
        out = []
        for t in msg.tlvs:
            if type(t) is not ExecutionResult or t.outcome == Outcome.SIMULATED:
                continue
            limit = self.limits.get(t.profit_token)
            if limit is None:
                continue
            day = self.day_of(now_ns)
            if day != self.day:
                self.day, self.pnl = day, {}
            legs = [x for x in msg.tlvs if type(x) is ChainLegReport and x.signal_id == t.signal_id]
            if legs:
                gas_wei = sum(x.gas_used * x.effective_gas_price + x.unwind_gas_cost for x in legs)
            else:
                gas_wei = t.gas_used * t.effective_gas_price
            gas = -(-gas_wei * limit.gas_per_eth // WEI_PER_ETH)
            token = TokenId(t.profit_token)
            pnl = self.pnl[token] = self.pnl.get(token, 0) + t.realized_profit - gas
            if pnl <= -limit.max_loss:
                value = 0 if self.scope == StopScope.ALL else token.chain_id
                out.append(self.breach(
                    self.scope, value,
                    f"daily loss {-pnl} of token {token.chain_id}:{token.address} reached the limit "
                    f"{limit.max_loss} (signal {t.signal_id})",
                ))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"day": self.day, "pnl": {str(int(k)): v for k, v in self.pnl.items()}}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.day = int(state.get("day", -1))
        self.pnl = {TokenId(int(k)): int(v) for k, v in state.get("pnl", {}).items()}


# ------------------------------------------------------------------ trade size


class TradeSize(Breaker):
    """A signal whose first hop puts in more than the token's configured maximum."""

    name = "trade_size"

    def __init__(self, cfg: TradeSizeConfig) -> None:
        self.limits = cfg.limits()
        self.scope = parse_scope(cfg.scope, (StopScope.ALL, StopScope.CHAIN, StopScope.STRATEGY), "trade_size.scope")

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Breach]:
        if domain != Domain.SIGNAL:
            return []
        ident = msg.find(SignalIdentity)
        path = msg.find(ArbitragePath)
        if ident is None or path is None or not path.hops:
            return []
        hop = path.hops[0]
        token = TokenId((ident.chain_id << 160) | int.from_bytes(hop.token_in, "big"))
        limit = self.limits.get(token)
        if limit is None or hop.amount_in <= limit:
            return []
        value = {StopScope.ALL: 0, StopScope.CHAIN: ident.chain_id, StopScope.STRATEGY: ident.strategy_id}[self.scope]
        return [self.breach(
            self.scope, value,
            f"signal {ident.signal_id} ({ident.strategy or ident.strategy_id}) trades {hop.amount_in} of "
            f"{token.chain_id}:{token.address}, above the maximum {limit}",
        )]


# ------------------------------------------------------------------ gas price


class GasPrice(Breaker):
    """Base fee + priority fee of a new block, or an execution's max fee, above the ceiling."""

    name = "gas_price"

    def __init__(self, cfg: GasPriceConfig) -> None:
        self.cfg = cfg
        self.scope = parse_scope(cfg.scope, (StopScope.ALL, StopScope.CHAIN), "gas_price.scope")

    def _check(self, chain_id: int, price: int, what: str) -> list[Breach]:
        ceiling = self.cfg.ceiling(chain_id)
        if not ceiling or price <= ceiling:
            return []
        return [self.breach(
            self.scope, chain_id if self.scope == StopScope.CHAIN else 0,
            f"gas price {price} wei on chain {chain_id} ({what}) above the ceiling {ceiling}",
        )]

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Breach]:
        out: list[Breach] = []
        for t in msg.tlvs:
            if type(t) is BlockHeader:
                out += self._check(t.chain_id, t.base_fee + t.priority_fee, f"block {t.number} base+priority")
            elif type(t) is ExecutionStarted:
                out += self._check(t.chain_id, t.max_fee_per_gas, f"signal {t.signal_id} max fee")
        return out


# ------------------------------------------------------------------ failure rate


class FailureRate(Breaker):
    """Failures among the last N counted results (a count-based sliding window)."""

    name = "failure_rate"

    def __init__(self, cfg: FailureRateConfig) -> None:
        self.cfg = cfg
        self.failures = parse_outcomes(cfg.failure_outcomes, "failure_rate.failure_outcomes")
        self.counted = parse_outcomes(cfg.counted_outcomes, "failure_rate.counted_outcomes") | self.failures
        self.scope = parse_scope(cfg.scope, (StopScope.ALL, StopScope.CHAIN), "failure_rate.scope")
        self.windows: dict[int, deque[bool]] = {}

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Breach]:
        if domain != Domain.EXECUTION:
            return []
        out = []
        cfg = self.cfg
        for t in msg.tlvs:
            if type(t) is not ExecutionResult or t.outcome not in self.counted:
                continue
            key = t.chain_id if self.scope == StopScope.CHAIN else 0
            w = self.windows.get(key)
            if w is None:
                w = self.windows[key] = deque(maxlen=cfg.window)
            w.append(t.outcome in self.failures)
            n, bad = len(w), sum(w)
            if n >= cfg.min_results and bad * 10_000 >= cfg.max_failure_rate_bps * n:
                reason = (f"{bad} of the last {n} executions failed (limit {cfg.max_failure_rate_bps / 100:g} %); "
                          f"last: signal {t.signal_id} {_outcome_name(t.outcome)} {t.reason!r}")
                out.append(self.breach(self.scope, key, reason))
        return out

    def reset(self, scope: StopScope, scope_value: int, now_ns: int) -> None:
        for key in list(self.windows):
            if _applies(scope, scope_value, self.scope, key):
                del self.windows[key]

    def snapshot(self) -> dict[str, Any]:
        return {"windows": {str(k): [int(x) for x in w] for k, w in self.windows.items()}}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.windows = {
            int(k): deque((bool(x) for x in v), maxlen=self.cfg.window) for k, v in state.get("windows", {}).items()
        }


def _outcome_name(code: int) -> str:
    return code_name(Outcome, code)


# ------------------------------------------------------------------ stale market data


def message_venues(msg: Message) -> set[int]:
    """Venue codes a market-data message is an update from (pool updates and CEX records)."""
    out = set()
    for t in msg.tlvs:
        pool = getattr(t, "pool", None)
        if pool is not None and type(t) is not StateInvalidation:
            if pool:
                out.add(PoolId(pool).venue)
        else:
            venue = getattr(t, "venue", None)
            if venue is not None:
                out.add(int(venue))
    return out


class StaleData(Breaker):
    """A watched venue silent for longer than its window, measured on receive_time_ns vs now.

    Watched: the configured venues (from the moment the breaker first sees time, so a venue
    that never speaks also trips) and, when ``default_max_age_s`` > 0, every other venue once
    it has been seen.
    """

    name = "stale_data"

    def __init__(self, cfg: StaleDataConfig) -> None:
        self.windows = cfg.windows_ns()
        self.default_ns = int(cfg.default_max_age_s * 1e9)
        self.last_seen: dict[int, int] = {}
        self.started = 0

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Breach]:
        if not self.started:
            self.started = now_ns
        if domain != Domain.MARKET_DATA:
            return []
        at = msg.receive_time_ns or now_ns
        for v in message_venues(msg):
            if at > self.last_seen.get(v, 0):
                self.last_seen[v] = at
        return []

    def on_timer(self, now_ns: int) -> list[Breach]:
        if not self.started:
            self.started = now_ns
        out = []
        watched = dict(self.windows)
        if self.default_ns:
            for v in self.last_seen:
                watched.setdefault(v, self.default_ns)
        for venue, window in watched.items():
            last = self.last_seen.get(venue, self.started)
            if now_ns - last > window:
                never = venue not in self.last_seen
                reason = (f"no market data from venue {venue_name(venue)} for {(now_ns - last) / 1e9:.1f} s"
                          f"{' (never seen)' if never else ''}; window {window / 1e9:g} s")
                out.append(self.breach(StopScope.VENUE, venue, reason))
        return out

    def reset(self, scope: StopScope, scope_value: int, now_ns: int) -> None:
        for venue in set(self.windows) | set(self.last_seen):
            if _applies(scope, scope_value, StopScope.VENUE, venue):
                self.last_seen[venue] = max(self.last_seen.get(venue, 0), now_ns)


# ------------------------------------------------------------------ relay gaps


@dataclass(slots=True)
class _RelayHealth:
    gaps: int = 0
    recovered: int = 0
    resyncs: int = 0
    lost: int = 0
    pending_since: int = 0  # a gap not yet seen recovered, since


class RelayGaps(Breaker):
    """Unresolved sequence gaps and resyncs, from the relay client's counters.

    A resync (the relay no longer had what we asked for; ``lost`` messages skipped) is never
    resolved: it trips at once when ``trip_on_resync``. A gap (``gaps`` grew) is resolved when
    the client resumes at exactly the next sequence (``gaps_recovered`` grows); one still open
    after ``grace_s`` trips.
    """

    name = "relay_gaps"

    def __init__(self, cfg: RelayGapsConfig) -> None:
        self.cfg = cfg
        self.grace_ns = int(cfg.grace_s * 1e9)
        self.health: dict[int, _RelayHealth] = {}

    def on_relay_counters(self, domain: int, counters: Mapping[str, int], now_ns: int) -> list[Breach]:
        h = self.health.setdefault(int(domain), _RelayHealth())
        name = Domain(domain).name.lower()
        out = []
        gaps, rec = counters.get("gaps", 0), counters.get("gaps_recovered", 0)
        resyncs, lost = counters.get("resyncs", 0), counters.get("lost", 0)
        if self.cfg.trip_on_resync and (resyncs > h.resyncs or lost > h.lost):
            out.append(self.breach(
                StopScope.ALL, 0,
                f"{name} relay: {resyncs - h.resyncs} resync(s), {lost - h.lost} message(s) lost for good",
            ))
        if rec > h.recovered:
            h.pending_since = 0
        elif gaps > h.gaps and not h.pending_since:
            h.pending_since = now_ns
        if h.pending_since and now_ns - h.pending_since >= self.grace_ns:
            out.append(self.breach(
                StopScope.ALL, 0,
                f"{name} relay: sequence gap unresolved for {(now_ns - h.pending_since) / 1e9:.1f} s",
            ))
        h.gaps, h.recovered, h.resyncs, h.lost = gaps, rec, resyncs, lost
        return out

    def reset(self, scope: StopScope, scope_value: int, now_ns: int) -> None:
        for h in self.health.values():
            h.pending_since = 0


# ------------------------------------------------------------------ volatility


class Volatility(Breaker):
    """A pool's price move beyond ``max_sigma`` standard deviations of its recent moves.

    Returns are integer parts per billion between consecutive prices of one pool; the latest
    is compared with the sample standard deviation of the ``window`` returns before it (at
    least ``min_samples``). A perfectly flat history (stdev 0) gives no verdict.
    """

    name = "volatility"

    def __init__(self, cfg: VolatilityConfig) -> None:
        self.cfg = cfg
        self.scope = parse_scope(cfg.scope, (StopScope.ALL, StopScope.CHAIN, StopScope.VENUE), "volatility.scope")
        self.last: dict[int, int] = {}
        self.returns: dict[int, deque[int]] = {}

    def _scope_value(self, pool: PoolId) -> int:
        return {StopScope.ALL: 0, StopScope.CHAIN: pool.chain_id, StopScope.VENUE: pool.venue}[self.scope]

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Breach]:
        if domain != Domain.MARKET_DATA:
            return []
        out = []
        for t in msg.tlvs:
            pp = pool_price_q96(t)
            if pp is None:
                continue
            pool, price = pp
            prev = self.last.get(pool)
            self.last[pool] = price
            if not prev or not price:
                continue
            r = (price - prev) * PPB // prev
            hist = self.returns.get(pool)
            if hist is None:
                hist = self.returns[pool] = deque(maxlen=self.cfg.window)
            if len(hist) >= self.cfg.min_samples:
                sd = float(np.std(np.fromiter(hist, dtype=np.float64, count=len(hist)), ddof=1))
                if sd > 0 and abs(r) > self.cfg.max_sigma * sd:
                    out.append(self.breach(
                        self.scope, self._scope_value(pool),
                        f"pool {pool.address} ({venue_name(pool.venue)}, chain {pool.chain_id}) moved "
                        f"{r / 1e7:+.4f} % = {abs(r) / sd:.1f} sigma (limit {self.cfg.max_sigma:g}, "
                        f"sigma {sd / 1e7:.4f} % over {len(hist)} moves)",
                    ))
            hist.append(r)
        return out

    def reset(self, scope: StopScope, scope_value: int, now_ns: int) -> None:
        for pool in list(self.returns):
            if scope == StopScope.ALL or _applies(scope, scope_value, self.scope, self._scope_value(PoolId(pool))):
                del self.returns[pool]



# ------------------------------------------------------------------ inventory per venue


class Inventory(Breaker):
    """An asset's balance on a venue outside its configured bounds.

    Balances start at the configured ``start`` and move with what the executor reports on the execution relay:
    every ``CexFill`` moves the exchange's base and quote assets (a BUY adds base and spends quote, fee included),
    every ``LegReport`` whose DEX leg executed moves the chain's base and quote tokens. Assets without bounds are
    not tracked. An exchange asset trips a VENUE stop of that exchange, a chain token a CHAIN stop.
    """

    name = "inventory"

    def __init__(self, cfg: InventoryConfig) -> None:
        self.bounds = {b.key(): b for b in cfg.assets}
        self.balances: dict[tuple[int, str], int] = {k: b.start for k, b in self.bounds.items()}

    def _move(self, key: tuple[int, str], delta: int, why: str) -> list[Breach]:
        b = self.bounds.get(key)
        if b is None or not delta:
            return []
        bal = self.balances[key] = self.balances[key] + delta
        if b.min <= bal and (not b.max or bal <= b.max):
            return []
        venue, asset = key
        if venue:
            where, scope, value = f"{venue_name(venue)} {asset}", StopScope.VENUE, venue
        else:
            token = TokenId(int(asset))
            where, scope, value = f"chain {token.chain_id} token {token.address}", StopScope.CHAIN, token.chain_id
        bound = f"[{b.min}, {b.max if b.max else 'no max'}]"
        return [self.breach(scope, value, f"inventory of {where} is {bal}, outside {bound} after {why}")]

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Breach]:
        if domain != Domain.EXECUTION:
            return []
        out: list[Breach] = []
        for t in msg.tlvs:
            if type(t) is CexFill and t.base_units:
                sign = 1 if t.side == Side.BUY else -1
                why = f"signal {t.signal_id}'s {t.symbol} order {t.order_id}"
                out += self._move((t.venue, t.base_asset), sign * t.base_units, why)
                out += self._move((t.venue, t.quote_asset), -sign * t.quote_units, why)
            elif type(t) is LegReport and t.dex_result == DexLegResult.EXECUTED:
                sign = 1 if t.cex_side == Side.SELL else -1  # the DEX leg buys back what the CEX sold
                why = f"signal {t.signal_id}'s DEX leg"
                out += self._move((0, str(int(t.base_token))), sign * t.dex_base, why)
                out += self._move((0, str(int(t.quote_token))), -sign * t.dex_quote, why)
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"balances": [[v, a, b] for (v, a), b in self.balances.items()]}

    def restore(self, state: Mapping[str, Any]) -> None:
        for v, a, b in state.get("balances", []):
            if (int(v), str(a)) in self.bounds:
                self.balances[(int(v), str(a))] = int(b)


# ------------------------------------------------------------------ a leg left open


class LegOpen(Breaker):
    """A CEX-DEX leg left open: a signal ending LEG_OPEN (the executor gave up on closing its exchange position),
    or an exchange fill whose signal has no result within ``max_open_s`` (the executor is stuck or gone with a
    position open). Trips a VENUE stop of the exchange (or ALL). A cross-chain leg left open (its
    ``ChainLegReport`` LEG_OPEN with ``left_open``: the other leg failed and this one could not be swapped back)
    trips ALL: the position sits on a chain, not at a venue."""

    name = "leg_open"

    def __init__(self, cfg: LegOpenConfig) -> None:
        self.max_ns = int(cfg.max_open_s * 1e9)
        self.scope = parse_scope(cfg.scope, (StopScope.ALL, StopScope.VENUE), "leg_open.scope")
        self.open: dict[int, tuple[int, int]] = {}  # signal id -> (venue, first fill seen at)
        self.reported: set[int] = set()

    def _breach(self, venue: int, reason: str) -> Breach:
        return self.breach(self.scope, venue if self.scope == StopScope.VENUE else 0, reason)

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Breach]:
        if domain != Domain.EXECUTION:
            return []
        out = []
        reported = {t.signal_id for t in msg.tlvs if type(t) in (LegReport, ChainLegReport)}
        for t in msg.tlvs:
            if type(t) is ChainLegReport and t.outcome == Outcome.LEG_OPEN and t.left_open:
                token = TokenId(t.token_out)
                out.append(self.breach(StopScope.ALL, 0, (
                    f"signal {t.signal_id} left {t.left_open} of token {token.address} open on chain {t.chain_id} "
                    f"(cross-chain leg {t.leg}, its unwind failed): {t.reason}")))
            elif type(t) is CexFill and t.base_units and t.purpose == CexOrderPurpose.ENTRY:
                self.open.setdefault(t.signal_id, (t.venue, now_ns))
            elif type(t) is LegReport:
                self.open.pop(t.signal_id, None)
                if t.outcome == Outcome.LEG_OPEN:
                    out.append(self._breach(t.cex_venue, f"signal {t.signal_id} left {t.left_open} base units of "
                                                         f"{t.symbol} open on {venue_name(t.cex_venue)}"))
            elif type(t) is ExecutionResult:
                venue, _ = self.open.pop(t.signal_id, (0, 0))
                if t.outcome == Outcome.LEG_OPEN and t.signal_id not in reported:  # e.g. after an executor restart
                    out.append(self.breach(self.scope if venue else StopScope.ALL,
                                           venue if venue and self.scope == StopScope.VENUE else 0,
                                           f"signal {t.signal_id} ended LEG_OPEN: {t.reason}"))
        return out

    def on_timer(self, now_ns: int) -> list[Breach]:
        out = []
        for sid, (venue, since) in self.open.items():
            if now_ns - since > self.max_ns and sid not in self.reported:
                self.reported.add(sid)
                out.append(self._breach(venue, f"signal {sid} has had an exchange fill on {venue_name(venue)} for "
                                               f"{(now_ns - since) / 1e9:.1f} s without a result (limit "
                                               f"{self.max_ns / 1e9:g} s)"))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"open": [[sid, v, t] for sid, (v, t) in self.open.items()]}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.open = {int(sid): (int(v), int(t)) for sid, v, t in state.get("open", [])}


# ------------------------------------------------------------------ a chain whose head stopped


class ChainStall(SelfClearing):
    """A configured chain without a new head (a ``BlockHeader`` numbered above the highest seen) for longer
    than ``multiple`` times its block time, measured on receive_time_ns vs now (from the moment the breaker
    first sees time, so a chain that never speaks trips too). Trips a CHAIN stop of that chain; the next new
    head lifts it (``auto_clear``)."""

    name = "chain_stall"

    def __init__(self, cfg: ChainStallConfig) -> None:
        super().__init__(cfg.auto_clear)
        self.cfg = cfg
        self.windows = cfg.windows_ns()
        self.head: dict[int, int] = {}  # chain -> highest block number seen
        self.last_new: dict[int, int] = {}  # chain -> when that head arrived
        self.stalled: set[int] = set(self.windows)  # unknown after a start: the first head lifts a restored stop
        self.started = 0

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Breach]:
        if not self.started:
            self.started = now_ns
        if domain != Domain.MARKET_DATA:
            return []
        for t in msg.tlvs:
            if type(t) is not BlockHeader or t.chain_id not in self.windows or t.number <= self.head.get(t.chain_id, -1):
                continue
            chain = t.chain_id
            at = msg.receive_time_ns or now_ns
            since = self.last_new.get(chain)
            self.head[chain], self.last_new[chain] = t.number, max(at, since or 0)
            if chain in self.stalled:
                self.stalled.discard(chain)
                gap = f" after {(at - since) / 1e9:.1f} s without one" if since else ""
                self.clear(StopScope.CHAIN, chain, f"chain {chain} head advanced to block {t.number}{gap}")
        return []

    def on_timer(self, now_ns: int) -> list[Breach]:
        if not self.started:
            self.started = now_ns
        out = []
        for chain, window in self.windows.items():
            last = self.last_new.get(chain, self.started)
            if now_ns - last <= window:
                continue
            self.stalled.add(chain)
            head = self.head.get(chain)
            seen = f"last block {head}" if head is not None else "no block seen since risk started"
            out.append(self.breach(StopScope.CHAIN, chain, (
                f"chain {chain} head stalled: no new block for {(now_ns - last) / 1e9:.1f} s ({seen}); limit "
                f"{self.cfg.multiple:g} x {self.cfg.chains[str(chain)]:g} s block time = {window / 1e9:g} s")))
        return out

    def reset(self, scope: StopScope, scope_value: int, now_ns: int) -> None:
        for chain in self.windows:
            if _applies(scope, scope_value, StopScope.CHAIN, chain):
                self.last_new[chain] = max(self.last_new.get(chain, 0), now_ns)


# ------------------------------------------------------------------ inventory across chains


SEEN_KEPT = 10_000  # transfer states remembered for dedupe: far more than a republish after a restart reaches back


def _remember(seen: dict[str, None], key: str) -> None:
    """Add ``key`` to an insertion-ordered set, forgetting the oldest beyond ``SEEN_KEPT`` (the state is persisted
    with every execution message: it must not grow without bound)."""
    seen[key] = None
    while len(seen) > SEEN_KEPT:
        del seen[next(iter(seen))]


def _transfer_key(t: BridgeTransfer) -> str:
    """One bridge transfer, as the spec dedupes it: (source chain, nonce), or (source chain, transfer id)."""
    return f"{t.src_chain}:n{t.nonce}" if t.nonce != NO_NONCE else f"{t.src_chain}:t{t.transfer_id}"


class XchainInventory(SelfClearing):
    """One asset (``[[assets]]``) held too much on one chain: a chain's share of the asset's whole inventory
    (every chain's balance plus what is in flight on a bridge) above ``max_share_bps``.

    Balances start at the configured ``start`` per chain and move with the execution relay: every
    ``ChainLegReport`` whose swap (or unwind) EXECUTED moves its chain's tokens, every CEX-DEX ``LegReport`` whose
    DEX leg executed its chain's tokens, and every ``BridgeTransfer``: SENT takes ``amount`` off the source chain
    into flight, COMPLETED lands ``received`` on the destination (the fee is gone). Each transfer state and each
    leg counts once (a record republished after a restart of its publisher is a duplicate). Trips ALL (or, with ``scope = "chain"``, a CHAIN stop of the chain holding too much); lifts itself when
    every asset is back within its share (a rebalance landed)."""

    name = "xchain_inventory"

    @classmethod
    def build(cls, cfg: Any, config: Any) -> Breaker:
        return cls(cfg, config.asset_map())

    def __init__(self, cfg: XchainInventoryConfig, assets: AssetMap) -> None:
        super().__init__(cfg.auto_clear)
        self.scope = parse_scope(cfg.scope, (StopScope.ALL, StopScope.CHAIN), "xchain_inventory.scope")
        self.assets = assets
        self.bounds = {a.asset: a for a in cfg.assets}
        self.balances: dict[str, dict[int, int]] = {
            a.asset: {chain: a.start.get(str(chain), 0) for chain in assets.tokens(a.asset)} for a in cfg.assets}
        self.in_flight: dict[str, int] = dict.fromkeys(self.bounds, 0)
        # applied, oldest first (the last SEEN_KEPT): "<transfer key>:<state>", "leg:<signal>:<leg>", "dex:<signal>"
        self.seen: dict[str, None] = {}
        self.last_why = ""

    def _move(self, token: int, delta: int) -> bool:
        asset = self.assets.asset_of(token)
        if asset is None or asset not in self.bounds or not delta:
            return False
        chains = self.balances[asset]
        chain = TokenId(token).chain_id
        chains[chain] = chains.get(chain, 0) + delta
        return True

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Breach]:
        if domain != Domain.EXECUTION:
            return []
        moved = False
        for t in msg.tlvs:
            tp = type(t)
            if tp is ChainLegReport:
                if f"leg:{t.signal_id}:{t.leg}" in self.seen:  # the executor republished its result
                    continue
                _remember(self.seen, f"leg:{t.signal_id}:{t.leg}")
                if t.result == DexLegResult.EXECUTED:
                    moved |= self._move(int(t.token_in), -t.amount_in)
                    moved |= self._move(int(t.token_out), t.amount_out)
                if t.unwind_result == DexLegResult.EXECUTED:
                    moved |= self._move(int(t.token_out), -t.unwind_amount_in)
                    moved |= self._move(int(t.token_in), t.unwind_amount_out)
                self.last_why = f"signal {t.signal_id}'s cross-chain legs"
            elif tp is LegReport and t.dex_result == DexLegResult.EXECUTED and f"dex:{t.signal_id}" not in self.seen:
                _remember(self.seen, f"dex:{t.signal_id}")
                sign = 1 if t.cex_side == Side.SELL else -1
                moved |= self._move(int(t.base_token), sign * t.dex_base)
                moved |= self._move(int(t.quote_token), -sign * t.dex_quote)
                self.last_why = f"signal {t.signal_id}'s DEX leg"
            elif tp is BridgeTransfer:
                moved |= self._bridge(t)
        return self.evaluate() if moved else []

    def _bridge(self, t: BridgeTransfer) -> bool:
        key = _transfer_key(t)
        asset = self.assets.asset_of(int(t.src_token))
        if asset not in self.bounds or f"{key}:{t.state}" in self.seen:
            return False
        if t.state == BridgeTransferState.SENT or (t.state == BridgeTransferState.COMPLETED
                                                   and f"{key}:{int(BridgeTransferState.SENT)}" not in self.seen):
            self._move(int(t.src_token), -t.amount)
            self.in_flight[asset] += t.amount
            _remember(self.seen, f"{key}:{int(BridgeTransferState.SENT)}")
        if t.state == BridgeTransferState.COMPLETED:
            self.in_flight[asset] -= t.amount
            self._move(int(t.dst_token), t.received)
        _remember(self.seen, f"{key}:{t.state}")
        self.last_why = f"bridge transfer {t.transfer_id} {code_name(BridgeTransferState, t.state)}"
        return True

    def evaluate(self) -> list[Breach]:
        now: dict[tuple[StopScope, int], str] = {}
        for asset, chains in self.balances.items():
            bound = self.bounds[asset].max_share_bps
            flight = self.in_flight[asset]
            total = sum(chains.values()) + flight
            if total <= 0:
                continue
            for chain, bal in chains.items():
                if bal * 10_000 > bound * total:
                    key = (self.scope, chain if self.scope == StopScope.CHAIN else 0)
                    now.setdefault(key, (
                        f"{asset}: chain {chain} holds {bal * 100 / total:.1f} % of {total} ({bal}; {flight} in "
                        f"flight), above the bound {bound / 100:g} %, after {self.last_why or 'start'}"))
        return self.settle(now, "every asset is back within its share of the inventory")

    def on_timer(self, now_ns: int) -> list[Breach]:
        # a configured start already out of bounds trips at once; a restored stop the books no longer justify lifts
        return self.evaluate()

    def snapshot(self) -> dict[str, Any]:
        return {"balances": {a: {str(c): v for c, v in ch.items()} for a, ch in self.balances.items()},
                "in_flight": self.in_flight, "seen": list(self.seen)}

    def restore(self, state: Mapping[str, Any]) -> None:
        for a, chains in state.get("balances", {}).items():
            if a in self.balances:
                for c, v in chains.items():
                    if int(c) in self.balances[a]:
                        self.balances[a][int(c)] = int(v)
        for a, v in state.get("in_flight", {}).items():
            if a in self.in_flight:
                self.in_flight[a] = int(v)
        self.seen = dict.fromkeys(state.get("seen", []))


# ------------------------------------------------------------------ a bridge transfer overdue


class BridgeOverdue(SelfClearing):
    """A bridge transfer SENT and not COMPLETED within ``max_transfer_s`` of its send's block time (the inventory
    it carries is stuck). Trips a CHAIN stop of the destination chain (or ALL); lifts itself when no transfer to
    that scope is overdue any more (it completed). A transfer the rebalancer reports REFUSED or FAILED never left."""

    name = "bridge_overdue"

    def __init__(self, cfg: BridgeOverdueConfig) -> None:
        super().__init__(cfg.auto_clear)
        self.max_ns = int(cfg.max_transfer_s * 1e9)
        self.scope = parse_scope(cfg.scope, (StopScope.ALL, StopScope.CHAIN), "bridge_overdue.scope")
        self.open: dict[str, tuple[int, int, int, int, int]] = {}  # key -> (id, src, dst, amount, sent ns)
        self.done: dict[str, None] = {}  # completed keys, oldest first (a SENT replayed after its COMPLETED stays closed)

    def on_message(self, domain: int, msg: Message, now_ns: int) -> list[Breach]:
        if domain != Domain.EXECUTION:
            return []
        changed = False
        for t in msg.tlvs:
            if type(t) is not BridgeTransfer:
                continue
            key = _transfer_key(t)
            if t.state == BridgeTransferState.SENT and key not in self.done:
                self.open.setdefault(key, (t.transfer_id, t.src_chain, t.dst_chain, t.amount, t.sent_time_ns or now_ns))
            elif t.state == BridgeTransferState.COMPLETED:
                changed |= self.open.pop(key, None) is not None
                _remember(self.done, key)
        return self.evaluate(now_ns) if changed and self.breached else []

    def evaluate(self, now_ns: int) -> list[Breach]:
        now: dict[tuple[StopScope, int], str] = {}
        for tid, src, dst, amount, sent in self.open.values():
            if now_ns - sent > self.max_ns:
                now.setdefault((self.scope, dst if self.scope == StopScope.CHAIN else 0), (
                    f"bridge transfer {tid} (chain {src} -> {dst}, {amount} units) sent {(now_ns - sent) / 1e9:.1f} s "
                    f"ago and not completed; limit {self.max_ns / 1e9:g} s"))
        return self.settle(now, "no bridge transfer is overdue any more")

    def on_timer(self, now_ns: int) -> list[Breach]:
        return self.evaluate(now_ns)

    def snapshot(self) -> dict[str, Any]:
        return {"open": {k: list(v) for k, v in self.open.items()}, "done": list(self.done)}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.open = {k: tuple(int(x) for x in v) for k, v in state.get("open", {}).items()}  # type: ignore[misc]
        self.done = dict.fromkeys(state.get("done", []))
