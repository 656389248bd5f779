"""``alphapulse up --config FILE`` / ``alphapulse down``: run a deployment's processes.

Theory of operation
-------------------
A deployment file (TOML, see ``tools/deployment.py``) lists processes, each an
``alphapulse`` subcommand with its arguments, what it depends on, and how to
tell it is ready (a Unix socket accepting connections, a file existing, or a line in its log written
since it was started: ``ready_log``).
The supervisor:

* starts processes in dependency order, each only once its dependencies are ready;
* restarts a process that exits on its own, with exponential backoff (1 s, 2 s,
  4 s ... capped at 30 s; the delay resets after 60 s of healthy running);
* on SIGTERM / SIGINT (Ctrl-C) stops everything in reverse dependency order:
  SIGTERM, then SIGKILL after a grace period;
* leaves no orphan: every child gets ``PR_SET_PDEATHSIG(SIGTERM)``, so even a
  ``kill -9`` of the supervisor takes its children down. The signal fires when the
  *thread* that forked the child exits, so children are forked from the main thread
  (``subprocess.Popen`` called directly, not ``trio.open_process``, which forks from
  a worker thread that trio retires after a few idle seconds -- taking the child with it);
* starts each child at its scheduling niceness (the deployment's ``nice``, by default its kind's:
  ``tools/deployment.py``), set in the child before it execs, so the program and every thread it
  starts run at it from the first instruction (Linux keeps a niceness per thread: a ``renice`` of a
  running child would reach its main thread only). A niceness below the supervisor's own needs
  CAP_SYS_NICE; without it the child keeps the supervisor's, and the start line says so. The start
  line shows every niceness that is not 0, read back from the child;
* reports what it is doing on stderr, one line per event;
* writes its PID to ``<run_dir>/supervisor.pid`` for ``alphapulse down``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import trio

from .deployment import ProcessSpec, load_from_args

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 60.0
STOP_GRACE = 10.0
READY_TIMEOUT = 60.0

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _child_setup(nice: int | None) -> Callable[[], None]:
    """What the child runs between fork and exec: the parent-death signal, then its niceness (``None``: the
    parent's). Lowering the niceness may be refused (no CAP_SYS_NICE): the child then keeps the parent's, which
    the caller reads back -- an exception here would only reach the parent as an opaque ``SubprocessError``."""
    def setup() -> None:
        _die_with_parent()
        if nice is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, nice)
            except OSError:
                pass
    return setup


def niceness_of(pid: int) -> int | None:
    """The scheduling niceness of process ``pid`` (its main thread's), None once it is gone."""
    try:
        return os.getpriority(os.PRIO_PROCESS, pid)
    except OSError:
        return None


# Where the supervisor reports; the demo points it at a file while a dashboard owns the terminal.
log_stream: TextIO | None = None


def log(msg: str) -> None:
    print(f"[supervisor {time.strftime('%H:%M:%S')}] {msg}", file=log_stream or sys.stderr, flush=True)


def is_ready(spec: ProcessSpec, log_from: int = 0) -> bool:
    """Whether ``spec``'s process is ready: its socket accepts, its file exists, or its log shows ``ready_log``
    after byte ``log_from`` (where the log ended when this run of it was started); else ready at once."""
    if spec.ready_socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(spec.ready_socket)
            return True
        except OSError:
            return False
        finally:
            s.close()
    if spec.ready_file:
        return Path(spec.ready_file).exists()
    if spec.ready_log:
        try:
            with open(spec.log_file, "rb") as f:
                f.seek(log_from)
                return spec.ready_log.encode() in f.read()
        except OSError:
            return False
    return True


def log_size(path: str) -> int:
    """The size of a process's log file (0 without one): where what its next run writes begins."""
    try:
        return os.path.getsize(path) if path else 0
    except OSError:
        return 0


POLL = 0.05  # seconds between exit checks of a child


async def wait_exit(proc: subprocess.Popen[bytes]) -> int:
    while (code := proc.poll()) is None:  # noqa: ASYNC110 - a Popen has no awaitable exit event
        await trio.sleep(POLL)
    return code


@dataclass
class Child:
    spec: ProcessSpec
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    stopping: bool = False
    ready: trio.Event = field(default_factory=trio.Event)
    log_from: int = 0  # where its log ended when its current run was started (``ready_log`` is looked for after)


def spawn(argv: list[str], *, log_file: str | Path | None = None, env: dict[str, str] | None = None,
          cwd: str | Path | None = None, nice: int | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` with ``PR_SET_PDEATHSIG(SIGTERM)``, stdout and stderr appended to ``log_file``, at
    niceness ``nice`` (``None``: this process's; set before exec, so every thread of the child has it).

    Call it from the main thread (any trio task is): the parent-death signal fires when the *thread*
    that forked the child exits, and ``trio.lowlevel.open_process`` forks from a worker thread that
    trio retires after a few idle seconds, killing the child with it. Wait with ``wait_exit``."""
    out = open(log_file, "ab") if log_file else None  # noqa: SIM115 - handed to the child, closed below
    try:
        return subprocess.Popen(argv, env=env, cwd=cwd, preexec_fn=_child_setup(nice), stdout=out,
                                stderr=out if out else None)
    finally:
        if out:
            out.close()


def last_error_line(log_file: str | Path | None, *, max_bytes: int = 16384) -> str | None:
    """The last line of a process's log that reads like an error (a traceback's final line, or a line
    with ``error``/``Error``), else its last non-empty line; ``None`` without a log."""
    if not log_file:
        return None
    try:
        with open(log_file, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return None
    for line in reversed(lines):
        if "error" in line.lower() or "exception" in line.lower():
            return line
    return lines[-1] if lines else None


class Supervisor:
    def __init__(self, specs: list[ProcessSpec], *, max_restarts: int | None = None,
                 handle_signals: bool = True, backoff_max: float = BACKOFF_MAX) -> None:
        """``handle_signals=False``: the caller owns SIGINT/SIGTERM and calls ``stop_all`` itself.
        ``backoff_max``: the longest wait before a restart (``alphapulse chaos`` keeps it short: it
        kills every component again and again, never giving one the healthy minute that resets it)."""
        self.children = {s.name: Child(s) for s in specs}
        self.backoff_max = backoff_max
        for s in specs:
            if s.log_file:
                Path(s.log_file).parent.mkdir(parents=True, exist_ok=True)
        self.max_restarts = max_restarts
        self.handle_signals = handle_signals
        self.stopping = False

    def command(self, spec: ProcessSpec) -> list[str]:
        return [sys.executable, "-m", "tools.cli", *spec.args]

    async def _wait_ready(self, child: Child) -> None:
        """Until the child is ready (its dependents start then) or exits; said once if it takes longer than
        ``READY_TIMEOUT``, and still waited for: a loaded machine's slow start is not a reason for what depends
        on it never to start."""
        deadline: float | None = trio.current_time() + READY_TIMEOUT
        while not is_ready(child.spec, child.log_from):
            if child.proc is not None and child.proc.poll() is not None:
                return
            if deadline is not None and trio.current_time() > deadline:
                log(f"{child.spec.name}: not ready after {READY_TIMEOUT:.0f} s; still waiting")
                deadline = None
            await trio.sleep(0.05)
        child.ready.set()
        log(f"{child.spec.name}: ready")

    async def run_child(self, child: Child) -> None:
        spec = child.spec
        for dep in spec.after:
            await self.children[dep].ready.wait()
        backoff = BACKOFF_START
        env = dict(os.environ, **spec.env)
        while not (self.stopping or child.stopping):
            started = trio.current_time()
            # forked from this (the main) thread on purpose: see the module docstring
            child.log_from = log_size(spec.log_file)
            child.proc = spawn(self.command(spec), log_file=spec.log_file, env=env, nice=spec.niceness)
            log(f"{spec.name}: started pid {child.proc.pid}{_nice_note(spec.niceness, child.proc.pid)}: "
                f"{' '.join(spec.args)}")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._wait_ready, child)
                await wait_exit(child.proc)
                nursery.cancel_scope.cancel()
            code = child.proc.returncode
            if self.stopping or child.stopping:
                return  # stop_all reports it
            if code == 0 and spec.oneshot:
                log(f"{spec.name}: finished")
                return
            child.restarts += 1
            why = last_error_line(spec.log_file)
            why = f": {why}" if why else ""
            if self.max_restarts is not None and child.restarts > self.max_restarts:
                log(f"{spec.name}: exited {code}{why}; restart limit {self.max_restarts} reached, giving up")
                return
            if trio.current_time() - started > HEALTHY_AFTER:
                backoff = BACKOFF_START
            log(f"{spec.name}: exited {code}; restart #{child.restarts} in {backoff:.0f} s{why}")
            await trio.sleep(min(backoff, self.backoff_max))
            backoff = min(backoff * 2, self.backoff_max)

    async def stop_all(self) -> None:
        self.stopping = True
        for name in reversed(order(list(c.spec for c in self.children.values()))):
            await self.stop(name)

    async def stop(self, name: str) -> None:
        """Stop one process for good (not restarted): SIGTERM, SIGKILL after the grace period. The demo stops
        the processes that trade first and lets the books catch up before it stops the rest."""
        child = self.children[name]
        child.stopping = True
        proc = child.proc
        if proc is None or proc.poll() is not None:
            return
        log(f"{name}: SIGTERM")
        proc.send_signal(signal.SIGTERM)
        with trio.move_on_after(STOP_GRACE):
            await wait_exit(proc)
        if proc.poll() is None:
            log(f"{name}: still running after {STOP_GRACE:.0f} s, SIGKILL")
            proc.kill()
            await wait_exit(proc)
        log(f"{name}: stopped (exit {proc.returncode})")

    async def start(self, nursery: trio.Nursery, *, ready: Iterable[str] | None = None) -> None:
        """Run the supervisor in ``nursery``; return once the processes named in ``ready`` (default: the
        relay daemons) are ready. ``trio.TooSlowError`` if one is not ready within ``READY_TIMEOUT``."""
        await nursery.start(self.run)
        if ready is None:
            ready = [n for n, c in self.children.items() if c.spec.args[0] == "relay" and c.spec.ready_socket]
        for name in ready:
            with trio.fail_after(READY_TIMEOUT):
                await self.children[name].ready.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if not self.handle_signals:
            async with trio.open_nursery() as nursery:
                for child in self.children.values():
                    nursery.start_soon(self.run_child, child)
                task_status.started()
            return
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                for child in self.children.values():
                    nursery.start_soon(self.run_child, child)
                task_status.started()

                async def watch_signals() -> None:
                    async for signum in signals:
                        log(f"received {signal.Signals(signum).name}: stopping everything")
                        break
                    await self.stop_all()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch_signals)


def _nice_note(asked: int, pid: int) -> str:
    """`` at nice N`` for a child running at a niceness that is not 0 (read back from it), and why when it is
    not the one asked for; "" for one at 0 as asked."""
    got = niceness_of(pid)
    if got is None or got == asked:
        return f" at nice {asked}" if asked else ""
    return f" at nice {got} (asked {asked}: below the supervisor's own needs CAP_SYS_NICE)"


def order(specs: list[ProcessSpec]) -> list[str]:
    """Dependency order (a topological sort); the deployment loader has rejected cycles."""
    by_name = {s.name: s for s in specs}
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in by_name[name].after:
            visit(dep)
        done.append(name)

    for s in specs:
        visit(s.name)
    return done


def up(argv: list[str]) -> int:
    _, dep = load_from_args("alphapulse up", argv, description=__doc__)
    Path(dep.run_dir).mkdir(parents=True, exist_ok=True)
    if dep.log_dir:
        Path(dep.log_dir).mkdir(parents=True, exist_ok=True)
    pidfile = Path(dep.run_dir) / "supervisor.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    log(f"starting {len(dep.processes)} processes: {', '.join(order(dep.processes))}")
    try:
        trio.run(Supervisor(dep.processes).run)
    finally:
        pidfile.unlink(missing_ok=True)
    log("all processes stopped")
    return 0


def down(argv: list[str]) -> int:
    args, dep = load_from_args("alphapulse down", argv,
                               options=lambda ap: ap.add_argument("--timeout", type=float, default=30.0))
    pidfile = Path(dep.run_dir) / "supervisor.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        print(f"alphapulse down: no supervisor running ({pidfile} not found)", file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"alphapulse down: supervisor pid {pid} is gone; removing stale {pidfile}", file=sys.stderr)
        pidfile.unlink(missing_ok=True)
        return 1
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"alphapulse down: supervisor {pid} stopped")
            return 0
        time.sleep(0.1)
    print(f"alphapulse down: supervisor {pid} still running after {args.timeout:.0f} s", file=sys.stderr)
    return 1
