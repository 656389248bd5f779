"""The deployment-config writer: what it writes, the loaders read back to the same values."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from runtime.config import ConfigError
from tools.config_cli import check
from tools.deployment import load_deployment
from tools.deployment_writer import deployment_doc, dumps, process, relays_table, strategy_doc, write_toml

# every character TOML's basic strings must escape, and some it need not
AWKWARD = 'q"uote \\back\\slash \ttab\nnewline \u00e9\u4e16 #not-a-comment [not] = "a table"'


def test_round_trip_through_the_loader(tmp_path: Path) -> None:
    run = tmp_path / 'run "dir"'
    path = write_toml(tmp_path / "deploy.toml", deployment_doc(
        name="round trip", run_dir=run, data_dir=tmp_path / "data\\x", log_dir=tmp_path / "logs", user="svc",
        domains=["market_data", "signal"], fsync="interval", processes=[
            process("strategy", ["strategy", "--config", tmp_path / "s.toml", AWKWARD],
                    after=["relay-market_data", "relay-signal"], env={"ALPHAPULSE_LOG": AWKWARD, "A": ""}),
            process("once", ["report"], after=["strategy"], ready_file=tmp_path / "ready", oneshot=True),
            process("sock", ["loadgen"], ready_socket=run / "x.sock"),
            process("logged", ["executor"], ready_log='executor: "ready"'),
        ]))
    dep = load_deployment(path)
    assert (dep.name, dep.run_dir, dep.data_dir, dep.log_dir, dep.user, dep.fsync) == (
        "round trip", str(run), str(tmp_path / "data\\x"), str(tmp_path / "logs"), "svc", "interval")
    by_name = {p.name: p for p in dep.processes}
    assert list(by_name) == ["relay-market_data", "relay-signal", "strategy", "once", "sock", "logged"]
    assert (by_name["logged"].ready_log, by_name["logged"].log_file) == ('executor: "ready"',
                                                                         str(tmp_path / "logs" / "logged.log"))
    s = by_name["strategy"]
    assert s.args == ("strategy", "--config", str(tmp_path / "s.toml"), AWKWARD)
    assert s.after == ("relay-market_data", "relay-signal")
    assert s.env == {"ALPHAPULSE_LOG": AWKWARD, "A": ""}
    assert (s.oneshot, s.ready_file, s.ready_socket) == (False, "", "")
    once = by_name["once"]
    assert (once.oneshot, once.ready_file, once.after) == (True, str(tmp_path / "ready"), ("strategy",))
    assert by_name["sock"].ready_socket == str(run / "x.sock")
    # the [relays] table a component gets names the sockets the relays of this deployment listen on
    assert relays_table(run, ["market_data", "signal"]) == {d: dep.socket(d) for d in ("market_data", "signal")}
    assert by_name["relay-signal"].ready_socket == dep.socket("signal")


def test_a_niceness_is_written_only_when_given(tmp_path: Path) -> None:
    doc = deployment_doc(run_dir="run", relays_nice=1, processes=[
        process("archiver", ["archive"]), process("strategy", ["strategy"], nice=3), process("p", ["portfolio"], nice=0)])
    assert tomllib.loads(dumps(doc))["relays"] == {"nice": 1}
    assert [p.get("nice") for p in tomllib.loads(dumps(doc))["process"]] == [None, 3, 0]
    dep = load_deployment(write_toml(tmp_path / "d.toml", doc))
    assert {p.name: p.niceness for p in dep.processes} == {
        "relay-market_data": 1, "relay-signal": 1, "relay-execution": 1, "archiver": 10, "strategy": 3, "p": 0}


def test_what_is_left_out_gets_the_loaders_defaults(tmp_path: Path) -> None:
    doc = deployment_doc(run_dir="var/run")
    assert doc == {"deployment": {"run_dir": "var/run"}}
    dep = load_deployment(write_toml(tmp_path / "d.toml", doc))
    assert (dep.name, dep.user, dep.fsync, dep.log_dir) == ("alphapulse", "alphapulse", "batch", "")
    assert dep.data_dir == str(tmp_path / "var/data")  # relative paths are relative to the file
    assert [p.name for p in dep.processes] == ["relay-market_data", "relay-signal", "relay-execution"]
    assert tomllib.loads(dumps({"process": [process("a", ["x"])]})) == {"process": [{"name": "a", "args": ["x"]}]}


def test_the_writer_does_not_validate_but_the_loader_refuses(tmp_path: Path) -> None:
    # a test may need a file the loader refuses: the writer writes it, the loader names the key
    path = write_toml(tmp_path / "d.toml", deployment_doc(run_dir="r", fsync="sometimes"))
    with pytest.raises(ConfigError, match="relays.fsync"):
        load_deployment(path)


def test_documents_serialise_as_toml_data() -> None:
    doc = {"chains": {31337: {"valuation_token": "0xc0"}},  # integer keys become TOML's string keys
           "daily_loss": {"tokens": {"31337:0xc0": {"max_loss": 5 * 10**18}}},
           "paths": [Path("/a b/c"), (1, 2)], "flag": True, "ratio": 1.5}
    assert tomllib.loads(dumps(doc)) == {
        "chains": {"31337": {"valuation_token": "0xc0"}},
        "daily_loss": {"tokens": {"31337:0xc0": {"max_loss": 5 * 10**18}}},
        "paths": ["/a b/c", [1, 2]], "flag": True, "ratio": 1.5}
    assert tomllib.loads(dumps({"s": AWKWARD})) == {"s": AWKWARD}


def test_strategy_doc_is_what_the_strategy_loader_reads(tmp_path: Path) -> None:
    from strategy.config import load_config

    weth = "0x" + "c0" * 20
    path = write_toml(tmp_path / "strategy.toml", strategy_doc(
        name="x", max_hops=3, chain_id=1, gas_token=weth, min_net_profit=10**13, economics={"slippage_bps": 10},
        relays=relays_table(tmp_path, ["market_data", "signal"])))
    cfg = load_config(path)
    assert cfg.max_hops == 3 and cfg.name == "x"
    assert tomllib.loads(path.read_text())["chains"] == [
        {"chain_id": 1, "gas_token": weth, "base_tokens": [weth], "min_net_profit": {weth: 10**13}}]


def test_the_demo_configs_pass_config_check(tmp_path: Path) -> None:
    """Every file the live demo writes loads with its component's loader (``alphapulse config check``);
    the collector's names the devnet deployment file the demo writes next to them once the chain is up."""
    from tools.demo import _write_configs

    dep = SimpleNamespace(
        chain_id=31337, rpc_url="http://127.0.0.1:8545", v3=SimpleNamespace(factory="0x" + "cc" * 20),
        v2=[SimpleNamespace(name="uniswap_v2_a", factory="0x" + "aa" * 20),
            SimpleNamespace(name="uniswap_v2_b", factory="0x" + "bb" * 20)],
        v4=SimpleNamespace(pool_manager="0x" + "ee" * 20),  # a V4 venue: the PoolManager and the allowed hooks
        v4_pools=[SimpleNamespace(hook_name="counter", hooks="0x" + "00" * 18 + "00c0"),
                  SimpleNamespace(hook_name="", hooks="0x" + "00" * 20)],
        # a Curve pool whose coin 0 (DAI) is the higher address, and the Balancer Vault
        curve_pools=[SimpleNamespace(address="0x" + "ca" * 20, coins=("0x" + "c2" * 20, "0x" + "c1" * 20), amp=200,
                                     rates=(10**18, 10**30))],
        balancer_vault="0x" + "ba" * 20,
        address_of=lambda symbol: "0x" + {"WETH": "c0", "USDC": "c1", "DAI": "c2"}[symbol] * 20)
    deploy = _write_configs(tmp_path, Path("/tmp/ap-writer-test"), dep, "0x" + "dd" * 20, tmp_path / "ks.json",
                            tmp_path / "pw")
    problems = check(str(deploy))
    assert len(problems) == 1, problems
    assert problems[0].startswith("process 'collector'") and str(tmp_path / "deployment.json") in problems[0]
    # the Curve pool: the strategy's rates in address order, the executor's coins and rates in the pool's
    strategy = tomllib.loads((tmp_path / "configs" / "strategy.toml").read_text())
    executor = tomllib.loads((tmp_path / "configs" / "executor.toml").read_text())
    assert strategy["curve_pools"][0]["rates"] == [10**30, 10**18]
    assert executor["curve_pools"][0]["coins"] == ["0x" + "c2" * 20, "0x" + "c1" * 20]
    assert executor["curve_pools"][0]["rates"] == [10**18, 10**30]
    assert strategy["chains"][0]["balancer_vault"] is True
    assert strategy["chains"][0]["base_tokens"] == ["0x" + "c0" * 20, "0x" + "c1" * 20]
    names = [p.name for p in load_deployment(deploy).processes]
    assert names[3:] == ["archiver", "collector", "strategy", "executor", "risk", "portfolio"]
