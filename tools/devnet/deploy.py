"""Deploy the devnet market: tokens, two Uniswap V2 venues, Uniswap V3, pools and positions.

Everything is sent from anvil's first unlocked dev account with ``eth_sendTransaction``.
Contract and pool addresses are predicted (CREATE from the deployer's nonce, CREATE2 from the
init-code hashes), so the whole deployment is pipelined in a few JSON-RPC batches with explicit
nonces and gas limits; it takes about a second.

The default market (:data:`DEFAULT_SPEC`) - prices are "quote per base":

* tokens: WETH (official WETH9, 18 decimals), USDC (DevToken, 6), DAI (DevToken, 18);
* V2 venues ``uniswap_v2_a`` and ``uniswap_v2_b`` (each its own factory + Router02) with
  WETH/USDC, WETH/DAI and DAI/USDC pairs; venue b is priced 0.4-0.8 % away from venue a, so
  cross-venue and triangular cycles exist;
* V3 (``uniswap_v3``): the same three pairs at fee tiers 500, 3000 and 10000, each pool with a
  wide, a medium and a narrow position around the price plus one out-of-range position.
* V4 (``uniswap_v4``): the official PoolManager (v4-core, npm) and our ``V4DevnetRouter``
  (contracts/V4Devnet.sol), with pools on the same pairs at fees 100-3000 and the same kinds of
  positions, one with a 0.05 %/0.02 % protocol fee, one with our ``SwapCounterHook`` (observes swaps,
  cannot change amounts) and one with our ``SkimHook`` (returns an afterSwap delta: it takes 1 % of
  every swap, so the simulator must refuse that pool). Hooks are placed with ``anvil_setCode`` at
  addresses whose low bits are their permissions, as a CREATE2 salt search would on a real chain.
* Balancer (``balancer_vault``): the official V2 Vault and its Authorizer (bytecode from
  ``@balancer-labs/v2-deployments``, mainnet's constructor arguments: the deployer as the Authorizer's
  admin, WETH, a 90-day pause window and 30-day buffer), holding balances of every token so it can
  flash-lend them (its flash-loan fee is the ProtocolFeesCollector's, 0 as deployed).
* Curve (``curve_stableswap``): a DAI/USDC StableSwap pool, our faithful Solidity port of the
  classic pool (contracts/StableSwapDevnet.sol: no package ships Curve's bytecode), slightly
  imbalanced so cycles through it exist.
* the bridge stand-in (``DevBridge``, contracts/DevBridge.sol; specs/bridge-standin.md) holding
  liquidity in every token, its relayer the last dev account.

Dev accounts 1 and 2 are funded (ETH, WETH, USDC, DAI) and have approved every router, so an
executor or a noise trader can trade at once; account 0 is the deployer and liquidity provider.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from fractions import Fraction

from eth_utils import to_checksum_address

from chain.addresses import (
    UNISWAP_V2_INIT_CODE_HASH,
    UNISWAP_V3_INIT_CODE_HASH,
    create_address,
    sort_tokens,
    v2_pair_address,
    v3_pool_address,
)
from chain.deployment import (
    V2_FEE_PIPS,
    Bridge,
    ChainDeployment,
    CurvePool,
    Pool,
    Token,
    V2Venue,
    V3Venue,
    V4Pool,
    V4Venue,
)
from chain.rpc import SyncHttpRpc
from market.amm.pool_key import PoolKey

from . import artifacts
from .actions import (
    FAR_FUTURE_DEADLINE,
    MAX_UINT256,
    TICK_SPACINGS,
    ZERO_ADDRESS,
    ChainClient,
    DevnetClient,
    Tx,
    price_to_sqrt_price_x96,
    tick_at_price,
    usable_tick,
)
from .anvil import DEFAULT_CHAIN_ID, AnvilProcess

# Gas limits for the pipelined deployment (no estimation); measured use is well below.
GAS_DEPLOY = 7_000_000
GAS_DEPLOY_POOL_MANAGER = 12_000_000
GAS_DEPLOY_BALANCER_VAULT = 12_000_000
# The Vault's constructor arguments as deployed on mainnet (task 20210418-vault): pause window, buffer.
BALANCER_PAUSE_WINDOW = 90 * 86400
BALANCER_BUFFER_PERIOD = 30 * 86400
GAS_V4_INITIALIZE = 400_000
GAS_V4_MODIFY = 600_000
GAS_CREATE_POOL = 6_000_000
GAS_ADD_LIQUIDITY_NEW_PAIR = 4_000_000
GAS_MINT = 1_000_000
GAS_SMALL = 150_000
DEPLOY_BLOCK_GAS_LIMIT = 2**40


@dataclass(frozen=True)
class TokenSpec:
    symbol: str
    name: str
    decimals: int


@dataclass(frozen=True)
class V2PairSpec:
    base: str
    quote: str
    price: str  # human, quote per base
    base_amount: str  # human amount of base in the pair


@dataclass(frozen=True)
class V3PositionSpec:
    lower: str  # price range as factors of the pool's price (in token1-per-token0 terms)
    upper: str
    value: str  # position value in quote units (human)


@dataclass(frozen=True)
class V3PoolSpec:
    base: str
    quote: str
    fee: int
    price: str
    positions: tuple[V3PositionSpec, ...]


@dataclass(frozen=True)
class V4PoolSpec:
    base: str
    quote: str
    fee: int  # static LP fee, pips
    tick_spacing: int
    price: str
    positions: tuple[V3PositionSpec, ...]
    hook: str = ""  # a key of V4_HOOKS, or "" for none
    protocol_fee: int = 0  # packed (oneForZero << 12 | zeroForOne), set through the fee controller


# Our devnet hooks and the addresses they are placed at: the low 14 bits are the permissions
# (0xC0 = beforeSwap | afterSwap; 0x44 = afterSwap | afterSwapReturnDelta).
V4_HOOKS = {
    "counter": ("SwapCounterHook", "0x00000000000000000000000000000000C0DE00C0"),
    "skim": ("SkimHook", "0x00000000000000000000000000000000C0DE0044"),
}


@dataclass(frozen=True)
class CurvePoolSpec:
    coins: tuple[str, ...]  # symbols, in the pool's index order
    balances: tuple[str, ...]  # human amounts seeded
    amp: int
    fee: int  # 1e10 scale (4_000_000 = 0.04 %)
    admin_fee: int  # 1e10 scale (5_000_000_000 = half the fee)


@dataclass(frozen=True)
class DevnetSpec:
    tokens: tuple[TokenSpec, ...]  # WETH first: it is the official WETH9, the rest are DevTokens
    v2: tuple[tuple[str, tuple[V2PairSpec, ...]], ...]  # (venue name, pairs)
    v3_name: str
    v3: tuple[V3PoolSpec, ...]
    v4_name: str = "uniswap_v4"
    v4: tuple[V4PoolSpec, ...] = ()
    funded_accounts: int = 2  # dev accounts 1..N get tokens + approvals
    fund_amounts: tuple[tuple[str, str], ...] = (("WETH", "1000"), ("USDC", "2000000"), ("DAI", "2000000"))
    fund_eth: str = "10000"
    deployer_eth: str = "1000000"
    # The bridge stand-in (contracts/DevBridge.sol): its liquidity per token, released to
    # recipients of transfers from other chains; the relayer is the last dev account.
    bridge_liquidity: tuple[tuple[str, str], ...] = (("WETH", "1000"), ("USDC", "2000000"), ("DAI", "2000000"))
    curve_name: str = "curve_stableswap"
    curve: tuple[CurvePoolSpec, ...] = ()
    # The Balancer V2 Vault's lendable balances (human, per symbol); empty = no Vault.
    balancer_funds: tuple[tuple[str, str], ...] = ()


def _positions(scale: str, above: bool) -> tuple[V3PositionSpec, ...]:
    s = Fraction(scale)
    out_of_range = ("1.05", "1.25") if above else ("0.8", "0.95")
    return (
        V3PositionSpec("0.5", "2", str(s * 1_000_000)),
        V3PositionSpec("0.9", "1.1", str(s * 500_000)),
        V3PositionSpec("0.98", "1.02", str(s * 200_000)),
        V3PositionSpec(*out_of_range, str(s * 100_000)),
    )


def _v3_pools() -> tuple[V3PoolSpec, ...]:
    prices = {
        ("WETH", "USDC"): {500: "2004", 3000: "1996", 10000: "2010"},
        ("WETH", "DAI"): {500: "2002", 3000: "1998", 10000: "1990"},
        ("DAI", "USDC"): {500: "1.001", 3000: "0.998", 10000: "1.003"},
    }
    scale = {500: "1", 3000: "1", 10000: "0.3"}
    pools = []
    for i, ((base, quote), by_fee) in enumerate(prices.items()):
        for j, (fee, price) in enumerate(by_fee.items()):
            pools.append(V3PoolSpec(base, quote, fee, price, _positions(scale[fee], above=(i + j) % 2 == 0)))
    return tuple(pools)


DEFAULT_SPEC = DevnetSpec(
    tokens=(
        TokenSpec("WETH", "Wrapped Ether", 18),
        TokenSpec("USDC", "USD Coin (devnet)", 6),
        TokenSpec("DAI", "Dai Stablecoin (devnet)", 18),
    ),
    v2=(
        ("uniswap_v2_a", (
            V2PairSpec("WETH", "USDC", "2000", "1000"),
            V2PairSpec("WETH", "DAI", "2000", "1000"),
            V2PairSpec("DAI", "USDC", "1", "2000000"),
        )),
        ("uniswap_v2_b", (
            V2PairSpec("WETH", "USDC", "2016", "400"),  # +0.8 %
            V2PairSpec("WETH", "DAI", "1990", "400"),  # -0.5 %
            V2PairSpec("DAI", "USDC", "1.004", "800000"),  # +0.4 %
        )),
    ),
    v3_name="uniswap_v3",
    v3=_v3_pools(),
    v4=(
        V4PoolSpec("WETH", "USDC", 500, 10, "2006", _positions("1", above=True)),
        V4PoolSpec("WETH", "USDC", 3000, 60, "1994", _positions("1", above=False), protocol_fee=(200 << 12) | 500),
        V4PoolSpec("WETH", "DAI", 3000, 60, "2003", _positions("1", above=True)),
        V4PoolSpec("DAI", "USDC", 100, 1, "1.0005", _positions("1", above=False)),
        V4PoolSpec("WETH", "USDC", 3000, 60, "2001", _positions("0.3", above=True), hook="counter"),
        V4PoolSpec("WETH", "USDC", 3000, 60, "1999", _positions("0.3", above=False), hook="skim"),
    ),
    curve=(CurvePoolSpec(("DAI", "USDC"), ("1500000", "500000"), amp=200, fee=4_000_000, admin_fee=5_000_000_000),),
    balancer_funds=(("WETH", "5000"), ("USDC", "10000000"), ("DAI", "10000000")),
)


# Each chain of a multi-chain devnet gets the same market with the first token (WETH) priced
# differently: chain i's WETH prices are the default ones times CHAIN_PRICE_FACTORS[i] (cycling), so a
# cross-chain gap exists from the start -- 1.5 % on the second chain, well above two pools' fees.
CHAIN_PRICE_FACTORS = (Fraction(1), Fraction(1015, 1000), Fraction(990, 1000), Fraction(1025, 1000))


def scaled_spec(spec: DevnetSpec, factor: Fraction) -> DevnetSpec:
    """``spec`` with every price of a pair whose base is the first token (WETH) multiplied by
    ``factor`` (positions are relative to the price, so they follow)."""
    first = spec.tokens[0].symbol

    def price(base: str, p: str) -> str:
        return str(Fraction(p) * factor) if base == first else p

    return replace(
        spec,
        v2=tuple((name, tuple(replace(ps, price=price(ps.base, ps.price)) for ps in pairs)) for name, pairs in spec.v2),
        v3=tuple(replace(ps, price=price(ps.base, ps.price)) for ps in spec.v3),
        v4=tuple(replace(ps, price=price(ps.base, ps.price)) for ps in spec.v4),
    )


def chain_spec(index: int, spec: DevnetSpec = DEFAULT_SPEC) -> DevnetSpec:
    """The market of the ``index``-th chain of a multi-chain devnet (chain 0 gets ``spec`` itself)."""
    factor = CHAIN_PRICE_FACTORS[index % len(CHAIN_PRICE_FACTORS)]
    return spec if factor == 1 else scaled_spec(spec, factor)


def _units(human: str | Fraction, decimals: int) -> int:
    return int(Fraction(human) * 10**decimals)


def _position_amounts(price_raw: Fraction, lo_raw: float, hi_raw: float, value_raw1: Fraction) -> tuple[int, int]:
    """Token amounts (raw) of a position worth ``value_raw1`` (in raw token1) over [lo, hi]."""
    p = math.sqrt(float(price_raw))
    a, b = math.sqrt(lo_raw), math.sqrt(hi_raw)
    sp = min(max(p, a), b)
    per_l0 = 1 / sp - 1 / b  # token0 per unit liquidity
    per_l1 = sp - a  # token1 per unit liquidity
    liquidity = float(value_raw1) / (per_l0 * float(price_raw) + per_l1)
    return math.ceil(liquidity * per_l0 * 1.0001) + 1, math.ceil(liquidity * per_l1 * 1.0001) + 1


def _position_liquidity(price_raw: Fraction, lo_raw: float, hi_raw: float,
                        value_raw1: Fraction) -> tuple[int, int, int]:
    """Liquidity of a position worth about ``value_raw1`` over [lo, hi], and generous upper bounds
    of the token amounts it takes (for funding the deployer)."""
    p = math.sqrt(float(price_raw))
    a, b = math.sqrt(lo_raw), math.sqrt(hi_raw)
    sp = min(max(p, a), b)
    per_l0, per_l1 = 1 / sp - 1 / b, sp - a
    liquidity = int(float(value_raw1) / (per_l0 * float(price_raw) + per_l1))
    return liquidity, math.ceil(liquidity * per_l0 * 1.001) + 1, math.ceil(liquidity * per_l1 * 1.001) + 1


@dataclass
class _Plan:
    """Predicts addresses while queuing transactions in nonce order."""

    deployer: str
    nonce: int
    txs: list[Tx] = field(default_factory=list)

    def deploy(self, artifact: str, *args: object, label: str = "") -> str:
        addr = create_address(self.deployer, self.nonce)
        data = artifacts.load(artifact).deploy_data(*args)
        self.txs.append(Tx(self.deployer, None, data, gas=GAS_DEPLOY, label=label or f"deploy {artifact}"))
        self.nonce += 1
        return addr

    def call(self, artifact: str, to: str, fn: str, *args: object, value: int = 0, gas: int = GAS_SMALL,
             sender: str | None = None, label: str = "") -> None:
        data = artifacts.load(artifact).encode(fn, *args)
        s = sender or self.deployer
        self.txs.append(Tx(s, to, data, value=value, gas=gas, label=label or f"{artifact}.{fn}"))
        if s.lower() == self.deployer.lower():
            self.nonce += 1


def deploy(
    rpc: SyncHttpRpc | str,
    *,
    spec: DevnetSpec = DEFAULT_SPEC,
    rpc_url: str | None = None,
    ws_url: str | None = None,
    anvil_pid: int | None = None,
    block_time: float | None = None,
) -> ChainDeployment:
    """Deploy ``spec`` on the anvil node behind ``rpc``; returns the description of the result.

    ``rpc_url``/``ws_url`` default to the RPC's URL (``ws://`` on the same port, as anvil serves
    both). Works under automine and interval mining alike (``block_time`` is only recorded)."""
    client = ChainClient(rpc)
    url = rpc_url or client.rpc.url
    ws = ws_url or url.replace("http://", "ws://").replace("https://", "wss://")
    # anvil drops queued transactions that do not fit the block being built (and with them every
    # later nonce), so the block gas limit is raised while the pipelined deployment runs. That
    # also lets an interval-mining node (--block-time) take the whole deployment in one block.
    gas_limit = client.block_gas_limit()
    client.set_block_gas_limit(DEPLOY_BLOCK_GAS_LIMIT)
    try:
        return _deploy(client, spec, url, ws, anvil_pid, block_time)
    finally:
        client.set_block_gas_limit(gas_limit)


def _deploy(client: ChainClient, spec: DevnetSpec, url: str, ws: str, anvil_pid: int | None,
            block_time: float | None) -> ChainDeployment:
    artifacts.check_init_code_hashes()
    chain_id = client.chain_id()
    accounts = client.accounts()
    deployer = accounts[0]
    client.set_eth_balance(deployer, _units(spec.deployer_eth, 18))
    plan = _Plan(deployer, client.nonce(deployer))

    # -- contracts -----------------------------------------------------------------------------
    tokens: dict[str, Token] = {}
    for i, ts in enumerate(spec.tokens):
        if i == 0:
            addr = plan.deploy("WETH9", label="deploy WETH9")
        else:
            addr = plan.deploy("DevToken", ts.name, ts.symbol, ts.decimals, label=f"deploy {ts.symbol}")
        tokens[ts.symbol] = Token(symbol=ts.symbol, name=ts.name, address=addr, decimals=ts.decimals)
    weth = tokens[spec.tokens[0].symbol].address
    v2: list[V2Venue] = []
    for name, _ in spec.v2:
        factory = plan.deploy("UniswapV2Factory", deployer, label=f"deploy {name} factory")
        router = plan.deploy("UniswapV2Router02", factory, weth, label=f"deploy {name} router")
        v2.append(V2Venue(name=name, factory=factory, router=router,
                          init_code_hash="0x" + UNISWAP_V2_INIT_CODE_HASH.hex()))
    v3_factory = plan.deploy("UniswapV3Factory")
    npm = plan.deploy("NonfungiblePositionManager", v3_factory, weth, ZERO_ADDRESS)
    swap_router = plan.deploy("SwapRouter", v3_factory, weth)
    quoter = plan.deploy("QuoterV2", v3_factory, weth)
    v3 = V3Venue(name=spec.v3_name, factory=v3_factory, position_manager=npm, swap_router=swap_router,
                 quoter_v2=quoter, init_code_hash="0x" + UNISWAP_V3_INIT_CODE_HASH.hex())
    v4: V4Venue | None = None
    if spec.v4:
        manager = plan.deploy("PoolManager", deployer, label="deploy V4 PoolManager")
        plan.txs[-1] = Tx(deployer, None, plan.txs[-1].data, gas=GAS_DEPLOY_POOL_MANAGER, label=plan.txs[-1].label)
        v4_router = plan.deploy("V4DevnetRouter", manager, label="deploy V4DevnetRouter")
        v4 = V4Venue(name=spec.v4_name, pool_manager=manager, router=v4_router)
        for art, addr in V4_HOOKS.values():
            # Creation code run by eth_call returns the runtime code (the hooks have no constructor
            # and no immutables), placed where the permission bits are right.
            runtime = client.rpc.call("eth_call", [{"from": deployer, "data": "0x" + artifacts.load(art).bytecode.hex()}])
            client.rpc.call("anvil_setCode", [addr, runtime])
    bridge: Bridge | None = None
    if spec.bridge_liquidity:
        relayer = accounts[-1]
        address = plan.deploy("DevBridge", relayer, label="deploy DevBridge")
        bridge = Bridge(address=address, relayer=relayer, liquidity={
            sym: _units(amount, tokens[sym].decimals) for sym, amount in spec.bridge_liquidity})
    spenders = [v.router for v in v2] + [swap_router, npm] + ([v4.router] if v4 else [])
    spenders += [bridge.address] if bridge else []

    # -- deployer funds and approvals ----------------------------------------------------------
    weth_needed = 0
    big = 10**12  # human units of each DevToken minted to the deployer
    for tok in tokens.values():
        if tok.address != weth:
            plan.call("DevToken", tok.address, "mint", deployer, big * 10**tok.decimals)
        for s in spenders:
            plan.call("DevToken", tok.address, "approve", s, MAX_UINT256)

    # -- V2 pairs ------------------------------------------------------------------------------
    pools: list[Pool] = []
    liquidity_txs: list[tuple[str, str, str, tuple[object, ...]]] = []
    for venue, (name, pairs) in zip(v2, spec.v2):
        for ps in pairs:
            base, quote = tokens[ps.base], tokens[ps.quote]
            amount_base = _units(ps.base_amount, base.decimals)
            amount_quote = _units(Fraction(ps.base_amount) * Fraction(ps.price), quote.decimals)
            if base.address == weth:
                weth_needed += amount_base
            if quote.address == weth:
                weth_needed += amount_quote
            liquidity_txs.append(("UniswapV2Router02", venue.router, "addLiquidity", (
                base.address, quote.address, amount_base, amount_quote, 0, 0, deployer, FAR_FUTURE_DEADLINE)))
            t0, t1 = sort_tokens(base.address, quote.address)
            pools.append(Pool(address=v2_pair_address(venue.factory, t0, t1), venue=name, kind="v2",
                              token0=t0, token1=t1, fee=V2_FEE_PIPS,
                              symbol0=_sym(tokens, t0), symbol1=_sym(tokens, t1)))

    # -- V3 pools and positions ----------------------------------------------------------------
    by_addr = {t.address: t for t in tokens.values()}
    v3_txs: list[tuple[str, str, str, tuple[object, ...]]] = []
    for vs in spec.v3:
        base, quote = tokens[vs.base], tokens[vs.quote]
        t0, t1 = sort_tokens(base.address, quote.address)
        d0, d1 = by_addr[t0].decimals, by_addr[t1].decimals
        price01 = Fraction(vs.price) if t0 == base.address else 1 / Fraction(vs.price)  # token1 per token0
        spacing = TICK_SPACINGS[vs.fee]
        sqrt_p = price_to_sqrt_price_x96(price01, d0, d1)
        v3_txs.append(("NonfungiblePositionManager", npm, "createAndInitializePoolIfNecessary",
                       (t0, t1, vs.fee, sqrt_p)))
        price_raw = Fraction(sqrt_p**2, 2**192)
        for pos in vs.positions:
            lo = usable_tick(tick_at_price(price01 * Fraction(pos.lower), d0, d1), spacing)
            hi = usable_tick(tick_at_price(price01 * Fraction(pos.upper), d0, d1), spacing)
            if hi <= lo:
                hi = lo + spacing
            value_quote = _units(pos.value, quote.decimals)  # raw quote units
            value_raw1 = Fraction(value_quote) if quote.address == t1 else value_quote * price_raw
            a0, a1 = _position_amounts(price_raw, 1.0001**lo, 1.0001**hi, value_raw1)
            if t0 == weth:
                weth_needed += a0
            if t1 == weth:
                weth_needed += a1
            v3_txs.append(("NonfungiblePositionManager", npm, "mint",
                           ((t0, t1, vs.fee, lo, hi, a0, a1, 0, 0, deployer, FAR_FUTURE_DEADLINE),)))
        pools.append(Pool(address=v3_pool_address(v3_factory, t0, t1, vs.fee), venue=spec.v3_name, kind="v3",
                          token0=t0, token1=t1, fee=vs.fee, tick_spacing=spacing,
                          symbol0=by_addr[t0].symbol, symbol1=by_addr[t1].symbol))

    # -- V4 pools and positions ----------------------------------------------------------------
    v4_pools: list[V4Pool] = []
    v4_txs: list[tuple[str, str, str, tuple[object, ...], int]] = []
    if v4 is not None:
        v4_txs.append(("PoolManager", v4.pool_manager, "setProtocolFeeController", (deployer,), GAS_SMALL))
    for ps in spec.v4 if v4 is not None else ():
        assert v4 is not None
        base, quote = tokens[ps.base], tokens[ps.quote]
        t0, t1 = sort_tokens(base.address, quote.address)
        d0, d1 = by_addr[t0].decimals, by_addr[t1].decimals
        price01 = Fraction(ps.price) if t0 == base.address else 1 / Fraction(ps.price)
        sqrt_p = price_to_sqrt_price_x96(price01, d0, d1)
        hooks = to_checksum_address(V4_HOOKS[ps.hook][1] if ps.hook else ZERO_ADDRESS)
        key = (t0, t1, ps.fee, ps.tick_spacing, hooks)
        v4_txs.append(("PoolManager", v4.pool_manager, "initialize", (key, sqrt_p), GAS_V4_INITIALIZE))
        if ps.protocol_fee:
            v4_txs.append(("PoolManager", v4.pool_manager, "setProtocolFee", (key, ps.protocol_fee), GAS_SMALL))
        price_raw = Fraction(sqrt_p**2, 2**192)
        for i, pos in enumerate(ps.positions):
            lo = usable_tick(tick_at_price(price01 * Fraction(pos.lower), d0, d1), ps.tick_spacing)
            hi = usable_tick(tick_at_price(price01 * Fraction(pos.upper), d0, d1), ps.tick_spacing)
            if hi <= lo:
                hi = lo + ps.tick_spacing
            value_quote = _units(pos.value, quote.decimals)
            value_raw1 = Fraction(value_quote) if quote.address == t1 else value_quote * price_raw
            liquidity, a0, a1 = _position_liquidity(price_raw, 1.0001**lo, 1.0001**hi, value_raw1)
            weth_needed += a0 if t0 == weth else a1 if t1 == weth else 0
            v4_txs.append(("V4DevnetRouter", v4.router, "modifyLiquidity",
                           (key, (lo, hi, liquidity, i.to_bytes(32, "big"))), GAS_V4_MODIFY))
        pid = PoolKey.of(t0, t1, ps.fee, ps.tick_spacing, hooks).to_id()
        v4_pools.append(V4Pool(pool_id="0x" + pid.hex(), venue=v4.name, token0=t0, token1=t1, fee=ps.fee,
                               tick_spacing=ps.tick_spacing, hooks=hooks, symbol0=by_addr[t0].symbol,
                               symbol1=by_addr[t1].symbol, hook_name=ps.hook))

    bridge_weth = bridge.liquidity.get(tokens[spec.tokens[0].symbol].symbol, 0) if bridge else 0
    plan.call("WETH9", weth, "deposit", value=weth_needed + bridge_weth + 10**18, gas=GAS_SMALL)
    if bridge is not None:
        for sym, amount in bridge.liquidity.items():
            tok = tokens[sym]
            plan.call("DevToken", tok.address, "transfer", bridge.address, amount, label=f"bridge liquidity {sym}")
    for art, to, fn, args in liquidity_txs:
        plan.call(art, to, fn, *args, gas=GAS_ADD_LIQUIDITY_NEW_PAIR, label=f"v2 {fn}")
    for art, to, fn, args in v3_txs:
        gas = GAS_CREATE_POOL if fn == "createAndInitializePoolIfNecessary" else GAS_MINT
        plan.call(art, to, fn, *args, gas=gas, label=f"v3 {fn}")
    for art, to, fn, args, gas in v4_txs:
        plan.call(art, to, fn, *args, gas=gas, label=f"v4 {fn}")

    # -- funded dev accounts -------------------------------------------------------------------
    funded = tuple(accounts[1: 1 + spec.funded_accounts])
    for acct in funded:
        client.set_eth_balance(acct, _units(spec.fund_eth, 18) + _units(dict(spec.fund_amounts).get("WETH", "0"), 18))
        for sym, amount in spec.fund_amounts:
            tok = tokens[sym]
            if tok.address == weth:
                plan.call("WETH9", weth, "deposit", value=_units(amount, 18), sender=acct)
            else:
                plan.call("DevToken", tok.address, "mint", acct, _units(amount, tok.decimals))
            for s in spenders:
                plan.call("DevToken", tok.address, "approve", s, MAX_UINT256, sender=acct)

    # -- Balancer V2 Vault and Curve pools (last: the addresses above stay where they were) ------
    balancer_vault: str | None = None
    if spec.balancer_funds:
        authorizer = plan.deploy("BalancerAuthorizer", deployer, label="deploy Balancer Authorizer")
        balancer_vault = plan.deploy("BalancerVault", authorizer, weth, BALANCER_PAUSE_WINDOW,
                                     BALANCER_BUFFER_PERIOD, label="deploy Balancer Vault")
        plan.txs[-1] = Tx(deployer, None, plan.txs[-1].data, gas=GAS_DEPLOY_BALANCER_VAULT, label=plan.txs[-1].label)
        for sym, amount in spec.balancer_funds:
            tok = tokens[sym]
            if tok.address == weth:
                plan.call("WETH9", weth, "deposit", value=_units(amount, 18), gas=GAS_SMALL)
                plan.call("WETH9", weth, "transfer", balancer_vault, _units(amount, 18))
            else:
                plan.call("DevToken", tok.address, "mint", balancer_vault, _units(amount, tok.decimals))
    curve_pools: list[CurvePool] = []
    for cs in spec.curve:
        coins = tuple(tokens[c] for c in cs.coins)
        rates = tuple(10 ** (36 - t.decimals) for t in coins)
        addr = plan.deploy("StableSwapDevnet", [t.address for t in coins], list(rates), cs.amp, cs.fee, cs.admin_fee,
                           label=f"deploy Curve {'/'.join(cs.coins)}")
        amounts = [_units(b, t.decimals) for b, t in zip(cs.balances, coins)]
        for t, amount in zip(coins, amounts):
            if t.address == weth:
                plan.call("WETH9", weth, "deposit", value=amount, gas=GAS_SMALL)
            plan.call("DevToken", t.address, "approve", addr, amount)
        plan.call("StableSwapDevnet", addr, "seed", amounts, gas=GAS_MINT)
        curve_pools.append(CurvePool(address=addr, venue=spec.curve_name, coins=tuple(t.address for t in coins),
                                     symbols=cs.coins, rates=rates, amp=cs.amp, fee=cs.fee, admin_fee=cs.admin_fee))

    client.send_many(plan.txs)
    return ChainDeployment(
        chain_id=chain_id,
        rpc_url=url,
        ws_url=ws,
        deployer=deployer,
        accounts=tuple(accounts),
        tokens=tuple(tokens.values()),
        weth=weth,
        v2=tuple(v2),
        v3=v3,
        pools=tuple(pools),
        deploy_block=client.block_number(),
        block_time=block_time,
        anvil_pid=anvil_pid,
        funded_accounts=funded,
        extra={"transactions": len(plan.txs), "funded_accounts": list(funded)},
        v4=v4,
        v4_pools=tuple(v4_pools),
        bridge=bridge,
        balancer_vault=balancer_vault,
        curve_pools=tuple(curve_pools),
    )


def _sym(tokens: dict[str, Token], addr: str) -> str:
    return next(t.symbol for t in tokens.values() if t.address.lower() == addr.lower())


# --------------------------------------------------------------------------------------------
# anvil + deployment in one go
# --------------------------------------------------------------------------------------------
@dataclass
class Devnet:
    """A running anvil with the market deployed: ``anvil``, ``deployment``, ``client``."""

    anvil: AnvilProcess
    deployment: ChainDeployment
    client: DevnetClient
    deploy_seconds: float

    @property
    def rpc(self) -> SyncHttpRpc:
        return self.client.rpc

    def close(self) -> None:
        self.client.rpc.close()
        self.anvil.stop()


def start_devnet(
    chain_id: int = DEFAULT_CHAIN_ID,
    *,
    port: int | None = None,
    block_time: float | None = None,
    spec: DevnetSpec = DEFAULT_SPEC,
    log_path: str | None = None,
) -> Devnet:
    """Start anvil and deploy ``spec`` on it. Call ``.close()`` (or use :func:`devnet`)."""
    node = AnvilProcess(chain_id=chain_id, port=port, block_time=block_time, log_path=log_path).start()
    try:
        t0 = time.perf_counter()
        rpc = node.rpc()
        dep = deploy(rpc, spec=spec, rpc_url=node.rpc_url, ws_url=node.ws_url, anvil_pid=node.pid,
                     block_time=block_time)
        elapsed = time.perf_counter() - t0
        return Devnet(node, dep, DevnetClient(dep, rpc), elapsed)
    except BaseException:
        node.stop()
        raise


@contextmanager
def devnet(chain_id: int = DEFAULT_CHAIN_ID, **kw: object) -> Iterator[Devnet]:
    """``with devnet() as net: net.client.v2_swap_exact_in(...)`` - anvil stops on exit."""
    net = start_devnet(chain_id, **kw)  # type: ignore[arg-type]
    try:
        yield net
    finally:
        net.close()
