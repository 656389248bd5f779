"""collectors/cex/config.py: built-in defaults, strict tables, symbol rules, key names (never keys)."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.cex.binance.process import main as binance_main
from collectors.cex.config import (
    BINANCE_REST,
    BINANCE_WS,
    COINBASE_ADVANCED_WS,
    COINBASE_EXCHANGE_WS,
    load_binance,
    load_coinbase,
)
from protocol.ids import Venue
from runtime.config import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_symbols_alone_give_working_defaults(tmp_path: Path) -> None:
    cfg = load_binance(_write(tmp_path, 'symbols = ["ETHUSDT", "ETHBTC", "SOLFDUSD"]\n'))
    assert (cfg.ws, cfg.rest, cfg.snapshot_limit) == (BINANCE_WS, BINANCE_REST, 1000)
    insts = cfg.instruments()
    assert [(i.base, i.quote, i.price_scale, i.venue) for i in insts] == [
        ("ETH", "USDT", 8, Venue.BINANCE), ("ETH", "BTC", 8, Venue.BINANCE), ("SOL", "FDUSD", 8, Venue.BINANCE)]
    cb = load_coinbase(_write(tmp_path, 'symbols = ["ETH-USD"]\n'))
    assert cb.ws == COINBASE_EXCHANGE_WS and cb.instruments()[0].quote == "USD"
    adv = load_coinbase(_write(tmp_path, 'symbols = ["ETH-USD"]\nfeed = "advanced"\n'))
    assert adv.ws == COINBASE_ADVANCED_WS


def test_rules_override_and_must_name_a_configured_symbol(tmp_path: Path) -> None:
    cfg = load_binance(_write(tmp_path, 'symbols = ["XYZW"]\n[rules.XYZW]\nbase = "XY"\nquote = "ZW"\n'
                                        'price_scale = 2\n'))
    (inst,) = cfg.instruments()
    assert (inst.base, inst.quote, inst.price_scale, inst.size_scale) == ("XY", "ZW", 2, 8)
    with pytest.raises(ConfigError, match="rules.ABC"):
        load_binance(_write(tmp_path, 'symbols = ["ETHUSDT"]\n[rules.ABC]\nbase = "A"\n'))
    with pytest.raises(ConfigError, match="cannot tell base and quote of 'XYZW'"):
        load_binance(_write(tmp_path, 'symbols = ["XYZW"]\n'))


@pytest.mark.parametrize(("text", "where"), [
    ('symbols = ["ETHUSDT"]\nws_urll = "ws://x"\n', "ws_urll"),
    ('symbols = []\n', "symbols"),
    ('symbols = ["ETHUSDT"]\nws_url = "http://x"\n', "ws_url"),
    ('symbols = ["ETHUSDT"]\nsnapshot_limit = 10000\n', "snapshot_limit"),
    ('symbols = ["ETHUSDT"]\n[rules.ETHUSDT]\nprice_scale = 99\n', "rules.ETHUSDT.price_scale"),
    ('symbols = ["ETHUSDT"]\n[api]\nkey_env = "A"\nkey_file = "/x"\n', "api"),
])
def test_mistakes_are_errors_naming_the_key(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_binance(_write(tmp_path, text))
    assert where in str(err.value)


def test_the_api_table_holds_names_and_a_key_itself_is_refused(tmp_path: Path) -> None:
    cfg = load_binance(_write(tmp_path, 'symbols = ["ETHUSDT"]\n[api]\nkey_env = "BINANCE_API_KEY"\n'
                                        'hmac_file = "/run/secrets/binance"\n'))
    assert cfg.api is not None and cfg.api.key_env == "BINANCE_API_KEY"
    with pytest.raises(ConfigError):
        load_binance(_write(tmp_path, 'symbols = ["ETHUSDT"]\nprivate_key = "0x' + "ab" * 32 + '"\n'))


def test_the_command_exits_2_on_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert binance_main(["--config", str(_write(tmp_path, 'symbols = ["ETHUSDT"]\nbogus = 1\n'))]) == 2
    assert "bogus" in capsys.readouterr().err
