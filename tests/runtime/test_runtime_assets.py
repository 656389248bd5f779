"""Asset identity across chains from configuration (runtime/assets.py): the map, and every
contradiction refused with one line naming both places."""

from __future__ import annotations

import pytest

from protocol.ids import TokenId
from runtime.assets import AssetEntry, AssetMap, AssetsConfig, load_assets
from runtime.config import ConfigError, decode, parse_toml

USDC_A = "0x" + "a1" * 20
USDC_B = "0x" + "b1" * 20
WETH_A = "0x" + "a2" * 20
WETH_B = "0x" + "b2" * 20

GOOD = f"""
[[assets]]
name = "USDC"
tokens = [{{ chain_id = 31337, address = "{USDC_A}" }}, {{ chain_id = 31338, address = "{USDC_B}" }}]

[[assets]]
name = "WETH"
tokens = [{{ chain_id = 31337, address = "{WETH_A}" }}, {{ chain_id = 31338, address = "{WETH_B.upper().replace('0X', '0x')}" }}]
"""


def _map(text: str) -> AssetMap:
    return decode(AssetsConfig, parse_toml(text, file="assets.toml"), file="assets.toml").asset_map()


def test_the_map_answers_in_exact_per_chain_ids(tmp_path):
    path = tmp_path / "assets.toml"
    path.write_text(GOOD)
    assets = load_assets(path)
    usdc_a, usdc_b = TokenId.of(31337, USDC_A), TokenId.of(31338, USDC_B)
    weth_b = TokenId.of(31338, WETH_B)
    assert assets.names == ("USDC", "WETH") and len(assets) == 2
    assert assets.asset_of(usdc_a) == "USDC" and assets.asset_of(weth_b) == "WETH"  # case of the hex is irrelevant
    assert assets.tokens("USDC") == {31337: usdc_a, 31338: usdc_b}
    assert assets.counterpart(usdc_a, 31338) == usdc_b and assets.counterpart(usdc_b, 31337) == usdc_a
    assert assets.counterpart(usdc_a, 1) is None and assets.counterpart(TokenId.of(1, USDC_A), 31338) is None
    assert assets.same_asset(usdc_a, usdc_b) and not assets.same_asset(usdc_a, weth_b)
    assert assets.same_asset(TokenId.of(5, USDC_A), TokenId.of(5, USDC_A))  # a token is itself
    assert not assets.same_asset(TokenId.of(5, USDC_A), TokenId.of(6, USDC_A))  # unconfigured: two instruments
    # The ids stay exact per chain: the same address on two chains is two instruments.
    assert TokenId.of(31337, USDC_A) != TokenId.of(31338, USDC_A)
    with pytest.raises(KeyError, match="no asset 'DAI'"):
        assets.tokens("DAI")


@pytest.mark.parametrize(("text", "want"), [
    (f"""[[assets]]
name = "USDC"
tokens = [{{ chain_id = 1, address = "{USDC_A}" }}]
[[assets]]
name = "usdc"
tokens = [{{ chain_id = 2, address = "{USDC_B}" }}]
""", "assets.toml: assets[1]: asset name usdc is already taken by assets[0] (USDC)"),
    (f"""[[assets]]
name = "USDC"
tokens = [{{ chain_id = 1, address = "{USDC_A}" }}]
[[assets]]
name = "USDbC"
tokens = [{{ chain_id = 1, address = "{USDC_A.upper().replace('0X', '0x')}" }}]
""", f"assets.toml: assets[1].tokens[0]: token {USDC_A} on chain 1 is already asset USDC (at assets[0].tokens[0])"),
    (f"""[[assets]]
name = "USDC"
tokens = [{{ chain_id = 1, address = "{USDC_A}" }}, {{ chain_id = 1, address = "{USDC_A}" }}]
""", f"assets.toml: assets[0].tokens[1]: token {USDC_A} on chain 1 is already asset USDC (at assets[0].tokens[0])"),
    (f"""[[assets]]
name = "USDC"
tokens = [{{ chain_id = 1, address = "{USDC_A}" }}, {{ chain_id = 1, address = "{USDC_B}" }}]
""", f"assets.toml: assets[0].tokens[1]: asset USDC already has a token on chain 1 ({USDC_A}); one asset has one "
     f"token per chain"),
    ("""[[assets]]
name = "USDC"
tokens = [{ chain_id = 1, address = "0x1234" }]
""", "assets.toml: assets[0].tokens[0].address: not an address (want 0x and 40 hex digits)"),
    (f"""[[assets]]
name = "USDC"
tokens = [{{ chain_id = 0, address = "{USDC_A}" }}]
""", "assets.toml: assets[0].tokens[0].chain_id: out of range"),
    ("""[[assets]]
name = "USDC"
tokens = []
""", "assets.toml: assets[0].tokens"),
    (f"""[[assets]]
name = "USDC"
tokens = [{{ chain_id = 1, address = "{USDC_A}", decimals = 6 }}]
""", "assets.toml: assets[0].tokens[0].decimals: unknown key 'decimals'"),
])
def test_contradictions_and_mistakes_are_one_line(text, want):
    with pytest.raises(ConfigError) as info:
        _map(text)
    message = str(info.value)
    assert message.startswith(want), message
    assert "\n" not in message


def test_the_map_checks_entries_built_in_code():
    entry = AssetEntry(name="DAI", tokens=(decode(AssetsConfig, {"assets": [
        {"name": "DAI", "tokens": [{"chain_id": 1, "address": USDC_A}]}]}).assets[0].tokens[0],))
    with pytest.raises(ConfigError, match=r"strategy.assets\[1\]: asset name DAI is already taken by strategy.assets\[0\]"):
        AssetMap.of([entry, entry], path="strategy.assets")
