"""Shared fixtures: a local anvil chain with the official Uniswap contracts (tools/devnet).

``devnet`` (session): a started anvil + deployed market, a ``tools.devnet.deploy.Devnet`` with
``.deployment`` (ChainDeployment), ``.client`` (DevnetClient), ``.rpc`` and ``.anvil``.
``devnet_snapshot`` (per test): the same devnet, reverted after the test (evm_snapshot/evm_revert),
so tests that trade or add liquidity leave the shared chain as deployed.
Needs node_modules (``./run test`` installs it; or ``npm install``).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def devnet():
    from tools.devnet.deploy import start_devnet
    from tools.devnet.paths import DevnetSetupError

    try:
        net = start_devnet()
    except DevnetSetupError as exc:
        pytest.fail(f"devnet unavailable: {exc}", pytrace=False)
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def devnet_snapshot(devnet):
    snapshot_id = devnet.client.snapshot()
    try:
        yield devnet
    finally:
        devnet.client.revert(snapshot_id)
