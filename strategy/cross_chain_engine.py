"""Cross-chain opportunities found live: the ``[cross_chain]`` part of the strategy engine (sans-IO).

The market-data relay carries both chains' records (each chain's collector publishes there, and
every pool id names its chain), so one :class:`~strategy.engine.StrategyEngine` holds both chains'
pools. For every record that changed a pool's tradable state the engine calls :meth:`on_pool`
(whatever the ``[[chains]]`` shard: a cross-chain pool need not form cycles); once the whole
message is applied -- the engine's block-coherent rule: never half a transaction -- it calls
:meth:`decide`, which re-sizes every configured pool pair one of whose pools changed, or on one of
whose chains a ``BlockHeader`` brought a new gas price (:meth:`on_header`; a collector publishes its
snapshots before its first header, so the first sizing of a pair can wait for a header):

* both directions (buy the base on either chain, sell it on the other) through
  :class:`~strategy.cross_chain.CrossChainSizer`, each leg with its chain's newest gas price
  (``BlockHeader``: base fee + priority fee), its gas token priced through that chain's pools, its
  configured gas units, block time and inclusion blocks, and the inventory caps of ``[cross_chain]``
  (configured, not read from the portfolio: the quote on the source chain, the base on the
  destination chain);
* σ measured from the market data: one :class:`~strategy.cross_chain.Volatility` per pool (window
  ``sigma_window_s``, floor ``sigma_floor_ppb``) fed the pool's zero-size marginal rate (base ->
  quote) at each change, timed by the collector's receive stamp (``receive_time_ns``: one wall clock
  for both chains; block timestamps are whole seconds, several of the fast chain's blocks share one);
  the pair's σ is the larger of its two pools' (the leg still open may be on either chain), every
  window advanced to the deciding message's stamp first;
* the better direction is published when its net profit reaches ``min_net_profit`` -- at most once
  per state of both pools (their ``last_event`` marks): a pair whose pools did not move is not
  signalled again, whatever else changed. Pairs that share a pool compete like cycles do: best net
  first, a pair sharing a pool with a chosen one is withheld.

The signal's layout is ``specs/protocol.md`` "Cross-chain signal" (``strategy.cross_chain.signal_tlvs``);
its ``SignalIdentity.block_number`` is the newest block of the source chain whose state is known (its
newest pool record's block, or the block before its newest header if later: a pair re-sized on a header
or on the other chain's news is not stale), its ``DecisionPoint`` the destination chain's newest
``(block, log_index)`` applied.

Nothing is counted silently: ``stats`` (the engine's counter) gets ``xc_*`` keys for every pair
not signalled and why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from market.state import PoolStateManager
from protocol.header import Domain
from protocol.ids import PoolId
from protocol.message import Message
from protocol.system import TraceContext

from .config import CrossChainChain, StrategyConfig
from .cross_chain import ChainLeg, CrossChainParams, CrossChainQuote, CrossChainSizer, Volatility, signal_tlvs
from .holdback import HoldBack

_ADDRESS_MASK = (1 << 160) - 1  # a PoolId's low bits: the pool contract (V4: the pool id's first 20 bytes)
_NS = 1_000_000_000


class CrossChainEngine:
    """The configured cross-chain pairs of one strategy: state per pool, decisions per message."""

    def __init__(self, config: StrategyConfig, state: PoolStateManager, *, next_signal_id: Callable[[], int],
                 trace: Callable[[Message, int], TraceContext], positions: dict[int, tuple[int, int]],
                 stats: Counter[str] | None = None, holds: HoldBack | None = None) -> None:
        xc = config.cross_chain
        if xc is None:
            raise ValueError("no [cross_chain] section")
        self.state = state
        self.reconfigure(config)
        self.stats: Counter[str] = stats if stats is not None else Counter()
        self._side = {c.chain_id: i for i, c in enumerate(xc.chains)}
        self._watch: dict[tuple[int, int], list[int]] = {}  # (chain, pool address) -> pair indices
        for i, addresses in enumerate(xc.pairs):
            for side, address in enumerate(addresses):
                self._watch.setdefault((xc.chains[side].chain_id, address), []).append(i)
        self.pools: list[list[PoolId | None]] = [[None, None] for _ in xc.pairs]  # as first seen
        self.vol: dict[PoolId, Volatility] = {}
        self.positions = positions  # chain -> newest (block, log_index) applied: the engine's, kept by it
        self._dirty: set[int] = set()  # pairs changed by the message being applied
        self._published: dict[int, tuple[tuple[int, int], tuple[int, int]]] = {}  # pair -> both pools' marks
        self._next_signal_id = next_signal_id
        self._trace = trace
        self._source_seq = 0
        self.holds = holds  # [hold_back]: the engine's; a pair with a pool in an unresolved signal is not sized

    def reconfigure(self, config: StrategyConfig) -> None:
        """Install a configuration whose ``[cross_chain]`` differs at most in the engine's RELOADABLE
        keys (costs, threshold, gas units, inventory caps): the next sizing uses them."""
        xc = config.cross_chain
        if xc is None:
            raise ValueError("no [cross_chain] section")
        self.config = config
        self.xc = xc
        self.params = CrossChainParams(bridge_id=xc.bridge_id, bridge_fee_bps=xc.bridge_fee_bps,
                                       bridge_gas_units=xc.bridge_gas_units, rebalance_every=xc.rebalance_every,
                                       drift_k_milli=xc.drift_k_milli, min_net_profit=xc.min_net_profit)

    # --- applying ------------------------------------------------------------------------------

    def on_pool(self, pool: PoolId, time_ns: int) -> None:
        """A record changed ``pool``'s tradable state; the message was stamped ``time_ns``."""
        chain = pool.chain_id
        pairs = self._watch.get((chain, int(pool) & _ADDRESS_MASK))
        if pairs is None:
            return
        side = self._side[chain]
        c = self.xc.chains[side]
        if {pool.token0, pool.token1} != {c.base_token, c.quote_token}:
            self.stats["xc_pool_not_the_pair"] += 1  # the configured address trades other tokens
            return
        snapshot = self.state.get(pool)
        if snapshot is None:
            return
        vol = self.vol.get(pool)
        if vol is None:
            vol = self.vol[pool] = Volatility(window_ns=self.xc.sigma_window_s * _NS, floor_ppb=self.xc.sigma_floor_ppb)
        vol.on_price(time_ns, *snapshot.marginal(pool.token0 == c.base_token))  # base -> quote
        for i in pairs:
            self.pools[i][side] = pool
            self._dirty.add(i)

    def on_header(self, chain_id: int) -> None:
        """A ``BlockHeader`` of ``chain_id`` was applied: its gas price is new (or the first), so every
        pair on that chain is re-sized -- a pair whose pools did not move is still never signalled twice."""
        side = self._side.get(chain_id)
        if side is not None:
            self._dirty.update(i for i, pools in enumerate(self.pools) if pools[side] is not None)

    def release(self, pools: list[PoolId]) -> None:
        """``pools`` were released by ``holds`` (their signal resolved or timed out): re-size their pairs."""
        released = set(pools)
        self._dirty.update(i for i, ps in enumerate(self.pools) if not released.isdisjoint(ps))

    def sigma_ppb(self, pair: int) -> int:
        """The pair's σ: the larger of its two pools' (the floor for a pool never priced)."""
        return max((self.vol[p].sigma_ppb if p in self.vol else self.xc.sigma_floor_ppb)
                   for p in self.pools[pair] if p is not None)

    # --- deciding ------------------------------------------------------------------------------

    def decide(self, cause: Message, now_ns: int, *, decide: bool = True) -> list[Message]:
        """The signals for the pairs the applied message changed (none with ``decide=False``)."""
        dirty, self._dirty = self._dirty, set()
        if not dirty or not decide:
            return []
        t = cause.receive_time_ns or now_ns
        for vol in self.vol.values():
            vol.advance(t)
        found: list[tuple[CrossChainQuote, int, tuple[tuple[int, int], tuple[int, int]], tuple[ChainLeg, ChainLeg]]] = []
        for i in sorted(dirty):
            pools = self.pools[i]
            if pools[0] is None or pools[1] is None:
                self.stats["xc_pair_incomplete"] += 1  # the other chain's pool not seen yet
                continue
            if self.holds is not None and self.holds.held(pools):  # type: ignore[arg-type]
                self.stats["xc_held"] += 1  # a signal on its pools is still unresolved: not re-sized meanwhile
                continue
            best: tuple[CrossChainQuote, int, tuple[ChainLeg, ChainLeg]] | None = None
            for source in (0, 1):
                sized = self._size(i, source)
                if sized is not None and (best is None or sized[0].net_profit > best[0].net_profit):
                    best = (sized[0], source, sized[1])
            if best is None:
                continue
            quote, source, legs = best
            if quote.net_profit < self.xc.min_net_profit:
                self.stats["xc_below_threshold"] += 1
                continue
            src_leg, dst_leg = legs
            marks = ((src_leg if source == 0 else dst_leg).pool.last_event,
                     (dst_leg if source == 0 else src_leg).pool.last_event)
            if self._published.get(i) == marks:
                self.stats["xc_repeat"] += 1  # this state of both pools was signalled already
                continue
            found.append((quote, i, marks, legs))
        found.sort(key=lambda f: (-f[0].net_profit, f[1]))
        out: list[Message] = []
        used: set[PoolId] = set()
        for quote, i, marks, (src, dst) in found:
            pair_pools = {src.pool.pool, dst.pool.pool}
            if not used.isdisjoint(pair_pools):
                self.stats["xc_overlapping"] += 1
                continue
            used |= pair_pools
            self._published[i] = marks
            signal = self._signal(quote, src, dst, cause, now_ns)
            out.append(signal)
            if self.holds is not None:
                # until its result (or its timing budget, both legs' time to land, plus the margin)
                budget_ms = quote.time_to_land_ms + self.config.hold_back.margin_ms
                self.holds.hold(signal.tlvs[0].signal_id, (src.pool.pool, dst.pool.pool),  # type: ignore[attr-defined]
                                now_ns + budget_ms * 1_000_000)
        self.stats["xc_signals"] += len(out)
        return out

    def _leg(self, c: CrossChainChain, pool: PoolId, sells_quote: bool) -> ChainLeg | None:
        snapshot = self.state.tradable(pool)
        if snapshot is None:
            self.stats["xc_not_tradable"] += 1  # stale (invalidated, resync) or empty
            return None
        gas = self.state.gas.get(c.chain_id)
        if gas is None:
            self.stats["xc_no_gas_price"] += 1  # no BlockHeader from this chain yet
            return None
        chain = self.config.chain(c.chain_id)
        assert chain is not None  # the loader refuses a [cross_chain] chain without [[chains]]
        sell = c.quote_token if sells_quote else c.base_token
        return ChainLeg(chain_id=c.chain_id, pool=snapshot, zero_for_one=pool.token0 == sell,
                        quote_token=c.quote_token, gas_token=chain.gas_token,
                        price_pools=tuple(self.state.tradable_pools_of_pair(chain.gas_token, c.quote_token)),
                        gas_units=c.gas_units, gas_price_wei=gas.total, block_time_ms=c.block_time_ms,
                        inclusion_blocks=c.inclusion_blocks)

    def _size(self, pair: int, source: int) -> tuple[CrossChainQuote, tuple[ChainLeg, ChainLeg]] | None:
        """Pair ``pair`` with the base bought on chain ``source`` (0 or 1) and sold on the other."""
        pools = self.pools[pair]
        src_c, dst_c = self.xc.chains[source], self.xc.chains[1 - source]
        src_pool, dst_pool = pools[source], pools[1 - source]
        assert src_pool is not None and dst_pool is not None
        src = self._leg(src_c, src_pool, sells_quote=True)
        dst = self._leg(dst_c, dst_pool, sells_quote=False) if src is not None else None
        if src is None or dst is None:
            return None
        try:
            sizer = CrossChainSizer(src, dst, self.params, self.sigma_ppb(pair))
        except ValueError:
            self.stats["xc_unpriced"] += 1  # no pool prices a chain's gas token in its quote token
            return None
        quote = sizer.best(src_c.quote_inventory, dst_c.base_inventory)
        if quote is None:
            self.stats["xc_no_opportunity"] += 1
            return None
        return quote, (src, dst)

    def _signal(self, quote: CrossChainQuote, src: ChainLeg, dst: ChainLeg, cause: Message, now_ns: int) -> Message:
        signal_id = self._next_signal_id()
        self._source_seq += 1
        cfg = self.config
        # the source chain's state is known up to its newest pool record and, a node sending a block's logs
        # before the next block's header, to the block before its newest header (a quiet pool is not old news)
        source_block = max(self.positions[src.chain_id][0], self.state.gas[src.chain_id].block_number - 1)
        tlvs = signal_tlvs(quote, src, dst, bridge_id=self.xc.bridge_id, signal_id=signal_id,
                           strategy_id=cfg.strategy_id, strategy=cfg.name, confidence_bps=cfg.confidence_bps,
                           source_block=source_block, dest_position=self.positions[dst.chain_id],
                           trace=self._trace(cause, signal_id))
        return Message(domain=Domain.SIGNAL, tlvs=tlvs, source_id=cfg.source_id, source_seq=self._source_seq,
                       event_time_ns=cause.event_time_ns, receive_time_ns=now_ns)
