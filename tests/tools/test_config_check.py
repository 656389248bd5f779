"""``alphapulse config check``: the deployment and every component config it names, before start-up."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from tools.config_cli import check
from tools.deployment_writer import deployment_doc, process, relays_table, strategy_doc, write_toml

WETH = "0x" + "c0" * 20


def _deploy(tmp: Path, strategy: dict[str, Any], executor: dict[str, Any] | None = None,
            *, sockets: bool = True) -> Path:
    """A deployment with run dir ``tmp/run``; ``sockets``: the strategy's [relays] name that run dir's sockets."""
    if sockets:
        strategy = {**strategy, "relays": relays_table(tmp / "run", ("market_data", "signal"))}
    write_toml(tmp / "strategy.toml", strategy)
    procs = [process("strategy", ["strategy", "--config", "strategy.toml"], after=["relay-market_data", "relay-signal"])]
    if executor is not None:
        write_toml(tmp / "executor.toml", executor)
        procs.append(process("executor", ["executor", "--config", "executor.toml"]))
    return write_toml(tmp / "deploy.toml", deployment_doc(run_dir=tmp / "run", processes=procs))


GOOD_STRATEGY = strategy_doc(max_hops=3, chain_id=1, gas_token=WETH)


def test_a_valid_deployment_passes(tmp_path: Path) -> None:
    assert check(str(_deploy(tmp_path, GOOD_STRATEGY))) == []


def test_a_typo_in_a_component_config_is_reported_with_its_key(tmp_path: Path) -> None:
    typo = {**GOOD_STRATEGY, "strategy": {"max_hopz": 3}}
    problems = check(str(_deploy(tmp_path, typo)))
    assert len(problems) == 1 and "strategy" in problems[0] and "max_hopz" in problems[0]


def test_a_missing_config_file_is_reported(tmp_path: Path) -> None:
    path = _deploy(tmp_path, GOOD_STRATEGY)
    (tmp_path / "strategy.toml").unlink()
    assert any("does not exist" in p for p in check(str(path)))


def test_a_plaintext_key_is_refused_and_not_echoed(tmp_path: Path) -> None:
    key = "0x" + "ab" * 32
    problems = check(str(_deploy(tmp_path, GOOD_STRATEGY, {"executor": {"chain_id": 1, "private_key": key}})))
    assert any("executor" in p for p in problems)
    assert all(key not in p and key[2:] not in p for p in problems)


def test_deployment_level_errors_come_first(tmp_path: Path) -> None:
    path = _deploy(tmp_path, GOOD_STRATEGY)
    write_toml(path, {**tomllib.loads(path.read_text()), "relays": {"fsync": "sometimes"}})
    problems = check(str(path))
    assert len(problems) == 1 and "relays.fsync" in problems[0]


def test_a_strategy_without_its_signal_socket_or_with_another_deployments_is_rejected(tmp_path: Path) -> None:
    # no [relays] at all: the strategy would publish to the default socket, where this deployment has no relay
    problems = check(str(_deploy(tmp_path, GOOD_STRATEGY, sockets=False)))
    assert any("no [relays] signal socket" in p and str(tmp_path / "run" / "signal.sock") in p for p in problems)
    other = {**GOOD_STRATEGY, "relays": relays_table(tmp_path / "elsewhere", ("market_data", "signal"))}
    problems = check(str(_deploy(tmp_path, other, sockets=False)))
    assert len(problems) == 2 and all("is not this deployment's socket" in p for p in problems), problems


def test_a_component_file_is_named_as_such_and_checked_with_its_loader(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "strategy.toml", {**GOOD_STRATEGY, "relays": relays_table(tmp_path)})
    assert check(str(path)) == []
    no_signal = write_toml(tmp_path / "s2.toml", GOOD_STRATEGY)
    problems = check(str(no_signal))
    assert all("is a strategy config, not a deployment file" in p for p in problems)
    assert any("no [relays] signal socket" in p for p in problems), problems
    typo = write_toml(tmp_path / "s3.toml", {**GOOD_STRATEGY, "strategy": {"max_hopz": 3}})
    (problem,) = check(str(typo))
    assert "is a strategy config" in problem and "max_hopz" in problem
    (problem,) = check(str(write_toml(tmp_path / "x.toml", {"colour": "blue"})))
    assert "is not a deployment file" in problem and "colour" in problem


def test_a_strategy_with_hold_back_needs_the_execution_socket(tmp_path: Path) -> None:
    held = {**GOOD_STRATEGY, "hold_back": {"enabled": True}}
    problems = check(str(_deploy(tmp_path, held)))
    assert any("no [relays] execution socket" in p and str(tmp_path / "run" / "execution.sock") in p
               for p in problems), problems
    named = {**held, "relays": relays_table(tmp_path / "run", ("market_data", "signal", "execution"))}
    assert check(str(_deploy(tmp_path, named, sockets=False))) == []


def test_a_rebalancer_config_is_checked_with_its_loader_and_needs_the_execution_socket(tmp_path: Path) -> None:
    chain = {"rpc_url": "http://127.0.0.1:8545", "contract": "0x" + "aa" * 20, "bridge": "0x" + "ba" * 20}
    doc = {"chains": [dict(chain, chain_id=1), dict(chain, chain_id=2)],
           "assets": [{"name": "USDC", "tokens": [{"chain_id": 1, "address": "0x" + "a1" * 20},
                                                  {"chain_id": 2, "address": "0x" + "b1" * 20}]}],
           "targets": [{"asset": "USDC", "chain_id": c, "floor": 1, "target": 2} for c in (1, 2)]}
    assert check(str(write_toml(tmp_path / "r.toml", {**doc, "relays": relays_table(tmp_path, ("execution",))}))) == []
    problems = check(str(write_toml(tmp_path / "r2.toml", doc)))  # no [rebalancer] table: known by [[targets]]
    assert problems and all("is a rebalancer config" in p for p in problems)
    assert any("no [relays] execution socket" in p for p in problems), problems
    bad = {**doc, "targets": [{"asset": "USDC", "chain_id": 3, "floor": 1, "target": 2}, doc["targets"][0]]}
    (problem,) = check(str(write_toml(tmp_path / "r3.toml", {**bad, "relays": relays_table(tmp_path, ("execution",))})))
    assert "targets[0].chain_id" in problem and "chain 3 is not in [[chains]]" in problem


# ---- empty or meaningless configurations: refused at start-up and by config check, one line naming file and key


_S = f'[[chains]]\nchain_id = 1\ngas_token = "{WETH}"\n'
MEANINGLESS = [
    # (component, file text, what the one line must say)
    ("risk", "[risk]\n[alerts]\n", "risk: the file configures nothing: [risk], [alerts] have no key"),
    ("risk", '[risk]\nsender = "risk"\n', "no breaker is configured, so nothing could ever trip"),
    ("risk", '[risk]\nsender = "risk"\n[daily_loss]\nday_start_utc = "01:00"\n',
     "daily_loss.tokens: no token has a loss limit"),
    ("risk", '[risk]\nsender = "risk"\n[trade_size]\nscope = "all"\n', "trade_size.tokens: no token has a size limit"),
    ("risk", '[risk]\nsender = "risk"\n[gas_price]\nscope = "chain"\n', "gas_price.max_wei: no ceiling"),
    ("risk", '[risk]\nsender = "risk"\n[stale_data]\ndefault_max_age_s = 0.0\n',
     "stale_data.venues: no venue and no default_max_age_s"),
    ("risk", "[bogus]\nx = 1\n[risk]\n", "bogus: unknown key 'bogus'"),
    ("strategy", '[strategy]\nname = "x"\n', "chains: at least one [[chains]] table"),
    ("strategy", "[strategy]\n[gas]\n[economics]\n", "strategy: the file configures nothing"),
    ("strategy", _S + f'min_net_profit = {{ "{"0x" + "a0" * 20}" = 5 }}\n',
     f"chains[0].min_net_profit.{'0x' + 'a0' * 20}: not one of this chain's base_tokens"),
    ("strategy", '[relays]\nmarket_data = "/tmp/ap-x.sock"\nsignal = "/tmp/ap-x.sock"\n' + _S,
     "relays.signal: the same socket as market_data"),
    ("portfolio", '[portfolio]\nname = "p"\n[chains."1"]\n', "chains.1.valuation_token: names neither"),
    ("portfolio", "[portfolio]\n[start]\n", "portfolio: the file configures nothing"),
]


@pytest.mark.parametrize(("component", "text", "says"), MEANINGLESS)
def test_a_meaningless_configuration_is_refused_at_start_and_by_config_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], component: str, text: str, says: str) -> None:
    import importlib

    f = tmp_path / f"{component}.toml"
    f.write_text(text)
    problems = check(str(f))  # config check, given the component's own file
    assert len(problems) == 1 and str(f) in problems[0] and says in problems[0], problems
    main = importlib.import_module(f"{component}.process").main  # the process, at start-up
    code = main(["--config", str(f)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and str(f) in lines[0] and says in lines[0], err


def test_a_deployment_names_a_meaningless_component_config(tmp_path: Path) -> None:
    path = _deploy(tmp_path, GOOD_STRATEGY)
    write_toml(tmp_path / "risk.toml", {"risk": {"sender": "risk"}})
    doc = tomllib.loads(path.read_text())
    doc["process"].append(process("risk", ["risk", "--config", "risk.toml"]))
    write_toml(path, doc)
    problems = check(str(path))
    assert len(problems) == 1 and "risk.toml" in problems[0] and "no breaker is configured" in problems[0]
