"""Fixtures for relay tests: real subprocesses cleaned up by PID, in ``short_dir`` (tests/conftest.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from relay_testkit import Procs


@pytest.fixture
def procs(short_dir: Path, request: pytest.FixtureRequest) -> Iterator[Procs]:
    ps = Procs(short_dir)
    try:
        yield ps
    finally:
        ps.cleanup()
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            for f in sorted(short_dir.glob("*.log")):
                sys.stderr.write(f"==== {f.name}\n{f.read_text(errors='replace')[-4000:]}\n")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep
