"""Gas of AlphaPulseArb per path type: the current contract against the previous one, same run, same state.

``alphapulse bench gas`` starts a fresh devnet (anvil with the official Uniswap V2/V3/V4 bytecode,
:mod:`tools.devnet`), deploys both contracts from their committed artifacts
(``execution/artifacts/AlphaPulseArb.json`` and the kept ``AlphaPulseArb.v1.json``), allow-lists the
devnet's factories (and, for the current contract, the V4 PoolManager), then for each path type:

1. sets up an opportunity (a 60 WETH sale on venue A's WETH/USDC pair for the V2/V3 paths; the V4
   pools are priced apart by the devnet itself);
2. sizes the cycle: the input that maximises the current contract's ``execute`` return value
   (``eth_call``, integer ternary search);
3. for each contract, from the same snapshot: puts every V2 pair of the path in the state a live
   pair is in (``sync()`` a block earlier, so its cumulative-price slots are non-zero), mines the
   arbitrage 12 s after the previous block (every pool writes its price oracle, the worst case, as
   on mainnet), records ``gasUsed``, and reverts.

Two rows borrow the start token from the Balancer V2 Vault (``executeBalancer``, FLASH_BALANCER; the
devnet's Vault is the official bytecode): V2->V2 in the same state as the V2->V2 row (the price of the
external lender over a pair's own flash swap), and Curve->V2, whose first hop (the devnet's Curve
StableSwap pool) cannot lend. The previous contract has neither.

One row is a separate mode, not a flash arbitrage: ``V2->V2 (inventory)`` (``executeFromInventory``)
is the V2->V2 cycle, same state and input, paid from the start token the contract holds (it is sent
the cycle's input first): no lender, so no callback. The previous contract has no such mode.

The V4 pools get one small swap each way before any measurement, as a traded pool has had; in a pool
with a protocol fee it is large enough for the fee to round to at least one unit, so the input
currency's ``protocolFeesAccrued`` slot is non-zero (checked), as between two collections (a dust
swap of 0.001 USDC at 200 pips accrued nothing, and the cycle then paid 20,000 for writing that slot
from zero). Two rows measure V4->V4 under other fee conditions: ``(no protocol fee)`` (the fee
controller sets the 0.3 % pool's protocol fee to 0: V4 pools on mainnet have none as far as we
know) and ``(fees collected)`` (the controller has just collected every accrued fee: the slot is
written from zero, +17,100); ``(tick crossing)`` puts an initialized tick in the cycle's way (a
backrun crosses back what the swap it follows crossed; checked crossed).

Three rows measure the V2 paths as a backrun lands, ``(same block)``: the swap that opens the
opportunity is mined again in the arbitrage's block, just before it (the sizing used the state after
it, which the replay reproduces), so its pair has already written its price oracle in that block
(-10,416 gas, on both contracts). The other rows keep mining the arbitrage 12 s after the previous
block, the worst case.
The profit recipient starts with none of the start token (the tests' condition; a recipient that
already holds it pays ~17k less for the profit transfer): ``--recipient-holds`` gives it 1 unit first.
``--steady`` measures the steady state of a running bot: the recipient holds the start token and the
contract holds 1 unit (dust) of every token of the path. The dust changes nothing where the
contract's balance goes 0 -> x -> 0 within the transaction and the refunds stay under their cap
(EIP-3529: the 19,900 refunded for restoring the zero offsets the 17,100 extra of setting it); it
saves gas only where the refunds would pass a fifth of the gas used (the Curve path). The conditions
are printed above the table (and recorded in each JSON row).

Gas is deterministic for a given chain state, so the figures are exact and reproducible, whatever
the machine's load.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from chain import v4_state
from chain.abi import encode_call
from chain.deployment import ChainDeployment
from chain.rpc import RpcError
from execution.build import PREVIOUS_ARTIFACT_PATH, load_artifact
from execution.calldata import (
    FlashSource,
    Hop,
    Kind,
    decode_profit_events,
    encode_constructor_args,
    encode_execute,
    encode_execute_inventory,
    encode_execute_v1,
    encode_set_balancer_vault,
    encode_set_factory,
)

__all__ = ["PATHS", "GasRow", "main", "measure"]

EXECUTE_GAS = 2_000_000
MAX_UINT256 = (1 << 256) - 1
FAR_FUTURE = 1 << 40
# The targets for the current contract (issue 16, point 5).
TARGETS = {"V2->V2": 140_000, "V2->V3": 160_000, "V2->V2->V3": 210_000, "V4->V4": 120_000}



@dataclass(frozen=True)
class GasRow:
    path: str
    amount_in: int
    profit: int
    previous: int | None  # None: the previous contract cannot run this path
    current: int
    target: int | None
    recipient_holds: bool = False  # the recipient held the start token before the execution
    contract_dust: bool = False  # the contract held 1 unit of every token of the path


class _Net:
    """The slice of a devnet the benchmark drives (eth_sendTransaction from anvil's dev accounts)."""

    def __init__(self, net: Any) -> None:
        self.net = net
        self.dep: ChainDeployment = net.deployment
        self.client = net.client
        self.accounts = [to_checksum_address(a) for a in self.rpc("eth_accounts")]
        self.trader = self.dep.funded_accounts[0]
        self.pending: list[str] | None = None  # transactions sent inside one_block(), not mined yet
        self.marks: dict[str, int] = {}  # what a path's setup leaves for its check

    @contextmanager
    def one_block(self, seconds: int) -> Iterator[list[str]]:
        """Every transaction sent inside the block is mined in one block, ``seconds`` after the
        previous one, in the order sent (checked); yields the list of their hashes."""
        self.pending = []
        self.rpc("evm_setAutomine", False)
        try:
            yield self.pending
            self.next_block_in(seconds)
            self.rpc("evm_mine")
        finally:
            self.rpc("evm_setAutomine", True)
            hashes, self.pending = self.pending, None
        receipts = [self.receipt(h) for h in hashes]
        if len({r["blockNumber"] for r in receipts}) != 1 or \
                [int(r["transactionIndex"], 16) for r in receipts] != list(range(len(receipts))):
            raise RuntimeError("one_block: the transactions were not mined in one block in the order sent")

    def rpc(self, method: str, *params: Any) -> Any:
        return self.net.rpc.call(method, list(params))

    def send(self, sender: str, to: str | None, data: bytes, gas: int = 1_000_000) -> dict[str, Any]:
        tx: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "gas": hex(gas)}
        if to is not None:
            tx["to"] = to
        h = self.rpc("eth_sendTransaction", tx)
        if self.pending is not None:  # inside one_block(): mined with the others, receipt read then
            self.pending.append(h)
            return {"transactionHash": h}
        return self.receipt(h)

    def receipt(self, h: str) -> dict[str, Any]:
        receipt = self.rpc("eth_getTransactionReceipt", h)
        while receipt is None:  # automine: the receipt trails the answer by a moment at most
            receipt = self.rpc("eth_getTransactionReceipt", h)
        return dict(receipt)

    def call(self, sender: str, to: str, data: bytes) -> bytes:
        return bytes.fromhex(self.rpc("eth_call", {"from": sender, "to": to, "data": "0x" + data.hex()}, "latest")[2:])

    def next_block_in(self, seconds: int) -> None:
        latest = self.rpc("eth_getBlockByNumber", "latest", False)
        self.rpc("evm_setNextBlockTimestamp", int(latest["timestamp"], 16) + seconds)

    def token(self, symbol: str) -> str:
        return self.dep.address_of(symbol)


@dataclass(frozen=True)
class _Contract:
    name: str
    address: str
    encode: Callable[[Sequence[Hop], int, FlashSource], bytes]


def _deploy(n: _Net, artifact: dict[str, Any], owner: str, recipient: str, *, v4: bool) -> str:
    code = bytes.fromhex(artifact["bytecode"][2:]) + encode_constructor_args(recipient)
    receipt = n.send(owner, None, code, gas=10_000_000)
    if int(receipt["status"], 16) != 1:
        raise RuntimeError("deploying the contract failed")
    address = to_checksum_address(receipt["contractAddress"])
    for venue in n.dep.v2:
        n.send(owner, address, encode_set_factory(venue.factory, Kind.V2))
    n.send(owner, address, encode_set_factory(n.dep.v3.factory, Kind.V3))
    if v4 and n.dep.v4 is not None:  # the current contract: V4, the Balancer Vault, Curve pools
        n.send(owner, address, encode_set_factory(n.dep.v4.pool_manager, Kind.V4))
    if v4 and n.dep.balancer_vault:
        n.send(owner, address, encode_set_balancer_vault(n.dep.balancer_vault))
    for pool in n.dep.curve_pools if v4 else ():
        n.send(owner, address, encode_set_factory(pool.address, Kind.CURVE))
    return address


# -- the paths -------------------------------------------------------------------------------------
def _v2(n: _Net, venue: str, a: str, b: str) -> Hop:
    return Hop(pool=n.dep.pool(venue, a, b).address, factory=n.dep.v2_venue(venue).factory,
               token_in=n.token(a), token_out=n.token(b), kind=Kind.V2, fee=3000)


def _v3(n: _Net, fee: int, a: str, b: str) -> Hop:
    return Hop(pool=n.dep.pool(n.dep.v3.name, a, b, fee).address, factory=n.dep.v3.factory,
               token_in=n.token(a), token_out=n.token(b), kind=Kind.V3, fee=fee)


def _v4(n: _Net, fee: int, a: str, b: str) -> Hop:
    assert n.dep.v4 is not None
    p = n.dep.v4_pool(a, b, fee)
    return Hop(pool=p.hooks, factory=n.dep.v4.pool_manager, token_in=n.token(a), token_out=n.token(b),
               kind=Kind.V4, fee=fee, tick_spacing=p.tick_spacing)


def _curve(n: _Net, a: str, b: str) -> Hop:
    p = n.dep.curve_pools[0]
    ta, tb = n.token(a), n.token(b)
    return Hop(pool=p.address, factory=p.address, token_in=ta, token_out=tb, kind=Kind.CURVE, fee=p.fee // 10_000,
               coin_in=p.index(ta), coin_out=p.index(tb))


def _dump_weth_on_venue_a(n: _Net) -> None:
    """WETH made cheap on venue A's WETH/USDC pair: the V2 and V3 paths' opportunity."""
    router = n.dep.v2_venue("uniswap_v2_a").router
    n.send(n.trader, n.token("WETH"), encode_call("approve(address,uint256)", router, MAX_UINT256))
    n.send(n.trader, router, encode_call(
        "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
        60 * 10**18, 0, [n.token("WETH"), n.token("USDC")], n.trader, FAR_FUTURE), gas=500_000)


def _v4_protocol_fee_off(n: _Net) -> None:
    """The V4->V4 cycle's pools without a protocol fee (the devnet sets one on the 0.3 % pool; its
    deployer is the fee controller), as every V4 pool on mainnet had none when this was written."""
    for pool in _v4_cycle_pools(n):
        n.client.transact(n.dep.deployer, "PoolManager", n.dep.v4.pool_manager, "setProtocolFee", pool.key, 0)


def _v4_fees_collected(n: _Net) -> None:
    """The controller collects every currency's accrued protocol fees (amount 0 = all): the cycle's
    first fee-paying swap then writes its input currency's accrued-fee slot from zero (20,000 gas
    where a non-zero slot costs 2,900)."""
    for token in dict.fromkeys(t for pool in _v4_cycle_pools(n) for t in (pool.token0, pool.token1)):
        n.client.transact(n.dep.deployer, "PoolManager", n.dep.v4.pool_manager, "collectProtocolFees",
                          n.dep.deployer, token, 0)
        if _protocol_fees_accrued(n, token):
            raise RuntimeError("collectProtocolFees left accrued fees behind")


def _v4_tick_ahead(n: _Net) -> None:
    """An initialized tick just below the 0.05 % pool's price, within the cycle's move (its second
    swap, WETH for USDC, lowers that pool's price ~11 ticks): the upper tick of a small position
    (USDC only), then a small swap each way in that pool, so that both fee growths have moved since
    the tick was initialized, as on a tick with some history. ``_v4_crossed`` checks the cycle
    crossed it."""
    pool = n.dep.v4_pool("WETH", "USDC", 500)
    tick = n.client.v4_raw_state(pool).slot0.tick
    upper = tick // pool.tick_spacing * pool.tick_spacing
    n.client.v4_modify_liquidity(n.trader, pool, upper - 10 * pool.tick_spacing, upper, 10**12)
    for zero_for_one in (True, False):
        # 0.001 WETH / 1 USDC: enough for the 0.05 % fee to move each fee growth, far from the tick
        n.client.v4_swap(n.trader, pool, zero_for_one, -(10**15 if zero_for_one else 10**6))
    if n.client.v4_raw_state(pool).slot0.tick < upper:
        raise RuntimeError("V4 tick crossing: the warm-up swaps crossed the tick already")
    n.marks["crossing_tick"] = upper


def _v4_crossed(n: _Net) -> None:
    tick = n.client.v4_raw_state(n.dep.v4_pool("WETH", "USDC", 500)).slot0.tick
    if tick >= n.marks["crossing_tick"]:
        raise RuntimeError(f"V4 tick crossing: the cycle stopped at tick {tick}, above the initialized tick "
                           f"{n.marks['crossing_tick']} (the devnet's prices moved: move the position)")


def _v4_cycle_pools(n: _Net) -> list[Any]:
    assert n.dep.v4 is not None
    return [n.dep.v4_pool("USDC", "WETH", 3000), n.dep.v4_pool("WETH", "USDC", 500)]


def _protocol_fees_accrued(n: _Net, token: str) -> int:
    assert n.dep.v4 is not None
    (amount,) = n.client.call_fn("PoolManager", n.dep.v4.pool_manager, "protocolFeesAccrued", token)
    return int(amount)


@dataclass(frozen=True)
class _Path:
    name: str
    setup: Callable[[_Net], None]
    hops: Callable[[_Net], list[Hop]]
    search: tuple[int, int]  # the start token's input range for the sizing search
    flash: FlashSource = FlashSource.POOL
    inventory: bool = False  # executeFromInventory: the contract pays from the start token it holds
    # The setup's transactions (the swap that opens the opportunity) are mined again in the
    # arbitrage's own block, just before it, as a backrun lands: the pools they touched have
    # written their price oracle in that block already.
    same_block: bool = False
    check: Callable[[_Net], None] | None = None  # run after each measured execution, before the revert


_WETH_USDC_V2 = (10**6, 200_000 * 10**6)


def _v2_v2(n: _Net) -> list[Hop]:
    return [_v2(n, "uniswap_v2_a", "USDC", "WETH"), _v2(n, "uniswap_v2_b", "WETH", "USDC")]


def _v2_v3(n: _Net) -> list[Hop]:
    return [_v2(n, "uniswap_v2_a", "USDC", "WETH"), _v3(n, 3000, "WETH", "USDC")]


def _v2_v2_v3(n: _Net) -> list[Hop]:
    return [_v2(n, "uniswap_v2_a", "USDC", "WETH"), _v2(n, "uniswap_v2_b", "WETH", "DAI"), _v3(n, 500, "DAI", "USDC")]


def _v4_v4(n: _Net) -> list[Hop]:
    return [_v4(n, 3000, "USDC", "WETH"), _v4(n, 500, "WETH", "USDC")]


PATHS: tuple[_Path, ...] = (
    _Path("V2->V2", _dump_weth_on_venue_a, _v2_v2, _WETH_USDC_V2),
    _Path("V2->V3", _dump_weth_on_venue_a, _v2_v3, _WETH_USDC_V2),
    _Path("V2->V2->V3", _dump_weth_on_venue_a, _v2_v2_v3, _WETH_USDC_V2),
    _Path("V4->V4", lambda n: None, _v4_v4, _WETH_USDC_V2),
    _Path("V2->V2 (Balancer)", _dump_weth_on_venue_a, _v2_v2, _WETH_USDC_V2, FlashSource.BALANCER),
    _Path("V2->V2 (inventory)", _dump_weth_on_venue_a, _v2_v2, _WETH_USDC_V2, inventory=True),
    _Path("Curve->V2 (Balancer)", lambda n: None,
          lambda n: [_curve(n, "USDC", "DAI"), _v2(n, "uniswap_v2_b", "DAI", "USDC")],
          _WETH_USDC_V2, FlashSource.BALANCER),
    # The same path types under other conditions (see LABELS).
    _Path("V2->V2 (same block)", _dump_weth_on_venue_a, _v2_v2, _WETH_USDC_V2, same_block=True),
    _Path("V2->V3 (same block)", _dump_weth_on_venue_a, _v2_v3, _WETH_USDC_V2, same_block=True),
    _Path("V2->V2->V3 (same block)", _dump_weth_on_venue_a, _v2_v2_v3, _WETH_USDC_V2, same_block=True),
    _Path("V4->V4 (no protocol fee)", _v4_protocol_fee_off, _v4_v4, _WETH_USDC_V2),
    _Path("V4->V4 (fees collected)", _v4_fees_collected, _v4_v4, _WETH_USDC_V2),
    _Path("V4->V4 (tick crossing)", _v4_tick_ahead, _v4_v4, _WETH_USDC_V2, check=_v4_crossed),
)
# What a labelled row changes against its path type's row (printed under the table).
LABELS = {
    "same block": "the swap that opens the opportunity (the 60 WETH sale on venue A) is mined in the "
                  "arbitrage's own block, just before it, as a backrun lands: that pair has written its "
                  "price oracle in this block already (the other pools of the path still write theirs)",
    "no protocol fee": "the 0.3 % V4 pool's protocol fee (500/200 pips on the devnet) set to 0 by the fee "
                       "controller: the cycle accrues no protocol fee",
    "fees collected": "the controller has just collected the accrued protocol fees: the first fee-paying "
                      "swap writes its input currency's accrued-fee slot from zero (+17,100 gas)",
    "tick crossing": "an initialized tick (a small position's upper tick, with some fee history) lies just "
                     "below the 0.05 % V4 pool's price: the cycle's second swap crosses it (checked)",
}


def _with_input(hops: list[Hop], amount_in: int) -> list[Hop]:
    return [dataclasses.replace(hops[0], amount_in=amount_in), *hops[1:]]


def _size(n: _Net, contract: _Contract, owner: str, hops: list[Hop], lo: int, hi: int,
          flash: FlashSource) -> tuple[int, int]:
    """The input maximising the current contract's simulated profit (ternary search; the profit
    of a cycle is unimodal in its input); (input, profit)."""
    def profit(x: int) -> int:
        try:
            return int.from_bytes(n.call(owner, contract.address, contract.encode(_with_input(hops, x), 0, flash)),
                                  "big")
        except RpcError:
            return -1

    while hi - lo > 2:
        m1, m2 = lo + (hi - lo) // 3, hi - (hi - lo) // 3
        if profit(m1) < profit(m2):
            lo = m1
        else:
            hi = m2
    best = max(range(lo, hi + 1), key=profit)
    return best, profit(best)


def _warm_v4_pools(n: _Net) -> None:
    """One small swap each way in every hookless V4 pool, as a traded pool has had: where the pool
    has a protocol fee, large enough for the fee to round to at least one unit, so that the input
    currency's accrued-fee slot is non-zero (checked), as it is between two collections."""
    assert n.dep.v4 is not None
    pm = n.dep.v4.pool_manager
    for pool in n.dep.v4_pools:
        if pool.hook_name:
            continue
        (word,) = n.client.v4_extsload([v4_state.pool_state_slot(bytes.fromhex(pool.pool_id[2:]))])
        protocol_fee = v4_state.decode_slot0(word).protocol_fee
        for zero_for_one in (True, False):
            token = pool.token0 if zero_for_one else pool.token1
            fee = protocol_fee & 0xFFF if zero_for_one else protocol_fee >> 12  # pips of the input
            dust = 10**12 if n.dep.token(token).decimals == 18 else 10**3
            if fee:
                dust = max(dust, 2 * -(-1_000_000 // fee))  # the protocol fee rounds down: >= 1 unit
            n.client.v4_swap(n.trader, pool, zero_for_one, -dust)
            if fee and not _protocol_fees_accrued(n, token):
                raise RuntimeError(f"V4 warm-up: no protocol fee accrued in {token} on {pm}")


def _run(n: _Net, contract: _Contract, owner: str, hops: list[Hop], flash: FlashSource, *,
         dust: bool = False, inventory: bool = False, opening: Callable[[_Net], None] | None = None) -> int:
    """One measured execution (the caller reverts the chain afterwards); ``dust``: the contract
    holds 1 unit of every token of the path first; ``inventory``: it holds the cycle's input of the
    start token and pays from it (``executeFromInventory``); ``opening``: sends the transactions that
    open the opportunity, mined in the arbitrage's block just before it (a backrun)."""
    if dust:
        for token in dict.fromkeys(h.token_in for h in hops):
            n.send(n.trader, token, encode_call("transfer(address,uint256)", contract.address, 1))
    data = contract.encode(hops, 0, flash)
    if inventory:
        n.send(n.trader, hops[0].token_in, encode_call("transfer(address,uint256)", contract.address,
                                                       hops[0].amount_in))
        data = encode_execute_inventory(hops, 0)
    for hop in hops:
        if hop.kind == Kind.V2:  # a live pair's cumulative-price slots are non-zero
            n.next_block_in(12)
            n.send(owner, hop.pool, encode_call("sync()"), gas=200_000)
    if opening is None:
        n.next_block_in(12)
        receipt = n.send(owner, contract.address, data, gas=EXECUTE_GAS)
    else:
        with n.one_block(12) as sent:
            opening(n)
            n.send(owner, contract.address, data, gas=EXECUTE_GAS)
        receipt = n.receipt(sent[-1])
        if any(int(n.receipt(h)["status"], 16) != 1 for h in sent[:-1]):
            raise RuntimeError(f"{contract.name}: the opening transactions reverted")
    if int(receipt["status"], 16) != 1:
        raise RuntimeError(f"{contract.name}: execute reverted")
    if len(decode_profit_events(receipt["logs"], contract.address)) != 1:
        raise RuntimeError(f"{contract.name}: no ArbitrageExecuted event")
    return int(receipt["gasUsed"], 16)


def target(name: str) -> int | None:
    """The issue's target of a path type's row, and of its rows labelled with another condition."""
    base, _, label = name.partition(" (")
    return TARGETS.get(base) if not label or label.rstrip(")") in LABELS else None


def measure(net: Any, *, recipient_holds: bool = False, contract_dust: bool = False,
            paths: Sequence[str] = ()) -> list[GasRow]:
    """Deploy both contracts on ``net`` (a fresh :class:`tools.devnet.deploy.Devnet`) and measure
    every path type (or those named in ``paths``)."""
    n = _Net(net)
    owner, recipient = n.accounts[3], n.accounts[4]
    current = _Contract("current", _deploy(n, load_artifact(), owner, recipient, v4=True),
                        lambda hops, min_profit, flash: encode_execute(hops, min_profit, flash=flash))
    previous = _Contract("previous", _deploy(n, load_artifact(PREVIOUS_ARTIFACT_PATH), owner, recipient, v4=False),
                         lambda hops, min_profit, flash: encode_execute_v1(hops, min_profit))
    if n.dep.v4 is not None:
        _warm_v4_pools(n)
    rows = []
    for path in PATHS:
        if paths and path.name not in paths:
            continue
        if path.name.startswith("V4") and n.dep.v4 is None:
            continue
        if path.flash == FlashSource.BALANCER and not n.dep.balancer_vault:
            continue
        if path.name.startswith("Curve") and not n.dep.curve_pools:
            continue
        base = n.rpc("evm_snapshot")
        try:
            hops = path.hops(n)
            if recipient_holds:
                n.send(n.trader, hops[0].token_in, encode_call("transfer(address,uint256)", recipient, 1))
            opened = n.rpc("evm_snapshot")  # a same-block row replays the setup in the arbitrage's block
            path.setup(n)
            amount_in, profit = _size(n, current, owner, hops, *path.search, path.flash)
            if profit <= 0:
                raise RuntimeError(f"{path.name}: no profitable input on this devnet")
            hops = _with_input(hops, amount_in)
            gas = {}
            for contract in (current, previous):
                if contract is previous and (path.flash != FlashSource.POOL or path.inventory
                                             or any(h.kind in (Kind.V4, Kind.CURVE) for h in hops)):
                    continue
                if path.same_block:  # back to before the opening swap (its state is what was sized)
                    n.rpc("evm_revert", opened)
                    opened = n.rpc("evm_snapshot")
                snap = n.rpc("evm_snapshot")
                try:
                    gas[contract.name] = _run(n, contract, owner, hops, path.flash, dust=contract_dust,
                                              inventory=path.inventory,
                                              opening=path.setup if path.same_block else None)
                    if path.check is not None:
                        path.check(n)
                finally:
                    n.rpc("evm_revert", snap)
            rows.append(GasRow(path.name, amount_in, profit, gas.get("previous"), gas["current"],
                               target(path.name), recipient_holds, contract_dust))
        finally:
            n.rpc("evm_revert", base)
    return rows


def _table(rows: list[GasRow]) -> str:
    lines = [f"{'path':<27} {'previous (v1)':>14} {'current':>10} {'change':>8} {'target':>9}",
             "-" * 72]
    for r in rows:
        prev = f"{r.previous:,}" if r.previous is not None else "-"
        change = f"{(r.current - r.previous) * 100 / r.previous:+.1f}%" if r.previous else "-"
        target = f"{r.target:,}" if r.target else "-"
        lines.append(f"{r.path:<27} {prev:>14} {r.current:>10,} {change:>8} {target:>9}")
    labels = dict.fromkeys(r.path.partition(" (")[2].rstrip(")") for r in rows)
    lines += [f"({label}): {LABELS[label]}" for label in labels if label in LABELS]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="alphapulse bench gas", description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipient-holds", action="store_true",
                    help="the profit recipient already holds the start token (steady state)")
    ap.add_argument("--steady", action="store_true",
                    help="the steady state of a running bot: the recipient holds the start token and the "
                         "contract 1 unit of every token of the path")
    ap.add_argument("--path", action="append", default=[], choices=[p.name for p in PATHS],
                    help="measure only this path type (repeatable)")
    ap.add_argument("--json", action="store_true", help="one JSON object per path type")
    args = ap.parse_args(argv)
    from tools.devnet.deploy import start_devnet
    from tools.devnet.paths import DevnetSetupError

    try:
        net = start_devnet()
    except DevnetSetupError as exc:
        print(f"error: devnet unavailable: {exc}", file=sys.stderr)
        return 2
    holds = args.recipient_holds or args.steady
    try:
        node = net.rpc.call("web3_clientVersion", [])
        hardfork = net.rpc.call("anvil_nodeInfo", []).get("hardFork", "?")
        rows = measure(net, recipient_holds=holds, contract_dust=args.steady, paths=args.path)
    except (RuntimeError, RpcError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        net.close()
    if args.json:
        for r in rows:
            print(json.dumps(r.__dict__))
    else:
        print("AlphaPulseArb gas used per path type, measured under these conditions:")
        print("\n".join(f"  - {c}" for c in conditions(node=node, hardfork=hardfork, recipient_holds=holds,
                                                        contract_dust=args.steady)))
        print(_table(rows))
    return 0


def conditions(*, node: str, hardfork: str, recipient_holds: bool, contract_dust: bool) -> list[str]:
    """The chain state every figure is measured in (printed above the table)."""
    return [
        f"fresh devnet ({node}, hardfork {hardfork}): the official Uniswap V2/V3/V4 bytecode, the Balancer "
        "V2 Vault, the devnet's Curve pool; both contracts from their committed artifacts",
        "each cycle sized for its maximum profit: the V2/V3 paths after a 60 WETH sale on venue A's WETH/USDC "
        "pair, the V4 and Curve paths as the devnet prices them",
        "every V2 pair of the path synced a block earlier (non-zero cumulative-price slots); the execution "
        "mined 12 s later, so every pool writes its price oracle (rows labelled 'same block': the opening "
        "swap in the execution's block, just before it)",
        "every V4 pool traded before (a small swap each way: where it has a protocol fee, the input "
        "currency's accrued-fee slot is non-zero, as between two collections)",
        "the profit recipient " + ("already holds the start token" if recipient_holds
                                   else "starts with none of the start token (its balance slot is written from zero)"),
        "the contract " + ("holds 1 unit of every token of the path (dust)" if contract_dust
                           else "holds none of the path's tokens"),
    ]


if __name__ == "__main__":
    sys.exit(main())
