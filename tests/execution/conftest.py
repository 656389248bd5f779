"""Fixtures for the on-chain arbitrage contract tests: a devnet with the official Uniswap V2/V3
contracts, and AlphaPulseArb deployed from its committed artifact.

The chain is the shared session ``devnet`` (tests/conftest.py: anvil from npm with the market
deployed by tools/devnet). Tests run between ``evm_snapshot`` / ``evm_revert``, and the module-level
changes (our deployment) are reverted too, so the shared devnet is left as found.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from arb_testkit import Arb, Chain, Market, market_of
from eth_utils import to_checksum_address

from execution.build import load_artifact
from execution.calldata import Kind, encode_constructor_args, encode_set_factory


@pytest.fixture(scope="module")
def arb_devnet_deployment(devnet: Any) -> Any:
    """The shared devnet's ChainDeployment (``devnet`` fixture in tests/conftest.py)."""
    return devnet.deployment


@pytest.fixture(scope="module")
def chain(arb_devnet_deployment: Any) -> Iterator[Chain]:
    c = Chain(arb_devnet_deployment.rpc_url)
    snap = c.snapshot()  # leave a shared devnet as we found it
    try:
        yield c
    finally:
        c.revert_to(snap)
        c.close()


@pytest.fixture(scope="module")
def market(arb_devnet_deployment: Any) -> Market:
    return market_of(arb_devnet_deployment)


@pytest.fixture(scope="module")
def roles(chain: Chain) -> dict[str, str]:
    acc = chain.accounts()
    # 0 deploys the market, 1-2 are funded traders; the arb's owner and recipient start empty.
    return {"owner": acc[3], "recipient": acc[4], "attacker": acc[5], "stranger": acc[6]}


@pytest.fixture(scope="module")
def arb(chain: Chain, market: Market, roles: dict[str, str], arb_devnet_deployment: Any) -> Arb:
    art = load_artifact()
    code = bytes.fromhex(art["bytecode"][2:]) + encode_constructor_args(roles["recipient"])
    receipt = chain.send(roles["owner"], None, code, gas=10_000_000)
    address = to_checksum_address(receipt["contractAddress"])
    for factory in market.v2_factories.values():
        chain.send(roles["owner"], address, encode_set_factory(factory, Kind.V2))
    chain.send(roles["owner"], address, encode_set_factory(market.v3_factory, Kind.V3))
    if arb_devnet_deployment.v4 is not None:  # the V4 PoolManager: flash lender and V4 hops
        chain.send(roles["owner"], address, encode_set_factory(arb_devnet_deployment.v4.pool_manager, Kind.V4))
    return Arb(address, roles["owner"], roles["recipient"], receipt["gasUsed"])
