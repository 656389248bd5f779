"""The executor's sans-IO core (execution/core.py): every step's transitions, no sockets, no chain.

A small world: two V2 pools of USDC/WETH at different prices on the devnet venues, a signal that
buys WETH on the cheap one and sells it on the other (the numbers come from the same exact AMM
mirror the core re-validates with), and a config per mode. Each test drives a :class:`SignalRun`
with the events the shell would feed it and checks the actions it gets back.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_abi import encode

from execution.calldata import (
    ARBITRAGE_EXECUTED_TOPIC,
    EXECUTE_BALANCER_SELECTOR,
    EXECUTE_SELECTOR,
    decode_execute,
)
from execution.config import config_from_dict
from execution.core import (
    ACCEPTS,
    CANCEL_GAS,
    AwaitMarket,
    Broadcast,
    Broadcasted,
    BuilderInfo,
    BundleChecked,
    BundlesSent,
    CallBundle,
    CoreError,
    Estimate,
    Estimated,
    ExecutorCore,
    FetchHead,
    FillNonce,
    Head,
    HeadSeen,
    Log,
    MarketReady,
    MarkPublic,
    NonceUsed,
    Polled,
    PollPrivate,
    PollReceipts,
    PrivatePolled,
    Publish,
    Receipt,
    RecordTx,
    SendBundles,
    SettleNonce,
    Sign,
    SignalRun,
    Signed,
    Simulate,
    Simulated,
    SimulationFailed,
    Start,
    Step,
    Tx,
    bundle_failure,
    recover_unmined,
)
from execution.lifecycle import LifecycleError
from execution.validate import Signal
from protocol import Message, PoolId, TokenId
from protocol.execution import ExecutionResult, ExecutionStarted, Outcome, SubmissionMode
from protocol.ids import Venue, VenueKind
from protocol.market import BlockHeader, InvalidationReason, PoolSnapshot, StateInvalidation
from protocol.signals import ArbitragePath, Economics, FlashLoan, FlashSource, Hop, SignalIdentity
from protocol.system import EmergencyStop, Resume, StopScope

CHAIN = 31337
USDC = "0x" + "a0" * 20
WETH = "0x" + "c0" * 20
OTHER = "0x" + "e0" * 20
CONTRACT = "0x" + "11" * 20
ME = "0x" + "99" * 20
F_A, F_B = "0x" + "f1" * 20, "0x" + "f2" * 20
POOL_A = PoolId.of(CHAIN, Venue.DEVNET_V2_A, VenueKind.UNISWAP_V2, "0x" + "aa" * 20, USDC, WETH)
POOL_B = PoolId.of(CHAIN, Venue.DEVNET_V2_B, VenueKind.UNISWAP_V2, "0x" + "bb" * 20, USDC, WETH)
AMOUNT_IN = 10_000 * 10**6
BLOCK = 100
GWEI = 10**9


def config(mode: str = "public", **over: Any) -> Any:
    doc: dict[str, Any] = {
        "executor": {"chain_id": CHAIN, "rpc_url": "http://127.0.0.1:1", "contract": CONTRACT,
                     "gas_token": WETH, "mode": mode},
        "keystore": {"path": "k.json", "password_env": "X"},
        "venues": [{"venue": "DEVNET_V2_A", "factory": F_A}, {"venue": "DEVNET_V2_B", "factory": F_B}],
        "validation": {"state_wait_s": 2.0, "max_signal_age_blocks": 3},
        "submission": {"receipt_timeout_s": 10.0, "replace_after_s": 3.0, "max_replacements": 1,
                       "private_blocks": 2, "private_timeout_s": 5.0, "poll_interval_s": 0.5},
    }
    if mode in ("private", "hybrid"):
        doc["builders"] = [{"name": "b0", "url": "http://127.0.0.1:2"},
                           {"name": "b1", "url": "http://127.0.0.1:3", "call_bundle": True}]
    for k, v in over.items():
        doc[k] = {**doc.get(k, {}), **v}
    return config_from_dict(doc)


def snapshot(pool: PoolId, usdc: int, weth: int, block: int = BLOCK) -> PoolSnapshot:
    return PoolSnapshot(pool=pool, block_number=block, fee_ppm=3000, tick_spacing=0, reserve0=usdc, reserve1=weth,
                        sqrt_price_x96=0, tick=0, liquidity=0, ticks=())


def header(number: int = BLOCK, base_fee: int = GWEI) -> BlockHeader:
    return BlockHeader(chain_id=CHAIN, number=number, timestamp=1, gas_limit=30_000_000, gas_used=0,
                       hash=bytes(32), parent_hash=bytes(32), base_fee=base_fee, priority_fee=GWEI)


def market(block: int = BLOCK) -> Message:
    return Message(domain=1, tlvs=(header(block), snapshot(POOL_A, 2_000_000 * 10**6, 1000 * 10**18, block),
                                   snapshot(POOL_B, 2_200_000 * 10**6, 1000 * 10**18, block)))


def make_core(mode: str = "public", **over: Any) -> ExecutorCore:
    cfg = config(mode, **over)
    builders = [BuilderInfo(name=b.name, call_bundle=b.call_bundle) for b in cfg.builders]
    core = ExecutorCore(cfg, address=ME, builders=builders)
    assert core.on_market_data(market()) is True  # carried this chain's header
    core.nonces.reconcile(latest=7, pending=7, max_live=None)
    return core


def signal(core: ExecutorCore, *, signal_id: int = 1, chain_id: int = CHAIN, block: int = BLOCK,
           amount_in: int = AMOUNT_IN, profit_token: int | None = None, flash: int | None = None) -> Signal:
    """USDC -> WETH on pool A (cheap WETH), WETH -> USDC on pool B, priced on the core's own state."""
    usdc, weth = bytes.fromhex(USDC[2:]), bytes.fromhex(WETH[2:])
    mid = core.state.tradable(POOL_A).amount_out(True, amount_in)
    out = core.state.tradable(POOL_B).amount_out(False, mid)
    hops = (Hop(pool=POOL_A, venue_kind=int(VenueKind.UNISWAP_V2), token_in=usdc, token_out=weth, amount_in=amount_in,
                amount_out=mid),
            Hop(pool=POOL_B, venue_kind=int(VenueKind.UNISWAP_V2), token_in=weth, token_out=usdc, amount_in=mid,
                amount_out=out))
    gross = out - amount_in
    msg = Message(domain=2, tlvs=(
        SignalIdentity(signal_id=signal_id, strategy_id=3, kind=1, confidence_bps=0, chain_id=chain_id,
                       block_number=block, strategy="t"),
        Economics(profit_token=TokenId.of(CHAIN, USDC) if profit_token is None else profit_token, gross_profit=gross, gas_cost=0, flash_fee=0,
                  slippage_allowance=0, net_profit=gross, gas_units=0, gas_price_wei=0),
        ArbitragePath(hops=hops), *(() if flash is None else (FlashLoan(source=flash),))))
    return Signal.from_message(msg)


def tx(nonce: int = 7, fee: int = 3 * GWEI, tip: int = GWEI, gas: int = 300_000, n: int = 1) -> Tx:
    return Tx(raw=bytes([n]) * 10, tx_hash=bytes([n]) * 32, nonce=nonce, gas_limit=gas, max_fee_per_gas=fee,
              max_priority_fee_per_gas=tip)


def profit_log(profit: int, contract: str = CONTRACT) -> dict[str, Any]:
    return {"address": contract, "topics": ["0x" + ARBITRAGE_EXECUTED_TOPIC.hex(), "0x" + "00" * 12 + USDC[2:],
                                            "0x" + "00" * 12 + "44" * 20],
            "data": "0x" + encode(["uint256", "uint256"], [AMOUNT_IN, profit]).hex()}


def receipt(t: Tx, *, status: int = 1, logs: tuple = (), gas_used: int = 200_000, price: int = 2 * GWEI,
            block: int = BLOCK + 1) -> Receipt:
    return Receipt(tx_hash=t.hash_hex, block_number=block, gas_used=gas_used, effective_gas_price=price,
                   status=status, logs=logs)


def result_of(actions: list) -> ExecutionResult:
    (res,) = [a.tlv for a in actions if isinstance(a, Publish) and type(a.tlv) is ExecutionResult]
    return res


def started_of(actions: list) -> list[ExecutionStarted]:
    return [a.tlv for a in actions if isinstance(a, Publish) and type(a.tlv) is ExecutionStarted]


def to_head(run: SignalRun, now: float = 10.0) -> list:
    """START -> AWAIT_MARKET -> SIMULATE -> ESTIMATE -> AWAIT_HEAD, simulation agreeing to the wei."""
    (a,) = run.start(now)
    assert isinstance(a, AwaitMarket) and a.block == BLOCK and a.deadline == now + 2.0
    assert run.market_ready()
    (sim,) = run.on(MarketReady(now))
    assert isinstance(sim, Simulate) and run.step is Step.SIMULATE
    (est,) = run.on(Simulated(run.gross))
    assert isinstance(est, Estimate) and est.data == sim.data
    acts = run.on(Estimated(200_000))
    if run.core.mode in (SubmissionMode.PUBLIC, SubmissionMode.SHADOW):
        # the head is the market-data relay's newest BlockHeader: no FetchHead (no RPC)
        assert not any(isinstance(a, FetchHead) for a in acts)
        assert run.head == Head(number=BLOCK, base_fee=GWEI, timestamp=1)
        return acts
    (fh,) = acts  # a bundle's target blocks come from the node
    assert isinstance(fh, FetchHead) and run.step is Step.AWAIT_HEAD
    return run.on(HeadSeen(Head(number=BLOCK, base_fee=GWEI, timestamp=1)))


def to_watch(core: ExecutorCore) -> tuple[SignalRun, Tx]:
    run = core.run(signal(core))
    (sign,) = to_head(run)
    assert isinstance(sign, Sign) and sign.nonce == 7 and sign.to is None
    t = tx(nonce=sign.nonce, fee=sign.max_fee_per_gas, tip=sign.max_priority_fee_per_gas, gas=sign.gas_limit)
    rec, bc = run.on(Signed(t))
    assert isinstance(rec, RecordTx) and rec.tx == t and isinstance(bc, Broadcast) and bc.tx == t
    pub, mark, poll = run.on(Broadcasted(t))  # ExecutionStarted first, the bookkeeping after
    assert isinstance(mark, MarkPublic) and started_of([pub])[0].tx_hash == t.tx_hash
    assert isinstance(poll, PollReceipts) and poll.hashes == (t.hash_hex,) and poll.delay == 0.0
    assert core.nonces.next == 8  # broadcast: the nonce is spent
    return run, t


# --------------------------------------------------------------------------- before signing


def test_wrong_chain_fails_at_once() -> None:
    core = make_core()
    run = core.run(signal(core, chain_id=1))
    res = result_of(run.start(0.0))
    assert res.outcome == Outcome.FAILED and "serves 31337" in res.reason and run.done


@pytest.mark.parametrize("claimed", [TokenId.of(CHAIN, WETH), TokenId.of(1, USDC)])
def test_a_profit_token_that_is_not_the_paths_first_token_fails_at_once(claimed: int) -> None:
    # gas and the net threshold would be priced in the claimed token; the contract profits in USDC
    core = make_core()
    run = core.run(signal(core, profit_token=claimed))
    res = result_of(run.start(0.0))
    assert res.outcome == Outcome.FAILED and run.done
    assert "is not the path's first token" in res.reason and USDC[2:].lower() in res.reason.lower()


def test_halted_on_arrival_or_by_a_stop_in_force() -> None:
    core = make_core()
    res = result_of(core.run(signal(core), halted_by="stop 1").start(0.0))
    assert res.outcome == Outcome.HALTED and res.reason == "stop 1"
    lines = core.on_control(Message(domain=3, tlvs=(EmergencyStop(scope=int(StopScope.STRATEGY), scope_value=3,
                                                                  stop_id=5, reason="r", sender="ops"),)))
    assert lines and "from 'ops'" in lines[0]
    res = result_of(core.run(signal(core, signal_id=2)).start(0.0))
    assert res.outcome == Outcome.HALTED and "'ops'" in res.reason


def test_trade_size_limit_rejects_by_risk() -> None:
    core = make_core(limits={"max_amount_in": {USDC: AMOUNT_IN - 1}})
    res = result_of(core.run(signal(core)).start(0.0))
    assert res.outcome == Outcome.REJECTED_BY_RISK and "trade size" in res.reason


def test_market_ready_needs_the_head_and_every_pool_of_the_path() -> None:
    core = make_core()
    sig = signal(core)
    run = core.run(replace(sig, identity=replace(sig.identity, block_number=BLOCK + 1)))
    assert not run.market_ready()  # no header of the signal's block yet
    core.on_market_data(Message(domain=1, tlvs=(header(BLOCK + 1),)))
    assert run.market_ready()
    # A resync: invalidated, then fresh snapshots. In between the executor is behind the strategy,
    # however new its head is: not ready (this was the "pool stale: ... is invalidated" flake).
    core.on_market_data(Message(domain=1, tlvs=(StateInvalidation(chain_id=CHAIN, pool=0, from_block=0,
                                                                  reason=int(InvalidationReason.RESYNC), detail=""),)))
    assert not run.market_ready()
    core.on_market_data(market(BLOCK + 1))
    assert run.market_ready()


def test_revalidation_stale_ends_before_any_rpc() -> None:
    core = make_core()
    run = core.run(signal(core))
    run.start(0.0)
    core.on_market_data(Message(domain=1, tlvs=(snapshot(POOL_B, 2_100_000 * 10**6, 1000 * 10**18, BLOCK + 1),)))
    res = result_of(run.on(MarketReady(2.0)))  # the wait ran out; re-validation decides
    assert res.outcome == Outcome.STALE and "path output changed" in res.reason


def test_simulation_revert_or_mismatch_is_stale() -> None:
    core = make_core()
    run = core.run(signal(core))
    run.start(0.0)
    run.on(MarketReady(0.0))
    res = result_of(run.on(SimulationFailed("eth_call reverted: X")))
    assert res.outcome == Outcome.STALE and res.reason == "simulation: eth_call reverted: X"

    run = core.run(signal(core, signal_id=2))
    run.start(0.0)
    run.on(MarketReady(0.0))
    run.on(Simulated(run.gross))
    assert result_of(run.on(SimulationFailed("eth_estimateGas reverted: Y"))).outcome == Outcome.STALE

    run = core.run(signal(core, signal_id=3))
    run.start(0.0)
    run.on(MarketReady(0.0))
    run.on(Simulated(run.gross - 1))
    res = result_of(run.on(Estimated(200_000)))
    assert res.outcome == Outcome.STALE and "simulated profit" in res.reason


def test_calldata_carries_the_revalidated_hops() -> None:
    core = make_core()
    run = core.run(signal(core))
    run.start(0.0)
    (sim,) = run.on(MarketReady(0.0))
    hops, min_profit = decode_execute(sim.data)
    assert [h.factory.lower() for h in hops] == [F_A, F_B] and hops[0].amount_in == AMOUNT_IN
    assert min_profit == run.gross > 0


def test_gas_limit_above_max_fails() -> None:
    core = make_core(gas={"max_gas_limit": 100_000})
    run = core.run(signal(core))
    run.start(0.0)
    run.on(MarketReady(0.0))
    run.on(Simulated(run.gross))
    res = result_of(run.on(Estimated(200_000)))
    assert res.outcome == Outcome.FAILED and "above max 100000" in res.reason


def test_gas_price_limit_unpriceable_gas_and_unprofitable() -> None:
    core = make_core(limits={"max_gas_price_wei": GWEI})
    res = result_of(to_head(core.run(signal(core))))
    assert res.outcome == Outcome.REJECTED_BY_RISK and "gas price" in res.reason

    core = make_core(executor={"gas_token": OTHER})  # no pool prices the gas token in USDC
    res = result_of(to_head(core.run(signal(core))))
    assert res.outcome == Outcome.FAILED and "cannot price gas" in res.reason

    core = make_core(validation={"min_profit": {USDC: 10**15}})
    res = result_of(to_head(core.run(signal(core))))
    assert res.outcome == Outcome.UNPROFITABLE and "min profit" in res.reason


def test_shadow_reports_simulated_and_signs_nothing() -> None:
    core = make_core("shadow")
    run = core.run(signal(core))
    res = result_of(to_head(run))
    assert res.outcome == Outcome.SIMULATED and res.realized_profit == run.gross == res.expected_profit
    assert res.gas_used == 200_000 and res.block_number == BLOCK and res.effective_gas_price == 2 * GWEI
    assert core.nonces.next == 7


def test_a_stop_arriving_during_simulation_halts_before_signing() -> None:
    core = make_core()
    run = core.run(signal(core))
    run.start(0.0)
    run.on(MarketReady(0.0))
    run.on(Simulated(run.gross))
    core.on_control(Message(domain=3, tlvs=(EmergencyStop(scope=int(StopScope.ALL), scope_value=0, stop_id=1,
                                                          reason="r", sender="risk"),)))
    res = result_of(run.on(Estimated(200_000)))  # the head is on the bus: priced and checked at once
    assert res.outcome == Outcome.HALTED
    core.on_control(Message(domain=3, tlvs=(Resume(scope=int(StopScope.ALL), scope_value=0, stop_id=0,
                                                   reason="ok", sender="risk"),)))
    assert core.halts.stops == {}


# --------------------------------------------------------------------------- public


def test_public_executed_with_the_realized_profit() -> None:
    core = make_core()
    run, t = to_watch(core)
    (poll,) = run.on(Polled(10.1))
    assert isinstance(poll, PollReceipts) and poll.delay == 0.5
    actions = run.on(Polled(10.6, 0, receipt(t, logs=(profit_log(run.gross),))))
    assert actions[0] == SettleNonce(7, t.hash_hex)
    res = result_of(actions)
    assert res.outcome == Outcome.EXECUTED and res.realized_profit == run.gross and res.tx_hash == t.tx_hash
    assert res.gas_used == 200_000 and res.effective_gas_price == 2 * GWEI and run.done


def test_public_reverted_and_mined_without_our_event() -> None:
    core = make_core()
    run, t = to_watch(core)
    res = result_of(run.on(Polled(10.1, 0, receipt(t, status=0))))
    assert res.outcome == Outcome.REVERTED and "reverted on chain" in res.reason
    core = make_core()
    run, t = to_watch(core)
    res = result_of(run.on(Polled(10.1, 0, receipt(t, logs=(profit_log(1, contract=OTHER),)))))
    assert res.outcome == Outcome.FAILED and "without an ArbitrageExecuted" in res.reason


def test_stuck_transaction_is_replaced_then_cancelled_then_given_up() -> None:
    core = make_core()
    run, t = to_watch(core)
    run.on(Polled(10.0))  # the watch's timers start at the first answer
    (repl,) = run.on(Polled(13.0))  # replace_after_s passed
    assert isinstance(repl, Sign) and repl.nonce == 7 and repl.data == run.data
    assert repl.max_priority_fee_per_gas * 10_000 >= t.max_priority_fee_per_gas * 11_250
    t2 = tx(fee=repl.max_fee_per_gas, tip=repl.max_priority_fee_per_gas, n=2)
    rec, bc = run.on(Signed(t2))
    assert isinstance(rec, RecordTx) and isinstance(bc, Broadcast)
    mark, pub, log, poll = run.on(Broadcasted(t2))
    assert started_of([pub])[0].tx_hash == t2.tx_hash and isinstance(log, Log) and "replaced nonce 7" in log.text
    assert poll.hashes == (t.hash_hex, t2.hash_hex) and poll.delay == 0.5
    assert isinstance(run.on(Polled(16.5))[0], PollReceipts)  # max_replacements = 1: no second one
    (cancel,) = run.on(Polled(20.0))  # receipt_timeout_s: cancel with a 0-value self-transfer
    assert cancel.to == ME and cancel.gas_limit == CANCEL_GAS and cancel.data == b"" and cancel.nonce == 7
    t3 = tx(fee=cancel.max_fee_per_gas, tip=cancel.max_priority_fee_per_gas, gas=CANCEL_GAS, n=3)
    run.on(Signed(t3))
    _, _, log, poll = run.on(Broadcasted(t3))
    assert log.level == "warning" and "cancelling nonce 7" in log.text and len(poll.hashes) == 3
    res = result_of(run.on(Polled(30.0)))  # twice the timeout: give up
    assert res.outcome == Outcome.NOT_INCLUDED and "after replacements and a cancel" in res.reason


def test_the_cancel_being_mined_is_not_included() -> None:
    core = make_core(submission={"max_replacements": 0})
    run, t = to_watch(core)
    run.on(Polled(10.0))
    (cancel,) = run.on(Polled(20.0))
    t3 = tx(fee=cancel.max_fee_per_gas, tip=cancel.max_priority_fee_per_gas, gas=CANCEL_GAS, n=3)
    run.on(Signed(t3))
    run.on(Broadcasted(t3))
    res = result_of(run.on(Polled(21.0, 1, receipt(t3))))
    assert res.outcome == Outcome.NOT_INCLUDED and "cancelled: nonce 7" in res.reason


def test_fee_cap_prevents_a_cancel() -> None:
    core = make_core(gas={"max_fee_per_gas": 2 * GWEI + GWEI // 2}, submission={"max_replacements": 0})
    run, _ = to_watch(core)
    run.on(Polled(10.0))
    res = result_of(run.on(Polled(20.0)))
    assert res.outcome == Outcome.NOT_INCLUDED and "fee cap prevents a cancel" in res.reason


# --------------------------------------------------------------------------- private and hybrid


def to_bundles(core: ExecutorCore) -> tuple[SignalRun, Tx]:
    run = core.run(signal(core))
    (sign,) = to_head(run)
    t = tx(fee=sign.max_fee_per_gas, tip=sign.max_priority_fee_per_gas, gas=sign.gas_limit)
    rec, check = run.on(Signed(t))
    assert isinstance(rec, RecordTx)
    assert check == CallBundle(1, t.raw, BLOCK + 1)  # the first builder that simulates bundles
    return run, t


def test_private_bundle_reverting_in_call_bundle_is_stale_and_frees_the_nonce() -> None:
    core = make_core("private")
    run, t = to_bundles(core)
    actions = run.on(BundleChecked("execution reverted"))
    assert actions[0] == SettleNonce(7, None)
    res = result_of(actions)
    assert res.outcome == Outcome.STALE and res.reason == "eth_callBundle at b1: execution reverted"
    assert core.nonces.next == 7  # never broadcast: the nonce is not spent


def test_private_no_builder_accepts_fails() -> None:
    core = make_core("private")
    run, t = to_bundles(core)
    (send,) = run.on(BundleChecked(None))
    assert send == SendBundles(t.raw, (BLOCK + 1, BLOCK + 2))
    actions = run.on(BundlesSent(1.0, 0, ("b0: down", "b1: down")))
    assert actions[0] == SettleNonce(7, None)
    assert "b0: down; b1: down" in result_of(actions).reason


def test_private_included_and_not_included() -> None:
    core = make_core("private")
    run, t = to_bundles(core)
    run.on(BundleChecked(None))
    pub, poll = run.on(BundlesSent(20.0, 4))
    assert started_of([pub])[0].nonce == 7 and poll == PollPrivate(t.hash_hex, 0.0, 25.0)
    (poll,) = run.on(PrivatePolled(20.1, None, BLOCK + 1))
    assert poll == PollPrivate(t.hash_hex, 0.5, 25.0)
    res = result_of(run.on(PrivatePolled(20.6, receipt(t, logs=(profit_log(run.gross),)), -1)))
    assert res.outcome == Outcome.EXECUTED

    core = make_core("private")
    run, t = to_bundles(core)
    run.on(BundleChecked(None))
    run.on(BundlesSent(20.0, 4))
    (final,) = run.on(PrivatePolled(20.1, None, BLOCK + 3))  # past the last target block
    assert final == PollReceipts((t.hash_hex,), 0.0) and run.step is Step.PRIVATE_FINAL
    actions = run.on(Polled(20.2))
    assert actions[0] == SettleNonce(7, None)
    res = result_of(actions)
    assert res.outcome == Outcome.NOT_INCLUDED and f"{[BLOCK + 1, BLOCK + 2]}" in res.reason


def test_hybrid_falls_back_to_public_after_the_private_timeout() -> None:
    core = make_core("hybrid")
    run, t = to_bundles(core)
    run.on(BundleChecked(None))
    run.on(BundlesSent(20.0, 4))
    (final,) = run.on(PrivatePolled(25.0, None, BLOCK + 1))  # the deadline, blocks not yet passed
    log, bc = run.on(Polled(25.1))
    assert "sending publicly" in log.text and bc == Broadcast(t)
    mark, poll = run.on(Broadcasted(t))  # ExecutionStarted went out with the bundle: not again
    assert isinstance(mark, MarkPublic) and isinstance(poll, PollReceipts) and core.nonces.next == 8
    res = result_of(run.on(Polled(25.2, 0, receipt(t, logs=(profit_log(run.gross),)))))
    assert res.outcome == Outcome.EXECUTED


# --------------------------------------------------------------------------- the machine's rules


def test_a_nonce_a_transaction_the_executor_did_not_sign_took_fails_the_signal_with_one_line() -> None:
    """The executor is the account's one signer (the rebalancer's transactions go through it): a refusal for
    a nonce used means the key was used outside it. Nothing is signed again: one error line, the refused row
    settled (it never left), the signal FAILED, and the tracker moved up to the chain's pending count once,
    so the next signal takes the first free nonce and is not refused the same way."""
    core = make_core()
    run = core.run(signal(core))
    (sign,) = to_head(run)
    t = tx(nonce=sign.nonce, fee=sign.max_fee_per_gas, tip=sign.max_priority_fee_per_gas, gas=sign.gas_limit)
    _, bc = run.on(Signed(t))
    acts = run.on(NonceUsed(9, "nonce too low"))
    assert acts[0] == SettleNonce(7, None) and not any(isinstance(a, (Sign, Broadcast)) for a in acts)
    (line,) = [a for a in acts if isinstance(a, Log)]
    assert line.level == "error" and "did not sign" in line.text and "8 -> 9" in line.text
    res = result_of(acts)
    assert res.outcome == Outcome.FAILED and "nonce 7 refused: nonce too low" in res.reason and run.done
    assert core.nonces.next == 9 and core.nonces.taken == {}
    nxt = core.run(signal(core, signal_id=2))
    (sign2,) = to_head(nxt)
    assert sign2.nonce == 9

    # a refusal whose pending count is not past our nonce: FAILED, the nonce never used given back
    core = make_core()
    run = core.run(signal(core, signal_id=3))
    (sign,) = to_head(run)
    run.on(Signed(tx(nonce=sign.nonce)))
    assert result_of(run.on(NonceUsed(7, "replacement transaction underpriced"))).outcome == Outcome.FAILED
    assert core.nonces.next == 7 and core.nonces.taken == {}  # never used: given back, no gap left
    # ... and with a later nonce out meanwhile, that gap is filled
    run = core.run(signal(core, signal_id=4))
    (sign,) = to_head(run)
    assert core.nonces.take(5) == 8
    run.on(Signed(tx(nonce=sign.nonce)))
    acts = run.on(NonceUsed(7, "replacement transaction underpriced"))
    assert FillNonce(7) in acts and result_of(acts).outcome == Outcome.FAILED and core.nonces.next == 9


def test_a_replacement_refused_for_its_nonce_watches_on_and_the_first_transaction_s_receipt_settles_it() -> None:
    """Found under load on the devnet: the first transaction of nonce 7 is mined between the last receipt poll and
    its replacement, which the node then refuses ("nonce too low"). With one signer that nonce is ours: the watch
    goes on with what was sent, and the mined transaction's receipt ends the signal EXECUTED (before: FAILED)."""
    core = make_core()
    run, t = to_watch(core)
    run.on(Polled(10.1))  # the watch's timers start
    (repl,) = run.on(Polled(13.5))  # replace_after_s 3.0: a bumped replacement of nonce 7
    assert isinstance(repl, Sign) and repl.nonce == 7
    run.on(Signed(tx(nonce=7, n=2)))
    note, poll = run.on(NonceUsed(8, "nonce too low"))
    assert isinstance(note, Log) and note.level == "info" and "watching on" in note.text
    assert poll == PollReceipts((t.hash_hex,), 0.0) and run.step is Step.WATCH and core.nonces.next == 8
    res = result_of(run.on(Polled(13.6, 0, receipt(t, logs=(profit_log(run.gross),)))))
    assert res.outcome == Outcome.EXECUTED and res.tx_hash == t.tx_hash


def test_a_cancel_refused_for_its_nonce_watches_on_until_the_second_deadline() -> None:
    core = make_core()
    run, t = to_watch(core)
    run.on(Polled(10.1))
    timeout = run.cfg.submission.receipt_timeout_s
    acts = run.on(Polled(10.1 + timeout))
    (cancel,) = [a for a in acts if isinstance(a, Sign)]
    assert cancel.nonce == 7 and cancel.gas_limit == CANCEL_GAS
    run.on(Signed(tx(nonce=7, n=3)))
    _, poll = run.on(NonceUsed(8, "replacement transaction underpriced"))
    assert isinstance(poll, PollReceipts) and run.step is Step.WATCH
    assert not any(isinstance(a, Sign) for a in run.on(Polled(10.2 + timeout)))  # no second cancel
    res = result_of(run.on(Polled(10.1 + 2 * timeout)))
    assert res.outcome == Outcome.NOT_INCLUDED and "still pending" in res.reason


def test_every_step_refuses_the_events_it_does_not_expect() -> None:
    events = [Start(0.0), MarketReady(0.0), Simulated(1), SimulationFailed("x"), Estimated(1),
              HeadSeen(Head(number=1, base_fee=1, timestamp=1)), Signed(tx()), Broadcasted(tx()), NonceUsed(1, "x"),
              Polled(0.0),
              BundleChecked(None), BundlesSent(0.0, 1), PrivatePolled(0.0, None, 0)]
    core = make_core()
    run = core.run(signal(core))
    for step in Step:
        run.step = step
        for ev in events:
            if type(ev) not in ACCEPTS[step]:
                with pytest.raises(CoreError):
                    run.on(ev)


def test_exactly_one_result_and_the_failure_boundary() -> None:
    core = make_core()
    run, _ = to_watch(core)
    res = result_of(run.fail("RPCError: boom"))
    assert res.outcome == Outcome.FAILED and run.done
    with pytest.raises(LifecycleError):
        run.fail("again")
    with pytest.raises(CoreError):
        run.on(Polled(1.0))


# --------------------------------------------------------------------------- restart recovery


META = {"chain_id": CHAIN, "strategy_id": 3, "profit_token": TokenId.of(CHAIN, USDC), "expected_profit": 500,
        "mode": 1, "net_expected": 400, "data": "abcd"}


def test_recover_unmined_decisions() -> None:
    gone = recover_unmined(5, [True], latest=6)
    assert gone.settle == SettleNonce(5, None) and gone.result_of[0] == Outcome.FAILED and not gone.rebroadcast
    never = recover_unmined(6, [False, False], latest=6)
    assert never.result_of[0] == Outcome.NOT_INCLUDED and "never broadcast" in never.result_of[1]
    pending = recover_unmined(6, [True, False, True], latest=6)
    assert pending.rebroadcast and pending.public == (0, 2) and pending.settle is None


def test_resumed_run_watches_settles_or_ends() -> None:
    core = make_core()
    t1, t2 = tx(nonce=6, n=1), tx(nonce=6, n=2)
    run = core.resumed(signal_id=9, meta=META, txs=[t1, t2])
    pub, poll = run.resume_watch()
    assert started_of([pub])[0].tx_hash == t1.tx_hash and poll.hashes == (t1.hash_hex, t2.hash_hex)
    (repl,) = run.on(Polled(0.0, -1, None)) or [None]
    res = result_of(run.on(Polled(1.0, 1, receipt(t2, logs=(profit_log(500),)))))
    assert res.outcome == Outcome.EXECUTED and res.signal_id == 9 and res.expected_profit == 500
    assert isinstance(repl, PollReceipts)

    run = core.resumed(signal_id=10, meta=META, txs=[t1])
    res = result_of(run.settle_recovered(0, receipt(t1, status=0), cancelled=False))
    assert res.outcome == Outcome.REVERTED

    run = core.resumed(signal_id=11, meta=META, txs=[t1])
    res = result_of(run.end_recovered(Outcome.NOT_INCLUDED, "restart: nonce 6 never broadcast before the restart"))
    assert res.outcome == Outcome.NOT_INCLUDED

    # a CEX-DEX signal's DEX leg (execution/cex/run.py) found after a restart: its exchange side is unknown here
    leg = {**META, "leg": "dex"}
    run = core.resumed(signal_id=12, meta=leg, txs=[t1])
    res = result_of(run.settle_recovered(0, receipt(t1, status=1), cancelled=False))
    assert res.outcome == Outcome.LEG_OPEN and "not re-checked" in res.reason and res.realized_profit == 0
    run = core.resumed(signal_id=13, meta=leg, txs=[t1])
    res = result_of(run.end_recovered(Outcome.NOT_INCLUDED, "restart: nonce 6 never broadcast before the restart"))
    assert res.outcome == Outcome.LEG_OPEN and "not_included" in res.reason


# --------------------------------------------------------------------------- the node's answers, typed


def test_head_receipt_and_bundle_answers_from_rpc() -> None:
    assert Head.from_rpc({"number": "0x10", "baseFeePerGas": "0x3b9aca00", "timestamp": "0x5"}) == \
        Head(number=16, base_fee=GWEI, timestamp=5)
    assert Head.from_rpc({"number": 16, "base_fee": 7, "timestamp": 5}).base_fee == 7  # the gateway's head()
    r = Receipt.from_rpc({"transactionHash": "0x" + "ab" * 32, "blockNumber": "0x2", "gasUsed": "0x5208",
                          "effectiveGasPrice": "0x1", "status": "0x1", "logs": [{"a": 1}]})
    assert r.gas_used == 21_000 and r.status == 1 and r.tx_hash_bytes == bytes.fromhex("ab" * 32) and len(r.logs) == 1
    assert Receipt.from_rpc({"transactionHash": "0x00", "blockNumber": "0x2", "gasUsed": "0x1",
                             "status": "0x0"}).effective_gas_price == 0
    assert bundle_failure({"results": [{"txHash": "0x1"}, {"revert": "BrokenPath(1)"}]}) == "BrokenPath(1)"
    assert bundle_failure({"results": [{"txHash": "0x1"}]}) is None


def test_the_head_is_fetched_only_before_any_block_header_arrived() -> None:
    cfg = config("public")
    core = ExecutorCore(cfg, address=ME, builders=[])
    assert core.latest_head is None
    core.on_market_data(Message(domain=1, tlvs=market().tlvs[1:]))  # the pools, no header yet
    core.nonces.reconcile(latest=7, pending=7, max_live=None)
    core.state.apply(header())  # gas known to the market, but not as the executor's head
    run = core.run(signal(core))
    run.start(0.0)
    run.on(MarketReady(0.0))
    run.on(Simulated(run.gross))
    (fh,) = run.on(Estimated(200_000))
    assert isinstance(fh, FetchHead) and run.step is Step.AWAIT_HEAD
    acts = run.on(HeadSeen(Head(number=BLOCK, base_fee=GWEI, timestamp=1)))
    assert any(isinstance(a, Sign) for a in acts)
    # a header on the bus becomes the head; an older one never replaces it
    core.on_market_data(Message(domain=1, tlvs=(header(BLOCK + 2, base_fee=3 * GWEI),)))
    core.on_market_data(Message(domain=1, tlvs=(header(BLOCK + 1),)))
    assert core.latest_head == Head(number=BLOCK + 2, base_fee=3 * GWEI, timestamp=1)


def test_a_bundle_asks_the_node_for_its_target_head() -> None:
    core = make_core("private")
    run = core.run(signal(core))
    run.start(0.0)
    run.on(MarketReady(0.0))
    run.on(Simulated(run.gross))
    (fh,) = run.on(Estimated(200_000))
    assert isinstance(fh, FetchHead)  # target blocks come from the node's newest head


def test_never_two_of_our_transactions_through_one_pool_until_the_first_settles() -> None:
    core = make_core()
    first = core.run(signal(core, signal_id=1))
    assert any(isinstance(a, Sign) for a in to_head(first))  # signed: its pools are in flight
    second = core.run(signal(core, signal_id=2))
    res = result_of(to_head(second))
    assert res.outcome == Outcome.STALE and "signal 1" in res.reason and "not yet settled" in res.reason
    first.fail("dropped")  # the first run ends: its pools are free again
    assert core.pools_in_flight == {}
    third = core.run(signal(core, signal_id=3))
    assert any(isinstance(a, Sign) for a in to_head(third))


def test_v4_hop_is_addressed_by_its_key_with_a_configured_hook_only() -> None:
    """A V4 instrument id carries 20 bytes of the pool id: the executor rebuilds the PoolKey from the
    pool's state and the venue's configured hooks (or none), and refuses a pool whose hooks it was not
    told about."""
    from execution.validate import v4_hooks_of
    from market.amm import uniswap_v4 as uv4
    from market.amm.pool_key import PoolKey
    from market.amm.tick_math import get_sqrt_ratio_at_tick
    from market.pools import V4Pool

    a, b = "0x" + "11" * 20, "0x" + "22" * 20
    hook = "0x00000000000000000000000000000000c0de0040"
    state = uv4.V4PoolState(sqrt_price_x96=get_sqrt_ratio_at_tick(0), tick=0, liquidity=10**18, lp_fee=3000,
                            tick_spacing=60, ticks={})
    for hooks in ("0x" + "0" * 40, hook):
        pool = PoolKey.of(a, b, 3000, 60, hooks).instrument_id(1, Venue.DEVNET_V4)
        s = V4Pool(pool=pool, block_number=1, last_event=(1, 0), lp_fee=3000, tick_spacing=60, protocol_fee=0, v4=state)
        assert v4_hooks_of(pool, s, [hook]) == hooks
        assert v4_hooks_of(pool, s, []) == (hooks if hooks == "0x" + "0" * 40 else None)


@pytest.mark.parametrize(("flash", "selector"), [
    (None, EXECUTE_SELECTOR), (FlashSource.POOL, EXECUTE_SELECTOR), (FlashSource.BALANCER, EXECUTE_BALANCER_SELECTOR)])
def test_the_signals_flash_source_picks_the_contracts_entry_point(flash: int | None, selector: bytes) -> None:
    """FlashLoan BALANCER -> executeBalancer (the Vault lends); POOL or no FlashLoan -> execute."""
    core = make_core()
    run = core.run(signal(core, flash=flash))
    run.start(10.0)
    (sim,) = run.on(MarketReady(10.0))
    assert isinstance(sim, Simulate) and sim.data[:4] == selector
    hops, _ = decode_execute(sim.data)
    assert [h.pool.lower() for h in hops] == ["0x" + "aa" * 20, "0x" + "bb" * 20]


# --------------------------------------------------------------------------- concurrent signals (execution/schedule.py)


def test_a_signal_that_waited_for_our_transaction_re_validates_only_past_the_block_it_landed_in() -> None:
    core = make_core()
    run = core.run(signal(core), after_block=BLOCK + 1)
    (a,) = run.start(10.0)
    assert isinstance(a, AwaitMarket) and not run.market_ready()  # the head is the signal's block, not ours
    core.on_market_data(market(BLOCK + 1))
    assert run.market_ready()


def test_a_nonce_given_up_below_one_handed_out_is_filled_by_a_self_transfer() -> None:
    core = make_core("private")
    run, t = to_bundles(core)
    assert core.nonces.take(2) == 8  # another signal's run, in flight meanwhile
    actions = run.on(BundleChecked("execution reverted"))
    fill = [a for a in actions if isinstance(a, FillNonce)]
    assert actions[0] == SettleNonce(7, None) and fill == [FillNonce(7)]
    assert any(isinstance(a, Log) and "filling it" in a.text for a in actions)
    assert result_of(actions).outcome == Outcome.STALE and core.nonces.next == 9
    s = core.fill_sign(7, Head(number=BLOCK, base_fee=GWEI, timestamp=1))
    assert (s.nonce, s.gas_limit, s.to, s.data) == (7, CANCEL_GAS, ME, b"")
    assert s.max_fee_per_gas > GWEI and s.max_priority_fee_per_gas >= GWEI
    assert core.release_nonce(8) == [] and core.nonces.next == 8  # the highest: given back, no fill


def test_the_pool_guard_still_refuses_a_second_transaction_through_a_pool_in_flight() -> None:
    """The scheduler never starts two signals through one pool; the core's own guard stays behind it."""
    core = make_core()
    run, _ = to_watch(core)
    second = core.run(signal(core, signal_id=2))
    res = result_of(to_head(second))
    assert res.outcome == Outcome.STALE and "signal 1" in res.reason and core.nonces.next == 8
