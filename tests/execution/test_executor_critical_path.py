"""The executor's critical path on the devnet, counted on the wire: from a signal to its
``eth_sendRawTransaction``, exactly one JSON-RPC round trip (the metered simulation); no eth_estimateGas,
no head, nonce or chain-id fetch, no receipt or state read. The real executor shell (``Executor.handle``),
real node, real contract; only its relays are replaced by the market-data messages handed to it and a list
of what it publishes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from arb_testkit import Chain, Market, owned_contract_fixtures
from eth_account import Account
from test_arb_contract import dump_weth_on_venue_a
from test_execution_chain import Recording

from chain.rpc import HttpRpc
from execution.chain import ChainGateway
from execution.config import config_from_dict
from execution.executor import Executor, _Queued
from execution.store import ExecutorStore
from execution.validate import Signal
from protocol.execution import ExecutionResult, ExecutionStarted, Outcome, SubmissionMode
from protocol.ids import PoolId, Venue, VenueKind
from protocol.market import BlockHeader, PoolSnapshot
from protocol.message import Message
from protocol.tlv import TLV
from strategy.config import config_from_dict as strategy_config
from strategy.engine import StrategyEngine

KEY = "0x" + "5f" * 32
VENUES = {"uniswap_v2_a": Venue.DEVNET_V2_A, "uniswap_v2_b": Venue.DEVNET_V2_B}


class Published:
    """What the executor publishes on the execution relay, in order."""

    def __init__(self) -> None:
        self.tlvs: list[TLV] = []

    async def publish(self, tlv: Any) -> int:
        self.tlvs += tlv if isinstance(tlv, list) else [tlv]
        return len(self.tlvs)

    def next_source_seq(self) -> int:
        return len(self.tlvs) + 1


owned, _isolated = owned_contract_fixtures(KEY)  # our contract, owned by KEY's address


def market_message(chain: Chain, dep: Any) -> Message:
    """The head and both V2 venues' WETH/USDC pairs as the collector would publish them."""
    b = chain.rpc("eth_getBlockByNumber", "latest", False)
    number = int(b["number"], 16)
    tlvs: list[TLV] = [BlockHeader(chain_id=dep.chain_id, number=number, timestamp=int(b["timestamp"], 16),
                                   gas_limit=int(b["gasLimit"], 16), gas_used=int(b["gasUsed"], 16),
                                   hash=bytes.fromhex(b["hash"][2:]), parent_hash=bytes.fromhex(b["parentHash"][2:]),
                                   base_fee=int(b["baseFeePerGas"], 16), priority_fee=10**9)]
    for venue, code in VENUES.items():
        p = dep.pool(venue, "WETH", "USDC")
        r0, r1 = chain.reserves(p.address)
        pid = PoolId.of(dep.chain_id, code, VenueKind.UNISWAP_V2, p.address, p.token0, p.token1)
        tlvs.append(PoolSnapshot(pool=pid, block_number=number, fee_ppm=3000, tick_spacing=0, reserve0=r0, reserve1=r1,
                                 sqrt_price_x96=0, tick=0, liquidity=0, ticks=()))
    return Message(domain=1, tlvs=tuple(tlvs), receive_time_ns=time.time_ns())


def test_a_signal_costs_one_rpc_round_trip_before_its_transaction_is_sent(chain: Chain, market: Market, owned: str,
                                                                          arb_devnet_deployment: Any,
                                                                          tmp_path: Path) -> None:
    dep = arb_devnet_deployment
    weth = dep.address_of("WETH")
    dump_weth_on_venue_a(chain, market)
    md = market_message(chain, dep)
    engine = StrategyEngine(strategy_config({"strategy": {"max_hops": 2, "max_signals_per_update": 1},
                                             "chains": [{"chain_id": dep.chain_id, "gas_token": weth,
                                                         "base_tokens": [weth]}]}))
    (out,) = engine.on_message(md, time.time_ns())
    sig_msg = Message(domain=2, tlvs=out.tlvs, receive_time_ns=time.time_ns())
    sig = Signal.from_message(sig_msg)
    config = config_from_dict({
        "executor": {"chain_id": dep.chain_id, "rpc_url": dep.rpc_url, "contract": owned, "gas_token": weth,
                     "mode": "public", "state_db": str(tmp_path / "executor.sqlite")},
        "keystore": {"path": str(tmp_path / "unused.json"), "password_env": "UNUSED"},
        "submission": {"poll_interval_s": 0.02},
        "venues": [{"venue": VENUES[v.name].name, "factory": v.factory} for v in dep.v2]})

    async def main() -> None:
        rec = Recording()
        gw = ChainGateway(HttpRpc(dep.rpc_url, transport=rec), Account.from_key(KEY), chain_id=dep.chain_id,
                          contract=owned)
        store = ExecutorStore(config.state_db)
        published = Published()
        try:
            ex = Executor(config, gw, store, published)
            await ex.recover()  # start-up: the nonces from the chain
            ex.on_market_data(md)
            rec.requests.clear()
            result = await ex.handle(_Queued(sig=sig, msg=sig_msg, halted_by=None, seq=1))
        finally:
            await gw.rpc.aclose()
            store.close()
        assert result is not None and result.outcome == Outcome.EXECUTED, result
        methods = rec.methods
        sent = methods.index("eth_sendRawTransaction")
        assert methods[:sent] == ["eth_call"], methods  # the simulation, and nothing else, before the send
        assert len(rec.requests[0]["params"]) == 3  # metered: the gas came with it
        assert "eth_estimateGas" not in methods and "eth_getBlockByNumber" not in methods
        assert set(methods[sent + 1:]) == {"eth_getTransactionReceipt"}  # after the send: the receipt only
        kinds = [type(t) for t in published.tlvs]
        assert kinds == [ExecutionStarted, ExecutionResult]
        receipt = chain.rpc("eth_getTransactionReceipt", "0x" + result.tx_hash.hex())
        assert int(receipt["status"], 16) == 1 and result.realized_profit == sig.economics.gross_profit > 0

    trio.run(main)


@pytest.mark.parametrize("sent, mined", [(True, False), (True, True), (False, False)],
                         ids=["sent", "sent-and-mined", "never-sent"])
def test_a_crash_between_signing_and_sending_is_settled_from_the_node(chain: Chain, owned: str,
                                                                      arb_devnet_deployment: Any, tmp_path: Path,
                                                                      sent: bool, mined: bool) -> None:
    """The one write before a send is the signed transaction's row (public 0). Killed after it: a transaction
    that reached the node (still in its pool: no automine) is found there at the restart, marked sent and
    watched to its receipt -- not dropped as never broadcast while it can still land; one mined by then is
    settled from its receipt and marked sent too (a cross-chain leg's settlement reads the mark); one that
    never left is dropped, the signal NOT_INCLUDED, and its nonce used again."""
    dep = arb_devnet_deployment
    config = config_from_dict({
        "executor": {"chain_id": dep.chain_id, "rpc_url": dep.rpc_url, "contract": owned,
                     "gas_token": dep.address_of("WETH"), "mode": "public", "state_db": str(tmp_path / "x.sqlite")},
        "keystore": {"path": str(tmp_path / "unused.json"), "password_env": "UNUSED"},
        "submission": {"poll_interval_s": 0.02}})
    meta = json.dumps({"chain_id": dep.chain_id, "strategy_id": 1, "profit_token": 1, "expected_profit": 0,
                       "mode": int(SubmissionMode.PUBLIC), "net_expected": 0, "data": ""})

    async def main() -> None:
        gw = ChainGateway(HttpRpc(dep.rpc_url), Account.from_key(KEY), chain_id=dep.chain_id, contract=owned)
        store = ExecutorStore(config.state_db)
        try:
            ex = Executor(config, gw, store, Published())
            await ex.recover()
            nonce = ex.nonces.take(77)
            tx = gw.sign(nonce=nonce, gas_limit=21_000, max_fee_per_gas=10 * 10**9, max_priority_fee_per_gas=10**9,
                         to=gw.address)
            chain.rpc("evm_setAutomine", False)
            store.record_tx(tx_hash=tx.hash_hex, signal_id=77, nonce=nonce, raw=tx.raw, max_fee=tx.max_fee_per_gas,
                            tip=tx.max_priority_fee_per_gas, gas_limit=tx.gas_limit, meta=meta)
            if sent:
                await gw.send_raw(tx.raw)  # ... and the process dies before mark_public
            if mined:
                chain.rpc("evm_mine")
            restarted = Executor(config, gw, store, published := Published())
            async with trio.open_nursery() as n:
                async def mine() -> None:
                    await trio.sleep(0.3)
                    chain.rpc("evm_mine")

                n.start_soon(mine)
                await restarted.recover()
            (result,) = [t for t in published.tlvs if isinstance(t, ExecutionResult)]
            (row,) = store.txs_of_nonce(nonce)
            if sent:
                assert row.public and row.status == "mined" and result.outcome != Outcome.NOT_INCLUDED
                assert result.block_number > 0 and restarted.nonces.next == nonce + 1
            else:
                assert row.status == "dropped" and result.outcome == Outcome.NOT_INCLUDED
                assert "never broadcast" in result.reason and restarted.nonces.next == nonce
        finally:
            chain.rpc("evm_setAutomine", True)
            await gw.rpc.aclose()
            store.close()

    trio.run(main)
