"""Portfolio configuration: frozen keyword-only structs (``runtime.config``) from TOML; unknown keys rejected.

::

    [portfolio]
    db = "/var/lib/alphapulse/portfolio.sqlite"   # --db overrides; default <run dir>/data/portfolio.sqlite
    name = "portfolio"

    [relays]                                      # optional: default sockets from runtime.paths
    execution = "/tmp/ap/execution.sock"

    [start]                                       # where a fresh database starts each relay
    execution = "oldest"                          # oldest | now
    signal = "oldest"
    market_data = "now"

    [chains."1"]
    valuation_token = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"   # P&L is reported in this token
    wrapped_native = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"    # gas (native) is valued as this

Every mistake is a ``runtime.config.ConfigError`` naming the key path (``chains.1.wrapped_native``).
So is a table that configures nothing: a ``[chains."N"]`` naming neither ``valuation_token`` nor
``wrapped_native`` (the books of chain N would be valued as if it were not there), and a file of
empty tables only (``runtime.config.load_toml``). The portfolio needs no key to do its job (the
books, the default sockets and start points are defaults), so a file holding only ``[relays]`` or
``[start]`` is a real configuration.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from protocol.ids import TokenId
from runtime.config import Config, ConfigError, RelaysConfig, load

NATIVE = "0x" + "00" * 20  # the chain's native coin (gas) in balances


class ChainConfig(Config):
    valuation_token: str = ""
    wrapped_native: str = ""

    def __post_init__(self) -> None:
        if not (self.valuation_token or self.wrapped_native):
            raise ConfigError("names neither valuation_token nor wrapped_native: this chain table configures "
                              "nothing (remove it, or name the token P&L is valued in)", path="valuation_token")
        for name in ("valuation_token", "wrapped_native"):
            v = getattr(self, name)
            if v:
                try:
                    TokenId.of(1, v)
                except ValueError as exc:
                    raise ConfigError(str(exc), path=name) from None


class StartConfig(Config):
    execution: str = "oldest"
    signal: str = "oldest"
    market_data: str = "now"

    def __post_init__(self) -> None:
        for name in ("execution", "signal", "market_data"):
            if getattr(self, name) not in ("oldest", "now"):
                raise ConfigError(f"oldest or now, not {getattr(self, name)!r}", path=name)


class ProcessConfig(Config):
    db: str = ""
    name: str = "portfolio"


class PortfolioConfig(Config):
    portfolio: ProcessConfig = msgspec.field(default_factory=ProcessConfig)
    relays: RelaysConfig = msgspec.field(default_factory=RelaysConfig)
    start: StartConfig = msgspec.field(default_factory=StartConfig)
    chains: dict[str, ChainConfig] = {}

    def __post_init__(self) -> None:
        for k in self.chains:
            if not k.isdigit():
                raise ConfigError("chain ids are integers", path=f"chains.{k}")

    def valuation(self) -> dict[int, tuple[int, int]]:
        """chain -> (valuation token id, wrapped-native token id); 0 where not configured."""
        out = {}
        for k, c in self.chains.items():
            chain = int(k)
            val = int(TokenId.of(chain, c.valuation_token)) if c.valuation_token else 0
            wn = int(TokenId.of(chain, c.wrapped_native)) if c.wrapped_native else 0
            out[chain] = (val, wn)
        return out


def load_config(path: str | Path) -> PortfolioConfig:
    return load(PortfolioConfig, path)
