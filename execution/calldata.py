"""Calldata for :file:`execution/contracts/AlphaPulseArb.sol` and decoding of what it emits.

Pure functions over bytes (eth-abi, eth-utils): no RPC, no clock. The interface is hard-coded
here (the executor must not need the compiler); a test checks it against the compiled ABI.

A path is a list of :class:`Hop` forming a cycle: hop ``i``'s ``token_out`` is hop ``i+1``'s
``token_in`` and the last hop returns to the first hop's ``token_in`` (the start token, in which
profit is measured). See the contract's header for the meaning of every field.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, keccak

from chain import revert
from chain.abi import as_bytes, encode_call
from chain.addresses import (
    UNISWAP_V2_INIT_CODE_HASH,
    UNISWAP_V3_INIT_CODE_HASH,
    checksum,
    v2_pair_address,
    v3_pool_address,
)
from chain.revert import ContractError, error_table

__all__ = [
    "ARBITRAGE_EXECUTED_SIGNATURE",
    "ARBITRAGE_EXECUTED_TOPIC",
    "ERROR_SIGNATURES",
    "EXECUTE_SELECTOR",
    "EXECUTE_BALANCER_SELECTOR",
    "EXECUTE_BALANCER_SIGNATURE",
    "EXECUTE_INVENTORY_SELECTOR",
    "EXECUTE_INVENTORY_SIGNATURE",
    "EXECUTE_SIGNATURE",
    "EXECUTE_V1_SIGNATURE",
    "HOP_TYPE",
    "SWAPPED_SIGNATURE",
    "SWAPPED_TOPIC",
    "SWAP_SELECTOR",
    "SWAP_SIGNATURE",
    "PATH_HEADER",
    "PATH_HOP",
    "PATH_TRAILER",
    "V4_MANAGER_MARK",
    "ArbitrageExecuted",
    "ContractError",
    "CURVE_POOL_MARK",
    "FlashSource",
    "Hop",
    "Kind",
    "Swapped",
    "check_cycle",
    "check_flash_source",
    "flash_source_of",
    "compute_pool_address",
    "decode_arbitrage_executed",
    "decode_error",
    "decode_execute",
    "decode_path",
    "decode_profit_events",
    "decode_swap",
    "decode_swapped",
    "encode_accept_ownership",
    "encode_constructor_args",
    "encode_execute",
    "encode_execute_inventory",
    "encode_execute_v1",
    "encode_path",
    "encode_pause",
    "encode_set_factory",
    "encode_set_balancer_vault",
    "encode_set_recipient",
    "encode_swap",
    "encode_transfer_ownership",
    "encode_unpause",
    "encode_withdraw_token",
    "profit_from_logs",
]


class Kind(enum.IntEnum):
    """``AlphaPulseArb.Kind``: the pool's swap interface."""

    V2 = 0
    V3 = 1
    V4 = 2
    CURVE = 3


class FlashSource(enum.IntEnum):
    """Who lends the start token: the cycle's own pools (a V2/V3 flash swap, or the V4 PoolManager
    inside ``unlock`` when the path has a V4 hop: ``execute``) or the Balancer V2 Vault's flash loan
    (``executeBalancer``, FLASH_BALANCER: any path without V4, e.g. one whose first hop is Curve)."""

    POOL = 0
    BALANCER = 1


EXECUTE_SIGNATURE = "execute(bytes)"
EXECUTE_SELECTOR = function_signature_to_4byte_selector(EXECUTE_SIGNATURE)
EXECUTE_BALANCER_SIGNATURE = "executeBalancer(bytes)"
EXECUTE_BALANCER_SELECTOR = function_signature_to_4byte_selector(EXECUTE_BALANCER_SIGNATURE)
# INVENTORY: a V2-only cycle paid from the contract's own start-token inventory (no flash loan)
EXECUTE_INVENTORY_SIGNATURE = "executeFromInventory(bytes)"
EXECUTE_INVENTORY_SELECTOR = function_signature_to_4byte_selector(EXECUTE_INVENTORY_SIGNATURE)
ARBITRAGE_EXECUTED_SIGNATURE = "ArbitrageExecuted(address,address,uint256,uint256)"
ARBITRAGE_EXECUTED_TOPIC = keccak(text=ARBITRAGE_EXECUTED_SIGNATURE)
# ``AlphaPulseArb.Hop``, the ABI struct of ``swap(Hop, deadline)`` (one swap from inventory) and of
# the previous contract's ``execute(Hop[] hops, uint256 minProfit)`` (v1, kept as
# execution/artifacts/AlphaPulseArb.v1.json for the gas benchmark):
# (pool, factory, tokenIn, tokenOut, kind, fee, amountIn, amountOut)
HOP_TYPE = "(address,address,address,address,uint8,uint24,uint256,uint256)"
EXECUTE_V1_SIGNATURE = f"execute({HOP_TYPE}[],uint256)"
SWAP_SIGNATURE = f"swap({HOP_TYPE},uint256)"
SWAP_SELECTOR = function_signature_to_4byte_selector(SWAP_SIGNATURE)
SWAPPED_SIGNATURE = "Swapped(address,address,uint256,uint256)"
SWAPPED_TOPIC = keccak(text=SWAPPED_SIGNATURE)

_UINT24_MAX = (1 << 24) - 1
_UINT128_MAX = (1 << 128) - 1
_UINT256_MAX = (1 << 256) - 1
_INT24_MIN, _INT24_MAX = -(1 << 23), (1 << 23) - 1
PPM = 1_000_000
# The packed path (see the contract's header): 33-byte header, 83 bytes per hop, 20-byte trailer.
PATH_HEADER = 33
PATH_HOP = 83
PATH_TRAILER = 20
# setFactory's value for a PoolManager (V4 pools have no init-code hash; any non-zero value allows).
V4_MANAGER_MARK = (1).to_bytes(32, "big")
# setFactory's value for a Curve pool (allow-listed by its own address, any non-zero value).
CURVE_POOL_MARK = (1).to_bytes(32, "big")


@dataclass(frozen=True, kw_only=True, slots=True)
class Hop:
    """One swap of the cycle.

    ``fee`` is in pips (1e-6): for V2 the pair's LP fee (3000 = the 997/1000 formula), for V3 and
    V4 the pool's fee. ``amount_in`` is read only on hop 0 (the exact cycle input); ``amount_out``
    is the hop's minimum output (0 = unchecked). For a V4 hop, ``pool`` is the PoolKey's hooks
    (the zero address for none), ``factory`` the PoolManager and ``tick_spacing`` the key's
    tick spacing; the key's currencies are the hop's two tokens, sorted. For a Curve hop, ``pool``
    and ``factory`` are both the (allow-listed) StableSwap pool and ``coin_in`` / ``coin_out`` its
    coin indices ``i`` / ``j`` (packed in the tickSpacing bytes); ``fee`` is informational.
    """

    pool: str
    factory: str
    token_in: str
    token_out: str
    kind: Kind
    fee: int
    amount_in: int = 0
    amount_out: int = 0
    tick_spacing: int = 0
    coin_in: int = 0
    coin_out: int = 0

    def __post_init__(self) -> None:
        # Canonical form (checksummed addresses, Kind), so equal hops compare equal.
        for name in ("pool", "factory", "token_in", "token_out"):
            object.__setattr__(self, name, checksum(getattr(self, name)))
        object.__setattr__(self, "kind", Kind(self.kind))

    @property
    def zero_for_one(self) -> bool:
        return int(self.token_in, 16) < int(self.token_out, 16)

    def pack(self) -> bytes:
        """This hop's 83 bytes of the packed path (its token_out is the next hop's token_in)."""
        if not 0 <= self.fee <= _UINT24_MAX:
            raise ValueError(f"fee {self.fee} is not a uint24")
        if not _INT24_MIN <= self.tick_spacing <= _INT24_MAX:
            raise ValueError(f"tick_spacing {self.tick_spacing} is not an int24")
        if not 0 <= self.amount_out <= _UINT128_MAX:
            raise ValueError(f"amount_out {self.amount_out} is not a uint128")
        if self.kind == Kind.CURVE:
            if not (0 <= self.coin_in < 256 and 0 <= self.coin_out < 256) or self.coin_in == self.coin_out:
                raise ValueError(f"Curve coin indices {self.coin_in}, {self.coin_out}: two different bytes")
            if self.tick_spacing:
                raise ValueError("a Curve hop has no tick_spacing (its bytes hold the coin indices)")
            middle = bytes([self.coin_in, self.coin_out, 0])
        else:
            middle = self.tick_spacing.to_bytes(3, "big", signed=True)
        return b"".join((
            bytes.fromhex(self.token_in[2:]),
            bytes([int(self.kind)]),
            self.fee.to_bytes(3, "big"),
            middle,
            bytes.fromhex(self.pool[2:]),
            bytes.fromhex(self.factory[2:]),
            self.amount_out.to_bytes(16, "big"),
        ))

    def as_abi_tuple(self) -> tuple[Any, ...]:
        """The ``Hop`` ABI struct of ``swap`` and of the v1 contract's ``execute`` (V2/V3 only)."""
        if self.kind in (Kind.V4, Kind.CURVE):
            raise ValueError(f"a {self.kind.name} hop has no v1 Hop struct (swap and the v1 contract are V2/V3 only)")
        for name in ("amount_in", "amount_out"):
            v = getattr(self, name)
            if not 0 <= v <= _UINT256_MAX:
                raise ValueError(f"{name} {v} is not a uint256")
        return (self.pool, self.factory, self.token_in, self.token_out, int(self.kind), self.fee,
                self.amount_in, self.amount_out)

    @classmethod
    def from_abi_tuple(cls, t: Sequence[Any]) -> Hop:
        pool, factory, token_in, token_out, kind, fee, amount_in, amount_out = t
        return cls(pool=pool, factory=factory, token_in=token_in, token_out=token_out, kind=Kind(kind),
                   fee=int(fee), amount_in=int(amount_in), amount_out=int(amount_out))


def check_cycle(hops: Sequence[Hop]) -> None:
    """The contract's path rules, checked off-chain (raises ValueError): >= 2 hops, a closed
    cycle, fees below 100 %, a non-zero input on hop 0."""
    if len(hops) < 2:
        raise ValueError(f"a cycle needs at least 2 hops, got {len(hops)}")
    for i, hop in enumerate(hops):
        nxt = hops[(i + 1) % len(hops)]
        if hop.token_in.lower() == hop.token_out.lower():
            raise ValueError(f"hop {i}: token_in == token_out")
        if hop.token_out.lower() != nxt.token_in.lower():
            raise ValueError(f"hop {i}: token_out {hop.token_out} is not hop {(i + 1) % len(hops)}'s token_in")
        if not 0 <= hop.fee < PPM:
            raise ValueError(f"hop {i}: fee {hop.fee} outside [0, 1e6) pips")
    if hops[0].amount_in <= 0:
        raise ValueError("hop 0 needs amount_in > 0 (the cycle's input)")


def encode_path(hops: Sequence[Hop], min_profit: int) -> bytes:
    """The packed path: header (amountIn, minProfit, hop count), the hops, the last token_out.

    Only hop 0's ``amount_in`` is encoded, and each hop's ``token_out`` only as the next hop's
    ``token_in`` (the last one as the trailer): a path whose hops do not chain cannot be written,
    so it is refused here even with ``check=False`` upstream."""
    if not hops:
        raise ValueError("empty path")
    for i in range(len(hops) - 1):
        if hops[i].token_out.lower() != hops[i + 1].token_in.lower():
            raise ValueError(f"hop {i}: token_out {hops[i].token_out} is not hop {i + 1}'s token_in")
    if len(hops) > 255:
        raise ValueError(f"{len(hops)} hops: at most 255")
    amount_in = hops[0].amount_in
    if not 0 <= amount_in <= _UINT128_MAX:
        raise ValueError(f"amount_in {amount_in} is not a uint128")
    if not 0 <= min_profit <= _UINT128_MAX:
        raise ValueError(f"min_profit {min_profit} is not a uint128")
    return b"".join((
        amount_in.to_bytes(16, "big"), min_profit.to_bytes(16, "big"), bytes([len(hops)]),
        *(h.pack() for h in hops),
        bytes.fromhex(hops[-1].token_out[2:]),
    ))


def decode_path(path: bytes) -> tuple[list[Hop], int]:
    """Inverse of :func:`encode_path`: ``(hops, min_profit)``."""
    if len(path) < PATH_HEADER:
        raise ValueError("packed path shorter than its header")
    n = path[32]
    if len(path) != PATH_HEADER + PATH_HOP * n + PATH_TRAILER:
        raise ValueError(f"packed path of {len(path)} bytes does not hold {n} hops")
    amount_in = int.from_bytes(path[0:16], "big")
    min_profit = int.from_bytes(path[16:32], "big")

    def token(i: int) -> str:
        at = PATH_HEADER + PATH_HOP * i
        return checksum(path[at:at + 20])

    hops = []
    for i in range(n):
        h = path[PATH_HEADER + PATH_HOP * i: PATH_HEADER + PATH_HOP * (i + 1)]
        kind = Kind(h[20])
        curve = kind == Kind.CURVE
        hops.append(Hop(
            token_in=token(i), token_out=token(i + 1), kind=kind, fee=int.from_bytes(h[21:24], "big"),
            tick_spacing=0 if curve else int.from_bytes(h[24:27], "big", signed=True),
            coin_in=h[24] if curve else 0, coin_out=h[25] if curve else 0,
            pool=checksum(h[27:47]), factory=checksum(h[47:67]),
            amount_in=amount_in if i == 0 else 0, amount_out=int.from_bytes(h[67:83], "big"),
        ))
    return hops, min_profit


def encode_execute(hops: Sequence[Hop], min_profit: int, *, check: bool = True,
                   flash: FlashSource = FlashSource.POOL) -> bytes:
    """Calldata for ``execute(bytes path)`` (the pools lend) or, with ``flash=FlashSource.BALANCER``,
    ``executeBalancer(bytes path)`` (the Balancer V2 Vault lends), with the packed path of ``hops``."""
    if check:
        check_cycle(hops)
        check_flash_source(hops, flash)
    selector = EXECUTE_BALANCER_SELECTOR if FlashSource(flash) == FlashSource.BALANCER else EXECUTE_SELECTOR
    return selector + encode(["bytes"], [encode_path(hops, min_profit)])


def check_flash_source(hops: Sequence[Hop], flash: FlashSource) -> None:
    """The contract's rules on who can lend for a path (raises ValueError): a Curve pool cannot lend
    (a path starting with a Curve hop needs the Balancer Vault), a Curve hop does not run inside a V4
    unlock, and the Balancer Vault lends only to paths without V4 hops."""
    kinds = [h.kind for h in hops]
    if Kind.CURVE in kinds and Kind.V4 in kinds:
        raise ValueError("a path with a Curve hop cannot have V4 hops")
    if FlashSource(flash) == FlashSource.BALANCER:
        if Kind.V4 in kinds:
            raise ValueError("the Balancer Vault does not lend to a path with V4 hops")
    elif kinds[0] == Kind.CURVE:
        raise ValueError("a Curve pool cannot lend: a path starting with a Curve hop needs flash=BALANCER")


def flash_source_of(data: bytes) -> FlashSource:
    """Which lender an ``execute``/``executeBalancer`` calldata asks for."""
    if data[:4] == EXECUTE_SELECTOR:
        return FlashSource.POOL
    if data[:4] == EXECUTE_BALANCER_SELECTOR:
        return FlashSource.BALANCER
    raise ValueError("not execute() / executeBalancer() calldata")


def decode_execute(data: bytes) -> tuple[list[Hop], int]:
    """Inverse of :func:`encode_execute`: ``(hops, min_profit)`` (see :func:`flash_source_of`)."""
    flash_source_of(data)
    (path,) = decode(["bytes"], data[4:])
    return decode_path(path)


def encode_execute_inventory(hops: Sequence[Hop], min_profit: int, *, check: bool = True) -> bytes:
    """Calldata for ``executeFromInventory(bytes path)``: a cycle of V2 hops only, paid from the
    contract's own inventory of the start token (``hops[0].amount_in`` of it must be there), with no
    flash loan. A separate mode from :func:`encode_execute`: it saves the lender's callback."""
    if check:
        check_cycle(hops)
        if any(h.kind != Kind.V2 for h in hops):
            raise ValueError("executeFromInventory runs V2 hops only")
    return EXECUTE_INVENTORY_SELECTOR + encode(["bytes"], [encode_path(hops, min_profit)])


def encode_execute_v1(hops: Sequence[Hop], min_profit: int) -> bytes:
    """Calldata for the previous contract's ``execute(Hop[],uint256)`` (the gas benchmark's baseline)."""
    check_cycle(hops)
    return encode_call(EXECUTE_V1_SIGNATURE, [h.as_abi_tuple() for h in hops], min_profit)


def encode_swap(hop: Hop, deadline: int) -> bytes:
    """Calldata for ``swap(Hop hop, uint256 deadline)``: one exact-input swap from the contract's inventory
    (``hop.amount_in`` in, at least ``hop.amount_out`` out, reverting after ``deadline`` in unix seconds)."""
    if hop.token_in.lower() == hop.token_out.lower():
        raise ValueError("token_in == token_out")
    if hop.amount_in <= 0:
        raise ValueError("a swap needs amount_in > 0")
    if not 0 <= deadline <= _UINT256_MAX:
        raise ValueError(f"deadline {deadline} is not a uint256")
    return SWAP_SELECTOR + encode([HOP_TYPE, "uint256"], [hop.as_abi_tuple(), deadline])


def decode_swap(data: bytes) -> tuple[Hop, int]:
    """Inverse of :func:`encode_swap`: ``(hop, deadline)``."""
    if data[:4] != SWAP_SELECTOR:
        raise ValueError("not swap() calldata")
    hop, deadline = decode([HOP_TYPE, "uint256"], data[4:])
    return Hop.from_abi_tuple(hop), int(deadline)


@dataclass(frozen=True, kw_only=True, slots=True)
class Swapped:
    token_in: str
    token_out: str
    amount_in: int
    amount_out: int


def decode_swapped(logs: Iterable[Mapping[str, Any]], contract: str) -> Swapped | None:
    """The ``Swapped`` event ``contract`` emitted in a receipt's ``logs`` (None: there is none)."""
    want = contract.lower()
    found = []
    for log in logs:
        topics = [as_bytes(t) for t in log.get("topics") or ()]
        addr = log["address"]
        addr = checksum(addr) if isinstance(addr, (str, bytes)) else addr
        if len(topics) != 3 or topics[0] != SWAPPED_TOPIC or str(addr).lower() != want:
            continue
        amount_in, amount_out = decode(["uint256", "uint256"], as_bytes(log["data"]))
        found.append(Swapped(token_in=checksum(topics[1][-20:]), token_out=checksum(topics[2][-20:]),
                             amount_in=int(amount_in), amount_out=int(amount_out)))
    if len(found) > 1:
        raise ValueError(f"{len(found)} Swapped events from {contract} in one receipt")
    return found[0] if found else None


# -- admin calls --------------------------------------------------------------------------------
def encode_constructor_args(recipient: str) -> bytes:
    """Append to the artifact's ``bytecode`` to deploy: ``constructor(address recipient)``."""
    return encode(["address"], [checksum(recipient)])


def encode_set_factory(factory: str, kind: Kind, init_code_hash: bytes | None = None) -> bytes:
    """``setFactory(factory, kind, initCodeHash)``; the official Uniswap hash of ``kind`` by default
    (for V4, ``factory`` is a PoolManager and the default is :data:`V4_MANAGER_MARK`), ``bytes(32)``
    to disallow."""
    if init_code_hash is None:
        init_code_hash = {Kind.V2: UNISWAP_V2_INIT_CODE_HASH, Kind.V3: UNISWAP_V3_INIT_CODE_HASH,
                          Kind.V4: V4_MANAGER_MARK, Kind.CURVE: CURVE_POOL_MARK}[Kind(kind)]
    if len(init_code_hash) != 32:
        raise ValueError("init_code_hash must be 32 bytes")
    return encode_call("setFactory(address,uint8,bytes32)", checksum(factory), int(Kind(kind)), init_code_hash)


def encode_set_recipient(recipient: str) -> bytes:
    return encode_call("setRecipient(address)", checksum(recipient))


def encode_set_balancer_vault(vault: str) -> bytes:
    """``setBalancerVault(vault)``: the Vault ``executeBalancer`` borrows from (zero address: none)."""
    return encode_call("setBalancerVault(address)", checksum(vault))


def encode_pause() -> bytes:
    return encode_call("pause()")


def encode_unpause() -> bytes:
    return encode_call("unpause()")


def encode_transfer_ownership(new_owner: str) -> bytes:
    return encode_call("transferOwnership(address)", checksum(new_owner))


def encode_accept_ownership() -> bytes:
    return encode_call("acceptOwnership()")


def encode_withdraw_token(token: str, to: str, amount: int) -> bytes:
    return encode_call("withdrawToken(address,address,uint256)", checksum(token), checksum(to), amount)


# -- the profit event ---------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class ArbitrageExecuted:
    contract: str
    token: str
    recipient: str
    amount_in: int
    profit: int
    log_index: int | None = None
    tx_hash: str | None = None
    block_number: int | None = None


def _as_int(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, int):
        return v
    return int(v, 16) if isinstance(v, str) and v.startswith(("0x", "0X")) else int(v)


def decode_arbitrage_executed(log: Mapping[str, Any]) -> ArbitrageExecuted | None:
    """Decode one JSON-RPC log object (``address``, ``topics``, ``data``; hex strings or bytes);
    None if it is not an ``ArbitrageExecuted`` event."""
    topics = [as_bytes(t) for t in log.get("topics") or ()]
    if len(topics) != 3 or topics[0] != ARBITRAGE_EXECUTED_TOPIC:
        return None
    amount_in, profit = decode(["uint256", "uint256"], as_bytes(log["data"]))
    tx_hash = log.get("transactionHash")
    return ArbitrageExecuted(
        contract=checksum(as_bytes(log["address"]) if isinstance(log["address"], bytes) else log["address"]),
        token=checksum(topics[1][-20:]),
        recipient=checksum(topics[2][-20:]),
        amount_in=int(amount_in),
        profit=int(profit),
        log_index=_as_int(log.get("logIndex")),
        tx_hash=("0x" + tx_hash.hex()) if isinstance(tx_hash, bytes) else tx_hash,
        block_number=_as_int(log.get("blockNumber")),
    )


def decode_profit_events(logs: Iterable[Mapping[str, Any]], contract: str | None = None) -> list[ArbitrageExecuted]:
    """All ``ArbitrageExecuted`` events in ``logs`` (a receipt's ``logs``), optionally only those
    emitted by ``contract`` - pass it: any contract can emit a look-alike event."""
    want = contract.lower() if contract else None
    out = []
    for log in logs:
        ev = decode_arbitrage_executed(log)
        if ev is not None and (want is None or ev.contract.lower() == want):
            out.append(ev)
    return out


def profit_from_logs(logs: Iterable[Mapping[str, Any]], contract: str) -> int | None:
    """The realized profit of the execution whose receipt has ``logs``; None when there is no
    event from ``contract`` (e.g. a reverted transaction)."""
    events = decode_profit_events(logs, contract)
    if not events:
        return None
    if len(events) > 1:
        raise ValueError(f"{len(events)} ArbitrageExecuted events from {contract} in one receipt")
    return events[0].profit


# -- custom errors --------------------------------------------------------------------------------
ERROR_SIGNATURES: tuple[str, ...] = (
    "NotOwner(address)",
    "NotPendingOwner(address)",
    "EnforcedPause()",
    "ExpectedPause()",
    "ZeroAddress()",
    "PathTooShort(uint256)",
    "BrokenPath(uint256)",
    "InvalidFee(uint256,uint24)",
    "FactoryNotAllowed(uint256,address,uint8)",
    "PoolNotGenuine(uint256,address,address)",
    "ZeroAmountIn()",
    "MalformedPath()",
    "UnexpectedCallback(address)",
    "UnexpectedInitiator(address)",
    "InvalidCallbackData()",
    "InsufficientOutput(uint256,uint256,uint256)",
    "InsufficientReturn(uint256,uint256)",
    "InsufficientProfit(uint256,uint256)",
    "TransferFailed(address,address,uint256)",
    "BalanceQueryFailed(address)",
    "ReservesQueryFailed(address)",
    "DeadlinePassed(uint256,uint256)",
    "CallFailed(address)",
    "NoFlashLender()",
    "ApproveFailed(address,address)",
    "AllowListFull(uint256)",
)


_ERRORS = error_table(ERROR_SIGNATURES)


def decode_error(data: str | bytes | None) -> ContractError | None:
    """Decode revert data (as returned by ``eth_call`` / ``eth_estimateGas`` errors) into the
    contract's custom error (or Solidity's ``Error``/``Panic``); None for empty or unknown data."""
    return revert.decode_error(data, _ERRORS)


# -- pool addresses ------------------------------------------------------------------------------
def compute_pool_address(kind: Kind, factory: str, token_a: str, token_b: str, fee: int = 0,
                         init_code_hash: bytes | None = None) -> str:
    """The CREATE2 address of a V2 pair / V3 pool, exactly as the contract recomputes it
    (official Uniswap init-code hashes by default; see :mod:`chain.addresses`)."""
    if Kind(kind) == Kind.V2:
        return v2_pair_address(factory, token_a, token_b, init_code_hash or UNISWAP_V2_INIT_CODE_HASH)
    return v3_pool_address(factory, token_a, token_b, fee, init_code_hash or UNISWAP_V3_INIT_CODE_HASH)
