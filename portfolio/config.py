"""Portfolio configuration: frozen keyword-only dataclasses from TOML; unknown keys rejected.

::

    [portfolio]
    db = "/var/lib/alphapulse/portfolio.sqlite"   # --db overrides; default <run dir>/data/portfolio.sqlite
    name = "portfolio"

    [relays]                                      # optional: default sockets from relays.paths
    execution = "/tmp/ap/execution.sock"

    [start]                                       # where a fresh database starts each relay
    execution = "oldest"                          # oldest | now
    signal = "oldest"
    market_data = "now"

    [chains."1"]
    valuation_token = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"   # P&L is reported in this token
    wrapped_native = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"    # gas (native) is valued as this

Uses ``risk.config.from_mapping`` (the shared strict loader).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from protocol.ids import TokenId
from risk.config import ConfigError, from_mapping, load_toml

NATIVE = "0x" + "00" * 20  # the chain's native coin (gas) in balances


@dataclass(frozen=True, kw_only=True)
class ChainConfig:
    valuation_token: str = ""
    wrapped_native: str = ""

    def __post_init__(self) -> None:
        for name in ("valuation_token", "wrapped_native"):
            v = getattr(self, name)
            if v:
                try:
                    TokenId.of(1, v)
                except ValueError as exc:
                    raise ConfigError(f"chains.*.{name}: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class StartConfig:
    execution: str = "oldest"
    signal: str = "oldest"
    market_data: str = "now"

    def __post_init__(self) -> None:
        for name in ("execution", "signal", "market_data"):
            if getattr(self, name) not in ("oldest", "now"):
                raise ConfigError(f"start.{name}: oldest or now, not {getattr(self, name)!r}")


@dataclass(frozen=True, kw_only=True)
class RelaysConfig:
    market_data: str = ""
    signal: str = ""
    execution: str = ""


@dataclass(frozen=True, kw_only=True)
class ProcessConfig:
    db: str = ""
    name: str = "portfolio"


@dataclass(frozen=True, kw_only=True)
class PortfolioConfig:
    portfolio: ProcessConfig = field(default_factory=ProcessConfig)
    relays: RelaysConfig = field(default_factory=RelaysConfig)
    start: StartConfig = field(default_factory=StartConfig)
    chains: dict[str, ChainConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for k in self.chains:
            if not k.isdigit():
                raise ConfigError(f"chains.{k}: chain ids are integers")

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
    return from_mapping(PortfolioConfig, load_toml(path))
