"""The rebalancer's configuration: what it accepts, and one line naming the key for what it refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from execution.rebalance.config import config_from_dict
from execution.rebalance.core import Target
from runtime.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
A, B = 31337, 31338
USDC_A, USDC_B = "0x" + "a1" * 20, "0x" + "b1" * 20


def doc(**over: Any) -> dict[str, Any]:
    chain = {"rpc_url": "http://127.0.0.1:8545", "contract": "0x" + "aa" * 20, "bridge": "0x" + "ba" * 20}
    d: dict[str, Any] = {
        "rebalancer": {"state_db": "s.sqlite", "bridge_fee_bps": 1},
        "chains": [dict(chain, chain_id=A), dict(chain, chain_id=B, rpc_url="http://127.0.0.1:8546")],
        "assets": [{"name": "USDC", "tokens": [{"chain_id": A, "address": USDC_A},
                                               {"chain_id": B, "address": USDC_B}]}],
        "targets": [{"asset": "USDC", "chain_id": A, "floor": 10, "target": 50},
                    {"asset": "USDC", "chain_id": B, "floor": 10, "target": 50, "min_transfer": 5}],
    }
    d.update(over)
    return d


def test_a_good_file_gives_the_policy() -> None:
    c = config_from_dict(doc())
    assert c.policy() == [Target(asset="USDC", chain_id=A, floor=10, target=50),
                          Target(asset="USDC", chain_id=B, floor=10, target=50, min_transfer=5)]
    assert c.chain(B).rpc_url.endswith("8546") and c.bridge_fee_bps == 1 and c.source_id == 48
    assert c.asset_map().counterpart(c.asset_map().token("USDC", A), B).address == USDC_B  # type: ignore[union-attr]


def test_an_rpc_url_from_a_file(tmp_path: Path) -> None:
    url = tmp_path / "url"
    url.write_text("http://127.0.0.1:9999/secret-key\n")
    d = doc()
    d["chains"][0] = dict(d["chains"][0], rpc_url="", rpc_url_file=str(url))
    assert config_from_dict(d).chain(A).rpc_url == "http://127.0.0.1:9999/secret-key"


@pytest.mark.parametrize(("change", "where"), [
    (lambda d: d["targets"].append({"asset": "USDC", "chain_id": 5, "floor": 1, "target": 2}), "targets[2].chain_id"),
    (lambda d: d["targets"].append({"asset": "DAI", "chain_id": A, "floor": 1, "target": 2}), "targets[2].asset"),
    (lambda d: d["targets"].append(dict(d["targets"][0])), "targets[2]"),
    (lambda d: d["targets"][0].update(floor=60), "targets[0].floor"),
    (lambda d: d["chains"][1].update(chain_id=A), "chains[1].chain_id"),
    (lambda d: d["chains"][0].update(contract="0x12"), "chains[0].contract"),
    (lambda d: d["chains"][0].update(rpc_url_env="X"), "chains[0].rpc_url"),
    (lambda d: d["chains"][1].update(keystore={"path": "k.json", "password_file": "pw"}), "chains[1].keystore"),
    (lambda d: d["rebalancer"].update(tip_wei=1), "rebalancer.tip_wei"),
    (lambda d: d["rebalancer"].update(bridge_fee_bps=10_000), "rebalancer.bridge_fee_bps"),
    (lambda d: d["rebalancer"].update(pol_s=1), "rebalancer"),
    (lambda d: d.update(chains=d["chains"][:1]), "chains"),
    (lambda d: d["assets"][0]["tokens"].pop(), "targets[1].chain_id"),
])
def test_mistakes_are_refused_naming_the_key(change: Any, where: str) -> None:
    d = doc()
    change(d)
    with pytest.raises(ConfigError) as err:
        config_from_dict(d)
    assert err.value.path.startswith(where), str(err.value)


def test_a_plaintext_key_is_refused_without_echoing_it() -> None:
    key = "11" * 32
    d = doc()
    d["rebalancer"]["private_key"] = key
    with pytest.raises(ConfigError) as err:
        config_from_dict(d)
    assert key not in str(err.value)


def test_a_keystore_is_refused_the_rebalancer_signs_nothing() -> None:
    """Two processes assigning nonces for one account race each other: the executor is the owner's one signer."""
    d = doc()
    d["chains"][0]["keystore"] = {"path": "k.json", "password_file": "pw"}
    with pytest.raises(ConfigError, match="signs nothing") as err:
        config_from_dict(d)
    assert err.value.path == "chains[0].keystore"


def test_the_command_says_one_line_for_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[rebalancer]\nstate_db = "x"\n')
    r = subprocess.run([sys.executable, "-m", "tools.cli", "rebalancer", "--config", str(bad)], cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "chains" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
