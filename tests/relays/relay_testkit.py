"""Shared by the tests that run relays or processes: frame builders, subprocess management (by PID), the
three relays served in the test's own process, waiting helpers.  tests/conftest.py puts this directory on
``sys.path``, so any test imports it as ``relay_testkit``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import httpx
import trio

from protocol.header import Domain
from protocol.message import Message, encode
from protocol.system import Heartbeat
from protocol.tlv import UnknownTLV
from relays.server import RelayConfig, serve


def frame(seq: int, *, source_id: int = 7, type_code: int = 250, body: bytes | None = None,
          domain: int = Domain.MARKET_DATA) -> bytes:
    """A data frame whose body carries ``seq`` (64 bytes with the default body)."""
    if body is None:
        body = seq.to_bytes(10, "little")
    return encode(Message(domain=domain, source_id=source_id, source_seq=seq,
                          tlvs=(UnknownTLV(type_code=type_code, body=body),)))


def frames(first: int, last: int, **kw: object) -> bytes:
    return b"".join(frame(s, **kw) for s in range(first, last + 1))  # type: ignore[arg-type]


def heartbeat_frame() -> bytes:
    return encode(Message(domain=Domain.SYSTEM, tlvs=(Heartbeat(epoch=1, head_seq=0),)))


ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


class Procs:
    """Starts subprocesses with logs in a directory; kills every one it started, by PID."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.named: dict[str, subprocess.Popen[bytes]] = {}  # the latest process started under each name
        self.n = 0

    def start(self, name: str, *args: str, nofile: int | None = None) -> subprocess.Popen[bytes]:
        """Start ``python args...``; ``nofile``: its soft RLIMIT_NOFILE (descriptor limit)."""
        self.n += 1
        log = open(self.logdir / f"{self.n:02d}-{name}.log", "wb")
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")

        def limit() -> None:
            if nofile is not None:
                import resource

                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

        p = subprocess.Popen([PY, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                             preexec_fn=limit if nofile is not None else None)
        log.close()
        p.log_path = self.logdir / f"{self.n:02d}-{name}.log"  # type: ignore[attr-defined]
        self.procs.append(p)
        self.named[name] = p
        return p

    def cli(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``alphapulse args...`` (the ``tools.cli`` entry point)."""
        return self.start(name, "-m", "tools.cli", *args)

    def log(self, name: str) -> str:
        """What the process started as ``name`` has written so far."""
        return self.named[name].log_path.read_text(errors="replace")  # type: ignore[attr-defined]

    def relay(self, sock: Path, data: Path, *extra: str, nofile: int | None = None, domain: str = "market_data",
              name: str = "relay") -> subprocess.Popen[bytes]:
        """A relay daemon of ``domain``, once it listens on ``sock``."""
        p = self.start(name, "-m", "tools.cli", "relay", "--domain", domain, "--socket", str(sock),
                       "--data-dir", str(data), *extra, nofile=nofile)
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

    def stop(self, grace: float = 5.0) -> None:
        """End every process this started that still runs: SIGTERM, then SIGKILL after ``grace`` s."""
        stop_processes(self.procs, grace)

    @staticmethod
    def end(p: subprocess.Popen[bytes], grace: float = 10.0) -> int:
        """End one process as :meth:`stop` does; its exit status."""
        stop_processes([p], grace)
        return p.returncode


def stop_processes(procs: Iterable[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM each process still running, wait up to ``grace`` s for each, SIGKILL those still there (by PID)."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def wait_for(what: str | Callable[[], str], check: Callable[[], object], timeout: float = 30.0,
             every: float = 0.05) -> None:
    """Poll ``check()`` until it is true; AssertionError naming ``what`` (or what ``what()`` says then, e.g. a
    process's log) after ``timeout`` s.  A check that cannot be answered yet (a server not listening or still
    starting, a log not written yet: OSError, httpx.HTTPError) counts as false.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")


DOMAINS = (Domain.MARKET_DATA, Domain.SIGNAL, Domain.EXECUTION)


@asynccontextmanager
async def relays_in_process(d: Path) -> AsyncIterator[dict[Domain, str]]:
    """The three relays served in this process (trio) on sockets in ``d``, journals in ``d/data-<domain>``
    without fsync; yields each domain's socket path, and stops them on exit."""
    socks = {}
    async with trio.open_nursery() as n:
        for dom in DOMAINS:
            name = dom.name.lower()
            cfg = RelayConfig(domain=dom, socket_path=str(d / f"{name[:3]}.sock"), data_dir=str(d / f"data-{name}"),
                              fsync="off")
            await n.start(serve, cfg)
            socks[dom] = cfg.socket_path
        try:
            yield socks
        finally:
            n.cancel_scope.cancel()


async def start_cli_process(log: Path, *args: str, append: bool = False) -> trio.Process:
    """``alphapulse args...`` as a trio subprocess with its output in ``log`` (appended to with ``append``, as a
    restarted process does); the caller ends it by PID."""
    with _log_file(log, append) as out:
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        return await trio.lowlevel.open_process([PY, "-m", "tools.cli", *args], cwd=ROOT, stdout=out, stderr=out,
                                                env=env)


def _log_file(log: Path, append: bool) -> BinaryIO:
    return open(log, "ab" if append else "wb")  # a local file, before the process starts: no need for trio's


def relays_toml(socks: Mapping[Domain, str | Path]) -> str:
    """The ``[relays]`` section of a process's configuration for these sockets."""
    return "[relays]\n" + "".join(f'{dom.name.lower()} = "{socks[dom]}"\n' for dom in DOMAINS)


def cpu_wait(pid: int) -> float:
    """Seconds process ``pid`` (its main thread) has spent runnable but waiting for a CPU
    (``run_delay`` of /proc/PID/schedstat); 0 where the kernel does not say."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def wait_listening(sock: Path, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15.0) -> None:
    """Until something listens on ``sock``; AssertionError if ``proc`` exits first, or after ``timeout`` s of
    ``proc``'s own time: time it spent waiting for a CPU does not count. A Python process starting
    under load 40 on 2 cores gets a few % of a CPU: 0.5 s of imports took 16 s (a relay, a bridge
    hosting one), while a hung process is found as soon as before."""
    start = time.monotonic()
    while time.monotonic() - start - (cpu_wait(proc.pid) if proc is not None else 0.0) < timeout:
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




def undecodable_frame(seq: int, *, source_id: int = 7, domain: int = Domain.MARKET_DATA) -> bytes:
    """A 64-byte data frame with a correct header and CRC whose TLV does not decode: its one
    record claims 255 body bytes where 10 remain (what a hostile or buggy producer can send)."""
    from protocol.header import OFF_CHECKSUM, OFF_COVERED

    buf = bytearray(frame(seq, source_id=source_id, domain=domain))
    buf[53] = 255  # the compact record's length byte
    buf[OFF_CHECKSUM : OFF_CHECKSUM + 4] = zlib.crc32(buf[OFF_COVERED:]).to_bytes(4, "little")
    return bytes(buf)


class Changes:
    """Something a test waits on: the code under watch calls ``notify()`` after each change, the test
    ``await until(predicate)`` -- re-checked at every change, never polled, bounded by ``limit``."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def until(self, predicate: Callable[[], object], limit: float) -> None:
        with trio.fail_after(limit):
            while not predicate():
                await self._event.wait()


def record_pushes(relay: object) -> list[str]:
    """The names of the connections a running relay pushes to, in order (it still pushes)."""
    pushed: list[str] = []
    push = relay._push  # type: ignore[attr-defined]

    def recording_push(conn):  # type: ignore[no-untyped-def]
        pushed.append(conn.name)
        push(conn)

    relay._push = recording_push  # type: ignore[attr-defined]
    return pushed
