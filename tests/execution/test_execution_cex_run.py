"""execution/cex/run.py: CEX-DEX signals through the executor, every branch of specs/cex-legs.md, against the
Binance stand-in's paper exchange over loopback (real signed REST orders matched against the replayed capture)
and the anvil devnet (the DEX leg through AlphaPulseArb.swap from the contract's own inventory).

The executor runs in-process (its trio shell, ``Executor.handle``), fed the same market data a collector would
publish: the devnet's WETH/USDC V2 pool (venue a) and the stand-in's replayed ETHUSDT book. The signal comes from
the strategy's ``CexDexEngine`` on that data. ETHUSDT was ~2080 in the capture and the pool ~2000: selling ETH
on the exchange and buying it back on chain pays (``CEX SELL``); pushing the pool above the book makes the other
direction (``CEX BUY``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
from arb_testkit import FAR_FUTURE, Chain, abi_call
from eth_account import Account
from eth_utils import to_checksum_address

from chain.rpc import HttpRpc
from execution.build import load_artifact
from execution.calldata import Kind, encode_constructor_args, encode_set_factory
from execution.cex.gateway import ApiCredentials, OrderGateway, Secret
from execution.chain import ChainGateway
from execution.config import config_from_dict
from execution.executor import Executor, _Queued
from execution.store import ExecutorStore
from execution.validate import Signal
from market.params import ChainParams, MarketParams
from protocol.execution import CexFill, CexOrderPurpose, DexLegResult, ExecutionResult, LegReport, Outcome
from protocol.header import Domain
from protocol.ids import PoolId, TokenId, Venue, VenueKind
from protocol.market import BlockHeader, BookLevel, PoolSnapshot, Quote, Side
from protocol.message import Message
from strategy.cex_dex import CexDexEngine, CexDexPair, CexDexParams, Inventory
from tools.cex_standin.paper import OrderFaults, PaperExchange
from tools.cex_standin.server import BinanceStandin

KEY, SIGNING = "exec-test-api-key", "exec-test-signing-key"
SCALE = 8  # the book's price and size scales here
SYMBOL = "ETHUSDT"


class Published:
    def __init__(self) -> None:
        self.messages: list[list[Any]] = []

    async def publish(self, tlvs: Any) -> int:
        self.messages.append(list(tlvs) if isinstance(tlvs, list) else [tlvs])
        return len(self.messages)  # its source sequence

    def next_source_seq(self) -> int:
        return len(self.messages) + 1

    def of(self, cls: type) -> list[Any]:
        return [t for m in self.messages for t in m if type(t) is cls]


class World:
    """One test's devnet state, stand-in, executor and strategy."""

    def __init__(self, devnet: Any, faults: OrderFaults, cex: dict[str, Any], mode: str, tmp: Path) -> None:
        self.dep = devnet.deployment
        self.client = devnet.client
        self.chain = Chain(self.dep.rpc_url)
        self.weth, self.usdc = self.dep.address_of("WETH"), self.dep.address_of("USDC")
        self.pool = self.dep.pool("uniswap_v2_a", "WETH", "USDC")
        self.trader = self.dep.funded_accounts[1]
        self.account = Account.create()
        owner = self.account.address
        self.chain.rpc("anvil_setBalance", owner, hex(10**21))
        self.chain.rpc("anvil_impersonateAccount", owner)
        code = bytes.fromhex(load_artifact()["bytecode"][2:]) + encode_constructor_args(self.trader)
        self.arb = to_checksum_address(self.chain.send(owner, None, code, gas=10_000_000)["contractAddress"])
        for v in self.dep.v2:
            self.chain.send(owner, self.arb, encode_set_factory(v.factory, Kind.V2))
        self.chain.rpc("anvil_stopImpersonatingAccount", owner)
        # the on-chain inventory the DEX leg trades from
        self.chain.send(self.trader, self.weth, abi_call("transfer(address,uint256)", self.arb, 20 * 10**18))
        self.chain.send(self.trader, self.usdc, abi_call("transfer(address,uint256)", self.arb, 50_000 * 10**6))
        self.paper = PaperExchange({KEY: SIGNING}, faults=faults)
        self.standin = BinanceStandin(paper=self.paper, pace=0.0)
        for i in range(600):  # the replayed venue's books exist once past the capture's snapshots
            self.standin.replay.advance(i)
        v2a = next(v for v in self.dep.v2 if v.name == "uniswap_v2_a")
        self.pool_id = PoolId.of(self.dep.chain_id, Venue.DEVNET_V2_A, VenueKind.UNISWAP_V2, self.pool.address,
                                 self.pool.token0, self.pool.token1)
        table = {"rest_url": "http://127.0.0.1:1", "key_env": "UNUSED_K", "hmac_env": "UNUSED_H",
                 "cex_timeout_s": 2.0, "max_leg_open_s": 20.0, "dex_deadline_s": 15.0,
                 "markets": [{"venue": "BINANCE", "symbol": SYMBOL, "base_asset": "ETH", "quote_asset": "USDT",
                              "base": self.weth, "quote": self.usdc, "base_decimals": 18, "quote_decimals": 6,
                              "fee_ppm": 1000}]}
        table.update(cex)
        self.config = config_from_dict({
            "executor": {"chain_id": self.dep.chain_id, "rpc_url": self.dep.rpc_url, "contract": self.arb,
                         "gas_token": self.weth, "mode": mode, "state_db": str(tmp / "state.sqlite")},
            "keystore": {"path": "unused", "password_env": "UNUSED"},
            "validation": {"max_signal_age_blocks": 5, "state_wait_s": 1.0},
            "submission": {"poll_interval_s": 0.02, "receipt_timeout_s": 6.0, "replace_after_s": 30.0},
            "venues": [{"venue": "DEVNET_V2_A", "factory": v2a.factory}],
            "cex": table,
        })
        wt = TokenId.of(self.dep.chain_id, self.weth)
        self.engine = CexDexEngine(
            CexDexParams(pairs=(CexDexPair(venue=Venue.BINANCE, symbol=SYMBOL, base_asset="ETH", quote_asset="USDT",
                                           base=wt, quote=TokenId.of(self.dep.chain_id, self.usdc),
                                           base_decimals=18, quote_decimals=6, gas_token=wt, cex_fee_ppm=1000,
                                           inventory=Inventory(cex_base=2 * 10**18, cex_quote=5_000 * 10**6,
                                                               chain_base=2 * 10**18, chain_quote=5_000 * 10**6)),)),
            MarketParams(chains=(ChainParams(chain_id=self.dep.chain_id, gas_token=wt),)))
        self.published = Published()
        self.ex: Executor | None = None
        self.restart: Any = None  # a new Executor on the same store, gateway and stand-in (a restarted process)
        self.seq = 0

    # --- market data, as the collectors publish it ---
    def header(self) -> BlockHeader:
        b = self.chain.rpc("eth_getBlockByNumber", "latest", False)
        return BlockHeader(chain_id=self.dep.chain_id, number=int(b["number"], 16), timestamp=int(b["timestamp"], 16),
                           gas_limit=int(b["gasLimit"], 16), gas_used=int(b["gasUsed"], 16),
                           hash=bytes.fromhex(b["hash"][2:]), parent_hash=bytes.fromhex(b["parentHash"][2:]),
                           base_fee=int(b["baseFeePerGas"], 16), priority_fee=10**9)

    def pool_records(self) -> list[Any]:
        r0, r1, _ = self.client.v2_reserves(self.pool)
        block = int(self.chain.rpc("eth_blockNumber"), 16)
        return [self.header(), PoolSnapshot(pool=self.pool_id, block_number=block, fee_ppm=3000, tick_spacing=0,
                                            reserve0=r0, reserve1=r1, sqrt_price_x96=0, tick=0, liquidity=0, ticks=())]

    def book_records(self) -> list[Any]:
        book = self.standin.replay.books[SYMBOL]

        def scaled(x: Any) -> int:
            return int(Decimal(x).scaleb(SCALE))

        kw = dict(venue=Venue.BINANCE, price_scale=SCALE, size_scale=SCALE, update_id=1, symbol=SYMBOL)
        out: list[Any] = [BookLevel(side=Side.BUY, price=scaled(p), size=scaled(s), **kw)
                          for p, s in book["bids"].items()]
        out += [BookLevel(side=Side.SELL, price=scaled(p), size=scaled(s), **kw) for p, s in book["asks"].items()]
        (bp, bs), (ap, a_s) = max(book["bids"].items()), min(book["asks"].items())
        out.append(Quote(bid_price=scaled(bp), bid_size=scaled(bs), ask_price=scaled(ap), ask_size=scaled(a_s), **kw))
        return out

    def message(self, tlvs: list[Any]) -> Message:
        self.seq += 1
        return Message(domain=Domain.MARKET_DATA, tlvs=tlvs, source_id=7, source_seq=self.seq, domain_seq=self.seq,
                       event_time_ns=time.time_ns(), receive_time_ns=time.time_ns())

    def feed(self, tlvs: list[Any]) -> list[Message]:
        """Market data to the executor and the strategy; the strategy's signals."""
        msg = self.message(tlvs)
        assert self.ex is not None
        self.ex.on_market_data(msg)
        return [m for m in self.engine.on_message(msg, time.time_ns())]

    def market(self) -> Signal:
        signals = self.feed(self.pool_records() + self.book_records())
        assert signals, f"no CEX-DEX signal: {self.engine.stats}"
        return Signal.from_message(signals[-1])

    # --- chain ---
    def balance(self, token: str) -> int:
        return self.chain.balance_of(token, self.arb)

    def nonce(self) -> int:
        return int(self.chain.rpc("eth_getTransactionCount", self.account.address, "pending"), 16)

    def push_pool_up(self, usdc: int) -> None:
        """A trader buys WETH on the pool (its price in USDC rises)."""
        router = self.dep.v2_venue("uniswap_v2_a").router
        self.chain.send(self.trader, router, abi_call(
            "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
            usdc, 0, [self.usdc, self.weth], self.trader, FAR_FUTURE), gas=300_000)

    def push_pool_down(self, weth: int) -> None:
        router = self.dep.v2_venue("uniswap_v2_a").router
        self.chain.send(self.trader, router, abi_call(
            "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
            weth, 0, [self.weth, self.usdc], self.trader, FAR_FUTURE), gas=300_000)

    # --- the run ---
    async def run(self, sig: Signal) -> tuple[ExecutionResult, LegReport | None]:
        assert self.ex is not None
        before = len(self.published.messages)
        await self.ex.handle(_Queued(sig=sig, msg=None, halted_by=None, seq=1))  # type: ignore[arg-type]
        (result,) = [t for m in self.published.messages[before:] for t in m if type(t) is ExecutionResult]
        last = self.published.messages[-1]
        assert result in last  # the result and its LegReport travel in one message
        reports = [t for t in last if type(t) is LegReport]
        assert len(reports) <= 1
        if reports:
            assert reports[0].outcome == result.outcome and reports[0].signal_id == result.signal_id
        print(f"\n{Outcome(result.outcome).name}: {result.reason}")
        return result, reports[0] if reports else None


@asynccontextmanager
async def world(devnet: Any, *, faults: str = "", cex: dict[str, Any] | None = None,
                mode: str = "public") -> AsyncIterator[World]:
    snap = devnet.client.snapshot()
    tmp = Path(tempfile.mkdtemp(prefix="apcex-"))
    w = World(devnet, OrderFaults.parse(faults), cex or {}, mode, tmp)
    try:
        async with trio.open_nursery() as nursery, httpx.AsyncClient() as http:
            _, rest_port = await nursery.start(w.standin.serve)
            rpc = HttpRpc(w.dep.rpc_url, timeout=10.0)
            gateway = ChainGateway(rpc, w.account, chain_id=w.dep.chain_id, contract=w.arb)
            orders = OrderGateway(f"http://127.0.0.1:{rest_port}", ApiCredentials(Secret(KEY), Secret(SIGNING)), http)
            store = ExecutorStore(w.config.state_db)
            w.ex = Executor(w.config, gateway, store, w.published, orders=orders)
            w.restart = lambda: Executor(w.config, gateway, store, w.published, orders=orders)
            await w.ex.recover()
            try:
                yield w
            finally:
                store.close()
                await rpc.aclose()
                nursery.cancel_scope.cancel()
    finally:
        w.chain.rpc("evm_setAutomine", True)
        devnet.client.revert(snap)
        w.chain.close()
        shutil.rmtree(tmp, ignore_errors=True)


def fills(w: World) -> list[CexFill]:
    return w.published.of(CexFill)


def check_sums(rep: LegReport, res: ExecutionResult) -> None:
    """The report's numbers add up, and the result's profit is the report's before gas."""
    assert res.realized_profit == rep.realized_profit + (rep.gas_cost if rep.dex_result != DexLegResult.NOT_SENT
                                                         else 0)


# --------------------------------------------------------------------------- both legs filled


async def test_cex_sell_then_dex_buy_both_filled(devnet: Any) -> None:
    async with world(devnet) as w:
        sig = w.market()
        assert sig.path.hops[0].venue_kind != VenueKind.CEX  # DEX_TO_CEX: the CEX leg sells
        weth0, usdc0, nonce0 = w.balance(w.weth), w.balance(w.usdc), w.nonce()
        res, rep = await w.run(sig)
        assert res.outcome == Outcome.EXECUTED, res.reason
        assert rep is not None and rep.dex_result == DexLegResult.EXECUTED and rep.cex_side == Side.SELL
        assert rep.cex_filled == rep.cex_requested > 0 and rep.left_open == 0 and rep.unwound == 0
        # on chain: the contract bought exactly the base the exchange sold, for the DEX quote
        assert w.balance(w.weth) - weth0 >= rep.cex_filled and usdc0 - w.balance(w.usdc) == rep.dex_quote
        assert rep.dex_base == w.balance(w.weth) - weth0 and w.nonce() == nonce0 + 1
        assert rep.realized_profit == rep.cex_quote - rep.dex_quote - rep.gas_cost > 0
        check_sums(rep, res)
        (fill,) = fills(w)
        assert fill.side == Side.SELL and fill.purpose == CexOrderPurpose.ENTRY and fill.quote_units == rep.cex_quote
        assert fill.base_units == rep.cex_filled and fill.base_asset == "ETH" and fill.quote_asset == "USDT"
        assert res.tx_hash != bytes(32) and res.gas_used > 0
        (order,) = w.paper.orders
        assert order["side"] == "SELL" and order["status"] == "FILLED"
        # the books, fed what the executor published, move each venue as the chain and the exchange did
        from portfolio.books import Books, native_token, open_db

        books = Books(open_db(":memory:"))
        books.apply(Domain.EXECUTION, [Message(domain=Domain.EXECUTION, tlvs=m, domain_seq=i + 1)
                                       for i, m in enumerate(w.published.messages)])
        chain = w.dep.chain_id
        assert books.balances() == {int(TokenId.of(chain, w.weth)): w.balance(w.weth) - weth0,
                                    int(TokenId.of(chain, w.usdc)): w.balance(w.usdc) - usdc0,
                                    native_token(chain): -res.gas_used * res.effective_gas_price}
        assert books.cex_balances() == {(Venue.BINANCE, "ETH"): -rep.cex_filled, (Venue.BINANCE, "USDT"): rep.cex_quote}


async def test_cex_buy_then_dex_sell_both_filled(devnet: Any) -> None:
    async with world(devnet) as w:
        w.push_pool_up(250_000 * 10**6)  # the pool's WETH now costs more than the book's asks
        sig = w.market()
        assert sig.path.hops[0].venue_kind == VenueKind.CEX
        weth0, usdc0 = w.balance(w.weth), w.balance(w.usdc)
        res, rep = await w.run(sig)
        assert res.outcome == Outcome.EXECUTED, res.reason
        assert rep is not None and rep.cex_side == Side.BUY and rep.dex_base == rep.cex_filled
        assert weth0 - w.balance(w.weth) == rep.cex_filled and w.balance(w.usdc) - usdc0 == rep.dex_quote
        assert rep.realized_profit == rep.dex_quote - rep.cex_quote - rep.gas_cost > 0
        check_sums(rep, res)


async def test_partial_fill_resizes_the_dex_leg(devnet: Any) -> None:
    async with world(devnet, faults="cap=1:0.25") as w:
        sig = w.market()
        weth0 = w.balance(w.weth)
        res, rep = await w.run(sig)
        assert res.outcome == Outcome.EXECUTED, res.reason
        assert rep is not None and rep.cex_filled == 25 * 10**16 < rep.cex_requested
        assert rep.dex_base >= rep.cex_filled and w.balance(w.weth) - weth0 == rep.dex_base
        assert rep.left_open == 0
        check_sums(rep, res)


# --------------------------------------------------------------------------- the CEX leg fails


@pytest.mark.parametrize("faults, why", [("reject=1", "-2010"), ("cap=1:0", "EXPIRED")])
async def test_cex_not_filled_sends_no_dex_leg(devnet: Any, faults: str, why: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with world(devnet, faults=faults) as w:
        sig = w.market()
        nonce0, weth0 = w.nonce(), w.balance(w.weth)
        res, rep = await w.run(sig)
        assert res.outcome == Outcome.CEX_NOT_FILLED and why in res.reason, res.reason
        assert rep is not None and rep.dex_result == DexLegResult.NOT_SENT and rep.cex_filled == 0
        assert rep.left_open == 0 and res.realized_profit == 0 and res.tx_hash == bytes(32)
        assert w.nonce() == nonce0 and w.balance(w.weth) == weth0
        # the API key and its signing key are in no log line, no error and no record on the bus
        assert "CEX order" in caplog.text
        for secret in (KEY, SIGNING):
            assert secret not in caplog.text and secret not in repr(w.published.messages)


async def test_no_cex_answer_in_time_is_leg_open_with_the_whole_size(devnet: Any) -> None:
    # no status queries configured: the worst is assumed at once (the queried branches are below)
    async with world(devnet, faults="delay=1:3", cex={"cex_timeout_s": 0.5, "query_attempts": 0}) as w:
        sig = w.market()
        nonce0 = w.nonce()
        with trio.fail_after(3):  # the answer is abandoned at cex_timeout, not awaited
            res, rep = await w.run(sig)
        assert res.outcome == Outcome.LEG_OPEN and "no CEX answer" in res.reason, res.reason
        assert rep is not None and rep.left_open == rep.cex_requested > 0 and rep.dex_result == DexLegResult.NOT_SENT
        assert w.nonce() == nonce0 and not fills(w)


async def test_an_answer_dropped_after_the_fill_is_queried_and_the_dex_leg_completes(
        devnet: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The exchange executes the entry order, then the connection drops before its answer: the executor asks
    for the order by its client order id, sends the DEX leg for the queried fill, and books it once."""
    caplog.set_level(logging.DEBUG)
    async with world(devnet, faults="drop=1") as w:
        sig = w.market()
        weth0, usdc0 = w.balance(w.weth), w.balance(w.usdc)
        res, rep = await w.run(sig)
        assert res.outcome == Outcome.EXECUTED, res.reason
        assert rep is not None and rep.dex_result == DexLegResult.EXECUTED and rep.left_open == 0
        (order,) = w.paper.orders  # placed once, never again
        assert order["status"] == "FILLED" and order["clientOrderId"] == f"ap{sig.signal_id}"
        assert w.paper.queries == 1 and "queried -> FILLED" in caplog.text and "1 status query" in res.reason
        (fill,) = fills(w)  # from the query's answer, exactly once
        assert fill.order_id == order["orderId"] and fill.base_units == rep.cex_filled == rep.cex_requested
        assert fill.quote_units == rep.cex_quote and fill.purpose == CexOrderPurpose.ENTRY
        assert w.balance(w.weth) - weth0 == rep.dex_base and usdc0 - w.balance(w.usdc) == rep.dex_quote
        check_sums(rep, res)
        from portfolio.books import Books, native_token, open_db

        books = Books(open_db(":memory:"))
        books.apply(Domain.EXECUTION, [Message(domain=Domain.EXECUTION, tlvs=m, domain_seq=i + 1)
                                       for i, m in enumerate(w.published.messages)])
        chain = w.dep.chain_id
        assert books.balances() == {int(TokenId.of(chain, w.weth)): w.balance(w.weth) - weth0,
                                    int(TokenId.of(chain, w.usdc)): w.balance(w.usdc) - usdc0,
                                    native_token(chain): -res.gas_used * res.effective_gas_price}
        assert books.cex_balances() == {(Venue.BINANCE, "ETH"): -rep.cex_filled, (Venue.BINANCE, "USDT"): rep.cex_quote}
        for secret in (KEY, SIGNING):  # the query is signed too: neither key in a log line or a record
            assert secret not in caplog.text and secret not in repr(w.published.messages)


async def test_an_answer_dropped_for_an_order_that_expired_unfilled_is_cex_not_filled(devnet: Any) -> None:
    async with world(devnet, faults="drop=1;cap=1:0") as w:
        sig = w.market()
        nonce0 = w.nonce()
        res, rep = await w.run(sig)
        assert res.outcome == Outcome.CEX_NOT_FILLED and "EXPIRED" in res.reason, res.reason
        assert rep is not None and rep.left_open == 0 and rep.cex_filled == 0 and w.nonce() == nonce0
        (fill,) = fills(w)
        assert fill.base_units == 0 and w.paper.queries == 1


@pytest.mark.parametrize("faults, filled", [("delay=1:0.5", True), ("delay=1:0.5;cap=1:0", False)])
async def test_a_restart_queries_the_entry_order_left_without_an_answer(devnet: Any, faults: str,
                                                                         filled: bool) -> None:
    """The executor dies while its entry order is out (the exchange executes it 0.5 s after it arrived, with
    nobody left to answer): the restarted executor finds the recorded order, queries it, and decides from its
    real fill; the signal, delivered again, is not run again and nothing is placed twice."""
    async with world(devnet, faults=faults) as w:
        sig = w.market()
        nonce0 = w.nonce()
        assert w.ex is not None
        with trio.fail_after(10):  # the run, cut (as by a kill) once its order reached the exchange
            async with trio.open_nursery() as n:
                n.start_soon(w.ex.handle, _Queued(sig=sig, msg=None, halted_by=None, seq=1))  # type: ignore[arg-type]
                while not w.paper.arrived:  # noqa: ASYNC110 - the stand-in's counter: nothing to wait on
                    await trio.sleep(0.005)
                n.cancel_scope.cancel()
            assert not w.published.messages and not w.paper.orders  # nothing answered, nothing published
            while not w.paper.orders:  # noqa: ASYNC110 - the exchange executes it meanwhile
                await trio.sleep(0.01)
        w.ex = w.restart()
        await w.ex.recover()
        (res,) = w.published.of(ExecutionResult)
        (rep,) = w.published.of(LegReport)
        (order,) = w.paper.orders
        assert w.paper.queries == 1 and rep.dex_result == DexLegResult.NOT_SENT and w.nonce() == nonce0
        (fill,) = fills(w)  # once, from the query's answer
        assert fill.order_id == order["orderId"] and fill.base_units == rep.cex_filled
        if filled:
            assert res.outcome == Outcome.LEG_OPEN and "restart" in res.reason, res.reason
            assert rep.cex_filled == rep.left_open == rep.cex_requested > 0 and fill.quote_units == rep.cex_quote
        else:
            assert res.outcome == Outcome.CEX_NOT_FILLED and rep.left_open == 0 == rep.cex_filled, res.reason
        assert await w.ex.handle(_Queued(sig=sig, msg=None, halted_by=None, seq=1)) is None  # type: ignore[arg-type]
        await w.restart().recover()  # and a second restart has nothing left to decide
        assert len(w.paper.orders) == 1 and w.paper.queries == 1 and len(w.published.of(ExecutionResult)) == 1


# --------------------------------------------------------------------------- the DEX leg fails: unwind


async def run_with_pool_moved(w: World, sig: Signal, *, tell_executor: bool) -> tuple[ExecutionResult, LegReport]:
    """A competitor moves the pool while our CEX order is in flight (its answer is delayed)."""
    out: list[Any] = []

    async def competitor() -> None:
        while w.paper.arrived < 1:  # noqa: ASYNC110 - the stand-in's counter: nothing to wait on
            await trio.sleep(0.005)
        w.push_pool_up(300_000 * 10**6)  # WETH dearer: buying it back on chain no longer pays
        if tell_executor:
            w.feed(w.pool_records())

    async with trio.open_nursery() as n:
        n.start_soon(competitor)
        out.append(await w.run(sig))
    res, rep = out[0]
    assert rep is not None
    return res, rep


async def test_dex_no_longer_paying_after_the_fill_is_unwound(devnet: Any) -> None:
    async with world(devnet, faults="delay=1:0.4") as w:
        sig = w.market()
        nonce0 = w.nonce()
        res, rep = await run_with_pool_moved(w, sig, tell_executor=True)
        assert res.outcome == Outcome.UNWOUND and "no longer pays" in res.reason, res.reason
        assert rep.dex_result == DexLegResult.NOT_SENT and w.nonce() == nonce0  # never sent
        assert rep.unwound == rep.cex_filled > 0 and rep.left_open == 0
        entry, unwind = fills(w)
        assert entry.side == Side.SELL and unwind.side == Side.BUY and unwind.purpose == CexOrderPurpose.UNWIND
        assert rep.realized_profit == rep.cex_quote - rep.unwind_quote  # no gas: nothing went on chain
        assert w.paper.orders[1]["clientOrderId"].endswith("-u1")
        check_sums(rep, res)


async def test_dex_reverted_on_chain_is_unwound_with_its_gas(devnet: Any) -> None:
    async with world(devnet, faults="delay=1:0.4") as w:
        sig = w.market()
        weth0 = w.balance(w.weth)
        res, rep = await run_with_pool_moved(w, sig, tell_executor=False)  # the executor prices a stale pool
        assert res.outcome == Outcome.UNWOUND and "reverted" in res.reason, res.reason
        assert rep.dex_result == DexLegResult.REVERTED and rep.gas_cost > 0 and res.gas_used > 0
        receipt = w.chain.rpc("eth_getTransactionReceipt", "0x" + res.tx_hash.hex())
        assert int(receipt["status"], 16) == 0 and w.balance(w.weth) == weth0
        assert rep.unwound == rep.cex_filled and rep.left_open == 0
        assert rep.realized_profit == rep.cex_quote - rep.unwind_quote - rep.gas_cost
        check_sums(rep, res)


async def test_unwind_retries_what_is_left_then_closes(devnet: Any) -> None:
    async with world(devnet, faults="delay=1:0.4;cap=2:0.1") as w:
        sig = w.market()
        res, rep = await run_with_pool_moved(w, sig, tell_executor=True)
        assert res.outcome == Outcome.UNWOUND, res.reason
        entry, first, second = fills(w)
        assert first.base_units == 10**17 and second.base_units == entry.base_units - 10**17
        assert rep.unwound == rep.cex_filled and rep.left_open == 0
        assert [o["clientOrderId"][-3:] for o in w.paper.orders[1:]] == ["-u1", "-u2"]


async def test_unwind_that_never_fills_leaves_the_leg_open(devnet: Any) -> None:
    async with world(devnet, faults="delay=1:0.4;cap=2:0,3:0.2,4:0", cex={"max_unwind_attempts": 3}) as w:
        sig = w.market()
        res, rep = await run_with_pool_moved(w, sig, tell_executor=True)
        assert res.outcome == Outcome.LEG_OPEN and "3 unwind attempts" in res.reason, res.reason
        assert rep.unwound == 2 * 10**17 and rep.left_open == rep.cex_filled - rep.unwound > 0
        assert len(fills(w)) == 4


async def test_an_unwind_whose_answer_is_dropped_is_queried_and_closes_the_position(devnet: Any) -> None:
    async with world(devnet, faults="delay=1:0.4;drop=2") as w:
        sig = w.market()
        res, rep = await run_with_pool_moved(w, sig, tell_executor=True)
        assert res.outcome == Outcome.UNWOUND and "1 status query" in res.reason, res.reason
        entry, unwind = fills(w)  # the unwind's from its query, once
        assert unwind.purpose == CexOrderPurpose.UNWIND and unwind.base_units == entry.base_units == rep.unwound
        assert unwind.order_id == w.paper.orders[1]["orderId"] and w.paper.queries == 1 and len(w.paper.orders) == 2
        assert rep.left_open == 0 and rep.realized_profit == rep.cex_quote - rep.unwind_quote
        check_sums(rep, res)


async def test_unwind_not_answered_in_time_leaves_the_leg_open(devnet: Any) -> None:
    async with world(devnet, faults="delay=1:0.4,2:3", cex={"cex_timeout_s": 1.0, "query_attempts": 0}) as w:
        sig = w.market()
        res, rep = await run_with_pool_moved(w, sig, tell_executor=True)
        assert res.outcome == Outcome.LEG_OPEN and "unwind not answered" in res.reason, res.reason
        assert rep.left_open == rep.cex_filled > 0 and rep.unwound == 0


async def test_dex_leg_open_past_max_leg_open_is_unwound_and_can_never_land(devnet: Any) -> None:
    cex = {"max_leg_open_s": 1.5, "dex_deadline_s": 1.0}
    async with world(devnet, cex=cex) as w:
        sig = w.market()
        w.chain.rpc("evm_setAutomine", False)  # our DEX transaction waits in the node's pool
        weth0 = w.balance(w.weth)
        with trio.fail_after(10):
            res, rep = await w.run(sig)
        assert res.outcome == Outcome.UNWOUND and "max_leg_open" in res.reason, res.reason
        assert rep.dex_result == DexLegResult.TIMEOUT and rep.unwound == rep.cex_filled and rep.left_open == 0
        (started,) = [t for m in w.published.messages for t in m if type(t).__name__ == "ExecutionStarted"]
        await trio.sleep(1.2)  # past the deadline (chain time is wall-clock time on anvil)
        w.chain.rpc("evm_mine")
        w.chain.rpc("evm_setAutomine", True)
        receipt = w.chain.wait_receipt("0x" + started.tx_hash.hex())
        assert int(receipt["status"], 16) == 0 and w.balance(w.weth) == weth0  # DeadlinePassed: it never traded


# --------------------------------------------------------------------------- before any leg


async def test_shadow_mode_simulates_the_dex_leg_and_places_no_order(devnet: Any) -> None:
    async with world(devnet, mode="shadow") as w:
        sig = w.market()
        res, rep = await w.run(sig)
        assert res.outcome == Outcome.SIMULATED and rep is None, res.reason
        assert w.paper.received == 0 and res.realized_profit > 0 and res.gas_used > 0


async def test_an_invalidated_book_or_too_little_profit_sends_nothing(devnet: Any) -> None:
    from protocol.ids import cex_book_id
    from protocol.market import InvalidationReason, StateInvalidation

    async with world(devnet) as w:
        sig = w.market()
        w.feed([StateInvalidation(chain_id=0, pool=cex_book_id(Venue.BINANCE, SYMBOL, "ETH", "USDT"), from_block=1,
                                  reason=int(InvalidationReason.RESYNC), detail="gap")])
        res, rep = await w.run(sig)
        assert res.outcome == Outcome.STALE and "not whole" in res.reason and rep is None
    async with world(devnet, cex={}) as w:
        sig = w.market()
        assert w.ex is not None
        w.ex.reconfigure(msgspec.structs.replace(w.config, validation=msgspec.structs.replace(
            w.config.validation, min_profit={TokenId.of(w.dep.chain_id, w.usdc): 10**15})))
        res, rep = await w.run(sig)
        assert res.outcome == Outcome.UNPROFITABLE and rep is None, res.reason
        assert w.paper.received == 0


# --------------------------------------------------------------------------- the executor process's wiring


async def test_the_executor_process_runs_a_cex_dex_signal_off_real_relays(devnet: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``execution.process.run`` with ``[cex]``: the keys read from the environment variables the configuration
    names, the signal and market data off real relays, the fill, result and LegReport on the execution relay."""
    from execution.process import cex_credentials
    from execution.process import run as run_executor
    from relays.client import RelayConsumer, RelayProducer
    from relays.server import RelayConfig, serve

    monkeypatch.setenv("AP_TEST_CEX_KEY", KEY)
    monkeypatch.setenv("AP_TEST_CEX_HMAC", SIGNING)
    d = Path(tempfile.mkdtemp(prefix="apcexp-", dir="/tmp"))
    try:
        async with world(devnet) as w, trio.open_nursery() as n:
            socks = {}
            for dom in (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION):
                cfg = RelayConfig(domain=dom, socket_path=str(d / f"{dom.name.lower()[:3]}.sock"),
                                  data_dir=str(d / f"data-{dom.name.lower()}"), fsync="off")
                await n.start(serve, cfg)
                socks[dom] = cfg.socket_path
            _, rest_port = await n.start(w.standin.serve)  # a second stand-in listener: the process's own
            assert w.config.cex is not None
            config = msgspec.structs.replace(
                w.config, state_db=str(d / "state.sqlite"),
                cex=msgspec.structs.replace(w.config.cex, rest_url=f"http://127.0.0.1:{rest_port}",
                                            key_env="AP_TEST_CEX_KEY", hmac_env="AP_TEST_CEX_HMAC"),
                relays=msgspec.structs.replace(w.config.relays, market_data=socks[Domain.MARKET_DATA],
                                               signal=socks[Domain.SIGNAL], execution=socks[Domain.EXECUTION]))
            sig_msg = w.engine.on_message(w.message(w.pool_records() + w.book_records()), time.time_ns())[-1]
            async with RelayProducer.connect(Domain.MARKET_DATA, socks[Domain.MARKET_DATA], source_id=7,
                                             name="md") as md:  # the backlog the executor applies before 'ready'
                await md.publish(w.pool_records() + w.book_records())
                await md.flush()
            creds = cex_credentials(config)
            assert creds is not None and KEY not in repr(creds)
            await n.start(lambda task_status: run_executor(config, w.account, cex=creds, task_status=task_status))
            got: list[list[Any]] = []
            async with RelayConsumer.connect(Domain.EXECUTION, socks[Domain.EXECUTION], from_seq=0,
                                             name="test") as results:
                async with RelayProducer.connect(Domain.SIGNAL, socks[Domain.SIGNAL], source_id=21, name="s") as sp:
                    await sp.publish(list(sig_msg.tlvs))
                    await sp.flush()
                with trio.fail_after(30):
                    async for msg in results:
                        got.append(list(msg.tlvs))
                        if any(type(t) is ExecutionResult for t in msg.tlvs):
                            break
            *_, last = got
            res = next(t for t in last if type(t) is ExecutionResult)
            rep = next(t for t in last if type(t) is LegReport)
            assert res.outcome == Outcome.EXECUTED and rep.dex_result == DexLegResult.EXECUTED, res.reason
            assert any(type(t) is CexFill for m in got for t in m) and w.paper.orders[-1]["status"] == "FILLED"
            n.cancel_scope.cancel()
    finally:
        shutil.rmtree(d, ignore_errors=True)
