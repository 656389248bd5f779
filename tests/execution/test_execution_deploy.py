"""``alphapulse executor deploy-contract`` on the devnet: the keystore's own key signs the deployment
and the allow-listing (no impersonation), the contract reads back as asked, the printed lines are a
valid executor configuration, and every mistake is one line with exit status 2."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode

from chain.abi import encode_call
from chain.addresses import UNISWAP_V2_INIT_CODE_HASH, UNISWAP_V3_INIT_CODE_HASH
from chain.deployment import save_deployment
from execution import deploy
from execution.calldata import CURVE_POOL_MARK, V4_MANAGER_MARK
from execution.config import config_from_dict
from execution.keystore import create_keystore
from execution.process import main as executor_main

PASSWORD = "deploy-test-password"


def _call(rpc: Any, to: str, sig: str, types: list[str], *args: Any) -> tuple[Any, ...]:
    out = rpc.call("eth_call", [{"to": to, "data": "0x" + encode_call(sig, *args).hex()}, "latest"])
    return tuple(decode(types, bytes.fromhex(out[2:])))


@pytest.fixture
def setup(devnet_snapshot: Any, tmp_path: Path) -> dict[str, Any]:
    net = devnet_snapshot
    dep = net.deployment
    (tmp_path / "password").write_text(PASSWORD + "\n")
    ks = tmp_path / "keystore.json"
    owner = create_keystore(ks, PASSWORD, kdf="pbkdf2", iterations=2)  # cheap KDF: tests only
    deployment = save_deployment(tmp_path / "deployment.json", [dep])
    (tmp_path / "rpc_url").write_text(dep.rpc_url + "/?apikey=s3cr3t-api-key\n")  # anvil ignores the query
    base = ["deploy-contract", "--keystore", str(ks), "--password-file", str(tmp_path / "password"),
            "--recipient", dep.accounts[7]]
    return {"net": net, "dep": dep, "rpc": net.client.rpc, "owner": owner, "dir": tmp_path, "base": base,
            "deployment": deployment}


def _fund(s: dict[str, Any], wei: int = 10**20) -> None:
    s["rpc"].call("anvil_setBalance", [s["owner"], hex(wei)])


def _nonce(s: dict[str, Any]) -> int:
    return int(s["rpc"].call("eth_getTransactionCount", [s["owner"], "latest"]), 16)


def test_deploys_from_the_keystore_configures_and_prints_the_config_lines(
        setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    s = setup
    dep, rpc = s["dep"], s["rpc"]
    _fund(s)
    rc = executor_main([*s["base"], "--rpc-url-file", str(s["dir"] / "rpc_url"), "--chain-id", str(dep.chain_id),
                        "--factory", f"DEVNET_V2_A={dep.v2[0].factory}", "--factory",
                        f"devnet_v3={dep.v3.factory}"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "s3cr3t" not in out + err  # the URL came from a file: only its redacted form is shown
    doc = tomllib.loads(out.split("# paste into the executor's configuration (executor.toml):\n", 1)[1])
    arb = doc["executor"]["contract"]
    assert doc["executor"]["chain_id"] == dep.chain_id
    assert doc["venues"] == [{"venue": "DEVNET_V2_A", "factory": dep.v2[0].factory},
                             {"venue": "DEVNET_V3", "factory": dep.v3.factory}]
    # the contract is ours (signed by the keystore's key: its nonce moved by 3), configured as asked
    assert _nonce(s) == 3
    assert _call(rpc, arb, "owner()", ["address"])[0].lower() == s["owner"].lower()
    assert _call(rpc, arb, "recipient()", ["address"])[0].lower() == dep.accounts[7].lower()
    assert _call(rpc, arb, "initCodeHashOf(address,uint8)", ["bytes32"], dep.v2[0].factory, 0)[0] \
        == UNISWAP_V2_INIT_CODE_HASH
    assert _call(rpc, arb, "initCodeHashOf(address,uint8)", ["bytes32"], dep.v3.factory, 1)[0] \
        == UNISWAP_V3_INIT_CODE_HASH
    assert _call(rpc, arb, "initCodeHashOf(address,uint8)", ["bytes32"], dep.v2[1].factory, 0)[0] == bytes(32)
    # the lines complete a working executor configuration
    cfg = config_from_dict({
        "executor": {**doc["executor"], "rpc_url": dep.rpc_url, "gas_token": dep.weth},
        "keystore": {"path": "ks.json", "password_file": "pw"}, "venues": doc["venues"]})
    assert cfg.contract == arb and set(cfg.factories.values()) == {dep.v2[0].factory, dep.v3.factory}

    assert _call(rpc, arb, "balancerVault()", ["address"])[0] == "0x" + "0" * 40

    # configuring it again: the missing factories only (venue b's, the V4 PoolManager and the Curve
    # pool, allow-listed by its own address) and the devnet's Balancer Vault: four transactions, the
    # others already allowed
    rc = executor_main([*s["base"], "--deployment", str(s["deployment"]), "--contract", arb, "--fund-on-devnet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert _nonce(s) == 7 and "(4 transactions" in out
    assert _call(rpc, arb, "initCodeHashOf(address,uint8)", ["bytes32"], dep.v2[1].factory, 0)[0] \
        == UNISWAP_V2_INIT_CODE_HASH
    assert _call(rpc, arb, "initCodeHashOf(address,uint8)", ["bytes32"], dep.v4.pool_manager, 2)[0] \
        == V4_MANAGER_MARK
    curve = dep.curve_pools[0].address
    assert _call(rpc, arb, "initCodeHashOf(address,uint8)", ["bytes32"], curve, 3)[0] == CURVE_POOL_MARK
    assert _call(rpc, arb, "balancerVault()", ["address"])[0].lower() == dep.balancer_vault.lower()
    # Curve pools are no [[venues]] of the executor (its [[curve_pools]] names them)
    doc = tomllib.loads(out.split("# paste into the executor's configuration (executor.toml):\n", 1)[1])
    assert curve not in {v["factory"] for v in doc["venues"]} and "balancer_vault = true" in out
    # a third run has nothing left to do
    rc = executor_main([*s["base"], "--deployment", str(s["deployment"]), "--contract", arb])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert _nonce(s) == 7 and "(0 transactions" in out


def test_dry_run_sends_nothing(setup: dict[str, Any], capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    s = setup
    _fund(s)
    monkeypatch.setenv("AP_TEST_RPC_URL", s["dep"].rpc_url)
    rc = executor_main([*s["base"], "--rpc-url-env", "AP_TEST_RPC_URL", "--dry-run",
                        "--factory", f"DEVNET_V3={s['dep'].v3.factory}"])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert "Nothing was sent" in out and _nonce(s) == 0


@pytest.mark.parametrize(("extra", "fund", "message"), [
    (["--chain-id", "1"], True, "the node is chain 31337, not 1 (--chain-id): wrong endpoint?"),
    ([], False, "fund it first"),
    (["--factory", "SUSHISWAP=0x0000000000000000000000000000000000000001"], True,
     "official Uniswap init-code hashes only"),
    (["--factory", "NOPE=0x0000000000000000000000000000000000000001"], True, "unknown venue 'NOPE'"),
    (["--factory", "UNISWAP_V2"], True, "expected VENUE=0xADDRESS"),
    (["--contract", "0x0000000000000000000000000000000000000001"], True, "no contract at"),
    (["--max-fee-gwei", "0.000001"], True, "above the cap"),
    (["--balancer-vault", "0x12"], True, "--balancer-vault: '0x12' is not an address"),
    (["--balancer-vault", "0x0000000000000000000000000000000000000001"], True,
     "no contract at the Balancer Vault address"),
])
def test_mistakes_are_one_line_and_status_2(setup: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                            extra: list[str], fund: bool, message: str) -> None:
    s = setup
    if fund:
        _fund(s)
    args = [*s["base"], "--rpc-url", s["dep"].rpc_url, *extra]
    if not any(a == "--factory" for a in extra):
        args += ["--factory", f"DEVNET_V3={s['dep'].v3.factory}"]
    assert executor_main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
    assert _nonce(s) == 0


def test_wrong_password_missing_url_and_foreign_contract(setup: dict[str, Any], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    s = setup
    _fund(s)
    (tmp_path / "wrong").write_text("nope\n")
    args = [a if a != str(s["dir"] / "password") else str(tmp_path / "wrong") for a in s["base"]]
    assert executor_main([*args, "--deployment", str(s["deployment"])]) == 2
    assert "wrong password or corrupt keystore" in capsys.readouterr().err
    assert executor_main([*s["base"], "--rpc-url-file", str(tmp_path / "absent"),
                          "--factory", f"DEVNET_V3={s['dep'].v3.factory}"]) == 2
    assert "cannot read the RPC URL from" in capsys.readouterr().err
    assert executor_main([*s["base"], "--rpc-url", s["dep"].rpc_url, "--fund-on-devnet",
                          "--factory", f"DEVNET_V3={s['dep'].v3.factory}"]) == 2
    assert "--fund-on-devnet needs --deployment" in capsys.readouterr().err
    assert executor_main([*s["base"], "--rpc-url-file", str(tmp_path / "absent"),
                          "--factory", f"DEVNET_V3={s['dep'].v3.factory}"]) == 2
    assert "cannot read the RPC URL from" in capsys.readouterr().err
    # a contract someone else owns (the devnet's deployer deploys one) is refused before any transaction
    from execution.build import load_artifact
    from execution.calldata import encode_constructor_args

    client = s["net"].client
    code = bytes.fromhex(load_artifact()["bytecode"][2:]) + encode_constructor_args(s["dep"].accounts[7])
    foreign = client.send(s["dep"].accounts[0], None, code, gas=10_000_000).contract_address
    assert executor_main([*s["base"], "--deployment", str(s["deployment"]), "--contract", foreign]) == 2
    assert "not by the keystore's account" in capsys.readouterr().err
    assert _nonce(s) == 0


def test_help_and_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        executor_main(["deploy-contract", "--help"])
    assert exit_.value.code == 0 and "--recipient" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        executor_main(["deploy-contract", "--keystore", "k"])
    assert exit_.value.code == 2 and "required" in capsys.readouterr().err


def test_parse_factory() -> None:
    spec = deploy.parse_factory("uniswap_v3=0x1f98431c8ad98523631ae4a59f267346ea31f984")
    assert spec.kind == deploy.Kind.V3 and spec.factory == "0x1F98431c8aD98523631AE4a59f267346ea31F984"
    with pytest.raises(ValueError, match="not an address"):
        deploy.parse_factory("UNISWAP_V2=0x12")
    curve = deploy.parse_factory("CURVE=0xbebc44782c7db0a1a60cb6fe97d0b483032ff1c7")
    assert curve.kind == deploy.Kind.CURVE and deploy.INIT_CODE_HASH[curve.kind] != bytes(32)
