"""Builders shared by the market and strategy tests: ids, market-data messages, configs, ground-truth cases."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import protocol as P
from market.amm.tick_math import get_sqrt_ratio_at_tick
from market.params import ChainParams, CurveParams, MarketParams
from protocol.market import TickLiquidity
from strategy.config import ChainConfig, EconomicsConfig, GasConfig, StrategyConfig

CHAIN = 1
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
DAI = "0x6b175474e89094c44da98b954eedeac495271d0f"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
TKA = "0x" + "aa" * 20
TKB = "0x" + "bb" * 20
GWEI = 10**9
ETH = 10**18

DATA = Path(__file__).resolve().parent / "data" / "mev"


def token(addr: str, chain: int = CHAIN) -> P.TokenId:
    return P.TokenId.of(chain, addr)


def pool_address(n: int) -> str:
    return f"0x{n:040x}"


def v2_pool(n: int, a: str, b: str, venue: int = P.Venue.UNISWAP_V2, chain: int = CHAIN) -> P.PoolId:
    return P.PoolId.of(chain, venue, P.VenueKind.UNISWAP_V2, pool_address(n), a, b)


def v3_pool(n: int, a: str, b: str, venue: int = P.Venue.UNISWAP_V3, chain: int = CHAIN) -> P.PoolId:
    return P.PoolId.of(chain, venue, P.VenueKind.UNISWAP_V3, pool_address(n), a, b)


def v4_pool(n: int, a: str, b: str, venue: int = P.Venue.UNISWAP_V4, chain: int = CHAIN) -> P.PoolId:
    """A V4 instrument id (its address field stands for the first 20 bytes of a pool id)."""
    return P.PoolId.of(chain, venue, P.VenueKind.UNISWAP_V4, pool_address(n), a, b)


def v4_snapshot(pool: P.PoolId, *, tick: int, liquidity: int, ticks: dict[int, int], lp_fee: int = 3000,
                spacing: int = 60, block: int = 100, protocol_fee: int = 0) -> tuple[P.TLV, P.TLV]:
    """A V4 snapshot unit as the collector sends it: its V4ProtocolFee, then its PoolSnapshot."""
    snap = v3_snapshot(pool, tick=tick, liquidity=liquidity, ticks=ticks, fee=lp_fee, spacing=spacing, block=block)
    return (P.V4ProtocolFee(pool=pool, block_number=block, log_index=0xFFFFFFFF, protocol_fee=protocol_fee), snap)


def md(*tlvs: P.TLV, seq: int = 1, t: int = 1_000) -> P.Message:
    return P.Message(domain=1, tlvs=tlvs, source_id=7, source_seq=seq, event_time_ns=t, receive_time_ns=t + 1)


def v2_snapshot(pool: P.PoolId, r0: int, r1: int, block: int = 100, fee_ppm: int = 3000) -> P.PoolSnapshot:
    return P.PoolSnapshot(pool=pool, block_number=block, fee_ppm=fee_ppm, tick_spacing=0, reserve0=r0,
                          reserve1=r1, sqrt_price_x96=0, tick=0, liquidity=0, ticks=())


def v3_snapshot(
    pool: P.PoolId, *, tick: int, liquidity: int, ticks: dict[int, int], fee: int = 3000, spacing: int = 60,
    block: int = 100, sqrt_price_x96: int | None = None, balances: tuple[int, int] = (0, 0),
) -> P.PoolSnapshot:
    price = sqrt_price_x96 if sqrt_price_x96 is not None else get_sqrt_ratio_at_tick(tick) + 1
    return P.PoolSnapshot(
        pool=pool, block_number=block, fee_ppm=fee, tick_spacing=spacing, reserve0=balances[0],
        reserve1=balances[1], sqrt_price_x96=price, tick=tick, liquidity=liquidity,
        ticks=tuple(TickLiquidity(tick=t, liquidity_net=n) for t, n in sorted(ticks.items())),
    )


def sync(pool: P.PoolId, r0: int, r1: int, block: int = 101, log_index: int = 0) -> P.V2Reserves:
    return P.V2Reserves(pool=pool, block_number=block, log_index=log_index, reserve0=r0, reserve1=r1)


def header(base_fee: int = 20 * GWEI, priority_fee: int = 1 * GWEI, number: int = 100, chain: int = CHAIN) -> P.BlockHeader:
    return P.BlockHeader(chain_id=chain, number=number, timestamp=1_600_000_000, gas_limit=30_000_000,
                         gas_used=0, hash=bytes(32), parent_hash=bytes(32), base_fee=base_fee,
                         priority_fee=priority_fee)


def config(
    *, bases: Sequence[str] = (WETH,), max_hops: int = 4, slippage_bps: int = 0, min_net: int = 0,
    flash_fee_ppm: int = 0, gas: GasConfig | None = None, **kw: Any,
) -> StrategyConfig:
    chain = ChainConfig(chain_id=CHAIN, gas_token=token(WETH), base_tokens=tuple(token(b) for b in bases),
                        min_net_profit={token(bases[0]): min_net} if min_net else {})
    return StrategyConfig(max_hops=max_hops, chains=(chain,), gas=gas or GasConfig(),
                          economics=EconomicsConfig(slippage_bps=slippage_bps, flash_fee_ppm=flash_fee_ppm), **kw)


def params(*, curve_pools: Sequence[CurveParams] = ()) -> MarketParams:
    """The pool state manager's parameters for chain ``CHAIN`` (gas token WETH, default V2 fees)."""
    return MarketParams(chains=(ChainParams(chain_id=CHAIN, gas_token=token(WETH)),), curve_pools=tuple(curve_pools))


def ground_truth() -> list[dict[str, Any]]:
    with (DATA / "ground_truth_v2_cases.json").open() as fh:
        return json.load(fh)["cases"]


def case_pools(case: dict[str, Any], venues: Sequence[int] | None = None) -> list[tuple[P.PoolId, P.PoolSnapshot]]:
    """The case's pools as ids and V2 snapshots at the pre-trade reserves.

    The reserves are those the bot read inside the case's block (after the previous transaction), so
    the snapshots are stamped with the case's block number: the block the signal is computed at.
    """
    out = []
    for i, hop in enumerate(case["hops"]):
        venue = venues[i] if venues else P.Venue.UNISWAP_V2
        pid = P.PoolId.of(CHAIN, venue, P.VenueKind.UNISWAP_V2, hop["pool"], hop["token0"], hop["token1"])
        fee = 1_000_000 - hop["fee_numerator"] * 1_000_000 // hop["fee_denominator"]
        out.append((pid, v2_snapshot(pid, int(hop["reserve0_before"]), int(hop["reserve1_before"]),
                                     block=case["block_number"], fee_ppm=fee)))
    return out
