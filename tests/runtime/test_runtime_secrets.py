"""runtime.secrets and the config base: no plaintext key gets in, no rejected value gets out."""

from __future__ import annotations

import typing

import pytest

from runtime.config import Config, ConfigError, decode
from runtime.secrets import looks_like_private_key

KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


@pytest.mark.parametrize("text", [
    "0x" + KEY, "0X" + KEY.upper(), KEY, "key:0x" + KEY, "--private=" + KEY,
    f"https://node.example/v1?key={KEY}&x=1", f"https://node.example/{KEY}",
    "0x" + KEY[:32] + " " + KEY[32:], KEY[:20] + "  " + KEY[20:], "0x" + KEY[:10] + "\t" + KEY[10:],
])
def test_common_spellings_of_a_private_key_are_recognised(text: str) -> None:
    assert looks_like_private_key(text)


@pytest.mark.parametrize("text", [
    "0x" + "ab" * 20, "ab" * 20 + " " + "cd" * 20, "0x" + "ab" * 20 + " 0x" + "cd" * 20, "hello world",
    KEY + "00",  # 66 hex digits: not a 32-byte key
])
def test_addresses_and_longer_hex_are_not_keys(text: str) -> None:
    assert not looks_like_private_key(text)


class Note(Config):
    note: str = ""


def test_a_split_key_in_a_config_document_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as info:
        decode(Note, {"note": KEY[:32] + " " + KEY[32:]}, file="x.toml")
    assert "note" in str(info.value) and KEY[:32] not in str(info.value) and KEY[32:] not in str(info.value)


class Token(int):
    pass


class Inner(Config):
    address: str = ""

    def __post_init__(self) -> None:
        if self.address and not self.address.startswith("0x"):
            raise ConfigError(f"address {self.address!r} is not hex", path="address")


class Echoing(Config):
    token: Token = Token(0)
    inner: Inner = Inner()
    n: int = 0


def test_rejected_values_are_never_echoed() -> None:
    secret = "sk_live_do_not_print_me"

    def hook(tp: type, value: typing.Any) -> typing.Any:
        raise ValueError(f"not a token: {value!r}")  # a hook that quotes what it refused

    for doc in ({"token": secret}, {"inner": {"address": secret}}, {"n": secret}):
        with pytest.raises(ConfigError) as info:
            decode(Echoing, doc, dec_hook=hook)
        assert secret not in str(info.value), str(info.value)
        assert str(info.value).split(":")[0] in ("token", "inner.address", "n")
