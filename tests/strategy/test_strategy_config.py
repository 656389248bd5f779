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
