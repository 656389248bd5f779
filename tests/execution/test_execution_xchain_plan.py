"""execution/xchain/plan.py: a cross-chain signal's checks and re-pricing on the executor's own pool state,
without IO (pools from PoolSnapshot records, as the market-data relay delivers them)."""

from __future__ import annotations

from typing import Any

import pytest

from execution.config import ConfigError, config_from_dict
from execution.validate import Signal
from execution.xchain import plan as P
from market.params import ChainParams, MarketParams
from market.state import PoolStateManager
from protocol.execution import ChainLeg, Outcome
from protocol.ids import PoolId, TokenId, Venue, VenueKind
from protocol.market import BlockHeader, PoolSnapshot, StateInvalidation
from protocol.signals import ArbitragePath, CrossChainArbitrage, Economics, Hop, SignalIdentity, SignalKind

A, B = 31337, 31338
USDC = "0x" + "a0" * 20  # below WETH: token0 of each pair
WETH = "0x" + "c0" * 20
FACTORY = "0x" + "fa" * 20
ARB = "0x" + "ab" * 20


def pool(chain: int) -> PoolId:
    return PoolId.of(chain, Venue.DEVNET_V2_A, VenueKind.UNISWAP_V2, "0x" + f"{chain:040x}", USDC, WETH)


# reserves: WETH at 3000 USDC on A, ~3045 on B
RESERVES = {A: (30_000_000 * 10**6, 10_000 * 10**18), B: (30_450_000 * 10**6, 10_000 * 10**18)}


def state(*, skip: int | None = None, head_a: int = 100) -> PoolStateManager:
    s = PoolStateManager(MarketParams(chains=(ChainParams(chain_id=A, gas_token=TokenId.of(A, WETH)),
                                              ChainParams(chain_id=B, gas_token=TokenId.of(B, WETH)))))
    for chain, head in ((A, head_a), (B, 500)):
        if chain == skip:
            continue
        s.apply(BlockHeader(chain_id=chain, number=head, timestamp=1, gas_limit=1, gas_used=0, hash=bytes(32),
                            parent_hash=bytes(32), base_fee=10**9, priority_fee=10**9))
        r0, r1 = RESERVES[chain]
        s.apply(PoolSnapshot(pool=pool(chain), block_number=head, fee_ppm=3000, tick_spacing=0, reserve0=r0,
                             reserve1=r1, sqrt_price_x96=0, tick=0, liquidity=0, ticks=()))
    return s


def out(chain: int, amount_in: int, usdc_in: bool) -> int:
    r0, r1 = RESERVES[chain]
    rin, rout = (r0, r1) if usdc_in else (r1, r0)
    return amount_in * 997 * rout // (rin * 1000 + amount_in * 997)


USDC_IN = 3_000 * 10**6
WETH_OUT = out(A, USDC_IN, True)
USDC_OUT = out(B, WETH_OUT, False)


def signal(*, hops: Any = None, chain: int = A, profit: str = USDC, block: int = 99) -> Signal:
    h = hops if hops is not None else (
        Hop(pool=pool(A), venue_kind=1, token_in=bytes.fromhex(USDC[2:]), token_out=bytes.fromhex(WETH[2:]),
            amount_in=USDC_IN, amount_out=WETH_OUT),
        Hop(pool=pool(B), venue_kind=1, token_in=bytes.fromhex(WETH[2:]), token_out=bytes.fromhex(USDC[2:]),
            amount_in=WETH_OUT, amount_out=USDC_OUT))
    return Signal(identity=SignalIdentity(signal_id=7, strategy_id=3, kind=SignalKind.CROSS_CHAIN, confidence_bps=1,
                                          chain_id=chain, block_number=block, strategy="x"),
                  economics=Economics(profit_token=TokenId.of(chain, profit), gross_profit=USDC_OUT - USDC_IN,
                                      gas_cost=0, flash_fee=0, slippage_allowance=0, net_profit=0, gas_units=0,
                                      gas_price_wei=0),
                  path=ArbitragePath(hops=h))


def config(*, chains: tuple[int, ...] = (A, B), limits: dict[str, Any] | None = None, factory: bool = True,
           validation: dict[str, Any] | None = None, **cross: Any):
    entries = [{"chain_id": c, "rpc_url": f"http://node-{c}", "contract": ARB, "gas_token": WETH,
                "keystore": {"path": "k" if c == A else f"k{c}", "password_env": "P"},
                "venues": [{"venue": "DEVNET_V2_A", "factory": FACTORY}] if factory else []} for c in chains]
    doc: dict[str, Any] = {"executor": {"chain_id": A, "rpc_url": "http://node", "contract": ARB, "gas_token": WETH},
                           "keystore": {"path": "k", "password_env": "P"}, "limits": limits or {},
                           "validation": {"max_signal_age_blocks": 2, **(validation or {})}}
    if chains:
        doc["cross_chain"] = {"chains": entries, **cross}
    return config_from_dict(doc)


def test_a_good_signal_passes_and_is_repriced_exactly() -> None:
    cfg, st, sig = config(leg_slippage_bps=10), state(), signal()
    assert P.check(sig, cfg, CrossChainArbitrage(source_chain=A, dest_chain=B, bridge=1, timing_risk_blocks=1,
                                                 bridge_cost=0, source_gas_cost=0, dest_gas_cost=0)) is None
    assert P.market_ready(sig, st)
    plan = P.reprice(sig, cfg, st)
    assert isinstance(plan, P.Plan)
    l0, l1 = plan.legs
    assert (l0.leg, l0.chain.chain_id, l0.amount_in, l0.expected_out) == (ChainLeg.SOURCE, A, USDC_IN, WETH_OUT)
    assert (l1.leg, l1.chain.chain_id, l1.amount_in, l1.expected_out) == (ChainLeg.DESTINATION, B, WETH_OUT, USDC_OUT)
    assert l0.min_out == WETH_OUT * 9_990 // 10_000 and plan.gross == USDC_OUT - USDC_IN > 0
    hop, back = l1.hop(), l1.hop(5, 4, reverse=True)
    assert (hop.amount_in, hop.amount_out, hop.factory.lower(), hop.fee) == (WETH_OUT, l1.min_out, FACTORY, 3000)
    assert (back.token_in.lower(), back.token_out.lower(), back.amount_in, back.amount_out) == (USDC, WETH, 5, 4)


def _hop(chain: int, amount_in: int = 1, tin: str = USDC, tout: str = WETH, amount_out: int = 1) -> Hop:
    return Hop(pool=pool(chain), venue_kind=1, token_in=bytes.fromhex(tin[2:]), token_out=bytes.fromhex(tout[2:]),
               amount_in=amount_in, amount_out=amount_out)


@pytest.mark.parametrize(("cfg", "sig", "xc", "why"), [
    (lambda: config(chains=()), signal, None, "no [cross_chain] table"),
    (config, lambda: signal(hops=(_hop(A), _hop(B, tin=WETH, tout=USDC), _hop(B))), None, "2 hops"),
    (config, lambda: signal(hops=(_hop(A), _hop(A, tin=WETH, tout=USDC))), None, "both hops are on chain"),
    (config, lambda: signal(chain=B), None, "hop 0's pool is on chain"),
    (config, signal, (B, A), "CrossChainArbitrage says"),
    (lambda: config(chains=(A, 99)), signal, None, "chain 31338 is not in"),
    (config, lambda: signal(profit=WETH), None, "profit token"),
    (config, lambda: signal(hops=(_hop(A, tout=USDC), _hop(B, tin=WETH, tout=USDC))), None, "itself"),
])
def test_what_no_market_can_fix_is_failed(cfg: Any, sig: Any, xc: Any, why: str) -> None:
    rec = None if xc is None else CrossChainArbitrage(source_chain=xc[0], dest_chain=xc[1], bridge=1,
                                                      timing_risk_blocks=1, bridge_cost=0, source_gas_cost=0,
                                                      dest_gas_cost=0)
    got = P.check(sig(), cfg(), rec)
    assert got is not None and got[0] is Outcome.FAILED and why in got[1], got


def test_a_source_leg_above_the_limit_is_rejected_by_risk() -> None:
    got = P.check(signal(), config(limits={"max_amount_in": {USDC: USDC_IN - 1}}))
    assert got is not None and got[0] is Outcome.REJECTED_BY_RISK and "leg 0" in got[1]


def _invalidated() -> PoolStateManager:
    s = state()
    s.apply(StateInvalidation(chain_id=B, pool=pool(B), from_block=500, reason=2, detail="reorg"))
    return s


@pytest.mark.parametrize(("st", "sig", "cfg", "outcome", "why"), [
    (lambda: state(skip=B), signal, config, Outcome.STALE, "no block header for chain 31338"),
    (lambda: state(head_a=105), signal, config, Outcome.STALE, "blocks behind head"),
    (_invalidated, signal, config, Outcome.STALE, "is invalidated"),
    (state, signal, lambda: config(factory=False), Outcome.FAILED, "no factory configured"),
    (state, lambda: signal(hops=(_hop(A, USDC_IN), _hop(B, WETH_OUT, WETH, USDC, USDC_OUT + 1))),
     config, Outcome.STALE, "leg 1 on chain 31338"),
])
def test_what_the_market_state_refuses(st: Any, sig: Any, cfg: Any, outcome: Outcome, why: str) -> None:
    got = P.reprice(sig(), cfg(), st())
    assert isinstance(got, tuple) and got[0] is outcome and why in got[1], got


def test_market_ready_waits_for_both_chains_and_the_signals_block() -> None:
    assert not P.market_ready(signal(), state(skip=B))
    assert not P.market_ready(signal(block=101), state())
    assert not P.market_ready(signal(), _invalidated())


def test_base_left_over_is_valued_on_the_source_pool() -> None:
    """Hop 1 sells less base than hop 0 bought: the rest stays in inventory, worth its source-pool value."""
    sig = signal(hops=(_hop(A, USDC_IN, USDC, WETH, WETH_OUT),
                       _hop(B, WETH_OUT - 10**15, WETH, USDC)))
    plan = P.reprice(sig, config(), state())
    assert isinstance(plan, P.Plan)
    r0, r1 = RESERVES[A]
    value = 10**15 * r0 // r1  # mid price, rounded down for a value
    assert plan.gross == out(B, WETH_OUT - 10**15, False) - USDC_IN + value


@pytest.mark.parametrize(("kw", "why"), [
    (dict(chains=(A,)), "at least two distinct chains"),
    (dict(deadline_s=13.0), "deadline_s must not exceed leg_timeout_s"),
    (dict(max_leg_open_s=20.0), "max_leg_open_s must exceed 2 x leg_timeout_s"),
    (dict(unwind_timeout_s=24.0), "unwind_timeout_s must exceed"),
    (dict(max_unwind_loss_bps=10_000), "max_unwind_loss_bps"),
])
def test_bad_cross_chain_tables_are_refused(kw: dict[str, Any], why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        config(**kw)


def test_the_executor_chains_entry_must_be_its_own_signer() -> None:
    doc: dict[str, Any] = {"executor": {"chain_id": A, "rpc_url": "http://node", "contract": ARB, "gas_token": WETH},
                           "keystore": {"path": "k", "password_env": "P"},
                           "cross_chain": {"chains": [
                               {"chain_id": c, "rpc_url": "http://n", "contract": ARB, "gas_token": WETH,
                                "keystore": {"path": f"other{c}", "password_env": "P"}} for c in (A, B)]}}
    with pytest.raises(ConfigError, match="one signer and one nonce sequence per chain"):
        config_from_dict(doc)


def test_the_age_limit_is_per_source_chain_in_time() -> None:
    """A source chain with a block time: the limit is ``ceil(max_signal_age_s / block time)`` blocks there (1 s at
    0.25 s: 4 blocks), while a chain without one keeps ``max_signal_age_blocks`` (2 here)."""
    fast = config(validation={"max_signal_age_s": 1.0, "block_time_s": {str(A): 0.25}})
    assert fast.validation.max_age_blocks(A) == 4 and fast.validation.max_age_blocks(B) == 2
    young, old = state(head_a=99 + 4), state(head_a=99 + 5)  # the signal's block is 99
    assert isinstance(P.reprice(signal(), fast, young), P.Plan)
    got = P.reprice(signal(), fast, old)
    assert got == (Outcome.STALE, f"signal block 99 is 5 blocks behind head 104 on chain {A} (max 4)")
    # the same head without the block time: two blocks are the limit
    got = P.reprice(signal(), config(), young)
    assert isinstance(got, tuple) and got[0] is Outcome.STALE and "(max 2)" in got[1]
