"""Strategy configuration: TOML in, frozen config out; every mistake is a precise error."""

from __future__ import annotations

from pathlib import Path

import pytest
from market_builders import DAI, WETH, token

import protocol as P
from strategy.config import ConfigError, StrategyConfig, config_from_dict, load_config

EXAMPLE = f"""
[strategy]
name = "dex-arb"
strategy_id = 3
source_id = 21
max_hops = 3

[gas]
base = 41000
v3_hop = 120000

[economics]
slippage_bps = 15

[[chains]]
chain_id = 1
gas_token = "{WETH}"
base_tokens = ["{WETH}", "{DAI}"]
min_net_profit = {{ "{WETH}" = 1000000000000000 }}
v2_fee_ppm = {{ SUSHISWAP = 3000, PANCAKESWAP_V2 = 2500, "1001" = 1000 }}

[[curve_pools]]
chain_id = 1
address = "0xbebc44782c7db0a1a60cb6fe97d0b483032ff1c7"
amp = 2000
rates = [1000000000000000000, 1000000000000000000000000000000]

[relays]
market_data = "/tmp/md.sock"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "strategy.toml"
    p.write_text(text)
    return p


def test_loads_the_example(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, EXAMPLE))
    assert (cfg.name, cfg.strategy_id, cfg.source_id, cfg.max_hops) == ("dex-arb", 3, 21, 3)
    assert (cfg.gas.base, cfg.gas.v2_hop, cfg.gas.v3_hop) == (41_000, 60_000, 120_000)
    assert cfg.economics.slippage_bps == 15 and cfg.economics.flash_fee_ppm == 0
    chain = cfg.chain(1)
    assert chain.gas_token == token(WETH) and chain.base_tokens == (token(WETH), token(DAI))
    assert chain.min_net_profit == {token(WETH): 10**15}
    assert chain.v2_fee_for(P.Venue.PANCAKESWAP_V2) == 2500 and chain.v2_fee_for(1001) == 1000
    assert chain.v2_fee_for(P.Venue.UNISWAP_V2) == 3000
    assert cfg.curve_pools[0].amp == 2000 and cfg.relays.market_data == "/tmp/md.sock"
    assert cfg.chain(5) is None
    assert chain.pools is None and chain.trades_in(12345)  # no shard: every pool
    shard = load_config(write(tmp_path, EXAMPLE.replace("chain_id = 1\ngas_token", f'chain_id = 1\npools = ["{DAI}"]\ngas_token', 1)))
    assert shard.chain(1).pools == {int(DAI, 16)} and shard.chain(1).trades_in(int(DAI, 16))
    assert not shard.chain(1).trades_in(int(WETH, 16))
    kinds = load_config(write(tmp_path, EXAMPLE.replace("chain_id = 1\ngas_token",
                                                        'chain_id = 1\nkinds = ["uniswap_v2", "UNISWAP_V3"]\ngas_token', 1)))
    assert kinds.chain(1).kinds == {int(P.VenueKind.UNISWAP_V2), int(P.VenueKind.UNISWAP_V3)}
    assert kinds.chain(1).trades_in(1, int(P.VenueKind.UNISWAP_V3)) and not kinds.chain(1).trades_in(
        1, int(P.VenueKind.UNISWAP_V4))
    assert chain.trades_in(1, int(P.VenueKind.UNISWAP_V4))  # no kinds: every kind
    with pytest.raises(ConfigError, match=r"chains\[0\]\.kinds\[0\]: unknown pool kind .*one of uniswap_v2"):
        load_config(write(tmp_path, EXAMPLE.replace("chain_id = 1\ngas_token",
                                                    'chain_id = 1\nkinds = ["uniswap_v9"]\ngas_token', 1)))
    with pytest.raises(AttributeError):  # frozen
        cfg.max_hops = 9  # type: ignore[misc]


def test_defaults_without_a_file() -> None:
    cfg = config_from_dict({})
    assert cfg == StrategyConfig() and cfg.gas.v2_hop == 60_000 and cfg.max_hops == 4


@pytest.mark.parametrize(
    "mutation, message",
    [
        (("[gas]", "[gas]\nv5_hop = 1"),
         "gas.v5_hop: unknown key 'v5_hop' (allowed: balancer_flash, base, curve_hop, v2_hop, v3_hop, v4_hop)"),
        (("[strategy]", "[strategy]\nmax_hop = 3"), "strategy.max_hop: unknown key 'max_hop'"),
        (("[economics]", "[economics]\nslipage_bps = 1"), "economics.slipage_bps: unknown key 'slipage_bps'"),
        (("chain_id = 1\ngas_token", "chain_id = 1\nbase_token = []\ngas_token"),
         "chains[0].base_token: unknown key 'base_token'"),
        (("amp = 2000", "amp = 2000\nfee = 4"), "curve_pools[0].fee: unknown key 'fee'"),
        (("[relays]", "[relay_s]"), "unknown key 'relay_s'"),
        (("slippage_bps = 15", "slippage_bps = 1.5"), "economics.slippage_bps: must be an integer, got float"),
        (("1000000000000000 }", "1e15 }"), f"chains[0].min_net_profit.{WETH}: must be an integer, got float"),
        (("max_hops = 3", "max_hops = 9"), "strategy.max_hops: out of range [2, 6], got 9"),
        (("max_hops = 3", "max_hops = true"), "strategy.max_hops: must be an integer, got bool"),
        ((f'gas_token = "{WETH}"', 'gas_token = "0x1234"'), "chains[0].gas_token: address <value> is not 20 bytes of hex"),
        (("SUSHISWAP = 3000", "SUSHI = 3000"), "chains[0].v2_fee_ppm.SUSHI: unknown venue 'SUSHI'"),
        (("rates = [1000000000000000000, 1000000000000000000000000000000]", "rates = [1]"), "curve_pools[0].rates: must be an array of length 2"),
        (("chain_id = 1\ngas_token", 'chain_id = 1\npools = ["0x12"]\ngas_token'),
         "chains[0].pools[0]: address <value> is not 20 bytes of hex"),
    ],
)
def test_rejects_mistakes_precisely(tmp_path: Path, mutation: tuple[str, str], message: str) -> None:
    old, new = mutation
    assert old in EXAMPLE
    path = write(tmp_path, EXAMPLE.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert message in str(exc.value)
    assert str(path) in str(exc.value)


def test_missing_required_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing required key 'gas_token'"):
        load_config(write(tmp_path, "[[chains]]\nchain_id = 1\n"))


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[strategy\n"))


# --- [cross_chain] -------------------------------------------------------------------------------

XA, XB = 31337, 31338
X_WETH, X_USDC = "0x" + "99" * 20, "0x" + "11" * 20
X_POOL_A, X_POOL_B = "0x" + "ab" * 20, "0x" + "cd" * 20
CROSS = f"""
[[chains]]
chain_id = {XA}
gas_token = "{X_WETH}"
[[chains]]
chain_id = {XB}
gas_token = "{X_WETH}"

[[assets]]
name = "WETH"
tokens = [{{ chain_id = {XA}, address = "{X_WETH}" }}, {{ chain_id = {XB}, address = "{X_WETH}" }}]
[[assets]]
name = "USDC"
tokens = [{{ chain_id = {XA}, address = "{X_USDC}" }}, {{ chain_id = {XB}, address = "{X_USDC}" }}]

[cross_chain]
base = "WETH"
quote = "USDC"
pairs = [["{X_POOL_A}", "{X_POOL_B}"]]
bridge_id = 7
bridge_fee_bps = 1
bridge_gas_units = 80000
rebalance_every = 10
drift_k_milli = 2000
sigma_floor_ppb = 20000
min_net_profit = 1000000
[[cross_chain.chains]]
chain_id = {XA}
block_time_ms = 2000
gas_units = 150000
inventory = {{ base = 0, quote = 10000000000 }}
[[cross_chain.chains]]
chain_id = {XB}
block_time_ms = 250
inclusion_blocks = 2
gas_units = 120000
inventory = {{ base = 5000000000000000000, quote = 0 }}
"""


def test_cross_chain_section_resolves_through_the_asset_map(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, CROSS))
    xc = cfg.cross_chain
    assert xc is not None and (xc.base_asset, xc.quote_asset) == ("WETH", "USDC")
    a, b = xc.chains
    assert (a.chain_id, a.base_token, a.quote_token) == (XA, P.TokenId.of(XA, X_WETH), P.TokenId.of(XA, X_USDC))
    assert (b.chain_id, b.base_token, b.quote_token) == (XB, P.TokenId.of(XB, X_WETH), P.TokenId.of(XB, X_USDC))
    assert (a.block_time_ms, a.inclusion_blocks, a.gas_units, a.quote_inventory, a.base_inventory) == (
        2000, 1, 150_000, 10**10, 0)
    assert (b.block_time_ms, b.inclusion_blocks, b.gas_units, b.quote_inventory, b.base_inventory) == (
        250, 2, 120_000, 0, 5 * 10**18)
    assert xc.pairs == ((int(X_POOL_A, 16), int(X_POOL_B, 16)),)
    assert (xc.bridge_id, xc.bridge_fee_bps, xc.bridge_gas_units, xc.rebalance_every, xc.drift_k_milli) == (
        7, 1, 80_000, 10, 2000)
    assert (xc.sigma_window_s, xc.sigma_floor_ppb, xc.min_net_profit) == (300, 20_000, 10**6)
    assert load_config(write(tmp_path, EXAMPLE)).cross_chain is None


@pytest.mark.parametrize(("old", "new", "message"), [
    ('quote = "USDC"', 'quote = "weth"', "cross_chain.quote: base and quote are both asset WETH"),
    ('base = "WETH"', 'base = "DAI"', "cross_chain.base: no [[assets]] named DAI (configured: WETH, USDC)"),
    (f'chain_id = {XB}\nblock_time_ms', f'chain_id = {XA}\nblock_time_ms',
     f"cross_chain.chains[1].chain_id: chain {XA} is listed twice"),
    (f'{{ chain_id = {XB}, address = "{X_USDC}" }}', "",
     f"cross_chain.chains[1].chain_id: asset USDC has no token on chain {XB}"),
    (f'[[chains]]\nchain_id = {XB}\ngas_token = "{X_WETH}"', "",
     f"cross_chain.chains[1].chain_id: chain {XB} has no [[chains]] table"),
    (f'pairs = [["{X_POOL_A}", "{X_POOL_B}"]]', f'pairs = [["{X_POOL_A}", "{X_POOL_B}"], ["{X_POOL_A}", "{X_POOL_B}"]]',
     "cross_chain.pairs[1]: the same pools as pairs[0]"),
    ("inventory = { base = 5000000000000000000, quote = 0 }", "inventory = { base = 0, quote = 5 }",
     "cross_chain.chains: no direction can trade"),
    ("pairs = [[", 'pairs = [["0x12"], [', "cross_chain.pairs[0]: must be an array of length 2"),
    ("bridge_fee_bps = 1\n", "bridge_fee_bps = 10001\n", "cross_chain.bridge_fee_bps: out of range [0, 10000]"),
    ("rebalance_every = 10", "rebalance_every = 0", "cross_chain.rebalance_every: out of range [1, 1000000]"),
    ("drift_k_milli = 2000", "drift_k_milli = 2.0", "cross_chain.drift_k_milli: must be an integer, got float"),
    ("sigma_floor_ppb = 20000", "sigma_floor_ppb = 0", "cross_chain.sigma_floor_ppb: out of range"),
    ("sigma_floor_ppb = 20000\n", "", "cross_chain.sigma_floor_ppb: missing required key"),
    ("block_time_ms = 250", "block_time_ms = 0", "cross_chain.chains[1].block_time_ms: out of range"),
    ("inclusion_blocks = 2", "inclusion_blocks = 0", "cross_chain.chains[1].inclusion_blocks: out of range"),
    ("min_net_profit = 1000000", "min_net_profit = 0", "cross_chain.min_net_profit: out of range"),
    ("gas_units = 120000", "gas_unit = 120000", "cross_chain.chains[1].gas_unit: unknown key"),
])
def test_cross_chain_contradictions_are_one_line(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in CROSS
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, CROSS.replace(old, new, 1)))
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{tmp_path / 'strategy.toml'}: ") and message in text, text


def test_cross_chain_needs_its_assets(tmp_path: Path) -> None:
    no_assets = CROSS[:CROSS.index("[[assets]]")] + CROSS[CROSS.index("[cross_chain]"):]
    with pytest.raises(ConfigError, match=r"cross_chain\.base: no \[\[assets\]\] named WETH \(configured: none\)"):
        load_config(write(tmp_path, no_assets))
    two_names = CROSS.replace('name = "USDC"', 'name = "weth"')  # runtime/assets.py's own check, same line form
    with pytest.raises(ConfigError, match=r"assets\[1\]: asset name weth is already taken"):
        load_config(write(tmp_path, two_names))
