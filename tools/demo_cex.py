"""``alphapulse demo --cex``: a centralised exchange leads, the devnet's WETH/USDC follows with a lag.

What ``--cex`` adds to the demo (``tools/demo.py``):

1. **The Binance stand-in** (``tools/cex_standin``, ``alphapulse standin binance``) replaying the real
   2021-04-04 ETHUSDT capture (``tests/data/cex-ws-samples``, cryptofeed's BSD-style licence, see its README)
   as the market: its prices mapped onto the devnet's level (``replay.PriceMap``: the capture's first best bid
   becomes the devnet V3 0.05 % pool's price, and every move is multiplied by ``amplify``, because ETH moved
   only ~11 bps in those 91 s; sizes are multiplied by it too, so the book holds about as much within N bps
   of its mid as the real one did), event times from the stand-in's clock, lap after lap (each lap's end is a
   disconnect the collector recovers from), and a paper exchange for signed orders whose keys are in two
   0600 files (never in a config, an environment or a log).
2. **The Binance collector** (``alphapulse collector binance``) on it, publishing the ETHUSDT book on the
   market-data relay.
3. **A ``[[cex_dex]]`` table** in the strategy's configuration: Binance's ETHUSDT is the devnet's WETH/USDC
   (the asset identity comes from configuration; USDT is taken as USDC), with the CEX taker fee, a minimum
   net profit in USDC and the inventory one trade may use. The executor gets a ``[cex]`` table (the paper
   exchange, its key files by name, the market), the contract holds the chain inventory the DEX leg trades
   from (moved there from a dev account), and risk watches every venue's inventory and any leg left open.
4. **The market driver follows the CEX** (:func:`follow_cex`, in place of the replay of real Uniswap swaps):
   every ``step`` seconds it moves the devnet's V3 WETH/USDC 0.05 % pool as the CEX mid moved ``lag`` seconds
   earlier, by one swap with the target price as its limit (:func:`follow_target`: the CEX's moves, not its
   level, so what arbitrage did to the pool stays done). The CEX leads, the pool follows ``lag`` behind, and
   the other WETH/USDC pools follow that pool through DEX-DEX arbitrage; whenever the CEX has moved more
   than the fees in ``lag`` seconds, the strategy sees a CEX-DEX opportunity.

The mid the driver follows is the one on the bus (the collector's ``Quote`` records, kept by
:class:`CexTape` from the demo's own market-data consumer), so the DEX follows what the system saw.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from protocol.ids import Venue
from protocol.market import Quote, StateInvalidation
from runtime.files import make_dirs, write_private
from tools.deployment import ProcessEntry
from tools.deployment_writer import process, write_toml

if TYPE_CHECKING:
    from chain.deployment import ChainDeployment
    from tools.devnet.deploy import Devnet

SYMBOL = "ETHUSDT"
BASE_ASSET, QUOTE_ASSET = "ETH", "USDT"
V3_FEE = 500  # the pool that follows the CEX


@dataclass(frozen=True, kw_only=True)
class CexOptions:
    amplify: int = 20  # the capture's moves, multiplied
    lag: float = 5.0  # seconds the devnet's lead pool trails the CEX mid
    step: float = 1.0  # seconds between the driver's moves
    pace: float = 0.02  # seconds per capture frame at the stand-in (~real time: 4,716 frames in 91 s)
    fee_ppm: int = 1000  # Binance's spot taker fee, 0.1 %
    min_net_profit: int = 500_000  # USDC units: 0.5 USDC
    # what each venue holds at start (ETH and WETH in wei, USDT and USDC in 6-decimal units): the paper
    # exchange account, and the contract's own tokens that the DEX leg trades from
    # (a lap of the capture trends ~1.3 % once amplified, and following it on the devnet's pools takes ~130
    # ETH one way before the lap's end turns it back: each venue holds several laps' worth)
    cex_base: int = 1_000 * 10**18
    cex_quote: int = 2_500_000 * 10**6
    chain_base: int = 1_000 * 10**18
    chain_quote: int = 2_500_000 * 10**6
    # the most one trade may use of each (the strategy's [[cex_dex]] inventory): the strategy does not see
    # the balances move, so it sizes each trade within this slice of them and the risk process watches the
    # real balances (its inventory breaker trips when a venue's falls outside [0, 2 x start])
    trade_base: int = 25 * 10**18
    trade_quote: int = 60_000 * 10**6


@dataclass(frozen=True, kw_only=True)
class CexSetup:
    """The demo's CEX side once prepared: where the stand-in listens, its keys, its price map."""

    options: CexOptions
    ws_port: int
    rest_port: int
    key_file: Path
    hmac_file: Path
    price_map: str  # the stand-in's --map-price

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"


def free_port() -> int:
    """A TCP port free on loopback now, for the stand-in to bind a moment later (the demo must write it into
    the collector's and executor's configs first). Another program taking it in between is possible, if
    unlikely: the stand-in then fails to start, its log says why, and a new demo run picks other ports."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lead_pool_price(net: Devnet) -> Fraction:
    """USDC per WETH at the devnet's V3 0.05 % pool now."""
    from tools.devnet.actions import sqrt_price_x96_to_price

    dep = net.deployment
    pool = dep.pool("uniswap_v3", "WETH", "USDC", V3_FEE)
    d0, d1 = dep.token(pool.token0).decimals, dep.token(pool.token1).decimals
    price01 = sqrt_price_x96_to_price(net.client.v3_slot0(pool).sqrt_price_x96, d0, d1)
    return price01 if pool.token0.lower() == dep.address_of("WETH").lower() else 1 / price01


def capture_anchor() -> Decimal:
    """The capture's ETHUSDT best bid in its REST snapshot: the price that becomes the devnet's."""
    from tools.cex_standin.replay import BinanceReplay

    _, snap = BinanceReplay().capture_snapshots[SYMBOL]
    return Decimal(snap["bids"][0][0]).normalize()


def prepare(work: Path, net: Devnet, options: CexOptions) -> CexSetup:
    """Ports, the paper exchange's keys (random, in 0600 files under ``work/cex``) and the price map."""
    from tools.cex_standin.replay import PriceMap

    keys = work / "cex"
    make_dirs(keys)
    key_file, hmac_file = keys / "binance_api_key", keys / "binance_hmac_key"
    write_private(key_file, secrets.token_urlsafe(48) + "\n")
    write_private(hmac_file, secrets.token_urlsafe(48) + "\n")
    price = lead_pool_price(net)
    target = (Decimal(price.numerator) / Decimal(price.denominator)).quantize(Decimal("0.01"))
    # sizes times the amplification too: the book then holds about as much within N bps of its mid as the
    # real one did (stretching the prices alone would thin it out amplify-fold)
    price_map = str(PriceMap(SYMBOL, capture_anchor(), target, options.amplify, options.amplify))
    return CexSetup(options=options, ws_port=free_port(), rest_port=free_port(), key_file=key_file,
                    hmac_file=hmac_file, price_map=price_map)


def processes(setup: CexSetup, cfg_dir: Path, market_data_socket: str) -> list[ProcessEntry]:
    """The stand-in and the Binance collector (its config written to ``cfg_dir/binance.toml``)."""
    o = setup.options
    write_toml(cfg_dir / "binance.toml", {
        "symbols": [SYMBOL],
        "ws_url": setup.ws_url,
        "rest_url": setup.rest_url,
        "relay_socket": market_data_socket,
    })
    return [
        process("binance-standin", [
            "standin", "binance", "--ws-port", str(setup.ws_port), "--rest-port", str(setup.rest_port),
            "--pace", str(o.pace), "--loop", "--live-times", "--map-price", setup.price_map,
            "--paper-files", f"{setup.key_file}:{setup.hmac_file}"]),
        process("collector-binance", ["collector", "binance", "--config", cfg_dir / "binance.toml"],
                after=["relay-market_data", "binance-standin"]),
    ]


def executor_table(dep: ChainDeployment, setup: CexSetup) -> dict[str, Any]:
    """The executor's ``[cex]`` table: the stand-in's paper exchange, the key files by name, the market."""
    o = setup.options
    return {
        "rest_url": setup.rest_url, "key_file": setup.key_file, "hmac_file": setup.hmac_file,
        "markets": [{
            "venue": "BINANCE", "symbol": SYMBOL, "base_asset": BASE_ASSET, "quote_asset": QUOTE_ASSET,
            "base": dep.address_of("WETH"), "base_decimals": dep.token("WETH").decimals,
            "quote": dep.address_of("USDC"), "quote_decimals": dep.token("USDC").decimals, "fee_ppm": o.fee_ppm,
        }],
    }


def risk_tables(dep: ChainDeployment, setup: CexSetup) -> dict[str, Any]:
    """Risk's breakers for the CEX side: each venue's inventory within bounds (start, and at most the whole of
    it spent or doubled), and a CEX leg left open too long."""
    o = setup.options
    assets = [("binance", BASE_ASSET, o.cex_base), ("binance", QUOTE_ASSET, o.cex_quote),
              ("chain", f"{dep.chain_id}:{dep.address_of('WETH')}", o.chain_base),
              ("chain", f"{dep.chain_id}:{dep.address_of('USDC')}", o.chain_quote)]
    return {
        "inventory": {"assets": [{"venue": v, "asset": a, "start": start, "min": 0, "max": 2 * start}
                                 for v, a, start in assets]},
        "leg_open": {"max_open_s": 60.0},
    }


def fund_inventory(net: Devnet, contract: str, setup: CexSetup) -> None:
    """The DEX leg trades from the contract's own tokens (``AlphaPulseArb.swap``): the configured chain
    inventory, minted (USDC) or wrapped (WETH) by a dev account the market driver does not use and sent there
    with plain transfers."""
    o = setup.options
    client, dep = net.client, net.deployment
    donor = dep.funded_accounts[-1]
    for symbol, amount in (("WETH", o.chain_base), ("USDC", o.chain_quote)):
        client.fund(donor, symbol, amount)
        client.transfer(donor, dep.address_of(symbol), contract, amount)


def strategy_table(dep: ChainDeployment, setup: CexSetup) -> dict[str, Any]:
    """The strategy's ``[[cex_dex]]`` table: Binance ETHUSDT is the devnet's WETH/USDC."""
    o = setup.options
    return {
        "venue": "BINANCE", "symbol": SYMBOL, "base_asset": BASE_ASSET, "quote_asset": QUOTE_ASSET,
        "chain_id": dep.chain_id, "base": dep.address_of("WETH"), "quote": dep.address_of("USDC"),
        "base_decimals": dep.token("WETH").decimals, "quote_decimals": dep.token("USDC").decimals,
        "cex_fee_ppm": o.fee_ppm, "min_net_profit": o.min_net_profit,
        "inventory": {"cex_base": o.trade_base, "cex_quote": o.trade_quote, "chain_base": o.trade_base,
                      "chain_quote": o.trade_quote},
    }


# --------------------------------------------------------------------------- the CEX mid, as seen on the bus


@dataclass
class CexTape:
    """The Binance ETHUSDT mids seen on the market-data relay, with when they were seen (monotonic s).

    Appended to by the demo's bus consumer (trio thread), read by the driver (a worker thread): a deque's
    append and a copy of it are atomic enough for a reader that only needs some recent past."""

    horizon: float = 120.0
    mids: deque[tuple[float, Fraction]] = field(default_factory=deque)
    quotes: int = 0
    invalidations: int = 0
    last: Quote | None = None

    def on_records(self, tlvs: Any, now: float) -> None:
        for t in tlvs:
            if isinstance(t, Quote):
                if t.venue == Venue.BINANCE and t.symbol == SYMBOL and t.bid_price and t.ask_price:
                    self.quotes += 1
                    self.last = t
                    self.mids.append((now, Fraction(t.bid_price + t.ask_price, 2 * 10**t.price_scale)))
                    while self.mids and self.mids[0][0] < now - self.horizon:
                        self.mids.popleft()
            elif isinstance(t, StateInvalidation) and t.chain_id == 0:
                self.invalidations += 1

    def mid_at(self, when: float) -> Fraction | None:
        """The last mid seen at or before ``when`` (None before the first)."""
        found = None
        for at, mid in list(self.mids):
            if at > when:
                break
            found = mid
        return found


# --------------------------------------------------------------------------- the market driver


class DriverCounts(Protocol):
    trades: int
    trade_errors: int


MIN_MOVE = Fraction(1, 10_000)  # a smaller move is left to accumulate


def follow_target(pool_now: Fraction, lagged_then: Fraction | None, lagged_now: Fraction) -> Fraction:
    """Where the lead pool goes this step: the CEX mid's move since the last applied step, ``lag`` late, applied
    to where the pool is now (multiplicatively). The first step goes to the lagged mid itself.

    Moving by the CEX's *moves* rather than to its level keeps what arbitrage did to the pool: once a trade
    has brought the pool to the CEX, the next step does not undo it (which would hand the arbitrage the same
    gap again every second, a money pump); the pool only replays, late, how the CEX moved since."""
    if lagged_then is None:
        return lagged_now
    return pool_now * lagged_now / lagged_then


def follow_cex(net: Devnet, trader: str, tape: CexTape, options: CexOptions, stop: threading.Event,
               counts: DriverCounts, say: Callable[[str], None] = print) -> None:
    """Every ``step`` s, move the V3 0.05 % WETH/USDC pool as the CEX mid moved ``lag`` s ago
    (:func:`follow_lead` on the tape of CEX mids; a worker thread)."""
    follow_lead(net, trader, tape.mid_at, step=options.step, lag=options.lag, stop=stop, counts=counts, say=say)


def follow_lead(net: Devnet, trader: str, mid_at: Callable[[float], Fraction | None], *, step: float, lag: float,
                stop: threading.Event, counts: DriverCounts, say: Callable[[str], None] = print,
                to_level: bool = True) -> None:
    """Every ``step`` s, move the V3 0.05 % WETH/USDC pool as the lead price (``mid_at(monotonic time)``, USDC
    per WETH: the CEX mid, or another chain's pool) moved ``lag`` s ago (:func:`follow_target`; a worker thread).
    The first move goes to the lead's level (``to_level``), or, without it, the first lagged price is only
    taken as the reference the later moves are measured from (a price gap there stays until traded away).

    One ``exactInputSingle`` with the target as its price limit: the pool stops there and the router takes
    only what that needs (the amount offered is half the trader's balance of the token going in). A move
    under 1 bp is not made yet: it accumulates into a later one."""
    from tools.devnet.actions import price_to_sqrt_price_x96, sqrt_price_x96_to_price

    dep = net.deployment
    pool = dep.pool("uniswap_v3", "WETH", "USDC", V3_FEE)
    client = net.client
    weth_is_0 = pool.token0.lower() == dep.address_of("WETH").lower()
    d0, d1 = dep.token(pool.token0).decimals, dep.token(pool.token1).decimals
    sym0, sym1 = dep.token(pool.token0).symbol, dep.token(pool.token1).symbol
    applied: Fraction | None = None  # the lagged lead price the pool has followed up to
    while not stop.wait(step):
        lagged = mid_at(time.monotonic() - lag)
        if lagged is None:
            continue
        if applied is None and not to_level:
            applied = lagged
            continue
        now = client.v3_slot0(pool).sqrt_price_x96
        price01 = sqrt_price_x96_to_price(now, d0, d1)
        pool_price = price01 if weth_is_0 else 1 / price01
        goal = follow_target(pool_price, applied, lagged)
        if abs(goal / pool_price - 1) < MIN_MOVE:
            continue
        target = price_to_sqrt_price_x96(goal if weth_is_0 else 1 / goal, d0, d1)
        token_in, token_out = (sym1, sym0) if target > now else (sym0, sym1)  # token1 in raises the price
        try:
            amount = client.balance(trader, token_in) // 2
            client.v3_swap_exact_in(trader, token_in, token_out, V3_FEE, amount, sqrt_price_limit_x96=target)
            counts.trades += 1
            applied = lagged
        except Exception as exc:  # one failed move must not stop the demo
            counts.trade_errors += 1
            if counts.trade_errors <= 3:
                say(f"market driver: move failed: {exc}")
