"""``execution.validate``: ``fill``, our calldata executed on a pool state as ``AlphaPulseArb.execute`` does
(the backtest's fills), with the hop outputs re-validation computes (``hop_output``); and re-validation of a
signal whose path starts with a Curve StableSwap hop: the calldata hop is a CURVE hop (the pool allow-listed
by its own address, coin indices from the direction), and only the Balancer V2 Vault can lend to such a
path, so a signal without a BALANCER FlashLoan fails with one line instead of sending calldata the contract
would refuse."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_execution_core import AMOUNT_IN, BLOCK, POOL_A, POOL_B, config, make_core, result_of, signal

from execution.calldata import FlashSource, Kind
from execution.config import ConfigError
from execution.core import MarketReady, Simulate
from execution.validate import Signal, fill, hop_output, revalidate
from market.params import ChainParams, CurveParams, MarketParams
from market.state import PoolStateManager
from protocol import Message, PoolId, TokenId
from protocol.execution import Outcome
from protocol.ids import Venue, VenueKind
from protocol.market import BlockHeader, PoolSnapshot
from protocol.signals import ArbitragePath, Economics, FlashLoan, Hop, SignalIdentity
from protocol.signals import FlashSource as WireFlashSource


def _verdict(core):  # type: ignore[no-untyped-def]
    sig = signal(core)
    cfg = core.config
    v = revalidate(sig, core.state, cfg.factories, max_age_blocks=3, onchain_min_profit_bps=10_000)
    assert v.outcome is None, v.reason
    return sig, v


def test_on_the_signals_state_the_fill_is_the_signals_path_to_the_wei() -> None:
    core = make_core()
    sig, v = _verdict(core)
    f = fill(v.hops, core.state, sig.path.hops, v.min_profit_onchain)
    assert f.revert == ""
    assert f.outputs == tuple(h.amount_out for h in sig.path.hops)
    assert f.profit == sig.economics.gross_profit == v.gross_profit > 0
    pool, state, out = hop_output(core.state, sig.path.hops[0], AMOUNT_IN)
    assert pool == POOL_A and state is not None and out == sig.path.hops[0].amount_out


def test_a_moved_pool_reverts_at_the_hop_minimum_or_the_profit_minimum() -> None:
    core = make_core()
    sig, v = _verdict(core)
    # pool B's WETH got cheaper: hop 1 gives less USDC than its minimum
    core.state.apply(PoolSnapshot(pool=POOL_B, block_number=BLOCK + 1, fee_ppm=3000, tick_spacing=0,
                                  reserve0=2_100_000 * 10**6, reserve1=1000 * 10**18, sqrt_price_x96=0, tick=0,
                                  liquidity=0, ticks=()))
    f = fill(v.hops, core.state, sig.path.hops, v.min_profit_onchain)
    assert f.revert.startswith("InsufficientOutput(1, ") and f.profit == 0
    # with no minimum on the hops, the contract's minProfit is what stops it
    loose = tuple(replace(h, amount_out=0) for h in v.hops)
    f = fill(loose, core.state, sig.path.hops, v.min_profit_onchain)
    assert f.revert.startswith("InsufficientProfit(") and f.profit == 0
    # and with neither, the profit is what the moved pool gives
    f = fill(loose, core.state, sig.path.hops, 0)
    assert f.revert == "" and 0 < f.profit < v.gross_profit


def test_an_unknown_pool_reverts() -> None:
    core = make_core()
    sig, v = _verdict(core)
    core.state.invalidate_all("test")
    f = fill(v.hops, core.state, sig.path.hops, 0)
    assert f.revert == f"hop 0: pool {POOL_A.address} has no tradable state"


# -- a Curve-first path ----------------------------------------------------------------------
CHAIN = 31337
DAI = "0x" + "6b" * 20  # token0 of both pools (lower address)
USDC = "0x" + "a0" * 20
WETH = "0x" + "c0" * 20
CURVE_ADDR = "0x" + "cc" * 20
CURVE = PoolId.of(CHAIN, Venue.CURVE, VenueKind.CURVE, CURVE_ADDR, DAI, USDC)
PAIR = PoolId.of(CHAIN, Venue.DEVNET_V2_B, VenueKind.UNISWAP_V2, "0x" + "bb" * 20, DAI, USDC)
F_B = "0x" + "f2" * 20
COINS = {int(CURVE_ADDR, 16): (DAI, USDC)}  # the pool's coins in its own order (here also the addresses')


def records() -> list[BlockHeader | PoolSnapshot]:
    # DAI is cheap on Curve (1.5M DAI / 0.5M USDC), dear on the pair (1.004 USDC).
    return [BlockHeader(chain_id=CHAIN, number=BLOCK, timestamp=1, gas_limit=30_000_000, gas_used=0,
                        hash=bytes(32), parent_hash=bytes(32), base_fee=10**9, priority_fee=10**9),
            PoolSnapshot(pool=CURVE, block_number=BLOCK, fee_ppm=400, tick_spacing=0, reserve0=1_500_000 * 10**18,
                         reserve1=500_000 * 10**6, sqrt_price_x96=0, tick=0, liquidity=0, ticks=()),
            PoolSnapshot(pool=PAIR, block_number=BLOCK, fee_ppm=3000, tick_spacing=0, reserve0=800_000 * 10**18,
                         reserve1=803_200 * 10**6, sqrt_price_x96=0, tick=0, liquidity=0, ticks=())]


def state() -> PoolStateManager:
    s = PoolStateManager(MarketParams(
        chains=(ChainParams(chain_id=CHAIN, gas_token=TokenId.of(CHAIN, WETH)),),
        curve_pools=(CurveParams(chain_id=CHAIN, address=int(CURVE_ADDR, 16), amp=200, rates=(10**18, 10**30)),)))
    for r in records():
        s.apply(r)
    return s


def curve_first_signal(s: PoolStateManager, flash: int | None) -> Signal:
    """USDC -> DAI on Curve, DAI -> USDC on the pair, priced on ``s``."""
    x = 1_000 * 10**6
    dai = s.tradable(CURVE).amount_out(False, x)
    usdc = s.tradable(PAIR).amount_out(True, dai)
    d, u = bytes.fromhex(DAI[2:]), bytes.fromhex(USDC[2:])
    hops = (Hop(pool=CURVE, venue_kind=int(VenueKind.CURVE), token_in=u, token_out=d, amount_in=x, amount_out=dai),
            Hop(pool=PAIR, venue_kind=int(VenueKind.UNISWAP_V2), token_in=d, token_out=u, amount_in=dai,
                amount_out=usdc))
    tlvs = [SignalIdentity(signal_id=1, strategy_id=1, kind=1, confidence_bps=0, chain_id=CHAIN, block_number=BLOCK,
                           strategy="t"),
            Economics(profit_token=TokenId.of(CHAIN, USDC), gross_profit=usdc - x, gas_cost=0, flash_fee=0,
                      slippage_allowance=0, net_profit=usdc - x, gas_units=0, gas_price_wei=0),
            ArbitragePath(hops=hops)]
    if flash is not None:
        tlvs.append(FlashLoan(source=flash))
    return Signal.from_message(Message(domain=2, tlvs=tuple(tlvs)))


def test_a_curve_first_path_is_executed_with_the_balancer_vault() -> None:
    s = state()
    sig = curve_first_signal(s, WireFlashSource.BALANCER)
    assert sig.economics.gross_profit > 0
    v = revalidate(sig, s, {int(Venue.DEVNET_V2_B): F_B}, max_age_blocks=3, onchain_min_profit_bps=5000,
                   curve_coins=COINS)
    assert v.outcome is None and v.flash == FlashSource.BALANCER
    curve, pair = v.hops
    assert curve.kind == Kind.CURVE and curve.pool == curve.factory and curve.pool.lower() == CURVE_ADDR
    assert (curve.coin_in, curve.coin_out) == (1, 0)  # USDC (coin 1) -> DAI (coin 0)
    assert curve.amount_in == 1_000 * 10**6 and pair.kind == Kind.V2 and pair.factory.lower() == F_B


def test_curve_coin_indices_follow_the_pools_own_order() -> None:
    """A pool whose coin 0 is the HIGHER address (USDC, DAI): the same USDC -> DAI hop is exchange(0, 1);
    a pool the executor has no coins for, or whose coins are not the hop's, is FAILED in one line."""
    s = state()
    sig = curve_first_signal(s, WireFlashSource.BALANCER)
    reversed_coins = {int(CURVE_ADDR, 16): (USDC, DAI)}
    v = revalidate(sig, s, {int(Venue.DEVNET_V2_B): F_B}, max_age_blocks=3, onchain_min_profit_bps=5000,
                   curve_coins=reversed_coins)
    assert v.outcome is None
    assert (v.hops[0].coin_in, v.hops[0].coin_out) == (0, 1)  # USDC is this pool's coin 0
    for coins, why in ((None, "is not in the executor's [[curve_pools]]"),
                       ({int(CURVE_ADDR, 16): (USDC, WETH)}, "does not hold the hop's tokens")):
        v = revalidate(sig, s, {int(Venue.DEVNET_V2_B): F_B}, max_age_blocks=3, onchain_min_profit_bps=5000,
                       curve_coins=coins)
        assert v.outcome == Outcome.FAILED and v.reason == f"hop 0: Curve pool {CURVE_ADDR} {why}"


def test_a_curve_first_path_without_the_vault_fails_with_one_line() -> None:
    s = state()
    for flash in (None, WireFlashSource.POOL):
        v = revalidate(curve_first_signal(s, flash), s, {int(Venue.DEVNET_V2_B): F_B}, max_age_blocks=3,
                       onchain_min_profit_bps=5000, curve_coins=COINS)
        assert v.outcome == Outcome.FAILED and v.reason.startswith("flash source: a Curve pool cannot lend")
        assert "\n" not in v.reason


def test_the_executors_curve_pools_table_gives_the_model_and_the_pools_coin_order() -> None:
    """``[[curve_pools]]``: coins and rates in the POOL's order (here its coin 0 is the higher address,
    USDC); the executor's market model gets the rates in address order and prices the pool's snapshots,
    and re-validation takes the indices from the pool's order."""
    import pytest

    from execution.config import ConfigError, config_from_dict
    from execution.core import ExecutorCore

    table = {"address": CURVE_ADDR, "coins": [USDC, DAI], "amp": 200, "rates": [10**30, 10**18]}
    doc = {"executor": {"chain_id": CHAIN, "rpc_url": "http://127.0.0.1:1", "contract": "0x" + "ab" * 20,
                        "gas_token": WETH}, "keystore": {"path": "k.json", "password_env": "X"},
           "venues": [{"venue": "DEVNET_V2_B", "factory": F_B}], "curve_pools": [table]}
    cfg = config_from_dict(doc)
    assert cfg.curve_coins == {int(CURVE_ADDR, 16): (USDC, DAI)}
    assert cfg.curve_pools[0].sorted_rates == (10**18, 10**30)  # DAI (token0) first
    core = ExecutorCore(cfg, address="0x" + "11" * 20)
    for r in records():
        core.state.apply(r)
    own = state()
    assert core.state.get(CURVE) == own.get(CURVE)  # same balances, rates (address order), amp and fee
    sig = curve_first_signal(own, WireFlashSource.BALANCER)
    v = revalidate(sig, core.state, cfg.factories, max_age_blocks=3, onchain_min_profit_bps=5000,
                   curve_coins=cfg.curve_coins)
    assert v.outcome is None and (v.hops[0].coin_in, v.hops[0].coin_out) == (0, 1)
    for bad, key in (({"coins": [USDC, USDC]}, "coins"), ({"amp": 0}, "amp"), ({"address": "0x12"}, "address")):
        with pytest.raises(ConfigError, match=key):
            config_from_dict({**doc, "curve_pools": [{**table, **bad}]})


def _aged(head: int, **validation: object) -> tuple[object, object]:
    """A core whose chain (31337) is at ``head``, the signal priced at ``BLOCK`` on pools that did not move."""
    core = make_core(validation=validation)
    sig = signal(core)
    core.on_market_data(Message(domain=1, tlvs=(BlockHeader(chain_id=sig.identity.chain_id, number=head, timestamp=1,
                                                             gas_limit=30_000_000, gas_used=0, hash=bytes(32),
                                                             parent_hash=bytes(32), base_fee=10**9,
                                                             priority_fee=10**9),)))
    return core, sig


def test_on_a_fast_chain_the_age_limit_is_time_not_blocks() -> None:
    """A 0.25 s chain with ``max_signal_age_s = 2``: 8 blocks. A signal 8 blocks (2 s) old re-validates on its
    state -- the three blocks of ``max_signal_age_blocks`` (0.75 s there) no longer end it STALE --, one 9 blocks
    old is STALE by age, through the executor's run as through ``revalidate``."""
    fast = {"max_signal_age_s": 2.0, "block_time_s": {"31337": 0.25}}
    core, sig = _aged(BLOCK + 8, **fast)
    assert core.config.validation.max_age_blocks(31337) == 8
    run = core.run(sig)
    run.start(0.0)
    (sim,) = run.on(MarketReady(0.0))
    assert isinstance(sim, Simulate), "a young signal on unmoved pools goes on to the simulation"
    core, sig = _aged(BLOCK + 9, **fast)
    run = core.run(sig)
    run.start(0.0)
    res = result_of(run.on(MarketReady(0.0)))
    assert res.outcome == Outcome.STALE
    assert res.reason == f"signal block {BLOCK} is 9 blocks behind head {BLOCK + 9} (max 8)"


def test_a_chain_without_a_block_time_keeps_the_limit_in_blocks() -> None:
    """Another chain's block time changes nothing here: ``max_signal_age_blocks`` (3) is the limit."""
    core, sig = _aged(BLOCK + 3, block_time_s={"31338": 0.25})
    cfg = core.config
    assert cfg.validation.max_age_blocks(31337) == 3
    ok = revalidate(sig, core.state, cfg.factories, max_age_blocks=cfg.validation.max_age_blocks(31337),
                    onchain_min_profit_bps=10_000)
    assert ok.outcome is None, ok.reason
    core, sig = _aged(BLOCK + 4, block_time_s={"31338": 0.25})
    late = revalidate(sig, core.state, cfg.factories, max_age_blocks=cfg.validation.max_age_blocks(31337),
                      onchain_min_profit_bps=10_000)
    assert late.outcome == Outcome.STALE and "4 blocks behind" in late.reason


def test_a_slow_chain_gets_at_least_one_block() -> None:
    cfg = make_core(validation={"max_signal_age_s": 2.0, "block_time_s": {"31337": 12.0, "31338": 2.0}}).config
    assert cfg.validation.max_age_blocks(31337) == 1  # 2 s on a 12 s chain: one block, never zero
    assert cfg.validation.max_age_blocks(31338) == 1
    assert make_core(validation={"max_signal_age_s": 2.5, "block_time_s": {"31337": 0.25}}).config \
        .validation.max_age_blocks(31337) == 10


@pytest.mark.parametrize(("validation", "line"), [
    ({"block_time_s": {"mainnet": 12.0}}, "validation.block_time_s: 'mainnet' is not a chain id"),
    ({"block_time_s": {"0": 12.0}}, "validation.block_time_s: '0' is not a chain id"),
    ({"block_time_s": {"1": 0}}, "validation.block_time_s.1: out of range (0, 3600], got 0"),
    ({"block_time_s": {"1": -2.0}}, "validation.block_time_s.1: out of range"),
    ({"max_signal_age_s": 0}, "validation.max_signal_age_s: out of range (0, 3600], got 0"),
    ({"max_signal_age_s": "1s"}, "validation.max_signal_age_s: must be a number"),
])
def test_a_bad_age_setting_is_one_clear_line(validation: dict[str, object], line: str) -> None:
    with pytest.raises(ConfigError) as err:
        config(validation=validation)
    assert line in str(err.value) and "\n" not in str(err.value)


def test_the_spec_states_the_age_defaults_the_code_has() -> None:
    """specs/executor-concurrency.md, "The age limit": the defaults of both settings and the range of the time."""
    from pathlib import Path

    from execution.config import ValidationConfig

    spec = (Path(__file__).resolve().parents[2] / "specs" / "executor-concurrency.md").read_text()
    v = ValidationConfig()
    assert v.max_signal_age_s == 2.0 and "(`max_signal_age_s` default **2.0**, (0, 3600]" in spec
    assert v.max_signal_age_blocks == 2 and "`max_signal_age_blocks` (default **2**)" in spec
    assert v.block_time_s == {} and v.max_age_blocks(1) == 2
