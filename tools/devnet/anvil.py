"""Start and stop anvil (foundry's local EVM node) as a child process.

The binary from the npm package ``@foundry-rs/anvil`` is started directly (never ``npx anvil``,
whose PID would be a node wrapper), bound to 127.0.0.1 on a free port. The child:

* runs in its own session, so a Ctrl-C in the terminal reaches only our process, which then
  stops anvil in order;
* gets ``PR_SET_PDEATHSIG = SIGKILL`` (Linux), so it dies with the thread that started it even
  if that process is SIGKILLed. Start anvil from a long-lived thread (the main thread): the
  signal fires when the *spawning thread* exits, so a worker thread that later exits would take
  anvil down with it (``AnvilProcess`` therefore only arms it on the main thread by default);
* is stopped by PID: SIGTERM, then SIGKILL after a grace period. An ``atexit`` hook stops any
  anvil still running when the interpreter exits normally.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from chain.rpc import RpcFailure, SyncHttpRpc

from .paths import ANVIL_RELPATH, DevnetSetupError, require_file

DEFAULT_CHAIN_ID = 31337
PR_SET_PDEATHSIG = 1

_live: dict[int, AnvilProcess] = {}
_live_lock = threading.Lock()


class AnvilError(RuntimeError):
    """anvil failed to start or answer."""


def anvil_binary() -> Path:
    """Path of the anvil executable installed by npm (raises DevnetSetupError if absent)."""
    path = require_file(ANVIL_RELPATH)
    if not os.access(path, os.X_OK):
        raise DevnetSetupError(f"{path} is not executable")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def _arm_and_check(parent_pid: int) -> None:
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


@dataclass(kw_only=True, eq=False, repr=False)
class AnvilProcess:
    """One anvil node. Use as a context manager::

        with AnvilProcess(chain_id=31337) as node:
            rpc = node.rpc()          # chain.rpc.SyncHttpRpc bound to node.rpc_url
            ...

    ``port=None`` picks a free port (retrying if another process grabs it first).
    ``block_time=None`` keeps anvil's default automine (one block per transaction, receipts
    available as soon as ``eth_sendTransaction`` returns); a number mines every N seconds.
    """

    chain_id: int = DEFAULT_CHAIN_ID
    port: int | None = None
    host: str = "127.0.0.1"
    block_time: float | None = None
    accounts: int = 10
    balance_eth: int = 10_000
    extra_args: tuple[str, ...] = ()
    log_path: str | os.PathLike[str] | None = None
    startup_timeout: float = 15.0
    die_with_parent: bool | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.extra_args = tuple(self.extra_args)
        self.log_path = Path(self.log_path) if self.log_path is not None else None

    # -- addresses -----------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        if self.proc is None:
            raise AnvilError("anvil is not running")
        return self.proc.pid

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def rpc(self, *, timeout: float = 30.0) -> SyncHttpRpc:
        return SyncHttpRpc(self.rpc_url, timeout=timeout)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle -----------------------------------------------------------------------------
    def _argv(self, binary: Path, port: int) -> list[str]:
        argv = [
            str(binary),
            "--host", self.host,
            "--port", str(port),
            "--chain-id", str(self.chain_id),
            "--accounts", str(self.accounts),
            "--balance", str(self.balance_eth),
        ]
        if self.block_time is not None:
            argv += ["--block-time", f"{self.block_time:g}"]
        return argv + list(self.extra_args)

    def start(self) -> AnvilProcess:
        if self.is_running():
            return self
        binary = anvil_binary()
        auto_port = self.port is None
        attempts = 5 if auto_port else 1
        last_error: Exception | None = None
        for _ in range(attempts):
            port = free_port(self.host) if auto_port else int(self.port)  # type: ignore[arg-type]
            try:
                self._spawn(binary, port)
                return self
            except AnvilError as exc:
                last_error = exc
                self.stop()
        if auto_port:
            self.port = None
        raise AnvilError(f"anvil did not start after {attempts} attempt(s): {last_error}")

    def _spawn(self, binary: Path, port: int) -> None:
        self.port = port
        if self.log_path is not None:
            Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        else:
            self._log = tempfile.TemporaryFile()
        arm = self.die_with_parent
        if arm is None:
            arm = threading.current_thread() is threading.main_thread()
        preexec: Any = None
        if arm:
            parent = os.getpid()
            preexec = lambda: _arm_and_check(parent)  # noqa: E731
        self.proc = subprocess.Popen(
            self._argv(binary, port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
        )
        with _live_lock:
            _live[self.proc.pid] = self
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout
        with self.rpc(timeout=1.0) as rpc:
            while True:
                if self.proc.poll() is not None:
                    raise AnvilError(f"anvil exited with code {self.proc.returncode}: {self.log_tail()}")
                try:
                    chain_id = rpc.call("eth_chainId")
                    if int(chain_id, 16) != self.chain_id:
                        raise AnvilError(f"port {self.port} answers with chain id {chain_id}, "
                                         f"not {self.chain_id} (another node?)")
                    return
                except (RpcFailure, ValueError, TypeError):
                    pass
                if time.monotonic() > deadline:
                    raise AnvilError(f"anvil not ready after {self.startup_timeout}s: {self.log_tail()}")
                time.sleep(0.01)

    def log_tail(self, limit: int = 2000) -> str:
        if self._log is None:
            return ""
        try:
            self._log.flush()
            if self.log_path is not None:
                data = Path(self.log_path).read_bytes()
            else:
                self._log.seek(0)
                data = self._log.read()
        except (OSError, ValueError):
            return ""
        return data[-limit:].decode("utf-8", "replace").strip()

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout)
            finally:
                with _live_lock:
                    _live.pop(proc.pid, None)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> AnvilProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.proc.pid}" if self.proc is not None else "stopped"
        return f"AnvilProcess(chain_id={self.chain_id}, url={self.rpc_url}, {state})"


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        nodes = list(_live.values())
    for node in nodes:
        try:
            node.stop(timeout=1.0)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass
