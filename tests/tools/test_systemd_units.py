"""Generated units pass ``systemd-analyze verify``; a broken unit does not (the check can fail)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tools.deployment import parse_deployment
from tools.systemd import generate

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze not installed (.ci/run installs Debian's systemd)")


def _verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, paths)],
                          capture_output=True, text=True, timeout=60)


def _deployment(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A deployment whose units can run: sockets under /run, data outside /tmp (``tmp_path`` is unused:
    units with paths under /tmp do not work, see the sandbox test)."""
    return parse_deployment({
        "deployment": {"run_dir": "/run/alphapulse", "data_dir": "/var/lib/alphapulse", "user": "alphapulse",
                       "log_dir": "/var/log/alphapulse"},
        "process": [
            {"name": "archiver", "args": ["archive", "--domain", "market_data", "--out", "/var/lib/alphapulse/a"],
             "after": ["relay-market_data"]},
            {"name": "strategy", "args": ["strategy", "--config", "s.toml"],
             "after": ["relay-market_data", "relay-signal"], "env": {"ALPHAPULSE_LOG": "info"}},
        ],
    })


def test_units_verify_and_are_hardened(tmp_path: Path) -> None:
    paths = generate(_deployment(tmp_path), tmp_path / "units", python="/usr/bin/python3")
    names = sorted(p.name for p in paths)
    assert names == sorted([
        "alphapulse-relay-market_data.service", "alphapulse-relay-signal.service",
        "alphapulse-relay-execution.service", "alphapulse-archiver.service", "alphapulse-strategy.service",
        "alphapulse.target"])
    res = _verify(paths)
    assert res.returncode == 0, res.stderr
    strategy = (tmp_path / "units" / "alphapulse-strategy.service").read_text()
    for line in ("User=alphapulse", "ProtectSystem=strict", "NoNewPrivileges=yes", "Restart=always",
                 "RuntimeDirectory=alphapulse\n",
                 "Requires=alphapulse-relay-market_data.service alphapulse-relay-signal.service"):
        assert line in strategy
    target = (tmp_path / "units" / "alphapulse.target").read_text()
    assert "alphapulse-strategy.service" in target and "WantedBy=multi-user.target" in target
    # the background archiver at its kind's niceness, with the matching cgroup weight; the strategy at the default
    archiver = (tmp_path / "units" / "alphapulse-archiver.service").read_text()
    assert "\nNice=10\n" in archiver and "\nCPUWeight=11\n" in archiver
    assert "Nice=" not in strategy and "CPUWeight=" not in strategy


def test_a_niceness_given_in_the_deployment_reaches_the_unit(tmp_path: Path) -> None:
    """An explicit ``nice`` wins over the kind's default both ways; the weight follows the kernel's table."""
    from tools.systemd import cpu_weight

    assert [cpu_weight(n) for n in (0, 1, 5, 10, 19)] == [100, 80, 33, 11, 1]
    dep = parse_deployment({
        "deployment": {"run_dir": "/run/alphapulse", "data_dir": "/var/lib/alphapulse", "user": "alphapulse"},
        "relays": {"domains": ["market_data"], "nice": 1},
        "process": [{"name": "archiver", "args": ["archive", "--domain", "market_data"], "nice": 0},
                    {"name": "strategy", "args": ["strategy", "--config", "s.toml"], "nice": 5}],
    })
    paths = generate(dep, tmp_path / "units", python="/usr/bin/python3")
    res = _verify(paths)  # an out-of-range value is only a warning ("Nice priority out of range, ignoring")
    assert res.returncode == 0 and "Nice" not in res.stderr and "CPU" not in res.stderr, res.stderr
    units = {p.name: p.read_text() for p in paths}
    assert "Nice=" not in units["alphapulse-archiver.service"]
    assert "\nNice=5\nCPUWeight=33\n" in units["alphapulse-strategy.service"]
    assert "\nNice=1\nCPUWeight=80\n" in units["alphapulse-relay-market_data.service"]


def test_verify_rejects_a_broken_unit(tmp_path: Path) -> None:
    paths = generate(_deployment(tmp_path), tmp_path / "units", python="/usr/bin/python3")
    bad = tmp_path / "units" / "alphapulse-archiver.service"
    bad.write_text(bad.read_text().replace("ExecStart=/usr/bin/python3", "ExecStart=relative/python3"))
    res = _verify(paths)
    assert res.returncode != 0 or "ExecStart" in res.stderr


def test_bridge_units_load_nats_credentials_from_a_file(tmp_path: Path) -> None:
    dep = parse_deployment({
        "deployment": {"run_dir": str(tmp_path / "run"), "data_dir": str(tmp_path / "data"), "user": "alphapulse"},
        "process": [
            {"name": "bridge-out-market_data", "after": ["relay-market_data"],
             "args": ["bridge", "out", "--domain", "market_data", "--nats", "nats://10.0.0.5:4222,nats://10.0.0.6:4222",
                      "--nats-auth-file", "/etc/alphapulse/nats.creds", "--replicas", "3"]},
        ],
    })
    paths = generate(dep, tmp_path / "units", python="/usr/bin/python3")
    res = _verify(paths)
    assert res.returncode == 0, res.stderr
    unit = (tmp_path / "units" / "alphapulse-bridge-out-market_data.service").read_text()
    assert "LoadCredential=nats-auth:/etc/alphapulse/nats.creds" in unit
    assert "--nats-auth-file %d/nats-auth --replicas 3" in unit and "nats.creds --" not in unit
    assert "After=network-online.target" in unit and "Requires=alphapulse-relay-market_data.service" in unit


def test_env_values_go_to_a_0600_environment_file_never_into_the_unit(tmp_path: Path) -> None:
    import os
    import stat

    secret = "https://user:hunter2@rpc.example/v3/0123456789abcdef"
    dep = parse_deployment({
        "deployment": {"run_dir": str(tmp_path / "run"), "data_dir": str(tmp_path / "data"), "user": "alphapulse"},
        "process": [{"name": "strategy", "args": ["strategy", "--config", "s.toml"], "after": ["relay-signal"],
                     "env": {"ALPHAPULSE_RPC": secret, "QUOTED": 'a "b" \\c'}}],
    })
    old = os.umask(0o022)
    try:
        paths = generate(dep, tmp_path / "units", python="/usr/bin/python3")
    finally:
        os.umask(old)
    assert _verify(paths).returncode == 0
    unit = (tmp_path / "units" / "alphapulse-strategy.service").read_text()
    assert "hunter2" not in unit and "ALPHAPULSE_RPC" not in unit
    env = tmp_path / "units" / "alphapulse-strategy.env"
    assert f"EnvironmentFile={env.resolve()}" in unit
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert env.read_text() == f'ALPHAPULSE_RPC="{secret}"\nQUOTED="a \\"b\\" \\\\c"\n'


def test_every_path_a_unit_names_fits_its_sandbox(tmp_path: Path) -> None:
    """The units as generated must work: sockets in the RuntimeDirectory, nothing under the private /tmp,
    nothing written under a read-only home, and the user created by the generated sysusers file."""
    from tools.systemd import sandbox_problems

    good = _deployment(tmp_path)
    assert sandbox_problems(good, python="/opt/alphapulse/.venv/bin/python", workdir="/opt/alphapulse") == []
    generate(good, tmp_path / "units", python="/opt/alphapulse/.venv/bin/python")
    assert (tmp_path / "units" / "alphapulse.sysusers").read_text() == \
        'u alphapulse - "AlphaPulse deployment alphapulse" /var/lib/alphapulse -\n'
    assert (tmp_path / "units" / "alphapulse.tmpfiles").read_text() == (
        "d /var/lib/alphapulse 0750 alphapulse alphapulse -\nd /var/log/alphapulse 0750 alphapulse alphapulse -\n")
    if shutil.which("systemd-sysusers"):  # the user really gets created from it (into a scratch root)
        (tmp_path / "root" / "etc").mkdir(parents=True)
        res = subprocess.run(["systemd-sysusers", f"--root={tmp_path / 'root'}", "--dry-run",
                              str(tmp_path / "units" / "alphapulse.sysusers")], capture_output=True, text=True,
                             timeout=30)
        assert res.returncode == 0 and "Creating user 'alphapulse'" in res.stdout + res.stderr, res.stderr
    unit = (tmp_path / "units" / "alphapulse-relay-signal.service").read_text()
    assert "RuntimeDirectory=alphapulse\n" in unit and "--socket /run/alphapulse/signal.sock" in unit
    assert "PrivateTmp=yes" in unit

    # what the demo's deployment looks like: sockets and data under /tmp, a venv in a home directory
    bad = parse_deployment({
        "deployment": {"run_dir": "/tmp/alphapulse-demo-1", "data_dir": "/home/me/alphapulse/var",
                       "user": "alphapulse"},
        "process": [{"name": "strategy", "args": ["strategy", "--config", "/tmp/x/strategy.toml"]}],
    })
    problems = sandbox_problems(bad, python="/tmp/venv/bin/python", workdir="/home/me/alphapulse")
    text = "\n".join(problems)
    assert "run_dir /tmp/alphapulse-demo-1 is not under /run" in text
    assert "run_dir /tmp/alphapulse-demo-1 is under /tmp, which PrivateTmp=yes" in text
    assert "the interpreter /tmp/venv/bin/python is under /tmp" in text
    assert "process 'strategy' argument /tmp/x/strategy.toml is under /tmp" in text
    assert "data_dir /home/me/alphapulse/var is under a home directory" in text
    assert "RuntimeDirectory" not in generate(bad, tmp_path / "bad", python="/usr/bin/python3")[0].read_text()
