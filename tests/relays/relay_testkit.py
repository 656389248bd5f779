"""Shared by the relay tests: frame builders, subprocess management (by PID), waiting helpers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

from protocol.header import Domain
from protocol.message import Message, encode
from protocol.system import Heartbeat
from protocol.tlv import UnknownTLV


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
        return p

    def relay(self, sock: Path, data: Path, *extra: str, nofile: int | None = None) -> subprocess.Popen[bytes]:
        p = self.start("relay", "-m", "tools.cli", "relay", "--domain", "market_data", "--socket", str(sock),
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




def undecodable_frame(seq: int, *, source_id: int = 7, domain: int = Domain.MARKET_DATA) -> bytes:
    """A 64-byte data frame with a correct header and CRC whose TLV does not decode: its one
    record claims 255 body bytes where 10 remain (what a hostile or buggy producer can send)."""
    from protocol.header import OFF_CHECKSUM, OFF_COVERED

    buf = bytearray(frame(seq, source_id=source_id, domain=domain))
    buf[53] = 255  # the compact record's length byte
    buf[OFF_CHECKSUM : OFF_CHECKSUM + 4] = zlib.crc32(buf[OFF_COVERED:]).to_bytes(4, "little")
    return bytes(buf)
