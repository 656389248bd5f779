"""Fixtures for the bridge tests: the relay test kit (processes by PID) and nats-servers."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from natskit import NatsCluster, NatsServer, require_nats_server
from relay_testkit import Procs

_RELAYS = Path(__file__).resolve().parents[1] / "relays"
# the relay tests' fixtures (processes killed by PID, logs shown on failure); short_dir is tests/conftest.py's
_spec = importlib.util.spec_from_file_location("relays_test_conftest", _RELAYS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_relays_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_relays_conftest)
procs = _relays_conftest.procs
pytest_runtest_makereport = _relays_conftest.pytest_runtest_makereport


@pytest.fixture
def nats(short_dir: Path) -> Iterator[NatsServer]:
    require_nats_server()
    s = NatsServer(short_dir, "nats").start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def cluster(short_dir: Path) -> Iterator[NatsCluster]:
    require_nats_server()
    c = NatsCluster(short_dir)
    try:
        yield c.start()
    finally:
        c.stop()


__all__ = ["Procs"]
