"""Shared fixtures: a local anvil chain with the official Uniswap contracts (tools/devnet), and a short
temporary directory.

``devnet`` (session): a started anvil + deployed market, a ``tools.devnet.deploy.Devnet`` with
``.deployment`` (ChainDeployment), ``.client`` (DevnetClient), ``.rpc`` and ``.anvil``.
``devnet_snapshot`` (per test): the same devnet, reverted after the test (evm_snapshot/evm_revert),
so tests that trade or add liquidity leave the shared chain as deployed.
Needs node_modules (``./run test`` installs it; or ``npm install``).
``short_dir`` (per test): a fresh directory with a short path (AF_UNIX socket paths are limited to 107 bytes),
removed afterwards unless the environment sets ``KEEP``.

The shared test kits (``relay_testkit``: processes by PID, relays in process, waiting; ``risk_testkit``:
messages for the risk and portfolio tests) are importable from every test directory: the test directories
are not packages, so their directories go on ``sys.path`` here (test basenames are unique).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent
for _kit in ("relays", "risk"):
    if str(_TESTS / _kit) not in sys.path:
        sys.path.insert(0, str(_TESTS / _kit))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ap-", dir="/tmp"))
    try:
        yield d
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(d, ignore_errors=True)


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
