"""Built-in chain defaults (chain id, gas token, main AMM factories) and venue names.

Sources of the factory addresses (checked when this file was written):

* Uniswap V2 factories: https://docs.uniswap.org/contracts/v2/reference/smart-contracts/v2-deployments
* Uniswap V3 factories: https://github.com/Uniswap/v3-periphery/blob/main/deploys.md (Ethereum, Polygon,
  Arbitrum share 0x1F98...) and https://docs.uniswap.org/contracts/v3/reference/deployments (Base, BNB)
* Uniswap V4 PoolManagers (the singleton every V4 pool lives in; kept as the venue's "factory"):
  https://docs.uniswap.org/contracts/v4/deployments (Ethereum and Base here)
* PancakeSwap V2 factory (BSC): https://developer.pancakeswap.finance/contracts/v2/addresses; its
  pairs charge 0.25 % (the SDK's 9975/10000), and emit the same Sync/Swap/Mint/Burn events as Uniswap V2.

Left out on purpose: PancakeSwap V3 (its Swap event has two extra fields, so a different topic0 that
``collectors.evm.decode`` does not decode), Sushiswap and other forks (not verified here).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.ids import Venue, VenueKind
from runtime.config import Config


@dataclass(frozen=True, kw_only=True, slots=True)
class VenueInfo:
    """A venue name as written in config files -> protocol venue code, AMM family, V2 fee."""

    name: str
    venue: int
    kind: VenueKind
    v2_fee_ppm: int = 3000  # V2 pairs have no fee() getter: the venue's fixed fee, in pips


VENUES: dict[str, VenueInfo] = {
    v.name: v
    for v in (
        VenueInfo(name="uniswap_v2", venue=Venue.UNISWAP_V2, kind=VenueKind.UNISWAP_V2),
        VenueInfo(name="uniswap_v3", venue=Venue.UNISWAP_V3, kind=VenueKind.UNISWAP_V3),
        VenueInfo(name="sushiswap", venue=Venue.SUSHISWAP, kind=VenueKind.UNISWAP_V2),
        VenueInfo(name="uniswap_v4", venue=Venue.UNISWAP_V4, kind=VenueKind.UNISWAP_V4),
        VenueInfo(name="pancakeswap_v2", venue=Venue.PANCAKESWAP_V2, kind=VenueKind.UNISWAP_V2, v2_fee_ppm=2500),
        # classic two-coin Curve StableSwap pools, by address (collectors/evm/curve.py); no factory
        VenueInfo(name="curve", venue=Venue.CURVE, kind=VenueKind.CURVE),
        # the devnet's venues (tools/devnet deployment files name them like this)
        VenueInfo(name="uniswap_v2_a", venue=Venue.DEVNET_V2_A, kind=VenueKind.UNISWAP_V2),
        VenueInfo(name="uniswap_v2_b", venue=Venue.DEVNET_V2_B, kind=VenueKind.UNISWAP_V2),
        VenueInfo(name="devnet_v3", venue=Venue.DEVNET_V3, kind=VenueKind.UNISWAP_V3),
        VenueInfo(name="devnet_v4", venue=Venue.DEVNET_V4, kind=VenueKind.UNISWAP_V4),
    )
}

#: devnet deployment venue name -> our venue name (the devnet's V3 venue is called "uniswap_v3", its V4
#: venue "uniswap_v4", its Curve pools' "curve_stableswap")
DEVNET_VENUES = {"uniswap_v2_a": "uniswap_v2_a", "uniswap_v2_b": "uniswap_v2_b", "uniswap_v3": "devnet_v3",
                 "uniswap_v4": "devnet_v4", "curve_stableswap": "curve"}


class Factory(Config):
    venue: str  # a key of VENUES
    address: str  # for a V4 venue: its PoolManager


class ChainDefaults(Config):
    name: str
    chain_id: int
    gas_token: str
    factories: tuple[Factory, ...]


def _chain(name: str, chain_id: int, gas_token: str, **factories: str) -> ChainDefaults:
    """``factories``: venue name (a key of VENUES) -> factory address."""
    return ChainDefaults(name=name, chain_id=chain_id, gas_token=gas_token,
                         factories=tuple(Factory(venue=v, address=a) for v, a in factories.items()))


_UNI_V3 = "0x1F98431c8aD98523631AE4a59f267346ea31F984"  # Ethereum, Polygon and Arbitrum share it

BUILTIN_CHAINS: dict[str, ChainDefaults] = {
    c.name: c
    for c in (
        _chain("ethereum", 1, "ETH", uniswap_v2="0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f", uniswap_v3=_UNI_V3,
               uniswap_v4="0x000000000004444c5dc75cB358380D2e3dE08A90"),
        _chain("polygon", 137, "POL", uniswap_v2="0x9e5A52f57b3038F1B8EeE45F28b3C1967e22799C", uniswap_v3=_UNI_V3),
        _chain("arbitrum", 42161, "ETH", uniswap_v2="0xf1D7CC64Fb4452F05c498126312eBE29f30Fbcf9", uniswap_v3=_UNI_V3),
        _chain("base", 8453, "ETH",
               uniswap_v2="0x8909Dc15e40173Ff4699343b6eB8132c65e18eC6",
               uniswap_v3="0x33128a8fC17869897dcE68Ed026d694621f6FDfD",
               uniswap_v4="0x498581fF718922c3f8e6A244956aF099B2652b2b"),
        _chain("bsc", 56, "BNB",
               uniswap_v2="0x8909Dc15e40173Ff4699343b6eB8132c65e18eC6",
               uniswap_v3="0xdB1d10011AD0Ff90774D0C6Bb92e5C5c8b4461F7",
               pancakeswap_v2="0xcA143Ce32Fe78f1f7019d7d551a6402fC5350c73"),
    )
}
