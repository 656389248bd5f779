"""Deployment files: precise errors before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import ConfigError
from tools.deployment import parse_deployment


def test_defaults_give_three_relays_first() -> None:
    dep = parse_deployment({"deployment": {"run_dir": "/tmp/x"}})
    assert [p.name for p in dep.processes] == ["relay-market_data", "relay-signal", "relay-execution"]
    assert dep.processes[0].ready_socket == "/tmp/x/market_data.sock"


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"deployment": {"nmae": "x"}}, "deployment.nmae: unknown key"),
        ({"relays": {"fsync": "sometimes"}}, "relays.fsync"),
        ({"relays": {"domains": ["orders"]}}, "unknown domain <value>"),
        ({"process": [{"name": "a"}]}, "process[0].args: missing"),
        ({"process": [{"name": "a", "args": "strategy"}]}, "process[0].args: must be an array, got str"),
        ({"process": [{"name": "a", "args": ["x"], "after": ["nope"]}]}, "unknown process 'nope'"),
        ({"process": [{"name": "a", "args": ["x"], "after": ["b"]}, {"name": "b", "args": ["y"], "after": ["a"]}]},
         "dependency cycle"),
        ({"process": [{"name": "a", "args": ["x"]}, {"name": "a", "args": ["y"]}]}, "unique"),
        ({"process": [{"name": "a", "args": ["x", "--key", "0x" + "ab" * 32]}]}, "plaintext private key"),
        ({"process": [{"name": "a", "args": ["x"], "ready_log": "up"}]}, "process[0].ready_log: process 'a': ready_log "
                                                                         "needs a log file"),
    ],
)
def test_errors_name_the_key(doc: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_deployment(doc)
    assert fragment in str(err.value)


def test_niceness_defaults_by_kind_and_an_explicit_value_wins() -> None:
    """The trading path at 0 (relays, collectors, strategy, executor, risk, bridges), background work at 10
    (archiver, portfolio, dashboard, rebalancer); a process's own ``nice`` and ``[relays] nice`` win."""
    procs = [{"name": n, "args": list(a)} for n, a in (
        ("collector", ["collector", "evm", "--config", "c.toml"]), ("strategy", ["strategy"]),
        ("executor", ["executor"]), ("risk", ["risk"]), ("bridge", ["bridge", "in", "--domain", "market_data"]),
        ("archiver", ["archive", "--domain", "market_data"]), ("portfolio", ["portfolio"]),
        ("dashboard", ["dashboard"]), ("rebalancer", ["rebalancer"]), ("other", ["report"]))]
    dep = parse_deployment({"deployment": {"run_dir": "/tmp/x"}, "process": procs})
    assert {p.name: p.niceness for p in dep.processes} == {
        "relay-market_data": 0, "relay-signal": 0, "relay-execution": 0, "collector": 0, "strategy": 0,
        "executor": 0, "risk": 0, "bridge": 0, "archiver": 10, "portfolio": 10, "dashboard": 10, "rebalancer": 10,
        "other": 0}
    dep = parse_deployment({"relays": {"nice": 2}, "process": [
        {"name": "archiver", "args": ["archive"], "nice": 0}, {"name": "strategy", "args": ["strategy"], "nice": 19}]})
    assert {p.name: p.niceness for p in dep.processes} == {
        "relay-market_data": 2, "relay-signal": 2, "relay-execution": 2, "archiver": 0, "strategy": 19}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"process": [{"name": "a", "args": ["archive"], "nice": -5}]},
         "d.toml: process[0].nice: -5 is below 0: a priority above the OS default needs CAP_SYS_NICE, which the "
         "supervisor does not have; raise the other processes' niceness instead (0..19)"),
        ({"relays": {"nice": -1}}, "d.toml: relays.nice: -1 is below 0"),
        ({"process": [{"name": "a", "args": ["archive"], "nice": 20}]}, "d.toml: process[0].nice: out of range [0, 19], got 20"),
        ({"process": [{"name": "a", "args": ["archive"], "nice": "10"}]}, "d.toml: process[0].nice: must be an integer, got str"),
        ({"process": [{"name": "a", "args": ["archive"], "nice": 2.5}]}, "d.toml: process[0].nice: must be an integer, got float"),
        ({"process": [{"name": "a", "args": ["archive"], "nice": True}]}, "d.toml: process[0].nice: must be an integer, got bool"),
    ],
)
def test_a_bad_niceness_is_one_line_naming_the_key(doc: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_deployment(doc, origin="d.toml")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_up_refuses_a_bad_niceness_with_one_line_and_no_traceback(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from tools.supervisor import up

    cfg = tmp_path / "deploy.toml"
    cfg.write_text('[deployment]\nrun_dir = "run"\n\n[[process]]\nname = "archiver"\nargs = ["archive"]\nnice = -3\n')
    with pytest.raises(SystemExit) as done:
        up(["--config", str(cfg)])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"alphapulse up: {cfg}: process[0].nice: -3 is below 0"), err
    assert not (tmp_path / "run").exists()  # nothing started
