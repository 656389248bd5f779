"""Asset identity across chains, from configuration: which tokens on which chains are one asset.

Instrument ids stay exact per chain (``protocol.ids.TokenId`` is ``(chain_id, address)``): USDC on
chain A and USDC on chain B are two instruments, and nothing in an id says they are the same money.
That is a bridge fact, stated by the operator::

    [[assets]]
    name = "USDC"
    tokens = [
        { chain_id = 1, address = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48" },
        { chain_id = 8453, address = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913" },
    ]

Each ``[[assets]]`` names one asset and at most one token per chain. Contradictions are refused
at load, each with one line naming both places (names unquoted: the config layer masks any quoted
string of the document in a message, as it might be a secret in the wrong place) (a :class:`~runtime.config.ConfigError`):

* two assets with the same name (names compare case-insensitively: ``usdc`` and ``USDC`` are one);
* one (chain, token) listed under two assets, or twice under one;
* one asset with two tokens on the same chain (bridged and native USDC on one chain are two assets).

:class:`AssetMap` answers the questions the cross-chain code asks, in ``TokenId`` terms: which
asset a token is, the same asset's token on another chain, whether two tokens are one asset.
A component config embeds ``assets: tuple[AssetEntry, ...]`` and builds ``AssetMap.of(...)`` in its
``__post_init__``; :class:`AssetsConfig` is the section on its own (a file of ``[[assets]]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from os import PathLike
from typing import Annotated

from protocol.errors import FieldRangeError
from protocol.ids import TokenId, address_to_int

from .config import Config, ConfigError, Meta, join_path, load

__all__ = ["AssetEntry", "AssetMap", "AssetToken", "AssetsConfig", "load_assets"]

ChainId = Annotated[int, Meta(ge=1, le=0xFFFF_FFFF)]


class AssetToken(Config):
    """One chain's token of an asset."""

    chain_id: ChainId
    address: str

    def __post_init__(self) -> None:
        try:
            address_to_int(self.address)
        except FieldRangeError:
            raise ConfigError("not an address (want 0x and 40 hex digits)", path="address") from None

    @property
    def token_id(self) -> TokenId:
        return TokenId.of(self.chain_id, self.address)


class AssetEntry(Config):
    """One ``[[assets]]`` table: an asset's name and its token on each chain."""

    name: Annotated[str, Meta(min_length=1, max_length=64)]
    tokens: Annotated[tuple[AssetToken, ...], Meta(min_length=1)]


class AssetMap:
    """Which asset each (chain, token) is; built only from entries without contradictions."""

    __slots__ = ("_by_token", "_by_name")

    def __init__(self, by_token: Mapping[TokenId, str], by_name: Mapping[str, Mapping[int, TokenId]]) -> None:
        self._by_token = dict(by_token)
        self._by_name = {name: dict(tokens) for name, tokens in by_name.items()}

    @classmethod
    def of(cls, entries: Iterable[AssetEntry], *, path: str = "assets") -> AssetMap:
        """The map of ``entries`` (``path`` locates them in errors); a contradiction is a ConfigError."""
        by_token: dict[TokenId, str] = {}
        where_token: dict[TokenId, str] = {}
        by_name: dict[str, dict[int, TokenId]] = {}
        where_name: dict[str, str] = {}
        names: dict[str, str] = {}  # casefolded -> as written
        for i, entry in enumerate(entries):
            here = join_path(path, i)
            key = entry.name.casefold()
            if key in names:
                raise ConfigError(f"asset name {entry.name} is already taken by {where_name[names[key]]} "
                                  f"({names[key]})", path=here)
            names[key] = entry.name
            where_name[entry.name] = here
            chains: dict[int, TokenId] = {}
            for j, token in enumerate(entry.tokens):
                at = join_path(join_path(here, "tokens"), j)
                tid = token.token_id
                if tid in by_token or tid in chains.values():
                    owner = by_token.get(tid, entry.name)
                    raise ConfigError(f"token {tid.address} on chain {tid.chain_id} is already asset {owner} "
                                      f"(at {where_token[tid]})", path=at)
                if tid.chain_id in chains:
                    raise ConfigError(f"asset {entry.name} already has a token on chain {tid.chain_id} "
                                      f"({chains[tid.chain_id].address}); one asset has one token per chain", path=at)
                chains[tid.chain_id] = tid
                where_token[tid] = at
            for tid in chains.values():
                by_token[tid] = entry.name
            by_name[entry.name] = chains
        return cls(by_token, by_name)

    # -- questions -----------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def asset_of(self, token: int) -> str | None:
        """The asset a token (a ``TokenId``) is, or None when the configuration does not say."""
        return self._by_token.get(TokenId(token))

    def token(self, asset: str, chain_id: int) -> TokenId | None:
        """The asset's token on ``chain_id``, or None."""
        return self._by_name.get(asset, {}).get(chain_id)

    def tokens(self, asset: str) -> dict[int, TokenId]:
        """The asset's token on every chain it is on: ``{chain_id: TokenId}``."""
        if asset not in self._by_name:
            raise KeyError(f"no asset {asset!r} (configured: {', '.join(self._by_name) or 'none'})")
        return dict(self._by_name[asset])

    def counterpart(self, token: int, chain_id: int) -> TokenId | None:
        """The token on ``chain_id`` that is the same asset as ``token``, or None."""
        asset = self.asset_of(token)
        return None if asset is None else self.token(asset, chain_id)

    def same_asset(self, a: int, b: int) -> bool:
        """True when both tokens are configured as one asset (a token is always itself)."""
        if TokenId(a) == TokenId(b):
            return True
        asset = self.asset_of(a)
        return asset is not None and asset == self.asset_of(b)

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"AssetMap({', '.join(f'{n}: {sorted(c)}' for n, c in self._by_name.items())})"


class AssetsConfig(Config):
    """A file (or document) holding only the ``[[assets]]`` section."""

    assets: tuple[AssetEntry, ...] = ()

    def __post_init__(self) -> None:
        AssetMap.of(self.assets)

    def asset_map(self) -> AssetMap:
        return AssetMap.of(self.assets)


def load_assets(path: str | PathLike[str]) -> AssetMap:
    """The asset map of a file of ``[[assets]]`` tables (a ConfigError names the file and key)."""
    return load(AssetsConfig, path).asset_map()
