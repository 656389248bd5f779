"""execution/xchain/: CROSS_CHAIN signals through the executor on the two-chain devnet, every branch of
specs/cross-chain-legs.md that needs a chain.

Two anvils (chain A 31337, chain B 31338, the devnet's ~1.5 % WETH gap: dearer on B), the official Uniswap V2
pairs on each, and an AlphaPulseArb per chain owned by its own encrypted keystore and holding that chain's
inventory (USDC on A, WETH on B). The executor runs in-process (its trio shell, ``Executor.handle``) with its
chain sides built as the process builds them (``build_sides``, keystores unlocked by ``unlock`` /
``unlock_chains``), fed both chains' pools as a collector would publish them; the signal is the strategy's
(``strategy.cross_chain``: sized on both pools' exact curves, ``signal_tlvs``). The restart tests cut the run
in-process (as a kill: nothing after it runs), and one kills the executor process itself with SIGKILL.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
from arb_testkit import Chain, abi_call
from eth_utils import to_checksum_address

from chain.rpc import HttpRpc
from execution.build import load_artifact
from execution.calldata import Kind, encode_constructor_args, encode_set_factory
from execution.chain import ChainGateway
from execution.config import config_from_dict
from execution.executor import Executor, _Queued
from execution.keystore import new_keystore_account
from execution.process import unlock, unlock_chains
from execution.store import ExecutorStore
from execution.validate import Signal
from execution.xchain.run import CrossChainRunner, build_sides
from market.pools import V2Pool
from protocol.execution import ChainLegReport, DexLegResult, ExecutionResult, ExecutionStarted, Outcome
from protocol.header import Domain
from protocol.ids import PoolId, TokenId, Venue, VenueKind
from protocol.market import BlockHeader, PoolSnapshot
from protocol.message import Message
from protocol.signals import SignalKind
from protocol.system import TraceContext
from strategy.cross_chain import ChainLeg, CrossChainParams, CrossChainSizer, signal_tlvs

A, B = 31337, 31338
ROOT = Path(__file__).resolve().parents[2]
USDC_INVENTORY, WETH_INVENTORY = 50_000 * 10**6, 20 * 10**18


class Published:
    def __init__(self) -> None:
        self.messages: list[list[Any]] = []

    async def publish(self, tlvs: Any) -> int:
        self.messages.append(list(tlvs) if isinstance(tlvs, list) else [tlvs])
        return len(self.messages)

    def next_source_seq(self) -> int:
        return len(self.messages) + 1


class Side:
    """One chain of the pair: its devnet, our contract on it and the keystore that owns it."""

    def __init__(self, net: Any, tmp: Path, name: str) -> None:
        self.net, self.dep = net, net.deployment
        self.chain = Chain(self.dep.rpc_url)
        self.weth, self.usdc = self.dep.address_of("WETH"), self.dep.address_of("USDC")
        self.pool = self.dep.pool("uniswap_v2_a", "WETH", "USDC")
        self.pool_id = PoolId.of(self.dep.chain_id, Venue.DEVNET_V2_A, VenueKind.UNISWAP_V2, self.pool.address,
                                 self.pool.token0, self.pool.token1)
        self.trader = self.dep.funded_accounts[0]
        self.keystore, self.password = tmp / f"keystore-{name}.json", tmp / f"password-{name}"
        self.password.write_text(f"pw-{name}\n")
        account = new_keystore_account(self.keystore, f"pw-{name}", kdf="pbkdf2", iterations=2)
        self.owner = account.address
        self.chain.rpc("anvil_setBalance", self.owner, hex(10**21))
        self.chain.rpc("anvil_impersonateAccount", self.owner)
        code = bytes.fromhex(load_artifact()["bytecode"][2:]) + encode_constructor_args(self.trader)
        self.arb = to_checksum_address(self.chain.send(self.owner, None, code, gas=10_000_000)["contractAddress"])
        self.factory = next(v for v in self.dep.v2 if v.name == "uniswap_v2_a").factory
        self.chain.send(self.owner, self.arb, encode_set_factory(self.factory, Kind.V2))
        self.chain.rpc("anvil_stopImpersonatingAccount", self.owner)
        self.chain.send(self.trader, self.usdc, abi_call("transfer(address,uint256)", self.arb, USDC_INVENTORY))
        self.chain.send(self.trader, self.weth, abi_call("transfer(address,uint256)", self.arb, WETH_INVENTORY))

    def entry(self) -> dict[str, Any]:
        return {"chain_id": self.dep.chain_id, "rpc_url": self.dep.rpc_url, "contract": self.arb,
                "gas_token": self.weth, "keystore": {"path": str(self.keystore), "password_file": str(self.password)},
                "venues": [{"venue": "DEVNET_V2_A", "factory": self.factory}], "bridge": self.dep.bridge.address}

    def balances(self) -> tuple[int, int]:
        """(USDC, WETH) our contract holds on this chain."""
        return self.chain.balance_of(self.usdc, self.arb), self.chain.balance_of(self.weth, self.arb)

    def nonce(self) -> int:
        return int(self.chain.rpc("eth_getTransactionCount", self.owner, "latest"), 16)

    def records(self) -> list[Any]:
        b = self.chain.rpc("eth_getBlockByNumber", "latest", False)
        r0, r1, _ = self.net.client.v2_reserves(self.pool)
        number = int(b["number"], 16)
        return [BlockHeader(chain_id=self.dep.chain_id, number=number, timestamp=int(b["timestamp"], 16),
                            gas_limit=int(b["gasLimit"], 16), gas_used=int(b["gasUsed"], 16),
                            hash=bytes.fromhex(b["hash"][2:]), parent_hash=bytes.fromhex(b["parentHash"][2:]),
                            base_fee=int(b["baseFeePerGas"], 16), priority_fee=10**9),
                PoolSnapshot(pool=self.pool_id, block_number=number, fee_ppm=3000, tick_spacing=0, reserve0=r0,
                             reserve1=r1, sqrt_price_x96=0, tick=0, liquidity=0, ticks=())]

    def leg(self, *, sell_usdc: bool, block_time_ms: int) -> ChainLeg:
        r0, r1, _ = self.net.client.v2_reserves(self.pool)
        state = V2Pool(pool=self.pool_id, block_number=0, last_event=(0, 0), reserve0=r0, reserve1=r1)
        zero_for_one = (self.pool.token0 == self.usdc) == sell_usdc
        return ChainLeg(chain_id=self.dep.chain_id, pool=state, zero_for_one=zero_for_one,
                        quote_token=TokenId.of(self.dep.chain_id, self.usdc),
                        gas_token=TokenId.of(self.dep.chain_id, self.weth), price_pools=(state,), gas_units=150_000,
                        gas_price_wei=2 * 10**9, block_time_ms=block_time_ms)

    def buy_weth(self, usdc: int, tip: int) -> str:
        """A competitor's router purchase of WETH for ``usdc`` on this chain's pool (not waited for)."""
        router = self.dep.v2_venue("uniswap_v2_a").router
        return self.chain.rpc("eth_sendTransaction", {
            "from": self.trader, "to": router, "gas": hex(300_000), "maxPriorityFeePerGas": hex(tip),
            "maxFeePerGas": hex(tip + 100 * 10**9), "data": "0x" + abi_call(
                "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)", usdc, 0,
                [self.usdc, self.weth], self.trader, 2**40).hex()})

    def sell_weth(self, amount: int, tip: int) -> str:
        """A competitor's router sale of WETH on this chain's pool (not waited for: the chain may not mine)."""
        router = self.dep.v2_venue("uniswap_v2_a").router
        return self.chain.rpc("eth_sendTransaction", {
            "from": self.trader, "to": router, "gas": hex(300_000), "maxPriorityFeePerGas": hex(tip),
            "maxFeePerGas": hex(tip + 100 * 10**9), "data": "0x" + abi_call(
                "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)", amount, 0,
                [self.weth, self.usdc], self.trader, 2**40).hex()})


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Side, Side]]:
    from tools.devnet.deploy import chain_spec, start_devnet

    nets, tmp = [], Path(tempfile.mkdtemp(prefix="apxc-"))
    try:
        for i, chain_id in enumerate((A, B)):
            nets.append(start_devnet(chain_id, spec=chain_spec(i)))
        yield Side(nets[0], tmp, "a"), Side(nets[1], tmp, "b")
    finally:
        for n in nets:
            n.close()
        shutil.rmtree(tmp, ignore_errors=True)


class World:
    def __init__(self, a: Side, b: Side, ex: Executor, published: Published) -> None:
        self.a, self.b, self.ex, self.published, self.seq = a, b, ex, published, 0
        self.signal_again: tuple[Signal, Message, Any] | None = None
        self.config = ex.config

    def feed(self, ex: Executor | None = None) -> None:
        self.seq += 1
        (ex or self.ex).on_market_data(Message(domain=Domain.MARKET_DATA, tlvs=self.a.records() + self.b.records(),
                                       source_id=7, source_seq=self.seq, domain_seq=self.seq,
                                       event_time_ns=time.time_ns(), receive_time_ns=time.time_ns()))

    def signal(self) -> tuple[Signal, Message, Any]:
        """The strategy's signal for the devnet's gap: buy WETH on A (cheap), sell it on B."""
        self.feed()
        source = self.a.leg(sell_usdc=True, block_time_ms=2000)
        dest = self.b.leg(sell_usdc=False, block_time_ms=250)
        params = CrossChainParams(bridge_id=1, bridge_fee_bps=1, bridge_gas_units=80_000, rebalance_every=5,
                                  drift_k_milli=0)
        quote = CrossChainSizer(source, dest, params, sigma_ppb=0).best(quote_inventory=10_000 * 10**6,
                                                                         base_inventory=5 * 10**18)
        assert quote is not None and quote.net_profit > 0, quote
        self.seq += 1
        head = self.ex.core.state.gas[A].block_number
        tlvs = signal_tlvs(quote, source, dest, bridge_id=1, signal_id=(1 << 48) + self.seq, strategy_id=3,
                           strategy="cross_chain", confidence_bps=9000, source_block=head,
                           dest_position=(self.ex.core.state.gas[B].block_number, 0xFFFFFFFF),
                           trace=TraceContext(trace_id=self.seq, span_id=1, flags=1, parent_span_id=0, origin_ns=0))
        msg = Message(domain=Domain.SIGNAL, tlvs=list(tlvs), source_id=9, source_seq=self.seq, domain_seq=self.seq,
                      event_time_ns=time.time_ns(), receive_time_ns=time.time_ns())
        sig = Signal.from_message(msg)
        assert sig.identity.kind == SignalKind.CROSS_CHAIN
        return sig, msg, quote

    async def run(self, sig: Signal, msg: Message, *, halted_by: str | None = None) -> tuple[
            ExecutionResult, ChainLegReport, ChainLegReport]:
        before = len(self.published.messages)
        await self.ex.handle(_Queued(sig=sig, msg=msg, halted_by=halted_by, seq=1))
        (result,) = [t for m in self.published.messages[before:] for t in m if type(t) is ExecutionResult]
        last = self.published.messages[-1]
        assert result is last[0]  # one message: the result and both leg reports
        reports = [t for t in last if type(t) is ChainLegReport]
        assert len(reports) == 2 and [r.leg for r in reports] == [0, 1] and [r.chain_id for r in reports] == [A, B]
        assert all(r.outcome == result.outcome and r.signal_id == result.signal_id for r in reports)
        print(f"\n{Outcome(result.outcome).name}: {result.reason}")
        return result, reports[0], reports[1]

    def started(self) -> list[ExecutionStarted]:
        return [t for m in self.published.messages for t in m if type(t) is ExecutionStarted]


@asynccontextmanager
async def open_executor(config: Any, published: Published,
                        feed: Callable[[Executor], None] | None = None) -> AsyncIterator[Executor]:
    """The executor as its process builds it: its own chain's gateway and keystore, a side per chain (the other
    chain's keystore unlocked from the files the configuration names), each chain's open transactions settled,
    then (after the market data, ``feed``) the cross-chain signals a run before left without an outcome."""
    rpc = HttpRpc(config.rpc_url, timeout=10.0)
    store = ExecutorStore(config.state_db)
    side_rpcs: list[HttpRpc] = []
    try:
        gateway = ChainGateway(rpc, unlock(config), chain_id=config.chain_id, contract=config.contract)
        ex = Executor(config, gateway, store, published)
        await ex.recover()
        sides, side_rpcs = build_sides(ex, unlock_chains(config))
        for s in sides.values():
            if s.config.chain_id != config.chain_id:
                await s.recover()
        ex.xchain = CrossChainRunner(ex, sides)
        if feed is not None:
            feed(ex)
        await ex.xchain.recover()
        yield ex
    finally:
        for r in (rpc, *side_rpcs):
            await r.aclose()
        store.close()


@asynccontextmanager
async def world(pair: tuple[Side, Side], *, mode: str = "public", validation: dict[str, Any] | None = None,
                **cross: Any) -> AsyncIterator[World]:
    a, b = pair
    snaps = [a.net.client.snapshot(), b.net.client.snapshot()]
    tmp = Path(tempfile.mkdtemp(prefix="apxcw-"))
    table = {"leg_timeout_s": 1.5, "deadline_s": 1.5, "max_leg_open_s": 4.0, "unwind_timeout_s": 4.0,
             "max_unwind_loss_bps": 200, "chains": [a.entry(), b.entry()]}
    table.update(cross)
    config = config_from_dict({
        "executor": {"chain_id": A, "rpc_url": a.dep.rpc_url, "contract": a.arb, "gas_token": a.weth,
                     "mode": mode, "state_db": str(tmp / "state.sqlite")},
        "keystore": {"path": str(a.keystore), "password_file": str(a.password)},
        "validation": {"max_signal_age_blocks": 5, "state_wait_s": 1.0, **(validation or {})},
        "submission": {"poll_interval_s": 0.02, "receipt_timeout_s": 6.0, "replace_after_s": 30.0},
        "venues": [{"venue": "DEVNET_V2_A", "factory": a.factory}],
        "cross_chain": table,
    })
    published = Published()
    try:
        async with open_executor(config, published) as ex:
            yield World(a, b, ex, published)
    finally:
        for side, snap in zip(pair, snaps, strict=True):
            side.chain.rpc("evm_setAutomine", True)
            side.net.client.revert(snap)
        shutil.rmtree(tmp, ignore_errors=True)


async def test_both_legs_execute_and_the_reports_are_both_contracts_balances(pair: tuple[Side, Side]) -> None:
    a, b = pair
    async with world(pair) as w:
        sig, msg, quote = w.signal()
        (ua0, wa0), (ub0, wb0) = a.balances(), b.balances()
        na, nb = a.nonce(), b.nonce()
        res, r0, r1 = await w.run(sig, msg)
        assert res.outcome == Outcome.EXECUTED, res.reason
        (ua1, wa1), (ub1, wb1) = a.balances(), b.balances()
        # to the wei, on both chains: the source leg spent USDC for WETH on A, the destination leg WETH for USDC on B
        assert (ua0 - ua1, wa1 - wa0) == (r0.amount_in, r0.amount_out) == (quote.amount_in, quote.base_amount)
        assert (wb0 - wb1, ub1 - ub0) == (r1.amount_in, r1.amount_out) == (quote.base_amount, quote.amount_out)
        assert r0.result == r1.result == DexLegResult.EXECUTED and r0.unwind_result == DexLegResult.NOT_SENT
        assert r0.token_in == TokenId.of(A, a.usdc) and r1.token_out == TokenId.of(B, b.usdc)
        assert res.realized_profit == r1.amount_out - r0.amount_in == quote.gross_profit > 0
        # one transaction per chain, each from that chain's own signer and nonce sequence, at once
        assert (a.nonce(), b.nonce()) == (na + 1, nb + 1)
        assert sorted(s.chain_id for s in w.started()) == [A, B]
        for r, side in ((r0, a), (r1, b)):
            receipt = side.chain.rpc("eth_getTransactionReceipt", "0x" + r.tx_hash.hex())
            assert int(receipt["blockNumber"], 16) == r.block_number and int(receipt["gasUsed"], 16) == r.gas_used
            assert receipt["from"].lower() == side.owner.lower()
        assert res.tx_hash == r0.tx_hash and res.chain_id == A


async def test_a_nonce_a_key_used_outside_the_executor_took_fails_the_leg_once_and_the_next_signal_trades(
        pair: tuple[Side, Side], caplog: pytest.LogCaptureFixture) -> None:
    """The executor is the owner's one signer (the rebalancer's transactions go through it). Someone signs with
    B's key outside it after its nonces were reconciled: B's leg is refused for its nonce -- one error line, the
    leg not sent (A's leg, landed, is unwound), nothing signed again -- and B's tracker is moved up to the chain's
    pending count once, so the next signal trades on both chains."""
    a, b = pair
    async with world(pair) as w:
        b.chain.rpc("anvil_impersonateAccount", b.owner)
        b.chain.send(b.owner, b.arb, abi_call("withdrawToken(address,address,uint256)", b.weth, b.owner, 10**18))
        b.chain.rpc("anvil_stopImpersonatingAccount", b.owner)
        sig, msg, _ = w.signal()
        nb, wb0 = b.nonce(), b.balances()[1]
        res, _, r1 = await w.run(sig, msg)
        assert res.outcome == Outcome.UNWOUND and r1.result == DexLegResult.NOT_SENT, res.reason
        assert "nonce" in r1.reason and b.nonce() == nb and b.balances()[1] == wb0
        lines = [r for r in caplog.records if "did not sign" in r.getMessage()]
        assert len(lines) == 1 and lines[0].levelname == "ERROR", [r.getMessage() for r in lines]
        assert w.ex.xchain.sides[B].core.nonces.next == nb
        sig, msg, _ = w.signal()
        res, _, r1 = await w.run(sig, msg)
        assert res.outcome == Outcome.EXECUTED, res.reason
        assert b.nonce() == nb + 1 and wb0 - b.balances()[1] == r1.amount_in


async def test_a_leg_the_node_refuses_is_not_sent_and_the_other_is_unwound(pair: tuple[Side, Side]) -> None:
    """B's signer has no ETH left for gas: B's node refuses the signed leg (nothing of it is on chain)."""
    a, b = pair
    async with world(pair) as w:
        sig, msg, _ = w.signal()
        b.chain.rpc("anvil_setBalance", b.owner, "0x0")
        (ua0, wa0), before_b, nb = a.balances(), b.balances(), b.nonce()
        res, r0, r1 = await w.run(sig, msg)
        assert res.outcome == Outcome.UNWOUND and "insufficient funds" in r1.reason.lower(), res.reason
        assert r1.result == DexLegResult.NOT_SENT and r1.tx_hash == bytes(32)
        assert b.balances() == before_b and b.nonce() == nb
        # the nonce the refused leg took is given back: B's next transaction is not held behind a gap
        tracker = w.ex.xchain.sides[int(b.chain.rpc("eth_chainId"), 16)].core.nonces
        assert tracker.next == nb and tracker.taken == {}
        assert a.balances()[1] == wa0 and ua0 - a.balances()[0] == r0.amount_in - r0.unwind_amount_out


async def run_with_b_front_run(w: World, sig: Signal, msg: Message) -> tuple[ExecutionResult, ChainLegReport,
                                                                             ChainLegReport]:
    """Chain B stops mining; once our leg is in its pool a competitor's larger WETH sale with a higher tip goes
    first in the next block: our leg's min_out is no longer met and it reverts on chain."""
    b = w.b
    b.chain.rpc("evm_setAutomine", False)
    out: list[Any] = []

    async def competitor() -> None:
        while int(b.chain.rpc("txpool_status")["pending"], 16) < 1:  # noqa: ASYNC110 - the node's pool
            await trio.sleep(0.01)
        b.sell_weth(10 * 10**18, tip=50 * 10**9)
        b.chain.rpc("evm_mine")
        b.chain.rpc("evm_setAutomine", True)

    async with trio.open_nursery() as n:
        n.start_soon(competitor)
        out.append(await w.run(sig, msg))
    return out[0]


async def test_a_leg_reverting_on_min_out_unwinds_the_other_within_the_bound(pair: tuple[Side, Side]) -> None:
    a, b = pair
    async with world(pair, max_unwind_loss_bps=200) as w:
        sig, msg, _ = w.signal()
        (ua0, wa0), (ub0, wb0) = a.balances(), b.balances()
        with trio.fail_after(20):
            res, r0, r1 = await run_with_b_front_run(w, sig, msg)
        assert res.outcome == Outcome.UNWOUND, res.reason
        assert r1.result == DexLegResult.REVERTED and r1.gas_used > 0 and r1.amount_out == 0
        receipt = b.chain.rpc("eth_getTransactionReceipt", "0x" + r1.tx_hash.hex())
        assert int(receipt["status"], 16) == 0 and b.balances() == (ub0, wb0)  # B: only gas, paid by the signer
        assert r0.result == DexLegResult.EXECUTED and r0.unwind_result == DexLegResult.EXECUTED
        assert r0.unwind_attempts == 1 and r0.unwind_amount_in == r0.amount_out and r0.left_open == 0
        (ua1, wa1) = a.balances()
        assert wa1 == wa0  # the WETH bought on A was sold back
        assert ua0 - ua1 == r0.amount_in - r0.unwind_amount_out  # to the wei
        assert r0.unwind_amount_out >= r0.amount_in * 9_800 // 10_000  # the loss bound held
        assert res.realized_profit == r0.unwind_amount_out - r0.amount_in < 0
        assert r0.unwind_gas_cost > 0 and r0.unwind_tx_hash != bytes(32)


async def test_a_leg_not_included_within_the_budget_unwinds_the_other(pair: tuple[Side, Side]) -> None:
    a, b = pair
    async with world(pair) as w:
        sig, msg, _ = w.signal()
        (ua0, wa0), (ub0, wb0) = a.balances(), b.balances()
        nb = b.nonce()
        b.chain.rpc("evm_setAutomine", False)  # chain B includes nothing during the run
        with trio.fail_after(20):
            res, r0, r1 = await w.run(sig, msg)
        assert res.outcome == Outcome.UNWOUND, res.reason
        assert r1.result == DexLegResult.NOT_INCLUDED and r1.block_number == 0 and "still pending" in r1.reason
        assert r0.unwind_result == DexLegResult.EXECUTED and a.balances()[1] == wa0
        assert ua0 - a.balances()[0] == r0.amount_in - r0.unwind_amount_out
        # B's leg was cancelled at leg_timeout_s (a 0-value self-transfer at its nonce): once B mines, the
        # cancel takes the nonce and the contract's inventory on B never moved
        b.chain.rpc("evm_mine")
        b.chain.rpc("evm_setAutomine", True)
        assert b.nonce() == nb + 1 and b.balances() == (ub0, wb0)
        assert len([s for s in w.started() if s.chain_id == B]) == 2  # the leg and its cancel


async def test_an_unwind_that_cannot_meet_its_bound_leaves_the_leg_open(pair: tuple[Side, Side]) -> None:
    a, b = pair
    async with world(pair, max_unwind_loss_bps=0, max_unwind_attempts=2) as w:  # a round trip always loses fees
        sig, msg, _ = w.signal()
        (ua0, wa0) = a.balances()
        na = a.nonce()
        with trio.fail_after(20):
            res, r0, r1 = await run_with_b_front_run(w, sig, msg)
        assert res.outcome == Outcome.LEG_OPEN, res.reason
        assert r1.result == DexLegResult.REVERTED
        assert r0.unwind_attempts == 2 and r0.unwind_result == DexLegResult.NOT_SENT  # refused by its simulation
        assert r0.left_open == r0.amount_out > 0 and r0.unwind_amount_out == 0
        (ua1, wa1) = a.balances()
        assert (ua0 - ua1, wa1 - wa0) == (r0.amount_in, r0.amount_out) and a.nonce() == na + 1  # no unwind sent
        assert "could not be unwound" in res.reason


# --------------------------------------------------------------------------- before any leg


def _sell_weth_on_b(w: World) -> None:
    """Chain B's pool moves (the executor is not told): its priced output no longer holds."""
    b = w.b
    b.sell_weth(3 * 10**18, tip=10**9)


@pytest.mark.parametrize(("case", "outcome", "words"), [
    ("shadow", Outcome.SIMULATED, "shadow: would trade both legs"),
    ("min_profit", Outcome.UNPROFITABLE, "<= min profit"),
    ("moved", Outcome.STALE, "leg 1 (chain 31338): simulation"),
    ("halted", Outcome.HALTED, "stop 9"),
])
async def test_nothing_is_sent_when_the_signal_does_not_hold(pair: tuple[Side, Side], case: str, outcome: Outcome,
                                                             words: str) -> None:
    a, b = pair
    kw: dict[str, Any] = {"mode": "shadow"} if case == "shadow" else {}
    if case == "min_profit":
        kw["validation"] = {"min_profit": {a.usdc: 10**12}}
    async with world(pair, **kw) as w:
        sig, msg, _ = w.signal()
        if case == "moved":
            _sell_weth_on_b(w)
        before = (a.balances(), b.balances(), a.nonce(), b.nonce())
        res, r0, r1 = await w.run(sig, msg, halted_by="emergency stop 9 by 'test'" if case == "halted" else None)
        assert res.outcome == outcome and words in res.reason, res.reason
        assert r0.result == r1.result == DexLegResult.NOT_SENT and r0.amount_out == r1.amount_out == 0
        assert (a.balances(), b.balances(), a.nonce(), b.nonce()) == before and not w.started()
        if case == "moved":
            assert "simulation" in r1.reason and r0.reason == "not sent"


# --------------------------------------------------------------------------- restart


async def kill_with_b_in_flight(w: World, sig: Signal, msg: Message) -> ExecutionStarted:
    """Chain B stops mining; the executor's run is cut (cancelled, as by a kill: nothing after it runs) once B's
    leg is broadcast -- A's leg, automined, has landed. Returns B's leg's ExecutionStarted."""
    w.b.chain.rpc("evm_setAutomine", False)
    async with trio.open_nursery() as n:
        n.start_soon(w.ex.handle, _Queued(sig=sig, msg=msg, halted_by=None, seq=1))
        with trio.fail_after(10):
            while not any(s.chain_id == B for s in w.started()):  # noqa: ASYNC110 - the records published
                await trio.sleep(0.01)
        n.cancel_scope.cancel()
    assert not any(type(t) is ExecutionResult for m in w.published.messages for t in m)
    (started,) = [s for s in w.started() if s.chain_id == B]
    return started


async def restart(w: World, *, during: Callable[[], Any] | None = None) -> tuple[
        Published, ExecutionResult, ChainLegReport, ChainLegReport]:
    """A new executor on the same store (the market data fed before its recovery); ``during``: run beside the
    recovery. The signal ends exactly once: one message, the result and both leg reports, and the signal
    delivered again is not run again."""
    again = Published()
    async with trio.open_nursery() as n:
        if during is not None:
            n.start_soon(during)
        with trio.fail_after(30):
            async with open_executor(w.config, again, feed=w.feed) as ex:
                results = [t for m in again.messages for t in m if type(t) is ExecutionResult]
                assert len(results) == 1, results
                last = again.messages[-1]
                assert last[0] is results[0]
                sig, msg, _ = w.signal_again
                await ex.handle(_Queued(sig=sig, msg=msg, halted_by=None, seq=2))  # redelivered by the relay
                assert [t for m in again.messages for t in m if type(t) is ExecutionResult] == results
    res, r0, r1 = last
    assert (type(r0), type(r1)) == (ChainLegReport, ChainLegReport) and (r0.leg, r1.leg) == (0, 1)
    assert (r0.chain_id, r1.chain_id) == (A, B) and r0.outcome == r1.outcome == res.outcome
    assert "settled after an executor restart" in res.reason, res.reason
    print(f"\n{Outcome(res.outcome).name}: {res.reason}")
    return again, res, r0, r1


def assert_books(w: World, again: Published, before: tuple[tuple[int, int], tuple[int, int]]) -> None:
    """The portfolio's books, fed everything both executor runs published on the execution relay (the killed
    run's ExecutionStarted, the restarted run's one result with both leg reports), move each contract's USDC
    and WETH by exactly what the chains did, each (signal, leg) booked once."""
    from portfolio.books import Books, open_db

    d = Path(tempfile.mkdtemp(prefix="apxcb-"))
    try:
        books = Books(open_db(d / "books.sqlite"))
        msgs = [Message(domain=Domain.EXECUTION, tlvs=m, source_id=31, source_seq=i + 1, domain_seq=i + 1,
                        event_time_ns=time.time_ns(), receive_time_ns=time.time_ns())
                for i, m in enumerate(w.published.messages + again.messages)]
        books.apply(Domain.EXECUTION, msgs)
        got = books.balances_by_chain()
        for side, (u0, w0) in zip((w.a, w.b), before, strict=True):
            u1, w1 = side.balances()
            cid = side.dep.chain_id
            assert got.get(cid, {}).get(int(TokenId.of(cid, side.usdc)), 0) == u1 - u0
            assert got.get(cid, {}).get(int(TokenId.of(cid, side.weth)), 0) == w1 - w0
        assert books.db.execute("SELECT COUNT(*) FROM chain_legs").fetchone()[0] == 2
        books.db.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def assert_receipt(side: Side, tx_hash: bytes, block: int, gas_used: int, *, status: int = 1) -> None:
    receipt = side.chain.rpc("eth_getTransactionReceipt", "0x" + tx_hash.hex())
    assert int(receipt["status"], 16) == status and int(receipt["blockNumber"], 16) == block
    assert int(receipt["gasUsed"], 16) == gas_used


async def test_a_restart_after_both_legs_landed_ends_the_signal_executed_from_the_chains(
        pair: tuple[Side, Side]) -> None:
    """The run is cut while B's leg waits in B's pool; B then mines it. The restarted executor settles each leg
    from its chain (receipt, Swapped event) and the signal ends EXECUTED, once, with both reports exact."""
    a, b = pair
    async with world(pair) as w:
        sig, msg, quote = w.signal()
        w.signal_again = (sig, msg, quote)
        (ua0, wa0), (ub0, wb0) = a.balances(), b.balances()
        await kill_with_b_in_flight(w, sig, msg)
        b.chain.rpc("evm_mine")
        b.chain.rpc("evm_setAutomine", True)
        again, res, r0, r1 = await restart(w)
        assert res.outcome == Outcome.EXECUTED, res.reason
        assert_books(w, again, ((ua0, wa0), (ub0, wb0)))
        (ua1, wa1), (ub1, wb1) = a.balances(), b.balances()
        assert (ua0 - ua1, wa1 - wa0) == (r0.amount_in, r0.amount_out) == (quote.amount_in, quote.base_amount)
        assert (wb0 - wb1, ub1 - ub0) == (r1.amount_in, r1.amount_out) == (quote.base_amount, quote.amount_out)
        assert r0.result == r1.result == DexLegResult.EXECUTED and r0.left_open == r1.left_open == 0
        assert res.realized_profit == r1.amount_out - r0.amount_in == quote.gross_profit > 0
        assert_receipt(a, r0.tx_hash, r0.block_number, r0.gas_used)
        assert_receipt(b, r1.tx_hash, r1.block_number, r1.gas_used)
        assert res.tx_hash == r0.tx_hash and res.chain_id == A


async def test_a_restart_with_one_leg_landed_and_the_others_deadline_passed_unwinds_it(
        pair: tuple[Side, Side]) -> None:
    """The run is cut with B's leg in B's pool; B's node loses it and B's chain time passes the leg's on-chain
    deadline. The restarted executor broadcasts it again (its nonce is its own), sees that it can only revert,
    and unwinds A's landed leg: UNWOUND, once; B's inventory never moves."""
    a, b = pair
    async with world(pair) as w:
        sig, msg, quote = w.signal()
        w.signal_again = (sig, msg, quote)
        (ua0, wa0), (ub0, wb0) = a.balances(), b.balances()
        started = await kill_with_b_in_flight(w, sig, msg)
        b.chain.rpc("anvil_dropTransaction", "0x" + started.tx_hash.hex())
        # an empty block past the deadline (max(B's head, now) + ceil(deadline_s 1.5) when B's leg was sent)
        latest = int(b.chain.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
        b.chain.rpc("evm_setNextBlockTimestamp", hex(max(latest, int(time.time())) + 5))
        b.chain.rpc("evm_mine")
        again, res, r0, r1 = await restart(w)
        assert res.outcome == Outcome.UNWOUND, res.reason
        assert r1.result == DexLegResult.NOT_INCLUDED and "deadline" in r1.reason and r1.amount_out == 0
        assert r0.result == DexLegResult.EXECUTED and r0.amount_out == quote.base_amount
        assert r0.unwind_result == DexLegResult.EXECUTED and r0.unwind_amount_in == r0.amount_out
        (ua1, wa1) = a.balances()
        assert wa1 == wa0 and ua0 - ua1 == r0.amount_in - r0.unwind_amount_out  # to the wei
        assert r0.unwind_amount_out >= r0.amount_in * 9_800 // 10_000  # the loss bound held
        assert res.realized_profit == r0.unwind_amount_out - r0.amount_in < 0
        assert_receipt(a, r0.unwind_tx_hash, r0.unwind_block_number, r0.unwind_gas_cost // int(
            a.chain.rpc("eth_getTransactionReceipt", "0x" + r0.unwind_tx_hash.hex())["effectiveGasPrice"], 16))
        # B's leg, broadcast again by the restart, can only revert now: B's inventory stays where it was
        b.chain.rpc("evm_setAutomine", True)
        b.chain.rpc("evm_mine")
        receipt = b.chain.rpc("eth_getTransactionReceipt", "0x" + started.tx_hash.hex())
        assert receipt is not None and int(receipt["status"], 16) == 0
        assert b.balances() == (ub0, wb0)
        assert_books(w, again, ((ua0, wa0), (ub0, wb0)))


async def test_a_restart_with_a_leg_still_pending_waits_for_it_then_settles(pair: tuple[Side, Side]) -> None:
    """The run is cut with B's leg in B's pool and its deadline ahead: the restarted executor waits (it neither
    gives up nor unwinds) until B mines it, then the signal ends EXECUTED, once."""
    a, b = pair
    async with world(pair, leg_timeout_s=6.0, deadline_s=6.0, max_leg_open_s=14.0, unwind_timeout_s=14.0) as w:
        sig, msg, quote = w.signal()
        w.signal_again = (sig, msg, quote)
        before = a.balances(), b.balances()
        (ua0, _), (_, wb0) = before
        await kill_with_b_in_flight(w, sig, msg)
        mined_at: list[float] = []

        async def mine_later() -> None:
            await trio.sleep(1.5)
            mined_at.append(time.monotonic())
            b.chain.rpc("evm_mine")
            b.chain.rpc("evm_setAutomine", True)

        t0 = time.monotonic()
        again, res, r0, r1 = await restart(w, during=mine_later)
        assert res.outcome == Outcome.EXECUTED, res.reason
        assert_books(w, again, before)
        assert mined_at and mined_at[0] - t0 >= 1.4  # the outcome came after B mined, not before
        assert ua0 - a.balances()[0] == r0.amount_in and wb0 - b.balances()[1] == r1.amount_in
        assert r1.amount_out == quote.amount_out and res.realized_profit == quote.gross_profit
        assert_receipt(b, r1.tx_hash, r1.block_number, r1.gas_used)


async def test_a_restart_with_an_unwind_in_flight_settles_it_from_the_chain(pair: tuple[Side, Side]) -> None:
    """B's node refuses B's leg (its signer has no gas money), A's leg lands, and the run is cut while A's unwind
    waits in A's pool. The restarted executor finds B's leg never broadcast (NOT_SENT), A's landed, and the
    unwind attempt the run before sent: it waits for it (its deadline ahead), sends no second one, and the
    signal ends UNWOUND once A mines it."""
    a, b = pair
    async with world(pair, leg_timeout_s=6.0, deadline_s=6.0, max_leg_open_s=14.0, unwind_timeout_s=14.0) as w:
        sig, msg, quote = w.signal()
        w.signal_again = (sig, msg, quote)
        b.chain.rpc("anvil_setBalance", b.owner, "0x0")
        before = a.balances(), b.balances()
        (ua0, wa0) = before[0]
        na = a.nonce()
        a.chain.rpc("evm_setAutomine", False)

        def on_a() -> int:
            return len([s for s in w.started() if s.chain_id == A])

        async with trio.open_nursery() as n:
            n.start_soon(w.ex.handle, _Queued(sig=sig, msg=msg, halted_by=None, seq=1))
            with trio.fail_after(10):
                while on_a() < 1:  # noqa: ASYNC110 - the records published
                    await trio.sleep(0.01)
                a.chain.rpc("evm_mine")  # A's leg lands
                while on_a() < 2:  # noqa: ASYNC110 - the unwind announced
                    await trio.sleep(0.01)
            n.cancel_scope.cancel()
        assert not any(type(t) is ExecutionResult for m in w.published.messages for t in m)

        async def mine_later() -> None:
            await trio.sleep(1.0)
            a.chain.rpc("evm_mine")
            a.chain.rpc("evm_setAutomine", True)

        again, res, r0, r1 = await restart(w, during=mine_later)
        assert res.outcome == Outcome.UNWOUND, res.reason
        assert r1.result == DexLegResult.NOT_SENT and "never broadcast" in r1.reason and r1.tx_hash == bytes(32)
        assert r0.result == DexLegResult.EXECUTED and r0.unwind_result == DexLegResult.EXECUTED
        assert r0.unwind_attempts == 1 and r0.unwind_amount_in == r0.amount_out == quote.base_amount
        (ua1, wa1) = a.balances()
        assert wa1 == wa0 and ua0 - ua1 == r0.amount_in - r0.unwind_amount_out
        assert a.nonce() == na + 2  # the leg and the one unwind: none sent again
        assert not [s for s in again.messages for t in s if type(t) is ExecutionStarted]
        assert b.balances() == before[1]
        assert_books(w, again, before)


# --------------------------------------------------------------------------- the executor process's wiring


async def test_the_executor_process_runs_a_cross_chain_signal_off_real_relays(pair: tuple[Side, Side]) -> None:
    """``execution.process.run`` with ``[cross_chain]``: chain B's keystore decrypted from the file and password
    file the configuration names, both chains' market data and the signal off real relays, one message with the
    result and both leg reports on the execution relay, both contracts' balances moved by what they say."""
    from execution.process import run as run_executor
    from relays.client import RelayConsumer, RelayProducer
    from relays.server import RelayConfig, serve

    a, b = pair
    d = Path(tempfile.mkdtemp(prefix="apxcp-", dir="/tmp"))
    try:
        async with world(pair) as w, trio.open_nursery() as n:
            socks = {}
            for dom in (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION):
                cfg = RelayConfig(domain=dom, socket_path=str(d / f"{dom.name.lower()[:3]}.sock"),
                                  data_dir=str(d / f"data-{dom.name.lower()}"), fsync="off")
                await n.start(serve, cfg)
                socks[dom] = cfg.socket_path
            config = msgspec.structs.replace(
                w.config, state_db=str(d / "state.sqlite"),
                relays=msgspec.structs.replace(w.config.relays, market_data=socks[Domain.MARKET_DATA],
                                               signal=socks[Domain.SIGNAL], execution=socks[Domain.EXECUTION]))
            sig, msg, quote = w.signal()
            async with RelayProducer.connect(Domain.MARKET_DATA, socks[Domain.MARKET_DATA], source_id=7,
                                             name="md") as md:  # both chains' pools: the backlog before 'ready'
                await md.publish(a.records() + b.records())
                await md.flush()
            (ua0, _), (_, wb0) = a.balances(), b.balances()
            await n.start(lambda task_status: run_executor(config, unlock(config), task_status=task_status))
            async with RelayConsumer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], from_seq=0,
                                             name="test") as results:
                async with RelayProducer.connect(Domain.SIGNAL, socks[Domain.SIGNAL], source_id=21, name="s") as sp:
                    await sp.publish(list(msg.tlvs))
                    await sp.flush()
                with trio.fail_after(30):
                    async for m in results:
                        if any(type(t) is ExecutionResult for t in m.tlvs):
                            last = list(m.tlvs)
                            break
            res, r0, r1 = last
            assert type(res) is ExecutionResult and res.outcome == Outcome.EXECUTED, res
            assert (type(r0), type(r1)) == (ChainLegReport, ChainLegReport) and (r0.chain_id, r1.chain_id) == (A, B)
            assert ua0 - a.balances()[0] == r0.amount_in == quote.amount_in
            assert wb0 - b.balances()[1] == r1.amount_in == quote.base_amount
            n.cancel_scope.cancel()
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def test_rebalances_and_trades_at_once_use_each_nonce_once_through_the_one_signer(
        pair: tuple[Side, Side], caplog: pytest.LogCaptureFixture) -> None:
    """The executor's process (``execution.process.run``) trades cross-chain signals while the rebalancer's process
    (``execution.rebalance.process.run``) moves USDC and WETH from B to A, both off real relays, both for the same
    owner account on B (and A). Every transaction of the owner's on each chain is one the executor signed from its
    one nonce sequence, each nonce exactly once, the rebalancer's interleaved with the trades' legs; no
    transaction is refused for its nonce (no NonceUsed), every signal trades and every transfer is sent."""
    from execution.process import run as run_executor
    from execution.rebalance.config import config_from_dict as rebalancer_config
    from execution.rebalance.process import run as run_rebalancer
    from execution.rebalance.store import RebalanceStore
    from relays.client import RelayConsumer, RelayProducer
    from relays.server import RelayConfig, serve
    from tools.deployment_writer import rebalancer_doc

    a, b = pair
    d = Path(tempfile.mkdtemp(prefix="apxcr-", dir="/tmp"))
    try:
        async with world(pair, rebalancer_source_id=48) as w, trio.open_nursery() as n:
            socks = {}
            for dom in (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION):
                cfg = RelayConfig(domain=dom, socket_path=str(d / f"{dom.name.lower()[:3]}.sock"),
                                  data_dir=str(d / f"data-{dom.name.lower()}"), fsync="off")
                await n.start(serve, cfg)
                socks[dom] = cfg.socket_path
            config = msgspec.structs.replace(
                w.config, state_db=str(d / "state.sqlite"),
                relays=msgspec.structs.replace(w.config.relays, market_data=socks[Domain.MARKET_DATA],
                                               signal=socks[Domain.SIGNAL], execution=socks[Domain.EXECUTION]))
            # more WETH on B than the trades and the rebalancer's transfer take between them
            b.chain.send(b.trader, b.weth, abi_call("transfer(address,uint256)", b.arb, 30 * 10**18))
            nonce0 = {A: a.nonce(), B: b.nonce()}
            md = await n.start(_producer, Domain.MARKET_DATA, socks[Domain.MARKET_DATA], 7)
            await md.publish(a.records() + b.records())
            await md.flush()
            await n.start(lambda task_status: run_executor(config, unlock(config), task_status=task_status))
            # B holds more USDC and WETH than its targets, A less than its floors: one transfer of each from B
            usdc_b, weth_b = b.balances()
            targets = {("USDC", A): (USDC_INVENTORY + 10_000 * 10**6, USDC_INVENTORY + 20_000 * 10**6),
                       ("USDC", B): (0, usdc_b - 20_000 * 10**6),
                       ("WETH", A): (WETH_INVENTORY + 2 * 10**18, WETH_INVENTORY + 3 * 10**18),
                       ("WETH", B): (0, weth_b - 3 * 10**18)}
            rb_state = d / "rebalancer.sqlite"
            rcfg = rebalancer_config(rebalancer_doc([a.dep, b.dep], contracts={A: a.arb, B: b.arb}, targets=targets,
                                                    state_db=rb_state, execution_socket=socks[Domain.EXECUTION],
                                                    poll_s=0.05, bridge_fee_bps=1, source_id=48, answer_wait_s=10.0))
            results: list[ExecutionResult] = []
            async with RelayConsumer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], from_seq=0, name="test",
                                             types={ExecutionResult.TYPE}) as res_c, \
                    RelayProducer.connect(Domain.SIGNAL, socks[Domain.SIGNAL], source_id=21, name="s") as sp:
                await n.start(lambda task_status: run_rebalancer(rcfg, task_status=task_status))

                def moved() -> int:  # transfers sent (the bridge's relayer is not running: none completes) or ended
                    store = RebalanceStore(rb_state)
                    try:
                        return sum(t.state.value == "sent" or not t.open for t in store.transfers())
                    finally:
                        store.close()

                with trio.fail_after(120):
                    while moved() < 2 or len(results) < 2:  # trades go on until both transfers are sent
                        assert len(results) < 12, "the rebalancer did not send both transfers"
                        sig, msg, quote = w.signal()
                        await md.publish(a.records() + b.records())
                        await md.flush()
                        await sp.publish(list(msg.tlvs))
                        await sp.flush()
                        async for m in res_c:
                            (r,) = [t for t in m.tlvs if type(t) is ExecutionResult]
                            if r.signal_id == sig.signal_id:
                                results.append(r)
                                break
                        # the market moves back (others trade the gap open again): the next signal pays too
                        a.sell_weth(quote.base_amount, 10**9)
                        b.buy_weth(quote.amount_out, 10**9)
            assert results and all(r.outcome == Outcome.EXECUTED for r in results), [(r.outcome, r.reason) for r in results]
            store = RebalanceStore(rb_state)
            try:
                transfers = store.transfers()
                asked = [(r.step, r.status) for t in transfers for r in store.txs(t.transfer_id)]
            finally:
                store.close()
            assert sorted(t.asset for t in transfers) == ["USDC", "WETH"] and all(t.src_chain == B for t in transfers)
            assert all(t.state.value == "sent" for t in transfers), transfers
            assert all(status == "mined" for _, status in asked) and len(asked) >= 4, asked  # none dropped or refused
            ex = ExecutorStore(d / "state.sqlite")
            try:
                views = {A: ex, B: ex.for_chain(B)}
                rows = {c: v.all_nonces() for c, v in views.items()}
                kinds = {c: [(nonce, views[c].txs_of_nonce(nonce)[0].meta) for nonce, _, _ in rows[c]] for c in (A, B)}
            finally:
                ex.close()
            for c, side in ((A, a), (B, b)):
                now = side.nonce()
                assert [nonce for nonce, _, _ in rows[c]] == list(range(nonce0[c], now)), (c, rows[c], nonce0[c], now)
                for nonce, h, _ in rows[c]:
                    tx = side.chain.rpc("eth_getTransactionByHash", h)
                    assert tx is not None and int(tx["nonce"], 16) == nonce and tx["blockNumber"] is not None
            owner_nonces = [nonce for nonce, meta in kinds[B] if '"owner"' in meta]
            leg_nonces = [nonce for nonce, meta in kinds[B] if '"owner"' not in meta]
            assert len(owner_nonces) == len(asked) and len(leg_nonces) == len(results)
            assert any(min(owner_nonces) < x < max(owner_nonces) for x in leg_nonces), (owner_nonces, leg_nonces)
            assert not [r for r in caplog.records if "did not sign" in r.getMessage() or "refused" in r.getMessage()]
            n.cancel_scope.cancel()
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def _producer(dom: Domain, sock: str, source_id: int, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """A producer kept open in the caller's nursery (handed over with ``task_status``)."""
    from relays.client import RelayProducer

    async with RelayProducer.connect(dom, sock, source_id=source_id, name=f"p{source_id}") as p:
        task_status.started(p)
        await trio.sleep_forever()


async def test_the_executor_process_killed_with_a_leg_in_flight_settles_it_after_a_restart(
        pair: tuple[Side, Side]) -> None:
    """The executor as a real process (``alphapulse executor --config``) off real relays: SIGKILLed once B's leg
    is announced (``ExecutionStarted`` on B) while B is not mining and A's leg has landed; B then mines it. The
    process started again settles both legs from the chains before it is ready: one EXECUTED result with both
    leg reports on the execution relay, the contracts moved by exactly what they say."""
    import os
    import signal as signals
    import sys

    from relays.client import RelayConsumer, RelayProducer
    from relays.server import RelayConfig, serve

    a, b = pair
    d = Path(tempfile.mkdtemp(prefix="apxck-", dir="/tmp"))
    procs: list[trio.Process] = []
    try:
        async with world(pair) as w, trio.open_nursery() as n:
            socks = {}
            for dom in (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION):
                cfg = RelayConfig(domain=dom, socket_path=str(d / f"{dom.name.lower()[:3]}.sock"),
                                  data_dir=str(d / f"data-{dom.name.lower()}"), fsync="off")
                await n.start(serve, cfg)
                socks[dom] = cfg.socket_path
            x = w.config.cross_chain
            chains = "".join(f"""
[[cross_chain.chains]]
chain_id = {s.dep.chain_id}
rpc_url = "{s.dep.rpc_url}"
contract = "{s.arb}"
gas_token = "{s.weth}"
keystore = {{ path = "{s.keystore}", password_file = "{s.password}" }}
venues = [{{ venue = "DEVNET_V2_A", factory = "{s.factory}" }}]
""" for s in (a, b))
            toml = d / "executor.toml"
            toml.write_text(f"""
[executor]
chain_id = {A}
rpc_url = "{a.dep.rpc_url}"
contract = "{a.arb}"
gas_token = "{a.weth}"
mode = "public"
source_id = 31
state_db = "{d / 'state.sqlite'}"

[keystore]
path = "{a.keystore}"
password_file = "{a.password}"

[validation]
max_signal_age_blocks = 5
state_wait_s = 1.0

[submission]
poll_interval_s = 0.02
receipt_timeout_s = 6.0
replace_after_s = 30.0

[[venues]]
venue = "DEVNET_V2_A"
factory = "{a.factory}"

[cross_chain]
leg_timeout_s = {x.leg_timeout_s}
deadline_s = {x.deadline_s}
max_leg_open_s = {x.max_leg_open_s}
unwind_timeout_s = {x.unwind_timeout_s}
max_unwind_loss_bps = {x.max_unwind_loss_bps}
{chains}
[relays]
market_data = "{socks[Domain.MARKET_DATA]}"
signal = "{socks[Domain.SIGNAL]}"
execution = "{socks[Domain.EXECUTION]}"
""")
            log = d / "executor.log"

            async def start_executor() -> trio.Process:
                out = open(log, "ab")  # noqa: ASYNC230 - a log file handed to the child
                offset = out.tell()
                env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
                proc = await trio.lowlevel.open_process([sys.executable, "-m", "tools.cli", "executor", "--config",
                                                         str(toml)], cwd=ROOT, stdout=out, stderr=out, env=env)
                out.close()
                procs.append(proc)
                with trio.fail_after(40):
                    while b"executor: ready" not in log.read_bytes()[offset:]:
                        assert proc.poll() is None, log.read_text()
                        await trio.sleep(0.05)
                return proc

            sig, msg, quote = w.signal()
            async with RelayProducer.connect(Domain.MARKET_DATA, socks[Domain.MARKET_DATA], source_id=7,
                                             name="md") as md:
                await md.publish(a.records() + b.records())
                await md.flush()
            (ua0, wa0), (ub0, wb0) = a.balances(), b.balances()
            b.chain.rpc("evm_setAutomine", False)
            first = await start_executor()
            async with RelayConsumer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], from_seq=0,
                                             name="test") as relay:
                async with RelayProducer.connect(Domain.SIGNAL, socks[Domain.SIGNAL], source_id=21, name="s") as sp:
                    await sp.publish(list(msg.tlvs))
                    await sp.flush()
                with trio.fail_after(30):
                    async for m in relay:
                        if any(type(t) is ExecutionStarted and t.chain_id == B for t in m.tlvs):
                            break
                os.kill(first.pid, signals.SIGKILL)
                await first.wait()
                assert a.balances() != (ua0, wa0)  # A's leg landed before the kill
                b.chain.rpc("evm_mine")
                b.chain.rpc("evm_setAutomine", True)
                assert b"settled after an executor restart" not in log.read_bytes()
                await start_executor()  # ready only once the cross-chain signal is settled
                with trio.fail_after(30):
                    async for m in relay:
                        if any(type(t) is ExecutionResult for t in m.tlvs):
                            last = list(m.tlvs)
                            break
                with trio.move_on_after(1.0):  # nothing more for the signal: it ends once
                    async for m in relay:
                        assert not any(type(t) is ExecutionResult for t in m.tlvs), m.tlvs
            res, r0, r1 = last
            assert type(res) is ExecutionResult and res.signal_id == sig.signal_id, res
            assert res.outcome == Outcome.EXECUTED and "settled after an executor restart" in res.reason, res.reason
            assert (type(r0), type(r1)) == (ChainLegReport, ChainLegReport) and (r0.chain_id, r1.chain_id) == (A, B)
            (ua1, wa1), (ub1, wb1) = a.balances(), b.balances()
            assert (ua0 - ua1, wa1 - wa0) == (r0.amount_in, r0.amount_out) == (quote.amount_in, quote.base_amount)
            assert (wb0 - wb1, ub1 - ub0) == (r1.amount_in, r1.amount_out) == (quote.base_amount, quote.amount_out)
            n.cancel_scope.cancel()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signals.SIGTERM)
                with trio.move_on_after(5) as cs:
                    await p.wait()
                if cs.cancelled_caught:
                    p.kill()
                    await p.wait()
        shutil.rmtree(d, ignore_errors=True)
