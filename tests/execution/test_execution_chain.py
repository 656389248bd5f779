"""execution/chain.py: the simulation's gas meter on the devnet (its gas against anvil's eth_estimateGas on
every path kind, a transaction with that gas lands, the contract's revert data passes through, a node that
refuses or ignores the state override turns it off), and signing (eth-account's very bytes)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio
from arb_testkit import Chain, Market, owned_contract_fixtures
from eth_account import Account
from test_arb_contract import dump_weth_on_venue_a, v2_hop, v3_hop

from chain.rpc import HttpRpc
from execution.calldata import Hop, encode_execute
from execution.chain import (
    METER_OVERHEAD,
    ChainGateway,
    SimulationReverted,
    calldata_floor,
    gas_meter_code,
    intrinsic_gas,
    node_rpc,
)
from execution.config import GasConfig

KEY = "0x" + "5e" * 32  # the executor's key in these tests (anvil impersonation deploys the contract for it)
USDC = 10**6


class Recording(httpx.AsyncBaseTransport):
    """The real transport to the devnet, recording each JSON-RPC request (method and params) and, with
    ``rewrite``, changing a request before the node sees it or answering it itself (a node of another kind)."""

    def __init__(self, rewrite: Callable[[dict[str, Any]], dict[str, Any] | httpx.Response] | None = None) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.rewrite = rewrite
        self.requests: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        if self.rewrite is not None:
            new = self.rewrite(body)
            if isinstance(new, httpx.Response):
                return new
            request = httpx.Request(request.method, request.url, json=new)
        return await self.inner.handle_async_request(request)

    @property
    def methods(self) -> list[str]:
        return [r["method"] for r in self.requests]

    async def aclose(self) -> None:
        await self.inner.aclose()


owned, _isolated = owned_contract_fixtures(KEY)  # our contract, owned by KEY's address


def gateway(url: str, contract: str, transport: httpx.AsyncBaseTransport | None = None) -> ChainGateway:
    return ChainGateway(HttpRpc(url, transport=transport), Account.from_key(KEY), chain_id=31337, contract=contract)


def paths(market: Market) -> dict[str, list[Hop]]:
    """Cycles that pay after a 60 WETH dump on venue a (minimums 0: the contract checks only minProfit)."""
    return {
        "V2->V2": [v2_hop(market, "uniswap_v2_a", "USDC", "WETH", amount_in=20_000 * USDC),
                   v2_hop(market, "uniswap_v2_b", "WETH", "USDC")],
        "V2->V3": [v2_hop(market, "uniswap_v2_a", "USDC", "WETH", amount_in=20_000 * USDC),
                   v3_hop(market, 3000, "WETH", "USDC")],
        "V3->V2": [v3_hop(market, 3000, "WETH", "USDC", amount_in=5 * 10**18),
                   v2_hop(market, "uniswap_v2_a", "USDC", "WETH")],
        "V2->V2->V3": [v2_hop(market, "uniswap_v2_a", "USDC", "WETH", amount_in=20_000 * USDC),
                       v2_hop(market, "uniswap_v2_b", "WETH", "DAI"), v3_hop(market, 500, "DAI", "USDC")],
    }


def test_the_meter_code_is_the_documented_program() -> None:
    code = gas_meter_code("0x" + "ab" * 20)
    assert len(code) == 67 and code[0x39] == 0x5B  # JUMPI's target is the JUMPDEST
    assert code.hex().startswith("3660006000375a6000600036600060007" + "3" + "ab" * 20 + "5af15a909103")
    assert METER_OVERHEAD == 2621


def test_intrinsic_gas_and_the_calldata_floor() -> None:
    assert intrinsic_gas(b"") == calldata_floor(b"") == 21_000
    assert intrinsic_gas(b"\x00\x01\x02") == 21_000 + 4 + 2 * 16
    assert calldata_floor(b"\x00\x01\x02") == 21_000 + 10 * (1 + 2 * 4)


def test_the_measured_gas_is_anvils_estimate_and_the_profit_the_plain_calls(chain: Chain, market: Market, owned: str,
                                                                           roles: dict[str, str]) -> None:
    """On every path kind: one metered eth_call gives the plain eth_call's answer and the gas eth_estimateGas
    finds (the meter measures what the node's own estimate executes; a cross-check, not used on the path)."""
    dump_weth_on_venue_a(chain, market)
    owner = Account.from_key(KEY).address

    async def main() -> None:
        rec = Recording()
        gw = gateway(chain.url, owned, rec)
        try:
            for label, hops in paths(market).items():
                data = encode_execute(hops, 1)
                rec.requests.clear()
                profit, gas = await gw.simulate(data)
                assert rec.methods == ["eth_call"] and len(rec.requests[0]["params"]) == 3, label  # one round trip
                assert profit == await gw.simulate_execute(data) > 0, label
                # at the block the simulation runs on: anvil's default is "pending", whose clock adds the pools'
                # oracle writes once a second has passed since the latest block (~10k gas per V2 pair)
                estimate = int(chain.rpc("eth_estimateGas", {"from": owner, "to": owned, "data": "0x" + data.hex()},
                                         "latest"), 16)
                print(f"\n{label}: metered {gas}, eth_estimateGas {estimate}")
                assert gas is not None and abs(estimate - gas) <= estimate // 200, label  # within 0.5 %
            assert gw.metered
        finally:
            await gw.rpc.aclose()

    trio.run(main)


def test_a_transaction_with_the_measured_gas_and_the_configured_margin_lands(chain: Chain, market: Market,
                                                                           owned: str, roles: dict[str, str]) -> None:
    """The executor's limit (measured x limit_multiplier + limit_extra) on a block 12 s later, where every pool
    writes its price oracle (what neither the meter nor eth_estimateGas sees): mined, and it used no more than
    the limit; the measured gas before refunds is above what the receipt says."""
    dump_weth_on_venue_a(chain, market)
    owner = Account.from_key(KEY).address
    hops = paths(market)["V2->V3"]
    data = encode_execute(hops, 1)

    async def simulate() -> tuple[int, int | None]:
        gw = gateway(chain.url, owned)
        try:
            return await gw.simulate(data)
        finally:
            await gw.rpc.aclose()

    profit, gas = trio.run(simulate)
    assert gas is not None
    g = GasConfig()
    limit = gas * g.limit_multiplier_bps // 10_000 + g.limit_extra
    latest = chain.rpc("eth_getBlockByNumber", "latest", False)
    chain.rpc("evm_setNextBlockTimestamp", int(latest["timestamp"], 16) + 12)
    chain.rpc("anvil_impersonateAccount", owner)
    try:
        receipt = chain.send(owner, owned, data, gas=limit)
    finally:
        chain.rpc("anvil_stopImpersonatingAccount", owner)
    assert receipt["status"] == 1 and receipt["gasUsed"] <= limit
    print(f"\nV2->V3: metered {gas}, limit {limit}, receipt {receipt['gasUsed']}")


def test_a_revert_comes_back_as_the_contracts_error(chain: Chain, market: Market, owned: str) -> None:
    dump_weth_on_venue_a(chain, market)
    hops = paths(market)["V2->V2"]

    async def main() -> None:
        gw = gateway(chain.url, owned)
        try:
            profit, _ = await gw.simulate(encode_execute(hops, 1))
            with pytest.raises(SimulationReverted) as metered:
                await gw.simulate(encode_execute(hops, profit + 1))
            with pytest.raises(SimulationReverted) as plain:
                await gw.simulate_execute(encode_execute(hops, profit + 1))
            assert metered.value.error is not None and metered.value.error == plain.value.error
            assert (metered.value.error.name, metered.value.error.args) == ("InsufficientProfit", (profit, profit + 1))
            assert str(metered.value) == str(plain.value) and gw.metered  # a revert does not turn the meter off
        finally:
            await gw.rpc.aclose()

    trio.run(main)


def _ignore_override(body: dict[str, Any]) -> dict[str, Any]:
    if body["method"] == "eth_call" and len(body["params"]) > 2:
        return {**body, "params": body["params"][:2]}
    return body


def _refuse_override(body: dict[str, Any]) -> dict[str, Any] | httpx.Response:
    if body["method"] == "eth_call" and len(body["params"]) > 2:
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"],
                                         "error": {"code": -32602, "message": "too many arguments, want at most 2"}})
    return body


@pytest.mark.parametrize("node", [_ignore_override, _refuse_override], ids=["ignores", "refuses"])
def test_a_node_without_state_overrides_turns_the_meter_off_once(chain: Chain, market: Market, owned: str,
                                                                 node: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The first simulation finds out (the plain call answers): its profit without gas, one warning; later ones
    are one plain eth_call each (the executor then asks eth_estimateGas alongside)."""
    dump_weth_on_venue_a(chain, market)
    data = encode_execute(paths(market)["V2->V2"], 1)

    async def main() -> None:
        rec = Recording(node)
        gw = gateway(chain.url, owned, rec)
        try:
            with caplog.at_level(logging.WARNING, logger="execution"):
                profit, gas = await gw.simulate(data)
            assert gas is None and not gw.metered and profit == await gw.simulate_execute(data) > 0
            assert [r for r in caplog.records if "state override" in r.getMessage()]
            rec.requests.clear()
            assert await gw.simulate(data) == (profit, None)
            assert rec.methods == ["eth_call"] and len(rec.requests[0]["params"]) == 2
        finally:
            await gw.rpc.aclose()

    trio.run(main)


def test_a_reverting_call_on_a_node_that_drops_the_revert_data_keeps_the_meter(chain: Chain, market: Market,
                                                                              owned: str) -> None:
    """An error without revert data may be the node refusing the override or the call reverting: the plain call
    decides. It reverts as well: SimulationReverted, and the meter stays on."""
    dump_weth_on_venue_a(chain, market)
    hops = paths(market)["V2->V2"]

    def no_data(body: dict[str, Any]) -> dict[str, Any] | httpx.Response:
        if body["method"] == "eth_call" and len(body["params"]) > 2 and body["params"][0]["data"] == bad:
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"],
                                             "error": {"code": -32000, "message": "execution reverted"}})
        return body

    bad = "0x" + encode_execute(hops, 10**30).hex()

    async def main() -> None:
        gw = gateway(chain.url, owned, Recording(no_data))
        try:
            with pytest.raises(SimulationReverted, match="InsufficientProfit"):
                await gw.simulate(bytes.fromhex(bad[2:]))
            assert gw.metered
        finally:
            await gw.rpc.aclose()

    trio.run(main)


@pytest.mark.parametrize("to, value, data", [(None, 0, b"\x01" * 300 + bytes(40)), ("0x" + "11" * 20, 0, b""),
                                             ("0x" + "22" * 20, 10**18, b"\x00\x00\xff")])
def test_signing_makes_eth_accounts_bytes(to: str | None, value: int, data: bytes) -> None:
    """The transaction is built and signed without eth-account's dict path: the same bytes and hash as it
    makes, for the contract, another address, a value, calldata of every kind; large fields too."""
    acct = Account.from_key(KEY)
    contract = "0x" + "33" * 20
    gw = ChainGateway(None, acct, chain_id=31337, contract=contract)  # type: ignore[arg-type]  # signing: no RPC
    for nonce, gas, fee, tip in [(0, 21_000, 1, 0), (7, 1_500_000, 500 * 10**9, 2 * 10**9), (2**40, 30_000_000, 2**100, 2**90)]:
        tx = gw.sign(nonce=nonce, gas_limit=gas, max_fee_per_gas=fee, max_priority_fee_per_gas=tip, data=data, to=to,
                     value=value)
        ref = acct.sign_transaction({"type": 2, "chainId": 31337, "nonce": nonce, "to": to or contract, "value": value,
                                     "data": data, "gas": gas, "maxFeePerGas": fee, "maxPriorityFeePerGas": tip})
        assert tx.raw == bytes(ref.raw_transaction) and tx.tx_hash == bytes(ref.hash)
        assert (tx.nonce, tx.gas_limit, tx.max_fee_per_gas, tx.max_priority_fee_per_gas) == (nonce, gas, fee, tip)
        assert Account.recover_transaction(tx.raw) == acct.address


def test_the_node_connection_outlives_httpxs_idle_expiry(chain: Chain) -> None:
    """Signals come in bursts: httpx's default pool dropped a keep-alive connection idle for 5 s, and the first signal
    after a quiet spell paid a new connection (TCP, TLS to a remote node) inside its simulation. node_rpc's connection
    to a node is the same one after a minute of idleness (the transport keeps it until the node closes it, over TLS
    too for an https:// node)."""
    from trio.testing import MockClock

    clock = MockClock()

    async def main() -> None:
        kept = node_rpc(chain.url, timeout=10.0)
        try:
            def connections() -> list[object]:
                return list(kept._http11._idle)  # type: ignore[union-attr]

            await kept.call("eth_chainId")
            before = connections()
            assert len(before) == 1
            clock.jump(60)  # a minute later
            await kept.call("eth_chainId")
            assert connections() == before  # the same connection, still open
        finally:
            await kept.aclose()

    trio.run(main, clock=clock)
    remote = node_rpc("https://node.example/key", timeout=10.0)
    assert remote._http11 is not None and remote._http11.tls is not None  # the same transport, over TLS
