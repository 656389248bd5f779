"""The executor's edge to the chain and to block builders: JSON-RPC over httpx, local signing.

* :class:`ChainGateway`: reads (head, nonces, receipts), ``eth_call`` simulation and gas estimate
  of ``AlphaPulseArb.execute``, EIP-1559 signing with the keystore's account (eth-account; the key
  never leaves the process), ``eth_sendRawTransaction``.
* :class:`BuilderClient`: the builders' JSON-RPC (``eth_sendBundle``, ``eth_callBundle``) to one
  endpoint, as Flashbots-style builders speak it.

The JSON-RPC client is ``chain.rpc.HttpRpc`` (httpx, works under trio); its errors
(``RpcFailure``: ``RpcError`` for a node's error object, ``EndpointError`` for a node that did
not answer properly) are what leave here besides :class:`SimulationReverted`, which is made from
an ``RpcError`` carrying revert data.
"""

from __future__ import annotations

from typing import Any

from eth_abi import decode
from eth_account.signers.local import LocalAccount

from chain.revert import ContractError, revert_data
from chain.rpc import EndpointError, HttpRpc, RpcError, RpcFailure
from execution.calldata import decode_error
from execution.core import Tx

__all__ = ["BuilderClient", "ChainGateway", "EndpointError", "NonceTaken", "RpcError", "RpcFailure",
           "SimulationReverted"]

# what nodes say when the nonce of a transaction is already used -- mined (geth, anvil, erigon, reth:
# "nonce too low"; nethermind: "OldNonce") or held in the pool by another transaction of the account
# ("replacement transaction underpriced": one with the same nonce and fees at least ours is pending)
_NONCE_TAKEN = ("nonce too low", "oldnonce", "replacement transaction underpriced")


class NonceTaken(RpcError):
    """``eth_sendRawTransaction`` refused: the transaction's nonce is used by another transaction of the
    account (another signer of it, e.g. the rebalancer). Nothing of this transaction can land."""


class SimulationReverted(Exception):
    """``eth_call`` / ``eth_estimateGas`` / ``eth_callBundle`` said the transaction would revert."""

    def __init__(self, what: str, error: ContractError | None, message: str) -> None:
        self.error = error
        super().__init__(f"{what} reverted: {error if error is not None else message}")


def _hex(v: int) -> str:
    return hex(v)


class ChainGateway:
    def __init__(self, rpc: HttpRpc, account: LocalAccount, *, chain_id: int, contract: str) -> None:
        self.rpc = rpc
        self.account = account
        self.address = account.address
        self.chain_id = chain_id
        self.contract = contract

    async def head(self) -> dict[str, int]:
        b = await self.rpc.call("eth_getBlockByNumber", ["latest", False])
        return {"number": int(b["number"], 16), "base_fee": int(b.get("baseFeePerGas") or "0x0", 16),
                "timestamp": int(b["timestamp"], 16)}

    async def block_number(self) -> int:
        return int(await self.rpc.call("eth_blockNumber", []), 16)

    async def nonce(self, block: str) -> int:
        return int(await self.rpc.call("eth_getTransactionCount", [self.address, block]), 16)

    async def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        r = await self.rpc.call("eth_getTransactionReceipt", [tx_hash])
        return dict(r) if r else None

    def _call_obj(self, data: bytes, gas: int | None = None) -> dict[str, Any]:
        tx = {"from": self.address, "to": self.contract, "data": "0x" + data.hex()}
        if gas is not None:
            tx["gas"] = _hex(gas)
        return tx

    async def simulate_execute(self, data: bytes, block: str = "latest") -> int:
        """``execute`` via eth_call from our address: the profit it would make."""
        try:
            out = await self.rpc.call("eth_call", [self._call_obj(data), block])
        except RpcError as exc:
            raise SimulationReverted("eth_call", decode_error(revert_data(exc)), exc.message) from None
        (profit,) = decode(["uint256"], bytes.fromhex(out[2:]))
        return int(profit)

    async def estimate_gas(self, data: bytes) -> int:
        try:
            return int(await self.rpc.call("eth_estimateGas", [self._call_obj(data)]), 16)
        except RpcError as exc:
            raise SimulationReverted("eth_estimateGas", decode_error(revert_data(exc)), exc.message) from None

    def sign(self, *, nonce: int, gas_limit: int, max_fee_per_gas: int, max_priority_fee_per_gas: int,
             data: bytes = b"", to: str | None = None, value: int = 0) -> Tx:
        signed = self.account.sign_transaction({
            "type": 2, "chainId": self.chain_id, "nonce": nonce, "to": to or self.contract, "value": value,
            "data": data, "gas": gas_limit, "maxFeePerGas": max_fee_per_gas,
            "maxPriorityFeePerGas": max_priority_fee_per_gas,
        })
        return Tx(raw=bytes(signed.raw_transaction), tx_hash=bytes(signed.hash), nonce=nonce,
                        gas_limit=gas_limit, max_fee_per_gas=max_fee_per_gas,
                        max_priority_fee_per_gas=max_priority_fee_per_gas)

    async def send_raw(self, raw: bytes) -> str:
        """Broadcast; a node that already has the transaction is not an error ("already known": these
        very bytes, ours; anvil says "already imported"). Raises :class:`NonceTaken` when another transaction has
        the nonce."""
        try:
            return str(await self.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()]))
        except RpcError as exc:
            message = exc.message.lower()
            if "already" in message and ("known" in message or "imported" in message):
                return ""
            if any(m in message for m in _NONCE_TAKEN):
                raise NonceTaken(exc.method, exc.code, exc.message, exc.data) from None
            raise


class BuilderClient:
    """One builder endpoint (Flashbots-style bundle JSON-RPC)."""

    def __init__(self, name: str, url: str, *, call_bundle: bool, timeout: float = 5.0) -> None:
        self.name = name
        self.call_bundle_supported = call_bundle
        self.rpc = HttpRpc(url, timeout=timeout)

    async def aclose(self) -> None:
        await self.rpc.aclose()

    async def send_bundle(self, txs: list[bytes], block_number: int, *, min_timestamp: int | None = None,
                          max_timestamp: int | None = None, reverting: list[str] | None = None) -> Any:
        params: dict[str, Any] = {"txs": ["0x" + t.hex() for t in txs], "blockNumber": _hex(block_number)}
        if min_timestamp is not None:
            params["minTimestamp"] = min_timestamp
        if max_timestamp is not None:
            params["maxTimestamp"] = max_timestamp
        if reverting:
            params["revertingTxHashes"] = reverting
        return await self.rpc.call("eth_sendBundle", [params])

    async def call_bundle(self, txs: list[bytes], block_number: int, state_block: str | int = "latest") -> dict[str, Any]:
        params = {"txs": ["0x" + t.hex() for t in txs], "blockNumber": _hex(block_number),
                  "stateBlockNumber": state_block if isinstance(state_block, str) else _hex(state_block)}
        return dict(await self.rpc.call("eth_callBundle", [params]))
