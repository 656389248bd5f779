"""The main job, end to end: ``alphapulse demo --headless --metrics`` on a real devnet makes money on
chain (through Uniswap V4 pools, and with the Balancer Vault's flash loan for a Curve-first cycle), and one Ctrl-C (SIGINT) stops all of it: every process it started ends, the summary (whose
counts add up) and the report print, and the exit status is 130. While it runs, every process
serves /metrics on the port the demo printed, and every metric the shipped Grafana dashboard
queries is one of them."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from runtime.metrics import parse_text
from tools.metrics import exposed, load_dashboard, metric_names, queries

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(400)
def test_headless_demo_executes_arbitrage_with_profit_on_chain_and_stops_on_one_ctrl_c(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    err_path = tmp_path / "stderr"
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "demo", "--headless", "--metrics", "--duration", "300",
             "--summary-every", "5"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 240
        driving_since = None
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            text = "".join(lines)
            if driving_since is None and "market driver: replaying" in text:
                driving_since = time.monotonic()
            executed = re.findall(r"'EXECUTED': (\d+)", text)
            balancer = re.findall(r"executed by flash source \{[^}]*'BALANCER': (\d+)", text)
            if (driving_since and time.monotonic() - driving_since > 30 and executed and int(executed[-1]) >= 1
                    and balancer and int(balancer[-1]) >= 1):
                break
        assert proc.poll() is None, "".join(lines)[-3000:] + err_path.read_text()[-3000:]
        families = _scrape_every_process("".join(lines))
        proc.send_signal(signal.SIGINT)  # one Ctrl-C
        stopped_at = time.monotonic()
        code = proc.wait(timeout=90)
        took = time.monotonic() - stopped_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    out, err_text = "".join(lines), err_path.read_text()
    assert code == 130, out[-3000:] + err_text[-3000:]
    assert took < 45, f"the demo took {took:.0f} s to stop"
    # the socket directory is printed as a line to paste into another shell
    run_dir = re.search(r"^ALPHAPULSE_RUN_DIR=(/\S+)$", out, re.M)
    assert run_dir, out[:2000]
    assert not Path(run_dir.group(1)).exists()
    # every process the supervisor started has ended
    pids = [int(p) for p in re.findall(r": started pid (\d+)", err_text)]
    assert len(pids) >= 9, err_text[-3000:]
    assert not [p for p in pids if _alive(p)], err_text[-3000:]
    # the market driver stopped with the first signal: no trades after it
    assert "received SIGINT: stopping everything" in out
    landed = re.search(r"profit landed at the recipient\s*:\s*\S+ WETH\s+\((\d+) wei, read on chain\)", out)
    assert landed, out[-3000:]
    outcomes = ast.literal_eval(re.search(r"execution outcomes\s*:\s*(\{.*\})", out).group(1))  # type: ignore[union-attr]
    assert outcomes.get("EXECUTED", 0) >= 1, out[-3000:]
    # at least one of them through a Uniswap V4 pool (issue 16: the demo includes V4 pools)
    v4 = re.search(r"executed through Uniswap V4 pools\s*:\s*(\d+) \(of (\d+) signals with a V4 hop\)", out)
    assert v4 and int(v4.group(1)) >= 1, out[-3000:]
    # and at least one with the Balancer Vault's flash loan: a Curve-first cycle (a Curve pool cannot lend),
    # which the strategy chose BALANCER for and the executor sent through executeBalancer
    by_flash = ast.literal_eval(re.search(r"executed per flash source\s*:\s*(\{.*?\})", out).group(1))  # type: ignore[union-attr]
    assert by_flash.get("BALANCER", 0) >= 1, out[-3000:]
    assert sum(by_flash.values()) == outcomes["EXECUTED"], out[-3000:]
    # what the cycles that start in USDC made landed at the recipient: the events' sum, read back on chain
    other = re.search(r"\.\.\. in other profit tokens\s*:\s*(\S+) USDC .*read on chain: (\S+) USDC", out)
    assert other and other.group(1) == other.group(2), out[-3000:]
    # the funnel adds up: every signal has an outcome or is listed as in flight at stop
    signals = int(re.search(r"signals published by the strategy\s*:\s*(\d+)", out).group(1))  # type: ignore[union-attr]
    in_flight = int(re.search(r"in flight at stop\s*:\s*(\d+)", out).group(1))  # type: ignore[union-attr]
    assert signals == sum(outcomes.values()) + in_flight, out[-3000:]
    realized = re.search(r"realized gross profit \(events\)\s*:\s*(\d+)\.(\d{6}) WETH", out)
    assert realized
    # the profit read back from the chain is the sum of the contract's own profit events
    assert int(landed.group(1)) > 0
    assert int(landed.group(1)) // 10**12 == int(realized.group(1)) * 10**6 + int(realized.group(2))
    assert "AlphaPulse report" in out and "funnel:" in out
    assert "stopped by SIGINT" in out
    # the Grafana dashboard queries only what the processes serve
    queried = metric_names(queries(load_dashboard()))
    assert len(queried) >= 30
    assert not [n for n in sorted(queried) if not exposed(n, families)], sorted(families)


def _scrape_every_process(out: str) -> dict[str, str]:
    """Scrape each ``metrics: NAME URL`` the demo printed; ``{family: type}`` over all of them."""
    urls = dict(re.findall(r"metrics: (\S+) (http://127\.0\.0\.1:\d+/metrics)$", out, re.M))
    assert set(urls) >= {"relay-market_data", "relay-signal", "relay-execution", "archiver", "collector",
                         "strategy", "executor", "risk", "portfolio"}, out[:3000]
    assert "prometheus.yml" in out
    families: dict[str, str] = {}
    for name, url in urls.items():
        t0 = time.monotonic()
        try:
            text = httpx.get(url, timeout=10).text
        except httpx.TimeoutException:
            raise AssertionError(f"{name}: no /metrics answer within {time.monotonic() - t0:.1f} s "
                                 f"(load {os.getloadavg()})") from None
        parsed = parse_text(text)
        assert parsed["alphapulse_process_info"].samples, (name, text[:500])
        families.update({f: fam.type for f, fam in parsed.items()})
    return families


def test_the_password_file_is_0600_from_the_first_byte_and_never_written_through_a_symlink(tmp_path: Path) -> None:
    import stat

    from tools.demo import new_password_file

    victim = tmp_path / "victim"
    victim.write_text("someone else's file\n")
    os.chmod(victim, 0o644)
    ks_dir = tmp_path / "executor"
    ks_dir.mkdir()
    (ks_dir / "password").symlink_to(victim)  # planted: writing then chmod-ing went through it
    old = os.umask(0o022)
    opened: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *a, **kw):  # type: ignore[no-untyped-def]
        opened.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, *a, **kw)

    try:
        os.open = spy  # type: ignore[assignment]
        pwfile, password = new_password_file(ks_dir)
    finally:
        os.open = real_open  # type: ignore[assignment]
        os.umask(old)
    assert victim.read_text() == "someone else's file\n" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not pwfile.is_symlink() and pwfile.read_text() == password + "\n" and len(password) == 48
    assert stat.S_IMODE(pwfile.stat().st_mode) == 0o600
    # created by os.open with mode 0600 and O_NOFOLLOW, not written and chmod-ed afterwards
    assert any(flags & os.O_CREAT and flags & os.O_NOFOLLOW and mode == 0o600 for _, flags, mode in opened)


def test_two_demos_started_in_one_second_get_their_own_run_directories(tmp_path: Path) -> None:
    """Two demos at once (tests on two workers) once shared ``<demo dir>/<second>`` and so one keystore
    directory: one refused to overwrite the other's keystore, the other lost its executor."""
    from tools.demo import _new_work_dir, live_runs

    first = _new_work_dir(tmp_path, "20261207-014500")
    second = _new_work_dir(tmp_path, "20261207-014500")
    third = _new_work_dir(tmp_path, "20261207-014500")
    assert [first.name, second.name, third.name] == ["20261207-014500", "20261207-014500-2", "20261207-014500-3"]
    assert all(p.is_dir() for p in (first, second, third))
    assert live_runs(tmp_path)[0] == third
