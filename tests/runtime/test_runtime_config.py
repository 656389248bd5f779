"""runtime.config: the one strict config base -- key paths, strict money, secrets refused unechoed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

import msgspec
import pytest

from runtime.config import Config, ConfigError, Meta, RelaysConfig, decode, load
from runtime.paths import ENV_RUN_DIR
from runtime.secrets import looks_like_private_key, refuse_secrets

KEY = "ab" * 32


class Limit(Config):
    max_loss: int
    note: str = ""

    def __post_init__(self) -> None:
        if self.max_loss <= 0:
            raise ConfigError(f"must be positive, got {self.max_loss}", path="max_loss")


class Section(Config):
    max_wei: int = 0
    hops: Annotated[int, Meta(ge=2, le=6)] = 4
    timeout_s: float = 1.0
    enabled: bool = True
    tokens: dict[str, Limit] = {}
    fees: dict[int, int] = {}


class Top(Config):
    section: Section = msgspec.field(default_factory=Section)
    items: tuple[Section, ...] = ()
    relays: RelaysConfig = msgspec.field(default_factory=RelaysConfig)


def error(doc: object, file: str = "") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        decode(Top, doc, file=file)
    return info.value


def test_frozen_keyword_only_with_defaults() -> None:
    top = decode(Top, {"section": {"max_wei": 10**30, "timeout_s": 2}})
    assert top.section.max_wei == 10**30 and top.section.timeout_s == 2.0 and top.items == ()
    assert top == Top(section=Section(max_wei=10**30, timeout_s=2.0))
    with pytest.raises(AttributeError):
        top.section = Section()  # type: ignore[misc]
    with pytest.raises(TypeError):
        Section(5)  # type: ignore[misc]


def test_unknown_key_names_its_path_and_the_allowed_keys() -> None:
    e = error({"section": {"max_wie": 1}}, file="risk.toml")
    assert e.path == "section.max_wie" and e.file == "risk.toml"
    assert str(e) == ("risk.toml: section.max_wie: unknown key 'max_wie' "
                      "(allowed: enabled, fees, hops, max_wei, timeout_s, tokens)")
    assert error({"bogus": {}}).path == "bogus"
    assert error({"items": [{}, {"x": 1}]}).path == "items[1].x"


def test_dict_keys_are_named_in_paths() -> None:
    e = error({"section": {"tokens": {"1:0xaa": {"max_loss": 5}, "1:0xbb": {"max_los": 5}}}})
    assert e.path == "section.tokens.1:0xbb.max_los" and "allowed: max_loss, note" in str(e)
    e = error({"section": {"tokens": {"weth": {"max_loss": 0}}}})
    assert str(e) == "section.tokens.weth.max_loss: must be positive, got 0"
    assert error({"section": {"fees": {"1": 5, "sushi": 5}}}).path == "section.fees.sushi"
    assert decode(Top, {"section": {"fees": {"1": 5}}}).section.fees == {1: 5}


def test_a_float_is_never_money() -> None:
    e = error({"section": {"max_wei": 1.5e18}})
    assert str(e) == "section.max_wei: must be an integer, got float"
    assert error({"section": {"max_wei": True}}).message == "must be an integer, got bool"
    assert error({"section": {"tokens": {"t": {"max_loss": 1e18}}}}).path == "section.tokens.t.max_loss"


def test_a_wrong_type_is_named_without_echoing_the_value() -> None:
    for doc, message in [
        ({"section": {"note_typo": 1}}, None),
        ({"section": {"max_wei": "12345678901234567"}}, "must be an integer, got str"),
        ({"section": {"enabled": "yes-please"}}, "must be true or false, got str"),
        ({"section": {"timeout_s": "soon-ish"}}, "must be a number, got str"),
        ({"section": "a-string-table"}, "must be a table, got str"),
        ({"items": {"not": "an array"}}, "must be an array, got table"),
    ]:
        e = error(doc)
        if message is not None:
            assert e.message == message
            for leaf in ("12345678901234567", "yes-please", "soon-ish", "a-string-table"):
                assert leaf not in str(e)


def test_bounds_and_missing_keys() -> None:
    assert str(error({"section": {"hops": 9}})) == "section.hops: out of range [2, 6], got 9"
    assert str(error({"section": {"tokens": {"t": {}}}})) == "section.tokens.t.max_loss: missing required key 'max_loss'"


@pytest.mark.parametrize("secret", [KEY, "0x" + KEY, "0X" + KEY.upper(), f"--key={KEY}", f" 0x{KEY} "])
def test_a_plaintext_key_is_refused_anywhere_and_never_echoed(secret: str) -> None:
    for doc, path in [({"section": {"note": secret}}, "section.note"),
                      ({"items": [{}, {"tokens": {"t": {"max_loss": 1, "note": secret}}}]}, "items[1].tokens.t.note"),
                      ({"anything": [1, [secret]]}, "anything[1][0]")]:
        e = error(doc, file="x.toml")
        assert e.path == path and "plaintext private key" in str(e)
        assert KEY not in str(e) and KEY.upper() not in str(e)


def test_secret_names_and_hex_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="secrets do not belong") as info:
        refuse_secrets({"keystore": {"private_key": "x"}})
    assert info.value.path == "keystore.private_key"
    with pytest.raises(ConfigError) as info:
        refuse_secrets({"limits": {"0x" + KEY: 1}})
    assert info.value.path == "limits" and KEY not in str(info.value)
    refuse_secrets({"keystore": {"password_file": "f", "password_env": "E"}, "address": "0x" + "ab" * 20,
                    "hash_and_more": "ab" * 33})  # an address, and 66 hex digits, are not 32-byte keys
    assert looks_like_private_key(KEY) and not looks_like_private_key("ab" * 31)


def test_relays_default_to_the_run_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_RUN_DIR, str(tmp_path))
    relays = decode(Top, {"relays": {"signal": "/tmp/s.sock"}}).relays
    assert relays.socket("signal") == "/tmp/s.sock"
    assert relays.socket("market_data") == str(tmp_path / "market_data.sock")
    assert RelaysConfig().socket(3) == str(tmp_path / "execution.sock")
    assert error({"relays": {"signal": "/" + "x" * 200}}).path == "relays.signal"
    assert error({"relays": {"archive": ""}}).path == "relays.archive"


def test_load_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[section]\nhops = 3\n")
    assert load(Top, p).section.hops == 3
    p.write_text("[section\n")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load(Top, p)
    assert info.value.file == str(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load(Top, tmp_path / "missing.toml")


class Component(Config):
    own_table: ClassVar[str] = "component"

    name: str = "c"
    max_hops: Annotated[int, Meta(ge=2, le=6)] = 4
    section: Section = Section()

    def __post_init__(self) -> None:
        if self.name == "reserved":
            raise ConfigError("is reserved", path="name")


def test_a_component_reads_its_settings_from_its_own_table() -> None:
    c = decode(Component, {"component": {"max_hops": 3}, "section": {"max_wei": 7}})
    assert (c.name, c.max_hops, c.section.max_wei) == ("c", 3, 7) and decode(Component, {}) == Component()

    def err(doc: dict) -> str:
        with pytest.raises(ConfigError) as info:
            decode(Component, doc, file="c.toml")
        return str(info.value)

    assert err({"component": {"max_hop": 3}}) == "c.toml: component.max_hop: unknown key 'max_hop' (allowed: max_hops, name)"
    assert err({"max_hops": 3}) == "c.toml: max_hops: unknown key 'max_hops' (allowed: component, section)"
    assert err({"component": {"max_hops": 2.0}}) == "c.toml: component.max_hops: must be an integer, got float"
    assert err({"component": {"name": "reserved"}}) == "c.toml: component.name: is reserved"
    assert err({"component": []}) == "c.toml: component: must be a table, got list"
    assert err({"section": {"hops": 1}}) == "c.toml: section.hops: out of range [2, 6], got 1"


@pytest.mark.parametrize("component", ["strategy", "risk", "portfolio", "execution", "collectors.evm"])
@pytest.mark.parametrize("text", ["", "# only a comment\n\n"])
def test_an_empty_configuration_file_is_refused_by_every_component(tmp_path: Path, component: str, text: str) -> None:
    import importlib

    f = tmp_path / "c.toml"
    f.write_text(text)
    load = importlib.import_module(f"{component}.config").load_config
    with pytest.raises(ConfigError, match="configures nothing") as info:
        load(f)
    assert str(f) in str(info.value)


def test_a_strategy_without_chains_is_refused(tmp_path: Path) -> None:
    from strategy.config import load_config

    f = tmp_path / "s.toml"
    f.write_text("[strategy]\nmax_hops = 3\n")
    with pytest.raises(ConfigError, match=r"chains: at least one \[\[chains\]\] table"):
        load_config(f)


@pytest.mark.parametrize("component", ["strategy", "risk", "portfolio", "execution", "collectors.evm"])
def test_a_file_of_empty_tables_configures_nothing_for_every_component(tmp_path: Path, component: str) -> None:
    import importlib

    f = tmp_path / "c.toml"
    f.write_text("[relays]\n\n[x]\n# a table with nothing in it\n[[y]]\n")
    load = importlib.import_module(f"{component}.config").load_config
    with pytest.raises(ConfigError) as info:
        load(f)
    assert str(info.value) == (f"{f}: relays: the file configures nothing: [relays], [x], [y] have no key with a "
                               f"value; see the component's example configuration")


def test_one_socket_for_two_domains_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        decode(RelaysConfig, {"market_data": "/tmp/ap/a.sock", "execution": "/tmp/ap/a.sock"}, file="c.toml")
    assert str(info.value) == "c.toml: execution: the same socket as market_data; each domain has its own relay"
    assert decode(RelaysConfig, {"market_data": "/tmp/ap/a.sock", "signal": "/tmp/ap/b.sock"}).signal == "/tmp/ap/b.sock"


@pytest.mark.parametrize("component", ["strategy", "risk", "portfolio", "execution", "collectors.evm"])
@pytest.mark.parametrize("spelling", ["0x{k}", "0X{k}", "key:0x{k}", "https://node.example/?key={k}",
                                      "{h1} {h2}"])
def test_every_component_refuses_a_plaintext_key_through_the_one_refusal(tmp_path: Path, component: str,
                                                                         spelling: str) -> None:
    """Issue 17: the key detector lived in the executor's config only and missed common spellings.
    Every component's loader (and so ``config check``, which calls them) refuses it, naming the key
    path and never the value."""
    import importlib

    key = "ab" * 32
    value = spelling.format(k=key, h1=key[:32], h2=key[32:])
    f = tmp_path / "c.toml"
    f.write_text(f'[relays]\nmarket_data = "/tmp/ap/md.sock"\n\n[notes]\nendpoint = "{value}"\n')
    load = importlib.import_module(f"{component}.config").load_config
    with pytest.raises(ConfigError) as info:
        load(f)
    text = str(info.value)
    assert text.startswith(f"{f}: notes.endpoint: looks like a plaintext private key"), text
    assert key not in text and key[:32] not in text and key[32:] not in text
