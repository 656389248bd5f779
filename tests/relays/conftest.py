"""Fixtures for relay tests: short socket directories and real subprocesses cleaned up by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path (AF_UNIX paths are limited to 107 bytes)."""
    d = Path(tempfile.mkdtemp(prefix="aprt-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Procs:
    """Starts subprocesses with logs in a directory; kills every one it started, by PID."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.n = 0

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.n += 1
        log = open(self.logdir / f"{self.n:02d}-{name}.log", "wb")
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        p = subprocess.Popen([PY, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        p.log_path = self.logdir / f"{self.n:02d}-{name}.log"  # type: ignore[attr-defined]
        self.procs.append(p)
        return p

    def relay(self, sock: Path, data: Path, *extra: str) -> subprocess.Popen[bytes]:
        p = self.start("relay", "-m", "tools.cli", "relay", "--domain", "market_data", "--socket", str(sock),
                       "--data-dir", str(data), *extra)
        wait_listening(sock, p)
        return p

    def loadgen(self, sock: Path, *, rate: int, count: int, source_id: int = 900, size: int = 64) -> subprocess.Popen[bytes]:
        return self.start("loadgen", "-m", "tools.cli", "loadgen", "--domain", "market_data", "--socket", str(sock),
                          "--rate", str(rate), "--count", str(count), "--size", str(size),
                          "--source-id", str(source_id))

    def consumer(self, sock: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
        return self.start(f"consumer-{out.stem}", str(ROOT / "tests/relays/_proc_consumer.py"), "--socket",
                          str(sock), "--out", str(out), *extra)

    @staticmethod
    def kill9(p: subprocess.Popen[bytes]) -> None:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()

    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()


def wait_listening(sock: Path, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"relay exited with {proc.returncode}")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(sock))
            return
        except OSError:
            time.sleep(0.02)
        finally:
            s.close()
    raise AssertionError(f"nothing listening on {sock} after {timeout} s")


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
