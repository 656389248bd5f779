"""``alphapulse config check``: the deployment and every component config it names, before start-up."""

from __future__ import annotations

from pathlib import Path

from tools.config_cli import check

WETH = "0x" + "c0" * 20


def _deploy(tmp: Path, strategy_text: str, executor_text: str | None = None) -> Path:
    (tmp / "strategy.toml").write_text(strategy_text)
    procs = ('[[process]]\nname = "strategy"\nargs = ["strategy", "--config", "strategy.toml"]\n'
             'after = ["relay-market_data", "relay-signal"]\n')
    if executor_text is not None:
        (tmp / "executor.toml").write_text(executor_text)
        procs += '[[process]]\nname = "executor"\nargs = ["executor", "--config", "executor.toml"]\n'
    path = tmp / "deploy.toml"
    path.write_text(f'[deployment]\nrun_dir = "{tmp}/run"\n\n' + procs)
    return path


GOOD_STRATEGY = f"""
[strategy]
max_hops = 3
[[chains]]
chain_id = 1
gas_token = "{WETH}"
base_tokens = ["{WETH}"]
"""


def test_a_valid_deployment_passes(tmp_path: Path) -> None:
    assert check(str(_deploy(tmp_path, GOOD_STRATEGY))) == []


def test_a_typo_in_a_component_config_is_reported_with_its_key(tmp_path: Path) -> None:
    problems = check(str(_deploy(tmp_path, GOOD_STRATEGY.replace("max_hops", "max_hopz"))))
    assert len(problems) == 1 and "strategy" in problems[0] and "max_hopz" in problems[0]


def test_a_missing_config_file_is_reported(tmp_path: Path) -> None:
    path = _deploy(tmp_path, GOOD_STRATEGY)
    (tmp_path / "strategy.toml").unlink()
    assert any("does not exist" in p for p in check(str(path)))


def test_a_plaintext_key_is_refused_and_not_echoed(tmp_path: Path) -> None:
    key = "0x" + "ab" * 32
    problems = check(str(_deploy(tmp_path, GOOD_STRATEGY, f'[executor]\nchain_id = 1\nprivate_key = "{key}"\n')))
    assert any("executor" in p for p in problems)
    assert all(key not in p and key[2:] not in p for p in problems)


def test_deployment_level_errors_come_first(tmp_path: Path) -> None:
    path = _deploy(tmp_path, GOOD_STRATEGY)
    path.write_text(path.read_text() + '\n[relays]\nfsync = "sometimes"\n')
    problems = check(str(path))
    assert len(problems) == 1 and "relays.fsync" in problems[0]
