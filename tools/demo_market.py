"""Drive devnet market activity from real history.

The real USDC/WETH swap sequence of 2024-01-05 on Uniswap V3's 0.05 % pool
(``tests/data/uniswap-v3-usdc-weth-2024-01-05``, Apache-2.0, see its README) is
replayed, swap by swap and in order, as trades on ONE devnet venue: the V3
WETH/USDC 0.05 % pool. Every other venue lags, so real-shaped arbitrage
appears between it and the V2 venues and the other V3 fee tiers.

Scaling: each real swap is resized by ``L_devnet / L_real`` (the devnet
pool's in-range liquidity over the real pool's at that swap, both read from the
data/chain), times ``amplify``. With ``amplify = 1`` the devnet price moves by
the same relative amount the real one did; the default amplifies the day's
moves so a five-minute demo shows as much price action as hours of the real
day. Direction is the real one: USDC in when the real pool received USDC.
All amounts are integers; the scale is a ``Fraction``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from collectors.evm.decode import LogDecoder
from collectors.replay.source import read_csv_logs
from protocol import PoolId, V3Swap, Venue, VenueKind

DATA_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "uniswap-v3-usdc-weth-2024-01-05"
REAL_POOL = "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640"  # USDC/WETH 0.05 %
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


@dataclass(frozen=True, slots=True)
class RealSwap:
    block_number: int
    usdc_delta: int  # pool's USDC balance change (positive: USDC went in)
    weth_delta: int
    liquidity: int  # pool liquidity after the swap (the range the swap traded in)


def real_swaps(path: Path | None = None) -> Iterator[RealSwap]:
    """The real 0.05 % pool's swaps of 2024-01-05, in chain order."""
    path = path or next(DATA_DIR.glob(f"ethereum-{REAL_POOL}-*.raw.csv"))
    pool = PoolId.of(1, Venue.UNISWAP_V3, VenueKind.UNISWAP_V3, REAL_POOL, USDC, WETH)
    decoder = LogDecoder({REAL_POOL: pool})
    for log in read_csv_logs(path):
        tlv = decoder.decode(log)
        if isinstance(tlv, V3Swap) and tlv.liquidity > 0:
            # USDC is token0 of the real pool (0xa0b8... < 0xc02a...)
            yield RealSwap(tlv.block_number, tlv.amount0, tlv.amount1, tlv.liquidity)


@dataclass(frozen=True, slots=True)
class DevnetTrade:
    token_in: str  # symbol on the devnet
    token_out: str
    amount_in: int


def to_devnet_trade(swap: RealSwap, devnet_liquidity: int, amplify: Fraction) -> DevnetTrade | None:
    """Resize a real swap to the devnet pool; None when it rounds to nothing."""
    scale = Fraction(devnet_liquidity, swap.liquidity) * amplify
    if swap.usdc_delta > 0:
        amount = int(swap.usdc_delta * scale)
        return DevnetTrade("USDC", "WETH", amount) if amount > 0 else None
    amount = int(swap.weth_delta * scale)
    return DevnetTrade("WETH", "USDC", amount) if amount > 0 else None
