"""Start and stop local nats-server processes (JetStream, file storage): the bridge tests and
``alphapulse bench bridge`` use these; production servers are configured by the operator (README).

Servers listen on loopback ports only, keep their storage under the given directory, and are
stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = "nats-server is not installed: `apt-get install nats-server` (./run test installs it when it runs as root)"


def find_nats_server() -> str | None:
    """The nats-server binary (Debian installs it in /usr/sbin), or None."""
    return shutil.which("nats-server") or next(
        (p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server") if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """One nats-server with JetStream (file storage under ``workdir``), optionally in a cluster."""

    def __init__(self, workdir: Path, name: str, *, port: int | None = None, cluster_port: int | None = None,
                 routes: list[int] | None = None, auth: str | None = None, env: dict[str, str] | None = None) -> None:
        binary = find_nats_server()
        if binary is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.binary = binary
        self.workdir = workdir
        self.name = name
        self.port = port or free_port()
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.auth = auth
        self.env = env  # extra environment (e.g. GOMAXPROCS)
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = workdir / f"{name}.conf"
        self.log = workdir / f"{name}.log"
        lines = [
            f'server_name: "{name}"',
            f"listen: 127.0.0.1:{self.port}",
            # room for the largest relay frame (1 MiB + header) in one stream message; the default 1 MB is not
            "max_payload: 2MB",
            # JetStream file storage. nats-server 2.9 has no sync_interval: data reaches the OS at
            # once (survives kill -9) and is fsynced every 2 minutes; see specs/relay.md
            f'jetstream {{ store_dir: "{workdir / name}", max_memory_store: 64MB, max_file_store: 1GB }}',
        ]
        if auth:
            user, _, password = auth.partition(":")
            lines.append(f'authorization {{ user: "{user}", password: "{password}" }}')
        if cluster_port:
            route_list = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.routes if p != cluster_port)
            lines.append(f'cluster {{ name: "apt", listen: 127.0.0.1:{cluster_port}, routes: [{route_list}] }}')
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> NatsServer:
        log = open(self.log, "ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **self.env) if self.env else None)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nats-server {self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(5) == b"INFO ":
                        return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nats-server {self.name} not listening on {self.port} after {timeout} s")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill9()


class NatsCluster:
    """Three (or ``n``) clustered nats-servers on loopback; ``url`` lists them all."""

    def __init__(self, workdir: Path, n: int = 3) -> None:
        cports = [free_port() for _ in range(n)]
        self.servers = [NatsServer(workdir, f"n{i + 1}", cluster_port=cports[i], routes=cports) for i in range(n)]

    @property
    def url(self) -> str:
        return ",".join(s.url for s in self.servers)

    def start(self) -> NatsCluster:
        for s in self.servers:
            s.start()
        return self

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


__all__ = ["INSTALL_HINT", "NatsCluster", "NatsServer", "find_nats_server", "free_port"]
