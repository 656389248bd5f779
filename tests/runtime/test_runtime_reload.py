"""runtime.reload: the key-by-key diff, the reloadable patterns, and the refusals (in one process;
tests/runtime/test_runtime_reload_processes.py sends SIGHUP to real processes)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from runtime.config import Config, ConfigError, load
from runtime.reload import ABSENT, Change, ConfigReload, config_diff, is_reloadable


class Limits(Config):
    max_gas: int = 0
    per_token: Mapping[str, int] = {}


class Chain(Config):
    chain_id: int
    min_profit: int = 0


class Top(Config):
    own_table: ClassVar[str] = "app"

    name: str = "x"
    threshold: int = 1
    limits: Limits = Limits()
    chains: tuple[Chain, ...] = ()


def _load(path: str) -> Top:
    top = load(Top, path)
    if top.threshold == 666:
        raise ConfigError("threshold 666 is cursed", path="app.threshold", file=path)
    return top


def test_diff_names_keys_as_the_file_writes_them() -> None:
    a = Top(name="x", threshold=1, limits=Limits(max_gas=5, per_token={"a": 1}), chains=(Chain(chain_id=1),))
    b = Top(name="y", threshold=2, limits=Limits(max_gas=5, per_token={"b": 2}),
            chains=(Chain(chain_id=1, min_profit=9),))
    assert config_diff(a, a) == []
    assert config_diff(a, b) == [
        Change("app.name", "x", "y"), Change("app.threshold", 1, 2),
        Change("limits.per_token.a", 1, ABSENT), Change("limits.per_token.b", ABSENT, 2),
        Change("chains[0].min_profit", 0, 9)]
    longer = Top(chains=(Chain(chain_id=1), Chain(chain_id=2)))
    assert [c.path for c in config_diff(Top(chains=(Chain(chain_id=1),)), longer)] == ["chains"]
    assert Change("app.threshold", 1, 2).describe() == "app.threshold: 1 -> 2"
    assert Change("limits.per_token.b", ABSENT, 2).describe() == "limits.per_token.b: (absent) -> 2"


def test_patterns_match_the_key_and_what_lies_under_it() -> None:
    patterns = ("limits", "chains[*].min_profit", "app.threshold")
    assert is_reloadable("limits.per_token.a", patterns)
    assert is_reloadable("limits", patterns)
    assert is_reloadable("chains[3].min_profit", patterns)
    assert is_reloadable("app.threshold", patterns)
    assert not is_reloadable("limits_other", patterns)
    assert not is_reloadable("chains[0].chain_id", patterns)
    assert not is_reloadable("chains", patterns)
    assert not is_reloadable("app.name", patterns)


def test_reload_applies_refuses_and_keeps_the_old_configuration(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "app.toml"
    f.write_text('[app]\nname = "x"\nthreshold = 1\n[limits]\nmax_gas = 5\n')
    applied: list[Top] = []
    r = ConfigReload("app", f, _load, ("app.threshold", "limits"))
    first = r.load_initial()
    assert first.threshold == 1
    caplog.set_level(logging.INFO, logger="runtime.reload")

    assert r.reload() == "unchanged"
    f.write_text('[app]\nname = "x"\nthreshold = 3\n[limits]\nmax_gas = 5\n')
    assert r.reload() == "refused"  # nothing attached yet: the process is still starting
    assert "still starting" in caplog.text and r.current is first

    r.attach(applied.append)
    f.write_text('[app]\nname = "x"\nthreshold = 1\n[limits]\nmax_gas = 5\n')
    assert r.reload() == "unchanged"

    f.write_text('[app]\nname = "x"\nthreshold = 7\n[limits]\nmax_gas = 9\n')
    caplog.clear()
    assert r.reload() == "applied"
    assert applied[-1].threshold == 7 and r.current is applied[-1]
    assert "app.threshold: 1 -> 7" in caplog.text and "limits.max_gas: 5 -> 9" in caplog.text

    # a key that is not reloadable: the whole file is refused, naming the key but not its value
    f.write_text('[app]\nname = "secret-ish-value"\nthreshold = 8\n[limits]\nmax_gas = 9\n')
    caplog.clear()
    assert r.reload() == "refused"
    assert "app.name cannot change while the process runs" in caplog.text
    assert "secret-ish-value" not in caplog.text and "reloadable: app.threshold, limits" in caplog.text
    assert r.current is not None and r.current.threshold == 7 and len(applied) == 1

    # invalid files are refused with the loader's own error line
    for text, why in (("[app]\nthreshold = 1.5\n", "app.threshold: must be an integer"),
                      ("[app\n", "invalid TOML"), ("[app]\nthreshold = 666\n", "cursed"),
                      ("[app]\nthreshhold = 2\n", "unknown key 'threshhold'")):
        f.write_text(text)
        caplog.clear()
        assert r.reload() == "refused"
        assert why in caplog.text and "keeping the running configuration" in caplog.text
    f.unlink()
    assert r.reload() == "refused"
    assert r.current.threshold == 7

    # the component may refuse too (ConfigError from its apply function)
    def picky(new: Top) -> None:
        raise ConfigError("not now", path="limits.max_gas")

    r.attach(picky)
    f.write_text('[app]\nname = "x"\nthreshold = 7\n[limits]\nmax_gas = 1\n')
    caplog.clear()
    assert r.reload() == "refused" and "limits.max_gas: not now" in caplog.text
    assert r.current.limits.max_gas == 9
