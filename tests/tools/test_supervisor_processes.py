"""The supervisor with real processes: dependency order, restart with backoff, clean stop, no orphans."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tools.deployment import ProcessSpec
from tools.deployment_writer import deployment_doc, process, write_toml
from tools.supervisor import Supervisor


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of a dead parent is reaped by init quickly; treat Z as dead
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _write(tmp: Path, crasher: bool = True, log_dir: Path | str = "") -> Path:
    run = Path(f"/tmp/ap-sup-{os.getpid()}-{tmp.name[-8:]}")
    run.mkdir(parents=True, exist_ok=True)
    crashers = [process("crasher", ["relay", "--domain", "no_such_domain", "--socket", run / "x.sock",
                                    "--data-dir", tmp / "x"], after=["relay-market_data"])] if crasher else []
    return write_toml(tmp / "deploy.toml", deployment_doc(run_dir=run, data_dir=tmp / "data", domains=["market_data"],
                                                          fsync="off", processes=crashers, log_dir=log_dir))


def _start(cfg: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tools.cli", "up", "--config", str(cfg)],
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])


def _read_until(proc: subprocess.Popen[str], pattern: str, timeout: float, seen: list[str]) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"no {pattern!r} in supervisor output:\n{''.join(seen)}")


@pytest.mark.timeout(90)
def test_restart_with_backoff_then_clean_stop(tmp_path: Path) -> None:
    cfg = _write(tmp_path, log_dir=tmp_path / "logs")
    proc = _start(cfg)
    seen: list[str] = []
    try:
        relay_pid = int(_read_until(proc, r"relay-market_data: started pid (\d+)", 30, seen).group(1))
        _read_until(proc, r"relay-market_data: ready", 30, seen)
        _read_until(proc, r"crasher: started pid", 30, seen)  # only after its dependency is ready
        # the restart line carries the process's last error line from its log
        why = _read_until(proc, r"crasher: exited 2; restart #1 in 1 s: (.*)", 30, seen).group(1)
        assert "unknown domain 'no_such_domain'" in why, why
        _read_until(proc, r"crasher: exited 2; restart #2 in 2 s", 30, seen)
        proc.send_signal(signal.SIGTERM)
        _read_until(proc, r"relay-market_data: stopped", 30, seen)
        assert proc.wait(timeout=30) == 0
        assert not _alive(relay_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(60)
def test_sigkill_of_the_supervisor_leaves_no_orphan(tmp_path: Path) -> None:
    cfg = _write(tmp_path)
    proc = _start(cfg)
    seen: list[str] = []
    try:
        relay_pid = int(_read_until(proc, r"relay-market_data: started pid (\d+)", 30, seen).group(1))
        _read_until(proc, r"relay-market_data: ready", 30, seen)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 15
        while _alive(relay_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(relay_pid), "relay outlived a SIGKILLed supervisor"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(90)
def test_children_outlive_trio_worker_threads(tmp_path: Path) -> None:
    """Regression: children forked from a trio worker thread got PDEATHSIG when trio retired the
    idle thread (~10 s). Children must keep running as long as the supervisor does. No crasher
    here: its restarts would keep the forking thread busy and hide the bug."""
    cfg = _write(tmp_path, crasher=False)
    proc = _start(cfg)
    seen: list[str] = []
    try:
        relay_pid = int(_read_until(proc, r"relay-market_data: started pid (\d+)", 30, seen).group(1))
        _read_until(proc, r"relay-market_data: ready", 30, seen)
        time.sleep(13)  # past trio's 10 s idle-thread timeout
        assert _alive(relay_pid), "the relay died while the supervisor was running"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not any("relay-market_data: exited" in line for line in seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(60)
def test_demo_replay_source_outlives_trio_worker_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: ``demo --replay`` started its source with ``trio.lowlevel.open_process`` plus the
    parent-death signal, so the source died when trio retired the forking worker thread (after 89 of 986
    messages). With trio's idle timeout shortened, the source must still be running after it passed."""
    import trio
    import trio._core._thread_cache as thread_cache

    from tools.demo_replay import start_source
    from tools.supervisor import wait_exit

    monkeypatch.setattr(thread_cache, "IDLE_TIMEOUT", 0.2)

    async def main() -> None:
        # a real source command that runs for seconds: the relay daemon on a private socket
        sock_dir = Path(tempfile.mkdtemp(prefix="ap-src-", dir="/tmp"))  # 0700: the relay's run-dir check
        sock = sock_dir / "md.sock"
        source = start_source(["relay", "--domain", "market_data", "--socket", str(sock),
                               "--data-dir", str(tmp_path / "d")], tmp_path / "source.log")
        try:
            await trio.to_thread.run_sync(time.sleep, 0)  # a worker thread exists, idles, and retires
            await trio.sleep(2.0)
            assert source.poll() is None, (tmp_path / "source.log").read_text()
        finally:
            source.terminate()
            with trio.fail_after(15):
                await wait_exit(source)
            shutil.rmtree(sock_dir, ignore_errors=True)

    trio.run(main)


class _Scripts(Supervisor):
    """Runs each spec's first argument as a Python script (no alphapulse subcommand needed)."""

    def command(self, spec: ProcessSpec) -> list[str]:
        return [sys.executable, "-c", spec.args[0]]


@pytest.mark.timeout(60)
def test_a_dependent_starts_once_its_dependency_logs_its_ready_line_even_after_the_ready_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``ready_log``: the dependency is ready once its log shows the line, written by this run of it (the same
    line left in the log by an earlier run does not count), and a start slower than ``READY_TIMEOUT`` is said
    and still waited for: the dependent starts then, never before and not never (the demo's strategy waits so
    for the executor, whose start takes tens of seconds on a loaded machine)."""
    import trio

    import tools.supervisor as supervisor

    monkeypatch.setattr(supervisor, "READY_TIMEOUT", 0.3)
    logs, marker = tmp_path / "logs", tmp_path / "slow-is-up"
    logs.mkdir()
    (logs / "slow.log").write_text("slow: ready for signals\n")  # an earlier run's line
    slow = (f"import pathlib, time; time.sleep(1.5); pathlib.Path({str(marker)!r}).touch(); "
            "print('slow: ready for signals', flush=True); time.sleep(60)")
    dep = f"import pathlib; print('dependent saw the line:', pathlib.Path({str(marker)!r}).exists(), flush=True)"
    specs = [ProcessSpec(name="slow", args=(slow,), ready_log="slow: ready for", log_file=str(logs / "slow.log")),
             ProcessSpec(name="dep", args=(dep,), after=("slow",), oneshot=True, log_file=str(logs / "dep.log"))]

    async def main() -> str:
        sup = _Scripts(specs, handle_signals=False)
        async with trio.open_nursery() as nursery:
            await sup.start(nursery, ready=[])
            with trio.fail_after(40):
                while "dependent saw the line" not in (text := _text(logs / "dep.log")):  # noqa: ASYNC110
                    await trio.sleep(0.05)
            await sup.stop_all()
            nursery.cancel_scope.cancel()
        return text

    assert "dependent saw the line: True" in trio.run(main)
    err = capsys.readouterr().err
    assert "slow: not ready after 0 s; still waiting" in err and err.index("still waiting") < err.index("] slow: ready\n")


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _nice_of_every_thread(pid: int) -> list[int]:
    """The niceness of each thread of ``pid``: field 19 of ``/proc/<pid>/task/<tid>/stat`` (Linux keeps one per
    thread; the fields after the parenthesised command name start at field 3)."""
    return [int(stat.read_text().rsplit(")", 1)[1].split()[19 - 3])
            for stat in Path(f"/proc/{pid}/task").glob("*/stat")]


class _Sleepers(Supervisor):
    """Runs every spec as a Python child that starts a thread and sleeps: the spec keeps its subcommand (and so
    its kind's default niceness) without running it."""

    def command(self, spec: ProcessSpec) -> list[str]:
        return [sys.executable, "-c", "import threading, time; threading.Thread(target=time.sleep, args=(60,)).start(); "
                                      "print('up', flush=True); time.sleep(60)"]


@pytest.mark.timeout(60)
def test_children_run_at_their_niceness_every_thread_of_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The deployment's niceness reaches the real child: the archiver at its kind's default 10, a strategy at 0,
    a portfolio at the 4 its entry asks for; each thread the child starts has it too, and the start line shows
    every niceness that is not 0."""
    import trio

    from tools.deployment import load_deployment

    if os.getpriority(os.PRIO_PROCESS, 0) != 0:
        pytest.skip("the test runs niced: its children could not go below that")
    logs = tmp_path / "logs"
    cfg = write_toml(tmp_path / "deploy.toml", deployment_doc(
        run_dir=tmp_path / "run", log_dir=logs, domains=[], processes=[
            process("archiver", ["archive", "--domain", "market_data"], ready_log="up"),
            process("strategy", ["strategy", "--config", "s.toml"], ready_log="up"),
            process("portfolio", ["portfolio", "--config", "p.toml"], ready_log="up", nice=4)]))
    specs = load_deployment(cfg).processes

    async def main() -> dict[str, list[int]]:
        sup = _Sleepers(specs, handle_signals=False)
        async with trio.open_nursery() as nursery:
            await sup.start(nursery, ready=[s.name for s in specs])
            # ready once 'up' is in the log, printed after the second thread started
            seen = {name: _nice_of_every_thread(c.proc.pid) for name, c in sup.children.items() if c.proc}
            await sup.stop_all()
            nursery.cancel_scope.cancel()
        return seen

    assert trio.run(main) == {"archiver": [10, 10], "strategy": [0, 0], "portfolio": [4, 4]}
    err = capsys.readouterr().err
    assert re.search(r"\] archiver: started pid \d+ at nice 10: archive --domain market_data\n", err), err
    assert re.search(r"\] portfolio: started pid \d+ at nice 4: portfolio --config p.toml\n", err), err
    assert re.search(r"\] strategy: started pid \d+: strategy --config s.toml\n", err), err


def test_a_niceness_below_the_supervisors_own_is_kept_at_its_own_and_said(tmp_path: Path) -> None:
    """Lowering a niceness needs CAP_SYS_NICE: a supervisor running at nice 3 starts a child asked for 1 at 3
    (not failing the start with an opaque error from the child's set-up), and the start line says why."""
    code = ("import os, sys; os.nice(3)\n"
            "from tools.supervisor import spawn, niceness_of, _nice_note\n"
            "p = spawn([sys.executable, '-c', 'import time; time.sleep(30)'], nice=1)\n"
            "q = spawn([sys.executable, '-c', 'import time; time.sleep(30)'], nice=7)\n"
            "print(niceness_of(p.pid), niceness_of(q.pid), _nice_note(1, p.pid), sep='|')\n"
            "p.kill(); q.kill(); p.wait(); q.wait()\n")
    argv = [sys.executable, "-c", code]
    if os.geteuid() == 0:  # root may lower a niceness: run the supervisor's side without CAP_SYS_NICE
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and no setpriv to drop CAP_SYS_NICE")
        argv = ["setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice", *argv]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().split("|") == [
        "3", "7", " at nice 3 (asked 1: below the supervisor's own needs CAP_SYS_NICE)"]
