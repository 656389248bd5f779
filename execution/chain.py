"""The executor's edge to the chain and to block builders: JSON-RPC over HTTP, local signing.

* :class:`ChainGateway`: reads (head, nonces, receipts), the simulation of a call to our contract
  with its gas in the same round trip (:meth:`ChainGateway.simulate`, "Gas from the simulation"
  below), ``eth_estimateGas`` where that is not available, EIP-1559 signing with the keystore's key
  (coincurve; the key never leaves the process), ``eth_sendRawTransaction``.
* :class:`BuilderClient`: the builders' JSON-RPC (``eth_sendBundle``, ``eth_callBundle``) to one
  endpoint, as Flashbots-style builders speak it.

The JSON-RPC client is ``chain.rpc.HttpRpc`` (keep-alive HTTP/1.1 with h11 on trio TCP or TLS streams:
see its "The trio face's transport"); its errors
(``RpcFailure``: ``RpcError`` for a node's error object, ``EndpointError`` for a node that did
not answer properly) are what leave here besides :class:`SimulationReverted`, which is made from
an ``RpcError`` carrying revert data.

Gas from the simulation
-----------------------
A signal's critical path has one round trip before the send: the simulation. ``eth_estimateGas``
alongside it (even concurrently) cost the longer of the two, about three times an ``eth_call`` on
anvil, plus its client CPU. So the simulation measures the gas itself: ``eth_call`` with a state
override (the third parameter; geth, erigon, reth, nethermind, anvil and the hosted providers take
it) that gives **our own address** the code of a tiny meter (:func:`gas_meter_code`, 67 bytes)::

    copy the calldata; g0 = GAS; ok = CALL(gas, contract, 0, calldata); g1 = GAS
    ok ? return(returndata ++ uint256(g0 - g1)) : revert(returndata)

``msg.sender`` in the contract is still our address (the owner), so the call runs exactly the code a
transaction would, and a revert comes back with the contract's own revert data (decoded as
before). ``g0 - g1`` is the contract call's consumption before refunds plus the meter's fixed
:data:`METER_OVERHEAD` (the opcodes between the two ``GAS`` and the cold access to the contract,
which a transaction's ``to`` does not pay); :func:`intrinsic_gas` adds what the transaction pays
before its code runs. The sum equals anvil's ``eth_estimateGas`` of the same call on the same block
(a test compares them on every path kind). Like any call on the latest block (and geth's
``eth_estimateGas``, which defaults to it), it misses the price-oracle writes that the landing block's
later timestamp adds to a pool the latest block already touched (a V2 pair's cumulative prices, about
10k gas; anvil's ``eth_estimateGas`` defaults to ``pending`` and counted them once its clock had passed
the latest block's second): the gas limit's margin (``[gas] limit_multiplier_bps``, ``limit_extra``)
covers them, as a test mining 12 s later shows. A node that refuses or ignores the override (no
answer of the meter's shape, while the plain ``eth_call`` answers) turns the meter off for the
process, with one warning: the simulation is then a plain ``eth_call`` and the executor asks
``eth_estimateGas`` (alongside it) as before.
"""

from __future__ import annotations

import logging
from typing import Any

import coincurve
import rlp
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_canonical_address

from chain.revert import ContractError, revert_data
from chain.rpc import EndpointError, HttpRpc, RpcError, RpcFailure
from execution.calldata import decode_error
from execution.core import Tx

__all__ = ["METER_OVERHEAD", "BuilderClient", "ChainGateway", "EndpointError", "NonceTaken", "RpcError", "RpcFailure",
           "SimulationReverted", "calldata_floor", "gas_meter_code", "intrinsic_gas", "node_rpc"]

log = logging.getLogger("execution")

# what nodes say when the nonce of a transaction is already used -- mined (geth, anvil, erigon, reth:
# "nonce too low"; nethermind: "OldNonce") or held in the pool by another transaction of the account
# ("replacement transaction underpriced": one with the same nonce and fees at least ours is pending)
_NONCE_TAKEN = ("nonce too low", "oldnonce", "replacement transaction underpriced")


class NonceTaken(RpcError):
    """``eth_sendRawTransaction`` refused: the transaction's nonce is used by another transaction of the
    account. The executor is the account's one signer (the rebalancer's transactions go through it:
    ``execution/owner.py``), so that is someone outside it using the key. Nothing of this transaction can land."""


class SimulationReverted(Exception):
    """``eth_call`` / ``eth_estimateGas`` / ``eth_callBundle`` said the transaction would revert."""

    def __init__(self, what: str, error: ContractError | None, message: str) -> None:
        self.error = error
        super().__init__(f"{what} reverted: {error if error is not None else message}")


def _hex(v: int) -> str:
    return hex(v)


def node_rpc(url: str, *, timeout: float) -> HttpRpc:
    """The JSON-RPC client of a node or builder on the executor's critical path (the main chain's, the
    cross-chain sides', the builders'): ``HttpRpc``, whose connections are kept alive until the server closes
    them. Signals come in bursts: httpx's default pool dropped a connection idle for 5 s, and the first signal
    after a quiet spell paid a TCP connect (and a TLS handshake, to a remote node) inside its simulation
    (``execution.process`` keeps the connection warm against servers' own idle timeouts)."""
    return HttpRpc(url, timeout=timeout)


#: gas the meter itself spends between its two ``GAS`` readings: PUSH1 x4, CALLDATASIZE, PUSH20, GAS,
#: the second GAS (3 * 5 + 2 * 3 = 21) and the CALL's cold access to the contract (EIP-2929: 2,600),
#: which a transaction does not pay for its ``to``
METER_OVERHEAD = 21 + 2_600


def gas_meter_code(target: str) -> bytes:
    """The meter's runtime code for calls to ``target`` (see "Gas from the simulation")."""
    head = bytes.fromhex(
        "36" "6000" "6000" "37"  # CALLDATACOPY(0, 0, calldatasize)
        "5a"  # GAS: g0
        "6000" "6000" "36" "6000" "6000" "73")  # CALL's retSize, retOffset, argsSize, argsOffset, value; PUSH20
    body = head + to_canonical_address(target) + bytes.fromhex(
        "5a" "f1"  # GAS CALL (all the gas there is): [g0, ok]
        "5a" "90" "91" "03"  # GAS SWAP1 SWAP2 SUB: [ok, g0 - g1]
        "3d" "6000" "6000" "3e"  # RETURNDATACOPY(0, 0, returndatasize)
        "90")  # SWAP1: [g0 - g1, ok]
    fail = bytes.fromhex("3d" "6000" "fd")  # REVERT(0, returndatasize): the contract's revert data as it is
    ok = len(body) + 3 + len(fail)  # after PUSH1 ok JUMPI and the revert
    return body + bytes((0x60, ok, 0x57)) + fail + bytes.fromhex(
        "5b"  # ok: JUMPDEST
        "3d" "52"  # MSTORE(returndatasize, g0 - g1): after the contract's answer
        "3d" "6020" "01" "6000" "f3")  # RETURN(0, returndatasize + 32)


def intrinsic_gas(data: bytes) -> int:
    """What a call transaction with ``data`` pays before its code runs: 21,000 and its calldata
    (EIP-2028: 4 per zero byte, 16 per other byte)."""
    zeros = data.count(0)
    return 21_000 + 4 * zeros + 16 * (len(data) - zeros)


def calldata_floor(data: bytes) -> int:
    """EIP-7623 (Prague): a transaction's gas is at least 21,000 + 10 per calldata token (a zero byte is
    one token, another byte four). Our calls' code spends far more, so it does not bind; it is applied
    all the same."""
    zeros = data.count(0)
    return 21_000 + 10 * (zeros + 4 * (len(data) - zeros))


class ChainGateway:
    def __init__(self, rpc: HttpRpc, account: LocalAccount, *, chain_id: int, contract: str) -> None:
        self.rpc = rpc
        self.account = account
        self.address = account.address
        self.chain_id = chain_id
        self.contract = contract
        # signing: the key as coincurve holds it (see sign)
        self._key = coincurve.PrivateKey(bytes(account.key))
        self._contract_bytes = to_canonical_address(contract)
        # the simulation's gas meter at our address (see "Gas from the simulation"); False once the node
        # showed it does not take state overrides: plain eth_call, and eth_estimateGas asked apart
        self.metered = True
        self._meter = {self.address: {"code": "0x" + gas_meter_code(contract).hex()}}

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

    async def known(self, tx_hash: str) -> bool:
        """Does the node have the transaction (pending in its pool, or mined)?"""
        return await self.rpc.call("eth_getTransactionByHash", [tx_hash]) is not None

    def _call_obj(self, data: bytes, gas: int | None = None, to: str | None = None) -> dict[str, Any]:
        tx = {"from": self.address, "to": to or self.contract, "data": "0x" + data.hex()}
        if gas is not None:
            tx["gas"] = _hex(gas)
        return tx

    async def simulate(self, data: bytes) -> tuple[int, int | None]:
        """The call of ``data`` to our contract from our address on the latest block, in one round trip:
        (the first word of its answer -- ``execute``'s profit, ``swap``'s output --, the gas a transaction
        with it would use, see "Gas from the simulation"); the gas is None when the node cannot meter (ask
        :meth:`estimate_gas`). :class:`SimulationReverted` when the call reverts."""
        if not self.metered:
            return await self.simulate_execute(data), None
        try:
            out = await self.rpc.call("eth_call", [{"to": self.address, "data": "0x" + data.hex()}, "latest",
                                                   self._meter])
        except RpcError as exc:
            if revert_data(exc) is not None:  # the contract's revert, passed through by the meter as it is
                raise SimulationReverted("eth_call", decode_error(revert_data(exc)), exc.message) from None
            return await self._unmetered(data, exc.message)
        answer = bytes.fromhex(out[2:])
        if len(answer) < 64:  # the override ignored: our address has no code, its answer is empty
            return await self._unmetered(data, f"an answer of {len(answer)} bytes")
        used = int.from_bytes(answer[-32:], "big") - METER_OVERHEAD
        return int.from_bytes(answer[:32], "big"), max(intrinsic_gas(data) + used, calldata_floor(data))

    async def _unmetered(self, data: bytes, why: str) -> tuple[int, None]:
        """The metered call gave no meter's answer: the plain call decides. It reverts too: the call's revert
        (SimulationReverted; the meter stays). It answers: the node does not run the meter -- off for good."""
        profit = await self.simulate_execute(data)
        self.metered = False
        log.warning("executor: the node at %s does not run eth_call with a state override (%s): gas from "
                    "eth_estimateGas from now on, one more round trip per signal", self.rpc.label, why[:200])
        return profit, None

    async def simulate_execute(self, data: bytes, block: str = "latest") -> int:
        """``data`` (``execute``, ``swap``) via a plain eth_call from our address: the first word of its answer."""
        try:
            out = await self.rpc.call("eth_call", [self._call_obj(data), block])
        except RpcError as exc:
            raise SimulationReverted("eth_call", decode_error(revert_data(exc)), exc.message) from None
        answer = bytes.fromhex(out[2:])
        if len(answer) < 32:
            raise RpcError("eth_call", None, f"an answer of {len(answer)} bytes, not a uint256")
        return int.from_bytes(answer[:32], "big")

    async def estimate_gas(self, data: bytes, *, to: str | None = None) -> int:
        """``eth_estimateGas`` of ``data`` from our address to ``to`` (default: our contract)."""
        try:
            return int(await self.rpc.call("eth_estimateGas", [self._call_obj(data, to=to)]), 16)
        except RpcError as exc:
            raise SimulationReverted("eth_estimateGas", decode_error(revert_data(exc)), exc.message) from None

    def sign(self, *, nonce: int, gas_limit: int, max_fee_per_gas: int, max_priority_fee_per_gas: int,
             data: bytes = b"", to: str | None = None, value: int = 0) -> Tx:
        """An EIP-1559 transaction (empty access list), signed with our key: the very bytes eth-account makes
        (RFC 6979 signatures are deterministic; a test compares them), without its dict validation and
        per-call key derivation, which cost several times the secp256k1 signature itself."""
        fields = [self.chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas, gas_limit,
                  self._contract_bytes if to is None else to_canonical_address(to), value, data, []]
        sig = self._key.sign_recoverable(keccak(b"\x02" + rlp.encode(fields)), hasher=None)
        raw = b"\x02" + rlp.encode([*fields, sig[64], int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")])
        return Tx(raw=raw, tx_hash=keccak(raw), nonce=nonce, gas_limit=gas_limit, max_fee_per_gas=max_fee_per_gas,
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
        self.rpc = node_rpc(url, timeout=timeout)

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
