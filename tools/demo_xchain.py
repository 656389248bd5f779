"""``alphapulse demo --chains 2``: cross-chain arbitrage from inventory on a two-chain devnet.

What ``--chains 2`` changes in the demo (``tools/demo.py``):

1. **Two devnet chains** (``tools/devnet``, as ``alphapulse devnet --chains 2`` deploys them): chain ids
   31337 and 31338, each its own deployments of the official Uniswap contracts with the same tokens and
   pairs, WETH 1.5 % dearer on the second (``deploy.chain_spec``), a ``DevBridge`` on each, and their own
   block times (``--block-times``, default 2 s and 0.25 s: ``tools.devnet.cli.MULTI_CHAIN_BLOCK_TIMES``).
   A chain whose block time is whole seconds is set up under automine and switched to interval mining
   afterwards (``evm_setIntervalMining`` takes whole seconds), so the set-up does not wait a block per
   transaction; the others mine on their interval from the start.
2. **An ``AlphaPulseArb`` contract on each chain**, each owned by its own fresh key in its own encrypted
   keystore (``<work>/executor/<chain id>/``), every factory of that chain allow-listed, and holding the
   **inventory** the cross-chain legs trade from: ``inventory_weth`` and ``inventory_usdc`` of each asset,
   wrapped or minted by a dev account the market drivers do not use and moved there with plain transfers.
3. **One EVM collector per chain** (``collector-<chain id>``, each its own ``[[chain]]`` of the one
   deployment file) publishing into the one market-data relay, and **the bridge stand-in's relayer**
   (``alphapulse standin bridge``, ``--bridge-delay`` seconds, ``--bridge-fee-bps``; its SQLite state in the
   run's data directory).
4. **The market**: the *lead* chain (``lead``, default the faster second chain) replays the real
   USDC/WETH swaps of 2024-01-05 on its V3 0.05 % pool exactly as the one-chain demo does
   (``tools/demo.py:drive_market``), and its other venues lag as there; the *lagging* chain's V3 0.05 %
   WETH/USDC pool follows the lead pool's *moves* as the system saw them (the collector's ``V3Swap``
   records on the market-data relay, :class:`PoolTape`), ``lag`` seconds late and only every ``step``
   seconds (``tools.demo_cex.follow_lead``: the moves, not the level, so what arbitrage did stays done).
   Every move of the lead chain is a price gap between the chains for ``lag`` seconds.

The single-chain DEX strategy and the executor run on the lead chain as in the one-chain demo.
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from market.display import fmt_units
from protocol.market import V3Swap
from tools.chaos import READY_LINES
from tools.deployment import ProcessEntry
from tools.deployment_writer import process

if TYPE_CHECKING:
    from chain.deployment import ChainDeployment
    from tools.devnet.deploy import Devnet

V3_FEE = 500  # the pool replayed on the lead chain and followed on the lagging one
COLLECTOR_SOURCE_ID = 17742  # chain i's collector publishes as COLLECTOR_SOURCE_ID + i


@dataclass(frozen=True, kw_only=True)
class XChainOptions:
    block_times: tuple[float | None, ...] = (2.0, 0.25)  # per chain; None: automine
    lead: int = 1  # the chain (index) replaying the real swaps; the other lags
    lag: float = 4.0  # seconds the lagging chain's pool trails the lead pool's moves
    step: float = 2.0  # seconds between the lagging chain's moves
    bridge_delay: int = 8  # the relayer completes a transfer this long after its source block
    bridge_fee_bps: int = 1
    bridge_id: int = 1  # CrossChainArbitrage.bridge: the DevBridge stand-in
    bridge_gas_units: int = 80_000  # one DevBridge.send (approve and withdraw aside), amortised by the strategy
    rebalance_every: int = 10  # trades whose inventory one bridge transfer returns (the strategy's amortisation)
    leg_gas_units: int = 160_000  # one AlphaPulseArb.swap through a V3 pool
    drift_k_milli: int = 2000
    sigma_floor_ppb: int = 20_000
    min_net_profit_usdc: int = 1_000_000  # 1 USDC
    floor_pct: int = 70  # the rebalancer refills a chain's asset below this % of its start, back to the start
    # what each chain's contract holds at start, of each asset
    inventory_weth: int = 50 * 10**18
    inventory_usdc: int = 100_000 * 10**6

    def __post_init__(self) -> None:
        if len(self.block_times) != 2:
            raise ValueError(f"--block-times: {len(self.block_times)} value(s) for 2 chains")
        if any(t is not None and not t > 0 for t in self.block_times):
            raise ValueError("block times must be > 0 seconds")
        if self.lead not in (0, 1):
            raise ValueError("the lead chain is chain 0 or chain 1")
        if self.lag < 0 or not self.step > 0 or self.bridge_delay < 0 or not 0 <= self.bridge_fee_bps <= 10_000:
            raise ValueError("lag >= 0, step > 0, bridge delay >= 0 and a bridge fee within 0..10000 bps")


@dataclass
class ChainSetup:
    """One chain of the demo: the devnet, its contract and the key that owns it."""

    net: Devnet
    owner: str
    arb: str
    keystore: Path
    password_file: Path
    recipient: str

    @property
    def chain_id(self) -> int:
        return self.net.deployment.chain_id

    @property
    def deployment(self) -> ChainDeployment:
        return self.net.deployment


@dataclass
class XChainSetup:
    options: XChainOptions
    chains: list[ChainSetup]
    deployment_file: Path
    tape: PoolTape = field(init=False)

    def __post_init__(self) -> None:
        from tools.registry import pool_id

        lead = self.lead.deployment
        pool = lead.pool("uniswap_v3", "WETH", "USDC", V3_FEE)
        pid = pool_id(lead, pool)
        assert pid is not None
        self.tape = PoolTape(pool=int(pid), weth_is_token0=pool.token0.lower() == lead.weth.lower(),
                             decimals0=lead.token(pool.token0).decimals, decimals1=lead.token(pool.token1).decimals)

    @property
    def lead(self) -> ChainSetup:
        return self.chains[self.options.lead]

    @property
    def lagging(self) -> ChainSetup:
        return self.chains[1 - self.options.lead]

    def close(self) -> None:
        for c in self.chains:
            c.net.close()


# --------------------------------------------------------------------------- chains


def start_chains(work: Path, options: XChainOptions) -> list[Devnet]:
    """Both devnets, deployed; a chain with a whole-second block time is left on automine for the set-up
    (:func:`start_interval_mining` switches it)."""
    from tools.devnet.deploy import chain_spec, start_devnet

    nets: list[Devnet] = []
    try:
        for i, block_time in enumerate(options.block_times):
            start_with = None if block_time is None or block_time == int(block_time) else block_time
            net = start_devnet(31337 + i, spec=chain_spec(i), block_time=start_with,
                               log_path=str(work / f"anvil-{31337 + i}.log"))
            net.deployment = dataclasses.replace(net.deployment, block_time=block_time)
            nets.append(net)
    except BaseException:
        for net in nets:
            net.close()
        raise
    return nets


def start_interval_mining(nets: list[Devnet]) -> None:
    """Every chain whose block time is whole seconds mines on its interval from now on."""
    for net in nets:
        bt = net.deployment.block_time
        if bt is not None and bt == int(bt):
            net.client.set_interval_mining(int(bt))


def fund_inventory(net: Devnet, contract: str, options: XChainOptions) -> None:
    """The contract's own tokens, which the cross-chain legs trade from: WETH wrapped and USDC minted by a
    dev account the market drivers do not use, moved there with plain transfers."""
    client, dep = net.client, net.deployment
    donor = dep.funded_accounts[-1]
    for symbol, amount in (("WETH", options.inventory_weth), ("USDC", options.inventory_usdc)):
        client.fund(donor, symbol, amount)
        client.transfer(donor, dep.address_of(symbol), contract, amount)


def prepare(work: Path, nets: list[Devnet], options: XChainOptions,
            deploy_arb: Callable[[Devnet, Path], tuple[str, str, Path, Path, str]]) -> XChainSetup:
    """A contract per chain (``deploy_arb``: ``tools.demo._deploy_arb``, one keystore per chain), its
    inventory, interval mining switched on, and the deployment file listing both chains."""
    from chain.deployment import save_deployment

    chains = []
    for net in nets:
        owner, arb, ks, pwfile, recipient = deploy_arb(net, work / "executor" / str(net.deployment.chain_id))
        fund_inventory(net, arb, options)
        chains.append(ChainSetup(net, owner, arb, ks, pwfile, recipient))
    start_interval_mining(nets)
    path = save_deployment(work / "deployment.json", [n.deployment for n in nets], pids=[n.anvil.pid for n in nets])
    return XChainSetup(options, chains, path)


def read_inventory(setup: XChainSetup) -> dict[int, dict[str, int]]:
    """Each chain's contract balance of WETH and USDC, read on chain (token units)."""
    return {c.chain_id: {sym: c.net.client.erc20_balance(c.deployment.address_of(sym), c.arb)
                         for sym in ("WETH", "USDC")} for c in setup.chains}


def holdings(setup: XChainSetup) -> dict[tuple[int, int], int]:
    """What the books track, read on chain: per chain, each deployed token held by the contract (inventory),
    the profit recipient (one-chain arbitrage profit) and the contract's owner (the rebalancer's withdrawals go to
    it before the bridge's send), and the owner's native coin (the executor's signer there, which pays the gas of
    the trades and of the rebalancer's transactions alike); keyed by (chain id, token id), ``portfolio.books.native_token`` for
    the native coin."""
    from portfolio.books import native_token
    from protocol.ids import TokenId

    out = {}
    for c in setup.chains:
        client = c.net.client
        for t in c.deployment.tokens:
            out[(c.chain_id, int(TokenId.of(c.chain_id, t.address)))] = sum(
                client.erc20_balance(t.address, holder) for holder in (c.arb, c.recipient, c.owner))
        out[(c.chain_id, native_token(c.chain_id))] = client.eth_balance(c.owner)
    return out


def reconcile_books(db_path: Path, start: dict[tuple[int, int], int],
                    end: dict[tuple[int, int], int]) -> list[tuple[int, int, int, int]]:
    """(chain id, token id, books, chain) for every token the books hold or the chain moved: the books hold the
    changes since the start (``portfolio.books``), the chain's are ``end - start`` of :func:`holdings`. A bridge
    transfer in flight left the source chain's books and balance alike and reached neither destination yet."""
    from portfolio.books import Books, open_db_readonly

    if not db_path.is_file():
        return []
    db = open_db_readonly(db_path)
    try:
        books = {(chain, tok): amount for chain, tokens in Books(db).balances_by_chain().items()
                 for tok, amount in tokens.items()}
    finally:
        db.close()
    keys = sorted(set(books) | {k for k in end if end[k] != start.get(k, 0)})
    return [(chain, tok, books.get((chain, tok), 0), end.get((chain, tok), 0) - start.get((chain, tok), 0))
            for chain, tok in keys]


# --------------------------------------------------------------------------- configs


def collector_doc(setup: XChainSetup, chain: ChainSetup, relay_socket: str) -> dict[str, Any]:
    return {"source_id": COLLECTOR_SOURCE_ID + setup.chains.index(chain), "relay_socket": relay_socket,
            "chain": [{"name": f"devnet-{chain.chain_id}", "deployment": setup.deployment_file,
                       "chain_id": chain.chain_id}]}


REBALANCER_SOURCE_ID = 48  # the rebalancer's producer id: the executor signs its OwnerTxRequests


def rebalancer_doc(setup: XChainSetup, data_dir: Path, relays: dict[str, str]) -> dict[str, Any]:
    """The rebalancer (``specs/rebalance.md``): each chain's contract and its bridge -- no keystore: the owner's
    transactions (only the owner withdraws from the contract) are the executor's to sign, the account's one
    signer (:func:`executor_table` names this rebalancer) -- and per chain and asset a floor of ``floor_pct`` %
    of what the contract started with and the start as the target; the bridge stand-in's fee."""
    from tools.deployment_writer import assets_doc

    o = setup.options
    chains = []
    for c in setup.chains:
        bridge = c.deployment.bridge
        assert bridge is not None, "the devnet deploys a DevBridge on every chain"
        chains.append({"chain_id": c.chain_id, "rpc_url": c.deployment.rpc_url, "contract": c.arb,
                       "bridge": bridge.address})
    return {
        "rebalancer": {"state_db": data_dir / "rebalancer.sqlite", "poll_s": 1.0, "bridge_id": o.bridge_id,
                       "source_id": REBALANCER_SOURCE_ID,
                       "bridge_fee_bps": o.bridge_fee_bps, "overdue_s": 4.0 * o.bridge_delay + 30.0},
        "chains": chains,
        "assets": [a for a in assets_doc([c.deployment for c in setup.chains])["assets"]
                   if a["name"] in ("WETH", "USDC")],
        "targets": [{"asset": sym, "chain_id": c.chain_id, "floor": start * o.floor_pct // 100, "target": start}
                    for sym, start in (("WETH", o.inventory_weth), ("USDC", o.inventory_usdc)) for c in setup.chains],
        "relays": {"execution": relays["execution"]},
    }


def processes(setup: XChainSetup, cfg_dir: Path, data_dir: Path, relays: dict[str, str]) -> list[ProcessEntry]:
    """A collector per chain (configs written here), the bridge stand-in's relayer and the rebalancer."""
    from tools.deployment_writer import write_toml

    out = []
    for chain in setup.chains:
        path = write_toml(cfg_dir / f"collector-{chain.chain_id}.toml",
                          collector_doc(setup, chain, relays["market_data"]))
        out.append(process(f"collector-{chain.chain_id}", ["collector", "evm", "--config", path],
                           after=["relay-market_data"]))
    o = setup.options
    out.append(process("bridge-relayer", ["standin", "bridge", "--deployment", setup.deployment_file,
                                          "--delay", str(o.bridge_delay), "--fee-bps", str(o.bridge_fee_bps),
                                          "--state", data_dir / "bridge-relayer.sqlite"]))
    path = write_toml(cfg_dir / "rebalancer.toml", rebalancer_doc(setup, data_dir, relays))
    out.append(process("rebalancer", ["rebalancer", "--config", path], after=["relay-execution"]))
    return out


def strategy_tables(setup: XChainSetup) -> dict[str, Any]:
    """The strategy's ``[[chains]]`` table for the lagging chain, ``[[assets]]`` and ``[cross_chain]``.

    The lagging chain's ``[[chains]]`` prices its legs' gas (WETH through its pools) and lists only the
    followed pool, so no one-chain cycle is searched there (the executor trades the lead chain's); the pair is
    the V3 0.05 % WETH/USDC pool of each chain, the one replayed and the one following it. The inventory caps
    are what each contract was funded with."""
    from tools.deployment_writer import assets_doc

    o = setup.options
    lag = setup.lagging.deployment
    pools = [c.deployment.pool("uniswap_v3", "WETH", "USDC", V3_FEE).address for c in setup.chains]
    return {
        "chain": {"chain_id": lag.chain_id, "gas_token": lag.weth, "base_tokens": [lag.weth], "pools": [pools[
            setup.chains.index(setup.lagging)]]},
        "assets": assets_doc([c.deployment for c in setup.chains])["assets"],
        "cross_chain": {
            "base": "WETH", "quote": "USDC", "pairs": [pools], "bridge_id": o.bridge_id,
            "bridge_fee_bps": o.bridge_fee_bps, "bridge_gas_units": o.bridge_gas_units,
            "rebalance_every": o.rebalance_every, "drift_k_milli": o.drift_k_milli,
            "sigma_floor_ppb": o.sigma_floor_ppb, "min_net_profit": o.min_net_profit_usdc,
            "chains": [{"chain_id": c.chain_id, "block_time_ms": int((o.block_times[i] or 1.0) * 1000),
                        "gas_units": o.leg_gas_units,
                        "inventory": {"base": o.inventory_weth, "quote": o.inventory_usdc}}
                       for i, c in enumerate(setup.chains)],
        },
    }


def portfolio_chains(setup: XChainSetup) -> dict[int, dict[str, str]]:
    return {c.chain_id: {"valuation_token": c.deployment.weth, "wrapped_native": c.deployment.weth}
            for c in setup.chains}


def executor_table(setup: XChainSetup) -> dict[str, Any]:
    """The executor's ``[cross_chain]`` (``specs/cross-chain-legs.md``): per chain its node, its contract holding
    the inventory, its own keystore, the V3 venue the pair's pools belong to and the bridge the rebalancer's
    transfers use (the executor signs the rebalancer's requests: ``rebalancer_source_id``). Each leg waits for its chain:
    the slow chain's leg needs a block or two (2 s each), so a leg is given 4 blocks of the slower chain."""
    slowest = max((t for t in setup.options.block_times if t is not None), default=1.0)
    leg_timeout = max(6.0, 4 * slowest)
    return {
        "leg_timeout_s": leg_timeout, "deadline_s": leg_timeout - 1.0,
        "max_leg_open_s": 2 * leg_timeout + 6.0, "unwind_timeout_s": 2 * leg_timeout + 6.0,
        "rebalancer_source_id": REBALANCER_SOURCE_ID,
        "chains": [{"chain_id": c.chain_id, "rpc_url": c.deployment.rpc_url, "contract": c.arb,
                    "gas_token": c.deployment.weth,
                    "keystore": {"path": c.keystore, "password_file": c.password_file},
                    "venues": [{"venue": "DEVNET_V3", "factory": c.deployment.v3.factory}],
                    **({"bridge": c.deployment.bridge.address} if c.deployment.bridge is not None else {})}
                   for c in setup.chains],
    }


def executor_validation(setup: XChainSetup) -> dict[str, Any]:
    """The executor's ``[validation]`` age limit per chain: each chain's block time, and the one-chain demo's
    three blocks of the slower chain as the time (6 s: 3 blocks of the 2 s chain, 24 of the 0.25 s one). In
    blocks alone, three blocks of the fast chain (0.75 s) ended a signal that waited for a pool STALE by age
    whatever the state said (re-validation and the simulation are the guards; the age is a backstop)."""
    times = {str(c.chain_id): bt for c, bt in zip(setup.chains, setup.options.block_times, strict=True) if bt is not None}
    slowest = max(times.values(), default=1.0)
    return {"max_signal_age_s": 3 * slowest, "block_time_s": times}


def risk_tables(setup: XChainSetup) -> dict[str, Any]:
    """The risk process's cross-chain breakers: a chain whose head stops (20 block times: 5 s of the fast chain,
    which a loaded machine's collector can miss at start), one chain holding
    more than 80 % of an asset (a CHAIN stop of it, lifted once a rebalance lands) from the inventory each
    contract starts with, a bridge transfer not completed within four times the stand-in's delay + 30 s, and a
    leg left open."""
    from tools.deployment_writer import assets_doc

    o = setup.options
    return {
        "chain_stall": {"chains": {str(c.chain_id): bt for c, bt in zip(setup.chains, o.block_times, strict=True)
                                   if bt is not None}, "multiple": 20.0},
        "assets": assets_doc([c.deployment for c in setup.chains])["assets"],
        "xchain_inventory": {"scope": "chain", "assets": [
            {"asset": sym, "start": {str(c.chain_id): amount for c in setup.chains}, "max_share_bps": 8000}
            for sym, amount in (("WETH", o.inventory_weth), ("USDC", o.inventory_usdc))]},
        "bridge_overdue": {"max_transfer_s": 4.0 * o.bridge_delay + 30.0, "scope": "chain"},
        "leg_open": {"max_open_s": 60.0},  # a leg left open (its unwind failed): a stop naming chain and amount
    }


def daily_loss_tokens(setup: XChainSetup) -> dict[str, dict[str, int]]:
    return {f"{c.chain_id}:{c.deployment.weth}": {"max_loss": 5 * 10**18, "gas_per_eth": 10**18}
            for c in setup.chains}


# --------------------------------------------------------------------------- the lead pool, as seen on the bus


@dataclass
class PoolTape:
    """The market's moves of the lead chain's V3 0.05 % WETH/USDC pool (USDC per WETH), from the ``V3Swap``
    records on the market-data relay, with when they were seen (monotonic s): what the lagging chain follows.

    Only the *market's* swaps move the tape: a swap of a transaction our executor sent (its hash from an
    ``ExecutionStarted``, published as it is sent, so before its log: :meth:`ours`) changes the pool's price
    but not the tape. Each market swap moves the tape by the ratio of the pool's price after it to the price
    before it (after whatever swap came last, ours included), so the lagging chain never replays our own
    arbitrage's impact on the lead pool -- which would reopen the gap we just closed, a money pump.

    Appended to by the demo's bus consumers, read by the follower thread (see ``tools.demo_cex.CexTape``)."""

    pool: int
    weth_is_token0: bool
    decimals0: int
    decimals1: int
    horizon: float = 120.0
    mids: deque[tuple[float, Fraction]] = field(default_factory=deque)
    swaps: int = 0  # the market's swaps seen
    skipped: int = 0  # our own
    last: Fraction | None = None  # the pool's price after the newest swap seen
    own: set[bytes] = field(default_factory=set)

    def ours(self, tx_hash: bytes) -> None:
        """A transaction our executor sent: its swap is not the market's."""
        self.own.add(bytes(tx_hash))

    def on_records(self, tlvs: Any, now: float) -> None:
        from tools.devnet.actions import sqrt_price_x96_to_price

        for t in tlvs:
            if isinstance(t, V3Swap) and int(t.pool) == self.pool and t.sqrt_price_x96:
                p01 = sqrt_price_x96_to_price(t.sqrt_price_x96, self.decimals0, self.decimals1)
                price = p01 if self.weth_is_token0 else 1 / p01
                before, self.last = self.last, price
                if bytes(t.tx_hash) in self.own:
                    self.skipped += 1
                    continue
                self.swaps += 1
                tape = self.mids[-1][1] if self.mids else None
                level = price if tape is None or before is None else (tape * price / before).limit_denominator(10**18)
                self.mids.append((now, level))
                while self.mids and self.mids[0][0] < now - self.horizon:
                    self.mids.popleft()

    def mid_at(self, when: float) -> Fraction | None:
        """The tape's level at ``when``: the last seen at or before it (None before the first)."""
        found = None
        for at, mid in list(self.mids):
            if at > when:
                break
            found = mid
        return found


# --------------------------------------------------------------------------- drivers and probes


@dataclass
class Moves:
    """The lagging chain's driver counts."""

    trades: int = 0
    trade_errors: int = 0


def follow_lead_chain(setup: XChainSetup, counts: Moves, stop: threading.Event, say: Callable[[str], None]) -> None:
    """Move the lagging chain's V3 0.05 % WETH/USDC pool as the lead chain's moved ``lag`` s ago, every ``step``
    s (a worker thread). Moves only, from the first price seen: the chains' price gap at start stays until
    arbitrage trades it away."""
    from tools.demo_cex import follow_lead

    o = setup.options
    net = setup.lagging.net
    follow_lead(net, net.deployment.funded_accounts[0], setup.tape.mid_at, step=o.step, lag=o.lag, stop=stop,
                counts=counts, say=say, to_level=False)


RTT_EVERY = 1.0


async def measure_rtt(setup: XChainSetup, out: dict[int, list[int]]) -> None:
    """One ``eth_blockNumber`` round trip per chain every ``RTT_EVERY`` s over HTTP, as the executor reaches
    its nodes (``chain.rpc.HttpRpc``), in ns, into ``out[chain id]``, until cancelled."""
    import trio

    from chain.rpc import HttpRpc, RpcFailure

    rpcs = {c.chain_id: HttpRpc(c.deployment.rpc_url, timeout=5.0) for c in setup.chains}
    try:
        while True:
            for chain_id, rpc in rpcs.items():
                t0 = time.perf_counter_ns()
                try:
                    await rpc.call("eth_blockNumber")
                except RpcFailure:
                    continue
                out.setdefault(chain_id, []).append(time.perf_counter_ns() - t0)
            await trio.sleep(RTT_EVERY)
    finally:
        with trio.CancelScope(shield=True):
            for rpc in rpcs.values():
                await rpc.aclose()


# --------------------------------------------------------------------------- start and end of the run

MARKET_WAIT = 60.0  # seconds the market drivers wait for both chains' collectors
START_GAP_WAIT = 120.0  # ... then for the outcome of the chains' price gap at start (the executor's start included)
EXECUTOR_READY = READY_LINES["executor"].decode()  # what the executor logs once it takes signals
EXECUTOR_WAIT = 30.0  # ... the wind-down waits for the executor's open signals
REBALANCER_QUIET = 3.0  # ... the rebalancer must have had no transfer open this long before it is stopped
REBALANCER_WAIT = 60.0
BOOKS_WAIT = 30.0


async def poll_until(done: Callable[[], bool], seconds: float, every: float = 0.2) -> bool:
    """Whether ``done()`` became true within ``seconds``, asked every ``every`` s (what it asks about is
    another process's file or a count the bus watchers keep: nothing to wait on)."""
    import trio

    with trio.move_on_after(seconds):
        while not done():  # noqa: ASYNC110 - polled state lives in other processes' files
            await trio.sleep(every)
        return True
    return False


async def wait_both_chains(setup: XChainSetup, tally: Any, say: Callable[[str], None]) -> None:
    """Hold the market drivers until both chains' collectors publish (a ``BlockHeader`` of each chain seen on
    the market-data relay), at most ``MARKET_WAIT`` s, and then until the chains' price gap at start has its
    outcome (the first cross-chain ``ExecutionResult``), at most ``START_GAP_WAIT`` s: on a busy machine the
    processes take many seconds to start -- the executor the longest (two keystores decrypted, tens of seconds
    at load 25 on 2 cores) and the strategy only after it (``tools.demo``) -- and ``--duration`` counts the
    market's time, not theirs. The gap is traded on still pools: a market already moving would race its signal
    (a leg whose exact output fell below the signal's is STALE), and a signal read by an executor that started
    late is STALE for its age, never signalled again while neither pool moves (the run's only trades then
    depended on winning such races within ``--duration``)."""
    t0 = time.monotonic()
    want = {c.chain_id for c in setup.chains}
    seen = await poll_until(lambda: want <= tally.chains_seen, MARKET_WAIT)
    say(f"both chains' collectors publishing after {time.monotonic() - t0:.1f} s" if seen
        else f"chains {sorted(want - tally.chains_seen)} not seen on the bus within {MARKET_WAIT:.0f} s; "
             "driving the market anyway")
    t0 = time.monotonic()
    if await poll_until(lambda: bool(tally.xc_outcomes), START_GAP_WAIT):
        say(f"the chains' price gap at start: {dict(sorted(tally.xc_outcomes.items()))} after "
            f"{time.monotonic() - t0:.1f} s")
    else:
        say(f"no cross-chain outcome within {START_GAP_WAIT:.0f} s (the executor or the strategy not up, or no gap "
            "at start); driving the market anyway")


def open_rebalances(db: Path) -> int | None:
    """Transfers the rebalancer has open (planned, not yet completed, refused or failed) in its state file;
    None before it wrote one."""
    from runtime.files import open_sqlite_readonly

    if not db.is_file():
        return None
    conn = open_sqlite_readonly(db, tables=("transfers",), what="rebalancer state")
    try:
        (n,) = conn.execute("SELECT COUNT(*) FROM transfers WHERE state NOT IN ('completed', 'refused', 'failed')"
                            ).fetchone()
    finally:
        conn.close()
    return int(n)


def books_cursor(db: Path, domain: int) -> int:
    """The portfolio's last applied sequence of ``domain`` (its ``cursor`` table), 0 before any."""
    from runtime.files import open_sqlite_readonly

    if not db.is_file():
        return 0
    conn = open_sqlite_readonly(db, tables=("cursor",), what="portfolio database")
    try:
        row = conn.execute("SELECT last_seq FROM cursor WHERE domain = ?", (domain,)).fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else 0


async def wind_down(sup: Any, setup: XChainSetup, tally: Any, data: Path, say: Callable[[str], None]) -> None:
    """End the run so the books can equal both chains: no trade, transfer or completion may land unreported
    or unbooked. In order: the strategy stops (no new signal); the executor finishes its open signals (at most
    ``EXECUTOR_WAIT`` s); the rebalancer finishes its transfers (none open for ``REBALANCER_QUIET`` s: the last
    trade may have pushed a chain below its floor; at most ``REBALANCER_WAIT`` s) while the executor still runs
    -- the executor signs the rebalancer's transactions (``OwnerTxRequest``, specs/rebalance.md), so stopping it
    first left a transfer planned after the last trade waiting for an answer until the wait ran out -- then
    the rebalancer, the executor and the bridge relayer stop; then the portfolio reads the execution relay up to
    its end (at most ``BOOKS_WAIT`` s). Each wait that runs out is said, and the books may then differ from the
    chain by what was cut short."""
    import trio

    from protocol.header import Domain

    await sup.stop("strategy")
    if not await poll_until(lambda: not tally.open_signals, EXECUTOR_WAIT):
        say(f"{len(tally.open_signals)} signal(s) still open after {EXECUTOR_WAIT:.0f} s; the executor stops "
            "after the rebalancer")
    quiet_since: list[float] = []  # when the rebalancer was last seen with nothing open

    def rebalancer_quiet() -> bool:
        if open_rebalances(data / "rebalancer.sqlite"):
            quiet_since.clear()
            return False
        if not quiet_since:
            quiet_since.append(time.monotonic())
        return time.monotonic() - quiet_since[0] >= REBALANCER_QUIET

    if not await poll_until(rebalancer_quiet, REBALANCER_WAIT, every=0.5):
        say(f"the rebalancer still has a transfer open after {REBALANCER_WAIT:.0f} s; stopping it")
    for name in ("rebalancer", "executor", "bridge-relayer"):
        await sup.stop(name)
    await trio.sleep(0.5)  # the demo's own consumer reads the relay's last records
    if not await poll_until(lambda: books_cursor(data / "portfolio.sqlite", int(Domain.EXECUTION))
                            >= tally.execution_seq, BOOKS_WAIT):
        say(f"the books did not reach execution record {tally.execution_seq} within {BOOKS_WAIT:.0f} s")


# --------------------------------------------------------------------------- the summary


def percentile_ms(values: list[int], q: float) -> str:
    """The ``q`` quantile of nanosecond values as the benchmarks take it (``tools.bench.quantile``), in ms
    (display only); '-' without values."""
    from tools.bench import quantile

    return f"{quantile(values, q) / 1e6:.1f} ms" if values else "-"


def median_ms(values: list[int]) -> str:
    return f"{statistics.median(values) / 1e6:.2f} ms" if values else "-"


def fmt_inventory(decimals: dict[str, int], balances: dict[str, int]) -> str:
    return ", ".join(f"{fmt_units(v, decimals[sym])} {sym} ({v})" for sym, v in balances.items())
