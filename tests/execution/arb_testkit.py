"""Helpers for the AlphaPulseArb tests (imported by tests/execution/conftest.py and the tests):
a chain driver over the project's JSON-RPC client (eth_sendTransaction from anvil's unlocked dev
accounts; no keys), ABI call encoding (``chain.abi``), and the slice of the devnet deployment
the tests use.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eth_abi import decode
from eth_utils import to_checksum_address

from chain.abi import encode_call as abi_call
from chain.revert import ContractError, revert_data
from chain.rpc import RpcError, SyncHttpRpc
from execution.calldata import decode_error

MAX_UINT256 = (1 << 256) - 1
FAR_FUTURE = 1 << 40


class TxReverted(Exception):
    def __init__(self, receipt: dict[str, Any]) -> None:
        self.receipt = receipt
        super().__init__(f"transaction {receipt['transactionHash']} reverted")


class Chain:
    """Just enough JSON-RPC for these tests."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._rpc = SyncHttpRpc(url, timeout=30.0)

    def close(self) -> None:
        self._rpc.close()

    def rpc(self, method: str, *params: Any) -> Any:
        return self._rpc.call(method, params)

    def accounts(self) -> list[str]:
        return [to_checksum_address(a) for a in self.rpc("eth_accounts")]

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: str = "latest") -> bytes:
        tx: dict[str, Any] = {"to": to, "data": "0x" + data.hex()}
        if sender:
            tx["from"] = sender
        return bytes.fromhex(self.rpc("eth_call", tx, block)[2:])

    def call_decode(self, to: str, signature: str, out_types: Sequence[str], *args: Any) -> tuple[Any, ...]:
        return decode(list(out_types), self.call(to, abi_call(signature, *args)))

    def revert_error(self, sender: str, to: str, data: bytes) -> ContractError:
        """eth_call that must revert; returns the decoded custom error."""
        try:
            self.call(to, data, sender=sender)
        except RpcError as exc:
            err = decode_error(revert_data(exc))
            assert err is not None, f"reverted without a known custom error: {exc}"
            return err
        raise AssertionError("call did not revert")

    def send(self, sender: str, to: str | None, data: bytes, *, gas: int | None = None, value: int = 0,
             check: bool = True) -> dict[str, Any]:
        tx: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "value": hex(value)}
        if to is not None:
            tx["to"] = to
        if gas is not None:
            tx["gas"] = hex(gas)
        tx_hash = self.rpc("eth_sendTransaction", tx)
        receipt = self.wait_receipt(tx_hash)
        receipt["status"] = int(receipt["status"], 16)
        receipt["gasUsed"] = int(receipt["gasUsed"], 16)
        if check and receipt["status"] != 1:
            raise TxReverted(receipt)
        return receipt

    def wait_receipt(self, tx_hash: str, timeout: float = 10.0) -> dict[str, Any]:
        # anvil automines, but the receipt can trail eth_sendTransaction's answer by a moment.
        deadline = time.monotonic() + timeout
        while (receipt := self.rpc("eth_getTransactionReceipt", tx_hash)) is None:
            assert time.monotonic() < deadline, f"no receipt for {tx_hash} (is the devnet mining?)"
            time.sleep(0.002)
        return dict(receipt)

    def deploy(self, sender: str, creation_code: bytes) -> str:
        receipt = self.send(sender, None, creation_code, gas=10_000_000)
        return to_checksum_address(receipt["contractAddress"])

    def balance_of(self, token: str, owner: str) -> int:
        return int(self.call_decode(token, "balanceOf(address)", ["uint256"], owner)[0])

    def reserves(self, pair: str) -> tuple[int, int]:
        r0, r1, _ = self.call_decode(pair, "getReserves()", ["uint112", "uint112", "uint32"])
        return int(r0), int(r1)

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def revert_to(self, snap: str) -> None:
        assert self.rpc("evm_revert", snap) is True

    @contextmanager
    def isolated(self) -> Iterator[None]:
        """Whatever happens on the chain inside is reverted on the way out (an anvil snapshot)."""
        snap = self.snapshot()
        try:
            yield
        finally:
            self.revert_to(snap)


@dataclass
class Market:
    """What the tests use from the devnet deployment (addresses are checksummed)."""

    tokens: dict[str, str]  # symbol -> address
    v2_factories: dict[str, str]  # venue -> factory
    v2_routers: dict[str, str]
    v2_pairs: dict[tuple[str, str, str], str]  # (venue, symA, symB) -> pair, both symbol orders
    v3_factory: str
    quoter_v2: str
    v3_pools: dict[tuple[str, str, int], str]  # (symA, symB, fee) -> pool, both orders
    trader: str  # a funded dev account (tokens + router approvals)


def market_of(dep: Any) -> Market:
    sym = {t.address.lower(): t.symbol for t in dep.tokens}
    v2_pairs: dict[tuple[str, str, str], str] = {}
    v3_pools: dict[tuple[str, str, int], str] = {}
    for p in dep.pools:
        a, b = sym[p.token0.lower()], sym[p.token1.lower()]
        if p.kind == "v2":
            v2_pairs[(p.venue, a, b)] = v2_pairs[(p.venue, b, a)] = to_checksum_address(p.address)
        else:
            v3_pools[(a, b, p.fee)] = v3_pools[(b, a, p.fee)] = to_checksum_address(p.address)
    funded = (dep.extra or {}).get("funded_accounts") or [dep.accounts[1]]
    return Market(
        tokens={t.symbol: to_checksum_address(t.address) for t in dep.tokens},
        v2_factories={v.name: to_checksum_address(v.factory) for v in dep.v2},
        v2_routers={v.name: to_checksum_address(v.router) for v in dep.v2},
        v2_pairs=v2_pairs,
        v3_factory=to_checksum_address(dep.v3.factory),
        quoter_v2=to_checksum_address(dep.v3.quoter_v2),
        v3_pools=v3_pools,
        trader=to_checksum_address(funded[0]),
    )


@dataclass
class Arb:
    address: str
    owner: str
    recipient: str
    deploy_gas: int


def deploy_arb_owned_by(chain: Chain, dep: Any, owner: str, recipient: str) -> str:
    """AlphaPulseArb owned by ``owner``, an address whose key only the test holds (the executor's own account):
    funded, deployed and configured through anvil's impersonation; every devnet factory allow-listed (V2 venues,
    V3, the V4 PoolManager). Returns the contract's address."""
    from execution.build import load_artifact
    from execution.calldata import Kind, encode_constructor_args, encode_set_factory

    chain.rpc("anvil_setBalance", owner, hex(10**21))
    chain.rpc("anvil_impersonateAccount", owner)
    try:
        art = load_artifact()
        code = bytes.fromhex(art["bytecode"][2:]) + encode_constructor_args(recipient)
        arb = chain.deploy(owner, code)
        for v in dep.v2:
            chain.send(owner, arb, encode_set_factory(v.factory, Kind.V2))
        chain.send(owner, arb, encode_set_factory(dep.v3.factory, Kind.V3))
        if dep.v4 is not None:
            chain.send(owner, arb, encode_set_factory(dep.v4.pool_manager, Kind.V4))
    finally:
        chain.rpc("anvil_stopImpersonatingAccount", owner)
    return arb


def owned_contract_fixtures(key: str) -> tuple[Any, Any]:
    """Two fixtures for a test module to bind as ``owned, _isolated = owned_contract_fixtures(KEY)``: ``owned``
    (module scope), AlphaPulseArb owned by ``key``'s address (:func:`deploy_arb_owned_by`, profits to
    ``roles["recipient"]``), and ``_isolated`` (autouse), each test on a chain snapshot taken after it and
    reverted after the test. Each module passes its own key, so its nonces are its own on the shared devnet."""
    import pytest
    from eth_account import Account

    @pytest.fixture(scope="module")
    def owned(chain: Chain, market: Market, arb_devnet_deployment: Any, roles: dict[str, str]) -> str:
        return deploy_arb_owned_by(chain, arb_devnet_deployment, Account.from_key(key).address, roles["recipient"])

    @pytest.fixture(autouse=True)
    def _isolated(chain: Chain, owned: str) -> Iterator[None]:
        with chain.isolated():
            yield

    return owned, _isolated
