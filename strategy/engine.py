"""The strategy as a sans-IO engine: protocol messages in, signal messages out.

``StrategyEngine(config).on_message(msg, now_ns)`` applies a market-data message to the pool
state, re-evaluates only the cycles through the pools it changed, sizes and prices the candidates
best estimate first (:mod:`strategy.search`, :mod:`strategy.economics`) and returns the signal
messages (domain 2) worth publishing, in the order chosen; ``signals(msg, now_ns)`` hands them out one
at a time, each as soon as it is decided, so the process publishes the first one before the other
candidates are sized. No sockets, no clocks (``now_ns`` is passed in), no logging: the trio process
(:mod:`strategy.process`) only moves messages between the relays and this object, and every
test drives it directly.

A signal message carries, in order: ``SignalIdentity`` (its id, kind, chain and the block its
state was computed at), ``Economics`` (every cost term), ``ArbitragePath`` (pool, kind, tokens
and exact amounts of each hop), ``TraceContext`` (continuing the trace of the market-data
message that caused it, or starting one there) and ``DecisionPoint`` (the last market event
applied to the state it was decided on).

Decisions are block-coherent: every record of a message is applied before anything is decided,
and the EVM collector publishes the logs of one transaction (or block) as one message, so the
intermediate states inside a transaction -- the first and second Swap of a three-hop arbitrage --
are never searched. Nor are the states between two transactions of a block when their messages arrive
together: ``coalesced_signals(msgs, now_ns)`` applies every message the process has already received
(:meth:`StrategyEngine.apply`, which returns the pools each touched) and decides once on the union
(:meth:`StrategyEngine.decide`), caused by the last message, the trace originating at the earliest.

System messages: a ``Resync`` (the relay could not serve what we missed) makes every pool stale
until fresh snapshots arrive; ``PoolSnapshot`` records in a system message are applied like
market data. Other domains are ignored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import fields
from itertools import chain as chained

from market.params import ChainParams, CurveParams, MarketParams
from market.state import PoolStateManager
from protocol.header import Domain
from protocol.ids import PoolId
from protocol.market import BlockHeader, PoolSnapshot
from protocol.message import Message
from protocol.signals import ArbitragePath, DecisionPoint, Economics, FlashLoan, SignalIdentity, SignalKind
from protocol.system import Resync, TraceContext
from strategy.cex_dex import CexDexEngine, CexDexParams
from strategy.config import StrategyConfig
from strategy.cross_chain_engine import CrossChainEngine
from strategy.economics import Assessment, assess, flash_choices
from strategy.graph import CycleIndex
from strategy.holdback import HoldBack
from strategy.search import Candidate, Opportunity, OpportunitySearch

_U64 = (1 << 64) - 1
_WHOLE_BLOCK = 0xFFFFFFFF  # DecisionPoint.log_index of a state read at the end of a block
_ORIGIN = (0, 0)  # the position of a chain nothing was applied from
_ADDRESS_MASK = (1 << 160) - 1  # a PoolId's low bits: the pool contract
TRACE_SAMPLED = 0x01
_DECIDED_DOMAINS = (Domain.MARKET_DATA, Domain.SYSTEM)  # what the engine applies; other domains are ignored


def market_params(config: StrategyConfig) -> MarketParams:
    """The pool state manager's parameters, from the strategy's configuration."""
    return MarketParams(
        chains=tuple(ChainParams(chain_id=c.chain_id, gas_token=c.gas_token, v2_fee_ppm=c.v2_fee_ppm)
                     for c in config.chains),
        curve_pools=tuple(CurveParams(chain_id=c.chain_id, address=c.address, amp=c.amp, rates=c.rates)
                          for c in config.curve_pools),
    )


def cex_dex_params(config: StrategyConfig) -> CexDexParams:
    """The CEX-DEX engine's parameters, from the strategy's configuration."""
    return CexDexParams(
        pairs=config.cex_dex, strategy_id=config.strategy_id, strategy=config.name, source_id=config.source_id,
        confidence_bps=config.confidence_bps, slippage_bps=config.economics.slippage_bps,
        gas_base=config.gas.base, gas_v2_hop=config.gas.v2_hop, gas_v3_hop=config.gas.v3_hop,
    )


class StrategyEngine:
    """Sans-IO arbitrage strategy. ``first_signal_id`` lets a restarted process avoid reusing ids
    (the process seeds it from the wall clock; tests leave it at 1)."""

    def __init__(self, config: StrategyConfig, *, first_signal_id: int = 1) -> None:
        self.config = config
        self.state = PoolStateManager(market_params(config))
        self.index = CycleIndex(
            base_tokens={c.chain_id: c.base_tokens for c in config.chains},
            max_hops=config.max_hops,
            max_cycles_per_pool=config.max_cycles_per_pool,
        )
        self.search = OpportunitySearch(
            self.state, self.index, max_sized=config.max_sized_per_update,
            gas_tokens={c.chain_id: c.gas_token for c in config.chains}, sizable=self._priceable,
        )
        self.stats: Counter[str] = Counter()
        self._next_signal_id = first_signal_id & _U64 or 1
        self._source_seq = 0
        self._apply: Callable[[object], PoolId | None] = self.state.apply
        self._trace_origin = 0  # the origin of the cross-chain signals of the decision under way (see decide)
        # per chain, the last (block, log index) applied: one engine may hold several chains' pools (the
        # market-data relay carries every chain's collector), and block numbers of two chains do not compare
        self.positions: dict[int, tuple[int, int]] = {}
        # [hold_back]: the pools of a published signal wait for its result (on_execution) or its timeout
        self.holds = HoldBack(self._caught_up, self.stats) if config.hold_back.enabled else None
        # CEX-DEX pairs ([[cex_dex]]): the same pool state, the same signal ids
        self.cex_dex = CexDexEngine(cex_dex_params(config), state=self.state,
                                    next_signal_id=self._take_signal_id) if config.cex_dex else None
        # cross-chain pairs ([cross_chain]): the same pool state (both chains'), the same signal ids
        self.cross_chain = CrossChainEngine(config, self.state, next_signal_id=self._take_signal_id,
                                            trace=self._trace, stats=self.stats,
                                            positions=self.positions, holds=self.holds) if config.cross_chain else None

    #: what ``reconfigure`` can change while running (``runtime.reload`` patterns, as the file
    #: writes them): thresholds and cost assumptions read at each decision. Everything else
    #: (chains, pools, shards, hops, ids, relays) shapes the state and the cycle index: restart.
    RELOADABLE = ("strategy.max_signals_per_update", "strategy.confidence_bps", "strategy.coalesce_max", "gas", "economics",
                  "hold_back.margin_ms", "hold_back.cycle_budget_ms",  # for the holds placed from then on
                  "chains[*].min_net_profit", "cex_dex[*].min_net_profit",
                  # [cross_chain]'s costs, threshold and inventory caps (the pairs, chains, clocks and sigma: restart)
                  "cross_chain.min_net_profit", "cross_chain.drift_k_milli", "cross_chain.bridge_fee_bps",
                  "cross_chain.bridge_gas_units", "cross_chain.rebalance_every", "cross_chain.chains[*].gas_units",
                  "cross_chain.chains[*].base_inventory", "cross_chain.chains[*].quote_inventory")

    def reconfigure(self, config: StrategyConfig) -> None:
        """Install a new configuration that differs only in :attr:`RELOADABLE` keys (SIGHUP): the
        next decision uses it; state, cycles and signal ids carry on."""
        self.config = config
        if self.cex_dex is not None:
            self.cex_dex.params = cex_dex_params(config)
        if self.cross_chain is not None:
            self.cross_chain.reconfigure(config)

    @property
    def position(self) -> tuple[int, int]:
        """The newest (block, log index) applied, for an engine of one chain (with several, the highest
        pair of any chain; a chain's own is ``positions[chain_id]``)."""
        return max(self.positions.values(), default=_ORIGIN)

    def _take_signal_id(self) -> int:
        signal_id = self._next_signal_id
        self._next_signal_id = (signal_id + 1) & _U64 or 1
        return signal_id

    def _caught_up(self, pool: PoolId, block: int) -> bool:
        """Whether the state applied includes ``block`` for ``pool``: the pool's last event is in that block
        or later, or its chain's newest header is past it (a block's logs come before the next header)."""
        s = self.state.pools.get(pool)
        if s is not None and s.last_event[0] >= block:
            return True
        gas = self.state.gas.get(pool.chain_id)
        return gas is not None and gas.block_number > block

    # --- the entry points ----------------------------------------------------------------------

    def on_execution(self, msg: Message) -> None:
        """Apply an execution-relay message (domain 3): the result of a signal this engine holds pools for
        starts their release ([hold_back]): :meth:`released_signals` re-sizes them at once when the market data
        already shows what landed, else the :meth:`on_message` that shows it does. Anything else (another
        strategy's results, ``ExecutionStarted``...) is ignored."""
        if self.holds is not None and msg.domain == Domain.EXECUTION:
            self.holds.on_records(msg.tlvs)

    def on_message(self, msg: Message, now_ns: int, *, decide: bool = True) -> list[Message]:
        """Apply ``msg``; return the signal messages it gives rise to (possibly none). ``decide=False``
        applies it only (old news: a restarted process catching up on the market would only search and
        size cycles to withhold the signals)."""
        return list(self.signals(msg, now_ns, decide=decide))

    def signals(self, msg: Message, now_ns: int, *, decide: bool = True) -> Iterator[Message]:
        """:meth:`on_message` for a process that publishes as it goes: ``msg`` is applied before this
        returns; the signals come one at a time, each as soon as it is decided, so the first can be
        published before the other candidates are sized (the cycle signals come first, in the order
        they were chosen, then the cross-chain and CEX-DEX ones)."""
        if msg.domain not in _DECIDED_DOMAINS:
            return iter(())
        touched = self.apply(msg, now_ns)
        if not decide:
            # old news: holds still time out (their pools are not re-sized now), marks are dropped
            self._release(now_ns, touched)
            if self.cex_dex is not None:
                self.cex_dex.evaluate(msg, now_ns, decide=False)
            if self.cross_chain is not None:
                self.cross_chain.decide(msg, now_ns, decide=False)
            return iter(())
        return self.decide(touched, msg, now_ns)

    def coalesced_signals(self, msgs: Sequence[Message], now_ns: int) -> Iterator[Message]:
        """:meth:`signals` for messages that arrived together (the process's consumer had them all buffered):
        each is applied in order, then one decision is taken on the state after the last, over the union of
        the pools they touched -- the collector publishes one message per transaction, and a decision between
        two of one block priced a state that no longer existed when our transaction landed (the executor's
        re-validation then found "path output changed", STALE). The cause (stamps, trace parent, the
        ``DecisionPoint``) is the last message; the trace's ``origin_ns`` is the earliest message's, so a
        log -> signal latency measured from it counts the wait of the first message's log. One message
        decides exactly as :meth:`signals`."""
        touched: list[PoolId] = []
        cause: Message | None = None
        origin = 0
        for msg in msgs:
            if msg.domain not in _DECIDED_DOMAINS:
                continue
            touched.extend(self.apply(msg, now_ns))
            o = _origin(msg)
            origin = o if cause is None else min(origin, o)
            cause = msg
        if cause is None:
            return iter(())
        return self.decide(touched, cause, now_ns, origin_ns=origin)

    def apply(self, msg: Message, now_ns: int) -> list[PoolId]:
        """Apply ``msg`` without deciding; the pools it changed that this engine's cycles go through, for a
        later :meth:`decide`. What it changed for the cross-chain pairs and the CEX-DEX pairs stays marked in
        those engines until that decision. Other domains than market data and system change nothing."""
        domain = msg.domain
        if domain == Domain.MARKET_DATA:
            records: tuple[object, ...] = msg.tlvs
        elif domain == Domain.SYSTEM:
            # A Resync means we missed messages; PoolSnapshots are applied wherever they come.
            for record in msg.tlvs:
                if type(record) is Resync:
                    self.state.invalidate_all("resync")
            records = tuple(r for r in msg.tlvs if type(r) is PoolSnapshot)
        else:
            return []
        touched: list[PoolId] = []
        apply = self._apply
        index = self.index
        positions = self.positions
        xc = self.cross_chain
        stamp = msg.receive_time_ns or now_ns  # the collector's receive time: sigma's clock
        for record in records:
            pool = apply(record)
            if pool is not None:
                at = (record.block_number, getattr(record, "log_index", _WHOLE_BLOCK))  # type: ignore[attr-defined]
                chain = pool.chain_id
                if at > positions.get(chain, _ORIGIN):
                    positions[chain] = at
                if xc is not None:
                    xc.on_pool(pool, stamp)  # whatever the shard: a cross-chain pool need not form cycles
                if pool not in index:
                    if not self._in_shard(pool):
                        continue
                    index.add_pool(pool)
                index.set_log_rates(pool, self.state.pools[pool].log_rates)
                touched.append(pool)
            elif xc is not None and type(record) is BlockHeader:
                xc.on_header(record.chain_id)  # a new gas price: that chain's pairs are re-sized
        if self.cex_dex is not None:
            self.cex_dex.apply_records(records, msg, touched)
        return touched

    def decide(self, touched: Iterable[PoolId], cause: Message, now_ns: int, *,
               origin_ns: int = 0) -> Iterator[Message]:
        """One decision on the state applied so far: the cycles through ``touched`` (what :meth:`apply`
        returned, for one message or several), the pools whose holds were released, the cross-chain and
        CEX-DEX pairs marked since the last decision. ``cause``: the last message applied; ``origin_ns``
        (0: the cause's own) the trace origin of the signals."""
        touched = list(dict.fromkeys(touched))  # a pool moved by several messages is searched once
        applied = len(touched)
        self._release(now_ns, touched)
        cex: list[Message] = []
        if self.cex_dex is not None:
            self.cex_dex.apply_records((), cause, touched[applied:])  # released pools re-size their pairs too
            cex = self.cex_dex.evaluate(cause, now_ns)
        cross: list[Message] = []
        if self.cross_chain is not None:
            self._trace_origin = origin_ns  # the cross-chain engine builds its traces with self._trace
            try:
                cross = self.cross_chain.decide(cause, now_ns)
            finally:
                self._trace_origin = 0
        if not touched:
            return iter(cross + cex)
        return chained(self._decide(touched, cause, now_ns, origin_ns), cross, cex)

    def _release(self, now_ns: int, touched: list[PoolId]) -> bool:
        """Holds that resolved (result in, state caught up) or timed out: their pools join ``touched`` (and
        their cross-chain pairs are marked for re-sizing) to be re-sized by this decision. Whether any was."""
        if self.holds is None or not self.holds.holds:
            return False
        released = self.holds.poll(now_ns)
        if not released:
            return False
        if self.cross_chain is not None:
            self.cross_chain.release(released)
        seen = set(touched)
        touched.extend(p for p in released if p in self.index and p not in seen)
        return True

    def released_signals(self, cause: Message, now_ns: int) -> Iterator[Message]:
        """The signals on pools whose holds resolve *now*, between two market-data messages ([hold_back]): the
        result that resolves a hold usually arrives after the market data that shows what it landed (the
        executor reports once the receipt is in, the collector publishes the block's logs as it is mined), so
        the pools are re-sized at once, on the state of that whole block -- not at the next market-data
        message, which on a fast chain is the next block's header with that block's logs right behind it: a
        decision there is taken on the state the logs following supersede, and ends STALE at the executor.
        ``cause``: the execution-relay message that resolved them. Call it right after :meth:`on_execution`
        and only between two :meth:`signals` iterations (the search's lazy sizing is not re-entrant)."""
        touched: list[PoolId] = []
        if not self._release(now_ns, touched):
            return iter(())
        xc = self.cross_chain
        cross = xc.decide(cause, now_ns) if xc is not None else []
        if not touched:
            return iter(cross)
        return chained(self._decide(touched, cause, now_ns), cross)

    def _in_shard(self, pool: PoolId) -> bool:
        """A pool outside this process's shard (``[[chains]] pools``), or of a kind it does not trade
        (``[[chains]] kinds``), never joins a cycle."""
        chain = self.config.chain(pool.chain_id)
        return chain is None or chain.trades_in(int(pool) & _ADDRESS_MASK, int(pool.kind))

    # --- decisions -----------------------------------------------------------------------------

    def _decide(self, touched: list[PoolId], cause: Message, now_ns: int, origin_ns: int = 0) -> Iterator[Message]:
        """The cycle signals of one update, each yielded as soon as it is chosen.

        One signal per opportunity, not per path through it: two cycles through one pool compete for the
        same price gap (once one trades, the other's sizes are wrong), so the chosen paths share no pool,
        at most ``max_signals_per_update`` of them. The candidates are sized in the order of their
        estimated profit valued in the gas token (:meth:`strategy.search.OpportunitySearch.ranked`) and
        chosen greedily in that order: the first one that is worth a signal goes out before the next is
        sized, a later one only if it shares no pool with those chosen. Sizing stops once the set is full.
        """
        chosen = 0
        used: set[PoolId] = set()
        max_signals = self.config.max_signals_per_update
        for opp in self.search.on_update(touched):
            pools = opp.cycle.pools
            if not used.isdisjoint(pools):
                self.stats["overlapping"] += 1  # a pool of it is in a signal of this update already
                continue
            a = assess(opp, self.state, self.config)
            if a is None:
                self.stats["unpriced"] += 1  # no gas price yet, no route to price gas, or no flash source can lend
                continue
            if not a.worth_signalling:
                self.stats["below_threshold"] += 1
                continue
            if self.holds is not None and self.holds.held(pools):
                self.stats["held"] += 1  # a pool of it is in a signal still unresolved
                continue
            used.update(pools)
            chosen += 1
            self.stats["signals"] += 1
            signal = self._signal(opp, a, cause, now_ns, origin_ns)
            if self.holds is not None:
                hb = self.config.hold_back
                expires = now_ns + (hb.cycle_budget_ms + hb.margin_ms) * 1_000_000
                self.holds.hold(signal.tlvs[0].signal_id, pools, expires)  # type: ignore[attr-defined]
            yield signal
            if chosen == max_signals:
                break

    def _state_block(self, chain_id: int, pools_block: int) -> int:
        """The block whose state a signal on ``chain_id`` was computed at: its pools' newest event's block or,
        a node sending a block's logs before the next block's header, the block before the chain's newest
        header if later -- the rule of the cross-chain signals. A pool that has not moved for blocks is not
        old news: stamping its last event's block made the executor's age limit end every re-sizing of a
        quiet path STALE (a fast chain's head is many blocks past it), and its STALE result released the
        hold at once for the next header to signal it again."""
        gas = self.state.gas.get(chain_id)
        return max(pools_block, gas.block_number - 1) if gas is not None else pools_block

    def _priceable(self, cand: Candidate) -> bool:
        """Whether a candidate could be priced once sized (:func:`strategy.economics.assess`): its chain has
        a gas price, and a flash source can lend to its path (which depends on the path's pool kinds, not on
        the size). The others are counted ``unpriced`` without being sized."""
        chain_id = cand.cycle.chain_id
        chain = self.config.chain(chain_id)
        if chain is None or chain_id not in self.state.gas or not flash_choices(cand.states, 0, chain, self.config):
            self.stats["unpriced"] += 1
            return False
        return True

    def _signal(self, opp: Opportunity, a: Assessment, cause: Message, now_ns: int, origin_ns: int = 0) -> Message:
        signal_id = self._take_signal_id()
        self._source_seq += 1
        cycle = opp.cycle
        identity = SignalIdentity(
            signal_id=signal_id,
            strategy_id=self.config.strategy_id,
            kind=SignalKind.TWO_POOL if len(cycle) == 2 else SignalKind.CYCLE,
            confidence_bps=self.config.confidence_bps,
            chain_id=cycle.chain_id,
            block_number=self._state_block(cycle.chain_id, opp.block_number),
            strategy=self.config.name,
        )
        # the assessment carries every wire field of Economics under the same name
        economics = Economics(**{f.name: getattr(a, f.name) for f in fields(Economics)})
        hops = tuple(hop.to_wire(amount_in, amount_out)
                     for hop, (amount_in, amount_out) in zip(cycle.hops, opp.hop_amounts()))
        at = self.positions.get(cycle.chain_id, _ORIGIN)  # this cycle's chain: the others' blocks do not compare
        return Message(
            domain=Domain.SIGNAL,
            tlvs=(identity, economics, ArbitragePath(hops=hops), self._trace(cause, signal_id, origin_ns),
                  DecisionPoint(block_number=at[0], log_index=at[1]),
                  FlashLoan(source=a.flash_source)),
            source_id=self.config.source_id,
            source_seq=self._source_seq,
            event_time_ns=cause.event_time_ns,
            receive_time_ns=now_ns,
        )

    def _trace(self, cause: Message, span_id: int, origin_ns: int = 0) -> TraceContext:
        """The signal's trace: the cause's, continued, or one started at the cause. ``origin_ns`` (else the
        decision's, :meth:`decide`), when not 0, replaces the origin: a decision on several messages
        originates at the earliest of them."""
        origin_ns = origin_ns or self._trace_origin
        parent = cause.find(TraceContext)
        if isinstance(parent, TraceContext):
            return TraceContext(trace_id=parent.trace_id, span_id=span_id, flags=parent.flags,
                                parent_span_id=parent.span_id, origin_ns=origin_ns or parent.origin_ns)
        # No upstream trace: start one at the market-data message, identified by its producer and
        # sequence (unique on the bus), originating when it was received.
        trace_id = ((cause.source_id << 64) | cause.source_seq) or span_id
        return TraceContext(trace_id=trace_id, span_id=span_id, flags=TRACE_SAMPLED, parent_span_id=0,
                            origin_ns=origin_ns or _origin(cause))


def _origin(msg: Message) -> int:
    """When the trace of a signal caused by ``msg`` originates: its upstream trace's origin, else when it was
    received (its producer's receive stamp), else its event time."""
    parent = msg.find(TraceContext)
    if isinstance(parent, TraceContext):
        return parent.origin_ns
    return msg.receive_time_ns or msg.event_time_ns
