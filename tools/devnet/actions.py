"""Drive a devnet chain: transactions, swaps, liquidity, reads, quotes, snapshots, reorgs.

Two layers:

* :class:`ChainClient` - any anvil node: send transactions from its unlocked dev accounts
  (``eth_sendTransaction``; no private keys anywhere), ``eth_call``, pipelined batches of
  transactions, ERC-20 balance/approve, and the anvil controls (snapshot/revert, mine,
  automine, ``anvil_reorg``, ``anvil_rollback``, set balance).
* :class:`DevnetClient` - the same plus everything that needs a
  :class:`~chain.deployment.ChainDeployment`: fund accounts with tokens, swap exact-in on a
  V2 Router02 or the V3 SwapRouter, add/remove V2 liquidity, mint/burn V3 positions, read V2
  reserves and V3 slot0/liquidity/ticks, quote with Router02.getAmountsOut and QuoterV2; swap and
  modify liquidity on V4 pools through our router, and read a V4 pool's whole state from the
  PoolManager's storage (``extsload``, :mod:`chain.v4_state`).

All amounts are raw integers (wei / token base units). Deadlines are far in the future because
anvil's block timestamps follow the wall clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from eth_utils import to_checksum_address

from chain import v4_state
from chain.abi import as_bytes
from chain.addresses import sort_tokens
from chain.deployment import ChainDeployment, Pool, V4Pool
from chain.revert import decode_revert, revert_data
from chain.rpc import RpcError, SyncHttpRpc

from . import artifacts

MAX_UINT256 = 2**256 - 1
MAX_UINT128 = 2**128 - 1
FAR_FUTURE_DEADLINE = 2**48  # anvil timestamps are wall-clock; never let a deadline bite
MIN_SQRT_RATIO = 4295128739
MAX_SQRT_RATIO = 1461446703485210103287273052203988822378723970342
MIN_TICK = -887272
MAX_TICK = 887272
TICK_SPACINGS = {100: 1, 500: 10, 3000: 60, 10000: 200}
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------
def to_hex(value: int | bytes) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return hex(value)


def v2_amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """UniswapV2Library.getAmountOut (0.3 % fee)."""
    amount_in_with_fee = amount_in * 997
    return amount_in_with_fee * reserve_out // (reserve_in * 1000 + amount_in_with_fee)


def raw_price(human_price: Fraction | int | str, decimals0: int, decimals1: int) -> Fraction:
    """token1 base units per token0 base unit, from a human price (token1 per token0)."""
    return Fraction(human_price) * Fraction(10**decimals1, 10**decimals0)


def price_to_sqrt_price_x96(human_price: Fraction | int | str, decimals0: int, decimals1: int) -> int:
    """sqrtPriceX96 for a human price quoted as token1 per token0 (floor)."""
    p = raw_price(human_price, decimals0, decimals1)
    return math.isqrt(p.numerator * 2**192 // p.denominator)


def sqrt_price_x96_to_price(sqrt_price_x96: int, decimals0: int, decimals1: int) -> Fraction:
    """Human price (token1 per token0) of a sqrtPriceX96."""
    return Fraction(sqrt_price_x96**2, 2**192) * Fraction(10**decimals0, 10**decimals1)


def tick_at_price(human_price: Fraction | int | str, decimals0: int, decimals1: int) -> int:
    """Approximate (float) tick of a price; for choosing position ranges, not for pool math."""
    return math.floor(math.log(float(raw_price(human_price, decimals0, decimals1))) / math.log(1.0001))


def usable_tick(tick: int, spacing: int) -> int:
    """Round ``tick`` down to a multiple of ``spacing``, clamped to the usable range."""
    t = (tick // spacing) * spacing
    lo = -(MAX_TICK // spacing) * spacing
    return max(lo, min(-lo, t))


def v3_path(tokens: Sequence[str], fees: Sequence[int]) -> bytes:
    """Packed V3 multi-hop path: token (20) fee (3) token (20) ..."""
    if len(tokens) != len(fees) + 1:
        raise ValueError("need len(tokens) == len(fees) + 1")
    out = as_bytes(tokens[0])
    for fee, tok in zip(fees, tokens[1:]):
        out += fee.to_bytes(3, "big") + as_bytes(tok)
    return out


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Log:
    address: str
    topics: tuple[bytes, ...]
    data: bytes
    log_index: int
    block_number: int
    block_hash: str
    tx_hash: str


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    status: int
    block_number: int
    block_hash: str
    gas_used: int
    contract_address: str | None
    logs: tuple[Log, ...]

    @classmethod
    def from_rpc(cls, r: Mapping[str, Any]) -> Receipt:
        logs = tuple(
            Log(
                address=to_checksum_address(lg["address"]),
                topics=tuple(as_bytes(t) for t in lg["topics"]),
                data=as_bytes(lg["data"]),
                log_index=int(lg["logIndex"], 16),
                block_number=int(lg["blockNumber"], 16),
                block_hash=lg["blockHash"],
                tx_hash=lg["transactionHash"],
            )
            for lg in r.get("logs", [])
        )
        ca = r.get("contractAddress")
        return cls(
            tx_hash=r["transactionHash"],
            status=int(r["status"], 16),
            block_number=int(r["blockNumber"], 16),
            block_hash=r["blockHash"],
            gas_used=int(r["gasUsed"], 16),
            contract_address=to_checksum_address(ca) if ca else None,
            logs=logs,
        )

    def events(self, artifact: str, event: str, address: str | None = None) -> list[dict[str, Any]]:
        """Decode every log of ``artifact``'s ``event`` (optionally only from ``address``)."""
        ev = artifacts.load(artifact).event(event)
        out = []
        for lg in self.logs:
            if lg.topics and lg.topics[0] == ev.topic and (address is None or lg.address.lower() == address.lower()):
                if len(lg.topics) - 1 == len(ev.indexed):
                    out.append(ev.decode(lg.topics, lg.data) | {"address": lg.address})
        return out


@dataclass(frozen=True)
class Tx:
    """A transaction request for :meth:`ChainClient.send_many` (``to=None`` deploys ``data``)."""

    sender: str
    to: str | None
    data: bytes = b""
    value: int = 0
    gas: int | None = None
    label: str = ""


class TxFailed(RuntimeError):
    def __init__(self, label: str, reason: str, receipt: Receipt | None = None, tx_hash: str | None = None):
        self.label = label
        self.reason = reason
        self.receipt = receipt
        self.tx_hash = tx_hash or (receipt.tx_hash if receipt else None)
        super().__init__(f"transaction {label or self.tx_hash} failed: {reason}")


@dataclass(frozen=True)
class SwapResult:
    amount_in: int
    amount_out: int  # what the recipient received of the last token (from its Transfer events)
    receipt: Receipt


@dataclass(frozen=True)
class V2LiquidityResult:
    amount0: int
    amount1: int
    liquidity: int
    receipt: Receipt


@dataclass(frozen=True)
class V3Position:
    token_id: int
    liquidity: int
    amount0: int
    amount1: int
    receipt: Receipt


@dataclass(frozen=True)
class Slot0:
    sqrt_price_x96: int
    tick: int
    observation_index: int
    observation_cardinality: int
    observation_cardinality_next: int
    fee_protocol: int
    unlocked: bool


@dataclass(frozen=True)
class TickInfo:
    liquidity_gross: int
    liquidity_net: int
    fee_growth_outside0_x128: int
    fee_growth_outside1_x128: int
    tick_cumulative_outside: int
    seconds_per_liquidity_outside_x128: int
    seconds_outside: int
    initialized: bool


@dataclass(frozen=True)
class V4Swap:
    """A V4 swap as executed: the PoolManager's ``Swap`` event (BalanceDelta from the swapper's
    side, negative = paid in; slot0 and liquidity after) and what the sender's balances did."""

    amount0: int
    amount1: int
    sqrt_price_x96: int
    liquidity: int
    tick: int
    fee: int
    paid0: int  # sender's balance change of currency0 (negative = paid)
    paid1: int
    receipt: Receipt


@dataclass(frozen=True)
class V4RawState:
    """Everything a V4 pool's swaps depend on, read in one ``extsload`` round."""

    slot0: v4_state.Slot0
    liquidity: int
    ticks: dict[int, tuple[int, int]]  # tick -> (liquidityGross, liquidityNet)


@dataclass(frozen=True)
class V3Quote:
    amount_out: int
    sqrt_price_x96_after: tuple[int, ...]  # one per hop
    initialized_ticks_crossed: tuple[int, ...]  # a gas helper, not ground truth
    gas_estimate: int


# --------------------------------------------------------------------------------------------
# ChainClient
# --------------------------------------------------------------------------------------------
class ChainClient:
    """Transactions and reads on any anvil node through its unlocked dev accounts."""

    def __init__(self, rpc: SyncHttpRpc | str, *, receipt_timeout: float = 30.0) -> None:
        self.rpc = SyncHttpRpc(rpc) if isinstance(rpc, str) else rpc
        self.receipt_timeout = receipt_timeout

    # -- basics --------------------------------------------------------------------------------
    def chain_id(self) -> int:
        return int(self.rpc.call("eth_chainId"), 16)

    def accounts(self) -> list[str]:
        return [to_checksum_address(a) for a in self.rpc.call("eth_accounts")]

    def block_number(self) -> int:
        return int(self.rpc.call("eth_blockNumber"), 16)

    def get_block(self, block: int | str = "latest", *, full: bool = False) -> dict[str, Any]:
        tag = to_hex(block) if isinstance(block, int) else block
        return dict(self.rpc.call("eth_getBlockByNumber", [tag, full]))

    def code(self, address: str, block: int | str = "latest") -> bytes:
        tag = to_hex(block) if isinstance(block, int) else block
        return as_bytes(self.rpc.call("eth_getCode", [address, tag]))

    def nonce(self, address: str, block: str = "pending") -> int:
        return int(self.rpc.call("eth_getTransactionCount", [address, block]), 16)

    def eth_balance(self, address: str) -> int:
        return int(self.rpc.call("eth_getBalance", [address, "latest"]), 16)

    def set_eth_balance(self, address: str, wei: int) -> None:
        self.rpc.call("anvil_setBalance", [address, to_hex(wei)])

    # -- calls ---------------------------------------------------------------------------------
    def eth_call(
        self, to: str, data: bytes, *, sender: str | None = None, value: int = 0, block: int | str = "latest"
    ) -> bytes:
        """``eth_call``; raises :class:`~chain.rpc.RpcError` on revert (``.data`` holds the revert data)."""
        tx: dict[str, Any] = {"to": to, "data": to_hex(data)}
        if sender:
            tx["from"] = sender
        if value:
            tx["value"] = to_hex(value)
        tag = to_hex(block) if isinstance(block, int) else block
        return as_bytes(self.rpc.call("eth_call", [tx, tag]))

    def call_fn(self, artifact: str, to: str, fn: str, *args: Any, block: int | str = "latest") -> tuple[Any, ...]:
        """Call ``artifact.fn(*args)`` at ``to`` with eth_call and decode the outputs."""
        f = artifacts.load(artifact).fn(fn, len(args))
        return f.decode(self.eth_call(to, f.encode(*args), block=block))

    def call_many(
        self, calls: Sequence[tuple[str, str, str, Sequence[Any]]], *, block: int | str = "latest"
    ) -> list[tuple[Any, ...]]:
        """Batch of ``(artifact, to, fn, args)`` eth_calls in one HTTP request."""
        tag = to_hex(block) if isinstance(block, int) else block
        fns = [artifacts.load(a).fn(fn, len(args)) for a, _, fn, args in calls]
        reqs = [
            ("eth_call", [{"to": to, "data": to_hex(f.encode(*args))}, tag])
            for f, (_, to, _, args) in zip(fns, calls)
        ]
        return [f.decode(as_bytes(r)) for f, r in zip(fns, self.rpc.batch(reqs))]

    # -- transactions --------------------------------------------------------------------------
    def _tx_dict(self, tx: Tx, nonce: int | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"from": tx.sender, "data": to_hex(tx.data)}
        if tx.to is not None:
            d["to"] = tx.to
        if tx.value:
            d["value"] = to_hex(tx.value)
        if tx.gas is not None:
            d["gas"] = to_hex(tx.gas)
        if nonce is not None:
            d["nonce"] = to_hex(nonce)
        return d

    def _revert_reason(self, tx: Tx, receipt: Receipt) -> str:
        """Re-run a failed transaction with eth_call on its parent block to get the reason."""
        call = self._tx_dict(tx)
        call.pop("nonce", None)
        try:
            self.rpc.call("eth_call", [call, to_hex(receipt.block_number - 1)])
        except RpcError as exc:
            return f"{exc.message}: {decode_revert(revert_data(exc))}"
        hint = " - out of gas?" if tx.gas is not None and receipt.gas_used >= tx.gas else ""
        return f"reverted, gas used {receipt.gas_used}{hint} (eth_call does not reproduce it)"

    def wait_receipt(self, tx_hash: str, timeout: float | None = None) -> Receipt:
        deadline = time.monotonic() + (self.receipt_timeout if timeout is None else timeout)
        delay = 0.002
        while True:
            r = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
            if r is not None:
                return Receipt.from_rpc(r)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no receipt for {tx_hash} (is mining disabled?)")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def send(
        self,
        sender: str,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
        wait: bool = True,
        label: str = "",
    ) -> Receipt | str:
        """``eth_sendTransaction`` from an unlocked account. Without ``gas``, the limit is
        ``eth_estimateGas`` + 25 % + 50k. With ``wait`` (default) returns the :class:`Receipt` and
        raises :class:`TxFailed` if it reverted (reason replayed with eth_call); otherwise the hash."""
        tx = Tx(sender, to, data, value, gas, label)
        try:
            if gas is None:
                # Estimation runs on the current block; the transaction lands in the next one,
                # where e.g. a V3 oracle write can cost more (new timestamp): keep a margin.
                estimate = int(self.rpc.call("eth_estimateGas", [self._tx_dict(tx)]), 16)
                tx = Tx(sender, to, data, value, estimate * 5 // 4 + 50_000, label)
            tx_hash = self.rpc.call("eth_sendTransaction", [self._tx_dict(tx)])
        except RpcError as exc:  # gas estimation runs the call: reverts surface here
            raise TxFailed(label, f"{exc.message}: {decode_revert(revert_data(exc))}") from exc
        if not wait:
            return str(tx_hash)
        receipt = self.wait_receipt(tx_hash)
        if receipt.status != 1:
            raise TxFailed(label, self._revert_reason(tx, receipt), receipt)
        return receipt

    def transact(self, sender: str, artifact: str, to: str, fn: str, *args: Any, value: int = 0,
                 gas: int | None = None) -> Receipt:
        """Send ``artifact.fn(*args)`` to ``to`` and wait for a successful receipt."""
        data = artifacts.load(artifact).encode(fn, *args)
        r = self.send(sender, to, data, value=value, gas=gas, label=f"{artifact}.{fn}")
        assert isinstance(r, Receipt)
        return r

    def deploy(self, sender: str, artifact: str, *ctor_args: Any, gas: int | None = None) -> str:
        """Deploy ``artifact`` with constructor arguments; returns the contract address."""
        r = self.send(sender, None, artifacts.load(artifact).deploy_data(*ctor_args), gas=gas, label=f"deploy {artifact}")
        assert isinstance(r, Receipt) and r.contract_address
        return r.contract_address

    def send_many(self, txs: Sequence[Tx]) -> list[Receipt]:
        """Pipeline many transactions: explicit nonces and gas (no estimation), submitted back to
        back without waiting for receipts, which are then fetched in batches. Per sender, transactions execute in list
        order (nonce order), so later ones may depend on earlier ones. Every ``Tx`` needs ``gas``.
        Raises :class:`TxFailed` for the first transaction that reverted.

        anvil drops queued transactions that do not fit the block it is building, so for big
        pipelines raise the block gas limit first (see :func:`tools.devnet.deploy.deploy`)."""
        if not txs:
            return []
        if any(t.gas is None for t in txs):
            raise ValueError("send_many needs an explicit gas limit on every Tx")
        senders = sorted({t.sender.lower() for t in txs})
        counts = self.rpc.batch([("eth_getTransactionCount", [s, "pending"]) for s in senders])
        next_nonce = {s: int(c, 16) for s, c in zip(senders, counts)}
        hashes: list[str] = []
        for t in txs:
            # One request per transaction, in order: anvil handles the calls of a JSON-RPC batch
            # concurrently, and out-of-order nonces were seen to get transactions dropped.
            n = next_nonce[t.sender.lower()]
            next_nonce[t.sender.lower()] = n + 1
            try:
                hashes.append(str(self.rpc.call("eth_sendTransaction", [self._tx_dict(t, n)])))
            except RpcError as exc:
                raise TxFailed(t.label, f"rejected: {exc}") from exc
        receipts: list[Receipt | None] = [None] * len(hashes)
        deadline = time.monotonic() + self.receipt_timeout
        delay = 0.002
        while True:
            missing = [i for i, r in enumerate(receipts) if r is None]
            if not missing:
                break
            got = self.rpc.batch([("eth_getTransactionReceipt", [hashes[i]]) for i in missing])
            for i, r in zip(missing, got):
                if r is not None:
                    receipts[i] = Receipt.from_rpc(r)
            if any(r is None for r in receipts):
                if time.monotonic() > deadline:
                    pool = self.rpc.call("txpool_status")
                    raise TimeoutError(
                        f"{sum(r is None for r in receipts)} receipts missing; txpool {pool}. Mining disabled? "
                        "anvil drops queued transactions that do not fit the block being built: keep the "
                        "pending gas limits under the block gas limit or raise it (set_block_gas_limit)")
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        done = [r for r in receipts if r is not None]
        for t, r in zip(txs, done):
            if r.status != 1:
                raise TxFailed(t.label, self._revert_reason(t, r), r)
        return done

    # -- ERC-20 --------------------------------------------------------------------------------
    def erc20_balance(self, token: str, owner: str) -> int:
        return int(self.call_fn("DevToken", token, "balanceOf", owner)[0])

    def erc20_allowance(self, token: str, owner: str, spender: str) -> int:
        return int(self.call_fn("DevToken", token, "allowance", owner, spender)[0])

    def approve(self, owner: str, token: str, spender: str, amount: int = MAX_UINT256) -> Receipt:
        return self.transact(owner, "DevToken", token, "approve", spender, amount)

    def transfer(self, sender: str, token: str, to: str, amount: int) -> Receipt:
        return self.transact(sender, "DevToken", token, "transfer", to, amount)

    # -- anvil controls ------------------------------------------------------------------------
    def snapshot(self) -> str:
        """``evm_snapshot``: an id for :meth:`revert`. Reverting consumes the snapshot (and every
        later one), so take a new one to revert again."""
        return str(self.rpc.call("evm_snapshot"))

    def revert(self, snapshot_id: str) -> bool:
        return bool(self.rpc.call("evm_revert", [snapshot_id]))

    def mine(self, blocks: int = 1, interval: int | None = None) -> int:
        """Mine ``blocks`` blocks (``anvil_mine``), ``interval`` seconds apart; returns the new head."""
        params: list[Any] = [to_hex(blocks)]
        if interval is not None:
            params.append(to_hex(interval))
        self.rpc.call("anvil_mine", params)
        return self.block_number()

    def block_gas_limit(self) -> int:
        return int(self.get_block("latest")["gasLimit"], 16)

    def set_block_gas_limit(self, gas: int) -> None:
        """``evm_setBlockGasLimit`` for the blocks mined from now on."""
        self.rpc.call("evm_setBlockGasLimit", [to_hex(gas)])

    def set_automine(self, enabled: bool) -> None:
        self.rpc.call("evm_setAutomine", [enabled])

    def set_interval_mining(self, seconds: int) -> None:
        """Mine a block every ``seconds`` (0 disables interval mining)."""
        self.rpc.call("evm_setIntervalMining", [seconds])

    def set_next_block_timestamp(self, timestamp: int) -> None:
        self.rpc.call("evm_setNextBlockTimestamp", [timestamp])

    def reorg(self, depth: int, txs: Iterable[tuple[Tx, int]] = ()) -> dict[str, Any]:
        """Replace the last ``depth`` blocks with ``depth`` new ones (``anvil_reorg``): same
        height, new hashes. The transactions in the replaced blocks are dropped; ``txs`` are
        ``(Tx, block_offset)`` pairs to include in the new blocks (offset 0 = first new block).
        Returns ``{"old": {number: hash}, "new": {number: hash}, "head": number}``."""
        head = self.block_number()
        if depth < 1 or depth > head:
            raise ValueError(f"reorg depth {depth} not in 1..{head}")
        numbers = list(range(head - depth + 1, head + 1))
        old = {n: b["hash"] for n, b in zip(numbers, self.rpc.batch(
            [("eth_getBlockByNumber", [to_hex(n), False]) for n in numbers]))}
        pairs = [[self._tx_dict(t), off] for t, off in txs]
        self.rpc.call("anvil_reorg", [depth, pairs])
        new_head = self.block_number()
        new = {n: b["hash"] for n, b in zip(numbers, self.rpc.batch(
            [("eth_getBlockByNumber", [to_hex(n), False]) for n in numbers]))}
        return {"old": old, "new": new, "head": new_head}

    def rollback(self, depth: int = 1) -> int:
        """Remove the last ``depth`` blocks (``anvil_rollback``); returns the new head."""
        self.rpc.call("anvil_rollback", [depth])
        return self.block_number()


# --------------------------------------------------------------------------------------------
# DevnetClient
# --------------------------------------------------------------------------------------------
class DevnetClient(ChainClient):
    """:class:`ChainClient` bound to a deployment: Uniswap V2/V3 actions by venue and symbol.

    Tokens may be given by symbol ("WETH", "USDC", "DAI") or address everywhere."""

    def __init__(self, deployment: ChainDeployment, rpc: SyncHttpRpc | None = None, **kw: Any) -> None:
        super().__init__(rpc or SyncHttpRpc(deployment.rpc_url), **kw)
        self.d = deployment

    def __enter__(self) -> DevnetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.rpc.close()

    def _addr(self, token: str) -> str:
        return self.d.address_of(token)

    def _pool_addr(self, pool: Pool | str) -> str:
        return pool.address if isinstance(pool, Pool) else pool

    # -- funding -------------------------------------------------------------------------------
    def fund(self, account: str, token: str, amount: int) -> None:
        """Give ``account`` ``amount`` of ``token``: WETH by depositing ETH (topped up with
        anvil_setBalance when short), DevTokens by minting. ``token="ETH"`` sets ETH directly."""
        if token.upper() == "ETH":
            self.set_eth_balance(account, self.eth_balance(account) + amount)
            return
        addr = self._addr(token)
        if addr.lower() == self.d.weth.lower():
            need = amount + 10**18  # keep gas money
            bal = self.eth_balance(account)
            if bal < need:
                self.set_eth_balance(account, need)
            self.transact(account, "WETH9", addr, "deposit", value=amount)
        else:
            self.transact(account, "DevToken", addr, "mint", account, amount)

    def spenders(self) -> list[str]:
        """Every router / manager that pulls tokens: the V2 routers, SwapRouter, position manager."""
        return [v.router for v in self.d.v2] + [self.d.v3.swap_router, self.d.v3.position_manager]

    def approve_all(self, account: str, tokens: Iterable[str] | None = None) -> None:
        """Approve every spender for every token (max allowance), pipelined."""
        toks = [self._addr(t) for t in tokens] if tokens is not None else [t.address for t in self.d.tokens]
        f = artifacts.load("DevToken").fn("approve")
        self.send_many([Tx(account, t, f.encode(s, MAX_UINT256), gas=100_000, label=f"approve {t}->{s}")
                        for t in toks for s in self.spenders()])

    def balance(self, account: str, token: str) -> int:
        if token.upper() == "ETH":
            return self.eth_balance(account)
        return self.erc20_balance(self._addr(token), account)

    def _received(self, receipt: Receipt, token: str, recipient: str) -> int:
        return sum(e["value"] for e in receipt.events("DevToken", "Transfer", token)
                   if e["to"].lower() == recipient.lower())

    # -- V2 ------------------------------------------------------------------------------------
    def v2_reserves(self, pool: Pool | str, block: int | str = "latest") -> tuple[int, int, int]:
        """``getReserves()``: (reserve0, reserve1, blockTimestampLast)."""
        r0, r1, ts = self.call_fn("UniswapV2Pair", self._pool_addr(pool), "getReserves", block=block)
        return int(r0), int(r1), int(ts)

    def v2_get_pair(self, venue: str, token_a: str, token_b: str) -> str:
        factory = self.d.v2_venue(venue).factory
        return to_checksum_address(self.call_fn("UniswapV2Factory", factory, "getPair",
                                                self._addr(token_a), self._addr(token_b))[0])

    def v2_amounts_out(self, venue: str, amount_in: int, path: Sequence[str]) -> list[int]:
        """Router02.getAmountsOut."""
        router = self.d.v2_venue(venue).router
        return list(self.call_fn("UniswapV2Router02", router, "getAmountsOut",
                                 amount_in, [self._addr(t) for t in path])[0])

    def v2_swap_exact_in(
        self, venue: str, sender: str, amount_in: int, path: Sequence[str], *,
        min_out: int = 0, recipient: str | None = None, deadline: int = FAR_FUTURE_DEADLINE,
    ) -> SwapResult:
        """Router02.swapExactTokensForTokens (sender needs balance + allowance; see fund/approve_all)."""
        router = self.d.v2_venue(venue).router
        to = recipient or sender
        addrs = [self._addr(t) for t in path]
        r = self.transact(sender, "UniswapV2Router02", router, "swapExactTokensForTokens",
                          amount_in, min_out, addrs, to, deadline)
        return SwapResult(amount_in, self._received(r, addrs[-1], to), r)

    def v2_add_liquidity(
        self, venue: str, sender: str, token_a: str, token_b: str, amount_a: int, amount_b: int, *,
        recipient: str | None = None,
    ) -> V2LiquidityResult:
        """Router02.addLiquidity (creates the pair if needed). Amounts in the result are in
        pair order (token0/token1)."""
        router = self.d.v2_venue(venue).router
        a, b = self._addr(token_a), self._addr(token_b)
        to = recipient or sender
        r = self.transact(sender, "UniswapV2Router02", router, "addLiquidity",
                          a, b, amount_a, amount_b, 0, 0, to, FAR_FUTURE_DEADLINE)
        pair = self.v2_get_pair(venue, a, b)
        mint = r.events("UniswapV2Pair", "Mint", pair)[-1]
        liq = sum(e["value"] for e in r.events("UniswapV2Pair", "Transfer", pair) if e["to"].lower() == to.lower())
        return V2LiquidityResult(mint["amount0"], mint["amount1"], liq, r)

    def v2_remove_liquidity(
        self, venue: str, sender: str, token_a: str, token_b: str, liquidity: int, *, recipient: str | None = None,
    ) -> V2LiquidityResult:
        """Router02.removeLiquidity (approves the router for the LP token first)."""
        router = self.d.v2_venue(venue).router
        a, b = self._addr(token_a), self._addr(token_b)
        pair = self.v2_get_pair(venue, a, b)
        self.transact(sender, "UniswapV2Pair", pair, "approve", router, liquidity)
        r = self.transact(sender, "UniswapV2Router02", router, "removeLiquidity",
                          a, b, liquidity, 0, 0, recipient or sender, FAR_FUTURE_DEADLINE)
        burn = r.events("UniswapV2Pair", "Burn", pair)[-1]
        return V2LiquidityResult(burn["amount0"], burn["amount1"], liquidity, r)

    def v2_lp_balance(self, pool: Pool | str, owner: str) -> int:
        return int(self.call_fn("UniswapV2Pair", self._pool_addr(pool), "balanceOf", owner)[0])

    # -- V3 reads ------------------------------------------------------------------------------
    def v3_get_pool(self, token_a: str, token_b: str, fee: int) -> str:
        return to_checksum_address(self.call_fn("UniswapV3Factory", self.d.v3.factory, "getPool",
                                                self._addr(token_a), self._addr(token_b), fee)[0])

    def v3_slot0(self, pool: Pool | str, block: int | str = "latest") -> Slot0:
        v = self.call_fn("UniswapV3Pool", self._pool_addr(pool), "slot0", block=block)
        return Slot0(int(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]), int(v[5]), bool(v[6]))

    def v3_liquidity(self, pool: Pool | str, block: int | str = "latest") -> int:
        return int(self.call_fn("UniswapV3Pool", self._pool_addr(pool), "liquidity", block=block)[0])

    def v3_ticks(self, pool: Pool | str, ticks: Sequence[int], block: int | str = "latest") -> dict[int, TickInfo]:
        """``ticks(t)`` for many ticks in one batch."""
        addr = self._pool_addr(pool)
        res = self.call_many([("UniswapV3Pool", addr, "ticks", (t,)) for t in ticks], block=block)
        return {
            t: TickInfo(int(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]), int(v[5]), int(v[6]), bool(v[7]))
            for t, v in zip(ticks, res)
        }

    def v3_tick_bitmap(self, pool: Pool | str, words: Sequence[int], block: int | str = "latest") -> dict[int, int]:
        """``tickBitmap(word)`` for many words in one batch (word = (tick // spacing) >> 8)."""
        addr = self._pool_addr(pool)
        res = self.call_many([("UniswapV3Pool", addr, "tickBitmap", (w,)) for w in words], block=block)
        return {w: int(v[0]) for w, v in zip(words, res)}

    def v3_initialized_ticks(self, pool: Pool, block: int | str = "latest") -> dict[int, TickInfo]:
        """Every initialized tick of a V3 pool (scans the whole bitmap in one batch; fine on a devnet)."""
        spacing = pool.tick_spacing or TICK_SPACINGS[pool.fee]
        lo, hi = (MIN_TICK // spacing) >> 8, (MAX_TICK // spacing) >> 8
        bitmap = self.v3_tick_bitmap(pool, list(range(lo, hi + 1)), block=block)
        ticks = [((w << 8) + bit) * spacing for w, bits in bitmap.items() if bits for bit in range(256) if bits >> bit & 1]
        return self.v3_ticks(pool, sorted(ticks), block=block) if ticks else {}

    def v3_position(self, token_id: int) -> dict[str, Any]:
        names = ("nonce", "operator", "token0", "token1", "fee", "tick_lower", "tick_upper", "liquidity",
                 "fee_growth_inside0_last_x128", "fee_growth_inside1_last_x128", "tokens_owed0", "tokens_owed1")
        v = self.call_fn("NonfungiblePositionManager", self.d.v3.position_manager, "positions", token_id)
        return dict(zip(names, v))

    # -- V3 quotes and swaps -------------------------------------------------------------------
    def v3_quote_exact_in(self, token_in: str, token_out: str, fee: int, amount_in: int, *,
                          sqrt_price_limit_x96: int = 0, block: int | str = "latest") -> V3Quote:
        """QuoterV2.quoteExactInputSingle via eth_call (it is not a view function)."""
        v = self.call_fn("QuoterV2", self.d.v3.quoter_v2, "quoteExactInputSingle",
                         (self._addr(token_in), self._addr(token_out), amount_in, fee, sqrt_price_limit_x96),
                         block=block)
        return V3Quote(int(v[0]), (int(v[1]),), (int(v[2]),), int(v[3]))

    def v3_quote_exact_in_path(self, tokens: Sequence[str], fees: Sequence[int], amount_in: int) -> V3Quote:
        """QuoterV2.quoteExactInput along a multi-hop path, via eth_call."""
        path = v3_path([self._addr(t) for t in tokens], fees)
        v = self.call_fn("QuoterV2", self.d.v3.quoter_v2, "quoteExactInput", path, amount_in)
        return V3Quote(int(v[0]), tuple(int(x) for x in v[1]), tuple(int(x) for x in v[2]), int(v[3]))

    def v3_swap_exact_in(
        self, sender: str, token_in: str, token_out: str, fee: int, amount_in: int, *,
        min_out: int = 0, sqrt_price_limit_x96: int = 0, recipient: str | None = None,
        deadline: int = FAR_FUTURE_DEADLINE,
    ) -> SwapResult:
        """SwapRouter.exactInputSingle."""
        to = recipient or sender
        tin, tout = self._addr(token_in), self._addr(token_out)
        r = self.transact(sender, "SwapRouter", self.d.v3.swap_router, "exactInputSingle",
                          (tin, tout, fee, to, deadline, amount_in, min_out, sqrt_price_limit_x96))
        return SwapResult(amount_in, self._received(r, tout, to), r)

    # -- V3 positions --------------------------------------------------------------------------
    def v3_mint(
        self, sender: str, token_a: str, token_b: str, fee: int, tick_lower: int, tick_upper: int,
        amount0_desired: int, amount1_desired: int, *, recipient: str | None = None,
    ) -> V3Position:
        """NonfungiblePositionManager.mint. ``amount0/1_desired`` are in pool order (token0 =
        the lower address); the manager uses at most those amounts."""
        t0, t1 = sort_tokens(self._addr(token_a), self._addr(token_b))
        r = self.transact(sender, "NonfungiblePositionManager", self.d.v3.position_manager, "mint",
                          (t0, t1, fee, tick_lower, tick_upper, amount0_desired, amount1_desired, 0, 0,
                           recipient or sender, FAR_FUTURE_DEADLINE))
        ev = r.events("NonfungiblePositionManager", "IncreaseLiquidity", self.d.v3.position_manager)[-1]
        return V3Position(ev["tokenId"], ev["liquidity"], ev["amount0"], ev["amount1"], r)

    def v3_burn(self, sender: str, token_id: int, *, recipient: str | None = None) -> tuple[int, int]:
        """Remove all liquidity of a position, collect everything owed, burn the NFT.
        Returns (amount0, amount1) collected (principal + fees)."""
        npm = self.d.v3.position_manager
        liquidity = int(self.v3_position(token_id)["liquidity"])
        if liquidity:
            self.transact(sender, "NonfungiblePositionManager", npm, "decreaseLiquidity",
                          (token_id, liquidity, 0, 0, FAR_FUTURE_DEADLINE))
        r = self.transact(sender, "NonfungiblePositionManager", npm, "collect",
                          (token_id, recipient or sender, MAX_UINT128, MAX_UINT128))
        ev = r.events("NonfungiblePositionManager", "Collect", npm)[-1]
        self.transact(sender, "NonfungiblePositionManager", npm, "burn", token_id)
        return int(ev["amount0"]), int(ev["amount1"])

    # -- prices --------------------------------------------------------------------------------
    def pool_price(self, pool: Pool, block: int | str = "latest") -> Fraction:
        """Mid price of a pool as a human price: token1 per token0."""
        d0 = self.d.token(pool.token0).decimals
        d1 = self.d.token(pool.token1).decimals
        if pool.kind == "v2":
            r0, r1, _ = self.v2_reserves(pool, block)
            return Fraction(r1, r0) * Fraction(10**d0, 10**d1) if r0 else Fraction(0)
        return sqrt_price_x96_to_price(self.v3_slot0(pool, block).sqrt_price_x96, d0, d1)

    # -- V4 --------------------------------------------------------------------------------------
    def _v4(self) -> Any:
        if self.d.v4 is None:
            raise KeyError("this deployment has no Uniswap V4")
        return self.d.v4

    def v4_extsload(self, slots: Sequence[int], block: int | str = "latest") -> list[int]:
        data = self.eth_call(self._v4().pool_manager, v4_state.encode_extsload(slots), block=block)
        return v4_state.decode_extsload(data)

    def v4_raw_state(self, pool: V4Pool, block: int | str = "latest") -> V4RawState:
        """slot0, liquidity and every initialized tick (the whole bitmap: two extsload calls)."""
        pid = bytes.fromhex(pool.pool_id[2:])
        words, slots = v4_state.all_bitmap_slots(pid, pool.tick_spacing)
        head = [v4_state.pool_state_slot(pid), v4_state.liquidity_slot(pid)]
        values = self.v4_extsload(head + list(slots), block)
        slot0, liquidity = v4_state.decode_slot0(values[0]), values[1]
        bitmap = {w: v for w, v in zip(words, values[2:]) if v}
        ticks = v4_state.initialized_ticks_in_words(bitmap, pool.tick_spacing)
        infos = self.v4_extsload([v4_state.tick_info_slot(pid, t) for t in ticks], block) if ticks else []
        return V4RawState(slot0, liquidity, {t: v4_state.decode_tick_liquidity(w) for t, w in zip(ticks, infos)})

    def v4_swap(self, sender: str, pool: V4Pool, zero_for_one: bool, amount_specified: int,
                sqrt_price_limit_x96: int = 0) -> V4Swap:
        """``V4DevnetRouter.swap``: ``amount_specified < 0`` exact input, ``> 0`` exact output; a
        zero limit means MIN+1 / MAX-1."""
        limit = sqrt_price_limit_x96 or (MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1)
        before = self.rpc.batch([
            ("eth_call", [{"to": t, "data": to_hex(artifacts.load("DevToken").encode("balanceOf", sender))}, "latest"])
            for t in (pool.token0, pool.token1)])
        r = self.transact(sender, "V4DevnetRouter", self._v4().router, "swap", pool.key,
                          (zero_for_one, amount_specified, limit))
        after = [self.erc20_balance(pool.token0, sender), self.erc20_balance(pool.token1, sender)]
        ev = [e for e in r.events("PoolManager", "Swap", self._v4().pool_manager)
              if "0x" + bytes(e["id"]).hex() == pool.pool_id.lower()]
        if len(ev) != 1:
            raise TxFailed("v4 swap", f"expected one Swap event of {pool.pool_id}, got {len(ev)}", r)
        e = ev[0]
        return V4Swap(int(e["amount0"]), int(e["amount1"]), int(e["sqrtPriceX96"]), int(e["liquidity"]),
                      int(e["tick"]), int(e["fee"]), after[0] - int(before[0], 16), after[1] - int(before[1], 16), r)

    def v4_modify_liquidity(self, sender: str, pool: V4Pool, tick_lower: int, tick_upper: int,
                            liquidity_delta: int, salt: int = 0) -> Receipt:
        """``V4DevnetRouter.modifyLiquidity`` (the sender pays / receives the tokens)."""
        return self.transact(sender, "V4DevnetRouter", self._v4().router, "modifyLiquidity", pool.key,
                             (tick_lower, tick_upper, liquidity_delta, salt.to_bytes(32, "big")))
