"""Re-validation of a signal against the newest pool state, and the fee arithmetic. Pure functions.

A signal was priced at block ``B`` by the strategy. Before anything is signed the executor
re-prices it on *its own* view of the market (the market-data relay applied to a
:class:`market.state.PoolStateManager`, the same exact AMM mirrors the strategy uses):

* no chain head yet, or ``head - B > max_signal_age_blocks``: **STALE** (signal too old);
* a pool of the path unknown, invalidated or untradable: **STALE** (pool stale);
* any hop's exact output differs from the signal's: **STALE** (path output changed) - someone
  traded the pool since; we never trade on numbers we cannot reproduce to the wei;
* later, with gas estimated and fees chosen: net profit ``<= min_profit``: **UNPROFITABLE**.

A Curve hop names the pool's own coin indices ``i, j`` (``exchange(i, j, dx, min_dy)``), found from the
pool's coins in the pool's order as the executor's ``[[curve_pools]]`` lists them (a pool's coin 0 need not
be the lower address; a pool not listed there is **FAILED**).

A Uniswap V4 hop is addressed by its PoolKey: the currencies and fee and tick spacing come from the
pool's state, the hooks from the venue's configured ``hooks`` (or none) -- the one whose key hashes to
the pool id the instrument id carries. A V4 pool whose hooks are not configured is **FAILED**: the
executor trades only pools whose hooks its operator listed.

The calldata hops carry the re-computed amounts: hop 0's exact input, each hop's exact output as
its minimum (``amountOut``), and ``minProfit`` = ``onchain_min_profit_bps`` of the gross profit, so
a transaction that lands on moved state reverts instead of losing money.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chain.addresses import checksum
from execution.calldata import FlashSource, Hop, Kind, check_flash_source
from market.amm.pool_key import PoolKey
from market.path import Hop as MarketHop
from market.pools import NOT_FILLED, CurvePool, PoolState, V2Pool, V3Pool, V4Pool
from market.prices import convert_from_gas_token
from market.state import PoolStateManager
from protocol.execution import Outcome
from protocol.ids import PoolId, TokenId, VenueKind
from protocol.message import Message
from protocol.signals import ArbitragePath, Economics, FlashLoan, SignalIdentity
from protocol.signals import FlashSource as WireFlashSource
from protocol.signals import Hop as PathHop


class MalformedSignal(ValueError):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    identity: SignalIdentity
    economics: Economics
    path: ArbitragePath
    flash_source: int | None = None  # FlashLoan.source; None: the signal has no FlashLoan (the pools lend)

    @classmethod
    def from_message(cls, msg: Message) -> Signal:
        ident, econ, path = msg.find(SignalIdentity), msg.find(Economics), msg.find(ArbitragePath)
        if not isinstance(ident, SignalIdentity) or not isinstance(econ, Economics) or not isinstance(path, ArbitragePath):
            raise MalformedSignal("signal message lacks SignalIdentity, Economics or ArbitragePath")
        if len(path.hops) < 2:
            raise MalformedSignal(f"path of {len(path.hops)} hop(s)")
        flash = msg.find(FlashLoan)
        return cls(identity=ident, economics=econ, path=path,
                   flash_source=flash.source if isinstance(flash, FlashLoan) else None)

    @property
    def flash(self) -> FlashSource:
        """The contract's entry point for the signal's flash source (BALANCER: ``executeBalancer``;
        POOL, V4_UNLOCK or none: ``execute``, which picks between those from the hop kinds)."""
        if self.flash_source == WireFlashSource.BALANCER:
            return FlashSource.BALANCER
        return FlashSource.POOL

    @property
    def signal_id(self) -> int:
        return self.identity.signal_id

    @property
    def venues(self) -> list[int]:
        return [PoolId(h.pool).venue for h in self.path.hops]


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Either ``outcome`` (STALE/FAILED) with a reason, or the re-priced path."""

    outcome: Outcome | None
    reason: str
    head_block: int = 0
    hops: tuple[Hop, ...] = ()
    gross_profit: int = 0
    min_profit_onchain: int = 0
    flash: FlashSource = FlashSource.POOL


def profit_token_mismatch(sig: Signal) -> str | None:
    """Why the signal's ``profit_token`` cannot be right, or None.

    Gas, the flash fee and the net threshold are priced in ``profit_token``; the contract's profit
    is in the token the path starts and ends with. Trusting a profit token that is not the first
    hop's ``token_in`` (on the signal's chain) would price all of them in the wrong token."""
    econ, hops, chain_id = sig.economics, sig.path.hops, sig.identity.chain_id
    first = TokenId.of(chain_id, hops[0].token_in)
    if econ.profit_token != first:
        claimed = TokenId(econ.profit_token)
        return (f"profit token {claimed.chain_id}:{claimed.address} is not the path's first token "
                f"{chain_id}:{first.address}")
    if hops[-1].token_out != hops[0].token_in:
        return "path does not return to its first token"
    return None


def hop_output(state: PoolStateManager, hop: PathHop, amount_in: int) -> tuple[PoolId, PoolState | None, int]:
    """One hop of a path on ``state``: its pool, the pool's tradable state (None: unknown, invalidated
    or without liquidity) and the exact output of ``amount_in`` through it (``NOT_FILLED``, -1, when
    the pool cannot take the whole input). Re-validation and the backtest's fills both price with it."""
    pool, zfo = MarketHop.from_wire(hop)
    s = state.tradable(pool)
    return pool, s, (s.amount_out(zfo, amount_in) if s is not None else NOT_FILLED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """What our contract's ``execute`` would do with a path on a pool state: each hop's exact output and
    the profit (the last output less the input), or the reason it reverts (``revert``, '' when it does not)."""

    outputs: tuple[int, ...]
    profit: int
    revert: str = ""


def fill(hops: Sequence[Hop], state: PoolStateManager, paths: Sequence[PathHop], min_profit: int) -> Fill:
    """Our calldata's ``hops`` (hop 0's exact input, each hop's minimum output) executed on ``state`` as
    ``AlphaPulseArb.execute`` does: each hop swaps the previous hop's whole output, a hop below its
    minimum reverts (``InsufficientOutput``), so does a profit below ``min_profit``
    (``InsufficientProfit``). ``paths`` are the signal's wire hops (pools and directions), one per hop."""
    amount_in = amount = hops[0].amount_in
    outputs: list[int] = []
    for i, (h, wire) in enumerate(zip(hops, paths, strict=True)):
        pool, s, out = hop_output(state, wire, amount)
        if s is None or out < 0:
            why = "has no tradable state" if s is None else "cannot take the whole input"
            return Fill(outputs=tuple(outputs), profit=0, revert=f"hop {i}: pool {pool.address} {why}")
        if out < h.amount_out:
            return Fill(outputs=tuple(outputs), profit=0,
                        revert=f"InsufficientOutput({i}, {out}, {h.amount_out})")
        outputs.append(out)
        amount = out
    if amount < amount_in:
        return Fill(outputs=tuple(outputs), profit=0, revert=f"InsufficientReturn({amount}, {amount_in})")
    profit = amount - amount_in
    if profit < min_profit:
        return Fill(outputs=tuple(outputs), profit=0, revert=f"InsufficientProfit({profit}, {min_profit})")
    return Fill(outputs=tuple(outputs), profit=profit)


_NO_HOOKS = "0x" + "0" * 40
_ADDRESS_MASK = (1 << 160) - 1


def v4_hooks_of(pool: PoolId, s: V4Pool, candidates: Sequence[str]) -> str | None:
    """The hooks address (of ``candidates``, or none) whose PoolKey with ``s``'s currencies, fee and
    tick spacing is the pool ``pool`` names; None if no candidate is."""
    for hooks in (_NO_HOOKS, *candidates):
        key = PoolKey.of(pool.token0.address, pool.token1.address, s.lp_fee, s.tick_spacing, hooks)
        if key.instrument_id(pool.chain_id, pool.venue) == pool:
            return hooks
    return None


def curve_coin_indices(coins: Sequence[str], token_in: str, token_out: str) -> tuple[int, int] | None:
    """The pool's indices ``(i, j)`` of ``token_in`` and ``token_out`` in ``coins`` (the pool's own order,
    which need not be the addresses' order), or None when either is not a coin of the pool."""
    lower = [c.lower() for c in coins]
    try:
        return lower.index(token_in.lower()), lower.index(token_out.lower())
    except ValueError:
        return None


def revalidate(sig: Signal, state: PoolStateManager, factories: Mapping[int, str], *,
               max_age_blocks: int, onchain_min_profit_bps: int,
               v4_hooks: Mapping[int, Sequence[str]] | None = None,
               curve_coins: Mapping[int, Sequence[str]] | None = None) -> Verdict:
    """Re-price ``sig`` on ``state`` (see the module doc). ``curve_coins``: each Curve pool's coins in the
    pool's order (pool address as an int -> coins), from which a Curve hop's indices ``i, j`` come."""
    ident = sig.identity
    head = state.gas.get(ident.chain_id)
    if head is None:
        return Verdict(outcome=Outcome.STALE, reason="no block header for the chain yet")
    age = head.block_number - ident.block_number
    if age > max_age_blocks:
        return Verdict(outcome=Outcome.STALE, head_block=head.block_number,
                       reason=f"signal block {ident.block_number} is {age} blocks behind head {head.block_number} "
                              f"(max {max_age_blocks})")
    hops = sig.path.hops
    amount_in = hops[0].amount_in
    amount = amount_in
    out_hops: list[Hop] = []
    for i, h in enumerate(hops):
        pool, s, out = hop_output(state, h, amount)
        if s is None:
            why = "invalidated" if state.is_stale(pool) else "unknown or without liquidity"
            return Verdict(outcome=Outcome.STALE, head_block=head.block_number,
                           reason=f"pool stale: hop {i} pool {pool.address} is {why}")
        # A Curve pool is allow-listed by its own address (the contract's CURVE hops).
        factory = pool.address if isinstance(s, CurvePool) else factories.get(pool.venue)
        if factory is None:
            return Verdict(outcome=Outcome.FAILED, head_block=head.block_number,
                           reason=f"no factory configured for venue {pool.venue} (hop {i})")
        if out != h.amount_out:
            return Verdict(outcome=Outcome.STALE, head_block=head.block_number,
                           reason=f"path output changed: hop {i} gives {out} now, the signal said {h.amount_out}")
        address, spacing, coins = pool.address, 0, (0, 0)
        if isinstance(s, V2Pool):
            kind, fee = Kind.V2, s.fee_ppm
        elif isinstance(s, V3Pool):
            kind, fee = Kind.V3, s.fee
        elif isinstance(s, V4Pool):
            hooks = v4_hooks_of(pool, s, (v4_hooks or {}).get(pool.venue, ()))
            if hooks is None:
                return Verdict(outcome=Outcome.FAILED, head_block=head.block_number,
                               reason=f"hop {i}: V4 pool {pool.address} has hooks not configured for venue "
                                      f"{pool.venue} (executor [[venues]] hooks)")
            kind, fee, address, spacing = Kind.V4, s.lp_fee, hooks, s.tick_spacing
        elif isinstance(s, CurvePool):
            # The market model orders a pool's balances by address (token0 first); the contract calls
            # exchange(i, j) with the pool's OWN indices, whose coin 0 may be the higher address.
            pool_coins = (curve_coins or {}).get(int(pool) & _ADDRESS_MASK)
            found = None if pool_coins is None else curve_coin_indices(
                pool_coins, checksum(h.token_in), checksum(h.token_out))
            if found is None:
                return Verdict(outcome=Outcome.FAILED, head_block=head.block_number,
                               reason=f"hop {i}: Curve pool {pool.address} "
                                      + ("is not in the executor's [[curve_pools]]" if pool_coins is None
                                         else "does not hold the hop's tokens"))
            kind, fee, coins = Kind.CURVE, s.fee // 10_000, found
        else:
            return Verdict(outcome=Outcome.FAILED, head_block=head.block_number,
                           reason=f"hop {i}: venue kind {VenueKind(pool.kind).name} is not executable by the contract")
        # the calldata Hop writes its addresses in their canonical (checksummed) form itself: not twice here
        out_hops.append(Hop(pool=address, factory=factory, token_in=h.token_in, token_out=h.token_out,
                            kind=kind, fee=fee, amount_in=amount if i == 0 else 0, amount_out=out,
                            tick_spacing=spacing, coin_in=coins[0], coin_out=coins[1]))
        amount = out
    gross = amount - amount_in
    if gross != sig.economics.gross_profit:
        return Verdict(outcome=Outcome.STALE, head_block=head.block_number,
                       reason=f"gross profit {gross} != the signal's {sig.economics.gross_profit}")
    try:
        check_flash_source(out_hops, sig.flash)
    except ValueError as exc:
        return Verdict(outcome=Outcome.FAILED, head_block=head.block_number, reason=f"flash source: {exc}")
    return Verdict(outcome=None, reason="", head_block=head.block_number, hops=tuple(out_hops),
                   gross_profit=gross, min_profit_onchain=gross * onchain_min_profit_bps // 10_000, flash=sig.flash)


# --- fees ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def bumped(self, bump_bps: int, cap: int) -> Fees | None:
        """A replacement's fees: both at least ``+bump_bps`` (nodes demand >= +10 % on both), rounded
        up; None when that would exceed the ``cap`` on the fee per gas."""
        tip = -(-self.max_priority_fee_per_gas * (10_000 + bump_bps) // 10_000)
        fee = max(-(-self.max_fee_per_gas * (10_000 + bump_bps) // 10_000), tip)
        if fee > cap:
            return None
        return Fees(max_fee_per_gas=fee, max_priority_fee_per_gas=tip)


def choose_tip(*, policy: str, tip_wei: int, share_bps: int, max_tip_wei: int, profit_in_gas_token: int,
               gas_units: int) -> int:
    """Priority fee per gas: fixed, or ``share_bps`` of the expected profit spread over the gas,
    never below ``tip_wei`` nor above ``max_tip_wei``."""
    if policy == "fixed":
        return min(tip_wei, max_tip_wei)
    share = profit_in_gas_token * share_bps // 10_000 // max(gas_units, 1)
    return min(max(share, tip_wei), max_tip_wei)


def choose_fees(*, base_fee: int, tip: int, base_fee_multiplier_bps: int, cap: int) -> Fees:
    tip = min(tip, cap)
    fee = min(base_fee * base_fee_multiplier_bps // 10_000 + tip, cap)
    return Fees(max_fee_per_gas=max(fee, tip), max_priority_fee_per_gas=tip)


def to_profit_token(amount_wei: int, gas_token: TokenId, profit_token: TokenId, state: PoolStateManager) -> int | None:
    """Gas-token wei in profit-token units at the deepest pool's mid price, rounded up."""
    return convert_from_gas_token(amount_wei, gas_token, profit_token, state)


def to_gas_token(amount: int, gas_token: TokenId, profit_token: TokenId, state: PoolStateManager) -> int:
    """Profit-token units in gas-token wei (for the profit-share tip); 0 when no price."""
    v = convert_from_gas_token(amount, profit_token, gas_token, state)
    return v if v is not None else 0
